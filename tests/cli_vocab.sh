#!/bin/sh
# Command-level tests of mu vocab: the Llama 3 and Qwen3 vocab GGUFs built from ../shared
# (counts and keys checked with mu info, a few entries read back from the GGUF, output
# deterministic), llama.cpp's GPT-2 vocabulary rebuilt byte for byte from a tokenizer.json made
# out of it, and must-fail inputs that name the JSON path and leave no output behind.
# Env: MU (the mu binary), SHARED (the fixtures, default ../shared). asan-ok
set -u
. tests/lib.sh
L3=$SHARED/models/llama3-tokenizer
QW=$SHARED/models/qwen3-tokenizer
has() { # has DESCRIPTION FILE REGEX: passes when FILE has a line matching REGEX
	if grep -q -- "$3" "$2"; then ok; else bad "$1: no line matching '$3' in:"; sed 's/^/    | /' "$2" | head -20; fi
}

# piece FILE.gguf ID -> the token piece and type of ID, read straight from the GGUF
piece() {
	$PY - "$1" "$2" <<'PY'
import struct, sys
data = open(sys.argv[1], "rb").read()
want = int(sys.argv[2])
pos = 24
n_kv = struct.unpack_from("<Q", data, 16)[0]
sizes = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}
def string(p):
    n = struct.unpack_from("<Q", data, p)[0]
    return data[p + 8:p + 8 + n].decode("utf-8"), p + 8 + n
out = {}
for _ in range(n_kv):
    key, pos = string(pos)
    t = struct.unpack_from("<I", data, pos)[0]; pos += 4
    if t == 9:
        et, n = struct.unpack_from("<IQ", data, pos); pos += 12
        if et == 8:
            for i in range(n):
                s, pos = string(pos)
                if i == want and key.endswith(".tokens"): out["piece"] = s
        else:
            if key.endswith(".token_type"): out["type"] = struct.unpack_from("<i", data, pos + 4 * want)[0]
            pos += sizes[et] * n
    elif t == 8:
        _, pos = string(pos)
    else:
        pos += sizes[t]
print("%s %s" % (out.get("piece"), out.get("type")))
PY
}

# 1. Llama 3: tokenizer.json + tokenizer_config.json + the Llama 3.2 chat template.
if "$MU" vocab --from-hf "$L3/tokenizer.json" --config "$L3/tokenizer_config.json" \
	--chat-template "$L3/meta-llama-Llama-3.2-3B-Instruct.jinja" -o "$TMP/llama3.gguf" 2>"$TMP/l3.err"; then
	ok
	has "llama3 progress line" "$TMP/l3.err" "128256 tokens (256 added, 0 unused), 280147 merges, pre llama-bpe"
	"$MU" info "$TMP/llama3.gguf" >"$TMP/l3.info" 2>&1
	has "llama3 0 tensors" "$TMP/l3.info" "12 metadata keys, 0 tensors"
	has "llama3 arch" "$TMP/l3.info" 'general.architecture  *"llama"$'
	has "llama3 model" "$TMP/l3.info" 'tokenizer.ggml.model  *"gpt2"$'
	has "llama3 pre" "$TMP/l3.info" 'tokenizer.ggml.pre  *"llama-bpe"$'
	has "llama3 tokens" "$TMP/l3.info" 'tokenizer.ggml.tokens  *\[string × 128256\] "!"'
	has "llama3 token types" "$TMP/l3.info" 'tokenizer.ggml.token_type  *\[i32 × 128256\]'
	has "llama3 merges" "$TMP/l3.info" 'tokenizer.ggml.merges  *\[string × 280147\] "Ġ Ġ", "Ġ ĠĠĠ"'
	has "llama3 bos" "$TMP/l3.info" 'tokenizer.ggml.bos_token_id  *128000$'
	has "llama3 eos" "$TMP/l3.info" 'tokenizer.ggml.eos_token_id  *128009$'
	has "llama3 add_bos from the post-processor" "$TMP/l3.info" 'tokenizer.ggml.add_bos_token  *true$'
	has "llama3 add_eos" "$TMP/l3.info" 'tokenizer.ggml.add_eos_token  *false$'
	has "llama3 template from the .jinja" "$TMP/l3.info" 'tokenizer.chat_template  *"{{- bos_token }}.*(3827 bytes)'
	check "llama3 token 128000" test "$(piece "$TMP/llama3.gguf" 128000)" = "<|begin_of_text|> 3"
	check "llama3 token 128009" test "$(piece "$TMP/llama3.gguf" 128009)" = "<|eot_id|> 3"
	check "llama3 token 1820" test "$(piece "$TMP/llama3.gguf" 1820)" = "the 1"
	"$MU" vocab --from-hf "$L3/tokenizer.json" --config "$L3/tokenizer_config.json" \
		--chat-template "$L3/meta-llama-Llama-3.2-3B-Instruct.jinja" -o "$TMP/llama3-again.gguf" 2>/dev/null
	check "llama3 output is deterministic" cmp -s "$TMP/llama3.gguf" "$TMP/llama3-again.gguf"
else
	bad "mu vocab llama3: $(cat "$TMP/l3.err")"
fi

# 2. Qwen3: tokenizer.json + tokenizer_config.json (its own template, NFC, 26 added tokens).
if "$MU" vocab --from-hf "$QW/tokenizer.json" --config "$QW/tokenizer_config.json" --name qwen3 \
	-o "$TMP/qwen3.gguf" 2>"$TMP/qw.err"; then
	ok
	has "qwen3 progress line" "$TMP/qw.err" "151669 tokens (26 added, 0 unused), 151387 merges, pre qwen2, normalizer NFC"
	"$MU" info "$TMP/qwen3.gguf" >"$TMP/qw.info" 2>&1
	has "qwen3 arch" "$TMP/qw.info" 'general.architecture  *"qwen2"$'
	has "qwen3 name" "$TMP/qw.info" 'general.name  *"qwen3"$'
	has "qwen3 pre" "$TMP/qw.info" 'tokenizer.ggml.pre  *"qwen2"$'
	has "qwen3 tokens" "$TMP/qw.info" 'tokenizer.ggml.tokens  *\[string × 151669\]'
	has "qwen3 merges" "$TMP/qw.info" 'tokenizer.ggml.merges  *\[string × 151387\] "Ġ Ġ", "ĠĠ ĠĠ"'
	has "qwen3 eos" "$TMP/qw.info" 'tokenizer.ggml.eos_token_id  *151645$'
	has "qwen3 pad" "$TMP/qw.info" 'tokenizer.ggml.padding_token_id  *151643$'
	has "qwen3 add_bos" "$TMP/qw.info" 'tokenizer.ggml.add_bos_token  *false$'
	has "qwen3 template" "$TMP/qw.info" 'tokenizer.chat_template  *"{%- if tools %}'
	check "qwen3 has no bos" sh -c "! grep -q bos_token_id '$TMP/qw.info'"
	check "qwen3 token 151645" test "$(piece "$TMP/qwen3.gguf" 151645)" = "<|im_end|> 3"
	check "qwen3 token 151667 (user-defined)" test "$(piece "$TMP/qwen3.gguf" 151667)" = "<think> 4"
	check "qwen3 last token" test "$(piece "$TMP/qwen3.gguf" 151668)" = "</think> 4"
else
	bad "mu vocab qwen3: $(cat "$TMP/qw.err")"
fi

# 3. GPT-2: rebuild llama.cpp's own ggml-vocab-gpt-2.gguf from a tokenizer.json made out of
#    it (the end-of-text token both in model.vocab and in added_tokens, as Hugging Face has it):
#    tokens, token types and merges must come back identical.
GPT2=$SHARED/models/llamacpp-vocab/ggml-vocab-gpt-2.gguf
$PY - "$GPT2" "$TMP/gpt2.json" "$TMP/gpt2-config.json" <<'PY'
import json, struct, sys
data = open(sys.argv[1], "rb").read()
sizes = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}
def string(p):
    n = struct.unpack_from("<Q", data, p)[0]
    return data[p + 8:p + 8 + n].decode("utf-8"), p + 8 + n
kv, pos = {}, 24
for _ in range(struct.unpack_from("<Q", data, 16)[0]):
    key, pos = string(pos)
    t = struct.unpack_from("<I", data, pos)[0]; pos += 4
    if t == 9:
        et, n = struct.unpack_from("<IQ", data, pos); pos += 12
        if et == 8:
            kv[key] = []
            for _ in range(n):
                s, pos = string(pos); kv[key].append(s)
        else:
            kv[key] = list(struct.unpack_from("<%di" % n, data, pos)); pos += sizes[et] * n
    elif t == 8:
        kv[key], pos = string(pos)
    else:
        pos += sizes[t]
toks, types = kv["tokenizer.ggml.tokens"], kv["tokenizer.ggml.token_type"]
doc = {"version": "1.0", "added_tokens": [{"id": i, "content": t, "special": True} for i, t in enumerate(toks) if types[i] == 3],
       "normalizer": None, "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True},
       "post_processor": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": False, "use_regex": True},
       "model": {"type": "BPE", "dropout": None, "unk_token": None, "ignore_merges": False,
                 "vocab": {t: i for i, t in enumerate(toks)}, "merges": kv["tokenizer.ggml.merges"]}}
json.dump(doc, open(sys.argv[2], "w"), ensure_ascii=False)
json.dump({"bos_token": "<|endoftext|>", "eos_token": "<|endoftext|>"}, open(sys.argv[3], "w"))
PY
if "$MU" vocab --from-hf "$TMP/gpt2.json" --config "$TMP/gpt2-config.json" --name gpt-2 -o "$TMP/gpt2.gguf" 2>"$TMP/gpt2.err"; then
	ok
	has "gpt-2 progress line" "$TMP/gpt2.err" "50257 tokens (1 added, 0 unused), 50000 merges, pre gpt-2"
	"$MU" info "$TMP/gpt2.gguf" >"$TMP/gpt2.info" 2>&1
	has "gpt-2 bos" "$TMP/gpt2.info" 'bos_token_id  *50256$'
	same=$($PY - "$GPT2" "$TMP/gpt2.gguf" <<'PY'
import sys
# the three arrays are byte-identical runs in both files, from the tokens key to the merges' end
def span(path):
    d = open(path, "rb").read()
    a = d.index(b"tokenizer.ggml.tokens")
    b = d.index(b"tokenizer.ggml.merges")
    import struct
    p = b + len(b"tokenizer.ggml.merges") + 4
    et, n = struct.unpack_from("<IQ", d, p); p += 12
    for _ in range(n):
        p += 8 + struct.unpack_from("<Q", d, p)[0]
    return d[a:p]
print("same" if span(sys.argv[1]) == span(sys.argv[2]) else "different")
PY
)
	check "gpt-2 tokens, types and merges equal llama.cpp's" test "$same" = same
else
	bad "mu vocab gpt-2: $(cat "$TMP/gpt2.err")"
fi

# 4. Small hand-made tokenizers: gaps, forced pre-tokenizer, and inputs that must fail.
BL='"pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": false, "use_regex": true}'
tok() { # tok NAME MODEL [EXTRA]: writes $TMP/NAME.json
	printf '{"model": %s, %s%s}\n' "$2" "$BL" "${3:-}" >"$TMP/$1.json"
}
tok small '{"type": "BPE", "vocab": {"a": 0, "b": 1, "ab": 2}, "merges": ["a b"]}' \
	', "added_tokens": [{"id": 5, "content": "<|end|>", "special": true}, {"id": 2, "content": "ab", "special": false}]'
if "$MU" vocab --from-hf "$TMP/small.json" -o "$TMP/small.gguf" 2>"$TMP/small.err"; then
	ok
	has "gap note" "$TMP/small.err" '2 ids have no token (the first is 3): filled with "\[PAD<id>\]"'
	"$MU" info "$TMP/small.gguf" >"$TMP/small.info" 2>&1
	has "small pre gpt-2" "$TMP/small.info" 'tokenizer.ggml.pre  *"gpt-2"$'
	has "small arch gpt2" "$TMP/small.info" 'general.architecture  *"gpt2"$'
	has "small types" "$TMP/small.info" 'token_type  *\[i32 × 6\] 1, 1, 4, 5, 5, 3'
	has "small tokens" "$TMP/small.info" 'tokenizer.ggml.tokens  *\[string × 6\] "a", "b", "ab", "\[PAD3\]"'
	has "small name from directory" "$TMP/small.info" "general.name  *\"cli_vocab.$$\"$"
else
	bad "mu vocab small: $(cat "$TMP/small.err")"
fi
printf '{"model": {"type": "BPE", "vocab": {"a": 0, "b": 1, "ab": 2}, "merges": [["a", "b"]]}, "pre_tokenizer": {"type": "Sequence", "pretokenizers": [{"type": "Split", "pattern": {"Regex": "\\\\p{L}+|\\\\s+"}, "behavior": "Isolated", "invert": false}, {"type": "ByteLevel", "add_prefix_space": false, "use_regex": false}]}}\n' >"$TMP/regex.json"
printf '{"bos_token": {"content": "a"}, "eos_token": "b", "add_bos_token": true, "chat_template": [{"name": "tool_use", "template": "T"}, {"name": "default", "template": "D"}]}\n' >"$TMP/cfg.json"
if "$MU" vocab --from-hf "$TMP/regex.json" --pre qwen2 --config "$TMP/cfg.json" -o "$TMP/forced.gguf" 2>"$TMP/forced.err"; then
	ok
	"$MU" info "$TMP/forced.gguf" >"$TMP/forced.info" 2>&1
	has "forced pre" "$TMP/forced.info" 'tokenizer.ggml.pre  *"qwen2"$'
	has "config bos object" "$TMP/forced.info" 'bos_token_id  *0$'
	has "config eos string" "$TMP/forced.info" 'eos_token_id  *1$'
	has "config template named default" "$TMP/forced.info" 'chat_template  *"D"$'
	has "forced note prints the pattern" "$TMP/forced.err" 'Split pattern: \\p{L}+|\\s+'
	has "qwen2 without NFC warns" "$TMP/forced.err" 'warning: no NFC normalizer'
else
	bad "mu vocab --pre: $(cat "$TMP/forced.err")"
fi

# must_fail NAME EXIT REGEX ARGS...: mu vocab fails with EXIT, says REGEX, leaves no file.
must_fail() {
	name=$1 want=$2 re=$3; shift 3
	rm -f "$TMP/out.gguf"
	"$MU" vocab "$@" -o "$TMP/out.gguf" >"$TMP/$name.out" 2>&1
	rc=$?
	if [ "$rc" -ne "$want" ]; then bad "$name: exit $rc, want $want: $(cat "$TMP/$name.out")"; return; fi
	has "$name message" "$TMP/$name.out" "$re"
	if [ -e "$TMP/out.gguf" ] || ls "$TMP"/out.gguf.tmp.* >/dev/null 2>&1; then bad "$name left a file"; else ok; fi
}
tok wordpiece '{"type": "WordPiece", "vocab": {"a": 0}}'
must_fail wordpiece 1 'model.type: "WordPiece" is not supported (only BPE)' --from-hf "$TMP/wordpiece.json"
tok dupid '{"type": "BPE", "vocab": {"a": 0, "b": 1, "c": 1}, "merges": []}'
must_fail dup-id 1 'model.vocab\["c"\]: id 1 is already the id of "b"' --from-hf "$TMP/dupid.json"
tok dupadded '{"type": "BPE", "vocab": {"a": 0}, "merges": []}' ', "added_tokens": [{"id": 0, "content": "<x>"}]'
must_fail dup-added-id 1 'added_tokens\[0\]: id 0 of "<x>" is already the id of "a"' --from-hf "$TMP/dupadded.json"
tok dupkey '{"type": "BPE", "vocab": {"a": 0, "\u0061": 1}, "merges": []}'
must_fail dup-key 1 'dupkey.json: offset [0-9]*: duplicate key' --from-hf "$TMP/dupkey.json"
printf '{"model": {"type": "BPE", "vocab": {"a": 0,}, "merges": []}}' >"$TMP/malformed.json"
must_fail malformed 1 "malformed.json: offset 43: expected a key after ',' (trailing commas are not allowed)" --from-hf "$TMP/malformed.json"
must_fail unknown-pre 1 "neither Llama 3's nor Qwen2's; pass --pre" --from-hf "$TMP/regex.json"
has "unknown pre prints the pattern" "$TMP/unknown-pre.out" 'Split pattern: \\p{L}+|\\s+'
tok badmerge '{"type": "BPE", "vocab": {"a": 0, "b": 1, "ab": 2}, "merges": ["a b", 17]}'
must_fail bad-merge 1 'model.merges\[1\]: expected a string "LEFT RIGHT" or a 2-element array' --from-hf "$TMP/badmerge.json"
tok badpair '{"type": "BPE", "vocab": {"a": 0, "b": 1, "ab": 2}, "merges": [["a", "b", "c"]]}'
must_fail bad-pair 1 'model.merges\[0\]: expected a string' --from-hf "$TMP/badpair.json"
tok merge-oov '{"type": "BPE", "vocab": {"a": 0, "b": 1}, "merges": ["a b"]}'
must_fail merge-oov 1 'model.merges\[0\]: the merged token "ab" is not in model.vocab' --from-hf "$TMP/merge-oov.json"
tok merge-space '{"type": "BPE", "vocab": {"a": 0, "b": 1}, "merges": ["a  b"]}'
must_fail merge-space 1 'model.merges\[0\]: expected "LEFT RIGHT" with exactly one space' --from-hf "$TMP/merge-space.json"
tok badid '{"type": "BPE", "vocab": {"a": 0.5}, "merges": []}'
must_fail bad-id 1 'model.vocab\["a"\]: offset [0-9]*: number is not an integer' --from-hf "$TMP/badid.json"
tok nomerges '{"type": "BPE", "vocab": {"a": 0}}'
must_fail no-merges 1 'model.merges: missing' --from-hf "$TMP/nomerges.json"
printf '{"model": {"type": "BPE", "vocab": {"a": 0}, "merges": []}, "normalizer": {"type": "NFKC"}, %s}' "$BL" >"$TMP/nfkc.json"
must_fail normalizer 1 'normalizer: type "NFKC" is not supported' --from-hf "$TMP/nfkc.json"
printf '{"bos_token": "<nope>"}' >"$TMP/cfg-bad.json"
must_fail config-token 1 'cfg-bad.json: bos_token: "<nope>" is not a token' --from-hf "$TMP/small.json" --config "$TMP/cfg-bad.json"
must_fail missing-file 1 'cannot open' --from-hf "$TMP/nonexistent.json"
must_fail bad-pre-name 2 '--pre must be llama-bpe, qwen2 or gpt-2' --from-hf "$TMP/small.json" --pre llama4
must_fail no-input 2 '--from-hf and -o are required'

# 5. A failed run leaves an existing output untouched; a good one replaces it.
echo old >"$TMP/keep.gguf"
"$MU" vocab --from-hf "$TMP/badmerge.json" -o "$TMP/keep.gguf" 2>/dev/null
check "failed run keeps the old output" test "$(cat "$TMP/keep.gguf")" = old
"$MU" vocab --from-hf "$TMP/small.json" -o "$TMP/keep.gguf" 2>/dev/null
check "good run replaces the output" cmp -s "$TMP/keep.gguf" "$TMP/small.gguf"
check "--help" sh -c "'$MU' vocab --help | grep -q 'usage: mu vocab --from-hf'"

finish
