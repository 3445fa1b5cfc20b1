/* epool.c: watch the listen queue; the elastic pool (-e) grows and shrinks by it. */
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
#include <stdlib.h>
#include <string.h>

#include "kfcgi.h"
#include "log.h"
#include "elastic.h"
#include "epool.h"
#include "idle.h"
#include "pool.h"
#include "qdepth.h"

#define WATCH_MS	250	/* sampling the queue of the other pools */
#define FULL_LOG_MS	60000	/* a full queue is logged once a minute */
#define START_MS	1000	/* a worker not seen waiting is starting */

/*
 * Every pool has its listen queue watched, for the figures and to say
 * when it fills up; the elastic pool also sizes itself by it.  Never a
 * wake-up per connection: a timer, faster while connections wait.
 */
static struct {
	struct pool	*pool;
	struct qdepth	*qd;
	struct elastic	 el;
	struct event	 ev;
	int		 elastic;
	int		 len, max;	/* -1: unknown */
	uint64_t	 full;
	msec_t		 full_logged;
	msec_t		 counted;	/* idle workers last counted */
} q = { .len = -1, .max = -1, .full_logged = -FULL_LOG_MS };

/* Before the jail: the queue's probe, and /proc for the idle test. */
void
epool_open(int listenfd, int elastic)
{
	if ((q.qd = qdepth_open(listenfd)) == NULL)
		log_debug("queue: depth unknown on this system or socket");
	if (elastic && idle_open() == -1)
		log_warn("elastic: /proc: idle workers cannot be told; "
		    "the pool will not shrink");
	q.elastic = elastic;
}

static void
queue_read(struct pool *p, msec_t now)
{
	int	 len, max;

	if (q.qd == NULL || qdepth_read(q.qd, &len, &max) == -1) {
		q.len = -1;
		return;
	}
	q.len = len;
	if (len > q.max)
		q.max = len;
	/* Linux queues one connection beyond the backlog before refusing. */
	if (max <= 0 || len <= max)
		return;
	q.full++;
	if (now - q.full_logged >= FULL_LOG_MS) {
		q.full_logged = now;
		log_warnx("socket: %s: listen queue full (%d); new connections "
		    "are refused: raise -l (now %d)", p->conf->sockpath, len,
		    p->conf->backlog);
	}
}

/* Running workers, and of them those still starting. */
static void
count(struct pool *p, struct elastic_sample *s, msec_t now)
{
	const struct workers	*ws = &p->ws;
	struct worker		*w;

	/* Spawns under way are starting workers already. */
	s->running = pool_live(p) - ws->count[W_FROZEN];
	s->retiring = ws->count[W_FROZEN] + ws->count[W_EXITING] +
	    ws->count[W_KILLED];
	s->starting = pool_spawning(p);
	/* Newest last: only the young can be starting. */
	TAILQ_FOREACH_REVERSE(w, &p->ws.all, workerq, all) {
		if (now - w->started >= START_MS)
			break;
		if (w->state != W_RUNNING || !w->starting)
			continue;
		if (idle_started(w->pid) == 1)
			w->starting = 0;
		else
			s->starting++;
	}
}

/*
 * The oldest idle worker, if any: oldest first, stop at the first, and
 * look at no more than IDLE_LOOKS of them (a look is a read in /proc).
 */
#define IDLE_LOOKS	64

static struct worker *
oldest_idle(struct pool *p, msec_t now)
{
	struct worker	*w;
	int		 looks = 0;

	TAILQ_FOREACH(w, &p->ws.all, all) {
		if (w->state != W_RUNNING || now - w->started < START_MS)
			continue;
		if (idle_check(w->pid) == 1)
			return w;
		if (++looks == IDLE_LOOKS)
			break;
	}
	return NULL;
}

/*
 * The second half of a release, a tick after the freeze: a worker still
 * waiting for a connection gets the retire signal (-k) and leaves; one
 * that took a connection meanwhile goes on.  Either way it is let go.
 */
static void
thaw(struct pool *p)
{
	struct worker	*w, *next;
	int		 rc;

	for (w = TAILQ_FIRST(&p->ws.all); w != NULL; w = next) {
		next = TAILQ_NEXT(w, all);
		if (w->state != W_FROZEN)
			continue;
		rc = idle_retire(w->pid, p->conf->killsig);
		if (rc == 1) {
			log_debug("worker %d: idle, releasing it", (int)w->pid);
			pool_exit(p, w, 0);
		} else
			worker_set(&p->ws, w, W_RUNNING, clock_ms());
	}
}

static void
grow(struct pool *p, int n, const struct elastic_sample *s)
{
	int	 started;

	started = pool_grow(p, n);
	if (started > 0)
		log_debug("elastic: %d connections waiting, %d workers "
		    "running: starting %d", s->qlen, s->running, started);
}

/* One sample of the elastic pool, and what it decides. */
static msec_t
elastic_step(struct pool *p, msec_t now)
{
	struct elastic_sample	 s;
	struct elastic_plan	 plan;
	struct worker		*victim = NULL;

	if (p->ws.count[W_FROZEN] > 0)
		thaw(p);
	memset(&s, 0, sizeof(s));
	s.now_ms = now;
	s.qlen = q.len;
	count(p, &s, now);
	s.idle = -1;
	if (workers_live(&p->ws) > p->conf->nworkers &&
	    now - q.counted >= ELASTIC_IDLE_MS) {
		victim = oldest_idle(p, now);
		s.idle = victim != NULL;
		q.counted = now;
	}
	elastic_decide(&q.el, &s, &plan);
	if (plan.start > 0 && !p->stopping)
		grow(p, plan.start, &s);
	if (plan.release && !p->stopping) {
		if (s.idle == -1)
			victim = oldest_idle(p, now);
		if (victim != NULL && idle_freeze(victim->pid) == 0) {
			worker_set(&p->ws, victim, W_FROZEN, now);
			plan.next_ms = ELASTIC_FAST_MS;
		}
	}
	return plan.next_ms;
}

static void
epool_tick(int fd UNUSED, short events UNUSED, void *arg UNUSED)
{
	struct pool	*p = q.pool;
	msec_t		 now = clock_ms(), next = WATCH_MS;

	queue_read(p, now);
	if (q.elastic)
		next = elastic_step(p, now);
	if (!p->stopping || p->ws.count[W_FROZEN] > 0)
		clock_timer_ms(&q.ev, next);
}

void
epool_start(struct pool *p)
{
	struct elastic_conf	 ec;

	q.pool = p;
	if (q.elastic) {
		memset(&ec, 0, sizeof(ec));
		ec.nmin = p->conf->nworkers;
		ec.nmax = p->conf->maxworkers;
		ec.wait_ms = p->conf->waittime * 1000L;
		elastic_init(&q.el, &ec, (long)clock_ms());
	}
	if (q.qd == NULL && !q.elastic)
		return;
	evtimer_set(&q.ev, epool_tick, NULL);
	clock_timer_ms(&q.ev, 0);
}

void
epool_stop(void)
{
	if (q.pool != NULL)
		evtimer_del(&q.ev);
	qdepth_close(q.qd);
	q.qd = NULL;
	if (q.elastic)
		idle_close();
}

/*
 * Connections waiting in the listen queue now, 0 if unknown: how much
 * the variable pool grows by.  One netlink round trip (or getsockopt).
 */
int
epool_queued(void)
{
	int	 len;

	if (q.qd == NULL || qdepth_read(q.qd, &len, NULL) == -1)
		return 0;
	return len;
}

/* The queue's figures, for the status listener. */
void
epool_figures(int *len, int *max, uint64_t *full)
{
	*len = q.len;
	*max = q.max;
	*full = q.full;
}
