#!/bin/sh
# A job's result does not depend on the kvm backend: cfg-if through `cachepotd --sandbox bwrap`
# and `--sandbox kvm`, each on a fresh store, gives the same key, the same outputs byte for byte
# and the same stderr; afterwards no QEMU process, no run directory (under the daemon's TMPDIR)
# and no job directory is left, and a daemon killed mid-job leaves no QEMU running.
# `--sandbox kvm` with no guest, or with no /dev/kvm and no --kvm-allow-tcg, stops cachepotd
# at start. Here (no /dev/kvm) the kvm half runs on TCG: about 2-3 min on a loaded 2-core
# machine (the toolchain's ext4 image made once per toolchain id, ~10 s).
. "$top_srcdir/tests/tap.sh"
. "$top_srcdir/tests/daemon/lib.sh"

[ "$(id -u)" = 0 ] || skip_all "needs root (sandbox, store)"
command -v jq >/dev/null || skip_all "needs jq"
[ -d "$REGISTRY/cfg-if-1.0.0" ] || skip_all "needs librust-cfg-if-dev"
[ -x /usr/bin/qemu-system-x86_64 ] || skip_all "kvm backend: no qemu-system-x86_64 (Debian's qemu-system-x86)"
guest=$top_builddir/tests/sandbox/kvm-guest
log=$("$top_srcdir/contrib/kvm-guest.sh" "$guest" "$top_builddir/sandbox/cachepot-kvm-init" 2>&1) ||
	skip_all "kvm backend: no guest kernel ($(echo "$log" | tail -1))"

tap_plan 13
daemon_setup
toolchain_install || bail "no toolchain tree"

# refusals at start, before anything is served
timeout 20 "$CACHEPOTD" --store "$T/noguest-store" --socket "$T/noguest.sock" --sandbox kvm \
	--kvm-dir "$T/no-such-guest" --kvm-allow-tcg > "$T/noguest.log" 2>&1
rc=$?
check "--sandbox kvm with no guest stops cachepotd at start (exit $rc: $(head -c 300 "$T/noguest.log" | tr '\n' ' '))" \
	eval '[ $rc != 0 ] && [ $rc != 124 ] && grep -q "sandbox kvm:.*kvm-guest.sh" "$T/noguest.log" && [ ! -S "$T/noguest.sock" ]'
# As the daemon decides: a character device that everyone, or a group other than root's, may
# read and write. A root-only node (0600) is as good as none: the refusal is seen there too.
kvm_usable() {
	[ -c /dev/kvm ] || return 1
	mode=$(stat -c %a /dev/kvm) gid=$(stat -c %g /dev/kvm)
	case $mode in *[67]) return 0 ;; esac
	[ "$gid" != 0 ] && case $mode in *[67]?) return 0 ;; esac
	return 1
}
if kvm_usable; then
	ok "# SKIP /dev/kvm is usable here: the refusal without it is not seen"
else
	timeout 20 "$CACHEPOTD" --store "$T/notcg-store" --socket "$T/notcg.sock" --sandbox kvm \
		--kvm-dir "$guest" > "$T/notcg.log" 2>&1
	rc=$?
	check "--sandbox kvm with no /dev/kvm and no --kvm-allow-tcg stops cachepotd at start (exit $rc: $(head -c 300 "$T/notcg.log" | tr '\n' ' '))" \
		eval '[ $rc != 0 ] && [ $rc != 124 ] && grep -q "sandbox kvm: /dev/kvm" "$T/notcg.log" && [ ! -S "$T/notcg.sock" ]'
fi

# run_job NAME: cfg-if through the running daemon; the answer in $T/NAME.answer, the outputs'
# names and hashes in $T/NAME.outputs, their bytes in $T/NAME.blobs/.
run_job() {
	registry_inputs cfg-if-1.0.0 > "$T/cfg.inputs" || return 1
	lib_argv cfg_if 2018 /cachepot/registry/cfg-if-1.0.0/src/lib.rs 4a499ef178f2ff1a > "$T/argv"
	pkg_env cfg-if 1.0.0 cfg_if > "$T/env"
	job_json "$(cat "$T/argv")" "$(cat "$T/env")" /cachepot/registry/cfg-if-1.0.0 "$T/cfg.inputs" > "$T/cfg.json"
	with_key "$T/cfg.json" > /dev/null
	code=$(api POST /v1/jobs --data-binary "@$T/cfg.json")
	cp "$T/body" "$T/$1.answer"
	[ "$code" = 200 ] || { echo "# $1 cfg-if: $code"; head -c 2000 "$T/body" | sed 's/^/# /'; return 1; }
	jq -r '.manifest.manifest.outputs[] | "\(.name) \(.sha256)"' "$T/$1.answer" | sort > "$T/$1.outputs"
	mkdir -p "$T/$1.blobs"
	while read -r name h; do
		api GET "/v1/blobs/$h" > /dev/null && cp "$T/body" "$T/$1.blobs/$name"
	done < "$T/$1.outputs"
}

daemon_start --jobs 1 --sandbox bwrap || bail "cachepotd --sandbox bwrap did not start"
check "cfg-if compiles through --sandbox bwrap" run_job bwrap
check "... and cachepotd stops cleanly" daemon_stop

STORE=$T/store-kvm SOCK=$T/kvm.sock
toolchain_install || bail "no toolchain tree in the second store"
# the runs' images under a directory of this test (the daemon's TMPDIR)
mkdir -m 0755 "$T/kvm-tmp"
export TMPDIR="$T/kvm-tmp"
daemon_start --jobs 1 --sandbox kvm --kvm-dir "$guest" --kvm-allow-tcg || bail "cachepotd --sandbox kvm did not start"
check "the daemon names the kvm backend at start" grep -q "sandbox kvm: QEMU microvm" "$T/daemon.log"
check "cfg-if compiles through --sandbox kvm" run_job kvm
check "the same key" eval '[ "$(jq -r .key "$T/bwrap.answer")" = "$(jq -r .key "$T/kvm.answer")" ] &&
	[ "$(jq -r .key "$T/kvm.answer")" != null ]'
check "the same outputs, names and hashes ($(wc -l < "$T/kvm.outputs") files)" \
	eval '[ -s "$T/kvm.outputs" ] && cmp -s "$T/bwrap.outputs" "$T/kvm.outputs"'
check "byte-identical output files" diff -r "$T/bwrap.blobs" "$T/kvm.blobs"
check "the same stderr" eval '[ "$(jq -S .stderr "$T/bwrap.answer")" = "$(jq -S .stderr "$T/kvm.answer")" ]'
check "... and cachepotd stops cleanly" daemon_stop
qemus() { # QEMU processes whose images were under this test's directory
	for p in /proc/[0-9]*; do
		case $(readlink "$p/exe" 2>/dev/null) in *qemu-system*) ;; *) continue ;; esac
		tr '\0' ' ' < "$p/cmdline" 2>/dev/null | grep -q "$T/kvm-tmp" && echo "$p"
	done
}
check "no QEMU process, run directory or job directory left ($(qemus | wc -l) QEMU, $(ls -A "$T/kvm-tmp" | wc -l) dirs)" \
	eval '[ -z "$(qemus)" ] && [ -z "$(ls -A "$T/kvm-tmp")" ] && [ -z "$(ls -A "$STORE/jobs")" ]'

# A daemon killed mid-job leaves no machine running: QEMU dies with the thread that started it.
STORE=$T/store-kill SOCK=$T/kill.sock
toolchain_install || bail "no toolchain tree in the third store"
daemon_start --jobs 1 --sandbox kvm --kvm-dir "$guest" --kvm-allow-tcg || bail "cachepotd --sandbox kvm did not start again"
registry_inputs cfg-if-1.0.0 > /dev/null # the inputs, uploaded to this store
api POST /v1/jobs --data-binary "@$T/cfg.json" > /dev/null &
client=$!
end=$(($(date +%s) + 120))
while [ -z "$(qemus)" ] && [ "$(date +%s)" -lt $end ]; do sleep 0.5; done
seen=$(qemus | wc -l)
kill -KILL "$DAEMON_PID"; wait "$DAEMON_PID" 2>/dev/null; DAEMON_PID=
wait "$client" 2>/dev/null
end=$(($(date +%s) + 10))
while [ -n "$(qemus)" ] && [ "$(date +%s)" -lt $end ]; do sleep 0.5; done
check "a daemon killed while its job's machine runs leaves no QEMU ($seen running before, $(qemus | wc -l) after)" \
	eval '[ "$seen" -ge 1 ] && [ -z "$(qemus)" ]'
