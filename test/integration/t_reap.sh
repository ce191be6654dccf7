#!/usr/bin/env bash
# t_reap: cr dump returns once the tree is dead, without waiting for a
# parent outside the tree to reap it (a slow PID 1 takes seconds), and cr
# restore waits, bounded and saying so, for a zombie that still holds a pid
# it needs.  The workload (w_bigmem, 64 MiB it checks after the restore) is
# the child of a `sleep` that never reaps it: when the sleep ends, the
# zombie goes to the test's subreaper, which reaps it at once.
#   parent_reaps_later   the dump returns while the sleep still has seconds
#                        to go, the pid a zombie; the restore started right
#                        after says it waits for that zombie, then restores
#                        the memory once it is reaped
#   never_reaped         a zombie held past the restore's bound (10 s):
#                        refused naming the pid and its parent, nothing
#                        created; once reaped, the same images restore
source "$(dirname "$0")/lib.sh"

# start_lazy SECONDS: w_bigmem 64 MiB as the child of a sleep of SECONDS
# (LAZY_PID), which will not reap it.
start_lazy() {
	WL_NAME=w_bigmem
	WL_EXE=$WL/w_bigmem
	WL_DIR=$(mktemp -d "$CASE_TMP/w_bigmem.XXXX")
	setsid sh -c '"$0" "$1" 64 random & exec sleep "$2"' "$WL_EXE" "$WL_DIR" "$1" </dev/null >/dev/null 2>&1 &
	LAZY_PID=$!
	disown "$LAZY_PID"
	track_pid "$LAZY_PID"
	CASE_LOGS+=("$WL_DIR/log")
	wl_await_ready "$LAZY_PID" child
}

# dump_quick: dumps the workload; the dump must take less than 2.5 s and
# leave its pid a zombie of LAZY_PID.
dump_quick() {
	local t0 t1
	t0=${EPOCHREALTIME//[.,]/}
	cr_run dump dump "$WL_PID" -D "$CASE_TMP/img" ||
		{ REASON="cr dump failed (exit $CR_STATUS): $(last_line "$CR_ERR")"; return 1; }
	t1=${EPOCHREALTIME//[.,]/}
	CASE_IMG_DIRS+=("$CASE_TMP/img")
	[ $((t1 - t0)) -lt 2500000 ] ||
		{ REASON="cr dump took $(((t1 - t0) / 1000)) ms: it waited for the reaping"; return 1; }
	[ "$(stat_field "$WL_PID" 3)" = Z ] ||
		{ REASON="after the dump pid $WL_PID is not a zombie: $(describe_pid "$WL_PID")"; return 1; }
	[ "$(stat_field "$WL_PID" 4)" = "$LAZY_PID" ] ||
		{ REASON="the zombie's parent is not the sleep $LAZY_PID: $(describe_pid "$WL_PID")"; return 1; }
}

parent_reaps_later() {
	start_lazy 4 || return 1
	dump_quick || return 1
	cr_restore_detached restore "$CASE_TMP/img" || return 1
	grep -q "pid $WL_PID is taken by a zombie (w_bigmem) that its parent $LAZY_PID has not reaped yet: waiting" \
		"$CR_ERR" || { REASON="the restore did not say it waits for the zombie: $(last_line "$CR_ERR")"; return 1; }
	wl_trigger || return 1
	wl_expect_pass || return 1
	wl_await_exit
}

never_reaped() {
	local t0 t1
	start_lazy 60 || return 1
	dump_quick || return 1
	t0=${EPOCHREALTIME//[.,]/}
	if cr_run restore-held restore -D "$CASE_TMP/img" --detach; then
		REASON="cr restore succeeded while a zombie held pid $WL_PID"
		return 1
	fi
	t1=${EPOCHREALTIME//[.,]/}
	[ $((t1 - t0)) -ge 9000000 ] || { REASON="the restore gave up after $(((t1 - t0) / 1000)) ms"; return 1; }
	grep -q "pid $WL_PID is taken by a zombie (w_bigmem) that its parent $LAZY_PID has not reaped in" "$CR_ERR" ||
		{ REASON="the refusal does not name the zombie and its parent: $(last_line "$CR_ERR")"; return 1; }
	[ "$(stat_field "$WL_PID" 3)" = Z ] ||
		{ REASON="after the refused restore pid $WL_PID: $(describe_pid "$WL_PID")"; return 1; }
	kill "$LAZY_PID"
	wait_until 5 pid_gone "$WL_PID" || { REASON="the zombie was not reaped after its parent died"; return 1; }
	cr_restore_detached restore "$CASE_TMP/img" || return 1
	wl_trigger || return 1
	wl_expect_pass || return 1
	wl_await_exit
}

run_case parent_reaps_later parent_reaps_later
run_case never_reaped never_reaped
finish_tests
