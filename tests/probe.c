/* probe.c: tries the queue depth and idle probes on real processes. */
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
 * Used by tests/test_probe.py; prints "key=value" lines.
 *
 *	probe qdepth [N]	fd 0 is a listener: its queue (N reads: cost)
 *	probe qdepth-stale	the same, with an answer left unread before
 *	probe idle PID [N]	idle_check(PID) (N checks: cost)
 *	probe started PID [N]	idle_started(PID) (N checks: cost)
 *	probe retire PID SIG [nofreeze]
 *				idle_freeze(PID), until it stops, idle_retire()
 *	probe jail DIR USER PROG [ARG ...]
 *		open both probes, chroot to DIR, become USER, start PROG
 *		with the listener (fd 0) as its fd 0, then every 20 ms
 *		print "idle=I qlen=L max=M" about it, until killed.
 */
#include <sys/types.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <linux/unix_diag.h>

#include <err.h>
#include <grp.h>
#include <signal.h>
#include <pwd.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "idle.h"
#include "qdepth.h"

extern char	**environ;

static double
now_us(void)
{
	struct timespec	 ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static int
do_qdepth(int argc, char *argv[])
{
	struct qdepth	*q;
	double		 t0;
	long		 i, n;
	int		 len, max;

	if ((q = qdepth_open(0)) == NULL)
		err(1, "qdepth_open");
	if (qdepth_read(q, &len, &max) == -1)
		err(1, "qdepth_read");
	printf("qlen=%d\nmax=%d\n", len, max);
	if (argc > 2) {
		n = strtol(argv[2], NULL, 10);
		t0 = now_us();
		for (i = 0; i < n; i++)
			if (qdepth_read(q, &len, &max) == -1)
				err(1, "qdepth_read");
		printf("us_per_read=%.2f\n", (now_us() - t0) / n);
	}
	qdepth_close(q);
	return 0;
}

/*
 * Leave the answer to a request of our own on qdepth's netlink socket
 * (the lowest free descriptor when it was opened), as a read that
 * failed half-way would; the next read must skip it.
 */
static int
do_qdepth_stale(void)
{
	struct {
		struct nlmsghdr		nlh;
		struct unix_diag_req	req;
	}		 msg;
	struct sockaddr_nl nladdr;
	struct qdepth	*q;
	struct stat	 st;
	int		 nl, len, max;

	if ((nl = dup(0)) == -1 || close(nl) == -1 || fstat(0, &st) == -1)
		err(1, "dup");
	if ((q = qdepth_open(0)) == NULL)
		err(1, "qdepth_open");
	memset(&msg, 0, sizeof(msg));
	msg.nlh.nlmsg_len = sizeof(msg);
	msg.nlh.nlmsg_type = SOCK_DIAG_BY_FAMILY;
	msg.nlh.nlmsg_flags = NLM_F_REQUEST;
	msg.nlh.nlmsg_seq = 999999;
	msg.req.sdiag_family = AF_UNIX;
	msg.req.udiag_states = ~0U;
	msg.req.udiag_ino = (unsigned int)st.st_ino;
	msg.req.udiag_show = UDIAG_SHOW_RQLEN;
	msg.req.udiag_cookie[0] = msg.req.udiag_cookie[1] = ~0U;
	memset(&nladdr, 0, sizeof(nladdr));
	nladdr.nl_family = AF_NETLINK;
	if (sendto(nl, &msg, sizeof(msg), 0, (struct sockaddr *)&nladdr,
	    sizeof(nladdr)) == -1)
		err(1, "sendto");
	if (qdepth_read(q, &len, &max) == -1)
		err(1, "qdepth_read");
	printf("qlen=%d\nmax=%d\n", len, max);
	qdepth_close(q);
	return 0;
}

static int
do_idle(int argc, char *argv[])
{
	int		(*fn)(pid_t) = idle_check;
	double		 t0;
	long		 i, n;
	pid_t		 pid;

	if (argc < 3)
		errx(2, "usage: probe idle|started PID [N]");
	pid = (pid_t)strtol(argv[2], NULL, 10);
	if (strcmp(argv[1], "started") == 0)
		fn = idle_started;
	if (idle_open() == -1)
		err(1, "idle_open");
	printf("%s=%d\n", argv[1], fn(pid));
	if (argc > 3) {
		n = strtol(argv[3], NULL, 10);
		t0 = now_us();
		for (i = 0; i < n; i++)
			(void)fn(pid);
		printf("us_per_check=%.2f\n", (now_us() - t0) / n);
	}
	idle_close();
	return 0;
}

/* Wait up to a second for pid to stop, as a timer would in the pool. */
static void
wait_stopped(pid_t pid)
{
	struct timespec	 ts = { 0, 5 * 1000 * 1000 };
	char		 path[64], buf[512], *p;
	FILE		*f;
	size_t		 n;
	int		 i;

	snprintf(path, sizeof(path), "/proc/%ld/stat", (long)pid);
	for (i = 0; i < 200; i++) {
		nanosleep(&ts, NULL);
		if ((f = fopen(path, "r")) == NULL)
			return;
		n = fread(buf, 1, sizeof(buf) - 1, f);
		fclose(f);
		buf[n] = '\0';
		if ((p = strrchr(buf, ')')) != NULL && p[1] == ' ' &&
		    p[2] == 'T')
			return;
	}
}

static int
do_retire(int argc, char *argv[])
{
	pid_t		 pid;

	if (argc < 4)
		errx(2, "usage: probe retire PID SIG");
	pid = (pid_t)strtol(argv[2], NULL, 10);
	if (idle_open() == -1)
		err(1, "idle_open");
	if (argc < 5) {
		if (idle_freeze(pid) == -1)
			err(1, "idle_freeze");
		wait_stopped(pid);
	}
	printf("retired=%d\n", idle_retire(pid, (int)strtol(argv[3], NULL,
	    10)));
	idle_close();
	return 0;
}

static void
become(const char *dir, const struct passwd *pw)
{
	if (chroot(dir) == -1 || chdir("/") == -1)
		err(1, "chroot: %s", dir);
	if (setgroups(1, &pw->pw_gid) == -1 ||
	    setresgid(pw->pw_gid, pw->pw_gid, pw->pw_gid) == -1 ||
	    setresuid(pw->pw_uid, pw->pw_uid, pw->pw_uid) == -1)
		err(1, "drop to %s", pw->pw_name);
}

static int
do_jail(int argc, char *argv[])
{
	struct qdepth	*q;
	struct passwd	*pw;
	struct timespec	 ts = { 0, 20 * 1000 * 1000 };
	pid_t		 pid;
	int		 len = -1, max = -1, rc;

	if (argc < 5)
		errx(2, "usage: probe jail DIR USER PROG [ARG ...]");
	if ((pw = getpwnam(argv[3])) == NULL)
		errx(1, "%s: no such user", argv[3]);
	if ((q = qdepth_open(0)) == NULL)
		err(1, "qdepth_open");
	if (idle_open() == -1)
		err(1, "idle_open");
	become(argv[2], pw);
	if ((rc = posix_spawn(&pid, argv[4], NULL, NULL, argv + 4,
	    environ)) != 0)
		errx(1, "spawn: %s: %s", argv[4], strerror(rc));
	printf("pid=%ld\nuid=%ld\n", (long)pid, (long)getuid());
	for (;;) {
		if (waitpid(pid, &rc, WNOHANG) == pid)
			errx(1, "worker exited");
		rc = qdepth_read(q, &len, &max);
		printf("idle=%d qlen=%d max=%d\n", idle_check(pid),
		    rc == -1 ? -1 : len, rc == -1 ? -1 : max);
		fflush(stdout);
		nanosleep(&ts, NULL);
	}
}

int
main(int argc, char *argv[])
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc < 2)
		errx(2, "usage: probe qdepth|qdepth-stale|idle|started|retire|jail ...");
	if (strcmp(argv[1], "qdepth") == 0)
		return do_qdepth(argc, argv);
	if (strcmp(argv[1], "qdepth-stale") == 0)
		return do_qdepth_stale();
	if (strcmp(argv[1], "idle") == 0 || strcmp(argv[1], "started") == 0)
		return do_idle(argc, argv);
	if (strcmp(argv[1], "retire") == 0)
		return do_retire(argc, argv);
	if (strcmp(argv[1], "jail") == 0)
		return do_jail(argc, argv);
	errx(2, "%s: unknown mode", argv[1]);
}
