#!/bin/bash
# Benchmark of metald-vm's orchestration overhead (results go to docs/performance.md):
#  1. `create --boot` until the VMM runs, beside the VMM's own start measured in the same run
#     (QEMU: a plain qemu-system-x86_64 with the same arguments until QMP answers `cont`;
#     Firecracker: the API test double until its socket accepts), as medians; the difference is
#     metald's overhead.
#  2. create + boot --paused + delete of 100 VMs (QEMU held at -S, so the CPU is not the limit):
#     time per VM, and the 1st-10th beside the 91st-100th.
# Runs inside a network namespace it makes; needs root. N=runs for part 1 (default 10).
set -eu
top=$(cd "$(dirname "$0")/../.." && pwd)
bin="$top/${METALD_BUILD:-build}/bin"
N=${N:-10}
M=${M:-100}
[ "$(id -u)" = 0 ] || { echo "bench/vm: needs root" >&2; exit 1; }

tmp=$(mktemp -d /tmp/metald-bench-vm.XXXXXX)
ns="mdbench$$"
cg="mdbench$$"
cleanup() {
	set +e
	for d in "$tmp"/root/data/vms/*/; do
		[ -d "$d" ] && vm delete "$(basename "$d")" --force > /dev/null 2>&1
	done
	ip netns del "$ns" 2> /dev/null
	for d in /sys/fs/cgroup/*/"$cg"; do [ -d "$d" ] && rmdir "$d" 2> /dev/null; done
	rm -rf "$tmp"
}
trap cleanup EXIT
ip netns add "$ns"
ip -n "$ns" link set lo up
vm() { nsenter --net="/run/netns/$ns" "$bin/metald-vm" --root "$tmp/root" "$@"; }

json=$(sh "$top/share/metald/guest/build-guest" --out "$top/build/guest")
mkdir -p "$tmp/guest"
ln -s "$(echo "$json" | jq -r .kernel)" "$tmp/guest/vmlinuz"
ln -s "$(echo "$json" | jq -r .initrd)" "$tmp/guest/initrd.cpio.gz"
echo "$json" | jq -r .cmdline > "$tmp/guest/cmdline"
export UNKEY_METALD_GUEST_DIR="$tmp/guest" UNKEY_METALD_CGROUP_PARENT="$cg"

now() { date +%s%N; }
median() { sort -n | awk '{a[NR] = $1} END {if (NR % 2) printf "%d\n", a[(NR + 1) / 2]; else printf "%d\n", (a[NR / 2] + a[NR / 2 + 1]) / 2}'; }
ms() { awk -v n="$1" 'BEGIN {printf "%.1f", n / 1000000}'; }

# --- 1a. QEMU: metald-vm create --boot, and the plain QEMU start beside it -------------------
: > "$tmp/vm-qemu"
: > "$tmp/plain-qemu"
accel=$("$bin/metald-boot" --root "$tmp/root" accel --kernel "$tmp/guest/vmlinuz" --json | jq -r .accel)
for i in $(seq 1 "$N"); do
	t0=$(now)
	UNKEY_METALD_BACKEND=qemu vm create "q$i" --boot > /dev/null
	echo $(($(now) - t0)) >> "$tmp/vm-qemu"
	# the same QEMU command line (from the record) run plainly, outside any jail
	argv=$("$bin/metald-boot" argv --vmm qemu --config "$tmp/root/data/vms/q$i/config.json" \
		--qmp "$tmp/plain.sock" --accel "$accel" --json | jq -r '.[]' | grep -v '^-netdev\|^-device\|^tap,\|^virtio-net')
	vm delete "q$i" --force > /dev/null
	rm -f "$tmp/plain.sock"
	t0=$(now)
	mapfile -t a <<< "$argv"
	"${a[@]}" > /dev/null 2>&1 &
	qpid=$!
	until [ -S "$tmp/plain.sock" ]; do sleep 0.001; done
	printf '%s\n' '{"execute":"qmp_capabilities"}' '{"execute":"cont"}' | socat -t 0.2 - "UNIX-CONNECT:$tmp/plain.sock" > /dev/null
	echo $(($(now) - t0)) >> "$tmp/plain-qemu"
	kill "$qpid"
	wait "$qpid" 2> /dev/null || true
done
vq=$(median < "$tmp/vm-qemu")
pq=$(median < "$tmp/plain-qemu")

# --- 1b. Firecracker (the API test double) ---------------------------------------------------
mkdir -p "$tmp/fcbin"
ln -s "$top/t/helpers/fc-standin" "$tmp/fcbin/firecracker"
export UNKEY_METALD_FIRECRACKER_BIN="$tmp/fcbin/firecracker"
: > "$tmp/vm-fc"
: > "$tmp/plain-fc"
for i in $(seq 1 "$N"); do
	t0=$(now)
	vm create "f$i" --vmm firecracker --boot > /dev/null
	echo $(($(now) - t0)) >> "$tmp/vm-fc"
	vm delete "f$i" --force > /dev/null
	rm -f "$tmp/fc.sock"
	t0=$(now)
	/usr/bin/python3 "$top/t/helpers/fc-standin" --api-sock "$tmp/fc.sock" &
	fpid=$!
	while [ ! -S "$tmp/fc.sock" ]; do :; done
	echo $(($(now) - t0)) >> "$tmp/plain-fc"
	kill "$fpid"
	wait "$fpid" 2> /dev/null || true
done
vf=$(median < "$tmp/vm-fc")
pf=$(median < "$tmp/plain-fc")
unset UNKEY_METALD_FIRECRACKER_BIN

# --- 2. create + boot --paused + delete of M VMs -----------------------------------------------
: > "$tmp/many"
t_all=$(now)
for i in $(seq 1 "$M"); do
	t0=$(now)
	UNKEY_METALD_BACKEND=qemu vm create "m$i" --boot --paused > /dev/null
	t1=$(now)
	echo "$((t1 - t0))" >> "$tmp/many-create"
done
for i in $(seq 1 "$M"); do
	t0=$(now)
	vm delete "m$i" --force > /dev/null
	echo "$(($(now) - t0))" >> "$tmp/many-delete"
done
t_all=$(($(now) - t_all))
first=$(head -10 "$tmp/many-create" | median)
last=$(tail -10 "$tmp/many-create" | median)

echo "metald-vm orchestration ($(nproc) cores, accel $accel, N=$N, M=$M)"
printf '%-58s %10s\n' "what" "median ms"
printf '%-58s %10s\n' "qemu: metald-vm create --boot (until RUNNING)" "$(ms "$vq")"
printf '%-58s %10s\n' "qemu: plain qemu-system-x86_64 until QMP cont (baseline)" "$(ms "$pq")"
printf '%-58s %10s\n' "qemu: metald overhead per VM" "$(ms $((vq - pq)))"
printf '%-58s %10s\n' "firecracker (test double): create --boot" "$(ms "$vf")"
printf '%-58s %10s\n' "firecracker (test double): its own start (baseline)" "$(ms "$pf")"
printf '%-58s %10s\n' "firecracker: metald overhead per VM" "$(ms $((vf - pf)))"
printf '%-58s %10s\n' "$M VMs: create --boot --paused, per VM" "$(ms "$(median < "$tmp/many-create")")"
printf '%-58s %10s\n' "$M VMs: delete --force, per VM" "$(ms "$(median < "$tmp/many-delete")")"
printf '%-58s %10s\n' "$M VMs: create 1st-10th" "$(ms "$first")"
printf '%-58s %10s\n' "$M VMs: create $((M - 9))th-${M}th" "$(ms "$last")"
awk -v a="$last" -v b="$first" 'BEGIN {printf "growth last/first: %.2fx\n", a / b}'
awk -v a="$vq" -v b="$pq" 'BEGIN {printf "ratio qemu create --boot / plain start: %.2fx\n", a / b}'
echo "total for $M create+delete: $(ms "$t_all") ms"
