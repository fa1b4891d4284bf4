#!/bin/sh
# The store at scale (issue 17, "Scale"): for each N, a store of N synthetic keys with real
# signed manifests and one blob of its own each (store-tool synth --bulk: batched, synced once),
# then
#   make     the time to make it, and its size on disk
#   fsck     cachepot fsck of it (every signature, every blob's bytes), timed; must be clean
#   open     the store opened as a reader (as cachepot-fs does), median of 5; and a cachepot-fs
#            mount from its start until ac/ answers, with its peak memory (VmHWM) then
#   lookup   stat of ac/<key> through the mount for LOOKUPS distinct present keys (each the
#            kernel's first lookup of it, so it reaches cachepot-fs) and LOOKUPS distinct missing
#            ones: p50, p99, max in microseconds; and the present ones again (the kernel's cache)
#   list     ls -f of ac/ and of cas/: time, names, the mount's VmHWM and VmRSS before and after
#   publish  durable publishing into the store of N keys (store-tool publish-bench: blob, stdout,
#            stderr, manifest, as the daemon's workers do): PUBLISH keys by 1 thread, by 4
#   gc       cachepot gc --store DIR --max-size (half the size): evicting half the store, timed
#
#   bench/scale-bench.sh [BUILD_DIR] [N...]        defaults: . 10000
#
# Environment: SCALE_DIR (where stores are made; default /var/tmp: keep it off a tmpfs, a
# million keys take ~4 GB of 4K blocks), SCALE_PHASES (default "make fsck open lookup list
# publish gc"), SCALE_LOOKUPS (default 2000), SCALE_PUBLISH (default 400), SCALE_KEEP=1 keeps
# each store (and its keys file) and prints where; SCALE_REUSE=DIR takes the store a kept run
# left in DIR instead of making one (one N). Needs root (FUSE) and python3.
#
# Build without --enable-sanitizers for meaningful figures; store-tool is a check program
# (make tests/fs/store-tool). The page cache is left warm: the figures are for a store that
# fits in memory, as a CI worker's index does.
set -eu
build=${1:-.}
[ $# -gt 0 ] && shift
[ $# -gt 0 ] || set -- 10000
tool=$build/tests/fs/store-tool
fsbin=$build/cachepot-fs
client=$build/cachepot
phases=${SCALE_PHASES:-make fsck open lookup list publish gc}
lookups=${SCALE_LOOKUPS:-2000}
publish=${SCALE_PUBLISH:-400}
for p in "$tool" "$fsbin" "$client"; do
	[ -x "$p" ] || { echo "scale-bench: no $p (make, make tests/fs/store-tool)" >&2; exit 2; }
done
mkdir -p "${SCALE_DIR:-/var/tmp}"
work=
mnt=
pid=
unmount() {
	if [ -n "$pid" ]; then
		mountpoint -q "$mnt" 2>/dev/null && fusermount3 -u "$mnt"
		t=0
		while kill -0 "$pid" 2>/dev/null && [ $t -lt 300 ]; do sleep 0.1; t=$((t + 1)); done
		if kill -0 "$pid" 2>/dev/null; then
			echo "scale-bench: cachepot-fs still running 30 s after the unmount: SIGTERM" >&2
			kill "$pid"
		fi
		wait "$pid" 2>/dev/null || true
		pid=
	fi
}
cleanup() {
	unmount
	if [ -n "$work" ] && [ -z "${SCALE_REUSE:-}" ] && [ "${SCALE_KEEP:-0}" != 1 ]; then
		rm -rf "$work"
	fi
}
trap cleanup EXIT
trap 'exit 1' INT TERM
now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'; }
has() { case " $phases " in *" $1 "*) return 0 ;; esac; return 1; }
status() { awk -v k="$1:" '$1 == k { print $2 }' "/proc/$pid/status"; }
say() { echo "scale-bench: N=$n: $*"; }

for n in "$@"; do
	if [ -n "${SCALE_REUSE:-}" ]; then
		work=$SCALE_REUSE
		[ -d "$work/store/index" ] && [ -f "$work/keys" ] ||
			{ echo "scale-bench: $work holds no kept store" >&2; exit 2; }
	else
		work=$(mktemp -d "${SCALE_DIR:-/var/tmp}/cachepot-scale.XXXXXX")
	fi
	store=$work/store
	mnt=$work/mnt
	mkdir -p "$mnt"
	say "store $store; load $(cut -d' ' -f1-3 /proc/loadavg)"

	if has make && [ -z "${SCALE_REUSE:-}" ]; then
		t0=$(now)
		"$tool" synth --bulk "$store" "$n" 16 > "$work/keys"
		t1=$(now)
		say "make: $(secs "$t0" "$t1") s ($(awk -v n="$n" -v t="$(secs "$t0" "$t1")" \
			'BEGIN { printf "%.0f", n / t }') keys/s); on disk: cas/ $(du -sh "$store/cas" |
			cut -f1), index/ $(du -sh "$store/index" | cut -f1)"
	fi
	if has fsck; then
		t0=$(now)
		out=$("$client" fsck "$store" 2>&1) || { echo "$out" >&2; exit 1; }
		say "fsck: $(secs "$t0" "$(now)") s: $(echo "$out" | tail -n 1)"
	fi
	if has open; then
		o=$(for _ in 1 2 3 4 5; do "$tool" open-time "$store"; done | sort -n | sed -n 3p)
		say "open: store_open as a reader $o us (median of 5)"
	fi
	if has open || has lookup || has list; then
		t0=$(now)
		CACHEPOT_TRUST="$store/key/ed25519.pub" "$fsbin" "$store" "$mnt" -f </dev/null \
			>/dev/null 2>"$work/fs.log" &
		pid=$!
		i=0
		until mountpoint -q "$mnt" && stat "$mnt/ac" >/dev/null 2>&1; do
			i=$((i + 1))
			[ $i -lt 6000 ] || { echo "scale-bench: no mount after a minute" >&2; exit 1; }
			sleep 0.01
		done
		say "open: cachepot-fs start to ac/ answering $(secs "$t0" "$(now)") s; VmHWM $(status VmHWM) KiB, VmRSS $(status VmRSS) KiB"
	fi
	if has lookup; then
		python3 - "$mnt" "$work/keys" "$lookups" "$n" "$pid" <<'PY'
import os, random, sys, time
mnt, keys_file, count, n, pid = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5]
def mount_cpu():
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
with open(keys_file) as f:
    keys = f.read().split()
rng = random.Random(17)
present = rng.sample(keys, min(count, len(keys)))
known = set(keys)
missing = []
while len(missing) < count:
    k = "%064x" % rng.getrandbits(256)
    if k not in known:
        missing.append(k)
def run(name, sample, expect):
    ts = []
    cpu = mount_cpu()
    for k in sample:
        t = time.perf_counter()
        try:
            os.stat(f"{mnt}/ac/{k}")
            found = True
        except FileNotFoundError:
            found = False
        ts.append(time.perf_counter() - t)
        if found != expect:
            sys.exit(f"scale-bench: {k}: {'found' if found else 'not found'}")
    cpu = (mount_cpu() - cpu) / len(ts) * 1e6
    ts.sort()
    us = lambda q: ts[min(len(ts) - 1, int(q * len(ts)))] * 1e6
    print(f"scale-bench: N={n}: lookup {name}: {len(ts)} stats, p50 {us(0.5):.0f} us, "
          f"p99 {us(0.99):.0f} us, max {ts[-1] * 1e6:.0f} us; cachepot-fs CPU {cpu:.0f} us "
          f"a lookup", flush=True)
run("present (first lookup, reaches cachepot-fs)", present, True)
run("missing", missing, False)
run("present again (the kernel's cached entry)", present, True)
PY
	fi
	if has list; then
		for d in ac cas; do
			h0=$(status VmHWM) r0=$(status VmRSS)
			t0=$(now)
			c=$(ls -f "$mnt/$d" | wc -l)
			say "list: ls -f $d/: $c names in $(secs "$t0" "$(now)") s; VmHWM $h0 -> $(status VmHWM) KiB, VmRSS $r0 -> $(status VmRSS) KiB"
		done
	fi
	unmount
	if has publish; then
		for threads in 1 4; do
			say "publish: $("$tool" publish-bench "$store" $((publish / threads)) "$threads")"
			echo $((publish / threads * threads)) >> "$work/published"
		done
	fi
	if has gc; then
		# every key holds 16 bytes: the synthetic ones and publish-bench's
		keys=$((n + $(cat "$work/published" 2>/dev/null | awk '{ s += $1 } END { print s + 0 }')))
		half=$((keys * 16 / 2))
		t0=$(now)
		out=$("$client" gc --store "$store" --max-size "$half" --json)
		say "gc: evicting half of $keys keys (to $half bytes): $(secs "$t0" "$(now)") s: $out"
	fi
	if [ "${SCALE_KEEP:-0}" = 1 ] && [ -z "${SCALE_REUSE:-}" ]; then
		say "kept in $work (SCALE_REUSE=$work to measure it again)"
		work=
	fi
	cleanup
	work=
done
