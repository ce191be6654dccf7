#!/usr/bin/env bash
# scripts/demo-migrate.sh — live migration between two hosts, shown in one
# command (make demo-migrate).
#
# Makes two "hosts" of network namespaces on a lan (scripts/migrate-lab.sh),
# starts a python3 echo service on hostA in a network namespace of its own
# (64 MiB of memory, 256 KiB of it rewritten all the time) and a client
# that sends it a 64-byte message every millisecond over one TCP
# connection, then moves the service to hostB with scripts/cr-migrate.  The
# client goes on over the same connection: it checks every byte and says
# its largest wait for an answer.  Exits non-zero if anything of that fails.
# Needs root; everything it makes is removed at the end.
set -u
cd "$(dirname "$0")/.." || exit 1
ROOT=$(pwd -P)
CR=$ROOT/build/cr
SUBREAPER=$ROOT/build/test/workloads/subreaper

die() {
	echo "demo-migrate: $*" >&2
	exit 1
}

[ "$(id -u)" -eq 0 ] || die "needs root (network namespaces, ptrace, exact pids)"
{ [ -x "$CR" ] && [ -x "$SUBREAPER" ]; } || die "build first: make cr workloads"
if [ "${CR_TEST_SUBREAPER:-}" != "$PPID" ]; then
	exec "$SUBREAPER" bash "$0" "$@"
fi
source "$ROOT/scripts/wide-pids.sh"
source "$ROOT/scripts/migrate-lab.sh"

DEMO=$(mktemp -d /tmp/cr-demo-migrate.XXXX)
svc=""
cli=""
cleanup() {
	[ -n "$cli" ] && kill -KILL "$cli" 2>/dev/null
	[ -n "$svc" ] && kill -KILL "$svc" 2>/dev/null
	lab_down
	rm -rf "$DEMO"
}
trap cleanup EXIT

step() {
	printf '\n== %s\n' "$*"
}

answers() {
	lab_answers "$DEMO/client"
}

# served N: N more answers within 15 s.
served() {
	local from
	from=$(answers)
	for _ in $(seq 300); do
		[ -e "$DEMO/client/result" ] && break
		[ "$(answers)" -ge $((from + $1)) ] && return 0
		sleep 0.05
	done
	die "the client is not served: $(cat "$DEMO/client/result" "$DEMO/client/out" 2>/dev/null)"
}

step "two hosts: network namespaces hostA-demo and hostB-demo on a lan bridge, and client-demo"
lab_up demo || die "could not make the namespaces (are some left from before? ip netns list)"
ip netns list | grep -- '-demo' | sed 's/^/   /'

step "a python3 echo service on hostA, in a network namespace of its own (10.77.0.10)"
lab_service "$DEMO/svc.out" python3 -c "$LAB_SVC_PY" 7000 64 256 "$DEMO/ready"
svc=$LAB_SVC_PID
for _ in $(seq 300); do [ -e "$DEMO/ready" ] && break; sleep 0.1; done
[ -e "$DEMO/ready" ] || die "the service did not start: $(cat "$DEMO/svc.out")"
echo "   pid $svc, 64 MiB of memory, rewriting 256 KiB of it every millisecond"
echo "   its eth0's peer: svc, on hostA's bridge br0"

step "a client in client-demo: a 64-byte message every millisecond, each echoed back"
lab_client "$DEMO/client" 7000
cli=$LAB_CLIENT_PID
served 200
echo "   $(cat "$DEMO/client/status")"

# How the demo keeps the client's packets away during the move (the lab's
# CR_MIGRATE_LOCK), as cr-migrate options.
lock_words() {
	case $LAB_LOCK_MODE in
	bridge) echo "--network-lock skip --lock-cmd '(drop its frames on hostA's bridge)' --unlock-cmd '...'" ;;
	none) echo "--network-lock skip" ;;
	*) echo "--network-lock $LAB_LOCK_MODE" ;;
	esac
}

step "cr-migrate: from hostA to hostB"
cat <<EOF
   \$ nsenter --net=/run/netns/hostA-demo scripts/cr-migrate $svc \\
       --to "nsenter --net=/run/netns/hostB-demo" --address $LAB_B_IP \\
       --dump-opt --external --dump-opt veth:eth0 \\
       --restore-opt --external --restore-opt veth:eth0=svc --bridge svc=br0 --announce \\
       $(lock_words)
EOF
lab_migrate "$DEMO/migrate.out" "$svc" --cr "$CR" "${LAB_EXT_DUMP[@]}" "${LAB_EXT_RESTORE[@]}"
status=$?
sed 's/^/   /' "$DEMO/migrate.out"
[ "$status" = 0 ] || die "cr-migrate failed"

step "the service now runs on hostB, the same pid, the same connection"
ip -n "$LAB_B" -o link show svc | grep -q " master br0 " || die "hostB has no svc on its bridge"
echo "   hostB has svc on its bridge br0; hostA has none"
ip -n "$LAB_A" link show svc >/dev/null 2>&1 && die "hostA still has the service's link"
served 500
echo "   $(cat "$DEMO/client/status")"
check=$(lab_check 7000)
[ "$check" = "OK $svc" ] || die "a new connection: '$check', not 'OK $svc'"
echo "   a new connection: the service (pid $svc) checks its memory: OK"

step "the client's verdict"
touch "$DEMO/client/stop"
for _ in $(seq 100); do [ -e "$DEMO/client/result" ] && break; sleep 0.1; done
result=$(cat "$DEMO/client/result" 2>/dev/null)
case $result in
OK*) ;;
*) die "the client says: $result" ;;
esac
echo "   no reset, every byte the one sent: $result"
echo "   (maxgap_ms: its longest wait for an answer, the move included)"
