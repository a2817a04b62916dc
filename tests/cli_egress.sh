#!/bin/sh
# Egress under attack. The test enclave's "@flood" script writes token frames as fast as it
# can; the client counts every byte it receives for 30 s. Two chains run side by side:
#   enclave  the enclave's own limiter at RATE bytes/s (burst BURST); the proxy's cap far above
#   proxy    the enclave's limiter switched off (test build only); the proxy's cap at RATE
# Each must deliver at most RATE x t + BURST bytes in t seconds — and at least 80% of RATE x t,
# which shows the flood really pressed against the cap.
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

for n in encl prox; do
	"$MU" audit verify "$TMP/$n.audit" >"$TMP/v.out" 2>&1 && ok || bad "audit $n: $(cat "$TMP/v.out")"
done
finish
