# sandbox/: run one untrusted compile with nothing of the host to reach (see sandbox/sandbox.h).
libcachepot_a_SOURCES += sandbox/sandbox.c sandbox/sandbox.h sandbox/seccomp.c sandbox/seccomp.h \
	sandbox/cgroup.c sandbox/cgroup.h sandbox/docker.c sandbox/docker.h sandbox/internal.h \
	sandbox/kvm.c sandbox/kvm.h

# The kvm backend's guest init (sandbox/kvm-init.c): static, for the guest's initramfs; no
# sanitizers (it runs as pid 1 of a machine with nothing else), libarchive's tar code alone
# (--gc-sections drops the formats and filters it does not call).
pkglibexec_PROGRAMS += sandbox/cachepot-kvm-init
sandbox_cachepot_kvm_init_SOURCES = sandbox/kvm-init.c
sandbox_cachepot_kvm_init_CFLAGS = $(WARN_CFLAGS) -O2 -ffunction-sections -fdata-sections
sandbox_cachepot_kvm_init_LDFLAGS = -static -Wl,--gc-sections
sandbox_cachepot_kvm_init_LDADD = -larchive
EXTRA_DIST += contrib/kvm-guest.sh
EXTRA_DIST += tests/sandbox/make-toolchain.sh

# Real bwrap, real rustc, as root: the sandbox's run, reproducibility and escape catalogue.
check_PROGRAMS += tests/sandbox/test_sandbox
TESTS += tests/sandbox/test_sandbox
tests_sandbox_test_sandbox_SOURCES = tests/sandbox/test_sandbox.c
tests_sandbox_test_sandbox_CFLAGS = $(TEST_CFLAGS)
tests_sandbox_test_sandbox_LDADD = $(TEST_LDADD)
EXTRA_DIST += tests/sandbox/escape.rs

# sandbox-run: one command through sandbox_run (shell tests, bench/sandbox-startup.sh, by hand).
check_PROGRAMS += tests/sandbox/sandbox-run
tests_sandbox_sandbox_run_SOURCES = tests/sandbox/sandbox-run.c
tests_sandbox_sandbox_run_LDADD = libcachepot.a $(DEP_LIBS)
EXTRA_DIST += bench/sandbox-startup.sh
TESTS += tests/sandbox/toolchain.sh
EXTRA_DIST += tests/sandbox/toolchain.sh
TESTS += tests/sandbox/docker.sh
EXTRA_DIST += tests/sandbox/docker.sh
TESTS += tests/sandbox/kvm.sh
EXTRA_DIST += tests/sandbox/kvm.sh
# The daemon through the kvm backend: same key, same bytes as bwrap (tests/daemon/lib.sh).
TESTS += tests/sandbox/kvm-daemon.sh
EXTRA_DIST += tests/sandbox/kvm-daemon.sh
# The daemon through each backend: same keys, same bytes (tests/daemon/lib.sh).
TESTS += tests/daemon/sandbox-backends.sh
EXTRA_DIST += tests/daemon/sandbox-backends.sh
