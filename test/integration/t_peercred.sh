#!/usr/bin/env bash
# t_peercred: SO_PEERCRED (and SO_PEERGROUPS) of restored unix sockets, on
# both ends, are what the kernel recorded when the connection was made,
# not the restoring process's.  python3 (unmodified Debian) holds the
# sockets; each holder reads the credentials before the dump and compares
# after restore; the main process reports PASS with its token:
#
#   pair          a child drops to uid 1000 (groups 1000, 27), makes a
#                 socketpair and forks: both ends report that child.
#   pair_dead     the same, but the child that made the pair exited before
#                 the dump (its grandchildren hold the ends; the root is a
#                 subreaper): both ends report the dead pid and uid 1001.
#   accepted      a root server accepted a client running as uid 1000: the
#                 server's end reports the client, the client's the server.
#   pending       the same, the connection not accepted yet at dump: the
#                 server accepts it after restore and sees uid 1000 and the
#                 client's pid, the client sees the server; they talk.
#   pair_nested   python3 unshares its pid namespace for its children: the
#                 first, pid 1 there, drops to uid 1001 (groups 1001, 27),
#                 makes a socketpair and forks: both ends report pid 1 of
#                 that namespace and uid 1001 (the restore makes the pair
#                 again in the namespace, as its maker).
#   pair_above    python3 makes a socketpair, forks a child that forks a
#                 grandchild, and closes both ends: the child holds one,
#                 the grandchild the other; both report python3 (the
#                 restore makes the pair in python3, before it forks).
#   pair_half     the same, but the child holds one end and the other is
#                 closed everywhere (a common pattern: a parent hands a
#                 child its end and drops its own); a send still fails
#                 with EPIPE after restore.
#   maker_above   the accepted connection of a uid 1000 client that also
#                 holds the listener, which python3 closed: the listener
#                 reports python3, which makes it at restore.
#   refused_dead_nested  the same, but the maker is pid 1's child and exits
#                 before the dump: refused (a dead maker has no pid in the
#                 tree's namespace cr can read, nor can the restore take).
#   refused_outside  a socketpair made by python3, both ends held by its
#                 child: the dump of the child is refused (the maker runs
#                 outside the dump: no restore can have its pid); the child
#                 passes after.
#   refused_maker_branch  a child makes a socketpair and passes both ends
#                 to its sibling: refused (the maker is a process the
#                 restore creates before the sibling makes the socket).
#   refused_closed_listener  the accepted connection of a uid 1000 client,
#                 its listener closed: refused (the restore would need a
#                 listener to give each end its own credentials).
#   *_control     the same without a dump.
source "$(dirname "$0")/lib.sh"

PEERCRED_PY='
import ctypes, os, socket, struct, sys, time, random
d = sys.argv[1]   # mode: set before this text
os.chmod(d, 0o777)
SO_PEERGROUPS = 59
token = "%d-%d" % (os.getpid(), random.randrange(1 << 30))
def cred(s):
    pid, uid, gid = struct.unpack("3i", s.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12))
    try:
        g = s.getsockopt(socket.SOL_SOCKET, SO_PEERGROUPS, 1024)
        groups = sorted(struct.unpack("%dI" % (len(g) // 4), g))
    except OSError as e:
        groups = str(e)
    return (pid, uid, gid, groups)
def drop(uid, groups):
    os.setgroups(groups); os.setresgid(uid, uid, uid); os.setresuid(uid, uid, uid)
def put(name, text):
    with open("%s/%s.tmp" % (d, name), "w") as f:
        f.write(text)
    os.rename("%s/%s.tmp" % (d, name), "%s/%s" % (d, name))
def wait_for(name, limit=60):
    end = time.time() + limit
    while not os.path.exists(d + "/" + name):
        if time.time() > end:
            return False
        time.sleep(0.05)
    return True
def holder(name, socks, after=None):
    # socks: (label, socket, expected or None: as before the dump)
    before = [(l, s, e if e is not None else cred(s)) for l, s, e in socks]
    put("ready." + name, repr([b[2] for b in before]))
    wait_for("go", 600)
    bad = ["%s %s: %r, wanted %r" % (name, l, cred(s), e) for l, s, e in before if cred(s) != e]
    if after is not None:
        bad += after()
    put("res." + name, "; ".join(bad) if bad else "ok")
def child(fn):
    pid = os.fork()
    if pid == 0:
        try:
            fn()
        except BaseException:
            import traceback; traceback.print_exc(); sys.stderr.flush()
        finally:
            os._exit(0)
    return pid
me = os.getpid()
names = []
if mode == "pair":
    def c():
        drop(1000, [1000, 27])
        s1, s2 = socket.socketpair()
        want = (os.getpid(), 1000, 1000, [27, 1000])
        assert cred(s1) == want, (cred(s1), want)
        child(lambda: holder("g", [("end 2", s2, want)]))
        s2.close()
        holder("c", [("end 1", s1, want)])
    child(c); names = ["c", "g"]
elif mode == "pair_dead":
    ctypes.CDLL(None).prctl(36, 1, 0, 0, 0)   # PR_SET_CHILD_SUBREAPER
    def c():
        drop(1001, [1001])
        s1, s2 = socket.socketpair()
        want = (os.getpid(), 1001, 1001, [1001])
        child(lambda: holder("g1", [("end 1", s1, want)]))
        child(lambda: holder("g2", [("end 2", s2, want)]))
    os.waitpid(child(c), 0)
    names = ["g1", "g2"]
elif mode in ("pair_nested", "pair_dead_nested"):
    if ctypes.CDLL(None, use_errno=True).unshare(0x20000000) != 0:   # CLONE_NEWPID: children in a new one
        put("result", "FAIL unshare: %d" % ctypes.get_errno()); sys.exit(1)
    def maker():
        drop(1001, [1001, 27])
        s1, s2 = socket.socketpair()
        want = (os.getpid(), 1001, 1001, [27, 1001])
        assert cred(s1) == want, (cred(s1), want)
        child(lambda: holder("g1", [("end 1", s1, want)]))
        if mode == "pair_nested":
            s1.close()
            holder("m", [("end 2", s2, want)])
            os.wait()   # pid 1: its namespace ends with it
        else:
            child(lambda: holder("g2", [("end 2", s2, want)]))
    if mode == "pair_nested":
        child(maker); names = ["m", "g1"]   # the maker is pid 1 of the namespace
    else:
        def init():
            os.waitpid(child(maker), 0)
            holder("i", [], lambda: [] if os.getpid() == 1 else ["init is pid %d" % os.getpid()])
            for n in range(3):
                try:
                    os.wait()
                except ChildProcessError:
                    break
        child(init); names = ["i", "g1", "g2"]
elif mode in ("pair_above", "pair_half"):
    # python3 makes the pair and keeps neither end: a child (and, for
    # pair_above, a grandchild) holds them; both report python3.
    s1, s2 = socket.socketpair()
    want = cred(s1)
    def c():
        if mode == "pair_half":
            s1.close()
            def broken():
                try:
                    s2.send(b"x")
                    return ["a send to the closed peer went through"]
                except BrokenPipeError:
                    return []
            holder("c", [("end 2", s2, want)], broken)
            return
        child(lambda: holder("g", [("end 2", s2, want)], lambda: [] if s2.send(b"y") == 1 else ["send"]))
        s2.close()
        holder("c", [("end 1", s1, want)], lambda: [] if s1.recv(1) == b"y" else ["recv"])
    child(c); s1.close(); s2.close()
    names = ["c"] if mode == "pair_half" else ["c", "g"]
elif mode == "maker_branch":
    # a child makes a socketpair and passes both ends to its sibling
    # (SCM_RIGHTS), which alone holds them: the maker is in another branch.
    p1, p2 = socket.socketpair()
    def a():
        s1, s2 = socket.socketpair()
        socket.send_fds(p1, [b"x"], [s1.fileno(), s2.fileno()])
        s1.close(); s2.close()
        holder("a", [])
    def b():
        _, fds, _, _ = socket.recv_fds(p2, 1, 2)
        s1, s2 = socket.socket(fileno=fds[0]), socket.socket(fileno=fds[1])
        holder("b", [("end 1", s1, None), ("end 2", s2, None)])
    child(a); child(b)
    names = ["a", "b"]
elif mode == "outside":
    s1, s2 = socket.socketpair()
    want = cred(s1)
    def c():
        put("dumpme", str(os.getpid()))
        holder("c", [("end 1", s1, want), ("end 2", s2, want)])
    child(c); s1.close(); s2.close()
    names = ["c"]
elif mode in ("accepted", "pending", "closed_listener", "maker_above"):
    path = d + "/srv.sock"
    l = socket.socket(socket.AF_UNIX)
    l.bind(path); os.chmod(path, 0o777); l.listen(4)
    mine = cred(l)
    def c():
        if mode == "closed_listener":
            l.close()
        drop(1000, [1000])
        s = socket.socket(socket.AF_UNIX)
        s.connect(path)
        put("client", str(os.getpid()))
        def talk():
            s.settimeout(10)
            got = s.recv(2)
            return [] if got == b"hi" else ["client read %r" % got]
        holder("c", [("client end", s, (me, 0, 0, mine[3]))], talk)
    cpid = child(c)
    wait_for("client")
    names = ["c"]
    if mode in ("closed_listener", "maker_above"):
        a, _ = l.accept()
        l.close()
        child(lambda: holder("p", [("accepted end", a, (cpid, 1000, 1000, [1000]))],
                             lambda: [] if a.send(b"hi") == 2 else ["send"]))
        a.close()
        names.append("p")
    elif mode == "accepted":
        a, _ = l.accept()
        child(lambda: holder("p", [("accepted end", a, (cpid, 1000, 1000, [1000])), ("listener", l, None)],
                             lambda: [] if a.send(b"hi") == 2 else ["send"]))
        a.close()
        names.append("p")
    else:
        def late():
            a, _ = l.accept()
            a.send(b"hi")
            return [] if cred(a) == (cpid, 1000, 1000, [1000]) else ["accepted after restore: %r, wanted %r" % (cred(a), (cpid, 1000, 1000, [1000]))]
        child(lambda: holder("p", [("listener", l, None)], late))
        names.append("p")
for n in names:
    if not wait_for("ready." + n, 10):
        put("result", "FAIL %s never ready" % n); sys.exit(1)
put("token", token)
open(d + "/ready", "w").close()
wait_for("go", 600)
bad = []
for n in names:
    if not wait_for("res." + n, 15):
        bad.append(n + ": no result")
    elif open(d + "/res." + n).read() != "ok":
        bad.append(open(d + "/res." + n).read())
put("result", "PASS " + token if not bad else "FAIL " + " | ".join(bad))
for n in range(len(names) + 2):
    try:
        os.wait()
    except ChildProcessError:
        break
'

# Without a dump: "go", and python3 passes with its token.
pc_go_pass() {
	touch "$PY_DIR/go"
	wait_until 15 test -e "$PY_DIR/result" || { REASON="no result from python3"; return 1; }
	[ "$(cat "$PY_DIR/result")" = "PASS $(cat "$PY_DIR/token")" ] || { REASON="python3 reports: $(cat "$PY_DIR/result")"; return 1; }
}

# pc_case MODE yes|no: PEERCRED_PY in MODE until DIR/ready, then (yes)
# dump, restore and "go": the result must be PASS and the token drawn
# before the dump.
pc_case() {
	local mode=$1 dump=$2
	chmod o+x "$TMP" "$CASE_TMP"   # the clients run as uid 1000 and 1001
	py_start "mode = '$mode'
$PEERCRED_PY" ready || return 1
	[ "$dump" = no ] || { py_roundtrip "$(cat "$PY_DIR/token")"; return; }
	pc_go_pass
}

# refused MODE WHOM WORDS...: the dump of WHOM (main: python3, else the
# pid in DIR/dumpme) is refused saying WORDS; python3 passes after.
refused() {
	local mode=$1 whom=$2 pid
	shift 2
	chmod o+x "$TMP" "$CASE_TMP"
	py_start "mode = '$mode'
$PEERCRED_PY" ready || return 1
	pid=$PY_PID
	[ "$whom" = main ] || pid=$(cat "$PY_DIR/dumpme")
	expect_refused "$pid" "$CASE_TMP/img" "unix socket" "${@//@PY_PID@/$PY_PID}" || return 1
	pc_go_pass
}

for mode in pair pair_dead accepted pending pair_above pair_half maker_above; do
	run_case "${mode}_control" pc_case "$mode" no
	run_case "$mode" pc_case "$mode" yes
done
run_case pair_nested_control pc_case pair_nested no
run_case pair_nested pc_case pair_nested yes
run_case refused_dead_nested refused pair_dead_nested main "made by pid" "which is gone, in a tree with a pid namespace of its own"
run_case refused_outside refused outside child "made by pid @PY_PID@" "outside the dump and running"
run_case refused_maker_branch refused maker_branch main "made by pid" "a process the restore creates before"
run_case refused_closed_listener refused closed_listener main "through a" "listener no longer open"
finish_tests
