/* A QEMU Machine Protocol client: handshake, commands with ids, asynchronous events kept aside. */
#ifndef METALD_QMP_H
#define METALD_QMP_H

#include <stdint.h>
#include <sys/types.h>
#include <jansson.h>
#include "err.h"

struct md_qmp;

/* Connect (waiting up to timeout_ns for the socket, see md_unix_connect_wait), read the greeting
 * and negotiate capabilities. Every later exchange is bounded by the deadline (now + timeout_ns,
 * reset with md_qmp_set_deadline). */
int md_qmp_open(struct md_qmp **out, const char *sock, uint64_t timeout_ns, pid_t pid, md_err **err);
void md_qmp_close(struct md_qmp *q);
void md_qmp_set_deadline(struct md_qmp *q, uint64_t timeout_ns);
uint64_t md_qmp_deadline(const struct md_qmp *q); /* monotonic ns */
pid_t md_qmp_pid(const struct md_qmp *q);          /* QEMU's pid (SO_PEERCRED), 0 if unknown */
json_t *md_qmp_greeting(const struct md_qmp *q);   /* borrowed */

/* Run a command (args consumed, may be NULL); *ret (if given) gets the "return" value. A QMP
 * error is class 1 with "<cmd>: <class>: <desc>"; the socket closing is class 3. Events that
 * arrive before the reply are queued. */
int md_qmp_exec(struct md_qmp *q, const char *cmd, json_t *args, json_t **ret, md_err **err);

/* Wait for an event by name (queued ones first) until the deadline; *ev gets it (new ref).
 * Returns 0, or -1 with class 124 at the deadline / class 3 when QEMU closed the socket. */
int md_qmp_wait_event(struct md_qmp *q, const char *name, json_t **ev, md_err **err);

/* Events received so far (borrowed array; they stay until close). */
json_t *md_qmp_events(const struct md_qmp *q);

#endif
