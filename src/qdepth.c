/* qdepth.c: the listen queue depth (sock_diag, TCP_INFO; stub elsewhere). */
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
#include <sys/types.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "qdepth.h"

#ifdef __linux__

#include <netinet/in.h>
#include <netinet/tcp.h>

#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/sock_diag.h>
#include <linux/unix_diag.h>

#define QD_LISTEN_STATE	10	/* TCP_LISTEN, as unix_diag names states */
#define QD_MAXSTALE	4	/* old answers skipped in one read */

/*
 * A Unix listener is looked up by inode, one request and one answer of
 * a few dozen bytes on a netlink socket opened here, before the jail.
 * A TCP listener answers TCP_INFO directly: one getsockopt(2).
 */
struct qdepth {
	int		 sock;		/* the listening socket */
	int		 family;	/* AF_UNIX, AF_INET, AF_INET6 */
	int		 nl;		/* NETLINK_SOCK_DIAG, -1 for TCP */
	unsigned int	 seq;
	struct {
		struct nlmsghdr		nlh;
		struct unix_diag_req	req;
	}		 msg;		/* prepared once, seq changes */
};

static int
qd_family(int fd)
{
	struct sockaddr_storage	 ss;
	socklen_t		 len = sizeof(ss);
	int			 on;

	if (getsockname(fd, (struct sockaddr *)&ss, &len) == -1)
		return -1;
	len = sizeof(on);
	if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &on, &len) == -1)
		return -1;
	if (!on) {
		errno = EINVAL;
		return -1;
	}
	return ss.ss_family;
}

static int
qd_open_unix(struct qdepth *q)
{
	struct stat	 st;

	if (fstat(q->sock, &st) == -1)
		return -1;
	q->nl = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC,
	    NETLINK_SOCK_DIAG);
	if (q->nl == -1)
		return -1;
	memset(&q->msg, 0, sizeof(q->msg));
	q->msg.nlh.nlmsg_len = sizeof(q->msg);
	q->msg.nlh.nlmsg_type = SOCK_DIAG_BY_FAMILY;
	q->msg.nlh.nlmsg_flags = NLM_F_REQUEST;
	q->msg.req.sdiag_family = AF_UNIX;
	q->msg.req.udiag_states = 1U << QD_LISTEN_STATE;
	q->msg.req.udiag_ino = (unsigned int)st.st_ino;
	q->msg.req.udiag_show = UDIAG_SHOW_RQLEN;
	q->msg.req.udiag_cookie[0] = (unsigned int)-1;
	q->msg.req.udiag_cookie[1] = (unsigned int)-1;
	return 0;
}

struct qdepth *
qdepth_open(int fd)
{
	struct qdepth	*q;
	int		 family, serr;

	if ((family = qd_family(fd)) == -1)
		return NULL;
	if (family != AF_UNIX && family != AF_INET && family != AF_INET6) {
		errno = EAFNOSUPPORT;
		return NULL;
	}
	if ((q = calloc(1, sizeof(*q))) == NULL)
		return NULL;
	q->sock = fd;
	q->family = family;
	q->nl = -1;
	if (family == AF_UNIX && qd_open_unix(q) == -1) {
		serr = errno;
		free(q);
		errno = serr;
		return NULL;
	}
	return q;
}

/*
 * The answer to our request: 0 with the figures, -1 on an error, 1 if
 * the datagram answered an earlier request (one whose answer was not
 * read: it failed half-way).
 */
static int
qd_parse_unix(const struct qdepth *q, const char *buf, size_t n,
    int *len, int *max)
{
	const struct nlmsghdr		*h;
	const struct nlmsgerr		*e;
	const struct unix_diag_msg	*m;
	const struct rtattr		*a;
	const struct unix_diag_rqlen	*rq;
	int				 rest, ours = 0;

	for (h = (const struct nlmsghdr *)buf; NLMSG_OK(h, n);
	    h = NLMSG_NEXT(h, n)) {
		if (h->nlmsg_seq != q->seq)
			continue;
		ours = 1;
		if (h->nlmsg_type == NLMSG_ERROR) {
			e = NLMSG_DATA(h);
			errno = h->nlmsg_len >= NLMSG_LENGTH(sizeof(*e)) &&
			    e->error < 0 ? -e->error : EPROTO;
			return -1;
		}
		if (h->nlmsg_type != SOCK_DIAG_BY_FAMILY ||
		    h->nlmsg_len < NLMSG_LENGTH(sizeof(*m)))
			break;
		m = NLMSG_DATA(h);
		rest = (int)(h->nlmsg_len - NLMSG_LENGTH(sizeof(*m)));
		for (a = (const struct rtattr *)(m + 1); RTA_OK(a, rest);
		    a = RTA_NEXT(a, rest)) {
			if (a->rta_type != UNIX_DIAG_RQLEN ||
			    RTA_PAYLOAD(a) < sizeof(*rq))
				continue;
			rq = RTA_DATA(a);
			*len = (int)rq->udiag_rqueue;
			*max = (int)rq->udiag_wqueue;
			return 0;
		}
		break;
	}
	if (!ours)
		return 1;
	errno = EPROTO;
	return -1;
}

static int
qd_read_unix(struct qdepth *q, int *len, int *max)
{
	struct sockaddr_nl	 nladdr;
	long			 buf[1024 / sizeof(long)];
	ssize_t			 n;
	int			 i, rc = 1;

	memset(&nladdr, 0, sizeof(nladdr));
	nladdr.nl_family = AF_NETLINK;
	q->msg.nlh.nlmsg_seq = ++q->seq;
	if (sendto(q->nl, &q->msg, sizeof(q->msg), 0,
	    (struct sockaddr *)&nladdr, sizeof(nladdr)) == -1)
		return -1;
	/* The kernel answers before sendto() returns: never wait. */
	for (i = 0; i < QD_MAXSTALE && rc == 1; i++) {
		if ((n = recv(q->nl, buf, sizeof(buf), MSG_DONTWAIT)) == -1)
			return -1;
		rc = qd_parse_unix(q, (const char *)buf, (size_t)n, len, max);
	}
	if (rc == 1)
		errno = EPROTO;
	return rc == 0 ? 0 : -1;
}

/* For a listener, Linux reports the accept queue and the backlog here. */
static int
qd_read_tcp(const struct qdepth *q, int *len, int *max)
{
	struct tcp_info	 ti;
	socklen_t	 sl = sizeof(ti);

	memset(&ti, 0, sizeof(ti));
	if (getsockopt(q->sock, IPPROTO_TCP, TCP_INFO, &ti, &sl) == -1)
		return -1;
	if (ti.tcpi_state != QD_LISTEN_STATE) {
		errno = EINVAL;
		return -1;
	}
	*len = (int)ti.tcpi_unacked;
	*max = (int)ti.tcpi_sacked;
	return 0;
}

int
qdepth_read(struct qdepth *q, int *len, int *max)
{
	int	 l, m, rc;

	if (q == NULL) {
		errno = EINVAL;
		return -1;
	}
	if (q->family == AF_UNIX)
		rc = qd_read_unix(q, &l, &m);
	else
		rc = qd_read_tcp(q, &l, &m);
	if (rc == -1)
		return -1;
	if (len != NULL)
		*len = l;
	if (max != NULL)
		*max = m;
	return 0;
}

void
qdepth_close(struct qdepth *q)
{
	if (q == NULL)
		return;
	if (q->nl != -1)
		close(q->nl);
	free(q);
}

#else /* !__linux__ */

/*
 * No portable way to read the queue: the elastic pool falls back to the
 * documented behaviour.  (FreeBSD's SO_LISTENQLEN would do; not tried.)
 */
struct qdepth *
qdepth_open(int fd)
{
	(void)fd;
	errno = EOPNOTSUPP;
	return NULL;
}

int
qdepth_read(struct qdepth *q, int *len, int *max)
{
	(void)q;
	(void)len;
	(void)max;
	errno = EOPNOTSUPP;
	return -1;
}

void
qdepth_close(struct qdepth *q)
{
	(void)q;
}

#endif /* __linux__ */
