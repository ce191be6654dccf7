#!/usr/bin/env bash
# t_compress: --compress images restore to a passing w_state, and compress:
# a w_state whose 64 MiB area is one 4 KiB page repeated dumps to pages-*.img
# files at least 4 times smaller with --compress than without.
source "$(dirname "$0")/lib.sh"

pages_bytes() {
	local total=0 f
	for f in "$1"/pages-*.img; do
		[ -e "$f" ] || continue
		total=$((total + $(stat -c %s "$f")))
	done
	echo "$total"
}

roundtrip() {
	local img=$CASE_TMP/img-$1
	shift
	wl_start w_state "$@" || return 1
	cr_dump dump "$WL_PID" "$img" --compress || return 1
	cr_restore_detached restore "$img" || return 1
	wl_trigger || return 1
	wl_expect_pass || return 1
	wl_await_exit
}

ratio() {
	local plain compressed
	wl_start w_state compressible || return 1
	cr_dump dump-plain "$WL_PID" "$CASE_TMP/img-plain" || return 1
	wl_start w_state compressible || return 1
	cr_dump dump-compressed "$WL_PID" "$CASE_TMP/img-compressed" --compress || return 1
	plain=$(pages_bytes "$CASE_TMP/img-plain")
	compressed=$(pages_bytes "$CASE_TMP/img-compressed")
	[ "$plain" -ge $((64 << 20)) ] || { REASON="uncompressed pages-*.img hold $plain bytes, want >= 64 MiB"; return 1; }
	[ "$compressed" -gt 0 ] || { REASON="no pages-*.img data in the compressed dump"; return 1; }
	[ $((compressed * 4)) -lt "$plain" ] || { REASON="compressed pages $compressed bytes vs $plain uncompressed"; return 1; }
	cr_restore_detached restore "$CASE_TMP/img-compressed" || return 1
	wl_trigger || return 1
	wl_expect_pass || return 1
	wl_await_exit
}

run_case random_memory roundtrip random
run_case compressible_memory ratio
finish_tests
