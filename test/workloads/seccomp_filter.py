#!/usr/bin/python3
# seccomp_filter.py STATE_DIR (run by test/integration/t_seccomp.sh): the
# unmodified python3 sandboxes itself with ctypes, the way a Python program
# without libseccomp would: prctl(PR_SET_NO_NEW_PRIVS), then
# prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &sock_fprog) with a filter
# that fails uname with EPERM.  It speaks the
# workload protocol (test/workloads/lib/wl.h): token and ready files, then
# on SIGUSR2 a result "PASS PID TOKEN" when os.uname() is still refused
# with EPERM and os.getpid() still works.
import ctypes, errno, os, secrets, signal, sys

PR_SET_NO_NEW_PRIVS, PR_SET_SECCOMP, SECCOMP_MODE_FILTER = 38, 22, 2
BPF_LD_W_ABS, BPF_JEQ_K, BPF_RET_K = 0x20, 0x15, 0x06
AUDIT_ARCH_X86_64, NR_UNAME = 0xC000003E, 63
SECCOMP_RET_ALLOW, SECCOMP_RET_ERRNO = 0x7FFF0000, 0x00050000

class SockFilter(ctypes.Structure):
    _fields_ = [("code", ctypes.c_ushort), ("jt", ctypes.c_ubyte), ("jf", ctypes.c_ubyte), ("k", ctypes.c_uint)]

class SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.POINTER(SockFilter))]

os.closerange(3, 65536)   # what the harness leaked: pipes cr would refuse
state = sys.argv[1]
token = secrets.randbits(64)   # only in memory: a re-run would draw another
pid = os.getpid()

def put(name, text):
    with open(os.path.join(state, name + ".tmp"), "w") as f:
        f.write(text)
    os.rename(os.path.join(state, name + ".tmp"), os.path.join(state, name))

insns = [
    (BPF_LD_W_ABS, 0, 0, 4),                    # arch
    (BPF_JEQ_K, 1, 0, AUDIT_ARCH_X86_64),
    (BPF_RET_K, 0, 0, SECCOMP_RET_ALLOW),
    (BPF_LD_W_ABS, 0, 0, 0),                    # nr
    (BPF_JEQ_K, 0, 1, NR_UNAME),
    (BPF_RET_K, 0, 0, SECCOMP_RET_ERRNO | errno.EPERM),
    (BPF_RET_K, 0, 0, SECCOMP_RET_ALLOW),
]
prog = (SockFilter * len(insns))(*[SockFilter(*i) for i in insns])
fprog = SockFprog(len(insns), prog)
libc = ctypes.CDLL(None, use_errno=True)
if libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 or \
   libc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.byref(fprog), 0, 0) != 0:
    put("result", "FAIL %d %016x: setup: prctl: %s\n" % (pid, token, os.strerror(ctypes.get_errno())))
    sys.exit(2)

def uname_refused():
    try:
        os.uname()
    except PermissionError:
        return True
    return False

if not uname_refused():
    put("result", "FAIL %d %016x: setup: uname is not refused\n" % (pid, token))
    sys.exit(2)
signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGUSR2])
put("token", "%d %016x\n" % (pid, token))
put("ready", "ready\n")
signal.sigwait([signal.SIGUSR2])
problems = []
if not uname_refused():
    problems.append("os.uname() is allowed: the seccomp filter is gone")
if os.getpid() != pid:
    problems.append("pid %d, was %d" % (os.getpid(), pid))
if problems:
    put("result", "FAIL %d %016x: %s\n" % (pid, token, "; ".join(problems)))
else:
    put("result", "PASS %d %016x\n" % (pid, token))
