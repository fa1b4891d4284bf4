/* The sandbox interface and its bubblewrap backend; see sandbox.h.
 *
 * One run:
 *   1. the parent (any daemon thread) prepares everything that allocates: bwrap's argv, the
 *      seccomp BPF in a memfd, the run's cgroups, pipes for stdout/stderr, the output tmpfs
 *      mounted on output_host_dir;
 *   2. fork; the child does only async-signal-safe work: enters the cgroups, moves its fds to
 *      the numbers bwrap's command line names and closes every other one, sets rlimits, drops
 *      to SANDBOX_UID/GID, resets signals, asks for SIGKILL when the calling thread dies, and
 *      execs bwrap with the job's environment (so even the sandbox's pid 1, bwrap, carries
 *      nothing of the daemon's environment). The child's fds are
 *        0 /dev/null, 1 the stdout pipe, 2 the stderr pipe,
 *        3 (CHILD_FD_SECCOMP) the seccomp memfd, 4 (CHILD_FD_EXEC_ERR) the exec-error pipe,
 *          the only one left close-on-exec,
 *        5 (CHILD_FD_FIRST_BIND) and up: O_PATH fds of TREE/rust, TREE/usr, the input dir (if
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
 * The mount point of output_dest must exist in the read-only input tree (bwrap cannot mkdir
 * in a read-only bind): when it is missing, sandbox_run creates it (empty, 0755) on the host.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/clock.h"
#include "base/path.h"
#include "base/roots.h"
#include "sandbox/cgroup.h"
#include "sandbox/sandbox.h"
#include "sandbox/seccomp.h"

#define MAX_ARGV 4096       /* job argv + env entries accepted */
#define READ_CHUNK 65536
#define KILL_GRACE_MS 2000  /* after the kill, how long we still wait for pipes to close */

#define MAX_BINDS 64

/* Fixed fd numbers in the child (bwrap's command line names them): 0-2 stdio, then the
 * seccomp program, the exec-error pipe (close-on-exec: it reports failures before bwrap runs),
 * then O_PATH fds of the trees bwrap binds, in the order build_bwrap_argv uses them. */
#define CHILD_FD_SECCOMP 3
#define CHILD_FD_EXEC_ERR 4
#define CHILD_FD_FIRST_BIND 5
#define MAX_CHILD_FDS (CHILD_FD_FIRST_BIND + 4 + MAX_BINDS)

/* The uid and gid bwrap and the job run as ("nobody"): not root even for the kernel's checks
 * outside the sandbox's user namespace, so that /proc/sys, root-owned files of the bound trees
 * and every other DAC check treat the job as nobody. bwrap then needs no path permission: the
 * trees are passed as fds opened by root. */
#define SANDBOX_UID 65534
#define SANDBOX_GID 65534

void sandbox_limits_default(struct sandbox_limits *limits)
{
	limits->timeout_ms = 10 * 60 * 1000;
	limits->cpu_seconds = 10 * 60;
	limits->memory_bytes = 4ull << 30;
	limits->max_processes = 256;
	limits->max_open_files = 1024;
	limits->output_bytes = 1ull << 30;
	limits->tmp_bytes = 256ull << 20;
	limits->capture_bytes = 16u << 20;
}

static void fill_limits(const struct sandbox_limits *in, struct sandbox_limits *out)
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
	out->capture_bytes = in->capture_bytes ? in->capture_bytes : d.capture_bytes;
}

void sandbox_result_release(struct sandbox_result *result)
{
	free(result->out);
	free(result->err);
	memset(result, 0, sizeof(*result));
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
 * CHILD_FD_FIRST_BIND.. in this order: TREE/rust, TREE/usr, input dir, binds, output dir. */
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
	argv_add(a, "--ro-bind-fd");
	argv_add_u64(a, fd++);
	argv_add(a, ROOT_SYSROOT);
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
	argv_add(a, "--dev");
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
	int drop_privileges;             /* switch to SANDBOX_UID/GID (we are root) */
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
		if (syscall(SYS_setgroups, 0, NULL) < 0 ||
		    syscall(SYS_setresgid, SANDBOX_GID, SANDBOX_GID, SANDBOX_GID) < 0 ||
		    syscall(SYS_setresuid, SANDBOX_UID, SANDBOX_UID, SANDBOX_UID) < 0)
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

int sandbox_run(const struct sandbox_spec *spec, struct sandbox_result *result)
{
	struct sandbox_limits lim;
	struct argv_builder args = { 0 };
	struct sandbox_cgroup cg;
	struct capture cap_out = { .fd = -1 }, cap_err = { .fd = -1 };
	struct child_plan plan;
	struct rusage ru = { 0 };
	char cg_name[128], mount_opts[128], *chunk = NULL;
	int out_pipe[2] = { -1, -1 }, err_pipe[2] = { -1, -1 }, exec_pipe[2] = { -1, -1 };
	int devnull = -1, seccomp_fd = -1, pidfd = -1, have_cg = 0, mounted = 0;
	int tree_fds[4 + MAX_BINDS], n_tree_fds = 0, drop = geteuid() == 0;
	int rc, status = 0, reaped = 0, killed = 0, child_err = 0;
	uint64_t start, deadline;
	pid_t pid = -1;
	size_t n_env = 0;
	ssize_t n;

	memset(result, 0, sizeof(*result));
	memset(&cg, 0, sizeof(cg));
	if (!spec || !spec->toolchain_dir || !spec->argv || !spec->argv[0] ||
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
	fill_limits(&spec->limits, &lim);
	start = monotonic_us();

	rc = build_bwrap_argv(spec, &lim, &args);
	if (rc < 0)
		goto out;
	chunk = malloc(READ_CHUNK);
	if (!chunk) {
		rc = -ENOMEM;
		goto out;
	}
	rc = sandbox_seccomp_memfd();
	if (rc < 0)
		goto out;
	seccomp_fd = rc;
	devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (devnull < 0) {
		rc = -errno;
		goto out;
	}
	if ((rc = pipe_cloexec(out_pipe)) < 0 || (rc = pipe_cloexec(err_pipe)) < 0 ||
	    (rc = pipe_cloexec(exec_pipe)) < 0)
		goto out;

	if (spec->output_host_dir) {
		if (spec->input_dir &&
		    strncmp(spec->output_dest, ROOT_INPUTS "/", strlen(ROOT_INPUTS "/")) == 0) {
			rc = ensure_mount_point(spec->input_dir, spec->output_dest);
			if (rc < 0)
				goto out;
		}
		snprintf(mount_opts, sizeof(mount_opts), "size=%" PRIu64 ",mode=0755,uid=%d,gid=%d",
			 lim.output_bytes, drop ? SANDBOX_UID : (int)geteuid(),
			 drop ? SANDBOX_GID : (int)getegid());
		if (mount("cachepot-out", spec->output_host_dir, "tmpfs",
			  MS_NOSUID | MS_NODEV | MS_NOEXEC, mount_opts) < 0) {
			rc = -errno;
			goto out;
		}
		mounted = 1;
	}

	/* The trees, opened here as root in the order build_bwrap_argv binds them. */
	{
		char rust[4096], usr[4096];
		const char *paths[4 + MAX_BINDS];
		size_t n_paths = 0, i;
		if ((size_t)snprintf(rust, sizeof(rust), "%s/rust", spec->toolchain_dir) >=
			    sizeof(rust) ||
		    (size_t)snprintf(usr, sizeof(usr), "%s/usr", spec->toolchain_dir) >= sizeof(usr)) {
			rc = -ENAMETOOLONG;
			goto out;
		}
		paths[n_paths++] = rust;
		paths[n_paths++] = usr;
		if (spec->input_dir)
			paths[n_paths++] = spec->input_dir;
		for (i = 0; i < spec->n_binds; i++)
			paths[n_paths++] = spec->binds[i].host;
		if (spec->output_host_dir)
			paths[n_paths++] = spec->output_host_dir;
		for (i = 0; i < n_paths; i++) {
			tree_fds[i] = open(paths[i], O_PATH | O_CLOEXEC);
			if (tree_fds[i] < 0) {
				rc = -errno;
				goto out;
			}
			n_tree_fds++;
		}
	}

	/* Unique per run without global state: pid, thread id and the start time. */
	snprintf(cg_name, sizeof(cg_name), "cachepot-sandbox-%ld-%ld-%" PRIu64, (long)getpid(),
		 (long)syscall(SYS_gettid), start);
	rc = sandbox_cgroup_create(&cg, cg_name, lim.memory_bytes, lim.max_processes);
	if (rc == 0)
		have_cg = 1;
	else if (rc != -ENOTSUP)
		goto out;

	plan = (struct child_plan){
		.src = { devnull, out_pipe[1], err_pipe[1], seccomp_fd, exec_pipe[1] },
		.n_fds = CHILD_FD_FIRST_BIND + n_tree_fds,
		.cg = have_cg ? &cg : NULL, .lim = &lim, .drop_privileges = drop,
		.parent = getpid(), .argv = args.v, .envp = spec->envp,
	};
	for (int i = 0; i < n_tree_fds; i++)
		plan.src[CHILD_FD_FIRST_BIND + i] = tree_fds[i];
	pid = fork();
	if (pid < 0) {
		rc = -errno;
		goto out;
	}
	if (pid == 0)
		child_exec(&plan);

	close_fd(&out_pipe[1]);
	close_fd(&err_pipe[1]);
	close_fd(&exec_pipe[1]);
	close_fd(&seccomp_fd);
	close_fd(&devnull);
	for (int i = 0; i < n_tree_fds; i++)
		close_fd(&tree_fds[i]);
	n_tree_fds = 0;
	/* EOF: bwrap was exec'd; an int: the child's errno before exec. */
	do
		n = read(exec_pipe[0], &child_err, sizeof(child_err));
	while (n < 0 && errno == EINTR);
	if (n == sizeof(child_err)) {
		rc = child_err > 0 ? -child_err : -EIO;
		goto out;
	}
	pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
	if (pidfd < 0) {
		rc = -errno;
		goto out;
	}

	cap_out.fd = out_pipe[0];
	cap_err.fd = err_pipe[0];
	out_pipe[0] = err_pipe[0] = -1;
	cap_out.max = cap_err.max = lim.capture_bytes;
	deadline = start + (uint64_t)lim.timeout_ms * 1000u;

	while (!reaped || cap_out.fd >= 0 || cap_err.fd >= 0) {
		struct pollfd pfd[3];
		uint64_t now = monotonic_us();
		int nfds = 0, wait_ms, pr;

		if (now >= deadline) {
			if (killed) /* grace period over: stop waiting for the pipes */
				break;
			result->timed_out = !reaped;
			kill(pid, SIGKILL);
			if (have_cg)
				(void)sandbox_cgroup_kill_all(&cg);
			killed = 1;
			deadline = now + KILL_GRACE_MS * 1000u;
			continue;
		}
		wait_ms = (int)((deadline - now + 999) / 1000);
		if (cap_out.fd >= 0)
			pfd[nfds++] = (struct pollfd){ .fd = cap_out.fd, .events = POLLIN };
		if (cap_err.fd >= 0)
			pfd[nfds++] = (struct pollfd){ .fd = cap_err.fd, .events = POLLIN };
		if (!reaped)
			pfd[nfds++] = (struct pollfd){ .fd = pidfd, .events = POLLIN };
		pr = poll(pfd, (nfds_t)nfds, wait_ms);
		if (pr < 0 && errno != EINTR) {
			rc = -errno;
			goto out;
		}
		for (int i = 0; pr > 0 && i < nfds; i++) {
			if (!pfd[i].revents)
				continue;
			if (pfd[i].fd == pidfd) {
				if (wait4(pid, &status, WNOHANG, &ru) == pid) {
					reaped = 1;
					/* Whatever bwrap left behind dies now, and the pipes it
					 * holds close. */
					if (have_cg)
						(void)sandbox_cgroup_kill_all(&cg);
					if (!killed) {
						killed = 1;
						deadline = monotonic_us() + KILL_GRACE_MS * 1000u;
					}
				}
			} else if ((rc = capture_read(pfd[i].fd == cap_out.fd ? &cap_out : &cap_err,
						      chunk)) < 0) {
				goto out;
			}
		}
	}
	if (!reaped) {
		kill(pid, SIGKILL);
		while (wait4(pid, &status, 0, &ru) < 0 && errno == EINTR)
			;
		reaped = 1;
	}
	pid = -1;
	result->wall_us = monotonic_us() - start;

	if (WIFEXITED(status)) {
		result->exited = 1;
		result->exit_status = WEXITSTATUS(status);
	} else if (WIFSIGNALED(status)) {
		result->term_signal = WTERMSIG(status);
	}
	result->user_us = (uint64_t)ru.ru_utime.tv_sec * 1000000u + (uint64_t)ru.ru_utime.tv_usec;
	result->sys_us = (uint64_t)ru.ru_stime.tv_sec * 1000000u + (uint64_t)ru.ru_stime.tv_usec;
	result->max_rss_kb = (uint64_t)ru.ru_maxrss;
	/* bwrap's monitor does not reap the namespace's init, so wait4's figures cover bwrap
	 * only: the cgroup's are the job's. */
	if (have_cg) {
		struct sandbox_cgroup_stats st;
		(void)sandbox_cgroup_kill_all(&cg);
		sandbox_cgroup_stats(&cg, &st);
		result->memory_exceeded = st.oom_killed;
		result->pids_exceeded = st.pids_refused;
		if (st.peak_memory)
			result->max_rss_kb = st.peak_memory / 1024u;
		if (cg.cpu_dir) {
			result->user_us = st.user_us;
			result->sys_us = st.sys_us;
		}
	}
	result->output_truncated = cap_out.truncated || cap_err.truncated;
	if ((rc = capture_finish(&cap_out, &result->out, &result->out_len)) < 0 ||
	    (rc = capture_finish(&cap_err, &result->err, &result->err_len)) < 0)
		goto out;
	/* bwrap reports its own set-up failures as exit status 1 and a "bwrap: " message. */
	if (result->exited && result->exit_status == 1 && !result->timed_out &&
	    strncmp(result->err, "bwrap: ", 7) == 0)
		rc = -EIO;
	else
		rc = 0;

out:
	if (pid > 0) {
		kill(pid, SIGKILL);
		while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
			;
	}
	if (have_cg)
		sandbox_cgroup_destroy(&cg);
	close_fd(&pidfd);
	close_fd(&cap_out.fd);
	close_fd(&cap_err.fd);
	free(cap_out.buf);
	free(cap_err.buf);
	close_fd(&out_pipe[0]);
	close_fd(&out_pipe[1]);
	close_fd(&err_pipe[0]);
	close_fd(&err_pipe[1]);
	close_fd(&exec_pipe[0]);
	close_fd(&exec_pipe[1]);
	close_fd(&seccomp_fd);
	close_fd(&devnull);
	for (int i = 0; i < n_tree_fds; i++)
		close_fd(&tree_fds[i]);
	if (rc < 0 && mounted)
		(void)sandbox_output_release(spec->output_host_dir);
	free(chunk);
	argv_release(&args);
	return rc;
}
