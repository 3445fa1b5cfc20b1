/* crash.h: the crash-loop policy: which deaths throttle restarts, and for how long. */
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
#ifndef CRASH_H
#define CRASH_H

#include "worker.h"

#define CRASH_START_MS		250	/* a start failure dies sooner */
#define CRASH_EARLY_MS		2000	/* this long without one: settled */
#define CRASH_WINDOW_MS		1000	/* a working program's failure rate */

/*
 * What a death says about the program:
 *   RECYCLE  it served (returned a cookie) or exited with status 0: it
 *            works and chose to go, however soon
 *   CRASH    it died some other way after living CRASH_START_MS: it
 *            could start, something later killed it (a request, say)
 *   START    it died at once without having served: maybe it cannot
 *            start.  A program that takes longer to fail pays for its
 *            own start-up each time, which limits how fast it loops.
 */
enum death {
	DEATH_RECYCLE,
	DEATH_CRASH,
	DEATH_START
};

/*
 * Restarts are throttled only for a program that keeps failing to start.
 * Failures are counted in rounds: the workers started together and dying
 * together count once.  Once the program has been seen working, failures
 * are forgiven up to an allowance a second (requests that crash a worker
 * must not take the pool down); beyond it, it is a crash loop again.
 */
struct crash {
	unsigned int	 streak;	/* rounds of start failures in a row */
	msec_t		 round;		/* when the current round began */
	msec_t		 last_fail;
	int		 proven;	/* this generation has worked */
	unsigned int	 fails;		/* start failures in this window */
	msec_t		 window;	/* when the window began */
	msec_t		 until;		/* no start before this */
	unsigned int	 allowance;	/* failures a second when proven */
};

void		 crash_init(struct crash *, unsigned int);
enum death	 crash_classify(msec_t, int, int);
msec_t		 crash_death(struct crash *, enum death, msec_t, msec_t);
void		 crash_proof(struct crash *);
int		 crash_settled(struct crash *, msec_t);
msec_t		 crash_wait(const struct crash *, msec_t);
long		 backoff_delay_ms(unsigned int);

#endif /* !CRASH_H */
