"""kfcgi status listener (issue 7, live metrics): -S PATH answers
/metrics (Prometheus text format 0.0.4) and /status (JSON) from the
manager itself, bounded in time, size and connections whatever clients do.

Clients are curl (a real HTTP client, as an operator would use) and raw
sockets (for what no well-behaved client sends)."""

import json
import os
import re
import shutil
import socket
import stat
import subprocess
import time

import pytest

from conftest import fds, wait_for
from fcgiclient import spawn

CHANNEL = 3
TYPES = ("counter", "gauge")
SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([^}]*)\})? (\S+)$')
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\.)*)"')


def status_path(k):
    return os.path.join(k.workdir, k.name + ".status")


def start(k, args, **kw):
    path = status_path(k)
    k.start(["-S", path] + list(args), **kw)
    wait_for(lambda: os.path.exists(path), 5)
    return path


def raw(path, data, timeout=5.0, shut=False):
    """Send data on a new connection, read to EOF; the bytes read."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    try:
        s.connect(path)
        if data:
            s.sendall(data)
        if shut:
            s.shutdown(socket.SHUT_WR)
        out = b""
        while True:
            try:
                b = s.recv(65536)
            except ConnectionResetError:
                break
            if not b:
                break
            out += b
        return out
    finally:
        s.close()


class Answer:
    def __init__(self, data):
        head, _, self.body = data.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        self.statusline = lines[0]
        parts = lines[0].split(" ", 2)
        assert parts[0] == "HTTP/1.1", data[:200]
        self.code = int(parts[1])
        self.headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            self.headers[name.strip().lower()] = value.strip()

    def __repr__(self):
        return "Answer(%r, %r, %r)" % (self.statusline, self.headers,
                                       self.body[:300])


def get(path, target, method="GET", version="1.1", extra=b""):
    req = ("%s %s HTTP/%s\r\nHost: localhost\r\n" %
           (method, target, version)).encode() + extra + b"\r\n"
    a = Answer(raw(path, req))
    assert a.headers.get("connection") == "close", a
    assert int(a.headers["content-length"]) == len(a.body) or \
        method == "HEAD", a
    return a


def curl(path, url, *opts):
    r = subprocess.run(["curl", "-sS", "--max-time", "5", "--unix-socket",
                        path] + list(opts) + [url],
                       capture_output=True, timeout=10)
    assert r.returncode == 0, r
    return r.stdout.decode()


def parse_metrics(text):
    """Check the text exposition format 0.0.4 as Prometheus reads it and
    return {(name, frozenset(labels)): value}."""
    out, typed, seen_family, current = {}, {}, [], None
    assert text.endswith("\n"), text[-100:]
    for line in text.split("\n")[:-1]:
        if line.startswith("# HELP ") or line.startswith("# TYPE "):
            kind, name, rest = line[2:6], line.split(" ")[2], \
                line.split(" ", 3)[3]
            assert name.startswith("kfcgi_"), line
            if kind == "TYPE":
                assert rest in TYPES, line
                assert name not in typed, "TYPE twice: %s" % line
                typed[name] = rest
                if rest == "counter":
                    assert name.endswith("_total"), line
            current = name
            continue
        if line.startswith("#"):
            continue
        m = SAMPLE.match(line)
        assert m, "not a sample line: %r" % line
        name, labels = m.group(1), m.group(3) or ""
        assert name == current and name in typed, \
            "sample outside its family: %r" % line
        if not seen_family or seen_family[-1] != name:
            assert name not in seen_family, "family split: %r" % line
            seen_family.append(name)
        pairs = LABEL.findall(labels)
        assert ",".join('%s="%s"' % kv for kv in pairs) == labels, line
        lab = frozenset(pairs)
        key = (name, lab)
        assert key not in out, "duplicate series: %r" % line
        out[key] = float(m.group(4))
    return out


def metric(ms, name, **labels):
    return ms.get((name, frozenset(labels.items())))


def metrics(path):
    a = get(path, "/metrics")
    assert a.code == 200, a
    assert a.headers["content-type"].startswith(
        "text/plain; version=0.0.4"), a
    return parse_metrics(a.body.decode())


def partial_requests(path, n, first):
    """n connections that sent first and nothing more."""
    out = []
    for _ in range(n):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(path)
        s.send(first)
        out.append(s)
    return out


def status(path):
    a = get(path, "/status")
    assert a.code == 200, a
    assert a.headers["content-type"] == "application/json", a
    return json.loads(a.body)


def busy_pids(k):
    out = []
    for w in k.workers():
        for n, target in fds(w).items():
            if n not in (0, 1, 2, CHANNEL) and target.startswith("socket:"):
                out.append(w)
                break
    return out


def hold(k, n, ms=3000):
    """n slow requests, each held by a worker until ms have passed."""
    before = len(busy_pids(k))
    jobs = [spawn(k.request, query="sleep=%d&n%d" % (ms, i), timeout=30)
            for i in range(n)]
    assert wait_for(lambda: len(busy_pids(k)) >= before + n, 10), \
        (busy_pids(k), k.log()[-2000:])
    return jobs


def settle(jobs):
    for j in jobs:
        r = j.outcome(40)
        assert not isinstance(r, BaseException), r
        assert r.status == 200, r


# ------------------------------------------------------------ answers ---

def test_curl_metrics_status_head_404(kfcgi):
    path = start(kfcgi, ["-r", "-n", "2", "-N", "4"])
    ws = kfcgi.wait_workers(2)
    st = os.stat(path)
    assert stat.S_ISSOCK(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o660

    text = curl(path, "http://localhost/metrics")
    ms = parse_metrics(text)
    assert metric(ms, "kfcgi_pool_info", pool="variable") == 1
    assert metric(ms, "kfcgi_config_workers") == 2
    assert metric(ms, "kfcgi_config_max_workers") == 4
    assert metric(ms, "kfcgi_workers") == 2
    assert metric(ms, "kfcgi_workers_idle") == 2
    assert metric(ms, "kfcgi_workers_busy") == 0
    assert metric(ms, "kfcgi_workers_spawned_total") == 2
    assert metric(ms, "kfcgi_worker_crashes_total", signal="none") == 0
    assert metric(ms, "kfcgi_uptime_seconds") > 0
    # Nothing waits in the listen queue (sock_diag reads it on Linux).
    assert metric(ms, "kfcgi_listen_queue") == 0
    assert metric(ms, "kfcgi_listen_queue_max") == 0
    for w in ws:
        assert metric(ms, "kfcgi_worker_state", pid=str(w),
                      state="idle") == 1, text

    doc = json.loads(curl(path, "http://localhost/status"))
    assert doc["pool"] == "variable" and doc["live"] == 2, doc
    assert doc["idle"] == 2 and doc["busy"] == 0, doc
    assert doc["queue"] == 0 and doc["queue_max"] == 0, doc
    assert sorted(w["pid"] for w in doc["workers"]) == ws, doc
    assert all(w["state"] == "idle" for w in doc["workers"]), doc

    head = curl(path, "http://localhost/status", "-I")
    assert head.startswith("HTTP/1.1 200"), head
    length = re.search(r"Content-Length: (\d+)", head).group(1)
    assert int(length) > 100, head
    a = get(path, "/status", method="HEAD")
    assert a.code == 200 and a.body == b"", a
    a = get(path, "/nothing", method="HEAD")
    assert a.code == 404 and a.body == b"", a
    a = Answer(raw(path, b"HEAD / HTTP/1.1\r\n\r\n"))      # no Host
    assert a.code == 400 and a.body == b"", a
    assert int(a.headers["content-length"]) > 0, a

    out = subprocess.run(["curl", "-sS", "-o", "/dev/null", "-w",
                          "%{http_code}", "--unix-socket", path,
                          "http://localhost/nothing"],
                         capture_output=True, timeout=10)
    assert out.stdout == b"404", out
    # HTTP/1.0, a query string and an absolute URI are fine too.
    assert get(path, "/metrics?x=1", version="1.0").code == 200
    assert get(path, "http://h/status").code == 200
    assert kfcgi.running()


def test_fixed_pool_figures(kfcgi):
    path = start(kfcgi, ["-n", "3"])
    ws = kfcgi.wait_workers(3)
    ms = metrics(path)
    assert metric(ms, "kfcgi_pool_info", pool="fixed") == 1
    assert metric(ms, "kfcgi_workers") == 3
    # A fixed pool cannot tell busy from idle: nothing is made up.
    assert not any(n in ("kfcgi_workers_idle", "kfcgi_workers_busy")
                   for n, _ in ms), ms
    doc = status(path)
    assert doc["idle"] is None and doc["busy"] is None, doc
    assert sorted(w["pid"] for w in doc["workers"]) == ws
    assert {w["state"] for w in doc["workers"]} == {"running"}, doc
    kfcgi.request(query="")
    assert kfcgi.running()


def test_figures_follow_load(kfcgi):
    path = start(kfcgi, ["-r", "-n", "1", "-N", "4"])
    kfcgi.wait_workers(1)
    before = metric(metrics(path), "kfcgi_connections_accepted_total")
    for i in range(5):
        assert kfcgi.request(query="n%d" % i).status == 200
    ms = metrics(path)
    assert metric(ms, "kfcgi_connections_accepted_total") == before + 5

    def served():
        return sum(v for (n, _), v in metrics(path).items()
                   if n == "kfcgi_worker_connections_served_total")
    # (a client may see its answer before kfcgi sees the cookie)
    assert wait_for(lambda: served() == before + 5, 5), metrics(path)

    jobs = hold(kfcgi, 3)
    doc = status(path)
    held = sorted(w["pid"] for w in doc["workers"] if w["state"] == "busy")
    assert held == sorted(busy_pids(kfcgi)), (doc, busy_pids(kfcgi))
    assert doc["busy"] == 3 and doc["live"] >= 3, doc
    ms = metrics(path)
    assert metric(ms, "kfcgi_workers_busy") == 3
    assert metric(ms, "kfcgi_connections_accepted_total") == before + 8
    settle(jobs)
    assert wait_for(lambda: status(path)["busy"] == 0, 5)
    assert status(path)["accepted"] == before + 8


def test_answers_while_every_worker_is_busy(kfcgi):
    path = start(kfcgi, ["-r", "-n", "1", "-N", "2"])
    kfcgi.wait_workers(1)
    jobs = hold(kfcgi, 2, ms=4000)
    # One more waits in the queue: the pool is at -N, all busy.
    waiting = spawn(kfcgi.request, query="late", timeout=30)
    time.sleep(0.2)
    t0 = time.monotonic()
    doc = status(path)
    assert time.monotonic() - t0 < 2.0   # the workers hold theirs 4 s
    assert doc["busy"] == 2 and doc["idle"] == 0 and doc["live"] == 2, doc
    t0 = time.monotonic()
    out = curl(path, "http://localhost/metrics")
    assert time.monotonic() - t0 < 2.0
    assert metric(parse_metrics(out), "kfcgi_workers_busy") == 2
    settle(jobs + [waiting])


# ---------------------------------------------------------- bad input ---

@pytest.mark.parametrize("req,code", [
    (b"garbage\r\n\r\n", 400),
    (b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03" + bytes(range(256)),
     400),
    (b"GET /\0 HTTP/1.1\r\nHost: a\r\n\r\n", 400),
    (b"GET / HTTP/1.1\r\n\r\n", 400),                   # no Host
    (b"GET / HTTP/1.0\r\nX: a\r\n folded\r\n\r\n", 400),
    (b"POST /metrics HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\nab",
     405),
    (b"GET /" + b"a" * 3000 + b" HTTP/1.1\r\nHost: a\r\n\r\n", 414),
    (b"GET / HTTP/1.1\r\nHost: a\r\nX: " + b"y" * 9000 + b"\r\n\r\n", 431),
    (b"GET / HTTP/1.1\r\nHost: a\r\n" + b"X: y\r\n" * 100 + b"\r\n", 431),
    (b"GET / HTTP/2.0\r\n\r\n", 505),
    (b"GET / HTTP/1.1\r\nHost: a\r\n", 400),            # then EOF
], ids=["garbage", "tls", "nul", "nohost", "folded", "post", "longuri",
        "longheader", "manyheaders", "http2", "eof"])
def test_bad_requests_answered(kfcgi, req, code):
    path = start(kfcgi, ["-r", "-n", "1"])
    a = Answer(raw(path, req, shut=True))
    assert a.code == code, a
    assert a.headers["connection"] == "close", a
    if code == 405:
        assert a.headers["allow"] == "GET, HEAD", a
    assert status(path)["live"] == 1
    assert kfcgi.running()


@pytest.mark.parametrize("first,more", [
    (b"X-Endless: ", b"z" * 64),                       # one endless line
    (b"", b"X-Endless: " + b"z" * 50 + b"\r\n"),        # endless lines
], ids=["line", "lines"])
def test_endless_headers_cut(kfcgi, first, more):
    path = start(kfcgi, ["-r", "-n", "1"])
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(5)
    s.connect(path)
    sent = 0
    s.sendall(b"GET /status HTTP/1.1\r\nHost: a\r\n" + first)
    try:
        while sent < 1 << 20:
            s.sendall(more)
            sent += len(more)
    except (BrokenPipeError, ConnectionResetError):
        pass
    data = b""
    try:
        while True:
            b = s.recv(4096)
            if not b:
                break
            data += b
    except ConnectionResetError:
        pass
    s.close()
    assert sent < 1 << 20, "kfcgi read a megabyte of headers"
    assert data.startswith(b"HTTP/1.1 431 "), data[:100]
    assert status(path)["live"] == 1


def test_idle_connection_closed_after_5s(kfcgi):
    path = start(kfcgi, ["-r", "-n", "1"])
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(15)
    # The clock starts before the connection: the 5 s start after it, so
    # a test slow to get here cannot make them look shorter.
    t0 = time.monotonic()
    s.connect(path)
    s.sendall(b"GET /status HTTP/1.1\r\n")      # and then nothing
    assert s.recv(100) == b""
    took = time.monotonic() - t0
    s.close()
    assert 4.5 < took < 9.0, took


def test_many_silent_and_slow_clients(kfcgi):
    path = start(kfcgi, ["-r", "-n", "1"])
    kfcgi.wait_workers(1)
    base = len(fds(kfcgi.pid))
    silent, refused = [], 0
    # Slow clients: a byte now and then, never a whole request.
    slow = partial_requests(path, 5, b"G")
    for _ in range(500):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.setblocking(False)
        for attempt in range(50):
            try:
                s.connect(path)
                break
            except BlockingIOError:     # listen queue full: retry
                time.sleep(0.002)
        else:
            refused += 1
            s.close()
            continue
        silent.append(s)
    try:
        for s in slow:
            try:
                s.send(b"E")
            except OSError:     # pushed out by the newer ones: fine
                pass
        assert refused < 50, refused
        t0 = time.monotonic()
        doc = status(path)
        assert time.monotonic() - t0 < 2.0
        assert doc["live"] == 1
        # Bounded: no more than the connection limit is held open.
        assert len(fds(kfcgi.pid)) <= base + 32 + 2, len(fds(kfcgi.pid))
        assert kfcgi.request(query="").status == 200
    finally:
        for s in silent + slow:
            s.close()
    assert status(path)["live"] == 1


def test_stop_with_status_connections_open(kfcgi):
    path = start(kfcgi, ["-r", "-n", "2"])
    kfcgi.wait_workers(2)
    conns = partial_requests(path, 3, b"GET /st")
    assert status(path)["live"] == 2
    assert kfcgi.stop() == 0
    for s in conns:
        s.close()


# -------------------------------------------------------- the option ---

def test_status_socket_not_inherited(kfcgi):
    path = start(kfcgi, ["-r", "-n", "2"])
    for w in kfcgi.wait_workers(2):
        assert sorted(fds(w)) == [0, 1, 2, CHANNEL], fds(w)
    assert status(path)["live"] == 2


def test_status_when_detached(kfcgi):
    path = start(kfcgi, ["-n", "2"], foreground=False)
    kfcgi.wait_workers(2)
    assert status(path)["live"] == 2


@pytest.mark.needs_root
def test_status_outside_the_jail_owned_by_u(kfcgi, jail):
    """The socket is made before the jail, owned as -s is; the manager
    answers from inside the jail, unprivileged."""
    from conftest import user
    uid, gid = user("nobody")
    path = start(kfcgi, ["-r", "-n", "2", "-p", jail(), "-u", "nobody",
                         "-U", "nobody"], prog="/testworker")
    kfcgi.wait_workers(2)
    st = os.stat(path)
    assert stat.S_IMODE(st.st_mode) == 0o660, oct(st.st_mode)
    assert (st.st_uid, st.st_gid) == (uid, gid)
    assert os.readlink("/proc/%d/root" % kfcgi.pid) != "/"
    doc = status(path)
    assert doc["live"] == 2 and doc["pool"] == "variable", doc


@pytest.mark.parametrize("value,says", [
    ("", "empty path"),
    ("/tmp/" + "s" * 120, "-S: /tmp/sss"),
    ("SAME", "the same as -s"),
    ("/nonexistent/dir/s.sock", "/nonexistent/dir: No such file"),
    ("FILE", "exists and is not a socket"),
], ids=["empty", "long", "same", "nodir", "file"])
def test_bad_status_address(kfcgi, value, says):
    sock = kfcgi.default_sock()
    if value == "SAME":
        value = sock
    elif value == "FILE":
        value = os.path.join(kfcgi.workdir, "plain")
        with open(value, "w") as f:
            f.write("mine\n")
    r = kfcgi.run(["-S", value, "-s", sock])
    assert r.rc == 1, r
    lines = r.stderr.strip().split("\n")
    assert lines[0].startswith("kfcgi: ") and says in lines[0], r
    # One line says what is wrong; only the usage may follow.
    assert len(lines) == 1 or (lines[1].startswith("usage: ") and
                               "-S statusaddr" in r.stderr), r
    if value.endswith("plain"):
        with open(value) as f:
            assert f.read() == "mine\n"


def test_status_socket_in_use(kfcgi_factory):
    a = kfcgi_factory()
    path = start(a, ["-r", "-n", "1"])
    b = kfcgi_factory()
    r = b.run(["-r", "-n", "1", "-S", path])
    assert r.rc == 1, r
    assert "in use by another process" in r.stderr, r
    assert status(path)["live"] == 1


def cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as f:
        rest = f.read().rsplit(")", 1)[1].split()
    return (int(rest[11]) + int(rest[12])) / os.sysconf("SC_CLK_TCK")


def test_out_of_descriptors(kfcgi):
    """With few descriptors left, new status connections push out old
    ones instead of failing, and nothing spins."""
    import resource

    def few_fds():
        resource.setrlimit(resource.RLIMIT_NOFILE, (24, 24))
    path = start(kfcgi, ["-n", "1"], preexec_fn=few_fds)
    kfcgi.wait_workers(1)
    room = 24 - len(fds(kfcgi.pid))
    assert 2 < room < 20, fds(kfcgi.pid)
    silent = partial_requests(path, room + 10, b"")
    try:
        cpu = cpu_seconds(kfcgi.pid)
        time.sleep(1)
        assert cpu_seconds(kfcgi.pid) - cpu < 0.3, "kfcgi spins"
        t0 = time.monotonic()
        assert status(path)["live"] == 1
        assert time.monotonic() - t0 < 2.0
        assert len(fds(kfcgi.pid)) <= 24
    finally:
        for s in silent:
            s.close()
    assert kfcgi.request(query="").status == 200


def test_no_descriptor_left(kfcgi_factory):
    """Not one descriptor to accept with: accepting pauses and retries,
    with one warning, instead of spinning on a readable socket."""
    import resource
    k = kfcgi_factory()
    path = start(k, ["-n", "1"], probe="listen")
    k.wait_workers(1)
    # No room for one more descriptor, from now on.
    used = len(fds(k.pid))
    resource.prlimit(k.pid, resource.RLIMIT_NOFILE, (used, used))
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(path)
    s.send(b"GET /status HTTP/1.0\r\n\r\n")
    try:
        cpu = cpu_seconds(k.pid)
        time.sleep(1)
        assert cpu_seconds(k.pid) - cpu < 0.3, "kfcgi spins"
        assert k.log().count("status: accept: Too many open files") == 1, \
            k.log()
    finally:
        s.close()
    assert k.running()


# --------------------------------------------------- a real Prometheus ---

def tcp_to_unix(path):
    """A TCP port on 127.0.0.1 that forwards each connection to the Unix
    socket at path (Prometheus scrapes TCP only); returns (port, stop)."""
    import selectors
    import threading
    lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(16)
    lsock.settimeout(0.2)
    done = threading.Event()

    def pump(a, b):
        sel = selectors.DefaultSelector()
        sel.register(a, selectors.EVENT_READ, b)
        sel.register(b, selectors.EVENT_READ, a)
        open_ = 2
        while open_ and not done.is_set():
            for key, _ in sel.select(0.2):
                data = key.fileobj.recv(65536)
                if data:
                    key.data.sendall(data)
                    continue
                sel.unregister(key.fileobj)
                open_ -= 1
                try:
                    key.data.shutdown(socket.SHUT_WR)
                except OSError:
                    pass
        a.close()
        b.close()

    def serve():
        while not done.is_set():
            try:
                c, _ = lsock.accept()
            except OSError:
                continue
            u = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            u.connect(path)
            threading.Thread(target=pump, args=(c, u), daemon=True).start()
        lsock.close()
    threading.Thread(target=serve, daemon=True).start()
    return lsock.getsockname()[1], done.set


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def prom_api(port, what):
    import urllib.parse
    import urllib.request
    what = urllib.parse.quote(what, safe="/?=")
    with urllib.request.urlopen("http://127.0.0.1:%d/api/v1/%s" %
                                (port, what), timeout=5) as r:
        return json.load(r)["data"]


@pytest.mark.time_limit(60)
def test_prometheus_scrapes_it(kfcgi, sockdir):
    if shutil.which("prometheus") is None:
        pytest.skip("Debian package prometheus is not installed")
    path = start(kfcgi, ["-r", "-n", "2", "-N", "4"])
    kfcgi.wait_workers(2)
    if shutil.which("promtool"):
        r = subprocess.run(["promtool", "check", "metrics"],
                           input=get(path, "/metrics").body,
                           capture_output=True, timeout=30)
        assert r.returncode == 0, r
    port, stop_proxy = tcp_to_unix(path)
    web = free_port()
    conf = os.path.join(sockdir, "prometheus.yml")
    with open(conf, "w") as f:
        f.write("global:\n  scrape_interval: 1s\n"
                "scrape_configs:\n  - job_name: kfcgi\n"
                "    static_configs:\n"
                "      - targets: ['127.0.0.1:%d']\n" % port)
    log = open(os.path.join(sockdir, "prometheus.log"), "wb")
    prom = subprocess.Popen(
        ["prometheus", "--config.file=" + conf,
         "--storage.tsdb.path=" + os.path.join(sockdir, "tsdb"),
         "--web.listen-address=127.0.0.1:%d" % web],
        stdout=log, stderr=log, cwd=sockdir)
    try:
        def scraped():
            try:
                ts = prom_api(web, "targets")["activeTargets"]
            except OSError:
                return None
            return ts and ts[0]["health"] == "up" and ts[0]

        target = wait_for(scraped, 30, 0.2)
        assert target, open(log.name).read()[-3000:]
        assert target["lastError"] == "", target

        def value(q):
            res = prom_api(web, "query?query=" + q)["result"]
            return res and float(res[0]["value"][1])
        assert wait_for(lambda: value("kfcgi_workers") == 2, 10)
        assert value("kfcgi_config_max_workers") == 4
        assert wait_for(lambda: value(
            'count(kfcgi_worker_state{state="idle"})') == 2, 10)
    finally:
        prom.terminate()
        try:
            prom.wait(10)
        except subprocess.TimeoutExpired:
            prom.kill()
        log.close()
        stop_proxy()
