/* dispatch.h: the variable pool's accept and hand-off path. */
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
#ifndef DISPATCH_H
#define DISPATCH_H

#include <event.h>

#include "pool.h"

/*
 * Whether, and why not, the listening socket is watched: one state
 * instead of several flags.  Changed only by dispatch_set().
 *   ACCEPTING     accept event armed
 *   WAIT_WORKER   connections held, no idle worker, growing
 *   WAIT_FDS      accept failed for lack of descriptors; resume timer
 *   SATURATED     connections held, no idle worker, at -N (or throttled)
 *   STOPPING      never again
 */
enum accept_state {
	ACC_ACCEPTING,
	ACC_WAIT_WORKER,
	ACC_WAIT_FDS,
	ACC_SATURATED,
	ACC_STOPPING
};

/* Accepted connections no worker has yet: a FIFO, owned here alone. */
struct held {
	int		*fd;
	unsigned int	 head, count, cap;
};

struct dispatch {
	struct pool		*pool;
	struct uring		*ring;		/* NULL: the libevent path */
	int			 listenfd;
	enum accept_state	 state;
	int			 armed;		/* ev_accept added */
	int			 edge;		/* edge-triggered: stays added */
	int			 maybe;		/* connections may be queued */
	struct held		 held;
	msec_t			 last_free;	/* last cookie returned */
	msec_t			 resume_ms;	/* WAIT_FDS back-off */
	struct event		 ev_accept;
	struct event		 ev_grow;
	struct event		 ev_resume;
	uint64_t		 accepted, at_max;
};

void	 dispatch_init(struct dispatch *, struct pool *, int, int, int);
void	 dispatch_hooks(struct dispatch *, struct pool_hooks *);
void	 dispatch_start(struct dispatch *);
void	 dispatch_stop(struct dispatch *);
void	 dispatch_free(struct dispatch *);

#endif /* !DISPATCH_H */
