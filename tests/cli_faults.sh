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
chain_kbs "$(chain_measure "$ENCLAVE_TEST" led)" "$(chain_measure "$ENCLAVE_TEST" vic)" || bad "key broker"
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
chain_stop "$PROXY_PID"
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
finish
