#!/usr/bin/env bash
# t_controls: every workload, run without any dump, passes when triggered —
# the verification logic works — and fails when one property is broken on
# purpose (negative controls): the checks can fail.
NEEDS_CR=0
source "$(dirname "$0")/lib.sh"

# Start, wait until it blocks where it says it will, trigger, want PASS.
control() {
	wl_start "$@" || return 1
	wl_await_blocked syscall_nr || return 1
	wl_trigger || return 1
	wl_expect_pass || return 1
	wl_await_exit
}

log_lines_at_least() {
	[ "$(wc -l < "$WL_DIR/log")" -ge "$1" ]
}

counter_control() {
	local first last
	wl_start w_counter || return 1
	wait_until 5 log_lines_at_least 3 || { REASON="w_counter logged fewer than 3 lines in 5 s"; return 1; }
	first=$(head -n 1 "$WL_DIR/log")
	last=$(tail -n 1 "$WL_DIR/log")
	[ "$first" = "pid $WL_PID count 1" ] || { REASON="first log line '$first'"; return 1; }
	[ "${last##* }" -ge 3 ] || { REASON="last log line '$last'"; return 1; }
	wl_trigger || return 1
	wl_expect_pass || return 1
	wl_await_exit
}

tty_control() {
	local out=$CASE_TMP/tty-control.out
	wl_start_pty "$out" w_tty || return 1
	wl_trigger || return 1
	wl_expect_pass || return 1
	wait_until 5 grep -q "w_tty $WL_PID $WL_TOKEN alive" "$out" || {
		REASON="the terminal did not show the 'alive' line"
		return 1
	}
	wait_until 5 pid_gone "$PTYRUN_PID" || { REASON="ptyrun did not exit"; return 1; }
	wait "$PTYRUN_PID" || { REASON="ptyrun exited non-zero"; return 1; }
}

# w_state with one property broken just before verification.
sabotaged_state() {
	local what=$1 expect=$2
	wl_start w_state || return 1
	echo "$what" > "$WL_DIR/sabotage"
	wl_trigger || return 1
	wl_expect_fail "$expect"
}

not_interrupted() {
	wl_start w_syscall "$1" expect-restored || return 1
	wl_await_blocked syscall_nr || return 1
	wl_trigger || return 1
	wl_expect_fail "was not interrupted before the trigger"
}

run_case w_state control w_state
run_case w_state_compressible control w_state compressible
for which in pause sigsuspend ppoll_inf ppoll_timeout futex nanosleep clock_nanosleep poll_inf poll_timeout; do
	run_case "w_syscall_$which" control w_syscall "$which" control
done
run_case w_regs control w_regs
run_case w_pipe control w_pipe
run_case w_thread control w_thread
run_case w_counter counter_control
run_case w_tty tty_control

run_case negative_heap sabotaged_state heap "(a) heap node"
run_case negative_anon sabotaged_state anon "(b) anon area differs"
run_case negative_filemap sabotaged_state filemap "(e) page 2 of the file mapping"
run_case negative_fd_offset sabotaged_state fd "(f) fd 11 offset 778"
run_case negative_sigaction sabotaged_state sigaction "(g) SIGPIPE is not SIG_IGN"
run_case negative_pending sabotaged_state pending "(h) pending set differs"
run_case negative_nanosleep_not_restored not_interrupted nanosleep
run_case negative_poll_not_restored not_interrupted poll_timeout

finish_tests
