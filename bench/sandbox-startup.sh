#!/bin/sh
# bench/sandbox-startup.sh [BUILDDIR] [N]: start-up cost of one empty sandbox.
#
# Runs N times, directly on the host and through sandbox_run (tests/sandbox/sandbox-run -n N,
# one process, so only the sandbox's cost is added): a static binary that returns at once, and
# the toolchain tree's `rustc -V`. Prints the mean per run and the ratio. Needs root and a
# build directory (default $top_builddir, else .). Not part of `make check`: no timing is asserted.
set -eu
build=${1:-${top_builddir:-.}}
n=${2:-20}
src=$(cd "$(dirname "$0")/.." && pwd)

make -s -C "$build" tests/sandbox/sandbox-run >/dev/null
tc=$build/tests/sandbox/toolchain
"$src/tests/sandbox/make-toolchain.sh" "$tc" >/dev/null
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT INT TERM
chmod 0755 "$tmp"
printf 'int main(void) { return 0; }\n' >"$tmp/empty.c"
gcc -static -O2 -o "$tmp/empty" "$tmp/empty.c"
run=$build/tests/sandbox/sandbox-run

now_ns() { date +%s%N; }
direct() { # N runs of "$@"
	i=0
	t0=$(now_ns)
	while [ $i -lt "$n" ]; do "$@" >/dev/null; i=$((i + 1)); done
	echo $(( ($(now_ns) - t0) / n ))
}
sandboxed() { # N runs of "$@" in fresh sandboxes, in one sandbox-run process
	t0=$(now_ns)
	"$run" -n "$n" -t "$tc" -b "$tmp/empty:/empty" -- "$@" >/dev/null 2>"$tmp/err" ||
		{ cat "$tmp/err" >&2; exit 1; }
	grep -q 'exited=1 status=0' "$tmp/err" || { cat "$tmp/err" >&2; exit 1; }
	echo $(( ($(now_ns) - t0) / n ))
}
report() { # NAME DIRECT_NS SANDBOX_NS
	awk -v name="$1" -v d="$2" -v s="$3" 'BEGIN {
		printf "%-14s direct %8.2f ms   sandbox %8.2f ms   added %8.2f ms   ratio %6.1fx\n",
		       name, d / 1e6, s / 1e6, (s - d) / 1e6, s / d }'
}

# warm the page cache
"$tc/rust/bin/rustc" -V >/dev/null
"$run" -t "$tc" -- /rust/bin/rustc -V >/dev/null 2>&1

echo "sandbox start-up, mean of $n runs ($(uname -r), $(bwrap --version))"
report "static empty" "$(direct "$tmp/empty")" "$(sandboxed /empty)"
report "rustc -V" "$(direct "$tc/rust/bin/rustc" -V)" "$(sandboxed /rust/bin/rustc -V)"
