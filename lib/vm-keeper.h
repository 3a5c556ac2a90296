/* The keeper: a small per-VM process that outlives the CLI, starts the VMM chain as its child,
 * keeps the guest's serial output in a bounded log, and records how the VMM ended. */
#ifndef METALD_VM_KEEPER_H
#define METALD_VM_KEEPER_H

#include <stddef.h>
#include <sys/types.h>
#include "err.h"

struct md_keeper_spec {
	char *const *argv;      /* the chain to run: metald-jail ... -- vmm ... */
	const char *serial_log; /* guest console (the VMM's stdout), bounded, rotated to .1 */
	const char *vmm_log;    /* the VMM's stderr, bounded the same way */
	const char *exit_file;  /* JSON written when the VMM exits: pid, status, reason, time */
	const char *remove_on_exit; /* a file to remove when the VMM exits (the meter target), or NULL */
	size_t log_max;         /* bytes per log file before rotation */
};

/*
 * Start the keeper (detached: setsid, double fork) which starts the chain. Returns, in the
 * caller, the VMM's pid (the chain execs in place, so the chain's pid is the VMM's) and the
 * keeper's pid. Fails if the chain could not be started at all.
 */
int md_keeper_start(const struct md_keeper_spec *spec, pid_t *vmm_pid, pid_t *keeper_pid, md_err **err);

#endif
