#!/usr/bin/env bash
# t_killsafe: killing cr dump at any moment, whole or only its worker, never
# costs a process nor damages one.
#   tree_kills   w_tree (threads, a stopped child, zombies) dumped again and
#                again, with and without --leave-running; each dump is
#                SIGKILLed after 0-20 ms: its process group (cr dump and its
#                worker), or only the worker.
#   busy_kills   the same with w_busy, two threads writing memory without a
#                pause (so a kill lands while they run injected code).
#   guardian_kills  w_busy again, the worker killed together with the
#                guardian it started (in a session of its own); then another
#                cr dump (of a sleep) must put back what the dead one left.
#   guardian_only_kills  w_busy, only the guardian killed (found without a
#                pause, killed at a random moment of its life): the dump goes on
#                without it and ends as it would have (complete, or the tree
#                let go).
# After each kill, within 10 s: every process of the tree is alive, untraced,
# stopped exactly when it was stopped before, every thread with its signal
# mask as before (/proc/PID/task/TID/status; for a running one); or, if the dump had completed
# without --leave-running, the tree is gone and its images restore it. At the
# end the workload checks itself (memory, threads, robust mutexes, ...).
# A round that finds damage is counted, the workload started afresh, and the
# case fails with the count: "K kills, D damaged (P processes)".
source "$(dirname "$0")/lib.sh"

ROUNDS=${CR_KILLSAFE_ROUNDS:-60}

# Every pid of the workload's tree (w_tree's tree file, else the root and
# its descendants), one per line.
ks_pids() {
	if [ -s "$WL_DIR/tree" ]; then
		awk '{ print $3 }' "$WL_DIR/tree"
	else
		descendants "$WL_PID"
	fi
}

# One line per thread: pid, tid, stopped/zombie/traced/running, tracer and
# blocked signals.  Only builtins: called in a tight loop.
ks_snapshot() {
	local pid t key val state tracer blk
	for pid in $KS_PIDS; do
		[ -e /proc/"$pid" ] || { echo "$pid gone"; continue; }
		for t in /proc/"$pid"/task/*; do
			state=? tracer=? blk=?
			while read -r key val _; do
				case $key in
				State:) case $val in T | t | Z | X) state=$val ;; *) state=run ;; esac ;;
				TracerPid:) tracer=$val ;;
				SigBlk:) blk=$val ;;
				esac
			done 2>/dev/null < "$t/status"
			# A task stopped inside sigsuspend shows its temporary mask
			# until cr has run it once, then its own: stopped tasks are
			# compared by state (w_tree's S checks itself when continued).
			# A zombie's mask is nobody's (a restored one has all blocked).
			[ "$state" = T ] || [ "$state" = Z ] && blk=-
			echo "$pid ${t##*/} $state tracer=$tracer blk=$blk"
		done
	done
}

ks_same() {
	[ "$(ks_snapshot)" = "$KS_BEFORE" ]
}

ks_all_gone() {
	local pid
	for pid in $KS_PIDS; do
		pid_gone "$pid" || return 1
	done
}

# The dump's pids (cr dump, its worker, its guardian) are all gone.
ks_cr_gone() {
	local p
	for p in "$@"; do
		[ /proc/"$p"/exe -ef "$CR" ] && return 1
	done
	return 0
}

# Every cr process below the dumper and in its session: cr dump, the worker,
# whatever they started.
ks_cr_pids() {
	local p
	for p in /proc/[0-9]*; do
		p=${p#/proc/}
		[ /proc/"$p"/exe -ef "$CR" ] && echo "$p"
	done
}

# Starts a fresh workload and records its tree as it is before any dump.
ks_start() {
	wl_start "$@" || return 1
	[ -s "$WL_DIR/tree" ] && tree_track
	KS_PIDS=$(ks_pids | sort -n | tr '\n' ' ')
	wait_until 5 ks_settled || true
	KS_BEFORE=$(ks_snapshot)
	KS_START=("$@")
}

tree_track() {
	local pid
	for pid in $(awk '{ print $3 }' "$WL_DIR/tree"); do
		track_pid "$pid"
	done
}

# The stopped child of w_tree has entered its stop.
ks_settled() {
	! grep -q ' t ' <(ks_snapshot) 2>/dev/null
}

# Sets KS_GUARDIAN to the guardian of the dump, once its worker has started
# it (builtins only: read, no subshell).
ks_guardian_of() {
	local w="" g=""
	# The file holds no newline: read fails and still sets the variable.
	read -r w _ 2>/dev/null < /proc/"$1"/task/"$1"/children
	[ -n "$w" ] || return 1
	read -r g _ 2>/dev/null < /proc/"$w"/task/"$w"/children
	KS_GUARDIAN=$g
	[ -n "$g" ]
}

# One dump killed after a random delay; sets KS_WHY when it finds damage.
ks_round() {
	local round=$1 img=$CASE_TMP/img-$1 opts=() dumper worker guardian delay target crs
	KS_WHY=""
	[ $((RANDOM % 2)) = 0 ] && opts=(--leave-running)
	delay=$(printf '0.%03d' $((RANDOM % 21)))
	CASE_IMG_DIRS+=("$img")
	setsid "$CR" dump "$WL_PID" -D "$img" "${opts[@]}" >"$CASE_TMP/dump.out" 2>&1 </dev/null &
	dumper=$!
	track_pid "$dumper"
	# Killing the guardian alone: a dump lasts a few ms, so it is looked
	# for without a pause (builtins only) and killed when found.
	if [ "$KS_MODE" = guardian_only ]; then
		KS_GUARDIAN=""
		for ((i = 0; i < 20000; i++)); do
			ks_guardian_of "$dumper" || continue
			for ((j = RANDOM % 400; j > 0; j--)); do   # a random moment of its life
				read -r _ < /proc/self/stat
			done
			kill -KILL "$KS_GUARDIAN" 2>/dev/null && KS_GUARDIANS=$((KS_GUARDIANS + 1))
			break
		done
		delay=0
	fi
	sleep "$delay"
	worker=$(cat /proc/"$dumper"/task/"$dumper"/children 2>/dev/null)
	worker=${worker%% *}
	guardian=$(cat /proc/"$worker"/task/"$worker"/children 2>/dev/null)
	guardian=${guardian%% *}
	if [ "$KS_MODE" = guardian ] && [ -n "$guardian" ]; then
		target="worker and guardian after $delay s"
		kill -KILL "$worker" "$guardian" 2>/dev/null
	elif [ "$KS_MODE" = guardian_only ]; then
		target="guardian ${KS_GUARDIAN:-not found}"
	elif [ $((RANDOM % 3)) = 0 ] && [ -n "$worker" ]; then
		target="worker after $delay s"
		kill -KILL "$worker" 2>/dev/null
	else
		target="group after $delay s"
		kill -KILL -- "-$dumper" 2>/dev/null
	fi
	wait "$dumper" 2>/dev/null
	crs=$(ks_cr_pids)
	# shellcheck disable=SC2086
	wait_until 15 ks_cr_gone $crs || { KS_WHY="round $round ($target${opts[*]:+, ${opts[*]}}): cr processes left: $crs"; return 1; }
	[ "$KS_MODE" = guardian ] && ! ks_next_dump "$round" && return 1
	if [ -e "$img/inventory.img" ] && [ ${#opts[@]} = 0 ] && wait_until 2 ks_all_gone; then
		KS_RESTORED=$((KS_RESTORED + 1))
		cr_run "restore-$round" restore -D "$img" --detach ||
			{ KS_WHY="round $round ($target): the complete dump does not restore: $(last_line "$CR_ERR")"; return 1; }
	fi
	if ! wait_until 10 ks_same; then
		KS_WHY="round $round ($target${opts[*]:+, ${opts[*]}}): $(diff <(echo "$KS_BEFORE") <(ks_snapshot) | grep '^[<>]' | head -n 6 | tr '\n' ' ')"
		return 1
	fi
	rm -rf "$img"
}

# With its guardian killed too, what a dump left is put back by the next
# cr dump (of another process).
ks_next_dump() {
	local other
	( clean_exec sleep 30 ) </dev/null >/dev/null 2>&1 &
	other=$!
	disown "$other"
	track_pid "$other"
	cr_run "next-$1" dump "$other" -D "$CASE_TMP/next-$1" --leave-running ||
		{ KS_WHY="round $1: the next dump failed: $(last_line "$CR_ERR")"; kill -KILL "$other"; return 1; }
	kill -KILL "$other"
	grep -q "put back what the dump" "$CASE_TMP/next-$1/dump.log" && KS_NEXT=$((KS_NEXT + 1))
	rm -rf "$CASE_TMP/next-$1"
}

# Processes named in a damaged round (those whose lines changed).
ks_damaged_count() {
	diff <(echo "$KS_BEFORE") <(ks_snapshot) | awk '/^[<>]/ { print $2 }' | sort -u | wc -l
}

kills() {
	local round damaged=0 procs=0 first=""
	KS_RESTORED=0 KS_NEXT=0 KS_GUARDIANS=0
	ks_start "$@" || return 1
	for round in $(seq 1 "$ROUNDS"); do
		ks_round "$round" && continue
		damaged=$((damaged + 1))
		procs=$((procs + $(ks_damaged_count)))
		[ -z "$first" ] && first=$KS_WHY
		echo "# $CASE: $KS_WHY" >&2
		kill_tracked
		ks_start "${KS_START[@]}" || return 1
	done
	echo "# $CASE: $ROUNDS kills ($KS_GUARDIANS of a guardian alone), $KS_RESTORED restored from complete dumps, $KS_NEXT put back by the next dump, $damaged damaged rounds ($procs processes)" >&2
	if [ "$damaged" != 0 ]; then
		REASON="$damaged of $ROUNDS kills damaged $procs processes; first: $first"
		return 1
	fi
	if [ "$KS_MODE" = guardian_only ] && [ "$KS_GUARDIANS" -lt $((ROUNDS / 2)) ]; then
		REASON="only $KS_GUARDIANS of $ROUNDS kills found a guardian to kill"
		return 1
	fi
	wl_trigger && wl_expect_pass 20
}

for c in ${CR_KILLSAFE_CASES:-tree busy guardian guardian_only}; do
	case $c in
	tree) KS_MODE=any run_case tree_kills kills w_tree 2 2 ;;
	busy) KS_MODE=any run_case busy_kills kills w_busy ;;
	guardian) KS_MODE=guardian ROUNDS=$((ROUNDS / 3)) run_case guardian_kills kills w_busy ;;
	guardian_only) KS_MODE=guardian_only ROUNDS=$((ROUNDS / 3)) run_case guardian_only_kills kills w_busy ;;
	esac
done
finish_tests
