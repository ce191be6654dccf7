#!/usr/bin/env bash
# t_mcast: multicast groups of inet sockets come back (issue 15): the groups
# a socket joined, on their devices (by name), with their source filters,
# and its multicast options.  w_mcast.c says what each mode holds and checks.
#
# Every case but hostdev_* runs in a network namespace of its own (NET_SETUP:
# lo with multicast and a route for 224.0.0.0/4, a veth pair mca/mcb with
# IPv6 addresses, 10.9.0.5 on mca), dumped and made again by cr with the
# tree.
#
#   control_groups  the workload passes without any dump (its checks hold:
#                 each socket gets the datagrams its groups and filters let
#                 through, and none of the others).
#   groups        the same after dump and restore: IPv4 groups joined by
#                 address, by index, with a source (INCLUDE) and a blocked
#                 source (EXCLUDE); IPv6 groups likewise on mcb; an IPv4 group
#                 on an IPv6 socket; IP_MULTICAST_IF, IPV6_MULTICAST_IF,
#                 TTL, hops, loop and *_MULTICAST_ALL.
#   groups_leave_running  cr dump --leave-running: the probes changed
#                 nothing, the workload passes.
#   groups_twice  two dump/restore hops.
#   show          cr show lists the groups with their devices and sources.
#   hostdev_gone  a workload in the harness's namespace with groups on a
#                 veth of the test's: the veth deleted after the dump, the
#                 restore fails naming the device and leaves no process;
#                 made again (another index), the restore joins the groups
#                 on it, with their filters.
#   refused_if6_gone  IPV6_MULTICAST_IF on a device deleted since: the dump
#                 is refused naming pid and the option, the tree runs on.
#   refused_if4_gone  IP_MULTICAST_IF by an address deleted since (the
#                 restore sets it by address): refused the same way.
#   refused_other_netns  a socket of another network namespace than its
#                 process's (made before an unshare): its groups are not in
#                 the process's /proc/PID/net, and a restore would make it in
#                 the process's namespace: refused by name, the tree runs on.
#
# Unmodified Debian programs:
#   socat4        socat -u UDP4-RECV with ip-add-membership on a veth of the
#                 test's (by name) writing to a file: after restore a
#                 datagram to the group lands in the file after the one sent
#                 before the dump.
#   socat6        socat -u UDP6-RECV with ipv6-join-group: the same.
#                 (Debian 12's socat has no source membership option:
#                 w_mcast covers those.)
source "$(dirname "$0")/lib.sh"

NET_SETUP='ip link set lo up
ip link set lo multicast on
ip route add 224.0.0.0/4 dev lo
ip link add mca type veth peer name mcb
ip link set mca up
ip link set mcb up
ip -6 addr add fd09::1/64 dev mca nodad
ip -6 addr add fd09::3/64 dev mca nodad
ip -6 addr add fd09::2/64 dev mcb nodad
ip addr add 10.9.0.5/32 dev mca
ip -6 route add ff0e::/16 dev mca
ip -6 route add ff3e::/16 dev mca'

HOSTDEV=crmc$$

# mc_start MODE [ARGS...]: w_mcast in a network namespace of its own, set
# up by NET_SETUP (as wl_start does otherwise).
mc_start() {
	local launched
	WL_NAME=w_mcast
	WL_EXE=$WL/w_mcast
	WL_DIR=$(mktemp -d "$CASE_TMP/w_mcast.XXXX")
	printf '%s\n' "$NET_SETUP" > "$WL_DIR/setup.sh"
	CASE_LOGS+=("$WL_DIR/log" "$WL_DIR/setup.out")
	setsid unshare --net sh -c 'sh -e "$1/setup.sh" >"$1/setup.out" 2>&1 && exec "$0" "$@"' \
		"$WL_EXE" "$WL_DIR" "$@" </dev/null >/dev/null 2>&1 &
	launched=$!
	disown "$launched"
	track_pid "$launched"
	wl_await_ready "$launched"
}

mc_roundtrip() {
	cr_dump dump "$WL_PID" "$CASE_TMP/img" "$@" || return 1
	cr_restore_detached restore "$CASE_TMP/img"
}

# mc_case dump|control|leave|twice
mc_case() {
	mc_start groups || return 1
	case $1 in
	dump) mc_roundtrip || return 1 ;;
	leave) cr_dump dump "$WL_PID" "$CASE_TMP/img" --leave-running || return 1 ;;
	twice)
		mc_roundtrip || return 1
		cr_dump dump2 "$WL_PID" "$CASE_TMP/img2" || return 1
		cr_restore_detached restore2 "$CASE_TMP/img2" || return 1 ;;
	esac
	wl_trigger || return 1
	wl_expect_pass 20 || return 1
	wl_await_exit
}

show() {
	local out=$CASE_TMP/show.out want
	mc_start groups || return 1
	cr_dump dump "$WL_PID" "$CASE_TMP/img" --leave-running || return 1
	cr_run show show -D "$CASE_TMP/img" || { REASON="cr show failed: $(last_line "$CR_ERR")"; return 1; }
	tr -d ' \n' < "$out" > "$out.flat"
	for want in '"group":"232.1.1.1","ifname":"lo","exclude":false,"sources":["127.0.0.1"]' \
		'"group":"ff0e::1:4","ifname":"mcb","exclude":true,"sources":["fd09::3"]' \
		'"group":"239.1.2.5","ifname":"lo","exclude":true,"sources":[]' '"mcast_if6":"mca"' \
		'"mcast_if_addr":"127.0.0.1"'; do
		grep -qF "$want" "$out.flat" || { REASON="cr show does not say $want"; return 1; }
	done
	wl_trigger || return 1
	wl_expect_pass 20 || return 1
	wl_await_exit
}

hostdev_up() {
	ip link add "${HOSTDEV}a" type veth peer name "${HOSTDEV}b" &&
		ip link set "${HOSTDEV}b" up && ip link set "${HOSTDEV}a" up
}

hostdev_down() {
	ip link del "${HOSTDEV}a" 2>/dev/null
}

hostdev_gone() {
	local img=$CASE_TMP/img before
	hostdev_up || { REASON="cannot make a veth pair"; return 1; }
	wait_until 5 grep -q "${HOSTDEV}a" /proc/net/igmp6 || { REASON="${HOSTDEV}a has no IPv6 groups"; return 1; }
	before=$(cat "/sys/class/net/${HOSTDEV}a/ifindex")
	wl_start w_mcast hostdev "${HOSTDEV}a" || return 1
	cr_dump dump "$WL_PID" "$img" || return 1
	hostdev_down
	if cr_run restore restore -D "$img" --detach; then
		REASON="the restore succeeded without device ${HOSTDEV}a"
		return 1
	fi
	grep -qF "no device ${HOSTDEV}a in this network namespace" "$CR_ERR" ||
		{ REASON="the error does not name the device: $(last_line "$CR_ERR")"; return 1; }
	wait_until 5 pid_gone "$WL_PID" || { REASON="pid $WL_PID left behind by the failed restore"; return 1; }
	# Made again, after another link took the old index.
	ip link add "${HOSTDEV}x" type veth peer name "${HOSTDEV}y" && hostdev_up ||
		{ REASON="cannot make the veth pairs again"; return 1; }
	[ "$(cat "/sys/class/net/${HOSTDEV}a/ifindex")" != "$before" ] ||
		{ REASON="${HOSTDEV}a has its old index $before again: nothing tested"; return 1; }
	cr_restore_detached restore2 "$img" || return 1
	wl_trigger || return 1
	wl_expect_pass || return 1
	wl_await_exit
}

refused_if6_gone() {
	mc_start if6_gone || return 1
	nsenter -t "$WL_PID" -n ip link del mca || { REASON="cannot delete the veth pair"; return 1; }
	expect_refused_then_pass "$WL_PID" "unsupported: IPV6_MULTICAST_IF on interface index"
}

refused_if4_gone() {
	mc_start if4_gone || return 1
	nsenter -t "$WL_PID" -n ip addr del 10.9.0.5/32 dev mca || { REASON="cannot delete the address"; return 1; }
	expect_refused_then_pass "$WL_PID" "unsupported: IP_MULTICAST_IF 10.9.0.5, an address no device"
}

refused_other_netns() {
	wl_start w_mcast other_netns || return 1
	expect_refused_then_pass "$WL_PID" "socket:[" "unsupported: a socket of network namespace net:["
}

# ---- socat ---------------------------------------------------------------------
# socat runs in the harness's namespace (cr dumps unix sockets, which socat
# holds a pair of, only there), on the test's veth pair HOSTDEV a/b: the
# datagrams go out of b, and the copy the kernel loops back to the groups
# joined on b is what socat gets.

SOCAT_GROUP4=239.213.$(($$ % 250)).7
SOCAT_GROUP6=ff0e::213:$(printf %x $(($$ % 65000)))

socat_net_up() {
	hostdev_up && ip -6 addr add "fd77::$(printf %x $(($$ % 65000)))/128" dev "${HOSTDEV}b" nodad &&
		ip addr add "10.213.$(($$ % 250)).1/32" dev "${HOSTDEV}b"
}

# socat_start ADDRESS: unmodified socat receiving datagrams into
# CASE_TMP/got.
socat_start() {
	socat_net_up || { REASON="cannot make the veth pair"; return 1; }
	real_start "$CASE_TMP/socat.out" "$CASE_TMP" socat socat -u "$1" "OPEN:$CASE_TMP/got,creat,append" || return 1
	wait_until 5 sh -c "ss -Huanp | grep -q 'pid=$WL_PID,'" || { REASON="socat has no UDP socket"; return 1; }
}

# send_group GROUP PORT TEXT: a datagram of TEXT (and a newline) out of
# HOSTDEV b.
send_group() {
	python3 -c '
import socket, struct, sys
idx = socket.if_nametoindex(sys.argv[4])
if ":" in sys.argv[1]:
    s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_IF, idx)
else:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, struct.pack("4s4si", bytes(4), bytes(4), idx))
s.sendto((sys.argv[3] + "\n").encode(), (sys.argv[1], int(sys.argv[2])))' "$@" "${HOSTDEV}b"
}

# got_lines TEXT: socat wrote exactly TEXT (lines) into its file.
got_lines() {
	[ "$(cat "$CASE_TMP/got" 2>/dev/null)" = "$(printf '%b' "$1")" ]
}

# socat_case 4|6: socat joined to a group on HOSTDEV b gets a datagram sent
# to it before the dump, and one after restore.
socat_case() {
	local group port address
	command -v socat >/dev/null || { REASON="socat is not installed (make deps)"; return 1; }
	port=$(free_port)
	if [ "$1" = 4 ]; then
		group=$SOCAT_GROUP4 address="UDP4-RECV:$port,ip-add-membership=$group:${HOSTDEV}b"
	else
		group=$SOCAT_GROUP6 address="UDP6-RECV:$port,ipv6-join-group=[$group]:${HOSTDEV}b"
	fi
	socat_start "$address" || return 1
	send_group "$group" "$port" before
	wait_until 5 got_lines 'before' || { REASON="socat did not get the first datagram: $(cat "$CASE_TMP/got" 2>&1)"; return 1; }
	cr_dump dump "$WL_PID" "$CASE_TMP/img" || return 1
	cr_run restore restore -D "$CASE_TMP/img" --detach || { REASON="cr restore failed: $(last_line "$CR_ERR")"; return 1; }
	wait_until 10 running_free "$WL_PID" "$WL_EXE" || { REASON="restored: $(describe_pid "$WL_PID")"; return 1; }
	send_group "$group" "$port" after
	wait_until 5 got_lines 'before\nafter' || { REASON="after restore socat wrote: $(cat "$CASE_TMP/got" 2>&1)"; return 1; }
	kill "$WL_PID"
	hostdev_down
}

free_port() {
	python3 -c 'import socket; s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("0.0.0.0", 0)); print(s.getsockname()[1])'
}

run_case control_groups mc_case control
run_case groups mc_case dump
run_case groups_leave_running mc_case leave
run_case groups_twice mc_case twice
run_case show show
run_case hostdev_gone hostdev_gone
hostdev_down
ip link del "${HOSTDEV}x" 2>/dev/null
run_case refused_if6_gone refused_if6_gone
run_case refused_if4_gone refused_if4_gone
run_case refused_other_netns refused_other_netns
run_case socat4 socat_case 4
hostdev_down
run_case socat6 socat_case 6
hostdev_down
finish_tests
