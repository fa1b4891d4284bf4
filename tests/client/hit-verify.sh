#!/bin/sh
# What the wrapper believes of a hit. The "mount" here is first a plain directory laid out as
# cachepot-fs shows a store (ac/<key>/.manifest, ac/<key>/<output>, cas/<sha256>): whatever
# is at the mount path is outside input, so nothing in it may be taken on its word, and every
# byte it serves is hashed by the wrapper. One real
# rustc invocation; its key from `cachepot --explain`; its outputs published by a test store
# (tests/fs/store-tool) and copied into such directories, each wrong in one way:
#   - the manifest signed by a key that is not pinned (CACHEPOT_TRUST);
#   - no key pinned at all (a trust file naming none);
#   - another key's manifest, signed by the pinned key;
#   - an output whose bytes differ from the manifest's sha256, or the recorded stderr's;
#   - a manifest, signed by the pinned key, naming an output rustc would not write.
# Each is refused with its reason counted, leaves nothing in the out dir, and falls back to
# "rustc": a stand-in that records that it ran and writes nothing, so that what the out dir
# holds afterwards is the hit's doing alone. A good mount with the right key is served.
# Then real cachepot-fs mounts (root and FUSE only): the manifest checks stay the wrapper's, the
# hashing of the bytes is the mount's (it hashes each blob on its first open and answers EIO for
# a corrupt one from then on), and the wrapper's log says which of the two hashed a hit. A blob
# corrupted in the store, an output or the recorded stderr, is still never served: the hit falls
# back as above. CACHEPOT_VERIFY=always hashes here as well.
. "$top_srcdir/tests/tap.sh"
set -u
rustc=$(find_rustc) || skip_all "no rustc"
command -v python3 > /dev/null || skip_all "no python3"
tool="$top_builddir/tests/fs/store-tool"
[ -x "$tool" ] || skip_all "no tests/fs/store-tool"
tap_plan 26

T=$(mktemp -d /tmp/cachepot-hit-verify.XXXXXX) || bail "mktemp"
mounts="" fs_pids=""
cleanup() {
	for m in $mounts; do fusermount3 -u "$m" 2> /dev/null || umount -l "$m" 2> /dev/null; done
	for p in $fs_pids; do kill "$p" 2> /dev/null; done
	kill "$watchdog" 2> /dev/null
	[ -n "${CACHEPOT_TEST_KEEP:-}" ] || rm -rf "$T"
}
trap cleanup EXIT
trap 'echo "Bail out! interrupted (the watchdog, or a signal)"; exit 1' INT TERM HUP
# Each of the dozen invocations runs rustc's dep-info pass: about 20 s in all on an idle machine,
# minutes on a loaded one. The watchdog holds none of the test's output open: its sleep would
# outlive the test and keep the harness waiting.
( sleep 900; kill -TERM $$ ) < /dev/null > /dev/null 2>&1 &
watchdog=$!

# The stand-in rustc: the wrapper's own passes run the real rustc it resolves through
# `--print sysroot`; the fallback execs this file, which records its arguments and stops.
mkdir -p "$T/bin" "$T/src" "$T/ref"
cat > "$T/bin/rustc" << EOF
#!/bin/sh
case " \$* " in
*" --out-dir $T/out "*) echo "\$*" >> "$T/fallbacks"; exit 0 ;;
esac
exec "$rustc" "\$@"
EOF
chmod 755 "$T/bin/rustc"
printf 'pub fn seven() -> u32 { 7 }\n' > "$T/src/lib.rs"
# The invocation runs in $T, as cargo runs rustc in a workspace: its paths are then under the
# working directory's root, which the key maps.
cd "$T" || bail "cd"

export CACHEPOT_CONFIG=/dev/null CACHEPOT_CACHE_DIR="$T/cache" CACHEPOT_LOG="$T/wrapper.log"
export CACHEPOT_SOCKET="$T/no-daemon.sock" CACHEPOT_DIRECT=0
unset CACHEPOT_SERVER CACHEPOT_TRUST CACHEPOT_MOUNT CACHEPOT_VERIFY 2> /dev/null
extra=-0123456789abcdef
args="--crate-name hv --edition=2021 $T/src/lib.rs --crate-type lib --emit=dep-info,metadata,link -C extra-filename=$extra"
key=$("$top_builddir/cachepot" --explain "$T/bin/rustc" $args --out-dir "$T/out" |
	python3 -c 'import json, sys; print(json.load(sys.stdin)["key"] or "")')
check "the invocation is cacheable (key ${key:-none})" test -n "$key"
"$rustc" $args --out-dir "$T/ref" || bail "rustc cannot compile the test crate"
outputs="libhv$extra.rlib libhv$extra.rmeta hv$extra.d"
set --
for o in $outputs; do set -- "$@" "$o=$T/ref/$o"; done

# publish STORE KEY NAME=FILE...: a manifest of KEY signed by STORE's key.
publish() { [ "$(timeout 30 "$tool" publish "$@")" = 0 ]; }
# mount_dir STORE KEY DIR: lay STORE's manifest of KEY and its blobs out at DIR as the mount
# shows them (ac/KEY/.manifest, ac/KEY/NAME, cas/SHA256).
mount_dir() {
	rm -rf "$T/www" && "$tool" export "$1" "$T/www" || return 1
	mkdir -p "$3/ac/$2" "$3/cas" && cp "$T/www/v1/blobs/"* "$3/cas/" &&
		cp "$T/www/v1/manifests/$2" "$3/ac/$2/.manifest" &&
		python3 -c '
import json, shutil, sys
m = json.load(open(sys.argv[1]))["manifest"]
for o in m["outputs"]:
    shutil.copy(sys.argv[2] + "/" + o["sha256"], sys.argv[3] + "/" + o["name"])
' "$3/ac/$2/.manifest" "$3/cas" "$3/ac/$2"
}
pub() { cat "$1/key/ed25519.pub"; }
# The good result has a recorded diagnostic, replayed on a hit, never on a refused one.
printf 'warning: a recorded diagnostic\n' > "$T/diag"
STORE_TOOL_STDERR="$T/diag" publish "$T/store" "$key" "$@" && mount_dir "$T/store" "$key" "$T/good" ||
	bail "cannot lay out the good mount"
# Another store, another key, the same outputs.
publish "$T/other" "$key" "$@" && mount_dir "$T/other" "$key" "$T/foreign" || bail "cannot lay out the foreign mount"
pub "$T/store" > "$T/trust"
{ echo "# two keys: the test store's and the other's"; pub "$T/other"; pub "$T/store"; } > "$T/trust-both"
printf '# no key here\n\n' > "$T/trust-none"

# hit MOUNT TRUST: the invocation through the wrapper, an empty out dir, zeroed statistics.
hit() {
	rm -rf "$T/out" "$T/fallbacks" && mkdir -p "$T/out"
	"$top_builddir/cachepot" --zero-stats > /dev/null
	CACHEPOT_MOUNT=$1 CACHEPOT_TRUST=$2 "$top_builddir/cachepot" "$T/bin/rustc" $args --out-dir "$T/out" \
		> "$T/hit.out" 2> "$T/hit.err"
}
stat_of() {
	"$top_builddir/cachepot" --show-stats --json |
		python3 -c 'import json, sys; j = json.load(sys.stdin); print(j.get(sys.argv[1], {}).get(sys.argv[2], 0) if sys.argv[2] else j[sys.argv[1]])' "$1" "${2:-}"
}
fell_back() { test -s "$T/fallbacks" && test "$(wc -l < "$T/fallbacks")" -eq 1; }
out_empty() { test -z "$(ls -A "$T/out")"; }
# The out dir as the hit found it (empty) and the stand-in rustc run once.
refused_clean() { out_empty && fell_back; }
# refused_for REASON: counted once under REASON, and refused_clean.
refused_for() { test "$(stat_of refused_hits "$1")" = 1 && refused_clean; }
served() {
	for o in $outputs; do cmp -s "$T/ref/$o" "$T/out/$o" || return 1; done
	! fell_back
}

hit "$T/good" "$T/trust"
check "a good mount, manifest signed by the pinned key: a hit ($(stat_of hits) hits, $(stat_of fallbacks) fallbacks)" \
	sh -c "test '$(stat_of hits)' = 1 && test '$(stat_of fallbacks)' = 0"
check "... the outputs are rustc's, byte for byte, and rustc did not run" served
check "... and the recorded diagnostic is replayed once" test "$(grep -c 'a recorded diagnostic' "$T/hit.err")" = 1
# last_hit_hashed_by WHO: the wrapper's log line of the last hit says who hashed its bytes.
last_hit_hashed_by() { grep ' hit ' "$T/wrapper.log" | tail -n 1 | grep -q "hashed $1)"; }
check "... a plain directory is no cachepot-fs mount: the wrapper hashed every byte itself" last_hit_hashed_by here
hit "$T/foreign" "$T/trust-both"
check "a second pinned key is honoured too" test "$(stat_of hits)" = 1

hit "$T/foreign" "$T/trust"
check "a manifest signed by another key is refused ($(stat_of refused_hits untrusted_manifest) untrusted_manifest)" \
	test "$(stat_of refused_hits untrusted_manifest)" = 1 -a "$(stat_of hits)" = 0
check "... nothing in the out dir ($(ls -A "$T/out" | tr '\n' ' ')), rustc ran instead" refused_clean

hit "$T/good" "$T/trust-none"
check "no pinned key: refused ($(stat_of refused_hits no_trusted_key) no_trusted_key), nothing written, rustc ran" \
	refused_for no_trusted_key

# Another key's manifest (signed by the pinned key) in this key's place.
k2=$(head -c 32 /dev/urandom | sha256sum | cut -c1-64)
publish "$T/store" "$k2" "$@" && rm -rf "$T/swapped" && mount_dir "$T/store" "$key" "$T/swapped" &&
	cp "$T/www/v1/manifests/$k2" "$T/swapped/ac/$key/.manifest" || bail "cannot lay out the swapped mount"
hit "$T/swapped" "$T/trust"
check "another key's manifest is refused ($(stat_of refused_hits manifest_for_another_key) manifest_for_another_key)" \
	test "$(stat_of refused_hits manifest_for_another_key)" = 1
check "... nothing in the out dir, rustc ran instead" refused_clean

# A flipped byte in the rlib the mount serves (the rmeta and the .d are right, and the .d is
# the first written: it must not stay).
cp -r "$T/good" "$T/flipped"
python3 -c '
import os, sys
fd = os.open(sys.argv[1], os.O_RDWR); at = os.fstat(fd).st_size // 2
b = os.pread(fd, 1, at); os.pwrite(fd, bytes([b[0] ^ 1]), at); os.close(fd)' "$T/flipped/ac/$key/libhv$extra.rlib"
hit "$T/flipped" "$T/trust"
check "an output whose bytes are not the manifest's sha256 is refused ($(stat_of refused_hits output_mismatch) output_mismatch)" \
	test "$(stat_of refused_hits output_mismatch)" = 1 -a "$(stat_of hits)" = 0
check "... nothing in the out dir ($(ls -A "$T/out" | tr '\n' ' '): no output, no temp file), rustc ran instead" \
	refused_clean
check "... and one warning line, the recorded diagnostic not replayed" \
	test "$(grep -c . "$T/hit.err")" = 1 -a "$(grep -c 'a recorded diagnostic' "$T/hit.err")" = 0 -a ! -s "$T/hit.out"

# A flipped byte in the recorded stderr (outputs right): refused before anything is written or
# printed.
cp -r "$T/good" "$T/badstream"
errsha=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["manifest"]["stderr"]["sha256"])' \
	"$T/good/ac/$key/.manifest")
chmod u+w "$T/badstream/cas/$errsha" && printf 'W' | dd of="$T/badstream/cas/$errsha" bs=1 conv=notrunc status=none
hit "$T/badstream" "$T/trust"
stream_refused() { refused_for output_mismatch && ! grep -q 'recorded diagnostic' "$T/hit.err"; }
check "a recorded stderr whose bytes are not the manifest's is refused, nothing written or replayed" \
	stream_refused

# An output too many: the manifest (signed by a pinned key of its own store) also names a
# file rustc does not write for this invocation.
printf 'not rustc output\n' > "$T/evil"
publish "$T/third" "$key" "$@" "libhv$extra.so=$T/evil" && mount_dir "$T/third" "$key" "$T/extra" ||
	bail "cannot lay out the mount with an extra output"
pub "$T/third" > "$T/trust-third"
hit "$T/extra" "$T/trust-third"
check "a manifest naming an output outside the expected set is refused ($(stat_of refused_hits unexpected_outputs) unexpected_outputs)" \
	test "$(stat_of refused_hits unexpected_outputs)" = 1 -a "$(stat_of hits)" = 0
check "... the extra file was not written, nor any other; rustc ran instead" \
	refused_clean
# The same with an output missing: exactly the set, not a subset.
publish "$T/fourth" "$key" "libhv$extra.rlib=$T/ref/libhv$extra.rlib" && mount_dir "$T/fourth" "$key" "$T/short" ||
	bail "cannot lay out the mount with a missing output"
pub "$T/fourth" > "$T/trust-fourth"
hit "$T/short" "$T/trust-fourth"
check "a manifest lacking an expected output is refused too" \
	test "$(stat_of refused_hits unexpected_outputs)" = 1 -a -z "$(ls -A "$T/out")" -a -s "$T/fallbacks"

"$top_builddir/cachepot" --zero-stats > /dev/null
hit "$T/flipped" "$T/trust"
"$top_builddir/cachepot" --show-stats > "$T/stats.txt"
check "--show-stats names the reason" grep -Eq '^ +refused: output_mismatch +1$' "$T/stats.txt"
hit "$T/good" "$T/trust"
check "after all of it the good mount is still served" served

# --- Real cachepot-fs mounts ---
if [ "$(id -u)" != 0 ] || [ ! -c /dev/fuse ] || ! command -v fusermount3 > /dev/null; then
	for _ in 1 2 3 4 5 6; do ok "# SKIP a cachepot-fs mount needs root and /dev/fuse"; done
	exit 0
fi
# mount_store STORE MNT: cachepot-fs of STORE at MNT.
mount_store() {
	mkdir -p "$2" && "$top_builddir/cachepot-fs" "$1" "$2" -f > "$2.log" 2>&1 &
	fs_pids="$fs_pids $!" mounts="$mounts $2"
	for _ in $(seq 100); do [ -d "$2/ac" ] && return 0; sleep 0.1; done
	return 1
}
# flip STORE SHA256: one byte of blob SHA256 changed in STORE's cas/, as rot on the disk would.
flip() {
	python3 -c '
import os, sys
fd = os.open(sys.argv[1], os.O_RDWR); at = os.fstat(fd).st_size // 2
b = os.pread(fd, 1, at); os.pwrite(fd, bytes([b[0] ^ 1]), at); os.close(fd)' "$1/cas/$(echo "$2" | cut -c1-2)/$2"
}
mount_store "$T/store" "$T/mnt" || bail "cachepot-fs did not mount: $(tail -n 3 "$T/mnt.log")"
hit "$T/mnt" "$T/trust"
check "a cachepot-fs mount: a hit, the outputs rustc's byte for byte, rustc did not run" served
check "... the bytes were hashed by the mount, not again by the wrapper" last_hit_hashed_by "by the mount"
export CACHEPOT_VERIFY=always
hit "$T/mnt" "$T/trust"
always_served() { test "$(stat_of hits)" = 1 && served && last_hit_hashed_by here; }
check "CACHEPOT_VERIFY=always: the wrapper hashes a cachepot-fs mount's bytes too, and serves them" always_served
unset CACHEPOT_VERIFY

# The same result in two more stores, each with one blob rotten on the disk before the mount
# ever opened it: the rlib, then the recorded stderr.
rlib_sha=$(sha256sum "$T/ref/libhv$extra.rlib" | cut -c1-64)
STORE_TOOL_STDERR="$T/diag" publish "$T/rot-out" "$key" "$@" && flip "$T/rot-out" "$rlib_sha" &&
	mount_store "$T/rot-out" "$T/mnt-rot-out" || bail "cannot mount the store with a rotten rlib"
pub "$T/rot-out" > "$T/trust-rot-out"
hit "$T/mnt-rot-out" "$T/trust-rot-out"
# A hit the mount refused: a fallback, counted once, the out dir as it was, rustc run once.
mount_refused() { test "$(stat_of hits)" = 0 && test "$(stat_of fallbacks)" = 1 && refused_clean; }
check "a blob rotten in the store is not served: the mount refuses it, nothing in the out dir, rustc ran" mount_refused
rot_logged() {
	grep -q "blob $rlib_sha is corrupt" "$T/mnt-rot-out.log" && test "$(grep -c . "$T/hit.err")" = 1 &&
		! grep -q 'recorded diagnostic' "$T/hit.err"
}
check "... the mount logged the corrupt blob, the wrapper one warning line and no recorded diagnostic" rot_logged
STORE_TOOL_STDERR="$T/diag" publish "$T/rot-err" "$key" "$@" && flip "$T/rot-err" "$errsha" &&
	mount_store "$T/rot-err" "$T/mnt-rot-err" || bail "cannot mount the store with a rotten stderr"
pub "$T/rot-err" > "$T/trust-rot-err"
hit "$T/mnt-rot-err" "$T/trust-rot-err"
stream_refused_by_mount() { mount_refused && ! grep -q 'recorded diagnostic' "$T/hit.err"; }
check "a recorded stderr rotten in the store: nothing written or replayed, rustc ran" stream_refused_by_mount
