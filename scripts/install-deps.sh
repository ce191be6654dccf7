#!/usr/bin/env bash
# Installs the Debian packages cr needs to build and test (and the programs
# the tests run), when any is missing.
# Called by the Makefile; safe to run again (it does nothing when all are present).
set -euo pipefail

packages=(
	gcc make pkg-config
	protobuf-c-compiler libprotobuf-c-dev
	zlib1g-dev
	libnl-3-dev libnl-route-3-dev
	libsodium-dev
	libxxhash-dev
	libcmocka-dev
	# Unmodified programs the tests restore and check (see README, Tests).
	util-linux procps python3 python3-xxhash sqlite3 tmux vim less postgresql
	nodejs redis-server socat iproute2 nftables iptables dbus-daemon dbus-bin
	fio haproxy curl openjdk-17-jre-headless strace nginx-light keyutils numactl
)

missing=()
for p in "${packages[@]}"; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
		missing+=("$p")
	fi
done

[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
	echo "cr: missing build packages: ${missing[*]}" >&2
	echo "cr: run 'make' as root once, or: apt-get install ${missing[*]}" >&2
	exit 1
fi

echo "cr: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
