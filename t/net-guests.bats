#!/usr/bin/env bats
# metald-net with real guests: three QEMU microvm guests (TCG) on taps made by metald-net,
# two of tenant A (a2's namespace from the pool) and one of tenant B, booted once for the file.

load helpers/common
load helpers/net

# guest_run VM CMD: run CMD on the guest's serial shell; returns its exit status.
guest_run() {
	local vm=$1 m
	shift
	m="MK$(date +%s%N)"
	printf '%s; echo %s-$?-E\n' "$*" "$m" > "$GD/$vm.in"
	wait_for 40 grep -q "$m-[0-9]*-E" "$GD/$vm.log" || { echo "guest $vm: no answer to: $*" >&2; return 99; }
	return "$(grep -o "$m-[0-9]*-E" "$GD/$vm.log" | head -1 | cut -d- -f2)"
}
js() { jq -r "$2" "$GD/$1.json"; }

boot() { # VM
	local vm=$1 g=$METALD_TOP/build/guest
	mkfifo "$GD/$vm.in" "$GD/$vm.out"
	cat "$GD/$vm.out" > "$GD/$vm.log" 2>/dev/null 3>&- &
	net exec --id "$vm" -- qemu-system-x86_64 -M microvm -accel tcg -m 128 -nodefaults -no-user-config \
		-display none -daemonize -pidfile "$GD/$vm.pid" -serial "pipe:$GD/$vm" -no-reboot \
		-kernel "$g/vmlinuz" -initrd "$g/initrd.cpio.gz" \
		-netdev "tap,id=n0,ifname=$(js "$vm" .tap),script=no,downscript=no" \
		-device "virtio-net-device,netdev=n0,mac=$(js "$vm" .mac)" \
		-append "$GCMD $(js "$vm" .kernel_args)" </dev/null >/dev/null 2>&1 3>&-
}

setup_file() {
	[ "$(id -u)" = 0 ] || return 0
	command -v qemu-system-x86_64 >/dev/null || return 0
	netns_up
	export NET_ROOT="$BATS_FILE_TMPDIR/r" GD="$BATS_FILE_TMPDIR/g" MD_PFX
	mkdir -p "$GD"
	GCMD=$(sh "$METALD_TOP/share/metald/guest/build-guest" --out "$METALD_TOP/build/guest" | jq -r .cmdline)
	export GCMD
	# an "instance metadata service" upstream, reachable from the host: guests must not reach it
	in_up ip addr add 169.254.169.254/32 dev lo
	in_host ip route add 169.254.169.254/32 via "$MD_UP4"
	net create --id a1 --tenant ta --publish 8080:80 --json > "$GD/a1.json"
	# a2 takes a namespace made ahead of time (`pool`): the spoofing test below runs on it
	net pool fill --count 1 >/dev/null
	net create --id a2 --tenant ta --json > "$GD/a2.json"
	net create --id b1 --tenant tb --json > "$GD/b1.json"
	boot a1; boot a2; boot b1
	local vm
	for vm in a1 a2 b1; do
		wait_for 180 grep -q METALD-GUEST-READY "$GD/$vm.log" || { echo "$vm did not boot" >&2; cat "$GD/$vm.log" >&2; }
	done
}

teardown_file() {
	local vm pid
	for vm in a1 a2 b1; do
		[ -f "${GD:-/nonexistent}/$vm.pid" ] || continue
		pid=$(cat "$GD/$vm.pid")
		kill "$pid" 2>/dev/null
		wait_for 10 sh -c "! kill -0 $pid 2>/dev/null" || kill -9 "$pid" 2>/dev/null
	done
	[ -n "${NET_ROOT:-}" ] && net teardown --force >/dev/null 2>&1
	netns_down
}

setup() {
	require_root
	require_cmd qemu-system-x86_64 nsenter curl
	for vm in a1 a2 b1; do
		grep -q METALD-GUEST-READY "$GD/$vm.log" || { echo "guest $vm not booted" >&2; return 1; }
	done
}

@test "guests come up with the addresses and MAC metald-net gave them" {
	[[ "$(js a2 .host_link)" == mdp* ]] # from the pool
	[[ "$(js a1 .host_link)" == mdv* ]]
	for vm in a1 a2 b1; do
		grep -q "METALD-GUEST-READY ipv4=$(js $vm .ipv4.address)/24 ipv6=$(js $vm .ipv6.address)/64 mac=$(js $vm .mac)" "$GD/$vm.log"
	done
}

@test "A1 and A2 (same tenant) reach each other over IPv4 and IPv6" {
	guest_run a1 ping -c1 -W3 "$(js a2 .ipv4.address)"
	guest_run a1 ping6 -c1 -W3 "$(js a2 .ipv6.address)"
	guest_run a2 ping -c1 -W3 "$(js a1 .ipv4.address)"
	guest_run a2 ping6 -c1 -W3 "$(js a1 .ipv6.address)"
	guest_run a1 ping -c1 -W3 "$(js a1 .ipv4.gateway)"
	guest_run a1 ping6 -c1 -W3 "$(js a1 .ipv6.gateway)"
}

@test "A1 and B1 (other tenants) never reach each other, directly or through host addresses" {
	run guest_run a1 ping -c1 -W2 "$(js b1 .ipv4.address)"; [ "$status" -eq 1 ]
	run guest_run a1 ping6 -c1 -W2 "$(js b1 .ipv6.address)"; [ "$status" -eq 1 ]
	run guest_run b1 ping -c1 -W2 "$(js a1 .ipv4.address)"; [ "$status" -eq 1 ]
	run guest_run b1 ping6 -c1 -W2 "$(js a1 .ipv6.address)"; [ "$status" -eq 1 ]
	# B's gateway and the host's uplink address are host addresses, not A's gateway
	run guest_run a1 ping -c1 -W2 "$(js b1 .ipv4.gateway)"; [ "$status" -eq 1 ]
	run guest_run a1 ping6 -c1 -W2 "$(js b1 .ipv6.gateway)"; [ "$status" -eq 1 ]
	run guest_run b1 ping -c1 -W2 "$(js a1 .ipv4.gateway)"; [ "$status" -eq 1 ]
	run guest_run a1 ping -c1 -W2 198.18.0.2; [ "$status" -eq 1 ]
	# the host's own services: a listener in the host netns is unreachable from guests
	in_host sh -c 'exec 3>&-; timeout 20 nc -l -p 2222 >/dev/null 2>&1 &'
	run guest_run a1 "echo x | nc -w 2 $(js a1 .ipv4.gateway) 2222"; [ "$status" -ne 0 ]
}

@test "guests reach the upstream netns through NAT, over IPv4 and IPv6" {
	guest_run a1 ping -c1 -W3 "$MD_UP4"
	guest_run a1 ping6 -c1 -W3 "$MD_UP6"
	guest_run b1 ping -c1 -W3 "$MD_UP4"
	guest_run b1 ping6 -c1 -W3 "$MD_UP6"
}

@test "169.254.169.254 is unreachable from guests" {
	in_host ping -c1 -W2 169.254.169.254
	run guest_run a1 ping -c1 -W2 169.254.169.254; [ "$status" -eq 1 ]
	guest_run a1 ping -c1 -W3 "$MD_UP4"
}

@test "a guest that changes its IP or its MAC gets nothing through" {
	local a4 gw
	a4=$(js a2 .ipv4.address); gw=$(js a2 .ipv4.gateway)
	# another IPv4 address of the subnet
	guest_run a2 ip addr add 172.31.0.200/24 dev eth0
	run guest_run a2 ping -c1 -W2 -I 172.31.0.200 "$gw"; [ "$status" -eq 1 ]
	run guest_run a2 ping -c1 -W2 -I 172.31.0.200 "$(js a1 .ipv4.address)"; [ "$status" -eq 1 ]
	guest_run a2 ip addr del 172.31.0.200/24 dev eth0
	# another IPv6 address
	guest_run a2 ip -6 addr add fd6d:6574:616c::200/64 dev eth0
	run guest_run a2 ping6 -c1 -W2 -I fd6d:6574:616c::200 "$(js a2 .ipv6.gateway)"; [ "$status" -eq 1 ]
	guest_run a2 ip -6 addr del fd6d:6574:616c::200/64 dev eth0
	# another MAC
	guest_run a2 "ip link set eth0 down; ip link set eth0 address 02:00:00:00:00:99; ip link set eth0 up; ip neigh flush dev eth0"
	run guest_run a2 ping -c1 -W2 "$gw"; [ "$status" -eq 1 ]
	run guest_run a2 ping -c1 -W2 "$(js a1 .ipv4.address)"; [ "$status" -eq 1 ]
	# back to its own MAC: traffic flows again, so it was the spoofing that was dropped
	guest_run a2 "ip link set eth0 down; ip link set eth0 address $(js a2 .mac); ip link set eth0 up; ip addr add $a4/24 dev eth0 2>/dev/null; ip route add default via $gw 2>/dev/null; ip neigh flush dev eth0; true"
	wait_for 20 guest_run a2 ping -c1 -W2 "$gw"
}

@test "a published port reaches the guest from the upstream netns and from the host netns" {
	guest_run a1 "mkdir -p /tmp/www && echo hello-from-a1 > /tmp/www/index.html && httpd -p 80 -h /tmp/www"
	run in_up curl -s --max-time 10 http://198.18.0.2:8080/
	[ "$output" = hello-from-a1 ]
	run in_host curl -s --max-time 10 http://198.18.0.2:8080/
	[ "$output" = hello-from-a1 ]
	run in_up curl -s --max-time 10 "http://[2001:db8:ffff::2]:8080/"
	[ "$output" = hello-from-a1 ]
	# a guest of the same tenant through the host's address (hairpin); another tenant's never
	# (busybox nc with a timeout: this busybox's wget -T crashes)
	guest_run a2 "printf 'GET / HTTP/1.0\r\n\r\n' | nc -w 5 198.18.0.2 8080 | grep -q hello-from-a1"
	run guest_run b1 "printf 'GET / HTTP/1.0\r\n\r\n' | nc -w 3 198.18.0.2 8080 | grep -q hello-from-a1"
	[ "$status" -eq 1 ]
	# and the VM's traffic shows on its host link
	run_code 0 net stats --id a1 --json
	jq -e '.rx_bytes > 0 and .tx_bytes > 0' <<<"$output"
}
