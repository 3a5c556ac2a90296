#!/usr/bin/env bats
# The README's main-job command: share/metald/examples/demo.sh (what `make demo` runs after
# `make deps all`) and the by-hand QEMU walk-through. Both must leave nothing behind.

load helpers/common

setup() {
	require_root
	require_cmd qemu-system-x86_64 socat
	leak_snapshot
}

teardown() {
	leak_check
}

@test "demo: two VMs booted by metald-vm ping each other and the host, pause, resume, shut down, delete" {
	run sh "$METALD_TOP/share/metald/examples/demo.sh"
	echo "$output"
	[ "$status" -eq 0 ]
	[[ "$output" == *"METALD-GUEST-READY ipv4="* ]]
	[[ "$output" == *"3 packets transmitted, 3 packets received"* ]]
	[[ "$output" == *"0% packet loss"* ]]
	[[ "$output" == *"PAUSED"* ]]
	[[ "$output" == *"demo: done"* ]]
	local tmp
	tmp=$(echo "$output" | grep -o '/tmp/metald-demo\.[A-Za-z0-9]*' | head -1)
	[ -z "$tmp" ] || [ ! -e "$tmp" ]
}

@test "qemu-by-hand: the guest on a namespaced network, its output, power off, clean up" {
	run sh "$METALD_TOP/share/metald/examples/qemu-by-hand.sh"
	echo "$output"
	[ "$status" -eq 0 ]
	[[ "$output" == *"METALD-GUEST-READY ipv4=192.0.2.2/24 ipv6=2001:db8:1::2/64 mac=02:00:c0:00:02:02"* ]]
	[[ "$output" == *"hello from the guest: Linux "* ]]
	[[ "$output" == *"64 bytes from 192.0.2.2"* ]]
	[[ "$output" == *"reboot: Power down"* ]]
	[[ "$output" == *"demo: done"* ]]
}
