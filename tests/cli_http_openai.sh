#!/bin/sh
# An official client library works unchanged: the `openai` npm package (version 4, which runs
# on the Node.js of Debian 12) is installed into a scratch directory and tests/http_openai.mjs
# runs a non-streaming and a streaming chat completion, a text completion, the model list and a
# wrong key against mu proxy's HTTP API. Skipped, with a message saying so, only when npm or
# its registry cannot be reached.
set -u
. tests/lib.sh
. tests/chain.sh
MODEL=$SHARED/models/stories260K/stories260K.gguf
OPENAI_VERSION=4

if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
	echo "SKIPPED: node or npm is not installed (scripts/deps.sh installs them)"
	finish
	exit $?
fi
mkdir -p "$TMP/npm"
if ! timeout 300 npm install --prefix "$TMP/npm" --no-audit --no-fund --loglevel=error "openai@$OPENAI_VERSION" \
	>"$TMP/npm.out" 2>&1; then
	if grep -qiE 'ENOTFOUND|EAI_AGAIN|ECONNREFUSED|ETIMEDOUT|ENETUNREACH|network|fetch failed' "$TMP/npm.out"; then
		echo "SKIPPED: the npm registry is unreachable: $(grep -iE 'ENOTFOUND|EAI_AGAIN|ECONNREFUSED|ETIMEDOUT|ENETUNREACH|network|fetch failed' "$TMP/npm.out" | head -n 1)"
		finish
		exit $?
	fi
	bad "npm install openai@$OPENAI_VERSION failed: $(tail -n 5 "$TMP/npm.out")"
	finish
	exit $?
fi
echo "openai $(node -e "console.log(require('$(pwd)/$TMP/npm/node_modules/openai/package.json').version)") on node $(node --version)"

chain_seal "$MODEL" || bad "seal: $(cat "$TMP/seal.out")"
chain_enclave_config oa '"egress_bytes_per_s": 4096, "egress_burst_bytes": 8192, "max_tokens": 256'
chain_kbs "$(chain_measure "$ENCLAVE" oa)" || bad "key broker did not start"
chain_start_enclave "$ENCLAVE" oa || bad "enclave did not start"
mkdir -p "$TMP/keystate"
KEY=$("$MU" keys add --file "$TMP/keys.json" --id node 2>/dev/null)
chain_start_proxy oa --http tcp:127.0.0.1:0 --keys "$TMP/keys.json" --key-state "$TMP/keystate" \
	--egress-bps 1000000 --egress-burst 1000000 || bad "proxy did not start"
PORT=$(sed -n 's/.*http listening on tcp:127.0.0.1:\([0-9]*\) .*/\1/p' "$TMP/oa-proxy.err" | tail -n 1)

node tests/http_openai.mjs "$TMP/npm" "http://127.0.0.1:$PORT/v1" "$KEY" llama >"$TMP/node.out" 2>&1
rc=$?
cat "$TMP/node.out"
n=$(grep -c '^ok ' "$TMP/node.out")
i=0
while [ $i -lt "$n" ]; do
	ok
	i=$((i + 1))
done
[ $rc -eq 0 ] || bad "the openai client: $(grep FAIL "$TMP/node.out" | head -n 3)$(tail -n 3 "$TMP/node.out")"
[ "$n" -eq 7 ] || bad "the openai client ran $n of 7 checks"
chain_stop "$PROXY_PID"
"$MU" audit verify "$TMP/oa.audit" >"$TMP/v.out" 2>&1 && ok || bad "audit: $(cat "$TMP/v.out")"
finish
