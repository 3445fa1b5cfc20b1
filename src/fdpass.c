/* fdpass.c: the channel protocol: cookie and descriptor out, cookie back. */
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
#include <sys/socket.h>

#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "kfcgi.h"

/*
 * Hand a connection to a worker: the cookie and the descriptor in ONE
 * message, since kcgi takes both from a single recvmsg().  Never blocks
 * and never raises SIGPIPE; returns 0 or -1 with errno.
 */
int
fdpass_send(int chan, uint64_t cookie, int fd)
{
	struct msghdr	 msg;
	struct iovec	 iov;
	struct cmsghdr	*cmsg;
	union {
		struct cmsghdr	hdr;
		unsigned char	buf[CMSG_SPACE(sizeof(int))];
	}		 cmsgbuf;
	ssize_t		 n;

	memset(&msg, 0, sizeof(msg));
	memset(&cmsgbuf, 0, sizeof(cmsgbuf));
	iov.iov_base = &cookie;
	iov.iov_len = sizeof(cookie);
	msg.msg_iov = &iov;
	msg.msg_iovlen = 1;
	msg.msg_control = cmsgbuf.buf;
	msg.msg_controllen = sizeof(cmsgbuf.buf);
	cmsg = CMSG_FIRSTHDR(&msg);
	cmsg->cmsg_level = SOL_SOCKET;
	cmsg->cmsg_type = SCM_RIGHTS;
	cmsg->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(cmsg), &fd, sizeof(int));

	do
		n = sendmsg(chan, &msg, MSG_DONTWAIT | MSG_NOSIGNAL);
	while (n == -1 && errno == EINTR);
	if (n == -1)
		return -1;
	if ((size_t)n != sizeof(cookie)) {
		/* A stream socket with room for 8 bytes takes all 8. */
		errno = EPROTO;
		return -1;
	}
	return 0;
}

/*
 * Read what a worker wrote back into buf (8 bytes), accumulating partial
 * reads in *len.  Returns bytes read, 0 on EOF, -1 with errno (EAGAIN
 * when nothing is there).  A read of more than the cookie's remaining
 * bytes is asked for, so that trailing garbage is seen, not left queued.
 */
ssize_t
fdpass_read_cookie(int chan, unsigned char *buf, size_t *len)
{
	unsigned char	 tmp[2 * sizeof(uint64_t)];
	ssize_t		 n;
	size_t		 want = sizeof(uint64_t) - *len;

	do
		n = recv(chan, tmp, want + 1, MSG_DONTWAIT);
	while (n == -1 && errno == EINTR);
	if (n <= 0)
		return n;
	return fdpass_take_cookie(buf, len, tmp, n);
}

/*
 * Add n bytes read from a channel to the cookie being returned in buf
 * (*len bytes so far).  More than the cookie's remaining bytes is a
 * protocol violation: -1 with EPROTO.  Returns n otherwise.
 */
ssize_t
fdpass_take_cookie(unsigned char *buf, size_t *len, const unsigned char *in,
    size_t n)
{
	if (n > sizeof(uint64_t) - *len) {
		errno = EPROTO;
		return -1;
	}
	memcpy(buf + *len, in, n);
	*len += n;
	return n;
}

/*
 * Did a worker that is gone leave this connection untouched?  1 if its
 * first bytes still waiting are a FastCGI record header of version 1 and
 * type BEGIN_REQUEST, which only the start of a request can be: another
 * worker can serve it from the beginning.  -1 if nothing has arrived (yet),
 * 0 otherwise: read in part, closed, or not FastCGI.
 */
int
fdpass_unread(int fd)
{
	unsigned char	 head[8];
	ssize_t		 n;

	n = recv(fd, head, sizeof(head), MSG_PEEK | MSG_DONTWAIT);
	if (n == -1 && (errno == EAGAIN || errno == EWOULDBLOCK))
		return -1;
	if (n >= 2)
		return head[0] == 1 && head[1] == 1;
	/* One byte of a header: the rest is on its way. */
	return n == 1 && head[0] == 1 ? -1 : 0;
}
