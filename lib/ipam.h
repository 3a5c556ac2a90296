/* Address management for metald-net: tenant subnets from the pools and VM addresses inside them,
 * recorded durably (per tenant a file and a journal of leases, see ipam.c) under one lock. */
#ifndef METALD_IPAM_H
#define METALD_IPAM_H

#include <stdbool.h>
#include <net/if.h>
#include "err.h"
#include "netcfg.h"
#include "parse.h"

struct md_ipam {
	char *dir;      /* <data_dir>/net */
	int lockfd;
	/* md_ipam_lease with defer_sync: the journal's flush runs on a thread while the caller makes
	 * kernel objects; md_ipam_sync_wait joins it */
	bool defer_sync;
	bool syncing;
	int sync_fd, sync_errno;
	unsigned long sync_thread;
};

/* Make the directories and take the exclusive lock (waits up to 30 s, then exit class 4). */
int md_ipam_open(struct md_ipam *ip, const char *data_dir, md_err **err);
void md_ipam_close(struct md_ipam *ip);

struct md_lease {
	struct md_cidr subnet4, subnet6;
	struct md_addr gw4, gw6;
	struct md_addr addr4, addr6;
	char bridge[IFNAMSIZ];
	bool new_tenant;
};

/* Lease addresses for VM `id` of `tenant` (want4/want6 NULL: the first free ones), making the
 * tenant's subnets on its first VM. The tenant record is on disk when this returns. */
int md_ipam_lease(struct md_ipam *ip, const struct md_netcfg *cfg, const char *tenant, const char *id,
		  const struct md_addr *want4, const struct md_addr *want6, struct md_lease *out, md_err **err);

/* Wait for a deferred flush (md_ipam.defer_sync) to end; 0 when none is pending or it succeeded.
 * md_ipam_close waits too. */
int md_ipam_sync_wait(struct md_ipam *ip, md_err **err);

/* Release the VM's addresses; when it was the tenant's last VM the tenant's subnets are released
 * too and *tenant_gone is set. An absent lease is fine. */
int md_ipam_release(struct md_ipam *ip, const char *tenant, const char *id, bool *tenant_gone, md_err **err);

/* The tenant's record (subnets, bridge, leases), or exit class 3. */
int md_ipam_tenant(struct md_ipam *ip, const char *tenant, json_t **out, md_err **err);

/* Remove lease journals no tenant file refers to (left by a crash); *removed lists their names
 * (NULL-terminated; free with md_strv_free). */
int md_ipam_sweep(struct md_ipam *ip, char ***removed, md_err **err);

/* Tenant names that have a record (NULL-terminated; free with md_strv_free). */
int md_ipam_tenants(struct md_ipam *ip, char ***names, md_err **err);

/* The name of the host-side bridge of a tenant: "mdt" and 12 hex digits of a hash of the name. */
void md_ipam_bridge_name(const char *tenant, char out[IFNAMSIZ]);

/* 64-bit FNV-1a with a murmur3 finaliser, for names and MACs derived from ids (stable: names
 * and MACs of existing VMs depend on it). */
uint64_t md_fnv1a64(const char *s);

#endif
