#!/usr/bin/env bash
# t_imgdir: in an image directory cr touches only what it creates, and
# follows nothing.
#   failed_dump_keeps_files  a dump that fails (a process cr refuses, a pid
#                      that does not exist, a process whose image name a
#                      user's file already has) into a directory holding the
#                      user's keep.img, pages-1.img and notes removes none of
#                      them and changes none; the refused process runs on and
#                      passes; the collision is named.
#   log_symlink        dump.log and restore.log planted as symlinks to a
#                      canary file (and to a path that does not exist): a
#                      dump, a restore that fails at once and one that
#                      succeeds leave the canary as it was and create nothing
#                      at the dangling target; the logs are regular files.
#   fifo_image         a FIFO named inventory.img, core-PID.img or
#                      pages-PID.img (and a symlink named core-PID.img to
#                      the real image) makes cr restore and cr show fail at
#                      once, naming the file, instead of hanging; the
#                      untouched dump then restores and passes.
#   symlinked_dir      -D given as a symlink to a directory is refused by
#                      cr dump (the process runs on, nothing is written
#                      through the link), cr restore and cr show, naming it.
source "$(dirname "$0")/lib.sh"

# user_files DIR: plants a user's files; user_files_intact DIR checks them.
user_files() {
	mkdir -p "$1"
	echo "the user's own keep.img" > "$1/keep.img"
	echo "the user's own pages-1.img" > "$1/pages-1.img"
	echo "notes" > "$1/notes"
}

user_files_intact() {
	local dir=$1 f
	for f in keep.img pages-1.img notes; do
		[ -f "$dir/$f" ] || { REASON="$2 removed the user's $f: $(ls "$dir" | tr '\n' ' ')"; return 1; }
	done
	grep -qx "the user's own keep.img" "$dir/keep.img" &&
		grep -qx "the user's own pages-1.img" "$dir/pages-1.img" &&
		grep -qx notes "$dir/notes" || { REASON="$2 changed the user's files"; return 1; }
}

failed_dump_keeps_files() {
	local img=$CASE_TMP/img nl missing=$CASE_TMP/missing
	user_files "$img"
	wl_start w_pipe || return 1
	read -r _ nl < <(grep '^raw' "$WL_DIR/fds")
	expect_refused "$WL_PID" "$img" "unsupported kind: socket (RAW)" "fd $nl:" || return 1
	user_files_intact "$img" "a refused dump" || return 1
	running_free "$WL_PID" "$WL_EXE" || { REASON="after the refused dump: $(describe_pid "$WL_PID")"; return 1; }
	wl_trigger && wl_expect_pass || return 1

	# A pid that does not exist.
	user_files "$missing"
	cr_run dump-missing dump 999999999 -D "$missing" && { REASON="a dump of a missing pid succeeded"; return 1; }
	user_files_intact "$missing" "a dump of a missing pid" || return 1

	# The user's file has the name this dump needs: refused by name, kept.
	wl_start w_counter || return 1
	echo "the user's own pages-$WL_PID.img" > "$img/pages-$WL_PID.img"
	expect_refused "$WL_PID" "$img" "pages-$WL_PID.img" || return 1
	grep -qx "the user's own pages-$WL_PID.img" "$img/pages-$WL_PID.img" ||
		{ REASON="the dump removed or changed the user's pages-$WL_PID.img"; return 1; }
	user_files_intact "$img" "a dump meeting a name it needs" || return 1
	[ "$(ls "$img"/*.img | wc -l)" = 3 ] || { REASON="partial images left: $(ls "$img" | tr '\n' ' ')"; return 1; }
	running_free "$WL_PID" "$WL_EXE" || { REASON="after the refused dump: $(describe_pid "$WL_PID")"; return 1; }
	wl_trigger && wl_expect_pass
}

# canary_intact: the canary still holds what it held, nothing appeared at
# the dangling target, and LOG (in DIR) is a regular file, not a link.
canary_intact() {
	local what=$1 log=$2
	[ "$(cat "$CASE_TMP/canary")" = "canary" ] || { REASON="$what wrote to the canary through a symlink: $(head -c 200 "$CASE_TMP/canary")"; return 1; }
	[ ! -e "$CASE_TMP/nowhere" ] || { REASON="$what created the dangling symlink's target"; return 1; }
	[ -z "$log" ] || [ ! -L "$log" ] || { REASON="$what left $log a symlink"; return 1; }
}

log_symlink() {
	local img=$CASE_TMP/img empty=$CASE_TMP/empty
	echo canary > "$CASE_TMP/canary"
	mkdir -m 700 "$img" "$empty"
	ln -s "$CASE_TMP/canary" "$img/dump.log"
	wl_start w_counter || return 1
	cr_dump dump "$WL_PID" "$img" || return 1
	canary_intact "a dump" "$img/dump.log" || return 1
	grep -q "dumped" "$img/dump.log" || { REASON="dump.log holds no log: $(head -c 200 "$img/dump.log")"; return 1; }

	ln -s "$CASE_TMP/canary" "$empty/restore.log"
	cr_run restore-empty restore -D "$empty" --detach && { REASON="a restore of an empty directory succeeded"; return 1; }
	canary_intact "a failed restore" "" || return 1
	ln -sfn "$CASE_TMP/nowhere" "$empty/restore.log"
	cr_run restore-empty2 restore -D "$empty" --detach && { REASON="a restore of an empty directory succeeded"; return 1; }
	canary_intact "a failed restore (dangling link)" "" || return 1

	ln -s "$CASE_TMP/canary" "$img/restore.log"
	cr_restore_detached restore "$img" || return 1
	canary_intact "a restore" "$img/restore.log" || return 1
	wl_trigger && wl_expect_pass
}

# refused_fast WHAT NAME DIR: cr restore and cr show of DIR fail at once
# (within 20 s), naming NAME.
refused_fast() {
	local what=$1 name=$2 dir=$3 cmd
	for cmd in restore show; do
		CR_TIMEOUT=20 cr_run "$cmd-$name" "$cmd" -D "$dir" $([ "$cmd" = restore ] && echo --detach)
		[ "$CR_STATUS" != 124 ] || { REASON="cr $cmd hangs on $what $name"; return 1; }
		[ "$CR_STATUS" != 0 ] || { REASON="cr $cmd accepted $what $name"; return 1; }
		grep -qF "$name" "$CR_ERR" || { REASON="cr $cmd does not name $name: $(last_line "$CR_ERR")"; return 1; }
	done
	pid_gone "$WL_PID" || { REASON="pid $WL_PID exists after the refused restore ($name)"; return 1; }
}

fifo_image() {
	local img=$CASE_TMP/img copy=$CASE_TMP/copy name
	wl_start w_counter || return 1
	cr_dump dump "$WL_PID" "$img" || return 1
	for name in inventory.img "core-$WL_PID.img" "pages-$WL_PID.img"; do
		rm -rf "$copy"
		cp -a "$img" "$copy"
		rm "$copy/$name"
		mkfifo -m 600 "$copy/$name"
		refused_fast "a FIFO named" "$name" "$copy" || return 1
	done
	rm -rf "$copy"
	cp -a "$img" "$copy"
	mv "$copy/core-$WL_PID.img" "$CASE_TMP/core-elsewhere.img"
	ln -s "$CASE_TMP/core-elsewhere.img" "$copy/core-$WL_PID.img"
	refused_fast "a symlink named" "core-$WL_PID.img" "$copy" || return 1
	cr_restore_detached restore "$img" || return 1
	wl_trigger && wl_expect_pass
}

symlinked_dir() {
	local real=$CASE_TMP/real link=$CASE_TMP/link cmd
	mkdir -m 700 "$real"
	ln -s "$real" "$link"
	wl_start w_counter || return 1
	for cmd in "$link" "$link/"; do
		cr_run dump-link dump "$WL_PID" -D "$cmd" && { REASON="a dump into the symlink $cmd succeeded"; return 1; }
		grep -qF "$link" "$CR_ERR" && grep -q "symbolic link" "$CR_ERR" ||
			{ REASON="the refusal does not name the symlink $cmd: $(last_line "$CR_ERR")"; return 1; }
		[ -z "$(ls -A "$real")" ] || { REASON="the refused dump wrote through the symlink: $(ls "$real" | tr '\n' ' ')"; return 1; }
		running_free "$WL_PID" "$WL_EXE" || { REASON="after the refused dump: $(describe_pid "$WL_PID")"; return 1; }
	done
	rmdir "$real"
	cr_dump dump "$WL_PID" "$real" || return 1
	for cmd in restore show; do
		cr_run "$cmd-link" "$cmd" -D "$link" $([ "$cmd" = restore ] && echo --detach) &&
			{ REASON="cr $cmd of the symlink $link succeeded"; return 1; }
		grep -qF "$link" "$CR_ERR" && grep -q "symbolic link" "$CR_ERR" ||
			{ REASON="cr $cmd does not name the symlink $link: $(last_line "$CR_ERR")"; return 1; }
	done
	[ ! -e "$real/restore.log" ] || { REASON="the refused restore wrote restore.log through the symlink"; return 1; }
	pid_gone "$WL_PID" || { REASON="the refused restore created pid $WL_PID"; return 1; }
	cr_restore_detached restore "$real" || return 1
	wl_trigger && wl_expect_pass
}

# A directory others may write (or another user owns) could be given images
# of theirs: dump and restore refuse it by name before touching anything.
shared_dir() {
	local dir=$CASE_TMP/shared mode
	mkdir -m 700 "$dir"
	wl_start w_counter || return 1
	for mode in 0777 0770 1777; do
		chmod "$mode" "$dir"
		cr_run "dump-$mode" dump "$WL_PID" -D "$dir" && { REASON="a dump into a directory of mode $mode succeeded"; return 1; }
		grep -qF "image directory $dir is writable by" "$CR_ERR" ||
			{ REASON="the refusal of mode $mode does not name $dir: $(last_line "$CR_ERR")"; return 1; }
		[ -z "$(ls -A "$dir")" ] || { REASON="the refused dump wrote: $(ls "$dir" | tr '\n' ' ')"; return 1; }
		running_free "$WL_PID" "$WL_EXE" || { REASON="after the refused dump: $(describe_pid "$WL_PID")"; return 1; }
	done
	chmod 0700 "$dir"
	cr_dump dump "$WL_PID" "$dir" || return 1
	chmod 0775 "$dir"
	cr_run restore-shared restore -D "$dir" --detach && { REASON="a restore from a group-writable directory succeeded"; return 1; }
	grep -qF "image directory $dir is writable by its group" "$CR_ERR" ||
		{ REASON="the refused restore does not name $dir: $(last_line "$CR_ERR")"; return 1; }
	pid_gone "$WL_PID" || { REASON="the refused restore created pid $WL_PID"; return 1; }
	chown 1000 "$dir"
	chmod 0700 "$dir"
	cr_run restore-owned restore -D "$dir" --detach && { REASON="a restore from uid 1000's directory succeeded"; return 1; }
	grep -qF "image directory $dir belongs to uid 1000" "$CR_ERR" ||
		{ REASON="the refused restore does not name the owner: $(last_line "$CR_ERR")"; return 1; }
	chown 0 "$dir"
	cr_restore_detached restore "$dir" || return 1
	wl_trigger && wl_expect_pass
}

run_case failed_dump_keeps_files failed_dump_keeps_files
run_case log_symlink log_symlink
run_case fifo_image fifo_image
run_case symlinked_dir symlinked_dir
run_case shared_dir shared_dir
finish_tests
