#!/usr/bin/env bash
# t_fdkinds_a: timerfds, POSIX timers, eventfds, signalfds, epolls, inotify
# watches and pidfds come back from a dump with every property the
# workloads check (see the header of each w_*.c):
#
#   control_*     the workload passes when triggered without any dump, and
#                 fails when one property is broken on purpose (sabotage_*):
#                 its checks work and can fail.
#   roundtrip_*   dump, wait a second (so that a timer whose clock ran on, or
#                 was reset, is seconds off), restore, trigger: PASS with the
#                 same pid and token.
#   leave_running_*  dump --leave-running, then trigger the original: the
#                 dump read timers, counters and event queues without
#                 consuming anything.
#   twice_*       dump, restore, dump the restored process, restore again.
#   pidfd_target_gone   the process a pidfd refers to exits between dump
#                 and restore: restore fails naming its pid, nothing is left.
#   pidfd_dead    pidfds of two reaped children (one exited with 7, one
#                 killed by SIGTERM): restored, each says its process ended,
#                 with the same wait status (w_pidfd dead); _twice too;
#                 pidfd_dead_python: python3's os.pidfd_open of a child it
#                 reaped.
source "$(dirname "$0")/lib.sh"

# Downtime between dump and restore: longer than the slack of the time checks.
DOWNTIME=1

# A process outside the dump for the pidfd workload to refer to.
start_helper() {
	sleep 600 </dev/null >/dev/null 2>&1 &
	HELPER=$!
	disown "$HELPER"
	track_pid "$HELPER"
}

pidfd_case() {
	local how=$1
	shift
	start_helper
	"$how" "$@" w_pidfd "$HELPER"
}

pidfd_target_gone() {
	local img=$CASE_TMP/img
	start_helper
	wl_start w_pidfd "$HELPER" || return 1
	cr_dump dump "$WL_PID" "$img" || return 1
	kill -KILL "$HELPER"
	wait_until 5 pid_gone "$HELPER" || { REASON="helper $HELPER did not go away"; return 1; }
	if cr_run restore restore -D "$img" --detach; then
		REASON="restore succeeded although pid $HELPER, which a pidfd refers to, is gone"
		return 1
	fi
	mentions_number "$CR_ERR" "$HELPER" ||
		{ REASON="the error does not name pid $HELPER: $(last_line "$CR_ERR")"; return 1; }
	grep -q pidfd "$CR_ERR" || { REASON="the error does not say pidfd: $(last_line "$CR_ERR")"; return 1; }
	wait_until 5 pid_gone "$WL_PID" ||
		{ REASON="pid $WL_PID is left after the failed restore: $(describe_pid "$WL_PID")"; return 1; }
}

# python3 (unmodified) holds a pidfd of a child it reaped (os.pidfd_open,
# os.waitpid): after restore the pidfd still says its process ended, with
# no pid, and waitid through it finds no child to reap.
PY_PIDFD_DEAD='
import os, random, select, sys, time
d = sys.argv[1]
token = "%d-%d" % (os.getpid(), random.randrange(1 << 30))
c = os.fork()
if c == 0:
    time.sleep(0.2)
    os._exit(7)
fd = os.pidfd_open(c)
os.waitpid(c, 0)
def pid_of():
    return [l.split()[1] for l in open("/proc/self/fdinfo/%d" % fd) if l.startswith("Pid:")][0]
open(d + "/ready", "w").write("%d %s" % (os.getpid(), token))
while not os.path.exists(d + "/go"):
    time.sleep(0.02)
bad = [] if pid_of() == "-1" else ["fdinfo says Pid " + pid_of()]
p = select.poll()
p.register(fd, select.POLLIN)
bad += [] if p.poll(0) else ["the pidfd does not say its process ended"]
try:
    os.waitid(os.P_PIDFD, fd, os.WEXITED | os.WNOHANG)
    bad.append("waitid found a child to reap")
except ChildProcessError:
    pass
open(d + "/result", "w").write("FAIL " + "; ".join(bad) if bad else "PASS " + token)
'

for w in w_timerfd w_posix_timers w_eventfd w_signalfd w_epoll w_inotify; do
	run_case "control_${w#w_}" case_control "$w"
	run_case "roundtrip_${w#w_}" case_roundtrip "$w"
done
run_case control_pidfd pidfd_case case_control
run_case roundtrip_pidfd pidfd_case case_roundtrip

run_case sabotage_timerfd_ticks case_sabotaged ticks "(fast)" w_timerfd
run_case sabotage_timerfd_abs case_sabotaged abs "(abs-rt)" w_timerfd
run_case sabotage_timerfd_rel case_sabotaged rel "(rel-MONOTONIC)" w_timerfd
run_case sabotage_timerfd_clock case_sabotaged clock "(rel-REALTIME) clockid" w_timerfd
run_case sabotage_timerfd_nonblock case_sabotaged nonblock "(rel-REALTIME) O_NONBLOCK" w_timerfd
run_case sabotage_timerfd_oneshot case_sabotaged oneshot "(expired)" w_timerfd
run_case sabotage_posix_delete case_sabotaged delete "(ids)" w_posix_timers
run_case sabotage_posix_rearm case_sabotaged rearm "(mono)" w_posix_timers
run_case sabotage_eventfd_count case_sabotaged count "(plain)" w_eventfd
run_case sabotage_signalfd_mask case_sabotaged mask "(sfd1)" w_signalfd
run_case sabotage_epoll_del case_sabotaged del "(ep1)" w_epoll
run_case sabotage_inotify_rm case_sabotaged rm "(in1)" w_inotify
run_case sabotage_pidfd_self pidfd_case case_sabotaged self "(self)"

run_case leave_running_timerfd case_leave_running w_timerfd
run_case leave_running_eventfd case_leave_running w_eventfd
run_case leave_running_inotify case_leave_running w_inotify
run_case twice_timerfd case_twice w_timerfd
run_case twice_epoll case_twice w_epoll
run_case pidfd_target_gone pidfd_target_gone
run_case control_pidfd_dead case_control w_pidfd dead
run_case pidfd_dead case_roundtrip w_pidfd dead
run_case pidfd_dead_twice case_twice w_pidfd dead
run_case pidfd_dead_python py_case "$PY_PIDFD_DEAD"
finish_tests
