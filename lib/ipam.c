/* IPAM: tenants get subnets from the pools, VMs get addresses from their tenant's subnets.
 *
 * Layout under <data_dir>/net: `lock` (flock, held by every writer), `tenants/<tenant>.json`
 * {"tenant","bridge","subnet4","subnet6","leases":{"<vm>":{"ipv4":..,"ipv6":..}}}. A tenant file
 * is rewritten atomically (temp, fsync, rename, fsync dir) before any kernel object is made for
 * the lease it holds, so a crash can leave a lease without objects (gc releases it), never the
 * reverse. */
#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cleanup.h"
#include "ipam.h"
#include "nl.h"
#include "state.h"

typedef unsigned __int128 u128;

uint64_t md_fnv1a64(const char *s)
{
	uint64_t h = 0xcbf29ce484222325ULL;

	for (; *s; s++) {
		h ^= (unsigned char)*s;
		h *= 0x100000001b3ULL;
	}
	/* FNV alone changes few high bits between ids that differ in one character ("a1", "a2");
	 * a murmur3 finaliser spreads every input bit over the whole word */
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdULL;
	h ^= h >> 33;
	h *= 0xc4ceb9fe1a85ec53ULL;
	h ^= h >> 33;
	return h;
}

void md_ipam_bridge_name(const char *tenant, char out[IFNAMSIZ])
{
	snprintf(out, IFNAMSIZ, "mdt%012llx", (unsigned long long)(md_fnv1a64(tenant) & 0xffffffffffffULL));
}

static u128 addr_u(const struct md_addr *a)
{
	u128 v = 0;
	int n = a->family == AF_INET ? 4 : 16;

	for (int i = 0; i < n; i++)
		v = (v << 8) | a->b[i];
	return v;
}

static void addr_set(struct md_addr *a, int family, u128 v)
{
	int n = family == AF_INET ? 4 : 16;

	memset(a, 0, sizeof(*a));
	a->family = family;
	for (int i = n - 1; i >= 0; i--) {
		a->b[i] = (uint8_t)(v & 0xff);
		v >>= 8;
	}
}

static unsigned bits(int family) { return family == AF_INET ? 32 : 128; }

int md_ipam_open(struct md_ipam *ip, const char *data_dir, md_err **err)
{
	_cleanup_free_ char *tdir = NULL, *lock = NULL;

	memset(ip, 0, sizeof(*ip));
	ip->lockfd = -1;
	ip->dir = md_path_join(data_dir, "net");
	tdir = md_path_join(ip->dir, "tenants");
	if (md_mkdir_p(tdir, 0700, err) < 0)
		goto fail;
	lock = md_path_join(ip->dir, "lock");
	ip->lockfd = md_lock(lock, true, 30ULL * 1000000000ULL, err);
	if (ip->lockfd < 0)
		goto fail;
	return 0;
fail:
	free(ip->dir);
	ip->dir = NULL;
	return -1;
}

void md_ipam_close(struct md_ipam *ip)
{
	if (ip->lockfd >= 0)
		close(ip->lockfd);
	ip->lockfd = -1;
	free(ip->dir);
	ip->dir = NULL;
}

static char *tenant_path(struct md_ipam *ip, const char *tenant)
{
	return md_strdup_printf("%s/tenants/%s.json", ip->dir, tenant);
}

int md_ipam_tenant(struct md_ipam *ip, const char *tenant, json_t **out, md_err **err)
{
	_cleanup_free_ char *p = tenant_path(ip, tenant);

	return md_json_read(p, out, err);
}

int md_ipam_tenants(struct md_ipam *ip, char ***names, md_err **err)
{
	_cleanup_free_ char *tdir = md_path_join(ip->dir, "tenants");
	_cleanup_closedir_ DIR *d = opendir(tdir);
	struct dirent *de;
	char **v = calloc(1, sizeof(char *));
	size_t n = 0;

	if (d == NULL) {
		free(v);
		return md_fail(err, errno, "`%s`", tdir);
	}
	while ((de = readdir(d))) {
		size_t len = strlen(de->d_name);
		char **nv;

		if (len < 6 || strcmp(de->d_name + len - 5, ".json") != 0 || de->d_name[0] == '.')
			continue;
		nv = realloc(v, (n + 2) * sizeof(char *));
		if (nv == NULL)
			abort();
		v = nv;
		v[n++] = strndup(de->d_name, len - 5);
		v[n] = NULL;
	}
	*names = v;
	return 0;
}

static bool cidr_from_json(json_t *o, const char *key, struct md_cidr *c)
{
	const char *s = json_string_value(json_object_get(o, key));

	return s && md_parse_cidr(s, false, c, NULL) == 0;
}

/* The first subnet of size /tprefix in pool that no other tenant holds. */
static int alloc_subnet(struct md_ipam *ip, const struct md_cidr *pool, unsigned tprefix, const char *key,
			struct md_cidr *out, md_err **err)
{
	char **names = NULL;
	struct md_cidr *used = NULL;
	size_t nused = 0;
	unsigned fam_bits = bits(pool->addr.family);
	u128 count, base = addr_u(&pool->addr);
	unsigned shift = fam_bits - tprefix;
	int rc = -1;

	if (md_ipam_tenants(ip, &names, err) < 0)
		return -1;
	for (char **t = names; *t; t++) {
		_cleanup_json_ json_t *rec = NULL;
		struct md_cidr c;

		if (md_ipam_tenant(ip, *t, &rec, NULL) < 0 || !cidr_from_json(rec, key, &c))
			continue;
		used = realloc(used, (nused + 1) * sizeof(*used));
		used[nused++] = c;
	}
	/* more than 2^64 subnets are never all taken: cap the count to keep the arithmetic simple */
	count = tprefix - pool->prefix >= 64 ? ((u128)1 << 64) : ((u128)1 << (tprefix - pool->prefix));
	for (u128 i = 0; i < count; i++) {
		struct md_cidr cand;
		bool taken = false;

		addr_set(&cand.addr, pool->addr.family, base + (i << shift));
		cand.prefix = tprefix;
		for (size_t k = 0; k < nused && !taken; k++)
			taken = md_cidr_overlaps(&cand, &used[k]);
		if (!taken) {
			*out = cand;
			rc = 0;
			break;
		}
	}
	if (rc < 0) {
		char buf[INET6_ADDRSTRLEN + 8];
		md_fail(err, 0, "IPv%d pool %s is exhausted: no free /%u left for a new tenant",
			pool->addr.family == AF_INET ? 4 : 6, md_cidr_str(pool, buf, sizeof(buf)), tprefix);
	}
	free(used);
	md_strv_free(names);
	return rc;
}

static bool leased(json_t *leases, const char *key, const struct md_addr *a)
{
	const char *vm;
	json_t *l;
	char buf[INET6_ADDRSTRLEN];

	md_addr_str(a, buf, sizeof(buf));
	json_object_foreach(leases, vm, l) {
		const char *s = json_string_value(json_object_get(l, key));
		if (s && strcmp(s, buf) == 0)
			return true;
	}
	return false;
}

/* A host address of the tenant subnet: the requested one (checked) or the first free one.
 * Offsets 0 (network) and 1 (gateway) and, for IPv4, the broadcast address are never leased. */
static int alloc_addr(json_t *leases, const char *key, const char *tenant, const struct md_cidr *subnet,
		      const struct md_addr *want, struct md_addr *out, md_err **err)
{
	unsigned hb = bits(subnet->addr.family) - subnet->prefix;
	u128 base = addr_u(&subnet->addr);
	u128 last = hb >= 64 ? base + ((u128)1 << 62) : base + ((u128)1 << hb) - 1;
	char sb[INET6_ADDRSTRLEN + 8], ab[INET6_ADDRSTRLEN];
	int v = subnet->addr.family == AF_INET ? 4 : 6;

	md_cidr_str(subnet, sb, sizeof(sb));
	if (subnet->addr.family == AF_INET)
		last--; /* broadcast */
	if (want) {
		u128 w = addr_u(want);

		md_addr_str(want, ab, sizeof(ab));
		if (want->family != subnet->addr.family || !md_cidr_contains(subnet, want) || w < base + 2 || w > last)
			return md_usage(err, "--ipv%d %s: not a usable address of tenant `%s`'s subnet %s (the first two and, "
					     "for IPv4, the last are reserved)", v, ab, tenant, sb);
		if (leased(leases, key, want))
			return md_conflict(err, "--ipv%d %s: already leased to another VM", v, ab);
		*out = *want;
		return 0;
	}
	for (u128 a = base + 2; a <= last; a++) {
		addr_set(out, subnet->addr.family, a);
		if (!leased(leases, key, out))
			return 0;
	}
	return md_fail(err, 0, "IPv%d subnet %s of tenant `%s` is exhausted: no free address", v, sb, tenant);
}

int md_ipam_lease(struct md_ipam *ip, const struct md_netcfg *cfg, const char *tenant, const char *id,
		  const struct md_addr *want4, const struct md_addr *want6, struct md_lease *out, md_err **err)
{
	_cleanup_free_ char *path = tenant_path(ip, tenant);
	_cleanup_json_ json_t *rec = NULL;
	json_t *leases, *l;
	char b4[INET6_ADDRSTRLEN + 8], b6[INET6_ADDRSTRLEN + 8];

	memset(out, 0, sizeof(*out));
	if (md_json_read(path, &rec, NULL) < 0) {
		rec = NULL;
		if (alloc_subnet(ip, &cfg->pool4, cfg->tprefix4, "subnet4", &out->subnet4, err) < 0 ||
		    alloc_subnet(ip, &cfg->pool6, cfg->tprefix6, "subnet6", &out->subnet6, err) < 0)
			return -1;
		md_ipam_bridge_name(tenant, out->bridge);
		rec = json_pack("{s:s, s:s, s:s, s:s, s:{}}", "tenant", tenant, "bridge", out->bridge, "subnet4",
				md_cidr_str(&out->subnet4, b4, sizeof(b4)), "subnet6",
				md_cidr_str(&out->subnet6, b6, sizeof(b6)), "leases");
		out->new_tenant = true;
	} else {
		const char *br = json_string_value(json_object_get(rec, "bridge"));

		if (!cidr_from_json(rec, "subnet4", &out->subnet4) || !cidr_from_json(rec, "subnet6", &out->subnet6) ||
		    br == NULL || strlen(br) >= IFNAMSIZ)
			return md_fail(err, 0, "tenant record `%s`: damaged (subnet4, subnet6 or bridge)", path);
		snprintf(out->bridge, sizeof(out->bridge), "%s", br);
	}
	leases = json_object_get(rec, "leases");
	if (!json_is_object(leases))
		json_object_set_new(rec, "leases", leases = json_object());
	if (json_object_get(leases, id))
		return md_conflict(err, "VM `%s` already holds a lease in tenant `%s` (an interrupted create? run `metald-net gc`)", id, tenant);
	if (alloc_addr(leases, "ipv4", tenant, &out->subnet4, want4, &out->addr4, err) < 0 ||
	    alloc_addr(leases, "ipv6", tenant, &out->subnet6, want6, &out->addr6, err) < 0)
		return -1;
	addr_set(&out->gw4, AF_INET, addr_u(&out->subnet4.addr) + 1);
	addr_set(&out->gw6, AF_INET6, addr_u(&out->subnet6.addr) + 1);
	json_object_set_new(rec, "gateway4", json_string(md_addr_str(&out->gw4, b4, sizeof(b4))));
	json_object_set_new(rec, "gateway6", json_string(md_addr_str(&out->gw6, b6, sizeof(b6))));
	l = json_pack("{s:s, s:s}", "ipv4", md_addr_str(&out->addr4, b4, sizeof(b4)), "ipv6",
		      md_addr_str(&out->addr6, b6, sizeof(b6)));
	json_object_set_new(leases, id, l);
	return md_json_write_atomic(path, rec, 0600, err);
}

int md_ipam_release(struct md_ipam *ip, const char *tenant, const char *id, bool *tenant_gone, md_err **err)
{
	_cleanup_free_ char *path = tenant_path(ip, tenant);
	_cleanup_json_ json_t *rec = NULL;
	json_t *leases;

	*tenant_gone = false;
	if (md_json_read(path, &rec, NULL) < 0) {
		*tenant_gone = access(path, F_OK) != 0;
		return 0;
	}
	leases = json_object_get(rec, "leases");
	if (json_is_object(leases) && json_object_get(leases, id)) {
		json_object_del(leases, id);
	} else if (json_is_object(leases) && json_object_size(leases) > 0) {
		return 0;
	}
	if (!json_is_object(leases) || json_object_size(leases) == 0) {
		if (unlink(path) < 0 && errno != ENOENT)
			return md_fail(err, errno, "remove `%s`", path);
		*tenant_gone = true;
		return 0;
	}
	/* A release is not fsync'd (a lease is, before anything is made): if a host crash brings a
	 * released lease back, gc removes it as a lease no record claims; the next lease in the
	 * tenant writes the whole file durably. */
	return md_json_write_replace(path, rec, 0600, err);
}
