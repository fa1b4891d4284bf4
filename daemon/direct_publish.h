/* Publishing a job's pre-key list (direct mode for every machine, hash/prekey.h), so that a
 * machine that never built the job finds its result without rustc's dep-info pass.
 *
 * The daemon does not take the client's word for the pre-key or the list: it computes both from
 * the job it verified (job_prekey over the toolchain, argv, cwd and environment it compiled
 * with; the inputs it placed in the sandbox) and from the dep-info rustc wrote in that sandbox
 * (the variables read while unset, which the job cannot tell). A job without a dep-info output
 * publishes no list. Even so a list is only a hint to a client: it leads to a key the client
 * computes over its own files, and a hit is served only from a manifest under that exact key.
 */
#ifndef CACHEPOT_DAEMON_DIRECT_PUBLISH_H
#define CACHEPOT_DAEMON_DIRECT_PUBLISH_H

#include "fs/manifest.h"
#include "fs/store.h"
#include "hash/job.h"

/* Publish the list of JOB, whose result M was just published (or found published) in STORE.
 * Returns 0 when the list was written or was first already, 1 when JOB publishes none (not a
 * rustc job, no dep-info output), -errno. A failure costs clients a dep-info pass, nothing
 * else: callers report it and go on. */
int direct_publish(struct store *store, const struct job *job, const struct manifest *m)
	__attribute__((warn_unused_result));

#endif
