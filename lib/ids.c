/* Id validation: names that end up in paths, cgroup names and nft comments must be inert. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>

#include "ids.h"

int md_id_check(const char *id, const char *what, md_err **err)
{
	size_t n;

	if (id == NULL || *id == '\0')
		return md_usage(err, "%s is empty: it must be 1-64 characters of A-Z, a-z, 0-9 and '-'", what);
	n = strlen(id);
	if (n > MD_ID_MAX)
		return md_usage(err, "%s is %zu characters long: it must be 1-64 characters of A-Z, a-z, 0-9 and '-'",
				what, n);
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)id[i];

		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-'))
			return md_usage(err, "%s `%s` is invalid: it must be 1-64 characters of A-Z, a-z, 0-9 and '-'",
					what, id);
	}
	return 0;
}

int md_id_generate(char *buf, size_t len, md_err **err)
{
	unsigned char r[8];

	if (len < 20)
		return md_fail(err, 0, "id buffer too small");
	if (getrandom(r, sizeof(r), 0) != (ssize_t)sizeof(r))
		return md_fail(err, errno, "getrandom");
	snprintf(buf, len, "vm-%02x%02x%02x%02x%02x%02x%02x%02x", r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7]);
	return 0;
}
