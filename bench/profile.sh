#!/bin/sh
# Where one mu bench run spends its time, by function: perf record on mu bench, then every
# function with at least 0.5% of the samples and the share of each object (mu itself, libc,
# the kernel: page faults and scheduling show up there). Sampling starts when mu bench says it
# is measuring, so loading the model (the copy, packing, page clearing) is left out.
#
#   bench/profile.sh [-t THREADS] [-p N] [-n N] [-l map|copy] MODEL.gguf
#
#   -t THREADS  worker threads (default 1)
#   -p N        prompt tokens (default 0: decode only)
#   -n N        generated tokens (default 64)
#   -l map|copy mu bench --load (default copy)
#
# Environment: MU (default build/mu of this checkout), PERF (default perf, from Debian's
# linux-perf package; it needs permission to sample, see kernel.perf_event_paranoid).
set -eu
ROOT=$(cd "$(dirname "$0")/.." && pwd)
MU=${MU:-$ROOT/build/mu}
PERF=${PERF:-perf}
T=1 PP=0 TG=64 LOAD=copy

die() {
	echo "profile.sh: $*" >&2
	exit 2
}
number() {
	case $2 in
	'' | *[!0-9]*) die "$1: '$2' is not a non-negative integer" ;;
	esac
}
while [ $# -gt 0 ]; do
	case $1 in
	-h | --help) sed -n '2,/^set -eu/p' "$0" | sed -e '/^set -eu/d' -e 's/^# \{0,1\}//'; exit 0 ;;
	-t) [ $# -ge 2 ] || die "-t needs a value"; number -t "$2"; T=$2; shift 2 ;;
	-p) [ $# -ge 2 ] || die "-p needs a value"; number -p "$2"; PP=$2; shift 2 ;;
	-n) [ $# -ge 2 ] || die "-n needs a value"; number -n "$2"; TG=$2; shift 2 ;;
	-l) [ $# -ge 2 ] || die "-l needs a value"; LOAD=$2; shift 2 ;;
	-*) die "unknown option '$1' (see --help)" ;;
	*) break ;;
	esac
done
[ $# -eq 1 ] || die "one model file (usage: bench/profile.sh [-t THREADS] [-p N] [-n N] [-l map|copy] MODEL.gguf)"
[ -f "$1" ] || die "$1: no such model file"
case $LOAD in map | copy) ;; *) die "-l: '$LOAD' is not map or copy" ;; esac
[ -x "$MU" ] || die "$MU: no mu binary (build it with make, or set MU)"
command -v "$PERF" >/dev/null 2>&1 || die "$PERF not found (Debian: apt-get install linux-perf; or set PERF)"

TMP=$(mktemp -d "${TMPDIR:-/tmp}/mu-profile.XXXXXX")
trap 'rm -rf "$TMP"' EXIT
# perf starts with its events disabled (-D -1) and enables them through a control FIFO when
# mu bench prints its "measuring" line.
mkfifo "$TMP/ctl" "$TMP/ack"
"$PERF" record -q -F 2000 -D -1 --control "fifo:$TMP/ctl,$TMP/ack" -o "$TMP/perf.data" -- \
	"$MU" bench -m "$1" -t "$T" -p "$PP" -n "$TG" -r 1 --load "$LOAD" >"$TMP/bench.txt" 2>"$TMP/err" &
pid=$!
exec 3<>"$TMP/ctl" 4<>"$TMP/ack" # opened both ways: neither open blocks
while ! grep -q 'measuring$' "$TMP/err" 2>/dev/null; do
	kill -0 "$pid" 2>/dev/null || break
	sleep 0.1
done
echo enable >&3
wait "$pid" || { cat "$TMP/err" >&2; die "perf record or mu bench failed"; }
exec 3>&- 4>&-
grep -q 'measuring$' "$TMP/err" || { cat "$TMP/err" >&2; die "mu bench never started measuring"; }
grep -E '^\| ' "$TMP/bench.txt" | tail -n +3
"$PERF" report -q -i "$TMP/perf.data" --no-children --sort dso --stdio 2>/dev/null | grep -q '%' ||
	die "perf recorded no samples (is kernel.perf_event_paranoid too strict, or was the run too short?)"
echo
echo "by object:"
"$PERF" report -q -i "$TMP/perf.data" --no-children --sort dso --stdio 2>/dev/null | grep -E '%' | head -n 8
echo
echo "by function (>= 0.5%):"
"$PERF" report -q -i "$TMP/perf.data" --no-children --sort dso,sym --percent-limit 0.5 --stdio 2>/dev/null |
	grep -E '%' | head -n 30
