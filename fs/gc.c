/* Garbage collection of a store; what it removes and in which order is in fs/gc.h. */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/error.h"
#include "fs/gc.h"
#include "fs/manifest.h"
#include "hash/digest.h"

/* The blob records as a table (open addressing by the first bytes of the hash): sizes for the
 * total, references for a dry run, which lowers them as a real eviction would. */
struct blob_entry {
	unsigned char sha[32];
	uint64_t size, refs;
	int64_t last_use;
	int used;
};

struct blob_table {
	struct blob_entry *slots;
	size_t cap, n;
};

static size_t slot_of(const struct blob_table *t, const unsigned char sha[32])
{
	uint64_t h;
	memcpy(&h, sha, sizeof(h));
	return (size_t)h & (t->cap - 1);
}

static struct blob_entry *table_find(struct blob_table *t, const unsigned char sha[32])
{
	if (!t->cap)
		return NULL;
	for (size_t i = slot_of(t, sha);; i = (i + 1) & (t->cap - 1)) {
		if (!t->slots[i].used)
			return NULL;
		if (memcmp(t->slots[i].sha, sha, 32) == 0)
			return &t->slots[i];
	}
}

static int table_grow(struct blob_table *t)
{
	size_t cap = t->cap ? 2 * t->cap : 1024;
	struct blob_entry *old = t->slots, *slots = calloc(cap, sizeof(*slots));
	if (!slots)
		return -ENOMEM;
	size_t old_cap = t->cap;
	t->slots = slots;
	t->cap = cap;
	for (size_t i = 0; i < old_cap; i++) {
		if (!old[i].used)
			continue;
		size_t j = slot_of(t, old[i].sha);
		while (slots[j].used)
			j = (j + 1) & (cap - 1);
		slots[j] = old[i];
	}
	free(old);
	return 0;
}

static int table_add(struct blob_table *t, const unsigned char sha[32],
                     const struct store_blob_record *rec)
{
	if ((t->n + 1) * 2 > t->cap && table_grow(t) < 0)
		return -ENOMEM;
	size_t i = slot_of(t, sha);
	while (t->slots[i].used && memcmp(t->slots[i].sha, sha, 32) != 0)
		i = (i + 1) & (t->cap - 1);
	if (!t->slots[i].used)
		t->n++;
	t->slots[i].used = 1;
	memcpy(t->slots[i].sha, sha, 32);
	t->slots[i].size = rec->size;
	t->slots[i].refs = rec->refs;
	t->slots[i].last_use = rec->last_use;
	return 0;
}

/* A published key as the collection orders it. */
struct key_entry {
	char hex[65];
	int64_t last_use;
	int pinned;
};

struct gc_walk {
	struct store *store;
	struct blob_table blobs;
	struct key_entry *keys;
	size_t n_keys, cap_keys;
	uint64_t size;
	struct gc_report *report;
};

static int add_blob_record(void *ctx, const unsigned char sha[32], const struct store_blob_record *rec)
{
	struct gc_walk *w = ctx;
	w->size += rec->size;
	return table_add(&w->blobs, sha, rec);
}

/* The later of KEY's use record (or its manifest's creation) and its outputs' access times. */
static int add_key(void *ctx, const char key_hex[65], const char *text, size_t len)
{
	struct gc_walk *w = ctx;
	struct manifest m;
	int64_t last_use;

	if (store_parse_manifest(w->store, text, len, &m) < 0) {
		w->report->keys_failed++;
		return 0;
	}
	if (store_key_last_use(w->store, key_hex, &last_use) < 0)
		last_use = m.created;
	for (size_t i = 0; i < m.n_outputs; i++) {
		int64_t atime;
		if (store_blob_atime(w->store, m.outputs[i].sha256, &atime) == 0 && atime > last_use)
			last_use = atime;
	}
	manifest_release(&m);
	if (w->n_keys == w->cap_keys) {
		size_t cap = w->cap_keys ? 2 * w->cap_keys : 256;
		struct key_entry *k = reallocarray(w->keys, cap, sizeof(*k));
		if (!k)
			return -ENOMEM;
		w->keys = k;
		w->cap_keys = cap;
	}
	struct key_entry *k = &w->keys[w->n_keys++];
	memcpy(k->hex, key_hex, 65);
	k->last_use = last_use;
	int pinned = store_key_pinned(w->store, key_hex);
	if (pinned < 0)
		return pinned;
	k->pinned = pinned;
	w->report->keys++;
	return 0;
}

static int older_first(const void *a, const void *b)
{
	const struct key_entry *x = a, *y = b;
	if (x->last_use != y->last_use)
		return x->last_use < y->last_use ? -1 : 1;
	return strcmp(x->hex, y->hex);
}

/* What evicting KEY frees, found by lowering the table's references as store_evict_keys lowers
 * the records; *BLOBS and *BYTES receive the blobs that reach no reference. */
static int simulate_eviction(struct gc_walk *w, const char key_hex[65], uint64_t *blobs,
                             uint64_t *bytes)
{
	struct manifest m;
	int ret = store_get_verified_manifest(w->store, key_hex, &m, NULL, NULL);
	*blobs = *bytes = 0;
	if (ret < 0)
		return ret;
	for (size_t i = 0; i < m.n_outputs + 2; i++) {
		const unsigned char *sha = i < m.n_outputs ? m.outputs[i].sha256
		                           : i == m.n_outputs ? m.stdout_sha256 : m.stderr_sha256;
		/* Each blob once per key, as the store counts references. */
		int seen = 0;
		for (size_t j = 0; j < i && !seen; j++) {
			const unsigned char *o = j < m.n_outputs ? m.outputs[j].sha256 : m.stdout_sha256;
			seen = memcmp(o, sha, 32) == 0;
		}
		struct blob_entry *b = seen ? NULL : table_find(&w->blobs, sha);
		if (!b || b->refs == 0)
			continue;
		if (--b->refs == 0) {
			(*blobs)++;
			*bytes += b->size;
		}
	}
	manifest_release(&m);
	return 0;
}

static void account(struct gc_walk *w, uint64_t blobs, uint64_t bytes)
{
	w->report->blobs_removed += blobs;
	w->report->bytes_freed += bytes;
	w->size -= bytes < w->size ? bytes : w->size;
}

static int remove_orphans(struct gc_walk *w, const struct gc_options *o, int64_t now,
                          char *err, size_t errlen)
{
	for (size_t i = 0; i < w->blobs.cap && w->size > o->max_size; i++) {
		struct blob_entry *b = &w->blobs.slots[i];
		struct store_eviction ev;
		if (!b->used || b->refs > 0 || b->last_use >= now - GC_ORPHAN_SECONDS)
			continue;
		if (o->dry_run) {
			ev.blobs_removed = 1;
			ev.bytes_freed = b->size;
		} else {
			int ret = store_remove_orphan_blob(w->store, b->sha, now - GC_ORPHAN_SECONDS, &ev);
			if (ret == 0 || ret == -ENOENT)
				continue;
			if (ret < 0)
				return error_format(err, errlen, ret, "removing an unreferenced blob: %s",
				                    strerror(-ret));
		}
		w->report->orphans_removed += ev.blobs_removed;
		account(w, ev.blobs_removed, ev.bytes_freed);
	}
	return 0;
}

struct stray_walk {
	struct gc_walk *w;
	const struct gc_options *o;
	int64_t written_before;
};

static int sweep_stray(void *ctx, const struct store_blob_file *file)
{
	struct stray_walk *sw = ctx;
	struct store_eviction ev;
	int ret;

	if (!file->sha256 || table_find(&sw->w->blobs, file->sha256))
		return 0;
	ret = store_remove_unrecorded_blob(sw->w->store, file->sha256, sw->written_before,
	                                   sw->o->dry_run, &ev);
	if (ret < 0)
		return ret;
	sw->w->report->strays_removed += ev.blobs_removed;
	sw->w->report->stray_bytes += ev.bytes_freed;
	sw->w->report->blobs_removed += ev.blobs_removed;
	sw->w->report->bytes_freed += ev.bytes_freed;
	return 0;
}

/* Evict W's keys oldest first, GC_BATCH at a time, until the size fits. A batch takes no more
 * keys than the size asks for: what a key frees is planned from the table (references lowered
 * as the store will lower them), and the store's answer is what is counted. */
static int evict_keys(struct gc_walk *w, const struct gc_options *o, char *err, size_t errlen)
{
	char (*batch)[65] = calloc(GC_BATCH, sizeof(*batch));
	int results[GC_BATCH];
	size_t next = 0;
	int ret = 0;

	if (!batch)
		return -ENOMEM;
	while (w->size > o->max_size && next < w->n_keys) {
		size_t n = 0;
		uint64_t planned = 0, blobs, bytes;
		while (n < GC_BATCH && next < w->n_keys && w->size > o->max_size
		       && planned < w->size - o->max_size) {
			struct key_entry *k = &w->keys[next++];
			if (k->pinned)
				continue;
			if (simulate_eviction(w, k->hex, &blobs, &bytes) < 0) {
				w->report->keys_failed++;
				continue;
			}
			planned += bytes;
			if (o->dry_run) {
				w->report->keys_evicted++;
				account(w, blobs, bytes);
				planned = 0;
			} else {
				memcpy(batch[n++], k->hex, 65);
			}
		}
		if (n == 0)
			continue;
		struct store_eviction ev;
		ret = store_evict_keys(w->store, (const char (*)[65])batch, n, results, &ev);
		if (ret < 0) {
			ret = error_format(err, errlen, ret, "evicting %zu keys: %s", n, strerror(-ret));
			break;
		}
		for (size_t i = 0; i < n; i++) {
			if (results[i] == 0)
				w->report->keys_evicted++;
			else if (results[i] == -EBADMSG)
				w->report->keys_failed++;
		}
		account(w, ev.blobs_removed, ev.bytes_freed);
	}
	free(batch);
	return ret;
}

int gc_run(struct store *store, const struct gc_options *o, struct gc_report *r, char *err,
           size_t errlen)
{
	struct gc_walk w = { .store = store, .report = r };
	int64_t now = o->now ? o->now : (int64_t)time(NULL);
	uint64_t excluded = 0;   /* young_bytes, out of w.size while keys are evicted */
	int ret;

	memset(r, 0, sizeof(*r));
	ret = store_foreach_blob_record(store, add_blob_record, &w);
	if (ret < 0) {
		ret = error_format(err, errlen, ret, "reading the blob records: %s", strerror(-ret));
		goto out;
	}
	r->size_before = w.size;
	/* The blobs no key names that are too young to remove stay whatever keys go: evicting
	 * keys for them could empty the store without bringing it under the size. */
	for (size_t i = 0; i < w.blobs.cap; i++) {
		const struct blob_entry *b = &w.blobs.slots[i];
		if (b->used && b->refs == 0 && b->last_use >= now - GC_ORPHAN_SECONDS)
			r->young_bytes += b->size;
	}
	{
		struct stray_walk sw = { &w, o, now - GC_ORPHAN_SECONDS };
		ret = store_foreach_blob_file(store, sweep_stray, &sw);
		if (ret < 0) {
			ret = error_format(err, errlen, ret, "removing files the index has no record of: %s",
			                   strerror(-ret));
			goto out;
		}
	}
	if (w.size <= o->max_size)
		goto out;
	if ((ret = remove_orphans(&w, o, now, err, errlen)) < 0)
		goto out;
	excluded = r->young_bytes < w.size ? r->young_bytes : w.size;
	w.size -= excluded;
	if (w.size > o->max_size) {
		ret = store_foreach_manifest(store, add_key, &w);
		if (ret < 0) {
			ret = error_format(err, errlen, ret, "reading the keys: %s", strerror(-ret));
			goto out;
		}
		qsort(w.keys, w.n_keys, sizeof(*w.keys), older_first);
		for (size_t i = 0; i < w.n_keys; i++)
			r->keys_pinned += w.keys[i].pinned;
		ret = evict_keys(&w, o, err, errlen);
	}
out:
	r->size_after = w.size + excluded;
	free(w.blobs.slots);
	free(w.keys);
	return ret;
}
