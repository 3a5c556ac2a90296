/* Records on disk: the state roots, atomic writes, reads, directory helpers and advisory locks. */
#ifndef METALD_STATE_H
#define METALD_STATE_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <jansson.h>
#include "err.h"

/*
 * Where metald keeps things. Precedence: --root (all four under one directory: data/, run/, jail/,
 * netns/), then UNKEY_METALD_DATA_DIR, UNKEY_METALD_RUN_DIR, UNKEY_METALD_JAILER_CHROOT_DIR,
 * UNKEY_METALD_NETNS_DIR, then the defaults /var/lib/metald, /run/metald, /srv/jailer, /run/netns.
 * UNKEY_METALD_ROOT is the environment form of --root.
 */
struct md_paths {
	char *data_dir;
	char *run_dir;
	char *chroot_dir;
	char *netns_dir;
};
int md_paths_init(struct md_paths *p, const char *root, md_err **err);
void md_paths_free(struct md_paths *p);

/* mkdir -p with mode for the directories it makes. */
int md_mkdir_p(const char *path, mode_t mode, md_err **err);

/* Write data to path atomically: temp file in the same directory, fsync, rename, fsync dir. */
int md_write_atomic(const char *path, const void *data, size_t len, mode_t mode, md_err **err);
int md_json_write_atomic(const char *path, json_t *v, mode_t mode, md_err **err);
/* The same rename into place, without the fsyncs: readers never see a half-written file and a
 * crash of the process loses nothing, but a crash of the host may bring back the previous
 * version. For records of what does not survive a host crash either (kernel objects), and for
 * removals whose loss a later gc repairs. */
int md_json_write_replace(const char *path, json_t *v, mode_t mode, md_err **err);
/* The same, written into the existing file `via` (same file system; truncated first) instead of a
 * new one: the file, not a new inode, is renamed over path. */
int md_json_write_via(const char *path, const char *via, json_t *v, mode_t mode, md_err **err);

/* Read a whole file (NUL-terminated). ENOENT gives exit class 3. */
int md_read_file(const char *path, char **data, size_t *len, md_err **err);
/* Read and parse a JSON file; a parse error names the file, line and column. */
int md_json_read(const char *path, json_t **out, md_err **err);

/* Advisory lock (flock) on path, created if missing. Waits up to timeout_ns (0: try once);
 * when still held, fails with exit class 4 ("locked"). Returns the fd (O_CLOEXEC), which holds
 * the lock until closed. The lock is always on the file that is at path when it is taken: a
 * file unlinked (or replaced) while this waited is let go and the path opened again. */
int md_lock(const char *path, bool exclusive, uint64_t timeout_ns, md_err **err);
/* The same on a lock file that must exist already: it is never created, and a missing one (or one
 * removed while this waited, with nothing at path since) fails with exit class 3. For locks whose
 * file is the mark that the thing it guards exists. */
int md_lock_existing(const char *path, bool exclusive, uint64_t timeout_ns, md_err **err);

/* fsync a directory by path. */
int md_fsync_dir(const char *dir, md_err **err);

/* Remove a directory tree (does not cross mount points: it fails with EBUSY instead). */
int md_rm_rf(const char *path, md_err **err);

/* Monotonic and wall clocks in ns. */
uint64_t md_now_mono_ns(void);
uint64_t md_now_wall_ns(void);
void md_sleep_ns(uint64_t ns);

/* Join path parts with '/'; returns malloc'd string (aborts on OOM). */
char *md_path_join(const char *a, const char *b);
char *md_strdup_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
char *md_vstrdup_printf(const char *fmt, va_list ap) __attribute__((format(printf, 1, 0)));

#endif
