#!/usr/bin/env bash
# t_shell_job_real: unmodified interactive programs as shell jobs, in a tmux
# pane (a private tmux server, driven with send-keys and read with
# capture-pane). Each runs as a job of the pane's bash and holds state only
# a real restore keeps; it is dumped with --shell-job from outside (the
# pane's shell gets its terminal back), then `cr restore --shell-job` is
# typed in the same pane: the job must take the terminal as its foreground
# group, with its own settings, read keys and write there as before, and
# when it ends `cr restore` exits 0.
#   bash     a shell variable; `$$` is the dumped pid; ^C stops a job of the
#            restored bash, not the bash (its terminal and group are right)
#   python3  a REPL variable
#   less     the position in a file (the screen is redrawn at that line)
#   vim      an unsaved buffer, then :wq writes it
#   top      goes on refreshing its screen, and quits on q
#   leader   a bash that led its terminal's session (under ptyrun), its
#            variable set by its rc file, restored as the command of a new
#            tmux window: it joins the session of cr restore, with the
#            terminal, its variable and job control (^C)
source "$(dirname "$0")/lib.sh"

tmux_private test

screen() {
	tm capture-pane -p -t job 2>/dev/null
}

screen_has() {
	screen | grep -qF -- "$1"
}

# wait_screen TEXT [SECONDS]: the pane shows TEXT.
wait_screen() {
	wait_until "${2:-10}" screen_has "$1" && return 0
	REASON="the pane never showed '$1'; it shows: $(screen | grep -v '^$' | tail -n 4 | tr '\n' '|')"
	return 1
}

# The pane's shell, in a fresh tmux server of the size the jobs see.
start_pane() {
	local server
	tm new-session -d -s job -x 100 -y 30 "env PS1='A> ' bash --norc --noprofile" ||
		{ REASON="tmux new-session failed"; return 1; }
	server=$(tm display-message -p '#{pid}')
	track_pid "$server"
	PANE_SHELL=$(tm list-panes -t job -F '#{pane_pid}')
	wait_screen 'A>' || return 1
	CASE_LOGS+=("$CASE_TMP/screen")
}

job_of_pane() {
	JOB_PID=$(cat /proc/"$PANE_SHELL"/task/*/children 2>/dev/null | tr -d ' ')
	[ -n "$JOB_PID" ] && [ "$(readlink /proc/"$JOB_PID"/exe)" = "$JOB_EXE" ]
}

# run_job EXE COMMAND...: types the command in the pane; sets JOB_PID.
run_job() {
	JOB_EXE=$1
	shift
	tm send-keys -t job "$*" Enter
	wait_until 10 job_of_pane || { REASON="no $JOB_EXE started in the pane"; return 1; }
	track_pid "$JOB_PID"
}

# The job is dumped from outside, and cr restore typed in the same pane.
dump_and_restore() {
	local img=$CASE_TMP/img
	cr_dump dump "$JOB_PID" "$img" --shell-job || return 1
	CASE_IMG_DIRS+=("$img")
	wait_until 10 shell_has_terminal || { REASON="the pane's shell did not take its terminal back"; return 1; }
	tm send-keys -t job "clear; $CR restore --shell-job -D $img; echo \"restore exited \$?\"" Enter
	wait_until 10 running_free "$JOB_PID" "$JOB_EXE" ||
		{ REASON="restored pid $JOB_PID: $(describe_pid "$JOB_PID")"; return 1; }
	# Its group has the terminal, as when it was dumped.
	wait_until 5 job_is_foreground ||
		{ REASON="pid $JOB_PID is not in the terminal's foreground group: pgrp $(stat_field "$JOB_PID" 5), tpgid $(stat_field "$JOB_PID" 8)"; return 1; }
}

shell_has_terminal() {
	[ "$(stat_field "$PANE_SHELL" 8)" = "$PANE_SHELL" ] && [ "$(stat_field "$PANE_SHELL" 3)" = S ]
}

job_is_foreground() {
	[ "$(stat_field "$JOB_PID" 8)" = "$(stat_field "$JOB_PID" 5)" ]
}

# The job ended, and cr restore with it, exiting 0.
expect_restore_exit() {
	wait_screen "restore exited 0" || return 1
	wait_until 5 pid_gone "$JOB_PID" || { REASON="pid $JOB_PID still exists: $(describe_pid "$JOB_PID")"; return 1; }
}

save_screen() {
	screen > "$CASE_TMP/screen"
}

bash_job() {
	local token=tok$RANDOM$RANDOM sleeper
	start_pane || return 1
	run_job /usr/bin/bash bash --norc --noprofile || return 1
	tm send-keys -t job "FOO=$token; PS1='B> '" Enter
	wait_screen 'B>' || return 1
	dump_and_restore || return 1
	tm send-keys -t job 'echo "got:$FOO:$$"' Enter
	wait_screen "got:$token:$JOB_PID" || { save_screen; return 1; }
	# A job of the restored bash gets ^C; the bash goes on.
	tm send-keys -t job 'sleep 1000' Enter
	wait_until 10 bash_has_sleep || { REASON="the restored bash did not start sleep"; save_screen; return 1; }
	sleeper=$(cat /proc/"$JOB_PID"/task/*/children | tr -d ' ')
	tm send-keys -t job C-c
	wait_until 5 pid_gone "$sleeper" || { REASON="^C did not end the restored bash's sleep"; save_screen; return 1; }
	proc_alive "$JOB_PID" || { REASON="the restored bash died on ^C"; return 1; }
	tm send-keys -t job 'echo "after:${FOO}x"' Enter
	wait_screen "after:${token}x" || { save_screen; return 1; }
	tm send-keys -t job 'exit' Enter
	expect_restore_exit || { save_screen; return 1; }
}

bash_has_sleep() {
	local c
	c=$(cat /proc/"$JOB_PID"/task/*/children 2>/dev/null | tr -d ' ')
	[ -n "$c" ] && [ "$(stat_field "$c" 8)" = "$c" ]
}

python_job() {
	local token=tok$RANDOM$RANDOM py
	py=$(readlink -f /usr/bin/python3)
	start_pane || return 1
	run_job "$py" /usr/bin/python3 -q || return 1
	wait_screen '>>>' || return 1
	tm send-keys -t job "tok = '$token'" Enter
	sleep 0.3
	dump_and_restore || return 1
	tm send-keys -t job 'import os' Enter 'print(tok[::-1], os.getpid())' Enter
	wait_screen "$(rev <<<"$token") $JOB_PID" || { save_screen; return 1; }
	tm send-keys -t job 'exit()' Enter
	expect_restore_exit || { save_screen; return 1; }
}

# The first line of the screen.
top_line() {
	screen | head -n 1
}

less_job() {
	local file=$CASE_TMP/lines
	seq -f 'line %04g' 1 2000 > "$file"
	start_pane || return 1
	run_job /usr/bin/less less "$file" || return 1
	wait_screen 'line 0001' || return 1
	tm send-keys -t job 1234g
	wait_until 5 top_line_is 'line 1234' || { REASON="less did not go to line 1234"; save_screen; return 1; }
	dump_and_restore || return 1
	# Redrawn on the new terminal where it was.
	wait_until 5 top_line_is 'line 1234' ||
		{ REASON="the restored less shows '$(top_line)' at the top, not line 1234"; save_screen; return 1; }
	tm send-keys -t job j
	wait_until 5 top_line_is 'line 1235' ||
		{ REASON="the restored less did not scroll on 'j': '$(top_line)'"; save_screen; return 1; }
	tm send-keys -t job q
	expect_restore_exit || { save_screen; return 1; }
}

top_line_is() {
	[ "$(top_line)" = "$1" ]
}

vim_job() {
	local file=$CASE_TMP/edited token=unsaved$RANDOM$RANDOM
	start_pane || return 1
	run_job "$(readlink -f /usr/bin/vim)" vim -u NONE -i NONE -N -n "$file" || return 1
	wait_screen '~' || return 1
	tm send-keys -t job "i$token" Escape
	wait_screen "$token" || return 1
	[ ! -e "$file" ] || { REASON="$file exists before :w"; return 1; }
	dump_and_restore || return 1
	wait_screen "$token" || { REASON="the restored vim does not show its buffer: $REASON"; save_screen; return 1; }
	tm send-keys -t job ':wq' Enter
	expect_restore_exit || { save_screen; return 1; }
	[ "$(cat "$file" 2>/dev/null)" = "$token" ] ||
		{ REASON="the file vim wrote holds '$(cat "$file" 2>&1)', not '$token'"; return 1; }
}

# A job holding a second terminal (another pane's) besides its own: the
# restoring terminal would stand for both, so the dump refuses it, naming
# the pid and the terminal, and the job runs on.
other_terminal_refused() {
	local other
	start_pane || return 1
	tm new-window -d -t job "sleep 1000"
	other=$(tm display-message -p -t job:1 '#{pane_tty}')
	[ -c "$other" ] || { REASON="no second pane tty: '$other'"; return 1; }
	run_job "$(readlink -f /usr/bin/sleep)" "sleep 1000 3<>$other" || return 1
	cr_run dump dump "$JOB_PID" -D "$CASE_TMP/img" --shell-job
	check_refused "$JOB_PID" "$CASE_TMP/img" "$other" "not the shell job's terminal" || return 1
	running_free "$JOB_PID" "$(readlink -f /usr/bin/sleep)" || { REASON="after the refused dump: $(describe_pid "$JOB_PID")"; return 1; }
}

top_job() {
	local first
	start_pane || return 1
	run_job "$(readlink -f "$(command -v top)")" top -d 1 || return 1
	wait_until 10 top_line_is_top || { REASON="top did not draw its screen"; save_screen; return 1; }
	dump_and_restore || return 1
	wait_until 10 top_line_is_top || { REASON="the restored top does not draw its screen: '$(top_line)'"; save_screen; return 1; }
	first=$(top_line)
	wait_until 10 top_line_changed "$first" || { REASON="the restored top does not refresh: '$(top_line)'"; save_screen; return 1; }
	tm send-keys -t job q
	expect_restore_exit || { save_screen; return 1; }
}

bash_leader() {
	local token=tok$RANDOM$RANDOM img=$CASE_TMP/img sleeper ptyrun
	start_pane || return 1
	# The leader runs on a terminal of ptyrun's (which reaps it once
	# dumped); its variable is set by its rc file, not exported.
	echo "FOO=$token; PS1='L> '" > "$CASE_TMP/rc"
	( clean_exec "$WL/ptyrun" "$CASE_TMP/leader.out" bash --rcfile "$CASE_TMP/rc" --noprofile -i ) \
		</dev/null >/dev/null 2>&1 &
	ptyrun=$!
	disown "$ptyrun"
	track_pid "$ptyrun"
	JOB_EXE=/usr/bin/bash
	wait_until 10 leader_started "$ptyrun" || { REASON="no bash under ptyrun"; return 1; }
	JOB_PID=$(cat /proc/"$ptyrun"/task/*/children | tr -d ' ')
	track_pid "$JOB_PID"
	[ "$(stat_field "$JOB_PID" 6)" = "$JOB_PID" ] || { REASON="bash does not lead its session"; return 1; }
	wait_until 10 grep -q 'L>' "$CASE_TMP/leader.out" || { REASON="bash did not read its rc file"; return 1; }
	cr_dump dump "$JOB_PID" "$img" --shell-job || return 1
	tm new-window -d -t job:2 "$CR restore --shell-job -D $img; echo \"restore exited \$?\"; sleep 1000"
	wait_until 10 running_free "$JOB_PID" "$JOB_EXE" || { REASON="restored pid $JOB_PID: $(describe_pid "$JOB_PID")"; return 1; }
	wait_until 5 job_is_foreground || { REASON="pid $JOB_PID is not the terminal's foreground group"; return 1; }
	tm send-keys -t job:2 'echo "got:$FOO:$$"; sleep 1000' Enter
	wait_until 10 leader_shows "got:$token:$JOB_PID" || { REASON="the restored bash did not answer"; return 1; }
	wait_until 10 bash_has_sleep || { REASON="the restored bash did not start sleep in the foreground"; return 1; }
	sleeper=$(cat /proc/"$JOB_PID"/task/*/children | tr -d ' ')
	tm send-keys -t job:2 C-c
	wait_until 5 pid_gone "$sleeper" || { REASON="^C did not end the restored bash's sleep"; return 1; }
	tm send-keys -t job:2 'exit 7' Enter
	wait_until 10 leader_shows "restore exited 7" || { REASON="cr restore did not exit with the bash's 7: $(tm capture-pane -p -t job:2 | grep -v "^$" | tail -n 3 | tr "\n" "|")"; return 1; }
}

leader_started() {
	local c
	c=$(cat /proc/"$1"/task/*/children 2>/dev/null | tr -d ' ')
	[ -n "$c" ] && [ "$(readlink /proc/"$c"/exe)" = /usr/bin/bash ]
}

leader_shows() {
	tm capture-pane -p -t job:2 2>/dev/null | grep -qF -- "$1"
}

top_line_is_top() {
	top_line | grep -q '^top - [0-9:]*'
}

top_line_changed() {
	top_line_is_top && [ "$(top_line)" != "$1" ]
}

for prog in tmux vim less python3 top; do
	command -v "$prog" >/dev/null || { echo "FAIL $TEST_NAME: $prog is not installed (make deps)"; exit 1; }
done

for c in bash python less vim top bash_leader other_terminal_refused; do
	case $c in
	other_terminal_refused | bash_leader) run_case "$c" "$c" ;;
	*) run_case "$c" "${c}_job" ;;
	esac
	tm kill-server 2>/dev/null
done
tm kill-server 2>/dev/null
tmux_forget
finish_tests
