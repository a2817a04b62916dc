#!/bin/sh
# The HTTP API of mu proxy (docs/http.md), asan-ok, driven with curl and tests/tool_http against the
# whole chain in process mode: key broker, the test enclave (the real engine on stories260K,
# plus "@slow" for long requests), mu proxy with --http and API keys.
#   every endpoint, streamed and not: chat, completions, Ollama generate, models, health, metrics
#   the same text streamed and whole; stop sequences; the chunk and body shapes
#   each error status: 400, 401, 404, 405, 413, 429 (rate, quota, with Retry-After), 431, 503
#   a key's quota still refused after a proxy restart
#   a client that hangs up mid-stream cancels its request in the enclave
#   slow clients that never finish a request are cut at the deadline while others are served
#   the audit log names key ids, never keys, and verifies
set -u
. tests/lib.sh
. tests/chain.sh
MODEL=$SHARED/models/stories260K/stories260K.gguf
HTTPT=$BIN_DIR/tests/tool_http

chain_seal "$MODEL" || bad "seal: $(cat "$TMP/seal.out")"
chain_enclave_config h '"egress_bytes_per_s": 4096, "egress_burst_bytes": 8192, "max_tokens": 512'
chain_kbs "$(chain_measure "$ENCLAVE_TEST" h)" || bad "key broker did not start"
chain_start_enclave "$ENCLAVE_TEST" h || bad "enclave did not start"

KEYS=$TMP/keys.json
mkdir -p "$TMP/keystate"
A=$("$MU" keys add --file "$KEYS" --id alice 2>/dev/null)
B=$("$MU" keys add --file "$KEYS" --id bob --rpm 1 --burst 1 2>/dev/null)
C=$("$MU" keys add --file "$KEYS" --id carol --daily-bytes 3000 2>/dev/null)
[ -n "$A" ] && [ -n "$B" ] && [ -n "$C" ] || bad "mu keys add"

start_proxy() {
	chain_start_proxy h --http tcp:127.0.0.1:0 --keys "$KEYS" --key-state "$TMP/keystate" \
		--egress-bps 1000000 --egress-burst 1000000 --http-timeout-ms 1500 --http-max-body 65536 "$@" ||
		bad "proxy did not start"
	PORT=$(sed -n 's/.*http listening on tcp:127.0.0.1:\([0-9]*\) .*/\1/p' "$TMP/h-proxy.err" | tail -n 1)
	URL=http://127.0.0.1:$PORT
}
start_proxy

# j FILE EXPR: a Python expression over the JSON document d in FILE, printed
j() { $PY -c "import json,sys; d=json.load(open(sys.argv[1])); print($2)" "$1" 2>/dev/null; }
# req NAME KEY METHOD PATH [BODY]: curl into $TMP/NAME.{hdr,body}; prints the status
req() {
	n=$1 k=$2 m=$3 path=$4
	shift 4
	set -- -s -N -o "$TMP/$n.body" -D "$TMP/$n.hdr" -w '%{http_code}' -X "$m" --max-time 30 "$@"
	[ -n "$k" ] && set -- "$@" -H "Authorization: Bearer $k"
	curl "$@" "$URL$path"
}
post() { # post NAME KEY PATH BODY
	req "$1" "$2" POST "$3" -H 'Content-Type: application/json' --data-binary "$4"
}
expect() { # expect WHAT GOT WANT
	if [ "$2" = "$3" ]; then ok; else bad "$1: got '$2', want '$3'"; fi
}
# the OpenAI error object, with type and code
err_is() { # err_is NAME STATUS_GOT STATUS TYPE CODE
	expect "$1 status" "$2" "$3"
	expect "$1 error" "$(j "$TMP/$1.body" "d['error']['type'] + ' ' + str(d['error']['code'])")" "$4 $5"
}
hdr() { sed -n "s/^$2: *//Ip" "$TMP/$1.hdr" | tr -d '\r' | tail -n 1; }

MODELNAME=llama
CHAT='{"model":"llama","messages":[{"role":"user","content":"Once upon a time"}],"max_tokens":40,"seed":7,"temperature":0.8'

# ---- health, metrics, models ----
s=$(req health "" GET /health)
expect "health status" "$s" 200
expect "health body" "$(j "$TMP/health.body" "d['status'] + ' ' + d['enclave']")" "ok attested"
s=$(req models "$A" GET /v1/models)
expect "models status" "$s" 200
expect "models list" "$(j "$TMP/models.body" "d['object'] + ' ' + d['data'][0]['id'] + ' ' + d['data'][0]['object']")" \
	"list $MODELNAME model"
s=$(req models_nokey "" GET /v1/models)
err_is models_nokey "$s" 401 invalid_request_error invalid_api_key
s=$(req models_badkey "mu-$(printf '%064d' 0)" GET /v1/models)
err_is models_badkey "$s" 401 invalid_request_error invalid_api_key
expect "401 names the scheme" "$(hdr models_nokey WWW-Authenticate)" Bearer

# ---- chat: whole and streamed give the same text ----
s=$(post chat "$A" /v1/chat/completions "$CHAT}")
expect "chat status" "$s" 200
expect "chat content type" "$(hdr chat Content-Type)" application/json
expect "chat shape" "$(j "$TMP/chat.body" "d['object'] + ' ' + d['choices'][0]['message']['role'] + ' ' + d['choices'][0]['finish_reason'] + ' ' + str(d['usage']['completion_tokens']) + ' ' + str(d['usage']['total_tokens'] == d['usage']['prompt_tokens'] + d['usage']['completion_tokens'])")" \
	"chat.completion assistant length 40 True"
expect "chat id" "$(j "$TMP/chat.body" "d['id']")" "chatcmpl-$(hdr chat X-Request-Id)"
WHOLE=$(j "$TMP/chat.body" "d['choices'][0]['message']['content']")
[ -n "$WHOLE" ] && ok || bad "chat: empty content"

s=$(post chats "$A" /v1/chat/completions "$CHAT,\"stream\":true,\"stream_options\":{\"include_usage\":true}}")
expect "chat stream status" "$s" 200
expect "chat stream content type" "$(hdr chats Content-Type)" text/event-stream
cat >"$TMP/sse.py" <<'EOF'
import json, sys
raw = open(sys.argv[1], 'rb').read().decode()
assert raw.endswith('\n\n'), 'no final blank line'
events = raw.split('\n\n')[:-1]
assert all(e.startswith('data: ') for e in events), 'an event without data:'
assert events[-1] == 'data: [DONE]', 'no [DONE] at the end'
chunks = [json.loads(e[6:]) for e in events[:-1]]
kind = sys.argv[2]
text, finish, usage = '', None, None
for i, c in enumerate(chunks):
    if kind == 'chat':
        assert c['object'] == 'chat.completion.chunk'
    else:
        assert c['object'] == 'text_completion'
    if not c['choices']:
        usage = c['usage']
        continue
    ch = c['choices'][0]
    if kind == 'chat':
        if i == 0:
            assert ch['delta']['role'] == 'assistant'
        text += ch['delta'].get('content', '')
    else:
        text += ch['text']
    if ch['finish_reason']:
        finish = ch['finish_reason']
print(json.dumps({'text': text, 'finish': finish, 'usage': usage, 'n': len(chunks)}))
EOF
$PY "$TMP/sse.py" "$TMP/chats.body" chat >"$TMP/chats.json" 2>"$TMP/sse.err" && ok || bad "chat stream: $(tail -n 1 "$TMP/sse.err")"
expect "stream text = whole text" "$(j "$TMP/chats.json" "d['text']")" "$WHOLE"
expect "stream finish and usage" "$(j "$TMP/chats.json" "d['finish'] + ' ' + str(d['usage']['completion_tokens'])")" "length 40"

# ---- completions, with a stop sequence ----
COMP='{"model":"llama","prompt":"Once upon a time","max_tokens":60,"seed":3,"temperature":0'
s=$(post comp "$A" /v1/completions "$COMP}")
expect "completions status" "$s" 200
FULL=$(j "$TMP/comp.body" "d['choices'][0]['text']")
expect "completions shape" "$(j "$TMP/comp.body" "d['object'] + ' ' + d['choices'][0]['finish_reason']")" "text_completion length"
s=$(post comps "$A" /v1/completions "$COMP,\"stream\":true}")
$PY "$TMP/sse.py" "$TMP/comps.body" completions >"$TMP/comps.json" 2>"$TMP/sse.err" && ok || bad "completions stream: $(tail -n 1 "$TMP/sse.err")"
expect "completions stream text" "$(j "$TMP/comps.json" "d['text']")" "$FULL"
STOP=$($PY -c "import sys; t=sys.argv[1]; i=t.index(' ', 8); print(t[i:i+3])" "$FULL")
BEFORE=$($PY -c "import sys; t=sys.argv[1]; print(t[:t.index(sys.argv[2])])" "$FULL" "$STOP")
for st in false true; do
	body=$($PY -c "import json,sys; d=json.loads(sys.argv[1]+'}'); d['stop']=[sys.argv[2], 'zzzz']; d['stream']=sys.argv[3]=='true'; print(json.dumps(d))" "$COMP" "$STOP" $st)
	s=$(post stop$st "$A" /v1/completions "$body")
	expect "stop ($st) status" "$s" 200
	if [ $st = true ]; then
		$PY "$TMP/sse.py" "$TMP/stop$st.body" completions >"$TMP/stop$st.json" || bad "stop stream"
		got=$(j "$TMP/stop$st.json" "d['text'] + '|' + d['finish']")
	else
		got=$(j "$TMP/stop$st.body" "d['choices'][0]['text'] + '|' + d['choices'][0]['finish_reason']")
	fi
	expect "stop sequence ($st): text before it, finish stop" "$got" "$BEFORE|stop"
done

# ---- Ollama /api/generate ----
s=$(post oll "$A" /api/generate '{"model":"llama","prompt":"Once upon a time","options":{"num_predict":30,"temperature":0,"seed":3}}')
expect "ollama status" "$s" 200
expect "ollama content type" "$(hdr oll Content-Type)" application/x-ndjson
OTEXT=$($PY -c "
import json,sys
lines=open(sys.argv[1]).read().splitlines()
ds=[json.loads(l) for l in lines]
assert all(not d['done'] for d in ds[:-1]) and ds[-1]['done'] and ds[-1]['eval_count']==30
print(''.join(d['response'] for d in ds))" "$TMP/oll.body" 2>"$TMP/oll.err") && ok || bad "ollama lines: $(tail -n 1 "$TMP/oll.err")"
expect "ollama text = completions text" "$OTEXT" "$($PY -c "import sys; print(sys.argv[1][:len(sys.argv[2])])" "$FULL" "$OTEXT")"
s=$(post ollw "$A" /api/generate '{"model":"llama","prompt":"Once upon a time","stream":false,"options":{"num_predict":30,"temperature":0,"seed":3}}')
expect "ollama whole" "$s $(j "$TMP/ollw.body" "str(d['done']) + ' ' + d['done_reason']")" "200 True length"
expect "ollama whole text" "$(j "$TMP/ollw.body" "d['response']")" "$OTEXT"

# ---- 400 ----
s=$(post bad_json "$A" /v1/chat/completions '{"model":"llama",')
err_is bad_json "$s" 400 invalid_request_error None
s=$(post bad_unknown "$A" /v1/chat/completions '{"model":"llama","messages":[{"role":"user","content":"x"}],"frobnicate":1}')
err_is bad_unknown "$s" 400 invalid_request_error unknown_parameter
expect "unknown parameter named" "$(j "$TMP/bad_unknown.body" "d['error']['param']")" frobnicate
s=$(post bad_temp "$A" /v1/chat/completions '{"model":"llama","messages":[{"role":"user","content":"x"}],"temperature":5}')
expect "temperature 5" "$s $(j "$TMP/bad_temp.body" "d['error']['param']")" "400 temperature"
s=$(post bad_nomsg "$A" /v1/chat/completions '{"model":"llama"}')
expect "no messages" "$s $(j "$TMP/bad_nomsg.body" "d['error']['param']")" "400 messages"
s=$(post bad_long "$A" /v1/completions '{"model":"llama","prompt":"@prefill:0:'"$(head -c 20000 /dev/zero | tr '\0' 'a')"'","max_tokens":4}')
expect "prompt longer than the context" "$s $(j "$TMP/bad_long.body" "str(d['error']['code'])")" "400 context_length_exceeded"
grep -q "Once upon" "$TMP/bad_temp.body" && bad "an error echoes the prompt" || ok

# ---- 404, 405, 413, 431 ----
s=$(req nopath "$A" GET /v2/anything)
err_is nopath "$s" 404 invalid_request_error not_found
s=$(post nomodel "$A" /v1/chat/completions '{"model":"gpt-4","messages":[{"role":"user","content":"x"}]}')
err_is nomodel "$s" 404 invalid_request_error model_not_found
s=$(req getchat "$A" GET /v1/chat/completions)
err_is getchat "$s" 405 invalid_request_error method_not_allowed
expect "405 Allow" "$(hdr getchat Allow)" POST
head -c 70000 /dev/zero | tr '\0' 'x' >"$TMP/big.txt"
s=$(req big "$A" POST /v1/completions -H 'Content-Type: application/json' --data-binary "@$TMP/big.txt")
err_is big "$s" 413 invalid_request_error request_too_large
s=$(req bighdr "$A" GET /health -H "X-Big: $(head -c 40000 /dev/zero | tr '\0' 'y')")
case $s in 431 | 413) ok ;; *) bad "oversized headers: status $s, want 431" ;; esac

# ---- 429: request rate (bob: 1 per minute) ----
s=$(post bob1 "$B" /v1/completions '{"model":"llama","prompt":"Hi","max_tokens":2}')
expect "bob's first request" "$s" 200
s=$(post bob2 "$B" /v1/completions '{"model":"llama","prompt":"Hi","max_tokens":2}')
err_is bob2 "$s" 429 rate_limit_error rate_limit_exceeded
ra=$(hdr bob2 Retry-After)
[ "${ra:-0}" -ge 1 ] && [ "${ra:-0}" -le 60 ] && ok || bad "rate 429 Retry-After '$ra' (want 1..60)"

# ---- 429: output quota (carol: 3000 bytes a day), kept across a restart ----
i=0 s=200
while [ "$s" = 200 ] && [ $i -lt 20 ]; do
	s=$(post carol$i "$C" /v1/completions '{"model":"llama","prompt":"Once upon a time","max_tokens":100}')
	i=$((i + 1))
done
err_is carol$((i - 1)) "$s" 429 insufficient_quota insufficient_quota
ra=$(hdr carol$((i - 1)) Retry-After)
[ "${ra:-0}" -ge 1 ] && [ "${ra:-0}" -le 86400 ] && ok || bad "quota 429 Retry-After '$ra'"
[ $i -ge 2 ] && ok || bad "carol was refused before spending anything ($i requests)"
s=$(post alice_after "$A" /v1/completions '{"model":"llama","prompt":"Hi","max_tokens":2}')
expect "another key is not affected" "$s" 200

# ---- a client that hangs up mid-stream: its request is cancelled in the enclave ----
curl -s -N --max-time 2 -o /dev/null -H "Authorization: Bearer $A" "$URL/v1/completions" \
	-d '{"model":"llama","prompt":"@slow:400:20","max_tokens":500,"stream":true}'
sleep 0.5
# the slow request had 6 s to go: an answer within 3 s shows the enclave stopped it
t0=$(date +%s%N)
s=$(post after_hangup "$A" /v1/completions '{"model":"llama","prompt":"Hi","max_tokens":2}')
ms=$((($(date +%s%N) - t0) / 1000000))
expect "served right after a hang-up" "$s" 200
[ "$ms" -lt 3000 ] && ok || bad "the request after a hang-up took $ms ms: the slow one was not cancelled"
grep '"event":"response"' "$TMP/h.audit" | grep -q '"error":"client_gone"' && ok ||
	bad "no response record with error client_gone"

# ---- slow clients: a request that never finishes arriving is cut at the deadline ----
: >"$TMP/slow.out"
$PY - "$PORT" "$TMP/slow.out" <<'EOF' &
import socket, sys, threading, time
port, out = int(sys.argv[1]), sys.argv[2]
def slow(k):
    s = socket.create_connection(('127.0.0.1', port))
    t0 = time.monotonic()
    s.sendall(b'POST /v1/completions HTTP/1.1\r\nHost: x\r\n')
    s.settimeout(0.5)
    for i in range(20):  # a header line every 0.5 s, never the end of the headers
        try:
            s.sendall(b'X-Slow: %d\r\n' % i)
            if s.recv(4096) == b'':
                break
        except socket.timeout:
            continue
        except OSError:
            break
    with open(out, 'a') as f:
        f.write('%d\n' % int((time.monotonic() - t0) * 1000))
ts = [threading.Thread(target=slow, args=(k,)) for k in range(5)]
for t in ts: t.start()
for t in ts: t.join()
EOF
SLOW_PID=$!
sleep 0.3
s=$(post during_slow "$A" /v1/completions '{"model":"llama","prompt":"Hi","max_tokens":2}')
expect "served while slow clients trickle" "$s" 200
wait "$SLOW_PID"
n=$(wc -l <"$TMP/slow.out")
expect "slow clients cut" "$n" 5
worst=$(sort -n "$TMP/slow.out" | tail -n 1)
[ "${worst:-99999}" -lt 4000 ] && ok || bad "a slow client held its connection ${worst} ms (deadline 1500 ms)"

# ---- metrics ----
s=$(req metrics_nokey "" GET /metrics)
err_is metrics_nokey "$s" 401 invalid_request_error invalid_api_key
s=$(req metrics "$A" GET /metrics)
expect "metrics status" "$s" 200
for m in mu_egress_bytes_total mu_egress_rate_bytes_per_second mu_egress_cap_bytes_per_second \
	mu_budget_remaining_bytes 'mu_http_requests_total{status="200"}' 'mu_http_requests_total{status="429"}' \
	'mu_filter_blocks_total{rule="deny"}' 'mu_enclave_attested 1' mu_enclave_last_attestation_timestamp_seconds \
	mu_completion_tokens_total mu_tokens_per_second; do
	grep -qF "$m" "$TMP/metrics.body" && ok || bad "metrics: no $m"
done
$PY - "$TMP/metrics.body" <<'EOF' && ok || bad "metrics: not Prometheus text format"
import re, sys
for line in open(sys.argv[1]):
    line = line.rstrip('\n')
    if line.startswith('# HELP ') or line.startswith('# TYPE '):
        continue
    assert re.fullmatch(r'[a-z_]+(\{[a-z_]+="[^"]*"\})? (\+Inf|-?[0-9.]+)', line), line
EOF

# ---- restart: carol's quota is still spent; then the enclave goes away: 503 ----
chain_stop "$PROXY_PID"
mv "$TMP/h-proxy.err" "$TMP/h-proxy.1.err" # the new proxy's attestation is waited for afresh
start_proxy
s=$(post carol_restart "$C" /v1/completions '{"model":"llama","prompt":"Hi","max_tokens":2}')
err_is carol_restart "$s" 429 insufficient_quota insufficient_quota
chain_stop "$ENCLAVE_PID"
sleep 0.5
s=$(post down "$A" /v1/completions '{"model":"llama","prompt":"Hi","max_tokens":2}')
err_is down "$s" 503 server_error enclave_unavailable
[ "$(hdr down Retry-After)" -ge 1 ] 2>/dev/null && ok || bad "503 without Retry-After"
s=$(req health_down "" GET /health)
expect "health while down" "$s" 503

# ---- the audit log ----
chain_stop "$PROXY_PID"
"$MU" audit verify "$TMP/h.audit" >"$TMP/verify.out" 2>&1 && ok || bad "audit: $(cat "$TMP/verify.out")"
for id in alice bob carol; do
	grep '"event":"request"' "$TMP/h.audit" | grep -q "\"key\":\"$id\"" && ok || bad "no request record for key $id"
done
grep '"event":"refused"' "$TMP/h.audit" | grep -q '"code":"unauthorized"' && ok || bad "no refused record for 401"
grep '"event":"refused"' "$TMP/h.audit" | grep -q '"code":"rate_limited"' && ok || bad "no refused record for the rate"
grep '"event":"refused"' "$TMP/h.audit" | grep -q '"code":"quota_exhausted"' && ok || bad "no refused record for the quota"
for k in "$A" "$B" "$C"; do
	if grep -rqF "$k" "$TMP"/*.audit "$TMP"/*.err "$TMP/keys.json" "$TMP/keystate"; then bad "a key is in a log or state file"; else ok; fi
done
grep -q "Once upon a time" "$TMP/h.audit" "$TMP"/h-proxy*.err && bad "a prompt reached a log" || ok
finish
