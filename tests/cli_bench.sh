#!/bin/sh
# Command-level tests of the benchmark tools: mu gen-model's K types and their llama.cpp mix,
# the comparison fields of mu bench, bench/membw, bench/kernels and bench/compare.sh. A few
# seconds. asan-ok
# Env: MU (the mu binary), SHARED (the fixtures, default ../shared), MEMBW (the bandwidth probe,
# default build/bench/membw next to MU's build), KBENCH (the cached-kernel probe, likewise).
set -u
. tests/lib.sh
MEMBW=${MEMBW:-$(dirname "$MU")/bench/membw}
KBENCH=${KBENCH:-$(dirname "$MU")/bench/kernels}
READ_GGUF="import sys; sys.path.insert(0, 'tests/ref'); import ref_forward as rf"

# types MODEL: "name type" for every tensor of MODEL, from the oracle's own GGUF reader
types() {
	$PY -c "$READ_GGUF
meta, ts = rf.read_gguf(sys.argv[1])
for n, t in sorted(ts.items()): print(n, rf.TENSOR_TYPES[t.ttype][0].lower())
print('file_type', meta['general.file_type'])" "$1"
}
# has MODEL_TYPES TENSOR TYPE: the listing says TENSOR is stored as TYPE
has() { grep -qx "$2 $3" "$1"; }

# 1. Every new type on tiny-k (all widths multiples of 256) is written in that type, loads and
#    runs: the same logits hash on 1 and 2 threads, and text generation.
for type in q4_k q5_k q6_k q4_k_m q5_k_m; do
	m=$TMP/tiny-k-$type.gguf
	if ! "$MU" gen-model --arch llama --shape tiny-k --type "$type" --seed 5 -o "$m" 2>"$TMP/gen.err"; then
		bad "gen-model tiny-k $type: $(cat "$TMP/gen.err")"
		continue
	fi
	check "gen-model $type shows progress" grep -q ' 100%' "$TMP/gen.err"
	h1=$("$MU" logits -m "$m" -t 1 --tokens 1,300,301,302,20,21,400 2>&1 | head -n 1)
	h2=$("$MU" logits -m "$m" -t 2 --tokens 1,300,301,302,20,21,400 2>&1 | head -n 1)
	if echo "$h1" | grep -q '^sha256 [0-9a-f]\{64\}$' && [ "$h1" = "$h2" ]; then ok; else
		bad "mu logits tiny-k $type: '$h1' (1 thread) vs '$h2' (2 threads)"
	fi
	check "mu run tiny-k $type" sh -c "'$MU' run -m '$m' -p 'the little cat' -n 4 >/dev/null 2>&1"
	types "$m" >"$TMP/$type.types"
done

# Plain K types: every matrix in that type; the _M mixes as llama.cpp's Q4_K_M / Q5_K_M. With
# 2 layers use_more_bits holds for layer 1 only (1 >= 7*2/8), so attn_v and ffn_down are q6_K
# there; the output matrix is q6_K; the untied token_embd keeps the base type.
for c in q4_k:q4_k:14 q5_k:q5_k:16 q6_k:q6_k:18; do
	type=${c%%:*} rest=${c#*:} want=${rest%%:*} ft=${rest#*:}
	f=$TMP/$type.types
	[ -f "$f" ] || continue
	n=$(grep -c "weight $want\$" "$f")
	check "$type: all 16 matrices are $want ($n)" [ "$n" -eq 16 ]
	check "$type: norms stay f32" has "$f" blk.0.attn_norm.weight f32
	check "$type: general.file_type $ft" has "$f" file_type "$ft"
done
for c in q4_k_m:q4_k:15 q5_k_m:q5_k:17; do
	type=${c%%:*} rest=${c#*:} base=${rest%%:*} ft=${rest#*:}
	f=$TMP/$type.types
	[ -f "$f" ] || continue
	check "$type: output.weight q6_k" has "$f" output.weight q6_k
	check "$type: token_embd.weight $base (untied)" has "$f" token_embd.weight "$base"
	check "$type: layer 0 attn_v $base" has "$f" blk.0.attn_v.weight "$base"
	check "$type: layer 0 ffn_down $base" has "$f" blk.0.ffn_down.weight "$base"
	check "$type: layer 1 attn_v q6_k" has "$f" blk.1.attn_v.weight q6_k
	check "$type: layer 1 ffn_down q6_k" has "$f" blk.1.ffn_down.weight q6_k
	check "$type: layer 1 attn_q $base" has "$f" blk.1.attn_q.weight "$base"
	check "$type: general.file_type $ft" has "$f" file_type "$ft"
	n=$(grep -c "weight q6_k\$" "$f")
	check "$type: exactly 3 q6_k matrices ($n)" [ "$n" -eq 3 ]
done
if [ -f "$TMP/tiny-k-q4_k_m.gguf" ]; then
	"$MU" info "$TMP/tiny-k-q4_k_m.gguf" >"$TMP/info.txt" 2>&1
	check "mu info lists q4_K tensors" grep -q '^  blk.0.attn_q.weight  *q4_K ' "$TMP/info.txt"
	check "mu info lists q6_K tensors" grep -q '^  output.weight  *q6_K ' "$TMP/info.txt"
fi

# Deeper: stories15m (6 layers, width 288, ffn 768) keeps ffn_down as a real K tensor (rows of
# 768 = 3 x 256) while every 288-wide matrix falls back to q8_0. use_more_bits(i, 6) holds for
# i = 2 ((2 - 0) % 3 == 2) and i = 5 (>= 7*6/8 = 5) only.
"$MU" gen-model --arch llama --shape stories15m --type q4_k_m --seed 1 -o "$TMP/s15.gguf" 2>"$TMP/gen.err" ||
	bad "gen-model stories15m q4_k_m: $(cat "$TMP/gen.err")"
types "$TMP/s15.gguf" >"$TMP/s15.types"
got=$(grep '^blk\.[0-9]*\.ffn_down\.weight ' "$TMP/s15.types" | sed 's/^blk\.\([0-9]*\)\.ffn_down\.weight /\1:/' | sort -n | tr '\n' ' ')
check "stories15m q4_k_m: ffn_down q6_K in layers 2 and 5 ($got)" [ "$got" = "0:q4_k 1:q4_k 2:q6_k 3:q4_k 4:q4_k 5:q6_k " ]
check "stories15m q4_k_m: attn_v (288 wide) falls back to q8_0" has "$TMP/s15.types" blk.2.attn_v.weight q8_0
check "stories15m q4_k_m: tied token_embd falls back to q8_0" has "$TMP/s15.types" token_embd.weight q8_0
check "gen-model --help states the mix rule" sh -c "'$MU' gen-model --help | grep -q 'i < n/8 or i >= 7n/8 or (i - n/8) % 3 == 2'"

# 2. gen-model stays a pure function of its arguments for K types.
"$MU" gen-model --arch qwen3 --shape tiny-k --type q5_k_m --seed 9 -o "$TMP/a.gguf" 2>/dev/null
"$MU" gen-model --arch qwen3 --shape tiny-k --type q5_k_m --seed 9 -o "$TMP/b.gguf" 2>/dev/null
"$MU" gen-model --arch qwen3 --shape tiny-k --type q5_k_m --seed 10 -o "$TMP/c.gguf" 2>/dev/null
check "gen-model q5_k_m is deterministic" cmp -s "$TMP/a.gguf" "$TMP/b.gguf"
check "gen-model q5_k_m: the seed changes the weights" sh -c "[ -s '$TMP/a.gguf' ] && ! cmp -s '$TMP/a.gguf' '$TMP/c.gguf'"

# 3. Fallbacks on the tiny shape (width 64, ffn 172): K rows of 64 become q8_0, rows of 172 f16;
#    the model still runs.
"$MU" gen-model --arch llama --shape tiny --type q4_k_m --seed 2 -o "$TMP/tiny-km.gguf" 2>"$TMP/gen.err" ||
	bad "gen-model tiny q4_k_m: $(cat "$TMP/gen.err")"
types "$TMP/tiny-km.gguf" >"$TMP/tiny.types"
check "tiny q4_k_m: tied token_embd (64 wide) falls back to q8_0" has "$TMP/tiny.types" token_embd.weight q8_0
check "tiny q4_k_m: attn_q falls back to q8_0" has "$TMP/tiny.types" blk.0.attn_q.weight q8_0
check "tiny q4_k_m: ffn_down (172 wide) falls back to f16" has "$TMP/tiny.types" blk.1.ffn_down.weight f16
n=$(grep -c ' q[456]_k$' "$TMP/tiny.types")
check "tiny q4_k_m: no K tensor at all ($n)" [ "$n" -eq 0 ]
check "tiny q4_k_m runs" sh -c "'$MU' logits -m '$TMP/tiny-km.gguf' --tokens 1,2,3 2>&1 | grep -q '^sha256 '"
for t in q3_k q4_k_s q8_k; do # the message names the problem and the exit status is 2
	expect_fail 2 type "$MU" gen-model --shape tiny --type "$t" -o "$TMP/x.gguf"
done

# 4. mu bench --json: the comparison fields, with values checked against the file itself.
m=$TMP/tiny-k-q4_k_m.gguf
[ -f "$m" ] || m=$TMP/tiny-km.gguf
"$MU" bench -m "$m" -p 16 -n 8 -r 1 --json >"$TMP/bench16.json" 2>/dev/null
"$MU" bench -m "$m" -p 64 -n 8 -r 1 --json >"$TMP/bench64.json" 2>/dev/null
MU_KERNELS=ref "$MU" bench -m "$m" -p 8 -n 8 -r 1 --json >"$TMP/bench_ref.json" 2>/dev/null
"$MU" bench -m "$m" -p 16 -n 8 -r 1 --load map --json >"$TMP/bench_map.json" 2>/dev/null
if $PY -c "$READ_GGUF
import json, os
d = json.load(open(sys.argv[1])); d64 = json.load(open(sys.argv[2])); dr = json.load(open(sys.argv[3]))
dc = json.load(open(sys.argv[5]))
meta, ts = rf.read_gguf(sys.argv[4])
# expected bytes per token: every tensor but the embedding table and rope factors, plus one
# embedding row, or the whole table when it is the output matrix
emb = ts['token_embd.weight']
want = sum(t.nbytes() for n, t in ts.items() if n not in ('token_embd.weight', 'rope_freqs.weight'))
want += emb.nbytes() if 'output.weight' not in ts else emb.nbytes() // emb.ne[1]
size = os.path.getsize(sys.argv[4])
errs = []
if d['weight_bytes_per_token'] != want: errs.append('weight_bytes_per_token %d, want %d' % (d['weight_bytes_per_token'], want))
if d['kernels'] not in ('ref', 'avx2', 'avx512'): errs.append('kernels %r' % d['kernels'])
if dr['kernels'] != 'ref': errs.append('MU_KERNELS=ref reports %r' % dr['kernels'])
if not 0 < d['ctx_bytes'] < d64['ctx_bytes']: errs.append('ctx_bytes %d (-p 16) vs %d (-p 64)' % (d['ctx_bytes'], d64['ctx_bytes']))
if d['load'] != 'copy' or dc['load'] != 'map': errs.append('load %r (default), %r (--load map)' % (d['load'], dc['load']))
for k in ('weight_bytes', 'weight_bytes_per_token', 'ctx_bytes'):
    if dc[k] != d[k]: errs.append('--load map: %s %d, copied %d' % (k, dc[k], d[k]))
if not (dc['pp']['tokens_per_s'] > 0 and dc['tg']['tokens_per_s'] > 0): errs.append('--load map: %r' % dc)
for x in (d, d64, dc):
    if not 0 < x['peak_rss_bytes'] <= size + x['ctx_bytes'] + (64 << 20):
        errs.append('peak_rss_bytes %d, file %d, run state %d' % (x['peak_rss_bytes'], size, x['ctx_bytes']))
if not (d['pp']['tokens_per_s'] > 0 and d['tg']['tokens_per_s'] > 0 and d['weight_bytes'] == sum(t.nbytes() for t in ts.values())):
    errs.append('pp/tg/weight_bytes: %r' % d)
print('; '.join(errs))
sys.exit(1 if errs else 0)
" "$TMP/bench16.json" "$TMP/bench64.json" "$TMP/bench_ref.json" "$m" "$TMP/bench_map.json" >"$TMP/py.out" 2>&1; then ok; else
	bad "mu bench --json fields: $(cat "$TMP/py.out")"
fi
"$MU" bench -m "$m" -p 8 -n 8 -r 1 >"$TMP/bench.txt" 2>/dev/null
check "mu bench table has the new columns" grep -q '| kernels | load | read/token |  run state |   peak RSS |' "$TMP/bench.txt"
check "mu bench table rows name the kernel path and the load" grep -Eq '^\| .*tg8 .*\| +(ref|avx2|avx512) \| copy \|' "$TMP/bench.txt"
expect_fail 2 "load" "$MU" bench -m "$m" -p 8 -n 8 -r 1 --load disk
# packed_bytes: on tiny-p in Q8_0 and Q4_0 every matrix is packed by a path that packs those
# types (avx512), nothing by the others, and nothing on the file's mapping
for q in q8_0 q4_0; do
	"$MU" gen-model --arch llama --shape tiny-p --type $q --seed 2 -o "$TMP/tiny-p.gguf" >/dev/null 2>&1
	for k in ref avx2 avx512; do
		for l in copy map; do
			MU_KERNELS=$k "$MU" bench -m "$TMP/tiny-p.gguf" -p 4 -n 4 -r 1 --load $l --json >"$TMP/bp.json" 2>"$TMP/bp.err" || {
				grep -q "kernel path $k is unavailable" "$TMP/bp.err" || bad "bench tiny-p $q $k $l: $(tail -n 1 "$TMP/bp.err")"
				continue
			}
			check "packed_bytes on tiny-p $q, $k, --load $l" $PY -c "$READ_GGUF
import json
d = json.load(open(sys.argv[1])); meta, ts = rf.read_gguf(sys.argv[2])
mats = sum(t.nbytes() for t in ts.values() if len(t.ne) == 2)
want = mats if sys.argv[3] == 'avx512' and sys.argv[4] == 'copy' else 0
assert d['kernels'] == sys.argv[3] and d['load'] == sys.argv[4] and d['packed_bytes'] == want, (d, want)
" "$TMP/bp.json" "$TMP/tiny-p.gguf" "$k" "$l"
		done
	done
done
check "mu info says what a run packs" sh -c "'$MU' info --no-tensors '$TMP/tiny-p.gguf' | grep -Eq 'to run: read once into anonymous memory \(2 MiB pages\), of which [0-9]+ bytes'"

# 5. membw on a small buffer: positive figures, text and JSON; bad options refused.
if [ -x "$MEMBW" ]; then
	"$MEMBW" --size 64M -t 1,2 --passes 3 >"$TMP/membw.txt" 2>&1
	check "membw prints a positive rate for 1 thread" grep -Eq '^threads 1: best [0-9]*[1-9][0-9]*\.[0-9]+ GB/s, median [0-9.]+ GB/s$' "$TMP/membw.txt"
	check "membw prints a rate for 2 threads" grep -q '^threads 2: best ' "$TMP/membw.txt"
	"$MEMBW" --size 64M -t 1 --passes 2 --isa avx2 --pages 4k --json >"$TMP/membw.json" 2>&1
	check "membw --json" $PY -c "import json,sys; d=json.load(open(sys.argv[1])); r=d['results'][0]
assert d['size_bytes']==64<<20 and d['isa']=='avx2' and d['pages']=='4k' and r['threads']==1 and 0<r['median_gbps']<=r['best_gbps']" "$TMP/membw.json"
	for args in "--size 0" "--size 12Q" "-t 0" "-t 1,,2" "--isa sse9" "--pages 1g" "--passes 0" "--frobnicate"; do
		# shellcheck disable=SC2086
		expect_fail 2 membw "$MEMBW" $args
	done
else
	bad "$MEMBW is missing (make builds it)"
fi

# 5b. bench/kernels on a small matrix: a line per available path and type, positive figures;
#     bad options refused.
if [ -x "$KBENCH" ]; then
	"$KBENCH" -n 512 --rows 8 --nt 3 --json >"$TMP/kb.json" 2>"$TMP/kb.err"
	check "bench/kernels --json: every type on every path the CPU has" $PY -c "
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
types = {'f32', 'f16', 'bf16', 'q8_0', 'q4_0', 'q4_K', 'q5_K', 'q6_K'}
paths = {r['path'] for r in rows}
assert 'ref' in paths, paths
for p in paths:
    assert {r['type'] for r in rows if r['path'] == p and r['layout'] == 'gguf'} == types, (p, rows)
packed = {(r['path'], r['type']) for r in rows if r['layout'] == 'packed'}
assert packed == ({('avx512', 'q8_0'), ('avx512', 'q4_0')} if 'avx512' in paths else set()), packed
for r in rows:
    assert r['n'] == 512 and r['rows'] == 8 and r['nt'] == 3 and r['weight_bytes'] > 0, r
    assert r['matvec_ns_per_row'] > 0 and r['matvec_gbps'] > 0 and r['matmul_ns_per_row_act'] > 0, r
" "$TMP/kb.json"
	"$KBENCH" --path ref --type q8_0 -n 64 --rows 2 --nt 1 >"$TMP/kb.txt" 2>&1
	check "bench/kernels table" grep -Eq '^ref +q8_0 +gguf +[0-9.]+ +[0-9.]+ +[0-9.]+$' "$TMP/kb.txt"
	expect_fail 2 "'q9' is not a weight type" "$KBENCH" --type q9
	expect_fail 2 "not a multiple of q4_K's block of 256" "$KBENCH" --type q4_K -n 100
	expect_fail 2 "'sse9' is not ref, avx2 or avx512" "$KBENCH" --path sse9
	expect_fail 2 "not a number" "$KBENCH" --rows 0
	expect_fail 2 "unknown option" "$KBENCH" --frobnicate x
else
	bad "$KBENCH is missing (make builds it)"
fi

# 6. bench/compare.sh on a tiny model without llama.cpp, then with a stand-in llama-bench that
#    prints llama-bench's JSON with fixed rates, to check the alternation and the table.
export MEMBW
if MU=$MU MEMBW_SIZE=64M sh bench/compare.sh -t 1 -l map,copy -p 8 -n 8 -r 2 "$TMP/tiny-km.gguf" >"$TMP/cmp.txt" 2>"$TMP/cmp.err"; then
	for l in map copy; do
		check "compare.sh: a pp8 row ($l)" grep -Eq "^tiny-km +1 +$l +pp8 +[0-9.]+ ± [0-9.]+ +— " "$TMP/cmp.txt"
		check "compare.sh: a tg8 row with a bound ($l)" grep -Eq "^tiny-km +1 +$l +tg8 +[0-9.]+ ± [0-9.]+ +— +— +[0-9.]+ +[0-9]+% +— +90% of bound: (met|[0-9]+ pts short)\$" "$TMP/cmp.txt"
	done
	check "compare.sh: membw and load average noted" sh -c "grep -q '^membw before (64M buffer' '$TMP/cmp.txt' && grep -q '^membw after (64M buffer' '$TMP/cmp.txt' && grep -q 'load average before' '$TMP/cmp.txt'"
else
	bad "compare.sh without LLAMA_BENCH: $(tail -n 5 "$TMP/cmp.err")"
fi
cat >"$TMP/fake-llama-bench" <<'EOF'
#!/bin/sh
# llama-bench's -o json for -p P -n N: pp at 100 tok/s, tg at 50 tok/s
echo "llama-bench $*" >>"$FAKE_LOG"
p=0 n=0
while [ $# -gt 0 ]; do case $1 in -p) p=$2; shift ;; -n) n=$2; shift ;; esac; shift; done
echo "["
[ "$p" -gt 0 ] && echo "{\"n_prompt\": $p, \"n_gen\": 0, \"avg_ts\": 100.0, \"stddev_ts\": 0.0},"
echo "{\"n_prompt\": 0, \"n_gen\": $n, \"avg_ts\": 50.0, \"stddev_ts\": 0.0}"
echo "]"
EOF
cat >"$TMP/mu-logged" <<EOF
#!/bin/sh
echo "mu \$*" >>"\$FAKE_LOG"
exec "$(cd "$(dirname "$MU")" && pwd)/$(basename "$MU")" "\$@"
EOF
chmod +x "$TMP/fake-llama-bench" "$TMP/mu-logged"
export FAKE_LOG=$TMP/order.log
if MU=$TMP/mu-logged LLAMA_BENCH=$TMP/fake-llama-bench MEMBW_SIZE=64M sh bench/compare.sh --markdown -t 1,2 -l map,copy -p 8 -n 4 -r 2 \
	"$TMP/tiny-km.gguf" >"$TMP/cmp.md" 2>"$TMP/cmp.err"; then
	sed 's/ .*//' "$TMP/order.log" | tr '\n' ' ' >"$TMP/order.txt"
	check "compare.sh alternates mu and llama-bench per repetition" \
		grep -qx '\(mu llama-bench \)\{8\}' "$TMP/order.txt"
	check "compare.sh passes threads and sizes to llama-bench" grep -q -- '-p 8 -n 4 -t 2 -mmp 1 -r 1 -o json' "$TMP/order.log"
	check "compare.sh -l copy runs mu bench --load copy and llama-bench -mmp 0" sh -c "grep -q -- '--load copy' '$TMP/order.log' && grep -q -- '-p 8 -n 4 -t 1 -mmp 0 -r 1 -o json' '$TMP/order.log'"
	check "compare.sh --markdown header" grep -q '^| model | threads | weights | test | mu tok/s | llama.cpp tok/s | ratio |' "$TMP/cmp.md"
	# the ratio column is mu's mean / 100 for pp and / 50 for tg; llama.cpp reaches 50 / bound
	check "compare.sh ratios and bound fractions from the numbers in the table" $PY -c "
import re, sys
rows = [l.split(' | ') for l in open(sys.argv[1]) if l.startswith('| tiny-km ')]
assert len(rows) == 8 and sorted(r[2] for r in rows) == ['copy'] * 4 + ['map'] * 4, rows
for r in rows:
    mu = float(r[4].split(' ± ')[0]); lb = float(r[5].split(' ± ')[0])
    assert lb == (100.0 if r[3] == 'pp8' else 50.0), r
    assert abs(float(r[6]) - mu / lb) <= 0.006 + 0.001 * mu / lb, r
    want = 1.3 if r[3] == 'pp8' else 1.0
    note = r[10].rstrip(' |\n')
    assert note.startswith('%.1fx: ' % want), r
    assert ('%.1fx: met' % want in note) == (float(r[6]) >= want), r
    if float(r[6]) < want:
        assert '%.1fx: %.2f short' % (want, want - float(r[6])) in note, r
    if r[3] == 'tg4':
        bound = float(r[7])
        assert abs(float(r[9].rstrip(' |%\n')) - 100 * lb / bound) <= 0.6, r
        f = int(r[8].rstrip('%'))
        assert ('90% of bound: met' in note) == (f >= 90) and (f >= 90 or '90%% of bound: %d pts short' % (90 - f) in note), r
" "$TMP/cmp.md"
else
	bad "compare.sh with a stand-in llama-bench: $(tail -n 5 "$TMP/cmp.err")"
fi
for l in "map,map" "map copy" "copy,map,copy"; do
	expect_fail 2 "-l: '$l'" env MU="$MU" sh bench/compare.sh -l "$l" "$TMP/tiny-km.gguf"
done
# bench/profile.sh: its refusals (the profile itself needs perf, which the tests do not assume)
expect_fail 2 "missing.gguf: no such model file" sh bench/profile.sh "$TMP/missing.gguf"
expect_fail 2 "'disk' is not map or copy" sh bench/profile.sh -l disk "$TMP/tiny-km.gguf"
expect_fail 2 "'x' is not a non-negative integer" sh bench/profile.sh -t x "$TMP/tiny-km.gguf"
PERF=$TMP/no-perf MU=$MU expect_fail 2 "no-perf not found (Debian: apt-get install linux-perf" sh bench/profile.sh "$TMP/tiny-km.gguf"
MU=$MU sh bench/compare.sh -l map,disk "$TMP/tiny-km.gguf" >"$TMP/out.txt" 2>&1
rc=$?
check "compare.sh: an unknown -l value is a clear error (rc $rc)" sh -c "[ $rc -eq 2 ] && grep -q \"'disk' is not map or copy\" '$TMP/out.txt'"
MU=$MU sh bench/compare.sh "$TMP/missing.gguf" >"$TMP/out.txt" 2>&1
rc=$?
check "compare.sh: a missing model is a clear error (rc $rc)" sh -c "[ $rc -eq 2 ] && grep -q 'missing.gguf: no such model file' '$TMP/out.txt'"
LLAMA_BENCH=$TMP/nothing MU=$MU sh bench/compare.sh "$TMP/tiny-km.gguf" >"$TMP/out.txt" 2>&1
rc=$?
check "compare.sh: a missing llama-bench is a clear error (rc $rc)" sh -c "[ $rc -eq 2 ] && grep -q 'LLAMA_BENCH=.* is not an executable' '$TMP/out.txt'"

finish
