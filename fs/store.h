/* The store: content-addressed blobs on disk plus a RocksDB index of signed manifests.
 *
 * Layout of a store directory (default /var/lib/cachepot):
 *   cas/ab/<sha256 hex>  blob files, mode 0444, named by the SHA-256 of their bytes; ab is the
 *                        first two hex digits. Written once, never opened for writing again.
 *   tmp/                 temp files of blobs being written (same file system, so rename works);
 *                        swept when a writer opens the store.
 *   index/               RocksDB. One column family, keys with a one-byte prefix:
 *                          'a' + 32-byte action key -> signed manifest text (fs/manifest.h)
 *                          'b' + 32-byte sha256     -> blob record, 24 bytes little endian:
 *                                                      u64 size, u64 refs, i64 last use (unix s);
 *                                                      refs > 0: a manifest names it, and only
 *                                                      then is it served (store_blob_published)
 *                          'p' + 32-byte pre-key    -> signed pre-key lists (fs/prekey_list.h),
 *                                                      the one value that changes (see below)
 *                          'j' + 32-byte action key -> the wire job it was built from
 *                          'v' + 32-byte action key -> a verify mark: a rebuild differed
 *                                                      (see "Job records and verify marks")
 *                          'u' + 32-byte action key -> i64 little endian: the key's last use
 *                                                      (unix s), written with the manifest and
 *                                                      by store_touch_key
 *                          'n' + 32-byte action key -> empty: the key is pinned (never evicted)
 *                          'g'                      -> u64 little endian: the eviction generation,
 *                                                      raised by every eviction (readers poll it)
 *   key/                 mode 0711: its files are read by name only
 *   key/ed25519.pem      the store's Ed25519 private key (PKCS#8 PEM), mode 0600
 *   key/ed25519.pub      its public key, 64 hex characters and a newline, mode 0644 (what
 *                        readers pin: cachepot-fs trust=, the wrapper's trust)
 *   writes               the writer's count of its index writes, a u64 in native byte order
 *                        shared by mmap and never synced (readers skip catch-ups while it
 *                        stays at what they caught up with); absent in stores of older writers
 *   toolchains/<id>/     unpacked toolchain trees (daemon/), see "The daemon's trees" below
 *   jobs/<name>/         per-job scratch (daemon/), see below
 *
 * Durability. A blob is written to tmp/, fsync'd, hashed as it is written, then moved into cas/
 * with renameat2(RENAME_NOREPLACE) and its directory fsync'd. The blobs of one job are committed
 * together (store_blob_commit_many): all their fsyncs in flight at once, then the renames, then
 * the fsyncs of their directories, so the file system joins them into about two journal commits
 * instead of two a blob; each file and directory still has its own fsync. Publishing checks that every blob a
 * manifest names is present with the right size, then writes the manifest and the blob records
 * in ONE RocksDB WriteBatch with sync. So a key in the index always names durable blobs, and a
 * crash at any point leaves either the whole key or nothing. A key is never overwritten.
 *
 * Writers and readers. RocksDB admits one writer process: the daemon opens the store with
 * STORE_CREATE. Readers (cachepot-fs, fsck) open it with STORE_READ_ONLY as a RocksDB secondary
 * instance, which may run next to the writer and follows it by replaying its MANIFEST and WAL
 * (store_catch_up). We chose a secondary over "the daemon serves the mount itself" so that the
 * mount keeps serving hits while the daemon is restarted or upgraded, the FUSE server holds no
 * write capability on the store at all, and the two can run under different service policies;
 * the cost is one catch-up per lookup miss that follows a write of the writer (the writer
 * counts its writes in the store's file "writes", shared by mmap; while the count is the one a
 * reader last caught up with, its misses cost a lookup only: see store_get_manifest).
 *
 * All functions are safe to call concurrently from several threads on one struct store.
 * Functions return 0 (or a documented positive value) on success and a negative errno on failure.
 */
#ifndef CACHEPOT_FS_STORE_H
#define CACHEPOT_FS_STORE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/statvfs.h>
#include <sys/types.h>

#include "fs/manifest.h"
#include "fs/prekey_list.h"

#define STORE_DEFAULT_DIR "/var/lib/cachepot"

struct store;

#define STORE_CREATE    1u  /* writer (daemon): create layout, index and key if missing */
#define STORE_READ_ONLY 2u  /* reader (cachepot-fs, fsck): RocksDB secondary instance, no writes */
#define STORE_PLAIN_FSYNC 4u /* writer: fsync one file after the other, never through io_uring
                             * (fs/fsync_set.h; for benchmarks and tests of the plain path) */

/* Open the store at DIR. With STORE_CREATE the directory, its layout, the index and the signing
 * key are created when missing; the writer holds an flock on index/ (and RocksDB its own lock),
 * and a second writer, in this process or another, gets -EBUSY from that flock, as it does when
 * another program holds RocksDB's lock. With STORE_READ_ONLY nothing is created (-ENOENT when
 * there is no index yet); the secondary instance keeps its own small state in a private temp
 * directory removed by store_close. Other failures of RocksDB itself are -EIO (its C API gives
 * text only; the text goes to stderr). On success *OUT is owned by the caller (store_close). */
int store_open(const char *dir, unsigned flags, struct store **out)
    __attribute__((warn_unused_result));
void store_close(struct store *store);

/* O_PATH|O_DIRECTORY fd of DIR, owned by STORE (do not close). */
int store_dir_fd(const struct store *store);

/* The store's Ed25519 public key (32 raw bytes). */
void store_public_key(const struct store *store, unsigned char out[32]);

/* ---- Blobs ----
 * A writer streams into a temp file; commit fsyncs, hashes, checks EXPECT (may be NULL), moves it
 * into cas/ read-only (0444) with RENAME_NOREPLACE; a blob already present is fine. On mismatch
 * returns -EBADMSG and keeps nothing. commit and abort free the writer. -EROFS on a reader. */
struct store_blob_writer;
int store_blob_begin(struct store *store, struct store_blob_writer **out)
    __attribute__((warn_unused_result));
int store_blob_write(struct store_blob_writer *w, const void *data, size_t len)
    __attribute__((warn_unused_result));
/* ACTUAL (may be NULL) receives the SHA-256 of what was written, also on -EBADMSG. */
int store_blob_commit(struct store_blob_writer *w, const unsigned char *expect /*32 or NULL*/,
                      unsigned char actual[32]);
void store_blob_abort(struct store_blob_writer *w);
/* Commit the N writers of WS (of one store, N >= 1) together: a job's outputs, stdout and
 * stderr. The same guarantees as N store_blob_commit calls without EXPECT, at the cost of about
 * two fsyncs instead of 2N: every file's fsync is in flight at once (fs/fsync_set.h), then the
 * renames, then one fsync of each distinct cas/ directory, again at once. ACTUAL[i] (ACTUAL may
 * be NULL) receives the SHA-256 of WS[i]. Returns 0 when every blob is in cas/ and durable, else
 * the -errno of the first that is not (the others may be in cas/ and stay, as after a job that
 * failed half-way). Every writer is freed. */
int store_blob_commit_many(struct store_blob_writer **ws, size_t n, unsigned char (*actual)[32])
    __attribute__((warn_unused_result));
/* Write everything readable from FD (from its offset) to W. 0 or -errno (W stays W's owner's:
 * abort or commit it). */
int store_blob_write_fd(struct store_blob_writer *w, int fd) __attribute__((warn_unused_result));
/* Copy everything readable from FD (from its offset) into a blob; as store_blob_commit. */
int store_put_blob_fd(struct store *store, int fd, const unsigned char *expect,
                      unsigned char actual[32]) __attribute__((warn_unused_result));
/* Convenience for small blobs (stdout, stderr, tests). */
int store_put_blob_buffer(struct store *store, const void *data, size_t len,
                          unsigned char actual[32]) __attribute__((warn_unused_result));
/* 1 present, 0 absent, -errno. Presence is the file in cas/, not the index. */
int store_has_blob(struct store *store, const unsigned char sha256[32]);
/* O_RDONLY|O_CLOEXEC fd of the blob, owned by the caller, or -errno (-ENOENT; -EBADMSG when
 * cas/ holds something other than a regular file under that name). The bytes are NOT verified
 * here: callers that serve them verify (cachepot-fs does on first open, fsck reads them all). */
int store_open_blob(struct store *store, const unsigned char sha256[32]);
/* store_open_blob for a reader that is not a use (fsck, tools): O_NOATIME where the kernel
 * allows it (the owner, or root), so that reading leaves the access time a collection orders
 * keys by (fs/gc.h) as it was. */
int store_open_blob_unused(struct store *store, const unsigned char sha256[32]);
/* Size of the blob file, or -errno. */
int store_blob_size(struct store *store, const unsigned char sha256[32], uint64_t *size);

/* ---- Blob files (fsck, the mount) ----
 * What readers need of cas/ and tmp/ without knowing their layout. */

/* One entry found under cas/ by store_foreach_blob_file. */
struct store_blob_file {
	const char *rel;               /* its path under cas/, "ab/<name>" (or "ab" with ERROR) */
	const unsigned char *sha256;   /* the digest its name gives; NULL for a stray entry (not
	                                * 64 hex digits, or in another directory than its first two) */
	int error;                     /* 0, or -errno: the directory REL could not be read
	                                * (sha256 NULL; a missing directory is not reported) */
};
/* Call FN for every entry of every cas/ab/ directory, directories in hex order, entries in
 * directory order; what FN gets is valid only during the call. The file is not opened: open it
 * with store_open_blob. A non-zero return of FN stops the walk and is returned; -errno when a
 * directory stream fails. */
int store_foreach_blob_file(struct store *store,
                            int (*fn)(void *ctx, const struct store_blob_file *file), void *ctx);
/* Number of entries in tmp/ (temp files of writers that were interrupted), or -errno. */
int store_count_temp_files(struct store *store);
/* statvfs(3) of the file system that holds cas/. 0 or -errno. */
int store_statvfs(struct store *store, struct statvfs *out);

/* ---- Manifests ----
 * Publish: every blob M names (outputs, stdout, stderr) must be present with the size M gives
 * (-ENOENT when absent, -EBADMSG on a size mismatch, -EINVAL when M is not valid); then one
 * synced RocksDB write of the signed manifest and the blob records. Returns 0 when published, 1
 * when the key already had a DIFFERENT result (kept, counted as nondeterminism), 2 when the same
 * result was already there, -errno on failure. Never overwrites. -EROFS on a reader. */
int store_publish(struct store *store, const struct manifest *m)
    __attribute__((warn_unused_result));

/* The signed manifest text of KEY_HEX (what ac/<key>/.manifest shows) in *TEXT (malloc'd,
 * NUL-terminated, caller frees), its length in *LEN. -ENOENT when the key is not published.
 * On a reader a miss first catches up with the writer (store_catch_up) and looks again, so a key
 * the daemon has published is found; concurrent misses share one catch-up, and a miss after which
 * the writer has written nothing since the last catch-up runs none. */
int store_get_manifest(struct store *store, const char key_hex[65], char **text, size_t *len)
    __attribute__((warn_unused_result));

/* store_get_manifest, then parse and verify the signature against THIS store's public key, and
 * check that the manifest's key is KEY_HEX. M is filled (caller releases); TEXT/LEN may be NULL,
 * otherwise they receive the text as above. -ENOENT, -EBADMSG (forged or damaged), -errno. */
int store_get_verified_manifest(struct store *store, const char key_hex[65], struct manifest *m,
                                char **text, size_t *len) __attribute__((warn_unused_result));

/* Parse and verify a signed text against this store's public key. */
int store_parse_manifest(struct store *store, const char *text, size_t len, struct manifest *m)
    __attribute__((warn_unused_result));

/* Reader: bring the secondary up to date with the writer now; costs nothing when the writer has
 * written nothing since this reader's last catch-up. No-op (0) on the writer. */
int store_catch_up(struct store *store);

/* Call FN for every published key in key order with its signed text (valid only during the
 * call). A non-zero return of FN stops the walk and is returned. */
int store_foreach_manifest(struct store *store,
                           int (*fn)(void *ctx, const char key_hex[65], const char *text, size_t len),
                           void *ctx);
/* As store_foreach_manifest from the first key after AFTER (32 bytes; NULL: from the first):
 * a walk resumed with one seek (the mount's readdir of ac/ pages through it this way). */
int store_foreach_manifest_after(struct store *store, const unsigned char *after,
                                 int (*fn)(void *ctx, const char key_hex[65], const char *text,
                                           size_t len),
                                 void *ctx);

/* ---- Pre-key lists (direct mode for every machine; fs/prekey_list.h) ----
 * The lists of a pre-key change: store_add_prekey_list puts LIST (a list of hash/prekey.h,
 * borrowed) in front of those published before (verified against this store's key; an
 * unreadable value is replaced), keeps PREKEY_LISTS_MAX, signs the whole and writes it, under
 * the publishing lock. Not synced: a list lost in a crash costs a client one dep-info pass,
 * and a list never names a result by itself (the client's key does). Returns 0 when written,
 * 2 when LIST was first already (nothing written), -EINVAL for a list of the wrong shape,
 * -EROFS on a reader, -errno. */
int store_add_prekey_list(struct store *store, const char prekey_hex[65], json_t *list)
    __attribute__((warn_unused_result));

/* The signed text of PREKEY_HEX's lists in *TEXT (malloc'd, NUL-terminated) of *LEN bytes, not
 * verified here; -ENOENT when there is none. A miss on a reader catches up and looks again, as
 * store_get_manifest does. */
int store_get_prekey_lists(struct store *store, const char prekey_hex[65], char **text, size_t *len)
    __attribute__((warn_unused_result));

/* Blob records of the index. */
struct store_blob_record { uint64_t size, refs; int64_t last_use; };
/* Call FN for every blob record in hash order. As store_foreach_manifest. */
int store_foreach_blob_record(struct store *store,
                              int (*fn)(void *ctx, const unsigned char sha256[32],
                                        const struct store_blob_record *rec),
                              void *ctx);
/* As store_foreach_blob_record from the first blob after AFTER (NULL: from the first). */
int store_foreach_blob_record_after(struct store *store, const unsigned char *after,
                                    int (*fn)(void *ctx, const unsigned char sha256[32],
                                              const struct store_blob_record *rec),
                                    void *ctx);
/* The record of one blob: 0, -ENOENT, -EBADMSG (malformed record). */
int store_get_blob_record(struct store *store, const unsigned char sha256[32],
                          struct store_blob_record *rec);

/* Whether a published manifest names blob SHA256 (as an output, stdout or stderr): 1, 0, or
 * -errno (-EBADMSG for a malformed record). Readers of the store serve only such blobs (GET
 * /v1/blobs/, the mount's cas/ and its listing): a blob a client uploaded as a job's input
 * (its sources) is in cas/ for the daemon's jobs, and stays unseen by everyone else until a
 * manifest names the same bytes. The mark is the record's refs, which store_publish raises in
 * the same synced batch as the manifest and only an eviction lowers (in the batch that removes
 * the last manifest naming it), so it holds for every store this code has written. On a reader a 0 first catches up with the writer and looks again, as
 * store_get_manifest does. */
int store_blob_published(struct store *store, const unsigned char sha256[32]);

/* ---- Use, pins and eviction (fs/gc.h decides what goes) ----
 * A key's last use is its 'u' record, raised by store_touch_key at most once per
 * STORE_TOUCH_SECONDS (so a hit costs an index read, not a write), and the access times of its
 * output files in cas/, which the kernel keeps (relatime: at most once a day) when the mount
 * reads them. Eviction of a key is one synced batch that removes the manifest, its use record and
 * the records of the blobs no other key names, then unlinks those files: a reader finds the key
 * whole or not at all, a file already open stays readable (POSIX unlink), and a reader that read
 * the manifest just before finds a blob gone (-ENOENT), never a torn key in the index. A blob
 * this process committed and no manifest names yet (a job's output before its publish, a
 * client's upload before its job) is held for up to a day: its file stays when the last key
 * naming it goes, so a publish racing an eviction is never left without its blob. Writer only
 * (-EROFS on a reader) unless said otherwise. */
#define STORE_TOUCH_SECONDS 3600

/* KEY_HEX's 'u' record in *LAST_USE: 0, -ENOENT (none: a store written before it existed, or
 * the key is not published), -EBADMSG. Readers too. */
int store_key_last_use(struct store *store, const char key_hex[65], int64_t *last_use)
    __attribute__((warn_unused_result));
/* Record a use of KEY_HEX at NOW: written (not synced) only when the record is older than
 * STORE_TOUCH_SECONDS, or later than NOW (a clock stepped back). 0 written, 1 recent enough
 * (nothing written), -ENOENT not published. */
int store_touch_key(struct store *store, const char key_hex[65], int64_t now);
/* Pin (PINNED 1) or unpin (0) KEY_HEX, synced. Pinning a key not published is -ENOENT;
 * unpinning one not pinned is 0. */
int store_set_pin(struct store *store, const char key_hex[65], int pinned)
    __attribute__((warn_unused_result));
/* 1 pinned, 0 not, -errno. Readers too. */
int store_key_pinned(struct store *store, const char key_hex[65]);
/* The eviction generation (0 when nothing was ever evicted). Readers too: catch up first. */
int store_eviction_generation(struct store *store, uint64_t *generation)
    __attribute__((warn_unused_result));
/* Access time (unix s) of blob SHA256's file. 0, -errno. Readers too. */
int store_blob_atime(struct store *store, const unsigned char sha256[32], int64_t *atime)
    __attribute__((warn_unused_result));

/* What one eviction freed: blob files unlinked and their bytes. */
struct store_eviction { uint64_t blobs_removed, bytes_freed; };
/* Evict KEY_HEX as above; OUT says what it freed. -ENOENT not published, -EPERM pinned,
 * -EBADMSG its manifest does not verify (left in place for fsck), -ENOSPC / -errno when the
 * batch could not be written (then nothing changed). */
int store_evict_key(struct store *store, const char key_hex[65], struct store_eviction *out)
    __attribute__((warn_unused_result));
/* Evict N_KEYS keys in ONE synced batch (a blob several of them name counted right): RESULTS[i]
 * receives 0 (evicted) or the reason KEYS[i] was not, as store_evict_key; OUT the total freed.
 * Returns 0, or -errno when the batch could not be written (then nothing changed). */
int store_evict_keys(struct store *store, const char (*keys)[65], size_t n_keys, int *results,
                     struct store_eviction *out) __attribute__((warn_unused_result));
/* Remove blob SHA256 when no manifest names it (refs 0), its record is older than
 * UNUSED_BEFORE and it is not held: an upload no job used, or the blob of a job that failed.
 * 1 removed (OUT says what it freed), 0 kept, -ENOENT no record, -errno. */
int store_remove_orphan_blob(struct store *store, const unsigned char sha256[32],
                             int64_t unused_before, struct store_eviction *out)
    __attribute__((warn_unused_result));

/* Remove blob SHA256's file when the index has no record of it, it is not held and it was
 * written before WRITTEN_BEFORE (unix s, its mtime): what a writer killed between an eviction's
 * batch and its unlinks, or between a blob's rename and its record, left in cas/. 1 removed
 * (OUT says what it freed; with DRY_RUN what it would free, nothing removed), 0 kept, -errno. */
int store_remove_unrecorded_blob(struct store *store, const unsigned char sha256[32],
                                 int64_t written_before, int dry_run, struct store_eviction *out)
    __attribute__((warn_unused_result));

/* Counters of this process since store_open. */
struct store_counters {
	uint64_t nondeterministic, published, blobs_written, bytes_written;
	uint64_t keys_evicted, blobs_removed, bytes_freed;
	uint64_t catch_ups;   /* reader: catch-ups with the writer run (a miss costs none while the
	                         writer has written nothing since the last) */
};
void store_get_counters(struct store *store, struct store_counters *c);

/* ---- Bulk loading (store-tool synth --bulk, for bench/) ----
 * The files and index records store_put_blob_buffer and store_publish write, without their
 * syncs: NOTHING of it is durable, and a crash may leave keys whose blobs were lost, until
 * store_bulk_sync returns 0. For making a store that nobody reads yet (a million keys for a
 * benchmark in minutes), never for the daemon's publishing. Writer only (-EROFS on a reader). */

/* store_put_blob_buffer without fsync of the blob or its directory and without a blob record
 * (store_bulk_publish writes that). 0 or -errno. */
int store_bulk_put_blob(struct store *store, const void *data, size_t len,
                        unsigned char actual[32]) __attribute__((warn_unused_result));
/* Publish the N manifests MS in ONE index write without sync and without RocksDB's write-ahead
 * log: each checked as store_publish checks it, its signed text, its use record (LAST_USE[i],
 * or now when LAST_USE is NULL) and the records of the blobs it names, refs raised once per key
 * naming them. RESULTS[i] receives 0 (in the batch), -EEXIST (the key is already published, or
 * earlier in MS), or what store_publish would have failed with. Returns 0, or -errno when the
 * batch could not be written (then nothing of it was, whatever RESULTS say). */
int store_bulk_publish(struct store *store, const struct manifest *ms, size_t n,
                       const int64_t *last_use, int *results) __attribute__((warn_unused_result));
/* Make everything the bulk calls wrote durable: syncfs(2) of the store's file system (the
 * blobs), then a flush of the index to its table files. 0 or -errno. */
int store_bulk_sync(struct store *store) __attribute__((warn_unused_result));

/* ---- The daemon's trees: toolchains/ and jobs/ ----
 *   toolchains/<id>/               an unpacked toolchain (daemon/toolchain_unpack.h names and
 *                                  fills the trees below toolchains/)
 *   jobs/<name>/root/cachepot/     a job's input tree, bound read-only at /cachepot
 *   jobs/<name>/root/cachepot/out  the empty mount point of rustc's --out-dir
 *   jobs/<name>/out                the sandbox mounts its output tmpfs here
 * toolchains/ is 0755, and so is every job tree: the sandbox resolves these trees from inside its
 * user namespace, where the daemon's DAC override does not reach, and they hold only what cas/
 * shows everyone anyway. jobs/ itself is 0710 and of the group the sandbox's runs have (the
 * caller's JOBS_GID): no other uid can reach a job's tree, its outputs included, while a run's
 * bubblewrap can still resolve the paths it binds. bubblewrap binds them by path, so next to
 * the fds these calls hand out paths, spelled under the directory the store was opened at.
 * Writer only. */
struct store_trees;

/* Create toolchains/ and jobs/ beneath STORE when missing, make toolchains/ 0755 and jobs/ 0710
 * of group JOBS_GID (whatever they were), and open them. DIR is the path STORE was opened with
 * (copied). On success *OUT is the caller's (store_trees_close), to close before STORE.
 * -errno. */
int store_trees_open(struct store *store, const char *dir, gid_t jobs_gid,
                     struct store_trees **out) __attribute__((warn_unused_result));
void store_trees_close(struct store_trees *trees);

/* O_RDONLY|O_DIRECTORY fd of toolchains/, owned by TREES (do not close). */
int store_toolchains_fd(const struct store_trees *trees);
/* The path of toolchains/ID (ID a checked toolchain id), malloc'd, caller frees; NULL when out of
 * memory. */
char *store_toolchain_path(const struct store_trees *trees, const char id[65]);

/* One job's scratch tree, jobs/<name>/. Everything in it is owned by the struct. */
struct store_job_scratch {
	char name[40];
	int dir_fd;                /* jobs/<name> */
	int input_fd;              /* jobs/<name>/root/cachepot: materialise the inputs here */
	char *input_path;          /* its path, for the sandbox */
	char *output_path;         /* jobs/<name>/out, for the sandbox */
};

/* Create jobs/<name>/ with the layout above, <name> unique to this process and SEQ. On success
 * and on failure SCRATCH is to be given to store_job_scratch_remove (which then removes whatever
 * was made). -errno. */
int store_job_scratch_create(struct store_trees *trees, uint64_t seq,
                             struct store_job_scratch *scratch) __attribute__((warn_unused_result));
/* Close SCRATCH's fds, remove its tree, free its paths (its NAME stays, for messages). -errno
 * when the tree could not be removed (it is left for the next store_sweep_jobs). */
int store_job_scratch_remove(struct store_trees *trees, struct store_job_scratch *scratch);

/* Remove every job tree beneath jobs/: the scratch of jobs a killed daemon never finished (a
 * sandbox's tmpfs left mounted is detached). Call before any job starts. *REMOVED receives the
 * number of trees removed; returns 0, or the -errno of the last tree that could not be. */
int store_sweep_jobs(struct store_trees *trees, unsigned *removed);

/* ---- Job records and verify marks (daemon/verify.h) ----
 * A job record is the wire job JSON (hash/job.h) a published key was built from; a verify mark
 * is a small JSON document saying that a rebuild of the key gave other outputs (the manifest
 * itself stays as published). Both are keyed by the action key and written by the daemon only
 * (-EROFS on a reader); a job record without sync, a mark with sync and once: the first mark of
 * a key stays (store_put_verify_mark returns 2, writing nothing, when there is one). The getters give a
 * malloc'd NUL-terminated *TEXT of *LEN bytes (caller frees), -ENOENT when there is none (on a
 * reader after one catch-up), -EINVAL for a key that is not 64 hex digits. */
int store_put_job_record(struct store *store, const char key_hex[65], const char *text, size_t len)
    __attribute__((warn_unused_result));
int store_get_job_record(struct store *store, const char key_hex[65], char **text, size_t *len)
    __attribute__((warn_unused_result));
int store_put_verify_mark(struct store *store, const char key_hex[65], const char *text, size_t len)
    __attribute__((warn_unused_result));
int store_get_verify_mark(struct store *store, const char key_hex[65], char **text, size_t *len)
    __attribute__((warn_unused_result));
/* Call FN for every verify mark in key order, as store_foreach_manifest. */
int store_foreach_verify_mark(struct store *store,
                              int (*fn)(void *ctx, const char key_hex[65], const char *text, size_t len),
                              void *ctx);

#endif
