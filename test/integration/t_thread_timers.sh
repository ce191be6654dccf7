#!/usr/bin/env bash
# t_thread_timers: POSIX timers that signal a thread other than the main one
# (SIGEV_THREAD_ID), timers created by other threads, and glibc's
# SIGEV_THREAD timers (issue 14, item 7).
#
#  control          w_thread_timers passes without a dump.
#  roundtrip        w_thread_timers dumped and restored: every timer keeps its
#                   id, clock, signal, value, target thread and time left;
#                   the per-thread ones signal their threads (see the
#                   workload). Before, cr dump refused it: "timer N signals
#                   thread T, not the main thread: unsupported kind".
#  twice            two dumps and restores in a row.
#  leave_running    a dump with --leave-running changes nothing.
#  sabotage_retarget
#                   the workload aims the timer of worker A at the main thread
#                   itself: it must fail saying (to_a) / (ids).
#  refused_exited_thread
#                   a timer aimed at a thread that has exited: cr dump
#                   refuses it, naming the pid and the timer's thread, and the
#                   workload runs on and passes.
#  vim              vim (Debian's, in silent Ex mode) with a search timeout
#                   running: vim times its searches with a glibc SIGEV_THREAD
#                   timer, which signals glibc's helper thread. Dumped and
#                   restored, /proc/PID/timers reads the same, and a search
#                   that backtracks for ever ends at its 300 ms timeout: the
#                   restored timer fires into the restored helper thread.
#  haproxy          haproxy (Debian's) with two threads: its watchdog arms a
#                   timer per thread on that thread's CPU clock
#                   (pthread_getcpuclockid), signalling that thread.
#                   Dumped and restored, /proc/PID/timers reads the same
#                   (ids, clock ids naming the threads, signals, targets)
#                   and it serves requests.  Before, cr dump refused it:
#                   "timer 1 runs on the CPU clock of pid T: unsupported".
source "$(dirname "$0")/lib.sh"

VIM=/usr/bin/vim.basic

# The vim script: starts its timer with a first timed search, reports ready
# with its pid and the timers it holds, waits for DIR/go, then searches with
# a 300 ms timeout a pattern that backtracks for ever on its text.
read -r -d '' VIMSCRIPT <<'EOF'
let s:d = $ST_DIR
call setline(1, repeat([repeat('a', 60)], 50))
let s:pat = '\%#=1\v(a+)+b'
call search(s:pat, 'n', 0, 100)
call writefile([getpid()], s:d . '/pid')
call writefile([], s:d . '/ready')
while !filereadable(s:d . '/go')
  sleep 20m
endwhile
let s:t0 = reltime()
let s:r = search(s:pat, 'n', 0, 300)
let s:ms = float2nr(reltimefloat(reltime(s:t0)) * 1000)
call writefile(['done ' . s:r . ' ' . s:ms], s:d . '/result')
qa!
EOF

vim_start() {
	ST_DIR=$CASE_TMP/vim
	mkdir -p "$ST_DIR"
	printf '%s\n' "$VIMSCRIPT" > "$ST_DIR/script.vim"
	CASE_LOGS+=("$ST_DIR/out")
	( export ST_DIR; cd "$ST_DIR" && clean_exec setsid "$VIM" -Es -N -n -u NONE -i NONE -S "$ST_DIR/script.vim" ) \
		</dev/null >"$ST_DIR/out" 2>&1 &
	VIM_PID=$!
	disown "$VIM_PID"
	track_pid "$VIM_PID"
	wait_until 15 test -e "$ST_DIR/ready" || { REASON="vim did not get ready: $(tail -n 3 "$ST_DIR/out")"; return 1; }
	[ "$(cat "$ST_DIR/pid")" = "$VIM_PID" ] || { REASON="vim reports pid $(cat "$ST_DIR/pid"), not $VIM_PID"; return 1; }
}

# A timer of vim's signals a thread that is not its main one.
vim_timer_on_helper() {
	local tid
	tid=$(awk '/^notify:/ { split($2, a, "."); print a[2] }' /proc/"$VIM_PID"/timers | head -n 1)
	[ -n "$tid" ] && [ "$tid" != "$VIM_PID" ] && [ -e /proc/"$VIM_PID"/task/"$tid" ]
}

vim_case() {
	local img=$CASE_TMP/img before after result
	[ -x "$VIM" ] || { REASON="$VIM is not installed (apt package vim)"; return 1; }
	vim_start || return 1
	vim_timer_on_helper || { REASON="vim holds no timer aimed at a helper thread: $(cat /proc/"$VIM_PID"/timers)"; return 1; }
	before=$(cat /proc/"$VIM_PID"/timers)
	cr_dump dump "$VIM_PID" "$img" || return 1
	cr_run restore restore -D "$img" --detach ||
		{ REASON="cr restore failed (exit $CR_STATUS): $(last_line "$CR_ERR")"; return 1; }
	wait_until 10 running_free "$VIM_PID" "$VIM" || { REASON="restored vim: $(describe_pid "$VIM_PID")"; return 1; }
	after=$(cat /proc/"$VIM_PID"/timers)
	[ "$before" = "$after" ] || { REASON="vim's timers were [$before], now [$after]"; return 1; }
	touch "$ST_DIR/go"
	wait_until 20 test -e "$ST_DIR/result" ||
		{ REASON="vim's timed search did not end (its timer did not fire?): $(describe_pid "$VIM_PID")"; return 1; }
	result=$(cat "$ST_DIR/result")
	[[ $result =~ ^done\ 0\ ([0-9]+)$ ]] && [ "${BASH_REMATCH[1]}" -ge 250 ] && [ "${BASH_REMATCH[1]}" -lt 5000 ] ||
		{ REASON="vim's search with a 300 ms timeout: $result"; return 1; }
	wait_until 10 pid_gone "$VIM_PID" || { REASON="vim did not quit"; return 1; }
}

haproxy_case() {
	local dir=$CASE_TMP/hap img=$CASE_TMP/img before after n
	haproxy_start "$dir" || return 1
	before=$(cat /proc/"$WL_PID"/timers)
	n=$(grep -c '^ClockID: -' <<<"$before")
	[ "$n" -ge 2 ] || { REASON="haproxy holds $n timers on CPU clocks: [$before]"; return 1; }
	cr_dump dump "$WL_PID" "$img" || return 1
	cr_restore_detached restore "$img" || return 1
	after=$(cat /proc/"$WL_PID"/timers)
	[ "$before" = "$after" ] || { REASON="haproxy's timers were [$before], now [$after]"; return 1; }
	[ "$(haproxy_get "$dir")" = direct ] || { REASON="haproxy does not answer after restore"; return 1; }
	haproxy_cli "$dir" "show info" | grep -qx "Pid: $WL_PID" || { REASON="haproxy's admin socket after restore"; return 1; }
}

refused_exited_thread() {
	wl_start w_thread_timers orphan || return 1
	expect_refused_then_pass "$WL_PID" "timer" "no thread of the process"
}

run_case control case_control w_thread_timers
run_case roundtrip case_roundtrip w_thread_timers
run_case twice case_twice w_thread_timers
run_case leave_running case_leave_running w_thread_timers
run_case sabotage_retarget case_sabotaged retarget "(to_a)" w_thread_timers
run_case refused_exited_thread refused_exited_thread
run_case vim vim_case
run_case haproxy haproxy_case
finish_tests
