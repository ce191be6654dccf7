#!/usr/bin/env bash
# t_pidns: nested pid namespaces. w_pidns (see its header) is a root in the
# harness's namespace, inits of ns1 > ns2 > ns3 nested three deep below it
# (clone(CLONE_NEWPID)) each with another process beside it (two of them
# with a second thread, one leading a process group in ns1, one leading a
# session in ns3), a zombie in ns3, and a process that unshared a pid
# namespace and forked its pid 1 and pid 2. It is dumped and restored twice
# (the second dump is of the restored tree); after each restore, seen from
# the harness, every process and thread must have the same NSpid, NStgid,
# NSpgid and NSsid lines (every level), parent, state, and the processes
# must share pid namespaces exactly as before (which ones are together,
# which one's children live in another). Then the trigger: each process
# compares what it sees from inside (getpid, getppid, gettid, /proc/self,
# /proc/self/status) with what it recorded, and the root passes with its
# pid and token.
#
# Then real programs whose dumped root is the init (pid 1) of a pid
# namespace right below the harness's, made by `unshare -pf`, restored
# without --new-pidns (the same checks of /proc, groups and sessions led
# from outside the tree aside):
#   init_root_sleep           `unshare -pf sleep N`: back with its host pid
#                             and pid 1 inside, still in its sleep
#   init_root_bash_reaps      `unshare -pf setsid bash -c 'sleep & sleep &
#                             wait; ...'`: the sleeps are pids 2 and 3 inside
#                             again; bash reaps each as it is killed, then
#                             goes on with the token it made before the dump
#   init_root_python_nested   python3 as init unshares a pid namespace for
#                             its child, pid 1 of ns2 (three pid levels),
#                             which has a child (pid 2 in ns2); each checks
#                             its pid and parent from inside, parents reap,
#                             the root keeps its token in memory
#   init_two_deep_refused     `unshare -pf unshare -pf sleep`: the inner
#                             sleep, init of a namespace whose parent
#                             namespace's init is not dumped, is refused by
#                             a plain restore saying so, and --new-pidns
#                             makes it pid 1 of a fresh namespace
# and a shape the restore cannot make, refused at dump:
#   unshare_after_fork_refused  python3 forks a child, unshares its pid
#                             namespace for children, forks another: the
#                             dump is refused naming the first child, and
#                             the tree runs on and passes
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/treelib.sh"

# One line per process: its namespaces (labelled in order of appearance, so
# that two snapshots of different namespaces with the same shape compare
# equal), the NS* lines of its status, and the NSpid line of each thread.
pidns_snapshot() {
	local idx pid _ f ns line key val t next=0
	local -A ns_label=()
	while read -r idx _ pid _; do
		line="$idx"
		for f in pid pid_for_children; do
			ns=$(readlink /proc/"$pid"/ns/"$f" 2>/dev/null) || ns=none
			if [ "$ns" != none ] && [ -z "${ns_label[$ns]:-}" ]; then
				ns_label[$ns]=ns$next
				next=$((next + 1))
			fi
			line+=" $f=${ns_label[$ns]:-none}"
		done
		while IFS=$'\t' read -r key val; do
			case $key in
			NSpid: | NStgid: | NSpgid: | NSsid:) line+=" $key${val//$'\t'/,}" ;;
			esac
		done 2>/dev/null < /proc/"$pid"/status
		for t in /proc/"$pid"/task/*; do
			while IFS=$'\t' read -r key val; do
				[ "$key" = NSpid: ] && line+=" thread:${val//$'\t'/,}"
			done 2>/dev/null < "$t"/status
		done
		echo "$line"
	done < "$WL_DIR/tree"
}

# The shape the workload claims is really there.
check_shape() {
	local snap=$1 line
	line=$(grep '^6 ' <<<"$snap")
	[[ $line =~ NSpid:[0-9]+,[0-9]+,[0-9]+,2( |$) ]] ||
		{ REASON="process 6 (ns3-child) is not pid 2 four levels deep: $line"; return 1; }
	[[ $line =~ NSsid:[0-9]+,[0-9]+,[0-9]+,2( |$) ]] ||
		{ REASON="process 6 (ns3-child) does not lead a session in ns3: $line"; return 1; }
	line=$(grep '^5 ' <<<"$snap")
	[[ $line =~ NSpid:[0-9]+,[0-9]+,[0-9]+,1( |$) ]] ||
		{ REASON="process 5 (init-ns3) is not pid 1 of the third nested namespace: $line"; return 1; }
	line=$(grep '^8 ' <<<"$snap")
	[[ $line =~ ^8\ pid=ns0\ pid_for_children=ns[1-9] ]] ||
		{ REASON="process 8 (unsharer) does not have its children's namespace apart: $line"; return 1; }
}

pidns_round() {
	local label=$1 img=$CASE_TMP/img-$1
	cr_dump "dump-$label" "$WL_PID" "$img" || return 1
	check_images "$img" || return 1
	tree_await_gone || { REASON="$label: after cr dump: $REASON"; return 1; }
	cr_restore_detached "restore-$label" "$img" || return 1
	tree_await_same "$BEFORE" "$label: /proc differs after restore" || return 1
	compare_snapshots "$BEFORE_NS" "$(pidns_snapshot)" "$label: pid namespaces differ after restore"
}

nested_pidns() {
	wl_start w_pidns || return 1
	tree_track || return 1
	BEFORE=$(tree_snapshot)
	tree_check_recorded "$BEFORE" || return 1
	BEFORE_NS=$(pidns_snapshot)
	check_shape "$BEFORE_NS" || return 1
	pidns_round round1 || return 1
	pidns_round round2 || return 1
	wl_trigger || return 1
	wl_expect_pass 20 || return 1
	wl_await_exit || return 1
	tree_await_gone 10 || { REASON="after the workload finished: $REASON"; return 1; }
}

# ---- a pid namespace's init as the dumped root ----------------------------------
# Real programs started with `unshare -pf`: the dumped root is pid 1 of a
# namespace right below the harness's, and a plain `cr restore` (no
# --new-pidns) brings it back as that namespace's init with its host pid,
# and its children with their pids at every level.

# ns_dir: a fresh WL_DIR for the tree file and what the program writes.
ns_dir() {
	WL_DIR=$(mktemp -d "$CASE_TMP/init.XXXX")
}

# ns_start COMM CMD...: `unshare -pf CMD...` with only fds 0-2 open, in
# the harness's session and group; sets INIT_PID, the host pid of the
# namespace's init once it runs COMM.
ns_start() {
	local comm=$1 launcher
	shift
	( clean_exec unshare -pf "$@" ) </dev/null >"$WL_DIR/out" 2>&1 &
	launcher=$!
	disown "$launcher"
	track_pid "$launcher"
	CASE_LOGS+=("$WL_DIR/out")
	wait_until 10 child_runs "$launcher" "$comm" >/dev/null ||
		{ REASON="unshare -pf $1 did not start it: $(describe_pid "$launcher")"; return 1; }
	INIT_PID=$(child_runs "$launcher" "$comm")
	track_pid "$INIT_PID"
}

# child_runs PID COMM: prints PID's only child once it runs COMM.
child_runs() {
	local kids comm
	kids=$(cat /proc/"$1"/task/*/children 2>/dev/null) || return 1
	kids=${kids% }
	case $kids in '' | *' '*) return 1 ;; esac
	read -r comm 2>/dev/null < /proc/"$kids"/comm || return 1
	[ "$comm" = "$2" ] && echo "$kids"
}

# record_tree PID: the tree file of treelib.sh for the processes from PID
# down, parents first: "<index> R <pid> <ppid> -".
record_tree() {
	local queue=("$1") idx=0 pid
	: > "$WL_DIR/tree.new"
	while [ ${#queue[@]} -gt 0 ]; do
		pid=${queue[0]}
		queue=("${queue[@]:1}")
		echo "$idx R $pid $(status_field "$pid" PPid) -" >> "$WL_DIR/tree.new"
		idx=$((idx + 1))
		# shellcheck disable=SC2207
		queue+=($(cat /proc/"$pid"/task/*/children 2>/dev/null))
	done
	mv "$WL_DIR/tree.new" "$WL_DIR/tree"
}

# tree_comms_are COMM...: record_tree from INIT_PID finds exactly these
# commands, parents first.
tree_comms_are() {
	local want="$*" got="" pid comm
	record_tree "$INIT_PID"
	for pid in $(tree_pids); do
		read -r comm 2>/dev/null < /proc/"$pid"/comm || return 1
		got+="$comm "
	done
	[ "${got% }" = "$want" ]
}

await_tree() {
	wait_until 10 tree_comms_are "$@" && tree_track && return 0
	REASON="the tree below $INIT_PID is not '$*' but '$(for p in $(tree_pids); do cat /proc/"$p"/comm; done | tr '\n' ' ')'"
	return 1
}

# nspid_of INDEX SNAPSHOT: the NSpid list of process INDEX in a
# pidns_snapshot, as "a,b,...".
nspid_of() {
	local line
	line=$(grep "^$1 pid=" <<<"$2")
	line=${line##* NSpid:}
	echo "${line%% *}"
}

# mask_outside SNAPSHOT: a group or session led from outside the tree reads
# "out": it is the harness's before the dump and cr's after the restore, as
# for any root whose leader is not dumped.
mask_outside() {
	local pids line word out prefix n
	pids=" $(tree_pids | tr '\n' ' ') "
	while read -r line; do
		out=
		for word in $line; do
			case $word in
			pgid=* | sid=* | NSpgid:* | NSsid:*)
				prefix=${word%%[=:]*}
				n=${word#*[=:]}
				n=${n%%,*}
				[[ $pids == *" $n "* ]] || word=$prefix${word:${#prefix}:1}out ;;
			esac
			out+="$word "
		done
		echo "${out% }"
	done <<<"$1"
}

masked_snapshots() {
	mask_outside "$(tree_snapshot)"
	mask_outside "$(pidns_snapshot)"
}

masked_same() {
	[ "$(masked_snapshots)" = "$1" ]
}

# init_roundtrip: dumps the tree at INIT_PID (pid 1 of a namespace below
# the harness's), restores it without --new-pidns, and wants every process
# back as it was: pids at every level, parents, groups, state, threads,
# which processes share which pid namespace.
init_roundtrip() {
	local img=$CASE_TMP/img before
	before=$(masked_snapshots)
	[ "$(nspid_of 0 "$before")" = "$INIT_PID,1" ] ||
		{ REASON="the root is not pid 1 of a namespace below the harness's: $(grep '^0 ' <<<"$before")"; return 1; }
	cr_dump dump "$INIT_PID" "$img" || return 1
	tree_await_gone || { REASON="after cr dump: $REASON"; return 1; }
	cr_run restore restore -D "$img" --detach ||
		{ REASON="cr restore without --new-pidns failed: $(last_line "$CR_ERR")"; return 1; }
	wait_until 3 masked_same "$before" ||
		compare_snapshots "$before" "$(masked_snapshots)" "/proc differs after restore" || return 1
	[ "$(readlink /proc/"$INIT_PID"/ns/pid)" != "$(readlink /proc/self/ns/pid)" ] ||
		{ REASON="the restored root is in the harness's pid namespace"; return 1; }
}

# `unshare -pf sleep N`: sleep is the init; it comes back asleep.
init_sleep() {
	local secs=$((100000 + RANDOM))
	ns_dir
	ns_start sleep sleep "$secs" || return 1
	await_tree sleep || return 1
	wait_until 10 blocked_in "$INIT_PID" 230 || { REASON="sleep is not in clock_nanosleep"; return 1; }
	init_roundtrip || return 1
	[ "$(tr '\0' ' ' < /proc/"$INIT_PID"/cmdline)" = "sleep $secs " ] ||
		{ REASON="restored pid $INIT_PID runs '$(tr '\0' ' ' < /proc/"$INIT_PID"/cmdline)'"; return 1; }
	wait_until 5 in_sleep_call "$INIT_PID" ||
		{ REASON="restored sleep is in system call $(cut -d' ' -f1 < /proc/"$INIT_PID"/syscall)"; return 1; }
}

# clock_nanosleep (230), or restart_syscall (219) after the interruption.
in_sleep_call() {
	blocked_in "$1" 230 || blocked_in "$1" 219
}

# A bash init (leading its session: `unshare -pf setsid bash`) with two
# sleeping children: bash keeps its token (made after it started) in
# memory, reaps each child as it dies and goes on after its `wait`.
# shellcheck disable=SC2016
BASH_INIT='tok=$RANDOM$RANDOM$RANDOM
echo "$tok" > "$1/token"
sleep 1000 &
sleep 1000 &
wait
echo "reaped $$ $tok" > "$1/result"'

init_bash() {
	local tok kid1 kid2 snap
	ns_dir
	ns_start bash setsid bash -c "$BASH_INIT" _ "$WL_DIR" || return 1
	await_tree bash sleep sleep || return 1
	tok=$(cat "$WL_DIR/token")
	snap=$(pidns_snapshot)
	[[ $(nspid_of 1 "$snap") =~ ^[0-9]+,[23]$ && $(nspid_of 2 "$snap") =~ ^[0-9]+,[23]$ ]] ||
		{ REASON="the sleeps are not pids 2 and 3 of bash's namespace: $snap"; return 1; }
	init_roundtrip || return 1
	kid1=$(awk '$1 == 1 { print $3 }' "$WL_DIR/tree")
	kid2=$(awk '$1 == 2 { print $3 }' "$WL_DIR/tree")
	kill -KILL "$kid1"
	wait_until 5 pid_gone "$kid1" ||
		{ REASON="the restored bash init did not reap its child $kid1: $(describe_pid "$kid1")"; return 1; }
	if ! proc_alive "$INIT_PID" || [ -e "$WL_DIR/result" ]; then
		REASON="bash went on before its second child died"
		return 1
	fi
	kill -KILL "$kid2"
	wait_until 10 test -s "$WL_DIR/result" || { REASON="the restored bash did not go on after wait"; return 1; }
	[ "$(cat "$WL_DIR/result")" = "reaped 1 $tok" ] ||
		{ REASON="bash wrote '$(cat "$WL_DIR/result")', want 'reaped 1 $tok'"; return 1; }
	wait_until 5 pid_gone "$INIT_PID" || { REASON="bash init did not exit: $(describe_pid "$INIT_PID")"; return 1; }
	pid_gone "$kid2" || { REASON="child $kid2 outlived its namespace's init"; return 1; }
}

# A python3 init that unshares a pid namespace for its children: its child
# is pid 1 of a second namespace, with a child of its own. Each checks its
# pid and parent from inside against what it saw at the start; each parent
# reaps its child; the root keeps a token and a counter in memory.
PY_INIT='
import ctypes, os, sys, time
d = sys.argv[1]
token = os.urandom(8).hex()
def path(name):
    return os.path.join(d, name)
def wait_go():
    n = 0
    while not os.path.exists(path("go")):
        n += 1
        time.sleep(0.05)
    return n
def reaped_ok(pid):
    return os.waitpid(pid, 0)[1] == 0
def ids_are(pid, ppid):
    return (os.getpid(), os.getppid()) == (pid, ppid)
start_ids = (os.getpid(), os.getppid())
if ctypes.CDLL(None, use_errno=True).unshare(0x20000000) != 0:    # CLONE_NEWPID
    sys.exit("unshare: errno %d" % ctypes.get_errno())
b = os.fork()
if b == 0:                       # pid 1 of the second namespace
    c = os.fork()
    if c == 0:
        mine = os.getpid()
        open(path("c"), "w").close()
        wait_go()
        os._exit(0 if ids_are(mine, 1) and mine > 1 else 1)
    open(path("b"), "w").close()
    wait_go()
    os._exit(0 if reaped_ok(c) and ids_are(1, 0) else 1)
with open(path("token"), "w") as f:
    f.write(token)
n = wait_go()
ok = reaped_ok(b) and ids_are(1, 0) and start_ids == (1, 0) and n > 0
with open(path("result"), "w") as f:
    f.write("PASS %s" % token if ok else "FAIL pid %d ppid %d" % (os.getpid(), os.getppid()))
'

init_python_nested() {
	local snap tok py
	# The interpreter itself, not a wrapper script that would run first.
	py=$(python3 -c 'import sys; print(sys.executable)') || { REASON="no python3"; return 1; }
	ns_dir
	ns_start python3 "$py" -c "$PY_INIT" "$WL_DIR" || return 1
	wait_until 10 test -e "$WL_DIR/c" -a -e "$WL_DIR/b" -a -e "$WL_DIR/token" ||
		{ REASON="python3 did not get ready: $(tail -n 3 "$WL_DIR/out")"; return 1; }
	await_tree python3 python3 python3 || return 1
	tok=$(cat "$WL_DIR/token")
	snap=$(pidns_snapshot)
	[[ $(nspid_of 1 "$snap") =~ ^[0-9]+,[0-9]+,1$ && $(nspid_of 2 "$snap") =~ ^[0-9]+,[0-9]+,2$ ]] ||
		{ REASON="not an init of ns1 > init of ns2 > its pid 2: $snap"; return 1; }
	init_roundtrip || return 1
	touch "$WL_DIR/go"
	wait_until 15 test -s "$WL_DIR/result" || { REASON="no result from python3: $(tail -n 3 "$WL_DIR/out")"; return 1; }
	[ "$(cat "$WL_DIR/result")" = "PASS $tok" ] || { REASON="python3 reports: $(cat "$WL_DIR/result")"; return 1; }
	wait_until 5 pid_gone "$INIT_PID" || { REASON="python3 init did not exit: $(describe_pid "$INIT_PID")"; return 1; }
}

# The init of a namespace two levels down (`unshare -pf unshare -pf sleep`,
# the outer namespace's init not dumped) cannot keep its pids: the plain
# restore is refused, saying why, and --new-pidns makes it pid 1 of a fresh
# namespace.
init_two_deep() {
	local img=$CASE_TMP/img outer nspid host secs=$((100000 + RANDOM))
	ns_dir
	ns_start unshare unshare -pf sleep "$secs" || return 1
	outer=$INIT_PID
	wait_until 10 child_runs "$outer" sleep >/dev/null || { REASON="the inner sleep did not start"; return 1; }
	INIT_PID=$(child_runs "$outer" sleep)
	track_pid "$INIT_PID"
	nspid=$(awk '/^NSpid:/ { $1 = ""; print substr($0, 2) }' /proc/"$INIT_PID"/status)
	[ "$nspid" = "$INIT_PID 2 1" ] || { REASON="the inner sleep is not pid 1 two levels down: NSpid $nspid"; return 1; }
	cr_dump dump "$INIT_PID" "$img" || return 1
	if cr_run restore-plain restore -D "$img" --detach; then
		REASON="a plain restore of an init two levels down succeeded"
		return 1
	fi
	grep -q "is the init of a pid namespace nested 2 levels deep.*where the root is pid 2) was not dumped.*--new-pidns" "$CR_ERR" ||
		{ REASON="the refusal does not say why: $(last_line "$CR_ERR")"; return 1; }
	pid_gone "$INIT_PID" || { REASON="the refused restore left pid $INIT_PID"; return 1; }
	cr_run restore-new restore -D "$img" --detach --new-pidns ||
		{ REASON="--new-pidns: $(last_line "$CR_ERR")"; return 1; }
	for host in $(pgrep -x sleep); do
		[ "$(tr '\0' ' ' 2>/dev/null < /proc/"$host"/cmdline)" = "sleep $secs " ] && break
		host=
	done
	[ -n "${host:-}" ] || { REASON="the restored sleep is not found"; return 1; }
	track_pid "$host"
	[[ $(awk '/^NSpid:/ { print NF - 1 "," $NF }' /proc/"$host"/status) = 2,1 ]] ||
		{ REASON="--new-pidns gave NSpid '$(grep NSpid /proc/"$host"/status)', want 2 levels, pid 1 inside"; return 1; }
}

# A python3 process that forked a child, then unshared its pid namespace
# for children and forked another (pid 1 there): the restore makes every
# child of a process after its unshare, so the dump refuses the tree,
# naming the first child, and the tree runs on.
PY_UNSHARE_AFTER_FORK='
import ctypes, os, sys, time
d = sys.argv[1]
def wait_go():
    while not os.path.exists(os.path.join(d, "go")):
        time.sleep(0.05)
def child():
    wait_go()
    os._exit(0)
a = os.fork()
if a == 0:
    child()
if ctypes.CDLL(None, use_errno=True).unshare(0x20000000) != 0:    # CLONE_NEWPID
    sys.exit("unshare: errno %d" % ctypes.get_errno())
b = os.fork()
if b == 0:
    child()
with open(os.path.join(d, "kids"), "w") as f:
    f.write("%d %d" % (a, b))
wait_go()
ok = all(os.waitpid(k, 0)[1] == 0 for k in (a, b))
with open(os.path.join(d, "result"), "w") as f:
    f.write("PASS %d" % os.getpid() if ok else "FAIL")
'

unshare_after_fork_refused() {
	local a
	py_start "$PY_UNSHARE_AFTER_FORK" kids || return 1
	read -r a _ < "$PY_DIR/kids"
	cr_run dump dump "$PY_PID" -D "$CASE_TMP/img"
	check_refused "$a" "$CASE_TMP/img" "before that unshared its pid namespace for children" || return 1
	running_free "$PY_PID" "$PY_EXE" || { REASON="after the refused dump: $(describe_pid "$PY_PID")"; return 1; }
	touch "$PY_DIR/go"
	wait_until 15 test -s "$PY_DIR/result" || { REASON="no result from python3: $(tail -n 3 "$PY_DIR/out")"; return 1; }
	[ "$(cat "$PY_DIR/result")" = "PASS $PY_PID" ] || { REASON="python3 reports: $(cat "$PY_DIR/result")"; return 1; }
}

run_case nested_pidns nested_pidns
run_case init_root_sleep init_sleep
run_case init_root_bash_reaps init_bash
run_case init_root_python_nested init_python_nested
run_case init_two_deep_refused init_two_deep
run_case unshare_after_fork_refused unshare_after_fork_refused
finish_tests
