/* The bubblewrap sandbox with real bwrap and real rustc (issue 4's "Must show").
 *
 * Needs root, BWRAP_PATH and the machine's rustc. main() builds the toolchain tree (through
 * tests/sandbox/make-toolchain.sh, shared between runs) and the hostile proc-macro
 * tests/sandbox/escape.rs with the host's rustc, outside any sandbox. Each escape test then
 * compiles, inside a fresh sandbox, a crate that invokes one attempt of that macro, and checks
 * both what the macro reports (stderr: "ATTEMPT name: contained|ESCAPED ...") and the host side
 * (listener, canaries, trees, surviving processes).
 */
#include "config.h"

#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <grp.h>
#include <pthread.h>
#include <unistd.h>

#include "base/roots.h"
#include "sandbox/cgroup.h"
#include "sandbox/sandbox.h"

/* Paths here are a build directory plus short suffixes; a truncated one fails its test. */
#pragma GCC diagnostic ignored "-Wformat-truncation"

/* Test-program state, set once in main. */
static char toolchain[PATH_MAX];
static char base[PATH_MAX];   /* per-run scratch directory */
static char macro_so[PATH_MAX];
static char registry[PATH_MAX] = "/usr/share/cargo/registry";
static enum sandbox_backend backend; /* CACHEPOT_TEST_SANDBOX: bwrap (default), docker, kvm */
static const char *kvm_dir;          /* CACHEPOT_KVM_DIR: the kvm backend's guest */
static int kvm_allow_tcg;            /* CACHEPOT_KVM_ALLOW_TCG=1: no /dev/kvm needed */

static int run_cmd(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int run_cmd(const char *fmt, ...)
{
	char cmd[8192];
	va_list ap;
	int st;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	st = system(cmd);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* A job's directories under BASE/NAME: in/ (bound at /cachepot) and out/ (output tmpfs). */
struct job_dirs {
	char root[PATH_MAX], input[PATH_MAX], output[PATH_MAX];
	char crate_name[64];
};

static void job_dirs_init(struct job_dirs *d, const char *name)
{
	static unsigned counter; /* test program only */

	snprintf(d->root, sizeof(d->root), "%s/%s-%u", base, name, counter++);
	snprintf(d->input, sizeof(d->input), "%s/in", d->root);
	snprintf(d->output, sizeof(d->output), "%s/out", d->root);
	snprintf(d->crate_name, sizeof(d->crate_name), "victim_%d_%u", (int)getpid(), counter);
	ck_assert_int_eq(run_cmd("mkdir -p '%s/cwd' '%s/deps' '%s/out' '%s' && cp '%s' '%s/deps/'",
				 d->input, d->input, d->input, d->output, macro_so, d->input), 0);
}

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "we");
	ck_assert_ptr_nonnull(f);
	fputs(text, f);
	ck_assert_int_eq(fclose(f), 0);
}

static void spec_init(struct sandbox_spec *spec, const struct job_dirs *d, char **argv)
{
	static char *envp[] = { "PATH=" ROOT_SYSROOT "/bin", "LANG=C", "CACHEPOT_JOB=1", NULL };

	memset(spec, 0, sizeof(*spec));
	spec->backend = backend;
	spec->kvm_dir = kvm_dir;
	spec->kvm_allow_tcg = kvm_allow_tcg;
	spec->toolchain_dir = toolchain;
	spec->input_dir = d->input;
	spec->output_host_dir = d->output;
	spec->output_dest = ROOT_OUT;
	spec->cwd = ROOT_CWD;
	spec->argv = argv;
	spec->envp = envp;
	spec->limits.timeout_ms = 60000;
	spec->limits.memory_bytes = 1ull << 30;
	spec->limits.max_processes = 64;
}

/* Compile /cachepot/cwd/lib.rs (SOURCE) with the escape macro in a fresh sandbox. */
static int run_victim(const struct job_dirs *d, const char *source,
		      const struct sandbox_limits *limits, struct sandbox_result *r)
{
	char path[PATH_MAX + 16], ext[PATH_MAX];
	struct sandbox_spec spec;
	int rc;
	char *argv[] = { ROOT_RUSTC, "--edition=2021", "--crate-type", "lib",
			 "--crate-name", (char *)d->crate_name, "--extern", ext,
			 "--out-dir", ROOT_OUT, "lib.rs", NULL };

	snprintf(ext, sizeof(ext), "escape=" ROOT_INPUTS "/deps/libescape.so");
	snprintf(path, sizeof(path), "%s/cwd/lib.rs", d->input);
	if (source) /* NULL: lib.rs is in place already */
		write_file(path, source);
	spec_init(&spec, d, argv);
	if (limits)
		spec.limits = *limits;
	rc = sandbox_run(&spec, r);
	(void)sandbox_output_release(d->output);
	return rc;
}

static unsigned count_lines(const char *text, const char *prefix)
{
	unsigned n = 0;
	const char *p = text;

	while ((p = strstr(p, prefix))) {
		n++;
		p += strlen(prefix);
	}
	return n;
}

/* The macro ran (the crate compiled), reported at least MIN contained checks, no escape. */
static void assert_contained(const struct sandbox_result *r, const char *name, unsigned min)
{
	char prefix[128];

	snprintf(prefix, sizeof(prefix), "ATTEMPT %s: contained", name);
	ck_assert_msg(r->exited && r->exit_status == 0, "compile failed (%d/%d): %s", r->exited,
		      r->exit_status, r->err);
	ck_assert_msg(!strstr(r->err, "ESCAPED"), "escape: %s", r->err);
	ck_assert_msg(count_lines(r->err, prefix) >= min, "%u < %u contained lines for %s: %s",
		      count_lines(r->err, prefix), min, name, r->err);
}

/* No process on the host has MARKER in its command line. */
static int processes_with(const char *marker)
{
	DIR *dir = opendir("/proc");
	struct dirent *e;
	int n = 0;

	ck_assert_ptr_nonnull(dir);
	while ((e = readdir(dir))) {
		char path[64], buf[4096];
		ssize_t len;
		int fd;
		if (e->d_name[0] < '0' || e->d_name[0] > '9')
			continue;
		snprintf(path, sizeof(path), "/proc/%s/cmdline", e->d_name);
		fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			continue;
		len = read(fd, buf, sizeof(buf) - 1);
		close(fd);
		if (len <= 0)
			continue;
		for (ssize_t i = 0; i < len; i++)
			if (buf[i] == '\0')
				buf[i] = ' ';
		buf[len] = '\0';
		if (strstr(buf, marker))
			n++;
	}
	closedir(dir);
	return n;
}

/* A fingerprint of a tree: every entry's path, type, mode, size, mtime, and for small regular
 * files their content. Two equal fingerprints mean nothing was added, removed or modified. */
static char *fingerprint_buf;
static size_t fingerprint_len;
static int fingerprint_entry(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	char line[PATH_MAX + 256];
	int n;

	(void)ftw;
	n = snprintf(line, sizeof(line), "%s %d %o %lld %lld.%09ld\n", path, type, st->st_mode,
		     (long long)st->st_size, (long long)st->st_mtim.tv_sec, st->st_mtim.tv_nsec);
	fingerprint_buf = realloc(fingerprint_buf, fingerprint_len + (size_t)n + 1);
	memcpy(fingerprint_buf + fingerprint_len, line, (size_t)n + 1);
	fingerprint_len += (size_t)n;
	if (type == FTW_F && st->st_size < 65536) {
		int fd = open(path, O_RDONLY | O_CLOEXEC);
		ssize_t got;
		if (fd >= 0) {
			fingerprint_buf = realloc(fingerprint_buf, fingerprint_len + 65536 + 1);
			got = read(fd, fingerprint_buf + fingerprint_len, 65536);
			if (got > 0)
				fingerprint_len += (size_t)got;
			fingerprint_buf[fingerprint_len] = '\0';
			close(fd);
		}
	}
	return 0;
}

static char *fingerprint(const char *dir)
{
	char *fp;

	fingerprint_buf = calloc(1, 1);
	fingerprint_len = 0;
	ck_assert_int_eq(nftw(dir, fingerprint_entry, 32, FTW_PHYS), 0);
	fp = fingerprint_buf;
	fingerprint_buf = NULL;
	return fp;
}

/* ---------------------------------------------------------------------------------------- */

START_TEST(test_invalid_spec)
{
	struct sandbox_spec spec;
	struct sandbox_result r;
	struct sandbox_limits lim;
	char *argv[] = { "rustc", NULL };

	memset(&spec, 0, sizeof(spec));
	spec.backend = backend;
	ck_assert_int_eq(sandbox_run(&spec, &r), -EINVAL);
	sandbox_result_release(&r);
	spec.toolchain_dir = toolchain;
	spec.argv = argv; /* not absolute */
	ck_assert_int_eq(sandbox_run(&spec, &r), -EINVAL);
	sandbox_result_release(&r);
	argv[0] = ROOT_RUSTC;
	spec.cwd = ROOT_INPUTS "/../etc";
	ck_assert_int_eq(sandbox_run(&spec, &r), -EINVAL);
	sandbox_result_release(&r);
	sandbox_limits_default(&lim);
	ck_assert_uint_gt(lim.timeout_ms, 0);
	ck_assert_uint_gt(lim.capture_bytes, 0);
}
END_TEST

START_TEST(test_rustc_version_and_capture)
{
	struct job_dirs d;
	struct sandbox_spec spec;
	struct sandbox_result r;
	char *argv[] = { ROOT_RUSTC, "-vV", NULL };

	job_dirs_init(&d, "version");
	spec_init(&spec, &d, argv);
	ck_assert_int_eq(sandbox_run(&spec, &r), 0);
	ck_assert_int_eq(sandbox_output_release(d.output), 0);
	ck_assert_msg(r.exited && r.exit_status == 0, "%s", r.err);
	ck_assert_msg(strncmp(r.out, "rustc 1.", 8) == 0, "%s", r.out);
	ck_assert_ptr_nonnull(strstr(r.out, "host: x86_64"));
	ck_assert_int_eq(r.output_truncated, 0);
	ck_assert_uint_gt(r.wall_us, 0);
	sandbox_result_release(&r);

	/* capture_bytes caps stdout; the rest is dropped and flagged */
	spec.limits.capture_bytes = 10;
	ck_assert_int_eq(sandbox_run(&spec, &r), 0);
	ck_assert_int_eq(sandbox_output_release(d.output), 0);
	ck_assert_uint_eq(r.out_len, 10);
	ck_assert_int_eq(r.output_truncated, 1);
	ck_assert_str_eq(r.out, "rustc 1.95");
	sandbox_result_release(&r);

	/* a failing command: status, not an error */
	argv[1] = "--no-such-flag";
	spec.limits.capture_bytes = 0;
	ck_assert_int_eq(sandbox_run(&spec, &r), 0);
	ck_assert_int_eq(sandbox_output_release(d.output), 0);
	ck_assert_int_eq(r.exited, 1);
	ck_assert_int_ne(r.exit_status, 0);
	ck_assert_ptr_nonnull(strstr(r.err, "no-such-flag"));
	sandbox_result_release(&r);

	/* a command that does not exist in the sandbox: the backend's own failure, -EIO */
	argv[0] = "/bin/sh";
	argv[1] = NULL;
	ck_assert_int_eq(sandbox_run(&spec, &r), -EIO);
	ck_assert_msg(strstr(r.err, backend == SANDBOX_BACKEND_DOCKER ? "dockerd"
				    : backend == SANDBOX_BACKEND_KVM  ? "execve /bin/sh"
								      : "bwrap"),
		      "%s", r.err);
	sandbox_result_release(&r);
	ck_assert_int_eq(sandbox_output_release(d.output), -EINVAL); /* not left mounted */
}
END_TEST

/* A real crate of the corpus (cfg-if, no dependencies) compiled at canonical paths in two
 * fresh sandboxes: the rlib is byte-identical, the inputs unchanged. */
START_TEST(test_real_crate_reproducible)
{
	struct job_dirs d[2];
	struct sandbox_spec spec;
	struct sandbox_result r;
	char *fp_before, *fp_after, path[2][PATH_MAX + 64];
	char *argv[] = { ROOT_RUSTC, "--crate-name", "cfg_if", "--edition=2018",
			 "src/lib.rs", "--error-format=json",
			 "--json=diagnostic-rendered-ansi,artifacts,future-incompat",
			 "--crate-type", "lib", "--emit=dep-info,metadata,link",
			 "-C", "embed-bitcode=no", "-C", "debuginfo=2",
			 "-C", "metadata=5c0f5ae0ab1e2d11", "-C", "extra-filename=-5c0f5ae0ab1e2d11",
			 "--out-dir", ROOT_OUT, "--cap-lints", "allow", NULL };

	for (int i = 0; i < 2; i++) {
		job_dirs_init(&d[i], "cfg-if");
		ck_assert_int_eq(run_cmd("mkdir -p '%s/registry' && cp -RL '%s/cfg-if-1.0.0' "
					 "'%s/registry/'", d[i].input, registry, d[i].input), 0);
		fp_before = fingerprint(d[i].input);
		spec_init(&spec, &d[i], argv);
		spec.cwd = ROOT_REGISTRY "/cfg-if-1.0.0";
		ck_assert_int_eq(sandbox_run(&spec, &r), 0);
		ck_assert_msg(r.exited && r.exit_status == 0, "%s", r.err);
		ck_assert_ptr_nonnull(strstr(r.err, "\"artifact\""));
		sandbox_result_release(&r);
		snprintf(path[i], sizeof(path[i]), "%s/libcfg_if-5c0f5ae0ab1e2d11.rlib",
			 d[i].root);
		ck_assert_int_eq(run_cmd("cp '%s/libcfg_if-5c0f5ae0ab1e2d11.rlib' '%s/libcfg_if-"
					 "5c0f5ae0ab1e2d11.rmeta' '%s/cfg_if-5c0f5ae0ab1e2d11.d' "
					 "'%s/'", d[i].output, d[i].output, d[i].output, d[i].root),
				 0);
		ck_assert_int_eq(sandbox_output_release(d[i].output), 0);
		fp_after = fingerprint(d[i].input);
		ck_assert_str_eq(fp_before, fp_after);
		free(fp_before);
		free(fp_after);
	}
	ck_assert_int_eq(run_cmd("cmp -s '%s' '%s'", path[0], path[1]), 0);
	ck_assert_int_eq(run_cmd("cmp -s '%s/libcfg_if-5c0f5ae0ab1e2d11.rmeta' "
				 "'%s/libcfg_if-5c0f5ae0ab1e2d11.rmeta'", d[0].root, d[1].root), 0);
	/* the dep-info names canonical paths only */
	ck_assert_int_eq(run_cmd("grep -q '^/cachepot/out/libcfg_if-5c0f5ae0ab1e2d11.rlib: "
				 "src/lib.rs' '%s/cfg_if-5c0f5ae0ab1e2d11.d'", d[0].root), 0);
}
END_TEST

START_TEST(test_escape_connect_loopback)
{
	struct job_dirs d;
	struct sandbox_result r;
	struct sockaddr_in addr = { .sin_family = AF_INET,
				    .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(addr);
	char src[256];
	int ls;

	ls = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	ck_assert_int_ge(ls, 0);
	ck_assert_int_eq(bind(ls, (struct sockaddr *)&addr, sizeof(addr)), 0);
	ck_assert_int_eq(listen(ls, 16), 0);
	ck_assert_int_eq(getsockname(ls, (struct sockaddr *)&addr, &len), 0);
	snprintf(src, sizeof(src), "escape::attempt!(\"connect\", \"127.0.0.1:%u\");\n",
		 ntohs(addr.sin_port));
	job_dirs_init(&d, "connect");
	ck_assert_int_eq(run_victim(&d, src, NULL, &r), 0);
	assert_contained(&r, "connect", 2);
	sandbox_result_release(&r);
	/* the listener saw nothing */
	ck_assert_int_lt(accept(ls, NULL, NULL), 0);
	ck_assert_int_eq(errno, EAGAIN);
	close(ls);
}
END_TEST

START_TEST(test_escape_resolve)
{
	struct job_dirs d;
	struct sandbox_result r;

	job_dirs_init(&d, "resolve");
	ck_assert_int_eq(run_victim(&d, "escape::attempt!(\"resolve\", \"deb.debian.org\");\n",
				    NULL, &r), 0);
	assert_contained(&r, "resolve", 2);
	ck_assert_ptr_nonnull(strstr(r.err, "deb.debian.org: "));
	sandbox_result_release(&r);
}
END_TEST

START_TEST(test_escape_read_canaries)
{
	struct job_dirs d;
	struct sandbox_result r;
	char root_canary[64], tmp_canary[64], src[512];

	snprintf(root_canary, sizeof(root_canary), "/root/cachepot-canary-%d", (int)getpid());
	snprintf(tmp_canary, sizeof(tmp_canary), "/tmp/cachepot-canary-%d", (int)getpid());
	write_file(root_canary, "secret in /root\n");
	write_file(tmp_canary, "secret in /tmp\n");
	snprintf(src, sizeof(src),
		 "escape::attempt!(\"read\", \"%s\", \"%s\", \"/etc/shadow\", \"/etc/passwd\", "
		 "\"/home\", \"/var/lib/cachepot\", \"/root/.cargo/bin/rustc\");\n",
		 root_canary, tmp_canary);
	job_dirs_init(&d, "read");
	ck_assert_int_eq(run_victim(&d, src, NULL, &r), 0);
	unlink(root_canary);
	unlink(tmp_canary);
	assert_contained(&r, "read", 7);
	sandbox_result_release(&r);
}
END_TEST

START_TEST(test_escape_write_trees)
{
	struct job_dirs d;
	struct sandbox_result r;
	char *tc_before, *tc_after, *in_before, *in_after;
	const char *src = "escape::attempt!(\"write\", \"/rust/bin/rustc\", \"/rust/evil\", "
			  "\"/rust/lib/evil.so\", \"/usr/lib/x86_64-linux-gnu/libc.so.6\", "
			  "\"/usr/evil\", \"/lib64/evil\", \"/cachepot/cwd/lib.rs\", "
			  "\"/cachepot/evil\", \"/cachepot/deps/libescape.so\", \"/evil\", "
			  "\"/proc/evil\", \"/dev/evil\", \"/dev/pts/evil\");\n";

	job_dirs_init(&d, "write");
	tc_before = fingerprint(toolchain);
	/* lib.rs is written by run_victim first: write it now so the fingerprint includes it */
	{
		char path[PATH_MAX + 16];
		snprintf(path, sizeof(path), "%s/cwd/lib.rs", d.input);
		write_file(path, src);
	}
	in_before = fingerprint(d.input);
	ck_assert_int_eq(run_victim(&d, NULL, NULL, &r), 0);
	assert_contained(&r, "write", 13);
	sandbox_result_release(&r);
	tc_after = fingerprint(toolchain);
	in_after = fingerprint(d.input);
	ck_assert_msg(strcmp(tc_before, tc_after) == 0, "toolchain tree changed");
	ck_assert_msg(strcmp(in_before, in_after) == 0, "input tree changed");
	free(tc_before);
	free(tc_after);
	free(in_before);
	free(in_after);
}
END_TEST

START_TEST(test_escape_leave_for_next_job)
{
	struct job_dirs d;
	struct sandbox_result r;
	const char *paths = "\"/tmp/cachepot-left\", \"/cachepot/out/cachepot-left\", "
			    "\"/dev/shm/cachepot-left\", \"/dev/cachepot-left\", "
			    "\"/cachepot-left\"";
	char src[512], host_path[PATH_MAX + 32];

	job_dirs_init(&d, "leave");
	snprintf(src, sizeof(src), "escape::attempt!(\"leave\", %s);\n", paths);
	ck_assert_int_eq(run_victim(&d, src, NULL, &r), 0);
	ck_assert_msg(r.exited && r.exit_status == 0, "%s", r.err);
	/* the writable places took the files (so the next check means something) */
	ck_assert_ptr_nonnull(strstr(r.err, "LEFT /tmp/cachepot-left"));
	ck_assert_ptr_nonnull(strstr(r.err, "LEFT /cachepot/out/cachepot-left"));
	sandbox_result_release(&r);
	ck_assert_int_eq(access("/tmp/cachepot-left", F_OK), -1);
	snprintf(host_path, sizeof(host_path), "%s/cachepot-left", d.output);
	ck_assert_int_eq(access(host_path, F_OK), -1); /* output tmpfs released */

	/* the next job, with the same directories, finds none of them */
	snprintf(src, sizeof(src), "escape::attempt!(\"look\", %s);\n", paths);
	ck_assert_int_eq(run_victim(&d, src, NULL, &r), 0);
	assert_contained(&r, "look", 5);
	sandbox_result_release(&r);
}
END_TEST

/* /dev/shm is a tmpfs of limits.shm_bytes, not the /dev tmpfs (which has no size limit); /tmp
 * holds limits.tmp_bytes. */
START_TEST(test_escape_fill_shm_and_tmp)
{
	struct job_dirs d;
	struct sandbox_result r;
	struct sandbox_limits lim = { .timeout_ms = 60000, .memory_bytes = 1ull << 30,
				      .shm_bytes = 1u << 20, .tmp_bytes = 2u << 20 };

	job_dirs_init(&d, "fill");
	ck_assert_int_eq(run_victim(&d, "mod shm { escape::attempt!(\"fill\", \"/dev/shm/fill\", "
				    "\"8388608\"); }\nmod tmp { escape::attempt!(\"fill\", "
				    "\"/tmp/fill\", \"8388608\"); }\n",
				    &lim, &r), 0);
	assert_contained(&r, "fill", 2);
	/* writable (POSIX shared memory works) up to the cap, not merely refused */
	for (int i = 0; i < 2; i++) {
		const char *path = i == 0 ? "/dev/shm/fill: " : "/tmp/fill: ";
		uint64_t cap = i == 0 ? lim.shm_bytes : lim.tmp_bytes;
		const char *at = strstr(r.err, path);
		unsigned long long written;
		ck_assert_msg(at && sscanf(at + strlen(path), "%llu", &written) == 1, "%s", r.err);
		ck_assert_msg(written > 0 && written <= cap, "%s%llu bytes (cap %llu)", path, written,
			      (unsigned long long)cap);
	}
	sandbox_result_release(&r);
}
END_TEST

/* Try, as UID/GID (in a child), to open the output tmpfs and the file LEAF in it: 1 when every
 * attempt is refused. */
static int reachable_as(const char *output, const char *leaf, uid_t uid, gid_t gid)
{
	char path[PATH_MAX + 64];
	pid_t pid;
	int st;

	snprintf(path, sizeof(path), "%s/%s", output, leaf);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		int opened = 0;
		if (setgroups(0, NULL) < 0 || setresgid(gid, gid, gid) < 0 ||
		    setresuid(uid, uid, uid) < 0)
			_exit(2);
		opened |= open(output, O_RDONLY | O_DIRECTORY | O_CLOEXEC) >= 0;
		opened |= open(path, O_WRONLY | O_CLOEXEC) >= 0;
		opened |= open(path, O_RDONLY | O_CLOEXEC) >= 0;
		_exit(opened ? 1 : 0);
	}
	ck_assert_int_eq(waitpid(pid, &st, 0), pid);
	ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) != 2, "cannot become %u", (unsigned)uid);
	return WEXITSTATUS(st) == 1;
}

struct held_run {
	struct job_dirs d;
	struct sandbox_result r;
	int rc;
};

static void *held_run_main(void *arg)
{
	struct held_run *h = arg;

	h->rc = run_victim(&h->d, "escape::attempt!(\"hold\", \"libheld.rlib\", \"4000\");\n",
			   NULL, &h->r);
	return NULL;
}

/* A run has a uid of its own, not 65534 and not another run's; its output tmpfs can be opened
 * by no other uid while the run is on (65534, every "nobody" service, included); RLIMIT_NPROC
 * holds inside. */
START_TEST(test_output_private)
{
	struct held_run h;
	struct sandbox_result other;
	struct sandbox_spec spec;
	struct stat st;
	char held[PATH_MAX + 32], *argv[] = { ROOT_RUSTC, "-vV", NULL };
	unsigned long long nproc_soft, nproc_hard;
	const char *at;
	pthread_t t;
	int i;

	memset(&h, 0, sizeof(h));
	job_dirs_init(&h.d, "private");
	snprintf(held, sizeof(held), "%s/libheld.rlib", h.d.output);
	ck_assert_int_eq(pthread_create(&t, NULL, held_run_main, &h), 0);
	for (i = 0; i < 600 && stat(held, &st) < 0; i++)
		usleep(50 * 1000);
	ck_assert_msg(i < 600, "the run never left its output");

	/* while it runs: its uid, and no other uid reaches its output */
	ck_assert_uint_ne(st.st_uid, 65534);
	ck_assert_uint_ge(st.st_uid, SANDBOX_UID_FIRST + 1);
	ck_assert_uint_lt(st.st_uid, SANDBOX_UID_FIRST + SANDBOX_UID_COUNT);
	ck_assert_msg(!reachable_as(h.d.output, "libheld.rlib", 65534, 65534),
		      "uid 65534 can open the output of a run");
	ck_assert_msg(!reachable_as(h.d.output, "libheld.rlib", 1000, 1000),
		      "uid 1000 can open the output of a run");
	ck_assert_int_eq(stat(h.d.output, &st), 0);
	ck_assert_uint_eq(st.st_mode & 07777, 0700);

	/* a second run meanwhile gets another uid */
	spec_init(&spec, &h.d, argv);
	spec.input_dir = NULL;
	spec.output_host_dir = NULL;
	spec.output_dest = NULL;
	spec.cwd = NULL;
	ck_assert_int_eq(sandbox_run(&spec, &other), 0);
	ck_assert_msg(other.exited && other.exit_status == 0, "%s", other.err);
	ck_assert_uint_ne(other.uid, st.st_uid);
	ck_assert_uint_ge(other.uid, SANDBOX_UID_FIRST + 1);
	ck_assert_int_eq(sandbox_result_output_fd(&other), -ENOENT);
	sandbox_result_release(&other);

	ck_assert_int_eq(pthread_join(t, NULL), 0);
	ck_assert_int_eq(h.rc, 0);
	ck_assert_msg(h.r.exited && h.r.exit_status == 0, "%s", h.r.err);
	ck_assert_uint_eq(h.r.uid, st.st_uid);
	/* inside, the run is that uid, with RLIMIT_NPROC set (a little above pids.max) */
	at = strstr(h.r.err, "LIMIT Max processes");
	ck_assert_msg(at && sscanf(at + strlen("LIMIT Max processes"), "%llu %llu", &nproc_soft,
				   &nproc_hard) == 2, "%s", h.r.err);
	ck_assert_uint_ge(nproc_soft, 64);
	ck_assert_uint_le(nproc_soft, 64 + 64);
	ck_assert_uint_eq(nproc_soft, nproc_hard);
	sandbox_result_release(&h.r);
}
END_TEST

START_TEST(test_escape_fork_bomb)
{
	struct job_dirs d;
	struct sandbox_result r;
	struct sandbox_limits lim = { .timeout_ms = 4000, .max_processes = 48,
				      .memory_bytes = 1ull << 30 };

	/* kvm on TCG: rustc takes seconds to reach the macro, so the bomb needs longer to go off */
	if (backend == SANDBOX_BACKEND_KVM)
		lim.timeout_ms = 30000;
	job_dirs_init(&d, "forkbomb");
	ck_assert_int_eq(run_victim(&d, "escape::attempt!(\"forkbomb\");\n", &lim, &r), 0);
	ck_assert_msg(r.pids_exceeded, "pids.max never reached: %s", r.err);
	ck_assert_int_eq(r.timed_out, 1);
	ck_assert_msg(!(r.exited && r.exit_status == 0), "fork bomb compiled");
	ck_assert_uint_lt(r.wall_us, lim.timeout_ms * 1000ull +
					     (backend == SANDBOX_BACKEND_KVM ? 120000000u : 3000000u));
	sandbox_result_release(&r);
	ck_assert_int_eq(processes_with(d.crate_name), 0);
}
END_TEST

START_TEST(test_escape_memory)
{
	struct job_dirs d;
	struct sandbox_result r;
	struct sandbox_limits lim = { .timeout_ms = 60000, .memory_bytes = 512ull << 20 };
	char src[256];

	job_dirs_init(&d, "memory");
	snprintf(src, sizeof(src), "escape::attempt!(\"memory\", \"%llu\");\n",
		 10ull * lim.memory_bytes);
	ck_assert_int_eq(run_victim(&d, src, &lim, &r), 0);
	ck_assert_msg(r.memory_exceeded, "no OOM kill: %d/%d %s", r.exited, r.exit_status, r.err);
	ck_assert_msg(!(r.exited && r.exit_status == 0), "allocation succeeded");
	ck_assert_ptr_null(strstr(r.err, "ESCAPED"));
	sandbox_result_release(&r);
	ck_assert_int_eq(processes_with(d.crate_name), 0);
}
END_TEST

START_TEST(test_escape_spin_past_timeout)
{
	struct job_dirs d;
	struct sandbox_result r;
	struct sandbox_limits lim = { .timeout_ms = 2000 };

	job_dirs_init(&d, "spin");
	ck_assert_int_eq(run_victim(&d, "escape::attempt!(\"spin\");\n", &lim, &r), 0);
	ck_assert_int_eq(r.timed_out, 1);
	ck_assert_int_eq(r.exited, 0);
	ck_assert_int_eq(r.term_signal, SIGKILL);
	ck_assert_uint_ge(r.wall_us, 2000000u);
	/* kvm: the guest's init keeps the timeout from the job's start; the wall time has the
	 * machine's boot too (seconds on TCG) */
	ck_assert_uint_lt(r.wall_us, 2000000u + (backend == SANDBOX_BACKEND_KVM ? 120000000u : 3000000u));
	sandbox_result_release(&r);
	/* the spinner and its four children are gone */
	ck_assert_int_eq(processes_with(d.crate_name), 0);
}
END_TEST

/* Denied by the seccomp filter or the dropped capabilities: each attempt reports at least MIN
 * contained checks. */
static const struct {
	const char *attempt;
	unsigned min;
} denied_attempts[] = {
	{ "ptrace", 2 },
	{ "mount", 10 }, /* the mount family and new namespaces */
	{ "syscalls", 9 },
	{ "sockets", 8 },     /* AF_VSOCK, AF_NETLINK, AF_INET... refused, AF_UNIX works */
	{ "personality", 3 }, /* all but the query form refused */
};

START_TEST(test_escape_denied)
{
	struct job_dirs d;
	struct sandbox_result r;
	char src[128];

	snprintf(src, sizeof(src), "escape::attempt!(\"%s\");\n", denied_attempts[_i].attempt);
	job_dirs_init(&d, denied_attempts[_i].attempt);
	ck_assert_int_eq(run_victim(&d, src, NULL, &r), 0);
	assert_contained(&r, denied_attempts[_i].attempt, denied_attempts[_i].min);
	/* what a compile may still do */
	if (strcmp(denied_attempts[_i].attempt, "sockets") == 0)
		ck_assert_msg(strstr(r.err, "AF_UNIX socket ok"), "%s", r.err);
	if (strcmp(denied_attempts[_i].attempt, "personality") == 0)
		ck_assert_msg(strstr(r.err, "PERSONALITY QUERY ok"), "%s", r.err);
	sandbox_result_release(&r);
}
END_TEST

START_TEST(test_escape_host_proc)
{
	struct job_dirs d;
	struct sandbox_result r;
	char marker[64], env_marker[64], src[256];
	pid_t host;

	/* a host process with a marker in its command line, and a marker in our environment */
	snprintf(marker, sizeof(marker), "cachepot-host-canary-%d", (int)getpid());
	snprintf(env_marker, sizeof(env_marker), "CACHEPOT_HOST_SECRET_%d", (int)getpid());
	ck_assert_int_eq(setenv(env_marker, "secret", 1), 0);
	host = fork();
	ck_assert_int_ge(host, 0);
	if (host == 0) {
		execl("/bin/sleep", marker, "60", (char *)NULL);
		_exit(127);
	}
	snprintf(src, sizeof(src), "escape::attempt!(\"proc\", \"%s\", \"%s\");\n", marker,
		 env_marker);
	job_dirs_init(&d, "proc");
	ck_assert_int_eq(run_victim(&d, src, NULL, &r), 0);
	kill(host, SIGKILL);
	waitpid(host, NULL, 0);
	assert_contained(&r, "proc", 3);
	/* The job inherits stdin, stdout and stderr only: any other fd is rustc's own (its
	 * jobserver pipe), never a second reference to our pipes, the seccomp memfd, a tree's
	 * O_PATH fd or a socket. */
	{
		const char *fds = strstr(r.err, "FDS 0->/dev/null 1->pipe:[");
		char out_pipe[64], err_pipe[64];
		ck_assert_msg(fds != NULL, "%s", r.err);
		ck_assert_int_eq(sscanf(fds, "FDS 0->/dev/null 1->%63s 2->%63s", out_pipe,
					err_pipe), 2);
		ck_assert_msg(count_lines(fds, out_pipe) == 1, "stdout pipe twice: %s", fds);
		ck_assert_msg(count_lines(fds, err_pipe) == 1, "stderr pipe twice: %s", fds);
		ck_assert_msg(!strstr(fds, "memfd:") && !strstr(fds, "socket:") &&
				      !strstr(fds, ROOT_INPUTS) && !strstr(fds, ROOT_SYSROOT) &&
				      !strstr(fds, "/usr"),
			      "fd leak: %s", fds);
	}
	sandbox_result_release(&r);
}
END_TEST

/* The start-up sweep of a killed daemon's run cgroups, on a scratch root laid out as v1 (plain
 * directories at ROOT/<controller>/<this process's path there>): a run cgroup of a pid that is
 * gone is removed in every hierarchy; one of a live pid, one that is not empty and one of
 * another name stay. */
START_TEST(test_cgroup_sweep)
{
	static const char *const ctl[] = { "memory", "pids", "cpuacct" };
	char root[PATH_MAX], own[3][PATH_MAX], path[PATH_MAX * 2];
	unsigned removed = 99;
	pid_t dead = fork();

	ck_assert_int_ge(dead, 0);
	if (dead == 0)
		_exit(0);
	ck_assert_int_eq(waitpid(dead, NULL, 0), dead);
	snprintf(root, sizeof(root), "%s/sweep-cgroups", base);
	for (int i = 0; i < 3; i++) {
		FILE *f = fopen("/proc/self/cgroup", "re");
		char line[PATH_MAX];
		ck_assert_ptr_nonnull(f);
		snprintf(own[i], sizeof(own[i]), "%s/%s", root, ctl[i]);
		while (fgets(line, sizeof(line), f)) {
			char *c1 = strchr(line, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
			if (!c2)
				continue;
			*c2 = '\0';
			if (strstr(c1 + 1, ctl[i])) {
				c2[strcspn(c2 + 1, "\n") + 1] = '\0';
				snprintf(own[i], sizeof(own[i]), "%s/%s%s", root, ctl[i],
					 strcmp(c2 + 1, "/") ? c2 + 1 : "");
			}
		}
		fclose(f);
		ck_assert_int_eq(run_cmd("mkdir -p '%s/cachepot-sandbox-%d-1-2' '%s/cachepot-sandbox-%d-3-4'"
					 " '%s/cachepot-sandbox-%d-5-6/busy' '%s/other-%d-1-2'", own[i],
					 (int)dead, own[i], (int)getpid(), own[i], (int)dead, own[i],
					 (int)dead), 0);
	}
	ck_assert_int_eq(sandbox_cgroup_sweep(root, "cachepot-sandbox-", &removed), 0);
	ck_assert_uint_eq(removed, 3);
	for (int i = 0; i < 3; i++) {
		snprintf(path, sizeof(path), "%s/cachepot-sandbox-%d-1-2", own[i], (int)dead);
		ck_assert_msg(access(path, F_OK) < 0, "%s was left", path);
		snprintf(path, sizeof(path), "%s/cachepot-sandbox-%d-3-4", own[i], (int)getpid());
		ck_assert_msg(access(path, F_OK) == 0, "%s (a live pid's) was removed", path);
		snprintf(path, sizeof(path), "%s/cachepot-sandbox-%d-5-6", own[i], (int)dead);
		ck_assert_msg(access(path, F_OK) == 0, "%s (not empty) was removed", path);
		snprintf(path, sizeof(path), "%s/other-%d-1-2", own[i], (int)dead);
		ck_assert_msg(access(path, F_OK) == 0, "%s (another name) was removed", path);
	}
	ck_assert_int_eq(run_cmd("rm -rf '%s'", root), 0);

	/* On this host's cgroups: a run cgroup of a gone pid with a process still in it (as
	 * bwrap's child stuck in set-up is): the process is killed, the cgroup removed. */
	struct sandbox_cgroup cg;
	char name[64];
	int st;
	snprintf(name, sizeof(name), "cachepot-sandbox-%d-7-7", (int)dead);
	ck_assert_int_eq(sandbox_cgroup_create(&cg, NULL, name, 1ull << 30, 16), 0);
	pid_t child = fork();
	ck_assert_int_ge(child, 0);
	if (child == 0) {
		if (sandbox_cgroup_enter_self(&cg) < 0)
			_exit(1);
		for (;;)
			pause();
	}
	for (int i = 0; i < cg.n_dirs; i++) /* what a SIGKILLed daemon leaves */
		close(cg.procs_fds[i]);
	usleep(100000);
	ck_assert_int_eq(sandbox_cgroup_sweep(NULL, "cachepot-sandbox-", &removed), 0);
	ck_assert_uint_ge(removed, (unsigned)cg.n_dirs);
	ck_assert_int_eq(waitpid(child, &st, 0), child);
	ck_assert_msg(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL, "the process in it was not killed");
	for (int i = 0; i < cg.n_dirs; i++) {
		ck_assert_msg(access(cg.dirs[i], F_OK) < 0, "%s was left", cg.dirs[i]);
		free(cg.dirs[i]);
	}
}
END_TEST

/* With no cgroup to be had (a cgroup root with no hierarchy in it): refused, unless the spec
 * allows rlimits alone; then RLIMIT_NPROC is max_processes and stops a fork loop. */
START_TEST(test_no_cgroup_limits)
{
	struct job_dirs d;
	struct sandbox_spec spec;
	struct sandbox_result r;
	char nocg[PATH_MAX], msg[512], *argv[] = { ROOT_RUSTC, "-vV", NULL };
	struct sandbox_limits lim = { .timeout_ms = 60000, .max_processes = 24,
				      .memory_bytes = 8ull << 30 };
	const char *at;
	unsigned forked;

	snprintf(nocg, sizeof(nocg), "%s/no-cgroups", base);
	ck_assert_int_eq(mkdir(nocg, 0755), 0);
	ck_assert_int_eq(sandbox_limits_check(nocg, msg, sizeof(msg)), -ENOTSUP);
	ck_assert_msg(strstr(msg, "--allow-no-cgroup-limits"), "%s", msg);
	ck_assert_int_eq(sandbox_limits_check(NULL, msg, sizeof(msg)), 0); /* this host: v1 */

	job_dirs_init(&d, "nocg");
	spec_init(&spec, &d, argv);
	spec.cgroup_root = nocg;
	ck_assert_int_eq(sandbox_run(&spec, &r), -ENOTSUP);
	sandbox_result_release(&r);
	ck_assert_int_eq(sandbox_output_release(d.output), -EINVAL); /* not left mounted */

	spec.allow_no_cgroup_limits = 1;
	spec.limits = lim;
	ck_assert_int_eq(sandbox_run(&spec, &r), 0);
	ck_assert_msg(r.exited && r.exit_status == 0, "%s", r.err);
	sandbox_result_release(&r);
	ck_assert_int_eq(sandbox_output_release(d.output), 0);

	/* the fork loop, through run_victim's spec: */
	{
		char path[PATH_MAX + 16], ext[PATH_MAX];
		char *vargv[] = { ROOT_RUSTC, "--edition=2021", "--crate-type", "lib",
				  "--crate-name", d.crate_name, "--extern", ext,
				  "--out-dir", ROOT_OUT, "lib.rs", NULL };
		snprintf(ext, sizeof(ext), "escape=" ROOT_INPUTS "/deps/libescape.so");
		snprintf(path, sizeof(path), "%s/cwd/lib.rs", d.input);
		write_file(path, "escape::attempt!(\"nproc\", \"200\");\n");
		spec_init(&spec, &d, vargv);
		spec.cgroup_root = nocg;
		spec.allow_no_cgroup_limits = 1;
		spec.limits = lim;
		ck_assert_int_eq(sandbox_run(&spec, &r), 0);
		(void)sandbox_output_release(d.output);
	}
	assert_contained(&r, "nproc", 1);
	at = strstr(r.err, "forked ");
	ck_assert_msg(at && sscanf(at, "forked %u", &forked) == 1, "%s", r.err);
	ck_assert_uint_lt(forked, lim.max_processes);
	ck_assert_msg(strstr(r.err, "Resource temporarily unavailable"), "%s", r.err);
	sandbox_result_release(&r);
	ck_assert_int_eq(processes_with(d.crate_name), 0);
}
END_TEST

/* Cgroup v2 on this host's kernel, through a scratch cgroup2 mount. The memory and pids
 * controllers may be bound to v1 hierarchies here (then the unified one lacks them); hugetlb
 * stands in for them where it is free: it is a domain controller too, so the no-internal-
 * process rule (EBUSY) applies to it the same way. */
static const char *v2_step; /* what the child was doing when it failed (test program only) */

static int v2_write(const char *dir, const char *file, const char *text)
{
	char path[PATH_MAX + 64];
	int fd, rc = 0;

	snprintf(path, sizeof(path), "%s/%s", dir, file);
	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (write(fd, text, strlen(text)) < 0)
		rc = -errno;
	close(fd);
	return rc;
}

static int v2_has(const char *dir, const char *file, const char *word)
{
	char path[PATH_MAX + 64], buf[4096];
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "%s/%s", dir, file);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	buf[n > 0 ? n : 0] = '\0';
	return strstr(buf, word) != NULL;
}

/* In a child moved into SUB (a cgroup below ROOT, the scratch mount): the leaf move. Returns
 * 0, or the number of the step that failed (v2_step names it). */
static int v2_child(const char *root, const char *sub, const char *sub_name)
{
	char *parent = NULL, want[256], msg[512], self[512] = "";
	int rc, fd;
	ssize_t n;

	v2_step = "entering the test cgroup";
	if (v2_write(sub, "cgroup.procs", "0") < 0)
		return 1;
	v2_step = "enabling hugetlb where a process lives answers EBUSY (the v2 rule)";
	if (v2_write(sub, "cgroup.subtree_control", "+hugetlb") != -EBUSY)
		return 2;
	v2_step = "sandbox_cgroup_v2_delegate moves us into the leaf and enables hugetlb";
	rc = sandbox_cgroup_v2_delegate(root, "hugetlb", &parent);
	if (rc < 0 || strcmp(parent, sub) != 0)
		return 3;
	free(parent);
	v2_step = "we are in <sub>/cachepot-daemon";
	snprintf(want, sizeof(want), "0::/%s/cachepot-daemon\n", sub_name);
	fd = open("/proc/self/cgroup", O_RDONLY | O_CLOEXEC);
	n = fd < 0 ? -1 : read(fd, self, sizeof(self) - 1);
	if (fd >= 0)
		close(fd);
	self[n > 0 ? n : 0] = '\0';
	if (!strstr(self, want))
		return 4;
	v2_step = "<sub>/cgroup.subtree_control has hugetlb";
	if (!v2_has(sub, "cgroup.subtree_control", "hugetlb"))
		return 5;
	v2_step = "a second call, from the leaf, gives the same parent";
	rc = sandbox_cgroup_v2_delegate(root, "hugetlb", &parent);
	if (rc < 0 || strcmp(parent, sub) != 0)
		return 6;
	v2_step = "a run's cgroup beside the leaf has the controller's files";
	snprintf(want, sizeof(want), "%s/run", parent);
	snprintf(msg, sizeof(msg), "%s/run/hugetlb.2MB.max", parent);
	free(parent);
	if (mkdir(want, 0755) < 0)
		return 7;
	rc = access(msg, F_OK);
	rmdir(want);
	if (rc < 0)
		return 7;
	v2_step = "memory and pids are not in this unified hierarchy: the check says so";
	if (sandbox_limits_check(root, msg, sizeof(msg)) != -ENOTSUP || !strstr(msg, "cgroup v2"))
		return 8;
	return 0;
}

START_TEST(test_cgroup_v2_leaf)
{
	char root[PATH_MAX], sub[PATH_MAX + 64], sub_name[64], leaf[PATH_MAX + 96];
	int had_hugetlb, rc, st;
	pid_t pid;

	snprintf(root, sizeof(root), "%s/cgroup2", base);
	ck_assert_int_eq(mkdir(root, 0755), 0);
	if (mount("none", root, "cgroup2", 0, NULL) < 0) {
		fprintf(stderr, "# cannot mount cgroup2 (%s): v2 path not tested\n", strerror(errno));
		return;
	}
	fprintf(stderr, "# cgroup2 controllers here: %s%s\n",
		v2_has(root, "cgroup.controllers", "memory") ? "memory " : "",
		v2_has(root, "cgroup.controllers", "hugetlb") ? "hugetlb" : "");
	if (!v2_has(root, "cgroup.controllers", "hugetlb")) {
		umount2(root, MNT_DETACH);
		fprintf(stderr, "# no free domain controller on cgroup2: leaf move not tested\n");
		return;
	}
	had_hugetlb = v2_has(root, "cgroup.subtree_control", "hugetlb");
	ck_assert_int_eq(v2_write(root, "cgroup.subtree_control", "+hugetlb"), 0);
	snprintf(sub_name, sizeof(sub_name), "cachepot-test-%d", (int)getpid());
	snprintf(sub, sizeof(sub), "%s/%s", root, sub_name);
	ck_assert_int_eq(mkdir(sub, 0755), 0);

	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		rc = v2_child(root, sub, sub_name);
		if (rc)
			fprintf(stderr, "cgroup v2 step %d failed: %s\n", rc, v2_step);
		(void)v2_write(root, "cgroup.procs", "0"); /* out again, so the test can rmdir */
		_exit(rc);
	}
	ck_assert_int_eq(waitpid(pid, &st, 0), pid);
	snprintf(leaf, sizeof(leaf), "%s/cachepot-daemon", sub);
	rmdir(leaf);
	rmdir(sub);
	if (!had_hugetlb)
		(void)v2_write(root, "cgroup.subtree_control", "-hugetlb");
	umount2(root, MNT_DETACH);
	ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "cgroup v2 step %d failed",
		      WIFEXITED(st) ? WEXITSTATUS(st) : -1);
}
END_TEST

/* Several sandboxes at once from threads of one process (the daemon's use). */
struct thread_job {
	struct job_dirs d;
	int rc, ok;
};
static void *thread_main(void *arg)
{
	struct thread_job *j = arg;
	struct sandbox_spec spec;
	struct sandbox_result r;
	char *argv[] = { ROOT_RUSTC, "-V", NULL };

	spec_init(&spec, &j->d, argv);
	j->rc = sandbox_run(&spec, &r);
	j->ok = j->rc == 0 && r.exited && r.exit_status == 0 && strncmp(r.out, "rustc ", 6) == 0;
	sandbox_result_release(&r);
	if (j->rc == 0)
		j->rc = sandbox_output_release(j->d.output);
	return NULL;
}

START_TEST(test_concurrent_runs)
{
	struct thread_job jobs[4];
	pthread_t t[4];

	for (int i = 0; i < 4; i++)
		job_dirs_init(&jobs[i].d, "thread");
	for (int i = 0; i < 4; i++)
		ck_assert_int_eq(pthread_create(&t[i], NULL, thread_main, &jobs[i]), 0);
	for (int i = 0; i < 4; i++) {
		pthread_join(t[i], NULL);
		ck_assert_int_eq(jobs[i].rc, 0);
		ck_assert_int_eq(jobs[i].ok, 1);
	}
}
END_TEST

/* Unchecked teardown (runs in the parent even when a test fails): unmount whatever a failed
 * test left mounted under BASE. */
static void unmount_leftovers(void)
{
	run_cmd("grep -o ' %s/[^ ]*' /proc/self/mountinfo | sort -r | "
		"while read -r m; do umount -l \"$m\"; done 2>/dev/null", base);
}

/* kvm: after the runs, no QEMU process of ours (its images are under $TMPDIR, which
 * tests/sandbox/kvm.sh makes for this program) and no run directory is left. */
START_TEST(test_kvm_nothing_left)
{
	const char *tmpdir = getenv("TMPDIR");
	DIR *d = opendir("/proc");
	struct dirent *e;
	int qemus = 0, dirs = 0;

	ck_assert_msg(tmpdir && tmpdir[0] == '/', "TMPDIR is not set to this test's directory");
	ck_assert_ptr_nonnull(d);
	while ((e = readdir(d))) {
		char path[300], exe[PATH_MAX];
		struct stat st;
		ssize_t n;
		if (e->d_name[0] < '0' || e->d_name[0] > '9')
			continue;
		snprintf(path, sizeof(path), "/proc/%s/exe", e->d_name);
		n = readlink(path, exe, sizeof(exe) - 1);
		snprintf(path, sizeof(path), "/proc/%s", e->d_name);
		if (n <= 0 || stat(path, &st) < 0)
			continue;
		exe[n] = '\0';
		if (!strstr(exe, "qemu-system") || st.st_uid < SANDBOX_UID_FIRST ||
		    st.st_uid >= SANDBOX_UID_FIRST + SANDBOX_UID_COUNT)
			continue;
		/* its command line names its images, under TMPDIR when it is ours */
		char cmdline[8192];
		snprintf(path, sizeof(path), "/proc/%s/cmdline", e->d_name);
		FILE *f = fopen(path, "re");
		size_t len = f ? fread(cmdline, 1, sizeof(cmdline) - 1, f) : 0;
		if (f)
			fclose(f);
		for (size_t i = 0; i < len; i++)
			if (!cmdline[i])
				cmdline[i] = ' ';
		cmdline[len] = '\0';
		if (strstr(cmdline, tmpdir))
			qemus++;
	}
	closedir(d);
	d = opendir(tmpdir);
	ck_assert_ptr_nonnull(d);
	while ((e = readdir(d)))
		if (strncmp(e->d_name, "cachepot-kvm-", 13) == 0)
			dirs++;
	closedir(d);
	ck_assert_msg(qemus == 0, "%d QEMU processes of sandbox uids left", qemus);
	ck_assert_msg(dirs == 0, "%d %s/cachepot-kvm-* directories left", dirs, tmpdir);
}
END_TEST

int main(void)
{
	const char *srcdir = getenv("top_srcdir"), *builddir = getenv("top_builddir");
	Suite *s;
	TCase *tc;
	SRunner *sr;
	int failed;

	const char *name = getenv("CACHEPOT_TEST_SANDBOX");
	char msg[512];

	if (name && sandbox_backend_parse(name, &backend) < 0) {
		printf("Bail out! CACHEPOT_TEST_SANDBOX=%s: not bwrap, docker or kvm\n", name);
		return 1;
	}
	if (geteuid() != 0 || access(BWRAP_PATH, X_OK) != 0) {
		printf("1..0 # SKIP needs root and %s\n", BWRAP_PATH);
		return 77;
	}
	/* a backend that is not there is skipped with the reason, never passed */
	if (backend == SANDBOX_BACKEND_DOCKER &&
	    sandbox_docker_check(getenv("CACHEPOT_DOCKER_SOCKET"), msg, sizeof(msg)) < 0) {
		printf("1..0 # SKIP docker backend: %s\n", msg);
		return 77;
	}
	if (backend == SANDBOX_BACKEND_DOCKER)
		printf("# docker backend: %s\n", msg);
	kvm_dir = getenv("CACHEPOT_KVM_DIR");
	kvm_allow_tcg = getenv("CACHEPOT_KVM_ALLOW_TCG") && atoi(getenv("CACHEPOT_KVM_ALLOW_TCG"));
	if (backend == SANDBOX_BACKEND_KVM && sandbox_kvm_check(kvm_dir, kvm_allow_tcg, msg,
								 sizeof(msg)) < 0) {
		printf("1..0 # SKIP kvm backend: %s\n", msg);
		return 77;
	}
	if (backend == SANDBOX_BACKEND_KVM)
		printf("# kvm backend: %s\n", msg);
	if (!srcdir)
		srcdir = "..";
	if (!builddir)
		builddir = ".";
	snprintf(toolchain, sizeof(toolchain), "%s/tests/sandbox/toolchain", builddir);
	if (run_cmd("'%s/tests/sandbox/make-toolchain.sh' '%s' >/dev/null", srcdir, toolchain)) {
		printf("Bail out! make-toolchain.sh failed\n");
		return 1;
	}
	snprintf(base, sizeof(base), "%s/tests/sandbox/run-%d", builddir, (int)getpid());
	snprintf(macro_so, sizeof(macro_so), "%s/libescape.so", base);

	/* the hostile proc-macro, built by the host's rustc outside any sandbox */
	if (run_cmd("mkdir -p '%s' && PATH=/root/.cargo/bin:$PATH rustc --edition 2021 "
		    "--crate-type proc-macro --crate-name escape '%s/tests/sandbox/escape.rs' "
		    "-o '%s'", base, srcdir, macro_so)) {
		printf("Bail out! cannot build the escape proc-macro\n");
		return 1;
	}
	/* the jobs run below BASE as cachepotd's run below jobs/: 0710 root:SANDBOX_TREES_GID */
	if (chown(base, 0, SANDBOX_TREES_GID) < 0 || chmod(base, 0710) < 0) {
		printf("Bail out! %s: %s\n", base, strerror(errno));
		return 1;
	}

	s = suite_create("sandbox");
	tc = tcase_create(sandbox_backend_name(backend));
	/* a machine per run, emulated (TCG) here: ~15 s of boot and rustc ~10x slower */
	tcase_set_timeout(tc, backend == SANDBOX_BACKEND_KVM ? 600 : 90);
	tcase_add_unchecked_fixture(tc, NULL, unmount_leftovers);
	tcase_add_test(tc, test_invalid_spec);
	tcase_add_test(tc, test_rustc_version_and_capture);
	tcase_add_test(tc, test_real_crate_reproducible);
	tcase_add_test(tc, test_escape_connect_loopback);
	tcase_add_test(tc, test_escape_resolve);
	tcase_add_test(tc, test_escape_read_canaries);
	tcase_add_test(tc, test_escape_write_trees);
	tcase_add_test(tc, test_escape_leave_for_next_job);
	tcase_add_test(tc, test_escape_fill_shm_and_tmp);
	/* kvm: the outputs reach the host only after the machine exited, so a run's output is not
	 * there to probe while it runs (what this test needs); the uid and mode of the output
	 * tmpfs are the same code as bwrap's (sandbox_mount_output) */
	if (backend != SANDBOX_BACKEND_KVM)
		tcase_add_test(tc, test_output_private);
	tcase_add_test(tc, test_escape_fork_bomb);
	tcase_add_test(tc, test_escape_memory);
	tcase_add_test(tc, test_escape_spin_past_timeout);
	tcase_add_loop_test(tc, test_escape_denied, 0,
			    sizeof(denied_attempts) / sizeof(denied_attempts[0]));
	tcase_add_test(tc, test_escape_host_proc);
	tcase_add_test(tc, test_concurrent_runs);
	if (backend == SANDBOX_BACKEND_BWRAP) { /* the cgroups are bwrap's own; dockerd makes its */
		tcase_add_test(tc, test_no_cgroup_limits);
		tcase_add_test(tc, test_cgroup_sweep);
		tcase_add_test(tc, test_cgroup_v2_leaf);
	}
	if (backend == SANDBOX_BACKEND_KVM)
		tcase_add_test(tc, test_kvm_nothing_left);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_ENV);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	unmount_leftovers();
	run_cmd("rm -rf '%s'", base);
	return failed ? 1 : 0;
}
