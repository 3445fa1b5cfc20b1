#!/bin/sh
# tools/test.sh: install what the tests need, build with warnings as
# errors, run every test (C unit tests and the pytest suite) and lint the
# manual pages.
set -eu

cd "$(dirname "$0")/.."

sh tools/deps.sh test
make clean
make WERROR=1
make WERROR=1 check
make lint
