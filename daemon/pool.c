/* The worker pool: a bounded FIFO of tasks, N threads, and the hand-back to the loop thread. */
#include "config.h"

#include "daemon/daemon.h"

#include <errno.h>
#include <stdlib.h>

#include <event2/event.h>

static void *worker_main(void *arg)
{
	struct daemon *d = arg;

	pthread_mutex_lock(&d->lock);
	for (;;) {
		struct task *t;
		while (!d->queue_head && !d->workers_exit)
			pthread_cond_wait(&d->cond, &d->lock);
		if (!d->queue_head)
			break;
		t = d->queue_head;
		d->queue_head = t->next;
		if (!d->queue_head)
			d->queue_tail = NULL;
		d->queued--;
		d->running++;
		pthread_mutex_unlock(&d->lock);

		t->run(d, t);

		pthread_mutex_lock(&d->lock);
		d->running--;
		t->next = d->done_head;
		d->done_head = t;
		event_active(d->done_event, EV_READ, 0);
	}
	pthread_mutex_unlock(&d->lock);
	return NULL;
}

int pool_start(struct daemon *d)
{
	int ret;

	d->threads = calloc(d->cfg->jobs, sizeof(*d->threads));
	if (!d->threads)
		return -ENOMEM;
	for (unsigned i = 0; i < d->cfg->jobs; i++) {
		ret = pthread_create(&d->threads[i], NULL, worker_main, d);
		if (ret) {
			pool_stop(d);
			return -ret;
		}
		d->n_threads++;
	}
	return 0;
}

int pool_submit(struct daemon *d, struct task *t, int force)
{
	int ret = 0;

	pthread_mutex_lock(&d->lock);
	if (d->workers_exit || d->stopping)
		ret = -ESHUTDOWN;
	else if (!force && d->queued >= d->cfg->queue_max)
		ret = -EAGAIN;
	if (ret == 0) {
		t->next = NULL;
		if (d->queue_tail)
			d->queue_tail->next = t;
		else
			d->queue_head = t;
		d->queue_tail = t;
		d->queued++;
		pthread_cond_signal(&d->cond);
	}
	pthread_mutex_unlock(&d->lock);
	return ret;
}

void pool_cancel_queued(struct daemon *d)
{
	struct task *list;

	pthread_mutex_lock(&d->lock);
	list = d->queue_head;
	d->queue_head = d->queue_tail = NULL;
	d->queued = 0;
	pthread_mutex_unlock(&d->lock);
	while (list) {
		struct task *next = list->next;
		list->finish(d, list, 1);
		list = next;
	}
}

void pool_drain_done(struct daemon *d)
{
	struct task *list, *rev = NULL;

	pthread_mutex_lock(&d->lock);
	list = d->done_head;
	d->done_head = NULL;
	pthread_mutex_unlock(&d->lock);
	while (list) {       /* oldest first */
		struct task *next = list->next;
		list->next = rev;
		rev = list;
		list = next;
	}
	while (rev) {
		struct task *next = rev->next;
		rev->finish(d, rev, 0);
		rev = next;
	}
}

void pool_stop(struct daemon *d)
{
	pthread_mutex_lock(&d->lock);
	d->workers_exit = 1;
	pthread_cond_broadcast(&d->cond);
	pthread_mutex_unlock(&d->lock);
	for (unsigned i = 0; i < d->n_threads; i++)
		pthread_join(d->threads[i], NULL);
	free(d->threads);
	d->threads = NULL;
	d->n_threads = 0;
}

void pool_counts(struct daemon *d, size_t *queued, size_t *running)
{
	pthread_mutex_lock(&d->lock);
	*queued = d->queued;
	*running = d->running;
	pthread_mutex_unlock(&d->lock);
}
