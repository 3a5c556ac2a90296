/* Reading the meter ledger back: usage reports (by VM, customer, day) and Prometheus text. */
#ifndef METALD_METER_REPORT_H
#define METALD_METER_REPORT_H

#include <stdint.h>
#include <stdio.h>
#include <jansson.h>
#include "err.h"

enum md_report_by { MD_REPORT_BY_VM = 0, MD_REPORT_BY_CUSTOMER, MD_REPORT_BY_DAY };

struct md_report_opts {
	uint64_t since, until; /* wall ns; a record counts when its period ends in [since, until); 0 = open */
	const char *customer;  /* only this customer, or NULL */
	const char *vm;        /* only this VM, or NULL */
	enum md_report_by by;
};

/* A time for --since/--until: "2026-12-04", "2026-12-04T15:00:00Z", "@<unix seconds>", or a duration
 * ("24h", "90m") meaning that long before now. -> wall ns. */
int md_report_parse_time(const char *s, uint64_t *wall_ns, md_err **err);
int md_report_parse_by(const char *s, enum md_report_by *by, md_err **err);

/* Sum the usage records of <ledger_dir>/ledger.jsonl into rows (a JSON array of objects). */
int md_meter_report(const char *ledger_dir, const struct md_report_opts *o, json_t **rows, md_err **err);
/* The rows as CSV (header line first). */
void md_report_csv(FILE *f, json_t *rows);
extern const char *const md_report_cols[];

/* Prometheus text exposition of the ledger's per-VM totals and the meter's delivery state. */
int md_meter_prom(const char *ledger_dir, char **text, md_err **err);

#endif
