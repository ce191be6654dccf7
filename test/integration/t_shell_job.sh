#!/usr/bin/env bash
# t_shell_job: a process whose stdin/stdout/stderr are a terminal (w_tty under
# ptyrun). cr dump refuses it without --shell-job, naming the pid and a tty fd,
# and leaves it running; with --shell-job the dump succeeds. `cr restore
# --shell-job` run on another terminal brings it back there: it passes, and
# what it writes to fd 1 after the restore shows on the new terminal.
source "$(dirname "$0")/lib.sh"

shell_job() {
	local img=$CASE_TMP/img out1=$CASE_TMP/pty-dump.out out2=$CASE_TMP/pty-restore.out ptyrun2 status
	wl_start_pty "$out1" w_tty || return 1

	if cr_run dump-refused dump "$WL_PID" -D "$CASE_TMP/img-refused"; then
		REASON="cr dump without --shell-job succeeded for a process on a terminal"
		return 1
	fi
	grep -Eq "(^|[^0-9])$WL_PID([^0-9]|$)" "$CR_ERR" || { REASON="the error does not name pid $WL_PID: $(last_line "$CR_ERR")"; return 1; }
	grep -Eiq 'tty|terminal|pty' "$CR_ERR" || { REASON="the error does not say tty: $(last_line "$CR_ERR")"; return 1; }
	grep -Eq '(^|[^0-9])[012]([^0-9]|$)' "$CR_ERR" || { REASON="the error names no fd 0-2: $(last_line "$CR_ERR")"; return 1; }
	running_free "$WL_PID" "$WL_EXE" || { REASON="after the refused dump: $(describe_pid "$WL_PID")"; return 1; }

	cr_dump dump "$WL_PID" "$img" --shell-job || return 1
	wait_until 5 pid_gone "$PTYRUN_PID" || { REASON="the first terminal's ptyrun did not exit"; return 1; }

	CASE_IMG_DIRS+=("$img")
	CASE_LOGS+=("$out2")
	"$WL/ptyrun" "$out2" timeout --foreground -k 5 "$CR_TIMEOUT" "$CR" restore -D "$img" --shell-job \
		</dev/null >/dev/null 2>&1 &
	ptyrun2=$!
	track_pid "$ptyrun2"
	wl_await_running || return 1
	wl_trigger || return 1
	wl_expect_pass || return 1
	wait_until 10 pid_gone "$ptyrun2" || { REASON="cr restore (under ptyrun) did not exit after the workload"; return 1; }
	wait "$ptyrun2"
	status=$?
	[ "$status" = 0 ] || { REASON="cr restore --shell-job exited $status"; return 1; }
	grep -q "w_tty $WL_PID $WL_TOKEN alive" "$out2" || {
		REASON="the new terminal did not show 'w_tty $WL_PID $WL_TOKEN alive'"
		return 1
	}
}

run_case dump_restore_on_tty shell_job
finish_tests
