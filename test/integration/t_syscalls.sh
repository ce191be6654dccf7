#!/usr/bin/env bash
# t_syscalls: a process dumped while blocked in a system call comes back the
# way the kernel would bring it back after a signal (see w_syscall.c):
# pause, sigsuspend, ppoll, futex and poll without a timeout are restarted
# and keep waiting (with their temporary signal mask and, for ppoll, the
# time that was left); nanosleep, clock_nanosleep and poll with a timeout
# (restart-block calls) return EINTR at once, with the time left in *rem.
source "$(dirname "$0")/lib.sh"

blocked_call() {
	local img=$CASE_TMP/img
	wl_start w_syscall "$1" expect-restored || return 1
	wl_await_blocked syscall_nr || return 1
	cr_dump dump "$WL_PID" "$img" || return 1
	cr_restore_detached restore "$img" || return 1
	wl_await_blocked syscall_nr_restored || return 1
	sleep 0.2 # a restarted call must stay blocked
	wl_await_blocked syscall_nr_restored || return 1
	wl_trigger || return 1
	wl_expect_pass || return 1
	wl_await_exit
}

for which in pause sigsuspend ppoll_inf ppoll_timeout futex nanosleep clock_nanosleep poll_inf poll_timeout; do
	run_case "$which" blocked_call "$which"
done
finish_tests
