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

run_case dump_restore state_roundtrip
run_case session_and_group session_and_group
run_case creds_pdeath_itimers case_roundtrip w_creds
finish_tests
