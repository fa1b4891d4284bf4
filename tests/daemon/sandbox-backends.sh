#!/bin/sh
# A job's result does not depend on the sandbox backend: the same jobs (cfg-if, then crc32fast
# against its outputs) through `cachepotd --sandbox bwrap` and `--sandbox docker`, each on a
# fresh store, give the same keys and byte-identical outputs; afterwards dockerd holds no
# container or volume of ours, and a container a killed daemon left is removed at its next
# start. `--sandbox docker` with no dockerd stops cachepotd at start.
# Costs about 60 s with dockerd on a loaded 2-core machine (4 compiles, one import of the
# toolchain as an image of ~500 MB, made once per toolchain id and kept), 20 s without (the
# docker half is skipped).
. "$top_srcdir/tests/tap.sh"
. "$top_srcdir/tests/daemon/lib.sh"

[ "$(id -u)" = 0 ] || skip_all "needs root (sandbox, store)"
command -v jq >/dev/null || skip_all "needs jq"
[ -d "$REGISTRY/cfg-if-1.0.0" ] && [ -d "$REGISTRY/crc32fast-1.3.2" ] || skip_all "needs librust-cfg-if-dev, librust-crc32fast-dev"

DOCKER_SOCK=${CACHEPOT_DOCKER_SOCKET:-/var/run/docker.sock}
docker_api() { p=$1; shift; curl -s --max-time 30 --unix-socket "$DOCKER_SOCK" "$@" "http://docker$p"; }

tap_plan 14
daemon_setup
toolchain_install || bail "no toolchain tree"

# Without dockerd: a clear refusal at start, before anything is served.
timeout 20 "$CACHEPOTD" --store "$T/nodocker-store" --socket "$T/nodocker.sock" --sandbox docker \
	--docker-socket "$T/no-such-dockerd.sock" > "$T/nodocker.log" 2>&1
rc=$?
check "--sandbox docker with no dockerd stops cachepotd at start (exit $rc: $(head -c 300 "$T/nodocker.log" | tr '\n' ' '))" \
	eval '[ $rc != 0 ] && [ $rc != 124 ] && grep -q "sandbox docker.*dockerd" "$T/nodocker.log" && [ ! -S "$T/nodocker.sock" ]'
timeout 20 "$CACHEPOTD" --store "$T/nosuch-store" --socket "$T/nosuch.sock" --sandbox nosuch > "$T/nosuch.log" 2>&1
rc=$?
check "an unknown backend is refused (exit $rc: $(head -c 200 "$T/nosuch.log" | tr '\n' ' '))" \
	eval '[ $rc != 0 ] && [ $rc != 124 ] && grep -q "expected, not .nosuch." "$T/nosuch.log"'

# run_jobs NAME: cfg-if then crc32fast through the running daemon; answers in $T/NAME.*.answer.
run_jobs() {
	registry_inputs cfg-if-1.0.0 > "$T/cfg.inputs" || return 1
	lib_argv cfg_if 2018 /cachepot/registry/cfg-if-1.0.0/src/lib.rs 4a499ef178f2ff1a > "$T/argv"
	pkg_env cfg-if 1.0.0 cfg_if > "$T/env"
	job_json "$(cat "$T/argv")" "$(cat "$T/env")" /cachepot/registry/cfg-if-1.0.0 "$T/cfg.inputs" > "$T/cfg.json"
	with_key "$T/cfg.json" > /dev/null
	code=$(api POST /v1/jobs --data-binary "@$T/cfg.json")
	cp "$T/body" "$T/$1.cfg.answer"
	[ "$code" = 200 ] || { echo "# $1 cfg-if: $code"; head -c 2000 "$T/body" | sed 's/^/# /'; return 1; }
	rlib=$(jq -r '.manifest.manifest.outputs[] | select(.name | endswith(".rlib")) | .sha256' "$T/$1.cfg.answer")
	rmeta=$(jq -r '.manifest.manifest.outputs[] | select(.name | endswith(".rmeta")) | .sha256' "$T/$1.cfg.answer")
	registry_inputs crc32fast-1.3.2 > "$T/crc.inputs" || return 1
	{ echo "/cachepot/target/debug/deps/libcfg_if-4a499ef178f2ff1a.rlib $rlib"
	  echo "/cachepot/target/debug/deps/libcfg_if-4a499ef178f2ff1a.rmeta $rmeta"; } >> "$T/crc.inputs"
	lib_argv crc32fast 2015 /cachepot/registry/crc32fast-1.3.2/src/lib.rs 1e2b0a4a3e423523 \
		'["--cfg", "feature=\"default\"", "--cfg", "feature=\"std\"",
		  "--extern", "cfg_if=/cachepot/target/debug/deps/libcfg_if-4a499ef178f2ff1a.rmeta"]' > "$T/argv"
	pkg_env crc32fast 1.3.2 crc32fast > "$T/env"
	job_json "$(cat "$T/argv")" "$(cat "$T/env")" /cachepot/registry/crc32fast-1.3.2 "$T/crc.inputs" > "$T/crc.json"
	with_key "$T/crc.json" > /dev/null
	code=$(api POST /v1/jobs --data-binary "@$T/crc.json")
	cp "$T/body" "$T/$1.crc.answer"
	[ "$code" = 200 ] || { echo "# $1 crc32fast: $code"; head -c 2000 "$T/body" | sed 's/^/# /'; return 1; }
	# every output's bytes, fetched back from the store
	for a in "$T/$1.cfg.answer" "$T/$1.crc.answer"; do
		jq -r '.manifest.manifest.outputs[] | "\(.name) \(.sha256)"' "$a"
	done | sort > "$T/$1.outputs"
	mkdir -p "$T/$1.blobs"
	while read -r name h; do
		api GET "/v1/blobs/$h" > /dev/null && cp "$T/body" "$T/$1.blobs/$name"
	done < "$T/$1.outputs"
}

# 1. bubblewrap
daemon_start --jobs 2 --sandbox bwrap || bail "cachepotd --sandbox bwrap did not start"
check "the jobs compile through --sandbox bwrap" run_jobs bwrap
check "... and cachepotd stops cleanly" daemon_stop

# 2. docker, on a fresh store (so nothing is a hit)
if ! docker_api /_ping | grep -q OK; then
	for i in 5 6 7 8 9 10 11 12 13 14; do ok "# SKIP docker: dockerd does not answer on $DOCKER_SOCK"; done
	exit 0
fi
STORE=$T/store-docker SOCK=$T/docker.sock
owner=$("$CACHEPOTD" --store "$STORE" --print-public-key 2>/dev/null)
# ours: the containers labelled with this store (other tests may run containers meanwhile)
ours() { docker_api "/containers/json?all=1&filters=%7B%22label%22%3A%5B%22cachepot.owner%3D$owner%22%5D%7D" | jq length; }
volumes_before=$(docker_api /volumes | jq '.Volumes // [] | length')
toolchain_install || bail "no toolchain tree in the second store"
daemon_start --jobs 2 --sandbox docker --docker-socket "$DOCKER_SOCK" || bail "cachepotd --sandbox docker did not start"
check "the daemon names dockerd at start" grep -q "sandbox docker: dockerd" "$T/daemon.log"
check "the jobs compile through --sandbox docker" run_jobs docker
check "the same keys" eval '[ "$(jq -r .key "$T/bwrap.cfg.answer")" = "$(jq -r .key "$T/docker.cfg.answer")" ] &&
	[ "$(jq -r .key "$T/bwrap.crc.answer")" = "$(jq -r .key "$T/docker.crc.answer")" ] &&
	[ "$(jq -r .key "$T/docker.crc.answer")" != null ]'
check "the same outputs, names and hashes ($(wc -l < "$T/docker.outputs") files)" \
	eval '[ -s "$T/docker.outputs" ] && cmp -s "$T/bwrap.outputs" "$T/docker.outputs"'
check "byte-identical output files" diff -r "$T/bwrap.blobs" "$T/docker.blobs"
check "the same diagnostics on stderr" eval '[ "$(jq -S .stderr "$T/bwrap.crc.answer")" = "$(jq -S .stderr "$T/docker.crc.answer")" ]'
check "... and cachepotd stops cleanly" daemon_stop
check "no container or volume left (ours: $(ours), volumes $volumes_before -> $(docker_api /volumes | jq '.Volumes // [] | length'))" \
	eval '[ "$(ours)" = 0 ] && [ "$(docker_api /volumes | jq ".Volumes // [] | length")" = "$volumes_before" ] &&
	      [ -z "$(ls -A "$STORE/jobs")" ]'

# A container the daemon left when it was killed mid-run (planted: created, never started,
# with this store's label) is removed at the next start; another owner's is left alone.
image=$(docker_api '/images/json' | jq -r '[.[].RepoTags[]? | select(startswith("cachepot-toolchain:"))][0]')
plant() {
	printf '{"Image": "%s", "Cmd": ["/bin/true"], "Labels": {"cachepot.owner": "%s"}}' "$image" "$1" |
		curl -s --max-time 30 --unix-socket "$DOCKER_SOCK" -H 'Content-Type: application/json' \
			--data-binary @- "http://docker/containers/create" | jq -r .Id
}
mine=$(plant "$owner") other=$(plant 0000test$$)
daemon_start --jobs 1 --sandbox docker --docker-socket "$DOCKER_SOCK" || bail "cachepotd did not restart"
check "a container left by an earlier run of this store is removed at start (planted $(echo "$mine" | head -c 12), ours now $(ours))" \
	eval '[ "$mine" != null ] && [ -n "$mine" ] && [ "$(ours)" = 0 ] &&
	      grep -q "removed 1 container" "$T/daemon.log"'
check "another owner's container is left alone" \
	eval '[ "$other" != null ] && docker_api "/containers/$other/json" | jq -e .Id > /dev/null'
docker_api "/containers/$other?force=1&v=1" -X DELETE > /dev/null
daemon_stop
