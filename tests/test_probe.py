"""The elastic pool's probes on real processes (tests/probe.c): the listen
queue depth of real Unix and TCP listeners, whether real classic workers
(Debian's libfcgi, php-cgi, our library) wait on descriptor 0, retiring
one without costing a request, each worker's graceful signal, and both
probes inside a jail after the privilege drop."""

import os
import pwd
import signal
import socket
import struct
import subprocess
import threading
import time

import pytest

import fcgiclient as fc
from conftest import ROOT, alive, kill_quiet, wait_for

PROBE = os.path.join(ROOT, "tests", "probe")
MINIPOOL = os.path.join(ROOT, "tests", "minipool")
PHP_CGI = "/usr/bin/php-cgi"
BACKLOG = 8

# name -> (program, its slow query or None).  hello has no slow mode;
# testworker is built on the same library.
PROGRAMS = {
    "libfcgi": (os.path.join(ROOT, "tests", "libfcgi-worker"), "sleep=%d"),
    "php": (PHP_CGI, "sleep=%d"),
    "hello": (os.path.join(ROOT, "examples", "hello"), None),
    "testworker": (os.path.join(ROOT, "tests", "testworker"), "sleep=%d"),
}
# Sleeps out the whole time even when a signal interrupts usleep().
PHP_SCRIPT = ('<?php $ms = (int)($_GET["sleep"] ?? 0);\n'
              '$end = microtime(true) + $ms / 1000;\n'
              'while (($left = $end - microtime(true)) > 0)\n'
              '    usleep((int)($left * 1e6));\n'
              'echo "php ok ", getmypid(), " slept=$ms\\n";\n')


def probe(*args, stdin=subprocess.DEVNULL):
    r = subprocess.run([PROBE] + [str(a) for a in args], stdin=stdin,
                       capture_output=True, text=True, timeout=30)
    return r


def probe_kv(*args, stdin=subprocess.DEVNULL):
    r = probe(*args, stdin=stdin)
    assert r.returncode == 0, r
    return fc.parse_kv(r.stdout)


class Workers:
    """Classic workers started on a listener of our own, and clean-up."""

    def __init__(self, sockdir):
        self.sockdir = sockdir
        self.procs = []
        self.socks = []
        self.php_params = None

    def listener(self, name="l.sock"):
        path = os.path.join(self.sockdir, name)
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.bind(path)
        s.listen(BACKLOG)
        self.socks.append(s)
        return s, path

    def start(self, name):
        prog = PROGRAMS[name][0]
        if not os.access(prog, os.X_OK):
            if name == "php":
                pytest.skip("php-cgi is missing (Debian package php-cgi)")
            pytest.fail("%s is not built: run make" % prog)
        lsock, path = self.listener(name + ".sock")
        env = dict(os.environ, PHP_FCGI_CHILDREN="0")
        p = subprocess.Popen([prog], stdin=lsock.fileno(),
                             stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL, env=env)
        self.procs.append(p)
        if name == "php":
            self.php_params = self.php_setup()
        assert wait_for(lambda: idle(p.pid) == 1, 10), \
            "%s never waited on descriptor 0" % name
        return p, path

    def php_setup(self):
        script = os.path.join(self.sockdir, "s.php")
        with open(script, "w") as f:
            f.write(PHP_SCRIPT)
        return {"SCRIPT_FILENAME": script, "SCRIPT_NAME": "/s.php",
                "DOCUMENT_ROOT": self.sockdir, "REDIRECT_STATUS": "200"}

    def message(self, name, query=""):
        """A whole request: begin, parameters, empty stdin."""
        p = fc.default_params(b"", query)
        if name == "php":
            p.update(self.php_params)
        return (fc._record(fc.FCGI_BEGIN_REQUEST, 1,
                           struct.pack("!HB5x", fc.FCGI_RESPONDER, 0)) +
                fc._stream(fc.FCGI_PARAMS, 1, fc.encode_params(p)) +
                fc._stream(fc.FCGI_STDIN, 1, b""))

    def close(self):
        # SIGTERM first: minipool kills its workers then, while a SIGKILL
        # would leave them behind, waiting on a socket nobody serves.
        for p in self.procs:
            kill_quiet(p.pid, signal.SIGTERM)
        for p in self.procs:
            if exits(p) is None:
                kill_quiet(p.pid)
                p.wait()
        for s in self.socks:
            s.close()


@pytest.fixture
def workers(sockdir):
    w = Workers(sockdir)
    yield w
    w.close()


def idle(pid):
    return int(probe_kv("idle", pid)["idle"])


def connect(path):
    c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    c.settimeout(10)
    c.connect(path)
    return c


def answer(c, timeout=10):
    """stdout of the answer on connection c; FcgiError if it breaks."""
    deadline = time.monotonic() + timeout
    out = b""
    while True:
        hdr = fc._recv_exact(c, 8, deadline, "a record header")
        _, rtype, _, clen, plen = fc._HEADER.unpack(hdr)
        content = fc._recv_exact(c, clen + plen, deadline, "content")[:clen]
        if rtype == fc.FCGI_STDOUT:
            out += content
        elif rtype == fc.FCGI_END_REQUEST:
            return out


def exits(p, timeout=5):
    try:
        return p.wait(timeout)
    except subprocess.TimeoutExpired:
        return None


# ---------------------------------------------------------- queue depth ---

def test_qdepth_unix(workers):
    """N connections made and not accepted read as N, with the backlog."""
    lsock, path = workers.listener()
    clients = []
    for n in range(6):
        kv = probe_kv("qdepth", stdin=lsock.fileno())
        assert kv == {"qlen": str(n), "max": str(BACKLOG)}, (n, kv)
        clients.append(connect(path))
    conn, _ = lsock.accept()
    conn.close()
    assert probe_kv("qdepth", stdin=lsock.fileno())["qlen"] == "5"


def test_qdepth_skips_an_answer_left_unread(workers):
    lsock, path = workers.listener()
    clients = [connect(path) for _ in range(3)]
    kv = probe_kv("qdepth-stale", stdin=lsock.fileno())
    assert kv == {"qlen": "3", "max": str(BACKLOG)}, kv
    del clients


@pytest.mark.parametrize("family,host", [(socket.AF_INET, "127.0.0.1"),
                                         (socket.AF_INET6, "::1")])
def test_qdepth_tcp(family, host):
    lsock = socket.socket(family, socket.SOCK_STREAM)
    try:
        try:
            lsock.bind((host, 0))
        except OSError as e:
            pytest.skip("no %s here: %s" % (host, e))
        lsock.listen(BACKLOG)
        clients = []
        for n in range(6):
            kv = probe_kv("qdepth", stdin=lsock.fileno())
            assert kv == {"qlen": str(n), "max": str(BACKLOG)}, (n, kv)
            clients.append(socket.create_connection(
                lsock.getsockname()[:2]))
        # The handshake completes in the kernel: wait for the last one.
        assert wait_for(lambda: probe_kv("qdepth", stdin=lsock.fileno())
                        ["qlen"] == "6", 2)
    finally:
        lsock.close()


def test_qdepth_refuses_what_does_not_listen(workers):
    lsock, path = workers.listener()
    c = connect(path)
    for stdin in (c.fileno(), subprocess.DEVNULL):
        r = probe("qdepth", stdin=stdin)
        assert r.returncode == 1 and "qdepth_open" in r.stderr, r


# ------------------------------------------------------------ idle test ---

@pytest.mark.parametrize("name", sorted(PROGRAMS))
def test_idle_while_waiting_busy_while_serving(workers, name):
    """Idle when blocked waiting on descriptor 0; busy while it reads a
    request that comes slowly, and while it works on a slow one."""
    p, path = workers.start(name)
    msg = workers.message(name)
    c = connect(path)                       # nothing sent yet
    assert wait_for(lambda: idle(p.pid) == 0, 1)
    c.sendall(msg[:16])                     # the begin record only
    assert wait_for(lambda: idle(p.pid) == 0, 5)
    time.sleep(0.1)
    assert idle(p.pid) == 0
    c.sendall(msg[16:])
    assert answer(c)
    c.close()
    assert wait_for(lambda: idle(p.pid) == 1, 5)
    slow = PROGRAMS[name][1]
    if slow is None:
        return
    c = connect(path)
    c.sendall(workers.message(name, slow % 1500))
    assert wait_for(lambda: idle(p.pid) == 0, 1)
    time.sleep(0.1)
    assert idle(p.pid) == 0
    assert answer(c)
    c.close()
    assert wait_for(lambda: idle(p.pid) == 1, 5)


def test_idle_only_on_descriptor_0(workers):
    """A process blocked in accept(2) is idle only if that is on
    descriptor 0 (here Python accepts on descriptor 0, then on 5)."""
    if os.uname().machine != "x86_64":
        pytest.skip("system call numbers below are x86_64's")
    lsock, path = workers.listener()
    for fd, want in ((0, 1), (5, 0)):
        code = ("import os, socket; os.dup2(0, %d); "
                "socket.socket(fileno=%d).accept()" % (fd, fd))
        p = subprocess.Popen(["python3", "-c", code], stdin=lsock.fileno(),
                             pass_fds=())
        workers.procs.append(p)
        assert wait_for(lambda: syscall_name(p.pid) == "accept", 10)
        assert idle(p.pid) == want, fd
        kill_quiet(p.pid)


WAITS = {
    "poll": "p = select.poll()\nfor fd in fds: p.register(fd)\np.poll()",
    "select": "select.select(fds, [], [])",
    "epoll": "e = select.epoll()\nfor fd in fds: e.register(fd)\n"
             "e.poll()",
}
# x86_64 numbers of the calls each may block in.
WAIT_CALLS = {"poll": ("7", "271"), "select": ("23", "270"),
              "epoll": ("232", "281", "441")}


@pytest.mark.parametrize("how", sorted(WAITS))
def test_idle_waiting_with_poll_select_epoll(workers, how):
    """Waiting with poll, select or epoll is idle if descriptor 0 is all
    it waits for; busy if it also waits for another (a pipe here)."""
    if os.uname().machine != "x86_64":
        pytest.skip("system call numbers below are x86_64's")
    lsock, _ = workers.listener()
    for extra, want in ((False, 1), (True, 0)):
        code = ("import os, select\nfds = [0]\n" +
                ("r, w = os.pipe()\nfds.append(r)\n" if extra else "") +
                WAITS[how])
        p = subprocess.Popen(["python3", "-c", code], stdin=lsock.fileno())
        workers.procs.append(p)
        assert wait_for(lambda: syscall_name(p.pid) in WAIT_CALLS[how], 10)
        assert idle(p.pid) == want, (how, extra)
        kill_quiet(p.pid)


def syscall_name(pid):
    try:
        with open("/proc/%d/syscall" % pid) as f:
            nr = f.read().split()[0]
    except OSError:
        return None
    return {"43": "accept", "288": "accept"}.get(nr, nr)


@pytest.mark.needs_root
def test_idle_unknown_without_permission(workers):
    """Another user's worker (root's, looked at as nobody) is -1, not a
    guess; a zombie is not idle."""
    p, _ = workers.start("testworker")
    nobody = pwd.getpwnam("nobody")

    def drop():
        os.setgid(nobody.pw_gid)
        os.setuid(nobody.pw_uid)
    r = subprocess.run([PROBE, "idle", str(p.pid)], capture_output=True,
                       text=True, preexec_fn=drop, timeout=30)
    assert r.returncode == 0 and r.stdout == "idle=-1\n", r
    kill_quiet(p.pid)
    assert wait_for(lambda: open("/proc/%d/stat" % p.pid).read()
                    .rsplit(") ", 1)[1][0] == "Z", 5)
    assert idle(p.pid) == 0


def started(pid):
    return int(probe_kv("started", pid)["started"])


@pytest.mark.parametrize("name", sorted(PROGRAMS))
def test_started_once_waiting_or_serving(workers, name):
    """A worker has started once it waits on descriptor 0 or serves a
    connection it took (also before the request has come)."""
    p, path = workers.start(name)
    assert started(p.pid) == 1
    c = connect(path)
    assert wait_for(lambda: idle(p.pid) == 0, 1)
    assert started(p.pid) == 1
    c.sendall(workers.message(name)[:16])
    time.sleep(0.1)
    assert started(p.pid) == 1
    c.close()


STARTING = {
    "reading a pipe": "import os\nr, w = os.pipe()\nready()\nos.read(r, 1)",
    "sleeping": "import time\nready()\ntime.sleep(60)",
    "reading a socket": "import socket\na, b = socket.socketpair()\n"
                        "ready()\na.recv(1)",
}


@pytest.mark.parametrize("how", sorted(STARTING))
def test_started_not_while_starting_up(workers, how):
    """Blocked on a file, a pipe or asleep it is still starting; blocked
    on a socket other than descriptor 0 it counts as serving."""
    lsock, _ = workers.listener()
    code = ("import os, sys\ndef ready():\n    os.write(1, b'.')\n" +
            STARTING[how])
    p = subprocess.Popen(["python3", "-c", code], stdin=lsock.fileno(),
                         stdout=subprocess.PIPE)
    workers.procs.append(p)
    assert p.stdout.read(1) == b"."
    assert wait_for(lambda: syscall_name(p.pid) not in
                    (None, "running"), 5)
    time.sleep(0.1)
    assert started(p.pid) == (1 if how == "reading a socket" else 0)
    assert idle(p.pid) == 0


def test_idle_unknown_for_a_process_that_is_gone(workers):
    p, _ = workers.start("testworker")
    p.kill()
    p.wait()
    assert idle(p.pid) == -1


# ----------------------------------------------------- retiring, signals ---

# Each worker's graceful signal: finish the request in hand, then exit.
GRACEFUL = [("libfcgi", signal.SIGUSR1), ("libfcgi", signal.SIGTERM),
            ("php", signal.SIGUSR1), ("php", signal.SIGTERM),
            ("testworker", signal.SIGTERM)]


@pytest.mark.parametrize("name,sig", GRACEFUL)
def test_graceful_signal(workers, name, sig):
    """A worker signalled in the middle of a slow request answers it in
    full, then exits 0 without taking the next connection."""
    p, path = workers.start(name)
    c = connect(path)
    c.sendall(workers.message(name, PROGRAMS[name][1] % 800))
    assert wait_for(lambda: idle(p.pid) == 0, 1)
    os.kill(p.pid, sig)
    out = answer(c)
    assert b"slept=800" in out or b"served=1" in out, out
    c.close()
    assert exits(p) == 0


@pytest.mark.parametrize("name,sig", [g for g in GRACEFUL
                                      if g[0] != "libfcgi"])
def test_graceful_signal_while_reading(workers, name, sig):
    """php-cgi and our library also finish a request whose parameters are
    still coming when the signal lands (libfcgi does not: its read fails
    and it answers with the parameters cut short)."""
    p, path = workers.start(name)
    msg = workers.message(name, PROGRAMS[name][1] % 50)
    c = connect(path)
    c.sendall(msg[:16])
    assert wait_for(lambda: idle(p.pid) == 0, 5)
    os.kill(p.pid, sig)
    time.sleep(0.1)
    c.sendall(msg[16:])
    out = answer(c)
    assert b"slept=50" in out or b"served=1" in out, out
    c.close()
    assert exits(p) == 0


@pytest.mark.parametrize("sig", [signal.SIGUSR1, signal.SIGTERM])
def test_libfcgi_signal_while_reading_cuts_the_request(workers, sig):
    """Why retiring freezes first: Debian's libfcgi, signalled while it
    reads a request, takes the interrupted read for its end and answers
    without the parameters (no "slept=50"), then exits."""
    if os.uname().machine != "x86_64":
        pytest.skip("system call numbers below are x86_64's")
    p, path = workers.start("libfcgi")
    msg = workers.message("libfcgi", "sleep=50")
    c = connect(path)
    c.sendall(msg[:16])
    # Blocked in read(2) for the rest (not still on its way there).
    assert wait_for(lambda: syscall_name(p.pid) == "0", 5)
    os.kill(p.pid, sig)
    time.sleep(0.1)
    c.sendall(msg[16:])
    out = answer(c)
    assert b"libfcgi pid=" in out and b"slept" not in out, out
    c.close()
    assert exits(p) == 0


@pytest.mark.parametrize("name,sig", GRACEFUL)
def test_retire_idle_worker(workers, name, sig):
    """Frozen while idle, retired: it leaves from its wait, accepting
    nothing; a connection made afterwards stays in the queue."""
    p, path = workers.start(name)
    assert probe_kv("retire", p.pid, int(sig)) == {"retired": "1"}
    assert exits(p) == 0
    c = connect(path)
    lsock = workers.socks[-1]
    assert probe_kv("qdepth", stdin=lsock.fileno())["qlen"] == "1"
    c.close()


@pytest.mark.parametrize("name,sig", GRACEFUL)
def test_retire_spares_a_busy_worker(workers, name, sig):
    """A worker that took a connection between the idle test and the
    signal is seen busy while frozen, is let go on unsignalled, and
    serves the request whole (libfcgi would cut its parameters short
    if the signal broke its read)."""
    p, path = workers.start(name)
    msg = workers.message(name, PROGRAMS[name][1] % 50)
    c = connect(path)
    c.sendall(msg[:16])
    assert wait_for(lambda: idle(p.pid) == 0, 5)
    assert probe_kv("retire", p.pid, int(sig)) == {"retired": "0"}
    c.sendall(msg[16:])
    out = answer(c)
    assert b"slept=50" in out or b"served=1" in out, out
    c.close()
    assert wait_for(lambda: idle(p.pid) == 1, 5)
    assert alive(p.pid)


def test_retire_refuses_a_worker_not_frozen(workers):
    """Without idle_freeze() first, idle_retire() sends nothing."""
    p, _ = workers.start("testworker")
    assert probe_kv("retire", p.pid, int(signal.SIGTERM), "nofreeze") == \
        {"retired": "-1"}
    time.sleep(0.2)
    assert alive(p.pid) and idle(p.pid) == 1


# ----------------------------------------------------------------- jail ---

@pytest.mark.needs_root
def test_probes_in_jail_after_privilege_drop(workers, jail):
    """Opened before chroot and the drop to nobody, both probes still
    work: the queue of the listener, and its child's idle state."""
    root = jail()
    lsock, path = workers.listener()
    p = subprocess.Popen([PROBE, "jail", root, "nobody", "/testworker"],
                         stdin=lsock.fileno(), stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    workers.procs.append(p)
    first = fc.parse_kv(p.stdout.readline() + p.stdout.readline())
    assert first.get("uid") == str(pwd.getpwnam("nobody").pw_uid), first
    child = int(first["pid"])

    def until(want, timeout=5):
        deadline = time.monotonic() + timeout
        line = ""
        while time.monotonic() < deadline:
            line = p.stdout.readline()
            if not line:
                pytest.fail("probe ended: %s" % p.stderr.read())
            kv = dict(w.split("=", 1) for w in line.split())
            if all(kv.get(k) == v for k, v in want.items()):
                return kv
        pytest.fail("never saw %r; last %r" % (want, line))

    try:
        until({"idle": "1", "qlen": "0", "max": str(BACKLOG)})
        c = connect(path)
        c.sendall(b"\1\1\0\1\0\x08\0\0")    # half a begin record
        until({"idle": "0", "qlen": "0"})
        waiting = connect(path)
        until({"idle": "0", "qlen": "1"})
        c.close()
        waiting.close()
    finally:
        kill_quiet(child)


# ------------------------------------------------------- the three, wired ---

@pytest.mark.parametrize("name,sig", [("libfcgi", signal.SIGUSR1),
                                      ("php", signal.SIGUSR1),
                                      ("testworker", signal.SIGTERM)])
def test_minipool_grows_from_the_queue_and_releases_without_loss(
        workers, name, sig):
    """tests/minipool wires the probes and the decisions the plainest way:
    a burst of 8 one-second requests grows it from 2 to 8; under a
    trickle it goes back to 2 after -w, one oldest idle worker at a time,
    each leaving with status 0, and no request fails."""
    prog = PROGRAMS[name][0]
    if not os.access(prog, os.X_OK):
        pytest.skip("%s is missing" % prog)
    lsock, path = workers.listener("mp.sock")
    params = workers.php_setup() if name == "php" else {}
    p = subprocess.Popen([MINIPOOL, "2", "8", "500", str(int(sig)), prog],
                         stdin=lsock.fileno(), stdout=subprocess.PIPE,
                         text=True, env=dict(os.environ,
                                             PHP_FCGI_CHILDREN="0"))
    workers.procs.append(p)
    lines = []
    reader = threading.Thread(
        target=lambda: lines.extend(x.strip() for x in p.stdout),
        daemon=True)
    reader.start()

    def sizes():
        return [int(x[5:]) for x in list(lines) if x.startswith("size=")]
    assert wait_for(lambda: sizes()[-1:] == [2], 10), lines
    t0 = time.monotonic()
    out = fc.parallel(8, lambda i: fc.request(
        path, params=params, query="sleep=1000", timeout=10))
    took = time.monotonic() - t0
    assert all(isinstance(r, fc.Response) and b"slept=1000" in r.body or
               b"served=1" in getattr(r, "body", b"") for r in out), out
    assert max(sizes()) == 8, "\n".join(lines)
    assert took < 3.5, took
    # The trickle goes on for a second after the pool is back at 2.
    t1 = time.monotonic()
    served, back = 0, None
    while time.monotonic() < t1 + 10 and (
            back is None or time.monotonic() < back + 1):
        r = fc.request(path, params=params, query="sleep=5", timeout=10)
        assert r.status == 200 and r.body, r
        served += 1
        if back is None and sizes()[-1] == 2:
            back = time.monotonic()
        time.sleep(0.02)
    assert back is not None and served >= 5, (served, lines)
    retired = [x.split("=")[1] for x in lines if x.startswith("retire")]
    started = [x.split("=")[1] for x in lines if x.startswith("start ")]
    assert len(retired) >= 6, "\n".join(lines)
    assert set(retired) <= set(started), lines
    for pid in retired:
        assert wait_for(lambda: "exit pid=%s status=0" % pid in lines, 2), \
            (pid, lines)
    p.terminate()
    p.wait(5)


def test_minipool_second_wave_is_not_counted_as_on_its_way(workers):
    """Workers started for a first wave take its connections at once; a
    second wave 300 ms later must grow the pool again then, not once the
    first workers are no longer counted as starting (idle_started())."""
    lsock, path = workers.listener("mp.sock")
    p = subprocess.Popen([MINIPOOL, "2", "8", "5000", str(int(signal.SIGTERM)),
                          PROGRAMS["testworker"][0]],
                         stdin=lsock.fileno(), stdout=subprocess.PIPE,
                         text=True)
    workers.procs.append(p)
    seen = []
    threading.Thread(target=lambda: seen.extend(
        (time.monotonic(), x.strip()) for x in p.stdout), daemon=True).start()
    assert wait_for(lambda: any(x == "size=2" for _, x in seen), 10)
    t0 = time.monotonic()
    jobs = [fc.spawn(fc.request, path, query="sleep=1500", timeout=10)
            for _ in range(4)]
    time.sleep(0.3)
    jobs += [fc.spawn(fc.request, path, query="sleep=1500", timeout=10)
             for _ in range(4)]
    assert all(j.result(10).status == 200 for j in jobs)
    full = [t - t0 for t, x in seen if x == "size=8"]
    # Seen as started, the first wave's workers let the second one grow
    # the pool at once; counted as starting, they hold it back for the
    # 2 s of START_MS.
    assert full and full[0] < 1.3, "\n".join(["%.3f %s" % (t - t0, x)
                                          for t, x in seen])
