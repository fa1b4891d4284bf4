#!/bin/sh
# cachepot runs what is not a rustc exactly as the shell would. The cc crate, seeing a
# RUSTC_WRAPPER named cachepot, runs `cachepot cc -c foo.c ...`: that must behave as `cc` does.
#   direct: `cachepot cc|/usr/bin/cc|c++|clang ...` against the compiler run directly (stdout,
#   stderr, exit status, objects), stdin, argv (argv[0] included) and the environment passed
#   through, no fork, no statistics or log written for a program that is no compiler, the
#   shell's 127/126 for a missing or
#   non-executable program;
#   cargo: tests/client/cc-workspace (a build script compiling C and C++ with the cc crate)
#   built through cachepot with no daemon, with CC/CXX as absolute paths, with clang, and with
#   a real cachepotd and mount (root and FUSE only); each build succeeds, the cc crate ran its
#   compiler through cachepot, and the binary prints what the C and C++ code computed.
. "$top_srcdir/tests/tap.sh"
set -u
find_rustc > /dev/null || skip_all "no rustc"
command -v cargo > /dev/null || skip_all "no cargo"
command -v cc > /dev/null || skip_all "no C compiler"
[ -d /usr/share/cargo/registry/cc-1.0.73 ] || skip_all "no librust-cc-dev"
tap_plan 30

T=$(mktemp -d /tmp/cachepot-cc.XXXXXX)
chmod 755 "$T"
daemon_pid=""
fs_pid=""
cleanup() {
	[ -n "$daemon_pid" ] && kill "$daemon_pid" 2>/dev/null && wait "$daemon_pid" 2>/dev/null
	[ -n "$fs_pid" ] && { fusermount3 -u "$T/mnt" 2>/dev/null || umount -l "$T/mnt" 2>/dev/null; }
	[ -n "$fs_pid" ] && kill "$fs_pid" 2>/dev/null
	[ -n "${CACHEPOT_TEST_KEEP:-}" ] || rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

B=$(cd "$top_builddir" && pwd)
C=$B/cachepot
workspace=$(cd "$top_srcdir/tests/client/cc-workspace" && pwd)
export CACHEPOT_SOCKET="$T/cachepotd.sock" CACHEPOT_MOUNT="$T/mnt" CACHEPOT_CACHE_DIR="$T/cache"
# Hits are taken only with a manifest signed by the store's key, pinned here.
export CACHEPOT_TRUST="$T/store/key/ed25519.pub"
export CACHEPOT_LOG="$T/wrapper.log" CARGO_TERM_COLOR=never CARGO_INCREMENTAL=0
unset CC CXX CFLAGS CXXFLAGS RUSTC_WORKSPACE_WRAPPER
mkdir -p "$T/mnt" "$T/run"
cd "$T/run" || bail "no $T/run"

# same NAME STDIN COMMAND...: COMMAND and `cachepot COMMAND` give the same stdout, stderr and
# exit status (stdin from the file STDIN), and write the same files named in $same_files. A
# compile cachepot could cache finds no cache here (no mount, no pinned key yet) and runs
# locally after its warning lines (tests/client/cc-cache.sh has the cache), which are left out
# of the comparison.
same_files=""
same() {
	name=$1; input=$2; shift 2
	"$@" < "$input" > "$T/$name.out.direct" 2> "$T/$name.err.direct"
	echo $? > "$T/$name.rc.direct"
	for f in $same_files; do mv "$f" "$f.direct" 2>/dev/null; done
	"$C" "$@" < "$input" > "$T/$name.out.wrapped" 2> "$T/$name.err.all"
	echo $? > "$T/$name.rc.wrapped"
	grep -v '^cachepot: warning: ' "$T/$name.err.all" > "$T/$name.err.wrapped"
	for kind in out err rc; do
		if ! cmp -s "$T/$name.$kind.direct" "$T/$name.$kind.wrapped"; then
			diff "$T/$name.$kind.direct" "$T/$name.$kind.wrapped" | head -n 5 | sed 's/^/# /'
			return 1
		fi
	done
	for f in $same_files; do cmp -s "$f.direct" "$f" || return 1; done
}

# --- direct runs ---
check "cachepot cc --version is cc --version (stdout, stderr, status)" same version /dev/null cc --version
check "cachepot cc with no input fails as cc does, naming cc" same noinput /dev/null cc
printf 'int broken(void) { return }\n' > bad.c
check "cachepot /usr/bin/cc -c bad.c fails as /usr/bin/cc does (stderr, status $(/usr/bin/cc -c bad.c -o bad.o 2>/dev/null; echo $?))" \
	same bad /dev/null /usr/bin/cc -c bad.c -o bad.o
printf 'int x = 42;\nint get(void) { return x; }\n' > in.c
same_files=t.o
check "stdin passes through: cachepot cc -x c -c - writes the same object" same stdin in.c cc -x c -c - -o t.o
if command -v c++ > /dev/null; then
	printf '#include <vector>\nint n() { return std::vector<int>(3).size(); }\n' > in.cpp
	check "cachepot c++ -x c++ -c - writes the same object" same cxx in.cpp c++ -x c++ -c - -o t.o
else
	ok "# SKIP no c++"
fi
same_files=""
if command -v clang > /dev/null; then
	check "cachepot clang --version is clang --version" same clang /dev/null clang --version
else
	ok "# SKIP no clang"
fi
# C and C++ compilers count their runs (cacheable or not) in the statistics; other programs
# leave no trace at all, checked below.
rm -rf "$CACHEPOT_LOG" "$CACHEPOT_CACHE_DIR"
check "argv passes through as given, argv[0] included" \
	same argv /dev/null sh -c 'printf "[%s]" "$0" "$@"; cat /proc/$$/cmdline' zero 'a b' '' "'"
check "the environment passes through unchanged" same env /dev/null env ODD_VALUE='a b
c' EMPTY_VALUE=
check "the exit status passes through (7)" sh -c "'$C' sh -c 'exit 7'; test \$? -eq 7"
pids=$(sh -c 'echo $$; exec "$0" sh -c "echo \$\$"' "$C" | sort -u | wc -l)
check "no fork: the program runs in cachepot's process" test "$pids" -eq 1
check "no log line and no statistics for a program that is neither a rustc nor a C compiler" \
	sh -c "test ! -e '$CACHEPOT_LOG' && test ! -e '$CACHEPOT_CACHE_DIR'"
"$C" no-such-compiler-cachepot > /dev/null 2> "$T/nf.err"
rc=$?
check "a program in no PATH directory: 127, command not found ($rc)" \
	sh -c "test $rc -eq 127 && grep -q 'no-such-compiler-cachepot: command not found' '$T/nf.err'"
"$C" /nonexistent/cc > /dev/null 2>&1
check "a missing absolute path: 127" test $? -eq 127
mkdir -p "$T/bin" "$T/bin2"
printf '#!/bin/sh\necho first\n' > "$T/bin/first-tool"
printf '#!/bin/sh\necho second\n' > "$T/bin2/first-tool"
chmod +x "$T/bin2/first-tool"
check "the PATH search skips a file that is not executable" \
	sh -c "test \"\$(PATH='$T/bin:$T/bin2:$PATH' '$C' first-tool)\" = second"
chmod -x "$T/bin2/first-tool"
PATH="$T/bin:$T/bin2:$PATH" "$C" first-tool > /dev/null 2>&1
check "only non-executable files: 126" test $? -eq 126
printf 'echo no shebang "$@"\n' > "$T/bin/plain-script"
chmod +x "$T/bin/plain-script"
check "a script without #! runs through sh, as execvp does" \
	sh -c "test \"\$(PATH='$T/bin:$PATH' '$C' plain-script x)\" = 'no shebang x'"

# --- cargo builds of the cc workspace ---
export RUSTC_WRAPPER="$C"
want="squares 385 triangle 55"
command -v c++ > /dev/null || { export CACHEPOT_TEST_CXX=0; want="squares 385"; }
cp -r "$workspace" "$T/w"
chmod -R u+w "$T/w"
diag() { grep -E 'error|panicked|cachepot:' "$1" | head -n 10 | sed 's/^/# /'; }
# cargo_build LOG DESCRIPTION CC-NAME [clean]: a build that runs the build script again (a C
# source touched; with "clean", everything); checks it succeeds, that the cc crate ran CC-NAME
# through cachepot, and what the binary prints.
cargo_build() {
	log=$1; what=$2; cc_name=$3
	if [ "${4:-}" = clean ]; then (cd "$T/w" && cargo clean -q); fi
	touch "$T/w/csrc/squares.c"
	(cd "$T/w" && cargo build --offline -vv) > "$log" 2>&1
	if [ $? -eq 0 ]; then ok "$what: cargo build succeeds"; else not_ok "$what: cargo build"; diag "$log"; fi
	check "$what: the cc crate compiled through cachepot ($cc_name)" \
		grep -q "running: \"$C\" \"$cc_name\"" "$log"
	out=$("$T/w/target/debug/cc-demo" 2>&1)
	check "$what: the binary prints \"$out\"" test "$out" = "$want"
}
cargo_build "$T/nodaemon.log" "no daemon" cc
check "no daemon: no compiler was taken for a rustc" sh -c "! grep -q 'cachepot: cannot run\|cachepot: .*: command not found' '$T/nodaemon.log'"
# cc 1.0.73 takes a CC that is an existing path as is, without RUSTC_WRAPPER; it is given the
# wrapper by name, as CC="cachepot /usr/bin/gcc".
CC="$C /usr/bin/gcc" CXX="$C /usr/bin/g++" cargo_build "$T/abs.log" "CC=cachepot /usr/bin/gcc" /usr/bin/gcc
if command -v clang > /dev/null && command -v clang++ > /dev/null; then
	CC=clang CXX=clang++ cargo_build "$T/clang.log" "CC=clang" clang
else
	for i in 1 2 3; do ok "# SKIP no clang"; done
fi

if [ "$(id -u)" != 0 ] || [ ! -c /dev/fuse ]; then
	for i in 1 2 3 4; do ok "# SKIP the daemon needs root and /dev/fuse"; done
	exit 0
fi
"$B/cachepotd" --store "$T/store" --socket "$CACHEPOT_SOCKET" --jobs 2 >> "$T/daemon.log" 2>&1 &
daemon_pid=$!
for _ in $(seq 100); do [ -S "$CACHEPOT_SOCKET" ] && break; sleep 0.1; done
[ -S "$CACHEPOT_SOCKET" ] || bail "cachepotd did not start: $(tail -n 5 "$T/daemon.log")"
"$B/cachepot-fs" "$T/store" "$T/mnt" -f > "$T/fs.log" 2>&1 &
fs_pid=$!
for _ in $(seq 100); do [ -d "$T/mnt/ac" ] && break; sleep 0.1; done
[ -d "$T/mnt/ac" ] || bail "cachepot-fs did not mount: $(tail -n 5 "$T/fs.log")"
"$C" --zero-stats > /dev/null
cargo_build "$T/daemon.log.build" "daemon up" cc clean
misses=$("$C" --show-stats --json | python3 -c 'import json,sys; j=json.load(sys.stdin); print(j["misses"], j["fallbacks"])')
check "daemon up: the rust crates compiled through the cache (misses, fallbacks: $misses)" \
	sh -c "set -- $misses; test \$1 -ge 1 -a \$2 -eq 0"
