#!/bin/sh
# demo.sh — the whole system on one machine (what `make demo` runs):
#   the model owner seals the default model; the key broker starts with a policy for this
#   enclave; the enclave starts, holding only ciphertext (in its VM: PID 1 of a guest with no
#   network, the sealed model on a read-only disk, one virtio-serial port); the proxy attests
#   it through the broker (the key is released to the enclave only); one question goes
#   through the proxy and the answer streams back through the egress cap, the budget ledger
#   and the output filter; then the same through the proxy's OpenAI-compatible HTTP API.
# Everything it starts is stopped at the end; the scratch directory is removed.
#
#   scripts/demo.sh [--vm | --process] [MODEL.gguf] [PROMPT]
#
# --vm (the default) needs the image from `make image` in $BUILD/image; --process runs
# $BUILD/mu-enclave as a process on a Unix socket instead.
set -u
MODE=vm
case "${1:-}" in
--vm) shift ;;
--process) MODE=process; shift ;;
-*) echo "usage: scripts/demo.sh [--vm | --process] [MODEL.gguf] [PROMPT]" >&2; exit 2 ;;
esac
BUILD=${BUILD:-build}
SHARED=${SHARED:-../shared}
MODEL=${1:-$SHARED/models/stories260K/stories260K.gguf}
PROMPT=${2:-Once upon a time}
MU=$BUILD/mu
ENCLAVE=$BUILD/mu-enclave
[ "$MODE" = vm ] && ENCLAVE=$BUILD/musl/mu-enclave # the image's /init: measured on the host
RATE=${DEMO_EGRESS:-4096}
DIR=$(mktemp -d "${TMPDIR:-/tmp}/mu-demo.XXXXXX")
PIDS=
cleanup() {
	for p in $PIDS; do kill -TERM "$p" 2>/dev/null; done
	for p in $PIDS; do wait "$p" 2>/dev/null; done
	rm -rf "$DIR"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
say() { printf '\n== %s\n' "$*"; }
wait_for() { # wait_for FILE PATTERN [TENTHS]: up to 60 s by default
	i=0
	while [ $i -lt "${3:-600}" ]; do
		grep -q -- "$2" "$1" 2>/dev/null && return 0
		sleep 0.1
		i=$((i + 1))
	done
	echo "demo: timed out waiting for '$2'; the log says:" >&2
	cat "$1" >&2
	exit 1
}

say "1. The model owner seals $(basename "$MODEL") (AES-256-GCM, 1 MiB chunks)"
"$MU" keygen -o "$DIR/model.key" || exit 1
"$MU" seal --key "$DIR/model.key" "$MODEL" "$DIR/model.mus" || exit 1

say "2. The enclave's config (measured: the egress cap of $RATE bytes/s is part of what is attested)"
if [ "$MODE" = vm ]; then
	# In the VM the model is the read-only disk /dev/vda and the channel the virtio-serial port.
	cat >"$DIR/enclave.json" <<EOF
{"model": "/dev/vda", "channel": "dev:/dev/virtio-ports/mu.channel",
 "egress_bytes_per_s": $RATE, "egress_burst_bytes": 4096, "max_tokens": 256}
EOF
else
	cat >"$DIR/enclave.json" <<EOF
{"model": "$DIR/model.mus", "channel": "unix:$DIR/enclave.sock",
 "egress_bytes_per_s": $RATE, "egress_burst_bytes": 4096, "max_tokens": 256}
EOF
fi
cat "$DIR/enclave.json"
"$ENCLAVE" --config "$DIR/enclave.json" --measure --model "$DIR/model.mus" >"$DIR/measure.out" || exit 1
M=$(sed -n 's/^measurement //p' "$DIR/measure.out")
K=$(sed -n 's/^key_id //p' "$DIR/measure.out")
[ -n "$M" ] || exit 1
echo "measurement $M"

say "3. The key broker: releases key $K only to measurement ${M%"${M#????????????????}"}..."
cat >"$DIR/policy.json" <<EOF
{"version": 1, "allow_dev_evidence": true, "nonce_ttl_ms": 30000, "max_egress_bytes_per_s": $RATE,
 "measurements": {"$M": {"key_ids": ["$K"], "note": "demo enclave (dev evidence: no hardware signs it)"}}}
EOF
"$MU" kbs --policy "$DIR/policy.json" --key "$DIR/model.key" --listen "unix:$DIR/kbs.sock" \
	--audit "$DIR/kbs-audit.log" 2>"$DIR/kbs.log" &
PIDS="$PIDS $!"
wait_for "$DIR/kbs.log" "listening on"
cat "$DIR/kbs.log"

if [ "$MODE" = vm ]; then
	say "4. The enclave VM boots with ciphertext only (QEMU, no network device), then the proxy attests it"
	"$MU" vm run --image "$BUILD/image" --model "$DIR/model.mus" --config "$DIR/enclave.json" \
		--channel "unix:$DIR/enclave.sock" --console "$DIR/console.log" >"$DIR/enclave.log" 2>&1 &
	PIDS="$PIDS $!"
	wait_for "$DIR/enclave.log" "enclave ready" 1800
	grep '^mu-enclave: guest:' "$DIR/console.log"
else
	say "4. The enclave starts with ciphertext only, then the proxy attests it"
	"$ENCLAVE" --config "$DIR/enclave.json" 2>"$DIR/enclave.log" &
	PIDS="$PIDS $!"
	wait_for "$DIR/enclave.log" "listening on"
fi
mkdir -p "$DIR/keystate"
APIKEY=$("$MU" keys add --file "$DIR/keys.json" --id demo --rpm 60 2>/dev/null) || exit 1
"$MU" proxy --enclave "unix:$DIR/enclave.sock" --kbs "unix:$DIR/kbs.sock" --listen "unix:$DIR/proxy.sock" \
	--http tcp:127.0.0.1:0 --keys "$DIR/keys.json" --key-state "$DIR/keystate" \
	--ledger "$DIR/ledger.json" --audit "$DIR/audit.log" --egress-bps "$RATE" --egress-burst 4096 \
	2>"$DIR/proxy.log" &
PIDS="$PIDS $!"
wait_for "$DIR/proxy.log" "enclave attested"
cat "$DIR/enclave.log" "$DIR/proxy.log"

say "5. mu ask -p \"$PROMPT\": streamed through the proxy at most $RATE bytes/s after a 4096-byte burst"
printf '%s' "$PROMPT"
"$MU" ask --proxy "unix:$DIR/proxy.sock" -p "$PROMPT" -n 200 || exit 1
echo

HTTP=$(sed -n 's/.*http listening on tcp:\([0-9.]*:[0-9]*\) .*/\1/p' "$DIR/proxy.log")
NAME=$(curl -s --max-time 10 "http://$HTTP/v1/models" -H "Authorization: Bearer $APIKEY" |
	sed -n 's/.*"id":"\([^"]*\)".*/\1/p')
JPROMPT=$(printf '%s' "$PROMPT" | sed 's/\\/\\\\/g; s/"/\\"/g')
say "6. The same proxy speaks OpenAI's API (docs/http.md): a chat completion with an API key"
echo "curl http://$HTTP/v1/chat/completions -H 'Authorization: Bearer mu-...' -d '{\"model\": \"$NAME\", ...}'"
curl -s --max-time 120 "http://$HTTP/v1/chat/completions" -H "Authorization: Bearer $APIKEY" \
	-d '{"model": "'"$NAME"'", "messages": [{"role": "user", "content": "'"$JPROMPT"'"}], "max_tokens": 40}' || exit 1

say "7. The proxy's audit log (sizes, timings and decisions; never text)"
"$MU" audit verify "$DIR/audit.log"
tail -n 2 "$DIR/audit.log"
echo
say "Stopping the proxy, the enclave$([ "$MODE" = vm ] && echo " VM") and the broker"
