/* Capabilities: parse a list of names, drop every set but what is kept (libcap). */
#ifndef METALD_CAPS_H
#define METALD_CAPS_H

#include <stdint.h>
#include "err.h"

/* "net_admin,CAP_SYS_NICE" (case-insensitive, with or without CAP_) → bit mask; "" → 0. */
int md_caps_parse(const char *list, uint64_t *mask, md_err **err);

/* Drop from the bounding set every capability not in keep (needs CAP_SETPCAP: call before the
 * uid changes). With keep != 0, also sets PR_SET_KEEPCAPS so setuid keeps the permitted set. */
int md_caps_drop_bounding(uint64_t keep, md_err **err);

/* After the uid/gid change: permitted, effective and inheritable become keep, and the ambient set
 * keep (so the kept capabilities survive exec as a non-root uid); everything else is emptied. */
int md_caps_set(uint64_t keep, md_err **err);

#endif
