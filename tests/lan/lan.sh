#!/bin/sh
# A LAN on this machine: network namespaces joined by a bridge (10.77.0.0/24, no route out of
# them, nothing in the host's own namespace), with
#   worker  10.77.0.1  cachepotd --listen :8080 (reads) and --listen-tls :8443 (writes with a
#                      client certificate), its own store, a local mount for its own builds;
#   proxy   10.77.0.2  nginx with contrib/nginx/cachepot-proxy.conf in front of the worker;
#   client1 10.77.0.11 cachepot-fs mounting the worker through nginx, a client certificate,
#                      CACHEPOT_SERVER: builds the corpus cold, misses compiled on the worker;
#   client2 10.77.0.12 the same mount, no client certificate, empty caches, a checkout at
#                      another path: builds warm from what nginx holds.
# Then the failures, each with the build still succeeding and nothing stored wrongly: a
# flipped byte in a blob on the worker (EIO, nothing enters the client's cache), writes
# without a certificate (403), the worker down (cached entries still read, new ones fall back),
# nginx down.
#
# The FUSE processes enter only a namespace's network (nsenter --net), so their mounts stay in
# the host's mount namespace where the builds see them. Builds run with CARGO_INCREMENTAL=0 so
# the workspace members are cacheable too and every unit can be compared byte for byte.
#
# A check that needs a piece not in this tree yet (cachepotd --listen, --listen-tls,
# cachepot-fs's remote source, the wrapper's CACHEPOT_SERVER) is reported "not ok ... # TODO",
# never as a pass.
. "$top_srcdir/tests/tap.sh"
set -u
rustc=$(find_rustc) || skip_all "no rustc"
[ "$(id -u)" = 0 ] || skip_all "needs root (network namespaces, FUSE, sandbox cgroups)"
[ -c /dev/fuse ] || skip_all "no /dev/fuse"
command -v ip > /dev/null && command -v nsenter > /dev/null || skip_all "no ip or nsenter"
nginx=$(command -v nginx || echo /usr/sbin/nginx)
[ -x "$nginx" ] || skip_all "no nginx (contrib/install-deps.sh installs it)"
command -v curl > /dev/null || skip_all "no curl"
corpus="$SHARED_DIR/corpus/small"
[ -d "$corpus" ] || skip_all "no corpus"
ip netns add "cplan-probe-$$" 2> /dev/null || skip_all "cannot create network namespaces"
ip netns del "cplan-probe-$$"
tap_plan 36

# --- which pieces are here ---
missing=""
"$top_builddir/cachepotd" --help 2>&1 | grep -q -- '--listen ' || missing="$missing listen"
"$top_builddir/cachepotd" --help 2>&1 | grep -q -- '--listen-tls' || missing="$missing listen-tls"
"$top_builddir/cachepotd" --help 2>&1 | grep -q -- '--print-public-key' || missing="$missing print-public-key"
"$top_builddir/cachepot-fs" --help 2>&1 | grep -q 'trust=' || missing="$missing remote-fs"
grep -aq CACHEPOT_SERVER "$top_builddir/cachepot" "$top_builddir/cachepot-submit" 2> /dev/null ||
	missing="$missing remote-submit"
# needs PIECE...: true when every piece is here; else its name is in $lacking.
needs() {
	lacking=""
	for p in "$@"; do
		case " $missing " in *" $p "*) lacking="$lacking $p" ;; esac
	done
	[ -z "$lacking" ]
}
# todo DESCRIPTION...: one "not ok # TODO" line per description, naming what $lacking lacks.
todo() {
	for d in "$@"; do
		tap_n=$((tap_n + 1))
		echo "not ok $tap_n - $d # TODO not in this tree:$lacking"
	done
}

T=$(mktemp -d /tmp/cachepot-lan.XXXXXX)
# The sandbox runs as nobody and reaches the worker's store through its path.
chmod 755 "$T"
ns_w="cplan$$-w" ns_p="cplan$$-p" ns_1="cplan$$-c1" ns_2="cplan$$-c2" ns_sw="cplan$$-sw"
net=10.77.0
ip_w=$net.1 ip_p=$net.2 ip_1=$net.11 ip_2=$net.12
worker_pid="" nginx_pid="" wfs_pid="" fs1_pid="" fs2_pid=""
cleanup() {
	for p in $worker_pid $nginx_pid; do kill "$p" 2> /dev/null; done
	for m in "$T/w/mnt" "$T/c1/mnt" "$T/c2/mnt"; do
		fusermount3 -u "$m" 2> /dev/null || umount -l "$m" 2> /dev/null
	done
	for p in $wfs_pid $fs1_pid $fs2_pid $worker_pid $nginx_pid; do
		kill "$p" 2> /dev/null
		wait "$p" 2> /dev/null
	done
	for n in $ns_w $ns_p $ns_1 $ns_2 $ns_sw; do ip netns del "$n" 2> /dev/null; done
	# CACHEPOT_TEST_KEEP=1 keeps the logs, stores and workspaces for a post-mortem.
	[ -n "${CACHEPOT_TEST_KEEP:-}" ] || rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP

# on NS CMD...: run CMD with its network in namespace NS (and everything else on the host).
on() { n=$1; shift; nsenter --net="/run/netns/$n" -- "$@"; }
# wait_for SECONDS CMD...: poll CMD every 0.1 s; false after SECONDS.
wait_for() {
	w=$(($1 * 10)); shift
	while [ "$w" -gt 0 ]; do "$@" 2> /dev/null && return 0; sleep 0.1; w=$((w - 1)); done
	return 1
}
mounted() { grep -q " $1 fuse" /proc/mounts; }

# --- the LAN: a bridge in a namespace of its own, one veth per machine ---
ip netns add "$ns_sw" && ip -n "$ns_sw" link add br0 type bridge && ip -n "$ns_sw" link set br0 up ||
	bail "cannot build the bridge"
for m in w:$ip_w p:$ip_p 1:$ip_1 2:$ip_2; do
	tag=${m%%:*} addr=${m#*:}
	case $tag in w) n=$ns_w ;; p) n=$ns_p ;; 1) n=$ns_1 ;; 2) n=$ns_2 ;; esac
	ip netns add "$n" &&
		ip link add eth0 netns "$n" type veth peer name "port-$tag" netns "$ns_sw" &&
		ip -n "$ns_sw" link set "port-$tag" master br0 up &&
		ip -n "$n" addr add "$addr/24" dev eth0 && ip -n "$n" link set eth0 up &&
		ip -n "$n" link set lo up || bail "cannot set up namespace $n"
done
# No default route anywhere: an address outside 10.77.0.0/24 is unreachable from every machine.
on "$ns_1" ip route | grep -q default && bail "client namespace has a default route"

# --- certificates ---
sh "$top_srcdir/contrib/cachepot-certs.sh" "$T/certs" "$ip_w" client1 > "$T/certs.log" 2>&1
check "cachepot-certs.sh: a CA, a server certificate for $ip_w and a client certificate" sh -c "
	openssl verify -CAfile '$T/certs/ca.crt' '$T/certs/server.crt' '$T/certs/client1.crt' > /dev/null &&
	openssl x509 -in '$T/certs/server.crt' -noout -ext subjectAltName | grep -q 'IP Address:$ip_w' &&
	openssl x509 -in '$T/certs/client1.crt' -noout -ext extendedKeyUsage | grep -q 'Client Auth'"

# --- the worker ---
mkdir -p "$T/w/mnt" "$T/c1/mnt" "$T/c2/mnt" "$T/ngx/cache" "$T/ngx/tmp"
wsock="$T/w/cachepotd.sock"
wcurl() { curl -s --max-time 10 --unix-socket "$wsock" "$@"; }
start_worker() {
	set -- --store "$T/w/store" --socket "$wsock" --jobs 2
	needs listen && set -- "$@" --listen "$ip_w:8080"
	needs listen-tls && set -- "$@" --listen-tls "$ip_w:8443" --tls-cert "$T/certs/server.crt" \
		--tls-key "$T/certs/server.key" --client-ca "$T/certs/ca.crt"
	on "$ns_w" "$top_builddir/cachepotd" "$@" >> "$T/w/daemon.log" 2>&1 &
	worker_pid=$!
	wait_for 20 test -S "$wsock" && wait_for 10 wcurl -f -o /dev/null http://w/v1/status
}
stop_worker() { kill "$worker_pid" 2> /dev/null; wait "$worker_pid" 2> /dev/null; worker_pid=""; }
start_worker || bail "cachepotd did not start: $(tail -n 5 "$T/w/daemon.log")"
"$top_builddir/cachepot-fs" "$T/w/store" "$T/w/mnt" -f > "$T/w/fs.log" 2>&1 &
wfs_pid=$!
wait_for 20 test -d "$T/w/mnt/ac" || bail "the worker's cachepot-fs did not mount: $(tail -n 5 "$T/w/fs.log")"
# metric NAME: the worker's counter NAME (0 when absent).
metric() { wcurl http://w/metrics | awk -v n="$1" '$1 == n { v = $2 } END { print v + 0 }'; }

if needs listen; then
	check "worker: cachepotd --listen answers on $ip_w:8080 from another machine" \
		on "$ns_1" curl -sf --max-time 10 -o /dev/null "http://$ip_w:8080/v1/status"
else todo "worker: cachepotd --listen answers on $ip_w:8080 from another machine"; fi
if needs listen-tls; then
	check "worker: --listen-tls presents the certificate for $ip_w, verified with ca.crt" \
		on "$ns_1" curl -sf --max-time 10 -o /dev/null --cacert "$T/certs/ca.crt" "https://$ip_w:8443/v1/status"
else todo "worker: --listen-tls presents the certificate for $ip_w, verified with ca.crt"; fi

# --- the proxy: contrib/nginx/cachepot-proxy.conf, with this LAN's addresses and paths ---
conf="$top_srcdir/contrib/nginx/cachepot-proxy.conf"
if needs listen; then upstream="$ip_w:8080"; else upstream="unix:$wsock"; fi
sed -e "s|/var/cache/nginx/cachepot|$T/ngx/cache|" -e "s|/var/log/nginx/cachepot.log|$T/ngx/access.log|" \
	-e "s|server worker.lan:8080;|server $upstream;|" -e "s|listen 8080;|listen $ip_p:8080;|" \
	"$conf" > "$T/ngx/cachepot-proxy.conf"
cat > "$T/ngx/nginx.conf" << EOF
# Runs as root so that its cache and logs can live in the test's directory.
user root;
worker_processes 1;
pid $T/ngx/nginx.pid;
error_log $T/ngx/error.log info;
events { worker_connections 256; }
http {
    client_body_temp_path $T/ngx/tmp/body;
    proxy_temp_path $T/ngx/tmp/proxy;
    fastcgi_temp_path $T/ngx/tmp/fastcgi;
    uwsgi_temp_path $T/ngx/tmp/uwsgi;
    scgi_temp_path $T/ngx/tmp/scgi;
    include $T/ngx/cachepot-proxy.conf;
}
EOF
changed=$(diff "$conf" "$T/ngx/cachepot-proxy.conf" | grep -c '^>')
if [ "$changed" -eq 4 ] && on "$ns_p" "$nginx" -e "$T/ngx/error.log" -p "$T/ngx" -c "$T/ngx/nginx.conf" -t > "$T/ngx/t.log" 2>&1
then ok "nginx accepts contrib/nginx/cachepot-proxy.conf (4 lines pointed at this LAN)"
else not_ok "nginx accepts contrib/nginx/cachepot-proxy.conf ($changed lines pointed at this LAN)"; sed 's/^/# /' "$T/ngx/t.log"; fi
start_nginx() {
	on "$ns_p" "$nginx" -e "$T/ngx/error.log" -p "$T/ngx" -c "$T/ngx/nginx.conf" -g 'daemon off;' \
		>> "$T/ngx/stdout.log" 2>&1 &
	nginx_pid=$!
	wait_for 20 on "$ns_1" curl -s --max-time 2 -o /dev/null "http://$ip_p:8080/v1/status"
}
stop_nginx() { kill "$nginx_pid" 2> /dev/null; wait "$nginx_pid" 2> /dev/null; nginx_pid=""; }
start_nginx || bail "nginx did not start: $(tail -n 5 "$T/ngx/error.log")"
# via NS PATH [curl args]: GET PATH through nginx from namespace NS; prints status and the
# X-Cache-Status header.
via() {
	n=$1 p=$2; shift 2
	on "$n" curl -s --max-time 10 -o /dev/null -D - "$@" "http://$ip_p:8080$p" |
		awk 'NR == 1 { s = $2 } tolower($1) == "x-cache-status:" { c = $2 } END { sub(/\r$/, "", c); print s, c }'
}
nokey=0000000000000000000000000000000000000000000000000000000000000000
before=$(metric cachepotd_http_requests_total)
a=$(via "$ns_1" "/v1/manifests/$nokey") b=$(via "$ns_1" "/v1/manifests/$nokey")
after=$(metric cachepotd_http_requests_total)
check "nginx: a missing manifest is not cached (answers '$a', '$b'; both reached the worker)" \
	test "$a" = "404 MISS" -a "$b" = "404 MISS" -a $((after - before)) -ge 3
# A blob put into the worker's store through its socket, then read through nginx.
printf 'a blob read through the proxy\n' > "$T/blob"
pblob=$(sha256sum < "$T/blob" | cut -d' ' -f1)
wcurl -f -o /dev/null -X PUT --data-binary @"$T/blob" "http://w/v1/blobs/$pblob" || bail "cannot put a blob into the worker's store"
line=$(($(wc -l < "$T/ngx/access.log") + 1))
before=$(metric cachepotd_http_requests_total)
a=$(via "$ns_1" "/v1/blobs/$pblob") b=$(via "$ns_2" "/v1/blobs/$pblob")
after=$(metric cachepotd_http_requests_total)
check "nginx: a blob is fetched from the worker once, then served from its cache ('$a', '$b', $((after - before - 1)) reached the worker)" \
	test "$a" = "200 MISS" -a "$b" = "200 HIT" -a $((after - before - 1)) -eq 1
check "nginx's log records the verdicts" sh -c "tail -n '+$line' '$T/ngx/access.log' | grep '/v1/blobs/$pblob' | awk '{print \$NF, \$(NF-2)}' | tr '\n' ' ' | grep -q 'cache=MISS.*cache=HIT'"
a=$(via "$ns_1" "/v1/blobs/$pblob" -H 'Cache-Control: no-cache') b=$(via "$ns_1" "/v1/blobs/$pblob" -H 'Pragma: no-cache')
c=$(via "$ns_1" "/v1/blobs/$pblob")
check "nginx: Cache-Control: no-cache and Pragma: no-cache go to the worker ('$a', '$b'), then '$c'" \
	test "$a" = "200 BYPASS" -a "$b" = "200 BYPASS" -a "$c" = "200 HIT"
nostore=$(on "$ns_1" curl -s --max-time 10 -D - -o /dev/null "http://$ip_p:8080/v1/manifests/$nokey" | grep -ci '^cache-control: *no-store')
if needs listen; then
	check "a 404 carries Cache-Control: no-store" test "$nostore" -eq 1
else todo "a 404 carries Cache-Control: no-store"; fi

# --- the clients' mounts, both through nginx ---
"$top_builddir/cachepotd" --store "$T/w/store" --print-public-key > "$T/trust" 2> "$T/trust.log"
mount_client() {
	c=$1 n=$2 cache=$3
	on "$n" "$top_builddir/cachepot-fs" "http://$ip_p:8080/" "$T/$c/mnt" -f \
		-o "trust=$T/trust,cache=$cache,cache_size=2G" >> "$T/$c/fs.log" 2>&1 &
	eval "fs${c#c}_pid=\$!"
	wait_for 20 mounted "$T/$c/mnt"
}
unmount_client() {
	c=$1
	fusermount3 -u "$T/$c/mnt" 2> /dev/null || umount -l "$T/$c/mnt" 2> /dev/null
	eval "p=\$fs${c#c}_pid"
	kill "$p" 2> /dev/null; wait "$p" 2> /dev/null
	eval "fs${c#c}_pid=''"
}
if needs remote-fs print-public-key; then
	check "the worker's public key, pinned by the clients" grep -Eq '^[0-9a-f]{64}$' "$T/trust"
	mount_client c1 "$ns_1" "$T/c1/fscache"
	check "client1: cachepot-fs mounts the worker through nginx" mounted "$T/c1/mnt"
	mount_client c2 "$ns_2" "$T/c2/fscache"
	check "client2: cachepot-fs mounts the worker through nginx" mounted "$T/c2/mnt"
else
	todo "the worker's public key, pinned by the clients" "client1: cachepot-fs mounts the worker through nginx" \
		"client2: cachepot-fs mounts the worker through nginx"
fi

# --- builds ---
export CARGO_TERM_COLOR=never CARGO_INCREMENTAL=0 RUSTC_WRAPPER="$top_builddir/cachepot"
export CACHEPOT_CONFIG=/dev/null
unset CACHEPOT_SOCKET CACHEPOT_SERVER CACHEPOT_TLS_CERT CACHEPOT_TLS_KEY CACHEPOT_CACERT 2> /dev/null
# as_client1/2/worker CMD...: CMD in that machine's namespace with its wrapper settings.
as_client1() {
	on "$ns_1" env CACHEPOT_MOUNT="$T/c1/mnt" CACHEPOT_CACHE_DIR="$T/c1/cache" CACHEPOT_LOG="$T/c1/wrapper.log" \
		CACHEPOT_SERVER="https://$ip_w:8443" CACHEPOT_CACERT="$T/certs/ca.crt" \
		CACHEPOT_TLS_CERT="$T/certs/client1.crt" CACHEPOT_TLS_KEY="$T/certs/client1.key" "$@"
}
# client2 has no certificate: it may read, and its submissions are refused.
as_client2() {
	on "$ns_2" env CACHEPOT_MOUNT="$T/c2/mnt" CACHEPOT_CACHE_DIR="$T/c2/cache" CACHEPOT_LOG="$T/c2/wrapper.log" \
		CACHEPOT_SERVER="https://$ip_w:8443" CACHEPOT_CACERT="$T/certs/ca.crt" "$@"
}
as_worker() {
	on "$ns_w" env CACHEPOT_MOUNT="$T/w/mnt" CACHEPOT_CACHE_DIR="$T/w/cache" CACHEPOT_LOG="$T/w/wrapper.log" \
		CACHEPOT_SOCKET="$wsock" "$@"
}
# build WHO DIR LOG [cargo args]: a cargo build from zeroed statistics, at most 15 minutes;
# its wall time in milliseconds goes to $elapsed_ms.
build() {
	who=$1 dir=$2 log=$3; shift 3
	"as_$who" "$top_builddir/cachepot" --zero-stats > /dev/null
	t0=$(date +%s%N)
	"as_$who" timeout 900 sh -c 'cd "$1" && shift && cargo build --offline -v "$@"' sh "$dir" "$@" > "$log" 2>&1
	r=$?
	elapsed_ms=$((($(date +%s%N) - t0) / 1000000))
	return $r
}
stat_of() {
	"as_$1" "$top_builddir/cachepot" --show-stats --json |
		python3 -c "import json,sys; print(json.load(sys.stdin)['$2'])"
}
# Every rlib, rmeta and the binary: with CARGO_INCREMENTAL=0 the members are cached too.
sums() { (cd "$1/target/debug" && sha256sum bench-small $(cd deps && ls -1 | grep -E '\.(rlib|rmeta)$' | sort | sed 's|^|deps/|')); }
diag() { tail -n 15 "$1" | sed 's/^/# /'; tail -n 5 "$T/w/daemon.log" | sed 's/^/# worker: /'; }
# from_client2: nginx's log lines for client2's requests since line $1.
from_client2() { tail -n "+$1" "$T/ngx/access.log" | grep "^$ip_2 "; }

# flip_byte FILE: flip one bit of the byte in the middle of FILE, in place (the store's files
# are 0444; root writes them anyway).
flip_byte() {
	python3 -c "
import os, sys
fd = os.open(sys.argv[1], os.O_RDWR); at = os.fstat(fd).st_size // 2
b = os.pread(fd, 1, at); os.pwrite(fd, bytes([b[0] ^ 1]), at); os.close(fd)" "$1"
}
# cache_verifies DIR: every file in DIR named by a SHA-256 holds bytes of that digest.
cache_verifies() {
	for f in $(find "$1" -type f | grep -E '/[0-9a-f]{64}$'); do
		[ "$(sha256sum < "$f" | cut -d' ' -f1)" = "${f##*/}" ] || return 1
	done
}
# cache_lacks_and_verifies DIGEST DIR: no file of DIR is named after DIGEST, and DIR verifies.
cache_lacks_and_verifies() { ! find "$2" -name "*$1*" | grep -q . && cache_verifies "$2"; }

cp -r "$corpus" "$T/c1/work"
mkdir -p "$T/c2/elsewhere/deeper" && cp -r "$corpus" "$T/c2/elsewhere/deeper/work"
cp -r "$corpus" "$T/w/work"
n_units=0
if needs listen listen-tls remote-fs remote-submit print-public-key; then
	if build client1 "$T/c1/work" "$T/c1/b1.log"; then ok "client1: cold build through the remote worker (${elapsed_ms} ms)"
	else not_ok "client1: cold build through the remote worker"; diag "$T/c1/b1.log"; fi
	n_units=$(stat_of client1 misses)
	check "client1: the misses were compiled on the worker ($n_units misses, $(stat_of client1 fallbacks) fallbacks, $(metric cachepotd_jobs_published_total) published)" \
		test "$n_units" -ge 40 -a "$(stat_of client1 fallbacks)" -eq 0 -a "$(metric cachepotd_jobs_published_total)" -ge "$n_units"
	sums "$T/c1/work" > "$T/c1/sums"

	line=$(($(wc -l < "$T/ngx/access.log") + 1))
	req0=$(metric cachepotd_http_requests_total)
	if build client2 "$T/c2/elsewhere/deeper/work" "$T/c2/b1.log"; then ok "client2: warm build, fresh caches, another path (${elapsed_ms} ms)"
	else not_ok "client2: warm build, fresh caches, another path"; diag "$T/c2/b1.log"; fi
	c2_ms=$elapsed_ms
	req1=$(metric cachepotd_http_requests_total)
	check "client2: every cacheable unit hits ($(stat_of client2 hits) of $n_units, $(stat_of client2 misses) misses, $(stat_of client2 fallbacks) fallbacks)" \
		test "$(stat_of client2 hits)" -eq "$n_units" -a "$(stat_of client2 misses)" -eq 0 -a "$(stat_of client2 fallbacks)" -eq 0
	sums "$T/c2/elsewhere/deeper/work" > "$T/c2/sums"
	check "client2: $(wc -l < "$T/c1/sums") outputs byte-identical to client1's" sh -c "test -s '$T/c1/sums' && cmp -s '$T/c1/sums' '$T/c2/sums'"
	reads=$(from_client2 "$line" | wc -l) hits=$(from_client2 "$line" | grep -c ' cache=HIT ')
	check "nginx: client2's reads were served from its cache ($hits of $reads HIT)" test "$reads" -gt 0 -a "$hits" -eq "$reads"
	# The second /metrics read counts itself.
	worker_seen=$((req1 - req0 - 1))
	check "the worker saw none of client2's requests ($worker_seen)" test "$worker_seen" -eq 0
	if build worker "$T/w/work" "$T/w/b1.log"; then ok "worker: warm build on its own machine (${elapsed_ms} ms; client2 took ${c2_ms} ms)"
	else not_ok "worker: warm build on its own machine"; diag "$T/w/b1.log"; fi
	echo "# figures: client2 warm ${c2_ms} ms through nginx, worker warm ${elapsed_ms} ms on its own mount; $((reads - hits)) of client2's $reads reads reached the worker"
else
	todo "client1: cold build through the remote worker" "client1: the misses were compiled on the worker" \
		"client2: warm build, fresh caches, another path" "client2: every cacheable unit hits" \
		"client2: outputs byte-identical to client1's" "nginx: client2's reads were served from its cache" \
		"the worker saw none of client2's requests" "worker: warm build on its own machine"
fi

# --- writes without a certificate ---
blob=$(printf 'not a build output' | sha256sum | cut -d' ' -f1)
forbidden0=$(metric cachepotd_http_forbidden_total)
if needs listen-tls; then
	code=$(on "$ns_2" curl -s --max-time 10 -o /dev/null -w '%{http_code}' --cacert "$T/certs/ca.crt" \
		-X PUT --data-binary 'not a build output' "https://$ip_w:8443/v1/blobs/$blob")
	check "a blob upload over TLS without a client certificate: $code" test "$code" = 403
else todo "a blob upload over TLS without a client certificate: 403"; fi
if needs listen; then
	code=$(on "$ns_2" curl -s --max-time 10 -o /dev/null -w '%{http_code}' -X POST -H 'Content-Type: application/json' \
		--data-binary '{}' "http://$ip_w:8080/v1/jobs")
	check "a job over plain HTTP: $code" test "$code" = 403
	code=$(on "$ns_2" curl -s --max-time 10 -o /dev/null -w '%{http_code}' -X PUT \
		--data-binary 'not a build output' "http://$ip_w:8080/v1/blobs/$blob")
	check "a blob upload over plain HTTP: $code" test "$code" = 403
else todo "a job over plain HTTP: 403" "a blob upload over plain HTTP: 403"; fi
code=$(on "$ns_2" curl -s --max-time 10 -o /dev/null -w '%{http_code}' -X PUT \
	--data-binary 'not a build output' "http://$ip_p:8080/v1/blobs/$blob")
check "a blob upload through nginx: $code (nginx passes reads only)" test "$code" = 403
code=$(wcurl -o /dev/null -w '%{http_code}' "http://w/v1/blobs/$blob")
check "nothing was stored ($code for the blob) and the refusals were counted ($(($(metric cachepotd_http_forbidden_total) - forbidden0)))" \
	sh -c "test '$code' = 404 && { test -n '$missing' || test $(metric cachepotd_http_forbidden_total) -ge $((forbidden0 + 3)); }"

# --- a flipped byte in a blob on the worker ---
# client2 starts again with an empty cache and nginx with an empty one, so the bad blob is
# fetched from the worker: through nginx (MISS), then past it (no-cache, BYPASS), both bad.
if needs listen listen-tls remote-fs remote-submit print-public-key && [ "$n_units" -gt 0 ]; then
	bad=$(sha256sum "$T/c1/work/target/debug/bench-small" | cut -d' ' -f1)
	badfile="$T/w/store/cas/$(printf %s "$bad" | cut -c1-2)/$bad"
	unmount_client c2
	stop_nginx
	rm -rf "$T/ngx/cache" && mkdir -p "$T/ngx/cache"
	start_nginx || bail "nginx did not start again"
	mount_client c2 "$ns_2" "$T/c2/fscache2" || bail "client2 did not mount again"
	flip_byte "$badfile"
	check "flipped a byte of the binary's blob in the worker's store" test "$(sha256sum < "$badfile" | cut -d' ' -f1)" != "$bad"
	rd=$(timeout 60 cat "$T/c2/mnt/cas/$bad" 2>&1 > /dev/null)
	check "client2: reading the bad blob fails with EIO ($rd)" sh -c "echo '$rd' | grep -q 'Input/output error'"
	(cd "$T/c2/elsewhere/deeper/work" && cargo clean)
	build client2 "$T/c2/elsewhere/deeper/work" "$T/c2/b2.log"; r=$?
	h=$(stat_of client2 hits) f=$(stat_of client2 fallbacks)
	check "client2: the build still succeeds, the binary falls back ($r; $h hits, $f fallbacks)" \
		test "$r" -eq 0 -a "$h" -eq $((n_units - 1)) -a "$f" -eq 1
	check "nothing of the bad blob entered client2's cache, everything in it verifies" \
		cache_lacks_and_verifies "$bad" "$T/c2/fscache2"
	flip_byte "$badfile"
	# nginx keeps the bad copy it was given; empty it so that what follows reads good ones.
	stop_nginx; rm -rf "$T/ngx/cache" && mkdir -p "$T/ngx/cache"; start_nginx || bail "nginx did not start again"
else
	todo "flipped a byte of the binary's blob in the worker's store" "client2: reading the bad blob fails with EIO" \
		"client2: the build still succeeds (the binary falls back)" "nothing of the bad blob entered client2's cache, everything in it verifies"
fi

# --- the worker down: what client2 has cached still reads, a new unit falls back ---
if needs listen listen-tls remote-fs remote-submit print-public-key && [ "$n_units" -gt 0 ]; then
	# Read the binary's blob once more so client2's cache holds every unit.
	cat "$T/c2/mnt/cas/$bad" > /dev/null 2>&1
	stop_worker
	echo 'pub fn one_more_line() -> u32 { 42 }' >> "$T/c2/elsewhere/deeper/work/textkit/src/lib.rs"
	(cd "$T/c2/elsewhere/deeper/work" && cargo clean)
	build client2 "$T/c2/elsewhere/deeper/work" "$T/c2/b3.log"; r=$?
	h=$(stat_of client2 hits) f=$(stat_of client2 fallbacks)
	check "worker down: client2's build succeeds ($r, ${elapsed_ms} ms)" test "$r" -eq 0
	check "worker down: cached units read ($h hits), the changed ones fall back ($f)" \
		test "$h" -ge $((n_units - 3)) -a "$f" -ge 1 -a $((h + f)) -eq "$n_units"
	start_worker || bail "cachepotd did not start again: $(tail -n 5 "$T/w/daemon.log")"
	check "worker down: everything in client2's cache verifies" cache_verifies "$T/c2/fscache2"

	# --- nginx down: client2's own cache still reads ---
	stop_nginx
	echo 'pub fn yet_another() -> u32 { 43 }' >> "$T/c2/elsewhere/deeper/work/textkit/src/lib.rs"
	(cd "$T/c2/elsewhere/deeper/work" && cargo clean)
	forbidden0=$(metric cachepotd_http_forbidden_total)
	build client2 "$T/c2/elsewhere/deeper/work" "$T/c2/b4.log"; r=$?
	h=$(stat_of client2 hits) f=$(stat_of client2 fallbacks)
	check "nginx down: client2's build succeeds ($r, ${elapsed_ms} ms)" test "$r" -eq 0
	check "nginx down: cached units read from client2's own cache ($h hits), the changed ones fall back ($f)" \
		test "$h" -ge $((n_units - 3)) -a "$f" -ge 1 -a $((h + f)) -eq "$n_units"
	check "nginx down: client2's submissions without a certificate were refused ($(($(metric cachepotd_http_forbidden_total) - forbidden0)) refusals)" \
		test "$(metric cachepotd_http_forbidden_total)" -gt "$forbidden0"
else
	todo "worker down: client2's build succeeds" "worker down: cached units read, the changed ones fall back" \
		"worker down: everything in client2's cache verifies" "nginx down: client2's build succeeds" \
		"nginx down: cached units read from client2's own cache, the changed ones fall back" \
		"nginx down: client2's submissions without a certificate were refused"
fi

stop_worker
"$top_builddir/cachepotd" --store "$T/w/store" --fsck > "$T/w/fsck.log" 2>&1
check "the worker's store is sound after all of it (cachepotd --fsck)" test $? -eq 0
[ -z "$missing" ] || echo "# not in this tree:$missing"
