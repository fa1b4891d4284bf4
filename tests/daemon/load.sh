#!/bin/sh
# The load test: 200 connections of a uid that may not write (65534), each a PUT announcing a
# 4 GiB body (tests/daemon/flood storm: half trickle the body, half stall in their headers and
# are held by the daemon), kept up for as long as an allowed client (root, cachepot as
# RUSTC_WRAPPER over a real cachepot-fs mount, compiles in the sandbox) builds a workspace cold,
# then warm after cargo clean. Checked:
#   - the daemon's memory stays bounded: VmRSS and VmHWM of /proc/PID/status sampled every
#     0.2 s, the peak printed, and bounded while 200 x 4 GiB are announced;
#   - the builds complete with the hits and misses they have alone: cold, every cacheable unit
#     a miss and no fallback; warm, every one of them a hit;
#   - the flood was refused (413) or held, and nothing of it stored: the store gained only
#     blobs that the build's manifests name and sources the build uploaded, toolchain trees by
#     their ids, and no temporary or job leftovers.
#
# Cost. make check builds a small workspace made here: one crate over cfg-if and itoa, 3
# cacheable units; under two minutes with ASan on a busy 2-core machine (1m44s measured).
# CACHEPOT_LOAD_CORPUS=small builds ../shared/corpus/small instead (81 rustc invocations, 50-odd
# cacheable; several minutes under ASan): run it by hand,
#   make check TESTS=tests/daemon/load.sh CACHEPOT_LOAD_CORPUS=small
. "$top_srcdir/tests/tap.sh"
. "$top_srcdir/tests/daemon/lib.sh"

[ "$(id -u)" = 0 ] || skip_all "needs root (setpriv, sandbox, FUSE)"
command -v setpriv >/dev/null || skip_all "needs setpriv"
[ -c /dev/fuse ] || skip_all "no /dev/fuse"
rustc=$(find_rustc) || skip_all "no rustc"
command -v cargo >/dev/null || skip_all "no cargo"
CORPUS=${CACHEPOT_LOAD_CORPUS:-tiny}
case $CORPUS in
tiny) [ -d "$REGISTRY/cfg-if-1.0.0" ] && ls -d "$REGISTRY"/itoa-1.* >/dev/null 2>&1 ||
	skip_all "needs librust-cfg-if-dev, librust-itoa-dev" ;;
small) [ -d "$SHARED_DIR/corpus/small" ] || skip_all "no corpus" ;;
*) bail "CACHEPOT_LOAD_CORPUS is tiny or small, not '$CORPUS'" ;;
esac

tap_plan 13
FLOODERS=200
DECLARED=4294967296
FLOOD=$top_builddir/tests/daemon/flood
daemon_setup
# The base toolchain placed by hard links (it has the id the wrapper computes), so that the
# build does not upload 500 MB first; the corpus's link part is still uploaded.
toolchain_install || bail "no toolchain tree"
# Above the flood's 200, so that every one of its connections is really taken and held (with
# the default of 64, 136 of them would be closed at once: bodies.sh tests that cap). Under ASan
# the daemon's quarantine is kept small: freed memory held by it would count as RSS (256 MiB
# by default) and hide what the daemon really keeps.
asan_options=${ASAN_OPTIONS:-}
export ASAN_OPTIONS="${asan_options:+$asan_options:}quarantine_size_mb=16"
daemon_start --jobs 2 --max-connections-per-peer 256 || bail "cachepotd did not start"
if [ -n "$asan_options" ]; then export ASAN_OPTIONS="$asan_options"; else unset ASAN_OPTIONS; fi
MNT=$T/mnt; mkdir -p "$MNT"
"$top_builddir/cachepot-fs" "$STORE" "$MNT" -f 2>>"$T/fs.log" &
MOUNT_PIDS=$!; MOUNTS=$MNT
for _ in $(seq 1 100); do [ -d "$MNT/ac" ] && break; sleep 0.1; done
[ -d "$MNT/ac" ] || bail "cachepot-fs did not mount: $(tail -n 5 "$T/fs.log")"

# The allowed client, as tests/client/cargo-build.sh sets it up.
unset LIBRARY_PATH COMPILER_PATH GCC_EXEC_PREFIX
export CACHEPOT_SOCKET="$SOCK" CACHEPOT_MOUNT="$MNT" CACHEPOT_CACHE_DIR="$T/cache"
export CACHEPOT_TRUST="$STORE/key/ed25519.pub" CACHEPOT_LOG="$T/wrapper.log"
export RUSTC_WRAPPER="$top_builddir/cachepot" CARGO_TERM_COLOR=never
W=$T/ws
if [ "$CORPUS" = small ]; then
	cp -r "$SHARED_DIR/corpus/small" "$W"
	MIN_UNITS=40
else
	# Not incremental, so the member itself is cacheable too: cfg-if, itoa and it.
	export CARGO_INCREMENTAL=0
	itoa=$(basename "$(ls -d "$REGISTRY"/itoa-1.* | sort -V | tail -n 1)")
	mkdir -p "$W/src" "$W/.cargo"
	cat > "$W/Cargo.toml" <<EOF
[package]
name = "load-tiny"
version = "0.1.0"
edition = "2021"

[dependencies]
cfg-if = "1"
itoa = "${itoa#itoa-}"
EOF
	cat > "$W/src/lib.rs" <<'EOF'
cfg_if::cfg_if! {
    if #[cfg(unix)] { pub const UNIX: bool = true; } else { pub const UNIX: bool = false; }
}
pub fn show(n: u32) -> String { itoa::Buffer::new().format(n).to_string() }
EOF
	printf '[source.crates-io]\nreplace-with = "debian"\n[source.debian]\ndirectory = "%s"\n' \
		"$REGISTRY" > "$W/.cargo/config.toml"
	MIN_UNITS=3
fi
stat_of() { "$top_builddir/cachepot" --show-stats --json | python3 -c "import json,sys; print(json.load(sys.stdin)['$1'])"; }
build() {
	"$top_builddir/cachepot" --zero-stats > /dev/null
	(cd "$W" && cargo build --offline -v) > "$1" 2>&1
}
diag() { tail -n 15 "$1" | sed 's/^/# /'; tail -n 5 "$T/daemon.log" | sed 's/^/# daemon: /'; }

# --- the memory sampler and the flood ---
rss_sampler() {
	while kill -0 "$DAEMON_PID" 2>/dev/null; do
		awk '$1 == "VmRSS:" { r = $2 } $1 == "VmHWM:" { h = $2 } END { print r, h }' \
			"/proc/$DAEMON_PID/status" 2>/dev/null
		sleep 0.2
	done
}
# The store's entries: files with size and mode, directories without a size (a tmpfs counts
# entries in it).
snapshot() {
	(cd "$STORE" && find cas toolchains jobs tmp -mindepth 1 \( -type d -printf '%p/ - %m\n' \
		-o -printf '%p %s %m\n' \) 2>/dev/null | sort)
}
before=$(snapshot)
pub0=$(metric jobs_published_total)
rss0=$(awk '$1 == "VmRSS:" { print $2 }' "/proc/$DAEMON_PID/status")
rss_sampler > "$T/rss" &
SAMPLER=$!
mkfifo "$T/flood.hold"
setpriv --reuid=65534 --regid=65534 --clear-groups \
	"$FLOOD" storm "$SOCK" "/v1/blobs/$(head -c 4096 /dev/zero | sha256sum | cut -c1-64)" $FLOODERS $DECLARED \
	< "$T/flood.hold" > "$T/flood.out" 2>&1 &
FLOOD_PID=$!
exec 3> "$T/flood.hold"
for _ in $(seq 1 300); do grep -q '^ready$' "$T/flood.out" && break; sleep 0.1; done
grep -q '^ready$' "$T/flood.out" || bail "the flood did not start: $(cat "$T/flood.out")"
sleep 5   # the flood alone for a while first
held=$(metric connections)
flood_alone=$(awk '{ if ($1 > m) m = $1 } END { print m + 0 }' "$T/rss")
echo "# RSS before the flood $rss0 KiB; the flood alone: peak $flood_alone KiB; connections open: $held"
check "the daemon holds the flood's stalled connections (cachepotd_connections $held >= $((FLOODERS / 2)))" \
	test "${held:-0}" -ge $((FLOODERS / 2))
check "... and the flood alone costs it less than 32 MiB (+$((flood_alone - rss0)) KiB)" \
	test $((flood_alone - rss0)) -lt 32768

# --- the allowed build, cold and warm, under the flood ---
t0=$(date +%s)
if build "$T/b1.log"; then ok "cold build under the flood ($(( $(date +%s) - t0 )) s)"; else not_ok "cold build under the flood"; diag "$T/b1.log"; fi
misses=$(stat_of misses) fallbacks=$(stat_of fallbacks) hits=$(stat_of hits)
check "cold: every cacheable unit a miss ($misses misses, $hits hits, $fallbacks fallbacks)" \
	test "$misses" -ge $MIN_UNITS -a "$hits" -eq 0 -a "$fallbacks" -eq 0
(cd "$W" && cargo clean)
t0=$(date +%s)
if build "$T/b2.log"; then ok "warm build under the flood ($(( $(date +%s) - t0 )) s)"; else not_ok "warm build under the flood"; diag "$T/b2.log"; fi
check "warm: every one of them a hit ($(stat_of hits) of $misses, $(stat_of misses) misses, $(stat_of fallbacks) fallbacks)" \
	test "$(stat_of hits)" -eq "$misses" -a "$(stat_of misses)" -eq 0 -a "$(stat_of fallbacks)" -eq 0
pub1=$(metric jobs_published_total)
check "the daemon published exactly the cold build's misses ($((pub1 - pub0)) of $misses)" \
	test $((pub1 - pub0)) -eq "$misses"

# --- the flood's end ---
exec 3>&-
wait "$FLOOD_PID"
kill "$SAMPLER" 2>/dev/null; wait "$SAMPLER" 2>/dev/null
echo "# flood: $(tail -n 1 "$T/flood.out")"
field() { sed -n "s/.*$1=\([^ ]*\).*/\1/p" "$T/flood.out" | tail -n 1; }
answered=$(field answered)
check "the flood kept $FLOODERS connections ($(field max_open) open at most, $(field connections) opened in all)" \
	test "$(field max_open)" -ge $((FLOODERS / 2)) -a "$(field connections)" -ge $FLOODERS
check "... its bodies refused from the header: 413 ($answered as 413/403/other), never 2xx" \
	sh -c "[ '${answered%%/*}' -gt 0 ] && [ '${answered#*/*/}' = 0 ]"
peak=$(awk '{ if ($1 > m) m = $1 } END { print m + 0 }' "$T/rss")
hwm=$(awk '{ if ($2 > m) m = $2 } END { print m + 0 }' "$T/rss")
echo "# daemon RSS: $rss0 KiB before, peak VmRSS $peak KiB, VmHWM $hwm KiB ($(wc -l < "$T/rss") samples), while $FLOODERS connections announced $((FLOODERS * DECLARED >> 30)) GiB"
# The bound: what the build itself needs (upload parts of at most 16 MiB, the compiles'
# bookkeeping, ASan's shadow and small quarantine) plus little for the flood, far below one
# announced body.
check "the daemon's memory stayed bounded: VmHWM $hwm KiB < $rss0 + 262144 KiB" \
	test "$hwm" -lt $((rss0 + 262144))

# --- the store: only what the build published and uploaded ---
# Allowed new blobs: those the manifests name (read through the mount) and the bytes of every
# source the build could have uploaded (the workspace, the registry crates of its Cargo.lock).
for k in $(ls "$MNT/ac"); do
	jq -r '.manifest | (.outputs[].sha256, .stdout.sha256, .stderr.sha256)' "$MNT/ac/$k/.manifest"
done > "$T/allowed" 2>/dev/null
(cd "$W" && find . -path ./target -prune -o -type f -print0 | xargs -0 sha256sum | cut -c1-64) >> "$T/allowed"
sed -n 's/^name = "\(.*\)"$/\1/p; s/^version = "\(.*\)"$/\1/p' "$W/Cargo.lock" | paste - - |
	while read -r name version; do
		[ -d "$REGISTRY/$name-$version" ] && find "$REGISTRY/$name-$version" -type f -print0 | xargs -0 sha256sum
	done | cut -c1-64 >> "$T/allowed"
sort -u "$T/allowed" -o "$T/allowed"
after=$(snapshot)
printf '%s\n' "$before" > "$T/snap.before"; printf '%s\n' "$after" > "$T/snap.after"
new=$(comm -13 "$T/snap.before" "$T/snap.after")
gone=$(comm -23 "$T/snap.before" "$T/snap.after")
stray=$(printf '%s\n' "$new" | awk '$1 ~ /^cas\/..\/./ { sub(/^cas\/..\//, "", $1); print $1 }' | sort | comm -23 - "$T/allowed")
other=$(printf '%s\n' "$new" | grep -v '^$' | grep -Ev '^(cas/|toolchains/([0-9a-f]{64}|link-[0-9a-f]{64}-[0-9a-f]{64})/)')
check "the store gained only blobs the build's manifests name or its sources ($(printf '%s\n' "$new" | grep -c '^cas/..\/.') new blobs; stray: ${stray:-none})" \
	test -z "$stray" -a -z "$gone"
check "... and toolchain trees by their ids: no temporary, job or flood leftovers (${other:-none})" \
	test -z "$other"
check "the daemon stops cleanly" daemon_stop
