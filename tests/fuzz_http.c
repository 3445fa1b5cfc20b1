/* fuzz_http.c: libFuzzer harness for the status listener's HTTP parser. */
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
 * Built and run by `make fuzz`.  Besides memory errors (ASan, UBSan) it
 * checks that the parser's answer does not depend on how the bytes were
 * split between reads, and that what it reports lies inside the head.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

static enum http_result
parse_in_steps(struct http_req *r, const char *buf, size_t len, size_t step)
{
	enum http_result	 rc = HTTP_MORE;
	size_t			 have = 0;

	http_init(r);
	while (rc == HTTP_MORE && have < len) {
		have = have + step < len ? have + step : len;
		rc = http_parse(r, buf, have);
	}
	return rc;
}

static void
check_done(const struct http_req *r, const char *buf, size_t len)
{
	if (r->headlen == 0 || r->headlen > len || r->headlen > HTTP_HEAD_MAX)
		abort();
	if (r->path + r->pathlen > r->headlen)
		abort();
	if (r->method != HTTP_GET && r->method != HTTP_HEAD)
		abort();
	if (r->minor != 0 && r->minor != 1)
		abort();
	if (memchr(buf, '\0', r->headlen) != NULL)
		abort();
	if (buf[r->headlen - 1] != '\n')
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct http_req		 whole, part;
	const char		*buf = (const char *)data;
	enum http_result	 rc, rc2;
	size_t			 steps[] = { 1, 7, 1000 };
	size_t			 i;

	http_init(&whole);
	rc = http_parse(&whole, buf, size);
	if (rc != HTTP_MORE && rc != HTTP_DONE && http_status(rc) < 400)
		abort();
	if (http_reason(http_status(rc)) == NULL)
		abort();
	if (rc == HTTP_DONE)
		check_done(&whole, buf, size);
	for (i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
		rc2 = parse_in_steps(&part, buf, size, steps[i]);
		if (rc2 != rc)
			abort();
		if (rc == HTTP_DONE && (part.headlen != whole.headlen ||
		    part.path != whole.path || part.pathlen != whole.pathlen ||
		    part.method != whole.method || part.minor != whole.minor))
			abort();
	}
	return 0;
}
