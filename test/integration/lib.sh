# test/integration/lib.sh — sourced by every test/integration/t_*.sh.
#
# A test script defines one function per case and ends with
#
#     run_case NAME FUNCTION [ARGS...]   # once per case
#     finish_tests
#
# A case function returns 0 when the case passed; otherwise it sets REASON and
# returns 1. run_case prints "ok <test>/<case>" or "FAIL <test>/<case>: REASON"
# followed by the tails of the logs the case collected, then kills every
# process the case started. Every script can be run alone:
#
#     bash test/integration/t_state.sh
#
# Environment: CR (the cr binary), CR_TEST_TIMEOUT (seconds for a whole
# script, default 240), CR_TIMEOUT (seconds for one cr command, default 60),
# CR_TEST_KEEP=1 (keep the temp dir).
#
# Every script runs below build/test/workloads/subreaper (it re-executes
# itself there), so restored processes whose `cr restore --detach` has exited
# are reparented to a process that reaps them at once, not to PID 1.

set -u

# The programs under test are Debian's (make deps installs them), found
# before any other install of the same name: a version manager's shim
# (pyenv's python3, a bash script) would run another interpreter, and
# real_start would not find the program it started.
PATH=/usr/sbin:/usr/bin:/sbin:/bin:$PATH
export PATH

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd -P)
BUILD=${BUILD:-build}
case $BUILD in /*) ;; *) BUILD=$ROOT/$BUILD ;; esac
CR=${CR:-$BUILD/cr}
WL=$BUILD/test/workloads
SUBREAPER=$WL/subreaper
TEST_NAME=$(basename "$0" .sh)
TEST_TIMEOUT=${CR_TEST_TIMEOUT:-240}
CR_TIMEOUT=${CR_TIMEOUT:-60}

# ---- preconditions and the subreaper ----------------------------------------

if [ "$(id -u)" -ne 0 ]; then
	echo "FAIL $TEST_NAME: needs root (cr uses ptrace on other processes and exact pids)"
	exit 1
fi
# A script that runs no cr command (t_controls) sets NEEDS_CR=0 before sourcing.
for bin in "$SUBREAPER" $([ "${NEEDS_CR:-1}" = 1 ] && echo "$CR"); do
	if [ ! -x "$bin" ]; then
		echo "FAIL $TEST_NAME: $bin is not built (make cr workloads)"
		exit 1
	fi
done
if [ "${CR_TEST_SUBREAPER:-}" != "$PPID" ]; then
	exec "$SUBREAPER" bash "$0" "$@"
fi

TMP=$(mktemp -d /tmp/cr-test.XXXX) || { echo "FAIL $TEST_NAME: mktemp"; exit 1; }

PIDS=()          # every pid a case started (workloads, cr, helpers)
CASE=""
CASE_TMP=$TMP    # a fresh dir for each case: state dirs, images, cr logs
CASE_LOGS=()     # files whose tail is shown when the case fails
CASE_IMG_DIRS=() # image dirs: their *.log files are shown too
REASON=""
PASSED=0
FAILED=0

# ---- processes ----------------------------------------------------------------

track_pid() {
	PIDS+=("$1")
}

# The pid and all its descendants, deepest first.
descendants() {
	local pid=$1 child
	for child in $(cat /proc/"$pid"/task/*/children 2>/dev/null); do
		descendants "$child"
	done
	echo "$pid"
}

kill_tree() {
	local pid
	for pid in $(descendants "$1"); do
		kill -KILL "$pid" 2>/dev/null
	done
}

# Kills every tracked pid, its process group and its descendants.
kill_tracked() {
	local pid self_pgid
	self_pgid=$(stat_field $$ 5)
	for pid in "${PIDS[@]+"${PIDS[@]}"}"; do
		[ "$pid" = "$$" ] && continue
		kill_tree "$pid"
		[ "$pid" != "$self_pgid" ] && kill -KILL -- "-$pid" 2>/dev/null
	done
	for pid in "${PIDS[@]+"${PIDS[@]}"}"; do
		wait "$pid" 2>/dev/null # our own jobs: reap quietly
		wait_until 5 pid_gone "$pid"
	done
	PIDS=()
}

# True while the pid names a live process (a zombie is not live).
proc_alive() {
	local state
	state=$(awk '/^State:/ { print $2 }' /proc/"$1"/status 2>/dev/null)
	[ -n "$state" ] && [ "$state" != Z ] && [ "$state" != X ]
}

# True once nothing holds the pid any more (not even a zombie).
pid_gone() {
	[ ! -e /proc/"$1" ]
}

# stat_field PID N: field N of /proc/PID/stat (man 5 proc: 3 state, 4 ppid,
# 5 pgrp, 6 session), read after the command name, which may hold spaces.
stat_field() {
	local n=$2 stat
	stat=$(cat /proc/"$1"/stat 2>/dev/null) || return 1
	stat=${stat##*) }
	# shellcheck disable=SC2086
	set -- $stat
	shift $((n - 3))
	echo "$1"
}

status_field() {
	awk -v f="$2:" '$1 == f { print $2 }' /proc/"$1"/status 2>/dev/null
}

# The process runs free: not traced, not stopped, running the given binary.
running_free() {
	local pid=$1 exe=$2 state
	proc_alive "$pid" || return 1
	[ "$(status_field "$pid" TracerPid)" = 0 ] || return 1
	state=$(status_field "$pid" State)
	[ "$state" != T ] && [ "$state" != t ] || return 1
	[ "$(readlink /proc/"$pid"/exe 2>/dev/null)" = "$exe" ]
}

# Blocked in system call NR and not traced.
blocked_in() {
	local pid=$1 nr=$2 cur
	[ "$(status_field "$pid" TracerPid)" = 0 ] || return 1
	read -r cur _ < /proc/"$pid"/syscall 2>/dev/null || return 1
	[ "$cur" = "$nr" ]
}

# wait_until SECONDS COMMAND [ARGS...]: polls the command every 50 ms.
wait_until() {
	local timeout=$1
	shift
	local deadline=$((${EPOCHREALTIME//[.,]/} + timeout * 1000000))
	until "$@"; do
		[ "${EPOCHREALTIME//[.,]/}" -ge "$deadline" ] && return 1
		sleep 0.05
	done
}

# clean_exec CMD [ARGS...] (scripts/clean-exec.sh): execs CMD with only
# fds 0-2 open.
source "$ROOT/scripts/clean-exec.sh"

# ---- workloads -----------------------------------------------------------------

# wl_start NAME [ARGS...]: starts build/test/workloads/NAME in a fresh state dir
# as the leader of a new session and waits (10 s) until it is ready. Sets
# WL_NAME, WL_DIR, WL_PID, WL_TOKEN, WL_EXE.
wl_start() {
	local name=$1 launched
	shift
	WL_NAME=$name
	WL_EXE=$WL/$name
	WL_DIR=$(mktemp -d "$CASE_TMP/$name.XXXX")
	setsid "$WL_EXE" "$WL_DIR" "$@" </dev/null >/dev/null 2>&1 &
	launched=$!
	disown "$launched" # bash still reaps it, without "Killed" notices
	track_pid "$launched"
	CASE_LOGS+=("$WL_DIR/log")
	wl_await_ready "$launched"
}

# wl_start_pty OUTFILE NAME [ARGS...]: like wl_start, but the workload runs
# on a new pseudo-terminal (under ptyrun, which copies what the terminal shows
# to OUTFILE). Also sets PTYRUN_PID.
wl_start_pty() {
	local out=$1 name=$2
	shift 2
	WL_NAME=$name
	WL_EXE=$WL/$name
	WL_DIR=$(mktemp -d "$CASE_TMP/$name.XXXX")
	CASE_LOGS+=("$out")
	"$WL/ptyrun" "$out" "$WL_EXE" "$WL_DIR" "$@" </dev/null >/dev/null 2>&1 &
	PTYRUN_PID=$!
	track_pid "$PTYRUN_PID"
	wl_await_ready "$PTYRUN_PID" child
}

# wl_await_ready PID [child]: waits for WL_DIR/ready and reads the token. The
# workload must be PID itself (or, with "child", a child of PID).
wl_await_ready() {
	local launched=$1 relation=${2:-self}
	if ! wait_until 10 wl_ready_or_dead "$launched"; then
		REASON="$WL_NAME did not become ready within 10 s"
		return 1
	fi
	if [ ! -e "$WL_DIR/ready" ]; then
		REASON="$WL_NAME died before it was ready: $(cat "$WL_DIR/result" 2>/dev/null)"
		return 1
	fi
	read -r WL_PID WL_TOKEN < "$WL_DIR/token"
	track_pid "$WL_PID"
	if [ "$relation" = child ]; then
		if [ "$(status_field "$WL_PID" PPid)" != "$launched" ]; then
			REASON="$WL_NAME (pid $WL_PID) is not a child of $launched"
			return 1
		fi
	elif [ "$WL_PID" != "$launched" ]; then
		REASON="$WL_NAME reports pid $WL_PID, but $launched was started"
		return 1
	fi
}

wl_ready_or_dead() {
	[ -e "$WL_DIR/ready" ] || ! proc_alive "$1"
}

# Waits until the workload sits in the system call it named in FILE
# (syscall_nr or syscall_nr_restored), if it named one.
wl_await_blocked() {
	local file=${1:-syscall_nr} nr
	[ -e "$WL_DIR/$file" ] || return 0
	nr=$(cat "$WL_DIR/$file")
	if ! wait_until 10 blocked_in "$WL_PID" "$nr"; then
		REASON="$WL_NAME (pid $WL_PID) is not blocked in system call $nr (/proc/PID/syscall: $(cat /proc/"$WL_PID"/syscall 2>&1))"
		return 1
	fi
}

# Waits until a restored workload runs free (not traced, its own binary).
wl_await_running() {
	if ! wait_until 10 running_free "$WL_PID" "$WL_EXE"; then
		REASON="restored pid $WL_PID is not running free as $WL_NAME: $(describe_pid "$WL_PID")"
		return 1
	fi
}

describe_pid() {
	if [ ! -e /proc/"$1" ]; then
		echo "no such process"
		return
	fi
	echo "state $(status_field "$1" State), tracer $(status_field "$1" TracerPid), exe $(readlink /proc/"$1"/exe 2>&1)"
}

wl_trigger() {
	rm -f "$WL_DIR/result"
	kill -USR2 "$WL_PID" 2>/dev/null || { REASON="cannot signal pid $WL_PID: it is gone"; return 1; }
}

# Waits (default 15 s) for the result and wants "PASS <pid> <token>" with the
# pid and token recorded when the workload first became ready.
wl_expect_pass() {
	local timeout=${1:-15} result
	if ! wait_until "$timeout" test -e "$WL_DIR/result"; then
		REASON="no result from $WL_NAME within $timeout s (pid $WL_PID: $(describe_pid "$WL_PID"))"
		return 1
	fi
	result=$(cat "$WL_DIR/result")
	case $result in
	"PASS $WL_PID $WL_TOKEN")
		return 0 ;;
	"PASS "*)
		REASON="result '$result' but expected pid $WL_PID token $WL_TOKEN (restarted instead of restored?)" ;;
	*)
		REASON="workload reports: $result" ;;
	esac
	return 1
}

# Like wl_expect_pass, but wants a FAIL that mentions TEXT (negative controls).
wl_expect_fail() {
	local text=$1 result
	if ! wait_until 15 test -e "$WL_DIR/result"; then
		REASON="no result from $WL_NAME within 15 s"
		return 1
	fi
	result=$(cat "$WL_DIR/result")
	case $result in
	"FAIL $WL_PID $WL_TOKEN: "*"$text"*)
		return 0 ;;
	esac
	REASON="expected a FAIL mentioning '$text', got: $result"
	return 1
}

# After its result, a workload exits; its pid must be reaped (not a zombie).
wl_await_exit() {
	if ! wait_until 10 pid_gone "$WL_PID"; then
		REASON="pid $WL_PID still exists after the workload finished: $(describe_pid "$WL_PID")"
		return 1
	fi
}

# ---- case bodies shared by the per-kind scripts ------------------------------
# Each takes a workload and its arguments. DOWNTIME (seconds, default 0) is
# waited between a dump and its restore.

# Without any dump the workload passes: its checks hold on the real thing.
case_control() {
	wl_start "$@" || return 1
	wl_trigger || return 1
	wl_expect_pass || return 1
	wl_await_exit
}

# case_sabotaged WHAT EXPECT WORKLOAD...: the workload breaks WHAT itself and
# must fail mentioning EXPECT: its checks can fail.
case_sabotaged() {
	local what=$1 expect=$2
	shift 2
	wl_start "$@" || return 1
	echo "$what" > "$WL_DIR/sabotage"
	wl_trigger || return 1
	wl_expect_fail "$expect"
}

case_roundtrip() {
	local img=$CASE_TMP/img
	wl_start "$@" || return 1
	cr_dump dump "$WL_PID" "$img" || return 1
	sleep "${DOWNTIME:-0}"
	cr_restore_detached restore "$img" || return 1
	wl_trigger || return 1
	wl_expect_pass || return 1
	wl_await_exit
}

# The dump consumed nothing: the process left running still passes.
case_leave_running() {
	local img=$CASE_TMP/img
	wl_start "$@" || return 1
	cr_dump dump "$WL_PID" "$img" --leave-running || return 1
	running_free "$WL_PID" "$WL_EXE" || { REASON="after the dump: $(describe_pid "$WL_PID")"; return 1; }
	wl_trigger || return 1
	wl_expect_pass || return 1
	wl_await_exit
}

# Two dump/restore hops in a row.
case_twice() {
	local img1=$CASE_TMP/img1 img2=$CASE_TMP/img2
	wl_start "$@" || return 1
	cr_dump dump1 "$WL_PID" "$img1" || return 1
	sleep "${DOWNTIME:-0}"
	cr_restore_detached restore1 "$img1" || return 1
	sleep 0.3
	cr_dump dump2 "$WL_PID" "$img2" || return 1
	sleep "${DOWNTIME:-0}"
	cr_restore_detached restore2 "$img2" || return 1
	wl_trigger || return 1
	wl_expect_pass || return 1
	wl_await_exit
}

# restore_new_pidns_and_pass IMGDIR: cr restore --new-pidns of the dumped
# workload, found by its pid inside the new namespace (WL_PID), triggered:
# it must pass.
restore_new_pidns_and_pass() {
	local img=$1 host p
	cr_run restore restore -D "$img" --detach --new-pidns ||
		{ REASON="cr restore --new-pidns failed: $(last_line "$CR_ERR")"; return 1; }
	for p in $(pgrep -f "$WL_NAME $WL_DIR"); do
		[ "$(awk '/^NSpid:/ {print $NF}' /proc/"$p"/status 2>/dev/null)" = "$WL_PID" ] && host=$p
	done
	[ -n "${host:-}" ] || { REASON="the restored root (pid $WL_PID inside) is not found"; return 1; }
	track_pid "$host"
	wait_until 10 running_free "$host" "$WL_EXE" || { REASON="restored copy: $(describe_pid "$host")"; return 1; }
	rm -f "$WL_DIR/result"
	kill -USR2 "$host"
	wl_expect_pass
}

# ---- cr -------------------------------------------------------------------------

# cr_run LABEL ARGS...: runs cr (bounded by CR_TIMEOUT) with its stdout and
# stderr in $CASE_TMP/LABEL.out and $CASE_TMP/LABEL.err. Returns cr's status and keeps it
# in CR_STATUS; CR_ERR is the stderr file.
cr_run() {
	local label=$1
	shift
	CR_ERR=$CASE_TMP/$label.err
	CASE_LOGS+=("$CR_ERR")
	timeout -k 5 "$CR_TIMEOUT" "$CR" "$@" >"$CASE_TMP/$label.out" 2>"$CR_ERR" </dev/null
	CR_STATUS=$?
	[ "$CR_STATUS" = 124 ] && echo "(cr $* timed out after $CR_TIMEOUT s)" >> "$CR_ERR"
	# A dump that waited out its whole wait for the killed tree (a thread
	# cr never reaps) succeeds, seconds late: a failure all the same.
	if [ "$CR_STATUS" = 0 ] && grep -q "threads to reap after .* ms: gave up waiting" "$CR_ERR"; then
		echo "(cr $*: the dump stalled waiting for the killed tree)" >> "$CR_ERR"
		CR_STATUS=98
	fi
	return "$CR_STATUS"
}

# cr_dump LABEL PID IMGDIR [OPTIONS...]: a dump that must succeed and must free
# the pid (unless --leave-running).
cr_dump() {
	local label=$1 pid=$2 img=$3 opt
	shift 3
	CASE_IMG_DIRS+=("$img")
	if ! cr_run "$label" dump "$pid" -D "$img" "$@"; then
		REASON="cr dump $pid failed (exit $CR_STATUS): $(last_line "$CR_ERR")"
		return 1
	fi
	for opt in "$@"; do
		[ "$opt" = --leave-running ] && return 0
	done
	if ! wait_until 5 pid_gone "$pid"; then
		REASON="pid $pid still exists after cr dump: $(describe_pid "$pid")"
		return 1
	fi
}

# cr_restore_detached LABEL IMGDIR [OPTIONS...]: restore --detach, then wait
# until the workload runs free.
cr_restore_detached() {
	local label=$1 img=$2
	shift 2
	CASE_IMG_DIRS+=("$img")
	if ! cr_run "$label" restore -D "$img" --detach "$@"; then
		REASON="cr restore -D $img failed (exit $CR_STATUS): $(last_line "$CR_ERR")"
		return 1
	fi
	wl_await_running
}

last_line() {
	tail -n 1 "$1" 2>/dev/null
}

# has_tasks PID N: the process has N threads.
has_tasks() {
	[ "$(ls /proc/"$1"/task 2>/dev/null | wc -l)" = "$2" ]
}

# mentions_number FILE NUMBER: FILE has NUMBER as a whole number.
mentions_number() {
	grep -Eq "(^|[^0-9])$2([^0-9]|$)" "$1"
}

# check_refused PID IMGDIR WORD...: the last cr run was a dump that failed
# (not by timeout), its error naming PID and saying each WORD (fixed text),
# and it left no dump in IMGDIR.  Whether the process runs on is the
# caller's to check: it may be another than the one dumped.
check_refused() {
	local pid=$1 img=$2 word
	shift 2
	[ "$CR_STATUS" != 0 ] || { REASON="cr dump of pid $pid succeeded"; return 1; }
	[ "$CR_STATUS" != 124 ] || { REASON="cr dump of pid $pid timed out"; return 1; }
	mentions_number "$CR_ERR" "$pid" || { REASON="the error does not name pid $pid: $(last_line "$CR_ERR")"; return 1; }
	for word in "$@"; do
		grep -qF -- "$word" "$CR_ERR" || { REASON="the error does not say '$word': $(last_line "$CR_ERR")"; return 1; }
	done
	[ ! -e "$img/inventory.img" ] || { REASON="a refused dump left $img/inventory.img"; return 1; }
}

# expect_refused PID IMGDIR WORD...: cr dump PID must be refused as
# check_refused says.
expect_refused() {
	local pid=$1 img=$2
	cr_run dump dump "$pid" -D "$img"
	check_refused "$@"
}

# expect_refused_then_pass PID WORD...: the dump of PID is refused, the
# workload runs on free, and passes when triggered.
expect_refused_then_pass() {
	local pid=$1
	shift
	expect_refused "$pid" "$CASE_TMP/img" "$@" || return 1
	runs_on_after_refusal
}

# After a refused dump: the workload runs on untraced, and passes.
runs_on_after_refusal() {
	running_free "$WL_PID" "$WL_EXE" || { REASON="after the refused dump: $(describe_pid "$WL_PID")"; return 1; }
	wl_trigger || return 1
	wl_expect_pass || return 1
	wl_await_exit
}

# ---- restored exactly, or refused at dump ---------------------------------------

# A dump that succeeds kills the process, so its restore must then work;
# what cr cannot restore it must refuse at dump, by name, while the process
# still runs (t_lost, t_files).

# lost_either_way EXPECT WORDS WORKLOAD ARGS...: EXPECT is restored or
# refused; WORDS, fixed text the refusal must say.
lost_either_way() {
	local expect=$1 words=$2 img=$CASE_TMP/img
	shift 2
	wl_start "$@" || return 1
	CASE_IMG_DIRS+=("$img")
	if cr_run dump dump "$WL_PID" -D "$img"; then
		lost_restored || return 1
		[ "$expect" = restored ] ||
			{ REASON="dumped and restored fine, but the case expects the refusal '$words': update it and README"; return 1; }
	else
		lost_refused "$words" || return 1
		[ "$expect" = refused ] ||
			{ REASON="refused ($(last_line "$CR_ERR")), but the case expects a restore"; return 1; }
	fi
}

# The dump succeeded: the process is gone, and must come back and pass.
lost_restored() {
	wait_until 5 pid_gone "$WL_PID" ||
		{ REASON="pid $WL_PID still exists after cr dump: $(describe_pid "$WL_PID")"; return 1; }
	cr_restore_detached restore "$CASE_TMP/img" ||
		{ REASON="the dump succeeded (the process was killed) and then: $REASON"; return 1; }
	wl_trigger || return 1
	wl_expect_pass || return 1
	wl_await_exit
}

# The dump was refused: by name, and the process runs on and passes.
lost_refused() {
	check_refused "$WL_PID" "$CASE_TMP/img" "$1" || return 1
	runs_on_after_refusal
}

# tmux_private NAME: a tmux server of this script's own (tm ARGS... talks
# to it), outside any tmux the tests run in; tmux_forget removes its socket.
tmux_private() {
	TMUX_SOCK=cr-$1-$$
	unset TMUX
}

tm() {
	tmux -L "$TMUX_SOCK" -f /dev/null "$@"
}

tmux_forget() {
	rm -f "${TMUX_TMPDIR:-/tmp}/tmux-$(id -u)/$TMUX_SOCK"
}

# flip_byte FILE OFFSET: one bit of the byte at OFFSET of FILE changed (a
# fixed byte written there would be the byte already there, and change
# nothing, once in 256 files).
flip_byte() {
	python3 -c 'import sys
p, at = sys.argv[1], int(sys.argv[2])
d = bytearray(open(p, "rb").read())
d[at] ^= 0x01
open(p, "wb").write(d)' "$1" "$2"
}

# real_start OUT DIR PROGRAM COMMAND...: COMMAND run in DIR, in a session
# of its own, fds above 2 closed, stdout in OUT; WL_PID once it runs
# PROGRAM.
real_start() {
	local out=$1 dir=$2 exe
	exe=$(readlink -f "$(command -v "$3")")
	shift 3
	( cd "$dir" && clean_exec setsid "$@" ) </dev/null >"$out" 2>"$out.err" &
	REAL_PID=$!
	disown "$REAL_PID"
	track_pid "$REAL_PID"
	CASE_LOGS+=("$out" "$out.err")
	WL_PID=$REAL_PID WL_EXE=$exe
	wait_until 5 running_free "$REAL_PID" "$exe" ||
		{ REASON="${exe##*/} did not start (pid $REAL_PID, want exe $exe: $(describe_pid "$REAL_PID")): $(cat "$out.err")"; return 1; }
}

# ---- haproxy ------------------------------------------------------------------------

# haproxy_start DIR: Debian's haproxy, two threads (each with its watchdog
# timer on the thread's CPU clock), its admin socket at DIR/stats.sock and
# an HTTP frontend at DIR/http.sock (both unix sockets, which haproxy binds
# at a temporary name and renames over the real one) answering "direct";
# WL_PID once both answer.
haproxy_start() {
	local dir=$1
	command -v haproxy >/dev/null || { REASON="haproxy is not installed (make deps)"; return 1; }
	mkdir -p "$dir"
	printf '%s\n' global "  nbthread 2" "  stats socket $dir/stats.sock mode 600 level admin" defaults \
		"  mode http" "  timeout client 30s" "  timeout server 30s" "  timeout connect 5s" "frontend fe" \
		"  bind $dir/http.sock" '  http-request return status 200 content-type text/plain string "direct"' \
		> "$dir/haproxy.cfg"
	real_start "$dir/out" "$dir" haproxy haproxy -db -f "$dir/haproxy.cfg" || return 1
	wait_until 10 haproxy_answers "$dir" || { REASON="haproxy does not answer: $(cat "$dir/out.err")"; return 1; }
}

haproxy_answers() {
	haproxy_get "$1" >/dev/null && haproxy_cli "$1" "show info" | grep -q "^Pid: "
}

# haproxy_get DIR: an HTTP request to the frontend.
haproxy_get() {
	curl -sf -m 5 --unix-socket "$1/http.sock" http://x/
}

# haproxy_cli DIR COMMAND: a command on the admin socket.
haproxy_cli() {
	echo "$2" | timeout 5 socat - UNIX-CONNECT:"$1/stats.sock"
}

# ---- redis, INCR nonstop -----------------------------------------------------------

# redis_nonstop_start DIR HOST PORT [PREFIX...]: a python3 client outside the
# tree (run through PREFIX, e.g. ip netns exec NS) sends INCR to redis-server
# at HOST PORT every 5 ms on one connection, each answer checked to be the
# next number, until DIR/stop; returns once it has had 50 answers.
redis_nonstop_start() {
	local dir=$1 host=$2 port=$3
	shift 3
	( clean_exec "$@" python3 -c '
import os, socket, sys, time
d, host, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
c = socket.create_connection((host, port)); c.settimeout(120)
f = c.makefile("rb")
prev, n, gap, last = None, 0, 0.0, time.monotonic()
try:
    while not os.path.exists(d + "/stop"):
        c.sendall(b"INCR nonstop\r\n")
        line = f.readline()
        now = time.monotonic()
        if not line.startswith(b":"):
            raise Exception("answer %r" % line)
        v = int(line[1:])
        if prev is not None and v != prev + 1:
            raise Exception("%d after %d" % (v, prev))
        gap, last, prev, n = max(gap, now - last), now, v, n + 1
        if n == 50:
            open(d + "/going", "w").close()
        time.sleep(0.005)
    open(d + "/res", "w").write("ok %d %.1f" % (n, gap * 1000))
except Exception as e:
    open(d + "/res", "w").write("FAIL after %d answers: %s" % (n, e))' "$dir" "$host" "$port" ) </dev/null >"$dir/client.out" 2>&1 &
	track_pid $!
	CASE_LOGS+=("$dir/client.out")
	wait_until 10 test -e "$dir/going" || { REASON="the client did not get going: $(cat "$dir/client.out")"; return 1; }
}

# redis_nonstop_done DIR: the client, stopped a second from now, had every
# answer in order and no reset; sets NONSTOP_N (answers) and NONSTOP_GAP
# (the longest wait between two, in ms).
redis_nonstop_done() {
	local dir=$1 res
	sleep 1
	touch "$dir/stop"
	wait_until 30 test -s "$dir/res" || { REASON="the client never finished: $(cat "$dir/client.out")"; return 1; }
	res=$(cat "$dir/res")
	[ "${res%% *}" = ok ] || { REASON="the client: $res"; return 1; }
	read -r _ NONSTOP_N NONSTOP_GAP <<<"$res"
}

# ---- python3 programs -----------------------------------------------------------

# py_start SCRIPT READY_FILE [ARG...]: python3 -c SCRIPT DIR ARG..., until DIR/READY_FILE;
# sets PY_DIR, PY_PID, PY_EXE.
py_start() {
	local script=$1 ready=$2
	shift 2
	PY_DIR=$CASE_TMP/py
	mkdir -p "$PY_DIR"
	CASE_LOGS+=("$PY_DIR/out")
	( clean_exec python3 -c "$script" "$PY_DIR" "$@" ) </dev/null >"$PY_DIR/out" 2>&1 &
	PY_PID=$!
	disown "$PY_PID"
	track_pid "$PY_PID"
	if ! wait_until 10 test -e "$PY_DIR/$ready"; then
		REASON="python3 did not get ready: $(tail -n 3 "$PY_DIR/out")"
		return 1
	fi
	PY_EXE=$(readlink /proc/"$PY_PID"/exe)
}

# py_roundtrip TOKEN: dump, restore, "go", and the result must be PASS TOKEN.
py_roundtrip() {
	local token=$1 img=$CASE_TMP/img result
	cr_dump dump "$PY_PID" "$img" || return 1
	cr_run restore restore -D "$img" --detach ||
		{ REASON="cr restore failed (exit $CR_STATUS): $(last_line "$CR_ERR")"; return 1; }
	wait_until 10 running_free "$PY_PID" "$PY_EXE" ||
		{ REASON="restored python3 is not running free: $(describe_pid "$PY_PID")"; return 1; }
	touch "$PY_DIR/go"
	wait_until 15 test -e "$PY_DIR/result" || { REASON="no result from python3: $(tail -n 3 "$PY_DIR/out")"; return 1; }
	result=$(cat "$PY_DIR/result")
	[ "$result" = "PASS $token" ] || { REASON="python3 reports: $result"; return 1; }
}

# py_case SCRIPT: python3 -c SCRIPT DIR, which writes "PID TOKEN" to
# DIR/ready, then py_roundtrip with that token.
py_case() {
	local token
	py_start "$1" ready || return 1
	read -r _ token < "$PY_DIR/ready"
	py_roundtrip "$token"
}

# ---- cases --------------------------------------------------------------------

show_logs() {
	local f dir
	local -A shown=()
	for dir in "${CASE_IMG_DIRS[@]+"${CASE_IMG_DIRS[@]}"}"; do
		for f in "$dir"/*.log; do
			[ -e "$f" ] && CASE_LOGS+=("$f")
		done
	done
	for f in "${CASE_LOGS[@]+"${CASE_LOGS[@]}"}"; do
		[ -s "$f" ] && [ -z "${shown[$f]:-}" ] || continue
		shown[$f]=1
		echo "    --- ${f#"$TMP"/} (last lines)"
		tail -n 12 "$f" | sed 's/^/    /'
	done
}

run_case() {
	local name=$1
	shift
	CASE=$name
	CASE_TMP=$TMP/$name
	mkdir -p "$CASE_TMP"
	CASE_LOGS=()
	CASE_IMG_DIRS=()
	REASON=""
	local result=FAIL
	if "$@"; then
		result=ok
		echo "ok $TEST_NAME/$CASE"
		PASSED=$((PASSED + 1))
	else
		echo "FAIL $TEST_NAME/$CASE: ${REASON:-failed}"
		show_logs
		FAILED=$((FAILED + 1))
	fi
	kill_tracked
	# Images of passed cases are not needed any more (they are large).
	[ "$result" = ok ] && [ "${CR_TEST_KEEP:-0}" != 1 ] && rm -rf "$CASE_TMP"
}

finish_tests() {
	[ "$FAILED" -eq 0 ]
	exit $?
}

cleanup() {
	local status=$?
	trap - EXIT TERM INT
	if [ -n "${WATCHDOG:-}" ]; then
		kill_tree "$WATCHDOG"
		wait "$WATCHDOG" 2>/dev/null
	fi
	kill_tracked
	if [ "${CR_TEST_KEEP:-0}" = 1 ]; then
		echo "# $TEST_NAME: kept $TMP" >&2
	else
		rm -rf "$TMP"
	fi
	exit "$status"
}

on_timeout() {
	echo "FAIL $TEST_NAME${CASE:+/$CASE}: timed out after $TEST_TIMEOUT s"
	[ -n "$CASE" ] && show_logs
	exit 1
}

trap cleanup EXIT
trap 'exit 143' TERM
trap 'exit 130' INT
trap on_timeout USR1
(sleep "$TEST_TIMEOUT" && kill -USR1 $$) 2>/dev/null &
WATCHDOG=$!
