/* The metering daemon: find VMs, sample them every interval, write usage records, ship them. */
#ifndef METALD_METER_H
#define METALD_METER_H

#include <stddef.h>
#include <stdint.h>
#include "billing.h"
#include "err.h"
#include "state.h"

struct md_meter_opts {
	uint64_t interval_ns;  /* sampling interval (default 100 ms) */
	uint64_t period_ns;    /* one usage record per VM per period (default 10 s) */
	uint64_t sync_ns;      /* fsync the ledger at most this long after a write (0: every write) */
	uint64_t heartbeat_ns; /* SendHeartbeat cadence (0: never) */
	size_t batch_max;      /* records per SendMetricsBatch */
	const char *stats_file; /* write timing statistics (JSON) here on exit, or NULL */
	uint64_t segment_bytes; /* seal the active ledger file when it passes this size */
	uint64_t keep_ns;       /* remove a sealed, fully acknowledged segment this long after its last write */
	struct md_billing billing;
};

void md_meter_opts_default(struct md_meter_opts *o);

/* <data_dir>/meter (ledger) and <run_dir>/meter (targets). malloc'd. */
char *md_meter_ledger_dir(const struct md_paths *p);
char *md_meter_targets_dir(const struct md_paths *p);

/* Run until SIGTERM/SIGINT (then write a final record for every VM, sync, ship what the billing
 * service takes within a few seconds, and return 0). */
int md_meter_run(const struct md_paths *p, struct md_meter_opts *o, md_err **err);

#endif
