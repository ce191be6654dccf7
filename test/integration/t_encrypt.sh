#!/usr/bin/env bash
# t_encrypt: encrypted dumps (cr keygen --secret, cr dump --encrypt,
# cr restore --decrypt, cr show [--decrypt]).  Every refusal happens before
# anything is created: the pid stays free, and the untouched dump then
# restores and passes.
#   python_roundtrip  Debian's python3 keeps a random token in its memory;
#                     a plain dump (the control) holds the token, "python3"
#                     and the interpreter's path, an encrypted one holds none
#                     of them in any image; cr show without the key says
#                     encrypted (text and JSON) and shows nothing else,
#                     restore without the key is refused by name, and
#                     restore --decrypt brings python3 back with its token
#                     (it continues: a new start would draw a new one).
#   refused           a dump encrypted with KEY: another key, a byte changed
#                     in the page image, in core-PID.img and in the inventory,
#                     the page image cut short (inside a record and at a
#                     record's end), the page image of another dump made with
#                     the same key, and a plain dump given --decrypt: each
#                     refused naming the file, nothing created; then the dump
#                     restores and passes.
#   compress_sign     --encrypt with --compress and --sign: cr show says
#                     signed and encrypted, a changed byte is refused by the
#                     signature before anything is decrypted, and restore
#                     --verify --decrypt restores it and it passes.
#   bad_key           a key others may read, and a signing key given to
#                     --encrypt, are refused naming the key file; the process
#                     runs on and no dump is left.
source "$(dirname "$0")/lib.sh"

KEY=$TMP/imgkey
OTHER=$TMP/otherkey
PY=/usr/bin/python3

make_keys() {
	[ -e "$KEY" ] && return 0
	cr_run keygen keygen --secret "$KEY" || { REASON="cr keygen --secret failed: $(last_line "$CR_ERR")"; return 1; }
	[ "$(stat -c %a "$KEY")" = 600 ] || { REASON="the image key is mode $(stat -c %a "$KEY")"; return 1; }
	cr_run keygen-other keygen --secret "$OTHER" || { REASON="cr keygen --secret failed: $(last_line "$CR_ERR")"; return 1; }
	cr_run keygen-sign keygen "$TMP/signkey" || { REASON="cr keygen failed: $(last_line "$CR_ERR")"; return 1; }
}

# copy_of DIR NAME: a fresh copy of DIR (without logs) at $CASE_TMP/NAME.
copy_of() {
	rm -rf "${CASE_TMP:?}/$2"
	cp -a "$1" "$CASE_TMP/$2"
	rm -f "$CASE_TMP/$2"/*.log
	echo "$CASE_TMP/$2"
}

# flip FILE OFFSET: changes one bit of the byte at OFFSET (negative: from the end).
flip() {
	python3 - "$1" "$2" <<'PY'
import sys
path, at = sys.argv[1], int(sys.argv[2])
data = bytearray(open(path, 'rb').read())
data[at] ^= 0x01
open(path, 'wb').write(data)
PY
}

# refused_restore DIR NAME WORDS [OPTIONS...]: cr restore of DIR (with
# OPTIONS, default --decrypt KEY) fails naming NAME and saying WORDS, and
# creates nothing.
refused_restore() {
	local dir=$1 name=$2 words=$3 label
	shift 3
	[ $# -gt 0 ] || set -- --decrypt "$KEY"
	label=$(basename -- "$dir")-$(basename -- "$name")
	cr_run "restore-$label" restore -D "$dir" --detach "$@"
	[ "$CR_STATUS" != 0 ] || { REASON="cr restore accepted $dir ($name)"; return 1; }
	[ "$CR_STATUS" != 124 ] || { REASON="cr restore of $dir timed out"; return 1; }
	grep -qF -- "$name" "$CR_ERR" || { REASON="the refusal does not name $name: $(last_line "$CR_ERR")"; return 1; }
	grep -qF -- "$words" "$CR_ERR" || { REASON="the refusal does not say '$words': $(last_line "$CR_ERR")"; return 1; }
	wait_until 2 pid_gone "$WL_PID" ||
		{ REASON="pid $WL_PID exists after the refused restore: $(describe_pid "$WL_PID")"; return 1; }
}

# restore_passes DIR OPTIONS...: cr restore restores DIR, the workload passes.
restore_passes() {
	local dir=$1
	shift
	cr_restore_detached restore "$dir" "$@" || return 1
	wl_trigger || return 1
	wl_expect_pass || return 1
	wl_await_exit
}

# images_hold DIR TEXT: how many image files of DIR hold TEXT.
images_hold() {
	grep -lF -- "$2" "$1"/*.img 2>/dev/null | wc -l
}

PY_TOKEN='
import os, sys, time
d = sys.argv[1]
token = os.urandom(8).hex()
secret = ["CRENC-%s-%d" % (token, i) for i in range(2000)]
ticks = 0
with open(d + "/ready.tmp", "w") as f: f.write("%d %s\n" % (os.getpid(), token))
os.rename(d + "/ready.tmp", d + "/ready")
while not os.path.exists(d + "/go"):
    ticks += 1
    time.sleep(0.01)
ok = all(s == "CRENC-%s-%d" % (token, i) for i, s in enumerate(secret)) and ticks > 0
res = ("PASS %s\n" % token) if ok else ("FAIL %s: memory lost\n" % token)
with open(d + "/result.tmp", "w") as f: f.write(res)
os.rename(d + "/result.tmp", d + "/result")
'

python_roundtrip() {
	local dir=$CASE_TMP/py plain=$CASE_TMP/plain img=$CASE_TMP/img pid token exe n what
	make_keys || return 1
	mkdir -p "$dir"
	CASE_LOGS+=("$dir/out")
	( clean_exec "$PY" -c "$PY_TOKEN" "$dir" ) </dev/null >"$dir/out" 2>&1 &
	pid=$!
	disown "$pid"
	track_pid "$pid"
	WL_PID=$pid
	wait_until 10 test -e "$dir/ready" || { REASON="python3 did not get ready: $(tail -n 3 "$dir/out")"; return 1; }
	read -r _ token < "$dir/ready"
	exe=$(readlink /proc/"$pid"/exe)
	cr_dump dump-plain "$pid" "$plain" --leave-running || return 1
	for what in "CRENC-$token" python3 "$exe"; do   # the control: a plain dump shows them
		n=$(images_hold "$plain" "$what")
		[ "$n" -gt 0 ] || { REASON="the plain dump does not hold '$what': the check below proves nothing"; return 1; }
	done
	cr_dump dump "$pid" "$img" --encrypt "$KEY" || return 1
	for what in "CRENC-$token" python3 "$exe" "$dir"; do
		n=$(images_hold "$img" "$what")
		[ "$n" = 0 ] || { REASON="$n encrypted images hold '$what' in the clear: $(grep -lF -- "$what" "$img"/*.img | tr '\n' ' ')"; return 1; }
	done
	cr_run show show -D "$img" || { REASON="cr show without the key failed: $(last_line "$CR_ERR")"; return 1; }
	grep -q "encrypted *yes" "$CASE_TMP/show.out" || { REASON="cr show does not say encrypted: $(head -3 "$CASE_TMP/show.out")"; return 1; }
	! grep -q python3 "$CASE_TMP/show.out" || { REASON="cr show without the key shows the process"; return 1; }
	cr_run show-json show -D "$img" --json || { REASON="cr show --json failed: $(last_line "$CR_ERR")"; return 1; }
	grep -q '"encrypted": *true' "$CASE_TMP/show-json.out" || { REASON="cr show --json does not say encrypted"; return 1; }
	cr_run show-key show -D "$img" --decrypt "$KEY" || { REASON="cr show --decrypt failed: $(last_line "$CR_ERR")"; return 1; }
	grep -q python3 "$CASE_TMP/show-key.out" || { REASON="cr show --decrypt does not show python3"; return 1; }
	refused_restore "$img" "--decrypt" "is encrypted" --pid-backend clone3 || return 1
	cr_run restore restore -D "$img" --detach --decrypt "$KEY" ||
		{ REASON="cr restore --decrypt failed (exit $CR_STATUS): $(last_line "$CR_ERR")"; return 1; }
	wait_until 10 running_free "$pid" "$exe" || { REASON="restored python3 is not running free: $(describe_pid "$pid")"; return 1; }
	touch "$dir/go"
	wait_until 15 test -e "$dir/result" || { REASON="no result from python3: $(tail -n 3 "$dir/out")"; return 1; }
	[ "$(cat "$dir/result")" = "PASS $token" ] || { REASON="python3 reports: $(cat "$dir/result") (token $token)"; return 1; }
}

refused() {
	local one=$CASE_TMP/one two=$CASE_TMP/two plain=$CASE_TMP/plain copy pages core cut
	make_keys || return 1
	wl_start w_counter || return 1
	pages=pages-$WL_PID.img
	core=core-$WL_PID.img
	cr_dump dump-plain "$WL_PID" "$plain" --leave-running || return 1
	cr_dump dump-two "$WL_PID" "$two" --leave-running --encrypt "$KEY" || return 1
	sleep 0.3
	cr_dump dump-one "$WL_PID" "$one" --encrypt "$KEY" || return 1
	refused_restore "$one" inventory.img "encrypted with another key" --decrypt "$OTHER" || return 1
	copy=$(copy_of "$one" changed-pages)
	flip "$copy/$pages" $(( $(stat -c %s "$copy/$pages") / 2 ))
	refused_restore "$copy" "$pages" "does not decrypt" || return 1
	copy=$(copy_of "$one" changed-core)
	flip "$copy/$core" 100
	refused_restore "$copy" "$core" "does not decrypt" || return 1
	copy=$(copy_of "$one" changed-inventory)
	flip "$copy/inventory.img" -3
	refused_restore "$copy" inventory.img "does not decrypt" || return 1
	copy=$(copy_of "$one" cut-inside)
	truncate -s -100 "$copy/$pages"
	refused_restore "$copy" "$pages" "$pages" || return 1
	copy=$(copy_of "$one" cut-at-record)
	cut=$(( ( $(stat -c %s "$copy/$pages") - 60 ) % 65552 ))   # the last record, whole
	truncate -s -$(( cut > 0 ? cut : 65552 )) "$copy/$pages"
	refused_restore "$copy" "$pages" "does not decrypt" || return 1
	copy=$(copy_of "$one" swapped)
	cp "$two/$pages" "$copy/"
	refused_restore "$copy" "$pages" "belongs to another dump" || return 1
	refused_restore "$plain" inventory.img "not encrypted" || return 1
	restore_passes "$one" --decrypt "$KEY"
}

compress_sign() {
	local img=$CASE_TMP/img copy
	make_keys || return 1
	wl_start w_counter || return 1
	cr_dump dump "$WL_PID" "$img" --encrypt "$KEY" --compress --sign "$TMP/signkey" || return 1
	cr_run show show -D "$img" || { REASON="cr show failed: $(last_line "$CR_ERR")"; return 1; }
	grep -q "encrypted *yes" "$CASE_TMP/show.out" || { REASON="cr show does not say encrypted"; return 1; }
	grep -q "signed *yes" "$CASE_TMP/show.out" || { REASON="cr show does not say signed"; return 1; }
	cr_run show-all show -D "$img" --decrypt "$KEY" --verify "$TMP/signkey.pub" ||
		{ REASON="cr show --decrypt --verify failed: $(last_line "$CR_ERR")"; return 1; }
	grep -q "signed *yes.*verified" "$CASE_TMP/show-all.out" || { REASON="cr show does not say verified"; return 1; }
	grep -q "compress yes" "$CASE_TMP/show-all.out" || { REASON="cr show does not say compressed"; return 1; }
	copy=$(copy_of "$img" changed)
	flip "$copy/pages-$WL_PID.img" 200
	refused_restore "$copy" "pages-$WL_PID.img" "does not match the hash in the signed inventory" \
		--decrypt "$KEY" --verify "$TMP/signkey.pub" || return 1
	restore_passes "$img" --decrypt "$KEY" --verify "$TMP/signkey.pub"
}

bad_key() {
	local loose=$CASE_TMP/loose img=$CASE_TMP/img
	make_keys || return 1
	cp "$KEY" "$loose"
	chmod 644 "$loose"
	wl_start w_counter || return 1
	cr_run dump-loose dump "$WL_PID" -D "$img" --encrypt "$loose"
	check_refused "$WL_PID" "$img" "$loose" "lets others read the secret key" || return 1
	cr_run dump-sign dump "$WL_PID" -D "$img" --encrypt "$TMP/signkey"
	check_refused "$WL_PID" "$img" "$TMP/signkey" "is a signing key" || return 1
	running_free "$WL_PID" "$WL_EXE" || { REASON="after the refused dump: $(describe_pid "$WL_PID")"; return 1; }
	wl_trigger && wl_expect_pass
}

run_case python_roundtrip python_roundtrip
run_case refused refused
run_case compress_sign compress_sign
run_case bad_key bad_key
finish_tests
