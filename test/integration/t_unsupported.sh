#!/usr/bin/env bash
# t_unsupported: cr dump refuses what it cannot checkpoint yet — a pipe and a
# socket (w_pipe), a second thread (w_thread) — with a non-zero exit and an
# error naming the pid, the fd and its kind; the process keeps running
# unharmed (not traced, not stopped, its buffered data intact: it passes when
# triggered) and no inventory.img is left behind.
source "$(dirname "$0")/lib.sh"

# Does FILE mention NUMBER as a whole number?
mentions_number() {
	grep -Eq "(^|[^0-9])$2([^0-9]|$)" "$1"
}

refused_then_pass() {
	local img=$CASE_TMP/img
	if cr_run dump dump "$WL_PID" -D "$img"; then
		REASON="cr dump of $WL_NAME succeeded"
		return 1
	fi
	[ "$CR_STATUS" != 124 ] || { REASON="cr dump timed out"; return 1; }
	mentions_number "$CR_ERR" "$WL_PID" || { REASON="the error does not name pid $WL_PID: $(last_line "$CR_ERR")"; return 1; }
	[ ! -e "$img/inventory.img" ] || { REASON="a failed dump left $img/inventory.img"; return 1; }
	running_free "$WL_PID" "$WL_EXE" || { REASON="after the refused dump: $(describe_pid "$WL_PID")"; return 1; }
	sleep 0.2
	running_free "$WL_PID" "$WL_EXE" || { REASON="after the refused dump: $(describe_pid "$WL_PID")"; return 1; }
	return 0
}

pipe_and_socket() {
	local pr pw sa sb
	wl_start w_pipe || return 1
	read -r _ pr pw < <(grep '^pipe' "$WL_DIR/fds")
	read -r _ sa sb < <(grep '^socket' "$WL_DIR/fds")
	refused_then_pass || return 1
	if grep -qi pipe "$CR_ERR"; then
		mentions_number "$CR_ERR" "$pr" || mentions_number "$CR_ERR" "$pw" ||
			{ REASON="the error says pipe but names neither fd $pr nor $pw: $(last_line "$CR_ERR")"; return 1; }
	elif grep -qi socket "$CR_ERR"; then
		mentions_number "$CR_ERR" "$sa" || mentions_number "$CR_ERR" "$sb" ||
			{ REASON="the error says socket but names neither fd $sa nor $sb: $(last_line "$CR_ERR")"; return 1; }
	else
		REASON="the error names neither a pipe nor a socket: $(last_line "$CR_ERR")"
		return 1
	fi
	wl_trigger || return 1
	wl_expect_pass || return 1
	wl_await_exit
}

threads() {
	wl_start w_thread || return 1
	refused_then_pass || return 1
	grep -qi thread "$CR_ERR" || { REASON="the error does not say 'thread': $(last_line "$CR_ERR")"; return 1; }
	wl_trigger || return 1
	wl_expect_pass || return 1
	wl_await_exit
}

run_case pipe_socket pipe_and_socket
run_case multi_threaded threads
finish_tests
