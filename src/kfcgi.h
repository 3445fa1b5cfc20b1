/* kfcgi.h: the configuration and the small modules the daemon is made of. */
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
#ifndef KFCGI_H
#define KFCGI_H

#include <sys/resource.h>
#include <sys/types.h>

#include <stdint.h>

/* Callback parameters that libevent passes and we have no use for. */
#define UNUSED	__attribute__((__unused__))

#define KFCGI_MAXWORKERS	8192	/* upper bound of -n and -N */
#define KFCGI_MAXWAIT		86400	/* upper bound of -w, seconds */
#define KFCGI_MAXSECS		86400	/* upper bound of -g and -t */
#define KFCGI_CHANNEL_FD	3	/* worker's end of the channel (-r) */

/* A user named by -u or -U, resolved before the jail hides passwd. */
struct user {
	const char	*name;
	uid_t		 uid;
	gid_t		 gid;
};

/* Everything the command line decides. */
struct config {
	int		 foreground;	/* -d */
	int		 varpool;	/* -r */
	int		 elastic;	/* -e */
	int		 verbose;	/* -v */
	int		 backlog;	/* -l, derived if not given */
	int		 nworkers;	/* -n */
	int		 maxworkers;	/* -N */
	const char	*jail;		/* -p */
	const char	*pidfile;	/* -P, NULL if not given */
	const char	*sockpath;	/* -s: Unix path or TCP address */
	struct user	 sockuser;	/* -u, name NULL if not given */
	struct user	 procuser;	/* -U, name NULL if not given */
	int		 waittime;	/* -w, seconds */
	int		 grace;		/* -g, seconds */
	int		 killsig;	/* -k */
	int		 timeout;	/* -t, seconds, 0: none */
	int		 maxreqs;	/* -m, 0: never recycle */
	const char	*statusaddr;	/* -S, NULL: no status listener */
	int		 statusfd;	/* its listening socket, or -1 */
	char		*const *argv;	/* prog and its arguments */
};

/* What every worker is started with; prepared once. */
struct spawner {
	char	*const *argv;
	char	**envp;
	int	 fd0;		/* listening socket, or /dev/null (-r) */
	int	 outfd;		/* stdout and stderr, -1 for the manager's */
	pid_t	 pgid;		/* the pool's process group, 0: none */
	int	 nofile_restore; /* give workers the limit we started with */
	struct rlimit nofile_orig, nofile_raised;
};

/* spawn.c */
struct spawn_job;
void	 spawn_init(struct spawner *, char *const *, int, int, int);
int	 spawn_prepare(const struct spawner *, struct spawn_job *, int, int);
void	 spawn_run(struct spawn_job *);
void	 spawn_release(struct spawn_job *);
void	 spawn_limit(const struct spawner *, int);

/* loop.c */
void	 loop_run(const struct config *, int, int, const struct rlimit *,
	    const struct rlimit *);

/* guard.c */
pid_t	 guard_start(int);

/* signame.c */
int	 signame_parse(const char *);
const char *signame(int);

/* sock.c */
int	 sock_listen(const struct config *);
int	 sock_open(const char *, int, const struct user *);
const char *sock_spec_check(const char *);
int	 sock_is_tcp(const char *);

/* priv.c */
int	 priv_lookup(struct user *, const char *);
void	 priv_check_caller(const struct config *);
void	 priv_jail(const char *);
void	 priv_drop(const struct user *);
void	 priv_check_prog(const char *);
void	 priv_raise_nofile(int, struct rlimit *, struct rlimit *);

/* daemon.c */
void	 daemon_start(void);
void	 daemon_ready(int);
int	 devnull_open(void);

/* pidfile.c */
void	 pidfile_open(const char *);
void	 pidfile_write(void);
void	 pidfile_remove(void);

/* notify.c */
void	 notify_open(void);
void	 notify_send(const char *, ...)
	    __attribute__((__format__(printf, 1, 2)));
void	 notify_ready(void (*)(char *, size_t, void *), void *);
void	 notify_reloading(void);
void	 notify_stopping(void);

/* fdpass.c */
int	 fdpass_send(int, uint64_t, int);
ssize_t	 fdpass_read_cookie(int, unsigned char *, size_t *);
ssize_t	 fdpass_take_cookie(unsigned char *, size_t *, const unsigned char *,
	    size_t);
int	 fdpass_unread(int);

/* cookie.c */
uint64_t cookie_next(void);

#endif /* !KFCGI_H */
