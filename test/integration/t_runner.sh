#!/usr/bin/env bash
# t_runner: test/run-all.sh, the runner behind `make test`, carries every
# failure to its summary line and its exit status. Each case runs it on fake
# inputs planted in the case's temp dir (unit binaries, integration scripts,
# a kernel test; never the real suites, never this script) and wants a FAIL
# line, a non-zero failed count and a non-zero exit status, or, for the
# all-passing set, "0 failed" and exit 0: the check can fail both ways.
#   all_pass                 every fake passes: "5 passed, 0 failed", exit 0
#   kernel_skipped           CR_SKIP_KERNEL_TEST=1 skips a failing kernel test
#   kernel_exit1             the kernel test fails (exit 1) through the tee
#   kernel_exit2_verdict     ... even when it printed a PASS verdict first
#   kernel_no_verdict        exit 0 without "CR-KERNEL-TEST: PASS"
#   unit_exit1               a unit binary exits 1 with no cmocka FAILED line
#   unit_cmocka_failed       cmocka reports failed tests
#   unit_signal              a unit binary dies of SIGSEGV
#   unit_timeout             a unit binary outlives its timeout
#   unit_no_summary          exit 0 without a cmocka summary
#   unit_none                the unit directory is empty
#   unit_missing_dir         the unit directory does not exist
#   integration_fail_exit0   a script prints FAIL and exits 0
#   integration_exit3        a script exits 3 without printing
#   integration_silent       a script prints nothing and exits 0
#   integration_ok_exit1     a script prints only ok lines and exits 1
#   integration_timeout      a script outlives its timeout
#   integration_none         the integration directory holds no t_*.sh
NEEDS_CR=0
source "$(dirname "$0")/lib.sh"

RUNALL=$ROOT/test/run-all.sh
PASSING_UNIT='echo "[==========] 2 test(s) run."; echo "[  PASSED  ] 2 test(s)."'
PASSING_SCRIPT='echo "ok $(basename "$0" .sh)/one"; echo "ok $(basename "$0" .sh)/two"'
PASSING_KERNEL='echo "kernel-test: [  0s] booting (fake)"; echo "CR-KERNEL-TEST: PASS (fake)"'

# plant FILE BODY: an executable bash script FILE running BODY.
plant() {
	mkdir -p "$(dirname "$1")"
	printf '#!/usr/bin/env bash\n%s\n' "$2" >"$1"
	chmod +x "$1"
}

# The all-passing set: one unit binary (2 tests), one integration script
# (2 cases), one kernel test (1): "5 passed". A case replaces or adds a fake.
plant_passing() {
	UNIT_DIR=$CASE_TMP/unit
	INTEGRATION_DIR=$CASE_TMP/integration
	KERNEL=$CASE_TMP/kernel-test.sh
	plant "$UNIT_DIR/test_good" "$PASSING_UNIT"
	plant "$INTEGRATION_DIR/t_good.sh" "$PASSING_SCRIPT"
	plant "$KERNEL" "$PASSING_KERNEL"
}

# run_runner [ENV=VALUE...]: runs run-all.sh (all steps, as root) on the
# planted inputs. Its output goes to a file, never to stdout: the suite's
# runner counts "ok"/"FAIL" lines at the start of a line, and the planted
# FAILs are not this script's. Sets OUT and RUN_STATUS.
run_runner() {
	OUT=$CASE_TMP/runner.out
	CASE_LOGS+=("$OUT")
	env -u CR_SKIP_KERNEL_TEST \
		CR_RUNALL_UNIT_DIR="$UNIT_DIR" \
		CR_RUNALL_INTEGRATION_DIR="$INTEGRATION_DIR" \
		CR_RUNALL_KERNEL_TEST="bash $(printf %q "$KERNEL")" \
		CR_RUNALL_UNIT_TIMEOUT=10 \
		CR_RUNALL_INTEGRATION_TIMEOUT=10 \
		"$@" timeout -k 5 60 bash "$RUNALL" </dev/null >"$OUT" 2>&1
	RUN_STATUS=$?
}

# expect_failure LINE SUMMARY: the run printed a line starting "FAIL LINE",
# ended with exactly SUMMARY (which must count a failure) and exited non-zero.
expect_failure() {
	local line=$1 summary=$2 last
	last=$(tail -n 1 "$OUT")
	if ! awk -v want="FAIL $line" 'index($0, want) == 1 { found = 1 } END { exit !found }' "$OUT"; then
		REASON="no line 'FAIL $line...' in the runner's output"
		return 1
	fi
	if [ "$last" != "$summary" ]; then
		REASON="the last line is '$last', not '$summary'"
		return 1
	fi
	if [[ ! $last =~ ^[0-9]+\ passed,\ [1-9][0-9]*\ failed$ ]]; then
		REASON="the summary '$last' counts no failure"
		return 1
	fi
	if [ "$RUN_STATUS" = 0 ]; then
		REASON="exit status 0 with '$last'"
		return 1
	fi
}

# expect_success SUMMARY: no FAIL line, exactly SUMMARY last, exit 0.
expect_success() {
	local summary=$1 last
	last=$(tail -n 1 "$OUT")
	if grep -q '^FAIL ' "$OUT"; then
		REASON="a FAIL line: $(grep -m 1 '^FAIL ' "$OUT")"
		return 1
	fi
	if [ "$last" != "$summary" ]; then
		REASON="the last line is '$last', not '$summary'"
		return 1
	fi
	if [ "$RUN_STATUS" != 0 ]; then
		REASON="exit status $RUN_STATUS with '$last'"
		return 1
	fi
}

# ---- the all-passing set ------------------------------------------------------

all_pass() {
	plant_passing
	run_runner
	expect_success "5 passed, 0 failed"
}

kernel_skipped() {
	plant_passing
	plant "$KERNEL" 'echo "CR-KERNEL-TEST: FAIL (fake)"; exit 1'
	run_runner CR_SKIP_KERNEL_TEST=1
	expect_success "4 passed, 0 failed" || return 1
	grep -q '^# kernel test skipped' "$OUT" || { REASON="no '# kernel test skipped' line"; return 1; }
}

# ---- the kernel test ----------------------------------------------------------

# What happened once: apt-get could not take its lock; the test exited 1.
kernel_exit1() {
	plant_passing
	plant "$KERNEL" 'echo "kernel-test: [  0s] installing packages"
echo "E: Could not get lock /var/lib/dpkg/lock-frontend" >&2
exit 1'
	run_runner
	expect_failure "kernel-test: exit 1" "4 passed, 1 failed"
}

kernel_exit2_verdict() {
	plant_passing
	plant "$KERNEL" 'echo "CR-KERNEL-TEST: PASS (fake)"; exit 2'
	run_runner
	expect_failure "kernel-test: exit 2" "4 passed, 1 failed"
}

kernel_no_verdict() {
	plant_passing
	plant "$KERNEL" 'echo "kernel-test: [  0s] all done, honest"'
	run_runner
	expect_failure "kernel-test: no CR-KERNEL-TEST verdict" "4 passed, 1 failed"
}

# ---- unit binaries ------------------------------------------------------------

unit_exit1() {
	plant_passing
	plant "$UNIT_DIR/test_bad" 'echo "[  PASSED  ] 1 test(s)."; exit 1'
	run_runner
	expect_failure "unit/test_bad: exit 1" "6 passed, 1 failed"
}

unit_cmocka_failed() {
	plant_passing
	plant "$UNIT_DIR/test_bad" 'echo "[  PASSED  ] 1 test(s)."
echo "[  FAILED  ] 2 test(s), listed below:"
echo "[  FAILED  ] test_x"
echo "[  FAILED  ] test_y"
exit 2'
	run_runner
	expect_failure "unit/test_bad: exit 2, 2 test(s) failed" "6 passed, 2 failed"
}

# No core file: the fake runs in the repo root.
unit_signal() {
	plant_passing
	plant "$UNIT_DIR/test_bad" 'ulimit -c 0; echo "[ RUN      ] test_crash"; kill -SEGV $$'
	run_runner
	expect_failure "unit/test_bad: killed by SIGSEGV" "5 passed, 1 failed"
}

unit_timeout() {
	plant_passing
	plant "$UNIT_DIR/test_bad" 'sleep 30'
	run_runner CR_RUNALL_UNIT_TIMEOUT=1
	expect_failure "unit/test_bad: timed out after 1 s" "5 passed, 1 failed"
}

unit_no_summary() {
	plant_passing
	plant "$UNIT_DIR/test_bad" 'echo "hello, not cmocka"'
	run_runner
	expect_failure "unit/test_bad: no cmocka summary" "5 passed, 1 failed"
}

unit_none() {
	plant_passing
	rm -f "$UNIT_DIR"/test_*
	run_runner
	expect_failure "unit: no unit test binaries in" "3 passed, 1 failed"
}

unit_missing_dir() {
	plant_passing
	rm -rf "$UNIT_DIR"
	run_runner
	expect_failure "unit: no directory" "3 passed, 1 failed"
}

# ---- integration scripts ------------------------------------------------------

integration_fail_exit0() {
	plant_passing
	plant "$INTEGRATION_DIR/t_bad.sh" 'echo "ok t_bad/one"; echo "FAIL t_bad/two: planted"; exit 0'
	run_runner
	expect_failure "t_bad/two: planted" "6 passed, 1 failed"
}

integration_exit3() {
	plant_passing
	plant "$INTEGRATION_DIR/t_bad.sh" 'exit 3'
	run_runner
	expect_failure "t_bad: exited 3 without reporting a failure" "5 passed, 1 failed"
}

integration_silent() {
	plant_passing
	plant "$INTEGRATION_DIR/t_bad.sh" ':'
	run_runner
	expect_failure "t_bad: ran no test" "5 passed, 1 failed"
}

integration_ok_exit1() {
	plant_passing
	plant "$INTEGRATION_DIR/t_bad.sh" 'echo "ok t_bad/one"; exit 1'
	run_runner
	expect_failure "t_bad: exited 1 without reporting a failure" "6 passed, 1 failed"
}

integration_timeout() {
	plant_passing
	plant "$INTEGRATION_DIR/t_bad.sh" 'echo "ok t_bad/one"; sleep 30'
	run_runner CR_RUNALL_INTEGRATION_TIMEOUT=1
	expect_failure "t_bad: timed out after 1 s" "6 passed, 1 failed"
}

integration_none() {
	plant_passing
	rm -f "$INTEGRATION_DIR"/t_*.sh
	run_runner
	expect_failure "integration: no t_*.sh in" "3 passed, 1 failed"
}

run_case all_pass all_pass
run_case kernel_skipped kernel_skipped
run_case kernel_exit1 kernel_exit1
run_case kernel_exit2_verdict kernel_exit2_verdict
run_case kernel_no_verdict kernel_no_verdict
run_case unit_exit1 unit_exit1
run_case unit_cmocka_failed unit_cmocka_failed
run_case unit_signal unit_signal
run_case unit_timeout unit_timeout
run_case unit_no_summary unit_no_summary
run_case unit_none unit_none
run_case unit_missing_dir unit_missing_dir
run_case integration_fail_exit0 integration_fail_exit0
run_case integration_exit3 integration_exit3
run_case integration_silent integration_silent
run_case integration_ok_exit1 integration_ok_exit1
run_case integration_timeout integration_timeout
run_case integration_none integration_none
finish_tests
