#!/usr/bin/env bash
# t_tree: whole process trees.
#
#  tree_rounds     w_tree (53 running processes four levels deep, some with
#                  2-4 threads holding TLS values and a robust mutex, two
#                  zombies of the root and one of process 2, a stopped child,
#                  a file description shared by the root and a child) is
#                  dumped and restored three times in a row; after every
#                  restore /proc must show every process with the same pid,
#                  parent, group, session, state (running / stopped / zombie)
#                  and thread ids as before the first dump. Then the trigger:
#                  every process checks itself (pid, parent, memory, tids, TLS,
#                  pthread_join, robust mutex) and the root checks the
#                  zombies' exit statuses, the stopped child, the shared
#                  offset, and passes with its pid and token. Prints the dump
#                  and restore times of each round.  On two CPUs or more,
#                  each restore.log must show that a second transplanter
#                  took part of the tree (restore/second.c), the stopped
#                  child and its parent staying with the restorer.
#  sessions        w_sessions (sessions and process groups of several shapes,
#                  including a zombie group leader with a live member and a
#                  zombie member of another process's group): same pids,
#                  parents, groups and sessions after restore, seen from /proc
#                  and checked by every process itself.
#  session_left_by_parent
#                  w_sessions with a process K that forked G, then left the
#                  session (setsid): G's session is led by its grandparent.
#                  Same checks as sessions.
#  foreign_session_refused
#                  the subtree of K alone holds G, whose session leader is
#                  outside it: cr refuses (at dump or at restore), saying
#                  session, creates nothing and harms nothing (the workload
#                  still passes).
#  wide_parent     w_forest: a root with 95 children (more than the 32 at
#                  which a process forks its children on two CPUs, half of
#                  them through a helper with CLONE_PARENT): every child
#                  comes back the root's, with its pid, group and session
#                  (/proc), twice in a row, no helper left behind; the
#                  root checks each child and passes.
#  multi_threaded  w_thread (two threads): restored with the same tids, it
#                  passes (its second thread still counts, pthread_join works).
#                  (Until the engine took threads, t_unsupported expected
#                  cr dump to refuse w_thread.)
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/treelib.sh"

# Starts a tree workload and records its snapshot in BEFORE.
tree_start() {
	wl_start "$@" || return 1
	tree_track || return 1
	BEFORE=$(tree_snapshot)
	tree_check_recorded "$BEFORE"
}

# dump_restore_round LABEL: dump the tree (killing it), check it is gone,
# restore it detached, check /proc shows the same tree. Sets DUMP_S and
# RESTORE_S (seconds taken by each cr command).
dump_restore_round() {
	local label=$1 img=$CASE_TMP/img-$1 t0 t1 t2
	CASE_IMG_DIRS+=("$img")
	t0=$(now_s)
	cr_run "dump-$label" dump "$WL_PID" -D "$img" ||
		{ REASON="$label: cr dump $WL_PID failed (exit $CR_STATUS): $(last_line "$CR_ERR")"; return 1; }
	t1=$(now_s)
	check_images "$img" || return 1
	tree_await_gone || { REASON="$label: after cr dump: $REASON"; return 1; }
	t2=$(now_s)
	cr_run "restore-$label" restore -D "$img" --detach ||
		{ REASON="$label: cr restore failed (exit $CR_STATUS): $(last_line "$CR_ERR")"; return 1; }
	RESTORE_S=$(elapsed "$t2" "$(now_s)")
	DUMP_S=$(elapsed "$t0" "$t1")
	wl_await_running || return 1
	[ "$(status_field "$WL_PID" PPid)" = "$CR_TEST_SUBREAPER" ] || {
		REASON="$label: the restored root's parent is $(status_field "$WL_PID" PPid), not the subreaper $CR_TEST_SUBREAPER"
		return 1
	}
	tree_await_same "$BEFORE" "$label: /proc differs after restore"
}

tree_rounds() {
	local n r
	tree_start w_tree || return 1
	n=$(tree_count)
	[ "$n" -ge 50 ] || { REASON="w_tree has only $n processes"; return 1; }
	for r in 1 2 3; do
		dump_restore_round "round$r" || return 1
		echo "# tree of $n processes: dump ${DUMP_S}s restore ${RESTORE_S}s (round $r)"
		# Two transplanters share it on two CPUs or more.
		[ "$(nproc)" -lt 2 ] || grep -q "second transplanter, pid [0-9]*, takes [1-9][0-9]* of the" \
			"$CASE_TMP/img-round$r/restore.log" || { REASON="round $r: no second transplanter"; return 1; }
	done
	wl_trigger || return 1
	wl_expect_pass 40 || return 1
	wl_await_exit || return 1
	tree_await_gone 10 || { REASON="after the workload finished: $REASON"; return 1; }
}

wide_parent() {
	local r kids
	wl_start w_forest 96 || return 1
	tree_track || return 1
	BEFORE=$(tree_snapshot)
	[ "$(tree_count)" = 96 ] || { REASON="w_forest has $(tree_count) processes, not 96"; return 1; }
	for r in 1 2; do
		dump_restore_round "round$r" || return 1
		kids=$(tr ' ' '\n' < /proc/"$WL_PID"/task/"$WL_PID"/children | grep -c .)
		[ "$kids" = 95 ] || { REASON="round $r: the root has $kids children, not 95 (a helper left?)"; return 1; }
	done
	wl_trigger || return 1
	wl_expect_pass 20 || return 1
	wl_await_exit || return 1
	tree_await_gone 10 || { REASON="after the workload finished: $REASON"; return 1; }
}

sessions() {
	tree_start w_sessions || return 1
	# The shapes the workload claims must really be there before the dump.
	if ! grep -qw sid-leader "$WL_DIR/tree" || ! grep -qw zombie-pgrp-leader "$WL_DIR/tree"; then
		REASON="w_sessions tree file lacks its shapes: $(head -c 300 "$WL_DIR/tree")"
		return 1
	fi
	dump_restore_round once || return 1
	wl_trigger || return 1
	wl_expect_pass 20 || return 1
	wl_await_exit || return 1
	tree_await_gone 10 || { REASON="after the workload finished: $REASON"; return 1; }
}

# G (process 17) stays in R's session after its parent K (16) left it with
# setsid: restore must fork G before K calls setsid.
session_left_by_parent() {
	tree_start w_sessions left || return 1
	grep -qw in-grandparent-session "$WL_DIR/tree" || { REASON="w_sessions left has no process 17"; return 1; }
	dump_restore_round once || return 1
	wl_trigger || return 1
	wl_expect_pass 20 || return 1
	wl_await_exit || return 1
	tree_await_gone 10 || { REASON="after the workload finished: $REASON"; return 1; }
}

# The subtree of K alone: G's session is led by R, outside it (and is not
# K's own session). cr must refuse it (at dump or at restore), say why, and
# create nothing; the workload, left running, still passes.
foreign_session_refused() {
	local k img=$CASE_TMP/img refused=""
	tree_start w_sessions left || return 1
	k=$(awk '$1 == 16 { print $3 }' "$WL_DIR/tree")
	CASE_IMG_DIRS+=("$img")
	if ! cr_run dump dump "$k" -D "$img" --leave-running; then
		refused=dump
	elif ! cr_run restore restore -D "$img" --detach; then
		refused=restore
	else
		REASON="the subtree of pid $k (its child's session is led outside it) was dumped and restored"
		return 1
	fi
	[ "$CR_STATUS" != 124 ] || { REASON="cr $refused timed out"; return 1; }
	grep -qi session "$CR_ERR" || { REASON="the $refused error does not say session: $(last_line "$CR_ERR")"; return 1; }
	# Nothing created, nothing harmed: /proc shows the tree as before.
	tree_await_same "$BEFORE" "after the refused $refused" || return 1
	wl_trigger || return 1
	wl_expect_pass 20 || return 1
	wl_await_exit
}

task_ids() {
	local t out=
	for t in /proc/"$1"/task/*; do
		out+=${t##*/},
	done
	echo "${out%,}"
}

multi_threaded() {
	local img=$CASE_TMP/img before after
	wl_start w_thread || return 1
	before=$(task_ids "$WL_PID")
	[ "$(tr , '\n' <<<"$before" | wc -l)" = 2 ] || { REASON="w_thread has threads $before, want 2"; return 1; }
	cr_dump dump "$WL_PID" "$img" || return 1
	cr_restore_detached restore "$img" || return 1
	after=$(task_ids "$WL_PID")
	[ "$after" = "$before" ] || { REASON="restored with threads $after, was $before"; return 1; }
	wl_trigger || return 1
	wl_expect_pass || return 1
	wl_await_exit
}

run_case tree_rounds tree_rounds
run_case sessions sessions
run_case session_left_by_parent session_left_by_parent
run_case foreign_session_refused foreign_session_refused
run_case wide_parent wide_parent
run_case multi_threaded multi_threaded
finish_tests
