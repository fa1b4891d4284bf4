/* The remote source: a cachepotd (or any HTTP cache in front of one) read over HTTP(S) with
 * libcurl, behind a local cache that holds only what was verified.
 *
 * Wire. GET <url>v1/manifests/<key> (the signed manifest text), GET <url>v1/blobs/<sha256>, and
 * GET <url>v1/prekeys/<pre-key> (signed pre-key lists, fs/prekey_list.h: verified like a
 * manifest, for the pre-key asked for, and never cached here since they change).
 * 200 is the object, 404 is "not published" (-ENOENT, never remembered: a key published a
 * second later is found at the next lookup), anything else is -EIO. No redirect is followed,
 * only http and https are spoken, and no proxy is used unless the proxy option names one (the
 * environment's http_proxy is ignored: a FUSE server's environment is seldom meant for it).
 *
 * Trust. Nothing from the wire is believed: a manifest is accepted only when its Ed25519
 * signature verifies against one of the pinned keys of the trust file AND its key is the one
 * asked for (a valid manifest of key A served for key B is refused); a blob only when the
 * SHA-256 and size of the bytes received match, checked while they stream into a temp file of
 * the cache, which is renamed into place only then. A refused or broken download leaves nothing
 * in the cache. Any HTTP cache between us and the origin is thus trusted for availability only.
 *
 * Refetch. A copy that fails verification may be a cache's (a proxy's disk flipped a byte, or it
 * stored a truncated answer), not the origin's. So a refused manifest or blob is fetched once
 * more with "Cache-Control: no-cache" and "Pragma: no-cache", which an HTTP cache must answer
 * from the origin (contrib/nginx/cachepot-proxy.conf goes past its cache on either and stores
 * the fresh answer in place of the bad copy). The second answer is checked exactly as the
 * first: a good one is served and enters the cache, a bad one is -EBADMSG and enters nothing.
 * Once only, so an origin that serves bad bytes costs two requests, never a loop.
 *
 * Cache directory (cache=DIR):
 *   manifests/<key>   verified signed texts (verified again whenever read: it is cheap)
 *   blobs/<sha256>    verified blobs, mode 0444 (the mount hashes them again on first open)
 *   tmp/              downloads in progress; swept at start
 * Bounded by cache_size: when an insertion takes the total over it, the least recently used
 * entries are unlinked until it fits (never the one just inserted). Unlink, not truncate, so a
 * file the mount has open stays readable until it is closed. Recency lives in memory; at start
 * the entries found are ordered by mtime (when they were fetched).
 *
 * Bounded time. A connect gives up after connect_timeout_ms; a transfer that receives no byte
 * for stall_timeout_ms (an origin that accepts and never answers, a proxy that hangs) is
 * aborted. Either is -EIO, and whatever is in the cache still reads.
 *
 * Concurrent fetches of one object collapse: the first caller fetches, the others wait for it
 * and then read the cache (or share its error).
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <openssl/evp.h>

#include "base/clock.h"
#include "base/hex.h"
#include "base/io.h"
#include "fs/prekey_list.h"
#include "fs/source.h"
#include "hash/digest.h"

#define URL_MAX 2048
#define CACHE_BUCKETS 4096
#define DEFAULT_CONNECT_TIMEOUT_MS 3000
#define DEFAULT_STALL_TIMEOUT_MS 5000

enum object_kind { OBJECT_MANIFEST, OBJECT_BLOB };

/* An entry of the cache directory, on the LRU list (most recent first) and in a hash table. */
struct cache_entry {
	struct cache_entry *hash_next;
	struct cache_entry *newer, *older;
	enum object_kind kind;
	unsigned char digest[32];
	uint64_t size;
};

/* A fetch in progress; waiters for the same object sleep on the source's cond. */
struct flight {
	struct flight *next;
	enum object_kind kind;
	unsigned char digest[32];
	int done, result;
	unsigned refs;   /* the fetcher and each waiter; the last one out frees it */
};

struct source_remote {
	struct source base;
	char *url;                       /* ends in '/' */
	char *cacert, *proxy;
	struct manifest_trust trust;      /* the pinned keys */
	long connect_timeout_ms, stall_timeout_ms;
	int cache_fd, dir_fd[2], tmp_fd;  /* dir_fd[kind]: manifests/, blobs/ */
	uint64_t cache_size;

	pthread_mutex_t lock;            /* everything below */
	pthread_cond_t flight_done;
	struct cache_entry *buckets[CACHE_BUCKETS];
	struct cache_entry *newest, *oldest;
	uint64_t cached_bytes;
	struct flight *flights;
};

static struct source_remote *remote_of(struct source *src)
{
	return (struct source_remote *)src;
}

/* ---- The cache's table (under lock) ---- */

static size_t bucket_of(enum object_kind kind, const unsigned char digest[32])
{
	return ((size_t)digest[0] << 8 | digest[1] | (size_t)kind << 12) % CACHE_BUCKETS;
}

static struct cache_entry *entry_find(struct source_remote *r, enum object_kind kind,
                                      const unsigned char digest[32])
{
	struct cache_entry *e = r->buckets[bucket_of(kind, digest)];
	while (e && (e->kind != kind || memcmp(e->digest, digest, 32) != 0))
		e = e->hash_next;
	return e;
}

static void lru_unlink(struct source_remote *r, struct cache_entry *e)
{
	if (e->newer)
		e->newer->older = e->older;
	else
		r->newest = e->older;
	if (e->older)
		e->older->newer = e->newer;
	else
		r->oldest = e->newer;
	e->newer = e->older = NULL;
}

static void lru_push_newest(struct source_remote *r, struct cache_entry *e)
{
	e->older = r->newest;
	e->newer = NULL;
	if (r->newest)
		r->newest->newer = e;
	r->newest = e;
	if (!r->oldest)
		r->oldest = e;
}

/* Forget E and unlink its file. */
static void entry_remove(struct source_remote *r, struct cache_entry *e)
{
	char hex[DIGEST_HEX_SIZE];
	struct cache_entry **p = &r->buckets[bucket_of(e->kind, e->digest)];
	while (*p != e)
		p = &(*p)->hash_next;
	*p = e->hash_next;
	lru_unlink(r, e);
	r->cached_bytes -= e->size;
	digest_to_hex(e->digest, hex);
	unlinkat(r->dir_fd[e->kind], hex, 0);
	free(e);
}

/* Unlink least recently used entries until the cache fits, sparing KEEP. */
static void evict_locked(struct source_remote *r, const struct cache_entry *keep)
{
	while (r->cached_bytes > r->cache_size && r->oldest && r->oldest != keep)
		entry_remove(r, r->oldest);
}

/* Record a file now in the cache (replacing a stale record of it). */
static int entry_add_locked(struct source_remote *r, enum object_kind kind,
                            const unsigned char digest[32], uint64_t size)
{
	struct cache_entry *e = entry_find(r, kind, digest);
	if (e) {
		r->cached_bytes -= e->size;
		e->size = size;
		r->cached_bytes += size;
		lru_unlink(r, e);
		lru_push_newest(r, e);
		evict_locked(r, e);
		return 0;
	}
	e = calloc(1, sizeof(*e));
	if (!e)
		return -ENOMEM;
	e->kind = kind;
	memcpy(e->digest, digest, 32);
	e->size = size;
	size_t b = bucket_of(kind, digest);
	e->hash_next = r->buckets[b];
	r->buckets[b] = e;
	lru_push_newest(r, e);
	r->cached_bytes += size;
	evict_locked(r, e);
	return 0;
}

/* A cache hit: mark it most recently used. 1 when cached, 0 when not. */
static int entry_touch(struct source_remote *r, enum object_kind kind,
                       const unsigned char digest[32])
{
	pthread_mutex_lock(&r->lock);
	struct cache_entry *e = entry_find(r, kind, digest);
	if (e) {
		lru_unlink(r, e);
		lru_push_newest(r, e);
	}
	pthread_mutex_unlock(&r->lock);
	return e != NULL;
}

/* The cache's file is gone or bad: forget it (and unlink what is there). */
static void entry_drop(struct source_remote *r, enum object_kind kind,
                       const unsigned char digest[32])
{
	pthread_mutex_lock(&r->lock);
	struct cache_entry *e = entry_find(r, kind, digest);
	if (e)
		entry_remove(r, e);
	pthread_mutex_unlock(&r->lock);
}

/* ---- Collapsing fetches ---- */

/* Either become the fetcher of (KIND, DIGEST) (returns 1 with *OUT the flight, to be ended by
 * flight_end) or wait for the fetch under way and return 0 with *RESULT its result. */
static int flight_begin(struct source_remote *r, enum object_kind kind,
                        const unsigned char digest[32], struct flight **out, int *result)
{
	pthread_mutex_lock(&r->lock);
	struct flight *f = r->flights;
	while (f && (f->kind != kind || memcmp(f->digest, digest, 32) != 0))
		f = f->next;
	if (!f) {
		f = calloc(1, sizeof(*f));
		if (!f) {
			pthread_mutex_unlock(&r->lock);
			*result = -ENOMEM;
			return 0;
		}
		f->kind = kind;
		memcpy(f->digest, digest, 32);
		f->refs = 1;
		f->next = r->flights;
		r->flights = f;
		pthread_mutex_unlock(&r->lock);
		*out = f;
		return 1;
	}
	f->refs++;
	while (!f->done)
		pthread_cond_wait(&r->flight_done, &r->lock);
	*result = f->result;
	if (--f->refs == 0)
		free(f);
	pthread_mutex_unlock(&r->lock);
	return 0;
}

static void flight_end(struct source_remote *r, struct flight *f, int result)
{
	pthread_mutex_lock(&r->lock);
	struct flight **p = &r->flights;
	while (*p != f)
		p = &(*p)->next;
	*p = f->next;
	f->done = 1;
	f->result = result;
	pthread_cond_broadcast(&r->flight_done);
	if (--f->refs == 0)
		free(f);
	pthread_mutex_unlock(&r->lock);
}

/* ---- HTTP ---- */

/* Where the body of one GET goes: a memory buffer (manifests) or a file, hashed as it comes. */
struct transfer {
	int fd;                 /* -1: into buf */
	char *buf;
	size_t len, cap;
	uint64_t max;           /* more than this is refused (too_big) */
	uint64_t received;
	EVP_MD_CTX *md;         /* NULL: not hashed */
	int too_big, write_error;
	uint64_t last_byte_us;
	uint64_t stall_us;
	int stalled;
	CURL *curl;
	int status_known, not_ok;   /* the body of an answer other than 200 is dropped unread */
};

static size_t on_body(char *data, size_t size, size_t n, void *ctx)
{
	struct transfer *t = ctx;
	size_t len = size * n;
	t->last_byte_us = monotonic_us();
	if (!t->status_known) {
		long status = 0;
		curl_easy_getinfo(t->curl, CURLINFO_RESPONSE_CODE, &status);
		t->status_known = 1;
		t->not_ok = status != 200;
	}
	if (t->not_ok)
		return len;   /* a 404 page is neither the object nor too big for it */
	if (len > t->max - t->received) {
		t->too_big = 1;
		return 0;
	}
	t->received += len;
	if (t->md && EVP_DigestUpdate(t->md, data, len) != 1) {
		t->write_error = -EIO;
		return 0;
	}
	if (t->fd >= 0) {
		int ret = io_write_all(t->fd, data, len);
		if (ret < 0) {
			t->write_error = ret;
			return 0;
		}
		return len;
	}
	if (t->len + len + 1 > t->cap) {
		size_t cap = t->cap ? t->cap : 4096;
		while (cap < t->len + len + 1)
			cap *= 2;
		char *p = realloc(t->buf, cap);
		if (!p) {
			t->write_error = -ENOMEM;
			return 0;
		}
		t->buf = p;
		t->cap = cap;
	}
	memcpy(t->buf + t->len, data, len);
	t->len += len;
	t->buf[t->len] = 0;
	return len;
}

/* Abort a transfer that has received nothing for stall_us (libcurl calls this about once a
 * second even while nothing arrives). */
static int on_progress(void *ctx, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                       curl_off_t ulnow)
{
	struct transfer *t = ctx;
	(void)dltotal, (void)dlnow, (void)ultotal, (void)ulnow;
	if (monotonic_us() - t->last_byte_us > t->stall_us) {
		t->stalled = 1;
		return 1;
	}
	return 0;
}

/* GET URL + PATH into T. PAST_CACHES asks every HTTP cache on the way to answer from the
 * origin (see "Refetch" above). 0 on 200, -ENOENT on 404, -EBADMSG when the body is over
 * T->max, -EIO on any other answer or failure to get one. */
static int http_get(struct source_remote *r, const char *path, int past_caches, struct transfer *t)
{
	char url[URL_MAX];
	struct curl_slist *headers = NULL;
	if ((size_t)snprintf(url, sizeof(url), "%s%s", r->url, path) >= sizeof(url))
		return -EINVAL;
	if (past_caches) {
		struct curl_slist *h = curl_slist_append(NULL, "Cache-Control: no-cache");
		if (h && !(headers = curl_slist_append(h, "Pragma: no-cache")))
			curl_slist_free_all(h);
		if (!headers)
			return -ENOMEM;
	}
	CURL *curl = curl_easy_init();
	if (!curl) {
		curl_slist_free_all(headers);
		return -ENOMEM;
	}
	t->curl = curl;
	t->last_byte_us = monotonic_us();
	t->stall_us = (uint64_t)r->stall_timeout_ms * 1000u;
	curl_easy_setopt(curl, CURLOPT_URL, url);
	/* No signals from libcurl in a threaded server; SIGPIPE is ignored process-wide by
	 * fuse_set_signal_handlers, so a peer closing under a TLS write cannot kill us either. */
	curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
#if LIBCURL_VERSION_NUM >= 0x075500
	curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
#else
	curl_easy_setopt(curl, CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
	curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, r->connect_timeout_ms);
	/* A backstop of libcurl's own, in whole seconds, behind on_progress. */
	curl_easy_setopt(curl, CURLOPT_LOW_SPEED_LIMIT, 1L);
	curl_easy_setopt(curl, CURLOPT_LOW_SPEED_TIME, (r->stall_timeout_ms + 999) / 1000 + 1);
	curl_easy_setopt(curl, CURLOPT_NOPROGRESS, 0L);
	curl_easy_setopt(curl, CURLOPT_XFERINFOFUNCTION, on_progress);
	curl_easy_setopt(curl, CURLOPT_XFERINFODATA, t);
	curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(curl, CURLOPT_WRITEDATA, t);
	curl_easy_setopt(curl, CURLOPT_PROXY, r->proxy ? r->proxy : "");
	if (r->cacert)
		curl_easy_setopt(curl, CURLOPT_CAINFO, r->cacert);
	curl_easy_setopt(curl, CURLOPT_USERAGENT, "cachepot-fs/" PACKAGE_VERSION);
	if (headers)
		curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
	CURLcode rc = curl_easy_perform(curl);
	long status = 0;
	curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
	curl_easy_cleanup(curl);
	curl_slist_free_all(headers);
	if (t->too_big)
		return -EBADMSG;
	if (t->write_error)
		return t->write_error;
	if (rc != CURLE_OK) {
		fprintf(stderr, "cachepot-fs: GET %s: %s\n", url,
		        t->stalled ? "no answer in time" : curl_easy_strerror(rc));
		return -EIO;
	}
	if (status == 200)
		return 0;
	if (status == 404)
		return -ENOENT;
	fprintf(stderr, "cachepot-fs: GET %s: HTTP status %ld\n", url, status);
	return -EIO;
}

/* A name in tmp/ for a download, created there as an empty file; its fd in *FD. */
static int temp_create(struct source_remote *r, char name[40], int *fd)
{
	for (int attempt = 0; attempt < 16; attempt++) {
		unsigned char rnd[8];
		if (getrandom(rnd, sizeof(rnd), 0) != sizeof(rnd))
			return -EIO;
		char hex[17];
		hex_encode(rnd, sizeof(rnd), hex);
		snprintf(name, 40, "get-%s", hex);
		*fd = openat(r->tmp_fd, name, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
		if (*fd >= 0)
			return 0;
		if (errno != EEXIST)
			return -errno;
	}
	return -EEXIST;
}

/* Put DATA into the cache as KIND/DIGEST through a temp file; on success *RO_FD (when not NULL)
 * is a read-only fd of it, valid even if the entry is evicted at once. */
static int cache_commit_temp(struct source_remote *r, enum object_kind kind,
                             const unsigned char digest[32], const char *temp, int temp_fd,
                             uint64_t size, int *ro_fd)
{
	char hex[DIGEST_HEX_SIZE];
	int ret = 0, fd = -1;
	if (fchmod(temp_fd, 0444) < 0 || fdatasync(temp_fd) < 0)
		ret = -errno;
	if (ret == 0 && ro_fd &&
	    (fd = openat(r->tmp_fd, temp, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) < 0)
		ret = -errno;
	digest_to_hex(digest, hex);
	if (ret == 0 && renameat(r->tmp_fd, temp, r->dir_fd[kind], hex) < 0)
		ret = -errno;
	if (ret == 0) {
		pthread_mutex_lock(&r->lock);
		ret = entry_add_locked(r, kind, digest, size);
		pthread_mutex_unlock(&r->lock);
		if (ret < 0)
			unlinkat(r->dir_fd[kind], hex, 0);
	}
	if (ret < 0) {
		unlinkat(r->tmp_fd, temp, 0);
		if (fd >= 0)
			close(fd);
		return ret;
	}
	if (ro_fd)
		*ro_fd = fd;
	return 0;
}

/* ---- Manifests ---- */

/* Verify TEXT against every pinned key; and its key must be KEY_HEX. */
static int verify_manifest(struct source_remote *r, const char key_hex[65], const char *text,
                           size_t len, struct manifest *m)
{
	int ret = manifest_verify_trusted(text, len, &r->trust, m);
	if (ret == 0 && strcmp(m->key, key_hex) != 0) {
		manifest_release(m);
		ret = -EBADMSG;
	}
	return ret;
}

static int manifest_from_cache(struct source_remote *r, const char key_hex[65],
                               const unsigned char key[32], struct manifest *m, char **text,
                               size_t *len)
{
	char *t = NULL;
	size_t n = 0;
	if (!entry_touch(r, OBJECT_MANIFEST, key))
		return -ENOENT;
	int ret = io_read_file_at(r->dir_fd[OBJECT_MANIFEST], key_hex, O_NOFOLLOW, MANIFEST_MAX_TEXT,
	                          &t, &n);
	if (ret == 0 && (ret = verify_manifest(r, key_hex, t, n, m)) < 0)
		fprintf(stderr, "cachepot-fs: cached manifest of %s fails verification; dropped\n",
		        key_hex);
	if (ret < 0) {
		free(t);
		if (ret != -ENOMEM)
			entry_drop(r, OBJECT_MANIFEST, key);
		return ret == -ENOMEM ? ret : -ENOENT;
	}
	if (text) {
		*text = t;
		*len = n;
	} else {
		free(t);
	}
	return 0;
}

/* GET the manifest of KEY_HEX (past every cache when PAST_CACHES) and verify it; *T holds
 * the text on success. */
static int get_verified_manifest(struct source_remote *r, const char key_hex[65], int past_caches,
                                 struct transfer *t)
{
	char path[80];
	struct manifest m;
	snprintf(path, sizeof(path), "v1/manifests/%s", key_hex);
	int ret = http_get(r, path, past_caches, t);
	if (ret == 0 && (ret = verify_manifest(r, key_hex, t->buf ? t->buf : "", t->len, &m)) < 0)
		fprintf(stderr, "cachepot-fs: manifest of %s from %s%s fails verification (not signed "
		        "by a trusted key, or for another key); refused\n", key_hex, r->url,
		        past_caches ? " (past caches)" : "");
	else if (ret == -EBADMSG)
		fprintf(stderr, "cachepot-fs: manifest of %s from %s%s is too large; refused\n",
		        key_hex, r->url, past_caches ? " (past caches)" : "");
	if (ret == 0)
		manifest_release(&m);
	return ret;
}

static int fetch_manifest(struct source_remote *r, const char key_hex[65],
                          const unsigned char key[32])
{
	char temp[40];
	struct transfer t = { .fd = -1, .max = MANIFEST_MAX_TEXT };
	int ret = get_verified_manifest(r, key_hex, 0, &t);
	if (ret == -EBADMSG) {
		free(t.buf);
		t = (struct transfer){ .fd = -1, .max = MANIFEST_MAX_TEXT };
		ret = get_verified_manifest(r, key_hex, 1, &t);
		if (ret == 0)
			fprintf(stderr, "cachepot-fs: manifest of %s fetched again past caches: good\n",
			        key_hex);
	}
	if (ret == 0) {
		int fd;
		if ((ret = temp_create(r, temp, &fd)) == 0) {
			ret = io_write_all(fd, t.buf, t.len);
			if (ret == 0)
				ret = cache_commit_temp(r, OBJECT_MANIFEST, key, temp, fd, t.len, NULL);
			else
				unlinkat(r->tmp_fd, temp, 0);
			close(fd);
		}
	}
	free(t.buf);
	return ret;
}

static int remote_get_manifest(struct source *src, const char key_hex[65], struct manifest *m,
                               char **text, size_t *len)
{
	struct source_remote *r = remote_of(src);
	unsigned char key[32];
	if (digest_from_hex(key_hex, key) < 0)
		return -EINVAL;
	for (int round = 0; round < 3; round++) {
		int ret = manifest_from_cache(r, key_hex, key, m, text, len);
		if (ret != -ENOENT)
			return ret;
		struct flight *f;
		if (flight_begin(r, OBJECT_MANIFEST, key, &f, &ret)) {
			ret = fetch_manifest(r, key_hex, key);
			flight_end(r, f, ret);
		}
		if (ret < 0)
			return ret;
	}
	return -EIO;   /* fetched, yet evicted before it could be read, three times over */
}

/* ---- Pre-key lists ---- */

/* GET the pre-key lists of PREKEY_HEX (past every cache when PAST_CACHES) and verify them. They
 * change (fs/prekey_list.h), so they are never kept in the cache directory. */
static int get_verified_prekey_lists(struct source_remote *r, const char prekey_hex[65],
                                     int past_caches, struct transfer *t)
{
	char path[80];
	json_t *lists = NULL;
	snprintf(path, sizeof(path), "v1/prekeys/%s", prekey_hex);
	int ret = http_get(r, path, past_caches, t);
	if (ret == 0 && (ret = prekey_lists_verify_trusted(t->buf ? t->buf : "", t->len, &r->trust,
	                                                    prekey_hex, &lists)) < 0)
		fprintf(stderr, "cachepot-fs: pre-key lists of %s from %s%s fail verification (not "
		        "signed by a trusted key, or for another pre-key); refused\n", prekey_hex, r->url,
		        past_caches ? " (past caches)" : "");
	json_decref(lists);
	return ret;
}

static int remote_get_prekey_lists(struct source *src, const char prekey_hex[65], char **text,
                                   size_t *len)
{
	struct source_remote *r = remote_of(src);
	struct transfer t = { .fd = -1, .max = PREKEY_LISTS_MAX_TEXT };
	if (!digest_hex_valid(prekey_hex))
		return -EINVAL;
	int ret = get_verified_prekey_lists(r, prekey_hex, 0, &t);
	if (ret == -EBADMSG) {
		free(t.buf);
		t = (struct transfer){ .fd = -1, .max = PREKEY_LISTS_MAX_TEXT };
		ret = get_verified_prekey_lists(r, prekey_hex, 1, &t);
	}
	if (ret < 0) {
		free(t.buf);
		return ret;
	}
	*text = t.buf;
	*len = t.len;
	return 0;
}

/* ---- Blobs ---- */

static int blob_from_cache(struct source_remote *r, const unsigned char sha[32],
                           uint64_t expect_size, int *fd, uint64_t *size)
{
	char hex[DIGEST_HEX_SIZE];
	struct stat st;
	if (!entry_touch(r, OBJECT_BLOB, sha))
		return -ENOENT;
	digest_to_hex(sha, hex);
	int blob = openat(r->dir_fd[OBJECT_BLOB], hex, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
	if (blob < 0 || fstat(blob, &st) < 0 || !S_ISREG(st.st_mode) ||
	    (expect_size != SOURCE_SIZE_UNKNOWN && (uint64_t)st.st_size != expect_size)) {
		if (blob >= 0)
			close(blob);
		entry_drop(r, OBJECT_BLOB, sha);
		return -ENOENT;
	}
	*fd = blob;
	*size = (uint64_t)st.st_size;
	return 0;
}

/* Download blob SHA (past every cache when PAST_CACHES) into the temp file TFD, hashing it;
 * 0 when its SHA-256 and size are right, with *RECEIVED its size; -EBADMSG when not. */
static int get_verified_blob(struct source_remote *r, const unsigned char sha[32],
                             uint64_t expect_size, int past_caches, int tfd, uint64_t *received)
{
	char path[96], hex[DIGEST_HEX_SIZE];
	unsigned char got[32];
	unsigned md_len = 0;
	int ret = 0;
	digest_to_hex(sha, hex);
	snprintf(path, sizeof(path), "v1/blobs/%s", hex);
	struct transfer t = {
		.fd = tfd, .md = EVP_MD_CTX_new(),
		.max = expect_size != SOURCE_SIZE_UNKNOWN ? expect_size : r->cache_size,
	};
	if (!t.md || EVP_DigestInit_ex(t.md, EVP_sha256(), NULL) != 1)
		ret = -ENOMEM;
	else
		ret = http_get(r, path, past_caches, &t);
	if (ret == 0 && (EVP_DigestFinal_ex(t.md, got, &md_len) != 1 || md_len != 32))
		ret = -EIO;
	if (ret == 0 && (memcmp(got, sha, 32) != 0 ||
	                 (expect_size != SOURCE_SIZE_UNKNOWN && t.received != expect_size)))
		ret = -EBADMSG;
	if (ret == -EBADMSG)
		fprintf(stderr, "cachepot-fs: blob %s from %s%s does not match its name or size; "
		        "refused\n", hex, r->url, past_caches ? " (past caches)" : "");
	EVP_MD_CTX_free(t.md);
	*received = t.received;
	return ret;
}

/* Download blob SHA into the cache; *FD a read-only fd of it. A bad copy is fetched once more
 * past every cache (see "Refetch" above) into the same temp file, emptied first. */
static int fetch_blob(struct source_remote *r, const unsigned char sha[32], uint64_t expect_size,
                      int *fd, uint64_t *size)
{
	char temp[40];
	uint64_t received = 0;
	int tfd;
	int ret = temp_create(r, temp, &tfd);
	if (ret < 0)
		return ret;
	ret = get_verified_blob(r, sha, expect_size, 0, tfd, &received);
	if (ret == -EBADMSG) {
		char hex[DIGEST_HEX_SIZE];
		if (ftruncate(tfd, 0) < 0 || lseek(tfd, 0, SEEK_SET) < 0)
			ret = -errno;
		else
			ret = get_verified_blob(r, sha, expect_size, 1, tfd, &received);
		digest_to_hex(sha, hex);
		if (ret == 0)
			fprintf(stderr, "cachepot-fs: blob %s fetched again past caches: good\n", hex);
	}
	if (ret == 0)
		ret = cache_commit_temp(r, OBJECT_BLOB, sha, temp, tfd, received, fd);
	else
		unlinkat(r->tmp_fd, temp, 0);
	if (ret == 0)
		*size = received;
	close(tfd);
	return ret;
}

static int remote_open_blob(struct source *src, const unsigned char sha[32], uint64_t expect_size,
                            int *fd, uint64_t *size)
{
	struct source_remote *r = remote_of(src);
	for (int round = 0; round < 3; round++) {
		int ret = blob_from_cache(r, sha, expect_size, fd, size);
		if (ret != -ENOENT)
			return ret;
		struct flight *f;
		if (flight_begin(r, OBJECT_BLOB, sha, &f, &ret)) {
			/* The fetcher keeps its own fd: the entry may be evicted before it is opened. */
			ret = fetch_blob(r, sha, expect_size, fd, size);
			flight_end(r, f, ret);
			return ret;
		}
		if (ret < 0)
			return ret;
	}
	return -EIO;
}

/* ---- Listing, statvfs ---- */

/* Call FN with each name of the cache directory of KIND that is a digest. */
static int foreach_cached(struct source_remote *r, enum object_kind kind,
                          int (*fn)(void *ctx, const char hex[65], const unsigned char digest[32]),
                          void *ctx)
{
	int fd = openat(r->dir_fd[kind], ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	DIR *d = fdopendir(fd);
	if (!d) {
		int ret = -errno;
		close(fd);
		return ret;
	}
	int ret = 0;
	struct dirent *e;
	while (ret == 0 && (e = readdir(d))) {
		unsigned char digest[32];
		if (digest_hex_valid(e->d_name) && digest_from_hex(e->d_name, digest) == 0)
			ret = fn(ctx, e->d_name, digest);
	}
	closedir(d);
	return ret;
}

struct key_walk {
	int (*key_fn)(void *ctx, const char key_hex[65]);
	int (*blob_fn)(void *ctx, const unsigned char sha256[32]);
	void *ctx;
};

static int key_step(void *ctx, const char hex[65], const unsigned char digest[32])
{
	struct key_walk *w = ctx;
	(void)digest;
	return w->key_fn(w->ctx, hex);
}

static int blob_step(void *ctx, const char hex[65], const unsigned char digest[32])
{
	struct key_walk *w = ctx;
	(void)hex;
	return w->blob_fn(w->ctx, digest);
}

static int remote_foreach_key(struct source *src, int (*fn)(void *ctx, const char key_hex[65]),
                              void *ctx)
{
	struct key_walk w = { fn, NULL, ctx };
	return foreach_cached(remote_of(src), OBJECT_MANIFEST, key_step, &w);
}

static int remote_foreach_blob(struct source *src,
                               int (*fn)(void *ctx, const unsigned char sha256[32]), void *ctx)
{
	struct key_walk w = { NULL, fn, ctx };
	return foreach_cached(remote_of(src), OBJECT_BLOB, blob_step, &w);
}

static int remote_catch_up(struct source *src)
{
	(void)src;   /* nothing is listed but the cache, which is always current */
	return 0;
}

static int remote_statvfs(struct source *src, struct statvfs *out)
{
	return fstatvfs(remote_of(src)->cache_fd, out) < 0 ? -errno : 0;
}

static void remote_close(struct source *src)
{
	struct source_remote *r = remote_of(src);
	if (!r)
		return;
	for (size_t b = 0; b < CACHE_BUCKETS; b++) {
		struct cache_entry *e = r->buckets[b];
		while (e) {
			struct cache_entry *next = e->hash_next;
			free(e);
			e = next;
		}
	}
	for (int k = 0; k < 2; k++)
		if (r->dir_fd[k] >= 0)
			close(r->dir_fd[k]);
	if (r->tmp_fd >= 0)
		close(r->tmp_fd);
	if (r->cache_fd >= 0)
		close(r->cache_fd);
	pthread_mutex_destroy(&r->lock);
	pthread_cond_destroy(&r->flight_done);
	free(r->url);
	free(r->cacert);
	free(r->proxy);
	free(r);
	curl_global_cleanup();
}

static const struct source_ops remote_ops = {
	.get_manifest = remote_get_manifest,
	.open_blob = remote_open_blob,
	.get_prekey_lists = remote_get_prekey_lists,
	.foreach_key = remote_foreach_key,
	.foreach_blob = remote_foreach_blob,
	.catch_up = remote_catch_up,
	.statvfs = remote_statvfs,
	.close = remote_close,
};

/* ---- Opening ---- */

/* The trust file (fs/manifest.h's format). */
static int load_trust_file(struct source_remote *r, const char *path)
{
	unsigned bad_line = 0;
	int ret = manifest_trust_load(&r->trust, path, &bad_line);
	if (ret == -EINVAL && bad_line)
		fprintf(stderr, "cachepot-fs: trust file %s, line %u: not a 64-hex public key (or "
		        "more than %u keys)\n", path, bad_line, MANIFEST_TRUST_MAX_KEYS);
	else if (ret == -EINVAL)
		fprintf(stderr, "cachepot-fs: trust file %s names no key\n", path);
	else if (ret < 0)
		fprintf(stderr, "cachepot-fs: trust file %s: %s\n", path, strerror(-ret));
	return ret;
}

struct found {
	enum object_kind kind;
	unsigned char digest[32];
	uint64_t size;
	struct timespec mtime;
};

static int found_by_mtime(const void *a, const void *b)
{
	const struct found *x = a, *y = b;
	if (x->mtime.tv_sec != y->mtime.tv_sec)
		return x->mtime.tv_sec < y->mtime.tv_sec ? -1 : 1;
	return x->mtime.tv_nsec < y->mtime.tv_nsec ? -1 : x->mtime.tv_nsec > y->mtime.tv_nsec;
}

struct scan {
	struct source_remote *r;
	enum object_kind kind;
	struct found *found;
	size_t n, cap;
};

static int scan_step(void *ctx, const char hex[65], const unsigned char digest[32])
{
	struct scan *s = ctx;
	struct stat st;
	if (fstatat(s->r->dir_fd[s->kind], hex, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISREG(st.st_mode))
		return 0;
	if (s->n == s->cap) {
		size_t cap = s->cap ? 2 * s->cap : 64;
		void *p = reallocarray(s->found, cap, sizeof(*s->found));
		if (!p)
			return -ENOMEM;
		s->found = p;
		s->cap = cap;
	}
	struct found *f = &s->found[s->n++];
	f->kind = s->kind;
	memcpy(f->digest, digest, 32);
	f->size = (uint64_t)st.st_size;
	f->mtime = st.st_mtim;
	return 0;
}

/* Create the layout, sweep tmp/, and take in what an earlier run left, oldest first. */
static int open_cache(struct source_remote *r, const char *dir)
{
	if (mkdir(dir, 0700) < 0 && errno != EEXIST)
		return -errno;
	r->cache_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (r->cache_fd < 0)
		return -errno;
	static const char *const sub[3] = { "manifests", "blobs", "tmp" };
	int fds[3];
	for (int i = 0; i < 3; i++) {
		if (mkdirat(r->cache_fd, sub[i], 0700) < 0 && errno != EEXIST)
			return -errno;
		fds[i] = openat(r->cache_fd, sub[i], O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
		if (fds[i] < 0)
			return -errno;
		if (i < 2)
			r->dir_fd[i] = fds[i];
		else
			r->tmp_fd = fds[i];
	}
	DIR *d = fdopendir(dup(r->tmp_fd));
	if (d) {
		struct dirent *e;
		while ((e = readdir(d)))
			if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
				unlinkat(r->tmp_fd, e->d_name, 0);
		closedir(d);
	}
	struct scan s = { r, OBJECT_MANIFEST, NULL, 0, 0 };
	int ret = foreach_cached(r, OBJECT_MANIFEST, scan_step, &s);
	s.kind = OBJECT_BLOB;
	if (ret == 0)
		ret = foreach_cached(r, OBJECT_BLOB, scan_step, &s);
	if (ret == 0 && s.n)
		qsort(s.found, s.n, sizeof(*s.found), found_by_mtime);
	pthread_mutex_lock(&r->lock);
	for (size_t i = 0; i < s.n && ret == 0; i++)
		ret = entry_add_locked(r, s.found[i].kind, s.found[i].digest, s.found[i].size);
	pthread_mutex_unlock(&r->lock);
	free(s.found);
	return ret;
}

int source_remote_open(const struct source_remote_options *o, struct source **out)
{
	if (!o->url || !o->trust_file || !o->cache_dir || o->cache_size == 0)
		return -EINVAL;
	if (strncmp(o->url, "http://", 7) != 0 && strncmp(o->url, "https://", 8) != 0) {
		fprintf(stderr, "cachepot-fs: %s: not an http:// or https:// URL\n", o->url);
		return -EINVAL;
	}
	if (strlen(o->url) > URL_MAX - 128 || strpbrk(o->url, " \t\r\n?#")) {
		fprintf(stderr, "cachepot-fs: %s: not a usable base URL\n", o->url);
		return -EINVAL;
	}
	struct source_remote *r = calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	r->base.ops = &remote_ops;
	r->cache_fd = r->tmp_fd = r->dir_fd[0] = r->dir_fd[1] = -1;
	pthread_mutex_init(&r->lock, NULL);
	pthread_cond_init(&r->flight_done, NULL);
	r->cache_size = o->cache_size;
	r->connect_timeout_ms = o->connect_timeout_ms ? o->connect_timeout_ms
	                                              : DEFAULT_CONNECT_TIMEOUT_MS;
	r->stall_timeout_ms = o->stall_timeout_ms ? o->stall_timeout_ms : DEFAULT_STALL_TIMEOUT_MS;
	/* Before anything else of libcurl's, and before the FUSE loop starts threads. */
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		free(r);
		return -ENOMEM;
	}
	size_t url_len = strlen(o->url);
	int ret = -ENOMEM;
	if (asprintf(&r->url, "%s%s", o->url, o->url[url_len - 1] == '/' ? "" : "/") < 0) {
		r->url = NULL;
		goto fail;
	}
	if ((o->cacert && !(r->cacert = strdup(o->cacert))) ||
	    (o->proxy && !(r->proxy = strdup(o->proxy))))
		goto fail;
	if ((ret = load_trust_file(r, o->trust_file)) < 0)
		goto fail;
	if ((ret = open_cache(r, o->cache_dir)) < 0) {
		fprintf(stderr, "cachepot-fs: cache %s: %s\n", o->cache_dir, strerror(-ret));
		goto fail;
	}
	*out = &r->base;
	return 0;
fail:
	remote_close(&r->base);
	return ret;
}

int source_parse_size(const char *text, uint64_t *out)
{
	uint64_t v = 0;
	const char *p = text;
	if (!*p)
		return -EINVAL;
	for (; *p >= '0' && *p <= '9'; p++)
		if (__builtin_mul_overflow(v, 10, &v) || __builtin_add_overflow(v, (uint64_t)(*p - '0'), &v))
			return -EINVAL;
	if (p == text)
		return -EINVAL;
	unsigned shift = 0;
	switch (*p) {
	case 0: break;
	case 'k': case 'K': shift = 10; break;
	case 'm': case 'M': shift = 20; break;
	case 'g': case 'G': shift = 30; break;
	case 't': case 'T': shift = 40; break;
	default: return -EINVAL;
	}
	if (*p && p[1] != 0)
		return -EINVAL;
	if (shift && v > (UINT64_MAX >> shift))
		return -EINVAL;
	*out = v << shift;
	return 0;
}
