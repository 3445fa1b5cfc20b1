/* status.h: the status listener (-S), answered by the manager itself. */
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
#ifndef STATUS_H
#define STATUS_H

#include <stddef.h>

#include "stats.h"

#define STATUS_BACKLOG	64	/* listen(2) backlog of the -S socket */

/* status.c: serve on listenfd (bound, listening) until status_stop(). */
void	 status_start(int, const struct stats_source *);
void	 status_stop(void);

/* A growable output buffer with a hard cap; failed once it would pass. */
struct sbuf {
	char	*p;
	size_t	 len, cap, max;
	int	 failed;
};

/* statusfmt.c: the answers, rendered from a stats_source. */
#define STATUS_MAXROWS	4096	/* worker rows shown; the rest counted */
void	 sbuf_init(struct sbuf *, size_t);
void	 sbuf_printf(struct sbuf *, const char *, ...)
	    __attribute__((__format__(printf, 2, 3)));
void	 sbuf_free(struct sbuf *);
void	 status_metrics(struct sbuf *, const struct stats_source *);
void	 status_json(struct sbuf *, const struct stats_source *);

/* poolstats.c: the pool as a stats_source; nothing without -S. */
struct pool;
struct dispatch;
void	 poolstats_start(struct pool *, struct dispatch *);

#endif /* !STATUS_H */
