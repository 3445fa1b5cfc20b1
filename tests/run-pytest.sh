#!/bin/sh
# Run the pytest suite (tests/*.py) from the repository root with Debian's
# python3-pytest.  /usr/bin/python3 on purpose: a python3 earlier in PATH
# (pyenv, a virtualenv) may lack pytest.  Extra arguments go to pytest;
# the exit status is pytest's.
cd "$(dirname "$0")/.." || exit 1
PY=/usr/bin/python3
if ! "$PY" -c 'import pytest' 2>/dev/null; then
	echo "run-pytest.sh: $PY has no pytest; run: apt-get install python3-pytest" >&2
	exit 1
fi
exec "$PY" -m pytest -q tests/ "$@"
