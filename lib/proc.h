/* Processes: identity that survives pid reuse (pid + start time), and running a helper program
 * with its output captured. */
#ifndef METALD_PROC_H
#define METALD_PROC_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include "err.h"

/* Start time of pid in clock ticks since boot (field 22 of /proc/PID/stat). Not found, or a zombie
 * (it has exited): class 3. */
int md_proc_start_time(pid_t pid, uint64_t *start, md_err **err);

/* True when pid exists, is not a zombie, and started at `start` (0: any start time). */
bool md_proc_alive(pid_t pid, uint64_t start);

/* Exit status of a reaped child in shell form: the code, or 128+signal. */
int md_wait_status_code(int wstatus);

struct md_run_result {
	int status;      /* shell-form status: exit code or 128+signal */
	char *out;       /* captured stdout (NUL-terminated) */
	char *errout;    /* captured stderr (NUL-terminated) */
};
void md_run_result_free(struct md_run_result *r);

/* Run argv (argv[0] looked up in PATH), stdin from /dev/null, capturing stdout and stderr, and
 * wait for it up to timeout_ns (0: no limit; on timeout it is killed and the call fails with
 * class 124). Fails only when the program could not be run; its exit status is in r->status. */
int md_run(char *const argv[], uint64_t timeout_ns, struct md_run_result *r, md_err **err);

/* Directory of the running executable (for finding sibling programs). */
char *md_self_dir(void);

#endif
