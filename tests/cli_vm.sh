#!/bin/sh
# The enclave VM (docs/vm.md), booted with QEMU under TCG (software emulation: KVM hangs on
# hosts that are themselves guests, and CI machines are):
#   1. The image: the initramfs holds /init (the static enclave, byte for byte), the three
#      mount points and /dev/console, nothing else, all dated 1970; the enclave is static; the
#      kernel has no loadable modules, no /dev/mem, no IP stack and no network drivers;
#      `mu vm build` is deterministic and its measurement is the one mu vm run recomputes.
#   2. Reproducible: the static enclave built again from clean in another directory, and the
#      kernel built again from clean into another cache, give the same bytes, so the image
#      measurement is the same.
#   3. End to end: key broker, the enclave in its VM, mu proxy, mu ask. The text equals what
#      the process-mode enclave gives for the same requests; boot-to-ready time is printed.
#   4. Inside the guest: the enclave is PID 1 and the only process, no network interface but
#      a loopback that is down and no socket family to reach out with, every disk read-only,
#      no shell; a guest given a writable disk refuses to serve, and a virtio NIC attached by
#      hand finds no driver. The model disk's sector padding is dropped only when it is zeros:
#      one other byte after the model and the unlock fails.
#   5. The weights never leave: no 64-byte run of stories260K's tensor data appears in any
#      host-side file the test wrote: the console, QEMU's messages, mu vm run's output, the
#      proxy's and broker's logs, ledgers and audit logs.
#   6. mu vm run's QEMU command line: -nodefaults, no network device, read-only disks,
#      QEMU's own sandbox; bad input gets clear errors; the KVM probe reports its outcome.
# MU_VM_KERNEL_TWICE=0 leaves out the second kernel build of step 2 (only for iterating on this
# script by hand; make check never sets it).
set -u
. tests/lib.sh
. tests/chain.sh
IMAGE=${MU_IMAGE:-$BIN_DIR/image}
STATIC=$BIN_DIR/musl/mu-enclave
MODEL=$SHARED/models/stories260K/stories260K.gguf
CANARY=$BIN_DIR/tests/tool_canary
QEMU=qemu-system-x86_64
field() { sed -n "s/^$1 *//p" "$2"; }
sha() { sha256sum "$1" | cut -c1-64; }

for f in bzImage initramfs.cpio cmdline image.json; do
	[ -s "$IMAGE/$f" ] || { bad "no $IMAGE/$f: run 'make image' first"; finish; exit 1; }
done
[ -x "$STATIC" ] || { bad "no $STATIC: run 'make image' first"; finish; exit 1; }

# 1. The image.
mkdir -p "$TMP/cpio"
(cd "$TMP/cpio" && cpio -i --quiet init <"$OLDPWD/$IMAGE/initramfs.cpio") 2>"$TMP/cpio.err" ||
	bad "cpio cannot read the initramfs: $(cat "$TMP/cpio.err")"
list=$(cpio -t --quiet <"$IMAGE/initramfs.cpio" | tr '\n' ' ')
[ "$list" = "dev dev/console init proc sys " ] && ok || bad "initramfs holds: $list"
cmp -s "$TMP/cpio/init" "$STATIC" && ok || bad "/init is not the static enclave"
dates=$(LC_ALL=C cpio -tv --quiet <"$IMAGE/initramfs.cpio" 2>/dev/null | awk '{print $(NF-3), $(NF-2), $(NF-1)}' | sort -u)
[ "$dates" = "Jan 1 1970" ] && ok || bad "initramfs dates: $dates"
if LC_ALL=C readelf -lW "$STATIC" | grep -q INTERP || LC_ALL=C readelf -d "$STATIC" 2>&1 | grep -q NEEDED; then
	bad "the enclave in the image is not static"
else ok; fi
if LC_ALL=C grep -a -q "$(pwd)" "$STATIC"; then bad "the static enclave holds the build path"; else ok; fi
KOUT=$(./scripts/build-kernel.sh 2>"$TMP/kernel.err") || bad "build-kernel: $(cat "$TMP/kernel.err")"
KERNEL=$(echo "$KOUT" | sed -n 's/^kernel //p')
KCONFIG=$(dirname "$KERNEL")/config
[ -s "$KCONFIG" ] && ok || bad "no kernel config beside $KERNEL"
cmp -s "$KERNEL" "$IMAGE/bzImage" && ok || bad "the image's kernel is not the cached minimal kernel"
for opt in CONFIG_MODULES CONFIG_DEVMEM CONFIG_INET CONFIG_NETDEVICES CONFIG_UNIX CONFIG_PACKET CONFIG_BINFMT_SCRIPT; do
	if grep -q "^$opt=" "$KCONFIG" 2>/dev/null; then bad "kernel has $opt"; else ok; fi
done
for opt in CONFIG_SECCOMP_FILTER CONFIG_VIRTIO_BLK CONFIG_VIRTIO_CONSOLE CONFIG_TCG_TIS CONFIG_DEVTMPFS; do
	grep -q "^$opt=y" "$KCONFIG" 2>/dev/null && ok || bad "kernel lacks $opt"
done
MEAS=$(sed -n 's/.*"measurement":"\([0-9a-f]*\)".*/\1/p' "$IMAGE/image.json")
[ ${#MEAS} -eq 64 ] && ok || bad "image.json has no measurement"
"$MU" vm build --kernel "$IMAGE/bzImage" --enclave "$STATIC" --out "$TMP/img2" >"$TMP/build2.out" 2>&1 ||
	bad "mu vm build: $(cat "$TMP/build2.out")"
cmp -s "$IMAGE/initramfs.cpio" "$TMP/img2/initramfs.cpio" && ok || bad "mu vm build is not deterministic"
[ "$(field "image measurement" "$TMP/build2.out")" = "$MEAS" ] && ok ||
	bad "rebuilt image measurement differs: $(cat "$TMP/build2.out")"

# 2. Reproducible from clean: the enclave in another directory, the kernel in another cache.
mkdir -p "$TMP/src2"
cp -r Makefile src cmd "$TMP/src2/"
(cd "$TMP/src2" && make -s BUILD="$PWD/b" static-enclave) >"$TMP/static2.out" 2>&1 ||
	bad "second static build: $(tail -n 5 "$TMP/static2.out")"
if cmp -s "$TMP/src2/b/musl/mu-enclave" "$STATIC"; then ok; else
	bad "the static enclave is not reproducible: $(sha "$STATIC") vs $(sha "$TMP/src2/b/musl/mu-enclave" 2>&1)"
fi
rm -rf "$TMP/src2"
if [ "${MU_VM_KERNEL_TWICE:-1}" = 1 ]; then
	echo "building the kernel a second time from clean (a few minutes) ..."
	K2=$(MU_CACHE="$TMP/cache2" ./scripts/build-kernel.sh 2>"$TMP/kernel2.err" | sed -n 's/^kernel //p')
	if [ -n "$K2" ] && cmp -s "$K2" "$IMAGE/bzImage"; then ok; else
		bad "the kernel is not reproducible: $(sha "$IMAGE/bzImage") vs ${K2:+$(sha "$K2")} $(tail -n 3 "$TMP/kernel2.err")"
	fi
	echo "kernel rebuilt from clean: sha256 $(sha "$IMAGE/bzImage") both times"
	rm -rf "$TMP/cache2"
fi

# 3. End to end, with the process-mode enclave beside it for the reference text.
chain_seal "$MODEL" || bad "seal: $(cat "$TMP/seal.out")"
printf '{"model": "/dev/vda", "channel": "dev:/dev/virtio-ports/mu.channel", "egress_bytes_per_s": 4096, "egress_burst_bytes": 4096, "max_tokens": 256, "threads": 2}\n' >"$TMP/vm.json"
chain_enclave_config proc '"egress_bytes_per_s": 4096, "egress_burst_bytes": 4096, "max_tokens": 256'
M_VM=$("$STATIC" --config "$TMP/vm.json" --measure --model "$TMP/model.mus" | sed -n 's/^measurement //p')
M_PROC=$(chain_measure "$ENCLAVE" proc)
[ ${#M_VM} -eq 64 ] && [ ${#M_PROC} -eq 64 ] && ok || bad "measurements: '$M_VM' '$M_PROC'"
chain_kbs "$M_VM" "$M_PROC" || bad "key broker did not start"
chain_start_enclave "$ENCLAVE" proc || bad "process enclave did not start"
chain_start_proxy proc || bad "proxy did not attest the process enclave"

"$MU" vm run --image "$IMAGE" --model "$TMP/model.mus" --config "$TMP/vm.json" --channel "unix:$TMP/vm.sock" \
	--accel tcg --console "$TMP/console.log" >"$TMP/vmrun.err" 2>&1 &
VM_PID=$!
CHAIN_PIDS="$CHAIN_PIDS $VM_PID"
if wait_for "$TMP/vmrun.err" "enclave ready" 1800; then ok; else bad "the VM did not get ready: $(tail -n 5 "$TMP/console.log")"; fi
grep '^vm: ' "$TMP/vmrun.err"
grep -q "^vm: accelerator tcg" "$TMP/vmrun.err" && ok || bad "no accelerator line"
[ "$(sed -n 's/^vm: enclave measurement //p' "$TMP/vmrun.err")" = "$M_VM" ] && ok ||
	bad "the enclave in the VM reports another measurement than the host computed"
[ "$(sed -n 's/^vm: image measurement //p' "$TMP/vmrun.err")" = "$MEAS" ] && ok || bad "vm run's image measurement"
chain_start_proxy vm || bad "proxy did not attest the VM enclave"
grep -q "enclave attested" "$TMP/vm-proxy.err" && ok || bad "no attestation through the VM"

same() { # same DESCRIPTION ASK-ARGS...: the VM's text equals the process enclave's
	d=$1
	shift
	"$MU" ask --proxy "unix:$TMP/vm-proxy.sock" "$@" >"$TMP/vm.out" 2>"$TMP/vm.err" ||
		{ bad "$d: mu ask through the VM failed: $(cat "$TMP/vm.err")"; return; }
	"$MU" ask --proxy "unix:$TMP/proc-proxy.sock" "$@" >"$TMP/proc.out" 2>"$TMP/proc.err" ||
		{ bad "$d: mu ask through the process failed: $(cat "$TMP/proc.err")"; return; }
	if [ -s "$TMP/vm.out" ] && cmp -s "$TMP/vm.out" "$TMP/proc.out"; then ok; else
		bad "$d: VM and process mode differ"
		printf 'vm:   %s\nproc: %s\n' "$(head -c 200 "$TMP/vm.out")" "$(head -c 200 "$TMP/proc.out")"
	fi
}
same "greedy story" -p Once -n 120
same "sampled with a seed" -p Tom -n 80 --temp 0.8 --top-p 0.95 --seed 7
same "chat" -p hello --chat -n 40
echo "VM answer: $(head -c 120 "$TMP/vm.out")..."

# 4. Inside the guest, as the enclave found it at boot.
G=$(grep '^mu-enclave: guest: ' "$TMP/console.log")
echo "$G"
has_g() { case "$G" in *"$2"*) ok ;; *) bad "guest check: $1: $G" ;; esac; }
has_g "PID 1 only" "PID 1 is the only process"
has_g "network" "network: only the loopback, down; no IPv4, IPv6, Unix, packet or vsock sockets"
has_g "disks" "block devices: vda read-only vdb read-only"
has_g "no shell" "root: /init, /dev, /proc, /sys only (no shell)"
chain_stop "$VM_PID"
if grep -q "^vm: " "$TMP/vmrun.err" && ! kill -0 "$VM_PID" 2>/dev/null; then ok; else bad "mu vm run did not stop"; fi
if pgrep -f "qemu-system-x86_64.*$TMP/vm.sock" >/dev/null; then bad "QEMU outlived mu vm run"; else ok; fi

# A guest with a writable disk (QEMU started by hand) refuses to serve and powers off; a virtio
# NIC attached by hand finds no driver in the kernel, so the guest still has no interface.
raw_boot() { # raw_boot NAME EXTRA-QEMU-ARGS...: boots the image by hand; $RO: the config disk read-only?
	# $CMD: the kernel command line (default the image's)
	name=$1
	shift
	cp "$TMP/vm.json" "$TMP/$name.img"
	truncate -s 4096 "$TMP/$name.img"
	timeout 300 "$QEMU" -nodefaults -no-user-config -display none -machine q35 -accel tcg -cpu max -m 256 \
		-no-reboot -kernel "$IMAGE/bzImage" -initrd "$IMAGE/initramfs.cpio" -append "${CMD:-$(cat "$IMAGE/cmdline")}" \
		-chardev "file,id=con,path=$TMP/$name.console" -serial chardev:con \
		-drive "file=$TMP/model.mus,format=raw,if=none,id=model,readonly=on" -device virtio-blk-pci,drive=model \
		-drive "file=$TMP/$name.img,format=raw,if=none,id=config,readonly=$RO" -device virtio-blk-pci,drive=config \
		"$@" >"$TMP/$name.qemu" 2>&1
}
RO=off raw_boot writable
if grep -q "mu-enclave: guest: REFUSED: block device vdb is writable; powering off" "$TMP/writable.console"; then ok; else
	bad "a writable disk was not refused: $(tail -n 3 "$TMP/writable.console")"
fi
grep -q "listening on" "$TMP/writable.console" && bad "the guest served with a writable disk" || ok
CMD=$(sed 's/-- --config/-- --help --config/' "$IMAGE/cmdline") RO=on raw_boot nic -nic user,model=virtio-net-pci
grep -q "network: only the loopback, down" "$TMP/nic.console" && ok ||
	bad "with a virtio NIC attached: $(grep -a 'mu-enclave' "$TMP/nic.console" | head -n 3)"

# The sealed model's sector padding: exactly the zero bytes up to the next sector are dropped
# (the model above, 1185520 bytes, was followed by 272 of them). A model followed by one byte
# that is not zero has extra data: the unlock fails and the enclave serves nothing.
cp "$TMP/model.mus" "$TMP/tampered.mus"
printf 'X' >>"$TMP/tampered.mus"
"$MU" vm run --image "$IMAGE" --model "$TMP/tampered.mus" --config "$TMP/vm.json" --channel "unix:$TMP/t.sock" \
	--accel tcg --console "$TMP/t.console" >"$TMP/t.err" 2>&1 &
T_VM=$!
CHAIN_PIDS="$CHAIN_PIDS $T_VM"
wait_for "$TMP/t.err" "enclave ready" 1800 || bad "the VM with the tampered disk did not boot"
"$MU" proxy --enclave "unix:$TMP/t.sock" --kbs "$KBS_ADDR" --listen "unix:$TMP/t-proxy.sock" --ledger "$TMP/t.ledger" \
	--audit "$TMP/t.audit" --reconnect-ms 200 2>"$TMP/t-proxy.err" &
T_PX=$!
CHAIN_PIDS="$CHAIN_PIDS $T_PX"
if wait_for "$TMP/t.console" "unseal failed" 600; then ok; else bad "no unseal failure for the tampered disk"; fi
grep -q "unseal failed: /dev/vda: extra data after the final chunk" "$TMP/t.console" && ok ||
	bad "tampered padding: $(grep 'unseal failed' "$TMP/t.console")"
grep -q "sandbox entered\|attested, ready" "$TMP/t.console" && bad "the enclave served a tampered model" || ok
chain_stop "$T_PX"
chain_stop "$T_VM"

# 5. The weights never leave: every host-side file the test wrote, console and QEMU output
#    included (the sealed model is ciphertext; the positive control proves the search works).
if "$CANARY" scan-model "$MODEL" "$MODEL" >/dev/null; then bad "positive control: the search found nothing"; else ok; fi
files=$(find "$TMP" -type f ! -name model.key)
# shellcheck disable=SC2086
if "$CANARY" scan-model "$MODEL" $files >"$TMP/scan.txt"; then ok; else bad "weights leaked: $(cat "$TMP/scan.txt")"; fi
echo "searched $(echo "$files" | wc -l) host-side files for stories260K's tensor data: $(tail -n 1 "$TMP/scan.txt")"

# 6. The QEMU command line, bad input, the KVM probe.
"$MU" vm run --image "$IMAGE" --model "$TMP/model.mus" --config "$TMP/vm.json" --channel "unix:$TMP/dry.sock" \
	--dry-run >"$TMP/dry.out" 2>&1 || bad "--dry-run: $(cat "$TMP/dry.out")"
for w in -nodefaults "-sandbox on" "id=model,readonly=on" "id=config,readonly=on" -no-reboot; do
	grep -q -- "$w" "$TMP/dry.out" && ok || bad "QEMU command line lacks $w: $(cat "$TMP/dry.out")"
done
if grep -q -E -- "-net|-nic|netdev" "$TMP/dry.out"; then bad "QEMU command line has a network device"; else ok; fi
vm_err() { # vm_err DESCRIPTION EXPECTED CONFIG-JSON
	printf '%s\n' "$3" >"$TMP/bad.json"
	if "$MU" vm run --image "$IMAGE" --model "$TMP/model.mus" --config "$TMP/bad.json" --channel "unix:$TMP/bad.sock" \
		--accel tcg >"$TMP/bad.out" 2>&1; then bad "$1: accepted"; return; fi
	grep -q -- "$2" "$TMP/bad.out" && ok || bad "$1: $(cat "$TMP/bad.out")"
}
vm_err "process-mode config" "/dev/vda" '{"model": "m.mus", "channel": "unix:x.sock", "egress_bytes_per_s": 1}'
vm_err "wrong channel" "dev:/dev/virtio-ports/mu.channel" '{"model": "/dev/vda", "channel": "unix:x.sock", "egress_bytes_per_s": 1}'
vm_err "not JSON" "bad.json: not valid JSON: offset 0" 'model: /dev/vda'
"$MU" vm run --image "$TMP/none" --model "$TMP/model.mus" --config "$TMP/vm.json" --channel "unix:$TMP/x.sock" \
	>"$TMP/noimg.out" 2>&1 && bad "a missing image was accepted" || ok
"$MU" vm run --help >"$TMP/help.out" 2>&1 && grep -q "usage: mu vm" "$TMP/help.out" && ok || bad "mu vm run --help"
# The probe: KVM is used only when a short probe boot answers; either way the choice is reported.
"$MU" vm run --image "$IMAGE" --model "$TMP/model.mus" --config "$TMP/vm.json" --channel "unix:$TMP/probe.sock" \
	--accel auto --probe-timeout 10 --console "$TMP/probe.console" >"$TMP/probe.err" 2>&1 &
P=$!
CHAIN_PIDS="$CHAIN_PIDS $P"
wait_for "$TMP/probe.err" "^vm: accelerator" 300 && ok || bad "no accelerator decision"
grep "^vm: accelerator" "$TMP/probe.err"
chain_stop "$P"

finish
