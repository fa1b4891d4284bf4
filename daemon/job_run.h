/* One job, on a worker thread: materialise, re-key, compile in the sandbox, collect, publish.
 *
 * Each job works in a scratch tree of the store's jobs/ (fs/store.h, store_job_scratch_create:
 * the input tree bound read-only at /cachepot, and the directory the sandbox mounts its output
 * tmpfs on), removed when the job ends and swept at start.
 * Input files are hard links to the store's blobs (0444, same inode; copies where a link is not
 * possible), so materialising costs no data copy. Each blob is hashed again as it is linked and
 * the key recomputed over those hashes: the key covers the bytes that were actually placed.
 */
#ifndef CACHEPOT_DAEMON_JOB_RUN_H
#define CACHEPOT_DAEMON_JOB_RUN_H

#include <jansson.h>

#include "hash/job.h"

struct daemon;

/* How a job ended. The one mapping to HTTP statuses is job_outcome_status. */
enum job_outcome {
	JOB_OK,                 /* 200: published (now, or by an identical job while queued) */
	JOB_INVALID,            /* 400: an input or output cannot be placed or taken as named */
	JOB_KEY_MISMATCH,       /* 409: the materialised inputs hash to another key */
	JOB_TOO_LARGE,          /* 413: the inputs exceed max_input_bytes */
	JOB_COMPILE_FAILED,     /* 422: rustc failed, or an expected output is missing or unfit */
	JOB_MISSING_BLOB,       /* 424: an input blob vanished since intake */
	JOB_ERROR,              /* 500: the daemon failed (I/O, memory, the sandbox itself) */
};

/* The HTTP status of the answer to a job that ended with OUTCOME. */
int job_outcome_status(enum job_outcome outcome);

/* Run JOB (owned by the caller, its input hashes overwritten with what was materialised), whose
 * key at intake was KEY_HEX, and count how it ended in D's metrics. Sets *BODY to the JSON answer
 * (a new reference): JOB_OK {"key","manifest"}; JOB_KEY_MISMATCH {"error","key","expected_key"};
 * JOB_COMPILE_FAILED {"error","exit_status","signal","timed_out","memory_exceeded","stderr",
 * "stdout"} or {"error","output"}; JOB_MISSING_BLOB {"error","missing"}; else {"error"}. */
enum job_outcome job_execute(struct daemon *d, struct job *job, const char key_hex[65],
			     json_t **body);

/* What job_rebuild calls with the fd of the rebuilt outputs' directory (borrowed) once rustc
 * exited 0: JOB_OK, or another outcome with *BODY set. */
typedef enum job_outcome job_inspect_fn(struct daemon *d, const struct job *job, int outfd,
					void *ctx, json_t **body);

/* Build JOB again as job_execute would (a fresh scratch tree and sandbox, the inputs
 * materialised and re-keyed to KEY_HEX) but publish and count nothing (sandbox_runs aside):
 * when rustc exits 0, return what INSPECT (with CTX) makes of the outputs. Otherwise the
 * outcome and *BODY are job_execute's. */
enum job_outcome job_rebuild(struct daemon *d, struct job *job, const char key_hex[65],
			     job_inspect_fn *inspect, void *ctx, json_t **body);

/* The 200 answer for a published KEY_HEX: {"key":..., "manifest":{signed manifest}}.
 * 0, -ENOENT when not published, -errno. */
int job_published_answer(struct daemon *d, const char key_hex[65], json_t **body)
	__attribute__((warn_unused_result));

/* A JSON error body {"error": MESSAGE} (new reference). */
json_t *json_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
