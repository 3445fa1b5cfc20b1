/* cookie.c: unpredictable 64-bit cookies for hand-offs, fetched in batches. */
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
#include <stdlib.h>

#include "kfcgi.h"

#define COOKIE_BATCH	64

/*
 * Cookies for hand-offs: unpredictable, and cheap on the hot path.
 * glibc's arc4random_buf() is a getrandom(2) call each time, so fetch
 * a batch at once and hand them out one by one.
 */
uint64_t
cookie_next(void)
{
	static uint64_t	 batch[COOKIE_BATCH];
	static size_t	 left;

	if (left == 0) {
		arc4random_buf(batch, sizeof(batch));
		left = COOKIE_BATCH;
	}
	return batch[--left];
}
