#!/bin/sh
# Real cargo builds of the corpus through the whole cache: a real cachepotd (bubblewrap
# sandboxes, its own store), a real cachepot-fs mount, cachepot as RUSTC_WRAPPER.
#   debug: cold build (misses compile in the sandbox), cargo clean, warm build (every cacheable
#   invocation hits, rlibs byte-identical, the binary prints the same), a third build is a
#   no-op, a copy of the workspace at another path hits 100%;
#   release with --message-format=json: cold, warm (no canonical path leaks into cargo's
#   output), a one-line change misses exactly that crate; with the daemon stopped the build
#   still succeeds and the statistics count the fallbacks.
. "$top_srcdir/tests/tap.sh"
set -u
rustc=$(find_rustc) || skip_all "no rustc"
[ "$(id -u)" = 0 ] || skip_all "needs root (FUSE mount, sandbox cgroups)"
[ -c /dev/fuse ] || skip_all "no /dev/fuse"
corpus="$SHARED_DIR/corpus/small"
[ -d "$corpus" ] || skip_all "no corpus"
tap_plan 24

T=$(mktemp -d /tmp/cachepot-cargo.XXXXXX)
# The sandbox runs as nobody and reaches the store's trees through their paths: every parent
# of the store must be searchable by others, and mktemp made this one 0700.
chmod 755 "$T"
daemon_pid=""
fs_pid=""
cleanup() {
	[ -n "$daemon_pid" ] && kill "$daemon_pid" 2>/dev/null && wait "$daemon_pid" 2>/dev/null
	fusermount3 -u "$T/mnt" 2>/dev/null || umount -l "$T/mnt" 2>/dev/null
	[ -n "$fs_pid" ] && kill "$fs_pid" 2>/dev/null
	# CACHEPOT_TEST_KEEP=1 keeps the logs, stores and workspaces for a post-mortem.
	[ -n "${CACHEPOT_TEST_KEEP:-}" ] || rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

# Link units (proc-macros, build scripts, the binary) are cached only when nothing moves the C
# driver's search path; some hosts set LIBRARY_PATH for everyone (tests/client/link-units.sh
# checks that case).
unset LIBRARY_PATH COMPILER_PATH GCC_EXEC_PREFIX
export CACHEPOT_SOCKET="$T/cachepotd.sock" CACHEPOT_MOUNT="$T/mnt" CACHEPOT_CACHE_DIR="$T/cache"
# Hits are taken only with a manifest signed by the store's key, pinned here.
export CACHEPOT_TRUST="$T/store/key/ed25519.pub"
export CACHEPOT_LOG="$T/wrapper.log" RUSTC_WRAPPER="$top_builddir/cachepot"
export CARGO_TERM_COLOR=never
mkdir -p "$T/mnt"

start_daemon() {
	"$top_builddir/cachepotd" --store "$T/store" --socket "$CACHEPOT_SOCKET" --jobs 2 \
		>> "$T/daemon.log" 2>&1 &
	daemon_pid=$!
	for _ in $(seq 100); do [ -S "$CACHEPOT_SOCKET" ] && return 0; sleep 0.1; done
	return 1
}
stop_daemon() { kill "$daemon_pid" 2>/dev/null; wait "$daemon_pid" 2>/dev/null; daemon_pid=""; }
start_daemon || bail "cachepotd did not start: $(tail -n 5 "$T/daemon.log")"
"$top_builddir/cachepot-fs" "$T/store" "$T/mnt" -f > "$T/fs.log" 2>&1 &
fs_pid=$!
for _ in $(seq 100); do [ -d "$T/mnt/ac" ] && break; sleep 0.1; done
[ -d "$T/mnt/ac" ] || bail "cachepot-fs did not mount: $(tail -n 5 "$T/fs.log")"

stat_of() { "$top_builddir/cachepot" --show-stats --json | python3 -c "import json,sys; j=json.load(sys.stdin); print(j['$1'])"; }
# build DIR LOG [cargo args]: a cargo build from zeroed statistics.
build() {
	dir=$1; log=$2; shift 2
	"$top_builddir/cachepot" --zero-stats > /dev/null
	(cd "$dir" && cargo build --offline -v "$@") > "$log" 2>&1
}
# Checksums of the rlibs and rmetas the cache serves: the workspace members are incremental in
# debug builds, so cargo compiles them locally and rustc's incremental output is not
# reproducible across a clean; they are left out.
sums() { (cd "$1" && sha256sum $(ls -1 | grep -E '\.(rlib|rmeta)$' | grep -v '^libbench_small_' | sort)) ; }
diag() { tail -n 15 "$1" | sed 's/^/# /'; tail -n 5 "$T/daemon.log" | sed 's/^/# daemon: /'; }

cp -r "$corpus" "$T/w1"
# --- debug ---
if build "$T/w1" "$T/b1.log"; then ok "cold debug build through the cache"; else not_ok "cold debug build"; diag "$T/b1.log"; fi
misses=$(stat_of misses); fallbacks=$(stat_of fallbacks)
check "cold build: cacheable invocations compiled in the sandbox ($misses misses)" test "$misses" -ge 40
check "cold build: no fallback to local rustc ($fallbacks)" test "$fallbacks" -eq 0
grep -q "warning: cachepot" "$T/b1.log" && diag "$T/b1.log"
sums "$T/w1/target/debug/deps" > "$T/sums1"
"$T/w1/target/debug/bench-small" > "$T/run1" 2>&1
(cd "$T/w1" && cargo clean)

build "$T/w1" "$T/b2.log"; check "warm debug build after cargo clean" test $? -eq 0
hits=$(stat_of hits)
check "warm build: every cacheable invocation hits ($hits of $misses)" test "$hits" -ge 40 -a "$hits" -eq "$misses" -a "$(stat_of misses)" -eq 0 -a "$(stat_of fallbacks)" -eq 0
sums "$T/w1/target/debug/deps" > "$T/sums2"
check "warm build: $(wc -l < "$T/sums1") rlibs and rmetas byte-identical to the cold build's" \
	sh -c "test -s '$T/sums1' && cmp -s '$T/sums1' '$T/sums2'"
"$T/w1/target/debug/bench-small" > "$T/run2" 2>&1
check "warm build: the binary prints the same" cmp -s "$T/run1" "$T/run2"

build "$T/w1" "$T/b3.log"
units=$(grep -c '^ *Fresh ' "$T/b3.log")
check "a third build is a no-op ($units units Fresh, none compiled)" test "$units" -ge 40 -a "$(grep -c -E '^ *(Compiling|Running) ' "$T/b3.log")" -eq 0

mkdir -p "$T/elsewhere/deeper"
cp -r "$corpus" "$T/elsewhere/deeper/w2"
build "$T/elsewhere/deeper/w2" "$T/b4.log"; check "a copy at another path builds" test $? -eq 0
check "the copy hits every cacheable invocation ($(stat_of hits) of $misses)" test "$(stat_of hits)" -ge 40 -a "$(stat_of hits)" -eq "$misses" -a "$(stat_of misses)" -eq 0
check "no canonical path leaks into the copy's build output" sh -c "! grep -q /cachepot/ '$T/b4.log'"
check "dep-info files name local paths" sh -c "grep -l '$T/elsewhere/deeper/w2' '$T'/elsewhere/deeper/w2/target/debug/deps/*.d > /dev/null && ! grep -l /cachepot/ '$T'/elsewhere/deeper/w2/target/debug/deps/*.d"

# --- release, with cargo's JSON messages ---
build "$T/w1" "$T/r1.log" --release --message-format=json; check "cold release build (json messages)" test $? -eq 0
rmisses=$(stat_of misses)
check "release cold: members and dependencies compiled in the sandbox ($rmisses misses, $(stat_of fallbacks) fallbacks)" test "$rmisses" -ge 40 -a "$(stat_of fallbacks)" -eq 0
sums "$T/w1/target/release/deps" > "$T/rsums1"
(cd "$T/w1" && cargo clean --release)
build "$T/w1" "$T/r2.log" --release --message-format=json; check "warm release build (json messages)" test $? -eq 0
check "release warm: every cacheable invocation hits ($(stat_of hits) of $rmisses)" test "$(stat_of hits)" -ge 40 -a "$(stat_of hits)" -eq "$rmisses" -a "$(stat_of misses)" -eq 0
sums "$T/w1/target/release/deps" > "$T/rsums2"
check "release warm: rlibs byte-identical" cmp -s "$T/rsums1" "$T/rsums2"
arts=$(grep -c '"reason":"compiler-artifact"' "$T/r2.log")
check "artifact messages carry local paths ($arts artifacts, none under /cachepot)" sh -c "test $arts -ge 40 && grep '\"reason\":\"compiler-artifact\"' '$T/r2.log' | grep -q '$T/w1/target/release' && ! grep -q /cachepot/ '$T/r2.log'"

echo 'pub fn one_more_line() -> u32 { 42 }' >> "$T/w1/textkit/src/lib.rs"
build "$T/w1" "$T/r3.log" --release; check "release build after a one-line change to textkit" test $? -eq 0
compiled=$(grep -E '^ *Compiling ' "$T/r3.log" | awk '{print $2}' | sort | tr '\n' ' ')
check "only textkit and its dependent app were compiled ($compiled)" test "$compiled" = "bench-small-app bench-small-textkit "
check "textkit and the binary missed, nothing else was looked up (misses $(stat_of misses), hits $(stat_of hits))" test "$(stat_of misses)" -eq 2 -a "$(stat_of hits)" -eq 0

# --- the daemon stopped: fallback, and the statistics say so ---
stop_daemon
echo 'pub fn yet_another() -> u32 { 43 }' >> "$T/w1/textkit/src/lib.rs"
build "$T/w1" "$T/r4.log" --release; check "with the daemon stopped the build still succeeds" test $? -eq 0
check "the statistics count the fallbacks of textkit and the binary ($(stat_of fallbacks) fallbacks, $(stat_of errors) errors)" test "$(stat_of fallbacks)" -eq 2 -a "$(stat_of errors)" -eq 2
check "one warning line names each fallback" test "$(grep -c 'cachepot: warning:' "$T/r4.log")" -eq 2
