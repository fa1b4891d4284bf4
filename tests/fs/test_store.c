/* Unit tests for fs/store and fs/manifest on a real store (real RocksDB, real files). */
#include "config.h"

#include <check.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fs/fsync_set.h"
#include "fs/manifest.h"
#include "fs/store.h"
#include "hash/digest.h"

static char dir[64];

static void setup(void)
{
	snprintf(dir, sizeof(dir), "%s", "/tmp/cachepot-test-store-XXXXXX");
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

/* A manifest with two outputs whose contents are put into S. */
static void make_manifest(struct store *s, struct manifest *m, unsigned seed, const char *content)
{
	manifest_init(m);
	fill_key(m->key, seed);
	fill_key(m->toolchain, 7);
	m->n_outputs = 2;
	m->outputs = calloc(2, sizeof(*m->outputs));
	m->outputs[0].name = strdup("libfoo.rlib");
	m->outputs[0].mode = 0644;
	m->outputs[0].size = strlen(content);
	ck_assert_int_eq(store_put_blob_buffer(s, content, strlen(content), m->outputs[0].sha256), 0);
	m->outputs[1].name = strdup("foo.d");
	m->outputs[1].mode = 0755;
	m->outputs[1].size = 3;
	ck_assert_int_eq(store_put_blob_buffer(s, "dep", 3, m->outputs[1].sha256), 0);
	ck_assert_int_eq(store_put_blob_buffer(s, "", 0, m->stdout_sha256), 0);
	ck_assert_int_eq(store_put_blob_buffer(s, "warn", 4, m->stderr_sha256), 0);
	m->stderr_size = 4;
	m->worker = strdup("unit");
	m->created = 1700000000;
	m->duration_ms = 5;
}

START_TEST(test_blob_roundtrip)
{
	struct store *s;
	unsigned char sha[32], expect[32];
	char buf[16];
	ck_assert_int_eq(store_open(dir, STORE_CREATE, &s), 0);
	ck_assert_int_eq(store_put_blob_buffer(s, "hello", 5, sha), 0);
	ck_assert_int_eq(digest_buffer("hello", 5, expect), 0);
	ck_assert_mem_eq(sha, expect, 32);
	ck_assert_int_eq(store_has_blob(s, sha), 1);
	int fd = store_open_blob(s, sha);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(read(fd, buf, sizeof(buf)), 5);
	ck_assert_mem_eq(buf, "hello", 5);
	struct stat st;
	ck_assert_int_eq(fstat(fd, &st), 0);
	ck_assert_uint_eq(st.st_mode & 07777, 0444);
	close(fd);
	/* The same blob again is fine. */
	ck_assert_int_eq(store_put_blob_buffer(s, "hello", 5, sha), 0);
	/* A mismatch keeps nothing. */
	struct store_blob_writer *w;
	unsigned char actual[32];
	ck_assert_int_eq(store_blob_begin(s, &w), 0);
	ck_assert_int_eq(store_blob_write(w, "world", 5), 0);
	ck_assert_int_eq(store_blob_commit(w, expect, actual), -EBADMSG);
	ck_assert_int_eq(store_has_blob(s, actual), 0);
	/* An aborted writer leaves no temp file. */
	ck_assert_int_eq(store_blob_begin(s, &w), 0);
	store_blob_abort(w);
	struct store_blob_record rec;
	ck_assert_int_eq(store_get_blob_record(s, sha, &rec), 0);
	ck_assert_uint_eq(rec.size, 5);
	ck_assert_uint_eq(rec.refs, 0);
	struct store_counters c;
	store_get_counters(s, &c);
	ck_assert_uint_eq(c.blobs_written, 2);
	store_close(s);
	char cmd[160];
	snprintf(cmd, sizeof(cmd), "test -z \"$(ls -A '%s/tmp')\"", dir);
	ck_assert_int_eq(system(cmd), 0);
}
END_TEST

START_TEST(test_publish_rules)
{
	struct store *s, *r;
	struct manifest m, other, got;
	char *text;
	size_t len;
	ck_assert_int_eq(store_open(dir, STORE_CREATE, &s), 0);
	ck_assert_int_eq(store_open(dir, STORE_CREATE, &r), -EBUSY);
	/* The refused second writer must not have dropped the first one's RocksDB lock (POSIX
	 * drops a process's fcntl locks on a file when any fd of it is closed). */
	char lock_path[96];
	snprintf(lock_path, sizeof(lock_path), "%s/index/LOCK", dir);
	int lock_fd = open(lock_path, O_RDONLY | O_CLOEXEC);
	ck_assert_int_ge(lock_fd, 0);
	struct flock probe = { .l_type = F_WRLCK, .l_whence = SEEK_SET };
	ck_assert_int_eq(fcntl(lock_fd, F_OFD_GETLK, &probe), 0);
	ck_assert_int_eq(probe.l_type, F_WRLCK);
	ck_assert_int_eq(probe.l_pid, getpid());
	close(lock_fd);   /* closing our own probe fd would drop it too: the last check here */
	make_manifest(s, &m, 1, "rlib bytes");
	ck_assert_int_eq(store_get_manifest(s, m.key, &text, &len), -ENOENT);
	ck_assert_int_eq(store_publish(s, &m), 0);
	ck_assert_int_eq(store_publish(s, &m), 2);
	make_manifest(s, &other, 1, "different rlib bytes");
	ck_assert_int_eq(store_publish(s, &other), 1);
	struct store_counters c;
	store_get_counters(s, &c);
	ck_assert_uint_eq(c.published, 1);
	ck_assert_uint_eq(c.nondeterministic, 1);
	/* The first result stays. */
	ck_assert_int_eq(store_get_verified_manifest(s, m.key, &got, &text, &len), 0);
	ck_assert(manifest_same_result(&got, &m));
	ck_assert(!manifest_same_result(&got, &other));
	ck_assert_uint_eq(got.n_outputs, 2);
	ck_assert_str_eq(got.worker, "unit");
	ck_assert_uint_eq(strlen(text), len);
	ck_assert_int_eq(text[len - 1], '\n');
	/* Refcounts: each named blob once per key. */
	struct store_blob_record rec;
	ck_assert_int_eq(store_get_blob_record(s, m.outputs[0].sha256, &rec), 0);
	ck_assert_uint_eq(rec.refs, 1);
	manifest_release(&got);
	/* Tampering breaks the signature. */
	char *p = strstr(text, "libfoo");
	ck_assert_ptr_nonnull(p);
	p[3] = 'F';
	ck_assert_int_eq(manifest_parse(text, len, &got), -EBADMSG);
	ck_assert_int_eq(store_parse_manifest(s, text, len, &got), -EBADMSG);
	free(text);
	/* A missing blob refuses the publish. */
	manifest_release(&other);
	make_manifest(s, &other, 2, "x");
	other.outputs[0].sha256[0] ^= 1;
	ck_assert_int_eq(store_publish(s, &other), -ENOENT);
	other.outputs[0].sha256[0] ^= 1;
	other.outputs[0].size = 99;
	ck_assert_int_eq(store_publish(s, &other), -EBADMSG);
	manifest_release(&other);
	/* A reader next to the writer follows it. */
	ck_assert_int_eq(store_open(dir, STORE_READ_ONLY, &r), 0);
	ck_assert_int_eq(store_get_verified_manifest(r, m.key, &got, NULL, NULL), 0);
	manifest_release(&got);
	make_manifest(s, &other, 3, "late");
	ck_assert_int_eq(store_publish(s, &other), 0);
	ck_assert_int_eq(store_get_verified_manifest(r, other.key, &got, NULL, NULL), 0);
	ck_assert_int_eq(store_publish(r, &other), -EROFS);
	struct store_blob_writer *w;
	ck_assert_int_eq(store_blob_begin(r, &w), -EROFS);
	manifest_release(&got);
	manifest_release(&other);
	manifest_release(&m);
	store_close(r);
	store_close(s);
}
END_TEST

START_TEST(test_validation)
{
	struct store *s;
	struct manifest m;
	ck_assert_int_eq(store_open(dir, STORE_CREATE, &s), 0);
	make_manifest(s, &m, 4, "v");
	static const char *const bad[] = { "", ".", "..", ".manifest", "a/b" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		free(m.outputs[1].name);
		m.outputs[1].name = strdup(bad[i]);
		ck_assert_int_eq(store_publish(s, &m), -EINVAL);
	}
	free(m.outputs[1].name);
	m.outputs[1].name = strdup("libfoo.rlib");   /* duplicate */
	ck_assert_int_eq(store_publish(s, &m), -EINVAL);
	free(m.outputs[1].name);
	m.outputs[1].name = strdup("ok.d");
	m.outputs[1].mode = 0666;
	ck_assert_int_eq(store_publish(s, &m), -EINVAL);
	m.outputs[1].mode = 0644;
	m.key[3] = 'X';
	ck_assert_int_eq(store_publish(s, &m), -EINVAL);
	manifest_release(&m);
	store_close(s);
}
END_TEST

START_TEST(test_reader_needs_index)
{
	struct store *s;
	ck_assert_int_eq(store_open(dir, STORE_READ_ONLY, &s), -ENOENT);
	/* A reader creates nothing, not even the layout. */
	char cmd[160];
	snprintf(cmd, sizeof(cmd), "test -z \"$(ls -A '%s')\"", dir);
	ck_assert_int_eq(system(cmd), 0);
}
END_TEST

START_TEST(test_key_persists)
{
	struct store *s;
	unsigned char a[32], b[32];
	ck_assert_int_eq(store_open(dir, STORE_CREATE, &s), 0);
	store_public_key(s, a);
	store_close(s);
	ck_assert_int_eq(store_open(dir, STORE_CREATE, &s), 0);
	store_public_key(s, b);
	store_close(s);
	ck_assert_mem_eq(a, b, 32);
	char path[128];
	struct stat st;
	snprintf(path, sizeof(path), "%s/key/ed25519.pem", dir);
	ck_assert_int_eq(stat(path, &st), 0);
	ck_assert_uint_eq(st.st_mode & 07777, 0600);
	ck_assert_int_eq(store_open(dir, STORE_READ_ONLY, &s), 0);
	store_public_key(s, b);
	store_close(s);
	ck_assert_mem_eq(a, b, 32);
}
END_TEST

static uint64_t catch_ups(struct store *r)
{
	struct store_counters c;
	store_get_counters(r, &c);
	return c.catch_ups;
}

/* A reader catches up only when the writer has written since its last catch-up: a burst of
 * misses costs none, a publish, a pin or an eviction costs one, and a store without the
 * writer's count (an older writer's) catches up on every miss as before. */
START_TEST(test_misses_without_catch_up)
{
	struct store *s, *r;
	struct manifest m, got;
	char key[65], *text;
	size_t len;
	ck_assert_int_eq(store_open(dir, STORE_CREATE, &s), 0);
	ck_assert_int_eq(store_open(dir, STORE_READ_ONLY, &r), 0);
	uint64_t base = catch_ups(r);
	for (unsigned i = 0; i < 200; i++) {
		fill_key(key, 1000 + i);
		ck_assert_int_eq(store_get_manifest(r, key, &text, &len), -ENOENT);
	}
	ck_assert_uint_eq(catch_ups(r), base);
	/* Blob records are index writes too: the next miss catches up once. */
	make_manifest(s, &m, 30, "seen");
	ck_assert_int_eq(store_publish(s, &m), 0);
	ck_assert_int_eq(store_get_verified_manifest(r, m.key, &got, NULL, NULL), 0);
	manifest_release(&got);
	ck_assert_uint_eq(catch_ups(r), base + 1);
	for (unsigned i = 0; i < 200; i++) {
		fill_key(key, 2000 + i);
		ck_assert_int_eq(store_get_manifest(r, key, &text, &len), -ENOENT);
		ck_assert_int_eq(store_catch_up(r), 0);
	}
	ck_assert_uint_eq(catch_ups(r), base + 1);
	/* A pin, then an eviction: each seen at the next catch-up. */
	ck_assert_int_eq(store_set_pin(s, m.key, 1), 0);
	ck_assert_int_eq(store_catch_up(r), 0);
	ck_assert_uint_eq(catch_ups(r), base + 2);
	ck_assert_int_eq(store_key_pinned(r, m.key), 1);
	ck_assert_int_eq(store_set_pin(s, m.key, 0), 0);
	struct store_eviction ev;
	ck_assert_int_eq(store_evict_key(s, m.key, &ev), 0);
	ck_assert_int_eq(store_catch_up(r), 0);
	ck_assert_uint_eq(catch_ups(r), base + 3);
	ck_assert_int_eq(store_get_manifest(r, m.key, &text, &len), -ENOENT);
	ck_assert_uint_eq(catch_ups(r), base + 3);
	manifest_release(&m);
	store_close(r);

	/* Without the count (removed, as in a store of an older writer): every miss catches up,
	 * and what the writer publishes is still found at the next lookup. */
	char path[128];
	snprintf(path, sizeof(path), "%s/writes", dir);
	ck_assert_int_eq(unlink(path), 0);
	ck_assert_int_eq(store_open(dir, STORE_READ_ONLY, &r), 0);
	base = catch_ups(r);
	for (unsigned i = 0; i < 10; i++) {
		fill_key(key, 3000 + i);
		ck_assert_int_eq(store_get_manifest(r, key, &text, &len), -ENOENT);
	}
	ck_assert_uint_eq(catch_ups(r), base + 10);
	make_manifest(s, &m, 31, "uncounted");
	ck_assert_int_eq(store_publish(s, &m), 0);
	ck_assert_int_eq(store_get_verified_manifest(r, m.key, &got, NULL, NULL), 0);
	manifest_release(&got);
	manifest_release(&m);
	/* The next writer makes the file again; the reader takes it up and stops catching up. */
	store_close(s);
	ck_assert_int_eq(store_open(dir, STORE_CREATE, &s), 0);
	fill_key(key, 4000);
	ck_assert_int_eq(store_get_manifest(r, key, &text, &len), -ENOENT);
	base = catch_ups(r);
	for (unsigned i = 0; i < 10; i++) {
		fill_key(key, 4001 + i);
		ck_assert_int_eq(store_get_manifest(r, key, &text, &len), -ENOENT);
	}
	ck_assert_uint_eq(catch_ups(r), base);
	make_manifest(s, &m, 32, "counted again");
	ck_assert_int_eq(store_publish(s, &m), 0);
	ck_assert_int_eq(store_get_verified_manifest(r, m.key, &got, NULL, NULL), 0);
	manifest_release(&got);
	manifest_release(&m);
	store_close(r);
	store_close(s);
}
END_TEST

/* Every key whose publish has returned is found by the reader's next lookup, while other
 * threads miss all the time (the count is raised after the write, read before the catch-up). */
struct follow {
	struct store *s, *r;
	atomic_uint done;      /* keys 0..done-1 are published */
	atomic_int stop, bad;
};

static void *follow_missing(void *arg)
{
	struct follow *f = arg;
	char key[65], *text;
	size_t len;
	for (unsigned i = 0; !atomic_load(&f->stop); i++) {
		fill_key(key, 900000 + i);
		if (store_get_manifest(f->r, key, &text, &len) != -ENOENT)
			atomic_fetch_add(&f->bad, 1);
	}
	return NULL;
}

static void *follow_present(void *arg)
{
	struct follow *f = arg;
	char key[65], *text;
	size_t len;
	while (!atomic_load(&f->stop)) {
		unsigned done = atomic_load(&f->done);
		if (done == 0)
			continue;
		fill_key(key, 500 + done - 1);
		if (store_get_manifest(f->r, key, &text, &len) != 0)
			atomic_fetch_add(&f->bad, 1);
		else
			free(text);
	}
	return NULL;
}

START_TEST(test_reader_follows_under_misses)
{
	struct follow f = { 0 };
	ck_assert_int_eq(store_open(dir, STORE_CREATE, &f.s), 0);
	ck_assert_int_eq(store_open(dir, STORE_READ_ONLY, &f.r), 0);
	pthread_t t[3];
	ck_assert_int_eq(pthread_create(&t[0], NULL, follow_missing, &f), 0);
	ck_assert_int_eq(pthread_create(&t[1], NULL, follow_missing, &f), 0);
	ck_assert_int_eq(pthread_create(&t[2], NULL, follow_present, &f), 0);
	for (unsigned i = 0; i < 60; i++) {
		struct manifest m;
		char body[32];
		snprintf(body, sizeof(body), "follow %u", i);
		make_manifest(f.s, &m, 500 + i, body);
		ck_assert_int_eq(store_publish(f.s, &m), 0);
		manifest_release(&m);
		atomic_store(&f.done, i + 1);
	}
	atomic_store(&f.stop, 1);
	for (int i = 0; i < 3; i++)
		pthread_join(t[i], NULL);
	ck_assert_int_eq(atomic_load(&f.bad), 0);
	store_close(f.r);
	store_close(f.s);
}
END_TEST

/* store_bulk_*: the records store_publish would write (refs counted across the batch and the
 * index), the same refusals, and a store that reads back after store_bulk_sync. */
START_TEST(test_bulk_publish)
{
	struct store *s;
	struct manifest ms[5], one, got;
	int results[5];
	int64_t uses[5] = { 100, 200, 300, 400, 500 };
	struct store_blob_record rec;
	unsigned char bulk_sha[32];
	ck_assert_int_eq(store_open(dir, STORE_CREATE, &s), 0);
	make_manifest(s, &one, 1, "one");
	ck_assert_int_eq(store_publish(s, &one), 0);
	struct store *r;   /* a reader open all along */
	ck_assert_int_eq(store_open(dir, STORE_READ_ONLY, &r), 0);
	make_manifest(s, &ms[0], 2, "two");
	make_manifest(s, &ms[1], 3, "three");
	ck_assert_int_eq(store_bulk_put_blob(s, "bulk only", 9, bulk_sha), 0);
	memcpy(ms[1].outputs[0].sha256, bulk_sha, 32);
	ms[1].outputs[0].size = 9;
	make_manifest(s, &ms[2], 3, "three again");   /* the same key twice in the batch */
	make_manifest(s, &ms[3], 1, "one");           /* already published */
	make_manifest(s, &ms[4], 5, "five");
	ms[4].outputs[0].sha256[0] ^= 1;              /* names a blob that is not there */
	ck_assert_int_eq(store_bulk_publish(s, ms, 5, uses, results), 0);
	ck_assert_int_eq(results[0], 0);
	ck_assert_int_eq(results[1], 0);
	ck_assert_int_eq(results[2], -EEXIST);
	ck_assert_int_eq(results[3], -EEXIST);
	ck_assert_int_eq(results[4], -ENOENT);
	int64_t last_use = 0;
	ck_assert_int_eq(store_key_last_use(s, ms[1].key, &last_use), 0);
	ck_assert_int_eq(last_use, 200);
	ck_assert_int_eq(store_key_last_use(s, ms[4].key, &last_use), -ENOENT);
	/* "dep" is named by key 1 (store_publish) and keys 2 and 3 (one batch). */
	ck_assert_int_eq(store_get_blob_record(s, one.outputs[1].sha256, &rec), 0);
	ck_assert_uint_eq(rec.refs, 3);
	ck_assert_uint_eq(rec.size, 3);
	ck_assert_int_eq(store_get_blob_record(s, bulk_sha, &rec), 0);
	ck_assert_uint_eq(rec.refs, 1);
	ck_assert_uint_eq(rec.size, 9);
	ck_assert_int_eq(store_blob_published(s, bulk_sha), 1);
	/* Not in the write-ahead log: the reader may miss it until the sync flushes the index,
	 * and then finds it at its next lookup. */
	char *text = NULL;
	size_t len = 0;
	int early = store_get_manifest(r, ms[1].key, &text, &len);
	ck_assert(early == 0 || early == -ENOENT);
	free(text);
	ck_assert_int_eq(store_bulk_sync(s), 0);
	ck_assert_int_eq(store_get_manifest(r, ms[1].key, &text, &len), 0);
	free(text);
	store_close(r);
	store_close(s);
	ck_assert_int_eq(store_open(dir, STORE_READ_ONLY, &s), 0);
	ck_assert_int_eq(store_get_verified_manifest(s, ms[1].key, &got, NULL, NULL), 0);
	long out = manifest_find_output(&got, "libfoo.rlib");
	ck_assert_int_ge(out, 0);
	ck_assert_mem_eq(got.outputs[out].sha256, bulk_sha, 32);
	manifest_release(&got);
	int fd = store_open_blob(s, bulk_sha);
	struct stat st;
	char buf[16];
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(fstat(fd, &st), 0);
	ck_assert_uint_eq(st.st_mode & 07777, 0444);
	ck_assert_int_eq(read(fd, buf, sizeof(buf)), 9);
	ck_assert_mem_eq(buf, "bulk only", 9);
	close(fd);
	ck_assert_int_eq(store_bulk_publish(s, ms, 1, NULL, results), -EROFS);
	ck_assert_int_eq(store_bulk_put_blob(s, "x", 1, bulk_sha), -EROFS);
	store_close(s);
	manifest_release(&one);
	for (int i = 0; i < 5; i++)
		manifest_release(&ms[i]);
}
END_TEST

/* A job's blobs committed together: more than one io_uring batch, the same bytes twice, blobs
 * sharing a cas/ directory; through io_uring (where built) and the plain path alike. */
START_TEST(test_blob_commit_many)
{
	enum { N = 40 };
	unsigned flags[2] = { STORE_CREATE, STORE_CREATE | STORE_PLAIN_FSYNC };
	for (int f = 0; f < 2; f++) {
		struct store *s;
		struct store_blob_writer *ws[N];
		unsigned char actual[N][32], expect[32];
		char body[N][32];
		if (f == 1)
			teardown(), setup();
		ck_assert_int_eq(store_open(dir, flags[f], &s), 0);
		for (int i = 0; i < N; i++) {
			/* Blobs 38 and 39 repeat blob 0's bytes. */
			snprintf(body[i], sizeof(body[i]), "blob %d of the set", i >= N - 2 ? 0 : i);
			ck_assert_int_eq(store_blob_begin(s, &ws[i]), 0);
			ck_assert_int_eq(store_blob_write(ws[i], body[i], strlen(body[i])), 0);
		}
		ck_assert_int_eq(store_blob_commit_many(ws, N, actual), 0);
		for (int i = 0; i < N; i++) {
			char buf[64];
			struct stat st;
			ck_assert_int_eq(digest_buffer(body[i], strlen(body[i]), expect), 0);
			ck_assert_mem_eq(actual[i], expect, 32);
			int fd = store_open_blob(s, actual[i]);
			ck_assert_int_ge(fd, 0);
			ck_assert_int_eq(read(fd, buf, sizeof(buf)), (int)strlen(body[i]));
			ck_assert_mem_eq(buf, body[i], strlen(body[i]));
			ck_assert_int_eq(fstat(fd, &st), 0);
			ck_assert_uint_eq(st.st_mode & 07777, 0444);
			close(fd);
			struct store_blob_record rec;
			ck_assert_int_eq(store_get_blob_record(s, actual[i], &rec), 0);
			ck_assert_uint_eq(rec.size, strlen(body[i]));
		}
		struct store_counters c;
		store_get_counters(s, &c);
		ck_assert_uint_eq(c.blobs_written, N);
		/* A manifest naming some of them publishes. */
		struct manifest m;
		manifest_init(&m);
		fill_key(m.key, 99);
		fill_key(m.toolchain, 7);
		m.n_outputs = 1;
		m.outputs = calloc(1, sizeof(*m.outputs));
		m.outputs[0].name = strdup("out");
		m.outputs[0].mode = 0644;
		m.outputs[0].size = strlen(body[1]);
		memcpy(m.outputs[0].sha256, actual[1], 32);
		memcpy(m.stdout_sha256, actual[2], 32);
		m.stdout_size = strlen(body[2]);
		memcpy(m.stderr_sha256, actual[N - 1], 32);
		m.stderr_size = strlen(body[0]);
		ck_assert_int_eq(store_publish(s, &m), 0);
		manifest_release(&m);
		/* One writer alone goes the same way. */
		ck_assert_int_eq(store_blob_begin(s, &ws[0]), 0);
		ck_assert_int_eq(store_blob_write(ws[0], "alone", 5), 0);
		ck_assert_int_eq(store_blob_commit_many(ws, 1, actual), 0);
		ck_assert_int_eq(store_has_blob(s, actual[0]), 1);
		store_close(s);
		char cmd[160];
		snprintf(cmd, sizeof(cmd), "test -z \"$(ls -A '%s/tmp')\"", dir);
		ck_assert_int_eq(system(cmd), 0);
	}
}
END_TEST

/* Every fd of a set is fsync'd, and the first failure is the answer. */
START_TEST(test_fsync_set)
{
	char path[128];
	snprintf(path, sizeof(path), "%s/f", dir);
	int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, "x", 1), 1);
	int ok[3] = { fd, fd, fd }, bad[3] = { fd, -1, fd };
	for (unsigned flags = 0; flags <= FSYNC_SET_PLAIN; flags += FSYNC_SET_PLAIN) {
		ck_assert_int_eq(fsync_set(ok, 0, flags), 0);
		ck_assert_int_eq(fsync_set(ok, 3, flags), 0);
		ck_assert_int_eq(fsync_set(bad, 3, flags), -EBADF);
	}
	close(fd);
}
END_TEST

int main(void)
{
	Suite *suite = suite_create("store");
	TCase *tc = tcase_create("store");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_blob_roundtrip);
	tcase_add_test(tc, test_publish_rules);
	tcase_add_test(tc, test_validation);
	tcase_add_test(tc, test_reader_needs_index);
	tcase_add_test(tc, test_key_persists);
	tcase_add_test(tc, test_misses_without_catch_up);
	tcase_add_test(tc, test_reader_follows_under_misses);
	tcase_add_test(tc, test_bulk_publish);
	tcase_add_test(tc, test_blob_commit_many);
	tcase_add_test(tc, test_fsync_set);
	suite_add_tcase(suite, tc);
	SRunner *sr = srunner_create(suite);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
