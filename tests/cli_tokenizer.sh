#!/bin/sh
# The tokenizer against llama.cpp's vectors for all four vocabularies: llama-bpe (Llama 3) and
# qwen2 through vocabularies that `mu vocab` builds from the Hugging Face tokenizer.json files,
# gpt-2 and llama-spm through the GGUFs in ../shared. Also: the Llama 3.2 chat golden prompts
# with special tokens parsed (and as plain text), the end-of-generation sets, and the encoding
# speed of 1 MiB of mixed English text with the Llama 3 vocabulary. asan-ok
# Env: MU (the mu binary; tool_vectors is taken from its build directory), SHARED (default
# ../shared), MU_ASAN (set under ASan: speed limits are not checked).
set -u
MU=${MU:-build/mu}
SHARED=${SHARED:-../shared}
TOOL=$(dirname "$MU")/tests/tool_vectors
TMP=build/tmp/cli_tokenizer.$$
mkdir -p "$TMP"
trap 'rm -rf "$TMP"' EXIT
L3=$SHARED/models/llama3-tokenizer
Q3=$SHARED/models/qwen3-tokenizer
VEC=$SHARED/models/llamacpp-vocab
pass=0 fail=0
ok() { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "FAIL: $*"; }

# run_counted DESCRIPTION COMMAND...: runs a tool that ends with "N passed, N failed" and adds
# its counts; a failing exit status with no failure counted counts as one failure.
run_counted() {
	d=$1; shift
	"$@" >"$TMP/out" 2>"$TMP/err"
	rc=$?
	grep -v -E '^[0-9]+ passed, [0-9]+ failed' "$TMP/out"
	line=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$TMP/out" | tail -n 1)
	p=0 f=0
	if [ -n "$line" ]; then
		p=${line%% passed*}
		f=${line#*passed, }
		f=${f%% failed*}
	fi
	if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
		f=1
	fi
	pass=$((pass + p))
	fail=$((fail + f))
	if [ "$f" -ne 0 ]; then
		echo "FAIL: $d"
		head -n 40 "$TMP/err"
	fi
}

# 1. mu vocab builds both vocabularies.
if "$MU" vocab --from-hf "$L3/tokenizer.json" --config "$L3/tokenizer_config.json" -o "$TMP/llama3.gguf" \
	>/dev/null 2>"$TMP/err"; then ok; else bad "mu vocab (llama3)"; cat "$TMP/err"; fi
if "$MU" vocab --from-hf "$Q3/tokenizer.json" --config "$Q3/tokenizer_config.json" -o "$TMP/qwen3.gguf" \
	>/dev/null 2>"$TMP/err"; then ok; else bad "mu vocab (qwen3)"; cat "$TMP/err"; fi

# 2. The vectors: ids, round trips and the streaming decoder, for each of the four.
run_counted "llama-bpe vectors" "$TOOL" "$TMP/llama3.gguf" "$VEC/ggml-vocab-llama-bpe.gguf.inp" \
	"$VEC/ggml-vocab-llama-bpe.gguf.out"
run_counted "qwen2 vectors" "$TOOL" "$TMP/qwen3.gguf" "$VEC/ggml-vocab-qwen2.gguf.inp" "$VEC/ggml-vocab-qwen2.gguf.out"
run_counted "gpt-2 vectors" "$TOOL" "$VEC/ggml-vocab-gpt-2.gguf" "$VEC/ggml-vocab-gpt-2.gguf.inp" \
	"$VEC/ggml-vocab-gpt-2.gguf.out"
run_counted "llama-spm vectors" "$TOOL" "$VEC/ggml-vocab-llama-spm.gguf" "$VEC/ggml-vocab-llama-spm.gguf.inp" \
	"$VEC/ggml-vocab-llama-spm.gguf.out"

# 3. Special tokens in real prompts, and the end-of-generation sets.
run_counted "llama3 golden prompts" "$TOOL" --golden "$TMP/llama3.gguf" "$L3/llama3.2-chat.golden.txt"
run_counted "llama3 end of generation" "$TOOL" --eog "$TMP/llama3.gguf" 128001 128009
run_counted "qwen3 end of generation" "$TOOL" --eog "$TMP/qwen3.gguf" 151643 151645
run_counted "gpt-2 end of generation" "$TOOL" --eog "$VEC/ggml-vocab-gpt-2.gguf" 50256

# 4. Speed: 1 MiB of mixed English text (the licence texts and the vector strings) through the
#    Llama 3 vocabulary; init and encode each well under a second.
if "$TOOL" --bench "$TMP/llama3.gguf" 1048576 "$L3/LICENSE-llama3.txt" "$L3/LICENSE-llama3_2.txt" \
	"$VEC/ggml-vocab-llama-bpe.gguf.inp" >"$TMP/bench" 2>&1; then
	head -n 1 "$TMP/bench"
	times=$(grep '^init_ms=' "$TMP/bench")
	init_ms=${times#init_ms=}
	init_ms=${init_ms%% *}
	encode_ms=${times#*encode_ms=}
	if [ -n "${MU_ASAN:-}" ] || { [ "$init_ms" -lt 1000 ] && [ "$encode_ms" -lt 1000 ]; }; then
		ok
	else
		bad "Llama 3 tokenizer too slow: init $init_ms ms, 1 MiB encode $encode_ms ms"
	fi
else
	bad "bench"
	cat "$TMP/bench"
fi

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
