/* Resource limits: parse NAME=VALUE and apply soft = hard = VALUE. */
#include <errno.h>
#include <string.h>

#include "parse.h"
#include "rlimit.h"

static const struct { const char *name; int res; } names[] = {
	{ "fsize", RLIMIT_FSIZE }, { "no-file", RLIMIT_NOFILE }, { "nofile", RLIMIT_NOFILE },
	{ "nproc", RLIMIT_NPROC }, { "as", RLIMIT_AS },           { "core", RLIMIT_CORE },
	{ "memlock", RLIMIT_MEMLOCK }, { "stack", RLIMIT_STACK }, { "cpu", RLIMIT_CPU },
	{ "data", RLIMIT_DATA },
};

int md_rlimit_parse(const char *s, struct md_rlimit *out, md_err **err)
{
	const char *eq = strchr(s, '=');
	uint64_t v;

	if (eq == NULL || eq == s || eq[1] == '\0')
		return md_usage(err, "resource limit `%s`: must be NAME=VALUE, such as no-file=2048", s);
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if (strlen(names[i].name) != (size_t)(eq - s) || strncmp(s, names[i].name, (size_t)(eq - s)) != 0)
			continue;
		out->resource = names[i].res;
		if (strcmp(eq + 1, "unlimited") == 0 || strcmp(eq + 1, "infinity") == 0)
			out->value = RLIM_INFINITY;
		else if (md_parse_u64(eq + 1, 0, UINT64_MAX, &v, err) < 0)
			return md_err_wrap(err, "resource limit `%s`", s);
		else
			out->value = (rlim_t)v;
		return 0;
	}
	return md_usage(err, "resource limit `%.*s`: unknown; use fsize, no-file, nproc, as, core, memlock, stack, "
			     "cpu or data",
			(int)(eq - s), s);
}

const char *md_rlimit_name(int resource)
{
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (names[i].res == resource)
			return names[i].name;
	return "?";
}

int md_rlimit_apply(const struct md_rlimit *r, md_err **err)
{
	struct rlimit rl = { r->value, r->value };

	if (setrlimit(r->resource, &rl) < 0)
		return md_fail(err, errno, "set resource limit %s", md_rlimit_name(r->resource));
	return 0;
}
