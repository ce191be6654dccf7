#!/usr/bin/env bash
# scripts/kernel-test.sh — `make kernel-test`: prove kernel-patches/ works.
#
# Builds Debian's linux-source-6.1 with the clone2 patch series, a static cr
# and its test workloads, packs them with busybox into an initramfs, boots it
# under qemu (KVM where it boots, software emulation otherwise) and reads the
# guest's verdict from the serial console. Inside the guest
# (kernel-patches/test/guest-test.sh): the clone2 kselftest, `cr check`, and
# workloads dumped with `cr dump` and restored with
# `cr restore --pid-backend=clone2`, every pid checked; then workloads in
# cgroup v2 cgroups with memory, pids and cpu limits (the guest kernel has
# those controllers on v2, which the hosts do not).
#
# Exits 0 only on "CR-KERNEL-TEST: PASS". Needs root (apt-get, mknod).
#
# Everything slow is cached outside the clone, in $CR_KERNEL_CACHE
# (default /var/tmp/cr-kernel):
#   linux/       the unpacked source with the patches applied (re-patched
#                when kernel-patches/*.patch change: the old series is
#                reverted, the new one applied, so only touched files rebuild)
#   build/       the kernel build (make O=); its .config is remade only when
#                kernel-patches/test/kernel.config changes
#   cr-static-HASH/  the static cr build (make BUILD=), one for each
#                checkout (HASH of its path): objects made from another
#                checkout's sources, newer than this one's, were linked
#                as they were
#   selftest/    the static kselftest binary
#   logs/        build logs and the last console log
#
# Environment: CR_KERNEL_CACHE, CR_KERNEL_TEST_TIMEOUT (seconds for the boot
# and the guest's tests, default 600), CR_KERNEL_JOBS (default nproc),
# CR_PKGS (the pkg-config packages cr links with; the Makefile passes them).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
PATCHES=$ROOT/kernel-patches
GUEST=$PATCHES/test
CACHE=${CR_KERNEL_CACHE:-/var/tmp/cr-kernel}
TIMEOUT=${CR_KERNEL_TEST_TIMEOUT:-600}
JOBS=${CR_KERNEL_JOBS:-$(nproc)}
CR_PKGS=${CR_PKGS:-libprotobuf-c zlib libnl-3.0 libnl-route-3.0 libsodium}

SRC=$CACHE/linux
STATIC=$CACHE/cr-static-$(printf '%s' "$ROOT" | cksum | cut -d' ' -f1)
OBJ=$CACHE/build
LOGS=$CACHE/logs
TARBALL=/usr/src/linux-source-6.1.tar.xz
T0=$SECONDS

say() {
	printf 'kernel-test: [%3ds] %s\n' $((SECONDS - T0)) "$*"
}

die() {
	echo "kernel-test: $*" >&2
	exit 1
}

# Runs a step with its output in a log; on failure shows the log's tail.
logged() {
	local log=$LOGS/$1
	shift
	"$@" >"$log" 2>&1 || failed_step "$log" "$*"
}

failed_step() {
	echo "kernel-test: failed: $2" >&2
	tail -n 40 "$1" | sed 's/^/    /' >&2
	die "(whole log: $1)"
}

# make without the caller's make variables and jobserver leaking in
# (`make kernel-test V=1 BUILD=...` must not reach the kernel's make).
kmake() {
	env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL -u MAKEOVERRIDES make "$@"
}

# ---- packages ----------------------------------------------------------------

install_packages() {
	local packages=(
		linux-source-6.1 bc bison flex libelf-dev libssl-dev cpio xz-utils patch
		qemu-system-x86 busybox-static gcc make binutils
	)
	local missing=() p
	for p in "${packages[@]}"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
	done
	if [ ${#missing[@]} -gt 0 ]; then
		say "installing ${missing[*]}"
		export DEBIAN_FRONTEND=noninteractive
		logged apt.log apt-get update -qq
		logged apt.log apt-get install -y -qq --no-install-recommends "${missing[@]}"
	fi
	# cr's own build dependencies (protobuf-c, zlib, libnl, ...).
	logged deps.log bash "$ROOT/scripts/install-deps.sh"
	# The static archives a static cr links with come with the -dev packages.
	local lib
	for lib in $(pkg-config --static --libs-only-l $CR_PKGS); do
		lib=${lib#-l}
		case $lib in pthread | m | c | dl | rt) continue ;; esac
		[ -n "$(find /usr/lib /lib -name "lib$lib.a" -print -quit 2>/dev/null)" ] ||
			die "no static lib$lib.a for a static cr; which -dev package should ship it?"
	done
}

# ---- source: unpacked once, patched per series ----------------------------------

source_version() {
	dpkg-query -W -f='${Version}' linux-source-6.1
}

unpack_source() {
	local tmp=$CACHE/unpack
	say "unpacking $TARBALL ($(source_version))"
	rm -rf "$SRC" "$OBJ" "$tmp"
	mkdir -p "$tmp"
	tar -xf "$TARBALL" -C "$tmp"
	mv "$tmp"/linux-source-6.1 "$SRC"
	rmdir "$tmp"
	mkdir -p "$SRC/.cr-applied"
	source_version >"$SRC/.cr-source"
}

patches_hash() {
	cat "$PATCHES"/0*.patch | sha256sum | cut -d' ' -f1
}

revert_applied() {
	local p
	for p in $(ls -r "$SRC"/.cr-applied/0*.patch 2>/dev/null); do
		patch -R -p1 -s -f --no-backup-if-mismatch -r - -d "$SRC" -i "$p" >>"$LOGS/patch.log" 2>&1 || return 1
	done
	rm -f "$SRC"/.cr-applied/0*.patch "$SRC/.cr-applied/hash"
}

# The files a series touches.
series_files() {
	grep -h -E '^(\+\+\+ b|--- a)/' "$@" 2>/dev/null | sed -E 's#^(\+\+\+ b|--- a)/##' | sort -u
}

# Re-patching rewrites every file of both series. Files that come out as
# they were get their old mtime back, so make rebuilds only what changed
# (one line of include/uapi/linux/sched.h would otherwise rebuild it all).
save_series_files() {
	local keep=$CACHE/unchanged f
	rm -rf "$keep"
	for f in $(series_files "$SRC"/.cr-applied/0*.patch "$PATCHES"/0*.patch); do
		[ -f "$SRC/$f" ] || continue
		mkdir -p "$keep/$(dirname "$f")"
		cp -p "$SRC/$f" "$keep/$f"
	done
}

restore_unchanged_mtimes() {
	local keep=$CACHE/unchanged f
	for f in $(series_files "$SRC"/.cr-applied/0*.patch); do
		[ -f "$keep/$f" ] && [ -f "$SRC/$f" ] && cmp -s "$keep/$f" "$SRC/$f" && touch -r "$keep/$f" "$SRC/$f"
	done
	rm -rf "$keep"
}

apply_patches() {
	local want p
	want=$(patches_hash)
	if [ ! -f "$SRC/.cr-source" ] || [ "$(cat "$SRC/.cr-source")" != "$(source_version)" ] ||
		[ -e "$SRC/.cr-dirty" ]; then
		unpack_source
	fi
	[ "$(cat "$SRC/.cr-applied/hash" 2>/dev/null)" = "$want" ] && return 0
	say "applying kernel-patches/ (series $(echo "$want" | cut -c1-12))"
	: >"$LOGS/patch.log"
	save_series_files
	touch "$SRC/.cr-dirty"
	if ! revert_applied; then
		say "the previous series does not revert cleanly; unpacking afresh"
		unpack_source
		touch "$SRC/.cr-dirty"
	fi
	for p in "$PATCHES"/0*.patch; do
		if ! patch -p1 -s -f --no-backup-if-mismatch -r - -d "$SRC" -i "$p" >>"$LOGS/patch.log" 2>&1; then
			cat "$LOGS/patch.log" >&2
			die "$(basename "$p") does not apply to linux-source-6.1 $(source_version)"
		fi
		cp "$p" "$SRC/.cr-applied/"
	done
	restore_unchanged_mtimes
	echo "$want" >"$SRC/.cr-applied/hash"
	rm -f "$SRC/.cr-dirty"
}

# ---- kernel ------------------------------------------------------------------------

configure_kernel() {
	local frag=$GUEST/kernel.config key line
	key=$( (source_version; cat "$frag") | sha256sum | cut -d' ' -f1)
	[ -f "$OBJ/.config" ] && [ "$(cat "$OBJ/.cr-config" 2>/dev/null)" = "$key" ] && return 0
	say "configuring: tinyconfig (x86_64) + kernel-patches/test/kernel.config"
	mkdir -p "$OBJ"
	logged config.log kmake -C "$SRC" O="$OBJ" ARCH=x86_64 tinyconfig
	logged config.log "$SRC/scripts/kconfig/merge_config.sh" -m -O "$OBJ" "$OBJ/.config" "$frag"
	logged config.log kmake -C "$SRC" O="$OBJ" ARCH=x86_64 olddefconfig
	while read -r line; do
		case $line in CONFIG_*) ;; *) continue ;; esac
		grep -qx -- "$line" "$OBJ/.config" || die "$line did not stick in the kernel config ($LOGS/config.log)"
	done <"$frag"
	echo "$key" >"$OBJ/.cr-config"
}

build_kernel() {
	say "building the kernel (-j$JOBS; from clean about 7 minutes on 2 idle cores, 11 on busy ones)"
	# A compiler killed from outside (SIGKILL: make says "Error 137", seen
	# on busy shared machines) is worth one more try; make resumes.
	if ! kmake -C "$SRC" O="$OBJ" ARCH=x86_64 -j"$JOBS" bzImage >"$LOGS/kernel-build.log" 2>&1; then
		grep -q 'Error 137' "$LOGS/kernel-build.log" || failed_step "$LOGS/kernel-build.log" "kernel build"
		say "a compiler was killed (SIGKILL); resuming the build once"
		logged kernel-build.log kmake -C "$SRC" O="$OBJ" ARCH=x86_64 -j"$JOBS" bzImage
	fi
	logged headers.log kmake -C "$SRC" O="$OBJ" ARCH=x86_64 headers
	grep -q 'clone2' "$OBJ/arch/x86/include/generated/uapi/asm/unistd_64.h" ||
		die "the built kernel has no clone2 in its syscall table"
}

build_selftest() {
	say "building the clone2 kselftest"
	mkdir -p "$CACHE/selftest"
	logged selftest-build.log kmake -C "$SRC/tools/testing/selftests/clone2" OUTPUT="$CACHE/selftest" \
		KHDR_INCLUDES="-isystem $OBJ/usr/include" LDFLAGS=-static
}

# ---- cr ------------------------------------------------------------------------------

is_static() {
	! readelf -l "$1" 2>/dev/null | grep -q 'Requesting program interpreter'
}

build_cr() {
	local b=$STATIC bin
	say "building a static cr and workloads"
	# -static reaches every link through CC (the workload rules do not use
	# CFLAGS); the libraries come in their static order.
	logged cr-build.log kmake -C "$ROOT" BUILD="$b" CC="gcc -static" CR_LINK= \
		PKG_LIBS="$(pkg-config --static --libs $CR_PKGS)" cr workloads
	for bin in "$b/cr" "$b/test/workloads/w_counter" "$b/test/workloads/w_state" \
		"$b/test/workloads/subreaper"; do
		[ -x "$bin" ] || die "$bin was not built"
		is_static "$bin" || die "$bin is not statically linked"
	done
}

# ---- initramfs and boot -------------------------------------------------------------------

build_initramfs() {
	local stage=$CACHE/initramfs b=$STATIC applet
	say "packing the initramfs"
	rm -rf "$stage"
	mkdir -p "$stage"/{bin,dev,proc,sys,tmp,cr/workloads}
	cp /bin/busybox "$stage/bin/busybox"
	is_static "$stage/bin/busybox" || die "/bin/busybox is not static (install busybox-static)"
	for applet in $(/bin/busybox --list); do
		[ "$applet" = busybox ] || ln -s busybox "$stage/bin/$applet"
	done
	mknod -m 600 "$stage/dev/console" c 5 1
	mknod -m 666 "$stage/dev/null" c 1 3
	install -m 755 "$GUEST/init" "$stage/init"
	install -m 755 "$GUEST/guest-test.sh" "$stage/cr/guest-test.sh"
	install -m 755 "$b/cr" "$stage/cr/cr"
	install -m 755 "$CACHE/selftest/clone2_test" "$stage/cr/clone2_test"
	install -m 755 "$b"/test/workloads/{w_counter,w_state,subreaper} "$stage/cr/workloads/"
	(cd "$stage" && find . -print0 | cpio --null -o -H newc --quiet) >"$CACHE/initramfs.cpio"
}

# boot_guest ACCEL CPU: the guest under qemu with that accelerator.
boot_guest() {
	local console=$LOGS/console.log
	say "booting under qemu ($1; at most $TIMEOUT s); console: $console"
	: >"$console"
	timeout -k 10 "$TIMEOUT" qemu-system-x86_64 -accel "$1" -cpu "$2" -m 1G -smp 1 \
		-nographic -no-reboot -monitor none \
		-kernel "$OBJ/arch/x86/boot/bzImage" -initrd "$CACHE/initramfs.cpio" \
		-append "console=ttyS0 panic=-1 quiet" </dev/null >"$console" 2>&1 || true
}

has_verdict() {
	tr -d '\r' <"$LOGS/console.log" | grep -a -q '^CR-KERNEL-TEST: '
}

# qemu itself failed before the guest said anything: its own error line,
# and no line of the guest's.
qemu_failed() {
	tr -d '\r' <"$LOGS/console.log" | grep -a -q '^qemu-system-x86_64: ' &&
		! tr -d '\r' <"$LOGS/console.log" | grep -a -q '^guest: '
}

# KVM where /dev/kvm is usable; software emulation otherwise, and after a
# KVM boot that qemu itself failed (a nested KVM may refuse the host CPU's
# MSRs: qemu aborts with "failed to set MSR").  A guest that panics or
# hangs under KVM is a failure, not a reason to try again.
boot() {
	if [ -w /dev/kvm ]; then
		boot_guest kvm host
		has_verdict || ! qemu_failed && return
		say "no verdict under KVM (its console's tail: $(tail -n 2 "$LOGS/console.log" | tr -d '\r' | tr '\n' ' ')); again under software emulation"
		cp "$LOGS/console.log" "$LOGS/console-kvm.log"
	fi
	boot_guest tcg max
}

# The guest prints "guest: ..." progress lines and one verdict line.
read_verdict() {
	local console=$LOGS/console.log verdict
	tr -d '\r' <"$console" | grep -a -E '^(guest|ok|not ok|# Totals)' | sed 's/^/    /' || true
	verdict=$(tr -d '\r' <"$console" | grep -a '^CR-KERNEL-TEST: ' | tail -n 1 || true)
	if [ -z "$verdict" ]; then
		echo "kernel-test: no verdict on the console (timeout, panic or a boot failure); its tail:" >&2
		tail -n 30 "$console" | sed 's/^/    /' >&2
		die "FAIL (console: $console)"
	fi
	echo "$verdict"
	case $verdict in
	"CR-KERNEL-TEST: PASS"*) say "done" ;;
	*) die "FAIL (console: $console)" ;;
	esac
}

main() {
	[ "$(id -u)" -eq 0 ] || die "needs root (apt-get, mknod); run it as root"
	mkdir -p "$CACHE" "$LOGS"
	exec 9>"$CACHE/lock"
	flock -n 9 || { say "waiting for another kernel-test on $CACHE"; flock 9; }
	install_packages
	apply_patches
	configure_kernel
	build_kernel
	build_selftest
	build_cr
	build_initramfs
	boot
	read_verdict
}

main "$@"
