/* metald-net's operations: host setup, and each VM's network made, shown, removed and collected. */
#ifndef METALD_VMNET_H
#define METALD_VMNET_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <jansson.h>
#include "err.h"
#include "netcfg.h"
#include "parse.h"
#include "state.h"

struct md_vmnet_req {
	const char *id, *tenant;
	const char *tap;             /* NULL: cfg->tap */
	long uid, gid;               /* -1: cfg's (UNKEY_METALD_JAILER_UID/GID), else none */
	bool have_mac, have4, have6;
	uint8_t mac[6];
	struct md_addr want4, want6;
	json_t *publish;             /* array of {"host_port","guest_port","protocol"} (borrowed) */
	uint64_t rx_rate, rx_burst, tx_rate, tx_burst; /* bytes/s and bucket bytes; 0: no limit */
};

/* Parse "HOST:GUEST[/tcp|udp]" into an object appended to arr (exit class 2 on bad input). */
int md_vmnet_parse_publish(const char *s, json_t *arr, md_err **err);
/* Parse "rx=RATE[/BURST],tx=RATE[/BURST]" (sizes as md_parse_size, per second). */
int md_vmnet_parse_rate(const char *s, struct md_vmnet_req *req, md_err **err);

/* The MAC a VM id always gets: 02 (locally administered, unicast) and 5 bytes of its hash. */
void md_vmnet_mac(const char *id, uint8_t mac[6]);

int md_vmnet_setup(const struct md_paths *p, const struct md_netcfg *cfg, md_err **err);
int md_vmnet_teardown(const struct md_paths *p, bool force, md_err **err);
int md_vmnet_create(const struct md_paths *p, const struct md_netcfg *cfg, const struct md_vmnet_req *req,
		    json_t **out, md_err **err);
/* Idempotent: *existed says whether there was anything to delete. */
int md_vmnet_delete(const struct md_paths *p, const char *id, bool *existed, md_err **err);
int md_vmnet_show(const struct md_paths *p, const char *id, json_t **out, md_err **err);
int md_vmnet_list(const struct md_paths *p, const char *tenant, json_t **out, md_err **err);
int md_vmnet_stats(const struct md_paths *p, const char *id, json_t **out, md_err **err);
/* Remove what no record claims and records whose objects are gone, restore missing rules;
 * *out lists what was done. */
int md_vmnet_gc(const struct md_paths *p, const struct md_netcfg *cfg, json_t **out, md_err **err);
/* The pool of namespaces made ahead of time: op "show" (*out: size, tap, ready, slots,
 * refill_error), "fill" (until `count` slots are ready; count < 0: UNKEY_METALD_NETWORK_POOL) or
 * "drain" (remove every slot). */
int md_vmnet_pool(const struct md_paths *p, const struct md_netcfg *cfg, const char *op, long count, json_t **out,
		  md_err **err);
/* Enter the VM's namespace and exec argv; returns only on failure (exit class 125/126/127). */
int md_vmnet_exec(const struct md_paths *p, const char *id, char **argv, md_err **err);

#endif
