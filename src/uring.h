/* uring.h: the -r hot path on io_uring (Linux), or a stub without it. */
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
#ifndef URING_H
#define URING_H

#include <stdint.h>

/*
 * The I/O of the -r hot path through one io_uring: accepting, handing
 * off (cookie and descriptor), reading cookies back, closing connections.
 * It decides nothing: results go back through struct uring_ops, and the
 * caller (dispatch.c) keeps every rule of the protocol and of the pool.
 * Built from uring.c with liburing, from uring_stub.c without it; then
 * uring_open() always says no and nothing else is called.
 */
struct uring;
struct uchan;

struct uring_ops {
	/* an accept finished: a descriptor, or -errno */
	void	(*accepted)(void *, int);
	/* a hand-off failed (successes are not reported): -errno */
	void	(*send_failed)(void *, int);
	/* a channel gave n bytes (0: EOF), or -errno */
	void	(*received)(void *, const unsigned char *, int);
};

struct uring	*uring_open(const struct uring_ops *, void *, int,
		    const char **);
void		 uring_close(struct uring *);
void		 uring_accept(struct uring *, int);
void		 uring_accept_stop(struct uring *);
struct uchan	*uring_watch(struct uring *, int, void *);
void		 uring_unwatch(struct uring *, struct uchan *);
void		 uring_send(struct uring *, struct uchan *, uint64_t, int);
void		 uring_close_fd(struct uring *, int);

#endif /* !URING_H */
