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
#ifndef POOL_H
#define POOL_H

#include <sys/queue.h>

#include <event.h>
#include <time.h>

#include "output.h"

/*
 * A worker's life.  Every change of state goes through worker_set() in
 * pool.c, which keeps the lists and counters below in step.
 *
 *   NEW       just spawned, not yet placed
 *   RUNNING   fixed pool: accepts on its own; we cannot tell busy from idle
 *   IDLE      variable pool: on the idle list, waiting for a connection
 *   BUSY      variable pool: holds one connection, owes us its cookie
 *   DRAINING  busy, but retires as soon as it returns its connection
 *             (when stopping, it may first serve the one pending one)
 *   EXITING   channel closed and SIGTERM sent; SIGKILL at its deadline
 *   KILLED    SIGKILL sent; only reaping remains
 */
enum wstate {
	W_NEW,
	W_RUNNING,
	W_IDLE,
	W_BUSY,
	W_DRAINING,
	W_EXITING,
	W_KILLED
};

struct pool;

struct worker {
	struct pool		*pool;
	pid_t			 pid;
	enum wstate		 state;
	unsigned int		 gen;		/* SIGHUP generation */
	int			 chan;		/* -1: none or closed */
	struct event		 ev;		/* chan readable */
	struct output		 out;		/* its stdout and stderr */
	uint64_t		 cookie;	/* of the connection held */
	unsigned char		 reply[8];	/* cookie coming back */
	size_t			 replylen;
	struct timespec		 started;
	struct timespec		 since;		/* idle since / deadline */
	uint64_t		 served;
	int			 fault;		/* it ended, not we */
	TAILQ_ENTRY(worker)	 entry;		/* idle list or kill FIFO */
	TAILQ_ENTRY(worker)	 all;		/* every unreaped worker */
	struct worker		*hnext;		/* pid hash chain */
};

TAILQ_HEAD(workerq, worker);

struct pool {
	const struct config	*conf;
	struct spawner		 spawner;
	int			 listenfd;
	int			 pending;	/* accepted, not yet handed */
	int			 paused;	/* accept event removed */
	int			 stopping;
	int			 started;	/* first workers are up */
	unsigned int		 gen;
	unsigned int		 streak;	/* consecutive early deaths */
	int			 throttled;	/* respawn timer pending */
	int			 nlive;		/* RUNNING + IDLE + BUSY */
	int			 nall;		/* not yet reaped */
	struct workerq		 idle;		/* head: most recently freed */
	struct workerq		 exiting;	/* FIFO by kill deadline */
	struct workerq		 workers;
	struct worker		**hash;
	size_t			 hashmask;
	struct event		 ev_accept;
	struct event		 ev_release;	/* idle workers over -n */
	struct event		 ev_kill;	/* head of the exiting FIFO */
	struct event		 ev_respawn;	/* crash-loop back-off */
	struct event		 ev_stable;	/* ends a crash streak */
	struct event		 ev_resume;	/* accept after EMFILE */
	struct event		 ev_stop;	/* end of the stop grace */
	struct event		 ev_grow;	/* start a worker, next pass */
	struct timespec		 last_early;	/* last early death */
	struct timespec		 last_free;	/* last cookie returned */
	struct event		 ev_sigterm, ev_sigint, ev_sighup, ev_sigchld;
	uint64_t		 accepted, spawned, crashed, violations;
};

#define EARLY_DEATH_MS	2000	/* dying sooner counts toward a crash loop */
#define CLEAN_EXIT_MIN_MS 200	/* exit 0 after this long is recycling */

/* clock.c */
struct timespec	 clock_now(void);
long		 clock_ms_between(const struct timespec *,
		    const struct timespec *);
struct timespec	 clock_add_ms(struct timespec, long);
void		 clock_timer_ms(struct event *, long);

/* worker.c: the state machine and the pid table */
void		 hash_init(struct pool *, int);
struct worker	*hash_find(struct pool *, pid_t);
void		 worker_set(struct pool *, struct worker *, enum wstate);
void		 worker_retire(struct pool *, struct worker *);
void		 worker_fault(struct pool *, struct worker *, enum wstate);
struct worker	*worker_new(struct pool *);
void		 worker_reaped(struct pool *, struct worker *, int);
void		 pool_arm_release(struct pool *);
void		 pool_arm_kill(struct pool *);

/* pool.c: the pool's size over time */
long		 pool_early_death(struct pool *);
struct worker	*pool_spawn(struct pool *);
void		 pool_fill(struct pool *);
void		 pool_stop(struct pool *, int);
void		 pool_reload(struct pool *);
void		 pool_release_cb(int, short, void *);
void		 pool_kill_cb(int, short, void *);
void		 pool_respawn_cb(int, short, void *);
void		 pool_stable_cb(int, short, void *);
void		 pool_stop_cb(int, short, void *);

/* dispatch.c: the variable pool's accept and hand-off path */
void		 pool_kick(struct pool *);
void		 pool_dispatch(struct pool *);
int		 pool_handoff(struct pool *, struct worker *, int);
void		 pool_accept_cb(int, short, void *);
void		 pool_resume_cb(int, short, void *);
void		 pool_grow_cb(int, short, void *);

/* loop.c */
void		 pool_run(const struct config *, int, int);

#endif /* !POOL_H */
