#!/usr/bin/env bash
# t_new_pidns: `cr restore --new-pidns` restores a dump inside a fresh pid
# namespace with the pids the tree had in its own namespace: while the
# original still holds its pid on the host, for a root that lived below a
# namespace init that was not dumped (a helper becomes pid 1), and for a
# root that was itself a namespace's init.
#   proc_file_of_child  python3 holding /proc/CHILD/status of its child open,
#                    dumped --leave-running and restored --new-pidns: the
#                    restored file is that of the restored child (whose host
#                    pid is new), which the parent goes on reading with the
#                    token it made before the dump.
source "$(dirname "$0")/lib.sh"

# The host pid of a w_state whose innermost pid is INNER, started from DIR.
host_pid_of() {
	local inner=$1 dir=$2 p
	for p in $(pgrep -f "w_state $dir"); do
		[ "$(awk '/^NSpid:/ {print $NF}' /proc/"$p"/status 2>/dev/null)" = "$inner" ] || continue
		[ "$(status_field "$p" TracerPid)" = 0 ] || continue
		echo "$p"
		return 0
	done
	return 1
}

# Starts w_state under `unshare -p -f` (via WRAP, a shell snippet running
# "$@"), waits until ready; sets WL_* with WL_PID the pid inside.
start_in_namespace() {
	local wrap=$1
	WL_NAME=w_state
	WL_EXE=$WL/w_state
	WL_DIR=$(mktemp -d "$CASE_TMP/w_state.XXXX")
	CASE_LOGS+=("$WL_DIR/log")
	setsid unshare -p -f bash -c "$wrap" _ "$WL_EXE" "$WL_DIR" </dev/null >/dev/null 2>&1 &
	track_pid $!
	wait_until 10 test -e "$WL_DIR/ready" || { REASON="w_state in a namespace was not ready"; return 1; }
	read -r WL_PID WL_TOKEN < "$WL_DIR/token"
	HOST_PID=$(host_pid_of "$WL_PID" "$WL_DIR") || { REASON="no host pid for inner pid $WL_PID"; return 1; }
	track_pid "$HOST_PID"
}

# Triggers the restored copy (found by its inner pid) and wants its PASS.
expect_restored_pass() {
	local levels=$1 host
	wait_until 10 host_pid_of "$WL_PID" "$WL_DIR" >/dev/null || { REASON="restored pid $WL_PID not found"; return 1; }
	host=$(host_pid_of "$WL_PID" "$WL_DIR")
	track_pid "$host"
	[ "$(awk '/^NSpid:/ {print NF - 1}' /proc/"$host"/status)" = "$levels" ] ||
		{ REASON="restored copy has NSpid '$(status_field "$host" NSpid)', want $levels levels"; return 1; }
	rm -f "$WL_DIR/result"
	kill -USR2 "$host"
	wl_expect_pass
}

pid_taken() {
	local img=$CASE_TMP/img
	wl_start w_state || return 1
	cr_dump dump "$WL_PID" "$img" --leave-running || return 1
	if cr_run restore-plain restore -D "$img" --detach; then
		REASON="plain restore succeeded although pid $WL_PID is taken"
		return 1
	fi
	cr_run restore-new restore -D "$img" --detach --new-pidns || { REASON="--new-pidns: $(last_line "$CR_ERR")"; return 1; }
	kill -9 "$WL_PID"   # the original: only the copy may answer
	expect_restored_pass 2
}

nested_root() {
	local img=$CASE_TMP/img
	start_in_namespace '"$@" & wait' || return 1
	[ "$WL_PID" != 1 ] || { REASON="w_state should not be the namespace's init"; return 1; }
	cr_dump dump "$HOST_PID" "$img" || return 1
	if cr_run restore-plain restore -D "$img" --detach; then
		REASON="plain restore of a root below an undumped namespace init succeeded"
		return 1
	fi
	grep -q -- "--new-pidns" "$CR_ERR" || { REASON="refusal does not suggest --new-pidns: $(last_line "$CR_ERR")"; return 1; }
	grep -qF "is pid $WL_PID of a nested pid namespace whose init (its pid 1) was not dumped" "$CR_ERR" ||
		{ REASON="refusal does not say that the namespace's init is missing: $(last_line "$CR_ERR")"; return 1; }
	cr_run restore-new restore -D "$img" --detach --new-pidns || { REASON="--new-pidns: $(last_line "$CR_ERR")"; return 1; }
	expect_restored_pass 2
}

root_is_init() {
	local img=$CASE_TMP/img
	start_in_namespace 'exec "$@"' || return 1
	[ "$WL_PID" = 1 ] || { REASON="w_state should be its namespace's init, is pid $WL_PID"; return 1; }
	cr_dump dump "$HOST_PID" "$img" || return 1
	cr_run restore-new restore -D "$img" --detach --new-pidns || { REASON="--new-pidns: $(last_line "$CR_ERR")"; return 1; }
	expect_restored_pass 2
}

# Every half second: its token, and the Name and Pid lines of the file.
read -r -d '' PROC_READER <<'PYEOF'
import os, sys, time
d = sys.argv[1]
token = os.urandom(8).hex()
child = os.fork()
if child == 0:
    while True:
        time.sleep(1)
f = open('/proc/%d/status' % child)
with open(d + '/pids', 'w') as p:
    p.write('%d %d\n' % (os.getpid(), child))
while True:
    f.seek(0)
    lines = f.read().splitlines()
    pid = [l.split()[1] for l in lines if l.startswith('Pid:')][0]
    with open(d + '/out.tmp', 'w') as o:
        o.write('%s %s %s\n' % (token, lines[0].split()[1], pid))
    os.rename(d + '/out.tmp', d + '/out')
    time.sleep(0.5)
PYEOF

proc_file_of_child() {
	local img=$CASE_TMP/img dir=$CASE_TMP/reader parent child token name pid host
	mkdir -p "$dir"
	setsid python3 -c "$PROC_READER" "$dir" </dev/null >/dev/null 2>&1 &
	track_pid $!
	wait_until 10 test -s "$dir/out" || { REASON="python3 did not start"; return 1; }
	read -r parent child < "$dir/pids"
	track_pid "$child"
	read -r token name pid < "$dir/out"
	[ "$pid" = "$child" ] || { REASON="before the dump it read pid $pid, not $child"; return 1; }
	cr_dump dump "$parent" "$img" --leave-running || return 1
	cr_run restore-new restore -D "$img" --detach --new-pidns || { REASON="--new-pidns: $(last_line "$CR_ERR")"; return 1; }
	kill -9 "$parent" "$child"
	wait_until 5 pid_gone "$parent" || { REASON="the original did not go"; return 1; }
	rm -f "$dir/out"
	wait_until 10 test -s "$dir/out" || { REASON="the restored python3 writes nothing"; return 1; }
	read -r t2 name host < "$dir/out"
	track_pid "$host"
	[ "$t2" = "$token" ] || { REASON="token $t2, was $token: not the restored process"; return 1; }
	[ "$host" != "$child" ] || { REASON="the file still names the old child $child"; return 1; }
	[ "$name" = python3 ] || { REASON="the file is that of '$name', not python3"; return 1; }
	[ "$(awk '/^NSpid:/ {print $NF}' /proc/"$host"/status)" = "$child" ] ||
		{ REASON="pid $host, whose file it reads, is not the restored child $child ($(status_field "$host" NSpid))"; return 1; }
	track_pid "$(awk '/^PPid:/ {print $2}' /proc/"$host"/status)"
}

run_case taken_pid_restored_in_new_namespace pid_taken
run_case nested_root_with_helper_init nested_root
run_case namespace_init_as_root root_is_init
run_case proc_file_of_child proc_file_of_child
finish_tests
