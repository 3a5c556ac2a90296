#!/bin/sh
# metald's demo (`make demo`): build the test guest, boot it on QEMU microvm (KVM if it really
# works here, else TCG) on a network that exists only inside a namespace this script creates,
# show its readiness line and a command's output, reach it with ping, power it off through ACPI,
# and remove everything it made. Until metald-vm exists this drives QEMU directly.
set -eu

top=$(cd "$(dirname "$0")/../../.." && pwd)
guest_sh="$top/share/metald/guest"
[ -x "$guest_sh/build-guest" ] || [ -f "$guest_sh/build-guest" ] || { echo "demo: no share/metald/guest next to this script" >&2; exit 1; }
# In a source tree the guest is cached in build/ (as `make guest` does); installed, in the
# user's cache directory.
if [ -f "$top/Makefile" ] && [ -d "$top/lib" ]; then
	build="${METALD_DEMO_BUILD:-$top/build}"
else
	build="${METALD_DEMO_BUILD:-${XDG_CACHE_HOME:-$HOME/.cache}/metald}"
fi

step() { printf '\n== %s\n' "$*"; }

tmp=$(mktemp -d /tmp/metald-demo.XXXXXX)
ns=
qpid=
cleanup() {
	set +e
	if [ -n "$qpid" ] && kill -0 "$qpid" 2> /dev/null; then
		kill "$qpid"
		wait "$qpid" 2> /dev/null
	fi
	[ -n "$ns" ] && ip netns del "$ns" 2> /dev/null
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

step "build the test guest (Debian cloud kernel + busybox; cached in $build/guest)"
json=$(sh "$guest_sh/build-guest" --out "$build/guest")
echo "$json"
field() { printf '%s\n' "$json" | sed -n "s/.*\"$1\":\"\([^\"]*\)\".*/\1/p"; }
kernel=$(field kernel)
initrd=$(field initrd)
cmdline=$(field cmdline)

step "choose the accelerator (boots once under KVM per host boot to see whether it works)"
accel=$(sh "$guest_sh/accel-probe" --guest "$build/guest")
echo "accelerator: $accel"

guest_v4=192.0.2.2 host_v4=192.0.2.1 guest_v6=2001:db8:1::2 host_v6=2001:db8:1::1
mac=02:00:c0:00:02:02
netargs=
run_in_ns=
if [ "$(id -u)" = 0 ] && command -v ip > /dev/null 2>&1; then
	ns="metald-demo-$$"
	tap="mtdemo$$"
	step "make network namespace $ns with tap $tap ($host_v4/24, $host_v6/64); nothing outside it is touched"
	ip netns add "$ns"
	ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.accept_dad=0 net.ipv6.conf.default.accept_dad=0
	ip -n "$ns" link set lo up
	ip -n "$ns" tuntap add dev "$tap" mode tap
	ip -n "$ns" addr add "$host_v4/24" dev "$tap"
	ip -n "$ns" addr add "$host_v6/64" dev "$tap" nodad
	ip -n "$ns" link set "$tap" up
	netargs="-netdev tap,id=n0,ifname=$tap,script=no,downscript=no -device virtio-net-device,netdev=n0,mac=$mac"
	run_in_ns="ip netns exec $ns"
	append="$cmdline ip=$guest_v4::$host_v4:255.255.255.0:demo:eth0:off metald.ipv6=$guest_v6/64 metald.gw6=$host_v6"
else
	step "not root: booting without a network device"
	append="$cmdline"
fi
append="$append metald.run=\"echo hello from the guest: \$(uname -sr); ip -4 addr show dev eth0 2>/dev/null | grep inet\""

step "boot: qemu-system-x86_64 -M microvm -accel $accel (serial console in $tmp/serial.log)"
start=$(date +%s%N)
# shellcheck disable=SC2086
$run_in_ns qemu-system-x86_64 -M microvm -accel "$accel" -m 256 -nodefaults -no-user-config \
	-display none -no-reboot -serial "file:$tmp/serial.log" -qmp "unix:$tmp/qmp.sock,server=on,wait=off" \
	-kernel "$kernel" -initrd "$initrd" $netargs -append "$append" &
qpid=$!

i=0
until grep -q 'METALD-GUEST-RUN-EXIT' "$tmp/serial.log" 2> /dev/null; do
	kill -0 "$qpid" 2> /dev/null || { cat "$tmp/serial.log" >&2; echo "demo: QEMU ended early" >&2; exit 1; }
	[ $i -lt 1200 ] || { cat "$tmp/serial.log" >&2; echo "demo: the guest did not get ready in 120 s" >&2; exit 1; }
	sleep 0.1
	i=$((i + 1))
done
ms=$((($(date +%s%N) - start) / 1000000))
step "the guest is up and ran its command ${ms} ms after QEMU started; its console says:"
tr -d '\r' < "$tmp/serial.log" | grep -E '^METALD-GUEST-READY|^hello from the guest|^ *inet |^METALD-GUEST-RUN-EXIT'

if [ -n "$ns" ]; then
	step "reach the guest from inside $ns"
	ip netns exec "$ns" ping -c 1 -W 5 "$guest_v4" | grep -E 'bytes from|packet loss'
	ip netns exec "$ns" ping -6 -c 1 -W 5 "$guest_v6" | grep -E 'bytes from|packet loss'
fi

step "power off through QMP system_powerdown (ACPI power button)"
printf '%s\n' '{"execute":"qmp_capabilities"}' '{"execute":"system_powerdown"}' |
	socat -t 2 - "UNIX-CONNECT:$tmp/qmp.sock" > /dev/null
i=0
while kill -0 "$qpid" 2> /dev/null && [ "$(awk '{print $3}' "/proc/$qpid/stat" 2> /dev/null)" != Z ] && [ $i -lt 300 ]; do
	sleep 0.1
	i=$((i + 1))
done
if wait "$qpid"; then
	qpid=
	tr -d '\r' < "$tmp/serial.log" | grep -oE 'metald-guest: powering off|reboot: Power down'
else
	echo "demo: QEMU did not stop cleanly" >&2
	exit 1
fi

step "clean up: namespace, tap and temporary files removed"
cleanup
ns=
trap - EXIT
echo "demo: done"
