/* Strict parsers for command-line and config values: numbers, durations, sizes, booleans,
 * addresses, CIDRs and MACs. No trailing junk, ranges checked, every error names the value. */
#ifndef METALD_PARSE_H
#define METALD_PARSE_H

#include <stdbool.h>
#include <stdint.h>
#include <netinet/in.h>
#include "err.h"

/* Unsigned decimal integer in [min, max]. */
int md_parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out, md_err **err);
int md_parse_i64(const char *s, int64_t min, int64_t max, int64_t *out, md_err **err);

/* Durations: "100ms", "1.5s", "2m", "1h", "250us", "10ns"; a bare number is seconds. -> ns. */
int md_parse_duration(const char *s, uint64_t *ns, md_err **err);

/* Sizes: "512M", "1GiB", "4k", "10MB", plain bytes. K/M/G/T and KiB/MiB/.. are powers of 1024;
 * KB/MB/GB/TB are powers of 1000. -> bytes. */
int md_parse_size(const char *s, uint64_t *bytes, md_err **err);

/* true/false/1/0/yes/no/on/off (case-insensitive); anything else is an error. */
int md_parse_bool(const char *s, bool *out, md_err **err);

/* IPv4 or IPv6 address. */
struct md_addr {
	int family; /* AF_INET or AF_INET6 */
	union {
		struct in_addr v4;
		struct in6_addr v6;
		uint8_t b[16];
	};
};
int md_parse_addr(const char *s, struct md_addr *out, md_err **err);
/* Format into buf (INET6_ADDRSTRLEN is enough). */
const char *md_addr_str(const struct md_addr *a, char *buf, size_t len);
bool md_addr_eq(const struct md_addr *a, const struct md_addr *b);

/* CIDR "10.0.0.0/8", "fd00::/64"; host bits must be zero unless allow_host. */
struct md_cidr {
	struct md_addr addr;
	unsigned prefix;
};
int md_parse_cidr(const char *s, bool allow_host, struct md_cidr *out, md_err **err);
const char *md_cidr_str(const struct md_cidr *c, char *buf, size_t len);
bool md_cidr_contains(const struct md_cidr *c, const struct md_addr *a);
bool md_cidr_overlaps(const struct md_cidr *a, const struct md_cidr *b);

/* MAC "aa:bb:cc:dd:ee:ff" (also '-' separated); rejects multicast unless allow_multicast. */
int md_parse_mac(const char *s, bool allow_multicast, uint8_t mac[6], md_err **err);
const char *md_mac_str(const uint8_t mac[6], char *buf, size_t len);

#endif
