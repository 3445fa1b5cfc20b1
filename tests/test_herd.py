"""The classic mode of libkfcgi_worker without a thundering herd: on
Linux an idle worker waits in its own epoll instance holding the shared
listening socket with EPOLLEXCLUSIVE, so that a connection wakes one of
them, not all; and a worker that SIGTERM reaches while it waits takes
what is queued before it leaves, so that no connection is stranded.

Wake-ups are counted by the kernel: voluntary_ctxt_switches in
/proc/PID/status goes up by one each time a worker sleeps."""

import os
import random
import signal
import time

import pytest

from conftest import (alive, busy_workers, cmdline, listen_queue, proc_stat,
                      proc_status, wait_for)
from fcgiclient import spawn
from loaddriver import Load
from test_faults import script

POOL = 32
REQUESTS = 40


def switches(pids):
    """pid -> voluntary context switches, for those still alive."""
    out = {}
    for p in pids:
        v = proc_status(p).get("voluntary_ctxt_switches")
        if v is not None:
            out[p] = int(v)
    return out


# ------------------------------------------------------------- the herd ---

@pytest.mark.time_limit(60)
@pytest.mark.parametrize("progname", ["testworker", "hello"])
def test_one_connection_wakes_few_workers(kfcgi, bins, progname):
    """40 requests one after the other to 32 idle workers: with ppoll
    every idle worker woke for each (about 40 x 32 switches); now the
    whole pool sleeps a few times per request, the one serving it."""
    kfcgi.start(["-n", str(POOL)], prog=bins.need(progname))
    ws = kfcgi.wait_workers(POOL)
    for _ in range(3):              # every worker is past kfw_open()
        assert kfcgi.request().status == 200
    time.sleep(0.5)
    before = switches(ws)
    for _ in range(REQUESTS):
        r = kfcgi.request()
        assert r.status == 200, r
    after = switches(ws)
    assert sorted(after) == sorted(before) == ws, "workers changed"
    woke = {p: after[p] - before[p] for p in ws if after[p] != before[p]}
    total = sum(woke.values())
    print("%d requests, %d workers: %d voluntary switches in %d workers" %
          (REQUESTS, POOL, total, len(woke)))
    # One serving worker sleeps about 2-3 times a request (wait, read);
    # a herd costs POOL a request.
    assert total <= REQUESTS * 6, \
        "%d switches for %d requests: the idle workers wake (%r)" % (
            total, REQUESTS, woke)


# ---------------------------------------- SIGTERM with a connection queued ---

def held_worker(kfcgi, bins, sockdir):
    """A one-worker pool whose replacements wait while `hold` exists:
    only the first worker can answer until the test lets them go."""
    hold = os.path.join(sockdir, "hold")
    prog = os.path.join(sockdir, "worker.sh")
    script(prog, "#!/bin/sh\nwhile [ -e %s ]; do sleep 0.05; done\n"
           "exec %s \"$@\"\n" % (hold, bins.need("testworker")))
    kfcgi.start(["-n", "1"], prog=prog)
    w = kfcgi.wait_workers(1)[0]
    r = kfcgi.request(query="")
    assert r.status == 200 and int(r.kv["pid"]) == w, r
    open(hold, "w").close()
    return w, hold


def queued(k):
    """Connections waiting in k's listen queue."""
    return (listen_queue(k.sock) or (0, 0))[0]


def waiting(pid):
    """Whether pid sleeps in epoll_pwait(2) or ppoll(2): kfw_accept()
    waits, SIGTERM unblocked."""
    try:
        with open("/proc/%d/wchan" % pid) as f:
            wchan = f.read()
    except OSError:
        return False
    st = proc_stat(pid)
    return st is not None and st[0] == "S" and "poll" in wchan


def stopped(pid):
    st = proc_stat(pid)
    return st is not None and st[0] in "tT"


@pytest.mark.time_limit(30)
def test_sigterm_while_waiting_takes_queued_connection(kfcgi, bins, sockdir):
    """The worker is stopped in its wait, a connection comes, then
    SIGTERM and SIGCONT: the worker answers that connection and leaves.
    Leaving without it would strand it (no other worker is woken for it;
    here the replacement is held back, so it would never be answered)."""
    w, hold = held_worker(kfcgi, bins, sockdir)
    # the answer may reach us before the worker is back in its wait
    assert wait_for(lambda: waiting(w), 5), proc_stat(w)
    os.kill(w, signal.SIGSTOP)
    assert wait_for(lambda: stopped(w), 5), proc_stat(w)
    job = spawn(kfcgi.request, query="", timeout=8)
    assert wait_for(lambda: queued(kfcgi) >= 1, 5), \
        "the connection never reached the listen queue"
    os.kill(w, signal.SIGTERM)
    os.kill(w, signal.SIGCONT)
    r = job.result(10)
    assert r.status == 200, r
    assert int(r.kv["pid"]) == w, r
    assert wait_for(lambda: not alive(w, kfcgi.seen[w]), 5), \
        "the worker did not leave after SIGTERM"
    os.unlink(hold)
    new = kfcgi.wait_workers(1, exclude=[w])
    r = kfcgi.request(query="")
    assert r.status == 200 and int(r.kv["pid"]) == new[0], r


@pytest.mark.time_limit(30)
def test_sigterm_during_request_takes_no_new_connection(kfcgi, bins,
                                                        sockdir):
    """The other half of the contract: a SIGTERM that comes while a
    request is served lets that request finish, and the worker leaves
    without taking the connection queued behind it."""
    w, hold = held_worker(kfcgi, bins, sockdir)
    first = spawn(kfcgi.request, query="sleep=800", timeout=10)
    assert wait_for(lambda: len(busy_workers(kfcgi)) == 1, 5)
    second = spawn(kfcgi.request, query="", timeout=15)
    assert wait_for(lambda: queued(kfcgi) >= 1, 5)
    os.kill(w, signal.SIGTERM)
    r = first.result(10)
    assert r.status == 200 and int(r.kv["pid"]) == w, r
    assert wait_for(lambda: not alive(w, kfcgi.seen[w]), 5)
    time.sleep(0.3)
    assert not second.done(), "the leaving worker took a new connection"
    os.unlink(hold)
    r = second.result(10)
    assert r.status == 200 and int(r.kv["pid"]) != w, r


# ------------------------------------------------ no loss under SIGTERMs ---

@pytest.mark.time_limit(60)
@pytest.mark.parametrize("clients", [1, 8], ids=["sequential", "concurrent"])
def test_sigterm_idle_workers_under_load_loses_nothing(kfcgi, request,
                                                       clients):
    """Workers told to leave while connections arrive: SIGTERM to a
    worker that just answered (likely idle, likely the next one woken)
    every 50 ms, and two SIGHUP reloads; kfcgi replaces them all.
    Every request is answered."""
    kfcgi.start(["-n", "4"])
    kfcgi.wait_workers(4)
    load = Load(kfcgi.sock, clients=clients, seconds=5, query="echo",
                timeout=8, record=request.node.name)
    rnd = random.Random(clients)
    killed = set()
    try:
        load.start()
        assert load.wait_answered(10), load.report()
        t_end = time.monotonic() + 3.5
        hups = [time.monotonic() + 1.0, time.monotonic() + 2.5]
        while time.monotonic() < t_end:
            if hups and time.monotonic() >= hups[0]:
                hups.pop(0)
                kfcgi.signal(signal.SIGHUP)
            recent = load.pids(since=time.monotonic() - 0.2)
            live = [p for p in recent if p not in killed and alive(p)]
            if live:
                victim = rnd.choice(sorted(live))
                os.kill(victim, signal.SIGTERM)
                killed.add(victim)
            time.sleep(0.05)
    finally:
        load.stop()
    none_lost(load, killed)
    assert kfcgi.running()


def none_lost(load, killed):
    """Every request answered while at least 10 workers were told to
    leave."""
    print(load.figures(), "%d workers told to leave" % len(killed))
    assert load.failed == 0, load.report()
    assert load.answered == load.sent
    assert len(killed) >= 10, killed


def ready_workers(k, prog):
    """Workers of k that run prog (past the wrapper's hold)."""
    out = []
    for p in k.workers():
        cl = cmdline(p)
        if cl and cl[0] == prog:
            out.append(p)
    return out


@pytest.mark.time_limit(60)
def test_sigterm_hot_worker_with_slow_replacements(kfcgi, bins, sockdir,
                                                   request):
    """One client, one request after the other, so no later connection
    comes to rescue one left in the queue; replacements take 3 s to
    start, longer than a request may take (2 s).  The worker that just
    answered, which is the one the next connection wakes, is told to
    leave every 50 ms while two others stay ready.  A worker that left
    on SIGTERM without taking the connection it was woken for fails a
    request here."""
    tw = bins.need("testworker")
    slow = os.path.join(sockdir, "slow")
    prog = os.path.join(sockdir, "worker.sh")
    script(prog, "#!/bin/sh\n[ -e %s ] && sleep 3\nexec %s \"$@\"\n" %
           (slow, tw))
    kfcgi.start(["-n", "12"], prog=prog)
    assert wait_for(lambda: len(ready_workers(kfcgi, tw)) == 12, 10)
    open(slow, "w").close()
    load = Load(kfcgi.sock, clients=1, seconds=5, query="echo", timeout=2,
                record=request.node.name)
    killed = set()
    try:
        load.start()
        assert load.wait_answered(10), load.report()
        t_end = time.monotonic() + 4
        while time.monotonic() < t_end:
            ready = [p for p in ready_workers(kfcgi, tw) if p not in killed]
            recent = load.pids(since=time.monotonic() - 0.1)
            hot = [p for p in recent if p in ready]
            if hot and len(ready) >= 3:
                os.kill(hot[0], signal.SIGTERM)
                killed.add(hot[0])
            time.sleep(0.05)
    finally:
        load.stop()
    none_lost(load, killed)
