/* The sandbox: run one untrusted command (rustc and the proc-macros it loads) with nothing of the
 * host to reach.
 *
 * One interface, three backends behind it, chosen by spec->backend: bubblewrap (BWRAP_PATH, the
 * default; what follows describes it), docker and kvm (sandbox/docker.h and sandbox/kvm.h say
 * what differs). A run gets:
 *   - fresh user, mount, pid, network (no interface but its own loopback), ipc, uts and cgroup
 *     namespaces; all capabilities dropped; a new session; it dies with the calling thread;
 *   - a root made only of the toolchain tree (TREE/rust at /rust, TREE/usr at /usr, /lib and
 *     /lib64 symlinks into it), the input tree at /cachepot, the extra binds, all read-only;
 *     /proc of its own pid namespace, a minimal read-only /dev, size-capped tmpfs at /tmp and
 *     /dev/shm, and a tmpfs of limits.output_bytes mounted on the host at output_host_dir and
 *     bound read-write at output_dest -- the only writable places;
 *   - a seccomp filter (EPERM for ptrace, the mount family, bpf, perf_event_open, keyctl,
 *     userfaultfd, kexec, module loading, new namespaces and setns, personality but its query
 *     form; EAFNOSUPPORT for sockets of any family but AF_UNIX);
 *   - a host uid and gid of its own, leased from SANDBOX_UID_FIRST.. for the run (sandbox.c
 *     says how): bwrap and the job run as it, and the output tmpfs is 0700 and owned by it;
 *   - rlimits (CPU, open files, processes of its uid, no core dumps), a per-run memory and
 *     pids cgroup (v2 where /sys/fs/cgroup is cgroup2: the caller is moved into a leaf,
 *     <own>/cachepot-daemon, and the runs' cgroups go beside it; else v1) or, only when the
 *     spec allows it, no cgroup; and a wall-clock timeout at which every process of the run
 *     is killed. Nothing of the run survives sandbox_run's return.
 * The environment is exactly spec->envp; stdin is /dev/null; stdout and stderr are captured.
 *
 * Thread-safe: no process-global state; the daemon calls sandbox_run from several threads.
 * Must run as root (it mounts the output tmpfs and creates cgroups).
 */
#ifndef CACHEPOT_SANDBOX_SANDBOX_H
#define CACHEPOT_SANDBOX_SANDBOX_H

#include <stddef.h>
#include <stdint.h>

/* The sandbox's ids: 65536 from 0x7C000000 (2080374784), in the range 1879048192..2147352575
 * that systemd leaves to nobody (its container ranges end below it, its foreign range starts
 * above it). The first is a group, SANDBOX_TREES_GID, that every run's bwrap has besides its
 * own: bwrap 0.8 turns the fds of the trees it binds back into paths (realpath, as the run's
 * uid), so a caller keeps its job trees in a directory 0710 root:SANDBOX_TREES_GID, which no
 * other uid can then enter. The others are the runs' uids (and gids, the same numbers), one
 * per run at a time. Nothing else may own any of them: sandbox_ids_check. */
#define SANDBOX_UID_FIRST 0x7C000000u
#define SANDBOX_UID_COUNT 65536u
#define SANDBOX_TREES_GID SANDBOX_UID_FIRST

#define SANDBOX_DOCKER_DEFAULT_SOCKET "/var/run/docker.sock"
/* The kvm backend's guest (contrib/kvm-guest.sh fills it) and its images (sandbox/kvm.c). */
#define SANDBOX_KVM_DEFAULT_DIR LOCALSTATEDIR "/lib/cachepot/kvm"

/* A read-only bind of host path HOST at DEST inside the sandbox. */
struct sandbox_bind {
	const char *host;
	const char *dest;
};

/* Limits of one run. A field left 0 takes the value sandbox_limits_default gives it. */
struct sandbox_limits {
	unsigned timeout_ms;     /* wall clock; the whole process tree is killed at it */
	unsigned cpu_seconds;    /* RLIMIT_CPU */
	uint64_t memory_bytes;   /* cgroup memory limit (+ RLIMIT_AS fallback if no cgroup) */
	unsigned max_processes;  /* cgroup pids.max */
	unsigned max_open_files; /* RLIMIT_NOFILE */
	uint64_t output_bytes;   /* size of the tmpfs at output_host_dir */
	uint64_t tmp_bytes;      /* size of the /tmp tmpfs */
	uint64_t shm_bytes;      /* size of the /dev/shm tmpfs */
	size_t capture_bytes;    /* max captured stdout and stderr each; the rest dropped, flagged */
};

/* Which sandbox runs a spec. The job sees the same tree at the same paths in each. */
enum sandbox_backend {
	SANDBOX_BACKEND_BWRAP = 0, /* bubblewrap, the default */
	SANDBOX_BACKEND_DOCKER,    /* a fresh container per run, through dockerd (sandbox/docker.h) */
	SANDBOX_BACKEND_KVM,       /* a QEMU microvm per run (sandbox/kvm.h) */
};

/* The backend named NAME ("bwrap", "docker" or "kvm"): 0 with *BACKEND set, or -EINVAL. */
int sandbox_backend_parse(const char *name, enum sandbox_backend *backend)
    __attribute__((warn_unused_result));

/* The name sandbox_backend_parse takes for BACKEND. */
const char *sandbox_backend_name(enum sandbox_backend backend);

/* A toolchain tree, the directory spec->toolchain_dir names (hash/toolchain.c computes its id,
 * the daemon unpacks uploads into one, tests/sandbox/make-toolchain.sh builds one for the tests):
 *   rust/bin/rustc                         rustc, run as ROOT_RUSTC (/rust/bin/rustc)
 *   rust/lib/<lib>.so*                     the sysroot's shared libraries (librustc_driver, std)
 *   rust/lib/rustlib/<host>/lib/...        the sysroot's crates (rlib, rmeta, so)
 *   usr/<dir>/<soname>                     the ldd closure of the above, each under the directory
 *                                          its host copy lives in, /usr/ dropped (e.g.
 *                                          usr/lib/x86_64-linux-gnu/libc.so.6)
 *   usr/lib64/ld-linux-x86-64.so.2         the dynamic loader
 * Only directories and regular files, modes 0644 or 0755. rust/ is bound at /rust and usr/ at
 * /usr; /lib and /lib64 are symlinks to usr/lib and usr/lib64, so the loader's and rustc's
 * absolute library paths resolve inside it. sandbox_run only opens rust/ and usr/; what lies
 * in them is the tree builder's promise. */
struct sandbox_spec {
	const char *toolchain_dir;   /* a toolchain tree (above), required */
	int toolchain_without_rust;  /* the tree has usr/ alone (a C part, hash/toolchain.h):
	                                nothing is bound at /rust */
	const char *input_dir;       /* host dir bound read-only at /cachepot (may be NULL) */
	const char *output_host_dir; /* host dir (existing, empty): sandbox_run mounts a tmpfs of
	                                limits.output_bytes on it and binds it read-write at
	                                output_dest; may be NULL (then no output dir) */
	const char *output_dest;     /* e.g. "/cachepot/out"; required with output_host_dir */
	const struct sandbox_bind *binds; /* extra read-only binds (tests), after the input dir */
	size_t n_binds;
	const char *cwd;     /* inside the sandbox; NULL means "/" */
	char *const *argv;   /* argv[0] absolute inside the sandbox, e.g. /rust/bin/rustc */
	char *const *envp;   /* the complete environment; nothing is inherited; NULL = empty */
	struct sandbox_limits limits;
	/* Where the cgroup file systems are: NULL is /sys/fs/cgroup (tests pass a scratch cgroup2
	 * mount). A run whose memory and pids limits cannot be set there fails with -ENOTSUP,
	 * unless allow_no_cgroup_limits: then it has rlimits alone (RLIMIT_AS for memory). */
	const char *cgroup_root;
	int allow_no_cgroup_limits;
	enum sandbox_backend backend;
	/* docker only: dockerd's API socket (NULL: SANDBOX_DOCKER_DEFAULT_SOCKET), and the name
	 * the toolchain's image is tagged by, [0-9a-z_.-]{1,128} (the toolchain id; NULL or
	 * another form: one made of the tree directory's device, inode and change time). */
	const char *docker_socket;
	const char *toolchain_id; /* docker and kvm: names the toolchain's image */
	/* docker only: who runs the container, [0-9a-z]{1,64} (cachepotd: its store's public key in
	 * hex), put in the label cachepot.owner so that sandbox_docker_sweep finds what a crash
	 * of that owner left behind; NULL: the label is "none". */
	const char *docker_owner;
	/* kvm only: the guest's directory (NULL: SANDBOX_KVM_DEFAULT_DIR), and whether QEMU may
	 * emulate (TCG) when there is no /dev/kvm (else such a run fails with -ENODEV). */
	const char *kvm_dir;
	int kvm_allow_tcg;
};

struct sandbox_result {
	int exited;      /* 1 when the command exited (exit_status valid), as WIFEXITED */
	int exit_status; /* bubblewrap reports a job killed by signal S as exit status 128+S */
	int term_signal; /* signal that ended the run (SIGKILL at the timeout), else 0 */
	int timed_out;
	int memory_exceeded;  /* the memory cgroup's OOM killer killed a process of the run */
	int pids_exceeded;    /* a fork failed at pids.max */
	int output_truncated; /* stdout or stderr was longer than capture_bytes */
	char *out;            /* captured stdout, NUL-terminated, owned (sandbox_result_release) */
	size_t out_len;
	char *err; /* captured stderr, NUL-terminated, owned */
	size_t err_len;
	/* Resource use: from the run's cgroup when it has one (CPU time of every process of the
	 * run; max_rss_kb is then the peak memory charged to it, page cache and tmpfs included),
	 * else from wait4 of bwrap. */
	uint64_t wall_us, user_us, sys_us, max_rss_kb;
	unsigned uid;                /* the host uid (and gid) the run had */
	struct sandbox_hold *hold;   /* the uid's lease and the output fd; internal */
};

/* Run SPEC and fill RESULT (which the caller then releases with sandbox_result_release, in
 * every case). Returns 0 when the job ran, whatever its status; -errno when the sandbox could
 * not be set up (bad spec: -EINVAL; no cgroup limits and the spec does not allow that:
 * -ENOTSUP; bubblewrap, or dockerd, failed before starting the command: -EIO, with its
 * message in RESULT->err). On error the output tmpfs is not left mounted, and with docker no
 * container is left. */
int sandbox_run(const struct sandbox_spec *spec, struct sandbox_result *result)
    __attribute__((warn_unused_result));

/* Free what RESULT owns and zero it: after it, the run's uid may go to another run. Safe on a
 * zeroed or already released result. */
void sandbox_result_release(struct sandbox_result *result);

/* A new O_RDONLY|O_DIRECTORY|O_CLOEXEC fd of the output tmpfs's root, opened before the job
 * ran: the outputs are to be collected through it (it is that tmpfs whatever output_host_dir
 * shows since, and the path is not walked again). The caller closes it; valid from
 * sandbox_run's success to sandbox_result_release. -ENOENT when the run had no output dir. */
int sandbox_result_output_fd(const struct sandbox_result *result)
    __attribute__((warn_unused_result));

/* After collecting outputs: unmount the tmpfs on OUTPUT_HOST_DIR (its files are gone once the
 * result is released too: its fd keeps a detached tmpfs until then). 0 or -errno (-EINVAL
 * when nothing is mounted there). */
int sandbox_output_release(const char *output_host_dir);

/* Whether dockerd answers on SOCKET (NULL: SANDBOX_DOCKER_DEFAULT_SOCKET): 0 with its version
 * in MSG; -errno with the reason in MSG (a sentence). For a start-up check and the tests. */
int sandbox_docker_check(const char *socket, char *msg, size_t msglen)
    __attribute__((warn_unused_result));

/* Remove every container (with its volumes) labelled cachepot.owner=OWNER on SOCKET: what a
 * cachepotd of that store that was killed mid-run left behind. Call it before any run of OWNER
 * starts. 0 with *REMOVED set, or -errno with the reason in MSG (a sentence). */
int sandbox_docker_sweep(const char *socket, const char *owner, unsigned *removed, char *msg,
			 size_t msglen) __attribute__((warn_unused_result));

/* Whether the kvm backend can run here with the guest in DIR (NULL: SANDBOX_KVM_DEFAULT_DIR):
 * QEMU and mke2fs installed, the guest's kernel, init and modules there, and /dev/kvm usable
 * or ALLOW_TCG. 0 with what runs in MSG; -errno with the reason in MSG (a sentence; -ENODEV:
 * no /dev/kvm and TCG not allowed). For a start-up check and the tests. */
int sandbox_kvm_check(const char *dir, int allow_tcg, char *msg, size_t msglen)
    __attribute__((warn_unused_result));

/* Whether runs can have memory and pids limits under CGROUP_ROOT (NULL: /sys/fs/cgroup): a
 * cgroup is made with both limits and removed again (on cgroup v2 this moves the caller into
 * its leaf, see sandbox_run). 0 with what was found in MSG; -ENOTSUP with the reason and the
 * way out in MSG (a sentence); another -errno on failure. For a start-up check. */
int sandbox_limits_check(const char *cgroup_root, char *msg, size_t msglen)
    __attribute__((warn_unused_result));

/* Remove the cgroups that the runs of a killed process left under CGROUP_ROOT (NULL:
 * /sys/fs/cgroup): those whose creator's pid is no process any more, killing what is still
 * in them (sandbox/cgroup.h, sandbox_cgroup_sweep). *REMOVED counts them. 0 or -errno (the first
 * directory that could not be read). For a start-up sweep, after sandbox_limits_check. */
int sandbox_cgroups_sweep(const char *cgroup_root, unsigned *removed)
    __attribute__((warn_unused_result));

/* 0 when no user or group of the system's databases (getpwent, getgrent) has an id of
 * SANDBOX_UID_FIRST..+SANDBOX_UID_COUNT; else -EEXIST with the first such name in MSG (a
 * sentence). For a start-up check: not thread-safe. */
int sandbox_ids_check(char *msg, size_t msglen) __attribute__((warn_unused_result));

/* Fill LIMITS with the defaults: 10 min wall, 10 min CPU, 4 GiB memory, 256 processes, 1024
 * open files, 1 GiB output, 256 MiB /tmp, 16 MiB /dev/shm, 16 MiB captured per stream. */
void sandbox_limits_default(struct sandbox_limits *limits);

#endif
