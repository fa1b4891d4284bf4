#!/bin/sh
# Nondeterminism checks (daemon/verify.h) with the real sandbox and rustc: a deterministic crate
# (cfg-if) rebuilds identical; a crate whose build differs on every run is found, counted,
# reported with both hashes of each differing file and marked, while its published entry stays
# byte for byte as it was; --verify-sample 0 never rebuilds, 1 rebuilds every hit; asking for a
# check is a write, bounded, and refused with a clear error for a bad or unknown key.
#
# The planted difference is honest: a real crate compiled by the real sandbox, whose source says
# include_str!("/proc/sys/kernel/random/uuid"), a file the kernel fills with a new random UUID
# on every read, so each build embeds another constant in its rlib and rmeta. The job is made by
# hand: the wrapper itself would not cache this crate (it reads a file outside the mapped roots).
. "$top_srcdir/tests/tap.sh"
. "$top_srcdir/tests/daemon/lib.sh"

[ "$(id -u)" = 0 ] || skip_all "needs root (sandbox, store, setpriv)"
command -v jq >/dev/null || skip_all "needs jq"
command -v setpriv >/dev/null || skip_all "needs setpriv"
[ -d "$REGISTRY/cfg-if-1.0.0" ] || skip_all "needs librust-cfg-if-dev"

tap_plan 45
daemon_setup
toolchain_install || bail "no toolchain tree"

# wait_metric NAME VALUE: until the counter NAME reaches VALUE (a check runs in the background).
wait_metric() {
	for _ in $(seq 1 1200); do
		[ "$(metric "$1")" -ge "$2" ] 2>/dev/null && return 0
		sleep 0.1
	done
	echo "# $1 is $(metric "$1"), not $2"
	return 1
}

# one_file_job NAME SOURCE EXTRA OUT: the job of a one-file lib crate NAME 0.1.0 (SOURCE uploaded,
# -C metadata=EXTRA) in OUT, keyed; prints the key.
one_file_job() {
	ofj_sha=$(put_blob "$2") || return 1
	echo "/cachepot/registry/$1-0.1.0/src/lib.rs $ofj_sha" > "$T/$1.inputs"
	job_json "$(lib_argv "$1" 2021 "/cachepot/registry/$1-0.1.0/src/lib.rs" "$3")" \
		"$(pkg_env "$1" 0.1.0 "$1")" "/cachepot/registry/$1-0.1.0" "$T/$1.inputs" > "$4" &&
		with_key "$4"
}

daemon_start --jobs 1 --verify-sample 0 || bail "cachepotd did not start"

# 1. cfg-if, published; a hit with --verify-sample 0 rebuilds nothing
CFG=cfg-if-1.0.0
registry_inputs $CFG > "$T/cfg.inputs" || bail "uploading inputs"
lib_argv cfg_if 2018 /cachepot/registry/$CFG/src/lib.rs 4a499ef178f2ff1a > "$T/argv"
pkg_env cfg-if 1.0.0 cfg_if > "$T/env"
job_json "$(cat "$T/argv")" "$(cat "$T/env")" /cachepot/registry/$CFG "$T/cfg.inputs" > "$T/cfg.json"
KEY1=$(with_key "$T/cfg.json")
code=$(api POST /v1/jobs --data-binary "@$T/cfg.json")
check "cfg-if is published (200)" [ "$code" = 200 ]
[ "$code" = 200 ] || sed 's/^/# /' "$T/body" | head -c 3000
runs=$(metric sandbox_runs_total)
for _ in 1 2 3; do api POST /v1/jobs --data-binary "@$T/cfg.json" > "$T/code"; done
sleep 1
check "--verify-sample 0: three hits, no sandbox run, nothing sampled" \
	eval '[ "$(cat "$T/code")" = 200 ] && [ "$(metric jobs_cache_hits_total)" = 3 ] &&
	[ "$(metric sandbox_runs_total)" = "$runs" ] && [ "$(metric verify_sampled_total)" = 0 ] &&
	[ "$(metric verify_runs_total)" = 0 ]'

# 2. on demand, from the job record: identical (cachepot verify KEY, which POSTs /v1/verify/<key>)
cachepot_verify() { CACHEPOT_SOCKET=$SOCK CACHEPOT_CONFIG=/dev/null "$top_builddir/cachepot" verify "$@" > "$T/verify.out" 2> "$T/verify.err"; }
cachepot_verify $KEY1; rc=$?
check "cachepot verify <cfg-if>: exit 0" [ $rc = 0 ]
[ $rc = 0 ] || sed 's/^/# /' "$T/verify.err"
check "... its JSON answer: the same, 3 outputs compared, no difference" \
	jqe ".key == \"$KEY1\" and .result == \"same\" and .outputs == 3 and .differences == []" "$T/verify.out"
check "... a sandbox ran, counted as a check without a mismatch" \
	eval '[ "$(metric sandbox_runs_total)" = $((runs + 1)) ] && [ "$(metric verify_runs_total)" = 1 ] &&
	[ "$(metric verify_mismatches_total)" = 0 ]'
check "... and the key is not marked (GET /v1/verify: 404)" [ "$(api GET /v1/verify/$KEY1)" = 404 ]

# 3. who may ask, and what is refused
code=$(setpriv --reuid=65534 --regid=65534 --clear-groups \
	curl -s -o /dev/null -w '%{http_code}' --unix-socket "$SOCK" -X POST "http://d/v1/verify/$KEY1")
check "a uid not on the allow-list asking for a check: 403" [ "$code" = 403 ]
code=$(setpriv --reuid=65534 --regid=65534 --clear-groups \
	curl -s -o /dev/null -w '%{http_code}' --unix-socket "$SOCK" "http://d/v1/verify/$KEY1")
check "... reading a key's mark is open to it (404, not 403)" [ "$code" = 404 ]
check "... and no check ran for it" [ "$(metric verify_runs_total)" = 1 ]
check "a bad key: 400" [ "$(api POST /v1/verify/XYZ)" = 400 ]
check "an unpublished key: 404 'not published'" eval '[ "$(api POST /v1/verify/$(printf %064d 0))" = 404 ] &&
	jqe ".error == \"not published\"" "$T/body"'
cachepot_verify $(printf %064d 0); rc=$?
check "... cachepot verify of it: exit 2, saying why" eval '[ $rc = 2 ] && grep -q "404 not published" "$T/verify.err"'
cachepot_verify XYZ; rc=$?
check "... and of a bad key: exit 2 with the usage" eval '[ $rc = 2 ] && grep -q "usage: cachepot verify KEY" "$T/verify.err"'

# 4. --verify-sample 1 (from the configuration file): every hit is rebuilt, in the background
daemon_stop || bail "cachepotd did not stop"
"$CACHEPOTD" --store "$STORE" --socket "$SOCK" --verify-sample 1.5 > "$T/bad.out" 2>&1; rc=$?
check "--verify-sample 1.5 is refused at start (exit 2) with a clear error" \
	eval '[ $rc = 2 ] && grep -q "verify-sample: a fraction from 0 to 1 expected" "$T/bad.out"'
printf 'verify-sample = nan\n' > "$T/bad.conf"
"$CACHEPOTD" --store "$STORE" --socket "$SOCK" --config "$T/bad.conf" > "$T/bad.out" 2>&1; rc=$?
check "... and so is 'verify-sample = nan' in the configuration file, naming the line" \
	eval '[ $rc = 2 ] && grep -q "bad.conf:1: verify-sample: a fraction" "$T/bad.out"'
printf 'verify-sample = 1\n' > "$T/verify.conf"
daemon_start --jobs 1 --config "$T/verify.conf" || bail "cachepotd did not restart"
runs=$(metric sandbox_runs_total)
code=$(api POST /v1/jobs --data-binary "@$T/cfg.json")
check "--verify-sample 1: a hit is answered 200 from the store" \
	eval '[ "$code" = 200 ] && jqe ".key == \"$KEY1\"" "$T/body"'
wait_metric verify_runs_total 1
code=$(api POST /v1/jobs --data-binary "@$T/cfg.json")
wait_metric verify_runs_total 2
check "... two hits, two checks, two sandbox runs, all the same" \
	eval '[ "$(metric verify_sampled_total)" = 2 ] && [ "$(metric verify_runs_total)" = 2 ] &&
	[ "$(metric sandbox_runs_total)" = $((runs + 2)) ] && [ "$(metric verify_mismatches_total)" = 0 ] &&
	[ "$(metric verify_failed_total)" = 0 ]'
check "... logged as identical" grep -q "verify ${KEY1%"${KEY1#????????????????}"}: 3 outputs rebuilt identical" "$T/daemon.log"

# 5. the planted difference: published, then a hit finds it
R=$T/random-crate
mkdir -p "$R/src"
cat > "$R/src/lib.rs" <<'EOF'
//! A crate whose every build embeds a fresh random value: not reproducible, on purpose.
pub const BUILD_ID: &str = include_str!("/proc/sys/kernel/random/uuid");
pub fn build_id() -> &'static str { BUILD_ID }
EOF
KEY2=$(one_file_job random "$R/src/lib.rs" 0123456789abcdef "$T/rnd.json") || bail "the random crate's job"
h=$(sha256_of "$R/src/lib.rs")
code=$(api POST /v1/jobs --data-binary "@$T/rnd.json")
check "the random crate is published (200)" [ "$code" = 200 ]
[ "$code" = 200 ] || sed 's/^/# /' "$T/body" | head -c 3000
api GET /v1/manifests/$KEY2 > /dev/null
cp "$T/body" "$T/rnd.manifest.before"
RLIB=$(jq -r '.manifest.outputs[] | select(.name | endswith(".rlib")) | .sha256' "$T/rnd.manifest.before")
store_snapshot | grep -v '^jobs/' > "$T/cas.before"
code=$(api POST /v1/jobs --data-binary "@$T/rnd.json")
check "a hit of it is answered 200, the published result" \
	eval '[ "$code" = 200 ] && jqe ".manifest.manifest.outputs | map(select(.sha256 == \"$RLIB\")) | length == 1" "$T/body"'
wait_metric verify_runs_total 3
check "... its check finds a mismatch (cachepotd_verify_mismatches_total 1)" \
	[ "$(metric verify_mismatches_total)" = 1 ]
code=$(api GET /v1/verify/$KEY2)
check "... the key is marked (GET /v1/verify/<key>: 200)" [ "$code" = 200 ]
cp "$T/body" "$T/mark"
check "... the mark names the rlib and the rmeta, the published hash and another rebuilt one" \
	jqe --slurpfile m "$T/rnd.manifest.before" '.result == "different" and
	([.differences[].name] | sort) == ["librandom-0123456789abcdef.rlib", "librandom-0123456789abcdef.rmeta"] and
	all(.differences[]; . as $d | .rebuilt != .published and (.rebuilt | test("^[0-9a-f]{64}$")) and
	    ($m[0].manifest.outputs | map(select(.name == $d.name)) | .[0].sha256) == $d.published)' "$T/mark"
check "... and the .d file, the same on every build, is not among them" \
	jqe '.outputs == 3 and (.differences | length) == 2' "$T/mark"
check "... the log line says NONDETERMINISTIC with both hashes" \
	grep -q "verify $KEY2: NONDETERMINISTIC: librandom-0123456789abcdef.rlib published $RLIB, rebuilt [0-9a-f]\{64\}" "$T/daemon.log"
api GET /v1/manifests/$KEY2 > /dev/null
check "the published manifest is byte for byte unchanged" cmp -s "$T/body" "$T/rnd.manifest.before"
store_snapshot | grep -v '^jobs/' > "$T/cas.after"
check "... and the store's blobs too: the rebuild wrote nothing to cas/" cmp -s "$T/cas.before" "$T/cas.after"
code=$(api POST /v1/jobs --data-binary "@$T/rnd.json")
check "... a later hit still serves the published rlib" \
	eval '[ "$code" = 200 ] && jqe ".manifest.manifest.outputs | map(select(.sha256 == \"$RLIB\")) | length == 1" "$T/body"'
wait_metric verify_runs_total 4
check "the status shows one marked key" eval '[ "$(api GET /v1/status)" = 200 ] && jqe ".verify.marked == 1 and .verify.sample == 1" "$T/body"'

# 6. on demand, the same difference, with the differing files in the answer
cachepot_verify $KEY2; rc=$?
check "cachepot verify <random>: exit 1, saying it does not build reproducibly" \
	eval '[ $rc = 1 ] && grep -q "does not build reproducibly" "$T/verify.err" && jqe ".result == \"different\"" "$T/verify.out"'
check "... its JSON answer names each differing file with both hashes" \
	jqe "(.differences | length) == 2 and (.differences[] | select(.name | endswith(\".rlib\")) | .published == \"$RLIB\" and .rebuilt != \"$RLIB\")" "$T/verify.out"
check "... counted: 5 checks, 3 mismatches" \
	eval '[ "$(metric verify_runs_total)" = 5 ] && [ "$(metric verify_mismatches_total)" = 3 ]'
check "... and the first mark stays as it was" eval '[ "$(api GET /v1/verify/$KEY2)" = 200 ] && cmp -s "$T/body" "$T/mark"'

# 7. a key whose inputs are gone from cas/ cannot be rebuilt on demand: 424, nothing run
daemon_stop || bail "cachepotd did not stop"
rm -f "$STORE/cas/$(echo "$h" | cut -c1-2)/$h"
daemon_start --jobs 1 --verify-sample 0 || bail "cachepotd did not restart"
code=$(api POST /v1/verify/$KEY2)
check "inputs no longer in the store: 424 naming the missing blob" \
	eval '[ "$code" = 424 ] && jqe ".missing == [\"$h\"]" "$T/body"'
check "... and no sandbox ran" [ "$(metric sandbox_runs_total)" = 0 ]
cachepot_verify $KEY2; rc=$?
check "... cachepot verify of it: exit 2, naming the 424" eval '[ $rc = 2 ] && grep -q "424 missing blobs" "$T/verify.err"'
check "the mark survived the restart" eval '[ "$(api GET /v1/verify/$KEY2)" = 200 ] && cmp -s "$T/body" "$T/mark"'
"$top_builddir/cachepot" fsck "$STORE" 2> "$T/fsck.err"; rc=$?
check "cachepot fsck lists the marked key as a note, not as damage (exit 0)" \
	eval '[ $rc = 0 ] && grep -q "note: key $KEY2 is marked: a rebuild gave 2 other outputs" "$T/fsck.err" &&
	[ "$(grep -c "is marked" "$T/fsck.err")" = 1 ] && ! grep "problem\|MISSING\|corrupt" "$T/fsck.err" | grep -q "$KEY2"'

# 8. checks never take the worker from a real job, and their queue is bounded (8, VERIFY_QUEUE_MAX):
# nine published keys of a tiny crate, then, while a slow real job holds the one worker, a hit
# of each: eight checks wait, the ninth is dropped and counted; the checks run after the job.
printf 'pub fn one() -> u32 { 1 }\n' > "$T/tiny.rs"
published=0
for i in 1 2 3 4 5 6 7 8 9; do
	one_file_job tiny "$T/tiny.rs" "$(printf %016x "$i")" "$T/tiny$i.json" > /dev/null || bail "tiny job $i"
	[ "$(api POST /v1/jobs --data-binary "@$T/tiny$i.json")" = 200 ] && published=$((published + 1))
done
check "nine keys of a tiny crate published" [ "$published" = 9 ]
# About a million steps of const evaluation: seconds of the one worker, deterministic.
cat > "$T/spin.rs" <<'EOF'
#![allow(long_running_const_eval)]
pub const SPIN: u64 = {
    let mut i = 0u64;
    let mut x = 0u64;
    while i < 1_000_000 {
        x = x.wrapping_mul(6364136223846793005).wrapping_add(i);
        i += 1;
    }
    x
};
EOF
one_file_job spin "$T/spin.rs" 00000000000000aa "$T/spin.json" > /dev/null || bail "the slow crate's job"
daemon_stop || bail "cachepotd did not stop"
daemon_start --jobs 1 --verify-sample 1 || bail "cachepotd did not restart"
curl -s -o "$T/spin.body" -w '%{http_code}' --max-time 600 --unix-socket "$SOCK" \
	--data-binary "@$T/spin.json" http://d/v1/jobs > "$T/spin.code" &
SPIN_PID=$!
for _ in $(seq 1 600); do [ "$(metric jobs_running)" = 1 ] && break; sleep 0.1; done
for i in 1 2 3 4 5 6 7 8 9; do api POST /v1/jobs --data-binary "@$T/tiny$i.json" > "$T/code.$i"; done
running=$(metric jobs_running)
check "nine hits during the slow job, each answered 200 at once" \
	eval '[ "$(cat "$T"/code.*)" = "$(printf "200%.0s" 1 2 3 4 5 6 7 8 9)" ] && [ "$(metric jobs_cache_hits_total)" = 9 ]'
check "... all sampled, eight checks waiting, one dropped and counted, none run yet" \
	eval '[ "$running" = 1 ] && [ "$(metric verify_sampled_total)" = 9 ] && [ "$(metric verify_dropped_total)" = 1 ] &&
	[ "$(metric verify_runs_total)" = 0 ] && [ "$(api GET /v1/status)" = 200 ] && jqe ".verify.waiting == 8" "$T/body"'
[ "$running" = 1 ] || echo "# the slow job was no longer running when the hits were in: this check cannot conclude"
code=$(api POST /v1/verify/$KEY1)
check "... an on-demand check then: 503, the queue is full" eval '[ "$code" = 503 ] && jqe ".error | test(\"queue is full\")" "$T/body"'
wait $SPIN_PID
check "the slow job is published (200)" [ "$(cat "$T/spin.code")" = 200 ]
wait_metric verify_runs_total 8
check "... then the eight checks ran, all the same" \
	eval '[ "$(metric verify_runs_total)" = 8 ] && [ "$(metric verify_mismatches_total)" = 0 ] &&
	[ "$(metric verify_failed_total)" = 0 ] && [ "$(metric verify_dropped_total)" = 1 ]'
check "the daemon stops cleanly" daemon_stop
