"""kfcgi with software it did not come with: a worker built on Debian's
libfcgi, Debian's cgi-fcgi client, php-cgi, a real nginx in front, and the
README's demo command."""

import os
import re
import shutil
import subprocess
import threading
import time
import urllib.error
import urllib.request

import pytest

from conftest import ROOT, descendants, kill_quiet, pids_with_arg, wait_for
from conftest import free_port, tcp_accepts
from fcgiclient import parallel

CGI_FCGI = shutil.which("cgi-fcgi") or "/usr/bin/cgi-fcgi"
PHP_CGI = "/usr/bin/php-cgi"
NGINX = "/usr/sbin/nginx"
FASTCGI_PARAMS = "/etc/nginx/fastcgi_params"
HELLO = b"Hello from kfcgi worker "


def need_file(path, package):
    if not os.access(path, os.X_OK if not path.endswith("params") else
                     os.R_OK):
        pytest.skip("%s is missing (Debian package %s)" % (path, package))


def cgi_env(**params):
    """A small environment for cgi-fcgi: it sends its environment to the
    application as the FastCGI parameters."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "GATEWAY_INTERFACE": "CGI/1.1",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "SERVER_NAME": "localhost",
        "SERVER_PORT": "80",
        "REMOTE_ADDR": "127.0.0.1",
        "REQUEST_METHOD": "GET",
        "SCRIPT_NAME": "/",
        "REQUEST_URI": "/",
        "QUERY_STRING": "",
    }
    env.update({k: str(v) for k, v in params.items()})
    return env


def cgi_fcgi(sock, **params):
    """One request through Debian's cgi-fcgi; returns its stdout (bytes)."""
    need_file(CGI_FCGI, "libfcgi-bin")
    p = subprocess.run([CGI_FCGI, "-bind", "-connect", sock],
                       stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, env=cgi_env(**params),
                       timeout=20)
    assert p.returncode == 0, p
    return p.stdout


def split_cgi(out):
    """(headers dict with lower-case keys, body) of a CGI response."""
    for sep in (b"\r\n\r\n", b"\n\n"):
        if sep in out:
            head, body = out.split(sep, 1)
            break
    else:
        raise AssertionError("no CGI header block in %r" % out[:300])
    headers = {}
    for line in head.decode("latin-1").splitlines():
        k, _, v = line.partition(":")
        headers[k.strip().lower()] = v.strip()
    return headers, body


# -------------------------------------------------------------- libfcgi ---

def libfcgi_pid(body):
    """The pid in the libfcgi test worker's answer "libfcgi pid=N"."""
    m = re.fullmatch(rb"libfcgi pid=(\d+)\n?", body)
    assert m, body
    return int(m.group(1))


def test_libfcgi_worker(kfcgi, bins):
    """A worker built on Debian's libfcgi, in the fixed pool, through our
    client and through Debian's cgi-fcgi."""
    kfcgi.start(prog=bins.need("libfcgi_worker"))
    ws = kfcgi.wait_workers(3)
    for i in range(10):
        r = kfcgi.request(query="n=%d" % i)
        assert r.status == 200, r
        assert r.app_status == 0 and r.protocol_status == 0, r
        assert r.headers.get("content-type") == "text/plain", r
        assert libfcgi_pid(r.body) in ws, (r, ws)
    for i in range(5):
        out = cgi_fcgi(kfcgi.sock, QUERY_STRING="via=cgi-fcgi&n=%d" % i)
        headers, body = split_cgi(out)
        assert headers.get("content-type") == "text/plain", out
        assert libfcgi_pid(body) in ws, (out, ws)
    # Nobody died on the way.
    assert kfcgi.workers() == ws


# -------------------------------------------------------------- php-cgi ---

def test_php_cgi(kfcgi, sockdir):
    """Debian's php-cgi is a classic FastCGI application: it accepts on
    descriptor 0.  Several requests, answered by the pool's workers."""
    need_file(PHP_CGI, "php-cgi")
    docroot = os.path.join(sockdir, "php")
    os.mkdir(docroot)
    os.chmod(docroot, 0o755)
    script = os.path.join(docroot, "index.php")
    with open(script, "w") as f:
        f.write('<?php echo "php ok ", getmypid(), " ", '
                '$_GET["n"] ?? "-", "\\n";\n')
    os.chmod(script, 0o644)
    # php-cgi handles requests itself (no children of its own).
    kfcgi.start(args=["-n", "2"], prog=PHP_CGI,
                env={"PHP_FCGI_CHILDREN": "0"})
    ws = kfcgi.wait_workers(2)
    params = {"SCRIPT_FILENAME": script, "SCRIPT_NAME": "/index.php",
              "DOCUMENT_ROOT": docroot, "REDIRECT_STATUS": "200",
              "REQUEST_URI": "/index.php"}
    for i in range(8):
        r = kfcgi.request(params=params, query="n=%d" % i, timeout=20)
        assert r.status == 200, r
        words = r.body.decode().split()
        assert words[:2] == ["php", "ok"], r
        assert int(words[2]) in ws, (r, ws)
        assert words[3] == str(i), r
    out = cgi_fcgi(kfcgi.sock, QUERY_STRING="n=cgi", **params)
    headers, body = split_cgi(out)
    assert body.startswith(b"php ok "), out
    assert body.split()[3] == b"cgi", out


# ---------------------------------------------------------------- nginx ---

class Nginx:
    """nginx in the foreground with its own prefix, config, logs and
    temporary directories, passing every request to a kfcgi socket."""

    def __init__(self, prefix, sock):
        self.prefix = prefix
        self.sock = sock        # Unix path, HOST:PORT, or a list of those
        self.proc = None
        self.port = None
        self.errlog = os.path.join(prefix, "error.log")
        self.extra = ""         # more directives for the location

    def upstream(self):
        """The fastcgi_pass target, and an upstream block for a list (with
        max_fails=0: every server is tried in turn, a failed one passes
        the request on to the next)."""
        def name(sock):
            return sock if ":" in sock and not sock.startswith("/") \
                else "unix:" + sock
        if isinstance(self.sock, str):
            return name(self.sock), ""
        servers = "".join("        server %s max_fails=0;\n" % name(x)
                          for x in self.sock)
        return "kfcgi", "    upstream kfcgi {\n%s    }\n" % servers

    def config(self):
        p = self.prefix
        target, upstream = self.upstream()
        temps = "\n".join("    %s_temp_path %s/tmp-%s;" % (m, p, m) for m in
                          ("client_body", "proxy", "fastcgi", "uwsgi",
                           "scgi"))
        return """\
%(user)s
worker_processes 1;
error_log %(p)s/error.log info;
pid %(p)s/nginx.pid;
events { worker_connections 128; }
http {
    access_log %(p)s/access.log;
%(temps)s
%(upstream)s    server {
        listen 127.0.0.1:%(port)d;
        location / {
            include %(params)s;
%(extra)s            fastcgi_pass %(target)s;
        }
    }
}
""" % {"user": "user root;" if os.geteuid() == 0 else "",
       "p": p, "temps": temps, "port": self.port,
       "params": FASTCGI_PARAMS, "target": target,
       "upstream": upstream, "extra": self.extra}

    def start(self, timeout=15.0):
        need_file(NGINX, "nginx-light")
        need_file(FASTCGI_PARAMS, "nginx-common")
        for attempt in range(5):
            self.port = free_port()
            conf = os.path.join(self.prefix, "nginx.conf")
            with open(conf, "w") as f:
                f.write(self.config())
            log = open(os.path.join(self.prefix, "stderr.log"), "ab")
            self.proc = subprocess.Popen(
                [NGINX, "-p", self.prefix + "/", "-e", self.errlog,
                 "-c", conf, "-g", "daemon off;"],
                stdin=subprocess.DEVNULL, stdout=log, stderr=log)
            log.close()
            if wait_for(lambda: self.proc.poll() is not None or
                        self.listening(), timeout) and \
                    self.proc.poll() is None:
                return self
            self.stop()
            if "Address already in use" not in self.log():
                break
        pytest.fail("nginx did not start:\n%s" % self.log())

    def listening(self):
        return tcp_accepts(self.port)

    def log(self):
        text = ""
        for name in ("stderr.log", "error.log"):
            try:
                with open(os.path.join(self.prefix, name), "rb") as f:
                    text += f.read().decode("utf-8", "replace")
            except OSError:
                pass
        return text[-4000:]

    def get(self, path="/", timeout=20):
        """(status, body) of one HTTP GET, bypassing any proxy settings."""
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        url = "http://127.0.0.1:%d%s" % (self.port, path)
        try:
            with opener.open(url, timeout=timeout) as resp:
                return resp.status, resp.read()
        except urllib.error.HTTPError as e:
            return e.code, e.read()

    def stop(self):
        if self.proc is None:
            return
        kids = descendants(self.proc.pid)
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                kill_quiet(self.proc.pid)
                self.proc.wait(10)
        for pid in kids:
            kill_quiet(pid)
        self.proc = None


@pytest.fixture
def nginx(sockdir):
    made = []

    def make(sock):
        d = os.path.join(sockdir, "nginx%d" % len(made))
        os.mkdir(d)
        n = Nginx(d, sock)
        made.append(n)
        return n.start()
    yield make
    for n in made:
        n.stop()


@pytest.mark.time_limit(120)
@pytest.mark.parametrize("transport", ["unix", "tcp"])
@pytest.mark.parametrize("args,mode", [
    ([], b"classic"),
    (["-r", "-n", "1", "-N", "4", "-w", "1"], b"extension"),
], ids=["fixed", "variable"])
def test_nginx_hello(kfcgi, bins, nginx, args, mode, transport):
    """nginx -> fastcgi_pass unix:SOCK or 127.0.0.1:PORT -> kfcgi ->
    examples/hello."""
    if transport == "tcp":
        args = args + ["-s", "127.0.0.1:%d" % free_port()]
    kfcgi.start(args=args, prog=bins.need("hello"))
    web = nginx(kfcgi.sock)
    for i in range(10):
        status, body = web.get("/hello/%d" % i)
        assert status == 200, (status, body, web.log())
        assert body.startswith(HELLO), body
        assert b"(%s mode)" % mode in body, body
        assert b"REQUEST_URI /hello/%d" % i in body, body
    # Several at once: all answered (and, with -r, the pool may grow).
    got = parallel(8, lambda i: web.get("/par/%d" % i))
    for i, res in enumerate(got):
        assert not isinstance(res, BaseException), (i, res, web.log())
        status, body = res
        assert status == 200, (status, body, web.log())
        assert body.startswith(HELLO) and \
            b"REQUEST_URI /par/%d" % i in body, body
    assert kfcgi.running()
    assert kfcgi.stop() == 0


class WebLoad:
    """Threads sending GETs through nginx back to back; records the kfcgi
    (the test worker's ppid) that answered each, and every failure."""

    def __init__(self, web, threads=4, query="sleep=20", max_seconds=60):
        self.web, self.query = web, query
        self.end = time.monotonic() + max_seconds
        self.lock = threading.Lock()
        self.answers = []       # (monotonic time, ppid)
        self.failures = []
        self.stopping = threading.Event()
        self.threads = [threading.Thread(target=self.loop, args=(i,))
                        for i in range(threads)]
        for t in self.threads:
            t.start()

    def loop(self, i):
        n = 0
        while not self.stopping.is_set() and time.monotonic() < self.end:
            n += 1
            try:
                status, body = self.web.get("/lb/%d/%d?%s" %
                                            (i, n, self.query), timeout=10)
                m = re.search(rb"^ppid=(\d+)$", body, re.M)
                if status != 200 or not m:
                    raise AssertionError("status %s: %r" % (status,
                                                            body[:200]))
                with self.lock:
                    self.answers.append((time.monotonic(), int(m.group(1))))
            except Exception as e:      # noqa: BLE001 -- every failure counts
                with self.lock:
                    self.failures.append("%.3f %r" % (time.monotonic(), e))

    def since(self, t):
        with self.lock:
            return [p for (when, p) in self.answers if when >= t]

    def stop(self):
        self.stopping.set()
        for t in self.threads:
            t.join(20)


@pytest.mark.time_limit(120)
@pytest.mark.parametrize("args", [[], ["-r", "-n", "2", "-N", "4"]],
                         ids=["fixed", "variable"])
def test_nginx_upstream_failover(kfcgi_factory, nginx, args):
    """Two kfcgi on TCP ports behind one nginx upstream.  One is stopped
    with SIGTERM, then started again; then every worker of the other is
    SIGKILLed: nginx passes each failed attempt on, and no request fails."""
    ports = [free_port()]
    while len(ports) < 2:
        p = free_port()
        if p not in ports:
            ports.append(p)
    specs = ["127.0.0.1:%d" % p for p in ports]
    a = kfcgi_factory().start(["-s", specs[0], "-n", "2"] + args)
    b = kfcgi_factory().start(["-s", specs[1], "-n", "2"] + args)
    web = nginx(specs)
    load = WebLoad(web)
    try:
        assert wait_for(lambda: {a.pid, b.pid} <= set(load.since(0)), 10), \
            (load.failures, web.log())
        assert a.stop() == 0
        # once A is gone (an answer of its last requests may be recorded
        # a little late), only B answers
        t_stop = time.monotonic()
        time.sleep(0.7)
        assert set(load.since(t_stop + 0.2)) == {b.pid}
        a2 = kfcgi_factory().start(["-s", specs[0], "-n", "2"] + args)
        t_back = time.monotonic()
        assert wait_for(lambda: a2.pid in load.since(t_back), 10), \
            (load.failures, web.log())
        victims = b.workers()
        assert victims
        for w in victims:
            kill_quiet(w)
        t_kill = time.monotonic()
        time.sleep(0.5)
        assert wait_for(lambda: b.pid in load.since(t_kill + 0.3), 10), \
            (load.failures, b.log()[-2000:])
    finally:
        load.stop()
    assert not load.failures, (load.failures[:10], web.log())
    assert len(load.answers) > 50, len(load.answers)
    assert not set(victims) & set(b.workers())


# ----------------------------------------------------------------- demo ---

@pytest.mark.time_limit(300)
def test_demo_command(sockdir):
    """The README's first command, in its once-only form."""
    if os.geteuid() != 0:
        chk = subprocess.run(["sh", os.path.join(ROOT, "tools", "deps.sh"),
                              "demo"], stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT)
        if chk.returncode != 0:
            pytest.skip("demo packages missing and not root: %s" %
                        chk.stdout.decode().strip())
    env = dict(os.environ)
    env["KFCGI_DEMO_ONCE"] = "1"
    # Not the jobserver or variables of a `make check` running this test.
    for k in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEOVERRIDES"):
        env.pop(k, None)
    sock = os.path.join(ROOT, "run", "hello.sock")
    t0 = time.monotonic()
    p = subprocess.run([os.path.join(ROOT, "tools", "demo.sh")],
                       stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, env=env, timeout=280)
    out = p.stdout.decode("utf-8", "replace")
    err = p.stderr.decode("utf-8", "replace")
    assert p.returncode == 0, (p.returncode, out, err[-3000:])
    assert "Hello from kfcgi worker " in out, (out, err[-3000:])
    assert "REQUEST_URI /hello" in out, out
    # The demo stops what it started.
    assert wait_for(lambda: not pids_with_arg(sock), 10), pids_with_arg(sock)
    assert not os.path.exists(sock)
    assert time.monotonic() - t0 < 280

