/* statusfmt.c: render the pool figures as Prometheus text and as JSON. */
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
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kfcgi.h"
#include "status.h"

/* The worker rows of one answer, taken in one pass. */
struct rows {
	struct stats_worker	*v;
	size_t			 n;
	size_t			 more;		/* past STATUS_MAXROWS */
};

void
sbuf_init(struct sbuf *b, size_t max)
{
	memset(b, 0, sizeof(*b));
	b->max = max;
}

void
sbuf_free(struct sbuf *b)
{
	free(b->p);
	b->p = NULL;
	b->len = b->cap = 0;
}

static int
sbuf_grow(struct sbuf *b, size_t need)
{
	size_t	 cap = b->cap == 0 ? 4096 : b->cap;
	char	*p;

	if (need > b->max)
		return -1;
	while (cap < need)
		cap *= 2;
	if (cap > b->max)
		cap = b->max;
	if ((p = realloc(b->p, cap)) == NULL)
		return -1;
	b->p = p;
	b->cap = cap;
	return 0;
}

void
sbuf_printf(struct sbuf *b, const char *fmt, ...)
{
	va_list	 ap;
	int	 n;

	if (b->failed)
		return;
	for (;;) {
		va_start(ap, fmt);
		n = vsnprintf(b->p == NULL ? NULL : b->p + b->len,
		    b->cap - b->len, fmt, ap);
		va_end(ap);
		if (n < 0) {
			b->failed = 1;
			return;
		}
		if ((size_t)n < b->cap - b->len) {
			b->len += n;
			return;
		}
		if (sbuf_grow(b, b->len + n + 1) == -1) {
			b->failed = 1;
			return;
		}
	}
}

static void
rows_get(struct rows *r, const struct stats_source *src)
{
	struct stats_worker	 w, *v;
	void			*cursor = NULL;
	size_t			 cap = 0;

	memset(r, 0, sizeof(*r));
	if (src->worker == NULL)
		return;
	while (src->worker(&w, &cursor, src->arg)) {
		if (r->n == cap && cap < STATUS_MAXROWS) {
			cap = cap == 0 ? 64 : cap * 2;
			if (cap > STATUS_MAXROWS)
				cap = STATUS_MAXROWS;
			if ((v = reallocarray(r->v, cap, sizeof(*v))) == NULL)
				cap = r->n;
			else
				r->v = v;
		}
		if (r->n < cap)
			r->v[r->n++] = w;
		else
			r->more++;
	}
}

static const char *
sig_name(int sig, char *buf, size_t size)
{
	const char	*name = signame(sig);

	/* "SIGSEGV" as "SEGV"; one without a name here as its number. */
	if (strncmp(name, "SIG", 3) == 0)
		return name + 3;
	snprintf(buf, size, "%d", sig);
	return buf;
}

/* A label value or JSON string: only what our sources put there passes. */
static const char *
safe_str(const char *s)
{
	size_t	 i;

	if (s == NULL)
		return "unknown";
	for (i = 0; s[i] != '\0'; i++)
		if (s[i] == '"' || s[i] == '\\' || (unsigned char)s[i] < 0x20 ||
		    (unsigned char)s[i] >= 0x7f)
			return "invalid";
	return s;
}

/* ---------------------------------------------------------- /metrics --- */

static void
family(struct sbuf *b, const char *name, const char *type, const char *help)
{
	sbuf_printf(b, "# HELP kfcgi_%s %s\n# TYPE kfcgi_%s %s\n", name, help,
	    name, type);
}

/* An absent figure (-1) is left out altogether. */
static void
gauge(struct sbuf *b, const char *name, long long v, const char *help)
{
	if (v < 0)
		return;
	family(b, name, "gauge", help);
	sbuf_printf(b, "kfcgi_%s %lld\n", name, v);
}

static void
counter(struct sbuf *b, const char *name, uint64_t v, const char *help)
{
	family(b, name, "counter", help);
	sbuf_printf(b, "kfcgi_%s %llu\n", name, (unsigned long long)v);
}

/* Milliseconds as seconds with a fraction. */
static void
seconds(struct sbuf *b, uint64_t ms)
{
	sbuf_printf(b, " %llu.%03u\n", (unsigned long long)(ms / 1000),
	    (unsigned int)(ms % 1000));
}

static void
metrics_pool(struct sbuf *b, const struct stats *s)
{
	family(b, "pool_info", "gauge", "The kind of pool that runs.");
	sbuf_printf(b, "kfcgi_pool_info{pool=\"%s\"} 1\n", safe_str(s->pool));
	gauge(b, "config_workers", s->nworkers, "Workers configured (-n).");
	gauge(b, "config_max_workers", s->maxworkers,
	    "Most workers allowed (-N).");
	gauge(b, "config_backlog", s->backlog,
	    "Listen queue length asked for (-l).");
	gauge(b, "workers", s->workers, "Workers running, not exiting.");
	gauge(b, "workers_idle", s->idle, "Workers waiting for a connection.");
	gauge(b, "workers_busy", s->busy, "Workers holding a connection.");
	gauge(b, "workers_exiting", s->exiting,
	    "Workers retiring or being killed.");
	gauge(b, "listen_queue", s->queue,
	    "Connections waiting in the listen queue.");
	gauge(b, "listen_queue_max", s->queue_max,
	    "Most connections seen waiting in the listen queue.");
	family(b, "uptime_seconds", "gauge", "Time since start.");
	sbuf_printf(b, "kfcgi_uptime_seconds");
	seconds(b, s->uptime_ms);
}

static void
metrics_counters(struct sbuf *b, const struct stats *s)
{
	char	 num[16];
	int	 sig;

	counter(b, "connections_accepted_total", s->accepted,
	    "Connections accepted by kfcgi (-r).");
	counter(b, "pool_at_max_total", s->at_max,
	    "Times the pool reached its most workers (-N).");
	counter(b, "listen_queue_full_total", s->queue_full,
	    "Times the listen queue was seen full (-l).");
	counter(b, "workers_spawned_total", s->spawned, "Workers started.");
	counter(b, "workers_recycled_total", s->recycled,
	    "Workers that exited cleanly after serving.");
	family(b, "worker_crashes_total", "counter", "Workers that died "
	    "unexpectedly, by signal; \"none\": a non-zero exit status.");
	sbuf_printf(b, "kfcgi_worker_crashes_total{signal=\"none\"} %llu\n",
	    (unsigned long long)s->crashed_exit);
	for (sig = 1; sig < STATS_NSIG; sig++)
		if (s->crashed_signal[sig] > 0)
			sbuf_printf(b, "kfcgi_worker_crashes_total"
			    "{signal=\"%s\"} %llu\n",
			    sig_name(sig, num, sizeof(num)),
			    (unsigned long long)s->crashed_signal[sig]);
	counter(b, "protocol_violations_total", s->violations,
	    "Workers killed for breaking the management protocol (-r).");
	counter(b, "request_timeouts_total", s->timeouts,
	    "Requests that ran out of time.");
	counter(b, "connections_lost_total", s->lost,
	    "Connections lost with the worker that held them.");
}

static void
metrics_busy(struct sbuf *b, const struct rows *r)
{
	const struct stats_worker *w;
	size_t			 i;
	int			 any = 0;

	for (i = 0; i < r->n; i++) {
		w = &r->v[i];
		if (w->busy_ms < 0)
			continue;
		if (!any++)
			family(b, "worker_busy_seconds", "gauge", "How long "
			    "each busy worker has held its connection.");
		sbuf_printf(b, "kfcgi_worker_busy_seconds{pid=\"%d\"}",
		    (int)w->pid);
		seconds(b, (uint64_t)w->busy_ms);
	}
}

static void
metrics_rows(struct sbuf *b, const struct stats *s, const struct rows *r)
{
	const struct stats_worker *w;
	size_t			 i;

	family(b, "worker_state", "gauge", "Each worker, by pid and state.");
	for (i = 0, w = r->v; i < r->n; i++, w++)
		sbuf_printf(b, "kfcgi_worker_state{pid=\"%d\","
		    "state=\"%s\"} 1\n", (int)w->pid, safe_str(w->state));
	if (s->pool == NULL || strcmp(s->pool, "fixed") != 0) {
		family(b, "worker_connections_served_total", "counter",
		    "Connections each worker has served.");
		for (i = 0, w = r->v; i < r->n; i++, w++)
			sbuf_printf(b, "kfcgi_worker_connections_served_total"
			    "{pid=\"%d\"} %llu\n", (int)w->pid,
			    (unsigned long long)w->served);
	}
	metrics_busy(b, r);
	family(b, "worker_age_seconds", "gauge",
	    "Time since each worker started.");
	for (i = 0, w = r->v; i < r->n; i++, w++) {
		sbuf_printf(b, "kfcgi_worker_age_seconds{pid=\"%d\"}",
		    (int)w->pid);
		seconds(b, w->age_ms);
	}
	if (r->more > 0)
		sbuf_printf(b, "# kfcgi: %zu more workers not listed\n",
		    r->more);
}

void
status_metrics(struct sbuf *b, const struct stats_source *src)
{
	struct stats	 s;
	struct rows	 r;

	memset(&s, 0, sizeof(s));
	src->fill(&s, src->arg);
	rows_get(&r, src);
	metrics_pool(b, &s);
	metrics_counters(b, &s);
	metrics_rows(b, &s, &r);
	free(r.v);
}

/* ------------------------------------------------------------ /status --- */

static void
json_int(struct sbuf *b, const char *key, long long v)
{
	if (v < 0)
		sbuf_printf(b, "\"%s\": null,\n", key);
	else
		sbuf_printf(b, "\"%s\": %lld,\n", key, v);
}

static void
json_count(struct sbuf *b, const char *key, uint64_t v)
{
	sbuf_printf(b, "\"%s\": %llu,\n", key, (unsigned long long)v);
}

static void
json_figures(struct sbuf *b, const struct stats *s)
{
	char		 num[16];
	const char	*sep = "";
	int		 sig;

	sbuf_printf(b, "{\n\"pool\": \"%s\",\n", safe_str(s->pool));
	json_int(b, "nworkers", s->nworkers);
	json_int(b, "maxworkers", s->maxworkers);
	json_int(b, "backlog", s->backlog);
	json_int(b, "live", s->workers);
	json_int(b, "idle", s->idle);
	json_int(b, "busy", s->busy);
	json_int(b, "exiting", s->exiting);
	json_int(b, "queue", s->queue);
	json_int(b, "queue_max", s->queue_max);
	json_count(b, "accepted", s->accepted);
	json_count(b, "at_max", s->at_max);
	json_count(b, "queue_full", s->queue_full);
	json_count(b, "spawned", s->spawned);
	json_count(b, "recycled", s->recycled);
	json_count(b, "crashed_exit", s->crashed_exit);
	sbuf_printf(b, "\"crashed_signal\": {");
	for (sig = 1; sig < STATS_NSIG; sig++)
		if (s->crashed_signal[sig] > 0) {
			sbuf_printf(b, "%s\"%s\": %llu", sep,
			    sig_name(sig, num, sizeof(num)),
			    (unsigned long long)s->crashed_signal[sig]);
			sep = ", ";
		}
	sbuf_printf(b, "},\n");
	json_count(b, "violations", s->violations);
	json_count(b, "timeouts", s->timeouts);
	json_count(b, "lost", s->lost);
	json_count(b, "uptime_ms", s->uptime_ms);
}

void
status_json(struct sbuf *b, const struct stats_source *src)
{
	struct stats		 s;
	struct rows		 r;
	const struct stats_worker *w;
	size_t			 i;

	memset(&s, 0, sizeof(s));
	src->fill(&s, src->arg);
	rows_get(&r, src);
	json_figures(b, &s);
	json_count(b, "workers_omitted", r.more);
	sbuf_printf(b, "\"workers\": [");
	for (i = 0; i < r.n; i++) {
		w = &r.v[i];
		sbuf_printf(b, "%s\n {\"pid\": %d, \"state\": \"%s\", "
		    "\"served\": %llu, ", i > 0 ? "," : "", (int)w->pid,
		    safe_str(w->state), (unsigned long long)w->served);
		if (w->busy_ms < 0)
			sbuf_printf(b, "\"busy_ms\": null, ");
		else
			sbuf_printf(b, "\"busy_ms\": %ld, ", w->busy_ms);
		sbuf_printf(b, "\"age_ms\": %llu}",
		    (unsigned long long)w->age_ms);
	}
	sbuf_printf(b, "%s]\n}\n", r.n > 0 ? "\n" : "");
	free(r.v);
}
