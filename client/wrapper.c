/* The rustc wrapper: `cachepot RUSTC ARGS...` as cargo calls it.
 *
 * Not cacheable: exec rustc at once. Cacheable: build the job and its key (hash/invocation.h),
 * look up <mount>/ac/<key>; on a hit write the outputs where rustc would have, with canonical
 * paths in .d files mapped back to local ones and fresh mtimes, replay stdout and stderr the
 * same way, and exit with the recorded status. Nothing of a hit is believed because it is under
 * the mount: the manifest must verify against a pinned public key (load_trust) and be the key's,
 * name exactly the outputs rustc writes for the invocation, and every byte copied out must be
 * what it records (serve_from_mount): of the size it records, and of its SHA-256, hashed here
 * unless the mount path is a cachepot-fs mount of root's, which hashes every blob on its first
 * open and refuses a corrupt one (mount_verifies). On a miss hand the job to cachepotd through
 * cachepot-submit (client/submit.h), then serve the result the same way. Anything failing on
 * the cache path runs rustc locally after one warning line: the cache never breaks a build.
 */
#include "config.h"

#include "client/wrapper.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "base/clock.h"
#include "base/io.h"
#include "client/compiler.h"
#include "client/submit.h"
#include "fs/manifest.h"
#include "fs/prekey_list.h"
#include "hash/c_invocation.h"
#include "hash/invocation.h"
#include "hash/job.h"

extern char **environ;

/* The largest output a hit rewrites in memory (.d files, stdout, stderr). */
#define REWRITE_MAX (64u << 20)

/* Replace this process by rustc. */
static int exec_rustc(char **argv)
{
	execv(argv[0], argv);
	fprintf(stderr, "cachepot: cannot run %s: %s\n", argv[0], strerror(errno));
	return 127;
}

__attribute__((format(printf, 2, 3)))
static void log_line(const struct client_config *config, const char *fmt, ...)
{
	va_list ap;
	FILE *f;
	if (!config->log)
		return;
	f = fopen(config->log, "ae");
	if (!f)
		return;
	fprintf(f, "%ld ", (long)getpid());
	va_start(ap, fmt);
	vfprintf(f, fmt, ap);
	va_end(ap);
	fputc('\n', f);
	fclose(f);
}

/* Why a hit was refused: the name counted under "refused_hits" in the statistics. */
#define REFUSED_NO_TRUSTED_KEY "no_trusted_key"
#define REFUSED_UNTRUSTED "untrusted_manifest"
#define REFUSED_OTHER_KEY "manifest_for_another_key"
#define REFUSED_UNEXPECTED "unexpected_outputs"
#define REFUSED_MISMATCH "output_mismatch"

/* Whether the directory DIR (under the mount path) is on a cachepot-fs mount that root made:
 * the kernel's own record of the mount (the line of /proc/self/mountinfo whose device is DIR's)
 * says file system type "fuse.cachepot" (the subtype cachepot-fs mounts with) and user_id=0
 * (the uid of whoever mounted it; only root can mount over a directory root owns, and a user's
 * mount in a namespace of their own is seen by their processes only). Such a mount hashes each
 * blob on its first open, checks its size, and answers EIO for a corrupt one from then on
 * (fs/cachepot-fs.c, verify_once), after the daemon hashed it when it was written: hashing the
 * same bytes again here was a quarter of the wrapper's time on a hit. Whatever else is at the
 * mount path (a plain directory, another FUSE file system, a user's mount) is outside input and
 * hashed here. 1 or 0; 0 when the record cannot be read. */
static int mount_verifies(int dir)
{
	struct stat st;
	char *line = NULL, want[32];
	size_t cap = 0;
	int found = 0;
	FILE *f;

	if (fstat(dir, &st) < 0)
		return 0;
	snprintf(want, sizeof(want), "%u:%u", major(st.st_dev), minor(st.st_dev));
	f = fopen("/proc/self/mountinfo", "re");
	if (!f)
		return 0;
	/* ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTIONS [OPTIONAL...] - FSTYPE SOURCE SUPER_OPTIONS */
	while (!found && getline(&line, &cap, f) > 0) {
		char *fields[3], *p = line, *sep, *type, *super;
		size_t n = 0;
		while (n < 3 && (fields[n] = strsep(&p, " ")) != NULL)
			n++;
		if (n < 3 || !p || strcmp(fields[2], want) != 0 || !(sep = strstr(p, " - ")))
			continue;
		p = sep + 3;
		type = strsep(&p, " ");
		(void)strsep(&p, " ");   /* the source */
		super = strsep(&p, " \n");
		if (!type || !super || strcmp(type, "fuse.cachepot") != 0)
			continue;
		for (char *opt; !found && (opt = strsep(&super, ",")) != NULL;)
			found = strcmp(opt, "user_id=0") == 0;
		break;
	}
	free(line);
	fclose(f);
	return found;
}

/* Read blob or output NAME under DIRFD whole (at most REWRITE_MAX) and check that it is SIZE
 * bytes, and of SHA256 when VERIFY: *DATA (malloc'd) and *LEN. -EBADMSG when it is not what
 * was recorded. */
static int read_verified(int dirfd, const char *name, uint64_t size, const unsigned char sha[32], int verify,
			 char **data, size_t *len)
{
	unsigned char got[DIGEST_SIZE];
	int ret;

	*data = NULL;
	*len = 0;
	if (size > REWRITE_MAX)
		return -EFBIG;
	ret = io_read_file_at(dirfd, name, O_NOFOLLOW, REWRITE_MAX, data, len);
	if (ret == 0 && *len != size)
		ret = -EBADMSG;
	if (ret == 0 && verify && (ret = digest_buffer(*data, *len, got)) == 0 && memcmp(got, sha, DIGEST_SIZE) != 0)
		ret = -EBADMSG;
	if (ret < 0) {
		free(*data);
		*data = NULL;
	}
	return ret;
}

/* A recorded stream (a blob under <mount>/cas/), verified (hashed when VERIFY) and with paths
 * mapped back: *TEXT (malloc'd, NULL when empty) of *LEN bytes, to be written once every output
 * is in place. */
static int read_stream(const struct invocation *inv, int cas_dir, const unsigned char sha[32],
		       uint64_t size, int verify, char **text, size_t *len)
{
	char hex[DIGEST_HEX_SIZE], *data = NULL;
	size_t data_len = 0;
	int ret;

	*text = NULL;
	*len = 0;
	if (size == 0)
		return 0;
	digest_to_hex(sha, hex);
	ret = read_verified(cas_dir, hex, size, sha, verify, &data, &data_len);
	if (ret == 0)
		ret = path_map_rewrite_to_local(&inv->rewrite, data, data_len, text, len);
	free(data);
	return ret;
}

/* Copy the SIZE bytes of IN into OUT in the kernel, without hashing them: copy_file_range
 * (which a future kernel may do across file systems), else sendfile (a splice from IN's page
 * cache: what a FUSE file to ext4 gets), else read and write. -EBADMSG when IN does not hold
 * exactly SIZE bytes; *COPIED the bytes read. */
static int copy_unhashed(int in, int out, uint64_t size, uint64_t *copied)
{
	int use_copy_range = 1, use_sendfile = 1;
	char buf[1 << 16];

	*copied = 0;
	for (;;) {
		/* One byte past SIZE is asked for, so that a longer file shows. */
		size_t want = size - *copied + 1 > (1u << 30) ? 1u << 30 : (size_t)(size - *copied + 1);
		ssize_t r = -1;
		if (use_copy_range) {
			r = copy_file_range(in, NULL, out, NULL, want, 0);
			if (r < 0 && (errno == EXDEV || errno == EINVAL || errno == EOPNOTSUPP || errno == ENOSYS)
			    && *copied == 0) {
				use_copy_range = 0;
				continue;
			}
		} else if (use_sendfile) {
			r = sendfile(out, in, NULL, want);
			if (r < 0 && (errno == EINVAL || errno == ENOSYS) && *copied == 0) {
				use_sendfile = 0;
				continue;
			}
		} else {
			r = read(in, buf, want < sizeof(buf) ? want : sizeof(buf));
			if (r > 0 && io_write_all(out, buf, (size_t)r) < 0)
				return -errno;
		}
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -errno;
		if (r == 0)
			break;
		*copied += (uint64_t)r;
		if (*copied > size)
			return -EBADMSG;
	}
	return *copied == size ? 0 : -EBADMSG;
}

/* Copy output O from SRC_DIR into the new file OUT, hashing the bytes as they come when VERIFY:
 * a .d file with canonical paths mapped back to local ones, anything else as it is. -EBADMSG
 * when the bytes are not the manifest's (size, and SHA-256 when VERIFY); *BYTES grows by the
 * bytes read. */
static int copy_verified(const struct invocation *inv, int src_dir, const struct manifest_output *o, int verify,
			 int out, uint64_t *bytes)
{
	size_t nlen = strlen(o->name);
	unsigned char got[DIGEST_SIZE];
	unsigned got_len = 0;
	char buf[1 << 16];
	uint64_t copied = 0;
	EVP_MD_CTX *md;
	int in, ret = 0;

	if (nlen > 2 && strcmp(o->name + nlen - 2, ".d") == 0) {
		char *data = NULL, *local = NULL;
		size_t len = 0, local_len = 0;
		ret = read_verified(src_dir, o->name, o->size, o->sha256, verify, &data, &len);
		if (ret == 0)
			ret = path_map_rewrite_to_local(&inv->rewrite, data, len, &local, &local_len);
		if (ret == 0)
			ret = io_write_all(out, local, local_len);
		*bytes += len;
		free(data);
		free(local);
		return ret;
	}
	in = openat(src_dir, o->name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (in < 0)
		return -errno;
	if (!verify) {
		ret = copy_unhashed(in, out, o->size, &copied);
		*bytes += copied;
		close(in);
		return ret;
	}
	md = EVP_MD_CTX_new();
	if (!md || EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1)
		ret = -ENOMEM;
	while (ret == 0) {
		ssize_t r = read(in, buf, sizeof(buf));
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			ret = -errno;
		if (r <= 0)
			break;
		copied += (uint64_t)r;
		/* More than recorded is wrong whatever follows: stop reading. */
		if (copied > o->size)
			ret = -EBADMSG;
		if (ret == 0 && EVP_DigestUpdate(md, buf, (size_t)r) != 1)
			ret = -ENOMEM;
		if (ret == 0)
			ret = io_write_all(out, buf, (size_t)r);
	}
	if (ret == 0 && (EVP_DigestFinal_ex(md, got, &got_len) != 1 || got_len != DIGEST_SIZE))
		ret = -ENOMEM;
	if (ret == 0 && (copied != o->size || memcmp(got, o->sha256, DIGEST_SIZE) != 0))
		ret = -EBADMSG;
	*bytes += copied;
	EVP_MD_CTX_free(md);
	close(in);
	return ret;
}

/* Is M's output list exactly what rustc writes for INV (hash/job.h's job_expected_outputs,
 * the list the daemon collects)? Names are unique in a verified manifest, so equal counts and
 * each name expected make the sets equal. */
static int outputs_expected(const struct invocation *inv, const struct manifest *m)
{
	char **names = NULL;
	size_t n = 0;
	int ret = job_expected_outputs(&inv->job, &names, &n);

	if (ret < 0)
		return ret;
	if (m->n_outputs != n)
		ret = -EBADMSG;
	for (size_t i = 0; i < m->n_outputs && ret == 0; i++) {
		size_t j = 0;
		while (j < n && strcmp(names[j], m->outputs[i].name) != 0)
			j++;
		if (j == n)
			ret = -EBADMSG;
	}
	job_names_free(names, n);
	return ret;
}

/* The outputs of a hit while they are written: each first under a temp name in the out dir. */
struct staged_outputs {
	int out_dir;                  /* the local --out-dir */
	size_t n;
	char (*temp)[NAME_MAX + 1];   /* temp[i]: output i's temp name, "" when none was made */
	unsigned char *renamed;       /* renamed[i]: output i is in place under its own name */
};

/* Write output O of the hit into a new temp file of the out dir (mode 0755 or 0644, whatever
 * the manifest says beyond that), verified while it is copied. */
static int stage_output(const struct invocation *inv, int src_dir, const struct manifest_output *o, int verify,
			struct staged_outputs *st, size_t i, uint64_t *bytes)
{
	int out, ret;

	if (snprintf(st->temp[i], sizeof(st->temp[i]), ".cachepot-%ld-%zu", (long)getpid(), i)
	    >= (int)sizeof(st->temp[i]))
		return -ENAMETOOLONG;
	out = openat(st->out_dir, st->temp[i], O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
		     o->mode == 0755 ? 0755 : 0644);
	if (out < 0) {
		ret = -errno;
		st->temp[i][0] = '\0';
		return ret;
	}
	ret = copy_verified(inv, src_dir, o, verify, out, bytes);
	if (close(out) < 0 && ret == 0)
		ret = -errno;
	return ret;
}

/* Undo a hit that failed: remove every temp file, and every output already renamed into place
 * (it is rustc's to write now: the fallback compiles it again). */
static void unstage(const struct manifest *m, struct staged_outputs *st)
{
	for (size_t i = 0; i < st->n; i++) {
		if (st->renamed[i])
			unlinkat(st->out_dir, m->outputs[i].name, 0);
		else if (st->temp[i][0])
			unlinkat(st->out_dir, st->temp[i], 0);
	}
}

/* Write every output of M into the out dir: all are copied and verified under temp names
 * first, then renamed over their own names (a reader never sees half a file, the mtimes are
 * now). On any failure nothing of the hit is left in the out dir. */
static int write_outputs(const struct invocation *inv, int src_dir, const struct manifest *m, int verify,
			 uint64_t *bytes, const char **refused)
{
	struct staged_outputs st = { .out_dir = -1, .n = m->n_outputs };
	int ret = 0;

	st.temp = calloc(st.n ? st.n : 1, sizeof(*st.temp));
	st.renamed = calloc(st.n ? st.n : 1, 1);
	if (!st.temp || !st.renamed) {
		ret = -ENOMEM;
		goto out;
	}
	st.out_dir = open(inv->out_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (st.out_dir < 0) {
		ret = -errno;
		goto out;
	}
	for (size_t i = 0; i < st.n && ret == 0; i++)
		ret = stage_output(inv, src_dir, &m->outputs[i], verify, &st, i, bytes);
	if (ret == -EBADMSG)
		*refused = REFUSED_MISMATCH;
	for (size_t i = 0; i < st.n && ret == 0; i++) {
		if (renameat(st.out_dir, st.temp[i], st.out_dir, m->outputs[i].name) < 0)
			ret = -errno;
		else
			st.renamed[i] = 1;
	}
	if (ret < 0)
		unstage(m, &st);
out:
	if (st.out_dir >= 0)
		close(st.out_dir);
	free(st.temp);
	free(st.renamed);
	return ret;
}

/* Serve the result of INV's key from the mount. Returns 0 with *STATUS set, -ENOENT when the
 * key is not published, another -errno when the mount cannot serve it; when the hit is refused
 * (a manifest not signed by a pinned key, for another key, naming outputs rustc would not
 * write, or bytes that are not the manifest's) *REFUSED names why. Nothing is written before
 * the manifest and the recorded streams are checked, no output is left behind when any of them
 * fails its check, and stdout and stderr are replayed only once every output is in place: a
 * refused hit leaves the out dir as it was and prints nothing, so the fallback's rustc is the
 * only one heard. ERR_BEFORE (ERR_BEFORE_LEN bytes) goes to stderr before the recorded stderr:
 * what the local preprocessor of a C compile said. */
static int serve_from_mount(const struct client_config *config, const struct manifest_trust *trust,
			    const struct invocation *inv, const char *err_before, size_t err_before_len, int *status,
			    struct stats_delta *delta, uint64_t *recorded_ms, const char **refused, int *hashed)
{
	char key_hex[DIGEST_HEX_SIZE], path[PATH_MAX];
	struct manifest m;
	char *text = NULL, *out_text = NULL, *err_text = NULL;
	size_t len = 0, out_len = 0, err_len = 0;
	int dir = -1, cas = -1, verify, ret;

	manifest_init(&m);
	*refused = NULL;
	digest_to_hex(inv->key, key_hex);
	if (snprintf(path, sizeof(path), "%s/ac/%s", config->mount, key_hex) >= (int)sizeof(path))
		return -ENAMETOOLONG;
	/* O_PATH: only looked up, never opened. An open directory on the mount is an opendir,
	 * and cachepot-fs answers an opendir of cas/ with a catch-up with the daemon's index and
	 * a listing of every blob in the store: most of a hit's time, and of the mount's CPU. */
	dir = open(path, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (dir < 0) {
		ret = -errno;
		/* Is the mount there at all? A missing mount is an error, not a miss. */
		if (ret == -ENOENT) {
			snprintf(path, sizeof(path), "%s/ac", config->mount);
			if (access(path, F_OK) < 0)
				ret = -ENOTCONN;
		}
		return ret;
	}
	ret = io_read_file_at(dir, MANIFEST_NAME, O_NOFOLLOW, MANIFEST_MAX_TEXT, &text, &len);
	if (ret == 0 && trust->n_keys == 0) {
		*refused = REFUSED_NO_TRUSTED_KEY;
		ret = -ENOKEY;
	}
	/* Against the pinned keys, never the one the text carries. */
	if (ret == 0 && (ret = manifest_verify_trusted(text, len, trust, &m)) == -EBADMSG)
		*refused = REFUSED_UNTRUSTED;
	if (ret == 0 && strcmp(m.key, key_hex) != 0) {
		*refused = REFUSED_OTHER_KEY;
		ret = -EBADMSG;
	}
	if (ret == 0 && (ret = outputs_expected(inv, &m)) == -EBADMSG)
		*refused = REFUSED_UNEXPECTED;
	if (ret < 0)
		goto out;
	snprintf(path, sizeof(path), "%s/cas", config->mount);
	cas = open(path, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (cas < 0) {
		ret = -errno;
		goto out;
	}
	verify = config->verify_always || !mount_verifies(dir);
	*hashed = verify;
	ret = read_stream(inv, cas, m.stdout_sha256, m.stdout_size, verify, &out_text, &out_len);
	if (ret == 0)
		ret = read_stream(inv, cas, m.stderr_sha256, m.stderr_size, verify, &err_text, &err_len);
	if (ret == -EBADMSG)
		*refused = REFUSED_MISMATCH;
	if (ret == 0)
		ret = write_outputs(inv, dir, &m, verify, &delta->bytes_from_cache, refused);
	if (ret < 0)
		goto out;
	/* The hit is served; a stream that cannot be written now is the caller's problem, as it
	 * would be rustc's. */
	if (out_len && io_write_all(STDOUT_FILENO, out_text, out_len) < 0)
		fprintf(stderr, "cachepot: warning: rustc's recorded output could not be written\n");
	if (err_before_len)
		(void)!io_write_all(STDERR_FILENO, err_before, err_before_len);
	if (err_len)
		(void)!io_write_all(STDERR_FILENO, err_text, err_len);
	*status = m.exit_status;
	*recorded_ms = m.duration_ms;
out:
	if (cas >= 0)
		close(cas);
	close(dir);
	free(text);
	free(out_text);
	free(err_text);
	manifest_release(&m);
	return ret;
}

/* The keys a manifest must be signed with (see settings.h): the configured trust file, else
 * the first of the default ones that can be read. A configured file that cannot be used, or
 * none at all, leaves TRUST empty: every hit is then refused, and rustc runs here. */
static void load_trust(const struct client_config *config, struct manifest_trust *trust)
{
	static const char *const defaults[] = { CACHEPOT_DEFAULT_TRUST, CACHEPOT_DEFAULT_STORE_KEY };
	unsigned bad_line = 0;
	int ret;

	trust->n_keys = 0;
	if (config->trust) {
		ret = manifest_trust_load(trust, config->trust, &bad_line);
		if (ret == -EINVAL && bad_line)
			fprintf(stderr, "cachepot: warning: trust file %s, line %u: not a 64-hex public key\n",
				config->trust, bad_line);
		else if (ret < 0)
			fprintf(stderr, "cachepot: warning: trust file %s: %s\n", config->trust,
				ret == -EINVAL ? "names no key" : strerror(-ret));
		return;
	}
	for (size_t i = 0; i < sizeof(defaults) / sizeof(defaults[0]); i++)
		if (manifest_trust_load(trust, defaults[i], &bad_line) == 0)
			return;
}

/* The pinned keys, loaded when first needed (by a published list or a hit). */
struct wrapper_trust {
	const struct client_config *config;
	struct manifest_trust keys;
	int loaded;
};

static const struct manifest_trust *trust_get(struct wrapper_trust *t)
{
	if (!t->loaded) {
		load_trust(t->config, &t->keys);
		t->loaded = 1;
	}
	return &t->keys;
}

/* invocation_options.published_lists: the lists the daemon published under PREKEY_HEX, read
 * at <mount>/pk/<pre-key> and believed only when signed by a pinned key for that pre-key
 * (fs/prekey_list.h). Whatever they say, a hit still needs a manifest under the key computed
 * from them (serve_from_mount). */
static int published_lists(void *ctx, const char prekey_hex[DIGEST_HEX_SIZE], json_t **lists)
{
	struct wrapper_trust *trust = ctx;
	char path[PATH_MAX], *text = NULL;
	size_t len = 0;
	int ret;

	*lists = NULL;
	if (snprintf(path, sizeof(path), "%s/pk/%s", trust->config->mount, prekey_hex) >= (int)sizeof(path))
		return -ENAMETOOLONG;
	ret = io_read_file_at(AT_FDCWD, path, O_NOFOLLOW, PREKEY_LISTS_MAX_TEXT, &text, &len);
	if (ret == 0)
		ret = prekey_lists_verify_trusted(text, len, trust_get(trust), prekey_hex, lists);
	free(text);
	return ret;
}

/* The warning of a refused hit (REFUSED one of the REFUSED_* names). */
static const char *refusal_text(const char *refused)
{
	if (strcmp(refused, REFUSED_NO_TRUSTED_KEY) == 0)
		return "no public key is pinned (trust, CACHEPOT_TRUST)";
	if (strcmp(refused, REFUSED_UNTRUSTED) == 0)
		return "its manifest is not signed by a pinned key";
	if (strcmp(refused, REFUSED_OTHER_KEY) == 0)
		return "its manifest is another key's";
	if (strcmp(refused, REFUSED_UNEXPECTED) == 0)
		return "its manifest names outputs rustc would not write";
	return "an output is not what its manifest records";
}

/* A link job whose sandboxed compile failed is remembered by its key under
 * <cache dir>/link-failed/, so that later builds compile it here at once instead of sending
 * it again (a link can fail in the sandbox for want of what only the host has, such as a
 * native library a dependency links). A lib job's failure is not remembered: it is the
 * source's, and the local compile shows it. */
static int link_failure_path(const struct client_config *config, const char key_hex[DIGEST_HEX_SIZE], char *path,
			     size_t len)
{
	if (!config->cache_dir)
		return -ENOENT;
	return snprintf(path, len, "%s/link-failed/%s", config->cache_dir, key_hex) < (int)len ? 0 : -ENAMETOOLONG;
}

static int link_failed_before(const struct client_config *config, const char key_hex[DIGEST_HEX_SIZE])
{
	char path[PATH_MAX];
	struct stat st;
	return link_failure_path(config, key_hex, path, sizeof(path)) == 0
	       && fstatat(AT_FDCWD, path, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode);
}

static void remember_link_failure(const struct client_config *config, const char key_hex[DIGEST_HEX_SIZE])
{
	char path[PATH_MAX];
	int fd;
	if (!config->cache_dir
	    || snprintf(path, sizeof(path), "%s/link-failed", config->cache_dir) >= (int)sizeof(path)
	    || (mkdir(path, 0700) < 0 && errno != EEXIST) || link_failure_path(config, key_hex, path, sizeof(path)) < 0)
		return;
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd >= 0)
		close(fd);
}

int wrapper_main(const struct client_config *config, int argc, char **argv)
{
	struct invocation_options options = { .cache_dir = config->cache_dir, .envp = environ };
	struct stats_delta delta = { .not_cacheable = -1 };
	struct invocation inv;
	char key_hex[DIGEST_HEX_SIZE], err[512], direct_dir[PATH_MAX];
	uint64_t t0 = monotonic_us(), t_serve, recorded_ms = 0;
	struct wrapper_trust trust = { .config = config };
	const char *refused = NULL;
	int status = 0, hashed = 0, ret;
	enum submit_result submitted;

	if (config->disable)
		return exec_rustc(argv);
	if (config->cache_dir
	    && snprintf(direct_dir, sizeof(direct_dir), "%s/direct", config->cache_dir) < (int)sizeof(direct_dir)) {
		options.direct_dir = direct_dir;
		options.use_direct = config->direct;
		options.published_lists = published_lists;
		options.published_ctx = &trust;
	}
	/* A direct key serves hits only: a miss on one tries the next list (the local one, then
	 * the published ones, at most 1 + PREKEY_LISTS_MAX), then the full dep-info pass (which
	 * also records the input list for next time) and looks again. */
	for (;;) {
		ret = invocation_build(&inv, argv[0], argc - 1, argv + 1, &options);
		if (ret < 0) {
			snprintf(err, sizeof(err), "%s", strerror(-ret));
			goto fallback;
		}
		if (inv.reason != RUSTC_CACHEABLE) {
			delta.not_cacheable = inv.reason;
			log_line(config, "not cacheable (%s: %s): %s", rustc_reason_name(inv.reason),
				 inv.reason_detail, inv.args.crate_name ? inv.args.crate_name : "-");
			invocation_release(&inv);
			stats_record(config, &delta);
			return exec_rustc(argv);
		}
		digest_to_hex(inv.key, key_hex);
		t_serve = monotonic_us();
		ret = serve_from_mount(config, trust_get(&trust), &inv, NULL, 0, &status, &delta, &recorded_ms, &refused, &hashed);
		if (ret == 0) {
			delta.hits = 1;
			delta.direct_hits = inv.direct;
			delta.published_list_hits = inv.direct && inv.direct_published;
			invocation_direct_keep(&inv, &options);
			delta.us_from_cache = monotonic_us() - t0;
			delta.us_saved_estimate = recorded_ms * 1000;
			/* The split is what bench/run reports as the cost of a hit. */
			log_line(config, "hit %s %s (%.1f ms, %s, toolchain %.2f ms, dep-info %.2f ms, "
				 "inputs+key %.2f ms, serve %.2f ms, %s)", key_hex, inv.args.crate_name,
				 delta.us_from_cache / 1e3,
				 inv.direct ? inv.direct_published ? "direct, published list" : "direct" : "full pass",
				 inv.us_toolchain / 1e3, inv.us_dep_info / 1e3, inv.us_hash / 1e3,
				 (monotonic_us() - t_serve) / 1e3, hashed ? "hashed here" : "hashed by the mount");
			goto done;
		}
		if (refused) {
			snprintf(err, sizeof(err), "hit %.16s refused: %s", key_hex, refusal_text(refused));
			goto fallback;
		}
		if (ret != -ENOENT) {
			snprintf(err, sizeof(err), "the mount at %s cannot serve %.16s: %s", config->mount,
				 key_hex, strerror(-ret));
			goto fallback;
		}
		if (!inv.direct)
			break;
		options.direct_from = inv.direct_next;
		invocation_release(&inv);
	}

	if (inv.link.id[0] && link_failed_before(config, key_hex)) {
		delta.not_cacheable = RUSTC_NC_LINK_FAILED;
		log_line(config, "not cacheable (%s: failed in the sandbox before): %s %s",
			 rustc_reason_name(RUSTC_NC_LINK_FAILED), key_hex, inv.args.crate_name);
		invocation_release(&inv);
		stats_record(config, &delta);
		return exec_rustc(argv);
	}
	submitted = submit_via_helper(config, &inv, err, sizeof(err));
	if (submitted == SUBMIT_COMPILE_FAILED) {
		/* rustc failed in the sandbox: run it here, where the user sees its messages. */
		delta.compile_failures = 1;
		delta.fallbacks = 1;
		log_line(config, "compile failed in the sandbox %s %s: %s", key_hex, inv.args.crate_name, err);
		if (inv.link.id[0])
			remember_link_failure(config, key_hex);
		invocation_release(&inv);
		stats_record(config, &delta);
		return exec_rustc(argv);
	}
	if (submitted != SUBMIT_OK)
		goto fallback;
	ret = serve_from_mount(config, trust_get(&trust), &inv, NULL, 0, &status, &delta, &recorded_ms, &refused, &hashed);
	if (ret < 0 && refused) {
		snprintf(err, sizeof(err), "published %.16s but refused it: %s", key_hex, refusal_text(refused));
		goto fallback;
	}
	if (ret < 0) {
		snprintf(err, sizeof(err), "published %.16s but the mount at %s cannot serve it: %s", key_hex,
			 config->mount, strerror(-ret));
		goto fallback;
	}
	delta.misses = 1;
	delta.us_from_cache = monotonic_us() - t0;
	log_line(config, "miss %s %s (%.1f ms)", key_hex, inv.args.crate_name, delta.us_from_cache / 1e3);
done:
	invocation_release(&inv);
	stats_record(config, &delta);
	return status;

fallback:
	fprintf(stderr, "cachepot: warning: %s; compiling locally\n", err);
	log_line(config, "fallback: %s", err);
	delta.fallbacks = 1;
	delta.errors = 1;
	delta.refused_hit = refused;
	invocation_release(&inv);
	stats_record(config, &delta);
	return exec_rustc(argv);
}

/* The C and C++ path: as wrapper_main, without direct mode (the preprocessor is the pass that
 * finds the inputs, and it is the unit that is hashed) and without remembering failures (a C
 * compile that fails in the sandbox fails here too: it is the source's, and it shows). */
int wrapper_c_main(const struct client_config *config, const char *driver, int argc, char **argv)
{
	struct c_invocation_options options = { .cache_dir = config->cache_dir, .envp = environ };
	struct stats_delta delta = { .not_cacheable = -1, .c_compile = 1 };
	struct c_invocation ci;
	struct manifest_trust trust;
	char key_hex[DIGEST_HEX_SIZE], err[512];
	uint64_t t0 = monotonic_us(), recorded_ms = 0;
	const char *refused = NULL;
	const char *source;
	int status = 0, hashed = 0, ret;
	enum submit_result submitted;

	if (config->disable)
		return compiler_exec(driver, argv);
	ret = c_invocation_build(&ci, driver, argv[0], argc - 1, argv + 1, &options);
	if (ret < 0) {
		snprintf(err, sizeof(err), "%s", strerror(-ret));
		goto fallback;
	}
	source = ci.args.source ? ci.args.source : "-";
	if (ci.reason != C_CACHEABLE) {
		delta.c_not_cacheable = ci.reason;
		log_line(config, "not cacheable (%s: %s): %s", c_reason_name(ci.reason), ci.reason_detail, source);
		c_invocation_release(&ci);
		stats_record(config, &delta);
		return compiler_exec(driver, argv);
	}
	digest_to_hex(ci.inv.key, key_hex);
	load_trust(config, &trust);
	ret = serve_from_mount(config, &trust, &ci.inv, ci.preprocessor_stderr, ci.preprocessor_stderr_len, &status,
			       &delta, &recorded_ms, &refused, &hashed);
	if (ret == 0) {
		delta.hits = 1;
		delta.us_from_cache = monotonic_us() - t0;
		delta.us_saved_estimate = recorded_ms * 1000;
		log_line(config, "hit %s %s (%.1f ms, toolchain %.2f ms, preprocess %.2f ms, hash %.2f ms, %s)", key_hex,
			 source, delta.us_from_cache / 1e3, ci.us_toolchain / 1e3, ci.us_preprocess / 1e3,
			 ci.us_hash / 1e3, hashed ? "hashed here" : "hashed by the mount");
		goto done;
	}
	if (refused) {
		snprintf(err, sizeof(err), "hit %.16s refused: %s", key_hex, refusal_text(refused));
		goto fallback;
	}
	if (ret != -ENOENT) {
		snprintf(err, sizeof(err), "the mount at %s cannot serve %.16s: %s", config->mount, key_hex,
			 strerror(-ret));
		goto fallback;
	}
	submitted = submit_via_helper(config, &ci.inv, err, sizeof(err));
	if (submitted == SUBMIT_COMPILE_FAILED) {
		delta.compile_failures = 1;
		delta.fallbacks = 1;
		log_line(config, "compile failed in the sandbox %s %s: %s", key_hex, source, err);
		c_invocation_release(&ci);
		stats_record(config, &delta);
		return compiler_exec(driver, argv);
	}
	if (submitted != SUBMIT_OK)
		goto fallback;
	ret = serve_from_mount(config, &trust, &ci.inv, ci.preprocessor_stderr, ci.preprocessor_stderr_len, &status,
			       &delta, &recorded_ms, &refused, &hashed);
	if (ret < 0 && refused) {
		snprintf(err, sizeof(err), "published %.16s but refused it: %s", key_hex, refusal_text(refused));
		goto fallback;
	}
	if (ret < 0) {
		snprintf(err, sizeof(err), "published %.16s but the mount at %s cannot serve it: %s", key_hex,
			 config->mount, strerror(-ret));
		goto fallback;
	}
	delta.misses = 1;
	delta.us_from_cache = monotonic_us() - t0;
	log_line(config, "miss %s %s (%.1f ms, preprocess %.2f ms)", key_hex, source, delta.us_from_cache / 1e3,
		 ci.us_preprocess / 1e3);
done:
	c_invocation_release(&ci);
	stats_record(config, &delta);
	return status;

fallback:
	fprintf(stderr, "cachepot: warning: %s; compiling locally\n", err);
	log_line(config, "fallback: %s", err);
	delta.fallbacks = 1;
	delta.errors = 1;
	delta.refused_hit = refused;
	c_invocation_release(&ci);
	stats_record(config, &delta);
	return compiler_exec(driver, argv);
}
