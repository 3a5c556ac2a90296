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

/* Make the record directory; EEXIST is a conflict (exit 4): two creates of one id, one wins. */
int md_vmrec_mkdir(const struct md_paths *p, const char *id, md_err **err);

/* Take the VM's lock (exclusive), waiting up to timeout. Not found: class 3. Returns the fd. */
int md_vmrec_lock(const struct md_paths *p, const char *id, uint64_t timeout_ns, md_err **err);

/* Load / save vm.json (save is atomic and stamps modified_ns). */
int md_vmrec_load(const struct md_paths *p, const char *id, json_t **rec, md_err **err);
int md_vmrec_save(const struct md_paths *p, const char *id, json_t *rec, md_err **err);

/* List ids with a record, sorted. The caller frees the array and strings. */
int md_vmrec_list(const struct md_paths *p, char ***ids, size_t *n, md_err **err);

#endif
