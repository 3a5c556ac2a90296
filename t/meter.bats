#!/usr/bin/env bats
# metald-meter: sampling, the ledger's exactness across crashes, billing delivery, bad input.
#
# Each test makes its own cgroups (v1 cpuacct/memory/blkio, named <prefix>-<vm>), runs busy loops in
# them, writes the meter targets itself (as metald-vm would), and removes everything in teardown.

load helpers/common

setup() {
	require_root
	require_cmd jq python3
	leak_snapshot
	P=$(md_prefix)
	R="$BATS_TEST_TMPDIR/r"
	mkdir -p "$R/run/meter"
	declare -gA VMPID
	MPID=
	RPID=
	MOUNTS=()
}

teardown() {
	local v d m
	[ -n "$MPID" ] && { kill -9 "$MPID" 2>/dev/null; wait "$MPID" 2>/dev/null; }
	[ -n "$RPID" ] && { kill "$RPID" 2>/dev/null; wait "$RPID" 2>/dev/null; }
	for v in "${!VMPID[@]}"; do
		kill -9 "${VMPID[$v]}" 2>/dev/null
		wait "${VMPID[$v]}" 2>/dev/null
	done
	for d in /sys/fs/cgroup/{cpuacct,memory,blkio}/"$P"-* /sys/fs/cgroup/unified/"$P"-*; do
		[ -d "$d" ] && rmdir "$d"
	done
	for m in "${MOUNTS[@]}"; do umount "$m" 2>/dev/null; done
	[ -n "${NETNS:-}" ] && ip netns del "$NETNS" 2>/dev/null
	[ -n "${NETNS2:-}" ] && ip netns del "$NETNS2" 2>/dev/null
	if [ "${METALD_METER_SHARED_HOST:-0}" = 1 ]; then
		# other people's tests run on this machine at the same time: judge only our own objects
		! leak_check 2>&1 | grep -E "$P|metald-meter|billing"
	else
		leak_check
	fi
}

meter() { metald-meter --root "$R" "$@"; }

# write a target atomically, as metald-vm does
write_target() { # id json
	printf '%s\n' "$2" > "$R/run/meter/.$1.tmp"
	mv "$R/run/meter/.$1.tmp" "$R/run/meter/$1.json"
}

# vm_start ID [CUSTOMER] [TENANT]: v1 cgroups + a busy loop in them + its meter target
vm_start() {
	local id=$1 cust=${2:-cust-$1} ten=${3:-ten-$1} c pid st
	for c in cpuacct memory blkio; do mkdir "/sys/fs/cgroup/$c/$P-$id"; done
	bash -c 'while :; do :; done' </dev/null >/dev/null 2>&1 3>&- &
	pid=$!
	VMPID[$id]=$pid
	for c in cpuacct memory blkio; do echo "$pid" > "/sys/fs/cgroup/$c/$P-$id/cgroup.procs"; done
	st=$(awk '{print $22}' "/proc/$pid/stat")
	write_target "$id" "{\"id\":\"$id\",\"customer_id\":\"$cust\",\"tenant\":\"$ten\",\"vmm\":\"none\",
\"pid\":$pid,\"pid_start\":$st,\"started_wall_ns\":$(date +%s%N),
\"cgroup\":{\"version\":1,\"paths\":{\"cpuacct\":\"/sys/fs/cgroup/cpuacct/$P-$id\",
\"memory\":\"/sys/fs/cgroup/memory/$P-$id\",\"blkio\":\"/sys/fs/cgroup/blkio/$P-$id\"}},
\"net\":null,\"qmp\":null,\"fc_metrics\":null}"
}

# vm_kill ID: the VMM dies; its counters are final from here on
vm_kill() {
	kill -9 "${VMPID[$1]}"
	wait "${VMPID[$1]}" 2>/dev/null || true
	unset "VMPID[$1]"
}

cg_cpu() { cat "/sys/fs/cgroup/cpuacct/$P-$1/cpuacct.usage"; }
# the whole ledger in order: sealed segments (named by their logical offset, so they sort), then the active file
ledger() { cat $(ls "$R"/data/meter/ledger.[0-9]*.jsonl 2>/dev/null | sort) "$R/data/meter/ledger.jsonl" 2>/dev/null; }
segments() { ls "$R"/data/meter/ledger.[0-9]*.jsonl 2>/dev/null | sort; }
n_segments() { segments | wc -l; }
has_segments() { [ "$(n_segments)" -ge "$1" ]; }
ledger_cpu() { ledger | jq -s --arg v "$1" '[.[] | select(.vm == $v and .type == "usage") | .cpu_ns] | add // 0'; }
has_stop() { ledger | jq -e -s --arg v "$1" 'any(.[]; .vm == $v and .type == "stop")' >/dev/null; }
n_usage() { ledger | jq -s --arg v "$1" '[.[] | select(.vm == $v and .type == "usage")] | length' 2>/dev/null || echo 0; }
has_usage() { [ "$(n_usage "$1")" -ge "${2:-1}" ]; }
n_type() { # vm type: how many entries
	ledger | jq -s --arg v "$1" --arg t "$2" '[.[] | select(.vm == $v and .type == $t)] | length' 2>/dev/null || echo 0
}
has_type() { [ "$(n_type "$1" "$2")" -ge "$3" ]; } # vm type n
vmm_read_bytes() { ledger | jq -s --arg v "$1" '[.[] | select(.type == "usage" and .vm == $v) | .vmm.disk_read_bytes // 0] | add // 0'; }
vmm_read_is() { [ "$(vmm_read_bytes "$1")" -eq "$2" ]; }
# both VMs end, the billing service acknowledges everything, meter and receiver stop
end_with_all_acked() {
	vm_kill a
	vm_kill b
	wait_for 10 has_stop a
	wait_for 10 has_stop b
	wait_for 20 all_acked
	meter_stop
	receiver_stop
}

meter_start() { # run options...
	metald-meter --root "$R" run --interval 50ms --period 200ms --sync 0 "$@" >"$R/meter.out" 2>>"$R/meter.err" 3>&- &
	MPID=$!
}
meter_stop() { # SIGTERM: final flush, exit 0
	kill -TERM "$MPID"
	local rc=0
	wait "$MPID" || rc=$?
	MPID=
	[ "$rc" -eq 0 ] || { echo "meter exited $rc:" >&2; cat "$R/meter.err" >&2; return 1; }
}
meter_kill9() {
	kill -9 "$MPID"
	wait "$MPID" 2>/dev/null || true
	MPID=
}

receiver_start() { # options...
	rm -f "$R/port"
	python3 "$METALD_TOP/t/helpers/billing-receiver" --port-file "$R/port" --log "$R/billing.log" "$@" \
		</dev/null >/dev/null 2>"$R/receiver.err" 3>&- &
	RPID=$!
	wait_for 10 test -s "$R/port"
	ENDPOINT="http://127.0.0.1:$(cat "$R/port")"
	touch "$R/billing.log"
}
receiver_stop() {
	kill "$RPID"
	wait "$RPID" 2>/dev/null || true
	RPID=
}

all_acked() { # every ledger entry of every VM is acknowledged
	ledger | jq -e -s --slurpfile a "$R/data/meter/acked.json" '
		[.[] | select(.vm)] | group_by(.vm) | all(.[-1].n as $n | .[-1].vm as $v | ($a[0][$v] // 0) >= $n)' \
		>/dev/null 2>&1
}

@test "meter: sample prints one JSON line per sample with CPU, memory and times; unknown VM is exit 3" {
	vm_start a
	run_code 0 meter sample --id a --count 3 --interval 20ms
	[ "${#lines[@]}" -eq 3 ]
	echo "${lines[2]}" | jq -e '.vm == "a" and .cpu_ns > 0 and (.memory_bytes | type == "number")
		and .mono_ns > 0 and .wall_ns > 1700000000000000000 and .net_rx_bytes == null and .uptime_ns > 0'
	a=$(echo "${lines[0]}" | jq .cpu_ns)
	b=$(echo "${lines[2]}" | jq .cpu_ns)
	[ "$b" -gt "$a" ]
	run_code 3 meter sample --id nosuchvm
	[[ "$output" == *"vm \`nosuchvm\`: not metered"* ]]
	run_code 2 meter sample --id 'bad/id'
	run_code 2 meter sample
	run_code 2 meter sample --id a --interval 0ms
	run_code 2 meter sample --id a --count -1
	vm_kill a
}

@test "meter: the ledger's CPU total equals the cgroup counter exactly, across kill -9 and restart" {
	vm_start a
	vm_start b
	meter_start --billing off
	wait_for 10 has_usage a 3
	meter_kill9
	sleep 0.5 # usage while no meter runs: the next record must still count it
	meter_start --billing off
	wait_for 10 has_usage b 6
	vm_kill a
	wait_for 10 has_stop a
	# a stopped: its total is exact (0 ns lost) while b goes on
	[ "$(ledger_cpu a)" -eq "$(cg_cpu a)" ]
	meter_kill9
	vm_kill b # stops while no meter runs; the next start closes it from its cgroup
	meter_start --billing off
	wait_for 10 has_stop b
	[ "$(ledger_cpu b)" -eq "$(cg_cpu b)" ]
	meter_stop
	# gap notices: one per restart that found the VM open
	[ "$(ledger | jq -s '[.[] | select(.type == "gap" and .vm == "a")] | length')" -eq 1 ]
	[ "$(ledger | jq -s '[.[] | select(.type == "gap" and .vm == "b")] | length')" -eq 2 ]
	# per VM: entry numbers 1..n without holes, periods back to back
	ledger | jq -s -e 'group_by(.vm) | all(map(.n) == [range(1; length + 1)])'
	ledger | jq -s -e '[.[] | select(.type == "usage")] | group_by(.vm) |
		all(. as $r | [range(1; length)] | all($r[.].start_wall == $r[. - 1].end_wall))'
	[ "$(ledger | jq -s '.[-1].seq')" -eq "$(ledger | wc -l)" ]
	# report sums the same
	run_code 0 meter report --json
	[ "$(echo "$output" | jq '.[] | select(.vm == "a") | .cpu_ns')" -eq "$(cg_cpu a)" ]
}

@test "meter: a VM that stops is closed at once with a final record; the cgroup's peak memory is recorded" {
	vm_start m
	# put some memory in the cgroup (a child of the busy loop's cgroup membership)
	bash -c "echo \$\$ > /sys/fs/cgroup/memory/$P-m/cgroup.procs; exec head -c 20000000 /dev/zero | tail -c 1 >/dev/null"
	meter_start --billing off --period 10s
	wait_for 10 test -s "$R/data/meter/ledger.jsonl"
	sleep 0.3
	vm_kill m
	wait_for 5 has_stop m
	# with a 10 s period the last record comes from the stop, not from the period's end (a first
	# record may have closed earlier: each VM's period grid has its own phase)
	ledger | jq -s -e '[.[] | select(.vm == "m" and .type == "usage")] | .[-1].final == true and
		(map(select(.final)) | length) == 1 and (map(.mem_max) | max) > 0 and length <= 2'
	[ "$(ledger_cpu m)" -eq "$(cg_cpu m)" ]
	# the target is still there: the stopped process is not metered again
	sleep 0.3
	[ "$(ledger | jq -s '[.[] | select(.vm == "m" and .type == "start")] | length')" -eq 1 ]
	# a new process under the same id is a new start
	vm_restart_same_id() {
		local pid st
		bash -c 'while :; do :; done' </dev/null >/dev/null 2>&1 3>&- &
		pid=$!
		VMPID[m]=$pid
		echo "$pid" > "/sys/fs/cgroup/cpuacct/$P-m/cgroup.procs"
		st=$(awk '{print $22}' "/proc/$pid/stat")
		write_target m "$(jq -c --argjson p "$pid" --argjson s "$st" '.pid = $p | .pid_start = $s' "$R/run/meter/m.json")"
	}
	vm_restart_same_id
	wait_for 5 has_type m start 2
	vm_kill m
	rm "$R/run/meter/m.json"
	wait_for 5 has_type m stop 2
	meter_stop
	[ "$(ledger_cpu m)" -eq "$(cg_cpu m)" ]
}

@test "meter: billing receives every record exactly once, in order per VM, with X-Tenant-ID, across failures and a restart" {
	receiver_start --drop-first 2 --fail-first 3 --drop-after 2 --require-tenant --down-file "$R/down"
	vm_start a c1 t1
	vm_start b c2 t2
	meter_start --billing-endpoint "$ENDPOINT" --heartbeat 200ms
	wait_for 10 has_usage a 3
	touch "$R/down" # billing down for part of the run
	sleep 0.6
	meter_kill9
	rm "$R/down"
	meter_start --billing-endpoint "$ENDPOINT" --heartbeat 200ms
	wait_for 10 has_usage b 8
	end_with_all_acked
	L="$R/billing.log"
	# misbehaviour happened: drops, failures, the down period
	jq -s -e 'map(.outcome) | (index("drop") != null) and (index("fail") != null) and (index("drop-after") != null)' "$L"
	# processed calls (ok, or processed and then dropped) carry every ledger entry; by id, each once
	jq -s '[.[] | select(.outcome == "ok" or .outcome == "drop-after") |
		select(.body.vmId) |
		if .method == "SendMetricsBatch" then .body.metrics[].recordId else .body.batchId end] | unique' "$L" > "$R/got"
	ledger | jq -s '[.[] | select(.vm) | .id] | sort' > "$R/want"
	diff <(jq -c 'sort' "$R/got") <(jq -c . "$R/want")
	# in order per VM: the entry numbers of first arrivals increase
	jq -s -r '.[] | select(.outcome == "ok" or .outcome == "drop-after") | select(.body.vmId) |
		if .method == "SendMetricsBatch" then .body.metrics[].recordId else .body.batchId end' "$L" |
		awk -F/ '{ if (($1 in seen) && $2 + 0 < last[$1]) { print "out of order: " $0; bad = 1 }
			if (!($1 in seen) || $2 + 0 > last[$1]) last[$1] = $2 + 0; seen[$1] = 1 } END { exit bad }'
	# tenants in X-Tenant-ID; start, stop, gap notices arrived
	[ "$(jq -s '[.[] | select(.outcome == "unauthenticated")] | length' "$L")" -eq 0 ]
	jq -s -e '[.[] | select(.outcome == "ok" and .body.vmId == "a") | .tenant] | unique == ["t1"]' "$L"
	jq -s -e '[.[] | select(.outcome == "ok" and .method == "NotifyVmStarted")] | map(.body.vmId) | sort == ["a", "b"]' "$L"
	jq -s -e '[.[] | select(.outcome == "ok" and .method == "NotifyVmStopped")] | map(.body.vmId) | sort == ["a", "b"]' "$L"
	jq -s -e '[.[] | select(.outcome == "ok" and .method == "NotifyPossibleGap")] | map(.body.vmId) | sort == ["a", "b"]' "$L"
	jq -s -e 'any(.[]; .method == "SendHeartbeat" and .outcome == "ok" and (.body.instanceId | startswith("metald-meter-")))' "$L"
	# billing's cumulative CPU of each VM ends at the cgroup's exact counter
	for v in a b; do
		got=$(jq -s -r --arg v "$v" '[.[] | select(.outcome == "ok" and .method == "SendMetricsBatch" and .body.vmId == $v) |
			.body.metrics[].cpuTimeNanos | tonumber] | max' "$L")
		[ "$got" -eq "$(cg_cpu "$v")" ]
		[ "$(ledger_cpu "$v")" -eq "$(cg_cpu "$v")" ]
	done
	# int64 as strings and Timestamps, as protojson writes them
	jq -s -e '[.[] | select(.method == "SendMetricsBatch")][0].body.metrics[0] |
		(.cpuTimeNanos | type == "string") and (.timestamp | test("^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:]{8}\\.[0-9]{9}Z$"))' "$L"
}

@test "meter: mock mode writes the ledger and sends nothing" {
	receiver_start
	vm_start a
	UNKEY_METALD_BILLING_MOCK_MODE=true UNKEY_METALD_BILLING_ENDPOINT="$ENDPOINT" meter_start --heartbeat 100ms
	wait_for 10 has_usage a 3
	vm_kill a
	wait_for 10 has_stop a
	meter_stop
	[ ! -s "$R/billing.log" ]
	[ "$(ledger_cpu a)" -eq "$(cg_cpu a)" ]
	grep -q 'billing mock' "$R/meter.err" || true
}

@test "meter: a wrong endpoint is a clear error and nothing is lost; invalid billing settings are refused" {
	receiver_start
	vm_start a
	# nothing listens on this port: the records wait in the ledger, and the log says why
	port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
	meter_start --billing-endpoint "http://127.0.0.1:$port" -v
	wait_for 10 has_usage a 3
	wait_for 10 grep -q "billing: NotifyVmStarted vm \`a\`: http://127.0.0.1:$port/billing.v1.BillingService/NotifyVmStarted: .*onnect" "$R/meter.err"
	run_code 0 meter prom
	[[ "$output" == *'metald_meter_unacknowledged_entries{vm="a",customer="cust-a",tenant="ten-a"} '[1-9]* ]]
	meter_stop
	# a server that is not a billing service: 404, said so
	meter_start --billing-endpoint "$ENDPOINT/not-billing"
	wait_for 10 grep -q 'HTTP 404: unimplemented' "$R/meter.err"
	meter_stop
	# the right endpoint: everything that waited arrives
	meter_start --billing-endpoint "$ENDPOINT" -v
	vm_kill a
	wait_for 10 has_stop a
	wait_for 10 all_acked
	meter_stop
	jq -s -e '[.[] | select(.outcome == "ok" and .method == "NotifyVmStarted")] | length == 1' "$R/billing.log"
	# no crash here, so every entry arrived exactly once: no id twice, none missing
	jq -s '[.[] | select(.outcome == "ok") | select(.body.vmId) |
		if .method == "SendMetricsBatch" then .body.metrics[].recordId else .body.batchId end]' "$R/billing.log" > "$R/got"
	jq -e 'length == (unique | length)' "$R/got"
	diff <(jq -c sort "$R/got") <(ledger | jq -s -c '[.[] | select(.vm) | .id] | sort')
	# invalid settings: exit 2, never a silent default
	UNKEY_METALD_BILLING_ENABLED=maybe run_code 2 meter run
	[[ "$output" == *UNKEY_METALD_BILLING_ENABLED* ]]
	UNKEY_METALD_BILLING_MOCK_MODE=2 run_code 2 meter run
	[[ "$output" == *UNKEY_METALD_BILLING_MOCK_MODE* ]]
	UNKEY_METALD_BILLING_ENDPOINT=ftp://x run_code 2 meter run
	[[ "$output" == *"UNKEY_METALD_BILLING_ENDPOINT: billing endpoint \`ftp://x\`"* ]]
	run_code 2 meter run --billing-endpoint localhost:8081
	run_code 2 meter run --billing maybe
	run_code 2 meter run --interval 1s --period 100ms
	run_code 2 meter run --sync x
	run_code 2 meter run --batch 0
}

@test "meter: libcurl is not linked, only loaded to deliver: without it, run --billing send is exit 5 in one line" {
	require_cmd unshare ldconfig
	run_code 0 ldd "$MD_BIN/metald-meter"
	[[ "$output" != *libcurl* ]]
	run_code 5 without_libcurl metald-meter --root "$R" run --billing send
	[ "${#lines[@]}" -eq 1 ]
	[[ "$output" =~ ^metald-meter:\ libcurl:\ cannot\ load\ libcurl\.so\.4:\ .+\ \(install\ libcurl4\)$ ]]
	# what sends nothing does not need it
	run_code 0 without_libcurl metald-meter --root "$R" report
	run_code 0 without_libcurl metald-meter --root "$R" prom
	run_code 0 without_libcurl metald-meter --version
}

@test "meter: a ledger cut short by a crash is recovered without counting anything twice" {
	vm_start a
	meter_start --billing off
	wait_for 10 has_usage a 4
	meter_kill9
	# a crash in the middle of a write: the last line is cut short
	size=$(stat -c %s "$R/data/meter/ledger.jsonl")
	truncate -s $((size - 25)) "$R/data/meter/ledger.jsonl"
	meter_start --billing off
	wait_for 10 grep -q 'cutting .* bytes of a line cut short by a crash' "$R/meter.err"
	wait_for 10 has_usage a 6
	vm_kill a
	wait_for 10 has_stop a
	meter_stop
	[ "$(ledger_cpu a)" -eq "$(cg_cpu a)" ]
	ledger | jq -s -e 'group_by(.vm) | all(map(.n) == [range(1; length + 1)])'
	# a damaged line in the middle is not "repaired" silently
	sed -i '2s/.*/{"seq":/' "$R/data/meter/ledger.jsonl"
	run_code 1 meter run --billing off
	[[ "$output" == *"damaged line at offset"* ]]
	run_code 1 meter report
}

@test "meter: a full disk is a clear error, sampling goes on, and the records come when space returns" {
	D="$BATS_TEST_TMPDIR/full"
	mkdir -p "$D"
	mount -t tmpfs -o size=256k "$P-full" "$D"
	MOUNTS+=("$D")
	vm_start a
	export UNKEY_METALD_DATA_DIR="$D" UNKEY_METALD_RUN_DIR="$R/run"
	metald-meter run --interval 50ms --period 200ms --sync 0 --billing off 2>"$R/meter.err" 3>&- &
	MPID=$!
	wait_for 10 test -s "$D/meter/ledger.jsonl"
	dd if=/dev/zero of="$D/filler" bs=4k 2>/dev/null || true
	wait_for 10 grep -q "ledger \`$D/meter/ledger.jsonl\`: write: No space left on device" "$R/meter.err"
	n=$(wc -l < "$D/meter/ledger.jsonl")
	sleep 0.5
	rm "$D/filler"
	wait_for 10 grep -q 'writable again' "$R/meter.err"
	vm_kill a
	wait_for 10 jq -e -s 'any(.[]; .type == "stop")' "$D/meter/ledger.jsonl"
	kill -TERM "$MPID"
	wait "$MPID"
	MPID=
	[ "$(wc -l < "$D/meter/ledger.jsonl")" -gt "$n" ]
	[ "$(jq -s '[.[] | select(.type == "usage") | .cpu_ns] | add' "$D/meter/ledger.jsonl")" -eq "$(cg_cpu a)" ]
	# every line whole
	jq -s -e 'length > 0' "$D/meter/ledger.jsonl"
	unset UNKEY_METALD_DATA_DIR UNKEY_METALD_RUN_DIR
}

@test "meter: cgroup v2 (a cgroup2 mount made here): cpu.stat usage_usec counts without controllers" {
	D="$BATS_TEST_TMPDIR/cg2"
	mkdir -p "$D"
	mount -t cgroup2 none "$D"
	MOUNTS+=("$D")
	# On this host every controller is bound to v1, so a v2 cgroup has no memory.current or io.stat;
	# the core still keeps cpu.stat usage_usec for every cgroup. Test what the hierarchy offers.
	mkdir "$D/$P-v2"
	[ -f "$D/$P-v2/cpu.stat" ]
	bash -c 'while :; do :; done' </dev/null >/dev/null 2>&1 3>&- &
	pid=$!
	VMPID[v2]=$pid
	echo "$pid" > "$D/$P-v2/cgroup.procs"
	st=$(awk '{print $22}' "/proc/$pid/stat")
	write_target v2 "{\"id\":\"v2\",\"pid\":$pid,\"pid_start\":$st,\"cgroup\":{\"version\":2,\"path\":\"$D/$P-v2\"}}"
	run_code 0 meter sample --id v2
	echo "$output" | jq -e '.cpu_ns > 0'
	if [ -f "$D/$P-v2/memory.current" ]; then
		echo "$output" | jq -e '.memory_bytes | type == "number"'
	else
		echo "$output" | jq -e '.memory_bytes == null and .disk_read_bytes == null'
	fi
	meter_start --billing off
	wait_for 10 has_usage v2 2
	vm_kill v2
	wait_for 10 has_stop v2
	meter_stop
	usec=$(awk '$1 == "usage_usec" {print $2}' "$D/$P-v2/cpu.stat")
	[ "$(ledger_cpu v2)" -eq $((usec * 1000)) ]
	rmdir "$D/$P-v2"
	umount "$D"
	MOUNTS=()
}

@test "meter: network bytes and packets of the host-side link, read through netlink inside its netns" {
	NETNS="$P-n"
	NETNS2="$P-g"
	ip netns add "$NETNS"
	ip netns add "$NETNS2"
	# no IPv6 chatter (router solicitations) on these links: only the test's pings count
	ip netns exec "$NETNS" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
	ip netns exec "$NETNS2" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
	ip -n "$NETNS" link add "$P-h" type veth peer name "$P-g" netns "$NETNS2"
	ip -n "$NETNS" addr add 192.0.2.1/24 dev "$P-h"
	ip -n "$NETNS2" addr add 192.0.2.2/24 dev "$P-g"
	ip -n "$NETNS" link set "$P-h" up
	ip -n "$NETNS2" link set "$P-g" up
	vm_start a
	write_target a "$(jq -c --arg l "$P-h" --arg n "/run/netns/$NETNS" '.net = {link: $l, netns: $n}' "$R/run/meter/a.json")"
	# the "VM" (the peer) sends pings to the host end; nothing leaves the namespace
	ip netns exec "$NETNS2" ping -c 5 -i 0.05 -s 1000 192.0.2.1 >/dev/null
	run_code 0 meter sample --id a
	s=$output
	stats=$(ip -n "$NETNS" -s -j link show "$P-h")
	# the host end's receive is the VM's transmit, and the other way round
	[ "$(echo "$s" | jq .net_tx_bytes)" -eq "$(echo "$stats" | jq '.[0].stats64.rx.bytes')" ]
	[ "$(echo "$s" | jq .net_rx_bytes)" -eq "$(echo "$stats" | jq '.[0].stats64.tx.bytes')" ]
	[ "$(echo "$s" | jq .net_tx_packets)" -ge 5 ]
	[ "$(echo "$s" | jq .net_tx_bytes)" -ge 5000 ]
	meter_start --billing off
	wait_for 10 has_usage a 2
	meter_stop
	stats=$(ip -n "$NETNS" -s -j link show "$P-h")
	[ "$(ledger | jq -s '[.[] | select(.type == "usage") | .net_tx_bytes] | add')" -eq "$(echo "$stats" | jq '.[0].stats64.rx.bytes')" ]
	[ "$(ledger | jq -s '[.[] | select(.type == "usage") | .net_rx_packets] | add')" -eq "$(echo "$stats" | jq '.[0].stats64.tx.packets')" ]
	vm_kill a
}

@test "meter: report by vm, customer and day as table, JSON and CSV; prom text and textfile" {
	vm_start a c1 t1
	vm_start b c1 t1
	vm_start c c2 t2
	meter_start --billing off
	wait_for 10 has_usage c 3
	for v in a b c; do vm_kill "$v"; done
	wait_for 10 has_stop c
	wait_for 10 has_stop a
	wait_for 10 has_stop b
	meter_stop
	run_code 0 meter report
	[[ "${lines[0]}" == *VM*CUSTOMER*RECORDS*"CPU NS"* ]]
	run_code 0 meter report --by customer --json
	[ "$(echo "$output" | jq '.[] | select(.customer == "c1") | .cpu_ns')" -eq $(($(cg_cpu a) + $(cg_cpu b))) ]
	[ "$(echo "$output" | jq '.[] | select(.customer == "c2") | .cpu_ns')" -eq "$(cg_cpu c)" ]
	run_code 0 meter report --by day --json
	[ "$(echo "$output" | jq '.[0].day')" = "\"$(date -u +%F)\"" ] || [ "$(echo "$output" | jq length)" -eq 2 ]
	run_code 0 meter report --customer c2 --csv
	[ "${lines[0]}" = "vm,customer,records,duration_ns,cpu_ns,mem_peak,mem_avg,disk_read_bytes,disk_write_bytes,disk_read_ops,disk_write_ops,net_rx_bytes,net_tx_bytes,net_rx_packets,net_tx_packets" ]
	[ "${#lines[@]}" -eq 2 ]
	[[ "${lines[1]}" == *'"c"'*'"c2"'* ]]
	run_code 0 meter report --since 1h --json
	[ "$(echo "$output" | jq length)" -eq 3 ]
	run_code 0 meter report --until 2000-01-01 --json
	[ "$(echo "$output" | jq length)" -eq 0 ]
	run_code 0 meter report --since "@$(date +%s -d '+1 hour')" --json
	[ "$(echo "$output" | jq length)" -eq 0 ]
	run_code 0 meter report --id a --json
	[ "$(echo "$output" | jq '.[0].cpu_ns')" -eq "$(cg_cpu a)" ]
	run_code 3 meter report --id nosuch
	run_code 2 meter report --by week
	run_code 2 meter report --since yesterday
	run_code 2 meter report --csv --json
	run_code 0 meter prom
	[[ "$output" == *'# TYPE metald_vm_cpu_seconds_total counter'* ]]
	ns=$(cg_cpu a)
	[[ "$output" == *"metald_vm_cpu_seconds_total{vm=\"a\",customer=\"c1\",tenant=\"t1\"} $((ns / 1000000000)).$(printf %09d $((ns % 1000000000)))"* ]]
	[[ "$output" == *'metald_vm_running{vm="a",customer="c1",tenant="t1"} 0'* ]]
	run_code 0 meter prom --textfile "$BATS_TEST_TMPDIR/metald.prom"
	grep -q '^metald_meter_ledger_entries ' "$BATS_TEST_TMPDIR/metald.prom"
	[ -z "$(ls "$BATS_TEST_TMPDIR" | grep 'metald.prom.tmp')" ]
}

@test "meter: one meter per data directory; a bad target is ignored with a warning" {
	meter_start --billing off
	wait_for 5 test -f "$R/data/meter/lock"
	sleep 0.2
	run_code 4 meter run --billing off
	[[ "$output" == *"another metald-meter runs"* ]]
	write_target bad '{"id":"bad","pid":"x"}'
	wait_for 5 grep -q "ignoring meter target .*bad.json" "$R/meter.err"
	write_target bad2 'not json'
	wait_for 5 grep -q "bad2.json.*invalid JSON" "$R/meter.err"
	meter_stop
}

@test "meter: disk counters from QEMU query-blockstats (a real, paused QEMU and a QMP stand-in with known numbers)" {
	require_cmd qemu-system-x86_64
	vm_start a
	# a stand-in QEMU monitor with two disks
	echo '{"d0":{"rd_bytes":1000,"wr_bytes":2000,"rd_operations":3,"wr_operations":4},
	       "d1":{"rd_bytes":10,"wr_bytes":20,"rd_operations":1,"wr_operations":1}}' > "$R/stats.json"
	python3 "$METALD_TOP/t/helpers/qmp-standin" --socket "$R/qmp.sock" --stats "$R/stats.json" </dev/null >/dev/null 2>&1 3>&- &
	VMPID[qmp]=$!
	wait_for 5 test -S "$R/qmp.sock"
	write_target a "$(jq -c --arg q "$R/qmp.sock" '.qmp = $q' "$R/run/meter/a.json")"
	run_code 0 meter sample --id a
	echo "$output" | jq -e '.disk_read_bytes == 1010 and .disk_write_bytes == 2020 and .disk_read_ops == 4 and .disk_write_ops == 5'
	meter_start --billing off
	wait_for 10 has_usage a 2
	echo '{"d0":{"rd_bytes":5000,"wr_bytes":2000,"rd_operations":9,"wr_operations":4},
	       "d1":{"rd_bytes":10,"wr_bytes":20,"rd_operations":1,"wr_operations":1}}' > "$R/stats.json"
	sleep 0.5
	vm_kill a
	wait_for 10 has_stop a
	meter_stop
	# the records' differences add up to QEMU's cumulative numbers (cgroup blkio is not mixed in)
	[ "$(ledger | jq -s '[.[] | select(.type == "usage") | .disk_read_bytes] | add')" -eq 5010 ]
	[ "$(ledger | jq -s '[.[] | select(.type == "usage") | .disk_read_ops] | add')" -eq 10 ]
	# the real thing: QEMU's QMP, paused (-S), one virtio disk
	truncate -s 1M "$BATS_TEST_TMPDIR/d.img"
	qemu-system-x86_64 -machine microvm -accel tcg -nodefaults -display none -S \
		-qmp "unix:$R/q.sock,server=on,wait=off" -drive "file=$BATS_TEST_TMPDIR/d.img,if=none,id=d0,format=raw" \
		-device virtio-blk-device,drive=d0 </dev/null >/dev/null 2>&1 3>&- &
	q=$!
	VMPID[qemu]=$q
	wait_for 10 test -S "$R/q.sock"
	write_target q "{\"id\":\"q\",\"pid\":$q,\"pid_start\":$(awk '{sub(/.*\) /, ""); print $20}' "/proc/$q/stat"),\"qmp\":\"$R/q.sock\"}"
	run_code 0 meter sample --id q
	echo "$output" | jq -e '.disk_read_bytes == 0 and .disk_write_ops == 0 and .cpu_ns == null'
}

@test "meter: a start reads the ledger from its checkpoint; a checkpoint that does not fit is not trusted" {
	vm_start a
	meter_start --billing off -v
	wait_for 10 has_usage a 3
	meter_stop
	# the clean exit left a checkpoint at the ledger's end
	[ "$(jq .offset "$R/data/meter/state.json")" -eq "$(stat -c %s "$R/data/meter/ledger.jsonl")" ]
	[ "$(jq .seq "$R/data/meter/state.json")" -eq "$(ledger | wc -l)" ]
	jq -e '.vms.a.open == true and .vms.a.cum.cpu_ns > 0' "$R/data/meter/state.json"
	meter_start --billing off -v
	wait_for 10 grep -q 'resumed from the checkpoint' "$R/meter.err"
	wait_for 10 has_usage a 6
	meter_kill9
	# a checkpoint that points into the middle of a line (or past the end) is not used
	jq -c '.offset += 3' "$R/data/meter/state.json" > "$R/s" && mv "$R/s" "$R/data/meter/state.json"
	meter_start --billing off -v
	wait_for 10 grep -q 'checkpoint does not fit the ledger' "$R/meter.err"
	wait_for 10 has_usage a 9
	vm_kill a
	wait_for 10 has_stop a
	meter_stop
	[ "$(ledger_cpu a)" -eq "$(cg_cpu a)" ]
	ledger | jq -s -e 'group_by(.vm) | all(map(.n) == [range(1; length + 1)])'
	[ "$(ledger | jq -s '[.[] | select(.type == "gap")] | length')" -eq 2 ]
}

# one Firecracker metrics line: per-flush deltas (aggregate groups plus a per-device group)
fcline() { # read_bytes write_bytes read_count write_count rx_bytes tx_bytes rx_packets tx_packets
	printf '{"utc_timestamp_ms":%s,"block":{"read_bytes":%s,"write_bytes":%s,"read_count":%s,"write_count":%s,"flush_count":1},"block_rootfs":{"read_bytes":%s},"net":{"rx_bytes_count":%s,"tx_bytes_count":%s,"rx_packets_count":%s,"tx_packets_count":%s},"vcpu":{"exit_io_in":3}}\n' \
		"$(date +%s%3N)" "$1" "$2" "$3" "$4" "$1" "$5" "$6" "$7" "$8"
}

@test "meter: Firecracker metrics (per-flush deltas) are summed once each, across kill -9, torn lines and a FIFO" {
	vm_start a
	M="$R/fc.metrics"
	fcline 100 200 1 2 1000 2000 10 20 > "$M"
	write_target a "$(jq -c --arg f "$M" '.vmm = "firecracker" | .fc_metrics = $f' "$R/run/meter/a.json")"
	meter_start --billing off
	wait_for 10 has_usage a 2
	fcline 1 2 3 4 5 6 7 8 >> "$M"
	sleep 0.3
	meter_kill9
	fcline 10 20 30 40 50 60 70 80 >> "$M"
	printf '{"utc_timestamp_ms":1,"block":{"read_bytes":5' >> "$M" # a flush being written
	meter_start --billing off
	wait_for 10 has_usage a 5
	printf '000}}\n' >> "$M" # the line completes: 5000 read bytes
	sleep 0.3
	vm_kill a
	wait_for 10 has_stop a
	meter_stop
	ledger | jq -s -e '[.[] | select(.type == "usage" and .vm == "a")] |
		([.[].vmm.disk_read_bytes] | add) == 5111 and ([.[].vmm.disk_write_ops] | add) == 46 and
		([.[].vmm.net_rx_bytes] | add) == 1055 and ([.[].vmm.net_tx_packets] | add) == 108 and
		.[-1].vmm_cum.disk_read_bytes == 5111 and .[-1].vmm_off == '"$(stat -c %s "$M")"
	# the cgroup's CPU is still exact alongside
	[ "$(ledger_cpu a)" -eq "$(cg_cpu a)" ]
	# sample sums the file from its start
	vm_start b
	write_target b "$(jq -c --arg f "$M" '.fc_metrics = $f' "$R/run/meter/b.json")"
	run_code 0 meter sample --id b
	echo "$output" | jq -e '.vmm.disk_read_bytes == 5111 and .vmm.lines == 4'
	# a FIFO: read as lines come (Firecracker opens it O_RDWR|O_NONBLOCK, never waiting for us)
	mkfifo "$R/fc.fifo"
	write_target b "$(jq -c --arg f "$R/fc.fifo" '.fc_metrics = $f' "$R/run/meter/b.json")"
	run_code 0 meter sample --id b
	echo "$output" | jq -e '.vmm == null'
	meter_start --billing off
	wait_for 10 has_usage b 2
	exec 7<>"$R/fc.fifo"
	fcline 7 0 0 0 0 0 0 0 >&7
	fcline 8 0 0 0 0 0 0 0 >&7
	wait_for 10 vmm_read_is b 15
	exec 7>&-
	vm_kill b
	wait_for 10 has_stop b
	meter_stop
}

# allocated bytes of a file (its blocks), against its size
fc_alloc() { echo $(( $(stat -c %b "$1") * $(stat -c %B "$1") )); }
fc_freed() { [ "$(fc_alloc "$1")" -lt $(( $(stat -c %s "$1") - 1048576 )) ]; }

@test "meter: Firecracker metrics lines on disk in the ledger give their blocks back; sums stay exact across kill -9" {
	vm_start a
	M="$R/fc.metrics"
	# 6000 flushes of 1 read byte each (~1.7 MiB): a VM that has run for four days
	awk 'BEGIN { for (i = 0; i < 6000; i++) printf "{\"utc_timestamp_ms\":%.0f,\"block\":{\"read_bytes\":1,\"write_bytes\":2,\"read_count\":0,\"write_count\":0,\"flush_count\":1},\"block_rootfs\":{\"read_bytes\":1},\"net\":{\"rx_bytes_count\":3,\"tx_bytes_count\":0,\"rx_packets_count\":0,\"tx_packets_count\":0},\"vcpu\":{\"exit_io_in\":3},\"padding\":\"%0200d\"}\n", 1700000000000 + i, 0 }' > "$M"
	size=$(stat -c %s "$M")
	[ "$size" -gt 1572864 ]
	! fc_freed "$M"
	write_target a "$(jq -c --arg f "$M" '.vmm = "firecracker" | .fc_metrics = $f' "$R/run/meter/a.json")"
	meter_start --billing off
	wait_for 10 vmm_read_is a 6000
	# recorded and flushed: the first whole MiBs are holes now; the size (and every offset) is kept
	wait_for 10 fc_freed "$M"
	[ "$(stat -c %s "$M")" -eq "$size" ]
	[ -z "$(head -c 1048576 "$M" | tr -d '\0')" ]
	meter_kill9
	fcline 10 0 0 0 0 0 0 0 >> "$M"
	meter_start --billing off
	wait_for 10 vmm_read_is a 6010
	fcline 5 0 0 0 0 0 0 0 >> "$M"
	wait_for 10 vmm_read_is a 6015
	# another file takes the name (2.5 MiB, beyond the old one's position): read from its start,
	# punched only up to its own recorded position
	awk 'BEGIN { for (i = 0; i < 9000; i++) printf "{\"utc_timestamp_ms\":1,\"block\":{\"read_bytes\":2},\"net\":{},\"padding\":\"%0250d\"}\n", 0 }' > "$M.new"
	mv "$M.new" "$M"
	wait_for 10 vmm_read_is a 24015
	wait_for 10 fc_freed "$M"
	[ "$(fc_alloc "$M")" -gt 0 ]
	# while the meter is down a short file takes the name: at its start the recorded position is
	# past the file's end, so it is read from 0, and nothing of it is punched before a record
	# holds a position in it
	meter_kill9
	awk 'BEGIN { for (i = 0; i < 300; i++) printf "{\"utc_timestamp_ms\":1,\"block\":{\"read_bytes\":4},\"net\":{}}\n" }' > "$M.short"
	mv "$M.short" "$M"
	meter_start --billing off
	wait_for 10 vmm_read_is a 25215
	sleep 0.5
	[ "$(fc_alloc "$M")" -ge "$(stat -c %s "$M")" ]
	vm_kill a
	wait_for 10 has_stop a
	meter_stop
	ledger | jq -s -e '[.[] | select(.type == "usage" and .vm == "a")] |
		([.[].vmm.disk_read_bytes] | add) == 25215 and ([.[].vmm.net_rx_bytes] | add) == 18000 and
		.[-1].vmm_cum.disk_read_bytes == 25215 and .[-1].vmm_off == '"$(stat -c %s "$M")"
}

# ---- segments: rotation at a size, reading across them, removal after acknowledgement and retention

# the ledger's invariants across segments: seq 1.. (or from the oldest file's first) without a hole or
# a repeat, per VM entry numbers without holes, each sealed segment named by its logical offset and
# the next file's segment entry naming the same place
ledger_whole() {
	ledger | jq -s -e '(.[0].seq) as $f | map(.seq) == [range($f; $f + length)]'
	ledger | jq -s -e '[.[] | select(.vm)] | group_by(.vm) | all(map(.n) as $n | $n == [range($n[0]; $n[0] + length)])'
	local off=-1 f b
	for f in $(segments) "$R/data/meter/ledger.jsonl"; do
		if [ "$f" != "$R/data/meter/ledger.jsonl" ]; then
			b=$(basename "$f" .jsonl); b=$((10#${b#ledger.}))
		else
			b=$(head -n1 "$f" | jq 'if .type == "segment" then .base else -1 end')
		fi
		if [ "$off" -ge 0 ]; then [ "$b" -eq "$off" ] || { echo "$f: base $b, expected $off" >&2; return 1; }; fi
		[ "$(head -n1 "$f" | jq -r .type)" != segment ] || [ "$(head -n1 "$f" | jq .base)" -eq "$b" ]
		off=$((b + $(stat -c %s "$f")))
	done
}

@test "meter: the ledger rotates at UNKEY_METALD_METER_LEDGER_SEGMENT; seq goes on across segments; report reads them all, prom the latest state" {
	vm_start a c1 t1
	vm_start b c2 t2
	UNKEY_METALD_METER_LEDGER_SEGMENT=4K UNKEY_METALD_METER_LEDGER_KEEP=0s meter_start --billing off
	wait_for 20 has_segments 4
	vm_kill a
	wait_for 10 has_stop a
	meter_stop
	# every sealed segment passed the size (sealed at the first sync after it) and starts with its
	# segment entry (but the first); nothing was removed, since nothing was acknowledged (billing off)
	for f in $(segments); do
		size=$(stat -c %s "$f")
		[ "$size" -ge 4096 ] && [ "$size" -lt 12288 ] # at the size: past it by one write at most
	done
	[ "$(segments | head -n1)" = "$R/data/meter/ledger.00000000000000000000.jsonl" ]
	for f in $(segments | tail -n +2) "$R/data/meter/ledger.jsonl"; do
		head -n1 "$f" | jq -e '.type == "segment" and (.vms | has("a") and has("b"))' >/dev/null
	done
	[ "$(ledger | jq -s '.[0].seq')" -eq 1 ]
	ledger_whole
	[ "$(ledger_cpu a)" -eq "$(cg_cpu a)" ]
	# report sums every segment: the same as the entries, exact for the stopped VM
	run_code 0 meter report --json
	[ "$(echo "$output" | jq '.[] | select(.vm == "a") | .cpu_ns')" -eq "$(cg_cpu a)" ]
	[ "$(echo "$output" | jq '.[] | select(.vm == "b") | .cpu_ns')" -eq "$(ledger_cpu b)" ]
	[ "$(echo "$output" | jq '.[] | select(.vm == "b") | .records')" -eq "$(n_usage b)" ]
	run_code 0 meter report --json --since 1h
	[ "$(echo "$output" | jq '.[] | select(.vm == "b") | .cpu_ns')" -eq "$(ledger_cpu b)" ]
	run_code 0 meter report --json --by customer
	[ "$(echo "$output" | jq '.[] | select(.customer == "c1") | .cpu_ns')" -eq "$(cg_cpu a)" ]
	run_code 0 meter prom
	[[ "$output" == *"metald_meter_ledger_entries $(ledger | wc -l)"* ]]
	[[ "$output" == *"metald_meter_ledger_bytes $(cat $(segments) "$R/data/meter/ledger.jsonl" | wc -c)"* ]]
	cpu=$(echo "$output" | awk '/^metald_vm_cpu_seconds_total\{vm="a"/ { print $2 }')
	[ "${cpu/./}" -eq "$(cg_cpu a)" ] # exact decimal seconds
	# a restart reads on from its checkpoint across the segments; seq and entry numbers go on
	UNKEY_METALD_METER_LEDGER_SEGMENT=4K meter_start --billing off -v
	wait_for 10 grep -q 'resumed from the checkpoint' "$R/meter.err"
	n=$(n_usage b)
	wait_for 10 has_usage b $((n + 3))
	meter_stop
	ledger_whole
	# an invalid size is refused
	UNKEY_METALD_METER_LEDGER_SEGMENT=12 run_code 2 meter run --billing off
	[[ "$output" == *UNKEY_METALD_METER_LEDGER_SEGMENT* ]]
	UNKEY_METALD_METER_LEDGER_KEEP=x run_code 2 meter run --billing off
	[[ "$output" == *UNKEY_METALD_METER_LEDGER_KEEP* ]]
}

# the earliest end_wall of the usage records in file $1
seg_min_end() { jq -s '[.[] | select(.type == "usage") | .end_wall] | min' "$1"; }

@test "meter: report --until skips the sealed segments whose earliest record ended after it (segments.json), and sums the same" {
	vm_start a c1 t1
	UNKEY_METALD_METER_LEDGER_SEGMENT=4K meter_start --billing off
	wait_for 30 has_segments 6
	vm_kill a
	wait_for 10 has_stop a
	meter_stop
	# the index names every sealed segment (the meter saw all of each) with its earliest usage end
	for f in $(segments); do
		b=$(basename "$f" .jsonl)
		[ "$(jq --arg b "${b#ledger.}" '.[$b]' "$R/data/meter/segments.json")" = "$(seg_min_end "$f")" ]
	done
	# --until at the third segment's earliest end (whole seconds): the segments from there on go
	third=$(segments | sed -n 3p)
	until=$(( $(seg_min_end "$third") / 1000000000 ))
	want=$(ledger | jq -s --argjson u "$((until * 1000000000))" \
		'[.[] | select(.type == "usage" and .vm == "a" and .end_wall < $u)] | {records: length, cpu: (map(.cpu_ns) | add)}')
	run_code 0 meter report --json --until "@$until"
	[ "$(echo "$output" | jq -c '.[] | select(.vm == "a") | {records, cpu: .cpu_ns}')" = "$(echo "$want" | jq -c .)" ]
	# proof that they are not read: damage the last sealed one (a bad line followed by good ones);
	# the same report still works, one that must read it does not
	last=$(segments | tail -n1)
	sed -i '2s/^/{garbage/' "$last"
	run_code 0 meter report --json --until "@$until"
	[ "$(echo "$output" | jq -c '.[] | select(.vm == "a") | {records, cpu: .cpu_ns}')" = "$(echo "$want" | jq -c .)" ]
	run_code 1 meter report --json
	[[ "$output" == *damaged* ]]
	# without the index, everything is read (and the damage found)
	rm "$R/data/meter/segments.json"
	run_code 1 meter report --json --until "@$until"
}

@test "meter: a segment with unacknowledged entries stays while billing is down; it goes after the acks and the retention" {
	receiver_start --down-file "$R/down"
	touch "$R/down"
	vm_start a c1 t1
	vm_start b c2 t2
	export UNKEY_METALD_METER_LEDGER_SEGMENT=4K UNKEY_METALD_METER_LEDGER_KEEP=1s
	meter_start --billing-endpoint "$ENDPOINT" -v
	wait_for 20 has_segments 4
	sleep 1.5 # older than the retention, but not acknowledged: nothing may go
	wait_for 10 has_segments 5
	first="$R/data/meter/ledger.00000000000000000000.jsonl"
	[ -e "$first" ]
	[ "$(jq -s '[.[] | select(.outcome == "ok" and .body.vmId)] | length' "$R/billing.log")" -eq 0 ]
	run_code 0 meter prom
	[[ "$output" == *'metald_meter_unacknowledged_entries{vm="a",customer="c1",tenant="t1"} '[1-9]* ]]
	# billing back: everything is delivered, then the acknowledged segments age out
	rm "$R/down"
	wait_for 20 test ! -e "$first"
	end_with_all_acked
	grep -q 'removed .*acknowledged and older than the retention' "$R/meter.err"
	# what is left is whole and starts with its segment entry
	head -n1 "$(segments | head -n1 || echo "$R/data/meter/ledger.jsonl")" | jq -e '.type == "segment"'
	ledger_whole
	# billing got every entry of every VM (the removed segments' too), in the end the exact counters
	for v in a b; do
		got=$(jq -s -r --arg v "$v" '[.[] | select(.outcome == "ok" and .method == "SendMetricsBatch" and .body.vmId == $v) |
			.body.metrics[].cpuTimeNanos | tonumber] | max' "$R/billing.log")
		[ "$got" -eq "$(cg_cpu "$v")" ]
		last=$(ledger | jq -s --arg v "$v" '[.[] | select(.vm == $v)] | .[-1].n')
		jq -s -e --arg v "$v" --argjson last "$last" '[.[] | select(.outcome == "ok" and .body.vmId == $v) |
			if .method == "SendMetricsBatch" then .body.metrics[].recordId else .body.batchId end |
			split("/")[1] | tonumber] | unique == [range(1; $last + 1)]' "$R/billing.log"
	done
	# prom still knows the VMs (their state is in the first remaining file's segment entry)
	run_code 0 meter prom
	[[ "$output" == *'metald_vm_running{vm="a",customer="c1",tenant="t1"} 0'* ]]
	# without a checkpoint a start recovers from the remaining files alone: both VMs are known to
	# have stopped (their targets are still there), so nothing is written again
	lines=$(ledger | wc -l)
	rm "$R/data/meter/state.json"
	meter_start --billing off
	sleep 1
	meter_stop
	[ "$(ledger | wc -l)" -eq "$lines" ]
}

@test "meter: kill -9 at every step of a rotation (METALD_FAULT), then a restart: nothing lost, nothing twice" {
	vm_start a
	export UNKEY_METALD_METER_LEDGER_SEGMENT=4K
	for step in new sealed renamed; do
		n=$(n_segments)
		METALD_FAULT=meter-rotate:$step meter_start --billing off
		rc=0
		wait "$MPID" || rc=$?
		MPID=
		[ "$rc" -eq 137 ] # killed in the rotation
		case $step in
		new) [ -e "$R/data/meter/ledger.jsonl.new" ] && [ -e "$R/data/meter/ledger.jsonl" ] ;;
		sealed) [ -e "$R/data/meter/ledger.jsonl.new" ] && [ ! -e "$R/data/meter/ledger.jsonl" ] ;;
		renamed) [ ! -e "$R/data/meter/ledger.jsonl.new" ] ;;
		esac
	done
	meter_start --billing off
	wait_for 20 has_segments 4
	vm_kill a
	wait_for 10 has_stop a
	meter_stop
	grep -q 'removing `ledger.jsonl.new` of a rotation a crash interrupted' "$R/meter.err"
	grep -q 'finishing a rotation a crash interrupted' "$R/meter.err"
	[ ! -e "$R/data/meter/ledger.jsonl.new" ]
	ledger_whole
	[ "$(ledger | jq -s '.[0].seq')" -eq 1 ]
	[ "$(ledger_cpu a)" -eq "$(cg_cpu a)" ]
	[ "$(n_type a gap)" -eq 3 ]
}
