#!/bin/sh
# Command-level test of the kernel paths: the same model gives the same logits, bit for bit, on
# every kernel path this CPU has (MU_KERNELS=ref, avx2, avx512) and on 1-4 threads. asan-ok
# For every weight type mu gen-model makes, a tiny model (--shape tiny: widths 64 and 172, so
# K-quant matrices fall back to q8_0/f16) and --shape tiny-k (widths that are multiples of 256,
# so K-quants are used); and Q8_0 and Q4_0 in --shape tiny-p (every row a multiple of 512, so
# a path that packs those types at load, avx512, packs every matrix and the tied embedding
# table; tiny-pu: the same with a separate output matrix).
# Env: MU (the mu binary).
set -u
. tests/lib.sh

TOKENS=1,300,301,302,20,21,400,401,402,7,8,9,500,33,34,35,36,37,38,39
TYPES="f32 f16 bf16 q8_0 q4_0 q4_k q5_k q6_k q4_k_m q5_k_m"
SHAPES="tiny tiny-k tiny-p tiny-pu"

# Which paths run here: an unavailable one is refused with the reason, which is printed.
"$MU" gen-model --arch llama --shape tiny --type f32 --seed 5 -o "$TMP/probe.gguf" >/dev/null 2>&1
PATHS=ref
for k in avx2 avx512; do
	if MU_KERNELS=$k "$MU" logits -m "$TMP/probe.gguf" --tokens 1 >"$TMP/probe.txt" 2>&1; then
		PATHS="$PATHS $k"
	elif grep -q "kernel path $k is unavailable" "$TMP/probe.txt"; then
		echo "skip $k: $(grep -o 'unavailable: .*' "$TMP/probe.txt")"
	else
		bad "MU_KERNELS=$k failed: $(head -n 1 "$TMP/probe.txt")"
	fi
done
echo "kernel paths: $PATHS"

# 1. Every path x threads 1..4 gives the reference's hash, for every type and shape.
for shape in $SHAPES; do
	types=$TYPES
	case $shape in tiny-p | tiny-pu) types="q8_0 q4_0" ;; esac
	for type in $types; do
		m=$TMP/$shape-$type.gguf
		if ! "$MU" gen-model --arch llama --shape "$shape" --type "$type" --seed 11 -o "$m" >/dev/null 2>"$TMP/gen.err"; then
			bad "gen-model $shape $type: $(tail -n 1 "$TMP/gen.err")"
			continue
		fi
		MU_KERNELS=ref "$MU" logits -m "$m" --tokens "$TOKENS" -t 1 2>&1 | head -n 1 >"$TMP/want.txt"
		if ! grep -q '^sha256 [0-9a-f]\{64\}$' "$TMP/want.txt"; then
			bad "$shape $type: reference logits failed: $(cat "$TMP/want.txt")"
			continue
		fi
		for k in $PATHS; do
			for t in 1 2 3 4; do
				MU_KERNELS=$k "$MU" logits -m "$m" --tokens "$TOKENS" -t "$t" 2>&1 | head -n 1 >"$TMP/got.txt"
				if cmp -s "$TMP/want.txt" "$TMP/got.txt"; then ok; else
					bad "$shape $type: MU_KERNELS=$k -t $t: $(cat "$TMP/got.txt"), ref $(cat "$TMP/want.txt")"
				fi
			done
		done
	done
done

# 2. An unknown path is refused with a message that names it and the choices.
if MU_KERNELS=bogus "$MU" logits -m "$TMP/probe.gguf" --tokens 1 >"$TMP/bogus.txt" 2>&1; then
	bad "MU_KERNELS=bogus was accepted"
else
	check "MU_KERNELS=bogus names the path and the choices" \
		grep -q "unknown kernel path 'bogus' (ref, avx2, avx512 or auto)" "$TMP/bogus.txt"
fi
# auto and an empty value choose the best path: the same hash again
for v in auto ""; do
	MU_KERNELS=$v "$MU" logits -m "$TMP/probe.gguf" --tokens "$TOKENS" 2>&1 | head -n 1 >"$TMP/auto.txt"
	MU_KERNELS=ref "$MU" logits -m "$TMP/probe.gguf" --tokens "$TOKENS" 2>&1 | head -n 1 >"$TMP/ref.txt"
	check "MU_KERNELS='$v' gives the reference's hash" cmp -s "$TMP/auto.txt" "$TMP/ref.txt"
done

finish
