#!/bin/sh
# A remote client: the wrapper submits its misses to a worker cachepotd over TLS
# (CACHEPOT_SERVER=https://127.0.0.1:PORT, CACHEPOT_TLS_CERT, CACHEPOT_TLS_KEY, CACHEPOT_CACERT)
# and reads hits from a cachepot-fs mount of the worker's store (local here: the worker runs on
# this machine). The socket the client is given does not exist, so nothing goes through one.
#   cold build of a small workspace (one library over a few of Debian's packaged crates) from an
#   empty client cache: the misses are compiled on the
#   worker (its jobs_published grows by as many); cargo clean, warm build: every one hits, and
#   the statistics are those of a local client (the same build through the worker's socket);
#   a changed crate without a client certificate, with another CA, with a worker that accepts
#   but never answers, and with the worker stopped: the build succeeds, each is one counted
#   fallback with one warning, nothing is published, in bounded time; the same settings read
#   from the configuration file (server, tls_cert, tls_key, cacert) submit as the environment's.
. "$top_srcdir/tests/tap.sh"
set -u
find_rustc > /dev/null || skip_all "no rustc"
command -v cargo > /dev/null || skip_all "no cargo"
[ "$(id -u)" = 0 ] || skip_all "needs root (FUSE mount, sandbox cgroups)"
[ -c /dev/fuse ] || skip_all "no /dev/fuse"
for p in openssl curl python3; do
	command -v $p > /dev/null || skip_all "needs $p"
done
REGISTRY=/usr/share/cargo/registry
for c in cfg-if-1.0.0 itoa-1.0.1 ryu-1.0.2 scopeguard-1.1.0 lazy_static-1.4.0 memchr-2.5.0 log-0.4.17 smallvec-1.9.0; do
	[ -d "$REGISTRY/$c" ] || skip_all "no $c in $REGISTRY"
done
tap_plan 28

T=$(mktemp -d /tmp/cachepot-remote.XXXXXX)
# The sandbox runs as nobody and reaches the store's trees through their paths.
chmod 755 "$T"
daemon_pid=""
fs_pid=""
silent_pid=""
cleanup() {
	[ -n "$daemon_pid" ] && kill "$daemon_pid" 2>/dev/null && wait "$daemon_pid" 2>/dev/null
	[ -n "$silent_pid" ] && kill "$silent_pid" 2>/dev/null
	fusermount3 -u "$T/mnt" 2>/dev/null || umount -l "$T/mnt" 2>/dev/null
	[ -n "$fs_pid" ] && kill "$fs_pid" 2>/dev/null
	[ -n "${CACHEPOT_TEST_KEEP:-}" ] || rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

C=$T/certs
sh "$top_srcdir/contrib/cachepot-certs.sh" "$C" 127.0.0.1 builder > "$T/certs.log" 2>&1 &&
	sh "$top_srcdir/contrib/cachepot-certs.sh" "$T/other" 127.0.0.1 stranger >> "$T/certs.log" 2>&1 ||
	bail "cachepot-certs.sh failed: $(tail -n 3 "$T/certs.log")"

WSOCK=$T/worker.sock
# The worker on a random port of 127.0.0.1 (again with another if it is taken).
start_worker() {
	for _ in 1 2 3 4 5; do
		PORT=$(( 20000 + $(od -An -N2 -tu2 /dev/urandom) % 20000 ))
		"$top_builddir/cachepotd" --store "$T/store" --socket "$WSOCK" --jobs 2 \
			--listen-tls "127.0.0.1:$PORT" --tls-cert "$C/server.crt" --tls-key "$C/server.key" \
			--client-ca "$C/ca.crt" >> "$T/daemon.log" 2>&1 &
		daemon_pid=$!
		for _ in $(seq 100); do
			curl -s -o /dev/null --max-time 5 --cacert "$C/ca.crt" "https://127.0.0.1:$PORT/v1/status" && return 0
			kill -0 "$daemon_pid" 2>/dev/null || break
			sleep 0.1
		done
		kill "$daemon_pid" 2>/dev/null; wait "$daemon_pid" 2>/dev/null; daemon_pid=""
	done
	return 1
}
stop_worker() { kill "$daemon_pid" 2>/dev/null; wait "$daemon_pid" 2>/dev/null; daemon_pid=""; }
metric() { curl -s --unix-socket "$WSOCK" http://d/metrics | awk -v m="cachepotd_$1" '$1 == m { print $2 }'; }

start_worker || bail "cachepotd did not start with --listen-tls: $(tail -n 5 "$T/daemon.log")"
mkdir -p "$T/mnt"
"$top_builddir/cachepot-fs" "$T/store" "$T/mnt" -f > "$T/fs.log" 2>&1 &
fs_pid=$!
for _ in $(seq 100); do [ -d "$T/mnt/ac" ] && break; sleep 0.1; done
[ -d "$T/mnt/ac" ] || bail "cachepot-fs did not mount: $(tail -n 5 "$T/fs.log")"

SERVER=https://127.0.0.1:$PORT
: > "$T/empty.config"
# Workspace members are incremental in debug builds (not cacheable) unless this says otherwise.
export CACHEPOT_CONFIG="$T/empty.config" CACHEPOT_SOCKET="$T/no-such.sock" CACHEPOT_MOUNT="$T/mnt"
export CACHEPOT_CACHE_DIR="$T/cache" CACHEPOT_LOG="$T/wrapper.log" RUSTC_WRAPPER="$top_builddir/cachepot"
# Hits are taken only with a manifest signed by the worker's key, pinned here.
export CACHEPOT_TRUST="$T/store/key/ed25519.pub"
export CARGO_TERM_COLOR=never CARGO_INCREMENTAL=0
export CACHEPOT_SERVER="$SERVER" CACHEPOT_TLS_CERT="$C/builder.crt" CACHEPOT_TLS_KEY="$C/builder.key"
export CACHEPOT_CACERT="$C/ca.crt"

stat_of() { "$top_builddir/cachepot" --show-stats --json | python3 -c "import json,sys; j=json.load(sys.stdin); print(j['$1'])"; }
# The statistics without the times, which differ from run to run.
stats_shape() {
	"$top_builddir/cachepot" --show-stats --json | python3 -c '
import json, sys
j = json.load(sys.stdin)
for k in sorted(j):
    if not k.startswith("us_"):
        print(k, json.dumps(j[k], sort_keys=True))'
}
# build LOG: cargo builds the workspace from zeroed statistics; the seconds it took in $secs.
build() {
	"$top_builddir/cachepot" --zero-stats > /dev/null
	t0=$(date +%s)
	(cd "$T/w" && cargo build --offline -v) > "$1" 2>&1
	rc=$?
	secs=$(( $(date +%s) - t0 ))
	return $rc
}
diag() { tail -n 15 "$1" | sed 's/^/# /'; tail -n 5 "$T/daemon.log" | sed 's/^/# daemon: /'; }
# change: one more line in the workspace's library, so that it misses and nothing else does.
n_change=0
change() { n_change=$((n_change + 1)); echo "pub fn changed_$n_change() -> u32 { $n_change }" >> "$T/w/src/lib.rs"; }
# fallback_case NAME: after a change, a build that must fall back once and publish nothing.
fallback_case() {
	name=$1
	published0=$(metric jobs_published_total)
	change
	if build "$T/$name.log"; then ok "$name: the build succeeds ($secs s)"; else not_ok "$name: the build"; diag "$T/$name.log"; fi
	check "$name: one fallback counted, one warning ($(stat_of fallbacks) fallbacks, $(stat_of misses) misses: $(grep 'cachepot: warning' "$T/$name.log" | head -n 1 | cut -c1-160))" \
		test "$(stat_of fallbacks)" -eq 1 -a "$(stat_of misses)" -eq 0 -a "$(grep -c 'cachepot: warning:' "$T/$name.log")" -eq 1
}

mkdir -p "$T/w/src" "$T/w/.cargo"
cat > "$T/w/.cargo/config.toml" <<EOF
[source.crates-io]
replace-with = "debian-packages"
[source.debian-packages]
directory = "$REGISTRY"
[net]
offline = true
EOF
cat > "$T/w/Cargo.toml" <<'EOF'
[package]
name = "remote-demo"
version = "0.1.0"
edition = "2021"
publish = false

[dependencies]
cfg-if = "1"
itoa = "1"
ryu = "1"
scopeguard = "1"
lazy_static = "1"
memchr = "2"
log = "0.4"
smallvec = "1"
EOF
cat > "$T/w/src/lib.rs" <<'EOF'
pub fn describe(n: u64) -> String {
    let mut buf = itoa::Buffer::new();
    let mut f = ryu::Buffer::new();
    let v: smallvec::SmallVec<[u8; 4]> = smallvec::smallvec![1, 2, 3];
    log::debug!("describing {}", n);
    format!("{} {} {:?} {:?}", buf.format(n), f.format(n as f64 / 2.0), v, memchr::memchr(b'x', b"abx"))
}
EOF
# --- cold, from an empty client cache: misses compiled on the worker ---
published0=$(metric jobs_published_total)
if build "$T/cold.log"; then ok "cold build through the remote worker ($secs s)"; else not_ok "cold build"; diag "$T/cold.log"; fi
misses=$(stat_of misses)
published=$(( $(metric jobs_published_total) - published0 ))
check "cold: the cacheable invocations missed, none fell back ($misses misses, $(stat_of fallbacks) fallbacks)" \
	test "$misses" -ge 6 -a "$(stat_of fallbacks)" -eq 0
check "cold: the worker published as many jobs as there were misses ($published)" test "$published" -eq "$misses"
check "cold: they came over TLS with the client certificate (the client's socket does not exist)" \
	sh -c "[ ! -e '$T/no-such.sock' ] && [ $(metric http_forbidden_total) -eq 0 ]"
grep -q "warning: cachepot" "$T/cold.log" && diag "$T/cold.log"

# --- warm: hits, and the statistics of a local client ---
(cd "$T/w" && cargo clean)
build "$T/warm.log"; check "warm build after cargo clean ($secs s)" test $? -eq 0
check "warm: every cacheable invocation hits ($(stat_of hits) of $misses), nothing submitted" \
	test "$(stat_of hits)" -eq "$misses" -a "$(stat_of misses)" -eq 0 -a "$(stat_of fallbacks)" -eq 0 \
	-a "$(metric jobs_submitted_total)" -eq "$misses"
stats_shape > "$T/remote.stats"
(cd "$T/w" && cargo clean)
CACHEPOT_SERVER= CACHEPOT_SOCKET=$WSOCK build "$T/local.log"
check "the same build as a local client (the worker's socket, no server): it succeeds" test $? -eq 0
stats_shape > "$T/local.stats"
check "the remote client's statistics are the local client's: $(tr '\n' ' ' < "$T/remote.stats" | cut -c1-200)" \
	cmp -s "$T/remote.stats" "$T/local.stats"
cmp -s "$T/remote.stats" "$T/local.stats" || diff "$T/remote.stats" "$T/local.stats" | sed 's/^/# /'

# --- a miss after a change: exactly one job goes to the worker ---
published0=$(metric jobs_published_total)
change
build "$T/change.log"; check "a one-line change to the library builds" test $? -eq 0
check "... one miss on the worker, nothing else looked up ($(stat_of misses) misses, $(stat_of hits) hits), one job published" \
	test "$(stat_of misses)" -eq 1 -a "$(stat_of hits)" -eq 0 -a "$(stat_of fallbacks)" -eq 0 \
	-a "$(metric jobs_published_total)" -eq $((published0 + 1))

# --- the settings from the configuration file ---
cat > "$T/remote.config" <<EOF
# a remote worker
server = $SERVER/
tls_cert = $C/builder.crt
tls_key = $C/builder.key
cacert = $C/ca.crt
EOF
published0=$(metric jobs_published_total)
change
(unset CACHEPOT_SERVER CACHEPOT_TLS_CERT CACHEPOT_TLS_KEY CACHEPOT_CACERT
	CACHEPOT_CONFIG=$T/remote.config build "$T/config.log")
check "server, tls_cert, tls_key and cacert in the configuration file: the build succeeds" test $? -eq 0
check "... a miss published on the worker, no fallback ($(stat_of misses) misses, $(stat_of fallbacks) fallbacks)" \
	test "$(stat_of misses)" -eq 1 -a "$(stat_of fallbacks)" -eq 0 -a "$(metric jobs_published_total)" -eq $((published0 + 1))
printf 'server = ftp://127.0.0.1:%s\n' "$PORT" > "$T/bad.config"
CACHEPOT_CONFIG=$T/bad.config CACHEPOT_SERVER= "$top_builddir/cachepot" --show-stats > /dev/null 2> "$T/bad.err"
check "a server that is not http(s):// is refused, with the line named ($(head -n 1 "$T/bad.err"))" \
	grep -q "bad.config:1: bad setting server" "$T/bad.err"

# --- no client certificate: the worker refuses the writes ---
forbidden0=$(metric http_forbidden_total)
store0=$(metric store_published_total)
CACHEPOT_TLS_CERT= CACHEPOT_TLS_KEY= fallback_case "without a client certificate"
check "... the worker refused it (403, counted: $(( $(metric http_forbidden_total) - forbidden0 ))) and published nothing" \
	test "$(metric http_forbidden_total)" -gt "$forbidden0" -a "$(metric jobs_published_total)" -eq "$published0" \
	-a "$(metric store_published_total)" -eq "$store0"
grep -q "client certificate" "$T/without a client certificate.log"
check "... and the warning says a client certificate is needed" test $? -eq 0

# --- a CA that did not sign the worker's certificate ---
CACHEPOT_CACERT=$T/other/ca.crt fallback_case "another CA"
check "... nothing published, and the warning names the certificate check" \
	sh -c "[ $(metric jobs_published_total) -eq $published0 ] && grep 'cachepot: warning' '$T/another CA.log' | grep -qi 'certificate\|SSL'"

# --- a worker that accepts connections and never answers: the connect timeout bounds it ---
SPORT=$(( PORT + 1 ))
python3 -c '
import socket, sys, time
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(64)
print("listening", flush=True)
time.sleep(600)' "$SPORT" > "$T/silent.out" 2>&1 &
silent_pid=$!
for _ in $(seq 50); do grep -q listening "$T/silent.out" && break; sleep 0.1; done
CACHEPOT_SERVER=https://127.0.0.1:$SPORT fallback_case "a silent worker"
check "... within the connect timeout and the local compile ($secs s, at most 40)" test "$secs" -le 40
kill "$silent_pid" 2>/dev/null; wait "$silent_pid" 2>/dev/null; silent_pid=""

# --- the worker stopped ---
stop_worker
fallback_case "the worker stopped"
check "... at once: refused connections cost nothing ($secs s, at most 30)" test "$secs" -le 30
check "no sanitizer report in the worker's log" \
	sh -c "! grep -q 'ERROR: AddressSanitizer\|ERROR: LeakSanitizer\|runtime error' '$T/daemon.log'"
check "no sanitizer report in the builds" \
	sh -c "! grep -l 'ERROR: AddressSanitizer\|ERROR: LeakSanitizer\|runtime error' '$T'/*.log"
exit 0
