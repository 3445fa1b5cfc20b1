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
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "kfcgi.h"
#include "log.h"

/* The socket is created 0660: umask at bind time leaves no wider window. */
#define SOCK_UMASK	0117

int
sock_path_fits(const char *path)
{
	struct sockaddr_un	 sun;

	return strlen(path) < sizeof(sun.sun_path);
}

static void
sock_addr(struct sockaddr_un *sun, const char *path)
{
	memset(sun, 0, sizeof(*sun));
	sun->sun_family = AF_UNIX;
	/* Length was checked by sock_path_fits() during option parsing. */
	strncpy(sun->sun_path, path, sizeof(sun->sun_path) - 1);
}

/*
 * Never steal a live socket: if something accepts on the path, refuse.
 * A socket file nobody listens on is stale and is removed; anything
 * that is not a socket is the operator's and is left alone.
 */
static void
sock_clear_stale(const char *path)
{
	struct sockaddr_un	 sun;
	struct stat		 st;
	int			 fd, rc;

	if (lstat(path, &st) == -1) {
		if (errno == ENOENT)
			return;
		fatal("socket: %s", path);
	}
	if (!S_ISSOCK(st.st_mode))
		fatalx("socket: %s: exists and is not a socket", path);

	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1)
		fatal("socket: %s", path);
	sock_addr(&sun, path);
	rc = connect(fd, (struct sockaddr *)&sun, sizeof(sun));
	if (rc == 0 || errno == EAGAIN)
		fatalx("socket: %s: in use by another process", path);
	if (errno != ECONNREFUSED)
		fatal("socket: %s: cannot probe", path);
	close(fd);
	if (unlink(path) == -1)
		fatal("socket: %s: cannot remove stale socket", path);
	log_debug("socket: %s: removed stale socket", path);
}

/*
 * Create, own and listen on a Unix socket at path; owner NULL leaves it
 * ours.  (For now a path only; TCP addresses come with the -s rework.)
 */
int
sock_open(const char *path, int backlog, const struct user *owner)
{
	struct sockaddr_un	 sun;
	mode_t			 omask;
	int			 fd;

	sock_clear_stale(path);
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1)
		fatal("socket: %s", path);
	sock_addr(&sun, path);
	omask = umask(SOCK_UMASK);
	if (bind(fd, (struct sockaddr *)&sun, sizeof(sun)) == -1)
		fatal("socket: %s: bind", path);
	umask(omask);
	if (owner != NULL && owner->name != NULL &&
	    lchown(path, owner->uid, owner->gid) == -1)
		fatal("socket: %s: chown to %s", path, owner->name);
	if (listen(fd, backlog) == -1)
		fatal("socket: %s: listen", path);
	log_debug("socket: %s: listening, backlog %d", path, backlog);
	return fd;
}

/* Create, own and listen on the Unix socket of -s. */
int
sock_listen(const struct config *conf)
{
	return sock_open(conf->sockpath, conf->backlog, &conf->sockuser);
}
