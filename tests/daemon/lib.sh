# Shared by tests/daemon/*.sh (sourced after tap.sh): a real cachepotd on a temporary socket and
# store, curl(1) as the client, jq to build job JSON, and cleanup that runs even on failure.
#
#   daemon_setup                 temp dir $T, store $STORE, socket $SOCK; the trap
#   daemon_start [ARGS...]       start cachepotd (PID in $DAEMON_PID), wait for its socket
#   daemon_stop                  SIGTERM, wait; fails when it does not stop
#   api METHOD PATH [CURL ARGS]  request; body to $T/body, status printed
#   toolchain_install            a toolchain tree in the store (hard-linked, not uploaded); $TC
#   put_blob FILE                upload FILE as a blob, print its sha256
#   job_json ...                 see below
#   store_snapshot               a listing of the store's files (cas, toolchains, jobs, tmp)
set -u

HELPER=$top_builddir/tests/daemon/daemon-helper
CACHEPOTD=$top_builddir/cachepotd
TOOLCHAIN_TREE=$top_builddir/tests/daemon/toolchain
REGISTRY=/usr/share/cargo/registry
DAEMON_PID=
MOUNT_PIDS=
MOUNTS=

daemon_cleanup() {
	for m in $MOUNTS; do
		fusermount3 -u "$m" 2>/dev/null || umount -l "$m" 2>/dev/null
	done
	for p in $MOUNT_PIDS; do kill "$p" 2>/dev/null; done
	if [ -n "$DAEMON_PID" ]; then
		kill -KILL "$DAEMON_PID" 2>/dev/null
		wait "$DAEMON_PID" 2>/dev/null
	fi
	# A killed daemon can leave a sandbox's output tmpfs mounted in jobs/.
	if [ -n "${T:-}" ] && [ -d "$T" ]; then
		grep -o " $T/[^ ]*" /proc/mounts | sort -r | while read -r m; do umount -l "$m"; done
		[ -n "${KEEP:-}" ] || rm -rf "$T"
	fi
}

daemon_setup() {
	T=$(mktemp -d /tmp/cachepotd-test.XXXXXX)
	chmod 755 "$T"
	STORE=$T/store
	SOCK=$T/cachepotd.sock
	trap 'daemon_cleanup' EXIT
	trap 'exit 1' INT TERM
}

daemon_start() {
	"$CACHEPOTD" --store "$STORE" --socket "$SOCK" "$@" 2>>"$T/daemon.log" &
	DAEMON_PID=$!
	for _ in $(seq 1 100); do
		[ -S "$SOCK" ] && curl -s -o /dev/null --unix-socket "$SOCK" http://d/v1/status && return 0
		kill -0 "$DAEMON_PID" 2>/dev/null || break
		sleep 0.1
	done
	echo "# cachepotd did not start:"; sed 's/^/#   /' "$T/daemon.log"
	return 1
}

daemon_stop() {
	[ -n "$DAEMON_PID" ] || return 0
	kill -TERM "$DAEMON_PID"
	for _ in $(seq 1 300); do
		if ! kill -0 "$DAEMON_PID" 2>/dev/null; then
			wait "$DAEMON_PID"; rc=$?
			DAEMON_PID=
			return $rc
		fi
		sleep 0.1
	done
	return 1
}

api() {
	method=$1 path=$2; shift 2
	curl -s -o "$T/body" -w '%{http_code}' --max-time 600 --unix-socket "$SOCK" \
		-X "$method" "$@" "http://cachepotd$path"
}

# api_put_parts PATH FILE [CURL_ARGS...]: PUT FILE to PATH as one upload in parts of 8 MiB
# (daemon/upload.h; one body is at most that); prints the HTTP status of the last part, and
# leaves its answer in $T/body. A file of 8 MiB or less goes whole, as the client sends it.
api_put_parts() {
	pp_path=$1 pp_file=$2; shift 2
	pp_size=$(stat -c %s "$pp_file")
	if [ "$pp_size" -le 8388608 ]; then
		api PUT "$pp_path" --data-binary "@$pp_file" "$@"
		return
	fi
	pp_token=$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')
	pp_off=0
	while :; do
		pp_code=$(dd if="$pp_file" bs=8388608 skip=$((pp_off / 8388608)) count=1 iflag=fullblock 2>/dev/null |
			api PUT "$pp_path?upload=$pp_token&offset=$pp_off&total=$pp_size" --data-binary @- "$@")
		pp_off=$((pp_off + 8388608))
		[ "$pp_code" = 202 ] && [ "$pp_off" -lt "$pp_size" ] || break
	done
	echo "$pp_code"
}

metric() {
	curl -s --unix-socket "$SOCK" http://cachepotd/metrics | awk -v m="cachepotd_$1" '$1 == m { print $2 }'
}

sha256_of() { sha256sum "$1" | cut -c1-64; }

# The toolchain tree, shared by all tests (tests/sandbox/make-toolchain.sh is idempotent), placed
# in the store by hard links: only toolchain.sh tests the upload itself.
toolchain_install() {
	sh "$top_srcdir/tests/sandbox/make-toolchain.sh" "$TOOLCHAIN_TREE" >/dev/null || return 1
	TC=$("$HELPER" toolchain-id "$TOOLCHAIN_TREE") || return 1
	mkdir -p "$STORE/toolchains"
	[ -d "$STORE/toolchains/$TC" ] || cp -al "$TOOLCHAIN_TREE" "$STORE/toolchains/$TC"
}

put_blob() {
	h=$(sha256_of "$1")
	code=$(api PUT "/v1/blobs/$h" --data-binary "@$1" -H 'Content-Type: application/octet-stream')
	[ "$code" = 201 ] || { echo "# PUT blob $1: $code $(cat "$T/body")" >&2; return 1; }
	echo "$h"
}

# job_json ARGV_JSON ENV_JSON CWD INPUTS_FILE: a job JSON (without expected_key) on stdout.
# INPUTS_FILE has lines "CANONICAL_PATH SHA256".
job_json() {
	jq -n --arg tc "$TC" --argjson argv "$1" --argjson env "$2" --arg cwd "$3" \
		--rawfile inputs "$4" '
		{version: 1, toolchain: $tc, argv: $argv, env: $env, cwd: $cwd,
		 inputs: [$inputs | split("\n")[] | select(length > 0) | split(" ")
			  | {path: .[0], mode: 420, sha256: .[1]}]}'
}

# with_key FILE: add the key the daemon will compute as expected_key (in place).
with_key() {
	k=$("$HELPER" key < "$1") || return 1
	jq --arg k "$k" '. + {expected_key: $k}' "$1" > "$1.tmp" && mv "$1.tmp" "$1"
	echo "$k"
}

# registry_inputs CRATE_DIR: the crate's src/**/*.rs as "CANONICAL SHA" lines, blobs uploaded.
registry_inputs() {
	crate=$1
	(cd "$REGISTRY/$crate" && find src -name '*.rs' | sort) | while read -r f; do
		h=$(put_blob "$REGISTRY/$crate/$f") || return 1
		echo "/cachepot/registry/$crate/$f $h"
	done
}

# The argv cargo uses for a registry lib crate (tests/data/invocations-debug.jsonl), canonical.
# lib_argv NAME EDITION SRC EXTRA_FILENAME [MORE_ARGS_JSON_ARRAY]
lib_argv() {
	jq -n --arg name "$1" --arg ed "$2" --arg src "$3" --arg extra "$4" \
		--argjson more "${5:-[]}" '["/rust/bin/rustc", "--crate-name", $name, "--edition=\($ed)", $src,
		 "--error-format=json", "--json=diagnostic-rendered-ansi,artifacts,future-incompat",
		 "--crate-type", "lib", "--emit=dep-info,metadata,link", "-C", "embed-bitcode=no",
		 "-C", "debuginfo=2", "-C", "metadata=\($extra)", "-C", "extra-filename=-\($extra)",
		 "--out-dir", "/cachepot/out", "-L", "dependency=/cachepot/target/debug/deps",
		 "--cap-lints", "allow"] + $more'
}

pkg_env() {
	jq -n --arg n "$1" --arg v "$2" --arg dir "/cachepot/registry/$1-$2" --arg crate "$3" \
		'[["CARGO_CRATE_NAME", $crate], ["CARGO_MANIFEST_DIR", $dir], ["CARGO_PKG_NAME", $n],
		  ["CARGO_PKG_VERSION", $v]]'
}

store_snapshot() {
	(cd "$STORE" && find cas toolchains jobs tmp -mindepth 1 -printf '%p %s %m\n' 2>/dev/null | sort)
}

jqe() { jq -e "$@" >/dev/null; }
