#!/usr/bin/env bash
# t_show_check: cr show and cr check on this machine.
#   show_summary   cr show (and -D) on a real dump of w_state: the pid, the
#                  process tree, mappings, fds with their paths, timers; the
#                  images are unchanged afterwards and still restore.
#   show_json      cr show --json is valid JSON holding the pid, the VMAs,
#                  the fds and their files' paths, and page counts that add up.
#   show_damaged   a flipped byte, a truncated file and a missing inventory
#                  are each named on stderr with exit status 1; the JSON
#                  stays valid and lists the error.
#   check          cr check exits 0 here, with clone3 set_tid yes and
#                  soft-dirty no (this kernel has no CONFIG_MEM_SOFT_DIRTY);
#                  --json agrees.
#   check_no_caps  without CAP_SYS_ADMIN, CAP_CHECKPOINT_RESTORE and
#                  CAP_SYS_PTRACE, cr check exits 1 and names them.
#   frozen_time    cr dump -v says how long the tree was frozen, to the
#                  kill (and, --leave-running, to the release), and cr show
#                  prints the inventory's figure ("frozen: N ms"): each above
#                  0, the inventory's at most the dump's, both within the
#                  wall time of the cr dump command.
#   help           cr --help, cr show --help and cr check --help.
#   man_complete   docs/cr.1 names every long option of every struct option
#                  table in criu-lite/cmd/*.c, every short option of their
#                  getopt_long strings, and every command main.c dispatches
#                  (as a tag of COMMANDS); groff, where installed, gives no
#                  warning about it.
source "$(dirname "$0")/lib.sh"

# digest DIR: one line per file with its checksum.
digest() {
	(cd "$1" && sha256sum -- *.img)
}

# expect_in FILE TEXT: FILE contains TEXT (fixed string).
expect_in() {
	grep -qF -- "$2" "$1" && return 0
	REASON="$(basename "$1") lacks '$2': $(head -c 300 "$1" | tr '\n' ' ')"
	return 1
}

show_summary() {
	local img=$CASE_TMP/img out before word
	wl_start w_state || return 1
	cr_dump dump "$WL_PID" "$img" || return 1
	before=$(digest "$img")
	cr_run show show "$img" || { REASON="cr show exited $CR_STATUS: $(last_line "$CR_ERR")"; return 1; }
	out=$CASE_TMP/show.out
	expect_in "$out" "Process $WL_PID (" || return 1
	expect_in "$out" "Process tree" || return 1
	expect_in "$out" "root pid $WL_PID" || return 1
	expect_in "$out" "$WL_EXE" || return 1
	expect_in "$out" "$WL_DIR/appendfile" || return 1
	expect_in "$out" "$WL_DIR/rofile" || return 1
	expect_in "$out" "$WL_DIR/mapfile" || return 1
	for word in heap stack vdso "mappings" "pages " "ITIMER_" "handled:" "pending for"; do
		expect_in "$out" "$word" || return 1
	done
	cr_run show-D show -D "$img" || { REASON="cr show -D exited $CR_STATUS"; return 1; }
	cmp -s "$CASE_TMP/show.out" "$CASE_TMP/show-D.out" || { REASON="cr show DIR and cr show -D DIR differ"; return 1; }
	[ "$(digest "$img")" = "$before" ] || { REASON="cr show changed the images"; return 1; }
	cr_restore_detached restore "$img" || return 1
	wl_trigger || return 1
	wl_expect_pass || return 1
	wl_await_exit
}

# Checks the JSON of a w_state dump; prints what is wrong, nothing if fine.
check_json() {
	python3 - "$1" "$2" "$3" <<'EOF'
import json, sys
path, pid, wl_dir = sys.argv[1], int(sys.argv[2]), sys.argv[3]
d = json.load(open(path))
img = d["images"]
def entries(name):
    return img[name]["entries"]
problems = []
if d["errors"]:
    problems.append("errors: %s" % d["errors"])
if entries("inventory.img")[0]["root_pid"] != pid:
    problems.append("inventory root_pid")
if entries("pstree.img")[0]["ns_pid"][0] != pid:
    problems.append("pstree pid")
if entries("core-%d.img" % pid)[0]["pid"] != pid:
    problems.append("core pid")
vmas = entries("mm-%d.img" % pid)[0]["vmas"]
kinds = {v["kind"] for v in vmas}
if len(vmas) < 5 or not {"VMA_HEAP", "VMA_STACK", "VMA_FILE", "VMA_ANON"} <= kinds:
    problems.append("vmas: %d, kinds %s" % (len(vmas), sorted(kinds)))
if any(v["start"] >= v["end"] for v in vmas):
    problems.append("a VMA with start >= end")
files = {f["id"]: f for f in entries("files.img")}
paths = [files[fd["file_id"]]["path"] for fd in entries("fdinfo-%d.img" % pid)]
for want in ("appendfile", "rofile"):
    if not any(p == "%s/%s" % (wl_dir, want) for p in paths):
        problems.append("no fd of %s among %s" % (want, paths))
pages = sum(p["nr_pages"] for p in entries("pagemap-%d.img" % pid))
summary = img["pages-%d.img" % pid]["summary"]
if summary["pages"] != pages or summary["raw_bytes"] != pages * 4096 or pages < 16384:
    problems.append("pages: pagemap %d, pages image %s" % (pages, summary))
if summary["chunks"] != len(img["pages-%d.img" % pid]["chunks"]):
    problems.append("chunk count")
regs = entries("core-%d.img" % pid)[0]["threads"][0]["regs"]
if not isinstance(regs["rip"], int) or regs["rip"] == 0:
    problems.append("rip %r" % regs.get("rip"))
print("; ".join(problems))
EOF
}

show_json() {
	local img=$CASE_TMP/img json=$CASE_TMP/json.out problems
	wl_start w_state || return 1
	cr_dump dump "$WL_PID" "$img" || return 1
	cr_run json show "$img" --json || { REASON="cr show --json exited $CR_STATUS: $(last_line "$CR_ERR")"; return 1; }
	python3 -m json.tool "$json" >/dev/null 2>"$CASE_TMP/jsontool.err" || {
		REASON="invalid JSON: $(last_line "$CASE_TMP/jsontool.err")"
		return 1
	}
	problems=$(check_json "$json" "$WL_PID" "$WL_DIR" 2>&1)
	[ -z "$problems" ] || { REASON="JSON: $problems"; return 1; }
}

# flip FILE: xor the byte in the middle of FILE with 0xff.
flip() {
	local off=$(($(stat -c %s "$1") / 2)) byte
	byte=$(od -An -tu1 -j "$off" -N1 "$1" | tr -d ' ')
	# shellcheck disable=SC2059
	printf "$(printf '\\%03o' $((byte ^ 0xff)))" | dd of="$1" bs=1 seek="$off" conv=notrunc status=none
}

# expect_refused LABEL FILE ARGS...: cr show fails with 1 and names FILE.
expect_refused() {
	local label=$1 file=$2
	shift 2
	if cr_run "$label" show "$@"; then
		REASON="cr show $* accepted a dump whose $file is damaged"
		return 1
	fi
	[ "$CR_STATUS" = 1 ] || { REASON="cr show $* exited $CR_STATUS, not 1: $(last_line "$CR_ERR")"; return 1; }
	grep -qF "$file" "$CR_ERR" || { REASON="cr show $* does not name $file: $(last_line "$CR_ERR")"; return 1; }
}

show_damaged() {
	local img=$CASE_TMP/img bad=$CASE_TMP/bad problems
	wl_start w_state || return 1
	cr_dump dump "$WL_PID" "$img" || return 1
	cp -a "$img" "$bad"
	flip "$bad/core-$WL_PID.img"
	expect_refused flipped "core-$WL_PID.img" "$bad" || return 1
	expect_in "$CASE_TMP/flipped.out" "Process tree" || return 1   # the rest is still shown
	expect_refused flipped-json "core-$WL_PID.img" "$bad" --json || return 1
	problems=$(python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
core = "core-%s.img" % sys.argv[2]
bad = [] if "checksum" in d["images"][core].get("error", "") else ["no checksum error for " + core]
bad += [] if "entries" in d["images"]["mm-%s.img" % sys.argv[2]] else ["mm not decoded"]
bad += [] if any(core in e for e in d["errors"]) else ["errors lack " + core]
print("; ".join(bad))' "$CASE_TMP/flipped-json.out" "$WL_PID" 2>&1)
	[ -z "$problems" ] || { REASON="JSON of a damaged dump: $problems"; return 1; }

	cp "$img/core-$WL_PID.img" "$bad/"
	truncate -s -3 "$bad/pages-$WL_PID.img"
	expect_refused truncated "pages-$WL_PID.img" -D "$bad" || return 1
	cp "$img/pages-$WL_PID.img" "$bad/"
	rm "$bad/inventory.img"
	expect_refused no-inventory inventory.img "$bad" || return 1
}

# feature_answer OUT NAME: the yes/no column of NAME's line in cr check's table.
feature_answer() {
	awk -v name="$2" 'index($0, name) == 1 { rest = substr($0, length(name) + 1); split(rest, f, " "); print f[1]; exit }' "$1"
}

check() {
	local out=$CASE_TMP/check.out problems
	cr_run check check || { REASON="cr check exited $CR_STATUS: $(tail -n 5 "$CASE_TMP/check.out" | tr '\n' ' ')"; return 1; }
	[ "$(feature_answer "$out" "clone3 set_tid")" = yes ] || { REASON="clone3 set_tid is not yes: $(grep clone3 "$out")"; return 1; }
	[ "$(feature_answer "$out" "soft-dirty")" = no ] || { REASON="soft-dirty is not no: $(grep soft-dirty "$out")"; return 1; }
	# CAP_SYS_RESOURCE (bit 24): these hosts lack it; the answer must match.
	local capeff want=no
	capeff=$(awk '/^CapEff:/ { print $2 }' /proc/self/status)
	[ $(((0x$capeff >> 24) & 1)) = 1 ] && want=yes
	[ "$(feature_answer "$out" "CAP_SYS_RESOURCE")" = "$want" ] || { REASON="CAP_SYS_RESOURCE is not $want: $(grep CAP_SYS_RESOURCE "$out")"; return 1; }
	expect_in "$out" "cr can dump and restore here" || return 1
	cr_run check-json check --json || { REASON="cr check --json exited $CR_STATUS"; return 1; }
	problems=$(python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
f = {x["key"]: x for x in d["features"]}
bad = [] if d["can_dump_restore"] else ["can_dump_restore is false"]
bad += [] if f["clone3_set_tid"]["present"] else ["clone3_set_tid absent"]
bad += [] if not f["soft_dirty"]["present"] else ["soft_dirty present"]
bad += [] if f["ptrace_seize"]["need"] == "required" else ["ptrace_seize not required"]
print("; ".join(bad))' "$CASE_TMP/check-json.out" 2>&1)
	[ -z "$problems" ] || { REASON="cr check --json: $problems"; return 1; }
}

check_no_caps() {
	local out=$CASE_TMP/nocaps.out
	setpriv --bounding-set=-sys_admin,-checkpoint_restore,-sys_ptrace "$CR" check >"$out" 2>&1
	local status=$?
	[ "$status" = 1 ] || { REASON="cr check without capabilities exited $status, not 1"; return 1; }
	expect_in "$out" "cr cannot dump and restore here" || return 1
	expect_in "$out" "missing CAP_SYS_PTRACE" || return 1
	expect_in "$out" "missing both CAP_CHECKPOINT_RESTORE and CAP_SYS_ADMIN" || return 1
}

# frozen_ok WALL_MS LOG SHOW END: the -v log of a dump that took WALL_MS
# says the tree was frozen to the END, for at least the inventory's figure
# in SHOW, all above 0 and within WALL_MS.
frozen_ok() {
	local wall=$1 log=$2 show=$3 end=$4 said inv
	said=$(sed -n "s/.*; frozen \([0-9.]*\) ms, from the first interrupt to the $end\$/\1/p" "$log")
	inv=$(sed -n 's/^ *frozen: \([0-9.]*\) ms .*/\1/p' "$show")
	[ -n "$said" ] || { REASON="cr dump -v did not say the frozen time to the $end: $(tail -n 1 "$log")"; return 1; }
	[ -n "$inv" ] || { REASON="cr show has no 'frozen: N ms' line"; return 1; }
	awk -v s="$said" -v i="$inv" -v w="$wall" 'BEGIN { exit !(i > 0 && i <= s && s <= w) }' ||
		{ REASON="frozen times out of order: inventory $inv ms, dump $said ms, wall $wall ms"; return 1; }
}

frozen_time() {
	local img=$CASE_TMP/img t0 t1
	wl_start w_state || return 1
	t0=$(date +%s%N)
	cr_dump dump "$WL_PID" "$img" -v || return 1
	t1=$(date +%s%N)
	cr_run show show "$img" || { REASON="cr show exited $CR_STATUS"; return 1; }
	frozen_ok $(((t1 - t0) / 1000000)) "$CASE_TMP/dump.err" "$CASE_TMP/show.out" kill || return 1
	cr_restore_detached restore "$img" || return 1
	t0=$(date +%s%N)
	cr_dump dump2 "$WL_PID" "$CASE_TMP/img2" -v --leave-running || return 1
	t1=$(date +%s%N)
	cr_run show2 show "$CASE_TMP/img2" || { REASON="cr show exited $CR_STATUS"; return 1; }
	frozen_ok $(((t1 - t0) / 1000000)) "$CASE_TMP/dump2.err" "$CASE_TMP/show2.out" release || return 1
	wl_trigger || return 1
	wl_expect_pass || return 1
	wl_await_exit
}

help() {
	cr_run help --help || { REASON="cr --help exited $CR_STATUS"; return 1; }
	expect_in "$CASE_TMP/help.out" "show" || return 1
	expect_in "$CASE_TMP/help.out" "check" || return 1
	cr_run show-help show --help || { REASON="cr show --help exited $CR_STATUS"; return 1; }
	expect_in "$CASE_TMP/show-help.out" "usage: cr show" || return 1
	cr_run check-help check --help || { REASON="cr check --help exited $CR_STATUS"; return 1; }
	expect_in "$CASE_TMP/check-help.out" "usage: cr check" || return 1
	if cr_run show-noarg show; then
		REASON="cr show without a directory succeeded"
		return 1
	fi
	[ "$CR_STATUS" = 2 ] || { REASON="cr show without a directory exited $CR_STATUS, not 2"; return 1; }
}

# What cr accepts, read from its sources (criu-lite/cmd/*.c), one a line.
# long_options SRC: the names of every 'struct option NAME[] = { ... };'.
long_options() {
	awk '/struct option [a-z_]*\[\] = \{/ { t = 1 } t && /\};/ { t = 0 }
	     t { while (match($0, /\{ "[^"]+"/)) { print substr($0, RSTART + 3, RLENGTH - 4); $0 = substr($0, RSTART + RLENGTH) } }' "$1"
}

# short_options SRC: the letters of each getopt_long optstring.
short_options() {
	grep -o 'getopt_long([^"]*"[^"]*"' "$1" | sed 's/.*"\(.*\)"/\1/; s/://g' | grep -o .
}

# commands MAIN: every name main() compares argv[1] or the command with,
# but the spellings of --help.
commands() {
	grep -oE 'strcmp\((argv\[1\]|cli(\.|->)command), "[^"-][^"]*"\)' "$1" | sed 's/.*, "\(.*\)")/\1/' | sort -u
}

# man_complete: docs/cr.1 names all of it, so that the manual cannot fall
# behind the code unnoticed.  roff writes a dash as \-: the page is read
# with each \- as \x1f, so that an option written with bare hyphens
# (printed as hyphens, not minus signs) or only as the start of a longer
# one does not count.  A command must be the first word of a tag (.TP)
# in COMMANDS.
man_complete() {
	local man=$ROOT/docs/cr.1 cmd=$ROOT/criu-lite/cmd d=$'\x1f' page tags src name names missing=()
	page=$(sed 's/\\-/\x1f/g; s/\\[%&]//g' "$man") || { REASON="cannot read $man"; return 1; }
	for src in "$cmd"/*.c; do
		names=$(long_options "$src")
		if grep -q 'struct option' "$src" && [ -z "$names" ]; then
			REASON="no long option read from $(basename "$src")'s struct option table: update long_options"
			return 1
		fi
		for name in $names; do
			grep -qE -- "$d$d${name//-/$d}([^a-z0-9$d]|\$)" <<<"$page" || missing+=("--$name ($(basename "$src"))")
		done
		for name in $(short_options "$src"); do
			grep -qE -- "(^|[^a-zA-Z0-9$d])$d$name([^a-zA-Z0-9$d]|\$)" <<<"$page" || missing+=("-$name ($(basename "$src"))")
		done
	done
	names=$(commands "$cmd/main.c")
	[ "$(wc -w <<<"$names")" -ge 8 ] || { REASON="only these commands read from main.c: $names (update commands)"; return 1; }
	tags=$(awk '/^\.SH / { in_cmds = ($2 == "COMMANDS") } in_cmds && prev == ".TP" { print } { prev = $0 }' <<<"$page" |
		sed -E 's/^\.[A-Z]+ +"?//; s/[ "].*//' | tr "$d" -)
	for name in $names; do
		grep -qxF -- "$name" <<<"$tags" || missing+=("command $name")
	done
	[ ${#missing[@]} = 0 ] || { REASON="docs/cr.1 lacks ${missing[*]}"; return 1; }
	# The page itself: groff (where installed) warns of nothing.
	if command -v groff >/dev/null; then
		groff -man -Tutf8 -ww -z "$man" >"$CASE_TMP/groff.err" 2>&1
		[ ! -s "$CASE_TMP/groff.err" ] || { REASON="groff warns: $(head -n 3 "$CASE_TMP/groff.err" | tr '\n' ' ')"; return 1; }
	fi
}

run_case show_summary show_summary
run_case show_json show_json
run_case show_damaged show_damaged
run_case check check
run_case check_no_caps check_no_caps
run_case frozen_time frozen_time
run_case help help
run_case man_complete man_complete
finish_tests
