/* The pidfile of -P: locked while kfcgi runs, removed when it exits. */
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
 * The file is opened and locked (flock, on a descriptor kept open for
 * kfcgi's life) before the jail: a lock held is the test of a live
 * kfcgi, whatever pid the file holds.  Its directory is kept open too,
 * so that the file can be removed by name from inside the jail; if the
 * user of -U may not remove it, it is emptied instead.  The lock goes
 * with the last descriptor, so it is never stale.
 */
#include <sys/file.h>
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kfcgi.h"
#include "log.h"

static int	 pid_fd = -1;
static int	 pid_dirfd = -1;
static char	*pid_name;	/* last component of the path */

static void
pidfile_held(const char *path)
{
	char	 buf[32];
	ssize_t	 n;
	long	 pid;

	n = pread(pid_fd, buf, sizeof(buf) - 1, 0);
	buf[n > 0 ? n : 0] = '\0';
	if (sscanf(buf, "%ld", &pid) == 1 && pid > 0)
		fatalx("pidfile: %s: in use by a running kfcgi (pid %ld)",
		    path, pid);
	fatalx("pidfile: %s: locked by another running process", path);
}

/* Before the jail: open and lock, or exit with one line saying why. */
void
pidfile_open(const char *path)
{
	char	*copy;

	if ((pid_fd = open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC,
	    0644)) == -1)
		fatal("pidfile: %s", path);
	if (flock(pid_fd, LOCK_EX | LOCK_NB) == -1) {
		if (errno == EWOULDBLOCK)
			pidfile_held(path);
		fatal("pidfile: %s: lock", path);
	}
	if ((copy = strdup(path)) == NULL ||
	    (pid_name = strdup(basename(copy))) == NULL)
		fatal("pidfile: %s", path);
	strcpy(copy, path);
	if ((pid_dirfd = open(dirname(copy), O_PATH | O_DIRECTORY |
	    O_CLOEXEC)) == -1)
		fatal("pidfile: %s: its directory", path);
	free(copy);
	/*
	 * Only kfcgi itself runs exit handlers: the process waiting for a
	 * detaching daemon leaves with _exit(), workers are exec'd.
	 */
	if (atexit(pidfile_remove) != 0)
		fatalx("pidfile: %s: cannot arrange removal", path);
}

/* After start-up, in the process that stays: our pid. */
void
pidfile_write(void)
{
	char	 buf[32];
	int	 len;

	if (pid_fd == -1)
		return;
	len = snprintf(buf, sizeof(buf), "%ld\n", (long)getpid());
	if (ftruncate(pid_fd, 0) == -1 ||
	    pwrite(pid_fd, buf, (size_t)len, 0) != len)
		log_warn("pidfile: %s: write", pid_name);
}

/*
 * Remove the file if the name still leads to it (a careless operator may
 * have replaced it), or empty it if removing is not allowed.
 */
void
pidfile_remove(void)
{
	struct stat	 a, b;

	if (pid_fd == -1)
		return;
	if (fstat(pid_fd, &a) == 0 &&
	    fstatat(pid_dirfd, pid_name, &b, AT_SYMLINK_NOFOLLOW) == 0 &&
	    a.st_dev == b.st_dev && a.st_ino == b.st_ino &&
	    unlinkat(pid_dirfd, pid_name, 0) == -1) {
		log_debug("pidfile: %s: cannot remove (%s), emptying it",
		    pid_name, strerror(errno));
		if (ftruncate(pid_fd, 0) == -1)
			log_warn("pidfile: %s: truncate", pid_name);
	}
	close(pid_fd);
	close(pid_dirfd);
	pid_fd = pid_dirfd = -1;
	free(pid_name);
	pid_name = NULL;
}
