/* uring.c: the -r hot path's I/O on io_uring: one system call a wake-up. */
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
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event.h>
#include <liburing.h>

#include "kfcgi.h"
#include "log.h"
#include "uring.h"

#define RING_SQ		256	/* submitted when full, so only a batch size */
#define RING_CQ_MAX	4096	/* beyond it the kernel keeps them (NODROP) */
#define CQE_BATCH	64
#define RING_ROUNDS	8	/* reap-submit rounds, then the loop again */
#define DRAIN_MS	1000	/* at exit, for cancelled reads to come back */

/*
 * A request's user_data: what it was in the low bits and, for those on
 * a channel, the channel's record (8-byte aligned) in the others.
 */
enum op {
	OP_ACCEPT = 1,
	OP_SEND,
	OP_RECV,
	OP_CLOSE,
	OP_CANCEL,
	OP_MASK = 7
};

/*
 * One worker's channel.  Its memory is the kernel's while a request on
 * it is in flight, so it outlives the worker: once unwatched (arg NULL)
 * it waits on the dead list until its read has come back and every
 * completion that may name it has been seen.
 */
struct uchan {
	void		*arg;		/* the worker; NULL once unwatched */
	int		 fd;
	int		 recving;	/* a recv in flight */
	uint64_t	 cookie;	/* what the hand-off sends */
	struct msghdr	 msg;
	struct iovec	 iov;
	union {
		struct cmsghdr	hdr;
		unsigned char	buf[CMSG_SPACE(sizeof(int))];
	}		 cmsg;
	unsigned char	 in[2 * sizeof(uint64_t)];	/* what it wrote */
	struct uchan	*next;		/* on the dead list */
};

struct uring {
	struct io_uring		 ring;
	struct event		 ev;		/* completions to reap */
	struct event		 ev_flush;	/* requests to submit */
	const struct uring_ops	*ops;
	void			*arg;
	int			 accepting;	/* an accept in flight */
	int			 reaping;	/* in ring_cb: it submits */
	int			 flushing;	/* ev_flush active */
	int			 closing;	/* no more callbacks */
	unsigned int		 nrecv;		/* recvs in flight */
	struct uchan		*dead;
};

static void
ring_submit(struct uring *r)
{
	int	 n;

	while ((n = io_uring_submit(&r->ring)) < 0)
		if (n != -EINTR) {
			errno = -n;
			fatal("io_uring: submit");
		}
}

/*
 * A request to fill.  Outside ring_cb (timers, signals, reaping), the
 * flush event submits them all once the current callbacks are done:
 * one system call for all the loop's work, and none forgotten.
 */
static struct io_uring_sqe *
ring_sqe(struct uring *r)
{
	struct io_uring_sqe	*sqe;

	if (!r->reaping && !r->flushing) {
		r->flushing = 1;
		event_active(&r->ev_flush, EV_TIMEOUT, 1);
	}
	while ((sqe = io_uring_get_sqe(&r->ring)) == NULL)
		ring_submit(r);
	return sqe;
}

static void
ring_data(struct io_uring_sqe *sqe, uint64_t data, unsigned int flags)
{
	io_uring_sqe_set_data64(sqe, data);
	io_uring_sqe_set_flags(sqe, flags);
}

static uint64_t
chan_data(struct uchan *uc, enum op op)
{
	return (uint64_t)(uintptr_t)uc | op;
}

static void
flush_cb(int fd UNUSED, short events UNUSED, void *arg)
{
	struct uring	*r = arg;

	r->flushing = 0;
	if (io_uring_sq_ready(&r->ring) > 0)
		ring_submit(r);
}

/* The worker's reply is not there yet when this is armed: wait first. */
static void
recv_arm(struct uring *r, struct uchan *uc)
{
	struct io_uring_sqe	*sqe;

	sqe = ring_sqe(r);
	io_uring_prep_recv(sqe, uc->fd, uc->in, sizeof(uc->in), 0);
	sqe->ioprio |= IORING_RECVSEND_POLL_FIRST;
	ring_data(sqe, chan_data(uc, OP_RECV), 0);
	uc->recving = 1;
	r->nrecv++;
}

static void
recv_done(struct uring *r, struct uchan *uc, int res)
{
	uc->recving = 0;
	r->nrecv--;
	if (uc->arg == NULL || r->closing)
		return;
	r->ops->received(uc->arg, uc->in, res);
	/* The callback may have unwatched it. */
	if (uc->arg != NULL)
		recv_arm(r, uc);
}

static void
accept_done(struct uring *r, int res)
{
	r->accepting = 0;
	if (r->closing) {
		if (res >= 0)
			close(res);
		return;
	}
	r->ops->accepted(r->arg, res);
}

static void
complete(struct uring *r, uint64_t data, int res)
{
	struct uchan	*uc;

	uc = (struct uchan *)(uintptr_t)(data & ~(uint64_t)OP_MASK);

	switch (data & OP_MASK) {
	case OP_ACCEPT:
		accept_done(r, res);
		break;
	case OP_SEND:
		/* Only failures come back (IOSQE_CQE_SKIP_SUCCESS). */
		if (uc->arg != NULL && !r->closing)
			r->ops->send_failed(uc->arg, res);
		break;
	case OP_RECV:
		recv_done(r, uc, res);
		break;
	case OP_CLOSE:
		/* Only failures: ours was the last use of that descriptor. */
		errno = -res;
		log_warn("io_uring: close");
		break;
	default:
		/* A cancel that found nothing: what it sought is done. */
		break;
	}
}

/* Channels unwatched whose every completion has been seen. */
static void
bury(struct uring *r)
{
	struct uchan	**up = &r->dead, *uc;

	while ((uc = *up) != NULL) {
		if (uc->recving) {
			up = &uc->next;
			continue;
		}
		*up = uc->next;
		free(uc);
	}
}

/*
 * Every completion there, CQ_BATCH at a time, each copied out and the
 * queue advanced before it is acted on, since acting may submit (and so
 * complete) more.  peek_batch also flushes a CQ overflow.
 */
static void
reap(struct uring *r)
{
	struct io_uring_cqe	*cqe[CQE_BATCH];
	struct {
		uint64_t	 data;
		int		 res;
	}			 done[CQE_BATCH];
	unsigned int		 i, n;

	while ((n = io_uring_peek_batch_cqe(&r->ring, cqe, CQE_BATCH)) > 0) {
		for (i = 0; i < n; i++) {
			done[i].data = cqe[i]->user_data;
			done[i].res = cqe[i]->res;
		}
		io_uring_cq_advance(&r->ring, n);
		for (i = 0; i < n; i++)
			complete(r, done[i].data, done[i].res);
	}
}

/*
 * Reap, then submit what was asked in one go.  Completions that came
 * meanwhile (the submission runs the kernel's pending work for us) are
 * reaped at once, a few rounds at most, rather than after another trip
 * through the event loop.
 */
static void
ring_cb(int fd UNUSED, short events UNUSED, void *arg)
{
	struct uring	*r = arg;
	int		 round;

	r->reaping = 1;
	for (round = 0; round < RING_ROUNDS; round++) {
		reap(r);
		if (io_uring_sq_ready(&r->ring) == 0)
			break;
		ring_submit(r);
		if (io_uring_cq_ready(&r->ring) == 0)
			break;
	}
	r->reaping = 0;
	if (r->dead != NULL)
		bury(r);
	if (io_uring_sq_ready(&r->ring) > 0)
		ring_submit(r);
}

/* One connection: accepts are not multishot, see uring_accept(). */
void
uring_accept(struct uring *r, int listenfd)
{
	struct io_uring_sqe	*sqe;

	if (r->accepting)
		return;
	sqe = ring_sqe(r);
	io_uring_prep_accept(sqe, listenfd, NULL, NULL, SOCK_CLOEXEC);
	ring_data(sqe, OP_ACCEPT, 0);
	r->accepting = 1;
}

void
uring_accept_stop(struct uring *r)
{
	struct io_uring_sqe	*sqe;

	if (!r->accepting)
		return;
	sqe = ring_sqe(r);
	io_uring_prep_cancel64(sqe, OP_ACCEPT, 0);
	ring_data(sqe, OP_CANCEL, IOSQE_CQE_SKIP_SUCCESS);
}

struct uchan *
uring_watch(struct uring *r, int fd, void *arg)
{
	struct uchan	*uc;

	if ((uc = calloc(1, sizeof(*uc))) == NULL)
		fatal("io_uring: channel");
	uc->arg = arg;
	uc->fd = fd;
	uc->iov.iov_base = &uc->cookie;
	uc->iov.iov_len = sizeof(uc->cookie);
	uc->msg.msg_iov = &uc->iov;
	uc->msg.msg_iovlen = 1;
	uc->msg.msg_control = uc->cmsg.buf;
	uc->msg.msg_controllen = sizeof(uc->cmsg.buf);
	uc->cmsg.hdr.cmsg_level = SOL_SOCKET;
	uc->cmsg.hdr.cmsg_type = SCM_RIGHTS;
	uc->cmsg.hdr.cmsg_len = CMSG_LEN(sizeof(int));
	recv_arm(r, uc);
	return uc;
}

/*
 * Before the caller closes the channel.  Submitting now makes every
 * request already asked of it name this channel, not whatever reuses the
 * number.  A recv in flight holds the socket open past close(2), for as
 * long as it takes the kernel to let go of it (even once cancelled), so
 * the worker would not read EOF: shutdown(2) ends the channel for both
 * sides at once, and the recv comes back with it.
 */
void
uring_unwatch(struct uring *r, struct uchan *uc)
{
	uc->arg = NULL;
	ring_submit(r);
	(void)shutdown(uc->fd, SHUT_RDWR);
	uc->next = r->dead;
	r->dead = uc;
}

/*
 * The cookie and the descriptor in one message.  MSG_DONTWAIT: a full
 * channel fails at once, as with sendmsg(2), and the request is done by
 * the time it is submitted.
 */
void
uring_send(struct uring *r, struct uchan *uc, uint64_t cookie, int fd)
{
	struct io_uring_sqe	*sqe;

	uc->cookie = cookie;
	memcpy(CMSG_DATA(&uc->cmsg.hdr), &fd, sizeof(fd));
	sqe = ring_sqe(r);
	io_uring_prep_sendmsg(sqe, uc->fd, &uc->msg, MSG_DONTWAIT |
	    MSG_NOSIGNAL);
	ring_data(sqe, chan_data(uc, OP_SEND), IOSQE_CQE_SKIP_SUCCESS);
}

void
uring_close_fd(struct uring *r, int fd)
{
	struct io_uring_sqe	*sqe;

	sqe = ring_sqe(r);
	io_uring_prep_close(sqe, fd);
	ring_data(sqe, OP_CLOSE, IOSQE_CQE_SKIP_SUCCESS);
}

/*
 * What this kernel must have: completions never dropped, internal poll,
 * skipped success completions, the operations used, and recv's
 * IORING_RECVSEND_POLL_FIRST (5.19, as IORING_OP_SOCKET, which tells it
 * apart: an older kernel would reject every recv).  Then one request
 * there and back, for io_uring_enter(2) may be forbidden (seccomp) where
 * io_uring_setup(2) is not.
 */
static const char *
ring_probe(struct uring *r, const struct io_uring_params *p)
{
	static const int	 ops[] = { IORING_OP_ACCEPT, IORING_OP_SENDMSG,
				    IORING_OP_RECV, IORING_OP_CLOSE,
				    IORING_OP_ASYNC_CANCEL, IORING_OP_SOCKET };
	unsigned int		 feat = IORING_FEAT_NODROP |
				    IORING_FEAT_FAST_POLL |
				    IORING_FEAT_CQE_SKIP;
	struct io_uring_probe	*probe;
	struct io_uring_cqe	*cqe;
	size_t			 i;
	int			 e;

	if ((p->features & feat) != feat)
		return "kernel too old";
	if ((probe = io_uring_get_probe_ring(&r->ring)) == NULL)
		return "cannot probe";
	for (i = 0; i < sizeof(ops) / sizeof(ops[0]); i++)
		if (!io_uring_opcode_supported(probe, ops[i]))
			break;
	io_uring_free_probe(probe);
	if (i < sizeof(ops) / sizeof(ops[0]))
		return "kernel too old";
	io_uring_prep_nop(io_uring_get_sqe(&r->ring));
	if ((e = io_uring_submit_and_wait(&r->ring, 1)) < 0 ||
	    (e = io_uring_peek_cqe(&r->ring, &cqe)) < 0)
		return strerror(-e);
	io_uring_cqe_seen(&r->ring, cqe);
	return NULL;
}

/*
 * Completions waiting at once: mostly the channels' replies, one read in
 * flight on each; the rest are failures and the one accept.  Room for a
 * reply from every channel there may be, then, up to RING_CQ_MAX; the
 * kernel keeps what does not fit (NODROP) and reaping takes it in.  The
 * queue is the manager's memory, 16 bytes an entry, all of it resident.
 */
static unsigned int
ring_cq_size(int channels)
{
	if (channels < RING_SQ)
		return RING_SQ;
	return channels > RING_CQ_MAX ? RING_CQ_MAX : (unsigned int)channels;
}

/*
 * The ring for up to `channels' channels at once, or NULL and why not
 * (then the libevent path serves).  Its descriptor is close-on-exec (the
 * kernel's choice) and its memory is not copied into the guard, the one
 * child that forks without exec.
 */
struct uring *
uring_open(const struct uring_ops *ops, void *arg, int channels,
    const char **why)
{
	struct io_uring_params	 p;
	struct uring		*r;
	const char		*no = getenv("KFCGI_NO_URING");
	int			 e;

	if (no != NULL && *no != '\0' && strcmp(no, "0") != 0) {
		*why = "KFCGI_NO_URING is set";
		return NULL;
	}
	if ((r = calloc(1, sizeof(*r))) == NULL) {
		*why = strerror(errno);
		return NULL;
	}
	/* SUBMIT_ALL: a request that fails early must not hold back others. */
	memset(&p, 0, sizeof(p));
	p.flags = IORING_SETUP_CQSIZE | IORING_SETUP_SUBMIT_ALL;
	p.cq_entries = ring_cq_size(channels);
	if ((e = io_uring_queue_init_params(RING_SQ, &r->ring, &p)) < 0) {
		*why = strerror(-e);
		free(r);
		return NULL;
	}
	if ((*why = ring_probe(r, &p)) != NULL) {
		io_uring_queue_exit(&r->ring);
		free(r);
		return NULL;
	}
	(void)io_uring_ring_dontfork(&r->ring);
	r->ops = ops;
	r->arg = arg;
	event_set(&r->ev, r->ring.ring_fd, EV_READ | EV_PERSIST, ring_cb, r);
	if (event_add(&r->ev, NULL) == -1)
		fatalx("io_uring: cannot watch the ring");
	event_set(&r->ev_flush, -1, 0, flush_cb, r);
	return r;
}

/*
 * At exit, every worker gone: cancel what is left and wait for it, so
 * that the kernel is done with the channels' memory before it is freed.
 */
static void
ring_drain(struct uring *r)
{
	struct __kernel_timespec ts = { DRAIN_MS / 1000,
				    DRAIN_MS % 1000 * 1000000L };
	struct io_uring_sqe	*sqe;
	struct io_uring_cqe	*cqe;
	uint64_t		 data;
	int			 res;

	if (r->nrecv > 0 || r->accepting) {
		sqe = ring_sqe(r);
		io_uring_prep_cancel64(sqe, 0, IORING_ASYNC_CANCEL_ANY);
		ring_data(sqe, OP_CANCEL, IOSQE_CQE_SKIP_SUCCESS);
	}
	ring_submit(r);
	while ((r->nrecv > 0 || r->accepting) &&
	    io_uring_wait_cqe_timeout(&r->ring, &cqe, &ts) == 0) {
		data = cqe->user_data;
		res = cqe->res;
		io_uring_cqe_seen(&r->ring, cqe);
		complete(r, data, res);
	}
}

void
uring_close(struct uring *r)
{
	struct uchan	*uc;

	if (r == NULL)
		return;
	r->closing = 1;
	r->reaping = 1;		/* no flush event from now on */
	event_del(&r->ev);
	event_del(&r->ev_flush);
	ring_drain(r);
	io_uring_queue_exit(&r->ring);
	while ((uc = r->dead) != NULL) {
		r->dead = uc->next;
		free(uc);
	}
	free(r);
}
