/* The billing client: billing.v1.BillingService over Connect JSON (libcurl), from ledger entries. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "billing.h"
#include "cleanup.h"
#include "curl-load.h"
#include "parse.h"
#include "state.h"

const char *md_billing_mode_name(enum md_billing_mode m)
{
	return m == MD_BILLING_SEND ? "send" : m == MD_BILLING_MOCK ? "mock" : "off";
}

int md_billing_check_endpoint(const char *url, md_err **err)
{
	const char *host;

	if (strncmp(url, "http://", 7) == 0)
		host = url + 7;
	else if (strncmp(url, "https://", 8) == 0)
		host = url + 8;
	else
		return md_usage(err, "billing endpoint `%s`: must start with http:// or https://", url);
	if (*host == '\0' || *host == '/' || *host == ':')
		return md_usage(err, "billing endpoint `%s`: no host", url);
	if (strpbrk(url, "?# \t\n"))
		return md_usage(err, "billing endpoint `%s`: must not hold a query, fragment or spaces", url);
	return 0;
}

int md_billing_config(struct md_billing *b, const char *endpoint, int mode, md_err **err)
{
	const char *e;
	bool enabled = true, mock = false;

	memset(b, 0, sizeof(*b));
	b->timeout_ns = 10ULL * 1000000000ULL;
	e = getenv("UNKEY_METALD_BILLING_ENABLED");
	if (e && *e && md_parse_bool(e, &enabled, err) < 0)
		return md_err_wrap(err, "UNKEY_METALD_BILLING_ENABLED");
	e = getenv("UNKEY_METALD_BILLING_MOCK_MODE");
	if (e && *e && md_parse_bool(e, &mock, err) < 0)
		return md_err_wrap(err, "UNKEY_METALD_BILLING_MOCK_MODE");
	b->mode = !enabled ? MD_BILLING_OFF : mock ? MD_BILLING_MOCK : MD_BILLING_SEND;
	if (mode >= 0)
		b->mode = (enum md_billing_mode)mode;
	if (endpoint == NULL) {
		e = getenv("UNKEY_METALD_BILLING_ENDPOINT");
		endpoint = e && *e ? e : "http://localhost:8081";
		if (md_billing_check_endpoint(endpoint, err) < 0)
			return md_err_wrap(err, "UNKEY_METALD_BILLING_ENDPOINT");
	} else if (md_billing_check_endpoint(endpoint, err) < 0) {
		return -1;
	}
	b->endpoint = strdup(endpoint);
	while (strlen(b->endpoint) > 8 && b->endpoint[strlen(b->endpoint) - 1] == '/')
		b->endpoint[strlen(b->endpoint) - 1] = '\0';
	return 0;
}

void md_billing_free(struct md_billing *b)
{
	if (b->curl)
		md_curl.easy_cleanup(b->curl);
	free(b->endpoint);
	memset(b, 0, sizeof(*b));
}

void md_billing_timestamp(uint64_t wall_ns, char *buf, size_t len)
{
	time_t s = (time_t)(wall_ns / 1000000000ULL);
	struct tm tm;

	gmtime_r(&s, &tm);
	snprintf(buf, len, "%04d-%02d-%02dT%02d:%02d:%02d.%09lluZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
		 tm.tm_hour, tm.tm_min, tm.tm_sec, (unsigned long long)(wall_ns % 1000000000ULL));
}

/* protojson writes int64 as a string */
static json_t *i64(json_t *e, const char *key)
{
	char buf[32];
	json_t *v = json_object_get(e, key);

	snprintf(buf, sizeof(buf), "%lld", json_is_integer(v) ? (long long)json_integer_value(v) : 0LL);
	return json_string(buf);
}

static json_t *cum_i64(json_t *e, const char *key)
{
	return i64(json_object_get(e, "cum"), key);
}

static const char *str(json_t *e, const char *key)
{
	const char *s = json_string_value(json_object_get(e, key));
	return s ? s : "";
}

size_t md_billing_request(json_t **entries, size_t n, size_t max_batch, const char **method, json_t **body)
{
	const char *type = str(entries[0], "type");
	json_t *b = json_object();
	size_t used = 1;

	json_object_set_new(b, "vmId", json_string(str(entries[0], "vm")));
	if (strcmp(type, "start") == 0) {
		*method = "NotifyVmStarted";
		json_object_set_new(b, "customerId", json_string(str(entries[0], "customer")));
		json_object_set_new(b, "startTime", i64(entries[0], "start_time"));
	} else if (strcmp(type, "stop") == 0) {
		*method = "NotifyVmStopped";
		json_object_set_new(b, "stopTime", i64(entries[0], "stop_time"));
	} else if (strcmp(type, "gap") == 0) {
		*method = "NotifyPossibleGap";
		json_object_set_new(b, "lastSent", i64(entries[0], "last_sent"));
		json_object_set_new(b, "resumeTime", i64(entries[0], "resume_time"));
	} else if (strcmp(type, "usage") == 0) {
		json_t *metrics = json_array();
		*method = "SendMetricsBatch";
		json_object_set_new(b, "customerId", json_string(str(entries[0], "customer")));
		for (used = 0; used < n && used < max_batch && strcmp(str(entries[used], "type"), "usage") == 0; used++) {
			json_t *e = entries[used];
			char ts[64];
			json_t *v = json_object_get(e, "end_wall");

			md_billing_timestamp(json_is_integer(v) ? (uint64_t)json_integer_value(v) : 0, ts, sizeof(ts));
			/* VMMetrics are cumulative since the VM started (billaged takes differences);
			 * memory is the period's peak, a gauge (billaged keeps the maximum). */
			json_array_append_new(
				metrics, json_pack("{s:s, s:o, s:o, s:o, s:o, s:o, s:o, s:s}", "timestamp", ts,
						   "cpuTimeNanos", cum_i64(e, "cpu_ns"), "memoryUsageBytes",
						   i64(e, "mem_peak"), "diskReadBytes", cum_i64(e, "disk_read_bytes"),
						   "diskWriteBytes", cum_i64(e, "disk_write_bytes"), "networkRxBytes",
						   cum_i64(e, "net_rx_bytes"), "networkTxBytes", cum_i64(e, "net_tx_bytes"),
						   "recordId", str(e, "id")));
		}
		json_object_set_new(b, "metrics", metrics);
	} else {
		json_decref(b);
		return 0;
	}
	/* Not in billaged's proto (protojson readers discard unknown fields); lets a receiver drop a
	 * resend. Stable for the same entries. */
	if (used == 1) {
		json_object_set_new(b, "batchId", json_string(str(entries[0], "id")));
	} else {
		/* "vm1/12..20": the first id and the last entry number */
		const char *last = str(entries[used - 1], "id");
		const char *slash = strrchr(last, '/');
		_cleanup_free_ char *id = md_strdup_printf("%s..%s", str(entries[0], "id"), slash ? slash + 1 : last);
		json_object_set_new(b, "batchId", json_string(id));
	}
	*body = b;
	return used;
}

static size_t on_body(char *ptr, size_t size, size_t nmemb, void *arg)
{
	FILE *m = arg;
	return fwrite(ptr, size, nmemb, m);
}

static int on_progress(void *arg, curl_off_t dt, curl_off_t dn, curl_off_t ut, curl_off_t un)
{
	const volatile int *abort_flag = arg;

	(void)dt, (void)dn, (void)ut, (void)un;
	return abort_flag && *abort_flag ? 1 : 0;
}

int md_billing_call(struct md_billing *b, const char *method, const char *tenant, const char *batch_id,
		    json_t *body, md_err **err)
{
	_cleanup_free_ char *url = md_strdup_printf("%s/billing.v1.BillingService/%s", b->endpoint, method);
	_cleanup_free_ char *req = json_dumps(body, JSON_COMPACT | JSON_PRESERVE_ORDER);
	_cleanup_free_ char *resp = NULL;
	_cleanup_json_ json_t *rj = NULL;
	struct curl_slist *h = NULL;
	char errbuf[CURL_ERROR_SIZE] = "";
	size_t resp_len = 0;
	long status = 0;
	FILE *m;
	CURLcode rc;

	if (b->curl == NULL) {
		if (md_curl_load(err) < 0)
			return -1;
		b->curl = md_curl.easy_init();
		if (b->curl == NULL)
			return md_fail(err, ENOMEM, "billing: curl");
	}
	m = open_memstream(&resp, &resp_len);
	if (m == NULL)
		return md_fail(err, errno, "billing: buffer");
	h = md_curl.slist_append(h, "Content-Type: application/json");
	h = md_curl.slist_append(h, "Connect-Protocol-Version: 1");
	h = md_curl.slist_append(h, "Expect:");
	if (tenant && *tenant) {
		_cleanup_free_ char *t = md_strdup_printf("X-Tenant-ID: %s", tenant);
		h = md_curl.slist_append(h, t);
	}
	if (batch_id) {
		_cleanup_free_ char *t = md_strdup_printf("X-Metald-Batch-Id: %s", batch_id);
		h = md_curl.slist_append(h, t);
	}
	md_curl.easy_reset(b->curl);
	md_curl.easy_setopt(b->curl, CURLOPT_URL, url);
	md_curl.easy_setopt(b->curl, CURLOPT_POSTFIELDS, req);
	md_curl.easy_setopt(b->curl, CURLOPT_HTTPHEADER, h);
	md_curl.easy_setopt(b->curl, CURLOPT_NOSIGNAL, 1L);
	md_curl.easy_setopt(b->curl, CURLOPT_TIMEOUT_MS, (long)(b->timeout_ns / 1000000));
	md_curl.easy_setopt(b->curl, CURLOPT_CONNECTTIMEOUT_MS, 3000L);
	md_curl.easy_setopt(b->curl, CURLOPT_ERRORBUFFER, errbuf);
	md_curl.easy_setopt(b->curl, CURLOPT_WRITEFUNCTION, on_body);
	md_curl.easy_setopt(b->curl, CURLOPT_WRITEDATA, m);
	md_curl.easy_setopt(b->curl, CURLOPT_NOPROGRESS, 0L);
	md_curl.easy_setopt(b->curl, CURLOPT_XFERINFOFUNCTION, on_progress);
	md_curl.easy_setopt(b->curl, CURLOPT_XFERINFODATA, (void *)b->abort);
	md_curl.easy_setopt(b->curl, CURLOPT_PROTOCOLS_STR, "http,https");
	rc = md_curl.easy_perform(b->curl);
	md_curl.slist_free_all(h);
	fclose(m);
	if (rc != CURLE_OK)
		return md_fail(err, 0, "%s: %s", url, errbuf[0] ? errbuf : md_curl.easy_strerror(rc));
	md_curl.easy_getinfo(b->curl, CURLINFO_RESPONSE_CODE, &status);
	rj = resp ? json_loadb(resp, resp_len, 0, NULL) : NULL;
	if (status != 200) {
		const char *code = json_string_value(json_object_get(rj, "code"));
		const char *msg = json_string_value(json_object_get(rj, "message"));
		if (code || msg)
			return md_fail(err, 0, "%s: HTTP %ld: %s%s%s", url, status, code ? code : "",
				       code && msg ? ": " : "", msg ? msg : "");
		return md_fail(err, 0, "%s: HTTP %ld%s", url, status,
			       status == 404 ? " (is this a billing.v1.BillingService endpoint?)" : "");
	}
	if (!json_is_true(json_object_get(rj, "success"))) {
		const char *msg = json_string_value(json_object_get(rj, "message"));
		return md_fail(err, 0, "%s: not acknowledged%s%s", url, msg ? ": " : "", msg ? msg : "");
	}
	return 0;
}
