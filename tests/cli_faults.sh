#!/bin/sh
# Faults, with the test enclave's slow scripted output ("@slow:N:MS": N frames "tick ", one
# every MS ms):
#   1. kill -9 of the proxy mid-stream: the ledger already counts every byte the client got;
#      after a restart the daily budget goes on from there (never reset) and runs out; the
#      audit chain still verifies, and an edited line is found.
#   2. kill -9 of the enclave mid-generation: the client gets enclave_lost within 2 s; the
#      restarted enclave is re-attested and served.
#   3. A client that sends half a frame and stalls does not hold up another client, and is
#      closed with "timeout" after the read deadline.
#   4. Refusals: a connection is closed after its 8th refused generate, and the audit log folds
#      a burst of refusals into few `refused` records whose counts still add up to every one.
# With a scripted fake enclave (tool_wire --fake-enclave: frames a real enclave never sends):
#   5. Nothing the enclave chooses as text (error code names, unknown member names, messages)
#      reaches the proxy's stderr or audit log; id-less error frames are counted, once per link
#      session; a done with implausible usage fails with internal; elapsed_ms is the proxy's.
#   6. A cancelled request whose enclave is silent for a while is drained, not dropped, under
#      the default --drain-timeout-ms; a shorter one drops the link.
#   7. An enclave that drops the link right after every attestation is retried with a growing
#      backoff, not every --reconnect-ms.
#   8. A queued request cancelled, whose done(cancelled) waits for the egress cap when the
#      client leaves, has exactly one closing record.
#   9. An enclave the broker refuses, retried: one enclave_refused record (per refusal code),
#      naming the measurement while the proxy has attested nothing.
set -u
. tests/lib.sh
. tests/chain.sh
MODEL=$SHARED/models/stories260K/stories260K.gguf
BUDGET=6000
now_ms() { echo $(($(date +%s%N) / 1000000)); }
frame_bytes() { awk '{ n += length($0) + 4 } END { print n + 0 }' "$1"; }
ledger_field() { sed -n "s/.*\"$1\":\([0-9]*\).*/\1/p" "$2"; }

chain_seal "$MODEL" || bad "seal: $(cat "$TMP/seal.out")"
chain_enclave_config led '"egress_bytes_per_s": 4096, "egress_burst_bytes": 4096, "max_tokens": 2000'
chain_enclave_config vic '"egress_bytes_per_s": 4096, "egress_burst_bytes": 4096, "max_tokens": 2000'
chain_enclave_config fake '"egress_bytes_per_s": 4096, "egress_burst_bytes": 4096, "max_tokens": 64'
M_FAKE=$("$WIRE" --fake-enclave unix:unused --config "$TMP/fake.json" --sealed "$TMP/model.mus" --measure | sed -n 's/^measurement //p')
[ ${#M_FAKE} -eq 64 ] && ok || bad "fake enclave measurement: '$M_FAKE'"
chain_kbs "$(chain_measure "$ENCLAVE_TEST" led)" "$(chain_measure "$ENCLAVE_TEST" vic)" "$M_FAKE" || bad "key broker"
chain_start_enclave "$ENCLAVE_TEST" led || bad "enclave led"
PROXY_ARGS="--daily-bytes $BUDGET --ledger-reserve 512 --egress-bps 100000 --egress-burst 8192"
# shellcheck disable=SC2086
chain_start_proxy led $PROXY_ARGS || bad "proxy led"
PL=unix:$TMP/led-proxy.sock

# 1. kill -9 of the proxy mid-stream.
slow() { # slow ADDR ID N MS OUT: one scripted request; frames to OUT
	"$WIRE" --connect "$1" --timeout-ms 20000 \
		--send "{\"type\":\"generate\",\"id\":\"$2\",\"prompt\":\"@slow:$3:$4\",\"max_tokens\":2000}" \
		--recv-until done >"$5" 2>"$5.err"
}
slow "$PL" k1 400 20 "$TMP/r1" &
CLIENT=$!
sleep 1.5
kill -KILL "$PROXY_PID"
wait "$CLIENT" 2>/dev/null
R1=$(frame_bytes "$TMP/r1")
L1=$(ledger_field day_bytes "$TMP/led.ledger")
echo "before kill -9: client got $R1 bytes, ledger says ${L1:-?} bytes charged today"
if [ "$R1" -gt 500 ] && [ -n "$L1" ] && [ "$L1" -ge "$R1" ]; then ok; else bad "ledger ($L1) < bytes released ($R1)"; fi
# shellcheck disable=SC2086
"$MU" proxy --enclave "unix:$TMP/led.sock" --kbs "$KBS_ADDR" --listen "$PL" --ledger "$TMP/led.ledger" \
	--audit "$TMP/led.audit" --reconnect-ms 200 $PROXY_ARGS 2>>"$TMP/led-proxy.err" &
PROXY_PID=$!
CHAIN_PIDS="$CHAIN_PIDS $PROXY_PID"
chain_wait_attested led 2 || bad "restarted proxy did not attest"
slow "$PL" k2 400 2 "$TMP/r2"
R2=$(frame_bytes "$TMP/r2")
L2=$(ledger_field day_bytes "$TMP/led.ledger")
echo "after restart: client got $R2 more bytes; ledger ${L2:-?} of $BUDGET"
if grep -q '"code":"budget_exhausted"' "$TMP/r2"; then ok; else bad "the budget did not run out: $(tail -n 2 "$TMP/r2")"; fi
if [ $((R1 + R2)) -le "$BUDGET" ] && [ -n "$L2" ] && [ "$L2" -ge $((R1 + R2)) ] && [ "$L2" -le "$BUDGET" ]; then ok; else
	bad "budget reset or overrun: $R1 + $R2 bytes released, ledger $L2, budget $BUDGET"
fi
slow "$PL" k3 5 1 "$TMP/r3"
if grep -q '"code":"budget_exhausted"' "$TMP/r3"; then ok; else bad "a spent budget still serves: $(cat "$TMP/r3")"; fi

# 4. Refusals (the budget is spent): three connections send 12 generates each at once.
N0=$(wc -l <"$TMP/led.audit")
set --
i=0
while [ $i -lt 12 ]; do
	set -- "$@" --send '{"type":"generate","id":"r'$i'","prompt":"@slow:1:1","max_tokens":5}'
	i=$((i + 1))
done
REF_PIDS=
for c in 1 2 3; do
	"$WIRE" --connect "$PL" --timeout-ms 5000 "$@" --recv 8 --expect-close 3000 >"$TMP/ref$c.out" 2>&1 &
	REF_PIDS="$REF_PIDS $!"
done
# shellcheck disable=SC2086
wait $REF_PIDS
for c in 1 2 3; do
	if [ "$(grep -c '"code":"budget_exhausted"' "$TMP/ref$c.out")" -eq 8 ] && grep -q "closed after" "$TMP/ref$c.out" &&
		grep -q "too many refused requests" "$TMP/ref$c.out"; then ok; else
		bad "connection $c was not closed after 8 refusals: $(cat "$TMP/ref$c.out")"
	fi
done
chain_stop "$PROXY_PID"
# every refusal is counted (a record stands for 1 + suppressed), in few records
REF=$(tail -n +$((N0 + 1)) "$TMP/led.audit" | grep '"event":"refused"' | grep '"code":"budget_exhausted"' |
	sed 's/.*"suppressed":\([0-9]*\).*/\1/' | awk '{ n++; s += $1 + 1 } END { print n + 0, s + 0 }')
echo "24 refusals: $REF (records, refusals counted)"
if [ "${REF#* }" -eq 24 ] && [ "${REF% *}" -le 4 ]; then ok; else bad "refused records: $REF (want at most 4 records counting 24)"; fi
"$MU" audit verify "$TMP/led.audit" >"$TMP/v.out" 2>&1 && ok || bad "audit after kill -9: $(cat "$TMP/v.out")"
grep -q '"event":"request"' "$TMP/led.audit" && ok || bad "no request records in the audit log"
# edit one character of line 3 (a digit becomes another digit): verify names the line
awk 'NR == 3 { if (match($0, /"ts_ms":[0-9]/)) { d = substr($0, RSTART + 8, 1); $0 = substr($0, 1, RSTART + 7) (d == "9" ? "8" : "9") substr($0, RSTART + 9) } } { print }' \
	"$TMP/led.audit" >"$TMP/edited.audit"
if cmp -s "$TMP/led.audit" "$TMP/edited.audit"; then bad "the edit changed nothing"; fi
if "$MU" audit verify "$TMP/edited.audit" >"$TMP/v.out" 2>&1; then bad "an edited line verified"; else
	if grep -q -e "line 3" -e "line 4" "$TMP/v.out"; then ok; else bad "edited line 3 reported as: $(cat "$TMP/v.out")"; fi
fi

# 2. kill -9 of the enclave mid-generation.
chain_start_enclave "$ENCLAVE_TEST" vic || bad "enclave vic"
chain_start_proxy vic || bad "proxy vic"
PV=unix:$TMP/vic-proxy.sock
"$WIRE" --connect "$PV" --timeout-ms 20000 --send '{"type":"generate","id":"v1","prompt":"@slow:1000:10","max_tokens":2000}' \
	--text-until-done >"$TMP/v1.out" 2>"$TMP/v1.err" &
CLIENT=$!
sleep 1
T0=$(now_ms)
kill -KILL "$ENCLAVE_PID"
wait "$CLIENT"
T1=$(now_ms)
echo "enclave killed: the client had its answer after $((T1 - T0)) ms: $(cat "$TMP/v1.err")"
if grep -q '"code":"enclave_lost"' "$TMP/v1.err" && [ $((T1 - T0)) -lt 2000 ]; then ok; else
	bad "enclave kill: $((T1 - T0)) ms, $(cat "$TMP/v1.err")"
fi
"$MU" ask --proxy "$PV" -p "@slow:2:1" -n 10 >"$TMP/a.out" 2>"$TMP/a.err"
if grep -q -e enclave_unavailable "$TMP/a.err"; then ok; else bad "no enclave, yet: $(cat "$TMP/a.err")"; fi
chain_start_enclave "$ENCLAVE_TEST" vic || bad "enclave vic restart"
chain_wait_attested vic 2 || bad "the proxy did not re-attest the restarted enclave"
"$MU" ask --proxy "$PV" -p "@slow:3:1" -n 10 >"$TMP/a.out" 2>"$TMP/a.err"
if [ "$(cat "$TMP/a.out")" = "tick tick tick " ]; then ok; else bad "after re-attestation: $(cat "$TMP/a.out" "$TMP/a.err")"; fi

# 3. Half a frame, then silence.
"$WIRE" --connect "$PV" --timeout-ms 15000 --raw-hex 000000 --recv 1 --expect-close 3000 >"$TMP/stall.out" 2>&1 &
STALLER=$!
sleep 0.3
T0=$(now_ms)
"$MU" ask --proxy "$PV" -p "@slow:3:1" -n 10 >"$TMP/a.out" 2>"$TMP/a.err"
T1=$(now_ms)
if [ "$(cat "$TMP/a.out")" = "tick tick tick " ] && [ $((T1 - T0)) -lt 2000 ]; then ok; else
	bad "a stalled client held up another: $((T1 - T0)) ms, $(cat "$TMP/a.err")"
fi
wait "$STALLER"
if grep -q '"code":"timeout"' "$TMP/stall.out" && grep -q "closed after" "$TMP/stall.out"; then ok; else
	bad "the stalled client: $(cat "$TMP/stall.out")"
fi

# ---- the fake enclave ----
fake_start() { # fake_start NAME [--drop-after-ready]: a fake enclave on unix:$TMP/NAME.sock
	fname=$1
	shift
	"$WIRE" --fake-enclave "unix:$TMP/$fname.sock" --config "$TMP/fake.json" --sealed "$TMP/model.mus" "$@" \
		2>>"$TMP/$fname.err" &
	CHAIN_PIDS="$CHAIN_PIDS $!"
	wait_for "$TMP/$fname.err" "listening on"
}
fake_gen() { # fake_gen ID SCRIPT [MAX_TOKENS]: a generate whose prompt names a fake enclave script
	printf '{"type":"generate","id":"%s","prompt":"%s","max_tokens":%s}' "$1" "$2" "${3:-8}"
}
fake_ask() { # fake_ask ADDR ID SCRIPT [MAX_TOKENS]: text to $TMP/fk.out, the last frame to $TMP/fk.last
	"$WIRE" --connect "$1" --timeout-ms 10000 --send "$(fake_gen "$2" "$3" "${4:-8}")" --text-until-done \
		>"$TMP/fk.out" 2>"$TMP/fk.last"
}
DONE_OK='{"type":"done","id":"@ID@","finish_reason":"stop","usage":{"prompt_tokens":3,"completion_tokens":1},"elapsed_ms":5}'

# 5. Enclave-chosen text.
LEAK=zqxLEAK
{
	i=0
	while [ $i -lt 20 ]; do
		printf '{"type":"error","code":"%s_code_%d","message":"%s message"}\n' $LEAK $i $LEAK
		i=$((i + 1))
	done
	printf '{"type":"error","id":"other","code":"bad_state","message":"%s"}\n' $LEAK
	printf '{"type":"token","id":"@ID@","text":"hello "}\n'
	printf '{"type":"done","id":"@ID@","finish_reason":"stop","usage":{"prompt_tokens":3,"completion_tokens":1},"elapsed_ms":9223372036854775807}\n'
} >"$TMP/s-stray"
printf '{"type":"error","id":"@ID@","code":"%s_unknown","message":"%s"}\n' $LEAK $LEAK >"$TMP/s-code"
printf '{"type":"token","id":"@ID@","text":"x"}\n{"type":"done","id":"@ID@","finish_reason":"stop","usage":{"prompt_tokens":100000,"completion_tokens":1},"elapsed_ms":5}\n' >"$TMP/s-usage"
printf '{"type":"token","id":"@ID@","text":"a","%s_member":1}\n' $LEAK >"$TMP/s-member"
printf '{"type":"token","id":"@ID@","text":"fine"}\n%s\n' "$DONE_OK" >"$TMP/s-ok"
fake_start fk || bad "fake enclave fk"
chain_start_proxy fk || bad "proxy fk"
PF=unix:$TMP/fk-proxy.sock
fake_ask "$PF" x1 "$TMP/s-stray"
if [ "$(cat "$TMP/fk.out")" = "hello " ] && grep -q '"type":"done"' "$TMP/fk.last" &&
	! grep -q 9223372036854775807 "$TMP/fk.last"; then ok; else
	bad "stray errors, then a done with elapsed_ms INT64_MAX: $(cat "$TMP/fk.out" "$TMP/fk.last")"
fi
fake_ask "$PF" x2 "$TMP/s-code"
if grep -q '"code":"internal"' "$TMP/fk.last"; then ok; else bad "an unknown error code: $(cat "$TMP/fk.last")"; fi
fake_ask "$PF" x3 "$TMP/s-usage"
if grep -q '"code":"internal"' "$TMP/fk.last" && grep -q '"event":"implausible_done".*"field":"prompt_tokens"' "$TMP/fk.audit"; then ok; else
	bad "prompt_tokens above n_ctx: $(cat "$TMP/fk.last")"
fi
fake_ask "$PF" x4 "$TMP/s-member"
if grep -q '"code":"enclave_lost"' "$TMP/fk.last"; then ok; else bad "an undecodable frame: $(cat "$TMP/fk.last")"; fi
chain_wait_attested fk 2 || bad "the fake enclave was not re-attested"
fake_ask "$PF" x5 "$TMP/s-ok"
if [ "$(cat "$TMP/fk.out")" = "fine" ]; then ok; else bad "after re-attestation: $(cat "$TMP/fk.out" "$TMP/fk.last")"; fi
if grep -q "$LEAK" "$TMP/fk-proxy.err" "$TMP/fk.audit"; then
	bad "enclave text in the proxy's stderr or audit log: $(grep -h "$LEAK" "$TMP/fk-proxy.err" "$TMP/fk.audit" | head -3)"
else ok; fi
if grep -q '"stray_errors":21' "$TMP/fk.audit" && [ "$(grep -c "error frame(s) about no running request" "$TMP/fk-proxy.err")" -eq 1 ]; then
	ok
else
	bad "the 21 stray error frames are not counted once: $(grep -h stray "$TMP/fk.audit") $(grep "error frame" "$TMP/fk-proxy.err")"
fi
if grep -q '"model_sha256"' "$TMP/fk.audit" && ! grep -q fake-enclave "$TMP/fk.audit"; then ok; else bad "model name in the audit log"; fi
grep -q "does not decode (bad_message)" "$TMP/fk-proxy.err" && ok || bad "undecodable frame reason: $(grep "link down" "$TMP/fk-proxy.err")"

# 6. A cancelled request, the enclave silent for 2.5 s: drained under the default deadline.
printf '{"type":"token","id":"@ID@","text":"tick "}\n@sleep:2500\n{"type":"done","id":"@ID@","finish_reason":"cancelled","usage":{"prompt_tokens":1,"completion_tokens":1},"elapsed_ms":5}\n' >"$TMP/s-silent"
"$WIRE" --connect "$PF" --send "$(fake_gen d1 "$TMP/s-silent")" --recv 1 >/dev/null 2>&1
sleep 3
fake_ask "$PF" d2 "$TMP/s-ok"
if [ "$(cat "$TMP/fk.out")" = "fine" ] && [ "$(grep -c "enclave attested" "$TMP/fk-proxy.err")" -eq 2 ] &&
	! grep -q "did not end a cancelled request" "$TMP/fk-proxy.err"; then ok; else
	bad "a slow but healthy enclave lost its link after a cancel: $(tail -n 3 "$TMP/fk-proxy.err")"
fi
chain_stop "$PROXY_PID"
"$MU" audit verify "$TMP/fk.audit" >"$TMP/v.out" 2>&1 && ok || bad "audit fk: $(cat "$TMP/v.out")"
fake_start fk2 || bad "fake enclave fk2"
chain_start_proxy fk2 --drain-timeout-ms 1000 || bad "proxy fk2"
"$WIRE" --connect "unix:$TMP/fk2-proxy.sock" --send "$(fake_gen d3 "$TMP/s-silent")" --recv 1 >/dev/null 2>&1
wait_for "$TMP/fk2-proxy.err" "did not end a cancelled request in time" 40 && ok || bad "--drain-timeout-ms 1000 did not drop a silent enclave"
chain_stop "$PROXY_PID"

# 7. An enclave that closes the link right after each attestation.
fake_start fk3 --drop-after-ready || bad "fake enclave fk3"
chain_start_proxy fk3 --reconnect-ms 100 || bad "proxy fk3"
sleep 3
N=$(grep -c "enclave attested" "$TMP/fk3-proxy.err")
echo "an enclave dropping the link after each attestation: attested $N times in 3 s (--reconnect-ms 100)"
if [ "$N" -ge 3 ] && [ "$N" -le 8 ]; then ok; else bad "reconnect backoff: attested $N times in 3 s"; fi
chain_stop "$PROXY_PID"

# 8. One closing record for a cancelled queued request whose client leaves before its done is out.
fake_start fk4 || bad "fake enclave fk4"
chain_start_proxy fk4 --egress-bps 20 --egress-burst 100 || bad "proxy fk4"
P4=unix:$TMP/fk4-proxy.sock
{
	i=0
	while [ $i -lt 10 ]; do
		printf '{"type":"token","id":"@ID@","text":"tick "}\n@sleep:100\n'
		i=$((i + 1))
	done
	printf '{"type":"done","id":"@ID@","finish_reason":"stop","usage":{"prompt_tokens":1,"completion_tokens":10},"elapsed_ms":5}\n'
} >"$TMP/s-ticks"
"$WIRE" --connect "$P4" --timeout-ms 30000 --send "$(fake_gen a1 "$TMP/s-ticks" 64)" --recv-until done >/dev/null 2>&1 &
A=$!
sleep 0.3
"$WIRE" --connect "$P4" --send "$(fake_gen b1 "$TMP/s-ticks" 64)" --send '{"type":"cancel","id":"b1"}' --sleep 3000 >/dev/null 2>&1
kill "$A" 2>/dev/null
wait "$A" 2>/dev/null
chain_stop "$PROXY_PID"
B1=$(grep '"event":"response"' "$TMP/fk4.audit" | grep -c '"id":"b1"')
if [ "$B1" -eq 1 ] && grep '"event":"response"' "$TMP/fk4.audit" | grep '"id":"b1"' | grep -q '"finish_reason":"cancelled"'; then
	ok
else
	bad "cancelled queued request b1 has $B1 closing records: $(grep '"id":"b1"' "$TMP/fk4.audit")"
fi
# 9. Refused (its measurement is not in the policy), retried every 50..800 ms for 2 s.
chain_enclave_config unl '"egress_bytes_per_s": 4096, "max_tokens": 64'
M_UNL=$("$WIRE" --fake-enclave unix:unused --config "$TMP/unl.json" --sealed "$TMP/model.mus" --measure | sed -n 's/^measurement //p')
"$WIRE" --fake-enclave "unix:$TMP/unl.sock" --config "$TMP/unl.json" --sealed "$TMP/model.mus" 2>>"$TMP/unl.err" &
CHAIN_PIDS="$CHAIN_PIDS $!"
wait_for "$TMP/unl.err" "listening on" || bad "fake enclave unl"
"$MU" proxy --enclave "unix:$TMP/unl.sock" --kbs "$KBS_ADDR" --listen "unix:$TMP/unl-proxy.sock" \
	--ledger "$TMP/unl.ledger" --audit "$TMP/unl.audit" --reconnect-ms 50 2>>"$TMP/unl-proxy.err" &
PROXY_PID=$!
CHAIN_PIDS="$CHAIN_PIDS $PROXY_PID"
sleep 2
chain_stop "$PROXY_PID"
if [ "$(grep -c '"event":"enclave_refused"' "$TMP/unl.audit")" -eq 1 ] &&
	grep '"event":"enclave_refused"' "$TMP/unl.audit" | grep '"code":"measurement_not_allowed"' | grep -q "\"measurement\":\"$M_UNL\"" &&
	[ "$(grep -c "key broker refused" "$TMP/unl-proxy.err")" -eq 1 ]; then ok; else
	bad "a refused enclave: $(grep enclave_refused "$TMP/unl.audit"; grep refused "$TMP/unl-proxy.err")"
fi
for n in fk2 fk3 fk4 unl; do
	"$MU" audit verify "$TMP/$n.audit" >"$TMP/v.out" 2>&1 && ok || bad "audit $n: $(cat "$TMP/v.out")"
done
finish
