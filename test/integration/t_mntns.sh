#!/usr/bin/env bash
# t_mntns: a tree in a private mount namespace (`unshare -pf --mount-proc`),
# restored with its mounts (state/mntns.c).
#
#   python_mounts        bash mounts, in the namespace, on directories of the
#                        case's temp dir: a tmpfs (size and mode options)
#                        holding files, a tmpfs mounted inside it, a
#                        directory, a symlink, a FIFO, a file with two
#                        names, a file owned by
#                        1000:1000 with an old mtime; one of its directories
#                        bind-mounted elsewhere; a read-only bind of
#                        /proc/sys on itself; a bind mount of a host
#                        directory; a read-only nosuid bind mount of
#                        another; a shared tmpfs and an unbindable one
#                        beside a private one; a sysfs; cr's /dev/shm
#                        remounted nosuid,nodev,noexec and its
#                        /sys/kernel/tracing (or /dev/mqueue, /dev/pts:
#                        the first the host mounts) made unbindable
#                        (inherited mounts changed); then execs
#                        python3, pid 1 of the pid namespace, with its cwd
#                        on the tmpfs, a file open for appending there, a
#                        shared mapping of another, a token and a counter
#                        in memory. After dump and restore (no --new-pidns)
#                        the namespace's mountinfo must be the same (ids,
#                        devices and peer groups relabelled), the tmpfs
#                        must hold the same files (modes, owners, sizes,
#                        mtimes, targets), the proc at /proc must show the
#                        restored pid namespace, and python3 goes on: it
#                        writes through its open files (on the tmpfs and
#                        through the bind mount) and its mapping, accepts a
#                        client of the host on a unix socket it listens on
#                        at a path of the bind mount (and one connects to
#                        another it listens on at a path of the tmpfs, which
#                        also holds a socket file nothing listens on), sees
#                        its cwd, its counter and token, and reports through
#                        the bind mount; a file deleted while open there
#                        comes back on the tmpfs with its contents
#   bash_twice           `unshare -pf --mount-proc bash` with a tmpfs and a
#                        variable, dumped and restored twice (the second
#                        dump is of the restored namespace), then bash goes
#                        on and writes its variable and tmpfs file to the
#                        host through a bind mount
#   binary_on_tmpfs      the init runs a copy of sleep on a tmpfs of the
#                        namespace: its exe and mappings come back from there
#   netns_bound          unshare_m_sleep with a network namespace bound under
#                        /run/netns (ip netns add) on the host: the inherited
#                        nsfs mount comes back with the namespace.
#   unshare_m_sleep      `unshare -m sleep N` (no pid namespace, no mount of
#                        its own: every mount a private copy of cr's): back in
#                        a mount namespace of its own, the same table (a
#                        mount cr's namespace gained after the dump is not
#                        in it), asleep
#   child_own_ns         python3 in cr's namespaces forks a child that
#                        unshares a mount namespace (ctypes), mounts a tmpfs
#                        with a file, forks a grandchild (in the same one)
#                        and holds the file open: after restore the parent
#                        is in cr's mount namespace, the two others share
#                        one of their own holding the tmpfs, and each goes
#                        on (the child reads and writes through its fd)
#   host_propagation     two tmpfs of cr's namespace made shared (by the
#                        test, in its temp dir); `unshare -m --propagation
#                        unchanged` keeps the first's copy a peer of it and
#                        makes the second's a slave: after restore the table
#                        is the same, a mount made on the host under either
#                        appears in the restored namespace, and one made in
#                        the namespace under the first appears on the host
# Refused at dump, naming the pid and the mount, the tree left running:
#   overlay_refused      an overlay mounted in the namespace
#   ext2_loop_refused    an ext2 image mounted there through a loop device
#   ramfs_refused        a ramfs mounted in the namespace
#   tmpfs_too_big_refused a tmpfs holding 17 MiB (cr keeps 16)
#   host_umount_refused  a mount of cr's unmounted in the namespace
#   hidden_shared_refused `unshare -m --propagation shared`: the copy of a
#                        mount of cr's that another at the same place hides
#                        (the lower /dev/pts or /dev/shm) became shared, which the
#                        restore could not set
source "$(dirname "$0")/lib.sh"

# ns_launch SCRIPT ARGS...: `unshare -pf --mount-proc bash -c SCRIPT _ ARGS`,
# clean of the harness's fds; sets NS_PID, the host pid of the namespace's
# init once the launcher has it.
ns_launch() {
	local launcher kids
	( clean_exec unshare -pf --mount-proc bash -c "$@" ) </dev/null >"$CASE_TMP/out" 2>&1 &
	launcher=$!
	disown "$launcher"
	track_pid "$launcher"
	CASE_LOGS+=("$CASE_TMP/out")
	NS_PID=
	for _ in $(seq 100); do
		kids=$(cat /proc/"$launcher"/task/*/children 2>/dev/null)
		[ -n "$kids" ] && break
		sleep 0.1
	done
	NS_PID=${kids% }
	[ -n "$NS_PID" ] || { REASON="unshare did not start its child"; return 1; }
	track_pid "$NS_PID"
}

# mountinfo_of PID: its mount table with mount ids, devices and peer groups
# relabelled in order of appearance, the parent as the label of its mount.
mountinfo_of() {
	awk '
	function label(map, key, prefix) {
		if (!(key in map)) map[key] = prefix (++count[prefix])
		return map[key]
	}
	{
		id[$1] = label(ids, $1, "m")
		par = ($2 in id) ? id[$2] : "top"
		line = id[$1] " " par " " label(devs, $3, "d")
		for (i = 4; i <= NF; i++) {
			f = $i
			if (f ~ /^(shared|master):/) { split(f, kv, ":"); f = kv[1] ":" label(groups, kv[2], "g") }
			line = line " " f
		}
		print line
	}' /proc/"$1"/mountinfo
}

# files_of DIR: every file below DIR, with its type, mode, owner, size,
# mtime, number of links and target (but the directory where the restore makes a deleted
# file again and unlinks it, and the one where a socket binds again: their
# mtimes move).
files_of() {
	(cd "$1" && find . -printf '%p %y %m %U:%G %s %T@ %n %l\n' | grep -v '^./gonedir \|^./run' | sort)
}

# ns_roundtrip LABEL: dumps the tree at NS_PID and restores it without
# --new-pidns; the mount table must come back the same.
ns_roundtrip() {
	local label=$1 img=$CASE_TMP/img-$1 before after
	before=$(mountinfo_of "$NS_PID")
	[ -n "$before" ] || { REASON="$label: no mount table of pid $NS_PID"; return 1; }
	cr_dump "dump-$label" "$NS_PID" "$img" || return 1
	cr_run "restore-$label" restore -D "$img" --detach ||
		{ REASON="$label: cr restore failed: $(last_line "$CR_ERR")"; return 1; }
	proc_alive "$NS_PID" || { REASON="$label: pid $NS_PID is not back"; return 1; }
	after=$(mountinfo_of "$NS_PID")
	if [ "$before" != "$after" ]; then
		REASON="$label: the mount table differs after restore: $(diff <(echo "$before") <(echo "$after") | tr '\n' '|')"
		return 1
	fi
	[ "$(readlink /proc/"$NS_PID"/ns/mnt)" != "$(readlink /proc/self/ns/mnt)" ] ||
		{ REASON="$label: the restored process is in cr's mount namespace"; return 1; }
	[ "$(awk '/^NSpid:/ { print $2 "," $3 }' /proc/"$NS_PID"/status)" = "$NS_PID,1" ] ||
		{ REASON="$label: not pid 1 of its namespace: $(grep NSpid /proc/"$NS_PID"/status)"; return 1; }
}

# ---- python3 with tmpfs, bind, read-only, propagation ------------------------------

# Run by bash in the namespace: $1 the case dir.
# shellcheck disable=SC2016
SETUP='set -e
d=$1/ns
mount -t tmpfs -o size=4m,mode=751 tmpfs $d/t
echo hello > $d/t/a
chmod 640 $d/t/a
mkdir -m 700 $d/t/sub $d/t/gonedir $d/t/run
echo deep > $d/t/sub/deep
chown 1000:1000 $d/t/sub/deep
touch -d "2001-02-03 04:05:06.789" $d/t/sub/deep
ln -s a $d/t/link
ln $d/t/a $d/t/sub/a2
mkfifo -m 620 $d/t/fifo
head -c 8192 /dev/zero | tr "\0" "m" > $d/t/map
mkdir $d/t/nest
mount -t tmpfs -o size=64k tmpfs $d/t/nest
echo nested > $d/t/nest/n
mkdir $d/t/share
echo shared-part > $d/t/share/x
mount --bind $d/t/share $d/bs
mount --bind /proc/sys /proc/sys
mount -o remount,bind,ro /proc/sys
mount --bind $1/hostdir $d/b
mount --bind -o ro,nosuid $1/hostro $d/ro
mount -t tmpfs -o size=1m tmpfs $d/sh
mount --make-shared $d/sh
mount -t tmpfs tmpfs $d/priv
mount -t tmpfs tmpfs $d/unb
mount --make-unbindable $d/unb
mount -t sysfs sysfs $d/sys
mount -o remount,bind,nosuid,nodev,noexec /dev/shm
for m in /sys/kernel/tracing /dev/mqueue /dev/pts; do   # the first one this host mounts
	mountpoint -q $m && { mount --make-unbindable $m; echo $m > $1/hostdir/inherited; break; }
done
cd $d/t
exec python3 -c "$2" "$1"
'

PY_MNT='
import mmap, os, socket, sys, time
d = sys.argv[1]
ns = d + "/ns"
token = os.urandom(8).hex()
log = open(ns + "/t/log", "a")
log.write("start %s\n" % token)
log.flush()
mf = open(ns + "/t/map", "r+b")
srv = socket.socket(socket.AF_UNIX)
srv.bind(ns + "/b/sock")
srv.listen(1)
app = socket.socket(socket.AF_UNIX)
app.bind(ns + "/t/run/app.sock")
app.listen(4)
stale = socket.socket(socket.AF_UNIX)
stale.bind(ns + "/t/stale.sock")
stale.close()
held = open(ns + "/b/held", "a")
held.write("before\n")
held.flush()
g = open(ns + "/t/gonedir/gone", "w+")
g.write("ghost")
g.flush()
os.unlink(ns + "/t/gonedir/gone")
m = mmap.mmap(mf.fileno(), 8192)
n = 0
open(ns + "/b/ready", "w").write(token)
while not os.path.exists(ns + "/b/go"):
    n += 1
    time.sleep(0.01)
m[0:5] = b"after"
held.write("after %s\n" % token)
held.flush()
m.flush()
log.write("go %d\n" % n)
log.flush()
problems = []
tdev = os.stat(ns + "/t").st_dev
if os.getcwd() != ns + "/t": problems.append("cwd " + os.getcwd())
if os.getpid() != 1: problems.append("pid %d" % os.getpid())
if open(ns + "/t/map", "rb").read(5) != b"after": problems.append("the mapping does not write to its file")
want = "start %s\ngo %d\n" % (token, n)
if open("log").read() != want: problems.append("log: %r" % open("log").read())
if open(ns + "/t/sub/deep").read() != "deep\n": problems.append("sub/deep")
if open(ns + "/t/nest/n").read() != "nested\n": problems.append("nest/n")
if open(ns + "/bs/x").read() != "shared-part\n": problems.append("bs/x")
if os.stat(ns + "/bs").st_dev != tdev: problems.append("bs is not the tmpfs")
if not os.statvfs("/proc/sys").f_flag & os.ST_RDONLY: problems.append("/proc/sys is writable")
g.seek(0)
if g.read() != "ghost": problems.append("the deleted file")
for name, f in (("log", log), ("map", mf), ("deleted file", g)):
    if os.fstat(f.fileno()).st_dev != tdev: problems.append(name + " is not on the tmpfs")
if open(ns + "/ro/r").read() != "ro\n": problems.append("ro/r")
try:
    open(ns + "/ro/w", "w")
    problems.append("ro is writable")
except OSError:
    pass
if not os.path.exists("/proc/1/status") or open("/proc/1/comm").read().strip() != "python3":
    problems.append("/proc is not the restored pid namespace")
srv.settimeout(10)
c, _ = srv.accept()
c.sendall(("hello " + token).encode())
c.close()
ok = n > 0 and not problems
open(ns + "/b/result", "w").write(("PASS %s %d" % (token, n)) if ok else "FAIL " + "; ".join(problems))
'

python_mounts() {
	local dir=$CASE_TMP files_before files_after tok inherited
	mkdir -p "$dir"/ns/{t,b,bs,ro,sh,priv,unb,sys} "$dir"/hostdir "$dir"/hostro
	echo ro > "$dir"/hostro/r
	ns_launch "$SETUP" _ "$dir" "$PY_MNT" || return 1
	wait_until 10 test -s "$dir/hostdir/ready" || { REASON="python3 did not get ready: $(tail -n 3 "$CASE_TMP/out")"; return 1; }
	tok=$(cat "$dir/hostdir/ready")
	[ "$(cat /proc/"$NS_PID"/comm)" = python3 ] || { REASON="pid $NS_PID is not python3"; return 1; }
	grep -q " $dir/ns/sh .* shared:" /proc/"$NS_PID"/mountinfo ||
		{ REASON="the shared tmpfs is not shared: $(grep "$dir/ns/sh" /proc/"$NS_PID"/mountinfo)"; return 1; }
	files_before=$(files_of /proc/"$NS_PID"/root"$dir"/ns/t)
	ns_roundtrip once || return 1
	files_after=$(files_of /proc/"$NS_PID"/root"$dir"/ns/t)
	[ "$files_before" = "$files_after" ] ||
		{ REASON="the tmpfs differs: $(diff <(echo "$files_before") <(echo "$files_after") | tr '\n' '|')"; return 1; }
	# shellcheck disable=SC2016
	timeout 5 python3 -c 'import socket, sys
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])' /proc/"$NS_PID"/root"$dir"/ns/t/run/app.sock ||
		{ REASON="no listener at the socket path on the tmpfs after restore"; return 1; }
	grep -q " $dir/ns/ro ro,nosuid" /proc/"$NS_PID"/mountinfo ||
		{ REASON="the read-only bind mount is not ro,nosuid"; return 1; }
	grep -q " $dir/ns/unb .* unbindable " /proc/"$NS_PID"/mountinfo ||
		{ REASON="the unbindable tmpfs is not unbindable"; return 1; }
	inherited=$(cat "$dir/hostdir/inherited" 2>/dev/null)
	[ -n "$inherited" ] || { REASON="the host mounts none of tracefs, mqueue, devpts to make unbindable"; return 1; }
	grep -q " $inherited .* unbindable " /proc/"$NS_PID"/mountinfo ||
		{ REASON="the inherited $inherited is not unbindable after restore"; return 1; }
	[ ! -e "$dir/ns/t/a" ] || { REASON="the tmpfs files are in cr's mount namespace"; return 1; }
	grep -q " $dir/ns/t/nest .* tmpfs tmpfs rw,size=64k" /proc/"$NS_PID"/mountinfo ||
		{ REASON="the tmpfs inside the tmpfs is not back"; return 1; }
	# shellcheck disable=SC2016
	( clean_exec python3 -c 'import socket, sys
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
print(s.recv(64).decode())' "$dir/hostdir/sock" ) </dev/null >"$dir/client.out" 2>&1 &
	track_pid $!
	CASE_LOGS+=("$dir/client.out")
	touch "$dir/hostdir/go"
	wait_until 15 test -s "$dir/hostdir/result" || { REASON="no result from python3: $(tail -n 3 "$CASE_TMP/out")"; return 1; }
	wait_until 5 test -s "$dir/client.out" || { REASON="the client got nothing from the restored listener"; return 1; }
	[ "$(cat "$dir/client.out")" = "hello $tok" ] ||
		{ REASON="the client of the listener bound through the bind mount got '$(cat "$dir/client.out")'"; return 1; }
	[[ $(cat "$dir/hostdir/result") == "PASS $tok "* ]] ||
		{ REASON="python3 reports: $(cat "$dir/hostdir/result"), token $tok"; return 1; }
	[ "$(cat "$dir/hostdir/held")" = "before"$'\n'"after $tok" ] ||
		{ REASON="the file held open through the bind mount holds '$(cat "$dir/hostdir/held")'"; return 1; }
	wait_until 5 pid_gone "$NS_PID" || { REASON="python3 did not exit: $(describe_pid "$NS_PID")"; return 1; }
}

# ---- bash, twice ----------------------------------------------------------------

# shellcheck disable=SC2016
BASH_NS='set -e
mount -t tmpfs tmpfs $1/ns/t
mount --bind $1/hostdir $1/ns/b
secret=$RANDOM$RANDOM
echo "$secret" > $1/ns/t/secret
echo "$secret" > $1/ns/b/ready
while [ ! -e $1/ns/b/go ]; do sleep 0.05; done
echo "$secret $(cat $1/ns/t/secret)" > $1/ns/b/result
'

bash_twice() {
	local dir=$CASE_TMP secret
	mkdir -p "$dir"/ns/{t,b} "$dir"/hostdir
	ns_launch "$BASH_NS" _ "$dir" || return 1
	wait_until 10 test -s "$dir/hostdir/ready" || { REASON="bash did not get ready: $(tail -n 3 "$CASE_TMP/out")"; return 1; }
	secret=$(cat "$dir/hostdir/ready")
	# bash and its sleep: wait for a moment when bash has no child.
	ns_roundtrip round1 || return 1
	ns_roundtrip round2 || return 1
	touch "$dir/hostdir/go"
	wait_until 15 test -s "$dir/hostdir/result" || { REASON="no result from bash: $(tail -n 3 "$CASE_TMP/out")"; return 1; }
	[ "$(cat "$dir/hostdir/result")" = "$secret $secret" ] ||
		{ REASON="bash wrote '$(cat "$dir/hostdir/result")', want '$secret $secret'"; return 1; }
}

# ---- refusals ------------------------------------------------------------------------

# refused_case SETUP WORD...: bash in a namespace runs SETUP (with $1 the
# case dir), then waits for go; the dump is refused naming the pid and the
# words; bash runs on and finishes.
refused_case() {
	local setup=$1 dir=$CASE_TMP
	shift
	mkdir -p "$dir"/ns/{m,u,w,l,b} "$dir"/hostdir
	# shellcheck disable=SC2016
	ns_launch "set -e
$setup
mount --bind \$1/hostdir \$1/ns/b
touch \$1/ns/b/ready
while [ ! -e \$1/ns/b/go ]; do sleep 0.05; done
echo done > \$1/ns/b/result" _ "$dir" || return 1
	wait_until 10 test -e "$dir/hostdir/ready" || { REASON="bash did not get ready: $(tail -n 3 "$CASE_TMP/out")"; return 1; }
	expect_refused "$NS_PID" "$CASE_TMP/img" "$@" || return 1
	running_free "$NS_PID" "$(readlink /proc/"$NS_PID"/exe)" ||
		{ REASON="after the refused dump: $(describe_pid "$NS_PID")"; return 1; }
	touch "$dir/hostdir/go"
	wait_until 10 test -s "$dir/hostdir/result" || { REASON="bash did not go on after the refusal"; return 1; }
}

# shellcheck disable=SC2016
run_case overlay_refused refused_case \
	'mount -t overlay overlay -o lowerdir=$1/ns/l,upperdir=$1/ns/u,workdir=$1/ns/w $1/ns/m' \
	"/ns/m (overlay" "this kind of file system is not restored"
# shellcheck disable=SC2016
run_case ext2_loop_refused refused_case \
	'truncate -s 2M $1/e2.img; mkfs.ext2 -q -F $1/e2.img; mount -o loop $1/e2.img $1/ns/m' \
	"/ns/m (ext2" "this kind of file system is not restored"
# shellcheck disable=SC2016
run_case ramfs_refused refused_case 'mount -t ramfs ramfs $1/ns/m' "/ns/m (ramfs" "not restored"
# shellcheck disable=SC2016
run_case tmpfs_too_big_refused refused_case \
	'mount -t tmpfs tmpfs $1/ns/m; head -c 17M /dev/zero > $1/ns/m/big' "/ns/m (tmpfs" "limit of 16 MiB"
run_case host_umount_refused refused_case 'umount /dev/shm' "at /dev/shm" "its mount namespace: cr's mount" "is not in it"
cmdline_is() {
	[ "$(tr '\0' ' ' 2>/dev/null < /proc/"$1"/cmdline)" = "$2" ]
}

# `unshare -m sleep N`: a mount namespace whose mounts are all copies of
# cr's; the restored sleep is in one of its own again, still asleep.
# A network namespace bound under /run/netns (ip netns add) before the
# unshare: the namespace inherits that nsfs mount, whose root is no path.
netns_bound() {
	local r=0
	ip netns add "crm-$$" || { REASON="ip netns add"; return 1; }
	unshare_m_sleep "crm-$$" || r=1
	ip netns del "crm-$$"
	return $r
}

unshare_m_sleep() {
	local secs=$((100000 + RANDOM)) launcher kids before after img=$CASE_TMP/img bound=${1:-}
	( clean_exec unshare -m sleep "$secs" ) </dev/null >/dev/null 2>&1 &
	launcher=$!
	disown "$launcher"
	track_pid "$launcher"
	wait_until 10 cmdline_is "$launcher" "sleep $secs " ||
		{ REASON="unshare -m did not exec sleep"; return 1; }
	[ "$(readlink /proc/"$launcher"/ns/mnt)" != "$(readlink /proc/self/ns/mnt)" ] ||
		{ REASON="sleep is in cr's mount namespace"; return 1; }
	before=$(mountinfo_of "$launcher")
	[ -z "$bound" ] || grep -q " /run/netns/$bound " <<<"$before" || { REASON="no /run/netns/$bound in it"; return 1; }
	cr_dump dump "$launcher" "$img" || return 1
	mkdir -p "$CASE_TMP"/late && mount -t tmpfs tmpfs "$CASE_TMP"/late || { REASON="mount on the host"; return 1; }
	cr_run restore restore -D "$img" --detach
	# lazily if busy: a copy of it propagated into a namespace made meanwhile
	# (by the restore, or a test running beside this one) may hold it
	umount "$CASE_TMP"/late 2>/dev/null || umount -l "$CASE_TMP"/late
	[ "$CR_STATUS" = 0 ] || { REASON="cr restore failed: $(last_line "$CR_ERR")"; return 1; }
	after=$(mountinfo_of "$launcher")
	[ "$before" = "$after" ] ||
		{ REASON="the mount table differs: $(diff <(echo "$before") <(echo "$after") | tr '\n' '|')"; return 1; }
	[ "$(readlink /proc/"$launcher"/ns/mnt)" != "$(readlink /proc/self/ns/mnt)" ] ||
		{ REASON="the restored sleep is in cr's mount namespace"; return 1; }
	wait_until 5 blocked_in "$launcher" 230 || blocked_in "$launcher" 219 ||
		{ REASON="the restored sleep is not asleep: $(describe_pid "$launcher")"; return 1; }
}

# `unshare -m --propagation shared sleep`: every copy shared, the hidden
# lower /dev/pts too.
hidden_shared() {
	local launcher
	( clean_exec unshare -m --propagation shared sleep 1000 ) </dev/null >/dev/null 2>&1 &
	launcher=$!
	disown "$launcher"
	track_pid "$launcher"
	wait_until 10 grep -q " /dev/pts .*shared:" /proc/"$launcher"/mountinfo ||
		{ REASON="no shared /dev/pts in the namespace"; return 1; }
	expect_refused "$launcher" "$CASE_TMP/img" "at /dev/" "another mount of cr's at the same place hides" ||
		return 1
	running_free "$launcher" "$(readlink /proc/"$launcher"/exe)" ||
		{ REASON="after the refused dump: $(describe_pid "$launcher")"; return 1; }
}

# A child unshares a mount namespace and mounts a tmpfs; its child shares
# it; the parent stays in cr's.
PY_CHILD_NS='
import ctypes, os, sys, time
d = sys.argv[1]
libc = ctypes.CDLL(None, use_errno=True)
def wait_go():
    while not os.path.exists(os.path.join(d, "go")):
        time.sleep(0.02)
token = os.urandom(8).hex()
r, w = os.pipe()
kid = os.fork()
if kid == 0:
    os.close(r)
    if libc.unshare(0x00020000) != 0:                      # CLONE_NEWNS
        os._exit(10)
    if libc.mount(b"none", b"/", None, 0x4000 | 0x40000, None) != 0:   # MS_REC | MS_PRIVATE
        os._exit(11)
    if libc.mount(b"tmpfs", (d + "/m").encode(), b"tmpfs", 0, b"size=1m") != 0:
        os._exit(12)
    f = open(d + "/m/kept", "w+")
    f.write(token)
    f.flush()
    gk = os.fork()
    if gk == 0:
        wait_go()
        os._exit(0 if open(d + "/m/kept").read().startswith(token) else 13)
    os.write(w, b"x")
    wait_go()
    f.seek(0)
    ok = f.read() == token
    f.write("+")
    f.flush()
    _, st = os.waitpid(gk, 0)
    os._exit(0 if ok and st == 0 and open(d + "/m/kept").read() == token + "+" else 14)
os.close(w)
os.read(r, 1)
with open(os.path.join(d, "pids"), "w") as f:
    f.write("%d" % kid)
n = 0
while not os.path.exists(os.path.join(d, "go")):
    n += 1
    time.sleep(0.01)
_, st = os.waitpid(kid, 0)
outside = not os.path.exists(d + "/m/kept")
with open(os.path.join(d, "result"), "w") as f:
    f.write("PASS %s" % token if st == 0 and n > 0 and outside else "FAIL status %d outside %s" % (st, outside))
'

child_own_ns() {
	local kid gk tok img=$CASE_TMP/img
	mkdir -p "$CASE_TMP/py/m"
	py_start "$PY_CHILD_NS" pids || return 1
	kid=$(cat "$PY_DIR/pids")
	gk=$(cat /proc/"$kid"/task/*/children)
	gk=${gk% }
	tok=$(cat /proc/"$kid"/root"$PY_DIR"/m/kept)
	[ -n "$gk" ] && [ -n "$tok" ] || { REASON="the child's namespace is not ready"; return 1; }
	track_pid "$kid"
	track_pid "$gk"
	cr_dump dump "$PY_PID" "$img" || return 1
	cr_run restore restore -D "$img" --detach ||
		{ REASON="cr restore failed (exit $CR_STATUS): $(last_line "$CR_ERR")"; return 1; }
	[ "$(readlink /proc/"$PY_PID"/ns/mnt)" = "$(readlink /proc/self/ns/mnt)" ] ||
		{ REASON="the parent is not in cr's mount namespace"; return 1; }
	[ "$(readlink /proc/"$kid"/ns/mnt)" != "$(readlink /proc/self/ns/mnt)" ] ||
		{ REASON="the child is in cr's mount namespace"; return 1; }
	[ "$(readlink /proc/"$kid"/ns/mnt)" = "$(readlink /proc/"$gk"/ns/mnt)" ] ||
		{ REASON="the child and the grandchild are not in one mount namespace"; return 1; }
	[ "$(cat /proc/"$gk"/root"$PY_DIR"/m/kept)" = "$tok" ] ||
		{ REASON="the tmpfs file is not back in the namespace"; return 1; }
	[ ! -e "$PY_DIR/m/kept" ] || { REASON="the tmpfs file is in cr's mount namespace"; return 1; }
	touch "$PY_DIR/go"
	wait_until 15 test -e "$PY_DIR/result" || { REASON="no result from python3: $(tail -n 3 "$PY_DIR/out")"; return 1; }
	[ "$(cat "$PY_DIR/result")" = "PASS $tok" ] || { REASON="python3 reports: $(cat "$PY_DIR/result")"; return 1; }
}

# The two shared mounts of cr's, made and removed by the case.
host_propagation() {
	local hs=$CASE_TMP/hs launcher img=$CASE_TMP/img before after secs=$((100000 + RANDOM)) ns_pid
	mkdir -p "$hs"/peer "$hs"/slave
	mount -t tmpfs -o size=1m tmpfs "$hs"/peer && mount --make-shared "$hs"/peer &&
		mount -t tmpfs -o size=1m tmpfs "$hs"/slave && mount --make-shared "$hs"/slave &&
		mkdir "$hs"/peer/a "$hs"/peer/b "$hs"/slave/a || { REASON="cannot make shared mounts in cr's namespace"; return 1; }
	# shellcheck disable=SC2016
	( clean_exec unshare -m --propagation unchanged sh -c 'mount --make-slave "$1" && exec sleep "$2"' _ \
		"$hs"/slave "$secs" ) </dev/null >/dev/null 2>&1 &
	launcher=$!
	disown "$launcher"
	track_pid "$launcher"
	wait_until 10 cmdline_is "$launcher" "sleep $secs " || { REASON="unshare did not exec sleep"; return 1; }
	ns_pid=$launcher
	grep -q " $hs/slave .* master:" /proc/"$ns_pid"/mountinfo && grep -q " $hs/peer .* shared:" /proc/"$ns_pid"/mountinfo ||
		{ REASON="the namespace's copies are not a peer and a slave: $(grep "$hs" /proc/"$ns_pid"/mountinfo)"; return 1; }
	before=$(mountinfo_of "$ns_pid")
	cr_dump dump "$ns_pid" "$img" || return 1
	cr_run restore restore -D "$img" --detach || { REASON="cr restore failed: $(last_line "$CR_ERR")"; return 1; }
	after=$(mountinfo_of "$ns_pid")
	[ "$before" = "$after" ] ||
		{ REASON="the mount table differs: $(diff <(echo "$before") <(echo "$after") | tr '\n' '|')"; return 1; }
	# The peer groups are cr's own ones: compare the numbers themselves.
	[ "$(grep -o " $hs/peer .* shared:[0-9]*" /proc/self/mountinfo | grep -o 'shared:[0-9]*')" = \
	  "$(grep -o " $hs/peer .* shared:[0-9]*" /proc/"$ns_pid"/mountinfo | grep -o 'shared:[0-9]*')" ] ||
		{ REASON="the restored copy of $hs/peer is not in the peer group of cr's"; return 1; }
	mount -t tmpfs tmpfs "$hs"/peer/a && mount -t tmpfs tmpfs "$hs"/slave/a || { REASON="mount on the host"; return 1; }
	grep -q " $hs/peer/a " /proc/"$ns_pid"/mountinfo && grep -q " $hs/slave/a " /proc/"$ns_pid"/mountinfo ||
		{ REASON="a mount on the host did not propagate into the restored namespace"; return 1; }
	nsenter -m -t "$ns_pid" mount -t tmpfs tmpfs "$hs"/peer/b || { REASON="mount in the namespace"; return 1; }
	grep -q " $hs/peer/b " /proc/self/mountinfo || { REASON="a mount in the restored peer did not reach the host"; return 1; }
}

host_propagation_case() {
	local rc
	host_propagation
	rc=$?
	kill_tracked
	umount -R -l "$CASE_TMP"/hs/peer 2>/dev/null
	umount -R -l "$CASE_TMP"/hs/slave 2>/dev/null
	return "$rc"
}

# shellcheck disable=SC2016
BIN_NS='set -e
mount -t tmpfs tmpfs $1/ns/t
cp "$(command -v sleep)" $1/ns/t/mysleep
exec $1/ns/t/mysleep $2
'

binary_on_tmpfs() {
	local secs=$((100000 + RANDOM))
	mkdir -p "$CASE_TMP"/ns/t
	ns_launch "$BIN_NS" _ "$CASE_TMP" "$secs" || return 1
	wait_until 10 cmdline_is "$NS_PID" "$CASE_TMP/ns/t/mysleep $secs " || { REASON="mysleep did not start"; return 1; }
	ns_roundtrip once || return 1
	[ "$(readlink /proc/"$NS_PID"/exe)" = "$CASE_TMP/ns/t/mysleep" ] ||
		{ REASON="the restored exe is $(readlink /proc/"$NS_PID"/exe)"; return 1; }
	grep -q " $CASE_TMP/ns/t/mysleep\$" /proc/"$NS_PID"/maps || { REASON="mysleep is not mapped"; return 1; }
	[ "$(stat -L -c %d /proc/"$NS_PID"/exe)" = "$(stat -c %d /proc/"$NS_PID"/root"$CASE_TMP"/ns/t)" ] ||
		{ REASON="the restored exe is not on the namespace's tmpfs"; return 1; }
	wait_until 5 blocked_in "$NS_PID" 230 || blocked_in "$NS_PID" 219 ||
		{ REASON="the restored mysleep is not asleep: $(describe_pid "$NS_PID")"; return 1; }
}

run_case binary_on_tmpfs binary_on_tmpfs
run_case host_propagation host_propagation_case
run_case hidden_shared_refused hidden_shared
run_case child_own_ns child_own_ns
run_case unshare_m_sleep unshare_m_sleep
run_case netns_bound netns_bound
run_case python_mounts python_mounts
run_case bash_twice bash_twice
finish_tests
