"""make install: layout under DESTDIR/PREFIX, and a worker built against
the installed library through its pkg-config file."""

import os
import shutil
import stat
import subprocess

import pytest

from conftest import ROOT


def test_install_layout_and_pkgconfig(tmp_path):
    if shutil.which("pkg-config") is None:
        pytest.skip("pkg-config missing")
    dest = tmp_path / "dest"
    r = subprocess.run(["make", "-s", "install", "DESTDIR=%s" % dest,
                        "PREFIX=/opt/kf"], cwd=ROOT, capture_output=True,
                       text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    base = dest / "opt" / "kf"
    want = {
        "sbin/kfcgi": 0o755,
        "bin/kfcgi-load": 0o755,
        "share/man/man8/kfcgi.8": 0o644,
        "share/man/man1/kfcgi-load.1": 0o644,
        "share/man/man3/kfcgi_worker.3": 0o644,
        "lib/libkfcgi_worker.a": 0o644,
        "include/kfcgi_worker.h": 0o644,
        "lib/pkgconfig/kfcgi-worker.pc": 0o644,
    }
    for rel, mode in want.items():
        st = os.stat(base / rel)
        assert stat.S_IMODE(st.st_mode) == mode, rel

    env = dict(os.environ, PKG_CONFIG_PATH=str(base / "lib/pkgconfig"),
               PKG_CONFIG_SYSROOT_DIR=str(dest))
    flags = subprocess.run(["pkg-config", "--cflags", "--libs",
                            "kfcgi-worker"], env=env, capture_output=True,
                           text=True, check=True).stdout.split()
    assert "-lkfcgi_worker" in flags
    # A SANITIZE=1 build installs an instrumented library: link likewise.
    with open(base / "lib/libkfcgi_worker.a", "rb") as f:
        if b"__asan_" in f.read():
            flags += ["-fsanitize=address,undefined"]
    out = tmp_path / "hello"
    r = subprocess.run(["cc", "-o", str(out),
                        os.path.join(ROOT, "examples", "hello.c")] + flags,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert os.access(out, os.X_OK)
