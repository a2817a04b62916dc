#!/usr/bin/python3
"""v0_client.py — a client of mu-enclave's insecure compatibility protocol v0 (docs/protocol.md,
last section), for tests/cli_enclave.sh.

    v0_client.py --connect ADDR --psk PSK_FILE --key MODEL_KEY_FILE ACTION...

ADDR is unix:PATH or tcp:HOST:PORT. The client reads the enclave's {"measurement"} (printed on
stderr as "measurement HEX"), sends the model key AES-256-GCM-encrypted under the pre-shared
key ({"nonce", "tag", "ciphertext"}, 12-byte random nonce, empty AAD), and expects
{"status": "ready"} ("ready" on stderr). Then the actions, in order:

    --prompt TEXT --max-new-tokens N   one request; the completion goes to stdout followed by
                                       a newline (as `mu run --no-prompt` ends its output)
    --send JSON                        one frame with this body; the reply body is printed on
                                       stdout, one line
    --send-hex HEX                     the same with a body given as hex bytes

Exit status: 0; 1 usage or connection problems; 2 the enclave closed the connection or broke
the framing; 3 the enclave answered the unlock or a --prompt with {"error"} (printed on
stderr).
"""
import json
import os
import socket
import struct
import sys

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

MAX_FRAME = 1 << 20


def die(code, msg):
    sys.stderr.write(msg + "\n")
    sys.exit(code)


def dial(addr):
    if addr.startswith("unix:"):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(addr[5:])
    elif addr.startswith("tcp:"):
        host, _, port = addr[4:].rpartition(":")
        s = socket.create_connection((host.strip("[]"), int(port)))
    else:
        die(1, "address must be unix:PATH or tcp:HOST:PORT")
    s.settimeout(30)
    return s


def recv_exact(s, n):
    out = b""
    while len(out) < n:
        chunk = s.recv(n - len(out))
        if not chunk:
            die(2, "the enclave closed the connection")
        out += chunk
    return out


def send_frame(s, body):
    s.sendall(struct.pack(">I", len(body)) + body)


def recv_frame(s):
    (n,) = struct.unpack(">I", recv_exact(s, 4))
    if n == 0 or n > MAX_FRAME:
        die(2, "bad frame length %d from the enclave" % n)
    return recv_exact(s, n)


def strict_loads(body):
    """JSON with duplicate keys refused, as the protocol demands of both ends."""
    def pairs(items):
        keys = [k for k, _ in items]
        if len(set(keys)) != len(keys):
            raise ValueError("duplicate key")
        return dict(items)
    return json.loads(body.decode("utf-8"), object_pairs_hook=pairs)


def read_file(path):
    with open(path, "rb") as f:
        return f.read()


def main(argv):
    addr = psk_path = key_path = None
    actions = []
    i = 0
    while i < len(argv):
        a = argv[i]
        v = argv[i + 1] if i + 1 < len(argv) else None
        if v is None:
            die(1, "%s needs a value" % a)
        if a == "--connect":
            addr = v
        elif a == "--psk":
            psk_path = v
        elif a == "--key":
            key_path = v
        elif a == "--prompt":
            actions.append(["prompt", v, None])
        elif a == "--max-new-tokens":
            if not actions or actions[-1][0] != "prompt":
                die(1, "--max-new-tokens follows --prompt")
            actions[-1][2] = int(v)
        elif a == "--send":
            actions.append(["send", v.encode("utf-8"), None])
        elif a == "--send-hex":
            actions.append(["send", bytes.fromhex(v), None])
        else:
            die(1, "unknown argument %s" % a)
        i += 2
    if not addr or not psk_path or not key_path:
        die(1, "usage: v0_client.py --connect ADDR --psk FILE --key FILE ACTION...")
    psk, model_key = read_file(psk_path), read_file(key_path)
    if len(psk) != 32 or len(model_key) != 32:
        die(1, "key files hold exactly 32 bytes")

    s = dial(addr)
    hello = strict_loads(recv_frame(s))
    if set(hello) != {"measurement"}:
        die(2, "expected {\"measurement\"}, got %r" % hello)
    sys.stderr.write("measurement %s\n" % hello["measurement"])

    nonce = os.urandom(12)
    sealed = AESGCM(psk).encrypt(nonce, model_key, None)  # ciphertext || tag
    token = {"nonce": nonce.hex(), "tag": sealed[32:].hex(), "ciphertext": sealed[:32].hex()}
    send_frame(s, json.dumps(token).encode())
    reply = strict_loads(recv_frame(s))
    if reply != {"status": "ready"}:
        die(3, "unlock: %s" % json.dumps(reply))
    sys.stderr.write("ready\n")

    for kind, v, n in actions:
        if kind == "send":
            send_frame(s, v)
            sys.stdout.buffer.write(recv_frame(s) + b"\n")
            sys.stdout.flush()
            continue
        req = {"prompt": v, "max_new_tokens": n if n is not None else 64}
        send_frame(s, json.dumps(req).encode("utf-8"))
        reply = strict_loads(recv_frame(s))
        if set(reply) != {"completion", "elapsed_ms"}:
            die(3, "request: %s" % json.dumps(reply))
        sys.stdout.buffer.write(reply["completion"].encode("utf-8") + b"\n")
        sys.stdout.flush()
    s.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
