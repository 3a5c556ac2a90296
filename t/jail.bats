#!/usr/bin/env bats
# metald-jail, tested from the outside: the jailed program is the static md-probe, and the checks
# read /proc/<pid>/... of the running probe from the host.

load helpers/common
bats_require_minimum_version 1.5.0

setup() {
	require_root
	leak_snapshot
	P=$(md_prefix)
	BASE="$BATS_TEST_TMPDIR/jails"
	mkdir -p "$BASE"
	PROBE="$MD_PROBES/md-probe"
	[ -x "$PROBE" ] || md_skip "md-probe not built"
	J=(metald-jail --exec-file "$PROBE" --uid 1234 --gid 2345 --chroot-base-dir "$BASE")
	# runtime files (the compiled seccomp profiles) stay in the test's directory
	export UNKEY_METALD_RUN_DIR="$BATS_TEST_TMPDIR/run"
}

teardown() {
	local d
	for d in "$BASE"/*/*; do
		[ -d "$d" ] || continue
		metald-jail clean --id "$(basename "$d")" --exec-file "$(basename "$(dirname "$d")")" \
			--chroot-base-dir "$BASE" --kill --parent-cgroup "$P" >/dev/null 2>&1 || true
	done
	# daemonized probes are reparented to PID 1, which may reap them only after a while
	local pid
	for pid in $(cat "$BATS_TEST_TMPDIR/pids" 2>/dev/null); do
		wait_for 10 test ! -e "/proc/$pid"
	done
	if [ -n "${CG2:-}" ]; then
		umount "$CG2" 2>/dev/null || true
	fi
	leak_check
}

# A jailed probe that sleeps, run with --daemonize --json; sets PID.
start_daemon() {
	local id=$1
	shift
	run "${J[@]}" --id "$id" --daemonize --json "$@"
	[ "$status" -eq 0 ] || { echo "$output" >&2; return 1; }
	PID=$(echo "$output" | jq -r .pid)
	[ "$PID" -gt 0 ]
	echo "$PID" >> "$BATS_TEST_TMPDIR/pids"
	wait_for 5 grep -q md-probe "/proc/$PID/comm"
}

field() { awk -v k="$2:" '$1 == k {print $2}' "/proc/$1/status"; }

# The host's cgroups: the pids controller exists in both versions, so the generic tests use
# pids.max; CGV is 1 where a v1 pids hierarchy is mounted (this machine), else 2.
if awk '$2 == "/sys/fs/cgroup/pids" && $3 == "cgroup" {f = 1} END {exit !f}' /proc/mounts; then
	CGV=1 CGBASE=/sys/fs/cgroup/pids
else
	CGV=2 CGBASE=/sys/fs/cgroup
fi
# in_cg PID PATH: the process is in cgroup PATH (relative to the hierarchy's root)
in_cg() {
	if [ "$CGV" = 1 ]; then grep -qx "[0-9]*:pids:/$2" "/proc/$1/cgroup"; else grep -qx "0::/$2" "/proc/$1/cgroup"; fi
}

@test "the program runs as uid:gid with every capability set empty, no_new_privs and seccomp" {
	start_daemon "${P}a" -- sleep 30
	[ "$(awk '/^Uid:/ {print $2, $3, $4, $5}' /proc/$PID/status)" = "1234 1234 1234 1234" ]
	[ "$(awk '/^Gid:/ {print $2, $3, $4, $5}' /proc/$PID/status)" = "2345 2345 2345 2345" ]
	[ "$(awk '/^Groups:/ {print NF}' /proc/$PID/status)" = 1 ]
	for c in CapInh CapPrm CapEff CapBnd CapAmb; do
		[ "$(field $PID $c)" = 0000000000000000 ]
	done
	[ "$(field $PID NoNewPrivs)" = 1 ]
	[ "$(field $PID Seccomp)" = 2 ]
}

@test "mount, IPC, UTS and cgroup namespaces differ from the host's; pid and user ones on request" {
	start_daemon "${P}a" -- sleep 30
	for ns in mnt ipc uts cgroup; do
		[ "$(readlink /proc/$PID/ns/$ns)" != "$(readlink /proc/self/ns/$ns)" ]
	done
	[ "$(readlink /proc/$PID/ns/pid)" = "$(readlink /proc/self/ns/pid)" ]
	[ "$(readlink /proc/$PID/ns/user)" = "$(readlink /proc/self/ns/user)" ]
	start_daemon "${P}b" --new-pid-ns --userns -- sleep 30
	[ "$(readlink /proc/$PID/ns/pid)" != "$(readlink /proc/self/ns/pid)" ]
	[ "$(readlink /proc/$PID/ns/user)" != "$(readlink /proc/self/ns/user)" ]
	[ "$(awk '/^NSpid:/ {print $3}' /proc/$PID/status)" = 1 ]
	[ "$(awk '{print $1, $2, $3}' /proc/$PID/uid_map)" = "1234 1234 1
" ] || [ "$(awk '{print $1, $2, $3}' /proc/$PID/uid_map)" = "1234 1234 1" ]
	[ "$(field $PID CapEff)" = 0000000000000000 ]
}

@test "the network namespace given with --netns is joined" {
	ip netns add "${P}n"
	start_daemon "${P}a" --netns "/run/netns/${P}n" -- sleep 30
	local want
	want=$(ip netns exec "${P}n" readlink /proc/self/ns/net)
	[ "$(readlink /proc/$PID/ns/net)" = "$want" ]
	metald-jail clean --id "${P}a" --chroot-base-dir "$BASE" --kill
	ip netns del "${P}n"
}

@test "the root is the jail: Firecracker's layout, device nodes owned by uid:gid, host files unreachable" {
	start_daemon "${P}a" -- sleep 30
	local root="$BASE/md-probe/${P}a/root"
	[ "$(stat -c %d:%i /proc/$PID/root/)" = "$(stat -c %d:%i "$root")" ]
	[ ! -e /proc/$PID/root/etc/passwd ]
	[ ! -e /proc/$PID/root/usr ]
	[ "$(ls /proc/$PID/root | sort | tr '\n' ' ')" = "dev md-probe md-probe.pid run " ]
	local dev=/proc/$PID/root/dev
	[ "$(stat -c '%a %u %g' "$root" "$root/dev" "$root/run" "$dev" "$dev/net" | sort -u)" = "700 1234 2345" ]
	[ "$(stat -c '%F %t:%T %a %u %g' "$dev/kvm")" = "character special file a:e8 600 1234 2345" ]
	[ "$(stat -c '%F %t:%T %a %u %g' "$dev/net/tun")" = "character special file a:c8 600 1234 2345" ]
	[ "$(stat -c '%F %t:%T %a %u %g' "$dev/urandom")" = "character special file 1:9 600 1234 2345" ]
	local want="kvm net urandom "
	if grep -qw userfaultfd /proc/misc; then
		[ "$(stat -c '%F %a %u %g' "$dev/userfaultfd")" = "character special file 600 1234 2345" ]
		want="kvm net urandom userfaultfd "
	fi
	# exactly these, on the jail's own small tmpfs; on disk /dev is only the empty mount point
	[ "$(ls -A "$dev" | sort | tr '\n' ' ')" = "$want" ]
	[ "$(ls -A "$dev/net")" = tun ]
	[ -z "$(ls -A "$root/dev")" ]
	grep -Eq '^[0-9]+ [0-9]+ [0-9:]+ / /dev rw,nosuid,noexec,[a-z,]* - tmpfs tmpfs rw,size=1024k,nr_inodes=1024,mode=700,uid=1234,gid=2345$' \
		/proc/$PID/mountinfo
	[ "$(stat -c '%u %g' "$root/md-probe")" = "1234 2345" ]
	[ "$(cat "$root/md-probe.pid")" = "$PID" ]
	# on ext4 the exec file's directory is a "top directory" (chattr +T): jails spread over block groups
	if [ "$(stat -f -c %T "$BASE")" = ext2/ext3 ]; then
		[[ "$(lsattr -d "$BASE/md-probe" | awk '{print $1}')" == *T* ]]
	fi
	# the old root is gone from the jail's mount table too: the root and its /dev are all there is
	[ "$(awk '{print $5}' /proc/$PID/mountinfo | tr '\n' ' ')" = "/ /dev " ]
}

@test "/dev is the jail's own tmpfs: the nodes work inside (with --userns too), mounts and links below /dev land on it, nothing of it on disk" {
	local want="kvm net urandom"
	grep -qw userfaultfd /proc/misc && want="kvm net urandom userfaultfd"
	mkdir "$BATS_TEST_TMPDIR/d"
	echo data > "$BATS_TEST_TMPDIR/d/f"
	local opt
	for opt in "" --userns; do
		run "${J[@]}" --id "${P}a" $opt -- ls /dev open /dev/urandom open /dev/net/tun open /dev/kvm
		[ "$status" -eq 0 ] || { echo "$output" >&2; return 1; }
		[ "$(printf '%s\n' "${lines[@]:0:${#lines[@]}-3}" | sort | tr '\n' ' ')" = "$want " ]
		[ "${lines[*]: -3}" = "open ok open ok open ok" ]
		# the program has exited: on disk /dev is the empty mount point, and clean leaves nothing
		[ -z "$(ls -A "$BASE/md-probe/${P}a/root/dev")" ]
		metald-jail clean --id "${P}a" --chroot-base-dir "$BASE"
		[ ! -e "$BASE/md-probe" ]
	done
	run "${J[@]}" --id "${P}b" --bind /dev/null:/dev/null --bind "$BATS_TEST_TMPDIR/d:/dev/x/y:ro" --tmpfs /dev/shm \
		--link "$BATS_TEST_TMPDIR/d/f:/dev/lnk" -- ls /dev ls /dev/x/y write /dev/null 1 write /dev/shm/z 1 open /dev/lnk
	[ "$status" -eq 0 ] || { echo "$output" >&2; return 1; }
	[ "$(printf '%s\n' "${lines[@]:0:${#lines[@]}-3}" | sort | tr '\n' ' ')" = \
		"$(printf '%s\n' $want lnk null shm x f | sort | tr '\n' ' ')" ]
	[ "${lines[*]: -3}" = "write ok write ok open ok" ]
	[ -z "$(ls -A "$BASE/md-probe/${P}b/root/dev")" ]
	[ "$(cat "$BATS_TEST_TMPDIR/d/f")" = data ]
	metald-jail clean --id "${P}b" --chroot-base-dir "$BASE"
	[ -z "$(ls -A "$BASE")" ]
}

@test "inside: empty environment, only fds 0-2, cwd /, no host files" {
	exec 7</dev/null 8>/dev/null
	run env FOO=bar "${J[@]}" --id "${P}a" -- id env fds cwd exists /etc/passwd exists /md-probe
	exec 7<&- 8>&-
	[ "$status" -eq 0 ]
	[ "${lines[0]}" = "uid=1234 gid=2345 groups=0" ]
	[ "${lines[1]}" = "env-end" ]
	[ "${lines[2]}" = "fds 0 1 2" ]
	[ "${lines[3]}" = "cwd /" ]
	[ "${lines[4]}" = "no /etc/passwd" ]
	[ "${lines[5]}" = "yes /md-probe" ]
}

@test "no fd beyond 0-2 and an empty environment, seen from outside" {
	exec 7</dev/null
	FOO=bar start_daemon "${P}a" -- sleep 30
	exec 7<&-
	[ "$(ls /proc/$PID/fd | sort -n | tr '\n' ' ')" = "0 1 2 " ]
	[ ! -s /proc/$PID/environ ]
}

@test "plain mode execs in place: the pid is the program's and the exit status passes through" {
	"${J[@]}" --id "${P}a" -- sleep 30 &
	local pid=$!
	wait_for 5 grep -q md-probe /proc/$pid/comm
	[ "$(cat "$BASE/md-probe/${P}a/root/md-probe.pid")" = "$pid" ]
	[ "$(field $pid Seccomp)" = 2 ]
	kill $pid
	wait $pid || true
	run "${J[@]}" --id "${P}b" -- exit 7
	[ "$status" -eq 7 ]
}

@test "resource limits: the jailer's defaults, core 0, and every name" {
	start_daemon "${P}a" -- sleep 30
	grep -E '^Max open files +2048 +2048' /proc/$PID/limits
	grep -E '^Max core file size +0 +0' /proc/$PID/limits
	# an address-space limit also binds metald-jail itself, which a sanitizer build cannot live with
	local as=2147483648
	[[ "$METALD_BUILD" != *san* ]] || as=unlimited
	start_daemon "${P}b" --resource-limit fsize=1048576 --resource-limit no-file=64 --resource-limit nproc=50 \
		--resource-limit as=$as --resource-limit core=4096 -- sleep 30
	grep -E '^Max file size +1048576 +1048576' /proc/$PID/limits
	grep -E '^Max open files +64 +64' /proc/$PID/limits
	grep -E '^Max processes +50 +50' /proc/$PID/limits
	[ "$as" = unlimited ] || grep -E '^Max address space +2147483648 +2147483648' /proc/$PID/limits
	grep -E '^Max core file size +4096 +4096' /proc/$PID/limits
	run_code 2 "${J[@]}" --id "${P}c" --resource-limit bogus=1 -- exit 0
	[[ "$output" == *"resource limit"*bogus* ]]
}

@test "cgroup v1: the jail's cgroups hold the program with the values written" {
	# a cgroup2-only host has no v1 hierarchy at all: nothing to test there (the v2 test covers it)
	[ "$CGV" = 1 ] && [ -d /sys/fs/cgroup/cpu ] && [ -d /sys/fs/cgroup/memory ] || skip "no cgroup v1 hierarchies on this host"
	start_daemon "${P}a" --cgroup-version 1 --parent-cgroup "$P" --cgroup cpu.shares=333 \
		--cgroup memory.limit_in_bytes=104857600 --cgroup cpuset.cpus=0 -- sleep 30
	echo "$output" | jq -e '.cgroups | length == 3'
	grep -qx "[0-9]*:cpu:/$P/${P}a" /proc/$PID/cgroup
	grep -qx "[0-9]*:memory:/$P/${P}a" /proc/$PID/cgroup
	grep -qx "[0-9]*:cpuset:/$P/${P}a" /proc/$PID/cgroup
	[ "$(cat /sys/fs/cgroup/cpu/$P/${P}a/cpu.shares)" = 333 ]
	[ "$(cat /sys/fs/cgroup/memory/$P/${P}a/memory.limit_in_bytes)" = 104857600 ]
	[ "$(cat /sys/fs/cgroup/cpuset/$P/${P}a/cpuset.cpus)" = 0 ]
	grep -qx "$PID" /sys/fs/cgroup/cpu/$P/${P}a/cgroup.procs
	metald-jail clean --id "${P}a" --chroot-base-dir "$BASE" --kill
	[ ! -e /sys/fs/cgroup/cpu/$P ]
	[ ! -e /sys/fs/cgroup/memory/$P ]
	[ ! -e /sys/fs/cgroup/cpuset/$P ]
}

@test "cgroup v2 on a cgroup2 mount: membership, controllers enabled down the chain, values written" {
	CG2="$BATS_TEST_TMPDIR/cg2"
	mkdir -p "$CG2"
	mount -t cgroup2 none "$CG2"
	export UNKEY_METALD_CGROUP_ROOT="$CG2"
	# the version is detected: the root is a cgroup2 mount
	start_daemon "${P}a" --parent-cgroup "$P/vms" -- sleep 30
	# without --cgroup nothing is made (the jailer's behaviour), unless the parent exists: then it is joined
	[ ! -e "$CG2/$P" ]
	mkdir -p "$CG2/$P/vms"
	start_daemon "${P}b" --parent-cgroup "$P/vms" -- sleep 30
	[ "$(grep '^0::' /proc/$PID/cgroup)" = "0::/$P/vms" ]
	metald-jail clean --id "${P}b" --chroot-base-dir "$BASE" --kill
	rmdir "$CG2/$P/vms" "$CG2/$P"
	# a controller: on a host whose controllers are bound to v1 only the free ones (hugetlb) exist
	local ctrl file value
	if grep -qw hugetlb "$CG2/cgroup.controllers" && [ -d /sys/kernel/mm/hugepages/hugepages-2048kB ]; then
		ctrl=hugetlb file=hugetlb.2MB.max value=8388608
	elif grep -qw pids "$CG2/cgroup.controllers"; then
		ctrl=pids file=pids.max value=77
	else
		md_skip "no controller available on the cgroup v2 hierarchy"
	fi
	start_daemon "${P}c" --parent-cgroup "$P/vms" --cgroup "$file=$value" -- sleep 30
	[ "$(echo "$output" | jq -r '.cgroups[0]')" = "$CG2/$P/vms/${P}c" ]
	[ "$(grep '^0::' /proc/$PID/cgroup)" = "0::/$P/vms/${P}c" ]
	grep -qx "$PID" "$CG2/$P/vms/${P}c/cgroup.procs"
	[ "$(cat "$CG2/$P/vms/${P}c/$file")" = "$value" ]
	grep -qw "$ctrl" "$CG2/cgroup.subtree_control"
	grep -qw "$ctrl" "$CG2/$P/cgroup.subtree_control"
	grep -qw "$ctrl" "$CG2/$P/vms/cgroup.subtree_control"
	metald-jail clean --id "${P}c" --chroot-base-dir "$BASE" --kill
	[ ! -e "$CG2/$P" ]
	# a controller the v2 hierarchy lacks: exit 5, nothing made
	if ! grep -qw cpu "$CG2/cgroup.controllers"; then
		run_code 5 "${J[@]}" --id "${P}d" --parent-cgroup "$P" --cgroup cpu.max=1000 -- exit 0
		[[ "$output" == *"controller \`cpu\`"* ]]
		[ ! -e "$CG2/$P" ]
		[ ! -e "$BASE/md-probe/${P}d" ]
	fi
	umount "$CG2"
	CG2=
}

@test "a forbidden system call kills the program with SIGSYS; --seccomp none and profiles by path" {
	# ptrace (101 on x86_64) is in the default deny list
	run "${J[@]}" --id "${P}a" -- syscall 101
	[ "$status" -eq $((128 + 31)) ]
	# the compiled profile is cached, and the cached program is as strict
	[ "$(ls "$UNKEY_METALD_RUN_DIR"/seccomp/*.bpf | wc -l)" = 1 ]
	[ "$(stat -c '%a %u' "$UNKEY_METALD_RUN_DIR"/seccomp/*.bpf)" = "600 0" ]
	# unshare(CLONE_NEWUSER) too
	run "${J[@]}" --id "${P}b" -- syscall 272 0x10000000
	[ "$status" -eq $((128 + 31)) ]
	# no typing into the caller's terminal: ioctl(0, TIOCSTI) is refused
	run "${J[@]}" --id "${P}t" -- syscall 16 0 0x5412 0
	[ "$output" = "syscall -1 Operation not permitted" ]
	# without a profile the same call goes through to the kernel
	run "${J[@]}" --id "${P}c" --seccomp none -- syscall 272 0x10000000
	[ "$status" -eq 0 ]
	[[ "$output" == "syscall 0 ok" ]]
	start_daemon "${P}d" --seccomp none -- sleep 30
	[ "$(field $PID Seccomp)" = 0 ]
	# a profile by path, with an errno action: getpid (39) fails with EPERM
	cat > "$BATS_TEST_TMPDIR/p.json" <<-'EOF'
	{"default_action": "allow", "rules": [{"syscalls": ["getpid"], "action": "errno:EPERM"}]}
	EOF
	run "${J[@]}" --id "${P}e" --seccomp "$BATS_TEST_TMPDIR/p.json" -- syscall 39
	[ "$status" -eq 0 ]
	[[ "$output" == "syscall -1 Operation not permitted" ]]
	# a changed profile is compiled again, not taken from the cache
	cat > "$BATS_TEST_TMPDIR/p.json" <<-'EOF'
	{"default_action": "allow", "rules": [{"syscalls": ["getpid"], "action": "errno:EACCES"}]}
	EOF
	run "${J[@]}" --id "${P}g" --seccomp "$BATS_TEST_TMPDIR/p.json" -- syscall 39
	[[ "$output" == "syscall -1 Permission denied" ]]
	# a cache file that is not root's own is ignored
	chown 1234 "$UNKEY_METALD_RUN_DIR"/seccomp/*.bpf
	run "${J[@]}" --id "${P}h" -- syscall 101
	[ "$status" -eq $((128 + 31)) ]
	# -v names the profile that is loaded
	run "${J[@]}" --id "${P}f" -vv -- exit 0
	[[ "$output" == *"seccomp profile"*default.json*SIGSYS* ]]
}

@test "--cap-keep keeps only the named capabilities" {
	start_daemon "${P}a" --cap-keep net_admin,CAP_SYS_NICE -- sleep 30
	local want
	want=$(printf '%016x' $(((1 << 12) | (1 << 23))))
	[ "$(field $PID CapEff)" = "$want" ]
	[ "$(field $PID CapPrm)" = "$want" ]
	[ "$(field $PID CapBnd)" = "$want" ]
	[ "$(field $PID CapAmb)" = "$want" ]
	run_code 2 "${J[@]}" --id "${P}b" --cap-keep no_such_cap -- exit 0
}

@test "--bind, --link, --tmpfs and --exec-mode bind put files into the jail" {
	local src="$BATS_TEST_TMPDIR/src"
	mkdir -p "$src/dir"
	echo hello > "$src/dir/file"
	echo kernel > "$src/vmlinux"
	chmod 0644 "$src/vmlinux"
	echo secret > "$src/private"
	chmod 0600 "$src/private"
	ln -s "$src/private" "$src/link-to-private"
	start_daemon "${P}a" --exec-mode bind --link "$src/link-to-private:/private" --bind "$src/dir:/data:ro" --bind "$src/dir:/rw" \
		--link "$src/vmlinux:/boot/vmlinux" --tmpfs /scratch -- sleep 30
	[ "$(cat /proc/$PID/root/data/file)" = hello ]
	[ "$(cat /proc/$PID/root/boot/vmlinux)" = kernel ]
	[ "$(stat -c %i "$src/vmlinux")" = "$(stat -c %i "$BASE/md-probe/${P}a/root/boot/vmlinux")" ]
	[ "$(stat -c '%u %g' "$src/vmlinux")" = "1234 2345" ]
	# through a symlink: the file it names is linked, not the symlink
	[ "$(cat /proc/$PID/root/private)" = secret ]
	[ ! -L "$BASE/md-probe/${P}a/root/private" ]
	[ "$(stat -c '%u %g' "$BASE/md-probe/${P}a/root/private")" = "1234 2345" ]
	grep -q ' /data .*ro,' /proc/$PID/mountinfo
	grep -q ' /rw .*rw,' /proc/$PID/mountinfo
	grep -q ' /scratch .* tmpfs ' /proc/$PID/mountinfo
	grep -q ' /md-probe .*ro,' /proc/$PID/mountinfo
	# on the host the mounts do not exist: the jail's mount namespace holds them
	[ ! -e "$BASE/md-probe/${P}a/root/data/file" ]
	run "${J[@]}" --id "${P}b" --bind "$src/dir:/data:ro" --tmpfs /scratch -- write /data/x 1 write /scratch/y 10 write /y 1
	[ "${lines[0]}" = "write Read-only file system" ]
	[ "${lines[1]}" = "write ok" ]
	[ "${lines[2]}" = "write ok" ]
	metald-jail clean --id "${P}a" --chroot-base-dir "$BASE" --kill
	[ "$(cat "$src/dir/file")" = hello ]
	[ "$(cat "$src/vmlinux")" = kernel ]
}

@test "--daemonize and --new-pid-ns: the pid file holds the program's host pid, --json says so" {
	start_daemon "${P}a" -- sleep 30
	[ "$(cat "$BASE/md-probe/${P}a/root/md-probe.pid")" = "$PID" ]
	[ "$(echo "$output" | jq -r .pidfile)" = "$BASE/md-probe/${P}a/root/md-probe.pid" ]
	[ "$(echo "$output" | jq -r .chroot)" = "$BASE/md-probe/${P}a/root" ]
	# daemonized: a session of its own, stdio on /dev/null, not our child
	[ "$(ps -o sid= -p $PID | tr -d ' ')" = "$PID" ] || [ "$(ps -o sid= -p $PID | tr -d ' ')" != "$$" ]
	[ "$(readlink /proc/$PID/fd/1)" = /dev/null ]
	start_daemon "${P}b" --new-pid-ns -- sleep 30
	[ "$(cat "$BASE/md-probe/${P}b/root/md-probe.pid")" = "$PID" ]
	[ "$(awk '/^NSpid:/ {print $2, $3}' /proc/$PID/status)" = "$PID 1" ]
	start_daemon "${P}c" --new-pid-ns -- sleep 30
	[ "$(cat "$BASE/md-probe/${P}c/root/md-probe.pid")" = "$PID" ]
}

@test "Firecracker's extra arguments are added for an exec file named firecracker*" {
	cp "$PROBE" "$BATS_TEST_TMPDIR/firecracker"
	run metald-jail --id "${P}a" --exec-file "$BATS_TEST_TMPDIR/firecracker" --uid 1234 --gid 2345 \
		--chroot-base-dir "$BASE" -- --api-sock /run/firecracker.socket
	[ "$status" -eq 0 ]
	[ "${lines[0]}" = /firecracker ]
	[ "${lines[1]}" = --id ]
	[ "${lines[2]}" = "${P}a" ]
	[ "${lines[3]}" = --start-time-us ]
	[[ "${lines[4]}" =~ ^[0-9]+$ ]]
	[ "${lines[5]}" = --start-time-cpu-us ]
	[ "${lines[7]}" = --parent-cpu-time-us ]
	[ "${lines[9]}" = --api-sock ]
	[ "${lines[10]}" = /run/firecracker.socket ]
	metald-jail clean --id "${P}a" --chroot-base-dir "$BASE"
	# other programs get only what follows --
	run "${J[@]}" --id "${P}b" -- args
	[ "$output" = "/md-probe
args" ]
}

@test "a script written for Firecracker's jailer works with metald-jail in its place" {
	cp "$PROBE" "$BATS_TEST_TMPDIR/firecracker"
	ip netns add "${P}fc"
	local jailer="metald-jail"
	# as in Firecracker's docs: absolute exec file, all flags in the jailer's spelling, args after --
	$jailer --id "${P}fc" --exec-file "$BATS_TEST_TMPDIR/firecracker" --uid 123 --gid 100 \
		--chroot-base-dir "$BASE" --netns "/var/run/netns/${P}fc" --daemonize --new-pid-ns \
		--cgroup-version $CGV --parent-cgroup "$P" --cgroup pids.max=100 \
		--resource-limit fsize=2048 --resource-limit no-file=1024 -- --api-sock /run/firecracker.socket
	local root="$BASE/firecracker/${P}fc/root"
	[ -f "$root/firecracker.pid" ]
	cat "$root/firecracker.pid" >> "$BATS_TEST_TMPDIR/pids"
	[ -x "$root/firecracker" ]
	[ -c "/proc/$(cat "$root/firecracker.pid")/root/dev/kvm" ] && [ -c "/proc/$(cat "$root/firecracker.pid")/root/dev/net/tun" ]
	[ -d $CGBASE/$P/${P}fc ]
	[ "$(cat $CGBASE/$P/${P}fc/pids.max)" = 100 ]
	# reusing the id is refused, as the jailer refuses it
	run_code 4 $jailer --id "${P}fc" --exec-file "$BATS_TEST_TMPDIR/firecracker" --uid 123 --gid 100 \
		--chroot-base-dir "$BASE" -- --api-sock /run/firecracker.socket
	metald-jail clean --id "${P}fc" --chroot-base-dir "$BASE" --exec-file firecracker --kill
	[ ! -e "$BASE/firecracker" ]
	[ ! -e $CGBASE/$P ]
	ip netns del "${P}fc"
}

@test "clean: refuses a running jail, --kill stops it, leaves nothing, and is idempotent" {
	start_daemon "${P}a" --parent-cgroup "$P" --cgroup pids.max=200 -- sleep 30
	run_code 4 metald-jail clean --id "${P}a" --chroot-base-dir "$BASE"
	[[ "$output" == *"in use by pid $PID"* ]]
	kill -0 "$PID"
	run_code 0 metald-jail clean --id "${P}a" --chroot-base-dir "$BASE" --kill --json
	echo "$output" | jq -e '.removed | length >= 2'
	! kill -0 "$PID" 2>/dev/null || [ "$(awk '{print $3}' /proc/$PID/stat)" = Z ]
	[ ! -e "$BASE/md-probe" ]
	[ ! -e $CGBASE/$P ]
	run_code 0 metald-jail clean --id "${P}a" --chroot-base-dir "$BASE"
	[ "$output" = "" ]
	run_code 0 metald-jail clean --id "${P}a" --chroot-base-dir "$BASE" --kill
	# a jail whose program has exited is cleaned without --kill
	run "${J[@]}" --id "${P}b" --parent-cgroup "$P" --cgroup pids.max=200 -- exit 0
	[ -d $CGBASE/$P/${P}b ]
	run_code 0 metald-jail clean --id "${P}b" --chroot-base-dir "$BASE"
	[ ! -e $CGBASE/$P ]
	[ ! -e "$BASE/md-probe" ]
}

@test "errors: bad id, missing exec file, jail in use, unknown controller, bad profile; nothing left behind" {
	run_code 2 "${J[@]}" --id "bad_id" -- exit 0
	[[ "$output" == "metald-jail: "*"jail id \`bad_id\` is invalid"* ]]
	run_code 2 "${J[@]}" --id "$(printf 'a%.0s' {1..65})" -- exit 0
	run -127 metald-jail --id "${P}a" --exec-file /nonexistent/prog --uid 1 --gid 1 --chroot-base-dir "$BASE"
	[[ "$output" == *"exec file \`/nonexistent/prog\`: No such file or directory"* ]]
	run_code 126 metald-jail --id "${P}a" --exec-file /etc/hostname --uid 1 --gid 1 --chroot-base-dir "$BASE"
	run_code 2 "${J[@]}" --id "${P}a" --cgroup pids.max -- exit 0
	run_code 2 "${J[@]}" --id "${P}a" --parent-cgroup "../x" --cgroup pids.max=2 -- exit 0
	run_code 5 "${J[@]}" --id "${P}a" --parent-cgroup "$P" --cgroup nosuchctl.max=1 -- exit 0
	[[ "$output" == *"cgroup controller \`nosuchctl\`"* ]]
	run_code 2 "${J[@]}" --id "${P}a" --parent-cgroup "$P" --cgroup pids.nosuchfile=1 -- exit 0
	run_code 2 "${J[@]}" --id "${P}a" --parent-cgroup "$P" --cgroup pids.max=lots -- exit 0
	[[ "$output" == *"write \`lots\`"*"Invalid argument"* ]]
	echo '{"default_action": "allow", "rules": [{"syscalls": ["no_such_call"], "action": "kill"}]}' > "$BATS_TEST_TMPDIR/bad.json"
	run_code 2 "${J[@]}" --id "${P}a" --seccomp "$BATS_TEST_TMPDIR/bad.json" -- exit 0
	[[ "$output" == *"unknown syscall \`no_such_call\`"* ]]
	echo '{"default_action": "maybe"}' > "$BATS_TEST_TMPDIR/bad2.json"
	run_code 2 "${J[@]}" --id "${P}a" --seccomp "$BATS_TEST_TMPDIR/bad2.json" -- exit 0
	echo '{not json' > "$BATS_TEST_TMPDIR/bad3.json"
	run_code 2 "${J[@]}" --id "${P}a" --seccomp "$BATS_TEST_TMPDIR/bad3.json" -- exit 0
	run_code 3 "${J[@]}" --id "${P}a" --seccomp no-such-profile -- exit 0
	run_code 3 "${J[@]}" --id "${P}a" --netns /run/netns/none-such-$P -- exit 0
	run_code 2 "${J[@]}" --id "${P}a" --bogus-flag -- exit 0
	run_code 2 metald-jail --id "${P}a" --exec-file "$PROBE" --chroot-base-dir "$BASE"
	# a dynamic program without its libraries in the jail: the interpreter is named, nothing is left
	run -127 metald-jail --id "${P}a" --exec-file /bin/true --uid 1 --gid 1 --chroot-base-dir "$BASE"
	[[ "$output" == *"interpreter"* ]]
	[ ! -e "$BASE/true" ]
	# after all of these, nothing exists
	[ -z "$(ls -A "$BASE")" ]
	[ ! -e $CGBASE/$P ]
	# a jail in use: exit 4, and the existing jail is untouched
	start_daemon "${P}b" -- sleep 30
	run_code 4 "${J[@]}" --id "${P}b" -- exit 0
	[[ "$output" == *"jail \`${P}b\` exists"* ]]
	kill -0 "$PID"
	[ -f "$BASE/md-probe/${P}b/root/md-probe.pid" ]
}

@test "kvm-pit: the VMM's kvm-pit/<pid> thread is moved into the jail's cgroup" {
	start_daemon "${P}a" --parent-cgroup "$P" --cgroup pids.max=200 -- sleep 30
	# a stand-in for the kernel thread: a process named kvm-pit/<pid>
	"$PROBE" comm "kvm-pit/$PID" sleep 30 &
	local fake=$!
	wait_for 5 grep -qx "kvm-pit/$PID" /proc/$fake/comm
	run_code 0 metald-jail kvm-pit --id "${P}a" --chroot-base-dir "$BASE" --json
	[ "$(echo "$output" | jq -r '.moved[0]')" = "$fake" ]
	in_cg $fake "$P/${P}a"
	kill $fake
	wait $fake || true
}

@test "20 jails started at once all succeed and all clean up" {
	local i pids=()
	for i in $(seq 1 20); do
		"${J[@]}" --id "${P}p$i" --parent-cgroup "$P" --cgroup pids.max=100 --daemonize --json -- sleep 30 \
			> "$BATS_TEST_TMPDIR/out$i" 2>&1 &
		pids+=($!)
	done
	for i in "${!pids[@]}"; do
		wait "${pids[$i]}" || { cat "$BATS_TEST_TMPDIR/out$((i + 1))" >&2; return 1; }
	done
	for i in $(seq 1 20); do
		local pid
		pid=$(jq -r .pid "$BATS_TEST_TMPDIR/out$i")
		echo "$pid" >> "$BATS_TEST_TMPDIR/pids"
		in_cg $pid "$P/${P}p$i"
	done
	[ "$(ls $CGBASE/$P | grep -c "^${P}p")" = 20 ]
	for i in $(seq 1 20); do
		metald-jail clean --id "${P}p$i" --chroot-base-dir "$BASE" --kill &
		pids[$((i - 1))]=$!
	done
	for i in "${!pids[@]}"; do
		wait "${pids[$i]}"
	done
	[ ! -e "$BASE/md-probe" ]
	[ ! -e $CGBASE/$P ]
}

@test "--help lists every option and --version answers" {
	run_code 0 metald-jail --help
	for o in id exec-file uid gid chroot-base-dir netns daemonize new-pid-ns cgroup cgroup-version parent-cgroup \
		resource-limit bind link tmpfs exec-mode seccomp userns cap-keep json kill; do
		[[ "$output" == *"--$o"* ]]
	done
	run_code 0 metald-jail --version
}

@test "QEMU boots the test guest in a jail under the qemu allow-list profile, and QMP works" {
	require_cmd qemu-system-x86_64 socat
	local G="$METALD_TOP/build/guest" out cmdline
	out=$(sh "$METALD_TOP/share/metald/guest/build-guest" --out "$G" 2>/dev/null) || md_skip "cannot build the test guest"
	cmdline=$(echo "$out" | jq -r .cmdline)
	# private copies: --link gives the linked files to the jail's uid
	mkdir -p "$BATS_TEST_TMPDIR/g"
	cp "$G/vmlinuz" "$G/initrd.cpio.gz" "$G/rootfs.ext4" "$BATS_TEST_TMPDIR/g/"
	local g="$BATS_TEST_TMPDIR/g"
	run metald-jail --id "${P}q" --exec-file /usr/bin/qemu-system-x86_64 --exec-mode bind --uid 1234 --gid 2345 \
		--chroot-base-dir "$BASE" --seccomp qemu --daemonize --new-pid-ns --json \
		--bind /usr/lib:/usr/lib:ro --bind /usr/lib:/lib:ro --bind /usr/lib64:/lib64:ro \
		--bind /usr/share/qemu:/usr/share/qemu:ro --bind /usr/share/seabios:/usr/share/seabios:ro \
		--bind /dev/null:/dev/null --link "$g/vmlinuz:/vmlinuz" --link "$g/initrd.cpio.gz:/initrd" \
		--link "$g/rootfs.ext4:/rootfs.ext4" \
		-- -L /usr/share/qemu -M microvm -accel tcg -m 256 -nodefaults -no-user-config -nographic \
		-serial file:/run/serial -no-reboot -kernel /vmlinuz -initrd /initrd \
		-drive id=d0,file=/rootfs.ext4,format=raw,if=none -device virtio-blk-device,drive=d0 \
		-qmp unix:/run/qmp.sock,server=on,wait=off -append "$cmdline metald.run=\"echo hello-from-the-jail\""
	[ "$status" -eq 0 ] || { echo "$output" >&2; return 1; }
	local pid root="$BASE/qemu-system-x86_64/${P}q/root"
	pid=$(echo "$output" | jq -r .pid)
	echo "$pid" >> "$BATS_TEST_TMPDIR/pids"
	[ "$(field $pid Seccomp)" = 2 ]
	[ "$(field $pid CapEff)" = 0000000000000000 ]
	wait_for 60 grep -q METALD-GUEST-READY "$root/run/serial"
	wait_for 30 grep -q hello-from-the-jail "$root/run/serial"
	printf '{"execute":"qmp_capabilities"}\n{"execute":"system_powerdown"}\n' |
		socat -t2 - "UNIX-CONNECT:$root/run/qmp.sock" | grep -q POWERDOWN
	wait_for 20 test ! -d "/proc/$pid/fd"
	# QEMU exited by itself (no SIGSYS on the way): the guest said it powered off
	grep -q 'reboot: Power down' "$root/run/serial"
	metald-jail clean --id "${P}q" --chroot-base-dir "$BASE" --exec-file qemu-system-x86_64
}
