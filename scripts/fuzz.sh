#!/bin/sh
# Runs each libFuzzer harness for real (make fuzz FUZZ_SECONDS=N): SECONDS of fuzzing each,
# starting from the committed seeds (fuzz/corpus/NAME) plus what earlier runs found
# (build/fuzz-corpus/NAME). A crash does not stop the run: the input that caused it is kept in
# build/fuzz-crashes/ and the next harness starts. At the end a table gives each harness's
# executions, executions per second, corpus growth, peak memory and crashes, and is written to
# build/fuzz-report.txt (docs/fuzzing.md quotes one). Exits 1 when any harness crashed.
#
#   scripts/fuzz.sh SECONDS HARNESS...
set -u
if [ $# -lt 2 ]; then
	echo "usage: scripts/fuzz.sh SECONDS HARNESS..." >&2
	exit 2
fi
secs=$1
shift
case $secs in
'' | *[!0-9]*)
	echo "scripts/fuzz.sh: SECONDS must be a whole number, got '$secs'" >&2
	exit 2
	;;
esac
mkdir -p build/fuzz-crashes build/logs
report=build/fuzz-report.txt
tmp=$report.tmp
{
	echo "# make fuzz FUZZ_SECONDS=$secs, $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, $(clang --version | head -n 1)"
	printf '%-16s %12s %10s %8s %8s %8s %8s\n' harness executions exec/s seeds corpus rss_mb crashes
} >"$tmp"
crashed=0
for f in "$@"; do
	n=$(basename "$f")
	seeds=fuzz/corpus/${n#fuzz_}
	work=build/fuzz-corpus/$n
	mkdir -p "$work"
	log=build/logs/fuzz-$n.log
	nseeds=$(find "$seeds" -type f | wc -l)
	before=$(find build/fuzz-crashes -name "$n-*" -type f | wc -l)
	echo "== $n for ${secs}s (log: $log)"
	# -fork=0 keeps one process; -ignore_crashes has no effect without fork, so a crash ends
	# this harness's run and the loop moves on.
	"$f" -max_total_time="$secs" -print_final_stats=1 -artifact_prefix="build/fuzz-crashes/$n-" \
		"$work" "$seeds" >"$log" 2>&1
	rc=$?
	after=$(find build/fuzz-crashes -name "$n-*" -type f | wc -l)
	crashes=$((after - before))
	[ "$rc" -ne 0 ] && [ "$crashes" -eq 0 ] && crashes=1
	execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
	speed=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -n 1)
	rss=$(sed -n 's/^stat::peak_rss_mb: *//p' "$log" | tail -n 1)
	corpus=$(find "$work" -type f | wc -l)
	printf '%-16s %12s %10s %8s %8s %8s %8s\n' "$n" "${execs:-?}" "${speed:-?}" "$nseeds" \
		"$corpus" "${rss:-?}" "$crashes" | tee -a "$tmp"
	if [ "$crashes" -ne 0 ]; then
		crashed=$((crashed + 1))
		grep -m 1 -E 'ERROR: (AddressSanitizer|libFuzzer|UndefinedBehaviorSanitizer)|runtime error' "$log"
	fi
done
mv "$tmp" "$report"
echo "report: $report"
if [ "$crashed" -ne 0 ]; then
	echo "$crashed harness(es) crashed; the inputs are in build/fuzz-crashes/ (a fixed crash's" \
		"input joins fuzz/corpus/NAME so make check replays it)"
	exit 1
fi
