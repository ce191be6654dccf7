#!/usr/bin/env bash
# t_dumpid: the images of two dumps cannot be mixed.  Every image carries
# the dump's id (a random 128-bit id made per dump) in its header, checked
# against the inventory's.
#   mixed_images   two dumps of the same process (the first --leave-running):
#                  files.img, fdinfo-PID.img or pages-PID.img of the second
#                  swapped into a copy of the first makes cr restore fail at
#                  once naming that file and creating nothing (the pid stays
#                  free), and cr show fail naming it; the inventory of the
#                  second with the images of the first is refused too.  The
#                  untouched first dump then restores and passes.
#   distinct_ids   two dumps carry different ids, which cr show prints.
source "$(dirname "$0")/lib.sh"

# mixed_refused BASE OTHER NAME: a copy of BASE with NAME taken from OTHER
# is refused by cr restore and cr show, naming NAME as another dump's.
mixed_refused() {
	local base=$1 other=$2 name=$3 mix=$CASE_TMP/mix-$3
	rm -rf "$mix"
	cp -a "$base" "$mix"
	rm -f "$mix"/*.log
	cp "$other/$name" "$mix/$name"
	cr_run "restore-mixed-$name" restore -D "$mix" --detach
	[ "$CR_STATUS" != 0 ] || { REASON="cr restore accepted a set with $name from another dump"; return 1; }
	[ "$CR_STATUS" != 124 ] || { REASON="cr restore timed out"; return 1; }
	grep -qF "$name: belongs to another dump" "$CR_ERR" ||
		{ REASON="the refusal does not name $name as another dump's: $(last_line "$CR_ERR")"; return 1; }
	wait_until 2 pid_gone "$WL_PID" ||
		{ REASON="pid $WL_PID exists after the refused restore: $(describe_pid "$WL_PID")"; return 1; }
	cr_run "show-mixed-$name" show -D "$mix"
	[ "$CR_STATUS" = 1 ] || { REASON="cr show of a set with $name from another dump exited $CR_STATUS"; return 1; }
	grep -qF "$name: belongs to another dump" "$CR_ERR" ||
		{ REASON="cr show does not name $name as another dump's: $(last_line "$CR_ERR")"; return 1; }
}

mixed_images() {
	local one=$CASE_TMP/one two=$CASE_TMP/two name
	wl_start w_counter || return 1
	cr_dump dump-one "$WL_PID" "$one" --leave-running || return 1
	sleep 0.3
	cr_dump dump-two "$WL_PID" "$two" || return 1
	for name in files.img "fdinfo-$WL_PID.img" "pages-$WL_PID.img" "core-$WL_PID.img"; do
		mixed_refused "$one" "$two" "$name" || return 1
	done
	# The other way round: the images of the first under the second's inventory.
	mixed_refused "$two" "$one" "pages-$WL_PID.img" || return 1
	cr_restore_detached restore "$one" || return 1
	wl_trigger || return 1
	wl_expect_pass || return 1
	wl_await_exit
}

dump_id_of() {
	awk '$1 == "dump" && $2 == "id" { print $3 }' "$1"
}

distinct_ids() {
	local one=$CASE_TMP/one two=$CASE_TMP/two id1 id2
	wl_start w_counter || return 1
	cr_dump dump-one "$WL_PID" "$one" --leave-running || return 1
	cr_dump dump-two "$WL_PID" "$two" --leave-running || return 1
	cr_run show-one show -D "$one" || { REASON="cr show failed: $(last_line "$CR_ERR")"; return 1; }
	id1=$(dump_id_of "$CASE_TMP/show-one.out")
	cr_run show-two show -D "$two" || { REASON="cr show failed: $(last_line "$CR_ERR")"; return 1; }
	id2=$(dump_id_of "$CASE_TMP/show-two.out")
	[[ $id1 =~ ^[0-9a-f]{32}$ ]] || { REASON="cr show prints no dump id: '$id1'"; return 1; }
	[ "$id1" != "$id2" ] || { REASON="two dumps have the same id $id1"; return 1; }
	wl_trigger && wl_expect_pass
}

run_case mixed_images mixed_images
run_case distinct_ids distinct_ids
finish_tests
