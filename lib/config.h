/* The VM config: the original metald's CreateVmRequest / VmConfig JSON, parsed, validated, rendered. */
#ifndef METALD_CONFIG_H
#define METALD_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <jansson.h>
#include "err.h"

/*
 * Input is protojson, as the original's Connect API accepted it:
 *  - field names in snake_case (`size_bytes`) or lowerCamelCase (`sizeBytes`); both spellings of one
 *    field in one object is an error, as in protojson;
 *  - int32/int64 as a JSON number (integral) or a string of decimal digits ("536870912");
 *  - enums by name ("NETWORK_MODE_DUAL_STACK") or number (1);
 *  - null means "not set"; unknown fields are ignored; a wrong type is an error.
 * The document is either a CreateVmRequest ({"vm_id":..,"config":{..},"customer_id":..}) or a bare
 * VmConfig; a top-level `config`, `vm_id`/`vmId` or `customer_id`/`customerId` key means the former.
 *
 * Every error is exit class 2 and names the field by its snake_case path, VmConfig fields under
 * "config.": "config.memory.size_bytes: must be > 0", "config.storage[1].path: is required",
 * "config.network[0].rx_rate_limit.bandwidth: expected an integer, got string `x`".
 *
 * Validation (md_config_validate, run by the parse functions) follows the original's
 * validateVMConfig in the same order, then checks what the original stored but ignored and metald
 * uses: ids, MACs, addresses, rate limits, at most one root device.
 */

enum md_net_mode {
	MD_NET_MODE_UNSPECIFIED = 0,
	MD_NET_MODE_DUAL_STACK = 1,
	MD_NET_MODE_IPV4_ONLY = 2,
	MD_NET_MODE_IPV6_ONLY = 3,
};

/* map<string,string>: pairs in key order (sorted when parsed, so rendering is stable). */
struct md_kv {
	char *key;
	char *value;
};
struct md_map {
	size_t n;
	struct md_kv *items;
};
/* The value for key, or NULL. */
const char *md_map_get(const struct md_map *m, const char *key);

/* RateLimit: bandwidth in bytes/s, refill_time in ms, burst in bytes (one-time extra). */
struct md_cfg_rate_limit {
	bool set; /* the message was present */
	int64_t bandwidth;
	int64_t refill_time;
	int64_t burst;
};

struct md_cfg_storage {
	char *id;   /* may be NULL: md_config_drive_id() derives one */
	char *path; /* required */
	bool read_only;
	bool is_root_device;
	char *interface_type; /* free text, e.g. "virtio-blk"; NULL if unset */
	struct md_map options;
};

struct md_cfg_ipv4 {
	bool set;
	char *address; /* "10.0.1.100" or "10.0.1.100/24" */
	char *netmask; /* "255.255.255.0" */
	char *gateway;
	char **dns_servers;
	size_t n_dns_servers;
	bool dhcp;
};

struct md_cfg_ipv6 {
	bool set;
	char *address; /* "fd00::5" or "fd00::5/64" */
	int32_t prefix_length; /* 0..128, 0 = unset */
	char *gateway;
	char **dns_servers;
	size_t n_dns_servers;
	bool slaac;
	bool privacy_extensions;
	char *link_local;
};

struct md_cfg_net {
	char *id;
	char *mac_address; /* validated unicast MAC, or NULL */
	char *tap_device;
	char *interface_type;
	struct md_map options;
	struct md_cfg_ipv4 ipv4;
	struct md_cfg_ipv6 ipv6;
	enum md_net_mode mode;
	struct md_cfg_rate_limit rx_rate_limit;
	struct md_cfg_rate_limit tx_rate_limit;
};

struct md_config {
	/* CreateVmRequest fields (NULL for a bare VmConfig). */
	char *vm_id;
	char *customer_id;

	bool has_cpu, has_memory, has_boot, has_console; /* the messages were present */
	struct {
		int32_t vcpu_count;
		int32_t max_vcpu_count;
		struct {
			int32_t sockets, cores_per_socket, threads_per_core;
		} topology;
		struct md_map features;
	} cpu;
	struct {
		int64_t size_bytes;
		bool hotplug_enabled;
		int64_t max_size_bytes;
		struct md_map backing;
	} memory;
	struct {
		char *kernel_path;
		char *initrd_path;
		char *kernel_args;
		struct md_map boot_options;
	} boot;
	struct md_cfg_storage *storage;
	size_t n_storage;
	struct md_cfg_net *network;
	size_t n_network;
	struct {
		bool enabled;
		char *output;
		char *input;
		char *console_type;
	} console;
	struct md_map metadata;
};

/* Parse and validate. *out is a new config (free with md_config_free). Returns 0 or -1 with *err
 * (class 2, or the file's class for md_config_parse_file: 3 if it does not exist). */
int md_config_parse(json_t *doc, struct md_config **out, md_err **err);
int md_config_parse_string(const char *text, struct md_config **out, md_err **err);
/* path "-" reads stdin. */
int md_config_parse_file(const char *path, struct md_config **out, md_err **err);

/* The checks the parse functions run (exposed for configs built in code). */
int md_config_validate(const struct md_config *cfg, md_err **err);

void md_config_free(struct md_config *cfg);

/* Render flags. Default: snake_case names, int64 as JSON numbers, enums by name, zero/false/empty
 * fields omitted, the VmConfig alone. */
enum {
	MD_CONFIG_JSON_CAMEL = 1 << 0,   /* the original's protojson output: lowerCamelCase, int64 as strings */
	MD_CONFIG_JSON_REQUEST = 1 << 1, /* wrap as CreateVmRequest {vm_id, config, customer_id} */
};
/* A new JSON object; parsing it again gives an equal config. Never fails (aborts on OOM). */
json_t *md_config_to_json(const struct md_config *cfg, int flags);

/* Helpers for drivers. */
/* Index of the root disk: the one flagged is_root_device, else 0 (as the original does); -1 when
 * there is no storage. */
int md_config_root_index(const struct md_config *cfg);
/* The drive id for storage[i]: its id, else "rootfs" for the root disk, else "drive_<i>". */
const char *md_config_drive_id(const struct md_config *cfg, size_t i, char *buf, size_t len);
/* memory.size_bytes in MiB, rounded down (Firecracker's mem_size_mib). */
uint64_t md_config_mem_mib(const struct md_config *cfg);

const char *md_net_mode_name(enum md_net_mode m);

#endif
