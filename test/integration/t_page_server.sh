#!/usr/bin/env bash
# t_page_server: a dump sent over TCP (cr dump --page-server) to cr
# page-server, which writes an ordinary image directory; restored from there.
#   roundtrip          w_state over 127.0.0.1, no -D: restored from the
#                      server's directory and passes; the dumping side kept
#                      no images (its scratch directory in /dev/shm is gone)
#   ipv6_local_copy    the same over ::1 with -D: both directories hold the
#                      same images (cmp), and cr show reads the server's
#   python_repl        python3 (unmodified) keeps a counter and a token in
#                      memory: dumped through the page server, restored from
#                      its directory, it goes on counting from where it was
#   no_server          nothing listens: the dump is refused naming the
#                      address before anything is frozen; the process runs
#                      on and passes, no scratch directory is left
#   server_has_dump    the server's directory holds a dump already: the
#                      server refuses it, the dump fails and the process is
#                      left running and passes; the old dump is untouched
#   broken_transfer    a client that stops half way through a file: the
#                      server exits 1 and leaves no file, hidden or not
#   bad_crc            a batch whose crc32 does not match: refused by the
#                      server naming the file, no file left
#   wrong_version      a server speaking transfer version 3: the dump is
#                      refused saying both versions; the process runs on
#   commit             --wait-commit: a dump that kills its tree says so
#                      after the transfer; the server exits 0 saying it is
#                      committed, and the images restore (w_state passes)
#   no_commit          --wait-commit and a dump with --leave-running (its
#                      tree runs on): the server exits 3 saying it was not
#                      committed, the images are whole (cr show reads them),
#                      the process runs on and passes
#   bad_commit         --wait-commit and a client that sends another byte
#                      where the commit belongs: the server exits 1 naming it
#   keys_checked       the server with --verify KEY.pub --decrypt IMGKEY, the
#                      dump with --sign --encrypt: accepted, and restored
#                      from the server's directory with those keys, passes
#   keys_refused       the server with --verify of another key: the dump is
#                      refused naming both keys, the process runs on and
#                      passes, the server exits 1 and keeps no file; the
#                      same for a dump not encrypted sent to a server with
#                      --decrypt, and for one encrypted with another key
source "$(dirname "$0")/lib.sh"

# ps_start DIR [ADDRESS [OPTIONS...]]: cr page-server on a free port;
# PS_PID, PS_PORT, PS_OUT.
ps_start() {
	local dir=$1 address=${2:-127.0.0.1}
	shift $(($# < 2 ? $# : 2))
	PS_OUT=$CASE_TMP/ps.out
	CASE_LOGS+=("$PS_OUT")
	( clean_exec "$CR" page-server -D "$dir" --address "$address" --port 0 "$@" ) </dev/null >"$PS_OUT" 2>&1 &
	PS_PID=$!
	track_pid "$PS_PID"
	wait_until 10 grep -q "^listening on" "$PS_OUT" || { REASON="the page server did not listen: $(cat "$PS_OUT")"; return 1; }
	PS_PORT=$(sed -n 's/^listening on .* port \([0-9]*\)$/\1/p' "$PS_OUT")
}

# ps_status: the page server's exit status (it exits after one dump).
ps_status() {
	local i
	for i in $(seq 100); do
		kill -0 "$PS_PID" 2>/dev/null || break
		sleep 0.1
	done
	wait "$PS_PID"
}

scratch_dirs() {
	ls -d /dev/shm/cr-dump.* 2>/dev/null | sort
}

# scratch_left BEFORE PID: the scratch directories made since BEFORE (a
# scratch_dirs list) by a dump of PID (other cr runs on the machine come
# and go meanwhile).
scratch_left() {
	local d
	for d in $(comm -13 <(echo "$1") <(scratch_dirs)); do
		grep -qs "of pid $2 " "$d/dump.log" && echo "$d"
	done
	return 0
}

# Files in DIR, hidden ones too, but not the server's own log.
files_in() {
	(cd "$1" && ls -A) | grep -v '\.log$' || true
}

roundtrip() {
	local before
	before=$(scratch_dirs)
	ps_start "$CASE_TMP/srv" || return 1
	wl_start w_state || return 1
	cr_run dump dump "$WL_PID" --page-server --address 127.0.0.1 --port "$PS_PORT" ||
		{ REASON="cr dump --page-server failed (exit $CR_STATUS): $(last_line "$CR_ERR")"; return 1; }
	wait_until 5 pid_gone "$WL_PID" || { REASON="pid $WL_PID still exists after the dump"; return 1; }
	ps_status || { REASON="the page server exited $?: $(tail -n 1 "$PS_OUT")"; return 1; }
	grep -q "^received [0-9]* files" "$PS_OUT" || { REASON="the server did not say what it received"; return 1; }
	[ -z "$(scratch_left "$before" "$WL_PID")" ] || { REASON="a scratch directory was left: $(scratch_left "$before" "$WL_PID")"; return 1; }
	cr_restore_detached restore "$CASE_TMP/srv" || return 1
	wl_trigger || return 1
	wl_expect_pass || return 1
	wl_await_exit
}

ipv6_local_copy() {
	local f
	ps_start "$CASE_TMP/srv" ::1 || return 1
	wl_start w_state || return 1
	cr_dump dump "$WL_PID" "$CASE_TMP/img" --page-server --address ::1 --port "$PS_PORT" || return 1
	ps_status || { REASON="the page server exited $?: $(tail -n 1 "$PS_OUT")"; return 1; }
	for f in $(cd "$CASE_TMP/img" && ls -- *.img); do
		cmp -s "$CASE_TMP/img/$f" "$CASE_TMP/srv/$f" || { REASON="$f differs or is missing on the server"; return 1; }
	done
	[ "$(files_in "$CASE_TMP/srv")" = "$(cd "$CASE_TMP/img" && ls -- *.img)" ] ||
		{ REASON="the server holds other files: $(files_in "$CASE_TMP/srv" | tr '\n' ' ')"; return 1; }
	cr_run show show "$CASE_TMP/srv" || { REASON="cr show of the server's directory exited $CR_STATUS"; return 1; }
	grep -q "root pid $WL_PID" "$CASE_TMP/show.out" || { REASON="cr show does not show root pid $WL_PID"; return 1; }
	cr_restore_detached restore "$CASE_TMP/srv" || return 1
	wl_trigger || return 1
	wl_expect_pass || return 1
	wl_await_exit
}

count_above() {
	local n
	n=$(cut -d' ' -f2 "$1")
	[ "$n" -gt "$2" ]
}

python_repl() {
	local dir=$CASE_TMP/py n1 n2 tok
	mkdir -p "$dir"
	ps_start "$CASE_TMP/srv" || return 1
	( clean_exec python3 -c '
import os, random, sys, time
d = sys.argv[1]
token = "%d-%d" % (os.getpid(), random.randrange(1 << 30))
open(d + "/token", "w").write(token)
n = 0
while True:
    n += 1
    with open(d + "/count.tmp", "w") as f:
        f.write("%s %d" % (token, n))
    os.rename(d + "/count.tmp", d + "/count")
    time.sleep(0.05)' "$dir" ) </dev/null >"$dir/out" 2>&1 &
	WL_PID=$!
	track_pid "$WL_PID"
	wait_until 10 test -s "$dir/count" || { REASON="python3 did not count"; return 1; }
	cr_dump dump "$WL_PID" "$CASE_TMP/img" --page-server --address 127.0.0.1 --port "$PS_PORT" || return 1
	ps_status || { REASON="the page server exited $?"; return 1; }
	n1=$(cut -d' ' -f2 "$dir/count")
	cr_run restore restore -D "$CASE_TMP/srv" --detach || { REASON="cr restore failed: $(last_line "$CR_ERR")"; return 1; }
	wait_until 5 count_above "$dir/count" "$((n1 + 3))" ||
		{ REASON="the restored python3 does not count on from $n1: $(cat "$dir/count")"; return 1; }
	tok=$(cut -d' ' -f1 "$dir/count")
	n2=$(cut -d' ' -f2 "$dir/count")
	[ "$tok" = "$(cat "$dir/token")" ] || { REASON="the token changed: $tok, not $(cat "$dir/token")"; return 1; }
	[ "$n2" -le "$((n1 + 200))" ] || { REASON="python3 counts from $n2, not on from $n1 (started again?)"; return 1; }
	kill "$WL_PID"
}

no_server() {
	local before port
	before=$(scratch_dirs)
	wl_start w_state || return 1
	port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
	cr_run dump dump "$WL_PID" --page-server --address 127.0.0.1 --port "$port"
	[ "$CR_STATUS" != 0 ] || { REASON="the dump succeeded with no page server"; return 1; }
	grep -qF "page server at 127.0.0.1 port $port" "$CR_ERR" ||
		{ REASON="the error does not name the server: $(last_line "$CR_ERR")"; return 1; }
	grep -q "frozen" "$CASE_TMP"/dump.err && { REASON="the dump froze the tree"; return 1; }
	[ -z "$(scratch_left "$before" "$WL_PID")" ] || { REASON="a scratch directory was left: $(scratch_left "$before" "$WL_PID")"; return 1; }
	runs_on_after_refusal
}

server_has_dump() {
	local old
	wl_start w_state || return 1
	cr_dump first "$WL_PID" "$CASE_TMP/srv" --leave-running || return 1
	old=$(cd "$CASE_TMP/srv" && sha256sum -- *.img)
	ps_start "$CASE_TMP/srv" || return 1
	cr_run dump dump "$WL_PID" --page-server --address 127.0.0.1 --port "$PS_PORT"
	check_refused "$WL_PID" "$CASE_TMP/none" "page server refused" "in the directory already" || return 1
	ps_status && { REASON="the page server exited 0"; return 1; }
	[ "$(cd "$CASE_TMP/srv" && sha256sum -- *.img)" = "$old" ] || { REASON="the old dump was changed"; return 1; }
	[ -z "$(cd "$CASE_TMP/srv" && ls -A | grep '^\.')" ] || { REASON="hidden files were left"; return 1; }
	runs_on_after_refusal
}

# keys: sk (signing), other (another signing key), ik and ik2 (image keys).
keys() {
	local k
	for k in sk other; do
		cr_run "keygen-$k" keygen "$CASE_TMP/$k" || { REASON="cr keygen failed: $(last_line "$CR_ERR")"; return 1; }
	done
	for k in ik ik2; do
		cr_run "keygen-$k" keygen --secret "$CASE_TMP/$k" ||
			{ REASON="cr keygen --secret failed: $(last_line "$CR_ERR")"; return 1; }
	done
}

keys_checked() {
	keys || return 1
	ps_start "$CASE_TMP/srv" 127.0.0.1 --verify "$CASE_TMP/sk.pub" --decrypt "$CASE_TMP/ik" || return 1
	wl_start w_state || return 1
	cr_run dump dump "$WL_PID" --page-server --address 127.0.0.1 --port "$PS_PORT" --sign "$CASE_TMP/sk" \
		--encrypt "$CASE_TMP/ik" || { REASON="cr dump --page-server failed (exit $CR_STATUS): $(last_line "$CR_ERR")"; return 1; }
	ps_status || { REASON="the page server exited $?: $(tail -n 1 "$PS_OUT")"; return 1; }
	[ -e "$CASE_TMP/srv/inventory.sig" ] || { REASON="no signature on the server"; return 1; }
	cr_restore_detached restore "$CASE_TMP/srv" --verify "$CASE_TMP/sk.pub" --decrypt "$CASE_TMP/ik" || return 1
	wl_trigger || return 1
	wl_expect_pass || return 1
	wl_await_exit
}

# refused_by_server N WORDS SERVER_OPTIONS -- DUMP_OPTIONS: the server
# (in srvN) refuses the dump saying WORDS (each), keeps no file, exits 1;
# the process runs on.
refused_by_server() {
	local n=$1 words=$2 so=()
	shift 2
	while [ "$1" != -- ]; do so+=("$1"); shift; done
	shift
	ps_start "$CASE_TMP/srv$n" 127.0.0.1 "${so[@]}" || return 1
	cr_run "dump$n" dump "$WL_PID" --page-server --address 127.0.0.1 --port "$PS_PORT" "$@"
	check_refused "$WL_PID" "$CASE_TMP/srv$n" "page server refused" "$words" || return 1
	ps_status && { REASON="the page server exited 0"; return 1; }
	[ -z "$(files_in "$CASE_TMP/srv$n")" ] || { REASON="the server kept $(files_in "$CASE_TMP/srv$n" | tr '\n' ' ')"; return 1; }
	running_free "$WL_PID" "$WL_EXE" || { REASON="after the refused dump: $(describe_pid "$WL_PID")"; return 1; }
}

keys_refused() {
	local k fpr
	keys || return 1
	wl_start w_state || return 1
	refused_by_server 1 "not with the key given" --verify "$CASE_TMP/other.pub" -- --sign "$CASE_TMP/sk" || return 1
	for k in sk other; do
		fpr=$(sed -n 's/.*(fingerprint \([0-9a-f]*\))$/\1/p' "$CASE_TMP/keygen-$k.out")
		[ -n "$fpr" ] && grep -q "$fpr" "$CASE_TMP/dump1.err" ||
			{ REASON="the refusal does not name the key $k ('$fpr'): $(last_line "$CASE_TMP/dump1.err")"; return 1; }
	done
	refused_by_server 2 "not encrypted" --decrypt "$CASE_TMP/ik" -- || return 1
	refused_by_server 3 "encrypted with another key" --decrypt "$CASE_TMP/ik2" -- --encrypt "$CASE_TMP/ik" || return 1
	runs_on_after_refusal
}

# fake_client MODE PORT: speaks the protocol, then breaks it as MODE says.
FAKE_CLIENT='
import socket, struct, sys, zlib
mode, port = sys.argv[1], int(sys.argv[2])
s = socket.create_connection(("127.0.0.1", port))
s.sendall(b"CRXFER\0\0" + struct.pack("<II", 2, 0))
s.recv(16)
data = b"x" * 5000
name = b"pages-1.img"
s.sendall(b"F" + struct.pack("<H", len(name)) + name + struct.pack("<IQ", 0o600, len(data)))
if mode == "broken":
    s.sendall(struct.pack("<II", 2000, zlib.crc32(data[:2000])) + data[:2000])
    s.close()
elif mode == "commit_x":
    s.sendall(struct.pack("<II", len(data), zlib.crc32(data)) + data)
    s.sendall(b"E" + struct.pack("<I", 1))
    print("answer", s.recv(6), flush=True)
    s.sendall(b"X")
    s.recv(1)
else:
    s.sendall(struct.pack("<II", len(data), zlib.crc32(data) ^ 1) + data)
    s.sendall(b"E" + struct.pack("<I", 1))
    got = b""
    while True:
        b = s.recv(600)
        if not b:
            break
        got += b
    print(got[6:].decode(errors="replace"))
'

fake_case() {
	local mode=$1 words=$2
	ps_start "$CASE_TMP/srv" || return 1
	python3 -c "$FAKE_CLIENT" "$mode" "$PS_PORT" >"$CASE_TMP/client.out" 2>&1
	ps_status && { REASON="the page server exited 0"; return 1; }
	grep -qF "$words" "$PS_OUT" || { REASON="the server does not say '$words': $(tail -n 1 "$PS_OUT")"; return 1; }
	[ -z "$(files_in "$CASE_TMP/srv")" ] || { REASON="files left: $(files_in "$CASE_TMP/srv" | tr '\n' ' ')"; return 1; }
	[ "$mode" = broken ] || grep -qF "$words" "$CASE_TMP/client.out" ||
		{ REASON="the client was not told: $(cat "$CASE_TMP/client.out")"; return 1; }
}

wrong_version() {
	local port
	wl_start w_state || return 1
	python3 -c '
import socket, struct, sys
l = socket.socket(); l.bind(("127.0.0.1", 0)); l.listen(1)
print(l.getsockname()[1], flush=True)
c, _ = l.accept()
c.sendall(b"CRXFER\0\0" + struct.pack("<II", 3, 0))
c.recv(16)
c.close()' >"$CASE_TMP/fake.out" 2>&1 &
	track_pid $!
	wait_until 5 test -s "$CASE_TMP/fake.out" || { REASON="the fake server did not start"; return 1; }
	port=$(head -n 1 "$CASE_TMP/fake.out")
	cr_run dump dump "$WL_PID" --page-server --address 127.0.0.1 --port "$port"
	[ "$CR_STATUS" != 0 ] || { REASON="the dump succeeded"; return 1; }
	grep -qF "transfer version 3, this cr version 2" "$CR_ERR" ||
		{ REASON="the error does not say both versions: $(last_line "$CR_ERR")"; return 1; }
	runs_on_after_refusal
}

# commit_dump STATUS [OPTION...]: w_state dumped with OPTIONs to a page
# server with --wait-commit, which must exit STATUS.
commit_dump() {
	local want=$1 status=0
	shift
	ps_start "$CASE_TMP/srv" 127.0.0.1 --wait-commit || return 1
	wl_start w_state || return 1
	cr_run dump dump "$WL_PID" "$@" --page-server --address 127.0.0.1 --port "$PS_PORT" ||
		{ REASON="cr dump --page-server failed (exit $CR_STATUS): $(last_line "$CR_ERR")"; return 1; }
	ps_status || status=$?
	[ "$status" = "$want" ] || { REASON="the page server exited $status, not $want: $(tail -n 1 "$PS_OUT")"; return 1; }
}

commit() {
	commit_dump 0 || return 1
	grep -qx "committed: the tree is gone from the source" "$PS_OUT" ||
		{ REASON="the server does not say it is committed: $(tail -n 1 "$PS_OUT")"; return 1; }
	pid_gone "$WL_PID" || { REASON="pid $WL_PID still exists after the commit"; return 1; }
	cr_restore_detached restore "$CASE_TMP/srv" || return 1
	wl_trigger || return 1
	wl_expect_pass || return 1
	wl_await_exit
}

no_commit() {
	commit_dump 3 --leave-running || return 1
	grep -q "^not committed: the dump ended without saying its tree is gone" "$PS_OUT" ||
		{ REASON="the server does not say it was not committed: $(tail -n 1 "$PS_OUT")"; return 1; }
	cr_run show show "$CASE_TMP/srv" || { REASON="cr show of the whole images failed: $(last_line "$CR_ERR")"; return 1; }
	wl_trigger || return 1
	wl_expect_pass || return 1
	wl_await_exit
}

bad_commit() {
	local status=0
	ps_start "$CASE_TMP/srv" 127.0.0.1 --wait-commit || return 1
	python3 -c "$FAKE_CLIENT" commit_x "$PS_PORT" >"$CASE_TMP/client.out" 2>&1
	ps_status || status=$?
	[ "$status" = 1 ] || { REASON="the page server exited $status, not 1: $(tail -n 1 "$PS_OUT")"; return 1; }
	grep -qF "the client sent 0x58 where a commit or the end belongs" "$PS_OUT" ||
		{ REASON="the server does not name the byte: $(tail -n 1 "$PS_OUT")"; return 1; }
}

run_case roundtrip roundtrip
run_case ipv6_local_copy ipv6_local_copy
run_case python_repl python_repl
run_case no_server no_server
run_case server_has_dump server_has_dump
run_case broken_transfer fake_case broken "closed in the middle of the transfer"
run_case bad_crc fake_case crc "pages-1.img: a batch at byte 0 fails its crc32"
run_case wrong_version wrong_version
run_case commit commit
run_case no_commit no_commit
run_case bad_commit bad_commit
run_case keys_checked keys_checked
run_case keys_refused keys_refused
finish_tests
