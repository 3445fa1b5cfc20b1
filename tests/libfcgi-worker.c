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
 * A query of "sleep=MS" makes it take MS milliseconds over the request,
 * however many signals come meanwhile, and say "slept=MS" (a slow
 * request for the tests, which also shows its parameters arrived).
 * With --ignore-term it ignores SIGTERM (libfcgi 2.4.2 catches SIGTERM
 * and SIGUSR1 alike, finishing the request), leaving SIGUSR1 the only
 * graceful signal.
 */

#include <errno.h>
#include <err.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <fcgiapp.h>

static long
slow(const FCGX_Request *req)
{
	struct timespec	 ts;
	const char	*qs;
	long		 ms;

	qs = FCGX_GetParam("QUERY_STRING", req->envp);
	if (qs == NULL || strncmp(qs, "sleep=", 6) != 0)
		return 0;
	ms = strtol(qs + 6, NULL, 10);
	if (ms <= 0 || ms > 60000)
		return 0;
	ts.tv_sec = ms / 1000;
	ts.tv_nsec = (ms % 1000) * 1000000;
	while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
		continue;
	return ms;
}

int
main(int argc, char *argv[])
{
	FCGX_Request	 req;
	long		 ms;

	if (FCGX_Init() != 0)
		errx(1, "FCGX_Init failed");
	if (argc > 1 && strcmp(argv[1], "--ignore-term") == 0 &&
	    signal(SIGTERM, SIG_IGN) == SIG_ERR)
		err(1, "signal");
	if (FCGX_InitRequest(&req, 0, 0) != 0)
		errx(1, "FCGX_InitRequest failed");
	while (FCGX_Accept_r(&req) >= 0) {
		ms = slow(&req);
		FCGX_FPrintF(req.out,
		    "Content-Type: text/plain\r\n\r\nlibfcgi pid=%ld",
		    (long)getpid());
		if (ms > 0)
			FCGX_FPrintF(req.out, " slept=%ld", ms);
		FCGX_FPrintF(req.out, "\n");
		FCGX_Finish_r(&req);
	}
	return 0;
}
