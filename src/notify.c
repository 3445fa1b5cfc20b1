/* Readiness: service manager notifications through $NOTIFY_SOCKET. */
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
 * The sd_notify(3) datagram protocol, without libsystemd: one
 * "KEY=VALUE\n..." datagram per message to the Unix socket named by
 * $NOTIFY_SOCKET, a path or, after '@', an abstract name.  The socket is
 * connected before the jail and kept; the variable is removed so that
 * workers do not talk to the service manager in our name.
 */
#include <sys/socket.h>
#include <sys/un.h>

#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "kfcgi.h"
#include "log.h"
#include "pool.h"

#define NOTIFY_STATUS_MS	5000	/* STATUS= refreshed this often */

static int		 notify_fd = -1;
static struct event	 notify_ev;	/* STATUS= refresh */
static int		 notify_timer;	/* notify_ev is set */

/* Connect to $NOTIFY_SOCKET, if set; a bad one is warned about, no more. */
void
notify_open(void)
{
	struct sockaddr_un	 sun;
	const char		*path = getenv("NOTIFY_SOCKET");
	socklen_t		 len;
	size_t			 n;

	if (path == NULL)
		return;
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	n = strlen(path);
	if ((path[0] != '/' && path[0] != '@') || n < 2 ||
	    n >= sizeof(sun.sun_path)) {
		log_warnx("notify: %s: not a socket path or @name", path);
		unsetenv("NOTIFY_SOCKET");
		return;
	}
	memcpy(sun.sun_path, path, n);
	if (path[0] == '@')
		sun.sun_path[0] = '\0';
	len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n +
	    (path[0] == '/'));
	if ((notify_fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0)) == -1 ||
	    connect(notify_fd, (struct sockaddr *)&sun, len) == -1) {
		log_warn("notify: %s", path);
		if (notify_fd != -1)
			close(notify_fd);
		notify_fd = -1;
	}
	unsetenv("NOTIFY_SOCKET");
}

/* Send one message; the service manager's absence is not our failure. */
void
notify_send(const char *fmt, ...)
{
	char	 msg[512];
	va_list	 ap;
	int	 len;

	if (notify_fd == -1)
		return;
	va_start(ap, fmt);
	len = vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (len < 0 || (size_t)len >= sizeof(msg))
		return;
	if (send(notify_fd, msg, (size_t)len, MSG_NOSIGNAL) == -1)
		log_debug("notify: %s", strerror(errno));
}

/* The pool's figures for STATUS=, from whoever runs the pool. */
static void	(*notify_status)(char *, size_t, void *);
static void	*notify_arg;

/* A message with the pool's figures as STATUS= after it. */
static void
notify_pool(const char *what)
{
	char	 status[256] = "";

	if (notify_status != NULL)
		notify_status(status, sizeof(status), notify_arg);
	notify_send("%sSTATUS=%s", what, status);
}

static void
notify_status_cb(int fd UNUSED, short events UNUSED, void *arg UNUSED)
{
	notify_pool("");
	clock_timer_ms(&notify_ev, NOTIFY_STATUS_MS);
}

/* The first workers run, or a reload has started its new set. */
void
notify_ready(void (*status)(char *, size_t, void *), void *arg)
{
	if (notify_fd == -1)
		return;
	notify_status = status;
	notify_arg = arg;
	notify_pool("READY=1\n");
	if (!notify_timer) {
		evtimer_set(&notify_ev, notify_status_cb, NULL);
		notify_timer = 1;
	}
	clock_timer_ms(&notify_ev, NOTIFY_STATUS_MS);
}

/* SIGHUP: Type=notify-reload wants the time the reload began. */
void
notify_reloading(void)
{
	struct timespec	 ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	notify_send("RELOADING=1\nMONOTONIC_USEC=%llu\n"
	    "STATUS=reloading: replacing every worker",
	    (unsigned long long)ts.tv_sec * 1000000ULL +
	    (unsigned long long)ts.tv_nsec / 1000);
}

void
notify_stopping(void)
{
	if (notify_fd == -1)
		return;
	if (notify_timer)
		evtimer_del(&notify_ev);
	notify_pool("STOPPING=1\n");
}
