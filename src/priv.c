/* priv.c: users, the jail, dropping privileges, descriptor limits. */
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

#include <elf.h>
#include <errno.h>
#include <fcntl.h>
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
 * The program interpreter named in a native ELF file's PT_INTERP (the
 * dynamic loader), into buf; 0 if there is none or it cannot be told.
 */
static int
priv_elf_interp(int fd, char *buf, size_t size)
{
	Elf64_Ehdr	 eh;
	Elf64_Phdr	 ph;
	ssize_t		 n;
	int		 i;

	if (pread(fd, &eh, sizeof(eh), 0) != sizeof(eh) ||
	    memcmp(eh.e_ident, ELFMAG, SELFMAG) != 0 ||
	    eh.e_ident[EI_CLASS] != ELFCLASS64 ||
	    eh.e_phentsize != sizeof(ph))
		return 0;
	for (i = 0; i < eh.e_phnum; i++) {
		if (pread(fd, &ph, sizeof(ph), (off_t)(eh.e_phoff +
		    (Elf64_Off)i * sizeof(ph))) != sizeof(ph))
			return 0;
		if (ph.p_type != PT_INTERP)
			continue;
		if (ph.p_filesz == 0 || ph.p_filesz > size)
			return 0;
		n = pread(fd, buf, ph.p_filesz, (off_t)ph.p_offset);
		if (n != (ssize_t)ph.p_filesz || buf[n - 1] != '\0')
			return 0;
		return 1;
	}
	return 0;
}

/* The interpreter of a "#!" script, into buf; 0 if there is none. */
static int
priv_script_interp(int fd, char *buf, size_t size)
{
	ssize_t	 n;
	size_t	 len;

	if ((n = pread(fd, buf, size - 1, 0)) < 3 || buf[0] != '#' ||
	    buf[1] != '!')
		return 0;
	buf[n] = '\0';
	len = strspn(buf + 2, " \t");
	memmove(buf, buf + 2 + len, (size_t)n - 1 - len);
	buf[strcspn(buf, " \t\n")] = '\0';
	return buf[0] != '\0';
}

/*
 * exec(2) fails with ENOENT when the program's loader or interpreter is
 * missing, although the program is there: name it.  Programs we may not
 * read are let be; exec will tell.
 */
static void
priv_check_interp(const char *prog)
{
	char	 interp[256];
	int	 fd, elf = 0, script = 0;

	if ((fd = open(prog, O_RDONLY | O_CLOEXEC)) == -1)
		return;
	if (!(elf = priv_elf_interp(fd, interp, sizeof(interp))))
		script = priv_script_interp(fd, interp, sizeof(interp));
	close(fd);
	if ((elf || script) && access(interp, F_OK) == -1 && errno == ENOENT)
		fatalx("program: %s: its %s %s is missing in the jail (%s)",
		    prog, elf ? "loader" : "interpreter", interp, elf ?
		    "link it statically or copy the loader and libraries" :
		    "copy it and what it needs into the jail");
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
	priv_check_interp(prog);
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
