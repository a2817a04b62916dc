#!/bin/sh
# make bench: generation and prompt speed of random-weight models in real shapes.
#
#   BENCH_SHAPES   shapes to generate (default "stories15m tinyllama")
#   BENCH_TYPES    weight types (default "q8_0 q4_0")
#   BENCH_THREADS  thread counts (default "1 2")
#   BENCH_DIR      where generated models are cached (default build/bench)
# Models are generated once (mu gen-model is deterministic) and reused.
set -eu
cd "$(dirname "$0")/.."
MU=${MU:-build/mu}
DIR=${BENCH_DIR:-build/bench}
SHAPES=${BENCH_SHAPES:-stories15m tinyllama}
TYPES=${BENCH_TYPES:-q8_0 q4_0}
THREADS=${BENCH_THREADS:-1 2}
mkdir -p "$DIR"

for shape in $SHAPES; do
	for type in $TYPES; do
		m=$DIR/llama-$shape-$type.gguf
		if [ ! -f "$m" ]; then
			echo "bench: generating $m" >&2
			$MU gen-model --arch llama --shape "$shape" --type "$type" --seed 1 -o "$m"
		fi
		for t in $THREADS; do
			$MU bench -m "$m" -p 128 -n 64 -t "$t" -r 3
		done
	done
done

echo
./bench/tokenize.sh
