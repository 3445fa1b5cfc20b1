#!/usr/bin/env python3
"""bench/hotpath.py: kfcgi -r on its two hot paths side by side, io_uring
(the default where it works) and libevent (KFCGI_NO_URING=1), with
bench/floor as the yardstick (and, where it was built with liburing, its
io_uring forms -u and -U for reference): manager CPU per connection,
throughput, p50 and p99, for each pool size.  Not a test, and writes nothing.  Runs and
repeats as bench.py's pools section, with its knobs (BENCH_SECONDS,
BENCH_REPEATS, BENCH_CONNS, BENCH_SIZES); build first (`make all
bench/floor`).  The io_uring column is kfcgi's default: where the kernel
refuses io_uring, it too is libevent (kfcgi -v says which).
"""

import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench  # noqa: E402


def uring_argv(sock, worker, n):
    return bench.kfcgi_argv(sock, worker, n, "-r")


def libevent_argv(sock, worker, n):
    return ["/usr/bin/env", "KFCGI_NO_URING=1"] + \
        bench.kfcgi_argv(sock, worker, n, "-r")


def main():
    for p in (bench.KFCGI, bench.LOAD, bench.FLOOR, bench.HELLO):
        if not os.access(p, os.X_OK):
            sys.exit("hotpath: %s: not built (make all bench/floor)" % p)
    bench.KINDS["-r io_uring"] = uring_argv
    bench.KINDS["-r libevent"] = libevent_argv
    kinds = ["-r io_uring", "-r libevent", "floor"]
    if bench.floor_has_uring():
        kinds += ["floor io_uring", "floor io_uring defer"]
    with tempfile.TemporaryDirectory() as tmp:
        res = bench.pools(tmp, bench.SIZES, bench.HELLO, kinds)
    print("%-20s %5s %9s %7s %8s %6s %7s  %s" % (
        "manager", "-n", "cpu/conn", "/floor", "rps", "p50", "p99",
        "cpu/conn of each run (us)"))
    for n in bench.SIZES:
        floor = res[("floor", n)]["cpu"]
        for k in kinds:
            s = res[(k, n)]
            print("%-20s %5d %7.2fus %7.2f %8.0f %6d %7d  %s" % (
                k, n, s["cpu"], s["cpu"] / floor, s["rps"], s["p50"],
                s["p99"], " ".join("%.1f" % r["cpu"] for r in s["runs"])))


if __name__ == "__main__":
    main()
