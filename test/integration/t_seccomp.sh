#!/usr/bin/env bash
# t_seccomp: seccomp comes back exactly, or the dump refuses it by name.
#
#   control          w_seccomp's checks pass without any dump.
#   threads_shared   w_seccomp: three threads share a filter (TSYNC), one has
#                    two of its own (one of 32 KiB with SECCOMP_FILTER_FLAG_LOG,
#                    and above it one whose answer wins by its order). After
#                    restore every thread shows Seccomp: 2 and its number of
#                    filters; a second dump of the restored process holds the
#                    same filters, flags, tree and threads as the first; on the
#                    trigger each thread finds its blocked calls blocked and
#                    the others working, and a TSYNC by the thread with its own
#                    filter succeeds (the shared filter is one filter again).
#   kill_on_injected w_seccomp kill: the filter kills the process on
#                    rt_sigaction and getitimer, which cr runs inside it at
#                    dump and restore (PTRACE_O_SUSPEND_SECCOMP); after restore
#                    a child calling getitimer still dies of SIGSYS.
#   leave_running    the same after a dump with --leave-running: the filters
#                    hold again once cr lets the process go.
#   strict_mode      w_seccomp strict: SECCOMP_MODE_STRICT comes back (Seccomp:
#                    1); the process answers over its FIFO, then getppid kills
#                    it (cr restore exits 137).
#   python           an unmodified python3 that installed a filter with ctypes
#                    prctl (PR_SET_NO_NEW_PRIVS, PR_SET_SECCOMP): os.uname() is
#                    still refused after restore.
#   refused_partial  a filter shared by two threads of three (inherited) is
#                    refused by name; the process runs on, its filters intact.
#   refused_notify   a filter that returns SECCOMP_RET_USER_NOTIF is refused by
#                    name; the process runs on.
source "$(dirname "$0")/lib.sh"

PY=/usr/bin/python3

# The seccomp parts of core-PID.img in DIR, as one line of JSON: each
# filter as [prev, flags, instructions, sha256 of the program] and each
# thread as [tid, mode, newest filter].
seccomp_json() {
	local img=$1 pid=$2 out=$3
	cr_run "show-$(basename "$img")" show "$img" --json || {
		REASON="cr show --json $img exited $CR_STATUS"
		return 1
	}
	python3 - "$CASE_TMP/show-$(basename "$img").out" "core-$pid.img" > "$out" <<'EOF'
import hashlib, json, sys
d = json.load(open(sys.argv[1]))
core = d["images"][sys.argv[2]]["entries"][0]
filters = (core.get("seccomp") or {}).get("filters", [])
print(json.dumps({
    "filters": [[f["prev"], f["flags"], len(f["prog"]) // 16, hashlib.sha256(f["prog"].encode()).hexdigest()[:16]]
                for f in filters],
    "threads": [[t["tid"], t["seccomp"]["mode"], t["seccomp"]["filter"]] if t.get("seccomp") else [t["tid"]]
                for t in core["threads"]]}))
EOF
}

# The first dump: filter F1 shared by all, and thread B's own F2 (32 KiB,
# LOG) and F3 above it; each thread's stack as long as WL_DIR/threads says.
check_dumped_tree() {
	local problems
	problems=$(python3 - "$1" "$WL_DIR/threads" <<'EOF'
import json, sys
d = json.load(open(sys.argv[1]))
want = {int(t): int(n) for t, n in (l.split() for l in open(sys.argv[2]))}
f, bad = d["filters"], []
shape = [tuple(x[:3]) for x in f]
if shape != [(0, 0, 9), (1, 2, 4096), (2, 0, 9)]:
    bad.append("filters (prev, flags, instructions) %s, want [(0, 0, 9), (1, 2, 4096), (2, 0, 9)]" % shape)
for t in d["threads"]:
    depth, g = 0, t[2] if len(t) == 3 else 0
    while 0 < g <= len(f) and depth <= len(f):
        depth, g = depth + 1, f[g - 1][0]
    if len(t) != 3 or t[1] != 2 or depth != want.get(t[0]):
        bad.append("thread %s: a stack of %d, want mode 2 and %s filters" % (t, depth, want.get(t[0])))
print("; ".join(bad))
EOF
)
	[ -z "$problems" ] || { REASON="first dump: $problems"; return 1; }
}

# Every thread of the restored process: Seccomp: 2 and its filter count.
check_thread_status() {
	local tid count mode filters
	while read -r tid count; do
		mode=$(awk '$1 == "Seccomp:" { print $2 }' /proc/"$WL_PID"/task/"$tid"/status 2>/dev/null)
		filters=$(awk '$1 == "Seccomp_filters:" { print $2 }' /proc/"$WL_PID"/task/"$tid"/status 2>/dev/null)
		if [ "$mode" != 2 ] || [ "$filters" != "$count" ]; then
			REASON="restored thread $tid: Seccomp: ${mode:-none}, Seccomp_filters: ${filters:-none}; want 2 and $count"
			return 1
		fi
	done < "$WL_DIR/threads"
}

threads_shared() {
	local img1=$CASE_TMP/img1 img2=$CASE_TMP/img2
	wl_start w_seccomp shared || return 1
	cr_dump dump1 "$WL_PID" "$img1" || return 1
	cr_restore_detached restore "$img1" || return 1
	check_thread_status || return 1
	cr_dump dump2 "$WL_PID" "$img2" --leave-running || return 1
	seccomp_json "$img1" "$WL_PID" "$CASE_TMP/sec1.json" || return 1
	check_dumped_tree "$CASE_TMP/sec1.json" || return 1
	seccomp_json "$img2" "$WL_PID" "$CASE_TMP/sec2.json" || return 1
	cmp -s "$CASE_TMP/sec1.json" "$CASE_TMP/sec2.json" || {
		REASON="the restored process's seccomp differs: dumped $(cat "$CASE_TMP/sec1.json"), now $(cat "$CASE_TMP/sec2.json")"
		return 1
	}
	wl_trigger || return 1
	wl_expect_pass || return 1
	wl_await_exit
}

strict_mode() {
	local img=$CASE_TMP/img crpid status
	wl_start w_seccomp strict || return 1
	cr_dump dump "$WL_PID" "$img" || return 1
	CASE_IMG_DIRS+=("$img")
	cr_run restore restore -D "$img" &
	crpid=$!
	track_pid "$crpid"
	wl_await_running || return 1
	status=$(status_field "$WL_PID" Seccomp)
	[ "$status" = 1 ] || { REASON="restored process has Seccomp: ${status:-none}, want 1 (strict)"; return 1; }
	timeout 5 bash -c 'printf p > "$1"' _ "$WL_DIR/cmd" || { REASON="cannot write to the workload's FIFO"; return 1; }
	wait_until 5 grep -q '^pong' "$WL_DIR/out" || { REASON="no answer from the restored process"; return 1; }
	grep -qx "pong $WL_PID $WL_TOKEN" "$WL_DIR/out" ||
		{ REASON="it answered '$(grep pong "$WL_DIR/out")', want 'pong $WL_PID $WL_TOKEN'"; return 1; }
	timeout 5 bash -c 'printf g > "$1"' _ "$WL_DIR/cmd" || { REASON="cannot write to the workload's FIFO"; return 1; }
	wait "$crpid"
	status=$?
	if grep -q "getppid allowed" "$WL_DIR/out" || [ "$status" != 137 ]; then
		REASON="getppid in strict mode did not kill the process (cr restore exited $status; out: $(tr '\n' ' ' < "$WL_DIR/out"))"
		return 1
	fi
}

python_filter() {
	local img=$CASE_TMP/img launched status
	[ -x "$PY" ] || { REASON="$PY is not installed (make deps)"; return 1; }
	WL_NAME=seccomp_filter.py
	WL_EXE=$(readlink -f "$PY")
	WL_DIR=$(mktemp -d "$CASE_TMP/py.XXXX")
	CASE_LOGS+=("$WL_DIR/log")
	setsid "$PY" "$ROOT/test/workloads/seccomp_filter.py" "$WL_DIR" </dev/null >"$WL_DIR/log" 2>&1 &
	launched=$!
	disown "$launched"
	track_pid "$launched"
	wl_await_ready "$launched" || return 1
	cr_dump dump "$WL_PID" "$img" || return 1
	cr_restore_detached restore "$img" || return 1
	status=$(status_field "$WL_PID" Seccomp)
	[ "$status" = 2 ] || { REASON="restored python3 has Seccomp: ${status:-none}, want 2"; return 1; }
	wl_trigger || return 1
	wl_expect_pass || return 1
	wl_await_exit
}

# The dump fails naming the pid and TEXT, leaves no inventory and the
# process running free; then the process passes its own checks.
refused() {
	local text=$1
	shift
	wl_start "$@" || return 1
	expect_refused_then_pass "$WL_PID" "$text"
}

run_case control case_control w_seccomp shared
run_case threads_shared threads_shared
run_case kill_on_injected case_roundtrip w_seccomp kill
run_case leave_running case_leave_running w_seccomp kill
run_case strict_mode strict_mode
run_case python python_filter
run_case refused_partial refused "share a seccomp filter" w_seccomp partial
run_case refused_notify refused "SECCOMP_RET_USER_NOTIF" w_seccomp notify
finish_tests
