#!/usr/bin/env bats
# metald-net without guests: what create prints and makes, bad input, crash safety, leaks.

load helpers/common
load helpers/net

setup() { net_setup; }
teardown() { net_teardown; }

@test "create prints the contract's object; show prints it again; delete removes everything" {
	run_code 0 net create --id a1 --tenant ta --publish 8080:80 --publish 5353:53/udp --json
	local j=$output
	[ "$(jq -r .id <<<"$j")" = a1 ]
	[ "$(jq -r .tenant <<<"$j")" = ta ]
	[ "$(jq -r .netns <<<"$j")" = "$NET_ROOT/netns/metald-a1" ]
	[ "$(jq -r .tap <<<"$j")" = tap0 ]
	[[ "$(jq -r .mac <<<"$j")" == 02:* ]]
	[ "$(jq -r .ipv4.prefix <<<"$j")" = 24 ]
	[ "$(jq -r .ipv6.prefix <<<"$j")" = 64 ]
	[ "$(jq -r '.publish[1].protocol' <<<"$j")" = udp ]
	[ "$(jq -r '.rate_limit.rx' <<<"$j")" = null ]
	jq -e '.dns | length > 0' <<<"$j"
	a4=$(jq -r .ipv4.address <<<"$j"); g4=$(jq -r .ipv4.gateway <<<"$j")
	a6=$(jq -r .ipv6.address <<<"$j"); g6=$(jq -r .ipv6.gateway <<<"$j")
	[ "$(jq -r .kernel_args <<<"$j")" = "ip=$a4::$g4:255.255.255.0::eth0:off metald.ipv6=$a6/64 metald.gw6=$g6" ]
	# the pool defaults do not overlap this machine's fd00::/64
	[[ "$a6" != fd00:* ]]
	# the objects: host link on the tenant bridge, tap in the pinned netns, gateway addresses
	link=$(jq -r .host_link <<<"$j")
	in_hostns ip -o link show "$link" | grep -q 'master mdt'
	in_hostns ip -o addr show | grep -q "$g4/24"
	in_hostns ip -o addr show | grep -q "$g6/64"
	net exec --id a1 -- ip -o link show tap0 | grep -q 'master br0'
	in_hostns nft list set bridge metald macs | grep -q "comment \"vm:a1\""
	in_hostns nft list set bridge metald nd6 | grep -q "0x$(printf '%s' "$a6" | python3 -c 'import ipaddress,sys; print(ipaddress.ip_address(sys.stdin.read()).packed.hex())') comment \"vm:a1\""
	in_hostns nft list map inet metald pub4 | grep -q "tcp . 8080 comment \"vm:a1\" : $a4 . 80"
	run_code 0 net show --id a1 --json
	[ "$(jq -c . <<<"$output")" = "$(jq -c . <<<"$j")" ]
	run_code 0 net delete --id a1
	run_code 0 net delete --id a1
	net_none
	# the same id gets the same MAC again
	run_code 0 net create --id a1 --tenant ta --json
	[ "$(jq -r .mac <<<"$output")" = "$(jq -r .mac <<<"$j")" ]
}

@test "tenants get their own subnets and bridges; list, stats, tap owner, rate limits" {
	run_code 0 net create --id a1 --tenant ta --uid 4242 --gid 4343 --rate rx=1M,tx=2M/64k --json
	a1=$output
	run_code 0 net create --id a2 --tenant ta --json
	a2=$output
	run_code 0 net create --id b1 --tenant tb --json
	b1=$output
	[ "$(jq -r .ipv4.gateway <<<"$a1")" = "$(jq -r .ipv4.gateway <<<"$a2")" ]
	[ "$(jq -r .ipv4.gateway <<<"$a1")" != "$(jq -r .ipv4.gateway <<<"$b1")" ]
	[ "$(jq -r .ipv6.gateway <<<"$a1")" != "$(jq -r .ipv6.gateway <<<"$b1")" ]
	[ "$(jq -r .mac <<<"$a1")" != "$(jq -r .mac <<<"$a2")" ]
	[ "$(jq -r .rate_limit.tx.bandwidth.size <<<"$a1")" -gt 0 ]
	run_code 0 net list --tenant ta --json
	[ "$(jq length <<<"$output")" = 2 ]
	run_code 0 net list
	[[ "$output" == *b1* ]]
	run_code 0 net stats --id a1 --json
	jq -e '.rx_bytes >= 0 and .tx_packets >= 0' <<<"$output"
	# tap owned by the VMM's uid/gid
	net exec --id a1 -- cat /sys/class/net/tap0/owner >/dev/null 2>&1 || true
	run net exec --id a1 -- ip -d link show tap0
	[[ "$output" == *"user 4242 group 4343"* ]]
	# rx on the host link, tx on the VM side's veth
	in_hostns tc qdisc show dev "$(jq -r .host_link <<<"$a1")" | grep -q tbf
	net exec --id a1 -- tc qdisc show dev veth0 | grep -q tbf
	run_code 0 net delete --id a1
	run_code 0 net delete --id a2
	run_code 0 net delete --id b1
	net_none
}

@test "bad input: exit codes and nothing left behind" {
	run_code 3 net show --id nope
	run_code 3 net stats --id nope
	run_code 0 net delete --id nope
	run_code 2 net create --id 'bad/id' --tenant ta
	run_code 2 net create --id a1 --tenant 'no_underscores'
	run_code 2 net create --id a1
	run_code 2 net create --id a1 --tenant ta --mac 01:00:5e:00:00:01
	run_code 2 net create --id a1 --tenant ta --mac zz:00:00:00:00:01
	run_code 2 net create --id a1 --tenant ta --ipv4 fd00::1
	run_code 2 net create --id a1 --tenant ta --tap tap-name-too-long
	run_code 2 net create --id a1 --tenant ta --publish 99999:80
	run_code 2 net create --id a1 --tenant ta --rate rx=fast
	UNKEY_METALD_NETWORK_VM_SUBNET_IPV4=10.0.0.0/33 run_code 2 net create --id a1 --tenant ta
	[[ "$output" == *UNKEY_METALD_NETWORK_VM_SUBNET_IPV4* ]]
	UNKEY_METALD_NETWORK_VM_SUBNET_IPV6=fd6d::1/48 run_code 2 net create --id a1 --tenant ta
	# a pool that overlaps a route of the host (here the uplink's 198.18.0.0/30) is refused
	UNKEY_METALD_NETWORK_VM_SUBNET_IPV4=198.18.0.0/24 run_code 2 net create --id a1 --tenant ta
	[[ "$output" == *"overlaps this host's route 198.18.0.0/30"* ]]
	UNKEY_METALD_NETWORK_VM_SUBNET_IPV6=2001:db8:ffff::/48 run_code 2 net create --id a1 --tenant ta
	[[ "$output" == *overlaps* ]]
	net_none
	# duplicates: the same id, a taken address, a taken host port
	run_code 0 net create --id a1 --tenant ta --publish 8080:80 --json
	a4=$(jq -r .ipv4.address <<<"$output")
	run_code 4 net create --id a1 --tenant ta
	run_code 4 net create --id a2 --tenant ta --ipv4 "$a4"
	run_code 2 net create --id a2 --tenant ta --ipv4 192.0.2.77
	run_code 4 net create --id a2 --tenant ta --publish 8080:81
	run_code 0 net create --id a2 --tenant ta --ipv4 172.31.0.77 --json
	[ "$(jq -r .ipv4.address <<<"$output")" = 172.31.0.77 ]
	run_code 0 net delete --id a1
	run_code 0 net delete --id a2
	net_none
}

@test "exhausted pools fail with the pool named and leave nothing behind" {
	export UNKEY_METALD_NETWORK_VM_SUBNET_IPV4=10.77.0.0/30 UNKEY_METALD_NETWORK_TENANT_PREFIX_IPV4=30
	run_code 0 net create --id a1 --tenant ta
	run_code 1 net create --id a2 --tenant ta
	[[ "$output" == *"10.77.0.0/30"*exhausted* ]]
	run_code 1 net create --id b1 --tenant tb
	[[ "$output" == *"pool 10.77.0.0/30 is exhausted"* ]]
	run_code 0 net delete --id a1
	net_none
}

# pool_ready N: the pool has at least N slots ready
pool_ready() { [ "$(net pool --json | jq .ready)" -ge "$1" ]; }

# parallel_creates [UID]: six creates at once (c1..c6, two tenants; with UID, c<i> gets uid UID+i and
# gid 5000), each printing to $BATS_TEST_TMPDIR/c<i>.json; all made, no address twice.
parallel_creates() {
	local i
	for i in 1 2 3 4 5 6; do
		net create --id "c$i" --tenant "t$((i % 2))" ${1:+--uid "$(($1 + i))" --gid 5000} \
			--json > "$BATS_TEST_TMPDIR/c$i.json" &
	done
	wait
	[ "$(net list --json | jq length)" = 6 ]
	[ "$(cat "$BATS_TEST_TMPDIR"/c*.json | jq -r .ipv4.address | sort -u | wc -l)" = 6 ]
	[ "$(cat "$BATS_TEST_TMPDIR"/c*.json | jq -r .ipv6.address | sort -u | wc -l)" = 6 ]
}

# crash_create STEP ARGS...: create c1 killed at STEP (METALD_FAULT=net-create:STEP), then gc; a VM
# whose record said ready is whole and gc keeps it (deleted here); nothing may be left.
crash_create() {
	local step=$1
	shift
	METALD_FAULT=net-create:$step run net create --id c1 --tenant tc "$@"
	[ "$status" -eq 137 ] || { echo "step $step: status $status: $output" >&2; return 1; }
	run_code 0 net gc --json
	if [ "$step" = ready ]; then
		run_code 0 net show --id c1
		run_code 0 net delete --id c1
	fi
	net_none || { echo "after step $step" >&2; return 1; }
}

@test "crash safety: kill -9 at every step of create, then gc leaves nothing and create works" {
	local step
	for step in setup lease ports bridge netns tap veth tc nft ready; do
		crash_create "$step" --publish 9000:90 --rate rx=1M,tx=1M
		run_code 0 net create --id c1 --tenant tc --publish 9000:90
		run_code 0 net delete --id c1
		net_none
	done
}

@test "pool: fill, show, a create takes a slot (pin, tap owner, link, rules), drain; bad input" {
	run_code 0 net pool --json
	[ "$(jq -c '[.size, .ready, .slots]' <<<"$output")" = '[0,0,[]]' ]
	run_code 2 net pool fill
	[[ "$output" == *"how many?"*"UNKEY_METALD_NETWORK_POOL"* ]]
	run_code 2 net pool fill --count 5000
	run_code 2 net pool fill --count -1
	run_code 2 net pool refill
	[[ "$output" == *"unknown sub-command \`refill\`"* ]]
	run_code 2 net pool drain --count 1
	run_code 2 net gc --count 1
	UNKEY_METALD_NETWORK_POOL=lots run_code 2 net pool
	[[ "$output" == *UNKEY_METALD_NETWORK_POOL* ]]
	run_code 0 net pool fill --count 3 --json
	[ "$(jq -c '[.made, .ready]' <<<"$output")" = '[3,3]' ]
	run_code 0 net pool fill --count 2 --json
	[ "$(jq -c '[.made, .ready]' <<<"$output")" = '[0,3]' ]
	run_code 0 net pool --json
	local pool=$output slot link
	[ "$(jq '.slots | length' <<<"$pool")" = 3 ]
	for slot in $(jq -r '.slots[].slot' <<<"$pool"); do
		# a slot: pinned namespace with bridge, tap and veth inside; host link down, on no bridge
		nsenter --net="$NET_ROOT/netns/mdpool-$slot" ip -o link show tap0 | grep -q 'master br0'
		nsenter --net="$NET_ROOT/netns/mdpool-$slot" ip -o link show veth0 | grep -q 'master br0'
		in_hostns ip -o link show "mdp$slot" | grep -q 'state DOWN'
		! in_hostns ip -o link show "mdp$slot" | grep -q master
	done
	# text output: a line with the counts, then the slots
	run_code 0 net pool
	[[ "${lines[0]}" == "size 0, ready 3 (tap tap0)" ]]
	run_code 0 net create --id a1 --tenant ta --uid 4242 --gid 4343 --json
	local j=$output
	link=$(jq -r .host_link <<<"$j")
	slot=${link#mdp}
	[[ "$link" == mdp* ]]
	jq -e --arg s "$slot" '.slots | map(.slot) | index($s) != null' <<<"$pool"
	[ "$(jq -r .netns <<<"$j")" = "$NET_ROOT/netns/metald-a1" ]
	net exec --id a1 -- ip -d link show tap0 | grep -q 'user 4242 group 4343'
	# the slot's own pin is left to the next fill (an unmount waits for an RCU grace period)
	[ "$(stat -L -c %i "$NET_ROOT/netns/mdpool-$slot")" = "$(stat -L -c %i "$NET_ROOT/netns/metald-a1")" ]
	run_code 0 net pool fill --count 2 --json
	[ "$(jq -c '[.made, .ready]' <<<"$output")" = '[0,2]' ]
	[ ! -e "$NET_ROOT/netns/mdpool-$slot" ]
	[ -e "$NET_ROOT/netns/metald-a1" ]
	in_hostns ip -o link show "$link" | grep -q 'master mdt.*state UP'
	in_hostns nft list set bridge metald macs | grep -q "\"$link\" . $(jq -r .mac <<<"$j") comment \"vm:a1\""
	run_code 0 net pool --json
	[ "$(jq .ready <<<"$output")" = 2 ]
	# a tap name the slots do not have: a namespace of its own
	run_code 0 net create --id a2 --tenant ta --tap vmtap --json
	[[ "$(jq -r .host_link <<<"$output")" == mdv* ]]
	# a VM deleted before any fill removes the slot's pin itself
	run_code 0 net create --id a3 --tenant ta --json
	slot=$(jq -r .host_link <<<"$output"); slot=${slot#mdp}
	[ -e "$NET_ROOT/netns/mdpool-$slot" ]
	run_code 0 net delete --id a3
	[ ! -e "$NET_ROOT/netns/mdpool-$slot" ]
	# the slots are made for one tap name: under another, none is ready and gc removes them
	UNKEY_METALD_NETWORK_TAP=tap9 run_code 0 net pool --json
	[ "$(jq -c '[.ready, (.slots | length)]' <<<"$output")" = '[0,1]' ]
	run_code 0 net show --id a1
	run_code 0 net pool drain --json
	[ "$(jq .removed <<<"$output")" = 1 ]
	# drain leaves the VMs that took slots alone
	in_hostns ip -o link show "$link" | grep -q 'state UP'
	run_code 0 net pool fill --count 1
	UNKEY_METALD_NETWORK_TAP=tap9 run_code 0 net gc --json
	jq -e 'map(select(.removed == "pool slot")) | length == 1' <<<"$output"
	jq -e 'map(select(.name == "a1")) | length == 0' <<<"$output"
	run_code 0 net delete --id a1
	run_code 0 net delete --id a2
	net_none
}

@test "pool: creates top it up in the background; concurrent creates share it; teardown empties it" {
	local i
	UNKEY_METALD_NETWORK_POOL=3 run_code 0 net setup
	run_code 0 net pool --json
	[ "$(jq .ready <<<"$output")" = 3 ]
	UNKEY_METALD_NETWORK_POOL=3 parallel_creates 5000
	[ "$(cat "$BATS_TEST_TMPDIR"/c*.json | jq -r .host_link | sort -u | wc -l)" = 6 ]
	for i in 1 2 3 4 5 6; do
		in_hostns ip -o link show "$(jq -r .host_link "$BATS_TEST_TMPDIR/c$i.json")" | grep -q 'master mdt.*state UP'
		net exec --id "c$i" -- ip -d link show tap0 | grep -q "user $((5000 + i)) group 5000"
	done
	# at least the first three took slots made by setup
	[ "$(cat "$BATS_TEST_TMPDIR"/c*.json | jq -r .host_link | grep -c '^mdp')" -ge 3 ]
	# the refills alone bring the pool back to 3 (one that gave way is made up by the filler)
	wait_for 20 pool_ready 3
	run_code 0 net pool --json
	[ "$(jq -r .refill_error <<<"$output")" = null ]
	# `pool fill` waits for a refill in progress, then has nothing to do
	UNKEY_METALD_NETWORK_POOL=3 run_code 0 net pool fill --json
	[ "$(jq -c '[.made, .ready]' <<<"$output")" = '[0,3]' ]
	# a create's refill racing a teardown fills nothing after it
	UNKEY_METALD_NETWORK_POOL=3 run_code 0 net create --id c7 --tenant t0
	run_code 0 net teardown --force
	sleep 1
	run_code 0 net pool --json
	[ "$(jq .ready <<<"$output")" = 0 ]
	net_none
}

@test "pool: a slot missing its tap, pin or link is cleared, and the create takes another or builds" {
	local s1 s2 s3 i
	run_code 0 net pool fill --count 3 --json
	run_code 0 net pool --json
	s1=$(jq -r '.slots[0].slot' <<<"$output"); s2=$(jq -r '.slots[1].slot' <<<"$output"); s3=$(jq -r '.slots[2].slot' <<<"$output")
	nsenter --net="$NET_ROOT/netns/mdpool-$s1" ip link del tap0
	in_hostns ip link del "mdp$s2"
	umount "$NET_ROOT/netns/mdpool-$s3"
	for i in 1 2 3; do
		run_code 0 net create --id "b$i" --tenant tb --uid 77 --gid 77
		net exec --id "b$i" -- ip -d link show tap0 | grep -q 'persist on user 77 group 77'
		# the file of a slot it gave up is not left (its claim moved it to vms/.<id>.slot)
		[ -z "$(ls -A "$NET_ROOT/data/net/vms" | grep slot)" ]
	done
	run_code 0 net pool --json
	[ "$(jq .ready <<<"$output")" = 0 ]
	for i in 1 2 3; do run_code 0 net delete --id "b$i"; done
	run_code 0 net gc --json
	# what gc removed: only the broken slots' remains, nothing a create should have removed itself
	! jq -e '.[] | select(.removed == "unfinished record file")' <<<"$output"
	net_none
}

@test "pool: gc does not wait for a long fill, which stops after its current slot; a stale stop file is ignored" {
	net pool fill --count 400 --json > "$BATS_TEST_TMPDIR/fill.json" &
	local fill=$!
	wait_for 20 pool_ready 5
	run_code 0 net gc --json
	wait "$fill"
	[ "$(jq .made "$BATS_TEST_TMPDIR/fill.json")" -lt 400 ]
	[ ! -e "$NET_ROOT/data/net/pool/stop" ]
	# a stop file left by a gc that died long ago does not stop fills
	touch -d '-2 min' "$NET_ROOT/data/net/pool/stop"
	run_code 0 net pool drain
	touch -d '-2 min' "$NET_ROOT/data/net/pool/stop"
	run_code 0 net pool fill --count 2 --json
	[ "$(jq .made <<<"$output")" = 2 ]
	rm -f "$NET_ROOT/data/net/pool/stop"
	run_code 0 net pool drain
	net_none
}

@test "crash safety: kill -9 at every step of a claim and of a fill, then gc leaves nothing" {
	local step
	# a claim moves the slot's file to where the record will be written into it; killed before
	# that, the file stays (the record's own temporary file from an update too) and gc removes it
	run_code 0 net pool fill --count 1
	METALD_FAULT=net-create:sync run net create --id c1 --tenant tc
	[ "$status" -eq 137 ]
	[ -f "$NET_ROOT/data/net/vms/.c1.slot" ]
	[ -z "$(ls "$NET_ROOT/data/net/pool" | grep -v '^lock$')" ]
	touch "$NET_ROOT/data/net/vms/c9.json.tmp.AbC123"
	run_code 0 net gc --json
	jq -e '[.[] | select(.removed == "unfinished record file") | .name] | sort == [".c1.slot", "c9.json.tmp.AbC123"]' <<<"$output"
	net_none
	for step in claim tap pin tc nft veth ready; do
		run_code 0 net pool fill --count 1
		crash_create "$step" --uid 7 --gid 7 --publish 9000:90 --rate rx=1M
	done
	for step in netns tap veth ready; do
		METALD_FAULT=net-pool:$step run net pool fill --count 2
		[ "$status" -eq 137 ] || { echo "fill step $step: status $status: $output" >&2; return 1; }
		run_code 0 net gc --json
		run_code 0 net pool --json
		# the slot finished before the kill stays; a half-made one is gone
		[ "$(jq .ready <<<"$output")" = "$([ "$step" = ready ] && echo 1 || echo 0)" ]
		run_code 0 net pool drain
		net_none || { echo "after fill step $step" >&2; return 1; }
	done
	run_code 0 net pool fill --count 1
	run_code 0 net create --id c1 --tenant tc --uid 7 --gid 7
	run_code 0 net delete --id c1
	run_code 0 net pool drain
	net_none
}

@test "gc removes orphans: a pin, a link and set elements no record claims; records whose objects are gone" {
	run_code 0 net create --id a1 --tenant ta --json
	link=$(jq -r .host_link <<<"$output")
	run_code 0 net create --id a2 --tenant ta
	# a1's objects vanish behind our back; a stray element and link appear
	in_hostns ip link del "$link"
	in_hostns ip link add mdv000000000000 type bridge
	in_hostns nft add element bridge metald ports '{ "mdvffffffffffff" comment "vm:ghost" }'
	run_code 0 net gc --json
	jq -e 'map(.name) | index("a1") != null' <<<"$output"
	jq -e 'map(.name) | index("mdv000000000000") != null' <<<"$output"
	run_code 3 net show --id a1
	run_code 0 net show --id a2
	! in_hostns nft list set bridge metald ports | grep -q ghost
	in_hostns nft list set bridge metald ports | grep -q 'vm:a2'
	# someone deletes our tables: create says so and undoes itself (a bare setup would bring back
	# the rules without a2's elements, failing open); gc puts the rules and a2's elements back
	in_hostns nft delete table inet metald
	in_hostns nft delete table bridge metald
	run_code 1 net create --id a3 --tenant ta
	[[ "$output" == *"the metald tables are missing"*"run \`metald-net gc\`"* ]]
	run_code 3 net show --id a3
	[ ! -e "$NET_ROOT/netns/metald-a3" ]
	run_code 0 net gc --json
	jq -e 'map(select(.name == "a3")) | length == 0' <<<"$output" # no lease, nothing else of a3's left
	in_hostns nft list set bridge metald ports | grep -q 'vm:a2'
	in_hostns nft list set inet metald bridges | grep -q 'tenant:ta'
	in_hostns nft list chain inet metald forward | grep -q 'oifname @bridges drop'
	run_code 0 net create --id a3 --tenant ta
	in_hostns nft list set bridge metald addr4 | grep -q 'vm:a3'
	run_code 0 net delete --id a3
	run_code 0 net delete --id a2
	net_none
}

@test "concurrent creates and deletes serialise on the lock and all succeed" {
	local i
	parallel_creates
	for i in 1 2 3 4 5 6; do
		net delete --id "c$i" &
	done
	wait
	[ "$(net list --json | jq length)" = 0 ]
	net_none
}

@test "100 VMs created and deleted: nothing leaks" {
	local i
	for i in $(seq 1 100); do
		net create --id "v$i" --tenant "t$((i % 3))" >/dev/null
	done
	[ "$(net list --json | jq length)" = 100 ]
	[ "$(in_hostns ip -o link show | grep -c ' mdv')" = 100 ]
	for i in $(seq 1 100); do
		net delete --id "v$i"
	done
	net_none
	[ "$(in_hostns nft list ruleset | grep -c 'elements')" = 0 ]
}

@test "setup: IPv6 routed instead of NATed, host ports allowed to guests, and it is idempotent" {
	UNKEY_METALD_NETWORK_IPV6_NAT=false UNKEY_METALD_NETWORK_HOST_ALLOW=53/udp,22/tcp run_code 0 net setup
	UNKEY_METALD_NETWORK_IPV6_NAT=false UNKEY_METALD_NETWORK_HOST_ALLOW=53/udp,22/tcp run_code 0 net setup
	in_hostns nft list chain inet metald postrouting | grep -q 'meta nfproto ipv4 iifname @bridges'
	in_hostns nft list set inet metald host_allow | grep -q 'udp . 53'
	[ "$(in_hostns nft list chain inet metald forward | grep -cE '^\s*oifname @bridges drop$')" = 1 ]
	[ "$(in_hostns sysctl -n net.ipv6.conf.all.forwarding)" = 1 ]
	[ "$(in_hostns sysctl -n net.ipv4.conf.$(md_prefix)u0.forwarding)" = 1 ]
	UNKEY_METALD_NETWORK_HOST_ALLOW=22 run_code 2 net setup
	UNKEY_METALD_NETWORK_IPV6_NAT=maybe run_code 2 net setup
	run_code 0 net setup
	in_hostns nft list chain inet metald postrouting | grep -q 'masquerade'
	! in_hostns nft list chain inet metald postrouting | grep -q 'nfproto'
	run_code 0 net teardown
	! in_hostns nft list table inet metald 2>/dev/null
	# teardown put back the forwarding switches setup found
	[ "$(in_hostns sysctl -n net.ipv6.conf.all.forwarding)" = 0 ]
	[ "$(in_hostns sysctl -n net.ipv4.conf.$(md_prefix)u0.forwarding)" = 0 ]
}
