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
 */

#include <err.h>
#include <unistd.h>

#include <fcgiapp.h>

int
main(void)
{
	FCGX_Request	 req;

	if (FCGX_Init() != 0)
		errx(1, "FCGX_Init failed");
	if (FCGX_InitRequest(&req, 0, 0) != 0)
		errx(1, "FCGX_InitRequest failed");
	while (FCGX_Accept_r(&req) >= 0) {
		FCGX_FPrintF(req.out,
		    "Content-Type: text/plain\r\n\r\nlibfcgi pid=%ld\n",
		    (long)getpid());
		FCGX_Finish_r(&req);
	}
	return 0;
}
