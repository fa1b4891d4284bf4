#!/bin/sh
# Crash safety of publishing and of garbage collection: a writer publishing random keys in a
# loop is SIGKILLed at random points (during store start-up, blob writes, renames, the index
# write) at least 200 times. Afterwards fsck is clean and every key the index shows is complete
# (signature verifies, every named blob present with the right bytes), and the next writer
# sweeps the temp files. Then the same on a second store with writers that also collect it to
# 1 MB after every 3 keys (kills mid-walk, mid-eviction batch, between a batch and its unlinks):
# every key whole, fsck clean, and a collection a day later removes what the killed ones left
# in cas/ without a record, after which the files in cas/ are exactly the recorded ones.
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
# cycle takes up to 60 ms plus a store open, well under a second on a quiet machine; the limit
# allows 4 s a kill, a watchdog for a hung loop, not a speed bound: 1 s a kill was exceeded
# under ASan at load 11).
kills=${CACHEPOT_CRASH_KILLS:-210}
gc_kills=${CACHEPOT_CRASH_GC_KILLS:-150}
loop_limit=$(( kills * 4 < 300 ? 300 : kills * 4 ))
gc_limit=$(( gc_kills * 4 < 300 ? 300 : gc_kills * 4 ))
( sleep $((loop_limit + gc_limit + 60)); kill -TERM $$ ) </dev/null >/dev/null 2>&1 &
watchdog=$!
tap_plan 11

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

# Publishing and collecting, killed.
gstore="$work/gc-store"
loop_out=$(timeout "$gc_limit" "$tool" crash-loop "$gstore" "$gc_kills" 80 1000000 2>"$work/gc-loop.log")
loop_rc=$?
echo "# with collections: $loop_out"
killed=$(echo "$loop_out" | sed -n 's/^kills=\([0-9]*\) .*/\1/p')
check "at least $(( gc_kills * 95 / 100 )) publishing and collecting writers killed (of $gc_kills), none failed otherwise" \
	eval 'test "${killed:-0}" -ge $(( gc_kills * 95 / 100 )) -a "$loop_rc" = 0 && ! grep -q . "$work/gc-loop.log"'
keys=$(timeout 60 "$tool" check "$gstore" 2>"$work/gc-check.err")
check_rc=$?
sed 's/^/# /' "$work/gc-check.err"
check "every key the index shows is complete after killed collections ($keys keys)" test "$check_rc" = 0
timeout 60 "$tool" fsck "$gstore" 2>"$work/gc-fsck.err"
fsck_rc=$?
sed 's/^/# /' "$work/gc-fsck.err"
check "fsck is clean after killed collections" test "$fsck_rc" = 0
sweep=$(timeout 60 "$tool" gc "$gstore" 100000000000 200000 2>&1)
echo "# a collection two days later: $sweep"
after=$(timeout 60 "$tool" gc "$gstore" 100000000000 200000 2>&1)
recorded=$(echo "$after" | sed -n 's/.*size_before=\([0-9]*\) .*/\1/p')
timeout 60 "$tool" fsck "$gstore" 2>"$work/gc-fsck2.err"
fsck_rc=$?
on_disk=$(sed -n 's/.* blobs (\([0-9]*\) bytes).*/\1/p' "$work/gc-fsck2.err")
check "the files the killed ones left without a record are removed (${on_disk:-?} bytes in cas/, ${recorded:-?} recorded)" \
	eval 'test "$fsck_rc" = 0 -a -n "$recorded" -a "$on_disk" = "$recorded" && echo "$after" | grep -q "strays=0"'
check "every key is still complete after the sweep" eval 'timeout 60 "$tool" check "$gstore" > /dev/null'
