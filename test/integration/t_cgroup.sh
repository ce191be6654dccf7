#!/usr/bin/env bash
# t_cgroup: a process comes back in the cgroups it was in, in every
# hierarchy (cgroup v2, and the v1 pids and memory hierarchies of these
# hosts), and a cgroup that no longer exists is created again with its
# dumped limits (pids.max, memory.limit_in_bytes).  With --cgroup-root the
# same cgroups are made below another root.  The program is an unmodified
# sleep; the test reads /proc/PID/cgroup and the limits.
source "$(dirname "$0")/lib.sh"

HIERARCHIES="pids memory unified"
CG_NAME=cr-test-$$

cg_dir() {
	echo "/sys/fs/cgroup/$1$2/$CG_NAME/job"
}

cg_cleanup() {
	local root=$1 h
	for h in $HIERARCHIES; do
		rmdir "$(cg_dir "$h" "$root")" "/sys/fs/cgroup/$h$root/$CG_NAME" 2>/dev/null
		[ -n "$root" ] && rmdir "/sys/fs/cgroup/$h$root" 2>/dev/null
	done
	return 0
}

# cgroup_roundtrip [ROOT]: sleep in a cgroup of each hierarchy; the cgroups
# are removed after the dump and must come back (below ROOT if given).
cgroup_roundtrip() {
	local root=${1:-} img=$CASE_TMP/img pid h before after want
	for h in $HIERARCHIES; do
		mkdir -p "$(cg_dir "$h" "")" || { REASON="cannot create a cgroup in $h"; return 1; }
	done
	echo 77 > "$(cg_dir pids "")/pids.max"
	echo $((256 << 20)) > "$(cg_dir memory "")/memory.limit_in_bytes"
	( clean_exec sleep 1000 ) </dev/null >/dev/null 2>&1 &
	pid=$!
	track_pid "$pid"
	for h in $HIERARCHIES; do
		echo "$pid" > "$(cg_dir "$h" "")/cgroup.procs" || { REASON="cannot move sleep into $h"; return 1; }
	done
	before=$(grep -E ":(pids|memory|):" /proc/"$pid"/cgroup)
	cr_dump dump "$pid" "$img" || return 1
	cg_cleanup ""
	[ ! -e "$(cg_dir pids "")" ] || { REASON="the cgroups could not be removed after the dump"; return 1; }
	cr_run restore restore -D "$img" --detach ${root:+--cgroup-root "$root"} ||
		{ REASON="cr restore failed: $(last_line "$CR_ERR")"; return 1; }
	after=$(grep -E ":(pids|memory|):" /proc/"$pid"/cgroup)
	want=$(sed "s|:/$CG_NAME/job|:$root/$CG_NAME/job|" <<<"$before")
	[ "$after" = "$want" ] || { REASON="cgroups after restore: $(echo $after), want $(echo $want)"; return 1; }
	[ "$(cat "$(cg_dir pids "$root")/pids.max")" = 77 ] || { REASON="pids.max is $(cat "$(cg_dir pids "$root")/pids.max")"; return 1; }
	[ "$(cat "$(cg_dir memory "$root")/memory.limit_in_bytes")" = $((256 << 20)) ] ||
		{ REASON="memory.limit_in_bytes is $(cat "$(cg_dir memory "$root")/memory.limit_in_bytes")"; return 1; }
	kill -9 "$pid"
	wait_until 5 pid_gone "$pid"
	cg_cleanup "$root"
}

# A thread moved into a threaded cgroup of its own cannot be put back by
# cr: the dump refuses it by name and python runs on.
threaded_refused() {
	local u=/sys/fs/cgroup/unified/$CG_NAME-th pid tid
	mkdir -p "$u/a" && echo threaded > "$u/a/cgroup.type" || { REASON="cannot make a threaded cgroup"; return 1; }
	( clean_exec python3 -c 'import threading, time
t = threading.Thread(target=time.sleep, args=(1000,))
t.start()
time.sleep(1000)' ) </dev/null >/dev/null 2>&1 &
	pid=$!
	track_pid "$pid"
	wait_until 10 has_tasks "$pid" 2 || { REASON="python's thread did not start"; return 1; }
	tid=$(ls /proc/"$pid"/task | grep -vx "$pid")
	echo "$pid" > "$u/cgroup.procs" && echo "$tid" > "$u/a/cgroup.threads" || { REASON="cannot move the thread"; return 1; }
	expect_refused "$pid" "$CASE_TMP/img" "threaded cgroup" || return 1
	proc_alive "$pid" && [ "$(status_field "$pid" TracerPid)" = 0 ] || { REASON="python after the refusal: $(describe_pid "$pid")"; return 1; }
	kill -9 "$pid"
	wait_until 5 pid_gone "$pid"
	rmdir "$u/a" "$u"
}

run_case membership_and_limits cgroup_roundtrip
run_case cgroup_root cgroup_roundtrip "/cr-root-$$"
run_case threaded_refused threaded_refused
finish_tests
