#!/bin/sh
# Toolchain upload through the API: the real toolchain tree (tests/sandbox/make-toolchain.sh) as
# a tar stream, unpacked by the daemon, its id recomputed, then used by a real compile.
. "$top_srcdir/tests/tap.sh"
. "$top_srcdir/tests/daemon/lib.sh"

[ "$(id -u)" = 0 ] || skip_all "needs root (sandbox)"
command -v jq >/dev/null || skip_all "needs jq"

tap_plan 11
daemon_setup
sh "$top_srcdir/tests/sandbox/make-toolchain.sh" "$TOOLCHAIN_TREE" >/dev/null || bail "no toolchain tree"
TC=$("$HELPER" toolchain-id "$TOOLCHAIN_TREE") || bail "toolchain id"
daemon_start --jobs 1 || bail "cachepotd did not start"

check "GET /v1/toolchains/<id> before the upload: 404" [ "$(api GET /v1/toolchains/$TC)" = 404 ]

src=$REGISTRY/cfg-if-1.0.0/src/lib.rs
h=$(put_blob "$src") || bail "blob"
echo "/cachepot/registry/cfg-if-1.0.0/src/lib.rs $h" > "$T/inputs"
lib_argv cfg_if 2018 /cachepot/registry/cfg-if-1.0.0/src/lib.rs 4a499ef178f2ff1a > "$T/argv"
job_json "$(cat "$T/argv")" '[]' /cachepot/registry/cfg-if-1.0.0 "$T/inputs" > "$T/job.json"
KEY=$(with_key "$T/job.json")
code=$(api POST /v1/jobs --data-binary "@$T/job.json")
check "a job on an absent toolchain: 424 naming it" eval '[ "$code" = 424 ] && jqe ".missing_toolchain == \"$TC\"" "$T/body"'

# The right tree under its right id, but gzip-compressed: only uncompressed tar is accepted (no
# filter, so no decompression bomb and no external decompressor).
# (Archives larger than one body go in parts of 8 MiB, as the client sends them: daemon/upload.h.)
tar -C "$TOOLCHAIN_TREE" -cf - rust usr | gzip -1 > "$T/tc.tar.gz"
code=$(api_put_parts /v1/toolchains/$TC "$T/tc.tar.gz")
rm -f "$T/tc.tar.gz"
check "a gzip-compressed archive of the right tree: 400" [ "$code" = 400 ]
[ "$code" = 400 ] || sed 's/^/# /' "$T/body"
check "... nothing of it is left in toolchains/" [ -z "$(ls -A "$STORE/toolchains")" ]

start=$(date +%s)
tar -C "$TOOLCHAIN_TREE" -cf - rust usr > "$T/tc.tar"
code=$(api_put_parts /v1/toolchains/$TC "$T/tc.tar" -H 'Content-Type: application/x-tar')
echo "# upload of $(du -sh "$TOOLCHAIN_TREE" | cut -f1) took $(( $(date +%s) - start )) s"
check "PUT /v1/toolchains/<id> with the real tree: 201" [ "$code" = 201 ]
[ "$code" = 201 ] || sed 's/^/# /' "$T/body"
check "GET /v1/toolchains/<id>: 204" [ "$(api GET /v1/toolchains/$TC)" = 204 ]
check "the unpacked tree has the same id" [ "$("$HELPER" toolchain-id "$STORE/toolchains/$TC")" = "$TC" ]
check "no temporary tree is left" [ "$(ls -A "$STORE/toolchains")" = "$TC" ]
check "uploading it again: 200 (already present) at the first part" [ "$(api_put_parts /v1/toolchains/$TC "$T/tc.tar")" = 200 ]
rm -f "$T/tc.tar"
code=$(api POST /v1/jobs --data-binary "@$T/job.json")
check "the job compiles with the uploaded toolchain" eval '[ "$code" = 200 ] && jqe ".key == \"$KEY\"" "$T/body"'
check "the daemon stops cleanly" daemon_stop
