/* Unit tests of the meter's lib parts: ledger recovery, billing messages, counter files, targets. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../lib/billing.h"
#include "../../lib/cleanup.h"
#include "../../lib/ledger.h"
#include "../../lib/ledger-seg.h"
#include "../../lib/meter-fc.h"
#include "../../lib/meter-report.h"
#include "../../lib/meter-sample.h"
#include "../../lib/proc.h"
#include "../../lib/state.h"
#include "tap.h"

static char tmp[] = "/tmp/metald-test-meter.XXXXXX";

static void put(const char *dir, const char *name, const char *text)
{
	_cleanup_free_ char *p = md_path_join(dir, name);
	ok(md_write_atomic(p, text, strlen(text), 0644, NULL) == 0, "write %s", name);
}

static int count_cb(json_t *e, uint64_t off, uint64_t end, void *arg)
{
	(void)e, (void)off, (void)end;
	(*(int *)arg)++;
	return 0;
}

static void ledger(void)
{
	_cleanup_free_ char *dir = md_path_join(tmp, "ledger");
	_cleanup_free_ char *path = md_path_join(dir, "ledger.jsonl");
	struct md_ledger l;
	md_err *err = NULL;
	json_t *e[3];
	int n = 0, fd;
	struct stat st;
	off_t good;

	ok(md_ledger_open(&l, dir, NULL, NULL, &err) == 0, "open a new ledger");
	for (int i = 0; i < 3; i++)
		e[i] = json_pack("{s:s, s:s, s:i}", "type", "usage", "vm", "vm1", "n", i + 1);
	ok(md_ledger_append(&l, e, 3, &err) == 0, "append three entries with one write");
	is_int(json_integer_value(json_object_get(e[2], "seq")), 3, "entries get their seq");
	ok(md_ledger_sync(&l, &err) == 0 && l.synced == l.end, "sync");
	for (int i = 0; i < 3; i++)
		json_decref(e[i]);
	md_ledger_close(&l);
	stat(path, &st);
	good = st.st_size;

	/* a crash in the middle of a write */
	fd = open(path, O_WRONLY | O_APPEND);
	ok(write(fd, "{\"seq\":4,\"type\":\"us", 19) == 19, "append a torn line");
	close(fd);
	ok(md_ledger_open(&l, dir, count_cb, &n, &err) == 0, "reopen repairs the torn tail");
	is_int(n, 3, "three whole entries seen");
	is_int(l.seq, 3, "seq continues from the last whole line");
	stat(path, &st);
	is_int(st.st_size, good, "torn tail cut off");
	e[0] = json_pack("{s:s, s:s, s:i}", "type", "stop", "vm", "vm1", "n", 4);
	ok(md_ledger_append(&l, e, 1, &err) == 0 && json_integer_value(json_object_get(e[0], "seq")) == 4, "seq 4 next");
	json_decref(e[0]);
	md_ledger_close(&l);

	/* garbage (zeros after a power loss) at the end is a torn tail too */
	fd = open(path, O_WRONLY | O_APPEND);
	ok(write(fd, "\0\0\0\0\n\0\0", 7) == 7, "append zeros");
	close(fd);
	n = 0;
	ok(md_ledger_open(&l, dir, count_cb, &n, &err) == 0 && n == 4, "zeros cut, four entries");
	md_ledger_close(&l);

	/* damage followed by valid lines is not a crash: refuse */
	{
		_cleanup_free_ char *s = NULL;
		size_t len;
		md_read_file(path, &s, &len, NULL);
		char *nl = strchr(s, '\n');
		nl[-1] = 'X';
		md_write_atomic(path, s, len, 0600, NULL);
	}
	ok(md_ledger_open(&l, dir, NULL, NULL, &err) < 0, "damaged middle refused");
	like(err ? err->msg : NULL, "damaged line at offset 0 followed by valid lines", "says where");
	md_err_free(&err);

	/* acked marks */
	json_t *a = json_pack("{s:i, s:i}", "vm1", 7, "vm2", 3), *b = NULL;
	ok(md_ledger_acked_store(dir, a, &err) == 0, "store acked");
	ok(md_ledger_acked_load(dir, &b, &err) == 0 && json_equal(a, b), "acked round trip");
	json_decref(a);
	json_decref(b);
	_cleanup_free_ char *d2 = md_path_join(tmp, "none");
	ok(md_ledger_acked_load(d2, &b, &err) == 0 && json_object_size(b) == 0, "no acked file: empty");
	json_decref(b);
}


static int seq_cb(json_t *e, uint64_t off, uint64_t end, void *arg)
{
	json_t *a = arg;
	(void)off, (void)end;
	json_array_append_new(a, json_integer(json_integer_value(json_object_get(e, "seq"))));
	return 0;
}

static void append_n(struct md_ledger *l, int from, int n)
{
	md_err *err = NULL;
	for (int i = 0; i < n; i++) {
		json_t *e = json_pack("{s:s, s:s, s:i}", "type", "usage", "vm", "vm1", "n", from + i);
		ok(md_ledger_append(l, &e, 1, &err) == 0, "append n=%d", from + i);
		json_decref(e);
	}
	ok(md_ledger_sync(l, &err) == 0, "sync");
}

static bool seqs_are(json_t *a, int from, int to)
{
	if (json_array_size(a) != (size_t)(to - from + 1))
		return false;
	for (int i = from; i <= to; i++)
		if (json_integer_value(json_array_get(a, (size_t)(i - from))) != i)
			return false;
	return true;
}

static void segments(void)
{
	_cleanup_free_ char *dir = md_path_join(tmp, "seg");
	_cleanup_free_ char *name = md_ledger_seg_name(1234), *active = md_path_join(dir, "ledger.jsonl");
	_cleanup_free_ char *newp = md_path_join(dir, "ledger.jsonl.new");
	struct md_ledger l;
	struct md_ledger_files fl;
	md_err *err = NULL;
	uint64_t base = 0, good, torn, bytes, first_end;
	unsigned removed = 9;
	json_t *a;

	is_str(name, "ledger.00000000000000001234.jsonl", "segment names sort as numbers do");
	ok(md_ledger_seg_parse(name, &base) && base == 1234, "and parse back");
	ok(!md_ledger_seg_parse("ledger.jsonl", &base) && !md_ledger_seg_parse("ledger.12.jsonl.new", &base) &&
		   !md_ledger_seg_parse("ledger..jsonl", &base),
	   "other names are not segments");

	ok(md_ledger_open(&l, dir, NULL, NULL, &err) == 0, "open");
	append_n(&l, 1, 3);
	first_end = l.end;
	ok(md_ledger_rotate(&l, json_pack("{s:{s:i}}", "vm1", "n", 3), &err) == 0, "rotate");
	is_int(l.base, first_end, "the new file starts where the old one ended");
	is_int(l.seq, 4, "the segment entry takes the next seq");
	append_n(&l, 4, 2);
	ok(md_ledger_files_list(dir, &fl, &err) == 0 && fl.n == 2 && fl.f[0].base == 0 && !fl.f[0].active &&
		   fl.f[1].base == first_end && fl.f[1].active && fl.f[1].header,
	   "one sealed segment, then the active file with its base");
	md_ledger_files_free(&fl);
	a = json_array();
	ok(md_ledger_scan_dir(dir, 0, 0, seq_cb, a, &good, &torn, &err) == 0 && good == l.end, "scan both files");
	ok(seqs_are(a, 1, 6), "seq 1..6 without a hole across the segments");
	json_decref(a);
	a = json_array();
	ok(md_ledger_scan_dir(dir, first_end, 0, seq_cb, a, &good, &torn, &err) == 0 && seqs_are(a, 4, 6),
	   "a logical offset in the active file");
	json_decref(a);
	a = json_array();
	ok(md_ledger_read_all(dir, 0, 0, false, seq_cb, a, &bytes, &err) == 0 && seqs_are(a, 1, 6) && bytes == l.end,
	   "readers see every file, and their size");
	json_decref(a);
	a = json_array();
	ok(md_ledger_read_all(dir, 0, 0, true, seq_cb, a, &bytes, &err) == 0 && seqs_are(a, 4, 6),
	   "or only the newest file that begins with the state");
	json_decref(a);
	a = json_array();
	ok(md_ledger_read_all(dir, md_now_wall_ns() + 1000000000ULL, 0, false, seq_cb, a, &bytes, &err) == 0 &&
		   seqs_are(a, 4, 6),
	   "a sealed segment last written before --since is skipped");
	json_decref(a);
	/* --until: a sealed segment whose earliest usage record ended at or after it, by the index */
	a = json_array();
	ok(md_ledger_read_all(dir, 0, 1000, false, seq_cb, a, &bytes, &err) == 0 && seqs_are(a, 1, 6),
	   "without an index entry, a segment is read whatever --until says");
	json_decref(a);
	md_ledger_seg_index(dir, 0, 1000);
	md_ledger_seg_index(dir, 12345, 1); /* a segment that is not there: dropped */
	a = json_array();
	ok(md_ledger_read_all(dir, 0, 1000, false, seq_cb, a, &bytes, &err) == 0 && seqs_are(a, 4, 6),
	   "its earliest record ended at --until: skipped");
	json_decref(a);
	a = json_array();
	ok(md_ledger_read_all(dir, 0, 1001, false, seq_cb, a, &bytes, &err) == 0 && seqs_are(a, 1, 6),
	   "one ended before --until: read");
	json_decref(a);
	{
		_cleanup_free_ char *ip = md_path_join(dir, "segments.json");
		json_t *ix = NULL;

		ok(md_json_read(ip, &ix, &err) == 0 && json_object_size(ix) == 1 &&
			   json_integer_value(json_object_get(ix, "00000000000000000000")) == 1000,
		   "the index keeps only segments that are there");
		json_decref(ix);
	}
	md_ledger_close(&l);

	/* a checkpoint in the sealed segment: read on into the active file */
	a = json_array();
	ok(md_ledger_open_at(&l, dir, first_end, 3, seq_cb, a, &err) == 0 && seqs_are(a, 4, 6) && l.seq == 6,
	   "a checkpoint at a segment's end fits");
	json_decref(a);
	md_ledger_close(&l);
	ok(md_ledger_open_at(&l, dir, first_end, 5, NULL, NULL, &err) == 1, "one whose seq does not follow does not");

	/* crash after sealing, before the new active file is in place: the start finishes it */
	a = json_array();
	ok(md_ledger_open(&l, dir, NULL, NULL, &err) == 0, "reopen");
	ok(rename(active, newp) == 0, "simulate: the active file is only there as .new");
	md_ledger_close(&l);
	ok(md_ledger_open(&l, dir, seq_cb, a, &err) == 0 && seqs_are(a, 1, 6) && l.seq == 6 && l.base == first_end,
	   "rotation finished on open, nothing lost");
	json_decref(a);
	/* crash before sealing: the .new is dropped */
	put(dir, "ledger.jsonl.new", "{\"seq\":7,\"type\":\"segment\",\"base\":1,\"vms\":{}}\n");
	md_ledger_close(&l);
	a = json_array();
	ok(md_ledger_open(&l, dir, seq_cb, a, &err) == 0 && seqs_are(a, 1, 6) && access(newp, F_OK) < 0,
	   "an unsealed .new is dropped, nothing repeated");
	json_decref(a);

	/* pruning: only what is acknowledged, only after the retention */
	ok(md_ledger_prune(&l, first_end - 1, 0, &removed, &err) == 0 && removed == 0, "unacknowledged: kept");
	ok(md_ledger_prune(&l, first_end, 3600000000000ULL, &removed, &err) == 0 && removed == 0, "too young: kept");
	ok(md_ledger_prune(&l, first_end, 0, &removed, &err) == 0 && removed == 1, "acknowledged and old: removed");
	md_ledger_close(&l);
	a = json_array();
	ok(md_ledger_open(&l, dir, seq_cb, a, &err) == 0 && seqs_are(a, 4, 6) && l.seq == 6 && l.base == first_end,
	   "the rest still opens, from its segment entry");
	json_decref(a);
	append_n(&l, 6, 1);
	is_int(l.seq, 7, "seq goes on");
	{
		/* a reader (report, prom) holds the lock: the rotation fails at once, changing nothing */
		_cleanup_free_ char *lp = md_path_join(dir, "segments.lock");
		int rfd = open(lp, O_RDONLY | O_CLOEXEC);
		uint64_t end = l.end, b = l.base;
		ok(rfd >= 0 && flock(rfd, LOCK_SH) == 0, "a reader's shared lock");
		ok(md_ledger_rotate(&l, json_object(), &err) < 0 && md_err_exit(err) == MD_EXIT_CONFLICT, "rotation: conflict");
		md_err_free(&err);
		ok(l.end == end && l.base == b && l.seq == 7 && access(newp, F_OK) < 0, "nothing changed");
		close(rfd);
		ok(md_ledger_rotate(&l, json_object(), &err) == 0 && l.base == end && l.seq == 8, "then it goes");
	}
	md_ledger_close(&l);
	ok(md_ledger_read_all(dir, 0, 0, false, NULL, NULL, &bytes, &err) == 0 && bytes > 0, "read_all");
}

static void billing(void)
{
	struct md_billing b;
	md_err *err = NULL;
	char ts[64];
	const char *method = NULL;
	json_t *body = NULL;
	json_t *e[4];

	md_billing_timestamp(1796399343000000123ULL, ts, sizeof(ts));
	is_str(ts, "2026-12-04T15:49:03.000000123Z", "Timestamp as protojson writes it");

	unsetenv("UNKEY_METALD_BILLING_ENDPOINT");
	unsetenv("UNKEY_METALD_BILLING_MOCK_MODE");
	setenv("UNKEY_METALD_BILLING_ENABLED", "maybe", 1);
	ok(md_billing_config(&b, NULL, -1, &err) < 0 && err->code == 2, "invalid ENABLED is a usage error");
	like(err ? err->msg : NULL, "UNKEY_METALD_BILLING_ENABLED", "names the variable");
	md_err_free(&err);
	setenv("UNKEY_METALD_BILLING_ENABLED", "false", 1);
	ok(md_billing_config(&b, NULL, -1, &err) == 0 && b.mode == MD_BILLING_OFF, "ENABLED=false: off");
	is_str(b.endpoint, "http://localhost:8081", "default endpoint");
	md_billing_free(&b);
	unsetenv("UNKEY_METALD_BILLING_ENABLED");
	setenv("UNKEY_METALD_BILLING_MOCK_MODE", "yes", 1);
	ok(md_billing_config(&b, "https://billing.example/", -1, &err) == 0 && b.mode == MD_BILLING_MOCK, "mock mode");
	is_str(b.endpoint, "https://billing.example", "trailing slash dropped");
	md_billing_free(&b);
	unsetenv("UNKEY_METALD_BILLING_MOCK_MODE");
	ok(md_billing_config(&b, "localhost:8081", -1, &err) < 0 && err->code == 2, "endpoint without scheme refused");
	md_err_free(&err);
	ok(md_billing_check_endpoint("http://", &err) < 0, "endpoint without host refused");
	md_err_free(&err);

	e[0] = json_pack("{s:s, s:s, s:i, s:s, s:s, s:s, s:I}", "type", "start", "vm", "vm1", "n", 1, "id", "vm1/1",
			 "customer", "c1", "tenant", "t1", "start_time", (json_int_t)5);
	e[1] = json_pack("{s:s, s:s, s:i, s:s, s:s, s:I, s:I, s:{s:I, s:I}}", "type", "usage", "vm", "vm1", "n", 2,
			 "id", "vm1/2", "customer", "c1", "end_wall", (json_int_t)1796399343000000000LL, "mem_peak",
			 (json_int_t)4096, "cum", "cpu_ns", (json_int_t)9000000000LL, "net_rx_bytes", (json_int_t)7);
	e[2] = json_pack("{s:s, s:s, s:i, s:s, s:s, s:I, s:{s:I}}", "type", "usage", "vm", "vm1", "n", 3, "id", "vm1/3",
			 "customer", "c1", "end_wall", (json_int_t)1796399344000000000LL, "cum", "cpu_ns",
			 (json_int_t)9500000000LL);
	e[3] = json_pack("{s:s, s:s, s:i, s:s, s:I}", "type", "stop", "vm", "vm1", "n", 4, "id", "vm1/4", "stop_time",
			 (json_int_t)77);
	is_int(md_billing_request(e, 4, 100, &method, &body), 1, "a start is one call");
	is_str(method, "NotifyVmStarted", "NotifyVmStarted");
	is_str(json_string_value(json_object_get(body, "startTime")), "5", "int64 as a string");
	is_str(json_string_value(json_object_get(body, "customerId")), "c1", "customerId");
	json_decref(body);
	is_int(md_billing_request(e + 1, 3, 100, &method, &body), 2, "consecutive usage records: one batch");
	is_str(method, "SendMetricsBatch", "SendMetricsBatch");
	is_str(json_string_value(json_object_get(body, "batchId")), "vm1/2..3", "batch id from the entries");
	json_t *m0 = json_array_get(json_object_get(body, "metrics"), 0);
	is_str(json_string_value(json_object_get(m0, "cpuTimeNanos")), "9000000000", "cumulative CPU");
	is_str(json_string_value(json_object_get(m0, "memoryUsageBytes")), "4096", "memory peak");
	is_str(json_string_value(json_object_get(m0, "networkRxBytes")), "7", "cumulative rx");
	is_str(json_string_value(json_object_get(m0, "timestamp")), "2026-12-04T15:49:03.000000000Z", "timestamp");
	is_str(json_string_value(json_object_get(m0, "recordId")), "vm1/2", "record id");
	json_decref(body);
	is_int(md_billing_request(e + 1, 3, 1, &method, &body), 1, "--batch 1: one record per call");
	is_str(json_string_value(json_object_get(body, "batchId")), "vm1/2", "single batch id");
	json_decref(body);
	is_int(md_billing_request(e + 3, 1, 100, &method, &body), 1, "stop");
	is_str(method, "NotifyVmStopped", "NotifyVmStopped");
	is_str(json_string_value(json_object_get(body, "stopTime")), "77", "stopTime");
	json_decref(body);
	for (int i = 0; i < 4; i++)
		json_decref(e[i]);
}

static void counters(void)
{
	_cleanup_free_ char *v1 = md_path_join(tmp, "v1"), *v2 = md_path_join(tmp, "v2");
	struct md_meter_target t;
	struct md_meter_src *s = NULL;
	struct md_meter_sample x;
	md_err *err = NULL;
	json_t *j;

	md_mkdir_p(v1, 0755, NULL);
	md_mkdir_p(v2, 0755, NULL);
	put(v1, "cpuacct.usage", "123456789\n");
	put(v1, "memory.usage_in_bytes", "4096\n");
	put(v1, "memory.max_usage_in_bytes", "8192\n");
	put(v1, "blkio.throttle.io_service_bytes",
	    "8:0 Read 100\n8:0 Write 200\n8:0 Sync 0\n8:0 Total 300\n8:16 Read 1\n8:16 Write 2\nTotal 303\n");
	put(v1, "blkio.throttle.io_serviced", "8:0 Read 3\n8:0 Write 4\nTotal 7\n");
	j = json_pack("{s:s, s:i, s:{s:i, s:{s:s, s:s, s:s}}}", "id", "vm1", "pid", 1, "cgroup", "version", 1, "paths",
		      "cpuacct", v1, "memory", v1, "blkio", v1);
	ok(md_meter_target_parse(j, "t", &t, &err) == 0, "v1 target parses");
	json_decref(j);
	ok(md_meter_src_open(&t, &s, &err) == 0, "open v1 sources");
	ok(md_meter_sample(s, MD_SAMPLE_ALL, &x, &err) == 0, "sample v1");
	is_int(x.c.cpu_ns, 123456789, "cpuacct.usage");
	is_int(x.mem_bytes, 4096, "memory in use");
	is_int(x.mem_max, 8192, "memory peak");
	is_int(x.c.disk_read_bytes, 101, "read bytes summed over devices");
	is_int(x.c.disk_write_bytes, 202, "write bytes summed over devices");
	is_int(x.c.disk_read_ops, 3, "read ops");
	is_int(x.c.disk_write_ops, 4, "write ops");
	ok(!(x.have & MD_SAMPLE_NET), "no link: no network counters");
	{ /* in place, as the kernel changes it (the open fd must see the new value) */
		_cleanup_free_ char *p = md_path_join(v1, "cpuacct.usage");
		int fd = open(p, O_WRONLY | O_TRUNC);
		ok(write(fd, "223456789\n", 10) == 10, "counter grows");
		close(fd);
	}
	ok(md_meter_sample(s, MD_SAMPLE_CPU, &x, &err) == 0 && x.c.cpu_ns == 223456789 && x.have == MD_SAMPLE_CPU,
	   "a second sample reads again (only what was asked)");
	md_meter_src_close(s);
	md_meter_target_free(&t);

	put(v2, "cpu.stat", "usage_usec 1500\nuser_usec 1000\nsystem_usec 500\n");
	put(v2, "io.stat", "8:0 rbytes=10 wbytes=20 rios=1 wios=2 dbytes=0 dios=0\n8:16 rbytes=5 wbytes=5 rios=1 wios=1\n");
	j = json_pack("{s:s, s:i, s:{s:i, s:s}}", "id", "vm2", "pid", 1, "cgroup", "version", 2, "path", v2);
	ok(md_meter_target_parse(j, "t", &t, &err) == 0, "v2 target parses");
	json_decref(j);
	ok(md_meter_src_open(&t, &s, &err) == 0 && md_meter_sample(s, MD_SAMPLE_ALL, &x, &err) == 0, "sample v2");
	is_int(x.c.cpu_ns, 1500000, "usage_usec in ns");
	ok(!(x.have & MD_SAMPLE_MEM), "no memory.current: memory left out");
	is_int(x.c.disk_read_bytes, 15, "io.stat rbytes");
	is_int(x.c.disk_write_ops, 3, "io.stat wios");
	md_meter_src_close(s);
	md_meter_target_free(&t);

	static const char *const bad[] = {
		"{\"pid\":1}", "{\"id\":\"a/b\",\"pid\":1}", "{\"id\":\"a\"}", "{\"id\":\"a\",\"pid\":-1}",
		"{\"id\":\"a\",\"pid\":1,\"cgroup\":{\"version\":3}}", "{\"id\":\"a\",\"pid\":1,\"cgroup\":{\"version\":2}}",
		"{\"id\":\"a\",\"pid\":1,\"net\":{\"link\":5}}", "[]", NULL,
	};
	for (int i = 0; bad[i]; i++) {
		j = json_loads(bad[i], 0, NULL);
		ok(md_meter_target_parse(j, "target", &t, &err) < 0 && err->code == 2, "bad target #%d refused", i);
		md_err_free(&err);
		json_decref(j);
	}
	j = json_pack("{s:s, s:i, s:{s:i, s:s}}", "id", "vm3", "pid", 1, "cgroup", "version", 2, "path", "/nonexistent");
	md_meter_target_parse(j, "t", &t, &err);
	ok(md_meter_src_open(&t, &s, &err) < 0 && err->code == 3, "missing cgroup: not found");
	md_err_free(&err);
	md_meter_target_free(&t);
	json_decref(j);
}

static void fc(void)
{
	struct md_meter_counters c = { 0 };
	const char *l1 = "{\"utc_timestamp_ms\":1,\"block\":{\"read_bytes\":5,\"write_count\":2},"
			 "\"block_rootfs\":{\"read_bytes\":5},\"net\":{\"rx_bytes_count\":7,\"tx_packets_count\":1}}";

	ok(md_fc_line(l1, strlen(l1), &c), "a metrics line");
	ok(md_fc_line(l1, strlen(l1), &c), "a second one");
	is_int(c.disk_read_bytes, 10, "aggregate block group summed, per-drive group not added again");
	is_int(c.disk_write_ops, 4, "write_count");
	is_int(c.net_rx_bytes, 14, "rx_bytes_count (into the guest)");
	is_int(c.net_tx_packets, 2, "tx_packets_count");
	ok(!md_fc_line("{\"x\":1}", 7, &c), "not a metrics line");
	ok(!md_fc_line("{\"utc_timest", 12, &c), "a torn line");
}

static void append(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	ok(fd >= 0 && write(fd, text, strlen(text)) == (ssize_t)strlen(text), "append to %s", path);
	if (fd >= 0)
		close(fd);
}

/* The reader of a regular metrics file: a growing file read on from its position, the last lines
 * read after the file's name is gone (the jail removed), another file under the name from 0. */
static void fc_file(void)
{
	_cleanup_free_ char *p = md_path_join(tmp, "metrics.json");
	const char *l = "{\"utc_timestamp_ms\":1,\"block\":{\"read_bytes\":1}}\n";
	struct md_meter_counters c = { 0 };
	struct md_fc_reader r;
	md_err *err = NULL;
	unsigned n = 0;

	ok(md_fc_reader_open(&r, p, 0, &err) == 0 && r.fd < 0, "a file not there yet: no error");
	ok(md_fc_read(&r, &c, &n, &err) == 0 && n == 0, "nothing to read");
	append(p, l);
	ok(md_fc_read(&r, &c, &n, &err) == 0 && n == 1 && r.fd >= 0, "its first line once it is there");
	append(p, l);
	append(p, "{\"utc_timestamp_ms\":1,\"blo");
	ok(md_fc_read(&r, &c, &n, &err) == 0 && n == 1 && r.off == 2 * strlen(l), "the next line, not the torn one");
	append(p, "ck\":{\"read_bytes\":1}}\n");
	ok(unlink(p) == 0, "the name goes (the jail is removed)");
	ok(md_fc_read(&r, &c, &n, &err) == 0 && n == 1, "the last line is still read");
	is_int(c.disk_read_bytes, 3, "three lines summed once each");
	append(p, l);
	ok(md_fc_read(&r, &c, &n, &err) == 0 && n == 1 && r.off == strlen(l), "a new file under the name: from 0");
	md_fc_reader_close(&r);
	ok(md_fc_reader_open(&r, p, strlen(l), &err) == 0 && md_fc_read(&r, &c, &n, &err) == 0 && n == 0,
	   "opened at the recorded position: nothing again");
	md_fc_reader_close(&r);
	unlink(p);
	ok(symlink("/etc/passwd", p) == 0, "a link put in the file's place");
	ok(md_fc_reader_open(&r, p, 0, &err) < 0, "is refused, not followed");
	md_err_free(&err);
	unlink(p);
}

static void pids(void)
{
	uint64_t st;

	ok(md_proc_start_time(getpid(), &st, NULL) == 0 && st > 0, "own start time");
	ok(md_proc_alive(getpid(), st), "alive with the right start time");
	ok(!md_proc_alive(getpid(), st + 1), "not alive with another start time (pid reuse)");
	ok(!md_proc_alive(4194304, 0), "no such pid");
}

static void times(void)
{
	uint64_t t;
	md_err *err = NULL;

	ok(md_report_parse_time("2026-12-04", &t, &err) == 0 && t == 1796342400ULL * 1000000000ULL, "date");
	ok(md_report_parse_time("2026-12-04T01:00:00Z", &t, &err) == 0 && t == 1796346000ULL * 1000000000ULL, "time");
	ok(md_report_parse_time("@10", &t, &err) == 0 && t == 10000000000ULL, "@seconds");
	ok(md_report_parse_time("1h", &t, &err) == 0 && t < md_now_wall_ns() && t > md_now_wall_ns() - 3601000000000ULL,
	   "duration ago");
	ok(md_report_parse_time("yesterday", &t, &err) < 0 && err->code == 2, "junk refused");
	md_err_free(&err);
	ok(md_report_parse_time("2026-12-04T01:00", &t, &err) < 0, "partial time refused");
	md_err_free(&err);
}

int main(void)
{
	if (mkdtemp(tmp) == NULL)
		return 1;
	ledger();
	segments();
	billing();
	counters();
	fc();
	fc_file();
	pids();
	times();
	md_rm_rf(tmp, NULL);
	return done_testing();
}
