#!/usr/bin/env bash
# t_reopen: the restore reopens a process's files as that process would,
# never through a symbolic link, and only the very files that were dumped.
# symlink_swapped: an unprivileged sh holds a file of its own open for
#   writing; after the dump the path is made a symlink to a root-only
#   file: the restore refuses, naming the path, and the root file is
#   untouched; with the file put back, the same images restore.
# decoy: the file is replaced by a copy with the same owner, mode, size
#   and mtime: on the boot of the dump its inode tells, and the restore
#   refuses it; with the original back, it restores.
# mapped_decoy: the same for a file python3 maps (mmap), which is opened
#   by the restore for the mapping rather than as an fd.
# procfs_own_file: python3 holds its own /proc/self/status open, read
#   part way: a file whose inode is new in every process and which exists
#   only once the restored process does; it comes back by its path and
#   python reads its own status through it.
# deleted_dir_swapped: an unprivileged sh holds a file it deleted; after
#   the dump its directory is made a symlink to a root-only directory: the
#   restore, which creates the file again at its path and unlinks it,
#   refuses, naming the path, and creates nothing there; with the
#   directory put back, it restores with "PATH (deleted)".
# dropped_privileges: python3 opens a root-only log as root, then becomes
#   uid 1000: its own credentials may no longer open the log, cr opens the
#   very same file for it, and python writes to it after the restore.
source "$(dirname "$0")/lib.sh"

USER_ID=1000
SLEEP=$(readlink -f "$(command -v sleep)")

# A directory uid 1000 may enter and write: the test's own is 0700.
open_dir() {
	FILES=$CASE_TMP/files
	mkdir -p "$FILES"
	chmod o+x "$(dirname "$CASE_TMP")" "$CASE_TMP"
	chmod 1777 "$FILES"
}

# start_unprivileged SCRIPT FILE: sh -c SCRIPT sh FILE as uid USER_ID, the
# script ending in sleep (which keeps its fds).
start_unprivileged() {
	( clean_exec setpriv --reuid="$USER_ID" --regid="$USER_ID" --clear-groups \
		sh -c "$1" sh "$2" ) </dev/null >/dev/null 2>&1 &
	WL_PID=$!
	WL_EXE=$SLEEP
	WL_NAME=sleep
	disown "$WL_PID"
	track_pid "$WL_PID"
	wait_until 5 blocked_in "$WL_PID" 230 || { REASON="sleep did not start: $(describe_pid "$WL_PID")"; return 1; }
}

# Unprivileged sh, file descriptor 3 open for appending on $FILES/mine,
# then sleep.
start_holder() {
	: > "$FILES/mine"
	chown "$USER_ID:$USER_ID" "$FILES/mine"
	echo "secret $$" > "$FILES/secret"
	chmod 600 "$FILES/secret"
	start_unprivileged 'exec 3>>"$1"; exec sleep 1000' "$FILES/mine"
}

# The restore of $CASE_TMP/img fails naming the path and saying WORDS; no
# process is left and the secret is unchanged.
restore_refused() {
	if cr_run restore restore -D "$CASE_TMP/img" --detach; then
		REASON="the restore succeeded"
		return 1
	fi
	grep -qF "$FILES/mine" "$CR_ERR" && grep -qF "$1" "$CR_ERR" ||
		{ REASON="the error does not name $FILES/mine and say '$1': $(last_line "$CR_ERR")"; return 1; }
	pid_gone "$WL_PID" || { REASON="pid $WL_PID exists after the refused restore: $(describe_pid "$WL_PID")"; return 1; }
	[ "$(cat "$FILES/secret")" = "secret $$" ] || { REASON="the root-only file changed"; return 1; }
}

# Once the file is back, the images restore and the fd writes to it.
restores_when_back() {
	cr_restore_detached restore-back "$CASE_TMP/img" || return 1
	echo "through fd 3" > /proc/"$WL_PID"/fd/3 ||
		{ REASON="cannot write through the restored fd 3"; return 1; }
	grep -q "through fd 3" "$FILES/mine" || { REASON="fd 3 does not lead to $FILES/mine"; return 1; }
	[ "$(stat -c %u /proc/"$WL_PID"/status)" = "$USER_ID" ] || { REASON="the restored sleep is not uid $USER_ID"; return 1; }
}

symlink_swapped() {
	open_dir
	start_holder || return 1
	cr_dump dump "$WL_PID" "$CASE_TMP/img" || return 1
	mv "$FILES/mine" "$FILES/mine.real"
	ln -s "$FILES/secret" "$FILES/mine"
	restore_refused "symbolic link" || return 1
	rm "$FILES/mine"
	mv "$FILES/mine.real" "$FILES/mine"
	restores_when_back
}

deleted_dir_swapped() {
	local root=$CASE_TMP/rootonly link
	open_dir
	mkdir -m 1777 "$FILES/d"
	mkdir -m 700 "$root"
	start_unprivileged 'exec 3>"$1"; echo kept >&3; rm "$1"; exec sleep 1000' "$FILES/d/gone" || return 1
	cr_dump dump "$WL_PID" "$CASE_TMP/img" || return 1
	mv "$FILES/d" "$FILES/d.real"
	ln -s "$root" "$FILES/d"
	if cr_run restore restore -D "$CASE_TMP/img" --detach; then
		REASON="the restore succeeded through a symlinked directory"
		return 1
	fi
	grep -qF "$FILES/d" "$CR_ERR" && grep -qF "symbolic link" "$CR_ERR" ||
		{ REASON="the error does not name $FILES/d and a symbolic link: $(last_line "$CR_ERR")"; return 1; }
	[ -z "$(ls -A "$root")" ] || { REASON="the refused restore left $(ls -A "$root") in the root-only directory"; return 1; }
	pid_gone "$WL_PID" || { REASON="pid $WL_PID exists after the refused restore"; return 1; }
	rm "$FILES/d"
	mv "$FILES/d.real" "$FILES/d"
	cr_restore_detached restore-back "$CASE_TMP/img" || return 1
	link=$(readlink /proc/"$WL_PID"/fd/3)
	[ "$link" = "$FILES/d/gone (deleted)" ] || { REASON="fd 3 is '$link'"; return 1; }
	[ "$(cat /proc/"$WL_PID"/fd/3)" = kept ] || { REASON="the deleted file lost its contents"; return 1; }
}

decoy() {
	open_dir
	start_holder || return 1
	echo "a line" >> /proc/"$WL_PID"/fd/3
	cr_dump dump "$WL_PID" "$CASE_TMP/img" || return 1
	mv "$FILES/mine" "$FILES/mine.real"
	cp -p "$FILES/mine.real" "$FILES/mine"
	[ "$(stat -c '%s %Y %u %a' "$FILES/mine")" = "$(stat -c '%s %Y %u %a' "$FILES/mine.real")" ] ||
		{ REASON="the decoy differs in more than its inode"; return 1; }
	restore_refused "another file than at dump" || return 1
	mv "$FILES/mine.real" "$FILES/mine"
	restores_when_back
}

# start_python SCRIPT: python3 -c SCRIPT $FILES, until it makes
# $FILES/ready.  Sets WL_PID, WL_NAME, WL_EXE.
start_python() {
	( clean_exec python3 -c "$1" "$FILES" ) </dev/null >/dev/null 2>&1 &
	WL_PID=$!
	disown "$WL_PID"
	track_pid "$WL_PID"
	wait_until 10 test -e "$FILES/ready" || { REASON="python3 did not start: $(describe_pid "$WL_PID")"; return 1; }
	WL_NAME=python3 WL_EXE=$(readlink /proc/"$WL_PID"/exe)
}

PY_MAP='
import mmap, os, sys, time
d = sys.argv[1]
with open(d + "/mapped", "rb") as f: m = mmap.mmap(f.fileno(), 0, prot=mmap.PROT_READ)
open(d + "/ready", "w").close()
while not os.path.exists(d + "/go"): time.sleep(0.01)
open(d + "/result", "w").write("PASS\n" if m[:6] == b"mapped" else "FAIL\n")
time.sleep(1000)
'

mapped_decoy() {
	local pid
	open_dir
	head -c 100000 /dev/urandom | sed '1s/^/mapped/' > "$FILES/mapped"
	start_python "$PY_MAP" || return 1
	pid=$WL_PID
	cr_dump dump "$pid" "$CASE_TMP/img" || return 1
	mv "$FILES/mapped" "$FILES/mapped.real"
	cp -p "$FILES/mapped.real" "$FILES/mapped"
	if cr_run restore restore -D "$CASE_TMP/img" --detach; then
		REASON="the restore succeeded with a decoy in place of the mapped file"
		return 1
	fi
	grep -qF "$FILES/mapped is another file than at dump" "$CR_ERR" ||
		{ REASON="the error does not name the decoy: $(last_line "$CR_ERR")"; return 1; }
	pid_gone "$pid" || { REASON="pid $pid exists after the refused restore"; return 1; }
	mv "$FILES/mapped.real" "$FILES/mapped"
	cr_restore_detached restore-back "$CASE_TMP/img" || return 1
	touch "$FILES/go"
	wait_until 10 test -s "$FILES/result" || { REASON="no result from python3"; return 1; }
	[ "$(cat "$FILES/result")" = PASS ] || { REASON="python3 reports $(cat "$FILES/result")"; return 1; }
}

PY_DROP='
import os, sys, time
d = sys.argv[1]
log = open(d + "/rootlog", "a")
os.setgroups([]); os.setgid(1000); os.setuid(1000)
log.write("before\n"); log.flush()
open(d + "/ready", "w").close()
while not os.path.exists(d + "/go"): time.sleep(0.01)
log.write("after %d\n" % os.getpid()); log.flush()
time.sleep(1000)
'

dropped_privileges() {
	local pid
	open_dir
	echo "root only" > "$FILES/rootlog"
	chmod 600 "$FILES/rootlog"
	start_python "$PY_DROP" || return 1
	pid=$WL_PID
	cr_dump dump "$pid" "$CASE_TMP/img" || return 1
	cr_restore_detached restore "$CASE_TMP/img" || return 1
	touch "$FILES/go"
	wait_until 10 grep -q "after $pid" "$FILES/rootlog" ||
		{ REASON="the restored python3 did not write to its log: $(cat "$FILES/rootlog")"; return 1; }
	[ "$(stat -c %a "$FILES/rootlog")" = 600 ] || { REASON="the log's mode changed"; return 1; }
}

PY_PROCFS='
import os, sys, time
d = sys.argv[1]
f = open("/proc/self/status")
f.read(10)
open(d + "/ready", "w").close()
while not os.path.exists(d + "/go"): time.sleep(0.01)
f.seek(0)
pid = [l.split()[1] for l in f if l.startswith("Pid:")]
open(d + "/result", "w").write("PASS\n" if pid == [str(os.getpid())] else "FAIL %r\n" % pid)
time.sleep(1000)
'

procfs_own_file() {
	open_dir
	start_python "$PY_PROCFS" || return 1
	cr_dump dump "$WL_PID" "$CASE_TMP/img" || return 1
	cr_restore_detached restore "$CASE_TMP/img" || return 1
	touch "$FILES/go"
	wait_until 10 test -s "$FILES/result" || { REASON="no result from python3"; return 1; }
	[ "$(cat "$FILES/result")" = PASS ] || { REASON="python3 reports $(cat "$FILES/result")"; return 1; }
}

run_case symlink_swapped symlink_swapped
run_case decoy decoy
run_case mapped_decoy mapped_decoy
run_case deleted_dir_swapped deleted_dir_swapped
run_case dropped_privileges dropped_privileges
run_case procfs_own_file procfs_own_file
finish_tests
