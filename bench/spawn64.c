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
 *	spawn64 [-n count] prog [arg ...]
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
 */

#include <sys/types.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include <err.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MAXN	4096

static double
now_ms(void)
{
	struct timespec	 ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

int
main(int argc, char *argv[])
{
	static char			 var[] = "FCGI_LISTENSOCK_DESCRIPTORS=3";
	static pid_t			 pids[MAXN];
	static int			 chans[MAXN];
	char				*env[] = { var, NULL };
	posix_spawn_file_actions_t	 fa;
	double				 t0, t1;
	long				 n = 64, i;
	int				 ch, sv[2], null, rc;

	while ((ch = getopt(argc, argv, "+n:")) != -1)
		if (ch != 'n' || (n = strtol(optarg, NULL, 10)) < 1 || n > MAXN)
			errx(1, "usage: spawn64 [-n count] prog [arg ...]");
	argv += optind;
	if (*argv == NULL)
		errx(1, "usage: spawn64 [-n count] prog [arg ...]");
	if ((null = open("/dev/null", O_RDWR | O_CLOEXEC)) == -1)
		err(1, "/dev/null");

	t0 = now_ms();
	for (i = 0; i < n; i++) {
		if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == -1)
			err(1, "socketpair");
		posix_spawn_file_actions_init(&fa);
		posix_spawn_file_actions_adddup2(&fa, null, 0);
		posix_spawn_file_actions_adddup2(&fa, sv[1], 3);
		rc = posix_spawn(&pids[i], argv[0], &fa, NULL, argv, env);
		posix_spawn_file_actions_destroy(&fa);
		if (rc != 0)
			errx(1, "posix_spawn: %s: %s", argv[0], strerror(rc));
		close(sv[1]);
		chans[i] = sv[0];
	}
	t1 = now_ms();

	for (i = 0; i < n; i++)
		close(chans[i]);
	for (i = 0; i < n; i++)
		waitpid(pids[i], NULL, 0);
	printf("spawns=%ld ms=%.1f\n", n, t1 - t0);
	return 0;
}
