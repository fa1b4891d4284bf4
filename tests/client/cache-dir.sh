#!/bin/sh
# The wrapper's cache directory. Nothing in it is opened through a symlink (the statistics,
# their lock); a directory another uid owns (a planted one, holding a toolchain list that names
# the files a miss would upload) is refused with one message and its list never used; with HOME
# unset the wrapper never falls back to a shared /tmp path.
. "$top_srcdir/tests/tap.sh"
set -u
tap_plan 9
rustc=$(find_rustc) || skip_all "no rustc"
cachepot="$top_builddir/cachepot"
T=$(mktemp -d /tmp/cachepot-cachedir.XXXXXX)
trap 'rm -rf "$T"' EXIT INT TERM
export CACHEPOT_CONFIG=/dev/null
unset XDG_CACHE_HOME
C="$T/cache"
mkdir -m 700 "$C"

# --- symlinks another user could have planted (were the directory writable to them) ---
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

# --- a planted cache directory ---
ws="$T/ws"
mkdir -p "$ws/out"
echo 'pub fn f() -> u32 { 1 }' > "$ws/lib.rs"
# explain DIR: the toolchain id --explain reports with cache directory DIR (stderr in $T/err).
explain() {
	(cd "$ws" && timeout 120 env CACHEPOT_CACHE_DIR="$1" "$cachepot" --explain "$rustc" --crate-name t \
		--edition 2021 lib.rs --crate-type lib --emit=dep-info,metadata,link --out-dir out) 2>"$T/err" \
		| python3 -c 'import json,sys; print(json.load(sys.stdin).get("toolchain") or "")'
}
good=$(explain "$T/good")
[ -n "$good" ] || bail "no toolchain id from --explain: $(cat "$T/err")"
# The list the first run cached, with another id: what a planted list would claim.
zeros=0000000000000000000000000000000000000000000000000000000000000000
plant() {
	mkdir -m 700 "$1"
	for f in "$T/good"/toolchain-*.json; do
		python3 -c 'import json,sys; j=json.load(open(sys.argv[1])); j["id"]=sys.argv[2]; json.dump(j, open(sys.argv[3],"w"))' \
			"$f" "$zeros" "$1/${f##*/}"
	done
}
plant "$T/mine"
check "control: a list in the caller's own directory is used" test "$(explain "$T/mine")" = "$zeros"
plant "$T/planted"
chown -R 12345:12345 "$T/planted"
tc=$(explain "$T/planted")
check "a cache directory owned by another uid is refused: its toolchain list is not used" \
	test "$tc" = "$good"
check "... with one message saying so" test "$(grep -c 'belongs to uid 12345' "$T/err")" = 1
sed 's/^/# /' "$T/err"
chown -R 0:0 "$T/planted"
chmod 770 "$T/planted"
check "a group-writable one is refused too" test "$(explain "$T/planted")" = "$good"

# --- HOME unset, and a uid without a passwd entry: no cache directory rather than /tmp ---
rm -rf /tmp/cachepot-12345
timeout 60 setpriv --reuid 12345 --regid 12345 --clear-groups env -u HOME \
	"$cachepot" --show-stats > "$T/out" 2>"$T/err"
check "HOME unset: nothing is made in /tmp" test ! -e /tmp/cachepot-12345
check "... and the wrapper says it runs without a cache directory" grep -q "no cache directory" "$T/err"
sed 's/^/# /' "$T/err"
