#!/usr/bin/env bash
# t_unsupported: cr dump refuses what it cannot checkpoint yet, a netlink
# socket (w_pipe holds one above a pipe and a unix socketpair with data in
# them), with a non-zero exit and an error naming the pid, the fd and its
# kind; the process keeps running unharmed (not traced, not stopped, the
# data in its pipe and socket intact although cr read both before it met
# the netlink socket: it passes when triggered) and no inventory.img is
# left behind.  The same for kernel objects two processes share through
# clone(2) (w_clone_share): an fd table (CLONE_FILES), fs state (CLONE_FS),
# an address space (CLONE_VM), a signal handler table (CLONE_SIGHAND, which
# needs CLONE_VM): the error names both processes and the object, and the
# sharing still holds after the refusal.
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

netlink_socket() {
	local nl
	wl_start w_pipe || return 1
	read -r _ nl < <(grep '^netlink' "$WL_DIR/fds")
	refused_then_pass || return 1
	grep -q "unsupported kind: socket" "$CR_ERR" ||
		{ REASON="the error does not say 'unsupported kind: socket': $(last_line "$CR_ERR")"; return 1; }
	grep -q "fd $nl:" "$CR_ERR" || { REASON="the error does not name fd $nl: $(last_line "$CR_ERR")"; return 1; }
	wl_trigger || return 1
	wl_expect_pass || return 1
	wl_await_exit
}

# clone_shared WHICH WHAT: the dump refuses, naming both processes and WHAT.
clone_shared() {
	local child
	wl_start w_clone_share "$1" || return 1
	child=$(cat "$WL_DIR/child")
	track_pid "$child"
	refused_then_pass || return 1
	grep -q "share one $2" "$CR_ERR" || { REASON="the error does not say 'share one $2': $(last_line "$CR_ERR")"; return 1; }
	mentions_number "$CR_ERR" "$child" || { REASON="the error does not name the child $child: $(last_line "$CR_ERR")"; return 1; }
	wl_trigger || return 1
	wl_expect_pass || return 1
	wl_await_exit
}

run_case netlink_socket netlink_socket
run_case clone_files clone_shared files "fd table"
run_case clone_fs clone_shared fs "fs state"
run_case clone_vm clone_shared vm "address space"
# CLONE_SIGHAND needs CLONE_VM: the shared address space is found first.
run_case clone_sighand clone_shared sighand "address space"
finish_tests
