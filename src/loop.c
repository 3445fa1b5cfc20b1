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
 * The event loop: signals as events, set-up and tear-down.
 */
#include <sys/wait.h>

#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "kfcgi.h"
#include "log.h"
#include "pool.h"
#include "status.h"

static void
pool_signal_cb(int sig, short events UNUSED, void *arg)
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
	status_stop();
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

/* Set while the loop runs, for pool_fatal() alone. */
static struct pool	*running;

/*
 * We are about to die of an unexpected error: take the workers along,
 * or classic ones would go on accepting with nobody to supervise them.
 */
static void
pool_fatal(void)
{
	struct worker	*w;

	TAILQ_FOREACH(w, &running->workers, all)
		kill(w->pid, SIGTERM);
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
	poolstats_start(p);
	running = p;
	log_onfatal(pool_fatal);
	pool_fill(p);
	p->started = 1;
	if (conf->varpool)
		event_add(&p->ev_accept, NULL);
	daemon_ready(nullfd);
	log_info("start: %d workers of %s%s", p->nlive, conf->argv[0],
	    conf->varpool ? " (variable pool)" : "");
	event_dispatch();
	log_info("stop: all workers gone; %llu started, %llu died "
	    "unexpectedly", (unsigned long long)p->spawned,
	    (unsigned long long)p->crashed);
	if (conf->varpool)
		log_info("stop: %llu connections accepted, %llu protocol "
		    "violations", (unsigned long long)p->accepted,
		    (unsigned long long)p->violations);
	log_onfatal(NULL);
	running = NULL;
	pool_free(p, base);
}
