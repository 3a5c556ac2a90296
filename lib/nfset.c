/* nftables set elements as one netlink transaction through libnftnl (see nfset.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <arpa/inet.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netlink.h>
#include <libmnl/libmnl.h>
#include <libnftnl/common.h>
#include <libnftnl/set.h>
#include <libnftnl/udata.h>

#include "cleanup.h"
#include "nfset.h"
#include "parse.h"
#include "state.h"

_Static_assert((int)MD_NF_FAMILY_INET == (int)NFPROTO_INET && (int)MD_NF_FAMILY_BRIDGE == (int)NFPROTO_BRIDGE,
	       "nfproto values");

struct md_nf_field md_nf_ifname(const char *name)
{
	struct md_nf_field f = { .type = MD_NF_IFNAME };

	strncpy(f.v.name, name, IFNAMSIZ - 1);
	return f;
}

struct md_nf_field md_nf_proto(uint8_t proto)
{
	return (struct md_nf_field){ .type = MD_NF_PROTO, .v.proto = proto };
}

struct md_nf_field md_nf_port(uint16_t port)
{
	return (struct md_nf_field){ .type = MD_NF_PORT, .v.port = port };
}

int md_nf_addr(const char *text, struct md_nf_field *f)
{
	struct md_addr a;

	if (text == NULL || md_parse_addr(text, &a, NULL) < 0)
		return -1;
	memset(f, 0, sizeof(*f));
	f->type = a.family == AF_INET ? MD_NF_IPV4 : MD_NF_IPV6;
	memcpy(f->v.b, a.b, a.family == AF_INET ? 4 : 16);
	return 0;
}

int md_nf_raw128(const char *ipv6_text, struct md_nf_field *f)
{
	if (md_nf_addr(ipv6_text, f) < 0 || f->type != MD_NF_IPV6)
		return -1;
	f->type = MD_NF_RAW128;
	return 0;
}

int md_nf_ether(const char *text, struct md_nf_field *f)
{
	memset(f, 0, sizeof(*f));
	if (text == NULL || md_parse_mac(text, true, f->v.b, NULL) < 0)
		return -1;
	f->type = MD_NF_ETHER;
	return 0;
}

/* ---- the batch ---- */

void md_nf_batch_add(struct md_nf_batch *b, enum md_nf_op op, enum md_nf_family family, const char *table,
		     const char *set, const struct md_nf_field *key, unsigned nkey, const struct md_nf_field *data,
		     unsigned ndata, const char *comment)
{
	struct md_nf_elem *e;

	if (b->n == b->cap) {
		b->cap = b->cap ? 2 * b->cap : 16;
		b->v = realloc(b->v, b->cap * sizeof(*b->v));
		if (b->v == NULL)
			abort();
	}
	e = &b->v[b->n++];
	memset(e, 0, sizeof(*e));
	e->op = op;
	e->family = family;
	e->table = table;
	e->set = set;
	e->nkey = nkey > MD_NF_MAX_FIELDS ? MD_NF_MAX_FIELDS : nkey;
	e->ndata = ndata > MD_NF_MAX_FIELDS ? MD_NF_MAX_FIELDS : ndata;
	for (unsigned i = 0; i < e->nkey; i++)
		e->key[i] = key[i];
	for (unsigned i = 0; i < e->ndata; i++)
		e->data[i] = data[i];
	e->comment = comment ? strdup(comment) : NULL;
}

void md_nf_batch_append(struct md_nf_batch *to, const struct md_nf_batch *from)
{
	for (size_t i = 0; i < from->n; i++) {
		const struct md_nf_elem *e = &from->v[i];

		md_nf_batch_add(to, e->op, e->family, e->table, e->set, e->key, e->nkey, e->data, e->ndata, e->comment);
	}
}

void md_nf_batch_flush(struct md_nf_batch *b, enum md_nf_family family, const char *table, const char *set)
{
	md_nf_batch_add(b, MD_NF_FLUSH, family, table, set, NULL, 0, NULL, 0, NULL);
}

void md_nf_batch_free(struct md_nf_batch *b)
{
	for (size_t i = 0; i < b->n; i++)
		free(b->v[i].comment);
	free(b->v);
	memset(b, 0, sizeof(*b));
}

/* nft's layout of a concatenation: every field in whole 32-bit registers. */
static size_t encode(const struct md_nf_field *f, unsigned n, uint8_t *out)
{
	size_t len = 0;

	for (unsigned i = 0; i < n; i++) {
		size_t w;

		switch (f[i].type) {
		case MD_NF_IFNAME:
			w = IFNAMSIZ;
			memset(out + len, 0, w);
			memcpy(out + len, f[i].v.name, strnlen(f[i].v.name, IFNAMSIZ));
			break;
		case MD_NF_ETHER:
			w = 8;
			memset(out + len, 0, w);
			memcpy(out + len, f[i].v.b, 6);
			break;
		case MD_NF_IPV4:
			w = 4;
			memcpy(out + len, f[i].v.b, 4);
			break;
		case MD_NF_IPV6:
		case MD_NF_RAW128:
			w = 16;
			memcpy(out + len, f[i].v.b, 16);
			break;
		case MD_NF_PROTO:
			w = 4;
			memset(out + len, 0, w);
			out[len] = f[i].v.proto;
			break;
		case MD_NF_PORT:
		default: {
			uint16_t be = htons(f[i].v.port);

			w = 4;
			memset(out + len, 0, w);
			memcpy(out + len, &be, 2);
			break;
		}
		}
		len += w;
	}
	return len;
}

static void field_text(const struct md_nf_field *f, char *buf, size_t len)
{
	struct md_addr a = { 0 };

	switch (f->type) {
	case MD_NF_IFNAME:
		snprintf(buf, len, "\"%.*s\"", IFNAMSIZ, f->v.name);
		break;
	case MD_NF_ETHER:
		md_mac_str(f->v.b, buf, len);
		break;
	case MD_NF_IPV4:
	case MD_NF_IPV6:
		a.family = f->type == MD_NF_IPV4 ? AF_INET : AF_INET6;
		memcpy(a.b, f->v.b, f->type == MD_NF_IPV4 ? 4 : 16);
		md_addr_str(&a, buf, len);
		break;
	case MD_NF_RAW128:
		if (len < 35) {
			*buf = 0;
			break;
		}
		strcpy(buf, "0x");
		for (int i = 0; i < 16; i++)
			snprintf(buf + 2 + 2 * i, 3, "%02x", f->v.b[i]);
		break;
	case MD_NF_PROTO:
		if (f->v.proto == 6)
			snprintf(buf, len, "tcp");
		else if (f->v.proto == 17)
			snprintf(buf, len, "udp");
		else
			snprintf(buf, len, "%u", f->v.proto);
		break;
	case MD_NF_PORT:
		snprintf(buf, len, "%u", f->v.port);
		break;
	}
}

static void fields_text(FILE *f, const struct md_nf_field *v, unsigned n)
{
	char buf[64];

	for (unsigned i = 0; i < n; i++) {
		field_text(&v[i], buf, sizeof(buf));
		fprintf(f, "%s%s", i ? " . " : "", buf);
	}
}

char *md_nf_batch_text(const struct md_nf_batch *b)
{
	char *out = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&out, &len);

	if (f == NULL)
		abort();
	for (size_t i = 0; i < b->n; i++) {
		const struct md_nf_elem *e = &b->v[i];
		const char *fam = e->family == MD_NF_FAMILY_BRIDGE ? "bridge" : "inet";

		if (e->op == MD_NF_FLUSH) {
			fprintf(f, "flush set %s %s %s\n", fam, e->table, e->set);
			continue;
		}
		fprintf(f, "%s element %s %s %s { ", e->op == MD_NF_ADD ? "add" : "delete", fam, e->table, e->set);
		fields_text(f, e->key, e->nkey);
		if (e->comment)
			fprintf(f, " comment \"%s\"", e->comment);
		if (e->ndata) {
			fputs(" : ", f);
			fields_text(f, e->data, e->ndata);
		}
		fputs(" }\n", f);
	}
	fclose(f);
	return out;
}

/* ---- netlink ---- */

static void put_elem(struct nlmsghdr *nlh, const struct md_nf_elem *e)
{
	struct nftnl_set *s = nftnl_set_alloc();
	struct nftnl_set_elem *el;
	uint8_t key[MD_NF_MAX_FIELDS * 16], data[MD_NF_MAX_FIELDS * 16];

	if (s == NULL)
		abort();
	nftnl_set_set_str(s, NFTNL_SET_TABLE, e->table);
	nftnl_set_set_str(s, NFTNL_SET_NAME, e->set);
	if (e->op != MD_NF_FLUSH) {
		if ((el = nftnl_set_elem_alloc()) == NULL)
			abort();
		nftnl_set_elem_set(el, NFTNL_SET_ELEM_KEY, key, encode(e->key, e->nkey, key));
		if (e->ndata)
			nftnl_set_elem_set(el, NFTNL_SET_ELEM_DATA, data, encode(e->data, e->ndata, data));
		if (e->comment) {
			struct nftnl_udata_buf *ud = nftnl_udata_buf_alloc(NFT_USERDATA_MAXLEN);

			if (ud == NULL || !nftnl_udata_put_strz(ud, NFTNL_UDATA_SET_ELEM_COMMENT, e->comment))
				abort();
			nftnl_set_elem_set(el, NFTNL_SET_ELEM_USERDATA, nftnl_udata_buf_data(ud), nftnl_udata_buf_len(ud));
			nftnl_udata_buf_free(ud);
		}
		nftnl_set_elem_add(s, el);
	}
	/* an element-less DELSETELEM is nft's "flush set": libnftnl puts the table and set names */
	nftnl_set_elems_nlmsg_build_payload(nlh, s);
	nftnl_set_free(s);
}

static int nl_error(md_err **err, const struct md_nf_elem *e, int status)
{
	const char *what = e->op == MD_NF_ADD ? "add to" : e->op == MD_NF_DELETE ? "delete from" : "flush";

	return md_err_set(err, status == EEXIST || status == EBUSY ? MD_EXIT_CONFLICT : MD_EXIT_FAIL, status,
			  "nftables: %s set %s %s %s", what, e->family == MD_NF_FAMILY_BRIDGE ? "bridge" : "inet",
			  e->table, e->set);
}

/* One transaction of elements [from, to). Returns 0, or -1 with *failed set to the index of the
 * first element the kernel refused (or to `to` when the failure was the transport's). */
static int commit_range(const struct md_nf_batch *b, size_t from, size_t to, size_t *failed, md_err **err)
{
	struct mnl_socket *nl = mnl_socket_open(NETLINK_NETFILTER);
	struct mnl_nlmsg_batch *batch = NULL;
	size_t bufsize = 4096 + (to - from) * 512;
	_cleanup_free_ char *buf = malloc(bufsize);
	char rbuf[8192];
	/* below 2^30, so seq0 + n never wraps and the comparisons below hold */
	uint32_t seq0 = (uint32_t)(md_now_mono_ns() & 0x3fffffff), seq = seq0, last;
	struct timeval tv = { .tv_sec = 10 };
	int one = 1, rc = -1, sndbuf;
	bool done = false;

	*failed = to;
	if (nl == NULL || buf == NULL) {
		md_fail(err, errno, "nftables: netlink socket");
		goto out;
	}
	if (mnl_socket_bind(nl, 0, MNL_SOCKET_AUTOPID) < 0) {
		md_fail(err, errno, "nftables: netlink bind");
		goto out;
	}
	/* answers carry only the header of the message they answer; a batch needs room to be sent
	 * in one piece; and the kernel always answers, but never wait forever */
	sndbuf = (int)bufsize;
	(void)setsockopt(mnl_socket_get_fd(nl), SOL_NETLINK, NETLINK_CAP_ACK, &one, sizeof(one));
	if (setsockopt(mnl_socket_get_fd(nl), SOL_SOCKET, SO_SNDBUFFORCE, &sndbuf, sizeof(sndbuf)) < 0)
		(void)setsockopt(mnl_socket_get_fd(nl), SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf));
	(void)setsockopt(mnl_socket_get_fd(nl), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));

	batch = mnl_nlmsg_batch_start(buf, bufsize);
	nftnl_batch_begin(mnl_nlmsg_batch_current(batch), seq++);
	mnl_nlmsg_batch_next(batch);
	for (size_t i = from; i < to; i++) {
		const struct md_nf_elem *e = &b->v[i];
		/* only the last message asks for an answer: the kernel reports every refused message
		 * anyway, in order, so the last answer closes the exchange */
		uint16_t flags = (e->op == MD_NF_ADD ? NLM_F_CREATE : 0) | (i + 1 == to ? NLM_F_ACK : 0);
		struct nlmsghdr *nlh = nftnl_nlmsg_build_hdr(mnl_nlmsg_batch_current(batch),
							     e->op == MD_NF_ADD ? NFT_MSG_NEWSETELEM : NFT_MSG_DELSETELEM,
							     e->family, flags, seq++);

		put_elem(nlh, e);
		mnl_nlmsg_batch_next(batch);
	}
	last = seq - 1;
	nftnl_batch_end(mnl_nlmsg_batch_current(batch), seq++);
	mnl_nlmsg_batch_next(batch);
	if (mnl_socket_sendto(nl, mnl_nlmsg_batch_head(batch), mnl_nlmsg_batch_size(batch)) < 0) {
		md_fail(err, errno, "nftables: send transaction");
		goto out;
	}
	rc = 0;
	while (!done) {
		ssize_t n = mnl_socket_recvfrom(nl, rbuf, sizeof(rbuf));
		int left;

		if (n < 0) {
			md_fail(err, errno == EAGAIN ? ETIMEDOUT : errno, "nftables: no answer from the kernel");
			rc = -1;
			break;
		}
		left = (int)n;
		for (const struct nlmsghdr *h = (const struct nlmsghdr *)rbuf; mnl_nlmsg_ok(h, left);
		     h = mnl_nlmsg_next(h, &left)) {
			const struct nlmsgerr *ne;

			if (h->nlmsg_type != NLMSG_ERROR)
				continue;
			ne = mnl_nlmsg_get_payload(h);
			if (ne->error && (h->nlmsg_seq <= seq0 || h->nlmsg_seq > last)) {
				/* the batch itself refused (no CAP_NET_ADMIN, nf_tables missing): nothing
				 * else will come */
				if (rc == 0)
					md_fail(err, -ne->error, "nftables: transaction refused");
				rc = -1;
				done = true;
			} else if (ne->error && rc == 0) {
				*failed = from + (h->nlmsg_seq - seq0 - 1);
				nl_error(err, &b->v[*failed], -ne->error);
				rc = -1;
			}
			if (h->nlmsg_seq == last)
				done = true;
		}
	}
out:
	if (batch)
		mnl_nlmsg_batch_stop(batch);
	if (nl)
		mnl_socket_close(nl);
	return rc;
}

static void pass_on(md_err **err, md_err **e)
{
	if (err)
		*err = *e;
	else
		md_err_free(e);
	*e = NULL;
}

int md_nf_batch_commit(const struct md_nf_batch *b, bool tolerate_missing, md_err **err)
{
	md_err *first = NULL;
	size_t failed;

	if (b->n == 0)
		return 0;
	if (commit_range(b, 0, b->n, &failed, tolerate_missing ? &first : err) == 0)
		return 0;
	if (!tolerate_missing)
		return -1;
	if (failed == b->n || first->status != ENOENT) {
		pass_on(err, &first);
		return -1;
	}
	md_err_free(&first);
	/* something to delete is gone: one element at a time, ignoring what is missing */
	for (size_t i = 0; i < b->n; i++) {
		md_err *e = NULL;

		if (commit_range(b, i, i + 1, &failed, &e) < 0 && !(failed == i && e->status == ENOENT)) {
			pass_on(err, &e);
			return -1;
		}
		md_err_free(&e);
	}
	return 0;
}
