#!/bin/sh
# Replays each libFuzzer harness over its seed corpus (fuzz/corpus/NAME) once: every input
# must run without a crash, leak or sanitizer report.
set -u
pass=0 fail=0
for f in "$@"; do
	n=$(basename "$f")
	dir=fuzz/corpus/${n#fuzz_}
	if [ ! -d "$dir" ]; then
		echo "$n: no corpus at $dir"
		fail=$((fail + 1))
		continue
	fi
	cnt=$(find "$dir" -type f | wc -l)
	if "$f" -runs=0 "$dir" >"build/logs/replay-$n.log" 2>&1; then
		echo "$n: replayed $cnt inputs"
		pass=$((pass + 1))
	else
		echo "$n: FAILED, see build/logs/replay-$n.log"
		tail -n 20 "build/logs/replay-$n.log"
		fail=$((fail + 1))
	fi
done
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
