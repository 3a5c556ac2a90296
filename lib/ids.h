/* The one validator for VM ids and other names used in paths. */
#ifndef METALD_IDS_H
#define METALD_IDS_H

#include <stddef.h>
#include "err.h"

#define MD_ID_MAX 64

/* 1..64 characters of [A-Za-z0-9-], as Firecracker's jailer requires; else exit class 2 with a
 * message that names `what` ("vm id", "tenant") and the rule. */
int md_id_check(const char *id, const char *what, md_err **err);

/* A fresh id "vm-<16 hex>" from getrandom(2). buf must hold 20 bytes. */
int md_id_generate(char *buf, size_t len, md_err **err);

#endif
