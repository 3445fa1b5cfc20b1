/* idle.c: is a classic worker waiting for a connection on descriptor 0? */
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
#include <sys/types.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "idle.h"

#ifdef __linux__

#include <sys/syscall.h>

#include <poll.h>

#define IDLE_MAXPOLL	16	/* pollfd entries looked at */
#define IDLE_MAXSET	128	/* fd_set bytes looked at: 1024 bits */

/*
 * /proc/PID/syscall names the system call a blocked process is in and
 * its arguments ("running" when it is not blocked).  A worker blocked in
 * accept(2) on descriptor 0 is idle; one that waits with poll, select or
 * epoll is idle if descriptor 0 is all it waits for, which takes a look
 * at its memory (/proc/PID/mem: the pollfd array or fd_sets) or at the
 * epoll set (/proc/PID/fdinfo/N).  Reading these needs the ptrace access
 * check to pass: same uid as the worker, the worker dumpable (a program
 * the user cannot read is not), and no Yama restriction on descendants.
 * Only the main thread is looked at: a worker that accepts in another
 * thread is judged by what its main thread does.
 *
 * Security: the manager keeps this /proc descriptor inside the jail.
 * From it a manager taken over by an attacker could read what /proc
 * shows of every process on the host, and for every process running as
 * the same user, inside the jail or not, reach its memory (read and
 * write), its open files and its root directory: a way out of the jail.
 * So the -U user must be one that no process outside the jail runs as.
 * A manager left as root could leave the jail anyway.
 */
static int	 procfd = -1;

int
idle_open(void)
{
	if (procfd != -1)
		return 0;
	procfd = open("/proc", O_PATH | O_DIRECTORY | O_CLOEXEC);
	return procfd == -1 ? -1 : 0;
}

void
idle_close(void)
{
	if (procfd != -1)
		close(procfd);
	procfd = -1;
}

/* Read up to len bytes of /proc/PID/name; -1 on error. */
static ssize_t
idle_readfile(pid_t pid, const char *name, char *buf, size_t len)
{
	char	 path[64];
	ssize_t	 n;
	int	 fd, serr;

	snprintf(path, sizeof(path), "%ld/%s", (long)pid, name);
	if ((fd = openat(procfd, path, O_RDONLY | O_CLOEXEC)) == -1)
		return -1;
	n = read(fd, buf, len);
	serr = errno;
	close(fd);
	errno = serr;
	return n;
}

/* Copy len bytes at address addr of the worker's memory. */
static int
idle_peek(pid_t pid, uint64_t addr, void *buf, size_t len)
{
	char	 path[64];
	ssize_t	 n;
	int	 fd, serr;

	if (addr == 0 || addr > (uint64_t)INT64_MAX - len) {
		errno = EFAULT;
		return -1;
	}
	snprintf(path, sizeof(path), "%ld/mem", (long)pid);
	if ((fd = openat(procfd, path, O_RDONLY | O_CLOEXEC)) == -1)
		return -1;
	n = pread(fd, buf, len, (off_t)addr);
	serr = errno;
	close(fd);
	errno = serr;
	if (n == (ssize_t)len)
		return 0;
	if (n >= 0)
		errno = EIO;
	return -1;
}

/* poll(fds, nfds, ...): idle if descriptor 0 is the only one waited on. */
static int
idle_poll(pid_t pid, uint64_t addr, uint64_t nfds)
{
	struct pollfd	 pfd[IDLE_MAXPOLL];
	uint64_t	 i;
	int		 zero = 0;

	if (nfds == 0)
		return 0;
	if (nfds > IDLE_MAXPOLL)
		return 0;		/* a loop of many: busy with something */
	if (idle_peek(pid, addr, pfd, nfds * sizeof(pfd[0])) == -1)
		return -1;
	for (i = 0; i < nfds; i++) {
		if (pfd[i].fd < 0)
			continue;
		if (pfd[i].fd != 0)
			return 0;
		if (pfd[i].events & POLLIN)
			zero = 1;
	}
	return zero;
}

/* Which bits of an fd_set of nfds bits are set: 1 just bit 0, 0 none, 2. */
static int
idle_fdset(pid_t pid, uint64_t addr, uint64_t nfds)
{
	unsigned char	 set[IDLE_MAXSET];
	size_t		 i, len = (nfds + 7) / 8;
	int		 rc = 0;

	if (addr == 0)
		return 0;
	if (idle_peek(pid, addr, set, len) == -1)
		return -1;
	if (nfds % 8 != 0)
		set[len - 1] &= (1U << (nfds % 8)) - 1;
	for (i = 0; i < len; i++) {
		if (set[i] & ~(i == 0 ? 1U : 0U))
			return 2;
		if (i == 0 && (set[0] & 1))
			rc = 1;
	}
	return rc;
}

/* select(nfds, r, w, e, ...): idle if it reads descriptor 0 and no more. */
static int
idle_select(pid_t pid, const uint64_t *arg)
{
	int	 r, w, e;

	if (arg[0] == 0 || arg[0] > IDLE_MAXSET * 8)
		return 0;
	if ((r = idle_fdset(pid, arg[1], arg[0])) == -1 ||
	    (w = idle_fdset(pid, arg[2], arg[0])) == -1 ||
	    (e = idle_fdset(pid, arg[3], arg[0])) == -1)
		return -1;
	return r == 1 && w == 0 && e == 0;
}

/* epoll_wait(epfd, ...): idle if descriptor 0 is all the set watches. */
static int
idle_epoll(pid_t pid, uint64_t epfd)
{
	char		 buf[4096], name[32], *p;
	ssize_t		 n;
	int		 zero = 0, tfd;

	if (epfd > INT32_MAX)
		return 0;
	snprintf(name, sizeof(name), "fdinfo/%d", (int)epfd);
	if ((n = idle_readfile(pid, name, buf, sizeof(buf) - 1)) == -1)
		return -1;
	if ((size_t)n == sizeof(buf) - 1)
		return 0;		/* a big set: more than descriptor 0 */
	buf[n] = '\0';
	for (p = buf; (p = strstr(p, "tfd:")) != NULL; p += 4) {
		if (sscanf(p + 4, "%d", &tfd) != 1)
			return -1;
		if (tfd != 0)
			return 0;
		zero = 1;
	}
	return zero;
}

/* The verdict on one system call and its arguments. */
static int
idle_syscall(pid_t pid, long nr, const uint64_t *arg)
{
	switch (nr) {
#ifdef SYS_accept
	case SYS_accept:
#endif
	case SYS_accept4:
		return arg[0] == 0;
#ifdef SYS_poll
	case SYS_poll:
#endif
	case SYS_ppoll:
		return idle_poll(pid, arg[0], arg[1]);
#ifdef SYS_select
	case SYS_select:
#endif
	case SYS_pselect6:
		return idle_select(pid, arg);
#ifdef SYS_epoll_wait
	case SYS_epoll_wait:
#endif
#ifdef SYS_epoll_pwait2
	case SYS_epoll_pwait2:
#endif
	case SYS_epoll_pwait:
		return idle_epoll(pid, arg[0]);
	default:
		return 0;
	}
}

/*
 * The system call pid is blocked in and its arguments: 1, or 0 when it
 * is running or blocked outside one, -1 when that cannot be read.
 */
static int
idle_syscall_of(pid_t pid, long *nr, uint64_t *arg)
{
	char		 buf[256], *p, *end;
	ssize_t		 n;
	int		 i;

	if (procfd == -1 || pid <= 0) {
		errno = EINVAL;
		return -1;
	}
	if ((n = idle_readfile(pid, "syscall", buf, sizeof(buf) - 1)) <= 0)
		return -1;
	buf[n] = '\0';
	if (strncmp(buf, "running", 7) == 0)
		return 0;
	errno = 0;
	*nr = strtol(buf, &end, 10);
	if (end == buf || errno != 0)
		return -1;
	if (*nr < 0)
		return 0;		/* blocked, not in a system call */
	for (i = 0, p = end; i < 6; i++, p = end) {
		arg[i] = strtoull(p, &end, 16);
		if (end == p || errno != 0)
			return -1;
	}
	return 1;
}

int
idle_check(pid_t pid)
{
	uint64_t	 arg[6];
	long		 nr;
	int		 rc;

	if ((rc = idle_syscall_of(pid, &nr, arg)) != 1)
		return rc;
	return idle_syscall(pid, nr, arg);
}

/* Whether the worker has a socket other than descriptors 0, 1 and 2. */
static int
idle_has_socket(pid_t pid)
{
	struct dirent	*de;
	DIR		*dir;
	char		 path[64], link[32];
	ssize_t		 n;
	long		 fd;
	int		 dfd, found = 0;

	snprintf(path, sizeof(path), "%ld/fd", (long)pid);
	if ((dfd = openat(procfd, path, O_RDONLY | O_DIRECTORY |
	    O_CLOEXEC)) == -1)
		return -1;
	if ((dir = fdopendir(dfd)) == NULL) {
		close(dfd);
		return -1;
	}
	while (!found && (de = readdir(dir)) != NULL) {
		if ((fd = strtol(de->d_name, NULL, 10)) < 3)
			continue;
		n = readlinkat(dfd, de->d_name, link, sizeof(link) - 1);
		if (n == -1)
			continue;	/* closed meanwhile */
		link[n] = '\0';
		found = strncmp(link, "socket:", 7) == 0;
	}
	closedir(dir);
	return found;
}

/*
 * Whether a new worker has started: it waits on descriptor 0, or it
 * holds a socket it did not have at exec (it was given 0, 1 and 2 only):
 * a connection it took, whatever it does with it now.  Reading files,
 * sleeping or running with no socket, it is still starting up (0).
 * A worker that opens a socket of its own while starting up (to a data
 * base) is taken as started: at worst the pool grows a little early.
 */
int
idle_started(pid_t pid)
{
	int	 rc;

	if ((rc = idle_check(pid)) != 0)
		return rc;
	return idle_has_socket(pid);
}

/* Whether the process is stopped (state T in /proc/PID/stat). */
static int
idle_stopped(pid_t pid)
{
	char	 buf[512], *p;
	ssize_t	 n;

	if ((n = idle_readfile(pid, "stat", buf, sizeof(buf) - 1)) <= 0)
		return -1;
	buf[n] = '\0';
	if ((p = strrchr(buf, ')')) == NULL || p[1] != ' ')
		return -1;
	return p[2] == 'T';
}

int
idle_freeze(pid_t pid)
{
	if (procfd == -1 || pid <= 0) {
		errno = EINVAL;
		return -1;
	}
	return kill(pid, SIGSTOP);
}

/*
 * Stopped inside its wait, the worker still shows that system call; a
 * signal queued now is handled first thing after SIGCONT, and a worker
 * that left its wait before it stopped is seen busy and left alone.
 */
int
idle_retire(pid_t pid, int sig)
{
	int	 rc;

	if (procfd == -1 || pid <= 0) {
		errno = EINVAL;
		return -1;
	}
	if ((rc = idle_stopped(pid)) != 1)
		rc = -1;
	else if ((rc = idle_check(pid)) == 1 && kill(pid, sig) == -1)
		rc = -1;
	if (kill(pid, SIGCONT) == -1)
		return -1;
	return rc;
}

#else /* !__linux__ */

/* No /proc/PID/syscall: nobody is known to be idle. */
int
idle_open(void)
{
	errno = EOPNOTSUPP;
	return -1;
}

int
idle_check(pid_t pid)
{
	(void)pid;
	errno = EOPNOTSUPP;
	return -1;
}

int
idle_started(pid_t pid)
{
	(void)pid;
	errno = EOPNOTSUPP;
	return -1;
}

void
idle_close(void)
{
}

int
idle_freeze(pid_t pid)
{
	(void)pid;
	errno = EOPNOTSUPP;
	return -1;
}

int
idle_retire(pid_t pid, int sig)
{
	(void)pid;
	(void)sig;
	errno = EOPNOTSUPP;
	return -1;
}

#endif /* __linux__ */
