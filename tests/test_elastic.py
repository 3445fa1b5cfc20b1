"""The elastic pool (-e): classic workers, grown from the listen queue's
depth, released when idle with the retire signal; the queue's figures in
every pool.  Real workers: ours, Debian's libfcgi, php-cgi; one test goes
through a real nginx."""

import os
import re
import socket
import threading
import time

import pytest

from conftest import alive, busy_workers, wait_for
from fcgiclient import Sampler, parallel, spawn
from loaddriver import Load
from test_faults import libfcgi_check, libfcgi_pid, php_page
from test_thirdparty import PHP_CGI, Nginx, need_file


def slow_burst(kfcgi, n, ms=1000, **kw):
    """n concurrent requests of ms each; (answers, seconds to the last)."""
    t0 = time.monotonic()
    out = parallel(n, lambda i: kfcgi.request(query="sleep=%d" % ms,
                                              timeout=20, **kw))
    return out, time.monotonic() - t0


@pytest.mark.parametrize("args,says", [
    (["-e", "-r"], "one pool or the other"),
    (["-e", "-n", "4", "-N", "2"], "below -n"),
    (["-e", "-n", "0"], "-n"),
], ids=["e-and-r", "N-below-n", "n0"])
def test_bad_combinations(kfcgi, args, says):
    r = kfcgi.run(args, timeout=15)
    assert r.rc == 1, r
    lines = [l for l in r.stderr.splitlines() if l.startswith("kfcgi:")]
    assert len(lines) == 1 and says in lines[0], r


def test_options_of_r_only_warn(kfcgi):
    kfcgi.start(["-e", "-t", "5"])
    assert "-t: has no effect without -r" in kfcgi.log()
    assert "-N: has no effect" not in kfcgi.log()


@pytest.mark.time_limit(60)
def test_grows_from_the_queue(kfcgi):
    """-e -n 2 -N 32, 24 one-second requests at once: the pool grows by
    the connections waiting, all are answered in about a second; the log
    (-v) says how many waited."""
    kfcgi.start(["-e", "-v", "-n", "2", "-N", "32", "-w", "60", "-l", "128"])
    kfcgi.wait_workers(2)
    s = Sampler(kfcgi.workers, interval=0.01, max_seconds=10)
    try:
        out, took = slow_burst(kfcgi, 24)
    finally:
        s.stop()
    assert all(not isinstance(o, BaseException) and o.status == 200
               for o in out), out
    assert s.max_len() >= 20, "pool grew to %d only" % s.max_len()
    assert took < 1.9, "24 one-second requests took %.2f s" % took
    assert re.search(r"elastic: \d+ connections waiting", kfcgi.log())
    # nothing waits any more: no growth beyond what was needed
    time.sleep(0.5)
    assert len(kfcgi.workers()) <= 32


@pytest.mark.time_limit(60)
def test_no_growth_without_a_queue(kfcgi):
    """One client at a time never makes connections wait: -n stays."""
    kfcgi.start(["-e", "-n", "2", "-N", "16", "-l", "64"])
    kfcgi.wait_workers(2)
    s = Sampler(kfcgi.workers, interval=0.01, max_seconds=10)
    try:
        for i in range(40):
            assert kfcgi.request(query="sleep=5").status == 200
    finally:
        s.stop()
    assert s.max_len() <= 3, "grew to %d for one client" % s.max_len()


WORKERS = ["testworker", "libfcgi", "php-cgi"]


@pytest.mark.time_limit(90)
@pytest.mark.parametrize("which", WORKERS)
def test_grow_and_release_lose_nothing(kfcgi, bins, sockdir, which):
    """A burst grows the pool; a trickle follows for -w and more: the pool
    goes back to -n, oldest idle workers first, and through the whole
    cycle not one request fails (libfcgi retired with -k USR1)."""
    args = ["-e", "-n", "2", "-N", "24", "-w", "1", "-l", "128"]
    env, prog, params = None, bins.testworker, None
    check, pid_of, query = None, None, "echo&sleep=%d"
    if which == "libfcgi":
        prog = bins.need("libfcgi_worker")
        args += ["-k", "USR1"]
        check, pid_of, query = libfcgi_check, libfcgi_pid, "sleep=%d"
    elif which == "php-cgi":
        need_file(PHP_CGI, "php-cgi")
        prog = PHP_CGI
        env = {"PHP_FCGI_CHILDREN": "0", "PHP_FCGI_MAX_REQUESTS": "0"}
        params, check, pid_of = php_page(sockdir)
        query = "sleep=%d"
    kfcgi.start(args, prog=prog, env=env)
    first = set(kfcgi.wait_workers(2))
    kw = {} if check is None else {"check": check, "pid_of": pid_of}
    burst = Load(kfcgi.sock, clients=16, seconds=1.5, query=query % 300,
                 params=params, **kw)
    burst.start()
    grown = wait_for(lambda: len(kfcgi.workers()) >= 8, 3)
    burst._stop.wait(1.6)
    peak = len(kfcgi.workers())
    trickle = Load(kfcgi.sock, clients=1, seconds=4.0, query=query % 20,
                   params=params, **kw)
    trickle.start()
    back = wait_for(lambda: len(kfcgi.workers()) == 2, 6)
    for load in (burst, trickle):
        for t in load._threads:
            t.join(15)
    print(which, burst.figures(), trickle.figures(), "peak", peak)
    assert grown, "the burst did not grow the pool: %d" % peak
    assert burst.failed == 0 and trickle.failed == 0, \
        (burst.report(), trickle.report(), kfcgi.log()[-3000:])
    assert trickle.answered > 20
    assert back, "not back to -n: %r\n%s" % (kfcgi.workers(),
                                             kfcgi.log()[-2000:])
    # the first workers, the oldest, were released first.  A worker of
    # libkfcgi_worker waits with EPOLLEXCLUSIVE, and the kernel wakes the
    # first registered of the idle ones: the oldest takes every request
    # of the one-client trickle, is seldom idle, and may stay.
    hot = trickle.pids() if which == "testworker" else set()
    assert not (first - hot) & set(kfcgi.workers()), \
        "the oldest idle workers were kept"
    assert kfcgi.running()


def test_release_spares_a_busy_worker(kfcgi):
    """A worker busy with a long request when the pool shrinks is not the
    one released, however old: it answers."""
    kfcgi.start(["-e", "-n", "1", "-N", "8", "-w", "1", "-l", "64"])
    oldest = kfcgi.wait_workers(1)[0]
    long_job = threading.Thread(target=lambda: results.append(
        kfcgi.request(query="sleep=4000", timeout=20)))
    results = []
    long_job.start()
    # The long request is in the oldest worker's hands before the burst.
    assert wait_for(lambda: busy_workers(kfcgi) == [oldest], 10), \
        (busy_workers(kfcgi), oldest)
    out, _ = slow_burst(kfcgi, 8, ms=300)
    assert all(o.status == 200 for o in out)
    assert wait_for(lambda: len(kfcgi.workers()) == 1, 8), kfcgi.workers()
    long_job.join(20)
    assert results and results[0].status == 200, results
    assert int(results[0].kv["pid"]) == oldest
    assert alive(oldest) and kfcgi.workers() == [oldest]


@pytest.mark.time_limit(90)
@pytest.mark.parametrize("which", ["libfcgi", "php-cgi"])
def test_nginx_in_front(kfcgi, bins, sockdir, which):
    """nginx -> kfcgi -e -> Debian's libfcgi worker or php-cgi: a burst
    through nginx grows the pool, every answer is the application's."""
    args = ["-e", "-n", "1", "-N", "16", "-w", "1", "-l", "128"]
    d = os.path.join(sockdir, "nginx")
    os.mkdir(d)
    if which == "php-cgi":
        need_file(PHP_CGI, "php-cgi")
        params, _, _ = php_page(sockdir)
        kfcgi.start(args, prog=PHP_CGI, env={"PHP_FCGI_CHILDREN": "0"})
        path, want = "/t.php?sleep=400", b"php ok "
        web = Nginx(d, kfcgi.sock)
        web.extra = ("            root %s;\n            fastcgi_param "
                     "SCRIPT_FILENAME $document_root$fastcgi_script_name;\n"
                     "            fastcgi_param REDIRECT_STATUS 200;\n"
                     % params["DOCUMENT_ROOT"])
    else:
        kfcgi.start(args + ["-k", "USR1"], prog=bins.need("libfcgi_worker"))
        path, want = "/x?sleep=400", b"libfcgi pid="
        web = Nginx(d, kfcgi.sock)
    kfcgi.wait_workers(1)
    web.start()
    s = Sampler(kfcgi.workers, interval=0.01, max_seconds=20)
    try:
        got = parallel(10, lambda i: web.get(path, timeout=20))
    finally:
        s.stop()
        web.stop()
    for g in got:
        assert not isinstance(g, BaseException), g
        status, body = g
        assert status == 200 and body.startswith(want), (status, body)
    assert s.max_len() >= 4, "the pool did not grow: %d" % s.max_len()
    assert kfcgi.stop() == 0


def status_doc(path):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(5)
    s.connect(path)
    s.sendall(b"GET /status HTTP/1.0\r\n\r\n")
    data = b""
    while True:
        b = s.recv(65536)
        if not b:
            break
        data += b
    s.close()
    import json
    return json.loads(data.split(b"\r\n\r\n", 1)[1])


@pytest.mark.time_limit(30)
def test_queue_at_backlog_is_not_full(kfcgi, sockdir):
    """Linux queues one connection beyond the backlog before refusing: a
    queue holding exactly -l connections is not counted full; one more
    is."""
    st = os.path.join(sockdir, "st.sock")
    kfcgi.start(["-n", "1", "-l", "4", "-S", st])
    kfcgi.wait_workers(1)
    job = spawn(kfcgi.request, query="sleep=4000", timeout=20)
    assert wait_for(lambda: busy_workers(kfcgi), 5), "the worker never " \
        "took the slow request"
    assert wait_for(lambda: status_doc(st)["queue"] == 0, 5)
    socks = []
    try:
        for _ in range(4):
            c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            c.connect(kfcgi.sock)
            socks.append(c)
        assert wait_for(lambda: status_doc(st)["queue"] == 4, 5), \
            status_doc(st)
        time.sleep(0.6)                 # several 250 ms samples
        doc = status_doc(st)
        assert doc["queue"] == 4 and doc["queue_full"] == 0, doc
        assert "listen queue full" not in kfcgi.log()
        c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        c.connect(kfcgi.sock)           # the one beyond the backlog
        socks.append(c)
        doc = wait_for(lambda: (lambda d: d if d["queue_full"] >= 1
                                else None)(status_doc(st)), 5)
        assert doc and doc["queue"] == 5, (status_doc(st), kfcgi.log())
    finally:
        for c in socks:
            c.close()
    assert job.result(20).status == 200


@pytest.mark.time_limit(60)
def test_queue_depth_and_full_queue_seen(kfcgi, sockdir):
    """A fixed pool of 1 with a queue of 4: connections waiting show in the
    status listener, and a full queue is logged once, naming -l, however
    many times it is seen full."""
    st = os.path.join(sockdir, "st.sock")
    kfcgi.start(["-n", "1", "-l", "4", "-S", st])
    kfcgi.wait_workers(1)
    socks = []

    def fill():
        """Connect until the kernel refuses: the queue holds all it can.
        Again at every look, for the queue must stay full, not be full
        once: it is sampled (every 250 ms), and until the worker has run,
        start()'s probe connection may hold a place that it then frees."""
        while True:
            c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            c.setblocking(False)
            try:
                c.connect(kfcgi.sock)
            except BlockingIOError:
                c.close()
                return
            socks.append(c)

    def seen(cond):
        fill()
        doc = status_doc(st)
        return doc if cond(doc) else None

    try:
        # one busy, the rest waiting in the queue, as many as it holds
        doc = wait_for(lambda: seen(lambda d: d["queue"] is not None and
                                    d["queue"] >= 4), 10)
        assert doc, status_doc(st)
        assert doc["queue_max"] >= doc["queue"], doc
        # seen full at three samples at least, logged at the first only
        doc = wait_for(lambda: seen(lambda d: d["queue_full"] >= 3), 10)
        assert doc, (status_doc(st), kfcgi.log())
        assert kfcgi.log().count("listen queue full") == 1, kfcgi.log()
        assert "-l" in kfcgi.log()
    finally:
        for c in socks:
            c.close()
    time.sleep(0.6)
    assert kfcgi.log().count("listen queue full") == 1
