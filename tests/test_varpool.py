"""kfcgi variable pool (issue 3): -r, the FastCGI Extensions for Management
Control; growth, saturation, release, isolation, scale, signals.

Workers speak the extension through the worker library: kfcgi accepts,
hands each connection to one worker over its channel (descriptor 3), and
the worker is busy until it writes the cookie back.  A busy worker is found
from /proc: it holds a socket descriptor besides 0-2 and its channel."""

import collections
import os
import re
import signal
import subprocess
import time

import pytest

from conftest import (alive, fds, info, listen_queue, proc_status, user,
                      wait_for)
from conftest import busy_workers as _busy
from fcgiclient import (FcgiError, FcgiTimeout, Hammer, Sampler, parallel,
                        parse_list, spawn)

needs_root = pytest.mark.needs_root
GRACE = 5
CHANNEL = 3


def busy(k):
    return _busy(k, channel_fd=CHANNEL)


def ok(r):
    assert not isinstance(r, BaseException), repr(r)
    assert r.status == 200, r
    assert "pid" in r.kv, r
    return int(r.kv["pid"])


def inflight(k, n, sleep_ms):
    """n slow requests in background threads, and wait until kfcgi has
    handed every one of them to a worker."""
    before = set(busy(k))
    jobs = [spawn(k.request, query="sleep=%d" % sleep_ms, timeout=30)
            for _ in range(n)]

    def reached():
        now = set(busy(k))
        # (a worker busy before may have let go of its connection since)
        return len(now - before) >= n or len(now) >= len(before) + n
    if not wait_for(reached, 10):
        pytest.fail("in-flight requests never reached workers: busy=%r "
                    "workers=%r outcomes=%r\nlog:\n%s" % (
                        busy(k), k.workers(),
                        [j.outcome(0) if j.done() else "running"
                         for j in jobs], k.log()[-3000:]))
    return jobs


def finish(jobs, exclude=()):
    pids = []
    for j in jobs:
        p = ok(j.outcome(40))
        assert p not in exclude, "served by the misbehaving worker %d" % p
        pids.append(p)
    return pids


def pool_goes_on(k, exclude=(), n=6):
    outs = parallel(n, lambda i: k.request(query="echo",
                                           stdin=("tok%d" % i).encode()))
    for i, o in enumerate(outs):
        p = ok(o)
        assert o.kv.get("stdin") == "tok%d" % i, o
        assert p not in exclude, "served by the misbehaving worker %d" % p
    assert k.running()


def log_names(k, pid):
    text = k.log()
    assert str(pid) in text, "no log line names worker %d:\n%s" % (
        pid, text[-3000:])


# ------------------------------------------------------------- serving ---

def test_answered_in_r_mode(kfcgi):
    kfcgi.start(["-r"])
    ws = kfcgi.wait_workers(3)            # -n defaults to 3
    r = kfcgi.request(query="")
    assert ok(r) in ws
    assert r.kv["mode"] == "extension", r
    assert int(r.kv["ppid"]) == kfcgi.pid
    body = b"y" * 200000 + b"end"
    r = kfcgi.request(query="echo", stdin=body)
    assert r.status == 200, r
    assert r.kv.get("stdin") == body.decode(), r.body[-200:]
    counts = {}
    for i in range(30):
        r = kfcgi.request(query="echo", stdin=b"n%d" % i)
        p = ok(r)
        assert r.kv["stdin"] == "n%d" % i
        # a worker serves connection after connection: its own count
        # goes up by one each time it is handed one
        served = int(r.kv["served"])
        assert served > counts.get(p, 0), (p, served, counts)
        counts[p] = served
    assert max(counts.values()) >= 10, \
        "workers are not reused across connections: %r" % counts


def test_example_hello_extension(kfcgi, bins):
    kfcgi.start(["-r", "-n", "2", "-N", "4"], prog=bins.need("hello"))
    kfcgi.wait_workers(2)
    outs = parallel(6, lambda i: kfcgi.request())
    for o in outs:
        assert not isinstance(o, Exception), o
        assert o.status == 200, o
        assert b"Hello from kfcgi worker" in o.body, o


def test_clean_worker_start_r(kfcgi):
    def dirty():
        signal.signal(signal.SIGHUP, signal.SIG_IGN)
        signal.signal(signal.SIGPIPE, signal.SIG_IGN)
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGUSR1})
    kfcgi.start(["-r", "-n", "2", "-N", "4"], preexec_fn=dirty,
                env={"FCGI_LISTENSOCK_DESCRIPTORS": "7",
                     "KFCGI_TEST_MARK": "passed-through"})
    ws = kfcgi.wait_workers(2)
    kv = info(kfcgi)
    assert kv["mode"] == "extension", kv
    assert kv["startfds"] == "0,1,2,3", kv
    assert kv["env_fcgi_listensock"] == "3", kv
    assert parse_list(kv["sigmask"]) == [], kv
    assert parse_list(kv["sigign"]) == [], kv
    kfds = fds(kfcgi.pid)
    for w in ws:
        wf = fds(w)
        assert wf.get(0) == "/dev/null", wf
        assert wf.get(3, "").startswith("socket:"), wf
        # stdout and stderr: one pipe, read by the manager (test_ops.py)
        assert wf.get(1, "").startswith("pipe:") and wf[1] == wf[2] and \
            wf[1] in kfds.values(), \
            "stdout/stderr are not a pipe to the manager: %r vs %r" % (
                wf, kfds)
        with open("/proc/%d/environ" % w, "rb") as f:
            env = f.read().split(b"\0")
        assert b"KFCGI_TEST_MARK=passed-through" in env
        fl = [e for e in env if e.startswith(b"FCGI_LISTENSOCK_DESCRIPTORS=")]
        assert fl == [b"FCGI_LISTENSOCK_DESCRIPTORS=3"], fl
    assert kfcgi.stop(timeout=20) == 0


@needs_root
def test_jail_and_privileges_r(kfcgi, jail):
    uid, gid = user("nobody")
    j = jail()
    kfcgi.start(["-r", "-n", "2", "-N", "4", "-p", j, "-U", "nobody"],
                prog="/testworker",
                preexec_fn=lambda: os.setgroups([0, 4, 27, 100]))
    kfcgi.wait_workers(2)
    kv = info(kfcgi)
    assert kv["mode"] == "extension", kv
    assert parse_list(kv["root"]) == ["testworker"], kv
    assert kv["uid"] == "%d,%d,%d" % (uid, uid, uid), kv
    assert kv["gid"] == "%d,%d,%d" % (gid, gid, gid), kv
    assert set(int(g) for g in parse_list(kv["groups"])) <= {gid}, kv
    assert kv["startfds"] == "0,1,2,3", kv
    st = proc_status(kfcgi.pid)
    assert st["Uid"].split() == [str(uid)] * 4, st["Uid"]
    # growth works after the privilege drop and chroot
    outs = parallel(4, lambda i: kfcgi.request(query="sleep=500"))
    assert len({ok(o) for o in outs}) == 4
    assert kfcgi.stop(timeout=20) == 0


def test_prefers_most_recently_freed(kfcgi):
    """LIFO: sequential requests keep going to the same worker, so that
    surplus workers really go idle."""
    kfcgi.start(["-r", "-n", "3", "-N", "6"])
    kfcgi.wait_workers(3)
    pids = []
    for _ in range(10):
        pids.append(ok(kfcgi.request()))
        time.sleep(0.1)
    top, count = collections.Counter(pids).most_common(1)[0]
    assert count >= 8, "not LIFO: %r" % pids


# ------------------------------------------------------ growth / release ---

@pytest.mark.time_limit(90)
def test_growth_and_release(kfcgi):
    kfcgi.start(["-r", "-n", "2", "-N", "8", "-w", "2"])
    kfcgi.wait_workers(2)
    s = Sampler(kfcgi.workers)
    try:
        outs = parallel(8, lambda i: kfcgi.request(query="sleep=1500",
                                                   timeout=30))
    finally:
        s.stop()
    pids = [ok(o) for o in outs]
    assert len(set(pids)) == 8, \
        "8 parallel slow requests were not served by 8 workers: %r" % pids
    assert s.max_len() == 8, "worker count peaked at %d" % s.max_len()
    assert set(pids) <= s.union()
    # idle for -w seconds: back to exactly -n
    done = time.monotonic()
    kfcgi.wait_workers(2, timeout=12)
    took = time.monotonic() - done
    assert took >= 1.0, "surplus released after %.1fs, -w is 2s" % took
    s2 = Sampler(kfcgi.workers, interval=0.05)
    time.sleep(1.5)
    s2.stop()
    assert all(len(v) == 2 for _, v in s2.samples), \
        "pool left -n: %r" % sorted({len(v) for _, v in s2.samples})
    pool_goes_on(kfcgi, n=2)


def test_no_growth_while_workers_keep_answering(kfcgi, bins):
    """Eight clients of fast requests need no more than a few workers:
    the pool grows only when no worker has answered for a while (it used
    to grow to 40-64 here)."""
    load = bins.need("kfcgi_load")
    kfcgi.start(["-r", "-n", "2", "-N", "32"], prog=bins.need("hello"))
    kfcgi.wait_workers(2)
    s = Sampler(kfcgi.workers, interval=0.05)
    try:
        r = subprocess.run([load, "-c", "8", "-d", "2", kfcgi.sock],
                           capture_output=True, text=True, timeout=30)
    finally:
        s.stop()
    assert r.returncode == 0, r.stderr
    stats = dict(kv.split("=") for kv in r.stdout.split())
    assert int(stats["requests"]) > 1000 and int(stats["errors"]) == 0, \
        r.stdout
    assert s.max_len() <= 12, "pool grew to %d workers" % s.max_len()


def test_default_maxworkers(kfcgi):
    """-N defaults to twice -n."""
    kfcgi.start(["-r", "-n", "2"])
    kfcgi.wait_workers(2)
    s = Sampler(kfcgi.workers, interval=0.005)
    try:
        outs = parallel(8, lambda i: kfcgi.request(query="sleep=500"))
    finally:
        s.stop()
    for o in outs:
        ok(o)
    assert s.max_len() == 4, "peak %d workers, -N should be 4" % s.max_len()


@pytest.mark.time_limit(90)
def test_saturation(kfcgi):
    kfcgi.start(["-r", "-n", "1", "-N", "4"])
    kfcgi.wait_workers(1)
    s = Sampler(kfcgi.workers, interval=0.005)
    q = Sampler(lambda: listen_queue(kfcgi.sock) or (0, 0), interval=0.01)
    try:
        outs = parallel(20, lambda i: kfcgi.request(
            query="echo&sleep=300", stdin=("req%d" % i).encode(),
            timeout=40), timeout=60)
    finally:
        s.stop()
        q.stop()
    queued = max(v[0] for _, v in q.samples)
    assert queued >= 1, "connections never waited in the listen queue " \
        "(kfcgi kept accepting with every worker busy?)"
    pids = set()
    for i, o in enumerate(outs):
        pids.add(ok(o))
        assert o.kv.get("stdin") == "req%d" % i, o
    assert s.max_len() <= 4, "%d workers with -N 4" % s.max_len()
    assert len(pids) <= 4
    assert s.max_len() == 4, "never grew to -N under saturation"
    assert kfcgi.running()


@pytest.mark.time_limit(90)
def test_burst_grows_at_once(kfcgi, bins):
    """64 one-second requests at an idle -n 2 -N 64 pool (issue 9): the
    pool grows by the connections waiting, not one worker a pass, the
    spawns overlap in helper threads, and every request is answered in
    about a second.  Timings are generous; the growth steps are not."""
    load = bins.need("kfcgi_load")
    kfcgi.start(["-v", "-r", "-n", "2", "-N", "64", "-l", "256"])
    kfcgi.wait_workers(2)
    time.sleep(0.3)
    s = Sampler(kfcgi.workers, interval=0.002)
    t0 = time.monotonic()
    try:
        r = subprocess.run([load, "-c", "64", "-n", "64", "-d", "30",
                            "-q", "sleep=1000", kfcgi.sock],
                           capture_output=True, text=True, timeout=60)
    finally:
        s.stop()
    assert r.returncode == 0, r.stderr
    stats = dict(kv.split("=") for kv in r.stdout.split())
    assert int(stats["requests"]) == 64 and int(stats["errors"]) == 0, \
        r.stdout
    # each in about its second: none waits for a busy worker to finish
    assert float(stats["seconds"]) < 1.9, r.stdout
    assert int(stats["p50_us"]) < 1500000, r.stdout
    reached = [t - t0 for t, v in s.samples if len(v) >= 64]
    assert reached, "never 64 workers: peak %d" % s.max_len()
    assert reached[0] < 0.9, "64 workers after %.3f s" % reached[0]
    assert s.max_len() == 64, "%d workers with -N 64" % s.max_len()
    steps = [int(n) for n in re.findall(r"grow: (\d+) more workers",
                                        kfcgi.log())]
    assert sum(steps) == 62, steps
    assert max(steps) >= 8, "grew by %r: not by demand" % steps
    assert kfcgi.running()


def test_spawned_workers_start_with_clean_signals(kfcgi):
    """Workers are spawned from helper threads that block every signal:
    started or grown, none inherits that mask, nor an ignored signal."""
    kfcgi.start(["-r", "-n", "2", "-N", "6"])
    kfcgi.wait_workers(2)
    finish(inflight(kfcgi, 6, 500))
    # idle again (the test worker blocks SIGTERM during a request)
    ws = kfcgi.workers()
    assert len(ws) == 6, ws
    for w in ws:
        st = proc_status(w)
        assert int(st["SigBlk"], 16) == 0, (w, st["SigBlk"])
        # signals 1-31; glibc's own 32 and 33 are its business
        assert int(st["SigIgn"], 16) & 0x7fffffff == 0, (w, st["SigIgn"])


def test_on_demand(kfcgi):
    kfcgi.start(["-r", "-n", "0", "-N", "4"])
    time.sleep(1.0)
    assert kfcgi.workers() == [], "-n 0 started workers before any request"
    r = kfcgi.request(timeout=15)
    p = ok(r)
    assert r.kv["mode"] == "extension"
    ws = kfcgi.workers()
    assert p in ws and 1 <= len(ws) <= 4, ws
    pool_goes_on(kfcgi)


def test_release_w0(kfcgi):
    kfcgi.start(["-r", "-n", "1", "-N", "4", "-w", "0"])
    kfcgi.wait_workers(1)
    s = Sampler(kfcgi.workers)
    try:
        outs = parallel(4, lambda i: kfcgi.request(query="sleep=1000"))
    finally:
        s.stop()
    assert len({ok(o) for o in outs}) == 4
    assert s.max_len() == 4
    done = time.monotonic()
    kfcgi.wait_workers(1, timeout=5)
    assert time.monotonic() - done < 4
    time.sleep(0.5)
    assert len(kfcgi.workers()) == 1, "pool went below -n"


def test_fixed_size_extension_pool(kfcgi):
    """-r with -n equal to -N: a fixed-size pool that still speaks the
    extension."""
    kfcgi.start(["-r", "-n", "2", "-N", "2"])
    ws = kfcgi.wait_workers(2)
    assert info(kfcgi)["mode"] == "extension"
    s = Sampler(kfcgi.workers, interval=0.005)
    try:
        outs = parallel(6, lambda i: kfcgi.request(query="sleep=300"))
    finally:
        s.stop()
    assert {ok(o) for o in outs} <= set(ws)
    assert s.max_len() == 2


# ------------------------------------------------------------ isolation ---

ISO = ["-r", "-n", "2", "-N", "8"]


@pytest.mark.time_limit(90)
def test_isolation_busy_worker_killed(kfcgi):
    kfcgi.start(ISO)
    kfcgi.wait_workers(2)
    victim_job = spawn(kfcgi.request, query="sleep=6000", timeout=30)
    assert wait_for(lambda: len(busy(kfcgi)) == 1, 10), busy(kfcgi)
    victim = busy(kfcgi)[0]
    others = inflight(kfcgi, 3, 2000)
    assert victim in busy(kfcgi)
    t0 = time.monotonic()
    os.kill(victim, signal.SIGKILL)
    out = victim_job.outcome(30)
    took = time.monotonic() - t0
    assert isinstance(out, FcgiError) and not isinstance(out, FcgiTimeout), \
        "the killed worker's client should see its connection end: %r" % out
    assert took < 3, "client of the killed worker waited %.1fs: kfcgi " \
        "kept a copy of the connection?" % took
    finish(others, exclude=[victim])
    assert wait_for(lambda: victim not in kfcgi.workers(), 5)
    assert not alive(victim)
    pool_goes_on(kfcgi, exclude=[victim])
    assert len(kfcgi.workers()) >= 2
    log_names(kfcgi, victim)


@pytest.mark.time_limit(90)
@pytest.mark.parametrize("what", ["wrongcookie", "garbage", "closechan"])
def test_isolation_channel_violation(kfcgi, what):
    kfcgi.start(ISO)
    kfcgi.wait_workers(2)
    others = inflight(kfcgi, 3, 2000)
    r = kfcgi.request(query=what)       # answered, then misbehaves
    bad = ok(r)
    assert wait_for(lambda: not alive(bad), 15), \
        "worker %d (%s) was not killed and reaped" % (bad, what)
    finish(others, exclude=[bad])
    pool_goes_on(kfcgi, exclude=[bad])
    assert wait_for(lambda: len(kfcgi.workers()) >= 2, 10), \
        "pool not replenished to -n"
    log_names(kfcgi, bad)


@pytest.mark.time_limit(90)
def test_isolation_crash_mid_request(kfcgi):
    kfcgi.start(ISO)
    kfcgi.wait_workers(2)
    others = inflight(kfcgi, 3, 2000)
    with pytest.raises(FcgiError) as ei:
        kfcgi.request(query="crash", timeout=10)
    assert not isinstance(ei.value, FcgiTimeout), \
        "client of a crashed worker hung: %r" % ei.value
    finish(others)
    pool_goes_on(kfcgi)
    assert wait_for(lambda: len(kfcgi.workers()) >= 2, 10)
    assert kfcgi.running()


@pytest.mark.time_limit(90)
def test_isolation_nocookie(kfcgi):
    """A worker that answers but never returns the cookie stays busy: it
    keeps only its own slot, everything else is served."""
    kfcgi.start(ISO)
    kfcgi.wait_workers(2)
    r = kfcgi.request(query="nocookie")
    stuck = ok(r)
    others = inflight(kfcgi, 3, 1500)
    served = finish(others, exclude=[stuck])
    for _ in range(8):
        served.append(ok(kfcgi.request()))
        time.sleep(0.05)
    assert stuck not in served, "the stuck worker was given connections"
    pool_goes_on(kfcgi, exclude=[stuck])
    t0 = time.monotonic()
    assert kfcgi.stop(timeout=30) == 0
    assert time.monotonic() - t0 < GRACE + 7
    assert kfcgi.survivors() == []


@pytest.mark.time_limit(90)
def test_isolation_hang(kfcgi):
    """A worker that never answers holds only its own connection."""
    kfcgi.start(ISO)
    kfcgi.wait_workers(2)
    hang_job = spawn(kfcgi.request, query="hang", timeout=8)
    assert wait_for(lambda: len(busy(kfcgi)) == 1, 10), busy(kfcgi)
    hung = busy(kfcgi)[0]
    others = inflight(kfcgi, 3, 1000)
    served = finish(others, exclude=[hung])
    for _ in range(5):
        served.append(ok(kfcgi.request()))
    pool_goes_on(kfcgi, exclude=[hung])
    out = hang_job.outcome(20)
    assert isinstance(out, FcgiTimeout), out
    t0 = time.monotonic()
    assert kfcgi.stop(timeout=30) == 0
    assert time.monotonic() - t0 < GRACE + 7
    assert kfcgi.survivors() == []


# ---------------------------------------------------------------- scale ---

@pytest.mark.time_limit(240)
def test_thousand_workers(kfcgi):
    kfcgi.start(["-r", "-n", "1000", "-N", "1000"], timeout=30)
    ws = kfcgi.wait_workers(1000, timeout=90)
    outs = parallel(50, lambda i: kfcgi.request(query="echo",
                                                stdin=b"t%d" % i,
                                                timeout=30))
    for i, o in enumerate(outs):
        assert ok(o) in ws
        assert o.kv["stdin"] == "t%d" % i
    t0 = time.monotonic()
    assert kfcgi.stop(timeout=60) == 0
    took = time.monotonic() - t0
    assert took < 30, "stopping 1000 workers took %.1fs" % took
    assert wait_for(lambda: not any(alive(p, kfcgi.seen[p]) for p in ws),
                    10), "workers survive: %r" % kfcgi.survivors()[:10]


# -------------------------------------------------------------- signals ---

@pytest.mark.time_limit(90)
def test_sighup_r_mode(kfcgi):
    kfcgi.start(["-r", "-n", "3", "-N", "6"])
    old = kfcgi.wait_workers(3)
    h = Hammer(kfcgi.sock, threads=2, max_seconds=40)
    try:
        assert wait_for(lambda: h.count() >= 20, 10), h.failures[:5]
        t_hup = time.monotonic()
        kfcgi.signal(signal.SIGHUP)
        assert wait_for(lambda: not (set(kfcgi.workers()) & set(old)) and
                        len(kfcgi.workers()) >= 3, 20), \
            "old workers still there: %r" % kfcgi.workers()
        time.sleep(0.5)
        t_after = time.monotonic()
        c = h.count()
        assert wait_for(lambda: h.count() >= c + 50, 15), h.failures[:5]
    finally:
        h.stop()
    assert h.failures == [], "%d failed requests around SIGHUP: %r" % (
        len(h.failures), h.failures[:10])
    assert kfcgi.running()
    assert not h.pids_since(t_after) & set(old)
    assert {p for (t, p) in h.pids if t < t_hup} <= set(old)
    assert all(not alive(p, kfcgi.seen[p]) for p in old)


@pytest.mark.time_limit(60)
def test_sigterm_requests_in_flight_r(kfcgi):
    kfcgi.start(["-r", "-n", "2", "-N", "6"])
    kfcgi.wait_workers(2)
    jobs = inflight(kfcgi, 4, 1500)
    ws = kfcgi.workers()
    t0 = time.monotonic()
    kfcgi.signal(signal.SIGTERM)
    finish(jobs)
    assert kfcgi.wait_exit(30) == 0
    assert time.monotonic() - t0 < GRACE + 7
    assert wait_for(lambda: not any(alive(w) for w in ws), 5)
    assert kfcgi.survivors() == []


def test_sigterm_serves_the_held_connection(kfcgi):
    """Saturated (-N 1): the first connection is being served, the second
    accepted and held by kfcgi.  SIGTERM now: both are still served."""
    kfcgi.start(["-r", "-n", "1", "-N", "1"])
    kfcgi.wait_workers(1)
    first = inflight(kfcgi, 1, 1000)
    before = len(fds(kfcgi.pid))
    second = spawn(kfcgi.request, query="sleep=10", timeout=30)
    # Held: one more descriptor in kfcgi, none left in the kernel's queue.
    assert wait_for(lambda: len(fds(kfcgi.pid)) > before and
                    listen_queue(kfcgi.sock)[0] == 0, 10), \
        "the second connection is not held by kfcgi: queue %r" % (
            listen_queue(kfcgi.sock),)
    assert not second.done()
    kfcgi.signal(signal.SIGTERM)
    finish(first + [second])
    assert kfcgi.wait_exit(30) == 0


@pytest.mark.time_limit(60)
def test_sigterm_ignore_term_r(kfcgi):
    kfcgi.start(["-r", "-n", "3", "-N", "6"], prog_args=["--ignore-term"])
    ws = kfcgi.wait_workers(3)
    t0 = time.monotonic()
    assert kfcgi.stop(timeout=30) == 0
    assert time.monotonic() - t0 < GRACE + 7
    assert wait_for(lambda: not any(alive(w) for w in ws), 5)
    assert kfcgi.survivors() == []
