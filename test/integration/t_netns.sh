#!/usr/bin/env bash
# t_netns: network namespaces come back with what they hold, or the dump
# refuses them by name (issue 15).
# sockets_inside: python3 in a namespace of its own with a TCP listener and
#   a bound UDP socket on its loopback: after restore a client entering the
#   namespace (nsenter -n) is served the token drawn before the dump, and a
#   datagram sent to the UDP socket comes back (the sockets of issue 15 and
#   the namespace of issue 15 together).
# unix_inside: socat in a namespace of its own, a server on an abstract unix
#   name and a client connected to it: the old connection carries a line
#   after restore, a new client inside reaches the name, none outside does.
# established_*, redis_netns: established TCP of a server in a network
#   namespace of its own, with a client in another (see the cases).
# python_full: unmodified python3 in a network namespace of its own
#   (unshare --net) with lo up, a veth pair, a bridge with one end as its
#   port (priority, cost, hairpin, learning set), IPv4 and IPv6 addresses
#   (one noprefixroute), routes in main and in tables 100 and 200 (default
#   routes, blackhole, unreachable, prohibit, a metric and an MTU, two
#   nexthops with weights, an onlink gateway), rules (from, fwmark/mask,
#   "not", ipproto and dport, IPv6; a default rule deleted), sysctls
#   (ip_forward, rp_filter, an IPv6 hop limit, somaxconn, a unix queue
#   length; every net.* one compared), permanent IPv4 and IPv6
#   neighbours, static and permanent bridge fdb entries, a
#   persistent tap owned by uid 1000.  After restore it is in a new
#   namespace (not the harness's, not the dumped one) where `ip -d link`,
#   `ip addr`, `ip route show table all`, `ip rule`, `ip -6 rule` and every
#   net.ipv4/net.ipv6 sysctl read the same as before the dump (ifindexes are
#   kept; timers, DAD flags left out), no IPv6 address is tentative, python3
#   binds both addresses at once and reports the random token it drew
#   before the dump (it went on, it was not started again), and socat
#   connects to a socat listener on the restored IPv4 and IPv6 addresses.
#   Sabotage: a sysctl, a route, a rule and an fdb entry changed after
#   restore each make the comparison fail (and pass once mended).
# host_defaults_changed: python_full, the host's net.ipv4.conf.default and
#   conf.all values a new namespace copies changed between dump and restore.
#   cr show lists the links and addresses.
# leave_running: cr dump --leave-running leaves the namespace as it was.
# bash_nested: bash in a namespace A with a child sleep in A and a
#   grandchild in a namespace B of its own; after restore the two share
#   one namespace, the grandchild has another, each with its own links and
#   addresses; bash answers with its variable and its counter (kept).
# external_*: a veth whose peer is in the harness's namespace: refused
#   without --external veth:NAME (the tree runs on); dumped with it, and
#   restored with --external veth:NAME=HOSTNAME: the host end is HOSTNAME,
#   and a TCP connection from the host over the veth to a listener in the
#   restored namespace works; a peer in a namespace other than cr's is
#   refused even with --external (the restore would make it in cr's).
# join_ns: a process in a namespace made with `ip netns add` (the dump
#   says so) is restored with --join-ns net:/run/netns/NAME into that
#   namespace (same inode), where nothing was made again.
# nft_restored: an nftables table with a set, a base chain and a rule
#   with a counter that counted a dropped connection: `nft list ruleset`
#   reads the same after restore (counter too), and the rule still drops
#   connections to the set's ports while others connect.
# iptables_restored: legacy iptables (filter with a chain of its own and a
#   counted rule, nat with a REDIRECT) and ip6tables tables: the same
#   after restore (counters too), and they still drop and redirect.
# refused_*: a vxlan link, an ingress qdisc, a nexthop object, an IPsec
#   (xfrm) policy, a tap an fd is attached to (in the namespace, or a tap
#   fd of a process in cr's namespace), a namespace shared with a process
#   outside the tree: the dump is refused naming the pid and the thing,
#   and the tree runs on in its namespace with the thing still there.
# Every case makes its own namespaces and links and removes them.
source "$(dirname "$0")/lib.sh"
WL_NAME=netns

SLEEP=$(readlink -f "$(command -v sleep)")
NANOSLEEP=230

# ---- helpers ------------------------------------------------------------------

# net_start DIR SETUP PROGRAM ARGS...: PROGRAM (exec'd by sh after SETUP, a
# sh script run in the new namespace) in a network namespace of its own.
net_start() {
	local dir=$1 setup=$2 exe
	exe=$(readlink -f "$(command -v "$3")")
	shift 2
	mkdir -p "$dir"
	printf '%s\n' "$setup" > "$dir/setup.sh"
	( cd "$dir" && clean_exec setsid unshare --net sh -c 'sh -e ./setup.sh >setup.out 2>&1 && exec "$0" "$@"' "$@" ) \
		</dev/null >"$dir/out" 2>&1 &
	WL_PID=$!
	WL_EXE=$exe
	disown "$WL_PID"
	track_pid "$WL_PID"
	CASE_LOGS+=("$dir/out" "$dir/setup.out")
	wait_until 10 running_free "$WL_PID" "$exe" ||
		{ REASON="${exe##*/} did not start: $(cat "$dir/setup.out" "$dir/out" 2>/dev/null)"; return 1; }
}

# in_ns PID CMD...: CMD in the network namespace of PID.
in_ns() {
	local pid=${1:-}
	shift
	nsenter -t "$pid" -n "$@"
}

no_tentative() {
	[ -z "$(in_ns "$1" ip -6 addr show tentative)" ]
}

# What the namespace of PID holds, normalised: timers and DAD flags out,
# routes sorted (the kernel lists those of a table in the order they came).
net_state() {
	in_ns "$1" sh -c 'ip -d link; ip addr; ip route show table all | sort; ip rule; ip -6 rule;
		ip neigh show nud permanent; bridge fdb show | grep -v " self " | grep -E "permanent|static" | sort;
		sysctl -a 2>/dev/null | grep -E "^net\."' |
		sed -E 's/[a-z_]*timer +[0-9.]+//g; s/ (nodad|tentative)//g'
}

# The namespace of PID reads as FILE (once links have settled: a bridge's
# state goes from UNKNOWN to UP once its port forwards).
same_state() {
	net_state "$1" > "$CASE_TMP/after"
	diff "$2" "$CASE_TMP/after" > "$CASE_TMP/diff"
}

# The cookie of the network namespace of PID (SO_NETNS_COOKIE: never
# reused, unlike the inode numbers of namespaces).
netns_cookie() {
	in_ns "$1" /usr/bin/python3 -c 'import socket; print(socket.socket().getsockopt(socket.SOL_SOCKET, 71, 8).hex())'
}

# Not the harness's namespace, nor the one it had before (cookie OLD).
new_netns() {
	local pid=$1 old=$2 now
	now=$(netns_cookie "$pid") || { REASON="pid $pid: no netns cookie"; return 1; }
	[ "$now" != "$(/usr/bin/python3 -c 'import socket; print(socket.socket().getsockopt(socket.SOL_SOCKET, 71, 8).hex())')" ] ||
		{ REASON="pid $pid is in the harness's network namespace"; return 1; }
	[ "$now" != "$old" ] || { REASON="pid $pid is still in its dumped namespace (cookie $old)"; return 1; }
}

# A socat listener in the namespace of PID on ADDR PORT answers a client
# (run by CLIENT_NS: "in_ns PID" or "" for the harness's namespace).
connects() {
	local pid=$1 listen=$2 connect=$3 word=$4 got
	nsenter -t "$pid" -n timeout 10 socat -u "$listen" "OPEN:$CASE_TMP/got.$word,creat,trunc" &
	local l=$!
	sleep 0.3
	echo "$word" | timeout 5 ${5:-} socat -u - "$connect" || { kill $l 2>/dev/null; REASON="socat could not connect to $connect"; return 1; }
	wait $l
	got=$(cat "$CASE_TMP/got.$word" 2>/dev/null)
	[ "$got" = "$word" ] || { REASON="the listener on $listen got '$got', not '$word'"; return 1; }
}

# After a refused dump: the process runs on, untraced, in its namespace.
still_there() {
	local ns=$1
	running_free "$WL_PID" "$WL_EXE" || { REASON="after the refused dump: $(describe_pid "$WL_PID")"; return 1; }
	[ "$(readlink /proc/"$WL_PID"/ns/net)" = "$ns" ] || { REASON="its network namespace changed"; return 1; }
}

# ---- python3 in a namespace with everything ---------------------------------------

FULL_SETUP='
ip link set lo up
ip link add veth0 type veth peer name veth1
ip link add br0 type bridge
ip link set veth1 master br0
ip link set veth1 type bridge_slave priority 40 cost 7 hairpin on learning off
ip link set veth0 mtu 1400 address 02:00:00:00:00:0a
ip addr add 10.9.0.1/24 dev veth0
ip addr add 10.9.0.2/24 dev br0
ip -6 addr add fd00::1/64 dev veth0
ip -6 addr add fd00::2/64 dev br0 noprefixroute
ip link set veth0 up
ip link set veth1 up
ip link set br0 up
ip route add 10.10.0.0/16 via 10.9.0.2
ip route add 10.11.0.0/16 dev veth0 table 100
ip -6 route add fd01::/64 via fd00::3 dev veth0
ip -6 route add default via fd00::3 dev veth0 metric 700
ip -6 route add prohibit fd02::/64
ip route add default via 10.9.0.254
ip route add blackhole 10.50.0.0/16
ip route add unreachable 10.51.0.0/16 table 200
ip route add 10.12.0.0/16 via 10.9.0.3 metric 50 mtu 1300
ip route add 10.13.0.0/16 nexthop via 10.9.0.3 weight 1 nexthop via 10.9.0.4 weight 2
ip route add 10.14.0.0/16 via 10.60.0.1 dev veth0 onlink
ip rule add from 10.9.0.0/24 table 100 prio 1000
ip rule add fwmark 0x10/0xff lookup 200 prio 900
ip rule add not from 10.0.0.0/8 lookup main prio 950
ip rule add ipproto tcp dport 80 lookup 200 prio 960
ip -6 rule add from fd00::/64 lookup 100 prio 1100
ip rule del prio 32767
ip tuntap add mode tap tap0 user 1000
ip neigh add 10.9.0.5 lladdr 02:00:00:00:00:05 dev veth0 nud permanent
ip -6 neigh add fd00::5 lladdr 02:00:00:00:00:05 dev veth0 nud permanent
bridge fdb add 02:00:00:00:00:07 dev veth1 master static
bridge fdb add 02:00:00:00:00:08 dev veth1 master permanent
sysctl -q -w net.ipv4.ip_forward=1
sysctl -q -w net.ipv4.conf.veth0.rp_filter=2
sysctl -q -w net.ipv6.conf.br0.hop_limit=33
sysctl -q -w net.core.somaxconn=1234
sysctl -q -w net.unix.max_dgram_qlen=77
'

PY_NET='
import os, random, socket, sys, time
d = sys.argv[1]
token = "%016x" % random.getrandbits(64)
with open(d + "/token", "w") as f:
    f.write(token)
count = 0
while not os.path.exists(d + "/go"):
    count += 1
    time.sleep(0.02)
res = []
for fam, addr in ((socket.AF_INET, "10.9.0.1"), (socket.AF_INET6, "fd00::1"), (socket.AF_INET6, "fd00::2")):
    s = socket.socket(fam, socket.SOCK_STREAM)
    try:
        s.bind((addr, 0))
    except OSError as e:
        res.append("bind %s: %s" % (addr, e))
    s.close()
with open(d + "/result.tmp", "w") as f:
    f.write("PASS %s" % token if not res else "FAIL %s" % "; ".join(res))
os.rename(d + "/result.tmp", d + "/result")
time.sleep(1000)
'

python_full() {
	local between=${1:-} dir=$CASE_TMP/py img=$CASE_TMP/img old token result mine now a b
	net_start "$dir" "$FULL_SETUP" /usr/bin/python3 -c "$PY_NET" "$dir" || return 1
	wait_until 10 test -s "$dir/token" || { REASON="python3 did not draw its token"; return 1; }
	wait_until 10 no_tentative "$WL_PID" || { REASON="DAD did not end before the dump"; return 1; }
	token=$(cat "$dir/token")
	old=$(netns_cookie "$WL_PID")
	net_state "$WL_PID" > "$CASE_TMP/before"
	mine=$(sysctl -n net.core.somaxconn net.unix.max_dgram_qlen | tr '\n' ' ')
	cr_dump dump "$WL_PID" "$img" || return 1
	# The values the tree's namespace has are tried in a fresh one, not in cr's.
	now=$(sysctl -n net.core.somaxconn net.unix.max_dgram_qlen | tr '\n' ' ')
	if [ "$now" != "$mine" ]; then
		read -r a b <<<"$mine"
		sysctl -q -w net.core.somaxconn="$a" net.unix.max_dgram_qlen="$b"
		REASON="the dump changed cr's own sysctls (somaxconn, max_dgram_qlen): '$mine' became '$now'"
		return 1
	fi
	"$CR" show "$img" > "$CASE_TMP/show" 2>&1
	grep -q "3: veth0 veth mtu 1400 up 02:00:00:00:00:0a peer veth1" "$CASE_TMP/show" &&
		grep -q "inet6 fd00::1/64 on veth0" "$CASE_TMP/show" && grep -q "5: tap0 tun" "$CASE_TMP/show" ||
		{ REASON="cr show does not list the links and addresses: $(grep -A3 ' net ' "$CASE_TMP/show")"; return 1; }
	$between
	cr_restore_detached restore "$img" || return 1
	no_tentative "$WL_PID" || { REASON="tentative IPv6 addresses right after restore: $(in_ns "$WL_PID" ip -6 addr show tentative)"; return 1; }
	new_netns "$WL_PID" "$old" || return 1
	touch "$dir/go"
	wait_until 10 test -e "$dir/result" || { REASON="no result from python3: $(cat "$dir/out")"; return 1; }
	result=$(cat "$dir/result")
	[ "$result" = "PASS $token" ] || { REASON="python3 reports '$result', expected 'PASS $token'"; return 1; }
	wait_until 5 same_state "$WL_PID" "$CASE_TMP/before" ||
		{ CASE_LOGS+=("$CASE_TMP/diff"); REASON="the namespace differs after restore: $(head -4 "$CASE_TMP/diff" | tr '\n' ' ')"; return 1; }
	grep -qE " persist on user ($(id -nu 1000 2>/dev/null)|1000) " <(in_ns "$WL_PID" ip -d link show tap0) ||
		{ REASON="tap0 lost its owner: $(in_ns "$WL_PID" ip -d link show tap0)"; return 1; }
	connects "$WL_PID" TCP4-LISTEN:7001,bind=10.9.0.1,reuseaddr TCP4:10.9.0.1:7001,bind=10.9.0.2 v4 "nsenter -t $WL_PID -n" || return 1
	connects "$WL_PID" TCP6-LISTEN:7002,bind=[fd00::1],reuseaddr TCP6:[fd00::1]:7002 v6 "nsenter -t $WL_PID -n" || return 1
	sabotaged "$WL_PID" "sysctl -q -w net.ipv6.conf.br0.hop_limit=64" "sysctl -q -w net.ipv6.conf.br0.hop_limit=33" &&
		sabotaged "$WL_PID" "ip route del 10.12.0.0/16" "ip route add 10.12.0.0/16 via 10.9.0.3 metric 50 mtu 1300" &&
		sabotaged "$WL_PID" "ip rule del prio 960" "ip rule add ipproto tcp dport 80 lookup 200 prio 960" &&
		sabotaged "$WL_PID" "bridge fdb del 02:00:00:00:00:07 dev veth1 master" \
			"bridge fdb add 02:00:00:00:00:07 dev veth1 master static"
}

# The host's IPv4 conf/all and conf/default, which a new namespace copies
# (net.core.devconf_inherit_init_net 0), changed between dump and restore
# (or another host's): the restored namespace still reads as dumped, its
# devices' rp_filter, arp_announce and log_martians too.
HOST_CONF="net.ipv4.conf.default.rp_filter net.ipv4.conf.default.arp_announce net.ipv4.conf.all.log_martians"
host_conf_flip() {
	local k v
	for k in $HOST_CONF; do
		v=$(sysctl -n "$k")
		echo "$k=$v" >> "$CASE_TMP/host_conf"
		sysctl -q -w "$k=$([ "$v" = 0 ] && echo 2 || echo 0)"
		[ "$k" != net.ipv4.conf.all.log_martians ] || sysctl -q -w "$k=$([ "$v" = 0 ] && echo 1 || echo 0)"
	done
}
host_conf_back() {
	local kv
	[ -e "$CASE_TMP/host_conf" ] || return 0
	while read -r kv; do sysctl -q -w "$kv"; done < "$CASE_TMP/host_conf"
	rm -f "$CASE_TMP/host_conf"
}
host_defaults_changed() {
	local r=0
	python_full host_conf_flip || r=1
	host_conf_back
	return $r
}

# The comparison sees a change: after BREAK the namespace of PID differs
# from before, after MEND it is the same again.
sabotaged() {
	local pid=${1:-}
	in_ns "$pid" sh -c "$2"
	! same_state "$pid" "$CASE_TMP/before" || { REASON="the comparison does not see '$2'"; return 1; }
	in_ns "$pid" sh -c "$3"
	same_state "$pid" "$CASE_TMP/before" || { REASON="after '$3', the namespace is not as before"; return 1; }
}

# ---- --leave-running: the namespace as it was, nothing left behind -------------------

leave_running() {
	local img=$CASE_TMP/img links
	net_start "$CASE_TMP/s" "$FULL_SETUP" sleep 1000 || return 1
	wait_until 10 no_tentative "$WL_PID" || { REASON="DAD did not end before the dump"; return 1; }
	net_state "$WL_PID" > "$CASE_TMP/before"
	links=$(ip -br link | wc -l)
	cr_dump dump "$WL_PID" "$img" --leave-running || return 1
	running_free "$WL_PID" "$WL_EXE" || { REASON="after dump -R: $(describe_pid "$WL_PID")"; return 1; }
	same_state "$WL_PID" "$CASE_TMP/before" || { REASON="the namespace changed: $(head -4 "$CASE_TMP/diff" | tr '\n' ' ')"; return 1; }
	[ "$(readlink /proc/self/ns/net)" = "$(readlink /proc/"$$"/ns/net)" ] && [ "$(ip -br link | wc -l)" = "$links" ] ||
		{ REASON="the harness's namespace changed"; return 1; }
}

# ---- bash, nested namespaces ------------------------------------------------------

BASH_NESTED='
TOKEN=$1; COUNT=0
sleep 1000 &
unshare --net sh -c "ip link set lo up; ip addr add 10.20.0.1/32 dev lo; exec sleep 1000" &
echo $$ > pids
while :; do
	read -r line < "$PWD/fifo" || continue   # EOF: opened while the last writer closed
	COUNT=$((COUNT + 1))
	echo "$line $TOKEN $COUNT" > "$PWD/answer"
done
'

bash_nested() {
	local dir=$CASE_TMP/bash img=$CASE_TMP/img token kids a b c
	token=$RANDOM$RANDOM
	mkdir -p "$dir" && mkfifo "$dir/fifo"
	net_start "$dir" 'ip link set lo up; ip link add va type veth peer name vb; ip addr add 10.30.0.1/24 dev va; ip link set va up; ip link set vb up' \
		bash -c "$BASH_NESTED" bash "$token" || return 1
	echo one > "$dir/fifo"
	wait_until 5 test -s "$dir/answer" || { REASON="bash did not answer"; return 1; }
	[ "$(cat "$dir/answer")" = "one $token 1" ] || { REASON="bash answered '$(cat "$dir/answer")'"; return 1; }
	wait_until 5 eval '[ "$(cat /proc/$WL_PID/task/$WL_PID/children | wc -w)" = 2 ]' || { REASON="bash has not its two children"; return 1; }
	wait_until 5 eval 'for k in $(cat /proc/$WL_PID/task/$WL_PID/children); do [ "$(readlink /proc/$k/exe)" = "$SLEEP" ] || exit 1; done'
	kids=$(cat /proc/"$WL_PID"/task/"$WL_PID"/children)
	cr_dump dump "$WL_PID" "$img" || return 1
	rm -f "$dir/answer"
	cr_restore_detached restore "$img" || return 1
	a=$(readlink /proc/"$WL_PID"/ns/net)
	set -- $kids
	b=$(readlink /proc/"$1"/ns/net) c=$(readlink /proc/"$2"/ns/net)
	[ "$a" = "$b" ] && [ "$a" != "$c" ] && [ "$c" != "$(readlink /proc/self/ns/net)" ] ||
		{ REASON="namespaces after restore: bash $a, child $b, grandchild $c"; return 1; }
	in_ns "$WL_PID" ip -br addr show va | grep -q 10.30.0.1/24 || { REASON="va lost its address"; return 1; }
	in_ns "$2" ip -br addr show lo | grep -q 10.20.0.1/32 || { REASON="the nested namespace lost lo's address"; return 1; }
	in_ns "$2" ip -br link | grep -qv '^lo' && { REASON="the nested namespace has links it had not"; return 1; }
	echo two > "$dir/fifo"
	wait_until 5 test -s "$dir/answer" || { REASON="restored bash did not answer"; return 1; }
	[ "$(cat "$dir/answer")" = "two $token 2" ] || { REASON="restored bash answered '$(cat "$dir/answer")', expected 'two $token 2'"; return 1; }
}

# ---- a veth with its peer outside -----------------------------------------------

EXT_IN=crx-in$$
EXT_HOST=crx-h$$

external_refused() {
	local ns
	net_start "$CASE_TMP/s" 'ip link set lo up' sleep 1000 || return 1
	ip link add "$EXT_IN" type veth peer name "$EXT_HOST" || { REASON="ip link add veth"; return 1; }
	ip link set "$EXT_IN" netns "$WL_PID"
	ns=$(readlink /proc/"$WL_PID"/ns/net)
	expect_refused "$WL_PID" "$CASE_TMP/img" "veth $EXT_IN has its peer in another network namespace" "--external veth:$EXT_IN" || { ip link del "$EXT_HOST"; return 1; }
	still_there "$ns" || return 1
	ip link show "$EXT_HOST" >/dev/null 2>&1 || { REASON="the host end went away"; return 1; }
	ip link del "$EXT_HOST"
}

external_restored() {
	local img=$CASE_TMP/img r=0
	net_start "$CASE_TMP/s" 'ip link set lo up' sleep 1000 || return 1
	ip link add "$EXT_IN" type veth peer name "$EXT_HOST" || { REASON="ip link add veth"; return 1; }
	ip link set "$EXT_IN" netns "$WL_PID"
	in_ns "$WL_PID" sh -c "ip addr add 10.77.0.2/24 dev $EXT_IN && ip link set $EXT_IN up"
	cr_dump dump "$WL_PID" "$img" --external "veth:$EXT_IN" || { ip link del "$EXT_HOST" 2>/dev/null; return 1; }
	wait_until 5 eval '! ip link show "$EXT_HOST" >/dev/null 2>&1' || ip link del "$EXT_HOST"
	if cr_run restore restore -D "$img" --detach; then
		REASON="restored without --external veth:$EXT_IN=HOSTNAME"
		return 1
	fi
	grep -qF -- "--external veth:$EXT_IN=HOSTNAME" "$CR_ERR" || { REASON="the restore does not say what to give: $(last_line "$CR_ERR")"; return 1; }
	cr_restore_detached restore "$img" --external "veth:$EXT_IN=${EXT_HOST}r" || return 1
	ip link show "${EXT_HOST}r" >/dev/null 2>&1 || { REASON="no ${EXT_HOST}r in cr's namespace"; return 1; }
	ip addr add 10.77.0.1/24 dev "${EXT_HOST}r" && ip link set "${EXT_HOST}r" up
	connects "$WL_PID" TCP4-LISTEN:7003,bind=10.77.0.2,reuseaddr TCP4:10.77.0.2:7003 ext || r=1
	ip link del "${EXT_HOST}r" 2>/dev/null
	return $r
}

# A peer in a namespace other than cr's is refused even with --external,
# which would make it in cr's.
external_elsewhere() {
	local ns other=crt-x$$ r=0
	net_start "$CASE_TMP/s" 'ip link set lo up' sleep 1000 || return 1
	ip netns add "$other" || { REASON="ip netns add"; return 1; }
	ip -n "$other" link add "$EXT_IN" type veth peer name "$EXT_HOST" &&
		ip -n "$other" link set "$EXT_IN" netns "$WL_PID" || { REASON="veth from $other"; ip netns del "$other"; return 1; }
	ns=$(readlink /proc/"$WL_PID"/ns/net)
	cr_run dump dump "$WL_PID" -D "$CASE_TMP/img" --external "veth:$EXT_IN"
	check_refused "$WL_PID" "$CASE_TMP/img" "veth $EXT_IN: unsupported, its peer is in a network namespace other than cr's" ||
		r=1
	[ $r = 1 ] || still_there "$ns" || r=1
	ip netns del "$other"
	return $r
}

# ---- --join-ns ----------------------------------------------------------------------

join_ns() {
	local name=crt-$$ img=$CASE_TMP/img r=0
	ip netns add "$name" || { REASON="ip netns add"; return 1; }
	ip -n "$name" link set lo up
	ip -n "$name" addr add 10.40.0.1/32 dev lo
	( clean_exec setsid nsenter --net=/run/netns/"$name" "$SLEEP" 1000 ) </dev/null >/dev/null 2>&1 &
	WL_PID=$! WL_EXE=$SLEEP
	disown "$WL_PID"; track_pid "$WL_PID"
	wait_until 5 blocked_in "$WL_PID" "$NANOSLEEP" || { REASON="sleep did not start"; ip netns del "$name"; return 1; }
	cr_dump dump "$WL_PID" "$img" || r=1
	[ $r = 0 ] && ! grep -qF "is /run/netns/$name: a restore makes a new one, unless --join-ns" "$img/dump.log" &&
		{ REASON="the dump does not say the namespace is /run/netns/$name"; r=1; }
	[ $r = 0 ] && { cr_run restore restore -D "$img" --detach --join-ns net:/run/netns/"$name" && wait_until 5 running_free "$WL_PID" "$SLEEP" ||
		{ REASON="restore --join-ns failed: $(last_line "$CR_ERR")"; r=1; }; }
	if [ $r = 0 ]; then
		[ "$(stat -L -c %i /proc/"$WL_PID"/ns/net)" = "$(stat -c %i /run/netns/"$name")" ] ||
			{ REASON="not in /run/netns/$name after restore"; r=1; }
		[ "$(ip -n "$name" -br addr | grep -c 10.40.0.1)" = 1 ] || { REASON="the joined namespace changed"; r=1; }
	fi
	kill "$WL_PID" 2>/dev/null
	ip netns del "$name"
	return $r
}

# ---- nftables -----------------------------------------------------------------------

NFT_SETUP="ip link set lo up
nft add table inet crtest
nft add chain inet crtest input '{ type filter hook input priority 0; }'
nft add set inet crtest ports '{ type inet_service; }'
nft add element inet crtest ports '{ 7998, 7999 }'
nft add rule inet crtest input tcp dport @ports counter drop"

# A listener on 127.0.0.1:PORT in the namespace of PID gets no connection.
dropped() {
	local pid=$1 port=$2 l
	nsenter -t "$pid" -n socat -u TCP4-LISTEN:"$port",bind=127.0.0.1,reuseaddr - >/dev/null &
	l=$!   # socat itself: nsenter execs it
	sleep 0.3
	if in_ns "$pid" timeout 2 socat -u /dev/null TCP4:127.0.0.1:"$port",connect-timeout=1 2>/dev/null; then
		kill $l 2>/dev/null
		REASON="a connection to port $port got through"
		return 1
	fi
	kill $l 2>/dev/null
	wait $l 2>/dev/null
	return 0
}

nft_restored() {
	local img=$CASE_TMP/img
	net_start "$CASE_TMP/s" "$NFT_SETUP" sleep 1000 || return 1
	dropped "$WL_PID" 7999 || return 1
	in_ns "$WL_PID" nft list ruleset > "$CASE_TMP/before"
	grep -q "counter packets [1-9]" "$CASE_TMP/before" || { REASON="the counter did not count: $(cat "$CASE_TMP/before")"; return 1; }
	cr_dump dump "$WL_PID" "$img" || return 1
	cr_restore_detached restore "$img" || return 1
	in_ns "$WL_PID" nft list ruleset > "$CASE_TMP/after"
	diff "$CASE_TMP/before" "$CASE_TMP/after" > "$CASE_TMP/diff" ||
		{ CASE_LOGS+=("$CASE_TMP/diff"); REASON="nft list ruleset differs after restore"; return 1; }
	dropped "$WL_PID" 7998 || return 1
	connects "$WL_PID" TCP4-LISTEN:7001,bind=127.0.0.1,reuseaddr TCP4:127.0.0.1:7001 ok "nsenter -t $WL_PID -n"
}

# ---- legacy iptables ------------------------------------------------------------------

IPT_SETUP="ip link set lo up
iptables-legacy -N crtest
iptables-legacy -A INPUT -p tcp --dport 7999 -j crtest
iptables-legacy -A crtest -j DROP
iptables-legacy -t nat -A OUTPUT -p tcp --dport 7997 -j REDIRECT --to-ports 7001
ip6tables-legacy -A INPUT -p tcp --dport 7999 -j DROP"

# The legacy tables of the namespace of PID, with their counters, sorted
# (a save lists the tables in the order they were made).
xtables() {
	in_ns "$1" sh -c 'iptables-legacy-save -c; ip6tables-legacy-save -c' | grep -v '^#' | sort
}

iptables_restored() {
	local img=$CASE_TMP/img
	net_start "$CASE_TMP/s" "$IPT_SETUP" sleep 1000 || return 1
	dropped "$WL_PID" 7999 || return 1
	xtables "$WL_PID" > "$CASE_TMP/before"
	grep -q '^\[[1-9][0-9]*:[0-9]*\] -A crtest -j DROP' "$CASE_TMP/before" ||
		{ REASON="the rule did not count: $(cat "$CASE_TMP/before")"; return 1; }
	cr_dump dump "$WL_PID" "$img" || return 1
	cr_restore_detached restore "$img" || return 1
	xtables "$WL_PID" > "$CASE_TMP/after"
	diff "$CASE_TMP/before" "$CASE_TMP/after" > "$CASE_TMP/diff" ||
		{ CASE_LOGS+=("$CASE_TMP/diff"); REASON="the legacy tables differ after restore"; return 1; }
	dropped "$WL_PID" 7999 || return 1
	connects "$WL_PID" TCP4-LISTEN:7001,bind=127.0.0.1,reuseaddr TCP4:127.0.0.1:7997 nat "nsenter -t $WL_PID -n"
}

# ---- refusals -----------------------------------------------------------------------

refused_setup() {
	local words=$1 ns
	net_start "$CASE_TMP/s" "$2" sleep 1000 || return 1
	ns=$(readlink /proc/"$WL_PID"/ns/net)
	expect_refused "$WL_PID" "$CASE_TMP/img" "$words" || return 1
	still_there "$ns" || return 1
	[ -z "${3:-}" ] || in_ns "$WL_PID" sh -c "$3" || { REASON="the thing is gone after the refused dump ($3)"; return 1; }
}

PY_TUN='
import fcntl, os, struct, sys, time
fd = os.open("/dev/net/tun", os.O_RDWR)
fcntl.ioctl(fd, 0x400454ca, struct.pack("16sH", sys.argv[1].encode(), 0x0002 | 0x1000))   # TUNSETIFF, IFF_TAP | IFF_NO_PI
if sys.argv[3] == "persist":
    fcntl.ioctl(fd, 0x400454cb, 1)   # TUNSETPERSIST
open(sys.argv[2], "w").close()
time.sleep(1000)
'

# refused_tun own|host WORDS [persist]: python3 holds a tap fd (TUNSETIFF),
# in a network namespace of its own or in the harness's (the tap goes with
# it: never persistent there).
refused_tun() {
	local where=$1 words=$2 persist=${3:-no} ns
	mkdir -p "$CASE_TMP/t"
	if [ "$where" = own ]; then
		net_start "$CASE_TMP/t" 'ip link set lo up' /usr/bin/python3 -c "$PY_TUN" "crtun$$" "$CASE_TMP/t/ready" "$persist" ||
			return 1
	else
		( clean_exec setsid /usr/bin/python3 -c "$PY_TUN" "crtun$$" "$CASE_TMP/t/ready" no ) </dev/null >/dev/null 2>&1 &
		WL_PID=$! WL_EXE=$(readlink -f /usr/bin/python3)
		disown "$WL_PID"; track_pid "$WL_PID"
	fi
	wait_until 10 test -e "$CASE_TMP/t/ready" || { REASON="python3 did not attach its tap"; return 1; }
	ns=$(readlink /proc/"$WL_PID"/ns/net)
	expect_refused "$WL_PID" "$CASE_TMP/img" "$words" || return 1
	still_there "$ns" || return 1
	in_ns "$WL_PID" ip link show "crtun$$" >/dev/null 2>&1 || { REASON="the tap is gone after the refused dump"; return 1; }
}

refused_shared() {
	local ns other
	net_start "$CASE_TMP/s" 'ip link set lo up' sleep 1000 || return 1
	ns=$(readlink /proc/"$WL_PID"/ns/net)
	( clean_exec nsenter -t "$WL_PID" -n "$SLEEP" 1001 ) </dev/null >/dev/null 2>&1 &
	other=$!
	track_pid "$other"
	wait_until 5 blocked_in "$other" "$NANOSLEEP" || { REASON="the outside sleep did not start"; return 1; }
	expect_refused "$WL_PID" "$CASE_TMP/img" "is also used by pid $other outside the dump" || return 1
	still_there "$ns"
}

run_case python_full python_full
run_case host_defaults_changed host_defaults_changed
run_case bash_nested bash_nested
run_case leave_running leave_running
run_case external_refused external_refused
run_case external_restored external_restored
run_case external_elsewhere external_elsewhere
run_case join_ns join_ns
run_case refused_vxlan refused_setup "link vx0 of kind vxlan: unsupported" \
	'ip link add vx0 type vxlan id 5 dstport 4789' 'ip link show vx0 >/dev/null'
run_case nft_restored nft_restored
run_case iptables_restored iptables_restored
run_case refused_qdisc refused_setup "link veth1: unsupported ingress queueing discipline" \
	'ip link add veth0 type veth peer name veth1; tc qdisc add dev veth1 ingress' 'tc qdisc show dev veth1 | grep -q ingress'
run_case refused_nexthop refused_setup "nexthop object 7: unsupported" \
	'ip link add veth0 type veth peer name veth1; ip link set veth0 up; ip link set veth1 up; ip nexthop add id 7 dev veth0' \
	'ip nexthop show id 7 >/dev/null'
run_case refused_xfrm refused_setup "an IPsec policy: unsupported" \
	'ip xfrm policy add src 10.0.0.1 dst 10.0.0.2 dir out' 'ip xfrm policy | grep -q 10.0.0.2'
run_case refused_shared refused_shared
run_case refused_tun_transient refused_tun own "tun crtun$$ is not persistent: unsupported"
run_case refused_tun_attached refused_tun own "tun crtun$$ has an fd attached: unsupported" persist
run_case refused_tun_fd refused_tun host "/dev/net/tun attached to the tun/tap device crtun$$: unsupported"

# What a failed case may have left in the harness's namespace (the links
# inside the cases' namespaces go with them).
ip link del "$EXT_HOST" 2>/dev/null
ip link del "${EXT_HOST}r" 2>/dev/null
ip netns del crt-$$ 2>/dev/null
sockets_inside() {
	local dir=$CASE_TMP/si got
	mkdir -p "$dir"
	( clean_exec unshare --net python3 -c '
import os, random, socket, sys
d = sys.argv[1]
os.system("ip link set lo up")
tok = "%d" % random.randrange(1 << 30)
l = socket.socket(); l.bind(("127.0.0.1", 7777)); l.listen(5)
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.bind(("127.0.0.1", 7778))
open(d + "/tok", "w").write(tok)
open(d + "/ready", "w").close()
while True:
    c, _ = l.accept()
    m, a = u.recvfrom(100) if c.recv(1) == b"u" else (b"", None)
    if a:
        u.sendto(m, a)
    c.sendall(tok.encode())
    c.close()' "$dir" ) </dev/null >"$dir/out" 2>&1 &
	WL_PID=$!
	track_pid "$WL_PID"
	wait_until 10 test -e "$dir/ready" || { REASON="python3 did not start: $(cat "$dir/out")"; return 1; }
	cr_dump dump "$WL_PID" "$CASE_TMP/img" || return 1
	cr_run restore restore -D "$CASE_TMP/img" --detach || { REASON="cr restore failed: $(last_line "$CR_ERR")"; return 1; }
	got=$(timeout 10 nsenter -t "$WL_PID" -n python3 -c '
import socket
c = socket.create_connection(("127.0.0.1", 7777)); c.sendall(b"u")
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.settimeout(5)
u.sendto(b"echo", ("127.0.0.1", 7778)); e = u.recv(100)
print(e.decode(), c.recv(100).decode())' 2>&1)
	[ "$got" = "echo $(cat "$dir/tok")" ] || { REASON="the restored sockets answered '$got', not 'echo $(cat "$dir/tok")'"; return 1; }
	kill "$WL_PID"
}

# socat (unmodified) in a network namespace of its own: a server on an
# abstract unix name (which belongs to the namespace) and a client
# connected to it, in the tree.  After restore the old connection carries a
# line, a new client inside the namespace reaches the name, and none
# outside it does.
unix_inside() {
	local dir=$CASE_TMP/ui name got
	mkdir -p "$dir"
	( clean_exec unshare --net bash -c '
d=$1
socat ABSTRACT-LISTEN:cr-ui-$$,fork EXEC:"sed -u s/^/E-/" &
while ! grep -q "@cr-ui-$$" /proc/net/unix; do sleep 0.05; done
mkfifo "$d/in"
socat PIPE:"$d/in",ignoreeof!!STDOUT ABSTRACT-CONNECT:cr-ui-$$ > "$d/client.out" &
echo before > "$d/in"
while ! grep -q E-before "$d/client.out"; do sleep 0.05; done
echo "cr-ui-$$" > "$d/name"
wait' _ "$dir" ) </dev/null >"$dir/out" 2>&1 &
	WL_PID=$!
	disown "$WL_PID"
	track_pid "$WL_PID"
	wait_until 10 test -s "$dir/name" || { REASON="socat did not start: $(cat "$dir/out")"; return 1; }
	name=$(cat "$dir/name")
	cr_dump dump "$WL_PID" "$CASE_TMP/img" || return 1
	cr_run restore restore -D "$CASE_TMP/img" --detach || { REASON="cr restore failed: $(last_line "$CR_ERR")"; return 1; }
	timeout 5 sh -c 'echo after > "$1"' _ "$dir/in" || { REASON="cannot write to the restored client's FIFO"; return 1; }
	wait_until 5 grep -q E-after "$dir/client.out" ||
		{ REASON="the old connection did not carry a line: $(cat "$dir/client.out")"; return 1; }
	got=$(echo inside | timeout 5 nsenter -t "$WL_PID" -n socat -t 2 - "ABSTRACT-CONNECT:$name" 2>&1)
	[ "$got" = E-inside ] || { REASON="a new client inside the namespace got '$got'"; return 1; }
	! echo outside | timeout 5 socat -t 1 - "ABSTRACT-CONNECT:$name" >/dev/null 2>&1 ||
		{ REASON="the abstract name is reachable from cr's namespace"; return 1; }
	kill -- -"$WL_PID" 2>/dev/null
	kill "$WL_PID" $(descendants "$WL_PID") 2>/dev/null
	return 0
}

# ---- established TCP in the tree's own namespace --------------------------------------

# The lab: a bridge in cr's namespace (the "host"), a client namespace with
# a veth on it (10.88.0.1), and the service: a veth in the namespace of
# PID (10.88.0.2) whose peer is a bridge port.
LAB_BR=crb$$ LAB_CNS=crc-$$ LAB_CL=crcl$$ LAB_SV=crsv$$ LAB_SVH=crsh$$

lab_up() {
	local pid=${1:-}
	ip link add "$LAB_BR" type bridge && ip link set "$LAB_BR" up && ip netns add "$LAB_CNS" &&
		ip -n "$LAB_CNS" link set lo up &&
		ip link add "$LAB_CL" type veth peer name "${LAB_CL}h" && ip link set "$LAB_CL" netns "$LAB_CNS" &&
		ip -n "$LAB_CNS" addr add 10.88.0.1/24 dev "$LAB_CL" && ip -n "$LAB_CNS" link set "$LAB_CL" up &&
		ip link set "${LAB_CL}h" master "$LAB_BR" up || { REASON="the lab's bridge and client namespace"; return 1; }
	[ -z "$pid" ] || lab_service "$pid"
}

# lab_service PID: the service's veth into the namespace of PID.
lab_service() {
	ip link add "$LAB_SV" type veth peer name "$LAB_SVH" && ip link set "$LAB_SV" netns "$1" &&
		in_ns "$1" ip addr add 10.88.0.2/24 dev "$LAB_SV" && in_ns "$1" ip link set "$LAB_SV" up &&
		lab_attach || { REASON="the service's veth"; return 1; }
}

# After the dump: the service's host end goes with its namespace, which
# the kernel tears down a moment later (a restore makes it again).
lab_detached() {
	wait_until 5 eval '! ip link show "$LAB_SVH" >/dev/null 2>&1' || ip link del "$LAB_SVH"
}

# The service's host end (made again by a restore) on the bridge.
lab_attach() {
	ip link set "$LAB_SVH" master "$LAB_BR" up
}

lab_down() {
	ip link del "$LAB_SVH" 2>/dev/null
	ip link del "${LAB_CL}h" 2>/dev/null
	ip link del "$LAB_BR" 2>/dev/null
	ip netns del "$LAB_CNS" 2>/dev/null
	ip netns del "crt-$$" 2>/dev/null
	ip netns del "crt2-$$" 2>/dev/null
}

# The server: a token drawn at start, one client at a time, each line
# "N BODY" answered "N TOKEN reversed(BODY)" once N follows the last and
# BODY is what N gives (a byte lost or changed ends the connection).
# With "raw" it holds a raw socket too (opened after the connection);
# with "big" 160 MiB of memory (its dump writes them after the lock).
PY_LOCK_SERVER='
import hashlib, os, random, socket, sys
d, raw = sys.argv[1], "raw" in sys.argv[2:]
ballast = bytearray(os.urandom(1 << 20)) * (160 if "big" in sys.argv[2:] else 1)
tok = b"%016x" % random.getrandbits(64)
open(d + "/token", "wb").write(tok)
l = socket.socket(); l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
l.bind(("0.0.0.0", 7010)); l.listen(5)
while True:
    c, _ = l.accept()
    if raw:
        r = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
    f, n = c.makefile("rb"), 0
    try:
        for line in f:
            num, body = line.split()
            if int(num) != n + 1 or body != hashlib.sha256(num).hexdigest().encode() * 16:
                c.sendall(b"BAD %d after %d\n" % (int(num), n)); break
            n += 1
            c.sendall(b"%d %s %s\n" % (n, tok, body[::-1]))
    except OSError:   # restored closed (--tcp-close)
        pass
    c.close()'

# The client, in the client namespace: a line every 2 ms on one
# connection, each answer checked; RES is "ok COUNT LONGEST_WAIT_MS TOKEN"
# once DIR/stop exists, or FAIL and why.
PY_LOCK_CLIENT='
import hashlib, os, socket, sys, time
d, host, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
c = socket.create_connection((host, port), timeout=5); c.settimeout(120)
f = c.makefile("rb")
n, gap, last, tok = 0, 0.0, time.monotonic(), None
try:
    while not os.path.exists(d + "/stop"):
        n += 1
        body = hashlib.sha256(b"%d" % n).hexdigest().encode() * 16
        c.sendall(b"%d %s\n" % (n, body))
        line = f.readline()
        if not line:
            raise Exception("the server closed the connection")
        num, t, back = line.split()
        if int(num) != n or back != body[::-1] or (tok is not None and t != tok):
            raise Exception("answer %r to %d" % (line[:60], n))
        tok = t
        now = time.monotonic()
        gap, last = max(gap, now - last), now
        if n == 50:
            open(d + "/going", "w").close()
        time.sleep(0.002)
    open(d + "/res", "w").write("ok %d %.1f %s" % (n, gap * 1000, tok.decode()))
except Exception as e:
    open(d + "/res", "w").write("FAIL after %d answers: %r" % (n, e))'

# lab_client DIR HOST PORT: the client, once it has had 50 answers.
lab_client() {
	local dir=$1
	mkdir -p "$dir"
	( clean_exec ip netns exec "$LAB_CNS" python3 -c "$PY_LOCK_CLIENT" "$@" ) </dev/null >"$dir/client.out" 2>&1 &
	track_pid $!
	CASE_LOGS+=("$dir/client.out")
	wait_until 10 test -e "$dir/going" -o -e "$dir/res" ||
		{ REASON="the client did not get going: $(cat "$dir/client.out" "$dir/res" 2>/dev/null)"; return 1; }
	[ ! -e "$dir/res" ] || { REASON="the client: $(cat "$dir/res")"; return 1; }
}

# lab_client_done DIR TOKEN: the client, stopped a second from now, saw
# every answer in order, and the token TOKEN throughout.
lab_client_done() {
	local dir=$1 tok=$2 res n gap
	sleep 1
	touch "$dir/stop"
	wait_until 30 test -s "$dir/res" || { REASON="the client never finished: $(cat "$dir/client.out")"; return 1; }
	res=$(cat "$dir/res")
	[ "${res%% *}" = ok ] || { REASON="the client: $res"; return 1; }
	read -r _ n gap got <<<"$res"
	[ -z "$tok" ] || [ "$got" = "$tok" ] || { REASON="the client saw token $got, the server drew $tok"; return 1; }
	echo "# the client in another namespace, a line every 2 ms: $n answers in order, longest wait ${gap} ms"
}

# cr's lock tables in the namespace of PID ("" or "-": cr's own; a name: /run/netns/NAME).
lock_tables() {
	case $1 in
	""|-) nft list tables ;;
	[0-9]*) in_ns "$1" nft list tables ;;
	*) ip netns exec "$1" nft list tables ;;
	esac 2>/dev/null | grep -o 'cr_tcp_[0-9]*' | grep -vx cr_tcp_1 | sort
}

# no_lock_tables WHERE...: no cr_tcp_ table of this case in any of them
# (cr's own holds only what it held before the case: $HOST_TABLES).
no_lock_tables() {
	local w t
	for w in "$@"; do
		t=$(lock_tables "$w")
		[ "$w" = - ] && t=$(comm -13 <(echo "$HOST_TABLES") <(echo "$t"))
		[ -z "$t" ] || { REASON="table $t left in the namespace of ${w/#-/cr}"; return 1; }
	done
}

# established_netns: the server in a namespace of its own (unshare) behind
# the bridge, with a user's table and a stale lock table (cr_tcp_1, as a
# dead cr would leave); dumped with --tcp-established while the client
# sends, restored into a new namespace: the client never sees a reset or
# a wrong byte, the server's token is the one drawn before; the restored
# namespace has the user's table and no cr_tcp_ one (the dump left cr's
# locks out of its ruleset), and no namespace keeps a lock.
established_netns() {
	local dir=$CASE_TMP/s img=$CASE_TMP/img
	HOST_TABLES=$(lock_tables -)
	net_start "$dir" "ip link set lo up
nft add table inet crkeep
nft add table inet cr_tcp_1" /usr/bin/python3 -c "$PY_LOCK_SERVER" "$dir" || return 1
	lab_up "$WL_PID" || return 1
	lab_client "$dir" 10.88.0.2 7010 || return 1
	cr_dump dump "$WL_PID" "$img" --tcp-established --external "veth:$LAB_SV" || return 1
	grep -q "dropped by nftables table inet cr_tcp_[0-9]* (in the network namespace of pid $WL_PID" "$img/dump.log" ||
		{ REASON="the dump log does not say the lock is in the namespace of pid $WL_PID"; return 1; }
	no_lock_tables - "$LAB_CNS" || return 1
	lab_detached
	cr_restore_detached restore "$img" --external "veth:$LAB_SV=$LAB_SVH" || return 1
	lab_attach || { REASON="no $LAB_SVH after restore"; return 1; }
	lab_client_done "$dir" "$(cat "$dir/token")" || return 1
	no_lock_tables - "$LAB_CNS" "$WL_PID" || return 1
	[ "$(in_ns "$WL_PID" nft list tables | sort | tr '\n' ' ')" = "table inet crkeep " ] ||
		{ REASON="the restored namespace has tables: $(in_ns "$WL_PID" nft list tables | tr '\n' ' ')"; return 1; }
}

# established_tcp_close: the same restored with --tcp-close: no table is
# made or left, nothing to delete by hand, and the server (its connection
# closed) serves a new client with the token it drew before the dump.
established_tcp_close() {
	local dir=$CASE_TMP/s img=$CASE_TMP/img
	HOST_TABLES=$(lock_tables -)
	net_start "$dir" "ip link set lo up" /usr/bin/python3 -c "$PY_LOCK_SERVER" "$dir" || return 1
	lab_up "$WL_PID" || return 1
	lab_client "$dir" 10.88.0.2 7010 || return 1
	cr_dump dump "$WL_PID" "$img" --tcp-established --external "veth:$LAB_SV" || return 1
	lab_detached
	cr_run restore restore -D "$img" --detach --tcp-close --external "veth:$LAB_SV=$LAB_SVH" ||
		{ REASON="cr restore --tcp-close failed: $(last_line "$CR_ERR")"; return 1; }
	lab_attach || { REASON="no $LAB_SVH after restore"; return 1; }
	! grep -q "by hand" "$img/restore.log" || { REASON="the restore: $(grep "by hand" "$img/restore.log")"; return 1; }
	no_lock_tables - "$LAB_CNS" "$WL_PID" || return 1
	lab_client "$dir/new" 10.88.0.2 7010 || return 1
	lab_client_done "$dir/new" "$(cat "$dir/token")"
}

# lab_named NAME: the server started in /run/netns/NAME with the service's veth.
lab_named() {
	local dir=$1 name=$2
	shift 2
	ip netns add "$name" && ip -n "$name" link set lo up || { REASON="ip netns add $name"; return 1; }
	ip link add "$LAB_SV" type veth peer name "$LAB_SVH" && ip link set "$LAB_SV" netns "$name" &&
		ip -n "$name" addr add 10.88.0.2/24 dev "$LAB_SV" && ip -n "$name" link set "$LAB_SV" up &&
		lab_attach || { REASON="the service's veth"; return 1; }
	mkdir -p "$dir"
	WL_EXE=$(readlink -f /usr/bin/python3)
	( clean_exec setsid nsenter --net=/run/netns/"$name" /usr/bin/python3 -c "$PY_LOCK_SERVER" "$dir" "$@" ) </dev/null >"$dir/out" 2>&1 &
	WL_PID=$!
	disown "$WL_PID"; track_pid "$WL_PID"
	CASE_LOGS+=("$dir/out")
	wait_until 10 test -s "$dir/token" || { REASON="the server did not start: $(cat "$dir/out")"; return 1; }
}

# established_join: the server in /run/netns/crt-PID: while dumped, the
# lock is in that namespace (not cr's), restored into it with --join-ns,
# and it is gone after.
# dump_locked DIR IMG NAME: the lab's server in /run/netns/NAME with a
# client writing, dumped with --tcp-established into IMG: its lock table
# (LOCKED) is in NAME.
dump_locked() {
	HOST_TABLES=$(lock_tables -)
	lab_up && lab_named "$1" "$3" || return 1
	lab_client "$1" 10.88.0.2 7010 || return 1
	cr_dump dump "$WL_PID" "$2" --tcp-established --external "veth:$LAB_SV" || return 1
	LOCKED=$(lock_tables "$3")
	[ -n "$LOCKED" ] || { REASON="no lock table in $3 while dumped"; return 1; }
}

established_join() {
	local dir=$CASE_TMP/s img=$CASE_TMP/img name=crt-$$
	dump_locked "$dir" "$img" "$name" || return 1
	no_lock_tables - || return 1
	cr_restore_detached restore "$img" --join-ns net:/run/netns/"$name" || return 1
	lab_client_done "$dir" "$(cat "$dir/token")" || return 1
	no_lock_tables - "$name" "$LAB_CNS"
}

# established_moved: the same, restored into another namespace (crt2-PID,
# made with the service's address as a migration would) with --join-ns,
# while the dumped one stays (its veth gone): the restore locks the new
# one until the connection is back; no table is left in either.  A
# restore that fails (the port taken in crt2) leaves no table there
# either, and works once the port is free.
established_moved() {
	local dir=$CASE_TMP/s img=$CASE_TMP/img name=crt-$$ to=crt2-$$ holder
	HOST_TABLES=$(lock_tables -)
	lab_up && lab_named "$dir" "$name" || return 1
	lab_client "$dir" 10.88.0.2 7010 || return 1
	cr_dump dump "$WL_PID" "$img" --tcp-established --external "veth:$LAB_SV" || return 1
	[ -n "$(lock_tables "$name")" ] || { REASON="no lock table in $name while dumped"; return 1; }
	ip -n "$name" link del "$LAB_SV"
	ip netns add "$to" && ip -n "$to" link set lo up && ip link add "$LAB_SV" type veth peer name "$LAB_SVH" &&
		ip link set "$LAB_SV" netns "$to" && ip -n "$to" addr add 10.88.0.2/24 dev "$LAB_SV" &&
		ip -n "$to" link set "$LAB_SV" up && lab_attach || { REASON="the namespace moved to"; return 1; }
	( clean_exec ip netns exec "$to" python3 -c '
import socket, time
s = socket.socket(); s.bind(("10.88.0.2", 7010)); s.listen(1); time.sleep(100)' ) </dev/null >/dev/null 2>&1 &
	holder=$!
	track_pid "$holder"
	wait_until 5 sh -c "ip netns exec $to ss -Hltn | grep -q :7010" || { REASON="the port holder does not listen"; return 1; }
	if cr_run restore1 restore -D "$img" --detach --join-ns net:/run/netns/"$to"; then
		REASON="restored while the port was taken"
		return 1
	fi
	no_lock_tables "$to" || return 1
	kill "$holder"; wait "$holder" 2>/dev/null
	cr_restore_detached restore "$img" --join-ns net:/run/netns/"$to" || return 1
	lab_client_done "$dir" "$(cat "$dir/token")" || return 1
	no_lock_tables - "$name" "$to" "$LAB_CNS"
}

# established_restore_killed: established_moved's namespace crt2-PID, and
# the restore into it (--join-ns) SIGKILLed (its process group) once it has
# made its table there: its guardian (a session of its own) deletes the
# table; a restore after it brings the connection back, no table left.
established_restore_killed() {
	local dir=$CASE_TMP/s img=$CASE_TMP/img name=crt-$$ to=crt2-$$ restorer i seen=0
	HOST_TABLES=$(lock_tables -)
	lab_up && lab_named "$dir" "$name" big || return 1
	lab_client "$dir" 10.88.0.2 7010 || return 1
	cr_dump dump "$WL_PID" "$img" --tcp-established --external "veth:$LAB_SV" || return 1
	ip -n "$name" link del "$LAB_SV"
	ip netns add "$to" && ip -n "$to" link set lo up && ip link add "$LAB_SV" type veth peer name "$LAB_SVH" &&
		ip link set "$LAB_SV" netns "$to" && ip -n "$to" addr add 10.88.0.2/24 dev "$LAB_SV" &&
		ip -n "$to" link set "$LAB_SV" up && lab_attach || { REASON="the namespace moved to"; return 1; }
	setsid "$CR" restore -D "$img" --detach --join-ns net:/run/netns/"$to" </dev/null >/dev/null 2>&1 &
	restorer=$!
	for i in $(seq 20000); do   # the record is written just before the table is made
		compgen -G "/run/cr/guard/restore-*/tcp-*" >/dev/null && { seen=1; break; }
		kill -0 "$restorer" 2>/dev/null || break
	done
	sleep 0.02
	kill -KILL -- -"$restorer" 2>/dev/null
	wait "$restorer" 2>/dev/null
	[ "$seen" = 1 ] || { REASON="the restore ended before its guard record was seen: nothing was tested"; return 1; }
	grep -q "dropped by nftables table" "$img/restore.log" && ! grep -q "restored 1 processes" "$img/restore.log" ||
		{ REASON="the kill did not come between the table and the end of the restore: $(tail -n 1 "$img/restore.log")"; return 1; }
	wait_until 10 no_lock_tables "$to" || { no_lock_tables "$to"; return 1; }
	wait_until 10 pid_gone "$WL_PID" || { REASON="after the killed restore: $(describe_pid "$WL_PID")"; return 1; }
	cr_restore_detached restore "$img" --join-ns net:/run/netns/"$to" || return 1
	lab_client_done "$dir" "$(cat "$dir/token")" || return 1
	no_lock_tables - "$name" "$to" "$LAB_CNS"
}

# established_unlocked: the dump is given up (as after a restore on
# another host): cr unlock deletes its table in the dumped namespace, says
# so, and says there is none the second time.
established_unlocked() {
	local dir=$CASE_TMP/s img=$CASE_TMP/img name=crt-$$
	dump_locked "$dir" "$img" "$name" || return 1
	cr_run unlock unlock -D "$img" || { REASON="cr unlock failed: $(last_line "$CR_ERR")"; return 1; }
	grep -q "deleted nftables table inet $LOCKED " "$CASE_TMP/unlock.out" ||
		{ REASON="cr unlock does not say it deleted $LOCKED: $(cat "$CASE_TMP/unlock.out")"; return 1; }
	no_lock_tables - "$name" || return 1
	cr_run unlock2 unlock "$img" || { REASON="cr unlock (again) failed: $(last_line "$CR_ERR")"; return 1; }
	grep -q "no nftables table" "$CASE_TMP/unlock2.out" ||
		{ REASON="the second cr unlock says: $(cat "$CASE_TMP/unlock2.out")"; return 1; }
}

# established_unlocked_held, established_unlocked_bound: the same, the
# dumped namespace no longer under /run/netns (ip netns del) but held by
# a process only (a container's, say), or bound at another path (a
# runtime's own directory): cr unlock finds it and deletes the table.
in_netns_of() {
	[ "$(readlink /proc/"$1"/ns/net)" = "$2" ]
}

established_unlocked_elsewhere() {
	local dir=$CASE_TMP/s img=$CASE_TMP/img name=crt-$$ holder="" bound=$CASE_TMP/netns want
	dump_locked "$dir" "$img" "$name" || return 1
	if [ "$1" = held ]; then
		ip netns exec "$name" sleep 1000 </dev/null >/dev/null 2>&1 &
		holder=$!
		track_pid "$holder"
		want=$(ip netns exec "$name" readlink /proc/self/ns/net)
		wait_until 5 in_netns_of "$holder" "$want" || { REASON="the holder did not enter $name ($want)"; return 1; }
	else
		touch "$bound" && mount --bind /run/netns/"$name" "$bound" || { REASON="bind $name at $bound"; return 1; }
	fi
	local r=0
	unlocked_elsewhere "$img" "$name" "$holder" "$bound" || r=1
	[ -n "$holder" ] || umount "$bound"
	return $r
}

# unlocked_elsewhere IMG NAME HOLDER BOUND: the namespace no longer named
# NAME, held by HOLDER (a pid) or bound at BOUND; cr unlock deletes the
# table there.
unlocked_elsewhere() {
	local img=$1 name=$2 holder=$3 bound=$4
	ip netns del "$name" || { REASON="ip netns del $name"; return 1; }
	cr_run unlock unlock -D "$img" || { REASON="cr unlock failed: $(last_line "$CR_ERR")"; return 1; }
	grep -q "deleted nftables table inet $LOCKED " "$CASE_TMP/unlock.out" ||
		{ REASON="cr unlock does not say it deleted $LOCKED: $(cat "$CASE_TMP/unlock.out")"; return 1; }
	if [ -n "$holder" ]; then
		no_lock_tables "$holder"
	else
		[ -z "$(nsenter --net="$bound" nft list tables | grep -o 'cr_tcp_[0-9]*')" ] ||
			{ REASON="a lock table is left in the namespace bound at $bound"; return 1; }
	fi
}

# established_refused_late: the server holds a raw socket besides (refused
# after the connection was locked): the dump is refused, the lock is gone
# from the namespace, and the connection goes on.
established_refused_late() {
	local dir=$CASE_TMP/s name=crt-$$
	HOST_TABLES=$(lock_tables -)
	lab_up && lab_named "$dir" "$name" raw || return 1
	lab_client "$dir" 10.88.0.2 7010 || return 1
	cr_run dump dump "$WL_PID" -D "$CASE_TMP/img" --tcp-established --external "veth:$LAB_SV"
	check_refused "$WL_PID" "$CASE_TMP/img" "socket (RAW)" || return 1
	no_lock_tables - "$name" || return 1
	lab_client_done "$dir" "$(cat "$dir/token")"
}

# established_cr_killed: cr dump --tcp-established SIGKILLed (its process
# group; the guardian is in a session of its own) as soon as the
# connection's table is in the server's namespace: within 10 s no lock is
# left in the server's namespace (/run/netns/crt-PID) nor in cr's, the
# server runs on; three times; then once with its guardian killed too: the
# next cr dump (of another process) puts the server back and deletes the
# table in its namespace.  The client never noticed.  (t_inet/
# stream_cr_killed does the same in cr's namespace.)
established_cr_killed() {
	local dir=$CASE_TMP/s name=crt-$$ r dumper worker guardian other i seen complete=0 tested=0
	HOST_TABLES=$(lock_tables -)
	lab_up && lab_named "$dir" "$name" big || return 1
	lab_client "$dir" 10.88.0.2 7010 || return 1
	for r in 1 2 3 4; do
		setsid "$CR" dump "$WL_PID" -D "$CASE_TMP/img$r" --tcp-established --external "veth:$LAB_SV" </dev/null >/dev/null 2>&1 &
		dumper=$!
		guardian=""
		for i in $(seq 20000); do
			if [ "$r" = 4 ] && [ -z "$guardian" ]; then   # there from before the freeze
				worker=$(cat /proc/"$dumper"/task/"$dumper"/children 2>/dev/null)
				guardian=$(cat /proc/"${worker%% *}"/task/"${worker%% *}"/children 2>/dev/null)
			fi
			compgen -G "/run/cr/guard/dump-*/tcp-*" >/dev/null && break
			kill -0 "$dumper" 2>/dev/null || break
		done
		if [ "$r" = 4 ]; then
			[ -n "$guardian" ] || { REASON="round 4: no guardian found to kill"; return 1; }
			# shellcheck disable=SC2086 # every child of the worker: the guardian
			kill -KILL $guardian 2>/dev/null
		fi
		seen=0
		for i in $(seq 100); do   # and its table in the namespace
			[ -n "$(lock_tables "$name")" ] && { seen=1; break; }
			kill -0 "$dumper" 2>/dev/null || break
		done
		kill -KILL -- -"$dumper" 2>/dev/null
		wait "$dumper" 2>/dev/null
		if [ "$r" = 4 ]; then
			for i in $guardian; do   # a killed process lets go of its lock only once it is gone
				wait_until 5 pid_gone "$i" || { REASON="round 4: the guardian $i outlives its SIGKILL"; return 1; }
			done
			( clean_exec "$SLEEP" 30 ) </dev/null >/dev/null 2>&1 &
			other=$!
			track_pid "$other"
			cr_run next dump "$other" -D "$CASE_TMP/next" --leave-running ||
				{ REASON="the next dump failed: $(last_line "$CR_ERR")"; return 1; }
			# A dump that completed before its kill left nothing to put back.
			[ -e "$CASE_TMP/img$r/inventory.img" ] || grep -q "put back what the dump" "$CASE_TMP/next/dump.log" ||
				{ REASON="the next dump put nothing back"; return 1; }
		fi
		# Killed once complete (its guardian finishes the kill), or
		# before (the server is put back, even with its images written).
		wait_until 10 eval 'pid_gone "$WL_PID" || running_free "$WL_PID" "$WL_EXE"' ||
			{ REASON="round $r: after the kill: $(describe_pid "$WL_PID")"; return 1; }
		if pid_gone "$WL_PID"; then
			complete=$((complete + 1))
			cr_restore_detached "restore$r" "$CASE_TMP/img$r" --join-ns net:/run/netns/"$name" || return 1
		else
			tested=$((tested + seen))
		fi
		wait_until 10 no_lock_tables - "$name" || { no_lock_tables - "$name"; REASON="round $r: $REASON"; return 1; }
	done
	echo "# $complete of 4 dumps completed before the kill, $tested killed before with the table in $name"
	[ "$tested" -gt 0 ] || { REASON="no kill came while the table was there: nothing was tested"; return 1; }
	lab_client_done "$dir" "$(cat "$dir/token")"
}

# redis-cli in the client namespace, to the service's redis.
lab_redis() {
	ip netns exec "$LAB_CNS" redis-cli -h 10.88.0.2 -p 7011 "$@" 2>&1
}

redis_netns() {
	local dir=$CASE_TMP/r img=$CASE_TMP/img
	command -v redis-server >/dev/null || { REASON="redis-server is not installed (make deps)"; return 1; }
	HOST_TABLES=$(lock_tables -)
	net_start "$dir" "ip link set lo up" redis-server --port 7011 --bind 0.0.0.0 --protected-mode no --save '' \
		--appendonly no --daemonize no --dir "$dir" || return 1
	lab_up "$WL_PID" || return 1
	wait_until 10 eval 'lab_redis ping | grep -q PONG' || { REASON="redis does not answer over the bridge"; return 1; }
	lab_redis set before "tok-$WL_PID" >/dev/null
	redis_nonstop_start "$dir" 10.88.0.2 7011 ip netns exec "$LAB_CNS" || return 1
	cr_dump dump "$WL_PID" "$img" --tcp-established --external "veth:$LAB_SV" || return 1
	lab_detached
	cr_restore_detached restore "$img" --external "veth:$LAB_SV=$LAB_SVH" || return 1
	lab_attach || { REASON="no $LAB_SVH after restore"; return 1; }
	redis_nonstop_done "$dir" || return 1
	echo "# redis in its own namespace, INCR every 5 ms from another: $NONSTOP_N answers in order, longest wait ${NONSTOP_GAP} ms"
	[ "$(lab_redis get nonstop)" = "$NONSTOP_N" ] || { REASON="redis holds $(lab_redis get nonstop), not $NONSTOP_N"; return 1; }
	[ "$(lab_redis get before)" = "tok-$WL_PID" ] || { REASON="the key set before the dump: $(lab_redis get before)"; return 1; }
	lab_redis set after yes >/dev/null && [ "$(lab_redis get after)" = yes ] || { REASON="SET after restore failed"; return 1; }
	no_lock_tables - "$LAB_CNS" "$WL_PID"
}

# in_lab CASE: CASE with the lab taken down after it, whatever happened.
in_lab() {
	local r=0
	"$@" || r=1
	kill_tracked
	lab_down
	return $r
}

run_case sockets_inside sockets_inside
run_case unix_inside unix_inside
run_case established_netns in_lab established_netns
run_case established_tcp_close in_lab established_tcp_close
run_case established_join in_lab established_join
run_case established_moved in_lab established_moved
run_case established_refused_late in_lab established_refused_late
run_case established_restore_killed in_lab established_restore_killed
run_case established_unlocked in_lab established_unlocked
run_case established_unlocked_held in_lab established_unlocked_elsewhere held
run_case established_unlocked_bound in_lab established_unlocked_elsewhere bound
run_case established_cr_killed in_lab established_cr_killed
run_case redis_netns in_lab redis_netns
finish_tests
