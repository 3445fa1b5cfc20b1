"""A small FastCGI 1.0 client for the kfcgi tests (Python standard library only).

    request(sock, params=None, stdin=b"", timeout=10.0, query=None) -> Response

`sock` is a Unix socket path (str or pathlib.Path) or a (host, port) tuple.
One request per connection (FCGI_KEEP_CONN is not set), role RESPONDER.
Any failure to get a complete answer -- connection refused, reset, end of
file before FCGI_END_REQUEST, a malformed record -- raises FcgiError;
running out of time raises FcgiTimeout (a subclass).

Helpers for the tests:
    parse_kv(body)      the test worker's "key=value" lines as a dict
    parse_list(value)   a comma list from such a value ("" -> [])
    parallel(n, fn)     fn(0) .. fn(n-1) in n threads started together
    spawn(fn, ...)      run fn in a background thread, Job.result() later
    Hammer(sock)        back-to-back requests in threads, counting failures
    Sampler(fn)         samples fn() (e.g. a worker list) in a thread
"""

import errno
import os
import socket
import struct
import threading
import time

__all__ = ["FcgiError", "FcgiTimeout", "Response", "request", "parse_kv",
           "parse_list", "parallel", "spawn", "Job", "encode_params",
           "Hammer", "Sampler"]

FCGI_VERSION_1 = 1
FCGI_BEGIN_REQUEST = 1
FCGI_ABORT_REQUEST = 2
FCGI_END_REQUEST = 3
FCGI_PARAMS = 4
FCGI_STDIN = 5
FCGI_STDOUT = 6
FCGI_STDERR = 7
FCGI_DATA = 8
FCGI_GET_VALUES = 9
FCGI_GET_VALUES_RESULT = 10
FCGI_UNKNOWN_TYPE = 11
FCGI_RESPONDER = 1

_HEADER = struct.Struct("!BBHHBx")
_MAXCONTENT = 65535


class FcgiError(Exception):
    """No complete FastCGI answer could be obtained."""


class FcgiTimeout(FcgiError):
    """The answer did not arrive in time."""


class Response:
    """A complete answer (FCGI_END_REQUEST was received).

    status           int from the "Status:" header; 200 when the CGI header
                     block parsed but had no Status; None when stdout had no
                     header block at all.
    headers          dict, keys lower-cased, of the CGI header block.
    body             bytes after the header block (all of stdout if none).
    stdout, stderr   raw FCGI_STDOUT / FCGI_STDERR streams.
    app_status       appStatus of FCGI_END_REQUEST.
    protocol_status  protocolStatus of FCGI_END_REQUEST (0 = complete).
    """

    def __init__(self, stdout, stderr, app_status, protocol_status):
        self.stdout = stdout
        self.stderr = stderr
        self.app_status = app_status
        self.protocol_status = protocol_status
        self.headers = {}
        self.status = None
        self.body = stdout
        self._parse()

    def _parse(self):
        out = self.stdout
        cut = None
        for sep in (b"\r\n\r\n", b"\n\n"):
            i = out.find(sep)
            if i >= 0 and (cut is None or i < cut[0]):
                cut = (i, len(sep))
        if cut is None:
            return
        head = out[:cut[0]].decode("latin-1")
        headers = {}
        for line in head.replace("\r\n", "\n").split("\n"):
            if ":" not in line:
                return          # not a CGI header block
            k, v = line.split(":", 1)
            headers[k.strip().lower()] = v.strip()
        self.headers = headers
        self.body = out[cut[0] + cut[1]:]
        st = headers.get("status")
        if st is None:
            self.status = 200
        else:
            try:
                self.status = int(st.split()[0])
            except (ValueError, IndexError):
                self.status = None

    @property
    def kv(self):
        """The body parsed as the test worker's key=value lines."""
        return parse_kv(self.body)

    def __repr__(self):
        return ("Response(status=%r, app_status=%r, protocol_status=%r, "
                "headers=%r, body=%r, stderr=%r)" %
                (self.status, self.app_status, self.protocol_status,
                 self.headers, self.body[:300], self.stderr[:300]))


def _record(rtype, reqid, content=b""):
    pad = (-len(content)) % 8
    return (_HEADER.pack(FCGI_VERSION_1, rtype, reqid, len(content), pad) +
            content + b"\0" * pad)


def _stream(rtype, reqid, data):
    out = []
    for i in range(0, len(data), _MAXCONTENT):
        out.append(_record(rtype, reqid, data[i:i + _MAXCONTENT]))
    out.append(_record(rtype, reqid, b""))
    return b"".join(out)


def _len(n):
    if n < 128:
        return bytes([n])
    return struct.pack("!I", n | 0x80000000)


def _b(x):
    if isinstance(x, bytes):
        return x
    return str(x).encode("utf-8")


def encode_params(params):
    """Encode a dict as FastCGI name-value pairs."""
    out = []
    for k, v in params.items():
        k, v = _b(k), _b(v)
        out.append(_len(len(k)) + _len(len(v)) + k + v)
    return b"".join(out)


def default_params(stdin=b"", query=""):
    p = {
        "GATEWAY_INTERFACE": "CGI/1.1",
        "REQUEST_METHOD": "POST" if stdin else "GET",
        "SCRIPT_NAME": "/",
        "SCRIPT_FILENAME": "/",
        "PATH_INFO": "",
        "REQUEST_URI": "/" + ("?" + query if query else ""),
        "QUERY_STRING": query,
        "SERVER_PROTOCOL": "HTTP/1.1",
        "SERVER_SOFTWARE": "kfcgi-tests",
        "SERVER_NAME": "localhost",
        "SERVER_ADDR": "127.0.0.1",
        "SERVER_PORT": "80",
        "REMOTE_ADDR": "127.0.0.1",
        "REMOTE_PORT": "40000",
        "HTTP_HOST": "localhost",
        "DOCUMENT_ROOT": "/",
        "CONTENT_LENGTH": str(len(stdin)),
    }
    if stdin:
        p["CONTENT_TYPE"] = "application/octet-stream"
    return p


def _connect(sock, timeout):
    if isinstance(sock, tuple):
        try:
            s = socket.create_connection(sock, timeout=timeout)
        except socket.timeout as e:
            raise FcgiTimeout("connect %r: timed out" % (sock,)) from e
        except OSError as e:
            raise FcgiError("connect %r: %s" % (sock, e)) from e
        return s
    path = os.fspath(sock)
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        # A blocking connect() on a Unix socket waits while the listen
        # queue is full (a non-blocking one fails with EAGAIN at once);
        # SO_SNDTIMEO bounds that wait.
        sec = int(timeout)
        usec = int((timeout - sec) * 1e6)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO,
                     struct.pack("ll", sec, usec))
        s.connect(path)
    except OSError as e:
        s.close()
        if e.errno in (errno.EAGAIN, errno.EWOULDBLOCK, errno.ETIMEDOUT):
            raise FcgiTimeout("connect %s: timed out (%s)" % (path, e)) from e
        raise FcgiError("connect %s: %s" % (path, e)) from e
    s.settimeout(timeout)
    return s


def _recv_exact(s, n, deadline, what):
    buf = bytearray()
    while len(buf) < n:
        left = deadline - time.monotonic()
        if left <= 0:
            raise FcgiTimeout("timed out waiting for %s" % what)
        s.settimeout(left)
        try:
            chunk = s.recv(n - len(buf))
        except socket.timeout as e:
            raise FcgiTimeout("timed out waiting for %s" % what) from e
        except OSError as e:
            raise FcgiError("reading %s: %s" % (what, e)) from e
        if not chunk:
            raise FcgiError("connection closed (EOF) before FCGI_END_REQUEST "
                            "(while reading %s)" % what)
        buf += chunk
    return bytes(buf)


def request(sock, params=None, stdin=b"", timeout=10.0, query=None,
            request_id=1, delay=0.0):
    """Send one FastCGI request and return its Response.

    params: extra/override CGI parameters, merged over sensible defaults
    (a value of None removes a default).  query: shorthand for QUERY_STRING.
    stdin: request body (CONTENT_LENGTH is set to its length unless given).
    delay: seconds between connecting and writing the request (a slow
    client).
    """
    if isinstance(stdin, str):
        stdin = stdin.encode()
    p = default_params(stdin, query or "")
    for k, v in (params or {}).items():
        if v is None:
            p.pop(k, None)
        else:
            p[k] = v
    if query is not None:
        p["QUERY_STRING"] = query
    deadline = time.monotonic() + timeout
    s = _connect(sock, timeout)
    if delay > 0:
        time.sleep(delay)
    try:
        msg = (_record(FCGI_BEGIN_REQUEST, request_id,
                       struct.pack("!HB5x", FCGI_RESPONDER, 0)) +
               _stream(FCGI_PARAMS, request_id, encode_params(p)) +
               _stream(FCGI_STDIN, request_id, stdin))
        try:
            s.sendall(msg)
        except socket.timeout as e:
            raise FcgiTimeout("timed out sending the request") from e
        except OSError as e:
            raise FcgiError("sending the request: %s" % e) from e
        out, err = [], []
        while True:
            hdr = _recv_exact(s, _HEADER.size, deadline, "a record header")
            ver, rtype, rid, clen, plen = _HEADER.unpack(hdr)
            if ver != FCGI_VERSION_1:
                raise FcgiError("bad record version %d (type %d)" %
                                (ver, rtype))
            content = _recv_exact(s, clen + plen, deadline,
                                  "record content")[:clen]
            if rid != request_id:
                if rid == 0 and rtype in (FCGI_GET_VALUES_RESULT,
                                          FCGI_UNKNOWN_TYPE):
                    continue
                raise FcgiError("record for request id %d, expected %d" %
                                (rid, request_id))
            if rtype == FCGI_STDOUT:
                out.append(content)
            elif rtype == FCGI_STDERR:
                err.append(content)
            elif rtype == FCGI_END_REQUEST:
                if clen < 8:
                    raise FcgiError("short FCGI_END_REQUEST body")
                app, proto = struct.unpack("!IB3x", content[:8])
                return Response(b"".join(out), b"".join(err), app, proto)
            else:
                raise FcgiError("unexpected record type %d" % rtype)
    finally:
        s.close()


def parse_kv(body):
    """Parse "key=value\\n" lines (bytes or str) into a dict of str."""
    if isinstance(body, bytes):
        body = body.decode("utf-8", "replace")
    d = {}
    for line in body.splitlines():
        if "=" in line:
            k, v = line.split("=", 1)
            d[k.strip()] = v.strip()
    return d


def parse_list(value):
    """A comma-separated list value; "", "none" and "-" mean empty."""
    if value is None:
        return None
    value = value.strip()
    if value in ("", "none", "-", "(none)"):
        return []
    return [x.strip() for x in value.split(",") if x.strip()]


class Job:
    """A function running in a daemon thread."""

    def __init__(self, fn, *args, **kwargs):
        self._fn, self._args, self._kwargs = fn, args, kwargs
        self._value = None
        self._exc = None
        self.started = time.monotonic()
        self.finished = None
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()

    def _run(self):
        try:
            self._value = self._fn(*self._args, **self._kwargs)
        except BaseException as e:      # handed to the caller
            self._exc = e
        finally:
            self.finished = time.monotonic()

    def done(self):
        return not self._t.is_alive()

    def join(self, timeout=None):
        self._t.join(timeout)
        return self.done()

    def outcome(self, timeout=None):
        """The return value, or the exception instance it raised."""
        if not self.join(timeout):
            raise TimeoutError("background job still running after %ss" %
                               timeout)
        return self._exc if self._exc is not None else self._value

    def result(self, timeout=None):
        """The return value; re-raises what the function raised."""
        if not self.join(timeout):
            raise TimeoutError("background job still running after %ss" %
                               timeout)
        if self._exc is not None:
            raise self._exc
        return self._value


def spawn(fn, *args, **kwargs):
    return Job(fn, *args, **kwargs)


def parallel(n, fn, timeout=60.0):
    """Call fn(i) for i in range(n), in n threads released together.

    Returns the list of outcomes in order: the return value, or the
    exception instance that call raised.  Raises TimeoutError if some call
    has not finished after `timeout` seconds.
    """
    barrier = threading.Barrier(n)

    def run(i):
        try:
            barrier.wait(timeout)
        except threading.BrokenBarrierError:
            pass
        return fn(i)

    jobs = [Job(run, i) for i in range(n)]
    deadline = time.monotonic() + timeout
    out = []
    for j in jobs:
        out.append(j.outcome(max(0.0, deadline - time.monotonic())))
    return out


class Hammer:
    """Clients sending requests back to back in background threads.

    Bounded: stops after `max_seconds` or `max_requests` per thread even if
    stop() is never called.  Records successes (status 200 and a pid= line
    when the worker is the test worker) and every failure as text.
    """

    def __init__(self, sock, threads=2, query="", pause=0.002,
                 max_seconds=60.0, max_requests=20000, timeout=10.0,
                 need_pid=True):
        self.sock, self.query, self.pause = sock, query, pause
        self.max_seconds, self.max_requests = max_seconds, max_requests
        self.timeout, self.need_pid = timeout, need_pid
        self.lock = threading.Lock()
        self.ok = 0
        self.failures = []
        self.pids = []          # (monotonic time, pid) of each success
        self._stop = threading.Event()
        self.jobs = [Job(self._loop) for _ in range(threads)]

    def _loop(self):
        end = time.monotonic() + self.max_seconds
        n = 0
        while (not self._stop.is_set() and time.monotonic() < end and
               n < self.max_requests):
            n += 1
            try:
                r = request(self.sock, query=self.query,
                            timeout=self.timeout)
                kv = r.kv
                if r.status != 200 or (self.need_pid and "pid" not in kv):
                    raise FcgiError("bad answer: %r" % r)
                with self.lock:
                    self.ok += 1
                    if "pid" in kv:
                        self.pids.append((time.monotonic(), int(kv["pid"])))
            except FcgiError as e:
                with self.lock:
                    self.failures.append("%.3f %s" % (time.monotonic(), e))
            if self.pause:
                time.sleep(self.pause)

    def count(self):
        with self.lock:
            return self.ok

    def pids_since(self, t):
        with self.lock:
            return {p for (when, p) in self.pids if when >= t}

    def stop(self, timeout=30.0):
        self._stop.set()
        for j in self.jobs:
            j.result(timeout)
        return self


class Sampler:
    """Samples fn() (e.g. a worker list) in a background thread."""

    def __init__(self, fn, interval=0.01, max_seconds=120.0):
        self.fn, self.interval, self.max_seconds = fn, interval, max_seconds
        self.samples = []       # (monotonic time, value)
        self._stop = threading.Event()
        self.job = Job(self._loop)

    def _loop(self):
        end = time.monotonic() + self.max_seconds
        while not self._stop.is_set() and time.monotonic() < end:
            self.samples.append((time.monotonic(), self.fn()))
            time.sleep(self.interval)

    def stop(self):
        self._stop.set()
        self.job.result(30)
        return self

    def max_len(self):
        return max((len(v) for _, v in self.samples), default=0)

    def union(self):
        out = set()
        for _, v in self.samples:
            out.update(v)
        return out
