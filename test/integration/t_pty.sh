#!/usr/bin/env bash
# t_pty: pseudo-terminal pairs inside the tree are not restored yet, so the
# dump refuses them precisely, at dump time, and leaves the tree running and
# working:
#   script_refused        util-linux `script` running a shell: the error
#                         names the pty master, its /dev/pts/N and the
#                         shell's fd on the slave; the shell still answers
#   tmux_server_refused   a tmux server (tmux -L, not attached) with a pane
#                         running bash: refused, and afterwards send-keys /
#                         capture-pane show the pane's shell still works
#   other_pts_refused     a process holding a pts it opened itself, which is
#                         not its controlling terminal: refused by name
#   slave_of_tree_refused the shell inside `script` dumped alone: its
#                         controlling terminal, refused without --shell-job
source "$(dirname "$0")/lib.sh"

TMUX_SOCK=cr-pty-$$
unset TMUX

tm() {
	tmux -L "$TMUX_SOCK" -f /dev/null "$@"
}

# The only child of PID.
child_of() {
	cat /proc/"$1"/task/*/children 2>/dev/null | tr -d ' '
}

# script -c 'bash' with its typescript in a file: SCRIPT_PID, SHELL_PID.
start_script() {
	local out=$CASE_TMP/typescript
	mkfifo "$CASE_TMP/in"
	( clean_exec setsid script -q -f -c 'bash --norc --noprofile -i' "$out" ) <>"$CASE_TMP/in" >/dev/null 2>&1 &
	SCRIPT_PID=$!
	track_pid "$SCRIPT_PID"
	wait_until 10 script_has_shell || { REASON="script did not start its shell"; return 1; }
	SHELL_PID=$(child_of "$SCRIPT_PID")
	CASE_LOGS+=("$out")
}

script_has_shell() {
	local c
	c=$(child_of "$SCRIPT_PID")
	[ -n "$c" ] && [ "$(readlink /proc/"$c"/exe)" = /usr/bin/bash ]
}

# The shell under script answers on its terminal.
script_shell_answers() {
	local token=tok$RANDOM$RANDOM
	echo "echo \"ans:\$((6*7)):$token\"" >"$CASE_TMP/in"
	wait_until 10 grep -q "ans:42:$token" "$CASE_TMP/typescript" ||
		{ REASON="the shell under script did not answer: $(tail -c 200 "$CASE_TMP/typescript" | tr -d '\r')"; return 1; }
}

pts_of() {
	readlink /proc/"$1"/fd/0
}

script_refused() {
	local pts
	start_script || return 1
	script_shell_answers || return 1
	pts=$(pts_of "$SHELL_PID")
	case $pts in /dev/pts/*) ;; *) REASON="the shell's fd 0 is $pts, not a pts"; return 1 ;; esac
	cr_run dump dump "$SCRIPT_PID" -D "$CASE_TMP/img"
	check_refused "$SCRIPT_PID" "$CASE_TMP/img" "pty master of $pts" "pid $SHELL_PID fd 0" "not restored" || return 1
	# Known: script reads its child's CLD_STOPPED (cr's hold) from a
	# signalfd and stops itself, waiting for a SIGCONT; it is alive and
	# untraced, its shell runs free.
	proc_alive "$SCRIPT_PID" && [ "$(status_field "$SCRIPT_PID" TracerPid)" = 0 ] ||
		{ REASON="script after the refused dump: $(describe_pid "$SCRIPT_PID")"; return 1; }
	running_free "$SHELL_PID" /usr/bin/bash || { REASON="its shell after the refused dump: $(describe_pid "$SHELL_PID")"; return 1; }
	kill -CONT "$SCRIPT_PID"
	script_shell_answers
}

tmux_server_refused() {
	local server pane token=tok$RANDOM$RANDOM
	tm new-session -d -s s -x 80 -y 24 "bash --norc --noprofile" || { REASON="tmux new-session failed"; return 1; }
	server=$(tm display-message -p '#{pid}')
	track_pid "$server"
	pane=$(tm display-message -p -t s '#{pane_tty}')
	cr_run dump dump "$server" -D "$CASE_TMP/img"
	check_refused "$server" "$CASE_TMP/img" "pty master of $pane" "not restored" || return 1
	running_free "$server" "$(readlink -f "$(command -v tmux)")" || { REASON="the tmux server after the refused dump: $(describe_pid "$server")"; return 1; }
	tm send-keys -t s "echo \"got:\$((6*7)):$token\"" Enter
	wait_until 10 tmux_shows "got:42:$token" ||
		{ REASON="the pane does not answer after the refused dump: $(tm capture-pane -p -t s | grep -v '^$' | tail -n 3)"; return 1; }
	tm kill-server
}

tmux_shows() {
	tm capture-pane -p -t s | grep -qF -- "$1"
}

# The shell inside script, dumped alone: its terminal's master is outside
# the tree, and the terminal is its controlling one: without --shell-job,
# refused asking for it.  (script itself, outside the tree, stops when it
# sees its child in cr's group stop, and is not asked again here.)
slave_of_tree_refused() {
	start_script || return 1
	cr_run dump dump "$SHELL_PID" -D "$CASE_TMP/img"
	check_refused "$SHELL_PID" "$CASE_TMP/img" "--shell-job" || return 1
	running_free "$SHELL_PID" /usr/bin/bash || { REASON="the shell after the refused dump: $(describe_pid "$SHELL_PID")"; return 1; }
}

# A process without a controlling terminal holding a pts of someone else's
# pty (script's), opened itself: not the caller's terminal, refused by name
# with or without --shell-job.
other_pts_refused() {
	local pts holder opt
	start_script || return 1
	pts=$(pts_of "$SHELL_PID")
	( clean_exec setsid sleep 1000 ) <>"$pts" >/dev/null 2>&1 &
	holder=$!
	track_pid "$holder"
	wait_until 5 running_free "$holder" "$(readlink -f /usr/bin/sleep)" || { REASON="sleep did not start"; return 1; }
	for opt in "" --shell-job; do
		cr_run dump dump "$holder" -D "$CASE_TMP/img" $opt
		check_refused "$holder" "$CASE_TMP/img" "$pts" "is not the shell job's terminal" "it has none" || return 1
		running_free "$holder" "$(readlink -f /usr/bin/sleep)" || { REASON="after the refused dump: $(describe_pid "$holder")"; return 1; }
	done
	script_shell_answers
}

for prog in tmux script; do
	command -v "$prog" >/dev/null || { echo "FAIL $TEST_NAME: $prog is not installed (make deps)"; exit 1; }
done

run_case script_refused script_refused
run_case tmux_server_refused tmux_server_refused
tm kill-server 2>/dev/null
run_case slave_of_tree_refused slave_of_tree_refused
run_case other_pts_refused other_pts_refused
finish_tests
