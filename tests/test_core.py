"""kfcgi core (issue 2): command line, socket, jail, privileges, daemon,
and the supervised fixed pool.  Real processes, a real FastCGI client."""

import os
import re
import signal
import socket
import stat
import time

import pytest

from conftest import (alive, busy_workers, cmdline, fds, info, listen_queue,
                      pids_with_arg, proc_stat, proc_status, user, wait_for)
from fcgiclient import (FcgiError, Hammer, parallel, parse_list, request,
                        spawn)

needs_root = pytest.mark.needs_root
OPTION_LETTERS = set("derlnNpSsuUwgktmPv")
GRACE = 5


def sig_bit(sig):
    return 1 << (int(sig) - 1)


def sigset(status, field):
    return int(status.get(field, "0"), 16)


# ------------------------------------------------------------- serving ---

def test_requests_answered(kfcgi):
    kfcgi.start()
    ws = kfcgi.wait_workers(3)
    r = kfcgi.request(query="")
    assert r.status == 200, r
    kv = r.kv
    assert kv.get("mode") == "classic", r
    assert int(kv["pid"]) in ws
    assert int(kv["ppid"]) == kfcgi.pid
    # a POST body reaches the worker intact
    body = b"x" * 100000 + b"end"
    r = kfcgi.request(query="echo", stdin=body)
    assert r.status == 200, r
    assert r.kv.get("stdin") == body.decode(), r.body[-200:]
    # many requests, all answered by the pool's workers
    pids = set()
    for _ in range(30):
        r = kfcgi.request(query="")
        assert r.status == 200, r
        pids.add(int(r.kv["pid"]))
    assert pids <= set(kfcgi.workers())


def test_example_hello_classic(kfcgi, bins):
    kfcgi.start(prog=bins.need("hello"))
    kfcgi.wait_workers(3)
    for _ in range(5):
        r = kfcgi.request()
        assert r.status == 200, r
        assert b"Hello from kfcgi worker" in r.body, r


@pytest.mark.parametrize("n", [None, 5])
def test_worker_count(kfcgi, n):
    args = [] if n is None else ["-n", str(n)]
    want = 3 if n is None else n
    kfcgi.start(args)
    ws = kfcgi.wait_workers(want)
    time.sleep(1.0)                 # and it stays at that
    assert kfcgi.workers() == ws
    for w in ws:
        cl = cmdline(w)
        assert cl and cl[0].endswith("testworker"), cl
    outs = parallel(want * 2, lambda i: kfcgi.request(query="sleep=300"))
    for o in outs:
        assert not isinstance(o, Exception), o
        assert o.status == 200, o
        assert int(o.kv["pid"]) in ws


# -------------------------------------------------------------- socket ---

def test_socket_mode_and_owner(kfcgi):
    kfcgi.start()
    st = os.stat(kfcgi.sock)
    assert stat.S_ISSOCK(st.st_mode)
    assert stat.S_IMODE(st.st_mode) == 0o660, oct(st.st_mode)
    assert st.st_uid == os.getuid()
    assert st.st_gid == os.getgid()


@needs_root
def test_socket_owner_u(kfcgi):
    uid, gid = user("nobody")
    kfcgi.start(["-u", "nobody"])
    st = os.stat(kfcgi.sock)
    assert stat.S_ISSOCK(st.st_mode)
    assert stat.S_IMODE(st.st_mode) == 0o660, oct(st.st_mode)
    assert (st.st_uid, st.st_gid) == (uid, gid)
    assert kfcgi.request().status == 200


@pytest.mark.parametrize("args,backlog", [
    ([], 6), (["-n", "4"], 8), (["-n", "4", "-l", "7"], 7),
    (["-r", "-n", "2"], 8), (["-r", "-n", "2", "-N", "5"], 10),
    (["-r", "-n", "0", "-N", "3", "-l", "50"], 50)],
    ids=["default", "n4", "l7", "r-default-N", "r-N5", "r-l50"])
def test_backlog(kfcgi, args, backlog):
    """The backlog is twice -n, or twice -N with -r (-N being twice -n by
    default), unless -l gives it."""
    kfcgi.start(args)
    q = listen_queue(kfcgi.sock)
    assert q is not None, "no listening socket at %s" % kfcgi.sock
    assert q[1] == backlog, "backlog %d, want %d" % (q[1], backlog)


def test_live_socket_not_stolen(kfcgi_factory):
    k1 = kfcgi_factory().start()
    k1.wait_workers(3)
    ino = os.stat(k1.sock).st_ino
    k2 = kfcgi_factory()
    r = k2.run(sock=k1.sock, timeout=15)
    assert r.rc == 1, r
    assert any(l.startswith("kfcgi:") for l in r.stderr.splitlines()), r
    assert k1.sock in r.stderr, "the error should name the socket: %r" % r
    assert os.stat(k1.sock).st_ino == ino, "socket file was replaced"
    assert k1.running()
    for _ in range(5):
        rr = k1.request()
        assert rr.status == 200, rr
        assert int(rr.kv["ppid"]) == k1.pid


def test_stale_socket_replaced(kfcgi, sockdir):
    path = os.path.join(sockdir, "stale.sock")
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(path)
    s.listen(1)
    s.close()
    assert stat.S_ISSOCK(os.lstat(path).st_mode)
    with pytest.raises(FcgiError):
        request(path, timeout=2)
    kfcgi.start(sock=path)
    r = kfcgi.request()
    assert r.status == 200, r
    assert int(r.kv["ppid"]) == kfcgi.pid


@pytest.mark.parametrize("kind", ["file", "directory", "symlink"])
def test_non_socket_path_refused(kfcgi, sockdir, kind):
    path = os.path.join(sockdir, "notasocket")
    target = os.path.join(sockdir, "target")
    if kind == "file":
        with open(path, "wb") as f:
            f.write(b"precious\n")
        os.chmod(path, 0o644)
    elif kind == "directory":
        os.mkdir(path)
        with open(os.path.join(path, "inside"), "wb") as f:
            f.write(b"x")
    else:
        with open(target, "wb") as f:
            f.write(b"precious\n")
        os.symlink(target, path)
    before = os.lstat(path)
    r = kfcgi.run(sock=path, timeout=15)
    assert r.rc == 1, r
    assert any(l.startswith("kfcgi:") for l in r.stderr.splitlines()), r
    after = os.lstat(path)
    assert (after.st_ino, after.st_mode, after.st_mtime_ns) == \
        (before.st_ino, before.st_mode, before.st_mtime_ns)
    if kind == "file":
        with open(path, "rb") as f:
            assert f.read() == b"precious\n"
    elif kind == "directory":
        assert os.listdir(path) == ["inside"]
    else:
        assert os.readlink(path) == target
        with open(target, "rb") as f:
            assert f.read() == b"precious\n"


# ------------------------------------------------- jail and privileges ---

@needs_root
def test_jail_and_privileges(kfcgi, jail):
    uid, gid = user("nobody")
    j = jail()
    kfcgi.start(["-p", j, "-U", "nobody"], prog="/testworker",
                preexec_fn=lambda: os.setgroups([0, 4, 27, 100]))
    ws = kfcgi.wait_workers(3)
    kv = info(kfcgi)
    assert int(kv["pid"]) in ws
    assert parse_list(kv["root"]) == ["testworker"], kv
    ids = "%d,%d,%d"
    assert kv["uid"] == ids % (uid, uid, uid), kv
    assert kv["gid"] == ids % (gid, gid, gid), kv
    groups = set(int(g) for g in parse_list(kv["groups"]))
    assert groups <= {gid}, "supplementary groups kept: %r" % kv["groups"]
    assert kv["startfds"] == "0,1,2", kv
    # the manager itself runs unprivileged in the jail from then on
    st = proc_status(kfcgi.pid)
    assert st["Uid"].split() == [str(uid)] * 4, st["Uid"]
    assert st["Gid"].split() == [str(gid)] * 4, st["Gid"]
    assert set(int(g) for g in st["Groups"].split()) <= {gid}, st["Groups"]
    assert os.path.realpath("/proc/%d/root" % kfcgi.pid) == \
        os.path.realpath(j)
    assert os.listdir(j) == ["testworker"], "kfcgi wrote into the jail"
    assert kfcgi.stop(timeout=20) == 0


@needs_root
def test_bad_jail(kfcgi, sockdir):
    missing = os.path.join(sockdir, "no-such-jail")
    r = kfcgi.run(["-p", missing], prog="/testworker", timeout=15)
    assert r.rc == 1, r
    assert missing in r.stderr, r


def test_clean_worker_start(kfcgi):
    """Descriptors 0,1,2 only; default signals; empty mask; environment
    passed through without FCGI_LISTENSOCK_DESCRIPTORS -- even when kfcgi
    was started with signals ignored/blocked and that variable set."""
    def dirty():
        signal.signal(signal.SIGHUP, signal.SIG_IGN)
        signal.signal(signal.SIGPIPE, signal.SIG_IGN)
        signal.signal(signal.SIGUSR2, signal.SIG_IGN)
        signal.pthread_sigmask(signal.SIG_BLOCK,
                               {signal.SIGUSR1, signal.SIGUSR2})
    kfcgi.start(preexec_fn=dirty,
                env={"FCGI_LISTENSOCK_DESCRIPTORS": "3",
                     "KFCGI_TEST_MARK": "passed-through"})
    ws = kfcgi.wait_workers(3)
    kv = info(kfcgi)
    assert kv["mode"] == "classic", kv
    assert kv["startfds"] == "0,1,2", kv
    assert parse_list(kv["sigmask"]) == [], kv
    assert parse_list(kv["sigign"]) == [], kv
    assert kv["env_fcgi_listensock"] == "unset", kv
    kfds = fds(kfcgi.pid)
    for w in ws:
        wf = fds(w)
        assert wf.get(0, "").startswith("socket:"), wf
        assert wf[0] in kfds.values(), \
            "fd 0 is not kfcgi's listening socket: %r vs %r" % (wf, kfds)
        # stdout and stderr: one pipe, read by the manager (test_ops.py)
        assert wf.get(1, "").startswith("pipe:") and wf[1] == wf[2] and \
            wf[1] in kfds.values(), \
            "stdout/stderr are not a pipe to the manager: %r vs %r" % (
                wf, kfds)
        with open("/proc/%d/environ" % w, "rb") as f:
            env = f.read().split(b"\0")
        assert b"KFCGI_TEST_MARK=passed-through" in env
        assert not any(e.startswith(b"FCGI_LISTENSOCK_DESCRIPTORS=")
                       for e in env)
    assert kfcgi.stop(timeout=20) == 0


# ---------------------------------------------------------- supervision ---

def test_killed_worker_replaced(kfcgi):
    kfcgi.start(["-n", "3"])
    ws = kfcgi.wait_workers(3)
    victim = ws[1]
    os.kill(victim, signal.SIGKILL)
    now = kfcgi.wait_workers(3, timeout=15, exclude=[victim])
    assert len(set(now) - set(ws)) == 1, (ws, now)
    assert kfcgi.running()
    for _ in range(10):
        r = kfcgi.request()
        assert r.status == 200, r
        assert int(r.kv["pid"]) != victim
    # the operator is told which worker died and how
    lines = [l for l in kfcgi.log().splitlines() if str(victim) in l]
    assert lines, "no log line names pid %d:\n%s" % (victim, kfcgi.log())
    assert any(re.search(r"\bsignal 9\b|\bSIGKILL\b|\bkilled\b",
                         l.replace(str(victim), ""), re.I)
               for l in lines), lines


@pytest.mark.parametrize("args,query", [
    (["-n", "1"], "sleep=250&exitafter=0"),
    (["-r", "-n", "1", "-N", "1"], "exitafter=0")], ids=["fixed", "r"])
def test_recycling_is_not_a_crash_loop(kfcgi, args, query):
    """Workers that exit 0 after their work (php-cgi does, every 500
    requests) are replaced at once, never held back as a crash loop."""
    kfcgi.start(args)
    pid = kfcgi.wait_workers(1)[0]
    t0 = time.monotonic()
    for _ in range(8):
        r = kfcgi.request(query=query)
        assert r.status == 200 and int(r.kv["pid"]) == pid, r
        pid = kfcgi.wait_workers(1, timeout=10, exclude=[pid])[0]
    took = time.monotonic() - t0
    assert "restarting in" not in kfcgi.log(), kfcgi.log()
    # throttled, the 8 restarts would have waited 6.3 s in all
    assert took < 6, "8 recycled workers took %.1f s" % took


def test_worker_exit_replaced_and_logged(kfcgi):
    kfcgi.start(["-n", "2"])
    ws = kfcgi.wait_workers(2)
    r = kfcgi.request(query="exitafter=7")
    assert r.status == 200, r
    gone = int(r.kv["pid"])
    assert gone in ws
    kfcgi.wait_workers(2, timeout=15, exclude=[gone])
    lines = [l for l in kfcgi.log().splitlines() if str(gone) in l]
    assert any(re.search(r"\b7\b", l.replace(str(gone), "")) for l in lines), \
        "exit status 7 of worker %d not logged:\n%s" % (gone, kfcgi.log())
    for _ in range(5):
        assert kfcgi.request().status == 200


def test_verbose_logs_more(kfcgi_factory):
    def run(args):
        k = kfcgi_factory()
        k.start(args + ["-n", "2"])
        k.wait_workers(2)
        for _ in range(3):
            assert k.request().status == 200
        assert k.stop(timeout=20) == 0
        return k.log().splitlines()
    quiet = run([])
    loud = run(["-v"])
    assert len(loud) > len(quiet), (quiet, loud)


@pytest.mark.parametrize("args", [[], ["-r", "-n", "2"]], ids=["fixed", "r"])
def test_crash_loop_throttled(kfcgi, sockdir, args):
    startlog = os.path.join(sockdir, "starts.log")
    t0 = time.monotonic()
    kfcgi.start(args, prog_args=["--exit-at-start=1",
                                 "--startlog=" + startlog])
    while time.monotonic() - t0 < 3.0:
        assert kfcgi.running(), "kfcgi exited in a crash loop:\n" + \
            kfcgi.log()
        time.sleep(0.1)
        if time.monotonic() - t0 < 2.0:
            early = count(startlog)
    starts = count(startlog)
    n = 2 if "-r" in args else 3
    # n first workers, then restarts 0, 0.1, 0.2, 0.4, 0.8 s apart
    assert starts >= n + 3, "no restart after the first crashes " \
        "(%d starts)" % starts
    assert starts <= 3 * n + 6, "restart loop too fast: %d starts in 3 s" \
        % starts
    # by 2 s the delays are 0.8 s and more: a few starts in the last second
    assert starts - early <= n + 1, \
        "restarts not slowing down: %d of %d starts after 2 s" % (
            starts - early, starts)
    assert kfcgi.stop(timeout=20) == 0


def count(startlog):
    try:
        with open(startlog) as f:
            return len(f.read().splitlines())
    except FileNotFoundError:
        return 0


@pytest.mark.parametrize("what", ["missing", "not-executable", "directory"])
def test_unexecutable_program_fails_startup(kfcgi, sockdir, what):
    if what == "missing":
        prog = os.path.join(sockdir, "no-such-prog")
    elif what == "not-executable":
        prog = os.path.join(sockdir, "not-exec-prog")
        with open(prog, "w") as f:
            f.write("#!/bin/sh\nexit 0\n")
        os.chmod(prog, 0o644)
    else:
        prog = os.path.join(sockdir, "a-directory")
        os.mkdir(prog)
    r = kfcgi.run(prog=prog, timeout=15)
    assert r.rc == 1, r
    assert prog in r.stderr or os.path.basename(prog) in r.stderr, r
    assert r.elapsed < 10, r


def test_startup_failure_without_d(kfcgi, sockdir):
    prog = os.path.join(sockdir, "nonexistent")
    r = kfcgi.run(prog=prog, foreground=False, timeout=15)
    assert r.rc == 1, r
    assert "nonexistent" in r.stderr, r
    time.sleep(0.3)
    assert pids_with_arg(kfcgi.sock) == [], "a daemon was left behind"


# -------------------------------------------------------------- signals ---

@pytest.mark.time_limit(60)
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT],
                         ids=["SIGTERM", "SIGINT"])
@pytest.mark.parametrize("ignore", [False, True],
                         ids=["plain", "ignore-term"])
def test_stop_signal(kfcgi, sig, ignore):
    kfcgi.start(["-n", "3"],
                prog_args=["--ignore-term"] if ignore else [])
    ws = kfcgi.wait_workers(3)
    if ignore:
        # make sure the workers really do ignore SIGTERM
        def ignoring():
            return all((sigset(proc_status(w), "SigIgn") |
                        sigset(proc_status(w), "SigCgt")) &
                       sig_bit(signal.SIGTERM) for w in ws)
        assert wait_for(ignoring, 5), "test worker does not ignore SIGTERM"
    t0 = time.monotonic()
    rc = kfcgi.stop(timeout=30, sig=sig)
    took = time.monotonic() - t0
    assert rc == 0, kfcgi.log()
    if ignore:
        assert GRACE - 0.5 <= took < GRACE + 7, \
            "took %.1fs (grace is %ds)" % (took, GRACE)
    else:
        assert took < 4, "took %.1fs though workers obey SIGTERM" % took
    assert wait_for(lambda: not any(alive(w) for w in ws), 3), \
        [w for w in ws if alive(w)]
    assert kfcgi.survivors() == []
    # the manual: the socket file stays when kfcgi exits
    assert stat.S_ISSOCK(os.lstat(kfcgi.sock).st_mode)
    assert not kfcgi.connectable()


@pytest.mark.time_limit(60)
def test_sigterm_requests_in_flight_fixed(kfcgi):
    kfcgi.start(["-n", "3"])
    kfcgi.wait_workers(3)
    jobs = [spawn(kfcgi.request, query="sleep=1500", timeout=20)
            for _ in range(3)]
    assert wait_for(lambda: len(busy_workers(kfcgi)) == 3, 10), \
        "requests never reached the workers"
    kfcgi.signal(signal.SIGTERM)
    for j in jobs:
        r = j.result(25)
        assert r.status == 200, r
    assert kfcgi.wait_exit(20) == 0
    assert kfcgi.survivors() == []


@pytest.mark.time_limit(90)
def test_sighup_new_workers_no_refusal(kfcgi):
    kfcgi.start(["-n", "3"])
    old = kfcgi.wait_workers(3)
    h = Hammer(kfcgi.sock, threads=2, max_seconds=40)
    try:
        assert wait_for(lambda: h.count() >= 20, 10), h.failures[:5]
        t_hup = time.monotonic()
        kfcgi.signal(signal.SIGHUP)
        new = kfcgi.wait_workers(3, timeout=20, exclude=old)
        time.sleep(0.5)         # let the old generation's last answers land
        t_after = time.monotonic()
        c = h.count()
        assert wait_for(lambda: h.count() >= c + 50, 15), \
            "requests stalled after SIGHUP: %r" % h.failures[:5]
    finally:
        h.stop()
    assert h.failures == [], "%d failed requests around SIGHUP: %r" % (
        len(h.failures), h.failures[:10])
    assert kfcgi.running()
    assert not set(new) & set(old)
    assert h.pids_since(t_after) <= set(new), (h.pids_since(t_after), new)
    assert all(not alive(p, kfcgi.seen[p]) for p in old), \
        "old workers survive the reload"
    assert {p for (t, p) in h.pids if t < t_hup} <= set(old)


# ---------------------------------------------------------- bad options ---

LONG = "/tmp/" + "x" * 120 + ".sock"

BAD_OPTIONS = [
    # id, args, program given, words one of which the message should contain
    ("unknown-option", ["-x"], True, ["x"]),
    ("n-zero", ["-n", "0"], True, ["-n", "0", "worker"]),
    ("n-abc", ["-n", "abc"], True, ["abc"]),
    ("n-huge", ["-n", "99999999"], True,
     ["99999999", "-n", "large", "range", "worker"]),
    ("n-negative", ["-n", "-3"], True, ["-3", "-n", "small", "range"]),
    ("N-below-n-r", ["-r", "-n", "4", "-N", "2"], True,
     ["-n", "max", "worker"]),
    ("N-abc", ["-N", "abc"], True, ["abc"]),
    ("N-huge", ["-r", "-N", "99999999"], True,
     ["99999999", "-n", "large", "range", "worker"]),
    ("l-zero", ["-l", "0"], True, ["-l", "0", "backlog"]),
    ("l-abc", ["-l", "abc"], True, ["abc"]),
    ("w-negative", ["-w", "-1"], True, ["-w", "-1", "wait", "small"]),
    ("w-abc", ["-w", "abc"], True, ["abc"]),
    ("u-unknown", ["-u", "nosuchuser-kfcgi"], True,
     ["nosuchuser-kfcgi"]),
    ("U-unknown", ["-U", "nosuchuser-kfcgi"], True,
     ["nosuchuser-kfcgi"]),
    ("missing-prog", [], False, ["prog", "program", "missing", "argument"]),
    ("missing-optarg", ["-n"], False, ["n"]),
    ("long-socket-path", ["-s", LONG], True,
     ["long", "sun_path", "path", "-s"]),
]


def usage_letters(line):
    letters = set()
    for m in re.finditer(r"(?<![\w-])-([A-Za-z]+)", line):
        letters.update(m.group(1))
    return letters


@pytest.mark.parametrize("args,has_prog,words",
                         [b[1:] for b in BAD_OPTIONS],
                         ids=[b[0] for b in BAD_OPTIONS])
def test_bad_option(kfcgi, args, has_prog, words):
    r = kfcgi.run(args, prog=None if has_prog else False, timeout=15)
    assert r.rc == 1, r
    lines = r.stderr.splitlines()
    msgs = [l for l in lines if l.startswith("kfcgi:")]
    assert len(msgs) == 1, "want one 'kfcgi: ...' line: %r" % r
    assert any(w.lower() in msgs[0].lower() for w in words), \
        "message does not name the problem (%r): %r" % (words, msgs[0])
    starts = [i for i, l in enumerate(lines) if "usage" in l.lower()]
    assert starts, "no usage line: %r" % r
    # the usage line, with its indented continuation lines if wrapped
    usage = [lines[starts[0]]]
    for l in lines[starts[0] + 1:]:
        if not l[:1].isspace():
            break
        usage.append(l)
    usage = " ".join(usage)
    missing = OPTION_LETTERS - usage_letters(usage)
    assert not missing, "usage omits -%s: %r" % ("".join(sorted(missing)),
                                                 usage)
    assert lines.index(msgs[0]) < starts[0]
    assert not os.path.exists(kfcgi.sock), "bad usage created the socket"


# --------------------------------------------------------------- daemon ---

@needs_root
@pytest.mark.time_limit(60)
def test_daemon_in_jail_without_dev(kfcgi, jail):
    j = jail()
    t0 = time.monotonic()
    kfcgi.start(["-p", j], prog="/testworker", foreground=False)
    assert kfcgi.start_rc == 0
    assert time.monotonic() - t0 < 10
    daemon = kfcgi.pid
    assert daemon != kfcgi.proc.pid
    # the first workers already run when the starting process exits
    assert len(kfcgi.workers()) >= 1
    ws = kfcgi.wait_workers(3)
    # detached: own session, no longer our child, stdio on /dev/null
    st = proc_stat(daemon)
    assert st[1] != os.getpid()
    assert os.getsid(daemon) != os.getsid(0)
    dfds = fds(daemon)
    for n in (0, 1, 2):
        assert dfds.get(n) == "/dev/null", dfds
    kv = info(kfcgi)
    assert int(kv["pid"]) in ws
    assert parse_list(kv["root"]) == ["testworker"], kv
    outs = parallel(6, lambda i: kfcgi.request())
    for o in outs:
        assert not isinstance(o, Exception), o
        assert o.status == 200, o
    assert os.listdir(j) == ["testworker"], "kfcgi wrote into the jail"
    os.kill(daemon, signal.SIGTERM)
    assert wait_for(lambda: not alive(daemon), 15), "daemon did not stop"
    assert wait_for(lambda: not any(alive(w) for w in ws), 5)
    assert kfcgi.survivors() == []


@pytest.mark.parametrize("opt", ["-N", "-w"])
def test_varpool_option_without_r_warns(kfcgi, opt):
    """-N and -w only mean something with -r: say so, and run anyway."""
    kfcgi.start([opt, "4"])
    assert "%s: has no effect without -r" % opt in kfcgi.log()
    assert len(kfcgi.wait_workers(3)) == 3
