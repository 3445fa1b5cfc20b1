/* elastic_unit.c: unit tests of the elastic pool's decisions (elastic.c). */
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
#include <stdio.h>
#include <string.h>

#include "elastic.h"
#include "check.h"

static struct elastic		 el;
static struct elastic_plan	 plan;

static void
setup(int nmin, int nmax, long wait_ms)
{
	struct elastic_conf	 c;

	memset(&c, 0, sizeof(c));
	c.nmin = nmin;
	c.nmax = nmax;
	c.wait_ms = wait_ms;
	c.fast_ms = 5;
	c.slow_ms = 200;
	elastic_init(&el, &c, 0);
}

/* One sample; the plan lands in plan. */
static void
sample(long now, int qlen, int running, int starting, int retiring,
    int idle)
{
	struct elastic_sample	 s;

	s.now_ms = now;
	s.qlen = qlen;
	s.running = running;
	s.starting = starting;
	s.retiring = retiring;
	s.idle = idle;
	elastic_decide(&el, &s, &plan);
}

/* Growth is sized by the connections waiting, less workers on the way. */
static void
test_grow_sizing(void)
{
	setup(2, 64, 10000);
	sample(-5, 62, 2, 0, 0, 0);
	CHECK(plan.start == 0);		/* waiting, or about to be taken? */
	CHECK(plan.next_ms == 5);	/* look again soon */
	sample(0, 62, 2, 0, 0, 0);
	CHECK(plan.start == 62);
	CHECK(plan.release == 0);
	sample(5, 62, 64, 62, 0, 0);
	CHECK(plan.start == 0);		/* all on their way */
	sample(10, 10, 20, 4, 0, 0);
	CHECK(plan.start == 6);
	sample(15, 5, 20, 0, 0, 2);
	CHECK(plan.start == 3);		/* two idle will take two */
	sample(20, 1, 20, 3, 0, -1);
	CHECK(plan.start == 0);
	sample(25, 7, 20, 0, 0, -1);
	CHECK(plan.start == 7);		/* idle unknown: all of it */
}

/* A connection seen once, taken by the next sample, grows nothing. */
static void
test_grow_not_on_a_glimpse(void)
{
	int	 i;

	setup(2, 64, 10000);
	for (i = 0; i < 100; i++) {
		sample(i * 10, 1, 4, 0, 0, -1);
		CHECK(plan.start == 0);
		CHECK(plan.next_ms == 5);
		sample(i * 10 + 5, 0, 4, 0, 0, -1);
		CHECK(plan.start == 0);
	}
	sample(1000, 1, 4, 0, 0, -1);
	sample(1005, 1, 4, 0, 0, -1);
	CHECK(plan.start == 1);		/* still there: it waits */
}

/* Never above -N (retiring workers count), never below -n. */
static void
test_bounds(void)
{
	setup(2, 64, 10000);
	sample(-5, 10, 60, 0, 0, 0);
	sample(0, 10, 60, 0, 0, 0);
	CHECK(plan.start == 4);
	sample(5, 10, 62, 0, 2, 0);
	CHECK(plan.start == 0);
	sample(10, 500, 64, 0, 0, 0);
	CHECK(plan.start == 0);
	sample(15, 0, 1, 0, 0, 1);
	CHECK(plan.start == 1);		/* one died: back to -n */
	sample(20, -1, 0, 0, 0, -1);
	CHECK(plan.start == 2);		/* even with the depth unknown */
	sample(25, -1, 2, 0, 0, -1);
	CHECK(plan.start == 0);		/* but no growth on it */
	setup(0, 1, 0);
	sample(-5, 3, 0, 0, 0, -1);
	sample(0, 3, 0, 0, 0, -1);
	CHECK(plan.start == 1);
	sample(5, 0, 0, 0, 0, -1);
	CHECK(plan.start == 0);
	setup(3, 3, 0);
	sample(0, 9, 3, 0, 0, 0);
	CHECK(plan.start == 0);
	CHECK(plan.release == 0);
}

/* Fast while connections wait or workers start, slow when quiet. */
static void
test_intervals(void)
{
	setup(2, 64, 10000);
	sample(0, 3, 2, 0, 0, 0);
	CHECK(plan.next_ms == 5);
	sample(5, 0, 5, 3, 0, 0);
	CHECK(plan.next_ms == 5);	/* growing */
	sample(10, 0, 5, 0, 0, 2);
	CHECK(plan.next_ms == 200);
	sample(210, 0, 2, 0, 0, 2);
	CHECK(plan.next_ms == 200);	/* at -n */
	sample(410, -1, 2, 0, 0, -1);
	CHECK(plan.next_ms == 200);	/* depth unknown */
	/* Above -n, quiet: wake when -w is up, not a slow tick later. */
	setup(2, 64, 1000);
	sample(0, 0, 4, 0, 0, 2);
	CHECK(plan.next_ms == 200);
	sample(850, 0, 4, 0, 0, 2);
	CHECK(plan.next_ms == 150);
	sample(998, 0, 4, 0, 0, 2);
	CHECK(plan.next_ms == 5);
	CHECK(plan.release == 0);
	sample(1003, 0, 4, 0, 0, 2);
	CHECK(plan.release == 1);
	CHECK(plan.next_ms == 200);
}

/* After -w quiet, one at a time, paced, down to -n and no further. */
static void
test_release(void)
{
	long	 t;

	setup(2, 64, 1000);
	for (t = 0; t < 1000; t += 200) {
		sample(t, 0, 5, 0, 0, 3);
		CHECK(plan.release == 0);
	}
	sample(1000, 0, 5, 0, 0, 3);
	CHECK(plan.release == 1);
	sample(1100, 0, 4, 0, 0, 2);
	CHECK(plan.release == 0);	/* paced: a slow interval apart */
	sample(1300, 0, 4, 0, 1, 2);
	CHECK(plan.release == 0);	/* the last one is not gone yet */
	sample(1400, 0, 4, 0, 0, 2);
	CHECK(plan.release == 1);
	sample(1600, 0, 3, 0, 0, 0);
	CHECK(plan.release == 0);	/* nobody idle: none to give up */
	sample(1800, 0, 3, 0, 0, 1);
	CHECK(plan.release == 0);	/* and -w starts over */
	sample(2599, 0, 3, 0, 0, 1);
	CHECK(plan.release == 0);
	sample(2600, 0, 3, 0, 0, 1);
	CHECK(plan.release == 1);
	for (t = 2800; t < 10000; t += 200) {
		sample(t, 0, 2, 0, 0, 2);
		CHECK(plan.release == 0);	/* never below -n */
		CHECK(plan.start == 0);
	}
	/* Idle unknown: the queue alone decides. */
	setup(1, 8, 500);
	sample(0, 0, 3, 0, 0, -1);
	sample(500, 0, 3, 0, 0, -1);
	CHECK(plan.release == 1);
	/* -w 0: at the first quiet sample. */
	setup(1, 8, 0);
	sample(0, 0, 3, 0, 0, 1);
	CHECK(plan.release == 1);
}

/* A connection waiting, an unknown depth or growth restart the wait. */
static void
test_no_release_while_queued(void)
{
	long	 t;

	setup(2, 64, 1000);
	sample(0, 0, 6, 0, 0, 4);
	sample(895, 1, 6, 0, 0, 0);
	sample(900, 1, 6, 0, 0, 0);
	CHECK(plan.release == 0);
	CHECK(plan.start == 1);
	sample(905, 0, 7, 1, 0, 1);
	CHECK(plan.release == 0);
	sample(1000, 0, 7, 0, 0, 2);
	sample(1500, 0, 7, 0, 0, 2);
	CHECK(plan.release == 0);
	sample(1904, 0, 7, 0, 0, 2);
	CHECK(plan.release == 0);	/* quiet since the start at 905 */
	sample(1905, 0, 7, 0, 0, 2);
	CHECK(plan.release == 1);
	/* While connections wait nothing is released, however long. */
	setup(2, 6, 1000);
	for (t = 0; t < 5000; t += 5) {
		sample(t, 4, 6, 0, 0, -1);
		CHECK(plan.release == 0);
		CHECK(plan.start == 0);
	}
	sample(5000, 0, 6, 0, 0, 2);
	CHECK(plan.release == 0);
	sample(5994, 0, 6, 0, 0, 2);
	CHECK(plan.release == 0);	/* -w from the last one waiting */
	sample(5995, 0, 6, 0, 0, 2);
	CHECK(plan.release == 1);
	setup(2, 6, 1000);
	sample(0, 0, 6, 0, 0, 2);
	for (t = 200; t < 3000; t += 200) {
		sample(t, -1, 6, 0, 0, 2);
		CHECK(plan.release == 0);	/* unknown is not quiet */
	}
	sample(3000, 0, 6, 0, 0, 2);
	CHECK(plan.release == 0);	/* -w from the last unknown */
}

int
main(void)
{
	test_grow_sizing();
	test_grow_not_on_a_glimpse();
	test_bounds();
	test_intervals();
	test_release();
	test_no_release_while_queued();
	printf("elastic_unit: %d checks, %d failed\n", checks, failures);
	return failures != 0;
}
