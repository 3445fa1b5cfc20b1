/* spawnq.h: spawns run by helper threads, so that they overlap. */
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
#ifndef SPAWNQ_H
#define SPAWNQ_H

#include <sys/queue.h>
#include <sys/types.h>

#include <pthread.h>
#include <spawn.h>

#define SPAWNQ_MAX_THREADS	8
#define SPAWNQ_STACK		(64 * 1024)	/* each thread's stack */

/*
 * One spawn.  The manager fills in everything above `pid' before it
 * queues the job and leaves the job alone until it lands; a thread then
 * reads those fields and writes `pid' and `err' only.  The lock orders
 * the two: the job moves between the lists under it.  The attributes
 * (336 bytes, the same for every spawn but the group) are made from
 * `pgid' on the spawning thread's stack, not kept in each job.
 */
struct spawn_job {
	posix_spawn_file_actions_t	 fa;
	char *const			*argv;
	char *const			*envp;
	pid_t				 pgid;	/* the pool's group, 0: none */
	pid_t				 pid;	/* the child, or -1 */
	int				 err;	/* 0 or posix_spawn's error */
	TAILQ_ENTRY(spawn_job)		 entry;
};
TAILQ_HEAD(spawn_jobq, spawn_job);

/*
 * The queue.  The manager submits and lands jobs; a landed job is its
 * own again.  Finished jobs wait on `done' and a byte on the wake pipe
 * says that the list is no longer empty: the manager watches the pipe in
 * its event loop, so it never waits for an exec.  `inflight' and what
 * follows it are the manager's alone.
 */
struct spawnq {
	pthread_mutex_t	 lock;
	pthread_cond_t	 more;		/* todo not empty, or quit */
	pthread_cond_t	 back;		/* done not empty */
	struct spawn_jobq todo, done;
	int		 quit;
	int		 wake[2];
	int		 want;		/* threads wanted, 0: none */
	int		 nthreads;	/* started */
	pthread_t	 tid[SPAWNQ_MAX_THREADS];
	int		 inflight;	/* submitted, not landed */
	void		(*landed)(struct spawn_job *, void *);
	void		(*run)(struct spawn_job *);
	void		*arg;
};

int	 spawnq_threads(long);
int	 spawnq_init(struct spawnq *, int, void (*)(struct spawn_job *),
	    void (*)(struct spawn_job *, void *), void *);
int	 spawnq_fd(const struct spawnq *);
void	 spawnq_submit(struct spawnq *, struct spawn_job *);
int	 spawnq_land(struct spawnq *);
void	 spawnq_wait(struct spawnq *);
int	 spawnq_cancel(struct spawnq *, void (*)(struct spawn_job *, void *));
void	 spawnq_free(struct spawnq *);

#endif /* !SPAWNQ_H */
