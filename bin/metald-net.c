/* metald-net: each VM's network (netns, tap, tenant segment, addresses, NAT, isolation, ports). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cleanup.h"
#include "cli.h"
#include "ids.h"
#include "netcfg.h"
#include "vmnet.h"

static const char usage[] =
	"Usage: metald-net [OPTIONS] COMMAND [ARGS]\n"
	"Make and remove the network of microVMs: a pinned network namespace per VM holding its tap,\n"
	"one bridge per tenant, IPv4 and IPv6 addresses, NAT, isolation, anti-spoofing, rate limits\n"
	"and published ports.\n"
	"\n"
	"Commands:\n"
	"  setup                       make the host-wide pieces (nftables tables, forwarding)\n"
	"  teardown [--force]          remove them (--force: delete every VM network first)\n"
	"  create --id VM --tenant T [--uid U] [--gid G] [--mac MAC] [--ipv4 ADDR] [--ipv6 ADDR]\n"
	"         [--tap NAME] [--publish HOST:GUEST[/tcp|udp]]... [--rate rx=R[/B],tx=R[/B]]\n"
	"  delete --id VM              remove a VM's network (absent: nothing to do, exit 0)\n"
	"  show --id VM                print what create printed\n"
	"  list [--tenant T]           list VM networks\n"
	"  stats --id VM               bytes and packets the VM received and sent\n"
	"  gc                          remove objects no record claims and records whose objects are gone\n"
	"  exec --id VM -- PROG [ARGS] run PROG inside the VM's network namespace\n"
	"  pool [show]                 namespaces made ahead of time for creates to take\n"
	"  pool fill [--count N]       make them until N are ready (default UNKEY_METALD_NETWORK_POOL)\n"
	"  pool drain                  remove them all\n"
	"\n"
	"Options:\n"
	"      --id VM           the VM id (1-64 of [A-Za-z0-9-])\n"
	"      --tenant T        the tenant (same rule); a tenant's VMs share one L2 segment\n"
	"      --uid U, --gid G  owner of the tap, so a jailed VMM can open it\n"
	"      --mac MAC         the guest's MAC (default: derived from the VM id)\n"
	"      --ipv4 ADDR, --ipv6 ADDR   ask for these addresses (default: the first free ones)\n"
	"      --tap NAME        tap name inside the VM's namespace (default: tap0)\n"
	"      --publish HOST:GUEST[/tcp|udp]   forward the host's port to the guest's (repeatable)\n"
	"      --rate rx=R[/B],tx=R[/B]   limit bytes/s (sizes like 10M) with burst B\n"
	"      --force           teardown: delete every VM network first\n"
	"      --count N         pool fill: how many ready namespaces to have (0-4096)\n"
	"      --root DIR        keep records, runtime files and netns pins under DIR\n"
	"      --json            print JSON\n"
	"      --log-format text|json\n"
	"  -v, --verbose         log more\n"
	"  -q, --quiet           log errors only\n"
	"  -h, --help            print this help\n"
	"      --version         print the version\n"
	"\n"
	"Exit codes: 0 done, 1 failed, 2 invalid input, 3 not found, 4 conflict, 5 host lacks something,\n"
	"125 exec: before exec, 126 cannot run, 127 not found.\n";

enum {
	OPT_ID = MD_OPT_FIRST_PRIVATE,
	OPT_TENANT,
	OPT_UID,
	OPT_GID,
	OPT_MAC,
	OPT_IPV4,
	OPT_IPV6,
	OPT_TAP,
	OPT_PUBLISH,
	OPT_RATE,
	OPT_FORCE,
	OPT_COUNT,
};

static const struct option longopts[] = {
	MD_CLI_COMMON_LONGOPTS,
	{ "id", required_argument, NULL, OPT_ID },
	{ "tenant", required_argument, NULL, OPT_TENANT },
	{ "uid", required_argument, NULL, OPT_UID },
	{ "gid", required_argument, NULL, OPT_GID },
	{ "mac", required_argument, NULL, OPT_MAC },
	{ "ipv4", required_argument, NULL, OPT_IPV4 },
	{ "ipv6", required_argument, NULL, OPT_IPV6 },
	{ "tap", required_argument, NULL, OPT_TAP },
	{ "publish", required_argument, NULL, OPT_PUBLISH },
	{ "rate", required_argument, NULL, OPT_RATE },
	{ "force", no_argument, NULL, OPT_FORCE },
	{ "count", required_argument, NULL, OPT_COUNT },
	{ NULL, 0, NULL, 0 },
};

struct args {
	struct md_vmnet_req req;
	bool force;
	long count;  /* pool fill --count; -1: not given */
	char **rest; /* exec: after -- */
};

/* Parse one verb's options; `allowed` lists the private options it takes. Options may come
 * before or after other words; exec stops at "--". */
static void parse(int argc, char **argv, const int *allowed, struct args *a, bool chain)
{
	md_err *err = NULL;
	uint64_t n;
	int opt;

	memset(a, 0, sizeof(*a));
	a->req.uid = a->req.gid = -1;
	a->count = -1;
	a->req.publish = json_array();
	while ((opt = getopt_long(argc, argv, chain ? "+" MD_CLI_COMMON_SHORTOPTS : MD_CLI_COMMON_SHORTOPTS, longopts,
				  NULL)) != -1) {
		bool ok = false;

		if (opt == '?' || opt == ':')
			md_cli_bad_option();
		if (md_cli_common(opt, optarg))
			continue;
		for (const int *p = allowed; *p; p++)
			ok |= *p == opt;
		if (!ok)
			md_die_msg(MD_EXIT_USAGE, "%s: option `%s` does not apply (try 'metald-net --help')", argv[0],
				   argv[optind - 1]);
		switch (opt) {
		case OPT_ID:
			if (md_id_check(optarg, "vm id", &err) < 0)
				md_die(err);
			a->req.id = optarg;
			break;
		case OPT_TENANT:
			if (md_id_check(optarg, "tenant", &err) < 0)
				md_die(err);
			a->req.tenant = optarg;
			break;
		case OPT_UID:
		case OPT_GID:
			if (md_parse_u64(optarg, 0, 0xfffffffe, &n, &err) < 0) {
				md_err_wrap(&err, "--%s", opt == OPT_UID ? "uid" : "gid");
				md_die(err);
			}
			*(opt == OPT_UID ? &a->req.uid : &a->req.gid) = (long)n;
			break;
		case OPT_MAC:
			if (md_parse_mac(optarg, false, a->req.mac, &err) < 0) {
				md_err_wrap(&err, "--mac");
				md_die(err);
			}
			a->req.have_mac = true;
			break;
		case OPT_IPV4:
		case OPT_IPV6: {
			struct md_addr *w = opt == OPT_IPV4 ? &a->req.want4 : &a->req.want6;
			int fam = opt == OPT_IPV4 ? AF_INET : AF_INET6;

			if (md_parse_addr(optarg, w, &err) < 0 || w->family != fam) {
				md_err_free(&err);
				md_die_msg(MD_EXIT_USAGE, "--ipv%d `%s`: not an IPv%d address", fam == AF_INET ? 4 : 6, optarg,
					   fam == AF_INET ? 4 : 6);
			}
			*(opt == OPT_IPV4 ? &a->req.have4 : &a->req.have6) = true;
			break;
		}
		case OPT_TAP:
			if (md_ifname_check(optarg, "--tap", &err) < 0)
				md_die(err);
			a->req.tap = optarg;
			break;
		case OPT_PUBLISH:
			if (md_vmnet_parse_publish(optarg, a->req.publish, &err) < 0)
				md_die(err);
			break;
		case OPT_RATE:
			if (md_vmnet_parse_rate(optarg, &a->req, &err) < 0)
				md_die(err);
			break;
		case OPT_FORCE:
			a->force = true;
			break;
		case OPT_COUNT:
			if (md_parse_u64(optarg, 0, MD_NET_POOL_MAX, &n, &err) < 0) {
				md_err_wrap(&err, "--count");
				md_die(err);
			}
			a->count = (long)n;
			break;
		}
	}
	if (chain) {
		a->rest = argv + optind;
		return;
	}
	if (a->count >= 0 && strcmp(argv[0], "pool"))
		md_die_msg(MD_EXIT_USAGE, "%s: option `--count` does not apply (try 'metald-net --help')", argv[0]);
	if (optind < argc)
		md_die_msg(MD_EXIT_USAGE, "%s: unexpected argument `%s` (try 'metald-net --help')", argv[0], argv[optind]);
}

static void need_id(struct args *a, const char *verb)
{
	if (a->req.id == NULL)
		md_die_msg(MD_EXIT_USAGE, "%s: --id is required", verb);
}

static void paths(struct md_paths *p)
{
	md_err *err = NULL;

	if (md_paths_init(p, md_cli.root, &err) < 0)
		md_die(err);
}

static void config(struct md_netcfg *cfg)
{
	md_err *err = NULL;

	if (md_netcfg_load(cfg, &err) < 0)
		md_die(err);
}

static int print(json_t *v, const char *const *cols)
{
	md_out_print(stdout, v, md_cli_out_mode(), cols);
	json_decref(v);
	return 0;
}

static const char *const list_cols[] = { "id", "tenant", "ipv4.address=IPV4", "ipv6.address=IPV6", "mac",
					 "host_link=LINK", NULL };

static int cmd_create(int argc, char **argv)
{
	static const int allowed[] = { OPT_ID, OPT_TENANT, OPT_UID, OPT_GID, OPT_MAC, OPT_IPV4, OPT_IPV6, OPT_TAP,
				       OPT_PUBLISH, OPT_RATE, 0 };
	struct args a;
	struct md_paths p;
	struct md_netcfg cfg;
	md_err *err = NULL;
	json_t *out = NULL;

	parse(argc, argv, allowed, &a, false);
	need_id(&a, "create");
	if (a.req.tenant == NULL)
		md_die_msg(MD_EXIT_USAGE, "create: --tenant is required");
	paths(&p);
	config(&cfg);
	if (md_vmnet_create(&p, &cfg, &a.req, &out, &err) < 0)
		md_die(err);
	json_decref(a.req.publish);
	md_netcfg_free(&cfg);
	md_paths_free(&p);
	return print(out, NULL);
}

static int cmd_simple(int argc, char **argv)
{
	static const int with_id[] = { OPT_ID, 0 };
	static const int with_tenant[] = { OPT_TENANT, 0 };
	static const int none[] = { 0 };
	const char *verb = argv[0];
	struct args a;
	struct md_paths p;
	md_err *err = NULL;
	json_t *out = NULL;
	int rc = 0;

	parse(argc, argv, !strcmp(verb, "list") ? with_tenant : !strcmp(verb, "gc") ? none : with_id, &a, false);
	json_decref(a.req.publish);
	paths(&p);
	if (!strcmp(verb, "list")) {
		rc = md_vmnet_list(&p, a.req.tenant, &out, &err);
	} else if (!strcmp(verb, "gc")) {
		struct md_netcfg cfg;

		config(&cfg);
		rc = md_vmnet_gc(&p, &cfg, &out, &err);
		md_netcfg_free(&cfg);
	} else {
		need_id(&a, verb);
		if (!strcmp(verb, "show"))
			rc = md_vmnet_show(&p, a.req.id, &out, &err);
		else if (!strcmp(verb, "stats"))
			rc = md_vmnet_stats(&p, a.req.id, &out, &err);
		else {
			bool existed;
			rc = md_vmnet_delete(&p, a.req.id, &existed, &err);
			if (rc == 0)
				out = json_pack("{s:s, s:b}", "id", a.req.id, "deleted", existed);
		}
	}
	md_paths_free(&p);
	if (rc < 0)
		md_die(err);
	if (!strcmp(verb, "delete") && !md_cli.json) {
		json_decref(out);
		return 0;
	}
	return print(out, !strcmp(verb, "list") ? list_cols : NULL);
}

static int cmd_setup(int argc, char **argv)
{
	static const int setup_opts[] = { 0 };
	static const int teardown_opts[] = { OPT_FORCE, 0 };
	bool teardown = !strcmp(argv[0], "teardown");
	struct args a;
	struct md_paths p;
	struct md_netcfg cfg;
	md_err *err = NULL;
	int rc;

	parse(argc, argv, teardown ? teardown_opts : setup_opts, &a, false);
	json_decref(a.req.publish);
	paths(&p);
	config(&cfg);
	rc = teardown ? md_vmnet_teardown(&p, a.force, &err) : md_vmnet_setup(&p, &cfg, &err);
	md_netcfg_free(&cfg);
	md_paths_free(&p);
	if (rc < 0)
		md_die(err);
	return 0;
}

static int cmd_exec(int argc, char **argv)
{
	static const int allowed[] = { OPT_ID, 0 };
	struct args a;
	struct md_paths p;
	md_err *err = NULL;

	parse(argc, argv, allowed, &a, true);
	json_decref(a.req.publish);
	if (a.req.id == NULL)
		md_die_msg(MD_EXIT_CHAIN, "exec: --id is required");
	if (a.rest[0] && !strcmp(a.rest[0], "--"))
		a.rest++;
	if (a.rest[0] == NULL)
		md_die_msg(MD_EXIT_CHAIN, "exec: no program given (exec --id VM -- PROG [ARGS])");
	if (md_paths_init(&p, md_cli.root, &err) < 0) {
		err->code = MD_EXIT_CHAIN;
		md_die(err);
	}
	md_vmnet_exec(&p, a.req.id, a.rest, &err);
	md_die(err);
}

static const char *const pool_cols[] = { "slot", "tap", "netns", "host_link=LINK", NULL };

static int cmd_pool(int argc, char **argv)
{
	static const int allowed[] = { OPT_COUNT, 0 };
	const char *op = "show";
	struct args a;
	struct md_paths p;
	struct md_netcfg cfg;
	md_err *err = NULL;
	json_t *out = NULL;

	/* the sub-command, if any, comes right after `pool` */
	if (argc > 1 && argv[1][0] != '-') {
		op = argv[1];
		argv[1] = argv[0];
		argc--;
		argv++;
	}
	if (strcmp(op, "show") && strcmp(op, "fill") && strcmp(op, "drain"))
		md_die_msg(MD_EXIT_USAGE, "pool: unknown sub-command `%s` (show, fill or drain)", op);
	parse(argc, argv, allowed, &a, false);
	json_decref(a.req.publish);
	if (a.count >= 0 && strcmp(op, "fill"))
		md_die_msg(MD_EXIT_USAGE, "pool %s: option `--count` does not apply", op);
	paths(&p);
	config(&cfg);
	if (md_vmnet_pool(&p, &cfg, op, a.count, &out, &err) < 0)
		md_die(err);
	md_netcfg_free(&cfg);
	md_paths_free(&p);
	if (!strcmp(op, "show") && !md_cli.json) {
		json_t *slots = json_incref(json_object_get(out, "slots"));
		const char *e = json_string_value(json_object_get(out, "refill_error"));

		printf("size %d, ready %d (tap %s)\n", (int)json_integer_value(json_object_get(out, "size")),
		       (int)json_integer_value(json_object_get(out, "ready")),
		       json_string_value(json_object_get(out, "tap")));
		if (e)
			printf("last refill failed: %s\n", e);
		json_decref(out);
		return json_array_size(slots) ? print(slots, pool_cols) : (json_decref(slots), 0);
	}
	return print(out, NULL);
}

static const struct md_verb verbs[] = {
	{ "setup", cmd_setup, "make the host-wide pieces" },
	{ "teardown", cmd_setup, "remove the host-wide pieces" },
	{ "create", cmd_create, "make a VM's network" },
	{ "delete", cmd_simple, "remove a VM's network" },
	{ "show", cmd_simple, "print a VM's network" },
	{ "list", cmd_simple, "list VM networks" },
	{ "stats", cmd_simple, "a VM's traffic counters" },
	{ "gc", cmd_simple, "remove orphans" },
	{ "exec", cmd_exec, "run a program in a VM's namespace" },
	{ "pool", cmd_pool, "namespaces made ahead of time" },
	{ NULL, NULL, NULL },
};

int main(int argc, char **argv)
{
	md_cli_init(argv[0]);
	md_cli.usage = usage;
	return md_cli_dispatch(verbs, argc, argv);
}
