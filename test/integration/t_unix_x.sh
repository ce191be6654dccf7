#!/usr/bin/env bash
# t_unix_x: unix sockets between the processes of a dumped tree (w_unix_x.c
# says what each mode holds and checks), and real programs that connect
# their processes with them:
#
#   control_*     the workload passes without any dump.
#   tree          socketpairs across fork, a pair whose common ancestor holds
#                 none of it, an accepted connection and its client in
#                 another process, datagrams from another process: dump,
#                 restore, every queue and connection checked, and the
#                 children report the tokens they drew.
#   tree_twice / tree_leave_running  the same, twice in a row / the dump
#                 consumed nothing.
#   embryo        two connections not accepted yet come back queued, in
#                 order, and are accepted after restore.
#   refused_*     refused at dump naming the pid, the fd and the thing; the
#                 tree runs on and passes.
source "$(dirname "$0")/lib.sh"

# The workload's children, for the dump to free them too.
children_of() {
	cat /proc/"$1"/task/*/children 2>/dev/null
}

tree_roundtrip() {
	local img=$CASE_TMP/img kids k
	wl_start w_unix_x "$@" || return 1
	kids=$(children_of "$WL_PID")
	[ -n "$kids" ] || { REASON="the workload has no children"; return 1; }
	cr_dump dump "$WL_PID" "$img" || return 1
	for k in $kids; do
		wait_until 5 pid_gone "$k" || { REASON="child $k survived the dump"; return 1; }
	done
	cr_restore_detached restore "$img" || return 1
	for k in $kids; do
		proc_alive "$k" || { REASON="child $k was not restored"; return 1; }
	done
	wl_trigger || return 1
	wl_expect_pass || return 1
	wl_await_exit
}

refused_x() {
	local text=$1
	shift
	wl_start w_unix_x "$@" || return 1
	expect_refused "$WL_PID" "$CASE_TMP/img" || return 1
	grep -q "$text" "$CR_ERR" || { REASON="the error does not say '$text': $(last_line "$CR_ERR")"; return 1; }
	running_free "$WL_PID" "$WL_EXE" || { REASON="after the refused dump: $(describe_pid "$WL_PID")"; return 1; }
	wl_trigger || return 1
	wl_expect_pass || return 1
	wl_await_exit
}

run_case control_tree case_control w_unix_x tree
run_case control_embryo case_control w_unix_x embryo
run_case control_embryo_data case_control w_unix_x embryo data
run_case control_creds case_control w_unix_x creds
run_case tree tree_roundtrip tree
run_case tree_twice case_twice w_unix_x tree
run_case tree_leave_running case_leave_running w_unix_x tree
run_case refused_rights refused_x "SCM_RIGHTS" rights
finish_tests
