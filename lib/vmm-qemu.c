/* The QEMU driver: microvm argv, an honest KVM probe, and the control verbs over QMP. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cleanup.h"
#include "log.h"
#include "state.h"
#include "unixsock.h"
#include "vmm-qemu.h"

extern char **environ;

int md_accel_parse(const char *s, enum md_accel *out, md_err **err)
{
	if (strcmp(s, "auto") == 0)
		*out = MD_ACCEL_AUTO;
	else if (strcmp(s, "kvm") == 0)
		*out = MD_ACCEL_KVM;
	else if (strcmp(s, "tcg") == 0)
		*out = MD_ACCEL_TCG;
	else
		return md_usage(err, "--accel `%s`: must be auto, kvm or tcg", s);
	return 0;
}

const char *md_accel_name(enum md_accel a)
{
	return a == MD_ACCEL_KVM ? "kvm" : a == MD_ACCEL_TCG ? "tcg" : "auto";
}

int md_qemu_binary(char **out, md_err **err)
{
	const char *name = getenv("UNKEY_METALD_QEMU_BIN");
	const char *path = getenv("PATH");

	if (name == NULL || *name == '\0')
		name = "qemu-system-x86_64";
	if (strchr(name, '/')) {
		if (access(name, X_OK) < 0)
			return md_missing(err, "QEMU `%s`: %s", name, strerror(errno));
		*out = strdup(name);
		return 0;
	}
	_cleanup_free_ char *dirs = strdup(path ? path : "/usr/local/bin:/usr/bin:/bin");
	for (char *save = NULL, *d = strtok_r(dirs, ":", &save); d; d = strtok_r(NULL, ":", &save)) {
		char *cand = md_path_join(d, name);
		if (access(cand, X_OK) == 0) {
			*out = cand;
			return 0;
		}
		free(cand);
	}
	return md_missing(err, "QEMU `%s` not found in PATH (Debian package qemu-system-x86)", name);
}

/* The CPU model per accelerator: the host's under KVM (what production wants, and what the
 * probe must therefore test), QEMU's default under TCG. */
static const char *cpu_model(enum md_accel a)
{
	return a == MD_ACCEL_KVM ? "host" : NULL;
}

static char *boot_id(void)
{
	char *s = NULL;
	size_t n = 0;

	if (md_read_file("/proc/sys/kernel/random/boot_id", &s, &n, NULL) < 0)
		return strdup("unknown");
	s[strcspn(s, "\n")] = '\0';
	return s;
}

/* Run argv with stdio on /dev/null; wait up to timeout_ns. Returns the wait status, or -2 on
 * timeout (the process is killed and reaped). */
static int run_bounded(char **argv, uint64_t timeout_ns, md_err **err)
{
	posix_spawn_file_actions_t fa;
	pid_t pid;
	int st, r;

	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
	posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
	r = posix_spawn(&pid, argv[0], &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	if (r != 0)
		return md_fail(err, r, "run `%s`", argv[0]);
	r = md_pid_wait_exit(pid, timeout_ns, NULL);
	if (r != 0)
		kill(pid, SIGKILL);
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	return r != 0 ? -2 : st;
}

int md_qemu_probe_kvm(const char *kernel, const char *cache_dir, uint64_t timeout_ns, bool *usable, char **why,
		      md_err **err)
{
	_cleanup_free_ char *qemu = NULL, *bid = boot_id(), *cache = NULL, *serial = NULL, *log = NULL;
	_cleanup_json_ json_t *c = NULL;
	char tmpl[] = "/tmp/metald-kvm-probe.XXXXXX";
	int fd, st;

	*usable = false;
	fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		*why = md_strdup_printf("/dev/kvm: %s", strerror(errno));
		return 0;
	}
	close(fd);
	if (cache_dir) {
		cache = md_path_join(cache_dir, "qemu-accel.json");
		if (md_json_read(cache, &c, NULL) == 0 && json_is_object(c) &&
		    json_is_string(json_object_get(c, "boot_id")) &&
		    strcmp(json_string_value(json_object_get(c, "boot_id")), bid) == 0 &&
		    json_is_boolean(json_object_get(c, "kvm"))) {
			*usable = json_is_true(json_object_get(c, "kvm"));
			*why = md_strdup_printf("cached verdict from `%s`: %s", cache,
						json_string_value(json_object_get(c, "why")) ?: "");
			return 0;
		}
	}
	if (md_qemu_binary(&qemu, err) < 0)
		return -1;
	if (mkdtemp(tmpl) == NULL)
		return md_fail(err, errno, "mkdtemp");
	serial = md_path_join(tmpl, "serial");
	log = md_strdup_printf("file:%s", serial);
	/* No root device and panic=-1: a kernel that really runs panics within a second and,
	 * with -no-reboot, QEMU exits. A hang (nested KVM) or a QEMU abort means no. */
	char *argv[] = { qemu, "-M", "microvm", "-accel", "kvm", "-cpu", (char *)cpu_model(MD_ACCEL_KVM), "-m", "128",
			 "-nodefaults", "-no-user-config", "-display", "none", "-no-reboot", "-serial", log, "-kernel",
			 (char *)kernel, "-append", "console=ttyS0 panic=-1 reboot=t root=/dev/metald-probe loglevel=3",
			 NULL };
	uint64_t t0 = md_now_mono_ns();
	st = run_bounded(argv, timeout_ns, err);
	if (st == -1) {
		md_rm_rf(tmpl, NULL);
		return -1;
	}
	_cleanup_free_ char *out = NULL;
	size_t n = 0;
	md_read_file(serial, &out, &n, NULL);
	md_rm_rf(tmpl, NULL);
	if (st == -2) {
		*why = md_strdup_printf("a KVM guest made no progress in %.0fs (nested KVM?)", (double)timeout_ns / 1e9);
	} else if (WIFEXITED(st) && WEXITSTATUS(st) == 0 && out && strstr(out, "Kernel panic")) {
		*usable = true;
		*why = md_strdup_printf("a KVM guest booted to its first panic in %.2fs",
					(double)(md_now_mono_ns() - t0) / 1e9);
	} else {
		*why = md_strdup_printf("QEMU with -accel kvm -cpu host failed (%s %d)",
					WIFEXITED(st) ? "exit" : "signal", WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st));
	}
	if (cache) {
		_cleanup_json_ json_t *v = json_pack("{s:s,s:b,s:s,s:s}", "boot_id", bid, "kvm", *usable, "why", *why,
						     "kernel", kernel);
		md_mkdir_p(cache_dir, 0755, NULL);
		if (md_json_write_atomic(cache, v, 0644, NULL) < 0)
			md_debug("cannot cache the KVM verdict in `%s`", cache);
	}
	return 0;
}

/* QEMU option values: a comma is written twice. */
static char *qesc(const char *s)
{
	size_t n = strlen(s), o = 0;
	char *r = malloc(2 * n + 1);

	if (r == NULL)
		abort();
	for (size_t i = 0; i < n; i++) {
		r[o++] = s[i];
		if (s[i] == ',')
			r[o++] = ',';
	}
	r[o] = '\0';
	return r;
}

static void add2(struct md_av *b, const char *opt, char *val) /* takes val */
{
	md_av_add(b, opt);
	md_av_take(b, val);
}

static bool has_param(const char *args, const char *name)
{
	size_t n = strlen(name);
	for (const char *p = args; (p = strstr(p, name)); p += n)
		if ((p == args || p[-1] == ' ') && p[n] == '=')
			return true;
	return false;
}

int md_qemu_argv(const struct md_vm_spec *spec, const struct md_qemu_opts *o, char ***argv, enum md_accel *accel_used,
		 md_err **err)
{
	const struct md_config *cfg = spec->cfg;
	struct md_av b = { 0 };
	enum md_accel accel = o->accel;
	char *qemu = NULL, *args;
	int root = md_config_root_index(cfg);

	if (o->qmp == NULL)
		return md_usage(err, "--qmp: a QMP socket path is required for QEMU");
	if (o->in_jail && accel == MD_ACCEL_AUTO)
		return md_usage(err, "--in-jail: choose --accel kvm or tcg (metald-boot accel tells which works)");
	if (o->in_jail)
		goto checked;
	if (access(cfg->boot.kernel_path, R_OK) < 0)
		return md_notfound(err, "config.boot.kernel_path `%s`: %s", cfg->boot.kernel_path, strerror(errno));
	if (cfg->boot.initrd_path && access(cfg->boot.initrd_path, R_OK) < 0)
		return md_notfound(err, "config.boot.initrd_path `%s`: %s", cfg->boot.initrd_path, strerror(errno));
	for (size_t i = 0; i < cfg->n_storage; i++)
		if (access(cfg->storage[i].path, cfg->storage[i].read_only ? R_OK : R_OK | W_OK) < 0)
			return md_notfound(err, "config.storage[%zu].path `%s`: %s", i, cfg->storage[i].path, strerror(errno));
checked:
	if (accel == MD_ACCEL_KVM && access("/dev/kvm", R_OK | W_OK) < 0)
		return md_missing(err, "--accel kvm: /dev/kvm: %s", strerror(errno));
	if (accel == MD_ACCEL_AUTO) {
		_cleanup_free_ char *why = NULL;
		bool kvm;
		if (md_qemu_probe_kvm(cfg->boot.kernel_path, o->cache_dir, 10000000000ULL, &kvm, &why, err) < 0)
			return -1;
		accel = kvm ? MD_ACCEL_KVM : MD_ACCEL_TCG;
		md_info("accelerator %s: %s", md_accel_name(accel), why);
	}
	if (md_qemu_binary(&qemu, err) < 0)
		return -1;
	md_av_take(&b, qemu);
	if (o->name)
		add2(&b, "-name", md_strdup_printf("guest=%s,debug-threads=on", o->name));
	/* in a jail the binary sits at the jail's root, where QEMU's relocatable data directory
	 * (<bindir>/../share/qemu) does not exist: name the firmware directory */
	if (o->in_jail)
		add2(&b, "-L", strdup("/usr/share/qemu"));
	add2(&b, "-M", strdup("microvm"));
	add2(&b, "-accel", strdup(md_accel_name(accel)));
	if (cpu_model(accel))
		add2(&b, "-cpu", strdup(cpu_model(accel)));
	add2(&b, "-smp", md_strdup_printf("%d", cfg->cpu.vcpu_count));
	add2(&b, "-m", md_strdup_printf("%lluM", (unsigned long long)md_config_mem_mib(cfg)));
	md_av_take(&b, strdup("-nodefaults"));
	md_av_take(&b, strdup("-no-user-config"));
	add2(&b, "-display", strdup("none"));
	md_av_take(&b, strdup("-S"));
	{
		_cleanup_free_ char *e = qesc(o->qmp);
		add2(&b, "-qmp", md_strdup_printf("unix:%s,server=on,wait=off", e));
	}
	if (o->serial && !strcmp(o->serial, "stdio")) {
		/* the console on QEMU's stdout: a supervisor reads it (metald-vm's keeper bounds it) */
		add2(&b, "-serial", strdup("stdio"));
	} else if (o->serial) {
		_cleanup_free_ char *e = qesc(o->serial);
		add2(&b, "-chardev", md_strdup_printf("file,id=serial0,path=%s", e));
		add2(&b, "-serial", strdup("chardev:serial0"));
	} else {
		add2(&b, "-serial", strdup("null"));
	}
	add2(&b, "-kernel", strdup(cfg->boot.kernel_path));
	if (cfg->boot.initrd_path)
		add2(&b, "-initrd", strdup(cfg->boot.initrd_path));
	/* As Firecracker does for a root drive: root=/dev/vda and ro/rw, unless the args say otherwise */
	if (root >= 0 && !has_param(spec->kernel_args, "root"))
		args = md_strdup_printf("%s root=/dev/vda %s", spec->kernel_args, cfg->storage[root].read_only ? "ro" : "rw");
	else
		args = strdup(spec->kernel_args);
	add2(&b, "-append", args);
	/* the root disk first: microvm enumerates virtio-mmio devices in command-line order */
	for (size_t k = 0; k < cfg->n_storage; k++) {
		size_t i = root < 0 ? k : k == 0 ? (size_t)root : k <= (size_t)root ? k - 1 : k;
		char id[80];
		_cleanup_free_ char *e = qesc(cfg->storage[i].path);
		md_config_drive_id(cfg, i, id, sizeof(id));
		add2(&b, "-drive", md_strdup_printf("id=%s,file=%s,format=raw,if=none,readonly=%s", id, e,
						    cfg->storage[i].read_only ? "on" : "off"));
		add2(&b, "-device", md_strdup_printf("virtio-blk-device,drive=%s", id));
	}
	for (size_t i = 0; i < spec->n_nics; i++) {
		const struct md_vm_nic *n = &spec->nics[i];
		add2(&b, "-netdev", md_strdup_printf("tap,id=%s,ifname=%s,script=no,downscript=no", n->id, n->tap));
		if (n->mac)
			add2(&b, "-device", md_strdup_printf("virtio-net-device,netdev=%s,mac=%s", n->id, n->mac));
		else
			add2(&b, "-device", md_strdup_printf("virtio-net-device,netdev=%s", n->id));
	}
	*argv = b.v;
	if (accel_used)
		*accel_used = accel;
	return 0;
}

const char *md_qemu_state_name(const char *s)
{
	if (s == NULL)
		return "VM_STATE_UNSPECIFIED";
	if (strcmp(s, "prelaunch") == 0)
		return "VM_STATE_CREATED";
	if (strcmp(s, "running") == 0)
		return "VM_STATE_RUNNING";
	if (strcmp(s, "paused") == 0 || strcmp(s, "suspended") == 0)
		return "VM_STATE_PAUSED";
	if (strcmp(s, "shutdown") == 0 || strcmp(s, "guest-panicked") == 0 || strcmp(s, "internal-error") == 0)
		return "VM_STATE_SHUTDOWN";
	return "VM_STATE_UNSPECIFIED";
}

static int query_status(struct md_qmp *q, char **status, md_err **err)
{
	_cleanup_json_ json_t *r = NULL;
	const char *s;

	if (md_qmp_exec(q, "query-status", NULL, &r, err) < 0)
		return -1;
	s = json_string_value(json_object_get(r, "status"));
	if (s == NULL)
		return md_fail(err, 0, "query-status: no status in the answer");
	*status = strdup(s);
	return 0;
}

/* Poll query-status until it says `want` (QEMU reports some transitions asynchronously),
 * within the QMP deadline. */
static int wait_status(struct md_qmp *q, const char *want, md_err **err)
{
	for (uint64_t step = 1000000;; step = step < 32000000 ? step * 2 : step) {
		_cleanup_free_ char *s = NULL;
		if (query_status(q, &s, err) < 0)
			return -1;
		if (strcmp(s, want) == 0)
			return 0;
		if (md_now_mono_ns() + step > md_qmp_deadline(q))
			return md_timeout(err, "QEMU status is `%s`, not `%s`, in time", s, want);
		md_sleep_ns(step);
	}
}

int md_qemu_start(struct md_qmp *q, md_err **err)
{
	_cleanup_free_ char *s = NULL;

	if (query_status(q, &s, err) < 0)
		return -1;
	if (strcmp(s, "prelaunch") != 0)
		return md_conflict(err, "start: QEMU is not waiting to start (status %s, %s); it was started already "
				   "or lacks -S", s, md_qemu_state_name(s));
	if (md_qmp_exec(q, "cont", NULL, NULL, err) < 0)
		return -1;
	return wait_status(q, "running", err);
}

int md_qemu_pause(struct md_qmp *q, md_err **err)
{
	_cleanup_free_ char *s = NULL;

	if (query_status(q, &s, err) < 0)
		return -1;
	if (strcmp(s, "paused") == 0)
		return 0;
	if (strcmp(s, "running") != 0)
		return md_conflict(err, "pause: the VM is not running (status %s, %s)", s, md_qemu_state_name(s));
	if (md_qmp_exec(q, "stop", NULL, NULL, err) < 0)
		return -1;
	return wait_status(q, "paused", err);
}

int md_qemu_resume(struct md_qmp *q, md_err **err)
{
	_cleanup_free_ char *s = NULL;

	if (query_status(q, &s, err) < 0)
		return -1;
	if (strcmp(s, "running") == 0)
		return 0;
	if (strcmp(s, "paused") != 0)
		return md_conflict(err, "resume: the VM is not paused (status %s, %s)", s, md_qemu_state_name(s));
	if (md_qmp_exec(q, "cont", NULL, NULL, err) < 0)
		return -1;
	return wait_status(q, "running", err);
}

int md_qemu_reboot(struct md_qmp *q, md_err **err)
{
	_cleanup_free_ char *s = NULL;

	if (query_status(q, &s, err) < 0)
		return -1;
	if (strcmp(s, "running") != 0 && strcmp(s, "paused") != 0)
		return md_conflict(err, "reboot: the VM is not started (status %s, %s)", s, md_qemu_state_name(s));
	if (md_qmp_exec(q, "system_reset", NULL, NULL, err) < 0)
		return -1;
	/* a paused VM resets but stays paused; the caller asked for a running guest */
	if (strcmp(s, "paused") == 0 && md_qmp_exec(q, "cont", NULL, NULL, err) < 0)
		return -1;
	return 0;
}

int md_qemu_status(struct md_qmp *q, bool full, json_t **out, md_err **err)
{
	_cleanup_json_ json_t *st = NULL, *res = NULL;
	json_t *cpus = NULL, *blk = NULL, *ver;
	const char *s;

	if (md_qmp_exec(q, "query-status", NULL, &st, err) < 0)
		return -1;
	s = json_string_value(json_object_get(st, "status"));
	ver = json_object_get(json_object_get(json_object_get(md_qmp_greeting(q), "QMP"), "version"), "qemu");
	res = json_pack("{s:s,s:s,s:s?}", "vmm", "qemu", "state", md_qemu_state_name(s), "vmm_state", s);
	if (ver)
		json_object_set_new(res, "vmm_version",
				    json_sprintf("%lld.%lld.%lld", (long long)json_integer_value(json_object_get(ver, "major")),
						 (long long)json_integer_value(json_object_get(ver, "minor")),
						 (long long)json_integer_value(json_object_get(ver, "micro"))));
	if (md_qmp_pid(q) > 0)
		json_object_set_new(res, "pid", json_integer(md_qmp_pid(q)));
	if (md_qmp_exec(q, "query-cpus-fast", NULL, &cpus, err) < 0)
		return -1;
	/* vCPU thread ids: what metald-meter reads per-vCPU CPU time from */
	json_t *tids = json_array(), *c;
	size_t i;
	json_array_foreach(cpus, i, c)
		json_array_append(tids, json_object_get(c, "thread-id"));
	json_object_set_new(res, "vcpu_threads", tids);
	if (md_qmp_exec(q, "query-blockstats", NULL, &blk, err) < 0) {
		json_decref(cpus);
		return -1;
	}
	json_t *disks = json_array(), *d;
	json_array_foreach(blk, i, d) {
		json_t *stats = json_object_get(d, "stats");
		const char *dev = json_string_value(json_object_get(d, "device"));
		json_array_append_new(disks, json_pack("{s:s,s:O,s:O,s:O,s:O}", "id", dev && *dev ? dev : json_string_value(json_object_get(d, "qdev")) ?: "",
						       "rd_bytes", json_object_get(stats, "rd_bytes"), "wr_bytes",
						       json_object_get(stats, "wr_bytes"), "rd_operations",
						       json_object_get(stats, "rd_operations"), "wr_operations",
						       json_object_get(stats, "wr_operations")));
	}
	json_object_set_new(res, "disks", disks);
	if (full) {
		json_object_set_new(res, "cpus", cpus);
		json_object_set_new(res, "blockstats", blk);
	} else {
		json_decref(cpus);
		json_decref(blk);
	}
	*out = steal_pointer(&res);
	return 0;
}

int md_qemu_shutdown(struct md_qmp *q, uint64_t timeout_ns, bool force, json_t **out, md_err **err)
{
	_cleanup_free_ char *s = NULL;
	pid_t pid = md_qmp_pid(q);
	uint64_t t0 = md_now_mono_ns();
	const char *how;
	int r;

	if (pid <= 0)
		return md_fail(err, 0, "shutdown: cannot learn QEMU's pid from its socket; pass --pid");
	if (query_status(q, &s, err) < 0)
		return -1;
	if (force || strcmp(s, "prelaunch") == 0 || strcmp(s, "shutdown") == 0) {
		how = "quit";
	} else {
		/* a paused guest cannot see the power button */
		if (strcmp(s, "paused") == 0 && md_qmp_exec(q, "cont", NULL, NULL, err) < 0)
			return -1;
		if (md_qmp_exec(q, "system_powerdown", NULL, NULL, err) < 0)
			return -1;
		r = md_pid_wait_exit(pid, timeout_ns, err);
		if (r < 0)
			return -1;
		if (r == 0) {
			*out = json_pack("{s:s,s:s,s:i,s:f}", "vmm", "qemu", "stopped", "powerdown", "pid", (int)pid, "seconds",
					 (double)(md_now_mono_ns() - t0) / 1e9);
			return 0;
		}
		how = "timeout";
	}
	md_qmp_set_deadline(q, 2000000000ULL);
	md_qmp_exec(q, "quit", NULL, NULL, NULL); /* QEMU may close the socket before it answers */
	if (md_pid_wait_exit(pid, 3000000000ULL, NULL) != 0) {
		kill(pid, SIGKILL);
		md_pid_wait_exit(pid, 2000000000ULL, NULL);
	}
	if (strcmp(how, "timeout") == 0)
		return md_timeout(err, "shutdown: the guest did not power off within %.3gs; QEMU was stopped with quit",
				  (double)timeout_ns / 1e9);
	*out = json_pack("{s:s,s:s,s:i,s:f}", "vmm", "qemu", "stopped", "quit", "pid", (int)pid, "seconds",
			 (double)(md_now_mono_ns() - t0) / 1e9);
	return 0;
}
