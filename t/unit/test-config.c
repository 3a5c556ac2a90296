/* Unit tests of lib/config.c: protojson forms, validation messages, rendering and round trips. */
#include <string.h>
#include <unistd.h>
#include "../../lib/config.h"
#include "tap.h"

#define BASE_CPU "\"cpu\":{\"vcpu_count\":2}"
#define BASE_MEM "\"memory\":{\"size_bytes\":134217728}"
#define BASE_BOOT "\"boot\":{\"kernel_path\":\"/k\"}"
#define BASE_STOR "\"storage\":[{\"path\":\"/r.ext4\"}]"
#define BASE BASE_CPU "," BASE_MEM "," BASE_BOOT "," BASE_STOR

static struct md_config *good(const char *text, const char *what)
{
	struct md_config *cfg = NULL;
	md_err *err = NULL;
	int r = md_config_parse_string(text, &cfg, &err);

	ok(r == 0 && cfg, "accepts %s%s%s", what, err ? ": " : "", err ? err->msg : "");
	md_err_free(&err);
	return cfg;
}

static void bad(const char *text, const char *msg)
{
	struct md_config *cfg = NULL;
	md_err *err = NULL;
	int r = md_config_parse_string(text, &cfg, &err);

	ok(r < 0 && cfg == NULL && err && err->code == MD_EXIT_USAGE, "rejects with class 2: %s", msg);
	if (err)
		is_str(err->msg, msg, "message is `%s`", msg);
	else
		ok(0, "no error for `%s`", text);
	md_err_free(&err);
	md_config_free(cfg);
}

static void minimal(void)
{
	struct md_config *cfg = good("{" BASE "}", "the minimal VmConfig");
	char buf[32];

	if (!cfg)
		return;
	is_int(cfg->cpu.vcpu_count, 2, "vcpu_count");
	is_int(cfg->memory.size_bytes, 134217728, "size_bytes");
	is_int(md_config_mem_mib(cfg), 128, "mem MiB");
	is_str(cfg->boot.kernel_path, "/k", "kernel_path");
	ok(cfg->boot.initrd_path == NULL && cfg->boot.kernel_args == NULL, "unset strings are NULL");
	is_int(cfg->n_storage, 1, "one disk");
	is_int(md_config_root_index(cfg), 0, "index 0 is root when none is flagged");
	is_str(md_config_drive_id(cfg, 0, buf, sizeof(buf)), "rootfs", "root drive id defaults to rootfs");
	ok(cfg->vm_id == NULL && cfg->customer_id == NULL, "bare VmConfig has no request fields");
	ok(cfg->n_network == 0 && !cfg->has_console, "no network, no console");
	md_config_free(cfg);
}

static void full(void)
{
	const char *text =
		"{\"vm_id\":\"ignored\",\"customer_id\":\"c1\",\"config\":{"
		"\"cpu\":{\"vcpu_count\":\"2\",\"max_vcpu_count\":4,\"topology\":{\"sockets\":1,\"cores_per_socket\":2,"
		"\"threads_per_core\":1},\"features\":{\"b\":\"2\",\"a\":\"1\"}},"
		"\"memory\":{\"size_bytes\":\"536870912\",\"hotplug_enabled\":true,\"max_size_bytes\":1073741824,"
		"\"backing\":{\"type\":\"anon\"}},"
		"\"boot\":{\"kernel_path\":\"/vmlinuz\",\"initrd_path\":\"/initrd\",\"kernel_args\":\"console=ttyS0\","
		"\"boot_options\":{\"x\":\"y\"}},"
		"\"storage\":[{\"id\":\"data\",\"path\":\"/d.img\",\"read_only\":true},"
		"{\"id\":\"root\",\"path\":\"/r.ext4\",\"is_root_device\":true,\"interface_type\":\"virtio-blk\","
		"\"options\":{\"docker_image\":\"nginx\"}},{\"path\":\"/e.img\"}],"
		"\"network\":[{\"id\":\"eth0\",\"mac_address\":\"02:00:00:00:00:01\",\"tap_device\":\"tap0\","
		"\"interface_type\":\"virtio-net\",\"mode\":\"NETWORK_MODE_DUAL_STACK\","
		"\"ipv4_config\":{\"address\":\"10.0.1.100\",\"netmask\":\"255.255.255.0\",\"gateway\":\"10.0.1.1\","
		"\"dns_servers\":[\"10.0.1.1\",\"8.8.8.8\"],\"dhcp\":false},"
		"\"ipv6_config\":{\"address\":\"fd00::5\",\"prefix_length\":64,\"gateway\":\"fd00::1\",\"slaac\":true,"
		"\"privacy_extensions\":true,\"link_local\":\"fe80::1\"},"
		"\"rx_rate_limit\":{\"bandwidth\":\"1048576\",\"refill_time\":1000,\"burst\":4096},"
		"\"tx_rate_limit\":{\"bandwidth\":2097152}}],"
		"\"console\":{\"enabled\":true,\"output\":\"/tmp/c.log\",\"console_type\":\"serial\"},"
		"\"metadata\":{\"tenant_id\":\"t1\",\"docker_image\":\"nginx\"},"
		"\"someFutureField\":{\"x\":[1,2,3]}}}";
	struct md_config *cfg = good(text, "a full CreateVmRequest");
	char buf[32];

	if (!cfg)
		return;
	is_str(cfg->vm_id, "ignored", "vm_id kept");
	is_str(cfg->customer_id, "c1", "customer_id");
	is_int(cfg->cpu.vcpu_count, 2, "int32 from a string");
	is_int(cfg->cpu.max_vcpu_count, 4, "max_vcpu_count");
	is_int(cfg->cpu.topology.cores_per_socket, 2, "topology");
	is_int(cfg->cpu.features.n, 2, "features map");
	is_str(cfg->cpu.features.items[0].key, "a", "maps are sorted by key");
	is_str(md_map_get(&cfg->cpu.features, "b"), "2", "md_map_get");
	ok(md_map_get(&cfg->cpu.features, "c") == NULL, "md_map_get of an absent key");
	is_int(cfg->memory.size_bytes, 536870912, "int64 from a string");
	ok(cfg->memory.hotplug_enabled, "hotplug_enabled");
	is_int(cfg->memory.max_size_bytes, 1073741824, "max_size_bytes");
	is_str(md_map_get(&cfg->memory.backing, "type"), "anon", "backing");
	is_str(cfg->boot.initrd_path, "/initrd", "initrd_path");
	is_str(cfg->boot.kernel_args, "console=ttyS0", "kernel_args");
	is_int(cfg->n_storage, 3, "three disks");
	is_int(md_config_root_index(cfg), 1, "the flagged disk is root");
	is_str(md_config_drive_id(cfg, 0, buf, sizeof(buf)), "data", "explicit drive id");
	is_str(md_config_drive_id(cfg, 2, buf, sizeof(buf)), "drive_2", "derived drive id");
	ok(cfg->storage[0].read_only && !cfg->storage[1].read_only, "read_only");
	is_str(cfg->storage[1].interface_type, "virtio-blk", "interface_type");
	is_str(md_map_get(&cfg->storage[1].options, "docker_image"), "nginx", "storage options");
	is_int(cfg->n_network, 1, "one NIC");
	is_str(cfg->network[0].mac_address, "02:00:00:00:00:01", "mac");
	is_str(cfg->network[0].tap_device, "tap0", "tap");
	is_int(cfg->network[0].mode, MD_NET_MODE_DUAL_STACK, "enum by name");
	ok(cfg->network[0].ipv4.set && !cfg->network[0].ipv4.dhcp, "ipv4_config");
	is_int(cfg->network[0].ipv4.n_dns_servers, 2, "dns servers");
	is_str(cfg->network[0].ipv4.dns_servers[1], "8.8.8.8", "dns server 2");
	is_int(cfg->network[0].ipv6.prefix_length, 64, "prefix_length");
	ok(cfg->network[0].ipv6.slaac && cfg->network[0].ipv6.privacy_extensions, "ipv6 bools");
	is_str(cfg->network[0].ipv6.link_local, "fe80::1", "link_local");
	ok(cfg->network[0].rx_rate_limit.set, "rx limit set");
	is_int(cfg->network[0].rx_rate_limit.bandwidth, 1048576, "rx bandwidth");
	is_int(cfg->network[0].rx_rate_limit.refill_time, 1000, "rx refill");
	is_int(cfg->network[0].rx_rate_limit.burst, 4096, "rx burst");
	is_int(cfg->network[0].tx_rate_limit.bandwidth, 2097152, "tx bandwidth");
	ok(cfg->has_console && cfg->console.enabled, "console enabled");
	is_str(cfg->console.output, "/tmp/c.log", "console output");
	is_str(md_map_get(&cfg->metadata, "tenant_id"), "t1", "metadata");

	/* round trips: snake, camel, request */
	int flags[] = { 0, MD_CONFIG_JSON_CAMEL, MD_CONFIG_JSON_REQUEST, MD_CONFIG_JSON_CAMEL | MD_CONFIG_JSON_REQUEST };
	json_t *ref = md_config_to_json(cfg, 0);
	for (size_t i = 0; i < 4; i++) {
		json_t *j = md_config_to_json(cfg, flags[i]);
		struct md_config *back = NULL;
		md_err *err = NULL;
		int r = md_config_parse(j, &back, &err);
		ok(r == 0, "render flags %d parses again%s%s", flags[i], err ? ": " : "", err ? err->msg : "");
		if (back) {
			json_t *again = md_config_to_json(back, 0);
			ok(json_equal(again, ref), "render flags %d round-trips to an equal config", flags[i]);
			if (flags[i] & MD_CONFIG_JSON_REQUEST)
				is_str(back->customer_id, "c1", "request round trip keeps customer_id");
			json_decref(again);
		}
		md_config_free(back);
		md_err_free(&err);
		json_decref(j);
	}
	json_t *cam = md_config_to_json(cfg, MD_CONFIG_JSON_CAMEL);
	json_t *mem = json_object_get(cam, "memory");
	ok(json_is_string(json_object_get(mem, "sizeBytes")), "camel output: int64 as a string, lowerCamelCase");
	is_str(json_string_value(json_object_get(mem, "sizeBytes")), "536870912", "camel sizeBytes");
	ok(json_object_get(mem, "size_bytes") == NULL, "camel output has no snake names");
	json_t *n0 = json_array_get(json_object_get(cam, "network"), 0);
	is_str(json_string_value(json_object_get(n0, "mode")), "NETWORK_MODE_DUAL_STACK", "enum rendered by name");
	ok(json_is_object(json_object_get(n0, "ipv4Config")), "ipv4Config");
	json_decref(cam);
	json_t *snake = md_config_to_json(cfg, 0);
	ok(json_is_integer(json_object_get(json_object_get(snake, "memory"), "size_bytes")),
	   "snake output: int64 as a number");
	ok(json_object_get(json_array_get(json_object_get(snake, "storage"), 0), "is_root_device") == NULL,
	   "false fields omitted");
	ok(json_object_get(snake, "someFutureField") == NULL, "unknown fields dropped");
	json_decref(snake);
	json_decref(ref);
	md_config_free(cfg);
}

static void camel_input(void)
{
	struct md_config *cfg = good("{\"cpu\":{\"vcpuCount\":1,\"maxVcpuCount\":1},\"memory\":{\"sizeBytes\":1048576},"
				     "\"boot\":{\"kernelPath\":\"/k\",\"kernelArgs\":\"a=b\"},"
				     "\"storage\":[{\"path\":\"/r\",\"isRootDevice\":true,\"readOnly\":true}],"
				     "\"network\":[{\"macAddress\":\"02:aa:bb:cc:dd:ee\",\"tapDevice\":\"t0\",\"mode\":2,"
				     "\"ipv4Config\":{\"address\":\"10.1.2.3/24\"},\"rxRateLimit\":{\"refillTime\":5}}]}",
				     "lowerCamelCase names and an enum number");
	if (!cfg)
		return;
	is_int(cfg->cpu.vcpu_count, 1, "vcpuCount");
	is_str(cfg->boot.kernel_args, "a=b", "kernelArgs");
	ok(cfg->storage[0].is_root_device && cfg->storage[0].read_only, "isRootDevice, readOnly");
	is_int(cfg->network[0].mode, MD_NET_MODE_IPV4_ONLY, "enum by number");
	is_str(cfg->network[0].ipv4.address, "10.1.2.3/24", "address with a prefix");
	is_int(cfg->network[0].rx_rate_limit.refill_time, 5, "refillTime");
	md_config_free(cfg);

	cfg = good("{\"cpu\":{\"vcpu_count\":1.0},\"memory\":{\"size_bytes\":1e9},\"boot\":{\"kernel_path\":\"/k\","
		   "\"initrd_path\":null},\"storage\":[{\"path\":\"/r\",\"id\":null}],\"console\":null,\"network\":null}",
		   "integral reals and nulls");
	if (cfg) {
		is_int(cfg->memory.size_bytes, 1000000000, "1e9");
		ok(!cfg->has_console && cfg->n_network == 0, "null message and list are unset");
		md_config_free(cfg);
	}
	cfg = good("{" BASE ",\"network\":[{\"mode\":\"NETWORK_MODE_UNSPECIFIED\"}],\"boot_extra\":1}",
		   "an unspecified mode and an unknown field");
	md_config_free(cfg);
}

static void validation(void)
{
	/* the original's order and checks */
	bad("{}", "config.cpu: is required");
	bad("{\"cpu\":{\"vcpu_count\":1}}", "config.memory: is required");
	bad("{" BASE_CPU "," BASE_MEM "}", "config.boot: is required");
	bad("{\"cpu\":{}," BASE_MEM "," BASE_BOOT "," BASE_STOR "}", "config.cpu.vcpu_count: must be > 0");
	bad("{\"cpu\":{\"vcpu_count\":-1}," BASE_MEM "," BASE_BOOT "," BASE_STOR "}", "config.cpu.vcpu_count: must be > 0");
	bad("{\"cpu\":{\"vcpu_count\":4,\"max_vcpu_count\":2}," BASE_MEM "," BASE_BOOT "," BASE_STOR "}",
	    "config.cpu.max_vcpu_count: must be >= vcpu_count (4)");
	bad("{" BASE_CPU ",\"memory\":{\"size_bytes\":0}," BASE_BOOT "," BASE_STOR "}", "config.memory.size_bytes: must be > 0");
	bad("{" BASE_CPU ",\"memory\":{}," BASE_BOOT "," BASE_STOR "}", "config.memory.size_bytes: must be > 0");
	bad("{" BASE_CPU "," BASE_MEM ",\"boot\":{}," BASE_STOR "}", "config.boot.kernel_path: is required");
	bad("{" BASE_CPU "," BASE_MEM ",\"boot\":{\"kernel_path\":\"\"}," BASE_STOR "}",
	    "config.boot.kernel_path: is required");
	bad("{" BASE_CPU "," BASE_MEM "," BASE_BOOT "}", "config.storage: at least one storage device is required");
	bad("{" BASE_CPU "," BASE_MEM "," BASE_BOOT ",\"storage\":[]}", "config.storage: at least one storage device is required");
	{
		struct md_config *c = NULL;
		md_err *e = NULL;
		ok(md_config_parse_string("{" BASE_CPU "," BASE_MEM ",\"boot\":{\"kernel_path\":\"/k\",\"initrd_path\":\"/i\"}}",
					  &c, &e) == 0,
		   "no storage is fine when an initramfs is the root filesystem");
		md_config_free(c);
		md_err_free(&e);
	}
	bad("{" BASE_CPU "," BASE_MEM "," BASE_BOOT ",\"storage\":[{\"path\":\"/a\"},{\"id\":\"x\"}]}",
	    "config.storage[1].path: is required");
	/* metald's own */
	bad("{" BASE_CPU ",\"memory\":{\"size_bytes\":1000}," BASE_BOOT "," BASE_STOR "}",
	    "config.memory.size_bytes: must be at least 1 MiB (1048576), got 1000");
	bad("{" BASE_CPU ",\"memory\":{\"size_bytes\":2097152,\"max_size_bytes\":1048576}," BASE_BOOT "," BASE_STOR "}",
	    "config.memory.max_size_bytes: must be 0 or >= size_bytes");
	bad("{" BASE_CPU "," BASE_MEM "," BASE_BOOT ",\"storage\":[{\"path\":\"/a\",\"is_root_device\":true},"
	    "{\"path\":\"/b\",\"is_root_device\":true}]}",
	    "config.storage[1].is_root_device: only one root device is allowed");
	bad("{" BASE_CPU "," BASE_MEM "," BASE_BOOT ",\"storage\":[{\"path\":\"/a\",\"id\":\"x-y\"}]}",
	    "config.storage[0].id: `x-y` must be 1-64 characters of [A-Za-z0-9_]");
	bad("{" BASE_CPU "," BASE_MEM "," BASE_BOOT ",\"storage\":[{\"path\":\"/a\",\"id\":\"d\"},{\"path\":\"/b\",\"id\":\"d\"}]}",
	    "config.storage[1].id: `d` is used twice");
	bad("{" BASE_CPU "," BASE_MEM "," BASE_BOOT ",\"storage\":[{\"path\":\"/a\"},{\"path\":\"/b\",\"id\":\"rootfs\"}]}",
	    "config.storage[1].id: `rootfs` is used twice");
	bad("{" BASE ",\"network\":[{\"id\":\"../x\"}]}", "config.network[0].id: `../x` must be 1-64 characters of [A-Za-z0-9_]");
	bad("{" BASE ",\"network\":[{\"id\":\"a\"},{\"id\":\"a\"}]}", "config.network[1].id: `a` is used twice");
	bad("{" BASE ",\"network\":[{\"mac_address\":\"01:00:00:00:00:01\"}]}",
	    "config.network[0].mac_address: `01:00:00:00:00:01` is not a unicast MAC address");
	bad("{" BASE ",\"network\":[{\"mac_address\":\"zz\"}]}", "config.network[0].mac_address: `zz` is not a unicast MAC address");
	bad("{" BASE ",\"network\":[{\"tap_device\":\"a-very-long-tap-name\"}]}",
	    "config.network[0].tap_device: `a-very-long-tap-name` is not a valid interface name (max 15 bytes, no '/')");
	bad("{" BASE ",\"network\":[{\"rx_rate_limit\":{\"bandwidth\":-1}}]}",
	    "config.network[0].rx_rate_limit.bandwidth: must be >= 0");
	bad("{" BASE ",\"network\":[{\"tx_rate_limit\":{\"refill_time\":\"-5\"}}]}",
	    "config.network[0].tx_rate_limit.refill_time: must be >= 0");
	bad("{" BASE ",\"network\":[{\"ipv4_config\":{\"address\":\"fd00::1\"}}]}",
	    "config.network[0].ipv4_config.address: `fd00::1` is not an IPv4 address");
	bad("{" BASE ",\"network\":[{\"ipv4_config\":{\"gateway\":\"10.0.0.300\"}}]}",
	    "config.network[0].ipv4_config.gateway: `10.0.0.300` is not an IPv4 address");
	bad("{" BASE ",\"network\":[{\"ipv6_config\":{\"address\":\"10.0.0.1\"}}]}",
	    "config.network[0].ipv6_config.address: `10.0.0.1` is not an IPv6 address");
	bad("{" BASE ",\"network\":[{\"ipv6_config\":{\"prefix_length\":129}}]}",
	    "config.network[0].ipv6_config.prefix_length: must be between 0 and 128");
}

static void types(void)
{
	bad("[]", "config: expected a JSON object, got array");
	bad("{\"cpu\":[]}", "config.cpu: expected an object, got array");
	bad("{\"cpu\":{\"vcpu_count\":\"two\"}}", "config.cpu.vcpu_count: expected an int32, got string `two`");
	bad("{\"cpu\":{\"vcpu_count\":1.5}}", "config.cpu.vcpu_count: expected an int32, got 1.5");
	bad("{\"cpu\":{\"vcpu_count\":true}}", "config.cpu.vcpu_count: expected an int32, got boolean");
	bad("{\"cpu\":{\"vcpu_count\":4294967296}}", "config.cpu.vcpu_count: 4294967296 is out of range for an int32");
	bad("{\"cpu\":{\"vcpu_count\":\"\"}}", "config.cpu.vcpu_count: expected an int32, got string ``");
	bad("{\"cpu\":{\"vcpu_count\":\" 1\"}}", "config.cpu.vcpu_count: expected an int32, got string ` 1`");
	bad("{\"cpu\":{\"vcpu_count\":1,\"vcpuCount\":1}}",
	    "config.cpu.vcpu_count: given twice (as `vcpu_count` and `vcpuCount`)");
	bad("{" BASE_CPU ",\"memory\":{\"size_bytes\":\"99999999999999999999\"}}",
	    "config.memory.size_bytes: `99999999999999999999` is out of range for an int64");
	bad("{" BASE_CPU ",\"memory\":{\"size_bytes\":\"1e9\"}}",
	    "config.memory.size_bytes: expected an int64, got string `1e9`");
	bad("{" BASE_CPU ",\"memory\":{\"size_bytes\":1,\"hotplug_enabled\":\"true\"}}",
	    "config.memory.hotplug_enabled: expected true or false, got string `true`");
	bad("{" BASE_CPU "," BASE_MEM ",\"boot\":{\"kernel_path\":7}}", "config.boot.kernel_path: expected a string, got number");
	bad("{" BASE_CPU "," BASE_MEM ",\"boot\":{\"kernel_path\":\"/k\",\"boot_options\":{\"a\":1}}}",
	    "config.boot.boot_options[\"a\"]: expected a string, got number");
	bad("{" BASE_CPU "," BASE_MEM "," BASE_BOOT ",\"storage\":{}}", "config.storage: expected an array, got object");
	bad("{" BASE_CPU "," BASE_MEM "," BASE_BOOT ",\"storage\":[\"/r\"]}", "config.storage[0]: expected an object, got string");
	bad("{" BASE_CPU "," BASE_MEM "," BASE_BOOT ",\"storage\":[{\"path\":\"/r\",\"read_only\":1}]}",
	    "config.storage[0].read_only: expected true or false, got number");
	bad("{" BASE ",\"network\":[{\"mode\":\"DUAL_STACK\"}]}",
	    "config.network[0].mode: unknown value `DUAL_STACK` (NETWORK_MODE_DUAL_STACK, NETWORK_MODE_IPV4_ONLY, "
	    "NETWORK_MODE_IPV6_ONLY or 0..3)");
	bad("{" BASE ",\"network\":[{\"mode\":7}]}", "config.network[0].mode: unknown value 7 (0..3)");
	bad("{" BASE ",\"network\":[{\"mode\":true}]}", "config.network[0].mode: expected an enum name or number, got boolean");
	bad("{" BASE ",\"network\":[{\"ipv4_config\":{\"dns_servers\":\"8.8.8.8\"}}]}",
	    "config.network[0].ipv4_config.dns_servers: expected an array, got string `8.8.8.8`");
	bad("{" BASE ",\"network\":[{\"ipv6_config\":{\"dns_servers\":[1]}}]}",
	    "config.network[0].ipv6_config.dns_servers[0]: expected a string, got number");
	bad("{" BASE ",\"network\":[{\"rx_rate_limit\":{\"burst\":{}}}]}",
	    "config.network[0].rx_rate_limit.burst: expected an int64, got object");
	bad("{" BASE ",\"metadata\":[]}", "config.metadata: expected an object, got array");
	bad("{" BASE ",\"console\":{\"enabled\":\"yes\"}}", "config.console.enabled: expected true or false, got string `yes`");
	/* request-level */
	bad("{\"vm_id\":\"x\"}", "config: is required (vm config is required)");
	bad("{\"config\":[]}", "config: expected an object, got array");
	bad("{\"customer_id\":5,\"config\":{}}", "customer_id: expected a string, got number");
	bad("{\"customerId\":\"a\",\"customer_id\":\"b\",\"config\":{}}",
	    "customer_id: given twice (as `customer_id` and `customerId`)");
	bad("{\"config\":{\"cpu\":{\"vcpu_count\":0}}}", "config.memory: is required");
	/* JSON syntax */
	bad("{\"cpu\":", "config: invalid JSON at line 1 column 7: unexpected token near end of file");
	bad("{\"a\":1,\"a\":2}", "config: invalid JSON at line 1 column 10: duplicate object key near '\"a\"'");
}

static void files(void)
{
	struct md_config *cfg = NULL;
	md_err *err = NULL;
	char path[] = "/tmp/test-config-XXXXXX";
	int fd;

	ok(md_config_parse_file("/nonexistent/cfg.json", &cfg, &err) < 0 && err && err->code == MD_EXIT_NOTFOUND,
	   "a missing file is class 3: %s", err ? err->msg : "");
	md_err_free(&err);
	fd = mkstemp(path);
	if (fd >= 0) {
		const char *t = "{" BASE_CPU "," BASE_MEM "," BASE_BOOT ",\"storage\":[{}]}";
		ok(write(fd, t, strlen(t)) == (ssize_t)strlen(t), "wrote a bad config");
		close(fd);
		ok(md_config_parse_file(path, &cfg, &err) < 0 && err && err->code == MD_EXIT_USAGE, "bad file is class 2");
		if (err)
			like(err->msg, "`: config.storage[0].path: is required", "file error names the file and the field");
		md_err_free(&err);
		unlink(path);
	}
}

static void helpers(void)
{
	struct md_config c = { 0 };
	ok(md_config_root_index(&c) == -1, "no storage: root index -1");
	is_str(md_net_mode_name(MD_NET_MODE_IPV6_ONLY), "NETWORK_MODE_IPV6_ONLY", "mode name");
	is_str(md_net_mode_name((enum md_net_mode)42), "NETWORK_MODE_UNSPECIFIED", "out of range mode name");
	md_config_free(NULL);
	ok(1, "md_config_free(NULL) is harmless");
}

int main(void)
{
	minimal();
	full();
	camel_input();
	validation();
	types();
	files();
	helpers();
	return done_testing();
}
