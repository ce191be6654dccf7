#!/usr/bin/env bash
# t_sign: signed dumps (cr keygen, cr dump --sign, cr restore --verify,
# cr show [--verify]).  Every refusal happens before anything is created:
# the pid stays free, and the untouched dump then restores and passes.
#   signed_roundtrip  cr keygen makes KEY (0600) and KEY.pub; a dump made
#                     with --sign KEY has inventory.sig, cr show says it is
#                     signed, cr show --verify KEY.pub says verified, and
#                     cr restore --verify KEY.pub restores it and it passes.
#   tampered          a copy of a signed dump with one change is refused
#                     under --verify, naming what changed: a byte of every
#                     image changed and its checksum made good again (what
#                     someone with cr's image code could do), a byte of
#                     inventory.sig, and pages-PID.img swapped in whole from
#                     another dump signed with the same key.
#   unsigned_or_wrong_key  under --verify an unsigned dump is refused as
#                     unsigned, a dump signed with another key as signed
#                     with another key, and a secret key given to --verify
#                     as the wrong half; cr show --verify exits 1 for each.
#   bad_sign_key      cr dump --sign with a secret key others may read, or
#                     with a public key, is refused naming the key file; the
#                     process runs on untouched and no dump is left.
source "$(dirname "$0")/lib.sh"

KEY=$TMP/key

make_keys() {
	[ -e "$KEY" ] && return 0
	cr_run keygen keygen "$KEY" || { REASON="cr keygen failed: $(last_line "$CR_ERR")"; return 1; }
	[ "$(stat -c %a "$KEY")" = 600 ] || { REASON="the secret key is mode $(stat -c %a "$KEY")"; return 1; }
	[ -f "$KEY.pub" ] || { REASON="cr keygen wrote no $KEY.pub"; return 1; }
}

# refused_verify DIR NAME WORDS: cr restore --verify of DIR fails naming
# NAME and saying WORDS, and creates nothing; cr show --verify exits 1.
refused_verify() {
	local dir=$1 name=$2 words=$3 key=${4:-$KEY.pub} label
	label=$(basename "$dir")-$(basename "$name")
	cr_run "restore-$label" restore -D "$dir" --detach --verify "$key"
	[ "$CR_STATUS" != 0 ] || { REASON="cr restore --verify accepted $dir ($name)"; return 1; }
	[ "$CR_STATUS" != 124 ] || { REASON="cr restore --verify timed out"; return 1; }
	grep -qF "$name" "$CR_ERR" || { REASON="the refusal does not name $name: $(last_line "$CR_ERR")"; return 1; }
	grep -qF "$words" "$CR_ERR" || { REASON="the refusal does not say '$words': $(last_line "$CR_ERR")"; return 1; }
	wait_until 2 pid_gone "$WL_PID" ||
		{ REASON="pid $WL_PID exists after the refused restore: $(describe_pid "$WL_PID")"; return 1; }
	cr_run "show-$label" show -D "$dir" --verify "$key"
	[ "$CR_STATUS" = 1 ] || { REASON="cr show --verify of $dir ($name) exited $CR_STATUS"; return 1; }
}

# rechecksum FILE: changes the byte in the middle of FILE's body and makes
# its checksum good again, as someone with cr's image code could (XXH3-64
# of the XXH3-64 digests of its 1 MiB blocks, img/hash.h), with Debian's
# python3 and its python3-xxhash.
rechecksum() {
	/usr/bin/python3 - "$1" <<'PY'
import struct, sys, xxhash
path = sys.argv[1]
data = bytearray(open(path, 'rb').read())
header, trailer, block = 28, 20, 1 << 20
body_end = len(data) - trailer
at = (header + body_end) // 2 if body_end > header else header - 1
data[at] ^= 0x01
digests = b''.join(struct.pack('<Q', xxhash.xxh3_64_intdigest(bytes(data[o:min(o + block, body_end)])))
                   for o in range(0, body_end, block))
data[body_end + 4:body_end + 12] = struct.pack('<Q', xxhash.xxh3_64_intdigest(digests))
open(path, 'wb').write(data)
PY
}

# verified_restore_passes DIR PUBKEY: cr restore --verify PUBKEY restores
# DIR, and the workload passes.
verified_restore_passes() {
	cr_restore_detached restore "$1" --verify "$2" || return 1
	wl_trigger || return 1
	wl_expect_pass || return 1
	wl_await_exit
}

# copy_of DIR NAME: a fresh copy of DIR (without logs) at $CASE_TMP/NAME.
copy_of() {
	rm -rf "${CASE_TMP:?}/$2"
	cp -a "$1" "$CASE_TMP/$2"
	rm -f "$CASE_TMP/$2"/*.log
	echo "$CASE_TMP/$2"
}

signed_roundtrip() {
	local img=$CASE_TMP/img
	make_keys || return 1
	wl_start w_counter || return 1
	cr_dump dump "$WL_PID" "$img" --sign "$KEY" || return 1
	[ -f "$img/inventory.sig" ] || { REASON="a signed dump has no inventory.sig"; return 1; }
	cr_run show show -D "$img" || { REASON="cr show failed: $(last_line "$CR_ERR")"; return 1; }
	grep -q "signed *yes" "$CASE_TMP/show.out" || { REASON="cr show does not say signed: $(grep signed "$CASE_TMP/show.out")"; return 1; }
	cr_run show-verify show -D "$img" --verify "$KEY.pub" ||
		{ REASON="cr show --verify failed: $(last_line "$CR_ERR")"; return 1; }
	grep -q "signed *yes.*verified" "$CASE_TMP/show-verify.out" ||
		{ REASON="cr show --verify does not say verified: $(grep signed "$CASE_TMP/show-verify.out")"; return 1; }
	verified_restore_passes "$img" "$KEY.pub"
}

tampered() {
	local one=$CASE_TMP/one two=$CASE_TMP/two copy f name
	make_keys || return 1
	wl_start w_counter || return 1
	cr_dump dump-one "$WL_PID" "$one" --leave-running --sign "$KEY" || return 1
	sleep 0.3
	cr_dump dump-two "$WL_PID" "$two" --sign "$KEY" || return 1
	for f in "$one"/*.img; do
		name=$(basename "$f")
		copy=$(copy_of "$one" "changed-$name")
		rechecksum "$copy/$name" || { REASON="cannot change $name"; return 1; }
		cmp -s "$f" "$copy/$name" && { REASON="$name did not change"; return 1; }
		if [ "$name" = inventory.img ]; then
			refused_verify "$copy" "$name" "does not verify" || return 1
		else
			refused_verify "$copy" "$name" "does not match the hash in the signed inventory" || return 1
		fi
	done
	copy=$(copy_of "$one" changed-sig)
	# One bit of the signature flipped (lib.sh: flip_byte).
	flip_byte "$copy/inventory.sig" 80 || { REASON="cannot change inventory.sig"; return 1; }
	cmp -s "$one/inventory.sig" "$copy/inventory.sig" && { REASON="inventory.sig did not change"; return 1; }
	refused_verify "$copy" inventory.img "does not verify" || return 1
	copy=$(copy_of "$one" swapped)
	cp "$two/pages-$WL_PID.img" "$copy/"
	refused_verify "$copy" "pages-$WL_PID.img" "signed inventory" || return 1
	verified_restore_passes "$one" "$KEY.pub"
}

unsigned_or_wrong_key() {
	local plain=$CASE_TMP/plain other=$CASE_TMP/other
	make_keys || return 1
	cr_run keygen-other keygen "$CASE_TMP/otherkey" || { REASON="cr keygen failed: $(last_line "$CR_ERR")"; return 1; }
	wl_start w_counter || return 1
	cr_dump dump-plain "$WL_PID" "$plain" --leave-running || return 1
	cr_dump dump-other "$WL_PID" "$other" --sign "$CASE_TMP/otherkey" || return 1
	cr_run show-plain show -D "$plain" || { REASON="cr show failed: $(last_line "$CR_ERR")"; return 1; }
	grep -q "signed *no" "$CASE_TMP/show-plain.out" || { REASON="cr show does not say unsigned: $(grep signed "$CASE_TMP/show-plain.out")"; return 1; }
	refused_verify "$plain" inventory.sig "is not signed" || return 1
	refused_verify "$other" inventory.sig "signed with key" || return 1
	refused_verify "$other" "$KEY" "is a secret key" "$KEY" || return 1
	verified_restore_passes "$other" "$CASE_TMP/otherkey.pub"
}

bad_sign_key() {
	local loose=$CASE_TMP/loose img=$CASE_TMP/img
	make_keys || return 1
	cp "$KEY" "$loose"
	chmod 644 "$loose"
	wl_start w_counter || return 1
	cr_run dump-loose dump "$WL_PID" -D "$img" --sign "$loose"
	check_refused "$WL_PID" "$img" "$loose" "lets others read the secret key" || return 1
	cr_run dump-pub dump "$WL_PID" -D "$img" --sign "$KEY.pub"
	check_refused "$WL_PID" "$img" "$KEY.pub" "is a public key" || return 1
	running_free "$WL_PID" "$WL_EXE" || { REASON="after the refused dump: $(describe_pid "$WL_PID")"; return 1; }
	wl_trigger && wl_expect_pass
}

run_case signed_roundtrip signed_roundtrip
run_case tampered tampered
run_case unsigned_or_wrong_key unsigned_or_wrong_key
run_case bad_sign_key bad_sign_key
finish_tests
