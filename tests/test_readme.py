"""The README's "Use it with nginx" section, walked as written: its
commands are read from README.md and run in order, with the system paths
moved into a temporary directory (the jail, DESTDIR, the pidfile, nginx's
configuration) and port 8080 moved to a free one, through a real nginx
running its workers as www-data.  Also the nginx server block of the
variable pool (examples/nginx-varpool.conf)."""

import os
import re
import shutil
import signal
import socket
import subprocess
import urllib.request

import pytest

from conftest import ROOT, alive, descendants, kill_quiet, pgid_of, wait_for
from conftest import free_port, tcp_accepts
from conftest import children as all_children


def children(pid):
    """kfcgi's workers: its children but the guard, which leads their
    process group."""
    return [p for p in all_children(pid) if pgid_of(p) != p]

NGINX = "/usr/sbin/nginx"
FASTCGI_PARAMS = "/etc/nginx/fastcgi_params"
HELLO = b"Hello from kfcgi worker "

# The commands of the section, in order: the test knows what each does.
EXPECTED = [
    "make",
    "make install",
    "mkdir -p /var/www/fcgi-bin /var/www/run",
    "install -m 0755 examples/hello-static /var/www/fcgi-bin/app",
    "/usr/local/sbin/kfcgi -l 128 -P /run/kfcgi.pid -u www-data "
    "-U www-data -p /var/www -- /fcgi-bin/app",
    "cp examples/nginx.conf /etc/nginx/conf.d/kfcgi.conf",
    "nginx -t",
    "service nginx restart",
    "curl http://localhost:8080/app/hello",
    "kill -HUP $(cat /run/kfcgi.pid)",
    "kill -TERM $(cat /run/kfcgi.pid)",
    "cc -static -o app app.c $(pkg-config --cflags --libs kfcgi-worker)",
]


def readme_commands():
    with open(os.path.join(ROOT, "README.md")) as f:
        text = f.read()
    m = re.search(r"^## Use it with nginx\n(.*?)^## ", text, re.M | re.S)
    assert m, "README.md has no 'Use it with nginx' section"
    return [line[4:] for line in m.group(1).splitlines()
            if line.startswith("    ") and line.strip()]


def test_readme_lists_the_commands_this_test_runs():
    assert readme_commands() == EXPECTED


def have_ipv6():
    try:
        s = socket.socket(socket.AF_INET6)
        s.bind(("::1", 0))
        s.close()
        return True
    except OSError:
        return False


class Walk:
    """Runs README commands with the system paths moved under tmp."""

    def __init__(self, tmp):
        self.tmp = tmp
        self.jail = os.path.join(tmp, "www")
        self.dest = os.path.join(tmp, "dest")
        self.pidfile = os.path.join(tmp, "kfcgi.pid")
        self.etc = os.path.join(tmp, "nginx")
        self.port = free_port()
        self.nginx = None
        os.makedirs(os.path.join(self.etc, "conf.d"))
        self.env = dict(os.environ, ASAN_OPTIONS="detect_leaks=0",
                        PKG_CONFIG_PATH=os.path.join(
                            self.dest, "usr/local/lib/pkgconfig"),
                        PKG_CONFIG_SYSROOT_DIR=self.dest)

    def moved(self, cmd):
        if cmd.startswith("/usr/local/sbin/kfcgi ") and " -s " not in cmd:
            # The default socket path is built in: name the moved one.
            cmd = cmd.replace(" -p ", " -s /var/www/run/httpd.sock -p ")
        cmd = cmd.replace("/var/www", self.jail)
        cmd = cmd.replace("/run/kfcgi.pid", self.pidfile)
        cmd = cmd.replace("/usr/local", self.dest + "/usr/local")
        cmd = cmd.replace("/etc/nginx", self.etc)
        cmd = cmd.replace("localhost:8080", "127.0.0.1:%d" % self.port)
        if cmd == "make install":
            cmd += " DESTDIR=" + self.dest
        return cmd

    def sh(self, cmd, cwd=ROOT):
        r = subprocess.run(["sh", "-c", self.moved(cmd)], cwd=cwd,
                           env=self.env, capture_output=True, text=True,
                           timeout=300)
        assert r.returncode == 0, (cmd, self.moved(cmd), r.stdout, r.stderr)
        return r

    def nginx_conf(self):
        """Debian's nginx.conf, in short: the includes inside http."""
        path = os.path.join(self.etc, "nginx.conf")
        temps = "".join("    %s_temp_path %s/tmp-%s;\n" % (m, self.etc, m)
                        for m in ("client_body", "proxy", "fastcgi",
                                  "uwsgi", "scgi"))
        with open(path, "w") as f:
            f.write("user www-data;\nworker_processes 1;\n"
                    "pid %(e)s/nginx.pid;\nerror_log %(e)s/error.log;\n"
                    "events { worker_connections 64; }\nhttp {\n"
                    "    access_log %(e)s/access.log;\n%(t)s"
                    "    include %(e)s/conf.d/*.conf;\n}\n" %
                    {"e": self.etc, "t": temps})
        shutil.copy(FASTCGI_PARAMS, os.path.join(self.etc, "fastcgi_params"))
        return path

    def install_server_block(self, name):
        """The example as copied, with its paths and port moved."""
        path = os.path.join(self.etc, "conf.d", name)
        with open(path) as f:
            text = f.read()
        if not have_ipv6():
            text = re.sub(r"\n\s*listen \[::\]:\d+;", "", text)
        text = text.replace("/var/www", self.jail)
        text = re.sub(r"listen (\[::\]:)?80\d\d;",
                      lambda m: "listen %s%d;" % (m.group(1) or "",
                                                  self.port), text)
        with open(path, "w") as f:
            f.write(text)

    def nginx_args(self):
        return [NGINX, "-p", self.etc + "/", "-e",
                os.path.join(self.etc, "error.log"), "-c",
                os.path.join(self.etc, "nginx.conf")]

    def nginx_start(self):
        self.nginx_stop()
        log = open(os.path.join(self.etc, "stderr.log"), "ab")
        self.nginx = subprocess.Popen(self.nginx_args() +
                                      ["-g", "daemon off;"],
                                      stdin=subprocess.DEVNULL, stdout=log,
                                      stderr=log)
        log.close()
        ok = wait_for(lambda: self.nginx.poll() is not None or
                      self.listening(), 10)
        assert ok and self.nginx.poll() is None, self.nginx_log()

    def listening(self):
        return tcp_accepts(self.port)

    def nginx_log(self):
        out = ""
        for n in ("stderr.log", "error.log"):
            try:
                with open(os.path.join(self.etc, n)) as f:
                    out += f.read()
            except OSError:
                pass
        return out[-3000:]

    def nginx_stop(self):
        if self.nginx is not None and self.nginx.poll() is None:
            self.nginx.terminate()
            self.nginx.wait(10)
        self.nginx = None

    def get(self, path):
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        url = "http://127.0.0.1:%d%s" % (self.port, path)
        with opener.open(url, timeout=20) as r:
            return r.status, r.read()

    def daemon(self):
        with open(self.pidfile) as f:
            return int(f.read())


def need_tools():
    for path, pkg in ((NGINX, "nginx-light"),
                      (FASTCGI_PARAMS, "nginx-common")):
        if not os.path.exists(path):
            pytest.skip("%s is missing (Debian package %s)" % (path, pkg))


@pytest.fixture
def walk(sockdir):
    need_tools()
    w = Walk(sockdir)
    yield w
    w.nginx_stop()
    try:
        pid = w.daemon()
    except (OSError, ValueError):
        pid = None
    if pid and alive(pid):
        kids = descendants(pid)
        kill_quiet(pid, signal.SIGTERM)
        if not wait_for(lambda: not alive(pid), 10):
            for p in [pid] + kids:
                kill_quiet(p)


@pytest.mark.needs_root
@pytest.mark.time_limit(300)
def test_readme_nginx_section(walk):
    cmds = readme_commands()
    assert cmds == EXPECTED
    (make, install, mkdir, copy, start, cp_conf, nginx_t, restart, curl,
     hup, term, cc) = cmds
    for c in (make, install, mkdir, copy):
        walk.sh(c)
    # kfcgi detaches once its workers run; the pidfile names it.
    walk.sh(start)
    pid = walk.daemon()
    assert alive(pid)
    sock = os.path.join(walk.jail, "run", "httpd.sock")
    st = os.stat(sock)
    assert (st.st_uid, st.st_mode & 0o777) == (
        __import__("pwd").getpwnam("www-data").pw_uid, 0o660)
    # nginx: the file goes where the README says, and nginx takes it.
    walk.nginx_conf()
    walk.sh(cp_conf)
    walk.install_server_block("kfcgi.conf")
    assert cp_conf.startswith("cp ") and nginx_t == "nginx -t"
    r = subprocess.run(walk.nginx_args() + ["-t"], capture_output=True,
                       text=True)
    assert r.returncode == 0, r.stderr
    assert restart == "service nginx restart"
    walk.nginx_start()
    out = walk.sh(curl).stdout.encode()
    assert out.startswith(HELLO), out
    assert b"REQUEST_URI /app/hello" in out, out
    # SIGHUP through the pidfile: every worker replaced.
    old = set(children(pid))
    assert len(old) == 3
    walk.sh(hup)
    assert wait_for(lambda: len(children(pid)) == 3 and
                    not (set(children(pid)) & old), 10), children(pid)
    assert walk.get("/app/again")[1].startswith(HELLO)
    # SIGTERM: kfcgi exits; the socket stays, the pidfile is emptied.
    walk.sh(term)
    assert wait_for(lambda: not alive(pid), 10)
    assert os.path.exists(sock)
    assert os.path.getsize(walk.pidfile) == 0
    # The same command again replaces the stale socket.
    walk.sh(start)
    pid2 = walk.daemon()
    assert pid2 != pid and alive(pid2)
    assert walk.get("/app/restarted")[1].startswith(HELLO)
    walk.sh(term)
    assert wait_for(lambda: not alive(pid2), 10)
    # A worker of one's own, built as the README says, runs in the jail.
    lib = os.path.join(walk.dest, "usr/local/lib/libkfcgi_worker.a")
    with open(lib, "rb") as f:
        if b"__asan_" in f.read():
            return      # a SANITIZE=1 build: no static linking with ASan
    shutil.copy(os.path.join(ROOT, "examples", "hello.c"),
                os.path.join(walk.tmp, "app.c"))
    walk.sh(cc, cwd=walk.tmp)
    shutil.copy(os.path.join(walk.tmp, "app"),
                os.path.join(walk.jail, "fcgi-bin", "app"))
    walk.sh(start)
    assert walk.get("/app/own")[1].startswith(HELLO)
    walk.sh(term)


@pytest.mark.needs_root
@pytest.mark.time_limit(120)
def test_nginx_varpool_server_block(walk, bins):
    """examples/nginx-varpool.conf with the kfcgi -r command in its
    comment."""
    with open(os.path.join(ROOT, "examples", "nginx-varpool.conf")) as f:
        text = f.read()
    m = re.search(r"^#\t(kfcgi -r .*?)\n#\t(.*?)\n", text, re.M)
    assert m, text
    cmd = (m.group(1).rstrip("\\ ") + " " + m.group(2).strip()).split()
    os.makedirs(os.path.join(walk.jail, "fcgi-bin"))
    os.makedirs(os.path.join(walk.jail, "run"))
    shutil.copy(bins.need("hello") + "-static",
                os.path.join(walk.jail, "fcgi-bin", "app"))
    argv = [bins.need("kfcgi"), "-P", walk.pidfile] + [
        a.replace("/var/www", walk.jail) for a in cmd[1:]]
    r = subprocess.run(argv, env=walk.env, capture_output=True, text=True,
                       timeout=30)
    assert r.returncode == 0, r.stderr
    walk.nginx_conf()
    shutil.copy(os.path.join(ROOT, "examples", "nginx-varpool.conf"),
                os.path.join(walk.etc, "conf.d", "varpool.conf"))
    walk.install_server_block("varpool.conf")
    walk.nginx_start()
    status, body = walk.get("/app/x")
    assert status == 200 and body.startswith(HELLO), body
    assert b"(extension mode)" in body, body


# ------------------------------------------------------------ systemd units ---

def unit_copies(tmp, name, jail, prog):
    """examples/kfcgi.{socket,service} as NAME.*, moved to jail and our
    build; returns their paths."""
    out = []
    for ext in ("socket", "service"):
        with open(os.path.join(ROOT, "examples", "kfcgi." + ext)) as f:
            text = f.read()
        text = text.replace("/usr/local/sbin/kfcgi",
                            os.path.join(ROOT, "kfcgi"))
        text = text.replace("/var/www", jail).replace("/fcgi-bin/app", prog)
        text = text.replace("kfcgi.socket", name + ".socket")
        path = os.path.join(tmp, "%s.%s" % (name, ext))
        with open(path, "w") as f:
            f.write(text)
        out.append(path)
    return out


def test_systemd_units_verify(sockdir, bins):
    """systemd-analyze finds nothing to say about the unit pair."""
    sa = shutil.which("systemd-analyze")
    if sa is None:
        pytest.skip("systemd-analyze is missing (Debian package systemd)")
    bins.need("kfcgi")
    paths = unit_copies(sockdir, "kfcgi", "/var/www", "/fcgi-bin/app")
    r = subprocess.run([sa, "verify", "--man=no"] + paths, cwd=sockdir,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and r.stdout + r.stderr == "", r
    with open(paths[1]) as f:
        service = f.read()
    assert re.search(r"^Type=notify$", service, re.M)
    assert re.search(r"^ExecStart=\S+ -d ", service, re.M)


@pytest.mark.needs_root
@pytest.mark.time_limit(120)
def test_systemd_real_units(sockdir, jail):
    """Where systemd is PID 1: the pair started, reloaded and stopped by
    systemd itself, readiness and status included."""
    if not os.path.isdir("/run/systemd/system"):
        pytest.skip("systemd is not running as PID 1 (no /run/systemd/system)")
    import fcgiclient
    j = jail()
    os.mkdir(os.path.join(j, "run"))
    name = "kfcgi-test-%d" % os.getpid()
    paths = unit_copies(sockdir, name, j, "/testworker")
    installed = []
    for p in paths:
        dst = os.path.join("/run/systemd/system", os.path.basename(p))
        shutil.copy(p, dst)
        installed.append(dst)

    def ctl(*args, check=True):
        return subprocess.run(["systemctl"] + list(args), check=check,
                              capture_output=True, text=True, timeout=60)

    def show(prop):
        return ctl("show", "-p", prop, "--value", name + ".service").stdout\
            .strip()
    try:
        ctl("daemon-reload")
        ctl("start", name + ".socket")
        ctl("start", name + ".service")     # returns once READY=1 came
        assert show("ActiveState") == "active"
        assert show("StatusText").startswith("3 workers"), show("StatusText")
        main = int(show("MainPID"))
        sock = os.path.join(j, "run", "httpd.sock")
        assert fcgiclient.request(sock).status == 200
        old = set(children(main))
        ctl("reload", name + ".service")    # SIGHUP
        assert wait_for(lambda: len(set(children(main)) - old) == 3, 10)
        assert show("ActiveState") == "active"
        ctl("stop", name + ".service")
        assert show("ActiveState") in ("inactive", "failed")
        assert show("Result") == "success"
    finally:
        ctl("stop", name + ".service", name + ".socket", check=False)
        for p in installed:
            os.unlink(p)
        ctl("daemon-reload", check=False)
