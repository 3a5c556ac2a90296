/* The billing client: billing.v1.BillingService over Connect JSON (libcurl), from ledger entries. */
#ifndef METALD_BILLING_H
#define METALD_BILLING_H

#include <stdbool.h>
#include <stdint.h>
#include <jansson.h>
#include "err.h"

enum md_billing_mode {
	MD_BILLING_SEND = 0, /* ship to the endpoint */
	MD_BILLING_MOCK,     /* ledger only, nothing sent (UNKEY_METALD_BILLING_MOCK_MODE=true) */
	MD_BILLING_OFF,      /* ledger only (UNKEY_METALD_BILLING_ENABLED=false) */
};

struct md_billing {
	enum md_billing_mode mode;
	char *endpoint;        /* without a trailing '/' */
	uint64_t timeout_ns;   /* per request */
	const volatile int *abort; /* when it becomes non-zero, a request in flight is given up */
	void *curl;
};

/* Read UNKEY_METALD_BILLING_ENDPOINT (default http://localhost:8081), _ENABLED (default true),
 * _MOCK_MODE (default false); endpoint (flag, may be NULL) and mode (flag, -1 = none) win.
 * Invalid values are usage errors. */
int md_billing_config(struct md_billing *b, const char *endpoint, int mode, md_err **err);
void md_billing_free(struct md_billing *b);
const char *md_billing_mode_name(enum md_billing_mode m);

/* Check an endpoint URL: http:// or https://, a host, no query. */
int md_billing_check_endpoint(const char *url, md_err **err);

/*
 * Turn ledger entries of one VM into one call. entries[0..n) are consecutive entries of the same
 * VM; the call uses as many as fit one request (all "usage" entries up to max_batch become one
 * SendMetricsBatch; a "start", "gap" or "stop" entry is one call on its own). Returns how many
 * entries the call covers, with *method and *body set, or 0 for an entry type billing does not take.
 */
size_t md_billing_request(json_t **entries, size_t n, size_t max_batch, const char **method, json_t **body);

/* POST {endpoint}/billing.v1.BillingService/<method>. Acknowledged = HTTP 200 with
 * "success": true. tenant (may be NULL) goes in X-Tenant-ID, batch_id in X-Metald-Batch-Id. */
int md_billing_call(struct md_billing *b, const char *method, const char *tenant, const char *batch_id,
		    json_t *body, md_err **err);

/* Protobuf Timestamp JSON form of wall ns: "2026-12-04T15:39:06.123456789Z". */
void md_billing_timestamp(uint64_t wall_ns, char *buf, size_t len);

#endif
