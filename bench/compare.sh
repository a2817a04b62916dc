#!/bin/sh
# Side-by-side speed of mu and (optionally) llama.cpp on the same GGUF files.
#
#   bench/compare.sh [-t LIST] [-l LIST] [-p N] [-n N] [-r REPS] [--markdown] MODEL.gguf...
#
#   -t LIST     comma-separated thread counts (default 1,2)
#   -l LIST     how the weights are held, comma-separated (default map):
#                 map   the file's mapping (mu bench --load map, llama-bench -mmp 1)
#                 copy  a copy in anonymous memory (mu bench --load copy, the memory mu-enclave
#                       unseals weights into; llama-bench -mmp 0)
#   -p N        prompt tokens of the pp test (default 128; 0 skips it)
#   -n N        generated tokens of the tg test (default 64; 0 skips it)
#   -r REPS     repetitions (default 3)
#   --markdown  print a Markdown table (for docs/performance.md) instead of plain columns
#
# Environment:
#   MU           the mu binary (default build/mu of this checkout)
#   MEMBW        the bandwidth probe (default build/bench/membw of this checkout; make builds both)
#   MEMBW_SIZE   its buffer (default 1G)
#   LLAMA_BENCH  a llama-bench binary; when set, llama-bench runs on the same file with the same
#                threads, pp and tg sizes, one repetition at a time, alternating with mu
#                (mu, llama.cpp, mu, llama.cpp, ...) so that both see the same machine state
#   PY           a Python 3 interpreter, for the JSON (default python3)
#
# For each model and thread count the table gives tokens/s (mean ± standard deviation over the
# repetitions) of mu and llama.cpp, their ratio, and for tg the bandwidth bound: the weight bytes
# one generated token reads (from mu bench) against the best read bandwidth membw measured at
# that thread count (it runs before and after the measurements), and the fraction of that
# bound each program reaches. The last column sets mu against the engine's targets: decode at
# least as fast as llama.cpp (1.0x) and at 90% of the bandwidth bound, prompt processing 1.3x
# llama.cpp, and says by how much a target is missed. The load average
# before and after is printed too: figures taken on a busy machine are not comparable with
# figures from a quiet one.
set -eu
ROOT=$(cd "$(dirname "$0")/.." && pwd)
MU=${MU:-$ROOT/build/mu}
MEMBW=${MEMBW:-$ROOT/build/bench/membw}
MEMBW_SIZE=${MEMBW_SIZE:-1G}
LLAMA_BENCH=${LLAMA_BENCH:-}
PY=${PY:-python3}
THREADS=1,2 LOADS=map PP=128 TG=64 REPS=3 MARKDOWN=0

die() {
	echo "compare.sh: $*" >&2
	exit 2
}
usage() {
	sed -n '2,/^set -eu/p' "$0" | sed -e '/^set -eu/d' -e 's/^# \{0,1\}//'
}
number() { # number FLAG VALUE: VALUE must be a non-negative integer
	case $2 in
	'' | *[!0-9]*) die "$1: '$2' is not a non-negative integer" ;;
	esac
}

while [ $# -gt 0 ]; do
	case $1 in
	-h | --help) usage; exit 0 ;;
	-t) [ $# -ge 2 ] || die "-t needs a value"; THREADS=$2; shift 2 ;;
	-l) [ $# -ge 2 ] || die "-l needs a value"; LOADS=$2; shift 2 ;;
	-p) [ $# -ge 2 ] || die "-p needs a value"; number -p "$2"; PP=$2; shift 2 ;;
	-n) [ $# -ge 2 ] || die "-n needs a value"; number -n "$2"; TG=$2; shift 2 ;;
	-r) [ $# -ge 2 ] || die "-r needs a value"; number -r "$2"; REPS=$2; shift 2 ;;
	--markdown) MARKDOWN=1; shift ;;
	--) shift; break ;;
	-*) die "unknown option '$1' (see --help)" ;;
	*) break ;;
	esac
done
[ $# -gt 0 ] || die "no model given (usage: bench/compare.sh [-t LIST] [-l LIST] [-p N] [-n N] [-r REPS] [--markdown] MODEL.gguf...)"
case $LOADS in
'' | ,* | *, | *,,* | *[!a-z,]*) die "-l: '$LOADS' is not a comma-separated list of map and copy" ;;
esac
case ,$LOADS, in
*,map,*map,* | *,copy,*copy,*) die "-l: '$LOADS' names a way twice" ;;
esac
for l in $(echo "$LOADS" | tr ',' ' '); do
	case $l in
	map | copy) ;;
	*) die "-l: '$l' is not map or copy" ;;
	esac
done
case $THREADS in
'' | ,* | *, | *,,* | *[!0-9,]*) die "-t: '$THREADS' is not a comma-separated list of thread counts" ;;
esac
[ "$REPS" -ge 1 ] || die "-r: at least one repetition"
[ "$PP" -gt 0 ] || [ "$TG" -gt 0 ] || die "-p 0 and -n 0 leave nothing to measure"
[ -x "$MU" ] || die "$MU: no mu binary (build it with make, or set MU)"
[ -x "$MEMBW" ] || die "$MEMBW: no bandwidth probe (build it with make bench, or set MEMBW)"
if [ -n "$LLAMA_BENCH" ] && [ ! -x "$LLAMA_BENCH" ]; then
	die "LLAMA_BENCH=$LLAMA_BENCH is not an executable file"
fi
command -v "$PY" >/dev/null 2>&1 || die "$PY not found (set PY to a Python 3 interpreter)"
for m in "$@"; do
	[ -f "$m" ] || die "$m: no such model file"
done

TMP=$(mktemp -d "${TMPDIR:-/tmp}/mu-compare.XXXXXX")
trap 'rm -rf "$TMP"' EXIT

load_before=$(cut -d ' ' -f 1-3 /proc/loadavg)
echo "compare: measuring memory bandwidth ($MEMBW_SIZE buffer, threads $THREADS)" >&2
"$MEMBW" --size "$MEMBW_SIZE" -t "$THREADS" --json >"$TMP/membw.json" || die "$MEMBW failed"

i=0
for m in "$@"; do
	i=$((i + 1))
	echo "$m" >"$TMP/model$i.name"
	for t in $(echo "$THREADS" | tr ',' ' '); do
		for l in $(echo "$LOADS" | tr ',' ' '); do
			mmp=1
			[ "$l" = map ] || mmp=0
			r=1
			while [ "$r" -le "$REPS" ]; do
				echo "compare: $(basename "$m") -t $t -l $l rep $r/$REPS: mu" >&2
				if ! "$MU" bench -m "$m" -p "$PP" -n "$TG" -t "$t" -r 1 --load "$l" --json \
					>>"$TMP/model$i.t$t.$l.mu" 2>"$TMP/err"; then
					cat "$TMP/err" >&2
					die "mu bench failed on $m"
				fi
				if [ -n "$LLAMA_BENCH" ]; then
					echo "compare: $(basename "$m") -t $t -l $l rep $r/$REPS: llama-bench" >&2
					if ! "$LLAMA_BENCH" -m "$m" -p "$PP" -n "$TG" -t "$t" -mmp "$mmp" -r 1 -o json \
						>"$TMP/model$i.t$t.$l.lb$r" 2>"$TMP/err"; then
						tail -n 20 "$TMP/err" >&2
						die "llama-bench failed on $m"
					fi
				fi
				r=$((r + 1))
			done
		done
	done
done
load_after=$(cut -d ' ' -f 1-3 /proc/loadavg)
echo "compare: measuring memory bandwidth again" >&2
"$MEMBW" --size "$MEMBW_SIZE" -t "$THREADS" --json >"$TMP/membw2.json" || die "$MEMBW failed"

"$PY" - "$TMP" "$i" "$THREADS" "$PP" "$TG" "$MARKDOWN" "$load_before" "$load_after" "$MEMBW_SIZE" \
	"${LLAMA_BENCH:+yes}" "$LOADS" <<'PY'
import glob, json, math, os, sys

tmp, n_models, threads, pp, tg, markdown, load0, load1, membw_size, have_lb, loads = sys.argv[1:12]
loads = loads.split(",")
n_models, pp, tg, markdown = int(n_models), int(pp), int(tg), markdown == "1"
threads = [int(t) for t in threads.split(",")]

# membw ran before and after the runs; the bound uses the better of the two at each thread
# count, so a busy moment during one of them does not lower it.
runs = [json.load(open(os.path.join(tmp, f))) for f in ("membw.json", "membw2.json")]
bw = {}
for run in runs:
    for r in run["results"]:
        if r["threads"] not in bw or r["best_gbps"] > bw[r["threads"]]["best_gbps"]:
            bw[r["threads"]] = r

def stats(v):
    if not v:
        return None
    mean = sum(v) / len(v)
    sd = math.sqrt(sum((x - mean) ** 2 for x in v) / (len(v) - 1)) if len(v) > 1 else 0.0
    return mean, sd

def fmt(s):
    return "—" if s is None else "%.2f ± %.2f" % s

# The targets, from the figures as printed: tg 1.0x llama.cpp and 90% of the bound, pp 1.3x.
def targets(test, ratio, frac):
    notes = []
    want = 1.3 if test == "pp" else 1.0
    if ratio != "—":
        r = float(ratio)
        notes.append("%.1fx: %s" % (want, "met" if r >= want else "%.2f short" % (want - r)))
    if test == "tg" and frac != "—":
        f = int(frac.rstrip("%"))
        notes.append("90%% of bound: %s" % ("met" if f >= 90 else "%d pts short" % (90 - f)))
    return "; ".join(notes) or "—"

rows = []
kernels = set()
for i in range(1, n_models + 1):
    path = open(os.path.join(tmp, "model%d.name" % i)).read().strip()
    name = os.path.basename(path)
    if name.endswith(".gguf"):
        name = name[:-5]
    for t in threads:
        for ld in loads:
            ours = [json.loads(l) for l in open(os.path.join(tmp, "model%d.t%d.%s.mu" % (i, t, ld))) if l.strip()]
            kernels.update(o["kernels"] for o in ours)
            per_tok = ours[0]["weight_bytes_per_token"]
            theirs = []
            for f in sorted(glob.glob(os.path.join(tmp, "model%d.t%d.%s.lb*" % (i, t, ld)))):
                theirs.extend(json.load(open(f)))
            for test, n in (("pp", pp), ("tg", tg)):
                if n == 0:
                    continue
                o = stats([x[test]["tokens_per_s"] for x in ours])
                if test == "pp":
                    l = stats([x["avg_ts"] for x in theirs if x["n_prompt"] == n and x["n_gen"] == 0])
                else:
                    l = stats([x["avg_ts"] for x in theirs if x["n_gen"] == n and x["n_prompt"] == 0])
                ratio = "%.2f" % (o[0] / l[0]) if o and l and l[0] > 0 else "—"
                bound = ob = lbf = "—"
                if test == "tg" and t in bw and per_tok > 0:
                    b = bw[t]["best_gbps"] * 1e9 / per_tok
                    bound = "%.2f" % b
                    ob = "%.0f%%" % (100 * o[0] / b)
                    if l:
                        lbf = "%.0f%%" % (100 * l[0] / b)
                rows.append([name, str(t), ld, "%s%d" % (test, n), fmt(o), fmt(l), ratio, bound, ob, lbf,
                             targets(test, ratio, ob)])

head = ["model", "threads", "weights", "test", "mu tok/s", "llama.cpp tok/s", "ratio", "tg bound tok/s", "mu/bound",
        "llama.cpp/bound", "targets"]
for label, run in zip(("before", "after"), runs):
    print("membw %s (%s buffer, %s loads, best of %d passes): %s" % (
        label, membw_size, run["isa"], run["passes"],
        ", ".join("%d thread%s %.1f GB/s (median %.1f)" % (r["threads"], "" if r["threads"] == 1 else "s",
                                                         r["best_gbps"], r["median_gbps"]) for r in run["results"])))
print("mu kernels: %s; llama.cpp: %s; load average before %s, after %s" % (
    ", ".join(sorted(kernels)), "llama-bench" if have_lb else "not run (set LLAMA_BENCH)", load0, load1))
print("tg bound = best read bandwidth (before or after) / weight bytes per generated token")
print()
if markdown:
    print("| " + " | ".join(head) + " |")
    print("|" + "|".join("---" for _ in head) + "|")
    for r in rows:
        print("| " + " | ".join(r) + " |")
else:
    w = [max(len(h), *(len(r[k]) for r in rows)) for k, h in enumerate(head)]
    print("  ".join(h.ljust(w[k]) for k, h in enumerate(head)).rstrip())
    for r in rows:
        print("  ".join(c.ljust(w[k]) for k, c in enumerate(r)).rstrip())
PY
