/* Per-run cgroups of the sandbox; see cgroup.h.
 *
 * Killing a run's processes: a pid read from cgroup.procs may exit and be reused by an
 * unrelated process before we signal it. So each pid is pinned with pidfd_open first, then
 * checked to still be in the run's cgroup (/proc/PID/cgroup), then signalled through the pidfd:
 * if it was reused before pidfd_open, the check fails; if after, the signal goes nowhere.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "base/io.h"
#include "sandbox/cgroup.h"

#define SMALL_FILE_MAX 65536

static int write_file(const char *dir, const char *name, const char *text)
{
	char path[4096];
	int fd, rc;

	if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, name) >= sizeof(path))
		return -ENAMETOOLONG;
	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	rc = io_write_all(fd, text, strlen(text));
	close(fd);
	return rc;
}

/* Read at most SMALL_FILE_MAX - 1 bytes of PATH into a malloc'd NUL-terminated string. Not
 * io_read_file_at: that reads st_size bytes, and cgroupfs and /proc files report a size of 0. */
static int read_small_file(const char *path, char **text)
{
	char *buf;
	size_t len = 0;
	ssize_t n;
	int fd;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	buf = malloc(SMALL_FILE_MAX);
	if (!buf) {
		close(fd);
		return -ENOMEM;
	}
	while (len < SMALL_FILE_MAX - 1 &&
	       (n = read(fd, buf + len, SMALL_FILE_MAX - 1 - len)) > 0)
		len += (size_t)n;
	close(fd);
	buf[len] = '\0';
	*text = buf;
	return 0;
}

/* The value of "KEY N" in the keyed file DIR/NAME (memory.events, pids.events...), 0 if absent. */
static uint64_t read_keyed(const char *dir, const char *name, const char *key)
{
	char path[4096], *text, *p;
	size_t klen = strlen(key);
	uint64_t v = 0;

	if (!dir || (size_t)snprintf(path, sizeof(path), "%s/%s", dir, name) >= sizeof(path))
		return 0;
	if (read_small_file(path, &text) < 0)
		return 0;
	for (p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL) {
		if (strncmp(p, key, klen) == 0 && p[klen] == ' ') {
			v = strtoull(p + klen + 1, NULL, 10);
			break;
		}
	}
	free(text);
	return v;
}

static uint64_t read_number(const char *dir, const char *name)
{
	char path[4096], *text;
	uint64_t v;

	if (!dir || (size_t)snprintf(path, sizeof(path), "%s/%s", dir, name) >= sizeof(path))
		return 0;
	if (read_small_file(path, &text) < 0)
		return 0;
	v = strtoull(text, NULL, 10);
	free(text);
	return v;
}

/* The calling process's path in the hierarchy whose controller list contains CONTROLLER
 * (v1), or in the unified hierarchy when CONTROLLER is NULL; malloc'd. */
static int own_cgroup_path(const char *controller, char **path)
{
	char *text, *line, *save = NULL;
	int rc = -ENOENT;

	rc = read_small_file("/proc/self/cgroup", &text);
	if (rc < 0)
		return rc;
	rc = -ENOENT;
	for (line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char *c1 = strchr(line, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
		if (!c2)
			continue;
		*c2 = '\0';
		if (controller) {
			char *tok, *s2 = NULL;
			int found = 0;
			for (tok = strtok_r(c1 + 1, ",", &s2); tok; tok = strtok_r(NULL, ",", &s2))
				found |= strcmp(tok, controller) == 0;
			if (!found)
				continue;
		} else if (c1[1] != '\0') {
			continue;
		}
		*path = strdup(c2 + 1);
		rc = *path ? 0 : -ENOMEM;
		break;
	}
	free(text);
	return rc;
}

/* BASE followed by the cgroup path CG ("/" or "/a/b"), malloc'd; NULL when out of memory. */
static char *cgroup_dir(const char *base, const char *cg)
{
	char *dir;

	if (asprintf(&dir, "%s%s%s", base, cg[0] == '/' ? "" : "/",
		     strcmp(cg, "/") == 0 ? "" : cg) < 0)
		return NULL;
	return dir;
}

/* Create PARENT/NAME and open its cgroup.procs. */
static int add_dir_in(struct sandbox_cgroup *cg, const char *parent, const char *name,
		      char **made)
{
	char *dir = NULL, procs[4096];
	int rc, fd;

	if (asprintf(&dir, "%s/%s", parent, name) < 0)
		return -ENOMEM;
	if (mkdir(dir, 0755) < 0) {
		rc = -errno;
		free(dir);
		return rc;
	}
	snprintf(procs, sizeof(procs), "%s/cgroup.procs", dir);
	fd = open(procs, O_WRONLY | O_CLOEXEC);
	if (fd < 0) {
		rc = -errno;
		rmdir(dir);
		free(dir);
		return rc;
	}
	cg->dirs[cg->n_dirs] = dir;
	cg->procs_fds[cg->n_dirs] = fd;
	cg->n_dirs++;
	*made = dir;
	return 0;
}

/* Create BASE/OWN/NAME (OWN from /proc/self/cgroup for the v1 CONTROLLER) and open its
 * cgroup.procs. */
static int add_dir(struct sandbox_cgroup *cg, const char *base, const char *controller,
		   const char *name, char **made)
{
	char *own = NULL, *parent;
	int rc;

	rc = own_cgroup_path(controller, &own);
	if (rc < 0)
		return rc;
	parent = cgroup_dir(base, own);
	free(own);
	if (!parent)
		return -ENOMEM;
	rc = add_dir_in(cg, parent, name, made);
	free(parent);
	return rc;
}

/* 1 when every word of the space-separated WORDS is a word of the file DIR/NAME. */
static int file_has_words(const char *dir, const char *name, const char *words)
{
	char path[4096], *text, *copy, *w, *save = NULL;
	int all = 1;

	if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, name) >= sizeof(path) ||
	    read_small_file(path, &text) < 0)
		return 0;
	copy = strdup(words);
	if (!copy) {
		free(text);
		return 0;
	}
	for (w = strtok_r(copy, " ", &save); w && all; w = strtok_r(NULL, " ", &save)) {
		size_t n = strlen(w);
		const char *p = text;
		all = 0;
		while ((p = strstr(p, w))) {
			if ((p == text || p[-1] == ' ' || p[-1] == '\n') &&
			    (p[n] == '\0' || p[n] == ' ' || p[n] == '\n')) {
				all = 1;
				break;
			}
			p += n;
		}
	}
	free(copy);
	free(text);
	return all;
}

/* Cgroup v2 and "no internal processes": a cgroup that has processes of its own cannot give
 * domain controllers (memory, pids) to its children -- cgroup.subtree_control answers EBUSY --
 * except the root. So the first run moves the daemon (the whole process, every thread) into a
 * leaf, <own>/SANDBOX_CGROUP_DAEMON_LEAF, enables the controllers in <own> and creates the
 * runs' cgroups beside the leaf. Later runs find themselves in the leaf and use its parent.
 * The process's cgroup is the only state, and it is the kernel's. */
int sandbox_cgroup_v2_delegate(const char *root, const char *controllers, char **parent_out)
{
	char *own = NULL, *parent = NULL, *leaf = NULL, *slash, plus[256];
	size_t len = 0;
	int rc, in_leaf;

	*parent_out = NULL;
	for (const char *p = controllers; *p; p++) /* "a b" -> "+a +b" */
		if (len + 3 < sizeof(plus)) {
			if (p == controllers || (p[-1] == ' ' && *p != ' '))
				plus[len++] = '+';
			plus[len++] = *p;
		}
	plus[len] = '\0';
	rc = own_cgroup_path(NULL, &own);
	if (rc < 0)
		return rc;
	slash = strrchr(own, '/');
	in_leaf = slash && strcmp(slash + 1, SANDBOX_CGROUP_DAEMON_LEAF) == 0;
	if (in_leaf)
		*(slash == own ? slash + 1 : slash) = '\0';
	parent = cgroup_dir(root, own);
	if (!parent) {
		rc = -ENOMEM;
		goto out;
	}
	if (file_has_words(parent, "cgroup.subtree_control", controllers))
		goto done;
	rc = write_file(parent, "cgroup.subtree_control", plus);
	if (rc == -EBUSY && !in_leaf) {
		if (asprintf(&leaf, "%s/%s", parent, SANDBOX_CGROUP_DAEMON_LEAF) < 0) {
			rc = -ENOMEM;
			goto out;
		}
		if (mkdir(leaf, 0755) < 0 && errno != EEXIST) {
			rc = -errno;
			goto out;
		}
		rc = write_file(leaf, "cgroup.procs", "0");
		if (rc == 0) /* still EBUSY: other processes share the daemon's cgroup */
			rc = write_file(parent, "cgroup.subtree_control", plus);
	}
	if (rc < 0)
		goto out;
done:
	*parent_out = parent;
	parent = NULL;
	rc = 0;
out:
	free(own);
	free(parent);
	free(leaf);
	return rc;
}

/* ROOT is a cgroup2 mount (the unified hierarchy), not v1's tmpfs of hierarchies. */
static int root_is_unified(const char *root)
{
	char path[4096];

	return (size_t)snprintf(path, sizeof(path), "%s/cgroup.controllers", root) < sizeof(path) &&
	       access(path, F_OK) == 0;
}

int sandbox_cgroup_create(struct sandbox_cgroup *cg, const char *root, const char *name,
			  uint64_t memory_bytes, unsigned max_processes)
{
	char num[32];
	int rc, i;

	memset(cg, 0, sizeof(*cg));
	for (i = 0; i < SANDBOX_CGROUP_MAX_DIRS; i++)
		cg->procs_fds[i] = -1;
	if (!root)
		root = SANDBOX_CGROUP_DEFAULT_ROOT;

	if (root_is_unified(root)) {
		char *parent = NULL;
		cg->version = 2;
		rc = sandbox_cgroup_v2_delegate(root, "memory pids", &parent);
		if (rc == 0)
			rc = add_dir_in(cg, parent, name, &cg->memory_dir);
		free(parent);
		if (rc == 0) {
			cg->pids_dir = cg->memory_dir;
			snprintf(num, sizeof(num), "%" PRIu64, memory_bytes);
			rc = write_file(cg->memory_dir, "memory.max", num);
		}
		if (rc == 0)
			(void)write_file(cg->memory_dir, "memory.swap.max", "0");
		cg->cpu_dir = cg->memory_dir;
	} else {
		cg->version = 1;
		char v1[3][4096];
		snprintf(v1[0], sizeof(v1[0]), "%s/memory", root);
		snprintf(v1[1], sizeof(v1[1]), "%s/pids", root);
		snprintf(v1[2], sizeof(v1[2]), "%s/cpuacct", root);
		rc = add_dir(cg, v1[0], "memory", name, &cg->memory_dir);
		if (rc == 0)
			rc = add_dir(cg, v1[1], "pids", name, &cg->pids_dir);
		/* CPU accounting is a nicety: without it, times come from wait4. */
		if (rc == 0 && add_dir(cg, v1[2], "cpuacct", name, &cg->cpu_dir) < 0)
			cg->cpu_dir = NULL;
		if (rc == 0) {
			snprintf(num, sizeof(num), "%" PRIu64, memory_bytes);
			rc = write_file(cg->memory_dir, "memory.limit_in_bytes", num);
		}
		/* Without this, swap would let a run use more than its limit. Absent when the
		 * kernel has no swap accounting. */
		if (rc == 0) {
			int r2 = write_file(cg->memory_dir, "memory.memsw.limit_in_bytes", num);
			if (r2 < 0 && r2 != -ENOENT)
				rc = r2;
		}
	}
	if (rc == 0) {
		snprintf(num, sizeof(num), "%u", max_processes);
		rc = write_file(cg->pids_dir, "pids.max", num);
	}
	if (rc < 0) {
		sandbox_cgroup_destroy(cg);
		if (rc == -ENOENT || rc == -EROFS || rc == -EBUSY || rc == -EOPNOTSUPP)
			rc = -ENOTSUP;
	}
	return rc;
}

int sandbox_cgroup_enter_self(const struct sandbox_cgroup *cg)
{
	int i;

	for (i = 0; i < cg->n_dirs; i++)
		if (write(cg->procs_fds[i], "0", 1) != 1)
			return -errno;
	return 0;
}

/* SIGKILL PID if it is still in the cgroup whose directory ends in /NAME. 1 if signalled. */
static int kill_if_member(pid_t pid, const char *name)
{
	char path[64], *text, needle[512];
	int pidfd, member, rc = 0;

	pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
	if (pidfd < 0)
		return 0;
	snprintf(path, sizeof(path), "/proc/%d/cgroup", (int)pid);
	snprintf(needle, sizeof(needle), "/%s\n", name);
	if (read_small_file(path, &text) == 0) {
		member = strstr(text, needle) != NULL;
		free(text);
		if (member && syscall(SYS_pidfd_send_signal, pidfd, SIGKILL, NULL, 0) == 0)
			rc = 1;
	}
	close(pidfd);
	return rc;
}

/* SIGKILL every process of the cgroup DIR (whose last component is NAME), each checked to be a
 * member (kill_if_member), and wait until it has none: 0, or -EBUSY after ROUNDS rounds of
 * 5 ms. 0 too when its cgroup.procs cannot be read (the cgroup is gone). */
static int kill_members(const char *dir, const char *name, int rounds)
{
	char path[4096];

	if ((size_t)snprintf(path, sizeof(path), "%s/cgroup.procs", dir) >= sizeof(path))
		return 0;
	for (int round = 0; round < rounds; round++) {
		char *text, *p, *end;
		int any = 0;
		if (read_small_file(path, &text) < 0)
			return 0;
		for (p = text; *p; p = end) {
			long pid = strtol(p, &end, 10);
			if (end == p)
				break;
			any = 1;
			if (pid > 0)
				kill_if_member((pid_t)pid, name);
			while (*end == '\n')
				end++;
		}
		free(text);
		if (!any)
			return 0;
		nanosleep(&(struct timespec){ .tv_nsec = 5 * 1000 * 1000 }, NULL);
	}
	return -EBUSY;
}

int sandbox_cgroup_kill_all(struct sandbox_cgroup *cg)
{
	if (!cg->pids_dir)
		return 0;
	/* No new processes from now on: a fork bomb cannot outrun the loop below. */
	(void)write_file(cg->pids_dir, "pids.max", "0");
	if (cg->version == 2)
		(void)write_file(cg->pids_dir, "cgroup.kill", "1");
	return kill_members(cg->pids_dir, strrchr(cg->pids_dir, '/') + 1, 400);
}

void sandbox_cgroup_stats(const struct sandbox_cgroup *cg, struct sandbox_cgroup_stats *st)
{
	memset(st, 0, sizeof(*st));
	if (cg->version == 2) {
		st->oom_killed = read_keyed(cg->memory_dir, "memory.events", "oom_kill") > 0;
		st->peak_memory = read_number(cg->memory_dir, "memory.peak");
		st->user_us = read_keyed(cg->cpu_dir, "cpu.stat", "user_usec");
		st->sys_us = read_keyed(cg->cpu_dir, "cpu.stat", "system_usec");
	} else {
		st->oom_killed = read_keyed(cg->memory_dir, "memory.oom_control", "oom_kill") > 0;
		st->peak_memory = read_number(cg->memory_dir, "memory.max_usage_in_bytes");
		st->user_us = read_number(cg->cpu_dir, "cpuacct.usage_user") / 1000u;
		st->sys_us = read_number(cg->cpu_dir, "cpuacct.usage_sys") / 1000u;
	}
	st->pids_refused = read_keyed(cg->pids_dir, "pids.events", "max") > 0;
}

/* The sweep of one directory PARENT (see sandbox_cgroup_sweep). */
static int sweep_dir(const char *parent, const char *prefix, unsigned *removed)
{
	size_t plen = strlen(prefix);
	struct dirent *e;
	DIR *dir;
	int rc = 0, r;

	dir = opendir(parent);
	if (!dir)
		return errno == ENOENT ? 0 : -errno;
	while ((e = readdir(dir))) {
		char path[4096], *end;
		long pid;

		if (strncmp(e->d_name, prefix, plen) != 0)
			continue;
		errno = 0;
		pid = strtol(e->d_name + plen, &end, 10);
		if (errno || end == e->d_name + plen || *end != '-' || pid <= 0 || pid > INT32_MAX)
			continue;
		/* Alive (or not ours to signal): its runs may be this process's or another's. */
		if (kill((pid_t)pid, 0) == 0 || errno != ESRCH)
			continue;
		if ((size_t)snprintf(path, sizeof(path), "%s/%s", parent, e->d_name) >= sizeof(path))
			continue;
		r = rmdir(path);
		if (r < 0 && errno == EBUSY) {
			(void)kill_members(path, e->d_name, 200);
			r = rmdir(path);
		}
		if (r == 0)
			(*removed)++;
		else if (errno != EBUSY && errno != ENOENT && errno != ENOTEMPTY && rc == 0)
			rc = -errno;
	}
	closedir(dir);
	return rc;
}

int sandbox_cgroup_sweep(const char *root, const char *prefix, unsigned *removed)
{
	static const char *const v1[] = { "memory", "pids", "cpuacct" };
	char *own = NULL, *parent = NULL, base[4096];
	int rc = 0, r;

	*removed = 0;
	if (!root)
		root = SANDBOX_CGROUP_DEFAULT_ROOT;
	if (root_is_unified(root)) {
		char *slash;
		if ((rc = own_cgroup_path(NULL, &own)) < 0)
			return rc;
		slash = strrchr(own, '/');
		if (slash && strcmp(slash + 1, SANDBOX_CGROUP_DAEMON_LEAF) == 0)
			*(slash == own ? slash + 1 : slash) = '\0';
		parent = cgroup_dir(root, own);
		rc = parent ? sweep_dir(parent, prefix, removed) : -ENOMEM;
		free(parent);
		free(own);
		return rc;
	}
	for (size_t i = 0; i < sizeof(v1) / sizeof(v1[0]); i++) {
		snprintf(base, sizeof(base), "%s/%s", root, v1[i]);
		if (own_cgroup_path(v1[i], &own) < 0)
			continue;   /* no such hierarchy here */
		parent = cgroup_dir(base, own);
		r = parent ? sweep_dir(parent, prefix, removed) : -ENOMEM;
		if (r < 0 && rc == 0)
			rc = r;
		free(parent);
		free(own);
		own = parent = NULL;
	}
	return rc;
}

void sandbox_cgroup_destroy(struct sandbox_cgroup *cg)
{
	int i, round;

	if (cg->n_dirs > 0)
		(void)sandbox_cgroup_kill_all(cg);
	for (i = cg->n_dirs - 1; i >= 0; i--) {
		if (cg->procs_fds[i] >= 0)
			close(cg->procs_fds[i]);
		/* A killed process leaves its cgroup a moment after it is reaped. */
		for (round = 0; round < 200 && rmdir(cg->dirs[i]) < 0 && errno == EBUSY; round++)
			nanosleep(&(struct timespec){ .tv_nsec = 5 * 1000 * 1000 }, NULL);
		free(cg->dirs[i]);
	}
	memset(cg, 0, sizeof(*cg));
	for (i = 0; i < SANDBOX_CGROUP_MAX_DIRS; i++)
		cg->procs_fds[i] = -1;
}
