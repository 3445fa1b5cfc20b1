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

/*
 * idle_started() tells a new worker that is still starting up (0) from
 * one that has come as far as waiting on descriptor 0 or holds a
 * connection it took (1): the pool counts workers on their way by it.
 * -1 as for idle_check().  Costs a look at /proc/PID/fd: only for
 * workers not yet seen started.
 */
int	 idle_started(pid_t);

/*
 * Retiring a worker without costing a request.  A signal that lands
 * while a libfcgi worker is blocked reading or writing a connection
 * breaks that request, and a worker found idle may accept a connection
 * before the signal comes.  So: idle_freeze() stops the worker
 * (SIGSTOP); later (a timer tick, once it has stopped) idle_retire()
 * looks again and, if it is still idle, sends sig before letting it go
 * on (SIGCONT): it then leaves from its wait without taking anything.
 * idle_retire() returns 1 if sig was sent, 0 if the worker was busy
 * (it is let go on untouched), -1 if it has not stopped yet or cannot
 * be told (let go on too; try again later).
 */
int	 idle_freeze(pid_t);
int	 idle_retire(pid_t, int);

#endif /* !IDLE_H */
