#!/bin/sh
# tools/demo.sh: build kfcgi and the example worker, run kfcgi in the
# foreground on a socket in ./run, show one request answered through
# Debian's cgi-fcgi, then keep serving until Ctrl-C.
#
# KFCGI_DEMO_ONCE=1 stops kfcgi after the request instead (for tests).
set -eu

cd "$(dirname "$0")/.."
top=$PWD

sh tools/deps.sh demo
make

mkdir -p "$top/run"
sock=$top/run/hello.sock

echo "demo: starting: ./kfcgi -d -p / -s $sock -- $top/examples/hello" >&2
./kfcgi -d -p / -s "$sock" -- "$top/examples/hello" &
kpid=$!

stopped=no
stop() {
	[ "$stopped" = yes ] && return 0
	stopped=yes
	kill -TERM "$kpid" 2>/dev/null || true
	status=0
	wait "$kpid" || status=$?
	echo "demo: kfcgi exited with status $status" >&2
	# kfcgi leaves its socket behind; the demo tidies up after itself.
	rm -f "$sock"
	rmdir "$top/run" 2>/dev/null || true
	return "$status"
}
trap 'stop || exit 1; exit 0' INT TERM HUP

# Send the request once kfcgi answers on its socket.  A socket left over
# from an earlier run refuses connections until kfcgi has replaced it, and
# a failed attempt is not a request: try again for up to 10 seconds.
export GATEWAY_INTERFACE=CGI/1.1 SERVER_PROTOCOL=HTTP/1.1 \
    REQUEST_METHOD=GET SCRIPT_NAME=/hello REQUEST_URI=/hello \
    QUERY_STRING='' SERVER_NAME=localhost SERVER_PORT=80 \
    REMOTE_ADDR=127.0.0.1
tries=0
while :; do
	if ! kill -0 "$kpid" 2>/dev/null; then
		status=0
		wait "$kpid" || status=$?
		echo "demo: kfcgi did not start (exit status $status)" >&2
		exit 1
	fi
	if answer=$(cgi-fcgi -bind -connect "$sock" </dev/null 2>/dev/null); then
		break
	fi
	tries=$((tries + 1))
	if [ "$tries" -ge 100 ]; then
		echo "demo: no answer on $sock after 10 seconds" >&2
		stop || true
		exit 1
	fi
	sleep 0.1
done

echo "demo: cgi-fcgi -bind -connect $sock answered:"
printf '%s\n' "$answer"

if [ "${KFCGI_DEMO_ONCE:-0}" = 1 ]; then
	stop
	exit $?
fi

echo "demo: kfcgi is serving on $sock; press Ctrl-C to stop it" >&2
# The trap ends the wait on Ctrl-C; if kfcgi exits by itself, pass on its
# status.
status=0
wait "$kpid" || status=$?
[ "$stopped" = yes ] && exit 0
exit "$status"
