#!/bin/sh
# Benchmark of metald-meter run: CPU per metered VM at a 100 ms interval with 10, 50, 100 and 300
# cgroups of idle processes, the sampling interval's jitter, and sample-to-ledger latency.
# Needs root (it makes v1 cgroups named mtb<random>-N and removes them). Prints a Markdown table.
# Environment: BENCH_SECONDS (measured seconds per size, default 20), BENCH_RUN_OPTS (more run options,
# e.g. "--sync 0"), BENCH_BILLING (0: no billing row), BENCH_SIZES (default
# "10 50 100 300"), METALD_BUILD (default build).
set -eu
cd "$(dirname "$0")/../.."
BIN=${METALD_BUILD:-build}/bin/metald-meter
SECS=${BENCH_SECONDS:-20}
SIZES=${BENCH_SIZES:-10 50 100 300}
[ "$(id -u)" = 0 ] || { echo "meter bench: needs root" >&2; exit 1; }
[ -x "$BIN" ] || { echo "meter bench: build first (make)" >&2; exit 1; }
P="mtb$(od -An -N3 -tx1 /dev/urandom | tr -d ' \n')"
T=$(mktemp -d /tmp/metald-bench-meter.XXXXXX)
PIDS=""
MPID=""

cleanup() {
	[ -n "$MPID" ] && kill -9 "$MPID" 2>/dev/null
	for p in $PIDS; do kill -9 "$p" 2>/dev/null; done
	wait 2>/dev/null || true
	for d in /sys/fs/cgroup/cpuacct/"$P"-* /sys/fs/cgroup/memory/"$P"-* /sys/fs/cgroup/blkio/"$P"-*; do
		[ -d "$d" ] && rmdir "$d"
	done
	rm -rf "$T"
}
trap cleanup EXIT INT TERM

# CPU time of all the process's threads in ns (schedstat: exact, unlike clock ticks)
cpu_ns() { cat /proc/"$1"/task/*/schedstat | awk '{ s += $1 } END { printf "%d\n", s }'; }

mkvm() { # i
	for c in cpuacct memory blkio; do mkdir -p "/sys/fs/cgroup/$c/$P-$1"; done
	sleep 100000 </dev/null >/dev/null 2>&1 &
	pid=$!
	PIDS="$PIDS $pid"
	for c in cpuacct memory blkio; do echo "$pid" > "/sys/fs/cgroup/$c/$P-$1/cgroup.procs"; done
	st=$(awk '{ sub(/.*\) /, ""); print $20 }' "/proc/$pid/stat")
	printf '{"id":"b%s","customer_id":"c","tenant":"t","vmm":"none","pid":%s,"pid_start":%s,"cgroup":{"version":1,"paths":{"cpuacct":"/sys/fs/cgroup/cpuacct/%s-%s","memory":"/sys/fs/cgroup/memory/%s-%s","blkio":"/sys/fs/cgroup/blkio/%s-%s"}},"net":null}\n' \
		"$1" "$pid" "$st" "$P" "$1" "$P" "$1" "$P" "$1" > "$T/r/run/meter/.b$1"
	mv "$T/r/run/meter/.b$1" "$T/r/run/meter/b$1.json"
}

# measure LABEL N [run options...]: one row
measure() {
	label=$1
	n=$2
	shift 2
	rm -rf "$T/r/data"
	# shellcheck disable=SC2086
	"$BIN" --root "$T/r" run --stats-file "$T/stats.json" "$@" ${BENCH_RUN_OPTS:-} 2>"$T/meter.err" &
	MPID=$!
	sleep 3 # warm up: every VM found, first records written
	c0=$(cpu_ns "$MPID")
	t0=$(date +%s%N)
	sleep "$SECS"
	c1=$(cpu_ns "$MPID")
	t1=$(date +%s%N)
	kill -TERM "$MPID"
	wait "$MPID"
	MPID=""
	pct=$(awk -v c="$((c1 - c0))" -v ns="$((t1 - t0))" 'BEGIN { printf "%.3f", c / ns * 100 }')
	jq -r --arg l "$label" --arg n "$n" --arg pct "$pct" '
		def ms: if . == null then "-" else (. / 1000 * 100 | round / 100 | tostring) end;
		"| \($l) | \($pct) | \(($pct | tonumber) / ($n | tonumber) * 100 * 1000 | round / 1000) | " +
		"\(.tick_lateness.p50_us | ms) / \(.tick_lateness.p99_us | ms) / \(.tick_lateness.max_us | ms) | " +
		"\(.tick_work.p99_us | ms) | \(.sample_to_ledger_write.p99_us | ms) | " +
		"\(.sample_to_durable_max_us | ms) | \(.missed_ticks) |"' "$T/stats.json"
}

echo "| VMs | CPU % of one core | CPU % per 100 VMs | tick lateness p50 / p99 / max (ms) | tick work p99 (ms) | sample-to-ledger write p99 (ms) | sample-to-durable max (ms) | missed ticks |"
echo "|---|---|---|---|---|---|---|---|"
have=0
mkdir -p "$T/r/run/meter"
for n in $SIZES; do
	while [ "$have" -lt "$n" ]; do have=$((have + 1)); mkvm "$have"; done
	measure "$n" "$n" --billing off
done
# the same with delivery to the loopback billing test double (the meter's CPU only)
if [ "${BENCH_BILLING:-1}" = 1 ]; then
	python3 t/helpers/billing-receiver --port-file "$T/port" --log /dev/null </dev/null >/dev/null 2>&1 &
	RPID=$!
	PIDS="$PIDS $RPID"
	i=0
	while [ ! -s "$T/port" ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
	measure "$have, billing on, 1 s period" "$have" --billing send --billing-endpoint "http://127.0.0.1:$(cat "$T/port")" --period 1s
fi
