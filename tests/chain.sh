# chain.sh — sourced by the tests that run the whole chain in process mode (key broker,
# enclave, proxy, client), after tests/lib.sh. Everything it starts is stopped on exit.
#
#   chain_seal MODEL.gguf           keygen + seal into $TMP/model.key, $TMP/model.mus
#   chain_enclave_config NAME JSON  writes $TMP/NAME.json: the members in JSON plus "model" and
#                                   "channel": unix:$TMP/NAME.sock
#   chain_measure BIN NAME          the measurement of enclave binary BIN with config NAME
#   chain_kbs M1 [M2 ...]           policy allowing those measurements (dev evidence) + broker;
#                                   its egress maximum is $CHAIN_MAX_EGRESS (default 4096)
#   chain_start_enclave BIN NAME    starts an enclave; waits until it listens; pid in $ENCLAVE_PID
#   chain_start_proxy NAME ARGS...  starts `mu proxy` for enclave NAME, listening on
#                                   unix:$TMP/NAME-proxy.sock, ledger $TMP/NAME.ledger, audit
#                                   $TMP/NAME.audit; waits for the attestation; pid in $PROXY_PID
#   chain_wait_attested NAME N      waits until the proxy for NAME has attested N times
#   chain_stop PID                  TERM, then KILL
#
# Binaries follow $MU: build/mu → build/mu-enclave, build/tests/...; build/asan/mu → the ASan
# builds of the same.
BIN_DIR=$(dirname "$MU")
ENCLAVE=${MU_ENCLAVE:-$BIN_DIR/mu-enclave} # MU_ENCLAVE: another build of it (the static one)
ENCLAVE_TEST=$BIN_DIR/tests/mu-enclave-test
WIRE=$BIN_DIR/tests/tool_wire
CHAIN_PIDS=
KBS_ADDR=
chain_cleanup() {
	for p in $CHAIN_PIDS; do kill -TERM "$p" 2>/dev/null; done
	sleep 0.2
	for p in $CHAIN_PIDS; do kill -KILL "$p" 2>/dev/null; done
	rm -rf "$TMP"
}
trap chain_cleanup EXIT

# wait_for FILE PATTERN [TENTHS]: until FILE has a line matching PATTERN (default 30 s).
wait_for() {
	i=0 n=${3:-300}
	while [ $i -lt "$n" ]; do
		grep -q -- "$2" "$1" 2>/dev/null && return 0
		sleep 0.1
		i=$((i + 1))
	done
	echo "timed out waiting for '$2' in $1:" >&2
	tail -n 5 "$1" >&2
	return 1
}

chain_seal() {
	"$MU" keygen -o "$TMP/model.key" >"$TMP/keygen.out" 2>&1 &&
		"$MU" seal --key "$TMP/model.key" "$1" "$TMP/model.mus" >"$TMP/seal.out" 2>&1
}

chain_enclave_config() {
	printf '{"model": "%s", "channel": "unix:%s", %s}\n' "$TMP/model.mus" "$TMP/$1.sock" "$2" >"$TMP/$1.json"
}

chain_measure() {
	"$1" --config "$TMP/$2.json" --measure | sed -n 's/^measurement //p'
}

chain_kbs() {
	K=$(od -An -v -tx1 -j56 -N16 "$TMP/model.mus" | tr -d ' \n') # the sealed header's key id
	{
		printf '{"version": 1, "allow_dev_evidence": true, "nonce_ttl_ms": 10000,'
		printf ' "max_egress_bytes_per_s": %s, "measurements": {' "${CHAIN_MAX_EGRESS:-4096}"
		sep=
		for m in "$@"; do
			printf '%s"%s": {"key_ids": ["%s"], "note": "test enclave"}' "$sep" "$m" "$K"
			sep=,
		done
		printf '}}\n'
	} >"$TMP/policy.json"
	"$MU" kbs --policy "$TMP/policy.json" --key "$TMP/model.key" --listen "unix:$TMP/kbs.sock" \
		--audit "$TMP/kbs-audit.log" 2>"$TMP/kbs.err" &
	CHAIN_PIDS="$CHAIN_PIDS $!"
	wait_for "$TMP/kbs.err" "listening on" || return 1
	KBS_ADDR=unix:$TMP/kbs.sock
}

chain_start_enclave() {
	"$1" --config "$TMP/$2.json" 2>>"$TMP/$2.err" &
	ENCLAVE_PID=$!
	CHAIN_PIDS="$CHAIN_PIDS $ENCLAVE_PID"
	wait_for "$TMP/$2.err" "listening on"
}

chain_start_proxy() {
	name=$1
	shift
	"$MU" proxy --enclave "unix:$TMP/$name.sock" --kbs "$KBS_ADDR" --listen "unix:$TMP/$name-proxy.sock" \
		--ledger "$TMP/$name.ledger" --audit "$TMP/$name.audit" --reconnect-ms 200 "$@" 2>>"$TMP/$name-proxy.err" &
	PROXY_PID=$!
	CHAIN_PIDS="$CHAIN_PIDS $PROXY_PID"
	chain_wait_attested "$name" 1
}

chain_wait_attested() {
	i=0
	while [ $i -lt 600 ]; do
		n=$(grep -c "enclave attested" "$TMP/$1-proxy.err" 2>/dev/null)
		[ "${n:-0}" -ge "$2" ] && return 0
		sleep 0.1
		i=$((i + 1))
	done
	echo "proxy for $1 did not attest $2 time(s):" >&2
	tail -n 5 "$TMP/$1-proxy.err" >&2
	return 1
}

chain_stop() {
	kill -TERM "$1" 2>/dev/null
	i=0
	while kill -0 "$1" 2>/dev/null && [ $i -lt 30 ]; do
		sleep 0.1
		i=$((i + 1))
	done
	kill -KILL "$1" 2>/dev/null
	wait "$1" 2>/dev/null
	return 0
}

# hexs TEXT: the bytes of TEXT as lower-case hex
hexs() { printf '%s' "$1" | od -An -v -tx1 | tr -d ' \n'; }
