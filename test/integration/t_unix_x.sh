#!/usr/bin/env bash
# t_unix_x: unix sockets between the processes of a dumped tree (w_unix_x.c
# says what each mode holds and checks), and real programs that connect
# their processes with them:
#
#   control_*     the workload passes without any dump.
#   tree          socketpairs across fork, a pair whose common ancestor holds
#                 none of it, an accepted connection and its client in
#                 another process, datagrams from another process: dump,
#                 restore, every queue and connection checked, and the
#                 children report the tokens they drew.
#   tree_twice / tree_leave_running  the same, twice in a row / the dump
#                 consumed nothing.
#   creds         a datagram queued with the credentials (SO_PASSCRED) of a
#                 child that exited, with another uid and gid: the same pid,
#                 uid and gid after restore; creds_new_pidns and
#                 tree_new_pidns: restored with --new-pidns.
#   rights_sk     a datagram carrying in flight (SCM_RIGHTS) the socket it
#                 is queued on, an end of a pair whose other end a child
#                 holds, a file no process holds, a socket only in flight
#                 with data queued, and a pipe's read end with data: the
#                 sockets are those sockets after restore (the pairs talk),
#                 the file reads on from its offset, the pipe its data.
#   rights_stream fds in flight on a stream pair to a child, in three writes:
#                 a file and a pipe, a socket only in flight (its own stream
#                 queue carrying a file) and an end the sender holds; after
#                 restore each read stops after a write with fds and gets
#                 them, the files read on from their offsets, the sockets
#                 talk.  rights_stream_cred: the receiver has SO_PASSCRED,
#                 and a child gone since wrote "kid" between two writes
#                 with fds: each read carries its writer's pid.
#                 rights_stream_twice, rights_stream_cred_twice: dumped
#                 again after restore (the restored queue is written as the
#                 first was: the dump counts its writes again).
#   rights_closed one byte with a file in flight, then two writes, on a
#                 stream whose sender closed its end: read back in order
#                 (rights_closed_twice: dumped again after restore).
#   rights_pipe   a pipe's read end in flight to a child, its write end
#                 written on by the sender before and after the dump: the
#                 child reads all of it, then the end of the pipe
#                 (rights_pipe_twice: dumped again after restore).
#   ext_peer      a client of a server outside the tree: refused, and with
#                 --ext-unix-sk restored connected to the server's path again;
#                 the server's side (ext_unnamed) is refused even so: its
#                 client has no name.  ext_dgram: the same for a datagram
#                 socket connected to a datagram server.
#   embryo        two connections not accepted yet come back queued, in
#                 order, and are accepted after restore.
#   refused_*     refused at dump naming the pid, the fd and the thing; the
#                 tree runs on and passes: a connection not accepted yet
#                 with data its client sent (embryo_data), a pipe in flight
#                 whose write end a child holds that holds neither end of
#                 the socket pair (rights), a peer in flight in a queue
#                 outside the dump (lost_peer: found once every fd is
#                 recorded).
#
# Unmodified Debian programs, each checking its own state after restore:
#   node_fork     node's child_process.fork: the IPC channel is a socketpair
#                 between parent and child; the child's running sum and the
#                 parent's message counter go on.
#   redis_client  redis-server on a unix socket and a python3 client in the
#                 tree holding one connection: INCR on the same connection
#                 after restore continues the counter, the key set before
#                 the dump is there.
#   socat         a socat unix server (fork, sed per connection) and a socat
#                 client in the tree: a line written after restore comes
#                 back through the same connection.
#   socat_unlinked  the same, the server's socket file removed (rm) while
#                 the client is connected: the line comes back, the
#                 listener has its name (/proc/net/unix) and no file.
#   socat_moved   the same, the server's socket file moved (mv) to another
#                 directory while the client is connected: after restore
#                 the file is where it was moved, nothing at the bound
#                 path, and a new client there is answered.  Before, the
#                 restore bound the old path and unlinked it: the listener
#                 was reachable by no name.
#   socat_dir_moved  the same, the socket file's directory renamed.
#   haproxy_renamed  haproxy (Debian's) binds its admin socket and a unix
#                 HTTP frontend at temporary names and renames the files
#                 over the real ones: after restore both answer at their
#                 real paths (new files, the same names bound), the admin
#                 socket reports the same pid and the requests counted
#                 before the dump plus the new ones.  Before, the restore
#                 succeeded with the sockets bound at the temporary names
#                 and unlinked: "Connection refused" at the real ones.
#   dbus          dbus-daemon (a session bus) and dbus-monitor connected to
#                 it, in the tree: after restore the bus keeps the id it
#                 drew at start, serves a new client, and the monitor gets
#                 the client's signal over its old connection.
#   ext_replaced  ext_dgram, and a datagram queued from that socket to one
#                 of the workload's own, whose socket file was replaced by
#                 a regular file: restored, the datagram arrives, the
#                 regular file is unchanged (inode, contents).
#   ext_replaced_fails  the same, the outside server gone before restore:
#                 the restore fails after binding the replaced name again,
#                 and the regular file is back (inode, contents, nothing
#                 left aside).
#   python_pipe   python3 multiprocessing.Process with a duplex Pipe (a
#                 socketpair) and a multiprocessing.connection Listener on a
#                 unix path with its client in the child.
#   python_pool   python3 multiprocessing.Pool (two workers, their task and
#                 result pipes, semaphores that are mappings of deleted
#                 /dev/shm files): the pool's results after restore.
#   python_send_fds  python3 socket.send_fds on a SOCK_STREAM socketpair to
#                 a forked child, unread at dump: the child's recv_fds gets
#                 each write with its fds after restore and uses them.
#   python_send_handle  python3 multiprocessing.reduction send_handle of a
#                 file and a pipe over a Pipe, then a message, by a process
#                 gone since: recv_handle and recv after restore.
source "$(dirname "$0")/lib.sh"

# The workload's children, for the dump to free them too.
children_of() {
	cat /proc/"$1"/task/*/children 2>/dev/null
}

tree_roundtrip() {
	local img=$CASE_TMP/img kids k
	wl_start w_unix_x "$@" || return 1
	kids=$(children_of "$WL_PID")
	[ -n "$kids" ] || { REASON="the workload has no children"; return 1; }
	cr_dump dump "$WL_PID" "$img" || return 1
	for k in $kids; do
		wait_until 5 pid_gone "$k" || { REASON="child $k survived the dump"; return 1; }
	done
	cr_restore_detached restore "$img" || return 1
	for k in $kids; do
		proc_alive "$k" || { REASON="child $k was not restored"; return 1; }
	done
	wl_trigger || return 1
	wl_expect_pass || return 1
	wl_await_exit
}

refused_x() {
	local text=$1
	shift
	wl_start w_unix_x "$@" || return 1
	expect_refused "$WL_PID" "$CASE_TMP/img" || return 1
	grep -q "$text" "$CR_ERR" || { REASON="the error does not say '$text': $(last_line "$CR_ERR")"; return 1; }
	running_free "$WL_PID" "$WL_EXE" || { REASON="after the refused dump: $(describe_pid "$WL_PID")"; return 1; }
	wl_trigger || return 1
	wl_expect_pass || return 1
	wl_await_exit
}

# The same restored in a new pid namespace (the sender of the queued
# credentials is made there, with its pid inside).
creds_new_pidns() {
	wl_start w_unix_x creds || return 1
	cr_dump dump "$WL_PID" "$CASE_TMP/img" || return 1
	restore_new_pidns_and_pass "$CASE_TMP/img"
}

tree_new_pidns() {
	wl_start w_unix_x tree || return 1
	cr_dump dump "$WL_PID" "$CASE_TMP/img" || return 1
	restore_new_pidns_and_pass "$CASE_TMP/img"
}

# An echo server outside the dump, and its client, the workload.
ext_start() {
	local path
	wl_start w_unix_x serve "$CASE_TMP/echo.sock" || return 1
	EXT_SERVER=$WL_PID
	wl_start w_unix_x ext "$CASE_TMP/echo.sock"
}

# Without --ext-unix-sk the dump is refused, naming the server's process
# for this connection (it forks one per client) and the option; with it, the restored client is connected to the server again.
ext_peer() {
	ext_start || return 1
	expect_refused "$WL_PID" "$CASE_TMP/img0" "outside the dump" "--ext-unix-sk" || return 1
	local p named=
	for p in $(descendants "$EXT_SERVER"); do
		[ "$p" != "$EXT_SERVER" ] && mentions_number "$CR_ERR" "$p" && named=$p
	done
	[ -n "$named" ] || { REASON="the error does not name the server's process for this client: $(last_line "$CR_ERR")"; return 1; }
	cr_dump dump "$WL_PID" "$CASE_TMP/img" --ext-unix-sk || return 1
	cr_restore_detached restore "$CASE_TMP/img" || return 1
	wl_trigger || return 1
	wl_expect_pass || return 1
	wl_await_exit
}

# A datagram socket connected to a datagram server outside: refused, and
# with --ext-unix-sk connected to its path again.
ext_dgram() {
	wl_start w_unix_x dserve "$CASE_TMP/dgram.sock" || return 1
	wl_start w_unix_x ext-dgram "$CASE_TMP/dgram.sock" || return 1
	expect_refused "$WL_PID" "$CASE_TMP/img0" "outside the dump" "--ext-unix-sk" || return 1
	cr_dump dump "$WL_PID" "$CASE_TMP/img" --ext-unix-sk || return 1
	cr_restore_detached restore "$CASE_TMP/img" || return 1
	wl_trigger || return 1
	wl_expect_pass || return 1
	wl_await_exit
}

# ext_replaced_start: the outside datagram server and the workload of
# ext-dgram-replaced, dumped with --ext-unix-sk; RP_FILE, RP_INO.
ext_replaced_start() {
	RP_FILE=$CASE_TMP/rp.sock
	wl_start w_unix_x dserve "$CASE_TMP/dgram.sock" || return 1
	EXT_SERVER=$WL_PID
	wl_start w_unix_x ext-dgram-replaced "$CASE_TMP/dgram.sock" "$RP_FILE" || return 1
	RP_INO=$(stat -c %i "$RP_FILE")
	cr_dump dump "$WL_PID" "$CASE_TMP/img" --ext-unix-sk
}

# rp_unchanged: the regular file at RP_FILE is the one of before, and
# nothing was left aside next to it.
rp_unchanged() {
	[ -f "$RP_FILE" ] && [ "$(stat -c %i "$RP_FILE")" = "$RP_INO" ] ||
		{ REASON="$RP_FILE is not the same file: $(ls -li "$RP_FILE" 2>&1)"; return 1; }
	[ "$(cat "$RP_FILE")" = other ] || { REASON="$RP_FILE reads '$(cat "$RP_FILE")'"; return 1; }
	[ -z "$(ls -A "$CASE_TMP" | grep aside)" ] || { REASON="left aside: $(ls -A "$CASE_TMP" | grep aside)"; return 1; }
}

ext_replaced() {
	ext_replaced_start || return 1
	cr_restore_detached restore "$CASE_TMP/img" || return 1
	rp_unchanged || return 1
	wl_trigger || return 1
	wl_expect_pass || return 1
	wl_await_exit
}

ext_replaced_fails() {
	ext_replaced_start || return 1
	kill -9 "$EXT_SERVER"
	wait_until 5 pid_gone "$EXT_SERVER" || { REASON="the outside server survived"; return 1; }
	rm -f "$CASE_TMP/dgram.sock"
	if cr_run restore restore -D "$CASE_TMP/img" --detach; then
		REASON="the restore succeeded without the outside server"
		return 1
	fi
	grep -q "dgram.sock" "$CR_ERR" || { REASON="the restore failed elsewhere: $(last_line "$CR_ERR")"; return 1; }
	rp_unchanged
}

# The server's side of the same: its peer, the client outside, has no name
# to connect to again: refused even with --ext-unix-sk, and both run on.
ext_unnamed() {
	ext_start || return 1
	cr_run dump dump "$EXT_SERVER" -D "$CASE_TMP/img" --ext-unix-sk
	check_refused "$EXT_SERVER" "$CASE_TMP/img" "has no name to connect to again" || return 1
	wl_trigger || return 1
	wl_expect_pass || return 1
	wl_await_exit
}

# ---- real programs ---------------------------------------------------------

# prog_start SCRIPT ARGS...: runs bash SCRIPT DIR ARGS... as a session leader
# in a fresh DIR until DIR/ready exists; sets PROG_DIR, PROG_PID (the bash
# root of the tree).
prog_start() {
	local script=$1
	shift
	PROG_DIR=$CASE_TMP/prog
	mkdir -p "$PROG_DIR"
	CASE_LOGS+=("$PROG_DIR/out")
	( clean_exec setsid bash "$script" "$PROG_DIR" "$@" ) </dev/null >"$PROG_DIR/out" 2>&1 &
	PROG_PID=$!
	disown "$PROG_PID"
	track_pid "$PROG_PID"
	wait_until 15 test -e "$PROG_DIR/ready" || { REASON="not ready: $(tail -n 3 "$PROG_DIR/out")"; return 1; }
	for p in $(descendants "$PROG_PID"); do track_pid "$p"; done
}

# prog_roundtrip: dump the tree (every process gone), restore it (the same
# pids back).
prog_roundtrip() {
	local img=$CASE_TMP/img pids p
	pids="$PROG_PID $(descendants "$PROG_PID")"
	cr_dump dump "$PROG_PID" "$img" || return 1
	for p in $pids; do
		wait_until 5 pid_gone "$p" || { REASON="pid $p survived the dump"; return 1; }
	done
	cr_run restore restore -D "$img" --detach ||
		{ REASON="cr restore failed (exit $CR_STATUS): $(last_line "$CR_ERR")"; return 1; }
	for p in $pids; do
		wait_until 5 proc_alive "$p" || { REASON="pid $p was not restored"; return 1; }
		wait_until 10 test "$(status_field "$p" TracerPid)" = 0 || { REASON="pid $p is still traced"; return 1; }
	done
}

# prog_result WANT: DIR/result (written after "go") must be WANT.
prog_result() {
	local want=$1 got
	touch "$PROG_DIR/go"
	wait_until 15 test -s "$PROG_DIR/result" || { REASON="no result: $(tail -n 3 "$PROG_DIR/out")"; return 1; }
	sleep 0.1
	got=$(cat "$PROG_DIR/result")
	[ "$got" = "$want" ] || { REASON="result '$got', wanted '$want'"; return 1; }
}

node_fork() {
	local js=$CASE_TMP/fork.js
	command -v node >/dev/null || { REASON="node is not installed (make deps)"; return 1; }
	cat > "$js" <<'JS'
const { fork } = require('child_process');
const fs = require('fs');
const d = process.argv[2];
if (process.argv[3] === 'child') {
	let sum = 0;   // the child's state: the running sum
	process.on('message', (m) => { sum += m.add; process.send({ sum: sum }); });
} else {
	let replies = 0, sent = 0;   // the parent's state
	const c = fork(__filename, [d, 'child'], { stdio: ['ignore', 'ignore', 'ignore', 'ipc'] });
	const add = () => { sent += 5; c.send({ add: 5 }); };
	c.on('message', (m) => {
		replies++;
		if (replies === 3)
			fs.writeFileSync(d + '/ready', '');
		if (replies === 4)
			fs.writeFileSync(d + '/result', `${replies} ${m.sum} ${sent} ${c.pid}`);
	});
	add(); add(); add();
	const w = setInterval(() => { if (fs.existsSync(d + '/go')) { clearInterval(w); add(); } }, 20);
}
JS
	cat > "$CASE_TMP/node.sh" <<'SH'
exec node "$2" "$1"
SH
	prog_start "$CASE_TMP/node.sh" "$js" || return 1
	local child
	child=$(cat /proc/"$PROG_PID"/task/*/children | tr ' ' '\n' | grep -v '^$' | head -n 1)
	[ -n "$child" ] || { REASON="node forked no child"; return 1; }
	prog_roundtrip || return 1
	prog_result "4 20 20 $child"
}

redis_client() {
	command -v redis-server >/dev/null || { REASON="redis-server is not installed (make deps)"; return 1; }
	cat > "$CASE_TMP/redis.sh" <<'SH'
d=$1
redis-server --port 0 --unixsocket "$d/redis.sock" --unixsocketperm 700 --save '' --appendonly no \
	--daemonize no --dir "$d" --logfile "$d/redis.log" &
while [ ! -S "$d/redis.sock" ]; do sleep 0.05; done
exec python3 -c '
import os, socket, sys, time
d = sys.argv[1]
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.connect(d + "/redis.sock")
def cmd(*a):
    s.sendall(("*%d\r\n" % len(a) + "".join("$%d\r\n%s\r\n" % (len(x), x) for x in a)).encode())
    return s.recv(4096).decode().split()[-1]
local = 0
for i in range(5):
    cmd("INCR", "counter"); local += 1
cmd("SET", "token", "tok-%d" % os.getpid())
open(d + "/ready", "w").close()
while not os.path.exists(d + "/go"):
    time.sleep(0.02)
r = cmd("INCR", "counter"); local += 1
t = cmd("GET", "token")
open(d + "/result", "w").write("%s %d %s" % (r, local, t))
' "$d"
SH
	prog_start "$CASE_TMP/redis.sh" || return 1
	prog_roundtrip || return 1
	# The client is the root (bash exec'd python3); redis-server its child.
	prog_result ":6 6 tok-$PROG_PID"
}

# dbus-daemon (a session bus on a unix socket) with dbus-monitor connected
# to it, both in the tree: after restore the bus has the id it drew at
# start (GetId: a daemon started again draws another), a new client is
# served, and a signal it sends reaches the monitor over its old
# connection.
dbus_bus() {
	local bus id tok=after-$RANDOM
	command -v dbus-daemon >/dev/null && command -v dbus-send >/dev/null ||
		{ REASON="dbus-daemon or dbus-send is not installed (make deps)"; return 1; }
	cat > "$CASE_TMP/dbus.sh" <<'SH'
d=$1
bus=unix:path=$d/bus
dbus-daemon --session --nofork --address="$bus" --print-address=1 > "$d/addr" &
while [ ! -S "$d/bus" ]; do sleep 0.05; done
dbus-monitor --address "$bus" > "$d/mon" 2>&1 &
while ! grep -q 'member=Ready' "$d/mon"; do
	dbus-send --bus="$bus" --type=signal / com.example.Cr.Ready
	sleep 0.1
done
dbus-send --bus="$bus" --print-reply --dest=org.freedesktop.DBus / org.freedesktop.DBus.GetId > "$d/id"
touch "$d/ready"
wait
SH
	prog_start "$CASE_TMP/dbus.sh" || return 1
	bus=unix:path=$PROG_DIR/bus
	prog_roundtrip || return 1
	id=$(timeout 10 dbus-send --bus="$bus" --print-reply --dest=org.freedesktop.DBus / org.freedesktop.DBus.GetId 2>&1)
	[ "$(grep string <<<"$id")" = "$(grep string "$PROG_DIR/id")" ] && grep -q string <<<"$id" ||
		{ REASON="the bus id after restore is '$id', before: $(cat "$PROG_DIR/id")"; return 1; }
	timeout 10 dbus-send --bus="$bus" --type=signal / com.example.Cr.Ping "string:$tok" ||
		{ REASON="dbus-send could not send a signal after restore"; return 1; }
	wait_until 5 grep -q "$tok" "$PROG_DIR/mon" ||
		{ REASON="the restored dbus-monitor did not get the signal: $(tail -n 3 "$PROG_DIR/mon")"; return 1; }
}

# socat_pair [rm]: with rm, the server's socket file is removed once the
# client is connected.
# The listener's file is at $1 after the restore, as at dump, nothing at
# $2 (where it was bound), and a new client there is answered.
socat_moved_there() {
	local out
	[ -S "$1" ] || { REASON="no socket file at $1, where it was moved before the dump"; return 1; }
	[ ! -e "$2" ] || { REASON="$2, where the socket was bound before its file moved, is back"; return 1; }
	out=$(echo new | timeout 5 socat - UNIX-CONNECT:"$1" 2>&1)
	[ "$out" = E-new ] || { REASON="a new client at $1: '$out'"; return 1; }
}

socat_pair() {
	command -v socat >/dev/null || { REASON="socat is not installed (make deps)"; return 1; }
	cat > "$CASE_TMP/socat.sh" <<'SH'
d=$1
mode=$2
sock=$d/s.sock
case $mode in mv|mvdir) mkdir "$d/a"; sock=$d/a/s.sock;; esac
mkfifo "$d/in.fifo"
socat UNIX-LISTEN:"$sock",fork EXEC:'sed -u s/^/E-/' &
while [ ! -S "$sock" ]; do sleep 0.05; done
socat PIPE:"$d/in.fifo",ignoreeof!!STDOUT UNIX-CONNECT:"$sock" > "$d/client.out" &
echo before > "$d/in.fifo"
while ! grep -q E-before "$d/client.out"; do sleep 0.05; done
case $mode in
rm) rm "$sock";;
mv) mkdir "$d/b"; mv "$sock" "$d/b/s.sock";;
mvdir) mv "$d/a" "$d/c";;
esac
touch "$d/ready"
wait
SH
	prog_start "$CASE_TMP/socat.sh" "$@" || return 1
	[ "$(descendants "$PROG_PID" | wc -w)" -ge 4 ] || { REASON="socat did not fork for its client: $(descendants "$PROG_PID")"; return 1; }
	prog_roundtrip || return 1
	if [ "${1:-}" = rm ]; then
		[ ! -e "$PROG_DIR/s.sock" ] || { REASON="the removed socket file is back"; return 1; }
		grep -q " $PROG_DIR/s.sock\$" /proc/net/unix || { REASON="no socket named $PROG_DIR/s.sock in /proc/net/unix"; return 1; }
	fi
	case ${1:-} in
	mv) socat_moved_there "$PROG_DIR/b/s.sock" "$PROG_DIR/a/s.sock" || return 1;;
	mvdir) socat_moved_there "$PROG_DIR/c/s.sock" "$PROG_DIR/a" || return 1;;
	esac
	timeout 5 sh -c 'echo after > "$1"' sh "$PROG_DIR/in.fifo" || { REASON="no reader on the FIFO"; return 1; }
	wait_until 5 grep -q E-after "$PROG_DIR/client.out" ||
		{ REASON="the line did not come back: $(cat "$PROG_DIR/client.out")"; return 1; }
	[ "$(cat "$PROG_DIR/client.out")" = "$(printf 'E-before\nE-after')" ] ||
		{ REASON="client output: $(cat "$PROG_DIR/client.out")"; return 1; }
}

haproxy_renamed() {
	local dir=$CASE_TMP/hap before after
	haproxy_start "$dir" || return 1
	for _ in 1 2 3; do haproxy_get "$dir" >/dev/null || { REASON="no answer before the dump"; return 1; }; done
	before=$(haproxy_cli "$dir" "show info" | sed -n 's/^CumReq: //p')
	[ "${before:-0}" -ge 3 ] || { REASON="CumReq before the dump: '$before'"; return 1; }
	grep -q "$dir/stats.sock.$WL_PID.tmp\$" /proc/net/unix || { REASON="haproxy bound no temporary name"; return 1; }
	cr_dump dump "$WL_PID" "$CASE_TMP/img" || return 1
	cr_restore_detached restore "$CASE_TMP/img" || return 1
	[ "$(haproxy_get "$dir")" = direct ] || { REASON="the frontend does not answer at $dir/http.sock"; return 1; }
	haproxy_cli "$dir" "show info" > "$dir/info" || { REASON="the admin socket does not answer at $dir/stats.sock"; return 1; }
	grep -qx "Pid: $WL_PID" "$dir/info" || { REASON="admin socket: $(grep Pid "$dir/info")"; return 1; }
	after=$(sed -n 's/^CumReq: //p' "$dir/info")
	[ "${after:-0}" -gt "$before" ] || { REASON="CumReq $after after restore, $before before"; return 1; }
	[ ! -e "$dir/stats.sock.$WL_PID.tmp" ] || { REASON="the temporary name is back"; return 1; }
	[ "$(stat -c %a "$dir/stats.sock")" = 600 ] || { REASON="stats.sock mode $(stat -c %a "$dir/stats.sock")"; return 1; }
}

python_pipe() {
	cat > "$CASE_TMP/pipe.sh" <<'SH'
exec python3 -c '
import multiprocessing as mp, multiprocessing.connection as mc, os, sys, time
d = sys.argv[1]
def child(conn, addr):
    total = 0
    c = mc.Client(addr, family="AF_UNIX")
    while True:
        m = conn.recv()
        if m is None:
            break
        total += m
        conn.send(total)
        c.send(("via listener", total, os.getpid()))
if __name__ == "__main__":
    mp.set_start_method("fork")
    addr = d + "/mp.sock"
    listener = mc.Listener(addr, family="AF_UNIX")
    parent_end, child_end = mp.Pipe()
    p = mp.Process(target=child, args=(child_end, addr))
    p.start()
    lc = listener.accept()
    for i in range(1, 4):
        parent_end.send(i)
        parent_end.recv()
        lc.recv()
    open(d + "/ready", "w").close()
    while not os.path.exists(d + "/go"):
        time.sleep(0.02)
    parent_end.send(10)
    total = parent_end.recv()
    via = lc.recv()
    parent_end.send(None)
    p.join()
    open(d + "/result", "w").write("%d %s %d %d %d" % (total, via[0], via[1], via[2] == p.pid, p.exitcode))
' "$1"
SH
	prog_start "$CASE_TMP/pipe.sh" || return 1
	prog_roundtrip || return 1
	prog_result "16 via listener 16 1 0"
}

python_pool() {
	cat > "$CASE_TMP/pool.sh" <<'SH'
exec python3 -c '
import multiprocessing as mp, os, sys, time
d = sys.argv[1]
def sq(x):
    return x * x
if __name__ == "__main__":
    mp.set_start_method("fork")
    pool = mp.Pool(2)
    before = sum(pool.map(sq, range(10)))
    open(d + "/ready", "w").close()
    while not os.path.exists(d + "/go"):
        time.sleep(0.02)
    after = sum(pool.map(sq, range(10, 20)))
    open(d + "/result", "w").write("%d %d" % (before, after))
' "$1"
SH
	prog_start "$CASE_TMP/pool.sh" || return 1
	prog_roundtrip || return 1
	prog_result "285 2185"
}

# Debian's python3 (/usr/bin: the tests' PATH may lead to another one):
# socket.send_fds on a SOCK_STREAM socketpair from the parent to
# its forked child, unread at dump: "first" with a file open at offset 3,
# and the read end of a pipe holding "piped", "second" with an end of a
# socketpair whose other end the parent serves, then "tail".  After
# restore the child's recv_fds gets each with its fds, reads the file on
# from its offset, talks to the parent through the socket, and reads the
# pipe to its end: the parent wrote "+more" on it meanwhile and closed it.
python_send_fds() {
	cat > "$CASE_TMP/sendfds.sh" <<'SH'
exec /usr/bin/python3 -c '
import os, socket, sys, time
d = sys.argv[1]
q, q_child = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
f = open(d + "/data.txt", "w+b")
f.write(b"0123456789")
f.flush()
f.seek(3)
r, w = os.pipe()
os.write(w, b"piped")
pid = os.fork()
if pid == 0:
    q.close(); a.close(); b.close(); f.close(); os.close(r); os.close(w)
    while not os.path.exists(d + "/go"):
        time.sleep(0.02)
    m1, fds1, _, _ = socket.recv_fds(q_child, 1024, 4)
    m2, fds2, _, _ = socket.recv_fds(q_child, 1024, 4)
    tail = q_child.recv(1024)
    text = os.read(fds1[0], 100).decode() if len(fds1) == 2 else "no-file"
    s = socket.socket(fileno=fds2[0]) if len(fds2) == 1 else None
    reply = "no-socket"
    if s is not None:
        s.sendall(b"ping")
        reply = s.recv(100).decode()
    piped = b""
    while len(fds1) == 2 and (chunk := os.read(fds1[1], 100)):
        piped += chunk
    piped = piped.decode()
    open(d + "/result.tmp", "w").write("%s %s %s %s %s %s" % (m1.decode(), m2.decode(), tail.decode(), text, piped, reply))
    os.rename(d + "/result.tmp", d + "/result")
    os._exit(0)
q_child.close()
socket.send_fds(q, [b"first"], [f.fileno(), r])
socket.send_fds(q, [b"second"], [b.fileno()])
q.sendall(b"tail")
f.close(); b.close(); os.close(r)
token = "pong-%d" % os.getpid()
open(d + "/ready", "w").close()
if a.recv(100) == b"ping":
    a.sendall(token.encode())
    os.write(w, b"+more")
os.close(w)
os.waitpid(pid, 0)
' "$1"
SH
	prog_start "$CASE_TMP/sendfds.sh" || return 1
	prog_roundtrip || return 1
	prog_result "first second tail 3456789 piped+more pong-$PROG_PID"
}

# Debian's python3: multiprocessing.reduction send_handle (one byte with
# the fd on the stream socketpair of a multiprocessing Pipe): a worker's child
# sends it a file at offset 5 and a pipe's read end holding "handle", then
# a pickled message, and exits (the sending end is closed).  After restore
# the worker's recv_handle gets both, then the message, and reads the file
# on from its offset and the pipe to its end.
python_send_handle() {
	cat > "$CASE_TMP/handle.sh" <<'SH'
exec /usr/bin/python3 -c '
import multiprocessing as mp, multiprocessing.reduction as red, os, sys, time
d = sys.argv[1]
def worker():
    a, b = mp.Pipe()
    f = os.open(d + "/data.txt", os.O_RDWR | os.O_CREAT, 0o600)
    r, w = os.pipe()
    os.write(f, b"0123456789"); os.lseek(f, 5, os.SEEK_SET); os.write(w, b"handle"); os.close(w)
    sender = os.fork()
    if sender == 0:
        for h in (f, r):
            red.send_handle(a, h, os.getppid())
        a.send("bye-%d" % os.getppid())
        os._exit(0)
    a.close(); os.close(f); os.close(r)
    os.waitpid(sender, 0)
    open(d + "/ready", "w").close()
    while not os.path.exists(d + "/go"):
        time.sleep(0.02)
    h1 = red.recv_handle(b)
    h2 = red.recv_handle(b)
    last = b.recv()
    text = os.read(h1, 100).decode()
    piped = os.read(h2, 100).decode()
    end = len(os.read(h2, 100))
    open(d + "/result.tmp", "w").write("%s %s %d %s" % (text, piped, end, last == "bye-%d" % os.getpid()))
    os.rename(d + "/result.tmp", d + "/result")
pid = os.fork()
if pid == 0:
    worker()
    os._exit(0)
os.waitpid(pid, 0)
' "$1"
SH
	prog_start "$CASE_TMP/handle.sh" || return 1
	prog_roundtrip || return 1
	prog_result "56789 handle 0 True"
}

run_case control_tree case_control w_unix_x tree
run_case control_embryo case_control w_unix_x embryo
run_case control_embryo_data case_control w_unix_x embryo data
run_case control_creds case_control w_unix_x creds
run_case control_rights_sk case_control w_unix_x rights-sk
run_case tree tree_roundtrip tree
run_case tree_twice case_twice w_unix_x tree
run_case tree_leave_running case_leave_running w_unix_x tree
run_case embryo tree_roundtrip embryo
run_case embryo_leave_running case_leave_running w_unix_x embryo
run_case refused_embryo_data refused_x "not accepted yet and holds data it sent" embryo data
run_case creds case_roundtrip w_unix_x creds
run_case creds_new_pidns creds_new_pidns
run_case tree_new_pidns tree_new_pidns
run_case rights_sk tree_roundtrip rights-sk
run_case rights_sk_leave_running case_leave_running w_unix_x rights-sk
run_case control_rights_stream case_control w_unix_x rights-stream
run_case rights_stream tree_roundtrip rights-stream
run_case rights_stream_leave_running case_leave_running w_unix_x rights-stream
run_case control_rights_stream_cred case_control w_unix_x rights-stream cred
run_case rights_stream_cred tree_roundtrip rights-stream cred
run_case rights_stream_twice case_twice w_unix_x rights-stream
run_case rights_stream_cred_twice case_twice w_unix_x rights-stream cred
run_case control_rights_closed case_control w_unix_x rights-closed
run_case rights_closed tree_roundtrip rights-closed
run_case rights_closed_twice case_twice w_unix_x rights-closed
run_case control_rights_pipe case_control w_unix_x rights-pipe
run_case rights_pipe tree_roundtrip rights-pipe
run_case rights_pipe_twice case_twice w_unix_x rights-pipe
run_case refused_rights refused_x "which holds neither this socket nor its peer" rights
run_case refused_lost_peer refused_x "open in no process" lost-peer
run_case ext_peer ext_peer
run_case ext_unnamed ext_unnamed
run_case ext_dgram ext_dgram
run_case ext_replaced ext_replaced
run_case ext_replaced_fails ext_replaced_fails
run_case node_fork node_fork
run_case redis_client redis_client
run_case socat socat_pair
run_case socat_unlinked socat_pair rm
run_case socat_moved socat_pair mv
run_case socat_dir_moved socat_pair mvdir
run_case python_pipe python_pipe
run_case dbus dbus_bus
run_case haproxy_renamed haproxy_renamed
run_case python_pool python_pool
run_case python_send_fds python_send_fds
run_case python_send_handle python_send_handle
finish_tests
