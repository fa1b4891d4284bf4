/* Garbage collection of a store: keep it under a size by evicting the least recently used keys.
 *
 * The size of a store is the sum of the sizes of the blobs its index records (every file in
 * cas/ that a writer committed). gc_run does nothing while that is at most MAX_SIZE. Over it:
 *  1. blobs no manifest names whose record is older than GC_ORPHAN_SECONDS and that are not
 *     held (fs/store.h) go first: uploads no job used, outputs of jobs that failed;
 *  2. then keys, least recently used first, each with the blobs no other key names, until the
 *     size is at most MAX_SIZE, not counting the blobs no manifest names that are too young to
 *     go (uploads in flight, outputs awaiting their publish, what a killed job committed): no
 *     key is evicted to make room for them, so a flood of uploads or a run of crashed jobs
 *     cannot empty the store, which may hold that much more until they are a day old. A key's last use is the later of its use record and the access
 *     times of its output files (what the mount's reads leave); pinned keys are never evicted.
 * Every run, under the size or not, also removes the files of cas/ that the index has no record
 * of, written more than GC_ORPHAN_SECONDS ago and not held: what a writer killed between an
 * eviction's batch and its unlinks left (they are not in the size, so nothing else would).
 * Evictions go GC_BATCH keys to one synced index write. A dry run changes nothing and reports
 * what a real run would remove (from the same walk, counting shared blobs right, holds aside).
 * The store must be open as the writer. */
#ifndef CACHEPOT_FS_GC_H
#define CACHEPOT_FS_GC_H

#include <stddef.h>
#include <stdint.h>

#include "fs/store.h"

#define GC_ORPHAN_SECONDS (24 * 3600)
#define GC_BATCH 64

struct gc_options {
	uint64_t max_size;     /* bytes the store may hold */
	int dry_run;           /* report only */
	int64_t now;           /* unix s (orphan age); 0: time(NULL) */
};

struct gc_report {
	uint64_t size_before, size_after;    /* bytes of blobs in the index */
	uint64_t keys;                       /* published keys seen */
	uint64_t keys_evicted, keys_pinned;  /* evicted; pinned (kept whatever their age) */
	uint64_t blobs_removed, bytes_freed; /* files unlinked (with orphans), their bytes */
	uint64_t orphans_removed;            /* of which blobs no manifest named */
	uint64_t keys_failed;                /* keys left because their manifest did not verify */
	uint64_t strays_removed, stray_bytes; /* files of cas/ with no record (not in the size) */
	uint64_t young_bytes;                /* blobs no manifest names, too young to remove (over
	                                        the size, not evicted for) */
};

/* Run one collection of STORE with OPTIONS; REPORT is filled (also on failure, with what was
 * done). 0, or -errno with a message in ERR (an index or file system error; -ENOSPC when not
 * even an eviction could be written). */
int gc_run(struct store *store, const struct gc_options *options, struct gc_report *report,
           char *err, size_t errlen) __attribute__((warn_unused_result));

#endif
