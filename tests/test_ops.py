"""Operations: worker output in the log, journal-aware logging, readiness
through NOTIFY_SOCKET, the -P pidfile and naming a missing loader."""

import os
import re
import signal
import socket
import subprocess
import shutil
import time

import pytest

from conftest import ROOT, fds, proc_status, wait_for
import fcgiclient

POOLS = [([], "fixed"), (["-r", "-n", "2", "-N", "4"], "variable")]


def wlines(k, pid):
    """The lines kfcgi logged for worker pid, without the prefixes."""
    out = []
    for line in k.log().splitlines():
        m = re.match(r"^(?:kfcgi: |<\d>)?worker (\d+): (.*)$", line)
        if m and int(m.group(1)) == pid:
            out.append(m.group(2))
    return out


# ----------------------------------------------------------- worker output ---

@pytest.mark.parametrize("args,name", POOLS, ids=[p[1] for p in POOLS])
def test_worker_output_logged_with_pid(kfcgi, args, name):
    kfcgi.start(args=args + ["-n", "2"])
    r = kfcgi.request(query="say=err-%s&sayout=out-%s" % (name, name))
    assert r.status == 200, r
    pid = int(r.kv["pid"])
    assert wait_for(lambda: "err-%s" % name in wlines(kfcgi, pid) and
                    "out-%s" % name in wlines(kfcgi, pid), 5), kfcgi.log()
    # A last line without its newline is logged once the pipe closes.
    r = kfcgi.request(query="partial=tail-%s&exitafter=0" % name)
    pid = int(r.kv["pid"])
    assert wait_for(lambda: "tail-%s" % name in wlines(kfcgi, pid), 5), \
        kfcgi.log()
    assert kfcgi.stop() == 0


@pytest.mark.parametrize("args,name", POOLS, ids=[p[1] for p in POOLS])
def test_worker_stdout_stderr_are_a_pipe_to_the_manager(kfcgi, args, name):
    kfcgi.start(args=args + ["-n", "2"], wait_workers=2)
    kfds = set(fds(kfcgi.pid).values())
    for w in kfcgi.workers():
        wf = fds(w)
        assert wf[1].startswith("pipe:") and wf[1] == wf[2], wf
        assert wf[1] in kfds, (wf, kfds)    # the manager holds the read end
    # One pipe per worker.
    assert len({fds(w)[1] for w in kfcgi.workers()}) == 2
    assert kfcgi.stop() == 0


def test_detached_worker_output_is_a_pipe_too(kfcgi):
    """Once kfcgi detaches, worker output still comes to it (for syslog),
    not /dev/null."""
    kfcgi.start(foreground=False, wait_workers=3)
    assert fds(kfcgi.pid)[2] == "/dev/null"
    kfds = set(fds(kfcgi.pid).values())
    for w in kfcgi.workers():
        wf = fds(w)
        assert wf[1].startswith("pipe:") and wf[1] == wf[2] and wf[1] in kfds
    kfcgi.stop()


def test_long_line_cut(kfcgi):
    kfcgi.start(wait_workers=3)
    r = kfcgi.request(query="long=5000&say=after-long")
    pid = int(r.kv["pid"])
    assert wait_for(lambda: "after-long" in wlines(kfcgi, pid), 5)
    lines = wlines(kfcgi, pid)
    cut = [x for x in lines if x.startswith("x")]
    assert cut == ["x" * 1024 + " [line cut]"], [len(x) for x in cut]
    assert kfcgi.stop() == 0


def rss_kb(pid):
    return int(proc_status(pid)["VmRSS"].split()[0])


@pytest.mark.time_limit(60)
def test_flooding_worker_is_bounded(kfcgi):
    """A worker writing as fast as it can: it is not blocked, the manager
    keeps serving, its memory stays put, the excess is counted."""
    kfcgi.start(args=["-n", "3"], wait_workers=3)
    kfcgi.request()
    before = rss_kb(kfcgi.pid)
    flood = fcgiclient.spawn(kfcgi.request, query="flood=1500000",
                             timeout=60)
    # While it floods, the other workers answer and SIGHUP is handled.
    slow = 0.0
    t_end = time.monotonic() + 1.0
    while time.monotonic() < t_end and not flood.done():
        t0 = time.monotonic()
        assert kfcgi.request(timeout=5).status == 200
        slow = max(slow, time.monotonic() - t0)
    assert slow < 1.5, slow
    r = flood.result(60)
    assert r.status == 200, r
    pid = int(r.kv["pid"])

    def counts():
        lines = wlines(kfcgi, pid)
        return ([x for x in lines if x.startswith("flood line")],
                sum(int(x.split()[0]) for x in lines
                    if re.match(r"\d+ lines dropped", x)))
    # What is over the rate is counted within a second or so.
    wait_for(lambda: len(counts()[0]) + counts()[1] == 1500000, 5)
    logged, dropped = counts()
    assert logged[:3] == ["flood line 0", "flood line 1", "flood line 2"]
    assert len(logged) + dropped == 1500000, (len(logged), dropped)
    assert len(logged) < 100 + 50 * 30, len(logged)
    assert rss_kb(kfcgi.pid) - before < 4096, (before, rss_kb(kfcgi.pid))
    assert kfcgi.stop() == 0


# ---------------------------------------------------------------- journal ---

def test_journal_stream_logs_once_with_levels(kfcgi):
    """With $JOURNAL_STREAM naming its stderr, each message is written once,
    "<N>" first; the workers do not inherit the variable."""
    open(kfcgi.logpath, "ab").close()
    st = os.stat(kfcgi.logpath)
    kfcgi.start(env={"JOURNAL_STREAM": "%d:%d" % (st.st_dev, st.st_ino)},
                wait_workers=3)
    r = kfcgi.request(query="say=journal-line")
    pid = int(r.kv["pid"])
    assert wait_for(lambda: "<6>worker %d: journal-line" % pid in
                    kfcgi.log() and "<6>start: 3 workers" in kfcgi.log(),
                    5), kfcgi.log()
    assert "kfcgi: " not in kfcgi.log(), kfcgi.log()
    for w in kfcgi.workers():
        with open("/proc/%d/environ" % w, "rb") as f:
            assert b"JOURNAL_STREAM=" not in f.read()
    assert kfcgi.stop() == 0
    assert re.search(r"^<6>stop: SIGTERM", kfcgi.log(), re.M), kfcgi.log()


def test_journal_stream_of_another_file_ignored(kfcgi, sockdir):
    other = os.path.join(sockdir, "other")
    open(other, "w").close()
    st = os.stat(other)
    kfcgi.start(env={"JOURNAL_STREAM": "%d:%d" % (st.st_dev, st.st_ino)},
                wait_workers=3)
    assert wait_for(lambda: "kfcgi: start: 3 workers" in kfcgi.log(), 5)
    assert "<6>" not in kfcgi.log()
    assert kfcgi.stop() == 0


# -------------------------------------------------------------- readiness ---

class Notify:
    """The service manager's end of NOTIFY_SOCKET."""

    def __init__(self, addr):
        self.s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.s.bind(addr if not addr.startswith("@") else "\0" + addr[1:])
        self.addr = addr

    def next(self, timeout=10):
        self.s.settimeout(timeout)
        data = self.s.recv(4096).decode()
        return dict(line.split("=", 1) for line in data.split("\n") if line)

    def close(self):
        self.s.close()


@pytest.mark.parametrize("where", ["path", "abstract"])
@pytest.mark.parametrize("args,name", POOLS, ids=[p[1] for p in POOLS])
def test_readiness_notifications(kfcgi, sockdir, where, args, name):
    addr = (os.path.join(sockdir, "notify") if where == "path" else
            "@kfcgi-test-%d-%s" % (os.getpid(), os.path.basename(sockdir)))
    n = Notify(addr)
    try:
        kfcgi.start(args=args + ["-n", "2"], env={"NOTIFY_SOCKET": addr})
        m = n.next()
        # READY=1 comes once the first workers run.
        assert m.get("READY") == "1", m
        assert len(kfcgi.workers()) == 2
        assert m["STATUS"].startswith("2 workers"), m
        for w in kfcgi.workers():
            with open("/proc/%d/environ" % w, "rb") as f:
                assert b"NOTIFY_SOCKET=" not in f.read()
        old = set(kfcgi.workers())
        t0 = time.clock_gettime(time.CLOCK_MONOTONIC)
        kfcgi.signal(signal.SIGHUP)
        m = n.next()
        assert m.get("RELOADING") == "1", m
        usec = int(m["MONOTONIC_USEC"])
        assert t0 * 1e6 <= usec <= (t0 + 5) * 1e6, (t0, usec)
        m = n.next()
        assert m.get("READY") == "1", m
        assert "STATUS" in m
        assert len(set(kfcgi.workers()) - old) == 2
        kfcgi.signal(signal.SIGTERM)
        m = n.next()
        assert m.get("STOPPING") == "1", m
        assert kfcgi.wait_exit() == 0
    finally:
        n.close()


def test_ready_again_after_failed_reload(kfcgi, bins, sockdir):
    """A reload whose program cannot run is over at once: READY=1 comes
    back, and the old workers keep serving."""
    prog = os.path.join(sockdir, "app")
    shutil.copy(bins.need("testworker"), prog)
    addr = os.path.join(sockdir, "notify")
    n = Notify(addr)
    try:
        kfcgi.start(args=["-n", "2"], prog=prog, env={"NOTIFY_SOCKET": addr})
        assert n.next().get("READY") == "1"
        old = set(kfcgi.workers())
        with open(prog + ".new", "w") as f:
            f.write("not a program\n")
        os.rename(prog + ".new", prog)
        kfcgi.signal(signal.SIGHUP)
        assert n.next().get("RELOADING") == "1"
        m = n.next(5)
        assert m.get("READY") == "1", m
        # (the child whose exec failed may not be reaped yet)
        assert wait_for(lambda: set(kfcgi.workers()) == old, 5), \
            (kfcgi.workers(), old)
        assert kfcgi.request().status == 200
    finally:
        n.close()
    assert kfcgi.stop() == 0


def test_notify_socket_bad_value_warned(kfcgi):
    kfcgi.start(env={"NOTIFY_SOCKET": "relative/path"}, wait_workers=3)
    assert "notify: relative/path: not a socket path or @name" in kfcgi.log()
    assert kfcgi.stop() == 0


# ---------------------------------------------------------------- pidfile ---

def test_pidfile_written_locked_removed(kfcgi_factory, sockdir):
    pidfile = os.path.join(sockdir, "kfcgi.pid")
    k = kfcgi_factory()
    k.start(args=["-P", pidfile], foreground=False)
    with open(pidfile) as f:
        assert f.read() == "%d\n" % k.pid
    # A second kfcgi with the same pidfile is refused in one line.
    k2 = kfcgi_factory()
    res = k2.run(args=["-P", pidfile], foreground=False)
    assert res.rc == 1, res
    assert res.stderr == ("kfcgi: pidfile: %s: in use by a running kfcgi "
                          "(pid %d)\n" % (pidfile, k.pid)), res
    assert not os.path.exists(k2.sock)     # refused before the socket
    with open(pidfile) as f:
        assert f.read() == "%d\n" % k.pid
    k.stop()
    assert not os.path.exists(pidfile)


def test_pidfile_stale_is_taken_over(kfcgi, sockdir):
    pidfile = os.path.join(sockdir, "kfcgi.pid")
    with open(pidfile, "w") as f:
        f.write("1\n")      # a live pid, but no lock: stale
    kfcgi.start(args=["-P", pidfile], wait_workers=3)
    with open(pidfile) as f:
        assert f.read() == "%d\n" % kfcgi.pid
    assert kfcgi.stop() == 0
    assert not os.path.exists(pidfile)


def test_pidfile_removed_after_failed_start(kfcgi, sockdir):
    pidfile = os.path.join(sockdir, "kfcgi.pid")
    res = kfcgi.run(args=["-P", pidfile], prog="/nonexistent")
    assert res.rc == 1
    assert not os.path.exists(pidfile)


@pytest.mark.needs_root
def test_pidfile_in_jail_with_procuser(kfcgi_factory, sockdir, jail):
    """After the jail and -U, a pidfile in a directory the user may not
    write is emptied, not removed; one in its own directory is removed."""
    j = jail()
    rundir = os.path.join(sockdir, "run")
    os.mkdir(rundir)
    pidfile = os.path.join(rundir, "kfcgi.pid")
    k = kfcgi_factory()
    k.start(args=["-P", pidfile, "-p", j, "-U", "nobody"],
            prog="/testworker", wait_workers=3)
    with open(pidfile) as f:
        assert f.read() == "%d\n" % k.pid
    assert k.stop() == 0
    assert os.path.exists(pidfile) and os.path.getsize(pidfile) == 0
    os.unlink(pidfile)
    shutil.chown(rundir, "nobody")
    k = kfcgi_factory()
    k.start(args=["-P", pidfile, "-p", j, "-U", "nobody"], prog="/testworker",
            wait_workers=3)
    assert k.stop() == 0
    assert not os.path.exists(pidfile)


def test_pidfile_usage(kfcgi):
    res = kfcgi.run(args=["-P", ""])
    assert res.rc == 1 and res.stderr.startswith("kfcgi: empty path\n")
    assert "[-P pidfile]" in res.stderr


# ----------------------------------------------------- missing interpreter ---

@pytest.mark.needs_root
def test_missing_loader_named(kfcgi, bins, sockdir, jail):
    j = jail()
    os.mkdir(os.path.join(j, "fcgi-bin"))
    shutil.copy2(bins.need("hello"), os.path.join(j, "fcgi-bin", "app"))
    res = kfcgi.run(args=["-p", j], prog="/fcgi-bin/app")
    assert res.rc == 1
    assert re.search(r"^kfcgi: program: /fcgi-bin/app: its loader "
                     r"/lib\S*/ld-linux\S+ is missing in the jail \(link it "
                     r"statically or copy the loader and libraries\)$",
                     res.stderr, re.M), res


def test_missing_script_interpreter_named(kfcgi, sockdir):
    script = os.path.join(sockdir, "app.pl")
    with open(script, "w") as f:
        f.write("#!/nonexistent/perl -w\nprint 1;\n")
    os.chmod(script, 0o755)
    res = kfcgi.run(prog=script)
    assert res.rc == 1
    assert ("kfcgi: program: %s: its interpreter /nonexistent/perl is "
            "missing in the jail" % script) in res.stderr, res


# ------------------------------------------------------- syslog in the jail ---

@pytest.mark.needs_root
@pytest.mark.time_limit(60)
def test_syslog_after_daemon_restart_in_jail(bins, sockdir):
    """What the manual says of syslog in the jail: the connection made
    before the jail carries messages; when the syslog daemon restarts,
    they are lost unless the jail has a /dev/log, through which the C
    library reconnects."""
    if subprocess.run(["unshare", "-m", "true"]).returncode != 0:
        pytest.skip("cannot make a mount namespace (unshare -m)")
    r = subprocess.run(["unshare", "-m", "/usr/bin/python3",
                        os.path.join(ROOT, "tests", "syslog-jail.py"),
                        bins.need("kfcgi"), bins.need("testworker"),
                        sockdir], capture_output=True, text=True, timeout=50)
    assert r.returncode == 0, r.stderr
    got = __import__("json").loads(r.stdout)

    def has(msgs, word):
        return any(re.search(r"kfcgi\[\d+\]: worker \d+: %s$" % word, m)
                   for m in msgs)
    assert has(got["before"], "before-restart"), got
    assert not has(got["after"], "after-restart"), got
    assert has(got["jail"], "jail-devlog"), got
    assert not got["outside"], got
