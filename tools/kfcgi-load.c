/* kfcgi-load: one FastCGI request (a health check) or a load test. */
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
 *	kfcgi-load [-Hv] [-c conns] [-d seconds] [-e name=value]
 *	    [-n requests] [-q query] [-t seconds] address
 *
 * Without -c, -d or -n: one request, its answer on standard output,
 * exit 0 only for a complete FastCGI answer.  With any of them: a load
 * test, printing one line of figures.  See kfcgi-load(1).
 *
 * Each connection carries one request: BEGIN_REQUEST (responder, the
 * connection not kept), PARAMS, an empty PARAMS and an empty STDIN.  The
 * answer is read up to END_REQUEST and the close.  One thread, one
 * poll(2) loop over up to -c connections.
 */

#include <sys/types.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <netinet/in.h>

#include <errno.h>
#include <limits.h>
#include <netdb.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
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
#define FCGI_MAXREC		65535

#define PROG		"kfcgi-load"
#define REQ_ID		1	/* the one request on each connection */
#define ERR_DELAY_MS	10	/* a failed slot waits this long */
#define DEF_SECONDS	10
#define MAX_SECONDS	86400
#define MAX_CONNS	4096
#define MAX_PARAMS	64
#define REQ_MAX		(4 * FCGI_HDRLEN + 8 + FCGI_MAXREC)
#define OUT_MAX		4096	/* -v in load mode shows this much */
#define NS		1000000000ULL
#define MS		1000000ULL

enum	cstate {
	C_WAIT,		/* no socket; a new one at wake */
	C_CONNECT,	/* connect(2) in progress */
	C_SEND,		/* writing the request */
	C_RECV,		/* reading records */
	C_CLOSE		/* END_REQUEST read, waiting for the close */
};

/* Why a request failed: counted apart in load mode. */
enum	fail {
	F_CONNECT,	/* socket, connect: refused, queue full, no file */
	F_IO,		/* reset, or closed before the answer was whole */
	F_PROTO,	/* not a FastCGI answer to our request */
	F_STATUS,	/* END_REQUEST, but not REQUEST_COMPLETE */
	F_TIMEOUT,	/* no whole answer within -t, or by the end */
	F_MAX
};

static const char *const fail_names[F_MAX] = {
	"connect", "io", "protocol", "status", "timeout"
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
	char		*out;		/* STDOUT kept, or NULL */
	size_t		 outlen;
	size_t		 outcap;
	size_t		 outmax;	/* keep no more than this */
};

struct	load {
	struct conn	*conns;
	struct pollfd	*pfd;		/* pfd[i] watches conns[i] */
	size_t		 nconns;
	struct sockaddr_storage addr;
	socklen_t	 addrlen;
	uint64_t	 timeout;	/* -t, in ns */
	uint64_t	 begin;
	uint64_t	 deadline;
	uint64_t	 finish;	/* when -n was reached */
	long long	 limit;		/* -n, or 0 */
	long long	 ok;
	long long	 fails[F_MAX];
	long long	 inflight;
	uint32_t	*lat;		/* microseconds, one per answer */
	size_t		 latlen;
	size_t		 latcap;
	int		 single;	/* one request, its answer printed */
	int		 verbose;
	int		 shown;		/* -v output done */
	enum fail	 why;		/* single: how it failed */
	int		 why_errno;
	struct conn	*answer;	/* single: the connection answered */
};

/* Options that only main() needs. */
struct	args {
	const char	*query;		/* -q */
	long long	 secs;		/* -d */
	long long	 conns;		/* -c */
	long long	 tmo;		/* -t */
	int		 headers;	/* -H */
};

static unsigned char	reqbuf[REQ_MAX];
static size_t		reqlen;
static const char	*params[MAX_PARAMS][2];
static size_t		nparams;

static void	die(const char *, ...)
		    __attribute__((noreturn, format(printf, 1, 2)));
static void	*xmalloc(size_t);
static uint64_t	now_ns(void);
static long long num(const char *, long long, long long, const char *);
static void	param_set(const char *, const char *);
static void	param_arg(char *);
static void	param_default(const char *, const char *);
static void	build_params(const char *);
static void	rec_header(int, size_t);
static void	param_len(size_t);
static void	param_put(const char *, const char *);
static void	request_build(void);
static void	addr_unix(struct load *, const char *);
static void	addr_inet(struct load *, const char *);
static void	addr_set(struct load *, const char *);
static void	load_init(struct load *, size_t);
static void	load_free(struct load *);
static void	conn_close(struct conn *);
static void	conn_fail(struct load *, struct conn *, enum fail, int);
static void	lat_add(struct load *, uint64_t);
static void	conn_done(struct load *, struct conn *);
static void	conn_start(struct load *, struct conn *, uint64_t);
static void	conn_connected(struct load *, struct conn *);
static void	conn_send(struct load *, struct conn *);
static size_t	take_header(struct conn *, const unsigned char *, size_t);
static int	header_check(struct conn *);
static void	out_add(struct conn *, const unsigned char *, size_t);
static size_t	take_body(struct load *, struct conn *,
		    const unsigned char *, size_t);
static enum fail record_end(struct conn *);
static int	feed(struct load *, struct conn *, const unsigned char *,
		    size_t);
static void	conn_recv(struct load *, struct conn *);
static void	conn_io(struct load *, struct conn *);
static int	may_start(const struct load *);
static void	start_due(struct load *, uint64_t);
static void	expire(struct load *, uint64_t);
static int	poll_timeout(const struct load *, uint64_t);
static void	poll_set(struct load *);
static int	finished(const struct load *, uint64_t);
static void	run(struct load *);
static int	lat_cmp(const void *, const void *);
static uint32_t	percentile(const struct load *, unsigned int);
static long long errors(const struct load *);
static void	report(struct load *, uint64_t);
static int	single_report(struct load *, const char *, int);
static const char *options(struct load *, struct args *, int, char *[]);

/* One line on standard error, then exit 2: a usage or set-up problem. */
static void
die(const char *fmt, ...)
{
	va_list	 ap;

	fprintf(stderr, "%s: ", PROG);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(2);
}

static void *
xmalloc(size_t len)
{
	void	*p;

	if ((p = malloc(len)) == NULL)
		die("out of memory");
	return p;
}

static uint64_t
now_ns(void)
{
	struct timespec	 ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * NS + (uint64_t)ts.tv_nsec;
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
		die("%s: %s: must be a number from %lld to %lld", what, s,
		    min, max);
	return v;
}

/* Set a parameter, replacing one of the same name. */
static void
param_set(const char *name, const char *value)
{
	size_t	 i;

	for (i = 0; i < nparams; i++)
		if (strcmp(params[i][0], name) == 0)
			break;
	if (i == MAX_PARAMS)
		die("-e: more than %d parameters", MAX_PARAMS);
	params[i][0] = name;
	params[i][1] = value;
	if (i == nparams)
		nparams++;
}

/* -e NAME=VALUE */
static void
param_arg(char *arg)
{
	char	*eq;

	if ((eq = strchr(arg, '=')) == NULL || eq == arg)
		die("-e: %s: not NAME=VALUE", arg);
	*eq = '\0';
	param_set(arg, eq + 1);
}

/* Set a parameter unless -e did. */
static void
param_default(const char *name, const char *value)
{
	size_t	 i;

	for (i = 0; i < nparams; i++)
		if (strcmp(params[i][0], name) == 0)
			return;
	param_set(name, value);
}

/* What a web server would pass for GET /?query, less the -e ones. */
static void
build_params(const char *query)
{
	static char	*uri;
	size_t		 len = strlen(query) + 3;

	uri = xmalloc(len);
	snprintf(uri, len, "/%s%s", *query != '\0' ? "?" : "", query);
	param_default("GATEWAY_INTERFACE", "CGI/1.1");
	param_default("SERVER_PROTOCOL", "HTTP/1.1");
	param_default("SERVER_SOFTWARE", PROG);
	param_default("REQUEST_METHOD", "GET");
	param_default("SCRIPT_NAME", "/");
	param_default("QUERY_STRING", query);
	param_default("REQUEST_URI", uri);
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

	if (nlen + vlen + 8 > sizeof(reqbuf) - reqlen - 3 * FCGI_HDRLEN)
		die("parameters: more than one record (%d bytes) holds",
		    FCGI_MAXREC);
	param_len(nlen);
	param_len(vlen);
	memcpy(reqbuf + reqlen, name, nlen);
	reqlen += nlen;
	memcpy(reqbuf + reqlen, value, vlen);
	reqlen += vlen;
}

/*
 * Every connection sends the same bytes, built once.  The parameters
 * must fit one PARAMS record.
 */
static void
request_build(void)
{
	size_t	 start, i, len;

	rec_header(FCGI_BEGIN_REQUEST, 8);
	memset(reqbuf + reqlen, 0, 8);
	reqbuf[reqlen + 1] = FCGI_RESPONDER;	/* flags 0: no keep-conn */
	reqlen += 8;
	rec_header(FCGI_PARAMS, 0);
	start = reqlen;
	for (i = 0; i < nparams; i++)
		param_put(params[i][0], params[i][1]);
	if ((len = reqlen - start) > FCGI_MAXREC)
		die("parameters: more than one record (%d bytes) holds",
		    FCGI_MAXREC);
	reqbuf[start - 4] = (unsigned char)(len >> 8);
	reqbuf[start - 3] = (unsigned char)len;
	rec_header(FCGI_PARAMS, 0);
	rec_header(FCGI_STDIN, 0);
}

static void
addr_unix(struct load *l, const char *path)
{
	struct sockaddr_un	*sun = (struct sockaddr_un *)&l->addr;

	if (*path == '\0')
		die("%s: empty socket path", path);
	if (strlen(path) >= sizeof(sun->sun_path))
		die("%s: longer than a socket path may be", path);
	sun->sun_family = AF_UNIX;
	memcpy(sun->sun_path, path, strlen(path) + 1);
	l->addrlen = sizeof(*sun);
}

/* HOST:PORT or [V6]:PORT, the first address the name resolves to. */
static void
addr_inet(struct load *l, const char *arg)
{
	struct addrinfo	 hints, *res;
	char		 host[NI_MAXHOST];
	const char	*port, *h = arg, *rb;
	size_t		 hlen;
	int		 rc;

	if (*h == '[') {
		if ((rb = strchr(h, ']')) == NULL || rb[1] != ':')
			die("%s: not [ADDRESS]:PORT", arg);
		h++;
		hlen = (size_t)(rb - h);
		port = rb + 2;
	} else {
		port = strrchr(h, ':') + 1;
		hlen = (size_t)(port - 1 - h);
		if (memchr(h, ':', hlen) != NULL)
			die("%s: an IPv6 address goes in brackets: "
			    "[ADDRESS]:PORT", arg);
	}
	if (hlen == 0 || hlen >= sizeof(host) || *port == '\0')
		die("%s: not HOST:PORT", arg);
	memcpy(host, h, hlen);
	host[hlen] = '\0';
	memset(&hints, 0, sizeof(hints));
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICSERV;
	if ((rc = getaddrinfo(host, port, &hints, &res)) != 0)
		die("%s: %s", arg, gai_strerror(rc));
	memcpy(&l->addr, res->ai_addr, res->ai_addrlen);
	l->addrlen = res->ai_addrlen;
	freeaddrinfo(res);
}

/* As kfcgi -s: TCP if there is a colon, unless it starts with unix:. */
static void
addr_set(struct load *l, const char *arg)
{
	memset(&l->addr, 0, sizeof(l->addr));
	if (strncmp(arg, "unix:", 5) == 0)
		addr_unix(l, arg + 5);
	else if (strchr(arg, ':') != NULL)
		addr_inet(l, arg);
	else
		addr_unix(l, arg);
}

static void
load_init(struct load *l, size_t nconns)
{
	size_t	 i;

	l->nconns = nconns;
	if ((l->conns = calloc(nconns, sizeof(*l->conns))) == NULL ||
	    (l->pfd = calloc(nconns, sizeof(*l->pfd))) == NULL)
		die("out of memory");
	for (i = 0; i < nconns; i++) {
		l->conns[i].fd = -1;
		l->conns[i].state = C_WAIT;
		if (l->single)
			l->conns[i].outmax = SIZE_MAX;
		else if (l->verbose)
			l->conns[i].outmax = OUT_MAX;
	}
	l->latcap = 4096;
	l->lat = xmalloc(l->latcap * sizeof(*l->lat));
}

static void
load_free(struct load *l)
{
	size_t	 i;

	for (i = 0; i < l->nconns; i++) {
		conn_close(&l->conns[i]);
		free(l->conns[i].out);
	}
	free(l->conns);
	free(l->pfd);
	free(l->lat);
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
conn_fail(struct load *l, struct conn *c, enum fail why, int error)
{
	conn_close(c);
	l->fails[why]++;
	l->inflight--;
	l->why = why;
	l->why_errno = error;
	c->wake = now_ns() + ERR_DELAY_MS * MS;
}

static void
lat_add(struct load *l, uint64_t us)
{
	uint32_t	*lat;

	if (l->latlen == l->latcap) {
		if ((lat = reallocarray(l->lat, 2 * l->latcap,
		    sizeof(*l->lat))) == NULL)
			die("out of memory");
		l->lat = lat;
		l->latcap *= 2;
	}
	l->lat[l->latlen++] = us > UINT32_MAX ? UINT32_MAX : (uint32_t)us;
}

static void
conn_done(struct load *l, struct conn *c)
{
	uint64_t	 t = now_ns();

	conn_close(c);
	l->ok++;
	l->inflight--;
	c->wake = t;
	if (l->limit > 0 && l->ok == l->limit)
		l->finish = t;
	lat_add(l, (t - c->start) / 1000);
	if (l->single)
		l->answer = c;
	else if (l->verbose && !l->shown) {
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
	c->fd = socket(l->addr.ss_family,
	    SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (c->fd == -1) {
		conn_fail(l, c, F_CONNECT, errno);
		return;
	}
	if (connect(c->fd, (struct sockaddr *)&l->addr, l->addrlen) == 0) {
		c->state = C_SEND;
		conn_send(l, c);
	} else if (errno == EINPROGRESS || errno == EINTR)
		c->state = C_CONNECT;
	else
		conn_fail(l, c, F_CONNECT, errno);
}

static void
conn_connected(struct load *l, struct conn *c)
{
	socklen_t	 len = sizeof(int);
	int		 error = 0;

	if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &error, &len) == -1)
		error = errno;
	if (error != 0) {
		conn_fail(l, c, F_CONNECT, error);
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
			conn_fail(l, c, F_IO, errno);
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

/* Keep STDOUT up to outmax bytes, growing the buffer as needed. */
static void
out_add(struct conn *c, const unsigned char *p, size_t len)
{
	char	*out;
	size_t	 cap;

	if (len > c->outmax - c->outlen)
		len = c->outmax - c->outlen;
	if (len > c->outcap - c->outlen) {
		cap = c->outcap == 0 ? 4096 : c->outcap;
		while (cap - c->outlen < len)
			cap *= 2;
		if (c->outmax < cap)
			cap = c->outmax;
		if ((out = realloc(c->out, cap)) == NULL)
			die("out of memory");
		c->out = out;
		c->outcap = cap;
	}
	memcpy(c->out + c->outlen, p, len);
	c->outlen += len;
}

static size_t
take_body(struct load *l, struct conn *c, const unsigned char *p,
    size_t len)
{
	size_t	 k = c->body < len ? c->body : len;

	if (c->hdr[1] == FCGI_END_REQUEST) {
		memcpy(c->end + c->endlen, p, k);
		c->endlen += k;
	} else if (c->hdr[1] == FCGI_STDOUT && c->outmax > 0)
		out_add(c, p, k);
	else if (c->hdr[1] == FCGI_STDERR && l->single)
		fwrite(p, 1, k, stderr);
	c->body -= k;
	return k;
}

/* F_MAX if all is well so far. */
static enum fail
record_end(struct conn *c)
{
	c->hdrlen = 0;
	if (c->hdr[1] != FCGI_END_REQUEST)
		return F_MAX;
	if (c->end[4] != FCGI_REQUEST_COMPLETE)
		return F_STATUS;
	c->state = C_CLOSE;
	return F_MAX;
}

/* Parse what arrived, record by record; F_MAX, or why it failed. */
static int
feed(struct load *l, struct conn *c, const unsigned char *p, size_t len)
{
	size_t		 k;
	enum fail	 f;

	while (len > 0) {
		if (c->state == C_CLOSE)
			return F_PROTO;	/* more after END_REQUEST */
		if (c->hdrlen < FCGI_HDRLEN) {
			k = take_header(c, p, len);
			if (c->hdrlen == FCGI_HDRLEN && header_check(c) == -1)
				return F_PROTO;
		} else if (c->body > 0)
			k = take_body(l, c, p, len);
		else {
			k = c->pad < len ? c->pad : len;
			c->pad -= k;
		}
		p += k;
		len -= k;
		if (c->hdrlen == FCGI_HDRLEN && c->body == 0 && c->pad == 0 &&
		    (f = record_end(c)) != F_MAX)
			return f;
	}
	return F_MAX;
}

static void
conn_recv(struct load *l, struct conn *c)
{
	unsigned char	 buf[16384];
	ssize_t		 n;
	int		 f;

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
		if (n <= 0) {	/* early EOF, reset */
			conn_fail(l, c, F_IO, n == 0 ? 0 : errno);
			return;
		}
		if ((f = feed(l, c, buf, (size_t)n)) != F_MAX) {
			conn_fail(l, c, (enum fail)f, 0);
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
	if (l->single)
		return l->ok + l->inflight + errors(l) == 0;
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

/* Requests older than -t fail. */
static void
expire(struct load *l, uint64_t t)
{
	size_t	 i;

	for (i = 0; i < l->nconns; i++)
		if (l->conns[i].state != C_WAIT &&
		    t - l->conns[i].start >= l->timeout)
			conn_fail(l, &l->conns[i], F_TIMEOUT, 0);
}

/* Until the deadline, a waiting slot or a -t expiry, in ms rounded up. */
static int
poll_timeout(const struct load *l, uint64_t t)
{
	const struct conn	*c;
	uint64_t		 until = l->deadline;
	size_t			 i;

	for (i = 0; i < l->nconns; i++) {
		c = &l->conns[i];
		if (c->state == C_WAIT && may_start(l) && c->wake < until)
			until = c->wake;
		if (c->state != C_WAIT && c->start + l->timeout < until)
			until = c->start + l->timeout;
	}
	if (until <= t)
		return 0;
	return (int)((until - t + MS - 1) / MS);
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

/* The deadline, -n answers, or the single request's outcome. */
static int
finished(const struct load *l, uint64_t t)
{
	if (t >= l->deadline || (l->limit > 0 && l->ok >= l->limit))
		return 1;
	return l->single && l->ok + errors(l) > 0;
}

static void
run(struct load *l)
{
	uint64_t	 t;
	size_t		 i;

	for (;;) {
		t = now_ns();
		if (finished(l, t))
			break;
		expire(l, t);
		start_due(l, t);
		if (finished(l, t))
			break;
		poll_set(l);
		if (poll(l->pfd, l->nconns, poll_timeout(l, t)) == -1) {
			if (errno == EINTR)
				continue;
			die("poll: %s", strerror(errno));
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

static long long
errors(const struct load *l)
{
	long long	 n = 0;
	int		 i;

	for (i = 0; i < F_MAX; i++)
		n += l->fails[i];
	return n;
}

/* The figures of a load test, one line of name=value words. */
static void
report(struct load *l, uint64_t end)
{
	double	 secs;
	int	 i;

	if (l->limit > 0)	/* unanswered at the end */
		l->fails[F_TIMEOUT] += l->inflight;
	if (l->finish != 0)
		end = l->finish;
	secs = (double)(end - l->begin) / NS;
	qsort(l->lat, l->latlen, sizeof(*l->lat), lat_cmp);
	printf("requests=%lld errors=%lld", l->ok, errors(l));
	for (i = 0; i < F_MAX; i++)
		printf(" %s_errors=%lld", fail_names[i], l->fails[i]);
	printf(" seconds=%.3f rps=%.1f p50_us=%u p90_us=%u p99_us=%u "
	    "max_us=%u\n", secs, secs > 0 ? (double)l->ok / secs : 0.0,
	    percentile(l, 50), percentile(l, 90), percentile(l, 99),
	    l->latlen > 0 ? l->lat[l->latlen - 1] : 0);
}

/*
 * The answer of a single request: the body after the CGI headers, or
 * all of it with -H.  Otherwise one line saying why there is none.
 */
static int
single_report(struct load *l, const char *addr, int headers)
{
	const struct conn	*c = l->answer;
	const char		*why[F_MAX] = {
		"cannot connect", "connection lost before the whole answer",
		"not a FastCGI answer", "request not complete",
		"no whole answer in time"
	};
	size_t			 off = 0, i;

	if (c == NULL) {
		if (errors(l) == 0)
			l->why = F_TIMEOUT;
		fprintf(stderr, "%s: %s: %s%s%s\n", PROG, addr, why[l->why],
		    l->why_errno != 0 ? ": " : "",
		    l->why_errno != 0 ? strerror(l->why_errno) : "");
		return 1;
	}
	for (i = 0; !headers && i < c->outlen; i++)
		if (c->out[i] == '\n' && ((i + 1 < c->outlen &&
		    c->out[i + 1] == '\n') || (i + 2 < c->outlen &&
		    c->out[i + 1] == '\r' && c->out[i + 2] == '\n'))) {
			off = i + (c->out[i + 1] == '\n' ? 2 : 3);
			break;
		}
	if (fwrite(c->out + off, 1, c->outlen - off, stdout) !=
	    c->outlen - off || fflush(stdout) == EOF) {
		fprintf(stderr, "%s: stdout: %s\n", PROG, strerror(errno));
		return 1;
	}
	return 0;
}

/* The command line, less the address; returns the address. */
static const char *
options(struct load *l, struct args *a, int argc, char *argv[])
{
	char	 opt[3] = "-?";
	int	 ch;

	opterr = 0;
	while ((ch = getopt(argc, argv, ":c:d:e:Hn:q:t:v")) != -1) {
		opt[1] = (char)optopt;
		switch (ch) {
		case 'c':
			a->conns = num(optarg, 1, MAX_CONNS, "-c");
			l->single = 0;
			break;
		case 'd':
			a->secs = num(optarg, 1, MAX_SECONDS, "-d");
			l->single = 0;
			break;
		case 'e':
			param_arg(optarg);
			break;
		case 'H':
			a->headers = 1;
			break;
		case 'n':
			l->limit = num(optarg, 1, LLONG_MAX, "-n");
			l->single = 0;
			break;
		case 'q':
			a->query = optarg;
			break;
		case 't':
			a->tmo = num(optarg, 1, MAX_SECONDS, "-t");
			break;
		case 'v':
			l->verbose = 1;
			break;
		case ':':
			die("%s: missing argument", opt);
		default:
			die("%s: unknown option", opt);
		}
	}
	if (argc - optind == 0)
		die("no address given");
	if (argc - optind > 1)
		die("%s: one address only", argv[optind + 1]);
	return argv[optind];
}

int
main(int argc, char *argv[])
{
	struct load	 l;
	struct args	 a = { "", DEF_SECONDS, 1, DEF_SECONDS, 0 };
	const char	*addr;
	int		 rc;

	memset(&l, 0, sizeof(l));
	l.single = 1;
	addr = options(&l, &a, argc, argv);
	signal(SIGPIPE, SIG_IGN);
	addr_set(&l, addr);
	build_params(a.query);
	request_build();
	if (l.single) {
		a.conns = 1;
		a.secs = a.tmo;
	}
	l.timeout = (uint64_t)a.tmo * NS;
	load_init(&l, (size_t)a.conns);
	l.begin = now_ns();
	l.deadline = l.begin + (uint64_t)a.secs * NS;
	run(&l);
	if (l.single)
		rc = single_report(&l, addr, a.headers);
	else {
		report(&l, now_ns());
		if (l.limit > 0)
			rc = l.ok == l.limit ? 0 : 1;
		else
			rc = l.ok > 0 ? 0 : 1;
	}
	load_free(&l);
	return rc;
}
