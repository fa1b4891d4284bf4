#!/bin/sh
# A LAN on this machine: network namespaces joined by a bridge (10.77.0.0/24, no route out of
# them, nothing in the host's own namespace), with
#   worker  10.77.0.1  cachepotd --listen :8080 (reads) and --listen-tls :8443 (writes with a
#                      client certificate), its own store, a local mount for its own builds;
#   proxy   10.77.0.2  nginx with contrib/nginx/cachepot-proxy.conf in front of the worker;
#   client1 10.77.0.11 cachepot-fs mounting the worker through nginx, a client certificate,
#                      CACHEPOT_SERVER: builds the corpus cold, misses compiled on the worker;
#   client2 10.77.0.12 the same mount, its own certificate, empty caches, a checkout at
#                      another path: builds warm from what nginx holds.
# Then the failures, each with the build still succeeding and nothing stored wrongly: writes
# without a certificate (403), a flipped byte in a blob on the worker (EIO, nothing enters the
# client's cache; the copy is asked for again past nginx with no-cache), a flipped byte in
# nginx's own copy (detected, fetched again past nginx, served right, and nginx keeps the
# fresh answer), the worker down (cached entries still read, a new unit falls back), nginx
# down with a client that has no certificate. These rebuild one member (textkit, 20-odd units)
# rather than the workspace, to keep the test's time down.
#
# The FUSE processes enter only a namespace's network (nsenter --net), so their mounts stay in
# the host's mount namespace where the builds see them. Builds run with CARGO_INCREMENTAL=0 so
# the workspace members are cacheable too and every unit can be compared byte for byte.
#
# A check that needs a piece not in this tree yet (cachepotd --listen, --listen-tls,
# cachepot-fs's remote source, the wrapper's CACHEPOT_SERVER) is reported "not ok ... # TODO",
# never as a pass. So is a check that fails for a gap this test can name: with proc-macros not
# cached, the workspace's own proc-macro is compiled locally at each checkout's path, so the
# member that uses it (model) has another key at client2 and misses there.
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
tap_plan 45

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
# check_gap GAP DESCRIPTION COMMAND...: like check, but a failure is "not ok # TODO" when GAP
# is one of $gaps (a named shortcoming of this tree that the failure is due to).
gaps=""
check_gap() {
	g=$1 d=$2; shift 2
	if "$@"; then ok "$d"
	else
		case " $gaps " in
		*" $g "*) tap_n=$((tap_n + 1)); echo "not ok $tap_n - $d # TODO $g" ;;
		*) not_ok "$d" ;;
		esac
	fi
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
	# CACHEPOT_TEST_KEEP=1 keeps the logs, stores and workspaces for a post-mortem. A mount
	# that would not go away keeps them too: rm must not walk into it.
	if grep -q " $T/" /proc/mounts; then echo "# left mounted: $(grep -o " $T/[^ ]*" /proc/mounts | tr '\n' ' ')"
	elif [ -z "${CACHEPOT_TEST_KEEP:-}" ]; then rm -rf "$T"; fi
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP

# on NS CMD...: run CMD with its network in namespace NS (and everything else on the host).
# Processes left running are started with nsenter itself, which execs CMD, so that $! is
# CMD's pid and the cleanup can end it.
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
sh "$top_srcdir/contrib/cachepot-certs.sh" "$T/certs" "$ip_w" client1 client2 > "$T/certs.log" 2>&1
check "cachepot-certs.sh: a CA, a server certificate for $ip_w and a client certificate" sh -c "
	openssl verify -CAfile '$T/certs/ca.crt' '$T/certs/server.crt' '$T/certs/client1.crt' > /dev/null &&
	openssl x509 -in '$T/certs/server.crt' -noout -ext subjectAltName | grep -q 'IP Address:$ip_w' &&
	openssl x509 -in '$T/certs/client1.crt' -noout -ext extendedKeyUsage | grep -q 'Client Auth'"

# --- the worker ---
mkdir -p "$T/w/mnt" "$T/c1/mnt" "$T/c2/mnt" "$T/ngx/cache" "$T/ngx/tmp"
wsock="$T/w/cachepotd.sock"
wcurl() { curl -s --max-time 10 --unix-socket "$wsock" "$@"; }
# A blob for nginx to cache (below): one a published manifest names, since the worker serves
# no other (an uploaded input answers 404); published before the worker holds the store.
printf 'a blob read through the proxy\n' > "$T/blob"
pblob=$(sha256sum < "$T/blob" | cut -d' ' -f1)
timeout 30 "$top_builddir/tests/fs/store-tool" publish "$T/w/store" "$(printf proxy | sha256sum | cut -c1-64)" \
	proxy.txt="$T/blob" > /dev/null || bail "cannot publish a blob into the worker's store"
start_worker() {
	set -- --store "$T/w/store" --socket "$wsock" --jobs 2
	needs listen && set -- "$@" --listen "$ip_w:8080"
	needs listen-tls && set -- "$@" --listen-tls "$ip_w:8443" --tls-cert "$T/certs/server.crt" \
		--tls-key "$T/certs/server.key" --client-ca "$T/certs/ca.crt"
	nsenter --net="/run/netns/$ns_w" -- "$top_builddir/cachepotd" "$@" >> "$T/w/daemon.log" 2>&1 &
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
	nsenter --net="/run/netns/$ns_p" -- "$nginx" -e "$T/ngx/error.log" -p "$T/ngx" -c "$T/ngx/nginx.conf" -g 'daemon off;' \
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
# A published blob of the worker's store ($pblob, above), read through nginx.
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
	mkdir -p "$cache"
	nsenter --net="/run/netns/$n" -- "$top_builddir/cachepot-fs" "http://$ip_p:8080/" "$T/$c/mnt" -f \
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
# Nothing may move the C driver's search path, or link units are compiled locally (some hosts
# set LIBRARY_PATH for everyone).
unset LIBRARY_PATH COMPILER_PATH GCC_EXEC_PREFIX
unset CACHEPOT_SOCKET CACHEPOT_SERVER CACHEPOT_TLS_CERT CACHEPOT_TLS_KEY CACHEPOT_CACERT CACHEPOT_TRUST 2> /dev/null
# as_client1/2/worker CMD...: CMD in that machine's namespace with its wrapper settings (each
# pins the worker's key, as the clients' mounts do).
as_client1() {
	on "$ns_1" env CACHEPOT_MOUNT="$T/c1/mnt" CACHEPOT_CACHE_DIR="$T/c1/cache" CACHEPOT_LOG="$T/c1/wrapper.log" CACHEPOT_TRUST="$T/trust" \
		CACHEPOT_SERVER="https://$ip_w:8443" CACHEPOT_CACERT="$T/certs/ca.crt" \
		CACHEPOT_TLS_CERT="$T/certs/client1.crt" CACHEPOT_TLS_KEY="$T/certs/client1.key" "$@"
}
as_client2() {
	on "$ns_2" env CACHEPOT_MOUNT="$T/c2/mnt" CACHEPOT_CACHE_DIR="$T/c2/cache" CACHEPOT_LOG="$T/c2/wrapper.log" CACHEPOT_TRUST="$T/trust" \
		CACHEPOT_SERVER="https://$ip_w:8443" CACHEPOT_CACERT="$T/certs/ca.crt" \
		CACHEPOT_TLS_CERT="$T/certs/client2.crt" CACHEPOT_TLS_KEY="$T/certs/client2.key" "$@"
}
# client2 without its certificate: it may read, and its submissions are refused.
as_client2_nocert() {
	on "$ns_2" env CACHEPOT_MOUNT="$T/c2/mnt" CACHEPOT_CACHE_DIR="$T/c2/cache" CACHEPOT_LOG="$T/c2/wrapper.log" CACHEPOT_TRUST="$T/trust" \
		CACHEPOT_SERVER="https://$ip_w:8443" CACHEPOT_CACERT="$T/certs/ca.crt" "$@"
}
as_worker() {
	on "$ns_w" env CACHEPOT_MOUNT="$T/w/mnt" CACHEPOT_CACHE_DIR="$T/w/cache" CACHEPOT_LOG="$T/w/wrapper.log" CACHEPOT_TRUST="$T/trust" \
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
# Every rlib, rmeta, proc-macro and the binary: with CARGO_INCREMENTAL=0 the members' too.
sums() { (cd "$1/target/debug/deps" && sha256sum $(ls -1 | grep -E '\.(rlib|rmeta|so)$|^bench_small-[0-9a-f]+$' | sort)); }
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
# cache_verifies DIR: every blob of the remote source's cache DIR (blobs/<sha256>, see
# fs/source_remote.c) holds bytes of that digest.
# Vacuous truth is refused: the cache must hold at least one blob.
cache_blobs() { find "$1" -type f -path '*/blobs/*' 2> /dev/null | grep -cE '/[0-9a-f]{64}$'; }
cache_verifies() {
	[ "$(cache_blobs "$1")" -gt 0 ] || return 1
	for f in $(find "$1" -type f -path '*/blobs/*' | grep -E '/[0-9a-f]{64}$'); do
		[ "$(sha256sum < "$f" | cut -d' ' -f1)" = "${f##*/}" ] || return 1
	done
}
# cache_lacks_and_verifies DIGEST DIR: no file of DIR is named after DIGEST, and DIR verifies.
cache_lacks_and_verifies() { ! find "$2" -name "*$1*" | grep -q . && cache_verifies "$2"; }

cp -r "$corpus" "$T/c1/work"
mkdir -p "$T/c2/elsewhere/deeper" && cp -r "$corpus" "$T/c2/elsewhere/deeper/work"
cp -r "$corpus" "$T/w/work"
n_units=0 tk_units=0
if needs listen listen-tls remote-fs remote-submit print-public-key; then
	if build client1 "$T/c1/work" "$T/c1/b1.log"; then ok "client1: cold build through the remote worker (${elapsed_ms} ms)"
	else not_ok "client1: cold build through the remote worker"; diag "$T/c1/b1.log"; fi
	n_units=$(stat_of client1 misses)
	check "client1: the misses were compiled on the worker ($n_units misses, $(stat_of client1 fallbacks) fallbacks, $(metric cachepotd_jobs_published_total) published)" \
		test "$n_units" -ge 40 -a "$(stat_of client1 fallbacks)" -eq 0 -a "$(metric cachepotd_jobs_published_total)" -ge "$n_units"
	sums "$T/c1/work" > "$T/c1/sums"
	# textkit alone, as the failure cases below build it: its dependencies' features differ
	# from the workspace build's, so a few units have keys of their own.
	build client1 "$T/c1/work" "$T/c1/b2.log" -p bench-small-textkit --target-dir "$T/c1/tk-target"; r=$?
	tk_units=$(($(stat_of client1 hits) + $(stat_of client1 misses)))
	check "client1: textkit alone ($r; $tk_units units: $(stat_of client1 hits) hits, $(stat_of client1 misses) compiled on the worker, $(stat_of client1 fallbacks) fallbacks)" \
		test "$r" -eq 0 -a "$tk_units" -ge 10 -a "$(stat_of client1 fallbacks)" -eq 0

	line=$(($(wc -l < "$T/ngx/access.log") + 1))
	req0=$(metric cachepotd_http_requests_total)
	if build client2 "$T/c2/elsewhere/deeper/work" "$T/c2/b1.log"; then ok "client2: warm build, fresh caches, another path (${elapsed_ms} ms)"
	else not_ok "client2: warm build, fresh caches, another path"; diag "$T/c2/b1.log"; fi
	c2_ms=$elapsed_ms
	req1=$(metric cachepotd_http_requests_total)
	h=$(stat_of client2 hits) m=$(stat_of client2 misses) f=$(stat_of client2 fallbacks)
	check "client2: every cacheable unit hits ($h of $n_units; misses: $m$(grep ' miss ' "$T/c2/wrapper.log" | awk '{printf " %s", $4}'); $f fallbacks)" \
		test "$h" -eq "$n_units" -a "$m" -eq 0 -a "$f" -eq 0
	ph=$(stat_of client2 published_list_hits)
	check "client2: every hit found without the dep-info pass, through the worker's published lists ($ph of $h)" \
		test "$ph" -eq "$h"
	sums "$T/c2/elsewhere/deeper/work" > "$T/c2/sums"
	differ=$(diff "$T/c1/sums" "$T/c2/sums" | awk '/^>/ {print $3}' | sed 's|-[0-9a-f]*\.| .|' | tr '\n' ' ')
	check "client2: $(wc -l < "$T/c1/sums") rlibs, rmetas, proc-macros and the binary byte-identical to client1's (differ: ${differ:-none})" \
		sh -c "test -s '$T/c1/sums' && cmp -s '$T/c1/sums' '$T/c2/sums'"
	# Pre-key lists change, so nginx passes them through (no-cache): they are the only reads
	# that reach the worker.
	lookups=$(from_client2 "$line" | grep -c '"GET /v1/prekeys/')
	reads=$(from_client2 "$line" | grep -vc '"GET /v1/prekeys/') hits=$(from_client2 "$line" | grep -v '"GET /v1/prekeys/' | grep -c ' cache=HIT ')
	check "nginx: client2's reads of manifests and blobs were served from its cache ($hits of $reads HIT)" \
		test "$reads" -gt 0 -a "$hits" -eq "$reads"
	# The second /metrics read counts itself.
	worker_seen=$((req1 - req0 - 1))
	check "the worker saw none of client2's requests but its $lookups pre-key lookups ($worker_seen did reach it)" \
		test "$lookups" -gt 0 -a "$worker_seen" -eq "$lookups"
	if build worker "$T/w/work" "$T/w/b1.log"; then ok "worker: warm build on its own machine (${elapsed_ms} ms; client2 took ${c2_ms} ms)"
	else not_ok "worker: warm build on its own machine"; diag "$T/w/b1.log"; fi
	echo "# figures: client2 warm ${c2_ms} ms through nginx, worker warm ${elapsed_ms} ms on its own mount;" \
		"client2: $reads reads through nginx, $((reads - hits)) not HIT; $worker_seen requests reached the worker"
else
	todo "client1: cold build through the remote worker" "client1: the misses were compiled on the worker" \
		"client1: textkit alone" \
		"client2: warm build, fresh caches, another path" "client2: every cacheable unit hits" \
		"client2: every hit found without the dep-info pass, through the worker's published lists" \
		"client2: rlibs, rmetas, proc-macros and the binary byte-identical to client1's" "nginx: client2's reads were served from its cache" \
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
# The blob is textkit's rlib; a build of textkit alone reads it and 20-odd cached units.
tk="$T/c2/elsewhere/deeper/work"
# build_textkit WHO LOG: cargo clean, then a build of textkit and its dependencies.
build_textkit() {
	(cd "$tk" && cargo clean -q)
	build "$1" "$tk" "$2" -p bench-small-textkit
}
if needs listen listen-tls remote-fs remote-submit print-public-key && [ "$n_units" -gt 0 ]; then
	bad=$(sha256sum "$T/c1/tk-target"/debug/deps/libbench_small_textkit-*.rlib | cut -d' ' -f1)
	badfile="$T/w/store/cas/$(printf %s "$bad" | cut -c1-2)/$bad"
	unmount_client c2
	stop_nginx
	rm -rf "$T/ngx/cache" && mkdir -p "$T/ngx/cache"
	start_nginx || bail "nginx did not start again"
	mount_client c2 "$ns_2" "$T/c2/fscache2" || bail "client2 did not mount again"
	[ -f "$badfile" ] && flip_byte "$badfile"
	check "flipped a byte of textkit's rlib in the worker's store" \
		sh -c "test -f '$badfile' && test \"\$(sha256sum < '$badfile' | cut -d' ' -f1)\" != '$bad'"
	line=$(($(wc -l < "$T/ngx/access.log") + 1))
	rd=$(timeout 60 cat "$T/c2/mnt/cas/$bad" 2>&1 > /dev/null)
	verdicts=$(tail -n "+$line" "$T/ngx/access.log" | grep "/v1/blobs/$bad" | awk '{print $(NF-2)}' | tr '\n' ' ')
	check "client2: reading the bad blob fails with EIO ($rd)" sh -c "echo '$rd' | grep -q 'Input/output error'"
	check "client2: the bad copy was fetched again past nginx with no-cache, once (nginx: $verdicts)" \
		sh -c "echo '$verdicts' | grep -qx 'cache=MISS cache=BYPASS *'"
	build_textkit client2 "$T/c2/b2.log"; r=$?
	h=$(stat_of client2 hits) f=$(stat_of client2 fallbacks) m=$(stat_of client2 misses)
	check "client2: the build still succeeds, textkit falls back ($r; $h of $tk_units hit, $m misses, $f fallbacks)" \
		test "$r" -eq 0 -a "$h" -eq $((tk_units - 1)) -a "$f" -eq 1 -a "$m" -le 1
	check "nothing of the bad blob entered client2's cache, its $(cache_blobs "$T/c2/fscache2") blobs verify" \
		cache_lacks_and_verifies "$bad" "$T/c2/fscache2"
	flip_byte "$badfile"
	# nginx keeps the bad copy it was given; empty it so that what follows reads good ones.
	stop_nginx; rm -rf "$T/ngx/cache" && mkdir -p "$T/ngx/cache"; start_nginx || bail "nginx did not start again"

	# --- a flipped byte in nginx's copy, the worker's good ---
	# nginx stores the good rlib, then a byte of its stored body is flipped (a cache file is a
	# header, the upstream's answer headers, then the body: the middle is well inside the
	# body). client2, whose cache lacks the blob, gets the bad copy from nginx (HIT), refetches
	# with no-cache (BYPASS), reads the right bytes and keeps them; nginx stores the fresh
	# answer; the worker's store does not change.
	store_sums() { (cd "$T/w/store/cas" && find . -type f | sort | xargs sha256sum); }
	store_sums > "$T/w/cas.before"
	unmount_client c2
	mount_client c2 "$ns_2" "$T/c2/fscache2" || bail "client2 did not mount again"
	first=$(via "$ns_1" "/v1/blobs/$bad")
	wait_for 10 sh -c "grep -rlq 'KEY: /v1/blobs/$bad' '$T/ngx/cache'"
	ngxfile=$(grep -rl "KEY: /v1/blobs/$bad" "$T/ngx/cache" | head -n 1)
	[ -n "$ngxfile" ] && flip_byte "$ngxfile"
	held=$(on "$ns_1" curl -s --max-time 10 "http://$ip_p:8080/v1/blobs/$bad" | sha256sum | cut -d' ' -f1)
	check "nginx holds textkit's rlib ($first) and serves it with a flipped byte now" \
		test "$first" = "200 MISS" -a -n "$ngxfile" -a "$held" != "$bad"
	line=$(($(wc -l < "$T/ngx/access.log") + 1))
	check "client2: the bad copy in nginx's cache is detected, refetched past it, and reads right" \
		sh -c "timeout 60 cat '$T/c2/mnt/cas/$bad' | cmp -s - '$badfile'"
	verdicts=$(tail -n "+$line" "$T/ngx/access.log" | grep "/v1/blobs/$bad" | awk '{print $(NF-2)}' | tr '\n' ' ')
	check "client2's reads of it: the bad HIT, then no-cache past nginx (nginx: $verdicts)" \
		sh -c "echo '$verdicts' | grep -qx 'cache=HIT cache=BYPASS *'"
	hdr=$(on "$ns_1" curl -s --max-time 10 -D - -o "$T/refetched" "http://$ip_p:8080/v1/blobs/$bad" | tr -d '\r' |
		awk 'tolower($1) == "x-cache-status:" { print $2 }')
	check "nginx stored the fresh answer in place of the bad copy ($hdr, right bytes)" \
		sh -c "test '$hdr' = HIT && test \"\$(sha256sum < '$T/refetched' | cut -d' ' -f1)\" = '$bad'"
	store_sums > "$T/w/cas.after"
	refetch_kept() { test -f "$T/c2/fscache2/blobs/$bad" && cmp -s "$T/w/cas.before" "$T/w/cas.after" && cache_verifies "$T/c2/fscache2"; }
	check "the refetched blob entered client2's cache, its $(cache_blobs "$T/c2/fscache2") blobs verify; the worker's store is unchanged" \
		refetch_kept
else
	todo "flipped a byte of textkit's rlib in the worker's store" "client2: reading the bad blob fails with EIO" \
		"client2: the bad copy was fetched again past nginx with no-cache" \
		"client2: the build still succeeds, textkit falls back" "nothing of the bad blob entered client2's cache, everything in it verifies" \
		"nginx holds textkit's rlib and serves it with a flipped byte now" \
		"client2: the bad copy in nginx's cache is detected, refetched past it, and reads right" \
		"client2's reads of it: the bad HIT, then no-cache past nginx" \
		"nginx stored the fresh answer in place of the bad copy" \
		"the refetched blob entered client2's cache, its blobs verify; the worker's store is unchanged"
fi

# --- the worker down: what client2 has cached still reads, a new unit falls back ---
if needs listen listen-tls remote-fs remote-submit print-public-key && [ "$n_units" -gt 0 ]; then
	a=$(via "$ns_1" "/v1/blobs/$pblob")
	stop_worker
	t0=$(date +%s%N)
	b=$(via "$ns_1" "/v1/blobs/$pblob") c=$(via "$ns_1" "/v1/manifests/$nokey")
	t_ms=$((($(date +%s%N) - t0) / 1000000))
	check "worker down: nginx serves what it holds ('$a', then '$b'), a missing key fails fast ('$c', ${t_ms} ms for both)" \
		test "$a" = "200 MISS" -a "$b" = "200 HIT" -a "${c%% *}" = 502 -a "$t_ms" -lt 5000
	echo 'pub fn one_more_line() -> u32 { 42 }' >> "$tk/textkit/src/lib.rs"
	build_textkit client2 "$T/c2/b3.log"; r=$?
	h=$(stat_of client2 hits) f=$(stat_of client2 fallbacks)
	check "worker down: client2's build succeeds ($r, ${elapsed_ms} ms)" test "$r" -eq 0
	check "worker down: the cached units read ($h of $tk_units hit), the changed textkit falls back ($f)" \
		test "$h" -eq $((tk_units - 1)) -a "$f" -eq 1
	check "worker down: the $(cache_blobs "$T/c2/fscache2") blobs of client2's cache verify" cache_verifies "$T/c2/fscache2"
	start_worker || bail "cachepotd did not start again: $(tail -n 5 "$T/w/daemon.log")"

	# --- nginx down, and client2 without its certificate ---
	stop_nginx
	echo 'pub fn yet_another() -> u32 { 43 }' >> "$tk/textkit/src/lib.rs"
	forbidden0=$(metric cachepotd_http_forbidden_total) published0=$(metric cachepotd_jobs_published_total)
	build_textkit client2_nocert "$T/c2/b4.log"; r=$?
	h=$(stat_of client2 hits) f=$(stat_of client2 fallbacks)
	check "nginx down: client2's build succeeds ($r, ${elapsed_ms} ms)" test "$r" -eq 0
	check "nginx down: the cached units read from client2's own cache ($h of $tk_units hit), textkit falls back ($f)" \
		test "$h" -eq $((tk_units - 1)) -a "$f" -eq 1
	# With the mount's lookup failing (EIO) the wrapper may fall back without submitting; a
	# submission it does make is refused (403, counted). Either way nothing is published.
	check "without a certificate nothing was published for client2 ($(($(metric cachepotd_http_forbidden_total) - forbidden0)) refusals)" \
		test "$(metric cachepotd_jobs_published_total)" -eq "$published0"
else
	todo "worker down: nginx serves what it holds, a missing key fails fast" "worker down: client2's build succeeds" "worker down: the cached units read, the changed textkit falls back" \
		"worker down: everything in client2's cache verifies" "nginx down: client2's build succeeds" \
		"nginx down: the cached units read from client2's own cache, textkit falls back" \
		"without a certificate client2's submission was refused and nothing published"
fi

stop_worker
"$top_builddir/cachepotd" --store "$T/w/store" --fsck > "$T/w/fsck.log" 2>&1
check "the worker's store is sound after all of it (cachepotd --fsck)" test $? -eq 0
[ -z "$missing" ] || echo "# not in this tree:$missing"
