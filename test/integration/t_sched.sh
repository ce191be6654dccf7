#!/usr/bin/env bash
# t_sched: scheduling and the prctl bits a program sets on itself.
#
# w_sched has three threads, each with its own policy (SCHED_BATCH,
# SCHED_FIFO 5 with SCHED_RESET_ON_FORK, SCHED_IDLE), nice, CPU affinity,
# I/O priority and timer slack, in a process with oom_score_adj 300, child
# subreaper on, THP disabled and dumpable 0. After a restore each thread
# checks its own and the process its own (control and sabotage runs prove
# the checks pass on the real thing and fail when a property is lost), and
# the test compares every thread with /proc, taskset and ionice. The same
# with memory-deny-write-execute set (cr's own dump then has no writable
# and executable page to run its calls from, and the restore sets it last).
#
# Real programs: `chrt -b 0 nice -n 13 ionice -c 3 taskset -c 1 sleep 1000`
# with oom_score_adj 300, and `chrt -f 5 ionice -c 1 -n 3 taskset -c 0
# sleep 1000`, checked from outside after restore; and a SCHED_FIFO, nice -5
# sleep that root made uid 1000 (the restore needs CAP_SYS_NICE for them
# and must set them before it drops the credentials).
#
# python3 with rdtsc made to fault (PR_SET_TSC) in two of its three
# threads: after restore each thread reads its own mode, and where the host
# traps rdtsc, only the denied thread dies of reading the clock (py_tsc).
#
# Refused, naming the process, with the process left running unharmed:
# an oom_score_adj below what a child of cr may set (lowering it needs
# CAP_SYS_RESOURCE, which these hosts lack even for root: the kernel
# refuses the test too, so cr is shown such a process through a bind mount
# over /proc/PID/oom_score_adj in a private mount namespace, while its own
# trial in a child meets the kernel's real floor); a real-time thread when
# cr runs without CAP_SYS_NICE. Refused at restore, before any process
# exists: an affinity to a CPU outside the restorer's cpuset.
source "$(dirname "$0")/lib.sh"

SLEEP=$(readlink -f "$(command -v sleep)")

# ---- looking from outside -------------------------------------------------------

# ionice's words for an ioprio value (class << 13 | level).
ionice_text() {
	local class=$(($1 >> 13)) level=$(($1 & 7))
	case $class in
	0) echo "none: prio 0" ;;
	1) echo "realtime: prio $level" ;;
	2) echo "best-effort: prio $level" ;;
	3) echo "idle" ;;
	esac
}

# thread_is PID TID POLICY RTPRIO NICE CPULIST IOPRIO_TEXT: /proc, taskset
# and ionice agree with what the thread was given.
thread_is() {
	local pid=$1 tid=$2 policy=$3 rtprio=$4 nice=$5 cpus=$6 io=$7 got
	got="policy $(stat_field "$pid/task/$tid" 41) rtprio $(stat_field "$pid/task/$tid" 40) nice $(stat_field "$pid/task/$tid" 19)"
	got="$got cpus $(taskset -cp "$tid" 2>&1 | sed 's/.*: //') io $(ionice -p "$tid" 2>&1)"
	local want="policy $policy rtprio $rtprio nice $nice cpus $cpus io $io"
	[ "$got" = "$want" ] || { REASON="pid $pid thread $tid: $got; want $want"; return 1; }
}

process_is() {
	local pid=$1 oom=$2 thp=$3 got
	got="oom_score_adj $(cat /proc/"$pid"/oom_score_adj) THP_enabled $(status_field "$pid" THP_enabled)"
	[ "$got" = "oom_score_adj $oom THP_enabled $thp" ] ||
		{ REASON="pid $pid: $got; want oom_score_adj $oom THP_enabled $thp"; return 1; }
}

# w_sched's threads and process as it listed them, from outside (with THP
# disabled only where not advised, THP_enabled still says 1).
wl_sched_from_outside() {
	local tid policy prio nice cpus ioprio
	while read -r tid policy prio nice cpus ioprio; do
		thread_is "$WL_PID" "$tid" "$policy" "$prio" "$nice" "$cpus" "$(ionice_text "$ioprio")" || return 1
	done < "$WL_DIR/threads"
	process_is "$WL_PID" $(cat "$WL_DIR/process")
}

# ---- w_sched --------------------------------------------------------------------

roundtrip() {
	local img=$CASE_TMP/img
	wl_start w_sched || return 1
	wl_sched_from_outside || { REASON="before the dump: $REASON"; return 1; }
	cr_dump dump "$WL_PID" "$img" || return 1
	cr_restore_detached restore "$img" || return 1
	wl_sched_from_outside || return 1
	wl_trigger || return 1
	wl_expect_pass || return 1
	wl_await_exit
}

# ---- real programs ----------------------------------------------------------------

# prog_start CMD...: starts CMD as a session leader, with only fds 0-2
# (whatever else the shell holds would be dumped with it); once it has
# become sleep (through every exec), WL_PID and WL_EXE name it for cr_dump
# and cr_restore_detached.
prog_start() {
	(
		for fd in /proc/$BASHPID/fd/*; do
			fd=${fd##*/}
			[ "$fd" -gt 2 ] && eval "exec $fd>&-"
		done
		exec setsid "$@"
	) </dev/null >/dev/null 2>&1 &
	WL_PID=$!
	disown "$WL_PID"
	track_pid "$WL_PID"
	WL_NAME=sleep WL_EXE=$SLEEP
	wait_until 5 running_free "$WL_PID" "$SLEEP" || { REASON="$* did not start: $(describe_pid "$WL_PID")"; return 1; }
}

# Sleeping through the restore: the same process, not a new one.
still_sleeping() {
	local state
	state=$(status_field "$WL_PID" State)
	[ "$state" = S ] || { REASON="restored sleep is in state $state"; return 1; }
}

real_batch_idle() {
	local img=$CASE_TMP/img
	prog_start chrt -b 0 nice -n 13 ionice -c 3 taskset -c 1 sleep 1000 || return 1
	echo 300 > /proc/"$WL_PID"/oom_score_adj
	thread_is "$WL_PID" "$WL_PID" 3 0 13 1 idle || { REASON="before the dump: $REASON"; return 1; }
	cr_dump dump "$WL_PID" "$img" || return 1
	cr_restore_detached restore "$img" || return 1
	thread_is "$WL_PID" "$WL_PID" 3 0 13 1 idle || return 1
	process_is "$WL_PID" 300 1 || return 1
	chrt -p "$WL_PID" | grep -q "policy: SCHED_BATCH" || { REASON="chrt -p: $(chrt -p "$WL_PID" | tr '\n' ' ')"; return 1; }
	still_sleeping
}

# python3 makes rdtsc fault (PR_SET_TSC, PR_TSC_SIGSEGV, as rr does to its
# tracees) in its main thread and in a second thread, and not in a third;
# after restore each thread reads its own mode back and, where this host
# traps rdtsc, the allowed thread reads the clock and the denied one dies
# of it.  A thread that cannot read the clock must never wait with a
# timeout (the vDSO clock reads the TSC): each thread waits for commands
# in a blocking read of a FIFO of its own, and the test sends them one at
# a time, so that no thread ever waits for the GIL; it answers with os
# calls only (a text-mode open() reads the clock).
PY_TSC='
import ctypes, os, sys, threading, time
c = ctypes.CDLL("libc.so.6", use_errno=True)
d = sys.argv[1]
def mode():
    m = ctypes.c_int()
    return m.value if c.prctl(25, ctypes.byref(m), 0, 0, 0) == 0 else -1
def serve(name):
    fd = os.open(d + "/" + name, os.O_RDWR)
    while True:
        cmd = os.read(fd, 16).decode().strip()
        if cmd == "deny":
            c.prctl(26, 2, 0, 0, 0)
        if cmd == "clock":
            time.monotonic()
        out = os.open(d + "/" + name + ".tmp", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.write(out, ("%s %d" % (cmd, mode())).encode())
        os.close(out)
        os.rename(d + "/" + name + ".tmp", d + "/" + name + ".out")
for n in ("main", "deny", "allow"):
    os.mkfifo(d + "/" + n)
for n in ("deny", "allow"):
    threading.Thread(target=serve, args=(n,), daemon=True).start()
open(d + "/ready", "w").close()
serve("main")
'

# tsc_ask THREAD COMMAND: python3's answer (COMMAND and the thread's mode).
tsc_ask() {
	rm -f "$PY_DIR/$1.out"
	timeout 5 sh -c 'echo "$1" > "$2"' _ "$2" "$PY_DIR/$1" &&   # no reader left: python3 is gone
		wait_until 5 test -s "$PY_DIR/$1.out" && cat "$PY_DIR/$1.out"
}

# tsc_modes: each thread's mode, asked one at a time.
tsc_modes() {
	echo "main $(tsc_ask main mode), deny $(tsc_ask deny mode), allow $(tsc_ask allow mode)"
}

# This host traps rdtsc once it is denied (the vDSO clock reads it).
tsc_traps() {
	python3 -c 'import ctypes, time
ctypes.CDLL("libc.so.6").prctl(26, 2, 0, 0, 0)
time.monotonic()' 2>/dev/null
	[ $? = 139 ]
}

# PR_TSC_ENABLE 1, PR_TSC_SIGSEGV 2.
py_tsc() {
	local img=$CASE_TMP/img want="main mode 2, deny mode 2, allow mode 1" got
	py_start "$PY_TSC" ready || return 1
	[ "$(tsc_ask main deny) $(tsc_ask deny deny)" = "deny 2 deny 2" ] ||
		{ REASON="python3 did not deny rdtsc: $(tail -n 3 "$PY_DIR/out")"; return 1; }
	got=$(tsc_modes)
	[ "$got" = "$want" ] || { REASON="before the dump: $got"; return 1; }
	cr_dump dump "$PY_PID" "$img" || return 1
	cr_run restore restore -D "$img" --detach ||
		{ REASON="cr restore failed (exit $CR_STATUS): $(last_line "$CR_ERR")"; return 1; }
	got=$(tsc_modes)
	[ "$got" = "$want" ] || { REASON="after restore: $got (want $want): $(tail -n 3 "$PY_DIR/out")"; return 1; }
	tsc_traps || return 0
	[ "$(tsc_ask allow clock)" = "clock 1" ] || { REASON="the allowed thread cannot read the clock"; return 1; }
	tsc_ask deny clock >/dev/null
	wait_until 5 pid_gone "$PY_PID" ||
		{ REASON="the denied thread read the clock: $(describe_pid "$PY_PID")"; return 1; }
}

real_fifo() {
	local img=$CASE_TMP/img
	prog_start chrt -f 5 ionice -c 1 -n 3 taskset -c 0 sleep 1000 || return 1
	cr_dump dump "$WL_PID" "$img" || return 1
	cr_restore_detached restore "$img" || return 1
	thread_is "$WL_PID" "$WL_PID" 1 5 0 0 "realtime: prio 3" || return 1
	chrt -p "$WL_PID" | tr '\n' ' ' | grep -q "policy: SCHED_FIFO .*priority: 5" ||
		{ REASON="chrt -p: $(chrt -p "$WL_PID" | tr '\n' ' ')"; return 1; }
	still_sleeping
}

# Set by root before it became uid 1000: the restore must set them while it
# still holds CAP_SYS_NICE, before the credentials are dropped.
real_fifo_unprivileged() {
	local img=$CASE_TMP/img
	prog_start nice -n -5 chrt -f 7 setpriv --reuid 1000 --regid 1000 --clear-groups sleep 1000 || return 1
	cr_dump dump "$WL_PID" "$img" || return 1
	cr_restore_detached restore "$img" || return 1
	[ "$(status_field "$WL_PID" Uid)" = 1000 ] || { REASON="restored with uid $(status_field "$WL_PID" Uid)"; return 1; }
	thread_is "$WL_PID" "$WL_PID" 1 7 -5 0,1 "none: prio 0" || return 1
	# Still dumpable (sleep's exec made it so), which the restore's change
	# of credentials resets: /proc shows a process that is not as root's.
	[ "$(stat -c %u /proc/"$WL_PID"/status)" = 1000 ] ||
		{ REASON="restored not dumpable: /proc/$WL_PID/status is owned by uid $(stat -c %u /proc/"$WL_PID"/status)"; return 1; }
	still_sleeping
}

# ---- refusals ----------------------------------------------------------------------

# The last dump failed as check_refused says, and the workload runs on
# unharmed.
refused_naming() {
	check_refused "$WL_PID" "$@" || return 1
	running_free "$WL_PID" "$WL_EXE" || { REASON="after the refused dump: $(describe_pid "$WL_PID")"; return 1; }
	wl_trigger || return 1
	wl_expect_pass
}

# Where the host lets the test lower oom_score_adj (CAP_SYS_RESOURCE), cr
# can too and must restore it; here the kernel refuses, and cr is shown a
# process at -500 by a bind mount in a mount namespace of the test's own.
other_mntns() {
	[ "$(readlink /proc/"$1"/ns/mnt 2>/dev/null)" != "$(readlink /proc/self/ns/mnt)" ]
}

oom_below_floor() {
	local img=$CASE_TMP/img fake=$CASE_TMP/oom_score_adj probe holder launched
	sleep 1000 </dev/null >/dev/null 2>&1 &
	probe=$!
	disown "$probe"
	track_pid "$probe"
	if echo -500 2>/dev/null > /proc/"$probe"/oom_score_adj; then
		WL_PID=$probe WL_EXE=$SLEEP WL_NAME=sleep
		cr_dump dump "$WL_PID" "$img" || return 1
		cr_restore_detached restore "$img" || return 1
		process_is "$WL_PID" -500 1
		return
	fi
	# The fake file is bind-mounted in a mount namespace of the test's own,
	# where both the workload and cr run (cr refuses a process in another
	# mount namespace than its own before it reads anything else).
	unshare -m --propagation private sleep 1000 </dev/null >/dev/null 2>&1 &
	holder=$!
	disown "$holder"
	track_pid "$holder"
	wait_until 5 other_mntns "$holder" || { REASON="no mount namespace of the test's own"; return 1; }
	WL_NAME=w_sched WL_EXE=$WL/w_sched
	WL_DIR=$(mktemp -d "$CASE_TMP/w_sched.XXXX")
	CASE_LOGS+=("$WL_DIR/log")
	setsid nsenter -m -t "$holder" "$WL_EXE" "$WL_DIR" </dev/null >/dev/null 2>&1 &
	launched=$!
	disown "$launched"
	track_pid "$launched"
	wl_await_ready "$launched" || return 1
	echo -500 > "$fake"
	CR_ERR=$CASE_TMP/dump.err
	CASE_LOGS+=("$CR_ERR")
	timeout -k 5 "$CR_TIMEOUT" nsenter -m -t "$holder" sh -c 'mount --bind "$1" /proc/"$2"/oom_score_adj && shift 2 && exec "$@"' \
		sh "$fake" "$WL_PID" "$CR" dump "$WL_PID" -D "$img" >"$CASE_TMP/dump.out" 2>"$CR_ERR" </dev/null
	CR_STATUS=$?
	nsenter -m -t "$holder" umount /proc/"$WL_PID"/oom_score_adj   # the workload sees it too
	refused_naming "$img" "oom_score_adj -500 cannot be restored" || return 1
	grep -q CAP_SYS_RESOURCE "$CR_ERR" || { REASON="the error does not say why: $(last_line "$CR_ERR")"; return 1; }
	wl_await_exit
}

# cr without CAP_SYS_NICE could not give the rt thread SCHED_FIFO back.
no_cap_sys_nice() {
	local img=$CASE_TMP/img
	wl_start w_sched || return 1
	CR_ERR=$CASE_TMP/dump.err
	CASE_LOGS+=("$CR_ERR")
	timeout -k 5 "$CR_TIMEOUT" setpriv --bounding-set -sys_nice --inh-caps -sys_nice \
		"$CR" dump "$WL_PID" -D "$img" >"$CASE_TMP/dump.out" 2>"$CR_ERR" </dev/null
	CR_STATUS=$?
	refused_naming "$img" "SCHED_FIFO priority 5 needs CAP_SYS_NICE" || return 1
	wl_await_exit
}

# A cpuset of CPU 0 only: the restore must refuse a process bound to CPU 1
# before it creates anything, and the images must still restore outside.
missing_cpu() {
	local img=$CASE_TMP/img cg=/sys/fs/cgroup/cpuset/cr-t_sched-$$
	[ "$(nproc --all)" -ge 2 ] || { REASON="needs two CPUs"; return 1; }
	prog_start taskset -c 1 sleep 1000 || return 1
	cr_dump dump "$WL_PID" "$img" || return 1
	mkdir "$cg" && echo 0 > "$cg/cpuset.cpus" && cat "${cg%/*}/cpuset.mems" > "$cg/cpuset.mems" ||
		{ REASON="cannot make a cpuset of CPU 0"; rmdir "$cg" 2>/dev/null; return 1; }
	CR_ERR=$CASE_TMP/restore0.err
	CASE_LOGS+=("$CR_ERR")
	timeout -k 5 "$CR_TIMEOUT" sh -c 'echo $$ > "$1/tasks" && shift && exec "$@"' sh "$cg" \
		"$CR" restore -D "$img" --detach >"$CASE_TMP/restore0.out" 2>"$CR_ERR" </dev/null
	CR_STATUS=$?
	if [ "$CR_STATUS" = 0 ]; then
		REASON="restore in a cpuset without CPU 1 succeeded: $(taskset -cp "$WL_PID" 2>&1)"
		kill_tree "$WL_PID"
		wait_until 5 pid_gone "$WL_PID"
		rmdir "$cg"
		return 1
	fi
	rmdir "$cg"
	grep -q "bound to CPU 1, which this machine does not offer" "$CR_ERR" ||
		{ REASON="the error does not name CPU 1: $(last_line "$CR_ERR")"; return 1; }
	pid_gone "$WL_PID" || { REASON="pid $WL_PID exists after the refused restore: $(describe_pid "$WL_PID")"; return 1; }
	cr_restore_detached restore "$img" || return 1
	thread_is "$WL_PID" "$WL_PID" 0 0 0 1 "none: prio 0"
}

run_case control case_control w_sched
for what in nice:"idle: nice 0" policy:"main: policy 0" affinity:"rt: CPUs 0x1" ioprio:"rt: ioprio 0x0" \
	slack:"idle: timer slack" oom:"oom_score_adj 0" subreaper:"child subreaper 0" thp:"THP disable 0" \
	dumpable:"dumpable 1"; do
	run_case "sabotage_${what%%:*}" case_sabotaged "${what%%:*}" "${what#*:}" w_sched
done
run_case roundtrip roundtrip
run_case leave_running case_leave_running w_sched
run_case mdwe case_roundtrip w_sched mdwe
run_case mdwe_leave_running case_leave_running w_sched mdwe
run_case real_batch_idle real_batch_idle
run_case real_fifo real_fifo
run_case py_tsc py_tsc
run_case real_fifo_unprivileged real_fifo_unprivileged
run_case oom_below_floor oom_below_floor
run_case no_cap_sys_nice no_cap_sys_nice
run_case missing_cpu missing_cpu
finish_tests
