#!/usr/bin/python3
"""Chat-template oracle: renders conversations with the real Jinja templates (Debian's
python3-jinja2, with the settings Hugging Face uses) and compares the engine's render
(tests/tool_chat) byte for byte; for Llama 3.2 it also checks the token ids of the golden
file ../shared/models/llama3-tokenizer/llama3.2-chat.golden.txt.

usage: chat_oracle.py TOOL_CHAT TMPDIR CASE...   where CASE is NAME:VOCAB.gguf:TEMPLATE_FILE
TEMPLATE_FILE is a .jinja file or a tokenizer_config.json whose chat_template is used.
Prints one line per check and a closing "N passed, N failed".
"""
import json
import os
import subprocess
import sys

import jinja2
from jinja2.sandbox import ImmutableSandboxedEnvironment

CONVERSATIONS = [
    [("user", "Hello!")],
    [("system", "You are a helpful assistant"), ("user", "Who are you?")],
    [("system", "  Be brief.\n"), ("user", "\n  What is 2+2?  \n")],
    [("user", "Hi!"), ("assistant", "Hello! How can I help?"), ("user", "Tell me a joke about llamas.")],
    [("user", "Écris un poème sur la forêt 🌲, s'il te plaît."), ("assistant", "Voilà : …"), ("user", "Merci — encore !")],
    [("user", "print('<|eot_id|>') and <|im_end|> are just text here")],
    [("user", "2+2?"), ("assistant", "<think>\nadd them\n</think>\n\n4"), ("user", "and 3+3?")],
    [("user", "2+2?"), ("assistant", "<think>\nadd them\n</think>\n\n4")],
]


def load_template(path):
    if path.endswith(".json"):
        cfg = json.load(open(path, encoding="utf-8"))
        t = cfg["chat_template"]
        bos = cfg.get("bos_token") or ""
        if isinstance(bos, dict):
            bos = bos.get("content", "")
        return t, bos
    return open(path, encoding="utf-8").read(), "<|begin_of_text|>"


def render(template, bos, messages):
    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)

    def raise_exception(msg):
        raise jinja2.exceptions.TemplateError(msg)

    env.globals["raise_exception"] = raise_exception
    msgs = [{"role": r, "content": c} for r, c in messages]
    return env.from_string(template).render(messages=msgs, bos_token=bos, add_generation_prompt=True)


def run_tool(tool, vocab, out, messages):
    args = [tool, vocab, out]
    for r, c in messages:
        args += [r, c]
    p = subprocess.run(args, capture_output=True)
    if p.returncode != 0:
        return None, p.stderr.decode("utf-8", "replace").strip()
    text = open(out, "rb").read().decode("utf-8")
    ids = [int(x) for x in p.stdout.split()]
    return text, ids


def golden_cases(path):
    cases, cur = [], None
    for line in open(path, encoding="utf-8"):
        line = line.rstrip("\n")
        if line.startswith("["):
            cur = {"name": line[1:-1]}
            cases.append(cur)
        elif cur is not None and ": " in line:
            k, v = line.split(": ", 1)
            cur[k] = v
    return cases


def main():
    tool, tmp = sys.argv[1], sys.argv[2]
    passed = failed = 0

    def check(ok, what):
        nonlocal passed, failed
        if ok:
            passed += 1
        else:
            failed += 1
            print("FAIL:", what)

    out = os.path.join(tmp, "render.txt")
    for case in sys.argv[3:]:
        name, vocab, tfile = case.split(":", 2)
        template, bos = load_template(tfile)
        for conv in CONVERSATIONS:
            want = render(template, bos, conv)
            got, ids = run_tool(tool, vocab, out, conv)
            if got is None:
                check(False, f"{name}: tool_chat refused {conv!r}: {ids}")
                continue
            check(got == want, f"{name}: render differs for {conv!r}:\n want {want!r}\n got  {got!r}")
            if name == "qwen3" and "<think>" in want:
                # the template's own reasoning markers are Qwen 3's user-defined tokens
                check(151667 in ids and 151668 in ids, f"{name}: <think> markers not encoded as tokens: {ids}")
            if "<|eot_id|>' and" in conv[-1][1] or "just text" in conv[-1][1]:
                # the user's literal special-token strings must not become special ids
                specials = {128009, 151645}
                n_special = sum(1 for i in ids if i in specials)
                n_turn_ends = want.count("<|eot_id|>") + want.count("<|im_end|>") - conv[-1][1].count("<|eot_id|>") - conv[-1][1].count("<|im_end|>")
                check(n_special == n_turn_ends, f"{name}: user text forged a turn end ({n_special} ends, {n_turn_ends} expected)")
        print(f"{name}: {len(CONVERSATIONS)} conversations rendered")

        if name == "llama3.2":
            shared = os.environ.get("SHARED", "../shared")
            for g in golden_cases(os.path.join(shared, "models/llama3-tokenizer/llama3.2-chat.golden.txt")):
                msgs = [(m["role"], m["content"]) for m in json.loads(g["messages_json"])]
                got, ids = run_tool(tool, vocab, out, msgs)
                if got is None:
                    check(False, f"golden {g['name']}: refused: {ids}")
                    continue
                check(got == json.loads(g["prompt_json_string"]), f"golden {g['name']}: prompt differs")
                want_ids = [int(x) for x in g["token_ids"].split()]
                check(ids == want_ids, f"golden {g['name']}: ids differ:\n want {want_ids}\n got  {ids}")
            print("llama3.2: golden conversations checked")

    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
