/* worker.h: a worker's record and its state machine. */
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
#ifndef WORKER_H
#define WORKER_H

#include <sys/queue.h>
#include <sys/types.h>

#include <event.h>
#include <stdint.h>

#include "output.h"

/* Milliseconds of the monotonic clock: the one clock for every decision. */
typedef int64_t	msec_t;

/*
 * A worker's life.  Every change of state goes through worker_set(),
 * which checks it against the table of allowed transitions in worker.c
 * and keeps the lists and counts of struct workers in step.  The caller
 * decides the next state and does what goes with it (signals, channel).
 *
 *   RUNNING   classic worker: accepts on descriptor 0 by itself
 *   FROZEN    -e: stopped (SIGSTOP) for a moment, to be retired if it is
 *             still waiting for a connection; then RUNNING or EXITING
 *   IDLE      -r: on the idle list, waiting for a connection
 *   BUSY      -r: holds one connection, owes us its cookie
 *   DRAINING  -r: busy, and retires once it gives the connection back
 *   EXITING   asked to go (retire signal or channel closed); killed at
 *             its deadline
 *   KILLED    SIGKILL sent; only reaping remains
 *   DEAD      reaped; the record is about to be freed
 */
enum wstate {
	W_RUNNING,
	W_FROZEN,
	W_IDLE,
	W_BUSY,
	W_DRAINING,
	W_EXITING,
	W_KILLED,
	W_DEAD,
	W_NSTATES
};

struct worker {
	pid_t			 pid;
	enum wstate		 state;
	unsigned int		 gen;		/* SIGHUP generation */
	int			 chan;		/* -r channel, -1: none */
	int			 conn;		/* -r connection held, -1 */
	struct event		*ev;		/* chan readable (libevent) */
	struct uchan		*uchan;		/* chan in the ring (ring) */
	uint64_t		 cookie;	/* of the connection held */
	unsigned char		 reply[8];	/* cookie coming back */
	size_t			 replylen;
	msec_t			 started;
	msec_t			 since;		/* entered its state */
	uint64_t		 served;	/* cookies returned */
	uint64_t		 recycle_at;	/* -m: served count, 0: never */
	int			 fault;		/* it ended, not we */
	int			 starting;	/* -e: not yet seen serving */
	void			*owner;		/* the pool */
	struct output		 out;		/* its stdout and stderr */
	TAILQ_ENTRY(worker)	 entry;		/* idle, busy or exiting list */
	TAILQ_ENTRY(worker)	 all;
	struct worker		*hnext;		/* pid hash chain */
};

TAILQ_HEAD(workerq, worker);

/*
 * Every unreaped worker.  Each list is ordered by the time its members
 * entered their state, so the oldest is always at one end:
 *   idle     head: most recently freed (handed out first); tail: oldest
 *   busy     head: busy the longest (request timeout)
 *   exiting  draining and exiting; head: nearest kill deadline (one
 *            grace period for all)
 */
struct workers {
	struct workerq		 all, idle, busy, exiting;
	struct worker		**hash;
	size_t			 hashmask;
	int			 count[W_NSTATES];
	int			 nall;
};

const char	*worker_state_name(enum wstate);
int		 worker_can(enum wstate, enum wstate);
void		 workers_init(struct workers *, int);
void		 workers_free(struct workers *);
struct worker	*worker_add(struct workers *, pid_t, enum wstate, msec_t);
void		 worker_set(struct workers *, struct worker *, enum wstate,
		    msec_t);
struct worker	*worker_find(const struct workers *, pid_t);
int		 workers_live(const struct workers *);
struct worker	*worker_oldest_idle(const struct workers *);

#endif /* !WORKER_H */
