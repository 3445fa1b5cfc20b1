/* floor: the least a variable-pool manager must do, as a yardstick. */
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
 *	floor [-uU] [-l backlog] [-n workers] -s sockpath prog [arg ...]
 *
 * Not part of kfcgi: bench/run.sh measures kfcgi -r against it.  It
 * speaks the management-control protocol as kfcgi -r does, with nothing
 * else: N workers started once (channel on descriptor 3,
 * FCGI_LISTENSOCK_DESCRIPTORS=3, /dev/null on 0), then per connection
 * accept4, one sendmsg of an 8-byte cookie with the descriptor, close,
 * and later one recv of the cookie back.  Idle workers on a LIFO stack;
 * connections waiting for one in a FIFO.  No growth, no cookie checks,
 * no timers, no logging.  One epoll loop; SIGTERM or SIGINT stop it.  A
 * worker that goes away stops it too, with exit status 1.
 *
 * -u: the same on io_uring, as issue 9 describes its ideal: one
 * multishot accept, each sendmsg linked to its close, one recv per
 * worker re-armed as it completes, one io_uring_enter(2) a loop to
 * submit and wait.  -U: that with IORING_SETUP_DEFER_TASKRUN, where
 * completions are run only inside that call (Linux 6.1).
 */

#include <sys/types.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>

#include <err.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifdef FLOOR_URING
#include <liburing.h>
#endif

#define CHANNEL_FD	3
#define ENV_CHANNEL	"FCGI_LISTENSOCK_DESCRIPTORS"
#define MAX_WORKERS	65536
#define NEVENTS		256
#define ACCEPT_BATCH	64	/* then look at the channels again */
#define ID_LISTEN	UINT32_MAX
#define ID_SIGNAL	(UINT32_MAX - 1)
#define ID_SEND		(UINT32_MAX - 2)	/* sendmsg, close: failures */
#define RING_ENTRIES	256

extern char	**environ;

struct	worker {
	pid_t		 pid;
	int		 chan;		/* our end of the socketpair */
	uint64_t	 cookie;
};

struct	floor {
	struct worker	*w;
	uint32_t	 nw;
	uint32_t	*idle;		/* LIFO of worker indices */
	uint32_t	 nidle;
	int		*fifo;		/* connections waiting, a ring */
	uint32_t	 fcap, fhead, flen;
	int		 lfd;
	int		 ep;
	int		 sigfd;
	unsigned long	 handed;
	/* handoff(), or u_handoff() on the ring */
	void		(*handoff)(struct floor *, uint32_t, int);
#ifdef FLOOR_URING
	struct io_uring	 ring;
	struct uwork	*u;		/* per worker, as the ring needs it */
#endif
};

#ifdef FLOOR_URING
struct	uwork {
	uint64_t	 in;		/* the cookie coming back */
	struct msghdr	 msg;		/* the hand-off */
	struct iovec	 iov;
	union {
		struct cmsghdr	 hdr;
		char		 buf[CMSG_SPACE(sizeof(int))];
	}		 cm;
};
#endif

static void	usage(void) __attribute__((noreturn));
static int	listener(const char *, int);
static char	**worker_env(void);
static void	spawn_all(struct floor *, char **);
static void	watch(struct floor *, int, uint32_t);
static void	handoff(struct floor *, uint32_t, int);
static void	take(struct floor *, int);
static void	freed(struct floor *, uint32_t);
static void	on_accept(struct floor *);
static void	on_cookie(struct floor *, uint32_t);
static void	stop(struct floor *, int) __attribute__((noreturn));
static void	loop(struct floor *) __attribute__((noreturn));

static void
usage(void)
{
	fprintf(stderr, "usage: floor [-uU] [-l backlog] [-n workers] "
	    "-s sockpath prog [arg ...]\n");
	exit(1);
}

static int
listener(const char *path, int backlog)
{
	struct sockaddr_un	 sun;
	int			 fd;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sun.sun_path))
		errx(1, "%s: socket path too long", path);
	strcpy(sun.sun_path, path);
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
	    0)) == -1)
		err(1, "socket");
	if (unlink(path) == -1 && errno != ENOENT)
		err(1, "unlink: %s", path);
	if (bind(fd, (struct sockaddr *)&sun, sizeof(sun)) == -1)
		err(1, "bind: %s", path);
	if (listen(fd, backlog) == -1)
		err(1, "listen: %s", path);
	return fd;
}

/* Ours without a stray channel variable, plus ours. */
static char **
worker_env(void)
{
	static char	 var[] = ENV_CHANNEL "=3";
	size_t		 n, i, len = strlen(ENV_CHANNEL);
	char		**env;

	for (n = 0; environ[n] != NULL; n++)
		continue;
	if ((env = calloc(n + 2, sizeof(*env))) == NULL)
		err(1, NULL);
	for (i = n = 0; environ[i] != NULL; i++)
		if (strncmp(environ[i], ENV_CHANNEL "=", len + 1) != 0)
			env[n++] = environ[i];
	env[n++] = var;
	env[n] = NULL;
	return env;
}

static void
spawn_all(struct floor *f, char **argv)
{
	posix_spawn_file_actions_t	 fa;
	posix_spawnattr_t		 attr;
	sigset_t			 all, none;
	char				**env = worker_env();
	int				 sv[2], null, rc;
	uint32_t			 i;

	if ((null = open("/dev/null", O_RDWR | O_CLOEXEC)) == -1)
		err(1, "/dev/null");
	sigfillset(&all);
	sigemptyset(&none);
	posix_spawnattr_init(&attr);
	posix_spawnattr_setsigdefault(&attr, &all);
	posix_spawnattr_setsigmask(&attr, &none);
	posix_spawnattr_setflags(&attr,
	    POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK);
	for (i = 0; i < f->nw; i++) {
		if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == -1)
			err(1, "socketpair");
		posix_spawn_file_actions_init(&fa);
		posix_spawn_file_actions_adddup2(&fa, null, 0);
		posix_spawn_file_actions_adddup2(&fa, sv[1], CHANNEL_FD);
		rc = posix_spawn(&f->w[i].pid, argv[0], &fa, &attr, argv, env);
		posix_spawn_file_actions_destroy(&fa);
		if (rc != 0)
			errx(1, "spawn: %s: %s", argv[0], strerror(rc));
		close(sv[1]);
		f->w[i].chan = sv[0];
		f->w[i].cookie = ((uint64_t)arc4random() << 32) | i;
		f->idle[f->nidle++] = f->nw - 1 - i;	/* worker 0 on top */
		watch(f, sv[0], i);
	}
	posix_spawnattr_destroy(&attr);
	close(null);
}

static void
watch(struct floor *f, int fd, uint32_t id)
{
	struct epoll_event	 ev;

	memset(&ev, 0, sizeof(ev));
	ev.events = EPOLLIN;
	ev.data.u32 = id;
	if (epoll_ctl(f->ep, EPOLL_CTL_ADD, fd, &ev) == -1)
		err(1, "epoll_ctl");
}

/* The protocol's one message: the cookie and the descriptor. */
static void
handoff(struct floor *f, uint32_t i, int fd)
{
	union {
		struct cmsghdr	 hdr;
		char		 buf[CMSG_SPACE(sizeof(int))];
	}			 cm;
	struct msghdr		 msg;
	struct iovec		 iov;
	struct cmsghdr		*c;

	memset(&msg, 0, sizeof(msg));
	iov.iov_base = &f->w[i].cookie;
	iov.iov_len = sizeof(f->w[i].cookie);
	msg.msg_iov = &iov;
	msg.msg_iovlen = 1;
	msg.msg_control = cm.buf;
	msg.msg_controllen = sizeof(cm.buf);
	c = CMSG_FIRSTHDR(&msg);
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(c), &fd, sizeof(int));
	if (sendmsg(f->w[i].chan, &msg, MSG_NOSIGNAL) != sizeof(uint64_t)) {
		warn("sendmsg: worker %ld", (long)f->w[i].pid);
		stop(f, 1);
	}
	close(fd);
	f->handed++;
}

static void
on_accept(struct floor *f)
{
	int		 fd, n;

	for (n = 0; n < ACCEPT_BATCH; n++) {
		if ((fd = accept4(f->lfd, NULL, NULL, SOCK_CLOEXEC)) == -1) {
			if (errno != EAGAIN && errno != EINTR &&
			    errno != ECONNABORTED)
				warn("accept4");
			return;
		}
		take(f, fd);
	}
}

/* A connection: to the most recently freed worker, or it waits. */
static void
take(struct floor *f, int fd)
{
	if (f->nidle > 0)
		f->handoff(f, f->idle[--f->nidle], fd);
	else if (f->flen < f->fcap)
		f->fifo[(f->fhead + f->flen++) % f->fcap] = fd;
	else
		close(fd);	/* more waiting than descriptors */
}

/* Worker i is done: the oldest waiting connection, or the stack. */
static void
freed(struct floor *f, uint32_t i)
{
	int	 fd;

	if (f->flen > 0) {
		fd = f->fifo[f->fhead];
		f->fhead = (f->fhead + 1) % f->fcap;
		f->flen--;
		f->handoff(f, i, fd);
	} else
		f->idle[f->nidle++] = i;
}

static void
on_cookie(struct floor *f, uint32_t i)
{
	uint64_t	 cookie;

	if (recv(f->w[i].chan, &cookie, sizeof(cookie), MSG_DONTWAIT) !=
	    sizeof(cookie)) {
		warnx("worker %ld: channel closed or short", (long)f->w[i].pid);
		stop(f, 1);
	}
	freed(f, i);
}

/* Channels closed: the workers read EOF and exit; then reap them. */
static void
stop(struct floor *f, int status)
{
	uint32_t	 i;

	for (i = 0; i < f->nw; i++)
		if (f->w[i].chan != -1) {
			/* A recv in flight on the ring holds it open. */
			shutdown(f->w[i].chan, SHUT_RDWR);
			close(f->w[i].chan);
		}
	for (i = 0; i < f->nw; i++)
		if (f->w[i].pid > 0)
			waitpid(f->w[i].pid, NULL, 0);
	fprintf(stderr, "floor: %lu connections handed to %u workers\n",
	    f->handed, f->nw);
	exit(status);
}

static void
loop(struct floor *f)
{
	struct epoll_event	 ev[NEVENTS];
	int			 n, i;

	for (;;) {
		if ((n = epoll_wait(f->ep, ev, NEVENTS, -1)) == -1) {
			if (errno == EINTR)
				continue;
			err(1, "epoll_wait");
		}
		for (i = 0; i < n; i++) {
			if (ev[i].data.u32 == ID_LISTEN)
				on_accept(f);
			else if (ev[i].data.u32 == ID_SIGNAL)
				stop(f, 0);
			else
				on_cookie(f, ev[i].data.u32);
		}
	}
}

#ifdef FLOOR_URING
static struct io_uring_sqe *
u_sqe(struct floor *f)
{
	struct io_uring_sqe	*sqe;

	while ((sqe = io_uring_get_sqe(&f->ring)) == NULL)
		io_uring_submit(&f->ring);
	return sqe;
}

static void
u_recv(struct floor *f, uint32_t i)
{
	struct io_uring_sqe	*sqe = u_sqe(f);

	io_uring_prep_recv(sqe, f->w[i].chan, &f->u[i].in,
	    sizeof(f->u[i].in), 0);
	sqe->ioprio |= IORING_RECVSEND_POLL_FIRST;
	io_uring_sqe_set_data64(sqe, i);
}

static void
u_accept(struct floor *f)
{
	struct io_uring_sqe	*sqe = u_sqe(f);

	io_uring_prep_multishot_accept(sqe, f->lfd, NULL, NULL, SOCK_CLOEXEC);
	io_uring_sqe_set_data64(sqe, ID_LISTEN);
}

/* Linked, so in one submission: the close runs once the send is done. */
static void
u_handoff(struct floor *f, uint32_t i, int fd)
{
	struct io_uring_sqe	*sqe;

	if (io_uring_sq_space_left(&f->ring) < 2)
		io_uring_submit(&f->ring);
	memcpy(CMSG_DATA(&f->u[i].cm.hdr), &fd, sizeof(fd));
	sqe = u_sqe(f);
	io_uring_prep_sendmsg(sqe, f->w[i].chan, &f->u[i].msg, MSG_NOSIGNAL);
	io_uring_sqe_set_data64(sqe, ID_SEND);
	io_uring_sqe_set_flags(sqe, IOSQE_IO_LINK | IOSQE_CQE_SKIP_SUCCESS);
	sqe = u_sqe(f);
	io_uring_prep_close(sqe, fd);
	io_uring_sqe_set_data64(sqe, ID_SEND);
	io_uring_sqe_set_flags(sqe, IOSQE_CQE_SKIP_SUCCESS);
	f->handed++;
}

static void
u_setup(struct floor *f, int defer)
{
	struct io_uring_sqe	*sqe;
	struct uwork		*u;
	unsigned int		 flags = 0;
	uint32_t		 i;
	int			 e;

	if (defer)
		flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN;
	if ((e = io_uring_queue_init(RING_ENTRIES, &f->ring, flags)) < 0)
		errx(1, "io_uring_queue_init: %s", strerror(-e));
	if ((f->u = calloc(f->nw, sizeof(*f->u))) == NULL)
		err(1, NULL);
	for (i = 0; i < f->nw; i++) {
		u = &f->u[i];
		u->iov.iov_base = &f->w[i].cookie;
		u->iov.iov_len = sizeof(f->w[i].cookie);
		u->msg.msg_iov = &u->iov;
		u->msg.msg_iovlen = 1;
		u->msg.msg_control = u->cm.buf;
		u->msg.msg_controllen = sizeof(u->cm.buf);
		u->cm.hdr.cmsg_level = SOL_SOCKET;
		u->cm.hdr.cmsg_type = SCM_RIGHTS;
		u->cm.hdr.cmsg_len = CMSG_LEN(sizeof(int));
		u_recv(f, i);
	}
	sqe = u_sqe(f);
	io_uring_prep_poll_add(sqe, f->sigfd, POLLIN);
	io_uring_sqe_set_data64(sqe, ID_SIGNAL);
	u_accept(f);
}

static void
u_accepted(struct floor *f, int fd, unsigned int flags)
{
	if (!(flags & IORING_CQE_F_MORE))
		u_accept(f);
	if (fd >= 0)
		take(f, fd);
}

static void
u_returned(struct floor *f, uint32_t i, int res)
{
	if (res != sizeof(uint64_t)) {
		warnx("worker %ld: channel closed or short", (long)f->w[i].pid);
		stop(f, 1);
	}
	u_recv(f, i);
	freed(f, i);
}

static void
u_complete(struct floor *f, uint64_t id, int res, unsigned int flags)
{
	if (id == ID_SIGNAL)
		stop(f, 0);
	else if (id == ID_SEND)
		errx(1, "sendmsg or close: %s", strerror(-res));
	else if (id == ID_LISTEN)
		u_accepted(f, res, flags);
	else
		u_returned(f, (uint32_t)id, res);
}

static void
u_loop(struct floor *f)
{
	struct io_uring_cqe	*cqe;
	unsigned int		 head, n;
	int			 e;

	for (;;) {
		if ((e = io_uring_submit_and_wait(&f->ring, 1)) < 0 &&
		    e != -EINTR)
			errx(1, "io_uring_enter: %s", strerror(-e));
		n = 0;
		io_uring_for_each_cqe(&f->ring, head, cqe) {
			u_complete(f, cqe->user_data, cqe->res, cqe->flags);
			n++;
		}
		io_uring_cq_advance(&f->ring, n);
	}
}
#endif

int
main(int argc, char *argv[])
{
	struct floor	 f;
	const char	*path = NULL;
	sigset_t	 sigs;
	long		 backlog = 1024, n = 8;
	int		 ch;
#ifdef FLOOR_URING
	int		 uring = 0;
#endif

	memset(&f, 0, sizeof(f));
	while ((ch = getopt(argc, argv, "+l:n:s:uU")) != -1)
		switch (ch) {
		case 'u':
		case 'U':
#ifdef FLOOR_URING
			uring = ch;
#else
			errx(1, "-%c: built without liburing", ch);
#endif
			break;
		case 'l':
			backlog = strtol(optarg, NULL, 10);
			break;
		case 'n':
			n = strtol(optarg, NULL, 10);
			break;
		case 's':
			path = optarg;
			break;
		default:
			usage();
		}
	argv += optind;
	if (*argv == NULL || path == NULL || n < 1 || n > MAX_WORKERS ||
	    backlog < 1)
		usage();

	sigemptyset(&sigs);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	sigprocmask(SIG_BLOCK, &sigs, NULL);
	signal(SIGPIPE, SIG_IGN);
	f.nw = (uint32_t)n;
	f.fcap = 4096 + (uint32_t)backlog;
	if ((f.w = calloc(f.nw, sizeof(*f.w))) == NULL ||
	    (f.idle = calloc(f.nw, sizeof(*f.idle))) == NULL ||
	    (f.fifo = calloc(f.fcap, sizeof(*f.fifo))) == NULL)
		err(1, NULL);
	if ((f.ep = epoll_create1(EPOLL_CLOEXEC)) == -1 ||
	    (f.sigfd = signalfd(-1, &sigs, SFD_CLOEXEC)) == -1)
		err(1, "epoll_create1, signalfd");
	f.lfd = listener(path, (int)backlog);
	watch(&f, f.sigfd, ID_SIGNAL);
	spawn_all(&f, argv);
#ifdef FLOOR_URING
	if (uring) {
		f.handoff = u_handoff;
		u_setup(&f, uring == 'U');
		u_loop(&f);
	}
#endif
	f.handoff = handoff;
	watch(&f, f.lfd, ID_LISTEN);
	loop(&f);
}
