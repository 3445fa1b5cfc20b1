/*
 * Copyright (c) 2026 the kfcgi authors
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
 * Request layer of the worker library: a minimal FastCGI 1.0 responder
 * (specification of 29 April 1996).  One request at a time on a
 * connection; records are read one by one, unbuffered, so that nothing
 * of the next request is consumed with this one.
 */

#include <sys/types.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kfcgi_worker.h"

#define FCGI_VERSION_1		1
#define FCGI_HEADER_LEN		8
#define FCGI_MAX_CONTENT	65535

#define FCGI_BEGIN_REQUEST	1
#define FCGI_ABORT_REQUEST	2
#define FCGI_END_REQUEST	3
#define FCGI_PARAMS		4
#define FCGI_STDIN		5
#define FCGI_STDOUT		6
#define FCGI_DATA		8
#define FCGI_GET_VALUES		9
#define FCGI_GET_VALUES_RESULT	10
#define FCGI_UNKNOWN_TYPE	11

#define FCGI_KEEP_CONN		1
#define FCGI_RESPONDER		1

#define FCGI_REQUEST_COMPLETE	0
#define FCGI_CANT_MPX_CONN	1
#define FCGI_UNKNOWN_ROLE	3

/* What a record handler tells kfw_req_read() to do next. */
#define REQ_ERROR	(-1)	/* give up on the connection */
#define REQ_NONE	0	/* no request: the connection is done */
#define REQ_DONE	1	/* a whole request is in */
#define REQ_MORE	2	/* read the next record */

struct	rec {
	uint8_t		 type;
	uint16_t	 id;
	uint16_t	 clen;		/* content length */
	uint8_t		 plen;		/* padding length */
};

struct	buf {
	char		*p;
	size_t		 len;
	size_t		 cap;
};

/* A request while its records come in. */
struct	rstate {
	int		 fd;
	int		 active;	/* a request id is active */
	int		 paramsend;	/* FCGI_PARAMS stream ended */
	int		 stdinend;	/* FCGI_STDIN stream ended */
	struct buf	 params;
	struct buf	 in;
};

/* One name-value pair as it lies in a record body. */
struct	nv {
	const unsigned char *key;
	size_t		 keysz;
	const unsigned char *val;
	size_t		 valsz;
};

static int	would_block(int);
static int	wait_fd(int, short);
static int	read_full(int, void *, size_t);
static int	read_part(int, void *, size_t);
static int	write_all(int, struct iovec *, int);
static int	buf_reserve(struct buf *, size_t, size_t);
static void	rstate_reset(struct rstate *, struct kfw_req *);
static int	nv_len(const unsigned char **, const unsigned char *,
		    size_t *);
static int	nv_next(const unsigned char **, const unsigned char *,
		    struct nv *);
static int	params_parse(struct kfw_req *, const struct buf *);
static int	rec_head(int, struct rec *);
static int	rec_body(int, const struct rec *, void *);
static int	rec_skip(int, const struct rec *);
static int	rec_send(int, int, uint16_t, const void *, size_t);
static int	rec_end(int, uint16_t, uint32_t, uint8_t);
static int	on_record(struct rstate *, struct kfw_req *,
		    const struct rec *);
static int	on_begin(struct rstate *, struct kfw_req *,
		    const struct rec *);
static int	on_abort(struct rstate *, struct kfw_req *,
		    const struct rec *);
static int	on_stream(struct rstate *, struct kfw_req *,
		    const struct rec *);
static int	on_stream_end(struct rstate *, struct kfw_req *, int);
static int	on_get_values(int, const struct rec *);
static int	on_unknown(int, const struct rec *);

static const unsigned char zeroes[8];

/* Elsewhere than on Linux, EWOULDBLOCK may differ from EAGAIN. */
static int
would_block(int e)
{
#if EWOULDBLOCK != EAGAIN
	if (e == EWOULDBLOCK)
		return 1;
#endif
	return e == EAGAIN;
}

/*
 * The connection may be non-blocking, as when a manager's accept(2)
 * passed its flags on with the descriptor: wait rather than fail.
 */
static int
wait_fd(int fd, short events)
{
	struct pollfd	 pfd;

	pfd.fd = fd;
	pfd.events = events;
	while (poll(&pfd, 1, -1) == -1)
		if (errno != EINTR)
			return -1;
	return 0;
}

/*
 * Read exactly len bytes.  Returns 1 when done, 0 at end of file before
 * the first byte, -1 on error, with EPROTO for end of file part way.
 */
static int
read_full(int fd, void *p, size_t len)
{
	unsigned char	*b = p;
	size_t		 off;
	ssize_t		 n;

	for (off = 0; off < len; off += (size_t)n) {
		if ((n = read(fd, b + off, len - off)) == -1) {
			if (would_block(errno)) {
				if (wait_fd(fd, POLLIN) == -1)
					return -1;
			} else if (errno != EINTR)
				return -1;
			n = 0;
		} else if (n == 0) {
			if (off == 0)
				return 0;
			errno = EPROTO;
			return -1;
		}
	}
	return 1;
}

/* Inside a record, end of file at any point is a protocol error. */
static int
read_part(int fd, void *p, size_t len)
{
	int	 rc;

	if ((rc = read_full(fd, p, len)) == 1)
		return 0;
	if (rc == 0)
		errno = EPROTO;
	return -1;
}

/*
 * Write all of an I/O vector, which it consumes.  sendmsg(2) rather
 * than writev(2) so that a web server gone away is EPIPE, not a
 * SIGPIPE death; writev(2) for descriptors that are not sockets.
 */
static int
write_all(int fd, struct iovec *iov, int cnt)
{
	struct msghdr	 msg;
	ssize_t		 n;

	while (cnt > 0) {
		memset(&msg, 0, sizeof(msg));
		msg.msg_iov = iov;
		msg.msg_iovlen = (size_t)cnt;
		n = sendmsg(fd, &msg, MSG_NOSIGNAL);
		if (n == -1 && errno == ENOTSOCK)
			n = writev(fd, iov, cnt);
		if (n == -1 && would_block(errno)) {
			if (wait_fd(fd, POLLOUT) == -1)
				return -1;
			continue;
		}
		if (n == -1) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		for (; cnt > 0 && (size_t)n >= iov->iov_len; iov++, cnt--)
			n -= (ssize_t)iov->iov_len;
		if (cnt > 0) {
			iov->iov_base = (char *)iov->iov_base + n;
			iov->iov_len -= (size_t)n;
		}
	}
	return 0;
}

/* Make room for more bytes, never growing past max (plus a NUL). */
static int
buf_reserve(struct buf *b, size_t more, size_t max)
{
	size_t	 need, cap;
	char	*p;

	if (more > max - b->len) {
		errno = EMSGSIZE;
		return -1;
	}
	need = b->len + more + 1;
	if (need <= b->cap)
		return 0;
	cap = b->cap ? b->cap : 1024;
	while (cap < need)
		cap *= 2;
	if (cap > max + 1)
		cap = max + 1;
	if ((p = realloc(b->p, cap)) == NULL)
		return -1;
	b->p = p;
	b->cap = cap;
	return 0;
}

static void
rstate_reset(struct rstate *st, struct kfw_req *req)
{
	free(st->params.p);
	free(st->in.p);
	memset(&st->params, 0, sizeof(st->params));
	memset(&st->in, 0, sizeof(st->in));
	st->active = st->paramsend = st->stdinend = 0;
	kfw_req_free(req);
}

/* A name-value length: one byte, or four with the high bit set. */
static int
nv_len(const unsigned char **pp, const unsigned char *end, size_t *len)
{
	const unsigned char *p = *pp;

	if (p >= end)
		return -1;
	if (!(p[0] & 0x80)) {
		*len = p[0];
		*pp = p + 1;
		return 0;
	}
	if (end - p < 4)
		return -1;
	*len = (size_t)(p[0] & 0x7f) << 24 | (size_t)p[1] << 16 |
	    (size_t)p[2] << 8 | p[3];
	*pp = p + 4;
	return 0;
}

static int
nv_next(const unsigned char **pp, const unsigned char *end, struct nv *nv)
{
	const unsigned char *p = *pp;
	size_t		 left;

	if (nv_len(&p, end, &nv->keysz) == -1 ||
	    nv_len(&p, end, &nv->valsz) == -1)
		return -1;
	left = (size_t)(end - p);
	if (nv->keysz > left || nv->valsz > left - nv->keysz)
		return -1;
	nv->key = p;
	nv->val = p + nv->keysz;
	*pp = p + nv->keysz + nv->valsz;
	return 0;
}

/*
 * Unpack the pairs into one allocation: the array, then the strings.
 * Each pair spends at least two bytes on its lengths, which is room
 * enough for its two NULs, so the strings fit in the stream's size.
 */
static int
params_parse(struct kfw_req *req, const struct buf *b)
{
	const unsigned char *p, *end;
	struct kfw_param *kp;
	struct nv	 nv;
	size_t		 n, i;
	char		*s;

	p = (const unsigned char *)b->p;
	end = p + b->len;
	for (n = 0; p < end; n++)
		if (nv_next(&p, end, &nv) == -1) {
			errno = EPROTO;
			return -1;
		}
	if (n == 0)
		return 0;
	if ((kp = malloc(n * sizeof(*kp) + b->len)) == NULL)
		return -1;
	s = (char *)(kp + n);
	p = (const unsigned char *)b->p;
	for (i = 0; i < n; i++) {
		nv_next(&p, end, &nv);
		kp[i].key = s;
		kp[i].keysz = nv.keysz;
		memcpy(s, nv.key, nv.keysz);
		s += nv.keysz;
		*s++ = '\0';
		kp[i].val = s;
		kp[i].valsz = nv.valsz;
		memcpy(s, nv.val, nv.valsz);
		s += nv.valsz;
		*s++ = '\0';
	}
	req->params = kp;
	req->paramsz = n;
	return 0;
}

/* Returns 1 with a record header, 0 at end of file, -1 on error. */
static int
rec_head(int fd, struct rec *r)
{
	unsigned char	 h[FCGI_HEADER_LEN];
	int		 rc;

	if ((rc = read_full(fd, h, sizeof(h))) != 1)
		return rc;
	if (h[0] != FCGI_VERSION_1) {
		errno = EPROTO;
		return -1;
	}
	r->type = h[1];
	r->id = (uint16_t)(h[2] << 8 | h[3]);
	r->clen = (uint16_t)(h[4] << 8 | h[5]);
	r->plen = h[6];
	return 1;
}

/* Read the content into p (clen bytes) and drop the padding. */
static int
rec_body(int fd, const struct rec *r, void *p)
{
	unsigned char	 pad[255];

	if (read_part(fd, p, r->clen) == -1 ||
	    read_part(fd, pad, r->plen) == -1)
		return -1;
	return 0;
}

static int
rec_skip(int fd, const struct rec *r)
{
	unsigned char	 junk[512];
	size_t		 left, n;

	for (left = (size_t)r->clen + r->plen; left > 0; left -= n) {
		n = left < sizeof(junk) ? left : sizeof(junk);
		if (read_part(fd, junk, n) == -1)
			return -1;
	}
	return 0;
}

/* One record, padded to a multiple of eight as the specification likes. */
static int
rec_send(int fd, int type, uint16_t id, const void *p, size_t len)
{
	unsigned char	 h[FCGI_HEADER_LEN];
	struct iovec	 iov[3];
	size_t		 pad;

	pad = (8 - len % 8) % 8;
	h[0] = FCGI_VERSION_1;
	h[1] = (unsigned char)type;
	h[2] = id >> 8;
	h[3] = id & 0xff;
	h[4] = (unsigned char)(len >> 8);
	h[5] = len & 0xff;
	h[6] = (unsigned char)pad;
	h[7] = 0;
	iov[0].iov_base = h;
	iov[0].iov_len = sizeof(h);
	iov[1].iov_base = (void *)p;
	iov[1].iov_len = len;
	iov[2].iov_base = (void *)zeroes;
	iov[2].iov_len = pad;
	return write_all(fd, iov, 3);
}

static int
rec_end(int fd, uint16_t id, uint32_t app, uint8_t proto)
{
	unsigned char	 b[8];

	b[0] = app >> 24;
	b[1] = (app >> 16) & 0xff;
	b[2] = (app >> 8) & 0xff;
	b[3] = app & 0xff;
	b[4] = proto;
	b[5] = b[6] = b[7] = 0;
	return rec_send(fd, FCGI_END_REQUEST, id, b, sizeof(b));
}

static int
on_record(struct rstate *st, struct kfw_req *req, const struct rec *r)
{
	if (r->id == 0) {
		if (r->type == FCGI_GET_VALUES)
			return on_get_values(st->fd, r);
		return on_unknown(st->fd, r);
	}
	switch (r->type) {
	case FCGI_BEGIN_REQUEST:
		return on_begin(st, req, r);
	case FCGI_ABORT_REQUEST:
		return on_abort(st, req, r);
	case FCGI_PARAMS:
	case FCGI_STDIN:
		return on_stream(st, req, r);
	case FCGI_DATA:
		/* Only filters read it; a responder lets it go. */
		return rec_skip(st->fd, r) == -1 ? REQ_ERROR : REQ_MORE;
	default:
		return on_unknown(st->fd, r);
	}
}

/*
 * A second request while one is active cannot be served: this library
 * does not multiplex, which FCGI_GET_VALUES also says.
 */
static int
on_begin(struct rstate *st, struct kfw_req *req, const struct rec *r)
{
	unsigned char	 b[8];
	unsigned int	 role;

	if (r->clen != sizeof(b)) {
		errno = EPROTO;
		return REQ_ERROR;
	}
	if (rec_body(st->fd, r, b) == -1)
		return REQ_ERROR;
	if (st->active && r->id == req->id) {
		errno = EPROTO;
		return REQ_ERROR;
	}
	if (st->active)
		return rec_end(st->fd, r->id, 0, FCGI_CANT_MPX_CONN) == -1 ?
		    REQ_ERROR : REQ_MORE;
	role = (unsigned int)b[0] << 8 | b[1];
	if (role != FCGI_RESPONDER) {
		if (rec_end(st->fd, r->id, 0, FCGI_UNKNOWN_ROLE) == -1)
			return REQ_ERROR;
		return (b[2] & FCGI_KEEP_CONN) ? REQ_MORE : REQ_NONE;
	}
	st->active = 1;
	req->id = r->id;
	req->keep_conn = (b[2] & FCGI_KEEP_CONN) != 0;
	return REQ_MORE;
}

/*
 * The web server gave up on the request before it was whole: end it,
 * and go on reading only if the connection is to be kept.
 */
static int
on_abort(struct rstate *st, struct kfw_req *req, const struct rec *r)
{
	int	 keep;

	if (rec_skip(st->fd, r) == -1)
		return REQ_ERROR;
	if (!st->active || r->id != req->id)
		return REQ_MORE;
	keep = req->keep_conn;
	if (rec_end(st->fd, r->id, 0, FCGI_REQUEST_COMPLETE) == -1)
		return REQ_ERROR;
	rstate_reset(st, req);
	return keep ? REQ_MORE : REQ_NONE;
}

/* Records of a request id that is not active are ignored (spec 3.3). */
static int
on_stream(struct rstate *st, struct kfw_req *req, const struct rec *r)
{
	struct buf	*b;
	size_t		 max;
	int		 ended;

	if (!st->active || r->id != req->id)
		return rec_skip(st->fd, r) == -1 ? REQ_ERROR : REQ_MORE;
	if (r->type == FCGI_PARAMS) {
		b = &st->params;
		ended = st->paramsend;
		max = KFW_PARAMS_MAX;
	} else {
		b = &st->in;
		ended = st->stdinend;
		max = KFW_STDIN_MAX;
	}
	if (ended) {
		errno = EPROTO;
		return REQ_ERROR;
	}
	if (buf_reserve(b, r->clen, max) == -1 ||
	    rec_body(st->fd, r, b->p + b->len) == -1)
		return REQ_ERROR;
	b->len += r->clen;
	if (r->clen == 0)
		return on_stream_end(st, req, r->type);
	return REQ_MORE;
}

/* An empty record closes a stream; both closed make the request whole. */
static int
on_stream_end(struct rstate *st, struct kfw_req *req, int type)
{
	if (type == FCGI_PARAMS) {
		st->paramsend = 1;
		if (params_parse(req, &st->params) == -1)
			return REQ_ERROR;
	} else
		st->stdinend = 1;
	if (!st->paramsend || !st->stdinend)
		return REQ_MORE;
	st->in.p[st->in.len] = '\0';
	req->in = st->in.p;
	req->insz = st->in.len;
	memset(&st->in, 0, sizeof(st->in));
	return REQ_DONE;
}

/*
 * Answer only the variables known, each once: one connection, one
 * request, no multiplexing.  The query is at most 64 KiB, kept off the
 * stack for the sake of threads with small ones.
 */
static int
on_get_values(int fd, const struct rec *r)
{
	static const char *const names[] = {
		"FCGI_MAX_CONNS", "FCGI_MAX_REQS", "FCGI_MPXS_CONNS"
	};
	static const char values[] = { '1', '1', '0' };
	unsigned char	*in, out[64];
	const unsigned char *p;
	struct nv	 nv;
	size_t		 i, len, seen;
	int		 rc;

	if ((in = malloc((size_t)r->clen + 1)) == NULL)
		return REQ_ERROR;
	rc = rec_body(fd, r, in) == -1 ? REQ_ERROR : REQ_MORE;
	for (p = in, len = seen = 0; rc == REQ_MORE && p < in + r->clen; ) {
		if (nv_next(&p, in + r->clen, &nv) == -1) {
			errno = EPROTO;
			rc = REQ_ERROR;
			break;
		}
		for (i = 0; i < sizeof(values); i++) {
			if ((seen & (1U << i)) ||
			    nv.keysz != strlen(names[i]) ||
			    memcmp(nv.key, names[i], nv.keysz) != 0)
				continue;
			seen |= 1U << i;
			out[len++] = (unsigned char)nv.keysz;
			out[len++] = 1;
			memcpy(out + len, nv.key, nv.keysz);
			len += nv.keysz;
			out[len++] = (unsigned char)values[i];
		}
	}
	free(in);
	if (rc == REQ_MORE &&
	    rec_send(fd, FCGI_GET_VALUES_RESULT, 0, out, len) == -1)
		rc = REQ_ERROR;
	return rc;
}

static int
on_unknown(int fd, const struct rec *r)
{
	unsigned char	 b[8];

	if (rec_skip(fd, r) == -1)
		return REQ_ERROR;
	memset(b, 0, sizeof(b));
	b[0] = r->type;
	return rec_send(fd, FCGI_UNKNOWN_TYPE, 0, b, sizeof(b)) == -1 ?
	    REQ_ERROR : REQ_MORE;
}

/*
 * Read records until one whole request is in: begun, its parameters
 * and its standard input each ended by an empty record.
 */
int
kfw_req_read(int fd, struct kfw_req *req)
{
	struct rstate	 st;
	struct rec	 r;
	int		 rc, serr;

	memset(req, 0, sizeof(*req));
	memset(&st, 0, sizeof(st));
	st.fd = fd;
	do {
		if ((rc = rec_head(fd, &r)) == 1)
			rc = on_record(&st, req, &r);
		else if (rc == 0 && st.active) {
			errno = EPROTO;
			rc = REQ_ERROR;
		}
	} while (rc == REQ_MORE);
	if (rc == REQ_DONE) {
		free(st.params.p);
		return 1;
	}
	serr = errno;
	rstate_reset(&st, req);
	errno = serr;
	return rc == REQ_NONE ? 0 : -1;
}

const char *
kfw_req_param(const struct kfw_req *req, const char *name)
{
	size_t	 i, len;

	len = strlen(name);
	for (i = 0; i < req->paramsz; i++)
		if (req->params[i].keysz == len &&
		    memcmp(req->params[i].key, name, len) == 0)
			return req->params[i].val;
	return NULL;
}

/*
 * An empty FCGI_STDOUT record would end the stream, so writing nothing
 * sends nothing.
 */
int
kfw_req_write(int fd, const struct kfw_req *req, const void *p, size_t len)
{
	const unsigned char *b = p;
	size_t		 n;

	while (len > 0) {
		n = len < FCGI_MAX_CONTENT ? len : FCGI_MAX_CONTENT;
		if (rec_send(fd, FCGI_STDOUT, req->id, b, n) == -1)
			return -1;
		b += n;
		len -= n;
	}
	return 0;
}

/* End the output stream and the request in one write. */
int
kfw_req_end(int fd, const struct kfw_req *req, int appstatus)
{
	unsigned char	 b[2 * FCGI_HEADER_LEN + 8];
	struct iovec	 iov;
	uint32_t	 app = (uint32_t)appstatus;

	memset(b, 0, sizeof(b));
	b[0] = b[8] = FCGI_VERSION_1;
	b[1] = FCGI_STDOUT;
	b[9] = FCGI_END_REQUEST;
	b[2] = b[10] = req->id >> 8;
	b[3] = b[11] = req->id & 0xff;
	b[13] = 8;
	b[16] = app >> 24;
	b[17] = (app >> 16) & 0xff;
	b[18] = (app >> 8) & 0xff;
	b[19] = app & 0xff;
	b[20] = FCGI_REQUEST_COMPLETE;
	iov.iov_base = b;
	iov.iov_len = sizeof(b);
	return write_all(fd, &iov, 1);
}

void
kfw_req_free(struct kfw_req *req)
{
	if (req == NULL)
		return;
	free(req->params);
	free(req->in);
	memset(req, 0, sizeof(*req));
}
