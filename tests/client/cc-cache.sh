#!/bin/sh
# C and C++ compiles cached: tests/client/cc-cache-workspace (a build script compiling three C
# files and one C++ file with the cc crate, headers in csrc/ and one generated in OUT_DIR) built
# through a real cachepotd and cachepot-fs mount.
#   cold: every C/C++ compile is submitted and compiled in the sandbox (the wrapper's C
#   statistics and the daemon's jobs_c_published); cargo clean, warm: every one hits, objects
#   and binary byte-identical, the binary prints the same, the header warning is shown with the
#   local OUT_DIR path; a copy at another path (without target/) hits every one with the same
#   bytes; a changed header misses exactly the two objects that include it; clang (when
#   installed) has its own C part; what is not cacheable runs here with its named reason;
#   --explain shows a C job; with the daemon down a new compile is done here and the build
#   succeeds.
# Cost: about 7 cargo builds of a one-crate workspace (the cc crate and a build script, four
# C/C++ objects each) and one upload of each C part (gcc's with cc1 about 40 MB, cc1plus's 45
# MB): about 1-2 minutes on 2 cores.
. "$top_srcdir/tests/tap.sh"
set -u
find_rustc > /dev/null || skip_all "no rustc"
[ "$(id -u)" = 0 ] || skip_all "needs root (FUSE mount, sandbox cgroups)"
[ -c /dev/fuse ] || skip_all "no /dev/fuse"
command -v cargo > /dev/null || skip_all "no cargo"
command -v cc > /dev/null || skip_all "no cc"
command -v c++ > /dev/null || skip_all "no c++"
[ -d /usr/share/cargo/registry/cc-1.0.73 ] || skip_all "no librust-cc-dev"
tap_plan 42

T=$(mktemp -d /tmp/cachepot-cc-cache.XXXXXX)
chmod 755 "$T"
daemon_pid=""
fs_pid=""
cleanup() {
	[ -n "$daemon_pid" ] && kill "$daemon_pid" 2>/dev/null && wait "$daemon_pid" 2>/dev/null
	fusermount3 -u "$T/mnt" 2>/dev/null || umount -l "$T/mnt" 2>/dev/null
	[ -n "$fs_pid" ] && kill "$fs_pid" 2>/dev/null
	[ -n "${CACHEPOT_TEST_KEEP:-}" ] || rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

unset LIBRARY_PATH COMPILER_PATH GCC_EXEC_PREFIX CC CXX CFLAGS CXXFLAGS RUSTC_WORKSPACE_WRAPPER
C=$(cd "$top_builddir" && pwd)/cachepot
export CARGO_INCREMENTAL=0 CARGO_TERM_COLOR=never
export CACHEPOT_SOCKET="$T/cachepotd.sock" CACHEPOT_MOUNT="$T/mnt" CACHEPOT_CACHE_DIR="$T/cache"
export CACHEPOT_LOG="$T/wrapper.log" RUSTC_WRAPPER="$C"
export CACHEPOT_TRUST="$T/store/key/ed25519.pub"
mkdir -p "$T/mnt"

"$top_builddir/cachepotd" --store "$T/store" --socket "$CACHEPOT_SOCKET" --jobs 2 >> "$T/daemon.log" 2>&1 &
daemon_pid=$!
for _ in $(seq 100); do [ -S "$CACHEPOT_SOCKET" ] && break; sleep 0.1; done
[ -S "$CACHEPOT_SOCKET" ] || bail "cachepotd did not start: $(tail -n 5 "$T/daemon.log")"
"$top_builddir/cachepot-fs" "$T/store" "$T/mnt" -f > "$T/fs.log" 2>&1 &
fs_pid=$!
for _ in $(seq 100); do [ -d "$T/mnt/ac" ] && break; sleep 0.1; done
[ -d "$T/mnt/ac" ] || bail "cachepot-fs did not mount: $(tail -n 5 "$T/fs.log")"

metric() { curl -s --unix-socket "$CACHEPOT_SOCKET" http://d/metrics | awk -v m="cachepotd_$1" '$1 == m { print $2 }'; }
stats() { "$C" --show-stats --json > "$T/stats.json"; }
# cstat NAME: the C/C++ counter NAME; creason NAME: how often the C reason NAME was counted.
cstat() { python3 -c "import json; print(json.load(open('$T/stats.json'))['c']['$1'])"; }
creason() { python3 -c "import json; print(json.load(open('$T/stats.json'))['c']['not_cacheable'].get('$1', 0))"; }
creasons() { python3 -c "import json; j=json.load(open('$T/stats.json'))['c']; print(' '.join('%s=%d' % kv for kv in sorted(j['not_cacheable'].items())))"; }
build() {
	dir=$1; log=$2; shift 2
	"$C" --zero-stats > /dev/null
	(cd "$dir" && cargo build --offline -vv "$@") > "$log" 2>&1
	rc=$?
	stats
	return $rc
}
# The objects the cc crate wrote and the binary, by name under target/debug, with checksums.
sums() { (cd "$1/target/debug" && find build -name '*.o' | sort | xargs sha256sum && sha256sum cc-cache-demo); }
objects() { grep '\.o$' "$1"; }
diag() { grep -E 'error|warning: cachepot|panicked' "$1" | head -n 10 | sed 's/^/# /'; tail -n 5 "$T/daemon.log" | sed 's/^/# daemon: /'; }
want="squares 385 cubes 3025 mixed 3802 triangle 55"

cp -r "$top_srcdir/tests/client/cc-cache-workspace" "$T/w1"
chmod -R u+w "$T/w1"
if build "$T/w1" "$T/cold.log"; then ok "cold build"; else not_ok "cold build"; diag "$T/cold.log"; fi
check "cold: the cc crate ran its compilers through cachepot" grep -q "running: \"$C\" \"cc\"" "$T/cold.log"
check "cold: 4 C/C++ compiles missed and were compiled in the sandbox ($(cstat misses)), no fallback ($(cstat fallbacks)), nothing refused ($(creasons))" \
	test "$(cstat misses)" -eq 4 -a "$(cstat fallbacks)" -eq 0 -a "$(cstat hits)" -eq 0 -a -z "$(creasons)"
check "cold: the daemon published them as C jobs ($(metric jobs_c_published_total))" test "$(metric jobs_c_published_total)" -eq 4
# The binary links -l stdc++, a library outside the mapped roots: it is linked here (reason
# "link"); the cc crate and the build script are compiled in the sandbox.
check "cold: the rust units went through the cache too ($(python3 -c "import json; print(json.load(open('$T/stats.json'))['misses'])"))" \
	test "$(python3 -c "import json; print(json.load(open('$T/stats.json'))['misses'])")" -ge 2
out=$("$T/w1/target/debug/cc-cache-demo")
check "cold: the binary prints \"$out\"" test "$out" = "$want"
sums "$T/w1" > "$T/sums-cold"
check "cold: four objects" test "$(grep -c '\.o$' "$T/sums-cold")" -eq 4
outdir=$(dirname "$(find "$T/w1/target/debug/build" -name generated.h | head -n 1)")
check "cold: the warning in the generated header names its local path" \
	grep -q "$outdir/generated.h:.*generated_unused" "$T/cold.log"

(cd "$T/w1" && cargo clean)
if build "$T/w1" "$T/warm.log"; then ok "warm build after cargo clean"; else not_ok "warm build"; diag "$T/warm.log"; fi
check "warm: every C/C++ object hits ($(cstat hits)), no miss ($(cstat misses)), no fallback ($(cstat fallbacks))" \
	test "$(cstat hits)" -eq 4 -a "$(cstat misses)" -eq 0 -a "$(cstat fallbacks)" -eq 0
sums "$T/w1" > "$T/sums-warm"
check "warm: objects and binary byte-identical to the cold build's" cmp -s "$T/sums-cold" "$T/sums-warm"
check "warm: the binary prints the same" test "$("$T/w1/target/debug/cc-cache-demo")" = "$want"
check "warm: the replayed warning names the local path, no canonical path in the build output" \
	sh -c "grep -q '$outdir/generated.h:.*generated_unused' '$T/warm.log' && ! grep -q '/cachepot/' '$T/warm.log'"
check "warm: the hits are in the log with their split" \
	test "$(grep -c '^[0-9]* hit .* csrc/.* preprocess ' "$T/wrapper.log")" -ge 4

# A copy at another path, without target/.
mkdir -p "$T/elsewhere/deeper"
cp -r "$top_srcdir/tests/client/cc-cache-workspace" "$T/elsewhere/deeper/w2"
chmod -R u+w "$T/elsewhere/deeper/w2"
if build "$T/elsewhere/deeper/w2" "$T/copy.log"; then ok "a copy at another path builds"; else not_ok "copy build"; diag "$T/copy.log"; fi
check "copy: every C/C++ object hits ($(cstat hits)), no miss ($(cstat misses))" \
	test "$(cstat hits)" -eq 4 -a "$(cstat misses)" -eq 0 -a "$(cstat fallbacks)" -eq 0
sums "$T/elsewhere/deeper/w2" > "$T/sums-copy"
objects "$T/sums-cold" > "$T/objects-cold"
objects "$T/sums-copy" > "$T/objects-copy"
check "copy: the objects are byte-identical to the first checkout's" cmp -s "$T/objects-cold" "$T/objects-copy"
check "copy: the binary prints the same" test "$("$T/elsewhere/deeper/w2/target/debug/cc-cache-demo")" = "$want"
outdir2=$(dirname "$(find "$T/elsewhere/deeper/w2/target/debug/build" -name generated.h | head -n 1)")
check "copy: the warning names the copy's own OUT_DIR" grep -q "$outdir2/generated.h:.*generated_unused" "$T/copy.log"

# A changed header: the two objects that include cubes.h (and use what changed) miss, the
# others hit. (A change that leaves a preprocessed unit as it was, such as a comment or a macro
# the unit never expands, hits: the key is the unit's.)
sed -i 's/#define CUBES_BONUS 0/#define CUBES_BONUS 1/' "$T/w1/csrc/cubes.h"
log_lines=$(wc -l < "$T/wrapper.log")
if build "$T/w1" "$T/header.log"; then ok "build after changing cubes.h"; else not_ok "header build"; diag "$T/header.log"; fi
check "changed header: cubes.c and mix.c miss ($(cstat misses)), squares.c and triangle.cpp hit ($(cstat hits))" \
	test "$(cstat misses)" -eq 2 -a "$(cstat hits)" -eq 2 -a "$(cstat fallbacks)" -eq 0
check "changed header: the misses are the files that include it" \
	sh -c "test \$(tail -n +$((log_lines + 1)) '$T/wrapper.log' | grep -c -E ' miss [0-9a-f]+ csrc/(cubes|mix)\\.c ') -eq 2"
check "changed header: the binary prints the new sums" \
	test "$("$T/w1/target/debug/cc-cache-demo")" = "squares 385 cubes 3026 mixed 3802 triangle 55"

# clang has a C part of its own.
if command -v clang > /dev/null && command -v clang++ > /dev/null; then
	(cd "$T/w1" && cargo clean)
	CC=clang CXX=clang++ build "$T/w1" "$T/clang.log"; check "clang: the build succeeds" test $? -eq 0
	check "clang: its 4 compiles missed and were compiled in the sandbox ($(cstat misses), fallbacks $(cstat fallbacks))" \
		test "$(cstat misses)" -eq 4 -a "$(cstat fallbacks)" -eq 0
	check "clang: the binary prints the new sums" \
		test "$("$T/w1/target/debug/cc-cache-demo")" = "squares 385 cubes 3026 mixed 3802 triangle 55"
else
	for i in 1 2 3; do ok "# SKIP no clang"; done
fi

# What is not cacheable runs here, with its reason.
mkdir -p "$T/direct" "$T/bin"
cd "$T/direct" || bail "no $T/direct"
printf 'int one(void) { return 1; }\n' > a.c
printf 'int two(void) { return 2; }\n' > b.c
printf 'int main(void) { return 0; }\n' > m.c
"$C" --zero-stats > /dev/null
# nc NAME REASON COMMAND...: cachepot COMMAND exits as COMMAND does, counted under REASON.
nc() {
	name=$1; reason=$2; shift 2
	"$@" > "$T/$name.direct" 2>&1; want_rc=$?
	"$C" "$@" > "$T/$name.wrapped" 2>&1; got_rc=$?
	stats
	check "$name: runs here (status $got_rc, as $want_rc), counted as $reason ($(creasons))" \
		sh -c "test $got_rc -eq $want_rc && cmp -s '$T/$name.direct' '$T/$name.wrapped' && test $(creason "$reason") -ge 1"
}
nc "-E" preprocess-only cc -E a.c -o a.i
nc "two sources" multiple-sources cc -c a.c b.c
nc "a link" not-a-compile cc m.c -o m
nc "-march=native" native-cpu cc -march=native -c a.c -o a.o
nc "an unknown flag" unknown-flag cc -Zno-such-flag -c a.c -o a.o
nc "-frecord-gcc-switches" unsupported-option cc -frecord-gcc-switches -c a.c -o a.o
nc "assembly" language cc -c -x assembler /dev/null -o s.o
# A driver that is a script cannot be collected: the sandbox would have no shell to run it.
printf '#!/bin/sh\nexec /usr/bin/gcc "$@"\n' > "$T/bin/gcc"
chmod +x "$T/bin/gcc"
nc "a compiler that cannot be collected (a script)" toolchain "$T/bin/gcc" -c a.c -o a.o
check "the reasons are in the log" grep -q 'not cacheable (native-cpu: -march=native)' "$T/wrapper.log"
"$C" --show-stats > "$T/show.txt"
check "--show-stats shows C/C++ compiles apart" sh -c "grep -q '^C/C++ compiles' '$T/show.txt' && grep -q '^    native-cpu  *1' '$T/show.txt'"

# --explain on a C command line.
"$C" --explain cc -O2 -c a.c -o e.o > "$T/explain.json" 2> "$T/explain.err"
check "--explain cc -c: a cacheable C job over the C part" python3 -c "
import json; j = json.load(open('$T/explain.json'))
assert j['kind'] == 'c' and j['cacheable'] and len(j['key']) == 64, j
assert j['argv'][0] == '/usr/bin/cc' and '-O2' in j['argv'] and j['argv'][-2:] == ['-o', '/cachepot/out/e.o'], j['argv']
assert [i['path'] for i in j['inputs']] == ['/cachepot/unit/a.i'], j['inputs']
assert any(f['rel'].endswith('/cc1') for f in j['c_toolchain']['files'])"
"$C" --explain cc -E a.c > "$T/explain2.json"
check "--explain cc -E: not cacheable, preprocess-only" python3 -c "
import json; j = json.load(open('$T/explain2.json')); assert not j['cacheable'] and j['reason'] == 'preprocess-only', j"
check "--explain compiled nothing" sh -c "! test -e e.o"

# The daemon down: a compile that misses is done here; the build succeeds.
kill "$daemon_pid"; wait "$daemon_pid" 2>/dev/null; daemon_pid=""
printf 'unsigned squares_changed(void) { return 1; }\n' >> "$T/w1/csrc/squares.c"
if build "$T/w1" "$T/down.log"; then ok "daemon down: the build succeeds"; else not_ok "daemon down build"; diag "$T/down.log"; fi
check "daemon down: the missed compile fell back to the local compiler ($(cstat fallbacks)), the rest hit ($(cstat hits))" \
	test "$(cstat fallbacks)" -eq 1 -a "$(cstat hits)" -eq 3
check "daemon down: the binary runs" test "$("$T/w1/target/debug/cc-cache-demo")" = "squares 385 cubes 3026 mixed 3802 triangle 55"
