/* elastic.h: the elastic pool's decisions (-e), pure, with a given clock. */
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
#ifndef ELASTIC_H
#define ELASTIC_H

/*
 * A burst is seen at most one slow interval late: 25 ms is 40 samples a
 * second of 3-15 us each (one netlink round trip), under 0.1% of a core.
 */
#define ELASTIC_FAST_MS		5	/* sampling while connections wait */
#define ELASTIC_SLOW_MS		25	/* sampling when all is quiet */
#define ELASTIC_IDLE_MS		250	/* count idle workers this often */

struct elastic_conf {
	int	 nmin;		/* -n */
	int	 nmax;		/* -N */
	long	 wait_ms;	/* -w, in milliseconds */
	long	 fast_ms;	/* 0: ELASTIC_FAST_MS */
	long	 slow_ms;	/* 0: ELASTIC_SLOW_MS */
};

/* What the pool looked like at one sample. */
struct elastic_sample {
	long	 now_ms;	/* monotonic clock */
	int	 qlen;		/* listen queue depth, -1 unknown */
	int	 running;	/* live workers not retiring, starting included */
	int	 starting;	/* of those, not yet idle_started() */
	int	 retiring;	/* asked to leave, not yet reaped */
	int	 idle;		/* of running, idle now (idle_check), -1 not
				   counted this time; 0 or "at least 1" is
				   all release needs: count oldest first, stop
				   at the first idle, every ELASTIC_IDLE_MS */
};

/* What to do now. */
struct elastic_plan {
	int	 start;		/* workers to start */
	int	 release;	/* 1: retire one idle worker, the oldest */
	long	 next_ms;	/* take the next sample after this long */
};

struct elastic {
	struct elastic_conf conf;
	long	 quiet_since;	/* queue seen empty since then */
	long	 last_release;	/* when the last worker was released */
	int	 released;	/* one was released since quiet_since */
	int	 waited;	/* the previous sample saw connections wait */
};

void	 elastic_init(struct elastic *, const struct elastic_conf *, long);
void	 elastic_decide(struct elastic *, const struct elastic_sample *,
	    struct elastic_plan *);

#endif /* !ELASTIC_H */
