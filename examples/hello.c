/*
 * Copyright (c) 2026 the kfcgi authors
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
 * The smallest useful kfcgi worker: it greets every request.  It runs
 * the same under a fixed pool (classic FastCGI) and under a variable
 * pool (kfcgi -r, the management control extension).
 *
 *	kfcgi -d -p / -s /tmp/hello.sock -- /path/to/hello
 */

#include <err.h>
#include <errno.h>
#include <stdio.h>
#include <unistd.h>

#include "kfcgi_worker.h"

static int	hello(const struct kfw *, int, const struct kfw_req *);
static void	serve(const struct kfw *, int);

/* Answer one request; returns 0, or -1 if the connection broke. */
static int
hello(const struct kfw *k, int fd, const struct kfw_req *req)
{
	const char	*uri;
	char		 buf[1024];
	int		 len;

	if ((uri = kfw_req_param(req, "REQUEST_URI")) == NULL)
		uri = "(none)";
	len = snprintf(buf, sizeof(buf),
	    "Content-Type: text/plain\r\n\r\n"
	    "Hello from kfcgi worker %ld (%s mode)\n"
	    "REQUEST_URI %s\n", (long)getpid(),
	    kfw_extension(k) ? "extension" : "classic", uri);
	if (len < 0)
		return -1;
	if ((size_t)len >= sizeof(buf))
		len = sizeof(buf) - 1;		/* a very long URI: cut */
	if (kfw_req_write(fd, req, buf, (size_t)len) == -1 ||
	    kfw_req_end(fd, req, 0) == -1)
		return -1;
	return 0;
}

/* Serve requests for as long as the web server keeps the connection. */
static void
serve(const struct kfw *k, int fd)
{
	struct kfw_req	 req;
	int		 rc, keep;

	while ((rc = kfw_req_read(fd, &req)) == 1) {
		keep = hello(k, fd, &req) == 0 && req.keep_conn;
		kfw_req_free(&req);
		if (!keep)
			break;
	}
	if (rc == -1)
		warn("kfw_req_read");
}

int
main(void)
{
	struct kfw	*k;
	int		 fd;

	if ((k = kfw_open()) == NULL)
		err(1, "kfw_open");
	while ((fd = kfw_accept(k)) != -1) {
		serve(k, fd);
		if (kfw_finish(k, fd) == -1)
			warn("kfw_finish");
	}
	if (errno != 0)
		err(1, "kfw_accept");
	kfw_close(k);
	return 0;
}
