/* policy.c: when to release, time out, kill, grow and recycle; pure decisions. */
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
#include "kfcgi.h"
#include "worker.h"
#include "pool.h"

#define GROW_WAIT_MS	2	/* for a busy worker to answer before growing */

/*
 * The idle worker to release now, if any: the one idle the longest (the
 * tail of the idle list), once it has been idle `wait' ms, and only while
 * the pool is above `floor' live workers.  Otherwise NULL, with *next set
 * to when to look again (-1: nothing to wait for).
 */
struct worker *
policy_release(const struct workers *ws, msec_t now, msec_t wait, int floor,
    msec_t *next)
{
	struct worker	*w;

	*next = -1;
	if (workers_live(ws) <= floor || (w = worker_oldest_idle(ws)) == NULL)
		return NULL;
	if (now - w->since >= wait)
		return w;
	*next = w->since + wait;
	return NULL;
}

/*
 * The first worker of a list ordered by `since' whose `limit' ms are up:
 * busy ones for the request timeout, exiting ones for the grace period.
 * Otherwise NULL, with *next set to the head's deadline (-1: empty list).
 */
struct worker *
policy_expired(const struct workerq *q, msec_t now, msec_t limit,
    msec_t *next)
{
	struct worker	*w;

	*next = -1;
	if ((w = TAILQ_FIRST(q)) == NULL)
		return NULL;
	if (now - w->since >= limit)
		return w;
	*next = w->since + limit;
	return NULL;
}

/*
 * How long to wait before growing for a connection with no idle worker.
 * After silence, none: the load is new.  While workers keep answering,
 * one may be about to, and a new worker costs far more than a short wait.
 */
msec_t
policy_grow_wait(msec_t now, msec_t last_free)
{
	msec_t	 since = now - last_free;

	return since < GROW_WAIT_MS ? GROW_WAIT_MS - since : 0;
}

/*
 * How many workers to start when a connection waits and none is idle
 * (-r): one for each connection held and each still in the listen queue
 * (`queued', -1 when unknown), less the spawns already under way, which
 * will serve some of them.  Started together, they overlap.
 */
int
policy_grow_count(int held, int queued, int spawning)
{
	int	 want = held + (queued > 0 ? queued : 0) - spawning;

	return want > 0 ? want : 0;
}

/*
 * Recycle after about `m' connections: within 10% either way, so that
 * workers started together do not all restart together.
 */
uint64_t
policy_recycle_at(unsigned int m, uint32_t rnd)
{
	uint64_t	 spread = m / 5;

	if (m == 0)
		return 0;
	if (spread == 0)
		return m;
	return m - m / 10 + rnd % (spread + 1);
}
