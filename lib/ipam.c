/* IPAM: tenants get subnets from the pools, VMs get addresses from their tenant's subnets.
 *
 * Layout under <data_dir>/net: `lock` (flock, held by every writer), and per tenant
 * `tenants/<tenant>.json` {"tenant","bridge","subnet4","subnet6","gateway4","gateway6","epoch",
 * "leases":{"<vm>":{"ipv4":..,"ipv6":..}}} with its journal `tenants/<tenant>.<epoch>.log`, one
 * JSON line per change since the file was written: {"lease":"<vm>","ipv4":..,"ipv6":..} or
 * {"release":"<vm>"}. A tenant is the file with the journal of its epoch replayed. Each rewrite
 * of the file starts a new epoch, so a journal left over by a crash is never replayed onto a file
 * that already holds its changes (gc removes it).
 *
 * A lease is durable before any kernel object is made for it, so a crash can leave a lease
 * without objects (gc releases it), never the reverse: a tenant's first lease is in its file
 * (written atomically: temp, fsync, rename, fsync dir); later ones are appended to the journal
 * and fdatasync'd — one flush, no new inode, no rename. With defer_sync (create) that flush runs
 * on a thread while the kernel objects are made, and create waits for it before it writes the VM's
 * record and reports success: the line is in the page cache before the first object exists, so
 * gc sees it after a crash of the process; after a crash of the host the objects are gone too,
 * and no caller was told the lease exists. Every
 * LOG_MAX lines a lease rewrites the file (durably) and drops the journal instead. A release is
 * appended without a flush: a host crash may bring it back, and gc removes a lease no record
 * holds. A torn last line (a crash inside a write) is ignored and cut off before the next
 * append; the lease it carried was never acted on. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
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
	ip->sync_fd = -1;
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

static void *sync_thread(void *arg)
{
	struct md_ipam *ip = arg;

	ip->sync_errno = fdatasync(ip->sync_fd) < 0 ? errno : 0;
	return NULL;
}

int md_ipam_sync_wait(struct md_ipam *ip, md_err **err)
{
	int e;

	if (!ip->syncing)
		return 0;
	pthread_join((pthread_t)ip->sync_thread, NULL);
	ip->syncing = false;
	close(ip->sync_fd);
	ip->sync_fd = -1;
	if ((e = ip->sync_errno) != 0)
		return md_fail(err, e, "lease journal: fdatasync");
	return 0;
}

void md_ipam_close(struct md_ipam *ip)
{
	md_ipam_sync_wait(ip, NULL);
	if (ip->lockfd >= 0)
		close(ip->lockfd);
	ip->lockfd = -1;
	free(ip->dir);
	ip->dir = NULL;
}

#define LOG_MAX 64

static char *tenant_path(struct md_ipam *ip, const char *tenant)
{
	return md_strdup_printf("%s/tenants/%s.json", ip->dir, tenant);
}

static json_int_t epoch_of(json_t *rec)
{
	return json_integer_value(json_object_get(rec, "epoch"));
}

static char *log_path(struct md_ipam *ip, const char *tenant, json_int_t epoch)
{
	return md_strdup_printf("%s/tenants/%s.%lld.log", ip->dir, tenant, (long long)epoch);
}

/* Replay a journal onto rec's leases. *valid is the length of its whole lines, *lines their count. */
static int replay(const char *path, json_t *rec, size_t *valid, unsigned *lines, md_err **err)
{
	_cleanup_free_ char *data = NULL;
	json_t *leases = json_object_get(rec, "leases");
	size_t len = 0, off = 0;

	*valid = 0;
	*lines = 0;
	if (md_read_file(path, &data, &len, NULL) < 0)
		return 0; /* no journal */
	if (!json_is_object(leases))
		json_object_set_new(rec, "leases", leases = json_object());
	while (off < len) {
		char *nl = memchr(data + off, '\n', len - off);
		_cleanup_json_ json_t *op = NULL;
		const char *id;

		if (nl == NULL)
			break; /* torn last line */
		*nl = 0;
		op = json_loads(data + off, 0, NULL);
		if (!json_is_object(op))
			return md_fail(err, 0, "lease journal `%s`: damaged line %u", path, *lines + 1);
		if ((id = json_string_value(json_object_get(op, "lease")))) {
			_cleanup_free_ char *vm = strdup(id); /* id dies with the key */

			json_object_del(op, "lease");
			json_object_set(leases, vm, op);
		} else if ((id = json_string_value(json_object_get(op, "release")))) {
			json_object_del(leases, id);
		} else {
			return md_fail(err, 0, "lease journal `%s`: damaged line %u", path, *lines + 1);
		}
		off = (size_t)(nl - data) + 1;
		*valid = off;
		(*lines)++;
	}
	return 0;
}

/* The tenant file with its journal replayed. */
static int tenant_read(struct md_ipam *ip, const char *tenant, json_t **out, size_t *valid, unsigned *lines,
		       md_err **err)
{
	_cleanup_free_ char *p = tenant_path(ip, tenant), *lp = NULL;
	json_t *rec = NULL;

	if (md_json_read(p, &rec, err) < 0)
		return -1;
	lp = log_path(ip, tenant, epoch_of(rec));
	if (replay(lp, rec, valid, lines, err) < 0) {
		json_decref(rec);
		return -1;
	}
	*out = rec;
	return 0;
}

int md_ipam_tenant(struct md_ipam *ip, const char *tenant, json_t **out, md_err **err)
{
	size_t valid;
	unsigned lines;

	return tenant_read(ip, tenant, out, &valid, &lines, err);
}

/* Append one line to the journal (cutting a torn tail first), fdatasync'd when durable. */
static int journal(struct md_ipam *ip, const char *tenant, json_t *rec, json_t *op, size_t valid, bool durable,
		   md_err **err)
{
	_cleanup_free_ char *lp = log_path(ip, tenant, epoch_of(rec)), *line = NULL, *dir = NULL;
	_cleanup_free_ char *s = json_dumps(op, JSON_COMPACT | JSON_PRESERVE_ORDER);
	_cleanup_close_ int fd = -1;
	struct stat st;
	bool created = stat(lp, &st) < 0;
	size_t len;

	if (s == NULL)
		return md_fail(err, ENOMEM, "lease journal");
	line = md_strdup_printf("%s\n", s);
	len = strlen(line);
	fd = open(lp, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	if (fd < 0)
		return md_fail(err, errno, "lease journal `%s`", lp);
	if (!created && (size_t)st.st_size > valid && ftruncate(fd, (off_t)valid) < 0)
		return md_fail(err, errno, "lease journal `%s`: cut its torn last line", lp);
	if (write(fd, line, len) != (ssize_t)len) {
		int e = errno ? errno : EIO;
		/* a short write leaves a torn line: the next append cuts it */
		return md_fail(err, e, "lease journal `%s`: write", lp);
	}
	if (!durable)
		return 0;
	if (ip->defer_sync && !created) {
		pthread_t t;

		ip->sync_fd = fd;
		if (pthread_create(&t, NULL, sync_thread, ip) == 0) {
			fd = -1; /* the thread's now; md_ipam_sync_wait closes it */
			ip->sync_thread = (unsigned long)t;
			ip->syncing = true;
			return 0;
		}
		ip->sync_fd = -1;
	}
	if (fdatasync(fd) < 0)
		return md_fail(err, errno, "lease journal `%s`: fdatasync", lp);
	dir = md_path_join(ip->dir, "tenants");
	return created ? md_fsync_dir(dir, err) : 0;
}

/* Rewrite the tenant file (durably) in a new epoch and drop the old epoch's journal. */
static int compact(struct md_ipam *ip, const char *tenant, json_t *rec, bool fresh, md_err **err)
{
	_cleanup_free_ char *p = tenant_path(ip, tenant), *old = log_path(ip, tenant, epoch_of(rec));
	/* a new tenant's epoch is the time, so no journal of an earlier tenant of that name matches */
	json_int_t next = fresh ? (json_int_t)md_now_wall_ns() : epoch_of(rec) + 1;

	json_object_set_new(rec, "epoch", json_integer(next));
	if (md_json_write_atomic(p, rec, 0600, err) < 0)
		return -1;
	if (!fresh && unlink(old) < 0 && errno != ENOENT)
		return md_fail(err, errno, "remove `%s`", old);
	return 0;
}

/* Names of the files in tenants/ that end in suffix (hidden files and temporaries left out). */
static int tenant_files(struct md_ipam *ip, const char *suffix, char ***names, md_err **err)
{
	_cleanup_free_ char *tdir = md_path_join(ip->dir, "tenants");
	_cleanup_closedir_ DIR *d = opendir(tdir);
	size_t sl = strlen(suffix), n = 0;
	struct dirent *de;
	char **v;

	if (d == NULL)
		return md_fail(err, errno, "`%s`", tdir);
	if ((v = calloc(1, sizeof(char *))) == NULL)
		abort();
	while ((de = readdir(d))) {
		size_t len = strlen(de->d_name);

		if (len <= sl || strcmp(de->d_name + len - sl, suffix) != 0 || de->d_name[0] == '.')
			continue;
		if ((v = realloc(v, (n + 2) * sizeof(char *))) == NULL)
			abort();
		v[n++] = strdup(de->d_name);
		v[n] = NULL;
	}
	*names = v;
	return 0;
}

int md_ipam_sweep(struct md_ipam *ip, char ***removed, md_err **err)
{
	_cleanup_free_ char *tdir = md_path_join(ip->dir, "tenants");
	char **logs = NULL, **v;
	size_t n = 0;

	if (tenant_files(ip, ".log", &logs, err) < 0)
		return -1;
	if ((v = calloc(1, sizeof(char *))) == NULL)
		abort();
	for (char **l = logs; *l; l++) {
		const char *dot = strchr(*l, '.');
		_cleanup_free_ char *tenant = strndup(*l, (size_t)(dot - *l)), *p = tenant_path(ip, tenant);
		_cleanup_free_ char *want = NULL, *path = NULL;
		_cleanup_json_ json_t *rec = NULL;

		if (md_json_read(p, &rec, NULL) == 0) {
			want = md_strdup_printf("%s.%lld.log", tenant, (long long)epoch_of(rec));
			if (strcmp(want, *l) == 0)
				continue;
		} else if (access(p, F_OK) == 0) {
			continue; /* an unreadable tenant file: leave its journals to a human */
		}
		path = md_path_join(tdir, *l);
		if (unlink(path) < 0 && errno != ENOENT)
			continue;
		if ((v = realloc(v, (n + 2) * sizeof(char *))) == NULL)
			abort();
		v[n++] = strdup(*l);
		v[n] = NULL;
	}
	md_strv_free(logs);
	*removed = v;
	return 0;
}

int md_ipam_tenants(struct md_ipam *ip, char ***names, md_err **err)
{
	if (tenant_files(ip, ".json", names, err) < 0)
		return -1;
	for (char **t = *names; *t; t++)
		(*t)[strlen(*t) - 5] = 0;
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

		_cleanup_free_ char *p = tenant_path(ip, *t);

		/* subnets are in the file itself (journals carry leases only) */
		if (md_json_read(p, &rec, NULL) < 0 || !cidr_from_json(rec, key, &c))
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

static int cmp_u128(const void *a, const void *b)
{
	u128 x = *(const u128 *)a, y = *(const u128 *)b;

	return x < y ? -1 : x > y;
}

/* The addresses of one family leased in a tenant, sorted (one pass, then a binary search per
 * candidate: the 500th VM's lease costs what the first did, bar the pass). */
static u128 *leased_sorted(json_t *leases, const char *key, size_t *n)
{
	u128 *v = malloc((json_object_size(leases) + 1) * sizeof(*v));
	const char *vm;
	json_t *l;

	if (v == NULL)
		abort();
	*n = 0;
	json_object_foreach(leases, vm, l) {
		struct md_addr a;
		const char *s = json_string_value(json_object_get(l, key));

		if (s && md_parse_addr(s, &a, NULL) == 0)
			v[(*n)++] = addr_u(&a);
	}
	qsort(v, *n, sizeof(*v), cmp_u128);
	return v;
}

static bool leased(const u128 *v, size_t n, u128 a)
{
	return bsearch(&a, v, n, sizeof(*v), cmp_u128) != NULL;
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
	size_t n;
	_cleanup_free_ u128 *used = leased_sorted(leases, key, &n);

	md_cidr_str(subnet, sb, sizeof(sb));
	if (subnet->addr.family == AF_INET)
		last--; /* broadcast */
	if (want) {
		u128 w = addr_u(want);

		md_addr_str(want, ab, sizeof(ab));
		if (want->family != subnet->addr.family || !md_cidr_contains(subnet, want) || w < base + 2 || w > last)
			return md_usage(err, "--ipv%d %s: not a usable address of tenant `%s`'s subnet %s (the first two and, "
					     "for IPv4, the last are reserved)", v, ab, tenant, sb);
		if (leased(used, n, w))
			return md_conflict(err, "--ipv%d %s: already leased to another VM", v, ab);
		*out = *want;
		return 0;
	}
	for (u128 a = base + 2; a <= last; a++) {
		if (!leased(used, n, a)) {
			addr_set(out, subnet->addr.family, a);
			return 0;
		}
	}
	return md_fail(err, 0, "IPv%d subnet %s of tenant `%s` is exhausted: no free address", v, sb, tenant);
}

int md_ipam_lease(struct md_ipam *ip, const struct md_netcfg *cfg, const char *tenant, const char *id,
		  const struct md_addr *want4, const struct md_addr *want6, struct md_lease *out, md_err **err)
{
	_cleanup_free_ char *path = tenant_path(ip, tenant);
	_cleanup_json_ json_t *rec = NULL, *op = NULL;
	json_t *leases, *l;
	char b4[INET6_ADDRSTRLEN + 8], b6[INET6_ADDRSTRLEN + 8];
	size_t valid = 0;
	unsigned lines = 0;
	md_err *rerr = NULL;

	memset(out, 0, sizeof(*out));
	if (tenant_read(ip, tenant, &rec, &valid, &lines, &rerr) < 0) {
		if (md_err_exit(rerr) != MD_EXIT_NOTFOUND) {
			*err = rerr;
			return -1;
		}
		md_err_free(&rerr);
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
	if (out->new_tenant || lines >= LOG_MAX)
		return compact(ip, tenant, rec, out->new_tenant, err);
	op = json_pack("{s:s, s:O, s:O}", "lease", id, "ipv4", json_object_get(l, "ipv4"), "ipv6",
		       json_object_get(l, "ipv6"));
	return journal(ip, tenant, rec, op, valid, true, err);
}

int md_ipam_release(struct md_ipam *ip, const char *tenant, const char *id, bool *tenant_gone, md_err **err)
{
	_cleanup_free_ char *path = tenant_path(ip, tenant), *lp = NULL;
	_cleanup_json_ json_t *rec = NULL, *op = NULL;
	json_t *leases;
	size_t valid = 0;
	unsigned lines = 0;

	*tenant_gone = false;
	if (tenant_read(ip, tenant, &rec, &valid, &lines, NULL) < 0) {
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
		/* the journal first: one without its file is never read (and gc removes it) */
		lp = log_path(ip, tenant, epoch_of(rec));
		if ((unlink(lp) < 0 && errno != ENOENT) || (unlink(path) < 0 && errno != ENOENT))
			return md_fail(err, errno, "remove tenant `%s`'s lease records", tenant);
		*tenant_gone = true;
		return 0;
	}
	/* not flushed (see the top of this file) */
	op = json_pack("{s:s}", "release", id);
	return journal(ip, tenant, rec, op, valid, false, err);
}
