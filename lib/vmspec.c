/* The boot spec both VMM drivers consume: config + metald-net JSON, merged and checked once. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "state.h"
#include "vmspec.h"

json_t *md_rate_limit_to_fc(const struct md_cfg_rate_limit *rl)
{
	int64_t refill, size;

	if (!rl->set || (rl->bandwidth == 0 && rl->burst == 0))
		return NULL;
	refill = rl->refill_time > 0 ? rl->refill_time : 1000;
	/* tokens per refill period; overflow-safe for any sane bandwidth */
	size = rl->bandwidth > INT64_MAX / refill ? INT64_MAX / 1000 : rl->bandwidth * refill / 1000;
	json_t *tb = json_pack("{s:I,s:I}", "size", (json_int_t)size, "refill_time", (json_int_t)refill);
	if (rl->burst)
		json_object_set_new(tb, "one_time_burst", json_integer(rl->burst));
	return json_pack("{s:o}", "bandwidth", tb);
}

static const char *net_str(json_t *net, const char *key)
{
	json_t *v = json_object_get(net, key);
	return json_is_string(v) && json_string_length(v) ? json_string_value(v) : NULL;
}

int md_vm_spec_build(struct md_vm_spec *s, const struct md_config *cfg, json_t *net, md_err **err)
{
	const char *base = cfg->boot.kernel_args ? cfg->boot.kernel_args : MD_DEFAULT_KERNEL_ARGS;
	const char *nargs = net ? net_str(net, "kernel_args") : NULL;
	size_t n = cfg->n_network ? cfg->n_network : (net ? 1 : 0);

	memset(s, 0, sizeof(*s));
	s->cfg = cfg;
	if (net && !json_is_object(net))
		return md_usage(err, "net: expected a JSON object (metald-net create --json)");
	if (net && net_str(net, "tap") == NULL)
		return md_usage(err, "net: `tap` is missing (expected metald-net create --json output)");
	s->kernel_args = nargs ? md_strdup_printf("%s %s", base, nargs) : strdup(base);
	s->net = net ? json_incref(net) : NULL;
	s->nics = calloc(n + 1, sizeof(*s->nics));
	if (s->nics == NULL || s->kernel_args == NULL)
		abort();
	s->n_nics = n;
	for (size_t i = 0; i < n; i++) {
		struct md_vm_nic *nic = &s->nics[i];
		const struct md_cfg_net *c = i < cfg->n_network ? &cfg->network[i] : NULL;

		if (c && c->id)
			snprintf(nic->id, sizeof(nic->id), "%s", c->id);
		else
			snprintf(nic->id, sizeof(nic->id), "eth%zu", i);
		nic->tap = c ? c->tap_device : NULL;
		nic->mac = c ? c->mac_address : NULL;
		if (c) {
			nic->rx_limiter = md_rate_limit_to_fc(&c->rx_rate_limit);
			nic->tx_limiter = md_rate_limit_to_fc(&c->tx_rate_limit);
		}
		if (i == 0 && net) {
			json_t *rl = json_object_get(net, "rate_limit");
			nic->tap = net_str(net, "tap");
			if (net_str(net, "mac"))
				nic->mac = net_str(net, "mac");
			if (json_is_object(json_object_get(rl, "rx"))) {
				json_decref(nic->rx_limiter);
				nic->rx_limiter = json_incref(json_object_get(rl, "rx"));
			}
			if (json_is_object(json_object_get(rl, "tx"))) {
				json_decref(nic->tx_limiter);
				nic->tx_limiter = json_incref(json_object_get(rl, "tx"));
			}
		}
		if (nic->tap == NULL) {
			md_usage(err, "config.network[%zu].tap_device: is required (or pass --net with metald-net's JSON)", i);
			md_vm_spec_free(s);
			return -1;
		}
	}
	return 0;
}

void md_vm_spec_free(struct md_vm_spec *s)
{
	for (size_t i = 0; i < s->n_nics; i++) {
		json_decref(s->nics[i].rx_limiter);
		json_decref(s->nics[i].tx_limiter);
	}
	free(s->nics);
	free(s->kernel_args);
	json_decref(s->net);
	memset(s, 0, sizeof(*s));
}
