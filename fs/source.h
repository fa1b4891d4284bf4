/* A source: what cachepot-fs reads the store through. One interface, two implementations:
 *
 *   source_local   a store directory on this machine (fs/store.h), followed as a RocksDB
 *                  secondary instance (fs/source_local.c);
 *   source_remote  a cachepotd (or any HTTP cache in front of one) read over HTTP(S), with a
 *                  local verified cache (fs/source_remote.c).
 *
 * The mount never learns which one it has. Every manifest it gets has been verified (signature
 * against the source's trusted key or keys, and its key is the one asked for); every blob fd it
 * gets is of a regular file whose bytes the mount still hashes on first open, as it always has.
 *
 * Errors, the same for both: -ENOENT the key or blob is not published (a miss is never
 * remembered, so something published a moment later is found at the next call); -EBADMSG it is
 * published but fails verification (forged, damaged, for another key, wrong size); -EIO the
 * source could not be read (an unreachable origin, within a bounded time); other -errno.
 *
 * All functions are safe to call concurrently from several threads on one struct source.
 */
#ifndef CACHEPOT_FS_SOURCE_H
#define CACHEPOT_FS_SOURCE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/statvfs.h>

#include "fs/manifest.h"

#define SOURCE_SIZE_UNKNOWN UINT64_MAX

struct source;

/* The operations of one implementation; callers use the source_* functions below. */
struct source_ops {
	int (*get_manifest)(struct source *src, const char key_hex[65], struct manifest *m,
	                    char **text, size_t *len);
	int (*open_blob)(struct source *src, const unsigned char sha256[32], uint64_t expect_size,
	                 int *fd, uint64_t *size);
	int (*foreach_key)(struct source *src, int (*fn)(void *ctx, const char key_hex[65]),
	                   void *ctx);
	int (*foreach_blob)(struct source *src, int (*fn)(void *ctx, const unsigned char sha256[32]),
	                    void *ctx);
	int (*get_prekey_lists)(struct source *src, const char prekey_hex[65], char **text,
	                        size_t *len);
	int (*catch_up)(struct source *src);
	int (*statvfs)(struct source *src, struct statvfs *out);
	void (*close)(struct source *src);
	/* Optional (NULL: the source never evicts what it listed). */
	int (*evictions)(struct source *src, int catch_up, uint64_t *generation);
	int (*has_key)(struct source *src, const char key_hex[65]);
	/* Optional (NULL: listed whole by foreach_key/foreach_blob): in order, after AFTER. */
	int (*foreach_key_after)(struct source *src, const unsigned char *after,
	                         int (*fn)(void *ctx, const char key_hex[65]), void *ctx);
	int (*foreach_blob_after)(struct source *src, const unsigned char *after,
	                          int (*fn)(void *ctx, const unsigned char sha256[32]), void *ctx);
};

/* Every implementation's state starts with this. */
struct source {
	const struct source_ops *ops;
};

/* The verified manifest of KEY_HEX: M filled (caller releases); TEXT/LEN may be NULL, else the
 * signed text (malloc'd, NUL-terminated, caller frees) and its length. */
int source_get_manifest(struct source *src, const char key_hex[65], struct manifest *m,
                        char **text, size_t *len) __attribute__((warn_unused_result));

/* Open blob SHA256 for reading: *FD (O_RDONLY|O_CLOEXEC, owned by the caller) and its *SIZE.
 * EXPECT_SIZE is the size a manifest gives, or SOURCE_SIZE_UNKNOWN (a cas/ lookup); a remote
 * source refuses a download of another size (-EBADMSG), the local one leaves the check to the
 * caller's hash on first open. */
int source_open_blob(struct source *src, const unsigned char sha256[32], uint64_t expect_size,
                     int *fd, uint64_t *size) __attribute__((warn_unused_result));

/* The verified pre-key lists of PREKEY_HEX (fs/prekey_list.h: the signature against the
 * source's trusted key or keys, and it names PREKEY_HEX): the signed text in *TEXT (malloc'd,
 * NUL-terminated, caller frees) of *LEN bytes. They change, so neither source keeps a copy:
 * each call reads the store or asks the origin. */
int source_get_prekey_lists(struct source *src, const char prekey_hex[65], char **text,
                            size_t *len) __attribute__((warn_unused_result));

/* Call FN for every key the source can list (readdir of ac/): the local store lists every
 * published key, a remote source only the keys in its local cache. A non-zero return of FN
 * stops the walk and is returned. */
int source_foreach_key(struct source *src, int (*fn)(void *ctx, const char key_hex[65]),
                       void *ctx);
/* As source_foreach_key for blobs (readdir of cas/). */
int source_foreach_blob(struct source *src, int (*fn)(void *ctx, const unsigned char sha256[32]),
                        void *ctx);

/* As source_foreach_key and source_foreach_blob, in order and from the first entry after
 * AFTER (32 bytes; NULL: from the first), so that a listing can be paged through without
 * holding it: -ENOTSUP for a source that cannot (the remote one lists its cache whole). */
int source_foreach_key_after(struct source *src, const unsigned char *after,
                             int (*fn)(void *ctx, const char key_hex[65]), void *ctx);
int source_foreach_blob_after(struct source *src, const unsigned char *after,
                              int (*fn)(void *ctx, const unsigned char sha256[32]), void *ctx);

/* Bring what the source lists up to date (the local store catches up with its writer); 0 when
 * there is nothing to do. */
int source_catch_up(struct source *src);

/* statvfs(3) of where the source keeps its bytes (the store, or the remote source's cache). */
int source_statvfs(struct source *src, struct statvfs *out);

/* Evictions (fs/gc.h): the store's eviction generation, which every eviction raises, as this
 * reader sees it (after catching up with the store when CATCH_UP); -ENOTSUP for a source that
 * does not evict (the remote one: its cache is its own). The mount polls it to forget keys
 * evicted since. */
int source_evictions(struct source *src, int catch_up, uint64_t *generation)
    __attribute__((warn_unused_result));
/* Whether KEY_HEX is published now, without verifying it: 1, 0, -errno (-ENOTSUP as above). */
int source_has_key(struct source *src, const char key_hex[65]);

/* Close SRC and free it; NULL is fine. */
void source_close(struct source *src);

/* The local store at DIR, opened as a reader (STORE_READ_ONLY). Errors as store_open. */
int source_local_open(const char *dir, struct source **out) __attribute__((warn_unused_result));

/* Options of a remote source (cachepot-fs URL MOUNTPOINT -o trust=FILE,cache=DIR,...). */
struct source_remote_options {
	const char *url;         /* http:// or https://HOST[:PORT]/ (a prefix of /v1/...) */
	const char *trust_file;  /* lines of 64-hex Ed25519 public keys; '#' comments, blank lines */
	const char *cache_dir;   /* local cache, created when missing */
	uint64_t cache_size;     /* bytes the cache may hold; least recently used leave first */
	const char *cacert;      /* CA file for https (NULL: the system's) */
	const char *proxy;       /* proxy URL (NULL: none, whatever the environment says) */
	unsigned connect_timeout_ms;   /* 0: the default (3 s) */
	unsigned stall_timeout_ms;     /* no byte for this long aborts a transfer; 0: default (5 s) */
};

/* Open a remote source. Nothing is fetched yet; a bad URL, trust file or cache directory fails
 * here (-EINVAL, -ENOENT...) with a line on stderr. */
int source_remote_open(const struct source_remote_options *options, struct source **out)
    __attribute__((warn_unused_result));

/* Parse a size with an optional K, M, G or T suffix (powers of 1024). 0 or -EINVAL. */
int source_parse_size(const char *text, uint64_t *out) __attribute__((warn_unused_result));

#endif
