#!/usr/bin/env bash
# t_cow: private pages a child still shares copy-on-write with its parent
# are written once and shared again after restore, and every process keeps
# its own view.
#
#   cow_control     w_cow without a dump passes (parent, three children, a
#                   grandchild; writes, dropped and unmapped pages)
#   cow_sabotaged   a page of child B changed from outside: its check fails
#   cow_roundtrip   the children's images hold only their own pages; after
#                   restore the parent and child B map the same physical
#                   pages again (/proc/PID/pagemap), also those written in
#                   a private file mapping, the tree's memory
#                   (PSS) is what it was, and after the parent overwrites
#                   its region every child still sees the old contents
#   cow_compress_encrypt, cow_twice, cow_leave_running, cow_new_pidns (child C's
#                   thread is found by its tid inside the new namespace)
#   cow_mutated     every mutation of the fields that say what is shared
#                   (vma cow, pagemap in_parent) in the parent's and child
#                   B's images is refused before any process exists, or
#                   restores a tree that still passes
#   python_fork_256 python3 (unmodified): a 256 MiB bytearray, 20 children
#                   made with os.fork (two wrote to it): the images hold it
#                   about once, the memory after restore is about what it
#                   was, and each child still sees its own contents after
#                   the parent rewrote its copy
source "$(dirname "$0")/lib.sh"

MUTATE=$BUILD/test/mutate_field

cow_pids() {
	echo "$WL_PID $(cat "$WL_DIR/child_a") $(cat "$WL_DIR/child_b") $(cat "$WL_DIR/grandchild") $(cat "$WL_DIR/child_c")"
}

# pss_kib PID...: the sum of their Pss (KiB).
pss_kib() {
	local p sum=0 v
	for p in "$@"; do
		v=$(awk '/^Pss:/ { print $2 }' /proc/"$p"/smaps_rollup 2>/dev/null)
		sum=$((sum + ${v:-0}))
	done
	echo "$sum"
}

# same_frames PID1 PID2 ADDR FIRST LAST: how many of pages FIRST..LAST-1
# from ADDR (hex) both map to the same physical page.
same_frames() {
	python3 - "$@" <<'EOF'
import struct, sys
a, b, addr, first, last = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3], 16), int(sys.argv[4]), int(sys.argv[5])
def frames(pid):
    with open(f"/proc/{pid}/pagemap", "rb") as f:
        f.seek((addr // 4096 + first) * 8)
        raw = f.read((last - first) * 8)
    return [e & ((1 << 55) - 1) if e >> 63 else None for e in struct.unpack(f"{last - first}Q", raw)]
fa, fb = frames(a), frames(b)
print(sum(1 for x, y in zip(fa, fb) if x is not None and x == y))
EOF
}

# ---- w_cow ---------------------------------------------------------------------

cow_sabotaged() {
	wl_start w_cow 4 || return 1
	local b addr
	b=$(cat "$WL_DIR/child_b")
	read -r addr _ < "$WL_DIR/region"
	# Child B's page 500 made its own, with other contents.
	python3 - "$b" "$addr" <<'EOF' || { REASON="could not write child B's memory"; return 1; }
import sys
with open(f"/proc/{sys.argv[1]}/mem", "r+b") as f:
    f.seek(int(sys.argv[2], 16) + 500 * 4096)
    f.write(b"x" * 64)
EOF
	wl_trigger || return 1
	wl_expect_fail "child B 1: 1 pages differ, the first 500"
}

cow_roundtrip() {
	local img=$CASE_TMP/img pids before after addr faddr pages n kib own=0 f
	wl_start w_cow 32 || return 1
	pids=$(cow_pids)
	read -r addr pages < "$WL_DIR/region"
	# shellcheck disable=SC2086
	before=$(pss_kib $pids)
	cr_dump dump "$WL_PID" "$img" || return 1
	for p in $pids; do
		[ "$p" = "$WL_PID" ] && continue
		for f in "$img/pages-$p.img" "$img/early-pages-$p.img"; do
			own=$((own + $(stat -c %s "$f")))
		done
	done
	# The children wrote 33 pages of the region; the rest of what they hold
	# is the parent's.
	[ "$own" -lt $((12 << 20)) ] ||
		{ REASON="the children's page images hold $((own >> 20)) MiB; the parent's 32 MiB region went in again"; return 1; }
	cr_run show show "$img" || { REASON="cr show failed: $(last_line "$CR_ERR")"; return 1; }
	grep -qE "pages .* [1-9][0-9]* more shared with the parent" "$CASE_TMP/show.out" ||
		{ REASON="cr show does not count the pages shared with the parent"; return 1; }
	kib=$(($(stat -c %s "$img/early-pages-$WL_PID.img") >> 10))
	[ "$kib" -ge $((32 << 10)) ] || { REASON="the parent's early-pages image holds $kib KiB, not its 32 MiB region"; return 1; }
	cr_restore_detached restore "$img" || return 1
	for p in $pids; do
		wait_until 5 running_free "$p" "$WL_EXE" || { REASON="pid $p: $(describe_pid "$p")"; return 1; }
	done
	# Child B shares all its region with the parent, child A what it did not
	# write, drop or unmap.
	n=$(same_frames "$WL_PID" "$(cat "$WL_DIR/child_b")" "$addr" 0 "$pages")
	[ "$n" -ge $((pages - 1)) ] || { REASON="the parent and child B share $n of $pages pages after restore"; return 1; }
	n=$(same_frames "$WL_PID" "$(cat "$WL_DIR/child_a")" "$addr" 0 16)
	[ "$n" = 0 ] || { REASON="child A shares $n of the 16 pages it wrote with the parent"; return 1; }
	n=$(same_frames "$WL_PID" "$(cat "$WL_DIR/child_a")" "$addr" 16 100)
	[ "$n" = 84 ] || { REASON="child A shares $n of its 84 unwritten pages 16-99 with the parent"; return 1; }
	n=$(same_frames "$(cat "$WL_DIR/child_b")" "$(cat "$WL_DIR/grandchild")" "$addr" 32 132)
	[ "$n" = 100 ] || { REASON="grandchild G shares $n of 100 pages with child B"; return 1; }
	# The pages the parent wrote in its private file mapping, and child A's
	# share but those it dropped (0-1) and wrote (5).
	read -r faddr _ < "$WL_DIR/fregion"
	n=$(same_frames "$WL_PID" "$(cat "$WL_DIR/child_b")" "$faddr" 0 12)
	[ "$n" = 12 ] || { REASON="child B shares $n of the 12 written pages of the file mapping"; return 1; }
	n=$(same_frames "$WL_PID" "$(cat "$WL_DIR/child_a")" "$faddr" 0 12)
	[ "$n" = 9 ] || { REASON="child A shares $n of the 9 written pages of the file mapping it kept"; return 1; }
	# shellcheck disable=SC2086
	after=$(pss_kib $pids)
	[ "$after" -le $((before + before / 5 + 4096)) ] ||
		{ REASON="the tree's PSS was $before KiB before the dump, $after KiB after restore"; return 1; }
	echo "    PSS $before KiB before, $after KiB after; children's page images $((own >> 10)) KiB"
	wl_trigger || return 1
	wl_expect_pass || return 1
	wl_await_exit
}

# Compressed and encrypted: each process reads its own early pages with
# the key the restore was given.
cow_compress_encrypt() {
	local img=$CASE_TMP/img key=$CASE_TMP/key
	cr_run keygen keygen --secret "$key" || { REASON="cr keygen --secret failed: $(last_line "$CR_ERR")"; return 1; }
	wl_start w_cow 8 || return 1
	cr_dump dump "$WL_PID" "$img" --compress --encrypt "$key" || return 1
	cr_restore_detached restore "$img" --decrypt "$key" || return 1
	wl_trigger || return 1
	wl_expect_pass || return 1
	wl_await_exit
}

# The second dump finds the pages the first restore shared again.
cow_twice() {
	local img1=$CASE_TMP/img1 img2=$CASE_TMP/img2 b
	wl_start w_cow 8 || return 1
	b=$(cat "$WL_DIR/child_b")
	cr_dump dump1 "$WL_PID" "$img1" || return 1
	cr_restore_detached restore1 "$img1" || return 1
	wait_until 5 running_free "$b" "$WL_EXE" || { REASON="child B: $(describe_pid "$b")"; return 1; }
	cr_dump dump2 "$WL_PID" "$img2" || return 1
	[ "$(stat -c %s "$img2/early-pages-$b.img")" -lt $((1 << 20)) ] ||
		{ REASON="the second dump wrote child B's shared pages again"; return 1; }
	cr_restore_detached restore2 "$img2" || return 1
	wl_trigger || return 1
	wl_expect_pass || return 1
	wl_await_exit
}

cow_new_pidns() {
	local img=$CASE_TMP/img
	wl_start w_cow 4 || return 1
	cr_dump dump "$WL_PID" "$img" || return 1
	restore_new_pidns_and_pass "$img"
}

# mutate_all IMG FILE FIELD: every mutation of FIELD in FILE, each restored.
mutate_all() {
	local img=$1 file=$2 field=$3 m=$CASE_TMP/m i desc st left
	for ((i = 0; ; i++)); do
		rm -rf "$m"
		cp -a "$img" "$m"
		desc=$("$MUTATE" "$m" "$file" "$i" "$field" 2>&1)
		st=$?
		[ "$st" = 3 ] && break
		[ "$st" = 0 ] || { REASON="mutate_field $file $i $field: $desc"; return 1; }
		TRIED=$((TRIED + 1))
		if cr_run "restore-$i" restore -D "$m" --detach; then
			RESTORED=$((RESTORED + 1))
			rm -f "$WL_DIR/result"
			kill -USR2 "$WL_PID"
			wl_expect_pass || { REASON="restored with $desc, but: $REASON"; return 1; }
			wait_until 10 pid_gone "$WL_PID" || { REASON="after $desc: $(describe_pid "$WL_PID")"; return 1; }
			# The next try needs the tree gone and the original images.
			for p in $TREE; do
				wait_until 5 pid_gone "$p" || { REASON="after $desc: pid $p stays"; return 1; }
			done
			continue
		fi
		[ "$CR_STATUS" != 124 ] || { REASON="the restore with $desc timed out"; return 1; }
		if grep -qE ': (create the tree|transplant):' "$CR_ERR"; then
			REASON="$desc was refused only once processes existed: $(last_line "$CR_ERR")"
			return 1
		fi
		left=""
		for p in $TREE; do
			[ -e /proc/"$p" ] && left+=" $p"
		done
		[ -z "$left" ] || { REASON="the refused restore with $desc left$left"; return 1; }
		REFUSED=$((REFUSED + 1))
	done
}

cow_mutated() {
	local img=$CASE_TMP/img b
	TRIED=0 RESTORED=0 REFUSED=0
	wl_start w_cow 2 || return 1
	b=$(cat "$WL_DIR/child_b")
	TREE=$(cow_pids)
	cr_dump dump "$WL_PID" "$img" || return 1
	mutate_all "$img" "mm-$WL_PID.img" cow || return 1
	mutate_all "$img" "mm-$b.img" cow || return 1
	mutate_all "$img" "pagemap-$b.img" in_parent || return 1
	mutate_all "$img" "pagemap-$WL_PID.img" in_parent || return 1
	echo "    $TRIED mutations: $REFUSED refused while checked, $RESTORED restored and passed"
	[ "$REFUSED" -gt 20 ] || { REASON="only $REFUSED of $TRIED mutations were refused"; return 1; }
}

# ---- python3 -------------------------------------------------------------------

PY_FORK_256='
import hashlib, os, sys, time
d = sys.argv[1]
buf = bytearray(range(256)) * (1 << 20)          # 256 MiB
for i in range(0, len(buf), 1 << 20):
    buf[i:i + 8] = i.to_bytes(8, "little")
def view(b):                                     # a byte at 0 and at 123 of every page
    return hashlib.sha256(bytes(b[0::4096]) + bytes(b[123::4096])).hexdigest()
want = hashlib.sha256(buf).hexdigest()
want_view = view(buf)
kids = []
for k in range(20):
    pid = os.fork()
    if pid == 0:
        if k in (3, 7):
            buf[k << 20] ^= 0xff                   # its own page from now on
        mine = view(buf)
        while not os.path.exists(d + "/go2"):
            time.sleep(0.05)
        ok = view(buf) == mine and (mine == want_view) == (k not in (3, 7))
        with open(d + "/kid%d" % k, "w") as f:
            f.write("ok" if ok else "bad")
        os._exit(0)
    kids.append(pid)
with open(d + "/kids", "w") as f:
    f.write(" ".join(map(str, kids)))
open(d + "/ready", "w").close()
while not os.path.exists(d + "/go"):
    time.sleep(0.05)
ok = hashlib.sha256(buf).hexdigest() == want
buf[:] = bytes(len(buf))                          # the children keep theirs
open(d + "/go2", "w").close()
for k in kids:
    os.waitpid(k, 0)
kids_ok = all(open(d + "/kid%d" % k).read() == "ok" for k in range(20))
with open(d + "/result", "w") as f:
    f.write("PASS %d" % os.getpid() if ok and kids_ok else "FAIL parent %s kids %s" % (ok, kids_ok))
'

python_fork_256() {
	local img=$CASE_TMP/img before after total=0 f
	py_start "$PY_FORK_256" ready || return 1
	# shellcheck disable=SC2046
	before=$(pss_kib "$PY_PID" $(cat "$PY_DIR/kids"))
	cr_dump dump "$PY_PID" "$img" || return 1
	for f in "$img"/pages-*.img "$img"/early-pages-*.img; do
		total=$((total + $(stat -c %s "$f")))
	done
	# 256 MiB once, and each of the 21 processes' own pages (its stack, what it wrote).
	[ "$total" -lt $((256 * 1024 * 1024 + 21 * 2 * 1024 * 1024)) ] ||
		{ REASON="the page images hold $((total >> 20)) MiB for a 256 MiB bytearray shared by 21 processes"; return 1; }
	cr_run restore restore -D "$img" --detach ||
		{ REASON="cr restore failed (exit $CR_STATUS): $(last_line "$CR_ERR")"; return 1; }
	wait_until 10 running_free "$PY_PID" "$PY_EXE" ||
		{ REASON="restored python3 is not running free: $(describe_pid "$PY_PID")"; return 1; }
	# shellcheck disable=SC2046
	after=$(pss_kib "$PY_PID" $(cat "$PY_DIR/kids"))
	[ "$after" -le $((before + before / 20 + 4096)) ] ||
		{ REASON="PSS of the 21 processes: $before KiB before the dump, $after KiB after restore"; return 1; }
	echo "    page images $((total >> 20)) MiB; PSS $((before >> 10)) MiB before, $((after >> 10)) MiB after"
	touch "$PY_DIR/go"
	wait_until 60 test -e "$PY_DIR/result" || { REASON="no result from python3 within 60 s: $(tail -n 3 "$PY_DIR/out")"; return 1; }
	[ "$(cat "$PY_DIR/result")" = "PASS $PY_PID" ] || { REASON="python3 reports: $(cat "$PY_DIR/result")"; return 1; }
}

run_case cow_control case_control w_cow 4
run_case cow_sabotaged cow_sabotaged
run_case cow_roundtrip cow_roundtrip
run_case cow_compress_encrypt cow_compress_encrypt
run_case cow_twice cow_twice
run_case cow_leave_running case_leave_running w_cow 4
run_case cow_new_pidns cow_new_pidns
run_case cow_mutated cow_mutated
run_case python_fork_256 python_fork_256
finish_tests
