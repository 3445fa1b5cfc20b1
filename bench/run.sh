#!/bin/sh
# bench/run.sh: the benchmarks, run by `make bench` (with --write, which
# rewrites BENCHMARKS.md).  Not a test.  The work is in bench/bench.py
# (Python 3, standard library); its docstring lists the knobs, e.g.
#
#	BENCH_QUICK=1 sh bench/run.sh			a smoke run, ~1 minute
#	BENCH_ONLY=burst sh bench/run.sh		one section
#	BENCH_SECONDS=2 BENCH_REPEATS=1 sh bench/run.sh
#
# Needs the programs `make bench` builds, and spawn-fcgi, multiwatch,
# nginx-light and wrk (sh tools/deps.sh test).  Linux only.
cd "$(dirname "$0")/.." || exit 1
exec python3 bench/bench.py "$@"
