#!/bin/sh
# Uploaded inputs are not served (fs/store.h, store_blob_published): a blob a client uploads for
# a job is used by the job, and answers 404 to every reader (GET /v1/blobs/, root and any uid
# alike), ENOENT through cachepot-fs's cas/ and is absent from its listing, until a published
# manifest names the same bytes; then it reads like any output. The bytes that cross over are
# cfg-if's rlib, made first by plain rustc at the canonical paths (jobs.sh shows the sandbox
# writes the same), uploaded as if it were an input, then published by the job.
# Costs one sandboxed compile of cfg-if and one plain one (about 10 s under ASan).
. "$top_srcdir/tests/tap.sh"
. "$top_srcdir/tests/daemon/lib.sh"

[ "$(id -u)" = 0 ] || skip_all "needs root (sandbox, store, FUSE)"
command -v jq >/dev/null || skip_all "needs jq"
[ -c /dev/fuse ] || skip_all "no /dev/fuse"
[ -d "$REGISTRY/cfg-if-1.0.0" ] || skip_all "needs librust-cfg-if-dev"

tap_plan 17
daemon_setup
toolchain_install || bail "no toolchain tree"
daemon_start --jobs 1 || bail "cachepotd did not start"
MNT=$T/mnt; mkdir -p "$MNT"
"$top_builddir/cachepot-fs" "$STORE" "$MNT" -f 2>>"$T/fs.log" &
MOUNT_PIDS=$!; MOUNTS=$MNT
for _ in $(seq 1 100); do [ -d "$MNT/ac" ] && break; sleep 0.1; done
[ -d "$MNT/ac" ] || bail "cachepot-fs did not mount: $(tail -n 5 "$T/fs.log")"

as_nobody() { setpriv --reuid=65534 --regid=65534 --clear-groups "$@"; }
get_code() { curl -s -o /dev/null -w '%{http_code}' --max-time 30 --unix-socket "$SOCK" "http://d/v1/blobs/$1"; }
# enoent PATH: stat(2) fails with ENOENT and nothing else.
enoent() {
	python3 -c 'import errno, os, sys
try:
    os.stat(sys.argv[1])
except OSError as e:
    sys.exit(0 if e.errno == errno.ENOENT else 1)
sys.exit(1)' "$1"
}
listed() { ls "$MNT/cas" | grep -qx "$1"; }

CFG=cfg-if-1.0.0
lib_argv cfg_if 2018 /cachepot/registry/$CFG/src/lib.rs 4a499ef178f2ff1a > "$T/argv"
pkg_env cfg-if 1.0.0 cfg_if > "$T/env"
# cfg-if's rlib by plain rustc at the canonical paths (bwrap binds a copy at /cachepot only).
P=$T/plain; mkdir -p "$P/registry/$CFG/src" "$P/out" "$P/target/debug/deps"
cp "$REGISTRY/$CFG/src/lib.rs" "$P/registry/$CFG/src/"
bwrap --bind / / --bind "$P" /cachepot --chdir /cachepot/registry/$CFG --clearenv \
	$(jq -r '.[] | "--setenv \(.[0]) \(.[1])"' "$T/env") \
	"$(find_rustc)" $(jq -r '.[1:][]' "$T/argv") > /dev/null 2>&1 || bail "plain rustc failed"
cp "$P/out/libcfg_if-4a499ef178f2ff1a.rlib" "$T/rlib"

# --- before any manifest names them ---
registry_inputs $CFG > "$T/inputs" || bail "uploading inputs"
SRC=$(awk 'NR == 1 { print $2 }' "$T/inputs")
RLIB=$(put_blob "$T/rlib") || bail "uploading the rlib"
check "the uploaded blobs are in the store's cas/" \
	test -f "$STORE/cas/$(printf %s "$SRC" | cut -c1-2)/$SRC" -a -f "$STORE/cas/$(printf %s "$RLIB" | cut -c1-2)/$RLIB"
check "GET of an uploaded input (lib.rs) by root: 404" test "$(get_code "$SRC")" = 404
check "GET of it by uid 65534: 404" test "$(as_nobody curl -s -o /dev/null -w '%{http_code}' --unix-socket "$SOCK" "http://d/v1/blobs/$SRC")" = 404
check "GET of the uploaded rlib bytes: 404" test "$(get_code "$RLIB")" = 404
check "through the mount, cas/<lib.rs> is ENOENT" enoent "$MNT/cas/$SRC"
check "... and cas/<rlib> too" enoent "$MNT/cas/$RLIB"
check "the mount's cas/ lists neither" sh -c "! ls '$MNT/cas' | grep -qxE '$SRC|$RLIB'"
check "asking which blobs are missing is a writer's question: 403 for uid 65534" \
	test "$(as_nobody curl -s -o /dev/null -w '%{http_code}' --unix-socket "$SOCK" \
		--data-binary "{\"blobs\":[\"$SRC\"]}" http://d/v1/blobs/missing)" = 403

# --- the job uses the input, and publishes the rlib's bytes ---
job_json "$(cat "$T/argv")" "$(cat "$T/env")" /cachepot/registry/$CFG "$T/inputs" > "$T/job.json"
with_key "$T/job.json" > /dev/null
code=$(api POST /v1/jobs --data-binary "@$T/job.json")
check "the job compiles with its uploaded inputs (200)" test "$code" = 200
[ "$code" = 200 ] || sed 's/^/# /' "$T/body" | head -c 2000
OUT=$(jq -r '.manifest.manifest.outputs[] | select(.name | endswith(".rlib")) | .sha256' "$T/body")
check "its manifest names the uploaded rlib's bytes ($OUT)" test "$OUT" = "$RLIB"
code=$(get_code "$RLIB")
check "now GET of the rlib: 200" test "$code" = 200
check "... byte for byte" sh -c "curl -s --unix-socket '$SOCK' http://d/v1/blobs/$RLIB | cmp -s - '$T/rlib'"
check "through the mount, cas/<rlib> reads the same bytes" cmp "$MNT/cas/$RLIB" "$T/rlib"
check "... and cas/ lists it" listed "$RLIB"
check "the source file no manifest names stays 404" test "$(get_code "$SRC")" = 404
check "... and ENOENT through the mount" enoent "$MNT/cas/$SRC"

fusermount3 -u "$MNT" 2>/dev/null || umount -l "$MNT"
wait "$MOUNT_PIDS" 2>/dev/null; MOUNT_PIDS=; MOUNTS=
check "the daemon stops cleanly" daemon_stop
