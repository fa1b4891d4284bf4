#!/bin/sh
# The units that link, cached: real cargo builds of the corpus with CARGO_INCREMENTAL=0 (as CI
# sets it) through a real cachepotd and cachepot-fs mount. Every proc-macro, build-script
# compile and the binary is a link job compiled in the sandbox with the link part of the
# toolchain; a warm build after cargo clean hits all of them along with the libs, the outputs
# (.so, build scripts, the binary, rlibs) are byte-identical to the cold build's, and a copy of
# the workspace at another path hits every cacheable unit with zero misses, byte-identical to
# the first. The same in release. Then: a -l of a library only the host has is refused with
# a named reason; a link that fails in the sandbox (a dependency links a host library) builds
# locally, is counted, and is not sent again; LIBRARY_PATH in the client's environment refuses
# link units and the build still succeeds.
. "$top_srcdir/tests/tap.sh"
set -u
rustc=$(find_rustc) || skip_all "no rustc"
[ "$(id -u)" = 0 ] || skip_all "needs root (FUSE mount, sandbox cgroups)"
[ -c /dev/fuse ] || skip_all "no /dev/fuse"
command -v cc > /dev/null || skip_all "no cc"
corpus="$SHARED_DIR/corpus/small"
[ -d "$corpus" ] || skip_all "no corpus"
tap_plan 32

T=$(mktemp -d /tmp/cachepot-link.XXXXXX)
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

# The variables that move the C driver's search path refuse link units (checked at the end);
# some hosts set LIBRARY_PATH in everyone's environment (CUDA's stubs, for one).
unset LIBRARY_PATH COMPILER_PATH GCC_EXEC_PREFIX
export CARGO_INCREMENTAL=0
export CACHEPOT_SOCKET="$T/cachepotd.sock" CACHEPOT_MOUNT="$T/mnt" CACHEPOT_CACHE_DIR="$T/cache"
export CACHEPOT_LOG="$T/wrapper.log" RUSTC_WRAPPER="$top_builddir/cachepot"
# Hits are accepted only from manifests signed by this store's key.
export CACHEPOT_TRUST="$T/store/key/ed25519.pub"
export CARGO_TERM_COLOR=never
mkdir -p "$T/mnt"

"$top_builddir/cachepotd" --store "$T/store" --socket "$CACHEPOT_SOCKET" --jobs 2 >> "$T/daemon.log" 2>&1 &
daemon_pid=$!
for _ in $(seq 100); do [ -S "$CACHEPOT_SOCKET" ] && break; sleep 0.1; done
[ -S "$CACHEPOT_SOCKET" ] || bail "cachepotd did not start: $(tail -n 5 "$T/daemon.log")"
"$top_builddir/cachepot-fs" "$T/store" "$T/mnt" -f > "$T/fs.log" 2>&1 &
fs_pid=$!
for _ in $(seq 100); do [ -d "$T/mnt/ac" ] && break; sleep 0.1; done
[ -d "$T/mnt/ac" ] || bail "cachepot-fs did not mount: $(tail -n 5 "$T/fs.log")"

stats() { "$top_builddir/cachepot" --show-stats --json > "$T/stats.json"; }
stat_of() { python3 -c "import json,sys; j=json.load(open('$T/stats.json')); print(j['$1'])"; }
# The reasons counted as not cacheable, "name=count" sorted, on one line.
reasons() { python3 -c "import json; j=json.load(open('$T/stats.json')); print(' '.join('%s=%d' % kv for kv in sorted(j['not_cacheable'].items())))"; }
# Only cargo's own queries (-vV) and the probes build scripts run (a crate root on stdin, a
# feature probe that is meant to fail) may be left uncached.
only_probes() { reasons | tr ' ' '\n' | grep -v -E '^(query|stdin-input|dep-info-failed)=|^$' | wc -l; }
build() {
	dir=$1; log=$2; shift 2
	"$top_builddir/cachepot" --zero-stats > /dev/null
	(cd "$dir" && cargo build --offline -v "$@") > "$log" 2>&1
	rc=$?
	stats
	return $rc
}
# Checksums of every output cargo keeps of a unit that the cache serves: rlibs, rmetas, the
# proc-macros' .so, the build scripts and the binary (by their names under deps/ and build/).
sums() {
	(cd "$1" && find deps build -maxdepth 2 -type f \( -name '*.rlib' -o -name '*.rmeta' -o -name '*.so' \
		-o -name 'build_script_build-*' -o -name 'bench_small-*' \) ! -name '*.d' | sort | xargs sha256sum)
}
diag() { tail -n 15 "$1" | sed 's/^/# /'; tail -n 5 "$T/daemon.log" | sed 's/^/# daemon: /'; }

for profile in debug release; do
	flag=""; [ "$profile" = release ] && flag=--release
	rm -rf "$T/w1" "$T/elsewhere"
	cp -r "$corpus" "$T/w1"
	if build "$T/w1" "$T/$profile-cold.log" $flag; then ok "$profile: cold build"; else not_ok "$profile: cold build"; diag "$T/$profile-cold.log"; fi
	misses=$(stat_of misses)
	check "$profile cold: $misses units compiled in the sandbox, no fallback ($(stat_of fallbacks)), only probes left ($(reasons))" \
		test "$misses" -ge 70 -a "$(stat_of fallbacks)" -eq 0 -a "$(only_probes)" -eq 0
	links=$(grep -c -E '^[0-9]+ miss .* (build_script_build|bench_small_macros|serde_derive|thiserror_impl|bench_small) ' "$T/wrapper.log")
	check "$profile cold: the proc-macros, build scripts and the binary were link jobs ($links)" test "$links" -ge 8
	sums "$T/w1/target/$profile" > "$T/sums-cold"
	"$T/w1/target/$profile/bench-small" > "$T/run-cold" 2>&1

	if [ "$profile" = debug ]; then
		(cd "$T/w1" && cargo clean)
		build "$T/w1" "$T/debug-warm.log"; check "debug: warm build after cargo clean" test $? -eq 0
		check "debug warm: every unit hits ($(stat_of hits) of $misses), no miss, only probes left ($(reasons))" \
			test "$(stat_of hits)" -eq "$misses" -a "$(stat_of misses)" -eq 0 -a "$(stat_of fallbacks)" -eq 0 -a "$(only_probes)" -eq 0
		sums "$T/w1/target/debug" > "$T/sums-warm"
		check "debug warm: $(wc -l < "$T/sums-cold") outputs (.so, build scripts, binary, rlibs) byte-identical" \
			sh -c "test \$(grep -c -E '\\.so\$|build_script_build-|bench_small-' '$T/sums-cold') -ge 8 && cmp -s '$T/sums-cold' '$T/sums-warm'"
		"$T/w1/target/debug/bench-small" > "$T/run-warm" 2>&1
		check "debug warm: the binary runs and prints the same" sh -c "test -s '$T/run-cold' && cmp -s '$T/run-cold' '$T/run-warm'"
		build "$T/w1" "$T/debug-noop.log"
		check "debug: a further cargo build is a no-op" \
			test "$(grep -c '^ *Fresh ' "$T/debug-noop.log")" -ge 40 -a "$(grep -c -E '^ *(Compiling|Running) ' "$T/debug-noop.log")" -eq 0
	fi

	# A second checkout at another path, built from scratch by the same client.
	mkdir -p "$T/elsewhere/deeper"
	cp -r "$corpus" "$T/elsewhere/deeper/w2"
	build "$T/elsewhere/deeper/w2" "$T/$profile-copy.log" $flag; check "$profile: a copy at another path builds" test $? -eq 0
	check "$profile copy: every cacheable unit hits ($(stat_of hits) of $misses), zero misses" \
		test "$(stat_of hits)" -eq "$misses" -a "$(stat_of misses)" -eq 0 -a "$(stat_of fallbacks)" -eq 0
	sums "$T/elsewhere/deeper/w2/target/$profile" > "$T/sums-copy"
	check "$profile copy: outputs byte-identical to the first checkout's" cmp -s "$T/sums-cold" "$T/sums-copy"
	"$T/elsewhere/deeper/w2/target/$profile/bench-small" > "$T/run-copy" 2>&1
	check "$profile copy: the binary prints the same" cmp -s "$T/run-cold" "$T/run-copy"
	check "$profile copy: no canonical path in the build output or dep-info" \
		sh -c "! grep -q /cachepot/ '$T/$profile-copy.log' && ! grep -l /cachepot/ '$T'/elsewhere/deeper/w2/target/$profile/deps/*.d"
done

# --- what the link part cannot reproduce ---
mkdir -p "$T/native/src"
cat > "$T/native/Cargo.toml" <<'EOF'
[package]
name = "hostlib"
version = "0.1.0"
edition = "2021"
EOF
# zlibVersion from the host's libz: a -l of a library outside every mapped root.
cat > "$T/native/src/main.rs" <<'EOF'
use std::ffi::CStr;
#[link(name = "z")]
extern "C" { fn zlibVersion() -> *const std::os::raw::c_char; }
fn main() { println!("zlib {}", unsafe { CStr::from_ptr(zlibVersion()) }.to_str().unwrap()); }
EOF
cat > "$T/native/build.rs" <<'EOF'
fn main() { println!("cargo:rustc-link-lib=z"); }
EOF
build "$T/native" "$T/native.log"; check "a bin linking the host's libz builds" test $? -eq 0
check "it runs" sh -c "'$T/native/target/debug/hostlib' | grep -q '^zlib '"
check "the binary is refused with reason link ($(reasons)), the build script compile is cached" \
	sh -c "test '$(python3 -c "import json; print(json.load(open('$T/stats.json'))['not_cacheable'].get('link', 0))")' -eq 1 -a $(stat_of misses) -ge 1"
check "the log names the library" grep -q 'not cacheable (link: native library -l z' "$T/wrapper.log"

# A dependency that links the host's libz through its metadata: the binary's command line has
# no -l, so it is sent, and its link fails in the sandbox, which has no libz.
mkdir -p "$T/dep/zdep/src" "$T/dep/zapp/src"
cat > "$T/dep/Cargo.toml" <<'EOF'
[workspace]
resolver = "2"
members = ["zdep", "zapp"]
EOF
cat > "$T/dep/zdep/Cargo.toml" <<'EOF'
[package]
name = "zdep"
version = "0.1.0"
edition = "2021"
links = "z"
EOF
cat > "$T/dep/zdep/build.rs" <<'EOF'
fn main() { println!("cargo:rustc-link-lib=dylib=z"); }
EOF
cat > "$T/dep/zdep/src/lib.rs" <<'EOF'
extern "C" { fn zlibVersion() -> *const std::os::raw::c_char; }
pub fn version() -> String { unsafe { std::ffi::CStr::from_ptr(zlibVersion()) }.to_string_lossy().into_owned() }
EOF
cat > "$T/dep/zapp/Cargo.toml" <<'EOF'
[package]
name = "zapp"
version = "0.1.0"
edition = "2021"
[dependencies]
zdep = { path = "../zdep" }
EOF
cat > "$T/dep/zapp/src/main.rs" <<'EOF'
fn main() { println!("zlib {}", zdep::version()); }
EOF
build "$T/dep" "$T/dep1.log"; check "a link that fails in the sandbox builds locally" test $? -eq 0
check "it is counted as a failed sandbox compile and a fallback ($(stat_of compile_failures), $(stat_of fallbacks))" \
	test "$(stat_of compile_failures)" -eq 1 -a "$(stat_of fallbacks)" -eq 1
check "nothing was published for it" sh -c "test \$(ls '$T/cache/link-failed' | wc -l) -eq 1 && ! test -e '$T/mnt/ac/'\$(ls '$T/cache/link-failed')"
(cd "$T/dep" && cargo clean -q)
build "$T/dep" "$T/dep2.log"; check "the next build still succeeds" test $? -eq 0
check "and does not send it again: reason link-failed ($(reasons)), no failure, no fallback" \
	sh -c "test '$(python3 -c "import json; print(json.load(open('$T/stats.json'))['not_cacheable'].get('link-failed', 0))")' -eq 1 -a $(stat_of compile_failures) -eq 0 -a $(stat_of fallbacks) -eq 0"

# LIBRARY_PATH set by the client: link units are compiled here, libs still hit.
(cd "$T/elsewhere/deeper/w2" && cargo clean -q)
LIBRARY_PATH=/opt/nowhere build "$T/elsewhere/deeper/w2" "$T/libpath.log" --release
check "with LIBRARY_PATH set the build succeeds" test $? -eq 0
check "link units refused with reason link ($(reasons)), libs hit ($(stat_of hits))" \
	sh -c "test '$(python3 -c "import json; print(json.load(open('$T/stats.json'))['not_cacheable'].get('link', 0))")' -ge 8 -a $(stat_of hits) -ge 40 -a $(stat_of fallbacks) -eq 0"
