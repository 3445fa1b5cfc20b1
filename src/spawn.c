/* spawn.c: start a worker with exactly its descriptors and a clean state. */
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
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kfcgi.h"
#include "log.h"
#include "spawnq.h"

extern char	**environ;

#define ENV_CHANNEL	"FCGI_LISTENSOCK_DESCRIPTORS"

/*
 * The workers' environment: ours, less any stray channel variable (a
 * classic worker seeing one would wait on the wrong descriptor), plus
 * the channel's number in a variable pool.
 */
static char **
spawn_environ(int varpool)
{
	static char	 chanvar[sizeof(ENV_CHANNEL) + 12];
	char		**env;
	size_t		 n, i, len = strlen(ENV_CHANNEL);

	for (n = 0; environ[n] != NULL; n++)
		continue;
	if ((env = calloc(n + 2, sizeof(*env))) == NULL)
		fatal("spawn: environment");
	for (i = n = 0; environ[i] != NULL; i++)
		if (strncmp(environ[i], ENV_CHANNEL, len) != 0 ||
		    environ[i][len] != '=')
			env[n++] = environ[i];
	if (varpool) {
		snprintf(chanvar, sizeof(chanvar), "%s=%d", ENV_CHANNEL,
		    KFCGI_CHANNEL_FD);
		env[n++] = chanvar;
	}
	env[n] = NULL;
	return env;
}

void
spawn_init(struct spawner *sp, char *const *argv, int varpool, int fd0,
    int outfd)
{
	sp->argv = argv;
	sp->envp = spawn_environ(varpool);
	sp->fd0 = fd0;
	sp->outfd = outfd;
	sp->pgid = 0;
	sp->nofile_restore = 0;
}

/*
 * Every signal to its default and nothing blocked: a clean start; and
 * the pool's process group, so that no descendant outlives the pool.
 * Allocates nothing (the attributes are a plain structure), so any
 * thread may make them.  0 or an error number.
 */
static int
spawn_attr(posix_spawnattr_t *attr, pid_t pgid)
{
	sigset_t	 all, none;
	short		 flags = POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK;
	int		 e;

	sigfillset(&all);
	sigemptyset(&none);
	if (pgid != 0)
		flags |= POSIX_SPAWN_SETPGROUP;
	if ((e = posix_spawnattr_init(attr)) != 0)
		return e;
	if ((e = posix_spawnattr_setsigdefault(attr, &all)) != 0 ||
	    (e = posix_spawnattr_setsigmask(attr, &none)) != 0 ||
	    (e = posix_spawnattr_setpgroup(attr, pgid)) != 0 ||
	    (e = posix_spawnattr_setflags(attr, flags)) != 0)
		posix_spawnattr_destroy(attr);
	return e;
}

/*
 * Only the descriptors placed here survive: everything the manager
 * holds is close-on-exec.
 */
static int
spawn_actions(posix_spawn_file_actions_t *fa, const struct spawner *sp,
    int chan, int out)
{
	if (out == -1)
		out = sp->outfd;
	if (posix_spawn_file_actions_init(fa) != 0)
		return -1;
	if (posix_spawn_file_actions_adddup2(fa, sp->fd0, 0) != 0 ||
	    (out != -1 &&
	    (posix_spawn_file_actions_adddup2(fa, out, 1) != 0 ||
	    posix_spawn_file_actions_adddup2(fa, out, 2) != 0)) ||
	    (chan != -1 && posix_spawn_file_actions_adddup2(fa, chan,
	    KFCGI_CHANNEL_FD) != 0)) {
		posix_spawn_file_actions_destroy(fa);
		return -1;
	}
	return 0;
}

/*
 * Everything a spawn needs that allocates, made by the manager: a thread
 * may run it without a malloc arena of its own.  The descriptors must
 * stay open until the job lands.  -1 with errno.
 */
int
spawn_prepare(const struct spawner *sp, struct spawn_job *j, int chan,
    int out)
{
	if (spawn_actions(&j->fa, sp, chan, out) == -1) {
		errno = ENOMEM;
		return -1;
	}
	j->argv = sp->argv;
	j->envp = sp->envp;
	j->pgid = sp->pgid;
	j->pid = -1;
	j->err = 0;
	return 0;
}

/*
 * Start one worker, in whichever thread.  glibc's posix_spawn() reports
 * exec failures (missing program, missing loader, no permission) as its
 * return value, so they are seen here rather than as a mysterious exit
 * status.  Touches the job alone.
 */
void
spawn_run(struct spawn_job *j)
{
	posix_spawnattr_t	 attr;
	pid_t			 pid;

	j->pid = -1;
	if ((j->err = spawn_attr(&attr, j->pgid)) != 0)
		return;
	j->err = posix_spawn(&pid, j->argv[0], &j->fa, &attr, j->argv,
	    j->envp);
	posix_spawnattr_destroy(&attr);
	if (j->err == 0)
		j->pid = pid;
}

void
spawn_release(struct spawn_job *j)
{
	posix_spawn_file_actions_destroy(&j->fa);
}

/*
 * The worker gets the descriptor limit kfcgi was started with, not the
 * one raised for the channels: lowered around a spawn (a soft limit
 * below descriptors already open is allowed), then raised.  The limit
 * is the process's: only for spawns in the manager's own thread.
 */
void
spawn_limit(const struct spawner *sp, int lower)
{
	if (sp->nofile_restore)
		(void)setrlimit(RLIMIT_NOFILE, lower ? &sp->nofile_orig :
		    &sp->nofile_raised);
}
