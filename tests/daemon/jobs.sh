#!/bin/sh
# The job path end to end: a real cachepotd, the real bwrap sandbox and rustc, real crates of
# the corpus (cfg-if, then crc32fast, which --extern's it from the first job's outputs), the
# manifests back, the outputs read through a real cachepot-fs mount when there is one, a failed
# compile, and a clean SIGTERM.
. "$top_srcdir/tests/tap.sh"
. "$top_srcdir/tests/daemon/lib.sh"

[ "$(id -u)" = 0 ] || skip_all "needs root (sandbox, store)"
command -v jq >/dev/null || skip_all "needs jq"
[ -d "$REGISTRY/cfg-if-1.0.0" ] && [ -d "$REGISTRY/crc32fast-1.3.2" ] || skip_all "needs librust-cfg-if-dev, librust-crc32fast-dev"

tap_plan 22
daemon_setup
toolchain_install || bail "no toolchain tree"
daemon_start --jobs 2 || bail "cachepotd did not start"

# 1. cfg-if
CFG=cfg-if-1.0.0
registry_inputs $CFG > "$T/cfg.inputs" || bail "uploading inputs"
lib_argv cfg_if 2018 /cachepot/registry/$CFG/src/lib.rs 4a499ef178f2ff1a > "$T/argv"
pkg_env cfg-if 1.0.0 cfg_if > "$T/env"
job_json "$(cat "$T/argv")" "$(cat "$T/env")" /cachepot/registry/$CFG "$T/cfg.inputs" > "$T/cfg.json"
KEY1=$(with_key "$T/cfg.json")
code=$(api POST /v1/jobs --data-binary "@$T/cfg.json")
check "cfg-if compiles in the sandbox (200)" [ "$code" = 200 ]
[ "$code" = 200 ] || sed 's/^/# /' "$T/body" | head -c 3000
cp "$T/body" "$T/cfg.answer"
check "the answer names the key" [ "$(jq -r .key "$T/cfg.answer")" = "$KEY1" ]
# jobs/ holds every job's tree, outputs included: only root and the sandbox's group enter it.
check "jobs/ is 0710 root:$(( 0x7C000000 )) ($(stat -c '%a %u:%g' "$STORE/jobs"))" \
	[ "$(stat -c '%a %u:%g' "$STORE/jobs")" = "710 0:$(( 0x7C000000 ))" ]
names=$(jq -r '.manifest.manifest.outputs[].name' "$T/cfg.answer" | sort | tr '\n' ' ')
check "the manifest lists exactly the expected outputs ($names)" \
	[ "$names" = "cfg_if-4a499ef178f2ff1a.d libcfg_if-4a499ef178f2ff1a.rlib libcfg_if-4a499ef178f2ff1a.rmeta " ]
code=$(api GET /v1/manifests/$KEY1)
check "GET /v1/manifests/<key> serves it" eval '[ "$code" = 200 ] && jqe ".manifest.key == \"$KEY1\"" "$T/body"'
RLIB=$(jq -r '.manifest.manifest.outputs[] | select(.name | endswith(".rlib")) | .sha256' "$T/cfg.answer")
RMETA=$(jq -r '.manifest.manifest.outputs[] | select(.name | endswith(".rmeta")) | .sha256' "$T/cfg.answer")
code=$(api GET /v1/blobs/$RLIB -D "$T/headers")
check "the rlib blob is served, hash-correct, immutable" eval '[ "$code" = 200 ] &&
	[ "$(sha256_of "$T/body")" = "$RLIB" ] && grep -qi "^cache-control: public, max-age=31536000, immutable" "$T/headers"'
cp "$T/body" "$T/cfg.rlib"
check "the .d file names canonical paths" sh -c "curl -s --unix-socket '$SOCK' http://d/v1/blobs/$(jq -r '.manifest.manifest.outputs[] | select(.name | endswith(".d")) | .sha256' "$T/cfg.answer") | grep -q '^/cachepot/out/libcfg_if-4a499ef178f2ff1a.rlib: /cachepot/registry/$CFG/src/lib.rs'"

# 1b. the same invocation by plain rustc (the host's, unsandboxed) at the same canonical paths:
# bwrap only binds a copy of the tree at /cachepot. The sandbox must not change the output.
P=$T/plain; mkdir -p "$P/registry/$CFG/src" "$P/out" "$P/target/debug/deps"
cp "$REGISTRY/$CFG/src/lib.rs" "$P/registry/$CFG/src/"
HOST_RUSTC=$(find_rustc)
bwrap --bind / / --bind "$P" /cachepot --chdir /cachepot/registry/$CFG --clearenv \
	$(jq -r '.[] | "--setenv \(.[0]) \(.[1])"' "$T/env") \
	"$HOST_RUSTC" $(jq -r '.[1:][]' "$T/argv") > /dev/null 2>&1
check "plain rustc at the same canonical paths writes the same rlib" \
	[ "$(sha256_of "$P/out/libcfg_if-4a499ef178f2ff1a.rlib")" = "$RLIB" ]

# 2. the same job again: answered from the store, no second sandbox
runs=$(metric sandbox_runs_total)
code=$(api POST /v1/jobs --data-binary "@$T/cfg.json")
check "resubmitting is a hit: 200, no sandbox run" eval '[ "$code" = 200 ] && [ "$(metric sandbox_runs_total)" = "$runs" ] && [ "$(metric jobs_cache_hits_total)" = 1 ]'

# 3. crc32fast, with cfg-if's rlib and rmeta (blobs already in the store) as inputs
CRC=crc32fast-1.3.2
registry_inputs $CRC > "$T/crc.inputs" || bail "uploading inputs"
{ echo "/cachepot/target/debug/deps/libcfg_if-4a499ef178f2ff1a.rlib $RLIB"
  echo "/cachepot/target/debug/deps/libcfg_if-4a499ef178f2ff1a.rmeta $RMETA"; } >> "$T/crc.inputs"
lib_argv crc32fast 2015 /cachepot/registry/$CRC/src/lib.rs 1e2b0a4a3e423523 \
	'["--cfg", "feature=\"default\"", "--cfg", "feature=\"std\"",
	  "--extern", "cfg_if=/cachepot/target/debug/deps/libcfg_if-4a499ef178f2ff1a.rmeta"]' > "$T/argv"
pkg_env crc32fast 1.3.2 crc32fast > "$T/env"
job_json "$(cat "$T/argv")" "$(cat "$T/env")" /cachepot/registry/$CRC "$T/crc.inputs" > "$T/crc.json"
KEY2=$(with_key "$T/crc.json")
code=$(api POST /v1/jobs --data-binary "@$T/crc.json")
check "crc32fast compiles against cfg-if's outputs (200)" [ "$code" = 200 ]
[ "$code" = 200 ] || sed 's/^/# /' "$T/body" | head -c 3000
cp "$T/body" "$T/crc.answer"
check "its manifest has the rlib" jqe '.manifest.manifest.outputs | map(.name) | index("libcrc32fast-1e2b0a4a3e423523.rlib") != null' "$T/crc.answer"

# 4. the outputs through a real cachepot-fs mount of the store (read-only secondary)
if [ -x "$top_builddir/cachepot-fs" ]; then
	MNT=$T/mnt; mkdir -p "$MNT"
	"$top_builddir/cachepot-fs" "$STORE" "$MNT" -f 2>>"$T/fs.log" &
	MOUNT_PIDS=$!; MOUNTS=$MNT
	for _ in $(seq 1 50); do [ -d "$MNT/ac" ] && break; sleep 0.1; done
	check "cachepot-fs shows cfg-if's rlib, byte-identical" cmp "$MNT/ac/$KEY1/libcfg_if-4a499ef178f2ff1a.rlib" "$T/cfg.rlib"
	CRC_RLIB=$(jq -r '.manifest.manifest.outputs[] | select(.name | endswith(".rlib")) | .sha256' "$T/crc.answer")
	check "cachepot-fs shows crc32fast's rlib with the manifest's hash" \
		eval '[ -n "$KEY2" ] && [ ${#CRC_RLIB} = 64 ] && [ "$(sha256_of "$MNT/ac/$KEY2/libcrc32fast-1e2b0a4a3e423523.rlib")" = \
		  "$CRC_RLIB" ]'
	fusermount3 -u "$MNT" 2>/dev/null || umount -l "$MNT"
	wait "$MOUNT_PIDS" 2>/dev/null; MOUNT_PIDS=; MOUNTS=
else
	ok "# SKIP no cachepot-fs built"
	ok "# SKIP no cachepot-fs built"
fi

# 5. a compile error: 422 with rustc's stderr, nothing published
printf 'pub fn broken( -> u32 { 1 }\n' > "$T/broken.rs"
h=$(put_blob "$T/broken.rs")
echo "/cachepot/cwd/src/lib.rs $h" > "$T/broken.inputs"
lib_argv broken 2021 /cachepot/cwd/src/lib.rs 0000000000000001 > "$T/argv"
job_json "$(cat "$T/argv")" '[]' /cachepot/cwd "$T/broken.inputs" > "$T/broken.json"
KEY3=$(with_key "$T/broken.json")
code=$(api POST /v1/jobs --data-binary "@$T/broken.json")
check "a compile error answers 422" [ "$code" = 422 ]
head -c 600 "$T/body" | sed 's/^/# /'; echo
check "... with rustc's stderr and status" jqe '(.stderr | test("unclosed delimiter")) and .exit_status != 0' "$T/body"
code=$(api GET /v1/manifests/$KEY3)
check "... and is not published" [ "$code" = 404 ]

check "no job directory is left behind" [ -z "$(ls -A "$STORE/jobs")" ]
check "/v1/status reports the runs" jqe '.sandbox_runs == 3 and .published == 2' "$(api GET /v1/status >/dev/null; echo "$T/body")"
check "SIGTERM stops the daemon cleanly (exit 0)" daemon_stop

# The sandbox's ids belong to nothing else: a user database naming one stops cachepotd at start.
sed '$a cachepot-clash:x:2080374790:100::/:/bin/false' /etc/passwd > "$T/passwd"
timeout 20 unshare -m sh -c 'mount --bind "$1" /etc/passwd && exec "$2" --store "$3" --socket "$4"' \
	sh "$T/passwd" "$CACHEPOTD" "$STORE" "$T/clash.sock" > "$T/clash.log" 2>&1
rc=$?
check "a user with a sandbox id stops cachepotd at start (exit $rc: $(grep -m1 cachepot-clash "$T/clash.log"))" \
	eval '[ $rc -ne 0 ] && [ $rc -ne 124 ] && grep -q "user cachepot-clash (uid 2080374790, gid 100) is in the sandbox" "$T/clash.log"'

# No cgroup limits to be had (an empty tmpfs over /sys/fs/cgroup): cachepotd refuses to start,
# naming the way out; with --allow-no-cgroup-limits it starts.
timeout 20 unshare -m sh -c 'mount -t tmpfs none /sys/fs/cgroup && exec "$1" --store "$2" --socket "$3"' \
	sh "$CACHEPOTD" "$STORE" "$T/nocg.sock" > "$T/nocg.log" 2>&1
rc=$?
check "no cgroup limits: cachepotd refuses to start (exit $rc: $(grep -m1 'no memory' "$T/nocg.log" | cut -c1-120))" \
	eval '[ $rc -ne 0 ] && [ $rc -ne 124 ] && grep -q "no memory and pids limits can be set.*--allow-no-cgroup-limits" "$T/nocg.log"'
timeout 5 unshare -m sh -c 'mount -t tmpfs none /sys/fs/cgroup && exec "$1" --store "$2" --socket "$3" --allow-no-cgroup-limits' \
	sh "$CACHEPOTD" "$STORE" "$T/nocg.sock" > "$T/nocg2.log" 2>&1
rc=$?
check "... and starts with --allow-no-cgroup-limits (exit $rc)" \
	eval '[ $rc = 124 ] && grep -q "jobs run with rlimits alone" "$T/nocg2.log" && grep -q listening "$T/nocg2.log"'
