#!/bin/sh
# Quota and garbage collection of the store (fs/gc.h) with the real programs: cachepot gc
# --store on a store no daemon holds, a real cachepot-fs mount following it (an evicted key
# disappears, a file open before stays readable, a read through the mount counts as a use), pins,
# dry runs, eviction under 8 concurrent reader threads, cachepotd --max-size and POST /v1/gc with
# their metrics, and a full disk (a small ext4 in a loop device): ENOSPC, never EIO, never a torn
# key, and the store usable again after a collection. Synthetic keys (store-tool synth), no crates.
. "$top_srcdir/tests/tap.sh"
. "$top_srcdir/tests/daemon/lib.sh"

[ "$(id -u)" = 0 ] || skip_all "needs root"
[ -c /dev/fuse ] || skip_all "no /dev/fuse"
command -v fusermount3 >/dev/null || skip_all "no fusermount3"
command -v jq >/dev/null || skip_all "no jq"

tool="$top_builddir/tests/fs/store-tool"
fsbin="$top_builddir/cachepot-fs"
client="$top_builddir/cachepot"
loop=""
daemon_setup
gc_cleanup() {
	exec 3<&- 2>/dev/null
	mountpoint -q "$T/nospc" 2>/dev/null && umount -l "$T/nospc"
	[ -n "$loop" ] && losetup -d "$loop" 2>/dev/null
	daemon_cleanup
}
trap gc_cleanup EXIT
export CACHEPOT_TRUST="$STORE/key/ed25519.pub"
unset LIBRARY_PATH COMPILER_PATH GCC_EXEC_PREFIX
tap_plan 26

# The store: 8 keys of 20000 bytes each (their blobs sum to 160000), key i last used i hours
# after key 0.
"$tool" synth "$STORE" 8 20000 > "$T/keys" || bail "store-tool synth"
k() { sed -n "$(($1 + 1))p" "$T/keys"; }
keys_in() { "$tool" check "$1" 2>/dev/null; }

MNT=$T/mnt
mkdir "$MNT"
"$fsbin" "$STORE" "$MNT" -f </dev/null >/dev/null 2>>"$T/fs.log" &
MOUNT_PIDS=$!
MOUNTS=$MNT
for _ in $(seq 1 100); do mountpoint -q "$MNT" && break; sleep 0.1; done
mountpoint -q "$MNT" || bail "cachepot-fs did not mount"

# gone PATH: within 5 s stat(2) of PATH fails with ENOENT (the mount polls evictions each second).
gone() {
	for _ in $(seq 1 50); do
		python3 -c 'import os, sys
try:
    os.stat(sys.argv[1])
except FileNotFoundError:
    sys.exit(0)
sys.exit(1)' "$1" && return 0
		sleep 0.1
	done
	echo "# $1 still there"; return 1
}

# A read through the mount is a use: key 1 is read now, so it is no longer the second oldest.
check "a key reads through the mount" test "$(wc -c < "$MNT/ac/$(k 1)/out")" = 20000

"$client" gc --store "$STORE" --max-size 1M > "$T/out" 2>&1
check "under the quota, nothing is evicted" \
	sh -c "grep -q 'evicted 0 keys' '$T/out' && [ \"\$('$tool' check '$STORE')\" = 8 ]"

"$client" gc --store "$STORE" --max-size 12Q > "$T/out" 2>&1
rc=$?
check "a bad size is refused with exit 2 and says why" \
	sh -c "[ $rc = 2 ] && grep -q 'a size expected' '$T/out' && [ \"\$('$tool' check '$STORE')\" = 8 ]"

check "key 0 is pinned" "$client" gc --store "$STORE" --pin "$(k 0)"
"$client" gc --store "$STORE" --pin "$(printf '%064d' 0)" > "$T/out" 2>&1
rc=$?
check "pinning a key that is not published fails" sh -c "[ $rc = 1 ] && grep -q 'no such key' '$T/out'"

"$client" gc --store "$STORE" --max-size 80000 --dry-run > "$T/out" 2>&1
check "a dry run says what would go and changes nothing" \
	sh -c "grep -q 'would evict 4 keys' '$T/out' && [ \"\$('$tool' check '$STORE')\" = 8 ]"

# The file a reader holds open: key 6, about to be evicted in the second run below.
cp "$MNT/ac/$(k 6)/out" "$T/k6.expected"
exec 3< "$MNT/ac/$(k 6)/out"

"$client" gc --store "$STORE" --max-size 80000 --json > "$T/out" 2>&1
check "the collection evicts 4 keys and their 80000 bytes" \
	sh -c "jq -e '.keys_evicted == 4 and .bytes_freed == 80000 and .keys_pinned == 1' '$T/out' >/dev/null && [ \"\$('$tool' check '$STORE')\" = 4 ]"
lru_gone() { for i in 2 3 4 5; do gone "$MNT/ac/$(k $i)" || return 1; done; }
check "least recently used first: keys 2 to 5 leave the mount" lru_gone
check "evicted keys answer ENOENT through the mount" gone "$MNT/ac/$(k 5)/out"
check "the pinned key, the key read through the mount and the newest stay" \
	sh -c "test -f '$MNT/ac/$(k 0)/out' && test -f '$MNT/ac/$(k 1)/out' && test -f '$MNT/ac/$(k 6)/out' && test -f '$MNT/ac/$(k 7)/out'"

"$client" gc --store "$STORE" --max-size 0 > "$T/out" 2>&1
check "at size 0 only the pinned key stays" sh -c "[ \"\$('$tool' check '$STORE')\" = 1 ] && [ -f '$MNT/ac/$(k 0)/out' ]"
cat <&3 > "$T/k6.got"
exec 3<&-
check "a file open before its key was evicted reads every byte" cmp -s "$T/k6.expected" "$T/k6.got"
check "an evicted key the kernel had looked up leaves the mount" gone "$MNT/ac/$(k 6)"
check "the listing of ac/ shows the pinned key alone" test "$(ls "$MNT/ac")" = "$(k 0)"
check "fsck is clean after the collections" "$tool" fsck -q "$STORE"
fusermount3 -u "$MNT"; MOUNTS=

# Readers against evictions: 8 threads of a reader instance look 60 keys up while they are
# evicted one by one; none may find a key whose blob is gone, or read other bytes from a blob it
# opened before.
"$tool" synth "$T/race" 60 20000 > /dev/null || bail "store-tool synth"
"$tool" evict-race "$T/race" 60 > "$T/out" 2>&1
rc=$?
sed 's/^/# /' "$T/out"
check "eviction under concurrent readers: no torn key, no wrong byte" test $rc = 0
check "fsck is clean after evictions under readers" "$tool" fsck -q "$T/race"

# The daemon: --max-size collects on its own; POST /v1/gc and cachepot gc ask it.
rm -rf "$STORE"
"$tool" synth "$STORE" 6 20000 > "$T/keys" || bail "store-tool synth"
daemon_start --max-size 60000 --gc-interval-seconds 1 || bail "cachepotd did not start"
for _ in $(seq 1 100); do [ "$(metric store_keys_evicted_total)" = 3 ] && break; sleep 0.1; done
check "cachepotd --max-size evicts the 3 oldest keys, counted in /metrics" \
	sh -c "[ \"\$(curl -s --unix-socket '$SOCK' http://d/metrics | awk '\$1 == \"cachepotd_store_bytes_freed_total\" { print \$2 }')\" = 60000 ] && [ \"\$('$tool' check '$STORE')\" = 3 ]"
code=$(api GET /v1/status)
check "the status shows the quota and what was evicted" \
	jqe '.gc.max_size == 60000 and .gc.keys_evicted == 3' "$T/body"
# gc_api BODY: POST /v1/gc, again while the daemon's own collection (every second) is running
# (409), as cachepot gc does.
gc_api() {
	for _ in $(seq 1 100); do
		code=$(api POST /v1/gc -d "$1")
		[ "$code" = 409 ] || break
		sleep 0.2
	done
	echo "$code"
}
code=$(gc_api '{"max_size":"0","dry_run":true}')
check "POST /v1/gc dry run: 200, would evict 3, changes nothing" \
	sh -c "[ $code = 200 ] && jq -e '.keys_evicted == 3 and .dry_run' '$T/body' >/dev/null && [ \"\$('$tool' check '$STORE')\" = 3 ]"
echo "# dry run answered $code: $(head -c 600 "$T/body")"
code=$(gc_api '{"max_size":"lots"}')
check "POST /v1/gc with a bad size: 400 saying why" \
	sh -c "[ $code = 400 ] && grep -q 'a size expected' '$T/body'"
: > "$T/out"
CACHEPOT_SOCKET=$SOCK "$client" gc --pin "$(k 5)" > "$T/pin.out" 2>&1 &&
	CACHEPOT_SOCKET=$SOCK "$client" gc --max-size 0 --json > "$T/out" 2>&1
check "cachepot gc asks the daemon: pins hold, the rest goes" \
	sh -c "jq -e '.keys_evicted == 2' '$T/out' >/dev/null && [ \"\$('$tool' check '$STORE')\" = 1 ]"
echo "# cachepot gc --pin: $(head -c 300 "$T/pin.out"); cachepot gc: $(head -c 600 "$T/out"); keys left: $("$tool" check "$STORE" 2>&1)"
"$client" gc --store "$STORE" --max-size 0 > "$T/out" 2>&1
check "cachepot gc --store on a store the daemon holds says so" \
	sh -c "grep -q 'a cachepotd holds it' '$T/out'"
daemon_stop

# A full disk: publishing into a 40 MB ext4 fails with ENOSPC and leaves every key whole; a
# collection makes room and publishing works again.
if command -v mkfs.ext4 >/dev/null && command -v losetup >/dev/null; then
	mkdir "$T/nospc"
	truncate -s 40M "$T/image" && mkfs.ext4 -q -F "$T/image" &&
		loop=$(losetup -f --show "$T/image" 2>/dev/null) && mount "$loop" "$T/nospc"
fi
if mountpoint -q "$T/nospc" 2>/dev/null; then
	"$tool" synth "$T/nospc/store" 400 200000 > /dev/null 2> "$T/out"
	rc=$?
	sed 's/^/# /' "$T/out"
	check "a full disk: publishing fails with ENOSPC, not EIO" \
		sh -c "[ $rc = 1 ] && grep -q 'No space left on device' '$T/out' && ! grep -qi 'input/output' '$T/out'"
	n=$("$tool" check "$T/nospc/store")
	check "every key published before the disk filled is whole ($n), fsck clean" \
		sh -c "[ '$n' -gt 0 ] && '$tool' fsck -q '$T/nospc/store'"
	"$client" gc --store "$T/nospc/store" --max-size 4M > /dev/null 2>&1 &&
		"$tool" synth "$T/nospc/store" 5 200000 1000 > /dev/null
	check "after a collection, publishing works again" \
		sh -c "'$tool' fsck -q '$T/nospc/store' && [ \"\$('$tool' check '$T/nospc/store')\" -gt 5 ]"
else
	for d in ENOSPC whole again; do ok "# SKIP no loop device for the full-disk case ($d)"; done
fi
exit $((tap_failed > 0))
