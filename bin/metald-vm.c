/* metald-vm: the orchestrator. Parses verbs and options, calls lib/vm.c, prints. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cleanup.h"
#include "cli.h"
#include "config.h"
#include "ids.h"
#include "parse.h"
#include "state.h"
#include "vm.h"

static const char usage[] =
	"Usage: metald-vm [OPTIONS] COMMAND [ARGS]\n"
	"\n"
	"Run microVMs: create, boot and control them, with records that survive crashes.\n"
	"\n"
	"Commands:\n"
	"  create [--config FILE|-] [--id ID] [flags]   make a VM (network, disks, record)\n"
	"  boot ID [--paused]          start a created or shut-down VM (--paused: vCPUs held)\n"
	"  pause ID | resume ID        freeze and thaw the vCPUs\n"
	"  reboot ID                   reset the guest\n"
	"  shutdown ID [--timeout D] [--force]\n"
	"                              stop the guest (ACPI power button, then kill after D)\n"
	"  delete ID [--force]         remove the VM and everything made for it\n"
	"  info ID                     state, network, live usage\n"
	"  list [--state S] [--customer C]\n"
	"  logs ID [-f] [--lines N]    the guest's serial console\n"
	"  reconcile                   repair records after a crash; remove orphans\n"
	"\n"
	"Create flags:\n"
	"  --config FILE|-     CreateVmRequest or VmConfig JSON (flags below override it)\n"
	"  --id ID             VM id (default: generated vm-<16 hex>)\n"
	"  --vcpus N           vCPUs (default 1)\n"
	"  --memory SIZE       guest memory, e.g. 256M (default 128M)\n"
	"  --kernel PATH       guest kernel (default: the test guest in <data>/guest)\n"
	"  --initrd PATH       initramfs\n"
	"  --cmdline ARGS      kernel command line (the network's ip= is appended)\n"
	"  --rootfs PATH       root disk (writable: the VM gets a private copy)\n"
	"  --disk PATH[:ro]    data disk (repeatable)\n"
	"  --tenant T          tenant network segment (default: metadata.tenant_id or customer)\n"
	"  --customer C        customer id for billing\n"
	"  --vmm firecracker|qemu\n"
	"                      VMM (default: UNKEY_METALD_BACKEND, else Firecracker if installed\n"
	"                      and KVM works, else QEMU)\n"
	"  --publish HOST:GUEST[/tcp|udp]   port forward (repeatable)\n"
	"  --rate rx=RATE,tx=RATE           bandwidth limits\n"
	"  --boot              boot right after create\n"
	"  --paused            with --boot: make the VMM but hold its vCPUs (state PAUSED)\n"
	"\n"
	"Options:\n"
	"  --json              print JSON\n"
	"  --root DIR          keep records, runtime files, jails and netns pins under DIR\n"
	"  -v, --verbose       log more; -q, --quiet: errors only\n"
	"  --log-format text|json\n"
	"  -h, --help          this help; --version\n"
	"\n"
	"Exit status: 0 done, 1 failed, 2 usage, 3 not found, 4 conflict or wrong state,\n"
	"5 host lacks something, 124 timed out. See metald-vm(1).\n";

enum {
	OPT_CONFIG = MD_OPT_FIRST_PRIVATE,
	OPT_ID,
	OPT_VCPUS,
	OPT_MEMORY,
	OPT_KERNEL,
	OPT_INITRD,
	OPT_CMDLINE,
	OPT_ROOTFS,
	OPT_DISK,
	OPT_TENANT,
	OPT_CUSTOMER,
	OPT_VMM,
	OPT_PUBLISH,
	OPT_RATE,
	OPT_BOOT,
	OPT_TIMEOUT,
	OPT_FORCE,
	OPT_STATE,
	OPT_FOLLOW,
	OPT_LINES,
	OPT_PAUSED,
	OPT_LAST,
};

static const struct option opts[] = {
	MD_CLI_COMMON_LONGOPTS,
	{ "config", required_argument, NULL, OPT_CONFIG },
	{ "id", required_argument, NULL, OPT_ID },
	{ "vcpus", required_argument, NULL, OPT_VCPUS },
	{ "memory", required_argument, NULL, OPT_MEMORY },
	{ "kernel", required_argument, NULL, OPT_KERNEL },
	{ "initrd", required_argument, NULL, OPT_INITRD },
	{ "cmdline", required_argument, NULL, OPT_CMDLINE },
	{ "rootfs", required_argument, NULL, OPT_ROOTFS },
	{ "disk", required_argument, NULL, OPT_DISK },
	{ "tenant", required_argument, NULL, OPT_TENANT },
	{ "customer", required_argument, NULL, OPT_CUSTOMER },
	{ "vmm", required_argument, NULL, OPT_VMM },
	{ "publish", required_argument, NULL, OPT_PUBLISH },
	{ "rate", required_argument, NULL, OPT_RATE },
	{ "boot", no_argument, NULL, OPT_BOOT },
	{ "timeout", required_argument, NULL, OPT_TIMEOUT },
	{ "force", no_argument, NULL, OPT_FORCE },
	{ "state", required_argument, NULL, OPT_STATE },
	{ "follow", no_argument, NULL, OPT_FOLLOW },
	{ "lines", required_argument, NULL, OPT_LINES },
	{ "paused", no_argument, NULL, OPT_PAUSED },
	{ NULL, 0, NULL, 0 },
};

static const char *opt_name(int val)
{
	for (const struct option *o = opts; o->name; o++)
		if (o->val == val)
			return o->name;
	return "?";
}

/* Everything a verb may be given; each verb says which private options it takes. */
struct args {
	const char *config, *id, *vcpus, *memory, *kernel, *initrd, *cmdline, *rootfs, *tenant, *customer, *vmm, *rate,
		*state;
	const char *disks[32], *publish[32];
	size_t ndisks, npublish;
	bool boot, force, follow, paused;
	uint64_t timeout_ns, lines;
	const char *pos[4];
	size_t npos;
};

#define SEEN(o) (1u << ((o) - MD_OPT_FIRST_PRIVATE))
#define ALL_CREATE (SEEN(OPT_LAST) - 1 - SEEN(OPT_TIMEOUT) - SEEN(OPT_FORCE) - SEEN(OPT_STATE) - SEEN(OPT_FOLLOW) - SEEN(OPT_LINES))

static void parse(int argc, char **argv, struct args *a, unsigned allowed, size_t max_pos)
{
	int c;
	md_err *err = NULL;

	memset(a, 0, sizeof(*a));
	a->timeout_ns = 30ULL * 1000000000ULL;
	a->lines = 50;
	/* no '+': options may come before or after the id (`info vm1 --json`) */
	while ((c = getopt_long(argc, argv, MD_CLI_COMMON_SHORTOPTS "fn:", opts, NULL)) != -1) {
		if (md_cli_common(c, optarg))
			continue;
		if (c == 'f')
			c = OPT_FOLLOW;
		if (c == 'n')
			c = OPT_LINES;
		if (c < MD_OPT_FIRST_PRIVATE || c >= OPT_LAST)
			md_cli_bad_option();
		if (!(allowed & SEEN(c)))
			md_die_msg(MD_EXIT_USAGE, "%s: option `--%s` does not apply here (try 'metald-vm --help')", argv[0],
				   opt_name(c));
		switch (c) {
		case OPT_CONFIG: a->config = optarg; break;
		case OPT_ID: a->id = optarg; break;
		case OPT_VCPUS: a->vcpus = optarg; break;
		case OPT_MEMORY: a->memory = optarg; break;
		case OPT_KERNEL: a->kernel = optarg; break;
		case OPT_INITRD: a->initrd = optarg; break;
		case OPT_CMDLINE: a->cmdline = optarg; break;
		case OPT_ROOTFS: a->rootfs = optarg; break;
		case OPT_TENANT: a->tenant = optarg; break;
		case OPT_CUSTOMER: a->customer = optarg; break;
		case OPT_VMM: a->vmm = optarg; break;
		case OPT_RATE: a->rate = optarg; break;
		case OPT_STATE: a->state = optarg; break;
		case OPT_BOOT: a->boot = true; break;
		case OPT_PAUSED: a->paused = true; break;
		case OPT_FORCE: a->force = true; break;
		case OPT_FOLLOW: a->follow = true; break;
		case OPT_DISK:
			if (a->ndisks >= 31)
				md_die_msg(MD_EXIT_USAGE, "too many --disk options (at most 31)");
			a->disks[a->ndisks++] = optarg;
			break;
		case OPT_PUBLISH:
			if (a->npublish >= 31)
				md_die_msg(MD_EXIT_USAGE, "too many --publish options (at most 31)");
			a->publish[a->npublish++] = optarg;
			break;
		case OPT_TIMEOUT:
			if (md_parse_duration(optarg, &a->timeout_ns, &err) < 0)
				md_die((md_err_wrap(&err, "--timeout"), err));
			break;
		case OPT_LINES:
			if (md_parse_u64(optarg, 1, 1000000, &a->lines, &err) < 0)
				md_die((md_err_wrap(&err, "--lines"), err));
			break;
		}
	}
	for (; optind < argc; optind++) {
		if (a->npos >= max_pos)
			md_die_msg(MD_EXIT_USAGE, "%s: unexpected argument `%s` (try 'metald-vm --help')", argv[0],
				   argv[optind]);
		a->pos[a->npos++] = argv[optind];
	}
}

static struct md_vm_ctx ctx;

static void ctx_open(void)
{
	md_err *err = NULL;

	if (md_vm_ctx_init(&ctx, md_cli.root, &err) < 0)
		md_die(err);
}

static int print(json_t *v, const char *const *cols)
{
	md_out_print(stdout, v, md_cli_out_mode(), cols);
	json_decref(v);
	return 0;
}

static const char *const info_cols[] = { "id", "state", "reason", "phase", "vmm", "customer_id", "tenant",
					 "vcpus", "memory_bytes", "pid", "network.ipv4.address", "network.ipv6.address",
					 "network.mac", "network.tap", "network.netns", "network.ipv4.gateway",
					 "network.ipv6.gateway", "network.dns", "network.port_mappings",
					 "usage.cpu_percent", "usage.memory_bytes", "usage.storage.bytes_read",
					 "usage.storage.bytes_written", "usage.network.bytes_received",
					 "usage.network.bytes_transmitted", "usage.uptime_seconds", "exit.reason",
					 NULL };

static int print_info(json_t *v)
{
	return print(v, md_cli.json ? NULL : info_cols);
}

static const char *one_id(struct args *a, const char *verb)
{
	if (a->npos != 1)
		md_die_msg(MD_EXIT_USAGE, "%s: expects one VM id (try 'metald-vm --help')", verb);
	return a->pos[0];
}

/* ---- create: the config from a file/stdin, then flags on top ---- */

static json_t *obj_child(json_t *o, const char *snake, const char *camel)
{
	json_t *x = json_object_get(o, snake);

	if (!x && camel)
		x = json_object_get(o, camel);
	if (!json_is_object(x)) {
		x = json_object();
		json_object_set_new(o, snake, x);
	}
	return x;
}

static bool has(json_t *o, const char *snake, const char *camel)
{
	return json_object_get(o, snake) || json_object_get(o, camel);
}

/* The test guest installed under <data>/guest (or UNKEY_METALD_GUEST_DIR): the embedded default
 * when no kernel is given. */
static void default_guest(json_t *boot)
{
	const char *d = getenv("UNKEY_METALD_GUEST_DIR");
	_cleanup_free_ char *dir = d && *d ? strdup(d) : md_path_join(ctx.paths.data_dir, "guest");
	_cleanup_free_ char *k = md_path_join(dir, "vmlinuz"), *i = md_path_join(dir, "initrd.cpio.gz");
	_cleanup_free_ char *cl = md_path_join(dir, "cmdline"), *cmd = NULL;

	json_object_set_new(boot, "kernel_path", json_string(k));
	if (access(i, F_OK) == 0 && !has(boot, "initrd_path", "initrdPath"))
		json_object_set_new(boot, "initrd_path", json_string(i));
	if (!has(boot, "kernel_args", "kernelArgs") && md_read_file(cl, &cmd, NULL, NULL) == 0) {
		cmd[strcspn(cmd, "\n")] = '\0';
		json_object_set_new(boot, "kernel_args", json_string(cmd));
	}
}

static json_t *load_doc(const char *config)
{
	json_error_t je;
	json_t *doc;

	if (config == NULL)
		return json_object();
	doc = !strcmp(config, "-") ? json_loadf(stdin, JSON_REJECT_DUPLICATES, &je)
				   : json_load_file(config, JSON_REJECT_DUPLICATES, &je);
	if (doc == NULL) {
		if (strcmp(config, "-") && access(config, F_OK) < 0)
			md_die_msg(MD_EXIT_NOTFOUND, "create: config `%s`: %s", config, strerror(errno));
		md_die_msg(MD_EXIT_USAGE, "create: config `%s`: invalid JSON at line %d column %d: %s", config, je.line,
			   je.column, je.text);
	}
	if (!json_is_object(doc))
		md_die_msg(MD_EXIT_USAGE, "create: config `%s`: must be a JSON object", config);
	/* a bare VmConfig becomes a CreateVmRequest */
	if (!has(doc, "config", NULL) && !has(doc, "vm_id", "vmId") && !has(doc, "customer_id", "customerId")) {
		json_t *req = json_pack("{s:o}", "config", doc);
		return req;
	}
	return doc;
}

static int cmd_create(int argc, char **argv)
{
	struct args a;
	_cleanup_json_ json_t *doc = NULL;
	json_t *out = NULL, *cfg, *boot, *cpu, *mem, *storage;
	struct md_config *c = NULL;
	md_err *err = NULL;
	uint64_t v;
	struct md_vm_create_opts o = { 0 };

	parse(argc, argv, &a, ALL_CREATE, 1);
	ctx_open();
	if (a.npos == 1 && a.id)
		md_die_msg(MD_EXIT_USAGE, "create: give the id once (--id or as the argument)");
	if (a.npos == 1)
		a.id = a.pos[0];

	doc = load_doc(a.config);
	cfg = obj_child(doc, "config", NULL);
	cpu = obj_child(cfg, "cpu", NULL);
	mem = obj_child(cfg, "memory", NULL);
	boot = obj_child(cfg, "boot", NULL);
	if (a.vcpus) {
		if (md_parse_u64(a.vcpus, 1, 32, &v, &err) < 0)
			md_die((md_err_wrap(&err, "--vcpus"), err));
		json_object_set_new(cpu, "vcpu_count", json_integer((json_int_t)v));
	} else if (!has(cpu, "vcpu_count", "vcpuCount")) {
		json_object_set_new(cpu, "vcpu_count", json_integer(1));
	}
	if (a.memory) {
		if (md_parse_size(a.memory, &v, &err) < 0)
			md_die((md_err_wrap(&err, "--memory"), err));
		json_object_set_new(mem, "size_bytes", json_integer((json_int_t)v));
	} else if (!has(mem, "size_bytes", "sizeBytes")) {
		json_object_set_new(mem, "size_bytes", json_integer(128 << 20));
	}
	if (a.kernel)
		json_object_set_new(boot, "kernel_path", json_string(a.kernel));
	else if (!has(boot, "kernel_path", "kernelPath"))
		default_guest(boot);
	if (a.initrd)
		json_object_set_new(boot, "initrd_path", json_string(a.initrd));
	if (a.cmdline)
		json_object_set_new(boot, "kernel_args", json_string(a.cmdline));
	storage = json_object_get(cfg, "storage");
	if (!json_is_array(storage) && (a.rootfs || a.ndisks)) {
		storage = json_array();
		json_object_set_new(cfg, "storage", storage);
	}
	if (a.rootfs)
		json_array_insert_new(storage, 0,
				      json_pack("{s:s, s:s, s:b, s:b}", "id", "rootfs", "path", a.rootfs, "is_root_device", 1,
						"read_only", 0));
	for (size_t i = 0; i < a.ndisks; i++) {
		_cleanup_free_ char *p = strdup(a.disks[i]);
		size_t l = strlen(p);
		bool ro = l > 3 && !strcmp(p + l - 3, ":ro");

		if (ro)
			p[l - 3] = '\0';
		json_array_append_new(storage, json_pack("{s:s, s:b}", "path", p, "read_only", ro));
	}
	if (a.customer)
		json_object_set_new(doc, "customer_id", json_string(a.customer));
	if (md_config_parse(doc, &c, &err) < 0)
		md_die((md_err_wrap(&err, "create"), err));

	o.id = a.id;
	o.tenant = a.tenant;
	o.vmm = a.vmm;
	a.publish[a.npublish] = NULL;
	o.publish = a.npublish ? a.publish : NULL;
	o.rate = a.rate;
	o.boot = a.boot;
	o.paused = a.paused;
	if (a.paused && !a.boot)
		md_die_msg(MD_EXIT_USAGE, "create: --paused goes with --boot");
	if (md_vm_create(&ctx, c, &o, &out, &err) < 0) {
		md_config_free(c);
		md_die(err);
	}
	md_config_free(c);
	return print_info(out);
}

/* ---- the one-id verbs ---- */

static int cmd_simple(int argc, char **argv, int (*fn)(struct md_vm_ctx *, const char *, json_t **, md_err **))
{
	struct args a;
	json_t *out = NULL;
	md_err *err = NULL;

	parse(argc, argv, &a, 0, 1);
	ctx_open();
	if (fn(&ctx, one_id(&a, argv[0]), &out, &err) < 0)
		md_die(err);
	return print_info(out);
}

static int cmd_boot(int argc, char **argv)
{
	struct args a;
	json_t *out = NULL;
	md_err *err = NULL;

	parse(argc, argv, &a, SEEN(OPT_PAUSED), 1);
	ctx_open();
	if (md_vm_boot(&ctx, one_id(&a, argv[0]), a.paused, &out, &err) < 0)
		md_die(err);
	return print_info(out);
}

static int cmd_pause(int argc, char **argv) { return cmd_simple(argc, argv, md_vm_pause); }
static int cmd_resume(int argc, char **argv) { return cmd_simple(argc, argv, md_vm_resume); }
static int cmd_reboot(int argc, char **argv) { return cmd_simple(argc, argv, md_vm_reboot); }
static int cmd_info(int argc, char **argv) { return cmd_simple(argc, argv, md_vm_info); }

static int cmd_shutdown(int argc, char **argv)
{
	struct args a;
	json_t *out = NULL;
	md_err *err = NULL;

	parse(argc, argv, &a, SEEN(OPT_TIMEOUT) | SEEN(OPT_FORCE), 1);
	ctx_open();
	if (md_vm_shutdown(&ctx, one_id(&a, argv[0]), a.timeout_ns, a.force, &out, &err) < 0)
		md_die(err);
	return print_info(out);
}

static int cmd_delete(int argc, char **argv)
{
	struct args a;
	json_t *out = NULL;
	md_err *err = NULL;

	parse(argc, argv, &a, SEEN(OPT_FORCE), 1);
	ctx_open();
	if (md_vm_delete(&ctx, one_id(&a, argv[0]), a.force, &out, &err) < 0)
		md_die(err);
	return print(out, NULL);
}

static int cmd_list(int argc, char **argv)
{
	static const char *const cols[] = { "id", "state", "phase", "vmm", "customer_id=CUSTOMER", "vcpus",
					    "memory_bytes=MEMORY", "network.ipv4.address=IPV4",
					    "network.ipv6.address=IPV6", "pid", NULL };
	struct args a;
	json_t *out = NULL;
	md_err *err = NULL;

	parse(argc, argv, &a, SEEN(OPT_STATE) | SEEN(OPT_CUSTOMER), 0);
	ctx_open();
	if (md_vm_list(&ctx, a.state, a.customer, &out, &err) < 0)
		md_die(err);
	return print(out, cols);
}

static int cmd_reconcile(int argc, char **argv)
{
	struct args a;
	json_t *out = NULL;
	md_err *err = NULL;
	int r;

	parse(argc, argv, &a, 0, 0);
	ctx_open();
	r = md_vm_reconcile(&ctx, &out, &err);
	if (out)
		md_out_print(stdout, md_cli.json ? out : json_object_get(out, "actions"), md_cli_out_mode(), NULL);
	json_decref(out);
	if (r < 0)
		md_die(err);
	return 0;
}

/* Print the last n lines of data. */
static void tail_lines(const char *data, size_t len, uint64_t n)
{
	size_t start = len;
	uint64_t seen = 0;

	while (start > 0) {
		if (data[start - 1] == '\n' && start != len && ++seen >= n)
			break;
		start--;
	}
	fwrite(data + start, 1, len - start, stdout);
}

/* Append what fd holds from offset 0 to *buf (which grows). */
static void slurp(int fd, char **buf, size_t *len)
{
	size_t cap = *len + 65536;
	off_t off = 0;
	ssize_t n;

	*buf = realloc(*buf, cap);
	while (*buf && (n = pread(fd, *buf + *len, cap - *len, off)) != 0) {
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			break;
		off += n;
		*len += (size_t)n;
		if (cap - *len < 4096)
			*buf = realloc(*buf, cap *= 2);
	}
	if (*buf == NULL)
		md_die_msg(MD_EXIT_FAIL, "logs: out of memory");
}

/* logs: the last N lines, then with -f follow the file (inotify on the record directory, which
 * also sees the keeper rotate the log). Ends when the VM is deleted. The last lines may reach
 * back into the rotated file (<log>.1): the two are read as one. */
static int cmd_logs(int argc, char **argv)
{
	struct args a;
	const char *id;
	_cleanup_free_ char *path = NULL, *old = NULL, *dir = NULL, *data = NULL;
	_cleanup_close_ int in = -1, fd = -1;
	size_t len = 0, cur_len = 0;
	md_err *err = NULL;
	struct stat st;
	off_t off;
	char buf[8192];

	parse(argc, argv, &a, SEEN(OPT_FOLLOW) | SEEN(OPT_LINES), 1);
	ctx_open();
	id = one_id(&a, argv[0]);
	if (md_id_check(id, "vm id", &err) < 0)
		md_die(err);
	dir = md_vmrec_dir(&ctx.paths, id);
	if (stat(dir, &st) < 0)
		md_die_msg(MD_EXIT_NOTFOUND, "logs: vm `%s` not found", id);
	path = md_vm_serial_log(&ctx, id);
	old = md_strdup_printf("%s.1", path);
	if (a.follow) {
		in = inotify_init1(IN_CLOEXEC);
		if (in < 0 || inotify_add_watch(in, dir, IN_MODIFY | IN_CREATE | IN_MOVED_TO | IN_DELETE_SELF) < 0)
			md_die_msg(MD_EXIT_FAIL, "logs: inotify `%s`: %s", dir, strerror(errno));
	}
	/* open the current file, then the rotated one; a rotation between the two opens makes them
	 * one file: open again. The rotated file's bytes come first. */
	for (int tries = 0; tries < 10; tries++) {
		_cleanup_close_ int ofd = -1;
		struct stat cs, os;

		if (fd >= 0)
			close(steal_fd(&fd));
		fd = open(path, O_RDONLY | O_CLOEXEC);
		ofd = open(old, O_RDONLY | O_CLOEXEC);
		if (fd >= 0 && ofd >= 0 && fstat(fd, &cs) == 0 && fstat(ofd, &os) == 0 && cs.st_ino == os.st_ino)
			continue;
		len = 0;
		if (ofd >= 0)
			slurp(ofd, &data, &len);
		cur_len = len;
		if (fd >= 0)
			slurp(fd, &data, &len);
		cur_len = len - cur_len;
		break;
	}
	if (len)
		tail_lines(data, len, a.lines);
	fflush(stdout);
	if (!a.follow)
		return 0;
	off = (off_t)cur_len;
	for (;;) {
		struct stat cur, now;
		ssize_t n;

		if (fd < 0) {
			fd = open(path, O_RDONLY | O_CLOEXEC);
			off = 0;
		}
		while (fd >= 0 && (n = pread(fd, buf, sizeof(buf), off)) > 0) {
			fwrite(buf, 1, (size_t)n, stdout);
			off += n;
		}
		if (fd >= 0 && fstat(fd, &cur) == 0 && (stat(path, &now) < 0 || now.st_ino != cur.st_ino)) {
			/* rotated: the old file is finished (what was written to it after the last read,
			 * before the rename, is read now); follow the new one from its start */
			while ((n = pread(fd, buf, sizeof(buf), off)) > 0) {
				fwrite(buf, 1, (size_t)n, stdout);
				off += n;
			}
			close(fd);
			fd = -1;
			continue;
		}
		if (fflush(stdout) != 0 || ferror(stdout))
			return 0;
		if (access(dir, F_OK) < 0)
			return 0;
		if (read(in, buf, sizeof(buf)) < 0 && errno != EINTR)
			return 0;
	}
}

static const struct md_verb verbs[] = {
	{ "create", cmd_create, "make a VM" },
	{ "boot", cmd_boot, "start a VM" },
	{ "pause", cmd_pause, "pause a VM" },
	{ "resume", cmd_resume, "resume a VM" },
	{ "reboot", cmd_reboot, "reboot a VM" },
	{ "shutdown", cmd_shutdown, "stop a VM" },
	{ "delete", cmd_delete, "remove a VM" },
	{ "info", cmd_info, "show a VM" },
	{ "list", cmd_list, "list VMs" },
	{ "logs", cmd_logs, "serial console" },
	{ "reconcile", cmd_reconcile, "repair after a crash" },
	{ NULL, NULL, NULL },
};

int main(int argc, char **argv)
{
	int r;

	md_cli_init(argv[0]);
	md_cli.usage = usage;
	r = md_cli_dispatch(verbs, argc, argv);
	md_vm_ctx_free(&ctx);
	return r;
}
