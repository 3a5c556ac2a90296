/* metald-meter: sample VM usage, keep the durable ledger, ship it to billing, report it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cleanup.h"
#include "cli.h"
#include "curl-load.h"
#include "ids.h"
#include "meter-fc.h"
#include "meter-report.h"
#include "meter-sample.h"
#include "meter.h"
#include "parse.h"
#include "state.h"

static const char usage[] =
	"Usage: metald-meter [OPTIONS] COMMAND [ARGS]\n"
	"\n"
	"Measure what VMs use (CPU time, memory, disk and network), keep it in a durable ledger,\n"
	"ship it to the billing service and report it.\n"
	"\n"
	"Commands:\n"
	"  sample --id VM [--interval D] [--count N]   print samples of one VM as JSON lines\n"
	"  run [--interval D] [--period D] [--sync D] [--heartbeat D] [--batch N]\n"
	"      [--billing send|mock|off] [--billing-endpoint URL] [--stats-file PATH]\n"
	"                                              meter every running VM until SIGTERM\n"
	"  report [--since T] [--until T] [--customer C] [--id VM] [--by vm|customer|day] [--json|--csv]\n"
	"                                              sum the ledger's usage records\n"
	"  prom [--textfile PATH]                      ledger totals in the Prometheus text format\n"
	"\n"
	"Options:\n"
	"  --id VM                  the VM (sample; report: only this VM)\n"
	"  --interval D             sampling interval (default 100ms)\n"
	"  --count N                samples to print, 0 for no end (default 1)\n"
	"  --period D               one usage record per VM per period (default 10s)\n"
	"  --sync D                 fsync the ledger at most this long after a write, 0 = every write\n"
	"                           (default 1s)\n"
	"  --heartbeat D            SendHeartbeat cadence, 0 = never (default 30s)\n"
	"  --batch N                usage records per SendMetricsBatch (default 100)\n"
	"  --billing MODE           send, mock (ledger only) or off (ledger only)\n"
	"  --billing-endpoint URL   billing service base URL (default http://localhost:8081)\n"
	"  --stats-file PATH        on exit, write timing statistics (JSON) to PATH\n"
	"  --since T, --until T     records whose period ends in [since, until): YYYY-MM-DD,\n"
	"                           YYYY-MM-DDTHH:MM:SSZ, @UNIX-SECONDS, or a duration ago (24h)\n"
	"  --customer C             only this customer\n"
	"  --by KEY                 group by vm (default), customer or day (UTC)\n"
	"  --csv                    print CSV\n"
	"  --textfile PATH          write atomically to PATH (node_exporter textfile collector)\n"
	"  --root DIR               keep data and run state under DIR (data/, run/)\n"
	"  --json                   print JSON\n"
	"  --log-format text|json   format of log lines on stderr\n"
	"  -v, --verbose            more log output (twice: debug)\n"
	"  -q, --quiet              errors only\n"
	"  -h, --help               print this help\n"
	"      --version            print the version\n"
	"\n"
	"Environment: UNKEY_METALD_BILLING_ENDPOINT, UNKEY_METALD_BILLING_ENABLED,\n"
	"UNKEY_METALD_BILLING_MOCK_MODE, UNKEY_METALD_METER_LEDGER_SEGMENT, UNKEY_METALD_METER_LEDGER_KEEP,\n"
	"UNKEY_METALD_DATA_DIR, UNKEY_METALD_RUN_DIR, UNKEY_METALD_ROOT,\n"
	"UNKEY_METALD_LOG_LEVEL, UNKEY_METALD_LOG_FORMAT.\n"
	"Exit codes: 0 done, 1 failed, 2 usage, 3 VM not found, 4 another meter runs, 5 host lacks something.\n";

enum {
	OPT_ID = MD_OPT_FIRST_PRIVATE,
	OPT_INTERVAL,
	OPT_COUNT,
	OPT_PERIOD,
	OPT_SYNC,
	OPT_HEARTBEAT,
	OPT_BATCH,
	OPT_BILLING,
	OPT_ENDPOINT,
	OPT_STATS,
	OPT_SINCE,
	OPT_UNTIL,
	OPT_CUSTOMER,
	OPT_BY,
	OPT_CSV,
	OPT_TEXTFILE,
};

/* a macro, not a function: the error must be read after the call has set it */
#define check(call, err)              \
	do {                          \
		if ((call) < 0)       \
			md_die(err);  \
	} while (0)

static uint64_t duration(const char *flag, const char *s, uint64_t min, uint64_t max)
{
	md_err *err = NULL;
	uint64_t v;

	if (md_parse_duration(s, &v, &err) < 0) {
		md_err_wrap(&err, "%s", flag);
		md_die(err);
	}
	if (v < min || v > max)
		md_die_msg(MD_EXIT_USAGE, "%s `%s`: out of range", flag, s);
	return v;
}

static void paths(struct md_paths *p)
{
	md_err *err = NULL;
	check(md_paths_init(p, md_cli.root, &err), err);
}

static int cmd_sample(int argc, char **argv)
{
	static const struct option lo[] = { MD_CLI_COMMON_LONGOPTS,
					    { "id", required_argument, NULL, OPT_ID },
					    { "interval", required_argument, NULL, OPT_INTERVAL },
					    { "count", required_argument, NULL, OPT_COUNT },
					    { 0 } };
	const char *id = NULL;
	uint64_t interval = 100000000ULL, count = 1, next;
	struct md_meter_target t;
	struct md_meter_src *src = NULL;
	struct md_paths p;
	md_err *err = NULL;
	_cleanup_free_ char *dir = NULL, *path = NULL;
	int c;

	while ((c = getopt_long(argc, argv, MD_CLI_COMMON_SHORTOPTS, lo, NULL)) != -1) {
		if (md_cli_common(c, optarg))
			continue;
		switch (c) {
		case OPT_ID: id = optarg; break;
		case OPT_INTERVAL: interval = duration("--interval", optarg, 1000000ULL, 3600000000000ULL); break;
		case OPT_COUNT: check(md_parse_u64(optarg, 0, UINT64_MAX, &count, &err), err); break;
		default: md_cli_bad_option();
		}
	}
	if (optind < argc)
		md_die_msg(MD_EXIT_USAGE, "sample: unexpected argument `%s`", argv[optind]);
	if (id == NULL)
		md_die_msg(MD_EXIT_USAGE, "sample: --id is required");
	check(md_id_check(id, "vm id", &err), err);
	paths(&p);
	dir = md_meter_targets_dir(&p);
	path = md_strdup_printf("%s/%s.json", dir, id);
	if (md_meter_target_load(path, &t, &err) < 0) {
		if (md_err_exit(err) == MD_EXIT_NOTFOUND) {
			md_err_free(&err);
			md_die_msg(MD_EXIT_NOTFOUND, "vm `%s`: not metered (no `%s`)", id, path);
		}
		md_die(err);
	}
	if (md_meter_src_open(&t, &src, &err) < 0) {
		md_err_wrap(&err, "vm `%s`", id);
		md_die(err);
	}
	next = md_now_mono_ns();
	for (uint64_t i = 0; count == 0 || i < count; i++) {
		struct md_meter_sample s;
		json_t *j;

		if (i > 0) {
			uint64_t now = md_now_mono_ns();
			next += interval;
			if (next > now)
				md_sleep_ns(next - now);
		}
		if (md_meter_sample(src, MD_SAMPLE_ALL, &s, &err) < 0) {
			md_err_wrap(&err, "vm `%s`", id);
			md_die(err);
		}
		j = md_meter_sample_json(&t, &s);
		if (t.fc_metrics) {
			/* a file is summed from its start (FIFO lines belong to the running meter) */
			struct md_fc_reader r;
			struct md_meter_counters sum = { 0 };
			unsigned lines = 0;
			json_t *v = json_null();

			if (md_fc_reader_open(&r, t.fc_metrics, 0, &err) < 0)
				md_die(err);
			if (!r.fifo && md_fc_read(&r, &sum, &lines, &err) < 0)
				md_die(err);
			if (!r.fifo) {
				v = md_meter_counters_json(&sum);
				json_object_del(v, "cpu_ns");
				json_object_set_new(v, "lines", json_integer(lines));
			}
			md_fc_reader_close(&r);
			json_object_set_new(j, "vmm", v);
		}
		md_out_line(stdout, j);
		json_decref(j);
	}
	md_meter_src_close(src);
	md_meter_target_free(&t);
	md_meter_net_cleanup();
	md_paths_free(&p);
	return 0;
}

/* UNKEY_METALD_METER_LEDGER_SEGMENT (a size) and UNKEY_METALD_METER_LEDGER_KEEP (a duration) */
static void ledger_env(struct md_meter_opts *o)
{
	const char *seg = getenv("UNKEY_METALD_METER_LEDGER_SEGMENT"), *keep = getenv("UNKEY_METALD_METER_LEDGER_KEEP");
	md_err *err = NULL;

	if (seg && *seg) {
		if (md_parse_size(seg, &o->segment_bytes, &err) < 0) {
			md_err_wrap(&err, "UNKEY_METALD_METER_LEDGER_SEGMENT");
			md_die(err);
		}
		if (o->segment_bytes < 1024 || o->segment_bytes > (1ULL << 40))
			md_die_msg(MD_EXIT_USAGE, "UNKEY_METALD_METER_LEDGER_SEGMENT `%s`: must be 1K to 1T", seg);
	}
	if (keep && *keep) {
		if (md_parse_duration(keep, &o->keep_ns, &err) < 0) {
			md_err_wrap(&err, "UNKEY_METALD_METER_LEDGER_KEEP");
			md_die(err);
		}
	}
}

static int cmd_run(int argc, char **argv)
{
	static const struct option lo[] = { MD_CLI_COMMON_LONGOPTS,
					    { "interval", required_argument, NULL, OPT_INTERVAL },
					    { "period", required_argument, NULL, OPT_PERIOD },
					    { "sync", required_argument, NULL, OPT_SYNC },
					    { "heartbeat", required_argument, NULL, OPT_HEARTBEAT },
					    { "batch", required_argument, NULL, OPT_BATCH },
					    { "billing", required_argument, NULL, OPT_BILLING },
					    { "billing-endpoint", required_argument, NULL, OPT_ENDPOINT },
					    { "stats-file", required_argument, NULL, OPT_STATS },
					    { 0 } };
	struct md_meter_opts o;
	struct md_paths p;
	const char *endpoint = NULL;
	int mode = -1, c;
	uint64_t batch;
	md_err *err = NULL;

	md_meter_opts_default(&o);
	while ((c = getopt_long(argc, argv, MD_CLI_COMMON_SHORTOPTS, lo, NULL)) != -1) {
		if (md_cli_common(c, optarg))
			continue;
		switch (c) {
		case OPT_INTERVAL: o.interval_ns = duration("--interval", optarg, 1000000ULL, 3600000000000ULL); break;
		case OPT_PERIOD: o.period_ns = duration("--period", optarg, 1000000ULL, 86400000000000ULL); break;
		case OPT_SYNC: o.sync_ns = duration("--sync", optarg, 0, 3600000000000ULL); break;
		case OPT_HEARTBEAT: o.heartbeat_ns = duration("--heartbeat", optarg, 0, 86400000000000ULL); break;
		case OPT_BATCH:
			check(md_parse_u64(optarg, 1, 10000, &batch, &err), err);
			o.batch_max = batch;
			break;
		case OPT_BILLING:
			if (strcmp(optarg, "send") == 0)
				mode = MD_BILLING_SEND;
			else if (strcmp(optarg, "mock") == 0)
				mode = MD_BILLING_MOCK;
			else if (strcmp(optarg, "off") == 0)
				mode = MD_BILLING_OFF;
			else
				md_die_msg(MD_EXIT_USAGE, "--billing `%s`: must be send, mock or off", optarg);
			break;
		case OPT_ENDPOINT: endpoint = optarg; break;
		case OPT_STATS: o.stats_file = optarg; break;
		default: md_cli_bad_option();
		}
	}
	if (optind < argc)
		md_die_msg(MD_EXIT_USAGE, "run: unexpected argument `%s`", argv[optind]);
	if (o.period_ns < o.interval_ns)
		md_die_msg(MD_EXIT_USAGE, "--period must not be shorter than --interval");
	ledger_env(&o);
	check(md_billing_config(&o.billing, endpoint, mode, &err), err);
	/* libcurl is loaded only to deliver: a host without it fails here (exit 5), not at every try */
	if (o.billing.mode == MD_BILLING_SEND)
		check(md_curl_load(&err), err);
	paths(&p);
	if (md_meter_run(&p, &o, &err) < 0)
		md_die(err);
	md_billing_free(&o.billing);
	md_paths_free(&p);
	return 0;
}

static int cmd_report(int argc, char **argv)
{
	static const struct option lo[] = { MD_CLI_COMMON_LONGOPTS,
					    { "since", required_argument, NULL, OPT_SINCE },
					    { "until", required_argument, NULL, OPT_UNTIL },
					    { "customer", required_argument, NULL, OPT_CUSTOMER },
					    { "id", required_argument, NULL, OPT_ID },
					    { "by", required_argument, NULL, OPT_BY },
					    { "csv", no_argument, NULL, OPT_CSV },
					    { 0 } };
	static const char *const cols[] = { "vm", "customer", "records", "cpu_ns", "mem_peak", "mem_avg",
					    "disk_read_bytes", "disk_write_bytes", "net_rx_bytes", "net_tx_bytes", NULL };
	struct md_report_opts o = { 0 };
	_cleanup_free_ char *dir = NULL;
	_cleanup_json_ json_t *rows = NULL;
	struct md_paths p;
	md_err *err = NULL;
	bool csv = false;
	int c;

	while ((c = getopt_long(argc, argv, MD_CLI_COMMON_SHORTOPTS, lo, NULL)) != -1) {
		if (md_cli_common(c, optarg))
			continue;
		switch (c) {
		case OPT_SINCE: check(md_report_parse_time(optarg, &o.since, &err), err); break;
		case OPT_UNTIL: check(md_report_parse_time(optarg, &o.until, &err), err); break;
		case OPT_CUSTOMER: o.customer = optarg; break;
		case OPT_ID: check(md_id_check(optarg, "vm id", &err), err); o.vm = optarg; break;
		case OPT_BY: check(md_report_parse_by(optarg, &o.by, &err), err); break;
		case OPT_CSV: csv = true; break;
		default: md_cli_bad_option();
		}
	}
	if (optind < argc)
		md_die_msg(MD_EXIT_USAGE, "report: unexpected argument `%s`", argv[optind]);
	if (csv && md_cli.json)
		md_die_msg(MD_EXIT_USAGE, "--csv and --json exclude each other");
	if (o.since && o.until && o.until <= o.since)
		md_die_msg(MD_EXIT_USAGE, "--until must be after --since");
	paths(&p);
	dir = md_meter_ledger_dir(&p);
	check(md_meter_report(dir, &o, &rows, &err), err);
	if (o.vm && json_array_size(rows) == 0 && o.by == MD_REPORT_BY_VM && !o.since && !o.until && !o.customer)
		md_die_msg(MD_EXIT_NOTFOUND, "vm `%s`: no usage records in the ledger", o.vm);
	if (csv) {
		md_report_csv(stdout, rows);
	} else {
		const char *const *cl = cols;
		static const char *const cust[] = { "customer", "records", "cpu_ns", "mem_peak", "mem_avg",
						    "disk_read_bytes", "disk_write_bytes", "net_rx_bytes", "net_tx_bytes", NULL };
		static const char *const day[] = { "day", "records", "cpu_ns", "mem_peak", "mem_avg",
						   "disk_read_bytes", "disk_write_bytes", "net_rx_bytes", "net_tx_bytes", NULL };
		if (o.by == MD_REPORT_BY_CUSTOMER)
			cl = cust;
		else if (o.by == MD_REPORT_BY_DAY)
			cl = day;
		md_out_print(stdout, rows, md_cli_out_mode(), cl);
	}
	md_paths_free(&p);
	return 0;
}

static int cmd_prom(int argc, char **argv)
{
	static const struct option lo[] = { MD_CLI_COMMON_LONGOPTS,
					    { "textfile", required_argument, NULL, OPT_TEXTFILE },
					    { 0 } };
	_cleanup_free_ char *dir = NULL, *text = NULL;
	const char *textfile = NULL;
	struct md_paths p;
	md_err *err = NULL;
	int c;

	while ((c = getopt_long(argc, argv, MD_CLI_COMMON_SHORTOPTS, lo, NULL)) != -1) {
		if (md_cli_common(c, optarg))
			continue;
		if (c == OPT_TEXTFILE)
			textfile = optarg;
		else
			md_cli_bad_option();
	}
	if (optind < argc)
		md_die_msg(MD_EXIT_USAGE, "prom: unexpected argument `%s`", argv[optind]);
	paths(&p);
	dir = md_meter_ledger_dir(&p);
	check(md_meter_prom(dir, &text, &err), err);
	if (textfile)
		check(md_write_atomic(textfile, text, strlen(text), 0644, &err), err);
	else
		fputs(text, stdout);
	md_paths_free(&p);
	return 0;
}

static const struct md_verb verbs[] = {
	{ "sample", cmd_sample, "print samples of one VM" },
	{ "run", cmd_run, "meter every running VM" },
	{ "report", cmd_report, "sum the ledger" },
	{ "prom", cmd_prom, "Prometheus text" },
	{ NULL, NULL, NULL },
};

int main(int argc, char **argv)
{
	md_cli_init(argv[0]);
	md_cli.usage = usage;
	return md_cli_dispatch(verbs, argc, argv);
}
