/* The kvm backend of the sandbox (spec->backend == SANDBOX_BACKEND_KVM); sandbox_run is its
 * entry point, sandbox_kvm_check the start-up check, both in sandbox.h.
 *
 * Each run is a small virtual machine of its own: QEMU's microvm machine (QEMU_PATH), on
 * /dev/kvm, or on QEMU's emulator (TCG) only when the spec allows it; one vCPU, memory_bytes
 * plus the inputs plus 256 MiB of RAM, no network device, no other device but three virtio-mmio
 * block devices: the toolchain tree as an ext4 image (read-only; made once per toolchain with
 * mke2fs -d and kept in the kvm directory), the job as a tar (read-only: its spec, the seccomp
 * filter, the input tree and the extra binds) and a sparse scratch image that the guest writes
 * the result into as a tar (status, stdout, stderr, the output directory), which is read here
 * with libarchive after QEMU exited and unpacked into the output tmpfs. The guest is Debian's
 * kernel with an initramfs made here at first use from the kvm directory (kvm-init.c, the
 * init, and the virtio and ext4 modules); contrib/kvm-guest.sh fills that directory.
 *
 * What differs from bubblewrap (sandbox.h), and only this: the job sees a kernel of its own
 * (the guest's), its /proc is the guest's (hidepid: it sees its own processes only); the
 * network namespace is the guest's, with no interface at all (not even loopback up); the job's
 * input tree is a copy (a read-only tmpfs in the guest) rather than a bind; user_us and sys_us
 * come from the guest's cgroup, wall_us includes the machine's boot. The job's own timeout is
 * kept by the guest's init from the job's start; the machine itself is killed at timeout_ms
 * plus a boot allowance (30 s on KVM, 300 s on TCG), then the run reads as timed out. The rest,
 * the trees at the same paths, the uid (QEMU runs as it too), the output tmpfs, the limits (as
 * a cgroup in the guest) and the seccomp filter, is the same. The run's two images live in a
 * directory of its own under $TMPDIR (else /var/tmp), removed after it.
 */
#ifndef CACHEPOT_SANDBOX_KVM_H
#define CACHEPOT_SANDBOX_KVM_H

#include "sandbox/sandbox.h"

#endif
