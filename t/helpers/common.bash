# Shared bats helpers: paths to the programs under test, skips that become failures in CI,
# throw-away "host"/"upstream" network namespaces, and a leak check run after every test.

METALD_TOP=${METALD_TOP:-$(cd "$BATS_TEST_DIRNAME/.." && pwd)}
METALD_BUILD=${METALD_BUILD:-build}
MD_BIN="$METALD_TOP/$METALD_BUILD/bin"
MD_PROBES="$METALD_TOP/$METALD_BUILD/t/helpers"
PATH="$MD_BIN:$PATH"
export PATH METALD_TOP METALD_BUILD

# Skip with a reason; under METALD_REQUIRE_ALL=1 (CI) a skip is a failure instead.
md_skip() {
	if [ "${METALD_REQUIRE_ALL:-0}" = 1 ]; then
		echo "required in CI but unavailable: $*" >&2
		return 1
	fi
	skip "$*"
}
require_root() { [ "$(id -u)" = 0 ] || md_skip "needs root"; }
require_cmd() { local c; for c; do command -v "$c" >/dev/null 2>&1 || md_skip "needs $c"; done; }

# A short unique prefix for names of this test's objects (interface names stay under 15 bytes).
# Chosen when this file is loaded (once per test), so $(md_prefix) in subshells agrees.
MD_PFX=${MD_PFX:-mt$(od -An -N3 -tx1 /dev/urandom | tr -d ' \n')}
md_prefix() { echo "$MD_PFX"; }

# run_code N cmd...: run and assert the exit status.
run_code() {
	local want=$1
	shift
	run "$@"
	if [ "$status" -ne "$want" ]; then
		echo "expected exit $want, got $status from: $*" >&2
		echo "output: $output" >&2
		return 1
	fi
}

# A "host" netns and an "upstream" netns (the internet), joined by a veth:
#   upstream: ${P}u1 198.18.0.1/30, 2001:db8:ffff::1/64      host: ${P}u0 198.18.0.2/30, 2001:db8:ffff::2/64
# with the host's default routes via upstream. Only addresses in these namespaces are ever used.
MD_UP4=198.18.0.1
MD_UP6=2001:db8:ffff::1
netns_up() {
	local p
	p=$(md_prefix)
	MD_HOSTNS="${p}host"
	MD_UPNS="${p}up"
	ip netns add "$MD_HOSTNS"
	ip netns add "$MD_UPNS"
	ip -n "$MD_HOSTNS" link add "${p}u0" type veth peer name "${p}u1" netns "$MD_UPNS"
	ip -n "$MD_HOSTNS" link set lo up
	ip -n "$MD_UPNS" link set lo up
	ip netns exec "$MD_UPNS" sysctl -qw net.ipv6.conf.all.accept_dad=0 net.ipv6.conf.default.accept_dad=0
	ip netns exec "$MD_HOSTNS" sysctl -qw net.ipv6.conf.all.accept_dad=0 net.ipv6.conf.default.accept_dad=0
	ip -n "$MD_UPNS" addr add "$MD_UP4/30" dev "${p}u1"
	ip -n "$MD_UPNS" addr add "$MD_UP6/64" dev "${p}u1" nodad
	ip -n "$MD_HOSTNS" addr add 198.18.0.2/30 dev "${p}u0"
	ip -n "$MD_HOSTNS" addr add 2001:db8:ffff::2/64 dev "${p}u0" nodad
	ip -n "$MD_UPNS" link set "${p}u1" up
	ip -n "$MD_HOSTNS" link set "${p}u0" up
	ip -n "$MD_HOSTNS" route add default via "$MD_UP4"
	ip -n "$MD_HOSTNS" -6 route add default via "$MD_UP6"
	export MD_HOSTNS MD_UPNS
}
netns_down() {
	[ -n "${MD_HOSTNS:-}" ] && ip netns del "$MD_HOSTNS" 2>/dev/null
	[ -n "${MD_UPNS:-}" ] && ip netns del "$MD_UPNS" 2>/dev/null
	return 0
}
in_host() { ip netns exec "$MD_HOSTNS" "$@"; }
in_up() { ip netns exec "$MD_UPNS" "$@"; }

# Leak check: what exists after a test that did not before it. Call leak_snapshot in setup and
# leak_check at the end of teardown (after the test's own cleanup).
_leak_state() {
	{
		ip netns list 2>/dev/null | awk '{print "netns " $1}'
		ip -o link show 2>/dev/null | awk -F': ' '{sub(/@.*/, "", $2); print "link " $2}'
		awk '{print "mount " $5}' /proc/self/mountinfo
		find /sys/fs/cgroup -mindepth 1 -maxdepth 3 -type d \( -name 'metald*' -o -name 'mt*' -o -name 'firecracker' \) 2>/dev/null | sed 's/^/cgroup /'
		# zombies are skipped: they have exited and wait only for init (which may reap lazily)
		ps -eo pid=,stat=,comm= | awk '$2 !~ /^Z/ && $3 ~ /^(qemu-system|metald-|firecracker|md-probe|fc-standin)/ {print "proc " $1 " " $3}'
	} | sort
}
leak_snapshot() { _leak_state > "$BATS_TEST_TMPDIR/.leak-before"; }

# Outside CI other test runs may share this machine: an object is then only ours when it names
# this test's prefix or this bats run's directory (or, for a process, its cgroup does). In CI
# (METALD_REQUIRE_ALL=1) nothing else runs and every new object counts.
_leak_ours() {
	[ "${METALD_REQUIRE_ALL:-0}" = 1 ] && { cat; return; }
	local kind rest pid
	while read -r kind rest; do
		case $kind in
		proc)
			pid=${rest%% *}
			if grep -qs -e "$MD_PFX" -e "${BATS_RUN_TMPDIR:-/nonexistent}" "/proc/$pid/cmdline" "/proc/$pid/cgroup"; then
				echo "$kind $rest"
			fi ;;
		*)
			case $rest in
			*"$MD_PFX"* | *"${BATS_RUN_TMPDIR:-/nonexistent}"*) echo "$kind $rest" ;;
			*mt[0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f]* | */bats-run-*) ;;
			*) echo "$kind $rest" ;;
			esac ;;
		esac
	done
}

leak_check() {
	[ -f "$BATS_TEST_TMPDIR/.leak-before" ] || return 0
	local extra
	extra=$(_leak_state | comm -13 "$BATS_TEST_TMPDIR/.leak-before" - | _leak_ours)
	if [ -n "$extra" ]; then
		echo "leaked by this test:" >&2
		echo "$extra" >&2
		return 1
	fi
}

# wait_for SECONDS cmd...: poll a condition every 50 ms.
wait_for() {
	local deadline=$(( $(date +%s%N) + $1 * 1000000000 ))
	shift
	while ! "$@" >/dev/null 2>&1; do
		[ "$(date +%s%N)" -lt "$deadline" ] || return 1
		sleep 0.05
	done
}

# without_libcurl cmd...: run cmd where libcurl.so.4 cannot be loaded (a private mount namespace
# with /dev/null bound over the library), to test the programs' dlopen() of it. Needs root.
without_libcurl() {
	local lib
	lib=$(ldconfig -p | awk '$1 == "libcurl.so.4" { print $NF; exit }')
	[ -n "$lib" ] || { echo "without_libcurl: libcurl.so.4 is not installed" >&2; return 1; }
	unshare --mount --propagation private sh -c 'mount --bind /dev/null "$0" && exec "$@"' "$lib" "$@"
}
