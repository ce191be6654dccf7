#!/usr/bin/env bash
# t_inet: inet and netlink sockets (issue 15; w_inet.c says what each mode
# holds and checks).  Everything runs in the host's network namespace on
# 127.0.0.1 and ::1, on ports the kernel picks free at run time.
#
#   control_*     the workload passes without any dump (its checks hold).
#   listen4 / listen6 / dual  a TCP listener with its options, O_NONBLOCK,
#                 SO_BINDTODEVICE: dumped, restored, the backlog seen from
#                 outside (ss), a new client served the token drawn before
#                 the dump (dual: over IPv4 and IPv6).
#   listen4_leave_running  the same with --leave-running: it serves on.
#   prefork       a listener shared by three forked workers: all three
#                 serve clients after restore.
#   reuseport     two listeners on one port (SO_REUSEPORT) in one process:
#                 both come back on it, and a client is served.
#   port_in_use   the listener's port taken on the host before restore: the
#                 restore fails naming the socket and the port, leaves no
#                 process, and works once the port is free.
#   udp           a bound UDP socket and one connected to it: they talk
#                 after restore, and the bound one echoes a datagram from
#                 outside.  udp_queued / udp6_queued: three datagrams queued
#                 at dump come back, in order, from their sender's address;
#                 udp_queued_mixed: two more from a sender since gone,
#                 queued before the socket connected to another one;
#                 udp_queued_info: the socket asks for IP_PKTINFO, so they
#                 are dropped, and the dump says so.
#   netlink       a NETLINK_ROUTE socket with its port id, groups (one past
#                 32) and an option, an unbound NETLINK_GENERIC socket, a
#                 KOBJECT_UEVENT socket on a port id of its own choice: the
#                 route socket gets an RTM_NEWNSID after restore (a network
#                 namespace this test makes is given an id).
#   idle          sockets never bound (UDP, TCP over IPv6) and a TCP socket
#                 bound and not listening: the same after restore, and they
#                 connect.
#   show          cr show lists the listener: address, port, state, backlog.
#   refused_*     established TCP, a connection not accepted yet, a raw
#                 socket: the dump is refused naming pid, fd and the thing,
#                 and the tree runs on (and passes).
#   stream        --tcp-established: a connection of the workload to its
#                 own listener, data queued unread both ways and 1 MiB not
#                 yet taken by the peer: its traffic blocked by an nftables
#                 table while dumped, the table gone after restore, every
#                 byte arrives, both ends talk, the listener accepts more.
#   stream6       the same over ::1.
#   stream_leave_running  the same left running: the table is gone, the
#                 connection goes on.
#   stream_refused  the same with a raw socket besides: the dump is refused
#                 after the connection was put in repair mode; the tables
#                 are gone, the connection goes on (SO_REUSEADDR, which
#                 leaving repair mode clears, too).
#   opts_python   python3 on a dual-stack listener with options servers set
#                 less often (IPV6_MINHOPCOUNT, IPV6_DONTFRAG, no flow label,
#                 SO_INCOMING_CPU, TCP_TX_DELAY, IP_MINTTL): after restore
#                 it reads back every value it set and goes on counting its
#                 clients.  Before, they came back at their defaults.  It
#                 closes each connection first and has no SO_REUSEADDR, so
#                 TIME_WAIT entries hold its port after the dump: the
#                 restore ends them (it says so) and binds.  Before, the
#                 restore failed with "port ... is in use" for a minute.
#   urgent_python python3 (unmodified) holds a connection with an urgent
#                 byte (MSG_OOB) not read yet: --tcp-established is refused
#                 naming it, and python3 then reads the byte out of band
#                 and the data after it.
#   stream_cr_killed  cr dump --tcp-established SIGKILLed (its process
#                 group, the guardian being in a session of its own) as soon
#                 as the connection's nftables table exists: within 10 s the
#                 table is gone and the workload runs on; three times; then
#                 every byte arrives and both ends talk.
#   stream_no_lock  --network-lock skip (the caller keeps the peers' packets
#                 away), left running: no table is made, the connection
#                 goes on whole.
#   tcp_close     python3 with a connection to its own listener, dumped
#                 with --tcp-established, restored with --tcp-close: both
#                 ends are closed (a send fails), the listener accepts a new
#                 client, and python3 keeps the token it drew before; the
#                 tables are gone.
#   stream_ext    a client outside the tree keeps its connection to the
#                 restored server: its next line is answered with the
#                 server's line count and token.
#   refused_half_open  a client's connection held by TCP_DEFER_ACCEPT (being
#                 made, not queued): refused too.
#   pending_skip  --skip-in-flight: the connection not accepted yet is
#                 dropped with a warning, the listener comes back.
#
# Unmodified Debian programs:
#   redis         redis-server on 127.0.0.1 and a free port: keys SET before
#                 the dump are there for a new redis-cli after restore, and
#                 more can be set.
#   redis_nonstop a python3 client outside the tree sends INCR every 5 ms
#                 on one connection across a --tcp-established dump and the
#                 restore: each answer the next number, no reset; the longest
#                 wait between answers is printed.
#   redis_established  the same, dumped with --tcp-established while a
#                 python3 client outside the tree holds a connection: INCR
#                 on that same connection after restore continues the
#                 counter.
#   http_server   python3 -m http.server serves a file after restore.
#   socat_established  socat TCP-LISTEN with fork and EXEC:cat, a python3
#                 client outside the tree connected to the child socat made
#                 for it: dumped with --tcp-established (the listener, the
#                 child and its connection), the next line the client sends
#                 comes back on the same connection, and a new client is
#                 served too.
source "$(dirname "$0")/lib.sh"

inet_port() {
	cat "$WL_DIR/port"
}

# tcp_line HOST PORT: the first line a new connection reads.
tcp_line() {
	timeout 5 python3 -c '
import socket, sys
c = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=4)
print(c.makefile().readline().strip())' "$1" "$2" 2>&1
}

# udp_ask PORT TEXT: the answer of 127.0.0.1:PORT to a datagram of TEXT.
udp_ask() {
	timeout 5 python3 -c '
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(4)
s.sendto(sys.argv[2].encode(), ("127.0.0.1", int(sys.argv[1])))
print(s.recv(200).decode())' "$1" "$2" 2>&1
}

free_port() {
	python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# The backlog (Send-Q) ss shows for the TCP listener on PORT.
ss_backlog() {
	ss -Htln "sport = :$1" | awk '{print $3}' | head -n 1
}

listens() {
	[ -n "$(ss_backlog "$1")" ]
}

not_listens() {
	! listens "$1"
}

roundtrip() {
	cr_dump dump "$WL_PID" "$CASE_TMP/img" "$@" || return 1
	cr_restore_detached restore "$CASE_TMP/img"
}

# Triggers the workload and waits until it serves (or listens).
trigger_serving() {
	wl_trigger || return 1
	wait_until 5 test -e "$WL_DIR/serving" || { REASON="the workload does not serve: $(cat "$WL_DIR/result" 2>/dev/null)"; return 1; }
}

# serve_clients HOST...: triggered, the workload serves one client per
# HOST, each reading the token.
serve_clients() {
	local port host line
	port=$(inet_port)
	trigger_serving || return 1
	for host in "$@"; do
		line=$(tcp_line "$host" "$port")
		[ "$line" = "TOKEN $WL_TOKEN" ] || { REASON="client on $host:$port read '$line', not the token $WL_TOKEN"; return 1; }
	done
	wl_expect_pass || return 1
	wl_await_exit
}

# listen_case MODE dump|control|leave HOST...
listen_case() {
	local mode=$1 how=$2 port
	shift 2
	wl_start w_inet "$mode" || return 1
	port=$(inet_port)
	case $how in
	dump) roundtrip || return 1 ;;
	leave) cr_dump dump "$WL_PID" "$CASE_TMP/img" --leave-running || return 1 ;;
	esac
	[ "$(ss_backlog "$port")" = 17 ] || { REASON="ss shows backlog '$(ss_backlog "$port")' on port $port, not 17"; return 1; }
	serve_clients "$@"
}

prefork() {
	local workers port seen=() line i p w
	wl_start w_inet prefork || return 1
	workers=$(cat "$WL_DIR/workers")
	port=$(inet_port)
	roundtrip || return 1
	for w in $workers; do
		proc_alive "$w" || { REASON="worker $w was not restored"; return 1; }
	done
	for i in $(seq 1 60); do
		line=$(tcp_line 127.0.0.1 "$port")
		read -r _ p tok <<<"$line"
		[ "${tok:-}" = "$WL_TOKEN" ] || { REASON="a client read '$line'"; return 1; }
		[[ " ${seen[*]} " == *" $p "* ]] || seen+=("$p")
		[ ${#seen[@]} = 3 ] && break
	done
	for w in $workers; do
		[[ " ${seen[*]} " == *" $w "* ]] || { REASON="worker $w served no client (served by: ${seen[*]})"; return 1; }
	done
	wl_trigger || return 1
	wl_expect_pass || return 1
	wl_await_exit
}

reuseport() {
	wl_start w_inet reuseport || return 1
	roundtrip || return 1
	[ "$(ss -Htln "sport = :$(inet_port)" | wc -l)" = 2 ] || { REASON="ss shows not two listeners on port $(inet_port)"; return 1; }
	serve_clients 127.0.0.1
}

port_in_use() {
	local port img=$CASE_TMP/img
	wl_start w_inet listen4 || return 1
	port=$(inet_port)
	cr_dump dump "$WL_PID" "$img" || return 1
	( clean_exec python3 -c '
import socket, sys, time
s = socket.socket(); s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(1); time.sleep(60)' "$port" ) </dev/null >/dev/null 2>&1 &
	local squatter=$!
	track_pid "$squatter"
	wait_until 5 listens "$port" || { REASON="the squatter does not listen"; return 1; }
	if cr_run restore restore -D "$img" --detach; then
		REASON="the restore succeeded with port $port taken"
		return 1
	fi
	grep -q "127.0.0.1:$port" "$CR_ERR" && grep -q "port $port is in use" "$CR_ERR" ||
		{ REASON="the error does not name the socket and port $port: $(last_line "$CR_ERR")"; return 1; }
	wait_until 5 pid_gone "$WL_PID" || { REASON="pid $WL_PID left behind by the failed restore"; return 1; }
	kill "$squatter"
	wait_until 5 not_listens "$port" || { REASON="the squatter still listens"; return 1; }
	cr_restore_detached restore2 "$img" || return 1
	serve_clients 127.0.0.1
}

udp() {
	local port answer
	wl_start w_inet udp || return 1
	port=$(inet_port)
	roundtrip || return 1
	trigger_serving || return 1
	answer=$(udp_ask "$port" hello)
	[ "$answer" = "$WL_TOKEN hello" ] || { REASON="the echo is '$answer'"; return 1; }
	wl_expect_pass || return 1
	wl_await_exit
}

# udp_queued MODE dump|leave|control WANT: after restore (or a dump with
# --leave-running, or none) the workload finds WANT datagrams queued; 0
# wants the dump's warning of 3 dropped.
udp_queued() {
	wl_start w_inet "$1" || return 1
	if [ "$2" = leave ]; then
		cr_dump dump "$WL_PID" "$CASE_TMP/img" --leave-running || return 1
	elif [ "$2" = dump ]; then
		roundtrip || return 1
		if [ "$3" = 0 ]; then
			grep -q "3 datagram(s) queued for it are dropped" "$CASE_TMP/dump.err" ||
				{ REASON="the dump does not warn of 3 dropped datagrams: $(cat "$CASE_TMP/dump.err")"; return 1; }
		elif grep -q dropped "$CASE_TMP/dump.err"; then
			REASON="the dump warns: $(cat "$CASE_TMP/dump.err")"
			return 1
		fi
	fi
	wl_trigger || return 1
	wl_expect_pass || return 1
	[ "$(cat "$WL_DIR/queued")" = "$3" ] || { REASON="$(cat "$WL_DIR/queued") datagrams queued, not $3"; return 1; }
	wl_await_exit
}

# netlink_case dump|control: triggered, the workload waits for an
# RTM_NEWNSID, which a network namespace of this test's own, given an id,
# sends.
netlink_case() {
	local ns=cr-t-inet-$$ ok
	wl_start w_inet netlink || return 1
	if [ "$1" = dump ]; then
		roundtrip || return 1
	fi
	trigger_serving || return 1
	ip netns add "$ns" || { REASON="ip netns add failed"; return 1; }
	ip netns set "$ns" auto 2>/dev/null || ip netns set "$ns" $((1000 + $$ % 50000))
	wl_expect_pass
	ok=$?
	ip netns del "$ns"
	[ $ok = 0 ] || return 1
	wl_await_exit
}

show() {
	local port
	wl_start w_inet listen4 || return 1
	port=$(inet_port)
	cr_dump dump "$WL_PID" "$CASE_TMP/img" --leave-running || return 1
	cr_run show show -D "$CASE_TMP/img" || { REASON="cr show failed: $(last_line "$CR_ERR")"; return 1; }
	grep -F '"src_addr":"127.0.0.1","src_port":'"$port" "$CASE_TMP/show.out" | grep -F '"state":"INET_LISTEN"' |
		grep -qF '"backlog":17' || { REASON="cr show does not list the listener: $(grep -i inet "$CASE_TMP/show.out")"; return 1; }
	serve_clients 127.0.0.1
}

refused() {
	local mode=$1
	shift
	wl_start w_inet "$mode" || return 1
	expect_refused_then_pass "$WL_PID" "$@"
}

# pending_client PORT [half]: a client outside the dump connects to
# 127.0.0.1:PORT and holds the connection (PENDING_PID); half: the
# listener defers it (a connection being made, not queued).
pending_client() {
	( clean_exec python3 -c '
import socket, sys, time
c = socket.create_connection(("127.0.0.1", int(sys.argv[1]))); time.sleep(60)' "$1" ) </dev/null >/dev/null 2>&1 &
	PENDING_PID=$!
	track_pid "$PENDING_PID"
	if [ "${2:-}" = half ]; then
		wait_until 5 half_open_on "$1" || { REASON="no connection being made to port $1"; return 1; }
	else
		wait_until 5 queued_on "$1" || { REASON="the connection to port $1 is not queued"; return 1; }
	fi
}

# A connection being made (SYN-RECV) on local port PORT.
half_open_on() {
	ss -Htan state syn-recv "sport = :$1" | grep -q .
}

# The listener on PORT has a connection not accepted yet (Recv-Q).
queued_on() {
	[ "$(ss -Htln "sport = :$1" | awk '{print $2}' | head -n 1)" = 1 ]
}

refused_pending_outside() {
	wl_start w_inet listen4 || return 1
	pending_client "$(inet_port)" || return 1
	expect_refused "$WL_PID" "$CASE_TMP/img" "1 connection(s) to this listening socket not accepted yet" || return 1
	# Triggered, the workload accepts the waiting client, and passes.
	runs_on_after_refusal
}

# A client that connected and wrote nothing to a listener with
# TCP_DEFER_ACCEPT: its connection is still being made (SYN_RECV) and is
# refused too.  Triggered, the workload serves one more client.
refused_half_open() {
	local line
	wl_start w_inet deferred || return 1
	pending_client "$(inet_port)" half || return 1
	expect_refused "$WL_PID" "$CASE_TMP/img" "1 of them being made" || return 1
	running_free "$WL_PID" "$WL_EXE" || { REASON="after the refused dump: $(describe_pid "$WL_PID")"; return 1; }
	trigger_serving || return 1
	line=$(timeout 5 python3 -c '
import socket, sys
c = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=4)
c.sendall(b"hi\n")   # a deferred connection is accepted once its client writes
print(c.makefile().readline().strip())' "$(inet_port)" 2>&1)
	[ "$line" = "TOKEN $WL_TOKEN" ] || { REASON="the client read '$line'"; return 1; }
	wl_expect_pass || return 1
	wl_await_exit
}

pending_skip() {
	wl_start w_inet listen4 || return 1
	pending_client "$(inet_port)" || return 1
	cr_dump dump "$WL_PID" "$CASE_TMP/img" --skip-in-flight || return 1
	grep -q "1 connection(s) not accepted yet are dropped" "$CASE_TMP/dump.err" ||
		{ REASON="no warning of the dropped connection: $(cat "$CASE_TMP/dump.err")"; return 1; }
	cr_restore_detached restore "$CASE_TMP/img" || return 1
	serve_clients 127.0.0.1
}

# The nftables tables cr made for blocked connections.
cr_tables() {
	nft list tables 2>/dev/null | grep -o 'cr_tcp_[0-9]*' | sort
}

# stream [MODE]: stream (default) or stream6.
stream() {
	local before
	before=$(cr_tables)
	wl_start w_inet "${1:-stream}" || return 1
	[ "$(cat "$WL_DIR/unsent")" -gt 100000 ] || { REASON="only $(cat "$WL_DIR/unsent") bytes queued"; return 1; }
	cr_dump dump "$WL_PID" "$CASE_TMP/img" --tcp-established || return 1
	[ "$(comm -13 <(echo "$before") <(cr_tables) | wc -l)" = 2 ] ||
		{ REASON="not two nftables tables while dumped: $(cr_tables)"; return 1; }
	cr_restore_detached restore "$CASE_TMP/img" || return 1
	[ "$(cr_tables)" = "$before" ] || { REASON="tables left after restore: $(cr_tables)"; return 1; }
	wl_trigger || return 1
	wl_expect_pass 30 || return 1
	wl_await_exit
}

stream_cr_killed() {
	local before r dumper i
	KILLED_COMPLETE=0
	before=$(cr_tables)
	wl_start w_inet stream || return 1
	for r in 1 2 3; do
		setsid "$CR" dump "$WL_PID" -D "$CASE_TMP/img$r" --tcp-established </dev/null >/dev/null 2>&1 &
		dumper=$!
		# The guard record of a locked connection comes just before
		# its table (dump/guard.h): kill as soon as it is there.
		for i in $(seq 20000); do
			compgen -G "/run/cr/guard/dump-*/tcp-*" >/dev/null && break
			kill -0 "$dumper" 2>/dev/null || break
		done
		kill -KILL -- -"$dumper" 2>/dev/null
		wait "$dumper" 2>/dev/null
		if [ -e "$CASE_TMP/img$r/inventory.img" ]; then
			# The dump completed before the kill: its tables wait for
			# the restore, which removes them.
			KILLED_COMPLETE=$((KILLED_COMPLETE + 1))
			wait_until 10 pid_gone "$WL_PID" || { REASON="round $r: a complete dump left pid $WL_PID"; return 1; }
			cr_restore_detached "restore$r" "$CASE_TMP/img$r" || return 1
		else
			wait_until 10 running_free "$WL_PID" "$WL_EXE" ||
				{ REASON="round $r: after the kill: $(describe_pid "$WL_PID")"; return 1; }
		fi
		wait_until 10 test "$(cr_tables)" = "$before" ||
			{ REASON="round $r: tables left after cr was killed: $(cr_tables)"; return 1; }
	done
	echo "# $KILLED_COMPLETE of 3 dumps completed before the kill"
	[ "$KILLED_COMPLETE" -lt 3 ] || { REASON="every kill came after the dump completed: nothing was tested"; return 1; }
	wl_trigger || return 1
	wl_expect_pass 30 || return 1
	wl_await_exit
}

stream_no_lock() {
	local before
	before=$(cr_tables)
	wl_start w_inet stream || return 1
	cr_dump dump "$WL_PID" "$CASE_TMP/img" --tcp-established --network-lock skip --leave-running || return 1
	[ "$(cr_tables)" = "$before" ] || { REASON="tables made with --network-lock skip: $(cr_tables)"; return 1; }
	grep -q "cr_tcp_" "$CASE_TMP/img/dump.log" && { REASON="the dump log mentions a table"; return 1; }
	wl_trigger || return 1
	wl_expect_pass 30 || return 1
	wl_await_exit
}

tcp_close() {
	local before dir=$CASE_TMP/tc port
	before=$(cr_tables)
	mkdir -p "$dir"
	port=$(free_port)
	( clean_exec python3 -c '
import os, random, signal, socket, sys, time
d, port = sys.argv[1], int(sys.argv[2])
tok = "%d" % random.randrange(1 << 30)
l = socket.socket(); l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
l.bind(("127.0.0.1", port)); l.listen(4)
c = socket.create_connection(("127.0.0.1", port)); a, _ = l.accept()
c.sendall(b"x"); assert a.recv(1) == b"x"
def check(*_):
    bad = []
    for name, s in (("client", c), ("accepted", a)):
        try:
            s.sendall(b"y")
            bad.append(name + " still sends")
        except OSError:
            pass
    n = socket.create_connection(("127.0.0.1", port)); m, _ = l.accept()
    n.sendall(b"z")
    if m.recv(1) != b"z":
        bad.append("new connection")
    open(d + "/result", "w").write("PASS " + tok if not bad else "FAIL " + ", ".join(bad))
signal.signal(signal.SIGUSR2, check)
open(d + "/token", "w").write(tok)
while True:
    time.sleep(1)' "$dir" "$port" ) </dev/null >"$dir/out" 2>&1 &
	WL_PID=$!
	track_pid "$WL_PID"
	wait_until 10 test -s "$dir/token" || { REASON="python3 did not start: $(cat "$dir/out")"; return 1; }
	cr_dump dump "$WL_PID" "$CASE_TMP/img" --tcp-established || return 1
	cr_run restore restore -D "$CASE_TMP/img" --detach --tcp-close ||
		{ REASON="cr restore --tcp-close failed: $(last_line "$CR_ERR")"; return 1; }
	[ "$(cr_tables)" = "$before" ] || { REASON="tables left after restore: $(cr_tables)"; return 1; }
	kill -USR2 "$WL_PID"
	wait_until 10 test -s "$dir/result" || { REASON="no result from python3: $(cat "$dir/out")"; return 1; }
	[ "$(cat "$dir/result")" = "PASS $(cat "$dir/token")" ] || { REASON="python3: $(cat "$dir/result")"; return 1; }
	kill "$WL_PID"
}

stream_leave_running() {
	local before
	before=$(cr_tables)
	wl_start w_inet stream || return 1
	cr_dump dump "$WL_PID" "$CASE_TMP/img" --tcp-established --leave-running || return 1
	[ "$(cr_tables)" = "$before" ] || { REASON="tables left after the dump: $(cr_tables)"; return 1; }
	wl_trigger || return 1
	wl_expect_pass 30 || return 1
	wl_await_exit
}

stream_refused() {
	local before
	before=$(cr_tables)
	wl_start w_inet stream_raw || return 1
	cr_run dump dump "$WL_PID" -D "$CASE_TMP/img" --tcp-established
	check_refused "$WL_PID" "$CASE_TMP/img" "unsupported kind: socket (RAW)" || return 1
	[ "$(cr_tables)" = "$before" ] || { REASON="tables left after the refused dump: $(cr_tables)"; return 1; }
	runs_on_after_refusal
}

stream_ext() {
	local port client got
	port=$(free_port)
	( clean_exec python3 -c '
import socket, sys, time, os
d, port = sys.argv[1], int(sys.argv[2])
for i in range(200):
    try:
        c = socket.create_connection(("127.0.0.1", port)); break
    except OSError:
        time.sleep(0.05)
f = c.makefile()
c.sendall(b"one\n"); open(d + "/first", "w").write(f.readline())
while not os.path.exists(d + "/go"):
    time.sleep(0.02)
c.sendall(b"two\n"); open(d + "/second", "w").write(f.readline())' "$CASE_TMP" "$port" ) </dev/null >"$CASE_TMP/client.out" 2>&1 &
	client=$!
	track_pid "$client"
	CASE_LOGS+=("$CASE_TMP/client.out")
	wl_start w_inet stream_ext "$port" || return 1
	[ "$(cat "$CASE_TMP/first")" = "n=1 $WL_TOKEN" ] || { REASON="the client's first answer: $(cat "$CASE_TMP/first")"; return 1; }
	roundtrip --tcp-established || return 1
	wl_trigger || return 1
	touch "$CASE_TMP/go"
	wait_until 10 test -s "$CASE_TMP/second" || { REASON="the client got no second answer"; return 1; }
	got=$(cat "$CASE_TMP/second")
	[ "$got" = "n=2 $WL_TOKEN" ] || { REASON="the client's second answer: '$got'"; return 1; }
	wl_expect_pass || return 1
	wl_await_exit
}

# ---- real programs -----------------------------------------------------------

# redis_nonstop: a python3 client outside the tree sends INCR to
# redis-server every 5 ms on one connection, before, during and after a dump
# with --tcp-established and the restore: every answer is the next number
# (nothing lost, nothing done twice), no reset; the longest wait between two
# answers is printed.
redis_nonstop() {
	redis_start || return 1
	redis_nonstop_start "$CASE_TMP" 127.0.0.1 "$REDIS_PORT" || return 1
	cr_dump dump "$WL_PID" "$CASE_TMP/img" --tcp-established || return 1
	cr_restore_detached restore "$CASE_TMP/img" || return 1
	redis_nonstop_done "$CASE_TMP" || return 1
	echo "# redis INCR every 5 ms across dump and restore: $NONSTOP_N answers in order, longest wait ${NONSTOP_GAP} ms"
	[ "$(redis-cli -p "$REDIS_PORT" get nonstop)" = "$NONSTOP_N" ] ||
		{ REASON="redis holds $(redis-cli -p "$REDIS_PORT" get nonstop), not $NONSTOP_N"; return 1; }
}

# redis_start: redis-server on a free port (REDIS_PORT), answering.
redis_start() {
	command -v redis-server >/dev/null || { REASON="redis-server is not installed (make deps)"; return 1; }
	REDIS_PORT=$(free_port)
	real_start "$CASE_TMP/redis.out" "$CASE_TMP" redis-server redis-server --port "$REDIS_PORT" --bind 127.0.0.1 \
		--save '' --appendonly no --daemonize no --dir "$CASE_TMP" || return 1
	wait_until 10 sh -c "redis-cli -p $REDIS_PORT ping 2>/dev/null | grep -q PONG" || { REASON="redis does not answer"; return 1; }
}

redis_established() {
	local got
	redis_start || return 1
	( clean_exec python3 -c '
import os, socket, sys, time
d, port = sys.argv[1], int(sys.argv[2])
s = socket.create_connection(("127.0.0.1", port))
def cmd(*a):
    s.sendall(("*%d\r\n" % len(a) + "".join("$%d\r\n%s\r\n" % (len(x), x) for x in a)).encode())
    return s.recv(4096).decode().split()[-1]
for i in range(5):
    cmd("INCR", "counter")
open(d + "/ready", "w").close()
while not os.path.exists(d + "/go"):
    time.sleep(0.02)
open(d + "/result", "w").write(cmd("INCR", "counter"))' "$CASE_TMP" "$REDIS_PORT" ) </dev/null >"$CASE_TMP/client.out" 2>&1 &
	track_pid $!
	CASE_LOGS+=("$CASE_TMP/client.out")
	wait_until 10 test -e "$CASE_TMP/ready" || { REASON="the client is not ready"; return 1; }
	roundtrip_real --tcp-established || return 1
	touch "$CASE_TMP/go"
	wait_until 10 test -s "$CASE_TMP/result" || { REASON="no answer on the kept connection"; return 1; }
	got=$(cat "$CASE_TMP/result")
	[ "$got" = :6 ] || { REASON="INCR on the kept connection answered '$got', not :6"; return 1; }
}

redis() {
	local port pids p
	redis_start || return 1
	port=$REDIS_PORT
	redis-cli -p "$port" set before "tok-$WL_PID" >/dev/null && redis-cli -p "$port" incrby counter 41 >/dev/null ||
		{ REASON="redis-cli set failed"; return 1; }
	pids="$WL_PID $(descendants "$WL_PID")"
	cr_dump dump "$WL_PID" "$CASE_TMP/img" || return 1
	cr_run restore restore -D "$CASE_TMP/img" --detach || { REASON="cr restore failed: $(last_line "$CR_ERR")"; return 1; }
	for p in $pids; do
		wait_until 5 proc_alive "$p" || { REASON="pid $p was not restored"; return 1; }
	done
	[ "$(redis-cli -p "$port" get before)" = "tok-$WL_PID" ] || { REASON="GET before: '$(redis-cli -p "$port" get before 2>&1)'"; return 1; }
	[ "$(redis-cli -p "$port" incr counter)" = 42 ] || { REASON="INCR counter is not 42"; return 1; }
	redis-cli -p "$port" set after yes >/dev/null && [ "$(redis-cli -p "$port" get after)" = yes ] ||
		{ REASON="SET after restore failed"; return 1; }
	[ "$(redis-cli -p "$port" dbsize)" = 3 ] || { REASON="dbsize $(redis-cli -p "$port" dbsize)"; return 1; }
}

http_server() {
	local port got
	port=$(free_port)
	mkdir -p "$CASE_TMP/www"
	echo "page-$$" > "$CASE_TMP/www/index.txt"
	real_start "$CASE_TMP/http.out" "$CASE_TMP/www" /usr/bin/python3 /usr/bin/python3 -m http.server "$port" --bind 127.0.0.1 || return 1
	wait_until 10 sh -c "python3 -c 'import urllib.request; urllib.request.urlopen(\"http://127.0.0.1:$port/index.txt\")' 2>/dev/null" ||
		{ REASON="http.server does not answer"; return 1; }
	roundtrip_real || return 1
	got=$(timeout 5 python3 -c "import urllib.request; print(urllib.request.urlopen('http://127.0.0.1:$port/index.txt').read().decode().strip())" 2>&1)
	[ "$got" = "page-$$" ] || { REASON="after restore the server answered '$got'"; return 1; }
	grep -q 'GET /index.txt' "$CASE_TMP/http.out.err" || { REASON="the restored server logged no request"; return 1; }
}

socat_established() {
	local port got
	command -v socat >/dev/null || { REASON="socat is not installed (make deps)"; return 1; }
	port=$(free_port)
	real_start "$CASE_TMP/socat.out" "$CASE_TMP" socat socat TCP4-LISTEN:"$port",bind=127.0.0.1,reuseaddr,fork \
		EXEC:cat || return 1
	wait_until 5 listens "$port" || { REASON="socat does not listen"; return 1; }
	( clean_exec python3 -c '
import os, socket, sys, time
d, port = sys.argv[1], int(sys.argv[2])
c = socket.create_connection(("127.0.0.1", port))
f = c.makefile()
c.sendall(b"before\n"); f.readline()
open(d + "/ready", "w").close()
while not os.path.exists(d + "/go"):
    time.sleep(0.02)
c.sendall(b"after\n"); open(d + "/result", "w").write(f.readline())' "$CASE_TMP" "$port" ) </dev/null >"$CASE_TMP/client.out" 2>&1 &
	track_pid $!
	CASE_LOGS+=("$CASE_TMP/client.out")
	wait_until 10 test -e "$CASE_TMP/ready" || { REASON="the client is not ready"; return 1; }
	[ -n "$(descendants "$WL_PID")" ] || { REASON="socat forked no child for the client"; return 1; }
	roundtrip_real --tcp-established || return 1
	touch "$CASE_TMP/go"
	wait_until 10 test -s "$CASE_TMP/result" || { REASON="no echo on the kept connection"; return 1; }
	got=$(cat "$CASE_TMP/result")
	[ "$got" = after ] || { REASON="the kept connection echoed '$got'"; return 1; }
	got=$(timeout 5 python3 -c '
import socket, sys
c = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=4)
c.sendall(b"new\n"); print(c.makefile().readline().strip())' "$port" 2>&1)
	[ "$got" = new ] || { REASON="a new client got '$got'"; return 1; }
}

# python3 serving on a dual-stack listener with options servers set less
# often (minimum TTL and hop count, incoming CPU, TCP_TX_DELAY, no IPv6
# fragmentation, no flow label), closing each connection itself without
# SO_REUSEADDR (TIME_WAIT entries hold the port after the dump): after
# restore it still reports each value it set, and answers a new client with
# the count of clients before.
# opts_client ADDRESS PORT: the server's line; the client closes only after
# the server has (the server's end then waits in TIME_WAIT).
opts_client() {
	python3 -c '
import socket, sys
c = socket.create_connection((sys.argv[1], int(sys.argv[2])))
f = c.makefile("rb")
line = f.readline()
while f.read(1):
    pass
print(line.decode().strip())' "$1" "$2"
}

opts_python() {
	local port out
	port=$(free_port)
	real_start "$CASE_TMP/srv.out" "$CASE_TMP" /usr/bin/python3 /usr/bin/python3 -c '
import os, socket, sys, time
d, port = sys.argv[1], int(sys.argv[2])
S = socket
want = [(S.IPPROTO_IPV6, 73, 3, "IPV6_MINHOPCOUNT"), (S.IPPROTO_IPV6, S.IPV6_DONTFRAG, 1, "IPV6_DONTFRAG"),
        (S.IPPROTO_IPV6, 70, 0, "IPV6_AUTOFLOWLABEL"), (S.SOL_SOCKET, 49, 1, "SO_INCOMING_CPU"),
        (S.IPPROTO_TCP, 37, 500, "TCP_TX_DELAY"), (S.IPPROTO_IP, 21, 4, "IP_MINTTL")]
l = S.socket(S.AF_INET6)
l.setsockopt(S.IPPROTO_IPV6, S.IPV6_V6ONLY, 0)
for lv, o, v, _ in want:
    l.setsockopt(lv, o, v)
l.bind(("::", port))
l.listen(8)
served = 0
while True:
    c, _ = l.accept()
    bad = [n for lv, o, v, n in want if l.getsockopt(lv, o) != v]
    c.sendall(("%d %s\n" % (served, ",".join(bad) or "same")).encode())
    c.close()
    served += 1' "$CASE_TMP" "$port" || return 1
	wait_until 5 listens "$port" || { REASON="python3 does not listen: $(cat "$CASE_TMP/srv.out.err")"; return 1; }
	for _ in 1 2; do
		out=$(opts_client 127.0.0.1 "$port")
	done
	[ "$out" = "1 same" ] || { REASON="before the dump python3 answers '$out'"; return 1; }
	[ -n "$(ss -tanH state time-wait "( sport = :$port )")" ] ||
		{ REASON="no connection of port $port in TIME_WAIT before the dump"; return 1; }
	cr_dump dump "$WL_PID" "$CASE_TMP/img" || return 1
	cr_restore_detached restore "$CASE_TMP/img" || return 1
	out=$(opts_client ::1 "$port")
	[ "$out" = "2 same" ] || { REASON="after restore python3 answers '$out' (want '2 same')"; return 1; }
	grep -q "held by [0-9]* connection(s) in TIME_WAIT" "$CASE_TMP/img/restore.log" ||
		{ REASON="the restore does not say it ended the TIME_WAIT connections"; return 1; }
}

# python3 holds a connection whose urgent byte (MSG_OOB) it has not read:
# the dump with --tcp-established is refused naming it, and python3 then
# reads the byte out of band and the data after it, as if never dumped.
urgent_python() {
	local port got
	port=$(free_port)
	real_start "$CASE_TMP/srv.out" "$CASE_TMP" /usr/bin/python3 /usr/bin/python3 -c '
import os, socket, sys, time
d, port = sys.argv[1], int(sys.argv[2])
l = socket.socket()
l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
l.bind(("127.0.0.1", port))
l.listen(1)
c, _ = l.accept()
assert c.recv(6) == b"before"
open(d + "/ready", "w").close()
while not os.path.exists(d + "/go"):
    time.sleep(0.02)
oob = c.recv(1, socket.MSG_OOB)
open(d + "/result", "w").write((oob + c.recv(16)).decode())' "$CASE_TMP" "$port" || return 1
	wait_until 5 listens "$port" || { REASON="python3 does not listen"; return 1; }
	( clean_exec python3 -c '
import os, socket, sys, time
d, port = sys.argv[1], int(sys.argv[2])
c = socket.create_connection(("127.0.0.1", port))
c.sendall(b"before")
while not os.path.exists(d + "/ready"):
    time.sleep(0.02)
c.send(b"U", socket.MSG_OOB)
c.sendall(b"tail")
open(d + "/sent", "w").close()
time.sleep(60)' "$CASE_TMP" "$port" ) </dev/null >"$CASE_TMP/client.out" 2>&1 &
	track_pid $!
	CASE_LOGS+=("$CASE_TMP/client.out")
	wait_until 10 test -e "$CASE_TMP/sent" || { REASON="the client did not send: $(cat "$CASE_TMP/client.out")"; return 1; }
	wait_until 5 sh -c "ss -tnH state established '( sport = :$port )' | awk '\$1 >= 4 { f = 1 } END { exit !f }'" ||
		{ REASON="the bytes did not arrive: $(ss -tn state established "( sport = :$port )")"; return 1; }
	cr_run dump dump "$WL_PID" -D "$CASE_TMP/img" --tcp-established
	check_refused "$WL_PID" "$CASE_TMP/img" "urgent data" || return 1
	running_free "$WL_PID" "$WL_EXE" || { REASON="after the refused dump: $(describe_pid "$WL_PID")"; return 1; }
	touch "$CASE_TMP/go"
	wait_until 10 test -s "$CASE_TMP/result" || { REASON="python3 read nothing: $(cat "$CASE_TMP/srv.out.err")"; return 1; }
	got=$(cat "$CASE_TMP/result")
	[ "$got" = Utail ] || { REASON="python3 read '$got', not the urgent U and then tail"; return 1; }
}

roundtrip_real() {
	cr_dump dump "$WL_PID" "$CASE_TMP/img" "$@" || return 1
	cr_run restore restore -D "$CASE_TMP/img" --detach || { REASON="cr restore failed: $(last_line "$CR_ERR")"; return 1; }
	wait_until 10 running_free "$WL_PID" "$WL_EXE" || { REASON="restored: $(describe_pid "$WL_PID")"; return 1; }
}

run_case control_listen4 listen_case listen4 control 127.0.0.1
run_case control_dual listen_case dual control 127.0.0.1 ::1
run_case listen4 listen_case listen4 dump 127.0.0.1
run_case listen6 listen_case listen6 dump ::1
run_case dual listen_case dual dump 127.0.0.1 ::1
run_case listen4_leave_running listen_case listen4 leave 127.0.0.1
run_case prefork prefork
run_case reuseport reuseport
run_case port_in_use port_in_use
run_case udp udp
run_case control_udp_queued udp_queued udp_queued control 3
run_case udp_queued udp_queued udp_queued dump 3
run_case udp_queued_leave_running udp_queued udp_queued leave 3
run_case udp6_queued udp_queued udp6_queued dump 3
run_case control_udp_queued_mixed udp_queued udp_queued_mixed control 3
run_case udp_queued_mixed udp_queued udp_queued_mixed dump 3
run_case udp_queued_info udp_queued udp_queued_info dump 0
run_case control_netlink netlink_case control
run_case netlink netlink_case dump
run_case control_idle case_control w_inet idle
run_case idle case_roundtrip w_inet idle
run_case show show
run_case refused_established refused established "a TCP connection to 127.0.0.1" "state ESTABLISHED"
run_case refused_pending refused pending "not accepted yet" "--skip-in-flight"
run_case refused_raw refused raw "unsupported kind: socket (RAW)"
run_case refused_pending_outside refused_pending_outside
run_case refused_half_open refused_half_open
run_case pending_skip pending_skip
run_case control_stream case_control w_inet stream
run_case stream stream
run_case stream6 stream stream6
run_case stream_cr_killed stream_cr_killed
run_case stream_no_lock stream_no_lock
run_case tcp_close tcp_close
run_case stream_leave_running stream_leave_running
run_case stream_refused stream_refused
run_case stream_ext stream_ext
run_case redis redis
run_case redis_nonstop redis_nonstop
run_case redis_established redis_established
run_case http_server http_server
run_case socat_established socat_established
run_case urgent_python urgent_python
run_case opts_python opts_python
finish_tests
