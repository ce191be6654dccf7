#!/usr/bin/env bash
# t_regs: general-purpose and vector registers (r12-r15, xmm/ymm8-15, and
# zmm16-31 and k1-k7 on AVX-512 machines), MXCSR, the x87 control word and the
# GS base survive dump and restore of a process waiting in raw `syscall`
# pause loops.
source "$(dirname "$0")/lib.sh"

regs() {
	local img=$CASE_TMP/img
	wl_start w_regs || return 1
	wl_await_blocked syscall_nr || return 1
	cr_dump dump "$WL_PID" "$img" || return 1
	cr_restore_detached restore "$img" || return 1
	wl_await_blocked syscall_nr_restored || return 1
	wl_trigger || return 1
	wl_expect_pass || return 1
	wl_await_exit
}

run_case "registers_$(grep -qw avx512f /proc/cpuinfo && echo avx512 || echo sse_avx)" regs
finish_tests
