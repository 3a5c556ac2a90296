#!/usr/bin/env bats
# metald-boot: the Firecracker driver against fc-standin (a test double of Firecracker's API; the
# real binary is used instead when `firecracker` and a working /dev/kvm exist), and the QEMU driver
# with real guests (the test guest, TCG where KVM cannot run Linux guests).

load helpers/common

STANDIN="$METALD_TOP/t/helpers/fc-standin"

setup() {
	leak_snapshot
	T=$BATS_TEST_TMPDIR
	PIDS=()
	touch "$T/vmlinux" "$T/initrd" "$T/root.ext4" "$T/data.img"
	# Firecracker: the stand-in by default; the real one where it can run a guest (then the call
	# log assertions, which only the stand-in can record, are left out by fc_is_standin, and the
	# test guest's files replace the empty ones).
	FC_KIND=standin
	if [ "${METALD_FC_STANDIN:-0}" != 1 ] && command -v firecracker >/dev/null 2>&1 && [ -w /dev/kvm ]; then
		guest
		if [ "$(metald-boot accel --kernel "$KERNEL" --json | jq -r .accel)" = kvm ]; then
			FC_KIND=real
			ln -sf "$KERNEL" "$T/vmlinux"
			ln -sf "$INITRD" "$T/initrd"
			cp "$ROOTFS" "$T/root.ext4"
		fi
	fi
}

teardown() {
	local p
	# the VMMs this test started (most tests leave one running for teardown to stop)
	for p in "${PIDS[@]}"; do
		kill -9 "$p" 2>/dev/null || true
		wait "$p" 2>/dev/null || true
	done
	[ -z "${NETNS_MADE:-}" ] || ip netns del "$NETNS_MADE" 2>/dev/null || true
	# leak_check compares every process on the machine: on a shared development machine other
	# people's QEMUs and probes come and go, so it runs where the suite has the machine to
	# itself (CI, METALD_REQUIRE_ALL=1).
	if [ "${METALD_REQUIRE_ALL:-0}" = 1 ]; then
		leak_check
	fi
}

fc_is_standin() { [ "$FC_KIND" = standin ]; }

# fc_up [stand-in options]: start a Firecracker API server on $T/api.sock, calls in $T/calls.
fc_up() {
	rm -f "$T/api.sock" "$T/calls"
	if fc_is_standin; then
		"$STANDIN" --api-sock "$T/api.sock" --calls "$T/calls" "$@" 2>"$T/fc.err" &
	else
		firecracker --api-sock "$T/api.sock" 2>"$T/fc.err" &
	fi
	FC_PID=$!
	PIDS+=("$FC_PID")
}

# Method and path of every request, one per line: "PUT /drives/rootfs".
calls() { jq -r 'select(.method) | "\(.method) \(.path)"' "$T/calls"; }
# The body of the first request to PATH (compact JSON).
body_of() { jq -c --arg p "$1" 'select(.path == $p and .method != "GET") | .body' "$T/calls" | head -n 1; }

cfg_min() {
	cat >"$T/cfg.json" <<EOF
{"cpu":{"vcpu_count":1},"memory":{"size_bytes":134217728},
 "boot":{"kernel_path":"$T/vmlinux","kernel_args":"console=ttyS0 reboot=k panic=1"},
 "storage":[{"path":"$T/root.ext4"}]}
EOF
}

cfg_full() {
	cat >"$T/cfg.json" <<EOF
{"vmId":"ignored","customerId":"c1","config":{
 "cpu":{"vcpuCount":"2"},"memory":{"sizeBytes":"536870912"},
 "boot":{"kernelPath":"$T/vmlinux","initrdPath":"$T/initrd","kernelArgs":"console=ttyS0",
         "bootOptions":{"vsock_cid":"3","vsock_uds_path":"$T/v.sock","entropy":"true","balloon_mib":"64",
                        "balloon_deflate_on_oom":"true","mmds_version":"V2","mmds_data":"{\"k\":\"v\"}"}},
 "storage":[{"id":"data","path":"$T/data.img","readOnly":true,"options":{"bandwidth":"1M","ops":"100"}},
            {"id":"root","path":"$T/root.ext4","isRootDevice":true}],
 "network":[{"id":"eth0","tapDevice":"tapcfg","macAddress":"02:00:00:00:00:09",
             "rxRateLimit":{"bandwidth":"1048576","refillTime":500,"burst":4096}},
            {"id":"eth1","tapDevice":"tap2"}]}}
EOF
}

net_json() {
	cat >"$T/net.json" <<'EOF'
{"id":"vm1","tenant":"t1","netns":"/run/netns/metald-vm1","tap":"tapnet","mac":"02:aa:00:00:00:01",
 "host_link":"mv-x","kernel_args":"ip=10.9.0.2::10.9.0.1:255.255.255.0::eth0:off metald.ipv6=fd00::2/64",
 "rate_limit":{"rx":{"bandwidth":{"size":1000,"refill_time":100}},"tx":{"ops":{"size":10,"refill_time":1000}}}}
EOF
}

boot_fc() { # extra metald-boot start options
	run_code 0 metald-boot start --vmm firecracker --socket "$T/api.sock" --config "$T/cfg.json" --timeout 10s "$@"
}

# ---------------------------------------------------------------- Firecracker: boot sequences

@test "firecracker: minimal config boots with the exact request sequence" {
	cfg_min
	fc_up
	boot_fc --json
	[ "$(echo "$output" | jq -r .state)" = VM_STATE_RUNNING ]
	[ "$(echo "$output" | jq -r .pid)" = "$FC_PID" ]
	fc_is_standin || return 0
	[ "$(calls)" = "GET /version
GET /
PUT /machine-config
PUT /boot-source
PUT /drives/rootfs
PUT /actions
GET /" ]
	[ "$(body_of /machine-config)" = '{"vcpu_count":1,"mem_size_mib":128,"smt":false}' ]
	[ "$(body_of /boot-source)" = "{\"kernel_image_path\":\"$T/vmlinux\",\"boot_args\":\"console=ttyS0 reboot=k panic=1\"}" ]
	[ "$(body_of /drives/rootfs)" = "{\"drive_id\":\"rootfs\",\"path_on_host\":\"$T/root.ext4\",\"is_root_device\":true,\"is_read_only\":false}" ]
	[ "$(body_of /actions)" = '{"action_type":"InstanceStart"}' ]
	# every answer was a success
	[ -z "$(jq -r 'select(.status >= 400)' "$T/calls")" ]
	# the config can come on standard input
	fc_up
	run_code 0 metald-boot start --vmm firecracker --socket "$T/api.sock" --config - --timeout 10s <"$T/cfg.json"
}

@test "firecracker: full config (camelCase request, two disks, two NICs, logger, metrics, serial, vsock, entropy, balloon, MMDS)" {
	cfg_full
	fc_up
	boot_fc --log "$T/fc.log" --log-level Info --metrics "$T/metrics" --serial "$T/serial"
	fc_is_standin || return 0
	[ "$(calls)" = "GET /version
GET /
PUT /logger
PUT /metrics
PUT /machine-config
PUT /boot-source
PUT /drives/data
PUT /drives/root
PUT /network-interfaces/eth0
PUT /network-interfaces/eth1
PUT /vsock
PUT /entropy
PUT /balloon
PUT /mmds/config
PUT /mmds
PUT /serial
PUT /actions
GET /" ]
	[ "$(body_of /logger)" = "{\"log_path\":\"$T/fc.log\",\"level\":\"Info\",\"show_level\":true}" ]
	[ "$(body_of /metrics)" = "{\"metrics_path\":\"$T/metrics\"}" ]
	[ "$(body_of /machine-config)" = '{"vcpu_count":2,"mem_size_mib":512,"smt":false}' ]
	[ "$(body_of /boot-source)" = "{\"kernel_image_path\":\"$T/vmlinux\",\"boot_args\":\"console=ttyS0\",\"initrd_path\":\"$T/initrd\"}" ]
	[ "$(body_of /drives/data)" = "{\"drive_id\":\"data\",\"path_on_host\":\"$T/data.img\",\"is_root_device\":false,\"is_read_only\":true,\"rate_limiter\":{\"bandwidth\":{\"size\":1048576,\"refill_time\":1000},\"ops\":{\"size\":100,\"refill_time\":1000}}}" ]
	[ "$(body_of /drives/root)" = "{\"drive_id\":\"root\",\"path_on_host\":\"$T/root.ext4\",\"is_root_device\":true,\"is_read_only\":false}" ]
	# RateLimit{bandwidth B/s, refill_time ms, burst B} -> TokenBucket{size per refill, refill_time, one_time_burst}
	[ "$(body_of /network-interfaces/eth0)" = '{"iface_id":"eth0","host_dev_name":"tapcfg","guest_mac":"02:00:00:00:00:09","rx_rate_limiter":{"bandwidth":{"size":524288,"refill_time":500,"one_time_burst":4096}}}' ]
	[ "$(body_of /network-interfaces/eth1)" = '{"iface_id":"eth1","host_dev_name":"tap2"}' ]
	[ "$(body_of /vsock)" = "{\"guest_cid\":3,\"uds_path\":\"$T/v.sock\"}" ]
	[ "$(body_of /entropy)" = '{}' ]
	[ "$(body_of /balloon)" = '{"amount_mib":64,"deflate_on_oom":true,"stats_polling_interval_s":0}' ]
	[ "$(body_of /mmds/config)" = '{"network_interfaces":["eth0"],"version":"V2"}' ]
	[ "$(body_of /mmds)" = '{"k":"v"}' ]
	[ "$(body_of /serial)" = "{\"serial_out_path\":\"$T/serial\"}" ]
	# Firecracker writes a metrics line when the VM is built
	[ "$(wc -l <"$T/metrics")" -ge 1 ]
}

@test "firecracker: --net supplies the tap, MAC, rate limiters and ip= arguments" {
	cfg_min
	net_json
	fc_up
	boot_fc --net "$T/net.json"
	fc_is_standin || return 0
	[ "$(body_of /boot-source)" = "{\"kernel_image_path\":\"$T/vmlinux\",\"boot_args\":\"console=ttyS0 reboot=k panic=1 ip=10.9.0.2::10.9.0.1:255.255.255.0::eth0:off metald.ipv6=fd00::2/64\"}" ]
	[ "$(body_of /network-interfaces/eth0)" = '{"iface_id":"eth0","host_dev_name":"tapnet","guest_mac":"02:aa:00:00:00:01","rx_rate_limiter":{"bandwidth":{"size":1000,"refill_time":100}},"tx_rate_limiter":{"ops":{"size":10,"refill_time":1000}}}' ]
}

@test "firecracker: start waits for a socket that appears later (inotify), and times out on one that never does" {
	cfg_min
	rm -f "$T/api.sock"
	( sleep 0.4; exec "$STANDIN" --api-sock "$T/api.sock" --calls "$T/calls" ) &
	PIDS+=("$!")
	run_code 0 metald-boot start --vmm firecracker --socket "$T/api.sock" --config "$T/cfg.json" --timeout 10s --json
	[ "$(echo "$output" | jq -r .state)" = VM_STATE_RUNNING ]
	# a directory that does not exist yet is watched through its parent
	run_code 124 metald-boot start --vmm firecracker --socket "$T/later/api.sock" --config "$T/cfg.json" --timeout 300ms
	[[ "$output" == *"metald-boot: firecracker: socket \`$T/later/api.sock\`: not accepting connections after 0.3s"* ]]
}

# ---------------------------------------------------------------- Firecracker: errors

@test "firecracker: a missing kernel fails at PUT /boot-source with Firecracker's fault_message verbatim" {
	[ "$FC_KIND" = standin ] || skip "the stand-in's exact fault text"
	cfg_min
	rm "$T/vmlinux"
	fc_up
	run_code 1 metald-boot start --vmm firecracker --socket "$T/api.sock" --config "$T/cfg.json"
	[ "$output" = "metald-boot: start: PUT /boot-source: Firecracker answered 400: The kernel file cannot be opened: No such file or directory (os error 2)" ]
	# nothing after the failing request
	[ "$(calls | tail -n 1)" = "PUT /boot-source" ]
}

@test "firecracker: a tap name Firecracker refuses is reported with the endpoint" {
	[ "$FC_KIND" = standin ] || skip "the stand-in's exact fault text"
	cfg_min
	net_json
	sed -i 's/"tapnet"/"tap-name-too-long-x"/' "$T/net.json"
	fc_up
	run_code 1 metald-boot start --vmm firecracker --socket "$T/api.sock" --config "$T/cfg.json" --net "$T/net.json"
	[ "$output" = "metald-boot: start: PUT /network-interfaces/eth0: Firecracker answered 400: Could not create the network device: Open tap device failed: Invalid interface name \`tap-name-too-long-x\`" ]
}

@test "firecracker: a bad config is exit 2 naming the field, before any request" {
	cfg_min
	sed -i 's/"vcpu_count":1/"vcpu_count":0/' "$T/cfg.json"
	fc_up
	run_code 2 metald-boot start --vmm firecracker --socket "$T/api.sock" --config "$T/cfg.json"
	[ "$output" = "metald-boot: \`$T/cfg.json\`: config.cpu.vcpu_count: must be > 0" ]
	run_code 2 metald-boot start --vmm firecracker --socket "$T/api.sock" --config /dev/null
	[[ "$output" == *"invalid JSON"* ]]
	run_code 3 metald-boot start --vmm firecracker --socket "$T/api.sock" --config "$T/nope.json"
	[[ "$output" == *"config \`$T/nope.json\`: No such file or directory"* ]]
	echo '{"cpu":{"vcpu_count":33},"memory":{"size_bytes":134217728},"boot":{"kernel_path":"/k"},"storage":[{"path":"/r"}]}' >"$T/c33.json"
	run_code 2 metald-boot start --vmm firecracker --socket "$T/api.sock" --config "$T/c33.json"
	[[ "$output" == *"config.cpu.vcpu_count: Firecracker supports 1..32 vCPUs, got 33"* ]]
	echo '{"cpu":{"vcpu_count":1},"memory":{"size_bytes":134217728},"boot":{"kernel_path":"/k","boot_options":{"balloon_mib":"x"}},"storage":[{"path":"/r"}]}' >"$T/cb.json"
	run_code 2 metald-boot start --vmm firecracker --socket "$T/api.sock" --config "$T/cb.json"
	[[ "$output" == *'config.boot.boot_options["balloon_mib"]: `x`: not a whole number'* ]]
	if fc_is_standin; then
		wait_for 5 test -S "$T/api.sock"
		[ ! -s "$T/calls" ] || [ -z "$(jq -r 'select(.method == "PUT")' "$T/calls")" ]
	fi
}

@test "firecracker: an unsupported Firecracker version is refused (exit 5)" {
	fc_is_standin || skip "needs the stand-in to fake a version"
	cfg_min
	fc_up --version 2.0.0
	run_code 5 metald-boot start --vmm firecracker --socket "$T/api.sock" --config "$T/cfg.json"
	[ "$output" = "metald-boot: Firecracker 2.0.0 is not supported: this driver speaks the API of Firecracker 1.x" ]
	[ "$(calls)" = "GET /version" ]
}

@test "firecracker: dead socket is exit 3, a hung endpoint exit 124" {
	cfg_min
	run_code 3 metald-boot status --vmm firecracker --socket "$T/api.sock"
	[ "$output" = "metald-boot: firecracker: socket \`$T/api.sock\`: no such socket (is the VMM running?)" ]
	# a socket file nobody listens on
	python3 -c 'import socket,sys; s=socket.socket(socket.AF_UNIX); s.bind(sys.argv[1])' "$T/api.sock"
	run_code 3 metald-boot pause --vmm firecracker --socket "$T/api.sock"
	[[ "$output" == *"connection refused"* ]]
	fc_is_standin || return 0
	rm -f "$T/api.sock"
	fc_up --hang PUT:/boot-source
	run_code 124 metald-boot start --vmm firecracker --socket "$T/api.sock" --config "$T/cfg.json" --timeout 1s
	[ "$output" = "metald-boot: start: PUT /boot-source: no answer within 0.997s" ] || [[ "$output" == *"PUT /boot-source: no answer within"* ]]
}

@test "firecracker: wrong states are exit 4 (pause/flush/reboot before start, start twice, snapshot while running)" {
	cfg_min
	fc_up
	wait_for 5 test -S "$T/api.sock"
	run_code 4 metald-boot pause --vmm firecracker --socket "$T/api.sock"
	[ "$output" = "metald-boot: pause: pause: the VM is not started (state VM_STATE_CREATED)" ]
	run_code 4 metald-boot flush-metrics --vmm firecracker --socket "$T/api.sock"
	run_code 4 metald-boot reboot --vmm firecracker --socket "$T/api.sock"
	boot_fc
	run_code 4 metald-boot start --vmm firecracker --socket "$T/api.sock" --config "$T/cfg.json"
	[ "$output" = "metald-boot: start: firecracker \`$T/api.sock\` is already started (state Running)" ]
	run_code 4 metald-boot snapshot --vmm firecracker --socket "$T/api.sock" --snapshot "$T/s" --mem "$T/m"
	[ "$output" = "metald-boot: snapshot: snapshot: the VM must be paused first (state VM_STATE_RUNNING)" ]
	run_code 2 metald-boot snapshot --vmm firecracker --socket "$T/api.sock" --snapshot "$T/s"
	[ "$output" = "metald-boot: snapshot: --mem is required" ]
}

# ---------------------------------------------------------------- Firecracker: control

@test "firecracker: pause, resume, status, flush-metrics" {
	cfg_min
	fc_up
	boot_fc --metrics "$T/metrics"
	run_code 0 metald-boot pause --vmm firecracker --socket "$T/api.sock" --json
	[ "$(echo "$output" | jq -r .state)" = VM_STATE_PAUSED ]
	run_code 0 metald-boot pause --vmm firecracker --socket "$T/api.sock" --json
	[ "$(echo "$output" | jq -r .state)" = VM_STATE_PAUSED ]
	run_code 0 metald-boot resume --vmm firecracker --socket "$T/api.sock" --json
	[ "$(echo "$output" | jq -r .state)" = VM_STATE_RUNNING ]
	run_code 0 metald-boot status --vmm firecracker --socket "$T/api.sock" --full --json
	[ "$(echo "$output" | jq -r .vmm)" = firecracker ]
	[ "$(echo "$output" | jq -r .pid)" = "$FC_PID" ]
	[ "$(echo "$output" | jq -r '.config["machine-config"].mem_size_mib')" = 128 ]
	run_code 0 metald-boot status --vmm firecracker --socket "$T/api.sock"
	[[ "$output" == *"state         VM_STATE_RUNNING"* ]]
	[[ "$output" == *"drives        rootfs"* ]]
	lines_before=$(wc -l <"$T/metrics")
	run_code 0 metald-boot flush-metrics --vmm firecracker --socket "$T/api.sock"
	[ "$(wc -l <"$T/metrics")" -eq $((lines_before + 1)) ]
	fc_is_standin || return 0
	[ "$(jq -c 'select(.path == "/vm") | .body' "$T/calls" | tr '\n' ' ')" = '{"state":"Paused"} {"state":"Paused"} {"state":"Resumed"} ' ]
}

@test "firecracker: graceful shutdown flushes metrics, sends Ctrl-Alt-Del and waits for the exit" {
	cfg_min
	fc_up
	boot_fc --metrics "$T/metrics"
	metald-boot pause --vmm firecracker --socket "$T/api.sock" >/dev/null
	run_code 0 metald-boot shutdown --vmm firecracker --socket "$T/api.sock" --timeout 10s --json
	[ "$(echo "$output" | jq -r .stopped)" = ctrl-alt-del ]
	! kill -0 "$FC_PID" 2>/dev/null
	fc_is_standin || return 0
	# flush first, resume (a paused guest cannot see the keys), then the keys
	[ "$(jq -r 'select(.method == "PUT" or .method == "PATCH") | "\(.path) \(.body.action_type // .body.state // "")"' "$T/calls" | tail -n 3)" = "/actions FlushMetrics
/vm Resumed
/actions SendCtrlAltDel" ]
	[ "$(jq -r 'select(.event) | .value' "$T/calls")" = 0 ]
	# lines: InstanceStart, FlushMetrics, the exit's own
	[ "$(wc -l <"$T/metrics")" -eq 3 ]
}

@test "firecracker: a guest that ignores Ctrl-Alt-Del: timeout 124, process stopped with SIGHUP (metrics kept)" {
	fc_is_standin || skip "needs a guest that ignores Ctrl-Alt-Del"
	cfg_min
	fc_up --ignore-ctrl-alt-del
	boot_fc --metrics "$T/metrics"
	run_code 124 metald-boot shutdown --vmm firecracker --socket "$T/api.sock" --timeout 300ms
	[ "$output" = "metald-boot: shutdown: shutdown: the guest did not stop within 0.3s after SendCtrlAltDel; Firecracker was killed" ]
	! kill -0 "$FC_PID" 2>/dev/null
	[ "$(jq -r 'select(.event) | .value' "$T/calls")" = 156 ]
}

@test "firecracker: shutdown --force flushes and stops with SIGHUP at once; a VM never started is killed" {
	cfg_min
	fc_up
	boot_fc
	run_code 0 metald-boot shutdown --vmm firecracker --socket "$T/api.sock" --force --json
	[ "$(echo "$output" | jq -r .stopped)" = sighup ]
	! kill -0 "$FC_PID" 2>/dev/null
	if fc_is_standin; then
		[ "$(jq -r 'select(.event) | .value' "$T/calls")" = 156 ]
		! grep -q SendCtrlAltDel "$T/calls"
	fi
	fc_up
	wait_for 5 test -S "$T/api.sock"
	run_code 0 metald-boot shutdown --vmm firecracker --socket "$T/api.sock" --json
	[ "$(echo "$output" | jq -r .stopped)" = killed-before-start ]
	! kill -0 "$FC_PID" 2>/dev/null
}

@test "firecracker: reboot ends the process and says to start a new one" {
	cfg_min
	fc_up
	boot_fc
	run_code 0 metald-boot reboot --vmm firecracker --socket "$T/api.sock" --json
	[ "$(echo "$output" | jq -r .exited)" = true ]
	[[ "$(echo "$output" | jq -r .next)" == *"start a new Firecracker process"* ]]
	! kill -0 "$FC_PID" 2>/dev/null
}

@test "firecracker: snapshot a paused VM, restore it in a fresh process" {
	fc_is_standin || skip "snapshot files of the stand-in"
	cfg_min
	fc_up
	boot_fc
	metald-boot pause --vmm firecracker --socket "$T/api.sock" >/dev/null
	run_code 0 metald-boot snapshot --vmm firecracker --socket "$T/api.sock" --snapshot "$T/snap" --mem "$T/mem"
	[ -s "$T/snap" ] && [ -e "$T/mem" ]
	[ "$(body_of /snapshot/create)" = "{\"snapshot_path\":\"$T/snap\",\"mem_file_path\":\"$T/mem\",\"snapshot_type\":\"Full\"}" ]
	run_code 1 metald-boot snapshot --vmm firecracker --socket "$T/api.sock" --snapshot "$T/snap" --mem "$T/mem" --diff
	[ "$output" = "metald-boot: snapshot: PUT /snapshot/create: Firecracker answered 400: Diff snapshots are not allowed on uVMs with dirty page tracking disabled." ]
	kill -9 "$FC_PID"
	fc_up
	wait_for 5 test -S "$T/api.sock"
	run_code 0 metald-boot restore --vmm firecracker --socket "$T/api.sock" --snapshot "$T/snap" --mem "$T/mem" --resume --json
	[ "$(echo "$output" | jq -r .state)" = VM_STATE_RUNNING ]
	[ "$(body_of /snapshot/load)" = "{\"snapshot_path\":\"$T/snap\",\"mem_backend\":{\"backend_type\":\"File\",\"backend_path\":\"$T/mem\"},\"resume_vm\":true}" ]
	run_code 4 metald-boot restore --vmm firecracker --socket "$T/api.sock" --snapshot "$T/snap" --mem "$T/mem"
	run_code 2 metald-boot snapshot --vmm qemu --socket "$T/api.sock" --snapshot "$T/snap" --mem "$T/mem"
}

# ---------------------------------------------------------------- the test double itself

@test "firecracker: libcurl is not linked, only loaded for the API; without it: exit 5 in one line, QEMU commands unaffected" {
	require_root
	require_cmd unshare ldconfig
	run_code 0 ldd "$MD_BIN/metald-boot"
	[[ "$output" != *libcurl* ]]
	cfg_min
	fc_up
	run_code 5 without_libcurl metald-boot start --vmm firecracker --socket "$T/api.sock" --config "$T/cfg.json" --timeout 10s
	[ "${#lines[@]}" -eq 1 ]
	[[ "$output" =~ ^metald-boot:\ libcurl:\ cannot\ load\ libcurl\.so\.4:\ .+\ \(install\ libcurl4\)$ ]]
	# where it loads, the same boot works (dlopen on first use)
	boot_fc --json
	[ "$(echo "$output" | jq -r .state)" = VM_STATE_RUNNING ]
	# commands that make no HTTP request never load it
	run_code 0 without_libcurl metald-boot --version
	run_code 0 without_libcurl metald-boot argv --vmm qemu --config "$T/cfg.json" --qmp "$T/q" --accel tcg
	run_code 0 without_libcurl metald-boot argv --vmm firecracker --socket "$T/api.sock"
	run_code 3 without_libcurl metald-boot status --vmm qemu --socket "$T/no.sock"
	[[ "$output" == *"no such socket"* ]]
}

@test "fc-standin enforces the API: ids, required fields, types, unknown fields, pre/post boot, InstanceStart once" {
	fc_is_standin || skip "checks the stand-in"
	fc_up
	wait_for 5 test -S "$T/api.sock"
	api() { curl -s --unix-socket "$T/api.sock" -X "$1" "http://localhost$2" ${3:+-H 'Content-Type: application/json' -d "$3"} -w ' %{http_code}'; }
	[ "$(api PUT /drives/a "{\"drive_id\":\"b\",\"is_root_device\":false,\"path_on_host\":\"$T/data.img\",\"is_read_only\":false}")" = '{"fault_message": "The id from the path [a] does not match the id from the body [b]!"} 400' ]
	[[ "$(api PUT /drives/a-b '{"drive_id":"a-b","is_root_device":false}')" == *"Invalid ID"*" 400" ]]
	[[ "$(api PUT /machine-config '{"vcpu_count":1}')" == *'missing field `mem_size_mib`'*" 400" ]]
	[[ "$(api PUT /machine-config '{"vcpu_count":"1","mem_size_mib":128}')" == *'invalid type for field `vcpu_count`'*" 400" ]]
	[[ "$(api PUT /machine-config '{"vcpu_count":1,"mem_size_mib":128,"foo":1}')" == *'unknown field `foo`'*" 400" ]]
	[[ "$(api PUT /machine-config '{"vcpu_count":33,"mem_size_mib":128}')" == *"vCPU number is invalid"*" 400" ]]
	[[ "$(api PUT /machine-config '')" == *"Empty PUT request."*" 400" ]]
	[[ "$(api GET /nope)" == *"Invalid request method and/or path: GET /nope."*" 400" ]]
	[[ "$(api PUT /actions '{"action_type":"InstanceStart"}')" == *"without kernel configuration"*" 400" ]]
	[[ "$(api PUT /actions '{"action_type":"FlushMetrics"}')" == *"not supported before starting"*" 400" ]]
	[[ "$(api PATCH /vm '{"state":"Paused"}')" == *"not supported before starting"*" 400" ]]
	[ "$(api PUT /machine-config '{"vcpu_count":2,"mem_size_mib":256}')" = " 204" ]
	[ "$(api PUT /boot-source "{\"kernel_image_path\":\"$T/vmlinux\"}")" = " 204" ]
	[ "$(api PUT /drives/r "{\"drive_id\":\"r\",\"is_root_device\":true,\"path_on_host\":\"$T/root.ext4\",\"is_read_only\":false}")" = " 204" ]
	[[ "$(api PUT /drives/s "{\"drive_id\":\"s\",\"is_root_device\":true,\"path_on_host\":\"$T/data.img\",\"is_read_only\":false}")" == *"A root block device already exists!"*" 400" ]]
	[[ "$(api PUT /network-interfaces/e '{"iface_id":"e","host_dev_name":"t","guest_mac":"zz"}')" == *"invalid MAC"*" 400" ]]
	[[ "$(api PUT /network-interfaces/e '{"iface_id":"e","host_dev_name":"t","rx_rate_limiter":{"bandwidth":{"size":1}}}')" == *'missing field `refill_time`'*" 400" ]]
	[ "$(api PUT /actions '{"action_type":"InstanceStart"}')" = " 204" ]
	[[ "$(api PUT /actions '{"action_type":"InstanceStart"}')" == *"not supported after starting"*" 400" ]]
	[[ "$(api PUT /machine-config '{"vcpu_count":1,"mem_size_mib":128}')" == *"not supported after starting"*" 400" ]]
	[[ "$(api PUT /actions '{"action_type":"Reboot"}')" == *'unknown variant `Reboot`'*" 400" ]]
	[[ "$(api PUT /metrics "{\"metrics_path\":\"$T/m\"}")" == *"not supported after starting"*" 400" ]]
	[[ "$(api GET /)" == *'"state": "Running"'*" 200" ]]
	[[ "$(curl -s --unix-socket "$T/api.sock" -X GET http://localhost/ -d x -w ' %{http_code}')" == *"GET request cannot have a body."*" 400" ]]
	# every request was recorded, the failures with their fault
	[ "$(jq -r 'select(.status == 400) | .fault' "$T/calls" | wc -l)" -ge 15 ]
	# a second stand-in on the same socket refuses to start, as Firecracker does
	run "$STANDIN" --api-sock "$T/api.sock"
	[ "$status" -eq 1 ]
	[[ "$output" == *"Check that it is not already used."* ]]
}

# ---------------------------------------------------------------- QEMU with real guests

guest() {
	require_cmd qemu-system-x86_64 jq
	G="$METALD_TOP/$METALD_BUILD/../build/guest"
	G="$METALD_TOP/build/guest"
	GJSON=$(sh "$METALD_TOP/share/metald/guest/build-guest" --out "$G" 2>"$T/guest.err") || {
		cat "$T/guest.err" >&2
		return 1
	}
	KERNEL=$(echo "$GJSON" | jq -r .kernel)
	INITRD=$(echo "$GJSON" | jq -r .initrd)
	ROOTFS=$(echo "$GJSON" | jq -r .rootfs)
	CMDLINE=$(echo "$GJSON" | jq -r .cmdline)
}

# qcfg "extra kernel args" [storage JSON]
qcfg() {
	local storage=${2:-"[{\"id\":\"data\",\"path\":\"$T/data.img\"}]"}
	truncate -s 8M "$T/data.img"
	cat >"$T/qcfg.json" <<EOF
{"cpu":{"vcpu_count":1},"memory":{"size_bytes":268435456},
 "boot":{"kernel_path":"$KERNEL","initrd_path":"$INITRD","kernel_args":"$CMDLINE root=none${1:+ $1}"},
 "storage":$storage}
EOF
}

# Launch QEMU from metald-boot's argv (as metald-jail would exec it), paused (-S).
qemu_up() {
	rm -f "$T/qmp.sock" "$T/serial"
	metald-boot argv --vmm qemu --config "$T/qcfg.json" --qmp "$T/qmp.sock" --serial "$T/serial" \
		--accel "${ACCEL:-tcg}" --root "$T/root" --null >"$T/argv"
	local args
	mapfile -d '' args <"$T/argv"
	"${args[@]}" >"$T/qemu.out" 2>&1 &
	QPID=$!
	PIDS+=("$QPID")
}

ready_count() { grep -c '^METALD-GUEST-READY' "$T/serial" 2>/dev/null || true; }
ready_ge() { [ "$(ready_count)" -ge "$1" ]; }
ticks_gt() { [ "$(grep -c '^tick' "$T/serial")" -gt "$1" ]; }

@test "qemu: argv for a config: microvm, -nodefaults, -S, QMP, serial file, virtio-blk root first, virtio-net on the tap" {
	guest
	qcfg "" "[{\"id\":\"data\",\"path\":\"$T/data.img\",\"read_only\":true},{\"id\":\"root\",\"path\":\"$T/root.ext4\",\"is_root_device\":true}]"
	net_json
	run_code 0 metald-boot argv --vmm qemu --config "$T/qcfg.json" --net "$T/net.json" --qmp "$T/q,s" --serial "$T/serial" --accel tcg --name vm1 --json
	a=$(echo "$output" | jq -r 'join(" ")')
	[[ "$a" == *"/qemu-system-x86_64 -name guest=vm1,debug-threads=on -M microvm -accel tcg -smp 1 -m 256M -nodefaults -no-user-config -display none -S -qmp unix:$T/q,,s,server=on,wait=off -chardev file,id=serial0,path=$T/serial -serial chardev:serial0 -kernel $KERNEL -initrd $INITRD"* ]]
	[[ "$a" == *"-drive id=root,file=$T/root.ext4,format=raw,if=none,readonly=off -device virtio-blk-device,drive=root -drive id=data,file=$T/data.img,format=raw,if=none,readonly=on -device virtio-blk-device,drive=data -netdev tap,id=eth0,ifname=tapnet,script=no,downscript=no -device virtio-net-device,netdev=eth0,mac=02:aa:00:00:00:01" ]]
	[ "$(echo "$output" | jq -r '.[index("-append") + 1]')" = "$CMDLINE root=none ip=10.9.0.2::10.9.0.1:255.255.255.0::eth0:off metald.ipv6=fd00::2/64" ]
	# NUL-separated for exec chains, one per line otherwise
	run_code 0 metald-boot argv --vmm qemu --config "$T/qcfg.json" --qmp "$T/q" --accel tcg --null
	[ "$(metald-boot argv --vmm qemu --config "$T/qcfg.json" --qmp "$T/q" --accel tcg --null | tr '\0' '\n' | grep -c .)" = "$(metald-boot argv --vmm qemu --config "$T/qcfg.json" --qmp "$T/q" --accel tcg | grep -c .)" ]
	run_code 0 metald-boot argv --vmm firecracker --socket "$T/api.sock" --name vm1 --json
	[ "$(echo "$output" | jq -c .)" = "[\"firecracker\",\"--api-sock\",\"$T/api.sock\",\"--id\",\"vm1\"]" ]
}

@test "qemu: --accel auto probes whether KVM really runs a guest, and caches the verdict" {
	guest
	qcfg ""
	run_code 0 metald-boot accel --kernel "$KERNEL" --root "$T/root" --json
	verdict=$(echo "$output" | jq -r .accel)
	[ "$verdict" = kvm ] || [ "$verdict" = tcg ]
	[ -s "$T/root/run/qemu-accel.json" ]
	run_code 0 metald-boot accel --config "$T/qcfg.json" --root "$T/root" --json
	[ "$(echo "$output" | jq -r .accel)" = "$verdict" ]
	[[ "$(echo "$output" | jq -r .why)" == "cached verdict"* ]]
	run_code 0 metald-boot argv --vmm qemu --config "$T/qcfg.json" --qmp "$T/q" --root "$T/root" --json
	[ "$(echo "$output" | jq -r '.[index("-accel") + 1]')" = "$verdict" ]
	run_code 3 metald-boot accel --kernel "$T/nope"
}

@test "qemu: boot to the readiness line, pause stops the guest, resume continues, graceful shutdown" {
	guest
	qcfg "metald.run=\\\"while :; do echo tick; sleep 0.2; done\\\""
	qemu_up
	run_code 0 metald-boot start --vmm qemu --socket "$T/qmp.sock" --json
	[ "$(echo "$output" | jq -r .state)" = VM_STATE_RUNNING ]
	[ "$(echo "$output" | jq -r .pid)" = "$QPID" ]
	wait_for 60 grep -q '^METALD-GUEST-READY ipv4=none ipv6=none mac=none' "$T/serial"
	wait_for 30 grep -q '^tick' "$T/serial"
	run_code 0 metald-boot status --vmm qemu --socket "$T/qmp.sock" --json
	[ "$(echo "$output" | jq -r .vmm_state)" = running ]
	[ "$(echo "$output" | jq '.vcpu_threads | length')" = 1 ]
	[ "$(echo "$output" | jq -r '.disks[0].id')" = data ]
	run_code 0 metald-boot pause --vmm qemu --socket "$T/qmp.sock" --json
	[ "$(echo "$output" | jq -r .state)" = VM_STATE_PAUSED ]
	before=$(grep -c '^tick' "$T/serial")
	sleep 1.5
	[ "$(grep -c '^tick' "$T/serial")" -eq "$before" ]
	run_code 0 metald-boot status --vmm qemu --socket "$T/qmp.sock"
	[[ "$output" == *"VM_STATE_PAUSED"* ]]
	run_code 0 metald-boot resume --vmm qemu --socket "$T/qmp.sock" --json
	[ "$(echo "$output" | jq -r .state)" = VM_STATE_RUNNING ]
	wait_for 10 ticks_gt "$before"
	start=$(date +%s%N)
	run_code 0 metald-boot shutdown --vmm qemu --socket "$T/qmp.sock" --timeout 30s --json
	[ "$(echo "$output" | jq -r .stopped)" = powerdown ]
	[ $(( ($(date +%s%N) - start) / 1000000 )) -lt 30000 ]
	! kill -0 "$QPID" 2>/dev/null || { wait "$QPID"; true; }
	grep -q 'metald-guest: powering off' "$T/serial"
	run_code 3 metald-boot status --vmm qemu --socket "$T/qmp.sock"
}

@test "qemu: reboot resets the guest in place (a second readiness line, same process)" {
	guest
	qcfg ""
	qemu_up
	run_code 0 metald-boot start --vmm qemu --socket "$T/qmp.sock"
	wait_for 60 ready_ge 1
	run_code 0 metald-boot reboot --vmm qemu --socket "$T/qmp.sock" --json
	[ "$(echo "$output" | jq -r .state)" = VM_STATE_RUNNING ]
	wait_for 60 ready_ge 2
	kill -0 "$QPID"
	run_code 0 metald-boot shutdown --vmm qemu --socket "$T/qmp.sock" --force --json
	[ "$(echo "$output" | jq -r .stopped)" = quit ]
}

@test "qemu: a guest that ignores the power button: shutdown times out (124) and QEMU is stopped anyway" {
	guest
	qcfg "metald.run=\\\"killall acpid\\\""
	qemu_up
	run_code 0 metald-boot start --vmm qemu --socket "$T/qmp.sock"
	wait_for 60 grep -q '^METALD-GUEST-RUN-EXIT 0' "$T/serial"
	run_code 124 metald-boot shutdown --vmm qemu --socket "$T/qmp.sock" --timeout 2s
	[ "$output" = "metald-boot: shutdown: shutdown: the guest did not power off within 2s; QEMU was stopped with quit" ]
	wait_for 10 sh -c "! kill -0 $QPID 2>/dev/null"
}

@test "qemu: virtio-net on a tap with metald-net's JSON: the guest gets its addresses and answers ping" {
	require_root
	require_cmd ip ping
	guest
	local p ns args
	p=$(md_prefix)
	ns="${p}vm"
	ip netns add "$ns"
	NETNS_MADE=$ns
	ip -n "$ns" link set lo up
	ip -n "$ns" tuntap add "${p}t0" mode tap
	ip -n "$ns" addr add 10.99.0.1/24 dev "${p}t0"
	ip -n "$ns" link set "${p}t0" up
	printf '{"id":"vm1","tap":"%s","mac":"02:00:0a:63:00:02","kernel_args":"%s"}\n' "${p}t0" \
		"ip=10.99.0.2::10.99.0.1:255.255.255.0::eth0:off metald.ipv6=fd99::2/64" >"$T/net.json"
	qcfg ""
	rm -f "$T/qmp.sock" "$T/serial"
	metald-boot argv --vmm qemu --config "$T/qcfg.json" --net "$T/net.json" --qmp "$T/qmp.sock" \
		--serial "$T/serial" --accel "${ACCEL:-tcg}" --null >"$T/argv"
	mapfile -d '' args <"$T/argv"
	ip netns exec "$ns" "${args[@]}" >"$T/qemu.out" 2>&1 &
	QPID=$!
	PIDS+=("$QPID")
	run_code 0 metald-boot start --vmm qemu --socket "$T/qmp.sock" --timeout 30s
	wait_for 60 grep -q '^METALD-GUEST-READY ipv4=10.99.0.2/24 ipv6=fd99::2/64 mac=02:00:0a:63:00:02' "$T/serial"
	ip netns exec "$ns" ping -c 1 -W 5 10.99.0.2
	run_code 0 metald-boot shutdown --vmm qemu --socket "$T/qmp.sock" --timeout 30s
}

@test "qemu: a root ext4 disk and a data disk" {
	guest
	cp "$ROOTFS" "$T/root.ext4"
	truncate -s 8M "$T/data.img"
	cat >"$T/qcfg.json" <<EOF
{"cpu":{"vcpu_count":1},"memory":{"size_bytes":268435456},
 "boot":{"kernel_path":"$KERNEL","initrd_path":"$INITRD","kernel_args":"$CMDLINE metald.run=\\"cat /etc/metald/rootfs; grep -c vd /proc/partitions; grep ' / ' /proc/mounts\\" metald.poweroff=1"},
 "storage":[{"id":"data","path":"$T/data.img"},{"id":"root","path":"$T/root.ext4","is_root_device":true}]}
EOF
	qemu_up
	run_code 0 metald-boot start --vmm qemu --socket "$T/qmp.sock"
	wait_for 60 grep -q '^METALD-GUEST-RUN-EXIT' "$T/serial"
	tr -d '\r' <"$T/serial" >"$T/serial.txt"   # the console ends lines with CR LF
	grep -q '^ext4$' "$T/serial.txt"          # /etc/metald/rootfs exists only on the image
	grep -q '^2$' "$T/serial.txt"             # vda and vdb
	grep -q '^/dev/vda / ext4 rw' "$T/serial.txt"
	wait_for 30 sh -c "! kill -0 $QPID 2>/dev/null"
}

@test "qemu: missing kernel, bad config, dead socket, wrong state" {
	guest
	qcfg ""
	run_code 3 metald-boot argv --vmm qemu --config <(sed "s|$KERNEL|$T/no-kernel|" "$T/qcfg.json") --qmp "$T/q" --accel tcg
	[ "$output" = "metald-boot: config.boot.kernel_path \`$T/no-kernel\`: No such file or directory" ]
	run_code 2 metald-boot argv --vmm qemu --config <(sed 's/"size_bytes":268435456/"size_bytes":"lots"/' "$T/qcfg.json") --qmp "$T/q"
	[[ "$output" == *'config.memory.size_bytes: expected an int64, got string `lots`' ]]
	run_code 2 metald-boot argv --vmm qemu --config "$T/qcfg.json"
	[ "$output" = "metald-boot: --qmp: a QMP socket path is required for QEMU" ]
	run_code 2 metald-boot argv --config "$T/qcfg.json"
	[ "$output" = "metald-boot: argv: --vmm qemu|firecracker is required" ]
	run_code 2 metald-boot argv --vmm qemu --accel fast --config "$T/qcfg.json"
	run_code 3 metald-boot pause --vmm qemu --socket "$T/qmp.sock"
	[ "$output" = "metald-boot: qemu: socket \`$T/qmp.sock\`: no such socket (is the VMM running?)" ]
	qemu_up
	wait_for 10 test -S "$T/qmp.sock"
	run_code 4 metald-boot pause --vmm qemu --socket "$T/qmp.sock"
	[ "$output" = "metald-boot: pause: pause: the VM is not running (status prelaunch, VM_STATE_CREATED)" ]
	run_code 4 metald-boot reboot --vmm qemu --socket "$T/qmp.sock"
	run_code 0 metald-boot start --vmm qemu --socket "$T/qmp.sock"
	run_code 4 metald-boot start --vmm qemu --socket "$T/qmp.sock"
	[[ "$output" == *"QEMU is not waiting to start (status running, VM_STATE_RUNNING)"* ]]
	run_code 0 metald-boot shutdown --vmm qemu --socket "$T/qmp.sock" --force
	wait_for 10 sh -c "! kill -0 $QPID 2>/dev/null"
	run_code 3 metald-boot resume --vmm qemu --socket "$T/qmp.sock"
}

@test "metald-boot: --help, --version, unknown verb and option" {
	run_code 0 metald-boot --help
	[[ "$output" == *Usage* ]]
	run_code 0 metald-boot --version
	run_code 2 metald-boot frobnicate
	run_code 2 metald-boot status --bogus
	run_code 2 metald-boot status --vmm xen --socket /x
	[ "$output" = "metald-boot: --vmm \`xen\`: must be qemu or firecracker" ]
	run_code 2 metald-boot shutdown --vmm qemu --socket /x --timeout 5parsecs
}
