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

#ifndef KFCGI_WORKER_H
#define KFCGI_WORKER_H

#include <stddef.h>
#include <stdint.h>

/*
 * Connection layer: where a worker gets its FastCGI connections from,
 * either accept(2) on descriptor 0 or the management channel of kfcgi(8).
 */
struct kfw;

struct kfw	*kfw_open(void);
int		 kfw_accept(struct kfw *);
int		 kfw_finish(struct kfw *, int);
int		 kfw_extension(const struct kfw *);
int		 kfw_channel(const struct kfw *);
uint64_t	 kfw_cookie(const struct kfw *);
void		 kfw_close(struct kfw *);

/*
 * Request layer: a minimal FastCGI 1.0 responder serving one request at
 * a time on a connection.
 */
#define KFW_PARAMS_MAX	(1024 * 1024)		/* bytes of FCGI_PARAMS */
#define KFW_STDIN_MAX	(16 * 1024 * 1024)	/* bytes of FCGI_STDIN */

struct	kfw_param {
	char		*key;	/* NUL-terminated */
	size_t		 keysz;	/* its length without the NUL */
	char		*val;	/* NUL-terminated */
	size_t		 valsz;	/* its length without the NUL */
};

struct	kfw_req {
	uint16_t	  id;		/* FastCGI request identifier */
	int		  keep_conn;	/* web server keeps the connection */
	struct kfw_param *params;	/* the FCGI_PARAMS pairs */
	size_t		  paramsz;	/* how many of them */
	char		 *in;		/* FCGI_STDIN, NUL-terminated */
	size_t		  insz;		/* its length without the NUL */
};

int		 kfw_req_read(int, struct kfw_req *);
const char	*kfw_req_param(const struct kfw_req *, const char *);
int		 kfw_req_write(int, const struct kfw_req *, const void *,
		    size_t);
int		 kfw_req_end(int, const struct kfw_req *, int);
void		 kfw_req_free(struct kfw_req *);

#endif /* !KFCGI_WORKER_H */
