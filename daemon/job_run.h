/* One job, on a worker thread: materialise, re-key, compile in the sandbox, collect, publish.
 *
 * Scratch layout under the store (removed when the job ends, swept at start):
 *   jobs/<name>/root/cachepot/...   the input tree, bound read-only at /cachepot
 *   jobs/<name>/root/cachepot/out   the empty mount point of rustc's --out-dir
 *   jobs/<name>/out                 the sandbox mounts its output tmpfs here (output_host_dir)
 * Input files are hard links to the store's blobs (0444, same inode; copies where a link is not
 * possible), so materialising costs no data copy. Each blob is hashed again as it is linked and
 * the key recomputed over those hashes: the key covers the bytes that were actually placed.
 */
#ifndef CACHEPOT_DAEMON_JOB_RUN_H
#define CACHEPOT_DAEMON_JOB_RUN_H

#include <jansson.h>

#include "hash/job.h"

struct daemon;

/* Run JOB (owned by the caller, its input hashes overwritten with what was materialised), whose
 * key at intake was KEY_HEX. Sets *STATUS to the HTTP status and *BODY to the JSON answer (a new
 * reference): 200 {"key","manifest"}, 409 re-keyed mismatch, 422 compile failed {"error",
 * "exit_status","signal","timed_out","stderr","stdout"}, 424 a blob vanished, 500 otherwise. */
void job_execute(struct daemon *d, struct job *job, const char key_hex[65], int *status,
		 json_t **body);

/* The 200 answer for a published KEY_HEX: {"key":..., "manifest":{signed manifest}}.
 * 0, -ENOENT when not published, -errno. */
int job_published_answer(struct daemon *d, const char key_hex[65], json_t **body)
	__attribute__((warn_unused_result));

/* A JSON error body {"error": MESSAGE} (new reference). */
json_t *json_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
