/* Worker output: each worker's stdout and stderr, logged line by line. */
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
#ifndef OUTPUT_H
#define OUTPUT_H

#include <sys/types.h>

#include <event.h>
#include <stdint.h>

#define OUTPUT_LINE_MAX		1024	/* longer lines are cut */
#define OUTPUT_RATE		50	/* lines a second, sustained */
#define OUTPUT_BURST		100	/* lines at once */

struct spawner;

/*
 * The manager's end of one worker's output pipe.  Bounded: a worker
 * that floods is read as fast as it writes and the excess is dropped.
 */
struct output {
	int		 fd;		/* read end, -1: none */
	pid_t		 pid;
	struct event	 ev;		/* fd readable */
	struct event	*ev_drop;	/* report what was dropped, NULL until
					   a line is */
	long		 tokens;	/* thousandths of a line */
	int64_t		 refill;	/* ms, tokens last added */
	unsigned long	 dropped;	/* lines not logged since last said */
	int		 cut;		/* skipping the rest of a long line */
	size_t		 len;		/* of a line carried over */
	char		*line;		/* NULL until one is */
};

int	 output_pipe(int [2]);
void	 output_start(struct output *, int, pid_t);
void	 output_stop(struct output *);

#endif /* !OUTPUT_H */
