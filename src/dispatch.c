/* dispatch.c: the -r hot path: accept, hand off, take the cookie back; O(1) each. */
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
#include <sys/socket.h>

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kfcgi.h"
#include "log.h"
#include "dispatch.h"
#include "epool.h"
#include "uring.h"

#define ACCEPT_BATCH	64	/* connections per accept event */
#define RESUME_MIN_MS	10	/* accept again after EMFILE, doubling */
#define RESUME_MAX_MS	1000

static void	 dispatch_kick(struct dispatch *);

/*
 * The one place where the accepting state changes.  With an edge-
 * triggered event (epoll, kqueue) the socket stays watched whatever the
 * state, and the state alone says whether to accept: no system call to
 * pause and resume; with a level-triggered one, the event must go.
 */
static void
dispatch_set(struct dispatch *d, enum accept_state to)
{
	int	 want = to == ACC_ACCEPTING || (d->edge && to != ACC_STOPPING);

	if (d->state == ACC_STOPPING)
		return;
	if (d->ring != NULL) {
		/* One accept in flight while accepting; none once stopped. */
		if (to == ACC_ACCEPTING)
			uring_accept(d->ring, d->listenfd);
		else if (to == ACC_STOPPING)
			uring_accept_stop(d->ring);
	} else if (want && !d->armed) {
		if (event_add(&d->ev_accept, NULL) == -1)
			fatalx("accept: cannot watch the socket");
		d->armed = 1;
	} else if (!want && d->armed) {
		event_del(&d->ev_accept);
		d->armed = 0;
	}
	if (to == ACC_SATURATED && d->state != ACC_SATURATED)
		d->at_max++;
	d->state = to;
}

/* Rare: rescued connections, failed hand-offs; keep them in order. */
static void
held_grow(struct held *h)
{
	unsigned int	 i, cap;
	int		*fds;

	cap = h->cap ? 2 * h->cap : 16;
	if ((fds = calloc(cap, sizeof(*fds))) == NULL)
		fatal("dispatch: held connections");
	for (i = 0; i < h->count; i++)
		fds[i] = h->fd[(h->head + i) % h->cap];
	free(h->fd);
	h->fd = fds;
	h->cap = cap;
	h->head = 0;
}

static void
held_push(struct dispatch *d, int fd)
{
	struct held	*h = &d->held;

	if (h->count == h->cap)
		held_grow(h);
	h->fd[(h->head + h->count++) % h->cap] = fd;
}

static int
held_pop(struct dispatch *d)
{
	struct held	*h = &d->held;
	int		 fd;

	if (h->count == 0)
		return -1;
	fd = h->fd[h->head];
	h->head = (h->head + 1) % h->cap;
	h->count--;
	return fd;
}

/* Put back at the front what could not be handed off. */
static void
held_unpop(struct dispatch *d, int fd)
{
	struct held	*h = &d->held;

	if (h->count == h->cap)
		held_grow(h);
	h->head = (h->head + h->cap - 1) % h->cap;
	h->fd[h->head] = fd;
	h->count++;
}

/*
 * Cookie and descriptor in one message; the worker's fault if it fails.
 * Through the ring, a failure is known later: ring_send_failed().
 */
static int
handoff(struct dispatch *d, struct worker *w, int fd)
{
	w->cookie = cookie_next();
	if (d->ring != NULL)
		uring_send(d->ring, w->uchan, w->cookie, fd);
	else if (fdpass_send(w->chan, w->cookie, fd) == -1) {
		log_warn("worker %d: hand-off failed; killing it",
		    (int)w->pid);
		pool_kill(d->pool, w, 1);
		return -1;
	}
	pool_busy(d->pool, w, fd);
	return 0;
}

/* Held connections first, in order, to the most recently freed workers. */
static void
serve_held(struct dispatch *d)
{
	struct worker	*w;
	int		 fd;

	while (d->held.count > 0 &&
	    (w = TAILQ_FIRST(&d->pool->ws.idle)) != NULL) {
		fd = held_pop(d);
		if (handoff(d, w, fd) == -1)
			held_unpop(d, fd);
	}
}

/*
 * A connection waits and no worker is idle: grow if the pool may, after
 * a short wait while workers keep answering (policy_grow_wait); else the
 * listen queue keeps the rest, in order.
 */
static void
want_worker(struct dispatch *d)
{
	msec_t	 now;

	if (!pool_can_grow(d->pool)) {
		dispatch_set(d, ACC_SATURATED);
		return;
	}
	dispatch_set(d, ACC_WAIT_WORKER);
	if (!evtimer_pending(&d->ev_grow, NULL)) {
		now = clock_ms();
		clock_timer_ms(&d->ev_grow, policy_grow_wait(now,
		    d->last_free));
	}
}

static void
accept_starved(struct dispatch *d)
{
	if (d->resume_ms == 0) {
		log_warn("accept: %s: out of descriptors; pausing",
		    d->pool->conf->sockpath);
		d->resume_ms = RESUME_MIN_MS;
	} else if ((d->resume_ms *= 2) > RESUME_MAX_MS)
		d->resume_ms = RESUME_MAX_MS;
	dispatch_set(d, ACC_WAIT_FDS);
	clock_timer_ms(&d->ev_resume, d->resume_ms);
}

static void
accept_fds_back(struct dispatch *d)
{
	if (d->resume_ms != 0) {
		log_info("accept: %s: descriptors available again",
		    d->pool->conf->sockpath);
		d->resume_ms = 0;
	}
}

/* Accepting failed: 1 to go on with the next connection, 0 to pause. */
static int
accept_failed(struct dispatch *d, int err)
{
	switch (err) {
	case EMFILE:
	case ENFILE:
	case ENOBUFS:
	case ENOMEM:
		/* Left queued in the kernel, not dropped. */
		accept_starved(d);
		return 0;
	case EINTR:
	case ECONNABORTED:
	case EPROTO:
	case EPERM:
	case ENETDOWN:
	case ENOPROTOOPT:
	case EHOSTDOWN:
	case EHOSTUNREACH:
	case ENETUNREACH:
	case EOPNOTSUPP:
	case ETIMEDOUT:
		/* That connection's own trouble: the next one. */
		return 1;
	default:
		errno = err;
		fatal("accept: %s", d->pool->conf->sockpath);
	}
}

/* One connection, or -1: none waiting, or no descriptor for it. */
static int
accept_one(struct dispatch *d)
{
	int	 fd;

	for (;;) {
		if ((fd = accept4(d->listenfd, NULL, NULL, SOCK_CLOEXEC))
		    != -1) {
			d->accepted++;
			return fd;
		}
		if (errno == EAGAIN || errno == EWOULDBLOCK) {
			d->maybe = 0;
			return -1;
		}
		if (!accept_failed(d, errno))
			return -1;
	}
}

static void
accept_batch(struct dispatch *d)
{
	struct worker	*w;
	int		 n, fd;

	for (n = 0; n < ACCEPT_BATCH; n++) {
		if (d->held.count > 0) {
			serve_held(d);
			if (d->held.count > 0) {
				want_worker(d);
				return;
			}
		}
		w = TAILQ_FIRST(&d->pool->ws.idle);
		if ((fd = accept_one(d)) == -1)
			return;
		accept_fds_back(d);
		if (w == NULL || handoff(d, w, fd) == -1)
			held_push(d, fd);
	}
	/* Let other events run; edge-triggered, nothing else would come back. */
	if (d->edge)
		event_active(&d->ev_accept, EV_READ, 1);
}

/* Something changed (a worker freed, started or died): move on. */
static void
dispatch_kick(struct dispatch *d)
{
	struct worker	*w;

	serve_held(d);
	switch (d->state) {
	case ACC_STOPPING:
		/* Nothing more will come: idle workers may go. */
		if (d->held.count == 0)
			while ((w = TAILQ_FIRST(&d->pool->ws.idle)) != NULL)
				pool_retire(d->pool, w);
		return;
	case ACC_WAIT_FDS:
		return;
	default:
		break;
	}
	if (d->held.count > 0) {
		want_worker(d);
		return;
	}
	if (d->ring != NULL) {
		dispatch_set(d, ACC_ACCEPTING);
		return;
	}
	/* Watching, and none left queued: the loop says when one comes. */
	if (d->state == ACC_ACCEPTING && !d->maybe)
		return;
	dispatch_set(d, ACC_ACCEPTING);
	accept_batch(d);
}

static void
accept_cb(int fd UNUSED, short events UNUSED, void *arg)
{
	struct dispatch	*d = arg;

	d->maybe = 1;
	/* Edge-triggered, the event comes whatever the state: only then. */
	if (d->state == ACC_ACCEPTING)
		accept_batch(d);
}

static void
resume_cb(int fd UNUSED, short events UNUSED, void *arg)
{
	struct dispatch	*d = arg;

	if (d->state != ACC_WAIT_FDS)
		return;
	d->state = ACC_WAIT_WORKER;	/* neither armed nor final */
	dispatch_kick(d);
}

static void
grow_cb(int fd UNUSED, short events UNUSED, void *arg)
{
	struct dispatch	*d = arg;
	msec_t		 wait;
	int		 n;

	if (d->state == ACC_WAIT_WORKER && d->held.count > 0 &&
	    TAILQ_EMPTY(&d->pool->ws.idle)) {
		if ((wait = policy_grow_wait(clock_ms(), d->last_free)) > 0) {
			clock_timer_ms(&d->ev_grow, wait);
			return;
		}
		n = policy_grow_count(d->held.count, epool_queued(),
		    pool_spawning(d->pool));
		/* Spawns under way will do: their landing kicks us. */
		if (pool_grow(d->pool, n) == 0 && pool_spawning(d->pool) > 0)
			return;
	}
	dispatch_kick(d);
}

static void
violation(struct dispatch *d, struct worker *w, const char *what)
{
	d->pool->violations++;
	log_warnx("worker %d: protocol violation: %s; killing it",
	    (int)w->pid, what);
	pool_kill(d->pool, w, 1);
}

/* The channel closed: the worker is leaving, by choice or by crash. */
static void
chan_eof(struct dispatch *d, struct worker *w)
{
	if (w->state == W_IDLE)
		log_info("worker %d: closed its channel; stopping it",
		    (int)w->pid);
	else
		log_warnx("worker %d: closed its channel holding a "
		    "connection; stopping it", (int)w->pid);
	w->fault = 1;
	pool_exit(d->pool, w, SIGTERM);
}

static struct dispatch *
dispatch_of(const struct worker *w)
{
	return ((struct pool *)w->owner)->hooks.arg;
}

/*
 * What a worker wrote on its channel, the cookie of its connection, as
 * read (n bytes, added to w->reply), 0 at EOF, or -1 with errno.
 */
static void
cookie_in(struct dispatch *d, struct worker *w, ssize_t n)
{
	if (n == 0)
		chan_eof(d, w);
	else if (n == -1 && errno == EPROTO)
		violation(d, w, "wrote more than a cookie");
	else if (n == -1) {
		log_warn("worker %d: channel", (int)w->pid);
		pool_kill(d->pool, w, 1);
	} else if (w->state != W_BUSY && w->state != W_DRAINING)
		violation(d, w, "wrote while holding no connection");
	else if (memcmp(w->reply, &w->cookie, w->replylen) != 0)
		/* Checked as it comes: garbage is caught without a wait. */
		violation(d, w, "wrong cookie");
	else if (w->replylen < sizeof(w->cookie))
		return;
	else {
		w->replylen = 0;
		if (d->ring != NULL)
			uring_close_fd(d->ring, w->conn);
		else
			close(w->conn);
		w->conn = -1;
		d->last_free = clock_ms();
		pool_freed(d->pool, w);
	}
	dispatch_kick(d);
}

static void
chan_cb(int fd, short events UNUSED, void *arg)
{
	struct worker	*w = arg;
	ssize_t		 n;

	n = fdpass_read_cookie(fd, w->reply, &w->replylen);
	if (n == -1 && (errno == EAGAIN || errno == EWOULDBLOCK))
		return;
	cookie_in(dispatch_of(w), w, n);
}

/* The ring accepted (or failed to): as accept_batch, one at a time. */
static void
ring_accepted(void *arg, int res)
{
	struct dispatch	*d = arg;
	struct worker	*w;

	if (res < 0) {
		/* Cancelled: stopping.  EAGAIN: someone else took it. */
		if (res != -ECANCELED &&
		    (res == -EAGAIN || accept_failed(d, -res)))
			dispatch_kick(d);
		return;
	}
	d->accepted++;
	accept_fds_back(d);
	w = TAILQ_FIRST(&d->pool->ws.idle);
	if (d->held.count > 0 || d->state == ACC_STOPPING || w == NULL ||
	    handoff(d, w, res) == -1)
		held_push(d, res);
	dispatch_kick(d);
}

/*
 * The worker never got its connection: it goes back to the front of the
 * held ones, and the worker is killed, as when sendmsg fails at once.
 */
static void
ring_send_failed(void *arg, int res)
{
	struct worker	*w = arg;
	struct dispatch	*d = dispatch_of(w);

	errno = -res;
	log_warn("worker %d: hand-off failed; killing it", (int)w->pid);
	if (w->conn != -1) {
		held_unpop(d, w->conn);
		w->conn = -1;
	}
	pool_kill(d->pool, w, 1);
	dispatch_kick(d);
}

static void
ring_received(void *arg, const unsigned char *in, int res)
{
	struct worker	*w = arg;
	ssize_t		 n = res;

	if (res < 0) {
		errno = -res;
		n = -1;
	} else if (res > 0)
		n = fdpass_take_cookie(w->reply, &w->replylen, in, res);
	cookie_in(dispatch_of(w), w, n);
}

static void
hook_watch(void *arg, struct worker *w)
{
	struct dispatch	*d = arg;

	if (d->ring != NULL) {
		w->uchan = uring_watch(d->ring, w->chan, w);
		return;
	}
	/* Not in the record: the ring path, the usual one, has no use for it. */
	if ((w->ev = malloc(sizeof(*w->ev))) == NULL)
		fatal("worker %d: channel event", (int)w->pid);
	event_set(w->ev, w->chan, EV_READ | EV_PERSIST, chan_cb, w);
	if (event_add(w->ev, NULL) == -1)
		fatalx("worker %d: cannot watch its channel", (int)w->pid);
}

/* The channel is about to close. */
static void
hook_unwatch(void *arg, struct worker *w)
{
	struct dispatch	*d = arg;

	if (d->ring != NULL) {
		uring_unwatch(d->ring, w->uchan);
		w->uchan = NULL;
	} else {
		event_del(w->ev);
		free(w->ev);
		w->ev = NULL;
	}
}

static void
hook_freed(void *arg)
{
	dispatch_kick(arg);
}

static void
hook_rescue(void *arg, int fd)
{
	held_push(arg, fd);
}

void
dispatch_hooks(struct dispatch *d, struct pool_hooks *h)
{
	h->watch = hook_watch;
	h->unwatch = hook_unwatch;
	h->freed = hook_freed;
	h->rescue = hook_rescue;
	h->arg = d;
}

/*
 * The ring if the kernel lets us have one (and KFCGI_NO_URING is not
 * set), else the libevent path; either serves alone, from start to end.
 * `most' is -N: the ring is sized to the pool.
 */
void
dispatch_init(struct dispatch *d, struct pool *p, int listenfd, int edge,
    int most)
{
	static const struct uring_ops	 ops = {
		ring_accepted, ring_send_failed, ring_received
	};
	const char			*why;

	memset(d, 0, sizeof(*d));
	if ((d->ring = uring_open(&ops, d, 2 * most, &why)) != NULL)
		log_debug("hot path: io_uring");
	else
		log_debug("hot path: libevent, %s (no io_uring: %s)",
		    event_get_method(), why);
	d->pool = p;
	d->listenfd = listenfd;
	d->state = ACC_WAIT_WORKER;
	d->edge = edge;
	d->maybe = 1;
	event_set(&d->ev_accept, listenfd, EV_READ | EV_PERSIST |
	    (edge ? EV_ET : 0), accept_cb, d);
	evtimer_set(&d->ev_grow, grow_cb, d);
	evtimer_set(&d->ev_resume, resume_cb, d);
}

void
dispatch_start(struct dispatch *d)
{
	dispatch_kick(d);
}

void
dispatch_stop(struct dispatch *d)
{
	dispatch_set(d, ACC_STOPPING);
	evtimer_del(&d->ev_grow);
	evtimer_del(&d->ev_resume);
}

void
dispatch_free(struct dispatch *d)
{
	int	 fd;

	dispatch_stop(d);
	while ((fd = held_pop(d)) != -1)
		close(fd);
	free(d->held.fd);
	d->held.fd = NULL;
	uring_close(d->ring);
	d->ring = NULL;
}
