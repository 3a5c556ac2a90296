/* Reading one VM's usage counters: meter targets, cgroup v1/v2 files, link counters, pid checks. */
#ifndef METALD_METER_SAMPLE_H
#define METALD_METER_SAMPLE_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <jansson.h>
#include "err.h"

/* A meter target: `<run_dir>/meter/<id>.json`, written by metald-vm (CONTRACTS.md). */
struct md_meter_target {
	char *id, *customer, *tenant, *vmm;
	pid_t pid;
	uint64_t pid_start;       /* field 22 of /proc/PID/stat, guards against pid reuse */
	uint64_t started_wall_ns; /* 0 when absent */
	int cg_version;           /* 1, 2, or 0 for no cgroup */
	char *cg_cpuacct, *cg_memory, *cg_blkio; /* v1 directories (each may be NULL) */
	char *cg_path;                           /* v2 directory */
	char *net_link, *net_netns;              /* host-side link, netns path or NULL = ours */
	char *qmp, *fc_metrics;
	json_t *json; /* the file as read */
};

/* Parse a target object; `what` names it in messages. */
int md_meter_target_parse(json_t *j, const char *what, struct md_meter_target *t, md_err **err);
/* Read `path` and parse it. A missing file is exit class 3. */
int md_meter_target_load(const char *path, struct md_meter_target *t, md_err **err);
void md_meter_target_free(struct md_meter_target *t);

/* Cumulative counters (since the cgroup/link was made, i.e. since the VM started). */
struct md_meter_counters {
	uint64_t cpu_ns;
	uint64_t disk_read_bytes, disk_write_bytes, disk_read_ops, disk_write_ops;
	uint64_t net_rx_bytes, net_tx_bytes, net_rx_packets, net_tx_packets;
};

enum {
	MD_SAMPLE_CPU = 1 << 0,
	MD_SAMPLE_MEM = 1 << 1,  /* memory in use */
	MD_SAMPLE_DISK = 1 << 2, /* cgroup I/O counters */
	MD_SAMPLE_NET = 1 << 3,
	MD_SAMPLE_MEMPEAK = 1 << 4, /* the cgroup's own memory peak */
	MD_SAMPLE_ALL = 0x1f,
};

struct md_meter_sample {
	uint64_t mono_ns, wall_ns;
	unsigned have; /* MD_SAMPLE_* bits that were read */
	struct md_meter_counters c;
	uint64_t mem_bytes;    /* in use now */
	uint64_t mem_max;      /* the cgroup's peak since it was made (0 if the hierarchy lacks it) */
	bool mem_max_known;
};

/* Open handles for one target (fds of the cgroup files kept open so a sample is a few preads). */
struct md_meter_src;
int md_meter_src_open(const struct md_meter_target *t, struct md_meter_src **out, md_err **err);
/* Read what (MD_SAMPLE_* bits). A counter whose file or link is gone is left out of `have`;
 * only a failure to read an open cgroup file is an error. */
int md_meter_sample(struct md_meter_src *s, unsigned what, struct md_meter_sample *out, md_err **err);
void md_meter_src_close(struct md_meter_src *s);

/* One sample as JSON (for `sample` and the ledger). */
json_t *md_meter_sample_json(const struct md_meter_target *t, const struct md_meter_sample *s);
json_t *md_meter_counters_json(const struct md_meter_counters *c);
int md_meter_counters_from_json(json_t *j, struct md_meter_counters *c);


/* Release the cached netlink sockets (one per network namespace). */
void md_meter_net_cleanup(void);

#endif
