#!/usr/bin/env bash
# t_ns: namespaces come back, or the dump refuses them by name.
# uts_*: w_uts, a tree across three uts namespaces (one shared by a child,
#   one of a child's own, a grandchild that went back into the first with
#   setns, and one that went back into the host's), each process with a
#   hostname and domainname drawn from the token; after restore each checks
#   uname() and which processes share a namespace.  Also two hops in a row, and --leave-running (the dump's
#   helper that enters a namespace must leave it as it was).
# timens_*: w_timens, a child in a time namespace whose clocks run 1000 s
#   ahead of the host's: after restore they are still exactly 1000 s ahead
#   (through the vdso and the system call) and went on from where they
#   were, and a child forked after the restore is born in the namespace.
# ipc_*: w_ipc fills an ipc namespace of its own (segments with contents,
#   ids with sequence numbers, keys, modes and owners; a queue with typed
#   messages; a raised limit, and two lowered below what its objects
#   needed) and checks every one after restore; a child shares the
#   namespace.
# refused_thread: a thread of w_uts unshared a uts namespace of its own:
#   refused naming the thread, and the workload passes afterwards.
# refused_time_outsider: w_timens outsider, a time namespace made by one
#   child (unshare) and entered by its sibling (setns), is refused at dump
#   by check_tree, naming both; the tree runs on and passes.
# unshare_*: unmodified Debian programs.  unshare -u with hostname set by
#   sh, checked with nsenter -u hostname; unshare -T with offsets, checked
#   with /proc/PID/timens_offsets and nsenter -T cat /proc/uptime; unshare
#   -i, an empty ipc namespace that is not the host's (a segment made in
#   the host's must not show in it), and one where ipcmk made segments and
#   a queue and sh raised a limit: nsenter ipcs shows the same before the
#   dump and after the restore.  Each must be in a namespace of its own
#   after restore, not cr's.
# refused_*: a cgroup or user namespace of its own, an ipc
#   namespace that holds a SysV semaphore set (ipcmk -S), a POSIX message
#   queue or an attached segment (w_ipc mqueue, attached), are refused at
#   dump, naming the pid and the namespace, and the process is left
#   running untraced, still asleep (its clock_nanosleep goes on through
#   restart_syscall, as after any stop).  (Mount namespaces: t_mntns.sh,
#   network namespaces: t_netns.sh.)
source "$(dirname "$0")/lib.sh"

SLEEP=$(readlink -f "$(command -v sleep)")
NANOSLEEP=230   # clock_nanosleep: where sleep waits
RESTART=219     # restart_syscall: where it waits on once a tracer let it go

# real_start CMD...: an unmodified program (with only fds 0-2) that ends
# up exec'ing sleep 1000; waits until it sleeps.  Sets WL_PID and WL_EXE.
real_start() {
	( clean_exec "$@" ) </dev/null >/dev/null 2>&1 &
	WL_PID=$!
	WL_EXE=$SLEEP
	WL_NAME=$1
	disown "$WL_PID"   # bash still reaps it, without "Killed" notices
	track_pid "$WL_PID"
	wait_until 5 blocked_in "$WL_PID" "$NANOSLEEP" ||
		{ REASON="$* did not reach its sleep: $(describe_pid "$WL_PID")"; return 1; }
}

# Not in cr's (and the harness's) namespace of that kind.
own_namespace() {
	local kind=$1 theirs ours
	theirs=$(readlink /proc/"$WL_PID"/ns/"$kind") || { REASON="pid $WL_PID has no ns/$kind"; return 1; }
	ours=$(readlink /proc/self/ns/"$kind")
	[ "$theirs" != "$ours" ] || { REASON="pid $WL_PID is in the harness's $kind namespace ($ours) after restore"; return 1; }
}

# dump, gone, restore --detach, running again
real_roundtrip() {
	local img=$CASE_TMP/img
	cr_dump dump "$WL_PID" "$img" || return 1
	cr_restore_detached restore "$img" || return 1
}

# ---- workloads --------------------------------------------------------------------

uts_roundtrip() {
	case_roundtrip w_uts || return 1
}

# The restored root is in a uts namespace of its own, seen from outside.
uts_outside() {
	local img=$CASE_TMP/img
	wl_start w_uts || return 1
	cr_dump dump "$WL_PID" "$img" || return 1
	cr_restore_detached restore "$img" || return 1
	own_namespace uts || return 1
	[ "$(nsenter -t "$WL_PID" -u hostname)" = "r-$WL_TOKEN" ] ||
		{ REASON="the restored root's hostname is $(nsenter -t "$WL_PID" -u hostname), want r-$WL_TOKEN"; return 1; }
	wl_trigger || return 1
	wl_expect_pass || return 1
	wl_await_exit
}

# ---- unmodified programs ------------------------------------------------------------

unshare_uts() {
	local token host_before
	token=cr-$RANDOM$RANDOM
	host_before=$(hostname)
	real_start unshare -u sh -c "hostname $token; exec sleep 1000" || return 1
	[ "$(nsenter -t "$WL_PID" -u hostname)" = "$token" ] || { REASON="control: hostname not set"; return 1; }
	real_roundtrip || return 1
	own_namespace uts || return 1
	[ "$(nsenter -t "$WL_PID" -u hostname)" = "$token" ] ||
		{ REASON="hostname after restore: $(nsenter -t "$WL_PID" -u hostname), want $token"; return 1; }
	[ "$(hostname)" = "$host_before" ] || { REASON="the host's hostname changed to $(hostname)"; return 1; }
}

unshare_time() {
	local offsets host_up ns_up
	real_start unshare -T --monotonic 1000 --boottime 1000 sleep 1000 || return 1
	real_roundtrip || return 1
	own_namespace time || return 1
	offsets=$(tr -s ' \n' ' ' < /proc/"$WL_PID"/timens_offsets)
	[ "$offsets" = "monotonic 1000 0 boottime 1000 0 " ] ||
		{ REASON="timens_offsets after restore: $offsets"; return 1; }
	read -r host_up _ < /proc/uptime
	ns_up=$(nsenter -t "$WL_PID" -T cat /proc/uptime) || { REASON="nsenter -T failed"; return 1; }
	ns_up=${ns_up%% *}
	# /proc/uptime is CLOCK_BOOTTIME: 1000 s ahead inside, within a second.
	awk -v h="$host_up" -v n="$ns_up" 'BEGIN { d = n - h; exit !(d > 999 && d < 1001) }' ||
		{ REASON="uptime inside is $ns_up, the host's $host_up: not 1000 s ahead"; return 1; }
}

unshare_ipc() {
	local shmid listing
	shmid=$(ipcmk -M 4096 -p 0600 2>/dev/null | awk '{ print $NF }')
	[ -n "$shmid" ] || { REASON="ipcmk failed"; return 1; }
	real_start unshare -i sleep 1000 || { ipcrm -m "$shmid"; return 1; }
	real_roundtrip || { ipcrm -m "$shmid"; return 1; }
	listing=$(nsenter -t "$WL_PID" -i ipcs -m)
	ipcrm -m "$shmid"
	own_namespace ipc || return 1
	! awk '{ print $2 }' <<<"$listing" | grep -qx "$shmid" ||
		{ REASON="the host's segment $shmid shows in the restored ipc namespace: $listing"; return 1; }
}

ipcs_of() {
	nsenter -t "$WL_PID" -i ipcs -m -q -s
	nsenter -t "$WL_PID" -i cat /proc/sys/kernel/msgmnb
}

unshare_ipc_objects() {
	local before after
	real_start unshare -i sh -c 'ipcmk -M 8192 -p 0640 >/dev/null && ipcmk -M 100 >/dev/null &&
		ipcmk -Q -p 0600 >/dev/null && ipcmk -S 3 -p 0660 >/dev/null &&
		echo 65536 > /proc/sys/kernel/msgmnb && exec sleep 1000' || return 1
	before=$(ipcs_of)
	grep -q "^0x.* 640 .* 8192 " <<<"$before" || { REASON="control: no segment in $before"; return 1; }
	grep -q "^0x.* 660 .* 3 *$" <<<"$before" || { REASON="control: no semaphore set in $before"; return 1; }
	real_roundtrip || return 1
	own_namespace ipc || return 1
	after=$(ipcs_of)
	[ "$after" = "$before" ] ||
		{ REASON="ipcs after restore differs: $(diff <(echo "$before") <(echo "$after") | grep '^[<>]' | tr '\n' ' ')"; return 1; }
}

# python3 (through ctypes) with POSIX message queues: messages of several
# priorities and a queue it keeps open, in an ipc namespace of its own
# (the queue comes back with its messages) or in cr's (the queue is the
# host's; only the fd comes back).  After "go" it receives the messages in
# priority order, sends and receives one more, and checks its namespace.
PY_MQUEUE='
import ctypes, os, sys, time
d = sys.argv[1]
libc = ctypes.CDLL(None, use_errno=True)
def check(ok, what):
    if not ok: raise SystemExit("%s: errno %d" % (what, ctypes.get_errno()))
ns_before = os.readlink("/proc/self/ns/ipc")
if OWN_NS: check(libc.unshare(0x08000000) == 0, "unshare(CLONE_NEWIPC)")
token = os.urandom(8).hex()
name = ("/pyq-" + token).encode()
q = libc.mq_open(name, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_NONBLOCK, 0o600, None)
check(q >= 0, "mq_open")
sent = [(b"low one " + token.encode(), 2), (b"high " + token.encode(), 7), (b"low two", 2), (b"", 0)]
for text, prio in sent: check(libc.mq_send(q, text, len(text), prio) == 0, "mq_send")
ns = os.readlink("/proc/self/ns/ipc")
with open(d + "/ready.tmp", "w") as f: f.write("%d %s %s\n" % (os.getpid(), token, name.decode()))
os.rename(d + "/ready.tmp", d + "/ready")
while not os.path.exists(d + "/go"): time.sleep(0.01)
bad = []
buf = ctypes.create_string_buffer(8192)
prio = ctypes.c_uint(99)
got = []
for _ in range(4):
    n = libc.mq_receive(q, buf, 8192, ctypes.byref(prio))
    got.append((buf.raw[:n] if n >= 0 else None, prio.value))
want = [sent[1], sent[0], sent[2], sent[3]]
if got != want: bad.append("received %r, want %r" % (got, want))
if libc.mq_send(q, b"after", 5, 1) != 0 or libc.mq_receive(q, buf, 8192, ctypes.byref(prio)) != 5:
    bad.append("send and receive after the restore: errno %d" % ctypes.get_errno())
if OWN_NS and os.readlink("/proc/self/ns/ipc") == ns_before: bad.append("back in the host ipc namespace")
libc.mq_unlink(name)
res = "PASS %s\n" % token if not bad else "FAIL %s: %s\n" % (token, "; ".join(bad))
with open(d + "/result.tmp", "w") as f: f.write(res)
os.rename(d + "/result.tmp", d + "/result")
'

# python_mqueue own|host
python_mqueue() {
	local token name own=False rc
	[ "$1" = own ] && own=True
	py_start "OWN_NS = $own$PY_MQUEUE" ready || return 1
	read -r _ token name < "$PY_DIR/ready"
	py_roundtrip "$token"
	rc=$?
	[ "$1" = own ] || python3 -c 'import ctypes, sys; ctypes.CDLL(None).mq_unlink(sys.argv[1].encode())' "$name"
	return "$rc"
}

ipc_outside() {
	wl_start w_ipc || return 1
	cr_dump dump "$WL_PID" "$CASE_TMP/img" || return 1
	cr_restore_detached restore "$CASE_TMP/img" || return 1
	own_namespace ipc || return 1
	wl_trigger || return 1
	wl_expect_pass || return 1
	wl_await_exit
}

# ---- refused --------------------------------------------------------------------------

refused_thread() {
	local tid
	wl_start w_uts thread || return 1
	read -r tid < "$WL_DIR/thread"
	expect_refused_then_pass "$WL_PID" \
		"pid $WL_PID thread $tid: its uts namespace differs from its main thread's: unsupported"
}

# refused_ipc MODE TEXT...: w_ipc in MODE is refused, the error saying
# each TEXT.
refused_ipc() {
	wl_start w_ipc "$1" || return 1
	shift
	expect_refused_then_pass "$WL_PID" "pid $WL_PID: its ipc namespace: " "$@"
}

# A process that used SEM_UNDO holds adjustments no kernel interface shows.
refused_undo() {
	wl_start w_ipc undo || return 1
	expect_refused_then_pass "$WL_PID" "pid $WL_PID: it has a SysV semaphore undo list (it used SEM_UNDO"
}

# python3 with a thread, in an ipc namespace with a semaphore set: the
# thread gave it an undo list, which might hold adjustments.
refused_threads_with_sets() {
	local pid
	( clean_exec unshare -i sh -c 'ipcmk -S 1 >/dev/null && exec python3 -c "import threading, time
threading.Thread(target=time.sleep, args=(1000,)).start()
time.sleep(1000)"' ) </dev/null >/dev/null 2>&1 &
	pid=$!
	disown "$pid"
	track_pid "$pid"
	wait_until 10 has_tasks "$pid" 2 || { REASON="python3's thread did not start: $(describe_pid "$pid")"; return 1; }
	expect_refused "$pid" "$CASE_TMP/img" "it has a SysV semaphore undo list" "holds semaphore sets" || return 1
	proc_alive "$pid" && [ "$(status_field "$pid" TracerPid)" = 0 ] ||
		{ REASON="python3 after the refusal: $(describe_pid "$pid")"; return 1; }
}

# refused WHAT CMD...: the dump of the program fails naming its pid and WHAT;
# it runs on untraced, still in its sleep, and no dump is left.
refused() {
	local what=$1
	shift
	real_start "$@" || return 1
	expect_refused "$WL_PID" "$CASE_TMP/img" "pid $WL_PID: its $what" || return 1
	sleep 0.2
	running_free "$WL_PID" "$WL_EXE" || { REASON="after the refused dump: $(describe_pid "$WL_PID")"; return 1; }
	blocked_in "$WL_PID" "$NANOSLEEP" || blocked_in "$WL_PID" "$RESTART" ||
		{ REASON="after the refused dump, no longer in its sleep: $(cat /proc/"$WL_PID"/syscall)"; return 1; }
}

# w_timens outsider: a child made a time namespace for its children and its
# sibling entered it; no restore could make it before both need it: the
# dump refuses, naming both, and the whole tree runs on and still passes.
refused_outsider() {
	local img=$CASE_TMP/img maker joiner pid
	wl_start w_timens outsider || return 1
	read -r maker joiner < "$WL_DIR/outsider"
	cr_run dump dump "$WL_PID" -D "$img"
	check_refused "$maker" "$img" \
		"pid $maker: the time namespace it made for its children (unshare) was entered by pid $joiner" || return 1
	running_free "$WL_PID" "$WL_EXE" || { REASON="after the refused dump: $(describe_pid "$WL_PID")"; return 1; }
	for pid in "$maker" "$joiner"; do
		proc_alive "$pid" && [ "$(status_field "$pid" TracerPid)" = 0 ] ||
			{ REASON="after the refused dump, pid $pid: $(describe_pid "$pid")"; return 1; }
	done
	wl_trigger || return 1
	wl_expect_pass || return 1
	wl_await_exit
}

run_case uts_control case_control w_uts
run_case uts_sabotaged case_sabotaged hostname hostname w_uts
run_case uts_roundtrip uts_roundtrip
run_case uts_outside uts_outside
run_case uts_twice case_twice w_uts
run_case uts_leave_running case_leave_running w_uts
run_case timens_control case_control w_timens
run_case timens_sabotaged case_sabotaged clock "ahead of the host" w_timens
run_case timens_roundtrip case_roundtrip w_timens
run_case timens_twice case_twice w_timens
run_case timens_outsider_control case_control w_timens outsider
run_case refused_time_outsider refused_outsider
run_case ipc_control case_control w_ipc
run_case ipc_sabotaged case_sabotaged shm "contents of segment S1" w_ipc
run_case ipc_outside ipc_outside
run_case ipc_twice case_twice w_ipc
run_case unshare_uts unshare_uts
run_case unshare_time unshare_time
run_case unshare_ipc unshare_ipc
run_case unshare_ipc_objects unshare_ipc_objects
run_case refused_cgroup refused "cgroup namespace differs from cr's: unsupported" unshare -C sleep 1000
run_case refused_user refused "user namespace differs from cr's: unsupported" unshare -U sleep 1000
run_case python_mqueue_own_ns python_mqueue own
run_case python_mqueue_host python_mqueue host
run_case refused_ipc_notify refused_ipc notify "POSIX message queue /w_ipc.empty: pid" \
	"asked to be notified of its messages (mq_notify)"
run_case refused_sem_undo refused_undo
run_case refused_threads_with_sets refused_threads_with_sets
run_case refused_ipc_attached refused_ipc attached "is attached by 2 processes: unsupported"
run_case refused_thread refused_thread
finish_tests
