#!/bin/sh
# The key moves with every input rustc reads and with nothing else: a one-byte change to a
# source file, an include_str! file, a direct and a transitive rmeta/rlib, an env! variable and
# the toolchain each change it; a copy of the workspace at another path and an unrelated
# variable do not. Real rustc, real crates (a three-crate chain built here), cachepot --explain.
. "$top_srcdir/tests/tap.sh"
set -u
tap_plan 13
rustc=$(find_rustc) || skip_all "no rustc"
cachepot="$top_builddir/cachepot"
T=$(mktemp -d /tmp/cachepot-keys.XXXXXX)
trap 'rm -rf "$T"' EXIT INT TERM
export CACHEPOT_CACHE_DIR="$T/cache"
unset CARGO_HOME OUT_DIR
export KT_VAR=v1

ws="$T/one/ws"
D=target/debug/deps
mkdir -p "$ws/c/src" "$ws/b/src" "$ws/a/src" "$ws/$D"
touch "$ws/target/CACHEDIR.TAG"
echo 'pub fn c() -> u32 { 7 }' > "$ws/c/src/lib.rs"
echo 'pub fn b() -> u32 { c::c() + 1 } pub use c::c as cc;' > "$ws/b/src/lib.rs"
printf 'pub const S: &str = include_str!("data.txt");\npub const E: &str = env!("KT_VAR");\npub fn a() -> u32 { b::b() + b::cc() + 10 }\n' > "$ws/a/src/lib.rs"
echo hello > "$ws/a/src/data.txt"
(cd "$ws" &&
 "$rustc" --crate-name c --edition 2021 c/src/lib.rs --crate-type lib --emit=dep-info,metadata,link \
	-C extra-filename=-c1 --out-dir $D -L dependency=$D &&
 "$rustc" --crate-name b --edition 2021 b/src/lib.rs --crate-type lib --emit=dep-info,metadata,link \
	-C extra-filename=-b1 --out-dir $D -L dependency=$D --extern c=$D/libc-c1.rmeta) \
	|| bail "cannot build the fixture crates"

# key [RUSTC [EXTERN]]: the key of compiling crate a in $ws ("" when not cacheable).
key() {
	r=${1:-$rustc}
	ext=${2:-libb-b1.rmeta}
	(cd "$ws" && "$cachepot" --explain "$r" --crate-name a --edition 2021 a/src/lib.rs --crate-type lib \
		--emit=dep-info,metadata,link -C extra-filename=-a1 --out-dir $D -L dependency=$D \
		--extern b=$D/$ext) | python3 -c 'import json,sys; j=json.load(sys.stdin); print(j["key"] or "")'
}
# A key is 64 lowercase hex digits. A change is two such keys that differ, a sameness two that
# are equal: an empty or malformed key (not cacheable, a failed --explain, a changed JSON field)
# is neither, so no check below passes because key() printed nothing.
well_formed() { printf '%s' "$1" | grep -Eqx '[0-9a-f]{64}'; }
differs() { well_formed "$1" && well_formed "$2" && [ "$1" != "$2" ]; }
same() { well_formed "$1" && well_formed "$2" && [ "$1" = "$2" ]; }

# flip FILE: change one byte in the middle of FILE; unflip FILE restores it.
flip() { cp "$1" "$1.orig"; python3 -c 'import sys
p=sys.argv[1]; b=bytearray(open(p,"rb").read()); b[len(b)//2]^=1; open(p,"wb").write(b)' "$1"; }
unflip() { mv "$1.orig" "$1"; }

k0=$(key)
check "a cacheable key for the fixture ($k0)" well_formed "$k0"
check "the key is stable" same "$(key)" "$k0"

cp "$ws/a/src/lib.rs" "$ws/a/src/lib.rs.orig"; sed -i 's/+ 10 }/+ 11 }/' "$ws/a/src/lib.rs"
k=$(key); unflip "$ws/a/src/lib.rs"
check "one byte of a source file changes the key" differs "$k" "$k0"
flip "$ws/a/src/data.txt"; k=$(key); unflip "$ws/a/src/data.txt"
check "one byte of an include_str! file changes the key" differs "$k" "$k0"
flip "$ws/$D/libb-b1.rmeta"; k=$(key); unflip "$ws/$D/libb-b1.rmeta"
check "one byte of the direct rmeta changes the key" differs "$k" "$k0"
flip "$ws/$D/libc-c1.rmeta"; k=$(key); unflip "$ws/$D/libc-c1.rmeta"
check "one byte of the transitive rmeta changes the key" differs "$k" "$k0"

# Against rlibs: which file of c rustc loads is whatever the dep-info pass says.
kr=$(key "$rustc" libb-b1.rlib)
trans=$(cd "$ws" && "$cachepot" --explain "$rustc" --crate-name a --edition 2021 a/src/lib.rs --crate-type lib \
	--emit=dep-info,metadata,link -C extra-filename=-a1 --out-dir $D -L dependency=$D \
	--extern b=$D/libb-b1.rlib | python3 -c 'import json,sys
for i in json.load(sys.stdin)["inputs"]:
    if "libc-c1" in i["path"]: print(i["path"].replace("/cachepot/target/", "target/"))')
flip "$ws/$D/libb-b1.rlib"; k=$(key "$rustc" libb-b1.rlib); unflip "$ws/$D/libb-b1.rlib"
check "one byte of the direct rlib changes the key" differs "$k" "$kr"
if [ -n "$trans" ] && [ -f "$ws/$trans" ]; then
	flip "$ws/$trans"; k=$(key "$rustc" libb-b1.rlib); unflip "$ws/$trans"
	check "one byte of the transitive crate file ($trans) changes the key" differs "$k" "$kr"
else
	not_ok "the transitive crate file is an input (got '$trans')"
fi

k=$(KT_VAR=v2 key)
check "an env! variable changes the key" differs "$k" "$k0"
k=$(UNRELATED_VARIABLE=x key)
check "an unrelated variable does not" same "$k" "$k0"

cp -a "$T/one" "$T/another-place"
k=$(ws="$T/another-place/ws" key)
check "a copy of the workspace at another path has the same key" same "$k" "$k0"

# A toolchain that differs in one byte of one sysroot file: a hard-linked copy of the
# sysroot with that one file replaced.
sysroot=$(dirname "$(dirname "$rustc")")
cp -al "$sysroot" "$T/sysroot" 2>/dev/null || cp -a "$sysroot" "$T/sysroot"
f=$(ls "$T"/sysroot/lib/rustlib/*/lib/libcfg_if-*.rlib | head -n 1)
cp "$f" "$f.new" && rm "$f" && mv "$f.new" "$f" && flip "$f" && rm "$f.orig"
k=$(key "$T/sysroot/bin/rustc")
check "a toolchain differing in one file changes the key" differs "$k" "$k0"
rm -f "$f"
cp "$(ls "$sysroot"/lib/rustlib/*/lib/libcfg_if-*.rlib | head -n 1)" "$f"
k=$(key "$T/sysroot/bin/rustc")
check "the same toolchain at another path has the same key" same "$k" "$k0"
