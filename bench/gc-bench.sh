#!/bin/sh
# GC time for evicting half of a store of N synthetic keys (issue 17: "GC time for evicting half
# the store"). The store is made by store-tool synth (N keys, one output of BYTES bytes each, last
# uses an hour apart), then `cachepot gc --store DIR --max-size HALF` is timed: a dry run (the
# walk and the plan, nothing written), then the real run (evictions in synced batches of 64 keys
# and the unlinks), then fsck checks the result.
#
#   bench/gc-bench.sh [BUILD_DIR] [N] [BYTES]     defaults: . 10000 4096
#
# Build without --enable-sanitizers for meaningful figures; store-tool is a check program
# (make check TESTS= builds it, or make tests/fs/store-tool). Prints one line per phase.
set -eu
build=${1:-.}
n=${2:-10000}
bytes=${3:-4096}
tool=$build/tests/fs/store-tool
client=$build/cachepot
[ -x "$tool" ] || { echo "gc-bench: no $tool (make tests/fs/store-tool)" >&2; exit 2; }
work=$(mktemp -d /tmp/cachepot-gc-bench.XXXXXX)
trap 'rm -rf "$work"' EXIT
now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", b - a }'; }

t0=$(now)
"$tool" synth "$work/store" "$n" "$bytes" > /dev/null
t1=$(now)
half=$((n * bytes / 2))
"$client" gc --store "$work/store" --max-size "$half" --dry-run --json > "$work/dry.json"
t2=$(now)
"$client" gc --store "$work/store" --max-size "$half" --json > "$work/run.json"
t3=$(now)
"$tool" fsck -q "$work/store"
t4=$(now)
left=$("$tool" check "$work/store")
echo "gc-bench: N=$n keys of $bytes bytes; making them (synced publishes): $(secs "$t0" "$t1") s"
echo "gc-bench: dry run (walk + plan): $(secs "$t1" "$t2") s: $(cat "$work/dry.json")"
echo "gc-bench: evicting half: $(secs "$t2" "$t3") s: $(cat "$work/run.json")"
echo "gc-bench: fsck after: $(secs "$t3" "$t4") s, clean; $left keys left"
