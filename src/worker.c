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
 * Worker records: the state machine, the pid table, spawning a worker
 * and reaping it, and reading what it writes on its channel.
 */
#include <sys/socket.h>
#include <sys/wait.h>

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kfcgi.h"
#include "log.h"
#include "pool.h"

static const char *const state_names[] = {
	"new", "running", "idle", "busy", "draining", "exiting", "killed"
};

/* pid -> worker, so reaping costs O(1) however large the pool. */
static struct worker **
hash_slot(struct pool *p, pid_t pid)
{
	return &p->hash[(size_t)pid & p->hashmask];
}

struct worker *
hash_find(struct pool *p, pid_t pid)
{
	struct worker	*w;

	for (w = *hash_slot(p, pid); w != NULL; w = w->hnext)
		if (w->pid == pid)
			return w;
	return NULL;
}

static void
hash_remove(struct pool *p, struct worker *w)
{
	struct worker	**wp;

	for (wp = hash_slot(p, w->pid); *wp != NULL; wp = &(*wp)->hnext)
		if (*wp == w) {
			*wp = w->hnext;
			return;
		}
}

void
hash_init(struct pool *p, int most)
{
	size_t	 size = 64;

	while (size < (size_t)most * 2)
		size *= 2;
	if ((p->hash = calloc(size, sizeof(*p->hash))) == NULL)
		fatal("pool: hash table");
	p->hashmask = size - 1;
}

static void
chan_close(struct worker *w)
{
	if (w->chan == -1)
		return;
	event_del(&w->ev);
	close(w->chan);
	w->chan = -1;
}

/* Counted workers are the pool's size: they serve the current set. */
static int
state_counted(enum wstate s)
{
	return s == W_RUNNING || s == W_IDLE || s == W_BUSY;
}

static void
worker_leave(struct pool *p, struct worker *w)
{
	switch (w->state) {
	case W_IDLE:
		TAILQ_REMOVE(&p->idle, w, entry);
		break;
	case W_EXITING:
		TAILQ_REMOVE(&p->exiting, w, entry);
		break;
	default:
		break;
	}
	if (state_counted(w->state))
		p->nlive--;
}

void
pool_arm_release(struct pool *p)
{
	struct worker	*w;
	struct timespec	 t = clock_now();

	if (!p->conf->varpool || evtimer_pending(&p->ev_release, NULL) ||
	    p->nlive <= p->conf->nworkers ||
	    (w = TAILQ_LAST(&p->idle, workerq)) == NULL)
		return;
	clock_timer_ms(&p->ev_release,
	    p->conf->waittime * 1000L - clock_ms_between(&w->since, &t));
}

void
pool_arm_kill(struct pool *p)
{
	struct worker	*w;
	struct timespec	 t = clock_now();

	if (evtimer_pending(&p->ev_kill, NULL) ||
	    (w = TAILQ_FIRST(&p->exiting)) == NULL)
		return;
	clock_timer_ms(&p->ev_kill, clock_ms_between(&t, &w->since));
}

static void
worker_enter(struct pool *p, struct worker *w, enum wstate to)
{
	w->state = to;
	if (state_counted(to))
		p->nlive++;
	switch (to) {
	case W_IDLE:
		w->since = clock_now();
		TAILQ_INSERT_HEAD(&p->idle, w, entry);
		pool_arm_release(p);
		break;
	case W_EXITING:
		chan_close(w);
		kill(w->pid, SIGTERM);
		w->since = clock_add_ms(clock_now(), KFCGI_GRACE_MS);
		TAILQ_INSERT_TAIL(&p->exiting, w, entry);
		pool_arm_kill(p);
		break;
	case W_KILLED:
		chan_close(w);
		kill(w->pid, SIGKILL);
		break;
	default:
		break;
	}
}

/* The one place where a worker changes state. */
void
worker_set(struct pool *p, struct worker *w, enum wstate to)
{
	if (w->state == to)
		return;
	log_debug("worker %d: %s -> %s", (int)w->pid, state_names[w->state],
	    state_names[to]);
	worker_leave(p, w);
	worker_enter(p, w, to);
}

/*
 * The worker, not we, ended its service: its death will count as one
 * it chose, toward the crash-loop back-off, and be logged as such.
 */
void
worker_fault(struct pool *p, struct worker *w, enum wstate to)
{
	w->fault = 1;
	worker_set(p, w, to);
}

/* Ask a worker to go: at once if idle, after its connection if busy. */
void
worker_retire(struct pool *p, struct worker *w)
{
	switch (w->state) {
	case W_RUNNING:
	case W_IDLE:
		worker_set(p, w, W_EXITING);
		break;
	case W_BUSY:
		worker_set(p, w, W_DRAINING);
		break;
	default:
		break;
	}
}

static void
worker_violation(struct pool *p, struct worker *w, const char *what)
{
	p->violations++;
	log_warnx("worker %d: protocol violation: %s; killing it",
	    (int)w->pid, what);
	worker_fault(p, w, W_KILLED);
}

/*
 * A worker returned its connection.  While stopping, the one connection
 * we had accepted but not handed off still gets served by it.
 */
static void
worker_freed(struct pool *p, struct worker *w)
{
	if (w->state != W_DRAINING) {
		worker_set(p, w, W_IDLE);
		p->last_free = w->since;
		return;
	}
	if (p->stopping && p->pending != -1 &&
	    pool_handoff(p, w, p->pending) == 0) {
		p->pending = -1;
		worker_set(p, w, W_DRAINING);
		return;
	}
	worker_set(p, w, W_EXITING);
}

static void
worker_chan_cb(int fd UNUSED, short events UNUSED, void *arg)
{
	struct worker	*w = arg;
	struct pool	*p = w->pool;
	ssize_t		 n;

	n = fdpass_read_cookie(fd, w->reply, &w->replylen);
	if (n == -1 && (errno == EAGAIN || errno == EWOULDBLOCK))
		return;
	if (n == 0 && w->state == W_IDLE) {
		/* Leaving on its own, as a worker recycling itself does. */
		log_info("worker %d: closed its channel; stopping it",
		    (int)w->pid);
		worker_fault(p, w, W_EXITING);
	} else if (n == 0) {
		log_warnx("worker %d: closed its channel holding a "
		    "connection, which goes with it; stopping it",
		    (int)w->pid);
		worker_fault(p, w, W_EXITING);
	} else if (n == -1 && errno == EPROTO)
		worker_violation(p, w, "wrote more than a cookie");
	else if (n == -1) {
		log_warn("worker %d: channel", (int)w->pid);
		worker_fault(p, w, W_KILLED);
	} else if (w->state != W_BUSY && w->state != W_DRAINING)
		worker_violation(p, w, "wrote while holding no connection");
	else if (memcmp(w->reply, &w->cookie, w->replylen) != 0)
		/* Checked as it comes: garbage is caught without a wait. */
		worker_violation(p, w, "wrong cookie");
	else if (w->replylen < sizeof(w->cookie))
		return;
	else {
		w->replylen = 0;
		w->served++;
		worker_freed(p, w);
	}
	pool_fill(p);
	pool_kick(p);
}

/* Spawn one worker and place it; NULL with errno on failure. */
struct worker *
worker_new(struct pool *p)
{
	struct worker	 *w, **slot;
	int		  sv[2] = { -1, -1 }, saved;

	if ((w = calloc(1, sizeof(*w))) == NULL)
		return NULL;
	if (p->conf->varpool &&
	    socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == -1) {
		free(w);
		return NULL;
	}
	w->pid = output_spawn(&w->out, &p->spawner, sv[1]);
	saved = errno;
	if (sv[1] != -1)
		close(sv[1]);
	if (w->pid == -1) {
		if (sv[0] != -1)
			close(sv[0]);
		free(w);
		errno = saved;
		return NULL;
	}
	w->pool = p;
	w->gen = p->gen;
	w->chan = sv[0];
	w->started = clock_now();
	if (w->chan != -1) {
		event_set(&w->ev, w->chan, EV_READ | EV_PERSIST,
		    worker_chan_cb, w);
		event_add(&w->ev, NULL);
	}
	slot = hash_slot(p, w->pid);
	w->hnext = *slot;
	*slot = w;
	TAILQ_INSERT_TAIL(&p->workers, w, all);
	p->nall++;
	p->spawned++;
	log_debug("worker %d: started", (int)w->pid);
	worker_set(p, w, p->conf->varpool ? W_IDLE : W_RUNNING);
	return w;
}

static void
worker_log_exit(struct worker *w, int status, long lived, const char *plan)
{
	const char	*lost = w->state == W_BUSY || w->state == W_DRAINING ?
			    " holding a connection" : "";

	if (WIFSIGNALED(status))
		log_warnx("worker %d: killed by signal %d (%s)%s after "
		    "%ld.%02ld s%s", (int)w->pid, WTERMSIG(status),
		    strsignal(WTERMSIG(status)), lost, lived / 1000,
		    lived % 1000 / 10, plan);
	else
		log_warnx("worker %d: exited with status %d%s after "
		    "%ld.%02ld s%s", (int)w->pid, WEXITSTATUS(status), lost,
		    lived / 1000, lived % 1000 / 10, plan);
}

/*
 * Does this death count toward a crash loop?  A clean exit after some
 * work is recycling (php-cgi exits after 500 requests, which can take
 * well under EARLY_DEATH_MS on a busy site), not a crash; a clean exit
 * right at start, though, would otherwise be a tight fork loop.
 */
static int
died_early(const struct worker *w, int status, long lived)
{
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0 &&
	    (w->served > 0 || lived >= CLEAN_EXIT_MIN_MS))
		return 0;
	return lived < EARLY_DEATH_MS;
}

void
worker_reaped(struct pool *p, struct worker *w, int status)
{
	struct timespec	 t = clock_now();
	long		 lived = clock_ms_between(&w->started, &t), delay = 0;
	int		 expected = !w->fault && (w->state == W_EXITING ||
			    w->state == W_KILLED);
	char		 plan[64] = "";

	worker_leave(p, w);
	if (!expected) {
		p->crashed++;
		if (died_early(w, status, lived))
			delay = pool_early_death(p);
		else
			p->streak = 0;
		if (!p->stopping && p->nlive < p->conf->nworkers)
			snprintf(plan, sizeof(plan), delay > 0 ?
			    ", restarting in %ld.%ld s" : ", restarting",
			    delay / 1000, delay % 1000 / 100);
		worker_log_exit(w, status, lived, plan);
	} else
		log_debug("worker %d: exited after %ld ms", (int)w->pid,
		    lived);
	hash_remove(p, w);
	TAILQ_REMOVE(&p->workers, w, all);
	p->nall--;
	chan_close(w);
	output_stop(&w->out);
	free(w);
}
