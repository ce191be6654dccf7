#!/usr/bin/env bash
# t_maps: mappings of the kernel's memory objects come back exactly, and an
# object several processes map is ONE object again: w_maps KIND checks its
# contents after restore, and, where a child maps the object too, that a
# write by each after restore is seen by the other (and that a kept fd on a
# memfd or deleted file is that object: a write through it shows in the
# mapping).  Or the dump refuses the mapping by name and the tree runs on.
#
#   <kind>_control    w_maps KIND without cr: its checks pass
#   <kind>_roundtrip  dump, restore, check (see w_maps.c for the kinds:
#                     memfd shared, closed, private; System V segments kept,
#                     removed, attached separately; /dev/shm files, kept
#                     and unlinked; /dev/zero shared and private; a deleted
#                     file mapped shared and private, with and without its
#                     fd; a guard region; no vdso)
#   <kind>_twice      two hops
#   <kind>_new_pidns  restored with --new-pidns
#   deleted_exe_*     w_maps run from a copy that is deleted while it runs
#   python_deleted    python3 (Debian's, unmodified) copied, started and
#                     deleted; its state (a token, a counter, a dict) and
#                     its executable come back
#   python_shm        python3 multiprocessing.shared_memory: a segment in
#                     /dev/shm that a forked child attaches by name; after
#                     restore each sees the other's writes; then the same
#                     with the segment unlinked before the dump
#   python_sem_open   python3 multiprocessing with the spawn start method:
#                     a Lock (held) and a Semaphore are named POSIX
#                     semaphores, which glibc's sem_open makes under a
#                     temporary name, maps and links under the real one
#                     (maps says "sem.XXXXXX (deleted)").  After restore
#                     the mappings are of the same files (by their names
#                     now): a process outside opens them by name, finds the
#                     lock held and, once python3 released it, takes it,
#                     which python3 then sees; the semaphore's count is
#                     shared too.  Before, cr dump refused: "still linked
#                     under another name".
#   postgres          Debian's postgres on a unix socket: after restore the
#                     same processes answer a client, with the table
#   hugetlb_*         huge pages reserved for the test: MAP_HUGETLB private
#                     and shared, a MFD_HUGETLB memfd, a SHM_HUGETLB segment;
#                     a restore without free huge pages fails before it
#                     makes any process
#   aio_roundtrip     an aio context: a read through it after restore
#   refused_*         refused at dump, by name: an fd on a hugetlb memfd,
#                     part of a System V
#                     segment, a memfd mapped by a process outside the dump
source "$(dirname "$0")/lib.sh"

# refused KIND WHAT...: the dump of w_maps KIND fails naming the pid and
# each WHAT; the workload runs on and passes.
refused() {
	local kind=$1
	shift
	wl_start w_maps "$kind" || return 1
	expect_refused_then_pass "$WL_PID" "$@"
}

# A memfd mapped by the parent and the child; the child alone is dumped.
refused_outside() {
	local child
	wl_start w_maps memfd || return 1
	read -r child < "$WL_DIR/child"
	expect_refused "$child" "$CASE_TMP/img" "pid $child" "outside the dump" || return 1
	running_free "$child" "$WL_EXE" || { REASON="after the refused dump: $(describe_pid "$child")"; return 1; }
	wl_trigger || return 1
	wl_expect_pass || return 1
	wl_await_exit
}

# Hugetlb cases need huge pages reserved: a few, given back at the end.
HUGE_BEFORE=$(cat /proc/sys/vm/nr_hugepages)
huge_reserve() {
	[ "$(cat /proc/sys/vm/nr_hugepages)" -ge 4 ] || echo 4 > /proc/sys/vm/nr_hugepages
	[ "$(awk '/^HugePages_Free:/ {print $2}' /proc/meminfo)" -ge 2 ] ||
		{ REASON="no huge pages could be reserved"; return 1; }
}
refused_huge() {
	huge_reserve || return 1
	refused "$@"
}
huge_case() {
	huge_reserve || return 1
	"$@"
}

# --new-pidns: the objects are made, and the files made again, by processes
# of a fresh pid namespace.
new_pidns() {
	local img=$CASE_TMP/img child
	wl_start w_maps "$1" || return 1
	read -r child < "$WL_DIR/child"
	cr_dump dump "$WL_PID" "$img" --leave-running || return 1
	kill -9 "$WL_PID" "$child"
	wait_until 5 pid_gone "$child" || { REASON="child $child did not go"; return 1; }
	restore_new_pidns_and_pass "$img"
}

# The original left running holds its huge page and none is free: the
# restore fails before any process exists, saying what it needs.
hugetlb_no_pages() {
	local img=$CASE_TMP/img reserved
	huge_reserve || return 1
	wl_start w_maps hugetlb_shared || return 1
	cr_dump dump "$WL_PID" "$img" --leave-running || return 1
	reserved=$(cat /proc/sys/vm/nr_hugepages)
	echo 1 > /proc/sys/vm/nr_hugepages
	cr_run restore restore -D "$img" --detach --new-pidns   # the original keeps its pids
	echo "$reserved" > /proc/sys/vm/nr_hugepages
	[ "$CR_STATUS" != 0 ] || { REASON="the restore succeeded without a free huge page"; return 1; }
	grep -q "needs 1 huge pages of 2048 kB, and 0 are free" "$CR_ERR" ||
		{ REASON="the restore says: $(last_line "$CR_ERR")"; return 1; }
	running_free "$WL_PID" "$WL_EXE" || { REASON="the original: $(describe_pid "$WL_PID")"; return 1; }
	wl_trigger || return 1
	wl_expect_pass || return 1
	wl_await_exit
}

# ---- a binary deleted while it runs -------------------------------------------

# deleted_exe_start: w_maps plain, run from a copy that is then deleted.
deleted_exe_start() {
	mkdir -p "$CASE_TMP/bin"
	cp "$WL/w_maps" "$CASE_TMP/bin/w_maps"
	WL=$CASE_TMP/bin wl_start w_maps plain || return 1
	rm "$CASE_TMP/bin/w_maps"
	WL_EXE="$WL_EXE (deleted)"
}

deleted_exe_roundtrip() {
	local img=$CASE_TMP/img
	deleted_exe_start || return 1
	cr_dump dump "$WL_PID" "$img" || return 1
	[ ! -e "$CASE_TMP/bin/w_maps" ] || { REASON="the dump left the deleted binary in place"; return 1; }
	cr_restore_detached restore "$img" || return 1
	[ ! -e "$CASE_TMP/bin/w_maps" ] || { REASON="the restore left the binary linked"; return 1; }
	wl_trigger || return 1
	wl_expect_pass || return 1
	wl_await_exit
}

deleted_exe_twice() {
	local img1=$CASE_TMP/img1 img2=$CASE_TMP/img2
	deleted_exe_start || return 1
	cr_dump dump1 "$WL_PID" "$img1" || return 1
	cr_restore_detached restore1 "$img1" || return 1
	cr_dump dump2 "$WL_PID" "$img2" || return 1
	cr_restore_detached restore2 "$img2" || return 1
	wl_trigger || return 1
	wl_expect_pass || return 1
	wl_await_exit
}

# ---- python3 --------------------------------------------------------------------

# A copy of Debian's python3, deleted once it runs: its state and its
# executable ("... (deleted)") come back, and it can still import a module
# it had not loaded (the standard library is found as before).
PY_DELETED='
import os, sys, time
d = sys.argv[1]
token = os.urandom(8).hex()
state = {"count": 0, "items": [token[i:i + 2] for i in range(0, 16, 2)]}
with open(d + "/ready.tmp", "w") as f: f.write("%d %s\n" % (os.getpid(), token))
os.rename(d + "/ready.tmp", d + "/ready")
while not os.path.exists(d + "/go"):
    state["count"] += 1
    time.sleep(0.01)
bad = []
if "".join(state["items"]) != token: bad.append("state lost")
if state["count"] < 1: bad.append("counter lost")
exe = os.readlink("/proc/self/exe")
if exe != d + "/python3 (deleted)": bad.append("exe is %s" % exe)
import json, decimal   # not loaded before
if json.loads(json.dumps({"t": token}))["t"] != token: bad.append("json")
res = "PASS %s\n" % token if not bad else "FAIL %s: %s\n" % (token, "; ".join(bad))
with open(d + "/result.tmp", "w") as f: f.write(res)
os.rename(d + "/result.tmp", d + "/result")
'

python_deleted() {
	local token
	PY_DIR=$CASE_TMP/py
	mkdir -p "$PY_DIR"
	cp /usr/bin/python3 "$PY_DIR/python3" || { REASON="no /usr/bin/python3"; return 1; }
	CASE_LOGS+=("$PY_DIR/out")
	( clean_exec "$PY_DIR/python3" -c "$PY_DELETED" "$PY_DIR" ) </dev/null >"$PY_DIR/out" 2>&1 &
	PY_PID=$!
	disown "$PY_PID"
	track_pid "$PY_PID"
	wait_until 10 test -e "$PY_DIR/ready" || { REASON="python3 did not get ready: $(tail -n 3 "$PY_DIR/out")"; return 1; }
	rm "$PY_DIR/python3"
	PY_EXE="$PY_DIR/python3 (deleted)"
	read -r _ token < "$PY_DIR/ready"
	py_roundtrip "$token"
}

# multiprocessing.shared_memory: the parent creates a segment in /dev/shm
# and writes into it; a child forked after attaches it by name (a mapping
# of its own); after restore the parent writes, the child must see it and
# answer, and both see the data from before.  python_shm True unlinks the
# segment before ready (the mappings alone hold it).
PY_SHM='
import os, sys, time
from multiprocessing import shared_memory, resource_tracker
d, unlink = sys.argv[1], UNLINK
token = os.urandom(8).hex().encode()
shm = shared_memory.SharedMemory(create=True, size=64 * 1024)
name = shm.name
resource_tracker.unregister(shm._name, "shared_memory")   # no tracker process
shm.buf[0:16] = token
def wait(off, secs):
    end = time.monotonic() + secs
    while shm.buf[off] == 0:
        if time.monotonic() > end: return False
        time.sleep(0.005)
    return True
child = os.fork()
if child == 0:
    other = shared_memory.SharedMemory(name=name)
    resource_tracker.unregister(other._name, "shared_memory")
    other.buf[4096:4096 + 16] = token
    while other.buf[8192] == 0: time.sleep(0.005)
    ok = bytes(other.buf[0:16]) == token and bytes(other.buf[8192:8192 + 16]) == token[::-1]
    other.buf[12288:12288 + 2] = b"ok" if ok else b"no"
    os._exit(0)
wait(4096, 10)
if unlink: shm.unlink()
with open(d + "/ready.tmp", "w") as f: f.write("%d %d %s\n" % (os.getpid(), child, token.decode()))
os.rename(d + "/ready.tmp", d + "/ready")
while not os.path.exists(d + "/go"): time.sleep(0.01)
bad = []
if bytes(shm.buf[0:16]) != token: bad.append("own data lost")
if bytes(shm.buf[4096:4096 + 16]) != token: bad.append("the child data from before is not seen")
shm.buf[8192:8192 + 16] = token[::-1]
if not wait(12288, 5):
    bad.append("the child never answered (not the same memory?)")
    os.kill(child, 9)
elif bytes(shm.buf[12288:12290]) != b"ok": bad.append("the child did not see the parent data")
os.waitpid(child, 0)
exists = os.path.exists("/dev/shm/" + name)
if exists == unlink: bad.append("/dev/shm/%s %s" % (name, "is back" if exists else "is gone"))
if not unlink: shm.unlink()
res = "PASS %s\n" % token.decode() if not bad else "FAIL %s: %s\n" % (token.decode(), "; ".join(bad))
with open(d + "/result.tmp", "w") as f: f.write(res)
os.rename(d + "/result.tmp", d + "/result")
'

python_shm() {
	local child token
	py_start "${PY_SHM//UNLINK/$1}" ready || return 1
	read -r _ child token < "$PY_DIR/ready"
	track_pid "$child"
	py_roundtrip "$token"
}

PY_SEM='
import multiprocessing as mp, os, random, sys, time
if __name__ == "__main__":
    d = sys.argv[1]
    ctx = mp.get_context("spawn")
    lk, sem = ctx.Lock(), ctx.Semaphore(5)
    sem.acquire(); sem.acquire()
    lk.acquire()
    tok = random.getrandbits(40)
    open(d + "/names", "w").write(lk._semlock.name + " " + sem._semlock.name)
    open(d + "/ready", "w").write("%d %d" % (os.getpid(), tok))
    while not os.path.exists(d + "/go"): time.sleep(0.05)
    lk.release(); sem.release()
    while not os.path.exists(d + "/outside"): time.sleep(0.05)
    ok = not lk.acquire(False) and sem.get_value() == 3
    open(d + "/result", "w").write(("PASS %d" if ok else "FAIL %d (lock free or count %d)") % ((tok,) if ok else (tok, sem.get_value())))
    while True: time.sleep(1)
'

# The semaphores of python_sem_open, opened by name from outside the tree:
# the lock must be held; once python3 releases it (go), it is taken here,
# the semaphore decremented once, and python3 told (outside).
PY_SEM_OUTSIDE='
import _multiprocessing as m, os, sys, time
d, lname, sname = sys.argv[1:4]
lk, sem = m.SemLock._rebuild(0, 1, 1, lname), m.SemLock._rebuild(0, 1, 5, sname)
if lk.acquire(False): sys.exit("the restored lock is free outside")
if sem._get_value() != 3: sys.exit("the semaphore counts %d outside" % sem._get_value())
open(d + "/go", "w").close()
t = time.time()
while not lk.acquire(False):
    if time.time() - t > 10: sys.exit("the lock python3 released stays taken outside")
    time.sleep(0.05)
sem.acquire()
open(d + "/outside", "w").close()
time.sleep(30)
'

python_sem_open() {
	local token img=$CASE_TMP/img result lname sname outside
	py_start "$PY_SEM" ready || return 1
	read -r _ token < "$PY_DIR/ready"
	read -r lname sname < "$PY_DIR/names"
	for p in $(descendants "$PY_PID"); do track_pid "$p"; done
	grep -q 'sem\..* (deleted)$' /proc/"$PY_PID"/maps || { REASON="python3 maps no sem_open semaphore"; return 1; }
	cr_dump dump "$PY_PID" "$img" || return 1
	cr_run restore restore -D "$img" --detach ||
		{ REASON="cr restore failed (exit $CR_STATUS): $(last_line "$CR_ERR")"; return 1; }
	wait_until 10 running_free "$PY_PID" "$PY_EXE" || { REASON="restored python3: $(describe_pid "$PY_PID")"; return 1; }
	grep -q "/dev/shm/sem.${lname#/}\$" /proc/"$PY_PID"/maps || { REASON="the lock is not mapped by its name"; return 1; }
	( clean_exec python3 -c "$PY_SEM_OUTSIDE" "$PY_DIR" "$lname" "$sname" ) </dev/null >"$PY_DIR/outside.out" 2>&1 &
	outside=$!
	track_pid "$outside"
	CASE_LOGS+=("$PY_DIR/outside.out")
	wait_until 15 test -e "$PY_DIR/result" ||
		{ REASON="no result: $(cat "$PY_DIR/outside.out") $(tail -n 3 "$PY_DIR/out")"; return 1; }
	result=$(cat "$PY_DIR/result")
	[ "$result" = "PASS $token" ] || { REASON="python3 reports: $result"; return 1; }
}

# ---- postgres ---------------------------------------------------------------------

# psql ARGS...: a query as postgres, on the case's unix socket.
pg_sql() {
	runuser -u postgres -- psql -X -q -t -A -h "$PG_DIR" -d postgres "$@" 2>&1
}

# The background processes' pids, sorted.
pg_children() {
	ps -o pid= --ppid "$1" | tr -d ' ' | sort -n | tr '\n' ' '
}

# postgres (Debian's, unmodified): initdb, a table, a server on a unix socket
# only (System V shared memory kept, /dev/shm segments, shared anonymous
# memory; its processes linked by pipes).  After restore the same
# postmaster and background processes (pids, start time) answer a client:
# the table is there, a row can be added.
postgres_case() {
	local bin img=$CASE_TMP/img pm kids start token=$RANDOM$RANDOM out
	bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | tail -n 1)
	[ -x "$bin/postgres" ] || { REASON="postgres is not installed (make deps)"; return 1; }
	PG_DIR=$CASE_TMP/pg
	mkdir -p "$PG_DIR" && chown postgres "$PG_DIR" && chmod a+x "$TMP" "$CASE_TMP"   # postgres reaches it
	runuser -u postgres -- "$bin/initdb" -D "$PG_DIR/data" -A trust >"$PG_DIR/initdb.log" 2>&1 ||
		{ REASON="initdb failed: $(tail -n 2 "$PG_DIR/initdb.log")"; return 1; }
	CASE_LOGS+=("$PG_DIR/log")
	( clean_exec setsid setpriv --reuid=postgres --regid=postgres --init-groups -- "$bin/postgres" \
		-D "$PG_DIR/data" -k "$PG_DIR" -c listen_addresses= ) </dev/null >"$PG_DIR/log" 2>&1 &
	pm=$!
	disown "$pm"
	track_pid "$pm"
	wait_until 20 test -S "$PG_DIR/.s.PGSQL.5432" || { REASON="postgres did not start"; return 1; }
	out=$(pg_sql -c "create table t(x text); insert into t values ('$token')") ||
		{ REASON="psql: $out"; return 1; }
	start=$(pg_sql -c "select pg_postmaster_start_time()")
	kids=$(pg_children "$pm")
	grep -q SYSV /proc/"$pm"/maps || { REASON="postgres maps no System V segment"; return 1; }
	cr_dump dump "$pm" "$img" || return 1
	cr_run restore restore -D "$img" --detach || { REASON="cr restore failed: $(last_line "$CR_ERR")"; return 1; }
	out=$(pg_sql -c "select x from t; insert into t values ('after'); select count(*) from t;")
	[ "$out" = "$token"$'\n'"2" ] || { REASON="after restore, psql says: $out"; return 1; }
	[ "$(pg_sql -c "select pg_postmaster_start_time()")" = "$start" ] ||
		{ REASON="the postmaster started anew"; return 1; }
	[ "$(pg_children "$pm")" = "$kids" ] ||
		{ REASON="background processes $(pg_children "$pm"), before $kids"; return 1; }
	kill -INT "$pm"
	wait_until 10 pid_gone "$pm" || { REASON="postgres did not stop on SIGINT"; return 1; }
}

KINDS="memfd memfd_big memfd_closed memfd_private memfd_sealed sysv sysv_rmid sysv_late sysv_ro posix_shm posix_shm_del devzero devzero_priv
	deleted deleted_fd guard novdso"
for kind in $KINDS; do
	run_case "${kind}_control" case_control w_maps "$kind"
	run_case "${kind}_roundtrip" case_roundtrip w_maps "$kind"
done
for kind in memfd memfd_private memfd_sealed sysv sysv_rmid posix_shm_del deleted_fd novdso; do
	run_case "${kind}_twice" case_twice w_maps "$kind"
done
for kind in memfd sysv_rmid deleted_fd; do
	run_case "${kind}_new_pidns" new_pidns "$kind"
done
run_case sysv_leave_running case_leave_running w_maps sysv
run_case memfd_leave_running case_leave_running w_maps memfd
run_case deleted_exe_roundtrip deleted_exe_roundtrip
run_case deleted_exe_twice deleted_exe_twice
run_case python_deleted python_deleted
run_case python_shm python_shm False
run_case python_shm_unlinked python_shm True
run_case python_sem_open python_sem_open
run_case postgres postgres_case
for kind in hugetlb_anon hugetlb_shared hugetlb_memfd hugetlb_sysv; do
	run_case "${kind}_roundtrip" huge_case case_roundtrip w_maps "$kind"
done
run_case hugetlb_sysv_twice huge_case case_twice w_maps hugetlb_sysv
run_case hugetlb_no_pages hugetlb_no_pages
run_case refused_hugetlb_memfd_fd refused_huge hugetlb_memfd_fd "hugetlb memfd"
run_case aio_roundtrip case_roundtrip w_maps aio   # more in t_aio
run_case refused_sysv_part refused sysv_part "part of System V segment" "shmat attaches a segment whole"
run_case refused_outside refused_outside
echo "$HUGE_BEFORE" > /proc/sys/vm/nr_hugepages
for f in "$TMP"/*/w_maps.*/shmid; do   # segments of workloads killed before their end
	[ -e "$f" ] && ipcrm -m "$(cat "$f")" 2>/dev/null
done
finish_tests
