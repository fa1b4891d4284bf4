#!/bin/sh
# The watchdog of every shell test (Makefile.am runs each tests/**/*.sh through it): run the
# test, and when it is still running after CACHEPOT_TEST_TIMEOUT seconds (default 1200: twice
# the slowest test under sanitizers on a loaded 2-core machine), end it and report the test as
# failed with a line that says so. A test's own shorter watchdog, where it has one, stays.
#
# How it ends one: timeout(1) runs the test in a process group of its own and sends SIGTERM to
# that group, so the test's traps unmount and clean up, and its daemons and helpers get the
# signal too; whatever is still there 30 s later gets SIGKILL. The report is a TAP "Bail out!"
# line, which automake's tap-driver counts as an ERROR whatever the test printed before.
#
#   tests/watchdog.sh TEST [ARGS...]      (also by hand: CACHEPOT_TEST_TIMEOUT=5 sh tests/watchdog.sh x.sh)
limit=${CACHEPOT_TEST_TIMEOUT:-1200}
case $limit in
'' | *[!0-9]*) echo "Bail out! watchdog: CACHEPOT_TEST_TIMEOUT='$limit' is not a number of seconds"; exit 99 ;;
esac
[ $# -ge 1 ] || { echo "Bail out! watchdog: no test named"; exit 99; }

start=$(date +%s)
timeout --kill-after=30 "$limit" "$@"
rc=$?
elapsed=$(( $(date +%s) - start ))
# 124: the limit passed and the test ended on SIGTERM; 137 (SIGKILL) past the limit: it did not.
if [ $rc = 124 ] || { [ $rc = 137 ] && [ $elapsed -ge "$limit" ]; }; then
	echo "Bail out! watchdog: $1 still running after ${limit} s (CACHEPOT_TEST_TIMEOUT), killed"
	echo "watchdog: $1 still running after ${limit} s (CACHEPOT_TEST_TIMEOUT), killed" >&2
	exit 124
fi
exit $rc
