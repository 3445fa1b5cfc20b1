"""The listening socket (issues 6 and 7): -s as a TCP address, the in-use
probe that cannot hang, a restart right after SIGKILL, the -u chown that
cannot be redirected, and systemd socket activation.  Loopback only."""

import ctypes
import os
import signal
import socket
import stat
import subprocess
import sys
import time

import pytest

from conftest import (ROOT, SANITIZER_MARKS, alive, fds, free_port,
                      sock_address, user, wait_for)
from fcgiclient import FcgiError, request

needs_root = pytest.mark.needs_root


def pidfd_getfd(pid, fd):
    """A copy of descriptor fd of process pid (Linux pidfd_getfd)."""
    libc = ctypes.CDLL(None, use_errno=True)
    pidfd = os.pidfd_open(pid)
    try:
        n = libc.syscall(438, pidfd, fd, 0)     # SYS_pidfd_getfd
        if n < 0:
            pytest.skip("pidfd_getfd: %s" % os.strerror(ctypes.get_errno()))
        return n
    finally:
        os.close(pidfd)


def sock_inode(pid, fd):
    """The socket inode behind descriptor fd of pid, or None."""
    t = fds(pid).get(fd, "")
    return int(t[8:-1]) if t.startswith("socket:[") else None


# ---------------------------------------------------------- bad values ---

BAD_SPECS = [
    ("port-range", "127.0.0.1:99999", ["bad port"]),
    ("port-zero", "127.0.0.1:0", ["bad port"]),
    ("port-word", "127.0.0.1:http", ["bad port"]),
    ("port-empty", "127.0.0.1:", ["bad port"]),
    ("no-host", ":9000", ["missing host"]),
    ("v6-no-brackets", "::1:9000", ["brackets"]),
    ("v6-no-close", "[::1:9000", ["]"]),
    ("v6-no-port", "[::1]9000", [":PORT"]),
    ("v6-not-v6", "[127.0.0.1]:9000", ["IPv6"]),
    ("unresolvable", "no-such-host.invalid:9000", ["resolve"]),
    ("unix-empty", "unix:", ["empty"]),
    ("unix-dir", "/tmp/", ["file name"]),
    ("unix-long", "unix:/tmp/" + "y" * 120, ["long"]),
]


@pytest.mark.parametrize("spec,words", [b[1:] for b in BAD_SPECS],
                         ids=[b[0] for b in BAD_SPECS])
def test_bad_address(kfcgi, spec, words):
    r = kfcgi.run(["-s", spec], timeout=30)
    assert r.rc == 1, r
    lines = r.stderr.splitlines()
    msgs = [l for l in lines if l.startswith("kfcgi:")]
    assert len(msgs) == 1, r
    assert msgs[0].startswith("kfcgi: -s: %s: " % spec), r
    assert all(w in msgs[0] for w in words), (words, msgs)
    assert any(l.startswith("usage:") for l in lines), r


def test_u_with_tcp_refused(kfcgi):
    spec = "127.0.0.1:%d" % free_port()
    r = kfcgi.run(["-u", "nobody", "-s", spec], timeout=15)
    assert r.rc == 1, r
    msgs = [l for l in r.stderr.splitlines() if l.startswith("kfcgi:")]
    assert len(msgs) == 1 and msgs[0].startswith("kfcgi: -u: nobody:") and \
        "Unix" in msgs[0], r
    assert "usage:" in r.stderr


def test_colon_path_with_unix_prefix(kfcgi, sockdir):
    path = os.path.join(sockdir, "a:b.sock")
    kfcgi.start(["-s", "unix:" + path])
    assert stat.S_ISSOCK(os.lstat(path).st_mode)
    r = request(path)
    assert r.status == 200 and int(r.kv["ppid"]) == kfcgi.pid, r


# ----------------------------------------------------------------- TCP ---

@pytest.mark.parametrize("family", ["ipv4", "ipv6"])
@pytest.mark.parametrize("pool", ["fixed", "variable"])
def test_tcp_serves(kfcgi, family, pool):
    if family == "ipv4":
        port = free_port()
        spec, addr = "127.0.0.1:%d" % port, ("127.0.0.1", port)
    else:
        port = free_port(socket.AF_INET6, "::1")
        spec, addr = "[::1]:%d" % port, ("::1", port)
    args = ["-s", spec, "-n", "2"] + (["-r", "-N", "4"] if pool ==
                                      "variable" else [])
    kfcgi.start(args)
    assert sock_address(kfcgi.sock) == addr
    ws = kfcgi.wait_workers(2)
    for i in range(10):
        r = request(addr, query="n=%d" % i)
        assert r.status == 200, r
        assert r.kv["mode"] == ("extension" if pool == "variable" else
                                "classic"), r
    if pool == "fixed":
        # Workers accept on the TCP socket itself, as descriptor 0.
        lfd = pidfd_getfd(ws[0], 0)
        try:
            s = socket.socket(fileno=lfd)
            assert s.family == (socket.AF_INET if family == "ipv4" else
                                socket.AF_INET6)
            assert s.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN)
            assert s.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR)
            assert s.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
            if family == "ipv6":
                # [::1] is IPv6 only; *:PORT is the dual-stack form.
                assert s.getsockopt(socket.IPPROTO_IPV6,
                                    socket.IPV6_V6ONLY) == 1
        finally:
            s.close()
    assert kfcgi.stop() == 0


def test_tcp_host_name(kfcgi):
    """A name is resolved at start-up; kfcgi listens on its first address
    (localhost: ::1 or 127.0.0.1, as the resolver orders them)."""
    port = free_port()
    kfcgi.start(["-s", "localhost:%d" % port], probe="listen")
    kfcgi.wait_workers(3)
    served = []
    for host in ("127.0.0.1", "::1"):
        try:
            r = request((host, port), query="info")
            served.append(int(r.kv["ppid"]))
        except FcgiError:
            pass
    assert served == [kfcgi.pid], served


@needs_root
@pytest.mark.time_limit(60)
def test_tcp_all_addresses_in_netns(bins, sockdir):
    """*:PORT listens on IPv4 and IPv6 at once.  Run in a private network
    namespace holding only loopback, so that nothing is exposed."""
    if subprocess.run(["unshare", "-n", "true"]).returncode != 0:
        pytest.skip("cannot make a network namespace (unshare -n)")
    client = (
        "import sys, time\n"
        "sys.path.insert(0, %r)\n"
        "import fcgiclient\n"
        "for _ in range(200):\n"
        "    try:\n"
        "        fcgiclient.request(('127.0.0.1', 9000)); break\n"
        "    except fcgiclient.FcgiError:\n"
        "        time.sleep(0.05)\n"
        "for a in ('127.0.0.1', '::1'):\n"
        "    r = fcgiclient.request((a, 9000), query='info')\n"
        "    print(a, r.status, r.kv['mode'])\n" % os.path.join(ROOT, "tests"))
    script = (
        "ip link set lo up || exit 9\n"
        "\"$1\" -d -p / -s '*:9000' -- \"$2\" --startlog=%s/starts &\n"
        "k=$!\n"
        "\"$3\" -c \"$4\"; rc=$?\n"
        "kill $k; wait $k; exit $rc\n" % sockdir)
    p = subprocess.run(["unshare", "-n", "sh", "-c", script, "sh",
                        bins.need("kfcgi"), bins.need("testworker"),
                        sys.executable, client], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=50)
    out = p.stdout.decode()
    assert p.returncode == 0, (p, p.stderr.decode()[-2000:])
    assert "127.0.0.1 200 classic" in out and "::1 200 classic" in out, out


# --------------------------------------------------------- the probe ---

def test_full_backlog_is_in_use_quickly(kfcgi, sockdir):
    """A live socket whose queue is full must not hang start-up."""
    path = os.path.join(sockdir, "full.sock")
    lst = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    lst.bind(path)
    lst.listen(0)
    fillers = []
    try:
        while len(fillers) < 64:
            c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            c.setblocking(False)
            try:
                c.connect(path)
            except BlockingIOError:
                c.close()
                break
            fillers.append(c)
        assert len(fillers) < 64, "could not fill the listen queue"
        ino = os.stat(path).st_ino
        r = kfcgi.run(sock=path, timeout=8)
        assert r.rc == 1, r
        assert "kfcgi: socket: %s: in use" % path in r.stderr, r
        assert r.elapsed < 4, r
        assert os.stat(path).st_ino == ino
    finally:
        for c in fillers:
            c.close()
        lst.close()


def test_socket_file_is_left_alone_when_not_a_socket(kfcgi, sockdir):
    d = os.path.join(sockdir, "d")
    os.mkdir(d)
    fifo = os.path.join(d, "fifo")
    os.mkfifo(fifo)
    before = os.lstat(fifo)
    r = kfcgi.run(sock=fifo, timeout=8)
    assert r.rc == 1 and "exists and is not a socket" in r.stderr, r
    after = os.lstat(fifo)
    assert (after.st_ino, after.st_mode) == (before.st_ino, before.st_mode)
    assert os.listdir(d) == ["fifo"], "a temporary file was left behind"


@pytest.mark.time_limit(60)
@pytest.mark.parametrize("kind", ["unix", "tcp"])
def test_restart_right_after_sigkill(kfcgi_factory, sockdir, kind):
    """The workers of a SIGKILLed manager may still hold the socket for a
    moment (until its guard has killed them); a manager started at once
    waits for them instead of refusing."""
    spec = (os.path.join(sockdir, "r.sock") if kind == "unix" else
            "127.0.0.1:%d" % free_port())
    k1 = kfcgi_factory().start(["-s", spec])
    old = k1.wait_workers(3)
    k1.signal(signal.SIGKILL)
    k1.wait_exit()
    t0 = time.monotonic()
    k2 = kfcgi_factory().start(["-s", spec], timeout=10)
    k2.wait_workers(3)
    assert not any(alive(w) for w in old)
    assert k2.running(), k2.log()
    assert time.monotonic() - t0 < 5
    r = k2.request(query="info")
    assert r.status == 200 and int(r.kv["ppid"]) == k2.pid, r


@pytest.mark.time_limit(30)
def test_in_use_refused_after_about_a_second(kfcgi_factory):
    k1 = kfcgi_factory().start()
    k1.wait_workers(3)
    r = kfcgi_factory().run(sock=k1.sock, timeout=10)
    assert r.rc == 1 and "in use" in r.stderr, r
    assert 0.7 < r.elapsed < 4, r


# ------------------------------------------- -u cannot be redirected ---

RACER = r"""
import ctypes, os, sys, time
libc = ctypes.CDLL(None, use_errno=True)
names = [os.fsencode(n) for n in sys.argv[2:]]
pairs = list(zip(names[::2], names[1::2]))
end = time.monotonic() + float(sys.argv[1])
while time.monotonic() < end:
    for _ in range(500):
        for a, b in pairs:      # AT_FDCWD, RENAME_EXCHANGE
            libc.renameat2(-100, a, -100, b, 2)
"""


def socket_dir(sockdir, shared):
    """pub/ (0777, writable by anyone), pub/run/ the socket's directory:
    root's 0755 when not shared, nobody's when shared."""
    pub = os.path.join(sockdir, "pub")
    os.mkdir(pub)
    os.chmod(pub, 0o777)
    run = os.path.join(pub, "run")
    os.mkdir(run)
    if shared:
        os.chown(run, *user("nobody"))
    return pub, run


@needs_root
@pytest.mark.time_limit(90)
@pytest.mark.parametrize("shared", [False, True],
                         ids=["root-dir", "others-dir"])
def test_u_chown_not_redirected(kfcgi_factory, sockdir, shared):
    """nobody swaps the socket's directory for a symlink to a directory
    holding root's file of the same name, as fast as it can, while kfcgi
    -u nobody starts again and again: root's file keeps its owner.  Where
    nobody may write the socket's directory, it also swaps the socket's
    name with a hard link to root's file (made when it could be)."""
    pub, run = socket_dir(sockdir, shared)
    victim_dir = os.path.join(sockdir, "victim")
    os.mkdir(victim_dir)
    victim = os.path.join(victim_dir, "app.sock")
    with open(victim, "w") as f:
        f.write("root's\n")
    os.chmod(victim, 0o644)
    link = os.path.join(pub, "run.link")
    os.symlink(victim_dir, link)
    os.lchown(link, *user("nobody"))
    nobody = user("nobody")

    def as_nobody():
        os.setgid(nobody[1])
        os.setuid(nobody[0])
    swaps = [run, link]
    evil = os.path.join(run, "evil")
    if shared:
        swaps += [os.path.join(run, "app.sock"), evil]
    runfd = os.open(run, os.O_RDONLY | os.O_DIRECTORY)
    racer = subprocess.Popen([sys.executable, "-c", RACER, "60"] + swaps,
                             preexec_fn=as_nobody)
    try:
        time.sleep(0.2)
        spec = os.path.join(run, "app.sock")
        k = kfcgi_factory()
        argv = k._argv(["-u", "nobody", "-s", spec], "/nonexistent", (),
                       spec, True)
        env = k._env(argv, None)
        end, made = time.monotonic() + 4, 0
        for i in range(1000):
            if time.monotonic() > end:
                break
            if shared:
                # A fresh hard link each time (kfcgi may remove it as
                # stale), made through the real directory, not its path.
                for name in ("app.sock", "evil"):
                    try:
                        os.unlink(name, dir_fd=runfd)
                    except FileNotFoundError:
                        pass
                os.link(victim, "evil", dst_dir_fd=runfd)
            r = subprocess.run(argv, env=env, stdin=subprocess.DEVNULL,
                               stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, timeout=10)
            err = r.stderr.decode("utf-8", "replace")
            assert r.returncode == 1, err
            assert not any(m in err for m in SANITIZER_MARKS), err
            made += "kfcgi: program: /nonexistent" in err
            st = os.stat(victim)
            assert (st.st_uid, st.st_gid) == (0, 0), \
                "run %d: root's file was given to nobody" % i
    finally:
        racer.kill()
        racer.wait()
        os.close(runfd)
    # The socket was made (and owned) in some of the runs, not refused.
    assert made >= 3, "only %d of %d runs got past the socket" % (made, i)
    st = os.stat(victim)
    assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (0, 0, 0o644)


@needs_root
@pytest.mark.parametrize("shared", [False, True],
                         ids=["root-dir", "others-dir"])
def test_u_owner_and_mode(kfcgi_factory, sockdir, shared):
    """Both ways of making the socket end with the same result, replace a
    stale socket, and leave no temporary entry behind."""
    pub, run = socket_dir(sockdir, shared)
    path = os.path.join(run, "app.sock")
    for round in range(2):
        k = kfcgi_factory().start(["-u", "nobody", "-s", path])
        st = os.lstat(path)
        assert stat.S_ISSOCK(st.st_mode)
        assert stat.S_IMODE(st.st_mode) == 0o660, oct(st.st_mode)
        assert (st.st_uid, st.st_gid) == user("nobody")
        assert os.listdir(run) == ["app.sock"], os.listdir(run)
        r = k.request()
        assert r.status == 200 and int(r.kv["ppid"]) == k.pid, r
        assert k.stop() == 0


# ---------------------------------------------------- socket activation ---

def start_activated(k, bins, lsock, args, foreground=True, pid_env=None,
                    nfds="1", prog=None):
    """Start kfcgi as systemd would: the listening socket as descriptor 3,
    LISTEN_PID its pid (the shell's, kept by exec), LISTEN_FDS=1."""
    fd = lsock.fileno() if isinstance(lsock, socket.socket) else lsock
    argv = [bins.need("kfcgi")] + (["-d"] if foreground else []) + \
        ["-p", "/"] + list(args) + ["--", prog or bins.need("testworker")]
    move = "" if fd == 3 else "exec 3<&%d %d<&-; " % (fd, fd)
    script = move + "export LISTEN_PID=%s LISTEN_FDS=%s " \
        "LISTEN_FDNAMES=fcgi; exec \"$@\"" % (pid_env or "$$", nfds)
    log = open(k.logpath, "ab")
    try:
        k.proc = subprocess.Popen(
            ["bash", "-c", script, "bash"] + argv, pass_fds=(fd,),
            stdin=subprocess.DEVNULL, stdout=log, stderr=log,
            env=k._env(argv, None), cwd=k.workdir)
    finally:
        log.close()
    k.pid, k.argv = k.proc.pid, argv
    return k


def unix_listener(path):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(path)
    s.listen(16)
    return s


def no_listen_env(pids):
    for w in pids:
        with open("/proc/%d/environ" % w, "rb") as f:
            env = f.read().split(b"\0")
        assert not [e for e in env if e.startswith(b"LISTEN_")], (w, env)


@pytest.mark.parametrize("pool", ["fixed", "variable"])
def test_activation_unix(kfcgi, bins, sockdir, pool):
    path = os.path.join(sockdir, "act.sock")
    other = os.path.join(sockdir, "other.sock")
    lsock = unix_listener(path)
    ino = os.stat(path).st_ino
    args = ["-s", other, "-n", "2"] + (["-r"] if pool == "variable" else [])
    start_activated(kfcgi, bins, lsock, args)
    kfcgi.sock = path
    kfcgi._wait_ready(15, "listen" if pool == "variable" else "connect")
    ws = kfcgi.wait_workers(2)
    for i in range(5):
        r = kfcgi.request(query="info&n=%d" % i)
        assert r.status == 200 and int(r.kv["ppid"]) == kfcgi.pid, r
    assert not os.path.exists(other), "-s was created as well"
    assert os.stat(path).st_ino == ino, "the socket was re-created"
    no_listen_env(ws)
    if pool == "fixed":
        want = os.fstat(lsock.fileno()).st_ino
        assert all(sock_inode(w, 0) == want for w in ws), \
            [fds(w) for w in ws]
    assert kfcgi.stop() == 0
    assert os.stat(path).st_ino == ino, "the socket was removed at exit"
    lsock.close()


@pytest.mark.parametrize("pool", ["fixed", "variable"])
def test_activation_tcp(kfcgi, bins, pool):
    lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(16)
    port = lsock.getsockname()[1]
    args = ["-n", "2"] + (["-r"] if pool == "variable" else [])
    start_activated(kfcgi, bins, lsock, args)
    kfcgi.sock = "127.0.0.1:%d" % port
    kfcgi._wait_ready(15, "connect")
    ws = kfcgi.wait_workers(2)
    for i in range(5):
        r = kfcgi.request(query="info&n=%d" % i)
        assert r.status == 200 and int(r.kv["ppid"]) == kfcgi.pid, r
    no_listen_env(ws)
    assert "127.0.0.1:%d: passed by the service manager" % port in \
        kfcgi.log(), kfcgi.log()
    assert kfcgi.stop() == 0
    lsock.close()


def test_activation_nonblocking_socket(kfcgi, bins):
    """A socket passed in non-blocking mode is made blocking for classic
    workers, as one kfcgi makes itself would be (libfcgi needs it)."""
    lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(16)
    lsock.setblocking(False)
    port = lsock.getsockname()[1]
    start_activated(kfcgi, bins, lsock, ["-n", "2"],
                    prog=bins.need("libfcgi_worker"))
    kfcgi.sock = "127.0.0.1:%d" % port
    kfcgi._wait_ready(15, "connect")
    ws = kfcgi.wait_workers(2)
    for i in range(5):
        r = kfcgi.request(query="n=%d" % i, timeout=5)
        assert r.status == 200 and b"libfcgi pid=" in r.body, r
    assert kfcgi.workers() == ws
    lsock.close()


def test_activation_daemon_mode(kfcgi, bins, sockdir):
    """Without -d kfcgi forks; LISTEN_PID is the pid it was started as."""
    path = os.path.join(sockdir, "act.sock")
    other = os.path.join(sockdir, "daemon-other.sock")
    lsock = unix_listener(path)
    start_activated(kfcgi, bins, lsock, ["-s", other], foreground=False)
    assert kfcgi.proc.wait(15) == 0, kfcgi.log()
    kfcgi.sock = other
    daemons = wait_for(kfcgi.find_daemons, 10)
    assert len(daemons) == 1, daemons
    kfcgi.pid, kfcgi.sock = daemons[0], path
    kfcgi.wait_workers(3)
    r = kfcgi.request(query="info")
    assert r.status == 200 and int(r.kv["ppid"]) == kfcgi.pid, r
    assert not os.path.exists(other)
    lsock.close()


def test_activation_not_for_us(kfcgi, bins, sockdir):
    """LISTEN_PID of another process: kfcgi makes its own socket, and the
    variables do not reach the workers."""
    path = os.path.join(sockdir, "act.sock")
    own = os.path.join(sockdir, "own.sock")
    lsock = unix_listener(path)
    start_activated(kfcgi, bins, lsock, ["-s", own], pid_env="1")
    kfcgi.sock = own
    kfcgi._wait_ready(15, "connect")
    no_listen_env(kfcgi.wait_workers(3))
    assert kfcgi.request().status == 200
    lsock.close()


@pytest.mark.parametrize("what,words", [
    ("two", "LISTEN_FDS=2: exactly one socket"),
    ("unbound", "descriptor 3: not listening"),
    ("datagram", "descriptor 3: not a stream socket"),
    ("pipe", "descriptor 3: Socket operation on non-socket"),
])
def test_activation_bad(kfcgi, bins, sockdir, what, words):
    own = os.path.join(sockdir, "own.sock")
    keep = []
    if what == "two":
        fd = unix_listener(os.path.join(sockdir, "act.sock"))
    elif what == "unbound":
        fd = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    elif what == "datagram":
        fd = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        fd.bind(("127.0.0.1", 0))
    else:
        fd, w = os.pipe()
        keep.append(w)
    start_activated(kfcgi, bins, fd, ["-s", own],
                    nfds="2" if what == "two" else "1")
    rc = kfcgi.proc.wait(15)
    log = kfcgi.log()
    assert rc == 1, log
    assert "kfcgi: socket activation: " + words in log, log
    assert not os.path.exists(own)


# ------------------------------------------- other workers over TCP ---

def test_libfcgi_and_php_over_tcp(kfcgi_factory, bins, sockdir):
    """Workers no one here wrote accept on a TCP descriptor 0 as well:
    Debian's libfcgi and php-cgi, in the fixed pool."""
    port = free_port()
    k = kfcgi_factory().start(["-s", "127.0.0.1:%d" % port, "-n", "2"],
                              prog=bins.need("libfcgi_worker"))
    ws = k.wait_workers(2)
    for i in range(5):
        r = request(("127.0.0.1", port), query="n=%d" % i)
        assert r.status == 200 and b"libfcgi pid=" in r.body, r
        assert int(r.body.split(b"=")[1]) in ws, (r, ws)
    assert k.stop() == 0
    php = "/usr/bin/php-cgi"
    if not os.access(php, os.X_OK):
        pytest.skip("%s is missing (Debian package php-cgi)" % php)
    script = os.path.join(sockdir, "t.php")
    with open(script, "w") as f:
        f.write('<?php echo "php over tcp ", $_GET["n"] ?? "-", "\\n";\n')
    port = free_port()
    k = kfcgi_factory().start(["-s", "127.0.0.1:%d" % port, "-n", "2"],
                              prog=php, env={"PHP_FCGI_CHILDREN": "0"})
    k.wait_workers(2)
    params = {"SCRIPT_FILENAME": script, "SCRIPT_NAME": "/t.php",
              "REDIRECT_STATUS": "200"}
    for i in range(5):
        r = request(("127.0.0.1", port), params=params, query="n=%d" % i,
                    timeout=20)
        assert r.status == 200, r
        assert r.body == b"php over tcp %d\n" % i, r
    assert k.stop() == 0
