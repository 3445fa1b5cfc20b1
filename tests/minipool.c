/* minipool.c: a small elastic pool built on the probes, to try them out. */
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
 * Not kfcgi: a test program that wires qdepth.c, idle.c and elastic.c
 * together the simplest way (a sleeping loop, no libevent) to show that
 * they drive a pool of classic workers, and how.
 *
 *	minipool NMIN NMAX WAIT_MS SIG PROG [ARG ...]
 *
 * fd 0 is the listening socket, given to every worker.  It prints
 * "grow start=K qlen=Q ...", "start pid=P", "retire pid=P", "exit pid=P
 * status=S" and, whenever the pool's size changes, "size=N"; SIGTERM ends
 * it (workers killed).
 */
#include <sys/types.h>
#include <sys/wait.h>

#include <err.h>
#include <errno.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "elastic.h"
#include "idle.h"
#include "qdepth.h"

#define MAXW		256
#define START_MS	2000	/* starting at most that long (idle_started) */

enum wstate { W_FREE, W_STARTING, W_RUNNING, W_FROZEN, W_RETIRING };

struct w {
	pid_t		 pid;
	long		 born;
	enum wstate	 state;
};

extern char		**environ;
static struct w		 pool[MAXW];
static volatile sig_atomic_t quit;

static long
now_ms(void)
{
	struct timespec	 ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void
onterm(int sig)
{
	(void)sig;
	quit = 1;
}

static void
start(char *argv[], long now)
{
	int	 i, rc;

	for (i = 0; i < MAXW && pool[i].state != W_FREE; i++)
		continue;
	if (i == MAXW)
		return;
	if ((rc = posix_spawn(&pool[i].pid, argv[0], NULL, NULL, argv,
	    environ)) != 0)
		errx(1, "spawn: %s: %s", argv[0], strerror(rc));
	pool[i].born = now;
	pool[i].state = W_STARTING;
	printf("start pid=%ld\n", (long)pool[i].pid);
}

static void
reap(void)
{
	pid_t	 pid;
	int	 i, st;

	while ((pid = waitpid(-1, &st, WNOHANG)) > 0)
		for (i = 0; i < MAXW; i++)
			if (pool[i].state != W_FREE && pool[i].pid == pid) {
				pool[i].state = W_FREE;
				printf("exit pid=%ld status=%d\n", (long)pid,
				    WIFEXITED(st) ? WEXITSTATUS(st) :
				    -WTERMSIG(st));
			}
}

/* Count the pool; a worker starting is running once idle_started(). */
static void
count(struct elastic_sample *s, long now)
{
	int	 i;

	s->running = s->starting = s->retiring = 0;
	for (i = 0; i < MAXW; i++) {
		if (pool[i].state == W_FREE)
			continue;
		if (pool[i].state == W_RETIRING || pool[i].state == W_FROZEN) {
			s->retiring++;
			continue;
		}
		if (pool[i].state == W_STARTING &&
		    (idle_started(pool[i].pid) == 1 ||
		    now - pool[i].born >= START_MS))
			pool[i].state = W_RUNNING;
		s->running++;
		if (pool[i].state == W_STARTING)
			s->starting++;
	}
}

/*
 * The slot of the oldest idle running worker, -1 if none; *nidle how
 * many are idle.  A look at each (idle_check): every ELASTIC_IDLE_MS
 * and when one is to be released, never per connection.
 */
static int
oldest_idle(int *nidle)
{
	int	 i, best = -1;

	*nidle = 0;
	for (i = 0; i < MAXW; i++) {
		if (pool[i].state != W_RUNNING || idle_check(pool[i].pid) != 1)
			continue;
		(*nidle)++;
		if (best == -1 || pool[i].born < pool[best].born)
			best = i;
	}
	return best;
}

/* The second half of a retirement, a fast tick after the freeze. */
static void
thaw(int sig)
{
	int	 i, rc;

	for (i = 0; i < MAXW; i++) {
		if (pool[i].state != W_FROZEN)
			continue;
		rc = idle_retire(pool[i].pid, sig);
		pool[i].state = rc == 1 ? W_RETIRING : W_RUNNING;
		if (rc == 1)
			printf("retire pid=%ld\n", (long)pool[i].pid);
	}
}

static int
size(void)
{
	int	 i, n = 0;

	for (i = 0; i < MAXW; i++)
		if (pool[i].state != W_FREE)
			n++;
	return n;
}

static void
step(struct elastic *e, struct qdepth *q, char *argv[], long *next)
{
	static long		 counted;
	struct elastic_sample	 s;
	struct elastic_plan	 p;
	int			 i, victim = -1;

	s.now_ms = now_ms();
	if (qdepth_read(q, &s.qlen, NULL) == -1)
		s.qlen = -1;
	count(&s, s.now_ms);
	s.idle = -1;
	if (s.now_ms - counted >= ELASTIC_IDLE_MS) {
		victim = oldest_idle(&s.idle);
		counted = s.now_ms;
	}
	elastic_decide(e, &s, &p);
	if (p.start > 0)
		printf("grow start=%d qlen=%d running=%d starting=%d idle=%d\n",
		    p.start, s.qlen, s.running, s.starting, s.idle);
	for (i = 0; i < p.start; i++)
		start(argv, s.now_ms);
	if (p.release && s.idle == -1)
		victim = oldest_idle(&i);
	if (p.release && victim != -1 && idle_freeze(pool[victim].pid) == 0) {
		pool[victim].state = W_FROZEN;
		p.next_ms = e->conf.fast_ms;
	}
	*next = p.next_ms;
}

int
main(int argc, char *argv[])
{
	struct elastic_conf	 conf;
	struct elastic		 e;
	struct qdepth		*q;
	struct timespec		 ts;
	long			 next;
	int			 sig, last = -1, i;

	if (argc < 6)
		errx(2, "usage: minipool NMIN NMAX WAIT_MS SIG PROG [ARG ...]");
	setvbuf(stdout, NULL, _IOLBF, 0);
	memset(&conf, 0, sizeof(conf));
	conf.nmin = atoi(argv[1]);
	conf.nmax = atoi(argv[2]);
	conf.wait_ms = atol(argv[3]);
	sig = atoi(argv[4]);
	if ((q = qdepth_open(0)) == NULL || idle_open() == -1)
		err(1, "probes");
	signal(SIGTERM, onterm);
	elastic_init(&e, &conf, now_ms());
	while (!quit) {
		reap();
		thaw(sig);
		step(&e, q, argv + 5, &next);
		if (size() != last)
			printf("size=%d\n", last = size());
		ts.tv_sec = next / 1000;
		ts.tv_nsec = (next % 1000) * 1000000;
		nanosleep(&ts, NULL);
	}
	for (i = 0; i < MAXW; i++)
		if (pool[i].state != W_FREE)
			kill(pool[i].pid, SIGKILL);
	return 0;
}
