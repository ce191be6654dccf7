#!/usr/bin/env bash
# t_fown: signal-driven I/O comes back: each description's SIGIO owner
# (F_SETOWN_EX: a thread, a process), its signal (F_SETSIG) and O_ASYNC.
# w_fown checks owners, signal and flags itself and must receive its
#   signal, in the owning thread, for data written after restore.
# python_sigio: unmodified python3 reads a FIFO with O_ASYNC and a SIGIO
#   handler; data written into the FIFO after restore must reach the handler.
source "$(dirname "$0")/lib.sh"

python_sigio() {
	local img=$CASE_TMP/img fifo=$CASE_TMP/fifo mark=$CASE_TMP/mark pid
	mkfifo "$fifo"
	cat > "$CASE_TMP/sigio.py" <<'PY'
import fcntl, os, signal, sys
fifo, mark = sys.argv[1], sys.argv[2]
fd = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
def on_sigio(sig, frame):
    try:
        data = os.read(fd, 100)
    except BlockingIOError:
        data = b''
    with open(mark, 'a') as f:
        f.write(data.decode())
signal.signal(signal.SIGIO, on_sigio)
fcntl.fcntl(fd, fcntl.F_SETOWN, os.getpid())
fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) | os.O_ASYNC)
open(mark + '.ready', 'w').close()
while True:
    signal.pause()
PY
	( clean_exec python3 "$CASE_TMP/sigio.py" "$fifo" "$mark" ) </dev/null >/dev/null 2>&1 &
	pid=$!
	track_pid "$pid"
	wait_until 10 test -e "$mark.ready" || { REASON="python did not start"; return 1; }
	cr_dump dump "$pid" "$CASE_TMP/img" || return 1
	cr_run restore restore -D "$img" --detach || { REASON="cr restore failed: $(last_line "$CR_ERR")"; return 1; }
	echo "token$$" > "$fifo"
	wait_until 5 grep -q "token$$" "$mark" || { REASON="the SIGIO handler did not get the data written after restore"; return 1; }
	kill "$pid"
}

# python3 makes its parent (outside the dump) the owner of a FIFO: the dump
# refuses it by name and python runs on.
owner_outside_refused() {
	local fifo=$CASE_TMP/fifo pid
	mkfifo "$fifo"
	( clean_exec python3 -c '
import fcntl, os, signal, sys
fd = os.open(sys.argv[1], os.O_RDONLY | os.O_NONBLOCK)
fcntl.fcntl(fd, fcntl.F_SETOWN, os.getppid())
open(sys.argv[1] + ".ready", "w").close()
while True:
    signal.pause()' "$fifo" ) </dev/null >/dev/null 2>&1 &
	pid=$!
	track_pid "$pid"
	wait_until 10 test -e "$fifo.ready" || { REASON="python did not start"; return 1; }
	expect_refused "$pid" "$CASE_TMP/img" "SIGIO owner" || return 1
	proc_alive "$pid" && [ "$(status_field "$pid" TracerPid)" = 0 ] || { REASON="python after the refusal: $(describe_pid "$pid")"; return 1; }
	kill "$pid"
}

run_case owners_and_signal case_roundtrip w_fown
run_case owner_outside_refused owner_outside_refused
run_case python_sigio python_sigio
finish_tests
