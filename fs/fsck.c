/* cachepot fsck [-q] [STORE]: verify a store.
 *
 * Checks, reporting each problem on stderr as "cachepot fsck: <what>: <why>":
 *  1. every file under cas/: named by 64 hex digits in the directory of its first two, a regular
 *     file, and its SHA-256 equals its name (every byte is read);
 *  2. every manifest in the index: its Ed25519 signature verifies against the store's public key,
 *     its key is the one it is stored under, and every blob it names (outputs, stdout, stderr) is
 *     present, has the size the manifest says, and passed check 1;
 *  3. blob records of the index that name a missing blob (a warning when no manifest refers to
 *     it, since records of unpublished blobs are written without sync).
 * The store is opened as a reader (RocksDB secondary), so fsck may run while the daemon writes;
 * a key published during the run may or may not be checked.
 * Exit status: 0 clean, 1 damage found, 2 usage or I/O error.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fs/fsck.h"
#include "fs/manifest.h"
#include "fs/store.h"
#include "hash/digest.h"

struct fsck {
	struct store *store;
	int quiet;
	uint64_t blobs, bytes, keys, problems, warnings;
	unsigned char (*corrupt)[32];   /* blobs whose content does not match their name */
	size_t n_corrupt, cap_corrupt;
};

__attribute__((format(printf, 2, 3)))
static void problem(struct fsck *f, const char *fmt, ...)
{
	va_list ap;
	f->problems++;
	fputs("cachepot fsck: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

static int note_corrupt(struct fsck *f, const unsigned char sha[32])
{
	if (f->n_corrupt == f->cap_corrupt) {
		size_t cap = f->cap_corrupt ? 2 * f->cap_corrupt : 16;
		void *p = reallocarray(f->corrupt, cap, 32);
		if (!p)
			return -ENOMEM;
		f->corrupt = p;
		f->cap_corrupt = cap;
	}
	memcpy(f->corrupt[f->n_corrupt++], sha, 32);
	return 0;
}

static int is_corrupt(const struct fsck *f, const unsigned char sha[32])
{
	for (size_t i = 0; i < f->n_corrupt; i++)
		if (memcmp(f->corrupt[i], sha, 32) == 0)
			return 1;
	return 0;
}

static int check_blob_dir(struct fsck *f, int cas_fd, const char *sub)
{
	int fd = openat(cas_fd, sub, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0) {
		if (errno == ENOENT)
			return 0;
		problem(f, "cas/%s: %s", sub, strerror(errno));
		return 0;
	}
	DIR *d = fdopendir(fd);
	if (!d) {
		close(fd);
		return -errno;
	}
	struct dirent *e;
	int ret = 0;
	while ((e = readdir(d)) && ret == 0) {
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		unsigned char name_sha[32], sha[32];
		uint64_t size = 0;
		if (!digest_hex_valid(e->d_name) || strncmp(e->d_name, sub, 2) != 0 ||
		    digest_from_hex(e->d_name, name_sha) < 0) {
			problem(f, "cas/%s/%s: stray file (not named by a SHA-256 of this directory)", sub,
			        e->d_name);
			continue;
		}
		int r = digest_file_at(fd, e->d_name, sha, &size);
		if (r < 0) {
			problem(f, "blob %s: cannot read: %s", e->d_name, strerror(-r));
			ret = note_corrupt(f, name_sha);
			continue;
		}
		f->blobs++;
		f->bytes += size;
		if (memcmp(sha, name_sha, 32) != 0) {
			char hex[DIGEST_HEX_SIZE];
			digest_to_hex(sha, hex);
			problem(f, "blob %s: CORRUPT, its content hashes to %s", e->d_name, hex);
			ret = note_corrupt(f, name_sha);
		}
	}
	closedir(d);
	return ret;
}

static void check_named_blob(struct fsck *f, const char *key, const char *what,
                             const unsigned char sha[32], uint64_t size)
{
	char hex[DIGEST_HEX_SIZE];
	uint64_t actual;
	digest_to_hex(sha, hex);
	int r = store_blob_size(f->store, sha, &actual);
	if (r == -ENOENT)
		problem(f, "key %s: %s names blob %s, which is MISSING", key, what, hex);
	else if (r < 0)
		problem(f, "key %s: %s names blob %s: %s", key, what, hex, strerror(-r));
	else if (actual != size)
		problem(f, "key %s: %s names blob %s of %" PRIu64 " bytes, the blob has %" PRIu64, key,
		        what, hex, size, actual);
	else if (is_corrupt(f, sha))
		problem(f, "key %s: %s names blob %s, which is CORRUPT", key, what, hex);
}

static int check_manifest(void *ctx, const char key_hex[65], const char *text, size_t len)
{
	struct fsck *f = ctx;
	struct manifest m;
	f->keys++;
	int r = store_parse_manifest(f->store, text, len, &m);
	if (r < 0) {
		problem(f, "key %s: manifest %s", key_hex,
		        r == -EBADMSG ? "is malformed or its signature does not verify with the store's key"
		                      : strerror(-r));
		return r == -ENOMEM ? r : 0;
	}
	if (strcmp(m.key, key_hex) != 0)
		problem(f, "key %s: manifest is for another key, %s", key_hex, m.key);
	for (size_t i = 0; i < m.n_outputs; i++) {
		char what[MANIFEST_MAX_NAME + 16];
		snprintf(what, sizeof(what), "output %s", m.outputs[i].name);
		check_named_blob(f, key_hex, what, m.outputs[i].sha256, m.outputs[i].size);
	}
	check_named_blob(f, key_hex, "stdout", m.stdout_sha256, m.stdout_size);
	check_named_blob(f, key_hex, "stderr", m.stderr_sha256, m.stderr_size);
	manifest_release(&m);
	return 0;
}

static int check_record(void *ctx, const unsigned char sha[32], const struct store_blob_record *rec)
{
	struct fsck *f = ctx;
	char hex[DIGEST_HEX_SIZE];
	digest_to_hex(sha, hex);
	if (rec->last_use == -1) {
		problem(f, "index: blob record of %s is malformed", hex);
		return 0;
	}
	if (store_has_blob(f->store, sha) == 1)
		return 0;
	if (rec->refs > 0) {
		problem(f, "index: blob %s has %" PRIu64 " references but is MISSING", hex, rec->refs);
	} else {
		f->warnings++;
		if (!f->quiet)
			fprintf(stderr, "cachepot fsck: warning: index records blob %s, which is absent "
			        "(no manifest names it)\n", hex);
	}
	return 0;
}

static unsigned count_temp_files(int dir_fd)
{
	int fd = openat(dir_fd, "tmp", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	DIR *d = fdopendir(fd);
	if (!d) {
		close(fd);
		return 0;
	}
	unsigned n = 0;
	struct dirent *e;
	while ((e = readdir(d)))
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
			n++;
	closedir(d);
	return n;
}

int fsck_command(int argc, char **argv)
{
	struct fsck f;
	const char *dir = STORE_DEFAULT_DIR;
	int status = 2;
	memset(&f, 0, sizeof(f));
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "-q") == 0) {
			f.quiet = 1;
		} else if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
			printf("usage: cachepot fsck [-q] [STORE]\n"
			       "Verify every blob's hash, every manifest's signature and that every blob a\n"
			       "manifest names exists. STORE defaults to " STORE_DEFAULT_DIR ".\n"
			       "Exit status: 0 clean, 1 damage found, 2 error.\n");
			return 0;
		} else if (argv[i][0] == '-' || i != argc - 1) {
			fprintf(stderr, "usage: cachepot fsck [-q] [STORE]\n");
			return 2;
		} else {
			dir = argv[i];
		}
	}
	int r = store_open(dir, STORE_READ_ONLY, &f.store);
	if (r < 0) {
		fprintf(stderr, "cachepot fsck: cannot open store %s: %s\n", dir, strerror(-r));
		return 2;
	}
	int cas_fd = openat(store_dir_fd(f.store), "cas", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (cas_fd < 0) {
		fprintf(stderr, "cachepot fsck: %s/cas: %s\n", dir, strerror(errno));
		goto out;
	}
	for (unsigned i = 0; i < 256 && r == 0; i++) {
		char sub[3];
		snprintf(sub, sizeof(sub), "%02x", i);
		r = check_blob_dir(&f, cas_fd, sub);
	}
	close(cas_fd);
	/* Manifests after blobs so that a key naming a corrupt blob says so. */
	if (r == 0)
		r = store_foreach_manifest(f.store, check_manifest, &f);
	if (r == 0)
		r = store_foreach_blob_record(f.store, check_record, &f);
	if (r < 0) {
		fprintf(stderr, "cachepot fsck: %s: %s\n", dir, strerror(-r));
		goto out;
	}
	unsigned temps = count_temp_files(store_dir_fd(f.store));
	if (!f.quiet || f.problems)
		fprintf(stderr, "cachepot fsck: %s: %" PRIu64 " blobs (%" PRIu64 " bytes), %" PRIu64
		        " keys; %" PRIu64 " problems, %" PRIu64 " warnings%s\n", dir, f.blobs, f.bytes,
		        f.keys, f.problems, f.warnings,
		        temps ? " (temp files in tmp/ of an interrupted writer; the next writer removes them)"
		              : "");
	status = f.problems ? 1 : 0;
out:
	free(f.corrupt);
	store_close(f.store);
	return status;
}
