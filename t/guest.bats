#!/usr/bin/env bats
# The test guest (share/metald/guest): build-guest, accel-probe, and real boots on QEMU microvm:
# readiness line, ip=/metald.ipv6= on a tap inside a throw-away netns, metald.run, power off by
# request and by system_powerdown, the ext4 root variant.

load helpers/common

GUEST_SH="$METALD_TOP/share/metald/guest"
GUEST_DIR="$METALD_TOP/build/guest"

setup_file() {
	command -v qemu-system-x86_64 > /dev/null 2>&1 || return 0
	# Build once for the whole file (cached across runs in build/guest) and probe KVM once.
	sh "$GUEST_SH/build-guest" --out "$GUEST_DIR" > "$BATS_FILE_TMPDIR/guest.json"
	sh "$GUEST_SH/accel-probe" --guest "$GUEST_DIR" > "$BATS_FILE_TMPDIR/accel"
}

setup() {
	require_cmd qemu-system-x86_64 jq socat e2fsck
	[ -s "$BATS_FILE_TMPDIR/guest.json" ] || md_skip "the guest did not build (see setup_file)"
	CMDLINE=$(jq -r .cmdline "$BATS_FILE_TMPDIR/guest.json")
	ACCEL=$(cat "$BATS_FILE_TMPDIR/accel")
	QEMU_PID=
	leak_snapshot
}

teardown() {
	# Only the QEMU this test started, by its pid.
	if [ -n "${QEMU_PID:-}" ] && kill -0 "$QEMU_PID" 2> /dev/null; then
		kill "$QEMU_PID" 2> /dev/null || true
		wait "$QEMU_PID" 2> /dev/null || true
	fi
	[ -n "${GUEST_NS:-}" ] && ip netns del "$GUEST_NS" 2> /dev/null
	leak_check
}

# qemu_args APPEND [extra qemu args...]: the microvm command line for one boot.
qemu_args() {
	local append=$1
	shift
	QARGS=(qemu-system-x86_64 -M microvm -accel "$ACCEL" -m 256 -nodefaults -no-user-config
		-display none -no-reboot -kernel "$GUEST_DIR/vmlinuz" -initrd "$GUEST_DIR/initrd.cpio.gz"
		-append "$CMDLINE $append" "$@")
}

# boot_fg APPEND [extra qemu args...]: boot with the serial console on stdout until the guest
# powers off (bounded by timeout, which ends its own child on a hang).
boot_fg() {
	qemu_args "$@"
	run timeout -k 5 120 "${QARGS[@]}" -serial stdio
	# the guest's console ends lines with CR LF
	output=${output//$'\r'/}
	echo "$output" > "$BATS_TEST_TMPDIR/serial.log"
}

@test "build-guest prints the contract's JSON and rebuilds nothing when up to date" {
	run sh "$GUEST_SH/build-guest" --out "$GUEST_DIR"
	[ "$status" -eq 0 ]
	local json=$output f
	for f in kernel initrd rootfs; do
		[ -s "$(echo "$json" | jq -r ".$f")" ]
	done
	[ "$(echo "$json" | jq -r .kernel)" = "$GUEST_DIR/vmlinuz" ]
	[ "$(echo "$json" | jq -r .initrd)" = "$GUEST_DIR/initrd.cpio.gz" ]
	[ "$(echo "$json" | jq -r .rootfs)" = "$GUEST_DIR/rootfs.ext4" ]
	echo "$json" | jq -e '.cmdline | test("console=ttyS0") and test("tsc_early_khz=[0-9]+") and test("tsc=reliable")'
	echo "$json" | jq -e '.kernel_package | test("^linux-image-.*-cloud-amd64 ")'
	echo "$json" | jq -e '.modules | index("virtio_ring") < index("virtio") and index("virtio") < index("virtio_mmio")'
	echo "$json" | jq -e '.modules | index("virtio_net") and index("virtio_blk")'
	# idempotent: same files, same answer, no build
	local before
	before=$(stat -c '%Y %s' "$GUEST_DIR"/vmlinuz "$GUEST_DIR"/initrd.cpio.gz "$GUEST_DIR"/rootfs.ext4)
	sh "$GUEST_SH/build-guest" --out "$GUEST_DIR" > "$BATS_TEST_TMPDIR/again.json" 2> "$BATS_TEST_TMPDIR/again.err"
	[ "$(cat "$BATS_TEST_TMPDIR/again.json")" = "$json" ]
	run grep -q building "$BATS_TEST_TMPDIR/again.err"
	[ "$status" -eq 1 ]
	[ "$(stat -c '%Y %s' "$GUEST_DIR"/vmlinuz "$GUEST_DIR"/initrd.cpio.gz "$GUEST_DIR"/rootfs.ext4)" = "$before" ]
}

@test "build-guest and accel-probe answer --help and refuse bad options" {
	run sh "$GUEST_SH/build-guest" --help
	[ "$status" -eq 0 ] && [[ "$output" == *Usage* ]] && [[ "$output" == *--cache* ]]
	run sh "$GUEST_SH/build-guest" --bogus
	[ "$status" -eq 2 ]
	run sh "$GUEST_SH/build-guest"
	[ "$status" -eq 2 ]
	run sh "$GUEST_SH/accel-probe" --help
	[ "$status" -eq 0 ] && [[ "$output" == *Usage* ]]
	run sh "$GUEST_SH/accel-probe" --timeout 1x
	[ "$status" -ne 0 ]
}

@test "accel-probe says kvm or tcg, caches the verdict per host boot, and honours METALD_ACCEL" {
	[[ "$ACCEL" == kvm || "$ACCEL" == tcg ]]
	local boot_id
	boot_id=$(cat /proc/sys/kernel/random/boot_id)
	[ "$(cat "$METALD_TOP/build/accel-$boot_id")" = "$ACCEL" ]
	local t0=$SECONDS
	run sh "$GUEST_SH/accel-probe" --guest "$GUEST_DIR"
	[ "$status" -eq 0 ] && [ "$output" = "$ACCEL" ]
	[ $((SECONDS - t0)) -le 2 ]
	METALD_ACCEL=tcg run sh "$GUEST_SH/accel-probe" --guest "$GUEST_DIR"
	[ "$output" = tcg ]
	METALD_ACCEL=bogus run sh "$GUEST_SH/accel-probe" --guest "$GUEST_DIR"
	[ "$status" -ne 0 ]
}

@test "the guest boots on microvm, prints the readiness line, runs metald.run and powers off" {
	boot_fg "metald.run=\"echo guest-says-hello; which ping nc ip wget; nc -l -p 7777 > /tmp/got & sleep 0.5; echo via-nc | nc 127.0.0.1 7777; wait; cat /tmp/got\" metald.poweroff=1"
	[ "$status" -eq 0 ]
	[ "$(grep -c '^METALD-GUEST-READY ' "$BATS_TEST_TMPDIR/serial.log")" -eq 1 ]
	grep -qx 'METALD-GUEST-READY ipv4=none ipv6=none mac=none' "$BATS_TEST_TMPDIR/serial.log"
	grep -qx 'guest-says-hello' "$BATS_TEST_TMPDIR/serial.log"
	grep -qx '/usr/bin/wget' "$BATS_TEST_TMPDIR/serial.log"
	grep -qx '/bin/ping' "$BATS_TEST_TMPDIR/serial.log"
	grep -qx '/usr/bin/nc' "$BATS_TEST_TMPDIR/serial.log"
	grep -qx '/sbin/ip' "$BATS_TEST_TMPDIR/serial.log"
	grep -qx 'via-nc' "$BATS_TEST_TMPDIR/serial.log"
	grep -qx 'METALD-GUEST-RUN-EXIT 0' "$BATS_TEST_TMPDIR/serial.log"
	grep -q 'reboot: Power down' "$BATS_TEST_TMPDIR/serial.log"
}

@test "ip= and metald.ipv6=/metald.gw6= configure eth0 on a tap inside a throw-away netns" {
	require_root
	local p tap mac=02:42:c0:00:02:0a
	p=$(md_prefix)
	GUEST_NS="${p}g"
	tap="${p}t"
	ip netns add "$GUEST_NS"
	ip netns exec "$GUEST_NS" sysctl -qw net.ipv6.conf.all.accept_dad=0 net.ipv6.conf.default.accept_dad=0
	ip -n "$GUEST_NS" link set lo up
	ip -n "$GUEST_NS" tuntap add dev "$tap" mode tap
	ip -n "$GUEST_NS" addr add 192.0.2.1/24 dev "$tap"
	ip -n "$GUEST_NS" addr add 2001:db8:42::1/64 dev "$tap" nodad
	ip -n "$GUEST_NS" link set "$tap" up
	qemu_args "ip=192.0.2.10::192.0.2.1:255.255.255.0:g1:eth0:off metald.ipv6=2001:db8:42::10/64 metald.gw6=2001:db8:42::1 metald.run=\"hostname; ping -c1 -W5 192.0.2.1 && ping -c1 -W5 2001:db8:42::1 && ip -6 route\" metald.poweroff=1" \
		-netdev "tap,id=n0,ifname=$tap,script=no,downscript=no" -device "virtio-net-device,netdev=n0,mac=$mac"
	run ip netns exec "$GUEST_NS" timeout -k 5 120 "${QARGS[@]}" -serial stdio
	output=${output//$'\r'/}
	echo "$output"
	[ "$status" -eq 0 ]
	[[ "$output" == *"METALD-GUEST-READY ipv4=192.0.2.10/24 ipv6=2001:db8:42::10/64 mac=$mac"* ]]
	[[ "$output" == *"64 bytes from 192.0.2.1"* ]]
	[[ "$output" == *"64 bytes from 2001:db8:42::1"* ]]
	[[ "$output" == *"default via 2001:db8:42::1 dev eth0"* ]]
	[[ "$output" == *"METALD-GUEST-RUN-EXIT 0"* ]]
	[[ "$output" == *$'\ng1'* ]]
	ip netns del "$GUEST_NS"
	GUEST_NS=
}

@test "system_powerdown (ACPI power button) powers the guest off cleanly" {
	local log="$BATS_TEST_TMPDIR/serial.log" qmp="$BATS_TEST_TMPDIR/qmp.sock"
	qemu_args "" -serial "file:$log" -qmp "unix:$qmp,server=on,wait=off"
	"${QARGS[@]}" &
	QEMU_PID=$!
	wait_for 120 grep -q '^METALD-GUEST-READY ' "$log"
	printf '%s\n' '{"execute":"qmp_capabilities"}' '{"execute":"system_powerdown"}' |
		socat -t 2 - "UNIX-CONNECT:$qmp" | grep -q POWERDOWN
	local i=0
	while kill -0 "$QEMU_PID" 2> /dev/null && [ "$(awk '{print $3}' "/proc/$QEMU_PID/stat" 2> /dev/null)" != Z ] && [ $i -lt 600 ]; do
		sleep 0.05
		i=$((i + 1))
	done
	# in this shell, not in `run`'s subshell: QEMU is not the subshell's child, and a subshell
	# made before the parent reaped it cannot wait for it (exit 127)
	local st=0
	wait "$QEMU_PID" || st=$?
	[ "$st" -eq 0 ]
	QEMU_PID=
	grep -q 'metald-guest: powering off' "$log"
	grep -q 'reboot: Power down' "$log"
}

@test "without metald.poweroff the console has a shell, and Ctrl-Alt-Del (SIGINT to init) powers off" {
	local log="$BATS_TEST_TMPDIR/serial.log" in="$BATS_TEST_TMPDIR/serial.in"
	mkfifo "$in"
	qemu_args ""
	"${QARGS[@]}" -serial stdio < "$in" > "$log" 2>&1 &
	QEMU_PID=$!
	exec 8> "$in"
	wait_for 120 grep -q '^METALD-GUEST-READY ' "$log"
	wait_for 60 grep -q '/ # ' "$log"
	# the kernel turns Ctrl-Alt-Del into SIGINT for init; busybox init runs its ctrlaltdel action
	echo 'echo shell-$((6*7)); kill -INT 1' >&8
	local i=0
	while kill -0 "$QEMU_PID" 2> /dev/null && [ "$(awk '{print $3}' "/proc/$QEMU_PID/stat" 2> /dev/null)" != Z ] && [ $i -lt 600 ]; do
		sleep 0.05
		i=$((i + 1))
	done
	exec 8>&-
	# in this shell, not in `run`'s subshell: QEMU is not the subshell's child, and a subshell
	# made before the parent reaped it cannot wait for it (exit 127)
	local st=0
	wait "$QEMU_PID" || st=$?
	[ "$st" -eq 0 ]
	QEMU_PID=
	grep -q 'shell-42' "$log"
	grep -q 'metald-guest: powering off' "$log"
	grep -q 'reboot: Power down' "$log"
}

@test "the ext4 rootfs variant boots with root=/dev/vda and is clean after Ctrl-Alt-Del during metald.run" {
	cp "$GUEST_DIR/rootfs.ext4" "$BATS_TEST_TMPDIR/rootfs.ext4"
	# no metald.poweroff: the SIGINT that Ctrl-Alt-Del sends to init ends the boot, mid-command
	boot_fg "root=/dev/vda metald.run=\"cat /etc/metald/rootfs; grep ' / ' /proc/mounts; echo written > /root/mark; kill -INT 1; sleep 100\"" \
		-drive "id=d0,file=$BATS_TEST_TMPDIR/rootfs.ext4,format=raw,if=none" -device virtio-blk-device,drive=d0
	[ "$status" -eq 0 ]
	grep -q '^METALD-GUEST-READY ' "$BATS_TEST_TMPDIR/serial.log"
	grep -qx 'ext4' "$BATS_TEST_TMPDIR/serial.log"
	grep -q '^/dev/vda / ext4 rw' "$BATS_TEST_TMPDIR/serial.log"
	grep -q 'metald-guest: powering off' "$BATS_TEST_TMPDIR/serial.log"
	run grep -q 'METALD-GUEST-RUN-EXIT' "$BATS_TEST_TMPDIR/serial.log"
	[ "$status" -eq 1 ]
	grep -q 'reboot: Power down' "$BATS_TEST_TMPDIR/serial.log"
	e2fsck -fn "$BATS_TEST_TMPDIR/rootfs.ext4"
	[ "$(debugfs -R 'cat /root/mark' "$BATS_TEST_TMPDIR/rootfs.ext4" 2> /dev/null)" = written ]
}
