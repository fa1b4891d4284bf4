#!/bin/sh
# SIGKILL mid-job: the daemon dies with a sandbox running and its scratch on disk; started again
# it sweeps jobs/ (and the sandbox's output tmpfs), fsck finds the store clean, and the same job
# then succeeds.
. "$top_srcdir/tests/tap.sh"
. "$top_srcdir/tests/daemon/lib.sh"

[ "$(id -u)" = 0 ] || skip_all "needs root (sandbox)"
command -v jq >/dev/null || skip_all "needs jq"

tap_plan 12
daemon_setup
toolchain_install || bail "no toolchain tree"
daemon_start --jobs 1 || bail "cachepotd did not start"

# A crate slow enough to be caught mid-compile: a few thousand generated functions.
awk 'BEGIN { for (i = 0; i < 6000; i++) printf "pub fn f%d(x: u64) -> u64 { x.wrapping_mul(%d).rotate_left(%d) ^ %d }\n", i, i + 3, i % 63, i }' > "$T/slow.rs"
h=$(put_blob "$T/slow.rs") || bail "blob"
echo "/cachepot/cwd/src/lib.rs $h" > "$T/inputs"
lib_argv slow 2021 /cachepot/cwd/src/lib.rs 00000000000000aa > "$T/argv"
job_json "$(cat "$T/argv")" '[]' /cachepot/cwd "$T/inputs" > "$T/job.json"
KEY=$(with_key "$T/job.json")

curl -s -o /dev/null --max-time 600 --unix-socket "$SOCK" --data-binary "@$T/job.json" http://d/v1/jobs &
CURL=$!
for _ in $(seq 1 200); do
	[ "$(curl -s --unix-socket "$SOCK" http://d/v1/status | jq .running)" = 1 ] && break
	sleep 0.05
done
sleep 0.5
check "a job is running, its directory on disk" [ -n "$(ls -A "$STORE/jobs")" ]
kill -KILL "$DAEMON_PID"; wait "$DAEMON_PID" 2>/dev/null; DAEMON_PID=
wait "$CURL" 2>/dev/null
sleep 0.5
echo "# left behind: $(ls "$STORE/jobs" | tr '\n' ' ') mounts: $(grep -c " $STORE/jobs" /proc/mounts)"

daemon_start --jobs 1 || bail "restart"
check "restarted: jobs/ swept" [ -z "$(ls -A "$STORE/jobs")" ]
check "... no tmpfs left mounted in jobs/" [ "$(grep -c " $STORE/jobs" /proc/mounts)" = 0 ]
check "... the key was not published" [ "$(api GET /v1/manifests/$KEY)" = 404 ]
daemon_stop || not_ok "stop"
"$CACHEPOTD" --store "$STORE" --fsck > "$T/fsck.out" 2>&1
rc=$?
sed 's/^/# fsck: /' "$T/fsck.out" | tail -3
check "fsck finds the store clean (exit 0)" [ "$rc" = 0 ]

daemon_start --jobs 1 || bail "restart"
code=$(api POST /v1/jobs --data-binary "@$T/job.json")
check "the same job then succeeds" [ "$code" = 200 ]
check "... published under its key" [ "$(api GET /v1/manifests/$KEY)" = 200 ]

# A client that goes away mid-job: the job still completes and is published, nothing crashes.
sed 's/00000000000000aa/00000000000000bb/g' "$T/job.json" | jq 'del(.expected_key)' > "$T/job2.json"
KEY2=$(with_key "$T/job2.json")
curl -s -o /dev/null --max-time 1 --unix-socket "$SOCK" --data-binary "@$T/job2.json" http://d/v1/jobs
for _ in $(seq 1 600); do
	[ "$(api GET /v1/manifests/$KEY2)" = 200 ] && break
	sleep 0.1
done
check "a job whose client hung up still completes and is published" [ "$(api GET /v1/manifests/$KEY2)" = 200 ]

# SIGTERM mid-job: the running job finishes and is answered, then the daemon exits 0.
sed 's/00000000000000aa/00000000000000cc/g' "$T/job.json" | jq 'del(.expected_key)' > "$T/job3.json"
KEY3=$(with_key "$T/job3.json")
curl -s -o "$T/term.answer" -w '%{http_code}' --max-time 600 --unix-socket "$SOCK" \
	--data-binary "@$T/job3.json" http://d/v1/jobs > "$T/term.code" &
CURL=$!
for _ in $(seq 1 200); do
	[ "$(curl -s --unix-socket "$SOCK" http://d/v1/status | jq .running)" = 1 ] && break
	sleep 0.05
done
check "SIGTERM with a job running: the daemon exits 0" daemon_stop
wait "$CURL"
check "... after answering the running job (200)" eval '[ "$(cat "$T/term.code")" = 200 ] && jqe ".key == \"$KEY3\"" "$T/term.answer"'
check "... which is published" sh -c "'$CACHEPOTD' --store '$STORE' --fsck 2>&1 | grep -q ' 3 keys; 0 problems'"
check "... and no job directory is left" [ -z "$(ls -A "$STORE/jobs")" ]
