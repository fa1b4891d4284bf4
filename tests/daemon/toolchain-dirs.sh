#!/bin/sh
# Directories in an uploaded toolchain: the id covers files only, so an archive that adds an
# empty directory to a tree (which every sandbox would then see) must be refused under the
# tree's id, leaving nothing in toolchains/; the same tree without it is accepted.
. "$top_srcdir/tests/tap.sh"
. "$top_srcdir/tests/daemon/lib.sh"

[ "$(id -u)" = 0 ] || skip_all "needs root (cachepotd)"
command -v jq >/dev/null || skip_all "needs jq"

tap_plan 5
daemon_setup
tree="$T/tree"
mkdir -p "$tree/rust/bin" "$tree/usr/lib64"
echo rustc > "$tree/rust/bin/rustc"
chmod 755 "$tree/rust/bin/rustc"
echo ld > "$tree/usr/lib64/ld-linux-x86-64.so.2"
TC=$("$HELPER" toolchain-id "$tree") || bail "toolchain id"
daemon_start --jobs 1 || bail "cachepotd did not start"

mkdir -p "$tree/usr/share/planted"
code=$(timeout 60 tar -C "$tree" -cf - rust usr | api PUT /v1/toolchains/$TC -T - -H 'Content-Type: application/x-tar')
check "an archive with an empty directory beside the tree's files: 400 ($(jq -r .error "$T/body" | cut -c1-90))" \
	[ "$code" = 400 ]
check "... nothing kept in toolchains/" [ -z "$(ls -A "$STORE/toolchains")" ]
rmdir "$tree/usr/share/planted" "$tree/usr/share"
code=$(timeout 60 tar -C "$tree" -cf - rust usr | api PUT /v1/toolchains/$TC -T - -H 'Content-Type: application/x-tar')
check "the same tree without it: 201" [ "$code" = 201 ]
check "... and only its directories are in the store" \
	[ "$(cd "$STORE/toolchains/$TC" && find . -type d | sort | tr '\n' ' ')" = ". ./rust ./rust/bin ./usr ./usr/lib64 " ]
check "the daemon stops cleanly" daemon_stop
