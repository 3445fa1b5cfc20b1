#!/usr/bin/env bash
# bench/run.sh: throughput, latency and manager CPU of kfcgi's pools,
# printed as a table.  Not a test: nothing here passes or fails, and it
# is not part of make check.  Run it with make bench, which builds what
# it needs: kfcgi, examples/hello, tests/testworker and bench/fcgiload.
#
# Each configuration runs kfcgi -d -p / on a socket in a temporary
# directory and bench/fcgiload -c 16 -d 5 against it.  Manager CPU is
# kfcgi's own utime + stime from /proc, before and after, per request.
# The burst line starts 64 one-second requests at once on an idle
# -r -n 2 -N 64 pool.  The scale lines compare fixed-size variable pools
# of 8 and 512 workers (-n 8 -N 64 may grow past 8, so it is no
# baseline).  Linux only (/proc, bash for $EPOCHREALTIME).
#
# BENCH_SECONDS changes the length of each run (default 5).
set -eu
export LC_ALL=C

cd "$(dirname "$0")/.."
top=$PWD
kfcgi=$top/kfcgi
load=$top/bench/fcgiload
hello=$top/examples/hello
testworker=$top/tests/testworker
secs=${BENCH_SECONDS:-5}
conns=16
tck=$(getconf CLK_TCK)

pids=""		# started by us and not yet reaped
kpid=""		# the kfcgi of the current configuration
nkids=0		# set by count_children
kids=()		# and their pids
ticks=0		# set by cputicks
tmp=""

die() {
	echo "bench: $*" >&2
	exit 1
}

# Is the process there and not a zombie?
alive() {
	local stat=""

	read -r stat 2>/dev/null < "/proc/$1/stat" || return 1
	stat=${stat##*) }
	[ "${stat%% *}" != Z ]
}

count_children() {
	kids=()
	read -r -a kids 2>/dev/null < "/proc/$1/task/$1/children" || true
	nkids=${#kids[@]}
}

# utime + stime of the process itself, in clock ticks: fields 14 and 15,
# counted after the command name, which may hold spaces.
cputicks() {
	local stat="" f

	read -r stat < "/proc/$1/stat"
	read -r -a f <<<"${stat##*) }"
	ticks=$((f[11] + f[12]))
}

forget() {
	local p out=""

	for p in $pids; do
		[ "$p" = "$1" ] || out="$out $p"
	done
	pids=$out
}

# SIGTERM, up to 7 s (kfcgi's grace period is 5 s), then SIGKILL for it
# and whatever children it still has.
stop_pid() {
	local pid=$1 i

	kill -TERM "$pid" 2>/dev/null || true
	for ((i = 0; i < 70; i++)); do
		alive "$pid" || break
		sleep 0.1
	done
	if alive "$pid"; then
		count_children "$pid"
		kill -KILL "${kids[@]}" "$pid" 2>/dev/null || true
	fi
	wait "$pid" 2>/dev/null || true
	forget "$pid"
}

cleanup() {
	local p

	trap - EXIT INT TERM HUP
	for p in $pids; do
		stop_pid "$p"
	done
	exec 9>&- 2>/dev/null || true
	[ -n "$tmp" ] && rm -rf "$tmp"
}

# kfcgi_start sock option... -- prog
kfcgi_start() {
	local sock=$1

	shift
	"$kfcgi" -d -p / -s "$sock" "$@" 2>>"$tmp/kfcgi.log" &
	kpid=$!
	pids="$pids $kpid"
}

kfcgi_stop() {
	stop_pid "$kpid"
	kpid=""
}

# Until n children of kfcgi exist and all have become prog.
wait_workers() {
	local n=$1 name=$2 c comm i ready

	for ((i = 0; i < 300; i++)); do
		alive "$kpid" || die "kfcgi exited; see its log above"
		count_children "$kpid"
		ready=0
		if ((nkids >= n)); then
			ready=1
			for c in "${kids[@]}"; do
				comm=""
				read -r comm 2>/dev/null < "/proc/$c/comm" ||
				    true
				[ "$comm" = "$name" ] || ready=0
			done
		fi
		((ready)) && return 0
		sleep 0.1
	done
	die "$n workers of $name did not start within 30 s"
}

# One request, and the answer must be hello's.
check_hello() {
	local body

	body=$("$load" -v -n 1 -d 5 "$1" 2>&1 >/dev/null) ||
	    die "no answer on $1"
	case $body in
	*"Hello from kfcgi worker"*)
		;;
	*)
		die "unexpected answer: $body"
		;;
	esac
}

# Sets req, err, sec, rps, p50, p99 from a line of fcgiload.
parse() {
	local kv

	req=0 err=0 sec=0 rps=0 p50=0 p99=0
	for kv in $1; do
		case $kv in
		requests=*) req=${kv#*=} ;;
		errors=*) err=${kv#*=} ;;
		seconds=*) sec=${kv#*=} ;;
		rps=*) rps=${kv#*=} ;;
		p50_us=*) p50=${kv#*=} ;;
		p99_us=*) p99=${kv#*=} ;;
		esac
	done
}

per_request_us() {
	awk -v t="$1" -v hz="$tck" -v n="$2" \
	    'BEGIN { if (n > 0) printf "%.2f", t * 1e6 / hz / n; else print "-" }'
}

row() {
	printf "%-24s %9s %7s %7s %7s %11s %8s\n" "$@"
}

# measure label nworkers kfcgi-option...: one line of the table.
measure() {
	local label=$1 n=$2 sock=$tmp/s.sock t0 out

	shift 2
	kfcgi_start "$sock" "$@" -- "$hello"
	wait_workers "$n" hello
	check_hello "$sock"
	cputicks "$kpid"
	t0=$ticks
	out=$("$load" -c "$conns" -d "$secs" "$sock" || true)
	cputicks "$kpid"
	count_children "$kpid"
	kfcgi_stop
	parse "$out"
	cpu=$(per_request_us $((ticks - t0)) "$req")
	row "$label" "$rps" "$p50" "$p99" "$err" "$cpu" "$nkids"
}

# Idle -r -n 2 -N 64, then 64 one-second requests at once.
burst() {
	local sock=$tmp/burst.sock lpid start spawned="-" t0

	kfcgi_start "$sock" -r -n 2 -N 64 -- "$testworker"
	wait_workers 2 testworker
	"$load" -n 1 -d 5 "$sock" >/dev/null || die "no answer on $sock"
	cputicks "$kpid"
	t0=$ticks
	start=$EPOCHREALTIME
	"$load" -c 64 -n 64 -d 10 -q sleep=1000 "$sock" >"$tmp/burst.out" &
	lpid=$!
	pids="$pids $lpid"
	while alive "$lpid"; do
		count_children "$kpid"
		if ((nkids >= 64)); then
			spawned=$(awk -v a="$start" -v b="$EPOCHREALTIME" \
			    'BEGIN { printf "%.1f", (b - a) * 1000 }')
			break
		fi
		read -r -t 0.001 -u 9 || true	# 1 ms, no fork
	done
	wait "$lpid" || true
	forget "$lpid"
	cputicks "$kpid"
	count_children "$kpid"
	kfcgi_stop
	parse "$(cat "$tmp/burst.out")"
	printf "burst -r -n 2 -N 64, 64 x sleep=1000: 64 workers after %s ms;" \
	    "$spawned"
	printf " all answered after %.0f ms (%s answered, %s errors);" \
	    "$(awk -v s="$sec" 'BEGIN { print s * 1000 }')" "$req" "$err"
	printf " %s workers; manager CPU %s ms (in %s ms ticks)\n" "$nkids" \
	    "$(awk -v t=$((ticks - t0)) -v hz="$tck" \
	    'BEGIN { printf "%.0f", t * 1000 / hz }')" $((1000 / tck))
	echo "  (targets: 64 workers within 100 ms, all answered within 1150 ms)"
}

# Lines of kfcgi's log other than the usual start and stop.
log_report() {
	local n

	n=$(grep -cv -e 'running workers as root' -e ': start: ' \
	    -e ': stop: ' "$tmp/kfcgi.log" || true)
	if [ "$n" -gt 0 ]; then
		echo "kfcgi logged $n other lines, the first ones:"
		grep -v -e 'running workers as root' -e ': start: ' \
		    -e ': stop: ' "$tmp/kfcgi.log" | head -n 5 | sed 's/^/  /'
	else
		echo "kfcgi logged nothing unusual"
	fi
}

for f in "$kfcgi" "$load" "$hello" "$testworker"; do
	[ -x "$f" ] || die "$f: not built (run make bench)"
done
[ -r /proc/self/stat ] || die "needs Linux /proc"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/kfcgi-bench.XXXXXX")
trap cleanup EXIT
trap 'exit 130' INT TERM HUP
: >"$tmp/kfcgi.log"
mkfifo "$tmp/fifo"
exec 9<>"$tmp/fifo"

echo "kfcgi bench: fcgiload -c $conns -d $secs, examples/hello," \
    "$(nproc) CPUs, CLK_TCK $tck"
row config rps p50_us p99_us errors mgr_us/req workers
measure "fixed -n 2" 2 -n 2
measure "var -r -n 2 -N 2" 2 -r -n 2 -N 2
measure "var -r -n 8 -N 64" 8 -r -n 8 -N 64
measure "scale -r -n 8 -N 8" 8 -r -n 8 -N 8
cpu8=$cpu
measure "scale -r -n 512 -N 512" 512 -r -n 512 -N 512
cpu512=$cpu
awk -v a="$cpu8" -v b="$cpu512" 'BEGIN { if (a > 0)
	printf "scale: manager CPU per request, 512 workers / 8 workers:" \
	    " %.2f (target <= 1.2)\n", b / a }'
burst
log_report
