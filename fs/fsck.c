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
 * Keys with a verify mark (a rebuild gave other outputs, daemon/verify.h) are listed as notes:
 * no damage, the published entry is intact and checked by 2.
 * The store is opened as a reader (RocksDB secondary), so fsck may run while the daemon writes;
 * a key published during the run may or may not be checked.
 * Exit status: 0 clean, 1 damage found, 2 usage or I/O error.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

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

static int check_blob_file(void *ctx, const struct store_blob_file *file)
{
	struct fsck *f = ctx;
	if (file->error) {
		problem(f, "cas/%s: %s", file->rel, strerror(-file->error));
		return 0;
	}
	if (!file->sha256) {
		problem(f, "cas/%s: stray file (not named by a SHA-256 of this directory)", file->rel);
		return 0;
	}
	const char *name = file->rel + 3;
	unsigned char sha[32];
	uint64_t size = 0;
	int fd = store_open_blob_unused(f->store, file->sha256);
	if (fd >= 0)
		(void)posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
	int r = fd < 0 ? fd : digest_fd(fd, sha, &size);
	if (fd >= 0)
		close(fd);
	if (r < 0) {
		problem(f, "blob %s: cannot read: %s", name, strerror(-r));
		return note_corrupt(f, file->sha256);
	}
	f->blobs++;
	f->bytes += size;
	if (memcmp(sha, file->sha256, 32) != 0) {
		char hex[DIGEST_HEX_SIZE];
		digest_to_hex(sha, hex);
		problem(f, "blob %s: CORRUPT, its content hashes to %s", name, hex);
		return note_corrupt(f, file->sha256);
	}
	return 0;
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

/* A verify mark (fs/store.h) is no damage: the key's published entry is intact and was
 * checked above. It is shown, so that whoever checks the store learns which keys do not build
 * reproducibly. */
static int show_mark(void *ctx, const char key_hex[65], const char *text, size_t len)
{
	struct fsck *f = ctx;
	json_t *mark = json_loadb(text, len, 0, NULL);
	json_t *differences = json_object_get(mark, "differences");

	if (!f->quiet)
		fprintf(stderr, "cachepot fsck: note: key %s is marked: a rebuild gave %zu other "
		        "output%s (its published entry stays as it is)\n", key_hex,
		        json_array_size(differences), json_array_size(differences) == 1 ? "" : "s");
	json_decref(mark);
	return 0;
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
	r = store_foreach_blob_file(f.store, check_blob_file, &f);
	/* Manifests after blobs so that a key naming a corrupt blob says so. */
	if (r == 0)
		r = store_foreach_manifest(f.store, check_manifest, &f);
	if (r == 0)
		r = store_foreach_blob_record(f.store, check_record, &f);
	if (r == 0)
		r = store_foreach_verify_mark(f.store, show_mark, &f);
	if (r < 0) {
		fprintf(stderr, "cachepot fsck: %s: %s\n", dir, strerror(-r));
		goto out;
	}
	int temps = store_count_temp_files(f.store);
	if (!f.quiet || f.problems)
		fprintf(stderr, "cachepot fsck: %s: %" PRIu64 " blobs (%" PRIu64 " bytes), %" PRIu64
		        " keys; %" PRIu64 " problems, %" PRIu64 " warnings%s\n", dir, f.blobs, f.bytes,
		        f.keys, f.problems, f.warnings,
		        temps > 0 ? " (temp files in tmp/ of an interrupted writer; the next writer removes them)"
		              : "");
	status = f.problems ? 1 : 0;
out:
	free(f.corrupt);
	store_close(f.store);
	return status;
}
