/* crash.c: the crash-loop policy, pure: no processes, the clock passed in. */
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
#include <string.h>

#include "crash.h"

#define BACKOFF_FIRST_MS	100
#define BACKOFF_MAX_MS		30000

/*
 * Delay before the next start after the n-th round of start failures in
 * a row: the first round is restarted at once (a one-off costs nothing),
 * then 100 ms doubling up to 30 s, so a crash loop costs little CPU.
 */
long
backoff_delay_ms(unsigned int streak)
{
	long	 ms = BACKOFF_FIRST_MS;

	if (streak <= 1)
		return 0;
	while (--streak > 1 && ms < BACKOFF_MAX_MS)
		ms *= 2;
	return ms < BACKOFF_MAX_MS ? ms : BACKOFF_MAX_MS;
}

void
crash_init(struct crash *c, unsigned int allowance)
{
	memset(c, 0, sizeof(*c));
	c->round = c->window = c->last_fail = -CRASH_EARLY_MS;
	c->allowance = allowance;
}

enum death
crash_classify(msec_t lived, int served, int clean)
{
	if (served || clean)
		return DEATH_RECYCLE;
	return lived >= CRASH_START_MS ? DEATH_CRASH : DEATH_START;
}

/* The program has been seen working: forget its failures. */
void
crash_proof(struct crash *c)
{
	c->streak = 0;
	c->fails = 0;
	c->until = 0;
	c->proven = 1;
}

/* Within a working program's rate of failures, a second at a time? */
static int
crash_forgiven(struct crash *c, msec_t now)
{
	if (!c->proven)
		return 0;
	if (now - c->window >= CRASH_WINDOW_MS) {
		c->window = now;
		c->fails = 0;
	}
	return ++c->fails <= c->allowance;
}

/*
 * A worker started at `started' died at `now'.  Returns how long the
 * restarts now wait (0: at once); this is the delay actually applied.
 */
msec_t
crash_death(struct crash *c, enum death d, msec_t started, msec_t now)
{
	if (d != DEATH_START) {
		crash_proof(c);
		return 0;
	}
	c->last_fail = now;
	if (crash_forgiven(c, now))
		return crash_wait(c, now);
	/* Started before this round began: the same round, counted once. */
	if (started < c->round)
		return crash_wait(c, now);
	c->streak++;
	c->round = now;
	c->until = now + backoff_delay_ms(c->streak);
	return c->until - now;
}

/*
 * Called CRASH_EARLY_MS after restarts resumed: no failure since then
 * means the workers started this time.  Returns 1 if that settled it.
 */
int
crash_settled(struct crash *c, msec_t now)
{
	if (c->streak == 0 || now - c->last_fail < CRASH_EARLY_MS)
		return 0;
	crash_proof(c);
	return 1;
}

msec_t
crash_wait(const struct crash *c, msec_t now)
{
	return c->until > now ? c->until - now : 0;
}
