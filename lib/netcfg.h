/* metald-net's host-wide settings: address pools, per-tenant prefixes, DNS, IPv6 mode, tap name. */
#ifndef METALD_NETCFG_H
#define METALD_NETCFG_H

#include <stdbool.h>
#include <net/if.h>
#include <jansson.h>
#include "err.h"
#include "parse.h"

#define MD_NET_POOL4_DEFAULT "172.31.0.0/16"
#define MD_NET_POOL6_DEFAULT "fd6d:6574:616c::/48"
#define MD_NET_TAP_DEFAULT "tap0"
#define MD_NET_POOL_MAX 4096

struct md_netcfg {
	struct md_cidr pool4, pool6;  /* UNKEY_METALD_NETWORK_VM_SUBNET_IPV4 / _IPV6 */
	unsigned tprefix4, tprefix6;  /* UNKEY_METALD_NETWORK_TENANT_PREFIX_IPV4 / _IPV6 */
	json_t *dns;                  /* UNKEY_METALD_NETWORK_DNS_IPV4 then _IPV6: array of strings */
	bool nat6;                    /* UNKEY_METALD_NETWORK_IPV6_NAT */
	char *host_allow;             /* UNKEY_METALD_NETWORK_HOST_ALLOW: nft elements "tcp . 53, udp . 53" */
	char tap[IFNAMSIZ];           /* UNKEY_METALD_NETWORK_TAP */
	long uid, gid;                /* UNKEY_METALD_JAILER_UID / _GID, -1 when unset */
	unsigned pool;                /* UNKEY_METALD_NETWORK_POOL: ready namespaces to keep (0: none) */
};

/* Read the environment over the defaults; any invalid value is an error (exit class 2). */
int md_netcfg_load(struct md_netcfg *c, md_err **err);
void md_netcfg_free(struct md_netcfg *c);

/* Check an interface name (1..15 bytes, no '/', no whitespace). */
int md_ifname_check(const char *name, const char *what, md_err **err);

#endif
