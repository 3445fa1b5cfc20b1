/* Listening sockets: -s parsing, safe Unix sockets, TCP, socket activation. */
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

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kfcgi.h"
#include "log.h"

/* The socket is created 0660: umask at bind time leaves no wider window. */
#define SOCK_UMASK	0117
#define SOCK_HOSTMAX	256
#define SD_LISTEN_FDS_START	3	/* systemd's first passed descriptor */

/* Directories are only ever used as anchors for *at() calls and fchdir. */
#ifdef O_PATH
#define DIR_OPEN	(O_PATH | O_DIRECTORY | O_CLOEXEC)
#else
#define DIR_OPEN	(O_RDONLY | O_DIRECTORY | O_CLOEXEC)
#endif

/* An -s value taken apart: a Unix path, or a TCP host and port. */
struct sockspec {
	const char	*path;			/* Unix socket, NULL for TCP */
	char		 host[SOCK_HOSTMAX];	/* TCP, "" for all addresses */
	char		 port[8];
	int		 v6;			/* written [IPV6]:PORT */
};

/*
 * A socket found in use may belong to a manager that was just killed and
 * whose workers are going away: look again over about a second before
 * giving up.  Start-up only, before the event loop runs.
 */
static const int sock_retry_ms[] = { 20, 40, 80, 160, 320, 400 };

static const char *
spec_port(struct sockspec *ss, const char *p)
{
	char	*end;
	long	 val;

	if (!isdigit((unsigned char)*p))
		return "bad port";
	errno = 0;
	val = strtol(p, &end, 10);
	if (*end != '\0' || errno == ERANGE || val < 1 || val > 65535)
		return "bad port";
	snprintf(ss->port, sizeof(ss->port), "%ld", val);
	return NULL;
}

static const char *
spec_unix(struct sockspec *ss, const char *path)
{
	struct sockaddr_un	 sun;
	const char		*base;
	size_t			 len = strlen(path);

	if (len == 0)
		return "empty path";
	if (len >= sizeof(sun.sun_path))
		return "longer than a socket path may be";
	base = strrchr(path, '/');
	base = base != NULL ? base + 1 : path;
	if (*base == '\0' || strcmp(base, ".") == 0 || strcmp(base, "..") == 0)
		return "does not end in a file name";
	ss->path = path;
	return NULL;
}

/* HOST:PORT, [IPV6]:PORT or *:PORT. */
static const char *
spec_tcp(struct sockspec *ss, const char *spec)
{
	const char	*host = spec, *colon;
	size_t		 hlen;

	if (*spec == '[') {
		host = spec + 1;
		if ((colon = strchr(host, ']')) == NULL)
			return "missing ] after the IPv6 address";
		hlen = colon - host;
		if (*++colon != ':')
			return "missing :PORT after ]";
		ss->v6 = 1;
	} else {
		colon = strrchr(spec, ':');
		hlen = colon - spec;
		if (memchr(spec, ':', hlen) != NULL)
			return "an IPv6 address goes in brackets, "
			    "as in [::1]:9000";
	}
	if (hlen == 0)
		return "missing host (*:PORT means all addresses)";
	if (hlen >= sizeof(ss->host))
		return "host name too long";
	memcpy(ss->host, host, hlen);
	ss->host[hlen] = '\0';
	if (!ss->v6 && strcmp(ss->host, "*") == 0)
		ss->host[0] = '\0';
	return spec_port(ss, colon + 1);
}

/* A colon makes a TCP address, unless the value starts with "unix:". */
static const char *
spec_parse(struct sockspec *ss, const char *spec)
{
	memset(ss, 0, sizeof(*ss));
	if (strncmp(spec, "unix:", 5) == 0)
		return spec_unix(ss, spec + 5);
	if (strchr(spec, ':') == NULL)
		return spec_unix(ss, spec);
	return spec_tcp(ss, spec);
}

/* Numeric addresses first; a name only if the host is not one. */
static const char *
spec_resolve(const struct sockspec *ss, struct addrinfo **res)
{
	static char	 why[SOCK_HOSTMAX + 64];
	struct addrinfo	 hints;
	int		 rc;

	memset(&hints, 0, sizeof(hints));
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_family = ss->v6 ? AF_INET6 : AF_UNSPEC;
	hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV;
	rc = getaddrinfo(ss->host, ss->port, &hints, res);
	if (rc == EAI_NONAME && !ss->v6) {
		hints.ai_flags = AI_NUMERICSERV;
		rc = getaddrinfo(ss->host, ss->port, &hints, res);
	}
	if (rc == 0)
		return NULL;
	if (ss->v6)
		return "not an IPv6 address";
	snprintf(why, sizeof(why), "cannot resolve %s: %s", ss->host,
	    rc == EAI_SYSTEM ? strerror(errno) : gai_strerror(rc));
	return why;
}

const char *
sock_spec_check(const char *spec)
{
	struct sockspec	 ss;
	struct addrinfo	*res;
	const char	*why;

	if ((why = spec_parse(&ss, spec)) != NULL)
		return why;
	if (ss.path != NULL || ss.host[0] == '\0')
		return NULL;
	if ((why = spec_resolve(&ss, &res)) != NULL)
		return why;
	freeaddrinfo(res);
	return NULL;
}

int
sock_is_tcp(const char *spec)
{
	struct sockspec	 ss;

	return spec_parse(&ss, spec) == NULL && ss.path == NULL;
}

/* Wait before the next probe of a socket in use; 0 once time is up. */
static int
sock_retry(const char *spec, unsigned int try)
{
	if (try >= sizeof(sock_retry_ms) / sizeof(sock_retry_ms[0]))
		return 0;
	log_debug("socket: %s: in use, looking again in %d ms", spec,
	    sock_retry_ms[try]);
	while (poll(NULL, 0, sock_retry_ms[try]) == -1 && errno == EINTR)
		continue;
	return 1;
}

/* ------------------------------------------------------------- TCP --- */

/* 0 and *fdp listening, or -1 with errno. v6only -1: leave as it is. */
static int
tcp_listen_at(const struct sockaddr *sa, socklen_t len, int v6only,
    int backlog, int *fdp)
{
	int	 fd, on = 1, serr;

	if ((fd = socket(sa->sa_family, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1)
		return -1;
	/*
	 * TCP_NODELAY on the listener is inherited by accepted connections
	 * (Linux, the BSDs), so it reaches classic workers that accept on
	 * their own: records written one by one are not held back by Nagle.
	 */
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on)) == -1 ||
	    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on)) == -1 ||
	    (v6only != -1 && setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY,
	    &v6only, sizeof(v6only)) == -1) ||
	    bind(fd, sa, len) == -1 || listen(fd, backlog) == -1) {
		serr = errno;
		close(fd);
		errno = serr;
		return -1;
	}
	*fdp = fd;
	return 0;
}

/* *:PORT: IPv6 and IPv4 on one socket, or IPv4 alone without IPv6. */
static int
tcp_listen_any(const struct sockspec *ss, int backlog, int *fdp)
{
	struct sockaddr_in6	 sin6;
	struct sockaddr_in	 sin;
	in_port_t		 port = htons((in_port_t)atoi(ss->port));

	memset(&sin6, 0, sizeof(sin6));
	sin6.sin6_family = AF_INET6;
	sin6.sin6_addr = in6addr_any;
	sin6.sin6_port = port;
	if (tcp_listen_at((struct sockaddr *)&sin6, sizeof(sin6), 0, backlog,
	    fdp) == 0)
		return 0;
	if (errno != EAFNOSUPPORT && errno != EADDRNOTAVAIL &&
	    errno != ENOPROTOOPT)
		return -1;
	log_debug("socket: *:%s: no IPv6, listening on IPv4 only", ss->port);
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_ANY);
	sin.sin_port = port;
	return tcp_listen_at((struct sockaddr *)&sin, sizeof(sin), -1, backlog,
	    fdp);
}

/* The first address the system can have; [::] means IPv6 only. */
static int
tcp_listen_addrs(const struct addrinfo *res, int backlog, int *fdp)
{
	const struct addrinfo	*ai;

	errno = EADDRNOTAVAIL;
	for (ai = res; ai != NULL; ai = ai->ai_next) {
		if (tcp_listen_at(ai->ai_addr, ai->ai_addrlen,
		    ai->ai_family == AF_INET6 ? 1 : -1, backlog, fdp) == 0)
			return 0;
		if (errno != EAFNOSUPPORT && errno != EADDRNOTAVAIL)
			return -1;
	}
	return -1;
}

static int
tcp_open(const char *spec, const struct sockspec *ss, int backlog)
{
	struct addrinfo	*res = NULL;
	const char	*why;
	unsigned int	 try;
	int		 fd, rc;

	if (ss->host[0] != '\0' && (why = spec_resolve(ss, &res)) != NULL)
		fatalx("socket: %s: %s", spec, why);
	for (try = 0;; try++) {
		rc = res == NULL ? tcp_listen_any(ss, backlog, &fd) :
		    tcp_listen_addrs(res, backlog, &fd);
		if (rc == 0)
			break;
		if (errno != EADDRINUSE)
			fatal("socket: %s", spec);
		if (!sock_retry(spec, try))
			fatalx("socket: %s: in use by another process", spec);
	}
	if (res != NULL)
		freeaddrinfo(res);
	log_debug("socket: %s: listening on TCP, backlog %d", spec, backlog);
	return fd;
}

/* ------------------------------------------------------------ Unix --- */

/*
 * Creating a Unix socket as root for another user (-u) must not let
 * anyone who can write a directory on the path have root change the
 * owner of some other file, as a path looked up again between bind()
 * and chown() would (swap a directory for a symlink, or the socket for
 * a hard link, in between).  So:
 *
 * - The socket's directory is opened once; from then on everything is
 *   done relative to that descriptor (or with it as working directory,
 *   for connect() and bind(), which take only paths).  Names are
 *   removed and stat'ed, never followed.
 * - If nobody but root (or we) can write that directory, no one can
 *   swap the socket's name under us: bind there, then fchownat() the
 *   name with AT_SYMLINK_NOFOLLOW relative to the directory.  If bind()
 *   itself was redirected elsewhere, the name is missing and we fail.
 *   The socket keeps its full path as its name (ss(8), sock_diag).
 * - If others can write it, bind inside a private 0700 directory made
 *   there (nobody else can enter it, let alone change its entries),
 *   set the owner there, listen, and move the socket into place with
 *   one rename that never replaces anything (RENAME_NOREPLACE, or
 *   link() where that is missing).  The kernel then names the socket by
 *   its file name alone.
 * - The mode needs no step of its own: the umask at bind() makes 0660.
 *
 * Without -u there is no ownership change and the socket is bound at
 * its path directly.  A stale socket is removed by name, after checking
 * that the name still refers to what was probed; removing a name never
 * changes the file it named, so a racer there can at worst have us
 * remove an entry it could have removed itself.
 */
struct unixsock {
	const char	*path;		/* as given */
	const char	*base;		/* its last component */
	char		 dir[PATH_MAX];	/* the rest */
	char		 tmp[32];	/* private directory, "" if none */
	int		 cwd;		/* working directory to go back to */
	int		 dfd;		/* the socket's directory */
	int		 tfd;		/* the private directory */
	int		 fd;		/* the socket */
	int		 placed;	/* moved to its final name */
};

enum probe { PROBE_ABSENT, PROBE_STALE, PROBE_INUSE };

/* Undo what is half done before dying; errno is kept for fatal(). */
static void
us_abort(struct unixsock *us)
{
	int	 serr = errno;

	if (us->tfd != -1 && !us->placed)
		(void)unlinkat(us->tfd, us->base, 0);
	if (us->tmp[0] != '\0')
		(void)unlinkat(us->dfd, us->tmp, AT_REMOVEDIR);
	if (us->cwd != -1)
		(void)fchdir(us->cwd);
	errno = serr;
}

static void
us_open(struct unixsock *us, const char *path)
{
	const char	*slash = strrchr(path, '/');
	size_t		 len;

	memset(us, 0, sizeof(*us));
	us->path = path;
	us->cwd = us->dfd = us->tfd = us->fd = -1;
	if (slash == NULL) {
		snprintf(us->dir, sizeof(us->dir), ".");
		us->base = path;
	} else {
		len = slash == path ? 1 : (size_t)(slash - path);
		if (len >= sizeof(us->dir))
			fatalx("socket: %s: path too long", path);
		memcpy(us->dir, path, len);
		us->dir[len] = '\0';
		us->base = slash + 1;
	}
	if ((us->cwd = open(".", DIR_OPEN)) == -1)
		fatal("socket: %s: working directory", path);
	if ((us->dfd = open(us->dir, DIR_OPEN)) == -1)
		fatal("socket: %s: directory %s", path, us->dir);
	if (fchdir(us->dfd) == -1)
		fatal("socket: %s: directory %s", path, us->dir);
}

static void
us_addr(struct sockaddr_un *sun, const char *name)
{
	memset(sun, 0, sizeof(*sun));
	sun->sun_family = AF_UNIX;
	/* Lengths were checked when -s was parsed. */
	strncpy(sun->sun_path, name, sizeof(sun->sun_path) - 1);
}

/*
 * What is at the socket's name (our working directory is its
 * directory).  The connect() does not block: a listener whose queue is
 * full says EAGAIN at once, and that means in use too.
 */
static enum probe
us_probe(struct unixsock *us, struct stat *st)
{
	struct sockaddr_un	 sun;
	int			 fd, rc, serr;

	if (fstatat(us->dfd, us->base, st, AT_SYMLINK_NOFOLLOW) == -1) {
		if (errno == ENOENT)
			return PROBE_ABSENT;
		fatal("socket: %s", us->path);
	}
	if (!S_ISSOCK(st->st_mode))
		fatalx("socket: %s: exists and is not a socket", us->path);
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK,
	    0)) == -1)
		fatal("socket: %s", us->path);
	us_addr(&sun, us->base);
	rc = connect(fd, (struct sockaddr *)&sun, sizeof(sun));
	serr = errno;
	close(fd);
	if (rc == 0 || serr == EAGAIN || serr == EINPROGRESS)
		return PROBE_INUSE;
	if (serr == ECONNREFUSED)
		return PROBE_STALE;
	if (serr == ENOENT)
		return PROBE_ABSENT;
	errno = serr;
	fatal("socket: %s: cannot probe", us->path);
}

/*
 * Never steal a live socket: if something accepts on the name, refuse.
 * A socket nobody listens on is stale and is removed; anything that is
 * not a socket is the operator's and is left alone.
 */
static void
us_clear(struct unixsock *us)
{
	struct stat	 st, now;
	unsigned int	 try, changed = 0;

	for (try = 0;;) {
		switch (us_probe(us, &st)) {
		case PROBE_ABSENT:
			return;
		case PROBE_INUSE:
			if (!sock_retry(us->path, try++))
				fatalx("socket: %s: in use by another process",
				    us->path);
			continue;
		case PROBE_STALE:
			break;
		}
		if (fstatat(us->dfd, us->base, &now, AT_SYMLINK_NOFOLLOW) ==
		    0 && now.st_dev == st.st_dev && now.st_ino == st.st_ino) {
			if (unlinkat(us->dfd, us->base, 0) == 0 ||
			    errno == ENOENT)
				break;
			fatal("socket: %s: cannot remove stale socket",
			    us->path);
		}
		if (++changed > 10)
			fatalx("socket: %s: keeps changing", us->path);
	}
	log_debug("socket: %s: removed stale socket", us->path);
}

/* Bind name (relative to the working directory) 0660, and listen. */
static void
us_bind(struct unixsock *us, const char *name, const struct user *owner,
    int dirfd, int backlog)
{
	struct sockaddr_un	 sun;
	mode_t			 omask;
	int			 rc;

	if ((us->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1) {
		us_abort(us);
		fatal("socket: %s", us->path);
	}
	us_addr(&sun, name);
	omask = umask(SOCK_UMASK);
	rc = bind(us->fd, (struct sockaddr *)&sun, sizeof(sun));
	umask(omask);
	if (rc == -1) {
		us_abort(us);
		fatal("socket: %s: bind", us->path);
	}
	if (owner != NULL && fchownat(dirfd, us->base, owner->uid,
	    owner->gid, AT_SYMLINK_NOFOLLOW) == -1) {
		us_abort(us);
		fatal("socket: %s: chown to %s", us->path, owner->name);
	}
	if (listen(us->fd, backlog) == -1) {
		us_abort(us);
		fatal("socket: %s: listen", us->path);
	}
}

/* Whether anyone but root or us may change entries of the directory. */
static int
us_shared(const struct unixsock *us)
{
	struct stat	 st;

	if (fstat(us->dfd, &st) == -1)
		fatal("socket: %s: directory %s", us->path, us->dir);
	return (st.st_uid != 0 && st.st_uid != geteuid()) ||
	    (st.st_mode & (S_IWGRP | S_IWOTH)) != 0;
}

static void
us_private_dir(struct unixsock *us)
{
	struct stat	 st;

	snprintf(us->tmp, sizeof(us->tmp), ".kfcgi-XXXXXX");
	if (mkdtemp(us->tmp) == NULL) {
		us->tmp[0] = '\0';
		us_abort(us);
		fatal("socket: %s: private directory in %s", us->path,
		    us->dir);
	}
	if ((us->tfd = openat(us->dfd, us->tmp, DIR_OPEN | O_NOFOLLOW)) ==
	    -1 || fstat(us->tfd, &st) == -1) {
		us_abort(us);
		fatal("socket: %s: private directory %s", us->path, us->tmp);
	}
	if (!S_ISDIR(st.st_mode) || st.st_uid != geteuid() ||
	    (st.st_mode & 077) != 0) {
		us_abort(us);
		fatalx("socket: %s: private directory %s was tampered with",
		    us->path, us->tmp);
	}
	if (fchdir(us->tfd) == -1) {
		us_abort(us);
		fatal("socket: %s: private directory %s", us->path, us->tmp);
	}
}

/* Into place, replacing nothing: whatever appeared meanwhile wins. */
static void
us_place(struct unixsock *us)
{
#ifdef RENAME_NOREPLACE
	if (renameat2(us->tfd, us->base, us->dfd, us->base,
	    RENAME_NOREPLACE) == 0) {
		us->placed = 1;
		return;
	}
	if (errno != EINVAL && errno != ENOSYS) {
		us_abort(us);
		fatal("socket: %s: cannot move into place", us->path);
	}
#endif
	if (linkat(us->tfd, us->base, us->dfd, us->base, 0) == -1) {
		us_abort(us);
		fatal("socket: %s: cannot move into place", us->path);
	}
	us->placed = 1;
	(void)unlinkat(us->tfd, us->base, 0);
}

static int
unix_open(const char *path, int backlog, const struct user *owner)
{
	struct unixsock	 us;

	us_open(&us, path);
	us_clear(&us);
	if (owner != NULL && us_shared(&us)) {
		us_private_dir(&us);
		us_bind(&us, us.base, owner, us.tfd, backlog);
		us_place(&us);
		log_debug("socket: %s: made in a private directory", path);
	} else {
		if (fchdir(us.cwd) == -1)
			fatal("socket: %s: working directory", path);
		us_bind(&us, path, owner, us.dfd, backlog);
	}
	if (fchdir(us.cwd) == -1)
		fatal("socket: %s: working directory", path);
	if (us.tmp[0] != '\0' && unlinkat(us.dfd, us.tmp, AT_REMOVEDIR) == -1)
		log_warn("socket: %s: cannot remove %s", path, us.tmp);
	if (us.tfd != -1)
		close(us.tfd);
	close(us.dfd);
	close(us.cwd);
	log_debug("socket: %s: listening, backlog %d", path, backlog);
	return us.fd;
}

/* ------------------------------------------------ socket activation --- */

static void
sock_describe(int fd, char *buf, size_t len)
{
	struct sockaddr_storage	 ss;
	struct sockaddr_un	*sun = (struct sockaddr_un *)&ss;
	struct sockaddr_in	*sin = (struct sockaddr_in *)&ss;
	struct sockaddr_in6	*sin6 = (struct sockaddr_in6 *)&ss;
	socklen_t		 slen = sizeof(ss);
	char			 host[INET6_ADDRSTRLEN];

	memset(&ss, 0, sizeof(ss));
	snprintf(buf, len, "an unnamed socket");
	if (getsockname(fd, (struct sockaddr *)&ss, &slen) == -1)
		return;
	if (ss.ss_family == AF_UNIX && sun->sun_path[0] != '\0')
		snprintf(buf, len, "unix:%.*s", (int)sizeof(sun->sun_path),
		    sun->sun_path);
	else if (ss.ss_family == AF_INET &&
	    inet_ntop(AF_INET, &sin->sin_addr, host, sizeof(host)) != NULL)
		snprintf(buf, len, "%s:%u", host, ntohs(sin->sin_port));
	else if (ss.ss_family == AF_INET6 &&
	    inet_ntop(AF_INET6, &sin6->sin6_addr, host, sizeof(host)) != NULL)
		snprintf(buf, len, "[%s]:%u", host, ntohs(sin6->sin6_port));
}

/* Descriptor 3 as systemd passes it: a listening stream socket. */
static int
sock_take_passed(const char *nfds)
{
	int		 fd = SD_LISTEN_FDS_START, type, on, fl;
	socklen_t	 len;
	char		 name[160];

	if (nfds == NULL || strcmp(nfds, "1") != 0)
		fatalx("socket activation: LISTEN_FDS=%s: exactly one socket "
		    "is supported", nfds != NULL ? nfds : "(unset)");
	len = sizeof(type);
	if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) == -1)
		fatal("socket activation: descriptor %d", fd);
	if (type != SOCK_STREAM)
		fatalx("socket activation: descriptor %d: not a stream socket",
		    fd);
	len = sizeof(on);
	if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &on, &len) == -1)
		fatal("socket activation: descriptor %d", fd);
	if (!on)
		fatalx("socket activation: descriptor %d: not listening", fd);
	/* Blocking, as a socket of our own would be; -r sets O_NONBLOCK. */
	if ((fl = fcntl(fd, F_GETFL)) == -1 ||
	    fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) == -1 ||
	    fcntl(fd, F_SETFD, FD_CLOEXEC) == -1)
		fatal("socket activation: descriptor %d", fd);
	sock_describe(fd, name, sizeof(name));
	log_info("socket: %s: passed by the service manager", name);
	return fd;
}

/*
 * systemd's protocol: LISTEN_PID names the process the sockets are for
 * (us, before any fork), LISTEN_FDS how many, from descriptor 3.  The
 * variables are removed either way, so that workers never see them.
 */
static int
sock_passed(const struct config *conf)
{
	const char	*pid = getenv("LISTEN_PID");
	char		*end;
	long		 val;
	int		 fd = -1;

	if (pid != NULL) {
		errno = 0;
		val = strtol(pid, &end, 10);
		if (*pid != '\0' && *end == '\0' && errno == 0 &&
		    val == (long)getpid())
			fd = sock_take_passed(getenv("LISTEN_FDS"));
		else
			log_debug("socket activation: LISTEN_PID=%s is not "
			    "for us", pid);
	}
	unsetenv("LISTEN_PID");
	unsetenv("LISTEN_FDS");
	unsetenv("LISTEN_FDNAMES");
	if (fd != -1 && conf->sockuser.name != NULL)
		log_warnx("socket activation: -u %s ignored: the service "
		    "manager made the socket", conf->sockuser.name);
	return fd;
}

/* ------------------------------------------------------------ public --- */

int
sock_open(const char *spec, int backlog, const struct user *owner)
{
	struct sockspec	 ss;
	const char	*why;

	if ((why = spec_parse(&ss, spec)) != NULL)
		fatalx("socket: %s: %s", spec, why);
	if (ss.path != NULL)
		return unix_open(ss.path, backlog, owner);
	if (owner != NULL)
		log_warnx("socket: %s: owner %s ignored for TCP", spec,
		    owner->name);
	return tcp_open(spec, &ss, backlog);
}

/* The FastCGI socket: passed by the service manager, or made for -s. */
int
sock_listen(const struct config *conf)
{
	int	 fd;

	if ((fd = sock_passed(conf)) != -1)
		return fd;
	return sock_open(conf->sockpath, conf->backlog,
	    conf->sockuser.name != NULL ? &conf->sockuser : NULL);
}
