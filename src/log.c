/* log.c: the one logging API: stderr, the journal or syslog. */
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
#include <sys/stat.h>

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

#include "log.h"

static int	 log_syslog;	/* syslog has been opened */
static int	 log_tostderr = 1;
static int	 log_journal;	/* stderr is systemd's journal */
static int	 log_verbose;
static void	(*log_fatal_hook)(void);

static void	 log_vmsg(int, const char *, const char *, va_list)
		    __attribute__((__format__(printf, 3, 0)));

/*
 * systemd names the stream it gave us as stderr in $JOURNAL_STREAM,
 * "DEVICE:INODE".  The variable is inherited by processes whose stderr
 * is something else, hence the check; the workers do not get it, their
 * stderr being a pipe to us.
 */
static int
log_stderr_is_journal(void)
{
	const char		*js = getenv("JOURNAL_STREAM");
	unsigned long long	 dev, ino;
	struct stat		 st;
	char			 extra;

	if (js == NULL)
		return 0;
	unsetenv("JOURNAL_STREAM");
	if (sscanf(js, "%llu:%llu%c", &dev, &ino, &extra) != 2 ||
	    fstat(STDERR_FILENO, &st) == -1)
		return 0;
	return (unsigned long long)st.st_dev == dev &&
	    (unsigned long long)st.st_ino == ino;
}

/*
 * Open syslog now, while /dev/log is still reachable: LOG_NDELAY
 * connects at once, so the jail needs no /dev of its own.  If the
 * connection breaks later (the syslog daemon restarted and made a new
 * /dev/log), the C library reconnects by path, which inside the jail
 * works only if the jail has a /dev/log of its own; the manual says so.
 */
void
log_open(int tostderr, int verbose)
{
	log_journal = log_stderr_is_journal();
	openlog("kfcgi", LOG_PID | LOG_NDELAY, LOG_DAEMON);
	log_syslog = 1;
	log_tostderr = tostderr;
	log_verbose = verbose;
}

/* Something to do before fatal() exits; NULL for nothing. */
void
log_onfatal(void (*hook)(void))
{
	log_fatal_hook = hook;
}

static void __attribute__((__noreturn__))
log_exit(void)
{
	if (log_fatal_hook != NULL)
		log_fatal_hook();
	exit(1);
}

void
log_stderr(int on)
{
	log_tostderr = on;
}

static void
log_vmsg(int pri, const char *reason, const char *fmt, va_list ap)
{
	char	 msg[2048];

	vsnprintf(msg, sizeof(msg), fmt, ap);
	if (log_tostderr && log_journal) {
		/* Once, with the level as sd-daemon(3) prefixes it. */
		fprintf(stderr, "<%d>%s%s%s\n", pri, msg,
		    reason != NULL ? ": " : "", reason != NULL ? reason : "");
		fflush(stderr);
		return;
	}
	if (log_tostderr) {
		if (reason != NULL)
			fprintf(stderr, "kfcgi: %s: %s\n", msg, reason);
		else
			fprintf(stderr, "kfcgi: %s\n", msg);
		fflush(stderr);
	}
	if (!log_syslog)
		return;
	if (reason != NULL)
		syslog(pri, "%s: %s", msg, reason);
	else
		syslog(pri, "%s", msg);
}

/* Warn with the reason taken from errno, as warn(3) does. */
void
log_warn(const char *fmt, ...)
{
	va_list	 ap;
	int	 saved = errno;

	va_start(ap, fmt);
	log_vmsg(LOG_ERR, strerror(saved), fmt, ap);
	va_end(ap);
	errno = saved;
}

void
log_warnx(const char *fmt, ...)
{
	va_list	 ap;

	va_start(ap, fmt);
	log_vmsg(LOG_ERR, NULL, fmt, ap);
	va_end(ap);
}

void
log_info(const char *fmt, ...)
{
	va_list	 ap;

	va_start(ap, fmt);
	log_vmsg(LOG_INFO, NULL, fmt, ap);
	va_end(ap);
}

void
log_debug(const char *fmt, ...)
{
	va_list	 ap;

	if (!log_verbose)
		return;
	va_start(ap, fmt);
	log_vmsg(LOG_DEBUG, NULL, fmt, ap);
	va_end(ap);
}

void
fatal(const char *fmt, ...)
{
	va_list	 ap;
	int	 saved = errno;

	va_start(ap, fmt);
	log_vmsg(LOG_CRIT, strerror(saved), fmt, ap);
	va_end(ap);
	log_exit();
}

void
fatalx(const char *fmt, ...)
{
	va_list	 ap;

	va_start(ap, fmt);
	log_vmsg(LOG_CRIT, NULL, fmt, ap);
	va_end(ap);
	log_exit();
}
