/* main.c: options, then set-up in a fixed order, then the event loop. */
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
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kfcgi.h"
#include "log.h"
#include "epool.h"
#include "status.h"

#define DEFAULT_SOCKPATH	"/var/www/run/httpd.sock"
#define DEFAULT_JAIL		"/var/www"
#define DEFAULT_WORKERS		3
#define DEFAULT_WAITTIME	300
#define DEFAULT_GRACE		5
#define FD_RESERVE		64	/* manager's own descriptors */
#define FD_PER_WORKER		1	/* its output pipe */
#define FD_PER_VARWORKER	3	/* and its channel and connection (-r) */

static void __attribute__((__noreturn__))
usage(void)
{
	fprintf(stderr, "usage: kfcgi [-derv] [-g grace] [-k signal] "
	    "[-l backlog] [-m maxrequests]\n"
	    "             [-n workers] [-N maxworkers] [-P pidfile] "
	    "[-p chroot] [-S statusaddr]\n"
	    "             [-s sockpath] [-t timeout] [-u sockuser] [-U procuser] "
	    "[-w waittime] prog [arg0 ...]\n");
	exit(1);
}

static void __attribute__((__noreturn__, __format__(printf, 1, 2)))
badusage(const char *fmt, ...)
{
	va_list	 ap;

	fputs("kfcgi: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	usage();
}

static int
number(int opt, const char *arg, long min, long max)
{
	char	*end;
	long	 val;

	errno = 0;
	val = strtol(arg, &end, 10);
	if (!isdigit((unsigned char)*arg) && *arg != '-')
		badusage("-%c: %s: not a number", opt, arg);
	if (*end != '\0')
		badusage("-%c: %s: not a number", opt, arg);
	if (errno == ERANGE || val < min || val > max)
		badusage("-%c: %s: out of range (%ld to %ld)", opt, arg,
		    min, max);
	return (int)val;
}

static void
lookup(struct user *u, int opt, const char *name)
{
	if (priv_lookup(u, name) == -1)
		badusage("-%c: %s: unknown user", opt, name);
}

/* Values that depend on others are settled once all are read. */
static void
derive(struct config *c, int nset, int maxset, int backset)
{
	long		 lo = c->varpool ? 0 : 1;
	const char	*why;

	if (!nset)
		c->nworkers = DEFAULT_WORKERS;
	else if (c->nworkers < lo)
		badusage("-n: %d: out of range (%ld to %d)", c->nworkers, lo,
		    KFCGI_MAXWORKERS);
	if (!maxset)
		c->maxworkers = c->nworkers > 0 ? 2 * c->nworkers : 1;
	if (c->maxworkers > KFCGI_MAXWORKERS)
		c->maxworkers = KFCGI_MAXWORKERS;
	if ((c->varpool || c->elastic) && c->maxworkers < c->nworkers)
		badusage("-N: %d: below -n %d", c->maxworkers, c->nworkers);
	if (!backset)
		c->backlog = 2 * (c->varpool || c->elastic ? c->maxworkers :
		    c->nworkers);
	if ((why = sock_spec_check(c->sockpath)) != NULL)
		badusage("-s: %s: %s", c->sockpath, why);
	if (c->sockuser.name != NULL && sock_is_tcp(c->sockpath))
		badusage("-u: %s: only for a Unix socket, %s is TCP",
		    c->sockuser.name, c->sockpath);
	if (c->statusaddr == NULL)
		return;
	if ((why = sock_spec_check(c->statusaddr)) != NULL)
		badusage("-S: %s: %s", c->statusaddr, why);
	if (strcmp(c->statusaddr, c->sockpath) == 0)
		badusage("-S: %s: the same as -s", c->statusaddr);
}

static void
parse(struct config *c, int argc, char *argv[])
{
	int	 ch, nset = 0, maxset = 0, backset = 0;
	int	 varonly = 0;
	const char *sockuser = NULL, *procuser = NULL;

	memset(c, 0, sizeof(*c));
	c->jail = DEFAULT_JAIL;
	c->sockpath = DEFAULT_SOCKPATH;
	c->waittime = DEFAULT_WAITTIME;
	c->grace = DEFAULT_GRACE;
	c->killsig = SIGTERM;
	c->statusfd = -1;
	/*
	 * "+": options end at prog, whose own options are its business.
	 * ":": we word the errors ourselves.
	 */
	while ((ch = getopt(argc, argv, "+:deg:k:l:m:n:N:P:p:rS:s:t:u:U:vw:")) != -1) {
		switch (ch) {
		case 'd':
			c->foreground = 1;
			break;
		case 'e':
			c->elastic = 1;
			break;
		case 'r':
			c->varpool = 1;
			break;
		case 'v':
			c->verbose = 1;
			break;
		case 'g':
			c->grace = number(ch, optarg, 0, KFCGI_MAXSECS);
			break;
		case 'k':
			if ((c->killsig = signame_parse(optarg)) == -1)
				badusage("-k: %s: not a signal", optarg);
			break;
		case 'm':
			c->maxreqs = number(ch, optarg, 0, INT_MAX);
			varonly = varonly ? varonly : 'm';
			break;
		case 't':
			c->timeout = number(ch, optarg, 0, KFCGI_MAXSECS);
			varonly = varonly ? varonly : 't';
			break;
		case 'l':
			c->backlog = number(ch, optarg, 1, INT_MAX);
			backset = 1;
			break;
		case 'n':
			c->nworkers = number(ch, optarg, 0, KFCGI_MAXWORKERS);
			nset = 1;
			break;
		case 'N':
			c->maxworkers = number(ch, optarg, 1,
			    KFCGI_MAXWORKERS);
			maxset = 1;
			varonly = varonly ? varonly : 'N';
			break;
		case 'P':
			c->pidfile = optarg;
			break;
		case 'p':
			c->jail = optarg;
			break;
		case 'S':
			c->statusaddr = optarg;
			break;
		case 's':
			c->sockpath = optarg;
			break;
		case 'u':
			sockuser = optarg;
			break;
		case 'U':
			procuser = optarg;
			break;
		case 'w':
			c->waittime = number(ch, optarg, 0, KFCGI_MAXWAIT);
			varonly = varonly ? varonly : 'w';
			break;
		case ':':
			badusage("-%c: missing argument", optopt);
		default:
			badusage("-%c: unknown option", optopt);
		}
	}
	if (optind >= argc)
		badusage("no program given");
	c->argv = argv + optind;
	if (*c->jail == '\0' || *c->sockpath == '\0' || *c->argv[0] == '\0' ||
	    (c->pidfile != NULL && *c->pidfile == '\0') ||
	    (c->statusaddr != NULL && *c->statusaddr == '\0'))
		badusage("empty path");
	if (sockuser != NULL)
		lookup(&c->sockuser, 'u', sockuser);
	if (procuser != NULL)
		lookup(&c->procuser, 'U', procuser);
	derive(c, nset, maxset, backset);
	if (c->varpool && c->elastic)
		badusage("-e and -r: one pool or the other");
	if (!c->varpool && varonly && !(c->elastic && strchr("Nw", varonly)))
		fprintf(stderr, "kfcgi: -%c: has no effect without -r%s\n",
		    varonly, strchr("Nw", varonly) != NULL ? " or -e" : "");
}

/* Descriptors systemd passes (LISTEN_FDS), meant for this process. */
static int
activated_fds(void)
{
	const char	*pid = getenv("LISTEN_PID"), *fds = getenv("LISTEN_FDS");
	char		*end;
	long		 n;

	if (pid == NULL || fds == NULL ||
	    strtol(pid, &end, 10) != (long)getpid() || *end != '\0')
		return 0;
	n = strtol(fds, &end, 10);
	return *end == '\0' && n > 0 && n < 64 ? (int)n : 0;
}

/*
 * Descriptors 0-2 must exist before anything else is opened, or the
 * socket could land on one of them.  Anything else inherited is closed
 * (a caller's pipe must see EOF when it should), but for sockets passed
 * by socket activation, which stay, close-on-exec.
 */
static void
sanitise_fds(void)
{
	int	 fd, keep = activated_fds(), top;

	for (fd = 0; fd < 3; fd++)
		if (fcntl(fd, F_GETFD) == -1 &&
		    open("/dev/null", O_RDWR) == -1)
			exit(1);
	for (fd = 3; fd < 3 + keep; fd++)
		(void)fcntl(fd, F_SETFD, FD_CLOEXEC);
	if (close_range(3 + keep, ~0U, 0) == -1) {
		top = (int)sysconf(_SC_OPEN_MAX);
		for (fd = 3 + keep; fd < top; fd++)
			(void)close(fd);
	}
}

int
main(int argc, char *argv[])
{
	static struct config conf;
	struct rlimit	 orig, raised;
	int		 listenfd, nullfd;

	sanitise_fds();
	parse(&conf, argc, argv);
	priv_check_caller(&conf);
	if (conf.pidfile != NULL)
		pidfile_open(conf.pidfile);
	/* Two generations serve at once while a reload settles. */
	priv_raise_nofile(2 * (conf.varpool ? FD_PER_VARWORKER *
	    conf.maxworkers : FD_PER_WORKER * (conf.elastic ?
	    conf.maxworkers : conf.nworkers)) + FD_RESERVE,
	    &orig, &raised);
	listenfd = sock_listen(&conf);
	if (conf.varpool &&
	    fcntl(listenfd, F_SETFL, fcntl(listenfd, F_GETFL) | O_NONBLOCK)
	    == -1)
		fatal("socket: %s: non-blocking", conf.sockpath);
	if (conf.statusaddr != NULL)
		conf.statusfd = sock_open(conf.statusaddr, STATUS_BACKLOG,
		    &conf.sockuser);
	epool_open(listenfd, conf.elastic);
	nullfd = devnull_open();
	log_open(1, conf.verbose);
	notify_open();
	if (!conf.foreground)
		daemon_start();
	priv_jail(conf.jail);
	priv_drop(&conf.procuser);
	priv_check_prog(conf.argv[0]);
	pidfile_write();
	loop_run(&conf, listenfd, nullfd, &orig, &raised);
	return 0;
}
