/* stats.h: the figures a running pool reports to the status listener. */
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
#ifndef STATS_H
#define STATS_H

#include <sys/types.h>
#include <stdint.h>
#define STATS_NSIG 65
struct stats {
	const char	*pool;		/* "fixed", "variable" or "elastic" */
	int		 nworkers;	/* -n */
	int		 maxworkers;	/* -N */
	int		 backlog;	/* -l */
	int		 workers;	/* running now, all states but exiting */
	int		 idle;		/* -1: the pool cannot tell */
	int		 busy;		/* -1: the pool cannot tell */
	int		 exiting;	/* retiring or being killed */
	int		 queue;		/* listen queue depth now, -1: unknown */
	int		 queue_max;	/* highest seen since start, -1: unknown */
	uint64_t	 accepted;	/* connections kfcgi accepted (-r) */
	uint64_t	 at_max;	/* times the pool reached -N */
	uint64_t	 queue_full;	/* times the listen queue was seen full */
	uint64_t	 spawned;
	uint64_t	 recycled;	/* clean exits: -m, or the program's own */
	uint64_t	 crashed_exit;	/* unexpected exits with status != 0 */
	uint64_t	 crashed_signal[STATS_NSIG]; /* by signal number */
	uint64_t	 violations;	/* protocol violations (-r) */
	uint64_t	 timeouts;	/* request timeouts (-t) */
	uint64_t	 lost;		/* connections lost with a worker */
	uint64_t	 uptime_ms;
};
struct stats_worker {
	pid_t		 pid;
	const char	*state;		/* "idle", "busy", "running", ... */
	uint64_t	 served;	/* connections, -r; 0 when unknown */
	long		 busy_ms;	/* how long on the current one, -1: not busy */
	uint64_t	 age_ms;
};
/* The pool's side, called by the status listener for each request. */
struct stats_source {
	void	(*fill)(struct stats *, void *arg);
	/* Rows one by one: *cursor NULL to begin; returns 0 at the end. */
	int	(*worker)(struct stats_worker *, void **cursor, void *arg);
	void	 *arg;
};

#endif /* !STATS_H */
