#!/bin/sh
# Tokenizer speed: builds the Llama 3 and Qwen 3 vocabularies with mu vocab, then encodes
# 1 MiB of English text (the seed documents, repeated) with each of the four vocabularies in
# one run, so the figures are comparable. Prints one table row per vocabulary.
set -eu
cd "$(dirname "$0")/.."
MU=${MU:-build/mu}
SHARED=${SHARED:-../shared}
TOOL=$(dirname "$MU")/tests/tool_vectors
DIR=${BENCH_DIR:-build/bench}
BYTES=${BYTES:-1048576}
mkdir -p "$DIR"
[ -f "$DIR/llama3-vocab.gguf" ] || "$MU" vocab --from-hf "$SHARED/models/llama3-tokenizer/tokenizer.json" \
	--config "$SHARED/models/llama3-tokenizer/tokenizer_config.json" -o "$DIR/llama3-vocab.gguf" 2>/dev/null
[ -f "$DIR/qwen3-vocab.gguf" ] || "$MU" vocab --from-hf "$SHARED/models/qwen3-tokenizer/tokenizer.json" \
	--config "$SHARED/models/qwen3-tokenizer/tokenizer_config.json" -o "$DIR/qwen3-vocab.gguf" 2>/dev/null
TEXT="$SHARED/seeds/01-paper-muinference-sl5-weight-enclave.txt $SHARED/seeds/02-muinference-readme.txt"
echo "| vocabulary | kind | load (ms) | encode $BYTES bytes (ms) | MB/s |"
echo "|---|---|---|---|---|"
for v in "llama3:$DIR/llama3-vocab.gguf:byte-level BPE, llama-bpe" \
	"qwen3:$DIR/qwen3-vocab.gguf:byte-level BPE, qwen2 + NFC" \
	"gpt-2:$SHARED/models/llamacpp-vocab/ggml-vocab-gpt-2.gguf:byte-level BPE, gpt-2" \
	"llama-spm:$SHARED/models/llamacpp-vocab/ggml-vocab-llama-spm.gguf:SentencePiece"; do
	name=${v%%:*} rest=${v#*:} file=${rest%%:*} kind=${rest#*:}
	# shellcheck disable=SC2086
	out=$("$TOOL" --bench "$file" "$BYTES" $TEXT 2>&1 | tail -n 1)
	init=$(echo "$out" | sed -n 's/.*init_ms=\([0-9]*\).*/\1/p')
	enc=$(echo "$out" | sed -n 's/.*encode_ms=\([0-9]*\).*/\1/p')
	mbs=$(awk -v b="$BYTES" -v ms="$enc" 'BEGIN { if (ms > 0) printf "%.1f", b / 1e6 / (ms / 1e3); else print "-" }')
	echo "| $name | $kind | $init | $enc | $mbs |"
done
