/* rtnetlink through libnl-3 route: links (bridge, veth), addresses, routes, qdiscs, counters. */
#ifndef METALD_NL_H
#define METALD_NL_H

#include <stdbool.h>
#include <stdint.h>
#include "err.h"
#include "parse.h"

struct nl_sock;

/* A route socket bound to the network namespace the calling thread is in now; it stays bound to
 * that namespace after the thread moves. */
int md_nl_open(struct nl_sock **sk, md_err **err);
void md_nl_close(struct nl_sock *sk);

/* ifindex of `name`: > 0, 0 when there is no such link, < 0 on error. */
int md_nl_ifindex(struct nl_sock *sk, const char *name, md_err **err);

/* Like md_nl_ifindex, also telling the link's master ifindex (0: none) and whether it is up. */
int md_nl_link_state(struct nl_sock *sk, const char *name, int *master, bool *up, md_err **err);

/* New bridge, up. EEXIST is exit class 4. */
int md_nl_bridge_add(struct nl_sock *sk, const char *name, md_err **err);

/* New veth pair: `name` here (with master > 0 enslaved to it and up, else down and on no bridge)
 * and `peer` in the namespace peer_nsfd (or here when -1), down (bring it up with md_nl_link_up). */
int md_nl_veth_add(struct nl_sock *sk, const char *name, int master, const char *peer, int peer_nsfd,
		   md_err **err);


/* Set a link's master (if > 0) and bring it up. */
int md_nl_link_up(struct nl_sock *sk, int ifindex, int master, md_err **err);

/* Delete a link by name; a missing link is fine (returns 0; 1 when deleted). */
int md_nl_link_del(struct nl_sock *sk, const char *name, md_err **err);

/* Take a link down and off its bridge; a missing link is fine (returns 0; 1 when detached). */
int md_nl_link_detach(struct nl_sock *sk, const char *name, md_err **err);

/* Add address/prefix on a link (IPv6 without duplicate address detection); present is fine. */
int md_nl_addr_add(struct nl_sock *sk, int ifindex, const struct md_addr *a, unsigned prefix, md_err **err);

/* A token bucket on the link's egress (bytes/s, bucket bytes). */
int md_nl_tbf(struct nl_sock *sk, int ifindex, uint64_t rate, uint64_t burst, md_err **err);

/* Names of links whose name starts with prefix (NULL-terminated array, free with md_strv_free). */
int md_nl_links(struct nl_sock *sk, const char *prefix, char ***names, md_err **err);
void md_strv_free(char **v);

/* The first route in the main table (not a default route, not on a link named with
 * ignore_prefix) that overlaps `c`; returns 1 and writes it as text to buf, 0 when none. */
int md_nl_route_overlap(struct nl_sock *sk, const struct md_cidr *c, const char *ignore_prefix, char *buf,
			size_t len, md_err **err);

/* Names of links that hold the default routes (for forwarding on the uplink). */
int md_nl_default_links(struct nl_sock *sk, char ***names, md_err **err);

struct md_link_stats {
	uint64_t rx_bytes, rx_packets, rx_dropped, tx_bytes, tx_packets, tx_dropped;
};
/* Counters of a link (exit class 3 if absent). */
int md_nl_link_stats(struct nl_sock *sk, const char *name, struct md_link_stats *st, md_err **err);

#endif
