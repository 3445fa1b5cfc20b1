"""kfcgi-load(1): one request as a health check, the load mode's figures,
addresses (Unix path, unix:, TCP, [IPv6]) and one-line errors."""

import os
import socket
import subprocess
import time

import pytest

from conftest import kill_quiet

LOAD_KEYS = ("requests", "errors", "connect_errors", "io_errors",
             "protocol_errors", "status_errors", "timeout_errors", "seconds",
             "rps", "p50_us", "p90_us", "p99_us", "max_us")


def run(bins, *args, timeout=30):
    t0 = time.monotonic()
    r = subprocess.run([bins.need("kfcgi_load")] + [str(a) for a in args],
                       capture_output=True, text=True, timeout=timeout)
    r.elapsed = time.monotonic() - t0
    return r


def one_line(r):
    lines = r.stderr.splitlines()
    assert len(lines) == 1, r.stderr
    assert lines[0].startswith("kfcgi-load: "), r.stderr
    return lines[0]


def kv(text):
    return dict(line.split("=", 1) for line in text.splitlines()
                if "=" in line)


def test_single_request_prints_body(kfcgi, bins):
    kfcgi.start(["-n", "1"], wait_workers=1)
    r = run(bins, "-q", "info", kfcgi.sock)
    assert r.returncode == 0, r
    assert r.stderr == ""
    assert not r.stdout.startswith("Status:"), r.stdout
    body = kv(r.stdout)
    assert int(body["pid"]) in kfcgi.workers(), r.stdout
    assert body["mode"] == "classic"
    # -H: the CGI headers too; unix: is the same socket
    r = run(bins, "-H", "unix:" + kfcgi.sock)
    assert r.returncode == 0, r
    assert r.stdout.startswith("Status: 200 OK\n"), r.stdout
    assert "\n\npid=" in r.stdout


def test_parameters_reach_the_worker(kfcgi, bins):
    """The query makes REQUEST_URI; -e replaces it (hello prints it), here
    through the variable pool."""
    kfcgi.start(["-r", "-n", "1"], prog=bins.need("hello"), wait_workers=1)
    r = run(bins, "-q", "a=1", kfcgi.sock)
    assert r.returncode == 0, r
    assert "REQUEST_URI /?a=1\n" in r.stdout, r.stdout
    assert "(extension mode)" in r.stdout, r.stdout
    r = run(bins, "-q", "a=1", "-e", "REQUEST_URI=/x", "-e",
            "REQUEST_URI=/health", kfcgi.sock)
    assert r.returncode == 0, r
    assert "REQUEST_URI /health\n" in r.stdout, r.stdout


def test_dead_socket_one_line(bins, sockdir):
    path = os.path.join(sockdir, "dead.sock")
    s = socket.socket(socket.AF_UNIX)
    s.bind(path)                # bound, never listening: refused
    try:
        r = run(bins, path)
    finally:
        s.close()
    assert r.returncode == 1 and r.stdout == "", r
    assert "cannot connect" in one_line(r) and path in r.stderr
    assert r.elapsed < 2, "gave up after %.1fs, not at once" % r.elapsed
    r = run(bins, os.path.join(sockdir, "none.sock"))
    assert r.returncode == 1, r
    assert "No such file" in one_line(r)


def test_tcp_address_and_closed_port(bins):
    """HOST:PORT and [V6]:PORT: the test worker accepting on a TCP socket
    given as its descriptor 0, as any classic FastCGI worker."""
    for family, host, fmt in ((socket.AF_INET, "127.0.0.1", "%s:%d"),
                              (socket.AF_INET6, "::1", "[%s]:%d")):
        try:
            ls = socket.socket(family)
            ls.bind((host, 0))
        except OSError:
            pytest.skip("no %s loopback" % host)
        ls.listen(8)
        addr = fmt % (host, ls.getsockname()[1])
        w = subprocess.Popen([bins.need("testworker")], stdin=ls.fileno(),
                             stdout=subprocess.DEVNULL)
        try:
            r = run(bins, "-q", "info", addr)
        finally:
            kill_quiet(w.pid)
            w.wait()
        assert r.returncode == 0, r
        assert kv(r.stdout)["pid"] == str(w.pid), r.stdout
        ls.close()                  # now nothing listens there
        r = run(bins, addr)
        assert r.returncode == 1, r
        assert "refused" in one_line(r), r.stderr


def test_incomplete_answers_fail(kfcgi, bins):
    kfcgi.start(["-n", "1"], wait_workers=1)
    r = run(bins, "-q", "crash", kfcgi.sock)
    assert r.returncode == 1 and r.stdout == "", r
    assert "connection lost" in one_line(r)
    r = run(bins, "-t", "1", "-q", "hang", kfcgi.sock)
    assert r.returncode == 1 and r.stdout == "", r
    assert "in time" in one_line(r)
    assert 0.9 < r.elapsed < 5, r.elapsed


@pytest.mark.parametrize("junk", [
    b"HTTP/1.0 400 Bad Request\r\n\r\n",
    bytes([2, 6, 0, 1, 0, 2, 0, 0]) + b"hi",    # STDOUT, version 2
    bytes([1, 6, 0, 7, 0, 2, 0, 0]) + b"hi",    # STDOUT, request 7
])
def test_not_fastcgi(bins, sockdir, junk):
    """Something that is no FastCGI application answers with junk."""
    path = os.path.join(sockdir, "junk.sock")
    ls = socket.socket(socket.AF_UNIX)
    ls.bind(path)
    ls.listen(1)
    p = subprocess.Popen([bins.need("kfcgi_load"), path],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True)
    c, _ = ls.accept()
    c.recv(4096)                # the request, so that no reset comes first
    c.sendall(junk)
    c.close()
    out, err = p.communicate(timeout=10)
    ls.close()
    assert p.returncode == 1 and out == "", (out, err)
    assert err.count("\n") == 1 and "not a FastCGI answer" in err, err


def test_load_mode_prints_figures(kfcgi, bins):
    kfcgi.start(["-n", "2"], prog=bins.need("hello"), wait_workers=2)
    r = run(bins, "-c", "4", "-n", "300", kfcgi.sock)
    assert r.returncode == 0, r
    lines = r.stdout.splitlines()
    assert len(lines) == 1, r.stdout
    fig = dict(w.split("=") for w in lines[0].split())
    assert tuple(fig) == LOAD_KEYS, lines[0]
    assert fig["requests"] == "300" and fig["errors"] == "0", lines[0]
    lat = [int(fig[k]) for k in ("p50_us", "p90_us", "p99_us", "max_us")]
    assert 0 < lat[0] <= lat[1] <= lat[2] <= lat[3], lines[0]
    assert float(fig["rps"]) > 0
    # -d alone: runs for its seconds, exit 0 with answers
    r = run(bins, "-d", "1", kfcgi.sock)
    assert r.returncode == 0, r
    fig = dict(w.split("=") for w in r.stdout.split())
    assert 0.99 < float(fig["seconds"]) < 1.5 and int(fig["requests"]) > 0


def test_load_mode_counts_errors(bins, sockdir):
    path = os.path.join(sockdir, "none.sock")
    r = run(bins, "-c", "2", "-d", "1", path)
    assert r.returncode == 1, r
    fig = dict(w.split("=") for w in r.stdout.split())
    assert fig["requests"] == "0" and int(fig["errors"]) > 10, r.stdout
    assert fig["errors"] == fig["connect_errors"], r.stdout


def test_load_mode_timeouts(kfcgi, bins):
    """-t in load mode: a request that hangs fails after -t seconds."""
    kfcgi.start(["-n", "1"], wait_workers=1)
    r = run(bins, "-c", "1", "-d", "2", "-t", "1", "-q", "hang", kfcgi.sock)
    assert r.returncode == 1, r
    fig = dict(w.split("=") for w in r.stdout.split())
    assert fig["requests"] == "0" and fig["timeout_errors"] == "1", r.stdout
    assert fig["errors"] == "1", r.stdout


@pytest.mark.parametrize("args, text", [
    (["-x", "a"], "-x: unknown option"),
    (["-c"], "-c: missing argument"),
    (["-c", "0", "a"], "-c: 0: must be a number from 1 to 4096"),
    (["-d", "1x", "a"], "-d: 1x: must be a number"),
    (["-e", "novalue", "a"], "-e: novalue: not NAME=VALUE"),
    ([], "no address given"),
    (["a", "b"], "b: one address only"),
    (["::1:80"], "brackets"),
    (["[::1]80"], "not [ADDRESS]:PORT"),
    (["host:"], "not HOST:PORT"),
    (["unix:"], "empty socket path"),
    (["/" + "x" * 200], "longer than a socket path"),
])
def test_bad_usage_one_line(bins, args, text):
    r = run(bins, *args)
    assert r.returncode == 2 and r.stdout == "", r
    assert text in one_line(r), r.stderr
