/* The nftables rule set of metald-net: the host-wide `metald` tables and the set elements that
 * carry each tenant and VM (tagged "tenant:T" / "vm:ID" in their comments). */
#ifndef METALD_NETRULES_H
#define METALD_NETRULES_H

#include <stdbool.h>
#include <jansson.h>
#include "netcfg.h"
#include "nfset.h"

/* The whole host-wide rule set as one idempotent transaction: tables, chains and sets are added
 * if missing, the chains' rules replaced; set elements (the VMs) are kept. */
char *md_rules_setup(const struct md_netcfg *cfg);

/* Remove both tables. */
char *md_rules_teardown(void);

/* Append to the batch the elements of one tenant bridge, added (tagged "tenant:T") or deleted.
 * -1 (nothing appended) if a gateway address is not one. */
int md_rules_tenant(struct md_nf_batch *b, const char *tenant, const char *bridge, const char *gw4, const char *gw6,
		    bool add);

/* Append the elements of one VM, from its public object (metald-net create's JSON), added
 * (tagged "vm:ID") or deleted. -1 if the object lacks or garbles a field (what was appended
 * before stays: build into a fresh batch). */
int md_rules_vm(struct md_nf_batch *b, json_t *vm, bool add);

/* Flush every element set (gc rebuilds them from the records in the same transaction). */
void md_rules_flush_sets(struct md_nf_batch *b);

/* The link-local address a guest derives from its MAC (EUI-64), as text. */
void md_mac_linklocal(const uint8_t mac[6], char *buf, size_t len);

#endif
