#!/bin/sh
# cachepot-fs over HTTP: a real store exported as v1/manifests/<key> and v1/blobs/<sha256> and
# served by a static HTTP server on 127.0.0.1, mounted with trust= its public key. Bytes through
# the mount, objects verified into the cache, no negative caching, and every kind of bad answer
# refused and kept out of the cache: a flipped byte, a manifest signed by another key, key A's
# manifest served for key B, an oversized blob. Concurrent opens make one request; the cache is
# bounded with LRU eviction while an open file stays readable; a stalled origin and a dead one
# answer EIO in bounded time while cached entries still read. The same mount over the real
# cachepotd --listen and --listen-tls (cacert=). Runs as root; everything is
# unmounted and killed on exit, even on failure.
. "$top_srcdir/tests/tap.sh"

[ "$(id -u)" = 0 ] || skip_all "needs root"
[ -c /dev/fuse ] || skip_all "no /dev/fuse"
command -v fusermount3 >/dev/null || skip_all "no fusermount3"
command -v python3 >/dev/null || skip_all "no python3"

tool="$top_builddir/tests/fs/store-tool"
fsbin="$top_builddir/cachepot-fs"
work=$(mktemp -d /tmp/cachepot-remote-test.XXXXXX) || bail "mktemp"
www=$work/www
fs_pids=""
server_pids=""

cleanup() {
	for m in "$work"/mnt*; do
		if mountpoint -q "$m" 2>/dev/null; then
			fusermount3 -u "$m" 2>/dev/null || umount -l "$m"
		fi
	done
	for p in $fs_pids $server_pids $watchdog; do kill -9 "$p" 2>/dev/null; done
	rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP
( sleep 240; kill -TERM $$ ) </dev/null >/dev/null 2>&1 &
watchdog=$!

# serve DIR LOG: a static HTTP server on a free port of 127.0.0.1; sets $port.
serve() {
	python3 -u -m http.server 0 --bind 127.0.0.1 --directory "$1" </dev/null >"$2" 2>&1 &
	server_pid=$!
	server_pids="$server_pids $server_pid"
	i=0
	port=""
	while [ -z "$port" ]; do
		i=$((i + 1)); [ $i -gt 100 ] && return 1
		sleep 0.1
		port=$(sed -n 's/^Serving HTTP on [0-9.]* port \([0-9]*\) .*/\1/p' "$2")
	done
}

# mount_remote URL MOUNTPOINT OPTIONS: cachepot-fs in the foreground, in the background.
mount_remote() {
	mkdir -p "$2"
	"$fsbin" "$1" "$2" -f -o "$3" </dev/null >/dev/null 2>>"$work/fs.log" &
	fs_pids="$fs_pids $!"
	last_pid=$!
	i=0
	while ! mountpoint -q "$2"; do
		i=$((i + 1)); [ $i -gt 100 ] && return 1
		kill -0 $last_pid 2>/dev/null || return 1
		sleep 0.1
	done
}

newkey() { head -c 32 /dev/urandom | sha256sum | cut -c1-64; }
sha() { sha256sum "$1" | cut -c1-64; }
# publish STORE NAME=FILE...: a new key, printed.
publish() {
	s=$1; shift; k=$(newkey)
	[ "$(timeout 30 "$tool" publish "$s" "$k" "$@")" = 0 ] || return 1
	echo "$k"
}
# errno_of PATH: what a stat of PATH gives (OK, ENOENT, EIO...).
errno_of() { "$tool" read-errno "$1"; }
gets() { grep -c "GET /v1/$1 " "$work/http.log"; }
millis() { date +%s%3N; }

tap_plan 48

store=$work/store
head -c 300000 /dev/urandom > "$work/a.rlib"
head -c 200000 /dev/urandom > "$work/b.rlib"
head -c 2000000 /dev/urandom > "$work/e.rlib"
head -c 250000 /dev/urandom > "$work/f.rlib"
printf 'dep-info\n' > "$work/a.d"
k1=$(publish "$store" liba.rlib="$work/a.rlib" a.d="$work/a.d:755")
k2=$(publish "$store" libb.rlib="$work/b.rlib")
k8=$(publish "$store" libe.rlib="$work/e.rlib")
k9=$(publish "$store" libf.rlib="$work/f.rlib")
k10=$(publish "$store" libb.rlib="$work/b.rlib")
"$tool" export "$store" "$www" || bail "export"
{ echo "# the worker's key"; echo; cat "$store/key/ed25519.pub"; } > "$work/trust"
check "static HTTP server up" serve "$www" "$work/http.log"
url=http://127.0.0.1:$port/
cache=$work/cache
check "remote mount comes up" mount_remote "$url" "$work/mnt" "trust=$work/trust,cache=$cache,cache_size=64M"
mnt=$work/mnt

check "bytes through ac/KEY/OUTPUT equal the blob" cmp "$work/a.rlib" "$mnt/ac/$k1/liba.rlib"
check ".manifest is the signed manifest of KEY" grep -q "\"key\":\"$k1\"" "$mnt/ac/$k1/.manifest"
check "stat: size and mode of outputs as in the manifest" \
	test "$(stat -c '%s %a' "$mnt/ac/$k1/liba.rlib" "$mnt/ac/$k1/a.d" | tr '\n' ' ')" = "300000 444 9 555 "
check "bytes through cas/SHA256 equal the blob" cmp "$work/b.rlib" "$mnt/cas/$(sha "$work/b.rlib")"
check "the verified blob and manifest are in the cache" \
	test -f "$cache/blobs/$(sha "$work/a.rlib")" -a -f "$cache/manifests/$k1"
check "readdir of ac/ lists the cached key" sh -c "ls '$mnt/ac' | grep -qx '$k1'"

# No negative caching: a miss is ENOENT, nothing is remembered, and the key is found once served.
k3=$(newkey)
check "a key the origin does not have is ENOENT" test "$(errno_of "$mnt/ac/$k3")" = "No such file or directory"
check "a miss leaves nothing in the cache" test ! -e "$cache/manifests/$k3"
check "a blob the origin does not have is ENOENT through cas/" \
	test "$(errno_of "$mnt/cas/$(newkey)")" = "No such file or directory"
head -c 5000 /dev/urandom > "$work/late.rlib"
k3=$(publish "$store" late.rlib="$work/late.rlib")
"$tool" export "$store" "$www"
check "a key published after the miss is found at the next lookup" \
	cmp "$work/late.rlib" "$mnt/ac/$k3/late.rlib"

# A flipped byte in a served blob.
head -c 70001 /dev/zero > "$work/c.rlib"
k4=$(publish "$store" c.rlib="$work/c.rlib")
"$tool" export "$store" "$www"
csha=$(sha "$work/c.rlib")
printf 'X' | dd of="$www/v1/blobs/$csha" bs=1 seek=4242 conv=notrunc status=none
check "a served blob with a flipped byte reads EIO" test "$(errno_of "$mnt/ac/$k4/c.rlib")" = EIO
check "... and never enters the cache" test ! -e "$cache/blobs/$csha" -a -z "$(ls -A "$cache/tmp")"

# A manifest signed by another store's key.
other=$work/other
head -c 1000 /dev/urandom > "$work/o.rlib"
k5=$(publish "$other" o.rlib="$work/o.rlib")
"$tool" export "$other" "$work/www-other"
cp "$work/www-other/v1/manifests/$k5" "$www/v1/manifests/$k5"
cp "$work/www-other/v1/blobs/"* "$www/v1/blobs/"
check "a manifest signed by an untrusted key is EIO" test "$(errno_of "$mnt/ac/$k5")" = EIO
check "... and never enters the cache" test ! -e "$cache/manifests/$k5"

# Key A's (valid, trusted) manifest served for key B.
k6=$(newkey)
cp "$www/v1/manifests/$k2" "$www/v1/manifests/$k6"
check "key A's manifest served for key B is EIO" test "$(errno_of "$mnt/ac/$k6")" = EIO
check "... and never enters the cache" test ! -e "$cache/manifests/$k6"

# A blob longer than the manifest says (its hash is then wrong too; the size stops it first).
head -c 40000 /dev/urandom > "$work/d.rlib"
k7=$(publish "$store" d.rlib="$work/d.rlib")
"$tool" export "$store" "$www"
dsha=$(sha "$work/d.rlib")
head -c 100000 /dev/urandom >> "$www/v1/blobs/$dsha"
check "an oversized blob reads EIO" test "$(errno_of "$mnt/ac/$k7/d.rlib")" = EIO
check "... and never enters the cache" test ! -e "$cache/blobs/$dsha" -a -z "$(ls -A "$cache/tmp")"

# A cache in front of the origin holding bad copies: the poisoning proxy below serves its own
# copy of a path (a flipped byte, a manifest of another store) unless the request carries
# "Pragma: no-cache", as nginx with contrib/nginx/cachepot-proxy.conf does; then the origin's.
# Each request is logged as "GET PATH no-cache=0|1".
python3 -c '
import http.server, os, sys
origin, poisoned = sys.argv[1], sys.argv[2]
class Proxy(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        rel = self.path.lstrip("/")
        fresh = "no-cache" in (self.headers.get("Pragma") or "")
        sys.stderr.write("GET %s no-cache=%d\n" % (self.path, fresh)); sys.stderr.flush()
        for base in ([origin] if fresh else [poisoned, origin]):
            f = os.path.join(base, rel)
            if ".." not in rel.split("/") and os.path.isfile(f):
                body = open(f, "rb").read()
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                return
        self.send_response(404)
        self.send_header("Content-Length", "0")
        self.end_headers()
    def log_message(self, *args):
        pass
s = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Proxy)
print(s.server_address[1], flush=True)
s.serve_forever()
' "$www" "$work/poisoned" > "$work/proxy.port" 2> "$work/proxy.log" &
server_pids="$server_pids $!"
i=0; while [ ! -s "$work/proxy.port" ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
proxied() { grep -c "^GET /v1/$1 no-cache=$2\$" "$work/proxy.log"; }
head -c 90000 /dev/urandom > "$work/g.rlib"
k11=$(publish "$store" libg.rlib="$work/g.rlib")
head -c 3000 /dev/urandom > "$work/o2.rlib"
k12=$(publish "$store" libh.rlib="$work/o2.rlib")
"$tool" export "$store" "$www"
gsha=$(sha "$work/g.rlib")
mkdir -p "$work/poisoned/v1/blobs" "$work/poisoned/v1/manifests"
cp "$www/v1/blobs/$gsha" "$work/poisoned/v1/blobs/$gsha"
printf 'X' | dd of="$work/poisoned/v1/blobs/$gsha" bs=1 seek=777 conv=notrunc status=none
# k12's manifest in the proxy: the other store's (signed by an untrusted key), under k12's name.
cp "$work/www-other/v1/manifests/$k5" "$work/poisoned/v1/manifests/$k12"
# And c.rlib's copy is bad at the origin too (the export restored it; flip it again): no
# refetch helps.
printf 'X' | dd of="$www/v1/blobs/$csha" bs=1 seek=4242 conv=notrunc status=none
cp "$www/v1/blobs/$csha" "$work/poisoned/v1/blobs/$csha"
pcache=$work/cache-proxied
check "a mount through a proxy holding bad copies comes up" \
	mount_remote "http://127.0.0.1:$(cat "$work/proxy.port")/" "$work/mnt8" "trust=$work/trust,cache=$pcache"
check "a bad blob in the proxy is fetched again with Pragma: no-cache and reads right" \
	cmp "$work/g.rlib" "$work/mnt8/ac/$k11/libg.rlib"
check "... one request through the proxy, one past it ($(proxied "blobs/$gsha" 0), $(proxied "blobs/$gsha" 1))" \
	test "$(proxied "blobs/$gsha" 0)" = 1 -a "$(proxied "blobs/$gsha" 1)" = 1
check "... and the good copy entered the cache" \
	sh -c "test \"\$(sha256sum < '$pcache/blobs/$gsha' | cut -c1-64)\" = '$gsha'"
check "a manifest in the proxy signed by an untrusted key is fetched again and accepted" \
	grep -q "\"key\":\"$k12\"" "$work/mnt8/ac/$k12/.manifest"
check "... past the proxy once ($(proxied "manifests/$k12" 0), $(proxied "manifests/$k12" 1))" \
	test "$(proxied "manifests/$k12" 0)" = 1 -a "$(proxied "manifests/$k12" 1)" = 1
check "a blob bad at the origin too stays EIO after one refetch" test "$(errno_of "$work/mnt8/ac/$k4/c.rlib")" = EIO
check "... two requests in all, nothing in the cache ($(proxied "blobs/$csha" 0), $(proxied "blobs/$csha" 1))" \
	test "$(proxied "blobs/$csha" 0)" = 1 -a "$(proxied "blobs/$csha" 1)" = 1 -a ! -e "$pcache/blobs/$csha" \
	-a -z "$(ls -A "$pcache/tmp")"

# Eight readers open one uncached 2 MB blob at once: one request.
esha=$(sha "$work/e.rlib")
ls "$mnt/ac/$k8" >/dev/null
t0=$(millis)
readers=""
for i in 1 2 3 4 5 6 7 8; do cat "$mnt/ac/$k8/libe.rlib" > "$work/e.out$i" & readers="$readers $!"; done
wait $readers
t1=$(millis)
all_same=1
for i in 1 2 3 4 5 6 7 8; do cmp -s "$work/e.rlib" "$work/e.out$i" || all_same=0; done
check "eight concurrent readers of an uncached blob read the right bytes" test $all_same = 1
check "... through one request to the origin" test "$(gets "blobs/$esha")" = 1
# The same blob by another name (a new inode, so not the kernel's page cache): the local cache.
t2=$(millis)
cat "$mnt/cas/$esha" > /dev/null
t3=$(millis)
echo "# 2 MB blob: first read through the origin (8 readers) $((t1 - t0)) ms; read from the local cache $((t3 - t2)) ms"

# Bounded cache: 600 KB. a (300 KB) is held open, b (200 KB) and f (250 KB) push it out.
c2=$work/cache2
check "second remote mount, cache_size=600K" mount_remote "$url" "$work/mnt2" "trust=$work/trust,cache=$c2,cache_size=600K"
m2=$work/mnt2
exec 3<"$m2/ac/$k1/liba.rlib"
cat "$m2/ac/$k2/libb.rlib" > /dev/null
cat "$m2/ac/$k9/libf.rlib" > /dev/null
total=$(du -sb "$c2/blobs" "$c2/manifests" | awk '{ t += $1 } END { print t }')
echo "# cache2 holds $total bytes (directories included)"
check "the least recently used blob is evicted" test ! -e "$c2/blobs/$(sha "$work/a.rlib")"
check "the cache stays within cache_size" test "$(ls -l "$c2/blobs" "$c2/manifests" | awk '/^-/ { t += $5 } END { print t + 0 }')" -le 614400
check "a file open across its eviction still reads whole" sh -c "cmp - '$work/a.rlib' <&3"
exec 3<&-
check "an evicted blob is fetched again when opened again" cmp "$work/a.rlib" "$m2/cas/$(sha "$work/a.rlib")"

# A stalled origin: accepts connections and never answers.
python3 -c '
import socket, sys, time
s = socket.socket()
s.bind(("127.0.0.1", 0))
s.listen(64)
print(s.getsockname()[1], flush=True)
time.sleep(600)
' > "$work/stall.port" &
server_pids="$server_pids $!"
i=0; while [ ! -s "$work/stall.port" ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
stall=$(cat "$work/stall.port")
check "mount of a stalled origin comes up" mount_remote "http://127.0.0.1:$stall/" "$work/mnt3" \
	"trust=$work/trust,cache=$work/cache3,stall_timeout_ms=2000"
t0=$(millis)
r=$(errno_of "$work/mnt3/ac/$k1")
t1=$(millis)
echo "# stalled origin answered $r after $((t1 - t0)) ms"
check "a stalled origin is EIO within 10 s" test "$r" = EIO -a $((t1 - t0)) -lt 10000

# The origin goes away: what is cached still reads, the rest is EIO at once.
kill "$server_pid"; wait "$server_pid" 2>/dev/null
check "origin down: a cached output still reads" cmp "$work/a.rlib" "$mnt/cas/$(sha "$work/a.rlib")"
check "origin down: a cached key's manifest still reads in a fresh lookup" \
	sh -c "grep -q '\"key\":\"$k8\"' '$mnt/ac/$k8/.manifest'"
t0=$(millis)
r=$(errno_of "$mnt/ac/$k10")
t1=$(millis)
check "origin down: an uncached key is EIO within 5 s" test "$r" = EIO -a $((t1 - t0)) -lt 5000

# Options.
printf 'not a key\n' > "$work/bad-trust"
mkdir -p "$work/mnt4"
check "a trust file with a bad line is refused at mount time" \
	sh -c "! '$fsbin' '$url' '$work/mnt4' -f -o trust='$work/bad-trust',cache='$work/cache4' 2>/dev/null"
check "remote options on a local source are refused" \
	sh -c "! '$fsbin' '$store' '$work/mnt4' -f -o cache='$work/cache4' 2>/dev/null"

# The real origin: cachepotd --listen (HTTP) and --listen-tls (HTTPS, checked against its CA).
daemon_pid=""
if command -v openssl >/dev/null && [ -x "$top_builddir/cachepotd" ]; then
	chmod 755 "$work"   # the daemon wants its store reachable by the sandbox's user
	sh "$top_srcdir/contrib/cachepot-certs.sh" "$work/certs" 127.0.0.1 writer > "$work/certs.log" 2>&1
	"$top_builddir/cachepotd" --store "$store" --print-public-key > "$work/daemon.pub"
	for _ in 1 2 3 4 5; do
		dport=$(( 20000 + $(od -An -N2 -tu2 /dev/urandom) % 20000 ))
		"$top_builddir/cachepotd" --store "$store" --socket "$work/d.sock" --jobs 1 \
			--listen "127.0.0.1:$dport" --listen-tls "127.0.0.1:$((dport + 1))" \
			--tls-cert "$work/certs/server.crt" --tls-key "$work/certs/server.key" \
			--client-ca "$work/certs/ca.crt" 2>>"$work/daemon.log" &
		daemon_pid=$!
		server_pids="$server_pids $daemon_pid"
		i=0
		while [ ! -S "$work/d.sock" ] && kill -0 $daemon_pid 2>/dev/null && [ $i -lt 100 ]; do
			sleep 0.1; i=$((i + 1))
		done
		[ -S "$work/d.sock" ] && break
		daemon_pid=""
	done
	check "cachepotd --listen and --listen-tls up" test -n "$daemon_pid"
	mount_remote "http://127.0.0.1:$dport/" "$work/mnt5" "trust=$work/daemon.pub,cache=$work/cache5"
	check "over cachepotd --listen: bytes of an output" cmp "$work/a.rlib" "$work/mnt5/ac/$k1/liba.rlib"
	mount_remote "https://127.0.0.1:$((dport + 1))/" "$work/mnt6" \
		"trust=$work/daemon.pub,cache=$work/cache6,cacert=$work/certs/ca.crt"
	check "over cachepotd --listen-tls with cacert=: bytes of an output" \
		cmp "$work/b.rlib" "$work/mnt6/ac/$k2/libb.rlib"
	mount_remote "https://127.0.0.1:$((dport + 1))/" "$work/mnt7" "trust=$work/daemon.pub,cache=$work/cache7"
	check "over --listen-tls without its CA: EIO (the certificate is not trusted)" \
		test "$(errno_of "$work/mnt7/ac/$k2")" = EIO
else
	for d in "cachepotd up" "over --listen" "over --listen-tls" "without its CA"; do
		ok "$d # SKIP needs openssl and cachepotd"
	done
fi

status=0
for m in "$mnt" "$m2" "$work/mnt3" "$work"/mnt5 "$work"/mnt6 "$work"/mnt7 "$work/mnt8"; do
	mountpoint -q "$m" 2>/dev/null || continue
	fusermount3 -u "$m" || status=1
done
for p in $fs_pids; do wait "$p" || status=1; done
fs_pids=""
check "cachepot-fs exits 0 on unmount" test $status = 0
check "cachepot-fs reported no sanitizer errors or leaks" sh -c "! grep -q 'Sanitizer' '$work/fs.log'"
grep -v '^$' "$work/fs.log" | sed 's/^/# fs.log: /'
