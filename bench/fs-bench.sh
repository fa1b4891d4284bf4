#!/bin/sh
# fs-bench.sh [BUILDDIR]: read throughput of a 256 MiB blob through cachepot-fs against the same
# file read directly, page cache cold and warm, and the cost of stat() of a present key.
# Prints ratios (mount / direct); not part of make check. Needs root (drop_caches, FUSE).
# BUILDDIR must hold cachepot-fs and tests/fs/store-tool (make check builds the latter); use a
# build without sanitizers for meaningful figures.
set -eu
build=${1:-${top_builddir:-.}}
fsbin=$build/cachepot-fs
tool=$build/tests/fs/store-tool
size_mb=${FS_BENCH_MB:-256}
reps=${FS_BENCH_REPS:-3}
[ "$(id -u)" = 0 ] || { echo "fs-bench: needs root" >&2; exit 2; }
[ -x "$fsbin" ] && [ -x "$tool" ] || { echo "fs-bench: build cachepot-fs and tests/fs/store-tool in $build" >&2; exit 2; }

work=$(mktemp -d /var/tmp/cachepot-fs-bench.XXXXXX)
mnt=$work/mnt
fs_pid=""
cleanup() {
	if mountpoint -q "$mnt" 2>/dev/null; then fusermount3 -u "$mnt" 2>/dev/null || umount -l "$mnt"; fi
	[ -n "$fs_pid" ] && kill "$fs_pid" 2>/dev/null
	rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

mount_fs() {
	"$fsbin" "$work/store" "$mnt" -f </dev/null >/dev/null 2>>"$work/fs.log" &
	fs_pid=$!
	i=0
	while ! mountpoint -q "$mnt"; do i=$((i + 1)); [ $i -lt 100 ] || exit 1; sleep 0.1; done
}
unmount_fs() { fusermount3 -u "$mnt"; wait "$fs_pid" || true; fs_pid=""; }
drop() { sync; echo 3 > /proc/sys/vm/drop_caches; }
# seconds to read FILE once
read_time() {
	python3 - "$1" <<'EOF'
import sys, time
t = time.perf_counter()
with open(sys.argv[1], "rb", buffering=0) as f:
    while f.read(1 << 20):
        pass
print("%.6f" % (time.perf_counter() - t))
EOF
}
median() { sort -n | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", a / b}'; }
mbps() { awk -v s="$1" -v m="$size_mb" 'BEGIN {printf "%.0f MiB/s", m / s}'; }

mkdir -p "$mnt"
head -c $((size_mb << 20)) /dev/urandom > "$work/big.rlib"
key=$(head -c 32 /dev/urandom | sha256sum | cut -c1-64)
"$tool" publish "$work/store" "$key" big.rlib="$work/big.rlib" >/dev/null
sha=$(sha256sum "$work/big.rlib" | cut -c1-64)
blob=$work/store/cas/$(echo "$sha" | cut -c1-2)/$sha
rm -f "$work/big.rlib"
through=$mnt/ac/$key/big.rlib

: > "$work/direct_cold"; : > "$work/mount_cold_first"; : > "$work/mount_cold"
: > "$work/direct_warm"; : > "$work/mount_warm"
for r in $(seq "$reps"); do
	drop; read_time "$blob" >> "$work/direct_cold"
	read_time "$blob" >> "$work/direct_warm"
	# A fresh mount: the first open hashes the whole blob (verification) before reading.
	mount_fs
	drop; read_time "$through" >> "$work/mount_cold_first"
	# Verified inode kept (the file stays open in the background), caches dropped again.
	exec 9<"$through"
	drop; read_time "$through" >> "$work/mount_cold"
	read_time "$through" >> "$work/mount_warm"
	exec 9<&-
	unmount_fs
done
dc=$(median < "$work/direct_cold"); dw=$(median < "$work/direct_warm")
mcf=$(median < "$work/mount_cold_first"); mc=$(median < "$work/mount_cold"); mw=$(median < "$work/mount_warm")

# stat of a present key: 20000 stats of ac/KEY/OUTPUT (entry and attributes cached) against the
# blob file itself; then the first lookup of keys (RocksDB get + signature check), 200 keys.
mount_fs
stat_time() {
	python3 - "$@" <<'EOF'
import os, sys, time
paths = sys.argv[2:]
n = int(sys.argv[1])
t = time.perf_counter()
for i in range(n):
    os.stat(paths[i % len(paths)])
print("%.9f" % ((time.perf_counter() - t) / n))
EOF
}
sd=$(stat_time 20000 "$blob")
sm=$(stat_time 20000 "$through")
keys=""
for i in $(seq 200); do
	k=$(printf 'stat-%s' "$i" | sha256sum | cut -c1-64)
	printf 'x%s' "$i" > "$work/s.rlib"
	"$tool" publish "$work/store" "$k" s.rlib="$work/s.rlib" >/dev/null
	keys="$keys $mnt/ac/$k/s.rlib"
done
# shellcheck disable=SC2086
sf=$(stat_time 200 $keys)
unmount_fs

echo "cachepot-fs bench: ${size_mb} MiB blob, median of $reps; stat over 20000 calls"
printf '%-44s %10s %12s %8s\n' "case" "seconds" "throughput" "ratio"
printf '%-44s %10s %12s %8s\n' "read, cold cache, direct" "$dc" "$(mbps "$dc")" "1.00"
printf '%-44s %10s %12s %8s\n' "read, cold cache, mount, first open (verify)" "$mcf" "$(mbps "$mcf")" "$(ratio "$mcf" "$dc")"
printf '%-44s %10s %12s %8s\n' "read, cold cache, mount, verified inode" "$mc" "$(mbps "$mc")" "$(ratio "$mc" "$dc")"
printf '%-44s %10s %12s %8s\n' "read, warm cache, direct" "$dw" "$(mbps "$dw")" "1.00"
printf '%-44s %10s %12s %8s\n' "read, warm cache, mount" "$mw" "$(mbps "$mw")" "$(ratio "$mw" "$dw")"
awk -v d="$sd" -v m="$sm" -v f="$sf" 'BEGIN {
	printf "%-44s %9.2fus %12s %8s\n", "stat, direct blob file", d * 1e6, "", "1.00";
	printf "%-44s %9.2fus %12s %8.2f\n", "stat, ac/KEY/OUTPUT (cached entry)", m * 1e6, "", m / d;
	printf "%-44s %9.2fus %12s %8.2f\n", "stat, ac/KEY/OUTPUT, first lookup of key", f * 1e6, "", f / d }'
