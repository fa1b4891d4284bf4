/* cachepotd: the context every part of the daemon shares, and its counters.
 *
 * Threads: one event-loop thread (libevent, evhttp; server.c) owns every HTTP request, the
 * in-flight table and the replies; N worker threads (pool.h) take tasks from a bounded queue and
 * run them (materialise, sandbox, collect, publish; unpack a toolchain), and two more write,
 * hash and fsync uploaded blobs. A finished task goes back to the loop thread, which answers. No request pointer is ever touched by a worker.
 */
#ifndef CACHEPOT_DAEMON_DAEMON_H
#define CACHEPOT_DAEMON_DAEMON_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "daemon/settings.h"

struct event_base;
struct server;
struct store;
struct store_trees;

/* Counters for /metrics. Updated with __atomic builtins from any thread. */
struct daemon_metrics {
	uint64_t http_requests;
	uint64_t http_forbidden;          /* 403: this peer may not write (daemon/listen.h) */
	uint64_t http_bad_requests;       /* 400: malformed body, bad names */
	uint64_t http_too_large;          /* 413 from a route's own limit */
	uint64_t connections_refused;     /* over --max-connections-per-peer (daemon/peers.h) */
	uint64_t jobs_submitted;
	uint64_t jobs_cache_hits;         /* already published at submission */
	uint64_t jobs_coalesced;          /* joined an identical job in flight */
	uint64_t jobs_queue_full;         /* 503 */
	uint64_t jobs_missing_blobs;      /* 424 */
	uint64_t jobs_key_mismatch;       /* 409: the client's key is not ours */
	uint64_t jobs_published;
	uint64_t jobs_c_published;        /* of which C and C++ compiles */
	uint64_t jobs_compile_failed;     /* 422 */
	uint64_t jobs_errors;             /* 500: setup, I/O */
	uint64_t jobs_cancelled;          /* dropped from the queue at shutdown */
	uint64_t sandbox_runs;
	uint64_t sandbox_wall_ms;
	uint64_t blobs_uploaded;
	uint64_t blobs_rejected;          /* bytes did not match the name */
	uint64_t blob_bytes_uploaded;
	uint64_t toolchains_uploaded;
	uint64_t toolchains_rejected;     /* bad archive or wrong id */
	uint64_t nondeterministic;        /* a second, different result for a published key */
	uint64_t gc_runs;                 /* collections of the store (daemon/store_gc.h) */
	uint64_t gc_failures;
	uint64_t verify_sampled;          /* hits drawn for a check (--verify-sample) */
	uint64_t verify_dropped;          /* of those, not queued: the check queue was full */
	uint64_t verify_runs;             /* checks done (daemon/verify.h), sampled or asked for */
	uint64_t verify_mismatches;       /* of those, a rebuild gave other outputs: marked */
	uint64_t verify_failed;           /* of those, no comparison (inputs gone, rebuild failed) */
};

#define METRIC_ADD(d, field, n) __atomic_add_fetch(&(d)->metrics.field, (n), __ATOMIC_RELAXED)
#define METRIC_INC(d, field) METRIC_ADD(d, field, 1)
#define METRIC_GET(d, field) __atomic_load_n(&(d)->metrics.field, __ATOMIC_RELAXED)

/* The daemon's shared context: made by main.c, read by server.c (loop thread) and job_run.c
 * (worker threads). The fields are set before the loop starts and constant afterwards, except
 * SEQ and METRICS, which are only touched atomically. */
struct daemon {
	struct daemon_config *cfg;
	struct store *store;
	struct store_trees *trees;    /* toolchains/ and jobs/ of STORE, owned */
	char hostname[256];           /* the "worker" of every manifest */
	char store_id[65];            /* the store's public key in hex: labels its docker containers */
	time_t started;
	struct event_base *base;      /* the loop thread's */
	struct server *server;        /* server.c's, opaque to the others */
	uint64_t seq;                 /* names of job and toolchain scratch directories */
	struct daemon_metrics metrics;
};

#endif
