/* Nondeterminism checks: rebuild a published key's job in a fresh sandbox and compare the
 * outputs with the published manifest's (names and SHA-256).
 *
 * Two ways in. Sampling (--verify-sample P): of the jobs submitted whose key is already
 * published (a hit), a fraction P is checked in the background from the job the client has just
 * sent, which is the one moment the daemon is sure to hold a key's whole job and, since the
 * client uploaded what was missing first, its inputs. On demand (POST /v1/verify/<key>,
 * `cachepot verify KEY`): from the job record the daemon keeps of each key it publishes
 * (fs/store.h, 'j'), as long as the record's input blobs are still in cas/; a key published
 * before job records existed, or whose inputs are gone, is answered 404 or 424 and can still be
 * checked by sampling when a client submits it again.
 *
 * Cost. A check is a whole compile, so it never delays an answer and starts only on a worker no
 * real job wants: checks wait in a queue of VERIFY_QUEUE_MAX (a sampled check over that is
 * dropped and counted, an on-demand one answered 503) and one at a time is handed to the pool
 * only while no job waits there and a worker is idle. A job that comes while a check runs and
 * every other worker is busy waits for that one check at most. Asking for one is a write (it
 * costs a sandbox), so the daemon's writer rules apply; reading a mark (GET /v1/verify/<key>)
 * is open.
 *
 * A difference is counted (cachepotd_verify_mismatches_total), logged with the differing files,
 * and recorded as the key's verify mark (fs/store.h, 'v'): the published outputs stay exactly as
 * they are, for the same reason a second, different publish is refused: a key never changes.
 *
 * The answer of a check, and a mark, are JSON:
 *   {"key": K, "result": "same" | "different" | "failed", "outputs": N,
 *    "differences": [{"name": NAME, "published": HEX|null, "rebuilt": HEX|null}, ...],
 *    "error": MESSAGE (failed only), "checked_at": UNIX SECONDS, "worker": HOSTNAME}
 * "failed" is a rebuild that did not get to the comparison (inputs gone, rustc failed, the
 * sandbox failed); it is counted apart and marks nothing.
 */
#ifndef CACHEPOT_DAEMON_VERIFY_H
#define CACHEPOT_DAEMON_VERIFY_H

#include <stdint.h>

#include <jansson.h>

#include "hash/job.h"

struct daemon;

#define VERIFY_QUEUE_MAX 8       /* checks waiting for an idle worker */
#define VERIFY_RUNNING_MAX 1     /* checks handed to the pool at once */

enum verify_result {
	VERIFY_SAME,        /* every output rebuilt byte for byte */
	VERIFY_DIFFERENT,   /* marked */
	VERIFY_FAILED,      /* no comparison: see "error" */
};

/* Worker thread: rebuild JOB (the caller's; its input hashes are overwritten with what was
 * materialised) of the published KEY_HEX, compare, and on a difference log it and write the
 * mark. Counts in D's metrics. *BODY is the answer above (a new reference, or NULL when out of
 * memory). */
enum verify_result verify_run(struct daemon *d, struct job *job, const char key_hex[65],
			      json_t **body);

/* Loop thread: should this hit be checked? Draws from *STATE (a xorshift64 state, never 0)
 * against P: never for 0, always for 1. */
int verify_sample_draw(uint64_t *state, double p);

#endif
