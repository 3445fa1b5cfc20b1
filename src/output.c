/* Worker output: a pipe per worker, read by the manager, logged by line. */
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

/*
 * Whatever a worker writes on descriptors 1 and 2 arrives here and is
 * logged as "worker PID: LINE".  Bounds: a line is cut at
 * OUTPUT_LINE_MAX bytes; each worker may log OUTPUT_RATE lines a second
 * with bursts of OUTPUT_BURST (a token bucket), and what is over is read
 * and dropped, then counted in one line.  One read per readable event,
 * so a flooding worker gets no more of the manager than any other event
 * and never waits long on a full pipe.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kfcgi.h"
#include "log.h"
#include "pool.h"
#include "output.h"

#define OUTPUT_READ	8192	/* bytes read per event */
#define OUTPUT_DRAIN	16	/* reads at most when the worker is gone */
#define DROP_REPORT_MS	1000	/* drops are counted in one line a second */

static void	output_read_cb(int, short, void *);
static void	output_drop_cb(int, short, void *);

/* Both ends close-on-exec; spawning puts the write end on 1 and 2. */
int
output_pipe(int fds[2])
{
	if (pipe2(fds, O_CLOEXEC) == -1)
		return -1;
	if (fcntl(fds[0], F_SETFL, O_NONBLOCK) == -1) {
		close(fds[0]);
		close(fds[1]);
		return -1;
	}
	return 0;
}

/* Take up a token if there is one: lines in the last second or so. */
static int
output_take(struct output *o)
{
	msec_t		 t = clock_ms();
	msec_t		 ms = t - o->refill;

	if (ms > 0) {
		o->refill = t;
		o->tokens += ms * OUTPUT_RATE;
		if (o->tokens > OUTPUT_BURST * 1000L)
			o->tokens = OUTPUT_BURST * 1000L;
	}
	if (o->tokens < 1000)
		return 0;
	o->tokens -= 1000;
	return 1;
}

static void
output_report_drops(struct output *o)
{
	if (o->dropped == 0)
		return;
	log_info("worker %d: %lu lines dropped (over %d a second)",
	    (int)o->pid, o->dropped, OUTPUT_RATE);
	o->dropped = 0;
}

/*
 * The first drop arms the timer that reports them.  It is made only now
 * and kept until the pipe's end: a thousand workers that never flood
 * should not cost the manager an event each.  Without memory, the next
 * drop tries again, and the pipe's end reports the count regardless.
 */
static void
output_drop(struct output *o)
{
	if (o->ev_drop == NULL) {
		if ((o->ev_drop = malloc(sizeof(*o->ev_drop))) == NULL)
			return;
		evtimer_set(o->ev_drop, output_drop_cb, o);
	}
	clock_timer_ms(o->ev_drop, DROP_REPORT_MS);
}

static void
output_drop_stop(struct output *o)
{
	if (o->ev_drop != NULL) {
		evtimer_del(o->ev_drop);
		free(o->ev_drop);
		o->ev_drop = NULL;
	}
	output_report_drops(o);
}

/* Log one line, or count it dropped. */
static void
output_line(struct output *o, char *s, size_t len, int cut)
{
	size_t	 i;

	if (len > 0 && s[len - 1] == '\r')
		len--;
	for (i = 0; i < len; i++)
		if ((unsigned char)s[i] < ' ' && s[i] != '\t')
			s[i] = '?';
	if (output_take(o))
		log_info("worker %d: %.*s%s", (int)o->pid, (int)len, s,
		    cut ? " [line cut]" : "");
	else if (o->dropped++ == 0 || o->ev_drop == NULL)
		output_drop(o);
}

/*
 * Carry the start of a line to the next read.  The buffer is allocated
 * only now: most workers write whole lines, and a thousand idle workers
 * should not cost the manager a kilobyte each.  1 if the line was cut.
 */
static int
output_carry(struct output *o, char *buf, size_t seg, int more)
{
	size_t	 room, take;

	if (o->line == NULL && (o->line = malloc(OUTPUT_LINE_MAX)) == NULL) {
		/* Rather a line cut short than none. */
		output_line(o, buf, seg < OUTPUT_LINE_MAX ? seg :
		    OUTPUT_LINE_MAX, 1);
		return 1;
	}
	room = OUTPUT_LINE_MAX - o->len;
	take = seg < room ? seg : room;
	memcpy(o->line + o->len, buf, take);
	o->len += take;
	if (take < seg || (!more && o->len == OUTPUT_LINE_MAX)) {
		output_line(o, o->line, o->len, 1);
		o->len = 0;
		return 1;
	}
	return 0;
}

/*
 * Split what was read into lines; long ones are cut and their rest
 * skipped.  A whole line in buf is logged from there, uncopied.
 */
static void
output_feed(struct output *o, char *buf, size_t n)
{
	char	*nl;
	size_t	 seg;

	while (n > 0) {
		nl = memchr(buf, '\n', n);
		seg = nl != NULL ? (size_t)(nl - buf) : n;
		if (o->cut)
			;
		else if (o->len == 0 && nl != NULL)
			output_line(o, buf, seg < OUTPUT_LINE_MAX ? seg :
			    OUTPUT_LINE_MAX, seg > OUTPUT_LINE_MAX);
		else if (output_carry(o, buf, seg, nl != NULL))
			o->cut = 1;
		else if (nl != NULL) {
			output_line(o, o->line, o->len, 0);
			o->len = 0;
		}
		if (nl == NULL)
			return;
		o->cut = 0;
		buf += seg + 1;
		n -= seg + 1;
	}
}

/* The pipe is done with: the last partial line, the drop count, close. */
static void
output_close(struct output *o)
{
	if (o->len > 0 && !o->cut)
		output_line(o, o->line, o->len, 0);
	free(o->line);
	o->line = NULL;
	o->len = 0;
	o->cut = 0;
	output_drop_stop(o);
	event_del(&o->ev);
	close(o->fd);
	o->fd = -1;
}

/* Read once; 1 if there may be more, 0 once closed or empty. */
static int
output_read(struct output *o)
{
	char	 buf[OUTPUT_READ];
	ssize_t	 n;

	n = read(o->fd, buf, sizeof(buf));
	if (n > 0) {
		output_feed(o, buf, (size_t)n);
		return 1;
	}
	if (n == -1 && errno == EINTR)
		return 1;
	if (n == -1 && errno == EAGAIN)
		return 0;
	if (n == -1)
		log_warn("worker %d: output", (int)o->pid);
	output_close(o);
	return 0;
}

static void
output_read_cb(int fd UNUSED, short events UNUSED, void *arg)
{
	output_read(arg);
}

static void
output_drop_cb(int fd UNUSED, short events UNUSED, void *arg)
{
	output_report_drops(arg);
}

/* Watch a worker's pipe; rfd -1 means it has none. */
void
output_start(struct output *o, int rfd, pid_t pid)
{
	o->fd = rfd;
	o->pid = pid;
	o->tokens = OUTPUT_BURST * 1000L;
	o->refill = clock_ms();
	o->dropped = 0;
	o->cut = 0;
	o->len = 0;
	o->line = NULL;
	o->ev_drop = NULL;
	if (rfd == -1)
		return;
	event_set(&o->ev, rfd, EV_READ | EV_PERSIST, output_read_cb, o);
	if (event_add(&o->ev, NULL) == -1)
		fatalx("worker %d: cannot watch its output", (int)pid);
}

/*
 * The worker is gone: read what it left in the pipe, boundedly (a
 * process it left behind may still be writing), and close.
 */
void
output_stop(struct output *o)
{
	int	 i;

	if (o->fd == -1) {
		output_drop_stop(o);
		return;
	}
	for (i = 0; i < OUTPUT_DRAIN && o->fd != -1; i++)
		if (!output_read(o))
			break;
	if (o->fd != -1)
		output_close(o);
}
