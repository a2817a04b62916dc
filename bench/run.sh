#!/bin/sh
# make bench: generation (tg) and prompt (pp) speed of random-weight models in real shapes,
# side by side with llama.cpp when LLAMA_BENCH is set, then tokenizer speed.
#
# Models come from `mu gen-model --arch llama --seed 1` (deterministic), are generated once into
# BENCH_DIR and reused. bench/compare.sh measures them (see its header for the table) and
# bench/tokenize.sh the tokenizers.
#
#   BENCH_MODELS   SHAPE:TYPE pairs to generate and measure (default: llama3.2-1b in q8_0,
#                  q4_k_m, q4_0 and f16, tinyllama in q8_0 and q4_k_m; about 7 GB of files)
#   BENCH_DIR      where generated models are cached (default build/bench)
#   BENCH_THREADS  comma-separated thread counts (default 1,2)
#   BENCH_LOADS    how the weights are held, compare.sh -l (default map,copy)
#   BENCH_PP       prompt tokens of the pp test (default 128)
#   BENCH_TG       generated tokens of the tg test (default 64)
#   BENCH_REPS     repetitions, mu and llama.cpp alternating (default 3)
#   BENCH_MARKDOWN 1: print the table in Markdown
#   LLAMA_BENCH    a llama-bench binary to compare with (default: none, mu only)
#   MU, MEMBW, KBENCH  the binaries (default $BUILD/mu, $BUILD/bench/membw and
#                  $BUILD/bench/kernels, BUILD default build)
#   BENCH_SKIP_TOKENIZE  1: skip the tokenizer benchmark
set -eu
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
MU=${MU:-$BUILD/mu}
MEMBW=${MEMBW:-$BUILD/bench/membw}
KBENCH=${KBENCH:-$BUILD/bench/kernels}
DIR=${BENCH_DIR:-$BUILD/bench}
MODELS=${BENCH_MODELS:-llama3.2-1b:q8_0 llama3.2-1b:q4_k_m llama3.2-1b:q4_0 llama3.2-1b:f16 tinyllama:q8_0 tinyllama:q4_k_m}
export MU MEMBW
mkdir -p "$DIR"

files=
for spec in $MODELS; do
	case $spec in
	*:*) ;;
	*) echo "bench: BENCH_MODELS entry '$spec' is not SHAPE:TYPE" >&2; exit 2 ;;
	esac
	shape=${spec%%:*} type=${spec#*:}
	m=$DIR/llama-$shape-$type.gguf
	if [ ! -f "$m" ]; then
		echo "bench: generating $m" >&2
		"$MU" gen-model --arch llama --shape "$shape" --type "$type" --seed 1 -o "$m"
	fi
	files="$files $m"
done

echo "bench: the kernels with their weights in cache (bench/kernels)" >&2
"$KBENCH"
echo

md=
[ "${BENCH_MARKDOWN:-0}" = 1 ] && md=--markdown
# shellcheck disable=SC2086
./bench/compare.sh -t "${BENCH_THREADS:-1,2}" -l "${BENCH_LOADS:-map,copy}" -p "${BENCH_PP:-128}" -n "${BENCH_TG:-64}" -r "${BENCH_REPS:-3}" $md $files

if [ "${BENCH_SKIP_TOKENIZE:-0}" != 1 ]; then
	echo
	BENCH_DIR=$DIR ./bench/tokenize.sh
fi
