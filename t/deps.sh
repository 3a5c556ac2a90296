#!/bin/sh
# Install, with apt-get, the Debian packages metald needs to build, test and run its demo.
# Packages already installed are skipped; nothing is downloaded from anywhere but Debian's archive.
set -eu

PKGS="build-essential pkg-config
libnl-3-dev libnl-route-3-dev libseccomp-dev libcap-dev libcurl4-openssl-dev libjansson-dev libnftables-dev libnftnl-dev libmnl-dev
jq bats bats-support bats-assert curl python3 socat man-db groff-base
qemu-system-x86 busybox-static cpio e2fsprogs iproute2 nftables bubblewrap procps util-linux kmod iputils-ping"

missing=""
for p in $PKGS; do
	st=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
	case "$st" in
	*"install ok installed"*) ;;
	*) missing="$missing $p" ;;
	esac
done

if [ -z "$missing" ]; then
	echo "deps: all Debian packages present"
	exit 0
fi

if [ "$(id -u)" != 0 ]; then
	echo "deps: missing Debian packages:$missing" >&2
	echo "deps: run as root: apt-get install -y$missing   (or: sudo make deps)" >&2
	exit 1
fi

echo "deps: installing:$missing"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $missing
