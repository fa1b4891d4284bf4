#!/bin/sh
# Listing ac/ and cas/ of a cachepot-fs mount of a store of N synthetic keys: the time of
# `ls -f` of each and the mount's peak memory (VmHWM) before and after, and the time of a lookup
# of a present and of a missing key (stat, mean of 1000). Issue 17's "ac/ listing time and memory".
#
#   bench/listing-bench.sh [BUILD_DIR] [N]     defaults: . 10000
#
# Build without --enable-sanitizers for meaningful figures (make tests/fs/store-tool too).
set -eu
build=${1:-.}
n=${2:-10000}
tool=$build/tests/fs/store-tool
fsbin=$build/cachepot-fs
[ -x "$tool" ] || { echo "listing-bench: no $tool (make tests/fs/store-tool)" >&2; exit 2; }
work=$(mktemp -d /tmp/cachepot-listing-bench.XXXXXX)
mnt=$work/mnt
pid=
cleanup() {
	mountpoint -q "$mnt" 2>/dev/null && fusermount3 -u "$mnt"
	[ -n "$pid" ] && wait "$pid" 2>/dev/null
	rm -rf "$work"
}
trap cleanup EXIT
now() { date +%s.%N; }
t0=$(now)
"$tool" synth "$work/store" "$n" 16 > "$work/keys"
echo "listing-bench: $n keys made in $(echo "$(now) - $t0" | bc) s"
mkdir "$mnt"
CACHEPOT_TRUST="$work/store/key/ed25519.pub" "$fsbin" "$work/store" "$mnt" -f </dev/null >/dev/null 2>"$work/fs.log" &
pid=$!
for _ in $(seq 1 100); do mountpoint -q "$mnt" && break; sleep 0.1; done
hwm() { awk '$1 == "VmHWM:" { print $2 }' "/proc/$pid/status"; }
echo "listing-bench: cachepot-fs peak memory after mount: $(hwm) KiB"
for d in ac cas; do
	t0=$(now)
	c=$(ls -f "$mnt/$d" | wc -l)
	echo "listing-bench: ls -f $d/: $c names in $(echo "$(now) - $t0" | bc) s; peak memory now $(hwm) KiB"
done
python3 - "$mnt" "$(head -n 1 "$work/keys")" <<'PY'
import os, sys, time
mnt, key = sys.argv[1], sys.argv[2]
missing = "0" * 64
for name, path in (("present", f"{mnt}/ac/{key}"), ("missing", f"{mnt}/ac/{missing}")):
    ts = []
    for _ in range(1000):
        t = time.perf_counter()
        try:
            os.stat(path)
        except FileNotFoundError:
            pass
        ts.append(time.perf_counter() - t)
    ts.sort()
    print(f"listing-bench: stat of a {name} key: p50 {ts[500]*1e6:.0f} us, p99 {ts[990]*1e6:.0f} us")
PY
