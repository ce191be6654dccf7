#!/usr/bin/env bash
# t_pty: pseudo-terminal pairs whose master the tree holds, with real
# programs, and the terminals cr refuses at dump.
#   script_shell          util-linux `script` running an interactive bash
#                         (input through a FIFO, output to a file): after
#                         dump and restore the shell keeps its variable, its
#                         /dev/pts/N, the window size set with stty, and
#                         answers; with `cat` as its foreground job, dumped
#                         again, the job still has the terminal (typed text
#                         is read by cat, ^D ends it)
#   tmux_server           a tmux server (tmux -L, not attached) with a pane
#                         running bash, dumped and restored: capture-pane
#                         shows the old screen, send-keys reaches a shell
#                         that kept its variable
#   tmux_vim              the same with vim in the pane holding an unsaved
#                         buffer (vim is the pane's foreground job): :wq
#                         after restore writes it
#   pair_state            w_pty: a pair's termios, window size, packet mode,
#                         O_NONBLOCK and pts number, data both ways, and a
#                         locked pair still locked (control and sabotaged
#                         runs show the checks can fail)
#   pair_state (pair c)   w_pty's canonical pair with data queued both ways
#                         (\r, ^C, a line not yet ended): the same bytes and
#                         lines after restore, nothing echoed again; pair d
#                         (canonical, empty) keeps its termios
#   pair_data_leave_running  the same left running: read exactly once
#   pair_data_refused     refused later in the dump (a packet-mode master
#                         with data): pair c's data is still all there
#   tmux_unread           a tmux server stopped (SIGSTOP) while its pane's
#                         shell prints: the output waits unread in the
#                         master, is dumped and restored, and the server
#                         continued shows it in the pane
#   script_typeahead      a line and a partial one typed into `script` while
#                         its shell runs sleep: dumped and restored, cat run
#                         after it reads them once (no second echo)
#   other_pts_refused     a process holding a pts it opened itself whose
#                         master is outside the tree, not its controlling
#                         terminal: refused by name
#   slave_of_tree_refused the shell inside `script` dumped alone: its
#                         controlling terminal, refused without --shell-job
#   script_eof            `script -c CMD` with its input at end-of-file (as
#                         in a batch job): script queues a ^D for CMD, which
#                         counts until told to read its input; dumped and
#                         restored, CMD's count goes on and its read finds
#                         the end-of-file (and the same left running)
#   script_leave_running  `script` dumped with --leave-running, and
#   script_refused        its dump refused (its input FIFO is open outside
#                         the tree too): script runs on, its shell answers
#                         (cr's stop of the shell sent script a SIGCHLD, on
#                         which script stops itself, for good, if it is left
#                         queued)
source "$(dirname "$0")/lib.sh"

tmux_private pty

# The only child of PID.
child_of() {
	cat /proc/"$1"/task/*/children 2>/dev/null | tr -d ' '
}

# script -c 'bash -i', its input a FIFO only it holds, its output a file:
# SCRIPT_PID, SHELL_PID, OUT. script runs its command with $SHELL -c, and a
# shell other than bash (dash, where CI leaves SHELL unset) forks for it:
# SHELL is set so that bash is script's own child.
start_script() {
	OUT=$CASE_TMP/out
	mkfifo "$CASE_TMP/in"
	( export SHELL=/bin/bash; clean_exec setsid script -q -c 'exec bash --norc --noprofile -i' /dev/null ) <>"$CASE_TMP/in" >"$OUT" 2>&1 &
	SCRIPT_PID=$!
	disown "$SCRIPT_PID"
	track_pid "$SCRIPT_PID"
	wait_until 10 script_has_shell || {
		REASON="script did not start its shell: script $(describe_pid "$SCRIPT_PID"), its child $(describe_pid "$(child_of "$SCRIPT_PID")"), output '$(tail -c 200 "$OUT" | tr -d '\r' | tr '\n' '|')'"
		return 1
	}
	SHELL_PID=$(child_of "$SCRIPT_PID")
	track_pid "$SHELL_PID"
	CASE_LOGS+=("$OUT")
}

script_has_shell() {
	local c
	c=$(child_of "$SCRIPT_PID")
	[ -n "$c" ] && [ "$(readlink /proc/"$c"/exe)" = /usr/bin/bash ]
}

# Types into script's input (bounded: a dead script would block the open).
type_in() {
	timeout 5 bash -c 'printf "%s" "$1" > "$2"' _ "$1" "$CASE_TMP/in" ||
		{ REASON="cannot type into script (gone?): $(describe_pid "$SCRIPT_PID")"; return 1; }
}

out_has() {
	tr -d '\r' < "$OUT" | grep -qF -- "$1"
}

wait_out() {
	wait_until 10 out_has "$1" && return 0
	REASON="script's output never showed '$1': $(tail -c 200 "$OUT" | tr -d '\r' | tr '\n' '|')"
	return 1
}

# The shell under script answers on its terminal.
script_shell_answers() {
	local token=tok$RANDOM$RANDOM
	type_in "echo \"ans:\$((6*7)):$token\""$'\n' || return 1
	wait_out "ans:42:$token"
}

pts_of() {
	readlink /proc/"$1"/fd/0
}

# dump_restore PID: the tree of PID dumped (and gone), then restored
# detached, PID running free again as EXE.
dump_restore() {
	local pid=$1 exe=$2 img=$CASE_TMP/img$((++DUMPS))
	cr_dump "dump$DUMPS" "$pid" "$img" || return 1
	cr_run "restore$DUMPS" restore -D "$img" --detach ||
		{ REASON="cr restore failed (exit $CR_STATUS): $(last_line "$CR_ERR")"; return 1; }
	wait_until 10 running_free "$pid" "$exe" || { REASON="restored pid $pid: $(describe_pid "$pid")"; return 1; }
}
DUMPS=0

script_shell() {
	local token=tok$RANDOM$RANDOM pts job
	start_script || return 1
	type_in "FOO=$token; stty cols 91 rows 33; echo ready"$'\n' || return 1
	wait_out "ready" || return 1
	pts=$(pts_of "$SHELL_PID")
	dump_restore "$SCRIPT_PID" /usr/bin/script || return 1
	running_free "$SHELL_PID" /usr/bin/bash || { REASON="the shell: $(describe_pid "$SHELL_PID")"; return 1; }
	type_in 'echo "got:$FOO:$$:$(tty):$(stty size)"'$'\n' || return 1
	wait_out "got:$token:$SHELL_PID:$pts:33 91" || return 1
	# cat in the foreground, dumped with it.
	type_in $'cat\n' || return 1
	wait_until 10 shell_has_fg_job || { REASON="cat did not start in the foreground"; return 1; }
	job=$(child_of "$SHELL_PID")
	dump_restore "$SCRIPT_PID" /usr/bin/script || return 1
	[ "$(stat_field "$job" 8)" = "$job" ] || { REASON="after restore the terminal's foreground group is $(stat_field "$job" 8), not cat's ($job)"; return 1; }
	type_in "typed-$token"$'\n' || return 1
	wait_until 10 typed_twice "typed-$token" || { REASON="cat did not read and echo the typed line: $(tail -c 200 "$OUT" | tr -d '\r' | tr '\n' '|')"; return 1; }
	type_in $'\x04' || return 1
	wait_until 5 pid_gone "$job" || { REASON="^D did not end cat: $(describe_pid "$job")"; return 1; }
	type_in 'echo "after:${FOO}x"'$'\n' || return 1
	wait_out "after:${token}x"
}

# The terminal's echo and cat's copy.
typed_twice() {
	[ "$(tr -d '\r' < "$OUT" | grep -cF -- "$1")" -ge 2 ]
}

shell_has_fg_job() {
	local c
	c=$(child_of "$SHELL_PID")
	[ -n "$c" ] && [ "$(readlink /proc/"$c"/exe)" = "$(readlink -f /usr/bin/cat)" ] && [ "$(stat_field "$c" 8)" = "$c" ]
}

start_tmux() {
	tm new-session -d -s s -x 80 -y 24 "bash --norc --noprofile" || { REASON="tmux new-session failed"; return 1; }
	SERVER=$(tm display-message -p '#{pid}')
	TMUX_EXE=$(readlink /proc/"$SERVER"/exe)
	track_pid "$SERVER"
	PANE_TTY=$(tm display-message -p -t s '#{pane_tty}')
	PANE_PID=$(tm display-message -p -t s '#{pane_pid}')
	track_pid "$PANE_PID"
	wait_until 10 tmux_shows 'bash' || { REASON="no shell prompt in the pane"; return 1; }
}

tmux_shows() {
	tm capture-pane -p -t s 2>/dev/null | grep -qF -- "$1"
}

wait_pane() {
	wait_until 10 tmux_shows "$1" && return 0
	REASON="the pane never showed '$1': $(tm capture-pane -p -t s 2>&1 | grep -v '^$' | tail -n 4 | tr '\n' '|')"
	return 1
}

tmux_server() {
	local token=tok$RANDOM$RANDOM
	start_tmux || return 1
	tm send-keys -t s "FOO=$token; echo \"marker-\$((40+2))\"" Enter
	wait_pane "marker-42" || return 1
	dump_restore "$SERVER" "$TMUX_EXE" || return 1
	wait_pane "marker-42" || { REASON="the restored pane lost its screen: $REASON"; return 1; }
	tm send-keys -t s 'echo "got:$FOO:$$:$(tty)"' Enter
	wait_pane "got:$token:$PANE_PID:$PANE_TTY"
}

tmux_vim() {
	local token=unsaved$RANDOM$RANDOM file=$CASE_TMP/edited vim
	vim=$(readlink -f /usr/bin/vim)
	start_tmux || return 1
	tm send-keys -t s "vim -u NONE -i NONE -N -n $file" Enter
	wait_until 10 pane_runs "$vim" || { REASON="vim did not start in the pane"; return 1; }
	tm send-keys -t s "i$token" Escape
	wait_pane "$token" || return 1
	dump_restore "$SERVER" "$TMUX_EXE" || return 1
	wait_pane "$token" || { REASON="the restored pane does not show vim's buffer: $REASON"; return 1; }
	tm send-keys -t s ':wq' Enter
	wait_until 10 test -s "$file" || { REASON="vim wrote no $file after :wq"; return 1; }
	[ "$(cat "$file")" = "$token" ] || { REASON="$file holds '$(cat "$file")', not '$token'"; return 1; }
	# vim flushes the terminal's input as it leaves (TCSAFLUSH): type only
	# once the shell has the terminal again
	wait_until 10 pane_idle || { REASON="vim did not exit after :wq"; return 1; }
	tm send-keys -t s 'echo "back:$$"' Enter
	wait_pane "back:$PANE_PID"
}

# Output the tmux server has not read (it is stopped) comes back.
tmux_unread() {
	local token=tok$RANDOM$RANDOM img=$CASE_TMP/img
	start_tmux || return 1
	tm send-keys -t s "sleep 2; echo \"late-\$((40+2))-$token\"" Enter
	wait_pane "sleep 2; echo" || return 1
	kill -STOP "$SERVER"
	pane_runs "$(readlink -f /usr/bin/sleep)" || { kill -CONT "$SERVER"; REASON="sleep was not running when tmux was stopped"; return 1; }
	wait_until 10 pane_idle || { kill -CONT "$SERVER"; REASON="the pane's shell did not print"; return 1; }
	cr_dump dump "$SERVER" "$img" || { kill -CONT "$SERVER"; return 1; }
	cr_run restore restore -D "$img" --detach ||
		{ REASON="cr restore failed (exit $CR_STATUS): $(last_line "$CR_ERR")"; return 1; }
	kill -CONT "$SERVER"
	wait_until 10 running_free "$SERVER" "$TMUX_EXE" || { REASON="restored tmux: $(describe_pid "$SERVER")"; return 1; }
	wait_pane "late-42-$token" || return 1
	tm send-keys -t s 'echo "back:$$"' Enter
	wait_pane "back:$PANE_PID"
}

# The pane's shell has no child (its command line done).
pane_idle() {
	[ -z "$(child_of "$PANE_PID")" ]
}

pane_runs() {
	local c
	c=$(child_of "$PANE_PID")
	[ -n "$c" ] && [ "$(readlink /proc/"$c"/exe)" = "$1" ] && [ "$(stat_field "$c" 8)" = "$c" ]
}

# Typed while the shell runs sleep (then cat): queued on the slave, unread,
# a whole line and one not ended, across a dump and restore.
script_typeahead() {
	local token=q$RANDOM$RANDOM sleeper job
	start_script || return 1
	script_shell_answers || return 1
	type_in $'sleep 1000; cat\n' || return 1
	wait_until 10 shell_has_sleep || { REASON="the shell did not start sleep"; return 1; }
	type_in "line-$token"$'\n'"part-$token" || return 1
	wait_until 5 typed_once "part-$token" || { REASON="the typed text was not echoed"; return 1; }
	sleeper=$(child_of "$SHELL_PID")
	dump_restore "$SCRIPT_PID" /usr/bin/script || return 1
	kill "$sleeper"
	wait_until 10 shell_has_fg_job || { REASON="cat did not start after sleep"; return 1; }
	wait_until 10 typed_twice "line-$token" || { REASON="cat did not read the queued line: $(tail -c 300 "$OUT" | tr -d '\r' | tr '\n' '|')"; return 1; }
	sleep 0.5
	[ "$(tr -d '\r' < "$OUT" | grep -cF -- "line-$token")" = 2 ] || { REASON="the queued line shows $(tr -d '\r' < "$OUT" | grep -cF -- "line-$token") times, not 2 (echo, cat)"; return 1; }
	typed_once "part-$token" || { REASON="the partial line was read before it ended: $(tail -c 300 "$OUT" | tr -d '\r' | tr '\n' '|')"; return 1; }
	job=$(child_of "$SHELL_PID")
	type_in $'\n' || return 1
	wait_until 10 typed_twice "part-$token" || { REASON="cat did not read the ended partial line: $(tail -c 300 "$OUT" | tr -d '\r' | tr '\n' '|')"; return 1; }
	type_in $'\x04' || return 1
	wait_until 5 pid_gone "$job" || { REASON="^D did not end cat"; return 1; }
	script_shell_answers
}

typed_once() {
	[ "$(tr -d '\r' < "$OUT" | grep -cF -- "$1")" = 1 ]
}

shell_has_sleep() {
	local c
	c=$(child_of "$SHELL_PID")
	[ -n "$c" ] && [ "$(readlink /proc/"$c"/exe)" = "$(readlink -f /usr/bin/sleep)" ]
}

# Refused at pair a, after pair c's data was read and put back: the
# workload still finds it all.
pair_data_refused() {
	wl_start w_pty refuse || return 1
	expect_refused_then_pass "$WL_PID" "packet mode"
}

# The shell inside script, dumped alone: its terminal's master is outside
# the tree, and the terminal is its controlling one: without --shell-job,
# refused asking for it.
slave_of_tree_refused() {
	start_script || return 1
	cr_run dump dump "$SHELL_PID" -D "$CASE_TMP/img"
	check_refused "$SHELL_PID" "$CASE_TMP/img" "--shell-job" || return 1
	running_free "$SHELL_PID" /usr/bin/bash || { REASON="the shell after the refused dump: $(describe_pid "$SHELL_PID")"; return 1; }
}

# script -c CMD </dev/null: CMD counts in a file until DIR/go, then reads
# its terminal, where script queued a ^D when its input ended.
script_eof() {
	local d=$CASE_TMP/eof n
	mkdir -p "$d"
	( export SHELL=/bin/bash; cd "$d" && clean_exec setsid script -q -c 'i=0; while [ ! -e go ]; do i=$((i+1)); echo $i > count; sleep 0.05; done; if read -r x; then echo "line $x $i"; else echo "eof $i"; fi > res' /dev/null ) </dev/null >"$d/out" 2>&1 &
	SCRIPT_PID=$!
	disown "$SCRIPT_PID"
	track_pid "$SCRIPT_PID"
	CASE_LOGS+=("$d/out")
	wait_until 10 test -s "$d/count" || { REASON="script's command does not count: $(describe_pid "$SCRIPT_PID")"; return 1; }
	sleep 0.5
	if [ "${1:-}" = leave ]; then
		cr_dump dump "$SCRIPT_PID" "$CASE_TMP/img" --leave-running || return 1
	else
		dump_restore "$SCRIPT_PID" /usr/bin/script || return 1
	fi
	n=$(cat "$d/count")
	touch "$d/go"
	wait_until 10 test -s "$d/res" || { REASON="the command's read of its terminal never ended (the ^D is lost): script $(describe_pid "$SCRIPT_PID")"; return 1; }
	read -r what count < "$d/res"
	[ "$what" = eof ] || { REASON="the command read: $(cat "$d/res")"; return 1; }
	[ "$count" -ge "$n" ] && [ "$n" -ge 5 ] || { REASON="the count restarted: $count after $n"; return 1; }
}

# script, let go after a dump (-R) or a refusal, runs on: not stopped by
# the SIGCHLD of cr's stop of its shell.
script_runs_on() {
	wait_until 5 running_free "$SCRIPT_PID" /usr/bin/script ||
		{ REASON="script after the dump: $(describe_pid "$SCRIPT_PID")"; return 1; }
	sleep 0.3
	running_free "$SCRIPT_PID" /usr/bin/script || { REASON="script after the dump: $(describe_pid "$SCRIPT_PID")"; return 1; }
	script_shell_answers
}

script_leave_running() {
	start_script || return 1
	script_shell_answers || return 1
	cr_dump dump "$SCRIPT_PID" "$CASE_TMP/img" --leave-running || return 1
	script_runs_on
}

script_refused() {
	local holder
	start_script || return 1
	script_shell_answers || return 1
	( clean_exec sleep 1000 ) <>"$CASE_TMP/in" >/dev/null 2>&1 &
	holder=$!
	disown "$holder"
	track_pid "$holder"
	wait_until 5 running_free "$holder" "$(readlink -f /usr/bin/sleep)" || { REASON="sleep did not start"; return 1; }
	expect_refused "$SCRIPT_PID" "$CASE_TMP/img" "unsupported" || return 1
	script_runs_on
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
	disown "$holder"
	track_pid "$holder"
	wait_until 5 running_free "$holder" "$(readlink -f /usr/bin/sleep)" || { REASON="sleep did not start"; return 1; }
	for opt in "" --shell-job; do
		cr_run dump dump "$holder" -D "$CASE_TMP/img" $opt
		check_refused "$holder" "$CASE_TMP/img" "$pts" "is not the shell job's terminal" "it has none" || return 1
		running_free "$holder" "$(readlink -f /usr/bin/sleep)" || { REASON="after the refused dump: $(describe_pid "$holder")"; return 1; }
	done
	script_shell_answers
}

for prog in tmux script vim; do
	command -v "$prog" >/dev/null || { echo "FAIL $TEST_NAME: $prog is not installed (make deps)"; exit 1; }
done

run_case pair_state_control case_control w_pty
run_case pair_state_sabotaged_winsize case_sabotaged winsize "(a) window 5x5" w_pty
run_case pair_state_sabotaged_lock case_sabotaged lock "(b) the slave's lock is 0" w_pty
run_case pair_state case_roundtrip w_pty
run_case pair_state_twice case_twice w_pty
run_case script_shell script_shell
run_case tmux_server tmux_server
tm kill-server 2>/dev/null
run_case tmux_vim tmux_vim
tm kill-server 2>/dev/null
run_case tmux_unread tmux_unread
tm kill-server 2>/dev/null
run_case pair_data_leave_running case_leave_running w_pty
run_case pair_data_refused pair_data_refused
run_case script_typeahead script_typeahead
run_case slave_of_tree_refused slave_of_tree_refused
run_case other_pts_refused other_pts_refused
run_case script_leave_running script_leave_running
run_case script_eof script_eof
run_case script_eof_leave_running script_eof leave
run_case script_refused script_refused
tm kill-server 2>/dev/null
tmux_forget
finish_tests
