#!/bin/bash
# Benchmark of metald-boot's drivers (results: docs/performance.md).
#  1. Firecracker: the whole boot sequence made by `metald-boot start` against fc-standin (the
#     test double of Firecracker's API), beside the same requests made by `curl --unix-socket`
#     commands in a shell script, in the same run. Driver time = wall time of metald-boot minus the
#     time the stand-in spent answering (it logs server_us per request).
#  2. QEMU: time from launching QEMU to the guest's readiness line, through `metald-boot argv` +
#     `metald-boot start`, beside a plain qemu-system-x86_64 command line booting the same guest
#     (no -S, no QMP), alternating, same run.
# Usage: t/bench/boot.sh [FC_RUNS [QEMU_RUNS]]   (defaults 30 and 5; METALD_BUILD as in the tests)
# `make bench` runs it with sh: it needs bash (arrays, mapfile)
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
set -eu
cd "$(dirname "$0")/../.."
TOP=$(pwd)
B="$TOP/${METALD_BUILD:-build}/bin/metald-boot"
STANDIN="$TOP/t/helpers/fc-standin"
FC_RUNS=${1:-30}
QEMU_RUNS=${2:-5}
T=$(mktemp -d /tmp/metald-bench.XXXXXX)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null || true; done; rm -rf "$T"; }
trap cleanup EXIT

now() { date +%s%N; }
stats() { # name values... -> "min median mean max" in ms with 3 decimals (values in ns)
	printf '%s\n' "${@:2}" | sort -n | awk -v n="$1" '{ v[NR] = $1; s += $1 }
	END { printf "%s %.3f %.3f %.3f %.3f\n", n, v[1] / 1e6, v[int((NR + 1) / 2)] / 1e6, s / NR / 1e6, v[NR] / 1e6 }'
}

[ -x "$B" ] || { echo "build first: make" >&2; exit 1; }
touch "$T/vmlinux" "$T/root.ext4" "$T/data.img"
cat >"$T/cfg.json" <<JSON
{"cpu":{"vcpu_count":2},"memory":{"size_bytes":268435456},
 "boot":{"kernel_path":"$T/vmlinux","kernel_args":"console=ttyS0 reboot=k panic=1"},
 "storage":[{"id":"rootfs","path":"$T/root.ext4","is_root_device":true},{"id":"data","path":"$T/data.img"}],
 "network":[{"id":"eth0","tap_device":"tap0","mac_address":"02:00:00:00:00:01"}]}
JSON

standin_up() {
	rm -f "$T/api.sock" "$T/calls"
	"$STANDIN" --api-sock "$T/api.sock" --calls "$T/calls" &
	SPID=$!
	PIDS+=("$SPID")
	while [ ! -S "$T/api.sock" ]; do sleep 0.01; done
}
standin_down() { kill -9 "$SPID" 2>/dev/null; wait "$SPID" 2>/dev/null || true; }
server_ns() { jq -s 'map((.server_us // 0) + (.reply_us // 0)) | add * 1000' "$T/calls"; }

# The same requests metald-boot makes for this config, as curl commands.
curl_sequence() {
	local s="$T/api.sock" c="curl -sf --unix-socket $T/api.sock"
	$c http://localhost/version >/dev/null
	$c http://localhost/ >/dev/null
	$c -X PUT -H 'Content-Type: application/json' http://localhost/metrics -d "{\"metrics_path\":\"$T/metrics\"}"
	$c -X PUT -H 'Content-Type: application/json' http://localhost/machine-config -d '{"vcpu_count":2,"mem_size_mib":256,"smt":false}'
	$c -X PUT -H 'Content-Type: application/json' http://localhost/boot-source -d "{\"kernel_image_path\":\"$T/vmlinux\",\"boot_args\":\"console=ttyS0 reboot=k panic=1\"}"
	$c -X PUT -H 'Content-Type: application/json' http://localhost/drives/rootfs -d "{\"drive_id\":\"rootfs\",\"path_on_host\":\"$T/root.ext4\",\"is_root_device\":true,\"is_read_only\":false}"
	$c -X PUT -H 'Content-Type: application/json' http://localhost/drives/data -d "{\"drive_id\":\"data\",\"path_on_host\":\"$T/data.img\",\"is_root_device\":false,\"is_read_only\":false}"
	$c -X PUT -H 'Content-Type: application/json' http://localhost/network-interfaces/eth0 -d '{"iface_id":"eth0","host_dev_name":"tap0","guest_mac":"02:00:00:00:00:01"}'
	$c -X PUT -H 'Content-Type: application/json' http://localhost/actions -d '{"action_type":"InstanceStart"}'
	$c http://localhost/ | grep -q '"Running"'
	: "$s"
}

echo "# Firecracker boot sequence against fc-standin, $FC_RUNS runs each" >&2
md_wall=() md_driver=() md_req=() md_rtt=() cu_wall=() cu_driver=()
for i in $(seq "$FC_RUNS"); do
	standin_up
	t0=$(now)
	out=$("$B" start --vmm firecracker --socket "$T/api.sock" --config "$T/cfg.json" --metrics "$T/metrics" --json)
	t1=$(now)
	sv=$(server_ns)
	n=$(echo "$out" | jq .requests)
	req=$(echo "$out" | jq '.request_ms * 1e6 | floor')
	tot=$(echo "$out" | jq '.total_ms * 1e6 | floor')
	md_wall+=($((t1 - t0)))
	md_driver+=($((tot - sv)))          # inside the process: requests + waits, minus the server's share
	md_req+=("$req")
	md_rtt+=($(( (req - sv) / n )))    # per request: client + transport, without server time
	standin_down

	standin_up
	t0=$(now)
	curl_sequence
	t1=$(now)
	sv=$(server_ns)
	cu_wall+=($((t1 - t0)))
	cu_driver+=($((t1 - t0 - sv)))
	standin_down
done
{
	echo "what min median mean max"
	stats metald-boot-wall "${md_wall[@]}"
	stats metald-boot-driver "${md_driver[@]}"
	stats metald-boot-per-request-rtt "${md_rtt[@]}"
	stats curl-script-wall "${cu_wall[@]}"
	stats curl-script-driver "${cu_driver[@]}"
} | awk '{ printf "%-30s %10s %10s %10s %10s\n", $1, $2, $3, $4, $5 }'
med() { printf '%s\n' "$@" | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
echo "requests per boot: $n"
awk -v a="$(med "${cu_wall[@]}")" -v b="$(med "${md_wall[@]}")" 'BEGIN { printf "ratio curl-script / metald-boot (median wall): %.1f\n", a / b }'

# ---------------------------------------------------------------- QEMU
[ "$QEMU_RUNS" -gt 0 ] || exit 0
command -v qemu-system-x86_64 >/dev/null || { echo "no qemu-system-x86_64: QEMU part skipped" >&2; exit 0; }
G=$(sh share/metald/guest/build-guest --out "$TOP/build/guest" 2>/dev/null)
KERNEL=$(echo "$G" | jq -r .kernel) INITRD=$(echo "$G" | jq -r .initrd) CMDLINE=$(echo "$G" | jq -r .cmdline)
cat >"$T/q.json" <<JSON
{"cpu":{"vcpu_count":1},"memory":{"size_bytes":268435456},
 "boot":{"kernel_path":"$KERNEL","initrd_path":"$INITRD","kernel_args":"$CMDLINE root=none"},
 "storage":[{"id":"data","path":"$T/data.img"}]}
JSON
truncate -s 8M "$T/data.img"
ACCEL=$("$B" accel --kernel "$KERNEL" --root "$T/r" --json | jq -r .accel)

# wait_ready FILE: block (inotify via tail -F) until the readiness line is in FILE
wait_ready() { timeout 120 tail -F -n +1 "$1" 2>/dev/null | grep -q -m1 METALD-GUEST-READY; }

echo "# QEMU ($ACCEL) launch -> readiness line, $QEMU_RUNS runs each, alternating" >&2
q_md=() q_plain=()
for i in $(seq "$QEMU_RUNS"); do
	rm -f "$T/serial" "$T/qmp.sock"
	: >"$T/serial"
	t0=$(now)
	mapfile -d '' args < <("$B" argv --vmm qemu --config "$T/q.json" --qmp "$T/qmp.sock" --serial "$T/serial" --accel "$ACCEL" --null)
	"${args[@]}" >/dev/null 2>&1 &
	QP=$!
	PIDS+=("$QP")
	"$B" start --vmm qemu --socket "$T/qmp.sock" >/dev/null
	wait_ready "$T/serial"
	t1=$(now)
	q_md+=($((t1 - t0)))
	kill -9 "$QP"; wait "$QP" 2>/dev/null || true

	: >"$T/serial"
	t0=$(now)
	qemu-system-x86_64 -M microvm -accel "$ACCEL" -smp 1 -m 256M -nodefaults -no-user-config -display none \
		-serial "file:$T/serial" -kernel "$KERNEL" -initrd "$INITRD" -append "$CMDLINE root=none" \
		-drive "id=data,file=$T/data.img,format=raw,if=none" -device virtio-blk-device,drive=data >/dev/null 2>&1 &
	QP=$!
	PIDS+=("$QP")
	wait_ready "$T/serial"
	t1=$(now)
	q_plain+=($((t1 - t0)))
	kill -9 "$QP"; wait "$QP" 2>/dev/null || true
done
{
	echo "what min median mean max"
	stats metald-boot-argv+start "${q_md[@]}"
	stats plain-qemu "${q_plain[@]}"
} | awk '{ printf "%-30s %10s %10s %10s %10s\n", $1, $2, $3, $4, $5 }'
awk -v a="$(med "${q_md[@]}")" -v b="$(med "${q_plain[@]}")" 'BEGIN { printf "metald-boot overhead (median): %+.1f%%\n", (a - b) / b * 100 }'
