/* SPDX-License-Identifier: Apache-2.0 */
/* The resolver thread pool (egress-resolve.h). */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "egress-resolve.h"
#include "egress.h"

struct egress_resolve_job {
	struct egress_resolve_job *next;
	char host[ORCH_EGRESS_MAX_HOST + 1];
	egress_resolve_cb cb; /* NULL: cancelled */
	void *data;
	struct addrinfo *res;
	int gai_err;
};

struct egress_resolver {
	struct orch_loop *loop;
	pthread_t threads[EGRESS_RESOLVE_THREADS];
	size_t n_threads;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct egress_resolve_job *todo, *todo_tail, *done;
	size_t n_jobs; /* queued or running or done, not yet delivered */
	bool quit;
	int efd;
	struct orch_io *io;
};

static void *worker(void *arg)
{
	struct egress_resolver *r = arg;

	pthread_mutex_lock(&r->lock);
	for (;;) {
		while (!r->todo && !r->quit)
			pthread_cond_wait(&r->cond, &r->lock);
		if (r->quit)
			break;
		struct egress_resolve_job *j = r->todo;
		r->todo = j->next;
		if (!r->todo)
			r->todo_tail = NULL;
		pthread_mutex_unlock(&r->lock);
		struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
		j->gai_err = getaddrinfo(j->host, NULL, &hints, &j->res);
		pthread_mutex_lock(&r->lock);
		j->next = r->done;
		r->done = j;
		uint64_t one = 1;
		(void)!write(r->efd, &one, sizeof(one));
	}
	pthread_mutex_unlock(&r->lock);
	return NULL;
}

static void on_event(struct orch_loop *loop, struct orch_io *io, int fd, uint32_t events,
		     void *data)
{
	struct egress_resolver *r = data;
	uint64_t v;
	struct egress_resolve_job *done;

	(void)!read(fd, &v, sizeof(v));
	pthread_mutex_lock(&r->lock);
	done = r->done;
	r->done = NULL;
	pthread_mutex_unlock(&r->lock);
	while (done) {
		struct egress_resolve_job *j = done;
		done = j->next;
		if (j->cb)
			j->cb(j->gai_err ? NULL : j->res, j->gai_err, j->data);
		if (j->res)
			freeaddrinfo(j->res);
		pthread_mutex_lock(&r->lock);
		r->n_jobs--;
		pthread_mutex_unlock(&r->lock);
		free(j);
	}
}

int egress_resolver_new(struct orch_loop *loop, struct egress_resolver **ret,
			struct orch_error *err)
{
	struct egress_resolver *r = calloc(1, sizeof(*r));
	int e;

	if (!r)
		return orch_err(err, -ENOMEM, "out of memory");
	r->loop = loop;
	pthread_mutex_init(&r->lock, NULL);
	pthread_cond_init(&r->cond, NULL);
	r->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (r->efd < 0 || orch_io_add(loop, r->efd, EPOLLIN, on_event, r, &r->io) < 0) {
		egress_resolver_free(r);
		return orch_err(err, -ENOMEM, "egress resolver: cannot watch its eventfd");
	}
	for (size_t i = 0; i < EGRESS_RESOLVE_THREADS; i++) {
		if ((e = pthread_create(&r->threads[i], NULL, worker, r)) != 0) {
			egress_resolver_free(r);
			return orch_errno(err, -e, "egress resolver: cannot start a thread");
		}
		r->n_threads++;
	}
	*ret = r;
	return 0;
}

void egress_resolver_free(struct egress_resolver *r)
{
	if (!r)
		return;
	pthread_mutex_lock(&r->lock);
	r->quit = true;
	pthread_cond_broadcast(&r->cond);
	pthread_mutex_unlock(&r->lock);
	for (size_t i = 0; i < r->n_threads; i++)
		pthread_join(r->threads[i], NULL);
	for (struct egress_resolve_job *lists[2] = {r->todo, r->done}, **l = lists; l < lists + 2;
	     l++)
		while (*l) {
			struct egress_resolve_job *j = *l;
			*l = j->next;
			if (j->res)
				freeaddrinfo(j->res);
			free(j);
		}
	orch_io_free(r->io);
	if (r->efd >= 0)
		close(r->efd);
	pthread_cond_destroy(&r->cond);
	pthread_mutex_destroy(&r->lock);
	free(r);
}

int egress_resolve(struct egress_resolver *r, const char *host, egress_resolve_cb cb, void *data,
		   struct egress_resolve_job **ret)
{
	struct egress_resolve_job *j;

	pthread_mutex_lock(&r->lock);
	if (r->n_jobs >= EGRESS_RESOLVE_QUEUE) {
		pthread_mutex_unlock(&r->lock);
		return -EBUSY;
	}
	pthread_mutex_unlock(&r->lock);
	if (!(j = calloc(1, sizeof(*j))))
		return -ENOMEM;
	snprintf(j->host, sizeof(j->host), "%s", host);
	j->cb = cb;
	j->data = data;
	pthread_mutex_lock(&r->lock);
	if (r->todo_tail)
		r->todo_tail->next = j;
	else
		r->todo = j;
	r->todo_tail = j;
	r->n_jobs++;
	pthread_cond_signal(&r->cond);
	pthread_mutex_unlock(&r->lock);
	*ret = j;
	return 0;
}

void egress_resolve_cancel(struct egress_resolve_job *j)
{
	/* Only the loop reads cb (in on_event): no lock needed for this store. */
	if (j)
		j->cb = NULL;
}
