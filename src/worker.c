/* worker.c: the worker state machine: allowed transitions, lists, pid table. */
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

#include "log.h"
#include "worker.h"

#define B(s)	(1U << (s))

/* The state machine, written down once. */
static const unsigned int allowed[W_NSTATES] = {
	[W_RUNNING]	= B(W_FROZEN) | B(W_EXITING) | B(W_KILLED) |
			  B(W_DEAD),
	[W_FROZEN]	= B(W_RUNNING) | B(W_EXITING) | B(W_KILLED) |
			  B(W_DEAD),
	[W_IDLE]	= B(W_BUSY) | B(W_EXITING) | B(W_KILLED) | B(W_DEAD),
	[W_BUSY]	= B(W_IDLE) | B(W_DRAINING) | B(W_EXITING) |
			  B(W_KILLED) | B(W_DEAD),
	[W_DRAINING]	= B(W_EXITING) | B(W_KILLED) | B(W_DEAD),
	[W_EXITING]	= B(W_KILLED) | B(W_DEAD),
	[W_KILLED]	= B(W_DEAD),
	[W_DEAD]	= 0,
};

static const char *const names[W_NSTATES] = {
	"running", "frozen", "idle", "busy", "draining", "exiting", "killed",
	"dead"
};

const char *
worker_state_name(enum wstate s)
{
	return s < W_NSTATES ? names[s] : "?";
}

int
worker_can(enum wstate from, enum wstate to)
{
	return from < W_NSTATES && to < W_NSTATES &&
	    (allowed[from] & B(to)) != 0;
}

/*
 * pid -> worker, so reaping costs O(1) however large the pool.  A slot
 * for each record the pool can hold (`most', both generations of a
 * reload): chains of one on average at the fullest, half that usually.
 */
static struct worker **
hash_slot(const struct workers *ws, pid_t pid)
{
	return &ws->hash[(size_t)pid & ws->hashmask];
}

void
workers_init(struct workers *ws, int most)
{
	size_t	 size = 64;

	TAILQ_INIT(&ws->all);
	TAILQ_INIT(&ws->idle);
	TAILQ_INIT(&ws->busy);
	TAILQ_INIT(&ws->exiting);
	while (size < (size_t)most)
		size *= 2;
	if ((ws->hash = calloc(size, sizeof(*ws->hash))) == NULL)
		fatal("workers: hash table");
	ws->hashmask = size - 1;
}

void
workers_free(struct workers *ws)
{
	free(ws->hash);
	ws->hash = NULL;
}

struct worker *
worker_find(const struct workers *ws, pid_t pid)
{
	struct worker	*w;

	for (w = *hash_slot(ws, pid); w != NULL; w = w->hnext)
		if (w->pid == pid)
			return w;
	return NULL;
}

static void
hash_remove(struct workers *ws, struct worker *w)
{
	struct worker	**wp;

	for (wp = hash_slot(ws, w->pid); *wp != NULL; wp = &(*wp)->hnext)
		if (*wp == w) {
			*wp = w->hnext;
			return;
		}
}

static struct workerq *
state_list(struct workers *ws, enum wstate s)
{
	switch (s) {
	case W_IDLE:
		return &ws->idle;
	case W_BUSY:
		return &ws->busy;
	case W_DRAINING:
	case W_EXITING:
		return &ws->exiting;
	default:
		return NULL;
	}
}

/* A new record, in its first state; NULL if out of memory. */
struct worker *
worker_add(struct workers *ws, pid_t pid, enum wstate s, msec_t now)
{
	struct worker	*w, **slot;
	struct workerq	*q;

	if ((w = calloc(1, sizeof(*w))) == NULL)
		return NULL;
	w->pid = pid;
	w->state = s;
	w->chan = w->conn = -1;
	w->started = w->since = now;
	slot = hash_slot(ws, pid);
	w->hnext = *slot;
	*slot = w;
	TAILQ_INSERT_TAIL(&ws->all, w, all);
	if ((q = state_list(ws, s)) != NULL)
		TAILQ_INSERT_HEAD(q, w, entry);
	ws->count[s]++;
	ws->nall++;
	return w;
}

/*
 * The one place where a worker changes state.  A transition the table
 * does not allow is a bug in the caller: fatal, not silently ignored.
 * DEAD takes the record out of every list; the caller frees it.
 */
void
worker_set(struct workers *ws, struct worker *w, enum wstate to, msec_t now)
{
	struct workerq	*q;

	if (w->state == to)
		return;
	if (!worker_can(w->state, to))
		fatalx("worker %d: no transition from %s to %s", (int)w->pid,
		    names[w->state], worker_state_name(to));
	log_debug("worker %d: %s -> %s", (int)w->pid, names[w->state],
	    names[to]);
	if ((q = state_list(ws, w->state)) != NULL)
		TAILQ_REMOVE(q, w, entry);
	ws->count[w->state]--;
	ws->count[to]++;
	w->since = now;
	if ((q = state_list(ws, to)) == &ws->idle)
		TAILQ_INSERT_HEAD(q, w, entry);
	else if (q != NULL)
		TAILQ_INSERT_TAIL(q, w, entry);
	w->state = to;
	if (to == W_DEAD) {
		hash_remove(ws, w);
		TAILQ_REMOVE(&ws->all, w, all);
		ws->nall--;
	}
}

/* Workers that serve the current demand: the pool's size. */
int
workers_live(const struct workers *ws)
{
	return ws->count[W_RUNNING] + ws->count[W_FROZEN] + ws->count[W_IDLE] +
	    ws->count[W_BUSY];
}

struct worker *
worker_oldest_idle(const struct workers *ws)
{
	return TAILQ_LAST(&ws->idle, workerq);
}
