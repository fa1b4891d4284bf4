#!/bin/sh
# The wrapper's cache directory: nothing in it is opened through a symlink (the statistics,
# their lock).
. "$top_srcdir/tests/tap.sh"
set -u
tap_plan 3
cachepot="$top_builddir/cachepot"
T=$(mktemp -d /tmp/cachepot-cachedir.XXXXXX)
trap 'rm -rf "$T"' EXIT INT TERM
export CACHEPOT_CONFIG=/dev/null
C="$T/cache"
mkdir -m 700 "$C"

# Links another user could have planted (were the directory writable to them).
ln -s "$T/made-through-lock" "$C/stats.lock"
timeout 60 env CACHEPOT_CACHE_DIR="$C" "$cachepot" --zero-stats > "$T/out" 2>&1
check "a symlink at stats.lock is not followed (nothing is created where it points)" \
	test ! -e "$T/made-through-lock"
rm -f "$C/stats.lock" "$C/stats.json"
echo '{"hits": 999, "not_cacheable": {}}' > "$T/foreign.json"
ln -s "$T/foreign.json" "$C/stats.json"
hits=$(timeout 60 env CACHEPOT_CACHE_DIR="$C" "$cachepot" --show-stats --json 2>"$T/err" \
	| python3 -c 'import json,sys; print(json.load(sys.stdin)["hits"])')
check "a symlink at stats.json is not read (hits $hits)" test "$hits" = 0
timeout 60 env CACHEPOT_CACHE_DIR="$C" "$cachepot" --zero-stats > "$T/out" 2>&1
check "nor written through" grep -q 999 "$T/foreign.json"
