/* The sandbox's seccomp filter; see seccomp.h. */
#include "config.h"

#include <errno.h>
#include <sched.h>
#include <seccomp.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "sandbox/seccomp.h"

/* Denied with EPERM. Names libseccomp does not know on this architecture are skipped. */
static const char *const denied_syscalls[] = {
	"ptrace", "process_vm_readv", "process_vm_writev", "pidfd_getfd", "process_madvise",
	"kcmp",
	"mount", "umount", "umount2", "pivot_root", "chroot", "move_mount", "open_tree",
	"fsopen", "fsmount", "fsconfig", "fspick", "mount_setattr",
	"bpf", "perf_event_open",
	"keyctl", "add_key", "request_key",
	"userfaultfd",
	"kexec_load", "kexec_file_load",
	"init_module", "finit_module", "delete_module",
	"unshare", "setns",
	"open_by_handle_at", "name_to_handle_at",
	"io_uring_setup", "io_uring_enter", "io_uring_register",
	"acct", "swapon", "swapoff", "reboot", "syslog", "quotactl", "quotactl_fd",
	"settimeofday", "clock_settime", "clock_adjtime", "adjtimex",
	"iopl", "ioperm", "lookup_dcookie", "nfsservctl", "vhangup",
	"fanotify_init",
};

/* clone flags that create a namespace: any of them in clone's first argument is denied. */
static const unsigned long clone_namespace_flags[] = {
	CLONE_NEWUSER, CLONE_NEWNS, CLONE_NEWPID, CLONE_NEWNET, CLONE_NEWIPC, CLONE_NEWUTS,
	CLONE_NEWCGROUP,
};

/* personality's query form: the argument that changes nothing and returns the current one. */
#define PERSONALITY_QUERY 0xffffffffu

int sandbox_seccomp_memfd(void)
{
	scmp_filter_ctx ctx;
	int fd = -1, rc;
	size_t i;

	ctx = seccomp_init(SCMP_ACT_ALLOW);
	if (!ctx)
		return -ENOMEM;
	rc = seccomp_attr_set(ctx, SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_KILL_PROCESS);
	if (rc < 0)
		goto out;
	for (i = 0; i < sizeof(denied_syscalls) / sizeof(denied_syscalls[0]); i++) {
		int nr = seccomp_syscall_resolve_name(denied_syscalls[i]);
		if (nr == __NR_SCMP_ERROR)
			continue;
		rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), nr, 0);
		if (rc < 0)
			goto out;
	}
	rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(clone3), 0);
	if (rc < 0)
		goto out;
	for (i = 0; i < sizeof(clone_namespace_flags) / sizeof(clone_namespace_flags[0]); i++) {
		unsigned long f = clone_namespace_flags[i];
		rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(clone), 1,
				      SCMP_A0(SCMP_CMP_MASKED_EQ, f, f));
		if (rc < 0)
			goto out;
	}
	/* Sockets of any family but AF_UNIX: a compile opens none (strace of rustc compiling
	 * cfg-if and building a proc-macro shows no socket call), the network namespace has
	 * only a loopback of its own, and AF_NETLINK, AF_VSOCK, AF_PACKET, AF_ALG... are kernel surface and
	 * ways out (AF_VSOCK reaches the hypervisor). EAFNOSUPPORT, as on a kernel built
	 * without the family, so that a library probing for IPv6 or netlink (glibc's
	 * getaddrinfo with AI_ADDRCONFIG) takes its fallback. The argument is compared as
	 * 64 bits: a family with high bits set is refused too. */
	rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EAFNOSUPPORT), SCMP_SYS(socket), 1,
			      SCMP_A0(SCMP_CMP_NE, AF_UNIX));
	if (rc < 0)
		goto out;
	rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EAFNOSUPPORT), SCMP_SYS(socketpair), 1,
			      SCMP_A0(SCMP_CMP_NE, AF_UNIX));
	if (rc < 0)
		goto out;
	/* personality can turn off ASLR (ADDR_NO_RANDOMIZE) or make every mapping executable
	 * (READ_IMPLIES_EXEC) for what the job execs next; only the query is left (the same
	 * strace shows no personality call at all). */
	rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(personality), 1,
			      SCMP_A0(SCMP_CMP_NE, PERSONALITY_QUERY));
	if (rc < 0)
		goto out;
	fd = memfd_create("cachepot-seccomp", MFD_CLOEXEC);
	if (fd < 0) {
		rc = -errno;
		goto out;
	}
	rc = seccomp_export_bpf(ctx, fd);
	if (rc < 0)
		goto out;
	if (lseek(fd, 0, SEEK_SET) < 0) {
		rc = -errno;
		goto out;
	}
	rc = fd;
	fd = -1;
out:
	if (fd >= 0)
		close(fd);
	seccomp_release(ctx);
	return rc;
}
