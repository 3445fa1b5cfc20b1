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
 * A classic worker built on the FastCGI development kit's libfcgi, as
 * packaged by Debian: proof that kfcgi serves workers it did not write.
 * It accepts on descriptor 0, the listening socket kfcgi hands it.
 * A QUERY_STRING of "sleep=MS" makes it sleep that long before answering
 * (through signals), to show which signal lets a request finish.
 * With --ignore-term it ignores SIGTERM (libfcgi 2.4.2 catches SIGTERM
 * and SIGUSR1 alike, finishing the request), leaving SIGUSR1 the only
 * graceful signal.
 */

#include <err.h>
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <fcgiapp.h>

static void	msleep(long);

static void
msleep(long ms)
{
	struct timespec	 ts;

	ts.tv_sec = ms / 1000;
	ts.tv_nsec = (ms % 1000) * 1000000L;
	while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
		continue;
}

int
main(int argc, char *argv[])
{
	FCGX_Request	 req;
	const char	*qs;

	if (FCGX_Init() != 0)
		errx(1, "FCGX_Init failed");
	if (argc > 1 && strcmp(argv[1], "--ignore-term") == 0 &&
	    signal(SIGTERM, SIG_IGN) == SIG_ERR)
		err(1, "signal");
	if (FCGX_InitRequest(&req, 0, 0) != 0)
		errx(1, "FCGX_InitRequest failed");
	while (FCGX_Accept_r(&req) >= 0) {
		qs = FCGX_GetParam("QUERY_STRING", req.envp);
		if (qs != NULL && strncmp(qs, "sleep=", 6) == 0)
			msleep(strtol(qs + 6, NULL, 10));
		FCGX_FPrintF(req.out,
		    "Content-Type: text/plain\r\n\r\nlibfcgi pid=%ld\n",
		    (long)getpid());
		FCGX_Finish_r(&req);
	}
	return 0;
}
