#!/bin/sh
# Command-level tests of mu-enclave in process mode, driven over its Unix socket by
# build/tests/tool_wire (which plays the proxy, relaying attestation to a real `mu kbs`):
#   1. the CLI and the config: --help, --measure (checked against tool_kbs_client), unknown
#      members named, missing or out-of-range values refused, test-only members refused by the
#      release binary;
#   2. before unlock: generate, unlock and cancel are bad_state, hello v2 unsupported_version,
#      framing errors close, a half frame then a stall gets timeout and close;
#   3. unlock: keys wrapped (in Python, independently of the C code) for another key pair, for
#      another measurement, under another key id, or another model's key are unlock_failed
#      (the first ones before the model was ever loaded, the last one after); the right one is
#      ready;
#   4. the text: greedy for three prompts, a prompt of several prefill chunks, two chats (one
#      with a system message), two seeded sampled requests and a generation that stops at BOS
#      equal `mu run` byte for byte; later connections re-attest without reloading;
#   5. the sandbox: Seccomp 2, NoNewPrivs 1, core limit 0, not dumpable;
#   6. the bad-input table of docs/protocol.md on a ready connection, each with its code, the
#      connection still usable afterwards; re-hello on a ready connection;
#   7. the test build: @emit sends raw bytes, @slow with busy, a foreign cancel ignored and its
#      own cancel obeyed, a cancel during prompt evaluation (@prefill pauses between prompt
#      chunks; the text is mu run's when not cancelled), a peer vanishing mid-request, and
#      @flood held to the egress cap;
#   8. protocol v0 with tests/v0_client.py: the same greedy text as mu run; a wrong
#      pre-shared key is refused;
#   9. no prompt, generated text, key or sanitizer report in the enclaves' stderr.
# Also the device channel (dev:PATH) on a pty standing in for a virtio-serial port. asan-ok
set -u
. tests/lib.sh
. tests/chain.sh
MODEL=$SHARED/models/stories260K/stories260K.gguf
KBS_CLIENT=$BIN_DIR/tests/tool_kbs_client

has() { # has DESCRIPTION FILE REGEX
	if grep -q -- "$3" "$2"; then ok; else bad "$1: no line matching '$3' in:"; sed 's/^/    | /' "$2" | head -20; fi
}
hasnt() { # hasnt DESCRIPTION FILE STRING
	if grep -q -F -- "$3" "$2"; then bad "$1: '$3' found in $2"; else ok; fi
}
# config NAME MEMBERS: $TMP/NAME.json with the sealed model and a socket $TMP/NAME.sock
config() {
	printf '{"model": "%s", "channel": "unix:%s", %s}\n' "$TMP/model.mus" "$TMP/$1.sock" "$2" >"$TMP/$1.json"
}
measure() { "$1" --config "$TMP/$2.json" --measure | sed -n 's/^measurement //p'; }

# ---- 1. CLI and config ----
chain_seal "$MODEL" || bad "seal: $(cat "$TMP/seal.out")"
"$MU" keygen -o "$TMP/other.key" >/dev/null 2>&1 || bad "keygen other"
"$MU" keygen -o "$TMP/psk.key" >/dev/null 2>&1 || bad "keygen psk"
K=$(od -An -v -tx1 -j56 -N16 "$TMP/model.mus" | tr -d ' \n')
config main '"egress_bytes_per_s": 1000000, "egress_burst_bytes": 65536, "max_tokens": 256, "read_timeout_ms": 1000'
config test '"egress_bytes_per_s": 2000, "egress_burst_bytes": 2000, "max_tokens": 1000, "read_timeout_ms": 1000'
printf '{"model": "%s", "channel": "unix:%s", "egress_bytes_per_s": 1000000, "v0_unlock_key_file": "%s"}\n' \
	"$TMP/model.mus" "$TMP/v0.sock" "$TMP/psk.key" >"$TMP/v0.json"

"$ENCLAVE" --help >"$TMP/help.out" 2>&1 && ok || bad "--help failed"
has "--help" "$TMP/help.out" "usage: mu-enclave --config FILE"
"$ENCLAVE" >/dev/null 2>&1
[ $? -eq 2 ] && ok || bad "no arguments: want exit 2"
"$ENCLAVE" --config "$TMP/main.json" --measure >"$TMP/measure.out" 2>&1 || bad "--measure failed"
has "--measure: measurement" "$TMP/measure.out" "^measurement [0-9a-f]\{64\}\$"
has "--measure: key id of the sealed header" "$TMP/measure.out" "^key_id $K\$"
M_MAIN=$(measure "$ENCLAVE" main)
M_TEST=$(measure "$ENCLAVE_TEST" test)
[ ${#M_TEST} -eq 64 ] && [ "$M_TEST" != "$(measure "$ENCLAVE" test)" ] && ok ||
	bad "the test build must measure differently from the release build"
if [ -x "$KBS_CLIENT" ]; then # an independent computation of the same measurement
	M_TOOL=$("$KBS_CLIENT" --measure --binary "$ENCLAVE" --config "$TMP/main.json" --sealed "$TMP/model.mus" |
		sed -n 's/^measurement //p')
	[ "$M_TOOL" = "$M_MAIN" ] && ok || bad "measurement $M_MAIN, tool_kbs_client says $M_TOOL"
fi

bad_config() { # bad_config DESCRIPTION WANT-IN-STDERR JSON [BINARY]
	printf '%s\n' "$3" >"$TMP/bad.json"
	"${4:-$ENCLAVE}" --config "$TMP/bad.json" --measure >"$TMP/bad.out" 2>&1
	rc=$?
	if [ $rc -eq 1 ] && grep -q -F -- "$2" "$TMP/bad.out"; then ok; else
		bad "$1: want exit 1 and '$2', got $rc: $(cat "$TMP/bad.out")"
	fi
}
BASE="\"model\": \"$TMP/model.mus\", \"channel\": \"unix:$TMP/x.sock\""
bad_config "unknown member" '"colour"' "{$BASE, \"egress_bytes_per_s\": 10, \"colour\": 1}"
bad_config "no egress cap" 'egress_bytes_per_s' "{$BASE}"
bad_config "egress cap 0" 'egress_bytes_per_s' "{$BASE, \"egress_bytes_per_s\": 0}"
bad_config "egress cap a string" 'egress_bytes_per_s' "{$BASE, \"egress_bytes_per_s\": \"10\"}"
bad_config "max_tokens too large" 'max_tokens' "{$BASE, \"egress_bytes_per_s\": 10, \"max_tokens\": 65537}"
bad_config "no channel" 'channel' "{\"model\": \"$TMP/model.mus\", \"egress_bytes_per_s\": 10}"
bad_config "bad channel" 'channel' "{\"model\": \"$TMP/model.mus\", \"channel\": \"udp:1\", \"egress_bytes_per_s\": 10}"
bad_config "name not printable" '"name"' "{$BASE, \"egress_bytes_per_s\": 10, \"name\": \"a\\u0001\"}"
bad_config "duplicate member" 'duplicate' "{$BASE, \"egress_bytes_per_s\": 10, \"egress_bytes_per_s\": 20}"
bad_config "trailing bytes" 'JSON' "{$BASE, \"egress_bytes_per_s\": 10} x"
bad_config "v0 key file without v0" 'v0_unlock_key_file' "{$BASE, \"egress_bytes_per_s\": 10, \"v0_unlock_key_file\": \"k\"}"
bad_config "test member in the release build" '"test_no_egress_limit"' \
	"{$BASE, \"egress_bytes_per_s\": 10, \"test_no_egress_limit\": true}"
bad_config "not a sealed model" 'magic' "{\"model\": \"$MODEL\", \"channel\": \"unix:$TMP/x.sock\", \"egress_bytes_per_s\": 10}"
printf '{%s, "egress_bytes_per_s": 10, "test_no_egress_limit": true}\n' "$BASE" >"$TMP/t.json"
"$ENCLAVE_TEST" --config "$TMP/t.json" --measure >/dev/null 2>&1 && ok || bad "the test build refuses test_no_egress_limit"
"$ENCLAVE" --config "$TMP/v0.json" --protocol v0 --measure >/dev/null 2>&1 && ok || bad "v0 config refused"
printf '{%s, "egress_bytes_per_s": 10}\n' "$BASE" >"$TMP/nokey.json"
"$ENCLAVE" --config "$TMP/nokey.json" --protocol v0 --measure >"$TMP/nokey.out" 2>&1
[ $? -eq 1 ] && grep -q v0_unlock_key_file "$TMP/nokey.out" && ok || bad "--protocol v0 without a key file: $(cat "$TMP/nokey.out")"

# a pty stands for a virtio-serial port: the enclave opens the slave (dev:PATH); a relay puts
# one Unix socket connection at a time through the master
cat >"$TMP/ptyrelay.py" <<'EOF'
import os, select, socket, sys, tty
sock, pathfile = sys.argv[1:3]
m, s = os.openpty()
tty.setraw(s)
with open(pathfile + ".tmp", "w") as f:
    f.write(os.ttyname(s))
os.rename(pathfile + ".tmp", pathfile)
l = socket.socket(socket.AF_UNIX)
l.bind(sock)
l.listen(1)
while True:
    c, _ = l.accept()
    while True:
        r, _, _ = select.select([c, m], [], [])
        if c in r:
            d = c.recv(65536)
            if not d:
                break
            os.write(m, d)
        if m in r:
            c.sendall(os.read(m, 65536))
    c.close()
EOF
$PY "$TMP/ptyrelay.py" "$TMP/relay.sock" "$TMP/pty.path" 2>"$TMP/relay.err" &
CHAIN_PIDS="$CHAIN_PIDS $!"
i=0
while [ ! -s "$TMP/pty.path" ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
printf '{"model": "%s", "channel": "dev:%s", "egress_bytes_per_s": 1000000}\n' "$TMP/model.mus" "$(cat "$TMP/pty.path")" \
	>"$TMP/dev.json"
M_DEV=$(measure "$ENCLAVE" dev)

# ---- the broker (dev evidence; an egress cap well above the enclaves') and the enclaves ----
{
	printf '{"version": 1, "allow_dev_evidence": true, "nonce_ttl_ms": 10000,'
	printf ' "max_egress_bytes_per_s": 1000000, "measurements": {'
	printf '"%s": {"key_ids": ["%s"], "note": "main"}, "%s": {"key_ids": ["%s"], "note": "test build"},' \
		"$M_MAIN" "$K" "$M_TEST" "$K"
	printf ' "%s": {"key_ids": ["%s"], "note": "dev channel"}}}\n' "$M_DEV" "$K"
} >"$TMP/policy.json"
"$MU" kbs --policy "$TMP/policy.json" --key "$TMP/model.key" --listen "unix:$TMP/kbs.sock" 2>"$TMP/kbs.err" &
CHAIN_PIDS="$CHAIN_PIDS $!"
wait_for "$TMP/kbs.err" "listening on" || bad "key broker did not start"
KBS=unix:$TMP/kbs.sock
chain_start_enclave "$ENCLAVE" main || bad "enclave did not start"
MAIN_PID=$ENCLAVE_PID
has "startup line" "$TMP/main.err" "^mu-enclave: listening on unix:$TMP/main.sock (measurement $M_MAIN)\$"
E=unix:$TMP/main.sock

# wire NAME ACTIONS...: tool_wire against the main enclave; stdout in $TMP/NAME.out, stderr .err
wire() {
	name=$1
	shift
	"$WIRE" --connect "$E" --timeout-ms 8000 "$@" >"$TMP/$name.out" 2>"$TMP/$name.err"
	echo $? >"$TMP/$name.rc"
}
code_is() { # code_is DESCRIPTION NAME CODE: the first line of NAME.out is an error with CODE
	if head -n 1 "$TMP/$2.out" | grep -q "\"type\":\"error\".*\"code\":\"$3\""; then ok; else
		bad "$1: want $3, got: $(head -c 300 "$TMP/$2.out") $(head -c 300 "$TMP/$2.err")"
	fi
}
closes() { # closes DESCRIPTION NAME: NAME.out ends with "closed after"
	if grep -q "^closed after" "$TMP/$2.out"; then ok; else bad "$1: the connection did not close: $(cat "$TMP/$2.out")"; fi
}

# ---- 2. before any unlock ----
G='"type":"generate","id":"g1","prompt":"Once","max_tokens":5'
wire pre_gen --send "{$G}" --recv 1
code_is "generate before ready" pre_gen bad_state
grep -q '"id":"g1"' "$TMP/pre_gen.out" && ok || bad "bad_state for a generate carries its id"
wire pre_unlock --send "{\"type\":\"unlock\",\"key_id\":\"$K\",\"kbs_pub\":\"$(printf '%064d' 9)\",\"wrapped_key\":\"$(printf '%096d' 0)\"}" --recv 1
code_is "unlock before hello" pre_unlock bad_state
wire pre_v2 --send "{\"type\":\"hello\",\"version\":2,\"nonce\":\"$(printf '%064d' 0)\"}" --recv 1
code_is "hello version 2" pre_v2 unsupported_version
wire pre_cancel --send '{"type":"cancel","id":"g1"}' --recv 1
code_is "cancel before ready" pre_cancel bad_state
wire pre_empty --raw-hex 00000000 --recv 1 --expect-close 2000
code_is "empty frame" pre_empty bad_frame
closes "empty frame" pre_empty
wire pre_big --raw-hex 00100001 --recv 1 --expect-close 2000
code_is "max+1 frame" pre_big frame_too_large
closes "max+1 frame" pre_big
wire pre_stall --raw-hex 000000 --recv 1 --expect-close 3000
code_is "half a header, then a stall" pre_stall timeout
closes "half a header, then a stall" pre_stall
wire pre_stall2 --raw-hex 0000000a7b22 --recv 1 --expect-close 3000
code_is "half a body, then a stall" pre_stall2 timeout
closes "half a body, then a stall" pre_stall2
# a frame split in two parts within the deadline is fine
wire pre_split --raw-hex 000000137b2274797065223a --sleep 300 --raw-hex 226361726e6976616c227d --recv 1
code_is "a frame in two parts" pre_split unknown_type

# ---- 3. unlock with keys wrapped independently in Python ----
# unlock_cases CASE...: one connection; for each case hello -> evidence -> unlock, printing
# "CASE TYPE CODE" (CODE "-" for non-errors); "generate" sends a short generate instead.
unlock_cases() {
	$PY - "$TMP/main.sock" "$TMP/model.key" "$TMP/other.key" "$M_MAIN" "$K" "$@" <<'EOF'
import json, os, socket, struct, sys
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
path, key_file, other_file, meas_hex, kid_hex = sys.argv[1:6]
key, other = open(key_file, "rb").read(), open(other_file, "rb").read()
meas, kid = bytes.fromhex(meas_hex), bytes.fromhex(kid_hex)
LABEL = b"mu-kbs wrap v1"
s = socket.socket(socket.AF_UNIX)
s.connect(path)
s.settimeout(10)
def recv_exact(n):
    b = b""
    while len(b) < n:
        c = s.recv(n - len(b))
        if not c:
            raise SystemExit("closed")
        b += c
    return b
def rpc(obj):
    body = json.dumps(obj, separators=(",", ":")).encode()
    s.sendall(struct.pack(">I", len(body)) + body)
    (n,) = struct.unpack(">I", recv_exact(4))
    return json.loads(recv_exact(n))
def raw(k):
    return k.public_bytes(Encoding.Raw, PublicFormat.Raw)
def wrap(model_key, key_id, enclave_pub, nonce, measurement):
    e = X25519PrivateKey.generate()
    shared = e.exchange(X25519PublicKey.from_public_bytes(enclave_pub))
    k = HKDF(hashes.SHA256(), 32, nonce, LABEL + raw(e.public_key()) + enclave_pub + measurement).derive(shared)
    return raw(e.public_key()), AESGCM(k).encrypt(bytes(12), model_key, LABEL + key_id)
for case in sys.argv[6:]:
    if case == "generate":
        r = rpc({"type": "generate", "id": "w", "prompt": "Once", "max_tokens": 1})
        print(case, r["type"], r.get("code", "-"))
        continue
    nonce = os.urandom(32)
    ev = rpc({"type": "hello", "version": 1, "nonce": nonce.hex()})
    ok = (ev["type"] == "evidence" and ev["format"] == "dev" and ev["nonce"] == nonce.hex()
          and ev["measurement"] == meas_hex and ev["key_id"] == kid_hex and len(ev["pubkey"]) == 64)
    if not ok:
        print(case, "bad-evidence", json.dumps(ev)[:200])
        continue
    pub = bytes.fromhex(ev["pubkey"])
    mk, wid, aid, to, m = key, kid, kid, pub, meas
    if case == "foreign_pubkey":
        to = raw(X25519PrivateKey.generate().public_key())
    elif case == "other_measurement":
        m = bytes(32)
    elif case == "other_key_id":
        wid = aid = os.urandom(16)
    elif case == "other_model_key":
        mk = other
    eph, ct = wrap(mk, wid, to, nonce, m)
    r = rpc({"type": "unlock", "key_id": aid.hex(), "kbs_pub": eph.hex(), "wrapped_key": ct.hex()})
    print(case, r["type"], r.get("code", "-"))
EOF
}
unlock_cases foreign_pubkey other_measurement other_key_id other_model_key generate right generate \
	>"$TMP/unlock.out" 2>&1
for c in foreign_pubkey other_measurement other_key_id other_model_key; do
	has "unlock, $c, before the first load" "$TMP/unlock.out" "^$c error unlock_failed\$"
done
has "unlock refused leaves generate refused" "$TMP/unlock.out" "^generate error bad_state\$"
has "unlock with the right wrap" "$TMP/unlock.out" "^right ready -\$"
has "generate after the right unlock" "$TMP/unlock.out" "^generate token -\$"
unlock_cases other_model_key foreign_pubkey right generate >"$TMP/unlock2.out" 2>&1
has "unlock, another model's key, once loaded" "$TMP/unlock2.out" "^other_model_key error unlock_failed\$"
has "unlock, foreign key pair, once loaded" "$TMP/unlock2.out" "^foreign_pubkey error unlock_failed\$"
has "re-attestation on a new connection" "$TMP/unlock2.out" "^right ready -\$"

# ---- 4. the same text as mu run ----
# same DESCRIPTION GENERATE-MEMBERS PROMPT MU-RUN-ARGS...
same() {
	d=$1 members=$2 prompt=$3
	shift 3
	wire same --attest-kbs "$KBS" --send "{\"type\":\"generate\",\"id\":\"s\",$members}" --text-until-done
	"$MU" run -m "$MODEL" --no-prompt -p "$prompt" "$@" >"$TMP/run.out" 2>"$TMP/run.err" || { bad "$d: mu run failed"; return; }
	printf '\n' >>"$TMP/same.out" # mu run ends with a newline
	if grep -q '^{"type":"done"' "$TMP/same.err" && cmp -s "$TMP/same.out" "$TMP/run.out" && [ -s "$TMP/run.out" ]; then ok; else
		bad "$d: enclave and mu run differ (rc $(cat "$TMP/same.rc"))"
		printf '    enclave: %s\n    mu run:  %s\n    stderr:  %s\n' "$(head -c 200 "$TMP/same.out")" \
			"$(head -c 200 "$TMP/run.out")" "$(tail -n 2 "$TMP/same.err")"
	fi
}
same "greedy story" '"prompt":"Once upon a time","max_tokens":200' "Once upon a time" -n 200 --temp 0
same "greedy, Lily" '"prompt":"Lily","max_tokens":120' "Lily" -n 120 --temp 0
same "greedy, the dog" '"prompt":"The dog","max_tokens":80,"temperature":0' "The dog" -n 80 --temp 0
has "done: finish_reason and usage" "$TMP/same.err" '"type":"done","id":"s","finish_reason":"length","usage":{"prompt_tokens":[0-9]*,"completion_tokens":80}'
# about 40 prompt tokens: evaluated in three chunks (MU_ENCLAVE_PREFILL_CHUNK = 16), mu run in one call
PLONG="Once upon a time there was a little cat. She liked to play in the park with her friends. One day she saw a big red ball."
same "greedy, a prompt of several chunks" "\"prompt\":\"$PLONG\",\"max_tokens\":60" "$PLONG" -n 60 --temp 0
has "several chunks: the prompt is longer than two chunks" "$TMP/same.err" '"prompt_tokens":\(3[3-9]\|[4-9][0-9]\|[1-9][0-9][0-9]\),'
same "chat" '"messages":[{"role":"user","content":"hello"}],"max_tokens":60' "hello" --chat -n 60 --temp 0
same "chat with a system message" \
	'"messages":[{"role":"system","content":"Be brief."},{"role":"user","content":"Tell me a story"}],"max_tokens":50' \
	"Tell me a story" --system "Be brief." -n 50 --temp 0
same "sampled, seed 7" '"prompt":"Tom","max_tokens":100,"temperature":0.8,"top_k":40,"top_p":0.95,"seed":7' "Tom" \
	-n 100 --temp 0.8 --top-k 40 --top-p 0.95 --min-p 0 --seed 7
same "sampled, seed 3" '"prompt":"A bird","max_tokens":60,"temperature":1.2,"top_p":0.9,"seed":3' "A bird" \
	-n 60 --temp 1.2 --top-k 0 --top-p 0.9 --min-p 0 --seed 3
same "stops where mu run stops (BOS)" '"prompt":"Lily","max_tokens":256' "Lily" -n 256 --temp 0
has "done: finish_reason stop" "$TMP/same.err" '"type":"done","id":"s","finish_reason":"stop"'
grep -q "stopped: start of a new text" "$TMP/run.err" && ok || bad "mu run did not stop early: $(tail -n 1 "$TMP/run.err")"
n=$(grep -c "unsealed into" "$TMP/main.err")
[ "$n" = 1 ] && ok || bad "the model was unsealed $n times (want once)"
n=$(grep -c "opened" "$TMP/main.err")
[ "$n" -ge 15 ] && ok || bad "only $n connections logged"

# ---- 5. the sandbox ----
st=/proc/$MAIN_PID/status
has "seccomp filter" "$st" "^Seccomp:[[:space:]]*2\$"
has "no new privileges" "$st" "^NoNewPrivs:[[:space:]]*1\$"
has "no core files" "/proc/$MAIN_PID/limits" "^Max core file size *0 *0 "
# a non-dumpable process has its /proc files owned by root: visible when the enclave is not root
if [ "$(id -u)" != 0 ]; then
	[ "$(stat -c %u "$st")" = 0 ] && ok || bad "the enclave is dumpable (its /proc files are not root's)"
elif command -v setpriv >/dev/null 2>&1; then
	mkdir -p "$TMP/nobody" && chmod 777 "$TMP/nobody" && cp "$TMP/model.mus" "$TMP/nobody/" && chmod 644 "$TMP/nobody/model.mus"
	printf '{"model": "%s", "channel": "unix:%s", "egress_bytes_per_s": 100}\n' "$TMP/nobody/model.mus" \
		"$TMP/nobody/e.sock" >"$TMP/nobody/e.json"
	chmod 644 "$TMP/nobody/e.json"
	setpriv --reuid=65534 --regid=65534 --clear-groups "$ENCLAVE" --config "$TMP/nobody/e.json" 2>"$TMP/nobody.err" &
	NB=$!
	CHAIN_PIDS="$CHAIN_PIDS $NB"
	if wait_for "$TMP/nobody.err" "listening on" 50; then
		[ "$(stat -c %u "/proc/$NB/status")" = 0 ] && ok || bad "the enclave is dumpable (its /proc files are not root's)"
	else
		bad "enclave as nobody did not start: $(cat "$TMP/nobody.err")"
	fi
	chain_stop "$NB"
fi

# ---- 6. bad input on a ready connection ----
LONG=$TMP/long.json
$PY -c 'import sys; sys.stdout.write("{\"type\":\"generate\",\"id\":\"long\",\"max_tokens\":5,\"prompt\":\"" + "a big dog. " * 3000 + "\"}")' >"$LONG"
GB='"type":"generate","id":"b"'
wire table --attest-kbs "$KBS" \
	--send-hex 7b --recv 1 \
	--send '{"type":"generate","x":[[[[[1]]]]]}' --recv 1 \
	--send '{"type":"generate","type":"generate"}' --recv 1 \
	--send "{$GB,\"prompt\":\"x\",\"max_tokens\":\"ten\"}" --recv 1 \
	--send '{"type":"launch"}' --recv 1 \
	--send-hex "$(hexs '{"type":"generate","id":"u","prompt":"')ff$(hexs '","max_tokens":5}')" --recv 1 \
	--send "{$GB,\"prompt\":\"x\",\"max_tokens\":0}" --recv 1 \
	--send "{$GB,\"prompt\":\"x\",\"max_tokens\":1000000}" --recv 1 \
	--send '{"type":"generate","id":"c","prompt":"x","max_tokens":300}' --recv 1 \
	--send "{$GB,\"prompt\":\"x\",\"max_tokens\":5,\"temperature\":200}" --recv 1 \
	--send "{$GB,\"prompt\":\"x\",\"max_tokens\":5,\"top_p\":0}" --recv 1 \
	--send "{$GB,\"prompt\":\"x\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"max_tokens\":5}" --recv 1 \
	--send "{$GB,\"messages\":[{\"role\":\"robot\",\"content\":\"x\"}],\"max_tokens\":5}" --recv 1 \
	--send "{\"type\":\"unlock\",\"key_id\":\"$K\",\"kbs_pub\":\"$(printf '%064d' 9)\",\"wrapped_key\":\"$(printf '%096d' 0)\"}" --recv 1 \
	--send '{"type":"token","id":"t","text":"x"}' --recv 1 \
	--send-file "$LONG" --recv 1 \
	--send '{"type":"cancel","id":"nothing-running"}' \
	--send '{"type":"error","code":"internal","message":"ignored"}' \
	--send '{"type":"generate","id":"ok","prompt":"Once","max_tokens":3}' --recv-until done
sed -n 's/.*"code":"\([a-z0-9_]*\)".*/\1/p' "$TMP/table.out" | tr '\n' ' ' >"$TMP/codes"
WANT="bad_json bad_json bad_json bad_message unknown_type invalid_utf8 bad_request bad_request bad_request bad_request bad_request bad_message bad_message bad_state bad_state prompt_too_long "
[ "$(cat "$TMP/codes")" = "$WANT" ] && ok || bad "bad-input table: want '$WANT', got '$(cat "$TMP/codes")'"
grep -q '"type":"error","id":"c","code":"bad_request","message":"max_tokens is above' "$TMP/table.out" && ok ||
	bad "max_tokens above the config's: no bad_request with the id"
grep -q '"id":"long","code":"prompt_too_long"' "$TMP/table.out" && ok || bad "prompt_too_long carries the id"
tail -n 1 "$TMP/table.out" | grep -q '"type":"done","id":"ok"' && ok || bad "the connection is usable after the table: $(tail -n 2 "$TMP/table.out")"
[ "$(grep -c '"type":"token","id":"ok"' "$TMP/table.out")" -ge 1 ] && ok || bad "no tokens after the table"
# framing errors after attestation close the connection
wire r_empty --attest-kbs "$KBS" --raw-hex 00000000 --recv 1 --expect-close 2000
code_is "empty frame, ready" r_empty bad_frame
closes "empty frame, ready" r_empty
wire r_stall --attest-kbs "$KBS" --raw-hex 00000010 --recv 1 --expect-close 3000
code_is "stall, ready" r_stall timeout
closes "stall, ready" r_stall
# re-hello on a ready connection: fresh evidence, and generate refused until the next unlock
wire rehello --attest-kbs "$KBS" --send "{\"type\":\"hello\",\"version\":1,\"nonce\":\"$(printf '%064d' 7)\"}" --recv 1 \
	--send "{$G}" --recv 1
head -n 1 "$TMP/rehello.out" | grep -q "\"type\":\"evidence\".*\"nonce\":\"$(printf '%064d' 7)\"" && ok ||
	bad "re-hello: no evidence for the new nonce: $(head -c 300 "$TMP/rehello.out")"
sed -n 2p "$TMP/rehello.out" | grep -q '"code":"bad_state"' && ok || bad "re-hello: generate not refused: $(cat "$TMP/rehello.out")"
# the main enclave survived all of it
kill -0 "$MAIN_PID" 2>/dev/null && ok || bad "the enclave died"

# ---- 7. the test build ----
chain_start_enclave "$ENCLAVE_TEST" test || bad "test enclave did not start"
E=unix:$TMP/test.sock
wire emit --attest-kbs "$KBS" --send '{"type":"generate","id":"e","prompt":"@emit:41ff42,22,5c0a,,e282","max_tokens":10}' \
	--recv-until done
printf '{"type":"token","id":"e","text":"A\377B"}\n' >"$TMP/emit.want1"
sed -n 1p "$TMP/emit.out" | cmp -s - "$TMP/emit.want1" && ok || bad "@emit: raw invalid UTF-8: $(sed -n 1p "$TMP/emit.out" | od -c | head -3)"
sed -n 2p "$TMP/emit.out" | grep -q -F '"text":"\""' && ok || bad "@emit: a quote"
sed -n 3p "$TMP/emit.out" | grep -q -F '"text":"\\\u000a"' && ok || bad "@emit: backslash and newline"
sed -n 4p "$TMP/emit.out" | grep -q -F '"text":""' && ok || bad "@emit: an empty item"
sed -n 6p "$TMP/emit.out" | grep -q '"type":"done","id":"e","finish_reason":"stop","usage":{"prompt_tokens":0,"completion_tokens":5}' &&
	ok || bad "@emit: done: $(sed -n 6p "$TMP/emit.out")"
wire emit_bad --attest-kbs "$KBS" --send '{"type":"generate","id":"e2","prompt":"@emit:4g","max_tokens":10}' --recv 1
code_is "@emit with bad hex" emit_bad bad_request
wire script_unattested --send '{"type":"generate","id":"f","prompt":"@flood","max_tokens":10}' --recv 1
code_is "scripts need attestation" script_unattested bad_state
wire slow --attest-kbs "$KBS" --send '{"type":"generate","id":"s1","prompt":"@slow:40:50","max_tokens":100}' \
	--sleep 300 --send '{"type":"generate","id":"s2","prompt":"Once","max_tokens":5}' --recv-until done \
	--send '{"type":"cancel","id":"someone-else"}' --sleep 200 \
	--send '{"type":"cancel","id":"s1"}' --recv-until done
grep -q '"type":"error","id":"s2","code":"busy"' "$TMP/slow.out" && ok || bad "@slow: a second generate is not busy"
tail -n 1 "$TMP/slow.out" | grep -q '"type":"done","id":"s1","finish_reason":"cancelled"' && ok ||
	bad "@slow: not cancelled: $(tail -n 1 "$TMP/slow.out")"
n=$(grep -c '"text":"tick "' "$TMP/slow.out")
[ "$n" -ge 5 ] && [ "$n" -lt 40 ] && ok || bad "@slow: $n ticks before the cancel"
# a cancel while the prompt is evaluated: @prefill:MS:TEXT runs the model on TEXT, pausing MS ms
# between prompt chunks (answering frames meanwhile). Four times PLONG is ~150 tokens, ten
# chunks, so prompt evaluation takes ~3 s; the generate sent at 0.5 s is busy and the cancel
# ends the request with no token at all.
P4="$PLONG $PLONG $PLONG $PLONG"
wire prefill --attest-kbs "$KBS" --send "{\"type\":\"generate\",\"id\":\"p1\",\"prompt\":\"@prefill:300:$P4\",\"max_tokens\":50}" \
	--sleep 500 --send '{"type":"generate","id":"p2","prompt":"Once","max_tokens":5}' --recv 1 \
	--send '{"type":"cancel","id":"p1"}' --recv-until done
sed -n 1p "$TMP/prefill.out" | grep -q '"type":"error","id":"p2","code":"busy"' && ok ||
	bad "prefill: a second generate is not busy: $(head -c 300 "$TMP/prefill.out") $(cat "$TMP/prefill.err")"
grep -q '"type":"token"' "$TMP/prefill.out" && bad "prefill: tokens before the cancel: $(head -c 300 "$TMP/prefill.out")" || ok
tail -n 1 "$TMP/prefill.out" | grep -q '"type":"done","id":"p1","finish_reason":"cancelled","usage":{"prompt_tokens":[1-9][0-9]*,"completion_tokens":0}' &&
	ok || bad "prefill: not cancelled during prompt evaluation: $(tail -n 1 "$TMP/prefill.out")"
ms=$(tail -n 1 "$TMP/prefill.out" | sed -n 's/.*"elapsed_ms":\([0-9]*\).*/\1/p')
[ -n "$ms" ] && [ "$ms" -lt 2000 ] && ok || bad "prefill: the cancel took effect after ${ms:-?} ms (prompt evaluation takes ~3000)"
# not cancelled, the pauses change nothing: the text is mu run's
wire prefill_text --attest-kbs "$KBS" --send "{\"type\":\"generate\",\"id\":\"p3\",\"prompt\":\"@prefill:20:$P4\",\"max_tokens\":40}" \
	--text-until-done
printf '\n' >>"$TMP/prefill_text.out"
"$MU" run -m "$MODEL" --no-prompt -p "$P4" -n 40 --temp 0 >"$TMP/run.out" 2>/dev/null
grep -q '^{"type":"done","id":"p3","finish_reason":"length"' "$TMP/prefill_text.err" && cmp -s "$TMP/prefill_text.out" "$TMP/run.out" &&
	ok || bad "prefill: the text differs from mu run: $(head -c 200 "$TMP/prefill_text.out") / $(head -c 200 "$TMP/run.out") $(cat "$TMP/prefill_text.err")"
wire prefill_bad --attest-kbs "$KBS" --send '{"type":"generate","id":"p4","prompt":"@prefill:x:Once","max_tokens":5}' --recv 1
code_is "@prefill with a bad pause" prefill_bad bad_request
# a peer that vanishes mid-request: the enclave carries on with the next connection
wire vanish --attest-kbs "$KBS" --send '{"type":"generate","id":"v","prompt":"@slow:100:20","max_tokens":100}' --sleep 100
wire after --attest-kbs "$KBS" --send '{"type":"generate","id":"a","prompt":"@slow:2:10","max_tokens":100}' --recv-until done
tail -n 1 "$TMP/after.out" | grep -q '"type":"done","id":"a","finish_reason":"stop"' && ok || bad "no service after a vanished peer: $(cat "$TMP/after.out" "$TMP/after.err")"
# the egress cap: 2000 bytes/s, burst 2000
wire flood --attest-kbs "$KBS" --timeout-ms 20000 --send '{"type":"generate","id":"f","prompt":"@flood","max_tokens":1000}' \
	--count-bytes 4
b=$(sed -n 's/.*bytes \([0-9]*\) frames.*/\1/p' "$TMP/flood.out")
s=$(sed -n 's/.*seconds \([0-9.]*\).*/\1/p' "$TMP/flood.out")
if [ -n "$b" ] && [ -n "$s" ]; then
	v=$(awk -v b="$b" -v s="$s" 'BEGIN { print (b <= 2000 * s + 2000 && b >= 0.8 * 2000 * s) ? "ok" : "bad" }')
	echo "egress: $b bytes in $s s (cap 2000 B/s + 2000 burst)"
	[ "$v" = ok ] && ok || bad "egress: $b bytes in $s s breaks 2000 B/s + 2000"
else
	bad "egress: no count: $(cat "$TMP/flood.out" "$TMP/flood.err")"
fi

# ---- the device channel ----
chain_start_enclave "$ENCLAVE" dev || bad "enclave on a device did not start"
DEV_PID=$ENCLAVE_PID
E=unix:$TMP/relay.sock
for p in "Once upon a time" "Lily"; do
	wire devgen --attest-kbs "$KBS" --send "{\"type\":\"generate\",\"id\":\"d\",\"prompt\":\"$p\",\"max_tokens\":50}" --text-until-done
	printf '\n' >>"$TMP/devgen.out"
	"$MU" run -m "$MODEL" --no-prompt -p "$p" -n 50 --temp 0 >"$TMP/run.out" 2>/dev/null
	cmp -s "$TMP/devgen.out" "$TMP/run.out" && ok || bad "dev channel: '$p' differs from mu run: $(head -c 200 "$TMP/devgen.out") $(cat "$TMP/devgen.err")"
done
has "dev channel: sandboxed" "/proc/$DEV_PID/status" "^Seccomp:[[:space:]]*2\$"

# ---- 8. protocol v0 ----
"$ENCLAVE" --config "$TMP/v0.json" --protocol v0 2>"$TMP/v0.err" &
V0_PID=$!
CHAIN_PIDS="$CHAIN_PIDS $V0_PID"
wait_for "$TMP/v0.err" "listening on" || bad "v0 enclave did not start"
has "v0 warns" "$TMP/v0.err" "INSECURE"
V0="$PY tests/v0_client.py --connect unix:$TMP/v0.sock --psk $TMP/psk.key --key $TMP/model.key"
$V0 --prompt "Once upon a time" --max-new-tokens 150 --prompt "Lily" --max-new-tokens 60 \
	>"$TMP/v0.out" 2>"$TMP/v0c.err" || bad "v0 client failed: $(cat "$TMP/v0c.err")"
"$MU" run -m "$MODEL" --no-prompt -p "Once upon a time" -n 150 --temp 0 >"$TMP/v0.want" 2>/dev/null
"$MU" run -m "$MODEL" --no-prompt -p "Lily" -n 60 --temp 0 >>"$TMP/v0.want" 2>/dev/null
cmp -s "$TMP/v0.out" "$TMP/v0.want" && ok || bad "v0: completions differ from mu run: $(head -c 200 "$TMP/v0.out")"
$V0 --send '{"prompt":"x","max_new_tokens":0}' --send '{"prompt":"x"}' --send '{"prompt":1,"max_new_tokens":1}' \
	--send '{"prompt":"x","max_new_tokens":1,"prompt":"y"}' --send '{"prompt":"x","max_new_tokens":1000}' \
	--prompt "Once" --max-new-tokens 5 >"$TMP/v0bad.out" 2>"$TMP/v0c2.err" || bad "v0 client failed: $(cat "$TMP/v0c2.err")"
sed -n 1p "$TMP/v0bad.out" | grep -q '^{"error":"bad_request' && ok || bad "v0: max_new_tokens 0: $(sed -n 1p "$TMP/v0bad.out")"
sed -n 2p "$TMP/v0bad.out" | grep -q '^{"error":"bad_message' && ok || bad "v0: a missing member: $(sed -n 2p "$TMP/v0bad.out")"
sed -n 3p "$TMP/v0bad.out" | grep -q '^{"error":"bad_message' && ok || bad "v0: a wrong type: $(sed -n 3p "$TMP/v0bad.out")"
sed -n 4p "$TMP/v0bad.out" | grep -q '^{"error":"bad_json' && ok || bad "v0: duplicate keys: $(sed -n 4p "$TMP/v0bad.out")"
sed -n 5p "$TMP/v0bad.out" | grep -q '^{"error":"bad_request' && ok || bad "v0: above the config's max_tokens: $(sed -n 5p "$TMP/v0bad.out")"
[ "$(sed -n 6p "$TMP/v0bad.out")" = "$("$MU" run -m "$MODEL" --no-prompt -p Once -n 5 --temp 0 2>/dev/null)" ] && ok ||
	bad "v0: not usable after bad input"
"$ENCLAVE" --config "$TMP/v0.json" --protocol v0 --measure | sed -n 's/^measurement //p' >"$TMP/v0.m"
has "v0: the measurement it announces" "$TMP/v0c.err" "^measurement $(cat "$TMP/v0.m")\$"
$PY tests/v0_client.py --connect "unix:$TMP/v0.sock" --psk "$TMP/other.key" --key "$TMP/model.key" >/dev/null 2>"$TMP/v0w.err"
[ $? -eq 3 ] && grep -q unlock_failed "$TMP/v0w.err" && ok || bad "v0: a wrong pre-shared key: $(cat "$TMP/v0w.err")"
$PY tests/v0_client.py --connect "unix:$TMP/v0.sock" --psk "$TMP/psk.key" --key "$TMP/other.key" >/dev/null 2>"$TMP/v0k.err"
[ $? -eq 3 ] && grep -q unlock_failed "$TMP/v0k.err" && ok || bad "v0: another model's key: $(cat "$TMP/v0k.err")"
has "v0: sandboxed" "/proc/$V0_PID/status" "^Seccomp:[[:space:]]*2\$"

# ---- 9. nothing secret in the logs ----
for f in main test dev v0; do
	hasnt "$f log: prompt" "$TMP/$f.err" "upon a time"
	hasnt "$f log: prompt" "$TMP/$f.err" "big dog"
	hasnt "$f log: generated text" "$TMP/$f.err" "there was"
	hasnt "$f log: model key" "$TMP/$f.err" "$(od -An -v -tx1 "$TMP/model.key" | tr -d ' \n')"
	hasnt "$f log: sanitizer report" "$TMP/$f.err" "Sanitizer"
	hasnt "$f log: sanitizer report" "$TMP/$f.err" "runtime error"
done
finish
