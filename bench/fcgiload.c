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
 * fcgiload: a FastCGI load generator for a Unix socket.
 *
 *	fcgiload [-v] [-c conns] [-d seconds] [-n requests] [-q query] sockpath
 *
 * Up to conns connections are open at once, one request on each:
 * BEGIN_REQUEST (responder, connection not kept), PARAMS, an empty
 * PARAMS and an empty STDIN.  The answer is read up to END_REQUEST and
 * the close, then the slot opens a new connection.  A connection that
 * fails (refused, listen queue full, reset, closed early, a malformed
 * answer) counts as an error and its slot tries again after ERR_DELAY_MS.
 * One thread and one poll(2) loop.
 *
 * The run stops after -d seconds (10 by default) or once -n requests
 * have been answered, whichever comes first.  With -n, requests still
 * unanswered at the deadline count as errors.  It then prints
 *
 *	requests=N errors=E seconds=S rps=R p50_us=P p99_us=Q
 *
 * where latency runs from connect(2) to the close.  With -v the standard
 * output of the first answer is copied to standard error.  The exit
 * status is 0 if all -n requests, or without -n at least one, were
 * answered, and 1 otherwise.
 */

#include <sys/types.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <err.h>
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define FCGI_VERSION		1
#define FCGI_BEGIN_REQUEST	1
#define FCGI_END_REQUEST	3
#define FCGI_PARAMS		4
#define FCGI_STDIN		5
#define FCGI_STDOUT		6
#define FCGI_STDERR		7
#define FCGI_RESPONDER		1
#define FCGI_REQUEST_COMPLETE	0
#define FCGI_HDRLEN		8
#define FCGI_ENDLEN		8

#define REQ_ID		1	/* the one request on each connection */
#define SCRIPT		"/fcgiload"
#define ERR_DELAY_MS	10	/* a failed slot waits this long */
#define DEF_SECONDS	10
#define MAX_SECONDS	86400
#define MAX_CONNS	4096
#define MAX_QUERY	8192
#define REQ_MAX		(4 * MAX_QUERY)
#define OUT_MAX		4096	/* -v shows this much of the answer */
#define NS		1000000000ULL

enum	cstate {
	C_WAIT,		/* no socket; a new one at wake */
	C_CONNECT,	/* connect(2) in progress */
	C_SEND,		/* writing the request */
	C_RECV,		/* reading records */
	C_CLOSE		/* END_REQUEST read, waiting for the close */
};

struct	conn {
	enum cstate	 state;
	int		 fd;
	size_t		 sent;		/* bytes of the request written */
	uint64_t	 start;		/* when connect(2) was called */
	uint64_t	 wake;		/* when a waiting slot goes again */
	unsigned char	 hdr[FCGI_HDRLEN];	/* the current record's */
	size_t		 hdrlen;
	size_t		 body;		/* its content bytes still to come */
	size_t		 pad;		/* its padding bytes still to come */
	unsigned char	 end[FCGI_ENDLEN];	/* END_REQUEST body */
	size_t		 endlen;
	char		*out;		/* with -v: STDOUT, cut at OUT_MAX */
	size_t		 outlen;
};

struct	load {
	struct conn	*conns;
	struct pollfd	*pfd;		/* pfd[i] watches conns[i] */
	size_t		 nconns;
	struct sockaddr_un sun;
	uint64_t	 begin;
	uint64_t	 deadline;
	uint64_t	 finish;	/* when -n was reached */
	long long	 limit;		/* -n, or 0 */
	long long	 ok;
	long long	 errors;
	long long	 inflight;
	uint32_t	*lat;		/* microseconds, one per answer */
	size_t		 latlen;
	size_t		 latcap;
	int		 verbose;
	int		 shown;		/* -v output done */
};

static unsigned char	reqbuf[REQ_MAX];
static size_t		reqlen;

static uint64_t	now_ns(void);
static void	usage(void) __attribute__((noreturn));
static long long num(const char *, long long, long long, const char *);
static void	rec_header(int, size_t);
static void	param_len(size_t);
static void	param_put(const char *, const char *);
static void	request_build(const char *);
static void	sockaddr_set(struct sockaddr_un *, const char *);
static void	load_init(struct load *, size_t);
static void	conn_close(struct conn *);
static void	conn_fail(struct load *, struct conn *);
static void	conn_done(struct load *, struct conn *);
static void	conn_start(struct load *, struct conn *, uint64_t);
static void	conn_connected(struct load *, struct conn *);
static void	conn_send(struct load *, struct conn *);
static size_t	take_header(struct conn *, const unsigned char *, size_t);
static int	header_check(struct conn *);
static size_t	take_body(struct conn *, const unsigned char *, size_t);
static int	record_end(struct conn *);
static int	feed(struct conn *, const unsigned char *, size_t);
static void	conn_recv(struct load *, struct conn *);
static void	conn_io(struct load *, struct conn *);
static int	may_start(const struct load *);
static void	start_due(struct load *, uint64_t);
static int	poll_timeout(const struct load *, uint64_t);
static void	poll_set(struct load *);
static void	run(struct load *);
static int	lat_cmp(const void *, const void *);
static uint32_t	percentile(const struct load *, unsigned int);
static void	report(struct load *, uint64_t);

static uint64_t
now_ns(void)
{
	struct timespec	 ts;

	if (clock_gettime(CLOCK_MONOTONIC, &ts) == -1)
		err(1, "clock_gettime");
	return (uint64_t)ts.tv_sec * NS + (uint64_t)ts.tv_nsec;
}

static void
usage(void)
{
	fprintf(stderr, "usage: fcgiload [-v] [-c conns] [-d seconds] "
	    "[-n requests] [-q query] sockpath\n");
	exit(1);
}

/* A decimal number from min to max, or exit naming the option. */
static long long
num(const char *s, long long min, long long max, const char *what)
{
	char		*end;
	long long	 v;

	errno = 0;
	v = strtoll(s, &end, 10);
	if (*s == '\0' || *end != '\0' || errno == ERANGE ||
	    v < min || v > max)
		errx(1, "%s: %s: must be from %lld to %lld", what, s, min, max);
	return v;
}

/* Append a record header without padding. */
static void
rec_header(int type, size_t len)
{
	unsigned char	*p = reqbuf + reqlen;

	p[0] = FCGI_VERSION;
	p[1] = (unsigned char)type;
	p[2] = 0;
	p[3] = REQ_ID;
	p[4] = (unsigned char)(len >> 8);
	p[5] = (unsigned char)len;
	p[6] = 0;
	p[7] = 0;
	reqlen += FCGI_HDRLEN;
}

/* A name-value pair length: one byte below 128, four otherwise. */
static void
param_len(size_t len)
{
	if (len < 128) {
		reqbuf[reqlen++] = (unsigned char)len;
		return;
	}
	reqbuf[reqlen++] = (unsigned char)((len >> 24) | 0x80);
	reqbuf[reqlen++] = (unsigned char)(len >> 16);
	reqbuf[reqlen++] = (unsigned char)(len >> 8);
	reqbuf[reqlen++] = (unsigned char)len;
}

static void
param_put(const char *name, const char *value)
{
	size_t	 nlen = strlen(name), vlen = strlen(value);

	param_len(nlen);
	param_len(vlen);
	memcpy(reqbuf + reqlen, name, nlen);
	reqlen += nlen;
	memcpy(reqbuf + reqlen, value, vlen);
	reqlen += vlen;
}

/*
 * Every connection sends the same bytes, built once.  The query is
 * limited so that the parameters fit one PARAMS record.
 */
static void
request_build(const char *query)
{
	char	 uri[sizeof(SCRIPT) + 1 + MAX_QUERY];
	size_t	 params;

	snprintf(uri, sizeof(uri), "%s%s%s", SCRIPT,
	    *query != '\0' ? "?" : "", query);
	rec_header(FCGI_BEGIN_REQUEST, 8);
	memset(reqbuf + reqlen, 0, 8);
	reqbuf[reqlen + 1] = FCGI_RESPONDER;	/* flags 0: no keep-conn */
	reqlen += 8;
	rec_header(FCGI_PARAMS, 0);
	params = reqlen;
	param_put("REQUEST_METHOD", "GET");
	param_put("SCRIPT_NAME", SCRIPT);
	param_put("QUERY_STRING", query);
	param_put("REQUEST_URI", uri);
	reqbuf[params - 4] = (unsigned char)((reqlen - params) >> 8);
	reqbuf[params - 3] = (unsigned char)(reqlen - params);
	rec_header(FCGI_PARAMS, 0);
	rec_header(FCGI_STDIN, 0);
}

static void
sockaddr_set(struct sockaddr_un *sun, const char *path)
{
	memset(sun, 0, sizeof(*sun));
	sun->sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sun->sun_path))
		errx(1, "%s: socket path too long", path);
	memcpy(sun->sun_path, path, strlen(path));
}

static void
load_init(struct load *l, size_t nconns)
{
	size_t	 i;

	l->nconns = nconns;
	if ((l->conns = calloc(nconns, sizeof(*l->conns))) == NULL ||
	    (l->pfd = calloc(nconns, sizeof(*l->pfd))) == NULL)
		err(1, NULL);
	for (i = 0; i < nconns; i++) {
		l->conns[i].fd = -1;
		l->conns[i].state = C_WAIT;
		if (l->verbose &&
		    (l->conns[i].out = malloc(OUT_MAX)) == NULL)
			err(1, NULL);
	}
	l->latcap = 4096;
	if ((l->lat = calloc(l->latcap, sizeof(*l->lat))) == NULL)
		err(1, NULL);
}

static void
conn_close(struct conn *c)
{
	if (c->fd != -1)
		close(c->fd);
	c->fd = -1;
	c->state = C_WAIT;
}

static void
conn_fail(struct load *l, struct conn *c)
{
	conn_close(c);
	l->errors++;
	l->inflight--;
	c->wake = now_ns() + ERR_DELAY_MS * 1000000ULL;
}

static void
conn_done(struct load *l, struct conn *c)
{
	uint64_t	 t = now_ns(), us = (t - c->start) / 1000;
	uint32_t	*lat;

	conn_close(c);
	l->ok++;
	l->inflight--;
	c->wake = t;
	if (l->limit > 0 && l->ok == l->limit)
		l->finish = t;
	if (l->latlen == l->latcap) {
		if ((lat = reallocarray(l->lat, 2 * l->latcap,
		    sizeof(*l->lat))) == NULL)
			err(1, NULL);
		l->lat = lat;
		l->latcap *= 2;
	}
	l->lat[l->latlen++] = us > UINT32_MAX ? UINT32_MAX : (uint32_t)us;
	if (l->verbose && !l->shown) {
		fwrite(c->out, 1, c->outlen, stderr);
		l->shown = 1;
	}
}

static void
conn_start(struct load *l, struct conn *c, uint64_t t)
{
	c->sent = c->hdrlen = c->body = c->pad = c->endlen = c->outlen = 0;
	c->start = t;
	l->inflight++;
	c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
	    0);
	if (c->fd == -1) {
		conn_fail(l, c);
		return;
	}
	if (connect(c->fd, (struct sockaddr *)&l->sun, sizeof(l->sun)) == 0) {
		c->state = C_SEND;
		conn_send(l, c);
	} else if (errno == EINPROGRESS || errno == EINTR)
		c->state = C_CONNECT;
	else
		conn_fail(l, c);	/* ECONNREFUSED, EAGAIN, ENOENT */
}

static void
conn_connected(struct load *l, struct conn *c)
{
	socklen_t	 len = sizeof(int);
	int		 error = 0;

	if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &error, &len) == -1 ||
	    error != 0) {
		conn_fail(l, c);
		return;
	}
	c->state = C_SEND;
	conn_send(l, c);
}

static void
conn_send(struct load *l, struct conn *c)
{
	ssize_t	 n;

	while (c->sent < reqlen) {
		n = send(c->fd, reqbuf + c->sent, reqlen - c->sent,
		    MSG_NOSIGNAL);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		if (n == -1) {
			conn_fail(l, c);
			return;
		}
		c->sent += (size_t)n;
	}
	c->state = C_RECV;
}

static size_t
take_header(struct conn *c, const unsigned char *p, size_t len)
{
	size_t	 k = FCGI_HDRLEN - c->hdrlen;

	if (k > len)
		k = len;
	memcpy(c->hdr + c->hdrlen, p, k);
	c->hdrlen += k;
	return k;
}

/* Only STDOUT, STDERR and a well-formed END_REQUEST may come. */
static int
header_check(struct conn *c)
{
	int	 type = c->hdr[1];

	c->body = (size_t)c->hdr[4] << 8 | c->hdr[5];
	c->pad = c->hdr[6];
	if (c->hdr[0] != FCGI_VERSION || c->hdr[2] != 0 ||
	    c->hdr[3] != REQ_ID)
		return -1;
	if (type == FCGI_END_REQUEST)
		return c->body == FCGI_ENDLEN ? 0 : -1;
	return type == FCGI_STDOUT || type == FCGI_STDERR ? 0 : -1;
}

static size_t
take_body(struct conn *c, const unsigned char *p, size_t len)
{
	size_t	 k = c->body < len ? c->body : len, keep;

	if (c->hdr[1] == FCGI_END_REQUEST) {
		memcpy(c->end + c->endlen, p, k);
		c->endlen += k;
	} else if (c->hdr[1] == FCGI_STDOUT && c->out != NULL) {
		keep = OUT_MAX - c->outlen < k ? OUT_MAX - c->outlen : k;
		memcpy(c->out + c->outlen, p, keep);
		c->outlen += keep;
	}
	c->body -= k;
	return k;
}

static int
record_end(struct conn *c)
{
	c->hdrlen = 0;
	if (c->hdr[1] != FCGI_END_REQUEST)
		return 0;
	if (c->end[4] != FCGI_REQUEST_COMPLETE)
		return -1;
	c->state = C_CLOSE;
	return 0;
}

/* Parse what arrived, record by record; -1 if it is not an answer. */
static int
feed(struct conn *c, const unsigned char *p, size_t len)
{
	size_t	 k;

	while (len > 0) {
		if (c->state == C_CLOSE)
			return -1;	/* more after END_REQUEST */
		if (c->hdrlen < FCGI_HDRLEN) {
			k = take_header(c, p, len);
			if (c->hdrlen == FCGI_HDRLEN && header_check(c) == -1)
				return -1;
		} else if (c->body > 0)
			k = take_body(c, p, len);
		else {
			k = c->pad < len ? c->pad : len;
			c->pad -= k;
		}
		p += k;
		len -= k;
		if (c->hdrlen == FCGI_HDRLEN && c->body == 0 && c->pad == 0 &&
		    record_end(c) == -1)
			return -1;
	}
	return 0;
}

static void
conn_recv(struct load *l, struct conn *c)
{
	unsigned char	 buf[8192];
	ssize_t		 n;

	for (;;) {
		n = read(c->fd, buf, sizeof(buf));
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		if (n == 0 && c->state == C_CLOSE) {
			conn_done(l, c);
			return;
		}
		if (n <= 0 || feed(c, buf, (size_t)n) == -1) {
			conn_fail(l, c);	/* early EOF, reset, junk */
			return;
		}
	}
}

static void
conn_io(struct load *l, struct conn *c)
{
	switch (c->state) {
	case C_CONNECT:
		conn_connected(l, c);
		break;
	case C_SEND:
		conn_send(l, c);
		break;
	case C_RECV:
	case C_CLOSE:
		conn_recv(l, c);
		break;
	default:
		break;
	}
}

/* With -n, start no more requests than are still needed. */
static int
may_start(const struct load *l)
{
	return l->limit == 0 || l->ok + l->inflight < l->limit;
}

static void
start_due(struct load *l, uint64_t t)
{
	size_t	 i;

	for (i = 0; i < l->nconns && may_start(l); i++)
		if (l->conns[i].state == C_WAIT && l->conns[i].wake <= t)
			conn_start(l, &l->conns[i], t);
}

/* Until the deadline or the next waiting slot, in rounded-up ms. */
static int
poll_timeout(const struct load *l, uint64_t t)
{
	uint64_t	 until = l->deadline;
	size_t		 i;

	for (i = 0; i < l->nconns && may_start(l); i++)
		if (l->conns[i].state == C_WAIT && l->conns[i].wake < until)
			until = l->conns[i].wake;
	if (until <= t)
		return 0;
	return (int)((until - t + 999999) / 1000000);
}

static void
poll_set(struct load *l)
{
	size_t	 i;

	for (i = 0; i < l->nconns; i++) {
		l->pfd[i].fd = l->conns[i].fd;
		l->pfd[i].revents = 0;
		switch (l->conns[i].state) {
		case C_CONNECT:
		case C_SEND:
			l->pfd[i].events = POLLOUT;
			break;
		default:
			l->pfd[i].events = POLLIN;
			break;
		}
	}
}

static void
run(struct load *l)
{
	uint64_t	 t;
	size_t		 i;

	for (;;) {
		t = now_ns();
		if (t >= l->deadline || (l->limit > 0 && l->ok >= l->limit))
			break;
		start_due(l, t);
		poll_set(l);
		if (poll(l->pfd, l->nconns, poll_timeout(l, t)) == -1) {
			if (errno == EINTR)
				continue;
			err(1, "poll");
		}
		for (i = 0; i < l->nconns; i++)
			if (l->pfd[i].revents != 0 && l->conns[i].fd != -1)
				conn_io(l, &l->conns[i]);
	}
}

static int
lat_cmp(const void *a, const void *b)
{
	uint32_t	 x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

/* Nearest rank; the latencies are sorted. */
static uint32_t
percentile(const struct load *l, unsigned int pct)
{
	size_t	 rank;

	if (l->latlen == 0)
		return 0;
	rank = (l->latlen * pct + 99) / 100;
	return l->lat[rank > 0 ? rank - 1 : 0];
}

static void
report(struct load *l, uint64_t end)
{
	double	 secs;
	size_t	 i;

	if (l->limit > 0 && l->ok < l->limit)
		l->errors += l->inflight;	/* unanswered in time */
	for (i = 0; i < l->nconns; i++)
		conn_close(&l->conns[i]);
	if (l->finish != 0)
		end = l->finish;
	secs = (double)(end - l->begin) / NS;
	qsort(l->lat, l->latlen, sizeof(*l->lat), lat_cmp);
	printf("requests=%lld errors=%lld seconds=%.3f rps=%.1f "
	    "p50_us=%u p99_us=%u\n", l->ok, l->errors, secs,
	    secs > 0 ? (double)l->ok / secs : 0.0, percentile(l, 50),
	    percentile(l, 99));
}

int
main(int argc, char *argv[])
{
	struct load	 l;
	const char	*query = "";
	long long	 secs = DEF_SECONDS, conns = 1;
	int		 ch;

	memset(&l, 0, sizeof(l));
	while ((ch = getopt(argc, argv, "c:d:n:q:v")) != -1)
		switch (ch) {
		case 'c':
			conns = num(optarg, 1, MAX_CONNS, "-c");
			break;
		case 'd':
			secs = num(optarg, 1, MAX_SECONDS, "-d");
			break;
		case 'n':
			l.limit = num(optarg, 1, LLONG_MAX, "-n");
			break;
		case 'q':
			query = optarg;
			if (strlen(query) > MAX_QUERY)
				errx(1, "-q: longer than %d bytes", MAX_QUERY);
			break;
		case 'v':
			l.verbose = 1;
			break;
		default:
			usage();
		}
	argc -= optind;
	argv += optind;
	if (argc != 1)
		usage();

	signal(SIGPIPE, SIG_IGN);
	sockaddr_set(&l.sun, argv[0]);
	request_build(query);
	load_init(&l, (size_t)conns);
	l.begin = now_ns();
	l.deadline = l.begin + (uint64_t)secs * NS;
	run(&l);
	report(&l, now_ns());
	if (l.limit > 0)
		return l.ok == l.limit ? 0 : 1;
	return l.ok > 0 ? 0 : 1;
}
