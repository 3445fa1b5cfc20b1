/* http.h: a bounded, strict HTTP/1.x request-head parser without I/O. */
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
#ifndef HTTP_H
#define HTTP_H

#include <stddef.h>

#define HTTP_HEAD_MAX	8192	/* request line, headers and blank line */
#define HTTP_LINE_MAX	2048	/* the request line alone */
#define HTTP_HEADERS_MAX 64	/* header lines */

enum http_method {
	HTTP_GET,
	HTTP_HEAD
};

/*
 * What http_parse() concluded.  Each value but MORE and DONE is an error
 * answered with its own status code (http_status()).
 */
enum http_result {
	HTTP_MORE,		/* no complete head yet: read more */
	HTTP_DONE,		/* a complete, valid head */
	HTTP_BAD,		/* 400: malformed */
	HTTP_NOMETHOD,		/* 405: well formed, not GET or HEAD */
	HTTP_URITOOLONG,	/* 414: request line over HTTP_LINE_MAX */
	HTTP_TOOLARGE,		/* 431: head or header count over bounds */
	HTTP_NOVERSION		/* 505: HTTP/n.m with n other than 1 */
};

/*
 * One request head.  http_init() it, then call http_parse() with the
 * bytes received so far, the same buffer growing between calls, until it
 * returns anything but HTTP_MORE.  Each byte is looked at once.
 */
struct http_req {
	enum http_method method;
	int		 minor;		/* 0 or 1: HTTP/1.0 or HTTP/1.1+ */
	size_t		 path;		/* offset of the path in the buffer */
	size_t		 pathlen;	/* up to '?' or the end of the target */
	size_t		 headlen;	/* bytes up to the blank line's end */
	/* progress */
	size_t		 off;		/* start of the next line */
	size_t		 scan;		/* bytes already searched for LF */
	int		 lines;		/* request line seen when > 0 */
	int		 nheaders;
	int		 nhost;
};

void		 http_init(struct http_req *);
enum http_result http_parse(struct http_req *, const char *, size_t);
int		 http_status(enum http_result);
const char	*http_reason(int);

#endif /* !HTTP_H */
