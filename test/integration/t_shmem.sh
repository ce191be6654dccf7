#!/usr/bin/env bash
# t_shmem: shared anonymous memory is one object again after restore, with
# every page, and the flags of a mapping beyond its protection come back.
#
#   shmem_*         w_shmem: a parent and two children share
#                   MAP_SHARED|MAP_ANONYMOUS memory; one child wrote pages
#                   and exited before the dump (those pages live in the
#                   object only), the other writes after restore and the
#                   parent sees it (and the reverse); the parent maps the
#                   object twice.  Control, round trip, --leave-running,
#                   two hops, --new-pidns.
#   python_fork_mmap  python3 (unmodified): mmap.mmap(-1, N) shared by a
#                   parent and a child made with os.fork, and a second child
#                   that wrote a page and exited; after restore each checks
#                   the other's writes.
#   vmflags_*       w_vmflags: mlock, mlock2 MLOCK_ONFAULT, madvise advice,
#                   MAP_DROPPABLE, MAP_NORESERVE, MAP_GROWSDOWN, mseal, a
#                   guard region, and a shared file mapping that may be made
#                   writable again (and one that may not).
#   python_vmflags  python3 (unmodified): madvise through mmap.madvise,
#                   mlock and mprotect through ctypes, checked in its own
#                   smaps.
#   mmdefaults_*    w_mmdefaults: mlockall(MCL_FUTURE), with and without
#                   MCL_ONFAULT, and KSM merge-any (PR_SET_MEMORY_MERGE):
#                   settings for mappings made later, which no mapping
#                   shows; a mapping made after restore must get them.
#   python_mmdefaults  python3 (unmodified): mlockall and PR_SET_MEMORY_MERGE
#                   through ctypes; after restore a new mmap.mmap is locked
#                   on fault and mergeable.
#   refused_*       what cr cannot restore is refused by name, the tree
#                   left running and whole: memory shared with a process
#                   outside the dump, an fd on shared memory.
#   sysv_, memfd_, private_shmem_roundtrip  w_memrefuse's kinds that cr
#                   once refused and now restores (more in t_maps).
source "$(dirname "$0")/lib.sh"

# ---- w_shmem -----------------------------------------------------------------

# The images hold the object's data once, in shmem-pages.img.
shmem_images() {
	local img=$CASE_TMP/img size
	wl_start w_shmem || return 1
	cr_dump dump "$WL_PID" "$img" || return 1
	size=$(stat -c %s "$img/shmem-pages.img" 2>/dev/null)
	[ -n "$size" ] && [ "$size" -gt $((40 * 4096)) ] ||
		{ REASON="shmem-pages.img holds ${size:-no} bytes, want the object's 41+ pages of data"; return 1; }
	cr_restore_detached restore "$img" || return 1
	wl_trigger || return 1
	wl_expect_pass || return 1
	wl_await_exit
}

# --new-pidns: the objects are created and mapped in processes of a fresh
# pid namespace (their /proc/self is the host's /proc).
shmem_new_pidns() {
	local img=$CASE_TMP/img b
	wl_start w_shmem || return 1
	read -r b < "$WL_DIR/child_b"
	cr_dump dump "$WL_PID" "$img" --leave-running || return 1
	kill -9 "$WL_PID" "$b"
	wait_until 5 pid_gone "$b" || { REASON="child B $b did not go"; return 1; }
	restore_new_pidns_and_pass "$img"
}

# ---- python3 -------------------------------------------------------------------

# A parent, a child that wrote page 40 and exited, and a child that waits
# for the parent's word; the harness creates "go" after restore.
PY_FORK_MMAP='
import mmap, os, sys, time
d = sys.argv[1]
PG = 4096
m = mmap.mmap(-1, 64 * PG)
token = os.urandom(8).hex().encode()

def put(page, data): m[page * PG:page * PG + len(data)] = data
def get(page, n): return bytes(m[page * PG:page * PG + n])
def has(page, data): return get(page, len(data)) == data
def wait(page, secs):
    end = time.monotonic() + secs
    while get(page, 1) == b"\0":
        if time.monotonic() > end: return False
        time.sleep(0.005)
    return True

put(1, b"parent-before-" + token)
gone = os.fork()
if gone == 0:
    put(40, b"gone-child-" + token)   # far from the pages the parent touches: fault-around maps 16
    os._exit(0)
os.waitpid(gone, 0)
child = os.fork()
if child == 0:
    put(3, b"child-before-" + token)
    if not wait(10, 600): os._exit(3)
    ok = (has(1, b"parent-before-" + token) and has(40, b"gone-child-" + token)
          and has(11, b"parent-after-" + token))
    put(12, b"child-after-" + token)
    put(13, b"ok" if ok else b"no")
    os._exit(0)
wait(3, 10)
with open(d + "/pids.tmp", "w") as f: f.write("%d %d %s\n" % (os.getpid(), child, token.decode()))
os.rename(d + "/pids.tmp", d + "/pids")
while not os.path.exists(d + "/go"): time.sleep(0.01)
put(11, b"parent-after-" + token)
put(10, b"go")
bad = []
if not has(40, b"gone-child-" + token): bad.append("the page of the child that exited is lost")
if not has(3, b"child-before-" + token): bad.append("the child page from before is lost")
if not wait(13, 5):
    bad.append("the child never answered (memory not shared?)")
    os.kill(child, 9)
elif get(13, 2) != b"ok": bad.append("the child did not see the parent pages")
if not has(12, b"child-after-" + token): bad.append("the child page written after restore is not here")
st = os.waitpid(child, 0)[1]
if st != 0 and get(13, 1) != b"\0": bad.append("child status %d" % st)
res = "PASS %s\n" % token.decode() if not bad else "FAIL %s: %s\n" % (token.decode(), "; ".join(bad))
with open(d + "/result.tmp", "w") as f: f.write(res)
os.rename(d + "/result.tmp", d + "/result")
'

# Mappings with flags: madvise through mmap.madvise, mlock through ctypes;
# after restore each must show its flag, the locked one its Locked size, a
# child forked then must find the wipe-on-fork pages zero, and the file
# mapped read-only from an O_RDWR file must take mprotect(PROT_WRITE).
PY_VMFLAGS='
import ctypes, mmap, os, sys, time
d = sys.argv[1]
PG = 4096
libc = ctypes.CDLL(None, use_errno=True)
token = os.urandom(8).hex().encode()
regions = {}
def anon(name, pages, advice=None):
    m = mmap.mmap(-1, pages * PG, flags=mmap.MAP_PRIVATE)
    m[0:len(token)] = token
    if advice is not None: m.madvise(advice)
    regions[name] = (m, ctypes.addressof(ctypes.c_char.from_buffer(m)))
anon("dc", 2, mmap.MADV_DONTFORK)
anon("wf", 2, getattr(mmap, "MADV_WIPEONFORK", 18))   # not in every Python
anon("hg", 2, mmap.MADV_HUGEPAGE)
anon("dd", 2, mmap.MADV_DONTDUMP)
anon("mg", 2, mmap.MADV_MERGEABLE)
anon("lo", 4)
m, addr = regions["lo"]
if libc.mlock(ctypes.c_void_p(addr), 4 * PG) != 0: sys.exit("mlock: %d" % ctypes.get_errno())
with open(d + "/file", "w+b") as f:
    f.write(token + b"\0" * (PG - len(token)))
    f.flush()
    fm = mmap.mmap(f.fileno(), PG, access=mmap.ACCESS_READ)

def smaps():
    out, cur = {}, None
    for line in open("/proc/self/smaps"):
        first = line.split()[0]
        if not first.endswith(":"):
            a, b = first.split("-")
            cur = (int(a, 16), int(b, 16), line.split()[-1])
            out[cur] = {}
        else:
            out[cur][first[:-1]] = line.split(None, 1)[1].strip() if len(line.split()) > 1 else ""
    return out

def find(addr=None, path=None):
    for (a, b, p), fields in smaps().items():
        if (addr is not None and a <= addr < b) or (path is not None and p == path):
            return a, fields
    return None, {}

with open(d + "/ready.tmp", "w") as f: f.write("%d %s\n" % (os.getpid(), token.decode()))
os.rename(d + "/ready.tmp", d + "/ready")
while not os.path.exists(d + "/go"): time.sleep(0.01)
bad = []
for name, (m, addr) in regions.items():
    flags = find(addr)[1].get("VmFlags", "").split()
    if name not in flags: bad.append("%s: VmFlags %s" % (name, " ".join(flags)))
    if m[0:len(token)] != token: bad.append("%s: data lost" % name)
if find(regions["lo"][1])[1].get("Locked") != "16 kB":
    bad.append("Locked: %s" % find(regions["lo"][1])[1].get("Locked"))
fa, ff = find(path=d + "/file")
if fa is None or "mw" not in ff.get("VmFlags", "").split(): bad.append("file: VmFlags %s" % ff.get("VmFlags"))
elif libc.mprotect(ctypes.c_void_p(fa), PG, 3) != 0: bad.append("file: mprotect: errno %d" % ctypes.get_errno())
pid = os.fork()
if pid == 0:
    os._exit(0 if regions["wf"][0][0:len(token)] == b"\0" * len(token) else 1)
if os.waitpid(pid, 0)[1] != 0: bad.append("wf: a child forked after restore sees the data")
res = "PASS %s\n" % token.decode() if not bad else "FAIL %s: %s\n" % (token.decode(), "; ".join(bad))
with open(d + "/result.tmp", "w") as f: f.write(res)
os.rename(d + "/result.tmp", d + "/result")
'

python_fork_mmap() {
	local child token
	py_start "$PY_FORK_MMAP" pids || return 1
	read -r _ child token < "$PY_DIR/pids"
	track_pid "$child"
	py_roundtrip "$token"
}

python_vmflags() {
	local token
	py_start "$PY_VMFLAGS" ready || return 1
	read -r _ token < "$PY_DIR/ready"
	py_roundtrip "$token"
}

# mlockall(MCL_FUTURE | MCL_ONFAULT) and PR_SET_MEMORY_MERGE through ctypes;
# after "go", a new mapping must show both in smaps.
PY_MMDEFAULTS='
import ctypes, mmap, os, sys, time
d = sys.argv[1]
libc = ctypes.CDLL(None, use_errno=True)
if libc.mlockall(2 | 4) != 0: sys.exit("mlockall: errno %d" % ctypes.get_errno())
if libc.prctl(67, 1, 0, 0, 0) != 0: sys.exit("PR_SET_MEMORY_MERGE: errno %d" % ctypes.get_errno())
token = os.urandom(8).hex()
with open(d + "/ready.tmp", "w") as f: f.write("%d %s\n" % (os.getpid(), token))
os.rename(d + "/ready.tmp", d + "/ready")
while not os.path.exists(d + "/go"): time.sleep(0.01)
m = mmap.mmap(-1, 8 * 4096, flags=mmap.MAP_PRIVATE)  # KSM merges private memory only
addr = ctypes.addressof(ctypes.c_char.from_buffer(m))
flags = []
cur = None
for line in open("/proc/self/smaps"):
    first = line.split()[0]
    if not first.endswith(":"):
        a, b = (int(x, 16) for x in first.split("-"))
        cur = a <= addr < b
    elif cur and first == "VmFlags:":
        flags = line.split()[1:]
bad = ["new mapping lacks %s (VmFlags %s)" % (f, " ".join(flags)) for f in ("lo", "lf", "mg") if f not in flags]
if libc.prctl(68, 0, 0, 0, 0) != 1: bad.append("PR_GET_MEMORY_MERGE is not 1")
res = "PASS %s\n" % token if not bad else "FAIL %s: %s\n" % (token, "; ".join(bad))
with open(d + "/result.tmp", "w") as f: f.write(res)
os.rename(d + "/result.tmp", d + "/result")
'

python_mmdefaults() {
	local token
	py_start "$PY_MMDEFAULTS" ready || return 1
	read -r _ token < "$PY_DIR/ready"
	py_roundtrip "$token"
}

# ---- refusals ------------------------------------------------------------------

# refused PID WHAT: cr dump PID fails naming PID and WHAT; nothing is left
# behind and the workload runs on and passes.
refused() {
	expect_refused "$1" "$CASE_TMP/img" "pid $1" "$2" || return 1
	running_free "$WL_PID" "$WL_EXE" || { REASON="after the refused dump: $(describe_pid "$WL_PID")"; return 1; }
	wl_trigger || return 1
	wl_expect_pass || return 1
	wl_await_exit
}

# Child B alone: it shares the object with its parent, outside the dump.
refused_outside() {
	local b
	wl_start w_shmem || return 1
	read -r b < "$WL_DIR/child_b"
	refused "$b" "outside the dump"
}

refused_kind() {
	wl_start w_memrefuse "$1" || return 1
	refused "$WL_PID" "$2"
}

run_case shmem_control case_control w_shmem
run_case shmem_roundtrip shmem_images
run_case shmem_leave_running case_leave_running w_shmem
run_case shmem_twice case_twice w_shmem
run_case shmem_new_pidns shmem_new_pidns
run_case python_fork_mmap python_fork_mmap
run_case vmflags_control case_control w_vmflags
run_case vmflags_roundtrip case_roundtrip w_vmflags
run_case vmflags_twice case_twice w_vmflags
run_case python_vmflags python_vmflags
run_case mmdefaults_control case_control w_mmdefaults onfault
run_case mmdefaults_future case_roundtrip w_mmdefaults future
run_case mmdefaults_onfault case_roundtrip w_mmdefaults onfault
run_case mmdefaults_twice case_twice w_mmdefaults onfault
run_case python_mmdefaults python_mmdefaults
run_case refused_outside refused_outside
run_case sysv_roundtrip case_roundtrip w_memrefuse sysv
run_case memfd_roundtrip case_roundtrip w_memrefuse memfd
run_case private_shmem_roundtrip case_roundtrip w_memrefuse privshm
run_case refused_shmem_fd refused_kind shmfd "unsupported kind: shared anonymous memory"
finish_tests
