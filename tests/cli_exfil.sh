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
if "$MU" exfil --cap 2K --plot "$TMP/plot.svg" >/dev/null 2>"$TMP/err"; then
	check "--plot replaces an existing file" $PY -c "
import sys, xml.etree.ElementTree as E
g = E.parse(sys.argv[1]).getroot().findall('{http://www.w3.org/2000/svg}g')
assert [float(x.get('data-cap-bytes-per-s')) for x in g] == [2000], g" "$TMP/plot.svg"
else
	bad "mu exfil --plot over an existing file: $(cat "$TMP/err")"
fi
# whole or not at all: a plot that cannot be put in place (the path is a directory) leaves
# what was there and no temporary file
mkdir -p "$TMP/adir" && echo keep >"$TMP/adir/inside"
expect_fail 1 "adir" "$MU" exfil --plot "$TMP/adir"
check "a failed plot leaves the old contents and no temporary file" sh -c \
	"[ -d '$TMP/adir' ] && [ \"\$(cat '$TMP/adir/inside')\" = keep ] && ! ls '$TMP' | grep -q '\.tmp\.'"

# 4. Refusals: exit 2 and a message naming the problem; no plot written.
for v in 12Q 0 -5G 0x10 +5G " 5G" 1e307 5e18; do
	expect_fail 2 "--size: not a size such as 6G" "$MU" exfil --size "$v" --plot "$TMP/never.svg"
done
for v in 5KiB 1e-300 2e15 nan inf; do
	expect_fail 2 "--cap: not a rate such as 5K" "$MU" exfil --cap "$v" --plot "$TMP/never.svg"
done
check "a refused command writes no plot" test ! -e "$TMP/never.svg"
expect_fail 2 "--tps and --bits-per-token go together" "$MU" exfil --tps 20
expect_fail 2 "--bits-per-token: '99' is not a number" "$MU" exfil --tps 20 --bits-per-token 99
expect_fail 2 "--tps: '1e-300' is not a number" "$MU" exfil --tps 1e-300 --bits-per-token 17
expect_fail 2 "--tps: '5K' is not a number" "$MU" exfil --tps 5K --bits-per-token 17
# the widest ranges still give finite times and a plot of sensible size
"$MU" exfil --size 1 --size 1e18 --cap 0.001 --cap 1e15 --json --plot "$TMP/wide.svg" >"$TMP/wide.json" 2>"$TMP/err" ||
	bad "widest ranges: $(cat "$TMP/err")"
check "widest ranges: finite JSON and a small plot" $PY -c "
import json, math, os, sys
d = json.load(open(sys.argv[1]))
assert all(math.isfinite(r['seconds']) for r in d['rows']) and os.path.getsize(sys.argv[2]) < 200000, d" \
	"$TMP/wide.json" "$TMP/wide.svg"
# measure: its own refusals (the measurement itself runs in tests/cli_egress.sh)
expect_fail 2 "--proxy and --cap are required" "$MU" exfil measure --cap 5K
expect_fail 2 "--seconds: '0.5' is not a number in \[1, 86400\]" "$MU" exfil measure --proxy unix:x --cap 5K --seconds 0.5
expect_fail 2 "--cap: '0' is not an amount" "$MU" exfil measure --proxy unix:x --cap 0
expect_fail 2 "-n" "$MU" exfil measure --proxy unix:x --cap 5K -n 0
expect_fail 1 "cannot reach the proxy" "$MU" exfil measure --proxy "unix:$TMP/none.sock" --cap 5K --burst 0 --seconds 1
expect_fail 2 "unexpected argument" "$MU" exfil --frobnicate
expect_fail 2 "too many caps" "$MU" exfil --cap 1 --cap 2 --cap 3 --cap 4 --cap 5 --cap 6 --cap 7 --cap 8 --cap 9
expect_fail 1 "cannot create" "$MU" exfil --plot "$TMP/no/such/dir/p.svg"
check "--help" sh -c "'$MU' exfil --help | grep -q 'usage: mu exfil'"

finish
