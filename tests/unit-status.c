/* unit-status.c: unit tests of the status listener's parser and answers. */
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
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "http.h"
#include "status.h"

#define PARSE(s, want) CHECK(parse_all(s, sizeof(s) - 1, NULL) == (want))

static enum http_result
parse_all(const char *s, size_t len, struct http_req *out)
{
	struct http_req		 r;
	enum http_result	 rc;

	http_init(&r);
	rc = http_parse(&r, s, len);
	if (out != NULL)
		*out = r;
	return rc;
}

static void
test_valid(void)
{
	struct http_req	 r;
	const char	*s;

	s = "GET /metrics HTTP/1.1\r\nHost: x\r\nAccept: */*\r\n\r\n";
	CHECK(parse_all(s, strlen(s), &r) == HTTP_DONE);
	CHECK(r.method == HTTP_GET && r.minor == 1);
	CHECK(r.pathlen == 8 && memcmp(s + r.path, "/metrics", 8) == 0);
	CHECK(r.headlen == strlen(s));

	s = "HEAD /status?x=1 HTTP/1.0\n\nrest";
	CHECK(parse_all(s, strlen(s), &r) == HTTP_DONE);
	CHECK(r.method == HTTP_HEAD && r.minor == 0);
	CHECK(r.pathlen == 7 && memcmp(s + r.path, "/status", 7) == 0);
	CHECK(r.headlen == strlen(s) - 4);

	s = "GET http://example.org/metrics HTTP/1.1\r\nHost: a\r\n\r\n";
	CHECK(parse_all(s, strlen(s), &r) == HTTP_DONE);
	CHECK(r.pathlen == 8 && memcmp(s + r.path, "/metrics", 8) == 0);

	PARSE("\r\nGET / HTTP/1.0\r\n\r\n", HTTP_DONE);
	PARSE("GET / HTTP/1.9\r\nHost: a\r\n\r\n", HTTP_DONE);
	PARSE("GET / HTTP/1.0\r\nX:\r\n\r\n", HTTP_DONE);
	PARSE("GET / HTTP/1.0\r\nX: \t\xe9t\xe9\r\n\r\n", HTTP_DONE);
}

static void
test_more(void)
{
	struct http_req	 r;
	const char	*s = "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n";
	size_t		 i, n = strlen(s);

	PARSE("", HTTP_MORE);
	PARSE("GET /metrics HTTP/1.1\r\n", HTTP_MORE);
	PARSE("GET /metrics HTTP/1.1\r\nHost: x\r\n\r", HTTP_MORE);
	/* Byte by byte, the same buffer growing: done only at the end. */
	http_init(&r);
	for (i = 1; i < n; i++)
		CHECK(http_parse(&r, s, i) == HTTP_MORE);
	CHECK(http_parse(&r, s, n) == HTTP_DONE);
	CHECK(r.headlen == n);
}

static void
test_bad(void)
{
	PARSE("GET\r\n\r\n", HTTP_BAD);
	PARSE("GET /\r\n\r\n", HTTP_BAD);		/* HTTP/0.9 */
	PARSE("GET  / HTTP/1.0\r\n\r\n", HTTP_BAD);
	PARSE("GET / HTTP/1.0 \r\n\r\n", HTTP_BAD);
	PARSE(" GET / HTTP/1.0\r\n\r\n", HTTP_BAD);
	PARSE("GET metrics HTTP/1.0\r\n\r\n", HTTP_BAD);
	PARSE("GET * HTTP/1.0\r\n\r\n", HTTP_BAD);
	PARSE("GET http:///x HTTP/1.0\r\n\r\n", HTTP_BAD);
	PARSE("GET / http/1.1\r\n\r\n", HTTP_BAD);
	PARSE("GET / HTTP/1.10\r\n\r\n", HTTP_BAD);
	PARSE("GET / HTTP/1\r\n\r\n", HTTP_BAD);
	PARSE("GET / HTTP/a.1\r\n\r\n", HTTP_BAD);
	PARSE("GET /\x01 HTTP/1.0\r\n\r\n", HTTP_BAD);
	PARSE("GET /\r HTTP/1.0\r\n\r\n", HTTP_BAD);
	PARSE("G\0T / HTTP/1.0\r\n\r\n", HTTP_BAD);
	PARSE("GET /\0 HTTP/1.0\r\n\r\n", HTTP_BAD);
	PARSE("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\n", HTTP_BAD);
	PARSE("GET / HTTP/1.1\r\n\r\n", HTTP_BAD);	/* no Host */
	PARSE("GET / HTTP/1.1\r\nHost: a\r\nhost: b\r\n\r\n", HTTP_BAD);
	PARSE("GET / HTTP/1.0\r\nNo colon\r\n\r\n", HTTP_BAD);
	PARSE("GET / HTTP/1.0\r\nX : y\r\n\r\n", HTTP_BAD);
	PARSE("GET / HTTP/1.0\r\n: y\r\n\r\n", HTTP_BAD);
	PARSE("GET / HTTP/1.0\r\nX: a\r\n folded\r\n\r\n", HTTP_BAD);
	PARSE("GET / HTTP/1.0\r\nX: a\0b\r\n\r\n", HTTP_BAD);
	PARSE("GET / HTTP/1.0\r\nX: a\rb\r\n\r\n", HTTP_BAD);
	PARSE("GET / HTTP/1.0\r\nX: a\x7f\r\n\r\n", HTTP_BAD);
	PARSE("GET / HTTP/1.0\r\nX: a\r\r\n\r\n", HTTP_BAD);
}

static void
test_codes(void)
{
	PARSE("POST /metrics HTTP/1.1\r\n", HTTP_NOMETHOD);
	PARSE("get /metrics HTTP/1.0\r\n", HTTP_NOMETHOD);
	PARSE("OPTIONS * HTTP/1.1\r\n", HTTP_NOMETHOD);
	PARSE("GET / HTTP/2.0\r\n", HTTP_NOVERSION);
	PARSE("GET / HTTP/0.9\r\n", HTTP_NOVERSION);
	PARSE("POST / HTTP/1.x\r\n", HTTP_BAD);
	CHECK(http_status(HTTP_BAD) == 400);
	CHECK(http_status(HTTP_NOMETHOD) == 405);
	CHECK(http_status(HTTP_URITOOLONG) == 414);
	CHECK(http_status(HTTP_TOOLARGE) == 431);
	CHECK(http_status(HTTP_NOVERSION) == 505);
	CHECK(http_status(HTTP_MORE) == 0);
	CHECK(strcmp(http_reason(405), "Method Not Allowed") == 0);
}

static void
test_bounds(void)
{
	static char	 buf[3 * HTTP_HEAD_MAX];
	size_t		 n;
	int		 i;

	/* A request line of the most bytes allowed, and one more. */
	memset(buf, 'a', sizeof(buf));
	memcpy(buf, "GET /", 5);
	memcpy(buf + HTTP_LINE_MAX - 9, " HTTP/1.0\n\n", 11);
	CHECK(parse_all(buf, HTTP_LINE_MAX + 2, NULL) == HTTP_DONE);
	memset(buf, 'a', sizeof(buf));
	memcpy(buf, "GET /", 5);
	memcpy(buf + HTTP_LINE_MAX - 8, " HTTP/1.0\n\n", 11);
	CHECK(parse_all(buf, HTTP_LINE_MAX + 3, NULL) == HTTP_URITOOLONG);
	/* Without an end of line: refused as soon as it is too long. */
	CHECK(parse_all(buf, HTTP_LINE_MAX + 1, NULL) == HTTP_MORE);
	CHECK(parse_all(buf, HTTP_LINE_MAX + 2, NULL) == HTTP_URITOOLONG);

	/* Headers: a head of up to HTTP_HEAD_MAX, never longer. */
	n = (size_t)snprintf(buf, sizeof(buf), "GET / HTTP/1.0\r\n");
	memset(buf + n, 'x', sizeof(buf) - n);
	memcpy(buf + n, "X: ", 3);
	memcpy(buf + HTTP_HEAD_MAX - 4, "\r\n\r\n", 4);
	CHECK(parse_all(buf, HTTP_HEAD_MAX, NULL) == HTTP_DONE);
	CHECK(parse_all(buf, HTTP_HEAD_MAX - 1, NULL) == HTTP_MORE);
	memcpy(buf + HTTP_HEAD_MAX - 4, "xx\r\n\r\n", 6);
	CHECK(parse_all(buf, HTTP_HEAD_MAX + 2, NULL) == HTTP_TOOLARGE);
	CHECK(parse_all(buf, HTTP_HEAD_MAX, NULL) == HTTP_TOOLARGE);
	CHECK(parse_all(buf, sizeof(buf), NULL) == HTTP_TOOLARGE);

	/* Header count. */
	n = (size_t)snprintf(buf, sizeof(buf), "GET / HTTP/1.0\r\n");
	for (i = 0; i < HTTP_HEADERS_MAX; i++)
		n += (size_t)snprintf(buf + n, sizeof(buf) - n, "X: %d\r\n", i);
	CHECK(parse_all(buf, n, NULL) == HTTP_MORE);
	memcpy(buf + n, "\r\n", 2);
	CHECK(parse_all(buf, n + 2, NULL) == HTTP_DONE);
	memcpy(buf + n, "Y: 1\r\n\r\n", 8);
	CHECK(parse_all(buf, n + 8, NULL) == HTTP_TOOLARGE);
}

/* A pool of nrows workers for the renderers. */
struct fake {
	int	 nrows;
	int	 fixed;
};

static void
fake_fill(struct stats *s, void *arg)
{
	struct fake	*f = arg;

	s->pool = f->fixed ? "fixed" : "variable";
	s->nworkers = 2;
	s->maxworkers = 8;
	s->backlog = 16;
	s->workers = f->nrows;
	s->idle = f->fixed ? -1 : 1;
	s->busy = f->fixed ? -1 : f->nrows - 1;
	s->exiting = 0;
	s->queue = -1;
	s->queue_max = 5;
	s->accepted = 12345678901ULL;
	s->spawned = 7;
	s->crashed_exit = 2;
	s->crashed_signal[11] = 3;
	s->crashed_signal[9] = 1;
	s->uptime_ms = 61005;
}

static int
fake_worker(struct stats_worker *w, void **cursor, void *arg)
{
	struct fake	*f = arg;
	intptr_t	 i = (intptr_t)*cursor;

	if (i >= f->nrows)
		return 0;
	*cursor = (void *)(i + 1);
	w->pid = 1000 + (pid_t)i;
	w->state = i == 0 ? "idle" : "busy";
	w->served = (uint64_t)i * 10;
	w->busy_ms = i == 0 ? -1 : 1500;
	w->age_ms = 2000;
	return 1;
}

static char *
render(int json, int nrows, int fixed, size_t max)
{
	struct fake		 f = { nrows, fixed };
	struct stats_source	 src = { fake_fill, fake_worker, &f };
	struct sbuf		 b;

	sbuf_init(&b, max);
	if (json)
		status_json(&b, &src);
	else
		status_metrics(&b, &src);
	if (b.failed) {
		sbuf_free(&b);
		return NULL;
	}
	return b.p;
}

static void
test_metrics(void)
{
	char	*m = render(0, 3, 0, 1 << 20);

	CHECK(m != NULL);
	if (m == NULL)
		return;
	CHECK(strstr(m, "# TYPE kfcgi_connections_accepted_total counter\n"
	    "kfcgi_connections_accepted_total 12345678901\n") != NULL);
	CHECK(strstr(m, "\nkfcgi_workers_busy 2\n") != NULL);
	CHECK(strstr(m, "kfcgi_listen_queue ") == NULL);	/* absent */
	CHECK(strstr(m, "\nkfcgi_listen_queue_max 5\n") != NULL);
	CHECK(strstr(m, "kfcgi_worker_crashes_total{signal=\"none\"} 2\n")
	    != NULL);
	CHECK(strstr(m, "kfcgi_worker_crashes_total{signal=\"SEGV\"} 3\n")
	    != NULL);
	CHECK(strstr(m, "kfcgi_worker_crashes_total{signal=\"KILL\"} 1\n")
	    != NULL);
	CHECK(strstr(m, "kfcgi_uptime_seconds 61.005\n") != NULL);
	CHECK(strstr(m, "kfcgi_worker_state{pid=\"1002\",state=\"busy\"} 1\n")
	    != NULL);
	CHECK(strstr(m, "kfcgi_worker_connections_served_total{pid=\"1002\"}"
	    " 20\n") != NULL);
	CHECK(strstr(m, "kfcgi_worker_busy_seconds{pid=\"1000\"}") == NULL);
	CHECK(strstr(m, "kfcgi_worker_busy_seconds{pid=\"1001\"} 1.500\n")
	    != NULL);
	CHECK(strstr(m, "more workers") == NULL);
	CHECK(m[strlen(m) - 1] == '\n');
	free(m);

	m = render(0, 2, 1, 1 << 20);
	CHECK(m != NULL && strstr(m, "kfcgi_workers_idle") == NULL);
	CHECK(m != NULL && strstr(m, "served_total") == NULL);
	free(m);
}

static void
test_json(void)
{
	char	*j = render(1, 2, 0, 1 << 20);

	CHECK(j != NULL);
	if (j == NULL)
		return;
	CHECK(strstr(j, "\"pool\": \"variable\",\n") != NULL);
	CHECK(strstr(j, "\"queue\": null,\n") != NULL);
	CHECK(strstr(j, "\"crashed_signal\": {\"KILL\": 1, \"SEGV\": 3},\n")
	    != NULL);
	CHECK(strstr(j, "{\"pid\": 1000, \"state\": \"idle\", \"served\": 0, "
	    "\"busy_ms\": null, \"age_ms\": 2000},\n") != NULL);
	CHECK(strstr(j, "\"busy_ms\": 1500") != NULL);
	CHECK(strcmp(j + strlen(j) - 6, "}\n]\n}\n") == 0);
	free(j);
	j = render(1, 0, 0, 1 << 20);
	CHECK(j != NULL && strstr(j, "\"workers\": []\n}\n") != NULL);
	free(j);
}

static void
test_limits(void)
{
	char	*m;

	/* Past STATUS_MAXROWS rows, the rest are counted, not listed. */
	m = render(0, STATUS_MAXROWS + 904, 0, 16 << 20);
	CHECK(m != NULL && strstr(m, "# kfcgi: 904 more workers not listed\n")
	    != NULL);
	CHECK(m != NULL && strstr(m, "pid=\"5095\"") != NULL);
	CHECK(m != NULL && strstr(m, "pid=\"5096\"") == NULL);
	free(m);
	m = render(1, STATUS_MAXROWS + 1, 0, 16 << 20);
	CHECK(m != NULL && strstr(m, "\"workers_omitted\": 1,\n") != NULL);
	free(m);
	/* An answer larger than the buffer may grow fails, cleanly. */
	CHECK(render(0, 100, 0, 2048) == NULL);
}

int
main(void)
{
	test_valid();
	test_more();
	test_bad();
	test_codes();
	test_bounds();
	test_metrics();
	test_json();
	test_limits();
	printf("unit-status: %d passed, %d failed\n", checks - failures,
	    failures);
	return failures != 0;
}
