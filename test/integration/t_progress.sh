#!/usr/bin/env bash
# t_progress: on a terminal, dump and restore show a progress line (bytes done
# of the total, and the rate); not on a terminal, they print none. The
# one-second delay before the line appears is set to 0 here.
source "$(dirname "$0")/lib.sh"

export CR_PROGRESS_AFTER_MS=0

progress_on_terminal() {
	local img=$CASE_TMP/img out=$CASE_TMP/tty.out
	wl_start w_bigmem 256 || return 1
	"$WL/ptyrun" "$out" "$CR" dump "$WL_PID" -D "$img" || { REASON="dump on a pty failed: $(cat "$out")"; return 1; }
	grep -q "cr dump: .* of ~[0-9]* MiB, [0-9]* MiB/s" "$out" || { REASON="no dump progress on the terminal: $(cat "$out")"; return 1; }
	wait_until 10 pid_gone "$WL_PID" || { REASON="pid $WL_PID not freed"; return 1; }
	"$WL/ptyrun" "$out" "$CR" restore -D "$img" --detach || { REASON="restore on a pty failed: $(cat "$out")"; return 1; }
	grep -q "cr restore: 256 of 256 MiB" "$out" || { REASON="no restore progress reaching 256 of 256 MiB: $(cat "$out")"; return 1; }
	wl_trigger && wl_expect_pass
}

quiet_off_terminal() {
	local img=$CASE_TMP/img
	wl_start w_bigmem 64 || return 1
	cr_dump dump "$WL_PID" "$img" || return 1
	! grep -q "MiB/s" "$CR_ERR" || { REASON="a progress line with no terminal: $(cat "$CR_ERR")"; return 1; }
	cr_restore_detached restore "$img" || return 1
	! grep -q "MiB/s" "$CR_ERR" || { REASON="a progress line with no terminal: $(cat "$CR_ERR")"; return 1; }
	wl_trigger && wl_expect_pass
}

run_case progress_on_terminal progress_on_terminal
run_case quiet_off_terminal quiet_off_terminal
finish_tests
