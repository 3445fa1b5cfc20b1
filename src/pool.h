/* pool.h: the pool of workers and its life over time. */
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

#include <event.h>

#include "kfcgi.h"
#include "crash.h"
#include "spawnq.h"
#include "worker.h"

#define RELOAD_SETTLE_MS	1000	/* a new generation proves itself */
#define SHORTAGE_MIN_MS		100	/* retry after EAGAIN, ENOMEM, EMFILE */
#define SHORTAGE_MAX_MS		2000
#define RESCUE_WAIT_MS		100	/* for a request to arrive */

/* A dead worker's connection with nothing in it yet: wait and see. */
struct doubt {
	int			 fd;
	pid_t			 pid;
	msec_t			 since;
	TAILQ_ENTRY(doubt)	 entry;
};
TAILQ_HEAD(doubtq, doubt);

/*
 * A worker reaped before its spawn landed (it exited at once, and the
 * loop saw SIGCHLD before the thread's report): its status waits here
 * for the report, which knows the pid.
 */
struct early {
	pid_t			 pid;
	int			 status;
	TAILQ_ENTRY(early)	 entry;
};
TAILQ_HEAD(earlyq, early);

/*
 * What the pool asks of the hand-off path (-r), which sits above it:
 * the pool never calls dispatch.c directly, so dependencies run one way.
 */
struct pool_hooks {
	void	(*watch)(void *, struct worker *);	/* a new channel */
	void	(*unwatch)(void *, struct worker *);	/* it is to close */
	void	(*freed)(void *);		/* a worker is free or new */
	void	(*rescue)(void *, int);		/* an unread connection */
	void	 *arg;
};

struct pool {
	const struct config	*conf;
	struct spawner		 spawner;
	struct workers		 ws;
	struct crash		 crash;
	struct pool_hooks	 hooks;
	int			 nullfd;	/* /dev/null, opened outside */
	unsigned int		 gen;		/* current generation */
	unsigned int		 oldgen;	/* serving while one settles */
	unsigned int		 lastgen;	/* last number given */
	struct crash		 oldcrash;	/* the serving one's */
	int			 stopping;
	int			 started;	/* first workers are up */
	int			 reloading;	/* new generation settling */
	int			 reload_again;	/* SIGHUP while settling */
	void			(*reloaded)(void *);	/* no reload left */
	void			*reloaded_arg;
	int			 shortage;	/* spawn lacked resources */
	msec_t			 shortage_ms;	/* its retry delay */
	msec_t			 startup;
	struct event		 ev_respawn;	/* throttle or shortage over */
	struct event		 ev_stable;	/* ends a crash streak */
	struct event		 ev_release;	/* idle workers over -n */
	struct event		 ev_kill;	/* head of the exiting list */
	struct event		 ev_timeout;	/* head of the busy list (-t) */
	struct event		 ev_reload;	/* end of the settling */
	struct event		 ev_stop;	/* end of the stop grace */
	struct event		 ev_doubt;	/* head of the doubts */
	struct doubtq		 doubts;
	struct spawnq		 spawnq;	/* spawns under way */
	struct event		 ev_land;	/* some of them landed */
	struct earlyq		 early;
	uint64_t		 spawnseq;	/* spawns submitted */
	uint64_t		 failmark;	/* spawnseq at the last counted
						   exec failure */
	uint64_t		 spawned, recycled, crashed_exit, violations;
	uint64_t		 timeouts, lost, rescued;
	uint64_t		 crashed_signal[65];
};

/* clock.c */
msec_t		 clock_ms(void);
void		 clock_timer_ms(struct event *, msec_t);

/* policy.c: the pool's decisions over its lists, pure */
struct worker	*policy_release(const struct workers *, msec_t, msec_t, int,
		    msec_t *);
struct worker	*policy_expired(const struct workerq *, msec_t, msec_t,
		    msec_t *);
msec_t		 policy_grow_wait(msec_t, msec_t);
int		 policy_grow_count(int, int, int);
uint64_t	 policy_recycle_at(unsigned int, uint32_t);

/* pool.c */
void		 pool_init(struct pool *, const struct config *, int, int,
		    const struct pool_hooks *);
void		 pool_start(struct pool *);
void		 pool_fill(struct pool *);
int		 pool_grow(struct pool *, int);
int		 pool_can_grow(const struct pool *);
void		 pool_retire(struct pool *, struct worker *);
void		 pool_kill(struct pool *, struct worker *, int);
void		 pool_exit(struct pool *, struct worker *, int);
void		 pool_busy(struct pool *, struct worker *, int);
void		 pool_freed(struct pool *, struct worker *);
void		 pool_reap(struct pool *);
void		 pool_stop(struct pool *, int);
void		 pool_reload(struct pool *);
void		 pool_free(struct pool *);
int		 pool_live(const struct pool *);
int		 pool_spawning(const struct pool *);

#endif /* !POOL_H */
