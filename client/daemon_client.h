/* The submitting side of cachepotd's HTTP API (libcurl): over the daemon's Unix socket, or over
 * TCP to a remote worker (cachepotd --listen-tls), where TLS with a client certificate is what
 * lets this machine write. Both transports share every request and every answer's handling.
 *
 * A remote worker that cannot be reached must cost little, since the caller then compiles
 * locally: connecting gives up after CONNECT_TIMEOUT seconds, and a request that stalls (no
 * byte either way) for STALL_TIMEOUT seconds is abandoned, except the two the daemon works on
 * before it answers, silent meanwhile (the job, compiled; the toolchain, unpacked): those are
 * bounded by their timeouts and, over TCP, by keepalives that notice a vanished worker.
 *
 * Every function returns 0 or -errno and, on error, leaves one line saying why in the caller's
 * ERR buffer. Where the daemon's HTTP answer decides what the caller does next (the job's
 * answer), it is returned apart from the error, in *JOB_STATUS.
 */
#ifndef CACHEPOT_CLIENT_DAEMON_CLIENT_H
#define CACHEPOT_CLIENT_DAEMON_CLIENT_H

#include <stddef.h>

#include "hash/job.h"
#include "hash/toolchain.h"

/* How to reach cachepotd. Nothing owned. */
struct daemon_endpoint {
	const char *socket;    /* the Unix socket it listens on, used when url is NULL */
	const char *url;       /* a remote worker: "https://HOST:PORT" (no trailing '/'), or NULL */
	const char *tls_cert;  /* for url: the client certificate (PEM), or NULL: reads only */
	const char *tls_key;   /* its key (PEM), or NULL: in tls_cert's file */
	const char *cacert;    /* the CA the worker's certificate must chain to, or NULL: the
				  system's; the host name or address in url must match it */
};

/* What daemon_submit reads, and nothing else. Nothing owned. */
struct daemon_submission {
	const struct job *job;              /* the job, as the wrapper built it */
	const unsigned char *key;           /* DIGEST_SIZE bytes: the key the wrapper expects */
	char *const *input_local;           /* the local file of each input, parallel to job->inputs */
	const struct toolchain *toolchain;  /* its id; its files, archived when the daemon lacks it */
	const struct toolchain *link_toolchain; /* the link part of a link job, likewise; or NULL */
	const char *cache_dir;              /* holds the upload lock and the archive being sent;
					       NULL: no lock, the archive in an O_TMPFILE */
	unsigned timeout;                   /* seconds to wait for the job's answer */
};

/* Submit SUBMISSION's job to DAEMON: ask which input blobs it lacks and upload them, upload
 * the toolchain (and a link job's link part) when it lacks it (once per machine at a time: a lock in the cache directory),
 * then submit the job with its expected key and wait for the answer.
 * Returns 0 when the job is published (or already was). Otherwise -errno with ERR set, and
 * *JOB_STATUS is the HTTP status the daemon gave the job (422: the sandboxed compile failed),
 * or 0 when it never answered the job. */
int daemon_submit(const struct daemon_endpoint *daemon, const struct daemon_submission *submission,
		  long *job_status, char *err, size_t errlen) __attribute__((warn_unused_result));

/* Ask DAEMON to rebuild the published KEY_HEX and compare (POST /v1/verify/<key>,
 * daemon/verify.h), waiting TIMEOUT seconds at most. Returns 0 with the HTTP status in *STATUS
 * and the answer's body in *ANSWER (malloc'd and NUL-terminated, the caller's; NULL when empty),
 * or -errno with ERR set when no answer came. */
int daemon_verify(const struct daemon_endpoint *daemon, const char key_hex[65], unsigned timeout,
		  long *status, char **answer, char *err, size_t errlen) __attribute__((warn_unused_result));

/* POST BODY (a NUL-terminated JSON text) to PATH of DAEMON and wait TIMEOUT seconds at most
 * (the daemon may work before it answers: the admin commands). 0 with the HTTP status in
 * *STATUS and the answer's body in *ANSWER (malloc'd, NUL-terminated, caller frees), or -errno
 * with ERR set when no answer came. */
int daemon_post_json(const struct daemon_endpoint *daemon, const char *path, const char *body,
		     long timeout, long *status, char **answer, char *err, size_t errlen)
	__attribute__((warn_unused_result));

#endif
