#!/usr/bin/env python3
"""bench/bench.py: kfcgi side by side with workers accepting directly
(spawn-fcgi + multiwatch), and kfcgi -r with a minimal manager of the same
protocol (bench/floor); the -r burst against serial posix_spawns
(bench/spawn64); manager peak RSS; a run through nginx loaded with wrk.

Not a test: it prints numbers and, with --write, BENCHMARKS.md.  Run it
with `make bench` (which builds what it needs and passes --write) or
`sh bench/run.sh [--write]`.  Linux only (/proc).  Every configuration
is started afresh for each run; the repeats alternate between the
configurations so that a slow moment of the machine hits all of them;
the figures are medians of the repeats.

Knobs (environment):
  BENCH_SECONDS   length of each load run, seconds (default 4)
  BENCH_REPEATS   repeats of each run (default 5)
  BENCH_CONNS     concurrent clients of kfcgi-load (default 16)
  BENCH_SIZES     pool sizes compared (default "8 512")
  BENCH_BURST_REPEATS  repeats of the burst, at least BENCH_REPEATS
                  (default 5)
  BENCH_ONLY      sections to run, of: pools libfcgi burst rss nginx
                  (default all)
  BENCH_QUICK=1   BENCH_SECONDS=1 BENCH_REPEATS=1 BENCH_SIZES=8: a smoke run
"""

import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
KFCGI = os.path.join(ROOT, "kfcgi")
LOAD = os.path.join(ROOT, "kfcgi-load")
FLOOR = os.path.join(ROOT, "bench", "floor")
SPAWN64 = os.path.join(ROOT, "bench", "spawn64")
HELLO = os.path.join(ROOT, "examples", "hello")
TESTWORKER = os.path.join(ROOT, "tests", "testworker")
LIBFCGI = os.path.join(ROOT, "tests", "libfcgi-worker")
BACKLOG = 1024
TCK = os.sysconf("SC_CLK_TCK")
SECTIONS = ("pools", "libfcgi", "burst", "rss", "nginx")


def env_int(name, default):
    v = os.environ.get(name, "")
    try:
        return int(v) if v else default
    except ValueError:
        sys.exit("bench: %s=%s: not a number" % (name, v))


QUICK = os.environ.get("BENCH_QUICK") == "1"
SECS = env_int("BENCH_SECONDS", 1 if QUICK else 4)
REPEATS = env_int("BENCH_REPEATS", 1 if QUICK else 5)
CONNS = env_int("BENCH_CONNS", 16)
SIZES = [int(s) for s in os.environ.get(
    "BENCH_SIZES", "8" if QUICK else "8 512").split()]
BURST_REPEATS = env_int("BENCH_BURST_REPEATS", 1 if QUICK else 5)
ONLY = os.environ.get("BENCH_ONLY", " ".join(SECTIONS)).split()


def note(msg):
    print("bench: " + msg, file=sys.stderr, flush=True)


# ------------------------------------------------------------ /proc ---

def stat_fields(pid):
    with open("/proc/%d/stat" % pid) as f:
        data = f.read()
    return data[data.rfind(")") + 2:].split()


def cputicks(pid):
    """utime + stime of pid (fields 14 and 15), in clock ticks."""
    f = stat_fields(pid)
    return int(f[11]) + int(f[12])


def children(pid):
    """Children of pid but kfcgi's guard (a fork of kfcgi that leads the
    workers' process group, pgid == pid).  Each thread has its own list:
    kfcgi's workers are children of its spawning threads."""
    kids = []
    try:
        tids = os.listdir("/proc/%d/task" % pid)
    except OSError:
        return []
    for tid in tids:
        try:
            with open("/proc/%d/task/%s/children" % (pid, tid)) as f:
                kids += [int(p) for p in f.read().split()]
        except OSError:
            pass
    return [k for k in kids if not is_group_leader(k)]


def is_group_leader(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            data = f.read()
    except OSError:
        return False
    return int(data[data.rfind(")") + 2:].split()[2]) == pid


def comm(pid):
    try:
        with open("/proc/%d/comm" % pid) as f:
            return f.read().strip()
    except OSError:
        return ""


def cpu_times():
    """(steal, total) ticks of all CPUs from /proc/stat."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    return (v[7] if len(v) > 7 else 0), sum(v[:8])


def vmhwm_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


# -------------------------------------------------------- processes ---

class Manager:
    """A process manager (kfcgi, floor, multiwatch) on a socket, in its
    own process group so that it and its workers go together."""

    def __init__(self, name, argv, sock, worker, n, tmp):
        self.name, self.argv, self.sock = name, argv, sock
        self.worker, self.n = worker, n
        self.log = open(os.path.join(tmp, "managers.log"), "ab")
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL,
                                     stdout=self.log, stderr=self.log,
                                     start_new_session=True)
        self.pid = self.proc.pid

    def ready(self, timeout=60):
        """Until n workers run the worker program and one request works."""
        want = os.path.basename(self.worker)[:15]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("%s exited %s at start; see managers.log"
                                   % (self.name, self.proc.returncode))
            kids = children(self.pid)
            if len(kids) >= self.n and all(comm(k) == want for k in kids):
                r = subprocess.run([LOAD, "-t", "5", self.sock],
                                   capture_output=True, text=True)
                if r.returncode == 0:
                    return
            time.sleep(0.05)
        raise RuntimeError("%s: %d workers not ready in %ds" %
                           (self.name, self.n, timeout))

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                pass
        try:
            os.killpg(self.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        self.proc.wait()
        self.log.close()
        # An io_uring accept may keep the listener open for a moment
        # after its manager exits (floor -u leaves that to the kernel):
        # the next manager must not find it there.
        try:
            os.unlink(self.sock)
        except FileNotFoundError:
            pass


def kfcgi_argv(sock, worker, n, var):
    extra = [var, "-n", str(n), "-N", str(n)] if var else ["-n", str(n)]
    return [KFCGI, "-d", "-p", "/", "-l", str(BACKLOG), "-s", sock] + \
        extra + ["--", worker]


def floor_argv(sock, worker, n, ring=None):
    return [FLOOR] + ([ring] if ring else []) + \
        ["-l", str(BACKLOG), "-n", str(n), "-s", sock, worker]


def floor_has_uring():
    """bench/floor was built with liburing (-u and -U)."""
    r = subprocess.run([FLOOR, "-u"], capture_output=True, text=True)
    return "without liburing" not in r.stderr


def direct_argv(sock, worker, n):
    return [shutil.which("spawn-fcgi"), "-n", "-b", str(BACKLOG), "-s",
            sock, "--", shutil.which("multiwatch"), "-f", str(n), "--",
            worker]


KINDS = {
    "direct": lambda s, w, n: direct_argv(s, w, n),
    "kfcgi fixed": lambda s, w, n: kfcgi_argv(s, w, n, None),
    "kfcgi -e": lambda s, w, n: kfcgi_argv(s, w, n, "-e"),
    "kfcgi -r": lambda s, w, n: kfcgi_argv(s, w, n, "-r"),
    # The same on libevent: the hot path where io_uring is not to be had.
    "kfcgi -r libevent": lambda s, w, n: ["/usr/bin/env", "KFCGI_NO_URING=1"]
    + kfcgi_argv(s, w, n, "-r"),
    "floor": lambda s, w, n: floor_argv(s, w, n),
    # Issue 9's ideal on io_uring, and that with DEFER_TASKRUN: how far
    # batching the kernel crossings gets the protocol alone, here.
    "floor io_uring": lambda s, w, n: floor_argv(s, w, n, "-u"),
    "floor io_uring defer": lambda s, w, n: floor_argv(s, w, n, "-U"),
}


def show_argv(argv, tmp):
    out = []
    for a in argv:
        a = a.replace(tmp, "$TMP").replace(ROOT + "/", "")
        a = re.sub(r"^/usr/s?bin/", "", a)
        out.append(a)
    return " ".join(out)


def parse_kv(text):
    return {k: v for k, v in (w.split("=", 1) for w in text.split()
                              if "=" in w)}


# ------------------------------------------------------- load runs ---

def load_run(kind, worker, n, tmp, secs=None):
    """One run: start, kfcgi-load -c CONNS -d secs, manager CPU, stop."""
    sock = os.path.join(tmp, "s.sock")
    m = Manager(kind, KINDS[kind](sock, worker, n), sock, worker, n, tmp)
    try:
        m.ready()
        t0 = cputicks(m.pid)
        r = subprocess.run([LOAD, "-c", str(CONNS), "-d",
                            str(secs or SECS), sock],
                           capture_output=True, text=True)
        t1 = cputicks(m.pid)
        nkids = len(children(m.pid))
    finally:
        m.stop()
    f = parse_kv(r.stdout)
    req = int(f.get("requests", 0))
    return {
        "rps": float(f.get("rps", 0)), "p50": int(f.get("p50_us", 0)),
        "p99": int(f.get("p99_us", 0)), "errors": int(f.get("errors", 0)),
        "cpu": (t1 - t0) * 1e6 / TCK / req if req else float("nan"),
        "workers": nkids, "requests": req,
        "argv": show_argv(m.argv, tmp),
    }


def med(runs, key):
    return statistics.median(r[key] for r in runs)


def alternate(configs, tmp, run):
    """configs: list of keys; run(key) -> dict.  Medians per key."""
    out = {c: [] for c in configs}
    for rep in range(REPEATS):
        # every other round backwards, so that no configuration always
        # follows the same one
        for c in (configs if rep % 2 == 0 else configs[::-1]):
            note("repeat %d/%d: %s" % (rep + 1, REPEATS, c if
                 isinstance(c, str) else "%s -n %d" % c))
            out[c].append(run(c))
    return out


def summary(runs):
    s = {k: med(runs, k) for k in ("rps", "p50", "p99", "cpu", "workers")}
    s["errors"] = sum(r["errors"] for r in runs)
    s["rps_lo"] = min(r["rps"] for r in runs)
    s["rps_hi"] = max(r["rps"] for r in runs)
    s["argv"] = runs[0]["argv"]
    s["runs"] = runs
    return s


def pools(tmp, sizes, worker, kinds):
    configs = [(k, n) for n in sizes for k in kinds]
    res = alternate(configs, tmp,
                    lambda c: load_run(c[0], worker, c[1], tmp))
    return {c: summary(r) for c, r in res.items()}


# ---------------------------------------------------------- burst ---

def burst_once(tmp, pool="-r"):
    """Idle -r (or -e) -n 2 -N 64, then 64 concurrent one-second
    requests.  Each worker writes its CLOCK_MONOTONIC start time
    (testworker --startclock), so nothing polls while it runs: on two
    cores a poller would take one from the spawns it is timing."""
    sock = os.path.join(tmp, "burst.sock")
    starts = os.path.join(tmp, "starts")
    if os.path.exists(starts):
        os.unlink(starts)
    argv = [KFCGI, "-d", "-p", "/", "-l", str(BACKLOG), "-s", sock, pool,
            "-n", "2", "-N", "64", "--", TESTWORKER,
            "--startclock=" + starts]
    m = Manager("kfcgi burst", argv, sock, TESTWORKER, 2, tmp)
    try:
        m.ready()
        time.sleep(0.2)
        t0 = cputicks(m.pid)
        start = time.monotonic_ns()
        lp = subprocess.Popen([LOAD, "-c", "64", "-n", "64", "-d", "10",
                               "-q", "sleep=1000", sock],
                              stdout=subprocess.PIPE, text=True)
        out = lp.communicate()[0]
        t1 = cputicks(m.pid)
    finally:
        m.stop()
    f = parse_kv(out)
    return {"spawned": nth_start(starts, start, 62),
            "last": float(f.get("seconds", "nan")) * 1000,
            "answered": int(f.get("requests", 0)),
            "errors": int(f.get("errors", 0)),
            "cpu_ms": (t1 - t0) * 1000 / TCK,
            "argv": show_argv(argv, tmp)}


def nth_start(path, since_ns, n):
    """Milliseconds from since_ns to the n-th worker start after it."""
    with open(path) as f:
        ns = sorted(int(l.split()[1]) for l in f if l.strip())
    ns = [t for t in ns if t >= since_ns]
    return (ns[n - 1] - since_ns) / 1e6 if len(ns) >= n else float("nan")


# kfcgi spawns from one helper thread per online core, at most 8.
SPAWN_THREADS = max(1, min(os.cpu_count() or 1, 8))


def spawn64_once(threads=1):
    r = subprocess.run([SPAWN64, "-t", str(threads), TESTWORKER],
                       capture_output=True, text=True, check=True)
    return float(parse_kv(r.stdout)["ms"])


def burst(tmp):
    spawns, tspawns, bursts, ebursts = [], [], [], []
    reps = max(REPEATS, BURST_REPEATS)
    for rep in range(reps):
        note("repeat %d/%d: burst" % (rep + 1, reps))
        spawns.append(spawn64_once())
        tspawns.append(spawn64_once(SPAWN_THREADS))
        bursts.append(burst_once(tmp))
        ebursts.append(burst_once(tmp, "-e"))
    return {"spawn64": statistics.median(spawns),
            "spawn64_t": statistics.median(tspawns), "tspawn_runs": tspawns,
            "spawned": med(bursts, "spawned"), "last": med(bursts, "last"),
            "answered": min(b["answered"] for b in bursts),
            "errors": sum(b["errors"] for b in bursts),
            "cpu_ms": med(bursts, "cpu_ms"), "argv": bursts[0]["argv"],
            "spawn_runs": spawns, "burst_runs": bursts,
            "e_spawned": med(ebursts, "spawned"), "e_last": med(ebursts, "last"),
            "e_errors": sum(b["errors"] for b in ebursts)}


# ------------------------------------------------------------ RSS ---

def rss(tmp):
    """Manager VmHWM with 1000 workers, after a short load."""
    out = {}
    for kind in ("kfcgi -r", "kfcgi fixed", "floor"):
        note("rss: %s with 1000 workers" % kind)
        sock = os.path.join(tmp, "rss.sock")
        m = Manager(kind, KINDS[kind](sock, TESTWORKER, 1000), sock,
                    TESTWORKER, 1000, tmp)
        try:
            m.ready(timeout=120)
            subprocess.run([LOAD, "-c", str(CONNS), "-d", "1", sock],
                           capture_output=True)
            out[kind] = (vmhwm_kib(m.pid), show_argv(m.argv, tmp))
        finally:
            m.stop()
    return out


# ---------------------------------------------------------- nginx ---

NGINX_CONF = """%(user)sworker_processes 1;
daemon off;
pid %(tmp)s/nginx.pid;
error_log %(tmp)s/nginx-error.log warn;
events { worker_connections 1024; }
http {
    access_log off;
    client_body_temp_path %(tmp)s/ngx-body;
    fastcgi_temp_path %(tmp)s/ngx-fastcgi;
    proxy_temp_path %(tmp)s/ngx-proxy;
    uwsgi_temp_path %(tmp)s/ngx-uwsgi;
    scgi_temp_path %(tmp)s/ngx-scgi;
    server {
        listen 127.0.0.1:%(port)d;
        location / {
            include /etc/nginx/fastcgi_params;
            fastcgi_pass unix:%(sock)s;
        }
    }
}
"""


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wrk_us(text):
    m = re.match(r"([\d.]+)(us|ms|s)$", text)
    if not m:
        return float("nan")
    return float(m.group(1)) * {"us": 1, "ms": 1e3, "s": 1e6}[m.group(2)]


def parse_wrk(out):
    f = {"rps": float("nan"), "p50": float("nan"), "p99": float("nan"),
         "errors": 0}
    m = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if m:
        f["rps"] = float(m.group(1))
    for pct, key in (("50", "p50"), ("99", "p99")):
        m = re.search(r"^\s+%s%%\s+(\S+)" % pct, out, re.M)
        if m:
            f[key] = wrk_us(m.group(1))
    for pat in (r"Non-2xx or 3xx responses: (\d+)",
                r"Socket errors: connect (\d+), read (\d+), write (\d+), "
                r"timeout (\d+)"):
        m = re.search(pat, out)
        if m:
            f["errors"] += sum(int(g) for g in m.groups())
    return f


def nginx_once(kind, n, tmp):
    sock = os.path.join(tmp, "ngx.sock")
    port = free_port()
    conf = os.path.join(tmp, "nginx.conf")
    with open(conf, "w") as f:
        f.write(NGINX_CONF % {"tmp": tmp, "port": port, "sock": sock,
                              "user": "user root;\n" if os.geteuid() == 0
                              else ""})
    m = Manager(kind, KINDS[kind](sock, HELLO, n), sock, HELLO, n, tmp)
    ngx = None
    try:
        m.ready()
        ngx = subprocess.Popen(["nginx", "-p", tmp, "-c", conf, "-e",
                                os.path.join(tmp, "nginx-error.log")],
                               stdin=subprocess.DEVNULL,
                               stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL,
                               start_new_session=True)
        url = "http://127.0.0.1:%d/" % port
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), 1).close()
                break
            except OSError:
                time.sleep(0.05)
        t0 = cputicks(m.pid)
        r = subprocess.run(["wrk", "-t", "1", "-c", str(CONNS), "-d",
                            "%ds" % SECS, "--latency", url],
                           capture_output=True, text=True)
        t1 = cputicks(m.pid)
    finally:
        if ngx is not None:
            ngx.send_signal(signal.SIGQUIT)
            try:
                ngx.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(ngx.pid, signal.SIGKILL)
                ngx.wait()
        m.stop()
    f = parse_wrk(r.stdout)
    m_req = re.search(r"(\d+) requests in", r.stdout)
    req = int(m_req.group(1)) if m_req else 0
    f["cpu"] = (t1 - t0) * 1e6 / TCK / req if req else float("nan")
    f["workers"] = n
    f["argv"] = show_argv(m.argv, tmp)
    return f


def nginx(tmp):
    n = SIZES[0]
    kinds = ["direct", "kfcgi fixed", "kfcgi -r"]
    res = alternate(kinds, tmp, lambda k: nginx_once(k, n, tmp))
    out = {}
    for k, runs in res.items():
        s = {key: statistics.median(r[key] for r in runs)
             for key in ("rps", "p50", "p99", "cpu")}
        s["errors"] = sum(r["errors"] for r in runs)
        s["rps_lo"] = min(r["rps"] for r in runs)
        s["rps_hi"] = max(r["rps"] for r in runs)
        s["argv"] = runs[0]["argv"]
        s["runs"] = runs
        out[k] = s
    return out, n


# ---------------------------------------------------------- report ---

def machine():
    model, mhz = "?", "?"
    with open("/proc/cpuinfo") as f:
        for line in f:
            k, _, v = line.partition(":")
            if k.strip() == "model name" and model == "?":
                model = v.strip()
            if k.strip() == "cpu MHz" and mhz == "?":
                mhz = v.strip()
    mem = "?"
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                mem = "%.1f GiB" % (int(line.split()[1]) / 1048576)
    deb = ""
    try:
        with open("/etc/debian_version") as f:
            deb = "Debian " + f.read().strip() + ", "
    except OSError:
        pass
    return ("%s (%s MHz), %d CPUs (nproc), %s RAM; %sLinux %s" %
            (model, mhz, os.cpu_count(), mem, deb, os.uname().release))


def versions():
    out = []
    for argv in (["nginx", "-v"], ["wrk", "-v"], ["spawn-fcgi", "-v"],
                 ["multiwatch", "-v"]):
        try:
            r = subprocess.run(argv, capture_output=True, text=True)
            line = (r.stdout + r.stderr).splitlines()[0]
        except (OSError, IndexError):
            line = argv[0] + ": missing"
        out.append(line.split(" - ")[0].split(" Copyright")[0].strip())
    return "; ".join(out)


def fmt(v, spec="%.0f"):
    if v != v:     # nan
        return "-"
    return spec % v


def verdict(ok):
    return "met" if ok else "**not met**"


class Report:
    def __init__(self):
        self.lines = []

    def add(self, s=""):
        self.lines.append(s)

    def text(self):
        return "\n".join(self.lines) + "\n"


def pool_table(rep, res, title):
    rep.add("| pool | workers | req/s (median) | req/s (min-max) | p50 us "
            "| p99 us | manager CPU us/conn | errors | workers at end |")
    rep.add("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for (kind, n), s in res.items():
        rep.add("| %s | %d | %s | %s-%s | %s | %s | %s | %d | %s |" % (
            kind, n, fmt(s["rps"]), fmt(s["rps_lo"]), fmt(s["rps_hi"]),
            fmt(s["p50"]), fmt(s["p99"]), fmt(s["cpu"], "%.1f"),
            s["errors"], fmt(s["workers"])))
    rep.add()
    rep.add("Commands (%s):" % title)
    rep.add()
    rep.add("    kfcgi-load -c %d -d %d $TMP/s.sock     # the load, against "
            "each of:" % (CONNS, SECS))
    for s in res.values():
        rep.add("    " + s["argv"])
    rep.add()


def ratio(a, b):
    return a / b if b and a == a and b == b else float("nan")


def paired(a, b, key):
    """Median of the ratios of a's and b's runs of the same repeat, which
    ran one right after the other: slow drifts of the machine cancel."""
    rs = [ratio(x[key], y[key]) for x, y in zip(a["runs"], b["runs"])]
    rs = [r for r in rs if r == r]
    return statistics.median(rs) if rs else float("nan")


def pool_ratios(rep, res, sizes):
    rep.add("Each ratio is the median of the ratios within a round of "
            "repeats (both runs in the same round, every other round in "
            "reverse order).")
    rep.add()
    rep.add("| ratio | pool size | value | target | |")
    rep.add("|---|---:|---:|---:|---|")
    for n in sizes:
        d, fx = res.get(("direct", n)), res.get(("kfcgi fixed", n))
        v, fl = res.get(("kfcgi -r", n)), res.get(("floor", n))
        if d and fx:
            r = paired(fx, d, "rps")
            rep.add("| req/s kfcgi fixed / direct | %d | %.2f | >= 0.97 | %s |"
                    % (n, r, verdict(r >= 0.97)))
        el = res.get(("kfcgi -e", n))
        if d and el:
            r = paired(el, d, "rps")
            rep.add("| req/s kfcgi -e / direct | %d | %.2f | >= 0.97 | %s |"
                    % (n, r, verdict(r >= 0.97)))
        if v and fl:
            r = paired(v, fl, "cpu")
            rep.add("| manager CPU/conn kfcgi -r / floor | %d | %.2f | <= 0.8 "
                    "| %s |" % (n, r, verdict(r <= 0.8)))
            r = paired(v, fl, "rps")
            rep.add("| req/s kfcgi -r / floor | %d | %.2f | >= 1 | %s |" %
                    (n, r, verdict(r >= 1)))
            r = paired(v, fl, "p99")
            rep.add("| p99 kfcgi -r / floor | %d | %.2f | <= 1 | %s |" %
                    (n, r, verdict(r <= 1)))
        for kind in ("kfcgi -r libevent", "floor io_uring",
                     "floor io_uring defer"):
            o = res.get((kind, n))
            if o and fl:
                r = paired(o, fl, "cpu")
                rep.add("| manager CPU/conn %s / floor | %d | %.2f "
                        "| (reference) | |" % (kind, n, r))
        fd = res.get(("floor io_uring defer", n))
        if v and fd:
            r = paired(v, fd, "cpu")
            rep.add("| manager CPU/conn kfcgi -r / floor io_uring defer | %d "
                    "| %.2f | (reference) | |" % (n, r))
    if len(sizes) > 1:
        lo, hi = sizes[0], sizes[-1]
        for kind in ("kfcgi -r", "floor"):
            a, b = res.get((kind, lo)), res.get((kind, hi))
            if a and b:
                r = paired(b, a, "cpu")
                tgt = "<= 1.2" if kind == "kfcgi -r" else "(reference)"
                rep.add("| manager CPU/conn %s, -n %d / -n %d | | %.2f | %s | "
                        "%s |" % (kind, hi, lo, r, tgt,
                                  verdict(r <= 1.2) if kind == "kfcgi -r"
                                  else ""))
    rep.add()


def report(results, started, elapsed):
    rep = Report()
    rep.add("# Benchmarks")
    rep.add()
    rep.add("Generated by `make bench` (`sh bench/run.sh --write`, "
            "bench/bench.py) on %s, in %.0f s.  Do not edit by hand: run it "
            "again.  Numbers from one machine; the ratios, measured side by "
            "side in one run, are what carries over." %
            (time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(started)),
             elapsed))
    rep.add()
    rep.add("- Machine: " + machine())
    rep.add("- Peers: " + versions())
    rep.add("- CPU steal during the run, as /proc/stat reports it (some "
            "hypervisors report none): %s.  The min-max columns show how "
            "much one configuration varies from run to run here." %
            fmt(100 * results.get("steal", float("nan")), "%.1f%%"))
    rep.add("- Method: each configuration is started afresh (%d workers "
            "started and answering before the clock starts), loaded by "
            "`kfcgi-load -c %d -d %d` (one request per connection, Unix "
            "socket), stopped; %d repeat(s), alternating between the "
            "configurations (every other round backwards); figures are "
            "medians.  Manager CPU is the "
            "manager's utime+stime from /proc/PID/stat (%d ticks a second) "
            "before and after, divided by the answered connections.  "
            "Backlog %d everywhere." %
            (SIZES[0], CONNS, SECS, REPEATS, TCK, BACKLOG))
    rep.add("- Pools: *direct* is spawn-fcgi + multiwatch (workers accept "
            "on the shared socket themselves; the manager is multiwatch); "
            "*kfcgi fixed* is the same, supervised by kfcgi; *kfcgi -r* "
            "hands each connection to a worker over its channel; *floor* "
            "is bench/floor.c, only the -r protocol's syscalls (epoll, "
            "accept4, sendmsg of cookie + descriptor, close, recv; LIFO "
            "of idle workers, FIFO of waiting connections, nothing else): "
            "the yardstick for kfcgi -r.  *floor io_uring* (`floor -u`) "
            "is the same protocol as issue 9 describes its ideal on "
            "io_uring (multishot accept, sendmsg linked to close, a recv "
            "re-armed per worker, one io_uring_enter a loop), and *floor "
            "io_uring defer* (`-U`) that with IORING_SETUP_DEFER_TASKRUN; "
            "both are references.  -r pools are fixed at -n = -N.")
    rep.add("- Knobs: BENCH_SECONDS, BENCH_REPEATS, BENCH_CONNS, "
            "BENCH_SIZES, BENCH_BURST_REPEATS, BENCH_ONLY (pools libfcgi burst rss nginx), "
            "BENCH_QUICK=1; see bench/bench.py.")
    rep.add()
    if "pools" in results:
        res = results["pools"]
        rep.add("## Pools, worker examples/hello")
        rep.add()
        pool_table(rep, res, "$TMP is a temporary directory")
        rep.add("examples/hello is built on libkfcgi_worker, whose classic "
                "mode (direct, kfcgi fixed, kfcgi -e) waits on the shared "
                "listening socket in an epoll instance of its own with "
                "EPOLLEXCLUSIVE, so that a connection wakes one idle "
                "worker, as libfcgi's accept(2) below does; without the "
                "flag (ppoll(2)) every idle worker woke for each "
                "connection.")
        rep.add()
        rep.add("### Ratios")
        rep.add()
        pool_ratios(rep, res, SIZES)
    if "libfcgi" in results:
        rep.add("## Pools, worker tests/libfcgi-worker (Debian libfcgi, "
                "classic accept only)")
        rep.add()
        pool_table(rep, results["libfcgi"], "libfcgi")
        pool_ratios(rep, results["libfcgi"], SIZES)
    if "burst" in results:
        b = results["burst"]
        rep.add("## Burst")
        rep.add()
        rep.add("Idle `%s`, then `kfcgi-load -c 64 -n 64 -q sleep=1000`: 64 "
                "concurrent requests that each take one second in "
                "tests/testworker.  The time until 64 run is until the 62nd "
                "worker started after the load was launched wrote its "
                "CLOCK_MONOTONIC time (testworker --startclock), after its "
                "exec and dynamic linking; nothing polls meanwhile.  Serial spawns: "
                "`bench/spawn64 tests/testworker`, 64 posix_spawns one "
                "after another with the same descriptors and environment; "
                "with -t, shared by that many threads, as kfcgi spawns." %
                b["argv"])
        rep.add()
        tgt_last = 1000 + b["spawn64"] + 150
        rep.add("| measure | ms (median) | runs | target | |")
        rep.add("|---|---:|---|---:|---|")
        rep.add("| 64 serial posix_spawns | %.1f | %s | | |" % (
            b["spawn64"], ", ".join("%.0f" % x for x in b["spawn_runs"])))
        rep.add("| 64 posix_spawns from %d threads (spawn64 -t %d) | %.1f | "
                "%s | | |" % (SPAWN_THREADS, SPAWN_THREADS, b["spawn64_t"],
                              ", ".join("%.0f" % x for x in
                                        b["tspawn_runs"])))
        rep.add("| until 64 workers run | %s | %s | <= %.0f (0.6 x serial) "
                "| %s |" % (fmt(b["spawned"], "%.1f"),
                            ", ".join(fmt(x["spawned"]) for x in
                                      b["burst_runs"]),
                            0.6 * b["spawn64"],
                            verdict(b["spawned"] <= 0.6 * b["spawn64"])))
        rep.add("| until the last answer | %.0f | %s | <= %.0f (1000 + "
                "serial + 150) | %s |" % (
                    b["last"], ", ".join(fmt(x["last"]) for x in
                                         b["burst_runs"]), tgt_last,
                    verdict(b["last"] <= tgt_last)))
        rep.add("| -e: until 64 workers run | %s | | as -r | %s |" % (
            fmt(b["e_spawned"], "%.1f"),
            verdict(b["e_spawned"] <= 1.2 * b["spawned"])))
        rep.add("| -e: until the last answer | %s | | <= 1250 | %s |" % (
            fmt(b["e_last"]), verdict(b["e_last"] <= 1250)))
        rep.add("| manager CPU during the burst | %s | | | |" %
                ("%.0f" % b["cpu_ms"] if b["cpu_ms"] > 0 else
                 "< %.0f (one tick)" % (1000 / TCK)))
        rep.add()
        rep.add("Ratio, time to 64 workers / 64 serial spawns, median of "
                "each repeat's: %.2f (target <= 0.6).  Answered: at least "
                "%d of 64 in each run; errors in all runs: %d." %
                (statistics.median(ratio(x["spawned"], y) for x, y in
                                   zip(b["burst_runs"], b["spawn_runs"])),
                 b["answered"], b["errors"]))
        rep.add()
    if "rss" in results:
        rep.add("## Manager peak RSS, 1000 workers")
        rep.add()
        rep.add("VmHWM from /proc/PID/status after the workers started and "
                "a 1 s load (worker tests/testworker).")
        rep.add()
        rep.add("| manager | VmHWM MiB | target | | command |")
        rep.add("|---|---:|---:|---|---|")
        for kind, (kib, argv) in results["rss"].items():
            tgt = kind == "kfcgi -r"
            rep.add("| %s | %.2f | %s | %s | `%s` |" % (
                kind, kib / 1024, "<= 2" if tgt else "",
                verdict(kib <= 2048) if tgt else "", argv))
        rep.add()
    if "nginx" in results:
        res, n = results["nginx"]
        rep.add("## Through nginx")
        rep.add()
        rep.add("nginx-light (one worker process, `fastcgi_pass unix:`, a "
                "new FastCGI connection per request, config generated in "
                "$TMP, loopback port) loaded by `wrk -t 1 -c %d -d %ds "
                "--latency http://127.0.0.1:PORT/`, worker examples/hello, "
                "%d workers; the configuration is NGINX_CONF in "
                "bench/bench.py." % (CONNS, SECS, n))
        rep.add()
        rep.add("| pool | req/s (median) | req/s (min-max) | p50 us | p99 us "
                "| manager CPU us/req | errors |")
        rep.add("|---|---:|---:|---:|---:|---:|---:|")
        for k, s in res.items():
            rep.add("| %s | %s | %s-%s | %s | %s | %s | %d |" % (
                k, fmt(s["rps"]), fmt(s["rps_lo"]), fmt(s["rps_hi"]),
                fmt(s["p50"]), fmt(s["p99"]), fmt(s["cpu"], "%.1f"),
                s["errors"]))
        rep.add()
        d, fx = res.get("direct"), res.get("kfcgi fixed")
        if d and fx:
            rep.add("Ratio, req/s kfcgi fixed / direct through nginx: %.2f "
                    "(median of the repeats' ratios)." %
                    paired(fx, d, "rps"))
            rep.add()
    return rep.text()


def need(paths):
    for p in paths:
        if not os.access(p, os.X_OK):
            sys.exit("bench: %s: not built (run make bench)" % p)
    for prog in ("spawn-fcgi", "multiwatch", "nginx", "wrk"):
        if shutil.which(prog) is None:
            sys.exit("bench: %s: missing (sh tools/deps.sh test)" % prog)


def main():
    write = "--write" in sys.argv[1:]
    bad = [a for a in sys.argv[1:] if a != "--write"]
    if bad:
        sys.exit("usage: bench/run.sh [--write]")
    for s in ONLY:
        if s not in SECTIONS:
            sys.exit("bench: BENCH_ONLY: %s: not one of %s" %
                     (s, " ".join(SECTIONS)))
    need([KFCGI, LOAD, FLOOR, SPAWN64, HELLO, TESTWORKER, LIBFCGI])
    started = time.time()
    t0 = time.monotonic()
    cpu0 = cpu_times()
    tmp = tempfile.mkdtemp(prefix="kfcgi-bench.")
    results = {}
    try:
        if "pools" in ONLY:
            results["pools"] = pools(tmp, SIZES, HELLO, [
                k for k in KINDS if floor_has_uring() or "io_uring" not in k])
        if "libfcgi" in ONLY:
            results["libfcgi"] = pools(tmp, SIZES, LIBFCGI,
                                       ["direct", "kfcgi fixed", "kfcgi -e"])
        if "burst" in ONLY:
            results["burst"] = burst(tmp)
        if "rss" in ONLY:
            results["rss"] = rss(tmp)
        if "nginx" in ONLY:
            results["nginx"] = nginx(tmp)
    except KeyboardInterrupt:
        sys.exit(130)
    except RuntimeError as e:
        sys.exit("bench: %s" % e)
    finally:
        log = os.path.join(tmp, "managers.log")
        if os.path.exists(log):
            # A timed run ends with requests in flight: their workers
            # find the connection closed or reset, as expected.
            with open(log, errors="replace") as f:
                odd = [l for l in f if "running workers as root" not in l
                       and not l.rstrip().endswith(("Broken pipe",
                                                    "reset by peer"))
                       and ": start: " not in l and ": stop: " not in l
                       and not l.startswith("floor: ")
                       and "stop:" not in l]
            if odd:
                note("managers logged %d other lines, the first ones:" %
                     len(odd))
                for l in odd[:5]:
                    note("  " + l.rstrip())
        shutil.rmtree(tmp, ignore_errors=True)
    cpu1 = cpu_times()
    results["steal"] = ratio(cpu1[0] - cpu0[0], cpu1[1] - cpu0[1])
    text = report(results, started, time.monotonic() - t0)
    sys.stdout.write(text)
    if write:
        with open(os.path.join(ROOT, "BENCHMARKS.md"), "w") as f:
            f.write(text)
        note("wrote BENCHMARKS.md")


if __name__ == "__main__":
    main()
