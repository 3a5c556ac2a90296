/* metald-jail: run one program in a jail (Firecracker jailer compatible) and exec it; clean up jails. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "caps.h"
#include "cleanup.h"
#include "cli.h"
#include "jail.h"
#include "parse.h"
#include "state.h"

static const char usage[] =
	"Usage: metald-jail --id ID --exec-file FILE --uid UID --gid GID [OPTIONS] [-- ARGS...]\n"
	"       metald-jail clean --id ID [--chroot-base-dir DIR] [--exec-file NAME] [--kill]\n"
	"       metald-jail kvm-pit --id ID [--chroot-base-dir DIR] [--exec-file NAME]\n"
	"\n"
	"Build a jail for FILE (a copy of it in <chroot-base-dir>/<name>/<ID>/root), enter it and exec\n"
	"it with ARGS. Accepts the command line of Firecracker's jailer.\n"
	"\n"
	"Firecracker jailer options:\n"
	"  --id ID                  jail id: 1-64 characters of A-Z a-z 0-9 -\n"
	"  --exec-file FILE         the program to run (copied into the jail)\n"
	"  --uid UID, --gid GID     run it as this user and group\n"
	"  --chroot-base-dir DIR    base of the jails (default /srv/jailer)\n"
	"  --netns PATH             join this network namespace first\n"
	"  --daemonize              detach: setsid, stdio to /dev/null\n"
	"  --new-pid-ns             run the program as PID 1 of a new PID namespace\n"
	"  --cgroup FILE=VALUE      write VALUE to the cgroup file FILE (repeatable)\n"
	"  --cgroup-version 1|2|auto  cgroup hierarchy (default auto)\n"
	"  --parent-cgroup PATH     parent of the jail's cgroup (default: the exec file's name)\n"
	"  --resource-limit NAME=N  fsize, no-file (default 2048), nproc, as, core (default 0), ...\n"
	"\n"
	"More:\n"
	"  --bind SRC:DST[:ro]      bind mount SRC at DST in the jail (repeatable)\n"
	"  --link SRC:DST           hard link (or copy) the file SRC to DST in the jail (repeatable)\n"
	"  --tmpfs DST              mount a tmpfs at DST in the jail (repeatable)\n"
	"  --exec-mode copy|bind    copy the exec file (default) or bind it read-only\n"
	"  --seccomp PROFILE|none   seccomp profile name or file (default: default)\n"
	"  --userns                 run in a new user namespace mapping only UID and GID\n"
	"  --cap-keep CAPS          capabilities to keep, comma-separated (default: none)\n"
	"  --cgroup-root DIR        where cgroup hierarchies are mounted (default /sys/fs/cgroup)\n"
	"  --firecracker-args auto|always|never  add Firecracker's --id and timing arguments\n"
	"                           (auto: when the exec file's name starts with firecracker)\n"
	"  --json                   with --daemonize or --new-pid-ns, print {pid, chroot, cgroups, pidfile}\n"
	"  --root DIR               keep metald's state under DIR (the default chroot base is DIR/jail)\n"
	"\n"
	"clean: remove a jail's directory, cgroups and pid file (idempotent); --kill stops its processes\n"
	"  first. It also takes --parent-cgroup, --cgroup-version and --cgroup-root.\n"
	"kvm-pit: move the kvm-pit/<pid> kernel thread of the jail's VMM into the jail's cgroups.\n"
	"\n"
	"Common: -v, --verbose  -q, --quiet  --log-format text|json  -h, --help  --version\n"
	"Exit: 0 ok (then the program's status), 2 usage, 3 not found, 4 jail in use, 5 host lacks a\n"
	"      cgroup controller, 125 setup failed, 126 cannot run the program, 127 program not found.\n";

enum {
	OPT_ID = MD_OPT_FIRST_PRIVATE,
	OPT_EXEC_FILE,
	OPT_UID,
	OPT_GID,
	OPT_CHROOT_BASE,
	OPT_NETNS,
	OPT_DAEMONIZE,
	OPT_NEW_PID_NS,
	OPT_CGROUP,
	OPT_CGROUP_VERSION,
	OPT_PARENT_CGROUP,
	OPT_RESOURCE_LIMIT,
	OPT_BIND,
	OPT_LINK,
	OPT_TMPFS,
	OPT_EXEC_MODE,
	OPT_SECCOMP,
	OPT_USERNS,
	OPT_CAP_KEEP,
	OPT_CGROUP_ROOT,
	OPT_FC_ARGS,
	OPT_KILL,
};

static const struct option longopts[] = {
	MD_CLI_COMMON_LONGOPTS,
	{ "id", required_argument, NULL, OPT_ID },
	{ "exec-file", required_argument, NULL, OPT_EXEC_FILE },
	{ "uid", required_argument, NULL, OPT_UID },
	{ "gid", required_argument, NULL, OPT_GID },
	{ "chroot-base-dir", required_argument, NULL, OPT_CHROOT_BASE },
	{ "netns", required_argument, NULL, OPT_NETNS },
	{ "daemonize", no_argument, NULL, OPT_DAEMONIZE },
	{ "new-pid-ns", no_argument, NULL, OPT_NEW_PID_NS },
	{ "cgroup", required_argument, NULL, OPT_CGROUP },
	{ "cgroup-version", required_argument, NULL, OPT_CGROUP_VERSION },
	{ "parent-cgroup", required_argument, NULL, OPT_PARENT_CGROUP },
	{ "resource-limit", required_argument, NULL, OPT_RESOURCE_LIMIT },
	{ "bind", required_argument, NULL, OPT_BIND },
	{ "link", required_argument, NULL, OPT_LINK },
	{ "tmpfs", required_argument, NULL, OPT_TMPFS },
	{ "exec-mode", required_argument, NULL, OPT_EXEC_MODE },
	{ "seccomp", required_argument, NULL, OPT_SECCOMP },
	{ "userns", no_argument, NULL, OPT_USERNS },
	{ "cap-keep", required_argument, NULL, OPT_CAP_KEEP },
	{ "cgroup-root", required_argument, NULL, OPT_CGROUP_ROOT },
	{ "firecracker-args", required_argument, NULL, OPT_FC_ARGS },
	{ "kill", no_argument, NULL, OPT_KILL },
	{ NULL, 0, NULL, 0 },
};

static void *grow(void *p, size_t n, size_t size)
{
	void *q = realloc(p, (n + 1) * size);

	if (q == NULL)
		md_die_msg(MD_EXIT_FAIL, "out of memory");
	return q;
}

static int parse_version(const char *s, md_err **err)
{
	if (strcmp(s, "1") == 0)
		return MD_CG_V1;
	if (strcmp(s, "2") == 0)
		return MD_CG_V2;
	if (strcmp(s, "auto") == 0)
		return MD_CG_AUTO;
	return md_usage(err, "--cgroup-version `%s`: must be 1, 2 or auto", s);
}

static uint32_t parse_id(const char *what, const char *s)
{
	md_err *err = NULL;
	uint64_t v;

	if (md_parse_u64(s, 0, UINT32_MAX - 1, &v, &err) < 0) {
		md_err_wrap(&err, "%s", what);
		md_die(err);
	}
	return (uint32_t)v;
}

/* SRC:DST[:ro] */
static void parse_mount(const char *what, const char *s, bool allow_ro, struct md_jail_mount *m)
{
	char *dup = strdup(s), *c = strchr(dup, ':');

	if (c == NULL || c == dup || c[1] == '\0')
		md_die_msg(MD_EXIT_USAGE, "%s `%s`: must be SRC:DST%s", what, s, allow_ro ? "[:ro]" : "");
	*c = '\0';
	m->src = dup;
	m->dst = c + 1;
	m->ro = false;
	c = strchr(m->dst, ':');
	if (c) {
		if (!allow_ro || strcmp(c + 1, "ro") != 0)
			md_die_msg(MD_EXIT_USAGE, "%s `%s`: must be SRC:DST%s", what, s, allow_ro ? "[:ro]" : "");
		*c = '\0';
		m->ro = true;
	}
}

static const char *default_base(bool create)
{
	static struct md_paths paths;
	md_err *err = NULL;

	if (md_paths_init(&paths, md_cli.root, &err) < 0)
		md_die(err);
	if (create && md_mkdir_p(paths.chroot_dir, 0755, &err) < 0)
		md_die(err);
	return paths.chroot_dir;
}

/* Compiled seccomp profiles are kept in <run dir>/seccomp (a cache: losing it costs 0.3 ms). */
static char *seccomp_cache_dir(void)
{
	struct md_paths paths;
	char *dir;

	if (md_paths_init(&paths, md_cli.root, NULL) < 0)
		return NULL;
	dir = md_path_join(paths.run_dir, "seccomp");
	md_paths_free(&paths);
	return dir;
}

static int cmd_clean(int argc, char **argv, bool pit)
{
	struct md_jail_clean c = { .cgroup_version = MD_CG_AUTO };
	_cleanup_json_ json_t *out = NULL;
	md_err *err = NULL;
	int opt;

	while ((opt = getopt_long(argc, argv, "+" MD_CLI_COMMON_SHORTOPTS, longopts, NULL)) != -1) {
		switch (opt) {
		case OPT_ID: c.id = optarg; break;
		case OPT_CHROOT_BASE: c.chroot_base = optarg; break;
		case OPT_EXEC_FILE: c.exec_name = optarg; break;
		case OPT_PARENT_CGROUP: c.parent_cgroup = optarg; break;
		case OPT_CGROUP_ROOT: c.cgroup_root = optarg; break;
		case OPT_KILL: c.kill = true; break;
		case OPT_CGROUP_VERSION:
			if ((c.cgroup_version = parse_version(optarg, &err)) < 0)
				md_die(err);
			break;
		default:
			if (!md_cli_common(opt, optarg))
				md_cli_bad_option();
		}
	}
	if (optind < argc)
		md_die_msg(MD_EXIT_USAGE, "%s: unexpected argument `%s`", argv[0], argv[optind]);
	if (c.id == NULL)
		md_die_msg(MD_EXIT_USAGE, "%s: --id is required", argv[0]);
	if (c.chroot_base == NULL)
		c.chroot_base = default_base(false);
	if ((pit ? md_jail_kvm_pit(&c, &out, &err) : md_jail_clean(&c, &out, &err)) < 0) {
		json_decref(out);
		out = NULL;
		md_err_wrap(&err, "%s `%s`", argv[0], c.id);
		md_die(err);
	}
	if (md_cli.json) {
		json_t *o = json_pack("{s:s, s:O}", "id", c.id, pit ? "moved" : "removed", out);
		md_out_print(stdout, o, MD_OUT_JSON, NULL);
		json_decref(o);
	} else {
		size_t i;
		json_t *v;
		json_array_foreach(out, i, v) {
			if (json_is_string(v))
				md_info("removed `%s`", json_string_value(v));
			else
				md_info("moved kvm-pit thread %lld", (long long)json_integer_value(v));
		}
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct md_jail j;
	md_err *err = NULL;
	bool have_uid = false, have_gid = false, have_nofile = false, have_core = false;
	const char *e;
	int opt;

	/* Firecracker's jailer's first step: no inherited fd reaches the jail (close_range, 5.9+). */
	syscall(SYS_close_range, 3U, ~0U, 0U);
	md_cli_init(argv[0]);
	md_cli.usage = usage;
	if (argc > 1 && (strcmp(argv[1], "clean") == 0 || strcmp(argv[1], "kvm-pit") == 0))
		return cmd_clean(argc - 1, argv + 1, strcmp(argv[1], "kvm-pit") == 0);

	md_jail_init(&j);
	if ((e = getenv("UNKEY_METALD_JAILER_UID")) && *e) {
		j.uid = parse_id("UNKEY_METALD_JAILER_UID", e);
		have_uid = true;
	}
	if ((e = getenv("UNKEY_METALD_JAILER_GID")) && *e) {
		j.gid = parse_id("UNKEY_METALD_JAILER_GID", e);
		have_gid = true;
	}
	/* '+': stop at the first non-option, so the program's own flags after -- are never ours. */
	while ((opt = getopt_long(argc, argv, "+" MD_CLI_COMMON_SHORTOPTS, longopts, NULL)) != -1) {
		switch (opt) {
		case OPT_ID: j.id = optarg; break;
		case OPT_EXEC_FILE: j.exec_file = optarg; break;
		case OPT_UID: j.uid = parse_id("--uid", optarg); have_uid = true; break;
		case OPT_GID: j.gid = parse_id("--gid", optarg); have_gid = true; break;
		case OPT_CHROOT_BASE: j.chroot_base = optarg; break;
		case OPT_NETNS: j.netns = optarg; break;
		case OPT_DAEMONIZE: j.daemonize = true; break;
		case OPT_NEW_PID_NS: j.new_pid_ns = true; break;
		case OPT_USERNS: j.userns = true; break;
		case OPT_PARENT_CGROUP: j.parent_cgroup = optarg; break;
		case OPT_CGROUP_ROOT: j.cgroup_root = optarg; break;
		case OPT_SECCOMP: j.seccomp = optarg; break;
		case OPT_CGROUP_VERSION:
			if ((j.cgroup_version = parse_version(optarg, &err)) < 0)
				md_die(err);
			break;
		case OPT_CGROUP: {
			char *eq = strchr(optarg, '=');
			if (eq == NULL || eq == optarg || eq[1] == '\0')
				md_die_msg(MD_EXIT_USAGE, "--cgroup `%s`: must be FILE=VALUE, such as cpu.shares=512", optarg);
			j.props = grow(j.props, j.nprops, sizeof(*j.props));
			j.props[j.nprops].file = strndup(optarg, (size_t)(eq - optarg));
			j.props[j.nprops++].value = eq + 1;
			break;
		}
		case OPT_RESOURCE_LIMIT:
			j.rlimits = grow(j.rlimits, j.nrlimits, sizeof(*j.rlimits));
			if (md_rlimit_parse(optarg, &j.rlimits[j.nrlimits], &err) < 0)
				md_die(err);
			have_nofile |= j.rlimits[j.nrlimits].resource == RLIMIT_NOFILE;
			have_core |= j.rlimits[j.nrlimits].resource == RLIMIT_CORE;
			j.nrlimits++;
			break;
		case OPT_BIND:
			j.mounts = grow(j.mounts, j.nmounts, sizeof(*j.mounts));
			parse_mount("--bind", optarg, true, &j.mounts[j.nmounts++]);
			break;
		case OPT_TMPFS:
			j.mounts = grow(j.mounts, j.nmounts, sizeof(*j.mounts));
			j.mounts[j.nmounts++] = (struct md_jail_mount){ .dst = optarg };
			break;
		case OPT_LINK:
			j.links = grow(j.links, j.nlinks, sizeof(*j.links));
			parse_mount("--link", optarg, false, &j.links[j.nlinks++]);
			break;
		case OPT_EXEC_MODE:
			if (strcmp(optarg, "copy") == 0)
				j.exec_mode = MD_EXEC_COPY;
			else if (strcmp(optarg, "bind") == 0)
				j.exec_mode = MD_EXEC_BIND;
			else
				md_die_msg(MD_EXIT_USAGE, "--exec-mode `%s`: must be copy or bind", optarg);
			break;
		case OPT_FC_ARGS:
			if (strcmp(optarg, "auto") == 0)
				j.fc_args = MD_FC_ARGS_AUTO;
			else if (strcmp(optarg, "always") == 0)
				j.fc_args = MD_FC_ARGS_YES;
			else if (strcmp(optarg, "never") == 0)
				j.fc_args = MD_FC_ARGS_NO;
			else
				md_die_msg(MD_EXIT_USAGE, "--firecracker-args `%s`: must be auto, always or never", optarg);
			break;
		case OPT_CAP_KEEP:
			if (md_caps_parse(optarg, &j.cap_keep, &err) < 0)
				md_die(err);
			break;
		case OPT_KILL:
			md_die_msg(MD_EXIT_USAGE, "--kill belongs to `clean`");
		default:
			if (!md_cli_common(opt, optarg))
				md_cli_bad_option();
		}
	}
	j.argv = argv + optind;
	j.argc = argc - optind;
	if (j.id == NULL)
		md_die_msg(MD_EXIT_USAGE, "--id is required");
	if (j.exec_file == NULL)
		md_die_msg(MD_EXIT_USAGE, "--exec-file is required");
	if (!have_uid || !have_gid)
		md_die_msg(MD_EXIT_USAGE, "--uid and --gid are required (or UNKEY_METALD_JAILER_UID/_GID)");
	/* The jailer's defaults: no-file 2048; and no core dumps, which it leaves as they are. */
	if (!have_nofile) {
		j.rlimits = grow(j.rlimits, j.nrlimits, sizeof(*j.rlimits));
		j.rlimits[j.nrlimits++] = (struct md_rlimit){ RLIMIT_NOFILE, MD_JAIL_DEFAULT_NOFILE };
	}
	if (!have_core) {
		j.rlimits = grow(j.rlimits, j.nrlimits, sizeof(*j.rlimits));
		j.rlimits[j.nrlimits++] = (struct md_rlimit){ RLIMIT_CORE, 0 };
	}
	if (j.chroot_base == NULL)
		j.chroot_base = default_base(true);
	_cleanup_free_ char *cache = seccomp_cache_dir();
	j.seccomp_cache = cache;

	if (md_jail_check(&j, &err) < 0 || md_jail_run(&j, &err) < 0) {
		if (err->code == MD_EXIT_FAIL)
			err->code = MD_EXIT_CHAIN; /* a chain-loader that fails before exec says 125 */
		md_err_wrap(&err, "jail `%s`", j.id);
		md_die(err);
	}
	/* Only the --daemonize / --new-pid-ns parent gets here, with the program running. */
	if (md_cli.json) {
		json_t *o = md_jail_json(&j);
		md_out_line(stdout, o);
		json_decref(o);
	}
	md_jail_free(&j);
	for (size_t i = 0; i < j.nprops; i++)
		free(j.props[i].file);
	for (size_t i = 0; i < j.nmounts; i++)
		free(j.mounts[i].src);
	for (size_t i = 0; i < j.nlinks; i++)
		free(j.links[i].src);
	free(j.props);
	free(j.rlimits);
	free(j.mounts);
	free(j.links);
	return 0;
}
