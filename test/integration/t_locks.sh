#!/usr/bin/env bash
# t_locks: file locks (flock, POSIX record locks, OFD locks) are held again
# before a restored process runs, checked from outside (lockprobe, util-linux
# flock, a second sqlite3) and by the workloads themselves (see w_locks.c):
#
#   control_locks*     the workload passes without any dump, and fails when
#                      one of its locks is dropped on purpose (sabotage_*).
#   roundtrip_locks    every lock is seen from outside before the dump, is
#                      gone while the process is dumped (the dump killed its
#                      holder: the later check can fail), is back after
#                      restore with the restored pid as its holder; then the
#                      workload checks its own view and releases each lock.
#                      cr show lists the locks of the dump.
#   leave_running_locks, twice_locks   the dump disturbs no lock; two hops.
#   blocked_waiters    children waiting in fcntl(F_SETLKW) and flock() for
#                      the workload's locks wait again after restore and get
#                      them only once the workload lets go.
#   restore_conflict   a process outside takes a conflicting lock while the
#                      workload is dumped: restore fails naming the file and
#                      the range, leaves nothing behind, and succeeds once
#                      the lock is free.
#   flock_command      the real `flock FILE sleep 1000` (util-linux): its
#                      lock is back after restore (`flock -n FILE true`
#                      fails) and goes when the restored command ends.
#   sqlite_transaction an unmodified sqlite3 CLI in the middle of a write
#                      transaction: after restore a second sqlite3 gets
#                      "database is locked" as before the dump; the restored
#                      one COMMITs, every row is there, and the second one
#                      can write after that.
#   python_own_locks   python3 alone (no child to share its fds) holding a
#                      flock and an OFD lock on descriptions of its own:
#                      after restore both are held (lockprobe from outside
#                      is refused), python3 goes on with its token and
#                      releases them.  Before, the dump succeeded and the
#                      restore failed: "file N ... was not opened for its
#                      lock" (only descriptions of several processes were).
#   maponly_roundtrip, maponly_twice  a flock held only through a mapping
#                      (the fd closed since, no fd shows it): taken again on
#                      the description the restore maps the file through;
#                      the workload finds it held.  Before, refused at dump.
#   java_hsperfdata    Debian's java (a single-file program run from source):
#                      the JVM flocks its /tmp/hsperfdata_USER/PID file, maps
#                      it and closes the fd.  After restore the lock is there
#                      (/proc/locks, the restored pid; `flock -n` from outside
#                      fails), and the program goes on with its token and
#                      counter.  Before, cr dump refused it.
#   python_orphan_flock  python3 flocks a file it maps, closes the fd and
#                      forks; the locker exits and its child holds the lock
#                      through the mapping alone (/proc/locks names the
#                      exited pid).  The child is dumped: after restore the
#                      lock is held (`lockprobe` refused), and goes with the
#                      munmap.  Before, the dump skipped the lock (its pid
#                      is outside the dump) and the restore lost it.
#   python_two_flocks  python3 holds two read flocks on one file, through an
#                      fd and through a mapping of another description: both
#                      are back (two FLOCK lines), and closing the fd leaves
#                      the mapping's lock held.  Before, one record stood
#                      for both lines and the mapping's lock was lost.
#   refuse_*           a lease, a flock on a description a process outside
#                      the dump shares: the dump refuses naming the process
#                      and the thing, and the process runs on with its locks.
source "$(dirname "$0")/lib.sh"

PROBE=$WL/lockprobe
# sqlite's lock bytes (os_unix.c): PENDING_BYTE is 0x40000000, RESERVED
# the byte after it, SHARED the 510 after that.
SQLITE_RESERVED=1073741825

# probe_is WANT KIND FILE r|w [START LEN [HOLDER]]: lockprobe exits WANT (0
# free, 1 held) and, when HOLDER is given, names it as the holder.
probe_is() {
	local want=$1 kind=$2 file=$3 type=$4 start=${5:-} len=${6:-} holder=${7:-} out status
	out=$("$PROBE" "$kind" "$file" "$type" ${start:+"$start" "$len"} 2>&1)
	status=$?
	if [ "$status" != "$want" ]; then
		REASON="$kind $type lock on ${file##*/} ${start:+bytes $start+$len }is $([ "$status" = 1 ] && echo "held ($out)" || echo "free ($out)"), want it $([ "$want" = 1 ] && echo held || echo free)"
		return 1
	fi
	if [ -n "$holder" ] && [ "$out" != "held by pid $holder" ]; then
		REASON="$kind $type lock on ${file##*/} bytes $start+$len: $out, want held by pid $holder"
		return 1
	fi
}

# Every lock of w_locks, seen from outside: held (by PID where the kernel
# tells), and the bytes around them free.
locks_held() {
	local d=$1 pid=$2
	probe_is 1 flock "$d/flock.file" r &&
		probe_is 1 posix "$d/posix.file" w 0 10 "$pid" &&
		probe_is 0 posix "$d/posix.file" r 0 10 &&
		probe_is 0 posix "$d/posix.file" w 10 10 &&
		probe_is 1 posix "$d/posix.file" r 20 10 "$pid" &&
		probe_is 1 posix "$d/posix.file" r 5000 1 "$pid" &&
		probe_is 1 posix "$d/posix.file" w 100 10 "$pid" &&
		probe_is 1 ofd "$d/ofd.file" r 100 50 -1 &&
		probe_is 0 ofd "$d/ofd.file" w 0 100 &&
		probe_is 1 posix "$d/ofd.file" w 200 50 -1 &&
		probe_is 0 ofd "$d/ofd.file" r 200 50 &&
		probe_is 1 flock "$d/shared.file" w &&
		probe_is 0 flock "$d/shared.file" r
}

locks_free() {
	local d=$1
	probe_is 0 flock "$d/flock.file" w &&
		probe_is 0 posix "$d/posix.file" w 0 0 &&
		probe_is 0 ofd "$d/ofd.file" w 0 0 &&
		probe_is 0 flock "$d/shared.file" w
}

roundtrip_locks() {
	local img=$CASE_TMP/img
	wl_start w_locks || return 1
	locks_held "$WL_DIR" "$WL_PID" || { REASON="before the dump: $REASON"; return 1; }
	cr_dump dump "$WL_PID" "$img" || return 1
	locks_free "$WL_DIR" || { REASON="while dumped: $REASON"; return 1; }
	cr_run show show "$img" || { REASON="cr show exited $CR_STATUS: $(last_line "$CR_ERR")"; return 1; }
	grep -q "^  locks         8$" "$CASE_TMP/show.out" && grep -q "POSIX write bytes 20-29$" "$CASE_TMP/show.out" ||
		{ REASON="cr show does not list the workload's 8 locks"; return 1; }
	cr_restore_detached restore "$img" || return 1
	locks_held "$WL_DIR" "$WL_PID" || { REASON="after restore: $REASON"; return 1; }
	wl_trigger || return 1
	wl_expect_pass || return 1
	wl_await_exit
}

leave_running_locks() {
	local img=$CASE_TMP/img
	wl_start w_locks || return 1
	cr_dump dump "$WL_PID" "$img" --leave-running || return 1
	locks_held "$WL_DIR" "$WL_PID" || { REASON="after dump --leave-running: $REASON"; return 1; }
	running_free "$WL_PID" "$WL_EXE" || { REASON="after the dump: $(describe_pid "$WL_PID")"; return 1; }
	wl_trigger || return 1
	wl_expect_pass || return 1
	wl_await_exit
}

restore_conflict() {
	local img=$CASE_TMP/img holder
	wl_start w_locks || return 1
	cr_dump dump "$WL_PID" "$img" || return 1
	"$PROBE" hold posix "$WL_DIR/posix.file" r 25 1 >"$CASE_TMP/holder.out" 2>&1 </dev/null &
	holder=$!
	track_pid "$holder"
	wait_until 5 grep -q held "$CASE_TMP/holder.out" || { REASON="the outside holder took no lock"; return 1; }
	if cr_run restore restore -D "$img" --detach; then
		REASON="restore succeeded although pid $holder holds a read lock on a byte the workload had write-locked"
		return 1
	fi
	grep -q "posix.file" "$CR_ERR" && grep -q "bytes 20-29" "$CR_ERR" ||
		{ REASON="the error does not name the file and the range: $(last_line "$CR_ERR")"; return 1; }
	grep -q "pid $holder" "$CR_ERR" || { REASON="the error does not name the holder: $(last_line "$CR_ERR")"; return 1; }
	wait_until 5 pid_gone "$WL_PID" ||
		{ REASON="pid $WL_PID is left after the failed restore: $(describe_pid "$WL_PID")"; return 1; }
	kill "$holder"
	wait "$holder" 2>/dev/null
	cr_restore_detached restore2 "$img" || return 1
	wl_trigger || return 1
	wl_expect_pass || return 1
	wl_await_exit
}

# ---- unmodified programs ------------------------------------------------------

# start_real OUT ERR CMD...: CMD in a new session, with nothing inherited but
# its stdio (a harness fd would tie it to a process outside the dump). Sets
# REAL_PID.
start_real() {
	local out=$1 err=$2
	shift 2
	# shellcheck disable=SC2016
	setsid bash -c 'for f in /proc/$$/fd/*; do n=${f##*/}; [ "$n" -gt 2 ] && eval "exec $n>&-"; done 2>/dev/null
		exec "$@"' _ "$@" </dev/null >"$out" 2>"$err" &
	REAL_PID=$!
	disown "$REAL_PID"
	track_pid "$REAL_PID"
}

# The only child of pid, once it has one.
only_child() {
	CHILD=$(cat /proc/"$1"/task/*/children 2>/dev/null)
	CHILD=${CHILD% }
	[ -n "$CHILD" ] && [ "${CHILD#* }" = "$CHILD" ] && [ "$(readlink /proc/"$CHILD"/exe)" = "$2" ]
}

flock_free() {
	flock -n "$1" true
}

# flock FILE sleep 1000: flock takes the lock on its fd and forks sleep,
# which inherits the description (util-linux keeps the fd open in the child).
start_flock_command() {
	FILE=$CASE_TMP/lockfile
	start_real /dev/null "$CASE_TMP/flock.err" flock "$FILE" sleep 1000
	WL_PID=$REAL_PID WL_EXE=$(readlink -f "$(command -v flock)") WL_NAME=flock
	SLEEP_EXE=$(readlink -f "$(command -v sleep)")
	wait_until 5 only_child "$WL_PID" "$SLEEP_EXE" || { REASON="flock started no sleep"; return 1; }
	SLEEP_PID=$CHILD
	! flock_free "$FILE" || { REASON="flock -n $FILE succeeds while flock runs"; return 1; }
}

flock_command() {
	local img=$CASE_TMP/img
	start_flock_command || return 1
	cr_dump dump "$WL_PID" "$img" || return 1
	flock_free "$FILE" || { REASON="$FILE is still locked while flock is dumped"; return 1; }
	cr_restore_detached restore "$img" || return 1
	! flock_free "$FILE" || { REASON="after restore, flock -n $FILE succeeds: the lock was not restored"; return 1; }
	running_free "$SLEEP_PID" "$SLEEP_EXE" || { REASON="sleep after restore: $(describe_pid "$SLEEP_PID")"; return 1; }
	# The lock belongs to the restored processes: it goes when they end.
	kill "$SLEEP_PID"
	wait_until 5 pid_gone "$WL_PID" || { REASON="flock did not end with its command: $(describe_pid "$WL_PID")"; return 1; }
	flock_free "$FILE" || { REASON="$FILE is still locked after flock ended"; return 1; }
}

# sqlite3 reads its commands from a FIFO it also holds open for writing
# itself (fd 3), so that it never sees the end of its input and no process
# outside the dump holds the FIFO while it is dumped.
start_sqlite() {
	SQ=$CASE_TMP/sq
	mkdir -p "$SQ"
	sqlite3 "$SQ/db" "${1:-}CREATE TABLE t(x INTEGER); INSERT INTO t VALUES (1), (2), (3);" >/dev/null || { REASON="sqlite3 create failed"; return 1; }
	mkfifo "$SQ/fifo"
	# shellcheck disable=SC2016
	start_real "$SQ/out" "$SQ/err" sh -c 'exec 3<>"$1"; exec sqlite3 "$2" <"$1"' _ "$SQ/fifo" "$SQ/db"
	WL_PID=$REAL_PID WL_EXE=$(readlink -f "$(command -v sqlite3)") WL_NAME=sqlite3
	CASE_LOGS+=("$SQ/err" "$SQ/out")
}

# Writes commands to the running sqlite3.
sql() {
	timeout 5 sh -c 'echo "$1" > "$2"' _ "$1" "$SQ/fifo" || { REASON="cannot write to sqlite3's FIFO"; return 1; }
}

# A second sqlite3 tries to write: its output.
second_writer() {
	timeout 10 sqlite3 "$SQ/db" "INSERT INTO t VALUES ($1);" 2>&1
}

expect_locked_out() {
	local out
	out=$(second_writer 99)
	case $out in
	*"database is locked"*) return 0 ;;
	esac
	REASON="$1: a second sqlite3 was not locked out: '$out' (rows now: $(sqlite3 -readonly "$SQ/db" "SELECT group_concat(x) FROM t" 2>&1))"
	return 1
}

# The restored sqlite3 commits rows 10 to 12; then a second writer adds 99.
commit_and_check() {
	local out
	sql "COMMIT; SELECT 'rows:' || group_concat(x) FROM t;" || return 1
	wait_until 5 grep -q "^rows:" "$SQ/out" || { REASON="the restored sqlite3 printed nothing after COMMIT: $(cat "$SQ/err")"; return 1; }
	grep -qx "rows:1,2,3,10,11,12" "$SQ/out" || { REASON="after COMMIT the restored sqlite3 sees $(cat "$SQ/out")"; return 1; }
	[ ! -s "$SQ/err" ] || { REASON="the restored sqlite3 reports: $(cat "$SQ/err")"; return 1; }
	out=$(second_writer 99) || { REASON="after the COMMIT a second sqlite3 cannot write: $out"; return 1; }
	out=$(sqlite3 "$SQ/db" "SELECT group_concat(x) FROM t" 2>&1)
	[ "$out" = "1,2,3,10,11,12,99" ] || { REASON="the database holds $out, want 1,2,3,10,11,12,99"; return 1; }
	running_free "$WL_PID" "$WL_EXE" || { REASON="sqlite3 after COMMIT: $(describe_pid "$WL_PID")"; return 1; }
}

sqlite_transaction() {
	local img=$CASE_TMP/img out
	start_sqlite || return 1
	sql "BEGIN IMMEDIATE; INSERT INTO t VALUES (10), (11), (12);" || return 1
	wait_until 5 probe_is 1 posix "$SQ/db" w "$SQLITE_RESERVED" 1 ||
		{ REASON="sqlite3 holds no RESERVED lock: $REASON"; return 1; }
	expect_locked_out "before the dump" || return 1
	cr_dump dump "$WL_PID" "$img" || return 1
	cr_restore_detached restore "$img" || return 1
	expect_locked_out "after restore" || return 1
	commit_and_check
}

# sqlite3 in WAL mode maps the database's -shm file and holds POSIX locks
# on it (and on the database) inside a write transaction: the restored
# sqlite3 still locks a second writer out, commits, and the database then
# takes the second writer's row; a reader meanwhile sees the rows committed
# before the transaction.
sqlite_wal() {
	local img=$CASE_TMP/img out
	start_sqlite "PRAGMA journal_mode=WAL;" || return 1
	sql "BEGIN IMMEDIATE; INSERT INTO t VALUES (10), (11), (12);" || return 1
	wait_until 5 grep -q "$SQ/db-shm" "/proc/$WL_PID/maps" || { REASON="sqlite3 does not map $SQ/db-shm"; return 1; }
	expect_locked_out "before the dump" || return 1
	cr_dump dump "$WL_PID" "$img" || return 1
	cr_restore_detached restore "$img" || return 1
	grep -q "$SQ/db-shm" "/proc/$WL_PID/maps" || { REASON="the restored sqlite3 does not map $SQ/db-shm"; return 1; }
	expect_locked_out "after restore" || return 1
	out=$(timeout 10 sqlite3 "$SQ/db" "SELECT group_concat(x) FROM t" 2>&1)
	[ "$out" = "1,2,3" ] || { REASON="a reader during the restored transaction sees '$out', want 1,2,3"; return 1; }
	commit_and_check
}

# ---- refused by the dump --------------------------------------------------------

refuse_variant() {
	local variant=$1
	shift
	wl_start w_locks "$variant" || return 1
	expect_refused_then_pass "$WL_PID" "$@"
}

PY_OWN_LOCKS='
import fcntl, os, random, struct, sys, time
d = sys.argv[1]
a, b = open(d + "/a", "w"), open(d + "/b", "w")
fcntl.flock(a, fcntl.LOCK_EX | fcntl.LOCK_NB)
fcntl.fcntl(b, fcntl.F_OFD_SETLK, struct.pack("hhqqi", fcntl.F_WRLCK, 0, 0, 10, 0))
tok = random.getrandbits(40)
open(d + "/ready", "w").write("%d %d" % (os.getpid(), tok))
while not os.path.exists(d + "/go"): time.sleep(0.05)
fcntl.flock(a, fcntl.LOCK_UN)
fcntl.fcntl(b, fcntl.F_OFD_SETLK, struct.pack("hhqqi", fcntl.F_UNLCK, 0, 0, 10, 0))
open(d + "/result", "w").write("PASS %d" % tok)
time.sleep(60)
'

python_own_locks() {
	local token img=$CASE_TMP/img
	py_start "$PY_OWN_LOCKS" ready || return 1
	read -r _ token < "$PY_DIR/ready"
	probe_is 1 flock "$PY_DIR/a" w || return 1
	probe_is 1 ofd "$PY_DIR/b" r 0 10 || return 1
	cr_dump dump "$PY_PID" "$img" || return 1
	cr_run restore restore -D "$img" --detach ||
		{ REASON="cr restore failed (exit $CR_STATUS): $(last_line "$CR_ERR")"; return 1; }
	wait_until 10 running_free "$PY_PID" "$PY_EXE" || { REASON="restored python3: $(describe_pid "$PY_PID")"; return 1; }
	probe_is 1 flock "$PY_DIR/a" w || return 1
	probe_is 1 ofd "$PY_DIR/b" r 0 10 || return 1
	probe_is 0 ofd "$PY_DIR/b" w 10 5 || return 1
	touch "$PY_DIR/go"
	wait_until 15 test -e "$PY_DIR/result" || { REASON="no result from python3: $(tail -n 3 "$PY_DIR/out")"; return 1; }
	[ "$(cat "$PY_DIR/result")" = "PASS $token" ] || { REASON="python3 reports: $(cat "$PY_DIR/result")"; return 1; }
	probe_is 0 flock "$PY_DIR/a" w && probe_is 0 ofd "$PY_DIR/b" w 0 10
}

# python3 mapping a file with libc's mmap (python's mmap keeps an fd).
PY_MAP='
import ctypes, fcntl, os, random, sys, time
c = ctypes.CDLL("libc.so.6", use_errno=True)
c.mmap.restype = ctypes.c_void_p
c.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_long]
def mapped(fd):
    addr = c.mmap(None, 4096, 3, 1, fd, 0)   # PROT_READ|PROT_WRITE, MAP_SHARED
    if addr in (None, ctypes.c_void_p(-1).value):
        sys.exit("mmap: %d" % ctypes.get_errno())
    return addr
d = sys.argv[1]
tok = random.getrandbits(40)
'

# A flock taken through a mapped file whose fd is closed, and whose taker
# exits: its forked child holds the lock through the mapping alone.
PY_ORPHAN_FLOCK=$PY_MAP'
fd = os.open(d + "/a", os.O_RDWR | os.O_CREAT, 0o600)
os.ftruncate(fd, 4096)
addr = mapped(fd)
fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
os.close(fd)
locker = os.getpid()
if os.fork() != 0:
    os._exit(0)
while os.getppid() == locker:
    time.sleep(0.01)
ctypes.memmove(addr, b"hello", 5)
open(d + "/ready", "w").write("%d %d" % (os.getpid(), tok))
while not os.path.exists(d + "/go"): time.sleep(0.05)
ok = ctypes.string_at(addr, 5) == b"hello"
c.munmap(ctypes.c_void_p(addr), 4096)
open(d + "/result", "w").write("%s %d" % ("PASS" if ok else "LOST", tok))
time.sleep(60)
'

# Two read flocks on one file: one through an fd, one through a mapping
# of another description whose fd is closed.  At "go" the fd is closed:
# the mapping's lock must still be held.
PY_TWO_FLOCKS=$PY_MAP'
a = os.open(d + "/a", os.O_RDWR | os.O_CREAT, 0o600)
os.ftruncate(a, 4096)
fcntl.flock(a, fcntl.LOCK_SH | fcntl.LOCK_NB)
b = os.open(d + "/a", os.O_RDWR)
addr = mapped(b)
fcntl.flock(b, fcntl.LOCK_SH | fcntl.LOCK_NB)
os.close(b)
open(d + "/ready", "w").write("%d %d" % (os.getpid(), tok))
while not os.path.exists(d + "/go"): time.sleep(0.05)
os.close(a)
open(d + "/closed", "w").write("%d" % tok)
while not os.path.exists(d + "/go2"): time.sleep(0.05)
c.munmap(ctypes.c_void_p(addr), 4096)
open(d + "/result", "w").write("PASS %d" % tok)
time.sleep(60)
'

# The number of FLOCK lines of /proc/locks on FILE's inode.
flock_count() {
	local ino
	ino=$(stat -c %i "$1") || return 1
	awk -v ino="$ino" '$2 == "FLOCK" { split($6, f, ":"); if (f[3] == ino) n++ } END { print n + 0 }' /proc/locks
}

python_orphan_flock() {
	local pid token img=$CASE_TMP/img
	py_start "$PY_ORPHAN_FLOCK" ready   # fails reading the exe of the locker, gone by then
	[ -e "$PY_DIR/ready" ] || return 1
	read -r pid token < "$PY_DIR/ready"
	track_pid "$pid"
	PY_EXE=$(readlink /proc/"$pid"/exe)
	[ ! -d /proc/"$PY_PID" ] || [ "$(awk '{print $3}' /proc/"$PY_PID"/stat)" = Z ] ||
		{ REASON="the locker $PY_PID has not exited"; return 1; }
	probe_is 1 flock "$PY_DIR/a" w || return 1
	cr_dump dump "$pid" "$img" || return 1
	probe_is 0 flock "$PY_DIR/a" w || return 1
	cr_run restore restore -D "$img" --detach ||
		{ REASON="cr restore failed (exit $CR_STATUS): $(last_line "$CR_ERR")"; return 1; }
	wait_until 10 running_free "$pid" "$PY_EXE" || { REASON="restored python3: $(describe_pid "$pid")"; return 1; }
	probe_is 1 flock "$PY_DIR/a" w || return 1
	touch "$PY_DIR/go"
	wait_until 15 test -e "$PY_DIR/result" || { REASON="no result from python3: $(tail -n 3 "$PY_DIR/out")"; return 1; }
	[ "$(cat "$PY_DIR/result")" = "PASS $token" ] || { REASON="python3 reports: $(cat "$PY_DIR/result")"; return 1; }
	probe_is 0 flock "$PY_DIR/a" w
}

python_two_flocks() {
	local token img=$CASE_TMP/img
	py_start "$PY_TWO_FLOCKS" ready || return 1
	read -r _ token < "$PY_DIR/ready"
	[ "$(flock_count "$PY_DIR/a")" = 2 ] || { REASON="$(flock_count "$PY_DIR/a") flocks before the dump, not 2"; return 1; }
	cr_dump dump "$PY_PID" "$img" || return 1
	cr_run restore restore -D "$img" --detach ||
		{ REASON="cr restore failed (exit $CR_STATUS): $(last_line "$CR_ERR")"; return 1; }
	wait_until 10 running_free "$PY_PID" "$PY_EXE" || { REASON="restored python3: $(describe_pid "$PY_PID")"; return 1; }
	[ "$(flock_count "$PY_DIR/a")" = 2 ] || { REASON="$(flock_count "$PY_DIR/a") flocks after restore, not 2"; return 1; }
	touch "$PY_DIR/go"
	wait_until 15 test -e "$PY_DIR/closed" || { REASON="python3 did not close its fd: $(tail -n 3 "$PY_DIR/out")"; return 1; }
	probe_is 1 flock "$PY_DIR/a" w || { REASON="the mapping's read flock is gone once the fd is closed: $REASON"; return 1; }
	touch "$PY_DIR/go2"
	wait_until 15 test -e "$PY_DIR/result" || { REASON="no result from python3: $(tail -n 3 "$PY_DIR/out")"; return 1; }
	[ "$(cat "$PY_DIR/result")" = "PASS $token" ] || { REASON="python3 reports: $(cat "$PY_DIR/result")"; return 1; }
	probe_is 0 flock "$PY_DIR/a" w
}

JAVA_SRC='
import java.nio.file.*;
import java.util.concurrent.atomic.AtomicLong;
public class Hold {
  public static void main(String[] a) throws Exception {
    Path d = Paths.get(a[0]);
    long tok = new java.util.Random().nextLong() & 0xffffffffffL;
    AtomicLong n = new AtomicLong();
    Thread t = new Thread(() -> { while (true) { n.incrementAndGet(); try { Thread.sleep(5); } catch (InterruptedException e) { return; } } });
    t.setDaemon(true); t.start();
    Files.writeString(d.resolve("ready"), ProcessHandle.current().pid() + " " + tok);
    while (!Files.exists(d.resolve("go"))) Thread.sleep(20);
    long before = n.get(); Thread.sleep(100);
    Files.writeString(d.resolve("result"), (n.get() > before ? "PASS " : "STALLED ") + tok);
    while (true) Thread.sleep(1000);
  }
}'

# The FLOCK line of /proc/locks on FILE's inode, its pid field.
flock_holder() {
	local ino
	ino=$(stat -c %i "$1") || return 1
	awk -v ino="$ino" '$2 == "FLOCK" && $4 == "WRITE" { split($6, f, ":"); if (f[3] == ino) print $5 }' /proc/locks
}

java_hsperfdata() {
	local dir=$CASE_TMP/java img=$CASE_TMP/img token perf result
	command -v java >/dev/null || { REASON="java is not installed (make deps)"; return 1; }
	mkdir -p "$dir"
	printf '%s\n' "$JAVA_SRC" > "$dir/Hold.java"
	real_start "$dir/out" "$dir" java java -Xmx64m -Xss512k "$dir/Hold.java" "$dir" || return 1
	wait_until 60 test -s "$dir/ready" || { REASON="java did not get ready: $(cat "$dir/out.err")"; return 1; }
	read -r _ token < "$dir/ready"
	perf=/tmp/hsperfdata_$(id -un)/$WL_PID
	[ "$(flock_holder "$perf")" = "$WL_PID" ] || { REASON="no flock of $WL_PID on $perf: $(grep FLOCK /proc/locks)"; return 1; }
	[ -z "$(ls -l /proc/"$WL_PID"/fd | grep -F "$perf")" ] || { REASON="java holds an fd on $perf"; return 1; }
	cr_dump dump "$WL_PID" "$img" || return 1
	cr_restore_detached restore "$img" || return 1
	[ "$(flock_holder "$perf")" = "$WL_PID" ] || { REASON="after restore, no flock of $WL_PID on $perf: $(grep FLOCK /proc/locks)"; return 1; }
	! flock -n "$perf" true || { REASON="flock -n $perf succeeds: the lock is not held"; return 1; }
	touch "$dir/go"
	wait_until 15 test -s "$dir/result" || { REASON="no result from java: $(cat "$dir/out.err")"; return 1; }
	result=$(cat "$dir/result")
	[ "$result" = "PASS $token" ] || { REASON="java reports: $result (token $token)"; return 1; }
}

# Dumping only flock's child: its fd's description, with the lock on it, is
# shared with flock, which stays outside.
refuse_shared_outside() {
	start_flock_command || return 1
	expect_refused "$SLEEP_PID" "$CASE_TMP/img" "flock" "outside the dump" || return 1
	mentions_number "$CR_ERR" "$WL_PID" || { REASON="the error does not name flock's pid $WL_PID: $(last_line "$CR_ERR")"; return 1; }
	running_free "$SLEEP_PID" "$SLEEP_EXE" || { REASON="after the refused dump: $(describe_pid "$SLEEP_PID")"; return 1; }
	! flock_free "$FILE" || { REASON="after the refused dump the lock is gone"; return 1; }
}

run_case control_locks case_control w_locks
run_case sabotage_locks_posix case_sabotaged posix "(posix read 0-9)" w_locks
run_case sabotage_locks_flock case_sabotaged flock "(flock)" w_locks
run_case sabotage_locks_ofd case_sabotaged ofd "(ofd read 200-249)" w_locks
run_case sabotage_locks_child case_sabotaged child "(child posix)" w_locks
run_case roundtrip_locks roundtrip_locks
run_case leave_running_locks leave_running_locks
run_case twice_locks case_twice w_locks
run_case control_locks_blocked case_control w_locks blocked
run_case sabotage_locks_blocked case_sabotaged release "(blocked)" w_locks blocked
run_case blocked_waiters case_roundtrip w_locks blocked
run_case restore_conflict restore_conflict
run_case flock_command flock_command
run_case sqlite_transaction sqlite_transaction
run_case sqlite_wal sqlite_wal
run_case refuse_lease refuse_variant lease "lease"
run_case mapped_lock case_roundtrip w_locks mapped
run_case python_own_locks python_own_locks
run_case maponly_roundtrip case_roundtrip w_locks maponly
run_case maponly_twice case_twice w_locks maponly
run_case java_hsperfdata java_hsperfdata
run_case python_orphan_flock python_orphan_flock
run_case python_two_flocks python_two_flocks
run_case refuse_shared_outside refuse_shared_outside
finish_tests
