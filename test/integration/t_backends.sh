#!/usr/bin/env bash
# t_backends: the pid backends of `cr restore --pid-backend` and taken pids.
#
#  clone3, ns_last_pid    w_state restored with each backend passes with its
#                         pid and token (with strace at hand, also that cr
#                         really forked the root the backend's way: clone3
#                         with set_tid / a write of ns_last_pid then clone)
#  clone2                 on a kernel without the clone2 syscall the restore
#                         fails, says clone2, creates nothing (the pid stays
#                         free) and leaves the images usable: a restore with
#                         the default backend then passes
#  ns_last_pid_nested     w_pidns (nested pid namespaces) with ns_last_pid:
#                         fails, says ns_last_pid, without having forked
#                         anything (the host's pid cursor did not move back)
#                         and every pid of the tree is free once cr has
#                         returned; then the default backend restores it and
#                         it passes
#  taken_pid              w_state dumped with --leave-running, restored while
#                         it runs: fails naming the pid and the holder, no new
#                         process appears, the running one still passes
#  taken_pid_in_tree      a small w_tree (11 processes) dumped; the tid of
#                         one of the root's threads is then taken by another
#                         process (test/workloads/pidholder, which gets it
#                         with clone3 set_tid, not by moving the host's pid
#                         cursor): the restore fails naming that pid and the
#                         holder, and no pid of the tree exists afterwards;
#                         once the pid is free again it restores and passes
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/treelib.sh"

have_strace() {
	command -v strace >/dev/null 2>&1
}

# restore_traced LABEL IMG [OPTIONS...]: cr restore --detach under strace
# (cr's own system calls only: its children stay free for its ptrace).
restore_traced() {
	local label=$1 img=$2
	shift 2
	CASE_IMG_DIRS+=("$img")
	TRACE=$CASE_TMP/$label.strace
	CR_ERR=$CASE_TMP/$label.err
	CASE_LOGS+=("$CR_ERR")
	timeout -k 5 "$CR_TIMEOUT" strace -o "$TRACE" -e trace=openat,clone,clone3 \
		"$CR" restore -D "$img" --detach "$@" >"$CASE_TMP/$label.out" 2>"$CR_ERR" </dev/null
	CR_STATUS=$?
	[ "$CR_STATUS" = 0 ] || { REASON="cr restore $* failed (exit $CR_STATUS): $(last_line "$CR_ERR")"; return 1; }
	wl_await_running
}

backend_pass() {
	local backend=$1 img=$CASE_TMP/img
	wl_start w_state || return 1
	cr_dump dump "$WL_PID" "$img" || return 1
	if have_strace; then
		restore_traced restore "$img" --pid-backend="$backend" || return 1
		case $backend in
		clone3)
			grep -Eq "^clone3\(.*set_tid=\[$WL_PID\].* = $WL_PID$" "$TRACE" ||
				{ REASON="cr did not fork pid $WL_PID with clone3 set_tid: $(grep -E '^clone' "$TRACE" | head -n 3 | tr '\n' ' ')"; return 1; }
			;;
		ns_last_pid)
			if ! grep -q 'ns_last_pid' "$TRACE" || ! grep -Eq "^clone\(.* = $WL_PID$" "$TRACE"; then
				REASON="cr did not open ns_last_pid and clone pid $WL_PID: $(grep -E '^clone|ns_last' "$TRACE" | head -n 3 | tr '\n' ' ')"
				return 1
			fi
			;;
		esac
	else
		echo "# strace not found: not checking how $backend forked"
		cr_restore_detached restore "$img" --pid-backend="$backend" || return 1
	fi
	wl_trigger || return 1
	wl_expect_pass || return 1
	wl_await_exit
}

clone2_absent() {
	local img=$CASE_TMP/img
	if grep -Eq '[_ ]sys_clone2$' /proc/kallsyms 2>/dev/null; then
		echo "# this kernel has clone2: the refusal is not tested here"
		return 0
	fi
	wl_start w_state || return 1
	cr_dump dump "$WL_PID" "$img" || return 1
	if cr_run restore-clone2 restore -D "$img" --detach --pid-backend=clone2; then
		REASON="restore with --pid-backend=clone2 succeeded on a kernel without clone2"
		return 1
	fi
	[ "$CR_STATUS" != 124 ] || { REASON="cr restore timed out"; return 1; }
	grep -q clone2 "$CR_ERR" || { REASON="the error does not say clone2: $(last_line "$CR_ERR")"; return 1; }
	pid_gone "$WL_PID" || { REASON="after the failed restore pid $WL_PID exists: $(describe_pid "$WL_PID")"; return 1; }
	cr_restore_detached restore "$img" || return 1
	wl_trigger || return 1
	wl_expect_pass || return 1
	wl_await_exit
}

ns_last_pid_nested() {
	local img=$CASE_TMP/img left cursor_before cursor_after
	wl_start w_pidns || return 1
	tree_track || return 1
	cr_dump dump "$WL_PID" "$img" || return 1
	tree_await_gone 5 || return 1
	read -r cursor_before < /proc/sys/kernel/ns_last_pid
	if cr_run restore-nslastpid restore -D "$img" --detach --pid-backend=ns_last_pid; then
		REASON="a tree with nested pid namespaces restored with ns_last_pid"
		return 1
	fi
	[ "$CR_STATUS" != 124 ] || { REASON="cr restore timed out"; return 1; }
	grep -q ns_last_pid "$CR_ERR" || { REASON="the error does not say ns_last_pid: $(last_line "$CR_ERR")"; return 1; }
	read -r cursor_after < /proc/sys/kernel/ns_last_pid
	# Refusing after forking the root with ns_last_pid moves the host's pid
	# cursor back to the root's pid: the next forks on the host then take the
	# tree's pids. (A wrap of the pid space in between would look the same.)
	[ "$cursor_after" -ge "$cursor_before" ] ||
		{ REASON="the refused restore moved the pid cursor back from $cursor_before to $cursor_after: it forked with ns_last_pid before refusing (root pid $WL_PID)"; return 1; }
	left=$(tree_leftovers)
	[ -z "$left" ] || { REASON="after the failed restore these pids of the tree exist: $left"; return 1; }
	cr_restore_detached restore "$img" || return 1
	wl_trigger || return 1
	wl_expect_pass 20 || return 1
	wl_await_exit
}

# Processes whose executable is the given file.
pids_running() {
	local exe=$1 d
	for d in /proc/[0-9]*; do
		[ "$(readlink "$d"/exe 2>/dev/null)" = "$exe" ] && echo "${d#/proc/}"
	done | sort -n | paste -sd' ' -
}

taken_pid() {
	local img=$CASE_TMP/img before after holder
	wl_start w_state || return 1
	cr_dump dump "$WL_PID" "$img" --leave-running || return 1
	before=$(pids_running "$WL_EXE")
	holder=$(cat /proc/"$WL_PID"/comm)
	if cr_run restore-taken restore -D "$img" --detach; then
		REASON="cr restore succeeded while pid $WL_PID was in use"
		return 1
	fi
	[ "$CR_STATUS" != 124 ] || { REASON="cr restore timed out"; return 1; }
	mentions_number "$CR_ERR" "$WL_PID" || { REASON="the error does not name pid $WL_PID: $(last_line "$CR_ERR")"; return 1; }
	grep -qF -e "$holder" -e "$WL_NAME" "$CR_ERR" ||
		{ REASON="the error does not name the holder ($holder): $(last_line "$CR_ERR")"; return 1; }
	after=$(pids_running "$WL_EXE")
	[ "$after" = "$before" ] || { REASON="processes of $WL_NAME were '$before', now '$after'"; return 1; }
	running_free "$WL_PID" "$WL_EXE" || { REASON="after the refused restore: $(describe_pid "$WL_PID")"; return 1; }
	wl_trigger || return 1
	wl_expect_pass || return 1
	wl_await_exit
}

# take_pid PID: starts a process (build/test/workloads/pidholder, clone3
# set_tid) with exactly that pid. Sets TAKER.
take_pid() {
	local want=$1 out
	out=$("$WL/pidholder" "$want" 2>&1) || { REASON="cannot take pid $want: $out"; return 1; }
	TAKER=$out
	track_pid "$TAKER"
}

taken_pid_in_tree() {
	local img=$CASE_TMP/img victim left
	wl_start w_tree 2 2 || return 1
	tree_track || return 1
	# The second thread of the root (w_tree's root has four).
	victim=$(awk '$1 == 0 { split($5, t, ","); print t[2] }' "$WL_DIR/tree")
	[ -n "$victim" ] || { REASON="no second thread in the root's line of the tree file"; return 1; }
	cr_dump dump "$WL_PID" "$img" || return 1
	tree_await_gone 5 || return 1
	take_pid "$victim" || return 1
	if cr_run restore-taken restore -D "$img" --detach; then
		REASON="cr restore succeeded while pid $victim (a thread of the root) was taken"
		return 1
	fi
	[ "$CR_STATUS" != 124 ] || { REASON="cr restore timed out"; return 1; }
	mentions_number "$CR_ERR" "$victim" || { REASON="the error does not name pid $victim: $(last_line "$CR_ERR")"; return 1; }
	grep -q pidholder "$CR_ERR" || { REASON="the error does not name the holder (pidholder): $(last_line "$CR_ERR")"; return 1; }
	left=$(tree_leftovers)
	[ -z "$left" ] || { REASON="pids of the tree exist after the refused restore: $left"; return 1; }
	kill -KILL "$TAKER"
	wait_until 5 pid_gone "$victim" || { REASON="pid $victim is still taken: $(describe_pid "$victim")"; return 1; }
	cr_restore_detached restore "$img" || return 1
	wl_trigger || return 1
	wl_expect_pass 20 || return 1
	wl_await_exit
}

run_case clone3 backend_pass clone3
run_case ns_last_pid backend_pass ns_last_pid
run_case clone2 clone2_absent
run_case ns_last_pid_nested ns_last_pid_nested
run_case taken_pid taken_pid
run_case taken_pid_in_tree taken_pid_in_tree
finish_tests
