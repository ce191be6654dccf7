#!/usr/bin/env bash
# t_maps: mappings of kernel memory objects come back exactly, and one
# object shared by several processes is ONE object again (w_maps: a write
# by one after restore is seen by the other); or the dump refuses them by
# name and leaves the tree running.
#
#   <kind>_*        w_maps KIND (see the workload for each kind): control,
#                   round trip, two hops
#   refused_*       what cr cannot restore is refused by name at dump
source "$(dirname "$0")/lib.sh"

# refused KIND WHAT...: the dump of w_maps KIND fails naming the pid and
# each WHAT; the workload runs on and passes.
refused() {
	local kind=$1
	shift
	wl_start w_maps "$kind" || return 1
	expect_refused_then_pass "$WL_PID" "$@"
}

run_case novdso_control case_control w_maps novdso
run_case novdso_roundtrip case_roundtrip w_maps novdso
run_case novdso_twice case_twice w_maps novdso
run_case guard_roundtrip case_roundtrip w_maps guard
finish_tests
