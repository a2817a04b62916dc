/* guest.h — mu-enclave as PID 1 of the enclave VM (docs/vm.md).
 *
 * The VM image's initramfs holds one program, /init = the static mu-enclave, so when the kernel
 * starts it (getpid() == 1, with --vm-guest first on its command line) there is nothing else
 * in the guest: no shell, no init system, no other process. main() then runs the enclave
 * inside mu_guest_main, which
 *
 *   1. mounts devtmpfs on /dev, proc on /proc and sysfs on /sys (nosuid, noexec), and links
 *      each named virtio-serial port as /dev/virtio-ports/NAME (as udev would; the channel
 *      is "dev:/dev/virtio-ports/mu.channel"), after waiting briefly for the ports' names;
 *      descriptors 0-2 missing (no console) are held with /dev/null;
 *   2. checks that the guest is what the image promises, and refuses to serve when it is not:
 *        - the only user process is PID 1 (kernel threads aside);
 *        - no network interface but the kernel's own loopback, and that one down; no IPv4,
 *          IPv6, Unix, packet or vsock socket can be created;
 *        - every block device is read-only: sysfs says so, and a write to it is refused;
 *        - the root file system holds nothing but /init and the three mount points (so no
 *          /bin/sh or any other program);
 *      and prints one line saying what it found ("mu-enclave: guest: ...");
 *   3. runs the enclave, and powers the VM off when it ends, however it ends.
 *
 * Nothing here runs outside PID 1: a process-mode enclave never mounts or checks anything.
 */
#ifndef MU_ENCLAVE_GUEST_H
#define MU_ENCLAVE_GUEST_H

#include <stddef.h>

#include "base/err.h"

/* The first argument of /init on the image's kernel command line ("-- --vm-guest --config
 * /dev/vdb"): being PID 1 is not enough (a container's entry point is PID 1 too). */
#define MU_GUEST_FLAG "--vm-guest"

/* 1 when this process is the guest's PID 1, started with MU_GUEST_FLAG. */
int mu_guest_is_init(int argc, char **argv);

/* Step 1. */
enum mu_err mu_guest_mount(struct mu_error *err);

/* Step 2: fills report (one line, no newline) with what was found; err names the first broken
 * promise. */
enum mu_err mu_guest_check(char *report, size_t cap, struct mu_error *err);

/* Steps 1 to 3 around run(argc - 1, argv + 1), which sees the arguments after MU_GUEST_FLAG;
 * never returns. */
_Noreturn void mu_guest_main(int argc, char **argv, int (*run)(int argc, char **argv));

#endif
