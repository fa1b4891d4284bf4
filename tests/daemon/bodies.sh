#!/bin/sh
# cachepotd knows who is asking before it reads a body (daemon/peers.h): a peer that may not
# write has its huge Content-Length or its endless chunked body refused (413) with next to
# nothing read, so the daemon's memory does not grow with what it announces; a peer holding
# --max-connections-per-peer connections has the next ones closed at once, counted in /metrics,
# and gets them back when it closes its own; writers still upload. tests/daemon/flood is the
# hostile client (it announces more than it sends and holds connections idle).
. "$top_srcdir/tests/tap.sh"
. "$top_srcdir/tests/daemon/lib.sh"

[ "$(id -u)" = 0 ] || skip_all "needs root (setpriv)"
command -v setpriv >/dev/null || skip_all "needs setpriv"

tap_plan 12
daemon_setup
FLOOD=$top_builddir/tests/daemon/flood
CAP=8
daemon_start --jobs 1 --max-connections-per-peer $CAP || bail "cachepotd did not start"
ZERO=0000000000000000000000000000000000000000000000000000000000000000

as_nobody() { setpriv --reuid=65534 --regid=65534 --clear-groups "$@"; }
rss_kib() { awk '$1 == "VmRSS:" { print $2 }' "/proc/$DAEMON_PID/status"; }

# flood_run NAME ARGS...: run flood as uid 65534 in the background, holding its connections
# until flood_release; waits for its report in $T/NAME.out.
flood_run() {
	name=$1; shift
	rm -f "$T/$name.hold"; mkfifo "$T/$name.hold"
	as_nobody "$FLOOD" "$@" < "$T/$name.hold" > "$T/$name.out" 2>&1 &
	FLOOD_PID=$!
	exec 3> "$T/$name.hold"
	for _ in $(seq 1 300); do
		grep -q '^ready$' "$T/$name.out" && return 0
		kill -0 "$FLOOD_PID" 2>/dev/null || break
		sleep 0.1
	done
	echo "# flood $*: no report"; sed 's/^/#   /' "$T/$name.out"
	return 1
}
flood_release() { exec 3>&-; wait "$FLOOD_PID"; }
field() { sed -n "s/.*$1=\([^ ]*\).*/\1/p" "$T/$2.out" | head -n 1; }

# --- a huge Content-Length from a peer that may not write ---
# 8 connections each announce 2 GiB (less than the largest upload) and try to send 64 MiB. Read whole (as before the rights
# were decided per connection), that is 512 MiB in the daemon.
before=$(store_snapshot)
rss0=$(rss_kib)
flood_run huge body "$SOCK" /v1/blobs/$ZERO 8 2147483648 67108864 || bail "flood"
rss1=$(rss_kib)
grow=$(( rss1 - rss0 ))
echo "# RSS before $rss0 KiB, with 8 connections announcing 2 GiB: $rss1 KiB (+$grow KiB); flood: $(head -n 1 "$T/huge.out")"
check "8 connections of uid 65534 announcing 2 GiB each: all answered 413" \
	test "$(field answered huge)" = 8/0/0
check "... the daemon took less than 2 MiB of each body (sent $(field sent huge) bytes in all)" \
	test "$(field sent huge)" -lt $(( 8 * 2097152 ))
check "... its RSS grew by less than 16 MiB (+$grow KiB)" test "$grow" -lt 16384
flood_release

# --- a chunked body past the limit ---
flood_run chunked body "$SOCK" /v1/blobs/$ZERO 1 0 16777216 chunked || bail "flood"
echo "# chunked: $(head -n 1 "$T/chunked.out")"
check "a chunked body of uid 65534 is cut off past the limit: 413" \
	test "$(field answered chunked)" = 1/0/0
check "... after less than 2 MiB of its 16 MiB" test "$(field sent chunked)" -lt 2097152
flood_release
check "nothing was stored" test "$(store_snapshot)" = "$before"

# --- idle connections past --max-connections-per-peer ---
refused0=$(metric connections_refused_total)
flood_run idle idle "$SOCK" $(( CAP + 4 )) || bail "flood"
check "$(( CAP + 4 )) idle connections of uid 65534 with a cap of $CAP: 4 closed at once" \
	test "$(field closed idle)" = 4
check "... counted in cachepotd_connections_refused_total" \
	test "$(metric connections_refused_total)" = $(( refused0 + 4 ))
check "... while another peer (root) is served" test "$(api GET /v1/status)" = 200
flood_release
sleep 0.5
check "uid 65534 is served again once it closed its connections" \
	test "$(as_nobody curl -s -o /dev/null -w '%{http_code}' --max-time 10 --unix-socket "$SOCK" http://d/v1/status)" = 200

# --- writers are not limited to a reader's body ---
head -c 4194304 /dev/urandom > "$T/big"
h=$(put_blob "$T/big")
check "a 4 MiB blob from root (a writer): 201" test "$h" = "$(sha256_of "$T/big")"
check "the daemon stops cleanly" daemon_stop
