#!/bin/sh
# build-kernel.sh — the enclave VM's minimal kernel (docs/vm.md), built once and cached.
#
#   scripts/build-kernel.sh [--print-key]
#
# Builds Linux from Debian's linux-source package: `make tinyconfig`, then the options in
# image/kernel.config, then checks that every one of them took (a silently dropped option,
# say one whose dependency is missing, is an error, not a surprise at boot). The bzImage is
# cached outside the repository under $MU_CACHE (default ${XDG_CACHE_HOME:-~/.cache}/mu),
# keyed by the SHA-256 of the source tarball, the config fragment, this script and the gcc and
# binutils versions: a second
# build is instant, and a changed fragment builds anew.
#
# Reproducible: fixed build timestamp, user, host and build number, no debug info, no
# version suffix from the source tree; the same inputs give the same bzImage (docs/vm.md).
#
# Prints progress on stderr and, on success, two lines on stdout:
#   kernel PATH-OF-BZIMAGE
#   desc   minimal Linux VERSION (linux-source, image/kernel.config KEY12)
set -eu

here=$(cd "$(dirname "$0")/.." && pwd)
frag=$here/image/kernel.config
cache=${MU_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/mu}/kernel

say() { echo "build-kernel: $*" >&2; }
die() { say "$*"; exit 1; }

tarball=$(ls /usr/src/linux-source-*.tar.xz 2>/dev/null | sort -V | tail -n 1 || true)
[ -n "$tarball" ] || die "no /usr/src/linux-source-*.tar.xz: install Debian's linux-source package (scripts/deps.sh does)"
[ -r "$frag" ] || die "cannot read $frag"

# The toolchain is part of the key: another gcc or binutils may give other bytes.
key=$( { sha256sum <"$tarball"; sha256sum <"$frag"; sha256sum <"$0"; gcc --version | head -n 1;
	ld --version | head -n 1; } | sha256sum | cut -c1-64)
if [ "${1:-}" = "--print-key" ]; then
	echo "$key"
	exit 0
fi
dir=$cache/$key
if [ -s "$dir/bzImage" ] && [ -s "$dir/desc" ]; then
	say "cached: $dir/bzImage"
	echo "kernel $dir/bzImage"
	echo "desc   $(cat "$dir/desc")"
	exit 0
fi

mkdir -p "$cache"
work=$cache/$key.work.$$
trap 'rm -rf "$work"' EXIT INT TERM
mkdir -p "$work"
say "unpacking $(basename "$tarball") ..."
tar -xJf "$tarball" -C "$work"
src=$(find "$work" -mindepth 1 -maxdepth 1 -type d | head -n 1)
[ -d "$src" ] || die "the tarball holds no source directory"

export KBUILD_BUILD_TIMESTAMP='1970-01-01 00:00:00 UTC' KBUILD_BUILD_USER=mu KBUILD_BUILD_HOST=mu \
	KBUILD_BUILD_VERSION=1 LOCALVERSION=
log=$work/build.log
say "configuring: tinyconfig + image/kernel.config"
(cd "$src" && make tinyconfig && scripts/kconfig/merge_config.sh -m .config "$frag" &&
	make olddefconfig) >"$log" 2>&1 || { tail -n 20 "$log" >&2; die "configuration failed"; }

# Every option of the fragment must hold in the final .config.
missing=""
for line in $(grep -E '^CONFIG_[A-Z0-9_]+=' "$frag"); do
	opt=${line%%=*}
	val=${line#*=}
	if [ "$val" = n ]; then
		grep -q "^$opt=" "$src/.config" && missing="$missing $opt=n"
	else
		grep -qx "$line" "$src/.config" || missing="$missing $line"
	fi
done
[ -z "$missing" ] || die "options that did not take (a dependency is missing?):$missing"

jobs=$(nproc 2>/dev/null || echo 2)
say "compiling with $jobs jobs (a few minutes; log: $log) ..."
start=$(date +%s)
(cd "$src" && make -j"$jobs" bzImage) >>"$log" 2>&1 || { tail -n 30 "$log" >&2; die "the kernel build failed"; }
version=$(cd "$src" && make -s kernelversion)
say "compiled Linux $version in $(( $(date +%s) - start )) s"

new=$dir.new.$$
mkdir -p "$new"
cp "$src/arch/x86/boot/bzImage" "$new/bzImage"
cp "$src/.config" "$new/config"
echo "minimal Linux $version (linux-source, image/kernel.config $(echo "$key" | cut -c1-12), $(gcc --version | head -n 1))" >"$new/desc"
rm -rf "$dir"
mv "$new" "$dir"
echo "kernel $dir/bzImage"
echo "desc   $(cat "$dir/desc")"
