#!/bin/sh
# build-image.sh — the enclave VM image (what `make image` runs; docs/vm.md):
#   1. the minimal kernel, from the cache or built (scripts/build-kernel.sh);
#   2. mu vm build: the initramfs holding the static mu-enclave as /init, the kernel, the
#      command line, and the image measurement, into $BUILD/image.
set -eu
BUILD=${BUILD:-build}
cd "$(dirname "$0")/.."
out=$(./scripts/build-kernel.sh)
kernel=$(echo "$out" | sed -n 's/^kernel //p')
desc=$(echo "$out" | sed -n 's/^desc *//p')
[ -n "$kernel" ] || { echo "build-image: no kernel" >&2; exit 1; }
exec "$BUILD/mu" vm build --kernel "$kernel" --kernel-desc "$desc" --enclave "$BUILD/musl/mu-enclave" \
	--out "$BUILD/image"
