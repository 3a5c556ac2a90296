/* Reading the meter ledger back: usage reports (by VM, customer, day) and Prometheus text. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cleanup.h"
#include "ledger.h"
#include "ledger-seg.h"
#include "meter-report.h"
#include "parse.h"
#include "state.h"

#define NS_S 1000000000ULL

int md_report_parse_time(const char *s, uint64_t *out, md_err **err)
{
	struct tm tm = { 0 };
	const char *end;
	uint64_t v;
	md_err *e2 = NULL;

	if (s[0] == '@') {
		if (md_parse_u64(s + 1, 0, UINT64_MAX / NS_S, &v, err) < 0)
			return md_err_wrap(err, "time `%s`", s);
		*out = v * NS_S;
		return 0;
	}
	end = strptime(s, "%Y-%m-%dT%H:%M:%SZ", &tm);
	if (end == NULL || *end) {
		memset(&tm, 0, sizeof(tm));
		end = strptime(s, "%Y-%m-%d", &tm);
	}
	if (end && *end == '\0') {
		time_t t = timegm(&tm);
		if (t < 0)
			return md_usage(err, "time `%s`: before 1970", s);
		*out = (uint64_t)t * NS_S;
		return 0;
	}
	if (md_parse_duration(s, &v, &e2) == 0) {
		uint64_t now = md_now_wall_ns();
		*out = v < now ? now - v : 0;
		return 0;
	}
	md_err_free(&e2);
	return md_usage(err, "time `%s`: use YYYY-MM-DD, YYYY-MM-DDTHH:MM:SSZ (UTC), @UNIX-SECONDS or a duration "
			     "such as 24h (that long ago)",
			s);
}

int md_report_parse_by(const char *s, enum md_report_by *by, md_err **err)
{
	if (strcmp(s, "vm") == 0)
		*by = MD_REPORT_BY_VM;
	else if (strcmp(s, "customer") == 0)
		*by = MD_REPORT_BY_CUSTOMER;
	else if (strcmp(s, "day") == 0)
		*by = MD_REPORT_BY_DAY;
	else
		return md_usage(err, "--by `%s`: must be vm, customer or day", s);
	return 0;
}

static uint64_t ju(json_t *o, const char *k)
{
	json_t *v = json_object_get(o, k);
	return json_is_integer(v) && json_integer_value(v) > 0 ? (uint64_t)json_integer_value(v) : 0;
}

static const char *js(json_t *o, const char *k)
{
	return json_string_value(json_object_get(o, k));
}

/* the summed fields, in output order */
static const char *const sums[] = { "cpu_ns",         "disk_read_bytes", "disk_write_bytes", "disk_read_ops",
				    "disk_write_ops", "net_rx_bytes",    "net_tx_bytes",     "net_rx_packets",
				    "net_tx_packets", NULL };

const char *const md_report_cols[] = { "key",          "customer",       "records",         "duration_ns",
				       "cpu_ns",       "mem_peak",       "mem_avg",         "disk_read_bytes",
				       "disk_write_bytes", "disk_read_ops", "disk_write_ops", "net_rx_bytes",
				       "net_tx_bytes", "net_rx_packets", "net_tx_packets", NULL };

struct rep {
	const struct md_report_opts *o;
	json_t *groups; /* key -> accumulator object (insertion order kept by an index array) */
	json_t *order;
};

static int report_cb(json_t *e, uint64_t off, uint64_t end, void *arg)
{
	struct rep *r = arg;
	const char *customer = js(e, "customer"), *vm = js(e, "vm");
	uint64_t ew = ju(e, "end_wall"), sw = ju(e, "start_wall"), dur;
	char day[16];
	const char *key;
	json_t *g;

	(void)off, (void)end;
	if (strcmp(js(e, "type"), "usage") != 0 || vm == NULL)
		return 0;
	if ((r->o->since && ew < r->o->since) || (r->o->until && ew >= r->o->until))
		return 0;
	if (r->o->customer && (customer == NULL || strcmp(customer, r->o->customer) != 0))
		return 0;
	if (r->o->vm && strcmp(vm, r->o->vm) != 0)
		return 0;
	if (r->o->by == MD_REPORT_BY_VM) {
		key = vm;
	} else if (r->o->by == MD_REPORT_BY_CUSTOMER) {
		key = customer ? customer : "-";
	} else {
		time_t t = (time_t)(ew / NS_S);
		struct tm tm;
		gmtime_r(&t, &tm);
		strftime(day, sizeof(day), "%Y-%m-%d", &tm);
		key = day;
	}
	g = json_object_get(r->groups, key);
	if (g == NULL) {
		g = json_pack("{s:s, s:o, s:I, s:I}", "key", key,
			      "customer", r->o->by == MD_REPORT_BY_DAY ? json_null() : json_string(customer ? customer : "-"),
			      "records", (json_int_t)0, "duration_ns", (json_int_t)0);
		json_object_set_new(g, "mem_peak", json_integer(0));
		json_object_set_new(g, "mem_weighted", json_real(0));
		for (int i = 0; sums[i]; i++)
			json_object_set_new(g, sums[i], json_integer(0));
		json_object_set_new(r->groups, key, g);
		json_array_append_new(r->order, json_string(key));
	}
	dur = ew > sw ? ew - sw : 0;
	json_object_set_new(g, "records", json_integer((json_int_t)ju(g, "records") + 1));
	json_object_set_new(g, "duration_ns", json_integer((json_int_t)(ju(g, "duration_ns") + dur)));
	for (int i = 0; sums[i]; i++)
		json_object_set_new(g, sums[i], json_integer((json_int_t)(ju(g, sums[i]) + ju(e, sums[i]))));
	if (ju(e, "mem_peak") > ju(g, "mem_peak"))
		json_object_set_new(g, "mem_peak", json_integer((json_int_t)ju(e, "mem_peak")));
	json_object_set_new(g, "mem_weighted", json_real(json_real_value(json_object_get(g, "mem_weighted")) +
							 (double)ju(e, "mem_avg") * (double)dur));
	return 0;
}

int md_meter_report(const char *ldir, const struct md_report_opts *o, json_t **rows, md_err **err)
{
	struct rep r = { o, json_object(), json_array() };
	uint64_t bytes;
	json_t *out = json_array();
	size_t i;
	json_t *k;

	/* every file in order; a sealed segment last written before --since holds nothing asked for,
	 * nor one whose earliest record ended at --until or later (the segment index says so) */
	if (md_ledger_read_all(ldir, o->since, o->until, false, report_cb, &r, &bytes, err) < 0) {
		json_decref(r.groups);
		json_decref(r.order);
		json_decref(out);
		return -1;
	}
	json_array_foreach(r.order, i, k) {
		json_t *g = json_object_get(r.groups, json_string_value(k));
		json_t *row = json_object();
		uint64_t dur = ju(g, "duration_ns");

		json_object_set(row, o->by == MD_REPORT_BY_VM ? "vm" : o->by == MD_REPORT_BY_CUSTOMER ? "customer" : "day",
				json_object_get(g, "key"));
		double w = json_real_value(json_object_get(g, "mem_weighted"));

		for (int c = 0; md_report_cols[c]; c++) {
			if (strcmp(md_report_cols[c], "mem_avg") == 0)
				json_object_set_new(row, "mem_avg", json_integer(dur ? (json_int_t)(w / (double)dur) : 0));
			else if (strcmp(md_report_cols[c], "key") != 0 && !(o->by != MD_REPORT_BY_VM &&
									strcmp(md_report_cols[c], "customer") == 0))
				json_object_set(row, md_report_cols[c], json_object_get(g, md_report_cols[c]));
		}
		json_array_append_new(out, row);
	}
	json_decref(r.groups);
	json_decref(r.order);
	*rows = out;
	return 0;
}

void md_report_csv(FILE *f, json_t *rows)
{
	json_t *first = json_array_get(rows, 0), *row;
	const char *key;
	json_t *v;
	size_t i;

	if (first == NULL)
		return;
	{
		bool sep = false;
		json_object_foreach(first, key, v) {
			fprintf(f, "%s%s", sep ? "," : "", key);
			sep = true;
		}
		fputc('\n', f);
	}
	json_array_foreach(rows, i, row) {
		bool sep = false;
		json_object_foreach(row, key, v) {
			fputs(sep ? "," : "", f);
			sep = true;
			if (json_is_integer(v))
				fprintf(f, "%lld", (long long)json_integer_value(v));
			else if (json_is_string(v)) {
				/* RFC 4180 quoting; ids are [A-Za-z0-9-] but customers may be anything */
				fputc('"', f);
				for (const char *p = json_string_value(v); *p; p++) {
					if (*p == '"')
						fputc('"', f);
					fputc(*p, f);
				}
				fputc('"', f);
			}
		}
		fputc('\n', f);
	}
}

/* ---- Prometheus ------------------------------------------------------------------------------- */

struct promst {
	json_t *vms; /* id -> last state */
	uint64_t entries, last_seq;
};

static int prom_cb(json_t *e, uint64_t off, uint64_t end, void *arg)
{
	struct promst *p = arg;
	const char *vm = js(e, "vm"), *type = js(e, "type");
	json_t *s;

	(void)off, (void)end;
	p->entries = ju(e, "seq"); /* entries ever written: the files read may start after the first */
	if (strcmp(type, "segment") == 0) {
		/* the state of VMs whose entries are in removed segments */
		const char *id;
		json_t *vs;
		json_object_foreach(json_object_get(e, "vms"), id, vs) {
			if (json_object_get(p->vms, id))
				continue;
			s = json_pack("{s:O, s:b, s:O, s:O, s:O, s:O, s:O*}", "n", json_object_get(vs, "n"), "running",
				      json_is_true(json_object_get(vs, "open")), "customer", json_object_get(vs, "customer"),
				      "tenant", json_object_get(vs, "tenant"), "cum", json_object_get(vs, "cum"), "end_wall",
				      json_object_get(vs, "last_wall"), "mem_peak", json_object_get(vs, "mem_peak"));
			if (s)
				json_object_set_new(p->vms, id, s);
		}
		return 0;
	}
	if (vm == NULL)
		return 0;
	s = json_object_get(p->vms, vm);
	if (s == NULL) {
		s = json_object();
		json_object_set_new(p->vms, vm, s);
	}
	json_object_set_new(s, "n", json_integer((json_int_t)ju(e, "n")));
	if (strcmp(type, "start") == 0) {
		json_object_set_new(s, "running", json_true());
		json_object_set(s, "customer", json_object_get(e, "customer"));
		json_object_set(s, "tenant", json_object_get(e, "tenant"));
	} else if (strcmp(type, "stop") == 0) {
		json_object_set_new(s, "running", json_false());
	} else if (strcmp(type, "usage") == 0) {
		json_object_set(s, "cum", json_object_get(e, "cum"));
		json_object_set(s, "mem_peak", json_object_get(e, "mem_peak"));
		json_object_set(s, "end_wall", json_object_get(e, "end_wall"));
	}
	return 0;
}

static void label(FILE *f, const char *s)
{
	for (; s && *s; s++) {
		if (*s == '\\' || *s == '"')
			fputc('\\', f);
		if (*s == '\n') {
			fputs("\\n", f);
			continue;
		}
		fputc(*s, f);
	}
}

int md_meter_prom(const char *ldir, char **text, md_err **err)
{
	static const struct { const char *name, *type, *help, *field; double scale; } m[] = {
		{ "metald_vm_cpu_seconds_total", "counter", "CPU time used by the VM (cgroup), as recorded in the ledger.", "cpu_ns", 1e-9 },
		{ "metald_vm_disk_read_bytes_total", "counter", "Bytes the VM read from disk (cgroup I/O).", "disk_read_bytes", 1 },
		{ "metald_vm_disk_written_bytes_total", "counter", "Bytes the VM wrote to disk (cgroup I/O).", "disk_write_bytes", 1 },
		{ "metald_vm_disk_reads_total", "counter", "Disk read operations of the VM (cgroup I/O).", "disk_read_ops", 1 },
		{ "metald_vm_disk_writes_total", "counter", "Disk write operations of the VM (cgroup I/O).", "disk_write_ops", 1 },
		{ "metald_vm_network_receive_bytes_total", "counter", "Bytes the VM received (host-side link).", "net_rx_bytes", 1 },
		{ "metald_vm_network_transmit_bytes_total", "counter", "Bytes the VM sent (host-side link).", "net_tx_bytes", 1 },
		{ "metald_vm_memory_peak_bytes", "gauge", "Peak memory of the VM in its last recorded period.", "mem_peak", 1 },
		{ "metald_vm_running", "gauge", "1 while the VM is metered, 0 after its stop record.", "running", 1 },
		{ "metald_vm_last_record_timestamp_seconds", "gauge", "End of the VM's last usage record.", "end_wall", 1e-9 },
		{ "metald_meter_unacknowledged_entries", "gauge", "Ledger entries of the VM the billing service has not acknowledged.", "unacked", 1 },
	};
	_cleanup_json_ json_t *acked = NULL;
	struct promst p = { json_object(), 0, 0 };
	uint64_t good;
	char *buf = NULL;
	size_t len = 0;
	FILE *f;
	const char *id;
	json_t *s;

	if (md_ledger_acked_load(ldir, &acked, err) < 0 ||
	    md_ledger_read_all(ldir, 0, 0, true, prom_cb, &p, &good, err) < 0) {
		json_decref(p.vms);
		return -1;
	}
	f = open_memstream(&buf, &len);
	for (size_t i = 0; i < MD_ARRAY_SIZE(m); i++) {
		fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", m[i].name, m[i].help, m[i].name, m[i].type);
		json_object_foreach(p.vms, id, s) {
			uint64_t raw;
			if (strcmp(m[i].field, "running") == 0)
				raw = json_is_true(json_object_get(s, "running"));
			else if (strcmp(m[i].field, "unacked") == 0)
				raw = ju(s, "n") > ju(acked, id) ? ju(s, "n") - ju(acked, id) : 0;
			else if (strcmp(m[i].field, "mem_peak") == 0 || strcmp(m[i].field, "end_wall") == 0)
				raw = ju(s, m[i].field);
			else
				raw = ju(json_object_get(s, "cum"), m[i].field);
			fprintf(f, "%s{vm=\"", m[i].name);
			label(f, id);
			fputs("\",customer=\"", f);
			label(f, js(s, "customer"));
			fputs("\",tenant=\"", f);
			label(f, js(s, "tenant"));
			if (m[i].scale != 1) /* ns: exact decimal seconds */
				fprintf(f, "\"} %llu.%09llu\n", (unsigned long long)(raw / 1000000000ULL),
					(unsigned long long)(raw % 1000000000ULL));
			else
				fprintf(f, "\"} %llu\n", (unsigned long long)raw);
		}
	}
	fprintf(f, "# HELP metald_meter_ledger_entries Entries written to the meter ledger (the last seq).\n"
		   "# TYPE metald_meter_ledger_entries gauge\nmetald_meter_ledger_entries %llu\n",
		(unsigned long long)p.entries);
	fprintf(f, "# HELP metald_meter_ledger_bytes Size of the meter ledger's files (sealed segments and the active file).\n"
		   "# TYPE metald_meter_ledger_bytes gauge\nmetald_meter_ledger_bytes %llu\n",
		(unsigned long long)good);
	fclose(f);
	json_decref(p.vms);
	*text = buf;
	return 0;
}
