#!/usr/bin/env bash
# test/run-all.sh [--unit-only|--integration-only]
#
# Runs the cmocka unit tests (build/test/unit/test_*, from the repo root),
# the integration suite (test/integration/t_*.sh; each re-executes itself
# below the subreaper helper) and, as root with no option, the kernel test;
# prints one line per test ("ok NAME" / "FAIL NAME: why") and ends with the
# summary line "N passed, N failed". Exits non-zero if and only if anything
# failed. The integration suite needs root; without it, it is reported as a
# failure, not silently skipped.
#
# Every step carries its failure to the summary: a unit binary that crashes,
# times out, prints no cmocka summary or is missing; an integration script
# that times out, reports FAIL, exits non-zero or runs no test; a kernel test
# that exits non-zero or does not print "CR-KERNEL-TEST: PASS".
#
# Environment (the defaults are what `make test` runs; test/integration/
# t_runner.sh points them at planted failures; paths are relative to the
# repo root):
#   CR_RUNALL_UNIT_DIR             unit binaries (default $BUILD/test/unit,
#                                  BUILD defaulting to build)
#   CR_RUNALL_INTEGRATION_DIR      the t_*.sh scripts (default test/integration)
#   CR_RUNALL_KERNEL_TEST          the kernel test, a command run by bash -c
#                                  (default "bash scripts/kernel-test.sh")
#   CR_RUNALL_UNIT_TIMEOUT         seconds for one unit binary (default 300)
#   CR_RUNALL_INTEGRATION_TIMEOUT  seconds for one script (default 420)
#   CR_SKIP_KERNEL_TEST            non-empty: do not run the kernel test
set -u
cd "$(dirname "$0")/.." || exit 1

mode=all
case ${1:-} in
--unit-only) mode=unit ;;
--integration-only) mode=integration ;;
"") ;;
*)
	echo "usage: $0 [--unit-only|--integration-only]" >&2
	exit 2
	;;
esac

UNIT_DIR=${CR_RUNALL_UNIT_DIR:-${BUILD:-build}/test/unit}
INTEGRATION_DIR=${CR_RUNALL_INTEGRATION_DIR:-test/integration}
KERNEL_TEST=${CR_RUNALL_KERNEL_TEST:-bash scripts/kernel-test.sh}
UNIT_TIMEOUT=${CR_RUNALL_UNIT_TIMEOUT:-300}
# An integration script's own watchdog (lib.sh) fires first.
INTEGRATION_TIMEOUT=${CR_RUNALL_INTEGRATION_TIMEOUT:-420}
passed=0
failed=0
log=$(mktemp /tmp/cr-run-all.XXXX) || exit 1
trap 'rm -f "$log"' EXIT

# Pipelines below read PIPESTATUS, never the status of the pipeline itself:
# that is tee's, which succeeds whatever the test did.

# fail NAME WHY [COUNT]: prints the FAIL line and counts COUNT failures
# (default 1; never fewer than 1, so a FAIL line always shows in the summary).
fail() {
	local count=${3:-1}
	[ "$count" -ge 1 ] || count=1
	echo "FAIL $1: $2"
	failed=$((failed + count))
}

# killed STATUS: `timeout` timed the command out (124) or it died of a
# signal (128 + N; 137 is also timeout's -k when the command ignored TERM).
killed() {
	[ "$1" = 124 ] || { [ "$1" -gt 128 ] && [ "$1" -lt 160 ]; }
}

# exit_reason STATUS LIMIT: the status of `timeout LIMIT cmd` in words.
exit_reason() {
	local status=$1 limit=$2
	if [ "$status" = 124 ]; then
		echo "timed out after $limit s"
	elif killed "$status"; then
		echo "killed by SIG$(kill -l $((status - 128))) (exit $status)"
	else
		echo "exit $status"
	fi
}

# because TEXT: appends TEXT to the caller's local "why" (", " between).
because() {
	why=${why:+$why, }$1
}

# cmocka prints "[  PASSED  ] N test(s)." and "[  FAILED  ] N test(s)...".
cmocka_count() {
	sed -n "s/^\[  $1  \] \([0-9]*\) test.*/\1/p" "$log" | tail -n 1
}

run_unit() {
	local bin bins
	# A missing directory or an empty one means no unit test ran: that is a
	# failure of `make test`, not a pass with fewer tests.
	if [ ! -d "$UNIT_DIR" ]; then
		fail unit "no directory $UNIT_DIR (make unit-bins)"
		return
	fi
	bins=("$UNIT_DIR"/test_*)
	if [ ! -e "${bins[0]}" ]; then
		fail unit "no unit test binaries in $UNIT_DIR (make unit-bins)"
		return
	fi
	for bin in "${bins[@]}"; do
		run_unit_bin "$bin"
	done
}

# A binary passes only if it exits 0 and cmocka says at least one test passed
# and none failed; anything else (a crash, a timeout, no summary) is a FAIL.
run_unit_bin() {
	local bin=$1 name=unit/${1##*/} status np nf why=""
	if [ -d "$bin" ] || [ ! -x "$bin" ]; then
		fail "$name" "not an executable file"
		return
	fi
	timeout -k 5 "$UNIT_TIMEOUT" "$bin" </dev/null >"$log" 2>&1
	status=$?
	np=$(cmocka_count PASSED)
	nf=$(cmocka_count FAILED)
	if [ "$status" = 0 ] && [ "${nf:-0}" = 0 ] && [ "${np:-0}" -gt 0 ]; then
		echo "ok $name ($np tests)"
		passed=$((passed + np))
		return
	fi
	[ "$status" != 0 ] && because "$(exit_reason "$status" "$UNIT_TIMEOUT")"
	[ "${nf:-0}" != 0 ] && because "$nf test(s) failed"
	[ -z "$np$nf" ] && because "no cmocka summary"
	[ "$np" = 0 ] && [ -z "$nf" ] && because "ran no test"
	fail "$name" "$why" "${nf:-1}"
	tail -n 40 "$log" | sed 's/^/    /'
	passed=$((passed + ${np:-0}))
}

run_integration() {
	local script scripts
	if [ "$(id -u)" -ne 0 ]; then
		fail integration "skipped, the integration tests need root (CI runs them as root)"
		return
	fi
	if [ ! -d "$INTEGRATION_DIR" ]; then
		fail integration "no directory $INTEGRATION_DIR"
		return
	fi
	scripts=("$INTEGRATION_DIR"/t_*.sh)
	if [ ! -e "${scripts[0]}" ]; then
		fail integration "no t_*.sh in $INTEGRATION_DIR"
		return
	fi
	source scripts/wide-pids.sh
	for script in "${scripts[@]}"; do
		run_integration_script "$script"
	done
}

# A script's own "ok"/"FAIL" lines are counted; the runner adds a FAIL of its
# own when the script was killed, or its exit status and its lines disagree,
# or it ran nothing: each of those would otherwise pass unseen.
run_integration_script() {
	local script=$1 name statuses status tee_status nok nfail
	name=$(basename "$script" .sh)
	timeout -k 10 "$INTEGRATION_TIMEOUT" bash "$script" </dev/null 2>&1 | tee "$log"
	statuses=("${PIPESTATUS[@]}")
	status=${statuses[0]} tee_status=${statuses[1]}
	nok=$(grep -c '^ok ' "$log")
	nfail=$(grep -c '^FAIL ' "$log")
	passed=$((passed + nok))
	failed=$((failed + nfail))
	if [ "$tee_status" != 0 ]; then
		fail "$name" "its output was not logged whole (tee exit $tee_status), so its counts are unknown"
	elif killed "$status"; then
		fail "$name" "$(exit_reason "$status" "$INTEGRATION_TIMEOUT")"
	elif [ "$status" != 0 ] && [ "$nfail" = 0 ]; then
		fail "$name" "exited $status without reporting a failure"
	elif [ "$nok" = 0 ] && [ "$nfail" = 0 ]; then
		fail "$name" "ran no test"
	fi
}

# The clone2 kernel: built, booted under qemu and tested inside (slow the
# first time on a machine, about 12 minutes on a busy 2-core machine;
# cached after that). It passes only if it exits 0 and its last verdict
# line is "CR-KERNEL-TEST: PASS".
run_kernel() {
	local statuses status tee_status verdict why=""
	if [ -n "${CR_SKIP_KERNEL_TEST:-}" ]; then
		echo "# kernel test skipped (CR_SKIP_KERNEL_TEST is set)"
		return
	fi
	bash -c "$KERNEL_TEST" 2>&1 | tee "$log"
	statuses=("${PIPESTATUS[@]}")
	status=${statuses[0]} tee_status=${statuses[1]}
	verdict=$(grep -a '^CR-KERNEL-TEST: ' "$log" | tail -n 1)
	[ "$status" != 0 ] && because "exit $status"
	[ "$tee_status" != 0 ] && because "its output was not logged whole (tee exit $tee_status)"
	case $verdict in
	"CR-KERNEL-TEST: PASS"*) ;;
	"") because "no CR-KERNEL-TEST verdict" ;;
	*) because "$verdict" ;;
	esac
	if [ -z "$why" ]; then
		echo "ok kernel-test: $verdict"
		passed=$((passed + 1))
	else
		fail kernel-test "$why"
	fi
}

[ "$mode" != integration ] && run_unit
[ "$mode" != unit ] && run_integration
[ "$mode" = all ] && [ "$(id -u)" = 0 ] && run_kernel

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
