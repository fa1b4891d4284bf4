/* Unit tests for fs/gc and the store's eviction (fs/store.h) on a real store. */
#include "config.h"

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "fs/fsck.h"
#include "fs/gc.h"
#include "fs/manifest.h"
#include "fs/store.h"
#include "hash/digest.h"

#define KEYS 4
#define BODY 1000   /* bytes of each key's own output */

static char dir[64];

static void setup(void)
{
	snprintf(dir, sizeof(dir), "%s", "/tmp/cachepot-test-gc-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(dir));
}

static void teardown(void)
{
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	ck_assert_int_eq(system(cmd), 0);
}

static void fill_key(char hex[65], unsigned seed)
{
	unsigned char d[32];
	ck_assert_int_eq(digest_buffer(&seed, sizeof(seed), d), 0);
	digest_to_hex(d, hex);
}

/* Key SEED: its own output of BODY bytes (SEED repeated) and a shared one ("dep"); stdout and
 * stderr shared by every key. Its blobs are put into S. */
static void make_manifest(struct store *s, struct manifest *m, unsigned seed)
{
	char body[BODY];
	memset(body, 'a' + (int)seed, sizeof(body));
	manifest_init(m);
	fill_key(m->key, seed);
	fill_key(m->toolchain, 7);
	m->n_outputs = 2;
	m->outputs = calloc(2, sizeof(*m->outputs));
	m->outputs[0].name = strdup("libfoo.rlib");
	m->outputs[0].mode = 0644;
	m->outputs[0].size = BODY;
	ck_assert_int_eq(store_put_blob_buffer(s, body, BODY, m->outputs[0].sha256), 0);
	m->outputs[1].name = strdup("foo.d");
	m->outputs[1].mode = 0644;
	m->outputs[1].size = 3;
	ck_assert_int_eq(store_put_blob_buffer(s, "dep", 3, m->outputs[1].sha256), 0);
	ck_assert_int_eq(store_put_blob_buffer(s, "", 0, m->stdout_sha256), 0);
	ck_assert_int_eq(store_put_blob_buffer(s, "warn", 4, m->stderr_sha256), 0);
	m->stderr_size = 4;
	m->worker = strdup("unit");
	m->created = 1700000000;
}

/* Publish KEYS keys, key i last used at NOW + i hours (key 0 the least recently used). */
static void publish_keys(struct store *s, struct manifest *m, int64_t now)
{
	for (unsigned i = 0; i < KEYS; i++) {
		make_manifest(s, &m[i], i);
		ck_assert_int_eq(store_publish(s, &m[i]), 0);
		ck_assert_int_eq(store_touch_key(s, m[i].key, now + 7200 * (int64_t)(i + 1)), 0);
	}
}

static void release_keys(struct manifest *m)
{
	for (unsigned i = 0; i < KEYS; i++)
		manifest_release(&m[i]);
}

static int key_present(struct store *s, const char *key)
{
	char *text = NULL;
	size_t len;
	int ret = store_get_manifest(s, key, &text, &len);
	free(text);
	ck_assert(ret == 0 || ret == -ENOENT);
	return ret == 0;
}

static int fsck_clean(void)
{
	char *argv[] = { "fsck", "-q", dir, NULL };
	return fsck_command(3, argv) == 0;
}

/* The sum of the blobs: KEYS bodies + "dep" + "" + "warn". */
#define TOTAL ((uint64_t)KEYS * BODY + 3 + 0 + 4)

START_TEST(test_lru_order)
{
	struct store *s;
	struct manifest m[KEYS];
	struct gc_report r;
	struct gc_options o = { .max_size = TOTAL - BODY - 1 };   /* two keys must go */
	char err[256] = "";
	int64_t now = time(NULL);
	ck_assert_int_eq(store_open(dir, STORE_CREATE, &s), 0);
	publish_keys(s, m, now);
	/* A touch within the hour writes nothing. */
	ck_assert_int_eq(store_touch_key(s, m[3].key, now + 4 * 7200 + 10), 1);
	ck_assert_int_eq(gc_run(s, &o, &r, err, sizeof(err)), 0);
	ck_assert_uint_eq(r.size_before, TOTAL);
	ck_assert_uint_eq(r.keys, KEYS);
	ck_assert_uint_eq(r.keys_evicted, 2);
	ck_assert_uint_eq(r.blobs_removed, 2);
	ck_assert_uint_eq(r.bytes_freed, 2 * BODY);
	ck_assert_uint_eq(r.size_after, TOTAL - 2 * BODY);
	ck_assert(!key_present(s, m[0].key));
	ck_assert(!key_present(s, m[1].key));
	ck_assert(key_present(s, m[2].key));
	ck_assert(key_present(s, m[3].key));
	/* Their own blobs are gone, records and files; the shared ones stay, one reference less. */
	struct store_blob_record rec;
	ck_assert_int_eq(store_has_blob(s, m[0].outputs[0].sha256), 0);
	ck_assert_int_eq(store_get_blob_record(s, m[0].outputs[0].sha256, &rec), -ENOENT);
	ck_assert_int_eq(store_has_blob(s, m[2].outputs[0].sha256), 1);
	ck_assert_int_eq(store_get_blob_record(s, m[0].outputs[1].sha256, &rec), 0);
	ck_assert_uint_eq(rec.refs, 2);
	ck_assert_int_eq(store_blob_published(s, m[0].outputs[0].sha256), 0);
	struct store_counters c;
	store_get_counters(s, &c);
	ck_assert_uint_eq(c.keys_evicted, 2);
	ck_assert_uint_eq(c.bytes_freed, 2 * BODY);
	uint64_t g;
	ck_assert_int_eq(store_eviction_generation(s, &g), 0);
	ck_assert_uint_ge(g, 1);
	/* Under the size now: a second run is a no-op. */
	ck_assert_int_eq(gc_run(s, &o, &r, err, sizeof(err)), 0);
	ck_assert_uint_eq(r.keys_evicted, 0);
	ck_assert_uint_eq(r.size_before, TOTAL - 2 * BODY);
	/* An evicted key may be published again, whole. */
	manifest_release(&m[0]);
	make_manifest(s, &m[0], 0);
	ck_assert_int_eq(store_publish(s, &m[0]), 0);
	ck_assert(key_present(s, m[0].key));
	release_keys(m);
	store_close(s);
	ck_assert(fsck_clean());
}
END_TEST

START_TEST(test_under_quota_and_dry_run)
{
	struct store *s;
	struct manifest m[KEYS];
	struct gc_report r;
	char err[256] = "";
	ck_assert_int_eq(store_open(dir, STORE_CREATE, &s), 0);
	publish_keys(s, m, time(NULL));
	struct gc_options fits = { .max_size = TOTAL };
	ck_assert_int_eq(gc_run(s, &fits, &r, err, sizeof(err)), 0);
	ck_assert_uint_eq(r.keys_evicted, 0);
	ck_assert_uint_eq(r.blobs_removed, 0);
	ck_assert_uint_eq(r.size_after, TOTAL);
	/* A dry run reports what a real run does, and changes nothing. */
	struct gc_options dry = { .max_size = TOTAL - BODY - 1, .dry_run = 1 };
	ck_assert_int_eq(gc_run(s, &dry, &r, err, sizeof(err)), 0);
	ck_assert_uint_eq(r.keys_evicted, 2);
	ck_assert_uint_eq(r.bytes_freed, 2 * BODY);
	ck_assert_uint_eq(r.size_after, TOTAL - 2 * BODY);
	for (unsigned i = 0; i < KEYS; i++) {
		ck_assert(key_present(s, m[i].key));
		ck_assert_int_eq(store_has_blob(s, m[i].outputs[0].sha256), 1);
	}
	/* Everything must go but the shared blobs cannot: a dry run to 0 names every key. */
	struct gc_options all = { .max_size = 0, .dry_run = 1 };
	ck_assert_int_eq(gc_run(s, &all, &r, err, sizeof(err)), 0);
	ck_assert_uint_eq(r.keys_evicted, KEYS);
	ck_assert_uint_eq(r.size_after, 0);
	struct store_counters c;
	store_get_counters(s, &c);
	ck_assert_uint_eq(c.keys_evicted, 0);
	release_keys(m);
	store_close(s);
	ck_assert(fsck_clean());
}
END_TEST

START_TEST(test_pins)
{
	struct store *s, *reader;
	struct manifest m[KEYS];
	struct gc_report r;
	struct gc_options o = { .max_size = TOTAL - BODY - 1 };
	char err[256] = "", missing[65];
	ck_assert_int_eq(store_open(dir, STORE_CREATE, &s), 0);
	publish_keys(s, m, time(NULL));
	fill_key(missing, 999);
	ck_assert_int_eq(store_set_pin(s, missing, 1), -ENOENT);
	ck_assert_int_eq(store_set_pin(s, m[0].key, 1), 0);
	ck_assert_int_eq(store_key_pinned(s, m[0].key), 1);
	ck_assert_int_eq(store_key_pinned(s, m[1].key), 0);
	struct store_eviction ev;
	ck_assert_int_eq(store_evict_key(s, m[0].key, &ev), -EPERM);
	ck_assert_int_eq(store_evict_key(s, missing, &ev), -ENOENT);
	ck_assert_int_eq(gc_run(s, &o, &r, err, sizeof(err)), 0);
	ck_assert_uint_eq(r.keys_pinned, 1);
	ck_assert_uint_eq(r.keys_evicted, 2);
	ck_assert(key_present(s, m[0].key));    /* the oldest, pinned */
	ck_assert(!key_present(s, m[1].key));
	ck_assert(!key_present(s, m[2].key));
	ck_assert(key_present(s, m[3].key));
	/* Nothing else may go: the pinned key stays even at size 0. */
	struct gc_options zero = { .max_size = 0 };
	ck_assert_int_eq(gc_run(s, &zero, &r, err, sizeof(err)), 0);
	ck_assert(key_present(s, m[0].key));
	ck_assert(!key_present(s, m[3].key));
	/* A reader sees the pin and, after catching up, the evictions. */
	ck_assert_int_eq(store_open(dir, STORE_READ_ONLY, &reader), 0);
	ck_assert_int_eq(store_key_pinned(reader, m[0].key), 1);
	ck_assert(!key_present(reader, m[3].key));
	store_close(reader);
	ck_assert_int_eq(store_set_pin(s, m[0].key, 0), 0);
	ck_assert_int_eq(gc_run(s, &zero, &r, err, sizeof(err)), 0);
	ck_assert(!key_present(s, m[0].key));
	ck_assert_uint_eq(r.size_after, 0);
	release_keys(m);
	store_close(s);
	ck_assert(fsck_clean());
}
END_TEST

/* A job committed a blob that the last key naming it loses to an eviction before the job
 * publishes: the blob must stay, and the publish succeed. */
START_TEST(test_publish_racing_eviction)
{
	struct store *s;
	struct manifest m[KEYS], again;
	struct store_eviction ev;
	ck_assert_int_eq(store_open(dir, STORE_CREATE, &s), 0);
	publish_keys(s, m, time(NULL));
	/* The new job's outputs: key 0's body among them (make_manifest commits it again). */
	make_manifest(s, &again, 0);
	fill_key(again.key, 100);
	ck_assert_int_eq(store_evict_key(s, m[0].key, &ev), 0);
	ck_assert_uint_eq(ev.blobs_removed, 0);     /* held: committed, not yet published */
	ck_assert_int_eq(store_has_blob(s, m[0].outputs[0].sha256), 1);
	ck_assert_int_eq(store_blob_published(s, m[0].outputs[0].sha256), 0);
	ck_assert_int_eq(store_publish(s, &again), 0);
	ck_assert_int_eq(store_blob_published(s, m[0].outputs[0].sha256), 1);
	/* The publish took the hold's place: evicting the new key now frees the body. */
	ck_assert_int_eq(store_evict_key(s, again.key, &ev), 0);
	ck_assert_uint_eq(ev.blobs_removed, 1);
	ck_assert_uint_eq(ev.bytes_freed, BODY);
	ck_assert_int_eq(store_has_blob(s, m[0].outputs[0].sha256), 0);
	/* Without a hold the publish finds the blob gone and fails whole. */
	ck_assert_int_eq(store_publish(s, &again), -ENOENT);
	ck_assert(!key_present(s, again.key));
	manifest_release(&again);
	release_keys(m);
	store_close(s);
	ck_assert(fsck_clean());
}
END_TEST

/* A reader holding an open blob reads every byte after the eviction; a reader that looks
 * afresh never finds the manifest without its blobs. */
START_TEST(test_open_blob_survives)
{
	struct store *s, *reader;
	struct manifest m[KEYS], got;
	struct store_eviction ev;
	char buf[BODY + 1], want[BODY];
	ck_assert_int_eq(store_open(dir, STORE_CREATE, &s), 0);
	publish_keys(s, m, time(NULL));
	ck_assert_int_eq(store_open(dir, STORE_READ_ONLY, &reader), 0);
	ck_assert_int_eq(store_get_verified_manifest(reader, m[1].key, &got, NULL, NULL), 0);
	long body = manifest_find_output(&got, "libfoo.rlib");
	ck_assert_int_ge(body, 0);
	int fd = store_open_blob(reader, got.outputs[body].sha256);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(store_evict_key(s, m[1].key, &ev), 0);
	ck_assert_uint_eq(ev.blobs_removed, 1);
	memset(want, 'a' + 1, sizeof(want));
	ck_assert_int_eq(pread(fd, buf, sizeof(buf), 0), BODY);
	ck_assert_mem_eq(buf, want, BODY);
	close(fd);
	/* The stale view may still list the key; its blob is gone, and a fresh look finds no key. */
	ck_assert_int_eq(store_open_blob(reader, got.outputs[body].sha256), -ENOENT);
	ck_assert_int_eq(store_catch_up(reader), 0);
	ck_assert(!key_present(reader, m[1].key));
	uint64_t g = 0;
	ck_assert_int_eq(store_eviction_generation(reader, &g), 0);
	ck_assert_uint_eq(g, 1);
	manifest_release(&got);
	store_close(reader);
	release_keys(m);
	store_close(s);
}
END_TEST

/* Blobs no key names that are too young to remove (uploads in flight, a killed job's outputs)
 * are over the size: no key is evicted for them, however many; keys still go for their own
 * excess, oldest first, and the young blobs themselves once they are a day old. */
START_TEST(test_young_unreferenced)
{
	struct store *s;
	struct manifest m[KEYS];
	struct gc_report r;
	char err[256] = "", junk[3 * BODY];
	unsigned char junk_sha[32];
	int64_t now = time(NULL);
	ck_assert_int_eq(store_open(dir, STORE_CREATE, &s), 0);
	publish_keys(s, m, now);
	memset(junk, 'z', sizeof(junk));
	ck_assert_int_eq(store_put_blob_buffer(s, junk, sizeof(junk), junk_sha), 0);
	struct gc_options fits = { .max_size = TOTAL };
	ck_assert_int_eq(gc_run(s, &fits, &r, err, sizeof(err)), 0);
	ck_assert_uint_eq(r.size_before, TOTAL + sizeof(junk));
	ck_assert_uint_eq(r.young_bytes, sizeof(junk));
	ck_assert_uint_eq(r.keys_evicted, 0);
	ck_assert_uint_eq(r.blobs_removed, 0);
	ck_assert_uint_eq(r.size_after, TOTAL + sizeof(junk));
	for (unsigned i = 0; i < KEYS; i++)
		ck_assert(key_present(s, m[i].key));
	/* Two keys over: exactly the two oldest go, not every key. */
	struct gc_options two = { .max_size = TOTAL - BODY - 1 };
	ck_assert_int_eq(gc_run(s, &two, &r, err, sizeof(err)), 0);
	ck_assert_uint_eq(r.keys_evicted, 2);
	ck_assert(!key_present(s, m[0].key));
	ck_assert(!key_present(s, m[1].key));
	ck_assert(key_present(s, m[2].key));
	ck_assert(key_present(s, m[3].key));
	ck_assert_int_eq(store_has_blob(s, junk_sha), 1);
	/* A day and more later (another process: this one's hold on its upload is gone) the young
	 * blob is an orphan and goes first; the keys left fit. */
	store_close(s);
	ck_assert_int_eq(store_open(dir, 0, &s), 0);
	struct gc_options later = { .max_size = TOTAL - 2 * BODY, .now = now + 2 * GC_ORPHAN_SECONDS };
	ck_assert_int_eq(gc_run(s, &later, &r, err, sizeof(err)), 0);
	ck_assert_uint_eq(r.young_bytes, 0);
	ck_assert_uint_eq(r.orphans_removed, 1);
	ck_assert_uint_eq(r.keys_evicted, 0);
	ck_assert_int_eq(store_has_blob(s, junk_sha), 0);
	ck_assert(key_present(s, m[3].key));
	release_keys(m);
	store_close(s);
	ck_assert(fsck_clean());
}
END_TEST

int main(void)
{
	Suite *suite = suite_create("gc");
	TCase *tc = tcase_create("gc");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_lru_order);
	tcase_add_test(tc, test_under_quota_and_dry_run);
	tcase_add_test(tc, test_pins);
	tcase_add_test(tc, test_publish_racing_eviction);
	tcase_add_test(tc, test_open_blob_survives);
	tcase_add_test(tc, test_young_unreferenced);
	suite_add_tcase(suite, tc);
	SRunner *sr = srunner_create(suite);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
