/* Unix stream sockets of VMM APIs: wait for one to accept connections (inotify, no busy sleep), peer pid. */
#ifndef METALD_UNIXSOCK_H
#define METALD_UNIXSOCK_H

#include <stdint.h>
#include <sys/types.h>
#include "err.h"

/*
 * Connect to the unix stream socket at path, waiting up to timeout_ns for it to appear and accept.
 * The wait sleeps in poll(2) on an inotify watch of the socket's directory (or of its nearest
 * existing ancestor while the directory itself does not exist yet), so a socket created at any
 * moment is seen at once; only the short window between bind(2) and listen(2), where connect
 * gives ECONNREFUSED, is retried with a doubling back-off (1 ms .. 32 ms). When pid > 0 the wait
 * also ends, with class 3, as soon as that process exits (pidfd). timeout_ns 0 tries once.
 * Returns a connected O_CLOEXEC fd. Errors: no socket and timeout 0 → class 3 ("not found");
 * the wait timed out → 124; other failures → 1.
 */
int md_unix_connect_wait(const char *path, uint64_t timeout_ns, pid_t pid, md_err **err);

/* The pid of the process on the other end (SO_PEERCRED), 0 if it is not visible in our pid
 * namespace, -1 on error. */
pid_t md_unix_peer_pid(int fd);

/* Wait up to timeout_ns for process pid (not necessarily our child) to exit, without polling:
 * pidfd_open + poll. Returns 0 when it is gone, 1 if it still runs at the timeout, -1 on error. */
int md_pid_wait_exit(pid_t pid, uint64_t timeout_ns, md_err **err);

#endif
