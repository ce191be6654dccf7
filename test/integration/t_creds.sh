#!/usr/bin/env bash
# t_creds: credentials come back exactly, per thread, and a restored
# process never holds a privilege its dump did not record.
# caps_per_thread: w_caps's two threads, each with capabilities, bounding
#   set, ambient set, securebits, no_new_privs and fs uid of its own,
#   check themselves after restore.
# setpriv_*: unmodified setpriv (util-linux) drops privileges and runs
#   sleep; every credential line of /proc/PID/status and of each thread's
#   status must read the same after restore as before the dump.
# refused_beyond_cr: a capability cr itself lacks cannot be given back: the
#   dump refuses it by name and the process runs on; a restore that lacks
#   it refuses the images before it creates anything.
# audit_loginuid: bash sets its audit login uid and runs sleep; it comes back.
source "$(dirname "$0")/lib.sh"

CRED_FIELDS='^(Uid|Gid|Groups|CapInh|CapPrm|CapEff|CapBnd|CapAmb|NoNewPrivs):'

creds_of() {
	grep -E "$CRED_FIELDS" /proc/"$1"/status
}

# setpriv_roundtrip SETPRIV_ARGS...: sleep under setpriv, dumped and restored.
setpriv_roundtrip() {
	local img=$CASE_TMP/img pid before after
	( clean_exec setpriv "$@" sleep 1000 ) </dev/null >/dev/null 2>&1 &
	pid=$!
	track_pid "$pid"
	wait_until 5 blocked_in "$pid" 230 || { REASON="sleep under setpriv did not start: $(describe_pid "$pid")"; return 1; }
	before=$(creds_of "$pid")
	cr_dump dump "$pid" "$img" || return 1
	cr_run restore restore -D "$img" --detach || {
		REASON="cr restore failed (exit $CR_STATUS): $(last_line "$CR_ERR")"
		return 1
	}
	after=$(creds_of "$pid")
	[ "$after" = "$before" ] || {
		REASON="credentials after restore differ: $(diff <(echo "$before") <(echo "$after") | grep '^[<>]' | tr '\n' ' ')"
		return 1
	}
	kill "$pid"
}

# refused_by_lesser_cr WRAPPER WHY DUMP_SAYS RESTORE_SAYS: a cr started
# through WRAPPER (a command that takes something away from it) refuses to
# dump w_state, saying DUMP_SAYS, and the process runs on; the full cr
# dumps it, the lesser one refuses to restore the images, saying
# RESTORE_SAYS, before anything is created; the full cr restores them.
refused_by_lesser_cr() {
	local wrapper=$1 why=$2 dump_says=$3 restore_says=$4
	local img=$CASE_TMP/img img2=$CASE_TMP/img2 lesser=$CASE_TMP/cr-lesser
	printf '#!/bin/sh\nexec %s %s "$@"\n' "$wrapper" "$CR" > "$lesser"
	chmod +x "$lesser"
	wl_start w_state || return 1
	if CR=$lesser cr_run dump-lesser dump "$WL_PID" -D "$img"; then
		REASON="a cr $why dumped the process"
		return 1
	fi
	grep -q "$dump_says" "$CR_ERR" || { REASON="the dump error does not say '$dump_says': $(last_line "$CR_ERR")"; return 1; }
	running_free "$WL_PID" "$WL_EXE" || { REASON="after the refused dump: $(describe_pid "$WL_PID")"; return 1; }
	cr_dump dump "$WL_PID" "$img2" || return 1
	if CR=$lesser cr_run restore-lesser restore -D "$img2" --detach; then
		REASON="a cr $why restored the process"
		return 1
	fi
	grep -q "$restore_says" "$CR_ERR" ||
		{ REASON="the restore error does not say '$restore_says': $(last_line "$CR_ERR")"; return 1; }
	pid_gone "$WL_PID" || { REASON="the refused restore created pid $WL_PID"; return 1; }
	cr_restore_detached restore "$img2" || return 1
	wl_trigger || return 1
	wl_expect_pass || return 1
	wl_await_exit
}

# A hard limit above cr's own cannot be set again without CAP_SYS_RESOURCE:
# a cr whose hard RLIMIT_NOFILE is lower refuses to dump the process, and
# to restore its images, before anything is created.
refused_hard_limit() {
	refused_by_lesser_cr "prlimit --nofile=64:128" "with a lower hard RLIMIT_NOFILE" "hard RLIMIT_NOFILE" \
		"check the images: .*hard RLIMIT_NOFILE"
}

# The audit login uid a shell set for itself comes back.
loginuid_roundtrip() {
	local img=$CASE_TMP/img pid
	( clean_exec bash -c 'echo 1000 > /proc/self/loginuid && exec sleep 1000' ) </dev/null >/dev/null 2>&1 &
	pid=$!
	track_pid "$pid"
	wait_until 5 blocked_in "$pid" 230 || { REASON="sleep did not start: $(describe_pid "$pid")"; return 1; }
	[ "$(cat /proc/"$pid"/loginuid)" = 1000 ] || { REASON="bash could not set its login uid"; return 1; }
	cr_dump dump "$pid" "$img" || return 1
	cr_run restore restore -D "$img" --detach || { REASON="cr restore failed: $(last_line "$CR_ERR")"; return 1; }
	[ "$(cat /proc/"$pid"/loginuid)" = 1000 ] || { REASON="login uid after restore: $(cat /proc/"$pid"/loginuid)"; return 1; }
	kill "$pid"
}

# cr run without CAP_SYS_BOOT (setpriv) cannot give it back to a process
# that holds it: the dump refuses by name, the process runs on; and a
# restore without it refuses the images of a process that held it.
refused_beyond_cr() {
	refused_by_lesser_cr "setpriv --bounding-set=-sys_boot --inh-caps=-all" "without CAP_SYS_BOOT" \
		"holds capability 22" "held capability 22"
}

run_case caps_per_thread case_roundtrip w_caps
run_case setpriv_no_privileges setpriv_roundtrip --bounding-set=-all --inh-caps=-all --no-new-privs
run_case setpriv_uid_ambient setpriv_roundtrip --reuid=1000 --regid=1000 --clear-groups \
	--inh-caps=+net_bind_service --ambient-caps=+net_bind_service
run_case setpriv_keep_some setpriv_roundtrip --bounding-set=-all,+kill,+chown --securebits=+noroot,+no_setuid_fixup \
	--inh-caps=-all
run_case refused_beyond_cr refused_beyond_cr
run_case audit_loginuid loginuid_roundtrip
run_case refused_hard_limit refused_hard_limit
finish_tests
