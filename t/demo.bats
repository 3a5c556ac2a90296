#!/usr/bin/env bats
# The README's main-job command: share/metald/examples/demo.sh (what `make demo` runs after
# `make deps all`) boots the test guest, shows its readiness line and a command's output, and
# leaves nothing behind.

load helpers/common

setup() {
	require_root
	require_cmd qemu-system-x86_64 socat
	leak_snapshot
}

teardown() {
	leak_check
}

@test "the demo boots the guest on a namespaced network, shows its output, powers it off and cleans up" {
	run sh "$METALD_TOP/share/metald/examples/demo.sh"
	echo "$output"
	[ "$status" -eq 0 ]
	[[ "$output" == *"METALD-GUEST-READY ipv4=192.0.2.2/24 ipv6=2001:db8:1::2/64 mac=02:00:c0:00:02:02"* ]]
	[[ "$output" == *"hello from the guest: Linux "* ]]
	[[ "$output" == *"64 bytes from 192.0.2.2"* ]]
	[[ "$output" == *"64 bytes from 2001:db8:1::2"* ]]
	[[ "$output" == *"reboot: Power down"* ]]
	[[ "$output" == *"demo: done"* ]]
	local tmp
	tmp=$(echo "$output" | sed -n 's|.*serial console in \(/tmp/metald-demo\.[^/]*\)/serial.log.*|\1|p')
	[ -n "$tmp" ] && [ ! -e "$tmp" ]
}
