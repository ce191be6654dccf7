# shellcheck shell=bash disable=SC2034
# scripts/migrate-lab.sh — sourced by test/integration/t_migrate.sh,
# scripts/demo-migrate.sh and scripts/bench.sh: two "hosts" made of network
# namespaces, for live migration with scripts/cr-migrate.
#
#   lan-ID      a bridge br0, the wire between the hosts and the client
#   hostA-ID    br0 (10.77.0.1) with its uplink to the lan, and the
#               service's veth peer "svc"
#   hostB-ID    br0 (10.77.0.2) with its uplink; after the migration the
#               restore makes "svc" here (--external veth:eth0=svc) and
#               cr-migrate puts it on br0 (--bridge svc=br0)
#   client-ID   eth0 10.77.0.100, on the lan
#
# The service runs in a network namespace of its own (unshare --net) whose
# eth0 (10.77.0.10, MAC 02:00:0a:4d:00:0a) is a veth with its peer on
# hostA's bridge: the same address and MAC answer on hostB afterwards.
# IPv6 is off in every namespace (no router or DAD traffic in the figures).

LAB_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
LAB_SVC_IP=10.77.0.10
LAB_SVC_MAC=02:00:0a:4d:00:0a
LAB_B_IP=10.77.0.2

# clean_exec CMD...: execs CMD with only fds 0-2 open (cr refuses a pipe
# that a process outside the dump holds too).  Run it in a subshell.
source "$(dirname "${BASH_SOURCE[0]}")/clean-exec.sh"

# lab_ns NAME CMD...: CMD in the network namespace NAME (only the network
# namespace changes, unlike `ip netns exec`, which makes a mount namespace).
lab_ns() {
	local ns=$1
	shift
	nsenter --net=/run/netns/"$ns" -- "$@"
}

# lab_up ID: makes the namespaces and links; LAB_A, LAB_B, LAB_L, LAB_C.
lab_up() {
	local id=$1 ns h
	LAB_A=hostA-$id LAB_B=hostB-$id LAB_L=lan-$id LAB_C=client-$id
	for ns in "$LAB_L" "$LAB_A" "$LAB_B" "$LAB_C"; do
		ip netns add "$ns" || return 1
		lab_ns "$ns" sysctl -q -w net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1 || return 1
		ip -n "$ns" link set lo up || return 1
	done
	ip -n "$LAB_L" link add br0 type bridge &&
		ip -n "$LAB_L" link set br0 up || return 1
	for h in A B; do
		ns=host$h-$id
		ip -n "$LAB_L" link add "p$h" type veth peer name uplink netns "$ns" &&
			ip -n "$LAB_L" link set "p$h" master br0 up &&
			ip -n "$ns" link add br0 type bridge &&
			ip -n "$ns" link set uplink master br0 up &&
			ip -n "$ns" link set br0 up || return 1
	done
	ip -n "$LAB_A" addr add 10.77.0.1/24 dev br0 &&
		ip -n "$LAB_B" addr add "$LAB_B_IP/24" dev br0 &&
		ip -n "$LAB_L" link add pC type veth peer name eth0 netns "$LAB_C" &&
		ip -n "$LAB_L" link set pC master br0 up &&
		ip -n "$LAB_C" addr add 10.77.0.100/24 dev eth0 &&
		ip -n "$LAB_C" link set eth0 up
}

lab_down() {
	local ns
	for ns in "${LAB_C:-}" "${LAB_A:-}" "${LAB_B:-}" "${LAB_L:-}"; do
		[ -n "$ns" ] && ip netns del "$ns" 2>/dev/null
	done
	return 0
}

# The setup of the service's namespace (sh -e, inside it; $1 is hostA's
# namespace): eth0 with its peer svc on hostA's bridge.
LAB_SVC_SETUP='
sysctl -q -w net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
ip link set lo up
ip link add eth0 address '$LAB_SVC_MAC' type veth peer name svc netns "$1"
ip addr add '$LAB_SVC_IP'/24 dev eth0
ip link set eth0 up
ip -n "$1" link set svc master br0 up
'

# lab_service OUT CMD...: CMD (exec'd) as the service, in a session and a
# network namespace of its own, started from hostA; LAB_SVC_PID.  Its
# stdout and stderr go to OUT.  The lan forgets where the service's MAC
# was (a service moved to hostB before this one): a port that goes down
# loses what the bridge learnt on it.
lab_service() {
	local out=$1
	shift
	local p
	for p in pA pB; do
		ip -n "$LAB_L" link set "$p" down && ip -n "$LAB_L" link set "$p" up
	done
	( clean_exec setsid nsenter --net=/run/netns/"$LAB_A" -- unshare --net -- \
		sh -c "$LAB_SVC_SETUP"'
shift; exec "$@"' sh "$LAB_A" "$@" ) </dev/null >"$out" 2>&1 &
	LAB_SVC_PID=$!
	disown "$LAB_SVC_PID" 2>/dev/null || true
}

# The service for the echo tests and the bench (python3): on port $1 it
# holds $2 MiB of private anonymous memory (a pattern, each page stamped
# with its offset; its hash kept) and rewrites the first
# $3 KiB of it continuously (one byte in each page, every millisecond).
# A connection says what it wants in its first 5 bytes: "ECHO\n" (every
# byte back) or "CHEK\n" (the memory outside the hot set is checked: "OK
# PID\n" or "BAD PID\n").  Writes "ready PID" to $4 when it listens.
LAB_SVC_PY='
import hashlib, mmap, os, socket, sys, threading, time
port, mib, hot_kib, ready = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
size, hot = mib << 20, hot_kib << 10
mem = mmap.mmap(-1, size, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
chunk = bytes(range(256)) * 4096
for off in range(0, size, 1 << 20):
    mem[off:off + (1 << 20)] = chunk
for off in range(0, size, 4096):
    mem[off:off + 8] = off.to_bytes(8, "little")
def cold_hash():
    return hashlib.sha1(memoryview(mem)[hot:]).hexdigest()
cold = cold_hash()
def writer():
    n = 0
    while True:
        n = (n + 1) & 0xff
        for off in range(0, hot, 4096):
            mem[off + 100] = n
        time.sleep(0.001)
def exact(c, n):
    b = b""
    while len(b) < n:
        r = c.recv(n - len(b))
        if not r:
            break
        b += r
    return b
def serve(c):
    with c:
        c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        what = exact(c, 5)
        if what == b"CHEK\n":
            c.sendall(b"%s %d\n" % (b"OK" if cold_hash() == cold else b"BAD", os.getpid()))
            return
        while what == b"ECHO\n":
            b = c.recv(65536)
            if not b:
                return
            c.sendall(b)
if hot:
    threading.Thread(target=writer, daemon=True).start()
l = socket.socket()
l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
l.bind(("0.0.0.0", port))
l.listen(8)
with open(ready + ".tmp", "w") as f:
    f.write("ready %d\n" % os.getpid())
os.rename(ready + ".tmp", ready)
while True:
    c, _ = l.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
'

# The client (python3, in the client namespace): connects to $1 port $2,
# sends a 64-byte message every millisecond, each made of its sequence
# number, and wants each back whole before the next (an echo).  Every
# 0.1 s it writes "answers N bytes B maxgap_ms G" to $3/status; when
# $3/stop exists it writes "OK answers N bytes B maxgap_ms G at_answer A"
# to $3/result, or "ERROR ..." as soon as anything goes wrong (a reset,
# an end, a byte that is not the one sent, 20 s without an answer).
LAB_CLIENT_PY='
import os, socket, sys, time
ip, port, d = sys.argv[1], int(sys.argv[2]), sys.argv[3]
def put(name, text):
    with open(d + "/" + name + ".tmp", "w") as f:
        f.write(text + "\n")
    os.rename(d + "/" + name + ".tmp", d + "/" + name)
n = got = 0
maxgap, at = 0.0, 0
try:
    s = socket.create_connection((ip, port), timeout=20)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    s.sendall(b"ECHO\n")
    last = tick = time.monotonic()
    while not os.path.exists(d + "/stop"):
        msg = n.to_bytes(8, "little") * 8
        s.sendall(msg)
        back = b""
        while len(back) < len(msg):
            r = s.recv(len(msg) - len(back))
            if not r:
                raise Exception("the connection ended after %d bytes" % (got + len(back)))
            back += r
        if back != msg:
            raise Exception("answer %d is not the bytes sent (%d bytes in)" % (n, got))
        got += len(back)
        n += 1
        now = time.monotonic()
        if now - last > maxgap:
            maxgap, at = now - last, n
        last = now
        if now - tick > 0.1:
            put("status", "answers %d bytes %d maxgap_ms %.1f" % (n, got, maxgap * 1000))
            tick = now
        time.sleep(0.001)
    put("result", "OK answers %d bytes %d maxgap_ms %.1f at_answer %d" % (n, got, maxgap * 1000, at))
except Exception as e:
    put("result", "ERROR %s: %s (answers %d bytes %d)" % (type(e).__name__, e, n, got))
'

# lab_client DIR PORT: the client, from the client namespace; LAB_CLIENT_PID.
lab_client() {
	local dir=$1 port=$2
	mkdir -p "$dir"
	( clean_exec nsenter --net=/run/netns/"$LAB_C" -- /usr/bin/python3 -c "$LAB_CLIENT_PY" "$LAB_SVC_IP" "$port" "$dir" ) \
		</dev/null >"$dir/out" 2>&1 &
	LAB_CLIENT_PID=$!
}

# lab_answers DIR: the client's answers so far (0 before its first status).
lab_answers() {
	local a
	a=$(sed -n 's/^answers \([0-9]*\) .*/\1/p' "$1/status" 2>/dev/null)
	echo "${a:-0}"
}

# lab_check PORT: a new connection from the client asks the service to check
# its memory; prints its answer ("OK PID").
lab_check() {
	lab_ns "$LAB_C" /usr/bin/python3 -c '
import socket, sys
s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=20)
s.sendall(b"CHEK\n")
print(s.makefile().readline().strip())' "$LAB_SVC_IP" "$1"
}

# How the final dump keeps the client's packets from the service while it
# moves (CR_MIGRATE_LOCK):
#   nftables  (default) cr's own lock, made inside the service's namespace
#   bridge    --network-lock skip, and cr-migrate's --lock-cmd drops the
#             service's frames on hostA's bridge (--unlock-cmd lifts it):
#             a lock of the caller's own, for a cr without that
#   none      --network-lock skip and nothing else (for measuring only)
LAB_LOCK_MODE=${CR_MIGRATE_LOCK:-nftables}
LAB_LOCK=crmig$$
lab_lock_cmd() {
	echo "nft add table bridge $LAB_LOCK; nft add chain bridge $LAB_LOCK hold '{ type filter hook forward priority -200; }';" \
		"nft add rule bridge $LAB_LOCK hold ether saddr $LAB_SVC_MAC drop; nft add rule bridge $LAB_LOCK hold ether daddr $LAB_SVC_MAC drop"
}

# The cr-migrate options of LAB_LOCK_MODE.
lab_lock_opts() {
	case $LAB_LOCK_MODE in
	bridge) LAB_LOCK_OPTS=(--network-lock skip --lock-cmd "$(lab_lock_cmd)" --unlock-cmd "nft delete table bridge $LAB_LOCK") ;;
	nftables) LAB_LOCK_OPTS=(--network-lock nftables) ;;
	none) LAB_LOCK_OPTS=(--network-lock skip) ;;
	*) echo "CR_MIGRATE_LOCK: bridge, nftables or none, not '$LAB_LOCK_MODE'" >&2; return 1 ;;
	esac
}

# lab_locked: the lock is on hostA's bridge.
lab_locked() {
	lab_ns "$LAB_A" nft list table bridge "$LAB_LOCK" >/dev/null 2>&1
}

# The veth of the service: its peer outside at dump, made on hostB as svc
# and put on hostB's bridge.
LAB_EXT_DUMP=(--dump-opt --external --dump-opt veth:eth0)
LAB_EXT_RESTORE=(--restore-opt --external --restore-opt veth:eth0=svc --bridge svc=br0 --announce)

# lab_migrate OUT PID [OPTIONS...]: scripts/cr-migrate of PID, run in
# hostA, to hostB, with OPTIONS (the veth's among them if wanted); its
# output in OUT, its status returned.
lab_migrate() {
	local out=$1 pid=$2
	shift 2
	lab_lock_opts || return 1
	( clean_exec nsenter --net=/run/netns/"$LAB_A" -- timeout -k 5 600 "$LAB_ROOT/scripts/cr-migrate" \
		--to "nsenter --net=/run/netns/$LAB_B" --address "$LAB_B_IP" "${LAB_LOCK_OPTS[@]}" "$@" "$pid" ) \
		</dev/null >"$out" 2>&1
}
