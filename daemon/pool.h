/* cachepotd's worker pool: a bounded FIFO of tasks, N worker threads, and the hand-back of each
 * finished task to the loop thread.
 *
 * Threads: the loop thread (the one that runs the event base) calls every function here. A task's
 * RUN runs on a worker thread and must touch only what the task owns and what is safe from any
 * thread (the store, the metrics); its FINISH runs on the loop thread, from pool_drain_done,
 * pool_cancel_queued or pool_stop, and may answer requests.
 *
 * Ownership: a task is the caller's until pool_submit succeeds; from then on the pool holds it
 * until it calls FINISH, which must free it (exactly one FINISH per submitted task). */
#ifndef CACHEPOT_DAEMON_POOL_H
#define CACHEPOT_DAEMON_POOL_H

#include <stddef.h>

struct daemon;
struct event;
struct pool;

/* A unit of work, embedded first in the caller's own struct (which the callbacks cast back).
 * RUN runs on a worker thread; FINISH on the loop thread after RUN, or instead of it with
 * CANCELLED set when the task was still queued at shutdown. NEXT belongs to the pool. */
struct task {
	struct task *next;
	void (*run)(struct daemon *d, struct task *t);
	void (*finish)(struct daemon *d, struct task *t, int cancelled);
};

/* Start N_WORKERS threads taking tasks from a queue that holds at most QUEUE_MAX of them. D is
 * passed to every RUN and FINISH (borrowed, must outlive the pool). Each time a worker finishes a
 * task it makes DONE_EVENT (borrowed, of the loop thread's event base) active; its callback is
 * expected to call pool_drain_done. On success *POOL is the caller's, to free with pool_stop.
 * 0 or -errno (no thread left running). */
int pool_start(struct daemon *d, unsigned n_workers, size_t queue_max, struct event *done_event,
	       struct pool **pool) __attribute__((warn_unused_result));

/* Queue T. -EAGAIN when QUEUE_MAX tasks wait already, unless FORCE (toolchain uploads, whose
 * body is already paid for); -ESHUTDOWN after pool_cancel_queued or pool_stop began. */
int pool_submit(struct pool *pool, struct task *t, int force) __attribute__((warn_unused_result));

/* Refuse every later submission, take the queued (not yet running) tasks off the queue and
 * finish them cancelled. Running tasks go on and reach pool_drain_done as usual. */
void pool_cancel_queued(struct pool *pool);

/* Run FINISH of every task the workers completed, oldest first. */
void pool_drain_done(struct pool *pool);

/* Tasks waiting in the queue and tasks running, at one instant. */
void pool_counts(struct pool *pool, size_t *queued, size_t *running);

/* Let the workers finish what they run and join them (tasks still queued are run first; call
 * pool_cancel_queued before to drop them), finish every completed task, free POOL. NULL is a
 * no-op. */
void pool_stop(struct pool *pool);

#endif
