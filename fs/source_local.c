/* The local source: a store directory on this machine, opened as a reader (fs/store.h), and the
 * dispatching source_* functions of fs/source.h. */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fs/prekey_list.h"
#include "fs/source.h"
#include "fs/store.h"

struct source_local {
	struct source base;
	struct store *store;
};

static struct store *store_of(struct source *src)
{
	return ((struct source_local *)src)->store;
}

static int local_get_manifest(struct source *src, const char key_hex[65], struct manifest *m,
                              char **text, size_t *len)
{
	return store_get_verified_manifest(store_of(src), key_hex, m, text, len);
}

static int local_open_blob(struct source *src, const unsigned char sha256[32],
                           uint64_t expect_size, int *fd, uint64_t *size)
{
	(void)expect_size;   /* the mount's hash on first open checks it */
	/* Only what a manifest names: an uploaded input (a client's sources) is not for readers. */
	int published = store_blob_published(store_of(src), sha256);
	if (published <= 0)
		return published < 0 ? published : -ENOENT;
	int blob = store_open_blob(store_of(src), sha256);
	if (blob < 0)
		return blob;
	struct stat st;
	if (fstat(blob, &st) < 0) {
		int ret = -errno;
		close(blob);
		return ret;
	}
	*fd = blob;
	*size = (uint64_t)st.st_size;
	return 0;
}

static int local_get_prekey_lists(struct source *src, const char prekey_hex[65], char **text,
                                  size_t *len)
{
	struct store *store = store_of(src);
	unsigned char public_key[32];
	json_t *lists = NULL;
	char *t = NULL;
	size_t n = 0;
	int ret = store_get_prekey_lists(store, prekey_hex, &t, &n);
	if (ret < 0)
		return ret;
	store_public_key(store, public_key);
	ret = prekey_lists_verify(t, n, public_key, prekey_hex, &lists);
	json_decref(lists);
	if (ret < 0) {
		free(t);
		return ret;
	}
	*text = t;
	*len = n;
	return 0;
}

struct key_walk {
	int (*fn)(void *ctx, const char key_hex[65]);
	void *ctx;
};

static int key_walk_step(void *ctx, const char key_hex[65], const char *text, size_t len)
{
	struct key_walk *walk = ctx;
	(void)text;
	(void)len;
	return walk->fn(walk->ctx, key_hex);
}

static int local_foreach_key(struct source *src, int (*fn)(void *ctx, const char key_hex[65]),
                             void *ctx)
{
	struct key_walk walk = { fn, ctx };
	return store_foreach_manifest(store_of(src), key_walk_step, &walk);
}

struct blob_walk {
	int (*fn)(void *ctx, const unsigned char sha256[32]);
	void *ctx;
};

static int blob_walk_step(void *ctx, const unsigned char sha256[32],
                          const struct store_blob_record *rec)
{
	struct blob_walk *walk = ctx;
	if (rec->refs == 0)
		return 0;    /* not named by a manifest (an uploaded input): not listed */
	return walk->fn(walk->ctx, sha256);
}

/* The blobs published manifests name (store_blob_published: the records with references). */
static int local_foreach_blob(struct source *src,
                              int (*fn)(void *ctx, const unsigned char sha256[32]), void *ctx)
{
	struct blob_walk walk = { fn, ctx };
	return store_foreach_blob_record(store_of(src), blob_walk_step, &walk);
}

static int local_foreach_key_after(struct source *src, const unsigned char *after,
                                   int (*fn)(void *ctx, const char key_hex[65]), void *ctx)
{
	struct key_walk walk = { fn, ctx };
	return store_foreach_manifest_after(store_of(src), after, key_walk_step, &walk);
}

static int local_foreach_blob_after(struct source *src, const unsigned char *after,
                                    int (*fn)(void *ctx, const unsigned char sha256[32]),
                                    void *ctx)
{
	struct blob_walk walk = { fn, ctx };
	return store_foreach_blob_record_after(store_of(src), after, blob_walk_step, &walk);
}

static int local_catch_up(struct source *src)
{
	return store_catch_up(store_of(src));
}

static int local_statvfs(struct source *src, struct statvfs *out)
{
	return store_statvfs(store_of(src), out);
}

static int local_evictions(struct source *src, int catch_up, uint64_t *generation)
{
	int ret = catch_up ? store_catch_up(store_of(src)) : 0;
	return ret < 0 ? ret : store_eviction_generation(store_of(src), generation);
}

static int local_has_key(struct source *src, const char key_hex[65])
{
	char *text = NULL;
	size_t len;
	int ret = store_get_manifest(store_of(src), key_hex, &text, &len);
	free(text);
	return ret == 0 ? 1 : ret == -ENOENT ? 0 : ret;
}

static void local_close(struct source *src)
{
	store_close(store_of(src));
	free(src);
}

static const struct source_ops local_ops = {
	.get_manifest = local_get_manifest,
	.open_blob = local_open_blob,
	.get_prekey_lists = local_get_prekey_lists,
	.foreach_key = local_foreach_key,
	.foreach_blob = local_foreach_blob,
	.catch_up = local_catch_up,
	.statvfs = local_statvfs,
	.close = local_close,
	.evictions = local_evictions,
	.has_key = local_has_key,
	.foreach_key_after = local_foreach_key_after,
	.foreach_blob_after = local_foreach_blob_after,
};

int source_local_open(const char *dir, struct source **out)
{
	struct source_local *src = calloc(1, sizeof(*src));
	if (!src)
		return -ENOMEM;
	src->base.ops = &local_ops;
	int ret = store_open(dir, STORE_READ_ONLY, &src->store);
	if (ret < 0) {
		free(src);
		return ret;
	}
	*out = &src->base;
	return 0;
}

/* ---- Dispatch ---- */

int source_get_manifest(struct source *src, const char key_hex[65], struct manifest *m,
                        char **text, size_t *len)
{
	return src->ops->get_manifest(src, key_hex, m, text, len);
}

int source_open_blob(struct source *src, const unsigned char sha256[32], uint64_t expect_size,
                     int *fd, uint64_t *size)
{
	return src->ops->open_blob(src, sha256, expect_size, fd, size);
}

int source_get_prekey_lists(struct source *src, const char prekey_hex[65], char **text,
                            size_t *len)
{
	return src->ops->get_prekey_lists(src, prekey_hex, text, len);
}

int source_foreach_key(struct source *src, int (*fn)(void *ctx, const char key_hex[65]),
                       void *ctx)
{
	return src->ops->foreach_key(src, fn, ctx);
}

int source_foreach_blob(struct source *src, int (*fn)(void *ctx, const unsigned char sha256[32]),
                        void *ctx)
{
	return src->ops->foreach_blob(src, fn, ctx);
}

int source_foreach_key_after(struct source *src, const unsigned char *after,
                             int (*fn)(void *ctx, const char key_hex[65]), void *ctx)
{
	if (!src->ops->foreach_key_after)
		return -ENOTSUP;
	return src->ops->foreach_key_after(src, after, fn, ctx);
}

int source_foreach_blob_after(struct source *src, const unsigned char *after,
                              int (*fn)(void *ctx, const unsigned char sha256[32]), void *ctx)
{
	if (!src->ops->foreach_blob_after)
		return -ENOTSUP;
	return src->ops->foreach_blob_after(src, after, fn, ctx);
}

int source_catch_up(struct source *src)
{
	return src->ops->catch_up(src);
}

int source_statvfs(struct source *src, struct statvfs *out)
{
	return src->ops->statvfs(src, out);
}

int source_evictions(struct source *src, int catch_up, uint64_t *generation)
{
	return src->ops->evictions ? src->ops->evictions(src, catch_up, generation) : -ENOTSUP;
}

int source_has_key(struct source *src, const char key_hex[65])
{
	return src->ops->has_key ? src->ops->has_key(src, key_hex) : -ENOTSUP;
}

void source_close(struct source *src)
{
	if (src)
		src->ops->close(src);
}
