/* Scope-bound cleanup helpers (__attribute__((cleanup))), as crun and systemd use them. */
#ifndef METALD_CLEANUP_H
#define METALD_CLEANUP_H

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include <jansson.h>

static inline void md_freep(void *p) { free(*(void **)p); }
static inline void md_closep(int *fd)
{
	if (*fd >= 0) {
		int saved = errno;
		close(*fd);
		errno = saved;
	}
}
static inline void md_fclosep(FILE **f) { if (*f) fclose(*f); }
static inline void md_closedirp(DIR **d) { if (*d) closedir(*d); }
static inline void md_json_decrefp(json_t **j) { if (*j) json_decref(*j); }

#define _cleanup_free_ __attribute__((cleanup(md_freep)))
#define _cleanup_close_ __attribute__((cleanup(md_closep)))
#define _cleanup_fclose_ __attribute__((cleanup(md_fclosep)))
#define _cleanup_closedir_ __attribute__((cleanup(md_closedirp)))
#define _cleanup_json_ __attribute__((cleanup(md_json_decrefp)))

/* Hand ownership out of a cleanup-scoped variable. */
#define steal_pointer(pp) ({ __typeof__(*(pp)) _p = *(pp); *(pp) = NULL; _p; })
#define steal_fd(fdp) ({ int _fd = *(fdp); *(fdp) = -1; _fd; })

#define MD_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

#endif
