/* The worker pool; see pool.h. */
#include "config.h"

#include "daemon/pool.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>

#include <event2/event.h>

struct pool {
	struct daemon *daemon;        /* passed to the tasks, borrowed */
	struct event *done_event;     /* borrowed; made active by workers */
	size_t queue_max;

	pthread_mutex_t lock;         /* guards everything below */
	pthread_cond_t cond;          /* a task was queued, or the workers must exit */
	struct task *queue_head, *queue_tail;
	size_t queued, running;
	struct task *done_head;       /* newest first */
	int closed;                   /* pool_submit refuses */
	int workers_exit;
	pthread_t *threads;
	unsigned n_threads;
};

static void *worker_main(void *arg)
{
	struct pool *p = arg;

	pthread_mutex_lock(&p->lock);
	for (;;) {
		struct task *t;
		while (!p->queue_head && !p->workers_exit)
			pthread_cond_wait(&p->cond, &p->lock);
		if (!p->queue_head)
			break;
		t = p->queue_head;
		p->queue_head = t->next;
		if (!p->queue_head)
			p->queue_tail = NULL;
		p->queued--;
		p->running++;
		pthread_mutex_unlock(&p->lock);

		t->run(p->daemon, t);

		pthread_mutex_lock(&p->lock);
		p->running--;
		t->next = p->done_head;
		p->done_head = t;
		event_active(p->done_event, EV_READ, 0);
	}
	pthread_mutex_unlock(&p->lock);
	return NULL;
}

int pool_start(struct daemon *d, unsigned n_workers, size_t queue_max, struct event *done_event,
	       struct pool **pool)
{
	struct pool *p = calloc(1, sizeof(*p));
	int ret;

	*pool = NULL;
	if (!p)
		return -ENOMEM;
	p->daemon = d;
	p->done_event = done_event;
	p->queue_max = queue_max;
	pthread_mutex_init(&p->lock, NULL);
	pthread_cond_init(&p->cond, NULL);
	p->threads = calloc(n_workers ? n_workers : 1, sizeof(*p->threads));
	if (!p->threads) {
		pool_stop(p);
		return -ENOMEM;
	}
	for (unsigned i = 0; i < n_workers; i++) {
		ret = pthread_create(&p->threads[i], NULL, worker_main, p);
		if (ret) {
			pool_stop(p);
			return -ret;
		}
		p->n_threads++;
	}
	*pool = p;
	return 0;
}

int pool_submit(struct pool *p, struct task *t, int force)
{
	int ret = 0;

	pthread_mutex_lock(&p->lock);
	if (p->workers_exit || p->closed)
		ret = -ESHUTDOWN;
	else if (!force && p->queued >= p->queue_max)
		ret = -EAGAIN;
	if (ret == 0) {
		t->next = NULL;
		if (p->queue_tail)
			p->queue_tail->next = t;
		else
			p->queue_head = t;
		p->queue_tail = t;
		p->queued++;
		pthread_cond_signal(&p->cond);
	}
	pthread_mutex_unlock(&p->lock);
	return ret;
}

void pool_cancel_queued(struct pool *p)
{
	struct task *list;

	pthread_mutex_lock(&p->lock);
	p->closed = 1;
	list = p->queue_head;
	p->queue_head = p->queue_tail = NULL;
	p->queued = 0;
	pthread_mutex_unlock(&p->lock);
	while (list) {
		struct task *next = list->next;
		list->finish(p->daemon, list, 1);
		list = next;
	}
}

void pool_drain_done(struct pool *p)
{
	struct task *list, *rev = NULL;

	pthread_mutex_lock(&p->lock);
	list = p->done_head;
	p->done_head = NULL;
	pthread_mutex_unlock(&p->lock);
	while (list) {       /* oldest first */
		struct task *next = list->next;
		list->next = rev;
		rev = list;
		list = next;
	}
	while (rev) {
		struct task *next = rev->next;
		rev->finish(p->daemon, rev, 0);
		rev = next;
	}
}

void pool_counts(struct pool *p, size_t *queued, size_t *running)
{
	pthread_mutex_lock(&p->lock);
	*queued = p->queued;
	*running = p->running;
	pthread_mutex_unlock(&p->lock);
}

void pool_stop(struct pool *p)
{
	if (!p)
		return;
	pthread_mutex_lock(&p->lock);
	p->workers_exit = 1;
	pthread_cond_broadcast(&p->cond);
	pthread_mutex_unlock(&p->lock);
	for (unsigned i = 0; i < p->n_threads; i++)
		pthread_join(p->threads[i], NULL);
	pool_drain_done(p);
	free(p->threads);
	pthread_mutex_destroy(&p->lock);
	pthread_cond_destroy(&p->cond);
	free(p);
}
