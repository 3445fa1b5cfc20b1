"""Behaviour that one-line breakages used to get past `make check` with
(issue 6, "Tests that would not notice"): the seed's defaults, options
ending at prog, which idle worker is released, unpredictable cookies, the
crash streak's reset, the socket file left at exit."""

import os
import shutil
import signal
import stat
import time

import pytest

from conftest import alive, busy_workers, cmdline, wait_for
from fcgiclient import parallel, spawn

needs_root = pytest.mark.needs_root
DEFAULT_JAIL = "/var/www"
DEFAULT_SOCK = "/var/www/run/httpd.sock"


def fixed_argv(k, argv):
    """Make helper k run exactly argv (kfcgi binary first), without the
    -d -p / -s ... -- it adds by itself."""
    k._argv = lambda *a: [k.bins.need("kfcgi")] + [str(x) for x in argv]


# ------------------------------------------------------ options and prog ---

@pytest.mark.parametrize("dashdash", [True, False], ids=["--", "no--"])
def test_options_end_at_prog(kfcgi, bins, dashdash):
    """`kfcgi ... prog -n 5`: -n 5 belongs to prog, with or without --."""
    tw = bins.need("testworker")
    sock = kfcgi.default_sock()
    fixed_argv(kfcgi, ["-d", "-p", "/", "-s", sock] +
               (["--"] if dashdash else []) + [tw, "-n", "5"])
    kfcgi.start(sock=sock, env={"POSIXLY_CORRECT": None})
    ws = kfcgi.wait_workers(3)
    time.sleep(0.5)
    assert kfcgi.workers() == ws, "-n 5 was taken by kfcgi"
    assert cmdline(ws[0]) == [tw, "-n", "5"], cmdline(ws[0])
    kv = kfcgi.request(query="info").kv
    assert kv["args"] == "-n,5", kv


def test_unknown_option_after_prog_is_progs(kfcgi, bins):
    """`kfcgi -d -p / -s S prog -x`: -x is not kfcgi's to refuse."""
    tw = bins.need("testworker")
    sock = kfcgi.default_sock()
    fixed_argv(kfcgi, ["-d", "-p", "/", "-s", sock, tw, "-x"])
    kfcgi.start(sock=sock, env={"POSIXLY_CORRECT": None})
    kfcgi.wait_workers(3)
    assert kfcgi.request(query="info").kv["args"] == "-x"


# ------------------------------------------------------- seed's defaults ---

@needs_root
@pytest.mark.time_limit(60)
def test_seed_defaults(kfcgi, bins):
    """No -p, no -s: the jail is /var/www, the socket
    /var/www/run/httpd.sock (an existing one is left alone: skip)."""
    if os.path.lexists(DEFAULT_SOCK):
        pytest.skip("%s exists; not touching it" % DEFAULT_SOCK)
    made = []
    for d in (DEFAULT_JAIL, os.path.dirname(DEFAULT_SOCK)):
        if not os.path.isdir(d):
            os.mkdir(d, 0o755)
            made.append(d)
    sub = "kfcgi-test-%d" % os.getpid()
    appdir = os.path.join(DEFAULT_JAIL, sub)
    os.mkdir(appdir, 0o755)
    try:
        shutil.copy2(bins.need("testworker"),
                     os.path.join(appdir, "testworker"))
        fixed_argv(kfcgi, ["-d", "-n", "2", "--", "/%s/testworker" % sub])
        kfcgi.start(sock=DEFAULT_SOCK, env={"ASAN_OPTIONS": "detect_leaks=0"})
        ws = kfcgi.wait_workers(2)
        assert stat.S_ISSOCK(os.lstat(DEFAULT_SOCK).st_mode)
        kv = kfcgi.request(query="info").kv
        assert int(kv["pid"]) in ws
        assert sub in kv["root"].split(","), kv["root"]
        for p in [kfcgi.pid] + ws:
            assert os.path.realpath("/proc/%d/root" % p) == DEFAULT_JAIL
        assert kfcgi.stop(timeout=20) == 0
    finally:
        kfcgi.cleanup()
        if os.path.lexists(DEFAULT_SOCK):
            os.unlink(DEFAULT_SOCK)
        shutil.rmtree(appdir, ignore_errors=True)
        for d in reversed(made):
            try:
                os.rmdir(d)
            except OSError:
                pass


# ----------------------------------------------------------------- exit ---

@pytest.mark.parametrize("args", [["-n", "2"], ["-r", "-n", "2"]],
                         ids=["fixed", "r"])
def test_socket_file_stays_at_exit(kfcgi, args):
    """The manual: the socket file stays in place when kfcgi exits."""
    kfcgi.start(args)
    kfcgi.wait_workers(2)
    ino = os.lstat(kfcgi.sock).st_ino
    assert kfcgi.stop(timeout=20) == 0
    st = os.lstat(kfcgi.sock)
    assert stat.S_ISSOCK(st.st_mode) and st.st_ino == ino
    assert not kfcgi.connectable()


# -------------------------------------------------------------- release ---

@pytest.mark.time_limit(40)
def test_release_spares_busy_worker(kfcgi):
    """-w 0 releases surplus workers as soon as they are idle, never one
    that is busy (the test workers die at once on SIGTERM here)."""
    kfcgi.start(["-r", "-n", "1", "-N", "3", "-w", "0"],
                prog_args=["--no-sigterm-grace"])
    kfcgi.wait_workers(1)
    outs = parallel(3, lambda i: kfcgi.request(
        query="sleep=%d" % (3000 if i == 0 else 300), timeout=20))
    for o in outs:
        assert not isinstance(o, Exception), o
        assert o.status == 200, o
    assert len({int(o.kv["pid"]) for o in outs}) == 3, outs


@pytest.mark.time_limit(40)
def test_release_oldest_idle_first(kfcgi):
    """Three workers go idle one after the other; with -w 1 the two that
    have been idle longest are released, the last one freed stays."""
    kfcgi.start(["-r", "-n", "1", "-N", "3", "-w", "1"])
    kfcgi.wait_workers(1)
    outs = parallel(3, lambda i: kfcgi.request(
        query="sleep=%d" % (500 * (i + 1)), timeout=20))
    pids = [int(o.kv["pid"]) for o in outs]
    assert len(set(pids)) == 3, pids
    left = kfcgi.wait_workers(1, timeout=6)
    assert left == [pids[2]], \
        "kept %r; freed in the order %r, the last should stay" % (left, pids)


# -------------------------------------------------------------- cookies ---

def test_cookies_unpredictable(kfcgi):
    kfcgi.start(["-r", "-n", "2", "-N", "4"])
    kfcgi.wait_workers(2)
    cookies = [int(kfcgi.request(query="x").kv["cookie"]) for _ in range(40)]
    assert len(set(cookies)) == 40, cookies
    s = sorted(cookies)
    gaps = [b - a for a, b in zip(s, s[1:])]
    # 40 random 64-bit numbers: the smallest gap is about 2**54
    assert min(gaps) > 2 ** 32, "cookies close together: %r" % cookies
    assert max(cookies) >= 2 ** 62, "cookies not spread over 64 bits"


# --------------------------------------------------------- crash streak ---

@pytest.mark.time_limit(60)
def test_crash_streak_resets_after_stable_worker(kfcgi, bins, sockdir):
    """A streak of early deaths slows restarts down; once a worker has
    lived 2 s the streak is over, and the next crashes restart at once
    and after 100 ms again, not after the old, long delay."""
    flag = os.path.join(sockdir, "crash")
    log = os.path.join(sockdir, "starts")
    prog = os.path.join(sockdir, "app")
    with open(prog, "w") as f:
        f.write("#!/bin/sh\ndate +%%s.%%N >> %s\n[ -e %s ] && exit 1\n"
                "exec %s \"$@\"\n" % (log, flag, bins.need("testworker")))
    os.chmod(prog, 0o755)
    open(flag, "w").close()
    kfcgi.start(["-n", "1"], prog=prog)
    time.sleep(1.6)                 # deaths at 0, 0, .1, .3, .7, 1.5 s
    os.unlink(flag)
    assert kfcgi.running()
    w = wait_for(lambda: [p for p in kfcgi.workers()
                          if cmdline(p)[:1] == [bins.testworker]], 8)
    assert w, "never recovered:\n%s" % kfcgi.log()
    time.sleep(2.5)                 # a stable worker: the streak is over
    assert alive(w[0])
    open(flag, "w").close()
    t0 = time.time()
    os.kill(w[0], signal.SIGKILL)
    time.sleep(1.0)

    def count():
        with open(log) as f:
            return sum(1 for l in f.read().split() if float(l) >= t0)
    n = count()
    assert n >= 3, "%d starts in the 1 s after a stable worker died: " \
        "the crash streak did not reset\n%s" % (n, kfcgi.log()[-2000:])
    # once seen working, the program is forgiven up to 4 failures a second
    # (kfcgi(8), Crashes) before the back-off takes over again
    assert n <= 10, "%d starts in 1 s: no back-off" % n


def test_crash_loop_throttle_is_spaced(kfcgi, sockdir):
    """The back-off doubles: after 2 s of a crash loop, restarts come at
    most every 0.8 s or so."""
    log = os.path.join(sockdir, "starts")
    kfcgi.start(["-n", "1"], prog_args=["--exit-at-start=1",
                                        "--startlog=" + log])
    time.sleep(2.2)

    def count():
        with open(log) as f:
            return len(f.read().split())
    a = count()
    time.sleep(1.6)
    b = count()
    assert kfcgi.running()
    assert a >= 4, "only %d starts in 2.2 s" % a
    assert b - a <= 2, "%d starts between 2.2 s and 3.8 s" % (b - a)


# ------------------------------------------------------------- -k & stop ---

@pytest.mark.time_limit(30)
def test_stop_waits_whole_grace(kfcgi):
    """A worker that ignores SIGTERM is killed only at the end of the
    5 s grace period, not sooner."""
    kfcgi.start(["-n", "1"], prog_args=["--ignore-term"])
    w = kfcgi.wait_workers(1)[0]
    t0 = time.monotonic()
    kfcgi.signal(signal.SIGTERM)
    # Watch for its end rather than look once: a slow machine only makes
    # the death seen later, never sooner.
    assert wait_for(lambda: not alive(w), 10, interval=0.01)
    died = time.monotonic() - t0
    assert died >= 4.5, "killed %.1f s into a 5 s grace period" % died
    assert kfcgi.wait_exit(10) == 0
    assert time.monotonic() - t0 < 7


@pytest.mark.time_limit(30)
def test_sigterm_slow_request_over_2s_served(kfcgi):
    """A 3.5 s request in flight at SIGTERM is still answered: the grace
    period is 5 s."""
    kfcgi.start(["-n", "1"])
    kfcgi.wait_workers(1)
    job = spawn(kfcgi.request, query="sleep=3500", timeout=15)
    # In the worker's hands, not still in the listen queue, where no one
    # would take it once the worker has left.
    assert wait_for(lambda: len(busy_workers(kfcgi)) == 1, 10), \
        "the request never reached the worker"
    kfcgi.signal(signal.SIGTERM)
    r = job.result(15)
    assert r.status == 200, r
    assert kfcgi.wait_exit(10) == 0
