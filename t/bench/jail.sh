#!/bin/sh
# Benchmark metald-jail against bubblewrap: median wall time from start to the probe's exit, over
# N runs (default 200), without and with cgroups, plus 20 jails started at once. Run as root after
# `make`. Prints a Markdown table; BENCH_OUT=FILE also writes it there.
set -eu
cd "$(dirname "$0")/../.."
N=${BENCH_RUNS:-200}
TOP=$(pwd)
J="$TOP/build/bin/metald-jail"
PROBE="$TOP/build/t/helpers/md-probe"
[ "$(id -u)" = 0 ] || { echo "bench: needs root" >&2; exit 1; }
[ -x "$J" ] && [ -x "$PROBE" ] || { echo "bench: run make first" >&2; exit 1; }
command -v bwrap >/dev/null || { echo "bench: needs bubblewrap (apt-get install bubblewrap)" >&2; exit 1; }
W=$(mktemp -d /tmp/metald-bench.XXXXXX)
SHM=$(mktemp -d /dev/shm/metald-bench.XXXXXX)
PARENT="mtbench$$"
export UNKEY_METALD_RUN_DIR="$W/run" # the compiled seccomp profiles
trap 'rm -rf "$W" "$SHM"' EXIT INT TERM

# bubblewrap takes a compiled BPF program: export metald's default profile with libseccomp.
cat > "$W/export.c" <<'C'
#include <stdio.h>
#include <seccomp.h>
int md_seccomp_compile(const char *path, scmp_filter_ctx *ctx, void **err);
int main(int argc, char **argv)
{
	scmp_filter_ctx ctx;
	void *err = NULL;
	(void)argc;
	if (md_seccomp_compile(argv[1], &ctx, &err) < 0)
		return 1;
	return seccomp_export_bpf(ctx, 1) < 0;
}
C
cc -o "$W/export" "$W/export.c" build/lib/libmetald.a $(pkg-config --libs libseccomp jansson)
"$W/export" share/metald/seccomp/default.json > "$W/default.bpf"
mkdir -p "$W/bwroot" "$W/base"
cp "$PROBE" "$W/bwroot/md-probe"

python3 - "$N" "$J" "$PROBE" "$W" "$PARENT" "$SHM" > "$W/table" <<'PY'
import os, statistics, subprocess, sys, time
n, J, probe, W, parent, shm = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5], sys.argv[6]
base = W + "/base"
def jail(i, extra, b=None):
    return [J, "--id", "b%d" % i, "--exec-file", probe, "--uid", "1000", "--gid", "1000",
            "--chroot-base-dir", b or base] + extra + ["--", "exit", "0"]
def clean(i, b=None):
    subprocess.run([J, "clean", "--id", "b%d" % i, "--chroot-base-dir", b or base, "--exec-file", "md-probe"], check=True)
bpf = W + "/default.bpf"
bw = ["bwrap", "--unshare-all", "--share-net", "--bind", W + "/bwroot", "/", "--cap-drop", "ALL",
      "--new-session", "--clearenv", "--seccomp", "9", "--", "/md-probe", "exit", "0"]
def bwrap_run():
    fd = os.open(bpf, os.O_RDONLY)
    os.dup2(fd, 9); os.close(fd)
    t = time.perf_counter()
    subprocess.run(bw, check=True, pass_fds=(9,))
    return time.perf_counter() - t
def timed(cmd):
    t = time.perf_counter()
    subprocess.run(cmd, check=True)
    return time.perf_counter() - t
cases = {"metald-jail": [], "metald-jail, cgroups (v1 cpu, memory)": [], "metald-jail, --exec-mode bind": [],
         "metald-jail, cgroups, --exec-mode bind, base on tmpfs": [], "bubblewrap": []}
cg = ["--parent-cgroup", parent, "--cgroup", "cpu.shares=100", "--cgroup", "memory.limit_in_bytes=268435456"]
k = 0
for r in range(n):  # interleaved, so machine load hits every case alike
    for name, extra in (("metald-jail", []), ("metald-jail, cgroups (v1 cpu, memory)", cg),
                        ("metald-jail, --exec-mode bind", ["--exec-mode", "bind"])):
        k += 1
        cases[name].append(timed(jail(k, extra)))
        clean(k)
    k += 1
    cases["metald-jail, cgroups, --exec-mode bind, base on tmpfs"].append(timed(jail(k, cg + ["--exec-mode", "bind"], shm)))
    clean(k, shm)
    cases["bubblewrap"].append(bwrap_run())
bw_med = statistics.median(cases["bubblewrap"])
print("| runs: %d | median ms | p90 ms | vs bubblewrap |" % n)
print("|---|---:|---:|---:|")
for name, v in cases.items():
    v.sort()
    med = statistics.median(v)
    print("| %s | %.2f | %.2f | %.2fx |" % (name, med * 1e3, v[int(len(v) * 0.9)] * 1e3, med / bw_med))
# 20 jails at once (with cgroups): wall time until all 20 probes have exited
for attempt in range(3):
    t = time.perf_counter()
    ps = [subprocess.Popen(jail(100000 + attempt * 100 + i, cg)) for i in range(20)]
    rc = [p.wait() for p in ps]
    dt = time.perf_counter() - t
    assert rc == [0] * 20, rc
    for i in range(20):
        clean(100000 + attempt * 100 + i)
    print("| 20 jails at once, cgroups (run %d) | %.1f total | | |" % (attempt + 1, dt * 1e3))
PY
cat "$W/table"
if [ -n "${BENCH_OUT:-}" ]; then
	{ echo "metald-jail vs bubblewrap, $(date -u +%Y-%m-%dT%H:%MZ), load $(cut -d' ' -f1 /proc/loadavg)"; echo; cat "$W/table"; } > "$BENCH_OUT"
fi
