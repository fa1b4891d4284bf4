# TAP helpers for the shell integration tests (sourced). Each test script prints a plan,
# then one "ok"/"not ok" line per check, as automake's tap-driver.sh expects.
tap_n=0
tap_failed=0
tap_plan() { echo "1..$1"; }
ok() { tap_n=$((tap_n + 1)); echo "ok $tap_n - $*"; }
not_ok() { tap_n=$((tap_n + 1)); tap_failed=$((tap_failed + 1)); echo "not ok $tap_n - $*"; }
# check DESCRIPTION COMMAND...: ok when COMMAND succeeds.
check() { d=$1; shift; if "$@"; then ok "$d"; else not_ok "$d"; fi; }
skip_all() { echo "1..0 # SKIP $*"; exit 0; }
bail() { echo "Bail out! $*"; exit 1; }
# Where the real rustc lives (rustup proxies resolve through the sysroot).
find_rustc() {
	PATH="/root/.cargo/bin:$PATH"; export PATH
	sysroot=$(rustc --print sysroot 2>/dev/null) || return 1
	echo "$sysroot/bin/rustc"
}
