#!/bin/sh
# Egress under attack. The test enclave's "@flood" script writes token frames as fast as it
# can; the client counts every byte it receives for 30 s. Two chains run side by side:
#   enclave  the enclave's own limiter at RATE bytes/s (burst BURST); the proxy's cap far above
#   proxy    the enclave's limiter switched off (test build only); the proxy's cap at RATE
# Each must deliver at most RATE x t + BURST bytes in t seconds — and at least 80% of RATE x t,
# which shows the flood really pressed against the cap. Then `mu exfil measure` makes the same
# measurement through the proxy-capped chain and reports the days per model it implies.
set -u
. tests/lib.sh
. tests/chain.sh
MODEL=$SHARED/models/stories260K/stories260K.gguf
RATE=2000 BURST=2000 SECONDS_=${EGRESS_SECONDS:-30}

chain_seal "$MODEL" || bad "seal: $(cat "$TMP/seal.out")"
chain_enclave_config encl "\"egress_bytes_per_s\": $RATE, \"egress_burst_bytes\": $BURST, \"max_tokens\": 65536"
chain_enclave_config prox "\"egress_bytes_per_s\": $RATE, \"egress_burst_bytes\": $BURST, \"max_tokens\": 65536, \"test_no_egress_limit\": true"
chain_kbs "$(chain_measure "$ENCLAVE_TEST" encl)" "$(chain_measure "$ENCLAVE_TEST" prox)" || bad "key broker did not start"
chain_start_enclave "$ENCLAVE_TEST" encl || bad "enclave (limited) did not start"
chain_start_enclave "$ENCLAVE_TEST" prox || bad "enclave (unlimited) did not start"
chain_start_proxy encl --egress-bps 4000000000 --egress-burst 4000000000 --daily-bytes 0 || bad "proxy encl"
chain_start_proxy prox --egress-bps $RATE --egress-burst $BURST --daily-bytes 0 || bad "proxy prox"

FLOOD='{"type":"generate","id":"flood","prompt":"@flood","max_tokens":65536}'
for n in encl prox; do
	"$WIRE" --connect "unix:$TMP/$n-proxy.sock" --timeout-ms 60000 --send "$FLOOD" --count-bytes "$SECONDS_" \
		>"$TMP/$n.count" 2>"$TMP/$n.count.err" &
	eval "PID_$n=\$!"
done
# shellcheck disable=SC2154
wait "$PID_encl" "$PID_prox"

for n in encl prox; do
	line=$(cat "$TMP/$n.count")
	b=$(echo "$line" | sed -n 's/.*bytes \([0-9]*\) frames.*/\1/p')
	s=$(echo "$line" | sed -n 's/.*seconds \([0-9.]*\).*/\1/p')
	if [ -z "$b" ] || [ -z "$s" ]; then
		bad "$n: no count: $line $(cat "$TMP/$n.count.err")"
		continue
	fi
	verdict=$(awk -v b="$b" -v s="$s" -v r=$RATE -v k=$BURST \
		'BEGIN { max = r * s + k; min = 0.8 * r * s;
		         printf "%s %.0f B/s over %.1f s (cap %d B/s + %d burst: max %.0f, min %.0f)",
		         (b <= max && b >= min) ? "ok" : "BAD", b / s, s, r, k, max, min }')
	echo "$n limiter: $b bytes: $verdict"
	case $verdict in ok*) ok ;; *) bad "$n limiter: $b bytes: $verdict" ;; esac
done

# mu exfil measure, the user's tool for the same claim, against the proxy's own cap: observed
# <= cap x t + burst, the flood pressing against it (>= 80%), and the days it implies.
MEASURE_S=${EXFIL_SECONDS:-10}
if "$MU" exfil measure --proxy "unix:$TMP/prox-proxy.sock" --cap $RATE --burst $BURST --seconds "$MEASURE_S" \
	-n 65536 --size 6G --size 140G --json >"$TMP/measure.json" 2>"$TMP/measure.err"; then
	check "mu exfil measure: observed <= cap, pressed against it, days per model" $PY -c "
import json, sys
d = json.load(open(sys.argv[1])); rate, burst = float(sys.argv[2]), float(sys.argv[3])
assert d['within_cap'] is True and not d['answer_ended'], d
assert d['bytes'] <= rate * d['seconds'] + burst and d['bytes'] >= 0.8 * rate * d['seconds'], d
assert abs(d['observed_bytes_per_s'] - d['bytes'] / d['seconds']) < 1e-3, d
for s, want in zip(d['sizes'], (6e9, 140e9)):
    assert s['bytes'] == want and abs(s['days_at_observed'] - want / d['observed_bytes_per_s'] / 86400) < 1e-6 * s['days_at_observed'], s
print('mu exfil measure --json: %d bytes in %.2f s, %.0f B/s against a cap of %d (+ %d burst): within_cap %s; 6 GB in %.1f days' % (d['bytes'], d['seconds'], d['observed_bytes_per_s'], rate, burst, d['within_cap'], d['sizes'][0]['days_at_observed']))
" "$TMP/measure.json" $RATE $BURST
else
	bad "mu exfil measure: $(cat "$TMP/measure.err")"
fi

for n in encl prox; do
	"$MU" audit verify "$TMP/$n.audit" >"$TMP/v.out" 2>&1 && ok || bad "audit $n: $(cat "$TMP/v.out")"
done
finish
