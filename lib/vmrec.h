/* VM records: one directory per VM under <data_dir>/vms/<id>/ with vm.json (state, pids, where
 * things are) and config.json, guarded by <id>/lock. Written before the resources they name. */
#ifndef METALD_VMREC_H
#define METALD_VMREC_H

#include <stdbool.h>
#include <stdint.h>
#include <jansson.h>
#include "err.h"
#include "state.h"

enum md_vm_state { MD_VM_CREATED = 1, MD_VM_RUNNING, MD_VM_PAUSED, MD_VM_SHUTDOWN };

const char *md_vm_state_name(enum md_vm_state s);          /* "CREATED", ... */
int md_vm_state_parse(const char *s, enum md_vm_state *out); /* accepts CREATED and VM_STATE_CREATED */

/* Paths of one VM's record. */
char *md_vmrec_dir(const struct md_paths *p, const char *id);
char *md_vmrec_file(const struct md_paths *p, const char *id, const char *name);

/* Make the record: its directory and its lock file, the lock held from before the file appears.
 * Returns the lock's fd. An id with a record is a conflict (exit 4): two creates of one id, one
 * wins (one that finds a delete of the id at its very last step waits for it, briefly). */
int md_vmrec_make(const struct md_paths *p, const char *id, md_err **err);

/* Take the VM's lock (exclusive), waiting up to timeout. Never makes the lock file: a record
 * without one (none, or deleted before or while this waited) is not found, class 3. Returns the fd. */
int md_vmrec_lock(const struct md_paths *p, const char *id, uint64_t timeout_ns, md_err **err);

/* Remove a record, with its lock held: every file but the lock, then the lock file, then the
 * directory (again, a bounded number of times, if something was made in it meanwhile). A verb
 * that comes in the middle finds no lock file and says not found; one waiting for the lock wakes
 * to a lock file no longer at the path and says not found. Gone already is fine. */
int md_vmrec_remove(const struct md_paths *p, const char *id, md_err **err);

/* Load / save vm.json (save is atomic and stamps modified_ns). */
int md_vmrec_load(const struct md_paths *p, const char *id, json_t **rec, md_err **err);
int md_vmrec_save(const struct md_paths *p, const char *id, json_t *rec, md_err **err);

/* List ids with a record, sorted. The caller frees the array and strings. */
int md_vmrec_list(const struct md_paths *p, char ***ids, size_t *n, md_err **err);

#endif
