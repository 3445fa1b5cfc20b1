/*
 * Copyright (c) 2026 The kfcgi authors.
 *
 * Permission to use, copy, modify, and distribute this software for any
 * purpose with or without fee is hereby granted, provided that the above
 * copyright notice and this permission notice appear in all copies.
 *
 * THE SOFTWARE IS PROVIDED "AS IS" AND THE AUTHOR DISCLAIMS ALL WARRANTIES
 * WITH REGARD TO THIS SOFTWARE INCLUDING ALL IMPLIED WARRANTIES OF
 * MERCHANTABILITY AND FITNESS. IN NO EVENT SHALL THE AUTHOR BE LIABLE FOR
 * ANY SPECIAL, DIRECT, INDIRECT, OR CONSEQUENTIAL DAMAGES OR ANY DAMAGES
 * WHATSOEVER RESULTING FROM LOSS OF USE, DATA OR PROFITS, WHETHER IN AN
 * ACTION OF CONTRACT, NEGLIGENCE OR OTHER TORTIOUS ACTION, ARISING OUT OF
 * OR IN CONNECTION WITH THE USE OR PERFORMANCE OF THIS SOFTWARE.
 */

/*
 * The variable pool's hot path: accept a connection, hand it to the
 * most recently freed worker, grow the pool when none is free, and
 * pause accepting when -N are busy.  O(1) per connection.
 */
#include <sys/socket.h>

#include <errno.h>
#include <unistd.h>

#include "kfcgi.h"
#include "log.h"
#include "pool.h"

#define ACCEPT_BATCH	64	/* connections per accept event */
#define GROW_WAIT_MS	2	/* for a busy worker before growing */
#define ACCEPT_PAUSE_MS	100	/* back-off after accept failed */

static void	 pool_want_worker(struct pool *);
static long	 grow_wait_ms(const struct pool *, const struct timespec *);

static void
pool_pause(struct pool *p)
{
	if (p->paused)
		return;
	event_del(&p->ev_accept);
	p->paused = 1;
}

/*
 * Accepting was paused for want of a worker or of descriptors; now that
 * something changed, try again.  Cheap when nothing was paused.
 */
void
pool_kick(struct pool *p)
{
	struct worker	*w;

	if (!p->paused || p->stopping || evtimer_pending(&p->ev_resume, NULL))
		return;
	if (p->pending != -1) {
		if ((w = TAILQ_FIRST(&p->idle)) == NULL) {
			pool_want_worker(p);
			return;
		}
		if (pool_handoff(p, w, p->pending) == 0)
			p->pending = -1;
	}
	/* Saturated: the listen queue keeps the rest, in order. */
	if (TAILQ_EMPTY(&p->idle) && p->nlive >= p->conf->maxworkers)
		return;
	p->paused = 0;
	event_add(&p->ev_accept, NULL);
	pool_dispatch(p);
}

static int
pool_accept_one(struct pool *p)
{
	int	 fd;

	for (;;) {
		fd = accept4(p->listenfd, NULL, NULL, SOCK_CLOEXEC);
		if (fd != -1) {
			p->accepted++;
			return fd;
		}
		switch (errno) {
		case EINTR:
		case ECONNABORTED:
			continue;
		case EAGAIN:
			return -1;
		default:
			/*
			 * Out of descriptors or memory, most likely: leave
			 * connections queued in the kernel a while rather
			 * than spin on a socket that stays readable.
			 */
			log_warn("accept: %s", p->conf->sockpath);
			pool_pause(p);
			clock_timer_ms(&p->ev_resume, ACCEPT_PAUSE_MS);
			return -1;
		}
	}
}

/*
 * No worker is idle: stop accepting, and grow the pool on a later pass
 * of the loop, once the cookies already waiting on the channels have
 * been read.  Growing at once would start a worker for every connection
 * that merely arrived before a busy worker's answer was read.
 */
static void
pool_want_worker(struct pool *p)
{
	struct timespec	 t;

	pool_pause(p);
	if (p->nlive >= p->conf->maxworkers || p->throttled ||
	    evtimer_pending(&p->ev_grow, NULL))
		return;
	t = clock_now();
	clock_timer_ms(&p->ev_grow, grow_wait_ms(p, &t));
}

/*
 * Workers that answered a moment ago are likely to again (a client
 * often sees its answer before we see the cookie), so only grow once
 * none has for GROW_WAIT_MS.  After silence, as in a burst of slow
 * requests, grow at once.
 */
static long
grow_wait_ms(const struct pool *p, const struct timespec *t)
{
	long	 since = clock_ms_between(&p->last_free, t);

	return since < GROW_WAIT_MS ? GROW_WAIT_MS - since : 0;
}

void
pool_grow_cb(int fd UNUSED, short events UNUSED, void *arg)
{
	struct pool	*p = arg;
	struct worker	*w;
	struct timespec	 t = clock_now();
	long		 wait;

	if (p->pending != -1 && !p->stopping) {
		if ((w = TAILQ_FIRST(&p->idle)) == NULL) {
			if ((wait = grow_wait_ms(p, &t)) > 0) {
				clock_timer_ms(&p->ev_grow, wait);
				return;
			}
			if (p->nlive < p->conf->maxworkers)
				w = pool_spawn(p);
		}
		if (w != NULL && pool_handoff(p, w, p->pending) == 0)
			p->pending = -1;
	}
	pool_kick(p);
}

int
pool_handoff(struct pool *p, struct worker *w, int fd)
{
	w->cookie = cookie_next();
	if (fdpass_send(w->chan, w->cookie, fd) == -1) {
		log_warn("worker %d: hand-off failed; killing it",
		    (int)w->pid);
		worker_fault(p, w, W_KILLED);
		return -1;
	}
	close(fd);
	worker_set(p, w, W_BUSY);
	return 0;
}

/*
 * Accept and hand off while there are workers.  With none to be had the
 * accepted connection waits in p->pending and the rest in the kernel's
 * listen queue, in order, until a worker frees up.
 */
void
pool_dispatch(struct pool *p)
{
	struct worker	*w;
	int		 n;

	for (n = 0; n < ACCEPT_BATCH && !p->stopping; n++) {
		if (p->pending == -1 &&
		    (p->pending = pool_accept_one(p)) == -1)
			return;
		if ((w = TAILQ_FIRST(&p->idle)) == NULL) {
			pool_want_worker(p);
			return;
		}
		if (pool_handoff(p, w, p->pending) == 0)
			p->pending = -1;
	}
}

void
pool_accept_cb(int fd UNUSED, short events UNUSED, void *arg)
{
	pool_dispatch(arg);
}

void
pool_resume_cb(int fd UNUSED, short events UNUSED, void *arg)
{
	pool_kick(arg);
}
