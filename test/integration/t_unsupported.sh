#!/usr/bin/env bash
# t_unsupported: cr dump refuses what it cannot checkpoint yet, a raw
# socket (w_pipe holds one above a pipe and a unix socketpair with data in
# them), with a non-zero exit and an error naming the pid, the fd and its
# kind; the process keeps running unharmed (not traced, not stopped, the
# data in its pipe and socket intact although cr read both before it met
# the raw socket: it passes when triggered) and no inventory.img is
# left behind.  The same for kernel objects two processes share through
# clone(2) (w_clone_share): an fd table (CLONE_FILES), fs state (CLONE_FS),
# an address space (CLONE_VM), a signal handler table (CLONE_SIGHAND, which
# needs CLONE_VM): the error names both processes and the object, and the
# sharing still holds after the refusal.
source "$(dirname "$0")/lib.sh"

raw_socket() {
	local nl
	wl_start w_pipe || return 1
	read -r _ nl < <(grep '^raw' "$WL_DIR/fds")
	expect_refused_then_pass "$WL_PID" "unsupported kind: socket (RAW)" "fd $nl:"
}

# clone_shared WHICH WHAT: the dump refuses, naming both processes and WHAT.
clone_shared() {
	local child
	wl_start w_clone_share "$1" || return 1
	child=$(cat "$WL_DIR/child")
	track_pid "$child"
	expect_refused "$WL_PID" "$CASE_TMP/img" "share one $2" || return 1
	mentions_number "$CR_ERR" "$child" || { REASON="the error does not name the child $child: $(last_line "$CR_ERR")"; return 1; }
	running_free "$WL_PID" "$WL_EXE" || { REASON="after the refused dump: $(describe_pid "$WL_PID")"; return 1; }
	wl_trigger || return 1
	wl_expect_pass || return 1
	wl_await_exit
}

run_case raw_socket raw_socket
run_case clone_files clone_shared files "fd table"
run_case clone_fs clone_shared fs "fs state"
run_case clone_vm clone_shared vm "address space"
# CLONE_SIGHAND needs CLONE_VM: the shared address space is found first.
run_case clone_sighand clone_shared sighand "address space"
finish_tests
