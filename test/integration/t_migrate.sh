#!/usr/bin/env bash
# t_migrate: live migration with scripts/cr-migrate between two "hosts"
# (issue 16), in the lab of scripts/migrate-lab.sh: network namespaces
# hostA and hostB, each with a bridge on a lan bridge, and a client
# namespace.  The service runs in a network namespace of its own whose
# eth0 (10.77.0.10, one MAC) has its veth peer on hostA's bridge; cr-migrate
# runs in hostA (--to "nsenter --net=.../hostB"), the restore makes the peer
# on hostB (--external veth:eth0=svc) and cr-migrate bridges it there
# (--bridge svc=br0).  Pre-copy rounds are used when this cr has pre-dump
# (--rounds 3), else the final dump alone (--rounds 0).
#
# The final dump locks the connection with cr's nftables lock (made in the
# service's namespace); CR_MIGRATE_LOCK=bridge runs the cases with
# --network-lock skip and a lock of cr-migrate's caller instead
# (--lock-cmd drops the service's frames on hostA's bridge, --unlock-cmd
# lifts it; scripts/migrate-lab.sh).
#
#   echo_python   python3 (unmodified) serving a client that sends a 64-byte
#                 message every millisecond over one TCP connection and
#                 wants each echoed whole: after the move the service runs
#                 in a namespace whose peer is on hostB's bridge (hostA has
#                 none left), the client goes on over the same connection
#                 with no reset and every byte the one it sent (100 more
#                 answers), a new connection is served by the same pid, whose
#                 memory outside its hot set is what it was; the client's
#                 largest gap between answers is printed, and so are each
#                 round's size and time, the freeze and the total.  The image
#                 directory on hostB is gone (no --keep-images).
#   redis         redis-server (unmodified): a key SET over a connection
#                 before the move is read back over that same connection
#                 and over a new one (redis-cli) after it, INCR goes on.
#   fails_early   the destination's page server cannot listen (an address
#                 hostB does not have): cr-migrate fails before any dump;
#                 the service still runs on hostA, the client is still
#                 served (no error), and the destination directory is gone.
#   fails_between the page server of round 2 fails (a cr on hostB that
#                 refuses it; with pre-dump only): cr-migrate fails after
#                 round 1; the keeper of the write tracking is gone, the
#                 service runs on hostA, served, and no directory is left.
#   fails_final   the final dump is refused (no --external for the veth):
#                 cr-migrate fails, any lock is lifted, the service runs on
#                 hostA and the client is still served; no directory left.
#   restore_fails the restore there is refused (no HOSTNAME for the veth):
#                 cr-migrate fails saying where the images are; they are
#                 kept, and restoring them by hand there brings the service
#                 back to the same client connection, every byte intact;
#                 the lock stays on hostA until the cr unlock it names.
#   signed_encrypted  every round signed and encrypted (--sign, --encrypt;
#                 the destination checks with the public key and the image
#                 key), the service's namespace bound on hostA (ip netns
#                 attach, as a container runtime keeps it, so the lock
#                 table in it outlives the tree; hostB does not see it, as
#                 another host would not): after the move no cr lock
#                 table is left in hostA nor in that namespace (cr-migrate
#                 says it deleted it); on hostB every round has its
#                 signature and its page data is encrypted (its flag, and
#                 none of the service's memory pattern in it), cr show
#                 --verify --decrypt there verifies the whole chain; the
#                 service goes on as in echo_python.
#   signed_refused  the same keys, but the page server of the final round
#                 checks with another public key: it refuses the round
#                 while the tree is frozen, the final dump fails, and the
#                 service runs on hostA, served, with no lock left.
#   changed_there   signed: a byte of round 1's page data on hostB changed
#                 after its page server accepted it (right before the
#                 restore): the restore refuses the chain naming that
#                 round, no process is made, cr-migrate keeps the images
#                 there and prints the cr unlock for hostA, which works.
#   pdeath_root   the service run by `setpriv --pdeathsig TERM`: cr restore
#                 --detach on hostB is refused (its exit would send the
#                 signal), so cr-migrate restores without --detach and cr
#                 restore stays the service's parent there; the client is
#                 served on, and killing that cr restore kills the service
#                 (its parent-death signal).  (cr-migrate once left such a
#                 service dead: the final dump killed it, then the restore
#                 was refused.)
#
# Every case that moves the service checks that no cr lock table is left
# in hostA; every case that fails checks that none is in hostA nor in the
# service's namespace.
source "$(dirname "$0")/lib.sh"
source "$ROOT/scripts/migrate-lab.sh"

PORT=7000
ROUNDS=3   # every case that depends on pre-copy rounds checks they happened

# ---- helpers ------------------------------------------------------------------

# lab_case ID: the lab for one case (removed by kill_lab at the case's end).
lab_case() {
	lab_up "m$$$1" || { REASON="the lab could not be made"; return 1; }
	LAB_IDS+=("m$$$1")
}

LAB_IDS=()
# The labs go too when the script ends early (lib.sh's cleanup then).
labs_then_cleanup() {
	local status=$?
	kill_labs
	(exit "$status")
	cleanup
}
trap labs_then_cleanup EXIT
LAB_SVC_NS=()   # namespaces a case bound the service's to (ip netns attach)
kill_labs() {
	local id
	for id in "${LAB_SVC_NS[@]+"${LAB_SVC_NS[@]}"}"; do
		ip netns del "$id" 2>/dev/null
	done
	LAB_SVC_NS=()
	for id in "${LAB_IDS[@]+"${LAB_IDS[@]}"}"; do
		LAB_A=hostA-$id LAB_B=hostB-$id LAB_L=lan-$id LAB_C=client-$id
		lab_down
	done
	LAB_IDS=()
}

# svc_echo MIB HOT_KIB [WRAPPER...]: the python3 echo service (run by
# WRAPPER, which execs it); WL_PID.
svc_echo() {
	local out=$CASE_TMP/svc.out mib=$1 hot=$2
	shift 2
	CASE_LOGS+=("$out")
	lab_service "$out" "$@" /usr/bin/python3 -c "$LAB_SVC_PY" "$PORT" "$mib" "$hot" "$CASE_TMP/ready"
	track_pid "$LAB_SVC_PID"
	wait_until 20 test -e "$CASE_TMP/ready" || { REASON="the service did not start: $(tail -n 3 "$out")"; return 1; }
	read -r _ WL_PID < "$CASE_TMP/ready"
	WL_EXE=$(readlink /proc/"$WL_PID"/exe)
	SVC_NET=$(net_cookie "$WL_PID")
}

# The cookie of the network namespace of PID (SO_NETNS_COOKIE: never
# reused, unlike the inode numbers of namespaces).
net_cookie() {
	nsenter -t "$1" -n /usr/bin/python3 -c 'import socket; print(socket.socket().getsockopt(socket.SOL_SOCKET, 71, 8).hex())'
}

# client_start: the echo client, serving (20 answers) before it returns.
client_start() {
	CLI=$CASE_TMP/client
	CLI_MARK=0   # a new client: the mark of the case before is not its own
	lab_client "$CLI" "$PORT"
	track_pid "$LAB_CLIENT_PID"
	CASE_LOGS+=("$CLI/out" "$CLI/status" "$CLI/result")
	wait_until 10 answered_more 20 || { REASON="the client is not served: $(cat "$CLI/out" "$CLI/result" 2>/dev/null)"; return 1; }
}

# answered_more N: the client has N answers more than CLI_MARK (0).
answered_more() {
	[ ! -e "$CLI/result" ] && [ "$(lab_answers "$CLI")" -ge $((${CLI_MARK:-0} + $1)) ]
}

# client_goes_on: 100 more answers, no error.
client_goes_on() {
	CLI_MARK=$(lab_answers "$CLI")
	wait_until 15 answered_more 100 ||
		{ REASON="the client is not served on: $(cat "$CLI/result" "$CLI/status" 2>/dev/null)"; return 1; }
}

# client_result: stops the client; its result must be OK, with every byte
# of every answer (64 each); prints the largest gap.
client_result() {
	local r n b
	touch "$CLI/stop"
	wait_until 10 test -e "$CLI/result" || { REASON="the client did not stop"; return 1; }
	r=$(cat "$CLI/result")
	case $r in
	OK*) ;;
	*) REASON="the client says: $r"; return 1 ;;
	esac
	n=$(sed -n 's/.* answers \([0-9]*\) .*/\1/p' <<<"$r")
	b=$(sed -n 's/.* bytes \([0-9]*\) .*/\1/p' <<<"$r")
	[ "$b" = $((n * 64)) ] || { REASON="the client got $b bytes for $n answers"; return 1; }
	echo "# $CASE: client: $r"
}

# migrate LABEL [OPTIONS...]: cr-migrate of WL_PID from hostA to hostB
# (lab_migrate); MIG_OUT, MIG_STATUS.
migrate() {
	local label=$1 f
	shift
	MIG_OUT=$CASE_TMP/$label.out
	CASE_LOGS+=("$MIG_OUT")
	lab_migrate "$MIG_OUT" "$WL_PID" --cr "$CR" --rounds "$ROUNDS" --dir-src "$CASE_TMP/src-$label" "$@"
	MIG_STATUS=$?
	for f in "$CASE_TMP/src-$label"/*; do
		[ -f "$f" ] && CASE_LOGS+=("$f")
	done
	# A dump that waited out its wait for the killed tree (lib.sh, cr_run).
	if grep -qs "threads to reap after .* ms: gave up waiting" "$MIG_OUT" "$CASE_TMP/src-$label"/*; then
		echo "(t_migrate: a dump stalled waiting for the killed tree)" >> "$MIG_OUT"
		[ "$MIG_STATUS" = 0 ] && MIG_STATUS=98
	fi
	return "$MIG_STATUS"
}

# moved: WL_PID runs free in a new namespace whose peer is on hostB's
# bridge; hostA has no svc and no lock left.
moved() {
	wait_until 10 running_free "$WL_PID" "$WL_EXE" || { REASON="after the move: $(describe_pid "$WL_PID")"; return 1; }
	[ "$(net_cookie "$WL_PID")" != "$SVC_NET" ] || { REASON="pid $WL_PID is in its old namespace"; return 1; }
	ip -n "$LAB_B" -o link show svc 2>/dev/null | grep -q " master br0 " ||
		{ REASON="hostB has no svc on br0: $(ip -n "$LAB_B" -o link show svc 2>&1)"; return 1; }
	wait_until 5 no_svc_on_a || { REASON="hostA still has svc"; return 1; }
	! lab_locked ||
		{ REASON="the lock is still on hostA's bridge"; return 1; }
	no_cr_lock "--net=/run/netns/$LAB_A" hostA
}

# cr_lock_tables NSENTER_OPT: cr's lock tables (cr_tcp_*) in that network
# namespace (--net=PATH, or -t PID -n).
cr_lock_tables() {
	# shellcheck disable=SC2086
	nsenter $1 -- nft list tables 2>/dev/null | grep -o 'cr_tcp_[0-9]*'
}

# no_cr_lock NSENTER_OPT WHAT: none there.
no_cr_lock() {
	local t
	t=$(cr_lock_tables "$1" | tr '\n' ' ')
	[ -z "$t" ] || { REASON="cr's lock table $t is left in $2"; return 1; }
}

no_svc_on_a() {
	! ip -n "$LAB_A" link show svc >/dev/null 2>&1
}

# stayed: the migration failed and WL_PID runs on hostA as before, the
# lock lifted, nothing left in DIR on the destination.
stayed() {
	local dir=$1
	[ "$MIG_STATUS" != 0 ] || { REASON="cr-migrate succeeded"; return 1; }
	grep -qF "pid $WL_PID still runs here" "$MIG_OUT" || { REASON="cr-migrate does not say the tree runs on: $(tail -n 1 "$MIG_OUT")"; return 1; }
	running_free "$WL_PID" "$WL_EXE" || { REASON="after the failed migration: $(describe_pid "$WL_PID")"; return 1; }
	[ "$(net_cookie "$WL_PID")" = "$SVC_NET" ] || { REASON="pid $WL_PID changed namespace"; return 1; }
	[ ! -e "$dir" ] || { REASON="$dir is left: $(ls -R "$dir" | head -n 5 | tr '\n' ' ')"; return 1; }
	! lab_locked ||
		{ REASON="the lock is still on hostA's bridge"; return 1; }
	no_cr_lock "--net=/run/netns/$LAB_A" hostA || return 1
	no_cr_lock "-t $WL_PID -n" "the service's namespace" || return 1
	[ -z "$(ip -n "$LAB_B" link show svc 2>/dev/null)" ] || { REASON="hostB has a svc"; return 1; }
}

# ---- cases --------------------------------------------------------------------

# served_after_move: moved; the client goes on, a new connection is served
# by the same pid with its cold memory as it was, and the client got every
# byte; cr-migrate's lines are printed.
served_after_move() {
	local check
	moved || return 1
	client_goes_on || return 1
	check=$(lab_check "$PORT") || { REASON="a new connection is not served"; return 1; }
	[ "$check" = "OK $WL_PID" ] || { REASON="the service's check says '$check', not 'OK $WL_PID'"; return 1; }
	client_result || return 1
	sed -n "s/^cr-migrate: /# $CASE: /p" "$MIG_OUT"
}

echo_python() {
	lab_case 1 || return 1
	svc_echo 16 256 || return 1
	client_start || return 1
	migrate mig --dir-dst "$CASE_TMP/dst" "${LAB_EXT_DUMP[@]}" "${LAB_EXT_RESTORE[@]}" ||
		{ REASON="cr-migrate failed ($MIG_STATUS): $(tail -n 1 "$MIG_OUT")"; return 1; }
	grep -q "^cr-migrate: total .* frozen [0-9.]* ms$" "$MIG_OUT" || { REASON="no total line: $(tail -n 1 "$MIG_OUT")"; return 1; }
	grep -q "^cr-migrate: final dump: .* sent in [0-9.]* s, frozen [0-9.]* ms$" "$MIG_OUT" ||
		{ REASON="no final round line with its freeze"; return 1; }
	grep -q "^cr-migrate: round 1: [0-9]* pages copied" "$MIG_OUT" ||
		{ REASON="no pre-copy round 1 line"; return 1; }
	served_after_move || return 1
	[ ! -e "$CASE_TMP/dst" ] || { REASON="the images were left in $CASE_TMP/dst on hostB"; return 1; }
}

# The service under setpriv --pdeathsig TERM: moved, its parent on hostB
# is the cr restore that made it (--detach would send it SIGTERM); killing
# that cr restore sends it.
pdeath_root() {
	local parent
	lab_case 10 || return 1
	svc_echo 16 256 setpriv --pdeathsig TERM || return 1
	client_start || return 1
	migrate mig --dir-dst "$CASE_TMP/dst" "${LAB_EXT_DUMP[@]}" "${LAB_EXT_RESTORE[@]}" ||
		{ REASON="cr-migrate failed ($MIG_STATUS): $(tail -n 3 "$MIG_OUT" | tr '\n' ' ')"; return 1; }
	moved || return 1
	client_goes_on || return 1
	parent=$(status_field "$WL_PID" PPid)
	[ "$(readlink /proc/"$parent"/exe)" = "$(readlink -f "$CR")" ] ||
		{ REASON="the service's parent is pid $parent ($(cat /proc/"$parent"/comm)), not cr restore"; return 1; }
	kill -KILL "$parent"
	wait_until 5 pid_gone "$WL_PID" ||
		{ REASON="the service outlived its parent's death: $(describe_pid "$WL_PID")"; return 1; }
}

# A redis connection held by python3 in the client namespace: SET, then
# (on CASE_TMP/go) GET and INCR over the same connection.
REDIS_CLIENT='
import os, socket, sys, time
d, token = sys.argv[1], sys.argv[2]
s = socket.create_connection(("10.77.0.10", 6379), timeout=30)
f = s.makefile("rb")
def cmd(*a):
    s.sendall(b"*%d\r\n" % len(a) + b"".join(b"$%d\r\n%s\r\n" % (len(x), x) for x in (w.encode() for w in a)))
    line = f.readline()
    if line.startswith(b"$"):
        return f.readline().strip().decode()
    return line[1:].strip().decode()
out = [cmd("SET", "token", token), cmd("INCR", "n"), cmd("INCR", "n")]
open(d + "/before", "w").write(" ".join(out) + "\n")
while not os.path.exists(d + "/go"):
    time.sleep(0.02)
out = [cmd("GET", "token"), cmd("INCR", "n")]
open(d + "/after", "w").write(" ".join(out) + "\n")
'

redis() {
	local token got
	lab_case 2 || return 1
	CASE_LOGS+=("$CASE_TMP/redis.out" "$CASE_TMP/redis.out.err" "$CASE_TMP/rc.out")
	lab_service "$CASE_TMP/redis.out" redis-server --port 6379 --bind 0.0.0.0 \
		--protected-mode no --save '' --appendonly no --daemonize no
	WL_PID=$LAB_SVC_PID
	wait_until 10 running_free "$WL_PID" "$(readlink -f "$(command -v redis-server)")" ||
		{ REASON="redis-server did not start: $(tail -n 3 "$CASE_TMP/redis.out")"; return 1; }
	track_pid "$WL_PID"
	WL_EXE=$(readlink /proc/"$WL_PID"/exe)
	SVC_NET=$(net_cookie "$WL_PID")
	wait_until 10 lab_ns "$LAB_C" redis-cli -h "$LAB_SVC_IP" ping >/dev/null ||
		{ REASON="redis-server does not answer"; return 1; }
	token=$(od -An -N8 -tx8 /dev/urandom | tr -d ' ')
	( clean_exec nsenter --net=/run/netns/"$LAB_C" -- /usr/bin/python3 -c "$REDIS_CLIENT" "$CASE_TMP" "$token" ) \
		</dev/null >"$CASE_TMP/rc.out" 2>&1 &
	track_pid $!
	wait_until 10 test -s "$CASE_TMP/before" || { REASON="the redis client did not SET"; return 1; }
	[ "$(cat "$CASE_TMP/before")" = "OK 1 2" ] || { REASON="before: $(cat "$CASE_TMP/before")"; return 1; }
	migrate mig "${LAB_EXT_DUMP[@]}" "${LAB_EXT_RESTORE[@]}" ||
		{ REASON="cr-migrate failed ($MIG_STATUS): $(tail -n 1 "$MIG_OUT")"; return 1; }
	moved || return 1
	touch "$CASE_TMP/go"
	wait_until 15 test -s "$CASE_TMP/after" || { REASON="no answer over the old connection: $(cat "$CASE_TMP/rc.out")"; return 1; }
	[ "$(cat "$CASE_TMP/after")" = "$token 3" ] ||
		{ REASON="over the old connection: '$(cat "$CASE_TMP/after")', not '$token 3'"; return 1; }
	got=$(lab_ns "$LAB_C" redis-cli -h "$LAB_SVC_IP" get token)
	[ "$got" = "$token" ] || { REASON="a new connection reads '$got', not '$token'"; return 1; }
	got=$(lab_ns "$LAB_C" redis-cli -h "$LAB_SVC_IP" incr n)
	[ "$got" = 4 ] || { REASON="INCR over a new connection gives '$got', not 4"; return 1; }
}

fails_early() {
	lab_case 3 || return 1
	svc_echo 8 64 || return 1
	client_start || return 1
	migrate mig --address 10.77.0.99 --dir-dst "$CASE_TMP/dst" "${LAB_EXT_DUMP[@]}" "${LAB_EXT_RESTORE[@]}"
	grep -q "page server .* did not start" "$MIG_OUT" || { REASON="cr-migrate does not say the page server failed: $(tail -n 3 "$MIG_OUT")"; return 1; }
	stayed "$CASE_TMP/dst" || return 1
	client_goes_on || return 1
	client_result
}

fails_between() {
	local keeper
	lab_case 6 || return 1
	svc_echo 8 64 || return 1
	client_start || return 1
	printf '#!/bin/sh\nif [ "$1" = page-server ]; then\n\tn=$(cat %s/n 2>/dev/null || echo 0)\n\techo $((n + 1)) >%s/n\n\t[ "$n" -ge 1 ] && { echo "refused on purpose"; exit 1; }\nfi\nexec %s "$@"\n' \
		"$CASE_TMP" "$CASE_TMP" "$CR" >"$CASE_TMP/cr-wrap"
	chmod +x "$CASE_TMP/cr-wrap"
	migrate mig --dst-cr "$CASE_TMP/cr-wrap" --dir-dst "$CASE_TMP/dst" "${LAB_EXT_DUMP[@]}" "${LAB_EXT_RESTORE[@]}"
	grep -q "^cr-migrate: round 1: " "$MIG_OUT" || { REASON="no round 1: $(tail -n 2 "$MIG_OUT")"; return 1; }
	grep -q "page server for .*/dst/2 did not start: refused on purpose" "$MIG_OUT" ||
		{ REASON="cr-migrate does not say round 2's page server failed: $(tail -n 3 "$MIG_OUT")"; return 1; }
	keeper=$(sed -n 's/.*write tracking kept by pid \([0-9]*\).*/\1/p' "$CASE_TMP/src-mig/pre-dump-1.out")
	[ -n "$keeper" ] || { REASON="round 1 names no keeper"; return 1; }
	track_pid "$keeper"
	wait_until 5 pid_gone "$keeper" || { REASON="the keeper (pid $keeper) still runs"; return 1; }
	stayed "$CASE_TMP/dst" || return 1
	client_goes_on || return 1
	client_result
}

fails_final() {
	lab_case 4 || return 1
	svc_echo 8 64 || return 1
	client_start || return 1
	migrate mig --dir-dst "$CASE_TMP/dst" "${LAB_EXT_RESTORE[@]}"
	grep -qF "final cr dump failed" "$MIG_OUT" && grep -qF -- "--external veth:eth0" "$MIG_OUT" ||
		{ REASON="cr-migrate does not say the final dump was refused: $(tail -n 3 "$MIG_OUT")"; return 1; }
	stayed "$CASE_TMP/dst" || return 1
	client_goes_on || return 1
	client_result
}

restore_fails() {
	local unlock_cmd keep
	lab_case 5 || return 1
	svc_echo 8 64 || return 1
	client_start || return 1
	migrate mig --dir-dst "$CASE_TMP/dst" "${LAB_EXT_DUMP[@]}" --restore-opt --external --restore-opt veth:eth0
	[ "$MIG_STATUS" != 0 ] || { REASON="cr-migrate succeeded"; return 1; }
	grep -qF "images stay on the destination in $CASE_TMP/dst/final" "$MIG_OUT" ||
		{ REASON="cr-migrate does not say where the images are: $(tail -n 3 "$MIG_OUT")"; return 1; }
	wait_until 5 pid_gone "$WL_PID" || { REASON="pid $WL_PID still exists after the final dump"; return 1; }
	[ -e "$CASE_TMP/dst/final/inventory.img" ] || { REASON="the final images are gone"; return 1; }
	unlock_cmd=$(sed -n 's/^cr-migrate:   here: //p' "$MIG_OUT")
	[ "$LAB_LOCK_MODE" != nftables ] || [ -n "$unlock_cmd" ] ||
		{ REASON="cr-migrate does not say how to unlock here: $(tail -n 3 "$MIG_OUT")"; return 1; }
	CASE_LOGS+=("$CASE_TMP/restore.err")
	( clean_exec nsenter --net=/run/netns/"$LAB_B" -- "$CR" restore -D "$CASE_TMP/dst/final" -d --external veth:eth0=svc ) \
		</dev/null >"$CASE_TMP/restore.out" 2>"$CASE_TMP/restore.err" ||
		{ REASON="the restore by hand failed: $(last_line "$CASE_TMP/restore.err")"; return 1; }
	ip -n "$LAB_B" link set svc master br0 up
	if [ -n "$unlock_cmd" ]; then
		# shellcheck disable=SC2086
		nsenter --net=/run/netns/"$LAB_A" -- $unlock_cmd >"$CASE_TMP/unlock.out" 2>&1 ||
			{ REASON="$unlock_cmd failed: $(tail -n 1 "$CASE_TMP/unlock.out")"; return 1; }
		keep=$(sed 's/.* -D \([^ ]*\).*/\1/' <<<"$unlock_cmd")
		[ -e "$keep/inventory.img" ] || { REASON="no record of the lock in $keep"; return 1; }
		rm -rf -- "$(dirname "$keep")"
	fi
	moved || return 1
	client_goes_on || return 1
	client_result
}

# keys: a signing key (sk, sk.pub) and an image key (ik), in CASE_TMP.
keys() {
	if ! "$CR" keygen "$CASE_TMP/sk" >/dev/null || ! "$CR" keygen --secret "$CASE_TMP/ik" >/dev/null ||
		! "$CR" keygen "$CASE_TMP/other" >/dev/null; then
		REASON="cr keygen failed"
		return 1
	fi
}

# The service's memory pattern (LAB_SVC_PY): 64 bytes of it, in no page
# data that is encrypted.
no_plain_pages() {
	/usr/bin/python3 - "$@" <<'PY'
import sys
marker = bytes(range(120, 184))   # never written by the service (its hot byte is 100)
for f in sys.argv[1:]:
    data = open(f, "rb").read()
    if data[8] & 1 != 1:
        sys.exit("%s is not encrypted (header flags %d)" % (f, data[8]))
    if marker in data:
        sys.exit("%s holds the service's memory in the clear" % f)
PY
}

signed_encrypted() {
	local r rounds=0 out ns=svc-m$$7
	lab_case 7 || return 1
	keys || return 1
	svc_echo 16 256 || return 1
	ip netns attach "$ns" "$WL_PID" || { REASON="ip netns attach $ns failed"; return 1; }
	LAB_SVC_NS+=("$ns")
	client_start || return 1
	# hostB as another host would be: the namespaces bound here are not
	# under its /run/netns (else the restore there deletes the lock in the
	# dumped namespace itself).
	printf '#!/bin/sh\nexec nsenter --net=/run/netns/%s -- unshare -m --propagation private -- sh -c %s sh "$@"\n' \
		"$LAB_B" "'mount -t tmpfs cr-lab /run/netns && exec \"\$@\"'" >"$CASE_TMP/on-hostB"
	chmod +x "$CASE_TMP/on-hostB"
	migrate mig --to "$CASE_TMP/on-hostB" --dir-dst "$CASE_TMP/dst" --keep-images --sign "$CASE_TMP/sk" \
		--encrypt "$CASE_TMP/ik" "${LAB_EXT_DUMP[@]}" "${LAB_EXT_RESTORE[@]}" ||
		{ REASON="cr-migrate failed ($MIG_STATUS): $(tail -n 1 "$MIG_OUT")"; return 1; }
	# Nothing of the lock on this side: hostA and the namespace the tree left.
	no_cr_lock "--net=/run/netns/$LAB_A" hostA || return 1
	no_cr_lock "--net=/run/netns/$ns" "the service's old namespace ($ns)" || return 1
	[ "$LAB_LOCK_MODE" != nftables ] || grep -q "^cr-migrate: lock deleted here: table inet cr_tcp_" "$MIG_OUT" ||
		{ REASON="cr-migrate does not say it deleted the lock here"; return 1; }
	for r in "$CASE_TMP"/dst/*/; do
		[ -e "$r/inventory.sig" ] || { REASON="round $r has no signature"; return 1; }
		out=$(no_plain_pages "$r"/pages-*.img 2>&1) || { REASON=$out; return 1; }
		rounds=$((rounds + 1))
	done
	if [ ! -d "$CASE_TMP/dst/final" ] || [ ! -d "$CASE_TMP/dst/1" ]; then
		REASON="hostB holds $rounds rounds: $(echo "$CASE_TMP"/dst/*)"
		return 1
	fi
	CASE_LOGS+=("$CASE_TMP/show.out" "$CASE_TMP/show.err")
	nsenter --net=/run/netns/"$LAB_B" -- "$CR" show "$CASE_TMP/dst/final" --verify "$CASE_TMP/sk.pub" \
		--decrypt "$CASE_TMP/ik" >"$CASE_TMP/show.out" 2>"$CASE_TMP/show.err" ||
		{ REASON="cr show --verify of the chain on hostB failed: $(last_line "$CASE_TMP/show.err")"; return 1; }
	grep -q "signed  *yes.*: verified" "$CASE_TMP/show.out" || { REASON="cr show does not say verified"; return 1; }
	# The runtime tears the old namespace down (its veth goes with it).
	ip netns del "$ns"
	served_after_move
}

changed_there() {
	local unlock_cmd
	lab_case 9 || return 1
	keys || return 1
	svc_echo 8 64 || return 1
	client_start || return 1
	# Round 1's page data changes on hostB once the rounds are there.
	# (one bit flipped: a byte written there may be the byte already there)
	printf '#!/bin/sh\nif [ "$1" = restore ]; then\n\tpython3 -c %s %s 4096\nfi\nexec %s "$@"\n' \
		"'import sys; p, at = sys.argv[1], int(sys.argv[2]); d = bytearray(open(p, \"rb\").read()); d[at] ^= 1; open(p, \"wb\").write(d)'" \
		"$CASE_TMP/dst/1/pages-$WL_PID.img" "$CR" >"$CASE_TMP/cr-wrap"
	chmod +x "$CASE_TMP/cr-wrap"
	migrate mig --dst-cr "$CASE_TMP/cr-wrap" --dir-dst "$CASE_TMP/dst" --sign "$CASE_TMP/sk" \
		"${LAB_EXT_DUMP[@]}" "${LAB_EXT_RESTORE[@]}"
	[ "$MIG_STATUS" != 0 ] || { REASON="cr-migrate succeeded"; return 1; }
	grep -q "cr restore on the destination failed: .*$CASE_TMP/dst/final/\\.\\./.*/1: pages-$WL_PID.img: does not match the hash" \
		"$MIG_OUT" || { REASON="cr-migrate does not say the restore refused round 1: $(tail -n 3 "$MIG_OUT")"; return 1; }
	! proc_alive "$WL_PID" || { REASON="pid $WL_PID exists: $(describe_pid "$WL_PID")"; return 1; }
	[ -e "$CASE_TMP/dst/final/inventory.img" ] && [ -e "$CASE_TMP/dst/1/inventory.img" ] ||
		{ REASON="the images on hostB are gone"; return 1; }
	unlock_cmd=$(sed -n 's/^cr-migrate:   here: //p' "$MIG_OUT")
	[ -n "$unlock_cmd" ] || { REASON="cr-migrate does not say how to unlock here"; return 1; }
	# shellcheck disable=SC2086
	nsenter --net=/run/netns/"$LAB_A" -- $unlock_cmd >"$CASE_TMP/unlock.out" 2>&1 ||
		{ REASON="$unlock_cmd failed: $(tail -n 1 "$CASE_TMP/unlock.out")"; return 1; }
	rm -rf -- "$(dirname "$(sed 's/.* -D \([^ ]*\).*/\1/' <<<"$unlock_cmd")")"
	no_cr_lock "--net=/run/netns/$LAB_A" hostA
}

signed_refused() {
	lab_case 8 || return 1
	keys || return 1
	svc_echo 8 64 || return 1
	client_start || return 1
	# The page server of the final round checks with another key.
	printf '#!/bin/sh\ncase "$1 $3" in "page-server "*/final) exec %s "$@" --verify %s ;; esac\nexec %s "$@"\n' \
		"$CR" "$CASE_TMP/other.pub" "$CR" >"$CASE_TMP/cr-wrap"
	chmod +x "$CASE_TMP/cr-wrap"
	migrate mig --dst-cr "$CASE_TMP/cr-wrap" --dir-dst "$CASE_TMP/dst" --sign "$CASE_TMP/sk" --encrypt "$CASE_TMP/ik" \
		"${LAB_EXT_DUMP[@]}" "${LAB_EXT_RESTORE[@]}"
	grep -qF "final cr dump failed" "$MIG_OUT" && grep -q "refused the dump: --verify .*not with the key given" "$MIG_OUT" ||
		{ REASON="cr-migrate does not say the final round was refused: $(tail -n 3 "$MIG_OUT")"; return 1; }
	stayed "$CASE_TMP/dst" || return 1
	client_goes_on || return 1
	client_result
}

run_case echo_python echo_python
kill_labs
run_case redis redis
kill_labs
run_case fails_early fails_early
kill_labs
run_case fails_between fails_between
kill_labs
run_case fails_final fails_final
kill_labs
run_case restore_fails restore_fails
kill_labs
run_case signed_encrypted signed_encrypted
kill_labs
run_case signed_refused signed_refused
kill_labs
run_case changed_there changed_there
kill_labs
run_case pdeath_root pdeath_root
kill_labs
finish_tests
