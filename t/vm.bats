#!/usr/bin/env bats
# metald-vm end to end: real jails, real networks, real guests under QEMU (TCG here), and the
# Firecracker path against the test double. Everything runs inside a "host" netns the test makes.

load helpers/common

setup_file() {
	require_root
	require_cmd qemu-system-x86_64
	# the test guest (cached in build/guest)
	sh "$METALD_TOP/share/metald/guest/build-guest" --out "$METALD_TOP/build/guest" > "$BATS_FILE_TMPDIR/guest.json"
}

setup() {
	require_root
	leak_snapshot
	netns_up
	R="$BATS_TEST_TMPDIR/r"
	mkdir -p "$R"
	G="$METALD_TOP/build/guest"
	export UNKEY_METALD_CGROUP_PARENT="$(md_prefix)"
	export UNKEY_METALD_GUEST_DIR="$BATS_TEST_TMPDIR/guest"
	mkdir -p "$UNKEY_METALD_GUEST_DIR"
	ln -s "$G/vmlinuz" "$UNKEY_METALD_GUEST_DIR/vmlinuz"
	ln -s "$G/initrd.cpio.gz" "$UNKEY_METALD_GUEST_DIR/initrd.cpio.gz"
	jq -r .cmdline "$BATS_FILE_TMPDIR/guest.json" > "$UNKEY_METALD_GUEST_DIR/cmdline"
	export UNKEY_METALD_BACKEND=qemu
}

teardown() {
	if [ -n "${MPID:-}" ]; then
		kill "$MPID" 2>/dev/null
		wait "$MPID" 2>/dev/null || true
	fi
	# whatever a failed test left: stop and delete through the tool, then the namespaces
	if [ -d "$R/data/vms" ]; then
		for d in "$R"/data/vms/*/; do
			[ -d "$d" ] || continue
			vm "delete" "$(basename "$d")" --force >/dev/null 2>&1 || true
		done
		vm reconcile >/dev/null 2>&1 || true
	fi
	netns_down
	for c in /sys/fs/cgroup/*/"$(md_prefix)"; do
		[ -d "$c" ] && rmdir "$c" 2>/dev/null
	done
	leak_check
}

# nsenter, not `ip netns exec`: the latter remounts /sys (hiding the cgroup hierarchies) and
# runs in a throw-away mount namespace (losing the netns pins metald-net makes)
in_hostns() { nsenter --net="/run/netns/$MD_HOSTNS" "$@"; }
vm() { in_hostns metald-vm --root "$R" "$@"; }

serial_has() { grep -q "$2" "$R/data/vms/$1/serial.log"; }

# the guest's readiness line within 60 s
wait_ready() { wait_for 60 serial_has "$1" METALD-GUEST-READY; }

state_of() { vm info "$1" --json | jq -r .state; }

@test "lifecycle: create, boot, pause, resume, shutdown, boot again, delete" {
	run_code 0 vm create --id a1 --tenant acme --json
	[ "$(echo "$output" | jq -r .state)" = CREATED ]
	run_code 0 vm boot a1
	wait_ready a1
	[ "$(state_of a1)" = RUNNING ]
	run_code 0 vm pause a1
	[ "$(state_of a1)" = PAUSED ]
	run_code 4 vm pause a1
	[[ "$output" == *"it is PAUSED"* ]]
	run_code 0 vm resume a1
	[ "$(state_of a1)" = RUNNING ]
	run_code 0 vm shutdown a1 --timeout 30s
	[ "$(state_of a1)" = SHUTDOWN ]
	run_code 4 vm resume a1
	[[ "$output" == *"it is SHUTDOWN"* ]]
	: > "$R/data/vms/a1/serial.log"
	run_code 0 vm boot a1
	wait_ready a1
	run_code 4 vm delete a1
	run_code 0 vm delete a1 --force
	[ ! -e "$R/data/vms/a1" ]
	run_code 3 vm info a1
}

@test "info --json carries config, state, pid, network and live usage; text and json agree" {
	run_code 0 vm create a2 --tenant acme --customer cust1 --vcpus 1 --memory 160M --boot --json
	wait_ready a2
	run_code 0 vm info --json a2
	local j=$output
	[ "$(echo "$j" | jq -r .state)" = RUNNING ]
	[ "$(echo "$j" | jq -r .customer_id)" = cust1 ]
	[ "$(echo "$j" | jq -r .config.memory.size_bytes)" = $((160 * 1024 * 1024)) ]
	local pid
	pid=$(echo "$j" | jq -r .pid)
	[ -d "/proc/$pid" ]
	[ "$(cat /proc/$pid/comm)" = qemu-system-x86 ]
	# the VMM runs jailed as the VM's uid, in the VM's netns
	[ "$(awk '/^Uid:/ {print $2}' /proc/$pid/status)" = "$(echo "$j" | jq -r .uid)" ]
	[ "$(stat -Lc %i /proc/$pid/ns/net)" = "$(stat -Lc %i "$(echo "$j" | jq -r .network.netns)")" ]
	echo "$j" | jq -e '.network.ipv4.address and .network.ipv6.address and .network.mac and .network.tap'
	echo "$j" | jq -e '.usage.cpu_percent >= 0 and .usage.memory_bytes > 0 and .usage.uptime_seconds >= 0'
	# the guest reports the addresses metald gave it
	local ip4
	ip4=$(echo "$j" | jq -r .network.ipv4.address)
	grep "METALD-GUEST-READY" "$R/data/vms/a2/serial.log" | grep -q "ipv4=$ip4"
	run_code 0 vm info a2
	[[ "$output" == *"$ip4"* ]]
	run_code 0 vm list --json
	[ "$(echo "$output" | jq length)" = 1 ]
	run_code 0 vm list --state RUNNING --customer cust1
	[[ "$output" == *a2* ]]
	run_code 0 vm list --state PAUSED
	[[ "$output" != *a2* ]]
	run_code 2 vm list --state BOGUS
	run_code 0 vm delete a2 --force
}

@test "two VMs of one tenant reach each other; the host netns reaches them" {
	run_code 0 vm create b1 --tenant t1 --boot
	run_code 0 vm create b2 --tenant t1 --cmdline "$(cat "$UNKEY_METALD_GUEST_DIR/cmdline") metald.run=\"ping -c 3 -W 2 PEER\"" 
	local ip1
	ip1=$(vm info b1 --json | jq -r .network.ipv4.address)
	# boot b2 with the peer's address in its command
	vm delete b2
	run_code 0 vm create b2 --tenant t1 --cmdline "$(cat "$UNKEY_METALD_GUEST_DIR/cmdline") metald.run=\"ping -c 3 -W 2 $ip1\"" --boot
	wait_ready b1
	wait_ready b2
	wait_for 30 serial_has b2 "3 packets transmitted, [123] packets received"
	in_host ping -c 2 -W 3 "$ip1"
	local ip6
	ip6=$(vm info b1 --json | jq -r .network.ipv6.address)
	in_host ping -6 -c 2 -W 3 "$ip6"
	run_code 0 vm delete b1 --force
	run_code 0 vm delete b2 --force
}

@test "with UNKEY_METALD_NETWORK_POOL, create takes a namespace made ahead; the guest is reachable; the pool refills" {
	export UNKEY_METALD_NETWORK_POOL=2
	run_code 0 in_hostns metald-net --root "$R" pool fill --json
	[ "$(jq .ready <<<"$output")" = 2 ]
	run_code 0 vm create p1 --tenant t1 --boot
	local link ip1
	link=$(vm info p1 --json | jq -r .network.host_link)
	[[ "$link" == mdp* ]]
	wait_ready p1
	ip1=$(vm info p1 --json | jq -r .network.ipv4.address)
	in_host ping -c 2 -W 3 "$ip1"
	# the refill metald-net started after the create; `pool fill` waits for it
	run_code 0 in_hostns metald-net --root "$R" pool fill --json
	run_code 0 in_hostns metald-net --root "$R" pool --json
	[ "$(jq .ready <<<"$output")" = 2 ]
	run_code 0 vm delete p1 --force
	! in_hostns ip -o link show "$link" 2>/dev/null | grep -q master
	run_code 0 in_hostns metald-net --root "$R" pool drain
	unset UNKEY_METALD_NETWORK_POOL
}

@test "a VMM killed with -9 shows SHUTDOWN with the reason; a guest poweroff too" {
	run_code 0 vm create c1 --boot
	wait_ready c1
	local pid
	pid=$(vm info c1 --json | jq -r .pid)
	kill -9 "$pid"
	wait_for 10 sh -c "! kill -0 $pid 2>/dev/null"
	run_code 0 vm info c1 --json
	[ "$(echo "$output" | jq -r .state)" = SHUTDOWN ]
	[[ "$(echo "$output" | jq -r .reason)" == *"signal 9"* ]]
	[ "$(echo "$output" | jq -r .exit.status)" = 137 ]
	[ ! -e "$R/run/meter/c1.json" ]
	run_code 0 vm delete c1

	run_code 0 vm create c2 --cmdline "$(cat "$UNKEY_METALD_GUEST_DIR/cmdline") metald.run=true metald.poweroff=1" --boot
	wait_for 60 sh -c "[ \"\$(nsenter --net=/run/netns/$MD_HOSTNS $MD_BIN/metald-vm --root $R info c2 --json | jq -r .state)\" = SHUTDOWN ]"
	run_code 0 vm info c2 --json
	[[ "$(echo "$output" | jq -r .reason)" == *"powered off"* ]]
	run_code 0 vm delete c2
}

@test "logs prints the console and -f follows it" {
	run_code 0 vm create l1 --boot
	wait_ready l1
	run_code 0 vm logs l1 --lines 5
	[ "${#lines[@]}" -le 5 ]
	timeout 3 nsenter --net="/run/netns/$MD_HOSTNS" metald-vm --root "$R" logs -f l1 > "$BATS_TEST_TMPDIR/follow" || true
	grep -q METALD-GUEST-READY "$BATS_TEST_TMPDIR/follow" || grep -q . "$BATS_TEST_TMPDIR/follow"
	run_code 3 vm logs nope
	run_code 0 vm delete l1 --force
}

@test "the serial log rotates at UNKEY_METALD_VM_LOG_MAX: the old file is kept, logs reads across it, nothing is lost" {
	local d="$R/data/vms/r1" max=32768 n
	UNKEY_METALD_VM_LOG_MAX=12Q run vm create r0 --boot
	[ "$status" -eq 2 ]
	[[ "$output" == *UNKEY_METALD_VM_LOG_MAX* ]]
	UNKEY_METALD_VM_LOG_MAX=1K run vm create r0 --boot
	[ "$status" -eq 2 ]
	[[ "$output" == *"must be 4K to 1T"* ]]
	[ ! -e "$R/data/vms/r0" ]

	export UNKEY_METALD_VM_LOG_MAX=32K
	# 2000 numbered lines (~36 KB) after the boot messages: one rotation, and both files together
	# still hold everything
	run_code 0 vm create r1 --cmdline "$(cat "$UNKEY_METALD_GUEST_DIR/cmdline") metald.run=\"seq 0 1999 | sed s/^/METALD-LINE-/\" metald.poweroff=1"
	# follow from before the first byte, across the rotation (fd 3 closed: bats waits for it)
	"$MD_BIN/metald-vm" --root "$R" logs -f r1 > "$BATS_TEST_TMPDIR/follow" 2>&1 3>&- &
	local fpid=$!
	run_code 0 vm boot r1
	wait_for 180 sh -c "[ \"\$(nsenter --net=/run/netns/$MD_HOSTNS $MD_BIN/metald-vm --root $R info r1 --json | jq -r .state)\" = SHUTDOWN ]"
	grep -aq "METALD-GUEST-RUN-EXIT 0" "$d/serial.log.1" "$d/serial.log"
	cat "$d/serial.log.1" "$d/serial.log" > "$BATS_TEST_TMPDIR/all"
	# rotated once: the old file is full to the byte, the current one no larger; none was lost
	[ "$(stat -c %s "$d/serial.log.1")" -eq "$max" ]
	[ "$(stat -c %s "$d/serial.log")" -le "$max" ]
	[ "$(stat -c %s "$BATS_TEST_TMPDIR/all")" -gt "$max" ]
	[ ! -e "$d/serial.log.2" ]
	grep -ao 'METALD-LINE-[0-9][0-9]*' "$BATS_TEST_TMPDIR/all" | sed 's/METALD-LINE-//' > "$BATS_TEST_TMPDIR/nums"
	seq 0 1999 | cmp - "$BATS_TEST_TMPDIR/nums"
	grep -aq METALD-GUEST-READY "$BATS_TEST_TMPDIR/all"
	# logs: the last lines reach back into the rotated file; all of them are both files in order
	n=$(($(wc -l < "$d/serial.log") + 5))
	vm logs r1 --lines "$n" > "$BATS_TEST_TMPDIR/tail"
	tail -n "$n" "$BATS_TEST_TMPDIR/all" | cmp - "$BATS_TEST_TMPDIR/tail"
	vm logs r1 --lines 100000 | cmp - "$BATS_TEST_TMPDIR/all"
	# logs -f saw every byte, across the rotation
	wait_for 10 sh -c "[ \$(stat -c %s $BATS_TEST_TMPDIR/follow) -ge \$(stat -c %s $BATS_TEST_TMPDIR/all) ]"
	kill "$fpid"
	wait "$fpid" || true
	cmp "$BATS_TEST_TMPDIR/all" "$BATS_TEST_TMPDIR/follow"
	run_code 0 vm delete r1
}

@test "bad configs and bad ids exit 2 and make nothing" {
	echo '{"cpu":{"vcpu_count":0},"memory":{"size_bytes":1},"boot":{"kernel_path":"/x"}}' > "$BATS_TEST_TMPDIR/c.json"
	run_code 2 vm create --config "$BATS_TEST_TMPDIR/c.json" --id x1
	[[ "$output" == *vcpu_count* ]]
	echo '{"cpu":{"vcpu_count":1},"memory":{"size_bytes":"abc"}}' > "$BATS_TEST_TMPDIR/c.json"
	run_code 2 vm create --config "$BATS_TEST_TMPDIR/c.json" --id x1
	[[ "$output" == *size_bytes* ]]
	echo '{"cpu":' > "$BATS_TEST_TMPDIR/c.json"
	run_code 2 vm create --config "$BATS_TEST_TMPDIR/c.json" --id x1
	run_code 3 vm create --config "$BATS_TEST_TMPDIR/none.json" --id x1
	run_code 3 vm create --id x1 --kernel /nonexistent/kernel --initrd /nonexistent/initrd
	for bad in .. a/b "a b" vm_1 "$(printf 'a%.0s' $(seq 65))" "h$(printf '\xc3\xa9')"; do
		run_code 2 vm create --id "$bad"
		[[ "$output" == *"1-64 characters"* ]]
		run_code 2 vm info "$bad"
	done
	run_code 2 vm create --id x1 --vmm xen
	run_code 2 vm create --id x1 --memory 12Q
	run_code 2 vm bogus
	run_code 2 vm info
	run_code 2 vm shutdown x1 --timeout soon
	[ ! -d "$R/data/vms/x1" ]
	[ -z "$(ls "$R/netns" 2>/dev/null)" ]
}

@test "parallel: one id created twice at once, one wins; 10 distinct ids at once all succeed" {
	local i pids=()
	for i in 1 2; do
		# (bats runs with errexit: the status is caught, not allowed to end the subshell)
		(in_hostns metald-vm --root "$R" create --id same > /dev/null 2>&1 && echo 0 > "$BATS_TEST_TMPDIR/rc$i" ||
			echo $? > "$BATS_TEST_TMPDIR/rc$i") &
		pids+=($!)
	done
	wait "${pids[@]}" || true
	[ "$(sort "$BATS_TEST_TMPDIR"/rc1 "$BATS_TEST_TMPDIR"/rc2 | tr '\n' ' ')" = "0 4 " ]
	run_code 0 vm delete same
	pids=()
	for i in $(seq 1 10); do
		(in_hostns metald-vm --root "$R" create --id p$i --tenant t$((i % 2)) > /dev/null 2>&1 &&
			echo 0 > "$BATS_TEST_TMPDIR/p$i" || echo $? > "$BATS_TEST_TMPDIR/p$i") &
		pids+=($!)
	done
	wait "${pids[@]}" || true
	for i in $(seq 1 10); do [ "$(cat "$BATS_TEST_TMPDIR/p$i")" = 0 ]; done
	run_code 0 vm list --json
	[ "$(echo "$output" | jq length)" = 10 ]
	# distinct uids and addresses
	[ "$(echo "$output" | jq -r '.[].uid' | sort -u | wc -l)" = 10 ]
	[ "$(echo "$output" | jq -r '.[].network.ipv4.address' | sort -u | wc -l)" = 10 ]
	for i in $(seq 1 10); do vm delete p$i >/dev/null; done
	[ -z "$(ls "$R/netns" 2>/dev/null)" ]
}

@test "kill -9 of metald-vm at each step, then reconcile: the VM is fully there or fully gone" {
	local step
	for step in create:record create:disks create:network; do
		METALD_FAULT=vm-$step run vm create --id k1
		[ "$status" -eq 137 ]
		run_code 0 vm reconcile
		[ ! -d "$R/data/vms/k1" ]
		[ -z "$(ls "$R/netns" 2>/dev/null)" ]
	done
	for step in boot:record boot:vmm boot:started; do
		run_code 0 vm create --id k2
		METALD_FAULT=vm-$step run vm boot k2
		[ "$status" -eq 137 ]
		run_code 0 vm reconcile
		local s
		s=$(state_of k2)
		if [ "$step" = boot:started ]; then
			# the VMM was started and survives the CLI: reconcile leaves it or marks it
			[ "$s" = SHUTDOWN ] || [ "$s" = CREATED ] || [ "$s" = RUNNING ] || false
		else
			[ "$s" != RUNNING ]
		fi
		run_code 0 vm delete k2 --force
		[ -z "$(ls "$R/netns" 2>/dev/null)" ]
	done
	for step in delete:record delete:jail delete:network; do
		run_code 0 vm create --id k3
		METALD_FAULT=vm-$step run vm delete k3
		[ "$status" -eq 137 ]
		run_code 0 vm reconcile
		[ ! -d "$R/data/vms/k3" ]
		[ -z "$(ls "$R/netns" 2>/dev/null)" ]
	done
	run_code 0 vm reconcile
}

@test "a record an unfinished command left: verbs exit 4 naming the phase; info, list, logs show it; delete and reconcile clear it" {
	local step phase verb want
	local undo="(undo it: \`metald-vm reconcile\`, or remove it: \`metald-vm delete u1\`)"
	for step in create:network delete:jail boot:record; do
		case $step in
		create:*)
			phase=creating
			want="an interrupted create left it in phase \`creating\` $undo" ;;
		delete:*)
			phase=deleting
			want="an unfinished delete left it in phase \`deleting\` (finish it: \`metald-vm delete u1\` or \`metald-vm reconcile\`)"
			run_code 0 vm create --id u1 ;;
		boot:*)
			phase=booting
			want="an interrupted boot left it in phase \`booting\` $undo"
			run_code 0 vm create --id u1 ;;
		esac
		METALD_FAULT=vm-$step run vm "${step%%:*}" u1
		[ "$status" -eq 137 ]
		[ "$(jq -r .phase "$R/data/vms/u1/vm.json")" = "$phase" ]
		for verb in boot pause resume reboot shutdown "boot --paused" "shutdown --force"; do
			run_code 4 vm $verb u1
			[ "${#lines[@]}" -eq 1 ]
			[[ "$output" == "metald-vm: cannot "*" vm \`u1\`: "*" left it in phase \`$phase\` ("* ]]
			[[ "$output" == *"\`metald-vm reconcile\`"* ]]
			[[ "$output" == *"\`metald-vm delete u1\`"* ]]
		done
		[ "$output" = "metald-vm: cannot shut down vm \`u1\`: $want" ]
		# nothing was changed by the refusals
		[ "$(jq -r .phase "$R/data/vms/u1/vm.json")" = "$phase" ]
		# info, list and logs show it, with the phase
		run_code 0 vm info u1 --json
		[ "$(echo "$output" | jq -r .phase)" = "$phase" ]
		run_code 0 vm info u1
		[[ "$output" == *"$phase"* ]]
		run_code 0 vm list --json
		[ "$(echo "$output" | jq -r '.[] | select(.id == "u1") | .phase')" = "$phase" ]
		run_code 0 vm list
		[[ "${lines[0]}" == *PHASE* ]]
		[[ "${lines[1]}" == *"u1 "*"$phase"* ]]
		run_code 0 vm logs u1
		# the ways out: delete whatever the phase; reconcile
		if [ "$phase" = booting ]; then
			run_code 0 vm reconcile
			[ "$(jq -r .phase "$R/data/vms/u1/vm.json")" = null ]
			run_code 4 vm pause u1
			[[ "$output" == *"it is CREATED"* ]]
		fi
		run_code 0 vm delete u1
		[ ! -e "$R/data/vms/u1" ]
		[ -z "$(ls "$R/netns" 2>/dev/null)" ]
		run_code 3 vm boot u1
	done
	# a normal record shows no phase
	run_code 0 vm create --id u2
	run_code 0 vm info u2 --json
	[ "$(echo "$output" | jq -r .phase)" = null ]
	run_code 0 vm delete u2
}

@test "delete against verbs of the same VM at once: every delete succeeds and leaves nothing; the others exit 3 or 4 and make nothing" {
	local i r pids codes
	for i in 1 2 3 4 5; do
		run_code 0 vm create --id "d$i"
		# two racers: pause (a CREATED VM: exit 4; deleting: 4; gone: 3) until the record is gone
		pids=
		for r in a b; do
			(
				n=0
				while [ $n -lt 400 ]; do
					c=0
					vm pause "d$i" >/dev/null 2>&1 || c=$?
					echo $c >> "$BATS_TEST_TMPDIR/codes.d$i"
					[ -e "$R/data/vms/d$i" ] || break
					n=$((n + 1))
				done
				c=0
				vm pause "d$i" >/dev/null 2>&1 || c=$?
				echo $c >> "$BATS_TEST_TMPDIR/codes.d$i"
			) &
			pids="$pids $!"
		done
		sleep 0.2
		run_code 0 vm delete "d$i"
		wait $pids
		[ ! -e "$R/data/vms/d$i" ]
		codes=$(sort -u "$BATS_TEST_TMPDIR/codes.d$i" | tr '\n' ' ')
		echo "round $i: exit codes $codes"
		[[ "$codes" =~ ^(3\ )?(4\ )?$ ]]
		[ "$(tail -1 "$BATS_TEST_TMPDIR/codes.d$i")" = 3 ]
	done
	[ -z "$(ls "$R/netns" 2>/dev/null)" ]
	# what a delete killed at its very last step leaves: an empty directory without its lock file;
	# verbs find no VM there and make nothing, a create of the id takes its place, reconcile removes it
	mkdir "$R/data/vms/e1" "$R/data/vms/e2"
	run_code 3 vm pause e1
	[ ! -e "$R/data/vms/e1/lock" ]
	run_code 0 vm create --id e2
	run_code 0 vm reconcile --json
	[ ! -e "$R/data/vms/e1" ]
	[[ "$output" == *"removed the empty directory of an interrupted delete"* ]]
	run_code 0 vm delete e2
}

@test "the Firecracker path end to end against the API test double" {
	require_cmd python3
	local fc="$BATS_TEST_TMPDIR/bin/firecracker"
	mkdir -p "$(dirname "$fc")"
	ln -s "$METALD_TOP/t/helpers/fc-standin" "$fc"
	export UNKEY_METALD_FIRECRACKER_BIN="$fc"
	# the meter runs alongside (in the host netns, where the VM's link is)
	nsenter --net="/run/netns/$MD_HOSTNS" metald-meter --root "$R" run --interval 50ms --period 200ms --sync 0 \
		--billing off >"$R/meter.out" 2>"$R/meter.err" 3>&- &
	MPID=$!
	run_code 0 vm create f1 --vmm firecracker --boot --json
	[ "$(echo "$output" | jq -r .vmm)" = firecracker ]
	[ "$(state_of f1)" = RUNNING ]
	# Firecracker's metrics go to a regular file in the jail's root, the VM's own, which the meter
	# target names; the VMM wrote its boot line there
	local uid chroot m
	uid=$(jq -r .uid "$R/data/vms/f1/vm.json")
	chroot=$(jq -r .chroot "$R/data/vms/f1/vm.json")
	m=$(jq -r .fc_metrics "$R/run/meter/f1.json")
	[ "$m" = "$chroot/metrics.json" ]
	[ -f "$m" ] && [ ! -L "$m" ]
	[ "$(stat -c '%u %g %a' "$m")" = "$uid $(jq -r .gid "$R/data/vms/f1/vm.json") 600" ]
	[ "$(wc -l < "$m")" -eq 1 ]
	jq -e '.utc_timestamp_ms > 0' "$m"
	# the VMM was told its in-jail path
	local sock="$chroot/run/firecracker.socket"
	run_code 0 metald-boot status --vmm firecracker --socket "$sock" --full --json
	echo "$output" | jq -e '.config.metrics.metrics_path == "/metrics.json"'
	# a flush adds a line; the meter reads the lines as they come
	run_code 0 metald-boot flush-metrics --vmm firecracker --socket "$sock"
	[ "$(wc -l < "$m")" -eq 2 ]
	run_code 0 in_hostns metald-meter --root "$R" sample --id f1
	echo "$output" | jq -e '.vmm.lines == 2'
	run_code 0 vm pause f1
	[ "$(state_of f1)" = PAUSED ]
	run_code 0 vm resume f1
	# the shutdown flushes once more before the VMM goes; the file goes with the jail, and the
	# meter has read to its end: its last record's position is past what was there before
	local before
	before=$(stat -c %s "$m")
	wait_for 10 sh -c "jq -e -s '[.[] | select(.vm == \"f1\" and .type == \"usage\")] | .[-1].vmm_off == $before' '$R/data/meter/ledger.jsonl'"
	run_code 0 vm shutdown f1 --timeout 5s
	[ "$(state_of f1)" = SHUTDOWN ]
	[ ! -e "$m" ] && [ ! -e "$chroot" ]
	wait_for 10 sh -c "jq -e -s 'any(.[]; .vm == \"f1\" and .type == \"stop\")' '$R/data/meter/ledger.jsonl'"
	jq -e -s '[.[] | select(.vm == "f1" and .type == "usage")] | .[-1].vmm_off > '"$before" "$R/data/meter/ledger.jsonl"
	# a new boot, a new process, a new file from its first line; the VMM's kvm-pit thread is looked
	# for in its jail, and its absence (no KVM here) is no error
	UNKEY_METALD_LOG_LEVEL=debug run_code 0 vm boot f1
	[[ "$output" == *"no \`kvm-pit/$(jq -r .pid "$R/data/vms/f1/vm.json")\` thread"* ]]
	[[ "$output" != *"warn"* ]]
	[ "$(jq -r .fc_metrics "$R/run/meter/f1.json")" = "$m" ]
	[ "$(wc -l < "$m")" -eq 1 ]
	run_code 0 vm delete f1 --force
	[ ! -e "$chroot" ] && [ ! -e "$R/run/meter/f1.json" ]
	[ -z "$(find "$R" -name metrics.json)" ]
	kill -TERM "$MPID"
	wait "$MPID"
	MPID=
}

@test "boot --paused holds the vCPUs; the first resume starts the guest" {
	run_code 0 vm create h1 --boot --paused --json
	[ "$(echo "$output" | jq -r .state)" = PAUSED ]
	local pid
	pid=$(echo "$output" | jq -r .pid)
	[ -d "/proc/$pid" ]
	sleep 1
	! serial_has h1 "Linux version"
	run_code 2 vm create h2 --paused
	run_code 0 vm resume h1
	[ "$(state_of h1)" = RUNNING ]
	wait_ready h1
	run_code 0 vm pause h1
	run_code 0 vm resume h1
	run_code 0 vm delete h1 --force
}

@test "a root ext4 disk and a data disk: the guest writes its private copies, the base images stay as they were" {
	require_cmd mke2fs debugfs
	cp "$G/rootfs.ext4" "$BATS_TEST_TMPDIR/base.ext4"
	mke2fs -q -t ext4 -F "$BATS_TEST_TMPDIR/data.ext4" 8M
	local sum_root sum_data
	sum_root=$(md5sum < "$BATS_TEST_TMPDIR/base.ext4")
	sum_data=$(md5sum < "$BATS_TEST_TMPDIR/data.ext4")
	run_code 0 vm create d1 --rootfs "$BATS_TEST_TMPDIR/base.ext4" --disk "$BATS_TEST_TMPDIR/data.ext4" \
		--cmdline "$(cat "$UNKEY_METALD_GUEST_DIR/cmdline") metald.run=\"echo on-root > /root-marker; mkdir -p /mnt; mount -t ext4 /dev/vdb /mnt && echo on-data > /mnt/data-marker && umount /mnt\" metald.poweroff=1" --boot
	wait_for 90 sh -c "[ \"\$(nsenter --net=/run/netns/$MD_HOSTNS $MD_BIN/metald-vm --root $R info d1 --json | jq -r .state)\" = SHUTDOWN ]"
	grep -q METALD-GUEST-READY "$R/data/vms/d1/serial.log"
	# the guest's writes are in the VM's private copies
	[ "$(debugfs -R 'cat /root-marker' "$R/data/vms/d1/disk-0.img" 2>/dev/null)" = on-root ]
	[ "$(debugfs -R 'cat /data-marker' "$R/data/vms/d1/disk-1.img" 2>/dev/null)" = on-data ]
	# and nowhere else
	[ "$(md5sum < "$BATS_TEST_TMPDIR/base.ext4")" = "$sum_root" ]
	[ "$(md5sum < "$BATS_TEST_TMPDIR/data.ext4")" = "$sum_data" ]
	run_code 0 vm delete d1
}

@test "create --boot whose VMM dies at once: exit 1 with the VMM's reason, and the create is undone" {
	UNKEY_METALD_QEMU_BIN=/bin/false run vm create z1 --boot
	[ "$status" -eq 1 ]
	[[ "$output" == *"boot vm \`z1\`: the VMM exited before it ran"* ]]
	[ ! -d "$R/data/vms/z1" ]
	[ -z "$(ls "$R/netns" 2>/dev/null)" ]
	[ -z "$(ls "$R/data/uids" 2>/dev/null)" ]
	run_code 0 vm create z1
	run_code 0 vm delete z1
}
