#!/bin/sh
# Crash safety at a power cut. The store lives on an ext4 image in a loop device; a publisher
# writes random keys, and at a random point after its first one the power goes: the publisher
# is frozen (SIGSTOP, waited for), the file system shut down as a power cut would leave it
# (EXT4_IOC_SHUTDOWN without flushing its journal: what was not committed is lost, what was
# fsync'd stays), the publisher killed, the file system unmounted uncleanly and mounted again
# (the journal replayed).
# Why freeze first: at a real cut the process ends with the disk. A process left running
# through the ioctl can see an fsync that was in flight return 0 although the shutdown dropped
# it (measured here with a plain append-and-fdatasync loop, no cachepot code: 14 of 160 cuts
# lost the last acknowledged record when the writer ran on, 0 of 160 when it was frozen first),
# and would acknowledge a key the disk never got.
# After every cut the next publisher opens the store; after all of them fsck is clean, every
# key the index shows is complete, and every key whose publish had returned is there.
# CACHEPOT_POWER_CUTS cuts (default 12). Cost: 3 to 4 seconds a cut under ASan on 2 busy cores.
. "$top_srcdir/tests/tap.sh"

[ "$(id -u)" = 0 ] || skip_all "needs root (loop device, mount)"
for c in mkfs.ext4 losetup mount umount; do
	command -v "$c" > /dev/null || skip_all "no $c"
done

tool="$top_builddir/tests/fs/store-tool"
work=$(mktemp -d /tmp/cachepot-power-cut.XXXXXX) || bail "mktemp"
mnt="$work/mnt"
loop=""
cleanup() {
	mountpoint -q "$mnt" 2>/dev/null && umount -l "$mnt"
	[ -n "$loop" ] && losetup -d "$loop" 2>/dev/null
	rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP

mkdir "$mnt"
truncate -s 512M "$work/image" && mkfs.ext4 -q -F "$work/image" || bail "mkfs.ext4"
loop=$(losetup -f --show "$work/image" 2>/dev/null) || skip_all "no loop device"
cuts=${CACHEPOT_POWER_CUTS:-12}
tap_plan 6

: > "$work/acks"
mounted=0 godown=0 opened=0 seed=$(od -An -N4 -tu4 /dev/urandom | tr -d ' ')
for i in $(seq 1 "$cuts"); do
	mount "$loop" "$mnt" || break
	mounted=$((mounted + 1))
	: > "$work/pub.err"
	before=$(wc -l < "$work/acks")
	"$tool" publish-acked "$mnt/store" $((seed + i)) "$work/acks" 2> "$work/pub.err" &
	pid=$!
	# Once this publisher has published a key (however slow the machine), 0 to 1 s more:
	# mid-blob, mid-fsync, mid-rename or mid-index-write.
	for _ in $(seq 1 300); do
		[ "$(wc -l < "$work/acks")" -gt "$before" ] && break
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	sleep "$(awk -v s=$((seed + i)) 'BEGIN { srand(s); printf "%.2f", rand() }')"
	# The cut: frozen (a syscall in progress returns first), shut down, killed.
	kill -STOP "$pid" 2>/dev/null
	for _ in $(seq 1 500); do
		st=$(awk '{ print $3 }' "/proc/$pid/stat" 2>/dev/null)
		[ "$st" = T ] || [ -z "$st" ] && break
		sleep 0.01
	done
	"$tool" godown "$mnt" && godown=$((godown + 1))
	kill -KILL "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
	# A publisher was killed publishing (or ended with an error); it must have got the store open.
	grep -q 'store_open' "$work/pub.err" || opened=$((opened + 1))
	if grep -q 'store_open' "$work/pub.err"; then
		sed 's/^/# /' "$work/pub.err"
		dmesg 2>/dev/null | tail -n 12 | sed 's/^/# dmesg: /'
	fi
	umount "$mnt" || break
done
acked=$(wc -l < "$work/acks")
echo "# $godown cuts, $acked keys published (acknowledged) before them"
check "$cuts cuts: each mounted after the last, then shut down mid-publish" \
	test "$mounted" = "$cuts" -a "$godown" = "$cuts"
check "after every cut the next publisher opened the store" test "$opened" = "$cuts"

mount "$loop" "$mnt" || bail "the image does not mount after the last cut"
# The daemon's restart: a writer opens the store (RocksDB recovers its log) before it is read.
echo probe > "$work/probe"
timeout 60 "$tool" put "$mnt/store" "$work/probe" > /dev/null 2> "$work/reopen.err" ||
	sed 's/^/# reopen: /' "$work/reopen.err"
keys=$(timeout 120 "$tool" check "$mnt/store" 2> "$work/check.err")
rc=$?
sed 's/^/# /' "$work/check.err" | head -n 20
check "every key the index shows is complete ($keys keys)" test "$rc" = 0
n=$(timeout 120 "$tool" check-acked "$mnt/store" "$work/acks" 2> "$work/acked.err")
rc=$?
sed 's/^/# /' "$work/acked.err" | head -n 20
check "every key whose publish returned is there and complete ($n of $acked)" \
	test "$rc" = 0 -a "${n:-0}" = "$acked"
check "keys were published before every cut" test "$acked" -ge "$cuts"
timeout 120 "$tool" fsck "$mnt/store" > "$work/fsck.out" 2>&1
rc=$?
sed 's/^/# /' "$work/fsck.out" | tail -n 5
check "fsck is clean after the cuts" test "$rc" = 0
