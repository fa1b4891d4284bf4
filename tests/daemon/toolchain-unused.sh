#!/bin/sh
# Toolchains uploaded and never named by a job are removed (daemon/toolchain_unpack.h): after
# --unused-toolchain-seconds by the periodic sweep, and at start for those whose time passed
# while the daemon was down. One a job named is kept, and so is a tree placed without an upload.
. "$top_srcdir/tests/tap.sh"
. "$top_srcdir/tests/daemon/lib.sh"

[ "$(id -u)" = 0 ] || skip_all "needs root (store)"
command -v jq >/dev/null || skip_all "needs jq"

tap_plan 10
daemon_setup
toolchain_install || bail "no toolchain tree"
PLACED=$TC

# tiny_tree NAME: a one-file toolchain tree in $T/NAME; its id printed.
tiny_tree() {
	mkdir -p "$T/$1/rust/bin" && echo "$1" > "$T/$1/rust/bin/tool" && "$HELPER" toolchain-id "$T/$1"
}
upload() { tar -C "$T/$1" -cf - rust | api PUT "/v1/toolchains/$2" -T -; }
A=$(tiny_tree a) && B=$(tiny_tree b) && C=$(tiny_tree c) || bail "tiny trees"

# A job naming B, made before the uploads so that it follows B's at once (its input is
# missing: 424, but it names the toolchain).
echo "/cachepot/registry/cfg-if-1.0.0/src/lib.rs $(printf missing | sha256sum | cut -c1-64)" > "$T/inputs"
lib_argv cfg_if 2018 /cachepot/registry/cfg-if-1.0.0/src/lib.rs 4a499ef178f2ff1a > "$T/argv"
TC=$B job_json "$(cat "$T/argv")" '[]' /cachepot/registry/cfg-if-1.0.0 "$T/inputs" > "$T/job.json"
with_key "$T/job.json" > /dev/null || bail "key"

TTL=8          # the sweep runs every 2 s
daemon_start --jobs 1 --unused-toolchain-seconds $TTL || bail "cachepotd did not start"
check "two uploads: 201" sh -c "[ \"$(upload a "$A")\" = 201 ] && [ \"$(upload b "$B")\" = 201 ]"
code=$(api POST /v1/jobs --data-binary "@$T/job.json")
check "a job naming the second one: 424 for its input, the toolchain present ($code)" \
	eval '[ "$code" = 424 ] && jqe ".missing_toolchain == null" "$T/body"'

sleep $(( TTL + 4 ))
check "the upload no job named is gone after --unused-toolchain-seconds" test "$(api GET /v1/toolchains/$A)" = 404
check "... and the daemon said so" grep -q "toolchain $A removed: uploaded .* s ago, no job named it" "$T/daemon.log"
check "the one a job named is kept" test "$(api GET /v1/toolchains/$B)" = 204
check "the tree placed without an upload is kept" test "$(api GET /v1/toolchains/$PLACED)" = 204
check "nothing else is left in toolchains/" \
	test "$(ls -A "$STORE/toolchains" | sort | tr '\n' ' ')" = "$(printf '%s\n' "$B" "$PLACED" | sort | tr '\n' ' ')"

# Uploaded, then the daemon stops before the sweep; its time passes while it is down.
check "a third upload: 201" test "$(upload c "$C")" = 201
daemon_stop
sleep $(( TTL + 1 ))
daemon_start --jobs 1 --unused-toolchain-seconds $TTL || bail "cachepotd did not restart"
# What the second run logged: the removal comes before it listens.
stopped=$(grep -n 'cachepotd: stopped' "$T/daemon.log" | tail -n 1 | cut -d: -f1)
tail -n +"$stopped" "$T/daemon.log" > "$T/run2.log"
check "its time passed while the daemon was down: removed at start, before it listens" \
	sh -c "grep -E 'toolchain $C removed|listening on' '$T/run2.log' | head -n 1 | grep -q 'toolchain $C removed'"
check "the daemon stops cleanly" daemon_stop
