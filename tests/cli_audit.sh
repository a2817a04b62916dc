#!/bin/sh
# Command-level tests of mu audit verify. asan-ok
# A log built by an independent writer (Python's hashlib computing the chain) verifies, with the
# head Python computed; a log written by host/audit.c (tests/test_audit --write-log) passes
# Python's own chain check; edits, deletions, a torn tail and a missing file are reported with
# exit 1 and the right line; usage errors exit 2.
# Env: MU (the mu binary), TEST_AUDIT (default build/tests/test_audit).
set -u
. tests/lib.sh
TEST_AUDIT=${TEST_AUDIT:-build/tests/test_audit}

# expect DESCRIPTION RC PATTERN COMMAND...: the command exits RC and its output has PATTERN
expect() {
	d=$1 want=$2 pat=$3; shift 3
	"$@" >"$TMP/out.txt" 2>&1
	rc=$?
	if [ "$rc" -eq "$want" ] && grep -q -- "$pat" "$TMP/out.txt"; then ok; else
		bad "$d (rc $rc, wanted $want and '$pat'): $(head -c 400 "$TMP/out.txt")"
	fi
}

# mklog FILE N: N records chained by Python; prints the head.
mklog() {
	$PY - "$1" "$2" <<'EOF'
import hashlib, json, sys
path, n = sys.argv[1], int(sys.argv[2])
prev = "0" * 64
with open(path, "wb") as f:
    for i in range(1, n + 1):
        rec = {"seq": i, "ts_ms": 1700000000000 + i, "prev": prev, "event": "response",
               "client": "c-%d" % (i % 4), "bytes": 100 + i}
        line = json.dumps(rec, separators=(",", ":")).encode()
        f.write(line + b"\n")
        prev = hashlib.sha256(line).hexdigest()
print(prev)
EOF
}

# pyverify FILE: Python's own check of a log's chain; prints "ok N HEAD".
pyverify() {
	$PY - "$1" <<'EOF'
import hashlib, json, sys
data = open(sys.argv[1], "rb").read()
assert data.endswith(b"\n")
prev = "0" * 64
lines = data[:-1].split(b"\n")
for k, line in enumerate(lines, 1):
    rec = json.loads(line)
    assert rec["seq"] == k and rec["prev"] == prev and isinstance(rec["ts_ms"], int) and rec["event"], k
    prev = hashlib.sha256(line).hexdigest()
print("ok", len(lines), prev)
EOF
}

# edit FILE LINE OLD NEW: replaces the first OLD in line LINE (1-based) with NEW, in place.
edit() {
	$PY - "$@" <<'EOF'
import sys
path, k, old, new = sys.argv[1], int(sys.argv[2]), sys.argv[3].encode(), sys.argv[4].encode()
lines = open(path, "rb").read().split(b"\n")
assert old in lines[k - 1]
lines[k - 1] = lines[k - 1].replace(old, new, 1)
open(path, "wb").write(b"\n".join(lines))
EOF
}

L=$TMP/audit.log
HEAD=$(mklog "$L" 20)
expect "a Python-built log verifies with Python's head" 0 "^$L: ok, 20 records, head $HEAD\$" "$MU" audit verify "$L"

# 1. damage, each reported at the documented line
cp "$L" "$TMP/a.log"; edit "$TMP/a.log" 5 '"bytes":105' '"bytes":905'
expect "a value edited on line 5 shows on line 6" 1 "^$TMP/a.log: line 6: prev does not match line 5" "$MU" audit verify "$TMP/a.log"
cp "$L" "$TMP/b.log"; edit "$TMP/b.log" 5 '{"seq"' '["seq"'
expect "broken JSON on line 5" 1 "^$TMP/b.log: line 5: not valid JSON" "$MU" audit verify "$TMP/b.log"
cp "$L" "$TMP/c.log"; edit "$TMP/c.log" 5 '"seq":5' '"seq":6'
expect "a wrong seq on line 5" 1 "^$TMP/c.log: line 5: seq is 6, expected 5" "$MU" audit verify "$TMP/c.log"
sed '7d' "$L" >"$TMP/d.log"
expect "line 7 deleted" 1 "^$TMP/d.log: line 7: seq is 8, expected 7" "$MU" audit verify "$TMP/d.log"
awk 'NR == 10 { held = $0; next } NR == 11 { print; print held; next } { print }' "$L" >"$TMP/e.log"
expect "lines 10 and 11 swapped" 1 "^$TMP/e.log: line 10: seq is 11, expected 10" "$MU" audit verify "$TMP/e.log"
cp "$L" "$TMP/f.log"; edit "$TMP/f.log" 20 '"bytes":120' '"bytes":121'
expect "an edit of the last line changes the head" 0 "^$TMP/f.log: ok, 20 records, head " "$MU" audit verify "$TMP/f.log"
check "... and only the head" sh -c "! grep -q '$HEAD' '$TMP/out.txt'"
head -c -30 "$L" >"$TMP/g.log"
expect "a torn tail is reported" 1 "^$TMP/g.log: line 20: incomplete last line" "$MU" audit verify "$TMP/g.log"
: >"$TMP/empty.log"
expect "an empty log" 0 "ok, 0 records, head 0000000000000000000000000000000000000000000000000000000000000000" "$MU" audit verify "$TMP/empty.log"
expect "a missing file" 1 "cannot open" "$MU" audit verify "$TMP/missing.log"
expect "a directory" 1 "not a regular file" "$MU" audit verify "$TMP"

# 2. a log written by host/audit.c passes Python's independent check
if [ -x "$TEST_AUDIT" ]; then
	"$TEST_AUDIT" --write-log "$TMP/c-written.log" 25
	check "test_audit --write-log" test $? -eq 0
	PYV=$(pyverify "$TMP/c-written.log" 2>&1)
	check "Python verifies the C writer's chain ($PYV)" test "${PYV%% *}" = ok
	expect "mu agrees on the C-written log" 0 "ok, 25 records, head ${PYV##* }\$" "$MU" audit verify "$TMP/c-written.log"
else
	echo "note: $TEST_AUDIT not built; C-writer cross-check skipped"
fi

# 3. usage
expect "--help" 0 "usage: mu audit verify FILE" "$MU" audit --help
expect "no arguments" 2 "usage:" "$MU" audit
expect "verify without a file" 2 "usage:" "$MU" audit verify
expect "unknown subcommand" 2 "unexpected argument 'frob'" "$MU" audit frob "$L"
expect "two files" 2 "unexpected argument" "$MU" audit verify "$L" "$L"
expect "unknown option" 2 "unexpected argument '--fast'" "$MU" audit verify --fast "$L"

finish
