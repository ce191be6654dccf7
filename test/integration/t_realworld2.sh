#!/usr/bin/env bash
# t_realworld2: unmodified Debian programs in shapes that once lost state at
# restore (issue 14, "real programs").
#   pdeath_detach   util-linux `setpriv --pdeathsig TERM tail -f`: the
#                   parent-death signal is kept, so `cr restore --detach`,
#                   whose exit would send it at once (cr restore is the
#                   restored root's parent), is refused before anything
#                   is made; `cr restore` without --detach brings tail back
#                   (it follows on from its offset), and killing that cr
#                   restore, its parent, sends tail its SIGTERM
#   strace_refused  `strace -f` running a counting shell: the dump of strace's
#                   tree, and of the traced shell alone, is refused naming
#                   strace as the shell's tracer (a task has one tracer);
#                   strace and the shell run on, the count and strace's log
#                   growing
#   mq_writer       python3 holding a POSIX message queue write-only (a
#                   producer) and its own read-write one: dumped and
#                   restored, it sends one more message to each, which a
#                   reader outside finds after the ones sent before.  (The
#                   mq_notify check once read the queue through the
#                   process's write-only description and failed every such
#                   dump.)
#   tail_unread     coreutils `tail -f` (inotify), stopped (SIGSTOP) when a
#                   line is appended: the dump is refused naming the
#                   inotify and its events not read yet, and tail, still
#                   stopped, prints the line once continued; with
#                   --skip-in-flight the next such dump warns that the
#                   event is dropped, and the restored tail, continued,
#                   prints the line with the next one (it follows on from
#                   its offset when the next event comes)
#   ip_monitor_unread  iproute2 `ip monitor link` in a network namespace of
#                   its own, stopped when its loopback's MTU changes: the
#                   dump is refused naming its netlink socket and the
#                   message queued there, and ip, continued, prints it;
#                   with --skip-in-flight the message is dropped with a
#                   warning, and the restored ip prints the next change
#                   but not the dropped one, nor any change the restore
#                   made to the namespace
#   py_inotify_quiet  python3 with an inotify watching the root of a tmpfs
#                   mount for opens and closes, and another watching a
#                   directory (opens, creations) in which it holds a file
#                   open: a dump with --leave-running, a dump and restore,
#                   and a dump and restore of the restored process all
#                   succeed, and after each both queues are empty; a file
#                   made in the directory then shows up.  (cr's dump opened
#                   the mount's root to find the watched inode, which
#                   queued events that then refused the dump as unread;
#                   its restore opened the held file after the watches
#                   were made, which queued an event the process never
#                   caused.)
#   socat_device    socat listening on TCP with so-bindtodevice= a veth of
#                   its own network namespace (a device cr's namespace
#                   does not have): the listener comes back bound to that
#                   device and serves through it.  (cr compared options
#                   with a new socket of its own namespace, could not set
#                   the device there, and left the option out.)
source "$(dirname "$0")/lib.sh"

# The lines FILE holds, on one line.
lines_of() {
	tr '\n' ' ' < "$1"
}

pdeath_detach() {
	local dir=$CASE_TMP/t img=$CASE_TMP/img rst
	mkdir -p "$dir"
	seq 1 3 > "$dir/log"
	real_start "$dir/out" "$dir" tail setpriv --pdeathsig TERM tail -f "$dir/log" || return 1
	wait_until 5 grep -q '^3$' "$dir/out" || { REASON="tail did not print the file: $(lines_of "$dir/out")"; return 1; }
	echo 4 >> "$dir/log"
	wait_until 5 grep -q '^4$' "$dir/out" || { REASON="tail did not follow: $(lines_of "$dir/out")"; return 1; }
	cr_dump dump "$WL_PID" "$img" || return 1
	if cr_run restore_detach restore -D "$img" --detach; then
		sleep 1
		REASON="cr restore --detach succeeded, and tail then: $(describe_pid "$WL_PID")"
		return 1
	fi
	grep -qF "parent-death signal (SIGTERM)" "$CR_ERR" ||
		{ REASON="the restore's error does not name the parent-death signal: $(last_line "$CR_ERR")"; return 1; }
	pid_gone "$WL_PID" || { REASON="the refused restore left pid $WL_PID: $(describe_pid "$WL_PID")"; return 1; }
	CASE_LOGS+=("$CASE_TMP/restore.err")
	"$CR" restore -D "$img" >"$CASE_TMP/restore.out" 2>"$CASE_TMP/restore.err" </dev/null &
	rst=$!
	disown "$rst"
	track_pid "$rst"
	wait_until 10 running_free "$WL_PID" "$WL_EXE" || { REASON="tail after cr restore: $(describe_pid "$WL_PID")"; return 1; }
	[ "$(status_field "$WL_PID" PPid)" = "$rst" ] ||
		{ REASON="tail's parent is $(status_field "$WL_PID" PPid), not cr restore ($rst)"; return 1; }
	echo 5 >> "$dir/log"
	wait_until 5 grep -q '^5$' "$dir/out" || { REASON="restored tail does not follow: $(lines_of "$dir/out")"; return 1; }
	[ "$(lines_of "$dir/out")" = "1 2 3 4 5 " ] || { REASON="tail printed: $(lines_of "$dir/out")"; return 1; }
	kill -KILL "$rst"
	wait_until 5 pid_gone "$WL_PID" || { REASON="tail outlived its parent's death: $(describe_pid "$WL_PID")"; return 1; }
}

PY_MQ='
import ctypes, os, sys, time
rt = ctypes.CDLL("librt.so.1", use_errno=True)
d = sys.argv[1]
name = b"crmq%d" % os.getpid()
w = rt.mq_open(b"/" + name + b"w", os.O_CREAT | os.O_WRONLY, 0o600, None)
rw = rt.mq_open(b"/" + name + b"rw", os.O_CREAT | os.O_RDWR, 0o600, None)
if w < 0 or rw < 0:
    sys.exit("mq_open: %d" % ctypes.get_errno())
for q in (w, rw):
    rt.mq_send(q, b"before", 6, 0)
open(d + "/ready", "w").write(name.decode())
while not os.path.exists(d + "/go"):
    time.sleep(0.02)
for q in (w, rw):
    if rt.mq_send(q, b"after", 5, 0) < 0:
        sys.exit("mq_send: %d" % ctypes.get_errno())
open(d + "/sent", "w").close()
time.sleep(60)
'

# The messages queued in /NAME, in order, emptied: one line.
mq_drain() {
	python3 -c '
import ctypes, os, sys
rt = ctypes.CDLL("librt.so.1", use_errno=True)
q = rt.mq_open(b"/" + sys.argv[1].encode(), os.O_RDONLY | os.O_NONBLOCK)
buf, out = ctypes.create_string_buffer(8192), []
while True:
    n = rt.mq_receive(q, buf, 8192, None)
    if n < 0:
        break
    out.append(buf.raw[:n].decode())
rt.mq_unlink(b"/" + sys.argv[1].encode())
print(" ".join(out))' "$1"
}

mq_writer() {
	local name q got
	py_start "$PY_MQ" ready || return 1
	wait_until 5 test -s "$PY_DIR/ready" || { REASON="python3 named no queue"; return 1; }
	name=$(cat "$PY_DIR/ready")
	cr_dump dump "$PY_PID" "$CASE_TMP/img" || return 1
	cr_run restore restore -D "$CASE_TMP/img" --detach ||
		{ REASON="cr restore failed (exit $CR_STATUS): $(last_line "$CR_ERR")"; return 1; }
	touch "$PY_DIR/go"
	wait_until 10 test -e "$PY_DIR/sent" || { REASON="python3 did not send: $(tail -n 2 "$PY_DIR/out")"; return 1; }
	for q in "${name}w" "${name}rw"; do
		got=$(mq_drain "$q")
		[ "$got" = "before after" ] || { REASON="/$q holds '$got'"; return 1; }
	done
}

# grows FILE: FILE changes within 2 s.
grows() {
	local before
	before=$(cksum < "$1")
	wait_until 2 changed "$1" "$before"
}

changed() {
	[ "$(cksum < "$1")" != "$2" ]
}

strace_refused() {
	local dir=$CASE_TMP/s shell pid
	mkdir -p "$dir"
	real_start "$dir/out" "$dir" strace strace -f -o "$dir/trace" sh -c 'i=0; while :; do i=$((i+1)); echo $i > count; sleep 0.1; done' || return 1
	wait_until 5 test -s "$dir/count" || { REASON="the traced shell does not count"; return 1; }
	shell=$(cat /proc/"$WL_PID"/task/*/children | tr -d ' ')
	for pid in "$WL_PID" "$shell"; do
		cr_run "dump$pid" dump "$pid" -D "$CASE_TMP/img$pid"
		check_refused "$shell" "$CASE_TMP/img$pid" "traced by pid $WL_PID (strace" || return 1
		running_free "$WL_PID" "$WL_EXE" || { REASON="strace after the refused dump: $(describe_pid "$WL_PID")"; return 1; }
		grows "$dir/count" || { REASON="the shell stopped counting after the refused dump of $pid"; return 1; }
		grows "$dir/trace" || { REASON="strace stopped tracing after the refused dump of $pid"; return 1; }
	done
}

# stopped PID: PID is in a stop (SIGSTOP) and not traced.
stopped() {
	[ "$(status_field "$1" State)" = T ] && [ "$(status_field "$1" TracerPid)" = 0 ]
}

# stop_then CMD...: stops WL_PID, waits for the stop, runs CMD.
stop_then() {
	kill -STOP "$WL_PID"
	wait_until 5 stopped "$WL_PID" || { REASON="pid $WL_PID did not stop: $(describe_pid "$WL_PID")"; return 1; }
	"$@"
}

# refused_then_continues LABEL WORD...: the dump of the stopped WL_PID is
# refused saying each WORD, and WL_PID is left stopped, then continued.
refused_then_continues() {
	local label=$1
	shift
	cr_run "$label" dump "$WL_PID" -D "$CASE_TMP/$label.img"
	check_refused "$WL_PID" "$CASE_TMP/$label.img" "$@" || return 1
	stopped "$WL_PID" || { REASON="after the refused dump: $(describe_pid "$WL_PID")"; return 1; }
	kill -CONT "$WL_PID"
}

# dumped_skipping WARNING: the stopped WL_PID dumped with --skip-in-flight,
# the dump saying WARNING, restored (stopped, with its pid) and continued.
dumped_skipping() {
	cr_dump skip "$WL_PID" "$CASE_TMP/skip.img" --skip-in-flight || return 1
	grep -qF -- "$1" "$CR_ERR" || { REASON="the dump does not warn '$1': $(last_line "$CR_ERR")"; return 1; }
	cr_run restore restore -D "$CASE_TMP/skip.img" --detach ||
		{ REASON="cr restore failed (exit $CR_STATUS): $(last_line "$CR_ERR")"; return 1; }
	wait_until 5 stopped "$WL_PID" || { REASON="restored: $(describe_pid "$WL_PID")"; return 1; }
	kill -CONT "$WL_PID"
}

tail_unread() {
	local dir=$CASE_TMP/t
	mkdir -p "$dir"
	seq 1 3 > "$dir/log"
	real_start "$dir/out" "$dir" tail tail -f "$dir/log" || return 1
	wait_until 5 grep -q '^3$' "$dir/out" || { REASON="tail did not print the file: $(lines_of "$dir/out")"; return 1; }
	grep -q "^inotify wd:" /proc/"$WL_PID"/fdinfo/* || { REASON="tail -f watches nothing with inotify"; return 1; }
	stop_then sh -c "echo 4 >> '$dir/log'" || return 1
	refused_then_continues dump "inotify with" "bytes of events not read yet" "--skip-in-flight" || return 1
	wait_until 5 grep -q '^4$' "$dir/out" || { REASON="tail continued did not print 4: $(lines_of "$dir/out")"; return 1; }
	stop_then sh -c "echo 5 >> '$dir/log'" || return 1
	dumped_skipping "bytes of events not read yet; they are dropped (--skip-in-flight)" || return 1
	echo 6 >> "$dir/log"
	wait_until 5 grep -q '^6$' "$dir/out" || { REASON="restored tail did not print 6: $(lines_of "$dir/out")"; return 1; }
	[ "$(lines_of "$dir/out")" = "1 2 3 4 5 6 " ] || { REASON="tail printed: $(lines_of "$dir/out")"; return 1; }
}

# mtu MTU: sets the MTU of the loopback of WL_PID's network namespace.
mtu() {
	nsenter -t "$WL_PID" -n ip link set lo mtu "$1"
}

ip_monitor_unread() {
	local dir=$CASE_TMP/m
	mkdir -p "$dir"
	real_start "$dir/out" "$dir" ip unshare -n ip monitor link || return 1
	mtu 1500 && wait_until 5 grep -q "mtu 1500" "$dir/out" || { REASON="ip monitor did not print: $(lines_of "$dir/out")"; return 1; }
	stop_then mtu 1400 || return 1
	refused_then_continues dump "netlink 0 port id" "messages queued for it and not read yet" "--skip-in-flight" ||
		return 1
	wait_until 5 grep -q "mtu 1400" "$dir/out" || { REASON="ip continued did not print: $(lines_of "$dir/out")"; return 1; }
	stop_then mtu 1300 || return 1
	dumped_skipping "are dropped (--skip-in-flight)" || return 1
	mtu 1200 || { REASON="no MTU set in the restored namespace"; return 1; }
	wait_until 5 grep -q "mtu 1200" "$dir/out" || { REASON="restored ip did not print: $(lines_of "$dir/out")"; return 1; }
	! grep -q "mtu 1300" "$dir/out" || { REASON="the dropped message was printed: $(lines_of "$dir/out")"; return 1; }
	# and nothing of what the restore did to make the namespace again
	[ "$(grep -c '^1: lo:' "$dir/out")" = 3 ] || { REASON="ip printed other changes: $(lines_of "$dir/out")"; return 1; }
}

PY_INOTIFY='
import ctypes, fcntl, os, signal, sys, termios, array, time
c = ctypes.CDLL("libc.so.6", use_errno=True)
mnt, d, out = sys.argv[1], sys.argv[2], sys.argv[3]
a = c.inotify_init1(os.O_NONBLOCK)
b = c.inotify_init1(os.O_NONBLOCK)
if c.inotify_add_watch(a, mnt.encode(), 0x20 | 0x10) < 0 or c.inotify_add_watch(b, d.encode(), 0x20 | 0x100) < 0:
    sys.exit("inotify_add_watch: %d" % ctypes.get_errno())
held = os.open(d + "/f", os.O_RDONLY | os.O_CREAT, 0o600)
def queued(fd):
    n = array.array("i", [0])
    fcntl.ioctl(fd, termios.FIONREAD, n)
    return n[0]
def report(s, f):
    w = os.open(out + ".tmp", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.write(w, b"A=%d B=%d" % (queued(a), queued(b)))
    os.close(w)
    os.rename(out + ".tmp", out)
while queued(b):   # the open of f
    os.read(b, 4096)
signal.signal(signal.SIGUSR1, report)
report(0, None)
while True:
    time.sleep(1)
'

# queues_of: what PY_INOTIFY says of its two queues now.
queues_of() {
	rm -f "$CASE_TMP/q"
	kill -USR1 "$WL_PID" && wait_until 5 test -s "$CASE_TMP/q" && cat "$CASE_TMP/q"
}

py_inotify_quiet() {
	local r
	mkdir -p "$CASE_TMP/mnt" "$CASE_TMP/d"
	mount -t tmpfs -o size=1m none "$CASE_TMP/mnt" || { REASON="mount tmpfs"; return 1; }
	inotify_quiet
	r=$?
	umount -l "$CASE_TMP/mnt"
	return "$r"
}

inotify_quiet() {
	local got round
	real_start "$CASE_TMP/py.out" "$CASE_TMP" python3 python3 -c "$PY_INOTIFY" "$CASE_TMP/mnt" "$CASE_TMP/d" "$CASE_TMP/q" ||
		return 1
	wait_until 5 test -s "$CASE_TMP/q" || { REASON="python3 did not report: $(cat "$CASE_TMP/py.out.err")"; return 1; }
	[ "$(queues_of)" = "A=0 B=0" ] || { REASON="before the dump: $(cat "$CASE_TMP/q")"; return 1; }
	cr_dump running "$WL_PID" "$CASE_TMP/img0" --leave-running || return 1
	got=$(queues_of)
	[ "$got" = "A=0 B=0" ] || { REASON="after the dump --leave-running: $got"; return 1; }
	for round in 1 2; do
		cr_dump "dump$round" "$WL_PID" "$CASE_TMP/img$round" || return 1
		cr_run "restore$round" restore -D "$CASE_TMP/img$round" --detach ||
			{ REASON="cr restore failed (exit $CR_STATUS): $(last_line "$CR_ERR")"; return 1; }
		wait_until 5 running_free "$WL_PID" "$WL_EXE" || { REASON="restored: $(describe_pid "$WL_PID")"; return 1; }
		got=$(queues_of)
		[ "$got" = "A=0 B=0" ] || { REASON="after restore $round: $got"; return 1; }
	done
	touch "$CASE_TMP/d/new"
	got=$(queues_of)
	[ "$got" != "A=0 B=0" ] && [ "${got#A=0 B=}" -gt 0 ] || { REASON="no event for a new file: $got"; return 1; }
}

# bound_device: the device WL_PID's TCP listener on port 7000 is bound to.
bound_device() {
	nsenter -t "$WL_PID" -n ss -tlnH 'sport = :7000' | awk '{print $4}' | sed -n 's/.*%\([^:]*\):7000$/\1/p'
}

socat_device() {
	local dir=$CASE_TMP/d got
	mkdir -p "$dir"
	real_start "$dir/out" "$dir" socat unshare -n sh -c 'ip link set lo up &&
		ip link add crv0 type veth peer name crv1 && ip addr add 10.9.0.1/24 dev crv0 &&
		ip addr add 10.9.0.2/24 dev crv1 && ip link set crv0 up && ip link set crv1 up &&
		exec socat TCP-LISTEN:7000,bind=10.9.0.1,so-bindtodevice=crv0,reuseaddr,fork SYSTEM:"echo served"' ||
		return 1
	wait_until 5 test "$(bound_device)" = crv0 || { REASON="socat's listener is bound to '$(bound_device)'"; return 1; }
	cr_dump dump "$WL_PID" "$CASE_TMP/img" || return 1
	cr_run restore restore -D "$CASE_TMP/img" --detach ||
		{ REASON="cr restore failed (exit $CR_STATUS): $(last_line "$CR_ERR")"; return 1; }
	wait_until 5 running_free "$WL_PID" "$WL_EXE" || { REASON="restored socat: $(describe_pid "$WL_PID")"; return 1; }
	[ "$(bound_device)" = crv0 ] || { REASON="the restored listener is bound to '$(bound_device)', not crv0"; return 1; }
	got=$(nsenter -t "$WL_PID" -n timeout 5 socat -T 3 - TCP:10.9.0.1:7000 </dev/null 2>&1)
	[ "$got" = served ] || { REASON="a client of the restored socat got '$got'"; return 1; }
}

command -v setpriv >/dev/null || { echo "FAIL $TEST_NAME: setpriv is not installed (make deps)"; exit 1; }

run_case pdeath_detach pdeath_detach
command -v strace >/dev/null || { echo "FAIL $TEST_NAME: strace is not installed (make deps)"; exit 1; }
run_case strace_refused strace_refused
run_case mq_writer mq_writer
run_case tail_unread tail_unread
run_case ip_monitor_unread ip_monitor_unread
run_case py_inotify_quiet py_inotify_quiet
run_case socat_device socat_device
finish_tests
