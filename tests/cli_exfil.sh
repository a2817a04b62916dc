#!/bin/sh
# mu exfil, the calculator: the least time to move a model through the egress cap, checked
# against the arithmetic (size / min(cap, tokens/s x bits / 8)) for the founding documents'
# examples and for given sizes, caps and token bounds; the SVG plot is well-formed XML with a
# line and a point per size for every cap, and its points lie where the times say; bad input
# is refused with exit 2 and nothing written. The measured counterpart (a flooding enclave
# against the real proxy) is tests/cli_egress.sh. asan-ok
# Env: MU (the mu binary).
set -u
. tests/lib.sh

# 1. The default table: the founding documents' three models at 1-5 KB/s.
"$MU" exfil --json >"$TMP/def.json" 2>"$TMP/err" || bad "mu exfil --json: $(cat "$TMP/err")"
check "defaults: 3 models x 5 caps, time = size / cap" $PY -c "
import json, sys
d = json.load(open(sys.argv[1]))
rows = d['rows']
assert d['token_bound_bytes_per_s'] is None and len(rows) == 15, d
sizes = sorted({r['bytes'] for r in rows}); caps = sorted({r['cap_bytes_per_s'] for r in rows})
assert sizes == [6e9, 140e9, 350e9] and caps == [1000, 2000, 3000, 4000, 5000], (sizes, caps)
for r in rows:
    assert r['rate_bytes_per_s'] == r['cap_bytes_per_s'], r
    assert abs(r['seconds'] - r['bytes'] / r['cap_bytes_per_s']) <= 1e-9 * r['seconds'], r
    assert abs(r['days'] * 86400 - r['seconds']) <= 1e-6 * r['seconds'], r
    assert abs(r['years'] * 365.25 - r['days']) <= 1e-9 * r['days'], r
# the founding documents' figures at 5 KB/s: about 14 days, 324 days, 2.2 years
at5 = {r['bytes']: r for r in rows if r['cap_bytes_per_s'] == 5000}
assert round(at5[6e9]['days']) == 14 and round(at5[140e9]['days']) == 324 and round(at5[350e9]['years'], 1) == 2.2, at5
" "$TMP/def.json"
"$MU" exfil >"$TMP/def.txt"
check "the table names the models" sh -c "grep -q '^LLaMA-70B (FP16) .*140 GB .*5 KB .*324.1 days$' '$TMP/def.txt'"

# 2. Given sizes and caps, suffixes, and the token bound taking over below the cap.
"$MU" exfil --size 1.5G --size 70000000000 --size 2TB --cap 5K --cap 100 --tps 20 --bits-per-token 17 --json \
	>"$TMP/tok.json" 2>"$TMP/err" || bad "mu exfil with a token bound: $(cat "$TMP/err")"
check "token bound: rate = min(cap, tps x bits / 8)" $PY -c "
import json, sys
d = json.load(open(sys.argv[1]))
assert d['token_bound_bytes_per_s'] == 20 * 17 / 8, d
rows = d['rows']
assert [r['bytes'] for r in rows] == [1.5e9, 1.5e9, 7e10, 7e10, 2e12, 2e12], rows
for r in rows:
    want = min(r['cap_bytes_per_s'], 42.5)
    assert r['rate_bytes_per_s'] == want and abs(r['seconds'] - r['bytes'] / want) <= 1e-9 * r['seconds'], r
" "$TMP/tok.json"

# 3. The plot: well-formed SVG, a line per cap, a point per size on it, where the time is.
"$MU" exfil --size 6G --size 140G --size 350G --cap 1K --cap 5K --plot "$TMP/plot.svg" >"$TMP/plot.out" 2>&1 ||
	bad "mu exfil --plot: $(cat "$TMP/plot.out")"
check "--plot says where it wrote" grep -q "^plot: $TMP/plot.svg$" "$TMP/plot.out"
check "the plot is an SVG with a line and the points of every cap" $PY -c "
import math, re, sys, xml.etree.ElementTree as E
ns = '{http://www.w3.org/2000/svg}'
root = E.parse(sys.argv[1]).getroot()
assert root.tag == ns + 'svg' and root.get('width') and root.get('viewBox'), root.attrib
groups = root.findall(ns + 'g')
assert [float(g.get('data-cap-bytes-per-s')) for g in groups] == [1000, 5000], groups
texts = ''.join(t.text or '' for t in root.iter(ns + 'text'))
assert 'model size' in texts and 'time' in texts and '1 GB' in texts and '1 TB' in texts, texts
ys = []
for g in groups:
    lines = g.findall(ns + 'polyline'); pts = g.findall(ns + 'circle')
    assert len(lines) == 1 and len(pts) == 3, g
    xy = [tuple(map(float, p.split(','))) for p in lines[0].get('points').split()]
    assert len(xy) > 2 and all(b[0] > a[0] for a, b in zip(xy, xy[1:])), xy
    # log-log: time = size / cap is a straight line; the points sit on it
    slope = (xy[-1][1] - xy[0][1]) / (xy[-1][0] - xy[0][0])
    for c in pts:
        cx, cy = float(c.get('cx')), float(c.get('cy'))
        assert abs(xy[0][1] + slope * (cx - xy[0][0]) - cy) < 0.2, (cx, cy)
    ys.append([float(c.get('cy')) for c in pts])
# a smaller cap takes longer: higher on the page (smaller y); the same size ratio, the same
# vertical distance (a factor 5 in time between the caps at every size)
gaps = [a - b for a, b in zip(ys[1], ys[0])]
assert all(g > 0 for g in gaps) and max(gaps) - min(gaps) < 0.2, gaps
" "$TMP/plot.svg"
cp "$TMP/plot.svg" "$TMP/plot.before"
"$MU" exfil --cap 2K --plot "$TMP/plot.svg" >/dev/null 2>&1
check "--plot replaces an existing file" sh -c "! cmp -s '$TMP/plot.svg' '$TMP/plot.before'"

# 4. Refusals: exit 2 and a message naming the problem; no plot written.
expect_fail 2 "--size: not a positive size" "$MU" exfil --size 12Q
expect_fail 2 "--size: not a positive size" "$MU" exfil --size 0
expect_fail 2 "--size: not a positive size" "$MU" exfil --size -5G
expect_fail 2 "--cap: not a positive rate" "$MU" exfil --cap 5KiB
expect_fail 2 "--tps and --bits-per-token go together" "$MU" exfil --tps 20
expect_fail 2 "--bits-per-token: '99' is not a number" "$MU" exfil --tps 20 --bits-per-token 99
expect_fail 2 "unexpected argument" "$MU" exfil --frobnicate
expect_fail 2 "too many caps" "$MU" exfil --cap 1 --cap 2 --cap 3 --cap 4 --cap 5 --cap 6 --cap 7 --cap 8 --cap 9
expect_fail 1 "cannot create" "$MU" exfil --plot "$TMP/no/such/dir/p.svg"
check "no plot where it could not be written" test ! -e "$TMP/no/such/dir/p.svg"
check "--help" sh -c "'$MU' exfil --help | grep -q 'usage: mu exfil'"

finish
