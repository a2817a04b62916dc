#!/bin/sh
# Runs the whole test suite and prints one closing line "N passed, N failed".
#
# Steps: warning-free builds under gcc and clang; the engine links no libm; the enclave VM
# image (static enclave, minimal kernel, initramfs; tests/cli_vm.sh boots it); the static
# enclave within its TCB budget (tcb-budget.txt: lines, system calls, libraries); cppcheck with
# no findings; every test binary
# (tests/test_*.c); every command-level test script (tests/cli_*.sh); the same test binaries
# built with ASan+UBSan; each libFuzzer harness replaying its corpus under ASan+UBSan.
# Every step prints its own "N passed, N failed"; this script adds them up.
set -u
cd "$(dirname "$0")/.."
SHARED=${SHARED:-../shared}
export SHARED
# the build steps (gcc, clang, ASan, the fuzz harnesses) are most of the run's time: use every core
MAKE=${MAKE:-make -j$(nproc 2>/dev/null || echo 2)}

total_pass=0
total_fail=0
failed_steps=""

# count STEP-NAME LOGFILE RC: add the step's closing line (or 1 pass / 1 fail from rc).
count() {
	name=$1 log=$2 rc=$3
	line=$(grep -E '^([A-Za-z-]+: )?[0-9]+ passed, [0-9]+ failed' "$log" | tail -n 1)
	if [ -n "$line" ]; then
		p=$(echo "$line" | sed -E 's/^([A-Za-z-]+: )?([0-9]+) passed, ([0-9]+) failed.*/\2/')
		f=$(echo "$line" | sed -E 's/^([A-Za-z-]+: )?([0-9]+) passed, ([0-9]+) failed.*/\3/')
	else
		p=0 f=0
	fi
	if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
		f=1
	fi
	if [ "$rc" -eq 0 ] && [ -z "$line" ]; then
		p=1
	fi
	total_pass=$((total_pass + p))
	total_fail=$((total_fail + f))
	if [ "$f" -ne 0 ]; then
		failed_steps="$failed_steps $name"
		echo "  FAIL $name ($p passed, $f failed) -- log follows:"
		tail -n 40 "$log" | sed 's/^/    | /'
	else
		echo "  ok   $name ($p passed)"
	fi
}

step() {
	name=$1
	shift
	log=build/logs/$(echo "$name" | tr '/ ' '__').log
	start=$(date +%s)
	"$@" >"$log" 2>&1
	rc=$?
	count "$name" "$log" "$rc"
	end=$(date +%s)
	[ $((end - start)) -ge 10 ] && echo "       ($name took $((end - start)) s)"
	return 0
}

mkdir -p build/logs

echo "== build"
step "build gcc -Werror" $MAKE --no-print-directory check-build
step "build clang -Werror" $MAKE --no-print-directory check-clang
step "engine links no libm" ./tests/check_no_libm.sh build/libmu_engine.a

echo "== enclave VM image (the kernel is built once, then cached; docs/vm.md)"
step "make image" $MAKE --no-print-directory image

echo "== cppcheck over src/ and cmd/ (docs/analysis.md; valgrind and clang-tidy are make targets)"
step "cppcheck" $MAKE --no-print-directory check-cppcheck

echo "== the enclave's TCB budget (tcb-budget.txt; docs/attack-surface.md)"
step "TCB budget" build/mu surface build/musl/mu-enclave --budget tcb-budget.txt

echo "== unit tests"
for t in build/tests/test_*; do
	[ -x "$t" ] || continue
	step "$(basename "$t")" "$t"
done

echo "== command tests"
for s in tests/cli_*.sh; do
	[ -f "$s" ] || continue
	step "$(basename "$s" .sh)" env MU=build/mu sh "$s"
done

echo "== ASan+UBSan"
step "build asan" $MAKE --no-print-directory check-asan
for t in build/asan/tests/test_*; do
	[ -x "$t" ] || continue
	step "asan $(basename "$t")" env ASAN_OPTIONS=detect_leaks=1 "$t"
done
for s in tests/cli_*.sh; do
	[ -f "$s" ] || continue
	grep -q 'asan-ok' "$s" || continue
	step "asan $(basename "$s" .sh)" env MU=build/asan/mu MU_ASAN=1 sh "$s"
done

echo "== fuzz corpus replay"
step "fuzz replay" $MAKE --no-print-directory fuzz-replay

echo
if [ -n "$failed_steps" ]; then
	echo "failed steps:$failed_steps"
fi
echo "$total_pass passed, $total_fail failed"
[ "$total_fail" -eq 0 ]
