#!/bin/sh
# The egress cap holds through the HTTP API. The test enclave's "@flood" script writes token
# frames as fast as it can with its own limiter switched off (test build only), so the proxy's
# cap (RATE bytes/s, burst BURST) is all that stands between it and the clients. Several
# clients stream at once for SECONDS_; tool_http counts every body byte they receive and checks
# that in every window of time (t1, t2] they got at most RATE x (t2 - t1) + BURST bytes (plus a
# 50 ms allowance for when the client reads), and at least 80% of RATE overall, which shows the
# flood really pressed against the cap. The bytes the cap meters are the HTTP body bytes (SSE
# events, JSON included), the same bytes the clients count.
set -u
. tests/lib.sh
. tests/chain.sh
MODEL=$SHARED/models/stories260K/stories260K.gguf
HTTPT=$BIN_DIR/tests/tool_http
RATE=3000 BURST=3000 SECONDS_=${EGRESS_SECONDS:-15} CLIENTS=4

chain_seal "$MODEL" || bad "seal: $(cat "$TMP/seal.out")"
chain_enclave_config fl "\"egress_bytes_per_s\": 4096, \"egress_burst_bytes\": 8192, \"max_tokens\": 65536, \"test_no_egress_limit\": true"
chain_kbs "$(chain_measure "$ENCLAVE_TEST" fl)" || bad "key broker did not start"
chain_start_enclave "$ENCLAVE_TEST" fl || bad "enclave did not start"
mkdir -p "$TMP/keystate"
KEY=$("$MU" keys add --file "$TMP/keys.json" --id flood 2>/dev/null)
chain_start_proxy fl --http tcp:127.0.0.1:0 --keys "$TMP/keys.json" --key-state "$TMP/keystate" \
	--egress-bps $RATE --egress-burst $BURST --daily-bytes 0 || bad "proxy did not start"
PORT=$(sed -n 's/.*http listening on tcp:127.0.0.1:\([0-9]*\) .*/\1/p' "$TMP/fl-proxy.err" | tail -n 1)

for path in /v1/completions /api/generate; do
	if [ $path = /api/generate ]; then
		body='{"model":"llama","prompt":"@flood","options":{"num_predict":65536}}'
	else
		body='{"model":"llama","prompt":"@flood","max_tokens":65536,"stream":true}'
	fi
	"$HTTPT" --connect "tcp:127.0.0.1:$PORT" --key "$KEY" egress --clients $CLIENTS --seconds "$SECONDS_" \
		--rate $RATE --burst $BURST --path $path --body "$body" >"$TMP/egress.out" 2>"$TMP/egress.err"
	rc=$?
	echo "$path: $(cat "$TMP/egress.out")"
	[ $rc -eq 0 ] && ok || bad "$path: egress cap not held: $(cat "$TMP/egress.out") $(tail -n 3 "$TMP/egress.err")"
done

chain_stop "$PROXY_PID"
"$MU" audit verify "$TMP/fl.audit" >"$TMP/v.out" 2>&1 && ok || bad "audit: $(cat "$TMP/v.out")"
# every flood request ended with a closing record (the clients hung up: client_gone)
$PY - "$TMP/fl.audit" <<'PYEOF' && ok || bad "a request without its closing record"
import json, sys
open_ids = set()
for line in open(sys.argv[1]):
    r = json.loads(line)
    if r['event'] == 'request':
        open_ids.add(r['id'])
    elif r['event'] in ('response', 'blocked'):
        open_ids.discard(r['id'])
assert not open_ids, open_ids
PYEOF
finish
