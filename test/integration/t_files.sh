#!/usr/bin/env bash
# t_files: kinds of open files (issue 14 item 5, "Files"), each held by
# w_files KIND (see test/workloads/w_files.c).  As in t_lost, cr either
# restores the kind exactly (the workload's checks pass after restore) or
# refuses the dump naming the pid and the thing, leaving no dump and the
# process running; each case says which of the two cr does today.
#
# Unmodified Debian programs holding these kinds:
#   sqlite_exclusive  sqlite3 in a BEGIN EXCLUSIVE transaction, reading its
#                     commands from a FIFO it holds open and that was
#                     deleted (they are written through /proc/PID/fd/3):
#                     after restore a second sqlite3 can neither read nor
#                     write ("database is locked"), the FIFO is still
#                     deleted, the restored sqlite3 COMMITs, every row is
#                     there and the second one can write after that.
#   tail_follow       coreutils tail -f (polling) of a file deleted under
#                     the name tail opened it by but linked under another,
#                     with its working directory removed: after restore a
#                     line appended under the other name comes out of tail,
#                     whose cwd is still a removed directory.
#   cwd_path_taken    sleep in a removed working directory whose path is
#                     made again (with a file in it) between dump and
#                     restore: the restore leaves that directory alone and
#                     makes the removed one beside it (a warning says so);
#                     sleep's cwd is a removed directory.
#   cwd_shared_bash   bash with two sleeps in a directory it left and
#                     removed: both are in one removed directory again,
#                     and bash goes on when they end.
#   tail_inotify      coreutils tail -f (inotify) of a file deleted since:
#                     after restore a line appended to the deleted file
#                     (through /proc/PID/fd) comes out of tail, which is
#                     woken by its inotify watch on the file made again.
source "$(dirname "$0")/lib.sh"

# The sqlite3 of sqlite_exclusive, its commands through its deleted FIFO.
sql() {
	timeout 5 sh -c 'echo "$1" > "$2"' _ "$1" "/proc/$WL_PID/fd/3" || { REASON="cannot write to sqlite3's FIFO"; return 1; }
}

# A second sqlite3 running SQL is locked out.
locked_out() {
	local out
	out=$(timeout 10 sqlite3 "$SQ/db" "$1" 2>&1)
	case $out in
	*"database is locked"*) return 0 ;;
	esac
	REASON="$2: a second sqlite3 running '$1' was not locked out: '$out'"
	return 1
}

fifo_still_deleted() {
	local link
	link=$(readlink "/proc/$WL_PID/fd/3")
	[ "$link" = "$SQ/cmd (deleted)" ] || { REASON="sqlite3's fd 3 is '$link', not its deleted FIFO"; return 1; }
	[ ! -e "$SQ/cmd" ] || { REASON="$SQ/cmd exists again"; return 1; }
}

sqlite_exclusive() {
	local img=$CASE_TMP/img out
	SQ=$CASE_TMP/sq
	mkdir -p "$SQ"
	sqlite3 "$SQ/db" "CREATE TABLE t(x INTEGER); INSERT INTO t VALUES (1), (2), (3);" || { REASON="sqlite3 create failed"; return 1; }
	mkfifo "$SQ/cmd"
	# shellcheck disable=SC2016
	real_start "$SQ/out" "$SQ" sqlite3 sh -c 'exec 3<>cmd; exec sqlite3 db <cmd' || return 1
	rm "$SQ/cmd"
	sql "BEGIN EXCLUSIVE; INSERT INTO t VALUES (10), (11); SELECT 'in:' || count(*) FROM t;" || return 1
	wait_until 5 grep -qx "in:5" "$SQ/out" || { REASON="sqlite3 did not run the transaction: $(cat "$SQ/out.err")"; return 1; }
	locked_out "SELECT count(*) FROM t" "before the dump" && locked_out "INSERT INTO t VALUES (99)" "before the dump" || return 1
	cr_dump dump "$WL_PID" "$img" || return 1
	cr_restore_detached restore "$img" || return 1
	fifo_still_deleted || return 1
	locked_out "SELECT count(*) FROM t" "after restore" && locked_out "INSERT INTO t VALUES (99)" "after restore" || return 1
	sql "COMMIT; SELECT 'rows:' || group_concat(x) FROM t;" || return 1
	wait_until 5 grep -q "^rows:" "$SQ/out" || { REASON="the restored sqlite3 printed nothing after COMMIT: $(cat "$SQ/out.err")"; return 1; }
	grep -qx "rows:1,2,3,10,11" "$SQ/out" || { REASON="after COMMIT the restored sqlite3 sees $(cat "$SQ/out")"; return 1; }
	[ ! -s "$SQ/out.err" ] || { REASON="the restored sqlite3 reports: $(cat "$SQ/out.err")"; return 1; }
	out=$(timeout 10 sqlite3 "$SQ/db" "INSERT INTO t VALUES (99); SELECT group_concat(x) FROM t;" 2>&1)
	[ "$out" = "1,2,3,10,11,99" ] || { REASON="after the COMMIT a second sqlite3 gets '$out', want 1,2,3,10,11,99"; return 1; }
	running_free "$WL_PID" "$WL_EXE" || { REASON="sqlite3 after COMMIT: $(describe_pid "$WL_PID")"; return 1; }
}

# The fd of pid open on path (deleted since), or nothing.
fd_on() {
	local f
	for f in /proc/"$1"/fd/*; do
		[ "$(readlink "$f")" = "$2 (deleted)" ] && { echo "${f##*/}"; return; }
	done
}

tail_inotify() {
	local img=$CASE_TMP/img d=$CASE_TMP/tl fd
	mkdir -p "$d"
	echo "line one" > "$d/log.txt"
	real_start "$CASE_TMP/tail.out" "$d" tail tail -f log.txt || return 1
	wait_until 5 grep -qx "line one" "$CASE_TMP/tail.out" || { REASON="tail printed nothing"; return 1; }
	grep -q "^inotify wd:" "/proc/$WL_PID/fdinfo/"* 2>/dev/null || { REASON="tail has no inotify watch"; return 1; }
	rm "$d/log.txt"
	cr_dump dump "$WL_PID" "$img" || return 1
	cr_restore_detached restore "$img" || return 1
	fd=$(fd_on "$WL_PID" "$d/log.txt")
	[ -n "$fd" ] || { REASON="the restored tail holds no fd on the deleted $d/log.txt: $(ls -l /proc/$WL_PID/fd)"; return 1; }
	echo "line two" >> "/proc/$WL_PID/fd/$fd"
	wait_until 5 grep -qx "line two" "$CASE_TMP/tail.out" ||
		{ REASON="tail did not print the line appended after restore: $(cat "$CASE_TMP/tail.out" "$CASE_TMP/tail.out.err")"; return 1; }
	running_free "$WL_PID" "$WL_EXE" || { REASON="tail after restore: $(describe_pid "$WL_PID")"; return 1; }
	kill "$WL_PID"
}

cwd_path_taken() {
	local img=$CASE_TMP/img d=$CASE_TMP/gone cwd
	mkdir -p "$d"
	real_start "$CASE_TMP/sleep.out" "$d" sleep sleep 1000 || return 1
	rmdir "$d"
	cr_dump dump "$WL_PID" "$img" || return 1
	mkdir "$d" && echo kept > "$d/file"
	cr_restore_detached restore "$img" || return 1
	cwd=$(readlink "/proc/$WL_PID/cwd")
	case $cwd in
	"$d.cr-"*" (deleted)") ;;
	*) REASON="the restored sleep's cwd is '$cwd'"; return 1 ;;
	esac
	[ "$(cat "$d/file")" = kept ] && [ "$(ls "$d")" = file ] || { REASON="the directory made at $d was touched: $(ls -la "$d")"; return 1; }
	grep -q "exists again" "$CR_ERR" "$img/restore.log" 2>/dev/null || { REASON="no warning says the path was taken"; return 1; }
	running_free "$WL_PID" "$WL_EXE" || { REASON="sleep after restore: $(describe_pid "$WL_PID")"; return 1; }
	kill "$WL_PID"
}

# bash starts two sleeps in a directory, leaves it and removes it: after
# restore both sleeps are in one removed directory again (one inode), and
# bash, waiting for them, goes on when they end.
cwd_shared_bash() {
	local img=$CASE_TMP/img d=$CASE_TMP/gone kids before after k
	mkdir -p "$d"
	real_start "$CASE_TMP/bash.out" "$d" bash bash -c 'sleep 1000 & sleep 1000 & cd / && rmdir "$1" && echo ready && wait; echo done' _ "$d" || return 1
	wait_until 5 grep -qx ready "$CASE_TMP/bash.out" || { REASON="bash did not remove $d: $(cat "$CASE_TMP/bash.out.err")"; return 1; }
	kids=$(cat /proc/"$WL_PID"/task/*/children)
	before=$(for k in $kids; do stat -L -c %d:%i /proc/"$k"/cwd; done | sort -u)
	[ "$(wc -w <<<"$kids")" = 2 ] && [ "$(wc -l <<<"$before")" = 1 ] || { REASON="the sleeps are not in one directory before the dump"; return 1; }
	cr_dump dump "$WL_PID" "$img" || return 1
	cr_restore_detached restore "$img" || return 1
	after=$(for k in $kids; do stat -L -c %d:%i /proc/"$k"/cwd; done | sort -u)
	[ "$(wc -l <<<"$after")" = 1 ] || { REASON="the restored sleeps are in different directories: $after"; return 1; }
	for k in $kids; do
		case $(readlink /proc/"$k"/cwd) in *" (deleted)") ;; *) REASON="sleep $k is not in a removed directory"; return 1 ;; esac
	done
	kill $kids
	wait_until 5 grep -qx done "$CASE_TMP/bash.out" || { REASON="bash did not go on once its sleeps ended"; return 1; }
}

tail_follow() {
	local img=$CASE_TMP/img d=$CASE_TMP/logs cwd
	mkdir -p "$d/wd"
	echo "line one" > "$d/log.txt"
	ln "$d/log.txt" "$d/keep.txt"
	real_start "$CASE_TMP/tail.out" "$d/wd" tail tail ---disable-inotify -s 0.1 -f ../log.txt || return 1
	wait_until 5 grep -qx "line one" "$CASE_TMP/tail.out" || { REASON="tail printed nothing"; return 1; }
	rm "$d/log.txt"
	rmdir "$d/wd"
	cr_dump dump "$WL_PID" "$img" || return 1
	cr_restore_detached restore "$img" || return 1
	cwd=$(readlink "/proc/$WL_PID/cwd")
	[ "$cwd" = "$d/wd (deleted)" ] || { REASON="the restored tail's cwd is '$cwd'"; return 1; }
	echo "line two" >> "$d/keep.txt"
	wait_until 5 grep -qx "line two" "$CASE_TMP/tail.out" ||
		{ REASON="tail did not print the line appended after restore: $(cat "$CASE_TMP/tail.out" "$CASE_TMP/tail.out.err")"; return 1; }
	[ "$(wc -l < "$CASE_TMP/tail.out")" = 2 ] || { REASON="tail printed: $(cat "$CASE_TMP/tail.out")"; return 1; }
	running_free "$WL_PID" "$WL_EXE" || { REASON="tail after restore: $(describe_pid "$WL_PID")"; return 1; }
	kill "$WL_PID"
}

run_case fifo_deleted lost_either_way restored "" w_files fifo_deleted
run_case dir_open lost_either_way restored "" w_files dir_open
run_case dir_deleted lost_either_way restored "" w_files dir_deleted
run_case cwd_deleted lost_either_way restored "" w_files cwd_deleted
run_case cwd_shared lost_either_way restored "" w_files cwd_shared
run_case opath_symlink lost_either_way restored "" w_files opath_symlink
run_case opath_file lost_either_way restored "" w_files opath_file
run_case hardlink_deleted lost_either_way restored "" w_files hardlink_deleted
run_case hardlink_elsewhere lost_either_way restored "" w_files hardlink_elsewhere
run_case inotify_deleted lost_either_way restored "" w_files inotify_deleted
run_case fanotify lost_either_way restored "" w_files fanotify
run_case nsfs_own lost_either_way restored "" w_files nsfs_own
run_case nsfs_other lost_either_way refused "not the process's own uts namespace" w_files nsfs_other
run_case cwd_path_taken cwd_path_taken
run_case cwd_shared_bash cwd_shared_bash
run_case tail_inotify tail_inotify
run_case sqlite_exclusive sqlite_exclusive
run_case tail_follow tail_follow
finish_tests
