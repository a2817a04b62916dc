#!/usr/bin/python3
"""sealed_ref.py — an independent implementation of the sealed-model format.

It shares no code with src/seal: it follows docs/sealed-format.md using the `cryptography`
package (AESGCM, HKDF) and Python's hashlib/hmac, so agreement with `mu seal` / `mu unseal`
checks the format itself, not one implementation against itself.

    sealed_ref.py unseal KEYFILE FILE.mus PLAIN.gguf   verify FILE.mus fully and compare its
                                                       plaintext with PLAIN.gguf (prints "ok")
    sealed_ref.py seal KEYHEX SALTHEX CHUNK SIZE       seal the test pattern byte i = (7i+3) % 256
                                                       of SIZE bytes; print sha256 and key id
                                                       (the known answers in tests/test_sealed.c)
    sealed_ref.py corpus DIR                           write the seed corpus of fuzz/fuzz_sealed.c
                                                       (key 00..1f, deterministic salts)
"""
import hashlib
import hmac
import struct
import sys

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

HEADER = 128
TAG = 16


def keys(key, salt):
    def hk(info):
        return HKDF(hashes.SHA256(), 32, salt, info).derive(key)

    return hk(b"mu-seal v1 chunk key"), hk(b"mu-seal v1 header key")


def key_id(key):
    return hmac.new(key, b"mu-seal key id v1", hashlib.sha256).digest()[:16]


def nonce(i):
    return b"\0" * 4 + struct.pack(">Q", i)


def aad(header_hash, i, final):
    return b"mu-seal chunk v1" + header_hash + struct.pack("<Q", i) + bytes([final])


def n_chunks(size, cs):
    return max(1, -(-size // cs))


def seal(key, salt, pt, cs, digest=None):
    size = len(pt)
    n = n_chunks(size, cs)
    k_chunk, k_hdr = keys(key, salt)
    h = b"MUSEALED" + struct.pack("<HHIQ", 1, 1, cs, size) + (digest or hashlib.sha256(pt).digest())
    h += key_id(key) + salt + b"\0" * 8
    h += hmac.new(k_hdr, h, hashlib.sha256).digest()[:16]
    hh = hashlib.sha256(h).digest()
    g = AESGCM(k_chunk)
    out = [h]
    for i in range(n):
        out.append(g.encrypt(nonce(i), pt[i * cs:(i + 1) * cs], aad(hh, i, int(i == n - 1))))
    return b"".join(out)


def unseal(key, data):
    h = data[:HEADER]
    if len(h) < HEADER or h[:8] != b"MUSEALED":
        raise ValueError("not a sealed model")
    version, suite, cs, size = struct.unpack_from("<HHIQ", h, 8)
    if version != 1 or suite != 1:
        raise ValueError("unsupported")
    if cs < 65536 or cs > 64 << 20 or cs & (cs - 1):
        raise ValueError("chunk size")
    digest, kid, salt, reserved, tag = h[24:56], h[56:72], h[72:104], h[104:112], h[112:128]
    if reserved != b"\0" * 8:
        raise ValueError("reserved")
    if kid != key_id(key):
        raise ValueError("wrong key")
    k_chunk, k_hdr = keys(key, salt)
    if not hmac.compare_digest(tag, hmac.new(k_hdr, h[:112], hashlib.sha256).digest()[:16]):
        raise ValueError("header corrupted")
    n = n_chunks(size, cs)
    if len(data) != HEADER + size + TAG * n:
        raise ValueError("file size")
    hh = hashlib.sha256(h).digest()
    g = AESGCM(k_chunk)
    out, off = [], HEADER
    for i in range(n):
        length = min(cs, size - i * cs)
        out.append(g.decrypt(nonce(i), data[off:off + length + TAG], aad(hh, i, int(i == n - 1))))
        off += length + TAG
    pt = b"".join(out)
    if hashlib.sha256(pt).digest() != digest:
        raise ValueError("plaintext digest mismatch")
    return pt


def pattern(n, seed=0):
    return bytes((i * 7 + 3 + seed * 131) & 0xFF for i in range(n))


def corpus(d):
    key, other = bytes(range(32)), bytes(range(100, 132))
    salt = hashlib.sha256(b"fuzz salt").digest()
    cs = 65536
    small = seal(key, salt, pattern(300), cs)
    two = seal(key, salt, pattern(cs + 10, 1), cs)
    full2 = seal(key, salt, pattern(2 * cs, 2), cs)

    def edit(data, off, new):
        b = bytearray(data)
        b[off:off + len(new)] = new
        return bytes(b)

    stride = cs + TAG
    seeds = {
        "valid-empty": seal(key, salt, b"", cs),
        "valid-small": small,
        "valid-two-chunks": two,
        "valid-chunk-128k": seal(key, salt, pattern(1000, 3), 2 * cs),
        "bad-short": small[:100],
        "bad-magic": edit(small, 0, b"MUSEALEX"),
        "bad-version": edit(small, 8, struct.pack("<H", 2)),
        "bad-suite": edit(small, 10, struct.pack("<H", 7)),
        "bad-chunk-size": edit(small, 12, struct.pack("<I", 100000)),
        "bad-reserved": edit(small, 104, b"\x01"),
        "bad-key-id": seal(other, salt, pattern(300), cs),
        "bad-header-tag": edit(small, 127, bytes([small[127] ^ 1])),
        "bad-plaintext-size": edit(small, 16, struct.pack("<Q", 299)),
        "bad-truncated-boundary": small[:HEADER],
        "bad-truncated-inside": small[:200],
        "bad-extra-chunk": small + small[HEADER:],
        "bad-extra-byte": small + b"\0",
        "bad-chunk-flip": edit(small, HEADER + 5, bytes([small[HEADER + 5] ^ 0x40])),
        "bad-tag-flip": edit(small, len(small) - 1, bytes([small[-1] ^ 1])),
        "bad-reordered": full2[:HEADER] + full2[HEADER + stride:] + full2[HEADER:HEADER + stride],
        "bad-digest": seal(key, salt, pattern(300), cs, digest=b"\0" * 32),
    }
    for name, data in seeds.items():
        with open(f"{d}/{name}", "wb") as f:
            f.write(data)


def main(argv):
    if len(argv) == 3 and argv[1] == "corpus":
        corpus(argv[2])
        return 0
    if len(argv) == 5 and argv[1] == "unseal":
        key = open(argv[2], "rb").read()
        pt = unseal(key, open(argv[3], "rb").read())
        if pt != open(argv[4], "rb").read():
            print("plaintext differs")
            return 1
        print("ok")
        return 0
    if len(argv) == 6 and argv[1] == "seal":
        key, salt = bytes.fromhex(argv[2]), bytes.fromhex(argv[3])
        pt = bytes((i * 7 + 3) & 0xFF for i in range(int(argv[5])))
        out = seal(key, salt, pt, int(argv[4]))
        print(len(out), hashlib.sha256(out).hexdigest(), key_id(key).hex())
        return 0
    sys.stderr.write(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
