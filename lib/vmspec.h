/* What a VMM needs to boot one VM: the VM config merged with metald-net's answer (tap, MAC, ip=, limits). */
#ifndef METALD_VMSPEC_H
#define METALD_VMSPEC_H

#include <stdbool.h>
#include <stddef.h>
#include <jansson.h>
#include "config.h"
#include "err.h"

struct md_vm_nic {
	char id[65];         /* API interface id: config id, else "eth<i>" */
	const char *tap;     /* host tap name */
	const char *mac;     /* guest MAC or NULL (VMM picks one) */
	json_t *rx_limiter;  /* Firecracker RateLimiter objects (owned), or NULL */
	json_t *tx_limiter;
};

struct md_vm_spec {
	const struct md_config *cfg; /* borrowed */
	char *kernel_args;           /* config kernel_args (or the default) + the network's kernel_args */
	size_t n_nics;
	struct md_vm_nic *nics;
	json_t *net;                 /* the metald-net object (owned reference) or NULL */
};

/* The kernel arguments used when the config gives none. */
#define MD_DEFAULT_KERNEL_ARGS "console=ttyS0 reboot=k panic=1"

/*
 * Merge. net may be NULL. With net, the first interface takes net's tap, mac and rate_limit
 * (rx/tx, already in Firecracker's RateLimiter form), and net's kernel_args are appended; a config
 * without network[] gets one interface "eth0" from net. Without net, every config interface needs
 * a tap_device. Config rate limits {bandwidth B/s, refill_time ms, burst B} become token buckets
 * {size = bandwidth * refill_time / 1000, refill_time (default 1000), one_time_burst = burst}.
 */
int md_vm_spec_build(struct md_vm_spec *s, const struct md_config *cfg, json_t *net, md_err **err);
void md_vm_spec_free(struct md_vm_spec *s);

/* A Firecracker RateLimiter object for a config RateLimit, or NULL when it limits nothing. */
json_t *md_rate_limit_to_fc(const struct md_cfg_rate_limit *rl);

#endif
