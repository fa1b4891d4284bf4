#!/bin/sh
# make-toolchain.sh builds a tree as sandbox/sandbox.h's toolchain tree says, concurrent callers
# agree, and the contract's bwrap command line runs its rustc with nothing else of the host.
. "$top_srcdir/tests/tap.sh"
[ "$(id -u)" = 0 ] || skip_all "needs root"
command -v bwrap >/dev/null || skip_all "no bwrap"
find_rustc >/dev/null || skip_all "no rustc"
tap_plan 7

tmp=$(mktemp -d "$top_builddir/tests/sandbox/toolchain-test.XXXXXX")
trap 'rm -rf "$tmp"' EXIT INT TERM
mk=$top_srcdir/tests/sandbox/make-toolchain.sh

# three builders at once, into the same DEST
( timeout 300 "$mk" "$tmp/tree" >"$tmp/a" 2>"$tmp/a.err" & timeout 300 "$mk" "$tmp/tree" >"$tmp/b" 2>"$tmp/b.err" &
  timeout 300 "$mk" "$tmp/tree" >"$tmp/c" 2>"$tmp/c.err" & wait )
for f in a b c; do sed "s/^/# $f: /" "$tmp/$f"; done
check "three concurrent builds all report the tree" \
	test "$(cat "$tmp/a" "$tmp/b" "$tmp/c")" = "$(printf '%s\n%s\n%s' "$tmp/tree" "$tmp/tree" "$tmp/tree")"
check "no temporary directory left" test -z "$(find "$tmp" -maxdepth 1 -name 'tree.tmp.*')"
check "regular files and directories only" test -z "$(find "$tmp/tree" ! -type f ! -type d)"
check "modes are 0644 or 0755 only" \
	test -z "$(find "$tmp/tree" ! -perm 0644 ! -perm 0755)"
host=$("$tmp/tree/rust/bin/rustc" -vV | sed -n 's/^host: //p')
check "rustc, its libraries, the loader and libc are in place" test -f "$tmp/tree/rust/bin/rustc" -a \
	-f "$tmp/tree/usr/lib64/ld-linux-x86-64.so.2" -a -f "$tmp/tree/usr/lib/x86_64-linux-gnu/libc.so.6" -a \
	-n "$(ls "$tmp/tree/rust/lib/"librustc_driver-*.so)" -a \
	-n "$(ls "$tmp/tree/rust/lib/rustlib/$host/lib/"libstd-*.rlib)"
out=$(timeout 60 bwrap --unshare-all --ro-bind "$tmp/tree/rust" /rust --ro-bind "$tmp/tree/usr" /usr \
	--symlink usr/lib /lib --symlink usr/lib64 /lib64 --proc /proc --dev /dev --tmpfs /tmp \
	/rust/bin/rustc -vV 2>&1)
check "the contract's bwrap root runs rustc -vV" test "$(echo "$out" | sed -n 's/^host: //p')" = "$host"
before=$(find "$tmp/tree" -printf '%p %s %T@\n' | sort | md5sum)
"$mk" "$tmp/tree" >/dev/null
check "a second call keeps the tree as it is" test "$(find "$tmp/tree" -printf '%p %s %T@\n' | sort | md5sum)" = "$before"
