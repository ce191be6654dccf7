#!/usr/bin/env bash
# test/run-all.sh [--unit-only|--integration-only]
#
# Runs the cmocka unit tests (build/test/unit/test_*, from the repo root) and
# the integration suite (test/integration/t_*.sh, each below the subreaper
# helper), prints one line per test ("ok NAME" / "FAIL NAME: why") and ends
# with the summary line "N passed, N failed". Exits non-zero if anything
# failed. The integration suite needs root; without it, it is reported as a
# failure, not silently skipped.
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

UNIT_TIMEOUT=300        # seconds for one unit test binary
INTEGRATION_TIMEOUT=420 # seconds for one integration script (its own watchdog fires first)
passed=0
failed=0
log=$(mktemp /tmp/cr-run-all.XXXX)
trap 'rm -f "$log"' EXIT

# cmocka prints "[  PASSED  ] N test(s)." and "[  FAILED  ] N test(s)...".
cmocka_count() {
	sed -n "s/^\[  $1  \] \([0-9]*\) test.*/\1/p" "$log" | tail -n 1
}

run_unit() {
	local bin name status np nf
	local bins=("${BUILD:-build}"/test/unit/test_*)
	if [ ! -e "${bins[0]}" ]; then
		echo "# no unit test binaries in build/test/unit (make unit-bins)"
		return
	fi
	for bin in "${bins[@]}"; do
		[ -x "$bin" ] || continue
		name=unit/${bin##*/}
		timeout -k 5 "$UNIT_TIMEOUT" "$bin" >"$log" 2>&1
		status=$?
		np=$(cmocka_count PASSED)
		nf=$(cmocka_count FAILED)
		if [ "$status" = 0 ] && [ -z "$nf" ]; then
			echo "ok $name (${np:-1} tests)"
			passed=$((passed + ${np:-1}))
		else
			echo "FAIL $name: exit $status${nf:+, $nf test(s) failed}"
			tail -n 40 "$log" | sed 's/^/    /'
			passed=$((passed + ${np:-0}))
			failed=$((failed + ${nf:-1}))
		fi
	done
}

run_integration() {
	local script name status nok nfail
	if [ "$(id -u)" -ne 0 ]; then
		echo "FAIL integration: skipped, the integration tests need root (CI runs them as root)"
		failed=$((failed + 1))
		return
	fi
	source scripts/wide-pids.sh
	for script in test/integration/t_*.sh; do
		name=$(basename "$script" .sh)
		timeout -k 10 "$INTEGRATION_TIMEOUT" bash "$script" </dev/null 2>&1 | tee "$log"
		status=${PIPESTATUS[0]}
		nok=$(grep -c '^ok ' "$log")
		nfail=$(grep -c '^FAIL ' "$log")
		passed=$((passed + nok))
		failed=$((failed + nfail))
		if [ "$status" != 0 ] && [ "$nfail" = 0 ]; then
			echo "FAIL $name: exited $status without reporting a failure"
			failed=$((failed + 1))
		elif [ "$status" = 0 ] && [ "$nok" = 0 ]; then
			echo "FAIL $name: ran no test"
			failed=$((failed + 1))
		fi
	done
}

# The clone2 kernel: built, booted under qemu and tested inside (slow the
# first time on a machine, about 9 minutes; cached after that).
run_kernel() {
	if [ -n "${CR_SKIP_KERNEL_TEST:-}" ]; then
		echo "# kernel test skipped (CR_SKIP_KERNEL_TEST is set)"
		return
	fi
	if bash scripts/kernel-test.sh 2>&1 | tee "$log"; then
		echo "ok kernel-test: $(grep -o 'CR-KERNEL-TEST: .*' "$log" | tail -n 1)"
		passed=$((passed + 1))
	else
		echo "FAIL kernel-test: $(grep -o 'CR-KERNEL-TEST: .*' "$log" | tail -n 1)"
		failed=$((failed + 1))
	fi
}

[ "$mode" != integration ] && [ "$mode" != kernel ] && run_unit
[ "$mode" != unit ] && [ "$mode" != kernel ] && run_integration
[ "$mode" = all ] && [ "$(id -u)" = 0 ] && run_kernel

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
