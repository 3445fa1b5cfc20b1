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
 * Pool size: keeping -n workers, crash-loop back-off, releasing idle
 * workers, kill deadlines, stop and reload.
 */
#include <signal.h>
#include <string.h>

#include "kfcgi.h"
#include "log.h"
#include "pool.h"

/* Count an early death and hold further starts back; returns the delay. */
long
pool_early_death(struct pool *p)
{
	long	 ms = backoff_delay_ms(++p->streak);

	p->last_early = clock_now();
	if (ms > 0 && !p->throttled) {
		p->throttled = 1;
		clock_timer_ms(&p->ev_respawn, ms);
	}
	return ms;
}

struct worker *
pool_spawn(struct pool *p)
{
	struct worker	*w;

	if (p->throttled || p->stopping)
		return NULL;
	if ((w = worker_new(p)) != NULL) {
		if (p->streak > 0)
			clock_timer_ms(&p->ev_stable, EARLY_DEATH_MS);
		return w;
	}
	if (!p->started)
		fatal("spawn: %s", p->conf->argv[0]);
	log_warn("spawn: %s", p->conf->argv[0]);
	pool_early_death(p);
	return NULL;
}

/* Keep -n workers: replace the dead, start the first ones. */
void
pool_fill(struct pool *p)
{
	while (!p->stopping && p->nlive < p->conf->nworkers)
		if (pool_spawn(p) == NULL)
			return;
}

/* Release idle workers above -n, oldest first, after -w seconds. */
void
pool_release_cb(int fd UNUSED, short events UNUSED, void *arg)
{
	struct pool	*p = arg;
	struct worker	*w;
	struct timespec	 t = clock_now();

	while (p->nlive > p->conf->nworkers &&
	    (w = TAILQ_LAST(&p->idle, workerq)) != NULL &&
	    clock_ms_between(&w->since, &t) >= p->conf->waittime * 1000L) {
		log_debug("worker %d: idle for %d s, releasing it",
		    (int)w->pid, p->conf->waittime);
		worker_set(p, w, W_EXITING);
	}
	pool_arm_release(p);
}

void
pool_kill_cb(int fd UNUSED, short events UNUSED, void *arg)
{
	struct pool	*p = arg;
	struct worker	*w;
	struct timespec	 t = clock_now();

	while ((w = TAILQ_FIRST(&p->exiting)) != NULL &&
	    clock_ms_between(&t, &w->since) <= 0) {
		log_warnx("worker %d: still running %d s after SIGTERM, "
		    "killing it", (int)w->pid, KFCGI_GRACE_MS / 1000);
		worker_set(p, w, W_KILLED);
	}
	pool_arm_kill(p);
}

void
pool_respawn_cb(int fd UNUSED, short events UNUSED, void *arg)
{
	struct pool	*p = arg;

	p->throttled = 0;
	pool_fill(p);
	pool_kick(p);
}

void
pool_stable_cb(int fd UNUSED, short events UNUSED, void *arg)
{
	struct pool	*p = arg;
	struct timespec	 t = clock_now();

	if (clock_ms_between(&p->last_early, &t) >= EARLY_DEATH_MS)
		p->streak = 0;
}

void
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
	clock_timer_ms(&p->ev_stop, KFCGI_GRACE_MS);
	if (p->nall == 0)
		event_loopexit(NULL);
}

/* Busy workers had the grace period to finish; no more waiting. */
void
pool_stop_cb(int fd UNUSED, short events UNUSED, void *arg)
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
void
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
