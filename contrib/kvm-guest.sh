#!/bin/sh
# contrib/kvm-guest.sh [DIR [INIT]]: fill the kvm sandbox backend's guest directory (default
# /var/lib/cachepot/kvm, cachepotd's --kvm-dir) from Debian's kernel package and the project's
# guest init:
#   DIR/vmlinuz          the kernel of Debian's linux-image-amd64 (downloaded with apt-get
#                        download and unpacked here: the host's own kernel is not touched)
#   DIR/modules/*.ko     the modules the guest needs and that Debian builds as modules
#                        (virtio-mmio, virtio-blk, ext4 and what they depend on)
#   DIR/modules.order    their load order
#   DIR/init             INIT (default: cachepot-kvm-init, installed in pkglibexecdir)
# The kernel is fetched only when DIR has none (or KVM_GUEST_REFRESH=1); the init is copied
# each time. Serialised on an flock of DIR.lock. The sandbox makes the initramfs and the
# toolchain images itself, in DIR, at first use.
set -eu
dir=${1:-/var/lib/cachepot/kvm}
init=${2:-/usr/local/libexec/cachepot/cachepot-kvm-init}
[ -x "$init" ] || { echo "$0: $init: no guest init (make builds sandbox/cachepot-kvm-init)" >&2; exit 1; }
mkdir -p "$dir"
# Absolute: the download runs in a directory of its own (a relative DIR given by a build tree's
# script, as bench/sandbox-startup.sh's ., would name nothing there).
dir=$(cd "$dir" && pwd -P)
case $init in /*) ;; *) init=$(pwd -P)/$init ;; esac
exec 9>"$dir.lock"
flock 9

modules="kernel/drivers/virtio/virtio_ring.ko kernel/drivers/virtio/virtio.ko
kernel/drivers/virtio/virtio_mmio.ko kernel/drivers/block/virtio_blk.ko kernel/lib/crc16.ko
kernel/fs/mbcache.ko kernel/fs/jbd2/jbd2.ko kernel/crypto/crc32c_generic.ko kernel/fs/ext4/ext4.ko"

if [ ! -s "$dir/vmlinuz" ] || [ ! -s "$dir/modules.order" ] || [ "${KVM_GUEST_REFRESH:-0}" = 1 ]; then
	tmp=$(mktemp -d "$dir.tmp.XXXXXX")
	trap 'rm -rf "$tmp"' EXIT INT TERM
	chmod 0755 "$tmp" # apt's _apt user downloads into it
	# linux-image-amd64 is the metapackage: the kernel is the package it depends on
	pkg=$(apt-cache depends linux-image-amd64 2>/dev/null | sed -n 's/^ *Depends: \(linux-image-[0-9].*\)/\1/p' | head -1)
	[ -n "$pkg" ] || { echo "$0: apt-cache knows no linux-image-amd64 (apt-get update?)" >&2; exit 1; }
	(cd "$tmp" && apt-get download -q "$pkg" >/dev/null 2>"$tmp/apt.err") ||
		{ cat "$tmp/apt.err" >&2; echo "$0: apt-get download $pkg failed" >&2; exit 1; }
	dpkg-deb -x "$tmp"/"$pkg"_*.deb "$tmp/x"
	kver=${pkg#linux-image-}
	mkdir -p "$tmp/guest/modules"
	cp "$tmp/x/boot/vmlinuz-$kver" "$tmp/guest/vmlinuz"
	for m in $modules; do
		f=$(find "$tmp/x/lib/modules/$kver" -path "*/$m" -o -path "*/$m.xz" -o -path "*/$m.zst" | head -1)
		[ -n "$f" ] || { echo "$0: $pkg has no $m" >&2; exit 1; }
		case $f in *.ko) ;; *) echo "$0: $f is compressed; the guest init loads plain .ko" >&2; exit 1 ;; esac
		cp "$f" "$tmp/guest/modules/"
		basename "$m" >> "$tmp/guest/modules.order"
	done
	echo "$pkg" > "$tmp/guest/kernel-package"
	rm -rf "$dir/modules"
	mv "$tmp/guest/modules" "$dir/modules"
	mv "$tmp/guest/modules.order" "$tmp/guest/kernel-package" "$dir/"
	mv "$tmp/guest/vmlinuz" "$dir/vmlinuz"
fi
cp "$init" "$dir/init.tmp"
chmod 0755 "$dir/init.tmp"
mv "$dir/init.tmp" "$dir/init"
echo "$dir"
