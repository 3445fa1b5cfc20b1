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
/*
 * Unit tests for the daemon's pure pieces: crash-loop back-off and the
 * cookie channel (over a real socketpair).
 */
#include <sys/socket.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "kfcgi.h"
#include "check.h"

static void
test_backoff(void)
{
	unsigned int	 i;
	long		 prev = 0, ms;

	CHECK(backoff_delay_ms(0) == 0);
	CHECK(backoff_delay_ms(1) == 0);
	CHECK(backoff_delay_ms(2) == 100);
	CHECK(backoff_delay_ms(3) == 200);
	CHECK(backoff_delay_ms(4) == 400);
	for (i = 1; i < 100; i++) {
		ms = backoff_delay_ms(i);
		CHECK(ms >= prev);
		CHECK(ms <= 30000);
		prev = ms;
	}
	CHECK(backoff_delay_ms(100) == 30000);
	CHECK(backoff_delay_ms(~0U) == 30000);
}

/* The receiver gets the cookie and a working descriptor in one recvmsg. */
static void
test_fdpass_roundtrip(void)
{
	int		 sv[2], pp[2], got = -1;
	uint64_t	 cookie = 0x0123456789abcdefULL, back = 0;
	struct msghdr	 msg;
	struct iovec	 iov;
	union {
		struct cmsghdr	hdr;
		unsigned char	buf[CMSG_SPACE(sizeof(int))];
	}		 cbuf;
	struct cmsghdr	*cmsg;
	char		 c = 0;

	CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
	CHECK(pipe(pp) == 0);
	CHECK(fdpass_send(sv[0], cookie, pp[1]) == 0);
	memset(&msg, 0, sizeof(msg));
	iov.iov_base = &back;
	iov.iov_len = sizeof(back);
	msg.msg_iov = &iov;
	msg.msg_iovlen = 1;
	msg.msg_control = cbuf.buf;
	msg.msg_controllen = sizeof(cbuf.buf);
	CHECK(recvmsg(sv[1], &msg, 0) == sizeof(back));
	CHECK(back == cookie);
	cmsg = CMSG_FIRSTHDR(&msg);
	CHECK(cmsg != NULL && cmsg->cmsg_type == SCM_RIGHTS);
	if (cmsg != NULL)
		memcpy(&got, CMSG_DATA(cmsg), sizeof(got));
	CHECK(got >= 0 && write(got, "x", 1) == 1);
	CHECK(read(pp[0], &c, 1) == 1 && c == 'x');
	close(got);
	close(pp[0]);
	close(pp[1]);
	close(sv[0]);
	close(sv[1]);
}

static void
test_cookie_reads(void)
{
	int		 sv[2];
	uint64_t	 cookie = 42;
	unsigned char	 buf[8];
	size_t		 len = 0;

	CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);

	/* Nothing there yet: EAGAIN, never blocking. */
	CHECK(fdpass_read_cookie(sv[0], buf, &len) == -1 && errno == EAGAIN);

	/* A cookie in two pieces is put together. */
	CHECK(write(sv[1], &cookie, 3) == 3);
	CHECK(fdpass_read_cookie(sv[0], buf, &len) == 3 && len == 3);
	CHECK(write(sv[1], (char *)&cookie + 3, 5) == 5);
	CHECK(fdpass_read_cookie(sv[0], buf, &len) == 5 && len == 8);
	CHECK(memcmp(buf, &cookie, 8) == 0);

	/* More than a cookie is a protocol violation. */
	len = 0;
	CHECK(write(sv[1], "0123456789", 10) == 10);
	CHECK(fdpass_read_cookie(sv[0], buf, &len) == -1 && errno == EPROTO);

	/* A closed channel reads as EOF. */
	close(sv[1]);
	len = 0;
	while (fdpass_read_cookie(sv[0], buf, &len) > 0)
		len = 0;
	CHECK(fdpass_read_cookie(sv[0], buf, &len) == 0);

	/* Handing off to a worker that is gone fails without SIGPIPE. */
	CHECK(fdpass_send(sv[0], cookie, 1) == -1 && errno == EPIPE);
	close(sv[0]);
}

int
main(void)
{
	test_backoff();
	test_fdpass_roundtrip();
	test_cookie_reads();
	printf("unit: %d passed, %d failed\n", checks - failures, failures);
	return failures != 0;
}
