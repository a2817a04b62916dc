#!/bin/sh
# The canary test: a model holding a random 1 MiB tensor is sealed; the key broker releases
# its key to a (test) enclave that unseals the model into locked memory and reports only the
# tensor's SHA-256; then every file the test wrote — the sealed model, the broker's stderr and
# audit log, the enclave's output, `mu seal` and `mu unseal --check` output — is searched for
# any 64-byte run of the canary. The owner's plaintext model is deleted after sealing; a
# positive control first proves the search finds the canary where it is. asan-ok
set -u
. tests/lib.sh
TOOLS=$(dirname "$MU")/tests
CANARY=$TOOLS/tool_canary
CLIENT=$TOOLS/tool_kbs_client
OWNER=$TMP/owner RUN=$TMP/run
SEED=20261122
mkdir -p "$OWNER" "$RUN"
BROKER=
cleanup() {
	[ -n "$BROKER" ] && kill "$BROKER" 2>/dev/null
	rm -rf "$TMP"
}
trap cleanup EXIT
field() { sed -n "s/^$1 //p" "$2"; }

# 1. The model owner: a plaintext model with the canary, a key, the sealed model.
"$CANARY" write "$SEED" "$OWNER/model.gguf" || bad "write the canary model"
if "$CANARY" scan "$SEED" "$OWNER/model.gguf" >"$RUN/control.txt"; then
	bad "positive control: the search did not find the canary in the plaintext model"
else
	ok
fi
"$MU" keygen -o "$RUN/model.key" >"$RUN/keygen.out" 2>&1 || bad "keygen"
"$MU" seal --key "$RUN/model.key" "$OWNER/model.gguf" "$RUN/model.mus" >"$RUN/seal.out" 2>&1 || bad "seal: $(cat "$RUN/seal.out")"
rm -rf "$OWNER" # from here on, the plaintext exists only inside the enclave

# 2. The broker with a policy for this enclave and model.
printf '{"egress_bytes_per_s": 1024, "egress_burst_bytes": 4096}\n' >"$RUN/enclave.json"
"$CLIENT" --measure --binary "$CLIENT" --config "$RUN/enclave.json" --sealed "$RUN/model.mus" >"$RUN/measure.out"
M=$(field measurement "$RUN/measure.out")
K=$(field key_id "$RUN/measure.out")
cat >"$RUN/policy.json" <<EOF2
{"version": 1, "allow_dev_evidence": true, "nonce_ttl_ms": 5000, "max_egress_bytes_per_s": 4096,
 "measurements": {"$M": {"key_ids": ["$K"], "note": "canary test enclave"}}}
EOF2
"$MU" kbs --policy "$RUN/policy.json" --key "$RUN/model.key" --listen "unix:$RUN/kbs.sock" \
	--audit "$RUN/audit.log" 2>"$RUN/kbs.err" &
BROKER=$!
i=0
ADDR=
while [ $i -lt 100 ] && [ -z "$ADDR" ]; do
	ADDR=$(sed -n 's/^mu kbs: listening on //p' "$RUN/kbs.err")
	[ -z "$ADDR" ] && sleep 0.1
	i=$((i + 1))
done
[ -n "$ADDR" ] || bad "broker did not start: $(cat "$RUN/kbs.err")"

# 3. The enclave: attest, receive the key, unseal into locked memory, find the canary.
"$CLIENT" --connect "$ADDR" --binary "$CLIENT" --config "$RUN/enclave.json" --sealed "$RUN/model.mus" --unseal \
	>"$RUN/enclave.out" 2>"$RUN/enclave.err"
want=$("$CANARY" hash "$SEED")
got=$(field canary_sha256 "$RUN/enclave.out")
if [ -n "$got" ] && [ "$got" = "$want" ]; then ok; else
	bad "the enclave did not recover the canary: $(cat "$RUN/enclave.out" "$RUN/enclave.err")"
fi
if grep -q '^unsealed 1048' "$RUN/enclave.out"; then ok; else bad "unseal report: $(cat "$RUN/enclave.out")"; fi
"$MU" unseal --check --key "$RUN/model.key" "$RUN/model.mus" >"$RUN/unseal.out" 2>&1 || bad "unseal --check"
kill -TERM "$BROKER"
wait "$BROKER"
BROKER=
if grep -q '"decision":"release"' "$RUN/audit.log"; then ok; else bad "no release in the audit log"; fi

# 4. The search: no file the test wrote holds any 64-byte run of the canary.
files=$(find "$TMP" -type f)
# shellcheck disable=SC2086
if "$CANARY" scan "$SEED" $files >"$RUN/scan.txt"; then ok; else bad "canary leaked: $(cat "$RUN/scan.txt")"; fi
echo "searched $(echo "$files" | wc -l) files: $(cat "$RUN/scan.txt")"

finish
