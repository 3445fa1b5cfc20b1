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
#include <string.h>

#include "kfcgi.h"
#include "dispatch.h"
#include "epool.h"
#include "pool.h"
#include "status.h"

/* What the status listener reads: the pool, and its hand-off path (-r). */
static struct {
	struct pool	*pool;
	struct dispatch	*dispatch;
	msec_t		 started;
} src;
static struct stats_source	 source;

static void
poolstats_fill(struct stats *s, void *arg UNUSED)
{
	const struct pool	*p = src.pool;
	const struct config	*c = p->conf;
	const struct workers	*ws = &p->ws;

	s->pool = c->varpool ? "variable" : c->elastic ? "elastic" : "fixed";
	s->nworkers = c->nworkers;
	s->maxworkers = c->varpool || c->elastic ? c->maxworkers :
	    c->nworkers;
	s->backlog = c->backlog;
	s->workers = workers_live(ws);
	s->exiting = ws->count[W_DRAINING] + ws->count[W_EXITING] +
	    ws->count[W_KILLED];
	s->idle = c->varpool ? ws->count[W_IDLE] : -1;
	s->busy = c->varpool ? ws->count[W_BUSY] : -1;
	epool_figures(&s->queue, &s->queue_max, &s->queue_full);
	if (src.dispatch != NULL) {
		s->accepted = src.dispatch->accepted;
		s->at_max = src.dispatch->at_max;
	}
	s->spawned = p->spawned;
	s->recycled = p->recycled;
	s->crashed_exit = p->crashed_exit;
	memcpy(s->crashed_signal, p->crashed_signal,
	    sizeof(s->crashed_signal));
	s->violations = p->violations;
	s->timeouts = p->timeouts;
	s->lost = p->lost;
	s->uptime_ms = (uint64_t)(clock_ms() - src.started);
}

static int
poolstats_worker(struct stats_worker *r, void **cursor, void *arg UNUSED)
{
	struct worker	*w;
	msec_t		 now = clock_ms();

	w = *cursor == NULL ? TAILQ_FIRST(&src.pool->ws.all) :
	    TAILQ_NEXT((struct worker *)*cursor, all);
	if (w == NULL)
		return 0;
	*cursor = w;
	memset(r, 0, sizeof(*r));
	r->pid = w->pid;
	r->state = worker_state_name(w->state);
	r->served = w->served;
	r->busy_ms = w->state == W_BUSY ? (long)(now - w->since) : -1;
	r->age_ms = (uint64_t)(now - w->started);
	return 1;
}

/* Serve the figures on the -S socket, if there is one. */
void
poolstats_start(struct pool *p, struct dispatch *d)
{
	if (p->conf->statusfd == -1)
		return;
	src.pool = p;
	src.dispatch = d;
	src.started = clock_ms();
	source.fill = poolstats_fill;
	source.worker = poolstats_worker;
	source.arg = NULL;
	status_start(p->conf->statusfd, &source);
}
