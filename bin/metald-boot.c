/* metald-boot: configure, start and control one VM through its VMM's API (Firecracker REST, QEMU QMP). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cleanup.h"
#include "cli.h"
#include "config.h"
#include "curl-load.h"
#include "parse.h"
#include "state.h"
#include "vmm-firecracker.h"
#include "vmm-qemu.h"
#include "vmspec.h"

static const char usage[] =
	"Usage: metald-boot VERB [OPTIONS]\n"
	"\n"
	"Drive one VM's VMM: build QEMU's command line, boot the VM through the VMM's API, and pause,\n"
	"resume, stop, reboot, query, flush or snapshot it. Works with a VMM started any way.\n"
	"\n"
	"Verbs:\n"
	"  argv      print the VMM command line for a config (QEMU: -M microvm ... -S)\n"
	"            --vmm qemu --config FILE [--net FILE] --qmp SOCK [--serial FILE] [--accel A] [--name N]\n"
	"            --vmm firecracker --socket SOCK [--name N]\n"
	"  accel     print the accelerator QEMU would use (kvm or tcg) and why: --kernel FILE | --config FILE\n"
	"  start     configure and boot: --vmm V --socket SOCK --config FILE [--net FILE] [--timeout D]\n"
	"            Firecracker only: [--log FILE] [--log-level L] [--metrics FILE] [--serial FILE]\n"
	"  pause     pause the vCPUs              --vmm V --socket SOCK\n"
	"  resume    resume them                  --vmm V --socket SOCK\n"
	"  shutdown  graceful stop, then kill     --vmm V --socket SOCK [--timeout D] [--force] [--pid PID]\n"
	"  reboot    reboot the guest             --vmm V --socket SOCK [--timeout D]\n"
	"  status    state, pid, vCPU threads     --vmm V --socket SOCK [--full] [--json]\n"
	"  flush-metrics  Firecracker FlushMetrics; QEMU prints its block counters\n"
	"  snapshot  Firecracker: --snapshot FILE --mem FILE [--diff] (the VM must be paused)\n"
	"  restore   Firecracker: --snapshot FILE --mem FILE [--resume] (on a fresh process)\n"
	"\n"
	"Options:\n"
	"      --vmm qemu|firecracker  the VMM (default: $UNKEY_METALD_BACKEND)\n"
	"      --socket SOCK     the VMM API socket (Firecracker API socket or QEMU QMP socket)\n"
	"      --qmp SOCK        argv: QEMU's QMP socket path\n"
	"      --config FILE     the VM config: the original's VmConfig or CreateVmRequest JSON (- = stdin)\n"
	"      --net FILE        metald-net create --json output (tap, MAC, ip= arguments, rate limits)\n"
	"      --serial FILE     the guest's serial console goes to FILE (stdio: QEMU's stdout)\n"
	"      --accel auto|kvm|tcg  QEMU accelerator (default auto: KVM only if a KVM guest really runs)\n"
	"      --kernel FILE     accel: the kernel the KVM probe boots\n"
	"      --name NAME       VM name given to the VMM (QEMU name, Firecracker id)\n"
	"      --null            argv: NUL-separated output (default: one argument per line)\n"
	"      --in-jail         argv: the config's paths are inside the jail the VMM runs in (not\n"
	"                        checked here; needs --accel kvm|tcg)\n"
	"      --timeout D       overall time limit (start 30s, shutdown 30s, reboot 30s, others 5s)\n"
	"      --force           shutdown: do not wait for the guest (Firecracker SIGHUP, QEMU quit)\n"
	"      --pid PID         the VMM's pid, when its socket cannot tell (other pid namespace)\n"
	"      --log FILE        Firecracker's log (PUT /logger); --log-level Error|Warning|Info|Debug|Trace|Off\n"
	"      --log-level L     see --log (default Warning)\n"
	"      --metrics FILE    Firecracker's metrics file or FIFO (PUT /metrics)\n"
	"      --snapshot FILE   snapshot/restore: the VM state file\n"
	"      --mem FILE        snapshot/restore: the guest memory file\n"
	"      --diff            snapshot: a diff snapshot (needs track_dirty_pages)\n"
	"      --resume          restore: resume the VM after loading\n"
	"      --full            status: include the VMM's own view (Firecracker GET /vm/config, QMP details)\n"
	"      --json            JSON output\n"
	"      --root DIR        state root (the KVM verdict is cached in its run directory)\n"
	"  -v, --verbose         more log output (-vv: every request)\n"
	"  -q, --quiet           errors only\n"
	"      --log-format text|json\n"
	"  -h, --help            this help\n"
	"      --version         print the version\n"
	"\n"
	"Exit codes: 0 done, 1 VMM or system error, 2 usage or invalid config, 3 VMM gone or file\n"
	"missing, 4 wrong state, 5 host lacks something (QEMU, /dev/kvm, a supported Firecracker),\n"
	"124 timed out. See metald-boot(1).\n";

enum {
	OPT_VMM = MD_OPT_FIRST_PRIVATE,
	OPT_SOCKET,
	OPT_QMP,
	OPT_CONFIG,
	OPT_NET,
	OPT_SERIAL,
	OPT_ACCEL,
	OPT_KERNEL,
	OPT_NAME,
	OPT_NULL,
	OPT_IN_JAIL,
	OPT_TIMEOUT,
	OPT_FORCE,
	OPT_PID,
	OPT_LOG,
	OPT_LOG_LEVEL,
	OPT_METRICS,
	OPT_SNAPSHOT,
	OPT_MEM,
	OPT_DIFF,
	OPT_RESUME,
	OPT_FULL,
};

static const struct option longopts[] = {
	MD_CLI_COMMON_LONGOPTS,
	{ "vmm", required_argument, NULL, OPT_VMM },
	{ "socket", required_argument, NULL, OPT_SOCKET },
	{ "qmp", required_argument, NULL, OPT_QMP },
	{ "config", required_argument, NULL, OPT_CONFIG },
	{ "net", required_argument, NULL, OPT_NET },
	{ "serial", required_argument, NULL, OPT_SERIAL },
	{ "accel", required_argument, NULL, OPT_ACCEL },
	{ "kernel", required_argument, NULL, OPT_KERNEL },
	{ "name", required_argument, NULL, OPT_NAME },
	{ "null", no_argument, NULL, OPT_NULL },
	{ "in-jail", no_argument, NULL, OPT_IN_JAIL },
	{ "timeout", required_argument, NULL, OPT_TIMEOUT },
	{ "force", no_argument, NULL, OPT_FORCE },
	{ "pid", required_argument, NULL, OPT_PID },
	{ "log", required_argument, NULL, OPT_LOG },
	{ "log-level", required_argument, NULL, OPT_LOG_LEVEL },
	{ "metrics", required_argument, NULL, OPT_METRICS },
	{ "snapshot", required_argument, NULL, OPT_SNAPSHOT },
	{ "mem", required_argument, NULL, OPT_MEM },
	{ "diff", no_argument, NULL, OPT_DIFF },
	{ "resume", no_argument, NULL, OPT_RESUME },
	{ "full", no_argument, NULL, OPT_FULL },
	{ NULL, 0, NULL, 0 },
};

enum vmm { VMM_NONE, VMM_QEMU, VMM_FC };

static struct {
	enum vmm vmm;
	const char *socket, *qmp, *config, *net, *serial, *kernel, *name, *log, *log_level, *metrics, *snapshot, *mem;
	enum md_accel accel;
	bool null, in_jail, force, diff, resume, full, has_timeout;
	uint64_t timeout_ns;
	pid_t pid;
	const char *verb;
} o;

static void parse(int argc, char **argv)
{
	md_err *err = NULL;
	const char *env = getenv("UNKEY_METALD_BACKEND");
	uint64_t u;
	int c;

	o.verb = argv[0];
	if (env && *env) {
		if (strcmp(env, "qemu") == 0)
			o.vmm = VMM_QEMU;
		else if (strcmp(env, "firecracker") == 0)
			o.vmm = VMM_FC;
		else
			md_die_msg(MD_EXIT_USAGE, "UNKEY_METALD_BACKEND `%s`: must be qemu or firecracker", env);
	}
	while ((c = getopt_long(argc, argv, MD_CLI_COMMON_SHORTOPTS, longopts, NULL)) != -1) {
		if (md_cli_common(c, optarg))
			continue;
		switch (c) {
		case OPT_VMM:
			if (strcmp(optarg, "qemu") == 0)
				o.vmm = VMM_QEMU;
			else if (strcmp(optarg, "firecracker") == 0)
				o.vmm = VMM_FC;
			else
				md_die_msg(MD_EXIT_USAGE, "--vmm `%s`: must be qemu or firecracker", optarg);
			break;
		case OPT_SOCKET: o.socket = optarg; break;
		case OPT_QMP: o.qmp = optarg; break;
		case OPT_CONFIG: o.config = optarg; break;
		case OPT_NET: o.net = optarg; break;
		case OPT_SERIAL: o.serial = optarg; break;
		case OPT_KERNEL: o.kernel = optarg; break;
		case OPT_NAME: o.name = optarg; break;
		case OPT_ACCEL:
			if (md_accel_parse(optarg, &o.accel, &err) < 0)
				md_die(err);
			break;
		case OPT_NULL: o.null = true; break;
		case OPT_IN_JAIL: o.in_jail = true; break;
		case OPT_TIMEOUT:
			if (md_parse_duration(optarg, &o.timeout_ns, &err) < 0)
				md_die((md_err_wrap(&err, "--timeout"), err));
			o.has_timeout = true;
			break;
		case OPT_FORCE: o.force = true; break;
		case OPT_PID:
			if (md_parse_u64(optarg, 1, 4194304, &u, &err) < 0)
				md_die((md_err_wrap(&err, "--pid"), err));
			o.pid = (pid_t)u;
			break;
		case OPT_LOG: o.log = optarg; break;
		case OPT_LOG_LEVEL: o.log_level = optarg; break;
		case OPT_METRICS: o.metrics = optarg; break;
		case OPT_SNAPSHOT: o.snapshot = optarg; break;
		case OPT_MEM: o.mem = optarg; break;
		case OPT_DIFF: o.diff = true; break;
		case OPT_RESUME: o.resume = true; break;
		case OPT_FULL: o.full = true; break;
		default: md_cli_bad_option();
		}
	}
	if (optind < argc)
		md_die_msg(MD_EXIT_USAGE, "%s: unexpected argument `%s`", o.verb, argv[optind]);
}

static uint64_t timeout_or(uint64_t def)
{
	return o.has_timeout ? o.timeout_ns : def;
}

static void need_vmm(void)
{
	if (o.vmm == VMM_NONE)
		md_die_msg(MD_EXIT_USAGE, "%s: --vmm qemu|firecracker is required", o.verb);
}

static void need(const char *val, const char *opt)
{
	if (val == NULL)
		md_die_msg(MD_EXIT_USAGE, "%s: %s is required", o.verb, opt);
}

static int print(json_t *v)
{
	md_out_print(stdout, v, md_cli_out_mode(), NULL);
	json_decref(v);
	return 0;
}

/* Config + net -> spec (the config stays alive in *cfg). */
static void load_spec(struct md_config **cfg, struct md_vm_spec *spec)
{
	_cleanup_json_ json_t *net = NULL;
	md_err *err = NULL;

	need(o.config, "--config");
	if (md_config_parse_file(o.config, cfg, &err) < 0)
		md_die(err);
	if (o.net && md_json_read(o.net, &net, &err) < 0)
		md_die((md_err_wrap(&err, "--net"), err));
	if (md_vm_spec_build(spec, *cfg, net, &err) < 0)
		md_die(err);
}

static char *cache_dir(void)
{
	struct md_paths p;
	char *dir;

	if (md_paths_init(&p, md_cli.root, NULL) < 0)
		return NULL;
	dir = strdup(p.run_dir);
	md_paths_free(&p);
	return dir;
}

static int cmd_argv(int argc, char **argv)
{
	struct md_config *cfg = NULL;
	struct md_vm_spec spec;
	char **av = NULL;
	md_err *err = NULL;
	enum md_accel used;
	json_t *arr;

	parse(argc, argv);
	need_vmm();
	if (o.vmm == VMM_FC) {
		need(o.socket, "--socket");
		const char *b = getenv("UNKEY_METALD_FIRECRACKER_BIN");
		arr = json_pack("[s,s,s]", b && *b ? b : "firecracker", "--api-sock", o.socket);
		if (o.name) {
			json_array_append_new(arr, json_string("--id"));
			json_array_append_new(arr, json_string(o.name));
		}
	} else {
		_cleanup_free_ char *cache = cache_dir();
		load_spec(&cfg, &spec);
		struct md_qemu_opts qo = { .accel = o.accel, .qmp = o.qmp, .serial = o.serial, .name = o.name,
					   .cache_dir = cache, .in_jail = o.in_jail };
		if (md_qemu_argv(&spec, &qo, &av, &used, &err) < 0)
			md_die(err);
		arr = json_array();
		for (char **p = av; *p; p++)
			json_array_append_new(arr, json_string(*p));
		md_argv_free(av);
		md_vm_spec_free(&spec);
		md_config_free(cfg);
	}
	if (md_cli.json) {
		md_out_print(stdout, arr, MD_OUT_JSON, NULL);
	} else {
		size_t i;
		json_t *v;
		json_array_foreach(arr, i, v) {
			fputs(json_string_value(v), stdout);
			fputc(o.null ? '\0' : '\n', stdout);
		}
	}
	json_decref(arr);
	return 0;
}

static int cmd_accel(int argc, char **argv)
{
	_cleanup_free_ char *why = NULL, *cache = NULL;
	struct md_config *cfg = NULL;
	md_err *err = NULL;
	const char *kernel = o.kernel;
	bool kvm;

	parse(argc, argv);
	kernel = o.kernel;
	if (kernel == NULL && o.config) {
		if (md_config_parse_file(o.config, &cfg, &err) < 0)
			md_die(err);
		kernel = cfg->boot.kernel_path;
	}
	need(kernel, "--kernel or --config");
	if (access(kernel, R_OK) < 0)
		md_die_msg(MD_EXIT_NOTFOUND, "kernel `%s`: not readable", kernel);
	cache = cache_dir();
	if (o.accel == MD_ACCEL_TCG || o.accel == MD_ACCEL_KVM) {
		kvm = o.accel == MD_ACCEL_KVM;
		why = strdup("chosen with --accel");
	} else if (md_qemu_probe_kvm(kernel, cache, timeout_or(10000000000ULL), &kvm, &why, &err) < 0) {
		md_die(err);
	}
	md_config_free(cfg);
	return print(json_pack("{s:s,s:s}", "accel", kvm ? "kvm" : "tcg", "why", why));
}

/* Open the VMM's API. wait_ns 0: the socket must be there now (else "VMM gone", class 3). */
static struct md_fc *open_fc(uint64_t wait_ns, uint64_t op_ns)
{
	struct md_fc *fc = NULL;
	md_err *err = NULL;

	need(o.socket, "--socket");
	if (md_fc_open(&fc, o.socket, wait_ns, o.pid, &err) < 0)
		md_die(err);
	md_fc_set_deadline(fc, op_ns);
	return fc;
}

static struct md_qmp *open_qmp(uint64_t wait_ns, uint64_t op_ns)
{
	struct md_qmp *q = NULL;
	md_err *err = NULL;

	need(o.socket, "--socket");
	if (md_qmp_open(&q, o.socket, wait_ns, o.pid, &err) < 0)
		md_die(err);
	md_qmp_set_deadline(q, op_ns);
	return q;
}

static int cmd_start(int argc, char **argv)
{
	struct md_config *cfg = NULL;
	struct md_vm_spec spec;
	md_err *err = NULL;
	uint64_t t = 0, t0;
	json_t *res;

	parse(argc, argv);
	need_vmm();
	need(o.socket, "--socket");
	/* QEMU got its config on its command line (argv); a config given here is still checked */
	if (o.vmm == VMM_FC || o.config)
		load_spec(&cfg, &spec);
	else
		memset(&spec, 0, sizeof(spec));
	t = timeout_or(30000000000ULL);
	/* libcurl (Firecracker only) is loaded before the clock starts: total_ms is the boot
	 * sequence, and the load (~5 ms, what linking it cost every start before) is start-up */
	if (o.vmm == VMM_FC && md_curl_load(&err) < 0)
		md_die(err);
	t0 = md_now_mono_ns();
	if (o.vmm == VMM_FC) {
		struct md_fc_boot_opts bo = { .log_path = o.log, .log_level = o.log_level, .metrics_path = o.metrics,
					      .serial_path = o.serial };
		struct md_fc *fc = open_fc(t, t);
		unsigned n;
		uint64_t ns;
		if (md_fc_boot(fc, &spec, &bo, &err) < 0)
			md_die((md_err_wrap(&err, "start"), err));
		md_fc_stats(fc, &n, &ns);
		res = json_pack("{s:s,s:s,s:i,s:s,s:i,s:f,s:f}", "vmm", "firecracker", "state", "VM_STATE_RUNNING", "pid",
				(int)md_fc_pid(fc), "vmm_version", md_fc_version(fc), "requests", n, "request_ms",
				(double)ns / 1e6, "total_ms", (double)(md_now_mono_ns() - t0) / 1e6);
		md_fc_close(fc);
	} else {
		struct md_qmp *q;
		if (o.log || o.metrics || o.serial)
			md_die_msg(MD_EXIT_USAGE, "start: --log, --metrics and --serial are Firecracker options (for QEMU the "
				   "serial file is part of `metald-boot argv`)");
		q = open_qmp(t, t);
		if (md_qemu_start(q, &err) < 0)
			md_die((md_err_wrap(&err, "start"), err));
		res = json_pack("{s:s,s:s,s:i,s:f}", "vmm", "qemu", "state", "VM_STATE_RUNNING", "pid", (int)md_qmp_pid(q),
				"total_ms", (double)(md_now_mono_ns() - t0) / 1e6);
		md_qmp_close(q);
	}
	md_vm_spec_free(&spec);
	md_config_free(cfg);
	return print(res);
}

enum ctl { CTL_PAUSE, CTL_RESUME, CTL_SHUTDOWN, CTL_REBOOT, CTL_STATUS, CTL_FLUSH, CTL_SNAPSHOT, CTL_RESTORE };

static int control(int argc, char **argv, enum ctl what)
{
	md_err *err = NULL;
	json_t *res = NULL;
	int r = 0;

	parse(argc, argv);
	need_vmm();
	if (what == CTL_SNAPSHOT || what == CTL_RESTORE) {
		if (o.vmm != VMM_FC)
			md_die_msg(MD_EXIT_USAGE, "%s: snapshots are a Firecracker feature (QEMU microvm has none here)", o.verb);
		need(o.snapshot, "--snapshot");
		need(o.mem, "--mem");
	}
	uint64_t t = timeout_or(what == CTL_SHUTDOWN || what == CTL_REBOOT ? 30000000000ULL : 5000000000ULL);
	if (o.vmm == VMM_FC) {
		/* control verbs do not wait for a socket: a missing one means the VMM is gone */
		struct md_fc *fc = open_fc(0, what == CTL_SHUTDOWN || what == CTL_REBOOT ? 5000000000ULL : t);
		switch (what) {
		case CTL_PAUSE: r = md_fc_pause(fc, &err); break;
		case CTL_RESUME: r = md_fc_resume(fc, &err); break;
		case CTL_FLUSH: r = md_fc_flush_metrics(fc, &err); break;
		case CTL_SHUTDOWN: r = md_fc_shutdown(fc, t, o.force, &res, &err); break;
		case CTL_REBOOT: r = md_fc_reboot(fc, t, &res, &err); break;
		case CTL_STATUS: r = md_fc_status(fc, o.full, &res, &err); break;
		case CTL_SNAPSHOT: r = md_fc_snapshot_create(fc, o.snapshot, o.mem, o.diff, &err); break;
		case CTL_RESTORE: r = md_fc_snapshot_load(fc, o.snapshot, o.mem, o.resume, &err); break;
		}
		if (r == 0 && res == NULL)
			r = md_fc_status(fc, false, &res, &err);
		md_fc_close(fc);
	} else {
		struct md_qmp *q = open_qmp(0, what == CTL_SHUTDOWN ? 5000000000ULL : t);
		switch (what) {
		case CTL_PAUSE: r = md_qemu_pause(q, &err); break;
		case CTL_RESUME: r = md_qemu_resume(q, &err); break;
		case CTL_REBOOT: r = md_qemu_reboot(q, &err); break;
		case CTL_SHUTDOWN: r = md_qemu_shutdown(q, t, o.force, &res, &err); break;
		case CTL_STATUS: r = md_qemu_status(q, o.full, &res, &err); break;
		case CTL_FLUSH: r = md_qemu_status(q, false, &res, &err); break; /* counters are pulled, not flushed */
		default: break;
		}
		if (r == 0 && res == NULL)
			r = md_qemu_status(q, false, &res, &err);
		md_qmp_close(q);
	}
	if (r < 0)
		md_die((md_err_wrap(&err, "%s", o.verb), err));
	return print(res);
}

static int cmd_pause(int c, char **v) { return control(c, v, CTL_PAUSE); }
static int cmd_resume(int c, char **v) { return control(c, v, CTL_RESUME); }
static int cmd_shutdown(int c, char **v) { return control(c, v, CTL_SHUTDOWN); }
static int cmd_reboot(int c, char **v) { return control(c, v, CTL_REBOOT); }
static int cmd_status(int c, char **v) { return control(c, v, CTL_STATUS); }
static int cmd_flush(int c, char **v) { return control(c, v, CTL_FLUSH); }
static int cmd_snapshot(int c, char **v) { return control(c, v, CTL_SNAPSHOT); }
static int cmd_restore(int c, char **v) { return control(c, v, CTL_RESTORE); }

static const struct md_verb verbs[] = {
	{ "argv", cmd_argv, "print the VMM command line" },
	{ "accel", cmd_accel, "print the QEMU accelerator (kvm or tcg)" },
	{ "start", cmd_start, "configure and boot" },
	{ "pause", cmd_pause, "pause the vCPUs" },
	{ "resume", cmd_resume, "resume the vCPUs" },
	{ "shutdown", cmd_shutdown, "graceful stop, then kill" },
	{ "reboot", cmd_reboot, "reboot the guest" },
	{ "status", cmd_status, "state, pid, vCPU threads" },
	{ "flush-metrics", cmd_flush, "flush the VMM's metrics" },
	{ "snapshot", cmd_snapshot, "Firecracker snapshot create" },
	{ "restore", cmd_restore, "Firecracker snapshot load" },
	{ NULL, NULL, NULL },
};

int main(int argc, char **argv)
{
	md_cli_init(argv[0]);
	md_cli.usage = usage;
	return md_cli_dispatch(verbs, argc, argv);
}
