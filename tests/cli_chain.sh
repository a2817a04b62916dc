#!/bin/sh
# The whole chain in process mode: key broker, enclave, proxy, client.
#   1. stories260K through mu-enclave and mu proxy: `mu ask` prints exactly what `mu run`
#      prints for the same prompt and settings (greedy, sampled, chat).
#   2. The output filter on the reassembled stream, driven by the test enclave's scripted
#      output: a deny pattern split across two token frames, a 300-character base64 run and
#      invalid UTF-8 are blocked before any of their bytes reach the client; normal text passes.
#   3. The proxy's client socket answers the bad-input table with the documented codes.
#   4. The audit logs verify and hold no prompt or completion text.
#   5. The enclave's done is checked: more completion tokens than the request's max_tokens is
#      answered with internal (and audited as implausible_done), never passed on.
#   6. stream:false never sends before the end: a response the max_size rule blocks at the
#      default 1 MiB (the test enclave's "@flood", its own limiter off) sends no token at all.
# asan-ok
set -u
. tests/lib.sh
. tests/chain.sh
MODEL=$SHARED/models/stories260K/stories260K.gguf

chain_seal "$MODEL" || bad "seal: $(cat "$TMP/seal.out")"
chain_enclave_config real '"egress_bytes_per_s": 4096, "egress_burst_bytes": 4096, "max_tokens": 256'
chain_enclave_config test '"egress_bytes_per_s": 4096, "egress_burst_bytes": 4096, "max_tokens": 256'
chain_enclave_config big '"egress_bytes_per_s": 4096, "egress_burst_bytes": 4096, "max_tokens": 30000, "test_no_egress_limit": true'
M_REAL=$(chain_measure "$ENCLAVE" real)
M_TEST=$(chain_measure "$ENCLAVE_TEST" test)
M_BIG=$(chain_measure "$ENCLAVE_TEST" big)
[ ${#M_REAL} -eq 64 ] && [ ${#M_TEST} -eq 64 ] && [ "$M_REAL" != "$M_TEST" ] && ok ||
	bad "measurements: '$M_REAL' '$M_TEST'"
chain_kbs "$M_REAL" "$M_TEST" "$M_BIG" || bad "key broker did not start"
chain_start_enclave "$ENCLAVE" real || bad "enclave did not start"
chain_start_proxy real || bad "proxy did not attest the enclave"
PX=unix:$TMP/real-proxy.sock

# 1. Same text as mu run.
same() { # same DESCRIPTION "ask args" "run args"
	# shellcheck disable=SC2086
	"$MU" ask --proxy "$PX" $2 >"$TMP/ask.out" 2>"$TMP/ask.err" || { bad "$1: mu ask failed: $(cat "$TMP/ask.err")"; return; }
	# shellcheck disable=SC2086
	"$MU" run -m "$MODEL" --no-prompt $3 >"$TMP/run.out" 2>"$TMP/run.err" || { bad "$1: mu run failed"; return; }
	if cmp -s "$TMP/ask.out" "$TMP/run.out" && [ -s "$TMP/run.out" ]; then ok; else
		bad "$1: mu ask and mu run differ"
		printf 'ask: %s\nrun: %s\n' "$(head -c 200 "$TMP/ask.out")" "$(head -c 200 "$TMP/run.out")"
	fi
}
same "greedy story" "-p Once -n 200" "-p Once -n 200 --temp 0"
same "greedy, another prompt" "-p Lily -n 120" "-p Lily -n 120 --temp 0"
same "sampled with a seed" "-p Tom -n 100 --temp 0.8 --top-k 40 --top-p 0.95 --seed 7" \
	"-p Tom -n 100 --temp 0.8 --top-k 40 --top-p 0.95 --min-p 0 --seed 7"
same "chat" "-p hello --chat -n 60" "-p hello --chat -n 60 --temp 0"
if grep -q "bytes/s egress" "$TMP/ask.err"; then ok; else bad "mu ask reports no egress rate: $(cat "$TMP/ask.err")"; fi

# 3. Bad input on the proxy's client socket: each gets its documented code.
table() { # table DESCRIPTION CODE tool_wire-actions...
	d=$1 code=$2
	shift 2
	"$WIRE" --connect "$PX" --timeout-ms 8000 "$@" --recv 1 >"$TMP/w.out" 2>"$TMP/w.err"
	if grep -q "\"code\":\"$code\"" "$TMP/w.out"; then ok; else bad "$d: want $code, got $(cat "$TMP/w.out" "$TMP/w.err")"; fi
}
G='"type":"generate","id":"a","prompt":"Once"'
table "empty frame" bad_frame --raw-hex 00000000
table "1-byte frame" bad_json --send-hex 7b
table "max+1 frame" frame_too_large --raw-hex 00100001
table "deep nesting" bad_json --send '{"type":"generate","x":[[[[[1]]]]]}'
table "duplicate keys" bad_json --send '{"type":"generate","type":"generate"}'
table "wrong type" bad_message --send "{$G,\"max_tokens\":\"ten\"}"
table "unknown type" unknown_type --send '{"type":"launch"}'
table "unknown member" bad_message --send "{$G,\"max_tokens\":5,\"colour\":1}"
table "invalid UTF-8 prompt" invalid_utf8 --send-hex "$(hexs '{"type":"generate","id":"a","max_tokens":5,"prompt":"')ff$(hexs '"}')"
table "max_tokens 0" bad_request --send "{$G,\"max_tokens\":0}"
table "max_tokens huge" bad_request --send "{$G,\"max_tokens\":100000000}"
table "max_tokens above the enclave's" bad_request --send "{$G,\"max_tokens\":1000}"
table "client sends hello" bad_message --send '{"type":"hello","version":1,"nonce":"'"$(printf '%064d' 0)"'"}'
# after the errors above the proxy still serves
"$MU" ask --proxy "$PX" -p Once -n 20 >"$TMP/ask.out" 2>"$TMP/ask.err" && [ -s "$TMP/ask.out" ] && ok ||
	bad "proxy stopped serving after bad input: $(cat "$TMP/ask.err")"

# 2. The filter, with the test enclave's scripted output.
chain_start_enclave "$ENCLAVE_TEST" test || bad "test enclave did not start"
chain_start_proxy test --deny "secret plans" || bad "proxy did not attest the test enclave"
PT=unix:$TMP/test-proxy.sock
emit() { # emit ID PIECE...: the test enclave sends each piece as one token frame
	id=$1
	shift
	list=
	for p in "$@"; do list="$list${list:+,}$(hexs "$p")"; done
	"$WIRE" --connect "$PT" --send "{\"type\":\"generate\",\"id\":\"$id\",\"prompt\":\"@emit:$list\",\"max_tokens\":8}" \
		--text-until-done >"$TMP/f.out" 2>"$TMP/f.err"
}
emit d1 "The story: the sec" "ReT PLANS are here."
if grep -q '"code":"filtered"' "$TMP/f.err" && ! grep -qi "sec" "$TMP/f.out"; then ok; else
	bad "deny pattern split across frames: $(cat "$TMP/f.out" "$TMP/f.err")"
fi
B64=$(head -c 225 /dev/urandom | base64 -w0)
emit b1 "here it is: $(printf %s "$B64" | cut -c1-150)" "$(printf %s "$B64" | cut -c151-300)" " end"
if grep -q '"code":"filtered"' "$TMP/f.err" && [ "$(wc -c <"$TMP/f.out")" -lt 20 ]; then ok; else
	bad "300-char base64 run: $(head -c 300 "$TMP/f.out"; cat "$TMP/f.err")"
fi
"$WIRE" --connect "$PT" --send "{\"type\":\"generate\",\"id\":\"u1\",\"prompt\":\"@emit:$(hexs 'fine so far '),ff,$(hexs 'more')\",\"max_tokens\":8}" \
	--text-until-done >"$TMP/f.out" 2>"$TMP/f.err"
if grep -q '"code":"filtered"' "$TMP/f.err" && ! grep -q more "$TMP/f.out"; then ok; else
	bad "invalid UTF-8: $(cat "$TMP/f.out" "$TMP/f.err")"
fi
STORY="Once upon a time, there was a little girl named Lily. She liked to play in the park with her dog, Max. One day, they found a big red ball."
emit s1 "Once upon a time, there was a little girl named Lily. " "She liked to play in the park with her dog, Max. " "One day, they found a big red ball."
if [ "$(cat "$TMP/f.out")" = "$STORY" ] && grep -q '"type":"done"' "$TMP/f.err"; then ok; else
	bad "a normal story did not pass: $(cat "$TMP/f.out" "$TMP/f.err")"
fi
if grep -q '"event":"blocked"' "$TMP/test.audit" && grep -q deny "$TMP/test.audit" && grep -q base64_run "$TMP/test.audit"; then
	ok
else
	bad "the blocks are not in the audit log"
fi

# 5. An implausible done: three token frames, done says 3 completion tokens, max_tokens was 1.
"$WIRE" --connect "$PT" --send "{\"type\":\"generate\",\"id\":\"m1\",\"prompt\":\"@emit:$(hexs 'one '),$(hexs 'two '),$(hexs 'three')\",\"max_tokens\":1}" \
	--text-until-done >"$TMP/f.out" 2>"$TMP/f.err"
if grep -q '"code":"internal"' "$TMP/f.err" && grep -q '"event":"implausible_done".*"id":"m1".*"field":"completion_tokens"' "$TMP/test.audit" &&
	grep '"event":"response"' "$TMP/test.audit" | grep '"id":"m1"' | grep -q '"error":"internal"'; then ok; else
	bad "completion_tokens above max_tokens: $(cat "$TMP/f.err"; grep m1 "$TMP/test.audit")"
fi
# a plausible done passes, with the proxy's own elapsed_ms
emit m2 "fine"
if grep -q '"type":"done".*"completion_tokens":1' "$TMP/f.err"; then ok; else bad "a plausible done: $(cat "$TMP/f.err")"; fi

# 4. Audit logs verify and hold no text.
chain_stop "$PROXY_PID"

# 6. stream:false and the hold: 26000 x 41 bytes of flood text is over the 1 MiB max_size.
chain_start_enclave "$ENCLAVE_TEST" big || bad "test enclave (no egress limit) did not start"
chain_start_proxy big --egress-bps 1000000 --egress-burst 1000000 || bad "proxy big"
"$WIRE" --connect "unix:$TMP/big-proxy.sock" --timeout-ms 60000 \
	--send '{"type":"generate","id":"h1","prompt":"@flood","max_tokens":26000,"stream":false}' --recv 1 >"$TMP/h.out" 2>&1
if grep -q '"type":"error","id":"h1","code":"filtered"' "$TMP/h.out" && grep -q '"rule":"max_size"' "$TMP/big.audit" &&
	grep '"event":"blocked"' "$TMP/big.audit" | grep -q '"released_bytes":0'; then ok; else
	bad "stream:false sent before its end: $(head -c 300 "$TMP/h.out")"
fi
chain_stop "$PROXY_PID"

for n in real test big; do
	"$MU" audit verify "$TMP/$n.audit" >"$TMP/v.out" 2>&1 && ok || bad "audit verify $n: $(cat "$TMP/v.out")"
	if grep -q -i -e "Lily" -e "Once" -e "secret" "$TMP/$n.audit"; then bad "text in the $n audit log"; else ok; fi
done
finish
