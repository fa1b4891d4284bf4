#!/bin/sh
# Uploads in parts (daemon/upload.h). No body may be larger than 8 MiB, not even from a writer,
# so an announced body costs the daemon at most that whoever announces it. A larger blob or
# toolchain archive comes as parts of one upload, each written to disk on arrival. A part out of
# place is refused with where the upload stands. Bytes that do not match the name leave
# nothing. An upload that stops receiving parts is dropped. At most 64 uploads run at once.
# Cost: a few seconds (blobs of 20 MiB, no compile).
. "$top_srcdir/tests/tap.sh"
. "$top_srcdir/tests/daemon/lib.sh"

tap_plan 24
daemon_setup
FLOOD=$top_builddir/tests/daemon/flood
daemon_start --jobs 1 || bail "cachepotd did not start"
MIB=1048576
PART=$((8 * MIB))
rss_kib() { awk '$1 == "VmRSS:" { print $2 }' "/proc/$DAEMON_PID/status"; }
# part TOKEN OFFSET TOTAL FILE NAME: one part (the 8 MiB of FILE from OFFSET) of the blob NAME.
part() {
	dd if="$4" bs=$PART skip=$(($2 / PART)) count=1 iflag=fullblock 2>/dev/null |
		api PUT "/v1/blobs/$5?upload=$1&offset=$2&total=$3" --data-binary @-
}
received() { jq -r .received "$T/body"; }
tok() { od -An -N16 -tx1 /dev/urandom | tr -d ' \n'; }

head -c $((20 * MIB)) /dev/urandom > "$T/big"
BIG=$(sha256_of "$T/big")
before=$(store_snapshot)

# --- one body is at most 8 MiB, from a writer too ---
code=$(api PUT "/v1/blobs/$BIG" --data-binary @"$T/big" -H 'Expect: 100-continue')
check "a 20 MiB blob in one body from a writer: 413, refused from its header ($code)" test "$code" = 413
head -c $((10 * MIB)) "$T/big" > "$T/ten"
code=$(api PUT "/v1/blobs/$(sha256_of "$T/ten")" --data-binary @"$T/ten")
check "a 10 MiB one (under a JSON body's 16 MiB): 413, send it in parts ($code)" \
	sh -c "test $code = 413 && grep -q 'send a larger upload in parts' '$T/body'"
# Announcing 900 MiB: before uploads came in parts a writer's connection took up to the largest
# upload (4 GiB) and the daemon held what it was sent; now the header alone is refused.
rss0=$(rss_kib)
"$FLOOD" body "$SOCK" /v1/blobs/$BIG 8 943718400 67108864 < /dev/null > "$T/flood.out" 2>&1
rss1=$(rss_kib)
echo "# flood as a writer: $(head -n 1 "$T/flood.out"); RSS $rss0 -> $rss1 KiB"
check "8 connections of a writer announcing 900 MiB each: all answered 413" \
	grep -q 'answered=8/0/0' "$T/flood.out"
sent=$(sed -n 's/.*sent=\([0-9]*\).*/\1/p' "$T/flood.out")
check "... the daemon took less than 16 MiB of each body (sent $sent bytes in all)" \
	test "$sent" -lt $((8 * 16 * MIB))
check "... its RSS grew by less than 64 MiB ($rss0 -> $rss1 KiB)" test $((rss1 - rss0)) -lt 65536
check "nothing was stored" test "$(store_snapshot)" = "$before"

# --- a blob in parts ---
code=$(api_put_parts "/v1/blobs/$BIG" "$T/big")
check "the same blob in 3 parts: 201" test "$code" = 201
check "... and it is in the store, byte for byte" cmp -s "$T/big" "$STORE/cas/$(echo "$BIG" | cut -c1-2)/$BIG"
code=$(api_put_parts "/v1/blobs/$BIG" "$T/big")
check "sending it again: 200 at the first part (the daemon has it)" test "$code" = 200

# --- parts out of place ---
head -c $((20 * MIB)) /dev/urandom > "$T/other"
OTHER=$(sha256_of "$T/other")
TOTAL=$((20 * MIB))
K=$(tok)
code=$(part "$K" $PART $TOTAL "$T/other" "$OTHER")
check "a first part at offset 8 MiB: 409, received 0 ($code, $(received))" \
	sh -c "test $code = 409 && test $(received) = 0"
code=$(part "$K" 0 $TOTAL "$T/other" "$OTHER")
check "the part at 0: 202, received 8 MiB ($code, $(received))" \
	sh -c "test $code = 202 && test $(received) = $PART"
code=$(part "$K" 0 $TOTAL "$T/other" "$OTHER")
check "the part at 0 again: 409, received 8 MiB ($code)" \
	sh -c "test $code = 409 && test $(received) = $PART"
code=$(part "$K" $PART $((TOTAL + 1)) "$T/other" "$OTHER")
check "a part naming another total: 400 ($code)" test "$code" = 400
code=$(head -c 10 "$T/other" | api PUT "/v1/blobs/$OTHER?upload=$K&offset=$((TOTAL - 5))&total=$TOTAL" --data-binary @-)
check "a part running past the total: 400 ($code)" test "$code" = 400
for q in "upload=xyz&offset=0&total=5" "upload=$K&offset=0" "upload=$K&offset=5&total=5" \
	 "upload=$K&offset=0&total=5&x=1" "upload=$K&offset=00&total=5"; do
	code=$(printf 12345 | api PUT "/v1/blobs/$OTHER?$q" --data-binary @-)
	[ "$code" = 400 ] || { echo "# $q: $code"; break; }
done
check "malformed part parameters: 400 each" test "$code" = 400
code=$(part "$K" $PART $TOTAL "$T/other" "$OTHER")
code2=$(part "$K" $((2 * PART)) $TOTAL "$T/other" "$OTHER")
check "the upload goes on where it stands: 202 then 201 ($code $code2)" \
	sh -c "test $code = 202 && test $code2 = 201"
check "... and the blob is whole" cmp -s "$T/other" "$STORE/cas/$(echo "$OTHER" | cut -c1-2)/$OTHER"

# --- bytes that do not match the name ---
before=$(store_snapshot)
rejected0=$(metric blobs_rejected_total)
LIAR=$(printf 'not these bytes' | sha256sum | cut -c1-64)
head -c $((20 * MIB)) /dev/urandom > "$T/liar"
code=$(api_put_parts "/v1/blobs/$LIAR" "$T/liar")
check "a blob in parts whose bytes do not match its name: 400 at the last part ($code)" test "$code" = 400
check "... counted, and nothing of it is left in the store" \
	sh -c "test $(metric blobs_rejected_total) = $((rejected0 + 1)) && test \"\$1\" = \"\$2\"" _ \
	"$(store_snapshot)" "$before"

# --- an upload that stops (a daemon with a short idle timeout: only here, as a loaded
# machine may well pause 2 s between two parts of the other cases) ---
daemon_stop || bail "cachepotd did not stop"
daemon_start --jobs 1 --upload-idle-seconds 2 || bail "cachepotd did not restart"
K=$(tok)
code=$(part "$K" 0 $TOTAL "$T/liar" "$LIAR")
sleep 4
code2=$(part "$K" $PART $TOTAL "$T/liar" "$LIAR")
check "an upload idle past --upload-idle-seconds is dropped: 202, then 409 received 0 ($code $code2 $(received))" \
	sh -c "test $code = 202 && test $code2 = 409 && test $(received) = 0"
check "... and the daemon says so" grep -q 'dropped 1 upload idle for 2 s' "$T/daemon.log"

# --- at most 64 uploads at once (the default idle timeout, so none goes idle meanwhile) ---
daemon_stop || bail "cachepotd did not stop"
daemon_start --jobs 1 || bail "cachepotd did not restart"
n=0
while [ $n -lt 64 ]; do
	code=$(printf x | api PUT "/v1/blobs/$LIAR?upload=$(tok)&offset=0&total=2" --data-binary @-)
	[ "$code" = 202 ] || break
	n=$((n + 1))
done
code=$(printf x | api PUT "/v1/blobs/$LIAR?upload=$(tok)&offset=0&total=2" --data-binary @-)
check "64 uploads in progress (got $n), the 65th: 503 ($code)" sh -c "test $n = 64 && test $code = 503"
code=$(printf 12345 | api PUT "/v1/blobs/$(printf 12345 | sha256sum | cut -c1-64)" --data-binary @-)
check "... while a whole small blob still goes in: 201 ($code)" test "$code" = 201
daemon_stop; rc=$?
check "the daemon stops cleanly with uploads in progress (exit $rc), no sanitizer report" \
	sh -c "test $rc = 0 && ! grep -q Sanitizer '$T/daemon.log'"
