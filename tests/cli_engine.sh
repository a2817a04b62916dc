#!/bin/sh
# Command-level tests of mu run / logits / info / gen-model / bench. asan-ok
# Env: MU (the mu binary), SHARED (the fixtures, default ../shared).
set -u
. tests/lib.sh
STORIES=$SHARED/models/stories260K/stories260K.gguf
GOLDEN=$SHARED/models/stories260K/stories260K.golden.txt

golden_text() { # golden_text CASE -> the expected text, unescaped
	$PY - "$GOLDEN" "$1" <<'PY'
import ast, sys
case = None
for line in open(sys.argv[1], encoding="utf-8"):
    if line.startswith("["):
        case = line.strip()[1:-1]
    elif case == sys.argv[2] and line.startswith("text_utf8_escaped: "):
        sys.stdout.write(ast.literal_eval(line[len("text_utf8_escaped: "):]))
PY
}

# 1. Greedy stories through the CLI equal the golden texts (prompt echoed + continuation),
#    with the KV cache in F16 (the default) and in F32: the reference keeps keys and values
#    unrounded, and rounding them to half precision changes no greedy choice here.
for kv in f16 f32; do
	for c in "once_upon|Once upon a time|60" "lily_tom|Lily and Tom went to the park.|52" "bos_only||200"; do
		name=${c%%|*}; rest=${c#*|}; prompt=${rest%|*}; n=${rest##*|}
		golden_text "$name" >"$TMP/want.txt"
		"$MU" run -m "$STORIES" -p "$prompt" -n "$n" --temp 0 --kv-type $kv 2>"$TMP/err.txt" >"$TMP/got.txt"
		printf '\n' >>"$TMP/want.txt"
		if cmp -s "$TMP/want.txt" "$TMP/got.txt"; then ok; else
			bad "mu run golden '$name' ($kv KV) differs"; diff "$TMP/want.txt" "$TMP/got.txt" | head -5
		fi
	done
done
check "mu run reports speed on stderr" grep -q 'tok/s' "$TMP/err.txt"

# 2. The same seed gives the same sampled text; another seed gives another text.
"$MU" run -m "$STORIES" -p "Once upon a time" -n 80 --temp 1.0 --seed 7 2>/dev/null >"$TMP/s7a.txt"
"$MU" run -m "$STORIES" -p "Once upon a time" -n 80 --temp 1.0 --seed 7 -t 3 2>/dev/null >"$TMP/s7b.txt"
"$MU" run -m "$STORIES" -p "Once upon a time" -n 80 --temp 1.0 --seed 8 2>/dev/null >"$TMP/s8.txt"
check "same seed, same text (1 and 3 threads)" cmp -s "$TMP/s7a.txt" "$TMP/s7b.txt"
check "different seed, different text" sh -c "! cmp -s '$TMP/s7a.txt' '$TMP/s8.txt'"

# 3. mu logits: the hash is the same on 1-4 threads, for stories260K and for generated
#    models of every architecture and weight type.
hashes_agree() { # hashes_agree MODEL ARGS...: one distinct sha256 line over 1..4 threads
	m=$1; shift
	for t in 1 2 3 4; do "$MU" logits -m "$m" -t "$t" "$@" 2>&1 | head -n 1; done | sort -u >"$TMP/h.txt"
	[ "$(wc -l <"$TMP/h.txt")" -eq 1 ] && grep -q '^sha256 [0-9a-f]\{64\}$' "$TMP/h.txt"
}
check "stories260K logits hash equal on 1-4 threads" hashes_agree "$STORIES" -p "Once upon a time there was"
"$MU" logits -m "$STORIES" --tokens 1 --kv-type f32 >"$TMP/bos.txt" 2>&1
check "stories260K top-1 after BOS is 403 (f32 KV, the reference's value)" grep -q '^top1 403 17.0235' "$TMP/bos.txt"
"$MU" logits -m "$STORIES" --tokens 1 >"$TMP/bos16.txt" 2>&1
check "stories260K top-1 after BOS is 403 (f16 KV)" grep -q '^top1 403 ' "$TMP/bos16.txt"
for arch in llama qwen2 qwen3; do
	for type in f32 f16 bf16 q8_0 q4_0; do
		m=$TMP/$arch-$type.gguf
		if ! "$MU" gen-model --arch "$arch" --shape tiny --type "$type" --seed 3 -o "$m" 2>"$TMP/gen.err"; then
			bad "gen-model $arch $type: $(cat "$TMP/gen.err")"
			continue
		fi
		check "$arch $type logits hash equal on 1-4 threads" hashes_agree "$m" --tokens 1,300,301,302,20,21,400,401,402
		check "$arch $type runs from text" sh -c "'$MU' run -m '$m' -p 'the little cat' -n 8 -t 2 >/dev/null 2>&1"
	done
done

# 3b. The KV cache type: f16 and f32 give different hashes, each the same on 1-4 threads, for a
#     prompt of 3 batches (70 tokens: prefill runs 32 + 32 + 6 rows).
LONG=1$(i=0; while [ $i -lt 69 ]; do printf ',%d' $(( (i * 37 + 11) % 500 + 3 )); i=$((i + 1)); done)
for m in "$STORIES" "$TMP/llama-q8_0.gguf" "$TMP/qwen3-q4_0.gguf"; do
	mn=$(basename "$m" .gguf)
	for kv in f16 f32; do
		check "$mn $kv KV: logits hash equal on 1-4 threads (70-token prompt)" hashes_agree "$m" --tokens "$LONG" --kv-type $kv
		cp "$TMP/h.txt" "$TMP/h-$kv.txt"
	done
	check "$mn: f16 and f32 KV give different logits" sh -c "! cmp -s '$TMP/h-f16.txt' '$TMP/h-f32.txt'"
	check "$mn: the default KV type is f16" sh -c "'$MU' logits -m '$m' --tokens '$LONG' 2>&1 | head -n 1 | cmp -s - '$TMP/h-f16.txt'"
done
"$MU" run -m "$STORIES" -p "Once upon a time" -n 4 --temp 0 --kv-type f32 2>"$TMP/err.txt" >/dev/null
check "mu run names the KV type" grep -q '(f32 KV)' "$TMP/err.txt"

# 4. gen-model is a pure function of its arguments.
"$MU" gen-model --arch qwen3 --shape tiny --type q4_0 --seed 3 -o "$TMP/again.gguf" 2>/dev/null
check "gen-model is deterministic" cmp -s "$TMP/qwen3-q4_0.gguf" "$TMP/again.gguf"
"$MU" gen-model --arch qwen3 --shape tiny --type q4_0 --seed 4 -o "$TMP/other.gguf" 2>/dev/null
check "gen-model seed changes the weights" sh -c "! cmp -s '$TMP/qwen3-q4_0.gguf' '$TMP/other.gguf'"

# 5. mu info and mu bench.
"$MU" info "$STORIES" >"$TMP/info.txt" 2>&1
check "info shows the model shape" grep -q 'model: llama, 5 layers, embd 64, ffn 172, heads 8 (kv 4)' "$TMP/info.txt"
check "info lists tensors" grep -q 'blk.4.ffn_down.weight' "$TMP/info.txt"
check "info shows the run-state size" grep -q 'run state for 2048 positions (batch 32, 1 thread): [0-9]* bytes' "$TMP/info.txt"
"$MU" info "$SHARED/models/llamacpp-vocab/ggml-vocab-gpt-2.gguf" >"$TMP/info2.txt" 2>&1
check "info reads a vocab-only GGUF" grep -q 'tokenizer.ggml.merges' "$TMP/info2.txt"
"$MU" bench -m "$TMP/llama-q8_0.gguf" -p 16 -n 8 -r 1 --json >"$TMP/bench.json" 2>/dev/null
check "bench --json is valid JSON with pp and tg" $PY -c "import json,sys; d=json.load(open(sys.argv[1])); assert d['pp']['tokens_per_s']>0 and d['tg']['tokens_per_s']>0" "$TMP/bench.json"

# 6. Bad input gets a clear message and a non-zero exit, never a crash.
expect_fail 2 "unknown command" "$MU" frobnicate
expect_fail 2 "required" "$MU" run -p hello
expect_fail 2 "out of range" "$MU" run -m "$STORIES" -p hi -t 0
expect_fail 2 "not a number" "$MU" run -m "$STORIES" -p hi --temp abc
expect_fail 1 "cannot open" "$MU" run -m "$TMP/missing.gguf" -p hi
head -c 1000 "$STORIES" >"$TMP/trunc.gguf"
expect_fail 1 "trunc.gguf" "$MU" info "$TMP/trunc.gguf"
expect_fail 1 "trunc.gguf" "$MU" logits -m "$TMP/trunc.gguf" --tokens 1
expect_fail 1 "out of range" "$MU" logits -m "$STORIES" --tokens 1,512
expect_fail 2 "type" "$MU" gen-model --shape tiny --type q3_k -o "$TMP/x.gguf"
expect_fail 1 "architecture" "$MU" run -m "$SHARED/models/llamacpp-vocab/ggml-vocab-gpt-2.gguf" -p hi
expect_fail 2 "mu run: --kv-type: 'q8_0' is not a KV cache type (f16 or f32)" "$MU" run -m "$STORIES" -p hi --kv-type q8_0
expect_fail 2 "mu logits: --kv-type: 'F16' is not a KV cache type" "$MU" logits -m "$STORIES" --tokens 1 --kv-type F16
expect_fail 2 "option --kv-type needs a value" "$MU" logits -m "$STORIES" --tokens 1 --kv-type
for c in run logits info bench gen-model; do
	check "mu $c --help" sh -c "'$MU' $c --help | grep -q usage"
done

finish
