#!/bin/sh
# Runs clang-tidy with the checks in .clang-tidy over every .c file of src/ and cmd/ (or the
# files given), JOBS at a time, every finding an error, and prints one closing line
# "N passed, N failed" (one count per file). See docs/analysis.md.
#
# The files are compiled as the build compiles them: TIDY_CFLAGS (the Makefile passes its
# ALL_CFLAGS) after "--". The MU_ENCLAVE_TEST variant of the enclave sources is not analysed
# here (cppcheck covers it); it is test-only code that no image contains.
#
# Environment: JOBS (default 2), TIDY_CFLAGS, CLANG_TIDY (default clang-tidy).
set -u
cd "$(dirname "$0")/.." || exit 1
JOBS=${JOBS:-2}
TIDY_CFLAGS=${TIDY_CFLAGS:--std=c11 -Isrc}
CLANG_TIDY=${CLANG_TIDY:-clang-tidy}
LOGS=build/logs/tidy

# one FILE: analyse it, write LOGS/NAME.result ("pass FILE" / "fail FILE").
if [ "${1:-}" = "--one" ]; then
	f=$2
	n=$(echo "$f" | tr / _)
	# shellcheck disable=SC2086
	"$CLANG_TIDY" --quiet -warnings-as-errors='*' "$f" -- $TIDY_CFLAGS >"$LOGS/$n.log" 2>&1
	rc=$?
	if [ "$rc" -eq 0 ] && ! grep -qE '(warning|error):' "$LOGS/$n.log"; then
		echo "pass $f" >"$LOGS/$n.result"
	else
		echo "fail $f" >"$LOGS/$n.result"
	fi
	exit 0
fi

if ! command -v "$CLANG_TIDY" >/dev/null 2>&1; then
	echo "$CLANG_TIDY is not installed (make deps)"
	echo "0 passed, 1 failed"
	exit 1
fi
mkdir -p "$LOGS"
rm -f "$LOGS"/*.result "$LOGS"/*.log
if [ "$#" -eq 0 ]; then
	set -- src/*/*.c cmd/*/*.c
fi
start=$(date +%s)
for f in "$@"; do
	printf '%s\n' "$f"
done | xargs -P "$JOBS" -I{} sh tests/tidy.sh --one {}

pass=0 fail=0
for r in "$LOGS"/*.result; do
	[ -f "$r" ] || continue
	case $(cat "$r") in
	pass*) pass=$((pass + 1)) ;;
	fail*)
		fail=$((fail + 1))
		grep -v -E '^[0-9]+ (warning|error)s? (generated|treated as errors)' "${r%.result}.log"
		;;
	esac
done
echo "clang-tidy: $(($(date +%s) - start)) s with $JOBS jobs, logs in $LOGS"
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
