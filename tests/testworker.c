/*
 * Copyright (c) 2026 the kfcgi authors
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
 * Test worker for the kfcgi test suite.  Statically linked, it runs in
 * an empty jail.  It reports how it was started (descriptors, signals,
 * credentials, jail contents, environment) and misbehaves on request,
 * as QUERY_STRING words separated by '&':
 *
 *	info		add the start-up state to the answer
 *	sleep=MS	sleep before answering
 *	echo		add "stdin=" and the request body, last
 *	crash		_exit(3) without answering
 *	hang		never answer, hold the connection
 *	exitafter=N	answer, finish the connection, exit(N)
 *	wrongcookie	answer, send the cookie plus one instead
 *	garbage		answer, send "xyz" instead of the cookie
 *	closechan	answer, close the channel, sleep forever
 *	nocookie	answer, never send the cookie, go on
 *	say=WORD	write "WORD" and a newline on stderr
 *	sayout=WORD	write "WORD" and a newline on stdout
 *	partial=WORD	write "WORD" on stderr, no newline
 *	long=N		write a line of N 'x' on stderr
 *	flood=N		write N numbered lines on stderr
 *	spawnchild	fork a child that outlives the answer (default
 *			signals, keeps descriptors 0-3), report child=PID
 *
 * Options: --ignore-term, --exit-at-start=N, --startlog=PATH,
 * --startclock=PATH (as --startlog, "PID NS" with NS the CLOCK_MONOTONIC
 * nanoseconds at start, for bench/), --no-sigterm-grace,
 * --max-requests=N (exit 0 once N connections are finished, right after
 * giving the last one back).  Other arguments are
 * let be (reported as "args=").  The answer is "key=value" lines; in the
 * extension it names the connection's cookie ("cookie=").
 */

#include <sys/types.h>
#include <sys/resource.h>
#include <sys/socket.h>

#include <dirent.h>
#include <err.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "kfcgi_worker.h"

#define MAXFD	1024

/* What to do once the answer is out. */
enum	after {
	AFTER_FINISH,		/* finish the connection normally */
	AFTER_EXIT,		/* finish, then exit */
	AFTER_WRONGCOOKIE,	/* close, send the cookie plus one */
	AFTER_GARBAGE,		/* close, send "xyz" */
	AFTER_CLOSECHAN,	/* close, close the channel, sleep */
	AFTER_NOCOOKIE		/* close, send nothing */
};

/* What a request's QUERY_STRING asks for. */
struct	query {
	int		 info;		/* add the start-up state */
	int		 echo;		/* add the request body */
	int		 spawn;		/* fork a lasting child */
	enum after	 after;
	int		 code;		/* exit status for AFTER_EXIT */
};

struct	sbuf {
	char	*p;
	size_t	 len;
	size_t	 cap;
};

/* The process as it was started, before it changed anything. */
struct	start {
	struct sbuf	 fds;
	struct sbuf	 sigmask;
	struct sbuf	 sigign;
	struct sbuf	 sigcaught;
	struct sbuf	 uid;
	struct sbuf	 gid;
	struct sbuf	 groups;
	struct sbuf	 root;
	struct sbuf	 nofile;
	struct sbuf	 args;
	const char	*env;
};

struct	opts {
	int		 ignoreterm;
	int		 nograce;
	int		 exitatstart;	/* -1 if not given */
	long		 maxreq;	/* 0: no limit */
	const char	*startlog;
	const char	*startclock;
};

static void	sb_add(struct sbuf *, const void *, size_t);
static void	sb_printf(struct sbuf *, const char *, ...)
		    __attribute__((format(printf, 2, 3)));
static void	sb_item(struct sbuf *, long);
static int	num(const char *, long, long *);
static int	namecmp(const void *, const void *);
static void	record_fds(struct start *);
static void	record_signals(struct start *);
static void	record_creds(struct start *);
static void	record_root(struct start *);
static void	record_nofile(struct start *);
static void	options(int, char *[], struct opts *, struct start *);
static long	spawnchild(int);
static void	startlog(const char *, int);
static void	msleep(long);
static void	sleep_forever(void) __attribute__((noreturn));
static void	sb_line(struct sbuf *, const char *, const struct sbuf *);
static void	info(struct sbuf *, const struct start *);
static void	writeall(int, const char *, size_t);
static int	output(const char *);
static void	query(const char *, struct query *);
static void	answer(const struct kfw *, int, const struct kfw_req *,
		    const struct start *, struct query *);
static void	chanwrite(const struct kfw *, const void *, size_t);
static int	serve(struct kfw *, int, const struct start *);

static unsigned long served;

static void
sb_add(struct sbuf *sb, const void *p, size_t len)
{
	size_t	 cap;
	char	*np;

	if (len >= sb->cap - sb->len || sb->p == NULL) {
		cap = sb->cap ? sb->cap : 256;
		while (cap - sb->len <= len)
			cap *= 2;
		if ((np = realloc(sb->p, cap)) == NULL)
			err(1, NULL);
		sb->p = np;
		sb->cap = cap;
	}
	memcpy(sb->p + sb->len, p, len);
	sb->len += len;
	sb->p[sb->len] = '\0';
}

static void
sb_printf(struct sbuf *sb, const char *fmt, ...)
{
	va_list	 ap;
	char	 buf[512];
	int	 len;

	va_start(ap, fmt);
	len = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (len < 0 || (size_t)len >= sizeof(buf))
		errx(1, "sb_printf: line too long");
	sb_add(sb, buf, (size_t)len);
}

/* One element of a comma-separated list. */
static void
sb_item(struct sbuf *sb, long v)
{
	sb_printf(sb, "%s%ld", sb->len ? "," : "", v);
}

/* A decimal number in [0, max]; returns 0 or -1. */
static int
num(const char *s, long max, long *v)
{
	char	*end;

	if (*s < '0' || *s > '9')
		return -1;
	errno = 0;
	*v = strtol(s, &end, 10);
	if (errno != 0 || *end != '\0' || *v > max)
		return -1;
	return 0;
}

static int
namecmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* First of all, before anything here opens a descriptor. */
static void
record_fds(struct start *st)
{
	int	 fd;

	for (fd = 0; fd < MAXFD; fd++)
		if (fcntl(fd, F_GETFD) != -1)
			sb_item(&st->fds, fd);
}

/*
 * Signals the C library keeps for itself (32 and 33 with glibc) cannot
 * be queried and are skipped.
 */
static void
record_signals(struct start *st)
{
	struct sigaction sa;
	sigset_t	 mask;
	int		 sig;

	if (sigprocmask(SIG_SETMASK, NULL, &mask) == -1)
		err(1, "sigprocmask");
	for (sig = 1; sig < NSIG; sig++) {
		if (sigismember(&mask, sig) == 1)
			sb_item(&st->sigmask, sig);
		if (sigaction(sig, NULL, &sa) == -1)
			continue;
		if (sa.sa_flags & SA_SIGINFO)
			sb_item(&st->sigcaught, sig);
		else if (sa.sa_handler == SIG_IGN)
			sb_item(&st->sigign, sig);
		else if (sa.sa_handler != SIG_DFL)
			sb_item(&st->sigcaught, sig);
	}
}

static void
record_creds(struct start *st)
{
	uid_t	 ru, eu, su;
	gid_t	 rg, eg, sg, *gl;
	int	 i, n;

	if (getresuid(&ru, &eu, &su) == -1 ||
	    getresgid(&rg, &eg, &sg) == -1)
		err(1, "getresuid");
	sb_printf(&st->uid, "%lu,%lu,%lu", (unsigned long)ru,
	    (unsigned long)eu, (unsigned long)su);
	sb_printf(&st->gid, "%lu,%lu,%lu", (unsigned long)rg,
	    (unsigned long)eg, (unsigned long)sg);
	if ((n = getgroups(0, NULL)) == -1)
		err(1, "getgroups");
	if ((gl = calloc((size_t)n + 1, sizeof(*gl))) == NULL)
		err(1, NULL);
	if ((n = getgroups(n, gl)) == -1)
		err(1, "getgroups");
	for (i = 0; i < n; i++)
		sb_item(&st->groups, (long)gl[i]);
	free(gl);
}

/* The entries of the jail's root, sorted; unreadable is empty. */
static void
record_root(struct start *st)
{
	DIR		*d;
	struct dirent	*de;
	char		**v, **nv;
	size_t		 n, i;

	if ((d = opendir("/")) == NULL)
		return;
	for (v = NULL, n = 0; (de = readdir(d)) != NULL; ) {
		if (strcmp(de->d_name, ".") == 0 ||
		    strcmp(de->d_name, "..") == 0)
			continue;
		if ((nv = reallocarray(v, n + 1, sizeof(*v))) == NULL ||
		    (nv[n] = strdup(de->d_name)) == NULL)
			err(1, NULL);
		v = nv;
		n++;
	}
	closedir(d);
	qsort(v, n, sizeof(*v), namecmp);
	for (i = 0; i < n; i++) {
		if (i > 0)
			sb_add(&st->root, ",", 1);
		sb_add(&st->root, v[i], strlen(v[i]));
		free(v[i]);
	}
	free(v);
}

static void
record_nofile(struct start *st)
{
	struct rlimit	 rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == -1)
		err(1, "getrlimit");
	sb_printf(&st->nofile, "%lld,%lld",
	    rl.rlim_cur == RLIM_INFINITY ? -1LL : (long long)rl.rlim_cur,
	    rl.rlim_max == RLIM_INFINITY ? -1LL : (long long)rl.rlim_max);
}

static void
options(int argc, char *argv[], struct opts *o, struct start *st)
{
	long	 v;
	int	 i;

	memset(o, 0, sizeof(*o));
	o->exitatstart = -1;
	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--ignore-term") == 0)
			o->ignoreterm = 1;
		else if (strcmp(argv[i], "--no-sigterm-grace") == 0)
			o->nograce = 1;
		else if (strncmp(argv[i], "--exit-at-start=", 16) == 0) {
			if (num(argv[i] + 16, 255, &v) == -1)
				errx(1, "bad exit code: %s", argv[i]);
			o->exitatstart = (int)v;
		} else if (strncmp(argv[i], "--startlog=", 11) == 0)
			o->startlog = argv[i] + 11;
		else if (strncmp(argv[i], "--startclock=", 13) == 0)
			o->startclock = argv[i] + 13;
		else if (strncmp(argv[i], "--max-requests=", 15) == 0) {
			if (num(argv[i] + 15, LONG_MAX, &o->maxreq) == -1 ||
			    o->maxreq == 0)
				errx(1, "bad request count: %s", argv[i]);
		} else if (strncmp(argv[i], "--", 2) == 0)
			errx(1, "unknown option: %s", argv[i]);
		else {
			if (st->args.len)
				sb_add(&st->args, ",", 1);
			sb_add(&st->args, argv[i], strlen(argv[i]));
		}
	}
}

/*
 * A child that stays behind, as a program's helper might: default
 * signals, nothing blocked, descriptors 0-3 kept (the listening socket
 * or the channel among them); the client's connection is closed.
 */
static long
spawnchild(int fd)
{
	sigset_t	 set;
	pid_t		 pid;

	if ((pid = fork()) == -1)
		err(1, "fork");
	if (pid != 0)
		return (long)pid;
	close(fd);
	signal(SIGTERM, SIG_DFL);
	sigemptyset(&set);
	sigprocmask(SIG_SETMASK, &set, NULL);
	sleep_forever();
}

/* One write with O_APPEND, so that lines of racing workers stay whole. */
static void
startlog(const char *path, int clock)
{
	struct timespec	 ts;
	char		 buf[64];
	int		 fd, len;

	if (clock_gettime(CLOCK_MONOTONIC, &ts) == -1)
		err(1, "clock_gettime");
	if ((fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC,
	    0644)) == -1)
		err(1, "%s", path);
	/* One write(2) with O_APPEND: lines of concurrent starts stay whole. */
	if (clock)
		len = snprintf(buf, sizeof(buf), "%ld %lld\n", (long)getpid(),
		    (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec);
	else
		len = snprintf(buf, sizeof(buf), "%ld\n", (long)getpid());
	if (write(fd, buf, (size_t)len) != len)
		err(1, "%s", path);
	close(fd);
}

static void
msleep(long ms)
{
	struct timespec	 ts;

	ts.tv_sec = ms / 1000;
	ts.tv_nsec = (ms % 1000) * 1000000L;
	while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
		continue;
}

static void
sleep_forever(void)
{
	for (;;)
		pause();
}

/* "key=value\n" where the value may be long (many descriptors, say). */
static void
sb_line(struct sbuf *b, const char *key, const struct sbuf *val)
{
	sb_add(b, key, strlen(key));
	sb_add(b, "=", 1);
	if (val->len)
		sb_add(b, val->p, val->len);
	sb_add(b, "\n", 1);
}

static void
info(struct sbuf *b, const struct start *st)
{
	const char	*env;

	sb_line(b, "startfds", &st->fds);
	sb_line(b, "sigmask", &st->sigmask);
	sb_line(b, "sigign", &st->sigign);
	sb_line(b, "sigcaught", &st->sigcaught);
	sb_line(b, "uid", &st->uid);
	sb_line(b, "gid", &st->gid);
	sb_line(b, "groups", &st->groups);
	sb_line(b, "root", &st->root);
	sb_line(b, "nofile", &st->nofile);
	sb_line(b, "args", &st->args);
	env = st->env != NULL ? st->env : "unset";
	sb_add(b, "env_fcgi_listensock=", 20);
	sb_add(b, env, strlen(env));
	sb_add(b, "\n", 1);
}

static void
writeall(int fd, const char *p, size_t len)
{
	ssize_t	 n;

	while (len > 0) {
		if ((n = write(fd, p, len)) == -1) {
			if (errno == EINTR)
				continue;
			return;
		}
		p += n;
		len -= (size_t)n;
	}
}

/* The words that write on stdout or stderr; -1 if w is not one. */
static int
output(const char *w)
{
	char	 buf[64];
	long	 v, i;
	int	 len;

	if (strncmp(w, "say=", 4) == 0) {
		writeall(2, w + 4, strlen(w + 4));
		writeall(2, "\n", 1);
	} else if (strncmp(w, "sayout=", 7) == 0) {
		writeall(1, w + 7, strlen(w + 7));
		writeall(1, "\n", 1);
	} else if (strncmp(w, "partial=", 8) == 0)
		writeall(2, w + 8, strlen(w + 8));
	else if (strncmp(w, "long=", 5) == 0 &&
	    num(w + 5, 1L << 24, &v) == 0) {
		for (i = 0; i < v; i++)
			writeall(2, "x", 1);
		writeall(2, "\n", 1);
	} else if (strncmp(w, "flood=", 6) == 0 &&
	    num(w + 6, LONG_MAX, &v) == 0) {
		for (i = 0; i < v; i++) {
			len = snprintf(buf, sizeof(buf), "flood line %ld\n", i);
			writeall(2, buf, (size_t)len);
		}
	} else
		return -1;
	return 0;
}

/*
 * Act on the words of QUERY_STRING in order: sleeping, crashing and
 * hanging happen at once, the rest is noted in *q.  Unknown words are
 * let be, so that tests may make each query unique.
 */
static void
query(const char *qs, struct query *q)
{
	char	*words, *w, *next;
	long	 v;

	if ((words = strdup(qs)) == NULL)
		err(1, NULL);
	for (w = words; w != NULL; w = next) {
		if ((next = strchr(w, '&')) != NULL)
			*next++ = '\0';
		if (strncmp(w, "sleep=", 6) == 0 &&
		    num(w + 6, LONG_MAX / 1000, &v) == 0)
			msleep(v);
		else if (strcmp(w, "crash") == 0)
			_exit(3);
		else if (output(w) == 0)
			continue;
		else if (strcmp(w, "hang") == 0)
			sleep_forever();
		else if (strcmp(w, "info") == 0)
			q->info = 1;
		else if (strcmp(w, "echo") == 0)
			q->echo = 1;
		else if (strcmp(w, "spawnchild") == 0)
			q->spawn = 1;
		else if (strncmp(w, "exitafter=", 10) == 0 &&
		    num(w + 10, 255, &v) == 0) {
			q->after = AFTER_EXIT;
			q->code = (int)v;
		} else if (strcmp(w, "wrongcookie") == 0)
			q->after = AFTER_WRONGCOOKIE;
		else if (strcmp(w, "garbage") == 0)
			q->after = AFTER_GARBAGE;
		else if (strcmp(w, "closechan") == 0)
			q->after = AFTER_CLOSECHAN;
		else if (strcmp(w, "nocookie") == 0)
			q->after = AFTER_NOCOOKIE;
	}
	free(words);
}

/* Answer one request as its query asks; q says what comes after. */
static void
answer(const struct kfw *k, int fd, const struct kfw_req *req,
    const struct start *st, struct query *q)
{
	const char	*qs;
	struct sbuf	 b;

	served++;
	memset(q, 0, sizeof(*q));
	q->after = AFTER_FINISH;
	if ((qs = kfw_req_param(req, "QUERY_STRING")) != NULL)
		query(qs, q);

	memset(&b, 0, sizeof(b));
	sb_printf(&b, "Status: 200 OK\r\nContent-Type: text/plain\r\n\r\n");
	sb_printf(&b, "pid=%ld\nppid=%ld\nmode=%s\nserved=%lu\n",
	    (long)getpid(), (long)getppid(),
	    kfw_extension(k) ? "extension" : "classic", served);
	if (kfw_extension(k))
		sb_printf(&b, "cookie=%llu\n",
		    (unsigned long long)kfw_cookie(k));
	if (q->spawn)
		sb_printf(&b, "child=%ld\n", spawnchild(fd));
	if (q->info)
		info(&b, st);
	if (q->echo) {
		/* Last, so that a body holding newlines is still parsable. */
		sb_add(&b, "stdin=", 6);
		sb_add(&b, req->in, req->insz);
		sb_add(&b, "\n", 1);
	}
	if (kfw_req_write(fd, req, b.p, b.len) == -1 ||
	    kfw_req_end(fd, req, 0) == -1)
		warn("answer");
	free(b.p);
}

/* Bytes on the channel behind the library's back; errors don't matter. */
static void
chanwrite(const struct kfw *k, const void *p, size_t len)
{
	if (kfw_channel(k) != -1)
		send(kfw_channel(k), p, len, MSG_NOSIGNAL);
}

/* Returns 1 if the connection was finished normally, else 0. */
static int
serve(struct kfw *k, int fd, const struct start *st)
{
	struct kfw_req	 req;
	struct query	 q;
	uint64_t	 bad;
	int		 rc, keep;

	q.after = AFTER_FINISH;
	while ((rc = kfw_req_read(fd, &req)) == 1) {
		answer(k, fd, &req, st, &q);
		keep = req.keep_conn;
		kfw_req_free(&req);
		if (q.after != AFTER_FINISH || !keep)
			break;
	}
	if (rc == -1)
		warn("kfw_req_read");
	switch (q.after) {
	case AFTER_FINISH:
	case AFTER_EXIT:
		if (kfw_finish(k, fd) == -1)
			warn("kfw_finish");
		if (q.after == AFTER_EXIT)
			exit(q.code);
		return 1;
	case AFTER_WRONGCOOKIE:
		close(fd);
		bad = kfw_cookie(k) + 1;
		chanwrite(k, &bad, sizeof(bad));
		break;
	case AFTER_GARBAGE:
		close(fd);
		chanwrite(k, "xyz", 3);
		break;
	case AFTER_CLOSECHAN:
		close(fd);
		if (kfw_channel(k) != -1)
			close(kfw_channel(k));
		sleep_forever();
	case AFTER_NOCOOKIE:
		close(fd);
		break;
	}
	return 0;
}

int
main(int argc, char *argv[])
{
	static struct start st;
	struct opts	 o;
	struct kfw	*k;
	sigset_t	 set;
	long		 done = 0;
	int		 fd;

	record_fds(&st);
	record_signals(&st);
	record_creds(&st);
	record_root(&st);
	record_nofile(&st);
	st.env = getenv("FCGI_LISTENSOCK_DESCRIPTORS");

	options(argc, argv, &o, &st);
	if (o.ignoreterm && signal(SIGTERM, SIG_IGN) == SIG_ERR)
		err(1, "signal");
	if (o.startlog != NULL)
		startlog(o.startlog, 0);
	if (o.startclock != NULL)
		startlog(o.startclock, 1);
	if (o.exitatstart != -1)
		exit(o.exitatstart);

	if ((k = kfw_open()) == NULL)
		err(1, "kfw_open");
	if (o.nograce) {
		/* Undo the library's deferral: SIGTERM kills at once. */
		if (signal(SIGTERM, SIG_DFL) == SIG_ERR)
			err(1, "signal");
		sigemptyset(&set);
		sigaddset(&set, SIGTERM);
		if (sigprocmask(SIG_UNBLOCK, &set, NULL) == -1)
			err(1, "sigprocmask");
	}
	while ((fd = kfw_accept(k)) != -1) {
		done += serve(k, fd, &st);
		if (o.maxreq != 0 && done >= o.maxreq)
			exit(0);
	}
	if (errno != 0)
		err(1, "kfw_accept");
	kfw_close(k);
	return 0;
}
