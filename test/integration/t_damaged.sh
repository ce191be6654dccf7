#!/usr/bin/env bash
# t_damaged: one flipped byte in an image makes cr restore fail, naming the
# damaged file, and leaves no process behind (the pid stays free). Put back,
# the same images restore and pass: the failed restore left them intact.
#   flipped_core_byte        core-*.img
#   flipped_large_page_byte  page data of a page image of 8 MiB or more (its
#                            checksum is computed on two threads, half
#                            of its blocks each)
source "$(dirname "$0")/lib.sh"

# damaged_image PREFIX [WANT]: flips the middle byte of PREFIX-*.img; the
# restore must fail naming it (and saying WANT), leave nothing, and work
# once the byte is put back.
damaged_image() {
	local prefix=$1 want=${2:-} img=$CASE_TMP/img core off before
	wl_start w_state || return 1
	cr_dump dump "$WL_PID" "$img" || return 1
	core=$(ls "$img"/"$prefix"-*.img 2>/dev/null | head -n 1)
	[ -n "$core" ] || { REASON="no $prefix-*.img in $img: $(ls "$img" | tr '\n' ' ')"; return 1; }
	off=$(($(stat -c %s "$core") / 2))
	before=$(sha256sum < "$core")
	flip_byte "$core" "$off"
	[ "$(sha256sum < "$core")" != "$before" ] || { REASON="flip_byte did not change $core"; return 1; }

	if cr_run restore-damaged restore -D "$img" --detach; then
		REASON="cr restore accepted $(basename "$core") with byte $off flipped"
		return 1
	fi
	[ "$CR_STATUS" != 124 ] || { REASON="cr restore timed out"; return 1; }
	grep -qF "$(basename "$core")" "$CR_ERR" || {
		REASON="the error does not name $(basename "$core"): $(last_line "$CR_ERR")"
		return 1
	}
	grep -qF "$want" "$CR_ERR" || { REASON="the error does not say \"$want\": $(last_line "$CR_ERR")"; return 1; }
	wait_until 2 pid_gone "$WL_PID" || { REASON="pid $WL_PID exists after the failed restore: $(describe_pid "$WL_PID")"; return 1; }

	flip_byte "$core" "$off"
	[ "$(sha256sum < "$core")" = "$before" ] || { REASON="could not repair $core"; return 1; }
	cr_restore_detached restore-repaired "$img" || return 1
	wl_trigger || return 1
	wl_expect_pass || return 1
	wl_await_exit
}

run_case flipped_core_byte damaged_image core
# w_state holds 64 MiB of patterns, so its page image is checked in halves.
run_case flipped_large_page_byte damaged_image pages "checksum mismatch"
finish_tests
