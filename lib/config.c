/* The VM config: protojson-compatible parsing of VmConfig/CreateVmRequest, validation, rendering. */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cleanup.h"
#include "config.h"
#include "parse.h"
#include "state.h"

/*
 * A field is looked up under both of its protojson names. `path` is the snake_case path used in
 * messages ("config.memory"); helpers build "path.field" themselves.
 */

static char *xstrdup(const char *s)
{
	char *r = strdup(s);
	if (r == NULL)
		abort();
	return r;
}

/* snake_case -> lowerCamelCase ("size_bytes" -> "sizeBytes"). */
static void camel(const char *snake, char *buf, size_t len)
{
	size_t o = 0;
	bool up = false;

	for (const char *p = snake; *p && o + 1 < len; p++) {
		if (*p == '_') {
			up = true;
			continue;
		}
		buf[o++] = up ? (char)toupper((unsigned char)*p) : *p;
		up = false;
	}
	buf[o] = '\0';
}

/* The value of field `name` in obj under either spelling; NULL when absent or null. Both
 * spellings present is an error (protojson: "duplicate field"). */
static int field(json_t *obj, const char *path, const char *name, json_t **out, md_err **err)
{
	char cname[64];
	json_t *a, *b;

	camel(name, cname, sizeof(cname));
	a = json_object_get(obj, name);
	b = strcmp(cname, name) ? json_object_get(obj, cname) : NULL;
	if (a && b)
		return md_usage(err, "%s.%s: given twice (as `%s` and `%s`)", path, name, name, cname);
	*out = a ? a : b;
	if (*out && json_is_null(*out))
		*out = NULL;
	return 0;
}

static const char *type_name(json_t *v)
{
	switch (json_typeof(v)) {
	case JSON_OBJECT: return "object";
	case JSON_ARRAY: return "array";
	case JSON_STRING: return "string";
	case JSON_INTEGER:
	case JSON_REAL: return "number";
	case JSON_TRUE:
	case JSON_FALSE: return "boolean";
	default: return "null";
	}
}

/* A short rendering of a bad value for messages. */
static int type_err(md_err **err, const char *path, const char *name, const char *want, json_t *v)
{
	if (json_is_string(v)) {
		const char *s = json_string_value(v);
		return md_usage(err, "%s.%s: expected %s, got string `%.40s%s`", path, name, want, s,
				strlen(s) > 40 ? "..." : "");
	}
	return md_usage(err, "%s.%s: expected %s, got %s", path, name, want, type_name(v));
}

static int get_string(json_t *obj, const char *path, const char *name, char **out, md_err **err)
{
	json_t *v;

	if (field(obj, path, name, &v, err) < 0)
		return -1;
	if (v == NULL)
		return 0;
	if (!json_is_string(v))
		return type_err(err, path, name, "a string", v);
	free(*out);
	/* protojson's default: an empty string is the same as unset */
	*out = json_string_length(v) ? xstrdup(json_string_value(v)) : NULL;
	return 0;
}

static int get_bool(json_t *obj, const char *path, const char *name, bool *out, md_err **err)
{
	json_t *v;

	if (field(obj, path, name, &v, err) < 0)
		return -1;
	if (v == NULL)
		return 0;
	if (!json_is_boolean(v))
		return type_err(err, path, name, "true or false", v);
	*out = json_is_true(v);
	return 0;
}

/* An integer as protojson reads it: a JSON number without a fraction, or a string of an
 * optional '-' and decimal digits. */
static int get_int(json_t *obj, const char *path, const char *name, int64_t min, int64_t max, int64_t *out,
		   md_err **err)
{
	const char *want = max == INT32_MAX ? "an int32" : "an int64";
	json_t *v;
	int64_t n;

	if (field(obj, path, name, &v, err) < 0)
		return -1;
	if (v == NULL)
		return 0;
	if (json_is_integer(v)) {
		n = json_integer_value(v);
	} else if (json_is_real(v)) {
		double d = json_real_value(v);
		if (d != floor(d) || d < -9.2e18 || d > 9.2e18)
			return md_usage(err, "%s.%s: expected %s, got %g", path, name, want, d);
		n = (int64_t)d;
	} else if (json_is_string(v)) {
		const char *s = json_string_value(v), *d = *s == '-' ? s + 1 : s;
		char *end;
		if (*d == '\0' || strspn(d, "0123456789") != strlen(d))
			return type_err(err, path, name, want, v);
		errno = 0;
		n = strtoll(s, &end, 10);
		if (errno == ERANGE)
			return md_usage(err, "%s.%s: `%s` is out of range for %s", path, name, s, want);
	} else {
		return type_err(err, path, name, want, v);
	}
	if (n < min || n > max)
		return md_usage(err, "%s.%s: %" PRId64 " is out of range for %s", path, name, n, want);
	*out = n;
	return 0;
}

static int get_i32(json_t *obj, const char *path, const char *name, int32_t *out, md_err **err)
{
	int64_t n = *out;

	if (get_int(obj, path, name, INT32_MIN, INT32_MAX, &n, err) < 0)
		return -1;
	*out = (int32_t)n;
	return 0;
}

static int get_i64(json_t *obj, const char *path, const char *name, int64_t *out, md_err **err)
{
	return get_int(obj, path, name, INT64_MIN, INT64_MAX, out, err);
}

/* A message field: an object, or absent/null (*out = NULL). */
static int get_object(json_t *obj, const char *path, const char *name, json_t **out, md_err **err)
{
	if (field(obj, path, name, out, err) < 0)
		return -1;
	if (*out && !json_is_object(*out))
		return type_err(err, path, name, "an object", *out);
	return 0;
}

static int kv_cmp(const void *a, const void *b)
{
	return strcmp(((const struct md_kv *)a)->key, ((const struct md_kv *)b)->key);
}

static int get_map(json_t *obj, const char *path, const char *name, struct md_map *m, md_err **err)
{
	const char *k;
	json_t *v, *val;

	if (get_object(obj, path, name, &v, err) < 0)
		return -1;
	if (v == NULL)
		return 0;
	m->items = calloc(json_object_size(v) + 1, sizeof(*m->items));
	if (m->items == NULL)
		abort();
	json_object_foreach(v, k, val) {
		if (!json_is_string(val)) {
			char sub[256];
			snprintf(sub, sizeof(sub), "%s[\"%s\"]", name, k);
			return type_err(err, path, sub, "a string", val);
		}
		m->items[m->n].key = xstrdup(k);
		m->items[m->n].value = xstrdup(json_string_value(val));
		m->n++;
	}
	qsort(m->items, m->n, sizeof(*m->items), kv_cmp);
	return 0;
}

static int get_strings(json_t *obj, const char *path, const char *name, char ***out, size_t *n, md_err **err)
{
	json_t *v, *e;
	size_t i;

	if (field(obj, path, name, &v, err) < 0)
		return -1;
	if (v == NULL)
		return 0;
	if (!json_is_array(v))
		return type_err(err, path, name, "an array", v);
	*out = calloc(json_array_size(v) + 1, sizeof(char *));
	if (*out == NULL)
		abort();
	json_array_foreach(v, i, e) {
		if (!json_is_string(e)) {
			char sub[64];
			snprintf(sub, sizeof(sub), "%s[%zu]", name, i);
			return type_err(err, path, sub, "a string", e);
		}
		(*out)[(*n)++] = xstrdup(json_string_value(e));
	}
	return 0;
}

static const char *const net_mode_names[] = {
	"NETWORK_MODE_UNSPECIFIED",
	"NETWORK_MODE_DUAL_STACK",
	"NETWORK_MODE_IPV4_ONLY",
	"NETWORK_MODE_IPV6_ONLY",
};

const char *md_net_mode_name(enum md_net_mode m)
{
	return (unsigned)m < MD_ARRAY_SIZE(net_mode_names) ? net_mode_names[m] : "NETWORK_MODE_UNSPECIFIED";
}

static int get_mode(json_t *obj, const char *path, enum md_net_mode *out, md_err **err)
{
	json_t *v;

	if (field(obj, path, "mode", &v, err) < 0)
		return -1;
	if (v == NULL)
		return 0;
	if (json_is_string(v)) {
		for (size_t i = 0; i < MD_ARRAY_SIZE(net_mode_names); i++)
			if (strcmp(json_string_value(v), net_mode_names[i]) == 0) {
				*out = (enum md_net_mode)i;
				return 0;
			}
		return md_usage(err, "%s.mode: unknown value `%s` (NETWORK_MODE_DUAL_STACK, NETWORK_MODE_IPV4_ONLY, "
				"NETWORK_MODE_IPV6_ONLY or 0..3)", path, json_string_value(v));
	}
	if (json_is_integer(v)) {
		json_int_t n = json_integer_value(v);
		if (n < 0 || n > 3)
			return md_usage(err, "%s.mode: unknown value %lld (0..3)", path, (long long)n);
		*out = (enum md_net_mode)n;
		return 0;
	}
	return type_err(err, path, "mode", "an enum name or number", v);
}

static int get_rate_limit(json_t *obj, const char *path, const char *name, struct md_cfg_rate_limit *rl,
			  md_err **err)
{
	_cleanup_free_ char *sub = NULL;
	json_t *v;

	if (get_object(obj, path, name, &v, err) < 0)
		return -1;
	if (v == NULL)
		return 0;
	sub = md_strdup_printf("%s.%s", path, name);
	rl->set = true;
	if (get_i64(v, sub, "bandwidth", &rl->bandwidth, err) < 0 ||
	    get_i64(v, sub, "refill_time", &rl->refill_time, err) < 0 || get_i64(v, sub, "burst", &rl->burst, err) < 0)
		return -1;
	return 0;
}

static int parse_storage(json_t *v, const char *path, struct md_cfg_storage *s, md_err **err)
{
	if (!json_is_object(v))
		return md_usage(err, "%s: expected an object, got %s", path, type_name(v));
	if (get_string(v, path, "id", &s->id, err) < 0 || get_string(v, path, "path", &s->path, err) < 0 ||
	    get_bool(v, path, "read_only", &s->read_only, err) < 0 ||
	    get_bool(v, path, "is_root_device", &s->is_root_device, err) < 0 ||
	    get_string(v, path, "interface_type", &s->interface_type, err) < 0 ||
	    get_map(v, path, "options", &s->options, err) < 0)
		return -1;
	return 0;
}

static int parse_net(json_t *v, const char *path, struct md_cfg_net *n, md_err **err)
{
	_cleanup_free_ char *p4 = md_strdup_printf("%s.ipv4_config", path);
	_cleanup_free_ char *p6 = md_strdup_printf("%s.ipv6_config", path);
	json_t *o;

	if (!json_is_object(v))
		return md_usage(err, "%s: expected an object, got %s", path, type_name(v));
	if (get_string(v, path, "id", &n->id, err) < 0 || get_string(v, path, "mac_address", &n->mac_address, err) < 0 ||
	    get_string(v, path, "tap_device", &n->tap_device, err) < 0 ||
	    get_string(v, path, "interface_type", &n->interface_type, err) < 0 ||
	    get_map(v, path, "options", &n->options, err) < 0 || get_mode(v, path, &n->mode, err) < 0 ||
	    get_rate_limit(v, path, "rx_rate_limit", &n->rx_rate_limit, err) < 0 ||
	    get_rate_limit(v, path, "tx_rate_limit", &n->tx_rate_limit, err) < 0)
		return -1;
	if (get_object(v, path, "ipv4_config", &o, err) < 0)
		return -1;
	if (o) {
		struct md_cfg_ipv4 *c = &n->ipv4;
		c->set = true;
		if (get_string(o, p4, "address", &c->address, err) < 0 || get_string(o, p4, "netmask", &c->netmask, err) < 0 ||
		    get_string(o, p4, "gateway", &c->gateway, err) < 0 ||
		    get_strings(o, p4, "dns_servers", &c->dns_servers, &c->n_dns_servers, err) < 0 ||
		    get_bool(o, p4, "dhcp", &c->dhcp, err) < 0)
			return -1;
	}
	if (get_object(v, path, "ipv6_config", &o, err) < 0)
		return -1;
	if (o) {
		struct md_cfg_ipv6 *c = &n->ipv6;
		c->set = true;
		if (get_string(o, p6, "address", &c->address, err) < 0 ||
		    get_i32(o, p6, "prefix_length", &c->prefix_length, err) < 0 ||
		    get_string(o, p6, "gateway", &c->gateway, err) < 0 ||
		    get_strings(o, p6, "dns_servers", &c->dns_servers, &c->n_dns_servers, err) < 0 ||
		    get_bool(o, p6, "slaac", &c->slaac, err) < 0 ||
		    get_bool(o, p6, "privacy_extensions", &c->privacy_extensions, err) < 0 ||
		    get_string(o, p6, "link_local", &c->link_local, err) < 0)
			return -1;
	}
	return 0;
}

static int parse_vmconfig(json_t *c, struct md_config *cfg, md_err **err)
{
	const char *P = "config";
	json_t *o, *arr, *e;
	size_t i;

	if (get_object(c, P, "cpu", &o, err) < 0)
		return -1;
	if (o) {
		json_t *t;
		cfg->has_cpu = true;
		if (get_i32(o, "config.cpu", "vcpu_count", &cfg->cpu.vcpu_count, err) < 0 ||
		    get_i32(o, "config.cpu", "max_vcpu_count", &cfg->cpu.max_vcpu_count, err) < 0 ||
		    get_map(o, "config.cpu", "features", &cfg->cpu.features, err) < 0 ||
		    get_object(o, "config.cpu", "topology", &t, err) < 0)
			return -1;
		if (t && (get_i32(t, "config.cpu.topology", "sockets", &cfg->cpu.topology.sockets, err) < 0 ||
			  get_i32(t, "config.cpu.topology", "cores_per_socket", &cfg->cpu.topology.cores_per_socket, err) < 0 ||
			  get_i32(t, "config.cpu.topology", "threads_per_core", &cfg->cpu.topology.threads_per_core, err) < 0))
			return -1;
	}
	if (get_object(c, P, "memory", &o, err) < 0)
		return -1;
	if (o) {
		cfg->has_memory = true;
		if (get_i64(o, "config.memory", "size_bytes", &cfg->memory.size_bytes, err) < 0 ||
		    get_bool(o, "config.memory", "hotplug_enabled", &cfg->memory.hotplug_enabled, err) < 0 ||
		    get_i64(o, "config.memory", "max_size_bytes", &cfg->memory.max_size_bytes, err) < 0 ||
		    get_map(o, "config.memory", "backing", &cfg->memory.backing, err) < 0)
			return -1;
	}
	if (get_object(c, P, "boot", &o, err) < 0)
		return -1;
	if (o) {
		cfg->has_boot = true;
		if (get_string(o, "config.boot", "kernel_path", &cfg->boot.kernel_path, err) < 0 ||
		    get_string(o, "config.boot", "initrd_path", &cfg->boot.initrd_path, err) < 0 ||
		    get_string(o, "config.boot", "kernel_args", &cfg->boot.kernel_args, err) < 0 ||
		    get_map(o, "config.boot", "boot_options", &cfg->boot.boot_options, err) < 0)
			return -1;
	}
	if (field(c, P, "storage", &arr, err) < 0)
		return -1;
	if (arr) {
		if (!json_is_array(arr))
			return type_err(err, P, "storage", "an array", arr);
		cfg->storage = calloc(json_array_size(arr) + 1, sizeof(*cfg->storage));
		if (cfg->storage == NULL)
			abort();
		json_array_foreach(arr, i, e) {
			char p[48];
			snprintf(p, sizeof(p), "config.storage[%zu]", i);
			cfg->n_storage++;
			if (parse_storage(e, p, &cfg->storage[i], err) < 0)
				return -1;
		}
	}
	if (field(c, P, "network", &arr, err) < 0)
		return -1;
	if (arr) {
		if (!json_is_array(arr))
			return type_err(err, P, "network", "an array", arr);
		cfg->network = calloc(json_array_size(arr) + 1, sizeof(*cfg->network));
		if (cfg->network == NULL)
			abort();
		json_array_foreach(arr, i, e) {
			char p[48];
			snprintf(p, sizeof(p), "config.network[%zu]", i);
			cfg->n_network++;
			if (parse_net(e, p, &cfg->network[i], err) < 0)
				return -1;
		}
	}
	if (get_object(c, P, "console", &o, err) < 0)
		return -1;
	if (o) {
		cfg->has_console = true;
		if (get_bool(o, "config.console", "enabled", &cfg->console.enabled, err) < 0 ||
		    get_string(o, "config.console", "output", &cfg->console.output, err) < 0 ||
		    get_string(o, "config.console", "input", &cfg->console.input, err) < 0 ||
		    get_string(o, "config.console", "console_type", &cfg->console.console_type, err) < 0)
			return -1;
	}
	return get_map(c, P, "metadata", &cfg->metadata, err);
}

static bool is_request(json_t *doc)
{
	static const char *const keys[] = { "config", "vm_id", "vmId", "customer_id", "customerId" };
	for (size_t i = 0; i < MD_ARRAY_SIZE(keys); i++)
		if (json_object_get(doc, keys[i]))
			return true;
	return false;
}

int md_config_parse(json_t *doc, struct md_config **out, md_err **err)
{
	struct md_config *cfg;
	json_t *c = doc;

	if (!json_is_object(doc))
		return md_usage(err, "config: expected a JSON object, got %s", doc ? type_name(doc) : "nothing");
	cfg = calloc(1, sizeof(*cfg));
	if (cfg == NULL)
		abort();
	if (is_request(doc)) {
		/* CreateVmRequest: its own fields have no "config." prefix */
		json_t *v;
		if (get_string(doc, "request", "vm_id", &cfg->vm_id, err) < 0 ||
		    get_string(doc, "request", "customer_id", &cfg->customer_id, err) < 0 ||
		    field(doc, "request", "config", &v, err) < 0)
			goto fail;
		if (v == NULL) {
			md_usage(err, "config: is required (vm config is required)");
			goto fail;
		}
		if (!json_is_object(v)) {
			md_usage(err, "config: expected an object, got %s", type_name(v));
			goto fail;
		}
		c = v;
	}
	if (parse_vmconfig(c, cfg, err) < 0 || md_config_validate(cfg, err) < 0)
		goto fail;
	*out = cfg;
	return 0;
fail:
	/* "request.vm_id: ..." reads badly: request-level fields are top-level keys */
	if (err && *err && strncmp((*err)->msg, "request.", 8) == 0)
		memmove((*err)->msg, (*err)->msg + 8, strlen((*err)->msg + 8) + 1);
	md_config_free(cfg);
	return -1;
}

int md_config_parse_string(const char *text, struct md_config **out, md_err **err)
{
	_cleanup_json_ json_t *doc = NULL;
	json_error_t je;

	doc = json_loads(text, JSON_REJECT_DUPLICATES, &je);
	if (doc == NULL)
		return md_usage(err, "config: invalid JSON at line %d column %d: %s", je.line, je.column, je.text);
	return md_config_parse(doc, out, err);
}

int md_config_parse_file(const char *path, struct md_config **out, md_err **err)
{
	_cleanup_json_ json_t *doc = NULL;
	json_error_t je;

	if (strcmp(path, "-") == 0) {
		doc = json_loadf(stdin, JSON_REJECT_DUPLICATES, &je);
		if (doc == NULL)
			return md_usage(err, "config: invalid JSON on stdin at line %d column %d: %s", je.line, je.column,
					je.text);
	} else {
		doc = json_load_file(path, JSON_REJECT_DUPLICATES, &je);
		if (doc == NULL) {
			if (je.position == 0 && strstr(je.text, "unable to open"))
				return md_err_set(err, errno == ENOENT ? MD_EXIT_NOTFOUND : MD_EXIT_FAIL, errno,
						  "config `%s`", path);
			return md_usage(err, "config `%s`: invalid JSON at line %d column %d: %s", path, je.line,
					je.column, je.text);
		}
	}
	if (md_config_parse(doc, out, err) < 0)
		return strcmp(path, "-") ? md_err_wrap(err, "`%s`", path) : -1;
	return 0;
}

/* Firecracker's rule for API resource ids (drives, interfaces): alphanumerics and '_'. */
static int check_res_id(const char *id, const char *path, md_err **err)
{
	size_t n = strlen(id);

	if (n > 64 || strspn(id, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_") != n)
		return md_usage(err, "%s.id: `%s` must be 1-64 characters of [A-Za-z0-9_]", path, id);
	return 0;
}

static int check_rl(const struct md_cfg_rate_limit *rl, const char *path, const char *name, md_err **err)
{
	if (!rl->set)
		return 0;
	if (rl->bandwidth < 0)
		return md_usage(err, "%s.%s.bandwidth: must be >= 0", path, name);
	if (rl->refill_time < 0)
		return md_usage(err, "%s.%s.refill_time: must be >= 0", path, name);
	if (rl->burst < 0)
		return md_usage(err, "%s.%s.burst: must be >= 0", path, name);
	return 0;
}

/* An address, optionally with a /prefix. */
static int check_addr(const char *s, int family, const char *path, const char *name, md_err **err)
{
	struct md_cidr c;
	struct md_addr a;
	md_err *e = NULL;
	int r = strchr(s, '/') ? md_parse_cidr(s, true, &c, &e) : md_parse_addr(s, &a, &e);
	int fam = strchr(s, '/') ? c.addr.family : a.family;

	md_err_free(&e);
	if (r < 0 || fam != family)
		return md_usage(err, "%s.%s: `%s` is not an %s address", path, name, s, family == AF_INET ? "IPv4" : "IPv6");
	return 0;
}

int md_config_validate(const struct md_config *cfg, md_err **err)
{
	int roots = 0;

	/* The original's checks, in its order */
	if (!cfg->has_cpu)
		return md_usage(err, "config.cpu: is required");
	if (!cfg->has_memory)
		return md_usage(err, "config.memory: is required");
	if (!cfg->has_boot)
		return md_usage(err, "config.boot: is required");
	if (cfg->cpu.vcpu_count <= 0)
		return md_usage(err, "config.cpu.vcpu_count: must be > 0");
	if (cfg->cpu.max_vcpu_count > 0 && cfg->cpu.max_vcpu_count < cfg->cpu.vcpu_count)
		return md_usage(err, "config.cpu.max_vcpu_count: must be >= vcpu_count (%d)", cfg->cpu.vcpu_count);
	if (cfg->memory.size_bytes <= 0)
		return md_usage(err, "config.memory.size_bytes: must be > 0");
	if (cfg->boot.kernel_path == NULL)
		return md_usage(err, "config.boot.kernel_path: is required");
	/* The original required a disk; an initramfs is a root filesystem too, so a VM that boots
	 * one needs none (the test guest is such a VM). */
	if (cfg->n_storage == 0 && cfg->boot.initrd_path == NULL)
		return md_usage(err, "config.storage: at least one storage device is required");
	for (size_t i = 0; i < cfg->n_storage; i++)
		if (cfg->storage[i].path == NULL)
			return md_usage(err, "config.storage[%zu].path: is required", i);

	/* What metald uses and the original only stored */
	if (cfg->cpu.max_vcpu_count < 0)
		return md_usage(err, "config.cpu.max_vcpu_count: must be >= 0");
	if (cfg->cpu.topology.sockets < 0 || cfg->cpu.topology.cores_per_socket < 0 ||
	    cfg->cpu.topology.threads_per_core < 0)
		return md_usage(err, "config.cpu.topology: values must be >= 0");
	if (cfg->memory.size_bytes < (1 << 20))
		return md_usage(err, "config.memory.size_bytes: must be at least 1 MiB (1048576), got %" PRId64,
				cfg->memory.size_bytes);
	if (cfg->memory.max_size_bytes < 0 ||
	    (cfg->memory.max_size_bytes > 0 && cfg->memory.max_size_bytes < cfg->memory.size_bytes))
		return md_usage(err, "config.memory.max_size_bytes: must be 0 or >= size_bytes");
	for (size_t i = 0; i < cfg->n_storage; i++) {
		char p[48], a[80], b[80];
		snprintf(p, sizeof(p), "config.storage[%zu]", i);
		if (cfg->storage[i].id && check_res_id(cfg->storage[i].id, p, err) < 0)
			return -1;
		if (cfg->storage[i].is_root_device && ++roots > 1)
			return md_usage(err, "%s.is_root_device: only one root device is allowed", p);
		for (size_t j = 0; j < i; j++)
			if (strcmp(md_config_drive_id(cfg, i, a, sizeof(a)), md_config_drive_id(cfg, j, b, sizeof(b))) == 0)
				return md_usage(err, "%s.id: `%s` is used twice", p, a);
	}
	for (size_t i = 0; i < cfg->n_network; i++) {
		const struct md_cfg_net *n = &cfg->network[i];
		char p[48];
		uint8_t mac[6];
		md_err *e = NULL;

		snprintf(p, sizeof(p), "config.network[%zu]", i);
		if (n->id && check_res_id(n->id, p, err) < 0)
			return -1;
		for (size_t j = 0; j < i; j++)
			if (n->id && cfg->network[j].id && strcmp(n->id, cfg->network[j].id) == 0)
				return md_usage(err, "%s.id: `%s` is used twice", p, n->id);
		if (n->mac_address && md_parse_mac(n->mac_address, false, mac, &e) < 0) {
			md_usage(err, "%s.mac_address: `%s` is not a unicast MAC address", p, n->mac_address);
			md_err_free(&e);
			return -1;
		}
		if (n->tap_device && (strlen(n->tap_device) > 15 || strchr(n->tap_device, '/')))
			return md_usage(err, "%s.tap_device: `%s` is not a valid interface name (max 15 bytes, no '/')", p,
					n->tap_device);
		if (check_rl(&n->rx_rate_limit, p, "rx_rate_limit", err) < 0 ||
		    check_rl(&n->tx_rate_limit, p, "tx_rate_limit", err) < 0)
			return -1;
		if (n->ipv4.set) {
			char p4[64];
			snprintf(p4, sizeof(p4), "%s.ipv4_config", p);
			if ((n->ipv4.address && check_addr(n->ipv4.address, AF_INET, p4, "address", err) < 0) ||
			    (n->ipv4.netmask && check_addr(n->ipv4.netmask, AF_INET, p4, "netmask", err) < 0) ||
			    (n->ipv4.gateway && check_addr(n->ipv4.gateway, AF_INET, p4, "gateway", err) < 0))
				return -1;
		}
		if (n->ipv6.set) {
			char p6[64];
			snprintf(p6, sizeof(p6), "%s.ipv6_config", p);
			if ((n->ipv6.address && check_addr(n->ipv6.address, AF_INET6, p6, "address", err) < 0) ||
			    (n->ipv6.gateway && check_addr(n->ipv6.gateway, AF_INET6, p6, "gateway", err) < 0))
				return -1;
			if (n->ipv6.prefix_length < 0 || n->ipv6.prefix_length > 128)
				return md_usage(err, "%s.prefix_length: must be between 0 and 128", p6);
		}
	}
	return 0;
}

static void map_free(struct md_map *m)
{
	for (size_t i = 0; i < m->n; i++) {
		free(m->items[i].key);
		free(m->items[i].value);
	}
	free(m->items);
}

static void strings_free(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

void md_config_free(struct md_config *cfg)
{
	if (cfg == NULL)
		return;
	free(cfg->vm_id);
	free(cfg->customer_id);
	map_free(&cfg->cpu.features);
	map_free(&cfg->memory.backing);
	free(cfg->boot.kernel_path);
	free(cfg->boot.initrd_path);
	free(cfg->boot.kernel_args);
	map_free(&cfg->boot.boot_options);
	for (size_t i = 0; i < cfg->n_storage; i++) {
		free(cfg->storage[i].id);
		free(cfg->storage[i].path);
		free(cfg->storage[i].interface_type);
		map_free(&cfg->storage[i].options);
	}
	free(cfg->storage);
	for (size_t i = 0; i < cfg->n_network; i++) {
		struct md_cfg_net *n = &cfg->network[i];
		free(n->id);
		free(n->mac_address);
		free(n->tap_device);
		free(n->interface_type);
		map_free(&n->options);
		free(n->ipv4.address);
		free(n->ipv4.netmask);
		free(n->ipv4.gateway);
		strings_free(n->ipv4.dns_servers, n->ipv4.n_dns_servers);
		free(n->ipv6.address);
		free(n->ipv6.gateway);
		strings_free(n->ipv6.dns_servers, n->ipv6.n_dns_servers);
		free(n->ipv6.link_local);
	}
	free(cfg->network);
	free(cfg->console.output);
	free(cfg->console.input);
	free(cfg->console.console_type);
	map_free(&cfg->metadata);
	free(cfg);
}

/* Rendering: protojson output omits zero values; we do the same. */
struct render {
	int flags;
};

static void put(const struct render *r, json_t *o, const char *name, json_t *v)
{
	char cname[64];

	if (v == NULL)
		return;
	if (r->flags & MD_CONFIG_JSON_CAMEL) {
		camel(name, cname, sizeof(cname));
		name = cname;
	}
	if (json_object_set_new(o, name, v) < 0)
		abort();
}

static void put_str(const struct render *r, json_t *o, const char *name, const char *s)
{
	if (s && *s)
		put(r, o, name, json_string(s));
}

static void put_bool(const struct render *r, json_t *o, const char *name, bool b)
{
	if (b)
		put(r, o, name, json_true());
}

static void put_i32(const struct render *r, json_t *o, const char *name, int32_t n)
{
	if (n)
		put(r, o, name, json_integer(n));
}

static void put_i64(const struct render *r, json_t *o, const char *name, int64_t n)
{
	char buf[24];

	if (n == 0)
		return;
	if (r->flags & MD_CONFIG_JSON_CAMEL) {
		snprintf(buf, sizeof(buf), "%" PRId64, n);
		put(r, o, name, json_string(buf));
	} else {
		put(r, o, name, json_integer(n));
	}
}

static void put_map(const struct render *r, json_t *o, const char *name, const struct md_map *m)
{
	json_t *v;

	if (m->n == 0)
		return;
	v = json_object();
	for (size_t i = 0; i < m->n; i++)
		json_object_set_new(v, m->items[i].key, json_string(m->items[i].value));
	put(r, o, name, v);
}

static void put_strings(const struct render *r, json_t *o, const char *name, char **v, size_t n)
{
	json_t *a;

	if (n == 0)
		return;
	a = json_array();
	for (size_t i = 0; i < n; i++)
		json_array_append_new(a, json_string(v[i]));
	put(r, o, name, a);
}

static void put_obj(const struct render *r, json_t *o, const char *name, json_t *v, bool present)
{
	/* a present but empty message renders as {} so has_* survives a round trip */
	if (json_object_size(v) || present)
		put(r, o, name, v);
	else
		json_decref(v);
}

static json_t *rl_json(const struct render *r, const struct md_cfg_rate_limit *rl)
{
	json_t *o = json_object();

	put_i64(r, o, "bandwidth", rl->bandwidth);
	put_i64(r, o, "refill_time", rl->refill_time);
	put_i64(r, o, "burst", rl->burst);
	return o;
}

json_t *md_config_to_json(const struct md_config *cfg, int flags)
{
	const struct render rr = { .flags = flags }, *r = &rr;
	json_t *c = json_object(), *o, *t;

	o = json_object();
	put_i32(r, o, "vcpu_count", cfg->cpu.vcpu_count);
	put_i32(r, o, "max_vcpu_count", cfg->cpu.max_vcpu_count);
	t = json_object();
	put_i32(r, t, "sockets", cfg->cpu.topology.sockets);
	put_i32(r, t, "cores_per_socket", cfg->cpu.topology.cores_per_socket);
	put_i32(r, t, "threads_per_core", cfg->cpu.topology.threads_per_core);
	put_obj(r, o, "topology", t, false);
	put_map(r, o, "features", &cfg->cpu.features);
	put_obj(r, c, "cpu", o, cfg->has_cpu);

	o = json_object();
	put_i64(r, o, "size_bytes", cfg->memory.size_bytes);
	put_bool(r, o, "hotplug_enabled", cfg->memory.hotplug_enabled);
	put_i64(r, o, "max_size_bytes", cfg->memory.max_size_bytes);
	put_map(r, o, "backing", &cfg->memory.backing);
	put_obj(r, c, "memory", o, cfg->has_memory);

	o = json_object();
	put_str(r, o, "kernel_path", cfg->boot.kernel_path);
	put_str(r, o, "initrd_path", cfg->boot.initrd_path);
	put_str(r, o, "kernel_args", cfg->boot.kernel_args);
	put_map(r, o, "boot_options", &cfg->boot.boot_options);
	put_obj(r, c, "boot", o, cfg->has_boot);

	if (cfg->n_storage) {
		json_t *a = json_array();
		for (size_t i = 0; i < cfg->n_storage; i++) {
			const struct md_cfg_storage *s = &cfg->storage[i];
			o = json_object();
			put_str(r, o, "id", s->id);
			put_str(r, o, "path", s->path);
			put_bool(r, o, "read_only", s->read_only);
			put_bool(r, o, "is_root_device", s->is_root_device);
			put_str(r, o, "interface_type", s->interface_type);
			put_map(r, o, "options", &s->options);
			json_array_append_new(a, o);
		}
		put(r, c, "storage", a);
	}
	if (cfg->n_network) {
		json_t *a = json_array();
		for (size_t i = 0; i < cfg->n_network; i++) {
			const struct md_cfg_net *n = &cfg->network[i];
			o = json_object();
			put_str(r, o, "id", n->id);
			put_str(r, o, "mac_address", n->mac_address);
			put_str(r, o, "tap_device", n->tap_device);
			put_str(r, o, "interface_type", n->interface_type);
			put_map(r, o, "options", &n->options);
			t = json_object();
			put_str(r, t, "address", n->ipv4.address);
			put_str(r, t, "netmask", n->ipv4.netmask);
			put_str(r, t, "gateway", n->ipv4.gateway);
			put_strings(r, t, "dns_servers", n->ipv4.dns_servers, n->ipv4.n_dns_servers);
			put_bool(r, t, "dhcp", n->ipv4.dhcp);
			put_obj(r, o, "ipv4_config", t, n->ipv4.set);
			t = json_object();
			put_str(r, t, "address", n->ipv6.address);
			put_i32(r, t, "prefix_length", n->ipv6.prefix_length);
			put_str(r, t, "gateway", n->ipv6.gateway);
			put_strings(r, t, "dns_servers", n->ipv6.dns_servers, n->ipv6.n_dns_servers);
			put_bool(r, t, "slaac", n->ipv6.slaac);
			put_bool(r, t, "privacy_extensions", n->ipv6.privacy_extensions);
			put_str(r, t, "link_local", n->ipv6.link_local);
			put_obj(r, o, "ipv6_config", t, n->ipv6.set);
			if (n->mode)
				put(r, o, "mode", json_string(md_net_mode_name(n->mode)));
			put_obj(r, o, "rx_rate_limit", rl_json(r, &n->rx_rate_limit), n->rx_rate_limit.set);
			put_obj(r, o, "tx_rate_limit", rl_json(r, &n->tx_rate_limit), n->tx_rate_limit.set);
			json_array_append_new(a, o);
		}
		put(r, c, "network", a);
	}
	o = json_object();
	put_bool(r, o, "enabled", cfg->console.enabled);
	put_str(r, o, "output", cfg->console.output);
	put_str(r, o, "input", cfg->console.input);
	put_str(r, o, "console_type", cfg->console.console_type);
	put_obj(r, c, "console", o, cfg->has_console);
	put_map(r, c, "metadata", &cfg->metadata);

	if (flags & MD_CONFIG_JSON_REQUEST) {
		json_t *req = json_object();
		put_str(r, req, "vm_id", cfg->vm_id);
		put(r, req, "config", c);
		put_str(r, req, "customer_id", cfg->customer_id);
		return req;
	}
	return c;
}

const char *md_map_get(const struct md_map *m, const char *key)
{
	for (size_t i = 0; i < m->n; i++)
		if (strcmp(m->items[i].key, key) == 0)
			return m->items[i].value;
	return NULL;
}

int md_config_root_index(const struct md_config *cfg)
{
	if (cfg->n_storage == 0)
		return -1;
	for (size_t i = 0; i < cfg->n_storage; i++)
		if (cfg->storage[i].is_root_device)
			return (int)i;
	return 0;
}

const char *md_config_drive_id(const struct md_config *cfg, size_t i, char *buf, size_t len)
{
	if (cfg->storage[i].id)
		snprintf(buf, len, "%s", cfg->storage[i].id);
	else if ((int)i == md_config_root_index(cfg))
		snprintf(buf, len, "rootfs");
	else
		snprintf(buf, len, "drive_%zu", i);
	return buf;
}

uint64_t md_config_mem_mib(const struct md_config *cfg)
{
	return cfg->memory.size_bytes > 0 ? (uint64_t)cfg->memory.size_bytes >> 20 : 0;
}
