# test/integration/treelib.sh — sourced (after lib.sh) by the tests of whole
# process trees: t_tree.sh, t_pidns.sh, t_backends.sh.
#
# The tree workloads (w_tree, w_sessions, w_pidns) write WL_DIR/tree once
# every process is set up: one line per process,
#
#     <index> <kind> <pid> <ppid> <tids|->      (pids as the harness sees them)
#
# kind N: running, S: stopped, Z: zombie (w_pidns adds more columns). These
# helpers read it, track every pid for the cleanup, and compare what /proc
# says about every process before the dump and after each restore.

# Every pid of the tree, one per line.
tree_pids() {
	awk '{ print $3 }' "$WL_DIR/tree"
}

# Makes the cleanup kill every process of the tree (run_case kills tracked
# pids, their descendants and their process groups), wherever it ends up.
tree_track() {
	local pid
	[ -s "$WL_DIR/tree" ] || { REASON="$WL_NAME wrote no tree file"; return 1; }
	for pid in $(tree_pids); do
		track_pid "$pid"
	done
}

tree_count() {
	wc -l < "$WL_DIR/tree"
}

# One line per process: what /proc says about it (with the signals a live
# one ignores and catches). The root's parent is left
# out (it is the harness's shell before the dump, the subreaper after).
# Only bash builtins in the loop: trees are large.
tree_snapshot() {
	local idx kind pid ppid _rest stat state p tasks tracer key val t comm sigs
	while read -r idx kind pid ppid _rest; do
		if ! read -r stat 2>/dev/null < /proc/"$pid"/stat; then
			echo "$idx $kind pid=$pid gone"
			continue
		fi
		stat=${stat##*) }
		# shellcheck disable=SC2086
		set -- $stat
		case $1 in
		T) state=stopped ;;
		Z) state=zombie ;;
		t) state=traced ;;
		X) state=dead ;;
		*) state=running ;;
		esac
		p=$2
		[ "$idx" = 0 ] && p=-
		tracer='?' sigs=
		while read -r key val _; do
			case $key in
			TracerPid:) tracer=$val ;;
			SigIgn:|SigCgt:) [ "$state" = zombie ] || sigs+=" ${key%:}=$val" ;;
			esac
		done 2>/dev/null < /proc/"$pid"/status
		tasks=
		for t in /proc/"$pid"/task/*; do
			tasks+=${t##*/},
		done
		read -r comm 2>/dev/null < /proc/"$pid"/comm || comm='?'
		echo "$idx $kind pid=$pid ppid=$p pgid=$3 sid=$4 $state tracer=$tracer$sigs comm=$comm tasks=${tasks%,}"
	done < "$WL_DIR/tree"
}

# The snapshot agrees with what the workload recorded in its tree file:
# kinds (running/stopped/zombie), parents, thread ids.
tree_check_recorded() {
	local idx kind pid ppid tids line want_state want tid n tasks commas l
	local -A by_index=()
	while read -r l; do
		by_index[${l%% *}]=$l
	done <<<"$1"
	while read -r idx kind pid ppid tids _; do
		line=${by_index[$idx]:-}
		case $kind in
		S) want_state=stopped ;;
		Z) want_state=zombie ;;
		*) want_state=running ;;
		esac
		[ "$idx" = 0 ] && ppid=-
		want="$idx $kind pid=$pid ppid=$ppid "
		if [ "${line#"$want"}" = "$line" ] || [[ $line != *" $want_state tracer=0 "* ]]; then
			REASON="process $idx: /proc says '$line', the workload recorded pid $pid parent $ppid ($want_state)"
			return 1
		fi
		[ "$kind" = Z ] && continue
		n=0
		for tid in ${tids//,/ }; do
			n=$((n + 1))
			[[ ,${line##* tasks=}, == *,$tid,* ]] ||
				{ REASON="process $idx: thread $tid (recorded) is not in /proc ($line)"; return 1; }
		done
		tasks=${line##* tasks=}
		commas=${tasks//[^,]/}
		[ $((${#commas} + 1)) = "$n" ] ||
			{ REASON="process $idx: threads $tasks, the workload recorded $tids"; return 1; }
	done < "$WL_DIR/tree"
}

# compare_snapshots BEFORE AFTER WHAT
compare_snapshots() {
	local diffs
	[ "$1" = "$2" ] && return 0
	diffs=$(diff <(echo "$1") <(echo "$2") | grep '^[<>]' | head -n 8 | tr '\n' ' ')
	REASON="$3 (< before, > after): $diffs"
	return 1
}

snapshot_is() {
	[ "$(tree_snapshot)" = "$1" ]
}

# tree_await_same BEFORE WHAT: /proc shows the tree as in BEFORE, within 3 s
# (a process restored stopped enters its stop just after cr lets it go).
tree_await_same() {
	wait_until 3 snapshot_is "$1" && return 0
	compare_snapshots "$1" "$(tree_snapshot)" "$2"
}

all_gone() {
	local pid
	for pid in "$@"; do
		pid_gone "$pid" || return 1
	done
}

# After a dump: every process of the tree is gone (zombies too).
tree_await_gone() {
	local pids pid
	pids=$(tree_pids)
	# shellcheck disable=SC2086
	if ! wait_until "${1:-5}" all_gone $pids; then
		for pid in $pids; do
			pid_gone "$pid" || { REASON="pid $pid of the tree still exists: $(describe_pid "$pid")"; break; }
		done
		return 1
	fi
}

# Every process of the tree that exists, as "pid(state)" (for messages).
tree_leftovers() {
	local pid out=""
	for pid in $(tree_pids); do
		pid_gone "$pid" || out+="$pid($(status_field "$pid" State)) "
	done
	echo "$out"
}

check_images() {
	local img=$1 bad
	[ -f "$img/inventory.img" ] || { REASON="no inventory.img in $img: $(ls "$img" 2>&1 | tr '\n' ' ')"; return 1; }
	bad=$(find "$img" -type f -name '*.img' ! -perm 0600 -printf '%f=%m ')
	[ -z "$bad" ] || { REASON="image files not mode 0600: $bad"; return 1; }
}

# Seconds since the epoch with microseconds, for timings.
now_s() {
	echo "${EPOCHREALTIME/,/.}"
}

elapsed() {
	awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'
}
