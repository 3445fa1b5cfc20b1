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
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kfcgi.h"
#include "log.h"
#include "pool.h"
#include "status.h"

#define DEFAULT_SOCKPATH	"/var/www/run/httpd.sock"
#define DEFAULT_JAIL		"/var/www"
#define DEFAULT_WORKERS		3
#define DEFAULT_WAITTIME	300
#define FD_RESERVE		64	/* manager's own descriptors */

static void __attribute__((__noreturn__))
usage(void)
{
	fprintf(stderr, "usage: kfcgi [-drv] [-l backlog] [-n workers] "
	    "[-N maxworkers] [-p chroot] [-S statusaddr]\n"
	    "             [-s sockpath] [-u sockuser] [-U procuser] "
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
	long	 lo = c->varpool ? 0 : 1;

	if (!nset)
		c->nworkers = DEFAULT_WORKERS;
	else if (c->nworkers < lo)
		badusage("-n: %d: out of range (%ld to %d)", c->nworkers, lo,
		    KFCGI_MAXWORKERS);
	if (!maxset)
		c->maxworkers = c->nworkers > 0 ? 2 * c->nworkers : 1;
	if (c->maxworkers > KFCGI_MAXWORKERS)
		c->maxworkers = KFCGI_MAXWORKERS;
	if (c->maxworkers < c->nworkers)
		badusage("-N: %d: below -n %d", c->maxworkers, c->nworkers);
	if (!backset)
		c->backlog = 2 * (c->varpool ? c->maxworkers : c->nworkers);
	if (!sock_path_fits(c->sockpath))
		badusage("-s: %s: longer than a socket path may be", c->sockpath);
	if (c->statusaddr == NULL)
		return;
	if (!sock_path_fits(c->statusaddr))
		badusage("-S: %s: longer than a socket path may be",
		    c->statusaddr);
	if (strcmp(c->statusaddr, c->sockpath) == 0)
		badusage("-S: %s: the same as -s", c->statusaddr);
}

static void
parse(struct config *c, int argc, char *argv[])
{
	int	 ch, nset = 0, maxset = 0, backset = 0, waitset = 0;
	const char *sockuser = NULL, *procuser = NULL;

	memset(c, 0, sizeof(*c));
	c->jail = DEFAULT_JAIL;
	c->sockpath = DEFAULT_SOCKPATH;
	c->waittime = DEFAULT_WAITTIME;
	c->statusfd = -1;
	/*
	 * "+": options end at prog, whose own options are its business.
	 * ":": we word the errors ourselves.
	 */
	while ((ch = getopt(argc, argv, "+:drvl:n:N:p:S:s:u:U:w:")) != -1) {
		switch (ch) {
		case 'd':
			c->foreground = 1;
			break;
		case 'r':
			c->varpool = 1;
			break;
		case 'v':
			c->verbose = 1;
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
			waitset = 1;
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
	    (c->statusaddr != NULL && *c->statusaddr == '\0'))
		badusage("empty path");
	if (sockuser != NULL)
		lookup(&c->sockuser, 'u', sockuser);
	if (procuser != NULL)
		lookup(&c->procuser, 'U', procuser);
	derive(c, nset, maxset, backset);
	if (!c->varpool && (maxset || waitset))
		fprintf(stderr, "kfcgi: -%c: has no effect without -r\n",
		    maxset ? 'N' : 'w');
}

/*
 * Descriptors 0-2 must exist before anything else is opened, or the
 * socket could land on one of them; anything else inherited stays out of
 * the workers' way.
 */
static void
sanitise_fds(void)
{
	int	 fd;

	for (fd = 0; fd < 3; fd++)
		if (fcntl(fd, F_GETFD) == -1 &&
		    open("/dev/null", O_RDWR) == -1)
			exit(1);
	if (close_range(3, ~0U, CLOSE_RANGE_CLOEXEC) == -1)
		for (fd = 3; fd < 1024; fd++)
			(void)fcntl(fd, F_SETFD, FD_CLOEXEC);
}

int
main(int argc, char *argv[])
{
	struct config	 conf;
	int		 listenfd, nullfd;

	sanitise_fds();
	parse(&conf, argc, argv);
	priv_check_caller(&conf);
	if (conf.varpool)
		priv_raise_nofile(conf.maxworkers + FD_RESERVE);
	listenfd = sock_listen(&conf);
	if (conf.varpool &&
	    fcntl(listenfd, F_SETFL, fcntl(listenfd, F_GETFL) | O_NONBLOCK)
	    == -1)
		fatal("socket: %s: non-blocking", conf.sockpath);
	if (conf.statusaddr != NULL)
		conf.statusfd = sock_open(conf.statusaddr, STATUS_BACKLOG,
		    &conf.sockuser);
	nullfd = devnull_open();
	log_open(1, conf.verbose);
	if (!conf.foreground)
		daemon_start();
	priv_jail(conf.jail);
	priv_drop(&conf.procuser);
	priv_check_prog(conf.argv[0]);
	pool_run(&conf, listenfd, nullfd);
	return 0;
}
