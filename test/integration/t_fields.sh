#!/usr/bin/env bash
# t_fields: a value the restore cannot bring back is refused while it
# validates the images, before it creates any process; never afterwards.
# A dump of w_tree 2 (three running processes, threads, a stopped child,
# zombies, a shared file) is mutated one field at a time by
# build/test/mutate_field (0, 1, all ones, the extremes, the value + 1, odd
# strings and bytes, one element fewer, an optional one absent: each
# image re-encoded with valid framing and checksums): every
# FIELDS_STRIDE-th mutation (default 5, prime to the 6 values of a number,
# so that each value is tried on some field) of the whole dump's images and
# of the root's (FIELDS_ALL=1: every process's; FIELDS_STRIDE=1 FIELDS_ALL=1
# tries all of them, about 5,000, for a long run).  Each mutated dump is
# restored:
#   - refused while the images are checked (or planned): fine;
#   - restored: fine (a value cr cannot tell from a real one, such as a
#     register), the tree is killed again;
#   - the process died of the state it was given the moment it ran (a
#     register cr cannot tell from a real one, such as rip + 1: cr finds
#     it gone as it lets it go, and undoes the restore): fine, counted
#     apart;
#   - refused once processes exist ("create the tree", "transplant"): the
#     failure this test counts.  It must never happen, and no process of
#     the tree may be left behind either way.
CR_TEST_TIMEOUT=${CR_TEST_TIMEOUT:-900}
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/treelib.sh"

MUTATE=$BUILD/test/mutate_field
STRIDE=${FIELDS_STRIDE:-5}

kill_tree_pids() {
	local pid
	for pid in $(tree_pids); do
		kill -KILL "$pid" 2>/dev/null
	done
	tree_await_gone 10
}

# try_mutation IMG FILE INDEX: 0 if it was judged, 3 if past the last.
try_mutation() {
	local img=$1 file=$2 i=$3 m=$CASE_TMP/m desc st
	rm -rf "$m"
	cp -a "$img" "$m"
	desc=$("$MUTATE" "$m" "$file" "$i" 2>&1)
	st=$?
	[ "$st" = 3 ] && return 3
	[ "$st" = 0 ] || { REASON="mutate_field $file $i: $desc"; return 1; }
	[ -z "${FIELDS_TRACE:-}" ] || echo "$i $desc" >> "$FIELDS_TRACE"
	rm -f "$m/restore.log"
	CR_ERR=$CASE_TMP/restore.err
	timeout -k 5 "$CR_TIMEOUT" "$CR" restore -D "$m" --detach >/dev/null 2>"$CR_ERR" </dev/null
	CR_STATUS=$?
	[ -z "${FIELDS_TRACE:-}" ] || echo "  -> $CR_STATUS $(last_line "$CR_ERR" | cut -c1-160)" >> "$FIELDS_TRACE"
	[ "$CR_STATUS" -lt 128 ] || [ "$CR_STATUS" = 137 ] ||
		{ REASON="cr restore died of signal $((CR_STATUS - 128)) with $desc"; return 1; }
	if [ "$CR_STATUS" = 0 ]; then
		ACCEPTED=$((ACCEPTED + 1))
		kill_tree_pids || { REASON="after restoring with $desc: $REASON"; return 1; }
		return 0
	fi
	[ "$CR_STATUS" != 124 ] || { REASON="the restore with $desc timed out"; return 1; }
	if grep -qE ': transplant: detach from task [0-9]+: No such process' "$CR_ERR"; then
		DIED=$((DIED + 1))
	elif grep -qE ': (create the tree|transplant):' "$CR_ERR"; then
		LATE+="$desc: $(last_line "$CR_ERR" | cut -c1-200)"$'\n'
	else
		EARLY=$((EARLY + 1))
	fi
	local left
	left=$(tree_leftovers)
	[ -z "$left" ] || { REASON="the refused restore with $desc left $left"; return 1; }
}

fields() {
	local img=$CASE_TMP/img file i st
	ACCEPTED=0 EARLY=0 DIED=0 LATE=""
	wl_start w_tree 2 || return 1
	tree_track || return 1
	cr_dump dump "$WL_PID" "$img" || return 1
	tree_await_gone 5 || return 1
	for file in $(cd "$img" && ls -- *.img); do
		case "$file" in pages-*|early-pages-*|shmem-pages.img) continue ;; esac
		case "$file" in *-[0-9]*.img) [ "${FIELDS_ALL:-0}" = 1 ] || [ "$file" != "${file%-$WL_PID.img}" ] || continue ;; esac
		for ((i = 0; ; i += STRIDE)); do
			try_mutation "$img" "$file" "$i"
			st=$?
			[ -e "$img/inventory.img" ] || { REASON="the images are gone after mutation $file $i ($(tail -1 "${FIELDS_TRACE:-/dev/null}"))"; return 1; }
			[ "$st" = 3 ] && break
			[ "$st" = 0 ] || return 1
		done
	done
	echo "    $((ACCEPTED + EARLY + DIED + $(printf '%s' "$LATE" | grep -c .))) mutations: $EARLY refused while" \
		"checked, $ACCEPTED restored, $DIED died of their state as they ran," \
		"$(printf '%s' "$LATE" | grep -c .) refused after processes existed"
	[ -z "$LATE" ] || { REASON="refused only after processes existed: $(printf '%s' "$LATE" | head -5 | tr '\n' ';')"; return 1; }
	[ "$EARLY" -gt 100 ] || { REASON="only $EARLY mutations were refused: the mutator did not reach the images"; return 1; }
	# The untouched dump still restores, and the tree passes its checks.
	cr_restore_detached restore "$img" || return 1
	wl_trigger || return 1
	wl_expect_pass
}

run_case fields fields
finish_tests
