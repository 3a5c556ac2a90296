/* Seccomp profiles: JSON files compiled into libseccomp filters, loaded last before exec. */
#ifndef METALD_SECCOMP_PROFILE_H
#define METALD_SECCOMP_PROFILE_H

#include <seccomp.h>
#include "err.h"

/*
 * Profile format (documented in metald-jail(1), PROFILES):
 *   {"description": "...", "default_action": ACTION,
 *    "rules": [{"syscalls": ["name", ...], "action": ACTION,
 *               "args": [{"index": 0-5, "op": "eq|ne|lt|le|gt|ge|masked_eq", "value": N, "mask": N}],
 *               "comment": "..."}]}
 * ACTION: "allow", "kill" (the whole process, SIGSYS), "kill-thread", "trap", "log", "errno"
 * (EPERM) or "errno:NAME|N". Rules of one syscall are OR-ed; the args of one rule are AND-ed.
 */

/* Where a profile name is looked up: $UNKEY_METALD_SECCOMP_DIR, then share/metald/seccomp beside
 * the program (installed or build tree), then PREFIX/share/metald/seccomp. A name containing '/'
 * is a path. Not found: exit class 3. */
int md_seccomp_find(const char *name, char **path, md_err **err);

/* Compile a profile. A bad profile (JSON, unknown syscall, action or op) is exit class 2 and the
 * message names the file and the rule. */
int md_seccomp_compile(const char *path, scmp_filter_ctx *ctx, md_err **err);

/* Load the filter into the calling thread (after no_new_privs). */
int md_seccomp_load(scmp_filter_ctx ctx, md_err **err);

/*
 * The compiled BPF program of a profile, from a cache directory: <dir>/<hash>.bpf where the hash
 * covers the profile's path, inode, size and mtime and libseccomp's version. On a miss the
 * profile is compiled and exported there (atomically). Cache files must be root's and not
 * writable by others, else they are ignored. *insns is malloc'd; *len in bytes.
 * Errors of the profile itself are reported as md_seccomp_compile does; cache I/O problems only
 * make it compile without caching (returns 0 with *insns NULL: use md_seccomp_compile).
 */
int md_seccomp_cached(const char *path, const char *cache_dir, void **insns, size_t *len, md_err **err);

/* Load a BPF program (after no_new_privs). */
int md_seccomp_load_bpf(const void *insns, size_t len, md_err **err);

#endif
