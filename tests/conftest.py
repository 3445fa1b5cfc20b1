"""pytest harness for kfcgi: binaries, a process helper, and clean-up.

Fixtures
    bins            paths of the built programs (repo root = parent of tests/)
    kfcgi           a Kfcgi helper (not started yet)
    kfcgi_factory   call it for more Kfcgi helpers in one test
    sockdir         a short private directory for socket paths
    jail            a factory: jail(files) builds a jail dir (mode 0755) with
                    a copy of the static test worker at /testworker

Markers
    needs_root      skipped unless running as uid 0 (CI runs as root)
    time_limit(s)   per-test wall-clock limit in seconds (default 120)

Every Kfcgi helper is torn down after its test: kfcgi, its workers (every
worker pid ever seen), and any process whose command line names the test's
private directories are killed; the test FAILS if a log shows a sanitizer
report (AddressSanitizer, LeakSanitizer, UBSan "runtime error:").
"""

import os
import pwd
import grp
import shutil
import signal
from signal import SIGTERM
import socket
import subprocess
import sys
import tempfile
import time

import pytest

TESTS = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(TESTS)
sys.path.insert(0, TESTS)

import fcgiclient  # noqa: E402

TAG_VAR = "KFCGI_TEST_TAG"
SANITIZER_MARKS = ("AddressSanitizer", "runtime error:", "LeakSanitizer")
DEFAULT_TIME_LIMIT = 120

BINARIES = {
    "kfcgi": os.path.join(ROOT, "kfcgi"),
    "testworker": os.path.join(ROOT, "tests", "testworker"),
    "hello": os.path.join(ROOT, "examples", "hello"),
    "libfcgi_worker": os.path.join(ROOT, "tests", "libfcgi-worker"),
    "kfcgi_load": os.path.join(ROOT, "kfcgi-load"),
}


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "needs_root: needs uid 0 (skipped otherwise; CI is root)")
    config.addinivalue_line(
        "markers", "time_limit(seconds): wall-clock limit for one test")


def pytest_terminal_summary(terminalreporter):
    """The figures of the fault-injection runs (tests/loaddriver.py)."""
    loaddriver = sys.modules.get("loaddriver")
    if loaddriver is not None and loaddriver.FIGURES:
        terminalreporter.write_sep("-", "load under faults")
        for line in loaddriver.FIGURES:
            terminalreporter.write_line(line)


def pytest_runtest_setup(item):
    if item.get_closest_marker("needs_root") and os.geteuid() != 0:
        pytest.skip("needs root")


class TimeLimitExceeded(Exception):
    pass


@pytest.fixture(autouse=True)
def _time_limit(request):
    """Abort a test that runs too long (SIGALRM in the main thread)."""
    m = request.node.get_closest_marker("time_limit")
    limit = m.args[0] if m else DEFAULT_TIME_LIMIT

    def on_alarm(signum, frame):
        raise TimeLimitExceeded("test exceeded its time limit of %ss" % limit)

    old = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, limit)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


class Bins(dict):
    """name -> path; .need(name) fails the test if it is not built."""

    def need(self, name):
        path = self[name]
        if not os.access(path, os.X_OK):
            pytest.fail("%s is not built (%s): run `make all %s` first" %
                        (name, path, " ".join(
                            ["tests/testworker", "tests/libfcgi-worker"])))
        return path

    def __getattr__(self, name):
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name)


@pytest.fixture(scope="session")
def bins():
    return Bins(BINARIES)


# ---------------------------------------------------------------- /proc ---

def proc_stat(pid):
    """(state, ppid, starttime) of pid, or None if it does not exist."""
    try:
        with open("/proc/%d/stat" % pid, "rb") as f:
            data = f.read().decode("latin-1")
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    except OSError:
        return None
    rest = data[data.rfind(")") + 2:].split()
    # rest[0] = state (field 3), rest[1] = ppid (4), rest[19] = starttime (22)
    return rest[0], int(rest[1]), int(rest[19])


def pgid_of(pid):
    """Process group of pid, or None."""
    try:
        with open("/proc/%d/stat" % pid, "rb") as f:
            data = f.read().decode("latin-1")
    except OSError:
        return None
    return int(data[data.rfind(")") + 2:].split()[2])


def all_pids():
    out = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            out.append(int(d))
    return out


def children(ppid, with_zombies=False):
    """Direct children of ppid (not zombies unless asked)."""
    out = []
    for pid in all_pids():
        st = proc_stat(pid)
        if st and st[1] == ppid and (with_zombies or st[0] not in "ZX"):
            out.append(pid)
    return sorted(out)


def descendants(pid):
    tree = {}
    for p in all_pids():
        st = proc_stat(p)
        if st:
            tree.setdefault(st[1], []).append(p)
    out, todo = [], [pid]
    while todo:
        for c in tree.get(todo.pop(), []):
            out.append(c)
            todo.append(c)
    return out


def alive(pid, starttime=None):
    """True if pid exists, is not a zombie, and (if given) started then."""
    st = proc_stat(pid)
    if st is None or st[0] in "ZX":
        return False
    return starttime is None or st[2] == starttime


def cmdline(pid):
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            return [a.decode("utf-8", "replace")
                    for a in f.read().split(b"\0") if a]
    except OSError:
        return []


def pids_with_arg(text):
    """Live processes with `text` in their command line."""
    me = os.getpid()
    out = []
    for pid in all_pids():
        if pid == me:
            continue
        if any(text in a for a in cmdline(pid)) and alive(pid):
            out.append(pid)
    return sorted(out)


def pids_with_env(entry):
    """Live processes whose environment holds the exact NAME=VALUE entry."""
    me = os.getpid()
    want = entry.encode()
    out = []
    for pid in all_pids():
        if pid == me:
            continue
        try:
            with open("/proc/%d/environ" % pid, "rb") as f:
                env = f.read().split(b"\0")
        except OSError:
            continue
        if want in env and alive(pid):
            out.append(pid)
    return sorted(out)


def pids_using(directory):
    """Live processes with a descriptor, cwd or root inside directory."""
    me = os.getpid()
    prefix = os.path.realpath(directory) + "/"
    out = []
    for pid in all_pids():
        if pid == me:
            continue
        links = []
        for name in ("cwd", "root"):
            try:
                links.append(os.readlink("/proc/%d/%s" % (pid, name)))
            except OSError:
                pass
        links += fds(pid).values()
        if any((l + "/").startswith(prefix) for l in links) and alive(pid):
            out.append(pid)
    return sorted(out)


def listen_queue(path):
    """(queued connections, backlog) of the listening Unix socket bound to
    path, from the kernel's sock_diag (what `ss -xl` shows as Recv-Q and
    Send-Q); None if no listening socket has that path."""
    import struct
    NETLINK_SOCK_DIAG, SOCK_DIAG_BY_FAMILY = 4, 20
    NLM_F_REQUEST, NLM_F_DUMP, NLMSG_DONE, NLMSG_ERROR = 1, 0x300, 3, 2
    UDIAG_SHOW_NAME, UDIAG_SHOW_RQLEN = 0x1, 0x10
    UNIX_DIAG_NAME, UNIX_DIAG_RQLEN = 0, 4
    TCP_LISTEN = 10
    req = struct.pack("=BBHIIIII", socket.AF_UNIX, 0, 0, 1 << TCP_LISTEN, 0,
                      UDIAG_SHOW_NAME | UDIAG_SHOW_RQLEN, 0xffffffff,
                      0xffffffff)
    msg = struct.pack("=IHHII", 16 + len(req), SOCK_DIAG_BY_FAMILY,
                      NLM_F_REQUEST | NLM_F_DUMP, 1, 0) + req
    want = os.fsencode(path)
    with socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM,
                       NETLINK_SOCK_DIAG) as nl:
        nl.settimeout(5)
        nl.send(msg)
        found = None
        while True:
            data = nl.recv(65536)
            off = 0
            while off + 16 <= len(data):
                mlen, mtype = struct.unpack_from("=IH", data, off)
                if mtype in (NLMSG_DONE, NLMSG_ERROR) or mlen < 16:
                    return found
                body = data[off + 16:off + mlen]
                attrs, name, rq = body[16:], None, None
                a = 0
                while a + 4 <= len(attrs):
                    alen, atype = struct.unpack_from("=HH", attrs, a)
                    if alen < 4:
                        break
                    val = attrs[a + 4:a + alen]
                    if atype == UNIX_DIAG_NAME:
                        name = val.rstrip(b"\0")
                    elif atype == UNIX_DIAG_RQLEN and len(val) >= 8:
                        rq = struct.unpack("=II", val[:8])
                    a += (alen + 3) & ~3
                if name == want and rq is not None:
                    found = rq
                off += (mlen + 3) & ~3


def sock_address(spec):
    """A -s value as a client connects to it: the Unix path, or a (host,
    port) tuple for HOST:PORT and [IPV6]:PORT."""
    spec = str(spec)
    if spec.startswith("unix:"):
        return spec[5:]
    if ":" not in spec:
        return spec
    host, _, port = spec.rpartition(":")
    return (host.strip("[]"), int(port))


def tcp_listening(port):
    """Whether a TCP socket listens on port (/proc/net/tcp and tcp6)."""
    for name in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(name) as f:
                next(f)
                for line in f:
                    parts = line.split()
                    if parts[3] == "0A" and \
                            int(parts[1].rsplit(":", 1)[1], 16) == port:
                        return True
        except OSError:
            pass
    return False


def free_port(family=socket.AF_INET, host="127.0.0.1"):
    """A TCP port nothing listens on just now."""
    s = socket.socket(family, socket.SOCK_STREAM)
    s.bind((host, 0))
    port = s.getsockname()[1]
    s.close()
    return port


def tcp_accepts(port, host="127.0.0.1"):
    """Whether a connection to host:port is accepted (a server is up)."""
    try:
        socket.create_connection((host, port), 1).close()
        return True
    except OSError:
        return False


def proc_status(pid):
    d = {}
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                k, _, v = line.partition(":")
                d[k] = v.strip()
    except OSError:
        pass
    return d


def fds(pid):
    """Open descriptor numbers of pid -> readlink target."""
    out = {}
    try:
        names = os.listdir("/proc/%d/fd" % pid)
    except OSError:
        return out
    for n in names:
        try:
            out[int(n)] = os.readlink("/proc/%d/fd/%s" % (pid, n))
        except OSError:
            pass
    return out


def wait_for(cond, timeout, interval=0.05):
    """Poll cond() until truthy or timeout; return its last value."""
    deadline = time.monotonic() + timeout
    while True:
        v = cond()
        if v or time.monotonic() >= deadline:
            return v
        time.sleep(interval)


def kill_quiet(pid, sig=signal.SIGKILL):
    try:
        os.kill(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


# --------------------------------------------------------------- helper ---

def _has_opt(args, letter):
    """Whether the kfcgi options in args contain -<letter> (getopt-ish)."""
    takes = set("lnNPpSsuUwgktm")
    i = 0
    while i < len(args):
        a = args[i]
        if a == "--" or not a.startswith("-") or a == "-":
            return False
        j = 1
        while j < len(a):
            c = a[j]
            if c == letter:
                return True
            if c in takes:
                if j == len(a) - 1:
                    i += 1      # value is the next word
                break
            j += 1
        i += 1
    return False


def _opt_value(args, letter):
    for i, a in enumerate(args):
        if a == "--":
            break
        if a == "-" + letter and i + 1 < len(args):
            return args[i + 1]
        if a.startswith("-" + letter) and len(a) > 2:
            return a[2:]
    return None


class RunResult:
    def __init__(self, rc, stdout, stderr, elapsed):
        self.rc, self.stdout, self.stderr = rc, stdout, stderr
        self.elapsed = elapsed

    @property
    def output(self):
        return self.stdout + self.stderr

    def __repr__(self):
        return ("RunResult(rc=%r, elapsed=%.2f, stdout=%r, stderr=%r)" %
                (self.rc, self.elapsed, self.stdout[-2000:],
                 self.stderr[-2000:]))


class Kfcgi:
    """One kfcgi run.  See start() and run()."""

    def __init__(self, bins, workdir, name, marker):
        self.bins = bins
        self.workdir = workdir          # private dir for logs
        self.name = name
        self.marker = marker            # unique string in our command lines
        self.logpath = os.path.join(workdir, name + ".log")
        self.proc = None
        self.pid = None
        self.sock = None
        self.argv = None
        self.daemon = False
        self.start_rc = None
        self.returncode = None
        self.seen = {}                  # worker pid -> starttime
        self.extra_logs = []

    # -- building the command line
    def _argv(self, args, prog, prog_args, sock, foreground):
        args = [str(a) for a in args]
        pre = []
        if foreground and not _has_opt(args, "d"):
            pre.append("-d")
        if not _has_opt(args, "p"):
            pre += ["-p", "/"]
        if not _has_opt(args, "s"):
            pre += ["-s", str(sock)]
        if prog is None:
            prog = self.bins.need("testworker")
        argv = [self.bins.need("kfcgi")] + pre + args
        if prog is not False:
            argv += ["--", str(prog)] + [str(a) for a in prog_args]
        return argv

    def _env(self, argv, env):
        e = dict(os.environ)
        e.pop("FCGI_LISTENSOCK_DESCRIPTORS", None)
        jail = _opt_value(argv[1:], "p")
        privileged = (jail not in (None, "/") or _has_opt(argv[1:], "u") or
                      _has_opt(argv[1:], "U"))
        e["ASAN_OPTIONS"] = "detect_leaks=%d" % (0 if privileged else 1)
        e["UBSAN_OPTIONS"] = "print_stacktrace=1:halt_on_error=1"
        # Passed on to the workers: finds them at clean-up, even orphaned.
        e[TAG_VAR] = self.marker
        if env:
            for k, v in env.items():
                if v is None:
                    e.pop(k, None)
                else:
                    e[k] = str(v)
        return e

    def default_sock(self):
        return os.path.join(self.workdir, self.name + ".sock")

    def start(self, args=(), prog=None, prog_args=(), sock=None,
              foreground=True, preexec_fn=None, env=None, timeout=15.0,
              wait_workers=None, probe=None):
        """Launch kfcgi and wait until its socket accepts a connection.

        args       kfcgi options; -d (unless foreground=False), -p / and
                   -s SOCK are added unless present.
        prog       program (default: tests/testworker), prog_args its args.
        sock       socket path (default: a path in the private directory).
        foreground False: run without -d, wait for the starting process to
                   exit (its status is self.start_rc), then find the daemon
                   by the socket path in /proc/*/cmdline.
        wait_workers  if set, also wait until that many workers run.
        probe      "connect": ready when a connection is accepted (default
                   for the fixed pool); "listen": ready when the socket is
                   listening in /proc/net/unix, no connection made (default
                   with -r, where a probe connection would occupy or even
                   start a worker).
        Fails the test if kfcgi exits before it is ready.
        """
        assert self.proc is None, "start() twice on one helper"
        self.sock = str(sock) if sock is not None else (
            _opt_value([str(a) for a in args], "s") or self.default_sock())
        self.argv = self._argv(args, prog, prog_args, self.sock, foreground)
        self.daemon = not foreground
        if probe is None:
            probe = "listen" if _has_opt(self.argv[1:], "r") else "connect"
        log = open(self.logpath, "ab")
        try:
            self.proc = subprocess.Popen(
                self.argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                env=self._env(self.argv, env), preexec_fn=preexec_fn,
                cwd=self.workdir)
        finally:
            log.close()
        if foreground:
            self.pid = self.proc.pid
            self._wait_ready(timeout, probe)
        else:
            try:
                self.start_rc = self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                pytest.fail("kfcgi without -d: the starting process did not "
                            "exit within %ss\n%s" % (timeout, self.log()))
            if self.start_rc != 0:
                pytest.fail("kfcgi without -d exited %r at start-up:\n%s" %
                            (self.start_rc, self.log()))
            daemons = wait_for(lambda: self.find_daemons(), timeout)
            if len(daemons) != 1:
                pytest.fail("expected one detached kfcgi with %s in its "
                            "command line, found %r" % (self.sock, daemons))
            self.pid = daemons[0]
            self._wait_ready(timeout, probe)
        if wait_workers is not None:
            self.wait_workers(wait_workers)
        return self

    def find_daemons(self):
        kf = os.path.realpath(self.bins["kfcgi"])
        out = []
        for pid in pids_with_arg(self.sock):
            if self.proc and pid == self.proc.pid:
                continue
            cl = cmdline(pid)
            if cl and os.path.basename(cl[0]) == os.path.basename(kf):
                out.append(pid)
        # The guard is a fork of the daemon: same command line, its child.
        return [p for p in out if (proc_stat(p) or (0, 0))[1] not in out]

    def running(self):
        if self.proc is not None and self.pid == self.proc.pid:
            return self.proc.poll() is None
        return self.pid is not None and alive(self.pid)

    def listening(self):
        """Whether a socket at self.sock is listening (/proc/net/unix),
        without connecting to it."""
        addr = sock_address(self.sock)
        if isinstance(addr, tuple):
            return tcp_listening(addr[1])
        try:
            with open("/proc/net/unix") as f:
                next(f)
                for line in f:
                    parts = line.split()
                    if len(parts) >= 8 and parts[7] == self.sock and \
                            int(parts[3], 16) & 0x10000:
                        return True
        except OSError:
            pass
        return False

    def connectable(self):
        addr = sock_address(self.sock)
        if isinstance(addr, tuple):
            try:
                socket.create_connection(addr, 1.0).close()
                return True
            except OSError:
                return False
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(1.0)
        try:
            s.connect(addr)
            return True
        except OSError:
            return False
        finally:
            s.close()

    def _wait_ready(self, timeout, probe):
        deadline = time.monotonic() + timeout
        check = self.connectable if probe == "connect" else self.listening
        while time.monotonic() < deadline:
            if not self.running():
                rc = self.proc.poll() if self.proc else None
                pytest.fail("kfcgi exited (status %r) before its socket "
                            "accepted connections\nargv: %r\nlog:\n%s" %
                            (rc, self.argv, self.log()))
            if check():
                return
            time.sleep(0.05)
        pytest.fail("kfcgi socket %s did not accept a connection within %ss"
                    "\nlog:\n%s" % (self.sock, timeout, self.log()))

    def run(self, args=(), prog=None, prog_args=(), sock=None,
            foreground=True, preexec_fn=None, env=None, timeout=15.0):
        """Run kfcgi expecting it to exit by itself; return a RunResult.

        Fails the test if it is still running after `timeout` seconds.
        prog=False: no program (and no "--") on the command line.
        """
        assert self.proc is None, "run() on a used helper"
        self.sock = str(sock) if sock is not None else self.default_sock()
        self.argv = self._argv(args, prog, prog_args, self.sock, foreground)
        out = os.path.join(self.workdir, self.name + ".stdout")
        err = os.path.join(self.workdir, self.name + ".stderr")
        self.extra_logs += [out, err]
        t0 = time.monotonic()
        with open(out, "wb") as fo, open(err, "wb") as fe:
            self.proc = subprocess.Popen(
                self.argv, stdin=subprocess.DEVNULL, stdout=fo, stderr=fe,
                env=self._env(self.argv, env), preexec_fn=preexec_fn,
                cwd=self.workdir)
        self.pid = self.proc.pid
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            pytest.fail("kfcgi %r still running after %ss (expected it to "
                        "exit)\nstderr:\n%s" % (self.argv, timeout,
                                                _read(err)))
        self.returncode = rc
        return RunResult(rc, _read(out), _read(err), time.monotonic() - t0)

    # -- observing
    def guard(self):
        """kfcgi's guard: the child leading the workers' process group."""
        if self.pid is None:
            return None
        for p in children(self.pid):
            if pgid_of(p) == p:
                return p
        return None

    def workers(self):
        """Live (non-zombie) direct children of kfcgi, sorted pids: all
        but the guard, which leads their process group."""
        if self.pid is None:
            return []
        out = [p for p in children(self.pid) if pgid_of(p) != p]
        for p in out:
            if p not in self.seen:
                st = proc_stat(p)
                if st:
                    self.seen[p] = st[2]
        return out

    def wait_workers(self, n, timeout=15.0, exclude=()):
        """Wait until exactly n workers run (none of `exclude`)."""
        exclude = set(exclude)
        last = []

        def ok():
            nonlocal last
            last = self.workers()
            return len(last) == n and not (exclude & set(last))
        if not wait_for(ok, timeout):
            pytest.fail("expected %d workers%s within %ss, have %d: %r\n"
                        "log:\n%s" % (n, " (all new)" if exclude else "",
                                      timeout, len(last), last,
                                      self.log()[-3000:]))
        return last

    def signal(self, sig):
        os.kill(self.pid, sig)

    def stop(self, timeout=15.0, sig=SIGTERM):
        """Send sig, wait for kfcgi to exit; return its exit status
        (None for a detached daemon, which is not our child)."""
        if not self.running():
            return self.proc.poll() if self.proc and \
                self.pid == self.proc.pid else None
        os.kill(self.pid, sig)
        return self.wait_exit(timeout)

    def wait_exit(self, timeout=15.0):
        if self.proc is not None and self.pid == self.proc.pid:
            try:
                self.returncode = self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                pytest.fail("kfcgi did not exit within %ss\nlog:\n%s" %
                            (timeout, self.log()[-3000:]))
            return self.returncode
        if not wait_for(lambda: not alive(self.pid), timeout):
            pytest.fail("kfcgi daemon %d did not exit within %ss" %
                        (self.pid, timeout))
        return None

    def survivors(self):
        """Workers ever seen that are still alive."""
        return sorted(p for p, t in self.seen.items() if alive(p, t))

    def log(self):
        return _read(self.logpath)

    def all_logs(self):
        return "".join(_read(p) for p in [self.logpath] + self.extra_logs)

    def request(self, **kw):
        return fcgiclient.request(sock_address(self.sock), **kw)

    # -- clean-up
    def _ours(self):
        found = set(pids_with_arg(self.marker))
        found.update(pids_with_env("%s=%s" % (TAG_VAR, self.marker)))
        found.update(pids_using(self.marker))
        for p in list(found):
            found.update(descendants(p))
        return found

    def cleanup(self):
        """Kill kfcgi and everything it started; return the pids killed."""
        victims = set()
        if self.pid is not None and alive(self.pid):
            # Freeze it first, so that it starts nothing while we look.
            kill_quiet(self.pid, signal.SIGSTOP)
            wait_for(lambda: (proc_stat(self.pid) or ("X",))[0] in "TtZX",
                     2, 0.01)
            victims.update(descendants(self.pid))
            victims.add(self.pid)
        for p, t in self.seen.items():
            if alive(p, t):
                victims.add(p)
        victims.update(self._ours())
        for p in victims:
            kill_quiet(p)
        if self.proc is not None:
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                pass
        # Stragglers (a worker started while we were killing, a daemon's
        # orphans): the tag in their environment gives them away.
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            more = self._ours() - {os.getpid()}
            if not more:
                break
            victims.update(more)
            for p in more:
                kill_quiet(p)
            time.sleep(0.05)
        return victims


def _read(path):
    try:
        with open(path, "rb") as f:
            return f.read().decode("utf-8", "replace")
    except OSError:
        return ""


@pytest.fixture
def sockdir():
    """A short private directory (sun_path is only 108 bytes)."""
    d = tempfile.mkdtemp(prefix="kft-", dir="/tmp")
    os.chmod(d, 0o755)
    yield d
    for p in pids_with_arg(d):
        kill_quiet(p)
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def kfcgi_factory(bins, sockdir):
    made = []

    def make():
        k = Kfcgi(bins, sockdir, "kfcgi%d" % len(made), sockdir)
        made.append(k)
        return k
    yield make
    problems = []
    for k in made:
        k.cleanup()
    for k in made:
        text = k.all_logs()
        for mark in SANITIZER_MARKS:
            if mark in text:
                problems.append("%s: log contains %r:\n%s" %
                                (k.name, mark, text[-6000:]))
                break
    if problems:
        pytest.fail("sanitizer report(s) in kfcgi logs\n" +
                    "\n".join(problems), pytrace=False)


@pytest.fixture
def kfcgi(kfcgi_factory):
    return kfcgi_factory()


@pytest.fixture
def jail(bins, sockdir):
    """jail(name="jail") -> path of a 0755 directory holding only a copy
    of the static test worker as /testworker."""
    def make(name="jail"):
        d = os.path.join(sockdir, name)
        os.mkdir(d)
        os.chmod(d, 0o755)
        shutil.copy2(bins.need("testworker"), os.path.join(d, "testworker"))
        os.chmod(os.path.join(d, "testworker"), 0o755)
        return d
    return make


def info(k, **kw):
    """The test worker's `info` answer from kfcgi helper k, as a dict."""
    r = k.request(query="info", **kw)
    assert r.status == 200, r
    kv = r.kv
    assert "pid" in kv, r
    return kv


def busy_workers(k, channel_fd=None):
    """Workers of k holding a client connection: a socket descriptor other
    than 0 (the classic listener) and channel_fd (the management channel,
    3 in the variable pool)."""
    out = []
    for w in k.workers():
        for n, target in fds(w).items():
            if n in (0, 1, 2, channel_fd):
                continue
            if target.startswith("socket:"):
                out.append(w)
                break
    return out


def user(name):
    """(uid, primary gid) of a user name."""
    pw = pwd.getpwnam(name)
    return pw.pw_uid, pw.pw_gid


def group_name(gid):
    try:
        return grp.getgrgid(gid).gr_name
    except KeyError:
        return str(gid)
