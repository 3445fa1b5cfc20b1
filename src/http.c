/* http.c: parse an HTTP/1.x request head, bounded and strict, without I/O. */
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
#include <string.h>
#include <strings.h>

#include "http.h"

/* A line-level check passed: go on with the next line. */
#define LINE_OK	HTTP_MORE

/* RFC 9110 token characters. */
static int
is_tchar(unsigned char c)
{
	if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
	    (c >= 'A' && c <= 'Z'))
		return 1;
	return c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

/* Visible ASCII, as a request target is made of. */
static int
is_vchar(unsigned char c)
{
	return c > 0x20 && c < 0x7f;
}

/* A field value: no controls but tab; obs-text passes. */
static int
is_fieldchar(unsigned char c)
{
	return c == '\t' || (c >= 0x20 && c != 0x7f);
}

static size_t
token_len(const char *s, size_t len)
{
	size_t	 i;

	for (i = 0; i < len && is_tchar((unsigned char)s[i]); i++)
		continue;
	return i;
}

/* "HTTP/" DIGIT "." DIGIT; sets the minor version as served. */
static enum http_result
parse_version(struct http_req *r, const char *v, size_t len)
{
	if (len != 8 || memcmp(v, "HTTP/", 5) != 0 || v[6] != '.' ||
	    v[5] < '0' || v[5] > '9' || v[7] < '0' || v[7] > '9')
		return HTTP_BAD;
	if (v[5] != '1')
		return HTTP_NOVERSION;
	r->minor = v[7] == '0' ? 0 : 1;
	return LINE_OK;
}

/*
 * Where the path starts in a GET or HEAD target: origin form "/p?q" or
 * absolute form "http://host/p?q".  The path ends at '?'.
 */
static enum http_result
parse_target(struct http_req *r, const char *buf, size_t t, size_t len)
{
	const char	*s = buf + t, *slash, *q;
	size_t		 skip = 0;

	if (len >= 7 && strncasecmp(s, "http://", 7) == 0)
		skip = 7;
	else if (len >= 8 && strncasecmp(s, "https://", 8) == 0)
		skip = 8;
	if (skip > 0) {
		slash = memchr(s + skip, '/', len - skip);
		if (slash == s + skip)
			return HTTP_BAD;	/* no authority */
		skip = slash == NULL ? len : (size_t)(slash - s);
	} else if (s[0] != '/')
		return HTTP_BAD;
	r->path = t + skip;
	q = memchr(s + skip, '?', len - skip);
	r->pathlen = q == NULL ? len - skip : (size_t)(q - (s + skip));
	return LINE_OK;
}

/* method SP request-target SP HTTP-version, single spaces. */
static enum http_result
parse_request_line(struct http_req *r, const char *buf, size_t off,
    size_t len)
{
	const char		*line = buf + off, *sp;
	size_t			 mlen, tlen, i;
	enum http_result	 rc;

	mlen = token_len(line, len);
	if (mlen == 0 || mlen == len || line[mlen] != ' ')
		return HTTP_BAD;
	for (i = mlen + 1; i < len && is_vchar((unsigned char)line[i]); i++)
		continue;
	tlen = i - (mlen + 1);
	if (tlen == 0 || i == len || line[i] != ' ')
		return HTTP_BAD;
	sp = line + i;
	if ((rc = parse_version(r, sp + 1, len - i - 1)) != LINE_OK)
		return rc;
	if (mlen == 3 && memcmp(line, "GET", 3) == 0)
		r->method = HTTP_GET;
	else if (mlen == 4 && memcmp(line, "HEAD", 4) == 0)
		r->method = HTTP_HEAD;
	else
		return HTTP_NOMETHOD;
	return parse_target(r, buf, off + mlen + 1, tlen);
}

/* field-name ":" OWS field-value OWS; no folding, no space before ':'. */
static enum http_result
parse_header(struct http_req *r, const char *line, size_t len)
{
	size_t	 nlen, i;

	nlen = token_len(line, len);
	if (nlen == 0 || nlen == len || line[nlen] != ':')
		return HTTP_BAD;
	for (i = nlen + 1; i < len; i++)
		if (!is_fieldchar((unsigned char)line[i]))
			return HTTP_BAD;
	if (nlen == 4 && strncasecmp(line, "host", 4) == 0)
		r->nhost++;
	return LINE_OK;
}

void
http_init(struct http_req *r)
{
	memset(r, 0, sizeof(*r));
}

/* No end of line yet: is the line already too long to be one? */
static enum http_result
parse_partial(struct http_req *r, size_t len)
{
	r->scan = len;
	if (r->lines == 0 && len - r->off > HTTP_LINE_MAX + 1)
		return HTTP_URITOOLONG;
	if (len >= HTTP_HEAD_MAX)
		return HTTP_TOOLARGE;
	return HTTP_MORE;
}

/* One complete line, without its CRLF or LF: LINE_OK to go on. */
static enum http_result
parse_line(struct http_req *r, const char *buf, size_t off, size_t len)
{
	enum http_result	 rc;

	if (r->lines == 0) {
		if (len == 0)
			return LINE_OK;		/* empty lines may lead */
		if (len > HTTP_LINE_MAX)
			return HTTP_URITOOLONG;
		if ((rc = parse_request_line(r, buf, off, len)) != LINE_OK)
			return rc;
		r->lines = 1;
		return LINE_OK;
	}
	if (len == 0) {
		/* RFC 9112 3.2: exactly one Host in 1.1, at most one in 1.0. */
		if (r->nhost > 1 || (r->minor == 1 && r->nhost == 0))
			return HTTP_BAD;
		return HTTP_DONE;
	}
	if (++r->nheaders > HTTP_HEADERS_MAX)
		return HTTP_TOOLARGE;
	return parse_header(r, buf + off, len);
}

enum http_result
http_parse(struct http_req *r, const char *buf, size_t len)
{
	const char		*nl;
	size_t			 start, from, linelen;
	enum http_result	 rc;

	if (len > HTTP_HEAD_MAX)
		len = HTTP_HEAD_MAX;
	while (r->off < len) {
		start = r->off;
		/* What an earlier call saw holds no end of line. */
		from = r->scan > start ? r->scan : start;
		if ((nl = memchr(buf + from, '\n', len - from)) == NULL)
			return parse_partial(r, len);
		linelen = (size_t)(nl - (buf + start));
		r->off = start + linelen + 1;
		if (linelen > 0 && buf[start + linelen - 1] == '\r')
			linelen--;
		rc = parse_line(r, buf, start, linelen);
		if (rc == HTTP_DONE)
			r->headlen = r->off;
		if (rc != LINE_OK)
			return rc;
	}
	return parse_partial(r, len);
}

/* The status code that answers a result; 0 while there is none. */
int
http_status(enum http_result rc)
{
	switch (rc) {
	case HTTP_DONE:
		return 200;
	case HTTP_BAD:
		return 400;
	case HTTP_NOMETHOD:
		return 405;
	case HTTP_URITOOLONG:
		return 414;
	case HTTP_TOOLARGE:
		return 431;
	case HTTP_NOVERSION:
		return 505;
	default:
		return 0;
	}
}

const char *
http_reason(int code)
{
	switch (code) {
	case 200:
		return "OK";
	case 400:
		return "Bad Request";
	case 404:
		return "Not Found";
	case 405:
		return "Method Not Allowed";
	case 408:
		return "Request Timeout";
	case 414:
		return "URI Too Long";
	case 431:
		return "Request Header Fields Too Large";
	case 500:
		return "Internal Server Error";
	case 505:
		return "HTTP Version Not Supported";
	default:
		return "Unknown";
	}
}
