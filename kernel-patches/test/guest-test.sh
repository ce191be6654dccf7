#!/bin/sh
# guest-test.sh VERDICT_FILE — the tests inside the kernel-test guest
# (busybox sh; started by /init below cr's subreaper helper).
#
# Cases, each adding "name=result" to the verdict line:
#   kselftest  the clone2 kselftest: every test must pass, none be skipped
#   check      `cr check` must report clone2 (skipped when cr has no check)
#   counter    w_counter dumped, restored with --pid-backend=clone2: same
#              pid (NSpid), made by clone2, the count goes on, PASS on SIGUSR2
#   state      w_state the same way; it verifies its memory, fds, signals,
#              timers... itself
#   nested     a tree across two nested pid namespaces (busybox unshare):
#              root -> init of ns1 -> init of ns2 (w_counter), dumped as a
#              tree, restored with clone2, every process back with its NSpid
#              and parent.
#   cgroup     cgroup v2 (mounted on /sys/fs/cgroup, memory, pids and cpu
#              enabled): w_counter in /job/inner with distinctive
#              memory.max, pids.max and cpu.max, dumped; both cgroups are
#              removed; the clone2 restore must make them again, put the
#              process back in /job/inner with the dumped limits, and make
#              /job without limits (its pids.max was 99)
#   cgroup-kept  the same, but /kept/inner stays and gets other limits
#              after the dump: the restore joins it and keeps them
#   cgroup-root  the same as cgroup, restored with --cgroup-root /restored,
#              made bare (no controllers for its children) after the dump:
#              back in /restored/moved/inner with the dumped limits, and
#              restore.log says cr enabled the controllers in /restored
#
# Progress lines start with "guest:"; the last line is the verdict,
#   CR-KERNEL-TEST: PASS|FAIL kselftest=... check=... counter=... ...
# also written to VERDICT_FILE.

CR=/cr/cr
WL=/cr/workloads
VERDICT_FILE=${1:-/tmp/verdict}
DETAILS=""
FAILED=0

log() {
	echo "guest: $*"
}

# result CASE WORD: a case's entry in the verdict.
result() {
	log "$1: $2"
	DETAILS="$DETAILS $1=$2"
}

# fail CASE REASON
fail() {
	log "FAIL $1: $2"
	DETAILS="$DETAILS $1=FAIL"
	FAILED=$((FAILED + 1))
	return 1
}

# field PID NAME: the value of NAME: in /proc/PID/status ("4242 17 1").
field() {
	awk -v f="$2:" '$1 == f { $1 = ""; sub(/^[ \t]+/, ""); print }' /proc/"$1"/status 2>/dev/null
}

alive() {
	local state
	state=$(field "$1" State)
	[ -n "$state" ] && [ "${state%% *}" != Z ]
}

gone() {
	[ ! -e /proc/"$1" ]
}

# wait_for TENTHS COMMAND...: polls every 100 ms.
wait_for() {
	local n=$1
	shift
	until "$@"; do
		n=$((n - 1))
		[ "$n" -le 0 ] && return 1
		sleep 0.1
	done
}

last_line() {
	tail -n 1 "$1" 2>/dev/null
}

kill_all() {
	local pid
	for pid in "$@"; do
		[ -n "$pid" ] && kill -9 "$pid" 2>/dev/null
	done
	for pid in "$@"; do
		[ -n "$pid" ] && wait_for 50 gone "$pid"
	done
}

# wl_start NAME DIR [PROG...]: starts a workload (or PROG..., which ends in
# running it) in a new session, orphaned at once so that the subreaper, not
# this shell, reaps it; waits until it is ready. Sets TOKEN_PID (its pid in
# its own namespace) and TOKEN.
wl_start() {
	local name=$1 dir=$2
	shift 2
	mkdir -p "$dir"
	(setsid "$@" "$WL/$name" "$dir" </dev/null >/dev/null 2>&1 &)
	wait_for 300 test -e "$dir/ready" || return 1
	read -r TOKEN_PID TOKEN <"$dir/token"
}

# expect_pass DIR PID: triggers the workload (outer pid PID) and wants
# "PASS <pid in its namespace> <token>".
expect_pass() {
	local dir=$1 pid=$2 got
	rm -f "$dir/result"
	kill -USR2 "$pid" 2>/dev/null || { REASON="cannot signal $pid"; return 1; }
	wait_for 600 test -e "$dir/result" || { REASON="no result within 60 s"; return 1; }
	got=$(cat "$dir/result")
	[ "$got" = "PASS $TOKEN_PID $TOKEN" ] || { REASON="result: $got"; return 1; }
	wait_for 100 gone "$pid" || { REASON="pid $pid still there after its result"; return 1; }
}

# cr_dump NAME PID IMG / cr_restore NAME IMG [ARGS...]: cr with its output in
# /tmp/NAME.{dump,restore}.out; REASON holds its last line on failure.
cr_dump() {
	timeout 300 "$CR" dump "$2" -D "$3" >"/tmp/$1.dump.out" 2>&1 && return 0
	REASON="cr dump $2 failed: $(last_line "/tmp/$1.dump.out")"
	return 1
}

cr_restore() {
	local name=$1 img=$2
	shift 2
	timeout 300 "$CR" restore -D "$img" --detach --pid-backend=clone2 "$@" >"/tmp/$name.restore.out" 2>&1 &&
		return 0
	REASON="cr restore --pid-backend=clone2${*:+ $*} failed: $(last_line "/tmp/$name.restore.out")"
	return 1
}

# The restore log names the pid clone2 created (clone2.c logs it).
made_by_clone2() {
	grep -q "clone2 created pid $2 " "$1/restore.log" 2>/dev/null && return 0
	REASON="$1/restore.log does not show clone2 creating pid $2"
	return 1
}

show_cr_logs() {
	local f
	for f in "$@"; do
		[ -s "$f" ] || continue
		log "--- $f (last lines)"
		tail -n 8 "$f" | sed 's/^/guest:     /'
	done
}

# ---- kselftest --------------------------------------------------------------------

case_kselftest() {
	local status totals pass failed skip
	/cr/clone2_test >/tmp/kselftest.log 2>&1
	status=$?
	cat /tmp/kselftest.log
	totals=$(grep '^# Totals:' /tmp/kselftest.log)
	pass=$(echo "$totals" | sed -n 's/.* pass:\([0-9]*\).*/\1/p')
	failed=$(echo "$totals" | sed -n 's/.* fail:\([0-9]*\).*/\1/p')
	skip=$(echo "$totals" | sed -n 's/.* skip:\([0-9]*\).*/\1/p')
	if [ "$status" = 0 ] && [ "${pass:-0}" -gt 0 ] && [ "$failed" = 0 ] && [ "$skip" = 0 ]; then
		result kselftest "pass:$pass"
	else
		fail kselftest "exit $status, ${totals:-no totals}"
	fi
}

# ---- cr check ----------------------------------------------------------------------

case_check() {
	local out line
	out=$("$CR" check 2>&1)
	if echo "$out" | grep -q "not part of this build"; then
		result check SKIP-absent
		return
	fi
	line=$(echo "$out" | grep -i clone2 | head -n 1)
	log "cr check: ${line:-(no clone2 line)}"
	if [ -z "$line" ]; then
		echo "$out" | sed 's/^/guest:     /'
		fail check "cr check prints no clone2 line"
	elif echo "$line" | grep -qiE 'missing|unavailable|absent|enosys|not available|not supported|(^|[^a-z])no([^a-z]|$)'; then
		fail check "cr check says: $line"
	else
		result check ok
	fi
}

# ---- one process ----------------------------------------------------------------------

# roundtrip NAME WORKLOAD [PROG...]: dump, restore with clone2, check the
# pid. WORKLOAD is started through PROG... if given (see wl_start). Hooks,
# empty unless a case sets them: RT_BEFORE PID (a command) runs before the
# dump, RT_BETWEEN between the dump and the restore, RT_AFTER PID after the
# restore (before the workload's PASS); RT_RESTORE_ARGS go to cr restore.
# A hook that fails sets REASON.
roundtrip() {
	local name=$1 wl=$2 dir=/tmp/$1 img=/tmp/$1.img pid nspid lines last first
	shift 2
	wl_start "$wl" "$dir" "$@" || { REASON="$wl did not become ready: $(cat "$dir/result" 2>/dev/null)"; return 1; }
	pid=$TOKEN_PID
	nspid=$(field "$pid" NSpid)
	[ -z "$RT_BEFORE" ] || $RT_BEFORE "$pid" || { kill_all "$pid"; return 1; }
	sleep 0.3
	cr_dump "$name" "$pid" "$img" || { kill_all "$pid"; return 1; }
	wait_for 100 gone "$pid" || { REASON="pid $pid still exists after cr dump"; kill_all "$pid"; return 1; }
	lines=$(wc -l <"$dir/log")
	last=$(last_line "$dir/log")
	[ -z "$RT_BETWEEN" ] || $RT_BETWEEN || return 1
	cr_restore "$name" "$img" $RT_RESTORE_ARGS || return 1
	if ! wait_for 100 alive "$pid"; then
		REASON="no process $pid after the restore"
		return 1
	fi
	log "$name: pid $pid NSpid '$nspid' -> '$(field "$pid" NSpid)'"
	[ "$(field "$pid" NSpid)" = "$nspid" ] || { REASON="NSpid was '$nspid', is '$(field "$pid" NSpid)'"; kill_all "$pid"; return 1; }
	made_by_clone2 "$img" "$pid" || { kill_all "$pid"; return 1; }
	if [ "$wl" = w_counter ]; then
		# The count lives only in memory: it must go on from the dump.
		wait_for 50 test "$(wc -l <"$dir/log")" -gt "$lines"
		first=$(sed -n "$((lines + 1))p" "$dir/log")
		log "$name: '$last' then '$first'"
		if [ "$first" != "pid $pid count $((${last##* } + 1))" ]; then
			REASON="the count did not go on: '$last' then '${first:-nothing}'"
			kill_all "$pid"
			return 1
		fi
	fi
	[ -z "$RT_AFTER" ] || $RT_AFTER "$pid" || { kill_all "$pid"; return 1; }
	expect_pass "$dir" "$pid" || { kill_all "$pid"; return 1; }
}

# case_roundtrip NAME WORKLOAD [PROG...]
case_roundtrip() {
	local name=$1
	REASON=""
	if roundtrip "$@"; then
		result "$name" ok
	else
		fail "$name" "$REASON"
		show_cr_logs "/tmp/$name.dump.out" "/tmp/$name.restore.out" "/tmp/$name.img/restore.log" "/tmp/$name/log"
	fi
}

# ---- cgroup v2 limits -------------------------------------------------------------

# Only this guest has the memory, pids and cpu controllers on cgroup v2 (the
# hosts bind them to v1 hierarchies). The dumped limits are distinctive; a
# cgroup that still exists at the restore gets others (CG_OTHER), which cr
# must leave alone.
CG=/sys/fs/cgroup
CG_DUMPED="$((123 << 20)) 37 43210 123456"
CG_OTHER="$((77 << 20)) 55 max 100000"

# cg_set DIR MEMORY PIDS CPU...: the limits of the cgroup DIR (below $CG).
cg_set() {
	local d=$CG$1
	shift
	echo "$1" >"$d/memory.max" && echo "$2" >"$d/pids.max" && echo "$3 $4" >"$d/cpu.max" && return 0
	REASON="cannot set the limits of $d"
	return 1
}

# cg_limits DIR: "MEMORY PIDS CPU..." as cg_set takes them.
cg_limits() {
	echo $(cat "$CG$1/memory.max" "$CG$1/pids.max" "$CG$1/cpu.max" 2>&1)
}

# cg_make DIR LIMITS...: DIR and its missing parents, each parent letting
# its children have the three controllers; DIR gets LIMITS.
cg_make() {
	local d=$1 p="" level
	shift
	mkdir -p "$CG$d" || { REASON="cannot create cgroup $CG$d"; return 1; }
	for level in $(dirname "$d" | tr / ' '); do
		p=$p/$level
		echo "+memory +pids +cpu" >"$CG$p/cgroup.subtree_control" ||
			{ REASON="cannot enable the controllers in $CG$p"; return 1; }
	done
	cg_set "$d" "$@"
}

# cg_remove DIR...: the cgroups, innermost first, once empty.
cg_remove() {
	local d
	for d in "$@"; do
		[ ! -d "$CG$d" ] || wait_for 50 rmdir "$CG$d" || { REASON="cannot remove cgroup $CG$d"; return 1; }
	done
}

# in_cgroup PID DIR: the process is in cgroup DIR.
in_cgroup() {
	local got
	got=$(grep '^0::' /proc/"$1"/cgroup 2>/dev/null)
	[ "$got" = "0::$2" ] && return 0
	REASON="pid $1 is in cgroup '${got#0::}', not '$2'"
	return 1
}

# has_limits DIR LIMITS...
has_limits() {
	local d=$1 got
	shift
	got=$(cg_limits "$d")
	log "cgroup: $CG$d: memory.max pids.max cpu.max: $got"
	[ "$got" = "$*" ] && return 0
	REASON="$CG$d has the limits '$got', not '$*'"
	return 1
}

cg_mount() {
	mkdir -p $CG
	mount -t cgroup2 cgroup2 $CG || { REASON="cannot mount cgroup2 on $CG"; return 1; }
	log "cgroup: controllers: $(cat $CG/cgroup.controllers)"
	echo "+memory +pids +cpu" >$CG/cgroup.subtree_control ||
		{ REASON="cannot enable memory, pids and cpu in $CG/cgroup.subtree_control"; return 1; }
}

# The cases' hooks (roundtrip): CG_PATH is the cgroup the workload is in
# before the dump, CG_BACK the one it must be in after the restore.
cg_before() {
	in_cgroup "$1" "$CG_PATH"
}

cg_gone() {
	cg_remove "$CG_PATH" "$(dirname "$CG_PATH")"
}

cg_recreated() {
	in_cgroup "$1" "$CG_BACK" && has_limits "$CG_BACK" $CG_DUMPED &&
		has_limits "$(dirname "$CG_BACK")" max max max 100000
}

# --cgroup-root: /restored exists, without the controllers for its
# children; cr must enable them there (saying so) for the limits.
cg_gone_root_bare() {
	cg_gone && mkdir $CG/restored && [ -z "$(cat $CG/restored/cgroup.subtree_control)" ] && return 0
	REASON="cannot make a bare $CG/restored"
	return 1
}

cg_recreated_root() {
	cg_recreated "$1" || return 1
	grep -q "enabled the memory controller in the cgroup.subtree_control of $CG/restored," \
		/tmp/cgroup-root.img/restore.log && return 0
	REASON="restore.log does not say that the memory controller was enabled in $CG/restored"
	return 1
}

cg_change() {
	cg_set "$CG_PATH" $CG_OTHER
}

cg_kept() {
	in_cgroup "$1" "$CG_PATH" && has_limits "$CG_PATH" $CG_OTHER
}

# case_cgroup NAME CGROUP BACK BETWEEN AFTER [RESTORE_ARGS]: w_counter in
# CGROUP (made with the dumped limits, its parent with pids.max 99), dumped,
# BETWEEN, restored (with RESTORE_ARGS), then AFTER: it must be in BACK.
case_cgroup() {
	local name=$1
	CG_PATH=$2 CG_BACK=$3 RT_BETWEEN=$4 RT_AFTER=$5 RT_RESTORE_ARGS=${6:-} RT_BEFORE=cg_before
	REASON=""
	if [ -n "$CG_MOUNT_FAILED" ]; then
		fail "$name" "$CG_MOUNT_FAILED"
		return
	fi
	if cg_make "$CG_PATH" $CG_DUMPED && echo 99 >"$CG$(dirname "$CG_PATH")/pids.max" &&
		roundtrip "$name" w_counter sh -c 'echo 0 >"$0/cgroup.procs" && exec "$@"' "$CG$CG_PATH"; then
		result "$name" ok
	else
		fail "$name" "$REASON"
		show_cr_logs "/tmp/$name.dump.out" "/tmp/$name.restore.out" "/tmp/$name.img/restore.log" "/tmp/$name/log"
	fi
	grep 'enabled the' "/tmp/$name.img/restore.log" 2>/dev/null | sed "s/^/guest: $name: restore.log: /"
	RT_BEFORE="" RT_BETWEEN="" RT_AFTER="" RT_RESTORE_ARGS=""
	cg_remove "$CG_BACK" "$(dirname "$CG_BACK")" "$CG_PATH" "$(dirname "$CG_PATH")" /restored
}

# ---- a tree in nested pid namespaces ---------------------------------------------------

nested_unsupported() {
	fail nested "$1"
}

# Prints "pid|NSpid|PPid" for each pid.
describe_tree() {
	local p
	for p in "$@"; do
		echo "$p|$(field "$p" NSpid)|$(field "$p" PPid)"
	done
}

nested() {
	local dir=/tmp/nested img=/tmp/nested.img root ns1 ns2 before after want p
	wl_start w_counter "$dir" unshare -p -f unshare -p -f ||
		{ REASON="the nested tree did not become ready"; return 1; }
	# w_counter is pid 1 of ns2; find its outer pid by its NSpid.
	for p in /proc/[0-9]*; do
		p=${p#/proc/}
		case "$(field "$p" NSpid)" in *" 2 1") ns2=$p ;; esac
	done
	[ -n "$ns2" ] || { REASON="no process with NSpid '<pid> 2 1'"; return 1; }
	ns1=$(field "$ns2" PPid)
	root=$(field "$ns1" PPid)
	before=$(describe_tree "$root" "$ns1" "$ns2")
	log "nested: tree before: $(echo $before)"
	want="$root|$root|$(field "$root" PPid)
$ns1|$ns1 1|$root
$ns2|$ns2 2 1|$ns1"
	if [ "$before" != "$want" ]; then
		REASON="unexpected tree: $(echo $before)"
		kill_all "$ns2" "$ns1" "$root"
		return 1
	fi
	sleep 0.3

	# The guard: does cr dump take the whole tree yet?
	if ! cr_dump nested "$root" "$img"; then
		kill_all "$ns2" "$ns1" "$root"
		NESTED_SKIP=$REASON
		return 1
	fi
	if ! wait_for 100 gone "$root" || ! wait_for 50 gone "$ns1" || ! wait_for 50 gone "$ns2"; then
		kill_all "$ns2" "$ns1" "$root"
		NESTED_SKIP="cr dump $root left its children running (no process trees yet)"
		return 1
	fi

	cr_restore nested "$img" || return 1
	for p in "$root" "$ns1" "$ns2"; do
		wait_for 100 alive "$p" || { REASON="no process $p after the restore"; kill_all "$ns2" "$ns1" "$root"; return 1; }
	done
	after=$(describe_tree "$root" "$ns1" "$ns2")
	log "nested: tree after:  $(echo $after)"
	# All as before, but the root's parent: cr restore --detach hands the
	# root over to the subreaper.
	if [ "$(echo "$after" | sed 1d)" != "$(echo "$before" | sed 1d)" ] ||
		[ "$(echo "$after" | head -n 1 | cut -d'|' -f1,2)" != "$root|$root" ]; then
		REASON="restored tree differs: before $(echo $before), after $(echo $after)"
		kill_all "$ns2" "$ns1" "$root"
		return 1
	fi
	made_by_clone2 "$img" "$root" || { kill_all "$ns2" "$ns1" "$root"; return 1; }
	grep 'clone2 created pid' "$img/restore.log" | sed 's/^/guest: nested: restore.log: /'
	expect_pass "$dir" "$ns2" || { kill_all "$ns2" "$ns1" "$root"; return 1; }
	# Its init gone, ns1's init and then the root exit by themselves.
	wait_for 100 gone "$root" || { REASON="the tree did not wind down after w_counter ended"; kill_all "$ns1" "$root"; return 1; }
}

case_nested() {
	REASON=""
	NESTED_SKIP=""
	if nested; then
		result nested ok
	elif [ -n "$NESTED_SKIP" ]; then
		nested_unsupported "$NESTED_SKIP"
		show_cr_logs /tmp/nested.dump.out
	else
		fail nested "$REASON"
		show_cr_logs /tmp/nested.dump.out /tmp/nested.restore.out /tmp/nested.img/restore.log
	fi
}

log "clone2 kselftest"
case_kselftest
log "cr check"
case_check
log "w_counter through dump and a clone2 restore"
case_roundtrip counter w_counter
log "w_state through dump and a clone2 restore"
case_roundtrip state w_state
log "a tree in nested pid namespaces"
case_nested
log "cgroup v2: w_counter in a cgroup with limits, the cgroup removed after the dump"
CG_MOUNT_FAILED=""
REASON=""
cg_mount || CG_MOUNT_FAILED=$REASON
case_cgroup cgroup /job/inner /job/inner cg_gone cg_recreated
log "cgroup v2: the cgroup still there at the restore, with other limits"
case_cgroup cgroup-kept /kept/inner /kept/inner cg_change cg_kept
log "cgroup v2: restored below --cgroup-root /restored"
case_cgroup cgroup-root /moved/inner /restored/moved/inner cg_gone_root_bare cg_recreated_root "--cgroup-root /restored"

if [ "$FAILED" = 0 ]; then
	verdict="CR-KERNEL-TEST: PASS$DETAILS"
else
	verdict="CR-KERNEL-TEST: FAIL$DETAILS"
fi
echo "$verdict" >"$VERDICT_FILE"
echo "$verdict"
