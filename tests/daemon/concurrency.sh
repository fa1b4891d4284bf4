#!/bin/sh
# Concurrency: 20 identical jobs at once compile once (coalescing), 50 different jobs at once all
# complete with 2 workers (none lost), and a full queue answers 503 instead of hanging.
. "$top_srcdir/tests/tap.sh"
. "$top_srcdir/tests/daemon/lib.sh"

[ "$(id -u)" = 0 ] || skip_all "needs root (sandbox)"
command -v jq >/dev/null || skip_all "needs jq"

tap_plan 10
daemon_setup
toolchain_install || bail "no toolchain tree"
daemon_start --jobs 2 || bail "cachepotd did not start"

# tiny_job N: a job compiling a one-function crate that returns N, with its key, in $T/job-N.json
tiny_job() {
	printf 'pub fn value() -> u64 { %s }\n' "$1" > "$T/src-$1.rs"
	h=$(put_blob "$T/src-$1.rs") || return 1
	echo "/cachepot/cwd/src/lib.rs $h" > "$T/inputs-$1"
	lib_argv "tiny$1" 2021 /cachepot/cwd/src/lib.rs "$(printf '%016x' "$1")" > "$T/argv-$1"
	job_json "$(cat "$T/argv-$1")" '[]' /cachepot/cwd "$T/inputs-$1" > "$T/job-$1.json"
	with_key "$T/job-$1.json" > /dev/null
}

# submit_all FILE...: POST each job at once; codes in $T/codes (one per line), keys in $T/keys
submit_all() {
	rm -f "$T"/ans-*
	i=0 pids=
	for f in "$@"; do
		i=$((i + 1))
		curl -s -o "$T/ans-$i" -w '%{http_code}\n' --max-time 600 --unix-socket "$SOCK" \
			--data-binary "@$f" http://d/v1/jobs > "$T/code-$i" &
		pids="$pids $!"
	done
	# not a bare `wait`: the daemon is a child of this shell too
	for p in $pids; do wait "$p"; done
	cat "$T"/code-* > "$T/codes"
	for a in "$T"/ans-*; do jq -r '.key // empty' "$a"; done > "$T/keys"
	rm -f "$T"/code-*
}

# 1. 20 identical jobs
tiny_job 0 || bail "job"
set --
for _ in $(seq 1 20); do set -- "$@" "$T/job-0.json"; done
submit_all "$@"
check "20 identical jobs: all answered 200" [ "$(grep -c '^200$' "$T/codes")" = 20 ]
check "... all with the same key" eval '[ "$(sort -u "$T/keys" | wc -l)" = 1 ] && [ "$(wc -l < "$T/keys")" = 20 ]'
check "... exactly one sandbox run" [ "$(metric sandbox_runs_total)" = 1 ]
echo "# coalesced $(metric jobs_coalesced_total), answered from the store $(metric jobs_cache_hits_total)"
check "... the other 19 coalesced or hit" [ $(( $(metric jobs_coalesced_total) + $(metric jobs_cache_hits_total) )) = 19 ]

# 2. 50 different jobs, 2 workers
set --
for n in $(seq 1 50); do tiny_job "$n" || bail "job $n"; set -- "$@" "$T/job-$n.json"; done
submit_all "$@"
check "50 different jobs with --jobs 2: all answered 200" [ "$(grep -c '^200$' "$T/codes")" = 50 ]
check "... 50 distinct keys" [ "$(sort -u "$T/keys" | wc -l)" = 50 ]
check "... 50 more sandbox runs, 51 published" eval '[ "$(metric sandbox_runs_total)" = 51 ] && [ "$(metric jobs_published_total)" = 51 ]'
daemon_stop || not_ok "stop"

# 3. a full queue: one worker, a queue of one, eight different jobs at once
daemon_start --jobs 1 --queue 1 || bail "restart"
set --
for n in $(seq 100 107); do tiny_job "$n" || bail "job $n"; set -- "$@" "$T/job-$n.json"; done
submit_all "$@"
echo "# codes: $(sort "$T/codes" | uniq -c | tr '\n' ' ')"
check "a full queue answers 503 (not a hang)" grep -q '^503$' "$T/codes"
check "... and every job is answered 200 or 503" [ "$(grep -c -e '^200$' -e '^503$' "$T/codes")" = 8 ]
check "... no job directory is left" [ -z "$(ls -A "$STORE/jobs")" ]
daemon_stop
