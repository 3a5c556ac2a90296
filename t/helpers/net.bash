# Helpers for metald-net tests: run the program in the test's "host" netns. nsenter, not
# `ip netns exec`: the latter makes a private mount namespace, and the VM's netns pins
# (bind mounts) would vanish with it.
in_hostns() { nsenter --net="/run/netns/$MD_HOSTNS" "$@"; }
net() { in_hostns metald-net --root "$NET_ROOT" "$@"; }

# Everything of ours in the host netns: links, pins, set elements, leases, records.
net_objects() {
	{
		in_hostns ip -o link show | awk -F': ' '{sub(/@.*/, "", $2); print "link " $2}' | grep -E 'link md[tvp]' || true
		ls "$NET_ROOT/netns" 2>/dev/null | sed 's/^/pin /'
		in_hostns nft list table bridge metald 2>/dev/null | grep -o 'comment "vm:[^"]*"' | sort -u || true
		in_hostns nft list table inet metald 2>/dev/null | grep -o 'comment "[a-z]*:[^"]*"' | sort -u || true
		ls -A "$NET_ROOT/data/net/tenants" "$NET_ROOT/data/net/vms" 2>/dev/null | grep -E 'json|log|slot' || true
		ls "$NET_ROOT/data/net/pool" 2>/dev/null | grep -v '^lock$' | sed 's/^/pool /' || true
		grep -s '"' "$NET_ROOT/data/net/ports.json" | grep -v '^{}$' || true
	}
}
net_setup() {
	require_root
	require_cmd nsenter nft tc
	leak_snapshot
	netns_up
	NET_ROOT="$BATS_TEST_TMPDIR/r"
	export NET_ROOT
}
net_teardown() {
	[ -n "${NET_ROOT:-}" ] && net teardown --force >/dev/null 2>&1
	netns_down
	leak_check
}
# Nothing of ours left. A deleted VM's host link is detached at once and deleted by the kernel
# with the VM's namespace, in the background: allow it a few seconds.
_net_none() { [ -z "$(net_objects)" ]; }
net_none() {
	wait_for 10 _net_none && return 0
	echo "left behind:" >&2
	net_objects >&2
	return 1
}
