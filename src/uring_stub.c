/* uring_stub.c: built without liburing: the libevent path serves -r alone. */
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
#include <stddef.h>

#include "kfcgi.h"
#include "uring.h"

struct uring *
uring_open(const struct uring_ops *ops UNUSED, void *arg UNUSED,
    int channels UNUSED, const char **why)
{
	*why = "not built in";
	return NULL;
}

/* Never called: there is no ring. */
void
uring_close(struct uring *r UNUSED)
{
}

void
uring_accept(struct uring *r UNUSED, int fd UNUSED)
{
}

void
uring_accept_stop(struct uring *r UNUSED)
{
}

struct uchan *
uring_watch(struct uring *r UNUSED, int fd UNUSED, void *arg UNUSED)
{
	return NULL;
}

void
uring_unwatch(struct uring *r UNUSED, struct uchan *uc UNUSED)
{
}

void
uring_send(struct uring *r UNUSED, struct uchan *uc UNUSED,
    uint64_t cookie UNUSED, int fd UNUSED)
{
}

void
uring_close_fd(struct uring *r UNUSED, int fd UNUSED)
{
}
