/* guard.c: the pool's process group, and its guard that kills it if kfcgi dies. */
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
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include "kfcgi.h"
#include "log.h"

/*
 * Workers and whatever they start join one process group, led by a tiny
 * guard process.  The guard holds the read end of a pipe whose write end
 * only the manager has: when the manager ends, however it ends (SIGKILL
 * included), the guard reads EOF and kills the whole group, itself too.
 * So no worker, nor a process a worker left behind, outlives kfcgi and
 * keeps the listening socket.  Portable: no prctl(PR_SET_PDEATHSIG),
 * which would not reach the workers' own children anyway.  A process
 * that leaves the group (setsid, setpgid) escapes it: a documented limit.
 */
static void __attribute__((__noreturn__))
guard_main(int rfd, int nullfd)
{
	struct sigaction sa;
	char		 c;
	ssize_t		 n;
	int		 sig, fd, top;

	/* Signals meant for the workers' group must not end the guard. */
	sa.sa_handler = SIG_IGN;
	sa.sa_flags = 0;
	sigemptyset(&sa.sa_mask);
	for (sig = 1; sig < NSIG; sig++)
		if (sig != SIGKILL && sig != SIGSTOP)
			(void)sigaction(sig, &sa, NULL);
	/*
	 * Hold nothing of the manager's, the listening socket least of all,
	 * nor the standard output of whoever started kfcgi: they would wait
	 * for its end as long as the guard lives.
	 */
	(void)dup2(nullfd, STDIN_FILENO);
	(void)dup2(nullfd, STDOUT_FILENO);
	(void)dup2(nullfd, STDERR_FILENO);
	if (close_range(3, rfd - 1, 0) == -1 ||
	    close_range(rfd + 1, ~0U, 0) == -1) {
		top = (int)sysconf(_SC_OPEN_MAX);
		for (fd = 3; fd < top; fd++)
			if (fd != rfd)
				(void)close(fd);
	}
	sigprocmask(SIG_SETMASK, &sa.sa_mask, NULL);
	do
		n = read(rfd, &c, 1);
	while (n > 0 || (n == -1 && errno == EINTR));
	kill(0, SIGKILL);
	_exit(0);
}

/* Start the guard; its pid is the process group for the workers. */
pid_t
guard_start(int nullfd)
{
	int	 fds[2];
	pid_t	 pid;

	if (pipe2(fds, O_CLOEXEC) == -1)
		fatal("guard: pipe");
	switch ((pid = fork())) {
	case -1:
		fatal("guard: fork");
	case 0:
		close(fds[1]);
		if (setpgid(0, 0) == -1)
			_exit(1);
		guard_main(fds[0], nullfd);
	default:
		break;
	}
	close(fds[0]);
	/* Also here, so that the group exists before the first spawn. */
	if (setpgid(pid, pid) == -1 && errno != EACCES)
		fatal("guard: setpgid");
	log_debug("guard: %d: leads the workers' process group", (int)pid);
	/* fds[1] stays open, close-on-exec, for as long as we live. */
	return pid;
}
