#!/usr/bin/env bash
# t_precopy: pre-copy rounds (cr pre-dump, then cr dump --prev-images-dir)
# with write tracking by userfaultfd (WP_ASYNC) and PAGEMAP_SCAN.
#   rounds              w_precopy, 64 MiB with a 1 MiB hot set written all
#                       the time: two pre-dumps, a layout change between
#                       them (pages dropped and read as the zero page, a
#                       mapping unmapped and mapped again, one moved, a
#                       child forked), a third pre-dump and the final dump:
#                       the final copies a small part, cr show lists the
#                       four rounds, and the restored tree passes (every
#                       page at its latest version, generation not behind)
#   thp                 the same with transparent huge pages (MADV_HUGEPAGE),
#                       which the tracking splits where they are written
#   page_server         the same rounds sent to page servers (one per
#                       round), restored from the servers' directories
#   keeper_gone         the keeper is killed between rounds: the tracking
#                       ends, the final dump copies everything and names
#                       no round before; restored, it passes
#   leave_running_between  a dump --leave-running between rounds (a
#                       snapshot) hands the tracking back: the next round
#                       still copies little, and both the snapshot and the
#                       final dump restore and pass
#   plain_dump_after    a pre-dump, then a dump without --prev-images-dir:
#                       cr's own registrations are no refusal; a whole copy
#   predump_not_dump    cr restore of a pre-dump directory is refused as
#                       such; the process runs on and passes
#   wrong_round         --prev-images-dir naming another tree's round (or
#                       another round) is refused by the dump, which leaves
#                       the process running
#   damaged_round       a byte of an earlier round's page data changed, the
#                       round removed, or reached through a symlink: the
#                       restore is refused naming it, before any process
#                       exists
#   signed_chain        every round signed (--sign): cr show --verify and
#                       cr restore --verify check each round; a round whose
#                       signature is gone or is another round's, or whose
#                       page data changed, fails cr show --verify of the
#                       dump (and of a later round) naming that round, and
#                       is refused by cr restore by name before any process
#                       exists; the chain put back passes both
#   encrypted_chain     every round encrypted (--encrypt): a round's pages
#                       are sealed; refused without --decrypt or with
#                       another key; restored with it, passes
#   keeper_follows_tree the tracked process exits: its keeper exits too
#   own_userfaultfd     a process with a userfaultfd registration of its own
#                       (which the dump refuses): the pre-dump refuses it by
#                       name, leaves nothing tracked, and the process passes
#   untouched           python3 with a thread (its 64 MiB malloc arena
#                       reserve and 8 MiB stack) and 256 MiB mapped but
#                       never touched: the pre-dumps leave its resident
#                       set as it was (within 4 MiB) and copy only what it
#                       holds; restored, it passes
#   children_come_and_go  python3 running a short-lived child (subprocess)
#                       all the time: a child that exits while a round
#                       copies it is left out of that round, said so; the
#                       rounds and the final dump go on and python3 passes
#   python_precopy      python3 (unmodified) with 48 MiB of bytearrays it
#                       keeps changing: pre-dump, pre-dump, dump; restored,
#                       its checksums and counter are right
#   redis_precopy       redis-server with 20,000 keys, set between rounds:
#                       every value is there after the restore;
#                       redis_precopy_signed: every round signed and
#                       encrypted, restored with --verify and --decrypt
source "$(dirname "$0")/lib.sh"

# predump LABEL PID DIR [OPTIONS...]: a pre-dump that must succeed, the
# process still running; sets KEEPER (the keeper's pid) and COPIED.
predump() {
	local label=$1 pid=$2 img=$3
	shift 3
	CASE_IMG_DIRS+=("$img")
	cr_run "$label" pre-dump "$pid" -D "$img" -v "$@" ||
		{ REASON="cr pre-dump failed (exit $CR_STATUS): $(last_line "$CR_ERR")"; return 1; }
	proc_alive "$pid" || { REASON="pid $pid is gone after the pre-dump"; return 1; }
	KEEPER=$(sed -n 's/.*write tracking kept by pid \([0-9]*\).*/\1/p' "$CR_ERR")
	COPIED=$(sed -n 's/^pre-dump: \([0-9]*\) pages copied.*/\1/p' "$CASE_TMP/$label.out")
	[ -n "$COPIED" ] || { REASON="cr pre-dump printed no summary: $(cat "$CASE_TMP/$label.out")"; return 1; }
	[ -n "$KEEPER" ] && track_pid "$KEEPER"
	return 0
}

# restore_pass LABEL DIR [OPTIONS...]: restored from DIR, w_precopy checks
# itself and passes (its pages can take a while: 30 s), then exits.
restore_pass() {
	cr_restore_detached "$@" || return 1
	wl_trigger || return 1
	wl_expect_pass 30 || return 1
	wl_await_exit
}

# The workload's last generation seen: the restored one must not be behind.
note_gen() {
	grep '^gen ' "$WL_DIR/log" | tail -n 1 | cut -d' ' -f2 > "$WL_DIR/gen_min"
}

rounds() {
	local total final
	wl_start w_precopy 64 1024 "$@" || return 1
	if [ "${1:-}" = thp ]; then   # the case is about huge pages: they must be there
		[ "$(sed -n 's/^AnonHugePages: *\([0-9]*\) kB/\1/p' "/proc/$WL_PID/smaps_rollup")" -ge 32768 ] ||
			{ REASON="w_precopy thp holds no transparent huge pages"; return 1; }
	fi
	predump pre1 "$WL_PID" "$CASE_TMP/1" || return 1
	sleep 0.3
	predump pre2 "$WL_PID" "$CASE_TMP/2" --prev-images-dir ../1 || return 1
	kill -USR1 "$WL_PID"
	sleep 0.3
	predump pre3 "$WL_PID" "$CASE_TMP/3" --prev-images-dir ../2 || return 1
	sleep 0.3
	note_gen
	cr_dump dump "$WL_PID" "$CASE_TMP/4" --prev-images-dir ../3 || return 1
	cr_run show show "$CASE_TMP/4" || { REASON="cr show failed: $(last_line "$CR_ERR")"; return 1; }
	for r in ./../3 ./../3/../2 ./../3/../2/../1; do
		grep -q "^    $r  *pre-dump, [0-9]* pages copied" "$CASE_TMP/show.out" ||
			{ REASON="cr show does not list round $r: $(grep -A5 rounds "$CASE_TMP/show.out")"; return 1; }
	done
	final=$(sed -n 's/^    \.  *dump, \([0-9]*\) pages copied.*/\1/p' "$CASE_TMP/show.out")
	total=$((2 * 64 * 256))
	# Two processes of 64 MiB each; the hot sets and the changed mappings
	# are a few MiB: a whole copy would be above 32,768 pages.
	[ -n "$final" ] && [ "$final" -lt $((total / 4)) ] ||
		{ REASON="the final dump copied ${final:-?} pages of about $total"; return 1; }
	grep -q "unchanged  *[0-9]* pages" "$CASE_TMP/show.out" ||
		{ REASON="cr show lists no unchanged pages per process"; return 1; }
	restore_pass restore "$CASE_TMP/4"
}

# ps_start DIR: cr page-server on a free port (PS_PID, PS_PORT, PS_OUT).
ps_start() {
	local dir=$1
	PS_OUT=$CASE_TMP/ps.$(basename "$dir").out
	CASE_LOGS+=("$PS_OUT")
	( clean_exec "$CR" page-server -D "$dir" --address 127.0.0.1 --port 0 ) </dev/null >"$PS_OUT" 2>&1 &
	PS_PID=$!
	track_pid "$PS_PID"
	wait_until 10 grep -q "^listening on" "$PS_OUT" || { REASON="the page server did not listen: $(cat "$PS_OUT")"; return 1; }
	PS_PORT=$(sed -n 's/^listening on .* port \([0-9]*\)$/\1/p' "$PS_OUT")
}

ps_done() {
	wait_until 10 pid_gone "$PS_PID" || { REASON="the page server did not exit"; return 1; }
	wait "$PS_PID" || { REASON="the page server failed: $(tail -n 1 "$PS_OUT")"; return 1; }
}

page_server() {
	local srv=$CASE_TMP/srv
	mkdir -p "$srv"
	wl_start w_precopy 32 512 || return 1
	ps_start "$srv/1" || return 1
	predump pre1 "$WL_PID" "$CASE_TMP/1" --page-server --address 127.0.0.1 --port "$PS_PORT" || return 1
	ps_done || return 1
	ps_start "$srv/2" || return 1
	predump pre2 "$WL_PID" "$CASE_TMP/2" --prev-images-dir ../1 --page-server --address 127.0.0.1 \
		--port "$PS_PORT" || return 1
	ps_done || return 1
	ps_start "$srv/3" || return 1
	note_gen
	cr_run dump dump "$WL_PID" --prev-images-dir ../2 --page-server --address 127.0.0.1 --port "$PS_PORT" ||
		{ REASON="the final dump failed: $(last_line "$CR_ERR")"; return 1; }
	ps_done || return 1
	wait_until 5 pid_gone "$WL_PID" || { REASON="pid $WL_PID lives on after the dump"; return 1; }
	restore_pass restore "$srv/3"
}

keeper_gone() {
	wl_start w_precopy 16 256 || return 1
	predump pre1 "$WL_PID" "$CASE_TMP/1" || return 1
	[ -n "$KEEPER" ] || { REASON="the pre-dump names no keeper"; return 1; }
	grep -q ' uw' "/proc/$WL_PID/smaps" || { REASON="no mapping is tracked (no uw in smaps)"; return 1; }
	kill "$KEEPER"
	wait_until 5 pid_gone "$KEEPER" || { REASON="the keeper did not exit on SIGTERM"; return 1; }
	wait_until 5 bash -c "! grep -q ' uw' /proc/$WL_PID/smaps" ||
		{ REASON="the tracking outlived its keeper"; return 1; }
	note_gen
	cr_dump dump "$WL_PID" "$CASE_TMP/2" --prev-images-dir ../1 || return 1
	grep -q "no write tracking of a round before" "$CR_ERR" ||
		{ REASON="the dump does not say the tracking was lost: $(last_line "$CR_ERR")"; return 1; }
	cr_run show show "$CASE_TMP/2" || return 1
	grep -q "^  rounds" "$CASE_TMP/show.out" && { REASON="the dump names a round before"; return 1; }
	rm -rf "$CASE_TMP/1"   # not needed: the dump is whole
	restore_pass restore "$CASE_TMP/2"
}

leave_running_between() {
	wl_start w_precopy 32 256 || return 1
	predump pre1 "$WL_PID" "$CASE_TMP/1" || return 1
	cr_dump snap "$WL_PID" "$CASE_TMP/2" --prev-images-dir ../1 --leave-running || return 1
	grep -q ' uw' "/proc/$WL_PID/smaps" || { REASON="the snapshot ended the tracking"; return 1; }
	predump pre3 "$WL_PID" "$CASE_TMP/3" --prev-images-dir ../1 || return 1
	[ "$COPIED" -lt 2048 ] || { REASON="the round after the snapshot copied $COPIED pages of 8,192"; return 1; }
	note_gen
	cr_dump dump "$WL_PID" "$CASE_TMP/4" --prev-images-dir ../3 || return 1
	restore_pass restore "$CASE_TMP/4" || return 1
	rm -f "$WL_DIR/gen_min"   # the snapshot is older than the last generation seen
	restore_pass snap_restore "$CASE_TMP/2"
}

plain_dump_after() {
	wl_start w_precopy 16 256 || return 1
	predump pre1 "$WL_PID" "$CASE_TMP/1" || return 1
	note_gen
	cr_dump dump "$WL_PID" "$CASE_TMP/2" || return 1
	rm -rf "$CASE_TMP/1"
	cr_restore_detached restore "$CASE_TMP/2" || return 1
	grep -q ' uw' "/proc/$WL_PID/smaps" && { REASON="the restored process is still tracked"; return 1; }
	wl_trigger || return 1
	wl_expect_pass 30 || return 1
	wl_await_exit
}

predump_not_dump() {
	wl_start w_precopy 8 64 || return 1
	predump pre1 "$WL_PID" "$CASE_TMP/1" || return 1
	cr_run restore restore -D "$CASE_TMP/1" --detach
	[ "$CR_STATUS" != 0 ] || { REASON="the pre-dump was restored"; return 1; }
	grep -q "a pre-dump round" "$CR_ERR" || { REASON="the refusal does not say why: $(last_line "$CR_ERR")"; return 1; }
	runs_on_after_refusal
}

wrong_round() {
	local other
	wl_start w_precopy 8 64 || return 1
	other=$WL_PID
	predump other "$other" "$CASE_TMP/other" || return 1
	wl_start w_precopy 8 64 || return 1
	predump pre1 "$WL_PID" "$CASE_TMP/1" || return 1
	cr_run dump dump "$WL_PID" -D "$CASE_TMP/2" --prev-images-dir ../other
	[ "$CR_STATUS" != 0 ] || { REASON="the dump took another tree's round"; return 1; }
	grep -q "not the round whose write tracking" "$CR_ERR" ||
		{ REASON="the refusal does not say why: $(last_line "$CR_ERR")"; return 1; }
	[ ! -e "$CASE_TMP/2/inventory.img" ] || { REASON="the refused dump left an inventory"; return 1; }
	runs_on_after_refusal || return 1
	kill "$other"
}

damaged_round() {
	local size
	wl_start w_precopy 16 256 || return 1
	predump pre1 "$WL_PID" "$CASE_TMP/1" || return 1
	note_gen
	cr_dump dump "$WL_PID" "$CASE_TMP/2" --prev-images-dir ../1 || return 1
	cp -a "$CASE_TMP/1" "$CASE_TMP/1.good"
	size=$(stat -c %s "$CASE_TMP/1/pages-$WL_PID.img")
	flip_byte "$CASE_TMP/1/pages-$WL_PID.img" $((size / 2))
	cr_run restore1 restore -D "$CASE_TMP/2" --detach
	[ "$CR_STATUS" != 0 ] || { REASON="a damaged round was restored"; return 1; }
	grep -q "pages-$WL_PID.img" "$CR_ERR" || { REASON="the refusal does not name the file: $(last_line "$CR_ERR")"; return 1; }
	proc_alive "$WL_PID" && { REASON="pid $WL_PID exists after the refused restore"; return 1; }
	rm -rf "$CASE_TMP/1"
	cr_run restore2 restore -D "$CASE_TMP/2" --detach
	[ "$CR_STATUS" != 0 ] || { REASON="a dump without its round before was restored"; return 1; }
	grep -q "the round before" "$CR_ERR" || { REASON="the refusal does not name the round: $(last_line "$CR_ERR")"; return 1; }
	ln -s 1.good "$CASE_TMP/1"
	cr_run restore3 restore -D "$CASE_TMP/2" --detach
	[ "$CR_STATUS" != 0 ] || { REASON="a round reached through a symlink was restored"; return 1; }
	grep -q "the round before" "$CR_ERR" || { REASON="the refusal does not name the round: $(last_line "$CR_ERR")"; return 1; }
	rm "$CASE_TMP/1"
	mv "$CASE_TMP/1.good" "$CASE_TMP/1"
	restore_pass restore "$CASE_TMP/2"
}

# keys SIGN|IMAGE: a signing key pair ($CASE_TMP/sk, sk.pub) or an image
# key ($CASE_TMP/ik, and another, ik2).
keys() {
	if [ "$1" = SIGN ]; then
		cr_run keygen keygen "$CASE_TMP/sk" || { REASON="cr keygen failed: $(last_line "$CR_ERR")"; return 1; }
	else
		cr_run keygen keygen --secret "$CASE_TMP/ik" && cr_run keygen2 keygen --secret "$CASE_TMP/ik2" ||
			{ REASON="cr keygen --secret failed: $(last_line "$CR_ERR")"; return 1; }
	fi
}

# refused_restore LABEL WORDS ARGS...: cr restore ARGS fails saying WORDS,
# and creates no process.
refused_restore() {
	local label=$1 words=$2
	shift 2
	cr_run "$label" restore --detach "$@"
	[ "$CR_STATUS" != 0 ] || { REASON="cr restore $* succeeded"; return 1; }
	grep -q -- "$words" "$CR_ERR" || { REASON="cr restore $* does not say '$words': $(last_line "$CR_ERR")"; return 1; }
	! proc_alive "$WL_PID" || { REASON="pid $WL_PID exists after the refused restore"; return 1; }
}

# refused_show LABEL WORDS DIR ARGS...: cr show DIR ARGS fails (status 1)
# saying WORDS (a grep pattern), and does not say the dump is verified.
refused_show() {
	local label=$1 words=$2
	shift 2
	cr_run "$label" show "$@"
	[ "$CR_STATUS" = 1 ] || { REASON="cr show $* exits $CR_STATUS, not 1"; return 1; }
	grep -q -- "$words" "$CR_ERR" || { REASON="cr show $* does not say '$words': $(last_line "$CR_ERR")"; return 1; }
	! grep -q "signed  *yes.*: verified" "$CASE_TMP/$label.out" || { REASON="cr show $* says verified"; return 1; }
}

# three_rounds OPTIONS...: w_precopy, two pre-dumps and the final dump
# into $CASE_TMP/1, 2 and 3, each with OPTIONS.
three_rounds() {
	wl_start w_precopy 16 256 || return 1
	predump pre1 "$WL_PID" "$CASE_TMP/1" "$@" || return 1
	predump pre2 "$WL_PID" "$CASE_TMP/2" --prev-images-dir ../1 "$@" || return 1
	note_gen
	cr_dump dump "$WL_PID" "$CASE_TMP/3" --prev-images-dir ../2 "$@"
}

# Every round signed: cr show --verify checks the dump; the restore with
# --verify checks every round, refuses by name one whose signature is gone
# or is another round's (before any process exists), and passes.
signed_chain() {
	local sk=$CASE_TMP/sk
	keys SIGN || return 1
	three_rounds --sign "$sk" || return 1
	cr_run show show "$CASE_TMP/3" --verify "$sk.pub" || { REASON="cr show --verify failed: $(last_line "$CR_ERR")"; return 1; }
	grep -q "signed  *yes.*verified" "$CASE_TMP/show.out" || { REASON="cr show does not say verified"; return 1; }
	cr_run show2 show "$CASE_TMP/2" --verify "$sk.pub" ||
		{ REASON="cr show --verify of round 2 failed: $(last_line "$CR_ERR")"; return 1; }
	mv "$CASE_TMP/1/inventory.sig" "$CASE_TMP/sig1"
	refused_show show_unsigned "the round $CASE_TMP/3/../2/../1: .*/1 is not signed" "$CASE_TMP/3" --verify "$sk.pub" || return 1
	refused_restore unsigned "/1 is not signed" -D "$CASE_TMP/3" --verify "$sk.pub" || return 1
	cp "$CASE_TMP/2/inventory.sig" "$CASE_TMP/1/inventory.sig"   # round 2's signature, not over round 1
	refused_show show_other_sig "the round $CASE_TMP/3/../2/../1: .*does not verify" "$CASE_TMP/3" --verify "$sk.pub" || return 1
	refused_show show2_other_sig "the round $CASE_TMP/2/../1: .*does not verify" "$CASE_TMP/2" --verify "$sk.pub" || return 1
	refused_restore other_sig "the round $CASE_TMP/3/../2/../1" -D "$CASE_TMP/3" --verify "$sk.pub" || return 1
	mv "$CASE_TMP/sig1" "$CASE_TMP/1/inventory.sig"
	# One byte of round 1's page data changed (its signature intact).
	cp -p "$CASE_TMP/1/pages-$WL_PID.img" "$CASE_TMP/pages1"
	flip_byte "$CASE_TMP/1/pages-$WL_PID.img" 100
	refused_show show_changed "the round $CASE_TMP/3/../2/../1: pages-$WL_PID.img: does not match the hash" \
		"$CASE_TMP/3" --verify "$sk.pub" || return 1
	mv "$CASE_TMP/pages1" "$CASE_TMP/1/pages-$WL_PID.img"
	cr_run show_again show "$CASE_TMP/3" --verify "$sk.pub" ||
		{ REASON="cr show --verify of the chain put back failed: $(last_line "$CR_ERR")"; return 1; }
	restore_pass restore "$CASE_TMP/3" --verify "$sk.pub"
}

# Every round encrypted with one key: a round's page data is sealed (the
# header's encrypted flag); refused without --decrypt and with another
# key; restored with the key, passes.
encrypted_chain() {
	local ik=$CASE_TMP/ik flag
	keys IMAGE || return 1
	three_rounds --encrypt "$ik" || return 1
	flag=$(od -An -tu1 -j8 -N1 "$CASE_TMP/1/pages-$WL_PID.img" | tr -d ' ')
	[ "$flag" = 1 ] || { REASON="round 1's page data is not encrypted (flags $flag)"; return 1; }
	refused_restore plain "is encrypted" -D "$CASE_TMP/3" || return 1
	refused_restore other_key "key" -D "$CASE_TMP/3" --decrypt "$CASE_TMP/ik2" || return 1
	restore_pass restore "$CASE_TMP/3" --decrypt "$ik"
}

keeper_follows_tree() {
	wl_start w_precopy 8 64 || return 1
	predump pre1 "$WL_PID" "$CASE_TMP/1" || return 1
	proc_alive "$KEEPER" || { REASON="no keeper runs"; return 1; }
	kill -9 "$WL_PID"
	wait_until 10 pid_gone "$KEEPER" || { REASON="the keeper outlives the tree it tracked"; return 1; }
}

own_userfaultfd() {
	wl_start w_refuse uffd_missing || return 1
	cr_run pre pre-dump "$WL_PID" -D "$CASE_TMP/1"
	[ "$CR_STATUS" != 0 ] || { REASON="the pre-dump succeeded"; return 1; }
	mentions_number "$CR_ERR" "$WL_PID" || { REASON="the error does not name pid $WL_PID: $(last_line "$CR_ERR")"; return 1; }
	grep -q "registered with a userfaultfd of the process's own" "$CR_ERR" ||
		{ REASON="the refusal does not say why: $(last_line "$CR_ERR")"; return 1; }
	grep -q ' uw' "/proc/$WL_PID/smaps" && { REASON="a mapping is left tracked"; return 1; }
	runs_on_after_refusal
}

PY_UNTOUCHED='
import mmap, os, random, sys, threading, time
d = sys.argv[1]
token = "%d-%d" % (os.getpid(), random.randrange(1 << 30))
big = mmap.mmap(-1, 256 << 20)
data = [random.random() for _ in range(10000)]
def worker():
    junk = [0] * 1000
    while not os.path.exists(d + "/go"):
        time.sleep(0.01)
threading.Thread(target=worker).start()
open(d + "/ready", "w").write("%d %s" % (os.getpid(), token))
s = sum(data)
while not os.path.exists(d + "/go"):
    time.sleep(0.01)
ok = sum(data) == s and big[12345] == 0
open(d + "/result", "w").write(("PASS " if ok else "FAIL ") + token)
'

# py_restore_pass DIR TOKEN: restored from DIR, python3 runs, is told to
# go, and must report PASS TOKEN.
py_restore_pass() {
	cr_run restore restore -D "$1" --detach ||
		{ REASON="cr restore failed (exit $CR_STATUS): $(last_line "$CR_ERR")"; return 1; }
	wait_until 10 running_free "$PY_PID" "$PY_EXE" || { REASON="python3 does not run: $(describe_pid "$PY_PID")"; return 1; }
	touch "$PY_DIR/go"
	wait_until 20 test -e "$PY_DIR/result" || { REASON="no result from python3: $(tail -n 3 "$PY_DIR/out")"; return 1; }
	[ "$(cat "$PY_DIR/result")" = "PASS $2" ] || { REASON="python3 reports: $(cat "$PY_DIR/result")"; return 1; }
}

rss_kb() {
	sed -n 's/^Rss: *\([0-9]*\) kB/\1/p' "/proc/$1/smaps_rollup"
}

untouched() {
	local token before after
	py_start "$PY_UNTOUCHED" ready || return 1
	read -r _ token < "$PY_DIR/ready"
	before=$(rss_kb "$PY_PID")
	predump pre1 "$PY_PID" "$CASE_TMP/1" || return 1
	predump pre2 "$PY_PID" "$CASE_TMP/2" --prev-images-dir ../1 || return 1
	after=$(rss_kb "$PY_PID")
	[ "$after" -lt $((before + 4096)) ] ||
		{ REASON="the pre-dumps made memory resident: $before kB before, $after kB after"; return 1; }
	[ "$COPIED" -lt 1024 ] || { REASON="the second round copied $COPIED pages"; return 1; }
	cr_dump dump "$PY_PID" "$CASE_TMP/3" --prev-images-dir ../2 || return 1
	py_restore_pass "$CASE_TMP/3" "$token"
}

PY_CHILDREN='
import hashlib, os, random, subprocess, sys
d = sys.argv[1]
token = "%d-%d" % (os.getpid(), random.randrange(1 << 30))
data = bytearray(os.urandom(8 << 20))
n = 0
open(d + "/ready", "w").write("%d %s" % (os.getpid(), token))
while not os.path.exists(d + "/go"):
    subprocess.run(["true"])
    data[n % len(data)] = n & 0xff
    n += 1
ok = all(data[i % len(data)] == i & 0xff for i in range(max(0, n - 1000), n))
open(d + "/result", "w").write(("PASS " if ok else "FAIL ") + token)
'

children_come_and_go() {
	local token r
	py_start "$PY_CHILDREN" ready || return 1
	read -r _ token < "$PY_DIR/ready"
	predump pre1 "$PY_PID" "$CASE_TMP/1" || return 1
	for r in 2 3 4 5; do
		predump "pre$r" "$PY_PID" "$CASE_TMP/$r" --prev-images-dir "../$((r - 1))" || return 1
	done
	cr_dump dump "$PY_PID" "$CASE_TMP/6" --prev-images-dir ../5 || return 1
	py_restore_pass "$CASE_TMP/6" "$token"
}

PY_PRECOPY='
import hashlib, os, random, signal, sys, time
d = sys.argv[1]
token = "%d-%d" % (os.getpid(), random.randrange(1 << 30))
blocks = [bytearray(os.urandom(1 << 20)) for _ in range(48)]
sums = [hashlib.sha256(b).hexdigest() for b in blocks]
n = 0
open(d + "/ready", "w").write("%d %s" % (os.getpid(), token))
while not os.path.exists(d + "/go"):
    i = n % 4
    blocks[i][n % len(blocks[i])] = n & 0xff
    sums[i] = hashlib.sha256(blocks[i]).hexdigest()
    n += 1
    if n % 50 == 0:   # whole, never read half written
        open(d + "/count.tmp", "w").write(str(n))
        os.rename(d + "/count.tmp", d + "/count")
    time.sleep(0.001)
ok = all(hashlib.sha256(b).hexdigest() == s for b, s in zip(blocks, sums))
ok = ok and n >= int(open(d + "/count_min").read())
open(d + "/result", "w").write(("PASS " if ok else "FAIL ") + token)
'

python_precopy() {
	local token
	py_start "$PY_PRECOPY" ready || return 1
	read -r _ token < "$PY_DIR/ready"
	predump pre1 "$PY_PID" "$CASE_TMP/1" || return 1
	sleep 0.3
	predump pre2 "$PY_PID" "$CASE_TMP/2" --prev-images-dir ../1 || return 1
	[ "$COPIED" -lt 6000 ] || { REASON="the second round copied $COPIED pages of python3's 48 MiB"; return 1; }
	cp "$PY_DIR/count" "$PY_DIR/count_min"
	cr_dump dump "$PY_PID" "$CASE_TMP/3" --prev-images-dir ../2 || return 1
	py_restore_pass "$CASE_TMP/3" "$token"
}

# redis_precopy [signed]: signed, every round is signed and encrypted and
# the restore verifies and decrypts them.
redis_precopy() {
	local dir=$CASE_TMP/redis sock cli v opts=() ropts=()
	if [ "${1:-}" = signed ]; then
		keys SIGN && keys IMAGE || return 1
		opts=(--sign "$CASE_TMP/sk" --encrypt "$CASE_TMP/ik")
		ropts=(--verify "$CASE_TMP/sk.pub" --decrypt "$CASE_TMP/ik")
	fi
	mkdir -p "$dir"
	sock=$dir/redis.sock
	real_start "$dir/out" "$dir" redis-server redis-server --port 0 --unixsocket "$sock" --save '' --appendonly no || return 1
	wait_until 10 test -S "$sock" || { REASON="redis-server made no socket"; return 1; }
	cli=(redis-cli -s "$sock")
	seq 1 20000 | sed 's/.*/SET k& v&/' | "${cli[@]}" >/dev/null || { REASON="redis-cli SET failed"; return 1; }
	predump pre1 "$REAL_PID" "$CASE_TMP/1" "${opts[@]}" || return 1
	seq 1 5000 | sed 's/.*/SET k& w&/' | "${cli[@]}" >/dev/null || { REASON="redis-cli SET failed"; return 1; }
	predump pre2 "$REAL_PID" "$CASE_TMP/2" --prev-images-dir ../1 "${opts[@]}" || return 1
	"${cli[@]}" SET last round3 >/dev/null
	cr_dump dump "$REAL_PID" "$CASE_TMP/3" --prev-images-dir ../2 "${opts[@]}" || return 1
	cr_run restore restore -D "$CASE_TMP/3" --detach "${ropts[@]}" ||
		{ REASON="cr restore failed (exit $CR_STATUS): $(last_line "$CR_ERR")"; return 1; }
	v=$("${cli[@]}" MGET k1 k5000 k5001 k20000 last | tr '\n' ' ')
	[ "$v" = "w1 w5000 v5001 v20000 round3 " ] || { REASON="redis answers: $v"; return 1; }
	v=$("${cli[@]}" DBSIZE)
	[ "$v" = 20001 ] || { REASON="redis holds $v keys, not 20001"; return 1; }
	kill "$REAL_PID"
}

run_case rounds rounds
run_case thp rounds thp
run_case page_server page_server
run_case keeper_gone keeper_gone
run_case leave_running_between leave_running_between
run_case plain_dump_after plain_dump_after
run_case predump_not_dump predump_not_dump
run_case wrong_round wrong_round
run_case damaged_round damaged_round
run_case signed_chain signed_chain
run_case encrypted_chain encrypted_chain
run_case keeper_follows_tree keeper_follows_tree
run_case own_userfaultfd own_userfaultfd
run_case untouched untouched
run_case children_come_and_go children_come_and_go
run_case python_precopy python_precopy
run_case redis_precopy redis_precopy
run_case redis_precopy_signed redis_precopy signed
finish_tests
