#!/bin/bash
# Benchmark metald-net create/delete against a shell script of ip/nft/tc commands that builds the
# same per-VM topology (netns, tap + bridge inside, veth to the tenant bridge, set elements), in
# the same run, inside a throw-away "host" namespace. Needs root. Prints a markdown table.
#   N=200 (VMs per median)  BIG=500 (VMs for the 1st-vs-500th comparison)
#   RUN_TMPFS=1: both sides pin their VMs' namespaces in /run/netns on a tmpfs, as on a systemd
#   host, mounted in a mount namespace of the benchmark's own (only the throw-away host namespace
#   is pinned in the machine's /run/netns); RUN_TMPFS=0: in the machine's /run, whatever file
#   system that is
set -eu
cd "$(dirname "$0")/../.."
N=${N:-200}
BIG=${BIG:-500}
BIN=${METALD_BUILD:-build}/bin/metald-net
RUN_TMPFS=${RUN_TMPFS:-1}
# what a run leaves when it fails half-way: VMs and the script's namespaces are removed where their
# pins are (inside the tmpfs mount namespace, by its shell, when there is one), then the host
# namespace with its bridges and nft table
undo_vms() {
	local in=(nsenter --net="/run/netns/$HOST")
	[ "${MD_BENCH_INNER:-}" != 1 ] || in=()
	UNKEY_METALD_DATA_DIR="$ROOT/data" UNKEY_METALD_RUN_DIR="$ROOT/run" UNKEY_METALD_NETNS_DIR="$PINS" \
		"${in[@]}" "$BIN" teardown --force >/dev/null 2>&1 || true
	for ns in $(ip netns list | awk '{print $1}' | grep "^${P}b" || true); do ip netns del "$ns"; done
}
cleanup() {
	# with RUN_TMPFS=1 the VMs' pins went with the mount namespace, and its shell removed the rest
	[ "$RUN_TMPFS" = 1 ] || [ -z "$PINS" ] || [ -z "$ROOT" ] || undo_vms
	ip netns del "$HOST" 2>/dev/null || true
	[ -z "$ROOT" ] || rm -rf "$ROOT"
	[ -z "$PINS" ] || rmdir "$PINS" 2>/dev/null || true
}
if [ "${MD_BENCH_INNER:-}" != 1 ]; then
	P="mtb$(od -An -N2 -tx1 /dev/urandom | tr -d ' \n')"
	HOST="${P}host"
	ROOT='' PINS=''
	trap cleanup EXIT
	ROOT=$(mktemp -d /tmp/metald-bench.XXXXXX)
	[ "$RUN_TMPFS" = 1 ] || PINS=$(mktemp -d /run/metald-bench.XXXXXX)
	ip netns add "$HOST"
	ip -n "$HOST" link set lo up
fi
# Everything below runs inside the host namespace (one nsenter for the whole run, so neither side
# pays one per command); times come from bash's own clock, no process per reading.
H() { "$@"; }
if [ "${MD_BENCH_INNER:-}" != 1 ]; then
	if [ "$RUN_TMPFS" = 1 ]; then
		# a mount namespace of our own whose /run/netns is a fresh tmpfs: both sides' pins go
		# there and vanish with it; the host namespace was entered before, by its pin outside
		MD_BENCH_INNER=1 P=$P HOST=$HOST ROOT=$ROOT PINS=/run/netns nsenter --net="/run/netns/$HOST" \
			unshare --mount --propagation private \
			bash -c 'mount -t tmpfs -o mode=0755,size=64m metald-bench /run/netns && exec bash "$0"' "$0"
	else
		MD_BENCH_INNER=1 P=$P HOST=$HOST ROOT=$ROOT PINS=$PINS nsenter --net="/run/netns/$HOST" bash "$0"
	fi
	exit $?
fi
export UNKEY_METALD_DATA_DIR="$ROOT/data" UNKEY_METALD_RUN_DIR="$ROOT/run" UNKEY_METALD_NETNS_DIR="$PINS"
if [ "$RUN_TMPFS" = 1 ]; then trap undo_vms EXIT; else trap - EXIT; fi
minimum() { sort -n | head -1 | awk '{printf "%.2f", $1 / 1e6}'; }
median() { sort -n | awk '{a[NR]=$1} END {m = NR % 2 ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2; printf "%.2f", m / 1e6}'; }

# The script first, on a machine no earlier phase has loaded (the kernel tears namespaces down in
# the background, ext4 skips inodes deleted in the last minute): what it measures is not made
# slower by metald-net's runs. Each side sees only its own objects (`ip netns exec` copies the
# mount table, so it slows down with every pin present).
script_create() { # $1: VM number
	local i=$1 ns="${P}b$1" hl="${P}v$1"
	ip netns add "$ns"
	ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
	ip -n "$ns" link add br0 type bridge
	ip -n "$ns" tuntap add tap0 mode tap user 0 group 0
	ip -n "$ns" link set tap0 master br0 up
	ip -n "$ns" link set br0 up
	H ip link add "$hl" type veth peer name veth0 netns "$ns"
	H ip link set "$hl" master "${P}t$((i % 4))" up
	ip -n "$ns" link set veth0 master br0 up
	script_elements add "$i"
}
script_delete() {
	local ns="${P}b$1"
	H ip link set "${P}v$1" down nomaster
	script_elements delete "$1"
	ip netns del "$ns"
}
# the VM's four anti-spoofing set elements, added or deleted in one nft transaction
script_elements() { # add|delete VM-number
	local op=$1 i=$2 hl="${P}v$2" mac
	printf -v mac '02:00:00:00:%02x:%02x' $((i / 256)) $((i % 256))
	H nft -f - <<NFT
$op element bridge mdbase ports { "$hl" }
$op element bridge mdbase macs { "$hl" . $mac }
$op element bridge mdbase addr4 { "$hl" . 10.99.$((i % 4)).$((i / 4 + 2)) }
$op element bridge mdbase addr6 { "$hl" . fd99::$i, "$hl" . :: }
NFT
}
# run "$@", its time in ns appended to $ROOT/$1.ns
timed() {
	local f=$1 t
	shift
	t=${EPOCHREALTIME/./}
	"$@"
	echo $(( (${EPOCHREALTIME/./} - t) * 1000 )) >> "$ROOT/$f.ns"
}

H nft -f - <<'NFT'
table bridge mdbase {
	set ports { type ifname; }
	set macs { type ifname . ether_addr; }
	set addr4 { type ifname . ipv4_addr; }
	set addr6 { type ifname . ipv6_addr; }
}
NFT
for t in 0 1 2 3; do
	H ip link add "${P}t$t" type bridge
	H ip addr add "10.99.$t.1/24" dev "${P}t$t"
	H ip link set "${P}t$t" up
done
for f in screate sdelete create delete pcreate pdelete; do : > "$ROOT/$f.ns"; done
for i in $(seq 1 "$N"); do timed screate script_create "$i"; done
for i in $(seq 1 "$N"); do timed sdelete script_delete "$i"; done
H nft delete table bridge mdbase
for t in 0 1 2 3; do H ip link del "${P}t$t"; done
sc=$(median < "$ROOT/screate.ns"); sd=$(median < "$ROOT/sdelete.ns")
scl=$(minimum < "$ROOT/screate.ns"); sdl=$(minimum < "$ROOT/sdelete.ns")

# --- metald-net building each namespace, then from a pool filled beforehand (`pool fill`, timed on
# its own, per namespace) ---
H "$BIN" setup
for i in $(seq 1 "$N"); do
	timed create H "$BIN" create --id "v$i" --tenant "t$((i % 4))" --uid 1000 --gid 1000 >/dev/null
done
for i in $(seq 1 "$N"); do timed delete H "$BIN" delete --id "v$i"; done
t=${EPOCHREALTIME/./}; H "$BIN" pool fill --count "$N" >/dev/null; fill=$(( (${EPOCHREALTIME/./} - t) * 1000 / N ))
for i in $(seq 1 "$N"); do
	timed pcreate H "$BIN" create --id "p$i" --tenant "t$((i % 4))" --uid 1000 --gid 1000 >/dev/null
done
pooled=$(grep -c '"host_link": "mdp' "$ROOT"/data/net/vms/p*.json | awk -F: '{s += $NF} END {print s}')
for i in $(seq 1 "$N"); do timed pdelete H "$BIN" delete --id "p$i"; done
mc=$(median < "$ROOT/create.ns"); md=$(median < "$ROOT/delete.ns")
mcl=$(minimum < "$ROOT/create.ns"); mdl=$(minimum < "$ROOT/delete.ns")
mp=$(median < "$ROOT/pcreate.ns"); mpl=$(minimum < "$ROOT/pcreate.ns")
mpd=$(median < "$ROOT/pdelete.ns"); mpdl=$(minimum < "$ROOT/pdelete.ns")
fill=$(awk -v n="$fill" 'BEGIN{printf "%.2f", n / 1e6}')

# --- with UNKEY_METALD_NETWORK_POOL=8: each create tops the pool up in the background, and the
# next create follows at once (the refill competes with it for the CPUs and the kernel's locks) ---
: > "$ROOT/rcreate.ns"
export UNKEY_METALD_NETWORK_POOL=8
H "$BIN" pool fill >/dev/null
for i in $(seq 1 "$N"); do
	timed rcreate H "$BIN" create --id "r$i" --tenant "t$((i % 4))" --uid 1000 --gid 1000 >/dev/null
done
H "$BIN" pool fill >/dev/null # waits for the last refill
claimed=$(grep -c '"host_link": "mdp' "$ROOT"/data/net/vms/r*.json | awk -F: '{s += $NF} END {print s}')
for i in $(seq 1 "$N"); do H "$BIN" delete --id "r$i"; done
unset UNKEY_METALD_NETWORK_POOL
H "$BIN" pool drain >/dev/null
mr=$(median < "$ROOT/rcreate.ns"); mrl=$(minimum < "$ROOT/rcreate.ns")

# 1st vs 500th: medians of the first and last 10 creates of BIG VMs (one tenant per 250)
: > "$ROOT/big.ns"
export UNKEY_METALD_NETWORK_TENANT_PREFIX_IPV4=22
for i in $(seq 1 "$BIG"); do
	timed big H "$BIN" create --id "w$i" --tenant "u$((i % 2))" >/dev/null
done
first=$(head -10 "$ROOT/big.ns" | median); last=$(tail -10 "$ROOT/big.ns" | median)
for i in $(seq 1 "$BIG"); do H "$BIN" delete --id "w$i"; done
unset UNKEY_METALD_NETWORK_TENANT_PREFIX_IPV4

ratio() { awk -v a="$1" -v b="$2" 'BEGIN{printf "%.1f", a/b}'; }
echo "| per VM, $N VMs | metald-net median | script median | ratio | metald-net fastest | script fastest | ratio |"
echo "|---|---|---|---|---|---|---|"
echo "| create, building the namespace | $mc ms | $sc ms | $(ratio "$sc" "$mc")x | $mcl ms | $scl ms | $(ratio "$scl" "$mcl")x |"
echo "| create, from a pool filled beforehand | $mp ms | $sc ms | $(ratio "$sc" "$mp")x | $mpl ms | $scl ms | $(ratio "$scl" "$mpl")x |"
echo "| delete (built) | $md ms | $sd ms | $(ratio "$sd" "$md")x | $mdl ms | $sdl ms | $(ratio "$sdl" "$mdl")x |"
echo "| delete (from the pool) | $mpd ms | $sd ms | $(ratio "$sd" "$mpd")x | $mpdl ms | $sdl ms | $(ratio "$sdl" "$mpdl")x |"
echo "| create, pool of 8 refilled after each create | $mr ms | $sc ms | $(ratio "$sc" "$mr")x | $mrl ms | $scl ms | $(ratio "$scl" "$mrl")x |"
echo "filling the pool: $fill ms per namespace; $pooled of $N creates took a namespace from the filled pool; with refills, $claimed of $N creates took a namespace from the pool"
echo "load average after the run: $(cut -d' ' -f1-3 /proc/loadavg); namespace pins on $(stat -f -c %T "$PINS") ($PINS)"
echo
echo "| metald-net create, $BIG VMs | median of VMs 1-10 | median of VMs $((BIG - 9))-$BIG | ratio |"
echo "|---|---|---|---|"
echo "| | $first ms | $last ms | $(awk -v a="$last" -v b="$first" 'BEGIN{printf "%.2f", a/b}') |"
