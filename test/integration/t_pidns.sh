#!/usr/bin/env bash
# t_pidns: nested pid namespaces. w_pidns (see its header) is a root in the
# harness's namespace, inits of ns1 > ns2 > ns3 nested three deep below it
# (clone(CLONE_NEWPID)) each with another process beside it (two of them
# with a second thread, one leading a process group in ns1, one leading a
# session in ns3), a zombie in ns3, and a process that unshared a pid
# namespace and forked its pid 1 and pid 2. It is dumped and restored twice
# (the second dump is of the restored tree); after each restore, seen from
# the harness, every process and thread must have the same NSpid, NStgid,
# NSpgid and NSsid lines (every level), parent, state, and the processes
# must share pid namespaces exactly as before (which ones are together,
# which one's children live in another). Then the trigger: each process
# compares what it sees from inside (getpid, getppid, gettid, /proc/self,
# /proc/self/status) with what it recorded, and the root passes with its
# pid and token.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/treelib.sh"

# One line per process: its namespaces (labelled in order of appearance, so
# that two snapshots of different namespaces with the same shape compare
# equal), the NS* lines of its status, and the NSpid line of each thread.
pidns_snapshot() {
	local idx pid _ f ns line key val t next=0
	local -A ns_label=()
	while read -r idx _ pid _; do
		line="$idx"
		for f in pid pid_for_children; do
			ns=$(readlink /proc/"$pid"/ns/"$f" 2>/dev/null) || ns=none
			if [ "$ns" != none ] && [ -z "${ns_label[$ns]:-}" ]; then
				ns_label[$ns]=ns$next
				next=$((next + 1))
			fi
			line+=" $f=${ns_label[$ns]:-none}"
		done
		while IFS=$'\t' read -r key val; do
			case $key in
			NSpid: | NStgid: | NSpgid: | NSsid:) line+=" $key${val//$'\t'/,}" ;;
			esac
		done 2>/dev/null < /proc/"$pid"/status
		for t in /proc/"$pid"/task/*; do
			while IFS=$'\t' read -r key val; do
				[ "$key" = NSpid: ] && line+=" thread:${val//$'\t'/,}"
			done 2>/dev/null < "$t"/status
		done
		echo "$line"
	done < "$WL_DIR/tree"
}

# The shape the workload claims is really there.
check_shape() {
	local snap=$1 line
	line=$(grep '^6 ' <<<"$snap")
	[[ $line =~ NSpid:[0-9]+,[0-9]+,[0-9]+,2( |$) ]] ||
		{ REASON="process 6 (ns3-child) is not pid 2 four levels deep: $line"; return 1; }
	[[ $line =~ NSsid:[0-9]+,[0-9]+,[0-9]+,2( |$) ]] ||
		{ REASON="process 6 (ns3-child) does not lead a session in ns3: $line"; return 1; }
	line=$(grep '^5 ' <<<"$snap")
	[[ $line =~ NSpid:[0-9]+,[0-9]+,[0-9]+,1( |$) ]] ||
		{ REASON="process 5 (init-ns3) is not pid 1 of the third nested namespace: $line"; return 1; }
	line=$(grep '^8 ' <<<"$snap")
	[[ $line =~ ^8\ pid=ns0\ pid_for_children=ns[1-9] ]] ||
		{ REASON="process 8 (unsharer) does not have its children's namespace apart: $line"; return 1; }
}

pidns_round() {
	local label=$1 img=$CASE_TMP/img-$1
	cr_dump "dump-$label" "$WL_PID" "$img" || return 1
	check_images "$img" || return 1
	tree_await_gone || { REASON="$label: after cr dump: $REASON"; return 1; }
	cr_restore_detached "restore-$label" "$img" || return 1
	tree_await_same "$BEFORE" "$label: /proc differs after restore" || return 1
	compare_snapshots "$BEFORE_NS" "$(pidns_snapshot)" "$label: pid namespaces differ after restore"
}

nested_pidns() {
	wl_start w_pidns || return 1
	tree_track || return 1
	BEFORE=$(tree_snapshot)
	tree_check_recorded "$BEFORE" || return 1
	BEFORE_NS=$(pidns_snapshot)
	check_shape "$BEFORE_NS" || return 1
	pidns_round round1 || return 1
	pidns_round round2 || return 1
	wl_trigger || return 1
	wl_expect_pass 20 || return 1
	wl_await_exit || return 1
	tree_await_gone 10 || { REASON="after the workload finished: $REASON"; return 1; }
}

run_case nested_pidns nested_pidns
finish_tests
