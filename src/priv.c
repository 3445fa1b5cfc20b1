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
#include <sys/resource.h>
#include <sys/stat.h>

#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <string.h>
#include <unistd.h>

#include "kfcgi.h"
#include "log.h"

/* Resolve a user name while /etc/passwd is still in sight. */
int
priv_lookup(struct user *u, const char *name)
{
	struct passwd	*pw;

	errno = 0;
	if ((pw = getpwnam(name)) == NULL)
		return -1;
	u->name = name;
	u->uid = pw->pw_uid;
	u->gid = pw->pw_gid;
	return 0;
}

/*
 * The jail and the users need root.  With -p / and no users nothing is
 * privileged, so an ordinary user may run us (handy for development).
 */
void
priv_check_caller(const struct config *conf)
{
	if (geteuid() == 0)
		return;
	if (strcmp(conf->jail, "/") == 0 && conf->sockuser.name == NULL &&
	    conf->procuser.name == NULL)
		return;
	fatalx("privileges: must be root for a jail other than / "
	    "or for -u and -U");
}

void
priv_jail(const char *jail)
{
	if (strcmp(jail, "/") != 0 && chroot(jail) == -1)
		fatal("chroot: %s", jail);
	if (chdir("/") == -1)
		fatal("chdir: %s", jail);
	log_debug("jail: %s: entered", jail);
}

/* Drop to the user of -U for good: groups, then gid, then uid. */
void
priv_drop(const struct user *u)
{
	uid_t	 r, e, s;

	if (u->name == NULL) {
		if (geteuid() == 0)
			log_warnx("privileges: running workers as root "
			    "(no -U given)");
		return;
	}
	if (setgroups(1, &u->gid) == -1)
		fatal("privileges: setgroups for %s", u->name);
	if (setresgid(u->gid, u->gid, u->gid) == -1)
		fatal("privileges: setresgid for %s", u->name);
	if (setresuid(u->uid, u->uid, u->uid) == -1)
		fatal("privileges: setresuid for %s", u->name);
	if (getresuid(&r, &e, &s) == -1 || r != u->uid || e != u->uid ||
	    s != u->uid)
		fatalx("privileges: %s: uid did not change", u->name);
	if (u->uid != 0 && (setuid(0) != -1 || seteuid(0) != -1))
		fatalx("privileges: %s: root could be regained", u->name);
	log_debug("privileges: dropped to %s (uid %u, gid %u)", u->name,
	    (unsigned)u->uid, (unsigned)u->gid);
}

/*
 * Catch the common mistakes before detaching, where the operator still
 * sees the message.  Exec failure itself is caught at the first spawn.
 */
void
priv_check_prog(const char *prog)
{
	struct stat	 st;

	if (stat(prog, &st) == -1)
		fatal("program: %s (looked up in the jail)", prog);
	if (!S_ISREG(st.st_mode))
		fatalx("program: %s: not a regular file", prog);
	if (access(prog, X_OK) == -1)
		fatal("program: %s", prog);
}

/*
 * Each worker costs the manager descriptors (its channel, the connection
 * it holds), so make room before the limit can bite under load.  The
 * limits before and after go to *orig and *raised; returns through them
 * equal values when nothing had to change.
 */
void
priv_raise_nofile(int need, struct rlimit *orig, struct rlimit *raised)
{
	struct rlimit	 rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == -1)
		fatal("limits: getrlimit");
	*orig = *raised = rl;
	if (rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur >= (rlim_t)need)
		return;
	if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < (rlim_t)need) {
		log_warnx("limits: %d descriptors wanted, hard limit is %llu",
		    need, (unsigned long long)rl.rlim_max);
		rl.rlim_cur = rl.rlim_max;
	} else
		rl.rlim_cur = need;
	if (setrlimit(RLIMIT_NOFILE, &rl) == -1)
		fatal("limits: setrlimit to %d descriptors", need);
	*raised = rl;
}
