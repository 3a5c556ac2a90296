/* Unit tests of the jail's parsers: resource limits, capabilities, cgroup names, seccomp profiles. */
#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

#include "../../lib/caps.h"
#include "../../lib/cgroup.h"
#include "../../lib/rlimit.h"
#include "../../lib/seccomp-profile.h"
#include "../../lib/state.h"
#include "tap.h"

static void rlimits(void)
{
	struct md_rlimit r;
	md_err *err = NULL;

	ok(md_rlimit_parse("no-file=2048", &r, &err) == 0 && r.resource == RLIMIT_NOFILE && r.value == 2048,
	   "no-file, the jailer's spelling");
	ok(md_rlimit_parse("fsize=0", &r, &err) == 0 && r.resource == RLIMIT_FSIZE && r.value == 0, "fsize=0");
	ok(md_rlimit_parse("as=unlimited", &r, &err) == 0 && r.value == RLIM_INFINITY, "unlimited");
	ok(md_rlimit_parse("core=1", &r, &err) == 0 && r.resource == RLIMIT_CORE, "core");
	ok(md_rlimit_parse("nproc=5", &r, &err) == 0 && r.resource == RLIMIT_NPROC, "nproc");
	ok(md_rlimit_parse("bogus=1", &r, &err) < 0 && err->code == MD_EXIT_USAGE, "unknown name is usage");
	md_err_free(&err);
	ok(md_rlimit_parse("no-file=12x", &r, &err) < 0, "trailing junk refused");
	md_err_free(&err);
	ok(md_rlimit_parse("no-file", &r, &err) < 0 && md_rlimit_parse("=5", &r, &err) < 0, "NAME=VALUE required");
	md_err_free(&err);
}

static void caps(void)
{
	uint64_t m;
	md_err *err = NULL;

	ok(md_caps_parse("", &m, &err) == 0 && m == 0, "empty list");
	ok(md_caps_parse("net_admin,CAP_SYS_NICE", &m, &err) == 0 && m == ((1ULL << 12) | (1ULL << 23)),
	   "names with and without CAP_, any case");
	ok(md_caps_parse("no_such", &m, &err) < 0 && err->code == MD_EXIT_USAGE, "unknown capability");
	md_err_free(&err);
}

static void cgroup_names(void)
{
	char *ctrl = NULL;
	md_err *err = NULL;
	struct md_cgroup *cg = NULL;

	ok(md_cgroup_file_check("cpu.shares", &ctrl, &err) == 0 && strcmp(ctrl, "cpu") == 0, "controller of cpu.shares");
	free(ctrl);
	ok(md_cgroup_file_check("hugetlb.2MB.max", &ctrl, &err) == 0 && strcmp(ctrl, "hugetlb") == 0,
	   "controller is the text before the first dot");
	free(ctrl);
	ok(md_cgroup_file_check("../tasks", &ctrl, &err) < 0, "no slash");
	md_err_free(&err);
	ok(md_cgroup_file_check("cpu", &ctrl, &err) < 0, "a dot is needed");
	md_err_free(&err);
	ok(md_cgroup_new(&cg, "/nonexistent-root", MD_CG_V1, "../x", "a", &err) < 0 && err->code == MD_EXIT_USAGE,
	   "parent with .. refused");
	md_err_free(&err);
	ok(md_cgroup_new(&cg, "/nonexistent-root", MD_CG_V1, "/x", "a", &err) < 0, "absolute parent refused");
	md_err_free(&err);
	ok(md_cgroup_new(&cg, "/nonexistent-root", MD_CG_AUTO, "p", "a", &err) < 0 && err->code == MD_EXIT_MISSING,
	   "no hierarchy under the root is exit 5");
	md_err_free(&err);
	ok(md_cgroup_new(&cg, "/nonexistent-root", 3, "p", "a", &err) < 0 && err->code == MD_EXIT_USAGE,
	   "version 3 is refused before anything is read");
	md_err_free(&err);
	/* auto decides from the same mountinfo read that finds the hierarchies, as md_cgroup_detect does */
	int v = 0;
	if (md_cgroup_detect(NULL, &v, &err) == 0 && md_cgroup_new(&cg, NULL, MD_CG_AUTO, "p", "a", &err) == 0) {
		is_int(cg->version, v, "auto in md_cgroup_new is md_cgroup_detect's version");
		md_cgroup_free(cg);
		cg = NULL;
	} else {
		ok(err && err->code == MD_EXIT_MISSING, "no cgroups on this host: both say exit 5");
	}
	md_err_free(&err);
	setenv("UNKEY_METALD_CGROUP_ROOT", "/x/y", 1);
	is_str(md_cgroup_root(NULL), "/x/y", "root from the environment");
	is_str(md_cgroup_root("/a"), "/a", "flag wins");
	unsetenv("UNKEY_METALD_CGROUP_ROOT");
	is_str(md_cgroup_root(NULL), "/sys/fs/cgroup", "default root");
}

static int compile_text(const char *text, md_err **err)
{
	char path[] = "/tmp/metald-test-profile.XXXXXX";
	int fd = mkstemp(path), rc;
	scmp_filter_ctx ctx = NULL;

	if (fd < 0 || write(fd, text, strlen(text)) < 0)
		return -2;
	close(fd);
	rc = md_seccomp_compile(path, &ctx, err);
	if (ctx)
		seccomp_release(ctx);
	unlink(path);
	return rc;
}

static void profiles(void)
{
	md_err *err = NULL;
	char *path = NULL;

	ok(compile_text("{\"default_action\":\"allow\",\"rules\":[{\"syscalls\":[\"ptrace\"],\"action\":\"kill\"}]}",
			&err) == 0, "a deny rule");
	ok(compile_text("{\"default_action\":\"kill\",\"rules\":[{\"syscalls\":[\"clone\"],\"action\":\"allow\","
			"\"args\":[{\"index\":0,\"op\":\"masked_eq\",\"mask\":2114060416,\"value\":0}]}]}", &err) == 0,
	   "an allow rule with a masked argument");
	ok(compile_text("{\"default_action\":\"allow\",\"rules\":[{\"syscalls\":[\"getpid\"],\"action\":\"errno:EPERM\"},"
			"{\"syscalls\":[\"getppid\"],\"action\":\"errno:13\"}]}", &err) == 0, "errno by name and number");
	ok(compile_text("{\"default_action\":\"allow\",\"rules\":[{\"syscalls\":[\"nope\"],\"action\":\"kill\"}]}",
			&err) < 0 && err->code == MD_EXIT_USAGE && strstr(err->msg, "rules[0]: unknown syscall `nope`"),
	   "unknown syscall names the rule");
	md_err_free(&err);
	ok(compile_text("{\"default_action\":\"sometimes\"}", &err) < 0 && err->code == MD_EXIT_USAGE, "bad action");
	md_err_free(&err);
	ok(compile_text("{\"default_action\":\"allow\",\"rules\":[{\"syscalls\":[\"read\"],\"action\":\"kill\","
			"\"args\":[{\"index\":7,\"op\":\"eq\",\"value\":1}]}]}", &err) < 0, "arg index out of range");
	md_err_free(&err);
	ok(compile_text("{\"default_action\":\"allow\",\"rules\":[{\"syscalls\":[\"read\"],\"action\":\"kill\","
			"\"args\":[{\"index\":0,\"op\":\"about\",\"value\":1}]}]}", &err) < 0, "unknown op");
	md_err_free(&err);
	ok(compile_text("{not json", &err) < 0 && err->code == MD_EXIT_USAGE, "bad JSON is usage");
	md_err_free(&err);
	ok(md_seccomp_find("no-such-profile-here", &path, &err) < 0 && err->code == MD_EXIT_NOTFOUND,
	   "a missing profile is not found");
	md_err_free(&err);
	ok(md_seccomp_find("default", &path, &err) == 0 && strstr(path, "share/metald/seccomp/default.json"),
	   "default found beside the build tree");
	free(path);
	path = NULL;
	scmp_filter_ctx ctx = NULL;
	ok(md_seccomp_find("qemu", &path, &err) == 0 && md_seccomp_compile(path, &ctx, &err) == 0, "qemu profile compiles");
	if (ctx)
		seccomp_release(ctx);
	free(path);
}

int main(void)
{
	rlimits();
	caps();
	cgroup_names();
	profiles();
	return done_testing();
}
