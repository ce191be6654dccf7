#!/usr/bin/env bash
# t_aio: Linux native AIO contexts (io_setup) come back with their rings:
# the ring at the same address (the context id the process holds), its
# completions not yet reaped returned by io_getevents after restore, new
# requests and io_destroy working (w_aio MODE, see w_aio.c).
#
#   <mode>_control    w_aio MODE without cr: its checks pass
#   <mode>_roundtrip  dump, restore, check: one (a completion left in the
#                     ring), wrap (five left across the ring's end), two
#                     (two contexts, made after one destroyed), empty
#   <mode>_twice      two hops
#   one_leave_running the dump (--leave-running) takes nothing from the ring
#   show              cr show names the ring and its unreaped completion
#   refused_forked    a child forked after io_setup maps the ring without
#                     the context: the dump refuses it by name, the tree
#                     runs on
#   reap_sabotaged    the workload reaps its completions itself before
#                     checking: the checks must fail
#   fio               Debian's fio, ioengine=libaio (buffered reads: they
#                     complete inside io_submit), dumped while it runs; after
#                     restore it runs to its end and reports its reads
source "$(dirname "$0")/lib.sh"

for mode in one wrap two empty; do
	run_case "${mode}_control" case_control w_aio "$mode"
	run_case "${mode}_roundtrip" case_roundtrip w_aio "$mode"
done
for mode in one wrap two; do
	run_case "${mode}_twice" case_twice w_aio "$mode"
done
run_case one_leave_running case_leave_running w_aio one
refused_forked() {
	local child
	wl_start w_aio forked || return 1
	read -r child < "$WL_DIR/child"
	expect_refused_then_pass "$WL_PID" "pid $child" "aio ring (io_setup) of another process"
}
# fio's job process holds the context; a shell waits for fio and keeps
# its exit status.  After restore the same job process runs out its time
# and reports its reads without an error.
fio_case() {
	local d=$CASE_TMP/fio img=$CASE_TMP/img sh job
	command -v fio >/dev/null || { REASON="fio is not installed (make deps)"; return 1; }
	mkdir -p "$d"
	head -c 4M /dev/urandom > "$d/data"
	CASE_LOGS+=("$d/out" "$d/err")
	( cd "$d" && clean_exec setsid sh -c 'fio --name=j --ioengine=libaio --rw=randread --bs=4k \
		--filename=data --size=4M --time_based --runtime=5 --iodepth=8 --direct=0 --output=out 2>err
		echo $? > rc' ) </dev/null >/dev/null 2>&1 &
	sh=$!
	disown "$sh"
	track_pid "$sh"
	wait_until 10 fio_job_ring "$sh" || { REASON="no fio job with an aio ring: $(ps -o pid,args --ppid "$sh")"; return 1; }
	sleep 1
	job=$FIO_JOB
	cr_dump dump "$sh" "$img" || return 1
	cr_run restore restore -D "$img" --detach || { REASON="cr restore failed: $(last_line "$CR_ERR")"; return 1; }
	[ -e /proc/"$job" ] || { REASON="the fio job (pid $job) is not back"; return 1; }
	wait_until 20 test -s "$d/rc" || { REASON="fio did not end after restore"; return 1; }
	[ "$(cat "$d/rc")" = 0 ] || { REASON="fio exited $(cat "$d/rc"): $(tail -n 2 "$d/err")"; return 1; }
	grep -q "err= 0" "$d/out" && grep -Eq "issued rwts: total=[1-9]" "$d/out" ||
		{ REASON="fio's report has no error-free reads: $(head -n 3 "$d/out")"; return 1; }
}

# fio_job_ring SHPID: a process under the shell maps an aio ring (FIO_JOB).
fio_job_ring() {
	local p
	for p in $(descendants "$1"); do
		grep -q '/\[aio\]' /proc/"$p"/maps 2>/dev/null && FIO_JOB=$p && return 0
	done
	return 1
}

show_case() {
	local img=$CASE_TMP/img
	wl_start w_aio one || return 1
	cr_dump dump "$WL_PID" "$img" --leave-running || return 1
	cr_run show show -D "$img" || { REASON="cr show failed: $(last_line "$CR_ERR")"; return 1; }
	grep -q "aio ring (io_setup [0-9]*), head 1 tail 2, 1 completions not reaped" "$CASE_TMP/show.out" ||
		{ REASON="cr show does not show the ring: $(grep ' rw-s ' "$CASE_TMP/show.out")"; return 1; }
	wl_trigger || return 1
	wl_expect_pass || return 1
	wl_await_exit
}

run_case show show_case
run_case refused_forked refused_forked
run_case fio fio_case
run_case reap_sabotaged case_sabotaged reap "unreaped completion" w_aio one
finish_tests
