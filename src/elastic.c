/* elastic.c: the elastic pool's decisions (-e), pure, with a given clock. */
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
#include <stddef.h>

#include "elastic.h"

/*
 * The pool is driven by samples of the listen queue, taken on a timer:
 * every ELASTIC_FAST_MS while connections wait or workers are starting,
 * every ELASTIC_SLOW_MS otherwise, never once per connection.  Nothing
 * here does I/O or reads a clock; the caller passes the time in.
 */
void
elastic_init(struct elastic *e, const struct elastic_conf *c, long now)
{
	e->conf = *c;
	if (e->conf.fast_ms <= 0)
		e->conf.fast_ms = ELASTIC_FAST_MS;
	if (e->conf.slow_ms <= 0)
		e->conf.slow_ms = ELASTIC_SLOW_MS;
	if (e->conf.slow_ms < e->conf.fast_ms)
		e->conf.slow_ms = e->conf.fast_ms;
	e->quiet_since = now;
	e->last_release = now;
	e->released = 0;
	e->waited = 0;
}

/*
 * Start one worker for each connection that waits and that no worker
 * already on its way will take, within -N; and never fewer than -n.
 * Waits: seen at two samples in a row (a fast interval apart).  One
 * sample also catches a connection an idle worker is about to take.
 */
static int
el_grow(const struct elastic *e, const struct elastic_sample *s)
{
	int	 want = 0, room;

	room = e->conf.nmax - s->running - s->retiring;
	if (s->qlen > 0 && e->waited) {
		want = s->qlen - s->starting;
		if (s->idle > 0)
			want -= s->idle;
	}
	if (want < e->conf.nmin - s->running)
		want = e->conf.nmin - s->running;
	if (want > room)
		want = room;
	return want > 0 ? want : 0;
}

/*
 * The pool has been too big for as long as no connection waited and a
 * worker was idle at every sample: the quiet period starts over when
 * one waits, the depth is unknown, the pool grows or none was idle.
 */
static void
el_watch(struct elastic *e, const struct elastic_sample *s, int start)
{
	if (s->qlen != 0 || start > 0 || s->starting > 0 || s->idle == 0) {
		e->quiet_since = s->now_ms;
		e->released = 0;
	}
}

/*
 * One worker at a time: after -w quiet seconds, when the last one to
 * leave is gone, a slow interval after it, and only down to -n.
 */
static int
el_release(const struct elastic *e, const struct elastic_sample *s)
{
	const struct elastic_conf	*c = &e->conf;

	if (s->qlen != 0 || s->starting > 0 || s->retiring > 0)
		return 0;
	if (s->running <= c->nmin || s->idle == 0)
		return 0;
	if (s->now_ms - e->quiet_since < c->wait_ms)
		return 0;
	if (e->released && s->now_ms - e->last_release < c->slow_ms)
		return 0;
	return 1;
}

/* Sample fast while demand waits or the pool grows, else slowly. */
static long
el_next(const struct elastic *e, const struct elastic_sample *s,
    const struct elastic_plan *p)
{
	const struct elastic_conf	*c = &e->conf;
	long				 due;

	if (s->qlen > 0 || s->starting > 0 || p->start > 0)
		return c->fast_ms;
	if (s->qlen == 0 && !p->release && s->running > c->nmin &&
	    !e->released) {
		/* Wake when -w is up rather than up to a slow tick late. */
		due = e->quiet_since + c->wait_ms - s->now_ms;
		if (due > 0 && due < c->slow_ms)
			return due > c->fast_ms ? due : c->fast_ms;
	}
	return c->slow_ms;
}

void
elastic_decide(struct elastic *e, const struct elastic_sample *s,
    struct elastic_plan *p)
{
	p->start = el_grow(e, s);
	e->waited = s->qlen > 0;
	el_watch(e, s, p->start);
	p->release = p->start == 0 && el_release(e, s);
	if (p->release) {
		e->released = 1;
		e->last_release = s->now_ms;
	}
	p->next_ms = el_next(e, s, p);
}
