# μInference — one plain GNU Makefile.
#
#   make            build everything (build/mu, libraries, test binaries)
#   make demo       install dependencies, build, and run the whole chain (seal, key broker,
#                   enclave in its VM, proxy) to ask the default model one question;
#                   `make demo DEMO_MODE=process` runs the enclave as a process instead
#   make image      the enclave VM image (static enclave, minimal kernel, initramfs) in build/image
#   make check      install dependencies, build with gcc and clang (warnings are errors),
#                   run every test, then the ASan/UBSan build of the tests and fuzz corpora
#   make bench      speed of generated models (tokens/s), see bench/
#   make fuzz       run every libFuzzer harness for FUZZ_SECONDS each (docs/fuzzing.md)
#   make surface    measure the enclave's attack surface into docs/attack-surface.md
#   make check-valgrind   every unit test binary under Valgrind memcheck (docs/analysis.md)
#   make check-cppcheck   cppcheck over src/ and cmd/ (docs/analysis.md)
#   make check-tidy       clang-tidy over src/ and cmd/ with .clang-tidy (docs/analysis.md)
#
# Sources are found by wildcard: a new src/**/x.c joins its library, a new tests/test_x.c
# becomes a test binary (run by make check), a new tests/tool_x.c a helper binary that test
# scripts call, a new fuzz/fuzz_x.c a harness.

SHARED   ?= ../shared
BUILD    ?= build
CC       ?= cc
OPT      ?= -O2
SAN      ?=
WERROR   ?=

# No -ffast-math / -Ofast anywhere: they break bit-exact results. -ffp-contract=off forbids
# the compiler from fusing a*b+c, which would change rounding (see docs/determinism.md).
# -fno-math-errno lets sqrt compile to the (correctly rounded) instruction.
WARN     := -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wpointer-arith \
            -Wvla -Wformat=2 -Wno-format-nonliteral
CFLAGS   ?= $(OPT) -g
ALL_CFLAGS := -std=c11 -Isrc $(WARN) $(if $(WERROR),-Werror) -ffp-contract=off -fno-math-errno \
            -fno-strict-aliasing -fstack-protector-strong -D_FORTIFY_SOURCE=2 -fPIE \
            $(SAN) $(CFLAGS)
LDFLAGS  ?=
ALL_LDFLAGS := $(SAN) -pie $(LDFLAGS)
LIBS     := -l:libbearssl.a -l:libutf8proc.a -lpthread
# Host programs only (mu proxy's HTTP API); never linked into the enclave.
HOST_LIBS := $(LIBS) -lmicrohttpd

ENGINE_SRC := $(wildcard src/base/*.c) src/pal/posix.c src/pal/net.c $(wildcard src/engine/*.c) $(wildcard src/wire/*.c) \
              $(wildcard src/seal/*.c) $(wildcard src/attest/*.c)
HOST_SRC   := $(wildcard src/host/*.c)
ENCL_SRC   := $(wildcard src/enclave/*.c)
ENCL_MAIN  := cmd/mu-enclave/main.c
MU_SRC     := $(wildcard cmd/mu/*.c)
TEST_SRC   := $(wildcard tests/test_*.c)
TOOL_SRC   := $(wildcard tests/tool_*.c)
FUZZ_SRC   := $(wildcard fuzz/fuzz_*.c)

obj = $(patsubst %.c,$(BUILD)/obj/%.o,$(1))
ENGINE_OBJ := $(call obj,$(ENGINE_SRC))
HOST_OBJ   := $(call obj,$(HOST_SRC))
ENCL_OBJ   := $(call obj,$(ENCL_SRC) $(ENCL_MAIN))
# The test-only enclave (tests/cli_egress.sh, ...): the same sources with MU_ENCLAVE_TEST, which
# adds scripted misbehaviour (flooding the channel, raw bytes in token frames) and a config key
# that turns its own egress limiter off. Never installed, never measured into a real policy.
ENCL_TOBJ  := $(patsubst %.c,$(BUILD)/obj-test/%.o,$(ENCL_SRC) $(ENCL_MAIN))
MU_OBJ     := $(call obj,$(MU_SRC))
TEST_BIN   := $(patsubst tests/%.c,$(BUILD)/tests/%,$(TEST_SRC))
TOOL_BIN   := $(patsubst tests/%.c,$(BUILD)/tests/%,$(TOOL_SRC))

.PHONY: static-enclave image surface all tests check check-build check-clang check-asan check-valgrind \
        check-cppcheck check-tidy demo bench fuzz fuzz-replay clean deps
all: $(BUILD)/mu $(BUILD)/mu-enclave tests $(BUILD)/bench/membw $(BUILD)/bench/kernels
tests: $(TEST_BIN) $(TOOL_BIN) $(BUILD)/tests/mu-enclave-test

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -MMD -MP -c $< -o $@

$(BUILD)/obj-test/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -DMU_ENCLAVE_TEST=1 -MMD -MP -c $< -o $@

$(BUILD)/libmu_engine.a: $(ENGINE_OBJ)
	@rm -f $@
	ar rcs $@ $^
$(BUILD)/libmu_enclave.a: $(call obj,$(ENCL_SRC))
	@rm -f $@
	ar rcs $@ $^
$(BUILD)/libmu_host.a: $(HOST_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/mu: $(MU_OBJ) $(BUILD)/libmu_host.a $(BUILD)/libmu_engine.a
	$(CC) $(ALL_LDFLAGS) -o $@ $(MU_OBJ) $(BUILD)/libmu_host.a $(BUILD)/libmu_engine.a $(HOST_LIBS)

# The enclave links the engine library only: no host code (no HTTP, no files written).
$(BUILD)/mu-enclave: $(ENCL_OBJ) $(BUILD)/libmu_engine.a
	$(CC) $(ALL_LDFLAGS) -o $@ $(ENCL_OBJ) $(BUILD)/libmu_engine.a $(LIBS)
$(BUILD)/tests/mu-enclave-test: $(ENCL_TOBJ) $(BUILD)/libmu_engine.a
	@mkdir -p $(dir $@)
	$(CC) $(ALL_LDFLAGS) -o $@ $(ENCL_TOBJ) $(BUILD)/libmu_engine.a $(LIBS)

$(BUILD)/tests/%: $(BUILD)/obj/tests/%.o $(BUILD)/libmu_host.a $(BUILD)/libmu_enclave.a $(BUILD)/libmu_engine.a
	@mkdir -p $(dir $@)
	$(CC) $(ALL_LDFLAGS) -o $@ $< $(BUILD)/libmu_host.a $(BUILD)/libmu_enclave.a $(BUILD)/libmu_engine.a $(HOST_LIBS) -lm

# The static enclave for the VM image (docs/vm.md): the same sources as build/mu-enclave,
# compiled with musl-gcc and linked -static, plus src/pal/fortify_shim.c for the three glibc
# fortify symbols Debian's static BearSSL references. musl-gcc searches only musl's headers, so
# BearSSL's, utf8proc's and the kernel's UAPI headers are linked into one directory of their
# own. Reproducible: no build paths (-ffile-prefix-map: the last match wins, so the build
# directory itself becomes "." and the paths under it relative), no debug info (-s), fixed link order.
# _FORTIFY_SOURCE is left out: musl's headers have no fortified functions.
# The objects carry line tables (-g1; gcc's code is the same with or without -g), which the
# stripped enclave drops. mu-enclave.debug is a second link of the same objects that keeps them,
# with the link map in mu-enclave.map: `mu surface` (docs/attack-surface.md) counts the lines
# and the libraries' objects from those two and checks that the twin's code and data are the
# enclave's, byte for byte.
MUSL_BUILD := $(BUILD)/musl
MUSL_INC   := $(MUSL_BUILD)/include
MUSL_SRC   := $(ENGINE_SRC) $(ENCL_SRC) $(ENCL_MAIN) src/pal/fortify_shim.c
MUSL_OBJ   := $(patsubst %.c,$(MUSL_BUILD)/obj/%.o,$(MUSL_SRC))
MUSL_CFLAGS := $(filter-out -D_FORTIFY_SOURCE=2 -g,$(ALL_CFLAGS)) -isystem $(MUSL_INC) \
            -ffile-prefix-map=$(CURDIR)=. -ffile-prefix-map=$(CURDIR)/= -g1
# musl-gcc does not search the multiarch library directory: name the two archives by path.
# Debian's musl-gcc cannot link a static PIE (-static-pie gives a dynamic executable), so the
# link names musl's start files itself: rcrt1.o relocates the program wherever the kernel put
# it, which gives the enclave address-space randomisation with no dynamic loader.
MUSL_LIBDIR := /usr/lib/x86_64-linux-musl
MUSL_LIBS  := /usr/lib/x86_64-linux-gnu/libbearssl.a /usr/lib/x86_64-linux-gnu/libutf8proc.a
MUSL_INC_LINKS := /usr/include/bearssl.h /usr/include/bearssl /usr/include/utf8proc.h /usr/include/linux \
            /usr/include/asm-generic /usr/include/x86_64-linux-gnu/asm
$(MUSL_INC)/.stamp:
	@mkdir -p $(MUSL_INC)
	@for f in $(MUSL_INC_LINKS); do ln -sfn $$f $(MUSL_INC)/$$(basename $$f); done
	@touch $@
$(MUSL_BUILD)/obj/%.o: %.c $(MUSL_INC)/.stamp
	@mkdir -p $(dir $@)
	musl-gcc $(MUSL_CFLAGS) -MMD -MP -c $< -o $@
MUSL_LINK = gcc -nostdlib -nostartfiles -static-pie -Wl,--build-id=sha1 $(MUSL_LIBDIR)/rcrt1.o \
		$(MUSL_LIBDIR)/crti.o $(MUSL_OBJ) $(MUSL_LIBS) -L$(MUSL_LIBDIR) -lc $$(gcc -print-libgcc-file-name) \
		$(MUSL_LIBDIR)/crtn.o
$(MUSL_BUILD)/mu-enclave: $(MUSL_OBJ)
	$(MUSL_LINK) -s -o $@
$(MUSL_BUILD)/mu-enclave.debug: $(MUSL_OBJ)
	$(MUSL_LINK) -Wl,-Map=$(MUSL_BUILD)/mu-enclave.map -o $@
static-enclave: $(MUSL_BUILD)/mu-enclave $(MUSL_BUILD)/mu-enclave.debug

# The enclave VM image in $(BUILD)/image (docs/vm.md): the static enclave as the initramfs's
# only program, the minimal kernel (built from linux-source once, then cached outside the
# repository), the command line and the image measurement.
image: $(BUILD)/mu $(MUSL_BUILD)/mu-enclave $(MUSL_BUILD)/mu-enclave.debug
	@BUILD=$(BUILD) ./scripts/build-image.sh

# The attack-surface report (docs/attack-surface.md): mu surface on the image, the static
# enclave's budget and a running key broker / enclave / proxy; rewrites the measured part.
surface: $(BUILD)/mu image
	@BUILD=$(BUILD) ./scripts/surface.sh

deps:
	@./scripts/deps.sh

DEMO_MODE ?= vm
demo: deps
	@$(MAKE) --no-print-directory $(BUILD)/mu $(BUILD)/mu-enclave $(if $(filter vm,$(DEMO_MODE)),image)
	BUILD=$(BUILD) SHARED=$(SHARED) ./scripts/demo.sh --$(DEMO_MODE)

# The whole suite. Each step prints its own "N passed, N failed"; tests/run.sh adds them up.
check: deps
	@./tests/run.sh

# Steps used by tests/run.sh.
check-build:
	@$(MAKE) --no-print-directory WERROR=1 all
check-clang:
	@$(MAKE) --no-print-directory BUILD=build/clang CC=clang WERROR=1 all
check-asan:
	@$(MAKE) --no-print-directory BUILD=build/asan OPT=-O1 \
		SAN="-fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer" all

# The analysis matrix (docs/analysis.md); not part of `make check`, which has a time budget.
# Valgrind memcheck over the unit test binaries of the normal build (-O2 -g, as shipped).
check-valgrind:
	@$(MAKE) --no-print-directory tests
	@BUILD=$(BUILD) SHARED=$(SHARED) ./tests/valgrind.sh
# cppcheck over every configuration of src/ and cmd/ (MU_ENCLAVE_TEST too), with its POSIX library
# so file descriptors, mmap and the like are modelled. Suppressions: .cppcheck-suppressions and
# "cppcheck-suppress" comments, each with its reason.
CPPCHECK_FLAGS := --std=c11 --library=posix -Isrc --enable=warning,portability,performance --inline-suppr \
            --suppressions-list=.cppcheck-suppressions --error-exitcode=1 --template=gcc -q -j2
check-cppcheck:
	cppcheck $(CPPCHECK_FLAGS) src cmd
	@echo "cppcheck: no findings in src/ and cmd/"
# clang-tidy with the checks in .clang-tidy over src/ and cmd/, compiled with the build's flags.
check-tidy:
	@TIDY_CFLAGS="$(ALL_CFLAGS)" ./tests/tidy.sh

# The memory bandwidth probe (bench/membw.c): a standalone program with the project's flags,
# built with everything so tests/cli_bench.sh can run it.
$(BUILD)/bench/membw: bench/membw.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(ALL_LDFLAGS) -o $@ $< -lpthread
# The kernels with their weights in cache (bench/kernels.c), against the engine library.
$(BUILD)/bench/kernels: bench/kernels.c $(BUILD)/libmu_engine.a
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(ALL_LDFLAGS) -o $@ $< $(BUILD)/libmu_engine.a $(LIBS)

bench: deps
	@$(MAKE) --no-print-directory $(BUILD)/mu $(BUILD)/bench/membw $(BUILD)/bench/kernels
	BUILD=$(BUILD) ./bench/run.sh

# libFuzzer harnesses (clang). fuzz-replay runs each harness once over its corpus.
FUZZ_SECONDS ?= 60
FUZZ_BUILD := build/fuzz
FUZZ_BIN := $(patsubst fuzz/%.c,$(FUZZ_BUILD)/%,$(FUZZ_SRC))
FUZZ_CFLAGS := -std=c11 -Isrc -g -O1 -ffp-contract=off -fno-math-errno -fno-sanitize-recover=all
# The sources are compiled once, instrumented for coverage and the sanitizers, into one archive
# that every harness links.
FUZZ_LIB_SRC := $(ENGINE_SRC) $(HOST_SRC) $(ENCL_SRC)
FUZZ_LIB_OBJ := $(patsubst %.c,$(FUZZ_BUILD)/obj/%.o,$(FUZZ_LIB_SRC))
$(FUZZ_BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	clang $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link,address,undefined -MMD -MP -c $< -o $@
$(FUZZ_BUILD)/libfuzz_src.a: $(FUZZ_LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^
$(FUZZ_BUILD)/%: fuzz/%.c $(FUZZ_BUILD)/libfuzz_src.a
	@mkdir -p $(dir $@)
	clang $(FUZZ_CFLAGS) -fsanitize=fuzzer,address,undefined -o $@ $< $(FUZZ_BUILD)/libfuzz_src.a $(LIBS)
fuzz-build: $(FUZZ_BIN)
fuzz: deps fuzz-build
	@./scripts/fuzz.sh $(FUZZ_SECONDS) $(FUZZ_BIN)
fuzz-replay: fuzz-build
	@./tests/fuzz_replay.sh $(FUZZ_BIN)

clean:
	rm -rf build

-include $(shell find $(BUILD)/obj $(BUILD)/obj-test $(MUSL_BUILD)/obj $(FUZZ_BUILD)/obj -name '*.d' 2>/dev/null)
