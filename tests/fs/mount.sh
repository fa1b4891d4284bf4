#!/bin/sh
# A real cachepot-fs mount of a real store: bytes and stat through the mount, EROFS for every
# mutating call (ro mount, and rw mount where our own handlers answer), a key published after
# mounting found at once, 16 readers against a publisher, a corrupted blob found by fsck and
# answered with EIO. Runs as root; everything is unmounted and killed on exit, even on failure.
. "$top_srcdir/tests/tap.sh"

[ "$(id -u)" = 0 ] || skip_all "needs root"
[ -c /dev/fuse ] || skip_all "no /dev/fuse"
command -v fusermount3 >/dev/null || skip_all "no fusermount3"

tool="$top_builddir/tests/fs/store-tool"
fsbin="$top_builddir/cachepot-fs"
work=$(mktemp -d /tmp/cachepot-fs-test.XXXXXX) || bail "mktemp"
store="$work/store"
fs_pids=""

cleanup() {
	for m in "$work/mnt" "$work/mnt-rw"; do
		if mountpoint -q "$m" 2>/dev/null; then
			fusermount3 -u "$m" 2>/dev/null || umount -l "$m"
		fi
	done
	for p in $fs_pids $watchdog; do kill -9 "$p" 2>/dev/null; done
	rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP
# The whole test within 180 s (ASan build included); the trap above cleans up.
( sleep 180; kill -TERM $$ ) </dev/null >/dev/null 2>&1 &
watchdog=$!

# mount_fs MOUNTPOINT [OPTIONS...]: start cachepot-fs in the foreground in the background.
mount_fs() {
	mkdir -p "$1"
	mp=$1; shift
	"$fsbin" "$store" "$mp" -f "$@" </dev/null >/dev/null 2>>"$work/fs.log" &
	fs_pids="$fs_pids $!"
	last_pid=$!
	i=0
	while ! mountpoint -q "$mp"; do
		i=$((i + 1)); [ $i -gt 100 ] && return 1
		kill -0 $last_pid 2>/dev/null || return 1
		sleep 0.1
	done
}

# enoent PATH: stat(2) of PATH fails with ENOENT, and with nothing else (an EIO, EACCES or a
# crashed mount is not "not published").
enoent() {
	python3 -c 'import errno, os, sys
try:
    os.stat(sys.argv[1])
except OSError as e:
    if e.errno == errno.ENOENT:
        sys.exit(0)
    print("# stat %s: %s" % (sys.argv[1], e.strerror))
    sys.exit(1)
print("# stat %s: it exists" % sys.argv[1])
sys.exit(1)' "$1"
}

tap_plan 63

head -c 300000 /dev/urandom > "$work/a.rlib"
printf 'dep-info\n' > "$work/a.d"
key=$(head -c 32 /dev/urandom | sha256sum | cut -c1-64)
check "publish a key into a new store" \
	test "$(timeout 30 "$tool" publish "$store" "$key" liba.rlib="$work/a.rlib" a.d="$work/a.d:755")" = 0
check "mount comes up" mount_fs "$work/mnt"
mnt=$work/mnt
ac=$mnt/ac/$key
sha=$(sha256sum "$work/a.rlib" | cut -c1-64)

check "bytes through ac/KEY/OUTPUT equal the blob" cmp "$work/a.rlib" "$ac/liba.rlib"
check "bytes through cas/SHA256 equal the blob" cmp "$work/a.rlib" "$mnt/cas/$sha"
check "stat: size and mode (0644 -> 0444) of the manifest" \
	test "$(stat -c '%s %a %F' "$ac/liba.rlib")" = "300000 444 regular file"
check "stat: 0755 output shows 0555" test "$(stat -c '%s %a' "$ac/a.d")" = "9 555"
check ".manifest is the signed manifest of KEY" \
	grep -q "\"key\":\"$key\".*\"signature\":{\"algorithm\":\"ed25519\"" "$ac/.manifest"
check "readdir of ac/KEY lists .manifest and the outputs" \
	test "$(ls -A "$ac" | tr '\n' ' ')" = ".manifest a.d liba.rlib "
check "readdir's .. in ac/KEY is ac/, not the root" \
	test "$("$tool" dirent-ino "$ac" ..)" = "$(stat -c %i "$mnt/ac")"
check "readdir's number for an output is the one stat gives" \
	test "$("$tool" dirent-ino "$ac" liba.rlib)" = "$(stat -c %i "$ac/liba.rlib")"

# Every mutating call fails with EROFS, as root. $1 = mount, $2 = label.
erofs_suite() {
	m=$1; k=$m/ac/$key
	for op in write rdwr trunc chmod chown truncate utimes setxattr removexattr; do
		check "$2: $op on an output is EROFS" "$tool" erofs $op "$k/liba.rlib"
	done
	check "$2: create in ac/KEY is EROFS" "$tool" erofs create "$k/new"
	check "$2: unlink of an output is EROFS" "$tool" erofs unlink "$k/liba.rlib"
	check "$2: rename of an output is EROFS" "$tool" erofs rename "$k/liba.rlib" "$k/moved"
	check "$2: mkdir is EROFS" "$tool" erofs mkdir "$m/ac/newdir"
	check "$2: rmdir of ac/KEY is EROFS" "$tool" erofs rmdir "$k"
	check "$2: symlink is EROFS" "$tool" erofs symlink "$m/cas/link"
	check "$2: link is EROFS" "$tool" erofs link "$k/liba.rlib" "$k/hard"
}
erofs_suite "$mnt" "ro mount"
# Mounted rw the kernel passes the calls on: cachepot-fs itself must refuse them.
check "rw mount comes up" mount_fs "$work/mnt-rw" -o rw
# A second cachepot-fs process looks everything up afresh, and in another order (cas/ first), so
# equal numbers mean they come from what the node is, not from a counter or this process's
# history (two stats in one mount would only hit the dcache).
rw=$work/mnt-rw
check "inode numbers of ac/KEY and an output are the same in a second mount" \
	test "$(stat -c %i "$ac" "$ac/liba.rlib" | tr '\n' ' ')" = \
	     "$(stat "$rw/cas/$sha" >/dev/null; stat -c %i "$rw/ac/$key" "$rw/ac/$key/liba.rlib" | tr '\n' ' ')"
check "the rw mount is really mounted rw (so cachepot-fs answers, not the kernel)" \
	sh -c "grep ' $work/mnt-rw ' /proc/mounts | grep -q ' rw,'"
check "the default mount is ro" sh -c "grep ' $mnt ' /proc/mounts | grep -q ' ro,'"
erofs_suite "$work/mnt-rw" "rw mount"
check "outputs unchanged after all that" cmp "$work/a.rlib" "$ac/liba.rlib"

# Published after the mount started, and after a failed lookup of it (no negative caching).
late=$(head -c 32 /dev/urandom | sha256sum | cut -c1-64)
head -c 5000 /dev/urandom > "$work/late.rlib"
check "a key not yet published is ENOENT" enoent "$mnt/ac/$late"
timeout 30 "$tool" publish "$store" "$late" late.rlib="$work/late.rlib" >/dev/null
check "a key published after mounting is found at the next lookup" \
	cmp "$work/late.rlib" "$mnt/ac/$late/late.rlib"

# A blob put into the store that no manifest names (what a client uploads as a job's input) is
# not served: ENOENT through cas/ and not listed, until a key naming the same bytes is published.
head -c 4000 /dev/urandom > "$work/input.rs"
isha=$(timeout 30 "$tool" put "$store" "$work/input.rs")
check "an uploaded blob no manifest names is ENOENT through cas/" enoent "$mnt/cas/$isha"
check "... and cas/ does not list it" sh -c "! ls '$mnt/cas' | grep -qx '$isha'"
timeout 30 "$tool" publish "$store" "$(head -c 32 /dev/urandom | sha256sum | cut -c1-64)" \
	input.rs="$work/input.rs" >/dev/null
check "once a published key names the same bytes, cas/ reads them" cmp "$work/input.rs" "$mnt/cas/$isha"
check "... and lists them" sh -c "ls '$mnt/cas' | grep -qx '$isha'"

# 16 readers through the mount while this process publishes: only whole keys, every key
# published before a lookup began is found by it.
race_out=$(timeout 120 "$tool" race "$store" "$mnt" 300 2>&1)
race_rc=$?
echo "# race: $race_out"
check "16 readers during publishing see only whole keys" test $race_rc = 0

check "fsck of an intact store is clean" timeout 60 "$tool" fsck -q "$store"

# Corruption behind the store's back: a blob not yet opened through the mount.
bad=$(head -c 32 /dev/urandom | sha256sum | cut -c1-64)
head -c 70001 /dev/zero > "$work/zero.rlib"
timeout 30 "$tool" publish "$store" "$bad" zero.rlib="$work/zero.rlib" >/dev/null
zsha=$(sha256sum "$work/zero.rlib" | cut -c1-64)
zpath=$store/cas/$(echo "$zsha" | cut -c1-2)/$zsha
printf 'X' | dd of="$zpath" bs=1 seek=4242 conv=notrunc status=none
timeout 60 "$tool" fsck "$store" 2>"$work/fsck.err"
fsck_rc=$?
sed 's/^/# /' "$work/fsck.err"
check "fsck finds the flipped byte (exit 1)" test $fsck_rc = 1
check "fsck names the corrupt blob" grep -q "blob $zsha: CORRUPT" "$work/fsck.err"
check "fsck names the key that uses it" grep -q "key $bad: output zero.rlib names blob $zsha, which is CORRUPT" "$work/fsck.err"
check "reading it through ac/ gives EIO" test "$("$tool" read-errno "$mnt/ac/$bad/zero.rlib")" = EIO
check "reading it through cas/ gives EIO" test "$("$tool" read-errno "$mnt/cas/$zsha")" = EIO
check "other blobs still read fine" cmp "$work/a.rlib" "$mnt/cas/$sha"

# Clean shutdown, no sanitizer reports.
status=0
for m in "$mnt" "$work/mnt-rw"; do fusermount3 -u "$m" || status=1; done
for p in $fs_pids; do wait "$p" || status=1; done
fs_pids=""
check "cachepot-fs exits 0 on unmount" test $status = 0
check "cachepot-fs reported no sanitizer errors or leaks" \
	sh -c "! grep -q 'Sanitizer' '$work/fs.log'"
grep -v '^$' "$work/fs.log" | sed 's/^/# fs.log: /'
