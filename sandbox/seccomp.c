/* The sandbox's seccomp filter; see seccomp.h. */
#include "config.h"

#include <errno.h>
#include <sched.h>
#include <seccomp.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <jansson.h>

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

/* One docker profile rule: NAMES get ERRNO, when ARG0 (if non-NULL) matches. */
static int profile_add(json_t *syscalls, json_t *names, int err, json_t *arg0)
{
	json_t *rule = json_pack("{s:o, s:s, s:i}", "names", names, "action", "SCMP_ACT_ERRNO",
				 "errnoRet", err);

	if (!rule) {
		json_decref(arg0);
		return -ENOMEM;
	}
	if (arg0 && json_object_set_new(rule, "args", json_pack("[o]", arg0)) < 0) {
		json_decref(rule);
		return -ENOMEM;
	}
	return json_array_append_new(syscalls, rule) < 0 ? -ENOMEM : 0;
}

static json_t *profile_arg0(const char *op, unsigned long value, unsigned long value_two)
{
	return json_pack("{s:i, s:I, s:I, s:s}", "index", 0, "value", (json_int_t)value,
			 "valueTwo", (json_int_t)value_two, "op", op);
}

char *sandbox_seccomp_docker_profile(void)
{
	json_t *profile, *syscalls = json_array(), *denied = json_array();
	char *text = NULL;
	size_t i;
	int rc = 0;

	profile = json_pack("{s:s, s:[s], s:o}", "defaultAction", "SCMP_ACT_ALLOW", "architectures",
			    "SCMP_ARCH_X86_64", "syscalls", syscalls);
	if (!profile || !denied)
		goto out;
	/* runc skips names its libseccomp does not know, as sandbox_seccomp_memfd does */
	for (i = 0; i < sizeof(denied_syscalls) / sizeof(denied_syscalls[0]); i++)
		if (json_array_append_new(denied, json_string(denied_syscalls[i])) < 0)
			goto out;
	rc = profile_add(syscalls, denied, EPERM, NULL);
	denied = NULL;
	if (rc == 0)
		rc = profile_add(syscalls, json_pack("[s]", "clone3"), ENOSYS, NULL);
	for (i = 0; rc == 0 && i < sizeof(clone_namespace_flags) / sizeof(clone_namespace_flags[0]);
	     i++)
		rc = profile_add(syscalls, json_pack("[s]", "clone"), EPERM,
				 profile_arg0("SCMP_CMP_MASKED_EQ", clone_namespace_flags[i],
					      clone_namespace_flags[i]));
	if (rc == 0)
		rc = profile_add(syscalls, json_pack("[s, s]", "socket", "socketpair"), EAFNOSUPPORT,
				 profile_arg0("SCMP_CMP_NE", AF_UNIX, 0));
	if (rc == 0)
		rc = profile_add(syscalls, json_pack("[s]", "personality"), EPERM,
				 profile_arg0("SCMP_CMP_NE", PERSONALITY_QUERY, 0));
	if (rc == 0)
		text = json_dumps(profile, JSON_COMPACT);
out:
	json_decref(denied);
	json_decref(profile);
	return text;
}
