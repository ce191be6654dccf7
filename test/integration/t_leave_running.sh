#!/usr/bin/env bash
# t_leave_running: after `cr dump --leave-running` the process runs on,
# untraced, with its state intact (it passes when triggered). A restore while
# it still holds its pid fails naming that pid, and harms nothing. Once it has
# exited, the images restore to the same pid and token and pass again.
# A process released by the dump goes on as if never stopped: a call the
# freeze interrupted keeps waiting (blocked_*, with w_syscall's control
# mode: a call that returns before the trigger is a failure), `sleep` sleeps
# its whole time and exits 0, `tail -f` keeps following its file.
source "$(dirname "$0")/lib.sh"

leave_running() {
	local img=$CASE_TMP/img
	wl_start w_state || return 1
	cr_dump dump "$WL_PID" "$img" --leave-running || return 1
	running_free "$WL_PID" "$WL_EXE" || { REASON="after the dump: $(describe_pid "$WL_PID")"; return 1; }

	# The pid is taken: restore must refuse and name it.
	if cr_run restore-taken restore -D "$img" --detach; then
		REASON="cr restore succeeded while pid $WL_PID was still in use"
		return 1
	fi
	grep -qw "$WL_PID" "$CR_ERR" || { REASON="restore error does not name pid $WL_PID: $(last_line "$CR_ERR")"; return 1; }
	running_free "$WL_PID" "$WL_EXE" || { REASON="after the refused restore: $(describe_pid "$WL_PID")"; return 1; }

	wl_trigger || return 1
	wl_expect_pass || return 1
	wl_await_exit || return 1

	cr_restore_detached restore "$img" || return 1
	wl_trigger || return 1
	wl_expect_pass || return 1
	wl_await_exit
}

# A call interrupted by the freeze must still be waiting after the
# release, and return only because of the trigger (control mode).
blocked_released() {
	local img=$CASE_TMP/img
	wl_start w_syscall "$1" control || return 1
	wl_await_blocked syscall_nr || return 1
	cr_dump dump "$WL_PID" "$img" --leave-running || return 1
	sleep 0.3
	[ ! -e "$WL_DIR/result" ] && proc_alive "$WL_PID" || {
		REASON="the released $1 did not keep waiting: $(cat "$WL_DIR/result" 2>/dev/null)"
		return 1
	}
	wl_trigger || return 1
	wl_expect_pass || return 1
	wl_await_exit
}

# An unmodified sleep dumped mid-sleep sleeps its whole time and exits 0.
sleep_released() {
	local img=$CASE_TMP/img pid t0 t1 status
	t0=$(date +%s%N)
	( clean_exec sleep 3 ) </dev/null >/dev/null 2>&1 &
	pid=$!
	track_pid "$pid"
	wait_until 5 blocked_in "$pid" 230 || { REASON="sleep is not in clock_nanosleep"; return 1; }
	cr_dump dump "$pid" "$img" --leave-running || return 1
	wait "$pid"
	status=$?
	t1=$(date +%s%N)
	[ "$status" = 0 ] || { REASON="sleep exited $status after the dump"; return 1; }
	[ $(((t1 - t0) / 1000000)) -ge 2900 ] || { REASON="sleep 3 ended after $(((t1 - t0) / 1000000)) ms"; return 1; }
}

# An unmodified tail -f keeps following its file after the dump.
tail_released() {
	local img=$CASE_TMP/img file=$CASE_TMP/followed out=$CASE_TMP/tail.out pid
	echo first > "$file"
	( clean_exec tail -f "$file" ) > "$out" 2>/dev/null </dev/null &
	pid=$!
	track_pid "$pid"
	wait_until 5 grep -q first "$out" || { REASON="tail did not print the first line"; return 1; }
	cr_dump dump "$pid" "$img" --leave-running || return 1
	echo "second $$" >> "$file"
	wait_until 5 grep -q "second $$" "$out" || {
		REASON="tail did not follow the file after the dump (alive: $(proc_alive "$pid" && echo yes || echo no))"
		return 1
	}
	kill "$pid"
}

# A process that forks short-lived children all the time: children exit
# between being found and being seized.  Every one of 30 dumps
# --leave-running must succeed; then a dump and restore, after which the
# loop's counter goes on from where it was (a new shell would start at 1).
# "sh": dash running /bin/true (children become zombies while their parent
# is frozen); "python": python3 ignoring SIGCHLD (children are reaped by
# the kernel at once, and vanish).
FORK_LOOP_SH='n=0; while :; do /bin/true; n=$((n+1)); echo $n > "$1/count.tmp"; mv "$1/count.tmp" "$1/count"; done'
FORK_LOOP_PY='
import os, signal, sys
signal.signal(signal.SIGCHLD, signal.SIG_IGN)
n = 0
while True:
    if os.fork() == 0: os._exit(0)
    n += 1
    with open(sys.argv[1] + "/count.tmp", "w") as f: f.write("%d\n" % n)
    os.rename(sys.argv[1] + "/count.tmp", sys.argv[1] + "/count")
'

count_of() {
	cat "$CASE_TMP/count" 2>/dev/null || echo 0
}

counting_past() {
	[ "$(count_of)" -gt "$1" ]
}

forking_target() {
	local img=$CASE_TMP/img pid i at
	if [ "$1" = sh ]; then
		( clean_exec sh -c "$FORK_LOOP_SH" sh "$CASE_TMP" ) </dev/null >/dev/null 2>&1 &
	else
		( clean_exec python3 -c "$FORK_LOOP_PY" "$CASE_TMP" ) </dev/null >/dev/null 2>&1 &
	fi
	pid=$!
	disown "$pid"
	track_pid "$pid"
	wait_until 10 counting_past 10 || { REASON="the $1 loop does not count: $(describe_pid "$pid")"; return 1; }
	for i in $(seq 30); do
		rm -rf "$img"
		cr_run "dump-$i" dump "$pid" -D "$img" --leave-running ||
			{ REASON="dump $i of 30 failed: $(last_line "$CR_ERR")"; return 1; }
		at=$(count_of)
		wait_until 5 counting_past "$at" || { REASON="after dump $i the loop stopped at $at: $(describe_pid "$pid")"; return 1; }
	done
	rm -rf "$img"
	WL_PID=$pid WL_NAME=$1 WL_EXE=$(readlink /proc/"$pid"/exe)
	cr_dump dump "$pid" "$img" || return 1
	at=$(count_of)
	cr_restore_detached restore "$img" || return 1
	wait_until 5 counting_past "$at" || { REASON="the restored loop does not go on from $at: count $(count_of)"; return 1; }
	[ "$(count_of)" -ge "$at" ] || { REASON="the restored loop started again: count $(count_of), was $at"; return 1; }
	kill -KILL "$pid"
}

run_case leave_running_then_restore leave_running
run_case forking_sh forking_target sh
run_case forking_python forking_target python
for which in nanosleep clock_nanosleep poll_inf poll_timeout pause futex; do
	run_case "blocked_$which" blocked_released "$which"
done
run_case sleep_keeps_sleeping sleep_released
run_case tail_keeps_following tail_released
finish_tests
