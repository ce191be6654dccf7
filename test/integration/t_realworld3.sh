#!/usr/bin/env bash
# t_realworld3: unmodified Debian programs in shapes that once lost state at
# restore (issue 14, "real programs", the sweep of the second round).
#   nginx_coredump_filter  nginx (master and two workers: shared anonymous
#                   memory, the listening socket they inherit, epoll,
#                   socketpairs) started with coredump_filter 0x7f, as
#                   systemd's CoredumpFilter= or a launching shell sets it
#                   (it is inherited across fork and exec): dumped and
#                   restored, every process still has 0x7f, nginx serves,
#                   and the workers a reload (SIGHUP) forks have it too.
#                   (Before, every restored process had cr's own, the
#                   default 0x33: a core dump would have left out what the
#                   launcher asked for.)
#   perl_mce_kill   a perl one-liner that set its machine-check kill
#                   policy (prctl PR_MCE_KILL: early, as qemu sets it on its
#                   vCPU threads) and reports PR_MCE_KILL_GET on SIGUSR1:
#                   restored, it still reports early (1). (Before, the
#                   default, 2: a memory failure would have reached it
#                   late, or as the sysctl says.)
#   py_landlock     python3 in a Landlock domain of its own (it may not
#                   execute anything) in its second thread: the dump is
#                   refused naming the thread and the domain (no call reads
#                   a domain back, and the restored thread would run
#                   unconfined), and python3 runs on, still unable to
#                   execute. (Before, the dump succeeded and the restored
#                   python3 executed /bin/true.)
#   py_landlock_pidns  the same python3 as the init of a pid namespace of
#                   its own (util-linux `unshare -pf`), its tree dumped from
#                   unshare: refused the same way (cr's probe is made inside
#                   that namespace, where the thread can see it).
#   sh_autogroup    a shell leading its session sets its autogroup's nice
#                   to 7 (echo 7 > /proc/self/autogroup) and waits for a
#                   sleep it started: restored, both are again in one
#                   autogroup with nice 7. (Before, the restored session's
#                   new autogroup had nice 0.)
#   autogroup_restorer  sleep in a session led by a shell outside the
#                   dump, its autogroup at nice 0: dumped; restored by a cr
#                   restore whose own autogroup has another nice (5), it is
#                   refused before anything is made, naming both; restored
#                   from this script's session (a nice 0 autogroup, or the
#                   root autogroup, which counts as nice 0, as under a CI
#                   runner), it runs.  (The dump compared with the dumping
#                   cr's autogroup only; a restore from the root autogroup
#                   was refused as "no autogroups".)
#   py_cpuid        python3 whose second thread made cpuid fault
#                   (arch_prctl ARCH_SET_CPUID 0, as rr does to its
#                   tracees): restored, that thread still has cpuid
#                   faulting and the main thread still has not. (Before,
#                   both ran cpuid again.)
#   numactl_interleave  numactl's `--interleave=all` running sleep: the
#                   dump is refused naming the NUMA policy (cr does not
#                   restore set_mempolicy or mbind), and sleep runs on with
#                   it. (Before, the restored sleep had the default policy.)
#   landlock_probe_alone  `cr --landlock-probe 65534 65534 PID 0` (what a dump
#                   executes as its Landlock probe, so that no memory of
#                   cr's, its keys among it, goes with a dumpable process
#                   of another uid), run by hand with fd 3 a file: it
#                   writes its pid there and runs as cr's binary with uid
#                   and gid 65534 everywhere, no capability, dumpable; bad
#                   ids (-1, 4294967295, a word, one missing) and a parent
#                   that is not its own make it exit 1.
#   probe_no_secrets  a dump --sign of a sleep of uid 65534, held before
#                   the freeze by a page server that never answers: its
#                   Landlock probe (uid 65534, dumpable) holds no byte of
#                   the signing key, which cr's own memory holds (the scan
#                   finds it there), no environment, fds 0-2 on /dev/null,
#                   and the sleep's root; once the server goes, the dump
#                   fails, the probe is gone and the sleep runs on.  (The
#                   probe was a fork of cr with its keys, readable by any
#                   process of that uid.)
#   py_thread_mempolicy  python3 whose second thread set a policy of its
#                   own (set_mempolicy MPOL_INTERLEAVE), the main thread
#                   none: refused naming that thread and the policy; the
#                   thread keeps it.
#   py_mbind        python3 with an anonymous mmap bound to node 0 (mbind
#                   MPOL_BIND), the threads without a policy: refused
#                   naming the mapping's address and the policy; the
#                   mapping keeps it.  (cr now asks the policies by
#                   injected get_mempolicy, not numa_maps, which walks
#                   every page in the frozen window.)
source "$(dirname "$0")/lib.sh"

# The processes of the tree of PID and their coredump_filter, one line.
coredump_filters() {
	local pid
	for pid in $(descendants "$1" | sort -n); do
		printf '%s ' "$(cat /proc/"$pid"/coredump_filter)"
	done
}

# nginx_start DIR PORT: Debian's nginx in the foreground, a master and two
# workers answering "hello" on 127.0.0.1:PORT, started by a shell that sets
# coredump_filter 0x7f first; WL_PID is the master once both workers run.
nginx_start() {
	local dir=$1 port=$2 t
	command -v nginx >/dev/null || { REASON="nginx is not installed (make deps)"; return 1; }
	mkdir -p "$dir/logs"
	printf '%s\n' "daemon off;" "master_process on;" "worker_processes 2;" "pid $dir/nginx.pid;" \
		"error_log $dir/logs/error.log info;" "events { worker_connections 64; }" "http {" \
		"  access_log $dir/logs/access.log;" \
		"  client_body_temp_path $dir/t1; proxy_temp_path $dir/t2; fastcgi_temp_path $dir/t3;" \
		"  uwsgi_temp_path $dir/t4; scgi_temp_path $dir/t5;" \
		"  server { listen 127.0.0.1:$port; location / { return 200 \"hello\\n\"; } }" "}" > "$dir/nginx.conf"
	real_start "$dir/out" "$dir" nginx sh -c 'echo 0x7f > /proc/self/coredump_filter && exec "$@"' sh \
		nginx -c "$dir/nginx.conf" -p "$dir" || return 1
	wait_until 10 nginx_workers "$WL_PID" 2 || { REASON="nginx did not fork 2 workers: $(cat "$dir/logs/error.log")"; return 1; }
	wait_until 10 nginx_answers "$port" || { REASON="nginx does not answer: $(cat "$dir/logs/error.log")"; return 1; }
}

# nginx_workers PID N: the nginx master PID has N children.
nginx_workers() {
	[ "$(cat /proc/"$1"/task/*/children | wc -w)" = "$2" ]
}

nginx_answers() {
	[ "$(curl -sf -m 5 "http://127.0.0.1:$1/")" = hello ]
}

nginx_coredump_filter() {
	local dir=$CASE_TMP/n port=18080 want="0000007f 0000007f 0000007f " got
	nginx_start "$dir" "$port" || return 1
	got=$(coredump_filters "$WL_PID")
	[ "$got" = "$want" ] || { REASON="nginx started with coredump_filter $got"; return 1; }
	cr_dump dump "$WL_PID" "$CASE_TMP/img" || return 1
	cr_run restore restore -D "$CASE_TMP/img" --detach ||
		{ REASON="cr restore failed (exit $CR_STATUS): $(last_line "$CR_ERR")"; return 1; }
	wait_until 10 running_free "$WL_PID" "$WL_EXE" || { REASON="restored nginx: $(describe_pid "$WL_PID")"; return 1; }
	got=$(coredump_filters "$WL_PID")
	[ "$got" = "$want" ] || { REASON="restored nginx has coredump_filter $got"; return 1; }
	nginx_answers "$port" || { REASON="restored nginx does not answer: $(tail -n 3 "$dir/logs/error.log")"; return 1; }
	kill -HUP "$WL_PID"
	wait_until 10 grep -q "gracefully shutting down" "$dir/logs/error.log" ||
		{ REASON="restored nginx did not reload: $(tail -n 3 "$dir/logs/error.log")"; return 1; }
	wait_until 10 nginx_workers "$WL_PID" 2 || { REASON="reloaded nginx has workers $(cat /proc/"$WL_PID"/task/*/children)"; return 1; }
	got=$(coredump_filters "$WL_PID")
	[ "$got" = "$want" ] || { REASON="reloaded nginx has coredump_filter $got"; return 1; }
	nginx_answers "$port" || { REASON="reloaded nginx does not answer: $(tail -n 3 "$dir/logs/error.log")"; return 1; }
}

# has_key NAME: a key of that description is in /proc/keys.
has_key() {
	grep -q " user  *$1: " /proc/keys
}


# prctl(PR_MCE_KILL, PR_MCE_KILL_SET, PR_MCE_KILL_EARLY) (157 is prctl on
# x86_64), then on each SIGUSR1 a line "mce N", N what PR_MCE_KILL_GET says.
PERL_MCE='$| = 1;
syscall(157, 33, 1, 1, 0, 0) == 0 or die "PR_MCE_KILL: $!";
$SIG{USR1} = sub { print "mce ", syscall(157, 34, 0, 0, 0, 0), "\n" };
print "ready\n";
sleep 1 while 1;'

# perl_reports DIR N: line N of what perl prints, after a SIGUSR1.
perl_reports() {
	kill -USR1 "$WL_PID"
	wait_until 5 test "$(wc -l < "$1/out")" -ge "$2" || return 1
	sed -n "$2p" "$1/out"
}

perl_mce_kill() {
	local dir=$CASE_TMP/p got
	mkdir -p "$dir"
	real_start "$dir/out" "$dir" perl perl -e "$PERL_MCE" || return 1
	wait_until 5 grep -qx ready "$dir/out" || { REASON="perl did not start: $(cat "$dir/out.err")"; return 1; }
	got=$(perl_reports "$dir" 2)
	[ "$got" = "mce 1" ] || { REASON="perl reports '$got' before the dump"; return 1; }
	cr_dump dump "$WL_PID" "$CASE_TMP/img" || return 1
	cr_run restore restore -D "$CASE_TMP/img" --detach ||
		{ REASON="cr restore failed (exit $CR_STATUS): $(last_line "$CR_ERR")"; return 1; }
	wait_until 10 running_free "$WL_PID" "$WL_EXE" || { REASON="restored perl: $(describe_pid "$WL_PID")"; return 1; }
	got=$(perl_reports "$dir" 3)
	[ "$got" = "mce 1" ] || { REASON="restored perl reports '$got'"; return 1; }
}

# A thread that restricts itself (Landlock ABI 1: no execution, the
# ruleset's fd closed, as programs do), then on each DIR/try-N tries to run
# /bin/true and writes DIR/res-N: "denied" or "ran".
PY_LANDLOCK='
import ctypes, os, struct, subprocess, sys, threading, time
c = ctypes.CDLL(None, use_errno=True)
d = sys.argv[1]
def confined():
    attr = ctypes.create_string_buffer(struct.pack("Q", 1))   # LANDLOCK_ACCESS_FS_EXECUTE
    fd = c.syscall(444, attr, 8, 0)
    if fd < 0 or c.prctl(38, 1, 0, 0, 0) < 0 or c.syscall(446, fd, 0) < 0:
        sys.exit("landlock: %d" % ctypes.get_errno())
    os.close(fd)
    open(d + "/ready", "w").close()
    n = 0
    while True:
        n += 1
        while not os.path.exists(d + "/try-%d" % n):
            time.sleep(0.02)
        try:
            subprocess.run(["/bin/true"], check=True)
            res = "ran"
        except OSError:
            res = "denied"
        open(d + "/res-%d" % n, "w").write(res)
threading.Thread(target=confined).start()
'

# landlock_try N: python3 tries to execute, says what happened.
landlock_try() {
	touch "$PY_DIR/try-$1"
	wait_until 5 test -s "$PY_DIR/res-$1" && cat "$PY_DIR/res-$1"
}

py_landlock() {
	local got tid
	py_start "$PY_LANDLOCK" ready || return 1
	got=$(landlock_try 1)
	[ "$got" = denied ] || { REASON="confined python3: '$got' ($(tail -n 2 "$PY_DIR/out"))"; return 1; }
	tid=$(ls /proc/"$PY_PID"/task | sort -n | sed -n 2p)
	cr_run dump dump "$PY_PID" -D "$CASE_TMP/img"
	check_refused "$tid" "$CASE_TMP/img" "pid $PY_PID thread $tid: in a Landlock domain" "unsupported" || return 1
	running_free "$PY_PID" "$PY_EXE" || { REASON="after the refused dump: $(describe_pid "$PY_PID")"; return 1; }
	got=$(landlock_try 2)
	[ "$got" = denied ] || { REASON="after the refused dump python3: '$got'"; return 1; }
}

# autogroups PID: the autogroup of PID and of its child, one line.
autogroups() {
	local child
	child=$(cat /proc/"$1"/task/*/children | tr -d ' ')
	echo "$(cat /proc/"$1"/autogroup) | $(cat /proc/"$child"/autogroup 2>/dev/null)"
}

# same_group_nice LINE NICE: both halves of autogroups' line name one
# autogroup, with nice NICE.
same_group_nice() {
	local a=${1% | *} b=${1#* | }
	[ "$a" = "$b" ] && [ "${a##* }" = "$2" ]
}

sh_autogroup() {
	local dir=$CASE_TMP/a got
	[ -e /proc/self/autogroup ] || { REASON="this kernel has no autogroups (CONFIG_SCHED_AUTOGROUP)"; return 1; }
	mkdir -p "$dir"
	real_start "$dir/out" "$dir" sh sh -c 'echo 7 > /proc/self/autogroup && sleep 1000 & wait' || return 1
	wait_until 5 test -n "$(cat /proc/"$WL_PID"/task/*/children)" || { REASON="sh started no sleep"; return 1; }
	got=$(autogroups "$WL_PID")
	same_group_nice "$got" 7 || { REASON="before the dump: $got"; return 1; }
	cr_dump dump "$WL_PID" "$CASE_TMP/img" || return 1
	cr_run restore restore -D "$CASE_TMP/img" --detach ||
		{ REASON="cr restore failed (exit $CR_STATUS): $(last_line "$CR_ERR")"; return 1; }
	wait_until 10 running_free "$WL_PID" "$WL_EXE" || { REASON="restored sh: $(describe_pid "$WL_PID")"; return 1; }
	got=$(autogroups "$WL_PID")
	same_group_nice "$got" 7 || { REASON="restored: $got"; return 1; }
}

autogroup_restorer() {
	local pid img=$CASE_TMP/img
	[ -e /proc/self/autogroup ] || { REASON="this kernel has no autogroups (CONFIG_SCHED_AUTOGROUP)"; return 1; }
	mkdir -p "$CASE_TMP/a"
	# sh leads a session of its own (a new autogroup, nice 0), outside the
	# dump; this script's may be the root autogroup, as under a CI runner.
	real_start "$CASE_TMP/a/out" "$CASE_TMP/a" sh sh -c 'sleep 1000 & wait' || return 1
	wait_until 5 test -n "$(cat /proc/"$WL_PID"/task/*/children)" || { REASON="sh started no sleep"; return 1; }
	pid=$(cat /proc/"$WL_PID"/task/*/children | tr -d ' ')
	track_pid "$pid"
	WL_PID=$pid WL_EXE=$(readlink -f "$(command -v sleep)")
	wait_until 5 running_free "$pid" "$WL_EXE" || { REASON="sleep did not start"; return 1; }
	[ "$(cat /proc/"$pid"/autogroup)" != "$(cat /proc/self/autogroup)" ] ||
		{ REASON="sleep is in this script's autogroup: $(cat /proc/"$pid"/autogroup)"; return 1; }
	cr_dump dump "$pid" "$img" || return 1
	CASE_LOGS+=("$CASE_TMP/restore5.err")
	if setsid sh -c 'echo 5 > /proc/self/autogroup && exec "$@"' sh "$CR" restore -D "$img" --detach \
		</dev/null >"$CASE_TMP/restore5.out" 2>"$CASE_TMP/restore5.err"; then
		REASON="cr restore from an autogroup at nice 5 succeeded"
		return 1
	fi
	grep -q "pid $pid had its autogroup at nice 0.*at nice 5" "$CASE_TMP/restore5.err" ||
		{ REASON="the refusal does not name both nices: $(last_line "$CASE_TMP/restore5.err")"; return 1; }
	pid_gone "$pid" || { REASON="the refused restore made pid $pid"; return 1; }
	cr_run restore restore -D "$img" --detach ||
		{ REASON="cr restore failed (exit $CR_STATUS): $(last_line "$CR_ERR")"; return 1; }
	wait_until 5 running_free "$pid" "$WL_EXE" || { REASON="restored: $(describe_pid "$pid")"; return 1; }
}

# Its second thread makes cpuid fault; on DIR/go each thread writes what
# ARCH_GET_CPUID says (1: cpuid runs) to DIR/result: "main M thread T".
PY_CPUID='
import ctypes, os, sys, threading, time
c = ctypes.CDLL(None, use_errno=True)
d = sys.argv[1]
def cpuid():
    return c.syscall(158, 0x1011, 0)
got = {}
def faulting():
    if c.syscall(158, 0x1012, 0) < 0:
        sys.exit("ARCH_SET_CPUID: %d" % ctypes.get_errno())
    got["before"] = cpuid()
    while not os.path.exists(d + "/go"):
        time.sleep(0.02)
    got["thread"] = cpuid()
t = threading.Thread(target=faulting)
t.start()
while "before" not in got:
    time.sleep(0.01)
open(d + "/ready", "w").write("main %d thread %d" % (cpuid(), got["before"]))
t.join()
open(d + "/result", "w").write("main %d thread %d" % (cpuid(), got["thread"]))
time.sleep(60)
'

py_cpuid() {
	py_start "$PY_CPUID" ready || return 1
	[ "$(cat "$PY_DIR/ready")" = "main 1 thread 0" ] || { REASON="before the dump: $(cat "$PY_DIR/ready")"; return 1; }
	cr_dump dump "$PY_PID" "$CASE_TMP/img" || return 1
	cr_run restore restore -D "$CASE_TMP/img" --detach ||
		{ REASON="cr restore failed (exit $CR_STATUS): $(last_line "$CR_ERR")"; return 1; }
	touch "$PY_DIR/go"
	wait_until 10 test -s "$PY_DIR/result" || { REASON="no result from python3: $(tail -n 3 "$PY_DIR/out")"; return 1; }
	[ "$(cat "$PY_DIR/result")" = "main 1 thread 0" ] || { REASON="restored python3: $(cat "$PY_DIR/result")"; return 1; }
}

# The policies of PID's mappings, as numa_maps says them, one line.
numa_policies() {
	awk '{ print $2 }' /proc/"$1"/numa_maps | sort -u | tr '\n' ' '
}

numactl_interleave() {
	local dir=$CASE_TMP/n before
	command -v numactl >/dev/null || { REASON="numactl is not installed (make deps)"; return 1; }
	[ -e /proc/self/numa_maps ] || { REASON="this kernel has no NUMA (CONFIG_NUMA)"; return 1; }
	mkdir -p "$dir"
	real_start "$dir/out" "$dir" sleep numactl --interleave=all sleep 1000 || return 1
	before=$(numa_policies "$WL_PID")   # interleave:NODES, one policy for every mapping
	[[ $before == "interleave:"+([0-9,-])" " ]] || { REASON="policies before: $before"; return 1; }
	cr_run dump dump "$WL_PID" -D "$CASE_TMP/img"
	check_refused "$WL_PID" "$CASE_TMP/img" "thread $WL_PID: a NUMA memory policy (interleave, set_mempolicy)" \
		"unsupported" || return 1
	running_free "$WL_PID" "$WL_EXE" || { REASON="after the refused dump: $(describe_pid "$WL_PID")"; return 1; }
	[ "$(numa_policies "$WL_PID")" = "$before" ] || { REASON="policies after: $(numa_policies "$WL_PID")"; return 1; }
}

landlock_probe_alone() {
	local pid exe st bad
	( exec "$CR" --landlock-probe 65534 65534 "$BASHPID" 0 3>"$CASE_TMP/pid" ) </dev/null >/dev/null 2>&1 &
	pid=$!
	disown "$pid"
	track_pid "$pid"
	wait_until 5 test -s "$CASE_TMP/pid" || { REASON="the probe wrote no pid: $(describe_pid "$pid")"; return 1; }
	[ "$(od -An -tu4 "$CASE_TMP/pid" | tr -d ' ')" = "$pid" ] ||
		{ REASON="the probe wrote $(od -An -tu4 "$CASE_TMP/pid"), not $pid"; return 1; }
	exe=$(readlink /proc/"$pid"/exe)
	[ "$exe" = "$(readlink -f "$CR")" ] || { REASON="the probe runs $exe"; return 1; }
	grep -qx $'Uid:\t65534\t65534\t65534\t65534' /proc/"$pid"/status &&
		grep -qx $'Gid:\t65534\t65534\t65534\t65534' /proc/"$pid"/status &&
		grep -qx $'CapEff:\t0000000000000000' /proc/"$pid"/status &&
		grep -qx $'CapPrm:\t0000000000000000' /proc/"$pid"/status ||
		{ REASON="the probe's ids or capabilities: $(grep -E '^(Uid|Gid|CapEff|CapPrm)' /proc/"$pid"/status | tr '\n' ' ')"; return 1; }
	[ "$(stat -c %u /proc/"$pid")" = 65534 ] || { REASON="the probe is not dumpable (its /proc belongs to root)"; return 1; }
	kill -KILL "$pid"
	for bad in "65534 x $$ 0" "65534 -1 $$ 0" "4294967295 0 $$ 0" "65534 65534 $$" "65534 65534 $$ 1"; do
		# shellcheck disable=SC2086
		"$CR" --landlock-probe $bad 3>/dev/null </dev/null >/dev/null 2>&1
		st=$?
		[ "$st" = 1 ] || { REASON="ids '$bad': exit $st"; return 1; }
	done
}

# Scans the memory of pid $1 for the hex bytes $2: "found" or "absent".
MEM_HAS='
import sys
pid, needle = int(sys.argv[1]), bytes.fromhex(sys.argv[2])
found = False
with open("/proc/%d/maps" % pid) as maps, open("/proc/%d/mem" % pid, "rb", 0) as mem:
    for line in maps:
        addr, perms = line.split()[:2]
        if "r" not in perms or line.rstrip().endswith("[vsyscall]"):
            continue
        start, end = (int(x, 16) for x in addr.split("-"))
        try:
            mem.seek(start)
            found = found or needle in mem.read(end - start)
        except OSError:
            pass
print("found" if found else "absent")
'

# landlock_probe_of PID UID: the pid of a Landlock probe of the cr dump
# PID: a child of a child of PID (the dump's worker) running as UID (cr's
# own helpers stay root), whatever it runs; fails if there is none.
landlock_probe_of() {
	local f pid worker
	for f in /proc/[0-9]*/status; do
		pid=${f#/proc/}
		pid=${pid%/status}
		grep -qx "Uid:	$2	$2	$2	$2" "$f" 2>/dev/null || continue
		worker=$(awk '{ print $4 }' /proc/"$pid"/stat 2>/dev/null) || continue
		[ "$(awk '{ print $4 }' /proc/"$worker"/stat 2>/dev/null)" = "$1" ] || continue
		echo "$pid"
		return 0
	done
	return 1
}

probe_no_secrets() {
	local key=$CASE_TMP/key sk port dump probe got pid worker
	cr_run keygen keygen "$key" || { REASON="cr keygen failed: $(last_line "$CR_ERR")"; return 1; }
	sk=$(sed -n 2p "$key" | cut -c1-64)   # the key's first 32 bytes
	real_start "$CASE_TMP/s.out" "$CASE_TMP" sleep setpriv --reuid 65534 --regid 65534 --clear-groups sleep 1000 || return 1
	pid=$WL_PID
	# A "page server" that takes the connection and never answers.
	( clean_exec python3 -c '
import socket, sys, time
l = socket.socket(); l.bind(("127.0.0.1", 0)); l.listen(1)
open(sys.argv[1], "w").write(str(l.getsockname()[1]))
c, _ = l.accept()
time.sleep(60)' "$CASE_TMP/port" ) </dev/null >/dev/null 2>&1 &
	local server=$!
	track_pid "$server"
	wait_until 5 test -s "$CASE_TMP/port" || { REASON="the silent server did not start"; return 1; }
	port=$(cat "$CASE_TMP/port")
	( exec "$CR" dump "$pid" -D "$CASE_TMP/img" --sign "$key" --page-server --address 127.0.0.1 --port "$port" ) \
		</dev/null >"$CASE_TMP/dump.out" 2>"$CASE_TMP/dump.err" &
	dump=$!
	track_pid "$dump"
	CASE_LOGS+=("$CASE_TMP/dump.err")
	wait_until 10 landlock_probe_of "$dump" 65534 || { REASON="no Landlock probe while the dump waits"; return 1; }
	probe=$(landlock_probe_of "$dump" 65534)
	worker=$(awk '{ print $4 }' /proc/"$probe"/stat)   # the cr that dumps (cr dump supervises it)
	# cr has loaded the key once it waits for the server (the probe is made before).
	wait_until 10 sh -c '[ "$(python3 -c "$1" "$2" "$3")" = found ]' sh "$MEM_HAS" "$worker" "$sk" ||
		{ REASON="the scan does not find the key in the memory of cr ($worker)"; return 1; }
	got=$(python3 -c "$MEM_HAS" "$probe" "$sk")
	[ "$got" = absent ] || { REASON="the probe ($probe) holds the signing key"; return 1; }
	[ "$(stat -c %u /proc/"$probe")" = 65534 ] || { REASON="probe $probe is not the sleep's uid's"; return 1; }
	[[ $(tr '\0' ' ' </proc/"$probe"/cmdline) == "cr --landlock-probe "* ]] ||
		{ REASON="probe $probe is not cr executed again: $(tr '\0' ' ' </proc/"$probe"/cmdline)"; return 1; }
	[ -z "$(tr -d '\0' </proc/"$probe"/environ)" ] || { REASON="the probe has an environment"; return 1; }
	[ "$(readlink /proc/"$probe"/fd/0) $(readlink /proc/"$probe"/fd/1) $(readlink /proc/"$probe"/fd/2)" = \
		"/dev/null /dev/null /dev/null" ] || { REASON="the probe's fds 0-2: $(ls -l /proc/"$probe"/fd | tr '\n' ' ')"; return 1; }
	[ "$(stat -L -c %d:%i /proc/"$probe"/root)" = "$(stat -L -c %d:%i /proc/"$pid"/root)" ] ||
		{ REASON="the probe's root is not the sleep's"; return 1; }
	kill "$server"
	wait_until 40 pid_gone "$dump" || { REASON="the dump did not end once the server went"; return 1; }
	pid_gone "$probe" || { REASON="probe $probe outlived the dump"; return 1; }
	running_free "$pid" "$WL_EXE" || { REASON="after the failed dump: $(describe_pid "$pid")"; return 1; }
}

# python3 (ctypes): set_mempolicy in its second thread (THREAD=1) or mbind
# of a 1 MiB mmap (THREAD=0), node 0, mode MODE; "ready" holds the
# thread's id or the mapping's address (hex).
PY_MEMPOLICY='
import ctypes, mmap, sys, threading, time
c = ctypes.CDLL(None, use_errno=True)
d, thread, mode = sys.argv[1], sys.argv[2] == "1", int(sys.argv[3])
mask = ctypes.c_ulong(1)
def fail(what):
    sys.exit("%s: errno %d" % (what, ctypes.get_errno()))
if thread:
    def own():
        if c.syscall(238, mode, ctypes.byref(mask), ctypes.c_ulong(64)) < 0:
            fail("set_mempolicy")
        open(d + "/ready", "w").write(str(threading.get_native_id()))
        time.sleep(1000)
    threading.Thread(target=own, daemon=True).start()
else:
    m = mmap.mmap(-1, 1 << 20)
    addr = ctypes.addressof(ctypes.c_char.from_buffer(m))
    if c.syscall(237, ctypes.c_void_p(addr), ctypes.c_ulong(1 << 20), mode, ctypes.byref(mask), ctypes.c_ulong(64), 0) < 0:
        fail("mbind")
    m[0:5] = b"bound"
    open(d + "/ready", "w").write("%x" % addr)
time.sleep(1000)
'

# The policy word of the line of ADDR (hex) in numa_maps FILE.
numa_word() {
	awk -v a="$2" '$1 == a { print $2 }' "$1"
}

py_thread_mempolicy() {
	local tid
	[ -e /proc/self/numa_maps ] || { REASON="this kernel has no NUMA (CONFIG_NUMA)"; return 1; }
	py_start "$PY_MEMPOLICY" ready 1 3 || return 1
	tid=$(cat "$PY_DIR/ready")
	[[ $(head -n 1 /proc/"$PY_PID"/task/"$tid"/numa_maps) == *" interleave:"* ]] ||
		{ REASON="thread $tid has no interleave policy: $(head -n 1 /proc/"$PY_PID"/task/"$tid"/numa_maps)"; return 1; }
	cr_run dump dump "$PY_PID" -D "$CASE_TMP/img"
	check_refused "$PY_PID" "$CASE_TMP/img" "thread $tid: a NUMA memory policy (interleave, set_mempolicy)" \
		"unsupported" || return 1
	running_free "$PY_PID" "$PY_EXE" || { REASON="after the refused dump: $(describe_pid "$PY_PID")"; return 1; }
	[[ $(head -n 1 /proc/"$PY_PID"/task/"$tid"/numa_maps) == *" interleave:"* ]] ||
		{ REASON="after the refused dump, thread $tid: $(head -n 1 /proc/"$PY_PID"/task/"$tid"/numa_maps)"; return 1; }
}

py_mbind() {
	local addr
	[ -e /proc/self/numa_maps ] || { REASON="this kernel has no NUMA (CONFIG_NUMA)"; return 1; }
	py_start "$PY_MEMPOLICY" ready 0 2 || return 1
	addr=$(cat "$PY_DIR/ready")
	[ "$(numa_word /proc/"$PY_PID"/numa_maps "$addr")" = bind:0 ] ||
		{ REASON="mapping $addr: '$(numa_word /proc/"$PY_PID"/numa_maps "$addr")'"; return 1; }
	[[ $(head -n 1 /proc/"$PY_PID"/numa_maps) == *" default "* ]] ||
		{ REASON="python3 has a policy of its own: $(head -n 1 /proc/"$PY_PID"/numa_maps)"; return 1; }
	cr_run dump dump "$PY_PID" -D "$CASE_TMP/img"
	check_refused "$PY_PID" "$CASE_TMP/img" "a NUMA memory policy (bind, mbind) of the mapping 0x$addr-" \
		"unsupported" || return 1
	running_free "$PY_PID" "$PY_EXE" || { REASON="after the refused dump: $(describe_pid "$PY_PID")"; return 1; }
	[ "$(numa_word /proc/"$PY_PID"/numa_maps "$addr")" = bind:0 ] ||
		{ REASON="after the refused dump, mapping $addr: '$(numa_word /proc/"$PY_PID"/numa_maps "$addr")'"; return 1; }
}

py_landlock_pidns() {
	local dir=$CASE_TMP/u py tid
	mkdir -p "$dir"
	real_start "$dir/out" "$dir" unshare unshare -pf python3 -c "$PY_LANDLOCK" "$dir" || return 1
	wait_until 10 test -e "$dir/ready" || { REASON="python3 did not get ready: $(cat "$dir/out.err")"; return 1; }
	py=$(cat /proc/"$WL_PID"/task/*/children | tr -d ' ')
	tid=$(ls /proc/"$py"/task | sort -n | sed -n 2p)
	[ "$(awk '/^NSpid:/ { print $3 }' /proc/"$py"/status)" = 1 ] || { REASON="python3 is not its namespace's init"; return 1; }
	cr_run dump dump "$WL_PID" -D "$CASE_TMP/img"
	check_refused "$tid" "$CASE_TMP/img" "pid $py thread $tid: in a Landlock domain" "unsupported" || return 1
	running_free "$WL_PID" "$WL_EXE" || { REASON="after the refused dump: $(describe_pid "$WL_PID")"; return 1; }
	PY_DIR=$dir
	[ "$(landlock_try 1)" = denied ] || { REASON="after the refused dump python3 could execute"; return 1; }
}

run_case nginx_coredump_filter nginx_coredump_filter
run_case perl_mce_kill perl_mce_kill
run_case py_landlock py_landlock
run_case py_landlock_pidns py_landlock_pidns
run_case sh_autogroup sh_autogroup
run_case autogroup_restorer autogroup_restorer
run_case py_cpuid py_cpuid
run_case numactl_interleave numactl_interleave
run_case landlock_probe_alone landlock_probe_alone
run_case probe_no_secrets probe_no_secrets
run_case py_thread_mempolicy py_thread_mempolicy
run_case py_mbind py_mbind
finish_tests
