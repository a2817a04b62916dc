#!/usr/bin/python3
"""compare.py — compares logits vectors for tests/cli_ref_oracle.sh.

    compare.py raw ENGINE.f32 ORACLE.f32 --rel R [--ties]
        pass when max|engine - oracle| <= R * max(1, max|oracle|); with --ties, when that
        holds for ORACLE.f32 or for one of the alternatives ORACLE.f32.tieK listed in
        ORACLE.f32.ties (ref_forward.py --ties: the same forward pass with one activation
        rounding tie resolved the other way)
    compare.py txt ENGINE.f32 REFERENCE.txt --abs A
        REFERENCE.txt: one float per line, '#' lines are comments;
        pass when max|engine - reference| <= A

Both files must hold the same number of values, and every value must be finite. Prints one
line with the measured difference and the bound; exits 0 on pass, 1 on fail, 2 on bad input.
"""

import argparse
import sys

import numpy as np


def load_raw(path):
    with open(path, "rb") as f:
        b = f.read()
    if len(b) == 0 or len(b) % 4:
        raise ValueError("%s: %d bytes is not a non-empty float32 vector" % (path, len(b)))
    return np.frombuffer(b, dtype="<f4").astype(np.float64)


def load_txt(path):
    vals = []
    with open(path) as f:
        for line in f:
            s = line.strip()
            if s and not s.startswith("#"):
                vals.append(float(s))
    if not vals:
        raise ValueError("%s: no values" % path)
    return np.array(vals, dtype=np.float64)


def main(argv):
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=["raw", "txt"])
    ap.add_argument("engine")
    ap.add_argument("reference")
    ap.add_argument("--rel", type=float)
    ap.add_argument("--abs", type=float)
    ap.add_argument("--ties", action="store_true")
    a = ap.parse_args(argv)
    try:
        e = load_raw(a.engine)
        r = load_raw(a.reference) if a.mode == "raw" else load_txt(a.reference)
    except (OSError, ValueError) as ex:
        print("bad input: %s" % ex)
        return 2
    if e.size != r.size:
        print("length mismatch: engine %d values, reference %d" % (e.size, r.size))
        return 1
    if not np.all(np.isfinite(e)) or not np.all(np.isfinite(r)):
        print("non-finite values: engine %d, reference %d"
              % (int((~np.isfinite(e)).sum()), int((~np.isfinite(r)).sum())))
        return 1
    ok, msg = check(e, r, a)
    if ok or not a.ties:
        print(msg)
        return 0 if ok else 1
    ties = None
    try:
        with open(a.reference + ".ties") as f:
            ties = [line.rstrip("\n") for line in f if line.strip()]
    except FileNotFoundError:
        print(msg)
        return 1
    for line in ties:
        k = line.split(":", 1)[0]
        try:
            alt = load_raw("%s.%s" % (a.reference, k))
        except (OSError, ValueError) as ex:
            print("bad input: %s" % ex)
            return 2
        if alt.size == e.size and np.all(np.isfinite(alt)):
            alt_ok, alt_msg = check(e, alt, a)
            if alt_ok:
                print("%s against the oracle with %s" % (alt_msg, line))
                return 0
    print(msg + "".join("\n  also tried " + t for t in ties))
    if not ties:
        print("  (the oracle found no activation-rounding tie to try)")
    return 1


def check(e, r, a):
    diff = np.abs(e - r)
    i = int(np.argmax(diff))
    scale = max(1.0, float(np.abs(r).max()))
    if a.mode == "raw":
        bound = (a.rel if a.rel is not None else 1e-4) * scale
    else:
        bound = a.abs if a.abs is not None else 1e-5
    ok = bool(diff[i] <= bound)
    msg = ("max|diff| %.3e at %d (got %.7g, want %.7g), max|want| %.4g, bound %.3e, "
           "argmax %d/%d: %s"
           % (diff[i], i, e[i], r[i], float(np.abs(r).max()), bound,
              int(np.argmax(e)), int(np.argmax(r)), "ok" if ok else "FAIL"))
    return ok, msg


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
