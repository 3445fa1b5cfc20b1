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

#define EARLY_DEATH_MS	2000	/* dying sooner counts toward a crash loop */
#define ACCEPT_BATCH	64	/* connections per accept event */
#define GROW_WAIT_MS	2	/* for a busy worker before growing */
#define ACCEPT_PAUSE_MS	100	/* back-off after accept failed */

static void	 worker_set(struct pool *, struct worker *, enum wstate);
static void	 pool_fill(struct pool *);
static void	 pool_kick(struct pool *);
static void	 pool_dispatch(struct pool *);
static int	 pool_handoff(struct pool *, struct worker *, int);
static void	 pool_want_worker(struct pool *);
static long	 grow_wait_ms(const struct pool *, const struct timespec *);

static const char *const state_names[] = {
	"new", "running", "idle", "busy", "draining", "exiting", "killed"
};

static struct timespec
now(void)
{
	struct timespec	 ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts;
}

static long
ms_between(const struct timespec *a, const struct timespec *b)
{
	return (b->tv_sec - a->tv_sec) * 1000 +
	    (b->tv_nsec - a->tv_nsec) / 1000000;
}

static struct timespec
ts_add_ms(struct timespec ts, long ms)
{
	ts.tv_sec += ms / 1000;
	ts.tv_nsec += (ms % 1000) * 1000000;
	if (ts.tv_nsec >= 1000000000) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000;
	}
	return ts;
}

static void
timer_in_ms(struct event *ev, long ms)
{
	struct timeval	 tv;

	if (ms < 0)
		ms = 0;
	tv.tv_sec = ms / 1000;
	tv.tv_usec = (ms % 1000) * 1000;
	evtimer_add(ev, &tv);
}

/* pid -> worker, so reaping costs O(1) however large the pool. */
static struct worker **
hash_slot(struct pool *p, pid_t pid)
{
	return &p->hash[(size_t)pid & p->hashmask];
}

static struct worker *
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

static void
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

static void
release_arm(struct pool *p)
{
	struct worker	*w;
	struct timespec	 t = now();

	if (!p->conf->varpool || evtimer_pending(&p->ev_release, NULL) ||
	    p->nlive <= p->conf->nworkers ||
	    (w = TAILQ_LAST(&p->idle, workerq)) == NULL)
		return;
	timer_in_ms(&p->ev_release,
	    p->conf->waittime * 1000L - ms_between(&w->since, &t));
}

static void
kill_arm(struct pool *p)
{
	struct worker	*w;
	struct timespec	 t = now();

	if (evtimer_pending(&p->ev_kill, NULL) ||
	    (w = TAILQ_FIRST(&p->exiting)) == NULL)
		return;
	timer_in_ms(&p->ev_kill, ms_between(&t, &w->since));
}

static void
worker_enter(struct pool *p, struct worker *w, enum wstate to)
{
	w->state = to;
	if (state_counted(to))
		p->nlive++;
	switch (to) {
	case W_IDLE:
		w->since = now();
		TAILQ_INSERT_HEAD(&p->idle, w, entry);
		release_arm(p);
		break;
	case W_EXITING:
		chan_close(w);
		kill(w->pid, SIGTERM);
		w->since = ts_add_ms(now(), KFCGI_GRACE_MS);
		TAILQ_INSERT_TAIL(&p->exiting, w, entry);
		kill_arm(p);
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
static void
worker_set(struct pool *p, struct worker *w, enum wstate to)
{
	if (w->state == to)
		return;
	log_debug("worker %d: %s -> %s", (int)w->pid, state_names[w->state],
	    state_names[to]);
	worker_leave(p, w);
	worker_enter(p, w, to);
}

/* Ask a worker to go: at once if idle, after its connection if busy. */
static void
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
	worker_set(p, w, W_KILLED);
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
worker_chan_cb(int fd, short events, void *arg)
{
	struct worker	*w = arg;
	struct pool	*p = w->pool;
	ssize_t		 n;

	n = fdpass_read_cookie(fd, w->reply, &w->replylen);
	if (n == -1 && (errno == EAGAIN || errno == EWOULDBLOCK))
		return;
	if (n == 0) {
		log_warnx("worker %d: closed its channel%s; stopping it",
		    (int)w->pid, w->state == W_IDLE ? "" :
		    ", its connection goes with it");
		worker_set(p, w, W_EXITING);
	} else if (n == -1 && errno == EPROTO)
		worker_violation(p, w, "wrote more than a cookie");
	else if (n == -1) {
		log_warn("worker %d: channel", (int)w->pid);
		worker_set(p, w, W_KILLED);
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
static struct worker *
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
	w->pid = spawn_worker(&p->spawner, sv[1]);
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
	w->started = now();
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

/* Count an early death and hold further starts back; returns the delay. */
static long
pool_early_death(struct pool *p)
{
	long	 ms = backoff_delay_ms(++p->streak);

	p->last_early = now();
	if (ms > 0 && !p->throttled) {
		p->throttled = 1;
		timer_in_ms(&p->ev_respawn, ms);
	}
	return ms;
}

static struct worker *
pool_spawn(struct pool *p)
{
	struct worker	*w;

	if (p->throttled || p->stopping)
		return NULL;
	if ((w = worker_new(p)) != NULL) {
		if (p->streak > 0)
			timer_in_ms(&p->ev_stable, EARLY_DEATH_MS);
		return w;
	}
	if (!p->started)
		fatal("spawn: %s", p->conf->argv[0]);
	log_warn("spawn: %s", p->conf->argv[0]);
	pool_early_death(p);
	return NULL;
}

/* Keep -n workers: replace the dead, start the first ones. */
static void
pool_fill(struct pool *p)
{
	while (!p->stopping && p->nlive < p->conf->nworkers)
		if (pool_spawn(p) == NULL)
			return;
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

static void
worker_reaped(struct pool *p, struct worker *w, int status)
{
	struct timespec	 t = now();
	long		 lived = ms_between(&w->started, &t), delay = 0;
	int		 expected = w->state == W_EXITING ||
			    w->state == W_KILLED;
	char		 plan[64] = "";

	worker_leave(p, w);
	if (!expected) {
		p->crashed++;
		if (lived < EARLY_DEATH_MS)
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
	free(w);
}

static void
pool_pause(struct pool *p)
{
	if (p->paused)
		return;
	event_del(&p->ev_accept);
	p->paused = 1;
}

/*
 * Accepting was paused for want of a worker or of descriptors; now that
 * something changed, try again.  Cheap when nothing was paused.
 */
static void
pool_kick(struct pool *p)
{
	struct worker	*w;

	if (!p->paused || p->stopping || evtimer_pending(&p->ev_resume, NULL))
		return;
	if (p->pending != -1) {
		if ((w = TAILQ_FIRST(&p->idle)) == NULL) {
			pool_want_worker(p);
			return;
		}
		if (pool_handoff(p, w, p->pending) == 0)
			p->pending = -1;
	}
	/* Saturated: the listen queue keeps the rest, in order. */
	if (TAILQ_EMPTY(&p->idle) && p->nlive >= p->conf->maxworkers)
		return;
	p->paused = 0;
	event_add(&p->ev_accept, NULL);
	pool_dispatch(p);
}

static int
pool_accept_one(struct pool *p)
{
	int	 fd;

	for (;;) {
		fd = accept4(p->listenfd, NULL, NULL, SOCK_CLOEXEC);
		if (fd != -1) {
			p->accepted++;
			return fd;
		}
		switch (errno) {
		case EINTR:
		case ECONNABORTED:
			continue;
		case EAGAIN:
			return -1;
		default:
			/*
			 * Out of descriptors or memory, most likely: leave
			 * connections queued in the kernel a while rather
			 * than spin on a socket that stays readable.
			 */
			log_warn("accept: %s", p->conf->sockpath);
			pool_pause(p);
			timer_in_ms(&p->ev_resume, ACCEPT_PAUSE_MS);
			return -1;
		}
	}
}

/*
 * No worker is idle: stop accepting, and grow the pool on a later pass
 * of the loop, once the cookies already waiting on the channels have
 * been read.  Growing at once would start a worker for every connection
 * that merely arrived before a busy worker's answer was read.
 */
static void
pool_want_worker(struct pool *p)
{
	struct timespec	 t;

	pool_pause(p);
	if (p->nlive >= p->conf->maxworkers || p->throttled ||
	    evtimer_pending(&p->ev_grow, NULL))
		return;
	t = now();
	timer_in_ms(&p->ev_grow, grow_wait_ms(p, &t));
}

/*
 * Workers that answered a moment ago are likely to again (a client
 * often sees its answer before we see the cookie), so only grow once
 * none has for GROW_WAIT_MS.  After silence, as in a burst of slow
 * requests, grow at once.
 */
static long
grow_wait_ms(const struct pool *p, const struct timespec *t)
{
	long	 since = ms_between(&p->last_free, t);

	return since < GROW_WAIT_MS ? GROW_WAIT_MS - since : 0;
}

static void
pool_grow_cb(int fd, short events, void *arg)
{
	struct pool	*p = arg;
	struct worker	*w;
	struct timespec	 t = now();
	long		 wait;

	if (p->pending != -1 && !p->stopping) {
		if ((w = TAILQ_FIRST(&p->idle)) == NULL) {
			if ((wait = grow_wait_ms(p, &t)) > 0) {
				timer_in_ms(&p->ev_grow, wait);
				return;
			}
			if (p->nlive < p->conf->maxworkers)
				w = pool_spawn(p);
		}
		if (w != NULL && pool_handoff(p, w, p->pending) == 0)
			p->pending = -1;
	}
	pool_kick(p);
}

static int
pool_handoff(struct pool *p, struct worker *w, int fd)
{
	w->cookie = cookie_next();
	if (fdpass_send(w->chan, w->cookie, fd) == -1) {
		log_warn("worker %d: hand-off failed; killing it",
		    (int)w->pid);
		worker_set(p, w, W_KILLED);
		return -1;
	}
	close(fd);
	worker_set(p, w, W_BUSY);
	return 0;
}

/*
 * Accept and hand off while there are workers.  With none to be had the
 * accepted connection waits in p->pending and the rest in the kernel's
 * listen queue, in order, until a worker frees up.
 */
static void
pool_dispatch(struct pool *p)
{
	struct worker	*w;
	int		 n;

	for (n = 0; n < ACCEPT_BATCH && !p->stopping; n++) {
		if (p->pending == -1 &&
		    (p->pending = pool_accept_one(p)) == -1)
			return;
		if ((w = TAILQ_FIRST(&p->idle)) == NULL) {
			pool_want_worker(p);
			return;
		}
		if (pool_handoff(p, w, p->pending) == 0)
			p->pending = -1;
	}
}

static void
pool_accept_cb(int fd, short events, void *arg)
{
	pool_dispatch(arg);
}

static void
pool_resume_cb(int fd, short events, void *arg)
{
	pool_kick(arg);
}

/* Release idle workers above -n, oldest first, after -w seconds. */
static void
pool_release_cb(int fd, short events, void *arg)
{
	struct pool	*p = arg;
	struct worker	*w;
	struct timespec	 t = now();

	while (p->nlive > p->conf->nworkers &&
	    (w = TAILQ_LAST(&p->idle, workerq)) != NULL &&
	    ms_between(&w->since, &t) >= p->conf->waittime * 1000L) {
		log_debug("worker %d: idle for %d s, releasing it",
		    (int)w->pid, p->conf->waittime);
		worker_set(p, w, W_EXITING);
	}
	release_arm(p);
}

static void
pool_kill_cb(int fd, short events, void *arg)
{
	struct pool	*p = arg;
	struct worker	*w;
	struct timespec	 t = now();

	while ((w = TAILQ_FIRST(&p->exiting)) != NULL &&
	    ms_between(&t, &w->since) <= 0) {
		log_warnx("worker %d: still running %d s after SIGTERM, "
		    "killing it", (int)w->pid, KFCGI_GRACE_MS / 1000);
		worker_set(p, w, W_KILLED);
	}
	kill_arm(p);
}

static void
pool_respawn_cb(int fd, short events, void *arg)
{
	struct pool	*p = arg;

	p->throttled = 0;
	pool_fill(p);
	pool_kick(p);
}

static void
pool_stable_cb(int fd, short events, void *arg)
{
	struct pool	*p = arg;
	struct timespec	 t = now();

	if (ms_between(&p->last_early, &t) >= EARLY_DEATH_MS)
		p->streak = 0;
}

static void
pool_stop(struct pool *p, int sig)
{
	struct worker	*w, *next;

	if (p->stopping)
		return;
	log_info("stop: SIG%s received, stopping %d workers",
	    sigabbrev_np(sig), p->nall);
	p->stopping = 1;
	if (p->conf->varpool && !p->paused)
		event_del(&p->ev_accept);
	evtimer_del(&p->ev_release);
	evtimer_del(&p->ev_respawn);
	for (w = TAILQ_FIRST(&p->workers); w != NULL; w = next) {
		next = TAILQ_NEXT(w, all);
		worker_retire(p, w);
	}
	timer_in_ms(&p->ev_stop, KFCGI_GRACE_MS);
	if (p->nall == 0)
		event_loopexit(NULL);
}

/* Busy workers had the grace period to finish; no more waiting. */
static void
pool_stop_cb(int fd, short events, void *arg)
{
	struct pool	*p = arg;
	struct worker	*w;

	TAILQ_FOREACH(w, &p->workers, all)
		if (w->state != W_KILLED) {
			log_warnx("worker %d: still running at the end of "
			    "the grace period, killing it", (int)w->pid);
			worker_set(p, w, W_KILLED);
		}
}

/*
 * A new set first, then the old one retires: the socket never closes
 * and the new workers are already taking connections.
 */
static void
pool_reload(struct pool *p)
{
	struct worker	*w, *next;
	int		 i;

	log_info("reload: starting %d new workers, retiring %d",
	    p->conf->nworkers, p->nlive);
	p->gen++;
	p->streak = 0;
	p->throttled = 0;
	evtimer_del(&p->ev_respawn);
	for (i = 0; i < p->conf->nworkers; i++)
		if (pool_spawn(p) == NULL)
			break;
	for (w = TAILQ_FIRST(&p->workers); w != NULL; w = next) {
		next = TAILQ_NEXT(w, all);
		if (w->gen != p->gen)
			worker_retire(p, w);
	}
	pool_fill(p);
	pool_kick(p);
}

static void
pool_signal_cb(int sig, short events, void *arg)
{
	struct pool	*p = arg;
	struct worker	*w;
	pid_t		 pid;
	int		 status;

	switch (sig) {
	case SIGTERM:
	case SIGINT:
		pool_stop(p, sig);
		break;
	case SIGHUP:
		if (!p->stopping)
			pool_reload(p);
		break;
	case SIGCHLD:
		while ((pid = waitpid(WAIT_ANY, &status, WNOHANG)) > 0) {
			if ((w = hash_find(p, pid)) != NULL)
				worker_reaped(p, w, status);
		}
		if (p->stopping && p->nall == 0)
			event_loopexit(NULL);
		pool_fill(p);
		pool_kick(p);
		break;
	}
}

/* Every worker is reaped by now; give back what the pool holds. */
static void
pool_free(struct pool *p, struct event_base *base)
{
	signal_del(&p->ev_sigterm);
	signal_del(&p->ev_sigint);
	signal_del(&p->ev_sighup);
	signal_del(&p->ev_sigchld);
	evtimer_del(&p->ev_stop);
	evtimer_del(&p->ev_kill);
	evtimer_del(&p->ev_stable);
	evtimer_del(&p->ev_resume);
	evtimer_del(&p->ev_grow);
	if (p->pending != -1)
		close(p->pending);
	free(p->hash);
	free(p->spawner.envp);
	event_base_free(base);
}

static void
pool_events(struct pool *p)
{
	signal_set(&p->ev_sigterm, SIGTERM, pool_signal_cb, p);
	signal_set(&p->ev_sigint, SIGINT, pool_signal_cb, p);
	signal_set(&p->ev_sighup, SIGHUP, pool_signal_cb, p);
	signal_set(&p->ev_sigchld, SIGCHLD, pool_signal_cb, p);
	signal_add(&p->ev_sigterm, NULL);
	signal_add(&p->ev_sigint, NULL);
	signal_add(&p->ev_sighup, NULL);
	signal_add(&p->ev_sigchld, NULL);
	evtimer_set(&p->ev_release, pool_release_cb, p);
	evtimer_set(&p->ev_kill, pool_kill_cb, p);
	evtimer_set(&p->ev_respawn, pool_respawn_cb, p);
	evtimer_set(&p->ev_stable, pool_stable_cb, p);
	evtimer_set(&p->ev_resume, pool_resume_cb, p);
	evtimer_set(&p->ev_stop, pool_stop_cb, p);
	evtimer_set(&p->ev_grow, pool_grow_cb, p);
	event_set(&p->ev_accept, p->listenfd, EV_READ | EV_PERSIST,
	    pool_accept_cb, p);
}

/*
 * Run the pool until stopped.  The listening socket goes to fixed-pool
 * workers as descriptor 0; in a variable pool we accept on it ourselves
 * and workers get /dev/null there.
 */
void
pool_run(const struct config *conf, int listenfd, int nullfd)
{
	struct pool	 pool, *p = &pool;
	struct event_base *base;

	memset(p, 0, sizeof(*p));
	p->conf = conf;
	p->listenfd = listenfd;
	p->pending = -1;
	TAILQ_INIT(&p->idle);
	TAILQ_INIT(&p->exiting);
	TAILQ_INIT(&p->workers);
	hash_init(p, conf->varpool ? conf->maxworkers : conf->nworkers);
	spawn_init(&p->spawner, conf->argv, conf->varpool,
	    conf->varpool ? nullfd : listenfd,
	    conf->foreground ? -1 : nullfd);
	signal(SIGPIPE, SIG_IGN);
	if ((base = event_init()) == NULL)
		fatalx("event: cannot initialise");
	pool_events(p);
	pool_fill(p);
	p->started = 1;
	if (conf->varpool)
		event_add(&p->ev_accept, NULL);
	daemon_ready(nullfd);
	log_info("start: %d workers of %s%s", p->nlive, conf->argv[0],
	    conf->varpool ? " (variable pool)" : "");
	event_dispatch();
	log_info("stop: all workers gone, exiting");
	pool_free(p, base);
}
