/* Seccomp profiles: find a profile, compile its JSON with libseccomp, load it (named so that <seccomp.h> stays libseccomp's). */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cleanup.h"
#include "parse.h"
#include "seccomp-profile.h"
#include "state.h"

static bool is_file(const char *p)
{
	return access(p, R_OK) == 0;
}

static char *try_dir(const char *dir, const char *name)
{
	char *p = md_strdup_printf("%s/%s.json", dir, name);

	if (is_file(p))
		return p;
	free(p);
	p = md_strdup_printf("%s/%s", dir, name);
	if (is_file(p))
		return p;
	free(p);
	return NULL;
}

int md_seccomp_find(const char *name, char **path, md_err **err)
{
	const char *env = getenv("UNKEY_METALD_SECCOMP_DIR");
	char exe[PATH_MAX];
	ssize_t n;

	if (*name == '\0')
		return md_usage(err, "seccomp profile name is empty");
	if (strchr(name, '/')) {
		if (!is_file(name))
			return md_notfound(err, "seccomp profile `%s`: %s", name, strerror(errno));
		*path = strdup(name);
		return 0;
	}
	if (env && *env && (*path = try_dir(env, name)))
		return 0;
	/* beside the program: PREFIX/bin -> PREFIX/share; build/bin, build/san/bin -> the source tree */
	n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (n > 0) {
		exe[n] = '\0';
		for (int up = 1; up <= 5; up++) {
			char *slash = strrchr(exe, '/');

			if (slash == NULL)
				break;
			*slash = '\0';
			_cleanup_free_ char *dir = md_strdup_printf("%s/share/metald/seccomp", exe);
			if ((*path = try_dir(dir, name)))
				return 0;
		}
	}
	if ((*path = try_dir(METALD_PREFIX "/share/metald/seccomp", name)))
		return 0;
	return md_notfound(err, "seccomp profile `%s` not found (looked in $UNKEY_METALD_SECCOMP_DIR, "
				"share/metald/seccomp beside the program and " METALD_PREFIX "/share/metald/seccomp)",
			   name);
}

static const struct { const char *name; int value; } errnos[] = {
	{ "EPERM", EPERM }, { "ENOENT", ENOENT }, { "EACCES", EACCES }, { "EINVAL", EINVAL },
	{ "ENOSYS", ENOSYS }, { "EAGAIN", EAGAIN }, { "ENOMEM", ENOMEM }, { "EFAULT", EFAULT },
	{ "EBADF", EBADF }, { "ENOTSUP", ENOTSUP }, { "EOPNOTSUPP", EOPNOTSUPP },
};

static int parse_action(const char *s, uint32_t *act, md_err **err)
{
	if (strcmp(s, "allow") == 0)
		*act = SCMP_ACT_ALLOW;
	else if (strcmp(s, "kill") == 0 || strcmp(s, "kill-process") == 0)
		*act = SCMP_ACT_KILL_PROCESS;
	else if (strcmp(s, "kill-thread") == 0)
		*act = SCMP_ACT_KILL_THREAD;
	else if (strcmp(s, "trap") == 0)
		*act = SCMP_ACT_TRAP;
	else if (strcmp(s, "log") == 0)
		*act = SCMP_ACT_LOG;
	else if (strcmp(s, "errno") == 0)
		*act = SCMP_ACT_ERRNO(EPERM);
	else if (strncmp(s, "errno:", 6) == 0) {
		uint64_t v;

		for (size_t i = 0; i < MD_ARRAY_SIZE(errnos); i++) {
			if (strcmp(s + 6, errnos[i].name) == 0) {
				*act = SCMP_ACT_ERRNO((uint32_t)errnos[i].value);
				return 0;
			}
		}
		if (md_parse_u64(s + 6, 1, 4095, &v, NULL) < 0)
			return md_usage(err, "action `%s`: the errno must be a name such as EPERM or a number 1-4095", s);
		*act = SCMP_ACT_ERRNO((uint32_t)v);
	} else
		return md_usage(err, "action `%s`: must be allow, kill, kill-thread, trap, log, errno or errno:NAME", s);
	return 0;
}

static int parse_op(const char *s, enum scmp_compare *op, md_err **err)
{
	static const struct { const char *n; enum scmp_compare op; } ops[] = {
		{ "eq", SCMP_CMP_EQ }, { "ne", SCMP_CMP_NE }, { "lt", SCMP_CMP_LT },
		{ "le", SCMP_CMP_LE }, { "gt", SCMP_CMP_GT }, { "ge", SCMP_CMP_GE },
		{ "masked_eq", SCMP_CMP_MASKED_EQ },
	};
	for (size_t i = 0; i < MD_ARRAY_SIZE(ops); i++) {
		if (strcmp(s, ops[i].n) == 0) {
			*op = ops[i].op;
			return 0;
		}
	}
	return md_usage(err, "op `%s`: must be eq, ne, lt, le, gt, ge or masked_eq", s);
}

static int parse_args(json_t *args, struct scmp_arg_cmp *cmp, unsigned *n, md_err **err)
{
	size_t i;
	json_t *a;

	*n = 0;
	if (args == NULL)
		return 0;
	if (!json_is_array(args) || json_array_size(args) > 6)
		return md_usage(err, "\"args\" must be an array of at most 6 conditions");
	json_array_foreach(args, i, a) {
		json_t *idx = json_object_get(a, "index"), *op = json_object_get(a, "op");
		json_t *val = json_object_get(a, "value"), *mask = json_object_get(a, "mask");
		enum scmp_compare c = SCMP_CMP_EQ;

		if (!json_is_integer(idx) || json_integer_value(idx) < 0 || json_integer_value(idx) > 5)
			return md_usage(err, "args[%zu]: \"index\" must be 0-5", i);
		if (!json_is_string(op) || parse_op(json_string_value(op), &c, err) < 0)
			return op ? md_err_wrap(err, "args[%zu]", i) : md_usage(err, "args[%zu]: \"op\" is missing", i);
		if (!json_is_integer(val))
			return md_usage(err, "args[%zu]: \"value\" must be an integer", i);
		if (c == SCMP_CMP_MASKED_EQ && !json_is_integer(mask))
			return md_usage(err, "args[%zu]: masked_eq needs an integer \"mask\"", i);
		cmp[i].arg = (unsigned)json_integer_value(idx);
		cmp[i].op = c;
		if (c == SCMP_CMP_MASKED_EQ) {
			cmp[i].datum_a = (scmp_datum_t)json_integer_value(mask);
			cmp[i].datum_b = (scmp_datum_t)json_integer_value(val);
		} else {
			cmp[i].datum_a = (scmp_datum_t)json_integer_value(val);
			cmp[i].datum_b = 0;
		}
		(*n)++;
	}
	return 0;
}

static int compile(json_t *prof, scmp_filter_ctx *out, md_err **err)
{
	json_t *def = json_object_get(prof, "default_action"), *rules = json_object_get(prof, "rules"), *r;
	uint32_t defact;
	scmp_filter_ctx ctx;
	size_t i;

	if (!json_is_object(prof))
		return md_usage(err, "a profile must be a JSON object");
	if (!json_is_string(def))
		return md_usage(err, "\"default_action\" is missing or not a string");
	if (parse_action(json_string_value(def), &defact, err) < 0)
		return md_err_wrap(err, "default_action");
	if (rules && !json_is_array(rules))
		return md_usage(err, "\"rules\" must be an array");
	ctx = seccomp_init(defact);
	if (ctx == NULL)
		return md_fail(err, ENOMEM, "seccomp_init");
	json_array_foreach(rules, i, r) {
		json_t *names = json_object_get(r, "syscalls"), *act = json_object_get(r, "action"), *nm;
		struct scmp_arg_cmp cmp[6];
		unsigned ncmp;
		uint32_t a;
		size_t k;

		if (!json_is_array(names) || json_array_size(names) == 0 || !json_is_string(act)) {
			seccomp_release(ctx);
			return md_usage(err, "rules[%zu]: needs \"syscalls\" (a non-empty array) and \"action\"", i);
		}
		if (parse_action(json_string_value(act), &a, err) < 0 || parse_args(json_object_get(r, "args"), cmp, &ncmp, err) < 0) {
			seccomp_release(ctx);
			return md_err_wrap(err, "rules[%zu]", i);
		}
		json_array_foreach(names, k, nm) {
			const char *name = json_string_value(nm);
			int nr, rc;

			if (name == NULL) {
				seccomp_release(ctx);
				return md_usage(err, "rules[%zu]: syscall names must be strings", i);
			}
			nr = seccomp_syscall_resolve_name(name);
			if (nr == __NR_SCMP_ERROR) {
				seccomp_release(ctx);
				return md_usage(err, "rules[%zu]: unknown syscall `%s`", i, name);
			}
			if (a == defact)
				continue; /* libseccomp refuses rules equal to the default; they are no-ops anyway */
			rc = seccomp_rule_add_array(ctx, a, nr, ncmp, ncmp ? cmp : NULL);
			if (rc < 0) {
				seccomp_release(ctx);
				return md_usage(err, "rules[%zu]: syscall `%s`: %s", i, name, strerror(-rc));
			}
		}
	}
	*out = ctx;
	return 0;
}

int md_seccomp_compile(const char *path, scmp_filter_ctx *ctx, md_err **err)
{
	_cleanup_json_ json_t *prof = NULL;

	if (md_json_read(path, &prof, err) < 0) {
		if ((*err)->code != MD_EXIT_NOTFOUND)
			(*err)->code = MD_EXIT_USAGE;
		return md_err_wrap(err, "seccomp profile");
	}
	if (compile(prof, ctx, err) < 0)
		return md_err_wrap(err, "seccomp profile `%s`", path);
	return 0;
}

int md_seccomp_load(scmp_filter_ctx ctx, md_err **err)
{
	int rc = seccomp_load(ctx);

	if (rc < 0)
		return md_fail(err, -rc, "load seccomp filter");
	return 0;
}

static uint64_t fnv(uint64_t h, const void *p, size_t n)
{
	const unsigned char *c = p;

	for (size_t i = 0; i < n; i++)
		h = (h ^ c[i]) * 1099511628211ULL;
	return h;
}

/* Read a cache file we can trust: root's, not writable by others, whole instructions. */
static int read_bpf(const char *path, void **insns, size_t *len)
{
	_cleanup_close_ int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	struct stat st;
	void *buf;

	if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_uid != 0 || (st.st_mode & 022) ||
	    st.st_size <= 0 || st.st_size % (off_t)sizeof(struct sock_filter) != 0 || st.st_size > (1 << 20))
		return -1;
	buf = malloc((size_t)st.st_size);
	if (buf == NULL || read(fd, buf, (size_t)st.st_size) != st.st_size) {
		free(buf);
		return -1;
	}
	*insns = buf;
	*len = (size_t)st.st_size;
	return 0;
}

int md_seccomp_cached(const char *path, const char *cache_dir, void **insns, size_t *len, md_err **err)
{
	const struct scmp_version *v = seccomp_version();
	uint64_t h = 1469598103934665603ULL;
	struct stat st;
	scmp_filter_ctx ctx = NULL;
	uint32_t arch = seccomp_arch_native();

	*insns = NULL;
	*len = 0;
	if (cache_dir == NULL || stat(path, &st) < 0)
		return 0;
	h = fnv(h, path, strlen(path));
	h = fnv(h, &st.st_dev, sizeof(st.st_dev));
	h = fnv(h, &st.st_ino, sizeof(st.st_ino));
	h = fnv(h, &st.st_size, sizeof(st.st_size));
	h = fnv(h, &st.st_mtim, sizeof(st.st_mtim));
	h = fnv(h, v, sizeof(*v));
	h = fnv(h, &arch, sizeof(arch));
	_cleanup_free_ char *file = md_strdup_printf("%s/%016llx.bpf", cache_dir, (unsigned long long)h);
	if (read_bpf(file, insns, len) == 0)
		return 0;

	if (md_seccomp_compile(path, &ctx, err) < 0)
		return -1;
	_cleanup_free_ char *tmp = md_strdup_printf("%s.XXXXXX", file);
	int fd = md_mkdir_p(cache_dir, 0700, NULL) == 0 ? mkostemp(tmp, O_CLOEXEC) : -1;
	if (fd >= 0) {
		int ok = seccomp_export_bpf(ctx, fd) == 0 && fchmod(fd, 0600) == 0;
		close(fd);
		if (!ok || rename(tmp, file) < 0)
			unlink(tmp);
	}
	seccomp_release(ctx);
	if (read_bpf(file, insns, len) < 0)
		*insns = NULL; /* no cache: the caller compiles */
	return 0;
}

int md_seccomp_load_bpf(const void *insns, size_t len, md_err **err)
{
	struct sock_fprog prog = { .len = (unsigned short)(len / sizeof(struct sock_filter)),
				   .filter = (struct sock_filter *)insns };

	if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog) < 0)
		return md_fail(err, errno, "load seccomp filter");
	return 0;
}
