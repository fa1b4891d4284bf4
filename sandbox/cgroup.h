/* Per-run cgroups of the sandbox (memory and pids limits, and a handle on every process of a
 * run), internal to sandbox/ (and its tests).
 *
 * A run's cgroup is created below the calling process's own cgroup (so the limits the
 * daemon's service manager set still cover it), under a cgroup file system root (ROOT,
 * SANDBOX_CGROUP_DEFAULT_ROOT when NULL; tests pass a scratch mount):
 *   - cgroup v2 when ROOT is a cgroup2 mount: beside the leaf the calling process is moved
 *     into, <own>/SANDBOX_CGROUP_DAEMON_LEAF, with memory and pids enabled in <own> (see
 *     sandbox_cgroup_v2_delegate); a service needs Delegate=yes for it;
 *   - else the v1 hierarchies ROOT/memory and ROOT/pids (ROOT/cpuacct if there).
 * When that does not work the run has no cgroup (sandbox_cgroup_create returns -ENOTSUP).
 */
#ifndef CACHEPOT_SANDBOX_CGROUP_H
#define CACHEPOT_SANDBOX_CGROUP_H

#include <stdint.h>

#define SANDBOX_CGROUP_MAX_DIRS 3
#define SANDBOX_CGROUP_DEFAULT_ROOT "/sys/fs/cgroup"
#define SANDBOX_CGROUP_DAEMON_LEAF "cachepot-daemon"

struct sandbox_cgroup {
	int version;                            /* 1 or 2; 0 when none */
	char *dirs[SANDBOX_CGROUP_MAX_DIRS];     /* created directories (v1: memory, pids) */
	int procs_fds[SANDBOX_CGROUP_MAX_DIRS];  /* cgroup.procs of each, O_WRONLY|O_CLOEXEC */
	int n_dirs;
	char *memory_dir; /* borrowed from dirs: where memory.* lives */
	char *pids_dir;   /* borrowed from dirs: where pids.* and the run's processes are listed */
	char *cpu_dir;    /* borrowed from dirs: CPU time (v1 cpuacct, optional; v2 cpu.stat) */
};

/* Create the cgroups of one run named NAME (unique per run) with the given limits, under ROOT
 * (above). On success CG owns directories and fds; release with sandbox_cgroup_destroy. -errno
 * (-ENOTSUP: no usable hierarchy, or the controllers are not ours to give) on failure, with
 * nothing left behind (but the v2 leaf move, which stays). */
int sandbox_cgroup_create(struct sandbox_cgroup *cg, const char *root, const char *name,
			  uint64_t memory_bytes, unsigned max_processes)
    __attribute__((warn_unused_result));

/* Cgroup v2 at ROOT (a cgroup2 mount): make the controllers CONTROLLERS ("memory pids") usable
 * by new cgroups in the calling process's cgroup, or in its parent when the process is in a
 * leaf named SANDBOX_CGROUP_DAEMON_LEAF. When enabling them answers EBUSY (the cgroup has
 * processes: v2's no-internal-process rule), the whole process moves into that leaf first.
 * On success *PARENT (malloc'd, the caller frees) is the directory new cgroups go in. -errno:
 * -ENOENT when a controller is not available there, -EBUSY when other processes than ours
 * share the cgroup. Thread-safe (every step is idempotent). */
int sandbox_cgroup_v2_delegate(const char *root, const char *controllers, char **parent)
    __attribute__((warn_unused_result));

/* In a forked child before exec: move the calling process into every cgroup of CG (writes "0"
 * to the open cgroup.procs fds). Async-signal-safe. 0 or -errno. */
int sandbox_cgroup_enter_self(const struct sandbox_cgroup *cg);

/* Kill every process in the run's cgroup and wait (bounded, about 2 s) until it is empty: new
 * forks are stopped first by lowering pids.max to 0. 0 when empty, -EBUSY if not. */
int sandbox_cgroup_kill_all(struct sandbox_cgroup *cg);

/* Usage and events of the run so far. */
struct sandbox_cgroup_stats {
	int oom_killed;       /* the OOM killer killed a process of the run */
	int pids_refused;     /* a fork failed at pids.max */
	uint64_t peak_memory; /* bytes charged at most (0 if unknown) */
	uint64_t user_us, sys_us; /* CPU time of every process of the run (0 if unknown) */
};
void sandbox_cgroup_stats(const struct sandbox_cgroup *cg, struct sandbox_cgroup_stats *st);

/* Remove the cgroups named PREFIX<pid>-... in the directories where this process makes its
 * runs' (under ROOT, NULL: SANDBOX_CGROUP_DEFAULT_ROOT; v2: beside the leaf, v1: in each of
 * memory, pids, cpuacct) whose <pid> is no process: what a daemon killed with runs in flight
 * left (a SIGKILL skips sandbox_cgroup_destroy). Most of its runs' processes die with it
 * (bwrap --die-with-parent), but not all: a bwrap process whose daemon died while it set
 * the sandbox up can stay blocked for ever reading an eventfd, with no child, holding the
 * job's trees (seen with bwrap 0.8.0: 6 of 25 kills in one run under load).
 * So the processes still in such a cgroup are killed (each checked to be a member through a
 * pidfd) before it is removed. A cgroup whose pid is alive is left, whatever process that is
 * now. *REMOVED counts the directories removed. 0, or -errno when a directory could not be
 * read or a cgroup removed (the others are still swept). */
int sandbox_cgroup_sweep(const char *root, const char *prefix, unsigned *removed)
    __attribute__((warn_unused_result));

/* Kill what is left, remove the directories and close the fds. Safe on a zeroed CG. */
void sandbox_cgroup_destroy(struct sandbox_cgroup *cg);

#endif
