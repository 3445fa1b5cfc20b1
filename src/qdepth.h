/* qdepth.h: the listen queue depth of the listening socket. */
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
#ifndef QDEPTH_H
#define QDEPTH_H

struct qdepth;

/*
 * qdepth_open() prepares to read the queue of listening socket fd (Unix
 * or TCP); call it before the jail and the privilege drop.  It returns
 * NULL (errno set) where the depth cannot be read: other systems, other
 * kinds of sockets.  qdepth_read() stores the connections waiting to be
 * accepted in *len and the backlog limit in *max (either may be NULL)
 * and returns 0, or -1 (errno set).  It never blocks.
 */
struct qdepth	*qdepth_open(int);
int		 qdepth_read(struct qdepth *, int *, int *);
void		 qdepth_close(struct qdepth *);

#endif /* !QDEPTH_H */
