#!/bin/sh
# bench/sandbox-startup.sh [BUILDDIR] [N]: start-up cost of one empty sandbox, per backend.
#
# Runs N times, directly on the host and through sandbox_run (tests/sandbox/sandbox-run -n N,
# one process, so only the sandbox's cost is added): a static binary that returns at once, and
# the toolchain tree's `rustc -V`, with each backend present (bwrap; docker when dockerd
# answers on /var/run/docker.sock; kvm when QEMU is installed and the guest can be had:
# contrib/kvm-guest.sh into BUILDDIR/tests/sandbox/kvm-guest, on TCG when there is no
# /dev/kvm). Prints the mean per run and the ratio, and for kvm where a run's time goes (QEMU
# alone, the kernel's boot to init, init to the job, from the guest's console with
# timestamps). Needs root and a build directory (default $top_builddir, else .). Not part of
# `make check`: no timing is asserted. KVM_N overrides N for kvm (default 3: TCG is slow).
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
	runs=$n
	[ "$backend" = kvm ] && runs=$kvm_n
	t0=$(now_ns)
	"$run" -B "$backend" $kvm_opts -n "$runs" -t "$tc" -b "$tmp/empty:/empty" -- "$@" >/dev/null 2>"$tmp/err" ||
		{ cat "$tmp/err" >&2; exit 1; }
	grep -q 'exited=1 status=0' "$tmp/err" || { cat "$tmp/err" >&2; exit 1; }
	echo $(( ($(now_ns) - t0) / runs ))
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

kvm_n=${KVM_N:-3}
kvm_opts=""
guest=$build/tests/sandbox/kvm-guest
if [ ! -x /usr/bin/qemu-system-x86_64 ]; then
	echo "kvm: skipped, no /usr/bin/qemu-system-x86_64 (Debian's qemu-system-x86)"
elif ! "$src/contrib/kvm-guest.sh" "$guest" "$build/sandbox/cachepot-kvm-init" >"$tmp/guest.log" 2>&1; then
	echo "kvm: skipped, no guest: $(tail -1 "$tmp/guest.log")"
else
	backends="$backends kvm"
	kvm_opts="-K $guest"
	[ -w /dev/kvm ] || { kvm_opts="$kvm_opts -G"; echo "kvm: no /dev/kvm, QEMU's emulator (TCG)"; }
fi

# warm the page cache (and make the docker and kvm backends' toolchain images, once)
"$tc/rust/bin/rustc" -V >/dev/null
for b in $backends; do
	[ "$b" = kvm ] && opts=$kvm_opts || opts=""
	"$run" -B "$b" $opts -t "$tc" -- /rust/bin/rustc -V >/dev/null 2>&1
done

echo "sandbox start-up, mean of $n runs ($(uname -r), $(bwrap --version))"
for b in $backends; do
	report "$b empty" "$(direct "$tmp/empty")" "$(sandboxed "$b" /empty)"
	report "$b rustc -V" "$(direct "$tc/rust/bin/rustc" -V)" "$(sandboxed "$b" /rust/bin/rustc -V)"
done

# kvm: where one run's time goes. QEMU alone (to its exit, no kernel: -kernel of a file that
# is not one fails at once after QEMU's own set-up), then one run with the guest's console
# timestamped (printk time: the kernel's own clock from its start).
case " $backends " in *" kvm "*)
	accel=kvm
	[ -w /dev/kvm ] || accel=tcg
	t0=$(now_ns)
	/usr/bin/qemu-system-x86_64 -M microvm -accel $accel -nodefaults -no-user-config -nographic \
		-S -qmp stdio </dev/null >/dev/null 2>&1 <<'QMP' || true
{ "execute": "qmp_capabilities" }
{ "execute": "quit" }
QMP
	qemu_ms=$(( ($(now_ns) - t0) / 1000000 ))
	t0=$(now_ns)
	image=$(ls "$guest"/toolchain-*.ext4 | head -1)
	echo '' | tr -d '\n' >"$tmp/job.tar" # an empty job: the guest init reports and powers off
	truncate -s 1M "$tmp/job.tar"
	truncate -s 16M "$tmp/result.img"
	timeout 300 /usr/bin/qemu-system-x86_64 -M microvm -accel $accel -cpu max -smp 1 -m 512M \
		-nodefaults -no-user-config -nographic -no-reboot -nic none -serial stdio \
		-kernel "$guest/vmlinuz" -initrd "$guest/initramfs.cpio" \
		-append "console=ttyS0 panic=-1 rdinit=/init tsc_early_khz=2000000 tsc=reliable lpj=4000000" \
		-drive id=tc,file="$image",format=raw,if=none,readonly=on -device virtio-blk-device,drive=tc \
		-drive id=job,file="$tmp/job.tar",format=raw,if=none,readonly=on -device virtio-blk-device,drive=job \
		-drive id=result,file="$tmp/result.img",format=raw,if=none -device virtio-blk-device,drive=result \
		>"$tmp/console" 2>&1 || true
	boot_ms=$(( ($(now_ns) - t0) / 1000000 ))
	init_s=$(sed -n 's/^\[ *\([0-9.]*\)\] Run \/init as init process.*/\1/p' "$tmp/console" | head -1)
	off_s=$(sed -n 's/^\[ *\([0-9.]*\)\] reboot: Power down.*/\1/p' "$tmp/console" | head -1)
	echo "kvm ($accel) one machine: QEMU start and quit ${qemu_ms} ms; boot of an empty job to power-off ${boot_ms} ms wall:"
	echo "    kernel start to /init ${init_s:-?} s, /init to power-off (modules, devices, the result) $(awk -v a="${init_s:-0}" -v b="${off_s:-0}" 'BEGIN { printf "%.2f", b - a }') s (guest clock)"
	ls -l "$guest"/toolchain-*.ext4 "$guest/initramfs.cpio" | awk '{ printf "    %s %d MB\n", $NF, $5 / 1e6 }'
	;;
esac
