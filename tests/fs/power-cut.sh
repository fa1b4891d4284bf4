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
# Then the same with collections: on a second store of the image, publishers that collect it
# to 600 kB (about 5 keys) after every key, so that a cut often comes mid-collection (the walk,
# the synced batch of evictions, the unlinks). There an acknowledged key may be gone, but only
# when a collection started after its publish returned (the publisher marks each start in the
# list of acknowledged keys); every other one is there and complete, and fsck is clean.
# CACHEPOT_POWER_CUTS cuts (default 12) and CACHEPOT_POWER_CUTS_GC with collections (default
# 6). Cost: 3 to 4 seconds a cut under ASan on 2 busy cores.
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
gc_cuts=${CACHEPOT_POWER_CUTS_GC:-6}
gc_max=600000
tap_plan 10

# Lines of the list ACKS that are keys (not a collection's marks).
keys_in() { grep -c '^[0-9a-f]\{64\}$' "$1"; }
: > "$work/acks"
: > "$work/gc-acks"
mounted=0 godown=0 opened=0 mid_gc=0 seed=$(od -An -N4 -tu4 /dev/urandom | tr -d ' ')
for i in $(seq 1 $((cuts + gc_cuts))); do
	mount "$loop" "$mnt" || break
	mounted=$((mounted + 1))
	: > "$work/pub.err"
	if [ "$i" -le "$cuts" ]; then
		store=$mnt/store acks=$work/acks gc=
	else
		store=$mnt/gc-store acks=$work/gc-acks gc=$gc_max
	fi
	before=$(wc -l < "$acks")
	"$tool" publish-acked "$store" $((seed + i)) "$acks" $gc 2> "$work/pub.err" &
	pid=$!
	# Once this publisher has published a key (however slow the machine), 0 to 1 s more:
	# mid-blob, mid-fsync, mid-rename or mid-index-write.
	for _ in $(seq 1 300); do
		[ "$(wc -l < "$acks")" -gt "$before" ] && break
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
	# The last line a collecting publisher wrote is a start mark: the cut came mid-collection.
	[ -n "$gc" ] && tail -n 1 "$acks" | grep -q '^G\{64\}$' && mid_gc=$((mid_gc + 1))
	# A publisher was killed publishing (or ended with an error); it must have got the store open.
	grep -q 'store_open' "$work/pub.err" || opened=$((opened + 1))
	if grep -q 'store_open' "$work/pub.err"; then
		sed 's/^/# /' "$work/pub.err"
		dmesg 2>/dev/null | tail -n 12 | sed 's/^/# dmesg: /'
	fi
	# A killed publisher's io_uring requests are torn down by the kernel after it has exited,
	# holding the files they named until then: the file system can be busy for a moment.
	unmounted=0
	for _ in $(seq 1 100); do
		umount "$mnt" 2> "$work/umount.err" && { unmounted=1; break; }
		sleep 0.1
	done
	[ "$unmounted" = 1 ] || { sed 's/^/# /' "$work/umount.err"; break; }
done
acked=$(keys_in "$work/acks")
gc_acked=$(keys_in "$work/gc-acks")
echo "# $godown cuts, $acked keys published (acknowledged) before them; with collections $gc_acked, $mid_gc of $gc_cuts cuts mid-collection"
check "$cuts + $gc_cuts cuts: each mounted after the last, then shut down mid-publish or mid-collection" \
	test "$mounted" = $((cuts + gc_cuts)) -a "$godown" = $((cuts + gc_cuts))
check "after every cut the next publisher opened the store" test "$opened" = $((cuts + gc_cuts))

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

# The store that was collecting.
timeout 60 "$tool" put "$mnt/gc-store" "$work/probe" > /dev/null 2> "$work/reopen.err" ||
	sed 's/^/# reopen: /' "$work/reopen.err"
keys=$(timeout 120 "$tool" check "$mnt/gc-store" 2> "$work/check.err")
rc=$?
sed 's/^/# /' "$work/check.err" | head -n 20
check "with collections: every key the index shows is complete ($keys keys)" test "$rc" = 0
n=$(timeout 120 "$tool" check-acked "$mnt/gc-store" "$work/gc-acks" 2> "$work/acked.err")
rc=$?
sed 's/^/# /' "$work/acked.err" | head -n 20
evicted=$(sed -n 's/.* \([0-9]*\) evicted$/\1/p' "$work/acked.err")
check "with collections: every acknowledged key is there and complete, or gone after a collection began (${n:-0} of $gc_acked; ${evicted:-0} evicted)" \
	test "$rc" = 0 -a "${n:-0}" = "$gc_acked"
check "with collections: keys were published before every cut, and evicted" \
	test "$gc_acked" -ge "$gc_cuts" -a "${evicted:-0}" -gt 0
timeout 120 "$tool" fsck "$mnt/gc-store" > "$work/fsck.out" 2>&1
rc=$?
sed 's/^/# /' "$work/fsck.out" | tail -n 5
check "with collections: fsck is clean after the cuts" test "$rc" = 0
