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
 * Connection layer of the worker library.  A worker either accept(2)s on
 * the listening socket it inherits as descriptor 0 (FastCGI 1.0, section
 * 3.2) or, under the FastCGI Extensions for Management Control, receives
 * each accepted connection from the manager on a socketpair channel named
 * by FCGI_LISTENSOCK_DESCRIPTORS, as an 8-byte cookie plus one descriptor,
 * and hands the cookie back when done with the connection.
 *
 * SIGTERM is deferred as kcgi does: blocked while a request is served,
 * unblocked only while waiting for the next connection.
 *
 * In classic mode on Linux each worker waits in its own epoll instance
 * holding descriptor 0 with EPOLLEXCLUSIVE, so that a connection wakes
 * one idle worker instead of all of them; elsewhere, or on a kernel that
 * refuses the flag, ppoll(2) on descriptor 0 wakes them all.
 */

#include <sys/types.h>
#include <sys/socket.h>
#include <sys/uio.h>
#ifdef __linux__
#include <sys/epoll.h>
#endif

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kfcgi_worker.h"

#define KFW_LISTENSOCK	0	/* FCGI_LISTENSOCK_FILENO */
#define KFW_ENV		"FCGI_LISTENSOCK_DESCRIPTORS"
#define KFW_MAXFDS	4	/* room for a misbehaving manager's extras */
#define KFW_AGAIN	(-2)	/* nothing to hand out yet: wait again */
#define KFW_TERMWAIT	2	/* SIGTERM came while waiting */
#define KFW_DRAIN	4	/* connections taken after such a SIGTERM */

#ifdef EPOLLEXCLUSIVE
#define KFW_EPOLL	1
#endif

struct	kfw {
	int		 ext;		/* extension mode */
	int		 fd;		/* channel, or the listening socket */
	int		 ep;		/* epoll instance waiting on fd, or -1 */
	int		 drain;		/* connections still to take once told
					   to stop; see kfw_drain() */
	int		 eof;		/* the channel reached end of file */
	int		 conn;		/* connection given out, or -1 */
	uint64_t	 cookie;	/* the cookie that came with it */
	int		 defer;		/* our SIGTERM handler is in place */
	int		 wasblocked;	/* caller had SIGTERM blocked */
	struct sigaction oldterm;	/* caller's SIGTERM action */
};

static int	kfw_envfd(int *);
static int	kfw_setup_classic(struct kfw *);
#ifdef KFW_EPOLL
static void	kfw_ep_open(struct kfw *);
#endif
static int	kfw_setup_ext(struct kfw *, int);
static void	kfw_onterm(int);
static int	kfw_sig_defer(struct kfw *);
static void	kfw_sig_restore(struct kfw *);
static int	kfw_term_pending(const struct kfw *);
static int	kfw_sleep(const struct kfw *, const sigset_t *);
static int	kfw_wait(const struct kfw *);
static int	kfw_next_classic(struct kfw *);
static int	kfw_drain(struct kfw *);
static int	kfw_next_ext(struct kfw *);
static int	kfw_takefd(struct msghdr *);
static int	kfw_readrest(int, unsigned char *, size_t, size_t);
static int	kfw_sendcookie(int, uint64_t);

/* Set by the SIGTERM handler; one worker per process, so global. */
static volatile sig_atomic_t kfw_gotterm;

/*
 * Extension mode is on when the variable holds a plain non-negative
 * decimal integer; anything else (sign, blanks, overflow) means classic,
 * as the extension document asks.
 */
static int
kfw_envfd(int *fd)
{
	const char	*s;
	int		 v, d;

	if ((s = getenv(KFW_ENV)) == NULL || *s == '\0')
		return 0;
	for (v = 0; *s != '\0'; s++) {
		if (*s < '0' || *s > '9')
			return 0;
		d = *s - '0';
		if (v > (INT_MAX - d) / 10)
			return 0;
		v = v * 10 + d;
	}
	*fd = v;
	return 1;
}

/*
 * Several workers wait on the one listening socket, and a worker that
 * wakes may find the connection taken by another (all wake with
 * ppoll(2); with epoll one is woken, but a worker coming back from a
 * request or leaving on SIGTERM may take it first).  The losers must not
 * sleep in accept(2) with SIGTERM blocked, so the socket is made
 * non-blocking.  It is shared with the other workers, which do the same,
 * and so is never set back.
 */
static int
kfw_setup_classic(struct kfw *k)
{
	socklen_t	 len;
	int		 on, fl;

	len = sizeof(on);
	if (getsockopt(KFW_LISTENSOCK, SOL_SOCKET, SO_ACCEPTCONN,
	    &on, &len) == -1)
		return -1;
	if (!on) {
		errno = EINVAL;
		return -1;
	}
	if ((fl = fcntl(KFW_LISTENSOCK, F_GETFL)) == -1)
		return -1;
	if (!(fl & O_NONBLOCK) &&
	    fcntl(KFW_LISTENSOCK, F_SETFL, fl | O_NONBLOCK) == -1)
		return -1;
	k->fd = KFW_LISTENSOCK;
#ifdef KFW_EPOLL
	kfw_ep_open(k);
#endif
	return 0;
}

#ifdef KFW_EPOLL
/*
 * The kernel queues an EPOLLEXCLUSIVE entry at the tail of the socket's
 * wait queue and stops waking at the first such entry whose instance
 * has a waiter, so one idle worker wakes per connection.  Instances
 * nobody waits on (busy workers, a forked child's copy) only note that
 * the socket is ready and pass the wake-up on.  Linux before 4.5 refuses
 * the flag with EINVAL; ppoll(2) serves then, as it does if epoll cannot
 * be had at all, which costs wake-ups but no connection.
 */
static void
kfw_ep_open(struct kfw *k)
{
	struct epoll_event ev;
	int		 serr;

	serr = errno;
	if ((k->ep = epoll_create1(EPOLL_CLOEXEC)) == -1) {
		errno = serr;
		return;
	}
	memset(&ev, 0, sizeof(ev));
	ev.events = EPOLLIN | EPOLLEXCLUSIVE;
	if (epoll_ctl(k->ep, EPOLL_CTL_ADD, k->fd, &ev) == -1) {
		close(k->ep);
		k->ep = -1;
	}
	errno = serr;
}
#endif

/*
 * The channel must be an open socket.  It is kept from programs that the
 * worker runs, so that only this process answers for it, and it is made
 * blocking, which this end of a socketpair may be without harm to the
 * manager's end: the cookie is then written and read whole.
 */
static int
kfw_setup_ext(struct kfw *k, int fd)
{
	socklen_t	 len;
	int		 type, fl;

	len = sizeof(type);
	if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) == -1)
		return -1;
	if ((fl = fcntl(fd, F_GETFD)) == -1 ||
	    fcntl(fd, F_SETFD, fl | FD_CLOEXEC) == -1)
		return -1;
	if ((fl = fcntl(fd, F_GETFL)) == -1 || ((fl & O_NONBLOCK) &&
	    fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) == -1))
		return -1;
	k->ext = 1;
	k->fd = fd;
	return 0;
}

static void
kfw_onterm(int sig)
{
	(void)sig;
	kfw_gotterm = 1;
}

/*
 * Catch SIGTERM and keep it blocked outside kfw_accept().  A caller that
 * ignores SIGTERM asked for exactly that, so it is left alone.
 */
static int
kfw_sig_defer(struct kfw *k)
{
	struct sigaction sa;
	sigset_t	 set, old;

	if (sigaction(SIGTERM, NULL, &k->oldterm) == -1)
		return -1;
	if (!(k->oldterm.sa_flags & SA_SIGINFO) &&
	    k->oldterm.sa_handler == SIG_IGN)
		return 0;
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	if (sigprocmask(SIG_BLOCK, &set, &old) == -1)
		return -1;
	k->wasblocked = sigismember(&old, SIGTERM) == 1;
	memset(&sa, 0, sizeof(sa));
	sigemptyset(&sa.sa_mask);
	sa.sa_handler = kfw_onterm;
	if (sigaction(SIGTERM, &sa, NULL) == -1) {
		if (!k->wasblocked)
			sigprocmask(SIG_UNBLOCK, &set, NULL);
		return -1;
	}
	k->defer = 1;
	return 0;
}

/*
 * Unblock before putting the old action back, so that a SIGTERM still
 * pending lands in our handler rather than killing a process on its way
 * to a clean exit.
 */
static void
kfw_sig_restore(struct kfw *k)
{
	sigset_t	 set;

	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	if (!k->wasblocked)
		sigprocmask(SIG_UNBLOCK, &set, NULL);
	sigaction(SIGTERM, &k->oldterm, NULL);
	k->defer = 0;
}

/*
 * A SIGTERM that came during a request is pending, and so is one that
 * came while ppoll(2) or epoll_pwait(2) found the descriptor ready: they
 * put the mask back on return.  Let such a signal through now, under
 * whatever action is in place, so that a worker asked to stop does not
 * wait for one more connection.
 */
static int
kfw_term_pending(const struct kfw *k)
{
	sigset_t	 set;

	if (!k->defer)
		return 0;
	if (sigpending(&set) == -1 || sigismember(&set, SIGTERM) != 1)
		return kfw_gotterm;
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigprocmask(SIG_UNBLOCK, &set, NULL);
	sigprocmask(SIG_BLOCK, &set, NULL);
	return kfw_gotterm;
}

/*
 * One wait with SIGTERM let through by mask.  Returns 1 when readable,
 * 0 when interrupted by a signal, -1 on error.
 */
static int
kfw_sleep(const struct kfw *k, const sigset_t *mask)
{
	struct pollfd	 pfd;
#ifdef KFW_EPOLL
	struct epoll_event ev;

	if (k->ep != -1) {
		if (epoll_pwait(k->ep, &ev, 1, -1, mask) == -1)
			return errno == EINTR ? 0 : -1;
		return 1;
	}
#endif
	pfd.fd = k->fd;
	pfd.events = POLLIN;
	pfd.revents = 0;
	if (ppoll(&pfd, 1, NULL, mask) == -1)
		return errno == EINTR ? 0 : -1;
	if (pfd.revents & POLLNVAL) {
		errno = EBADF;
		return -1;
	}
	return 1;
}

/*
 * Wait for the listening socket or the channel to be readable, with
 * SIGTERM let through.  Returns 1 when readable, -1 on error, 0 when
 * the worker was told to stop before it waited (a SIGTERM that came
 * during the last request), KFW_TERMWAIT when told to stop while it
 * waited, in which case it may also have been woken for a connection.
 */
static int
kfw_wait(const struct kfw *k)
{
	sigset_t	 mask;
	int		 rc;

	if (kfw_term_pending(k))
		return 0;
	if (sigprocmask(SIG_SETMASK, NULL, &mask) == -1)
		return -1;
	if (k->defer)
		sigdelset(&mask, SIGTERM);
	for (;;) {
		if ((rc = kfw_sleep(k, &mask)) == -1)
			return -1;
		if (kfw_term_pending(k))
			return KFW_TERMWAIT;
		if (rc == 1)
			return 1;
	}
}

/*
 * Losing the race for a connection to another worker, or a connection
 * gone before it was taken, is no error.  Linux also reports pending
 * network errors of the new connection here; accept(2) says to retry.
 */
static int
kfw_next_classic(struct kfw *k)
{
	int	 fd;

	if ((fd = accept4(k->fd, NULL, NULL, SOCK_CLOEXEC)) != -1)
		return fd;
	switch (errno) {
	case EINTR:
	case EAGAIN:
#if EWOULDBLOCK != EAGAIN
	case EWOULDBLOCK:
#endif
	case ECONNABORTED:
	case EPROTO:
	case ENETDOWN:
	case ENETUNREACH:
	case EHOSTDOWN:
	case EHOSTUNREACH:
	case ENOPROTOOPT:
	case EOPNOTSUPP:
#ifdef ENONET
	case ENONET:
#endif
		return KFW_AGAIN;
	default:
		return -1;
	}
}

/*
 * Told to stop while waiting.  With EPOLLEXCLUSIVE this worker may be
 * the only one woken for a connection, and leaving it in the queue would
 * strand it until another connection wakes another worker.  So take
 * what is queued, one connection per call until the queue is empty.
 * One wake-up stands for one connection on Linux 5.7 and later; before,
 * a worker woken but not yet running could absorb the wake-ups of
 * several.  A few at most, so that a flood cannot keep the worker from
 * leaving.  With ppoll(2) the drain is harmless: all idle workers woke.
 */
static int
kfw_drain(struct kfw *k)
{
	int	 fd;

	while (k->drain > 0) {
		k->drain--;
		if ((fd = kfw_next_classic(k)) != KFW_AGAIN)
			return fd;
		if (errno == EAGAIN || errno == EWOULDBLOCK)
			break;
	}
	k->drain = 0;
	errno = 0;
	return -1;
}

/*
 * Keep the first descriptor passed and close any other: the manager
 * sends exactly one, and extras would only leak.
 */
static int
kfw_takefd(struct msghdr *msg)
{
	struct cmsghdr	*c;
	unsigned char	*p;
	size_t		 i, n;
	int		 fd, got;

	got = -1;
	for (c = CMSG_FIRSTHDR(msg); c != NULL; c = CMSG_NXTHDR(msg, c)) {
		if (c->cmsg_level != SOL_SOCKET ||
		    c->cmsg_type != SCM_RIGHTS)
			continue;
		p = CMSG_DATA(c);
		n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (i = 0; i < n; i++) {
			memcpy(&fd, p + i * sizeof(int), sizeof(int));
			if (got == -1)
				got = fd;
			else
				close(fd);
		}
	}
	return got;
}

/*
 * The cookie is normally read whole with its descriptor; should the
 * stream hand over fewer bytes, the rest follows on the same stream.
 * Returns 0 when complete, 1 at end of file, -1 on error.
 */
static int
kfw_readrest(int fd, unsigned char *buf, size_t have, size_t want)
{
	ssize_t	 n;

	while (have < want) {
		n = read(fd, buf + have, want - have);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1)
			return -1;
		if (n == 0)
			return 1;
		have += (size_t)n;
	}
	return 0;
}

/*
 * Receive one hand-off from the manager: cookie and connection come in
 * one message.  End of file on the channel means the worker must exit.
 */
static int
kfw_next_ext(struct kfw *k)
{
	union {
		struct cmsghdr	 hdr;
		unsigned char	 buf[CMSG_SPACE(KFW_MAXFDS * sizeof(int))];
	}		 cmsg;
	unsigned char	 cookie[sizeof(uint64_t)];
	struct msghdr	 msg;
	struct iovec	 iov;
	ssize_t		 n;
	int		 fd, rc, serr;

	memset(&msg, 0, sizeof(msg));
	iov.iov_base = cookie;
	iov.iov_len = sizeof(cookie);
	msg.msg_iov = &iov;
	msg.msg_iovlen = 1;
	msg.msg_control = cmsg.buf;
	msg.msg_controllen = sizeof(cmsg.buf);
	n = recvmsg(k->fd, &msg, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
	if (n == -1)
		return (errno == EINTR || errno == EAGAIN) ? KFW_AGAIN : -1;
	fd = kfw_takefd(&msg);
	rc = n == 0 ? 1 :
	    kfw_readrest(k->fd, cookie, (size_t)n, sizeof(cookie));
	if (rc != 0) {
		serr = errno;
		if (fd != -1)
			close(fd);
		if (rc == 1)
			k->eof = 1;
		errno = serr;
		return rc == 1 ? KFW_AGAIN : -1;
	}
	memcpy(&k->cookie, cookie, sizeof(k->cookie));
	if (fd == -1) {
		/* Nothing to serve: say so, or we stay busy forever. */
		return kfw_sendcookie(k->fd, k->cookie) == -1 ?
		    -1 : KFW_AGAIN;
	}
	k->conn = fd;
	return fd;
}

/* MSG_NOSIGNAL: a manager gone away is EPIPE here, not a SIGPIPE death. */
static int
kfw_sendcookie(int chan, uint64_t cookie)
{
	unsigned char	 buf[sizeof(cookie)];
	size_t		 off;
	ssize_t		 n;

	memcpy(buf, &cookie, sizeof(buf));
	off = 0;
	while (off < sizeof(buf)) {
		n = send(chan, buf + off, sizeof(buf) - off, MSG_NOSIGNAL);
		if (n == -1) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		off += (size_t)n;
	}
	return 0;
}

struct kfw *
kfw_open(void)
{
	struct kfw	*k;
	int		 chan, rc, serr;

	if ((k = calloc(1, sizeof(*k))) == NULL)
		return NULL;
	k->fd = k->ep = k->conn = -1;
	if (kfw_envfd(&chan))
		rc = kfw_setup_ext(k, chan);
	else
		rc = kfw_setup_classic(k);
	if (rc == -1 || kfw_sig_defer(k) == -1) {
		serr = errno;
		if (k->ep != -1)
			close(k->ep);
		free(k);
		errno = serr;
		return NULL;
	}
	return k;
}

/*
 * Returns the next connection.  A connection given out before and not
 * passed to kfw_finish() is forgotten: its cookie is never sent.  Once
 * told to stop (SIGTERM or end of file on the channel) it stays so,
 * after draining the queue if the SIGTERM came while it waited.
 */
int
kfw_accept(struct kfw *k)
{
	int	 rc, fd;

	k->conn = -1;
	for (;;) {
		if (kfw_gotterm && !k->ext)
			return kfw_drain(k);
		if (k->eof || kfw_gotterm) {
			errno = 0;
			return -1;
		}
		if ((rc = kfw_wait(k)) == KFW_TERMWAIT) {
			k->drain = k->ext ? 0 : KFW_DRAIN;
			continue;
		}
		if (rc != 1) {
			if (rc == 0)
				errno = 0;
			return -1;
		}
		fd = k->ext ? kfw_next_ext(k) : kfw_next_classic(k);
		if (fd != KFW_AGAIN)
			return fd;
	}
}

/*
 * The descriptor is closed in every case.  In extension mode the cookie
 * goes back first, and only for the connection kfw_accept() gave out.
 */
int
kfw_finish(struct kfw *k, int fd)
{
	int	 rc, serr;

	rc = serr = 0;
	if (k->ext) {
		if (fd < 0 || fd != k->conn) {
			rc = -1;
			serr = EINVAL;
		} else {
			k->conn = -1;
			if (kfw_sendcookie(k->fd, k->cookie) == -1) {
				rc = -1;
				serr = errno;
			}
		}
	}
	/* On Linux the descriptor is gone even when close(2) says EINTR. */
	if (fd >= 0 && close(fd) == -1 && errno != EINTR && rc == 0) {
		rc = -1;
		serr = errno;
	}
	if (rc == -1)
		errno = serr;
	return rc;
}

int
kfw_extension(const struct kfw *k)
{
	return k->ext;
}

int
kfw_channel(const struct kfw *k)
{
	return k->ext ? k->fd : -1;
}

uint64_t
kfw_cookie(const struct kfw *k)
{
	return k->ext ? k->cookie : 0;
}

/*
 * The channel is ours to close; the listening socket is left as it is,
 * descriptor 0 of the process.
 */
void
kfw_close(struct kfw *k)
{
	if (k == NULL)
		return;
	if (k->ext && k->fd != -1)
		close(k->fd);
	if (k->ep != -1)
		close(k->ep);
	if (k->defer)
		kfw_sig_restore(k);
	free(k);
}
