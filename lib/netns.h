/* Network namespaces: create and pin one at a path, enter it, remove the pin. */
#ifndef METALD_NETNS_H
#define METALD_NETNS_H

#include <stdbool.h>
#include <stddef.h>
#include "err.h"

/* Make a new network namespace pinned (bind-mounted) at `pin`, which must not exist. Returns an
 * O_CLOEXEC fd of the new namespace; the caller stays in its own namespace. */
int md_netns_create(const char *pin, md_err **err);

/* Open a pinned namespace (exit class 3 if the pin is absent or not a namespace). */
int md_netns_open(const char *pin, md_err **err);

/* Switch the calling thread to the namespace fd (setns). */
int md_netns_enter(int fd, md_err **err);

/* Is `pin` a mounted network namespace? */
bool md_netns_pinned(const char *pin);

/* Pin the namespace of nsfd at `to` as well (which must not exist). */
int md_netns_bind(int nsfd, const char *to, md_err **err);
/* Unmount and unlink a pin; absent is fine. */
int md_netns_remove(const char *pin, md_err **err);

/* Write a sysctl under /proc/sys/net of the current namespace ("ipv6/conf/all/forwarding"). */
int md_netns_sysctl(const char *key, const char *value, md_err **err);

/* Read one (trailing newline removed). */
int md_netns_sysctl_get(const char *key, char *buf, size_t len, md_err **err);

#endif
