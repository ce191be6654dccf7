# Sourced by the test runner and the bench. Pids are handed out cyclically:
# with the default pid_max of 32768, a busy host (a kernel build) comes round
# to a freed pid within seconds, so another process can take a dumped pid
# between dump and restore. The kernel's limit makes that rare.
PID_MAX_LIMIT=4194304
if [ "$(id -u)" = 0 ] && [ "$(cat /proc/sys/kernel/pid_max)" -lt "$PID_MAX_LIMIT" ]; then
	echo "$PID_MAX_LIMIT" > /proc/sys/kernel/pid_max 2>/dev/null ||
		echo "# could not raise pid_max; a dumped pid may be taken before it is restored" >&2
fi
