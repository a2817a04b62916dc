#!/bin/sh
# Installs every Debian package that building, testing and fuzzing μInference needs.
# musl-tools, linux-source-6.1 (and the kernel build's flex, bison, bc, libelf-dev, libssl-dev,
# cpio, xz-utils) and qemu-system-x86 are for the enclave VM image (docs/vm.md).
# Idempotent: packages already present are left alone, and apt runs only when something is
# missing. Needs root (or sudo) only when it actually has to install.
# Node.js and npm are for the one client-compatibility test (tests/cli_http_openai.sh, which
# installs the `openai` package into a scratch directory); they are installed only when no
# `npm` is on the PATH, so a Node.js that is already there is left alone.
# valgrind, cppcheck and clang-tidy are for the analysis targets (make check-valgrind,
# check-cppcheck, check-tidy; docs/analysis.md).
set -eu

PKGS="make gcc clang musl-tools linux-source-6.1 flex bison bc libelf-dev libssl-dev cpio xz-utils qemu-system-x86 llvm libclang-rt-14-dev libbearssl-dev libutf8proc-dev libmicrohttpd-dev curl python3 python3-numpy python3-jinja2 python3-cryptography valgrind cppcheck clang-tidy"

missing=""
command -v npm >/dev/null 2>&1 || PKGS="$PKGS nodejs npm"
for p in $PKGS; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
		missing="$missing $p"
	fi
done

if [ -z "$missing" ]; then
	exit 0
fi

echo "deps: installing:$missing" >&2
if [ "$(id -u)" -eq 0 ]; then
	SUDO=""
elif command -v sudo >/dev/null 2>&1; then
	SUDO="sudo"
else
	echo "deps: need root (or sudo) to install:$missing" >&2
	exit 1
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# shellcheck disable=SC2086
$SUDO apt-get install -y -qq --no-install-recommends $missing >&2
