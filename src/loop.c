/* loop.c: the event loop: set-up, signals as events, tear-down. */
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
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kfcgi.h"
#include "log.h"
#include "dispatch.h"
#include "pool.h"
#include "epool.h"
#include "status.h"

/*
 * What each signal means.  Signals are events handled in the loop
 * (libevent's signal events), never logic in a handler.  Those that
 * would end kfcgi by default are either a clean stop or ignored and
 * logged, so that only SIGKILL ends it abruptly, and even then the
 * guard takes the workers (guard.c).
 */
static const struct {
	int	 sig;
	enum { SIG_STOP, SIG_RELOAD, SIG_REAP, SIG_NOTE } what;
} handled[] = {
	{ SIGTERM, SIG_STOP }, { SIGINT, SIG_STOP }, { SIGQUIT, SIG_STOP },
	{ SIGXCPU, SIG_STOP }, { SIGHUP, SIG_RELOAD }, { SIGCHLD, SIG_REAP },
	{ SIGUSR1, SIG_NOTE }, { SIGUSR2, SIG_NOTE }, { SIGALRM, SIG_NOTE },
	{ SIGVTALRM, SIG_NOTE }, { SIGPROF, SIG_NOTE }, { SIGIO, SIG_NOTE },
	{ SIGXFSZ, SIG_NOTE },
};
#define NHANDLED	(sizeof(handled) / sizeof(handled[0]))

struct loop {
	struct pool	 pool;
	struct dispatch	 dispatch;
	struct event	 ev_sig[NHANDLED];
};

/* One line of figures, for the service manager's STATUS=. */
static void
loop_status(char *buf, size_t len, void *arg)
{
	const struct loop	*l = arg;
	const struct pool	*p = &l->pool;

	snprintf(buf, len, "%d workers%s; %llu started, %llu recycled; "
	    "%llu connections accepted", pool_live(p),
	    p->conf->varpool ? " (variable pool)" :
	    p->conf->elastic ? " (elastic pool)" : "",
	    (unsigned long long)p->spawned, (unsigned long long)p->recycled,
	    (unsigned long long)l->dispatch.accepted);
}

/* A reload settled or was given up: serving as asked again. */
static void
loop_reloaded(void *arg)
{
	notify_ready(loop_status, arg);
}

static void
loop_signal_cb(int sig, short events UNUSED, void *arg)
{
	struct loop	*l = arg;
	size_t		 i;

	for (i = 0; i < NHANDLED && handled[i].sig != sig; i++)
		continue;
	if (i == NHANDLED)
		return;
	switch (handled[i].what) {
	case SIG_STOP:
		if (!l->pool.stopping)
			notify_stopping();
		if (l->pool.conf->varpool)
			dispatch_stop(&l->dispatch);
		pool_stop(&l->pool, sig);
		break;
	case SIG_RELOAD:
		if (l->pool.stopping)
			break;
		log_info("reload: %s received", signame(sig));
		notify_reloading();
		pool_reload(&l->pool);
		break;
	case SIG_REAP:
		pool_reap(&l->pool);
		break;
	case SIG_NOTE:
		log_info("signal: %s received and ignored", signame(sig));
		break;
	}
}

static void
loop_signals(struct loop *l)
{
	size_t	 i;

	signal(SIGPIPE, SIG_IGN);
	for (i = 0; i < NHANDLED; i++) {
		signal_set(&l->ev_sig[i], handled[i].sig, loop_signal_cb, l);
		if (signal_add(&l->ev_sig[i], NULL) == -1)
			fatalx("event: cannot watch %s",
			    signame(handled[i].sig));
	}
}

/* A fixed pool has no hand-off path: nothing to tell it. */
static void
no_freed(void *arg UNUSED)
{
}

/* Set while the loop runs, for loop_fatal() alone. */
static struct pool	*running;

/*
 * fatal() after the workers started: ask them to go.  The guard kills
 * whatever is left once kfcgi has exited.
 */
static void
loop_fatal(void)
{
	struct worker	*w;

	TAILQ_FOREACH(w, &running->ws.all, all)
		kill(w->pid, SIGTERM);
}

/*
 * One clock for decisions and timers: libevent's default timer clock is
 * coarse (4 ms here), below what the pool's short waits need.  Asked for
 * through its environment, then removed so that workers do not see it.
 */
static struct event_base *
loop_base(void)
{
	struct event_base	*base;

	setenv("EVENT_PRECISE_TIMER", "1", 1);
	base = event_init();
	unsetenv("EVENT_PRECISE_TIMER");
	if (base == NULL)
		fatalx("event: cannot initialise");
	return base;
}

static void
loop_report(const struct loop *l)
{
	const struct pool	*p = &l->pool;
	uint64_t		 crashed = p->crashed_exit;
	int			 i;

	for (i = 0; i < 65; i++)
		crashed += p->crashed_signal[i];
	log_info("stop: all workers gone; %llu started, %llu recycled, "
	    "%llu died unexpectedly", (unsigned long long)p->spawned,
	    (unsigned long long)p->recycled, (unsigned long long)crashed);
	if (p->conf->varpool)
		log_info("stop: %llu connections accepted, %llu protocol "
		    "violations, %llu timeouts, %llu lost",
		    (unsigned long long)l->dispatch.accepted,
		    (unsigned long long)p->violations,
		    (unsigned long long)p->timeouts,
		    (unsigned long long)p->lost);
}

void
loop_run(const struct config *conf, int listenfd, int nullfd,
    const struct rlimit *orig, const struct rlimit *raised)
{
	static struct loop	 loop;
	struct loop		*l = &loop;
	struct event_base	*base;
	struct pool_hooks	 hooks = { NULL, NULL, no_freed, NULL, NULL };
	size_t			 i;

	base = loop_base();
	if (conf->varpool) {
		dispatch_init(&l->dispatch, &l->pool, listenfd,
		    (event_base_get_features(base) & EV_FEATURE_ET) != 0,
		    conf->maxworkers);
		dispatch_hooks(&l->dispatch, &hooks);
	}
	pool_init(&l->pool, conf, listenfd, nullfd, &hooks);
	l->pool.reloaded = loop_reloaded;
	l->pool.reloaded_arg = l;
	l->pool.spawner.nofile_orig = *orig;
	l->pool.spawner.nofile_raised = *raised;
	l->pool.spawner.nofile_restore = orig->rlim_cur != raised->rlim_cur;
	loop_signals(l);
	running = &l->pool;
	log_onfatal(loop_fatal);
	pool_start(&l->pool);
	if (conf->varpool)
		dispatch_start(&l->dispatch);
	epool_start(&l->pool);
	poolstats_start(&l->pool, conf->varpool ? &l->dispatch : NULL);
	daemon_ready(nullfd);
	notify_ready(loop_status, l);
	log_info("start: %d workers of %s%s", pool_live(&l->pool),
	    conf->argv[0], conf->varpool ? " (variable pool)" :
	    conf->elastic ? " (elastic pool)" : "");
	event_dispatch();
	loop_report(l);
	log_onfatal(NULL);
	running = NULL;
	for (i = 0; i < NHANDLED; i++)
		signal_del(&l->ev_sig[i]);
	status_stop();
	epool_stop();
	if (conf->varpool)
		dispatch_free(&l->dispatch);
	pool_free(&l->pool);
	event_base_free(base);
}
