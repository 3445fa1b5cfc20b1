/* pool.c: the pool over time: spawn, fill, grow, retire, reap, reload, stop. */
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

static void	 pool_respawn_cb(int, short, void *);
static void	 pool_stable_cb(int, short, void *);
static void	 pool_release_cb(int, short, void *);
static void	 pool_kill_cb(int, short, void *);
static void	 pool_timeout_cb(int, short, void *);
static void	 pool_reload_cb(int, short, void *);
static void	 pool_stop_cb(int, short, void *);
static void	 pool_doubt_cb(int, short, void *);
static void	 reload_pending(struct pool *);

static msec_t
grace_ms(const struct pool *p)
{
	return p->conf->grace * 1000L;
}

/* Arm a timer for `next' (-1: nothing due) unless it is already set. */
static void
arm(struct event *ev, msec_t next, msec_t now)
{
	if (next >= 0 && !evtimer_pending(ev, NULL))
		clock_timer_ms(ev, next - now);
}

void
pool_init(struct pool *p, const struct config *conf, int listenfd,
    int nullfd, const struct pool_hooks *hooks)
{
	int	 most = conf->varpool || conf->elastic ? conf->maxworkers :
		    conf->nworkers;

	memset(p, 0, sizeof(*p));
	p->conf = conf;
	p->nullfd = nullfd;
	p->hooks = *hooks;
	/* Room for two generations while a reload settles. */
	workers_init(&p->ws, 2 * most);
	crash_init(&p->crash, 2 * (most > 2 ? most : 2));
	spawn_init(&p->spawner, conf->argv, conf->varpool,
	    conf->varpool ? nullfd : listenfd, conf->foreground ? -1 : nullfd);
	evtimer_set(&p->ev_respawn, pool_respawn_cb, p);
	evtimer_set(&p->ev_stable, pool_stable_cb, p);
	evtimer_set(&p->ev_release, pool_release_cb, p);
	evtimer_set(&p->ev_kill, pool_kill_cb, p);
	evtimer_set(&p->ev_timeout, pool_timeout_cb, p);
	evtimer_set(&p->ev_reload, pool_reload_cb, p);
	evtimer_set(&p->ev_stop, pool_stop_cb, p);
	evtimer_set(&p->ev_doubt, pool_doubt_cb, p);
	TAILQ_INIT(&p->doubts);
	TAILQ_INIT(&p->early);
}

/* Workers serving, and those on their way: the pool's size. */
int
pool_live(const struct pool *p)
{
	return workers_live(&p->ws) + p->spawnq.inflight;
}

int
pool_spawning(const struct pool *p)
{
	return p->spawnq.inflight;
}

static void
chan_close(struct worker *w)
{
	struct pool	*p = w->owner;

	if (w->chan == -1)
		return;
	p->hooks.unwatch(p->hooks.arg, w);
	close(w->chan);
	w->chan = -1;
}

static void
signal_worker(const struct worker *w, int sig)
{
	if (kill(w->pid, sig) == -1 && errno != ESRCH)
		log_warn("worker %d: %s", (int)w->pid, signame(sig));
}

static void
arm_kill(struct pool *p, msec_t now)
{
	msec_t	 next;

	if (policy_expired(&p->ws.exiting, now, grace_ms(p), &next) != NULL)
		next = now;
	arm(&p->ev_kill, next, now);
}

/*
 * To EXITING: the channel closed (a -r worker reads EOF and leaves),
 * `sig' sent unless 0, SIGKILL after the grace period.
 */
void
pool_exit(struct pool *p, struct worker *w, int sig)
{
	msec_t	 now = clock_ms();

	chan_close(w);
	if (sig != 0)
		signal_worker(w, sig);
	worker_set(&p->ws, w, W_EXITING, now);
	arm_kill(p, now);
}

void
pool_kill(struct pool *p, struct worker *w, int fault)
{
	w->fault |= fault;
	chan_close(w);
	signal_worker(w, SIGKILL);
	worker_set(&p->ws, w, W_KILLED, clock_ms());
}

/* Ask a worker to go: at once if it holds nothing, after that if busy. */
void
pool_retire(struct pool *p, struct worker *w)
{
	msec_t	 now;

	switch (w->state) {
	case W_RUNNING:
		pool_exit(p, w, p->conf->killsig);
		break;
	case W_FROZEN:
		pool_exit(p, w, p->conf->killsig);
		signal_worker(w, SIGCONT);
		break;
	case W_IDLE:
		pool_exit(p, w, SIGTERM);
		break;
	case W_BUSY:
		now = clock_ms();
		worker_set(&p->ws, w, W_DRAINING, now);
		arm_kill(p, now);
		break;
	default:
		break;
	}
}

static void
arm_release(struct pool *p, msec_t now)
{
	msec_t	 next;

	if (!p->conf->varpool || p->stopping)
		return;
	if (policy_release(&p->ws, now, p->conf->waittime * 1000L,
	    p->conf->nworkers, &next) != NULL)
		next = now;
	arm(&p->ev_release, next, now);
}

/* The hand-off path gave the worker a connection. */
void
pool_busy(struct pool *p, struct worker *w, int conn)
{
	msec_t	 now = clock_ms(), next;

	w->conn = conn;
	worker_set(&p->ws, w, W_BUSY, now);
	if (p->conf->timeout > 0 && !evtimer_pending(&p->ev_timeout, NULL)) {
		if (policy_expired(&p->ws.busy, now, p->conf->timeout * 1000L,
		    &next) != NULL)
			next = now;
		arm(&p->ev_timeout, next, now);
	}
}

/* A worker returned its cookie; the hand-off path closed the connection. */
void
pool_freed(struct pool *p, struct worker *w)
{
	msec_t	 now = clock_ms();

	w->served++;
	if (!p->crash.proven && w->gen == p->gen)
		crash_proof(&p->crash);
	if (w->state == W_DRAINING)
		pool_exit(p, w, SIGTERM);
	else if (w->recycle_at != 0 && w->served >= w->recycle_at) {
		/* Between connections: nothing can be in flight to it. */
		log_debug("worker %d: served %llu connections, recycling it",
		    (int)w->pid, (unsigned long long)w->served);
		p->recycled++;
		pool_exit(p, w, 0);
		pool_fill(p);
	} else {
		worker_set(&p->ws, w, W_IDLE, now);
		arm_release(p, now);
	}
}

/* EAGAIN, ENOMEM, EMFILE...: a shortage passes; the program is not to blame. */
static int
is_shortage(int err)
{
	return err == EAGAIN || err == ENOMEM || err == EMFILE ||
	    err == ENFILE || err == ENOBUFS;
}

static void
shortage(struct pool *p, int err)
{
	/* Spawns that went out together come back short together. */
	if (p->shortage)
		return;
	if (p->shortage_ms == 0) {
		errno = err;
		log_warn("spawn: %s: out of resources, retrying",
		    p->conf->argv[0]);
		p->shortage_ms = SHORTAGE_MIN_MS;
	} else if ((p->shortage_ms *= 2) > SHORTAGE_MAX_MS)
		p->shortage_ms = SHORTAGE_MAX_MS;
	p->shortage = 1;
	evtimer_del(&p->ev_respawn);
	clock_timer_ms(&p->ev_respawn, p->shortage_ms);
}

/* The program could not be executed at all: a start failure. */
static void
spawn_failed(struct pool *p, int err)
{
	msec_t	 now = clock_ms(), delay;

	errno = err;
	if (!p->started)
		fatal("spawn: %s", p->conf->argv[0]);
	log_warn("spawn: %s", p->conf->argv[0]);
	delay = crash_death(&p->crash, DEATH_START, now, now);
	if (delay > 0)
		arm(&p->ev_respawn, now + delay, now);
}

/*
 * A spawn on its way: submitted to the spawn queue, not landed yet.
 * No worker record exists before its pid is known.
 */
struct pending {
	struct spawn_job	 job;		/* first: the queue hands it back */
	int			 chan, out;	/* our ends, -1: none */
	int			 wchan, wout;	/* the worker's, kept open until
						   the spawn is done */
	unsigned int		 gen;
	uint64_t		 seq;
	int			 retire;	/* -n 0: started to be retired */
};

static void
close_if(int *fd)
{
	if (*fd != -1) {
		close(*fd);
		*fd = -1;
	}
}

static void
pending_free(struct pending *pd)
{
	close_if(&pd->chan);
	close_if(&pd->out);
	close_if(&pd->wchan);
	close_if(&pd->wout);
	free(pd);
}

/*
 * A channel (-r) and an output pipe, and the spawn's actions and
 * attributes.  Without a pipe (out of descriptors) the worker starts
 * all the same, its output lost, and a warning says so.
 */
static struct pending *
pending_new(struct pool *p)
{
	struct pending	*pd;
	int		 sv[2], pp[2] = { -1, -1 }, saved;

	if ((pd = calloc(1, sizeof(*pd))) == NULL)
		return NULL;
	pd->chan = pd->out = pd->wchan = pd->wout = -1;
	if (p->conf->varpool &&
	    socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == -1)
		goto fail;
	if (p->conf->varpool) {
		pd->chan = sv[0];
		pd->wchan = sv[1];
	}
	if (output_pipe(pp) == -1)
		log_warn("spawn: output pipe; this worker's output is lost");
	pd->out = pp[0];
	pd->wout = pp[1];
	if (spawn_prepare(&p->spawner, &pd->job, pd->wchan, pd->wout) == 0)
		return pd;
fail:
	saved = errno;
	pending_free(pd);
	errno = saved;
	return NULL;
}

/*
 * Submit one spawn, unless throttled or short: -1 if none went out.
 * It lands in pool_landed(), in this thread, once a helper ran it.
 */
static int
pool_spawn(struct pool *p, int retire)
{
	struct pending	*pd;
	msec_t		 now = clock_ms();

	if (p->stopping || p->shortage)
		return -1;
	if (crash_wait(&p->crash, now) > 0) {
		arm(&p->ev_respawn, p->crash.until, now);
		return -1;
	}
	if ((pd = pending_new(p)) == NULL) {
		if (is_shortage(errno))
			shortage(p, errno);
		else
			spawn_failed(p, errno);
		return -1;
	}
	pd->gen = p->gen;
	pd->seq = ++p->spawnseq;
	pd->retire = retire;
	/* Set only when the queue has no threads: the spawn runs here. */
	spawn_limit(&p->spawner, 1);
	spawnq_submit(&p->spawnq, &pd->job);
	spawn_limit(&p->spawner, 0);
	return 0;
}

/* Not cancelled: a worker of this generation is wanted still. */
static int
serving_gen(const struct pool *p, unsigned int gen)
{
	return gen == p->gen || (p->reloading && gen == p->oldgen);
}

static void
worker_place(struct pool *p, struct worker *w, struct pending *pd)
{
	w->owner = p;
	w->gen = pd->gen;
	w->chan = pd->chan;
	pd->chan = -1;
	w->starting = p->conf->elastic;
	w->recycle_at = p->conf->varpool ?
	    policy_recycle_at(p->conf->maxreqs, arc4random()) : 0;
	if (w->chan != -1)
		p->hooks.watch(p->hooks.arg, w);
	output_start(&w->out, pd->out, w->pid);
	pd->out = -1;
}

/* Its status, if the worker was reaped before its spawn landed. */
static int
early_take(struct pool *p, pid_t pid, int *status)
{
	struct early	*e;

	TAILQ_FOREACH(e, &p->early, entry)
		if (e->pid == pid) {
			*status = e->status;
			TAILQ_REMOVE(&p->early, e, entry);
			free(e);
			return 1;
		}
	return 0;
}

/*
 * With no spawn under way, no early status can still be claimed: those
 * left are children whose exec failed (glibc reaps them itself, unless
 * the loop was first).
 */
static void
early_purge(struct pool *p)
{
	struct early	*e;

	while (pool_spawning(p) == 0 && (e = TAILQ_FIRST(&p->early)) != NULL) {
		TAILQ_REMOVE(&p->early, e, entry);
		free(e);
	}
}

static void	 reaped(struct pool *, struct worker *, int);

/* A spawn succeeded: the worker is the pool's from now on. */
static void
landed_worker(struct pool *p, struct pending *pd, pid_t pid)
{
	struct worker	*w;
	int		 status;

	w = worker_add(&p->ws, pid, p->conf->varpool ? W_IDLE : W_RUNNING,
	    clock_ms());
	if (w == NULL)
		fatal("worker %d: record", (int)pid);
	worker_place(p, w, pd);
	p->spawned++;
	if (p->shortage_ms != 0) {
		log_info("spawn: %s: resources available again",
		    p->conf->argv[0]);
		p->shortage_ms = 0;
	}
	log_debug("worker %d: started", (int)pid);
	if (early_take(p, pid, &status)) {
		/* Dead already: no sign that restarts work again. */
		reaped(p, w, status);
		return;
	}
	if (p->crash.streak > 0)
		clock_timer_ms(&p->ev_stable, CRASH_EARLY_MS);
	if (pd->retire || p->stopping || !serving_gen(p, pd->gen))
		pool_retire(p, w);
}

static void
unqueued(struct spawn_job *j, void *arg UNUSED)
{
	spawn_release(j);
	pending_free((struct pending *)j);
}

static void	 reload_abort(struct pool *, const char *, pid_t);

/*
 * A spawn failed.  Spawns submitted together fail together: only the
 * first failure after the last counted one counts (as the serial loop
 * stopped at the first), and the spawns not begun yet are dropped.
 */
static void
landed_failed(struct pool *p, struct pending *pd, int err)
{
	(void)spawnq_cancel(&p->spawnq, unqueued);
	if (is_shortage(err)) {
		shortage(p, err);
		return;
	}
	if (!serving_gen(p, pd->gen) || pd->seq <= p->failmark) {
		errno = err;
		log_warn("spawn: %s", p->conf->argv[0]);
		return;
	}
	p->failmark = p->spawnseq;
	spawn_failed(p, err);
	if (p->reloading && pd->gen == p->gen)
		reload_abort(p, "cannot start the program", 0);
}

static void
pool_landed(struct spawn_job *j, void *arg)
{
	struct pool	*p = arg;
	struct pending	*pd = (struct pending *)j;

	spawn_release(j);
	close_if(&pd->wchan);
	close_if(&pd->wout);
	if (j->err == 0)
		landed_worker(p, pd, j->pid);
	else
		landed_failed(p, pd, j->err);
	pending_free(pd);
}

static void	 pool_changed(struct pool *);

static void
pool_land_cb(int fd UNUSED, short events UNUSED, void *arg)
{
	struct pool	*p = arg;

	if (spawnq_land(&p->spawnq) > 0)
		pool_changed(p);
}

/*
 * Keep -n workers: replace the dead, start the first ones.  In a crash
 * loop (from its second round on) one worker at a time tries its luck:
 * the pool fills up again once the program has been seen working.
 */
void
pool_fill(struct pool *p)
{
	int	 want = p->conf->nworkers;

	if (p->crash.streak >= 2 && want > 1)
		want = 1;
	while (!p->stopping && pool_live(p) < want)
		if (pool_spawn(p, 0) == -1)
			return;
}

int
pool_can_grow(const struct pool *p)
{
	return !p->stopping && !p->shortage &&
	    pool_live(p) < p->conf->maxworkers &&
	    crash_wait(&p->crash, clock_ms()) == 0;
}

/*
 * Start up to n more workers, as -N allows; returns how many spawns went
 * out.  They go out together, so the helper threads overlap them.
 */
int
pool_grow(struct pool *p, int n)
{
	int	 i;

	for (i = 0; i < n && pool_live(p) < p->conf->maxworkers; i++)
		if (pool_spawn(p, 0) == -1)
			break;
	if (i > 0)
		log_debug("grow: %d more workers on their way, %d in all",
		    i, pool_live(p));
	return i;
}

/*
 * Start the first workers, the spawns overlapping, and wait for them all:
 * an exec failure ends kfcgi before it reports ready.  A variable pool of
 * -n 0 starts one all the same and retires it at once: start-up proves
 * that the program can be executed, and fails otherwise, whatever -n is.
 */
void
pool_start(struct pool *p)
{
	int	 threads;

	p->startup = clock_ms();
	p->spawner.pgid = guard_start(p->nullfd);
	/* The descriptor limit is the process's: lowered in one thread. */
	threads = p->spawner.nofile_restore ? 0 :
	    spawnq_threads(sysconf(_SC_NPROCESSORS_ONLN));
	if (spawnq_init(&p->spawnq, threads, spawn_run, pool_landed, p) == -1)
		fatal("spawn: pipe");
	event_set(&p->ev_land, spawnq_fd(&p->spawnq), EV_READ | EV_PERSIST,
	    pool_land_cb, p);
	if (event_add(&p->ev_land, NULL) == -1)
		fatalx("spawn: cannot watch the spawns");
	pool_fill(p);
	if (p->conf->nworkers == 0)
		(void)pool_spawn(p, 1);
	spawnq_wait(&p->spawnq);
	p->started = 1;
}

static void
pool_respawn_cb(int fd UNUSED, short events UNUSED, void *arg)
{
	struct pool	*p = arg;

	p->shortage = 0;
	pool_fill(p);
	p->hooks.freed(p->hooks.arg);
}

static void
pool_stable_cb(int fd UNUSED, short events UNUSED, void *arg)
{
	struct pool	*p = arg;

	if (!crash_settled(&p->crash, clock_ms()))
		return;
	log_info("program: %s: workers start again", p->conf->argv[0]);
	pool_fill(p);
	p->hooks.freed(p->hooks.arg);
}

static void
pool_release_cb(int fd UNUSED, short events UNUSED, void *arg)
{
	struct pool	*p = arg;
	struct worker	*w;
	msec_t		 now = clock_ms(), next;

	while ((w = policy_release(&p->ws, now, p->conf->waittime * 1000L,
	    p->conf->nworkers, &next)) != NULL) {
		log_debug("worker %d: idle for %d s, releasing it",
		    (int)w->pid, p->conf->waittime);
		pool_retire(p, w);
	}
	arm(&p->ev_release, next, now);
}

static void
pool_kill_cb(int fd UNUSED, short events UNUSED, void *arg)
{
	struct pool	*p = arg;
	struct worker	*w;
	msec_t		 now = clock_ms(), next;

	while ((w = policy_expired(&p->ws.exiting, now, grace_ms(p), &next))
	    != NULL) {
		log_warnx("worker %d: still running %d s after it was asked "
		    "to go, killing it", (int)w->pid, p->conf->grace);
		pool_kill(p, w, 0);
	}
	arm(&p->ev_kill, next, now);
}

/* -t: a worker that holds one connection too long is killed. */
static void
pool_timeout_cb(int fd UNUSED, short events UNUSED, void *arg)
{
	struct pool	*p = arg;
	struct worker	*w;
	msec_t		 now = clock_ms(), next, held;

	while ((w = policy_expired(&p->ws.busy, now,
	    p->conf->timeout * 1000L, &next)) != NULL) {
		held = now - w->since;
		log_warnx("worker %d: request timeout: held a connection for "
		    "%lld.%02lld s; killing it and closing the connection",
		    (int)w->pid, (long long)held / 1000,
		    (long long)held % 1000 / 10);
		p->timeouts++;
		if (w->conn != -1) {
			close(w->conn);
			w->conn = -1;
		}
		pool_kill(p, w, 0);
	}
	arm(&p->ev_timeout, next, now);
}

/* Decide for a dead worker's connection; 0 if it cannot be told yet. */
static int
rescue_now(struct pool *p, int fd, pid_t pid, int last)
{
	int	 unread = fdpass_unread(fd);

	if (unread == -1 && !last)
		return 0;
	if (unread == 1) {
		log_info("worker %d: gone without reading its connection; "
		    "handing it to another worker", (int)pid);
		p->rescued++;
		p->hooks.rescue(p->hooks.arg, fd);
	} else {
		log_warnx("worker %d: gone holding a connection, which is "
		    "lost with it", (int)pid);
		p->lost++;
		close(fd);
	}
	return 1;
}

/*
 * A dead worker's connection: if it never read it, another worker
 * serves it from the start; otherwise it is lost, and said so.  With
 * nothing in it yet, a worker that crashed most likely read the request
 * (it is lost), but one that exited cleanly without answering cannot
 * have, nor can one that died at once having served nothing (a program
 * that fails to start, handed a connection the moment its spawn
 * landed): its client may not have written the request yet, so look
 * again after RESCUE_WAIT_MS (one wait for all, so a FIFO).  Waiting
 * never rescues wrongly: only a request still unread is handed on.
 */
static void
rescue(struct pool *p, struct worker *w, int status)
{
	struct doubt	*d;
	msec_t		 now = clock_ms();
	int		 clean = WIFEXITED(status) && WEXITSTATUS(status) == 0;
	int		 unstarted = w->served == 0 &&
			    now - w->started < CRASH_START_MS;

	if (rescue_now(p, w->conn, w->pid, p->stopping ||
	    !(clean || unstarted)))
		;
	else if ((d = malloc(sizeof(*d))) == NULL)
		(void)rescue_now(p, w->conn, w->pid, 1);
	else {
		d->fd = w->conn;
		d->pid = w->pid;
		d->since = now;
		TAILQ_INSERT_TAIL(&p->doubts, d, entry);
		arm(&p->ev_doubt, now + RESCUE_WAIT_MS, now);
	}
	w->conn = -1;
}

static void
pool_doubt_cb(int fd UNUSED, short events UNUSED, void *arg)
{
	struct pool	*p = arg;
	struct doubt	*d;
	msec_t		 now = clock_ms();

	while ((d = TAILQ_FIRST(&p->doubts)) != NULL) {
		if (now - d->since < RESCUE_WAIT_MS && !p->stopping) {
			arm(&p->ev_doubt, d->since + RESCUE_WAIT_MS, now);
			break;
		}
		TAILQ_REMOVE(&p->doubts, d, entry);
		(void)rescue_now(p, d->fd, d->pid, 1);
		free(d);
	}
	p->hooks.freed(p->hooks.arg);
}

static void
log_death(const struct worker *w, int status, msec_t lived, const char *plan)
{
	long long	 s = lived / 1000, cs = lived % 1000 / 10;

	if (WIFSIGNALED(status))
		log_warnx("worker %d: killed by %s after %lld.%02lld s%s",
		    (int)w->pid, signame(WTERMSIG(status)), s, cs, plan);
	else if (WEXITSTATUS(status) != 0)
		log_warnx("worker %d: exited with status %d after "
		    "%lld.%02lld s%s", (int)w->pid, WEXITSTATUS(status), s, cs,
		    plan);
	else
		log_debug("worker %d: exited after %lld.%02lld s and %llu "
		    "connections%s", (int)w->pid, s, cs,
		    (unsigned long long)w->served, plan);
}

/* A death we did not ask for: count it, throttle if it is a crash loop. */
static void
unexpected(struct pool *p, struct worker *w, int status, msec_t now)
{
	msec_t		 lived = now - w->started, delay = 0;
	int		 clean = WIFEXITED(status) && WEXITSTATUS(status) == 0;
	enum death	 d;
	char		 plan[64] = "";

	if (clean)
		p->recycled++;
	else if (WIFSIGNALED(status) && WTERMSIG(status) < 65)
		p->crashed_signal[WTERMSIG(status)]++;
	else
		p->crashed_exit++;
	d = crash_classify(lived, w->served > 0, clean);
	if (w->gen == p->gen)
		delay = crash_death(&p->crash, d, w->started, now);
	if (delay > 0)
		arm(&p->ev_respawn, now + delay, now);
	if (!p->stopping && pool_live(p) < p->conf->nworkers)
		snprintf(plan, sizeof(plan), delay > 0 ?
		    ", restarting in %lld.%lld s" : ", restarting",
		    (long long)delay / 1000, (long long)delay % 1000 / 100);
	log_death(w, status, lived, plan);
	if (p->reloading && w->gen == p->gen && d == DEATH_START)
		reload_abort(p, "a new worker died at once", w->pid);
}

static void
reaped(struct pool *p, struct worker *w, int status)
{
	msec_t	 now = clock_ms();
	int	 expected = !w->fault && (w->state == W_EXITING ||
		    w->state == W_KILLED);

	chan_close(w);
	output_stop(&w->out);
	worker_set(&p->ws, w, W_DEAD, now);
	if (w->conn != -1)
		rescue(p, w, status);
	if (!expected)
		unexpected(p, w, status, now);
	else
		log_debug("worker %d: exited after %lld ms", (int)w->pid,
		    (long long)(now - w->started));
	free(w);
}

/* Everything is gone: take what workers left behind, and end. */
static void
pool_finish(struct pool *p)
{
	if (p->spawner.pgid != 0)
		(void)kill(-p->spawner.pgid, SIGKILL);
	event_loopexit(NULL);
}

/* Not ours yet: a spawn under way may be about to claim it. */
static void
early_keep(struct pool *p, pid_t pid, int status)
{
	struct early	*e;

	if (pool_spawning(p) == 0)
		return;
	if ((e = malloc(sizeof(*e))) == NULL)
		fatal("worker %d: record", (int)pid);
	e->pid = pid;
	e->status = status;
	TAILQ_INSERT_TAIL(&p->early, e, entry);
}

/* Workers came or went: stop, reload or fill as due, and tell -r. */
static void
pool_changed(struct pool *p)
{
	early_purge(p);
	if (p->stopping && p->ws.nall == 0 && pool_spawning(p) == 0) {
		pool_finish(p);
		return;
	}
	reload_pending(p);
	pool_fill(p);
	p->hooks.freed(p->hooks.arg);
}

void
pool_reap(struct pool *p)
{
	struct worker	*w;
	pid_t		 pid;
	int		 status;

	while ((pid = waitpid(WAIT_ANY, &status, WNOHANG)) > 0) {
		if ((w = worker_find(&p->ws, pid)) != NULL)
			reaped(p, w, status);
		else if (pid == p->spawner.pgid && !p->stopping) {
			/* Its group lives on while workers are in it. */
			log_warnx("guard: %d: gone; starting another",
			    (int)pid);
			p->spawner.pgid = guard_start(p->nullfd);
		} else
			early_keep(p, pid, status);
	}
	pool_changed(p);
}

static int
count_gen(const struct pool *p, unsigned int gen, int same)
{
	struct worker	*w;
	int		 n = 0;

	TAILQ_FOREACH(w, &p->ws.all, all)
		if ((w->gen == gen) == same && w->state <= W_BUSY)
			n++;
	return n;
}

/* Retire every worker of another generation than the current one. */
static void
retire_others(struct pool *p)
{
	struct worker	*w, *next;

	for (w = TAILQ_FIRST(&p->ws.all); w != NULL; w = next) {
		next = TAILQ_NEXT(w, all);
		if (w->gen != p->gen)
			pool_retire(p, w);
	}
}

/* Workers retired but still finishing: a generation on its way out. */
static int
retiring(const struct pool *p)
{
	return p->ws.count[W_DRAINING] + p->ws.count[W_EXITING];
}

/*
 * SIGHUP: start a new generation beside the serving one, which goes on
 * serving until the new one has lived RELOAD_SETTLE_MS without a start
 * failure.  A SIGHUP meanwhile, or while retired workers still finish, is
 * remembered, and served by one more reload once those are done: at most
 * two generations exist at a time.
 */
void
pool_reload(struct pool *p)
{
	int	 i, n = p->conf->nworkers > 0 ? p->conf->nworkers : 1;

	if (p->stopping)
		return;
	if (p->reloading || retiring(p) > 0) {
		if (!p->reload_again)
			log_info("reload: %s; another follows", p->reloading ?
			    "one is settling" : "retired workers finish");
		p->reload_again = 1;
		return;
	}
	p->reloading = 1;
	p->reload_again = 0;
	p->oldgen = p->gen;
	p->oldcrash = p->crash;
	p->gen = ++p->lastgen;
	crash_init(&p->crash, p->crash.allowance);
	log_info("reload: starting %d new workers beside %d serving", n,
	    count_gen(p, p->gen, 0));
	for (i = 0; i < n && p->reloading; i++)
		if (pool_spawn(p, 0) == -1) {
			reload_abort(p, "cannot start the program", 0);
			return;
		}
	clock_timer_ms(&p->ev_reload, RELOAD_SETTLE_MS);
	p->hooks.freed(p->hooks.arg);
}

static void
reload_end(struct pool *p)
{
	evtimer_del(&p->ev_reload);
	p->reloading = 0;
	reload_pending(p);
	/* Ready again only once no SIGHUP is left to serve. */
	if (!p->reloading && !p->reload_again && p->reloaded != NULL)
		p->reloaded(p->reloaded_arg);
}

/* A SIGHUP waited for the last generation to go: its turn now? */
static void
reload_pending(struct pool *p)
{
	if (p->reload_again && !p->reloading && retiring(p) == 0)
		pool_reload(p);
}

/* The new generation failed: it goes, the serving one stays. */
static void
reload_abort(struct pool *p, const char *why, pid_t pid)
{
	struct worker	*w, *next;
	unsigned int	 failed = p->gen;

	if (pid != 0)
		log_warnx("reload: %s (worker %d); keeping the %d workers "
		    "serving", why, (int)pid, count_gen(p, p->oldgen, 1));
	else
		log_warnx("reload: %s; keeping the %d workers serving", why,
		    count_gen(p, p->oldgen, 1));
	p->gen = p->oldgen;
	p->crash = p->oldcrash;
	for (w = TAILQ_FIRST(&p->ws.all); w != NULL; w = next) {
		next = TAILQ_NEXT(w, all);
		if (w->gen == failed)
			pool_retire(p, w);
	}
	reload_end(p);
}

static void
pool_reload_cb(int fd UNUSED, short events UNUSED, void *arg)
{
	struct pool	*p = arg;

	log_info("reload: new workers serving; retiring %d old ones",
	    count_gen(p, p->gen, 0));
	retire_others(p);
	pool_fill(p);
	p->hooks.freed(p->hooks.arg);
	reload_end(p);
}

/*
 * Stop: no new connections (the hand-off path stopped accepting first);
 * workers holding nothing go now, busy ones finish (and may serve the
 * connections kfcgi still holds); after the grace period, SIGKILL.
 */
void
pool_stop(struct pool *p, int sig)
{
	struct worker	*w, *next;

	if (p->stopping)
		return;
	log_info("stop: %s received, stopping %d workers", signame(sig),
	    p->ws.nall);
	p->stopping = 1;
	p->reloading = p->reload_again = 0;
	evtimer_del(&p->ev_reload);
	evtimer_del(&p->ev_release);
	evtimer_del(&p->ev_respawn);
	evtimer_del(&p->ev_stable);
	/* Spawns not begun are dropped; those running land and retire. */
	(void)spawnq_cancel(&p->spawnq, unqueued);
	for (w = TAILQ_FIRST(&p->ws.all); w != NULL; w = next) {
		next = TAILQ_NEXT(w, all);
		if (w->state == W_RUNNING || w->state == W_FROZEN ||
		    w->state == W_IDLE)
			pool_retire(p, w);
	}
	clock_timer_ms(&p->ev_stop, grace_ms(p));
	if (p->ws.nall == 0 && pool_spawning(p) == 0)
		pool_finish(p);
}

/* The grace period is over: no more waiting. */
static void
pool_stop_cb(int fd UNUSED, short events UNUSED, void *arg)
{
	struct pool	*p = arg;
	struct worker	*w, *next;

	for (w = TAILQ_FIRST(&p->ws.all); w != NULL; w = next) {
		next = TAILQ_NEXT(w, all);
		if (w->state == W_KILLED)
			continue;
		log_warnx("worker %d: still running at the end of the grace "
		    "period, killing it", (int)w->pid);
		if (w->conn != -1) {
			close(w->conn);
			w->conn = -1;
			p->lost++;
		}
		pool_kill(p, w, 0);
	}
}

/* Every worker is reaped by now. */
void
pool_free(struct pool *p)
{
	struct doubt	*d;

	/* Nothing is under way by now: the loop ends only then. */
	if (p->spawnq.run != NULL) {
		event_del(&p->ev_land);
		spawnq_free(&p->spawnq);
	}
	early_purge(p);
	evtimer_del(&p->ev_respawn);
	evtimer_del(&p->ev_stable);
	evtimer_del(&p->ev_release);
	evtimer_del(&p->ev_kill);
	evtimer_del(&p->ev_timeout);
	evtimer_del(&p->ev_reload);
	evtimer_del(&p->ev_stop);
	evtimer_del(&p->ev_doubt);
	while ((d = TAILQ_FIRST(&p->doubts)) != NULL) {
		TAILQ_REMOVE(&p->doubts, d, entry);
		close(d->fd);
		free(d);
	}
	workers_free(&p->ws);
	free(p->spawner.envp);
}
