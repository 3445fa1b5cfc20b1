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
 * Unit tests for the daemon's pure pieces, without processes and with
 * the clock passed in: the worker state machine, the crash-loop policy,
 * release, time-outs, growth and recycling decisions, signal names, the
 * cookie channel (over a real socketpair), and the spawn queue with its
 * threads (spawning nothing: a stand-in runs the jobs).
 */
#include <sys/socket.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <stdlib.h>
#include <unistd.h>

#include "check.h"
#include "kfcgi.h"
#include "crash.h"
#include "pool.h"
#include "spawnq.h"
#include "worker.h"

static void
test_backoff(void)
{
	unsigned int	 i;
	long		 prev = 0, ms;

	CHECK(backoff_delay_ms(0) == 0);
	CHECK(backoff_delay_ms(1) == 0);
	CHECK(backoff_delay_ms(2) == 100);
	CHECK(backoff_delay_ms(3) == 200);
	CHECK(backoff_delay_ms(4) == 400);
	for (i = 1; i < 100; i++) {
		ms = backoff_delay_ms(i);
		CHECK(ms >= prev);
		CHECK(ms <= 30000);
		prev = ms;
	}
	CHECK(backoff_delay_ms(100) == 30000);
	CHECK(backoff_delay_ms(~0U) == 30000);
}

/* Only the transitions in the table; DEAD is final. */
static void
test_transitions(void)
{
	CHECK(worker_can(W_IDLE, W_BUSY));
	CHECK(worker_can(W_BUSY, W_IDLE));
	CHECK(worker_can(W_BUSY, W_DRAINING));
	CHECK(worker_can(W_RUNNING, W_EXITING));
	CHECK(!worker_can(W_RUNNING, W_IDLE));
	CHECK(!worker_can(W_RUNNING, W_BUSY));
	CHECK(!worker_can(W_DRAINING, W_IDLE));
	CHECK(!worker_can(W_DRAINING, W_BUSY));
	CHECK(!worker_can(W_EXITING, W_IDLE));
	CHECK(!worker_can(W_KILLED, W_EXITING));
	CHECK(!worker_can(W_DEAD, W_IDLE));
	CHECK(worker_can(W_KILLED, W_DEAD));
}

/* The lists and counts follow every change of state. */
static void
test_worker_lists(void)
{
	struct workers	 ws;
	struct worker	*a, *b, *c;

	memset(&ws, 0, sizeof(ws));
	workers_init(&ws, 4);
	a = worker_add(&ws, 101, W_IDLE, 1000);
	b = worker_add(&ws, 102, W_IDLE, 2000);
	c = worker_add(&ws, 103, W_IDLE, 3000);
	CHECK(workers_live(&ws) == 3 && ws.nall == 3);
	CHECK(TAILQ_FIRST(&ws.idle) == c);	/* handed out first */
	CHECK(worker_oldest_idle(&ws) == a);	/* released first */
	CHECK(worker_find(&ws, 102) == b && worker_find(&ws, 104) == NULL);
	worker_set(&ws, c, W_BUSY, 3500);
	CHECK(TAILQ_FIRST(&ws.idle) == b && TAILQ_FIRST(&ws.busy) == c);
	CHECK(ws.count[W_IDLE] == 2 && ws.count[W_BUSY] == 1);
	worker_set(&ws, c, W_DRAINING, 3600);
	CHECK(TAILQ_EMPTY(&ws.busy) && TAILQ_FIRST(&ws.exiting) == c);
	CHECK(workers_live(&ws) == 2);
	worker_set(&ws, c, W_EXITING, 3700);
	worker_set(&ws, c, W_DEAD, 3800);
	CHECK(TAILQ_EMPTY(&ws.exiting) && ws.nall == 2);
	CHECK(worker_find(&ws, 103) == NULL);
	free(c);
	worker_set(&ws, a, W_IDLE, 4000);	/* no change, no move */
	CHECK(worker_oldest_idle(&ws) == a && a->since == 1000);
	worker_set(&ws, b, W_DEAD, 4000);
	worker_set(&ws, a, W_DEAD, 4000);
	free(a);
	free(b);
	workers_free(&ws);
}

/* Release the oldest idle worker, never a busy one, never below -n. */
static void
test_release(void)
{
	struct workers	 ws;
	struct worker	*old, *mid, *busy, *w;
	msec_t		 next;

	memset(&ws, 0, sizeof(ws));
	workers_init(&ws, 4);
	busy = worker_add(&ws, 201, W_IDLE, 0);
	old = worker_add(&ws, 202, W_IDLE, 1000);
	mid = worker_add(&ws, 203, W_IDLE, 2000);
	worker_set(&ws, busy, W_BUSY, 500);
	CHECK(policy_release(&ws, 5000, 10000, 1, &next) == NULL);
	CHECK(next == 11000);		/* the oldest idle's due time */
	w = policy_release(&ws, 11000, 10000, 1, &next);
	CHECK(w == old);
	worker_set(&ws, old, W_EXITING, 11000);
	CHECK(policy_release(&ws, 11000, 10000, 1, &next) == NULL);
	CHECK(next == 12000);
	CHECK(policy_release(&ws, 12000, 10000, 1, &next) == mid);
	/* At the floor: nothing to release, nothing to wait for. */
	CHECK(policy_release(&ws, 99000, 10000, 3, &next) == NULL);
	CHECK(next == -1);
	CHECK(policy_release(&ws, 2000, 0, 1, &next) == mid);
	worker_set(&ws, mid, W_DEAD, 0);
	worker_set(&ws, old, W_DEAD, 0);
	worker_set(&ws, busy, W_DEAD, 0);
	free(mid);
	free(old);
	free(busy);
	workers_free(&ws);
}

/* Deadlines over a list ordered by time in state: grace, time-out. */
static void
test_expired(void)
{
	struct workers	 ws;
	struct worker	*a, *b;
	msec_t		 next;

	memset(&ws, 0, sizeof(ws));
	workers_init(&ws, 4);
	a = worker_add(&ws, 301, W_RUNNING, 0);
	b = worker_add(&ws, 302, W_RUNNING, 0);
	CHECK(policy_expired(&ws.exiting, 0, 5000, &next) == NULL &&
	    next == -1);
	worker_set(&ws, a, W_EXITING, 1000);
	worker_set(&ws, b, W_EXITING, 3000);
	CHECK(policy_expired(&ws.exiting, 5999, 5000, &next) == NULL);
	CHECK(next == 6000);
	CHECK(policy_expired(&ws.exiting, 6000, 5000, &next) == a);
	worker_set(&ws, a, W_KILLED, 6000);
	CHECK(policy_expired(&ws.exiting, 6000, 5000, &next) == NULL);
	CHECK(next == 8000);
	worker_set(&ws, a, W_DEAD, 0);
	worker_set(&ws, b, W_DEAD, 0);
	free(a);
	free(b);
	workers_free(&ws);
}

static void
test_grow_and_recycle(void)
{
	unsigned int	 i;
	uint64_t	 at, lo = ~0ULL, hi = 0;

	CHECK(policy_grow_wait(1000, 0) == 0);		/* after silence */
	CHECK(policy_grow_wait(1000, 1000) == 2);	/* just answered */
	CHECK(policy_grow_wait(1001, 1000) == 1);
	CHECK(policy_recycle_at(0, 12345) == 0);	/* never */
	CHECK(policy_recycle_at(1, 7) == 1);
	for (i = 0; i < 1000; i++) {
		at = policy_recycle_at(100, i * 2654435761U);
		lo = at < lo ? at : lo;
		hi = at > hi ? at : hi;
	}
	CHECK(lo >= 90 && hi <= 110);
	CHECK(hi - lo >= 10);		/* spread: not all at once */
}

/* Only failures to start throttle; counted per round. */
static void
test_crash_policy(void)
{
	struct crash	 c;
	msec_t		 t = 10000;

	crash_init(&c, 4);
	CHECK(crash_classify(100, 0, 0) == DEATH_START);
	CHECK(crash_classify(249, 0, 0) == DEATH_START);
	CHECK(crash_classify(250, 0, 0) == DEATH_CRASH);
	CHECK(crash_classify(100, 1, 0) == DEATH_RECYCLE);
	CHECK(crash_classify(100, 0, 1) == DEATH_RECYCLE);
	CHECK(crash_classify(2500, 0, 0) == DEATH_CRASH);

	/* Round 1: three workers started together die together. */
	CHECK(crash_death(&c, DEATH_START, t - 50, t) == 0);
	CHECK(crash_death(&c, DEATH_START, t - 50, t + 1) == 0);
	CHECK(crash_death(&c, DEATH_START, t - 50, t + 2) == 0);
	CHECK(c.streak == 1);
	/* Round 2: restarted at once, dead again: 100 ms. */
	CHECK(crash_death(&c, DEATH_START, t + 5, t + 30) == 100);
	CHECK(crash_wait(&c, t + 80) == 50);
	/* Same round: the delay told is the one left, not a new one. */
	CHECK(crash_death(&c, DEATH_START, t + 5, t + 80) == 50);
	CHECK(c.streak == 2);
	CHECK(crash_death(&c, DEATH_START, t + 200, t + 230) == 200);
	CHECK(c.streak == 3);
	/* No failure for CRASH_EARLY_MS after that: settled. */
	CHECK(!crash_settled(&c, t + 1000));
	CHECK(crash_settled(&c, t + 230 + CRASH_EARLY_MS));
	CHECK(c.streak == 0 && c.proven && crash_wait(&c, t + 5000) == 0);

	/* Proven: a crash on a request now and then restarts at once. */
	t = 100000;
	CHECK(crash_death(&c, DEATH_START, t - 100, t) == 0);
	CHECK(crash_death(&c, DEATH_START, t, t + 300) == 0);
	CHECK(crash_death(&c, DEATH_START, t + 300, t + 600) == 0);
	CHECK(crash_death(&c, DEATH_START, t + 600, t + 900) == 0);
	/* A new second: forgiven again. */
	CHECK(crash_death(&c, DEATH_START, t + 900, t + 1200) == 0);
	/* Beyond the allowance within a second: a crash loop again. */
	CHECK(crash_death(&c, DEATH_START, t + 1200, t + 1201) == 0);
	CHECK(crash_death(&c, DEATH_START, t + 1201, t + 1202) == 0);
	CHECK(crash_death(&c, DEATH_START, t + 1202, t + 1203) == 0);
	CHECK(crash_death(&c, DEATH_START, t + 1203, t + 1204) == 0);
	CHECK(c.streak == 1);
	CHECK(crash_death(&c, DEATH_START, t + 1205, t + 1206) == 100);

	/* Recycling, and a crash after living a while, reset it all. */
	CHECK(crash_death(&c, DEATH_RECYCLE, t + 1207, t + 1208) == 0);
	CHECK(c.streak == 0 && crash_wait(&c, t + 1208) == 0);
	CHECK(crash_death(&c, DEATH_START, t + 5000, t + 5001) == 0);
	CHECK(crash_death(&c, DEATH_CRASH, t, t + 5002) == 0);
	CHECK(c.streak == 0 && c.fails == 0);
}

static void
test_signame(void)
{
	CHECK(signame_parse("TERM") == SIGTERM);
	CHECK(signame_parse("SIGUSR1") == SIGUSR1);
	CHECK(signame_parse("usr2") == SIGUSR2);
	CHECK(signame_parse("10") == 10);
	CHECK(signame_parse("0") == -1);
	CHECK(signame_parse("999") == -1);
	CHECK(signame_parse("BOGUS") == -1);
	CHECK(signame_parse("SIG") == -1);
	CHECK(signame_parse("") == -1);
	CHECK(signame_parse("15x") == -1);
	CHECK(strcmp(signame(SIGHUP), "SIGHUP") == 0);
}

/* A dead worker's connection: untouched, read, or nothing there yet. */
static void
test_unread(void)
{
	int		 sv[2];
	unsigned char	 begin[8] = { 1, 1, 0, 1, 0, 8, 0, 0 };
	unsigned char	 params[8] = { 1, 4, 0, 1, 0, 8, 0, 0 };
	char		 b[8];

	CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
	CHECK(fdpass_unread(sv[0]) == -1);
	CHECK(write(sv[1], begin, 1) == 1);
	CHECK(fdpass_unread(sv[0]) == -1);	/* a header on its way */
	CHECK(write(sv[1], begin + 1, 7) == 7);
	CHECK(fdpass_unread(sv[0]) == 1);
	CHECK(fdpass_unread(sv[0]) == 1);	/* peeked, not taken */
	CHECK(read(sv[0], b, 8) == 8);
	CHECK(write(sv[1], params, 8) == 8);
	CHECK(fdpass_unread(sv[0]) == 0);	/* the middle of a request */
	CHECK(read(sv[0], b, 8) == 8);
	close(sv[1]);
	CHECK(fdpass_unread(sv[0]) == 0);	/* closed */
	close(sv[0]);
}

/* Unpredictable: no two alike, no constant step between them. */
static void
test_cookies(void)
{
	uint64_t	 c[256];
	int		 i, j, same = 0, steady = 0;

	for (i = 0; i < 256; i++)
		c[i] = cookie_next();
	for (i = 0; i < 256; i++)
		for (j = i + 1; j < 256; j++)
			same += c[i] == c[j];
	for (i = 2; i < 256; i++)
		steady += c[i] - c[i - 1] == c[i - 1] - c[i - 2];
	CHECK(same == 0);
	CHECK(steady < 4);
}

/* The receiver gets the cookie and a working descriptor in one recvmsg. */
static void
test_fdpass_roundtrip(void)
{
	int		 sv[2], pp[2], got = -1;
	uint64_t	 cookie = 0x0123456789abcdefULL, back = 0;
	struct msghdr	 msg;
	struct iovec	 iov;
	union {
		struct cmsghdr	hdr;
		unsigned char	buf[CMSG_SPACE(sizeof(int))];
	}		 cbuf;
	struct cmsghdr	*cmsg;
	char		 c = 0;

	CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
	CHECK(pipe(pp) == 0);
	CHECK(fdpass_send(sv[0], cookie, pp[1]) == 0);
	memset(&msg, 0, sizeof(msg));
	iov.iov_base = &back;
	iov.iov_len = sizeof(back);
	msg.msg_iov = &iov;
	msg.msg_iovlen = 1;
	msg.msg_control = cbuf.buf;
	msg.msg_controllen = sizeof(cbuf.buf);
	CHECK(recvmsg(sv[1], &msg, 0) == sizeof(back));
	CHECK(back == cookie);
	cmsg = CMSG_FIRSTHDR(&msg);
	CHECK(cmsg != NULL && cmsg->cmsg_type == SCM_RIGHTS);
	if (cmsg != NULL)
		memcpy(&got, CMSG_DATA(cmsg), sizeof(got));
	CHECK(got >= 0 && write(got, "x", 1) == 1);
	CHECK(read(pp[0], &c, 1) == 1 && c == 'x');
	close(got);
	close(pp[0]);
	close(pp[1]);
	close(sv[0]);
	close(sv[1]);
}

static void
test_cookie_reads(void)
{
	int		 sv[2];
	uint64_t	 cookie = 42;
	unsigned char	 buf[8];
	size_t		 len = 0;

	CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);

	/* Nothing there yet: EAGAIN, never blocking. */
	CHECK(fdpass_read_cookie(sv[0], buf, &len) == -1 && errno == EAGAIN);

	/* A cookie in two pieces is put together. */
	CHECK(write(sv[1], &cookie, 3) == 3);
	CHECK(fdpass_read_cookie(sv[0], buf, &len) == 3 && len == 3);
	CHECK(write(sv[1], (char *)&cookie + 3, 5) == 5);
	CHECK(fdpass_read_cookie(sv[0], buf, &len) == 5 && len == 8);
	CHECK(memcmp(buf, &cookie, 8) == 0);

	/* More than a cookie is a protocol violation. */
	len = 0;
	CHECK(write(sv[1], "0123456789", 10) == 10);
	CHECK(fdpass_read_cookie(sv[0], buf, &len) == -1 && errno == EPROTO);

	/* A closed channel reads as EOF. */
	close(sv[1]);
	len = 0;
	while (fdpass_read_cookie(sv[0], buf, &len) > 0)
		len = 0;
	CHECK(fdpass_read_cookie(sv[0], buf, &len) == 0);

	/* Handing off to a worker that is gone fails without SIGPIPE. */
	CHECK(fdpass_send(sv[0], cookie, 1) == -1 && errno == EPIPE);
	close(sv[0]);
}

/* Growth by demand: held and queued connections, less spawns on the way. */
static void
test_grow_count(void)
{
	CHECK(policy_grow_count(1, 63, 0) == 64);
	CHECK(policy_grow_count(1, -1, 0) == 1);
	CHECK(policy_grow_count(1, 0, 0) == 1);
	CHECK(policy_grow_count(3, 10, 5) == 8);
	CHECK(policy_grow_count(1, 40, 62) == 0);
	CHECK(policy_grow_count(0, 0, 0) == 0);
	CHECK(spawnq_threads(-1) == 1);
	CHECK(spawnq_threads(0) == 1);
	CHECK(spawnq_threads(2) == 2);
	CHECK(spawnq_threads(1000) == SPAWNQ_MAX_THREADS);
}

/* A job of the stand-in spawner: the thread writes `pid' and `ran'. */
struct fake {
	struct spawn_job	 job;
	int			 n;
	int			 landed;
	pthread_t		 ran;
};

static int	 gate[2] = { -1, -1 }, began[2] = { -1, -1 };

static void
fake_run(struct spawn_job *j)
{
	struct fake	*f = (struct fake *)j;
	char		 c;

	f->ran = pthread_self();
	/* Job 0 of the cancel test holds its thread until the gate opens. */
	if (gate[0] != -1 && f->n == 0) {
		(void)write(began[1], "b", 1);
		(void)read(gate[0], &c, 1);
	}
	j->err = f->n % 7 == 6 ? ENOENT : 0;
	j->pid = j->err ? -1 : 1000 + f->n;
}

static void
fake_landed(struct spawn_job *j, void *arg)
{
	struct fake	*f = (struct fake *)j;

	f->landed++;
	(*(int *)arg)++;
}

/* Threads run the jobs, every job lands once, in the caller's thread. */
static void
test_spawnq_threads(int threads)
{
	static struct fake	 f[50];
	struct spawnq		 q;
	struct pollfd		 pfd;
	int			 i, landed = 0, ok = 1;

	memset(f, 0, sizeof(f));
	CHECK(spawnq_init(&q, threads, fake_run, fake_landed, &landed) == 0);
	for (i = 0; i < 50; i++) {
		f[i].n = i;
		spawnq_submit(&q, &f[i].job);
	}
	CHECK(q.nthreads == threads);
	/* The loop learns of landed jobs from the wake descriptor alone. */
	pfd.fd = spawnq_fd(&q);
	pfd.events = POLLIN;
	CHECK(poll(&pfd, 1, 5000) == 1);
	spawnq_wait(&q);
	CHECK(landed == 50 && q.inflight == 0);
	for (i = 0; i < 50; i++) {
		ok &= f[i].landed == 1;
		ok &= f[i].job.pid == (i % 7 == 6 ? -1 : 1000 + i);
		ok &= f[i].job.err == (i % 7 == 6 ? ENOENT : 0);
		ok &= (threads == 0) == pthread_equal(f[i].ran,
		    pthread_self());
	}
	CHECK(ok);
	/* Landing again finds nothing; the wake pipe was drained. */
	CHECK(spawnq_land(&q) == 0);
	spawnq_free(&q);
}

static void
fake_gone(struct spawn_job *j, void *arg)
{
	struct fake	*f = (struct fake *)j;

	f->landed = -1;
	(*(int *)arg)++;
}

/* Cancelling takes back the queued jobs, not the one being run. */
static void
test_spawnq_cancel(void)
{
	static struct fake	 f[10];
	struct spawnq		 q;
	int			 i, landed = 0;
	char			 c;

	memset(f, 0, sizeof(f));
	CHECK(pipe(gate) == 0 && pipe(began) == 0);
	CHECK(spawnq_init(&q, 1, fake_run, fake_landed, &landed) == 0);
	for (i = 0; i < 10; i++) {
		f[i].n = i;
		spawnq_submit(&q, &f[i].job);
	}
	CHECK(read(began[0], &c, 1) == 1);
	CHECK(spawnq_cancel(&q, fake_gone) == 9);
	/* The callbacks share the queue's argument: 9 gone so far. */
	CHECK(landed == 9 && q.inflight == 1);
	CHECK(spawnq_cancel(&q, fake_gone) == 0);
	CHECK(write(gate[1], "g", 1) == 1);
	spawnq_wait(&q);
	CHECK(landed == 10 && f[0].landed == 1 && f[0].job.pid == 1000);
	for (i = 1; i < 10; i++)
		CHECK(f[i].landed == -1);
	spawnq_free(&q);
	close(gate[0]);
	close(gate[1]);
	close(began[0]);
	close(began[1]);
	gate[0] = gate[1] = began[0] = began[1] = -1;
}

int
main(void)
{
	test_backoff();
	test_transitions();
	test_worker_lists();
	test_release();
	test_expired();
	test_grow_and_recycle();
	test_crash_policy();
	test_signame();
	test_cookies();
	test_unread();
	test_fdpass_roundtrip();
	test_cookie_reads();
	test_grow_count();
	test_spawnq_threads(0);
	test_spawnq_threads(1);
	test_spawnq_threads(3);
	test_spawnq_cancel();
	printf("unit: %d passed, %d failed\n", checks - failures, failures);
	return failures != 0;
}
