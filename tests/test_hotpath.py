"""The two back ends of the -r hot path (issue 9): io_uring when kfcgi is
built with liburing and the kernel lets it (Linux 5.19 on), libevent
otherwise or when KFCGI_NO_URING is set.  The whole suite runs on the
default; here the log (-v) names the back end, and key -r tests run again
on libevent: hand-off and cookies, the held FIFO and saturation, a
protocol violation, a held connection served at stop, a dead worker's
unread connection rescued, idle workers released."""

import os
import platform
import re
import subprocess
import time

import pytest

import test_faults
import test_varpool
from conftest import listen_queue, wait_for
from fcgiclient import spawn

NO_URING = {"KFCGI_NO_URING": "1"}


def uring_expected(kfcgi_path):
    """Built with liburing, on a kernel new enough that allows it."""
    libs = subprocess.run(["ldd", kfcgi_path], capture_output=True,
                          text=True).stdout
    if "liburing" not in libs:
        return False
    m = re.match(r"(\d+)\.(\d+)", platform.release())
    if not m or (int(m.group(1)), int(m.group(2))) < (5, 19):
        return False
    try:
        with open("/proc/sys/kernel/io_uring_disabled") as f:
            return f.read().strip() == "0"
    except OSError:
        return True


def hot_path(k):
    assert wait_for(lambda: "hot path: " in k.log(), 10), k.log()[-2000:]
    return re.search(r"hot path: (.*)", k.log()).group(1)


def ring_fds(pid):
    out = []
    for fd in os.listdir("/proc/%d/fd" % pid):
        try:
            if "io_uring" in os.readlink("/proc/%d/fd/%s" % (pid, fd)):
                out.append(int(fd))
        except OSError:
            pass
    return out


def test_log_names_the_hot_path(kfcgi_factory, bins):
    k = kfcgi_factory()
    k.start(["-v", "-r", "-n", "2"])
    ws = k.wait_workers(2)
    test_varpool.ok(k.request(query="echo", stdin=b"x"))
    path = hot_path(k)
    expected = uring_expected(bins.need("kfcgi"))
    if expected:
        assert path == "io_uring", path
        assert len(ring_fds(k.pid)) == 1
    else:
        assert path.startswith("libevent"), path
    # close-on-exec: no worker has the ring
    for w in ws:
        assert ring_fds(w) == [], "worker %d has the ring" % w
    k2 = kfcgi_factory()
    k2.start(["-v", "-r", "-n", "2"], env=NO_URING)
    k2.wait_workers(2)
    test_varpool.ok(k2.request())
    path = hot_path(k2)
    assert path.startswith("libevent"), path
    if expected:
        assert "KFCGI_NO_URING" in path, path
    assert ring_fds(k2.pid) == []


@pytest.mark.time_limit(60)
@pytest.mark.parametrize("env", [None, NO_URING], ids=["default", "libevent"])
def test_closed_channel_is_eof_at_once(kfcgi, env):
    """Idle workers that ignore SIGTERM leave when kfcgi closes their
    channels: at stop, at once, not at the end of the grace period.  (A
    read in flight in the ring holds the socket open past close(2).)"""
    kfcgi.start(["-r", "-n", "3", "-N", "3"], prog_args=["--ignore-term"],
                env=env)
    kfcgi.wait_workers(3)
    for _ in range(5):
        test_varpool.ok(kfcgi.request())
    t0 = time.monotonic()
    assert kfcgi.stop(timeout=30) == 0
    took = time.monotonic() - t0
    assert took < 2, "idle workers left %.1f s after SIGTERM: they did " \
        "not read EOF on their channels" % took
    assert kfcgi.survivors() == []


@pytest.mark.time_limit(60)
@pytest.mark.parametrize("env", [None, NO_URING], ids=["default", "libevent"])
def test_saturated_holds_one_and_serves_in_order(kfcgi, env):
    """-N 1 and the worker busy: kfcgi accepts one connection more (the
    one that would make the pool grow) and leaves the others queued in the
    kernel; all are served in the order they came."""
    kfcgi.start(["-r", "-n", "1", "-N", "1"], env=env)
    kfcgi.wait_workers(1)
    first = test_varpool.inflight(kfcgi, 1, 4000)
    jobs = [spawn(kfcgi.request, query="sleep=10", timeout=30)]
    # the first is held by kfcgi; each later one waits in the kernel's
    # queue before the next connects, so the order is known
    time.sleep(0.3)
    for i in range(1, 4):
        jobs.append(spawn(kfcgi.request, query="sleep=10", timeout=30))
        ok = wait_for(lambda: listen_queue(kfcgi.sock)[0] >= i, 3)
        assert ok, "with the only worker busy, kfcgi should hold one " \
            "connection and leave the others queued: %r" % (
                listen_queue(kfcgi.sock),)
    time.sleep(0.2)
    assert listen_queue(kfcgi.sock)[0] == 3, \
        "with the only worker busy, kfcgi should hold one connection and " \
        "leave 3 queued: %r" % (listen_queue(kfcgi.sock),)
    test_varpool.finish(first)
    served = []
    for j in jobs:
        r = j.outcome(30)
        test_varpool.ok(r)
        served.append(int(r.kv["served"]))
    assert served == sorted(served), "not served in order: %r" % served


class NoUring:
    """A Kfcgi helper whose kfcgi runs with KFCGI_NO_URING=1."""

    def __init__(self, k):
        self.__dict__["_k"] = k

    def __getattr__(self, name):
        return getattr(self._k, name)

    def start(self, *args, **kw):
        env = dict(kw.pop("env", None) or {})
        env.update(NO_URING)
        return self._k.start(*args, env=env, **kw)


@pytest.mark.time_limit(90)
@pytest.mark.parametrize("test", [
    test_varpool.test_answered_in_r_mode,
    test_varpool.test_saturation,
    test_varpool.test_sigterm_serves_the_held_connection,
    test_varpool.test_release_w0,
], ids=lambda t: t.__name__[5:])
def test_varpool_on_libevent(kfcgi, test):
    test(NoUring(kfcgi))


@pytest.mark.time_limit(90)
def test_violation_on_libevent(kfcgi):
    test_varpool.test_isolation_channel_violation(NoUring(kfcgi),
                                                  "wrongcookie")


@pytest.mark.time_limit(60)
def test_rescue_on_libevent(kfcgi, request):
    test_faults.test_r_worker_exit_after_cookie_loses_nothing(
        NoUring(kfcgi), request, 1)
