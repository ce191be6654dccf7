# shellcheck shell=bash
# scripts/clean-exec.sh — sourced (test/integration/lib.sh,
# scripts/migrate-lab.sh).
#
# clean_exec CMD [ARGS...]: execs CMD with only fds 0-2 open.  A real
# program under test must not inherit the harness's pipes: cr refuses a
# pipe that a process outside the dump holds too.  Run it in a subshell:
# ( clean_exec sleep 3 ) </dev/null >/dev/null 2>&1 &
clean_exec() {
	local fd
	for fd in /proc/$BASHPID/fd/*; do
		fd=${fd##*/}
		[ "$fd" -gt 2 ] && eval "exec $fd>&-" 2>/dev/null
	done
	exec "$@"
}
