# kfcgi: FastCGI process manager.  GNU make.

PREFIX	?= /usr/local
DESTDIR	?=
SBINDIR	 = $(PREFIX)/sbin
BINDIR	 = $(PREFIX)/bin
LIBDIR	 = $(PREFIX)/lib
INCDIR	 = $(PREFIX)/include
MANDIR	 = $(PREFIX)/share/man
PCDIR	 = $(LIBDIR)/pkgconfig

CC	?= cc
CFLAGS	?= -O2 -g
CFLAGS	+= -std=c11 -D_GNU_SOURCE -Wall -Wextra -Wmissing-prototypes \
	   -Wstrict-prototypes -Wshadow -Wpointer-arith
ifdef WERROR
CFLAGS	+= -Werror
endif
# SANITIZE=1 builds the daemon, the library and the example worker with
# AddressSanitizer and UBSan; the statically linked test worker cannot be.
ifdef SANITIZE
SANFLAGS = -fsanitize=address,undefined -fno-omit-frame-pointer \
	   -fno-sanitize-recover=undefined
endif

EVENT_CFLAGS != pkg-config --cflags libevent_core 2>/dev/null
EVENT_LIBS   != pkg-config --libs libevent_core 2>/dev/null || echo -levent_core

# The -r hot path on io_uring (src/uring.c) when liburing is there, else
# a stub and the libevent path alone; URING=no leaves it out regardless.
ifndef URING
URING	!= pkg-config --exists liburing 2>/dev/null && echo yes || echo no
endif
ifeq ($(URING),yes)
URING_SRC     = src/uring.c
URING_CFLAGS != pkg-config --cflags liburing
URING_LIBS   != pkg-config --libs liburing
FLOOR_CFLAGS  = -DFLOOR_URING $(URING_CFLAGS)
FLOOR_LIBS    = $(URING_LIBS)
else
URING_SRC     = src/uring_stub.c
endif

PROG	 = kfcgi
SRCS	 = src/main.c src/log.c src/sock.c src/priv.c src/daemon.c \
	   src/spawn.c src/guard.c src/signame.c src/fdpass.c src/cookie.c \
	   src/clock.c src/worker.c src/crash.c src/policy.c src/pool.c \
	   src/dispatch.c src/loop.c src/output.c src/notify.c src/pidfile.c \
	   src/http.c src/status.c src/statusfmt.c src/poolstats.c \
	   src/qdepth.c src/idle.c src/elastic.c src/epool.c src/spawnq.c \
	   $(URING_SRC)
HDRS	 = src/kfcgi.h src/log.h src/worker.h src/crash.h src/pool.h \
	   src/dispatch.h src/output.h src/http.h src/stats.h src/status.h \
	   src/qdepth.h src/idle.h src/elastic.h src/epool.h src/uring.h \
	   src/spawnq.h
OBJS	 = $(SRCS:.c=.o)

LIB	 = lib/libkfcgi_worker.a
LIBSRCS	 = lib/kfcgi_worker.c lib/kfcgi_request.c
LIBOBJS	 = $(LIBSRCS:.c=.o)

EXAMPLE	 = examples/hello examples/hello-static
LOADPROG = kfcgi-load
TESTBINS = tests/testworker tests/libfcgi-worker tests/unit tests/unit-status \
	   tests/elastic_unit tests/probe tests/minipool
BENCHBINS = bench/floor bench/spawn64

all: $(PROG) $(LIB) $(EXAMPLE) $(LOADPROG)

$(PROG): $(OBJS)
	$(CC) $(CFLAGS) $(SANFLAGS) $(LDFLAGS) -o $@ $(OBJS) $(EVENT_LIBS) \
	    $(URING_LIBS) -lpthread

src/%.o: src/%.c $(HDRS)
	$(CC) $(CFLAGS) $(SANFLAGS) $(EVENT_CFLAGS) $(URING_CFLAGS) -c -o $@ $<

lib/%.o: lib/%.c lib/kfcgi_worker.h
	$(CC) $(CFLAGS) $(SANFLAGS) -c -o $@ $<

$(LIB): $(LIBOBJS)
	rm -f $@
	$(AR) rcs $@ $(LIBOBJS)

$(LOADPROG): tools/kfcgi-load.c
	$(CC) $(CFLAGS) $(SANFLAGS) $(LDFLAGS) -o $@ tools/kfcgi-load.c

examples/hello: examples/hello.c $(LIB)
	$(CC) $(CFLAGS) $(SANFLAGS) -Ilib -o $@ examples/hello.c $(LIB)

# The example, static so that it runs in a jail with no libraries in it
# (README, "Use it with nginx"); without sanitizers, as the test worker.
examples/hello-static: examples/hello.c lib/kfcgi_worker.c \
    lib/kfcgi_request.c lib/kfcgi_worker.h
	$(CC) $(CFLAGS) -Ilib -static -o $@ examples/hello.c \
	    lib/kfcgi_worker.c lib/kfcgi_request.c

# The test worker is static so that it runs inside an empty jail.  Its
# library objects are built apart, without sanitizers.
tests/testworker: tests/testworker.c lib/kfcgi_worker.c lib/kfcgi_request.c \
    lib/kfcgi_worker.h
	$(CC) $(CFLAGS) -Ilib -static -o $@ tests/testworker.c \
	    lib/kfcgi_worker.c lib/kfcgi_request.c

tests/libfcgi-worker: tests/libfcgi-worker.c
	$(CC) $(CFLAGS) -o $@ tests/libfcgi-worker.c -lfcgi

# The pure pieces, without processes: state machine, policies, channel.
UNITSRCS = src/crash.c src/policy.c src/worker.c src/fdpass.c \
	   src/cookie.c src/signame.c src/log.c src/spawnq.c
tests/unit: tests/unit.c tests/check.h $(UNITSRCS) $(HDRS)
	$(CC) $(CFLAGS) $(SANFLAGS) $(EVENT_CFLAGS) -Isrc -o $@ tests/unit.c \
	    $(UNITSRCS) -lpthread

tests/unit-status: tests/unit-status.c tests/check.h src/http.c src/statusfmt.c \
    $(HDRS)
	$(CC) $(CFLAGS) $(SANFLAGS) -Isrc -o $@ tests/unit-status.c \
	    src/http.c src/statusfmt.c src/signame.c

tests/elastic_unit: tests/elastic_unit.c tests/check.h src/elastic.c src/elastic.h
	$(CC) $(CFLAGS) $(SANFLAGS) -Isrc -o $@ tests/elastic_unit.c \
	    src/elastic.c

# Tries the queue depth and idle probes on real processes (test_probe.py).
tests/probe: tests/probe.c src/qdepth.c src/idle.c src/qdepth.h src/idle.h
	$(CC) $(CFLAGS) $(SANFLAGS) -Isrc -o $@ tests/probe.c src/qdepth.c \
	    src/idle.c

# A small elastic pool wired from the three (test_probe.py), not kfcgi.
tests/minipool: tests/minipool.c src/qdepth.c src/idle.c src/elastic.c \
    src/qdepth.h src/idle.h src/elastic.h
	$(CC) $(CFLAGS) $(SANFLAGS) -Isrc -o $@ tests/minipool.c \
	    src/qdepth.c src/idle.c src/elastic.c

check: all $(TESTBINS)
	./tests/unit
	./tests/unit-status
	./tests/elastic_unit
	sh tests/run-pytest.sh

# Not a test: measures, prints a table and writes BENCHMARKS.md.  Build
# without SANITIZE.  See bench/run.sh for knobs that shorten it.
bench/floor: bench/floor.c
	$(CC) $(CFLAGS) $(FLOOR_CFLAGS) $(LDFLAGS) -o $@ bench/floor.c \
	    $(FLOOR_LIBS)

bench/spawn64: bench/spawn64.c
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ bench/spawn64.c -lpthread

bench: all tests/testworker tests/libfcgi-worker $(BENCHBINS)
	sh bench/run.sh --write

.PHONY: bench

# Not a test either: fuzz the status listener's HTTP parser with
# libFuzzer for FUZZTIME seconds (clang; libclang-rt-14-dev on Debian).
FUZZCC	?= clang
FUZZTIME ?= 60
tests/fuzz_http: tests/fuzz_http.c src/http.c src/http.h
	$(FUZZCC) -std=c11 -D_GNU_SOURCE -g -O1 \
	    -fsanitize=fuzzer,address,undefined \
	    -fno-sanitize-recover=undefined -Isrc -o $@ tests/fuzz_http.c \
	    src/http.c

fuzz: tests/fuzz_http
	mkdir -p tests/fuzz-corpus
	./tests/fuzz_http -max_total_time=$(FUZZTIME) -max_len=9000 \
	    tests/fuzz-corpus tests/fuzz-seeds

.PHONY: fuzz

lint:
	mandoc -Tlint -Wwarning man/kfcgi.8 man/kfcgi-load.1 \
	    lib/kfcgi_worker.3

install: all
	install -d $(DESTDIR)$(SBINDIR) $(DESTDIR)$(MANDIR)/man8 \
	    $(DESTDIR)$(MANDIR)/man3 $(DESTDIR)$(LIBDIR) $(DESTDIR)$(INCDIR) \
	    $(DESTDIR)$(PCDIR) $(DESTDIR)$(BINDIR) $(DESTDIR)$(MANDIR)/man1
	install -m 0755 $(PROG) $(DESTDIR)$(SBINDIR)/$(PROG)
	install -m 0755 $(LOADPROG) $(DESTDIR)$(BINDIR)/$(LOADPROG)
	install -m 0644 man/kfcgi-load.1 $(DESTDIR)$(MANDIR)/man1/kfcgi-load.1
	install -m 0644 man/kfcgi.8 $(DESTDIR)$(MANDIR)/man8/kfcgi.8
	install -m 0644 lib/kfcgi_worker.3 $(DESTDIR)$(MANDIR)/man3/kfcgi_worker.3
	install -m 0644 $(LIB) $(DESTDIR)$(LIBDIR)/libkfcgi_worker.a
	install -m 0644 lib/kfcgi_worker.h $(DESTDIR)$(INCDIR)/kfcgi_worker.h
	sed -e 's|@PREFIX@|$(PREFIX)|g' -e 's|@LIBDIR@|$(LIBDIR)|g' \
	    -e 's|@INCDIR@|$(INCDIR)|g' lib/kfcgi-worker.pc.in \
	    > $(DESTDIR)$(PCDIR)/kfcgi-worker.pc
	chmod 0644 $(DESTDIR)$(PCDIR)/kfcgi-worker.pc

clean:
	rm -f $(PROG) $(OBJS) src/uring.o src/uring_stub.o $(LIB) $(LIBOBJS) \
	    $(EXAMPLE) $(TESTBINS) \
	    tests/fuzz_http $(LOADPROG) $(BENCHBINS)
	rm -rf tests/__pycache__ .pytest_cache

.PHONY: all check lint install clean
