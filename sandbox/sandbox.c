/* The sandbox interface and its bubblewrap backend; see sandbox.h.
 *
 * One run:
 *   1. the parent (any daemon thread) prepares everything that allocates: bwrap's argv, the
 *      seccomp BPF in a memfd, the run's cgroups, pipes for stdout/stderr, the output tmpfs
 *      mounted on output_host_dir;
 *   2. fork; the child does only async-signal-safe work: enters the cgroups, moves its fds to
 *      the numbers bwrap's command line names and closes every other one, sets rlimits, drops
 *      to the run's own uid and gid (below), resets signals, asks for SIGKILL when the calling
 *      thread dies, and execs bwrap with the job's environment (so even the sandbox's pid 1, bwrap, carries
 *      nothing of the daemon's environment). The child's fds are
 *        0 /dev/null, 1 the stdout pipe, 2 the stderr pipe,
 *        3 (CHILD_FD_SECCOMP) the seccomp memfd, 4 (CHILD_FD_EXEC_ERR) the exec-error pipe,
 *          the only one left close-on-exec,
 *        5 (CHILD_FD_FIRST_BIND) and up: O_PATH fds of TREE/rust (not for a tree without
 *          one), TREE/usr, the input dir (if
 *          any), each extra bind, the output dir (if any), in that order;
 *      everything above the last is closed;
 *   3. the parent polls the pipes and a pidfd of bwrap until both pipes are closed and bwrap
 *      is reaped, or the wall-clock deadline passes; then every process left in the run's
 *      cgroup is killed and the cgroups removed.
 *
 * Why the whole tree dies: bwrap's pid 1 in the new pid namespace runs with
 * --die-with-parent (PDEATHSIG), so killing our child, bwrap, kills the namespace's init and
 * with it every process of the namespace; the cgroup sweep then catches anything the kernel
 * had not reaped yet, and is the only mechanism if bwrap were ever run without a pid namespace.
 *
 * The run's uid. Every run has a host uid (and gid, the same number) of its own, leased from
 * SANDBOX_UID_FIRST + 1.. for as long as the result holds it: an abstract AF_UNIX socket named
 * "cachepot-sandbox-uid-<uid>" is bound for the lease, so two runs (of any process in this
 * network namespace) never hold the same uid at once, and the kernel ends a lease when its
 * holder dies, crash included. No state of ours, no file. A uid of its own means: no process
 * outside the run has its uid (the output tmpfs is 0700 and owned by it, so no other uid can
 * open it, not even uid 65534, which every "nobody" service on the host shares), and
 * RLIMIT_NPROC, which the kernel counts per uid, counts this run's processes alone.
 *
 * The mount point of output_dest must exist in the read-only input tree (bwrap cannot mkdir
 * in a read-only bind): when it is missing, sandbox_run creates it (empty, 0755) on the host.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <inttypes.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <stddef.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/clock.h"
#include "base/path.h"
#include "base/roots.h"
#include "sandbox/cgroup.h"
#include "sandbox/internal.h"
#include "sandbox/sandbox.h"
#include "sandbox/seccomp.h"

#define MAX_ARGV 4096       /* job argv + env entries accepted */
#define READ_CHUNK 65536
#define KILL_GRACE_MS 2000  /* after the kill, how long we still wait for pipes to close */
#define RUN_CGROUP_PREFIX "cachepot-sandbox-"   /* then <pid>-<tid>-<start us>: see run_prepare */

#define MAX_BINDS 64

/* Fixed fd numbers in the child (bwrap's command line names them): 0-2 stdio, then the
 * seccomp program, the exec-error pipe (close-on-exec: it reports failures before bwrap runs),
 * then O_PATH fds of the trees bwrap binds, in the order build_bwrap_argv uses them. */
#define CHILD_FD_SECCOMP 3
#define CHILD_FD_EXEC_ERR 4
#define CHILD_FD_FIRST_BIND 5
#define MAX_CHILD_FDS (CHILD_FD_FIRST_BIND + 4 + MAX_BINDS)

/* bwrap and the job run as the run's leased uid (above): not root even for the kernel's checks
 * outside the sandbox's user namespace, so that /proc/sys, root-owned files of the bound trees
 * and every other DAC check treat the job as an unprivileged stranger. The trees are passed
 * as fds opened by root, but bwrap 0.8 turns each back into a path (realpath) and binds that,
 * as this uid: hence SANDBOX_TREES_GID (sandbox.h), the one supplementary group it keeps. */

/* With a cgroup, RLIMIT_NPROC is this far above pids.max: the cgroup, which reports the hit
 * (pids_exceeded), is what a run meets first; the rlimit is the backstop. Without one, the
 * rlimit is max_processes exactly. */
#define NPROC_ABOVE_PIDS_MAX 16

void sandbox_limits_default(struct sandbox_limits *limits)
{
	limits->timeout_ms = 10 * 60 * 1000;
	limits->cpu_seconds = 10 * 60;
	limits->memory_bytes = 4ull << 30;
	limits->max_processes = 256;
	limits->max_open_files = 1024;
	limits->output_bytes = 1ull << 30;
	limits->tmp_bytes = 256ull << 20;
	limits->shm_bytes = 16ull << 20;
	limits->capture_bytes = 16u << 20;
}

void sandbox_fill_limits(const struct sandbox_limits *in, struct sandbox_limits *out)
{
	struct sandbox_limits d;

	sandbox_limits_default(&d);
	out->timeout_ms = in->timeout_ms ? in->timeout_ms : d.timeout_ms;
	out->cpu_seconds = in->cpu_seconds ? in->cpu_seconds : d.cpu_seconds;
	out->memory_bytes = in->memory_bytes ? in->memory_bytes : d.memory_bytes;
	out->max_processes = in->max_processes ? in->max_processes : d.max_processes;
	out->max_open_files = in->max_open_files ? in->max_open_files : d.max_open_files;
	out->output_bytes = in->output_bytes ? in->output_bytes : d.output_bytes;
	out->tmp_bytes = in->tmp_bytes ? in->tmp_bytes : d.tmp_bytes;
	out->shm_bytes = in->shm_bytes ? in->shm_bytes : d.shm_bytes;
	out->capture_bytes = in->capture_bytes ? in->capture_bytes : d.capture_bytes;
}

static int id_in_range(unsigned id)
{
	return id >= SANDBOX_UID_FIRST && id - SANDBOX_UID_FIRST < SANDBOX_UID_COUNT;
}

int sandbox_ids_check(char *msg, size_t msglen)
{
	struct passwd *pw;
	struct group *gr;
	int rc = 0;

	setpwent();
	while (rc == 0 && (pw = getpwent()))
		if (id_in_range(pw->pw_uid) || id_in_range(pw->pw_gid)) {
			snprintf(msg, msglen, "user %s (uid %u, gid %u) is in the sandbox's ids %u..%u",
				 pw->pw_name, (unsigned)pw->pw_uid, (unsigned)pw->pw_gid,
				 SANDBOX_UID_FIRST, SANDBOX_UID_FIRST + SANDBOX_UID_COUNT - 1);
			rc = -EEXIST;
		}
	endpwent();
	setgrent();
	while (rc == 0 && (gr = getgrent()))
		if (id_in_range(gr->gr_gid)) {
			snprintf(msg, msglen, "group %s (gid %u) is in the sandbox's ids %u..%u",
				 gr->gr_name, (unsigned)gr->gr_gid, SANDBOX_UID_FIRST,
				 SANDBOX_UID_FIRST + SANDBOX_UID_COUNT - 1);
			rc = -EEXIST;
		}
	endgrent();
	return rc;
}

void sandbox_hold_free(struct sandbox_hold *hold)
{
	if (!hold)
		return;
	if (hold->output_fd >= 0)
		close(hold->output_fd);
	if (hold->uid_lease >= 0)
		close(hold->uid_lease);
	free(hold);
}

void sandbox_result_release(struct sandbox_result *result)
{
	free(result->out);
	free(result->err);
	sandbox_hold_free(result->hold);
	memset(result, 0, sizeof(*result));
}

int sandbox_result_output_fd(const struct sandbox_result *result)
{
	int fd;

	if (!result->hold || result->hold->output_fd < 0)
		return -ENOENT;
	fd = fcntl(result->hold->output_fd, F_DUPFD_CLOEXEC, 3);
	return fd < 0 ? -errno : fd;
}

/* Lease a uid of SANDBOX_UID_FIRST + 1.. (see the top of this file), trying from SEED on. Returns
 * the socket that holds the lease (close it to end the lease) with *UID set, or -errno
 * (-EAGAIN: every uid of the range is leased). */
int sandbox_uid_lease(uint64_t seed, unsigned *uid)
{
	int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0), rc = -EAGAIN;

	if (fd < 0)
		return -errno;
	for (unsigned i = 0; i < SANDBOX_UID_COUNT - 1; i++) {
		unsigned u = SANDBOX_UID_FIRST + 1 + (unsigned)((seed + i) % (SANDBOX_UID_COUNT - 1));
		struct sockaddr_un sa = { .sun_family = AF_UNIX };
		int n = snprintf(sa.sun_path + 1, sizeof(sa.sun_path) - 1, "cachepot-sandbox-uid-%u",
				 u);
		if (bind(fd, (struct sockaddr *)&sa,
			 (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + (size_t)n)) == 0) {
			*uid = u;
			return fd;
		}
		if (errno != EADDRINUSE) {
			rc = -errno;
			break;
		}
	}
	close(fd);
	return rc;
}

int sandbox_output_release(const char *output_host_dir)
{
	if (umount2(output_host_dir, UMOUNT_NOFOLLOW) == 0)
		return 0;
	if (errno != EBUSY)
		return -errno;
	/* Only a process of ours can hold it (the run's are all dead): detach rather than fail. */
	return umount2(output_host_dir, UMOUNT_NOFOLLOW | MNT_DETACH) == 0 ? 0 : -errno;
}

/* A growable argv of owned strings. */
struct argv_builder {
	char **v;
	size_t n, cap;
	int failed;
};

static void argv_add(struct argv_builder *a, const char *s)
{
	char *copy;

	if (a->failed)
		return;
	if (a->n + 2 > a->cap) {
		size_t cap = a->cap ? 2 * a->cap : 64;
		char **v = realloc(a->v, cap * sizeof(*v));
		if (!v) {
			a->failed = 1;
			return;
		}
		a->v = v;
		a->cap = cap;
	}
	copy = strdup(s);
	if (!copy) {
		a->failed = 1;
		return;
	}
	a->v[a->n++] = copy;
	a->v[a->n] = NULL;
}

static void argv_add_u64(struct argv_builder *a, uint64_t v)
{
	char num[32];

	snprintf(num, sizeof(num), "%" PRIu64, v);
	argv_add(a, num);
}

static void argv_release(struct argv_builder *a)
{
	size_t i;

	for (i = 0; i < a->n; i++)
		free(a->v[i]);
	free(a->v);
	memset(a, 0, sizeof(*a));
}

/* bwrap's command line for SPEC (limits already filled in). The trees are bound from fds
 * CHILD_FD_FIRST_BIND.. in this order: TREE/rust (unless toolchain_without_rust), TREE/usr,
 * input dir, binds, output dir. */
static int build_bwrap_argv(const struct sandbox_spec *spec, const struct sandbox_limits *lim,
			    struct argv_builder *a)
{
	unsigned fd = CHILD_FD_FIRST_BIND;
	size_t i;

	argv_add(a, BWRAP_PATH);
	/* user, ipc, pid, net, uts, cgroup: the net namespace has only its own loopback. */
	argv_add(a, "--unshare-all");
	argv_add(a, "--die-with-parent");
	argv_add(a, "--new-session");
	argv_add(a, "--cap-drop");
	argv_add(a, "ALL");
	argv_add(a, "--hostname");
	argv_add(a, "cachepot");
	if (!spec->toolchain_without_rust) {
		argv_add(a, "--ro-bind-fd");
		argv_add_u64(a, fd++);
		argv_add(a, ROOT_SYSROOT);
	}
	argv_add(a, "--ro-bind-fd");
	argv_add_u64(a, fd++);
	argv_add(a, "/usr");
	argv_add(a, "--symlink");
	argv_add(a, "usr/lib");
	argv_add(a, "/lib");
	argv_add(a, "--symlink");
	argv_add(a, "usr/lib64");
	argv_add(a, "/lib64");
	argv_add(a, "--proc");
	argv_add(a, "/proc");
	/* bwrap's /dev is a tmpfs of its own (null, zero, full, random, urandom, tty, pts):
	 * read-only once /dev/shm, the one place POSIX shared memory needs, has its own small
	 * tmpfs. Writing to the device nodes is not affected by the read-only mount. */
	argv_add(a, "--dev");
	argv_add(a, "/dev");
	argv_add(a, "--size");
	argv_add_u64(a, lim->shm_bytes);
	argv_add(a, "--tmpfs");
	argv_add(a, "/dev/shm");
	argv_add(a, "--remount-ro");
	argv_add(a, "/dev");
	argv_add(a, "--size");
	argv_add_u64(a, lim->tmp_bytes);
	argv_add(a, "--tmpfs");
	argv_add(a, "/tmp");
	if (spec->input_dir) {
		argv_add(a, "--ro-bind-fd");
		argv_add_u64(a, fd++);
		argv_add(a, ROOT_INPUTS);
	}
	for (i = 0; i < spec->n_binds; i++) {
		argv_add(a, "--ro-bind-fd");
		argv_add_u64(a, fd++);
		argv_add(a, spec->binds[i].dest);
	}
	if (spec->output_host_dir) {
		argv_add(a, "--bind-fd");
		argv_add_u64(a, fd++);
		argv_add(a, spec->output_dest);
	}
	/* bwrap's own root tmpfs would otherwise be writable (and unbounded). */
	argv_add(a, "--remount-ro");
	argv_add(a, "/");
	argv_add(a, "--chdir");
	argv_add(a, spec->cwd ? spec->cwd : "/");
	argv_add(a, "--seccomp");
	argv_add_u64(a, CHILD_FD_SECCOMP);
	argv_add(a, "--");
	for (i = 0; spec->argv[i]; i++) {
		if (i >= MAX_ARGV)
			return -E2BIG;
		argv_add(a, spec->argv[i]);
	}
	return a->failed ? -ENOMEM : 0;
}

/* Make sure DEST (under ROOT_INPUTS/) exists as a directory in the input tree INPUT_DIR, walking
 * with O_NOFOLLOW so a symlink in the tree cannot redirect the mkdir onto the host. */
static int ensure_mount_point(const char *input_dir, const char *dest)
{
	int rootfd, dirfd = -1, rc;

	rootfd = open(input_dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (rootfd < 0)
		return -errno;
	rc = path_walk(rootfd, dest + strlen(ROOT_INPUTS "/"), 1, &dirfd, NULL);
	if (rc == 0)
		close(dirfd);
	close(rootfd);
	return rc;
}

struct capture {
	int fd; /* read end, -1 once closed */
	char *buf;
	size_t len, cap, max;
	int truncated;
};

/* Read once from C->fd (poll said readable); keep up to C->max bytes, drop the rest. */
static int capture_read(struct capture *c, char *chunk)
{
	ssize_t n = read(c->fd, chunk, READ_CHUNK);
	size_t keep;

	if (n < 0 && (errno == EINTR || errno == EAGAIN))
		return 0;
	if (n <= 0) {
		close(c->fd);
		c->fd = -1;
		return 0;
	}
	keep = (size_t)n;
	if (keep > c->max - c->len) {
		keep = c->max - c->len;
		c->truncated = 1;
	}
	if (keep == 0)
		return 0;
	if (c->len + keep + 1 > c->cap) {
		size_t cap = c->cap ? c->cap : 4096;
		char *b;
		while (cap < c->len + keep + 1)
			cap *= 2;
		b = realloc(c->buf, cap);
		if (!b)
			return -ENOMEM;
		c->buf = b;
		c->cap = cap;
	}
	memcpy(c->buf + c->len, chunk, keep);
	c->len += keep;
	return 0;
}

static int capture_finish(struct capture *c, char **out, size_t *out_len)
{
	if (!c->buf) {
		c->buf = malloc(1);
		if (!c->buf)
			return -ENOMEM;
	}
	c->buf[c->len] = '\0';
	*out = c->buf;
	*out_len = c->len;
	c->buf = NULL;
	return 0;
}

/* Everything the child needs, prepared by the parent. */
struct child_plan {
	int src[MAX_CHILD_FDS]; /* fd that becomes fd I in the child */
	int n_fds;
	const struct sandbox_cgroup *cg; /* NULL when the run has none */
	const struct sandbox_limits *lim;
	int drop_privileges;             /* switch to UID (we are root) */
	unsigned uid;                    /* the run's uid and gid */
	pid_t parent;
	char **argv;
	char *const *envp;
};

/* In the forked child: async-signal-safe calls only (raw syscalls for the credentials: the
 * child has one thread, and libc's set*id would try to signal the parent's others). Never
 * returns. */
static void __attribute__((noreturn)) child_exec(const struct child_plan *p)
{
	int copies[MAX_CHILD_FDS], i, err, err_fd = p->src[CHILD_FD_EXEC_ERR];
	struct rlimit rl;
	struct sigaction sa;
	sigset_t all;
	char *const empty_env[] = { NULL };

	/* Into the run's cgroups first (as root: cgroup.procs checks the writer's creds), so
	 * that bwrap and everything it starts is counted. */
	if (p->cg && sandbox_cgroup_enter_self(p->cg) < 0)
		goto fail;

	/* Copy the fds above every target number first (any source may sit on a target), then
	 * into place. Every source fd is O_CLOEXEC; the targets are not, but the exec-error
	 * pipe. Then nothing else stays open. */
	for (i = 0; i < p->n_fds; i++) {
		copies[i] = fcntl(p->src[i], F_DUPFD_CLOEXEC, p->n_fds + 16);
		if (copies[i] < 0)
			goto fail;
	}
	for (i = 0; i < p->n_fds; i++)
		if (dup3(copies[i], i, i == CHILD_FD_EXEC_ERR ? O_CLOEXEC : 0) < 0)
			goto fail;
	err_fd = CHILD_FD_EXEC_ERR;
	if (syscall(SYS_close_range, p->n_fds, ~0u, 0) < 0)
		goto fail;

	rl.rlim_cur = p->lim->cpu_seconds;
	rl.rlim_max = (rlim_t)p->lim->cpu_seconds + 1; /* SIGXCPU at soft, SIGKILL at hard */
	if (setrlimit(RLIMIT_CPU, &rl) < 0)
		goto fail;
	rl.rlim_cur = rl.rlim_max = p->lim->max_open_files;
	if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
		goto fail;
	rl.rlim_cur = rl.rlim_max = 0;
	if (setrlimit(RLIMIT_CORE, &rl) < 0)
		goto fail;
	if (!p->cg) {
		rl.rlim_cur = rl.rlim_max = p->lim->memory_bytes;
		if (setrlimit(RLIMIT_AS, &rl) < 0)
			goto fail;
	}
	if (p->drop_privileges) {
		/* Counted by the kernel per uid, the run's own (bwrap's processes with it); root
		 * is exempt, so it holds from the credential change below on. */
		rl.rlim_cur = rl.rlim_max =
		    (rlim_t)p->lim->max_processes + (p->cg ? NPROC_ABOVE_PIDS_MAX : 0);
		if (setrlimit(RLIMIT_NPROC, &rl) < 0)
			goto fail;
		gid_t trees_gid = SANDBOX_TREES_GID;
		if (syscall(SYS_setgroups, 1, &trees_gid) < 0 ||
		    syscall(SYS_setresgid, p->uid, p->uid, p->uid) < 0 ||
		    syscall(SYS_setresuid, p->uid, p->uid, p->uid) < 0)
			goto fail;
	}

	/* Dispositions and mask of the daemon's thread must not reach the job. */
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = SIG_DFL;
	for (i = 1; i < NSIG; i++)
		(void)sigaction(i, &sa, NULL);
	sigemptyset(&all);
	(void)sigprocmask(SIG_SETMASK, &all, NULL);

	/* Die with the daemon thread that runs us; after the credential change (which clears
	 * it) and re-checked against the race with the parent's exit. */
	if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != p->parent)
		goto fail;

	execve(BWRAP_PATH, p->argv, p->envp ? p->envp : empty_env);
fail:
	err = errno;
	(void)!write(err_fd, &err, sizeof(err));
	_exit(127);
}

static int pipe_cloexec(int fds[2])
{
	return pipe2(fds, O_CLOEXEC) < 0 ? -errno : 0;
}

static void close_fd(int *fd)
{
	if (*fd >= 0) {
		close(*fd);
		*fd = -1;
	}
}

/* One run's resources, from run_prepare to run_release. Every fd is -1 when not open. */
struct run {
	const struct sandbox_spec *spec;
	struct sandbox_limits lim;     /* spec->limits with the defaults filled in */
	uint64_t start_us;             /* monotonic start: the timeout and wall_us count from it */
	int drop_privileges;           /* the child switches to the leased uid (we are root) */
	unsigned uid;                  /* the run's uid and gid: leased, or our own */
	struct sandbox_hold *hold;     /* the lease and the output fd, for the result */
	struct argv_builder args;      /* bwrap's command line */
	char *chunk;                   /* READ_CHUNK bytes for capture_read */
	int seccomp_fd, devnull;
	int out_pipe[2], err_pipe[2], exec_pipe[2];
	int tree_fds[4 + MAX_BINDS];   /* O_PATH, in the order build_bwrap_argv binds them */
	int n_tree_fds;
	int output_mounted;            /* the output tmpfs is on spec->output_host_dir */
	struct sandbox_cgroup cg;
	int have_cg;                   /* cg exists (the host may have no usable cgroups) */
	pid_t pid;                     /* bwrap until it is reaped, else -1 */
	int pidfd;
	struct capture out, err;       /* the read ends of the pipes, once bwrap runs */
	int status;                    /* bwrap's wait status, once reaped */
	struct rusage usage;           /* bwrap's, once reaped */
};

/* The supervision's kill state. A run ends in one of two ways, and then drains its pipes for at
 * most KILL_GRACE_MS: bwrap exits (reaped; the cgroup is swept so that what it left behind dies
 * and closes the pipes), or the timeout passes first (SIGKILL to bwrap and the cgroup). */
struct supervision {
	uint64_t deadline_us; /* the timeout; once draining, the end of the grace period */
	int draining;         /* the run has ended as above; only the pipes are still read */
	int timed_out;        /* the timeout passed while bwrap still ran, and it was killed */
	int reaped;           /* bwrap was waited for: run->status and run->usage are its own */
};

int sandbox_spec_check(const struct sandbox_spec *spec)
{
	size_t n_env = 0;

	if (!spec || (spec->backend != SANDBOX_BACKEND_BWRAP &&
		      spec->backend != SANDBOX_BACKEND_DOCKER &&
		      spec->backend != SANDBOX_BACKEND_KVM) ||
	    !spec->toolchain_dir || !spec->argv || !spec->argv[0] ||
	    spec->argv[0][0] != '/' || (spec->n_binds && !spec->binds) ||
	    spec->n_binds > MAX_BINDS ||
	    (!spec->output_host_dir != !spec->output_dest) ||
	    (spec->output_dest && !path_absolute_valid(spec->output_dest)) ||
	    (spec->cwd && !path_absolute_valid(spec->cwd)))
		return -EINVAL;
	for (size_t i = 0; i < spec->n_binds; i++)
		if (!spec->binds[i].host || !path_absolute_valid(spec->binds[i].dest))
			return -EINVAL;
	while (spec->envp && spec->envp[n_env])
		if (++n_env > MAX_ARGV)
			return -E2BIG;
	return 0;
}

int sandbox_mount_output(const struct sandbox_spec *spec, const struct sandbox_limits *lim,
			 unsigned uid, unsigned gid, struct sandbox_hold *hold, int *mounted)
{
	char mount_opts[128];
	int rc;

	if (spec->input_dir &&
	    strncmp(spec->output_dest, ROOT_INPUTS "/", strlen(ROOT_INPUTS "/")) == 0) {
		rc = ensure_mount_point(spec->input_dir, spec->output_dest);
		if (rc < 0)
			return rc;
	}
	snprintf(mount_opts, sizeof(mount_opts), "size=%" PRIu64 ",mode=0700,uid=%u,gid=%u",
		 lim->output_bytes, uid, gid);
	if (mount("cachepot-out", spec->output_host_dir, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC,
		  mount_opts) < 0)
		return -errno;
	*mounted = 1;
	hold->output_fd = open(spec->output_host_dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	return hold->output_fd < 0 ? -errno : 0;
}

/* The trees, opened here as root in the order build_bwrap_argv binds them. */
static int run_open_trees(struct run *run)
{
	const struct sandbox_spec *spec = run->spec;
	char rust[4096], usr[4096];
	const char *paths[4 + MAX_BINDS];
	size_t n_paths = 0, i;

	if ((size_t)snprintf(rust, sizeof(rust), "%s/rust", spec->toolchain_dir) >= sizeof(rust) ||
	    (size_t)snprintf(usr, sizeof(usr), "%s/usr", spec->toolchain_dir) >= sizeof(usr))
		return -ENAMETOOLONG;
	if (!spec->toolchain_without_rust)
		paths[n_paths++] = rust;
	paths[n_paths++] = usr;
	if (spec->input_dir)
		paths[n_paths++] = spec->input_dir;
	for (i = 0; i < spec->n_binds; i++)
		paths[n_paths++] = spec->binds[i].host;
	if (spec->output_host_dir)
		paths[n_paths++] = spec->output_host_dir;
	for (i = 0; i < n_paths; i++) {
		run->tree_fds[i] = open(paths[i], O_PATH | O_CLOEXEC);
		if (run->tree_fds[i] < 0)
			return -errno;
		run->n_tree_fds++;
	}
	return 0;
}

/* Prepare: everything that allocates, before the fork (fds, the seccomp memfd, the output
 * tmpfs, the trees, the cgroups, bwrap's argv). */
static int run_prepare(struct run *run)
{
	char cg_name[128];
	int rc;

	rc = build_bwrap_argv(run->spec, &run->lim, &run->args);
	if (rc < 0)
		return rc;
	run->hold = malloc(sizeof(*run->hold));
	if (!run->hold)
		return -ENOMEM;
	*run->hold = (struct sandbox_hold){ .uid_lease = -1, .output_fd = -1 };
	if (run->drop_privileges) {
		rc = sandbox_uid_lease((uint64_t)syscall(SYS_gettid) * 2654435761u + run->start_us, &run->uid);
		if (rc < 0)
			return rc;
		run->hold->uid_lease = rc;
	} else {
		run->uid = (unsigned)geteuid();
	}
	run->chunk = malloc(READ_CHUNK);
	if (!run->chunk)
		return -ENOMEM;
	rc = sandbox_seccomp_memfd();
	if (rc < 0)
		return rc;
	run->seccomp_fd = rc;
	run->devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (run->devnull < 0)
		return -errno;
	if ((rc = pipe_cloexec(run->out_pipe)) < 0 || (rc = pipe_cloexec(run->err_pipe)) < 0 ||
	    (rc = pipe_cloexec(run->exec_pipe)) < 0)
		return rc;
	if (run->spec->output_host_dir &&
	    (rc = sandbox_mount_output(run->spec, &run->lim, run->uid,
				       run->drop_privileges ? run->uid : (unsigned)getegid(),
				       run->hold, &run->output_mounted)) < 0)
		return rc;
	if ((rc = run_open_trees(run)) < 0)
		return rc;

	/* Unique per run without global state: pid, thread id and the start time. */
	snprintf(cg_name, sizeof(cg_name), RUN_CGROUP_PREFIX "%ld-%ld-%" PRIu64, (long)getpid(),
		 (long)syscall(SYS_gettid), run->start_us);
	rc = sandbox_cgroup_create(&run->cg, run->spec->cgroup_root, cg_name, run->lim.memory_bytes,
				   run->lim.max_processes);
	if (rc == 0)
		run->have_cg = 1;
	else if (rc != -ENOTSUP || !run->spec->allow_no_cgroup_limits)
		return rc;
	return 0;
}

int sandbox_cgroups_sweep(const char *cgroup_root, unsigned *removed)
{
	return sandbox_cgroup_sweep(cgroup_root, RUN_CGROUP_PREFIX, removed);
}

int sandbox_limits_check(const char *cgroup_root, char *msg, size_t msglen)
{
	struct sandbox_cgroup cg;
	char name[64], path[4096];
	int rc, unified;

	if (!cgroup_root)
		cgroup_root = SANDBOX_CGROUP_DEFAULT_ROOT;
	snprintf(name, sizeof(name), "cachepot-check-%ld", (long)getpid());
	rc = sandbox_cgroup_create(&cg, cgroup_root, name, 1ull << 30, 64);
	if (rc == 0) {
		snprintf(msg, msglen, "cgroup v%d: memory and pids limits apply (checked in %s)",
			 cg.version, cg.memory_dir);
		sandbox_cgroup_destroy(&cg);
		return 0;
	}
	if (rc != -ENOTSUP && rc != -EPERM && rc != -EACCES) {
		snprintf(msg, msglen, "creating a cgroup under %s: %s", cgroup_root, strerror(-rc));
		return rc;
	}
	unified = (size_t)snprintf(path, sizeof(path), "%s/cgroup.controllers", cgroup_root) <
		  sizeof(path) && access(path, F_OK) == 0;
	snprintf(msg, msglen,
		 "no memory and pids limits can be set for the jobs (%s under %s: %s): give "
		 "cachepotd a cgroup of its own with those controllers (systemd: Delegate=yes, as "
		 "in contrib/cachepotd.service) or accept rlimits alone with "
		 "--allow-no-cgroup-limits",
		 unified ? "cgroup v2" : "cgroup v1 memory and pids hierarchies", cgroup_root,
		 strerror(-rc));
	return -ENOTSUP;
}

/* Fork the child that execs bwrap, close what only it needs, and wait for the exec: 0 once
 * bwrap runs (run->pid and run->pidfd set), or the child's -errno from before the exec. */
static int run_start(struct run *run)
{
	struct child_plan plan;
	int child_err = 0;
	ssize_t n;

	plan = (struct child_plan){
		.src = { run->devnull, run->out_pipe[1], run->err_pipe[1], run->seccomp_fd,
			 run->exec_pipe[1] },
		.n_fds = CHILD_FD_FIRST_BIND + run->n_tree_fds,
		.cg = run->have_cg ? &run->cg : NULL, .lim = &run->lim,
		.drop_privileges = run->drop_privileges, .uid = run->uid,
		.parent = getpid(), .argv = run->args.v, .envp = run->spec->envp,
	};
	for (int i = 0; i < run->n_tree_fds; i++)
		plan.src[CHILD_FD_FIRST_BIND + i] = run->tree_fds[i];
	run->pid = fork();
	if (run->pid < 0)
		return -errno;
	if (run->pid == 0)
		child_exec(&plan);

	close_fd(&run->out_pipe[1]);
	close_fd(&run->err_pipe[1]);
	close_fd(&run->exec_pipe[1]);
	close_fd(&run->seccomp_fd);
	close_fd(&run->devnull);
	for (int i = 0; i < run->n_tree_fds; i++)
		close_fd(&run->tree_fds[i]);
	run->n_tree_fds = 0;
	/* EOF: bwrap was exec'd; an int: the child's errno before exec. */
	do
		n = read(run->exec_pipe[0], &child_err, sizeof(child_err));
	while (n < 0 && errno == EINTR);
	if (n == sizeof(child_err))
		return child_err > 0 ? -child_err : -EIO;
	run->pidfd = (int)syscall(SYS_pidfd_open, run->pid, 0);
	if (run->pidfd < 0)
		return -errno;

	run->out.fd = run->out_pipe[0];
	run->err.fd = run->err_pipe[0];
	run->out_pipe[0] = run->err_pipe[0] = -1;
	run->out.max = run->err.max = run->lim.capture_bytes;
	return 0;
}

/* The pidfd was readable: reap bwrap if it has exited, sweep what it left behind (so the pipes
 * it holds close) and start draining. */
static void supervise_reap(struct run *run, struct supervision *sup)
{
	if (wait4(run->pid, &run->status, WNOHANG, &run->usage) != run->pid)
		return;
	sup->reaped = 1;
	if (run->have_cg)
		(void)sandbox_cgroup_kill_all(&run->cg);
	if (!sup->draining) {
		sup->draining = 1;
		sup->deadline_us = monotonic_us() + KILL_GRACE_MS * 1000u;
	}
}

/* The timeout passed with bwrap still running: kill bwrap and every process of the run. */
static void supervise_kill(struct run *run, struct supervision *sup, uint64_t now)
{
	sup->timed_out = 1;
	kill(run->pid, SIGKILL);
	if (run->have_cg)
		(void)sandbox_cgroup_kill_all(&run->cg);
	sup->draining = 1;
	sup->deadline_us = now + KILL_GRACE_MS * 1000u;
}

/* Supervise: poll the pipes and bwrap's pidfd until both pipes are closed and bwrap is reaped,
 * killing the run at the timeout and giving up on the pipes after the grace period. bwrap is
 * reaped (killed first if need be) before it returns, 0 or -errno, and run->pid is then -1. */
static int run_supervise(struct run *run, struct sandbox_result *result)
{
	struct supervision sup = {
		.deadline_us = run->start_us + (uint64_t)run->lim.timeout_ms * 1000u,
	};
	int rc = 0;

	while (rc == 0 && (!sup.reaped || run->out.fd >= 0 || run->err.fd >= 0)) {
		struct pollfd pfd[3];
		uint64_t now = monotonic_us();
		int nfds = 0, wait_ms, pr;

		if (now >= sup.deadline_us) {
			if (sup.draining) /* grace period over: stop waiting for the pipes */
				break;
			supervise_kill(run, &sup, now);
			continue;
		}
		wait_ms = (int)((sup.deadline_us - now + 999) / 1000);
		if (run->out.fd >= 0)
			pfd[nfds++] = (struct pollfd){ .fd = run->out.fd, .events = POLLIN };
		if (run->err.fd >= 0)
			pfd[nfds++] = (struct pollfd){ .fd = run->err.fd, .events = POLLIN };
		if (!sup.reaped)
			pfd[nfds++] = (struct pollfd){ .fd = run->pidfd, .events = POLLIN };
		pr = poll(pfd, (nfds_t)nfds, wait_ms);
		if (pr < 0 && errno != EINTR)
			rc = -errno;
		for (int i = 0; rc == 0 && pr > 0 && i < nfds; i++) {
			if (!pfd[i].revents)
				continue;
			if (pfd[i].fd == run->pidfd)
				supervise_reap(run, &sup);
			else
				rc = capture_read(pfd[i].fd == run->out.fd ? &run->out : &run->err,
						  run->chunk);
		}
	}
	if (!sup.reaped) {
		kill(run->pid, SIGKILL);
		while (wait4(run->pid, &run->status, 0, &run->usage) < 0 && errno == EINTR)
			;
	}
	run->pid = -1;
	result->timed_out = sup.timed_out;
	return rc;
}

/* Harvest: from the reaped run, RESULT's exit status, resource use and captured output; -EIO
 * when bwrap itself failed before starting the command. */
static int run_harvest(struct run *run, struct sandbox_result *result)
{
	int rc;

	result->wall_us = monotonic_us() - run->start_us;
	if (WIFEXITED(run->status)) {
		result->exited = 1;
		result->exit_status = WEXITSTATUS(run->status);
	} else if (WIFSIGNALED(run->status)) {
		result->term_signal = WTERMSIG(run->status);
	}
	result->user_us = (uint64_t)run->usage.ru_utime.tv_sec * 1000000u +
			  (uint64_t)run->usage.ru_utime.tv_usec;
	result->sys_us = (uint64_t)run->usage.ru_stime.tv_sec * 1000000u +
			 (uint64_t)run->usage.ru_stime.tv_usec;
	result->max_rss_kb = (uint64_t)run->usage.ru_maxrss;
	/* bwrap's monitor does not reap the namespace's init, so wait4's figures cover bwrap
	 * only: the cgroup's are the job's. */
	if (run->have_cg) {
		struct sandbox_cgroup_stats st;
		(void)sandbox_cgroup_kill_all(&run->cg);
		sandbox_cgroup_stats(&run->cg, &st);
		result->memory_exceeded = st.oom_killed;
		result->pids_exceeded = st.pids_refused;
		if (st.peak_memory)
			result->max_rss_kb = st.peak_memory / 1024u;
		if (run->cg.cpu_dir) {
			result->user_us = st.user_us;
			result->sys_us = st.sys_us;
		}
	}
	result->output_truncated = run->out.truncated || run->err.truncated;
	if ((rc = capture_finish(&run->out, &result->out, &result->out_len)) < 0 ||
	    (rc = capture_finish(&run->err, &result->err, &result->err_len)) < 0)
		return rc;
	/* bwrap reports its own set-up failures as exit status 1 and a "bwrap: " message. */
	if (result->exited && result->exit_status == 1 && !result->timed_out &&
	    strncmp(result->err, "bwrap: ", 7) == 0)
		return -EIO;
	return 0;
}

/* Kill and reap bwrap if it still runs, remove the cgroups, close every fd, and unmount the
 * output tmpfs when the run failed (RC < 0). */
static void run_release(struct run *run, int rc)
{
	if (run->pid > 0) {
		kill(run->pid, SIGKILL);
		while (waitpid(run->pid, NULL, 0) < 0 && errno == EINTR)
			;
	}
	if (run->have_cg)
		sandbox_cgroup_destroy(&run->cg);
	close_fd(&run->pidfd);
	close_fd(&run->out.fd);
	close_fd(&run->err.fd);
	free(run->out.buf);
	free(run->err.buf);
	for (int i = 0; i < 2; i++) {
		close_fd(&run->out_pipe[i]);
		close_fd(&run->err_pipe[i]);
		close_fd(&run->exec_pipe[i]);
	}
	close_fd(&run->seccomp_fd);
	close_fd(&run->devnull);
	for (int i = 0; i < run->n_tree_fds; i++)
		close_fd(&run->tree_fds[i]);
	if (rc < 0) {
		sandbox_hold_free(run->hold);
		run->hold = NULL;
	}
	if (rc < 0 && run->output_mounted)
		(void)sandbox_output_release(run->spec->output_host_dir);
	free(run->chunk);
	argv_release(&run->args);
}

int sandbox_run(const struct sandbox_spec *spec, struct sandbox_result *result)
{
	struct run run = {
		.spec = spec, .seccomp_fd = -1, .devnull = -1,
		.out_pipe = { -1, -1 }, .err_pipe = { -1, -1 }, .exec_pipe = { -1, -1 },
		.pid = -1, .pidfd = -1, .out = { .fd = -1 }, .err = { .fd = -1 },
	};
	int rc;

	memset(result, 0, sizeof(*result));
	rc = sandbox_spec_check(spec);
	if (rc < 0)
		return rc;
	if (spec->backend == SANDBOX_BACKEND_DOCKER)
		return sandbox_docker_run(spec, result);
	if (spec->backend == SANDBOX_BACKEND_KVM)
		return sandbox_kvm_run(spec, result);
	sandbox_fill_limits(&spec->limits, &run.lim);
	run.drop_privileges = geteuid() == 0;
	run.start_us = monotonic_us();

	if ((rc = run_prepare(&run)) == 0 && (rc = run_start(&run)) == 0 &&
	    (rc = run_supervise(&run, result)) == 0)
		rc = run_harvest(&run, result);
	if (rc == 0) {
		result->uid = run.uid;
		result->hold = run.hold;
		run.hold = NULL;
	}
	run_release(&run, rc);
	return rc;
}

int sandbox_backend_parse(const char *name, enum sandbox_backend *backend)
{
	if (strcmp(name, "bwrap") == 0)
		*backend = SANDBOX_BACKEND_BWRAP;
	else if (strcmp(name, "docker") == 0)
		*backend = SANDBOX_BACKEND_DOCKER;
	else if (strcmp(name, "kvm") == 0)
		*backend = SANDBOX_BACKEND_KVM;
	else
		return -EINVAL;
	return 0;
}

const char *sandbox_backend_name(enum sandbox_backend backend)
{
	return backend == SANDBOX_BACKEND_DOCKER ? "docker"
	       : backend == SANDBOX_BACKEND_KVM  ? "kvm"
						 : "bwrap";
}

static int tag_valid(const char *tag)
{
	size_t n = strlen(tag);

	if (n == 0 || n > SANDBOX_TAG_MAX || tag[0] == '.' || tag[0] == '-')
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!((tag[i] >= '0' && tag[i] <= '9') || (tag[i] >= 'a' && tag[i] <= 'z') ||
		      tag[i] == '_' || tag[i] == '.' || tag[i] == '-'))
			return 0;
	return 1;
}

int sandbox_toolchain_tag(const struct sandbox_spec *spec, char tag[SANDBOX_TAG_MAX + 1])
{
	struct stat st;

	if (spec->toolchain_id && tag_valid(spec->toolchain_id)) {
		snprintf(tag, SANDBOX_TAG_MAX + 1, "%s", spec->toolchain_id);
		return 0;
	}
	if (stat(spec->toolchain_dir, &st) < 0)
		return -errno;
	snprintf(tag, SANDBOX_TAG_MAX + 1, "tree-%" PRIx64 "-%" PRIx64 "-%" PRIx64 "-%lx",
		 (uint64_t)st.st_dev, (uint64_t)st.st_ino, (uint64_t)st.st_ctim.tv_sec,
		 (unsigned long)st.st_ctim.tv_nsec);
	return 0;
}
