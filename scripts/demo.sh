#!/usr/bin/env bash
# scripts/demo.sh — checkpoint a counting process and bring it back.
#
# Starts w_counter (it appends "pid P count N" to a log every 100 ms), dumps
# it with `cr dump` (the process is gone), restores it with
# `cr restore --detach`, and shows the same pid counting on from where it
# stopped. Exits non-zero if the pid differs or the count does not continue.
# Needs root; run it as `make demo`.
set -u
cd "$(dirname "$0")/.." || exit 1
ROOT=$(pwd -P)
CR=$ROOT/build/cr
COUNTER=$ROOT/build/test/workloads/w_counter
SUBREAPER=$ROOT/build/test/workloads/subreaper

die() {
	echo "demo: $*" >&2
	exit 1
}

[ "$(id -u)" -eq 0 ] || die "needs root (cr ptraces the process and restores its exact pid)"
[ -x "$CR" ] && [ -x "$COUNTER" ] && [ -x "$SUBREAPER" ] || die "build first: make cr workloads"

# Restored processes are reparented once `cr restore --detach` exits; below a
# child subreaper they are reaped at once instead of lingering as zombies.
if [ "${CR_TEST_SUBREAPER:-}" != "$PPID" ]; then
	exec "$SUBREAPER" bash "$0" "$@"
fi

DEMO=$(mktemp -d /tmp/cr-demo.XXXX)
STATE=$DEMO/state
IMAGES=$DEMO/images
LOG=$STATE/log
pid=""

cleanup() {
	if [ -n "$pid" ] && [ -e /proc/"$pid" ]; then
		kill -KILL "$pid" 2>/dev/null
	fi
	rm -rf "$DEMO"
}
trap cleanup EXIT

step() {
	printf '\n== %s\n' "$*"
}

run() {
	echo "\$ $*"
	"$@"
}

# ps, or the same facts from /proc where procps is not installed.
show_pid() {
	if command -v ps >/dev/null; then
		run ps -o pid,ppid,stat,etime,args -p "$1"
	else
		echo "\$ cat /proc/$1/status (State, Pid, PPid)"
		grep -E '^(State|Pid|PPid):' /proc/"$1"/status 2>/dev/null
	fi
}

count_of() { # "pid P count N" -> N
	echo "${1##* }"
}

step "start a counting process"
setsid "$COUNTER" "$STATE" </dev/null >/dev/null 2>&1 &
for _ in $(seq 100); do
	[ -e "$STATE/ready" ] && break
	sleep 0.1
done
[ -e "$STATE/ready" ] || die "w_counter did not start"
read -r pid _ < "$STATE/token"
disown
sleep 1
show_pid "$pid"
echo "--- $LOG (last lines):"
tail -n 3 "$LOG"

step "checkpoint it"
run timeout 60 "$CR" dump "$pid" -D "$IMAGES" || die "cr dump failed"
lines_at_dump=$(wc -l < "$LOG")
last_before=$(tail -n 1 "$LOG")
for _ in $(seq 50); do
	[ -e /proc/"$pid" ] || break
	sleep 0.1
done
show_pid "$pid" || echo "(pid $pid: no such process)"
[ -e /proc/"$pid" ] && die "pid $pid still exists after the dump"
sleep 0.5
[ "$(wc -l < "$LOG")" = "$lines_at_dump" ] || die "the log grew while the process was gone"
echo "the log stopped at: $last_before"
run ls -l "$IMAGES"

step "restore it"
run timeout 60 "$CR" restore -D "$IMAGES" --detach || die "cr restore failed"
sleep 1
show_pid "$pid" || die "no process with pid $pid after the restore"
echo "--- $LOG (around the restore):"
tail -n "+$((lines_at_dump - 2))" "$LOG" | head -n 8

first_after=$(sed -n "$((lines_at_dump + 1))p" "$LOG")
[ -n "$first_after" ] || die "the restored process logged nothing"
[ "${first_after% count *}" = "pid $pid" ] || die "after the restore the log says '$first_after', not pid $pid"
[ "$(count_of "$first_after")" = $(($(count_of "$last_before") + 1)) ] ||
	die "the count did not continue: '$last_before' then '$first_after'"

step "same pid $pid, and the count went on: '$last_before' -> '$first_after'"
kill -TERM "$pid"
echo "demo: ok"
