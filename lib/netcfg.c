/* Host-wide network settings from the environment (UNKEY_METALD_NETWORK_*), strictly validated. */
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cleanup.h"
#include "netcfg.h"
#include "state.h"

static const char *env(const char *name)
{
	const char *v = getenv(name);

	return v && *v ? v : NULL;
}

int md_ifname_check(const char *name, const char *what, md_err **err)
{
	size_t len = strlen(name);

	if (len == 0 || len >= IFNAMSIZ)
		return md_usage(err, "%s `%s`: must be 1-%d bytes long", what, name, IFNAMSIZ - 1);
	for (const char *p = name; *p; p++)
		if (*p == '/' || *p == ':' || isspace((unsigned char)*p) || !isprint((unsigned char)*p))
			return md_usage(err, "%s `%s`: may not contain `/`, `:` or spaces", what, name);
	return 0;
}

static int pool(const char *var, const char *def, int family, struct md_cidr *out, md_err **err)
{
	const char *v = env(var);

	if (md_parse_cidr(v ? v : def, false, out, err) < 0)
		return md_err_wrap(err, "%s", var);
	if (out->addr.family != family)
		return md_usage(err, "%s `%s`: must be an IPv%d CIDR", var, v, family == AF_INET ? 4 : 6);
	return 0;
}

static int prefix(const char *var, unsigned def, unsigned pool_pfx, unsigned max, unsigned *out, md_err **err)
{
	const char *v = env(var);
	uint64_t n = def;

	if (v && md_parse_u64(v, 1, max, &n, err) < 0)
		return md_err_wrap(err, "%s", var);
	if (n < pool_pfx)
		return md_usage(err, "%s: /%u is larger than the pool (/%u)", var, (unsigned)n, pool_pfx);
	*out = (unsigned)n;
	return 0;
}

static int dns(json_t *arr, const char *var, const char *def, int family, md_err **err)
{
	const char *v = env(var);
	_cleanup_free_ char *copy = strdup(v ? v : def);
	char *save = NULL;

	for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
		struct md_addr a;
		char buf[INET6_ADDRSTRLEN];

		while (*t == ' ')
			t++;
		if (md_parse_addr(t, &a, err) < 0)
			return md_err_wrap(err, "%s", var);
		if (a.family != family)
			return md_usage(err, "%s `%s`: not an IPv%d address", var, t, family == AF_INET ? 4 : 6);
		json_array_append_new(arr, json_string(md_addr_str(&a, buf, sizeof(buf))));
	}
	return 0;
}

/* "tcp/53,udp/53" -> "tcp . 53, udp . 53" for the host_allow set. */
static int host_allow(const char *v, char **out, md_err **err)
{
	_cleanup_free_ char *copy = strdup(v ? v : "");
	char *save = NULL;
	size_t len = 0;
	char *res = calloc(1, strlen(copy) * 3 + 8);

	for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
		char *slash = strchr(t, '/');
		uint64_t port;

		if (slash == NULL) {
			free(res);
			return md_usage(err, "UNKEY_METALD_NETWORK_HOST_ALLOW `%s`: want PORT/tcp or PORT/udp", t);
		}
		*slash = 0;
		if (md_parse_u64(t, 1, 65535, &port, NULL) < 0 || (strcmp(slash + 1, "tcp") && strcmp(slash + 1, "udp"))) {
			free(res);
			return md_usage(err, "UNKEY_METALD_NETWORK_HOST_ALLOW `%s/%s`: want PORT/tcp or PORT/udp", t, slash + 1);
		}
		len += (size_t)sprintf(res + len, "%s%s . %u", len ? ", " : "", slash + 1, (unsigned)port);
	}
	*out = res;
	return 0;
}

int md_netcfg_load(struct md_netcfg *c, md_err **err)
{
	const char *v;
	bool b = true;

	memset(c, 0, sizeof(*c));
	c->uid = c->gid = -1;
	c->dns = json_array();
	if (pool("UNKEY_METALD_NETWORK_VM_SUBNET_IPV4", MD_NET_POOL4_DEFAULT, AF_INET, &c->pool4, err) < 0 ||
	    pool("UNKEY_METALD_NETWORK_VM_SUBNET_IPV6", MD_NET_POOL6_DEFAULT, AF_INET6, &c->pool6, err) < 0 ||
	    prefix("UNKEY_METALD_NETWORK_TENANT_PREFIX_IPV4", 24, c->pool4.prefix, 30, &c->tprefix4, err) < 0 ||
	    prefix("UNKEY_METALD_NETWORK_TENANT_PREFIX_IPV6", 64, c->pool6.prefix, 120, &c->tprefix6, err) < 0 ||
	    dns(c->dns, "UNKEY_METALD_NETWORK_DNS_IPV4", "8.8.8.8,8.8.4.4", AF_INET, err) < 0 ||
	    dns(c->dns, "UNKEY_METALD_NETWORK_DNS_IPV6", "2606:4700:4700::1111,2606:4700:4700::1001", AF_INET6, err) < 0)
		goto fail;
	if ((v = env("UNKEY_METALD_NETWORK_IPV6_NAT")) && md_parse_bool(v, &b, err) < 0) {
		md_err_wrap(err, "UNKEY_METALD_NETWORK_IPV6_NAT");
		goto fail;
	}
	c->nat6 = b;
	if (host_allow(env("UNKEY_METALD_NETWORK_HOST_ALLOW"), &c->host_allow, err) < 0)
		goto fail;
	v = env("UNKEY_METALD_NETWORK_TAP");
	if (md_ifname_check(v ? v : MD_NET_TAP_DEFAULT, "UNKEY_METALD_NETWORK_TAP", err) < 0)
		goto fail;
	snprintf(c->tap, sizeof(c->tap), "%s", v ? v : MD_NET_TAP_DEFAULT);
	if ((v = env("UNKEY_METALD_NETWORK_POOL"))) {
		uint64_t n;

		if (md_parse_u64(v, 0, MD_NET_POOL_MAX, &n, err) < 0) {
			md_err_wrap(err, "UNKEY_METALD_NETWORK_POOL");
			goto fail;
		}
		c->pool = (unsigned)n;
	}
	for (int i = 0; i < 2; i++) {
		const char *var = i ? "UNKEY_METALD_JAILER_GID" : "UNKEY_METALD_JAILER_UID";
		uint64_t n;

		if ((v = env(var)) == NULL)
			continue;
		if (md_parse_u64(v, 0, 0xfffffffe, &n, err) < 0) {
			md_err_wrap(err, "%s", var);
			goto fail;
		}
		*(i ? &c->gid : &c->uid) = (long)n;
	}
	return 0;
fail:
	md_netcfg_free(c);
	return -1;
}

void md_netcfg_free(struct md_netcfg *c)
{
	json_decref(c->dns);
	free(c->host_allow);
	c->dns = NULL;
	c->host_allow = NULL;
}
