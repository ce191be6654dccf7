#!/usr/bin/env bash
# t_stopped: stopped processes (issue 14, item 6), with real programs: a
# python3 parent (the dumped root, leader of its own session) and its child,
# coreutils sleep, cat or a python3 with threads, stopped by a signal. After
# restore the stopped process must be stopped (State T, every thread), with
# the same pid and parent, must not have run, and after SIGCONT must go on
# where it was and end as it would have. The python3 parent counts its
# SIGCHLDs: the restore must not send it one more.
#
#  sigstop_sleep     sleep 3 (blocked in clock_nanosleep), SIGSTOP; the
#                    parent took the stop report (waitpid WUNTRACED) before
#                    the dump and must not get another after restore; after
#                    SIGCONT sleep ends with status 0.
#  sigtstp_unreported
#                    sleep in a process group of its own, SIGTSTP, the stop
#                    not yet reported: after restore the parent's waitpid
#                    WUNTRACED reports it, with SIGTSTP, once.
#  sigttin_reported  the same with SIGTTIN, reported before the dump.
#  stopped_twice     SIGSTOP sent twice: the second one stays pending while
#                    the process is stopped (the dump used to fail with
#                    "expected syscall entry stop, got stop signal 19").
#  stopped_in_read   cat blocked reading a pipe from its parent, SIGSTOP:
#                    after SIGCONT it copies what the parent writes and ends.
#  stopped_threads   a python3 child with three running threads, SIGSTOP:
#                    every thread is stopped after restore; after SIGCONT
#                    each goes on counting and the child passes.
#  stopped_root      the dumped root itself (python3) stopped by SIGSTOP: it
#                    is stopped after restore, has not run, and passes after
#                    SIGCONT.
#  bash_parent       a bash script whose child sleep was stopped with
#                    kill -STOP: stopped after restore; after SIGCONT the
#                    script's `wait` gets sleep's status 0.
#  leave_running     --leave-running of the sigtstp_unreported tree: the
#                    child is still stopped by SIGTSTP, the stop reported
#                    once, and it ends after SIGCONT.
source "$(dirname "$0")/lib.sh"

PY=/usr/bin/python3

# The parent: forks the child of MODE, lets the harness stop it (or stops
# it itself), writes DIR/child (its pid) and DIR/ready; then waits for
# DIR/go and checks the child: still stopped, the stop reported as asked,
# and after SIGCONT the child ends as it should.
read -r -d '' PARENT <<'EOF'
import os, signal, subprocess, sys, time
d, mode, sig, report = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
token = os.urandom(8).hex()
def put(name, text):
    with open(os.path.join(d, name + '.tmp'), 'w') as f:
        f.write(text)
    os.rename(os.path.join(d, name + '.tmp'), os.path.join(d, name))
def state(pid, tid=None):
    path = '/proc/%d/task/%d/stat' % (pid, tid) if tid else '/proc/%d/stat' % pid
    with open(path) as f:
        return f.read().rsplit(')', 1)[1].split()[0]
def wait_for(cond, what, secs=10):
    end = time.time() + secs
    while not cond():
        if time.time() > end:
            put('result', 'FAIL %s' % what)
            sys.exit(1)
        time.sleep(0.01)
fails = []
def check(ok, what):
    if not ok:
        fails.append(what)
THREADS = r'''
import os, sys, threading, time
d = sys.argv[1]
counts = [0, 0, 0]
def count(i):
    while True:
        counts[i] += 1
        time.sleep(0.001)
for i in range(3):
    threading.Thread(target=count, args=(i,), daemon=True).start()
while min(counts) < 5:
    time.sleep(0.01)
open(os.path.join(d, 'threads-ready'), 'w').close()
while not os.path.exists(os.path.join(d, 'go')):
    time.sleep(0.01)
before = list(counts)
time.sleep(0.3)
sys.exit(0 if all(c > b + 10 for c, b in zip(counts, before)) else 3)
'''
chld = [0]
signal.signal(signal.SIGCHLD, lambda s, f: chld.__setitem__(0, chld[0] + 1))
if mode == 'root':
    child = None
elif mode == 'cat':
    child = subprocess.Popen(['cat'], stdin=subprocess.PIPE, stdout=subprocess.PIPE, process_group=0)
elif mode == 'threads':
    child = subprocess.Popen([sys.executable, '-c', THREADS, d], process_group=0)
    wait_for(lambda: os.path.exists(os.path.join(d, 'threads-ready')), 'threads not ready')
else:
    child = subprocess.Popen(['sleep', '3'], process_group=0)
if child:
    # Blocked in its call (sleep's clock_nanosleep, cat's read) first.
    wait_for(lambda: mode == 'threads' or state(child.pid) == 'S', 'child not asleep')
    os.kill(child.pid, getattr(signal, sig.rstrip('2')))
    wait_for(lambda: state(child.pid) == 'T', 'child not stopped')
    wait_for(lambda: chld[0] >= 1, 'no SIGCHLD for the stop')
    if sig.endswith('2'):
        os.kill(child.pid, signal.SIGSTOP)   # pending while it is stopped
    if report == 'reported':
        pid, st = os.waitpid(child.pid, os.WUNTRACED)
        check(os.WIFSTOPPED(st), 'first stop report: status %#x' % st)
    put('child', '%d' % child.pid)
    time.sleep(0.05)
chld_at_dump = chld[0]
put('token', '%d %s' % (os.getpid(), token))
put('ready', '')
while not os.path.exists(os.path.join(d, 'go')):
    time.sleep(0.01)
if child:
    time.sleep(0.1)
    check(chld[0] == chld_at_dump, '%d SIGCHLD since the dump' % (chld[0] - chld_at_dump))
    check(state(child.pid) == 'T', 'child state %s at go, want T' % state(child.pid))
    if report == 'unreported':
        pid, st = os.waitpid(child.pid, os.WUNTRACED | os.WNOHANG)
        check(pid == child.pid and os.WIFSTOPPED(st) and os.WSTOPSIG(st) == getattr(signal, sig.rstrip('2')),
              'stop report after restore: pid %d status %#x, want stopped by %s' % (pid, st, sig))
    pid, st = os.waitpid(child.pid, os.WUNTRACED | os.WNOHANG)
    check(pid == 0, 'a second stop report: pid %d status %#x' % (pid, st))
    os.kill(child.pid, signal.SIGCONT)
    if mode == 'cat':
        out, _ = child.communicate(b'hello\n', timeout=10)
        check(out == b'hello\n', 'cat wrote %r' % out)
    rc = child.wait(timeout=10)
    check(rc == 0, 'child exited %d' % rc)
put('result', 'FAIL ' + '; '.join(fails) if fails else 'PASS %s' % token)
EOF

# st_start MODE SIGNAL REPORT: the parent, leader of a new session, with
# only fds 0-2; waits until it is ready. Sets ST_DIR, ST_PID, ST_CHILD,
# ST_TOKEN.
st_start() {
	ST_DIR=$CASE_TMP/st
	mkdir -p "$ST_DIR"
	CASE_LOGS+=("$ST_DIR/out")
	( clean_exec setsid "$PY" -c "$PARENT" "$ST_DIR" "$@" ) </dev/null >"$ST_DIR/out" 2>&1 &
	ST_PID=$!
	disown "$ST_PID"
	track_pid "$ST_PID"
	if ! wait_until 15 st_ready_or_failed; then
		REASON="the python3 parent did not get ready: $(tail -n 3 "$ST_DIR/out")"
		return 1
	fi
	[ -e "$ST_DIR/ready" ] || { REASON="the python3 parent: $(cat "$ST_DIR/result")"; return 1; }
	read -r _ ST_TOKEN < "$ST_DIR/token"
	ST_CHILD=$(cat "$ST_DIR/child" 2>/dev/null)
	[ -n "$ST_CHILD" ] && track_pid "$ST_CHILD"
	return 0
}

st_ready_or_failed() {
	[ -e "$ST_DIR/ready" ] || [ -e "$ST_DIR/result" ]
}

# every_thread_stopped PID: State T in every thread.
every_thread_stopped() {
	local t st
	for t in /proc/"$1"/task/*; do
		read -r st < "$t/stat" || return 1
		st=${st##*) }
		[ "${st%% *}" = T ] || return 1
	done
}

# st_dump_restore ROOT: the tree of ROOT dumped and restored (detached).
st_dump_restore() {
	cr_dump dump "$1" "$CASE_TMP/img" || return 1
	cr_run restore restore -D "$CASE_TMP/img" --detach ||
		{ REASON="cr restore failed (exit $CR_STATUS): $(last_line "$CR_ERR")"; return 1; }
}

# The parent's tree dumped and restored; the stopped process (pid $1) must
# be stopped in every thread, its parent the same, and not traced.
st_roundtrip() {
	local stopped=$1 ppid
	ppid=$(status_field "$stopped" PPid)
	st_dump_restore "$ST_PID" || return 1
	st_check_stopped "$stopped" "$ppid"
}

# stop_dump_restore STOPPED ROOT PPID: SIGSTOP to STOPPED, the tree of ROOT
# dumped and restored, and STOPPED stopped again with parent PPID.
stop_dump_restore() {
	kill -STOP "$1"
	wait_until 5 every_thread_stopped "$1" || { REASON="pid $1 did not stop"; return 1; }
	st_dump_restore "$2" || return 1
	st_check_stopped "$1" "$3"
}

st_check_stopped() {
	local stopped=$1 ppid=$2
	wait_until 10 every_thread_stopped "$stopped" ||
		{ REASON="pid $stopped after restore: $(describe_pid "$stopped"), want every thread stopped"; return 1; }
	[ "$(status_field "$stopped" TracerPid)" = 0 ] || { REASON="pid $stopped is still traced"; return 1; }
	[ "$(status_field "$stopped" PPid)" = "$ppid" ] ||
		{ REASON="pid $stopped has parent $(status_field "$stopped" PPid), want $ppid"; return 1; }
	# Stopped, it does not run: still stopped a moment later.
	sleep 0.3
	every_thread_stopped "$stopped" || { REASON="pid $stopped ran after restore: $(describe_pid "$stopped")"; return 1; }
}

st_go_and_pass() {
	local result
	touch "$ST_DIR/go"
	wait_until 15 test -e "$ST_DIR/result" ||
		{ REASON="no result from the python3 parent: $(tail -n 3 "$ST_DIR/out")"; return 1; }
	result=$(cat "$ST_DIR/result")
	[ "$result" = "PASS $ST_TOKEN" ] || { REASON="python3 parent reports: $result"; return 1; }
	wait_until 10 pid_gone "$ST_PID" || { REASON="the parent $ST_PID did not end"; return 1; }
}

# case_child MODE SIGNAL REPORT
case_child() {
	st_start "$@" || return 1
	st_roundtrip "$ST_CHILD" || return 1
	st_go_and_pass
}

# The second SIGSTOP pends (bit 19 of ShdPnd) while the first holds.
sigstop_pending() {
	local pnd
	pnd=$(status_field "$1" ShdPnd)
	(( (16#$pnd >> 18) & 1 ))
}

stopped_twice() {
	st_start sleep SIGSTOP2 reported || return 1
	wait_until 5 sigstop_pending "$ST_CHILD" || { REASON="no SIGSTOP pending in $ST_CHILD: ShdPnd $(status_field "$ST_CHILD" ShdPnd)"; return 1; }
	st_roundtrip "$ST_CHILD" || return 1
	st_go_and_pass
}

stopped_threads() {
	st_start threads SIGSTOP reported || return 1
	has_tasks "$ST_CHILD" 4 || { REASON="the child has $(ls /proc/"$ST_CHILD"/task | wc -l) threads, want 4"; return 1; }
	st_roundtrip "$ST_CHILD" || return 1
	has_tasks "$ST_CHILD" 4 || { REASON="the restored child has $(ls /proc/"$ST_CHILD"/task | wc -l) threads"; return 1; }
	st_go_and_pass
}

stopped_root() {
	st_start root - - || return 1
	stop_dump_restore "$ST_PID" "$ST_PID" "$CR_TEST_SUBREAPER" || return 1
	touch "$ST_DIR/go"
	sleep 0.3
	[ ! -e "$ST_DIR/result" ] || { REASON="the stopped root ran: $(cat "$ST_DIR/result")"; return 1; }
	kill -CONT "$ST_PID"
	st_go_and_pass
}

bash_parent() {
	local dir=$CASE_TMP/sh pid child
	mkdir -p "$dir"
	# shellcheck disable=SC2016
	( clean_exec setsid bash -c 'sleep 3 & c=$!
		echo "$c" > "$1/child"
		wait "$c"
		echo "exit $?" > "$1/result"' bash "$dir" ) </dev/null >"$dir/out" 2>&1 &
	pid=$!
	disown "$pid"
	track_pid "$pid"
	CASE_LOGS+=("$dir/out")
	wait_until 5 test -s "$dir/child" || { REASON="bash did not start sleep"; return 1; }
	child=$(cat "$dir/child")
	track_pid "$child"
	wait_until 5 blocked_in "$child" 230 || { REASON="sleep is not in clock_nanosleep"; return 1; }
	stop_dump_restore "$child" "$pid" "$pid" || return 1
	[ ! -e "$dir/result" ] || { REASON="bash's wait returned while sleep was stopped: $(cat "$dir/result")"; return 1; }
	kill -CONT "$child"
	wait_until 10 test -e "$dir/result" || { REASON="no result from bash: $(tail -n 3 "$dir/out")"; return 1; }
	[ "$(cat "$dir/result")" = "exit 0" ] || { REASON="bash reports: $(cat "$dir/result")"; return 1; }
}

leave_running() {
	st_start sleep SIGTSTP unreported || return 1
	cr_dump dump "$ST_PID" "$CASE_TMP/img" --leave-running || return 1
	st_check_stopped "$ST_CHILD" "$ST_PID" || return 1
	st_go_and_pass
}

run_case sigstop_sleep case_child sleep SIGSTOP reported
run_case sigtstp_unreported case_child sleep SIGTSTP unreported
run_case sigttin_reported case_child sleep SIGTTIN reported
run_case stopped_twice stopped_twice
run_case stopped_in_read case_child cat SIGSTOP reported
run_case stopped_threads stopped_threads
run_case stopped_root stopped_root
run_case bash_parent bash_parent
run_case leave_running leave_running
finish_tests
