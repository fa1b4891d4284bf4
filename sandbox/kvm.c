/* The kvm backend of the sandbox interface (sandbox.h, sandbox/kvm.h): one QEMU microvm per run.
 *
 * The kvm directory (spec->kvm_dir, default SANDBOX_KVM_DEFAULT_DIR), which
 * contrib/kvm-guest.sh fills: vmlinuz (Debian's kernel), init (cachepot-kvm-init, static),
 * modules/ and modules.order (the virtio-mmio, virtio-blk and ext4 modules, in load order).
 * Made here and kept in it: initramfs.cpio (once per process, at its first run: the init, the
 * modules and the mount points, cpio newc through libarchive), toolchain-<id>.ext4 (once per
 * toolchain: mke2fs -d of the tree, read-only in every run after).
 *
 * One run:
 *   1. lease the run's uid and mount the output tmpfs, as the bwrap backend does;
 *   2. in a fresh directory under $TMPDIR, else /var/tmp (0700, the uid's): job.tar (job/spec, job/seccomp,
 *      root/<path> for the input tree at /cachepot and each extra bind at its dest; owned by
 *      root in the guest) and result.img, sparse, of output_bytes plus twice capture_bytes;
 *   3. QEMU, as the uid (and /dev/kvm's group), with its own seccomp sandbox (-sandbox on,
 *      no spawning, no privileges), dying with the calling thread: -nodefaults, -nic none, the
 *      three drives, the console on a pipe (its last bytes name a failure);
 *   4. wait for it until timeout_ms plus the boot allowance, then kill it;
 *   5. read result.img as a tar: result/status, result/stdout, result/stderr, and out/<path>
 *      (directories and regular files only, names checked) written under the output tmpfs's
 *      fd with openat, owned by the uid;
 *   6. remove the directory of step 2 on every path.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <grp.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <archive.h>
#include <archive_entry.h>

#include "base/clock.h"
#include "base/roots.h"
#include "sandbox/internal.h"
#include "sandbox/kvm.h"
#include "sandbox/sandbox.h"
#include "sandbox/seccomp.h"

#define KVM_OVERHEAD_BYTES (256ull << 20) /* guest RAM beyond the job's memory and inputs */
#define KVM_BOOT_ALLOWANCE_MS 30000u
#define TCG_BOOT_ALLOWANCE_MS 300000u
#define CONSOLE_KEEP 4096
#define MAX_QEMU_ARGS 64

static pthread_mutex_t image_lock = PTHREAD_MUTEX_INITIALIZER;
static int initramfs_made; /* under image_lock: made by this process */

static const char *kvm_dir(const struct sandbox_spec *spec)
{
	return spec->kvm_dir ? spec->kvm_dir : SANDBOX_KVM_DEFAULT_DIR;
}

static int say(char *msg, size_t len, int rc, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static int say(char *msg, size_t len, int rc, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, len, fmt, ap);
	va_end(ap);
	return rc;
}

/* Whether jobs can use /dev/kvm. QEMU runs as the job's uid: the device must be open to everyone
 * (0666, systemd's rule; *GROUPS then 0) or to a group other than root's, which QEMU gets as its
 * one supplementary group (Debian's 0660 root:kvm; *GROUPS 1, *GID that group). A node only root
 * may open (0600, seen on hosts without such a rule) is not usable by a job: TCG where allowed. */
static int kvm_device(gid_t *gid, int *groups, char *why, size_t whylen)
{
	struct stat st;

	if (stat("/dev/kvm", &st) != 0) {
		snprintf(why, whylen, "%s", strerror(errno));
		return 0;
	}
	if (!S_ISCHR(st.st_mode)) {
		snprintf(why, whylen, "not a character device");
		return 0;
	}
	int world = (st.st_mode & (S_IROTH | S_IWOTH)) == (S_IROTH | S_IWOTH);
	int group = (st.st_mode & (S_IRGRP | S_IWGRP)) == (S_IRGRP | S_IWGRP) && st.st_gid != 0;
	if (!world && !group) {
		snprintf(why, whylen,
			 "mode %03o group %u: a job's QEMU could not open it (it needs read and "
			 "write for everyone, or for a group other than root's, as 0660 root:kvm)",
			 (unsigned)(st.st_mode & 0777), (unsigned)st.st_gid);
		return 0;
	}
	if (gid)
		*gid = st.st_gid;
	if (groups)
		*groups = !world;
	return 1;
}

int sandbox_kvm_check(const char *dir, int allow_tcg, char *msg, size_t msglen)
{
	static const char *const files[] = { "vmlinuz", "init", "modules.order" };
	char path[PATH_MAX];

	if (!dir)
		dir = SANDBOX_KVM_DEFAULT_DIR;
	if (access(QEMU_PATH, X_OK) != 0)
		return say(msg, msglen, -ENOENT, "%s: %s (Debian's qemu-system-x86)", QEMU_PATH,
			   strerror(errno));
	if (access(MKE2FS_PATH, X_OK) != 0)
		return say(msg, msglen, -ENOENT, "%s: %s (Debian's e2fsprogs)", MKE2FS_PATH,
			   strerror(errno));
	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, files[i]);
		if (access(path, R_OK) != 0)
			return say(msg, msglen, -ENOENT,
				   "%s: %s (contrib/kvm-guest.sh %s makes the guest)", path,
				   strerror(errno), dir);
	}
	char why[160];
	if (kvm_device(NULL, NULL, why, sizeof(why)))
		return say(msg, msglen, 0, "QEMU microvm on /dev/kvm, guest in %s", dir);
	if (!allow_tcg)
		return say(msg, msglen, -ENODEV,
			   "/dev/kvm: %s (no usable hardware virtualisation here; QEMU's emulator, "
			   "much slower, only with the option that allows TCG)", why);
	return say(msg, msglen, 0, "QEMU microvm on TCG (/dev/kvm: %s; emulated, slow), guest in %s",
		   why, dir);
}

/* ---- the images ---- */

static int cpio_add(struct archive *ar, const char *name, mode_t mode, const char *src)
{
	struct archive_entry *e = archive_entry_new();
	char buf[65536];
	struct stat st;
	int fd = -1, rc = 0;
	ssize_t n;

	if (!e)
		return -ENOMEM;
	if (src) {
		fd = open(src, O_RDONLY | O_CLOEXEC);
		if (fd < 0 || fstat(fd, &st) < 0) {
			rc = -errno;
			goto out;
		}
	}
	archive_entry_set_pathname(e, name);
	archive_entry_set_mode(e, mode);
	archive_entry_set_size(e, src ? st.st_size : 0);
	if (archive_write_header(ar, e) != ARCHIVE_OK) {
		rc = -EIO;
		goto out;
	}
	while (fd >= 0 && (n = read(fd, buf, sizeof(buf))) > 0)
		if (archive_write_data(ar, buf, (size_t)n) != n) {
			rc = -EIO;
			break;
		}
out:
	if (fd >= 0)
		close(fd);
	archive_entry_free(e);
	return rc;
}

/* DIR/initramfs.cpio from DIR's init and modules (under image_lock). */
static int initramfs_make(const char *dir, char *err, size_t errlen)
{
	static const char *const dirs[] = { "dev", "proc", "sys", "toolchain", "newroot", "modules" };
	char path[PATH_MAX], tmp[PATH_MAX], line[256];
	struct archive *ar;
	FILE *order;
	int fd, rc = 0;

	snprintf(path, sizeof(path), "%s/initramfs.cpio", dir);
	snprintf(tmp, sizeof(tmp), "%s/initramfs.cpio.XXXXXX", dir);
	fd = mkostemp(tmp, O_CLOEXEC);
	if (fd < 0)
		return say(err, errlen, -errno, "%s: %s", tmp, strerror(errno));
	ar = archive_write_new();
	if (!ar || archive_write_set_format_cpio_newc(ar) != ARCHIVE_OK ||
	    archive_write_open_fd(ar, fd) != ARCHIVE_OK) {
		rc = say(err, errlen, -EIO, "the initramfs: %s", ar ? archive_error_string(ar) : "");
		goto out;
	}
	for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]) && !rc; i++)
		rc = cpio_add(ar, dirs[i], S_IFDIR | 0755, NULL);
	snprintf(path, sizeof(path), "%s/init", dir);
	if (!rc && (rc = cpio_add(ar, "init", S_IFREG | 0755, path)) < 0)
		say(err, errlen, rc, "%s: %s", path, strerror(-rc));
	snprintf(path, sizeof(path), "%s/modules.order", dir);
	if (!rc && (rc = cpio_add(ar, "modules.order", S_IFREG | 0644, path)) < 0)
		say(err, errlen, rc, "%s: %s", path, strerror(-rc));
	order = rc ? NULL : fopen(path, "re");
	while (order && !rc && fgets(line, sizeof(line), order)) {
		char name[300];
		line[strcspn(line, "\n")] = '\0';
		if (!line[0])
			continue;
		if (strchr(line, '/')) {
			rc = say(err, errlen, -EINVAL, "%s: '%s' is not a file name", path, line);
			break;
		}
		snprintf(name, sizeof(name), "modules/%s", line);
		char src[PATH_MAX];
		snprintf(src, sizeof(src), "%s/modules/%s", dir, line);
		if ((rc = cpio_add(ar, name, S_IFREG | 0644, src)) < 0)
			say(err, errlen, rc, "%s: %s", src, strerror(-rc));
	}
	if (order)
		fclose(order);
	if (!rc && archive_write_close(ar) != ARCHIVE_OK)
		rc = say(err, errlen, -EIO, "the initramfs: %s", archive_error_string(ar));
out:
	if (ar)
		archive_write_free(ar);
	snprintf(path, sizeof(path), "%s/initramfs.cpio", dir);
	if (!rc && (fchmod(fd, 0644) < 0 || fsync(fd) < 0 || rename(tmp, path) < 0))
		rc = say(err, errlen, -errno, "%s: %s", path, strerror(errno));
	close(fd);
	if (rc)
		unlink(tmp);
	return rc;
}

static uint64_t tree_bytes;
static int tree_count(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	tree_bytes += (uint64_t)st->st_size + 8192; /* data and an inode and block's slack */
	return 0;
}

/* Run ARGV (no shell), its stderr into ERR; 0 when it exits 0. */
static int run_tool(char *const argv[], char *err, size_t errlen)
{
	int p[2], st;
	pid_t pid;
	ssize_t n;
	size_t len = 0;

	if (pipe2(p, O_CLOEXEC) < 0)
		return -errno;
	pid = fork();
	if (pid < 0) {
		close(p[0]);
		close(p[1]);
		return -errno;
	}
	if (pid == 0) {
		int null = open("/dev/null", O_RDWR);
		dup2(null, 0);
		dup2(null, 1);
		dup2(p[1], 2);
		execv(argv[0], argv);
		_exit(127);
	}
	close(p[1]);
	err[0] = '\0';
	while ((n = read(p[0], err + len, errlen - 1 - len)) > 0 && len + (size_t)n < errlen - 1)
		len += (size_t)n;
	if (n > 0)
		len += (size_t)n;
	err[len] = '\0';
	close(p[0]);
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : -EIO;
}

/* The initramfs (made once per process) and the toolchain's ext4 image (made once per
 * toolchain) in the kvm directory: their paths into INITRD and IMAGE. */
static int images_ensure(const struct sandbox_spec *spec, char *initrd, char *image, char *err,
			 size_t errlen)
{
	const char *dir = kvm_dir(spec);
	char tag[SANDBOX_TAG_MAX + 1], tmp[PATH_MAX + 16], size[32], tool_err[1024];
	int rc = sandbox_toolchain_tag(spec, tag);

	if (rc < 0)
		return say(err, errlen, rc, "%s: %s", spec->toolchain_dir, strerror(-rc));
	snprintf(initrd, PATH_MAX, "%s/initramfs.cpio", dir);
	snprintf(image, PATH_MAX, "%s/toolchain-%s.ext4", dir, tag);
	pthread_mutex_lock(&image_lock);
	if (!initramfs_made && (rc = initramfs_make(dir, err, errlen)) == 0)
		initramfs_made = 1;
	if (rc == 0 && access(image, R_OK) != 0) {
		int fd;
		snprintf(tmp, sizeof(tmp), "%s.XXXXXX", image);
		fd = mkostemp(tmp, O_CLOEXEC);
		if (fd < 0) {
			rc = say(err, errlen, -errno, "%s: %s", tmp, strerror(errno));
			goto out;
		}
		close(fd);
		tree_bytes = 0;
		(void)nftw(spec->toolchain_dir, tree_count, 16, FTW_PHYS);
		snprintf(size, sizeof(size), "%" PRIu64 "k", (tree_bytes + tree_bytes / 8 + (16u << 20)) >> 10);
		char *argv[] = { MKE2FS_PATH, "-q", "-F", "-t", "ext4", "-O", "^has_journal",
				 "-E", "root_owner=0:0", "-L", "cachepot-tc", "-m", "0", "-d",
				 (char *)spec->toolchain_dir, tmp, size, NULL };
		rc = run_tool(argv, tool_err, sizeof(tool_err));
		if (rc < 0)
			say(err, errlen, rc, "mke2fs -d %s: %s", spec->toolchain_dir, tool_err);
		else if (chmod(tmp, 0644) < 0 || rename(tmp, image) < 0)
			rc = say(err, errlen, -errno, "%s: %s", image, strerror(errno));
		if (rc < 0)
			unlink(tmp);
	}
out:
	pthread_mutex_unlock(&image_lock);
	return rc;
}

/* ---- the job's tar ---- */

static int tar_data(struct archive *ar, const char *name, const void *data, size_t len)
{
	struct archive_entry *e = archive_entry_new();
	int rc = 0;

	if (!e)
		return -ENOMEM;
	archive_entry_set_pathname(e, name);
	archive_entry_set_filetype(e, AE_IFREG);
	archive_entry_set_perm(e, 0600);
	archive_entry_set_size(e, (la_int64_t)len);
	if (archive_write_header(ar, e) != ARCHIVE_OK ||
	    (len && archive_write_data(ar, data, len) != (la_ssize_t)len))
		rc = -EIO;
	archive_entry_free(e);
	return rc;
}

/* The tree at HOST as root/<DEST>/... (DEST absolute), owned by root. */
static int tar_tree(struct archive *ar, const char *host, const char *dest, uint64_t *bytes,
		    char *err, size_t errlen)
{
	struct archive *disk = archive_read_disk_new();
	struct archive_entry *e = archive_entry_new();
	size_t hlen = strlen(host);
	char name[PATH_MAX + 16], buf[65536];
	int r, rc = 0;

	if (!disk || !e) {
		rc = -ENOMEM;
		goto out;
	}
	archive_read_disk_set_symlink_physical(disk);
	archive_read_disk_set_behavior(disk, ARCHIVE_READDISK_NO_XATTR | ARCHIVE_READDISK_NO_ACL |
						     ARCHIVE_READDISK_NO_FFLAGS);
	if (archive_read_disk_open(disk, host) != ARCHIVE_OK) {
		rc = say(err, errlen, -EIO, "%s: %s", host, archive_error_string(disk));
		goto out;
	}
	while ((r = archive_read_next_header2(disk, e)) == ARCHIVE_OK) {
		const char *p = archive_entry_pathname(e);
		archive_read_disk_descend(disk);
		if (strncmp(p, host, hlen) != 0) {
			rc = say(err, errlen, -EIO, "%s: outside %s", p, host);
			goto out;
		}
		if ((size_t)snprintf(name, sizeof(name), "root%s%s", dest, p + hlen) >= sizeof(name)) {
			rc = say(err, errlen, -ENAMETOOLONG, "%s: name too long", p);
			goto out;
		}
		archive_entry_copy_pathname(e, name);
		archive_entry_set_uid(e, 0);
		archive_entry_set_gid(e, 0);
		archive_entry_set_uname(e, NULL);
		archive_entry_set_gname(e, NULL);
		if (archive_write_header(ar, e) != ARCHIVE_OK) {
			rc = say(err, errlen, -EIO, "the job's tar: %s: %s", p, archive_error_string(ar));
			goto out;
		}
		*bytes += (uint64_t)archive_entry_size(e) + 4096;
		if (archive_entry_filetype(e) == AE_IFREG && archive_entry_size(e) > 0) {
			int fd = open(archive_entry_sourcepath(e), O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
			ssize_t n;
			if (fd < 0) {
				rc = say(err, errlen, -errno, "%s: %s", p, strerror(errno));
				goto out;
			}
			while ((n = read(fd, buf, sizeof(buf))) > 0)
				if (archive_write_data(ar, buf, (size_t)n) != n)
					break;
			close(fd);
		}
	}
	if (r != ARCHIVE_EOF)
		rc = say(err, errlen, -EIO, "%s: %s", host, archive_error_string(disk));
out:
	if (e)
		archive_entry_free(e);
	if (disk)
		archive_read_free(disk);
	return rc;
}

struct strbuf {
	char *buf;
	size_t len, cap;
	int failed;
};

static void sb_record(struct strbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_record(struct strbuf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0 || b->failed) {
		b->failed = 1;
		return;
	}
	if (b->len + (size_t)n + 1 > b->cap) {
		size_t cap = (b->len + (size_t)n + 1) * 2;
		char *p = realloc(b->buf, cap);
		if (!p) {
			b->failed = 1;
			return;
		}
		b->buf = p;
		b->cap = cap;
	}
	va_start(ap, fmt);
	vsnprintf(b->buf + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n + 1; /* records end with their NUL */
}

static int job_tar(const struct sandbox_spec *spec, const struct sandbox_limits *lim,
		   unsigned uid, const char *path, uint64_t *input_bytes, char *err, size_t errlen)
{
	struct strbuf sb = { 0 };
	struct archive *ar = archive_write_new();
	char *filter = NULL;
	off_t filter_len;
	int fd = -1, rc = 0;

	sb_record(&sb, "uid=%u", uid);
	sb_record(&sb, "timeout_ms=%u", lim->timeout_ms);
	sb_record(&sb, "cpu_seconds=%u", lim->cpu_seconds);
	sb_record(&sb, "memory=%" PRIu64, lim->memory_bytes);
	sb_record(&sb, "processes=%u", lim->max_processes);
	sb_record(&sb, "files=%u", lim->max_open_files);
	sb_record(&sb, "output_bytes=%" PRIu64, lim->output_bytes);
	sb_record(&sb, "tmp_bytes=%" PRIu64, lim->tmp_bytes);
	sb_record(&sb, "shm_bytes=%" PRIu64, lim->shm_bytes);
	sb_record(&sb, "capture=%zu", lim->capture_bytes);
	sb_record(&sb, "rust=%d", !spec->toolchain_without_rust);
	sb_record(&sb, "cwd=%s", spec->cwd ? spec->cwd : "/");
	if (spec->output_host_dir)
		sb_record(&sb, "output=%s", spec->output_dest);
	for (size_t i = 0; spec->argv[i]; i++)
		sb_record(&sb, "arg=%s", spec->argv[i]);
	for (size_t i = 0; spec->envp && spec->envp[i]; i++)
		sb_record(&sb, "env=%s", spec->envp[i]);
	if (sb.failed || !ar) {
		rc = -ENOMEM;
		goto out;
	}
	/* the filter bwrap would get, as its bytes */
	fd = sandbox_seccomp_memfd();
	if (fd < 0) {
		rc = say(err, errlen, fd, "the seccomp filter: %s", strerror(-fd));
		goto out;
	}
	filter_len = lseek(fd, 0, SEEK_END);
	filter = filter_len > 0 ? malloc((size_t)filter_len) : NULL;
	if (!filter || pread(fd, filter, (size_t)filter_len, 0) != filter_len) {
		rc = say(err, errlen, -EIO, "reading the seccomp filter");
		goto out;
	}
	close(fd);
	fd = -1;
	*input_bytes = 0;
	if (archive_write_set_format_pax_restricted(ar) != ARCHIVE_OK ||
	    archive_write_open_filename(ar, path) != ARCHIVE_OK) {
		rc = say(err, errlen, -EIO, "%s: %s", path, archive_error_string(ar));
		goto out;
	}
	if ((rc = tar_data(ar, "job/spec", sb.buf, sb.len)) < 0 ||
	    (rc = tar_data(ar, "job/seccomp", filter, (size_t)filter_len)) < 0) {
		say(err, errlen, rc, "the job's tar: %s", archive_error_string(ar));
		goto out;
	}
	if (spec->input_dir &&
	    (rc = tar_tree(ar, spec->input_dir, ROOT_INPUTS, input_bytes, err, errlen)) < 0)
		goto out;
	for (size_t i = 0; i < spec->n_binds; i++)
		if ((rc = tar_tree(ar, spec->binds[i].host, spec->binds[i].dest, input_bytes, err,
				   errlen)) < 0)
			goto out;
	if (archive_write_close(ar) != ARCHIVE_OK)
		rc = say(err, errlen, -EIO, "%s: %s", path, archive_error_string(ar));
out:
	if (fd >= 0)
		close(fd);
	free(filter);
	free(sb.buf);
	if (ar)
		archive_write_free(ar);
	return rc;
}

/* ---- the result ---- */

/* Open the directory that holds NAME's last component under ROOT (each component walked with
 * O_NOFOLLOW; missing ones made 0755 and owned by UID when MAKE); *LEAF points into NAME. */
static int open_parent(int root, char *name, const char **leaf, unsigned uid)
{
	int dirfd = dup(root);
	char *p = name, *slash;

	if (dirfd < 0)
		return -errno;
	while ((slash = strchr(p, '/'))) {
		*slash = '\0';
		int next;
		if (mkdirat(dirfd, p, 0755) == 0)
			(void)fchownat(dirfd, p, uid, uid, AT_SYMLINK_NOFOLLOW);
		next = openat(dirfd, p, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		*slash = '/';
		close(dirfd);
		if (next < 0)
			return -errno;
		dirfd = next;
		p = slash + 1;
	}
	*leaf = p;
	return dirfd;
}

static int name_valid(const char *name)
{
	const char *p = name;

	if (!*name || *name == '/' || strlen(name) >= PATH_MAX)
		return 0;
	while (*p) {
		const char *end = strchrnul(p, '/');
		size_t n = (size_t)(end - p);
		if (n == 0 || (n == 1 && p[0] == '.') || (n == 2 && p[0] == '.' && p[1] == '.'))
			return 0;
		p = *end ? end + 1 : end;
	}
	return 1;
}

struct kvm_status {
	int have, exited, status, signal, timed_out, memory_exceeded, pids_exceeded, truncated;
	uint64_t user_us, sys_us, max_rss_kb;
	char setup[600];
};

static void status_parse(struct kvm_status *st, char *text)
{
	char *line, *save = NULL;

	st->have = 1;
	for (line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char *eq = strchr(line, '=');
		if (!eq)
			continue;
		*eq = '\0';
		const char *v = eq + 1;
		uint64_t n = strtoull(v, NULL, 10);
		if (strcmp(line, "setup") == 0)
			snprintf(st->setup, sizeof(st->setup), "%s", v);
		else if (strcmp(line, "exited") == 0)
			st->exited = n != 0;
		else if (strcmp(line, "status") == 0)
			st->status = (int)(n & 0xff);
		else if (strcmp(line, "signal") == 0)
			st->signal = (int)(n & 0x7f);
		else if (strcmp(line, "timed_out") == 0)
			st->timed_out = n != 0;
		else if (strcmp(line, "memory_exceeded") == 0)
			st->memory_exceeded = n != 0;
		else if (strcmp(line, "pids_exceeded") == 0)
			st->pids_exceeded = n != 0;
		else if (strcmp(line, "truncated") == 0)
			st->truncated = n != 0;
		else if (strcmp(line, "user_us") == 0)
			st->user_us = n;
		else if (strcmp(line, "sys_us") == 0)
			st->sys_us = n;
		else if (strcmp(line, "max_rss_kb") == 0)
			st->max_rss_kb = n;
	}
}

/* Read the current entry of AR, up to MAX bytes (the rest dropped, *TRUNCATED set). */
static int read_capped(struct archive *ar, size_t max, char **out, size_t *len, int *truncated)
{
	char buf[65536];
	la_ssize_t n;

	*len = 0;
	free(*out);
	*out = malloc(1);
	if (!*out)
		return -ENOMEM;
	while ((n = archive_read_data(ar, buf, sizeof(buf))) > 0) {
		size_t keep = (size_t)n < max - *len ? (size_t)n : max - *len;
		if (keep < (size_t)n)
			*truncated = 1;
		if (!keep)
			continue;
		char *p = realloc(*out, *len + keep + 1);
		if (!p)
			return -ENOMEM;
		*out = p;
		memcpy(*out + *len, buf, keep);
		*len += keep;
	}
	(*out)[*len] = '\0';
	return n < 0 ? -EIO : 0;
}

static int unpack_output(struct archive *ar, struct archive_entry *e, int out_fd, unsigned uid,
			 char *err, size_t errlen)
{
	char name[PATH_MAX], buf[65536];
	const char *leaf = NULL;   /* set by open_parent; -O2 cannot tell */
	mode_t mode = archive_entry_perm(e) & 0755;
	int dirfd, fd, rc = 0;
	la_ssize_t n;

	snprintf(name, sizeof(name), "%s", archive_entry_pathname(e) + 4);
	if (archive_entry_hardlink(e) || !name_valid(name) ||
	    (archive_entry_filetype(e) != AE_IFREG && archive_entry_filetype(e) != AE_IFDIR))
		return say(err, errlen, -EIO, "the guest's result: out/%s is not a plain file", name);
	dirfd = open_parent(out_fd, name, &leaf, uid);
	if (dirfd < 0)
		return say(err, errlen, dirfd, "out/%s: %s", name, strerror(-dirfd));
	if (archive_entry_filetype(e) == AE_IFDIR) {
		if (mkdirat(dirfd, leaf, mode) < 0 && errno != EEXIST)
			rc = say(err, errlen, -errno, "out/%s: %s", name, strerror(errno));
		else
			(void)fchownat(dirfd, leaf, uid, uid, AT_SYMLINK_NOFOLLOW);
		close(dirfd);
		return rc;
	}
	fd = openat(dirfd, leaf, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	close(dirfd);
	if (fd < 0)
		return say(err, errlen, -errno, "out/%s: %s", name, strerror(errno));
	while ((n = archive_read_data(ar, buf, sizeof(buf))) > 0)
		if (write(fd, buf, (size_t)n) != n) {
			rc = say(err, errlen, -errno, "out/%s: %s", name, strerror(errno));
			break;
		}
	if (n < 0)
		rc = say(err, errlen, -EIO, "out/%s: %s", name, archive_error_string(ar));
	if (!rc && (fchown(fd, uid, uid) < 0 || fchmod(fd, mode) < 0))
		rc = say(err, errlen, -errno, "out/%s: %s", name, strerror(errno));
	close(fd);
	return rc;
}

static int result_read(const char *path, const struct sandbox_limits *lim, int out_fd,
		       unsigned uid, struct kvm_status *st, struct sandbox_result *result,
		       char *err, size_t errlen)
{
	struct archive *ar = archive_read_new();
	struct archive_entry *e;
	int r, rc = 0;

	if (!ar)
		return -ENOMEM;
	archive_read_support_format_tar(ar);
	if (archive_read_open_filename(ar, path, 65536) != ARCHIVE_OK) {
		rc = say(err, errlen, -EIO, "%s: %s", path, archive_error_string(ar));
		goto out;
	}
	while (rc == 0 && (r = archive_read_next_header(ar, &e)) == ARCHIVE_OK) {
		const char *name = archive_entry_pathname(e);
		if (strcmp(name, "result/status") == 0) {
			char *text = NULL;
			size_t len;
			int trunc = 0;
			if ((rc = read_capped(ar, 4096, &text, &len, &trunc)) == 0)
				status_parse(st, text);
			free(text);
		} else if (strcmp(name, "result/stdout") == 0) {
			rc = read_capped(ar, lim->capture_bytes, &result->out, &result->out_len,
					 &st->truncated);
		} else if (strcmp(name, "result/stderr") == 0) {
			rc = read_capped(ar, lim->capture_bytes, &result->err, &result->err_len,
					 &st->truncated);
		} else if (strncmp(name, "out/", 4) == 0 && out_fd >= 0) {
			rc = unpack_output(ar, e, out_fd, uid, err, errlen);
		} else {
			rc = say(err, errlen, -EIO, "the guest's result: unexpected '%.100s'", name);
		}
	}
	if (rc == 0 && r != ARCHIVE_EOF && !st->have)
		rc = say(err, errlen, -EIO, "the guest's result: %s", archive_error_string(ar));
out:
	archive_read_free(ar);
	return rc;
}

/* ---- one run ---- */

struct kvm_run {
	const struct sandbox_spec *spec;
	struct sandbox_limits lim;
	struct sandbox_hold *hold;
	unsigned uid;
	int output_mounted;
	uint64_t start_us;
	char dir[PATH_MAX];        /* the run's directory under $TMPDIR or /var/tmp, or "" */
	char job[PATH_MAX + 16], result[PATH_MAX + 16]; /* its files */
	char console[CONSOLE_KEEP + 1];
	size_t console_len;
	char err[1024];
};

static void console_add(struct kvm_run *run, const char *data, size_t n)
{
	if (n >= CONSOLE_KEEP) {
		data += n - CONSOLE_KEEP;
		n = CONSOLE_KEEP;
	}
	if (run->console_len + n > CONSOLE_KEEP) {
		size_t drop = run->console_len + n - CONSOLE_KEEP;
		memmove(run->console, run->console + drop, run->console_len - drop);
		run->console_len -= drop;
	}
	memcpy(run->console + run->console_len, data, n);
	run->console_len += n;
	run->console[run->console_len] = '\0';
}

/* QEMU's argv into ARGV (strings in BUFS). */
static void qemu_argv(const struct kvm_run *run, int kvm, const char *initrd, const char *image,
		      uint64_t input_bytes, char *argv[], char bufs[][PATH_MAX + 64])
{
	size_t n = 0, b = 0;
	uint64_t mem_mb = (run->lim.memory_bytes + input_bytes + KVM_OVERHEAD_BYTES) >> 20;

#define ARG(s) (argv[n++] = (char *)(s))
#define ARGF(...) (snprintf(bufs[b], sizeof(bufs[b]), __VA_ARGS__), argv[n++] = bufs[b++])
	ARG(QEMU_PATH);
	ARG("-M");
	ARG("microvm");
	ARG("-accel");
	ARG(kvm ? "kvm" : "tcg");
	ARG("-cpu");
	ARG(kvm ? "host" : "max");
	ARG("-smp");
	ARG("1");
	ARG("-m");
	ARGF("%" PRIu64 "M", mem_mb);
	ARG("-nodefaults");
	ARG("-no-user-config");
	ARG("-nographic");
	ARG("-no-reboot");
	ARG("-nic");
	ARG("none");
	ARG("-sandbox");
	ARG("on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny");
	ARG("-serial");
	ARG("stdio");
	ARG("-kernel");
	ARGF("%s/vmlinuz", kvm_dir(run->spec));
	ARG("-initrd");
	ARG(initrd);
	ARG("-append");
	/* TCG has no timer to calibrate the TSC against in a microvm: say its rate */
	ARG(kvm ? "console=ttyS0 panic=-1 quiet rdinit=/init"
		: "console=ttyS0 panic=-1 quiet rdinit=/init tsc_early_khz=2000000 tsc=reliable "
		  "lpj=4000000");
	ARG("-drive");
	ARGF("id=tc,file=%s,format=raw,if=none,readonly=on", image);
	ARG("-device");
	ARG("virtio-blk-device,drive=tc");
	ARG("-drive");
	ARGF("id=job,file=%s,format=raw,if=none,readonly=on", run->job);
	ARG("-device");
	ARG("virtio-blk-device,drive=job");
	ARG("-drive");
	ARGF("id=result,file=%s,format=raw,if=none", run->result);
	ARG("-device");
	ARG("virtio-blk-device,drive=result");
	argv[n] = NULL;
#undef ARG
#undef ARGF
}

static int run_machine(struct kvm_run *run, struct sandbox_result *result)
{
	const struct sandbox_spec *spec = run->spec;
	char initrd[PATH_MAX], image[PATH_MAX], msg[512];
	char *argv[MAX_QEMU_ARGS];
	char (*bufs)[PATH_MAX + 64] = NULL;
	struct kvm_status st = { 0 };
	uint64_t input_bytes = 0, deadline;
	int kvm, p[2] = { -1, -1 }, ws = 0, rc, fd, out_fd = -1;
	pid_t pid = -1;
	gid_t kvm_gid = 0;
	int kvm_groups = 0; /* QEMU's supplementary groups: /dev/kvm's, or none */

	if ((rc = sandbox_kvm_check(spec->kvm_dir, spec->kvm_allow_tcg, msg, sizeof(msg))) < 0)
		return say(run->err, sizeof(run->err), rc, "sandbox kvm: %s", msg);
	/* decided again here: the node may have changed since the check, never into TCG unasked */
	kvm = kvm_device(&kvm_gid, &kvm_groups, msg, sizeof(msg));
	if (!kvm)
		kvm_groups = 0;
	if (!kvm && !spec->kvm_allow_tcg)
		return say(run->err, sizeof(run->err), -ENODEV, "sandbox kvm: /dev/kvm: %s", msg);
	if ((rc = images_ensure(spec, initrd, image, run->err, sizeof(run->err))) < 0)
		return rc;
	const char *tmpdir = getenv("TMPDIR");
	if (!tmpdir || tmpdir[0] != '/' || strlen(tmpdir) > PATH_MAX - 64)
		tmpdir = "/var/tmp";
	snprintf(run->dir, sizeof(run->dir), "%s/cachepot-kvm-XXXXXX", tmpdir);
	if (!mkdtemp(run->dir)) {
		rc = say(run->err, sizeof(run->err), -errno, "mkdtemp %s: %s", run->dir,
			 strerror(errno));
		run->dir[0] = '\0';
		return rc;
	}
	snprintf(run->job, sizeof(run->job), "%s/job.tar", run->dir);
	snprintf(run->result, sizeof(run->result), "%s/result.img", run->dir);
	if ((rc = job_tar(spec, &run->lim, run->uid, run->job, &input_bytes, run->err,
			  sizeof(run->err))) < 0)
		return rc;
	fd = open(run->result, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0 || ftruncate(fd, (off_t)(run->lim.output_bytes + 2 * run->lim.capture_bytes +
					     (16u << 20))) < 0 ||
	    fchown(fd, run->uid, run->uid) < 0) {
		rc = say(run->err, sizeof(run->err), -errno, "%s: %s", run->result, strerror(errno));
		if (fd >= 0)
			close(fd);
		return rc;
	}
	close(fd);
	if (chown(run->dir, run->uid, run->uid) < 0 || chmod(run->job, 0444) < 0)
		return say(run->err, sizeof(run->err), -errno, "%s: %s", run->dir, strerror(errno));
	bufs = calloc(8, sizeof(*bufs));
	if (!bufs)
		return -ENOMEM;
	qemu_argv(run, kvm, initrd, image, input_bytes, argv, bufs);
	if (pipe2(p, O_CLOEXEC) < 0) {
		rc = -errno;
		goto out;
	}
	pid_t parent = getpid();
	pid = fork();
	if (pid < 0) {
		rc = -errno;
		goto out;
	}
	if (pid == 0) {
		int null = open("/dev/null", O_RDWR);
		/* the death signal after the uid change, which clears it; then make sure the
		 * caller did not die before it was set */
		if (null < 0 || dup2(null, 0) < 0 || dup2(p[1], 1) < 0 || dup2(p[1], 2) < 0 ||
		    setsid() < 0 || setgroups((size_t)kvm_groups, &kvm_gid) < 0 || setgid(run->uid) < 0 ||
		    setuid(run->uid) < 0 || prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 ||
		    getppid() != parent)
			_exit(126);
		execv(argv[0], argv);
		_exit(127);
	}
	close(p[1]);
	p[1] = -1;
	deadline = run->start_us + (uint64_t)run->lim.timeout_ms * 1000u +
		   (uint64_t)(kvm ? KVM_BOOT_ALLOWANCE_MS : TCG_BOOT_ALLOWANCE_MS) * 1000u;
	for (;;) {
		char buf[4096];
		uint64_t now = monotonic_us();
		struct pollfd pfd = { p[0], POLLIN, 0 };
		if (now >= deadline) {
			kill(pid, SIGKILL);
			st.timed_out = 1;
			break;
		}
		if (p[0] < 0) {
			if (waitpid(pid, &ws, WNOHANG) == pid) {
				pid = -1;
				break;
			}
			usleep(10000);
			continue;
		}
		int left = (int)((deadline - now) / 1000u);
		if (poll(&pfd, 1, left > 200 ? 200 : left + 1) > 0) {
			ssize_t n = read(p[0], buf, sizeof(buf));
			if (n > 0) {
				console_add(run, buf, (size_t)n);
			} else if (n == 0 || errno != EINTR) {
				close(p[0]);
				p[0] = -1;
			}
		}
	}
	if (pid > 0) {
		while (waitpid(pid, &ws, 0) < 0 && errno == EINTR)
			;
		pid = -1;
	}
	result->wall_us = monotonic_us() - run->start_us;
	if (st.timed_out) { /* the machine itself ran past the timeout and its allowance */
		result->timed_out = 1;
		result->term_signal = SIGKILL;
		result->out = strdup("");
		result->err = strdup("");
		rc = result->out && result->err ? 0 : -ENOMEM;
		goto out;
	}
	if (run->hold->output_fd >= 0)
		out_fd = run->hold->output_fd;
	rc = result_read(run->result, &run->lim, out_fd, run->uid, &st, result, run->err,
			 sizeof(run->err));
	if (rc == 0 && (!st.have || st.setup[0])) {
		const char *tail = run->console;
		if (run->console_len > 1500)
			tail = run->console + run->console_len - 1500;
		rc = say(run->err, sizeof(run->err), -EIO,
			 "sandbox kvm: the guest did not run the job (%s; QEMU %s %d): %s",
			 st.setup[0] ? st.setup : "no result",
			 WIFEXITED(ws) ? "exit" : "signal",
			 WIFEXITED(ws) ? WEXITSTATUS(ws) : WTERMSIG(ws), tail);
	}
	if (rc == 0) {
		if (!result->out)
			result->out = strdup("");
		if (!result->err)
			result->err = strdup("");
		if (!result->out || !result->err) {
			rc = -ENOMEM;
			goto out;
		}
		result->exited = st.exited;
		result->exit_status = st.status;
		result->term_signal = st.signal;
		result->timed_out = st.timed_out;
		result->memory_exceeded = st.memory_exceeded;
		result->pids_exceeded = st.pids_exceeded;
		result->output_truncated = st.truncated;
		result->user_us = st.user_us;
		result->sys_us = st.sys_us;
		result->max_rss_kb = st.max_rss_kb;
	}
out:
	if (pid > 0) {
		kill(pid, SIGKILL);
		while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
			;
	}
	if (p[0] >= 0)
		close(p[0]);
	if (p[1] >= 0)
		close(p[1]);
	free(bufs);
	return rc;
}

int sandbox_kvm_run(const struct sandbox_spec *spec, struct sandbox_result *result)
{
	struct kvm_run *run = calloc(1, sizeof(*run));
	int rc;

	memset(result, 0, sizeof(*result));
	if (!run)
		return -ENOMEM;
	run->spec = spec;
	if (geteuid() != 0) {
		free(run);
		return -EPERM;
	}
	sandbox_fill_limits(&spec->limits, &run->lim);
	run->start_us = monotonic_us();
	run->hold = malloc(sizeof(*run->hold));
	if (!run->hold) {
		rc = -ENOMEM;
		goto out;
	}
	*run->hold = (struct sandbox_hold){ .uid_lease = -1, .output_fd = -1 };
	rc = sandbox_uid_lease((uint64_t)syscall(SYS_gettid) * 2654435761u + run->start_us,
			       &run->uid);
	if (rc < 0)
		goto out;
	run->hold->uid_lease = rc;
	if (spec->output_host_dir &&
	    (rc = sandbox_mount_output(spec, &run->lim, run->uid, run->uid, run->hold,
				       &run->output_mounted)) < 0)
		goto out;
	rc = run_machine(run, result);
out:
	if (run->dir[0]) {
		unlink(run->job);
		unlink(run->result);
		rmdir(run->dir);
	}
	if (rc == 0) {
		result->uid = run->uid;
		result->hold = run->hold;
		free(run);
		return 0;
	}
	sandbox_hold_free(run->hold);
	if (run->output_mounted)
		(void)sandbox_output_release(spec->output_host_dir);
	free(result->out);
	free(result->err);
	memset(result, 0, sizeof(*result));
	result->err = strdup(run->err);
	result->err_len = result->err ? strlen(result->err) : 0;
	if (rc != -ENOMEM && rc != -EINVAL && rc != -EPERM && rc != -EAGAIN && rc != -ENODEV)
		rc = -EIO;
	free(run);
	return rc;
}
