/* The orchestrator. Order of a VM's life: record (phase "creating") -> uid -> disks -> network
 * -> record complete; boot: jail + VMM under a keeper -> VMM API start -> RUNNING + meter target.
 * Every step is undone when a later one fails; `reconcile` finishes or undoes what a crash left. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "argv.h"
#include "cgroup.h"
#include "cleanup.h"
#include "ids.h"
#include "log.h"
#include "meter-sample.h"
#include "parse.h"
#include "proc.h"
#include "unixsock.h"
#include "vm-keeper.h"
#include "vm.h"

/* Each VM log file (serial.log, vmm.log) is rotated to .1 at this size: UNKEY_METALD_VM_LOG_MAX,
 * default 1 MiB, at least 4 KiB. */
static int log_max(size_t *out, md_err **err)
{
	const char *e = getenv("UNKEY_METALD_VM_LOG_MAX");
	uint64_t v = 1024 * 1024;

	if (e && *e) {
		if (md_parse_size(e, &v, err) < 0)
			return md_err_wrap(err, "UNKEY_METALD_VM_LOG_MAX");
		if (v < 4096 || v > (1ULL << 40))
			return md_usage(err, "UNKEY_METALD_VM_LOG_MAX `%s`: must be 4K to 1T", e);
	}
	*out = (size_t)v;
	return 0;
}

/* Test-only fault hook: METALD_FAULT=vm-<verb>:<step> kills this process at that step, so tests
 * can prove that reconcile recovers from a crash anywhere. */
static void fault_point(const char *verb, const char *step)
{
	const char *f = getenv("METALD_FAULT");
	char want[128];

	if (f == NULL)
		return;
	snprintf(want, sizeof(want), "vm-%s:%s", verb, step);
	if (strcmp(f, want) == 0)
		raise(SIGKILL);
}

/* ---- argv building and running the sibling programs ---- */

static void av_prog(struct md_vm_ctx *c, struct md_av *a, const char *name, bool with_root)
{
	_cleanup_free_ char *p = c->bindir ? md_path_join(c->bindir, name) : NULL;

	md_av_add(a, p && access(p, X_OK) == 0 ? p : name);
	if (with_root && c->root) {
		md_av_add(a, "--root");
		md_av_add(a, c->root);
	}
}

/* The last non-empty line of a program's stderr, for the error message. */
static char *last_line(const char *s)
{
	const char *end = s + strlen(s), *start;

	while (end > s && (end[-1] == '\n' || end[-1] == ' '))
		end--;
	start = end;
	while (start > s && start[-1] != '\n')
		start--;
	return strndup(start, (size_t)(end - start));
}

/* Run a program; on a non-zero status fail with its class (2,3,4,5,124 kept, else 1) and its last
 * stderr line. With out != NULL, stdout must be one JSON value. */
static int run_tool(struct md_av *a, uint64_t timeout_ns, json_t **out, md_err **err)
{
	struct md_run_result r;
	json_error_t je;

	md_debug("run: %s %s %s", a->v[0], a->n > 1 ? a->v[1] : "", a->n > 3 ? a->v[3] : "");
	if (md_run(a->v, timeout_ns, &r, err) < 0)
		return -1;
	if (r.status != 0) {
		_cleanup_free_ char *line = last_line(r.errout);
		int code = r.status;

		if (code != MD_EXIT_USAGE && code != MD_EXIT_NOTFOUND && code != MD_EXIT_CONFLICT &&
		    code != MD_EXIT_MISSING && code != MD_EXIT_TIMEOUT)
			code = MD_EXIT_FAIL;
		md_err_set(err, code, 0, "%s", *line ? line : "failed without a message");
		md_run_result_free(&r);
		return -1;
	}
	if (out) {
		*out = json_loads(r.out, JSON_DISABLE_EOF_CHECK, &je);
		if (*out == NULL) {
			md_run_result_free(&r);
			return md_fail(err, 0, "`%s` printed no JSON: %s", a->v[0], je.text);
		}
	}
	md_run_result_free(&r);
	return 0;
}

/* ---- context ---- */

int md_vm_ctx_init(struct md_vm_ctx *c, const char *root, md_err **err)
{
	memset(c, 0, sizeof(*c));
	if (md_paths_init(&c->paths, root, err) < 0)
		return -1;
	c->root = root ? root : getenv("UNKEY_METALD_ROOT");
	if (c->root && !*c->root)
		c->root = NULL;
	c->bindir = md_self_dir();
	c->lock_timeout_ns = 30ULL * 1000000000ULL;
	return 0;
}

void md_vm_ctx_free(struct md_vm_ctx *c)
{
	md_paths_free(&c->paths);
	free(c->bindir);
}

/* ---- small record helpers ---- */

static const char *rec_str(json_t *rec, const char *key)
{
	return json_string_value(json_object_get(rec, key));
}

static json_int_t rec_int(json_t *rec, const char *key)
{
	return json_integer_value(json_object_get(rec, key));
}

static enum md_vm_state rec_state(json_t *rec)
{
	enum md_vm_state s = MD_VM_CREATED;
	const char *n = rec_str(rec, "state");

	if (n)
		md_vm_state_parse(n, &s);
	return s;
}

static void rec_set_state(json_t *rec, enum md_vm_state s, const char *reason)
{
	json_object_set_new(rec, "state", json_string(md_vm_state_name(s)));
	json_object_set_new(rec, "reason", reason ? json_string(reason) : json_null());
}

static int wrong_state(const char *id, json_t *rec, const char *verb, md_err **err)
{
	return md_conflict(err, "cannot %s vm `%s`: it is %s", verb, id, md_vm_state_name(rec_state(rec)));
}

static char *meter_target_path(struct md_vm_ctx *c, const char *id)
{
	return md_strdup_printf("%s/meter/%s.json", c->paths.run_dir, id);
}

static const char *vmm_exec_name(json_t *rec)
{
	return !strcmp(rec_str(rec, "vmm"), "firecracker") ? "firecracker" : "qemu-system-x86_64";
}

static char *vmm_binary(const char *vmm)
{
	const char *e;

	if (!strcmp(vmm, "firecracker")) {
		e = getenv("UNKEY_METALD_FIRECRACKER_BIN");
		return strdup(e && *e ? e : "/usr/bin/firecracker");
	}
	e = getenv("UNKEY_METALD_QEMU_BIN");
	return strdup(e && *e ? e : "/usr/bin/qemu-system-x86_64");
}

/* The VMM process died on its own: make the record say so (SHUTDOWN with the reason). Returns
 * true when the record changed. */
static bool refresh(struct md_vm_ctx *c, const char *id, json_t *rec)
{
	enum md_vm_state s = rec_state(rec);
	_cleanup_free_ char *exitf = md_vmrec_file(&c->paths, id, "exit.json");
	json_t *ex = NULL;
	char reason[512];

	if (s != MD_VM_RUNNING && s != MD_VM_PAUSED)
		return false;
	if (md_proc_alive((pid_t)rec_int(rec, "pid"), (uint64_t)rec_int(rec, "pid_start")))
		return false;
	/* the keeper writes exit.json right after reaping; give it a moment */
	for (int i = 0; i < 20 && access(exitf, F_OK) < 0; i++)
		md_sleep_ns(10000000);
	if (md_json_read(exitf, &ex, NULL) == 0) {
		snprintf(reason, sizeof(reason), "%s", rec_str(ex, "reason") ? rec_str(ex, "reason") : "the VMM ended");
		json_object_set(rec, "exit", ex);
		json_decref(ex);
	} else {
		snprintf(reason, sizeof(reason), "the VMM process %lld is gone (its exit was not observed)",
			 (long long)rec_int(rec, "pid"));
	}
	rec_set_state(rec, MD_VM_SHUTDOWN, reason);
	json_object_set_new(rec, "pid", json_null());
	return true;
}

/* With the VM's lock held: refresh, and if the VMM was found dead, save and drop its meter
 * target (the keeper normally removed it already). */
static void refresh_locked(struct md_vm_ctx *c, const char *id, json_t *rec)
{
	if (refresh(c, id, rec)) {
		_cleanup_free_ char *t = meter_target_path(c, id);

		unlink(t);
		md_vmrec_save(&c->paths, id, rec, NULL);
	}
}

/* The states a verb takes, for open_vm: IN(state) for each; ANY: every state, and also a record
 * left by an unfinished command (only delete takes those). */
#define IN(s) (1u << (s))
#define ANY (~0u)

/* A record whose phase is set, seen with its lock held, was left by a command that did not finish
 * (each clears the phase before it lets go of the lock): what it names may be half made or half
 * removed, so only delete and reconcile act on it. Exit 4, naming the phase and the way out. */
static int unfinished(const char *id, const char *phase, const char *verb, md_err **err)
{
	if (!strcmp(phase, "deleting"))
		return md_conflict(err,
				   "cannot %s vm `%s`: an unfinished delete left it in phase `deleting` (finish it: "
				   "`metald-vm delete %s` or `metald-vm reconcile`)",
				   verb, id, id);
	if (!strcmp(phase, "creating") || !strcmp(phase, "booting"))
		return md_conflict(err,
				   "cannot %s vm `%s`: an interrupted %s left it in phase `%s` (undo it: "
				   "`metald-vm reconcile`, or remove it: `metald-vm delete %s`)",
				   verb, id, phase[0] == 'c' ? "create" : "boot", phase, id);
	return md_conflict(err,
			   "cannot %s vm `%s`: an unfinished command left it in phase `%s` (run `metald-vm "
			   "reconcile`, or remove it: `metald-vm delete %s`)",
			   verb, id, phase, id);
}

/* Lock, load and refresh one VM's record, and check that its state is one `verb` takes (a mask
 * of IN(state), or ANY) — wrong state is exit 4, naming the state; so is a record an unfinished
 * command left, naming its phase. */
static int open_vm(struct md_vm_ctx *c, const char *id, const char *verb, unsigned states, int *lockfd, json_t **rec,
		   md_err **err)
{
	const char *phase;

	if (md_id_check(id, "vm id", err) < 0)
		return -1;
	*lockfd = md_vmrec_lock(&c->paths, id, c->lock_timeout_ns, err);
	if (*lockfd < 0)
		return -1;
	if (md_vmrec_load(&c->paths, id, rec, err) < 0) {
		close(*lockfd);
		*lockfd = -1;
		return -1;
	}
	phase = rec_str(*rec, "phase");
	if (states != ANY && phase)
		return unfinished(id, phase, verb, err);
	refresh_locked(c, id, *rec);
	if (states != ANY && !(states & IN(rec_state(*rec))))
		return wrong_state(id, *rec, verb, err);
	return 0;
}

/* ---- uid/gid allocation ---- */

static int uid_range(uint64_t *lo, uint64_t *hi, md_err **err)
{
	const char *r = getenv("UNKEY_METALD_JAILER_UID_RANGE");
	char a[32], b[32];
	const char *dash;

	*lo = 900000;
	*hi = 999999;
	if (r == NULL || *r == '\0')
		return 0;
	dash = strchr(r, '-');
	if (dash == NULL || (size_t)(dash - r) >= sizeof(a) || strlen(dash + 1) >= sizeof(b))
		return md_usage(err, "UNKEY_METALD_JAILER_UID_RANGE `%s`: must be FIRST-LAST", r);
	snprintf(a, sizeof(a), "%.*s", (int)(dash - r), r);
	snprintf(b, sizeof(b), "%s", dash + 1);
	if (md_parse_u64(a, 1, 4294967294ULL, lo, err) < 0 || md_parse_u64(b, 1, 4294967294ULL, hi, err) < 0)
		return md_err_wrap(err, "UNKEY_METALD_JAILER_UID_RANGE");
	if (*hi < *lo)
		return md_usage(err, "UNKEY_METALD_JAILER_UID_RANGE `%s`: LAST is below FIRST", r);
	return 0;
}

/* Each VM's uid is claimed by a file <data>/uids/<uid> holding the VM's id, made with O_EXCL
 * under the allocation lock: the lowest free uid is found without reading every record, so the
 * 1000th create costs what the 1st does. A claim whose VM record is gone is stale (a create
 * that died before it saved the uid): it is taken over. */
static int alloc_uid(struct md_vm_ctx *c, const char *id, uint64_t *uid, md_err **err)
{
	_cleanup_free_ char *dir = md_path_join(c->paths.data_dir, "uids");
	uint64_t lo, hi;

	if (uid_range(&lo, &hi, err) < 0 || md_mkdir_p(dir, 0700, err) < 0)
		return -1;
	for (uint64_t u = lo; u <= hi; u++) {
		_cleanup_free_ char *f = md_strdup_printf("%s/%llu", dir, (unsigned long long)u);
		_cleanup_close_ int fd = open(f, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);

		if (fd < 0 && errno == EEXIST) {
			_cleanup_free_ char *owner = NULL, *rd = NULL;
			struct stat st;

			if (md_read_file(f, &owner, NULL, NULL) < 0)
				continue;
			owner[strcspn(owner, "\n")] = '\0';
			rd = md_id_check(owner, "vm id", NULL) == 0 ? md_vmrec_dir(&c->paths, owner) : NULL;
			if (rd && stat(rd, &st) == 0)
				continue; /* held */
			unlink(f);
			fd = open(f, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
		}
		if (fd < 0)
			return md_fail(err, errno, "claim uid: `%s`", f);
		if (dprintf(fd, "%s\n", id) < 0 || fsync(fd) < 0)
			return md_fail(err, errno, "claim uid: `%s`", f);
		*uid = u;
		return md_fsync_dir(dir, err);
	}
	return md_fail(err, 0, "no free uid left in UNKEY_METALD_JAILER_UID_RANGE %llu-%llu", (unsigned long long)lo,
		       (unsigned long long)hi);
}

/* Give a VM's uid back (delete): under the allocation lock, and only while the claim is still
 * this VM's (once its record is gone, a create may have taken the uid over already). */
static void release_uid(struct md_vm_ctx *c, const char *id, json_t *rec)
{
	json_t *u = json_object_get(rec, "uid");
	_cleanup_free_ char *f = NULL, *allocl = NULL, *owner = NULL;
	_cleanup_close_ int al = -1;

	if (!json_is_integer(u))
		return;
	f = md_strdup_printf("%s/uids/%lld", c->paths.data_dir, (long long)json_integer_value(u));
	allocl = md_strdup_printf("%s/vms/.alloc.lock", c->paths.data_dir);
	al = md_lock(allocl, true, c->lock_timeout_ns, NULL);
	if (al < 0 || md_read_file(f, &owner, NULL, NULL) < 0)
		return; /* a claim left behind is taken over by the next create that finds no record */
	owner[strcspn(owner, "\n")] = '\0';
	if (!strcmp(owner, id))
		unlink(f);
}

/* ---- VMM choice ---- */

static int choose_vmm(const char *flag, char **out, md_err **err)
{
	const char *v = flag ? flag : getenv("UNKEY_METALD_BACKEND");

	if (v && *v) {
		if (strcmp(v, "qemu") && strcmp(v, "firecracker"))
			return md_usage(err, "vmm `%s`: must be firecracker or qemu", v);
		*out = strdup(v);
		return 0;
	}
	/* auto: Firecracker when it is installed and KVM works, else QEMU (which can fall back to TCG) */
	{
		_cleanup_free_ char *fc = vmm_binary("firecracker");
		int kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);

		if (kvm >= 0)
			close(kvm);
		*out = strdup(access(fc, X_OK) == 0 && kvm >= 0 ? "firecracker" : "qemu");
	}
	return 0;
}

static int show(struct md_vm_ctx *c, const char *id, bool usage, json_t **out, md_err **err);
static int do_delete(struct md_vm_ctx *c, const char *id, json_t *rec, md_err **err);

/* ---- create ---- */

static void undo_create(struct md_vm_ctx *c, const char *id, bool net_made)
{
	md_err *e = NULL;

	if (net_made) {
		struct md_av a = { 0 };
		av_prog(c, &a, "metald-net", true);
		md_av_add(&a, "delete");
		md_av_add(&a, "--id");
		md_av_add(&a, id);
		if (run_tool(&a, 60ULL * 1000000000ULL, NULL, &e) < 0) {
			md_warn("undo create `%s`: network: %s", id, e->msg);
			md_err_free(&e);
		}
		md_av_free(&a);
	}
	if (md_vmrec_remove(&c->paths, id, &e) < 0) {
		md_warn("undo create `%s`: %s", id, e->msg);
		md_err_free(&e);
	}
}

/* A writable disk gets a private copy (reflink where the filesystem can), so a shared base image
 * is never modified by a guest; read-only disks are used in place. */
static int private_copy(const char *src, const char *dst, md_err **err)
{
	struct md_av a = { 0 };
	int r;

	md_av_add(&a, "cp");
	md_av_add(&a, "--reflink=auto");
	md_av_add(&a, "--sparse=always");
	md_av_add(&a, "--");
	md_av_add(&a, src);
	md_av_add(&a, dst);
	r = run_tool(&a, 600ULL * 1000000000ULL, NULL, err);
	md_av_free(&a);
	return r < 0 ? md_err_wrap(err, "copy disk `%s`", src) : 0;
}

int md_vm_create(struct md_vm_ctx *c, const struct md_config *cfg0, const struct md_vm_create_opts *o,
		 json_t **out, md_err **err)
{
	char idbuf[32];
	const char *id = o->id ? o->id : cfg0->vm_id;
	const char *tenant, *customer;
	_cleanup_free_ char *vmm = NULL, *dir = NULL, *allocl = NULL, *netf = NULL;
	_cleanup_json_ json_t *rec = NULL, *cfgj = NULL, *net = NULL;
	_cleanup_close_ int lockfd = -1;
	struct md_config *cfg = NULL;
	uint64_t uid = 0;
	size_t logmax;
	bool net_made = false;
	struct stat st;

	if (id == NULL) {
		if (md_id_generate(idbuf, sizeof(idbuf), err) < 0)
			return -1;
		id = idbuf;
	}
	if (md_id_check(id, "vm id", err) < 0)
		return -1;
	customer = cfg0->customer_id ? cfg0->customer_id : md_map_get(&cfg0->metadata, "customer_id");
	tenant = o->tenant ? o->tenant : md_map_get(&cfg0->metadata, "tenant_id");
	if (tenant == NULL)
		tenant = customer ? customer : "default";
	if (customer == NULL)
		customer = tenant;
	if (md_id_check(tenant, "tenant", err) < 0)
		return -1;
	if (choose_vmm(o->vmm, &vmm, err) < 0)
		return -1;
	if (o->boot && log_max(&logmax, err) < 0)
		return -1;
	/* fail before anything is made when the files are not there */
	if (stat(cfg0->boot.kernel_path, &st) < 0)
		return md_notfound(err, "kernel `%s`: %s", cfg0->boot.kernel_path, strerror(errno));
	if (cfg0->boot.initrd_path && stat(cfg0->boot.initrd_path, &st) < 0)
		return md_notfound(err, "initrd `%s`: %s", cfg0->boot.initrd_path, strerror(errno));
	for (size_t i = 0; i < cfg0->n_storage; i++)
		if (stat(cfg0->storage[i].path, &st) < 0)
			return md_notfound(err, "disk `%s`: %s", cfg0->storage[i].path, strerror(errno));

	/* 1. the record, before anything it names exists (made with its lock held: a conflict here
	 * is another's record, never ours to undo) */
	lockfd = md_vmrec_make(&c->paths, id, err);
	if (lockfd < 0)
		return -1;
	dir = md_vmrec_dir(&c->paths, id);
	rec = json_pack("{s:s, s:s, s:s, s:s, s:s, s:n, s:s, s:I}", "id", id, "state", "CREATED", "phase", "creating",
			"customer_id", customer, "tenant", tenant, "reason", "vmm", vmm, "created_ns",
			(json_int_t)md_now_wall_ns());
	/* 2. uid/gid from the range, under the allocation lock so two creates never share one */
	allocl = md_strdup_printf("%s/vms/.alloc.lock", c->paths.data_dir);
	{
		_cleanup_close_ int al = md_lock(allocl, true, c->lock_timeout_ns, err);
		if (al < 0 || alloc_uid(c, id, &uid, err) < 0)
			goto fail;
		json_object_set_new(rec, "uid", json_integer((json_int_t)uid));
		json_object_set_new(rec, "gid", json_integer((json_int_t)uid));
		if (md_vmrec_save(&c->paths, id, rec, err) < 0)
			goto fail;
	}
	fault_point("create", "record");

	/* 3. disks: private copies of writable disks under the record */
	{
		/* a private copy of the config, whose disk paths this step rewrites */
		_cleanup_json_ json_t *copy = md_config_to_json(cfg0, MD_CONFIG_JSON_REQUEST);
		if (md_config_parse(copy, &cfg, err) < 0)
			goto fail;
	}
	for (size_t i = 0; i < cfg->n_storage; i++) {
		if (cfg->storage[i].read_only)
			continue;
		char *dst = md_strdup_printf("%s/disk-%zu.img", dir, i);
		/* the VM's own: its jailed VMM (running as uid) writes it through a bind mount */
		if (private_copy(cfg->storage[i].path, dst, err) < 0 ||
		    (chown(dst, (uid_t)uid, (gid_t)uid) < 0 && md_fail(err, errno, "chown `%s`", dst))) {
			free(dst);
			goto fail;
		}
		free(cfg->storage[i].path);
		cfg->storage[i].path = dst;
	}
	cfgj = md_config_to_json(cfg, 0);
	{
		_cleanup_free_ char *cf = md_vmrec_file(&c->paths, id, "config.json");
		if (md_json_write_atomic(cf, cfgj, 0600, err) < 0)
			goto fail;
	}
	fault_point("create", "disks");

	/* 4. network */
	{
		struct md_av a = { 0 };
		int r;

		av_prog(c, &a, "metald-net", true);
		md_av_add(&a, "create");
		md_av_add(&a, "--id");
		md_av_add(&a, id);
		md_av_add(&a, "--tenant");
		md_av_add(&a, tenant);
		md_av_addf(&a, "--uid=%llu", (unsigned long long)uid);
		md_av_addf(&a, "--gid=%llu", (unsigned long long)uid);
		for (size_t i = 0; i < cfg->n_network && i < 1; i++) {
			if (cfg->network[i].mac_address)
				md_av_addf(&a, "--mac=%s", cfg->network[i].mac_address);
			if (cfg->network[i].ipv4.address)
				md_av_addf(&a, "--ipv4=%s", cfg->network[i].ipv4.address);
			if (cfg->network[i].ipv6.address)
				md_av_addf(&a, "--ipv6=%s", cfg->network[i].ipv6.address);
		}
		for (size_t i = 0; o->publish && o->publish[i]; i++)
			md_av_addf(&a, "--publish=%s", o->publish[i]);
		if (o->rate)
			md_av_addf(&a, "--rate=%s", o->rate);
		md_av_add(&a, "--json");
		net_made = true; /* from here on, undo runs delete (idempotent) */
		r = run_tool(&a, 60ULL * 1000000000ULL, &net, err);
		md_av_free(&a);
		if (r < 0) {
			md_err_wrap(err, "network");
			goto fail;
		}
	}
	netf = md_vmrec_file(&c->paths, id, "net.json");
	if (md_json_write_atomic(netf, net, 0600, err) < 0)
		goto fail;
	fault_point("create", "network");

	/* 5. done */
	json_object_set_new(rec, "phase", json_null());
	if (md_vmrec_save(&c->paths, id, rec, err) < 0)
		goto fail;
	md_config_free(cfg);
	cfg = NULL;
	close(steal_fd(&lockfd));
	if (o->boot && md_vm_boot(c, id, o->paused, out, err) < 0) {
		/* create --boot is one step for its caller: a failed boot undoes the create too */
		json_t *r2 = NULL;
		int fd = md_vmrec_lock(&c->paths, id, c->lock_timeout_ns, NULL);

		if (fd >= 0 && md_vmrec_load(&c->paths, id, &r2, NULL) == 0) {
			md_err *e = NULL;

			if (do_delete(c, id, r2, &e) < 0) {
				md_warn("create vm `%s`: undo: %s (run `metald-vm reconcile`)", id, e->msg);
				md_err_free(&e);
			}
			json_decref(r2);
		}
		if (fd >= 0)
			close(fd);
		return -1;
	}
	if (o->boot)
		return 0;
	return show(c, id, false, out, err);

fail:
	md_config_free(cfg);
	md_err_wrap(err, "create vm `%s`", id);
	undo_create(c, id, net_made);
	return -1;
}

/* ---- boot ---- */

/* The hierarchy the jail will use (it runs with --cgroup-version auto): the file names of the
 * limits depend on it. */
static bool cgroup_v2(void)
{
	int v = 0;

	return md_cgroup_detect(NULL, &v, NULL) == 0 && v == MD_CG_V2;
}

/* The config as the VMM sees it inside the jail: files at fixed places in the jail's root. */
static json_t *jail_config(const struct md_config *cfg)
{
	json_t *j = md_config_to_json(cfg, 0);
	json_t *boot = json_object_get(j, "boot"), *storage = json_object_get(j, "storage"), *d;
	size_t i;

	json_object_set_new(boot, "kernel_path", json_string("/vmlinux"));
	if (cfg->boot.initrd_path)
		json_object_set_new(boot, "initrd_path", json_string("/initrd"));
	json_array_foreach(storage, i, d) {
		char p[32];

		snprintf(p, sizeof(p), "/disk-%zu", i);
		json_object_set_new(d, "path", json_string(p));
	}
	return j;
}

/* cgroup membership of a pid, for the meter: {"version":1,"paths":{ctrl:dir}} or
 * {"version":2,"path":dir}. */
static json_t *pid_cgroups(pid_t pid)
{
	char path[64];
	_cleanup_free_ char *buf = NULL;
	const char *root = md_cgroup_root(NULL);
	json_t *paths = json_object();
	char *save = NULL, *line;

	snprintf(path, sizeof(path), "/proc/%d/cgroup", (int)pid);
	if (md_read_file(path, &buf, NULL, NULL) < 0)
		return json_pack("{s:i, s:o}", "version", 1, "paths", paths);
	for (line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char *c1 = strchr(line, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL;

		if (!c2)
			continue;
		*c2 = '\0';
		if (c1[1] == '\0' && cgroup_v2()) {
			json_decref(paths);
			return json_pack("{s:i, s:s++}", "version", 2, "path", root, "", c2 + 1);
		}
		for (char *s2 = NULL, *ctrl = strtok_r(c1 + 1, ",", &s2); ctrl; ctrl = strtok_r(NULL, ",", &s2)) {
			if (!strcmp(ctrl, "cpuacct") || !strcmp(ctrl, "memory") || !strcmp(ctrl, "blkio") ||
			    !strcmp(ctrl, "cpu") || !strcmp(ctrl, "pids"))
				json_object_set_new(paths, ctrl, json_sprintf("%s/%s%s", root, ctrl, c2 + 1));
		}
	}
	return json_pack("{s:i, s:o}", "version", 1, "paths", paths);
}

/* All VMs' cgroups live under one parent; the jail makes <parent>/<id>. */
static const char *cgroup_parent(void)
{
	const char *p = getenv("UNKEY_METALD_CGROUP_PARENT");

	return p && *p ? p : "metald";
}

/* metald-jail VERB naming this VM's jail as metald-vm made it. */
static void jail_verb(struct md_vm_ctx *c, struct md_av *a, const char *verb, const char *id, const char *exec_name)
{
	av_prog(c, a, "metald-jail", false);
	md_av_add(a, verb);
	md_av_add(a, "--id");
	md_av_add(a, id);
	md_av_add(a, "--chroot-base-dir");
	md_av_add(a, c->paths.chroot_dir);
	md_av_add(a, "--exec-file");
	md_av_add(a, exec_name);
	md_av_add(a, "--parent-cgroup");
	md_av_add(a, cgroup_parent());
}

static int jail_clean(struct md_vm_ctx *c, const char *id, const char *exec_name, bool kill_first, md_err **err)
{
	struct md_av a = { 0 };
	int r;

	jail_verb(c, &a, "clean", id, exec_name);
	if (kill_first)
		md_av_add(&a, "--kill");
	r = run_tool(&a, 60ULL * 1000000000ULL, NULL, err);
	md_av_free(&a);
	return r < 0 ? md_err_wrap(err, "clean jail") : 0;
}

/* Under KVM the VMM's in-kernel PIT has a kernel thread, kvm-pit/<pid>, made outside the jail's
 * cgroups: move it in, so its CPU time is the VM's. Not there (TCG, or a VMM that made no PIT):
 * nothing to do. Best effort: the VM runs either way. */
static void jail_kvm_pit(struct md_vm_ctx *c, const char *id, const char *exec_name)
{
	struct md_av a = { 0 };
	md_err *e = NULL;

	jail_verb(c, &a, "kvm-pit", id, exec_name);
	if (run_tool(&a, 30ULL * 1000000000ULL, NULL, &e) < 0) {
		if (e->code == MD_EXIT_NOTFOUND)
			md_debug("vm `%s`: %s", id, e->msg);
		else
			md_warn("vm `%s`: kvm-pit thread: %s", id, e->msg);
		md_err_free(&e);
	}
	md_av_free(&a);
}

/* metald-boot <verb> for this VM's VMM, with extra arguments. */
static int boot_tool(struct md_vm_ctx *c, const char *id, json_t *rec, const char *verb, json_t **out,
		     uint64_t timeout_ns, md_err **err, ...)
{
	struct md_av a = { 0 };
	const char *extra;
	va_list ap;
	int r;

	(void)id;
	av_prog(c, &a, "metald-boot", true);
	md_av_add(&a, verb);
	md_av_add(&a, "--vmm");
	md_av_add(&a, rec_str(rec, "vmm"));
	md_av_add(&a, "--socket");
	md_av_add(&a, rec_str(rec, "api_socket"));
	va_start(ap, err);
	while ((extra = va_arg(ap, const char *)) != NULL)
		md_av_add(&a, extra);
	va_end(ap);
	if (out)
		md_av_add(&a, "--json");
	r = run_tool(&a, timeout_ns, out, err);
	md_av_free(&a);
	return r;
}

/* Firecracker's metrics file: /metrics.json in the jail, <chroot>/metrics.json on the host (NULL
 * for QEMU, or a record without a jail). */
#define FC_METRICS_NAME "metrics.json"

static char *fc_metrics_host_path(json_t *rec)
{
	if (strcmp(rec_str(rec, "vmm"), "firecracker") != 0 || rec_str(rec, "chroot") == NULL)
		return NULL;
	return md_path_join(rec_str(rec, "chroot"), FC_METRICS_NAME);
}

/*
 * Make the empty metrics file in the jail's root, the VM's own, mode 0600, before PUT /metrics
 * names it. A regular file, not a FIFO: Firecracker opens either O_RDWR|O_NONBLOCK and never waits
 * for a reader, but a FIFO drops every line written while the meter is not reading (stopped,
 * restarting, or behind), and those lines are the only copy of the per-flush deltas. A file keeps
 * them all; the meter records its offset in the ledger and reads on from there. Firecracker does not
 * append (no O_APPEND) but it is the only writer and writes from 0 on, so the file only grows: one
 * line at boot, every 60 s, on FlushMetrics and on SIGHUP. It goes with the jail.
 *
 * The root is the VM's (0700, its uid) and the VMM is already running: O_EXCL and O_NOFOLLOW on a
 * directory opened without following links, so whatever the VMM put there is refused, not followed.
 */
static int fc_metrics_file(const char *chroot, uid_t uid, gid_t gid, md_err **err)
{
	_cleanup_close_ int dfd = open(chroot, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	_cleanup_close_ int fd = -1;

	if (dfd < 0)
		return md_fail(err, errno, "metrics file: open `%s`", chroot);
	fd = openat(dfd, FC_METRICS_NAME, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		return md_fail(err, errno, "metrics file `%s/%s`", chroot, FC_METRICS_NAME);
	if (fchown(fd, uid, gid) < 0 || fchmod(fd, 0600) < 0)
		return md_fail(err, errno, "metrics file `%s/%s`: chown", chroot, FC_METRICS_NAME);
	return 0;
}

static void write_meter_target(struct md_vm_ctx *c, const char *id, json_t *rec, json_t *net)
{
	_cleanup_free_ char *dir = md_strdup_printf("%s/meter", c->paths.run_dir);
	_cleanup_free_ char *f = meter_target_path(c, id);
	_cleanup_json_ json_t *t = NULL;
	md_err *e = NULL;
	const char *vmm = rec_str(rec, "vmm");

	t = json_pack("{s:s, s:s, s:s, s:s, s:I, s:I, s:I, s:o, s:{s:O, s:n}}", "id", id, "customer_id",
		      rec_str(rec, "customer_id"), "tenant", rec_str(rec, "tenant"), "vmm", vmm, "pid",
		      rec_int(rec, "pid"), "pid_start", rec_int(rec, "pid_start"), "started_wall_ns",
		      rec_int(rec, "booted_ns"), "cgroup", pid_cgroups((pid_t)rec_int(rec, "pid")), "net", "link",
		      json_object_get(net, "host_link") ? json_object_get(net, "host_link") : json_null(), "netns");
	json_object_set_new(t, "qmp", !strcmp(vmm, "qemu") ? json_string(rec_str(rec, "api_socket")) : json_null());
	/* Firecracker's own metrics (disk and network as the VMM counts them), when its boot made
	 * the file: the meter sums its lines beside the cgroup and link counters */
	{
		_cleanup_free_ char *m = fc_metrics_host_path(rec);
		struct stat st;
		bool made = m && lstat(m, &st) == 0 && S_ISREG(st.st_mode);

		json_object_set_new(t, "fc_metrics", made ? json_string(m) : json_null());
	}
	if (md_mkdir_p(dir, 0755, &e) < 0 || md_json_write_atomic(f, t, 0644, &e) < 0) {
		/* metering must not stop a VM from running; reconcile writes a missing target */
		md_warn("vm `%s`: meter target: %s (run `metald-vm reconcile`)", id, e->msg);
		md_err_free(&e);
	} else if (!md_proc_alive((pid_t)rec_int(rec, "pid"), (uint64_t)rec_int(rec, "pid_start"))) {
		/* the VMM ended (and its keeper removed the target) before this write */
		unlink(f);
	}
}

/* The keeper ends right after the VMM (it writes exit.json, then exits); wait for it so nothing
 * of the VM is running when a verb returns. */
static void wait_keeper(json_t *rec)
{
	pid_t k = (pid_t)rec_int(rec, "keeper_pid");

	for (int i = 0; i < 200 && k > 0 && md_proc_alive(k, 0); i++)
		md_sleep_ns(5000000);
}

/* The VMM (or its jail) ended before it ran: its own last words, written to vmm.log after offset
 * `from` (the log of earlier boots is not this one's), are the reason. */
static void vmm_died(const char *vmmlog, const char *exitf, size_t from, md_err **err)
{
	_cleanup_free_ char *vl = NULL, *l = NULL;
	size_t n = 0;

	for (int i = 0; i < 50 && access(exitf, F_OK) < 0; i++)
		md_sleep_ns(10000000);
	if (md_read_file(vmmlog, &vl, &n, NULL) == 0 && n > from && *(l = last_line(vl + from)))
		md_fail(err, 0, "the VMM exited before it ran: %s", l);
	else
		md_fail(err, 0, "the VMM exited before it ran (see `%s`)", vmmlog);
}

/* metald-boot VERB for a VM being booted: the socket, the VMM's pid (so a dead VMM ends the
 * wait at once), the jail's view of the config and the network. */
static void vmm_api_argv(struct md_vm_ctx *c, struct md_av *a, json_t *rec, const char *verb, pid_t pid)
{
	_cleanup_free_ char *jcfgf = md_vmrec_file(&c->paths, rec_str(rec, "id"), "config.jail.json");
	_cleanup_free_ char *netf = md_vmrec_file(&c->paths, rec_str(rec, "id"), "net.json");

	av_prog(c, a, "metald-boot", true);
	md_av_add(a, verb);
	md_av_add(a, "--vmm");
	md_av_add(a, rec_str(rec, "vmm"));
	md_av_add(a, "--socket");
	md_av_add(a, rec_str(rec, "api_socket"));
	md_av_addf(a, "--pid=%d", (int)pid);
	md_av_add(a, "--timeout=60s");
	if (!strcmp(verb, "start")) {
		md_av_add(a, "--config");
		md_av_add(a, jcfgf);
		md_av_add(a, "--net");
		md_av_add(a, netf);
	}
}

/* Put a kernel or initrd at /<name> in the jail. A world-readable file is bound read-only: it is
 * shared by every VM and its owner stays as it is (a hard link would be chowned to one VM's uid).
 * Any other file gets a private copy under the record, which the jail links and gives to the
 * VM's uid. */
static int boot_file(struct md_vm_ctx *c, const char *id, struct md_av *chain, const char *src, const char *name,
		     md_err **err)
{
	struct stat st;

	if (stat(src, &st) < 0)
		return md_notfound(err, "`%s`: %s", src, strerror(errno));
	if (st.st_mode & S_IROTH) {
		md_av_addf(chain, "--bind=%s:/%s:ro", src, name);
		return 0;
	}
	{
		_cleanup_free_ char *copy = md_vmrec_file(&c->paths, id, name);

		unlink(copy);
		if (private_copy(src, copy, err) < 0)
			return -1;
		md_av_addf(chain, "--link=%s:/%s", copy, name);
	}
	return 0;
}

static int do_boot(struct md_vm_ctx *c, const char *id, json_t *rec, bool paused, md_err **err)
{
	_cleanup_free_ char *cfgf = md_vmrec_file(&c->paths, id, "config.json");
	_cleanup_free_ char *netf = md_vmrec_file(&c->paths, id, "net.json");
	_cleanup_free_ char *jcfgf = md_vmrec_file(&c->paths, id, "config.jail.json");
	_cleanup_free_ char *serial = md_vmrec_file(&c->paths, id, "serial.log");
	_cleanup_free_ char *vmmlog = md_vmrec_file(&c->paths, id, "vmm.log");
	_cleanup_free_ char *exitf = md_vmrec_file(&c->paths, id, "exit.json");
	_cleanup_free_ char *target = meter_target_path(c, id);
	_cleanup_free_ char *bin = NULL, *chroot = NULL, *sock = NULL;
	_cleanup_json_ json_t *net = NULL, *jcfg = NULL, *vmm_argv = NULL;
	struct md_config *cfg = NULL;
	struct md_av chain = { 0 };
	const char *vmm = rec_str(rec, "vmm"), *exec_name;
	bool qemu = !strcmp(vmm, "qemu");
	bool kvm = !qemu; /* Firecracker runs under KVM only; QEMU as its probe says */
	pid_t vmm_pid = 0, keeper_pid = 0;
	uint64_t start = 0, mem_limit;
	size_t vmmlog_size = 0, logmax;
	int r = -1;

	if (log_max(&logmax, err) < 0)
		return md_err_wrap(err, "boot vm `%s`", id);
	if (md_config_parse_file(cfgf, &cfg, err) < 0 || md_json_read(netf, &net, err) < 0)
		return md_err_wrap(err, "boot vm `%s`: record", id);
	bin = vmm_binary(vmm);
	if (access(bin, X_OK) < 0) {
		md_missing(err, "boot vm `%s`: VMM `%s` is not installed", id, bin);
		goto out;
	}
	{
		/* the jail names its directory after the exec file it resolves (symlinks followed) */
		char *real = realpath(bin, NULL);

		if (real) {
			free(bin);
			bin = real;
		}
	}
	exec_name = strrchr(bin, '/') ? strrchr(bin, '/') + 1 : bin;
	chroot = md_strdup_printf("%s/%s/%s/root", c->paths.chroot_dir, exec_name, id);
	sock = md_strdup_printf("%s/run/%s", chroot, qemu ? "qmp.sock" : "firecracker.socket");
	json_object_set_new(rec, "chroot", json_string(chroot));
	json_object_set_new(rec, "exec_name", json_string(exec_name));
	json_object_set_new(rec, "api_socket", json_string(sock));
	json_object_set_new(rec, "phase", json_string("booting"));
	if (md_vmrec_save(&c->paths, id, rec, err) < 0)
		goto out;
	fault_point("boot", "record");

	jcfg = jail_config(cfg);
	if (md_json_write_atomic(jcfgf, jcfg, 0600, err) < 0)
		goto out;

	/* the VMM's own command line */
	if (qemu) {
		struct md_av a = { 0 };
		_cleanup_json_ json_t *acc = NULL;

		/* KVM only where a guest really runs under it (probed once, then cached) */
		av_prog(c, &a, "metald-boot", true);
		md_av_add(&a, "accel");
		md_av_add(&a, "--kernel");
		md_av_add(&a, cfg->boot.kernel_path);
		md_av_add(&a, "--json");
		r = run_tool(&a, 120ULL * 1000000000ULL, &acc, err);
		md_av_free(&a);
		if (r < 0) {
			md_err_wrap(err, "accelerator");
			goto out;
		}
		kvm = !strcmp(json_string_value(json_object_get(acc, "accel")) ?: "", "kvm");
		av_prog(c, &a, "metald-boot", true);
		md_av_add(&a, "argv");
		md_av_addf(&a, "--accel=%s", json_string_value(json_object_get(acc, "accel")));
		md_av_add(&a, "--in-jail");
		md_av_add(&a, "--vmm");
		md_av_add(&a, "qemu");
		md_av_add(&a, "--config");
		md_av_add(&a, jcfgf);
		md_av_add(&a, "--net");
		md_av_add(&a, netf);
		md_av_add(&a, "--qmp");
		md_av_add(&a, "/run/qmp.sock");
		md_av_add(&a, "--serial");
		md_av_add(&a, "stdio");
		md_av_add(&a, "--json");
		r = run_tool(&a, 120ULL * 1000000000ULL, &vmm_argv, err);
		md_av_free(&a);
		if (r < 0) {
			md_err_wrap(err, "vmm command line");
			goto out;
		}
		r = -1;
	}

	if (md_mkdir_p(c->paths.chroot_dir, 0755, err) < 0)
		goto out;
	/* stale jail of an earlier boot (its VMM is gone: the state said so) */
	if (jail_clean(c, id, exec_name, true, err) < 0)
		goto out;

	/* the chain: metald-jail ... -- vmm ... */
	av_prog(c, &chain, "metald-jail", false);
	md_av_add(&chain, "--id");
	md_av_add(&chain, id);
	md_av_add(&chain, "--exec-file");
	md_av_add(&chain, bin);
	md_av_addf(&chain, "--uid=%lld", (long long)rec_int(rec, "uid"));
	md_av_addf(&chain, "--gid=%lld", (long long)rec_int(rec, "gid"));
	md_av_add(&chain, "--chroot-base-dir");
	md_av_add(&chain, c->paths.chroot_dir);
	md_av_add(&chain, "--parent-cgroup");
	md_av_add(&chain, cgroup_parent());
	md_av_add(&chain, "--exec-mode=bind");
	md_av_add(&chain, "--netns");
	md_av_add(&chain, json_string_value(json_object_get(net, "netns")));
	/* limits: vCPUs as CPU bandwidth, memory with room for the VMM itself */
	mem_limit = (uint64_t)cfg->memory.size_bytes + (qemu ? 384ULL : 64ULL) * 1024 * 1024;
	if (cgroup_v2()) {
		md_av_addf(&chain, "--cgroup=cpu.max=%d 100000", cfg->cpu.vcpu_count * 100000);
		md_av_addf(&chain, "--cgroup=memory.max=%llu", (unsigned long long)mem_limit);
		md_av_add(&chain, "--cgroup=pids.max=4096");
	} else {
		md_av_addf(&chain, "--cgroup=cpu.cfs_quota_us=%d", cfg->cpu.vcpu_count * 100000);
		md_av_addf(&chain, "--cgroup=memory.limit_in_bytes=%llu", (unsigned long long)mem_limit);
		/* v1 keeps accounting in hierarchies of their own: the VM needs its own cgroup in
		 * them too, or the meter would read the whole machine's counters. These writes are
		 * no-ops on a new cgroup; they name the controllers. */
		md_av_add(&chain, "--cgroup=cpuacct.usage=0");
		md_av_add(&chain, "--cgroup=blkio.reset_stats=0");
		md_av_add(&chain, "--cgroup=pids.max=4096");
	}
	if (boot_file(c, id, &chain, cfg->boot.kernel_path, "vmlinux", err) < 0 ||
	    (cfg->boot.initrd_path && boot_file(c, id, &chain, cfg->boot.initrd_path, "initrd", err) < 0))
		goto out;
	for (size_t i = 0; i < cfg->n_storage; i++) {
		md_av_add(&chain, "--bind");
		md_av_addf(&chain, "%s:/disk-%zu%s", cfg->storage[i].path, i, cfg->storage[i].read_only ? ":ro" : "");
	}
	/* a dynamically linked VMM needs its libraries and data, read-only */
	md_av_add(&chain, "--bind=/usr:/usr:ro");
	md_av_add(&chain, "--bind=/lib:/lib:ro");
	if (access("/lib64", F_OK) == 0)
		md_av_add(&chain, "--bind=/lib64:/lib64:ro");
	md_av_add(&chain, "--bind=/dev/null:/dev/null");
	md_av_add(&chain, qemu ? "--seccomp=qemu" : "--seccomp=default");
	md_av_add(&chain, "--");
	if (qemu) {
		size_t i;
		json_t *arg;

		json_array_foreach(vmm_argv, i, arg)
			if (i > 0) /* [0] is the binary; the jail runs its own copy */
				md_av_add(&chain, json_string_value(arg));
	} else {
		md_av_add(&chain, "--api-sock");
		md_av_add(&chain, "/run/firecracker.socket");
	}

	{
		struct stat vst;

		vmmlog_size = stat(vmmlog, &vst) == 0 ? (size_t)vst.st_size : 0;
	}
	{
		struct md_keeper_spec ks = {
			.argv = chain.v,
			.serial_log = serial,
			.vmm_log = vmmlog,
			.exit_file = exitf,
			.remove_on_exit = target,
			.log_max = logmax,
		};
		if (md_keeper_start(&ks, &vmm_pid, &keeper_pid, err) < 0)
			goto out;
	}
	if (md_proc_start_time(vmm_pid, &start, NULL) < 0) {
		/* gone already (or a zombie): without its start time the pid proves nothing */
		vmm_died(vmmlog, exitf, vmmlog_size, err);
		vmm_pid = 0;
		goto kill;
	}
	json_object_set_new(rec, "pid", json_integer(vmm_pid));
	json_object_set_new(rec, "pid_start", json_integer((json_int_t)start));
	json_object_set_new(rec, "keeper_pid", json_integer(keeper_pid));
	json_object_del(rec, "exit");
	if (md_vmrec_save(&c->paths, id, rec, err) < 0)
		goto kill;
	fault_point("boot", "vmm");

	/* configure and start through the VMM's API (QEMU held paused at -S: only wait for it) */
	{
		struct md_av a = { 0 };

		if (paused && qemu) {
			/* held at -S: the boot is done when QMP accepts connections */
			int fd = md_unix_connect_wait(sock, 60ULL * 1000000000ULL, vmm_pid, err);
			r = fd < 0 ? -1 : 0;
			if (fd >= 0)
				close(fd);
		} else if (qemu) {
			vmm_api_argv(c, &a, rec, "start", vmm_pid);
			r = run_tool(&a, 120ULL * 1000000000ULL, NULL, err);
			md_av_free(&a);
		} else {
			/* the API socket is there once the jail is built: then the metrics file goes
			 * into its root, before the VMM is configured to write it */
			int fd = md_unix_connect_wait(sock, 60ULL * 1000000000ULL, vmm_pid, err);

			r = fd < 0 ? -1 : 0;
			if (fd >= 0)
				close(fd);
			if (r == 0)
				r = fc_metrics_file(chroot, (uid_t)rec_int(rec, "uid"), (gid_t)rec_int(rec, "gid"), err);
			if (r == 0) {
				vmm_api_argv(c, &a, rec, "start", vmm_pid);
				md_av_add(&a, "--metrics=/" FC_METRICS_NAME);
				r = run_tool(&a, 120ULL * 1000000000ULL, NULL, err);
				md_av_free(&a);
			}
		}
		if (r < 0) {
			/* say why the VMM died, when it did */
			if (!md_proc_alive(vmm_pid, start)) {
				md_err_free(err);
				vmm_died(vmmlog, exitf, vmmlog_size, err);
			} else {
				md_err_wrap(err, "start");
			}
			r = -1;
			goto kill;
		}
		r = -1;
		if (paused && !qemu) {
			/* Firecracker has no "created but not started": start, then pause at once */
			vmm_api_argv(c, &a, rec, "pause", vmm_pid);
			r = run_tool(&a, 60ULL * 1000000000ULL, NULL, err);
			md_av_free(&a);
			if (r < 0) {
				md_err_wrap(err, "pause");
				goto kill;
			}
			r = -1;
		}
	}
	fault_point("boot", "started");
	if (kvm)
		jail_kvm_pit(c, id, exec_name);

	json_object_set_new(rec, "booted_ns", json_integer((json_int_t)md_now_wall_ns()));
	json_object_set_new(rec, "phase", json_null());
	/* QEMU held at -S has never run its vCPUs: resume starts it rather than continues it */
	json_object_set_new(rec, "vcpus_started", json_boolean(!(paused && qemu)));
	rec_set_state(rec, paused ? MD_VM_PAUSED : MD_VM_RUNNING, NULL);
	if (md_vmrec_save(&c->paths, id, rec, err) < 0)
		goto kill;
	write_meter_target(c, id, rec, net);
	r = 0;
	goto out;

kill:
	if (vmm_pid > 0 && md_proc_alive(vmm_pid, start))
		kill(vmm_pid, SIGKILL);
	for (int i = 0; i < 200 && md_proc_alive(vmm_pid, start); i++)
		md_sleep_ns(10000000);
	{
		md_err *e = NULL;
		if (jail_clean(c, id, exec_name, true, &e) < 0) {
			md_warn("boot vm `%s`: undo: %s", id, e->msg);
			md_err_free(&e);
		}
	}
	unlink(target);
	wait_keeper(rec);
	json_object_set_new(rec, "pid", json_null());
out:
	if (r < 0) {
		json_object_set_new(rec, "phase", json_null());
		json_object_set_new(rec, "reason", json_string((*err) ? (*err)->msg : "boot failed"));
		md_vmrec_save(&c->paths, id, rec, NULL);
		md_err_wrap(err, "boot vm `%s`", id);
	}
	md_av_free(&chain);
	md_config_free(cfg);
	return r;
}

int md_vm_boot(struct md_vm_ctx *c, const char *id, bool paused, json_t **out, md_err **err)
{
	_cleanup_close_ int lockfd = -1;
	_cleanup_json_ json_t *rec = NULL;

	if (open_vm(c, id, "boot", IN(MD_VM_CREATED) | IN(MD_VM_SHUTDOWN), &lockfd, &rec, err) < 0)
		return -1;
	if (do_boot(c, id, rec, paused, err) < 0)
		return -1;
	close(steal_fd(&lockfd));
	return show(c, id, false, out, err);
}

/* ---- pause, resume, reboot, shutdown ---- */

/* metald-boot <verb> on a locked record in the right state, then the new state. */
static int transition_locked(struct md_vm_ctx *c, const char *id, json_t *rec, const char *verb, enum md_vm_state to,
			     md_err **err)
{
	if (boot_tool(c, id, rec, verb, NULL, 60ULL * 1000000000ULL, err, NULL) < 0)
		return md_err_wrap(err, "%s vm `%s`", verb, id);
	rec_set_state(rec, to, NULL);
	return md_vmrec_save(&c->paths, id, rec, err);
}

int md_vm_pause(struct md_vm_ctx *c, const char *id, json_t **out, md_err **err)
{
	_cleanup_close_ int lockfd = -1;
	_cleanup_json_ json_t *rec = NULL;

	if (open_vm(c, id, "pause", IN(MD_VM_RUNNING), &lockfd, &rec, err) < 0 ||
	    transition_locked(c, id, rec, "pause", MD_VM_PAUSED, err) < 0)
		return -1;
	close(steal_fd(&lockfd));
	return show(c, id, false, out, err);
}

int md_vm_resume(struct md_vm_ctx *c, const char *id, json_t **out, md_err **err)
{
	_cleanup_close_ int lockfd = -1;
	_cleanup_json_ json_t *rec = NULL;
	json_t *started;
	struct md_av a = { 0 };
	int r;

	if (open_vm(c, id, "resume", IN(MD_VM_PAUSED), &lockfd, &rec, err) < 0)
		return -1;
	started = json_object_get(rec, "vcpus_started");
	if (started && json_is_false(started)) {
		/* booted with --paused: the first resume is the VMM's start */
		vmm_api_argv(c, &a, rec, "start", (pid_t)rec_int(rec, "pid"));
		r = run_tool(&a, 120ULL * 1000000000ULL, NULL, err);
		md_av_free(&a);
		if (r < 0)
			return md_err_wrap(err, "resume vm `%s`", id);
		json_object_set_new(rec, "vcpus_started", json_true());
		rec_set_state(rec, MD_VM_RUNNING, NULL);
		if (md_vmrec_save(&c->paths, id, rec, err) < 0)
			return -1;
	} else if (transition_locked(c, id, rec, "resume", MD_VM_RUNNING, err) < 0) {
		return -1;
	}
	close(steal_fd(&lockfd));
	return show(c, id, false, out, err);
}

/* Stop the VMM (gracefully unless force), then remove its jail. Called with the lock held. */
static int do_shutdown(struct md_vm_ctx *c, const char *id, json_t *rec, uint64_t timeout_ns, bool force,
		       const char *reason, md_err **err)
{
	char to[32], pidarg[32];
	pid_t pid = (pid_t)rec_int(rec, "pid");
	uint64_t start = (uint64_t)rec_int(rec, "pid_start");
	_cleanup_free_ char *target = meter_target_path(c, id);
	_cleanup_free_ char *exitf = md_vmrec_file(&c->paths, id, "exit.json");
	_cleanup_json_ json_t *ex = NULL;

	snprintf(to, sizeof(to), "--timeout=%llums", (unsigned long long)(timeout_ns / 1000000ULL));
	snprintf(pidarg, sizeof(pidarg), "--pid=%d", (int)pid);
	if (md_proc_alive(pid, start) &&
	    boot_tool(c, id, rec, "shutdown", NULL, timeout_ns + 30ULL * 1000000000ULL, err, to, pidarg,
		      force ? "--force" : NULL, NULL) < 0) {
		/* The VMM may have gone between the check and the call: that is a shutdown too. One
		 * whose API does not answer is killed when forced; otherwise the error stands. */
		if (md_proc_alive(pid, start) && force && start != 0) {
			md_warn("shutdown vm `%s`: %s; killing the VMM", id, (*err)->msg);
			kill(pid, SIGKILL);
		} else if (md_proc_alive(pid, start)) {
			return md_err_wrap(err, "shutdown vm `%s`", id);
		}
		md_err_free(err);
	}
	for (int i = 0; i < 500 && md_proc_alive(pid, start); i++)
		md_sleep_ns(10000000);
	if (md_proc_alive(pid, start))
		return md_timeout(err, "shutdown vm `%s`: the VMM (pid %d) is still running", id, (int)pid);
	for (int i = 0; i < 100 && access(exitf, F_OK) < 0; i++)
		md_sleep_ns(10000000);
	if (md_json_read(exitf, &ex, NULL) == 0)
		json_object_set(rec, "exit", ex);
	wait_keeper(rec);
	unlink(target);
	if (jail_clean(c, id, rec_str(rec, "exec_name"), true, err) < 0)
		return md_err_wrap(err, "shutdown vm `%s`", id);
	rec_set_state(rec, MD_VM_SHUTDOWN, reason);
	json_object_set_new(rec, "pid", json_null());
	return md_vmrec_save(&c->paths, id, rec, err);
}

int md_vm_shutdown(struct md_vm_ctx *c, const char *id, uint64_t timeout_ns, bool force, json_t **out, md_err **err)
{
	_cleanup_close_ int lockfd = -1;
	_cleanup_json_ json_t *rec = NULL;

	if (open_vm(c, id, "shut down", IN(MD_VM_RUNNING) | IN(MD_VM_PAUSED), &lockfd, &rec, err) < 0)
		return -1;
	if (do_shutdown(c, id, rec, timeout_ns, force, force ? "stopped by request (forced)" : "shut down by request",
			err) < 0)
		return -1;
	close(steal_fd(&lockfd));
	return show(c, id, false, out, err);
}

int md_vm_reboot(struct md_vm_ctx *c, const char *id, json_t **out, md_err **err)
{
	_cleanup_close_ int lockfd = -1;
	_cleanup_json_ json_t *rec = NULL;

	if (open_vm(c, id, "reboot", IN(MD_VM_RUNNING), &lockfd, &rec, err) < 0)
		return -1;
	if (!strcmp(rec_str(rec, "vmm"), "firecracker")) {
		/* Firecracker exits when the guest reboots: a reboot is a new VMM process */
		if (do_shutdown(c, id, rec, 10ULL * 1000000000ULL, false, "rebooting", err) < 0 ||
		    do_boot(c, id, rec, false, err) < 0)
			return md_err_wrap(err, "reboot vm `%s`", id);
	} else if (boot_tool(c, id, rec, "reboot", NULL, 60ULL * 1000000000ULL, err, NULL) < 0) {
		return md_err_wrap(err, "reboot vm `%s`", id);
	}
	json_object_set_new(rec, "rebooted_ns", json_integer((json_int_t)md_now_wall_ns()));
	if (md_vmrec_save(&c->paths, id, rec, err) < 0)
		return -1;
	close(steal_fd(&lockfd));
	return show(c, id, false, out, err);
}

/* ---- delete ---- */

static int do_delete(struct md_vm_ctx *c, const char *id, json_t *rec, md_err **err)
{
	_cleanup_free_ char *target = meter_target_path(c, id);
	struct md_av a = { 0 };
	int r;

	json_object_set_new(rec, "phase", json_string("deleting"));
	if (md_vmrec_save(&c->paths, id, rec, err) < 0)
		return -1;
	fault_point("delete", "record");
	unlink(target);
	if (jail_clean(c, id, rec_str(rec, "exec_name") ? rec_str(rec, "exec_name") : vmm_exec_name(rec), true, err) < 0)
		return md_err_wrap(err, "delete vm `%s`", id);
	fault_point("delete", "jail");
	av_prog(c, &a, "metald-net", true);
	md_av_add(&a, "delete");
	md_av_add(&a, "--id");
	md_av_add(&a, id);
	r = run_tool(&a, 60ULL * 1000000000ULL, NULL, err);
	md_av_free(&a);
	if (r < 0)
		return md_err_wrap(err, "delete vm `%s`: network", id);
	fault_point("delete", "network");
	/* the lock file last, the lock still held, then the directory */
	if (md_vmrec_remove(&c->paths, id, err) < 0)
		return md_err_wrap(err, "delete vm `%s`", id);
	release_uid(c, id, rec);
	return 0;
}

int md_vm_delete(struct md_vm_ctx *c, const char *id, bool force, json_t **out, md_err **err)
{
	_cleanup_close_ int lockfd = -1;
	_cleanup_json_ json_t *rec = NULL;
	enum md_vm_state s;

	if (open_vm(c, id, "delete", ANY, &lockfd, &rec, err) < 0)
		return -1;
	s = rec_state(rec);
	if ((s == MD_VM_RUNNING || s == MD_VM_PAUSED) && !force)
		return md_conflict(err, "cannot delete vm `%s`: it is %s (shut it down first, or use --force)", id,
				   md_vm_state_name(s));
	if ((s == MD_VM_RUNNING || s == MD_VM_PAUSED) &&
	    do_shutdown(c, id, rec, 0, true, "deleted", err) < 0)
		return md_err_wrap(err, "delete vm `%s`", id);
	if (do_delete(c, id, rec, err) < 0)
		return -1;
	if (out)
		*out = json_pack("{s:s, s:b}", "id", id, "deleted", 1);
	return 0;
}

/* ---- info, list ---- */

/* Live usage of a running VM, read the way the meter reads it (its target file names the
 * cgroups and the host-side link): CPU % over one 100 ms sampling period. */
static json_t *live_usage(struct md_vm_ctx *c, const char *id, json_t *rec)
{
	_cleanup_free_ char *tf = meter_target_path(c, id);
	struct md_meter_target t = { 0 };
	struct md_meter_src *src = NULL;
	struct md_meter_sample s0, s1;
	uint64_t up_ns = md_now_wall_ns() - (uint64_t)rec_int(rec, "booted_ns");
	json_t *u = NULL;
	double pct;

	if (md_meter_target_load(tf, &t, NULL) < 0)
		return json_null();
	if (md_meter_src_open(&t, &src, NULL) < 0 || md_meter_sample(src, MD_SAMPLE_ALL, &s0, NULL) < 0) {
		md_meter_src_close(src);
		md_meter_target_free(&t);
		return json_null();
	}
	md_sleep_ns(100000000ULL);
	if (md_meter_sample(src, MD_SAMPLE_ALL, &s1, NULL) < 0)
		s1 = s0;
	pct = s1.mono_ns > s0.mono_ns ? 100.0 * (double)(s1.c.cpu_ns - s0.c.cpu_ns) / (double)(s1.mono_ns - s0.mono_ns) : 0.0;
	u = json_pack("{s:f, s:I, s:I, s:I, s:{s:I, s:I, s:I, s:I}, s:{s:I, s:I, s:I, s:I}, s:I}", "cpu_percent", pct,
		      "cpu_time_ns", (json_int_t)s1.c.cpu_ns, "memory_bytes", (json_int_t)s1.mem_bytes,
		      "memory_peak_bytes", (json_int_t)s1.mem_max, "storage", "bytes_read",
		      (json_int_t)s1.c.disk_read_bytes, "bytes_written", (json_int_t)s1.c.disk_write_bytes,
		      "read_operations", (json_int_t)s1.c.disk_read_ops, "write_operations",
		      (json_int_t)s1.c.disk_write_ops, "network", "bytes_received", (json_int_t)s1.c.net_rx_bytes,
		      "bytes_transmitted", (json_int_t)s1.c.net_tx_bytes, "packets_received",
		      (json_int_t)s1.c.net_rx_packets, "packets_transmitted", (json_int_t)s1.c.net_tx_packets,
		      "uptime_seconds", (json_int_t)(up_ns / 1000000000ULL));
	md_meter_src_close(src);
	md_meter_target_free(&t);
	return u;
}

static json_t *view(struct md_vm_ctx *c, const char *id, json_t *rec, bool usage)
{
	_cleanup_free_ char *cfgf = md_vmrec_file(&c->paths, id, "config.json");
	_cleanup_free_ char *netf = md_vmrec_file(&c->paths, id, "net.json");
	json_t *cfg = NULL, *net = NULL, *v;
	enum md_vm_state s = rec_state(rec);

	md_json_read(cfgf, &cfg, NULL);
	md_json_read(netf, &net, NULL);
	v = json_pack("{s:s, s:s, s:O, s:s, s:s, s:s}", "id", id, "state", md_vm_state_name(s), "reason",
		      json_object_get(rec, "reason") ? json_object_get(rec, "reason") : json_null(), "customer_id",
		      rec_str(rec, "customer_id"), "tenant", rec_str(rec, "tenant"), "vmm", rec_str(rec, "vmm"));
	json_object_set(v, "vcpus", json_object_get(json_object_get(cfg, "cpu"), "vcpu_count"));
	json_object_set(v, "memory_bytes", json_object_get(json_object_get(cfg, "memory"), "size_bytes"));
	json_object_set_new(v, "pid", (s == MD_VM_RUNNING || s == MD_VM_PAUSED) ? json_integer(rec_int(rec, "pid"))
									     : json_null());
	json_object_set_new(v, "uid", json_integer(rec_int(rec, "uid")));
	json_object_set(v, "created_ns", json_object_get(rec, "created_ns"));
	if (json_object_get(rec, "phase") && !json_is_null(json_object_get(rec, "phase")))
		json_object_set(v, "phase", json_object_get(rec, "phase"));
	if (net) {
		json_object_set_new(v, "network",
				    json_pack("{s:O?, s:O?, s:O?, s:O?, s:O?, s:O?, s:O?, s:O?}", "ipv4",
					      json_object_get(net, "ipv4"), "ipv6", json_object_get(net, "ipv6"), "mac",
					      json_object_get(net, "mac"), "tap", json_object_get(net, "tap"), "netns",
					      json_object_get(net, "netns"), "host_link", json_object_get(net, "host_link"),
					      "dns", json_object_get(net, "dns"), "port_mappings",
					      json_object_get(net, "publish")));
	}
	if (json_object_get(rec, "exit"))
		json_object_set(v, "exit", json_object_get(rec, "exit"));
	if (usage && (s == MD_VM_RUNNING || s == MD_VM_PAUSED))
		json_object_set_new(v, "usage", live_usage(c, id, rec));
	if (usage && cfg)
		json_object_set(v, "config", cfg);
	json_decref(cfg);
	json_decref(net);
	return v;
}

/* Read a record without its lock (info/list must not wait behind a long boot); refresh it when
 * the lock is free. */
static int peek_vm(struct md_vm_ctx *c, const char *id, json_t **rec, md_err **err)
{
	if (md_vmrec_load(&c->paths, id, rec, err) < 0)
		return -1;
	if (refresh(c, id, *rec)) {
		/* what was read without the lock may be stale (a boot may have run since): only with the
		 * lock is the record read again, refreshed and saved */
		md_err *e = NULL;
		int fd = md_vmrec_lock(&c->paths, id, 0, &e);

		if (fd >= 0) {
			json_t *fresh = NULL;

			if (md_vmrec_load(&c->paths, id, &fresh, NULL) == 0) {
				refresh_locked(c, id, fresh);
				json_decref(*rec);
				*rec = fresh;
			}
			close(fd);
		}
		md_err_free(&e);
	}
	return 0;
}

static int show(struct md_vm_ctx *c, const char *id, bool usage, json_t **out, md_err **err)
{
	_cleanup_json_ json_t *rec = NULL;

	if (md_id_check(id, "vm id", err) < 0 || peek_vm(c, id, &rec, err) < 0)
		return -1;
	if (out)
		*out = view(c, id, rec, usage);
	return 0;
}

int md_vm_info(struct md_vm_ctx *c, const char *id, json_t **out, md_err **err)
{
	return show(c, id, true, out, err);
}

int md_vm_list(struct md_vm_ctx *c, const char *state, const char *customer, json_t **out, md_err **err)
{
	char **ids = NULL;
	size_t n = 0;
	enum md_vm_state want = 0;
	json_t *arr;

	if (state && md_vm_state_parse(state, &want) < 0)
		return md_usage(err, "state `%s`: must be CREATED, RUNNING, PAUSED or SHUTDOWN", state);
	if (md_vmrec_list(&c->paths, &ids, &n, err) < 0)
		return -1;
	arr = json_array();
	for (size_t i = 0; i < n; i++) {
		json_t *rec = NULL;

		if (peek_vm(c, ids[i], &rec, NULL) == 0) {
			if ((!state || rec_state(rec) == want) &&
			    (!customer || (rec_str(rec, "customer_id") && !strcmp(rec_str(rec, "customer_id"), customer))))
				json_array_append_new(arr, view(c, ids[i], rec, false));
			json_decref(rec);
		}
		free(ids[i]);
	}
	free(ids);
	*out = arr;
	return 0;
}

char *md_vm_serial_log(struct md_vm_ctx *c, const char *id)
{
	return md_vmrec_file(&c->paths, id, "serial.log");
}

/* ---- reconcile ---- */

static void note(json_t *actions, const char *id, const char *what)
{
	json_array_append_new(actions, json_pack("{s:s, s:s}", "id", id, "action", what));
	md_info("reconcile: %s: %s", id, what);
}

/* A record directory without its lock file: a delete that died at its last step left it empty
 * (removed here; rmdir removes nothing else, so a create that has just made it only tries again);
 * one with files in it was left by an older metald, whose delete removed the lock file first: its
 * lock file is made again (no command of this version makes files in such a directory), and
 * reconcile goes on with the lock held. Returns that fd, or -1 when there is nothing to do. */
static int lockless(struct md_vm_ctx *c, const char *id, json_t *actions)
{
	_cleanup_free_ char *dir = md_vmrec_dir(&c->paths, id);
	_cleanup_free_ char *lock = md_vmrec_file(&c->paths, id, "lock");

	if (rmdir(dir) == 0) {
		note(actions, id, "removed the empty directory of an interrupted delete");
		return -1;
	}
	if (errno != ENOTEMPTY && errno != EEXIST)
		return -1;
	return md_lock(lock, true, 0, NULL);
}

int md_vm_reconcile(struct md_vm_ctx *c, json_t **out, md_err **err)
{
	char **ids = NULL;
	size_t n = 0;
	json_t *actions = json_array();
	int failed = 0;

	if (md_vmrec_list(&c->paths, &ids, &n, err) < 0) {
		json_decref(actions);
		return -1;
	}
	for (size_t i = 0; i < n; i++) {
		const char *id = ids[i];
		md_err *e = NULL;
		json_t *rec = NULL;
		/* a record whose lock is held belongs to a verb at work: leave it */
		int fd = md_vmrec_lock(&c->paths, id, 0, &e);

		if (fd < 0 && e->code == MD_EXIT_NOTFOUND)
			fd = lockless(c, id, actions);
		md_err_free(&e);
		if (fd < 0) {
			free(ids[i]);
			continue;
		}
		if (md_vmrec_load(&c->paths, id, &rec, &e) < 0) {
			if (e->code == MD_EXIT_NOTFOUND) {
				/* a record without vm.json: a create that died at its first step */
				if (md_vmrec_remove(&c->paths, id, NULL) == 0)
					note(actions, id, "removed an incomplete record");
			} else {
				/* unreadable, not absent: never remove what may still name a VM */
				md_warn("reconcile: %s", e->msg);
				failed++;
			}
			md_err_free(&e);
		} else {
			const char *phase = rec_str(rec, "phase");

			if (phase && !strcmp(phase, "creating")) {
				undo_create(c, id, true);
				note(actions, id, "undid an interrupted create");
			} else if (phase && !strcmp(phase, "deleting")) {
				if (do_delete(c, id, rec, &e) < 0) {
					md_warn("reconcile: %s", e->msg);
					md_err_free(&e);
					failed++;
				} else {
					note(actions, id, "finished an interrupted delete");
				}
			} else if (phase && !strcmp(phase, "booting")) {
				pid_t pid = (pid_t)rec_int(rec, "pid");
				uint64_t st = (uint64_t)rec_int(rec, "pid_start");

				if (pid > 0 && md_proc_alive(pid, st))
					kill(pid, SIGKILL);
				for (int k = 0; k < 200 && pid > 0 && md_proc_alive(pid, st); k++)
					md_sleep_ns(10000000);
				wait_keeper(rec);
				jail_clean(c, id, rec_str(rec, "exec_name") ? rec_str(rec, "exec_name") : vmm_exec_name(rec),
					   true, NULL);
				{
					_cleanup_free_ char *t = meter_target_path(c, id);
					unlink(t);
				}
				json_object_set_new(rec, "phase", json_null());
				json_object_set_new(rec, "pid", json_null());
				if (rec_state(rec) != MD_VM_CREATED)
					rec_set_state(rec, MD_VM_SHUTDOWN, "boot interrupted");
				else
					json_object_set_new(rec, "reason", json_string("boot interrupted"));
				md_vmrec_save(&c->paths, id, rec, NULL);
				note(actions, id, "undid an interrupted boot");
			} else if (refresh(c, id, rec)) {
				_cleanup_free_ char *t = meter_target_path(c, id);

				unlink(t);
				jail_clean(c, id, rec_str(rec, "exec_name") ? rec_str(rec, "exec_name") : vmm_exec_name(rec),
					   true, NULL);
				md_vmrec_save(&c->paths, id, rec, NULL);
				note(actions, id, "marked SHUTDOWN: the VMM had died");
			} else if (rec_state(rec) == MD_VM_RUNNING || rec_state(rec) == MD_VM_PAUSED) {
				/* alive: it must be metered (a crash after the record said RUNNING may have
				 * kept the target from being written) */
				_cleanup_free_ char *t = meter_target_path(c, id);
				_cleanup_free_ char *nf = md_vmrec_file(&c->paths, id, "net.json");
				_cleanup_json_ json_t *net = NULL;

				if (access(t, F_OK) < 0 && md_json_read(nf, &net, NULL) == 0) {
					write_meter_target(c, id, rec, net);
					note(actions, id, "wrote the missing meter target");
				}
			} else if (rec_state(rec) == MD_VM_SHUTDOWN && rec_str(rec, "exec_name")) {
				/* a dead VM keeps no jail */
				jail_clean(c, id, rec_str(rec, "exec_name"), true, NULL);
			}
			json_decref(rec);
		}
		close(fd);
		free(ids[i]);
	}
	free(ids);

	/* orphans: network objects no record claims */
	{
		struct md_av a = { 0 };
		md_err *e = NULL;

		av_prog(c, &a, "metald-net", true);
		md_av_add(&a, "gc");
		if (run_tool(&a, 120ULL * 1000000000ULL, NULL, &e) < 0) {
			md_warn("reconcile: network gc: %s", e->msg);
			md_err_free(&e);
			failed++;
		} else {
			note(actions, "-", "network gc");
		}
		md_av_free(&a);
	}
	/* orphan jails: <chroot_dir>/<exec>/<id> without a record */
	{
		static const char *const execs[] = { "qemu-system-x86_64", "firecracker", NULL };
		for (int k = 0; execs[k]; k++) {
			_cleanup_free_ char *d = md_path_join(c->paths.chroot_dir, execs[k]);
			DIR *dir = opendir(d);
			struct dirent *de;

			while (dir && (de = readdir(dir)) != NULL) {
				_cleanup_free_ char *rd = NULL;
				struct stat st;

				if (md_id_check(de->d_name, "id", NULL) < 0)
					continue;
				rd = md_vmrec_dir(&c->paths, de->d_name);
				if (stat(rd, &st) == 0)
					continue;
				if (jail_clean(c, de->d_name, execs[k], true, NULL) == 0)
					note(actions, de->d_name, "removed an orphan jail");
			}
			if (dir)
				closedir(dir);
		}
	}
	*out = json_pack("{s:o, s:i}", "actions", actions, "failed", failed);
	if (failed)
		return md_fail(err, 0, "reconcile: %d step(s) failed (see the warnings above)", failed);
	return 0;
}
