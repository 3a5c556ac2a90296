/* The steps of metald-net. Order matters for crash safety: the lease (which names the VM id, and
 * so every object derived from it) is on disk before the first kernel object is made, and the
 * VM's record only after the last, so gc can always tell a finished VM (a record) from one whose
 * create was interrupted (a lease without a record) and undo the latter. Every undo step accepts
 * an object that is already gone. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <netlink/netlink.h>

#include "cleanup.h"
#include "ids.h"
#include "ipam.h"
#include "log.h"
#include "netns.h"
#include "netrules.h"
#include "nft.h"
#include "nl.h"
#include "tap.h"
#include "vmnet.h"

#define VM_BRIDGE "br0"
#define VM_VETH "veth0"

struct ctx {
	const struct md_paths *p;
	struct md_ipam ip;
	struct nl_sock *sk;    /* the namespace metald-net runs in ("the host") */
	struct md_nft *nft;
	char *vmdir;
	/* a claimed pool slot's file, moved to <vmdir>/.<id>.slot: the VM's record is written into
	 * it (no new inode); removed here if the create ends before that */
	char *slotrec;
};

static void ctx_close(struct ctx *c)
{
	/* before the lock goes: a create of the same id may take it next and claim into this name */
	if (c->slotrec)
		(void)unlink(c->slotrec);
	md_ipam_close(&c->ip);
	md_nl_close(c->sk);
	md_nft_close(c->nft);
	free(c->slotrec);
	free(c->vmdir);
	memset(c, 0, sizeof(*c));
	c->ip.lockfd = -1;
}

static int ctx_open(struct ctx *c, const struct md_paths *p, bool kernel, md_err **err)
{
	memset(c, 0, sizeof(*c));
	c->ip.lockfd = -1;
	c->p = p;
	if (md_ipam_open(&c->ip, p->data_dir, err) < 0)
		return -1;
	c->vmdir = md_path_join(c->ip.dir, "vms");
	if (md_mkdir_p(c->vmdir, 0700, err) < 0 || md_mkdir_p(p->netns_dir, 0755, err) < 0)
		goto fail;
	if (kernel && md_nl_open(&c->sk, err) < 0)
		goto fail;
	return 0;
fail:
	ctx_close(c);
	return -1;
}

/* libnftables only where the rule set itself is loaded, listed or removed (setup, gc, teardown):
 * making its context costs more than a VM's whole set-element transaction (nfset.c). */
static struct md_nft *nft(struct ctx *c, md_err **err)
{
	if (c->nft == NULL && md_nft_open(&c->nft, err) < 0)
		return NULL;
	return c->nft;
}

/* Test-only fault hook: METALD_FAULT=net-create:STEP kills this process at STEP, to prove that
 * gc recovers from a crash at any point. */
static uint64_t create_t0;
static const char *fault_verb = "create"; /* "pool" while filling the pool */

static void fault(const char *step)
{
	const char *f = getenv("METALD_FAULT");
	size_t vl = strlen(fault_verb);

	/* -vv: where a create spends its time (docs/performance.md) */
	md_debug("%s: `%s` done at %.2f ms", fault_verb, step, (double)(md_now_mono_ns() - create_t0) / 1e6);

	if (f && strncmp(f, "net-", 4) == 0 && strncmp(f + 4, fault_verb, vl) == 0 && f[4 + vl] == ':' &&
	    strcmp(f + 5 + vl, step) == 0)
		kill(getpid(), SIGKILL);
}

void md_vmnet_mac(const char *id, uint8_t mac[6])
{
	uint64_t h = md_fnv1a64(id);

	mac[0] = 0x02;
	for (int i = 1; i < 6; i++)
		mac[i] = (uint8_t)(h >> (8 * (i - 1)));
}

static void host_link_name(const char *id, char out[IFNAMSIZ])
{
	snprintf(out, IFNAMSIZ, "mdv%012llx", (unsigned long long)(md_fnv1a64(id) >> 16));
}

static char *vm_path(struct ctx *c, const char *id)
{
	return md_strdup_printf("%s/%s.json", c->vmdir, id);
}

static char *pin_path(const struct md_paths *p, const char *id)
{
	return md_strdup_printf("%s/metald-%s", p->netns_dir, id);
}

int md_vmnet_parse_publish(const char *s, json_t *arr, md_err **err)
{
	_cleanup_free_ char *copy = strdup(s);
	char *colon = strchr(copy, ':'), *slash;
	const char *proto = "tcp";
	uint64_t hp, gp;
	size_t i;
	json_t *e;

	if (colon == NULL)
		return md_usage(err, "--publish `%s`: want HOST_PORT:GUEST_PORT[/tcp|udp]", s);
	*colon = 0;
	if ((slash = strchr(colon + 1, '/'))) {
		*slash = 0;
		proto = slash + 1;
	}
	if (md_parse_u64(copy, 1, 65535, &hp, NULL) < 0 || md_parse_u64(colon + 1, 1, 65535, &gp, NULL) < 0 ||
	    (strcmp(proto, "tcp") && strcmp(proto, "udp")))
		return md_usage(err, "--publish `%s`: want HOST_PORT:GUEST_PORT[/tcp|udp], ports 1-65535", s);
	json_array_foreach(arr, i, e) {
		if (json_integer_value(json_object_get(e, "host_port")) == (json_int_t)hp &&
		    strcmp(json_string_value(json_object_get(e, "protocol")), proto) == 0)
			return md_usage(err, "--publish `%s`: host port %s/%u given twice", s, proto, (unsigned)hp);
	}
	json_array_append_new(arr, json_pack("{s:I, s:I, s:s}", "host_port", (json_int_t)hp, "guest_port",
					     (json_int_t)gp, "protocol", proto));
	return 0;
}

int md_vmnet_parse_rate(const char *s, struct md_vmnet_req *req, md_err **err)
{
	_cleanup_free_ char *copy = strdup(s);
	char *save = NULL;

	for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
		uint64_t *rate, *burst;
		char *slash;

		if (strncmp(t, "rx=", 3) == 0) {
			rate = &req->rx_rate;
			burst = &req->rx_burst;
		} else if (strncmp(t, "tx=", 3) == 0) {
			rate = &req->tx_rate;
			burst = &req->tx_burst;
		} else {
			return md_usage(err, "--rate `%s`: want rx=BYTES_PER_S[/BURST],tx=BYTES_PER_S[/BURST]", s);
		}
		if ((slash = strchr(t + 3, '/')))
			*slash = 0;
		if (md_parse_size(t + 3, rate, err) < 0 || (slash && md_parse_size(slash + 1, burst, err) < 0))
			return md_err_wrap(err, "--rate");
		if (*rate == 0 || *rate > INT32_MAX)
			return md_usage(err, "--rate `%s`: a rate must be 1 byte/s to 2 GiB/s", s);
		if (!slash)
			*burst = *rate / 10 > 32768 ? *rate / 10 : 32768;
		if (*burst < 2048 || *burst > INT32_MAX)
			return md_usage(err, "--rate `%s`: a burst must be 2 KiB to 2 GiB (at least one full frame)", s);
	}
	return 0;
}

/* Firecracker's rate limiter: a bucket of `burst` bytes refilled in refill_time ms at `rate`. */
static json_t *fc_limiter(uint64_t rate, uint64_t burst)
{
	uint64_t refill;

	if (rate == 0)
		return json_null();
	refill = burst * 1000 / rate;
	if (refill < 1)
		refill = 1;
	return json_pack("{s:{s:I, s:I}}", "bandwidth", "size", (json_int_t)(rate * refill / 1000), "refill_time",
			 (json_int_t)refill);
}

/* ---- host-wide setup ---- */

static json_t *host_state(const struct md_netcfg *cfg)
{
	char b4[64], b6[64];

	/* "rules" is the rule set's version: a new metald-net re-runs setup on its first create */
	return json_pack("{s:i, s:s, s:s, s:i, s:i, s:b, s:s}", "rules", 4, "pool4", md_cidr_str(&cfg->pool4, b4, sizeof(b4)),
			 "pool6", md_cidr_str(&cfg->pool6, b6, sizeof(b6)), "tenant_prefix4", (int)cfg->tprefix4,
			 "tenant_prefix6", (int)cfg->tprefix6, "nat6", cfg->nat6, "host_allow",
			 cfg->host_allow ? cfg->host_allow : "");
}

static int check_overlap(struct ctx *c, const struct md_cidr *pool, const char *var, md_err **err)
{
	char route[128], pb[64];
	int rc = md_nl_route_overlap(c->sk, pool, "mdt", route, sizeof(route), err);

	if (rc < 0)
		return -1;
	if (rc > 0)
		return md_usage(err, "%s %s overlaps this host's route %s: choose a pool no route covers", var,
				md_cidr_str(pool, pb, sizeof(pb)), route);
	return 0;
}

static int host_setup(struct ctx *c, const struct md_netcfg *cfg, md_err **err)
{
	_cleanup_free_ char *rules = NULL, *hpath = NULL;
	_cleanup_json_ json_t *st = host_state(cfg);
	char **up = NULL;

	if (check_overlap(c, &cfg->pool4, "UNKEY_METALD_NETWORK_VM_SUBNET_IPV4", err) < 0 ||
	    check_overlap(c, &cfg->pool6, "UNKEY_METALD_NETWORK_VM_SUBNET_IPV6", err) < 0)
		return -1;
	rules = md_rules_setup(cfg);
	if (nft(c, err) == NULL || md_nft_run(c->nft, rules, err) < 0)
		return md_err_wrap(err, "setup rules");
	/* IPv4 forwarding is a per-interface switch (the ingress interface decides): our bridges get
	 * it when made, the uplinks (default route) here, for replies and published ports. IPv6 has
	 * only the namespace-wide switch. The values found are kept for teardown to put back. */
	if (md_nl_default_links(c->sk, &up, err) < 0)
		return -1;
	{
		_cleanup_free_ char *rpath = md_path_join(c->ip.dir, "sysctl-restore.json");
		_cleanup_json_ json_t *restore = NULL;
		json_t *keys = json_array();
		bool changed = false;
		size_t i;
		json_t *k;

		json_array_append_new(keys, json_string("ipv6/conf/all/forwarding"));
		for (char **l = up; *l; l++) {
			_cleanup_free_ char *key = md_strdup_printf("ipv4/conf/%s/forwarding", *l);
			json_array_append_new(keys, json_string(key));
		}
		md_strv_free(up);
		if (md_json_read(rpath, &restore, NULL) < 0 || !json_is_object(restore)) {
			json_decref(restore);
			restore = json_object();
		}
		json_array_foreach(keys, i, k) {
			const char *key = json_string_value(k);
			char old[32];

			if (json_object_get(restore, key) || md_netns_sysctl_get(key, old, sizeof(old), NULL) < 0)
				continue;
			json_object_set_new(restore, key, json_string(old));
			changed = true;
		}
		if (changed && md_json_write_atomic(rpath, restore, 0600, err) < 0) {
			json_decref(keys);
			return -1;
		}
		json_array_foreach(keys, i, k) {
			if (md_netns_sysctl(json_string_value(k), "1", err) < 0) {
				json_decref(keys);
				return md_err_wrap(err, "setup");
			}
		}
		json_decref(keys);
	}
	hpath = md_path_join(c->ip.dir, "host.json");
	return md_json_write_atomic(hpath, st, 0600, err);
}

static int ensure_setup(struct ctx *c, const struct md_netcfg *cfg, md_err **err)
{
	_cleanup_free_ char *hpath = md_path_join(c->ip.dir, "host.json");
	_cleanup_json_ json_t *have = NULL, *want = host_state(cfg);

	if (md_json_read(hpath, &have, NULL) == 0 && json_equal(have, want))
		return 0;
	return host_setup(c, cfg, err);
}

int md_vmnet_setup(const struct md_paths *p, const struct md_netcfg *cfg, md_err **err)
{
	struct ctx c;
	int rc;

	if (ctx_open(&c, p, true, err) < 0)
		return -1;
	rc = host_setup(&c, cfg, err);
	ctx_close(&c);
	if (rc == 0 && cfg->pool > 0) {
		json_t *o = NULL;

		rc = md_vmnet_pool(p, cfg, "fill", -1, &o, err);
		json_decref(o);
	}
	return rc;
}

/* ---- records ---- */

static int record_write(struct ctx *c, json_t *rec, const char *state, md_err **err)
{
	_cleanup_free_ char *path = vm_path(c, json_string_value(json_object_get(json_object_get(rec, "net"), "id")));

	json_object_set_new(rec, "state", json_string(state));
	/* not fsync'd: what a record names (namespace, links, set elements) is gone after a crash of
	 * the host anyway, and the lease that gc needs to undo a half-made VM is durable */
	if (c->slotrec) {
		_cleanup_free_ char *via = c->slotrec;

		c->slotrec = NULL;
		return md_json_write_via(path, via, rec, 0600, err);
	}
	return md_json_write_replace(path, rec, 0600, err);
}

static int record_read(struct ctx *c, const char *id, json_t **rec, md_err **err)
{
	_cleanup_free_ char *path = vm_path(c, id);

	if (md_json_read(path, rec, err) < 0) {
		if (md_err_exit(*err) == MD_EXIT_NOTFOUND) {
			md_err_free(err);
			return md_notfound(err, "VM `%s`: no network", id);
		}
		return -1;
	}
	if (!json_is_object(json_object_get(*rec, "net"))) {
		json_decref(*rec);
		return md_fail(err, 0, "record `%s`: damaged (no `net` object)", path);
	}
	return 0;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Append s (allocated; the array takes it) to a NULL-terminated array of n strings. */
static void strv_push(char ***v, size_t *n, char *s)
{
	*v = realloc(*v, (*n + 2) * sizeof(char *));
	(*v)[(*n)++] = s;
	(*v)[*n] = NULL;
}

static char **record_ids(struct ctx *c)
{
	_cleanup_closedir_ DIR *d = opendir(c->vmdir);
	struct dirent *de;
	char **v = calloc(1, sizeof(char *));
	size_t n = 0;

	while (d && (de = readdir(d))) {
		size_t len = strlen(de->d_name);

		if (de->d_name[0] == '.' || len < 6 || strcmp(de->d_name + len - 5, ".json"))
			continue;
		strv_push(&v, &n, strndup(de->d_name, len - 5));
	}
	qsort(v, n, sizeof(char *), cmp_str);
	return v;
}

/* ---- published ports: <data>/net/ports.json {"tcp/8080":"vm1"} ---- */

static int ports_update(struct ctx *c, const char *id, json_t *publish, bool add, md_err **err)
{
	_cleanup_free_ char *path = md_path_join(c->ip.dir, "ports.json");
	_cleanup_json_ json_t *ports = NULL;
	bool changed = false;
	const char *key;
	json_t *v, *e;
	void *tmp;
	size_t i;

	if (md_json_read(path, &ports, NULL) < 0 || !json_is_object(ports)) {
		json_decref(ports);
		ports = json_object();
	}
	if (add && json_array_size(publish) == 0)
		return 0;
	if (add) {
		json_array_foreach(publish, i, e) {
			_cleanup_free_ char *k = md_strdup_printf("%s/%lld", json_string_value(json_object_get(e, "protocol")),
								  (long long)json_integer_value(json_object_get(e, "host_port")));
			const char *owner = json_string_value(json_object_get(ports, k));

			if (owner && strcmp(owner, id))
				return md_conflict(err, "--publish: host port %s is already published by VM `%s`", k, owner);
			json_object_set_new(ports, k, json_string(id));
			changed = true;
		}
	} else {
		json_object_foreach_safe(ports, tmp, key, v) {
			if (strcmp(json_string_value(v), id) == 0) {
				json_object_del(ports, key);
				changed = true;
			}
		}
	}
	return changed ? md_json_write_atomic(path, ports, 0600, err) : 0;
}

/* ---- kernel objects ---- */

/* Add set elements. Our tables can be gone while our records remain (a host reboot, a flushed
 * ruleset): restoring them is gc's work (it also rebuilds every VM's elements from the records,
 * which a bare setup here would leave out, failing open), so say so. */
static void log_batch(const struct md_nf_batch *b)
{
	if (md_log_get_level() >= MD_LOG_DEBUG && b->n) {
		_cleanup_free_ char *text = md_nf_batch_text(b);
		md_debug("nftables:\n%s", text);
	}
}

/* Delete set elements; those already gone are no error. */
static int elements_delete(const struct md_nf_batch *b, md_err **err)
{
	log_batch(b);
	return md_nf_batch_commit(b, true, err);
}

static int elements_add(const struct md_nf_batch *b, md_err **err)
{
	md_err *e = NULL;

	log_batch(b);
	if (md_nf_batch_commit(b, false, &e) == 0)
		return 0;
	if (e->status == ENOENT) {
		md_err_free(&e);
		return md_fail(err, 0, "nftables: the metald tables are missing (host rebooted or ruleset flushed?): "
				       "run `metald-net gc` to restore them");
	}
	if (err)
		*err = e;
	else
		md_err_free(&e);
	return -1;
}

static int tenant_bridge(struct ctx *c, const char *tenant, const struct md_lease *l, const struct md_netcfg *cfg,
			 md_err **err)
{
	_cleanup_free_ char *fwd = NULL, *redir = NULL;
	int idx = md_nl_ifindex(c->sk, l->bridge, err);

	if (idx < 0)
		return -1;
	if (idx > 0 && !l->new_tenant)
		return idx;
	if (idx == 0) {
		if (md_nl_bridge_add(c->sk, l->bridge, err) < 0)
			return -1;
		if ((idx = md_nl_ifindex(c->sk, l->bridge, err)) <= 0)
			return idx < 0 ? -1 : md_fail(err, ENODEV, "bridge `%s` vanished", l->bridge);
	}
	fwd = md_strdup_printf("ipv4/conf/%s/forwarding", l->bridge);
	/* no ICMP redirects: a guest reaching a published port of its neighbour through the host's
	 * address would be told to go to the neighbour directly, and the neighbour does not own
	 * that address */
	redir = md_strdup_printf("ipv4/conf/%s/send_redirects", l->bridge);
	if (md_netns_sysctl(fwd, "1", err) < 0 || md_netns_sysctl(redir, "0", err) < 0 ||
	    md_nl_addr_add(c->sk, idx, &l->gw4, cfg->tprefix4, err) < 0 ||
	    md_nl_addr_add(c->sk, idx, &l->gw6, cfg->tprefix6, err) < 0)
		return -1;
	{
		char g4[INET6_ADDRSTRLEN], g6[INET6_ADDRSTRLEN];
		_cleanup_nf_batch_ struct md_nf_batch b = { 0 };

		md_rules_tenant(&b, tenant, l->bridge, md_addr_str(&l->gw4, g4, sizeof(g4)),
				md_addr_str(&l->gw6, g6, sizeof(g6)), true);
		if (elements_add(&b, err) < 0)
			return md_err_wrap(err, "tenant `%s` rules", tenant);
	}
	return idx;
}

/* Remove every object of a VM (whatever of them exists), release its lease and its record. */
static int vm_destroy(struct ctx *c, json_t *rec, md_err **err)
{
	json_t *net = json_object_get(rec, "net");
	const char *id = json_string_value(json_object_get(net, "id"));
	const char *tenant = json_string_value(json_object_get(net, "tenant"));
	const char *link = json_string_value(json_object_get(net, "host_link"));
	_cleanup_free_ char *pin = pin_path(c->p, id), *path = vm_path(c, id);
	_cleanup_nf_batch_ struct md_nf_batch b = { 0 };
	bool gone = false;

	/* The host link first: down and off the tenant bridge, the VM is cut off at once, and a
	 * record whose link is not on its bridge is what gc recognises as half-deleted if we die
	 * below. The link is not deleted here: deleting a veth waits for an RCU barrier (30-40 ms on
	 * this kind of host), and the kernel deletes both ends anyway when the VM's namespace goes
	 * (after the pin is removed and no VMM is left inside), in the background. */
	if (link && md_nl_link_detach(c->sk, link, err) < 0)
		return -1;
	md_rules_vm(&b, net, false);
	if (elements_delete(&b, err) < 0)
		return md_err_wrap(err, "VM rules");
	if (md_netns_remove(pin, err) < 0 ||
	    (json_is_string(json_object_get(rec, "pool_pin")) &&
	     md_netns_remove(json_string_value(json_object_get(rec, "pool_pin")), err) < 0) ||
	    (json_array_size(json_object_get(net, "publish")) > 0 && ports_update(c, id, NULL, false, err) < 0))
		return -1;
	if (tenant && md_ipam_release(&c->ip, tenant, id, &gone, err) < 0)
		return -1;
	if (gone && tenant) {
		char br[IFNAMSIZ];
		_cleanup_nf_batch_ struct md_nf_batch tb = { 0 };

		md_ipam_bridge_name(tenant, br);
		if (md_nl_link_del(c->sk, br, err) < 0)
			return -1;
		md_rules_tenant(&tb, tenant, br, json_string_value(json_object_get(json_object_get(net, "ipv4"), "gateway")),
				json_string_value(json_object_get(json_object_get(net, "ipv6"), "gateway")), false);
		if (elements_delete(&tb, err) < 0)
			return md_err_wrap(err, "tenant `%s` rules", tenant);
	}
	/* no fsync: a record brought back by a host crash names objects that are gone, which gc
	 * removes */
	if (unlink(path) < 0 && errno != ENOENT)
		return md_fail(err, errno, "remove `%s`", path);
	return 0;
}

static json_t *public_object(const struct md_paths *p, const struct md_netcfg *cfg, const struct md_vmnet_req *r,
			     const struct md_lease *l, const char *tap, const char *host_link)
{
	char a4[64], g4[64], a6[64], g6[64], mask[64], macs[32];
	struct md_addr m = { .family = AF_INET };
	uint8_t mac[6];
	uint32_t mk = cfg->tprefix4 ? htonl(~0u << (32 - cfg->tprefix4)) : 0;
	_cleanup_free_ char *pin = pin_path(p, r->id), *args = NULL;

	memcpy(m.b, &mk, 4);
	if (r->have_mac)
		memcpy(mac, r->mac, 6);
	else
		md_vmnet_mac(r->id, mac);
	md_addr_str(&l->addr4, a4, sizeof(a4));
	md_addr_str(&l->gw4, g4, sizeof(g4));
	md_addr_str(&l->addr6, a6, sizeof(a6));
	md_addr_str(&l->gw6, g6, sizeof(g6));
	md_addr_str(&m, mask, sizeof(mask));
	args = md_strdup_printf("ip=%s::%s:%s::eth0:off metald.ipv6=%s/%u metald.gw6=%s", a4, g4, mask, a6, cfg->tprefix6,
				g6);
	return json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:{s:s, s:i, s:s}, s:{s:s, s:i, s:s}, s:O, s:O, "
			 "s:{s:o, s:o}, s:s}",
			 "id", r->id, "tenant", r->tenant, "netns", pin, "tap", tap, "mac", md_mac_str(mac, macs, sizeof(macs)),
			 "host_link", host_link, "ipv4", "address", a4, "prefix", (int)cfg->tprefix4, "gateway", g4, "ipv6",
			 "address", a6, "prefix", (int)cfg->tprefix6, "gateway", g6, "dns", cfg->dns, "publish", r->publish,
			 "rate_limit", "rx", fc_limiter(r->rx_rate, r->rx_burst), "tx", fc_limiter(r->tx_rate, r->tx_burst),
			 "kernel_args", args);
}

/* The VM's own namespace: no IPv6 on its links (they are plumbing, not hosts), the tap the VMM
 * opens, and a bridge that joins the tap to the veth towards the tenant segment. */
static int vm_inside(int hostfd, int nsfd, const char *tap, long uid, long gid, struct nl_sock **vsk, md_err **err)
{
	int rc = -1;

	if (md_netns_enter(nsfd, err) < 0)
		return -1;
	if (md_netns_sysctl("ipv6/conf/default/disable_ipv6", "1", err) == 0 &&
	    md_netns_sysctl("ipv6/conf/all/disable_ipv6", "1", err) == 0 && md_nl_open(vsk, err) == 0 &&
	    md_nl_bridge_add(*vsk, VM_BRIDGE, err) == 0 && md_tap_create(tap, (uid_t)uid, (gid_t)gid, err) == 0)
		rc = 0;
	if (md_netns_enter(hostfd, NULL) < 0) {
		md_fail(err, errno, "cannot return to the host namespace");
		md_die(*err);
	}
	return rc;
}

/* A namespace pinned at `pin` with everything inside (IPv6 off, bridge, tap, the veth's inner end,
 * enslaved and up) and the veth's host end `link`: on the tenant bridge and up when bridx > 0,
 * down and on no bridge when 0 (a pool slot). Returns the namespace's fd. */
static int ns_build(struct ctx *c, const char *pin, const char *tap, long uid, long gid, const char *link, int bridx,
		    md_err **err)
{
	_cleanup_close_ int hostfd = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
	struct nl_sock *vsk = NULL;
	int nsfd, vbr, vtap, vveth;

	if (hostfd < 0)
		return md_fail(err, errno, "open own network namespace");
	nsfd = md_netns_create(pin, err);
	if (nsfd < 0)
		return -1;
	fault("netns");
	if (vm_inside(hostfd, nsfd, tap, uid, gid, &vsk, err) < 0)
		goto fail;
	fault("tap");
	/* a create: a detached host link of an earlier VM with this id may still wait for the kernel
	 * to reap its namespace: it is ours by name and claimed by no record (we hold the global lock).
	 * A fill (bridx 0) holds only pool/lock and has made sure the name is free. */
	if (bridx > 0 && md_nl_ifindex(c->sk, link, NULL) > 0 && md_nl_link_del(c->sk, link, err) < 0)
		goto fail;
	if (md_nl_veth_add(c->sk, link, bridx, VM_VETH, nsfd, err) < 0)
		goto fail;
	fault("veth");
	if ((vbr = md_nl_ifindex(vsk, VM_BRIDGE, err)) <= 0 || (vtap = md_nl_ifindex(vsk, tap, err)) <= 0 ||
	    (vveth = md_nl_ifindex(vsk, VM_VETH, err)) <= 0) {
		if (err && !*err)
			md_fail(err, ENODEV, "link missing in `%s`", pin);
		goto fail;
	}
	if (md_nl_link_up(vsk, vtap, vbr, err) < 0 || md_nl_link_up(vsk, vveth, vbr, err) < 0)
		goto fail;
	md_nl_close(vsk);
	return nsfd;
fail:
	md_nl_close(vsk);
	close(nsfd);
	return -1;
}

static int pool_claim(struct ctx *c, const struct md_vmnet_req *r, json_t *rec, int *idx, md_err **err);

/* Token buckets: rx (to the guest) on the host end's egress, tx (from the guest) on the inner
 * end's. */
static int vm_rates(struct ctx *c, const struct md_vmnet_req *r, const char *pin, const char *link, md_err **err)
{
	_cleanup_close_ int hostfd = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
	_cleanup_close_ int nsfd = -1;
	struct nl_sock *vsk = NULL;
	int hidx, vveth = -1, rc = -1;

	if (hostfd < 0)
		return md_fail(err, errno, "open own network namespace");
	if ((nsfd = md_netns_open(pin, err)) < 0 || md_netns_enter(nsfd, err) < 0)
		return -1;
	if (md_nl_open(&vsk, err) == 0)
		vveth = md_nl_ifindex(vsk, VM_VETH, err);
	if (md_netns_enter(hostfd, NULL) < 0) {
		md_fail(err, errno, "cannot return to the host namespace");
		md_die(*err);
	}
	if (vveth < 0 || (hidx = md_nl_ifindex(c->sk, link, err)) < 0)
		goto out;
	if (vveth == 0 || hidx == 0) {
		md_fail(err, ENODEV, "link `%s` vanished", vveth == 0 ? VM_VETH : link);
		goto out;
	}
	if ((r->rx_rate && md_nl_tbf(c->sk, hidx, r->rx_rate, r->rx_burst, err) < 0) ||
	    (r->tx_rate && md_nl_tbf(vsk, vveth, r->tx_rate, r->tx_burst, err) < 0))
		goto out;
	rc = 0;
out:
	md_nl_close(vsk);
	return rc;
}

static int vm_objects(struct ctx *c, const struct md_vmnet_req *r, int bridx, json_t *rec, md_err **err)
{
	json_t *net = json_object_get(rec, "net");
	const char *pin = json_string_value(json_object_get(net, "netns"));
	const char *tap = json_string_value(json_object_get(net, "tap"));
	_cleanup_nf_batch_ struct md_nf_batch b = { 0 };
	int claimed, nsfd, idx;

	/* a namespace made ahead of time if the pool has one that fits, else a new one */
	if ((claimed = pool_claim(c, r, rec, &idx, err)) < 0)
		return -1;
	if (!claimed) {
		if ((nsfd = ns_build(c, pin, tap, r->uid, r->gid, json_string_value(json_object_get(net, "host_link")),
				     bridx, err)) < 0)
			return -1;
		close(nsfd);
	}
	if ((r->rx_rate || r->tx_rate) &&
	    vm_rates(c, r, pin, json_string_value(json_object_get(net, "host_link")), err) < 0)
		return -1;
	fault("tc");
	if (md_rules_vm(&b, net, true) < 0 || elements_add(&b, err) < 0) {
		if (err && !*err)
			md_fail(err, EINVAL, "VM rules: damaged network object");
		return md_err_wrap(err, "VM rules");
	}
	fault("nft");
	/* a claimed slot's link joins the tenant bridge only now that its set elements guard it */
	if (claimed && md_nl_link_up(c->sk, idx, bridx, err) < 0)
		return -1;
	if (claimed)
		fault("veth");
	return 0;
}

static bool strv_has(char **v, const char *s)
{
	for (; v && *v; v++)
		if (strcmp(*v, s) == 0)
			return true;
	return false;
}

static void note(json_t *out, const char *what, const char *name)
{
	json_array_append_new(out, json_pack("{s:s, s:s}", "removed", what, "name", name));
}

/* ---- the pool: VM namespaces made ahead of time ----
 *
 * A slot is what ns_build makes for a VM, under names of its own: the pin <netns dir>/mdpool-<hex>
 * (12 hex digits, random), the host link mdp<hex>, down and on no bridge, and, made last, the empty
 * file <data>/net/pool/<hex>.<tap>. Fillers hold pool/lock (never the global lock, so creates go
 * on while the pool fills). create claims a slot under the global lock by moving its file first
 * (to <data>/net/vms/.<id>.slot, which becomes the VM's record); then it gives the tap to the VM's
 * uid/gid, pins the namespace at the VM's name too (the slot's pin is unmounted later:
 * pins_sweep, vm_destroy, gc), adds the VM's set elements and only then puts the host link, which
 * keeps its mdp name, on the tenant bridge. gc, teardown and drain
 * hold both locks (global first) and leave a `stop` file that makes a running fill end early.
 * Any slot whose file or objects are incomplete is half-made (an interrupted fill or claim) and
 * gc removes what is left of it. */

#define POOL_PIN "mdpool-"
#define POOL_LINK "mdp"

static char *pool_dir(const struct md_paths *p)
{
	return md_strdup_printf("%s/net/pool", p->data_dir);
}

static char *pool_pin(const struct md_paths *p, const char *hex)
{
	return md_strdup_printf("%s/" POOL_PIN "%s", p->netns_dir, hex);
}

static void pool_link(const char *hex, char out[IFNAMSIZ])
{
	snprintf(out, IFNAMSIZ, POOL_LINK "%.12s", hex);
}

static bool is_hex12(const char *s)
{
	for (int i = 0; i < 12; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	return true;
}

/* A slot file's name, split: 12 hex digits, '.', the tap name. */
static const char *slot_tap(const char *name)
{
	return strlen(name) > 13 && is_hex12(name) && name[12] == '.' ? name + 13 : NULL;
}

/* Remove whatever exists of a slot (file, pin, host link; the namespace goes with its pin). */
static int slot_remove(struct ctx *c, const char *dir, const char *name, md_err **err)
{
	char hex[13], link[IFNAMSIZ];
	_cleanup_free_ char *pin = NULL, *file = NULL;

	snprintf(hex, sizeof(hex), "%.12s", name);
	pin = pool_pin(c->p, hex);
	pool_link(hex, link);
	if (md_nl_link_del(c->sk, link, err) < 0 || md_netns_remove(pin, err) < 0)
		return -1;
	if (strlen(name) > 12) {
		file = md_path_join(dir, name);
		if (unlink(file) < 0 && errno != ENOENT)
			return md_fail(err, errno, "remove `%s`", file);
	}
	return 0;
}

/* Take a slot: its file is moved to *to, or unlinked (and *to dropped) when it cannot be (on
 * another file system, say); false when another create took it first. */
static bool claim(const char *file, char **to)
{
	if (*to) {
		if (rename(file, *to) == 0)
			return true;
		if (errno == ENOENT)
			return false;
		(void)unlink(*to); /* an earlier slot's, when that one's tap was gone */
		free(*to);
		*to = NULL;
	}
	return unlink(file) == 0;
}

/* Take a pool slot whose tap has the VM's tap name: move its file to c->slotrec (the claim: from
 * then on the slot is this VM's, or what is left of it is gc's; the record is written into that
 * file), give its tap to the VM's uid/gid, pin its namespace at the VM's name; its host link
 * becomes the VM's (not renamed: a rename costs more than the rest of the claim) and *idx its
 * ifindex. The slot's own pin is not removed here: an unmount waits for an RCU grace period, so
 * the next fill, the VM's delete (the record keeps it as `pool_pin`) or gc, whichever comes
 * first, removes it. 1: claimed, 0: no slot fits (the caller builds a namespace), -1: failed
 * (what is left of the slot is removed). */
static int pool_claim(struct ctx *c, const struct md_vmnet_req *r, json_t *rec, int *idx, md_err **err)
{
	json_t *net = json_object_get(rec, "net");
	const char *tap = json_string_value(json_object_get(net, "tap"));
	const char *pin = json_string_value(json_object_get(net, "netns"));
	_cleanup_free_ char *dir = pool_dir(c->p), *ppin = NULL;
	_cleanup_closedir_ DIR *d = opendir(dir);
	_cleanup_close_ int nsfd = -1, hostfd = -1;
	char hex[13], link[IFNAMSIZ];
	struct dirent *de;
	int rc;

	/* the slot's file is claimed by moving it where the record will be written into it: one
	 * inode kept instead of one freed and one made (ext4 without a journal skips the inodes
	 * freed in the last minute when it makes one) */
	free(c->slotrec);
	c->slotrec = md_strdup_printf("%s/.%s.slot", c->vmdir, json_string_value(json_object_get(net, "id")));
	for (;;) {
		*idx = 0;
		while (d && (de = readdir(d))) {
			const char *st = slot_tap(de->d_name);
			_cleanup_free_ char *file = NULL;

			if (st == NULL || strcmp(st, tap))
				continue;
			snprintf(hex, sizeof(hex), "%.12s", de->d_name);
			file = md_path_join(dir, de->d_name);
			free(ppin);
			ppin = pool_pin(c->p, hex);
			pool_link(hex, link);
			/* the namespace is held open before the file goes: a filler that then sweeps
			 * the pins of claimed slots does not take it away */
			nsfd = md_netns_open(ppin, NULL);
			*idx = nsfd < 0 ? 0 : md_nl_ifindex(c->sk, link, NULL);
			if (*idx > 0 && claim(file, &c->slotrec))
				break;
			if (nsfd >= 0)
				close(steal_fd(&nsfd));
			/* half gone (a piece removed by hand): clear it, try the next; a netlink error
			 * (< 0) says nothing about the slot, which stays */
			if (*idx == 0 && unlink(file) == 0)
				(void)slot_remove(c, dir, hex, NULL);
			*idx = 0;
		}
		if (*idx <= 0) {
			if (c->slotrec)
				(void)unlink(c->slotrec); /* an earlier slot's, when that one's tap was gone */
			free(c->slotrec);
			c->slotrec = NULL;
			return 0;
		}
		md_debug("create: claimed pool slot %s", hex);
		fault("claim");
		if (r->uid < 0 && r->gid < 0)
			break;
		if (hostfd < 0 && (hostfd = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC)) < 0) {
			md_fail(err, errno, "open own network namespace");
			goto fail;
		}
		if (md_netns_enter(nsfd, err) < 0)
			goto fail;
		rc = md_tap_own(tap, (uid_t)r->uid, (gid_t)r->gid, err);
		if (md_netns_enter(hostfd, NULL) < 0) {
			md_fail(err, errno, "cannot return to the host namespace");
			md_die(*err);
		}
		if (rc == 0)
			break;
		if (md_err_exit(*err) != MD_EXIT_NOTFOUND)
			goto fail;
		/* its tap is gone: clear the slot, try the next */
		md_debug("pool slot %s: %s", hex, (*err)->msg);
		md_err_free(err);
		close(steal_fd(&nsfd));
		(void)slot_remove(c, dir, hex, NULL);
	}
	fault("tap");
	json_object_set_new(net, "host_link", json_string(link));
	json_object_set_new(rec, "pool_pin", json_string(ppin));
	if (md_netns_bind(nsfd, pin, err) < 0)
		goto fail;
	fault("pin");
	return 1;
fail:
	/* the VM's undo removes its pin and detaches its link; what still has the slot's names goes */
	(void)slot_remove(c, dir, hex, NULL);
	return md_err_wrap(err, "pool slot %s", hex);
}

/* Slot file names (<hex>.<tap>), or with all=false only those of `tap`. */
static char **pool_slots(const char *dir, const char *tap, bool all)
{
	_cleanup_closedir_ DIR *d = opendir(dir);
	struct dirent *de;
	char **v = calloc(1, sizeof(char *));
	size_t n = 0;

	while (d && (de = readdir(d))) {
		const char *t = slot_tap(de->d_name);

		if (t == NULL || (!all && strcmp(t, tap)))
			continue;
		strv_push(&v, &n, strdup(de->d_name));
	}
	qsort(v, n, sizeof(char *), cmp_str);
	return v;
}

static size_t strv_len(char **v)
{
	size_t n = 0;

	while (v && v[n])
		n++;
	return n;
}

/* Open a context without the global lock (fillers do not stop creates), holding pool/lock. */
static int pool_open(struct ctx *c, const struct md_paths *p, uint64_t wait_ns, int *lockfd, md_err **err)
{
	_cleanup_free_ char *dir = pool_dir(p), *lock = NULL;

	memset(c, 0, sizeof(*c));
	c->ip.lockfd = -1;
	c->p = p;
	if (md_mkdir_p(dir, 0700, err) < 0 || md_mkdir_p(p->netns_dir, 0755, err) < 0)
		return -1;
	lock = md_path_join(dir, "lock");
	if ((*lockfd = md_lock(lock, true, wait_ns, err)) < 0)
		return -1;
	if (md_nl_open(&c->sk, err) < 0) {
		close(steal_fd(lockfd));
		return -1;
	}
	return 0;
}

/* Remove the pins of slots that have no file: claimed ones (pool_claim leaves the unmount to
 * us) and half-made ones. Only pins: a claimed slot's link is a VM's. Under pool/lock only, so
 * a claim may be under way: it holds its namespace open before it removes the file. */
static int pins_sweep(struct ctx *c, const char *dir, md_err **err)
{
	char **files = pool_slots(dir, NULL, true);
	_cleanup_closedir_ DIR *d = opendir(c->p->netns_dir);
	struct dirent *de;
	int rc = 0;

	while (rc == 0 && d && (de = readdir(d))) {
		const char *hex = de->d_name + strlen(POOL_PIN);
		bool held = false;

		if (strncmp(de->d_name, POOL_PIN, strlen(POOL_PIN)) || strlen(hex) != 12 || !is_hex12(hex))
			continue;
		for (char **f = files; *f && !held; f++)
			held = strncmp(*f, hex, 12) == 0;
		if (!held) {
			_cleanup_free_ char *pin = pool_pin(c->p, hex);
			rc = md_netns_remove(pin, err);
		}
	}
	md_strv_free(files);
	return rc;
}

/* gc, teardown and drain leave pool/stop while they wait for pool/lock: a fill in progress ends
 * after the slot it is making instead of holding them (and every create behind them) up. */
static char *stop_path(const struct md_paths *p)
{
	return md_strdup_printf("%s/net/pool/stop", p->data_dir);
}

static bool stop_wanted(const char *stop)
{
	struct stat st;

	/* one left by a gc that died while it waited is old: ignored */
	return stat(stop, &st) == 0 && (uint64_t)st.st_mtime + 60 > md_now_wall_ns() / 1000000000ULL;
}

/* Take pool/lock for gc, teardown or drain (the global lock already held). */
static int pool_lock_sweep(const struct md_paths *p, md_err **err)
{
	_cleanup_free_ char *dir = pool_dir(p), *lock = md_path_join(dir, "lock"), *stop = stop_path(p);
	int fd;

	if (md_mkdir_p(dir, 0700, err) < 0)
		return -1;
	if ((fd = open(stop, O_WRONLY | O_CREAT | O_CLOEXEC, 0600)) >= 0)
		close(fd);
	fd = md_lock(lock, true, 30ULL * 1000000000ULL, err);
	unlink(stop);
	return fd;
}

/* Make slots until `want` of them are ready (counted again before each, as creates claim slots
 * meanwhile); *ready: how many are. */
static int pool_fill(struct ctx *c, const struct md_netcfg *cfg, unsigned want, unsigned *made, unsigned *ready,
		     md_err **err)
{
	_cleanup_free_ char *dir = pool_dir(c->p), *stop = stop_path(c->p);

	*made = 0;
	*ready = 0;
	if (pins_sweep(c, dir, err) < 0)
		return md_err_wrap(err, "pool: remove the pins of claimed slots");
	fault_verb = "pool";
	for (;;) {
		char hex[13], link[IFNAMSIZ];
		uint8_t rnd[6];
		_cleanup_free_ char *pin = NULL, *file = NULL;
		char **have = pool_slots(dir, cfg->tap, false);
		int nsfd, fd, taken;

		*ready = (unsigned)strv_len(have);
		md_strv_free(have);
		if (*ready >= want || stop_wanted(stop))
			break;
		if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd)) {
			fault_verb = "create";
			return md_fail(err, errno, "pool: getrandom");
		}
		for (int i = 0; i < 6; i++)
			snprintf(hex + 2 * i, 3, "%02x", rnd[i]);
		pin = pool_pin(c->p, hex);
		pool_link(hex, link);
		/* a name in use (by a slot, or by a VM that took one) is drawn again, never touched */
		if ((taken = md_nl_ifindex(c->sk, link, err)) < 0) {
			fault_verb = "create";
			return -1;
		}
		if (taken > 0 || access(pin, F_OK) == 0)
			continue;
		create_t0 = md_now_mono_ns();
		if ((nsfd = ns_build(c, pin, cfg->tap, -1, -1, link, 0, err)) < 0)
			goto fail;
		close(nsfd);
		file = md_strdup_printf("%s/%s.%s", dir, hex, cfg->tap);
		if ((fd = open(file, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600)) < 0) {
			md_fail(err, errno, "pool slot `%s`", file);
			goto fail;
		}
		close(fd);
		fault("ready");
		(*made)++;
		continue;
fail:
		(void)slot_remove(c, dir, hex, NULL);
		fault_verb = "create";
		return md_err_wrap(err, "pool: make slot %s", hex);
	}
	fault_verb = "create";
	return 0;
}

/* Fill to `want` holding pool/lock (*lockfd), let go, count again, and go on while short and
 * nobody else holds the lock: a create's claim comes before its refill tries the lock, so a
 * refill that gave way to this filler is made up here. A background refill (refill) stops when
 * setup is gone (teardown removes host.json under pool/lock). *lockfd is closed on return. */
static int fill_rounds(struct ctx *c, const struct md_netcfg *cfg, unsigned want, bool refill, int *lockfd,
		       unsigned *made, unsigned *ready, md_err **err)
{
	_cleanup_free_ char *dir = pool_dir(c->p), *lock = md_path_join(dir, "lock"), *ef = md_path_join(dir, "error");
	_cleanup_free_ char *host = md_strdup_printf("%s/net/host.json", c->p->data_dir);
	unsigned m;
	int rc = 0;

	*made = 0;
	for (int round = 0; round < 16; round++) {
		char **have;

		if (refill && access(host, F_OK) < 0)
			break;
		if ((rc = pool_fill(c, cfg, want, &m, ready, err)) < 0)
			break;
		*made += m;
		unlink(ef);
		close(steal_fd(lockfd));
		have = pool_slots(dir, cfg->tap, false);
		*ready = (unsigned)strv_len(have);
		md_strv_free(have);
		if (*ready >= want || (*lockfd = md_lock(lock, true, 0, NULL)) < 0)
			break;
	}
	if (*lockfd >= 0)
		close(steal_fd(lockfd));
	return rc;
}

/* Remove slots: all of them (drain), or only the half-made ones and those of another tap name (gc),
 * and every pool pin and link that neither a slot nor a VM (`vm_links`, the host links records
 * name) holds. Called with both locks held. */
static int pool_sweep(struct ctx *c, const struct md_netcfg *cfg, bool all, char **vm_links, json_t *done,
		      md_err **err)
{
	_cleanup_free_ char *dir = pool_dir(c->p);
	char **files = pool_slots(dir, NULL, true), **keep = calloc(1, sizeof(char *)), **links = NULL;
	size_t nk = 0;
	_cleanup_closedir_ DIR *d = NULL;
	struct dirent *de;
	int rc = -1;

	for (char **f = files; *f; f++) {
		char hex[13], link[IFNAMSIZ];
		_cleanup_free_ char *pin = NULL;
		int master = -1;
		bool up = true, ok;

		snprintf(hex, sizeof(hex), "%.12s", *f);
		pin = pool_pin(c->p, hex);
		pool_link(hex, link);
		ok = !all && cfg && !strcmp(slot_tap(*f), cfg->tap) && md_netns_pinned(pin) &&
		     md_nl_link_state(c->sk, link, &master, &up, NULL) > 0 && master == 0 && !up;
		if (ok) {
			strv_push(&keep, &nk, strdup(hex));
			continue;
		}
		if (slot_remove(c, dir, *f, err) < 0)
			goto out;
		if (done)
			note(done, "pool slot", hex);
	}
	/* pins and links of slots whose file was never made (an interrupted fill) or is gone (an
	 * interrupted claim) */
	d = opendir(c->p->netns_dir);
	while (d && (de = readdir(d))) {
		const char *hex = de->d_name + strlen(POOL_PIN);

		if (strncmp(de->d_name, POOL_PIN, strlen(POOL_PIN)) || strlen(hex) != 12 || !is_hex12(hex) ||
		    strv_has(keep, hex))
			continue;
		if (slot_remove(c, dir, hex, err) < 0)
			goto out;
		if (done)
			note(done, "pool slot", hex);
	}
	if (md_nl_links(c->sk, POOL_LINK, &links, err) < 0)
		goto out;
	for (char **l = links; *l; l++) {
		const char *hex = *l + strlen(POOL_LINK);

		if (strlen(hex) != 12 || !is_hex12(hex) || strv_has(keep, hex) || strv_has(vm_links, *l))
			continue;
		if (md_nl_link_del(c->sk, *l, err) < 0)
			goto out;
		if (done)
			note(done, "pool link", *l);
	}
	rc = 0;
out:
	md_strv_free(files);
	md_strv_free(keep);
	md_strv_free(links);
	return rc;
}

/* Top the pool up in the background after a create: a child in its own session, holding none of
 * the caller's files, that gives way at once if another filler runs (fill_rounds makes that up).
 * Its last error is kept in pool/error for `metald-net pool`. */
static void pool_refill_spawn(const struct md_paths *p, const struct md_netcfg *cfg)
{
	pid_t pid = fork();

	if (pid != 0)
		return; /* the parent (or fork failed: the next create or `pool fill` tops up) */
	{
		struct ctx c;
		md_err *e = NULL;
		unsigned made, ready;
		int lockfd = -1, nul = open("/dev/null", O_RDWR | O_CLOEXEC);
		_cleanup_free_ char *ef = md_strdup_printf("%s/net/pool/error", p->data_dir);

		setsid();
		for (int fd = 0; fd < 3; fd++) {
			if (nul < 0 || dup2(nul, fd) < 0)
				close(fd);
		}
		if (close_range(3, ~0U, 0) < 0) {
			for (int fd = 3; fd < 1024; fd++)
				close(fd);
		}
		if (chdir("/") == 0 && pool_open(&c, p, 0, &lockfd, &e) == 0 &&
		    fill_rounds(&c, cfg, cfg->pool, true, &lockfd, &made, &ready, &e) == 0)
			_exit(0);
		/* a busy lock is no error: another filler has it, and fills */
		if (e && md_err_exit(e) != MD_EXIT_CONFLICT) {
			_cleanup_free_ char *msg = md_strdup_printf("%s\n", e->msg);
			(void)md_write_atomic(ef, msg, strlen(msg), 0600, NULL);
			_exit(1);
		}
		_exit(0);
	}
}

int md_vmnet_pool(const struct md_paths *p, const struct md_netcfg *cfg, const char *op, long count, json_t **out,
		  md_err **err)
{
	struct ctx c;
	_cleanup_free_ char *dir = pool_dir(p), *ef = NULL;
	int lockfd = -1, rc = -1;
	unsigned made = 0, ready = 0;
	json_t *done = NULL;

	if (!strcmp(op, "show")) {
		char **files = pool_slots(dir, NULL, true);
		json_t *slots = json_array();
		size_t nready = 0;
		_cleanup_free_ char *msg = NULL;

		for (char **f = files; *f; f++) {
			char hex[13], link[IFNAMSIZ];
			_cleanup_free_ char *pin = NULL;

			snprintf(hex, sizeof(hex), "%.12s", *f);
			pin = pool_pin(p, hex);
			pool_link(hex, link);
			nready += !strcmp(slot_tap(*f), cfg->tap);
			json_array_append_new(slots, json_pack("{s:s, s:s, s:s, s:s}", "slot", hex, "tap", slot_tap(*f),
							       "netns", pin, "host_link", link));
		}
		md_strv_free(files);
		ef = md_path_join(dir, "error");
		if (md_read_file(ef, &msg, NULL, NULL) == 0)
			msg[strcspn(msg, "\n")] = 0;
		*out = json_pack("{s:i, s:s, s:i, s:o, s:s?}", "size", (int)cfg->pool, "tap", cfg->tap, "ready", (int)nready,
				 "slots", slots, "refill_error", msg);
		return 0;
	}
	if (!strcmp(op, "fill")) {
		unsigned want = count >= 0 ? (unsigned)count : cfg->pool;

		if (count < 0 && cfg->pool == 0)
			return md_usage(err, "pool fill: how many? (--count N, or set UNKEY_METALD_NETWORK_POOL)");
		if (pool_open(&c, p, 30ULL * 1000000000ULL, &lockfd, err) < 0)
			return -1;
		rc = fill_rounds(&c, cfg, want, false, &lockfd, &made, &ready, err);
		if (rc == 0)
			*out = json_pack("{s:i, s:i}", "made", (int)made, "ready", (int)ready);
	} else { /* drain: both locks, as gc, so no create is between claim and record */
		char **ids, **links = calloc(1, sizeof(char *));
		size_t n = 0;

		if (ctx_open(&c, p, true, err) < 0)
			return -1;
		if ((lockfd = pool_lock_sweep(p, err)) < 0) {
			md_strv_free(links);
			ctx_close(&c);
			return -1;
		}
		ids = record_ids(&c);
		for (char **i = ids; *i; i++) {
			_cleanup_json_ json_t *rec = NULL;
			const char *l;

			if (record_read(&c, *i, &rec, NULL) == 0 &&
			    (l = json_string_value(json_object_get(json_object_get(rec, "net"), "host_link")))) {
				strv_push(&links, &n, strdup(l));
			}
		}
		md_strv_free(ids);
		done = json_array();
		rc = pool_sweep(&c, NULL, true, links, done, err);
		if (rc == 0)
			*out = json_pack("{s:i}", "removed", (int)json_array_size(done));
		json_decref(done);
		md_strv_free(links);
	}
	close(lockfd);
	ctx_close(&c);
	return rc;
}

int md_vmnet_create(const struct md_paths *p, const struct md_netcfg *cfg, const struct md_vmnet_req *r,
		    json_t **out, md_err **err)
{
	struct ctx c;
	struct md_lease l;
	_cleanup_json_ json_t *rec = NULL, *existing = NULL;
	_cleanup_free_ char *path = NULL;
	char link[IFNAMSIZ];
	struct md_vmnet_req req = *r;
	int bridx;

	create_t0 = md_now_mono_ns();
	if (req.tap == NULL)
		req.tap = cfg->tap;
	if (req.uid < 0)
		req.uid = cfg->uid;
	if (req.gid < 0)
		req.gid = cfg->gid;
	if (ctx_open(&c, p, true, err) < 0)
		return -1;
	path = vm_path(&c, r->id);
	if (md_json_read(path, &existing, NULL) == 0) {
		const char *st = json_string_value(json_object_get(existing, "state"));
		md_conflict(err, "VM `%s`: network exists%s", r->id,
			    st && strcmp(st, "ready") ? " (an interrupted create: run `metald-net gc`)" : "");
		goto fail;
	}
	if (ensure_setup(&c, cfg, err) < 0)
		goto fail;
	fault("setup");
	/* the lease's flush overlaps the kernel work below; it ends before the record is written */
	c.ip.defer_sync = true;
	if (md_ipam_lease(&c.ip, cfg, r->tenant, r->id, r->have4 ? &r->want4 : NULL, r->have6 ? &r->want6 : NULL, &l,
			  err) < 0)
		goto fail;
	fault("lease");
	host_link_name(r->id, link);
	rec = json_pack("{s:s, s:o, s:s}", "state", "creating", "net", public_object(p, cfg, &req, &l, req.tap, link),
			"bridge", l.bridge);
	json_object_set_new(rec, "uid", json_integer(req.uid));
	json_object_set_new(rec, "gid", json_integer(req.gid));
	/* No record is written yet: the lease, on disk now, names the VM id, from which every object
	 * below derives its name (pin, host link, set element comments), so gc can find and undo an
	 * interrupted create from the lease alone. The record is written once, when all exists. */
	if (ports_update(&c, r->id, req.publish, true, err) < 0)
		goto undo;
	fault("ports");
	if ((bridx = tenant_bridge(&c, r->tenant, &l, cfg, err)) < 0)
		goto undo;
	fault("bridge");
	if (vm_objects(&c, &req, bridx, rec, err) < 0)
		goto undo;
	if (md_ipam_sync_wait(&c.ip, err) < 0)
		goto undo;
	fault("sync");
	if (record_write(&c, rec, "ready", err) < 0)
		goto undo;
	fault("ready");
	*out = json_incref(json_object_get(rec, "net"));
	ctx_close(&c);
	if (cfg->pool > 0)
		pool_refill_spawn(p, cfg);
	return 0;
undo:
	md_err_wrap(err, "create `%s`", r->id);
	{
		md_err *uerr = NULL;
		if (vm_destroy(&c, rec, &uerr) < 0) {
			md_err_wrap(&uerr, "undo");
			md_warn("%s (run `metald-net gc`)", uerr->msg);
			md_err_free(&uerr);
		}
	}
	ctx_close(&c);
	return -1;
fail:
	ctx_close(&c);
	return -1;
}

int md_vmnet_delete(const struct md_paths *p, const char *id, bool *existed, md_err **err)
{
	struct ctx c;
	_cleanup_json_ json_t *rec = NULL;
	int rc;

	*existed = false;
	if (ctx_open(&c, p, true, err) < 0)
		return -1;
	if (record_read(&c, id, &rec, err) < 0) {
		ctx_close(&c);
		if (md_err_exit(*err) != MD_EXIT_NOTFOUND)
			return -1;
		md_err_free(err);
		return 0;
	}
	*existed = true;
	rc = vm_destroy(&c, rec, err);
	if (rc < 0)
		md_err_wrap(err, "delete `%s`", id);
	ctx_close(&c);
	return rc;
}

int md_vmnet_show(const struct md_paths *p, const char *id, json_t **out, md_err **err)
{
	struct ctx c;
	json_t *rec = NULL;

	if (ctx_open(&c, p, false, err) < 0)
		return -1;
	if (record_read(&c, id, &rec, err) < 0) {
		ctx_close(&c);
		return -1;
	}
	ctx_close(&c);
	/* exactly what create printed: a record exists only for a finished create */
	*out = json_incref(json_object_get(rec, "net"));
	json_decref(rec);
	return 0;
}

int md_vmnet_list(const struct md_paths *p, const char *tenant, json_t **out, md_err **err)
{
	struct ctx c;
	char **ids;
	json_t *arr = json_array();

	if (ctx_open(&c, p, false, err) < 0) {
		json_decref(arr);
		return -1;
	}
	ids = record_ids(&c);
	for (char **i = ids; *i; i++) {
		_cleanup_json_ json_t *rec = NULL;
		json_t *net;

		if (record_read(&c, *i, &rec, NULL) < 0)
			continue;
		net = json_object_get(rec, "net");
		if (tenant && strcmp(json_string_value(json_object_get(net, "tenant")), tenant))
			continue;
		json_array_append(arr, net);
	}
	md_strv_free(ids);
	ctx_close(&c);
	*out = arr;
	return 0;
}

int md_vmnet_stats(const struct md_paths *p, const char *id, json_t **out, md_err **err)
{
	struct ctx c;
	_cleanup_json_ json_t *rec = NULL;
	struct md_link_stats st;
	const char *link;

	if (ctx_open(&c, p, true, err) < 0)
		return -1;
	if (record_read(&c, id, &rec, err) < 0)
		goto fail;
	link = json_string_value(json_object_get(json_object_get(rec, "net"), "host_link"));
	if (md_nl_link_stats(c.sk, link, &st, err) < 0)
		goto fail;
	ctx_close(&c);
	/* from the VM's side: what the host link sends, the VM receives */
	*out = json_pack("{s:s, s:s, s:I, s:I, s:I, s:I, s:I, s:I}", "id", id, "link", link, "rx_bytes",
			 (json_int_t)st.tx_bytes, "rx_packets", (json_int_t)st.tx_packets, "rx_dropped",
			 (json_int_t)st.tx_dropped, "tx_bytes", (json_int_t)st.rx_bytes, "tx_packets",
			 (json_int_t)st.rx_packets, "tx_dropped", (json_int_t)st.rx_dropped);
	return 0;
fail:
	ctx_close(&c);
	return -1;
}

int md_vmnet_gc(const struct md_paths *p, const struct md_netcfg *cfg, json_t **out, md_err **err)
{
	struct ctx c;
	char **ids = NULL, **tenants = NULL, **links = NULL, **keep = calloc(1, sizeof(char *));
	char **keep_links = calloc(1, sizeof(char *)), **keep_br = calloc(1, sizeof(char *));
	size_t nk = 0, nl = 0, nb = 0;
	json_t *done = json_array(), *records = json_array();
	_cleanup_closedir_ DIR *d = NULL;
	struct dirent *de;
	int rc = -1;

	if (ctx_open(&c, p, true, err) < 0)
		goto out_free;
	/* 1. records: interrupted creates are undone, finished VMs whose objects are gone removed */
	ids = record_ids(&c);
	for (char **i = ids; *i; i++) {
		_cleanup_json_ json_t *rec = NULL;
		json_t *net;
		const char *st, *link;
		_cleanup_free_ char *pin = pin_path(p, *i);
		int idx;

		if (record_read(&c, *i, &rec, NULL) < 0)
			continue;
		net = json_object_get(rec, "net");
		st = json_string_value(json_object_get(rec, "state"));
		link = json_string_value(json_object_get(net, "host_link"));
		{
			int master = 0;
			bool up = false;

			idx = link ? md_nl_link_state(c.sk, link, &master, &up, NULL) : 0;
			if (master <= 0 || !up)
				idx = 0; /* detached: a delete was interrupted */
		}
		if (st && strcmp(st, "ready") == 0 && md_netns_pinned(pin) && idx > 0) {
			strv_push(&keep, &nk, strdup(*i));
			strv_push(&keep_links, &nl, strdup(link));
			json_array_append(records, rec);
			continue;
		}
		if (vm_destroy(&c, rec, err) < 0)
			goto out;
		note(done, st && strcmp(st, "ready") == 0 ? "vm (objects gone)" : "vm (interrupted create)", *i);
	}
	/* files a create did not get to rename into place (it was killed; creates hold the lock that
	 * gc holds now) */
	if ((d = opendir(c.vmdir))) {
		while ((de = readdir(d))) {
			size_t len = strlen(de->d_name);

			if ((de->d_name[0] == '.' && len > 6 && strcmp(de->d_name + len - 5, ".slot") == 0) ||
			    strstr(de->d_name, ".json.tmp.")) {
				if (unlinkat(dirfd(d), de->d_name, 0) < 0 && errno != ENOENT) {
					md_fail(err, errno, "remove `%s/%s`", c.vmdir, de->d_name);
					goto out;
				}
				note(done, "unfinished record file", de->d_name);
			}
		}
		closedir(d);
		d = NULL;
	}
	/* 2. leases nobody holds; tenants left empty */
	if (md_ipam_tenants(&c.ip, &tenants, err) < 0)
		goto out;
	for (char **t = tenants; *t; t++) {
		_cleanup_json_ json_t *trec = NULL;
		const char *vm;
		json_t *l;
		void *tmp;
		bool gone = false;
		char br[IFNAMSIZ];

		if (md_ipam_tenant(&c.ip, *t, &trec, NULL) < 0)
			continue;
		json_object_foreach_safe(json_object_get(trec, "leases"), tmp, vm, l) {
			if (strv_has(keep, vm))
				continue;
			if (md_ipam_release(&c.ip, *t, vm, &gone, err) < 0)
				goto out;
			note(done, "lease", vm);
		}
		if (json_object_size(json_object_get(trec, "leases")) == 0 && !gone &&
		    md_ipam_release(&c.ip, *t, "", &gone, err) < 0)
			goto out;
		md_ipam_bridge_name(*t, br);
		if (!gone)
			strv_push(&keep_br, &nb, strdup(br));
	}
	{
		char **swept = NULL;

		if (md_ipam_sweep(&c.ip, &swept, err) < 0)
			goto out;
		for (char **j = swept; *j; j++)
			note(done, "lease journal", *j);
		md_strv_free(swept);
	}
	/* 3. links and pins that no record claims */
	if (md_nl_links(c.sk, "mdv", &links, err) < 0)
		goto out;
	for (char **l = links; *l; l++) {
		if (strlen(*l) == 15 && !strv_has(keep_links, *l) && md_nl_link_del(c.sk, *l, err) >= 0)
			note(done, "link", *l);
	}
	md_strv_free(links);
	links = NULL;
	if (md_nl_links(c.sk, "mdt", &links, err) < 0)
		goto out;
	for (char **l = links; *l; l++) {
		if (strlen(*l) == 15 && !strv_has(keep_br, *l) && md_nl_link_del(c.sk, *l, err) >= 0)
			note(done, "bridge", *l);
	}
	d = opendir(p->netns_dir);
	while (d && (de = readdir(d))) {
		_cleanup_free_ char *pin = NULL;

		if (strncmp(de->d_name, "metald-", 7) || strv_has(keep, de->d_name + 7))
			continue;
		pin = md_path_join(p->netns_dir, de->d_name);
		if (md_netns_remove(pin, err) < 0)
			goto out;
		note(done, "netns", pin);
	}
	/* 3b. the pool's half-made slots (and those of another tap name) */
	{
		int plock, prc;

		if ((plock = pool_lock_sweep(p, err)) < 0)
			goto out;
		prc = pool_sweep(&c, cfg, false, keep_links, done, err);
		close(plock);
		if (prc < 0)
			goto out;
	}
	/* 4. published ports of VMs that are gone */
	{
		_cleanup_free_ char *pp = md_path_join(c.ip.dir, "ports.json");
		_cleanup_json_ json_t *ports = NULL;
		const char *k;
		json_t *v;
		void *tmp;
		bool changed = false;

		if (md_json_read(pp, &ports, NULL) == 0 && json_is_object(ports)) {
			json_object_foreach_safe(ports, tmp, k, v) {
				if (!strv_has(keep, json_string_value(v))) {
					json_object_del(ports, k);
					changed = true;
				}
			}
			if (changed && md_json_write_atomic(pp, ports, 0600, err) < 0)
				goto out;
		}
	}
	/* 5. set elements: rebuilt from the records in one transaction, so nothing stale survives and
	 * nothing a record claims is missing */
	{
		size_t i;
		json_t *rec;
		_cleanup_json_ json_t *tables = NULL;

		if (nft(&c, err) == NULL || md_nft_list_json(c.nft, "list tables", &tables, err) < 0)
			goto out;
		{
			int ours = 0;

			json_array_foreach(tables, i, rec) { /* [0] is metainfo */
				json_t *t = json_object_get(rec, "table");
				ours += t && json_string_value(json_object_get(t, "name")) &&
					strcmp(json_string_value(json_object_get(t, "name")), "metald") == 0;
			}
			/* VMs exist but our tables are gone (flushed by someone): put them back */
			if (ours < 2 && json_array_size(records) > 0) {
				if (host_setup(&c, cfg, err) < 0)
					goto out;
				note(done, "missing rules (restored)", "metald");
				ours = 2;
			}
			if (ours == 2) {
				_cleanup_nf_batch_ struct md_nf_batch sync = { 0 };

				md_rules_flush_sets(&sync);
				for (char **t = tenants; *t; t++) {
					char br[IFNAMSIZ];
					md_ipam_bridge_name(*t, br);
					_cleanup_json_ json_t *trec = NULL;
					if (strv_has(keep_br, br) && md_ipam_tenant(&c.ip, *t, &trec, NULL) == 0)
						md_rules_tenant(&sync, *t, br, json_string_value(json_object_get(trec, "gateway4")),
								json_string_value(json_object_get(trec, "gateway6")), true);
				}
				json_array_foreach(records, i, rec) {
					_cleanup_nf_batch_ struct md_nf_batch one = { 0 };

					/* a record too damaged to name its elements adds none */
					if (md_rules_vm(&one, json_object_get(rec, "net"), true) < 0)
						continue;
					md_nf_batch_append(&sync, &one);
				}
				if (md_nf_batch_commit(&sync, false, err) < 0) {
					md_err_wrap(err, "gc: rebuild sets");
					goto out;
				}
			}
		}
	}
	rc = 0;
out:
	ctx_close(&c);
out_free:
	md_strv_free(ids);
	md_strv_free(tenants);
	md_strv_free(links);
	md_strv_free(keep);
	md_strv_free(keep_links);
	md_strv_free(keep_br);
	json_decref(records);
	if (rc == 0)
		*out = done;
	else
		json_decref(done);
	return rc;
}

int md_vmnet_teardown(const struct md_paths *p, bool force, md_err **err)
{
	struct ctx c;
	char **ids;
	_cleanup_free_ char *rules = md_rules_teardown(), *hpath = NULL;
	int rc = 0, plock = -1;

	if (ctx_open(&c, p, true, err) < 0)
		return -1;
	ids = record_ids(&c);
	if (ids[0] && !force) {
		md_conflict(err, "teardown: %s VM network%s exist (delete them first, or --force)", ids[1] ? "several" : "a",
			    ids[1] ? "s" : "");
		rc = -1;
	} else {
		for (char **i = ids; *i && rc == 0; i++) {
			_cleanup_json_ json_t *rec = NULL;
			if (record_read(&c, *i, &rec, NULL) == 0)
				rc = vm_destroy(&c, rec, err);
		}
		/* the pool's slots, made ahead for VMs that will not come now; pool/lock is held until
		 * host.json is gone, so a refill started by a create just before does not fill again */
		if (rc == 0)
			rc = (plock = pool_lock_sweep(p, err)) < 0 ? -1 : pool_sweep(&c, NULL, true, NULL, NULL, err);
		if (rc == 0) {
			_cleanup_free_ char *rpath = md_path_join(c.ip.dir, "sysctl-restore.json");
			_cleanup_json_ json_t *restore = NULL;
			const char *key;
			json_t *v;

			/* our tables, each if there (a second teardown finds none) */
			if (nft(&c, err) == NULL) {
				rc = -1;
			} else {
				char *save = NULL;

				for (char *l = strtok_r(rules, "\n", &save); l; l = strtok_r(NULL, "\n", &save))
					(void)md_nft_run(c.nft, l, NULL);
			}
			/* put back the forwarding switches setup found (links gone since are skipped) */
			if (md_json_read(rpath, &restore, NULL) == 0 && json_is_object(restore)) {
				json_object_foreach(restore, key, v)
					md_netns_sysctl(key, json_string_value(v), NULL);
			}
			if (unlink(rpath) < 0 && errno != ENOENT)
				rc = md_fail(err, errno, "remove `%s`", rpath);
			hpath = md_path_join(c.ip.dir, "host.json");
			if (unlink(hpath) < 0 && errno != ENOENT)
				rc = md_fail(err, errno, "remove `%s`", hpath);
		}
	}
	if (plock >= 0)
		close(plock);
	md_strv_free(ids);
	ctx_close(&c);
	return rc;
}

int md_vmnet_exec(const struct md_paths *p, const char *id, char **argv, md_err **err)
{
	_cleanup_free_ char *pin = pin_path(p, id);
	_cleanup_close_ int fd = -1;
	int e;

	if ((fd = md_netns_open(pin, err)) < 0 || md_netns_enter(fd, err) < 0) {
		(*err)->code = MD_EXIT_CHAIN;
		return md_err_wrap(err, "exec: VM `%s`", id);
	}
	close(steal_fd(&fd));
	execvp(argv[0], argv);
	e = errno;
	md_err_set(err, e == ENOENT ? MD_EXIT_NOENT : MD_EXIT_NOEXEC, e, "exec `%s`", argv[0]);
	return -1;
}
