"""Load for fault-injection tests: C clients keep one request each going
against a kfcgi socket for at most T seconds (or until stop()), while the
test injects a fault; then sent, answered and failed are counted.

A request is answered only if it gets a complete FastCGI response
(FCGI_END_REQUEST with protocol status 0, application status 0) that the
check accepts; anything else -- refused, reset, cut short, timed out, a
wrong or foreign body -- is failed.  The default check is for the test
worker: each request sends a unique body with "echo" and the answer must
be status 200 and carry that very body back, so a response given to the
wrong client counts as failed too.

    load = Load(sock, clients=8, seconds=4).start()
    ... inject the fault ...
    load.stop()
    assert load.failed == 0, load.report()

FIGURES collects one line per run that asked for it (record=name); the
test session prints them at the end (conftest.py), for the README.
"""

import threading
import time

from fcgiclient import FcgiError, parse_kv, request

FIGURES = []
MAX_ERRORS_KEPT = 50


def check_testworker(resp, token):
    """The test worker's answer to query "echo" with body token."""
    if resp.status != 200:
        return "status %r" % resp.status
    kv = resp.kv
    if kv.get("stdin") != token:
        return "body %r, sent %r" % (kv.get("stdin"), token)
    if "pid" not in kv:
        return "no pid= line"
    return None


def pid_testworker(resp):
    return int(resp.kv["pid"])


class Load:
    """clients threads, each sending requests one after the other.

    query      QUERY_STRING (the token goes in the body; add "echo" for
               the default check).
    check      check(resp, token) -> None if right, else why it is wrong.
    pid_of     pid_of(resp) -> the answering worker's pid (or None).
    params     extra FastCGI parameters.
    seconds    the load stops by itself after this long.
    max_requests  and after this many requests in all.
    timeout    per request: connect, send and the whole answer.
    """

    def __init__(self, sock, clients=8, seconds=5.0, query="echo",
                 check=check_testworker, pid_of=pid_testworker, params=None,
                 max_requests=200000, timeout=10.0, record=None):
        self.sock, self.clients, self.seconds = sock, clients, seconds
        self.query, self.check, self.pid_of = query, check, pid_of
        self.params, self.max_requests = params, max_requests
        self.timeout, self.record = timeout, record
        self.lock = threading.Lock()
        self.sent = self.answered = self.failed = 0
        self.errors = []            # (monotonic time, text), the first ones
        self.answers = []           # (monotonic time, pid)
        self.t0 = self.t1 = None
        self._stop = threading.Event()
        self._threads = []

    def start(self):
        self.t0 = time.monotonic()
        for i in range(self.clients):
            t = threading.Thread(target=self._client, args=(i,), daemon=True)
            t.start()
            self._threads.append(t)
        return self

    def _take(self):
        with self.lock:
            if self.sent >= self.max_requests:
                return None
            self.sent += 1
            return self.sent

    def _client(self, i):
        end = self.t0 + self.seconds
        while not self._stop.is_set() and time.monotonic() < end:
            n = self._take()
            if n is None:
                break
            token = "c%d-r%d" % (i, n)
            why, pid = None, None
            try:
                r = request(self.sock, query=self.query, stdin=token,
                            params=self.params, timeout=self.timeout)
                if r.app_status != 0 or r.protocol_status != 0:
                    why = "end request %d/%d" % (r.app_status,
                                                  r.protocol_status)
                else:
                    why = self.check(r, token)
                if why is None and self.pid_of is not None:
                    pid = self.pid_of(r)
            except FcgiError as e:
                why = str(e)
            except Exception as e:      # a bug in a check counts as failed
                why = "%s: %s" % (type(e).__name__, e)
            now = time.monotonic()
            with self.lock:
                if why is None:
                    self.answered += 1
                    self.answers.append((now, pid))
                else:
                    self.failed += 1
                    if len(self.errors) < MAX_ERRORS_KEPT:
                        self.errors.append((now, why))

    def wait_answered(self, n, timeout=10.0):
        """Wait until n requests in all have been answered."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if self.answered >= n:
                    return True
            time.sleep(0.01)
        return False

    def running(self):
        return any(t.is_alive() for t in self._threads)

    def stop(self, timeout=None):
        """Stop sending and wait for the requests in flight to end."""
        self._stop.set()
        return self.join(timeout)

    def join(self, timeout=None):
        """Wait for the load to end by itself (seconds, max_requests)."""
        limit = timeout if timeout is not None else \
            self.seconds + self.timeout + 5
        deadline = time.monotonic() + limit
        for t in self._threads:
            t.join(max(0.0, deadline - time.monotonic()))
        if self.running():
            raise TimeoutError("load clients still running after %.0fs" %
                               limit)
        if self.t1 is None:
            self.t1 = time.monotonic()
            if self.record:
                FIGURES.append("%-44s %s" % (self.record, self.figures()))
        return self

    def pids(self, since=None, until=None):
        """Pids that answered in [since, until)."""
        with self.lock:
            return {p for (t, p) in self.answers
                    if p is not None and (since is None or t >= since) and
                    (until is None or t < until)}

    def answered_between(self, since, until):
        with self.lock:
            return sum(1 for (t, _) in self.answers if since <= t < until)

    def figures(self):
        took = (self.t1 or time.monotonic()) - self.t0
        return "sent=%d answered=%d failed=%d (%d clients, %.1f s)" % (
            self.sent, self.answered, self.failed, self.clients, took)

    def report(self):
        with self.lock:
            errs = ["%+.3f %s" % (t - self.t0, e) for t, e in self.errors]
        return self.figures() + "".join("\n  " + e for e in errs[:20])


def kv_pid(resp):
    kv = parse_kv(resp.body)
    return int(kv["pid"]) if "pid" in kv else None
