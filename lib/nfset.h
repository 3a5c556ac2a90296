/* nftables set elements as one netlink transaction through libnftnl: metald-net's per-VM and
 * per-tenant changes are a handful of set elements, and libnftables would first dump every table,
 * chain, set and object on the host into its cache for each command. The rule set itself (tables,
 * chains, rules, sets) is loaded with libnftables, in nft's own syntax (nft.c, netrules.c). */
#ifndef METALD_NFSET_H
#define METALD_NFSET_H

#include <stdbool.h>
#include <stdint.h>
#include <net/if.h>
#include "err.h"

/* The data types metald's sets use, laid out as nft lays out a concatenation (each field in
 * whole 32-bit registers, zero-padded). */
enum md_nf_type {
	MD_NF_IFNAME, /* 16 bytes, the name zero-padded */
	MD_NF_ETHER,  /* 6 bytes, padded to 8 */
	MD_NF_IPV4,   /* 4 bytes, network order */
	MD_NF_IPV6,   /* 16 bytes */
	MD_NF_RAW128, /* 16 raw bytes (a payload match, e.g. an ND target), shown as 0x... */
	MD_NF_PROTO,  /* inet_proto: 1 byte, padded to 4 */
	MD_NF_PORT,   /* inet_service: 2 bytes big-endian, padded to 4 */
};

struct md_nf_field {
	enum md_nf_type type;
	union {
		char name[IFNAMSIZ];
		uint8_t b[16];
		uint8_t proto;
		uint16_t port; /* host order */
	} v;
};

#define MD_NF_MAX_FIELDS 3

enum md_nf_family { MD_NF_FAMILY_INET = 1, MD_NF_FAMILY_BRIDGE = 7 }; /* NFPROTO_INET, NFPROTO_BRIDGE */

enum md_nf_op { MD_NF_ADD, MD_NF_DELETE, MD_NF_FLUSH };

struct md_nf_elem {
	enum md_nf_op op;
	enum md_nf_family family;
	const char *table;
	const char *set;
	struct md_nf_field key[MD_NF_MAX_FIELDS];
	unsigned nkey;
	struct md_nf_field data[MD_NF_MAX_FIELDS]; /* maps only */
	unsigned ndata;
	char *comment; /* owned; NULL for none */
};

struct md_nf_batch {
	struct md_nf_elem *v;
	size_t n, cap;
};

/* Field constructors. Those parsing text return -1 (nothing appended) on bad input. */
struct md_nf_field md_nf_ifname(const char *name);
struct md_nf_field md_nf_proto(uint8_t proto);
struct md_nf_field md_nf_port(uint16_t port);
int md_nf_addr(const char *text, struct md_nf_field *f);   /* IPv4 or IPv6 */
int md_nf_ether(const char *text, struct md_nf_field *f);
int md_nf_raw128(const char *ipv6_text, struct md_nf_field *f);

/* Append one element: its key fields, its data fields (maps; else NULL, 0), a comment (copied;
 * or NULL). Table and set names are not copied: pass literals. */
void md_nf_batch_add(struct md_nf_batch *b, enum md_nf_op op, enum md_nf_family family, const char *table,
		     const char *set, const struct md_nf_field *key, unsigned nkey, const struct md_nf_field *data,
		     unsigned ndata, const char *comment);
/* Append copies of every element of another batch. */
void md_nf_batch_append(struct md_nf_batch *to, const struct md_nf_batch *from);
/* Remove every element of a set (in the same transaction as what follows). */
void md_nf_batch_flush(struct md_nf_batch *b, enum md_nf_family family, const char *table, const char *set);
void md_nf_batch_free(struct md_nf_batch *b);
#define _cleanup_nf_batch_ __attribute__((cleanup(md_nf_batch_free)))

/* The batch in nft's syntax, one line per element ("add element bridge metald macs { ... }"),
 * for logs and tests. Malloc'd. */
char *md_nf_batch_text(const struct md_nf_batch *b);

/* Run the batch as one transaction: all of it happens or none. With tolerate_missing, a batch
 * refused because an element, set or table to delete is gone is retried element by element and
 * such refusals are ignored (deletion is idempotent). Errors name the set and the kernel's
 * reason; err->status is the errno (ENOENT when the table or set is missing). */
int md_nf_batch_commit(const struct md_nf_batch *b, bool tolerate_missing, md_err **err);

#endif
