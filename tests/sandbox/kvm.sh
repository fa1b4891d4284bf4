#!/bin/sh
# The sandbox's run and escape catalogue (test_sandbox) against the kvm backend: a QEMU microvm
# per case. Skipped, with the reason, when QEMU or mke2fs is not installed or the guest's
# kernel cannot be had (contrib/kvm-guest.sh fetches Debian's kernel package once into
# tests/sandbox/kvm-guest). Without /dev/kvm it runs on QEMU's emulator (TCG), as allowed here
# by CACHEPOT_KVM_ALLOW_TCG=1: about 20-60 s per case on a loaded 2-core machine, ~10 s once
# to make the toolchain's ext4 image.
# The last case checks that no QEMU process and no run directory is left.
. "$top_srcdir/tests/tap.sh"
[ "$(id -u)" = 0 ] || skip_all "needs root"
[ -x /usr/bin/qemu-system-x86_64 ] || skip_all "kvm backend: no qemu-system-x86_64 (Debian's qemu-system-x86)"
guest=$top_builddir/tests/sandbox/kvm-guest
log=$("$top_srcdir/contrib/kvm-guest.sh" "$guest" "$top_builddir/sandbox/cachepot-kvm-init" 2>&1) ||
	skip_all "kvm backend: no guest kernel ($(echo "$log" | tail -1))"
# the runs' images in a directory of this test's own, which its last case finds empty
tmp=$(mktemp -d /tmp/cachepot-kvm-test.XXXXXX)
chmod 0755 "$tmp"
CACHEPOT_TEST_SANDBOX=kvm CACHEPOT_KVM_DIR=$guest CACHEPOT_KVM_ALLOW_TCG=1 TMPDIR=$tmp \
	"$top_builddir/tests/sandbox/test_sandbox"
rc=$?
rm -rf "$tmp"
exit $rc
