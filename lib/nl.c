/* libnl-3 route calls for metald-net. Every request asks the kernel directly: no link or route
 * caches are kept, so the cost of one call does not grow with the number of VMs on the host. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <net/if.h>
#include <linux/rtnetlink.h>
#include <netlink/netlink.h>
#include <netlink/route/addr.h>
#include <netlink/route/link.h>
#include <netlink/route/link/bridge.h>
#include <netlink/route/link/veth.h>
#include <netlink/route/qdisc.h>
#include <netlink/route/qdisc/tbf.h>
#include <netlink/route/route.h>
#include <netlink/route/tc.h>

#include "cleanup.h"
#include "nl.h"

static int nl_status(int rc)
{
	switch (-rc) {
	case NLE_EXIST: return EEXIST;
	case NLE_NODEV:
	case NLE_OBJ_NOTFOUND: return ENODEV;
	case NLE_PERM: return EPERM;
	case NLE_BUSY: return EBUSY;
	case NLE_INVAL: return EINVAL;
	case NLE_NOMEM: return ENOMEM;
	case NLE_RANGE: return ERANGE;
	case NLE_OPNOTSUPP: return EOPNOTSUPP;
	default: return EIO;
	}
}

/* "what: libnl's words for the kernel's error", status set to the matching errno. */
__attribute__((format(printf, 3, 4))) static int nl_fail(md_err **err, int rc, const char *fmt, ...)
{
	va_list ap;
	_cleanup_free_ char *what = NULL;
	int status = nl_status(rc);

	va_start(ap, fmt);
	if (vasprintf(&what, fmt, ap) < 0)
		abort();
	va_end(ap);
	md_err_set(err, status == EEXIST ? MD_EXIT_CONFLICT : MD_EXIT_FAIL, 0, "%s: %s", what, nl_geterror(rc));
	if (err && *err)
		(*err)->status = status;
	return -1;
}

int md_nl_open(struct nl_sock **out, md_err **err)
{
	struct nl_sock *sk = nl_socket_alloc();
	int rc;

	if (sk == NULL)
		return md_fail(err, ENOMEM, "netlink socket");
	rc = nl_connect(sk, NETLINK_ROUTE);
	if (rc < 0) {
		nl_socket_free(sk);
		return nl_fail(err, rc, "netlink socket");
	}
	*out = sk;
	return 0;
}

void md_nl_close(struct nl_sock *sk)
{
	if (sk)
		nl_socket_free(sk);
}


int md_nl_link_state(struct nl_sock *sk, const char *name, int *master, bool *up, md_err **err)
{
	struct rtnl_link *link = NULL;
	int rc, idx;

	rc = rtnl_link_get_kernel(sk, 0, name, &link);
	if (rc == -NLE_NODEV || rc == -NLE_OBJ_NOTFOUND)
		return 0;
	if (rc < 0)
		return nl_fail(err, rc, "link `%s`", name);
	idx = rtnl_link_get_ifindex(link);
	*master = rtnl_link_get_master(link);
	*up = (rtnl_link_get_flags(link) & IFF_UP) != 0;
	rtnl_link_put(link);
	return idx;
}

int md_nl_ifindex(struct nl_sock *sk, const char *name, md_err **err)
{
	int master;
	bool up;

	return md_nl_link_state(sk, name, &master, &up, err);
}

int md_nl_bridge_add(struct nl_sock *sk, const char *name, md_err **err)
{
	struct rtnl_link *link = rtnl_link_bridge_alloc();
	int rc;

	if (link == NULL)
		return md_fail(err, ENOMEM, "bridge `%s`", name);
	rtnl_link_set_name(link, name);
	rtnl_link_set_flags(link, IFF_UP);
	rc = rtnl_link_add(sk, link, NLM_F_CREATE | NLM_F_EXCL);
	rtnl_link_put(link);
	if (rc < 0)
		return nl_fail(err, rc, "add bridge `%s`", name);
	return 0;
}

int md_nl_veth_add(struct nl_sock *sk, const char *name, int master, const char *peer_name, int peer_nsfd,
		   md_err **err)
{
	struct rtnl_link *link = rtnl_link_veth_alloc();
	struct rtnl_link *peer;
	int rc;

	if (link == NULL)
		return md_fail(err, ENOMEM, "veth `%s`", name);
	rtnl_link_set_name(link, name);
	if (master > 0) {
		rtnl_link_set_flags(link, IFF_UP);
		rtnl_link_set_master(link, master);
	}
	peer = rtnl_link_veth_get_peer(link);
	rtnl_link_set_name(peer, peer_name);
	/* not IFF_UP here: veth_open fails with ENOTCONN until both ends exist; the caller brings
	 * the peer up with md_nl_link_up */
	if (peer_nsfd >= 0)
		rtnl_link_set_ns_fd(peer, peer_nsfd);
	rtnl_link_put(peer);
	rc = rtnl_link_add(sk, link, NLM_F_CREATE | NLM_F_EXCL);
	rtnl_link_veth_release(link);
	if (rc < 0)
		return nl_fail(err, rc, "add veth `%s`", name);
	return 0;
}

int md_nl_link_up(struct nl_sock *sk, int ifindex, int master, md_err **err)
{
	struct rtnl_link *orig = rtnl_link_alloc(), *chg = rtnl_link_alloc();
	int rc;

	if (orig == NULL || chg == NULL) {
		rtnl_link_put(orig);
		rtnl_link_put(chg);
		return md_fail(err, ENOMEM, "link %d", ifindex);
	}
	rtnl_link_set_ifindex(orig, ifindex);
	rtnl_link_set_flags(chg, IFF_UP);
	if (master > 0)
		rtnl_link_set_master(chg, master);
	rc = rtnl_link_change(sk, orig, chg, 0);
	rtnl_link_put(orig);
	rtnl_link_put(chg);
	if (rc < 0)
		return nl_fail(err, rc, "set link %d up", ifindex);
	return 0;
}

int md_nl_link_del(struct nl_sock *sk, const char *name, md_err **err)
{
	struct rtnl_link *link = rtnl_link_alloc();
	int rc;

	if (link == NULL)
		return md_fail(err, ENOMEM, "link `%s`", name);
	rtnl_link_set_name(link, name);
	rc = rtnl_link_delete(sk, link);
	rtnl_link_put(link);
	if (rc == -NLE_NODEV || rc == -NLE_OBJ_NOTFOUND)
		return 0;
	if (rc < 0)
		return nl_fail(err, rc, "delete link `%s`", name);
	return 1;
}

int md_nl_link_detach(struct nl_sock *sk, const char *name, md_err **err)
{
	struct rtnl_link *orig = NULL, *chg = rtnl_link_alloc();
	int rc;

	if (chg == NULL)
		return md_fail(err, ENOMEM, "link `%s`", name);
	rc = rtnl_link_get_kernel(sk, 0, name, &orig);
	if (rc == -NLE_NODEV || rc == -NLE_OBJ_NOTFOUND) {
		rtnl_link_put(chg);
		return 0;
	}
	if (rc < 0) {
		rtnl_link_put(chg);
		return nl_fail(err, rc, "link `%s`", name);
	}
	rtnl_link_unset_flags(chg, IFF_UP);
	rtnl_link_set_master(chg, 0);
	rc = rtnl_link_change(sk, orig, chg, 0);
	rtnl_link_put(orig);
	rtnl_link_put(chg);
	if (rc < 0)
		return nl_fail(err, rc, "detach link `%s`", name);
	return 1;
}

int md_nl_addr_add(struct nl_sock *sk, int ifindex, const struct md_addr *a, unsigned prefix, md_err **err)
{
	struct rtnl_addr *ra = rtnl_addr_alloc();
	struct nl_addr *local;
	char buf[INET6_ADDRSTRLEN];
	int rc;

	if (ra == NULL)
		return md_fail(err, ENOMEM, "address");
	local = nl_addr_build(a->family, a->b, a->family == AF_INET ? 4 : 16);
	if (local == NULL) {
		rtnl_addr_put(ra);
		return md_fail(err, ENOMEM, "address");
	}
	nl_addr_set_prefixlen(local, (int)prefix);
	rtnl_addr_set_ifindex(ra, ifindex);
	rtnl_addr_set_local(ra, local);
	/* The gateway must answer the moment the first guest boots: no tentative period. */
	if (a->family == AF_INET6)
		rtnl_addr_set_flags(ra, IFA_F_NODAD);
	rc = rtnl_addr_add(sk, ra, NLM_F_CREATE | NLM_F_EXCL);
	nl_addr_put(local);
	rtnl_addr_put(ra);
	if (rc == -NLE_EXIST)
		return 0;
	if (rc < 0)
		return nl_fail(err, rc, "add address %s/%u", md_addr_str(a, buf, sizeof(buf)), prefix);
	return 0;
}

int md_nl_tbf(struct nl_sock *sk, int ifindex, uint64_t rate, uint64_t burst, md_err **err)
{
	struct rtnl_qdisc *q = rtnl_qdisc_alloc();
	int rc;

	if (q == NULL)
		return md_fail(err, ENOMEM, "qdisc");
	if (rate > INT32_MAX || burst > INT32_MAX) {
		rtnl_qdisc_put(q);
		return md_usage(err, "rate limit: at most %d bytes/s and burst bytes", INT32_MAX);
	}
	rtnl_tc_set_ifindex(TC_CAST(q), ifindex);
	rtnl_tc_set_parent(TC_CAST(q), TC_H_ROOT);
	rtnl_tc_set_handle(TC_CAST(q), TC_HANDLE(1, 0));
	rc = rtnl_tc_set_kind(TC_CAST(q), "tbf");
	if (rc == 0) {
		/* queue at most 50 ms of traffic beyond the bucket */
		uint64_t limit = burst + rate / 20;
		rtnl_qdisc_tbf_set_limit(q, (int)(limit > INT32_MAX ? INT32_MAX : limit));
		rtnl_qdisc_tbf_set_rate(q, (int)rate, (int)burst, 0);
		rc = rtnl_qdisc_add(sk, q, NLM_F_CREATE | NLM_F_REPLACE);
	}
	rtnl_qdisc_put(q);
	if (rc < 0)
		return nl_fail(err, rc, "add tbf qdisc on link %d", ifindex);
	return 0;
}

void md_strv_free(char **v)
{
	if (v == NULL)
		return;
	for (char **p = v; *p; p++)
		free(*p);
	free(v);
}

static int strv_add(char ***v, size_t *n, const char *s)
{
	char **nv = realloc(*v, (*n + 2) * sizeof(char *));

	if (nv == NULL)
		return -1;
	*v = nv;
	nv[*n] = strdup(s);
	nv[++*n] = NULL;
	return nv[*n - 1] ? 0 : -1;
}

int md_nl_links(struct nl_sock *sk, const char *prefix, char ***names, md_err **err)
{
	struct nl_cache *cache = NULL;
	char **v = calloc(1, sizeof(char *));
	size_t n = 0;
	int rc;

	if (v == NULL)
		return md_fail(err, ENOMEM, "links");
	rc = rtnl_link_alloc_cache(sk, AF_UNSPEC, &cache);
	if (rc < 0) {
		free(v);
		return nl_fail(err, rc, "list links");
	}
	for (struct nl_object *o = nl_cache_get_first(cache); o; o = nl_cache_get_next(o)) {
		const char *name = rtnl_link_get_name((struct rtnl_link *)o);

		if (name && strncmp(name, prefix, strlen(prefix)) == 0 && strv_add(&v, &n, name) < 0) {
			nl_cache_free(cache);
			md_strv_free(v);
			return md_fail(err, ENOMEM, "links");
		}
	}
	nl_cache_free(cache);
	*names = v;
	return 0;
}

static int route_dump(struct nl_sock *sk, struct nl_cache **routes, struct nl_cache **links, md_err **err)
{
	int rc = rtnl_route_alloc_cache(sk, AF_UNSPEC, 0, routes);

	if (rc < 0)
		return nl_fail(err, rc, "list routes");
	rc = rtnl_link_alloc_cache(sk, AF_UNSPEC, links);
	if (rc < 0) {
		nl_cache_free(*routes);
		return nl_fail(err, rc, "list links");
	}
	return 0;
}

static const char *route_link(struct rtnl_route *r, struct nl_cache *links, char *buf, size_t len)
{
	struct rtnl_nexthop *nh = rtnl_route_nexthop_n(r, 0);

	if (nh == NULL || rtnl_link_i2name(links, rtnl_route_nh_get_ifindex(nh), buf, len) == NULL)
		return NULL;
	return buf;
}

int md_nl_route_overlap(struct nl_sock *sk, const struct md_cidr *c, const char *ignore_prefix, char *buf,
			size_t len, md_err **err)
{
	struct nl_cache *routes = NULL, *links = NULL;
	int found = 0;

	if (route_dump(sk, &routes, &links, err) < 0)
		return -1;
	for (struct nl_object *o = nl_cache_get_first(routes); o && !found; o = nl_cache_get_next(o)) {
		struct rtnl_route *r = (struct rtnl_route *)o;
		struct nl_addr *dst = rtnl_route_get_dst(r);
		struct md_cidr rc;
		char lname[IFNAMSIZ] = "";
		const char *ln;

		if (rtnl_route_get_table(r) != RT_TABLE_MAIN || dst == NULL || nl_addr_get_prefixlen(dst) == 0 ||
		    nl_addr_get_family(dst) != c->addr.family)
			continue;
		memset(&rc, 0, sizeof(rc));
		rc.addr.family = c->addr.family;
		memcpy(rc.addr.b, nl_addr_get_binary_addr(dst), c->addr.family == AF_INET ? 4 : 16);
		rc.prefix = nl_addr_get_prefixlen(dst);
		/* link-local and multicast routes exist on every IPv6 link and are never a pool */
		if (rc.addr.family == AF_INET6 && (rc.addr.b[0] == 0xff || (rc.addr.b[0] == 0xfe && (rc.addr.b[1] & 0xc0) == 0x80)))
			continue;
		if (!md_cidr_overlaps(&rc, c))
			continue;
		ln = route_link(r, links, lname, sizeof(lname));
		if (ln && ignore_prefix && strncmp(ln, ignore_prefix, strlen(ignore_prefix)) == 0)
			continue;
		{
			char cb[INET6_ADDRSTRLEN + 8];
			snprintf(buf, len, "%s%s%s", md_cidr_str(&rc, cb, sizeof(cb)), ln ? " dev " : "", ln ? ln : "");
		}
		found = 1;
	}
	nl_cache_free(routes);
	nl_cache_free(links);
	return found;
}

int md_nl_default_links(struct nl_sock *sk, char ***names, md_err **err)
{
	struct nl_cache *routes = NULL, *links = NULL;
	char **v = calloc(1, sizeof(char *));
	size_t n = 0;

	if (v == NULL)
		return md_fail(err, ENOMEM, "routes");
	if (route_dump(sk, &routes, &links, err) < 0) {
		free(v);
		return -1;
	}
	for (struct nl_object *o = nl_cache_get_first(routes); o; o = nl_cache_get_next(o)) {
		struct rtnl_route *r = (struct rtnl_route *)o;
		struct nl_addr *dst = rtnl_route_get_dst(r);
		char lname[IFNAMSIZ];
		bool dup = false;

		if (rtnl_route_get_table(r) != RT_TABLE_MAIN || (dst && nl_addr_get_prefixlen(dst) != 0) ||
		    route_link(r, links, lname, sizeof(lname)) == NULL)
			continue;
		for (size_t i = 0; i < n; i++)
			dup |= strcmp(v[i], lname) == 0;
		if (!dup)
			strv_add(&v, &n, lname);
	}
	nl_cache_free(routes);
	nl_cache_free(links);
	*names = v;
	return 0;
}

int md_nl_link_stats(struct nl_sock *sk, const char *name, struct md_link_stats *st, md_err **err)
{
	struct rtnl_link *link = NULL;
	int rc = rtnl_link_get_kernel(sk, 0, name, &link);

	if (rc == -NLE_NODEV || rc == -NLE_OBJ_NOTFOUND)
		return md_notfound(err, "link `%s`: not found", name);
	if (rc < 0)
		return nl_fail(err, rc, "link `%s`", name);
	st->rx_bytes = rtnl_link_get_stat(link, RTNL_LINK_RX_BYTES);
	st->rx_packets = rtnl_link_get_stat(link, RTNL_LINK_RX_PACKETS);
	st->rx_dropped = rtnl_link_get_stat(link, RTNL_LINK_RX_DROPPED);
	st->tx_bytes = rtnl_link_get_stat(link, RTNL_LINK_TX_BYTES);
	st->tx_packets = rtnl_link_get_stat(link, RTNL_LINK_TX_PACKETS);
	st->tx_dropped = rtnl_link_get_stat(link, RTNL_LINK_TX_DROPPED);
	rtnl_link_put(link);
	return 0;
}
