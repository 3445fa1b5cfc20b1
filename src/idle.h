/* idle.h: is a classic worker waiting for a connection on descriptor 0? */
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
#ifndef IDLE_H
#define IDLE_H

#include <sys/types.h>

/*
 * idle_open() keeps a descriptor of /proc; call it before the jail.
 * It returns 0, or -1 (errno set) where the test is unavailable.
 * idle_check() returns 1 if the worker is blocked waiting for a
 * connection on descriptor 0 (accept, poll, select or epoll on it),
 * 0 if it is doing anything else, and -1 if that cannot be told (no
 * /proc, no permission, an unreadable program, the process is gone).
 */
int	 idle_open(void);
int	 idle_check(pid_t);
void	 idle_close(void);

#endif /* !IDLE_H */
