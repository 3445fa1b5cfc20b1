#!/bin/sh
# tools/deps.sh [demo|test]: make sure the Debian packages that the demo or
# the test suite needs are installed.  As root, install the missing ones
# with apt-get; otherwise print the apt-get line to run and exit 1.
set -eu

what=${1:-test}

# The C compiler and make are assumed to be present already.
demo_pkgs="libevent-dev liburing-dev pkg-config libfcgi-bin"
test_pkgs="$demo_pkgs libfcgi-dev python3 python3-pytest nginx-light curl \
php-cgi mandoc prometheus wrk spawn-fcgi multiwatch"

case $what in
demo)	want=$demo_pkgs ;;
test)	want=$test_pkgs ;;
*)	echo "usage: $0 [demo|test]" >&2; exit 1 ;;
esac

missing=
for p in $want; do
	status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
	case $status in
	*" installed") ;;
	*) missing="$missing $p" ;;
	esac
done
missing=${missing# }

[ -n "$missing" ] || exit 0

if [ "$(id -u)" -ne 0 ]; then
	echo "kfcgi: missing packages; run as root: apt-get install -y $missing" >&2
	exit 1
fi

# Installing nginx-light may start the system's nginx on port 80.  The
# tests run nginx themselves with their own configuration, so a service
# that the installation started is stopped again.  (No pgrep: procps may
# be missing on a fresh system.)
nginx_pid() {
	[ -r /run/nginx.pid ] || return 1
	pid=$(cat /run/nginx.pid 2>/dev/null) || return 1
	[ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && echo "$pid"
}
nginx_before=$(nginx_pid || true)

echo "kfcgi: installing: $missing" >&2
export DEBIAN_FRONTEND=noninteractive
# Refresh the package lists first only if there are none; otherwise try as
# they are and refresh them if the installation fails.
if ! ls /var/lib/apt/lists/*_Packages* >/dev/null 2>&1; then
	apt-get update
fi
# shellcheck disable=SC2086
if ! apt-get install -y --no-install-recommends $missing; then
	apt-get update
	# shellcheck disable=SC2086
	apt-get install -y --no-install-recommends $missing
fi

nginx_after=$(nginx_pid || true)
if [ -z "$nginx_before" ] && [ -n "$nginx_after" ]; then
	echo "kfcgi: stopping the nginx service that the package started" >&2
	service nginx stop >/dev/null 2>&1 || true
	kill "$nginx_after" 2>/dev/null || true
fi

# Likewise the prometheus service (the status listener's test runs its own).
case " $missing " in
*" prometheus "*) service prometheus stop >/dev/null 2>&1 || true ;;
esac
exit 0
