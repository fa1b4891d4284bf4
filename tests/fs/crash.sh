#!/bin/sh
# Crash safety of publishing: a writer publishing random keys in a loop is SIGKILLed at random
# points (during store start-up, blob writes, renames, the index write) at least 200 times.
# Afterwards fsck is clean and every key the index shows is complete (signature verifies, every
# named blob present with the right bytes), and the next writer sweeps the temp files.
. "$top_srcdir/tests/tap.sh"

[ "$(id -u)" = 0 ] || skip_all "needs root"

tool="$top_builddir/tests/fs/store-tool"
work=$(mktemp -d /tmp/cachepot-crash-test.XXXXXX) || bail "mktemp"
store="$work/store"
cleanup() {
	kill -9 "$watchdog" 2>/dev/null
	rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP

# CACHEPOT_CRASH_KILLS=1000 for a long run by hand; the time allowed grows with it (a kill
# cycle takes up to 60 ms plus a store open, longer on a loaded machine).
kills=${CACHEPOT_CRASH_KILLS:-210}
loop_limit=$(( kills < 120 ? 120 : kills ))
( sleep $((loop_limit + 30)); kill -TERM $$ ) </dev/null >/dev/null 2>&1 &
watchdog=$!
tap_plan 6

# Each publisher is forked, lets its store open (one in eight is killed during start-up), then
# is killed 0..60 ms later: mid-blob, mid-fsync, mid-rename or mid-index-write.
loop_out=$(timeout "$loop_limit" "$tool" crash-loop "$store" "$kills" 60 2>"$work/loop.log")
loop_rc=$?
echo "# $loop_out"
killed=$(echo "$loop_out" | sed -n 's/^kills=\([0-9]*\) .*/\1/p')
check "at least $(( kills * 95 / 100 )) running publishers killed with SIGKILL (of $kills)" \
	test "${killed:-0}" -ge $(( kills * 95 / 100 )) -a "$loop_rc" = 0
leftover=$(ls -A "$store/tmp" | wc -l)
echo "# temp files of killed writers left in tmp/: $leftover"

keys=$(timeout 60 "$tool" check "$store" 2>"$work/check.err")
check_rc=$?
sed 's/^/# /' "$work/check.err"
echo "# keys in the index after the crashes: $keys"
check "every key the index shows is complete" test "$check_rc" = 0
check "keys were published between the kills" test "${keys:-0}" -gt 20
timeout 60 "$tool" fsck "$store" 2>"$work/fsck.err"
fsck_rc=$?
sed 's/^/# /' "$work/fsck.err"
check "fsck is clean after the crashes" test "$fsck_rc" = 0
check "no writer failed other than by SIGKILL" sh -c "! grep -q . '$work/loop.log'"
echo probe > "$work/probe"
timeout 30 "$tool" put "$store" "$work/probe" >/dev/null
check "the next writer sweeps tmp/" test -z "$(ls -A "$store/tmp")"
