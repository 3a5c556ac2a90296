#!/bin/sh
# metald's demo (`make demo`): two VMs of one tenant booted with QEMU by metald-vm, on a network
# that exists only inside a "host" network namespace this script creates (no packet leaves the
# machine). It lists them, shows their info, pings one VM from the other and from the host,
# shows their serial logs, pauses and resumes one, shuts both down, deletes them, and removes
# everything it made.
set -eu

top=$(cd "$(dirname "$0")/../../.." && pwd)
if [ -x "$top/build/bin/metald-vm" ]; then
	bin="$top/build/bin"
	guest_sh="$top/share/metald/guest"
	build="${METALD_DEMO_BUILD:-$top/build}"
else # an installed tree: <prefix>/share/metald/examples/demo.sh
	bin="$top/bin"
	guest_sh="$top/share/metald/guest"
	build="${METALD_DEMO_BUILD:-${XDG_CACHE_HOME:-$HOME/.cache}/metald}"
fi
[ "$(id -u)" = 0 ] || { echo "demo: run as root (it makes network namespaces, jails and cgroups)" >&2; exit 5; }

step() { printf '\n== %s\n' "$*"; }
show() { printf '$ %s\n' "$*"; "$@"; }

tmp=$(mktemp -d /tmp/metald-demo.XXXXXX)
ns="metald-demo-$$"
cg="metald-demo-$$"
# nsenter, not `ip netns exec`: that one remounts /sys (hiding the cgroup hierarchies the jail
# needs) in a throw-away mount namespace (losing the namespace pins metald-net makes)
vm() { nsenter --net="/run/netns/$ns" "$bin/metald-vm" --root "$tmp/root" "$@"; }
cleanup() {
	set +e
	for id in demo-a demo-b; do
		[ -d "$tmp/root/data/vms/$id" ] && vm delete "$id" --force > /dev/null 2>&1
	done
	[ -d "$tmp/root" ] && vm reconcile > /dev/null 2>&1
	ip netns del "$ns" 2> /dev/null
	for d in /sys/fs/cgroup/*/"$cg" /sys/fs/cgroup/"$cg"; do [ -d "$d" ] && rmdir "$d" 2> /dev/null; done
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

step "build the test guest (Debian cloud kernel + busybox; cached in $build/guest)"
json=$(sh "$guest_sh/build-guest" --out "$build/guest")
field() { printf '%s\n' "$json" | sed -n "s/.*\"$1\":\"\([^\"]*\)\".*/\1/p"; }
mkdir -p "$tmp/guest"
ln -s "$(field kernel)" "$tmp/guest/vmlinuz"
ln -s "$(field initrd)" "$tmp/guest/initrd.cpio.gz"
field cmdline > "$tmp/guest/cmdline"
echo "kernel $(field kernel_version), command line: $(cat "$tmp/guest/cmdline")"

step "make the \"host\": network namespace $ns (the VMs' networks hang off it; nothing outside it is touched)"
ip netns add "$ns"
ip -n "$ns" link set lo up
export UNKEY_METALD_GUEST_DIR="$tmp/guest" UNKEY_METALD_BACKEND=qemu UNKEY_METALD_CGROUP_PARENT="$cg"

step "create and boot two VMs of tenant acme (jailed QEMU microvm, each in its own netns, uid and cgroup)"
show vm create demo-a --tenant acme --customer acme-corp --memory 128M --boot > /dev/null
a4=$(vm info demo-a --json | jq -r .network.ipv4.address)
cmd="$(cat "$tmp/guest/cmdline") metald.run=\"ping -c 3 -W 2 $a4\""
show vm create demo-b --tenant acme --customer acme-corp --memory 128M --cmdline "$cmd" --boot > /dev/null

wait_log() { # id pattern
	i=0
	until grep -q "$2" "$tmp/root/data/vms/$1/serial.log" 2> /dev/null; do
		[ $i -lt 600 ] || { echo "demo: $1 did not print '$2' in 60 s" >&2; exit 1; }
		sleep 0.1
		i=$((i + 1))
	done
}
wait_log demo-a METALD-GUEST-READY
wait_log demo-b METALD-GUEST-RUN-EXIT

step "list and info"
show vm list
show vm info demo-a

step "demo-b pinged demo-a ($a4) from inside the guest; its serial log says:"
show vm logs demo-b --lines 40 | tr -d '\r' | grep -E 'METALD-GUEST-READY|bytes from|packets transmitted|METALD-GUEST-RUN-EXIT'

step "ping demo-a from the host namespace, over IPv4 and IPv6"
a6=$(vm info demo-a --json | jq -r .network.ipv6.address)
show ip netns exec "$ns" ping -c 2 -W 3 "$a4" | grep -E 'bytes from|packet loss'
show ip netns exec "$ns" ping -6 -c 2 -W 3 "$a6" | grep -E 'bytes from|packet loss'

step "demo-a's serial log"
show vm logs demo-a --lines 5 | tr -d '\r'

step "pause and resume demo-a"
show vm pause demo-a > /dev/null
show vm list --state PAUSED
show vm resume demo-a > /dev/null
show vm list --state RUNNING

step "shut both down (ACPI power button) and delete them"
show vm shutdown demo-a --timeout 20s > /dev/null
show vm shutdown demo-b --timeout 20s > /dev/null
show vm list
show vm delete demo-a
show vm delete demo-b

step "clean up: the host namespace, cgroups and temporary files"
cleanup
trap - EXIT
echo "demo: done; nothing is left behind"
