/* cachepotd: the context every part of the daemon shares, its worker pool and its counters.
 *
 * Threads: one event-loop thread (libevent, evhttp) owns every HTTP request, the in-flight table
 * and the replies; N worker threads take tasks from a bounded queue and run them (materialise,
 * sandbox, collect, publish; unpack a toolchain). A finished task goes back to the loop thread
 * through the done list and an event made active from the worker (evthread_use_pthreads), and
 * the loop thread answers. No request pointer is ever touched by a worker.
 */
#ifndef CACHEPOT_DAEMON_DAEMON_H
#define CACHEPOT_DAEMON_DAEMON_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "daemon/settings.h"

struct event_base;
struct event;
struct evhttp;
struct evconnlistener;
struct store;
struct daemon;
struct inflight;

/* Counters for /metrics. Updated with __atomic builtins from any thread. */
struct daemon_metrics {
	uint64_t http_requests;
	uint64_t http_forbidden;          /* 403: peer uid/gid not allowed */
	uint64_t http_bad_requests;       /* 400: malformed body, bad names */
	uint64_t jobs_submitted;
	uint64_t jobs_cache_hits;         /* already published at submission */
	uint64_t jobs_coalesced;          /* joined an identical job in flight */
	uint64_t jobs_queue_full;         /* 503 */
	uint64_t jobs_missing_blobs;      /* 424 */
	uint64_t jobs_key_mismatch;       /* 409: the client's key is not ours */
	uint64_t jobs_published;
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
};

#define METRIC_ADD(d, field, n) __atomic_add_fetch(&(d)->metrics.field, (n), __ATOMIC_RELAXED)
#define METRIC_INC(d, field) METRIC_ADD(d, field, 1)
#define METRIC_GET(d, field) __atomic_load_n(&(d)->metrics.field, __ATOMIC_RELAXED)

/* A unit of work for the pool. RUN runs on a worker thread; FINISH on the loop thread, after RUN
 * or instead of it when CANCELLED (shutdown), and frees the task. */
struct task {
	struct task *next;
	void (*run)(struct daemon *d, struct task *t);
	void (*finish)(struct daemon *d, struct task *t, int cancelled);
};

struct daemon {
	struct daemon_config *cfg;
	struct store *store;
	int store_fd;                 /* O_PATH dir fd of the store (owned by the store) */
	int jobs_fd;                  /* store/jobs, owned */
	int toolchains_fd;            /* store/toolchains, owned */
	char hostname[256];
	time_t started;

	struct event_base *base;
	struct evhttp *http;
	struct evconnlistener *listener;
	struct event *done_event;     /* made active by workers */
	struct event *sigterm_event, *sigint_event;
	int stopping;                 /* loop thread only */

	pthread_mutex_t lock;         /* guards everything below */
	pthread_cond_t cond;
	struct task *queue_head, *queue_tail;
	size_t queued, running;
	struct task *done_head;
	int workers_exit;
	pthread_t *threads;
	unsigned n_threads;

	struct inflight *inflight;    /* loop thread only: jobs queued or running, by key */
	uint64_t seq;                 /* job directory names */

	struct daemon_metrics metrics;
};

/* Start the CFG->jobs workers. 0 or -errno. */
int pool_start(struct daemon *d) __attribute__((warn_unused_result));
/* Queue T unless the queue holds CFG->queue_max tasks already (-EAGAIN) or the daemon is
 * stopping (-ESHUTDOWN). (TOOLCHAIN tasks pass FORCE to skip the bound.) */
int pool_submit(struct daemon *d, struct task *t, int force) __attribute__((warn_unused_result));
/* Loop thread: take every queued (not yet running) task off the queue and finish it cancelled. */
void pool_cancel_queued(struct daemon *d);
/* Loop thread: run FINISH of every task the workers completed. */
void pool_drain_done(struct daemon *d);
/* Stop and join the workers (after the queue is empty and nothing runs). */
void pool_stop(struct daemon *d);
/* Snapshot of the queue: tasks waiting and running. */
void pool_counts(struct daemon *d, size_t *queued, size_t *running);

#endif
