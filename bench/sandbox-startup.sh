#!/bin/sh
# bench/sandbox-startup.sh [BUILDDIR] [N]: start-up cost of one empty sandbox, per backend.
#
# Runs N times, directly on the host and through sandbox_run (tests/sandbox/sandbox-run -n N,
# one process, so only the sandbox's cost is added): a static binary that returns at once, and
# the toolchain tree's `rustc -V`, with each backend present (bwrap; docker when dockerd
# answers on /var/run/docker.sock). Prints the mean per run and the ratio. Needs root and a
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
sandboxed() { # BACKEND, then N runs of "$@" in fresh sandboxes, in one sandbox-run process
	backend=$1
	shift
	t0=$(now_ns)
	"$run" -B "$backend" -n "$n" -t "$tc" -b "$tmp/empty:/empty" -- "$@" >/dev/null 2>"$tmp/err" ||
		{ cat "$tmp/err" >&2; exit 1; }
	grep -q 'exited=1 status=0' "$tmp/err" || { cat "$tmp/err" >&2; exit 1; }
	echo $(( ($(now_ns) - t0) / n ))
}
report() { # NAME DIRECT_NS SANDBOX_NS
	awk -v name="$1" -v d="$2" -v s="$3" 'BEGIN {
		printf "%-17s direct %8.2f ms   sandbox %8.2f ms   added %8.2f ms   ratio %6.1fx\n",
		       name, d / 1e6, s / 1e6, (s - d) / 1e6, s / d }'
}

backends=bwrap
if curl -s --max-time 5 --unix-socket /var/run/docker.sock http://docker/_ping 2>/dev/null |
	grep -q OK; then
	backends="bwrap docker"
else
	echo "docker: skipped, dockerd does not answer on /var/run/docker.sock"
fi

# warm the page cache (and make the docker backend's toolchain image, once)
"$tc/rust/bin/rustc" -V >/dev/null
for b in $backends; do
	"$run" -B "$b" -t "$tc" -- /rust/bin/rustc -V >/dev/null 2>&1
done

echo "sandbox start-up, mean of $n runs ($(uname -r), $(bwrap --version))"
for b in $backends; do
	report "$b empty" "$(direct "$tmp/empty")" "$(sandboxed "$b" /empty)"
	report "$b rustc -V" "$(direct "$tc/rust/bin/rustc" -V)" "$(sandboxed "$b" /rust/bin/rustc -V)"
done
