/* TAP devices through /dev/net/tun: persistent, owned by the VMM's uid/gid. */
#ifndef METALD_TAP_H
#define METALD_TAP_H

#include <sys/types.h>
#include "err.h"

/* Create a persistent tap `name` in the current network namespace. uid/gid (-1: none) may then
 * attach to it without CAP_NET_ADMIN, as a jailed VMM must. */
int md_tap_create(const char *name, uid_t uid, gid_t gid, md_err **err);

/* Give an existing persistent tap of the current namespace to uid/gid (-1: no owner). */
int md_tap_own(const char *name, uid_t uid, gid_t gid, md_err **err);

#endif
