#!/bin/sh
# 100 clients for 60 s against a stories260K enclave through the HTTP API. Each client sends
# request after request (chat and completions, streamed and whole) on fresh connections;
# tool_http checks every answer: a complete, well-formed completion, or a documented error
# (429 with Retry-After, 503, an error event; after one it waits 250 ms, as a well-behaved
# client does). Anything else — a reset, a truncated or malformed
# body, a timeout, another status — is a lost request and fails the test. Afterwards the proxy
# is still up and serving, the audit log verifies, and every request it admitted has its
# closing record.
set -u
. tests/lib.sh
. tests/chain.sh
MODEL=$SHARED/models/stories260K/stories260K.gguf
HTTPT=$BIN_DIR/tests/tool_http
CLIENTS=${LOAD_CLIENTS:-100} SECONDS_=${LOAD_SECONDS:-60}
CHAIN_MAX_EGRESS=1000000

chain_seal "$MODEL" || bad "seal: $(cat "$TMP/seal.out")"
chain_enclave_config ld '"egress_bytes_per_s": 1000000, "egress_burst_bytes": 65536, "max_tokens": 256'
chain_kbs "$(chain_measure "$ENCLAVE" ld)" || bad "key broker did not start"
chain_start_enclave "$ENCLAVE" ld || bad "enclave did not start"
mkdir -p "$TMP/keystate"
KEY=$("$MU" keys add --file "$TMP/keys.json" --id load --daily-bytes 1000000000 2>/dev/null)
chain_start_proxy ld --http tcp:127.0.0.1:0 --keys "$TMP/keys.json" --key-state "$TMP/keystate" \
	--egress-bps 1000000 --egress-burst 1000000 --daily-bytes 0 || bad "proxy did not start"
PORT=$(sed -n 's/.*http listening on tcp:127.0.0.1:\([0-9]*\) .*/\1/p' "$TMP/ld-proxy.err" | tail -n 1)

"$HTTPT" --connect "tcp:127.0.0.1:$PORT" --key "$KEY" load --clients "$CLIENTS" --seconds "$SECONDS_" \
	--model llama --max-tokens 16 --timeout-ms 60000 >"$TMP/load.out" 2>"$TMP/load.err"
rc=$?
cat "$TMP/load.out"
[ $rc -eq 0 ] && ok || bad "lost requests: $(head -n 5 "$TMP/load.err")"
kill -0 "$PROXY_PID" 2>/dev/null && ok || bad "the proxy died"
s=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $KEY" "http://127.0.0.1:$PORT/v1/completions" \
	-d '{"model":"llama","prompt":"Hi","max_tokens":2}')
[ "$s" = 200 ] && ok || bad "served after the load: status $s"
chain_stop "$PROXY_PID"
"$MU" audit verify "$TMP/ld.audit" >"$TMP/v.out" 2>&1 && ok || bad "audit: $(cat "$TMP/v.out")"
$PY - "$TMP/ld.audit" <<'PYEOF' && ok || bad "audit: a request without its closing record"
import json, sys
open_ids, n = {}, 0
for line in open(sys.argv[1]):
    r = json.loads(line)
    if r['event'] == 'request':
        open_ids[r['id']] = 1
        n += 1
    elif r['event'] in ('response', 'blocked'):
        open_ids.pop(r['id'], None)
assert n > 0 and not open_ids, (n, list(open_ids)[:5])
print("audit: %d requests admitted, every one closed" % n)
PYEOF
finish
