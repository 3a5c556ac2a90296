/* Resource limits by name, as Firecracker's jailer spells them (fsize, no-file) and more. */
#ifndef METALD_RLIMIT_H
#define METALD_RLIMIT_H

#include <sys/resource.h>
#include "err.h"

struct md_rlimit {
	int resource;
	rlim_t value; /* soft = hard = value */
};

/* "NAME=VALUE": NAME is fsize, no-file (nofile), nproc, as, core, memlock, stack, cpu, data;
 * VALUE a number or "unlimited". */
int md_rlimit_parse(const char *s, struct md_rlimit *out, md_err **err);
const char *md_rlimit_name(int resource);
int md_rlimit_apply(const struct md_rlimit *r, md_err **err);

#endif
