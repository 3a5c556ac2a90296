/* The orchestrator's steps: create, boot, pause, resume, reboot, shutdown, delete, info, list,
 * reconcile. Each step runs the other metald programs as processes, so it can be replayed by hand. */
#ifndef METALD_VM_H
#define METALD_VM_H

#include <stdbool.h>
#include <stdint.h>
#include <jansson.h>
#include "config.h"
#include "err.h"
#include "state.h"
#include "vmrec.h"

struct md_vm_ctx {
	struct md_paths paths;
	const char *root;    /* --root, passed on to the programs */
	char *bindir;        /* where the sibling programs are */
	uint64_t lock_timeout_ns;
};

int md_vm_ctx_init(struct md_vm_ctx *c, const char *root, md_err **err);
void md_vm_ctx_free(struct md_vm_ctx *c);

struct md_vm_create_opts {
	const char *id;      /* NULL: generated */
	const char *tenant;  /* NULL: metadata.tenant_id, customer_id, or "default" */
	const char *vmm;     /* NULL: UNKEY_METALD_BACKEND, else auto */
	const char *const *publish; /* HOST:GUEST[/proto], NULL-terminated, may be NULL */
	const char *rate;    /* rx=..,tx=.. or NULL */
	bool boot;
	bool paused; /* with boot: do not start the vCPUs */
};

/* Each returns 0 and, where it reports, a new JSON object in *out. */
int md_vm_create(struct md_vm_ctx *c, const struct md_config *cfg, const struct md_vm_create_opts *o,
		 json_t **out, md_err **err);
/* paused: the VMM is made and configured, the vCPUs not started (state PAUSED; resume starts it). */
int md_vm_boot(struct md_vm_ctx *c, const char *id, bool paused, json_t **out, md_err **err);
int md_vm_pause(struct md_vm_ctx *c, const char *id, json_t **out, md_err **err);
int md_vm_resume(struct md_vm_ctx *c, const char *id, json_t **out, md_err **err);
int md_vm_reboot(struct md_vm_ctx *c, const char *id, json_t **out, md_err **err);
int md_vm_shutdown(struct md_vm_ctx *c, const char *id, uint64_t timeout_ns, bool force, json_t **out, md_err **err);
int md_vm_delete(struct md_vm_ctx *c, const char *id, bool force, json_t **out, md_err **err);
int md_vm_info(struct md_vm_ctx *c, const char *id, json_t **out, md_err **err);
int md_vm_list(struct md_vm_ctx *c, const char *state, const char *customer, json_t **out, md_err **err);
int md_vm_reconcile(struct md_vm_ctx *c, json_t **out, md_err **err);
/* Path of the VM's serial log (for `logs`). */
char *md_vm_serial_log(struct md_vm_ctx *c, const char *id);

#endif
