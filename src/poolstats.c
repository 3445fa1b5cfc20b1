/* poolstats.c: the running pool as the status listener's stats_source. */
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
 * A stand-in for the pool core's own figures: what struct pool already
 * counts.  Figures it does not keep stay 0 (counters) or -1 (absent).
 */
#include <sys/queue.h>

#include <string.h>

#include "kfcgi.h"
#include "pool.h"
#include "status.h"

static const char *const state_names[] = {
	"new", "running", "idle", "busy", "draining", "exiting", "killed"
};

static struct stats_source	 source;
static struct timespec		 started;

static void
poolstats_fill(struct stats *s, void *arg)
{
	struct pool		*p = arg;
	const struct config	*c = p->conf;
	struct worker		*w;
	struct timespec		 t = clock_now();

	s->pool = c->varpool ? "variable" : "fixed";
	s->nworkers = c->nworkers;
	s->maxworkers = c->varpool ? c->maxworkers : c->nworkers;
	s->backlog = c->backlog;
	s->workers = p->nlive;
	s->exiting = p->nall - p->nlive;
	s->idle = s->busy = -1;
	if (c->varpool) {
		/* Per answer, not per connection: O(workers) is fine. */
		s->idle = s->busy = 0;
		TAILQ_FOREACH(w, &p->workers, all)
			if (w->state == W_IDLE)
				s->idle++;
			else if (w->state == W_BUSY)
				s->busy++;
	}
	s->queue = s->queue_max = -1;
	s->accepted = p->accepted;
	s->spawned = p->spawned;
	s->crashed_exit = p->crashed;	/* every unexpected exit, for now */
	s->violations = p->violations;
	s->uptime_ms = (uint64_t)clock_ms_between(&started, &t);
}

static int
poolstats_worker(struct stats_worker *r, void **cursor, void *arg)
{
	struct pool	*p = arg;
	struct worker	*w;
	struct timespec	 t = clock_now();

	w = *cursor == NULL ? TAILQ_FIRST(&p->workers) :
	    TAILQ_NEXT((struct worker *)*cursor, all);
	if (w == NULL)
		return 0;
	*cursor = w;
	memset(r, 0, sizeof(*r));
	r->pid = w->pid;
	r->state = state_names[w->state];
	r->served = w->served;
	r->busy_ms = -1;		/* the pool keeps no busy-since yet */
	r->age_ms = (uint64_t)clock_ms_between(&w->started, &t);
	return 1;
}

/* Serve the figures on the -S socket, if there is one. */
void
poolstats_start(struct pool *p)
{
	if (p->conf->statusfd == -1)
		return;
	started = clock_now();
	source.fill = poolstats_fill;
	source.worker = poolstats_worker;
	source.arg = p;
	status_start(p->conf->statusfd, &source);
}
