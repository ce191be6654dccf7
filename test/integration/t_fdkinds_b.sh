#!/usr/bin/env bash
# t_fdkinds_b: pipes and FIFOs with their data, unix sockets with their
# queues, names and peers, memfds, and files deleted while open come back
# from a dump with every property the workloads check (see the header of
# w_pipes.c, w_unix.c, w_memfd.c and w_deleted.c):
#
#   control_*       the workload passes when triggered without any dump...
#   sabotage_*      ...and fails when one property is broken on purpose: its
#                   checks work and can fail.
#   roundtrip_*     dump, restore, trigger: PASS with the same pid and token.
#   leave_running_* dump --leave-running, then trigger the original: the
#                   dump read pipes, socket queues (SO_PEEK_OFF included) and
#                   file contents without consuming or moving anything.
#   twice_*         dump, restore, dump the restored process, restore again.
#   socket_path_taken  a file put where a listening socket was bound stops
#                   the restore with a message naming the path and leaves
#                   nothing behind; once it is removed, the restore works.
#   deleted_path_taken  a file put where a deleted file was: the restore
#                   warns and the workload (rightly) sees another name.
#   inherited_pipe  a pipe whose two descriptions a child inherited, with
#                   data in it: the restored child reads the data.
#   split_pipe      a pipe whose write end the parent holds and whose read
#                   end the child holds, with data queued: one pipe again.
#   refused_*       a unix socket connected to a process outside the dump, a
#                   FIFO also open outside it: the dump
#                   fails naming the pid, the fd and the kind; the process
#                   runs on and passes.
source "$(dirname "$0")/lib.sh"

socket_path_taken() {
	local img=$CASE_TMP/img sock
	wl_start w_unix || return 1
	sock=$WL_DIR/listen.sock
	cr_dump dump "$WL_PID" "$img" || return 1
	rm -f "$sock" && echo "not a socket" > "$sock"
	if cr_run restore1 restore -D "$img" --detach; then
		REASON="restore succeeded with a regular file at $sock"
		return 1
	fi
	grep -q "$sock" "$CR_ERR" || { REASON="the error does not name $sock: $(last_line "$CR_ERR")"; return 1; }
	wait_until 5 pid_gone "$WL_PID" || { REASON="the failed restore left pid $WL_PID: $(describe_pid "$WL_PID")"; return 1; }
	[ "$(cat "$sock")" = "not a socket" ] || { REASON="the failed restore touched $sock"; return 1; }
	rm -f "$sock"
	cr_restore_detached restore2 "$img" || return 1
	wl_trigger || return 1
	wl_expect_pass || return 1
	wl_await_exit
}

# The unnamed file the restore made (O_TMPFILE) cannot be given a name by
# anyone: it was created O_EXCL.
unnamed_not_linkable() {
	local fd
	for fd in /proc/"$WL_PID"/fd/*; do
		case "$(readlink "$fd")" in "$WL_DIR/#"*) break ;; esac
		fd=
	done
	[ -n "$fd" ] || { REASON="no unnamed file among pid $WL_PID's fds"; return 1; }
	python3 -c '
import ctypes, errno, os, sys
libc = ctypes.CDLL(None, use_errno=True)
fd = os.open(sys.argv[1], os.O_RDONLY)
if libc.linkat(fd, b"", -100, sys.argv[2].encode(), 0x1000) == 0: sys.exit("linked")   # AT_EMPTY_PATH
sys.exit(0 if ctypes.get_errno() == errno.ENOENT else "errno %d" % ctypes.get_errno())' "$fd" "$WL_DIR/linked" ||
		{ REASON="the unnamed file $fd could be given a name in $WL_DIR"; return 1; }
}

deleted_path_taken() {
	local img=$CASE_TMP/img file
	wl_start w_deleted || return 1
	file=$WL_DIR/deleted-rw
	cr_dump dump "$WL_PID" "$img" || return 1
	echo "a new file" > "$file"
	cr_restore_detached restore "$img" || return 1
	grep -q "$file exists again" "$CR_ERR" || { REASON="no warning about $file: $(last_line "$CR_ERR")"; return 1; }
	[ "$(cat "$file")" = "a new file" ] || { REASON="the restore touched the new $file"; return 1; }
	unnamed_not_linkable || return 1
	wl_trigger || return 1
	wl_expect_fail "(a) fd" || return 1
	# Every other property of the file came back.
	grep -q "(a) fd [0-9]* is '$WL_DIR/#[0-9]* (deleted)'" "$WL_DIR/result" ||
		{ REASON="unexpected result: $(cat "$WL_DIR/result")"; return 1; }
	[ "$(grep -o '(a)' "$WL_DIR/result" | wc -l)" = 1 ] || { REASON="more than the name was lost: $(cat "$WL_DIR/result")"; return 1; }
	wl_await_exit
}

# The dump of the current workload fails naming its pid, fd $1 and the
# pattern $2 (a grep regex); the process runs on untouched and passes when
# triggered.
refused() {
	local fd=$1 text=$2
	expect_refused "$WL_PID" "$CASE_TMP/img" "fd $fd" || return 1
	grep -q "$text" "$CR_ERR" || { REASON="the error does not say '$text': $(last_line "$CR_ERR")"; return 1; }
	running_free "$WL_PID" "$WL_EXE" || { REASON="after the refused dump: $(describe_pid "$WL_PID")"; return 1; }
	wl_trigger || return 1
	wl_expect_pass || return 1
	wl_await_exit
}

refused_unix_peer() {
	local path server_pid
	wl_start w_unix serve || return 1
	path=$WL_DIR/outside.sock
	server_pid=$WL_PID
	wl_start w_unix connect "$path" || return 1
	sleep 0.3   # the server accepts every 10 ms
	refused "$(cat "$WL_DIR/fd")" "unix socket.*outside the dump" || return 1
	grep -q "pid $server_pid" "$CR_ERR" || { REASON="the error does not name the server, pid $server_pid: $(last_line "$CR_ERR")"; return 1; }
}

refused_fifo() {
	local fifo=$CASE_TMP/fifo holder
	mkfifo "$fifo" || { REASON="mkfifo"; return 1; }
	sleep 600 <>"$fifo" &
	holder=$!
	disown "$holder"
	track_pid "$holder"
	wl_start w_pipes hold-fifo "$fifo" || return 1
	refused 3 "FIFO.*also open in pid $holder" || return 1
}

for w in w_pipes w_unix w_memfd w_deleted; do
	run_case "control_$w" case_control "$w"
done
run_case control_inherited_pipe case_control w_pipes inherited
run_case control_split_pipe case_control w_pipes split
run_case sabotage_pipe_data case_sabotaged big "(a) 102399 bytes queued" w_pipes
run_case sabotage_pipe_widowed case_sabotaged widowed "(b) read" w_pipes
run_case sabotage_pipe_packets case_sabotaged packets "(c) read 0 returned" w_pipes
run_case sabotage_pipe_fifo case_sabotaged fifo "(d) read" w_pipes
run_case sabotage_pipe_size case_sabotaged size "(a) pipe size" w_pipes
run_case sabotage_unix_stream case_sabotaged stream "(a) read 11 bytes" w_unix
run_case sabotage_unix_dgram case_sabotaged dgram "(b) read" w_unix
run_case sabotage_unix_peek case_sabotaged peek "(a) SO_PEEK_OFF 0" w_unix
run_case sabotage_unix_name case_sabotaged name "listen.sock: No such file" w_unix
run_case sabotage_unix_sender case_sabotaged sender "(f) datagram 0" w_unix
run_case sabotage_memfd_contents case_sabotaged contents "(b) contents" w_memfd
run_case sabotage_memfd_offset case_sabotaged offset "(a) fd" w_memfd
run_case sabotage_memfd_size case_sabotaged size "(c) size 1" w_memfd
run_case sabotage_deleted_contents case_sabotaged contents "(a) contents differ" w_deleted
run_case sabotage_deleted_offset case_sabotaged offset "(b) fd" w_deleted
for w in w_pipes w_unix w_memfd w_deleted; do
	run_case "roundtrip_$w" case_roundtrip "$w"
	run_case "leave_running_$w" case_leave_running "$w"
	run_case "twice_$w" case_twice "$w"
done
run_case socket_path_taken socket_path_taken
run_case deleted_path_taken deleted_path_taken
run_case inherited_pipe case_roundtrip w_pipes inherited
run_case split_pipe case_roundtrip w_pipes split
run_case refused_unix_peer refused_unix_peer
run_case refused_fifo refused_fifo
finish_tests
