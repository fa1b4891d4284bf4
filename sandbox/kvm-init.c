/* cachepot-kvm-init: the init (pid 1) of the kvm backend's guest (sandbox/kvm.c says how a run
 * goes). A static program, the only one in the initramfs besides the kernel modules it loads.
 *
 * The devices, in the order QEMU gets them:
 *   /dev/vda  the toolchain tree as ext4 (rust/, usr/), read-only
 *   /dev/vdb  the job as a tar, read-only: job/spec (the run's parameters, below), job/seccomp
 *             (the filter as a classic BPF program, from sandbox/seccomp.c), and root/<path>,
 *             the input tree and the extra binds at their paths in the job's root
 *   /dev/vdc  the result, written once as a tar: result/status, result/stdout, result/stderr,
 *             out/<path> for what the job left in its output directory
 * job/spec is NUL-terminated "key=value" records: uid, timeout_ms, cpu_seconds, memory,
 * processes, files, output_bytes, tmp_bytes, shm_bytes, capture, rust (0 for a tree without
 * rust/), cwd, output (the output directory's path), and in order "arg=..." and "env=...".
 *
 * The job's root is a tmpfs made here, read-only once built, as the bwrap backend's: /rust and
 * /usr bound from the toolchain, /lib and /lib64 symlinks, the inputs (a tmpfs, read-only once
 * extracted), /proc, a minimal /dev with a /dev/shm tmpfs, /tmp, and the output directory (a
 * tmpfs of output_bytes, 0700, owned by the job's uid). The job runs in a cgroup with the
 * memory and pids limits, as the uid (no capabilities), in a new session, with the rlimits,
 * no_new_privs and the seccomp filter, its stdout and stderr read through pipes up to capture
 * bytes each; at timeout_ms it is killed. Then every process of the cgroup is killed, the
 * result written, and the machine powered off. Any failure of the set-up is reported in
 * result/status as "setup=<message>" (and on the console), then the machine powers off.
 */
#include "config.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <linux/filter.h>
#include <linux/reboot.h>
#include <linux/seccomp.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/reboot.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <grp.h>
#include <time.h>
#include <unistd.h>

#define MAX_ARGS 4096
#define NEWROOT "/newroot"
#define CGROUP "/sys/fs/cgroup"
#define JOB_CG CGROUP "/job"
#define DEV_WAIT_MS 10000

struct job {
	unsigned uid;
	unsigned long long timeout_ms, cpu_seconds, memory, processes, files, output_bytes,
	    tmp_bytes, shm_bytes, capture;
	int rust;
	const char *cwd, *output;
	char *argv[MAX_ARGS + 1], *envp[MAX_ARGS + 1];
	size_t argc, envc;
	struct sock_fprog filter;
};

static char setup_error[512];

static int fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int fail(const char *fmt, ...)
{
	va_list ap;

	if (!setup_error[0]) {
		va_start(ap, fmt);
		vsnprintf(setup_error, sizeof(setup_error), fmt, ap);
		va_end(ap);
		fprintf(stderr, "cachepot-kvm-init: %s\n", setup_error);
	}
	return -1;
}

static int write_text(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return fail("%s: %s", path, strerror(errno));
	n = write(fd, text, strlen(text));
	close(fd);
	if (n != (ssize_t)strlen(text))
		return fail("%s: writing '%s': %s", path, text, strerror(errno));
	return 0;
}

static int write_u64(const char *path, unsigned long long v)
{
	char b[32];

	snprintf(b, sizeof(b), "%llu", v);
	return write_text(path, b);
}

/* The value of KEY in a flat-keyed cgroup file (memory.events, cpu.stat): 0 if absent. */
static unsigned long long cg_key(const char *path, const char *key)
{
	char line[256];
	unsigned long long v = 0;
	size_t klen = strlen(key);
	FILE *f = fopen(path, "re");

	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f))
		if (strncmp(line, key, klen) == 0 && line[klen] == ' ')
			v = strtoull(line + klen + 1, NULL, 10);
	fclose(f);
	return v;
}

static unsigned long long cg_value(const char *path)
{
	char line[64];
	unsigned long long v = 0;
	FILE *f = fopen(path, "re");

	if (f && fgets(line, sizeof(line), f))
		v = strtoull(line, NULL, 10);
	if (f)
		fclose(f);
	return v;
}

static int mount_or_fail(const char *src, const char *dst, const char *type, unsigned long flags,
			 const char *data)
{
	if (mount(src, dst, type, flags, data) < 0)
		return fail("mount %s on %s: %s", type ? type : src, dst, strerror(errno));
	return 0;
}

static int mkdir_or_fail(const char *path, mode_t mode)
{
	if (mkdir(path, mode) < 0 && errno != EEXIST)
		return fail("mkdir %s: %s", path, strerror(errno));
	return 0;
}

/* mkdir -p of PATH (absolute) */
static int mkdirs(const char *path, mode_t mode)
{
	char p[4096];

	if (strlen(path) >= sizeof(p))
		return fail("%s: too long", path);
	snprintf(p, sizeof(p), "%s", path);
	for (char *s = p + 1; *s; s++) {
		if (*s != '/')
			continue;
		*s = '\0';
		if (mkdir_or_fail(p, mode) < 0)
			return -1;
		*s = '/';
	}
	return mkdir_or_fail(p, mode);
}

/* mkdir -p of PATH's parent */
static int mkdirs_parent(const char *path)
{
	char p[4096];
	char *slash;

	snprintf(p, sizeof(p), "%s", path);
	slash = strrchr(p, '/');
	if (!slash || slash == p)
		return 0;
	*slash = '\0';
	if (access(p, F_OK) == 0)
		return 0;
	return mkdirs(p, 0755);
}

static int load_modules(void)
{
	char line[256];
	FILE *f = fopen("/modules.order", "re");

	if (!f)
		return fail("/modules.order: %s", strerror(errno));
	while (fgets(line, sizeof(line), f)) {
		char path[300];
		line[strcspn(line, "\n")] = '\0';
		if (!line[0])
			continue;
		snprintf(path, sizeof(path), "/modules/%s", line);
		int fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0 || (syscall(SYS_finit_module, fd, "", 0) < 0 && errno != EEXIST)) {
			fail("loading %s: %s", path, strerror(errno));
			if (fd >= 0)
				close(fd);
			fclose(f);
			return -1;
		}
		close(fd);
	}
	fclose(f);
	return 0;
}

static int wait_device(const char *path)
{
	for (int i = 0; i < DEV_WAIT_MS / 10; i++) {
		if (access(path, F_OK) == 0)
			return 0;
		usleep(10000);
	}
	return fail("%s: no such device after %d ms", path, DEV_WAIT_MS);
}

static int parse_spec(struct job *j, char *buf, size_t len)
{
	char *p = buf, *end = buf + len;

	if (len == 0 || buf[len - 1] != '\0')
		return fail("job/spec: not NUL-terminated");
	while (p < end) {
		char *eq = strchr(p, '='), *v;
		size_t n = strlen(p);
		if (!eq)
			return fail("job/spec: '%.40s' has no '='", p);
		*eq = '\0';
		v = eq + 1;
		if (strcmp(p, "arg") == 0 && j->argc < MAX_ARGS)
			j->argv[j->argc++] = v;
		else if (strcmp(p, "env") == 0 && j->envc < MAX_ARGS)
			j->envp[j->envc++] = v;
		else if (strcmp(p, "cwd") == 0)
			j->cwd = v;
		else if (strcmp(p, "output") == 0)
			j->output = v;
		else if (strcmp(p, "uid") == 0)
			j->uid = (unsigned)strtoul(v, NULL, 10);
		else if (strcmp(p, "rust") == 0)
			j->rust = atoi(v);
		else {
			static const char *const keys[] = { "timeout_ms", "cpu_seconds", "memory",
							    "processes", "files", "output_bytes",
							    "tmp_bytes", "shm_bytes", "capture" };
			unsigned long long *vals[] = { &j->timeout_ms, &j->cpu_seconds, &j->memory,
						       &j->processes, &j->files, &j->output_bytes,
						       &j->tmp_bytes, &j->shm_bytes, &j->capture };
			size_t k;
			for (k = 0; k < sizeof(keys) / sizeof(keys[0]); k++)
				if (strcmp(p, keys[k]) == 0)
					break;
			if (k == sizeof(keys) / sizeof(keys[0]))
				return fail("job/spec: unknown key '%s'", p);
			*vals[k] = strtoull(v, NULL, 10);
		}
		p += n + 1;
	}
	j->argv[j->argc] = NULL;
	j->envp[j->envc] = NULL;
	if (j->argc == 0 || !j->uid || !j->timeout_ms)
		return fail("job/spec: no argv, uid or timeout");
	return 0;
}

/* Read the whole of the current entry of A into a new buffer. */
static int read_entry(struct archive *a, struct archive_entry *e, char **buf, size_t *len)
{
	la_int64_t size = archive_entry_size(e);

	if (size < 0 || size > (64 << 20))
		return fail("%s: bad size", archive_entry_pathname(e));
	*buf = malloc((size_t)size + 1);
	if (!*buf)
		return fail("out of memory");
	la_ssize_t n = archive_read_data(a, *buf, (size_t)size);
	if (n != size)
		return fail("%s: short read", archive_entry_pathname(e));
	(*buf)[size] = '\0';
	*len = (size_t)size;
	return 0;
}

/* Put the current entry of A (a regular file, directory, symlink or hard link) at PATH. */
static int extract(struct archive *a, struct archive_entry *e, const char *path)
{
	mode_t mode = archive_entry_perm(e) & 07777;
	const char *hl = archive_entry_hardlink(e);
	char buf[65536];
	la_ssize_t n;
	int fd;

	if (mkdirs_parent(path) < 0)
		return -1;
	if (hl) {
		char target[4096];
		if (strncmp(hl, "root/", 5) != 0)
			return fail("%s: hard link outside the tree", path);
		snprintf(target, sizeof(target), NEWROOT "/%s", hl + 5);
		if (link(target, path) < 0)
			return fail("link %s: %s", path, strerror(errno));
		return 0;
	}
	switch (archive_entry_filetype(e)) {
	case AE_IFDIR:
		if (mkdir(path, mode) < 0 && errno != EEXIST)
			return fail("mkdir %s: %s", path, strerror(errno));
		return chmod(path, mode) < 0 ? fail("chmod %s: %s", path, strerror(errno)) : 0;
	case AE_IFLNK:
		if (symlink(archive_entry_symlink(e), path) < 0)
			return fail("symlink %s: %s", path, strerror(errno));
		return 0;
	case AE_IFREG:
		fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
		if (fd < 0)
			return fail("%s: %s", path, strerror(errno));
		while ((n = archive_read_data(a, buf, sizeof(buf))) > 0)
			if (write(fd, buf, (size_t)n) != n) {
				close(fd);
				return fail("writing %s: %s", path, strerror(errno));
			}
		if (n < 0 || fchmod(fd, mode) < 0) {
			close(fd);
			return fail("%s: %s", path, n < 0 ? archive_error_string(a) : strerror(errno));
		}
		{
			struct timespec ts[2] = { { archive_entry_mtime(e), 0 },
						  { archive_entry_mtime(e), 0 } };
			(void)futimens(fd, ts);
		}
		close(fd);
		return 0;
	default:
		return fail("%s: not a file, directory or link", path);
	}
}

/* Unpack /dev/vdb: job/ into J, root/ under NEWROOT. */
static int unpack_job(struct job *j)
{
	struct archive *a = archive_read_new();
	struct archive_entry *e;
	char *spec = NULL, *filter = NULL;
	size_t spec_len = 0, filter_len = 0;
	int rc = 0, r;

	archive_read_support_format_tar(a);
	if (archive_read_open_filename(a, "/dev/vdb", 65536) != ARCHIVE_OK) {
		rc = fail("/dev/vdb: %s", archive_error_string(a));
		goto out;
	}
	while ((r = archive_read_next_header(a, &e)) == ARCHIVE_OK) {
		const char *name = archive_entry_pathname(e);
		if (strcmp(name, "job/spec") == 0) {
			if ((rc = read_entry(a, e, &spec, &spec_len)) < 0)
				goto out;
		} else if (strcmp(name, "job/seccomp") == 0) {
			if ((rc = read_entry(a, e, &filter, &filter_len)) < 0)
				goto out;
		} else if (strncmp(name, "root/", 5) == 0) {
			char path[4096];
			if (strstr(name, "/../") || strlen(name) >= sizeof(path) - sizeof(NEWROOT)) {
				rc = fail("%s: bad name", name);
				goto out;
			}
			snprintf(path, sizeof(path), NEWROOT "/%s", name + 5);
			if ((rc = extract(a, e, path)) < 0)
				goto out;
		}
	}
	if (r != ARCHIVE_EOF) {
		rc = fail("/dev/vdb: %s", archive_error_string(a));
		goto out;
	}
	if (!spec || !filter || filter_len % sizeof(struct sock_filter) || !filter_len) {
		rc = fail("/dev/vdb: no job/spec or job/seccomp");
		goto out;
	}
	if ((rc = parse_spec(j, spec, spec_len)) < 0)
		goto out;
	j->filter.len = (unsigned short)(filter_len / sizeof(struct sock_filter));
	j->filter.filter = (struct sock_filter *)filter;
	filter = NULL;
	spec = NULL; /* J points into it */
out:
	free(filter);
	if (rc < 0)
		free(spec);
	archive_read_free(a);
	return rc;
}

static int make_dev(void)
{
	static const struct {
		const char *name;
		unsigned major, minor;
	} nodes[] = { { "null", 1, 3 }, { "zero", 1, 5 }, { "full", 1, 7 },
		      { "random", 1, 8 }, { "urandom", 1, 9 }, { "tty", 5, 0 } };
	char path[128];

	if (mount_or_fail("tmpfs", NEWROOT "/dev", "tmpfs", MS_NOSUID | MS_NOEXEC,
			  "mode=0755,size=64k") < 0)
		return -1;
	for (size_t i = 0; i < sizeof(nodes) / sizeof(nodes[0]); i++) {
		snprintf(path, sizeof(path), NEWROOT "/dev/%s", nodes[i].name);
		if (mknod(path, S_IFCHR | 0666, makedev(nodes[i].major, nodes[i].minor)) < 0)
			return fail("mknod %s: %s", path, strerror(errno));
		if (chmod(path, 0666) < 0)
			return fail("chmod %s: %s", path, strerror(errno));
	}
	if (symlink("/proc/self/fd", NEWROOT "/dev/fd") < 0 ||
	    symlink("/proc/self/fd/0", NEWROOT "/dev/stdin") < 0 ||
	    symlink("/proc/self/fd/1", NEWROOT "/dev/stdout") < 0 ||
	    symlink("/proc/self/fd/2", NEWROOT "/dev/stderr") < 0)
		return fail("symlinks in /dev: %s", strerror(errno));
	if (mkdir_or_fail(NEWROOT "/dev/shm", 0755) < 0)
		return -1;
	return 0;
}

/* The job's root under NEWROOT (the inputs are unpacked into it first). */
static int build_root(struct job *j)
{
	char opts[128], out[4096];

	if (mount_or_fail("/dev/vda", "/toolchain", "ext4", MS_RDONLY | MS_NODEV | MS_NOSUID,
			  "noload") < 0)
		return -1;
	if (mkdir_or_fail(NEWROOT "/usr", 0755) < 0 ||
	    mount_or_fail("/toolchain/usr", NEWROOT "/usr", NULL, MS_BIND | MS_REC, NULL) < 0 ||
	    mount_or_fail(NULL, NEWROOT "/usr", NULL, MS_REMOUNT | MS_BIND | MS_RDONLY, NULL) < 0)
		return -1;
	if (j->rust && (mkdir_or_fail(NEWROOT "/rust", 0755) < 0 ||
			mount_or_fail("/toolchain/rust", NEWROOT "/rust", NULL, MS_BIND, NULL) < 0 ||
			mount_or_fail(NULL, NEWROOT "/rust", NULL,
				      MS_REMOUNT | MS_BIND | MS_RDONLY, NULL) < 0))
		return -1;
	if ((symlink("usr/lib", NEWROOT "/lib") < 0 && errno != EEXIST) ||
	    (symlink("usr/lib64", NEWROOT "/lib64") < 0 && errno != EEXIST))
		return fail("symlinks /lib, /lib64: %s", strerror(errno));
	if (mkdir_or_fail(NEWROOT "/proc", 0555) < 0 || mkdir_or_fail(NEWROOT "/tmp", 01777) < 0 ||
	    mkdir_or_fail(NEWROOT "/dev", 0755) < 0)
		return -1;
	if (mount_or_fail("proc", NEWROOT "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC,
			  "hidepid=invisible") < 0)
		return -1;
	snprintf(opts, sizeof(opts), "mode=1777,size=%llu", j->tmp_bytes);
	if (mount_or_fail("tmpfs", NEWROOT "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, opts) < 0)
		return -1;
	if (make_dev() < 0)
		return -1;
	snprintf(opts, sizeof(opts), "mode=1777,size=%llu", j->shm_bytes);
	if (mount_or_fail("tmpfs", NEWROOT "/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV, opts) < 0 ||
	    mount_or_fail(NULL, NEWROOT "/dev", NULL, MS_REMOUNT | MS_RDONLY | MS_NOSUID, NULL) < 0)
		return -1;
	if (j->output) {
		if (snprintf(out, sizeof(out), NEWROOT "%s", j->output) >= (int)sizeof(out))
			return fail("output: too long");
		if (mkdirs(out, 0755) < 0)
			return -1;
		snprintf(opts, sizeof(opts), "mode=0700,uid=%u,gid=%u,size=%llu", j->uid, j->uid,
			 j->output_bytes);
		if (mount_or_fail("tmpfs", out, "tmpfs", MS_NOSUID | MS_NODEV, opts) < 0)
			return -1;
	}
	/* the root tmpfs, inputs and all, read-only under the mounts on it */
	return mount_or_fail(NULL, NEWROOT, NULL, MS_REMOUNT | MS_RDONLY | MS_NOSUID, NULL);
}

static int make_cgroup(const struct job *j)
{
	if (mount_or_fail("cgroup2", CGROUP, "cgroup2", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0 ||
	    write_text(CGROUP "/cgroup.subtree_control", "+memory +pids +cpu") < 0 ||
	    mkdir_or_fail(JOB_CG, 0755) < 0 || write_u64(JOB_CG "/memory.max", j->memory) < 0 ||
	    write_u64(JOB_CG "/pids.max", j->processes) < 0)
		return -1;
	return 0;
}

struct capture {
	int fd;
	char *buf;
	size_t len, max;
	int truncated;
};

static void capture_read(struct capture *c)
{
	char chunk[65536];
	ssize_t n = read(c->fd, chunk, sizeof(chunk));

	if (n <= 0) {
		if (n == 0 || (errno != EINTR && errno != EAGAIN)) {
			close(c->fd);
			c->fd = -1;
		}
		return;
	}
	size_t keep = (size_t)n < c->max - c->len ? (size_t)n : c->max - c->len;
	if (keep < (size_t)n)
		c->truncated = 1;
	memcpy(c->buf + c->len, chunk, keep);
	c->len += keep;
}

static void __attribute__((noreturn)) child(const struct job *j, int out, int err, int report)
{
	const struct rlimit cpu = { j->cpu_seconds, j->cpu_seconds };
	const struct rlimit files = { j->files, j->files };
	/* as bwrap's: above pids.max, so that the cgroup, which reports the hit, refuses first */
	const struct rlimit procs = { j->processes + 16, j->processes + 16 };
	const struct rlimit core = { 0, 0 };
	int devnull = open("/dev/null", O_RDONLY);
	const char *what = "cgroup";

	if (write_text(JOB_CG "/cgroup.procs", "0") < 0)
		goto failed;
	what = "stdio";
	if (devnull < 0 || dup2(devnull, 0) < 0 || dup2(out, 1) < 0 || dup2(err, 2) < 0)
		goto failed;
	what = "setsid";
	if (setsid() < 0)
		goto failed;
	what = "chroot";
	if (chroot(NEWROOT) < 0 || chdir("/") < 0)
		goto failed;
	what = "chdir";
	if (chdir(j->cwd ? j->cwd : "/") < 0)
		goto failed;
	what = "rlimits";
	if (setrlimit(RLIMIT_CPU, &cpu) < 0 || setrlimit(RLIMIT_NOFILE, &files) < 0 ||
	    setrlimit(RLIMIT_NPROC, &procs) < 0 || setrlimit(RLIMIT_CORE, &core) < 0)
		goto failed;
	what = "uid";
	if (setgroups(0, NULL) < 0 || setgid(j->uid) < 0 || setuid(j->uid) < 0)
		goto failed;
	what = "no_new_privs";
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		goto failed;
	what = "seccomp";
	if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &j->filter) < 0)
		goto failed;
	what = "execve";
	execve(j->argv[0], j->argv, j->envp);
failed: {
	char msg[600];
	int n = snprintf(msg, sizeof(msg), "%s %s: %s", what, j->argv[0], strerror(errno));
	if (write(report, msg, (size_t)n) < 0)
		_exit(127);
	_exit(127);
}
}

/* Run the job; fill STATUS (the result/status text). */
static int run_job(const struct job *j, struct capture *out, struct capture *err, char *status,
		   size_t status_len)
{
	int po[2], pe[2], pr[2], ws = 0, timed_out = 0;
	char exec_error[600] = "";
	struct timespec t0, now;
	pid_t pid;

	if (pipe2(po, O_CLOEXEC) < 0 || pipe2(pe, O_CLOEXEC) < 0 || pipe2(pr, O_CLOEXEC) < 0)
		return fail("pipe: %s", strerror(errno));
	clock_gettime(CLOCK_MONOTONIC, &t0);
	pid = fork();
	if (pid < 0)
		return fail("fork: %s", strerror(errno));
	if (pid == 0)
		child(j, po[1], pe[1], pr[1]);
	close(po[1]);
	close(pe[1]);
	close(pr[1]);
	out->fd = po[0];
	err->fd = pe[0];
	for (;;) {
		struct pollfd p[3] = { { out->fd, POLLIN, 0 }, { err->fd, POLLIN, 0 },
				       { pr[0], POLLIN, 0 } };
		clock_gettime(CLOCK_MONOTONIC, &now);
		long long ms = (now.tv_sec - t0.tv_sec) * 1000LL + (now.tv_nsec - t0.tv_nsec) / 1000000;
		long long left = (long long)j->timeout_ms - ms;
		if (left <= 0 && !timed_out) {
			timed_out = 1;
			(void)write_text(JOB_CG "/cgroup.kill", "1");
			kill(pid, SIGKILL);
		}
		if (out->fd < 0 && err->fd < 0 && pr[0] < 0)
			break;
		if (poll(p, 3, timed_out ? 100 : (int)(left < 100 ? left : 100)) < 0 && errno != EINTR)
			break;
		if (p[0].revents)
			capture_read(out);
		if (p[1].revents)
			capture_read(err);
		if (p[2].revents) {
			ssize_t n = read(pr[0], exec_error, sizeof(exec_error) - 1);
			if (n > 0)
				exec_error[n] = '\0';
			close(pr[0]);
			pr[0] = -1;
		}
		/* the main process gone: what it left running goes too (as bwrap's pid namespace) */
		if (waitpid(pid, &ws, WNOHANG) == pid) {
			pid = -1;
			(void)write_text(JOB_CG "/cgroup.kill", "1");
		}
		if (pid < 0 && out->fd < 0 && err->fd < 0)
			break;
	}
	if (pid > 0)
		while (waitpid(pid, &ws, 0) < 0 && errno == EINTR)
			;
	if (pr[0] >= 0) {
		ssize_t n = read(pr[0], exec_error, sizeof(exec_error) - 1);
		if (n > 0)
			exec_error[n] = '\0';
		close(pr[0]);
	}
	if (exec_error[0])
		return fail("%s", exec_error);
	snprintf(status, status_len,
		 "exited=%d\nstatus=%d\nsignal=%d\ntimed_out=%d\nmemory_exceeded=%d\n"
		 "pids_exceeded=%d\ntruncated=%d\nuser_us=%llu\nsys_us=%llu\nmax_rss_kb=%llu\n",
		 /* as bwrap reports: a signal S as exit status 128+S; SIGKILL at the timeout */
		 !timed_out, WIFEXITED(ws) ? WEXITSTATUS(ws) : 128 + WTERMSIG(ws),
		 timed_out ? SIGKILL : 0, timed_out,
		 cg_key(JOB_CG "/memory.events", "oom_kill") > 0,
		 cg_key(JOB_CG "/pids.events", "max") > 0, out->truncated || err->truncated,
		 cg_key(JOB_CG "/cpu.stat", "user_usec"), cg_key(JOB_CG "/cpu.stat", "system_usec"),
		 cg_value(JOB_CG "/memory.peak") / 1024);
	return 0;
}

static int add_data(struct archive *w, const char *name, const char *data, size_t len)
{
	struct archive_entry *e = archive_entry_new();
	int rc = 0;

	archive_entry_set_pathname(e, name);
	archive_entry_set_filetype(e, AE_IFREG);
	archive_entry_set_perm(e, 0644);
	archive_entry_set_size(e, (la_int64_t)len);
	if (archive_write_header(w, e) != ARCHIVE_OK ||
	    (len && archive_write_data(w, data, len) != (la_ssize_t)len))
		rc = -1;
	archive_entry_free(e);
	return rc;
}

static struct archive *walk_writer; /* for add_output, as nftw has no argument */
static size_t walk_prefix;

/* nftw's callback: one file or directory of the output tree into the result, as out/<path>;
 * anything else (symlinks, fifos) is left out. */
static int add_output(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	struct archive_entry *e;
	char name[4200], buf[65536];
	ssize_t n;
	int fd, rc = 0;

	if (ftw->level == 0 || (type != FTW_F && type != FTW_D) ||
	    !(S_ISREG(st->st_mode) || S_ISDIR(st->st_mode)))
		return 0;
	snprintf(name, sizeof(name), "out/%s", path + walk_prefix + 1);
	e = archive_entry_new();
	archive_entry_set_pathname(e, name);
	archive_entry_set_filetype(e, S_ISDIR(st->st_mode) ? AE_IFDIR : AE_IFREG);
	archive_entry_set_perm(e, st->st_mode & 0777);
	archive_entry_set_size(e, S_ISREG(st->st_mode) ? st->st_size : 0);
	archive_entry_set_mtime(e, st->st_mtim.tv_sec, st->st_mtim.tv_nsec);
	if (archive_write_header(walk_writer, e) != ARCHIVE_OK)
		rc = 1;
	if (!rc && S_ISREG(st->st_mode)) {
		fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
		while (fd >= 0 && (n = read(fd, buf, sizeof(buf))) > 0)
			if (archive_write_data(walk_writer, buf, (size_t)n) != n) {
				rc = 1;
				break;
			}
		if (fd >= 0)
			close(fd);
	}
	archive_entry_free(e);
	return rc;
}

/* Write the result tar on /dev/vdc: status, stdout, stderr and the output tree. */
static void write_result(const struct job *j, const char *status, const struct capture *out,
			 const struct capture *err)
{
	struct archive *w = archive_write_new();
	char st[1024];

	archive_write_set_format_ustar(w);
	archive_write_set_bytes_per_block(w, 65536);
	if (archive_write_open_filename(w, "/dev/vdc") != ARCHIVE_OK) {
		fprintf(stderr, "cachepot-kvm-init: /dev/vdc: %s\n", archive_error_string(w));
		archive_write_free(w);
		return;
	}
	if (setup_error[0])
		snprintf(st, sizeof(st), "setup=%s\n", setup_error);
	else
		snprintf(st, sizeof(st), "%s", status);
	(void)add_data(w, "result/status", st, strlen(st));
	if (!setup_error[0]) {
		(void)add_data(w, "result/stdout", out->buf, out->len);
		(void)add_data(w, "result/stderr", err->buf, err->len);
	}
	if (!setup_error[0] && j->output) {
		char dir[4096];
		snprintf(dir, sizeof(dir), NEWROOT "%s", j->output);
		walk_writer = w;
		walk_prefix = strlen(dir);
		(void)nftw(dir, add_output, 16, FTW_PHYS);
	}
	archive_write_close(w);
	archive_write_free(w);
	int fd = open("/dev/vdc", O_WRONLY);
	if (fd >= 0) {
		fsync(fd);
		close(fd);
	}
}

int main(void)
{
	static struct job j;
	static char status[1024];
	struct capture out = { .fd = -1 }, err = { .fd = -1 };

	if (getpid() != 1) {
		fprintf(stderr, "cachepot-kvm-init: not pid 1: the kvm backend's guest init\n");
		return 2;
	}
	(void)mount("devtmpfs", "/dev", "devtmpfs", MS_NOSUID, "mode=0755");
	if (mount_or_fail("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0 ||
	    mount_or_fail("sysfs", "/sys", "sysfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0 ||
	    load_modules() < 0 || wait_device("/dev/vdc") < 0)
		goto end;
	if (wait_device("/dev/vda") < 0 || wait_device("/dev/vdb") < 0 ||
	    mount_or_fail("tmpfs", NEWROOT, "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755") < 0 ||
	    unpack_job(&j) < 0 || build_root(&j) < 0 || make_cgroup(&j) < 0)
		goto end;
	out.max = err.max = j.capture;
	out.buf = malloc(j.capture + 1);
	err.buf = malloc(j.capture + 1);
	if (!out.buf || !err.buf) {
		fail("out of memory for %llu bytes of capture", j.capture);
		goto end;
	}
	(void)run_job(&j, &out, &err, status, sizeof(status));
end:
	if (access("/dev/vdc", F_OK) == 0)
		write_result(&j, status, &out, &err);
	sync();
	reboot(LINUX_REBOOT_CMD_POWER_OFF);
	for (;;)
		pause();
}
