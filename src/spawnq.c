/* spawnq.c: a queue of spawns and the helper threads that run them. */
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
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "spawnq.h"

/*
 * glibc's posix_spawn returns only once the child has exec'd (or failed
 * to), and the exec is most of a spawn's cost: a manager that spawns
 * itself waits for each exec in turn.  Helper threads spawn instead, as
 * many as there are cores to run the execs on, and the manager goes on
 * serving.  A thread touches nothing but the lists, under the lock, and
 * the job it took: the manager prepared everything else beforehand.
 */

/* Threads for `ncpu' online cores (-1: unknown): at least one. */
int
spawnq_threads(long ncpu)
{
	if (ncpu < 1)
		return 1;
	return ncpu > SPAWNQ_MAX_THREADS ? SPAWNQ_MAX_THREADS : (int)ncpu;
}

/* Under the lock: a job is done; wake the manager if it may be asleep. */
static void
spawnq_done(struct spawnq *q, struct spawn_job *j)
{
	int	 was_empty = TAILQ_EMPTY(&q->done);

	TAILQ_INSERT_TAIL(&q->done, j, entry);
	pthread_cond_signal(&q->back);
	/* One byte while the list is not empty: the pipe never fills. */
	if (was_empty && write(q->wake[1], "", 1) == -1) {
		/* Full already means a byte is there: nothing lost. */
	}
}

static void *
spawnq_main(void *arg)
{
	struct spawnq		*q = arg;
	struct spawn_job	*j;

	pthread_mutex_lock(&q->lock);
	for (;;) {
		while (!q->quit && TAILQ_EMPTY(&q->todo))
			pthread_cond_wait(&q->more, &q->lock);
		if (q->quit)
			break;
		j = TAILQ_FIRST(&q->todo);
		TAILQ_REMOVE(&q->todo, j, entry);
		pthread_mutex_unlock(&q->lock);
		q->run(j);
		pthread_mutex_lock(&q->lock);
		spawnq_done(q, j);
	}
	pthread_mutex_unlock(&q->lock);
	return NULL;
}

/*
 * Every signal blocked from the thread's first instruction on: signals
 * stay events of the manager's loop.  The children do not inherit the
 * mask: their spawn attributes set an empty one.  A small stack: a
 * thread runs posix_spawn and waits, a few kilobytes deep, and the
 * child has a stack of its own.  The default (8 MiB) costs nothing
 * untouched, but with transparent huge pages always on, its first touch
 * may bring in a 2 MiB page.
 */
static int
spawnq_start(struct spawnq *q)
{
	pthread_attr_t	 attr;
	sigset_t	 all, old;
	int		 rc;

	if ((rc = pthread_attr_init(&attr)) != 0)
		return rc;
	/* Below the system's minimum: the default, then. */
	(void)pthread_attr_setstacksize(&attr, SPAWNQ_STACK);
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	rc = pthread_create(&q->tid[q->nthreads], &attr, spawnq_main, q);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	pthread_attr_destroy(&attr);
	if (rc != 0)
		return rc;
	q->nthreads++;
	return 0;
}

/*
 * `threads' helpers (0: spawn in the caller, in turn), started as work
 * comes, so after the jail and the privilege drop.  `run' does the
 * spawn; `landed' gets each job back in the manager.  -1 on failure.
 */
int
spawnq_init(struct spawnq *q, int threads, void (*run)(struct spawn_job *),
    void (*landed)(struct spawn_job *, void *), void *arg)
{
	memset(q, 0, sizeof(*q));
	if (pipe2(q->wake, O_CLOEXEC | O_NONBLOCK) == -1)
		return -1;
	pthread_mutex_init(&q->lock, NULL);
	pthread_cond_init(&q->more, NULL);
	pthread_cond_init(&q->back, NULL);
	TAILQ_INIT(&q->todo);
	TAILQ_INIT(&q->done);
	q->want = threads > SPAWNQ_MAX_THREADS ? SPAWNQ_MAX_THREADS : threads;
	q->run = run;
	q->landed = landed;
	q->arg = arg;
	return 0;
}

/* Readable when jobs have landed: for the manager's event loop. */
int
spawnq_fd(const struct spawnq *q)
{
	return q->wake[0];
}

void
spawnq_submit(struct spawnq *q, struct spawn_job *j)
{
	int	 rc;

	q->inflight++;
	/* One more thread while there is more work than threads. */
	if (q->nthreads < q->want && q->nthreads < q->inflight &&
	    (rc = spawnq_start(q)) != 0 && q->nthreads == 0) {
		errno = rc;
		log_warn("spawn: no helper thread; spawning in turn");
		q->want = 0;
	}
	pthread_mutex_lock(&q->lock);
	if (q->nthreads == 0) {
		q->run(j);
		spawnq_done(q, j);
	} else {
		TAILQ_INSERT_TAIL(&q->todo, j, entry);
		pthread_cond_signal(&q->more);
	}
	pthread_mutex_unlock(&q->lock);
}

/*
 * Move every job of `from' out under the lock, then give each to `fn'
 * outside it, as no longer in flight.  Returns how many.
 */
static int
spawnq_hand(struct spawnq *q, struct spawn_jobq *from,
    void (*fn)(struct spawn_job *, void *))
{
	struct spawn_jobq	 got;
	struct spawn_job	*j;
	int			 n = 0;

	TAILQ_INIT(&got);
	pthread_mutex_lock(&q->lock);
	TAILQ_CONCAT(&got, from, entry);
	pthread_mutex_unlock(&q->lock);
	while ((j = TAILQ_FIRST(&got)) != NULL) {
		TAILQ_REMOVE(&got, j, entry);
		q->inflight--;
		fn(j, q->arg);
		n++;
	}
	return n;
}

/* Hand every finished job back; returns how many. */
int
spawnq_land(struct spawnq *q)
{
	char	 buf[64];

	/* Drained first: a job done from now on writes a byte again. */
	while (read(q->wake[0], buf, sizeof(buf)) > 0)
		continue;
	return spawnq_hand(q, &q->done, q->landed);
}

/* Block until every job submitted has landed (start-up only). */
void
spawnq_wait(struct spawnq *q)
{
	while (q->inflight > 0) {
		pthread_mutex_lock(&q->lock);
		while (TAILQ_EMPTY(&q->done))
			pthread_cond_wait(&q->back, &q->lock);
		pthread_mutex_unlock(&q->lock);
		(void)spawnq_land(q);
	}
}

/*
 * Take back the jobs no thread has begun: `gone' gets each (they never
 * ran).  Those being spawned land as usual.  Returns how many.
 */
int
spawnq_cancel(struct spawnq *q, void (*gone)(struct spawn_job *, void *))
{
	return spawnq_hand(q, &q->todo, gone);
}

/* The threads end; jobs still queued are the caller's to have cancelled. */
void
spawnq_free(struct spawnq *q)
{
	int	 i;

	if (q->run == NULL)
		return;
	pthread_mutex_lock(&q->lock);
	q->quit = 1;
	pthread_cond_broadcast(&q->more);
	pthread_mutex_unlock(&q->lock);
	for (i = 0; i < q->nthreads; i++)
		pthread_join(q->tid[i], NULL);
	q->nthreads = 0;
	pthread_cond_destroy(&q->back);
	pthread_cond_destroy(&q->more);
	pthread_mutex_destroy(&q->lock);
	close(q->wake[0]);
	close(q->wake[1]);
	q->run = NULL;
}
