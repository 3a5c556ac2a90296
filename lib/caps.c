/* Capabilities: every set emptied except the ones asked for, bounding set included. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/capability.h>
#include <sys/prctl.h>

#include "caps.h"
#include "cleanup.h"

int md_caps_parse(const char *list, uint64_t *mask, md_err **err)
{
	_cleanup_free_ char *dup = strdup(list);
	char *save = NULL;

	*mask = 0;
	if (dup == NULL)
		return md_fail(err, ENOMEM, "capabilities");
	for (char *t = strtok_r(dup, ", ", &save); t; t = strtok_r(NULL, ", ", &save)) {
		_cleanup_free_ char *name = strncasecmp(t, "cap_", 4) == 0 ? strdup(t) : NULL;
		cap_value_t v;

		if (name == NULL && asprintf(&name, "cap_%s", t) < 0)
			return md_fail(err, ENOMEM, "capabilities");
		for (char *c = name; *c; c++)
			*c = (char)(*c >= 'A' && *c <= 'Z' ? *c - 'A' + 'a' : *c);
		if (cap_from_name(name, &v) < 0 || v < 0 || v > 63 || !CAP_IS_SUPPORTED(v))
			return md_usage(err, "capability `%s` is unknown to this kernel", t);
		*mask |= 1ULL << v;
	}
	return 0;
}

int md_caps_drop_bounding(uint64_t keep, md_err **err)
{
	cap_value_t last = cap_max_bits();

	for (cap_value_t c = 0; c < last; c++) {
		if (keep & (1ULL << c))
			continue;
		if (cap_drop_bound(c) < 0 && errno != EINVAL)
			return md_fail(err, errno, "drop capability %d from the bounding set", c);
	}
	if (keep && prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) < 0)
		return md_fail(err, errno, "prctl(PR_SET_KEEPCAPS)");
	return 0;
}

int md_caps_set(uint64_t keep, md_err **err)
{
	cap_t caps = cap_init(); /* all sets clear */
	cap_value_t last = cap_max_bits();
	int rc = 0;

	if (caps == NULL)
		return md_fail(err, errno, "cap_init");
	for (cap_value_t c = 0; c < last; c++) {
		if (!(keep & (1ULL << c)))
			continue;
		if (cap_set_flag(caps, CAP_PERMITTED, 1, &c, CAP_SET) < 0 ||
		    cap_set_flag(caps, CAP_EFFECTIVE, 1, &c, CAP_SET) < 0 ||
		    cap_set_flag(caps, CAP_INHERITABLE, 1, &c, CAP_SET) < 0) {
			rc = md_fail(err, errno, "cap_set_flag");
			goto out;
		}
	}
	if (cap_set_proc(caps) < 0) {
		rc = md_fail(err, errno, "set capabilities");
		goto out;
	}
	if (cap_reset_ambient() < 0 && errno != EINVAL) {
		rc = md_fail(err, errno, "clear the ambient capabilities");
		goto out;
	}
	for (cap_value_t c = 0; c < last; c++) {
		if ((keep & (1ULL << c)) && cap_set_ambient(c, CAP_SET) < 0) {
			rc = md_fail(err, errno, "raise ambient capability %d", c);
			goto out;
		}
	}
	if (keep && prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0) < 0)
		rc = md_fail(err, errno, "prctl(PR_SET_KEEPCAPS)");
out:
	cap_free(caps);
	return rc;
}
