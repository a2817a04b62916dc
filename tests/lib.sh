# lib.sh — sourced by the command-level test scripts (tests/cli_*.sh, run from the repository
# root): the common environment, a scratch directory removed on exit, the pass/fail counters
# and the closing line "N passed, N failed".
#   MU      the mu binary (default build/mu)
#   SHARED  the fixtures (default ../shared)
MU=${MU:-build/mu}
SHARED=${SHARED:-../shared}
PY=/usr/bin/python3
TMP=build/tmp/$(basename "$0" .sh).$$
mkdir -p "$TMP"
trap 'rm -rf "$TMP"' EXIT
pass=0 fail=0
ok() { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "FAIL: $*"; }
check() { # check DESCRIPTION COMMAND...: passes when the command succeeds
	d=$1; shift
	if "$@"; then ok; else bad "$d"; fi
}
expect_fail() { # expect_fail CODE PATTERN COMMAND...: exits CODE and its output has PATTERN
	want=$1 pat=$2; shift 2
	"$@" >"$TMP/out.txt" 2>&1
	rc=$?
	if [ "$rc" -eq "$want" ] && grep -q -- "$pat" "$TMP/out.txt"; then ok; else
		bad "'$*' exited $rc (want $want) / missing '$pat': $(head -c 300 "$TMP/out.txt")"
	fi
}
finish() { # the closing line; the script's exit status
	echo "$pass passed, $fail failed"
	[ "$fail" -eq 0 ]
}
