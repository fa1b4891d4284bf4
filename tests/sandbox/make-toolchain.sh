#!/bin/sh
# make-toolchain.sh DEST: build a toolchain tree (sandbox/sandbox.h says what it holds) from the
# machine's rustc at DEST, for the tests:
#   DEST/rust/bin/rustc, DEST/rust/lib/*.so*, DEST/rust/lib/rustlib/<host>/lib/*
#   DEST/usr/<dir of realpath>/<name ldd prints> for the ldd closure of rustc and rust/lib/*.so*
#   DEST/usr/lib64/ld-linux-x86-64.so.2
# Regular files (cp -L) and directories only, modes 0644/0755.
#
# Idempotent and safe to call from several tests at once: an existing DEST is complete (it is
# built in a temporary directory beside it and renamed into place), and builders serialise on
# an flock of DEST.lock. Prints DEST on success. RUSTC overrides the rustc to copy (default:
# the real binary of /root/.cargo/bin/rustc's sysroot).
set -eu
# rustc would warn about a jobserver it cannot use when run under make
unset MAKEFLAGS MFLAGS CARGO_MAKEFLAGS

[ $# -eq 1 ] || { echo "usage: $0 DEST" >&2; exit 2; }
dest=$1
case $dest in /*) ;; *) dest=$(pwd)/$dest ;; esac
parent=$(dirname "$dest")
mkdir -p "$parent"

exec 9>"$dest.lock"
flock 9
if [ -d "$dest" ]; then
	echo "$dest"
	exit 0
fi

PATH="/root/.cargo/bin:$PATH"
if [ -z "${RUSTC:-}" ]; then
	sysroot=$(rustc --print sysroot)
	RUSTC=$sysroot/bin/rustc
else
	sysroot=$("$RUSTC" --print sysroot)
fi
host=$("$RUSTC" -vV | sed -n 's/^host: //p')
[ -n "$host" ] || { echo "$0: no host target from $RUSTC -vV" >&2; exit 1; }

tmp=$(mktemp -d "$dest.tmp.XXXXXX")
trap 'rm -rf "$tmp"' EXIT INT TERM

mkdir -p "$tmp/rust/bin" "$tmp/rust/lib/rustlib/$host/lib"
cp -L "$RUSTC" "$tmp/rust/bin/rustc"
for f in "$sysroot"/lib/*.so*; do
	[ -f "$f" ] && cp -L "$f" "$tmp/rust/lib/"
done
# rustlib/<host>/lib: the sysroot's rlibs, rmetas and .so (subdirectories too, e.g. self-contained)
cp -RL "$sysroot/lib/rustlib/$host/lib/." "$tmp/rust/lib/rustlib/$host/lib/"

# The ldd closure. ldd already resolves transitively; libraries that live in the sysroot are in
# rust/lib already. A line is "name => /path (addr)" or "/lib64/ld-linux-x86-64.so.2 (addr)".
{
	ldd "$tmp/rust/bin/rustc"
	for f in "$tmp"/rust/lib/*.so*; do
		case $(head -c 4 "$f" | od -An -c | tr -d ' ') in
		177ELF) ldd "$f" ;;
		esac
	done
} | while read -r name arrow path _; do
	if [ "$arrow" = "=>" ]; then
		case $path in /*) ;; *) continue ;; esac # "not found", vdso
		real=$(realpath "$path")
		case $real in "$sysroot"/* | "$tmp"/*) continue ;; esac
		dir=$(dirname "$real")
		case $dir in /usr/*) sub=${dir#/usr/} ;; *) sub=${dir#/} ;; esac
		mkdir -p "$tmp/usr/$sub"
		[ -e "$tmp/usr/$sub/$name" ] || cp -L "$path" "$tmp/usr/$sub/$name"
	else
		case $name in
		*/ld-linux*)
			mkdir -p "$tmp/usr/lib64"
			[ -e "$tmp/usr/lib64/$(basename "$name")" ] ||
				cp -L "$name" "$tmp/usr/lib64/$(basename "$name")"
			;;
		esac
	fi
done

[ -f "$tmp/usr/lib64/ld-linux-x86-64.so.2" ] || { echo "$0: no dynamic loader found" >&2; exit 1; }

# Modes: 0755 for directories and files with any execute bit, 0644 for the rest.
find "$tmp" -type d -exec chmod 0755 {} +
find "$tmp" -type f -perm /111 -exec chmod 0755 {} +
find "$tmp" -type f ! -perm /111 -exec chmod 0644 {} +
if [ -n "$(find "$tmp" ! -type f ! -type d)" ]; then
	echo "$0: non-regular files in the tree" >&2
	exit 1
fi
chmod 0755 "$tmp"

mv -T "$tmp" "$dest"
trap - EXIT INT TERM
echo "$dest"
