#!/usr/bin/env bash
# t_manyfds: processes with many fds, or fds near their RLIMIT_NOFILE, come
# back with every fd (w_manyfds checks each one's offset, access mode,
# close-on-exec flag, shared descriptions and its RLIMIT_NOFILE), or are
# refused at dump, by name, while they still run.  HARD is the hard
# RLIMIT_NOFILE the tests (and so cr) run with; it cannot be raised here.
#
#   control_manyfds / sabotage_offset   the workload's checks pass, and fail
#                 when one fd's offset is moved.
#   roundtrip_many      MANY (6/10 of HARD) fds: restored, all of them in
#                 place (cr's own fds no longer take one slot per file).
#   fd_near_limit       one fd 10 below HARD: restored (cr's own fds find
#                 room in the gap below it).
#   many_near_limit     MANY fds with the process's own limit just
#                 above them: restored with that limit.
#   no_room_refused     fds up to 5 below HARD: a restore would find no
#                 room for cr's own fds, so the dump is refused naming the
#                 pid and RLIMIT_NOFILE; the process runs on and passes.
source "$(dirname "$0")/lib.sh"

HARD=$(ulimit -Hn)
[ "$HARD" = unlimited ] && HARD=1048576
MANY=$((HARD * 6 / 10))
[ "$MANY" -gt 12000 ] && MANY=12000

no_room_refused() {
	wl_start w_manyfds $((HARD - 8)) || return 1
	expect_refused_then_pass "$WL_PID" RLIMIT_NOFILE
}

run_case control_manyfds case_control w_manyfds 500
run_case sabotage_offset case_sabotaged offset "(offsets)" w_manyfds 500
run_case roundtrip_many case_roundtrip w_manyfds "$MANY"
run_case fd_near_limit case_roundtrip w_manyfds 100 $((HARD - 10))
run_case many_near_limit case_roundtrip w_manyfds "$MANY" 0 $((MANY + 10))
run_case no_room_refused no_room_refused
finish_tests
