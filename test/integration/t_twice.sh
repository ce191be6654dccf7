#!/usr/bin/env bash
# t_twice: a restored process can be dumped and restored again: w_state goes
# dump -> restore -> dump -> restore -> trigger and must PASS with the pid and
# token of the first start, its counter having gone on from where the first
# run left it (counter_at_ready < counter_at_verify).
source "$(dirname "$0")/lib.sh"

twice() {
	local first last
	wl_start w_state || return 1
	cr_dump dump1 "$WL_PID" "$CASE_TMP/img1" || return 1
	cr_restore_detached restore1 "$CASE_TMP/img1" || return 1
	sleep 0.3 # let the restored process count a little
	cr_dump dump2 "$WL_PID" "$CASE_TMP/img2" || return 1
	cr_restore_detached restore2 "$CASE_TMP/img2" || return 1
	wl_trigger || return 1
	wl_expect_pass || return 1
	first=$(cat "$WL_DIR/counter_at_ready")
	last=$(cat "$WL_DIR/counter_at_verify" 2>/dev/null)
	[ -n "$last" ] && [ "$last" -gt "$first" ] || {
		REASON="counter went from $first (ready) to '$last' (verify)"
		return 1
	}
	wl_await_exit
}

run_case dump_restore_twice twice
finish_tests
