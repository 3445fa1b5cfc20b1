/* status.c: the status listener (-S): bounded HTTP connections on libevent. */
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
 * Every connection is bounded: STATUS_TIMEOUT_MS for the whole exchange,
 * HTTP_HEAD_MAX bytes read, one answer of at most STATUS_OUT_MAX bytes,
 * then close.  At most STATUS_MAXCONN at once: a new connection pushes
 * out the oldest one that is not being answered, and when every one is
 * being answered accepting pauses until one ends.  Out of descriptors,
 * the same; with none to push out, accepting pauses STATUS_PAUSE_MS.
 * Nothing blocks, nothing spins.
 */
#include <sys/queue.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include <errno.h>
#include <event.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "kfcgi.h"
#include "http.h"
#include "log.h"
#include "pool.h"		/* clock_*() */
#include "status.h"

#define STATUS_MAXCONN		32
#define STATUS_TIMEOUT_MS	5000	/* whole exchange */
#define STATUS_LINGER_MS	1000	/* reading what follows the answer */
#define STATUS_LINGER_MAX	65536	/* bytes read then */
#define STATUS_OUT_MAX		(4 << 20)
#define STATUS_PAUSE_MS		100	/* after accept failed */
#define STATUS_ACCEPT_BATCH	16
#define STATUS_WARN_MS		60000	/* between two accept warnings */

enum cstate {
	C_READ,
	C_WRITE,
	C_LINGER
};

struct sconn {
	int			 fd;
	enum cstate		 state;
	struct event		 ev;
	msec_t			 deadline;
	struct http_req		 req;
	size_t			 inlen;
	size_t			 drained;
	char			 hdr[512];
	size_t			 hdrlen;
	struct sbuf		 body;
	size_t			 bodylen;	/* to send: 0 for HEAD */
	size_t			 sent;
	TAILQ_ENTRY(sconn)	 all;
	TAILQ_ENTRY(sconn)	 oldest;	/* not answering: may go */
	char			 in[HTTP_HEAD_MAX];
};

TAILQ_HEAD(sconnq, sconn);

static struct {
	int				 fd;
	const struct stats_source	*src;
	struct event			 ev_accept;
	struct event			 ev_resume;
	int				 paused;
	int				 nconn;
	struct sconnq			 conns;
	struct sconnq			 evictable;
	msec_t				 last_warn;
	int				 warned;
} st = { .fd = -1 };

static void	 conn_cb(int, short, void *);
static void	 conn_read(struct sconn *);
static void	 conn_write(struct sconn *);
static void	 conn_drain(struct sconn *);

static void
accept_pause(void)
{
	if (!st.paused)
		event_del(&st.ev_accept);
	st.paused = 1;
}

static void
accept_resume(void)
{
	if (!st.paused || st.fd == -1 || evtimer_pending(&st.ev_resume, NULL))
		return;
	st.paused = 0;
	event_add(&st.ev_accept, NULL);
}

static void
conn_close(struct sconn *c)
{
	event_del(&c->ev);
	close(c->fd);
	if (c->state != C_WRITE)
		TAILQ_REMOVE(&st.evictable, c, oldest);
	TAILQ_REMOVE(&st.conns, c, all);
	sbuf_free(&c->body);
	free(c);
	st.nconn--;
	accept_resume();
}

/* Wait for what, within the connection's deadline. */
static void
conn_wait(struct sconn *c, short what)
{
	struct timeval	 tv;
	msec_t		 ms = c->deadline - clock_ms();

	if (ms <= 0) {
		log_debug("status: connection timed out");
		conn_close(c);
		return;
	}
	tv.tv_sec = ms / 1000;
	tv.tv_usec = (ms % 1000) * 1000;
	event_del(&c->ev);
	event_set(&c->ev, c->fd, what, conn_cb, c);
	event_add(&c->ev, &tv);
}

static void
conn_cb(int fd UNUSED, short events, void *arg)
{
	struct sconn	*c = arg;

	if (events & EV_TIMEOUT) {
		log_debug("status: connection timed out");
		conn_close(c);
		return;
	}
	switch (c->state) {
	case C_READ:
		conn_read(c);
		break;
	case C_WRITE:
		conn_write(c);
		break;
	case C_LINGER:
		conn_drain(c);
		break;
	}
}

static void
conn_head(struct sconn *c, int code, const char *type, size_t len)
{
	char		 date[64];
	struct tm	 tm;
	time_t		 t = time(NULL);
	int		 n;

	if (gmtime_r(&t, &tm) == NULL ||
	    strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S GMT", &tm) == 0)
		snprintf(date, sizeof(date), "Thu, 01 Jan 1970 00:00:00 GMT");
	n = snprintf(c->hdr, sizeof(c->hdr), "HTTP/1.1 %d %s\r\n"
	    "Date: %s\r\n"
	    "Server: kfcgi\r\n"
	    "Content-Type: %s\r\n"
	    "Content-Length: %zu\r\n"
	    "Cache-Control: no-store\r\n"
	    "%s"
	    "Connection: close\r\n\r\n",
	    code, http_reason(code), date, type, len,
	    code == 405 ? "Allow: GET, HEAD\r\n" : "");
	c->hdrlen = n > 0 && (size_t)n < sizeof(c->hdr) ? (size_t)n : 0;
}

static int
path_is(const struct sconn *c, const char *path)
{
	size_t	 len = strlen(path);

	return c->req.pathlen == len &&
	    memcmp(c->in + c->req.path, path, len) == 0;
}

/* 200 with the figures, or 404; the body's type. */
static const char *
conn_route(struct sconn *c, int *code)
{
	if (path_is(c, "/metrics")) {
		status_metrics(&c->body, st.src);
		return "text/plain; version=0.0.4; charset=utf-8";
	}
	if (path_is(c, "/status")) {
		status_json(&c->body, st.src);
		return "application/json";
	}
	*code = 404;
	return NULL;
}

/* The request is read, or has failed: answer it. */
static void
conn_answer(struct sconn *c, enum http_result rc)
{
	const char	*type = NULL;
	int		 code = http_status(rc), head = 0;

	sbuf_init(&c->body, STATUS_OUT_MAX);
	/* Past the request line, the method is known even if the rest fails. */
	head = c->req.lines > 0 && c->req.method == HTTP_HEAD;
	if (code == 200)
		type = conn_route(c, &code);
	if (c->body.failed) {
		log_warnx("status: answer: too large or out of memory");
		sbuf_free(&c->body);
		sbuf_init(&c->body, STATUS_OUT_MAX);
		code = 500;
	}
	if (code != 200) {
		type = NULL;
		sbuf_printf(&c->body, "%d %s\n", code, http_reason(code));
	}
	log_debug("status: %d %s", code, http_reason(code));
	conn_head(c, code, type != NULL ? type : "text/plain; charset=utf-8",
	    c->body.len);
	c->bodylen = head ? 0 : c->body.len;
	c->state = C_WRITE;
	TAILQ_REMOVE(&st.evictable, c, oldest);
	conn_write(c);
}

static void
conn_read(struct sconn *c)
{
	enum http_result	 rc;
	ssize_t			 n;

	for (;;) {
		n = read(c->fd, c->in + c->inlen, sizeof(c->in) - c->inlen);
		if (n > 0) {
			c->inlen += n;
			rc = http_parse(&c->req, c->in, c->inlen);
			if (rc != HTTP_MORE) {
				conn_answer(c, rc);
				return;
			}
		} else if (n == 0) {
			/* Half a request, then the end: it cannot grow. */
			if (c->inlen > 0)
				conn_answer(c, HTTP_BAD);
			else
				conn_close(c);
			return;
		} else if (errno == EAGAIN || errno == EWOULDBLOCK) {
			conn_wait(c, EV_READ);
			return;
		} else if (errno != EINTR) {
			conn_close(c);
			return;
		}
	}
}

/* The answer is out: read what else comes, a while, then close. */
static void
conn_linger(struct sconn *c)
{
	msec_t		 t = clock_ms();

	sbuf_free(&c->body);
	(void)shutdown(c->fd, SHUT_WR);
	if (c->deadline - t > STATUS_LINGER_MS)
		c->deadline = t + STATUS_LINGER_MS;
	c->state = C_LINGER;
	TAILQ_INSERT_TAIL(&st.evictable, c, oldest);
	accept_resume();
	conn_drain(c);
}

static void
conn_write(struct sconn *c)
{
	struct iovec	 iov[2];
	struct msghdr	 msg;
	size_t		 off;
	ssize_t		 n;

	while (c->sent < c->hdrlen + c->bodylen) {
		memset(&msg, 0, sizeof(msg));
		msg.msg_iov = iov;
		if (c->sent < c->hdrlen) {
			iov[0].iov_base = c->hdr + c->sent;
			iov[0].iov_len = c->hdrlen - c->sent;
			msg.msg_iovlen++;
		}
		off = c->sent > c->hdrlen ? c->sent - c->hdrlen : 0;
		if (off < c->bodylen) {
			iov[msg.msg_iovlen].iov_base = c->body.p + off;
			iov[msg.msg_iovlen].iov_len = c->bodylen - off;
			msg.msg_iovlen++;
		}
		n = sendmsg(c->fd, &msg, MSG_NOSIGNAL);
		if (n >= 0)
			c->sent += n;
		else if (errno == EAGAIN || errno == EWOULDBLOCK) {
			conn_wait(c, EV_WRITE);
			return;
		} else if (errno != EINTR) {
			conn_close(c);
			return;
		}
	}
	conn_linger(c);
}

static void
conn_drain(struct sconn *c)
{
	ssize_t	 n;

	for (;;) {
		n = read(c->fd, c->in, sizeof(c->in));
		if (n > 0) {
			c->drained += n;
			if (c->drained > STATUS_LINGER_MAX) {
				conn_close(c);
				return;
			}
		} else if (n == -1 && (errno == EAGAIN ||
		    errno == EWOULDBLOCK)) {
			conn_wait(c, EV_READ);
			return;
		} else if (n == 0 || errno != EINTR) {
			conn_close(c);
			return;
		}
	}
}

static void
conn_new(int fd)
{
	struct sconn	*c;

	if ((c = calloc(1, sizeof(*c))) == NULL) {
		log_warn("status: connection");
		close(fd);
		return;
	}
	c->fd = fd;
	c->state = C_READ;
	c->deadline = clock_ms() + STATUS_TIMEOUT_MS;
	http_init(&c->req);
	event_set(&c->ev, fd, EV_READ, conn_cb, c);
	TAILQ_INSERT_TAIL(&st.conns, c, all);
	TAILQ_INSERT_TAIL(&st.evictable, c, oldest);
	st.nconn++;
	/* Most clients have sent their request already. */
	conn_read(c);
}

/* Out of descriptors or memory, most likely: wait, do not spin. */
static void
accept_failed(void)
{
	msec_t		 t = clock_ms();

	if (!st.warned || t - st.last_warn >=
	    STATUS_WARN_MS) {
		log_warn("status: accept");
		st.last_warn = t;
		st.warned = 1;
	}
	accept_pause();
	clock_timer_ms(&st.ev_resume, STATUS_PAUSE_MS);
}

static void
accept_cb(int fd UNUSED, short events UNUSED, void *arg UNUSED)
{
	int	 i, cfd;

	for (i = 0; i < STATUS_ACCEPT_BATCH; i++) {
		if (st.nconn >= STATUS_MAXCONN && TAILQ_EMPTY(&st.evictable)) {
			accept_pause();
			return;
		}
		cfd = accept4(st.fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
		if (cfd == -1 && (errno == EINTR || errno == ECONNABORTED))
			continue;
		if (cfd == -1 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		if (cfd == -1 && (errno == EMFILE || errno == ENFILE) &&
		    !TAILQ_EMPTY(&st.evictable)) {
			/* Our descriptors are the limit: make room. */
			log_debug("status: out of descriptors: closing the "
			    "oldest connection");
			conn_close(TAILQ_FIRST(&st.evictable));
			continue;
		}
		if (cfd == -1) {
			accept_failed();
			return;
		}
		if (st.nconn >= STATUS_MAXCONN) {
			log_debug("status: %d connections: closing the oldest",
			    st.nconn);
			conn_close(TAILQ_FIRST(&st.evictable));
		}
		conn_new(cfd);
	}
}

static void
resume_cb(int fd UNUSED, short events UNUSED, void *arg UNUSED)
{
	accept_resume();
}

void
status_start(int fd, const struct stats_source *src)
{
	int	 fl;

	if ((fl = fcntl(fd, F_GETFL)) == -1 ||
	    fcntl(fd, F_SETFL, fl | O_NONBLOCK) == -1)
		fatal("status: non-blocking");
	st.fd = fd;
	st.src = src;
	st.nconn = 0;
	st.paused = 0;
	TAILQ_INIT(&st.conns);
	TAILQ_INIT(&st.evictable);
	event_set(&st.ev_accept, fd, EV_READ | EV_PERSIST, accept_cb, NULL);
	evtimer_set(&st.ev_resume, resume_cb, NULL);
	event_add(&st.ev_accept, NULL);
}

/* Close every connection and the listener; the socket file stays. */
void
status_stop(void)
{
	struct sconn	*c;
	int		 fd = st.fd;

	if (fd == -1)
		return;
	st.fd = -1;
	event_del(&st.ev_accept);
	evtimer_del(&st.ev_resume);
	while ((c = TAILQ_FIRST(&st.conns)) != NULL)
		conn_close(c);
	close(fd);
}
