/* daemon.c: detach, reporting start-up success or failure to the caller. */
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
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include "kfcgi.h"
#include "log.h"

/*
 * Detaching is split in two so that start-up errors keep reaching the
 * operator: daemon_start() forks, and the parent waits on a pipe until
 * the child calls daemon_ready() (exit 0) or dies trying (exit 1).
 */
static int	 ready_fd = -1;

int
devnull_open(void)
{
	int	 fd;

	if ((fd = open("/dev/null", O_RDWR | O_CLOEXEC)) == -1)
		fatal("open: /dev/null");
	return fd;
}

static void __attribute__((__noreturn__))
daemon_wait_child(int rfd, pid_t pid)
{
	char	 ok;
	ssize_t	 n;

	do
		n = read(rfd, &ok, 1);
	while (n == -1 && errno == EINTR);
	if (n == 1)
		_exit(0);
	/* No word from the child: it failed and said why on stderr. */
	while (waitpid(pid, NULL, 0) == -1 && errno == EINTR)
		continue;
	_exit(1);
}

void
daemon_start(void)
{
	int	 fds[2];
	pid_t	 pid;

	if (pipe2(fds, O_CLOEXEC) == -1)
		fatal("daemon: pipe");
	switch ((pid = fork())) {
	case -1:
		fatal("daemon: fork");
	case 0:
		break;
	default:
		close(fds[1]);
		daemon_wait_child(fds[0], pid);
	}
	close(fds[0]);
	ready_fd = fds[1];
	if (setsid() == -1)
		fatal("daemon: setsid");
}

/* Start-up succeeded: let the parent go and leave the terminal. */
void
daemon_ready(int nullfd)
{
	char	 ok = 1;

	if (ready_fd == -1)
		return;
	log_stderr(0);
	if (dup2(nullfd, STDIN_FILENO) == -1 ||
	    dup2(nullfd, STDOUT_FILENO) == -1 ||
	    dup2(nullfd, STDERR_FILENO) == -1)
		fatal("daemon: dup2");
	if (write(ready_fd, &ok, 1) != 1)
		log_warn("daemon: cannot report start-up");
	close(ready_fd);
	ready_fd = -1;
}
