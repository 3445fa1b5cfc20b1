"""Run by test_ops.py inside a private mount namespace (unshare -m): a
/dev of our own whose /dev/log is a syslog daemon played here, kfcgi in a
jail, and the daemon restarted.  Prints what each listener received.

usage: syslog-jail.py KFCGI TESTWORKER TMPDIR"""

import json
import os
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fcgiclient  # noqa: E402

kfcgi, testworker, tmp = sys.argv[1:4]
olddev = os.path.join(tmp, "olddev")
jail = os.path.join(tmp, "jail")
os.makedirs(olddev)
os.makedirs(os.path.join(jail, "dev"))
subprocess.run(["mount", "--make-rprivate", "/"], check=True)
subprocess.run(["mount", "--bind", "/dev", olddev], check=True)
subprocess.run(["mount", "-t", "tmpfs", "none", "/dev"], check=True)
open("/dev/null", "w").close()
subprocess.run(["mount", "--bind", os.path.join(olddev, "null"),
                "/dev/null"], check=True)
subprocess.run(["cp", testworker, os.path.join(jail, "testworker")],
               check=True)


def listener(path):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    if os.path.exists(path):
        os.unlink(path)
    s.bind(path)
    s.settimeout(0.2)
    return s


def drain(s):
    out = []
    while True:
        try:
            out.append(s.recv(4096).decode("utf-8", "replace"))
        except socket.timeout:
            return out


def say(word):
    fcgiclient.request(sock, query="say=" + word)
    time.sleep(0.3)


result = {}
log = listener("/dev/log")
sock = os.path.join(tmp, "s.sock")
p = subprocess.Popen([kfcgi, "-d", "-n", "1", "-p", jail, "-s", sock, "--",
                      "/testworker"], stdout=subprocess.DEVNULL,
                     stderr=subprocess.DEVNULL,
                     env=dict(os.environ, ASAN_OPTIONS="detect_leaks=0"))
try:
    for _ in range(100):
        try:
            fcgiclient.request(sock, timeout=1)
            break
        except Exception:
            time.sleep(0.05)
    say("before-restart")
    result["before"] = drain(log)
    # The syslog daemon restarts: a new socket at /dev/log.
    log.close()
    log = listener("/dev/log")
    say("after-restart")
    result["after"] = drain(log)
    # The operator gives the jail a /dev/log of its own.
    jlog = listener(os.path.join(jail, "dev", "log"))
    say("jail-devlog")
    result["jail"] = drain(jlog)
    result["outside"] = drain(log)
finally:
    p.terminate()
    p.wait(10)
print(json.dumps(result))
