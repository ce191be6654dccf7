#!/usr/bin/env bash
# t_foreground: `cr restore` without --detach waits for the restored process
# and exits with its status: 0 when it passes, the workload's own exit code
# (3, via the exit_code hook), and 128+15 when it is killed by SIGTERM.
source "$(dirname "$0")/lib.sh"

# foreground EXPECTED_STATUS HOW: HOW is "pass", "exit3" or "sigterm".
foreground() {
	local expect=$1 how=$2 img=$CASE_TMP/img crpid status
	wl_start w_state || return 1
	cr_dump dump "$WL_PID" "$img" || return 1
	[ "$how" = exit3 ] && echo 3 > "$WL_DIR/exit_code"

	CASE_IMG_DIRS+=("$img")
	CASE_LOGS+=("$CASE_TMP/restore.err")
	timeout -k 5 "$CR_TIMEOUT" "$CR" restore -D "$img" </dev/null >"$CASE_TMP/restore.out" 2>"$CASE_TMP/restore.err" &
	crpid=$!
	track_pid "$crpid"
	wl_await_running || return 1
	proc_alive "$crpid" || { REASON="cr restore exited while the restored process runs"; return 1; }

	if [ "$how" = sigterm ]; then
		kill -TERM "$WL_PID"
	else
		wl_trigger || return 1
		wl_expect_pass || return 1
	fi
	wait "$crpid"
	status=$?
	[ "$status" = "$expect" ] || { REASON="cr restore exited $status, want $expect"; return 1; }
	wl_await_exit
}

run_case exit_0 foreground 0 pass
run_case exit_3 foreground 3 exit3
run_case killed_sigterm foreground 143 sigterm
finish_tests
