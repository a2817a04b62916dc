#!/bin/sh
# Command-level tests of mu keygen / seal / unseal --check. asan-ok
# Env: MU (the mu binary), SHARED (the fixtures, default ../shared).
set -u
. tests/lib.sh
STORIES=$SHARED/models/stories260K/stories260K.gguf
# refused DESCRIPTION PATTERN COMMAND...: the command fails (exit 1) and stderr has PATTERN
refused() {
	d=$1 pat=$2; shift 2
	"$@" >"$TMP/out.txt" 2>"$TMP/err.txt"
	rc=$?
	if [ "$rc" -eq 1 ] && grep -q -- "$pat" "$TMP/err.txt"; then ok; else
		bad "$d (rc $rc, wanted '$pat'): $(cat "$TMP/err.txt")"
	fi
	cat "$TMP/err.txt" >>"$TMP/all-stderr.txt"
}
# pybytes SCRIPT ARGS...: small byte surgery on files, in Python
pybytes() { $PY -c "$@"; }

K=$TMP/model.key
M=$TMP/stories.mus

# 1. keygen: 32 bytes, mode 0600, prints the key id, never overwrites.
check "keygen succeeds" sh -c "'$MU' keygen -o '$K' >'$TMP/keygen.txt' 2>&1"
check "key file is 32 bytes" test "$(wc -c <"$K")" -eq 32
check "key file mode is 0600" test "$(stat -c %a "$K")" = 600
KID=$(sed -n 's/.*key id \([0-9a-f]\{32\}\)$/\1/p' "$TMP/keygen.txt")
check "keygen prints the key id" test -n "$KID"
cp "$K" "$TMP/key.copy"
refused "keygen refuses to overwrite" "already exists" "$MU" keygen -o "$K"
check "existing key left intact" cmp -s "$K" "$TMP/key.copy"
"$MU" keygen -o "$TMP/other.key" >/dev/null 2>&1
check "two keys differ" sh -c "! cmp -s '$K' '$TMP/other.key'"

# 2. seal stories260K in 64 KiB chunks.
"$MU" seal --key "$K" --chunk-size 64K "$STORIES" "$M" >"$TMP/seal.txt" 2>"$TMP/seal.err"
check "seal succeeds" test $? -eq 0
check "seal reports size and chunks" grep -q '^sealed 1185376 bytes in 19 chunks, [0-9]* MB/s$' "$TMP/seal.txt"
check "no progress bar when stderr is not a terminal" test ! -s "$TMP/seal.err"
check "sealed size = 128 + plaintext + 16 per chunk" test "$(wc -c <"$M")" -eq $((128 + 1185376 + 16 * 19))
check "no temporary file left" sh -c "! ls '$TMP' | grep -q '\.tmp\.'"

# 3. unseal --check passes, reports, and writes nothing.
"$MU" unseal --check --key "$K" "$M" >"$TMP/check.txt" 2>&1
check "unseal --check succeeds" test $? -eq 0
check "unseal --check says ok" grep -q "^$M: ok: header, 19 chunk tags and the plaintext SHA-256 verified$" "$TMP/check.txt"
check "unseal --check prints the key id" grep -q "^key id  *$KID$" "$TMP/check.txt"
SHA=$(sha256sum "$STORIES" | cut -d' ' -f1)
check "unseal --check prints the plaintext digest" grep -q "^sha256  *$SHA$" "$TMP/check.txt"
check "unseal --check parses the GGUF inside" grep -q "GGUF v3 with 48 tensors" "$TMP/check.txt"
check "unseal --check reports locked memory" grep -q '^memory  *\(mlock\|memfd_secret\)' "$TMP/check.txt"
check "unseal --check reports GB/s" grep -q 'GB/s on [0-9]* thread' "$TMP/check.txt"
"$MU" unseal --check --key "$K" -t 1 "$M" >/dev/null 2>&1
check "unseal --check on 1 thread" test $? -eq 0
"$MU" unseal --check --key "$K" --secretmem -t 3 "$M" >/dev/null 2>&1
check "unseal --check into memfd_secret memory" test $? -eq 0
mkdir "$TMP/w"
cp "$M" "$TMP/w/m.mus"
ls -la "$TMP/w" >"$TMP/before.txt"
case $MU in /*) MUA=$MU ;; *) MUA=$PWD/$MU ;; esac
(cd "$TMP/w" && "$MUA" unseal --check --key ../model.key m.mus >/dev/null 2>&1)
check "unseal --check in the file's folder" test $? -eq 0
ls -la "$TMP/w" >"$TMP/after.txt"
check "unseal --check wrote no file" cmp -s "$TMP/before.txt" "$TMP/after.txt"
"$MU" unseal --key "$K" "$M" >/dev/null 2>"$TMP/err.txt"
check "unseal without --check is a usage error" test $? -eq 2
check "no option writes plaintext" grep -q "no option to write" "$TMP/err.txt"

# 4. An independent implementation (tests/ref/sealed_ref.py, python3-cryptography, installed by
#    scripts/deps.sh) decrypts the same file.
check "reference implementation unseals mu's file" sh -c "$PY tests/ref/sealed_ref.py unseal '$K' '$M' '$STORIES' | grep -q '^ok$'"

# 5. Ciphertext everywhere: no 64-byte window of the plaintext appears in the sealed file.
#    Any such window contains a whole 32-byte block at a multiple of 32 in the plaintext, so
#    looking for those blocks (at every offset of the sealed file) is the stricter check.
no_window() { # no_window PLAIN SEALED
	$PY - "$1" "$2" <<'PY'
import sys
pt, enc = open(sys.argv[1], "rb").read(), open(sys.argv[2], "rb").read()
blocks = {pt[i:i + 32] for i in range(0, len(pt) - 31, 32)}
hits = [i for i in range(len(enc) - 31) if enc[i:i + 32] in blocks]
sys.exit(1 if hits else 0)
PY
}
check "sealed file holds no 64-byte window of the plaintext" no_window "$STORIES" "$M"

# 6. Tampered, truncated, extended, reordered, wrong-key files are refused, each in its words.
CH=$((65536 + 16))
cp "$M" "$TMP/t.mus"
pybytes "import sys; f=open(sys.argv[1],'r+b'); f.seek(int(sys.argv[2])); b=f.read(1); f.seek(-1,1); f.write(bytes([b[0]^4]))" "$TMP/t.mus" $((128 + 5 * CH + 1000))
refused "a flipped bit in chunk 5" "t.mus: chunk 5 failed authentication (corrupted)" "$MU" unseal --check --key "$K" "$TMP/t.mus"
cp "$M" "$TMP/t.mus"
pybytes "import sys; f=open(sys.argv[1],'r+b'); f.seek(30); f.write(b'x')" "$TMP/t.mus"
refused "an edited header" "header corrupted (authentication failed)" "$MU" unseal --check --key "$K" "$TMP/t.mus"
cp "$M" "$TMP/t.mus"
pybytes "import sys; f=open(sys.argv[1],'r+b'); f.seek(8); f.write(b'\x02\x00')" "$TMP/t.mus"
refused "a newer version" "version 2 is not supported" "$MU" unseal --check --key "$K" "$TMP/t.mus"
head -c $((128 + 10 * CH)) "$M" >"$TMP/t.mus"
refused "truncated at a chunk boundary" "truncated: 10 of 19 chunks present" "$MU" unseal --check --key "$K" "$TMP/t.mus"
head -c $((128 + 10 * CH + 99)) "$M" >"$TMP/t.mus"
refused "truncated inside a chunk" "truncated inside chunk 10" "$MU" unseal --check --key "$K" "$TMP/t.mus"
head -c 100 "$M" >"$TMP/t.mus"
refused "shorter than a header" "not a sealed model" "$MU" unseal --check --key "$K" "$TMP/t.mus"
cp "$M" "$TMP/t.mus"
pybytes "import sys; d=open(sys.argv[1],'rb').read(); open(sys.argv[1],'ab').write(d[128:128+int(sys.argv[2])])" "$TMP/t.mus" $CH
refused "an extra chunk appended" "an extra chunk after the final chunk" "$MU" unseal --check --key "$K" "$TMP/t.mus"
cp "$M" "$TMP/t.mus"
printf 'x' >>"$TMP/t.mus"
refused "a byte appended" "extra data after the final chunk" "$MU" unseal --check --key "$K" "$TMP/t.mus"
pybytes "
import sys
d = bytearray(open(sys.argv[1], 'rb').read()); c = int(sys.argv[3]); a = 128 + 2 * c; b = 128 + 3 * c
d[a:a + c], d[b:b + c] = d[b:b + c], d[a:a + c]
open(sys.argv[2], 'wb').write(d)" "$M" "$TMP/t.mus" $CH
refused "two chunks swapped" "chunks reordered: position 2 holds chunk 3" "$MU" unseal --check --key "$K" "$TMP/t.mus"
OID=$("$MU" keygen -o "$TMP/third.key" | sed -n 's/.*key id //p')
refused "the wrong key" "wrong key: sealed for key id $KID, this key is $OID" "$MU" unseal --check --key "$TMP/third.key" "$M"
refused "a non-sealed file" "not a sealed model (bad magic)" "$MU" unseal --check --key "$K" "$STORIES"

# 7. Key files: exactly 32 bytes; a readable key is used, with a warning.
head -c 31 "$K" >"$TMP/short.key"
refused "a 31-byte key file" "exactly 32 bytes" "$MU" unseal --check --key "$TMP/short.key" "$M"
cp "$K" "$TMP/open.key"
chmod 644 "$TMP/open.key"
"$MU" unseal --check --key "$TMP/open.key" "$M" >/dev/null 2>"$TMP/err.txt"
check "a group-readable key still works" test $? -eq 0
check "a group-readable key is warned about" grep -q "readable by group or others" "$TMP/err.txt"

# 8. seal refuses what it should.
refused "seal refuses a non-GGUF" "not a valid GGUF model, refusing to seal it" "$MU" seal --key "$K" "$TMP/short.key" "$TMP/x.mus"
check "nothing written for a non-GGUF" test ! -e "$TMP/x.mus"
refused "seal refuses a sealed file as input" "not a valid GGUF" "$MU" seal --key "$K" "$M" "$TMP/x.mus"
refused "seal refuses to overwrite" "exists (use --force" "$MU" seal --key "$K" "$STORIES" "$M"
cp "$M" "$TMP/old.mus"
"$MU" seal --key "$K" --force "$STORIES" "$M" >"$TMP/seal2.txt" 2>&1
check "seal --force replaces (default 4 MiB chunks: one chunk)" grep -q '^sealed 1185376 bytes in 1 chunks' "$TMP/seal2.txt"
check "a fresh salt: the new file differs" sh -c "! cmp -s '$TMP/old.mus' '$M'"
check "the replaced file unseals" sh -c "'$MU' unseal --check --key '$K' '$M' >/dev/null 2>&1"
for cs in 1000 32K 128M 3M; do
	"$MU" seal --key "$K" --chunk-size "$cs" "$STORIES" "$TMP/cs.mus" >/dev/null 2>&1
	check "--chunk-size $cs refused as a usage error" test $? -eq 2
done
"$MU" seal --key "$K" --chunk-size 64M -t 1 "$STORIES" "$TMP/cs.mus" >/dev/null 2>&1
check "--chunk-size 64M accepted" sh -c "'$MU' unseal --check --key '$K' -t 1 '$TMP/cs.mus' >/dev/null 2>&1"

# 9. No secret in any message: the key's hex never appears on stderr.
KEYHEX=$($PY -c "import sys; print(open(sys.argv[1],'rb').read().hex())" "$K")
check "no key bytes in any error message" sh -c "! grep -qi '$KEYHEX' '$TMP/all-stderr.txt'"

finish
