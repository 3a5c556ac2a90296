/* The jail: build a chroot with pivot_root, namespaces, cgroups, rlimits, dropped privileges and
 * seccomp around one program, Firecracker jailer compatible; and remove it again. */
#ifndef METALD_JAIL_H
#define METALD_JAIL_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <jansson.h>
#include <seccomp.h>

#include "cgroup.h"
#include "err.h"
#include "rlimit.h"

#define MD_JAIL_DEFAULT_NOFILE 2048
#define MD_JAIL_RECORD "metald-jail.json"
/* The jail's /dev tmpfs: device nodes and mount points only, so small limits. */
#define MD_JAIL_DEV_SIZE "1m"
#define MD_JAIL_DEV_INODES "1024"

enum md_exec_mode { MD_EXEC_COPY = 0, MD_EXEC_BIND };
enum md_fc_args { MD_FC_ARGS_AUTO = 0, MD_FC_ARGS_YES, MD_FC_ARGS_NO };

struct md_jail_mount {
	char *src; /* NULL for tmpfs */
	char *dst; /* absolute inside the jail */
	bool ro;
};

struct md_jail_prop {
	char *file;
	char *value;
};

struct md_jail {
	/* what the caller asks for */
	const char *id;
	const char *exec_file;   /* as given */
	const char *chroot_base; /* NULL: the default */
	const char *netns;
	uid_t uid;
	gid_t gid;
	bool daemonize, new_pid_ns, userns;
	int cgroup_version; /* enum md_cg_version */
	const char *parent_cgroup; /* NULL: the exec file's name */
	const char *cgroup_root;   /* NULL: md_cgroup_root() */
	struct md_jail_prop *props;
	size_t nprops;
	struct md_rlimit *rlimits;
	size_t nrlimits;
	struct md_jail_mount *mounts; /* --bind and --tmpfs, in order */
	size_t nmounts;
	struct md_jail_mount *links; /* --link SRC:DST */
	size_t nlinks;
	enum md_exec_mode exec_mode;
	enum md_fc_args fc_args;
	const char *seccomp; /* profile name or path, "none" */
	const char *seccomp_cache; /* directory of compiled profiles, or NULL */
	uint64_t cap_keep;
	char **argv; /* the program's arguments after -- */
	int argc;

	/* resolved by md_jail_check */
	char *exec_path; /* canonical */
	char *exec_name;
	char *base;     /* canonical chroot base */
	char *exec_dir; /* <base>/<exec_name> */
	char *jail_dir; /* <exec_dir>/<id> */
	char *root;     /* <jail_dir>/root */
	char *pidfile;  /* <root>/<exec_name>.pid */
	char *seccomp_path;
	scmp_filter_ctx filter; /* compiled here, when there is no cached program */
	void *bpf;              /* the cached BPF program */
	size_t bpf_len;
	struct md_cgroup *cg; /* NULL: no cgroup of our own */
	char *cg_join;        /* v2 compat: an existing parent cgroup to join, without --cgroup */
	int uffd_minor;       /* -1: the host has no /dev/userfaultfd */
	uint64_t start_us, start_cpu_us;

	/* progress, for undo */
	bool made_exec_dir, made_jail_dir, made_cg;
	int devnull;
	int host_mntns; /* plain mode: our mount namespace before unshare, to come back for undo */
	pid_t pid;      /* the program's pid (host view) once known */
};

/* Defaults: nofile 2048 and core 0 unless given, version auto, copy mode, seccomp "default". */
void md_jail_init(struct md_jail *j);
void md_jail_free(struct md_jail *j);

/* Validate everything and resolve paths, compile the seccomp profile and look up the cgroup
 * controllers. Makes nothing. */
int md_jail_check(struct md_jail *j, md_err **err);

/*
 * Make the jail and exec the program. Without --daemonize and --new-pid-ns this process becomes
 * the program and md_jail_run returns only on failure. With either, it returns 0 in the original
 * process once the program has been exec'd, with j->pid set. On failure everything made so far
 * is removed. Exit classes: 2 input, 3 not found, 4 in use, 5 host lacks a controller,
 * MD_EXIT_CHAIN for a failed setup step, 126/127 for the exec.
 */
int md_jail_run(struct md_jail *j, md_err **err);

/* {"pid":..,"chroot":..,"cgroups":[..],"pidfile":..} */
json_t *md_jail_json(const struct md_jail *j);

struct md_jail_clean {
	const char *id;
	const char *chroot_base; /* NULL: the default */
	const char *exec_name;   /* NULL: search <base>/<any>/<id> */
	const char *parent_cgroup;
	const char *cgroup_root;
	int cgroup_version;
	bool kill;
};
/* Remove a jail: its directory, cgroups and pid file. Idempotent (nothing there: 0). Processes
 * still running are exit class 4 unless kill. *removed lists what was removed. */
int md_jail_clean(const struct md_jail_clean *c, json_t **removed, md_err **err);

/* Move the kvm-pit/<pid> kernel thread of the jail's program into the jail's cgroups. */
int md_jail_kvm_pit(const struct md_jail_clean *c, json_t **moved, md_err **err);

#endif
