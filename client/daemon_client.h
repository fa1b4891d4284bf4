/* The wrapper's side of the daemon's HTTP API (libcurl over the Unix socket). */
#ifndef CACHEPOT_CLIENT_DAEMON_CLIENT_H
#define CACHEPOT_CLIENT_DAEMON_CLIENT_H

#include "client/settings.h"
#include "hash/invocation.h"

/* How a submission ended. */
enum submit_result {
	SUBMIT_OK = 0,          /* published (or already was): the outputs are in the store */
	SUBMIT_COMPILE_FAILED,  /* rustc failed in the sandbox (422): not published */
	SUBMIT_ERROR,           /* anything else: no daemon, refused, timed out... */
};

/* Submit INV's job to the daemon at CONFIG->socket: ask which input blobs it lacks and upload
 * them, upload the toolchain when it lacks it (once per machine at a time: a lock in the cache
 * directory), then submit the job with its expected key and wait for the answer.
 * On SUBMIT_ERROR, ERR holds one line saying why. */
enum submit_result daemon_submit(const struct client_config *config, const struct invocation *inv,
				 char *err, size_t errlen);

#endif
