/* The Firecracker driver: boot sequence and control over its REST API (libcurl on the unix socket). */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

#include "cleanup.h"
#include "http.h"
#include "log.h"
#include "parse.h"
#include "state.h"
#include "unixsock.h"
#include "vmm-firecracker.h"

struct md_fc {
	struct md_http *http;
	char *sock;
	char *version;
	pid_t pid;
	uint64_t deadline;
};

static uint64_t remaining(const struct md_fc *fc)
{
	uint64_t now = md_now_mono_ns();
	return fc->deadline > now ? fc->deadline - now : 1000000; /* 1 ms: fail fast, but do try */
}

/* The fault_message of an error body, or the body itself. */
static char *fault_of(const struct md_http_resp *r)
{
	_cleanup_json_ json_t *j = json_loads(r->body, 0, NULL);
	json_t *f = json_object_get(j, "fault_message");

	if (json_is_string(f))
		return strdup(json_string_value(f));
	return strdup(r->len ? r->body : "(empty body)");
}

/*
 * One request. body_json is consumed. want: the expected status (204 or 200). On success *out
 * (if given) receives the parsed JSON body of a 200.
 */
static int call(struct md_fc *fc, const char *method, const char *path, json_t *body_json, long want, json_t **out,
		md_err **err)
{
	_cleanup_free_ char *body = NULL;
	struct md_http_resp r = { 0 };

	if (body_json) {
		body = json_dumps(body_json, JSON_COMPACT);
		json_decref(body_json);
	}
	md_http_set_timeout(fc->http, remaining(fc));
	if (md_http_request(fc->http, method, path, body, &r, err) < 0)
		return -1;
	md_debug("%s %s %s -> %ld (%.3f ms)", method, path, body ? body : "", r.status, (double)r.elapsed_ns / 1e6);
	if (r.status != want) {
		_cleanup_free_ char *fault = fault_of(&r);
		md_fail(err, 0, "%s %s: Firecracker answered %ld: %s", method, path, r.status, fault);
		md_http_resp_free(&r);
		return -1;
	}
	if (out) {
		json_error_t je;
		*out = json_loads(r.body, 0, &je);
		if (*out == NULL) {
			md_fail(err, 0, "%s %s: bad JSON in the answer: %s", method, path, je.text);
			md_http_resp_free(&r);
			return -1;
		}
	}
	md_http_resp_free(&r);
	return 0;
}

int md_fc_open(struct md_fc **out, const char *sock, uint64_t timeout_ns, pid_t pid, md_err **err)
{
	_cleanup_json_ json_t *v = NULL;
	struct md_fc *fc;
	const char *ver;
	struct stat st;
	md_err *e = NULL;
	int major = -1, r = -1;

	fc = calloc(1, sizeof(*fc));
	if (fc == NULL)
		abort();
	fc->sock = strdup(sock);
	fc->pid = pid;
	/* timeout 0 (do not wait for the socket) still gives the first requests 5 s */
	fc->deadline = md_now_mono_ns() + (timeout_ns ? timeout_ns : 5000000000ULL);
	if (md_http_open(&fc->http, sock, remaining(fc), err) < 0)
		goto fail;
	/* The usual case, a socket that is there: the first request is the probe (one connection,
	 * not a probe and then curl's). Otherwise wait for it (inotify), then ask. */
	if (stat(sock, &st) == 0 && S_ISSOCK(st.st_mode))
		r = call(fc, "GET", "/version", NULL, 200, &v, &e);
	if (r < 0) {
		if (e && e->code != MD_EXIT_NOTFOUND) {
			*err = e;
			goto fail;
		}
		md_err_free(&e);
		int fd = md_unix_connect_wait(sock, timeout_ns, pid, err);
		if (fd < 0) {
			md_err_wrap(err, "firecracker");
			goto fail;
		}
		close(fd);
		if (call(fc, "GET", "/version", NULL, 200, &v, err) < 0)
			goto fail;
	}
	if (fc->pid <= 0) {
		int fd = md_http_peer_fd(fc->http);
		fc->pid = fd >= 0 ? md_unix_peer_pid(fd) : 0;
	}
	ver = json_string_value(json_object_get(v, "firecracker_version"));
	if (ver == NULL) {
		md_fail(err, 0, "GET /version: no firecracker_version in the answer");
		goto fail;
	}
	fc->version = strdup(ver);
	if (sscanf(ver[0] == 'v' ? ver + 1 : ver, "%d.", &major) != 1 || major != MD_FC_API_MAJOR) {
		md_missing(err, "Firecracker %s is not supported: this driver speaks the API of Firecracker %d.x", ver,
			   MD_FC_API_MAJOR);
		goto fail;
	}
	*out = fc;
	return 0;
fail:
	md_fc_close(fc);
	return -1;
}

void md_fc_close(struct md_fc *fc)
{
	if (fc == NULL)
		return;
	md_http_close(fc->http);
	free(fc->sock);
	free(fc->version);
	free(fc);
}

void md_fc_set_deadline(struct md_fc *fc, uint64_t timeout_ns)
{
	fc->deadline = md_now_mono_ns() + timeout_ns;
}

const char *md_fc_version(const struct md_fc *fc)
{
	return fc->version;
}

pid_t md_fc_pid(const struct md_fc *fc)
{
	return fc->pid;
}

void md_fc_stats(const struct md_fc *fc, unsigned *requests, uint64_t *total_ns)
{
	md_http_stats(fc->http, requests, total_ns);
}

const char *md_fc_state_name(const char *s)
{
	if (s == NULL)
		return "VM_STATE_UNSPECIFIED";
	if (strcmp(s, "Not started") == 0)
		return "VM_STATE_CREATED";
	if (strcmp(s, "Running") == 0)
		return "VM_STATE_RUNNING";
	if (strcmp(s, "Paused") == 0)
		return "VM_STATE_PAUSED";
	return "VM_STATE_UNSPECIFIED";
}

int md_fc_state(struct md_fc *fc, char **state, md_err **err)
{
	_cleanup_json_ json_t *v = NULL;
	const char *s;

	if (call(fc, "GET", "/", NULL, 200, &v, err) < 0)
		return -1;
	s = json_string_value(json_object_get(v, "state"));
	if (s == NULL)
		return md_fail(err, 0, "GET /: no state in the answer");
	*state = strdup(s);
	return 0;
}

/* A boot option as a number, or absent. */
static int opt_u64(const struct md_config *cfg, const char *key, uint64_t min, uint64_t max, uint64_t *out, bool *set,
		   md_err **err)
{
	const char *v = md_map_get(&cfg->boot.boot_options, key);

	*set = v != NULL;
	if (v && md_parse_u64(v, min, max, out, err) < 0)
		return md_err_wrap(err, "config.boot.boot_options[\"%s\"]", key);
	return 0;
}

static int opt_bool(const struct md_config *cfg, const char *key, bool *out, md_err **err)
{
	const char *v = md_map_get(&cfg->boot.boot_options, key);

	*out = false;
	if (v && md_parse_bool(v, out, err) < 0)
		return md_err_wrap(err, "config.boot.boot_options[\"%s\"]", key);
	return 0;
}

/* Check the boot options before the first request, so a bad value never half-configures a VM. */
static int check_options(const struct md_config *cfg, md_err **err)
{
	static const char *const known[] = { "vsock_cid", "vsock_uds_path", "entropy", "balloon_mib",
					     "balloon_deflate_on_oom", "balloon_stats_interval_s", "mmds_version",
					     "mmds_ipv4_address", "mmds_data", "track_dirty_pages", "smt", NULL };
	uint64_t u;
	bool b, set;
	const char *v;

	for (size_t i = 0; i < cfg->boot.boot_options.n; i++) {
		const char *k = cfg->boot.boot_options.items[i].key;
		size_t j;
		for (j = 0; known[j] && strcmp(known[j], k); j++)
			;
		if (known[j] == NULL)
			md_warn("config.boot.boot_options[\"%s\"]: not a Firecracker option metald knows; ignored", k);
	}
	if (opt_u64(cfg, "vsock_cid", 3, UINT32_MAX, &u, &set, err) < 0)
		return -1;
	if (set != (md_map_get(&cfg->boot.boot_options, "vsock_uds_path") != NULL))
		return md_usage(err, "config.boot.boot_options: vsock_cid and vsock_uds_path go together");
	if (opt_u64(cfg, "balloon_mib", 0, UINT32_MAX, &u, &set, err) < 0 ||
	    opt_u64(cfg, "balloon_stats_interval_s", 0, UINT32_MAX, &u, &set, err) < 0 ||
	    opt_bool(cfg, "entropy", &b, err) < 0 || opt_bool(cfg, "balloon_deflate_on_oom", &b, err) < 0 ||
	    opt_bool(cfg, "track_dirty_pages", &b, err) < 0 || opt_bool(cfg, "smt", &b, err) < 0)
		return -1;
	v = md_map_get(&cfg->boot.boot_options, "mmds_version");
	if (v && strcmp(v, "V1") && strcmp(v, "V2"))
		return md_usage(err, "config.boot.boot_options[\"mmds_version\"]: `%s` must be V1 or V2", v);
	v = md_map_get(&cfg->boot.boot_options, "mmds_data");
	if (v) {
		_cleanup_json_ json_t *d = json_loads(v, 0, NULL);
		if (!json_is_object(d))
			return md_usage(err, "config.boot.boot_options[\"mmds_data\"]: must be a JSON object");
	}
	if ((md_map_get(&cfg->boot.boot_options, "mmds_version") || md_map_get(&cfg->boot.boot_options, "mmds_data")) &&
	    cfg->n_network == 0)
		return md_usage(err, "config.boot.boot_options: MMDS needs a network interface");
	if (cfg->cpu.vcpu_count > 32)
		return md_usage(err, "config.cpu.vcpu_count: Firecracker supports 1..32 vCPUs, got %d", cfg->cpu.vcpu_count);
	return 0;
}

int md_fc_boot(struct md_fc *fc, const struct md_vm_spec *spec, const struct md_fc_boot_opts *o, md_err **err)
{
	const struct md_config *cfg = spec->cfg;
	const struct md_map *bo = &cfg->boot.boot_options;
	_cleanup_free_ char *state = NULL;
	uint64_t u;
	bool b, set;
	const char *v;
	json_t *j;

	if (check_options(cfg, err) < 0)
		return -1;
	if (md_fc_state(fc, &state, err) < 0)
		return -1;
	if (strcmp(state, "Not started") != 0)
		return md_conflict(err, "firecracker `%s` is already started (state %s)", fc->sock, state);

	if (o->log_path) {
		j = json_pack("{s:s,s:s,s:b}", "log_path", o->log_path, "level", o->log_level ? o->log_level : "Warning",
			      "show_level", 1);
		if (call(fc, "PUT", "/logger", j, 204, NULL, err) < 0)
			return -1;
	}
	if (o->metrics_path &&
	    call(fc, "PUT", "/metrics", json_pack("{s:s}", "metrics_path", o->metrics_path), 204, NULL, err) < 0)
		return -1;

	j = json_pack("{s:i,s:I,s:b}", "vcpu_count", cfg->cpu.vcpu_count, "mem_size_mib",
		      (json_int_t)md_config_mem_mib(cfg), "smt", 0);
	opt_bool(cfg, "smt", &b, NULL);
	if (b)
		json_object_set_new(j, "smt", json_true());
	opt_bool(cfg, "track_dirty_pages", &b, NULL);
	if (b)
		json_object_set_new(j, "track_dirty_pages", json_true());
	if (call(fc, "PUT", "/machine-config", j, 204, NULL, err) < 0)
		return -1;

	j = json_pack("{s:s,s:s}", "kernel_image_path", cfg->boot.kernel_path, "boot_args", spec->kernel_args);
	if (cfg->boot.initrd_path)
		json_object_set_new(j, "initrd_path", json_string(cfg->boot.initrd_path));
	if (call(fc, "PUT", "/boot-source", j, 204, NULL, err) < 0)
		return -1;

	for (size_t i = 0; i < cfg->n_storage; i++) {
		const struct md_cfg_storage *s = &cfg->storage[i];
		char id[80], path[128];
		const char *bw = md_map_get(&s->options, "bandwidth"), *ops = md_map_get(&s->options, "ops");

		md_config_drive_id(cfg, i, id, sizeof(id));
		j = json_pack("{s:s,s:s,s:b,s:b}", "drive_id", id, "path_on_host", s->path, "is_root_device",
			      (int)i == md_config_root_index(cfg), "is_read_only", s->read_only);
		if (bw || ops) {
			/* disk limits from storage options: bytes/s and operations/s, refilled every second */
			json_t *rl = json_object();
			uint64_t n;
			if (bw) {
				if (md_parse_size(bw, &n, err) < 0)
					return json_decref(j), json_decref(rl),
					       md_err_wrap(err, "config.storage[%zu].options[\"bandwidth\"]", i);
				json_object_set_new(rl, "bandwidth", json_pack("{s:I,s:i}", "size", (json_int_t)n, "refill_time", 1000));
			}
			if (ops) {
				if (md_parse_u64(ops, 1, INT64_MAX, &n, err) < 0)
					return json_decref(j), json_decref(rl),
					       md_err_wrap(err, "config.storage[%zu].options[\"ops\"]", i);
				json_object_set_new(rl, "ops", json_pack("{s:I,s:i}", "size", (json_int_t)n, "refill_time", 1000));
			}
			json_object_set_new(j, "rate_limiter", rl);
		}
		snprintf(path, sizeof(path), "/drives/%s", id);
		if (call(fc, "PUT", path, j, 204, NULL, err) < 0)
			return -1;
	}

	for (size_t i = 0; i < spec->n_nics; i++) {
		const struct md_vm_nic *n = &spec->nics[i];
		char path[128];

		j = json_pack("{s:s,s:s}", "iface_id", n->id, "host_dev_name", n->tap);
		if (n->mac)
			json_object_set_new(j, "guest_mac", json_string(n->mac));
		if (n->rx_limiter)
			json_object_set(j, "rx_rate_limiter", n->rx_limiter);
		if (n->tx_limiter)
			json_object_set(j, "tx_rate_limiter", n->tx_limiter);
		snprintf(path, sizeof(path), "/network-interfaces/%s", n->id);
		if (call(fc, "PUT", path, j, 204, NULL, err) < 0)
			return -1;
	}

	if (opt_u64(cfg, "vsock_cid", 3, UINT32_MAX, &u, &set, err) < 0)
		return -1;
	if (set && call(fc, "PUT", "/vsock",
			json_pack("{s:I,s:s}", "guest_cid", (json_int_t)u, "uds_path", md_map_get(bo, "vsock_uds_path")),
			204, NULL, err) < 0)
		return -1;
	opt_bool(cfg, "entropy", &b, NULL);
	if (b && call(fc, "PUT", "/entropy", json_object(), 204, NULL, err) < 0)
		return -1;
	if (opt_u64(cfg, "balloon_mib", 0, UINT32_MAX, &u, &set, err) < 0)
		return -1;
	if (set) {
		uint64_t iv = 0;
		bool ivset;
		opt_bool(cfg, "balloon_deflate_on_oom", &b, NULL);
		opt_u64(cfg, "balloon_stats_interval_s", 0, UINT32_MAX, &iv, &ivset, NULL);
		if (call(fc, "PUT", "/balloon",
			 json_pack("{s:I,s:b,s:I}", "amount_mib", (json_int_t)u, "deflate_on_oom", b,
				   "stats_polling_interval_s", (json_int_t)iv),
			 204, NULL, err) < 0)
			return -1;
	}
	if (md_map_get(bo, "mmds_version") || md_map_get(bo, "mmds_data")) {
		/* MMDS is served on the first interface; it must exist before /mmds/config */
		v = md_map_get(bo, "mmds_version");
		j = json_pack("{s:[s],s:s}", "network_interfaces", spec->nics[0].id, "version", v ? v : "V2");
		if (md_map_get(bo, "mmds_ipv4_address"))
			json_object_set_new(j, "ipv4_address", json_string(md_map_get(bo, "mmds_ipv4_address")));
		if (call(fc, "PUT", "/mmds/config", j, 204, NULL, err) < 0)
			return -1;
		v = md_map_get(bo, "mmds_data");
		if (v && call(fc, "PUT", "/mmds", json_loads(v, 0, NULL), 204, NULL, err) < 0)
			return -1;
	}
	if (o->serial_path &&
	    call(fc, "PUT", "/serial", json_pack("{s:s}", "serial_out_path", o->serial_path), 204, NULL, err) < 0)
		return -1;

	if (call(fc, "PUT", "/actions", json_pack("{s:s}", "action_type", "InstanceStart"), 204, NULL, err) < 0)
		return -1;
	/* InstanceStart answers once the vCPUs run; confirm it, allowing for a slow VMM thread */
	for (uint64_t step = 1000000;;) {
		free(state);
		state = NULL;
		if (md_fc_state(fc, &state, err) < 0)
			return -1;
		if (strcmp(state, "Running") == 0)
			return 0;
		if (md_now_mono_ns() + step > fc->deadline)
			return md_timeout(err, "GET /: state is `%s`, not Running, after InstanceStart", state);
		md_sleep_ns(step);
		if (step < 64000000)
			step *= 2;
	}
}

int md_fc_status(struct md_fc *fc, bool with_config, json_t **out, md_err **err)
{
	_cleanup_json_ json_t *info = NULL, *res = NULL;
	json_t *vmcfg = NULL;
	const char *s;

	if (call(fc, "GET", "/", NULL, 200, &info, err) < 0)
		return -1;
	s = json_string_value(json_object_get(info, "state"));
	res = json_pack("{s:s,s:s,s:s?,s:O?,s:O?,s:s}", "vmm", "firecracker", "state", md_fc_state_name(s), "vmm_state", s,
			"id", json_object_get(info, "id"), "vmm_version", json_object_get(info, "vmm_version"),
			"socket", fc->sock);
	if (fc->pid > 0)
		json_object_set_new(res, "pid", json_integer(fc->pid));
	/* a summary of what the VMM was configured with, the whole of it with --full */
	if (call(fc, "GET", "/vm/config", NULL, 200, &vmcfg, err) < 0)
		return -1;
	json_t *mc = json_object_get(vmcfg, "machine-config"), *ids = json_array(), *d;
	size_t i;
	if (json_object_get(mc, "vcpu_count"))
		json_object_set(res, "vcpu_count", json_object_get(mc, "vcpu_count"));
	if (json_object_get(mc, "mem_size_mib"))
		json_object_set(res, "mem_size_mib", json_object_get(mc, "mem_size_mib"));
	json_array_foreach(json_object_get(vmcfg, "drives"), i, d)
		json_array_append(ids, json_object_get(d, "drive_id"));
	json_object_set_new(res, "drives", ids);
	ids = json_array();
	json_array_foreach(json_object_get(vmcfg, "network-interfaces"), i, d)
		json_array_append(ids, json_object_get(d, "iface_id"));
	json_object_set_new(res, "interfaces", ids);
	if (with_config)
		json_object_set_new(res, "config", vmcfg);
	else
		json_decref(vmcfg);
	*out = steal_pointer(&res);
	return 0;
}

/* Post-boot calls need a started VM: say so as a state conflict, not as an API failure. */
static int need_started(struct md_fc *fc, const char *what, char **state_out, md_err **err)
{
	_cleanup_free_ char *state = NULL;

	if (md_fc_state(fc, &state, err) < 0)
		return -1;
	if (strcmp(state, "Not started") == 0)
		return md_conflict(err, "%s: the VM is not started (state %s)", what, md_fc_state_name(state));
	if (state_out)
		*state_out = steal_pointer(&state);
	return 0;
}

int md_fc_pause(struct md_fc *fc, md_err **err)
{
	if (need_started(fc, "pause", NULL, err) < 0)
		return -1;
	return call(fc, "PATCH", "/vm", json_pack("{s:s}", "state", "Paused"), 204, NULL, err);
}

int md_fc_resume(struct md_fc *fc, md_err **err)
{
	if (need_started(fc, "resume", NULL, err) < 0)
		return -1;
	return call(fc, "PATCH", "/vm", json_pack("{s:s}", "state", "Resumed"), 204, NULL, err);
}

int md_fc_flush_metrics(struct md_fc *fc, md_err **err)
{
	if (need_started(fc, "flush-metrics", NULL, err) < 0)
		return -1;
	return call(fc, "PUT", "/actions", json_pack("{s:s}", "action_type", "FlushMetrics"), 204, NULL, err);
}

int md_fc_ctrl_alt_del(struct md_fc *fc, md_err **err)
{
	return call(fc, "PUT", "/actions", json_pack("{s:s}", "action_type", "SendCtrlAltDel"), 204, NULL, err);
}

int md_fc_snapshot_create(struct md_fc *fc, const char *snapshot, const char *mem, bool diff, md_err **err)
{
	_cleanup_free_ char *state = NULL;

	if (need_started(fc, "snapshot", &state, err) < 0)
		return -1;
	if (strcmp(state, "Paused") != 0)
		return md_conflict(err, "snapshot: the VM must be paused first (state %s)", md_fc_state_name(state));
	return call(fc, "PUT", "/snapshot/create",
		    json_pack("{s:s,s:s,s:s}", "snapshot_path", snapshot, "mem_file_path", mem, "snapshot_type",
			      diff ? "Diff" : "Full"),
		    204, NULL, err);
}

int md_fc_snapshot_load(struct md_fc *fc, const char *snapshot, const char *mem, bool resume, md_err **err)
{
	_cleanup_free_ char *state = NULL;

	if (md_fc_state(fc, &state, err) < 0)
		return -1;
	if (strcmp(state, "Not started") != 0)
		return md_conflict(err, "restore: needs a fresh Firecracker process (state %s)", md_fc_state_name(state));
	return call(fc, "PUT", "/snapshot/load",
		    json_pack("{s:s,s:{s:s,s:s},s:b}", "snapshot_path", snapshot, "mem_backend", "backend_type", "File",
			      "backend_path", mem, "resume_vm", resume),
		    204, NULL, err);
}

/* Was PUT /metrics made? (FlushMetrics without it is a 400.) */
static bool metrics_configured(struct md_fc *fc)
{
	_cleanup_json_ json_t *c = NULL;

	if (call(fc, "GET", "/vm/config", NULL, 200, &c, NULL) < 0)
		return true; /* let FlushMetrics say what is wrong */
	return json_is_object(json_object_get(c, "metrics"));
}

/* Stop the Firecracker process: pid known, signal, bounded wait. */
static int kill_and_wait(pid_t pid, int sig, uint64_t timeout_ns)
{
	if (kill(pid, sig) < 0 && errno == ESRCH)
		return 0;
	if (md_pid_wait_exit(pid, timeout_ns, NULL) == 0)
		return 0;
	kill(pid, SIGKILL);
	return md_pid_wait_exit(pid, 2000000000ULL, NULL);
}

int md_fc_shutdown(struct md_fc *fc, uint64_t timeout_ns, bool force, json_t **out, md_err **err)
{
	_cleanup_free_ char *state = NULL;
	uint64_t t0 = md_now_mono_ns();
	md_err *e = NULL;
	int r;

	if (fc->pid <= 0)
		return md_fail(err, 0, "shutdown: cannot learn Firecracker's pid from its socket; pass --pid");
	if (md_fc_state(fc, &state, err) < 0)
		return -1;
	if (strcmp(state, "Not started") == 0) {
		/* no guest and no metrics yet: nothing to lose */
		kill_and_wait(fc->pid, SIGKILL, 2000000000ULL);
		*out = json_pack("{s:s,s:s,s:i}", "vmm", "firecracker", "stopped", "killed-before-start", "pid", (int)fc->pid);
		return 0;
	}
	/* the last usage line: SIGTERM/SIGKILL would lose whatever was counted since the last flush */
	if (metrics_configured(fc) && md_fc_flush_metrics(fc, &e) < 0) {
		md_warn("%s (continuing the shutdown)", e->msg);
		md_err_free(&e);
	}
	if (force) {
		/* SIGHUP: Firecracker writes its metrics and exits 156 */
		kill_and_wait(fc->pid, SIGHUP, 2000000000ULL);
		*out = json_pack("{s:s,s:s,s:i,s:f}", "vmm", "firecracker", "stopped", "sighup", "pid", (int)fc->pid,
				 "seconds", (double)(md_now_mono_ns() - t0) / 1e9);
		return 0;
	}
	/* Ctrl-Alt-Del reaches only running vCPUs */
	if (strcmp(state, "Paused") == 0 && md_fc_resume(fc, err) < 0)
		return -1;
	if (md_fc_ctrl_alt_del(fc, err) < 0)
		return -1;
	r = md_pid_wait_exit(fc->pid, timeout_ns, err);
	if (r < 0)
		return -1;
	if (r == 0) {
		*out = json_pack("{s:s,s:s,s:i,s:f}", "vmm", "firecracker", "stopped", "ctrl-alt-del", "pid", (int)fc->pid,
				 "seconds", (double)(md_now_mono_ns() - t0) / 1e9);
		return 0;
	}
	/* metrics were flushed above; SIGHUP writes them once more on the way out */
	kill_and_wait(fc->pid, SIGHUP, 1000000000ULL);
	return md_timeout(err, "shutdown: the guest did not stop within %.3gs after SendCtrlAltDel; Firecracker was "
			  "killed", (double)timeout_ns / 1e9);
}

int md_fc_reboot(struct md_fc *fc, uint64_t timeout_ns, json_t **out, md_err **err)
{
	_cleanup_free_ char *state = NULL;
	int r;

	if (need_started(fc, "reboot", &state, err) < 0)
		return -1;
	if (fc->pid <= 0)
		return md_fail(err, 0, "reboot: cannot learn Firecracker's pid from its socket; pass --pid");
	if (strcmp(state, "Paused") == 0 && md_fc_resume(fc, err) < 0)
		return -1;
	if ((metrics_configured(fc) && md_fc_flush_metrics(fc, err) < 0) || md_fc_ctrl_alt_del(fc, err) < 0)
		return -1;
	r = md_pid_wait_exit(fc->pid, timeout_ns, err);
	if (r < 0)
		return -1;
	if (r == 1)
		return md_timeout(err, "reboot: Firecracker did not exit within %.3gs after SendCtrlAltDel",
				  (double)timeout_ns / 1e9);
	*out = json_pack("{s:s,s:b,s:s}", "vmm", "firecracker", "exited", 1, "next",
			 "Firecracker ends on a guest reboot: start a new Firecracker process and run `metald-boot start` "
			 "again");
	return 0;
}
