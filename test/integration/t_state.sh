#!/usr/bin/env bash
# t_state: w_state (heap, 64 MiB of memory, protections, a private file
# mapping, fds with offsets and flags, signal handlers and pending signals,
# process attributes, kernel-held pointers, rseq, a counter) is dumped,
# restored with --detach, triggered, and must report PASS with the same pid
# and token. Also checks the images dir (inventory.img, files 0600), that the
# restored process is reparented to the nearest child subreaper once cr has
# detached, and (a case of its own) that it keeps its session and process
# group (w_state runs as a session leader, as started with setsid).
# creds_pdeath_itimers: w_creds's child runs as uid 1000 with a parent-death
# signal and all three interval timers, which must all come back.
# membarrier, membarrier_python: registrations for expedited membarriers
# (w_membarrier, and unmodified python3 through ctypes) come back.
source "$(dirname "$0")/lib.sh"

check_images() {
	local img=$1 bad
	[ -f "$img/inventory.img" ] || { REASON="no inventory.img in $img: $(ls "$img" 2>&1 | tr '\n' ' ')"; return 1; }
	bad=$(find "$img" -type f -name '*.img' ! -perm 0600 -printf '%f=%m ')
	[ -z "$bad" ] || { REASON="image files not mode 0600: $bad"; return 1; }
	bad=$(find "$img" -type f -perm /077 -printf '%f=%m ')
	[ -z "$bad" ] || { REASON="files in the images dir readable by others: $bad"; return 1; }
}

ids() {
	echo "sid $(stat_field "$1" 6) pgid $(stat_field "$1" 5)"
}

state_roundtrip() {
	local img=$CASE_TMP/img
	wl_start w_state || return 1
	cr_dump dump "$WL_PID" "$img" || return 1
	check_images "$img" || return 1
	cr_restore_detached restore "$img" || return 1
	[ "$(status_field "$WL_PID" PPid)" = "$CR_TEST_SUBREAPER" ] || {
		REASON="restored process's parent is $(status_field "$WL_PID" PPid), not the subreaper $CR_TEST_SUBREAPER"
		return 1
	}
	wl_trigger || return 1
	wl_expect_pass || return 1
	wl_await_exit
}

session_and_group() {
	local img=$CASE_TMP/img before after
	wl_start w_state || return 1
	before=$(ids "$WL_PID")
	cr_dump dump "$WL_PID" "$img" || return 1
	cr_restore_detached restore "$img" || return 1
	after=$(ids "$WL_PID")
	[ "$after" = "$before" ] || { REASON="restored with $after, was $before"; return 1; }
	wl_trigger || return 1
	wl_expect_pass || return 1
	wl_await_exit
}

# Unmodified python3 registers for private expedited membarriers (ctypes);
# after restore the command must still work (EPERM without registration).
membarrier_python() {
	local img=$CASE_TMP/img mark=$CASE_TMP/mark pid
	( clean_exec python3 -c '
import ctypes, os, signal, sys
libc = ctypes.CDLL(None, use_errno=True)
assert libc.syscall(324, 1 << 4, 0, 0) == 0
def check(sig, frame):
    r = libc.syscall(324, 1 << 3, 0, 0)
    open(sys.argv[1], "w").write("ok" if r == 0 else "errno %d" % ctypes.get_errno())
signal.signal(signal.SIGUSR2, check)
open(sys.argv[1] + ".ready", "w").close()
while True:
    signal.pause()' "$mark" ) </dev/null >/dev/null 2>&1 &
	pid=$!
	track_pid "$pid"
	wait_until 10 test -e "$mark.ready" || { REASON="python did not start"; return 1; }
	cr_dump dump "$pid" "$img" || return 1
	cr_run restore restore -D "$img" --detach || { REASON="cr restore failed: $(last_line "$CR_ERR")"; return 1; }
	kill -USR2 "$pid"
	wait_until 10 test -e "$mark" || {
		REASON="python did not answer: $(describe_pid "$pid"), $(grep -E '^(SigPnd|ShdPnd|SigBlk|SigCgt)' /proc/"$pid"/status 2>/dev/null | tr '\n\t' '  '), wchan $(cat /proc/"$pid"/wchan 2>/dev/null)"
		return 1
	}
	[ "$(cat "$mark")" = ok ] || { REASON="private expedited membarrier after restore: $(cat "$mark")"; return 1; }
	kill "$pid"
}

run_case dump_restore state_roundtrip
run_case session_and_group session_and_group
run_case creds_pdeath_itimers case_roundtrip w_creds
run_case membarrier case_roundtrip w_membarrier
run_case membarrier_python membarrier_python
finish_tests
