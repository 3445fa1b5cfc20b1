/* spawn64: how long serial posix_spawns of a worker take, the burst's scale. */
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
 *	spawn64 [-f] [-n count] [-t threads] prog [arg ...]
 *
 * Starts count (64) copies of prog one after another as kfcgi -r starts
 * workers (a socketpair channel on descriptor 3,
 * FCGI_LISTENSOCK_DESCRIPTORS=3, /dev/null on 0) and prints
 *
 *	spawns=64 ms=M
 *
 * the wall-clock time from the first posix_spawn call to the return of
 * the last one.  glibc's posix_spawn returns once the child has exec'd,
 * so this is what a manager that waits for each exec pays.  Then it
 * closes the channels, which makes the workers exit, and reaps them.
 *
 * -t: the spawns are shared by that many threads (the channels made
 * beforehand, as a manager would); the time is until the last thread is
 * done.  -f: fork and execve instead, in one thread: the parent does not
 * wait for the exec, so this is the cost of the forks alone.
 */

#include <sys/types.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include <err.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MAXN	4096
#define MAXT	64

static pid_t	 pids[MAXN];
static int	 chans[MAXN], peers[MAXN];
static char	**args;
static int	 null, forking;
static long	 nspawn, nthreads;
static char	 var[] = "FCGI_LISTENSOCK_DESCRIPTORS=3";
static char	*env[] = { var, NULL };

static double
now_ms(void)
{
	struct timespec	 ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static void
spawn_fork(long i)
{
	pid_t	 pid;

	if ((pid = fork()) == -1)
		err(1, "fork");
	if (pid == 0) {
		if (dup2(null, 0) == -1 || dup2(peers[i], 3) == -1)
			_exit(127);
		execve(args[0], args, env);
		_exit(127);
	}
	pids[i] = pid;
}

static void
spawn_one(long i)
{
	posix_spawn_file_actions_t	 fa;
	int				 rc;

	if (forking) {
		spawn_fork(i);
		return;
	}
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, null, 0);
	posix_spawn_file_actions_adddup2(&fa, peers[i], 3);
	rc = posix_spawn(&pids[i], args[0], &fa, NULL, args, env);
	posix_spawn_file_actions_destroy(&fa);
	if (rc != 0)
		errx(1, "posix_spawn: %s: %s", args[0], strerror(rc));
}

/* Thread t spawns t, t + nthreads, ...: each entry is its own. */
static void *
spawner(void *arg)
{
	long	 i;

	for (i = (long)arg; i < nspawn; i += nthreads)
		spawn_one(i);
	return NULL;
}

int
main(int argc, char *argv[])
{
	pthread_t	 th[MAXT];
	double		 t0, t1;
	long		 i;
	int		 ch, sv[2], rc;

	nspawn = 64;
	nthreads = 1;
	while ((ch = getopt(argc, argv, "+fn:t:")) != -1)
		if (ch == 'f')
			forking = 1;
		else if (ch == 'n' && (nspawn = strtol(optarg, NULL, 10)) >= 1 &&
		    nspawn <= MAXN)
			continue;
		else if (ch == 't' && (nthreads = strtol(optarg, NULL, 10)) >= 1 &&
		    nthreads <= MAXT)
			continue;
		else
			errx(1, "usage: spawn64 [-f] [-n count] [-t threads] "
			    "prog [arg ...]");
	args = argv + optind;
	if (*args == NULL)
		errx(1, "usage: spawn64 [-f] [-n count] [-t threads] "
		    "prog [arg ...]");
	if ((null = open("/dev/null", O_RDWR | O_CLOEXEC)) == -1)
		err(1, "/dev/null");
	for (i = 0; i < nspawn; i++) {
		if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == -1)
			err(1, "socketpair");
		chans[i] = sv[0];
		peers[i] = sv[1];
	}

	t0 = now_ms();
	if (nthreads == 1)
		spawner((void *)0);
	else {
		for (i = 0; i < nthreads; i++)
			if ((rc = pthread_create(&th[i], NULL, spawner,
			    (void *)i)) != 0)
				errx(1, "pthread_create: %s", strerror(rc));
		for (i = 0; i < nthreads; i++)
			pthread_join(th[i], NULL);
	}
	t1 = now_ms();

	for (i = 0; i < nspawn; i++) {
		close(peers[i]);
		close(chans[i]);
	}
	for (i = 0; i < nspawn; i++)
		waitpid(pids[i], NULL, 0);
	printf("spawns=%ld ms=%.1f\n", nspawn, t1 - t0);
	return 0;
}
