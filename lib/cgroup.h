/* Cgroups v1 and v2: find the hierarchies, make a cgroup for an id under a parent, write its
 * files, add processes, find it again and remove it. */
#ifndef METALD_CGROUP_H
#define METALD_CGROUP_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <jansson.h>
#include "err.h"

#define MD_CGROUP_DEFAULT_ROOT "/sys/fs/cgroup"

enum md_cg_version { MD_CG_AUTO = 0, MD_CG_V1 = 1, MD_CG_V2 = 2 };

/* One directory of the cgroup: on v1 one per hierarchy used (a hierarchy may carry several
 * controllers, e.g. "cpu,cpuacct"), on v2 exactly one. */
struct md_cg_dir {
	char *mount;       /* the hierarchy's mount point */
	char *controllers; /* v1: the mount's controllers, comma-separated ("name=systemd" too); v2: NULL */
	char *path;        /* <mount>/<parent>/<id> */
	int created;       /* how many directories of parent/id this object made (leaf counts 1) */
};

struct md_cgroup {
	int version; /* 1 or 2, never AUTO once made */
	char *root;  /* the cgroup mount root searched, MD_CGROUP_DEFAULT_ROOT by default */
	char *parent; /* relative path, may be "" */
	char *id;
	char **v2_controllers; /* v2: controllers to enable down the parent chain (NULL-terminated) */
	size_t n;
	struct md_cg_dir *dirs;
	void *mounts; /* private: the hierarchies found under root, read once */
	size_t nmounts;
};

/*
 * The root to search: root if not NULL, else $UNKEY_METALD_CGROUP_ROOT, else /sys/fs/cgroup.
 * The v2 hierarchy is the cgroup2 mount at the root itself or the first one below it; the v1
 * hierarchies are the cgroup mounts below the root.
 */
const char *md_cgroup_root(const char *root);

/* The version found under root: 2 if root itself is cgroup2, else 1 if any v1 hierarchy is mounted
 * below it, else 2 if a cgroup2 mount is below it; none → exit class 5. */
int md_cgroup_detect(const char *root, int *version, md_err **err);

/* A cgroup object for <parent>/<id> (nothing is made yet). version may be MD_CG_AUTO. parent is
 * relative (no "." or ".." components, no leading '/'); id a single name. */
int md_cgroup_new(struct md_cgroup **out, const char *root, int version, const char *parent, const char *id,
		  md_err **err);
void md_cgroup_free(struct md_cgroup *cg);

/* Check that "<controller>.<x>" style file names are well formed: FILE has no '/', and its
 * controller (text before the first '.') is returned in a newly allocated string. */
int md_cgroup_file_check(const char *file, char **controller, md_err **err);

/* Use a controller: v1 adds its hierarchy; v2 checks <mount>/cgroup.controllers. A controller the
 * host lacks is exit class 5. */
int md_cgroup_need(struct md_cgroup *cg, const char *controller, md_err **err);

/* Make the directories (mkdir -p; v2 enables the controllers in cgroup.subtree_control from the
 * root down to the parent; v1 cpuset copies cpuset.cpus/mems from the parent). A leaf that
 * exists with processes in it is exit class 4; an empty one is reused. */
int md_cgroup_create(struct md_cgroup *cg, md_err **err);

/* Write VALUE into FILE ("memory.max") of the leaf of the hierarchy holding FILE's controller. */
int md_cgroup_write(struct md_cgroup *cg, const char *file, const char *value, md_err **err);

/* Move a process into every leaf. 0: the caller, which must be single-threaded (on v1 only
 * its thread is moved, which avoids a slow global lock). */
int md_cgroup_attach(struct md_cgroup *cg, pid_t pid, md_err **err);

/* Fill dirs with every hierarchy where <parent>/<id> exists (v1: all hierarchies are searched).
 * Returns the number found. */
int md_cgroup_find(struct md_cgroup *cg, md_err **err);

/* The pids in the leaves (deduplicated). *pids is malloc'd. */
int md_cgroup_pids(struct md_cgroup *cg, pid_t **pids, size_t *n, md_err **err);

enum md_cg_prune {
	MD_CG_PRUNE_NONE = 0,    /* remove the leaf only */
	MD_CG_PRUNE_CREATED = 1, /* and the parent directories this object made */
	MD_CG_PRUNE_EMPTY = 2,   /* and every parent directory of the chain left empty */
};
/* Remove the leaves; with kill, SIGKILL their processes first. Waits up to timeout_ns for
 * processes that are exiting; still busy → exit class 4. */
int md_cgroup_remove(struct md_cgroup *cg, bool kill, enum md_cg_prune prune, uint64_t timeout_ns, md_err **err);

/* The leaf path of the hierarchy holding controller (v2: the one path); NULL if not used. */
const char *md_cgroup_path(const struct md_cgroup *cg, const char *controller);

/* ["<leaf path>", ...] */
json_t *md_cgroup_paths_json(const struct md_cgroup *cg);

#endif
