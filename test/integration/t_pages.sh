#!/usr/bin/env bash
# t_pages: the page data of a large process (w_bigmem, 48 MiB of random
# bytes it checks after the restore) in mappings a restore fills in
# different ways: by UFFDIO_COPY (plain and read-only anonymous memory,
# anonymous memory with holes), by process_vm_writev (MADV_HUGEPAGE
# memory, a written private file mapping).
#   mixed_roundtrip       dump, restore (which says how many VMAs it filled
#                         by UFFDIO_COPY), check
#   mixed_compress        the same with --compress
#   snapshot_kept         a --leave-running dump, after which the process
#                         overwrites all its memory and exits: the images
#                         restore the bytes of the dump's moment
#   python_bytearray      Debian's python3 holding 64 MiB of random bytes
#                         (a bytearray) and their SHA-256: after the
#                         restore it hashes them again
source "$(dirname "$0")/lib.sh"

MIB=48

# passes: triggered, the workload passes and exits.
passes() {
	wl_trigger && wl_expect_pass && wl_await_exit
}

mixed_roundtrip() {
	local img=$CASE_TMP/img
	wl_start w_bigmem "$MIB" mixed || return 1
	cr_dump dump "$WL_PID" "$img" "$@" || return 1
	cr_restore_detached restore "$img" -vvv || return 1
	grep -Eq "pid $WL_PID: [1-9][0-9]* VMAs filled by UFFDIO_COPY" "$CR_ERR" ||
		{ REASON="the restore did not fill by UFFDIO_COPY: $(grep -i uffd "$CR_ERR" | tail -n 1)"; return 1; }
	passes
}

snapshot_kept() {
	local img=$CASE_TMP/img
	wl_start w_bigmem "$MIB" mixed || return 1
	cr_dump dump "$WL_PID" "$img" --leave-running || return 1
	touch "$WL_DIR/scribble"
	passes || return 1
	[ ! -e "$WL_DIR/scribble" ] || { REASON="the process did not overwrite its memory"; return 1; }
	cr_restore_detached restore "$img" || return 1
	passes
}

PY_BYTEARRAY='
import hashlib, os, sys, time
d = sys.argv[1]
data = bytearray(os.urandom(64 << 20))
digest = hashlib.sha256(data).hexdigest()
token = os.urandom(8).hex()
with open(d + "/ready.tmp", "w") as f: f.write("%d %s\n" % (os.getpid(), token))
os.rename(d + "/ready.tmp", d + "/ready")
while not os.path.exists(d + "/go"): time.sleep(0.05)
same = hashlib.sha256(data).hexdigest() == digest
res = "PASS %s\n" % token if same else "FAIL %s: the 64 MiB differ\n" % token
with open(d + "/result.tmp", "w") as f: f.write(res)
os.rename(d + "/result.tmp", d + "/result")
'

run_case mixed_roundtrip mixed_roundtrip
run_case mixed_compress mixed_roundtrip --compress
run_case snapshot_kept snapshot_kept
run_case python_bytearray py_case "$PY_BYTEARRAY"
finish_tests
