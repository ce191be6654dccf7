#!/usr/bin/env bash
# t_leave_running: after `cr dump --leave-running` the process runs on,
# untraced, with its state intact (it passes when triggered). A restore while
# it still holds its pid fails naming that pid, and harms nothing. Once it has
# exited, the images restore to the same pid and token and pass again.
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

run_case leave_running_then_restore leave_running
finish_tests
