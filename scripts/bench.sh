#!/usr/bin/env bash
# make bench: how long cr takes to dump and restore, and how much memory cr
# itself needs, next to the cost of copying the same bytes with cat on
# tmpfs, measured in the same run. Medians of RUNS runs (min and max shown).
# Every restored workload verifies its memory, so a fast wrong restore fails.
#
#   RUNS=5 BENCH_SIZES="512 1024" BENCH_TREES="100:5 500:5 2000:3" \
#   BENCH_FDS=19800 BENCH_COW="256 20" BENCH_CASES="size tree fds cow ratio" bash scripts/bench.sh
#   BENCH_MIGRATE="64:256:5 1024:16384:3" BENCH_CASES=migrate bash scripts/bench.sh
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
BUILD=${BUILD:-build}
case $BUILD in /*) ;; *) BUILD=$ROOT/$BUILD ;; esac
CR=$BUILD/cr
WL=$BUILD/test/workloads
RUNS=${RUNS:-5}
SIZES=${BENCH_SIZES:-512 1024}
# Trees: "N:RUNS ..." (the largest gets fewer runs to keep make bench short).
TREES=${BENCH_TREES:-100:$RUNS 500:$RUNS 2000:3}
CASES=${BENCH_CASES:-size tree fds cow ratio pageserver migrate}
# Live migration: "MIB:HOT_KIB:RUNS ..." (a service of MIB MiB rewriting
# HOT_KIB KiB of it), at most BENCH_MIGRATE_ROUNDS pre-copy rounds.
MIGRATIONS=${BENCH_MIGRATE:-64:256:$RUNS 1024:16384:3}
MIGRATE_ROUNDS=${BENCH_MIGRATE_ROUNDS:-4}
# BENCH_MIGRATE_LOGS=DIR: each move's cr-migrate logs (the final dump's
# step times among them) are kept in DIR/MIB-HOT-N.
MIGRATE_LOGS=${BENCH_MIGRATE_LOGS:-}
# Copy-on-write: "MIB MORE": a parent's MIB MiB region shared by its
# children (w_cow: 4 of its own and MORE more).
read -r COW_MIB COW_MORE <<<"${BENCH_COW:-256 20}"
# Regular-file fds of the many-fds process: 19,800, or what the hard
# RLIMIT_NOFILE (which cannot be raised here) leaves room for.
FDS_MAX=$(( $(ulimit -Hn) - 200 ))
BENCH_FDS=${BENCH_FDS:-$(( FDS_MAX < 19800 ? FDS_MAX : 19800 ))}

[ "$(id -u)" = 0 ] || { echo "bench: needs root (ptrace, clone3 set_tid)" >&2; exit 1; }
# Under a child subreaper, so killed workloads are reaped at once.
if [ -z "${CR_BENCH_SUBREAPER:-}" ]; then
	export CR_BENCH_SUBREAPER=1
	exec "$WL/subreaper" bash "$0" "$@"
fi

source "$ROOT/scripts/wide-pids.sh"
TMP=$(mktemp -d /dev/shm/cr-bench.XXXX)
[ "$(stat -f -c %T "$TMP")" = tmpfs ] || { echo "bench: $TMP is not on tmpfs" >&2; exit 1; }
PIDS=()
LAB=0
cleanup() {
	local p
	for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null || true; done
	[ "$LAB" = 0 ] || lab_down
	rm -rf "$TMP"
}
trap cleanup EXIT

now_ns() { date +%s%N; }

# timed OUTVAR CMD...: runs CMD, sets OUTVAR to "seconds peak_rss_kib".
timed() {
	local var=$1 t0 t1 rss
	shift
	t0=$(now_ns)
	/usr/bin/time -f %M -o "$TMP/rss" "$@" >/dev/null 2>"$TMP/err" || {
		echo "bench: failed: $*" >&2
		cat "$TMP/err" >&2
		exit 1
	}
	t1=$(now_ns)
	rss=$(tail -n 1 "$TMP/rss")
	printf -v "$var" '%s %s' "$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", (b - a) / 1e9 }')" "$rss"
}

# start_wl NAME ARGS...: starts a workload, waits until ready; sets WPID, WDIR.
start_wl() {
	local name=$1
	shift
	WDIR=$(mktemp -d "$TMP/$name.XXXX")
	setsid "$WL/$name" "$WDIR" "$@" </dev/null >/dev/null 2>&1 &
	PIDS+=($!)
	disown $!
	for _ in $(seq 600); do [ -e "$WDIR/ready" ] && break; sleep 0.1; done
	[ -e "$WDIR/ready" ] || { echo "bench: $name did not start" >&2; exit 1; }
	read -r WPID _ < "$WDIR/token"
	PIDS+=("$WPID")
}

wait_gone() {
	for _ in $(seq 1000); do kill -0 "$1" 2>/dev/null || return 0; sleep 0.01; done
	echo "bench: pid $1 did not go away" >&2
	exit 1
}

# Triggers the restored workload and wants its PASS.
check_restored() {
	rm -f "$WDIR/result"
	kill -USR2 "$WPID"
	for _ in $(seq 600); do [ -e "$WDIR/result" ] && break; sleep 0.05; done
	case $(cat "$WDIR/result" 2>/dev/null) in
	"PASS $WPID "*) wait_gone "$WPID" ;;
	*) echo "bench: restored workload failed: $(cat "$WDIR/result" 2>/dev/null)" >&2; exit 1 ;;
	esac
}

# stats "v1 v2 ...": "median min max"
stats() {
	tr ' ' '\n' <<<"$1" | grep . | sort -g | awk '{ v[NR] = $1 } END {
		m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
		printf "%.3f %.3f %.3f", m, v[1], v[NR] }'
}

ROWS=()
row() { ROWS+=("$(printf '%-34s %8s %8s %8s %9s %10s  %s' "$@")"); }

# One cat copy of the reference file, tmpfs to tmpfs; prints seconds.
copy_once() {
	local t0 t1
	t0=$(now_ns)
	cat "$TMP/ref" > "$TMP/copy"
	t1=$(now_ns)
	rm -f "$TMP/copy"
	awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", (b - a) / 1e9 }'
}

# Each round times the cat reference right before the dump and the restore
# it is compared with: tmpfs costs drift over a run, so the reference must
# see the same machine state.
bench_size() {
	local mib=$1 copies="" dumps="" restores="" cdumps="" drss=0 rrss=0 d r
	head -c "$((mib << 20))" /dev/urandom > "$TMP/ref"
	for _ in $(seq "$RUNS"); do
		start_wl w_bigmem "$mib" random
		copies+=" $(copy_once)"
		timed d "$CR" dump "$WPID" -D "$TMP/img"
		wait_gone "$WPID"
		timed r "$CR" restore -D "$TMP/img" --detach
		check_restored
		rm -rf "$TMP/img"
		dumps+=" ${d% *}"; restores+=" ${r% *}"
		[ "${d#* }" -gt "$drss" ] && drss=${d#* }
		[ "${r#* }" -gt "$rrss" ] && rrss=${r#* }
		start_wl w_bigmem "$mib" random
		timed d "$CR" dump "$WPID" -D "$TMP/img" --compress
		wait_gone "$WPID"
		rm -rf "$TMP/img"
		cdumps+=" ${d% *}"
	done
	rm -f "$TMP/ref"
	read -r cmed cmin cmax <<<"$(stats "$copies")"
	row "cat copy ${mib} MiB (tmpfs)" "$cmed" "$cmin" "$cmax" "1.00" "-" ""
	for what in dump restore; do
		local v
		[ $what = dump ] && v=$dumps || v=$restores
		read -r med min max <<<"$(stats "$v")"
		row "$what ${mib} MiB" "$med" "$min" "$max" \
			"$(awk -v a="$med" -v b="$cmed" 'BEGIN { printf "%.2f", a / b }')" \
			"$([ $what = dump ] && echo $((drss / 1024)) || echo $((rrss / 1024))) MiB" \
			"target <= 1.25x copy, < 64 MiB"
	done
	read -r med min max <<<"$(stats "$cdumps")"
	row "dump --compress ${mib} MiB random" "$med" "$min" "$max" "-" \
		"$(awk -v m="$mib" -v t="$med" 'BEGIN { printf "%.0f MiB/s", m / t }')" "target > 200 MiB/s"
}

# bench_tree N RUNS: a root with N-1 small children (w_forest checks each
# child after restore). The image size is of the last run.
bench_tree() {
	local n=$1 runs=$2 dumps="" restores="" d r kib=0
	for _ in $(seq "$runs"); do
		start_wl w_forest "$n"
		timed d "$CR" dump "$WPID" -D "$TMP/img"
		wait_gone "$WPID"
		kib=$(du -sk "$TMP/img" | cut -f1)
		timed r "$CR" restore -D "$TMP/img" --detach
		check_restored
		rm -rf "$TMP/img"
		dumps+=" ${d% *}"; restores+=" ${r% *}"
	done
	read -r med min max <<<"$(stats "$dumps")"
	row "dump tree of $n processes" "$med" "$min" "$max" "-" "-" \
		"images $((kib / 1024)) MiB, $runs runs"
	read -r med min max <<<"$(stats "$restores")"
	row "restore tree of $n processes" "$med" "$min" "$max" "-" "-" \
		"$(awk -v t="$med" -v n="$n" 'BEGIN { printf "%.2f ms a process", t * 1000 / n }')"
}

# A process with BENCH_FDS regular files open (w_manyfds checks every fd
# after restore).  The reference, in the same rounds: ls -l of its
# /proc/PID/fd, which reads each fd's link once.
bench_fds() {
	local dumps="" restores="" lists="" d r l
	for _ in $(seq "$RUNS"); do
		start_wl w_manyfds "$BENCH_FDS"
		timed l ls -l "/proc/$WPID/fd"
		timed d "$CR" dump "$WPID" -D "$TMP/img"
		wait_gone "$WPID"
		timed r "$CR" restore -D "$TMP/img" --detach
		check_restored
		rm -rf "$TMP/img"
		lists+=" ${l% *}"; dumps+=" ${d% *}"; restores+=" ${r% *}"
	done
	read -r med min max <<<"$(stats "$lists")"
	row "ls -l /proc/PID/fd, $BENCH_FDS fds" "$med" "$min" "$max" "-" "-" "reference"
	read -r med min max <<<"$(stats "$dumps")"
	row "dump $BENCH_FDS fds" "$med" "$min" "$max" "-" "-" "target <= 1 s"
	read -r med min max <<<"$(stats "$restores")"
	row "restore $BENCH_FDS fds" "$med" "$min" "$max" "-" "-" ""
}

# pss_kib PID...: the sum of their Pss.
pss_kib() {
	local p sum=0 v
	for p in "$@"; do
		v=$(awk '/^Pss:/ { print $2 }' /proc/"$p"/smaps_rollup 2>/dev/null || true)
		sum=$((sum + ${v:-0}))
	done
	echo "$sum"
}

# A parent's COW_MIB MiB shared copy-on-write with its children (w_cow
# checks every process's view after restore): the images should hold it
# once, and the memory after restore be what it was.
bench_cow() {
	local dumps="" restores="" d r kib=0 before=0 after=0 pids n
	for _ in $(seq "$RUNS"); do
		start_wl w_cow "$COW_MIB" "$COW_MORE"
		pids=$(cat "$WDIR/pids")
		# shellcheck disable=SC2086
		before=$(pss_kib $pids)
		timed d "$CR" dump "$WPID" -D "$TMP/img"
		wait_gone "$WPID"
		kib=$(du -sk "$TMP/img" | cut -f1)
		timed r "$CR" restore -D "$TMP/img" --detach
		sleep 0.2
		# shellcheck disable=SC2086
		after=$(pss_kib $pids)
		check_restored
		rm -rf "$TMP/img"
		dumps+=" ${d% *}"; restores+=" ${r% *}"
	done
	n=$(wc -w <<<"$pids")
	read -r med min max <<<"$(stats "$dumps")"
	row "dump $COW_MIB MiB shared by $n processes" "$med" "$min" "$max" "-" "-" \
		"images $((kib / 1024)) MiB"
	read -r med min max <<<"$(stats "$restores")"
	row "restore $COW_MIB MiB shared by $n" "$med" "$min" "$max" "-" "-" \
		"PSS $((before / 1024)) MiB before, $((after / 1024)) MiB after"
}

bench_ratio() {
	local plain packed
	start_wl w_bigmem 256 text
	"$CR" dump "$WPID" -D "$TMP/img" --leave-running >/dev/null 2>&1
	plain=$(du -sk "$TMP/img" | cut -f1)
	rm -rf "$TMP/img"
	"$CR" dump "$WPID" -D "$TMP/img" --compress >/dev/null 2>&1
	packed=$(du -sk "$TMP/img" | cut -f1)
	rm -rf "$TMP/img"
	row "images of 256 MiB text-like memory" "-" "-" "-" "-" \
		"$(awk -v a="$plain" -v b="$packed" 'BEGIN { printf "%.1fx smaller", a / b }')" \
		"$((plain / 1024)) MiB plain, $((packed / 1024)) MiB --compress"
}

# The dump of 512 MiB sent to cr page-server over loopback (into tmpfs):
# the transfer's own rate (from cr dump -v), next to socat copying the same
# number of bytes over loopback into tmpfs in the same rounds.
ps_listen_port() {
	local i
	for i in $(seq 100); do
		grep -q '^listening on' "$1" 2>/dev/null && break
		sleep 0.05
	done
	sed -n 's/^listening on .* port \([0-9]*\)$/\1/p' "$1"
}

socat_once() {
	local port t0 t1
	port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
	socat -u "TCP-LISTEN:$port,bind=127.0.0.1,reuseaddr" "OPEN:$TMP/copy,creat,trunc" &
	local srv=$!
	sleep 0.2
	t0=$(now_ns)
	socat -u "OPEN:$TMP/ref" "TCP:127.0.0.1:$port"
	wait "$srv"
	t1=$(now_ns)
	rm -f "$TMP/copy"
	awk -v a="$t0" -v b="$t1" -v m=512 'BEGIN { printf "%.0f", m / ((b - a) / 1e9) }'
}

bench_pageserver() {
	local rates="" refs="" dumps="" d port rate
	head -c "$((512 << 20))" /dev/urandom > "$TMP/ref"
	for _ in $(seq "$RUNS"); do
		refs+=" $(socat_once)"
		start_wl w_bigmem 512 random
		"$CR" page-server -D "$TMP/srv" --address 127.0.0.1 --port 0 >"$TMP/ps.out" 2>&1 &
		port=$(ps_listen_port "$TMP/ps.out")
		timed d "$CR" dump "$WPID" --page-server --address 127.0.0.1 --port "$port" -v -o "$TMP/ps-dump.log"
		wait
		wait_gone "$WPID"
		rate=$(sed -n 's/.*sent [0-9]* bytes of images to the page server in [0-9.]* s (\([0-9]*\) MiB\/s).*/\1/p' "$TMP/ps-dump.log")
		timed _r "$CR" restore -D "$TMP/srv" --detach
		check_restored
		rm -rf "$TMP/srv"
		rates+=" $rate"; dumps+=" ${d% *}"
	done
	rm -f "$TMP/ref"
	read -r med min max <<<"$(stats "$dumps")"
	row "dump 512 MiB to a page server" "$med" "$min" "$max" "-" "-" "the whole dump, over loopback, restored from the server's directory"
	read -r med min max <<<"$(stats "$rates")"
	local rmed
	read -r rmed _ _ <<<"$(stats "$refs")"
	row "page server transfer, MiB/s" "$med" "$min" "$max" \
		"$(awk -v a="$med" -v b="$rmed" 'BEGIN { printf "%.2f", a / b }')" "$(printf %.0f "$rmed") MiB/s" "ratio to socat over loopback (its rate in the peak/rate column)"
}

# One socat transfer of the reference file from hostA to hostB over the
# lab's lan, into tmpfs there: what any migration must at least pay to move
# the bytes on this path; prints seconds.
lab_socat_once() {
	local t0 t1 srv
	ip netns exec "$LAB_B" socat -u "TCP-LISTEN:7999,bind=$LAB_B_IP,reuseaddr" "OPEN:$TMP/copy,creat,trunc" &
	srv=$!
	for _ in $(seq 100); do
		ip netns exec "$LAB_B" ss -Hltn 'sport = :7999' | grep -q . && break
		sleep 0.02
	done
	t0=$(now_ns)
	ip netns exec "$LAB_A" socat -u "OPEN:$TMP/ref" "TCP:$LAB_B_IP:7999"
	wait "$srv"
	t1=$(now_ns)
	rm -f "$TMP/copy"
	awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", (b - a) / 1e9 }'
}

# Live migration (scripts/cr-migrate) in the two-host lab of
# scripts/migrate-lab.sh: a python3 service holding MIB MiB and rewriting
# HOT KiB of it all the time, with a client that sends it a 64-byte message
# every millisecond over one TCP connection and wants each echoed, moved
# from hostA to hostB (images on tmpfs there).  Medians of the freeze (cr
# dump -v of the final round), the client's largest gap between two
# answers, and the whole migration next to a cat copy of MIB MiB on tmpfs
# timed in the same rounds.  After each move the client must still be
# served with every byte, and the service's memory outside its hot set
# must check.
bench_migrate() {
	local mib=$1 hot=$2 runs=$3 rounds=$MIGRATE_ROUNDS freezes="" gaps="" totals="" copies="" sends="" spid r n=0 logs=()
	"$CR" --help 2>&1 | grep '^  pre-dump ' >/dev/null || rounds=0   # not grep -q: pipefail and SIGPIPE
	# shellcheck source=scripts/migrate-lab.sh
	source "$ROOT/scripts/migrate-lab.sh"
	lab_up "b$$" || { echo "bench: the migration lab could not be made" >&2; exit 1; }
	LAB=1
	head -c "$((mib << 20))" /dev/urandom > "$TMP/ref"
	for _ in $(seq "$runs"); do
		rm -rf "$TMP/ready" "$TMP/cli"
		lab_service "$TMP/svc.out" python3 -c "$LAB_SVC_PY" 7000 "$mib" "$hot" "$TMP/ready"
		PIDS+=("$LAB_SVC_PID")
		for _ in $(seq 600); do [ -e "$TMP/ready" ] && break; sleep 0.1; done
		[ -e "$TMP/ready" ] || { echo "bench: the service did not start: $(tail -n 2 "$TMP/svc.out")" >&2; exit 1; }
		read -r _ spid < "$TMP/ready"
		lab_client "$TMP/cli" 7000
		PIDS+=("$LAB_CLIENT_PID")
		served_on "$TMP/cli" 50
		copies+=" $(copy_once)"
		sends+=" $(lab_socat_once)"
		n=$((n + 1))
		[ -z "$MIGRATE_LOGS" ] || logs=(--dir-src "$MIGRATE_LOGS/$mib-$hot-$n")
		lab_migrate "$TMP/mig.out" "$spid" --cr "$CR" --rounds "$rounds" --dir-dst "$TMP/dst" "${logs[@]+"${logs[@]}"}" \
			"${LAB_EXT_DUMP[@]}" "${LAB_EXT_RESTORE[@]}" || { echo "bench: cr-migrate failed:" >&2; cat "$TMP/mig.out" >&2; exit 1; }
		served_on "$TMP/cli" 50
		[ "$(lab_check 7000)" = "OK $spid" ] || { echo "bench: the migrated service's memory does not check" >&2; exit 1; }
		touch "$TMP/cli/stop"
		for _ in $(seq 100); do [ -e "$TMP/cli/result" ] && break; sleep 0.1; done
		r=$(cat "$TMP/cli/result" 2>/dev/null)
		[[ $r == OK* ]] || { echo "bench: the client says: $r" >&2; exit 1; }
		freezes+=" $(sed -n 's/^cr-migrate: final dump: .* frozen \([0-9.]*\) ms$/\1/p' "$TMP/mig.out" | awk '{ print $1 / 1000 }')"
		gaps+=" $(sed -n 's/.* maxgap_ms \([0-9.]*\) .*/\1/p' <<<"$r" | awk '{ print $1 / 1000 }')"
		totals+=" $(sed -n 's/^cr-migrate: total \([0-9.]*\) s:.*/\1/p' "$TMP/mig.out")"
		kill -9 "$spid" "$LAB_CLIENT_PID" 2>/dev/null || true
		for _ in $(seq 400); do ip -n "$LAB_B" link show svc >/dev/null 2>&1 || break; sleep 0.05; done
		! ip -n "$LAB_B" link show svc >/dev/null 2>&1 || { echo "bench: hostB's svc outlives the service" >&2; exit 1; }
	done
	lab_down
	LAB=0
	rm -f "$TMP/ref"
	local what cmed
	what="migrate $(size_name "$((mib << 10))")/$(size_name "$hot")"
	read -r cmed cmin cmax <<<"$(stats "$copies")"
	row "cat copy ${mib} MiB (tmpfs)" "$cmed" "$cmin" "$cmax" "1.00" "-" "reference for the total"
	read -r med min max <<<"$(stats "$freezes")"
	row "$what: freeze" "$med" "$min" "$max" "-" "-" \
		"$([ "$mib" -le 64 ] && echo "target <= 10 ms" || echo "target <= 100 ms"); $rounds pre-copy rounds at most"
	read -r med min max <<<"$(stats "$gaps")"
	row "$what: gap" "$med" "$min" "$max" "-" "-" "$([ "$mib" -le 64 ] && echo "target <= 20 ms; ")largest gap between answers"
	read -r smed smin smax <<<"$(stats "$sends")"
	row "socat hostA to hostB ${mib} MiB" "$smed" "$smin" "$smax" "-" "-" "the bytes alone over the lab's lan"
	read -r med min max <<<"$(stats "$totals")"
	row "$what: total" "$med" "$min" "$max" \
		"$(awk -v a="$med" -v b="$cmed" 'BEGIN { printf "%.2f", a / b }')" "-" \
		"target <= 2x copy; $(awk -v a="$med" -v b="$smed" 'BEGIN { printf "%.2f", a / b }')x the socat transfer; $runs runs"
}

# size_name KIB: "256 KiB", "64 MiB", "1 GiB".
size_name() {
	if [ "$1" -ge $((1 << 20)) ]; then echo "$(($1 >> 20)) GiB"
	elif [ "$1" -ge 1024 ]; then echo "$(($1 >> 10)) MiB"
	else echo "$1 KiB"; fi
}

# served_on DIR N: the lab's client gets N more answers (within 30 s).
served_on() {
	local from
	from=$(lab_answers "$1")
	for _ in $(seq 600); do
		[ ! -e "$1/result" ] && [ "$(lab_answers "$1")" -ge $((from + $2)) ] && return 0
		sleep 0.05
	done
	echo "bench: the client is not served: $(cat "$1/result" "$1/out" 2>/dev/null)" >&2
	exit 1
}

echo "# cr bench: $(date -u +%Y-%m-%d), $(nproc) cores, $(uname -r), images on tmpfs, $RUNS runs each"
wants() { case " $CASES " in *" $1 "*) return 0 ;; esac; return 1; }
if wants size; then for mib in $SIZES; do bench_size "$mib"; done; fi
if wants tree; then for t in $TREES; do bench_tree "${t%:*}" "${t#*:}"; done; fi
if wants fds; then bench_fds; fi
if wants cow; then bench_cow; fi
if wants ratio; then bench_ratio; fi
if wants pageserver; then bench_pageserver; fi
if wants migrate; then for m in $MIGRATIONS; do bench_migrate "${m%%:*}" "$(cut -d: -f2 <<<"$m")" "${m##*:}"; done; fi
printf '%-34s %8s %8s %8s %9s %10s  %s\n' "case" "median s" "min" "max" "ratio" "peak/rate" "note"
printf '%s\n' "${ROWS[@]}"
