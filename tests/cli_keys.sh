#!/bin/sh
# Command-level tests of mu keys. asan-ok
# add prints a new key once, as the only line on stdout; the file (mode 0600 whatever the umask)
# keeps only its SHA-256, which Python's hashlib recomputes from the printed key, and neither
# the file nor list nor stderr ever shows the key. list, set, remove and hash do what they say;
# duplicate or bad ids, bad numbers, a missing or damaged file are refused with exit 2 (usage)
# or 1 (refused) and a message, and a refused change leaves the file as it was.
# Env: MU (the mu binary).
set -u
. tests/lib.sh

F=$TMP/keys.json

# expect DESCRIPTION RC PATTERN COMMAND...: the command exits RC and its output has PATTERN
expect() {
	d=$1 want=$2 pat=$3; shift 3
	"$@" >"$TMP/out.txt" 2>&1
	rc=$?
	if [ "$rc" -eq "$want" ] && grep -q -- "$pat" "$TMP/out.txt"; then ok; else
		bad "$d (rc $rc, wanted $want and '$pat'): $(head -c 400 "$TMP/out.txt")"
	fi
}

# unchanged DESCRIPTION: the keys file is byte for byte what it was at the last snapshot
snapshot() { cp "$F" "$TMP/snap.json"; }
unchanged() { if cmp -s "$F" "$TMP/snap.json"; then ok; else bad "$1: the file changed"; fi; }

# pyhash KEY: SHA-256 hex of KEY, by Python
pyhash() { $PY -c 'import hashlib, sys; print(hashlib.sha256(sys.argv[1].encode()).hexdigest())' "$1"; }
# pyfield ID MEMBER: a member of key ID in $F, read by Python's json module
pyfield() {
	$PY -c '
import json, sys
d = json.load(open(sys.argv[1]))
assert d["version"] == 1
print([k for k in d["keys"] if k["id"] == sys.argv[2]][0][sys.argv[3]])' "$F" "$1" "$2"
}

# 1. add: one line on stdout, the key; the note on stderr
"$MU" keys add --file "$F" --id alice --rpm 60 --burst 10 --daily-bytes 1000 >"$TMP/alice.key" 2>"$TMP/alice.err"
check "add alice exits 0" [ $? -eq 0 ]
check "add prints exactly one line" [ "$(wc -l <"$TMP/alice.key")" -eq 1 ]
KEY_A=$(cat "$TMP/alice.key")
check "the key is mu- and 64 lower-case hex digits" sh -c "echo '$KEY_A' | grep -Eq '^mu-[0-9a-f]{64}\$'"
check "stderr says the key is shown once" grep -q "shown only this once" "$TMP/alice.err"
check "stderr says the file was created" grep -q "does not exist; creating it" "$TMP/alice.err"
check "stderr does not show the key" sh -c "! grep -q -- '${KEY_A#mu-}' '$TMP/alice.err'"
check "the file has mode 0600" [ "$(stat -c %a "$F")" = 600 ]
check "the file does not hold the key" sh -c "! grep -q -- '${KEY_A#mu-}' '$F'"
check "the file holds the key's SHA-256 (Python's)" [ "$(pyfield alice sha256)" = "$(pyhash "$KEY_A")" ]
check "the file holds alice's limits" [ "$(pyfield alice requests_per_minute) $(pyfield alice burst) $(pyfield alice daily_output_bytes) $(pyfield alice total_output_bytes)" = "60 10 1000 0" ]

(umask 000 && "$MU" keys add --file "$F" --id bob >"$TMP/bob.key" 2>"$TMP/bob.err")
check "add bob exits 0" [ $? -eq 0 ]
KEY_B=$(cat "$TMP/bob.key")
check "bob's key differs from alice's" [ "$KEY_A" != "$KEY_B" ]
check "mode 0600 under umask 000" [ "$(stat -c %a "$F")" = 600 ]
check "bob has the default burst and no limits" [ "$(pyfield bob requests_per_minute) $(pyfield bob burst) $(pyfield bob daily_output_bytes)" = "0 1 0" ]
check "alice's hash is unchanged" [ "$(pyfield alice sha256)" = "$(pyhash "$KEY_A")" ]
check "no temporary file is left" [ -z "$(ls "$TMP" | grep '\.tmp')" ]

# 2. list: ids and limits, never keys or hashes
"$MU" keys list --file "$F" >"$TMP/list.txt" 2>&1
check "list exits 0" [ $? -eq 0 ]
check "list shows alice's limits" grep -qx "alice rpm=60 burst=10 daily_bytes=1000 total_bytes=none" "$TMP/list.txt"
check "list shows bob" grep -qx "bob rpm=none burst=- daily_bytes=none total_bytes=none" "$TMP/list.txt"
check "list has one line per key" [ "$(wc -l <"$TMP/list.txt")" -eq 2 ]
check "list shows no key" sh -c "! grep -q -e '${KEY_A#mu-}' -e '${KEY_B#mu-}' '$TMP/list.txt'"
check "list shows no hash" sh -c "! grep -q -e '$(pyhash "$KEY_A")' -e '$(pyhash "$KEY_B")' '$TMP/list.txt'"

# 3. hash: the same SHA-256 as Python and as the file
check "hash of alice's key (with a newline)" [ "$(printf '%s\n' "$KEY_A" | "$MU" keys hash)" = "$(pyhash "$KEY_A")" ]
check "hash without a newline" [ "$(printf '%s' "$KEY_A" | "$MU" keys hash)" = "$(pyhash "$KEY_A")" ]
check "hash with CRLF" [ "$(printf '%s\r\n' "$KEY_A" | "$MU" keys hash)" = "$(pyhash "$KEY_A")" ]
check "hash of a key made elsewhere" [ "$(printf 'sk-elsewhere-0123456789abcdef0123456789' | "$MU" keys hash 2>/dev/null)" = "$(pyhash sk-elsewhere-0123456789abcdef0123456789)" ]
expect "hash warns about a short key" 0 "may be guessable" sh -c "printf 'short' | '$MU' keys hash"
expect "hash of nothing" 1 "holds no key" sh -c "printf '' | '$MU' keys hash"
expect "hash of a key with a space" 1 "byte 3 of the key" sh -c "printf 'ab cd' | '$MU' keys hash"
expect "hash of a key with two lines" 1 "byte 4 of the key" sh -c "printf 'abc\ndef\n' | '$MU' keys hash"
expect "hash of a key too long" 1 "longer than 4096 bytes" sh -c "head -c 5000 /dev/zero | tr '\\0' a | '$MU' keys hash"
expect "hash refuses a key as an argument" 2 "never taken as an argument" "$MU" keys hash "$KEY_A"

# 4. refusals of add
snapshot
expect "a duplicate id" 1 "a key with id \"alice\" exists already" "$MU" keys add --file "$F" --id alice
unchanged "duplicate id"
expect "an id with a space" 2 "--id: must be 1 to 32 characters" "$MU" keys add --file "$F" --id "a b"
expect "an id with a slash" 2 "--id: must be" "$MU" keys add --file "$F" --id "../x"
expect "an empty id" 2 "--id: must be" "$MU" keys add --file "$F" --id ""
expect "an id of 33 characters" 2 "--id: must be" "$MU" keys add --file "$F" --id abcdefghijklmnopqrstuvwxyz0123456
expect "no --id" 2 "--id is required" "$MU" keys add --file "$F"
expect "no --file" 2 "--file is required" "$MU" keys add --id carol
expect "--rpm not a number" 2 "'x' is not a non-negative integer" "$MU" keys add --file "$F" --id carol --rpm x
expect "--rpm negative" 2 "not a non-negative integer" "$MU" keys add --file "$F" --id carol --rpm -1
expect "--rpm too large" 2 "out of range" "$MU" keys add --file "$F" --id carol --rpm 99999999999
expect "--burst 0" 2 "out of range 1.." "$MU" keys add --file "$F" --id carol --rpm 60 --burst 0
expect "--daily-bytes with an exponent" 2 "not a non-negative integer" "$MU" keys add --file "$F" --id carol --daily-bytes 1e3
expect "--total-bytes missing its value" 2 "needs a value" "$MU" keys add --file "$F" --id carol --total-bytes
expect "--daily-bytes above INT64_MAX" 1 "output limits are at most 9223372036854775807" "$MU" keys add --file "$F" --id carol --daily-bytes 9223372036854775808
expect "--rpm above the rate limit's maximum" 1 "requests_per_minute: at most" "$MU" keys add --file "$F" --id carol --rpm 500000000
expect "an unknown option" 2 "unexpected argument '--colour'" "$MU" keys add --file "$F" --id carol --colour red
unchanged "refused adds"
check "refused adds printed no key" sh -c "! grep -Eq 'mu-[0-9a-f]{64}' '$TMP/out.txt'"

# 5. set
expect "set --rpm" 0 "changed the limits of key \"bob\"" "$MU" keys set --file "$F" --id bob --rpm 120
check "set --rpm without --burst takes the default burst" [ "$(pyfield bob requests_per_minute) $(pyfield bob burst)" = "120 20" ]
expect "set --burst --total-bytes" 0 "changed" "$MU" keys set --file "$F" --id bob --burst 5 --total-bytes 777
check "set keeps the rest" [ "$(pyfield bob requests_per_minute) $(pyfield bob burst) $(pyfield bob total_output_bytes)" = "120 5 777" ]
check "set keeps the key" [ "$(pyfield bob sha256)" = "$(pyhash "$KEY_B")" ]
expect "list after set" 0 "^bob rpm=120 burst=5 daily_bytes=none total_bytes=777\$" "$MU" keys list --file "$F"
snapshot
expect "set without limits" 2 "name at least one limit" "$MU" keys set --file "$F" --id bob
expect "set an unknown id" 1 "no key with id \"carol\"" "$MU" keys set --file "$F" --id carol --rpm 1
unchanged "refused sets"

# 6. remove
expect "remove alice" 0 "removed key \"alice\"" "$MU" keys remove --file "$F" --id alice
check "alice is gone" sh -c "'$MU' keys list --file '$F' | grep -q '^bob ' && ! '$MU' keys list --file '$F' | grep -q alice"
check "mode 0600 after remove" [ "$(stat -c %a "$F")" = 600 ]
snapshot
expect "remove an unknown id" 1 "no key with id \"alice\"" "$MU" keys remove --file "$F" --id alice
expect "remove takes no limits" 2 "unexpected argument '--rpm'" "$MU" keys remove --file "$F" --id bob --rpm 1
unchanged "refused removes"
expect "remove the last key" 0 "removed" "$MU" keys remove --file "$F" --id bob
expect "list of no keys" 0 "holds no keys" "$MU" keys list --file "$F"
check "no keys: nothing on stdout" [ -z "$("$MU" keys list --file "$F" 2>/dev/null)" ]

# 7. missing and damaged files
expect "list of a missing file" 1 "$TMP/none.json: cannot open" "$MU" keys list --file "$TMP/none.json"
expect "set on a missing file" 1 "cannot open" "$MU" keys set --file "$TMP/none.json" --id a --rpm 1
expect "remove on a missing file" 1 "cannot open" "$MU" keys remove --file "$TMP/none.json" --id a
printf '{"version": 1, "keys": []} junk' >"$F"
snapshot
expect "list of a damaged file" 1 "$F: not a valid keys file" "$MU" keys list --file "$F"
expect "add to a damaged file" 1 "not a valid keys file" "$MU" keys add --file "$F" --id dave
unchanged "add to a damaged file"
printf '{"version": 2, "keys": []}' >"$F"
expect "a later version" 1 "version: 2 (this build reads version 1)" "$MU" keys list --file "$F"
expect "add into a missing directory" 1 "cannot create" "$MU" keys add --file "$TMP/no/such/keys.json" --id dave

# 8. help and dispatch
expect "mu keys --help" 0 "usage: mu keys add" "$MU" keys --help
expect "mu keys add --help" 0 "shown.*once\|printed on stdout" "$MU" keys add --help
expect "mu keys list --help" 0 "usage: mu keys list" "$MU" keys list --help
expect "mu keys set --help" 0 "usage: mu keys set" "$MU" keys set --help
expect "mu keys remove --help" 0 "usage: mu keys remove" "$MU" keys remove --help
expect "mu keys hash --help" 0 "usage: mu keys hash" "$MU" keys hash --help
expect "mu keys with no command" 2 "usage: mu keys" "$MU" keys
expect "mu keys with an unknown command" 2 "unknown command 'frob'" "$MU" keys frob
expect "mu --help lists keys" 0 "keys .*API" "$MU" --help

finish
