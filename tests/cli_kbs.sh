#!/bin/sh
# Command-level tests of mu kbs, the key broker: a broker on a Unix socket with a policy and
# keys; tool_kbs_client playing the enclave (the honest exchange unwraps the very key that
# sealed the model) and misbehaving (replayed, expired and foreign nonces, low-order keys,
# lying claims, other models, other configs, bad frames); the config's egress burst against the
# policy's max_egress_burst_bytes, and a test-build config (test_no_egress_limit) released only
# under a policy that allows dev evidence; a stalled client does not block
# others; the audit log holds one hash-chained record per decision and no key, passes
# mu audit verify and fails it once edited; a second broker on TCP (port 0) that refuses dev
# evidence; no release when the audit log cannot be written; refusal to start without a valid
# policy or with an audit log that is broken or not a regular file; clean exit on SIGTERM and
# SIGINT.
# Env: MU (the mu binary), SHARED (the fixtures, default ../shared). asan-ok
set -u
. tests/lib.sh
CLIENT=${CLIENT:-$(dirname "$MU")/tests/tool_kbs_client}
MODEL=$SHARED/models/stories260K/stories260K.gguf
BROKER=
cleanup() {
	[ -n "$BROKER" ] && kill "$BROKER" 2>/dev/null
	rm -rf "$TMP"
}
trap cleanup EXIT
has() { # has DESCRIPTION FILE REGEX: passes when FILE has a line matching REGEX
	if grep -q -- "$3" "$2"; then ok; else bad "$1: no line matching '$3' in:"; sed 's/^/    | /' "$2" | head -20; fi
}
hasnt() { # hasnt DESCRIPTION FILE STRING: passes when FILE does not contain STRING
	if grep -q -F -- "$3" "$2"; then bad "$1: '$3' found in $2"; else ok; fi
}

# start_broker NAME ARGS...: starts mu kbs in the background, waits for its address; with
# FSIZE=N set, under `ulimit -f N` with SIGXFSZ ignored (a write past N blocks fails with EFBIG)
start_broker() {
	name=$1; shift
	if [ -n "${FSIZE:-}" ]; then
		(trap '' XFSZ; ulimit -f "$FSIZE" && exec "$MU" kbs "$@") 2>"$TMP/$name.err" &
	else
		"$MU" kbs "$@" 2>"$TMP/$name.err" &
	fi
	BROKER=$!
	i=0
	while [ $i -lt 100 ]; do
		ADDR=$(sed -n 's/^mu kbs: listening on //p' "$TMP/$name.err")
		[ -n "$ADDR" ] && return 0
		kill -0 "$BROKER" 2>/dev/null || break
		sleep 0.1
		i=$((i + 1))
	done
	bad "$name: broker did not start:"; sed 's/^/    | /' "$TMP/$name.err"
	return 1
}
# stop_broker SIGNAL: stops it and checks the exit status
stop_broker() {
	kill "-$1" "$BROKER"
	wait "$BROKER"
	rc=$?
	BROKER=
	if [ "$rc" -eq 0 ]; then ok; else bad "broker exited with $rc after SIG$1"; fi
}

# 1. Keys, sealed models, enclave configs, measurements, policy.
"$MU" keygen -o "$TMP/k1.key" >/dev/null 2>&1 || bad "keygen k1"
"$MU" keygen -o "$TMP/k2.key" >/dev/null 2>&1 || bad "keygen k2"
"$MU" keygen -o "$TMP/k3.key" >/dev/null 2>&1 || bad "keygen k3"
"$MU" seal --key "$TMP/k1.key" "$MODEL" "$TMP/m1.mus" >/dev/null 2>&1 || bad "seal m1"
"$MU" seal --key "$TMP/k3.key" "$MODEL" "$TMP/m3.mus" >/dev/null 2>&1 || bad "seal m3"
printf '{"egress_bytes_per_s": 1024, "egress_burst_bytes": 4096, "model": "m1.mus"}\n' >"$TMP/ok.json"
printf '{"egress_bytes_per_s": 8192}\n' >"$TMP/hi.json"
printf '{"model": "m1.mus"}\n' >"$TMP/none.json"
printf '{"egress_bytes_per_s": 1024, "egress_burst_bytes": 65536, "model": "m1.mus"}\n' >"$TMP/burst_max.json"
printf '{"egress_bytes_per_s": 100, "egress_burst_bytes": 4294967295, "model": "m1.mus"}\n' >"$TMP/burst_hi.json"
printf '{"egress_bytes_per_s": 1024, "egress_burst_bytes": 2000, "test_no_egress_limit": true}\n' >"$TMP/testkey.json"
BIN=$CLIENT # any file stands for the enclave binary
field() { sed -n "s/^$1 //p"; }
M1=$("$CLIENT" --measure --binary "$BIN" --config "$TMP/ok.json" --sealed "$TMP/m1.mus" | field measurement)
K1=$("$CLIENT" --measure --binary "$BIN" --config "$TMP/ok.json" --sealed "$TMP/m1.mus" | field key_id)
MHI=$("$CLIENT" --measure --binary "$BIN" --config "$TMP/hi.json" --sealed "$TMP/m1.mus" | field measurement)
MBMAX=$("$CLIENT" --measure --binary "$BIN" --config "$TMP/burst_max.json" --sealed "$TMP/m1.mus" | field measurement)
MBHI=$("$CLIENT" --measure --binary "$BIN" --config "$TMP/burst_hi.json" --sealed "$TMP/m1.mus" | field measurement)
MTEST=$("$CLIENT" --measure --binary "$BIN" --config "$TMP/testkey.json" --sealed "$TMP/m1.mus" | field measurement)
M3=$("$CLIENT" --measure --binary "$BIN" --config "$TMP/ok.json" --sealed "$TMP/m3.mus" | field measurement)
K3=$("$CLIENT" --measure --binary "$BIN" --config "$TMP/ok.json" --sealed "$TMP/m3.mus" | field key_id)
K2=$($PY -c "import hmac,hashlib,sys; print(hmac.new(open(sys.argv[1],'rb').read(), b'mu-seal key id v1', hashlib.sha256).hexdigest()[:32])" "$TMP/k2.key")
K1PY=$($PY -c "import hmac,hashlib,sys; print(hmac.new(open(sys.argv[1],'rb').read(), b'mu-seal key id v1', hashlib.sha256).hexdigest()[:32])" "$TMP/k1.key")
if [ -n "$K1" ] && [ "$K1" = "$K1PY" ]; then ok; else bad "key id in the sealed header ($K1) is not HMAC(key, label) ($K1PY)"; fi
K1SHA=$(sha256sum <"$TMP/k1.key" | cut -c1-64)
K1HEX=$(od -An -tx1 -v "$TMP/k1.key" | tr -d ' \n')
cat >"$TMP/policy.json" <<EOF
{"version": 1, "allow_dev_evidence": true, "nonce_ttl_ms": 1000, "max_egress_bytes_per_s": 4096,
 "max_egress_burst_bytes": 65536,
 "measurements": {
   "$M1": {"key_ids": ["$K1"], "note": "the test enclave"},
   "$MHI": {"key_ids": ["$K1"], "note": "same enclave, egress too high"},
   "$MBMAX": {"key_ids": ["$K1"], "note": "same enclave, burst at the maximum"},
   "$MBHI": {"key_ids": ["$K1"], "note": "same enclave, burst far above the maximum"},
   "$MTEST": {"key_ids": ["$K1"], "note": "a test-build config without an enclave-side limit"},
   "$M3": {"key_ids": ["$K3"], "note": "a model whose key this broker does not hold"}}}
EOF

# 2. The broker on a Unix socket.
start_broker dev --policy "$TMP/policy.json" --key "$TMP/k1.key" --key "$TMP/k2.key" \
	--listen "unix:$TMP/kbs.sock" --audit "$TMP/audit.log" --read-timeout-ms 2000 || exit 1
has "startup warns about dev evidence" "$TMP/dev.err" "WARNING: the policy allows dev evidence.*INSECURE"
has "startup warns about K3" "$TMP/dev.err" "warning: the policy allows key id $K3, but no --key holds it"

# run NAME [CLIENT FLAGS...]: one client run against $ADDR with the honest files unless
# overridden; output in $TMP/NAME.out
run() {
	name=$1; shift
	"$CLIENT" --connect "$ADDR" --binary "$BIN" --config "$TMP/ok.json" --sealed "$TMP/m1.mus" "$@" \
		>"$TMP/$name.out" 2>&1
	echo $? >"$TMP/$name.rc"
}
refused() { # refused NAME CODE [FLAGS...]: the (last) exchange is refused with CODE
	name=$1 code=$2; shift 2
	run "$name" "$@"
	if [ "$(cat "$TMP/$name.rc")" = 3 ] && tail -n 1 "$TMP/$name.out" | grep -q "^refused $code: "; then ok; else
		bad "$name: want refused $code, got rc $(cat "$TMP/$name.rc"):"; sed 's/^/    | /' "$TMP/$name.out"
	fi
}

run honest
if [ "$(cat "$TMP/honest.rc")" = 0 ]; then ok; else bad "honest exchange failed:"; cat "$TMP/honest.out"; fi
has "honest: key id" "$TMP/honest.out" "^key_id $K1\$"
has "honest: unwrapped key is the model key" "$TMP/honest.out" "^key_sha256 $K1SHA\$"
has "honest: marked insecure" "$TMP/honest.out" "^insecure true\$"
# the key also opens the model it sealed
"$MU" unseal --check --key "$TMP/k1.key" "$TMP/m1.mus" >/dev/null 2>&1 || bad "the released key does not unseal m1"

refused reuse nonce_reused --reuse-nonce
has "reuse: the first exchange succeeded" "$TMP/reuse.out" "^key_sha256 $K1SHA\$"
refused expired nonce_expired --wait-ms 1300
refused foreign nonce_foreign --foreign-nonce
refused low0 bad_pubkey --pubkey 0000000000000000000000000000000000000000000000000000000000000000
refused low1 bad_pubkey --pubkey 0100000000000000000000000000000000000000000000000000000000000000
refused low8 bad_pubkey --pubkey e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800
refused lowp bad_pubkey --pubkey ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f
refused lie measurement_mismatch --measurement "$MHI"
refused other_model model_not_allowed --key-id "$K2"
refused unknown_model unknown_model --sealed "$TMP/m3.mus"
refused egress_hi egress_cap_too_high --config "$TMP/hi.json"
refused egress_none egress_cap_missing --config "$TMP/none.json"
run burst_max --config "$TMP/burst_max.json"
has "burst at the policy's maximum: released" "$TMP/burst_max.out" "^key_sha256 $K1SHA\$"
refused burst_hi egress_cap_too_high --config "$TMP/burst_hi.json"
has "burst above the maximum: the refusal names it" "$TMP/burst_hi.out" "egress_burst_bytes 4294967295 is above the policy's max_egress_burst_bytes 65536"
run testkey --config "$TMP/testkey.json"
has "test-build config under a dev-evidence policy: released" "$TMP/testkey.out" "^key_sha256 $K1SHA\$"
refused other_binary measurement_not_allowed --binary "$MU"
refused format unknown_format --format tpm2
refused version unsupported_version --version 2
refused garbage bad_message --body '{"type":"evidence","format":"dev"'
refused unknown_field bad_message --body '{"type":"evidence","format":"dev","colour":"red"}'
refused oversize bad_frame --oversize

# 3. A stalled client holds its slot for one read timeout (2 s) and blocks nobody.
"$CLIENT" --connect "$ADDR" --stall-ms 6000 >"$TMP/stall.out" 2>&1 &
STALL=$!
sleep 0.2
t0=$(date +%s)
run during_stall
t1=$(date +%s)
if [ "$(cat "$TMP/during_stall.rc")" = 0 ] && [ $((t1 - t0)) -le 1 ]; then ok; else
	bad "an exchange during a stall took $((t1 - t0)) s, rc $(cat "$TMP/during_stall.rc")"
fi
wait "$STALL"
if grep -q "^closed after" "$TMP/stall.out"; then
	ms=$(sed -n 's/^closed after \([0-9]*\) ms/\1/p' "$TMP/stall.out")
	if [ "$ms" -ge 1500 ] && [ "$ms" -le 4500 ]; then ok; else bad "stalled client closed after $ms ms"; fi
else
	bad "stalled client not closed: $(cat "$TMP/stall.out")"
fi

# 4. Concurrent clients all get the key.
i=0 pids=
while [ $i -lt 8 ]; do
	run "par$i" &
	pids="$pids $!"
	i=$((i + 1))
done
for p in $pids; do wait "$p"; done
i=0 good=0
while [ $i -lt 8 ]; do
	grep -q "^key_sha256 $K1SHA\$" "$TMP/par$i.out" && good=$((good + 1))
	i=$((i + 1))
done
if [ $good -eq 8 ]; then ok; else bad "$good of 8 concurrent clients got the key"; fi

stop_broker TERM
has "stopped cleanly" "$TMP/dev.err" "^mu kbs: stopped"
if [ -e "$TMP/kbs.sock" ]; then bad "socket file left behind"; else ok; fi

# 5. The audit log: one chained record per decision, exact fields, the right codes, no key.
"$PY" - "$TMP/audit.log" >"$TMP/audit.check" 2>&1 <<'PY'
import json, sys
keys = ["seq", "ts_ms", "prev", "event", "conn", "peer", "decision", "code", "format", "insecure", "nonce",
        "measurement", "key_id"]
codes = []
for line in open(sys.argv[1], encoding="utf-8"):
    d = json.loads(line)
    assert list(d) == keys, list(d)
    assert d["event"] == "kbs_decision", d
    assert d["decision"] == ("release" if d["code"] == "ok" else "refuse"), d
    assert d["peer"].startswith("unix:pid="), d
    if d["format"] == "dev":
        assert d["insecure"] is True, d
    codes.append(d["code"])
print(" ".join(codes))
PY
if [ $? -eq 0 ]; then ok; else bad "audit log malformed:"; sed 's/^/    | /' "$TMP/audit.check"; fi
"$MU" audit verify "$TMP/audit.log" >"$TMP/verify.out" 2>&1 && ok || bad "audit verify: $(cat "$TMP/verify.out")"
sed '3s/"decision":"refuse"/"decision":"release"/; 3s/"decision":"release","code":"ok"/"decision":"refuse","code":"ok"/' \
	"$TMP/audit.log" >"$TMP/edited.log"
if cmp -s "$TMP/audit.log" "$TMP/edited.log"; then bad "the edit of line 3 changed nothing"; fi
"$MU" audit verify "$TMP/edited.log" >"$TMP/verify.out" 2>&1
rc=$?
if [ "$rc" -eq 1 ] && grep -q "line 4" "$TMP/verify.out"; then ok; else
	bad "edited audit log: rc $rc, $(cat "$TMP/verify.out")"
fi
for c in nonce_reused nonce_expired nonce_foreign bad_pubkey measurement_mismatch model_not_allowed unknown_model \
	egress_cap_too_high egress_cap_missing measurement_not_allowed unknown_format unsupported_version \
	bad_message bad_frame; do
	has "audit line for $c" "$TMP/audit.log" "\"decision\":\"refuse\",\"code\":\"$c\""
done
n_release=$(grep -c '"decision":"release"' "$TMP/audit.log")
# honest, reuse's first exchange, burst_max, testkey, during_stall, 8 concurrent
if [ "$n_release" -eq 13 ]; then ok; else bad "$n_release release lines, want 13"; fi
n_lines=$(wc -l <"$TMP/audit.log")
if [ "$n_lines" -eq $((n_release + 19)) ]; then ok; else bad "$n_lines audit lines, want $((n_release + 19))"; fi
hasnt "no key in the audit log" "$TMP/audit.log" "$K1HEX"
hasnt "no key on stderr" "$TMP/dev.err" "$K1HEX"
has "stderr marks dev releases insecure" "$TMP/dev.err" "release key_id $K1 .*INSECURE"

# 6. A broker on TCP port 0 whose policy refuses dev evidence; stopped with SIGINT.
sed 's/"allow_dev_evidence": true/"allow_dev_evidence": false/' "$TMP/policy.json" >"$TMP/strict.json"
start_broker tcp --policy "$TMP/strict.json" --key "$TMP/k1.key" --listen tcp:127.0.0.1:0 || exit 1
case $ADDR in tcp:127.0.0.1:[1-9]*) ok ;; *) bad "tcp address '$ADDR'" ;; esac
refused strict format_not_allowed
has "strict: the refusal says insecure" "$TMP/strict.out" "INSECURE"
refused strict_testkey format_not_allowed --config "$TMP/testkey.json"
stop_broker INT
has "SIGINT noticed" "$TMP/tcp.err" "SIGINT, stopping"

# 7. An audit log that cannot be written: nothing is released. A copy of the valid log from 5,
# with the file size limit below its length: it opens and verifies, every commit fails (EFBIG),
# and stderr (far shorter) is still written. ulimit -f counts 512- or 1024-byte blocks.
cp "$TMP/audit.log" "$TMP/full.log"
if [ "$(wc -c <"$TMP/full.log")" -gt 8192 ]; then
	FSIZE=4 start_broker full --policy "$TMP/policy.json" --key "$TMP/k1.key" --listen "unix:$TMP/full.sock" \
		--audit "$TMP/full.log" || exit 1
	refused full internal_error
	has "audit failure reported" "$TMP/full.err" "audit log write failed"
	stop_broker TERM
	if cmp -s "$TMP/audit.log" "$TMP/full.log"; then ok; else bad "the unwritable log changed"; fi
else
	bad "the audit log from 5 is too short for the file size test"
fi

# 8. No broker without a valid policy (or with bad keys).
nostart() { # nostart DESCRIPTION WANT_RC REGEX ARGS...
	d=$1 want=$2 re=$3; shift 3
	"$MU" kbs "$@" >"$TMP/nostart.out" 2>&1 </dev/null
	rc=$?
	if [ "$rc" -eq "$want" ] && grep -q -- "$re" "$TMP/nostart.out"; then ok; else
		bad "$d: rc $rc (want $want), output:"; sed 's/^/    | /' "$TMP/nostart.out"
	fi
}
L="--listen unix:$TMP/never.sock"
nostart "no --policy" 2 "required" --key "$TMP/k1.key" $L
nostart "missing policy" 1 "refusing to start" --policy "$TMP/nope.json" --key "$TMP/k1.key" $L
nostart "unreadable policy (a directory)" 1 "refusing to start" --policy "$TMP" --key "$TMP/k1.key" $L
if [ "$(id -u)" != 0 ]; then # root reads anything
	cp "$TMP/policy.json" "$TMP/locked.json" && chmod 000 "$TMP/locked.json"
	nostart "unreadable policy (mode 000)" 1 "refusing to start" --policy "$TMP/locked.json" --key "$TMP/k1.key" $L
fi
printf '{"version": 1, "allow_dev_evidence": true' >"$TMP/trunc.json"
nostart "truncated policy" 1 "refusing to start" --policy "$TMP/trunc.json" --key "$TMP/k1.key" $L
sed 's/"version": 1,/"version": 1, "colour": "red",/' "$TMP/policy.json" >"$TMP/unknown.json"
nostart "policy with an unknown key" 1 "unknown field \"colour\"" --policy "$TMP/unknown.json" --key "$TMP/k1.key" $L
sed 's/"max_egress_burst_bytes": 65536/"max_egress_burst_bytes": 0/' "$TMP/policy.json" >"$TMP/burst0.json"
nostart "policy with max_egress_burst_bytes 0" 1 "max_egress_burst_bytes" --policy "$TMP/burst0.json" --key "$TMP/k1.key" $L
sed 's/"max_egress_burst_bytes": 65536/"max_egress_burst_bytes": "65536"/' "$TMP/policy.json" >"$TMP/burst_s.json"
nostart "policy with max_egress_burst_bytes a string" 1 "max_egress_burst_bytes" --policy "$TMP/burst_s.json" --key "$TMP/k1.key" $L
printf '' >"$TMP/empty.json"
nostart "empty policy" 1 "refusing to start" --policy "$TMP/empty.json" --key "$TMP/k1.key" $L
head -c 31 "$TMP/k1.key" >"$TMP/short.key"
nostart "short key file" 1 "exactly 32 raw bytes" --policy "$TMP/policy.json" --key "$TMP/short.key" $L
nostart "same key twice" 1 "already loaded" --policy "$TMP/policy.json" --key "$TMP/k1.key" --key "$TMP/k1.key" $L
nostart "no key" 2 "required" --policy "$TMP/policy.json" $L
nostart "broken audit chain" 1 "refusing to continue a broken chain" --policy "$TMP/policy.json" \
	--key "$TMP/k1.key" --audit "$TMP/edited.log" $L
nostart "audit log not a regular file" 1 "not a regular file" --policy "$TMP/policy.json" --key "$TMP/k1.key" \
	--audit /dev/null $L
nostart "bad listen address" 1 "must start with tcp: or unix:" --policy "$TMP/policy.json" --key "$TMP/k1.key" \
	--listen "http://x"
if [ -e "$TMP/never.sock" ]; then bad "a broker that refused to start left a socket"; else ok; fi

finish
