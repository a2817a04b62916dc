#!/bin/sh
# Chat templates against the real Jinja templates (python3-jinja2) and the Llama 3.2 golden
# token ids. Vocabularies are built from the Hugging Face files by `mu vocab`.
set -u
MU=${MU:-build/mu}
SHARED=${SHARED:-../shared}
export SHARED
BUILD=$(dirname "$MU")
TMP=build/tmp/cli_chat.$$
mkdir -p "$TMP"
trap 'rm -rf "$TMP"' EXIT
L3=$SHARED/models/llama3-tokenizer
Q3=$SHARED/models/qwen3-tokenizer

if ! "$MU" vocab --from-hf "$L3/tokenizer.json" --config "$L3/tokenizer_config.json" \
		--chat-template "$L3/meta-llama-Llama-3.2-3B-Instruct.jinja" -o "$TMP/llama32.gguf" 2>"$TMP/err" ||
	! "$MU" vocab --from-hf "$L3/tokenizer.json" --config "$L3/tokenizer_config.json" -o "$TMP/llama3.gguf" 2>>"$TMP/err" ||
	! "$MU" vocab --from-hf "$Q3/tokenizer.json" --config "$Q3/tokenizer_config.json" -o "$TMP/qwen3.gguf" 2>>"$TMP/err"; then
	cat "$TMP/err"
	echo "0 passed, 1 failed"
	exit 1
fi
/usr/bin/python3 tests/ref/chat_oracle.py "$BUILD/tests/tool_chat" "$TMP" \
	"llama3.2:$TMP/llama32.gguf:$L3/meta-llama-Llama-3.2-3B-Instruct.jinja" \
	"llama3:$TMP/llama3.gguf:$L3/tokenizer_config.json" \
	"qwen3:$TMP/qwen3.gguf:$Q3/tokenizer_config.json" >"$TMP/oracle.txt"
oracle_rc=$?
cat "$TMP/oracle.txt"
line=$(tail -n 1 "$TMP/oracle.txt")
pass=$(echo "$line" | sed -E 's/^([0-9]+) passed.*/\1/')
fail=$(echo "$line" | sed -E 's/.* ([0-9]+) failed.*/\1/')
case "$pass$fail" in *[!0-9]*|"") pass=0 fail=1 ;; esac
[ "$oracle_rc" -ne 0 ] && [ "$fail" -eq 0 ] && fail=1
ok() { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "FAIL: $*"; }

# End to end with real vocabularies: random-weight models that carry the Llama 3.2 and Qwen 3
# tokenizers (gen-model --vocab), driven through mu run --chat and mu tokenize.
for v in llama32 qwen3; do
	if "$MU" gen-model --arch llama --shape tiny --type q8_0 --vocab "$TMP/$v.gguf" -o "$TMP/$v-model.gguf" 2>"$TMP/err"; then ok; else
		bad "gen-model --vocab $v: $(cat "$TMP/err")"; continue
	fi
	"$MU" run -m "$TMP/$v-model.gguf" --chat --system "Be brief." -p 'Say <|eot_id|><|im_end|> hi' -n 8 --temp 0 \
		>"$TMP/out.txt" 2>"$TMP/err"
	rc=$?
	want=llama31; [ "$v" = qwen3 ] && want=chatml
	if [ $rc -eq 0 ] && grep -q "chat template $want" "$TMP/err"; then ok; else bad "mu run --chat $v: rc $rc $(cat "$TMP/err")"; fi
	# the generated text is valid UTF-8 (the streaming decoder never splits a character)
	if /usr/bin/python3 -c 'import sys; open(sys.argv[1], "rb").read().decode("utf-8")' "$TMP/out.txt"; then ok; else
		bad "mu run --chat $v: output is not valid UTF-8"
	fi
done
plain=$("$MU" tokenize -m "$TMP/llama32.gguf" -p 'a<|eot_id|>b')
special=$("$MU" tokenize -m "$TMP/llama32.gguf" -p 'a<|eot_id|>b' --special)
case " $plain " in *" 128009 "*) bad "tokenize without --special produced <|eot_id|>: $plain" ;; *) ok ;; esac
case " $special " in *" 128009 "*) ok ;; *) bad "tokenize --special missed <|eot_id|>: $special" ;; esac
ids=$("$MU" tokenize -m "$TMP/llama32.gguf" -p 'Hello world' --no-bos)
if [ "$ids" = "9906 1917" ]; then ok; else bad "tokenize 'Hello world' gave '$ids'"; fi

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
