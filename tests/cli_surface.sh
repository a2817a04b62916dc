#!/bin/sh
# mu surface: the attack-surface report of the static enclave and the VM image, its budget
# check (tcb-budget.txt) tripping on an unneeded library, a dynamic dependency, more lines or
# more system calls, the listening sockets of a running key broker / enclave / proxy, and
# clear refusals of bad input.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/chain.sh"
ENC=build/musl/mu-enclave
MAP=build/musl/mu-enclave.map
IMAGE=build/image

for f in "$ENC" "$ENC.debug" "$MAP" "$IMAGE/image.json"; do
	if [ ! -f "$f" ]; then
		bad "$f is missing (make image builds it)"
		finish
		exit 1
	fi
done

# ---- the static enclave ----
check "surface of the static enclave" sh -c "$MU surface $ENC >$TMP/enc.txt"
check "it is a static PIE with its debug twin and map" grep -q "linking     static-pie" "$TMP/enc.txt"
check "the twin's code and data are checked" grep -q "the same code and data" "$TMP/enc.txt"
check "the VM filter kills what it does not allow" grep -q "vm mode: [0-9]* system calls allowed.*otherwise kill-process" "$TMP/enc.txt"
check "surface --json" sh -c "$MU surface $ENC --json >$TMP/enc.json"
check "the JSON report's facts" $PY - "$TMP/enc.json" <<'EOF'
import json, sys
r = json.load(open(sys.argv[1]))
b = r["binary"]
assert r["format"] == "mu-surface-1"
assert b["linking"] == "static-pie" and b["interpreter"] is None and b["needed"] == [], b
assert b["own_lines"] > 3000 and b["own_files"] > 30, b["own_lines"]
assert sorted(b["libraries"]) == ["bearssl", "musl", "utf8proc"], b["libraries"]
ours = [c for c in b["components"] if c["ours"]]
assert sum(c["lines"] for c in ours) == b["own_lines"]
names = {c["name"] for c in ours}
assert {"src/engine", "src/enclave", "src/wire", "src/seal", "cmd/mu-enclave"} <= names, names
assert not any(n.startswith("src/host") for n in names), "host code in the enclave"
assert b["objects"] == sum(c["objects"] for c in b["components"])
vm, proc = r["seccomp"]["vm"], r["seccomp"]["process"]
assert vm["default"] == "kill-process" and vm["x32"] == "kill-process" and vm["other_architectures"] == "kill-process"
assert vm["allowed"] == len(vm["names"]) and proc["allowed"] == vm["allowed"] + 2
assert set(proc["names"]) - set(vm["names"]) == {"accept", "accept4"}
for n in ("open", "openat", "execve", "socket", "connect", "ptrace", "fork", "clone"):
    assert n not in proc["names"], n
assert {"mmap", "mprotect", "futex", "fcntl", "tgkill", "sendto"} <= set(vm["checked_names"]), vm["checked_names"]
EOF

# ---- the VM image ----
KBUILD=$(./scripts/build-kernel.sh 2>/dev/null | sed -n 's/^kernel //p')
check "surface of the VM image" sh -c "$MU surface $IMAGE --debug $ENC.debug --kernel-build $(dirname "$KBUILD") --json >$TMP/img.json"
check "the image report's facts" $PY - "$TMP/img.json" "$ENC" <<'EOF'
import hashlib, json, sys
r = json.load(open(sys.argv[1]))
im = r["image"]
assert [f["name"] for f in im["initramfs"]["files"]] == ["dev", "dev/console", "init", "proc", "sys"]
init = [f for f in im["initramfs"]["files"] if f["name"] == "init"][0]
assert init["bytes"] == r["binary"]["bytes"]
# the initramfs's /init is the static enclave, byte for byte
assert r["binary"]["sha256"] == hashlib.sha256(open(sys.argv[2], "rb").read()).hexdigest()
k = im["kernel"]
assert k["version"].startswith("6."), k["version"]
o = k["config"]["options"]
assert k["config"]["modules"] == 0
for opt in ("CONFIG_MODULES", "CONFIG_DEVMEM", "CONFIG_INET", "CONFIG_IPV6", "CONFIG_UNIX", "CONFIG_VSOCKETS",
            "CONFIG_BPF_SYSCALL", "CONFIG_IO_URING", "CONFIG_KEXEC"):
    assert o[opt] == "n", opt
for opt in ("CONFIG_SECCOMP", "CONFIG_SECRETMEM", "CONFIG_VIRTIO_CONSOLE", "CONFIG_VIRTIO_BLK"):
    assert o[opt] == "y", opt
assert r["seccomp"]["vm"]["allowed"] > 20
EOF
# a kernel build that is not the image's: its configuration says nothing about this kernel
mkdir -p "$TMP/kb"
printf 'not a kernel' >"$TMP/kb/bzImage"
echo 'CONFIG_MODULES=y' >"$TMP/kb/config"
expect_fail 1 "is not the image's kernel" "$MU" surface "$IMAGE" --kernel-build "$TMP/kb"
# a changed image is refused (its measurement no longer matches)
cp -r "$IMAGE" "$TMP/img2"
printf 'x' >>"$TMP/img2/cmdline"
expect_fail 1 "changed since" "$MU" surface "$TMP/img2"

# ---- the twin must be the binary's ----
expect_fail 1 "is not .*debug twin" "$MU" surface "$ENC" --debug build/mu-enclave --no-run
cp "$ENC" "$TMP/enc-copy"
check "a stripped binary without its twin says lines are not measured" sh -c \
	"$MU surface $TMP/enc-copy --no-run | grep -q 'lines       not measured'"

# ---- the budget ----
check "the static enclave is within tcb-budget.txt" sh -c "$MU surface $ENC --budget tcb-budget.txt >$TMP/b.txt"
check "every budget line says ok" sh -c "grep -q 'budget: within' $TMP/b.txt && ! grep -q OVER $TMP/b.txt"

# An unneeded dependency: the same link plus one more archive (built here, with one function
# the link is told to keep). The same relink without it stays within the budget, so the
# failure is the library's.
LINK_INPUTS=$(sed -n 's/^LOAD //p' "$MAP" | grep -v '^linker stubs$' | tr '\n' ' ')
printf 'int mu_unneeded(int x);\nint mu_unneeded(int x) { return 3 * x + 1; }\n' >"$TMP/unneeded.c"
check "the unneeded library builds" sh -c "musl-gcc -O2 -fPIE -c $TMP/unneeded.c -o $TMP/unneeded.o && ar rcs $TMP/libunneeded.a $TMP/unneeded.o"
# shellcheck disable=SC2086
check "the relink without it" gcc -nostdlib -nostartfiles -static-pie -o "$TMP/same" -Wl,-Map="$TMP/same.map" $LINK_INPUTS
# shellcheck disable=SC2086
check "the relink with it" gcc -nostdlib -nostartfiles -static-pie -o "$TMP/extra" -Wl,-Map="$TMP/extra.map" \
	-Wl,--undefined=mu_unneeded $LINK_INPUTS "$TMP/libunneeded.a"
check "the relink without it is within the budget" sh -c "$MU surface $TMP/same --budget tcb-budget.txt >$TMP/same.txt"
expect_fail 1 "OVER  library .*/libunneeded.a (1 objects): not in the budget's libraries" \
	"$MU" surface "$TMP/extra" --budget tcb-budget.txt
check "only the library is over" sh -c "grep -c OVER $TMP/out.txt | grep -qx 2"
# a library is known by where Debian installs it, not by its name: the same archive called
# libbearssl.a somewhere else is still an unknown library
mkdir -p "$TMP/fake"
cp "$TMP/libunneeded.a" "$TMP/fake/libbearssl.a"
# shellcheck disable=SC2086
check "the relink with a look-alike" gcc -nostdlib -nostartfiles -static-pie -o "$TMP/alike" -Wl,-Map="$TMP/alike.map" \
	-Wl,--undefined=mu_unneeded $LINK_INPUTS "$TMP/fake/libbearssl.a"
expect_fail 1 "OVER  library .*/fake/libbearssl.a" "$MU" surface "$TMP/alike" --budget tcb-budget.txt
# a link map that is not the binary's is refused, and without a map the libraries are over
expect_fail 1 "is not the link map of" "$MU" surface "$TMP/same" --map "$TMP/extra.map" --no-run
rm -f "$TMP/same.map"
expect_fail 1 "OVER  libraries: not measured (no link map" "$MU" surface "$TMP/same" --budget tcb-budget.txt

# a dynamic enclave (the glibc build) trips it twice: DT_NEEDED and the interpreter
expect_fail 1 "OVER  dynamic dependency libc.so.6" "$MU" surface build/mu-enclave --budget tcb-budget.txt
check "and names the interpreter" grep -q "OVER  program interpreter" "$TMP/out.txt"
# more lines or more system calls than the budget
sed -e 's/^own_lines .*/own_lines 100/' tcb-budget.txt >"$TMP/small.txt"
expect_fail 1 "OVER  own lines" "$MU" surface "$ENC" --budget "$TMP/small.txt"
sed -e 's/^syscalls_vm .*/syscalls_vm 10/' tcb-budget.txt >"$TMP/small.txt"
expect_fail 1 "OVER  allowed system calls (vm mode)" "$MU" surface "$ENC" --budget "$TMP/small.txt"
sed -e 's/^libraries .*/libraries musl bearssl/' tcb-budget.txt >"$TMP/small.txt"
expect_fail 1 "OVER  library utf8proc" "$MU" surface "$ENC" --budget "$TMP/small.txt"
# without the filter (--no-run) the system calls are not measured, which is over, not ok
expect_fail 1 "not measured (--no-run)" "$MU" surface "$ENC" --no-run --budget tcb-budget.txt
# bad budget files
grep -v '^libraries' tcb-budget.txt >"$TMP/nolibs.txt"
expect_fail 1 "are all required" "$MU" surface "$ENC" --budget "$TMP/nolibs.txt"
printf 'own_lines many\n' >"$TMP/badnum.txt"
expect_fail 1 "needs a whole number" "$MU" surface "$ENC" --budget "$TMP/badnum.txt"
printf 'colour blue\n' >"$TMP/badkey.txt"
expect_fail 1 "unknown key" "$MU" surface "$ENC" --budget "$TMP/badkey.txt"

# ---- bad input ----
expect_fail 2 "give an enclave binary" "$MU" surface
expect_fail 2 "unexpected argument" "$MU" surface "$ENC" --frobnicate
expect_fail 2 "unexpected argument" "$MU" surface "$ENC" "$ENC"
expect_fail 2 "pid" "$MU" surface "$ENC" --pid 0
expect_fail 2 "pid" "$MU" surface "$ENC" --pid abc
expect_fail 1 "No such file" "$MU" surface "$TMP/nothing"
printf 'hello' >"$TMP/text"
expect_fail 1 "not an ELF file" "$MU" surface "$TMP/text"
head -c 4000 "$ENC" >"$TMP/cut"
expect_fail 1 "outside the file" "$MU" surface "$TMP/cut" --no-run
expect_fail 1 "is for an image directory" "$MU" surface "$ENC" --kernel-build "$TMP/kb"
check "--help" sh -c "$MU surface --help | grep -q 'usage: mu surface'"
# a binary with no --sandbox-filter: reported, not a failure
check "a binary without a filter" sh -c "$MU surface build/tests/tool_wire | grep -q 'vm mode: none (the binary has no --sandbox-filter'"

# ---- a running key broker, static enclave and proxy: what each listens on ----
$MU gen-model --shape tiny --type f32 -o "$TMP/m.gguf" >/dev/null 2>&1
chain_seal "$TMP/m.gguf" || bad "seal"
chain_enclave_config enc '"egress_bytes_per_s": 4096, "egress_burst_bytes": 4096, "max_tokens": 8'
M=$(chain_measure "$ENC" enc)
chain_kbs "$M" || bad "kbs"
KBS_PID=$(echo "$CHAIN_PIDS" | awk '{print $NF}')
chain_start_enclave "$ENC" enc || bad "enclave"
chain_start_proxy enc --egress-bps 4096 --egress-burst 4096 --http tcp:127.0.0.1:0 --no-auth || bad "proxy"
check "surface of the running pair" sh -c "$MU surface $ENC --no-run --pid $KBS_PID --pid $ENCLAVE_PID --pid $PROXY_PID --json >$TMP/pair.json"
check "each listens only where it was told" $PY - "$TMP/pair.json" "$TMP" <<'EOF'
import json, sys
r = json.load(open(sys.argv[1]))
tmp = sys.argv[2]
kbs, enc, proxy = r["processes"]
assert kbs["listening"] == ["unix " + tmp + "/kbs.sock"] or kbs["listening"][0].endswith("/kbs.sock"), kbs
assert len(enc["listening"]) == 1 and enc["listening"][0].endswith("/enc.sock"), enc
assert enc["connected"] >= 1, enc
pl = proxy["listening"]
assert any(l.endswith("/enc-proxy.sock") for l in pl), pl
assert any(l.startswith("tcp 127.0.0.1:") for l in pl), pl
assert len(pl) == 2, pl
assert not any(l.startswith("udp") for p in (kbs, enc, proxy) for l in p["listening"])
EOF
check "the text report lists them" sh -c "$MU surface $ENC --no-run --pid $ENCLAVE_PID | grep -q 'listening   unix .*/enc.sock'"

finish
