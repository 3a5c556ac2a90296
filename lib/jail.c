/* The jail: Firecracker jailer's steps in its order, plus the hardening it leaves out, with undo. */
#include <dirent.h>
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <linux/fs.h>
#include <linux/openat2.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "caps.h"
#include "cleanup.h"
#include "ids.h"
#include "jail.h"
#include "log.h"
#include "seccomp-profile.h"
#include "state.h"

#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif

static uint64_t clock_us(clockid_t c)
{
	struct timespec ts;

	clock_gettime(c, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

void md_jail_init(struct md_jail *j)
{
	memset(j, 0, sizeof(*j));
	j->cgroup_version = MD_CG_AUTO;
	j->exec_mode = MD_EXEC_COPY;
	j->seccomp = "default";
	j->uffd_minor = -1;
	j->devnull = -1;
	j->host_mntns = -1;
	j->start_us = clock_us(CLOCK_MONOTONIC);
	j->start_cpu_us = clock_us(CLOCK_PROCESS_CPUTIME_ID);
}

void md_jail_free(struct md_jail *j)
{
	free(j->exec_path);
	free(j->exec_name);
	free(j->base);
	free(j->exec_dir);
	free(j->jail_dir);
	free(j->root);
	free(j->pidfile);
	free(j->seccomp_path);
	free(j->cg_join);
	if (j->filter)
		seccomp_release(j->filter);
	free(j->bpf);
	md_cgroup_free(j->cg);
	if (j->devnull >= 0)
		close(j->devnull);
	if (j->host_mntns >= 0)
		close(j->host_mntns);
}

/* An absolute path inside the jail without "." or ".." components. */
static int check_inside(const char *what, const char *p, md_err **err)
{
	if (p[0] != '/' || p[1] == '\0')
		return md_usage(err, "%s `%s`: the destination must be an absolute path inside the jail", what, p);
	for (const char *c = p + 1; *c;) {
		const char *s = strchr(c, '/');
		size_t l = s ? (size_t)(s - c) : strlen(c);

		if ((l == 1 && c[0] == '.') || (l == 2 && c[0] == '.' && c[1] == '.'))
			return md_usage(err, "%s `%s`: `.` and `..` are not allowed", what, p);
		c = s ? s + 1 : c + l;
	}
	return 0;
}

static int uffd_minor(void)
{
	_cleanup_fclose_ FILE *f = fopen("/proc/misc", "re");
	char name[64];
	int minor;

	if (f == NULL)
		return -1;
	while (fscanf(f, "%d %63s", &minor, name) == 2)
		if (strcmp(name, "userfaultfd") == 0)
			return minor;
	return -1;
}

int md_jail_check(struct md_jail *j, md_err **err)
{
	struct stat st;
	char buf[PATH_MAX];

	if (md_id_check(j->id, "jail id", err) < 0)
		return -1;
	if (j->exec_file == NULL || *j->exec_file == '\0')
		return md_usage(err, "--exec-file is required");
	if (realpath(j->exec_file, buf) == NULL)
		return md_err_set(err, errno == ENOENT ? MD_EXIT_NOENT : MD_EXIT_NOEXEC, errno, "exec file `%s`",
				  j->exec_file);
	if (stat(buf, &st) < 0)
		return md_err_set(err, MD_EXIT_NOEXEC, errno, "exec file `%s`", buf);
	if (!S_ISREG(st.st_mode))
		return md_err_set(err, MD_EXIT_NOEXEC, 0, "exec file `%s`: not a regular file", buf);
	if (!(st.st_mode & 0111))
		return md_err_set(err, MD_EXIT_NOEXEC, EACCES, "exec file `%s`", buf);
	j->exec_path = strdup(buf);
	j->exec_name = strdup(strrchr(buf, '/') + 1);
	if (j->fc_args == MD_FC_ARGS_AUTO)
		j->fc_args = strncmp(j->exec_name, "firecracker", 11) == 0 ? MD_FC_ARGS_YES : MD_FC_ARGS_NO;

	if (j->chroot_base == NULL || realpath(j->chroot_base, buf) == NULL)
		return md_notfound(err, "chroot base dir `%s`: %s", j->chroot_base ? j->chroot_base : "",
				   strerror(j->chroot_base ? errno : EINVAL));
	if (stat(buf, &st) < 0 || !S_ISDIR(st.st_mode))
		return md_usage(err, "chroot base dir `%s`: not a directory", buf);
	j->base = strdup(buf);
	j->exec_dir = md_path_join(j->base, j->exec_name);
	j->jail_dir = md_path_join(j->exec_dir, j->id);
	j->root = md_path_join(j->jail_dir, "root");
	j->pidfile = md_strdup_printf("%s/%s.pid", j->root, j->exec_name);
	if (access(j->jail_dir, F_OK) == 0)
		return md_conflict(err, "jail `%s` exists at `%s` (in use, or left over: run `%s clean --id %s`)", j->id,
				   j->jail_dir, md_progname, j->id);

	if (j->netns && stat(j->netns, &st) < 0)
		return md_notfound(err, "network namespace `%s`: %s", j->netns, strerror(errno));

	for (size_t i = 0; i < j->nmounts; i++) {
		if (check_inside(j->mounts[i].src ? "--bind" : "--tmpfs", j->mounts[i].dst, err) < 0)
			return -1;
		if (j->mounts[i].src && stat(j->mounts[i].src, &st) < 0)
			return md_notfound(err, "--bind source `%s`: %s", j->mounts[i].src, strerror(errno));
	}
	for (size_t i = 0; i < j->nlinks; i++) {
		if (check_inside("--link", j->links[i].dst, err) < 0)
			return -1;
		if (stat(j->links[i].src, &st) < 0)
			return md_notfound(err, "--link source `%s`: %s", j->links[i].src, strerror(errno));
		if (!S_ISREG(st.st_mode))
			return md_usage(err, "--link source `%s`: not a regular file", j->links[i].src);
	}

	/* Cgroups: every controller must exist before anything is made. */
	const char *parent = j->parent_cgroup ? j->parent_cgroup : j->exec_name;
	if (j->nprops > 0) {
		if (md_cgroup_new(&j->cg, j->cgroup_root, j->cgroup_version, parent, j->id, err) < 0)
			return -1;
		for (size_t i = 0; i < j->nprops; i++) {
			_cleanup_free_ char *ctrl = NULL;

			if (md_cgroup_file_check(j->props[i].file, &ctrl, err) < 0 ||
			    md_cgroup_need(j->cg, ctrl, err) < 0)
				return -1;
		}
	} else if (j->cgroup_version != MD_CG_V1) {
		/* Firecracker's jailer on v2 without --cgroup: join <parent> if it exists (#4287). */
		struct md_cgroup *probe = NULL;
		_cleanup_free_ char *pdir = strdup(parent);
		char *slash = strrchr(pdir, '/');
		const char *leaf = slash ? slash + 1 : pdir;

		if (slash)
			*slash = '\0';
		/* one read of mountinfo decides the version and finds the v2 mount */
		if (md_cgroup_new(&probe, j->cgroup_root, j->cgroup_version, slash ? pdir : "", leaf, NULL) == 0) {
			if (probe->version == MD_CG_V2 && access(probe->dirs[0].path, F_OK) == 0)
				j->cg_join = strdup(probe->dirs[0].path);
			md_cgroup_free(probe);
		}
	}

	if (strcmp(j->seccomp, "none") != 0) {
		if (md_seccomp_find(j->seccomp, &j->seccomp_path, err) < 0 ||
		    md_seccomp_cached(j->seccomp_path, j->seccomp_cache, &j->bpf, &j->bpf_len, err) < 0)
			return -1;
		if (j->bpf == NULL && md_seccomp_compile(j->seccomp_path, &j->filter, err) < 0)
			return -1;
	}
	j->uffd_minor = uffd_minor();
	return 0;
}

/* ---- host side: directories, files, devices, netns, rlimits, cgroups (undoable) ---- */

static int mkdir_owned(const char *p, mode_t mode, uid_t uid, gid_t gid, md_err **err)
{
	mode_t mask = umask(0);

	umask(mask);
	if (mkdir(p, mode) < 0)
		return md_fail(err, errno, "mkdir `%s`", p); /* fresh directories only: the jail is new */
	if (chown(p, uid, gid) < 0 || ((mode & mask) && chmod(p, mode) < 0))
		return md_fail(err, errno, "chown `%s`", p);
	return 0;
}

/* mkdir -p of the parents of <root><dst>, made root-owned 0755 (readable, not writable, by the program). */
static int mkdir_parents(const char *root, const char *dst, md_err **err)
{
	_cleanup_free_ char *p = md_path_join(root, dst);
	char *slash = strrchr(p, '/');

	*slash = '\0';
	if (strlen(p) <= strlen(root))
		return 0;
	return md_mkdir_p(p, 0755, err);
}

/* Copy a file: reflink when the filesystem can, else copy_file_range. */
static int copy_file(const char *src, const char *dst, uid_t uid, gid_t gid, md_err **err)
{
	_cleanup_close_ int in = open(src, O_RDONLY | O_CLOEXEC);
	_cleanup_close_ int out = -1;
	struct stat st;

	if (in < 0 || fstat(in, &st) < 0)
		return md_fail(err, errno, "open `%s`", src);
	out = open(dst, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, st.st_mode & 0777);
	if (out < 0)
		return md_fail(err, errno, "create `%s`", dst);
	if (ioctl(out, FICLONE, in) < 0) {
		off_t left = st.st_size;

		while (left > 0) {
			ssize_t n = copy_file_range(in, NULL, out, NULL, (size_t)left, 0);

			if (n < 0 && (errno == EXDEV || errno == ENOSYS || errno == EOPNOTSUPP || errno == EINVAL)) {
				char buf[65536];
				n = read(in, buf, sizeof(buf));
				if (n > 0 && write(out, buf, (size_t)n) != n)
					n = -1;
			}
			if (n < 0)
				return md_fail(err, errno, "copy `%s` to `%s`", src, dst);
			if (n == 0)
				break;
			left -= n;
		}
	}
	if (fchown(out, uid, gid) < 0 || fchmod(out, st.st_mode & 0777) < 0)
		return md_fail(err, errno, "chown `%s`", dst);
	return 0;
}

static int link_in(struct md_jail *j, const struct md_jail_mount *l, md_err **err)
{
	_cleanup_free_ char *dst = md_path_join(j->root, l->dst);

	if (mkdir_parents(j->root, l->dst, err) < 0)
		return -1;
	/* AT_SYMLINK_FOLLOW: link the file a symlink names; a linked symlink would dangle in the jail */
	if (linkat(AT_FDCWD, l->src, AT_FDCWD, dst, AT_SYMLINK_FOLLOW) == 0) {
		if (chown(dst, j->uid, j->gid) < 0)
			return md_fail(err, errno, "chown `%s`", dst);
		return 0;
	}
	if (errno != EXDEV && errno != EPERM && errno != EMLINK)
		return md_fail(err, errno, "link `%s` to `%s`", l->src, dst);
	return copy_file(l->src, dst, j->uid, j->gid, err);
}

static int make_mountpoint(struct md_jail *j, const struct md_jail_mount *m, md_err **err)
{
	_cleanup_free_ char *dst = md_path_join(j->root, m->dst);
	struct stat st;

	if (mkdir_parents(j->root, m->dst, err) < 0)
		return -1;
	if (m->src && stat(m->src, &st) == 0 && !S_ISDIR(st.st_mode)) {
		int fd = open(dst, O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0644);
		if (fd < 0)
			return md_fail(err, errno, "create mount point `%s`", dst);
		close(fd);
		return 0;
	}
	return md_mkdir_p(dst, 0755, err);
}

/* Below /dev inside the jail (check_inside has refused "." and ".."; "//dev/x" is /dev/x too). */
static bool in_dev(const char *dst)
{
	while (*dst == '/')
		dst++;
	return strncmp(dst, "dev/", 4) == 0;
}

static int make_dev(struct md_jail *j, const char *name, unsigned maj, unsigned min, bool must, md_err **err)
{
	_cleanup_free_ char *p = md_path_join(j->root, name);

	if (mknod(p, S_IFCHR | 0600, makedev(maj, min)) < 0) {
		if (!must) {
			md_warn("mknod `%s`: %s", p, strerror(errno));
			return 0;
		}
		return md_fail(err, errno, "mknod `%s`", p);
	}
	if (chown(p, j->uid, j->gid) < 0)
		return md_fail(err, errno, "chown `%s`", p);
	return 0;
}

static int write_pidfile(const char *path, pid_t pid, md_err **err)
{
	_cleanup_close_ int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	char buf[32];
	int n = snprintf(buf, sizeof(buf), "%d", (int)pid);

	if (fd < 0)
		return md_fail(err, errno, "create pid file `%s`", path);
	if (write(fd, buf, (size_t)n) != n)
		return md_fail(err, errno, "write pid file `%s`", path);
	return 0;
}

static json_t *record_json(const struct md_jail *j)
{
	json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s?}", "id", j->id, "exec_name", j->exec_name, "exec_file",
			      j->exec_path, "chroot", j->root, "pidfile", j->pidfile, "seccomp",
			      j->seccomp_path ? j->seccomp_path : NULL);

	if (j->cg)
		json_object_set_new(o, "cgroup",
				    json_pack("{s:i, s:s, s:s, s:o}", "version", j->cg->version, "root", j->cg->root,
					      "parent", j->cg->parent, "paths", md_cgroup_paths_json(j->cg)));
	return o;
}

/*
 * Mark <base>/<exec-name> "top of a directory hierarchy" (chattr +T), so that ext4 places each
 * jail directory made in it, and with it everything inside the jail, in a block group of its own
 * choosing (Orlov's spread for top-level directories) instead of the group of its parent. Without
 * a journal ext4 skips inodes deleted in the last minutes when it allocates one, scanning the
 * group's inode table from its start (recently_deleted()); all jails made and removed in one group,
 * together with everything else under the same parent (/tmp, build trees), make every create
 * there slow. Only a hint to the allocator: file systems without the flag say no, and that is fine.
 */
static void spread_jails(const char *exec_dir)
{
	_cleanup_close_ int fd = open(exec_dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	int fl = 0;

	if (fd < 0 || ioctl(fd, FS_IOC_GETFLAGS, &fl) < 0 || (fl & FS_TOPDIR_FL))
		return;
	fl |= FS_TOPDIR_FL;
	if (ioctl(fd, FS_IOC_SETFLAGS, &fl) < 0)
		md_debug("chattr +T `%s`: %s", exec_dir, strerror(errno));
}

static int prepare(struct md_jail *j, md_err **err)
{
	if (mkdir(j->exec_dir, 0755) == 0)
		j->made_exec_dir = true;
	else if (errno != EEXIST)
		return md_fail(err, errno, "mkdir `%s`", j->exec_dir);
	spread_jails(j->exec_dir);
	if (mkdir(j->jail_dir, 0755) < 0) {
		if (errno == EEXIST)
			return md_conflict(err, "jail `%s` exists at `%s` (in use, or left over: run `%s clean --id %s`)",
					   j->id, j->jail_dir, md_progname, j->id);
		return md_fail(err, errno, "mkdir `%s`", j->jail_dir);
	}
	j->made_jail_dir = true;

	/* The record comes before the resources it names, so clean can always find them. It is not
	 * fsync'd: what it names (cgroups, processes) does not survive a crash of the host either,
	 * and clean works without it. The directory is new, so no temp file is needed. */
	_cleanup_json_ json_t *rec = record_json(j);
	_cleanup_free_ char *recpath = md_path_join(j->jail_dir, MD_JAIL_RECORD);
	_cleanup_free_ char *text = json_dumps(rec, JSON_COMPACT);
	_cleanup_close_ int rfd = open(recpath, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	if (rfd < 0 || text == NULL || write(rfd, text, strlen(text)) != (ssize_t)strlen(text))
		return md_fail(err, errno, "write `%s`", recpath);

	/* Firecracker's layout: /, /dev and /run are 0700 and owned by the program. /dev is only the
	 * mount point of the jail's own tmpfs (mount_dev): its contents never touch the disk. */
	_cleanup_free_ char *dev = md_path_join(j->root, "dev");
	_cleanup_free_ char *run = md_path_join(j->root, "run");
	if (mkdir_owned(j->root, 0700, j->uid, j->gid, err) < 0 || mkdir_owned(dev, 0700, j->uid, j->gid, err) < 0 ||
	    mkdir_owned(run, 0700, j->uid, j->gid, err) < 0)
		return -1;

	_cleanup_free_ char *exe = md_path_join(j->root, j->exec_name);
	if (j->exec_mode == MD_EXEC_COPY) {
		if (copy_file(j->exec_path, exe, j->uid, j->gid, err) < 0)
			return md_err_wrap(err, "copy the exec file");
	} else {
		int fd = open(exe, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0755);
		if (fd < 0)
			return md_fail(err, errno, "create `%s`", exe);
		close(fd);
	}
	/* What goes below /dev is made on the jail's /dev tmpfs, once it is mounted (do_mounts). */
	for (size_t i = 0; i < j->nlinks; i++)
		if (!in_dev(j->links[i].dst) && link_in(j, &j->links[i], err) < 0)
			return -1;
	for (size_t i = 0; i < j->nmounts; i++)
		if (!in_dev(j->mounts[i].dst) && make_mountpoint(j, &j->mounts[i], err) < 0)
			return -1;

	/* The network namespace is joined before the root changes: its path is a host path. */
	if (j->netns) {
		_cleanup_close_ int fd = open(j->netns, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			return md_fail(err, errno, "open network namespace `%s`", j->netns);
		if (setns(fd, CLONE_NEWNET) < 0)
			return md_fail(err, errno, "join network namespace `%s`", j->netns);
	}

	for (size_t i = 0; i < j->nrlimits; i++)
		if (md_rlimit_apply(&j->rlimits[i], err) < 0)
			return -1;

	/* Cgroups: properties first, then this process (its children inherit the membership). */
	if (j->cg) {
		j->made_cg = true;
		if (md_cgroup_create(j->cg, err) < 0)
			return md_err_wrap(err, "cgroup");
		for (size_t i = 0; i < j->nprops; i++)
			if (md_cgroup_write(j->cg, j->props[i].file, j->props[i].value, err) < 0)
				return md_err_wrap(err, "cgroup");
		if (md_cgroup_attach(j->cg, 0, err) < 0)
			return -1;
	} else if (j->cg_join) {
		_cleanup_free_ char *procs = md_path_join(j->cg_join, "cgroup.procs");
		int fd = open(procs, O_WRONLY | O_CLOEXEC);
		if (fd < 0 || write(fd, "0", 1) != 1) {
			int e = errno;
			if (fd >= 0)
				close(fd);
			return md_fail(err, e, "join cgroup `%s`", j->cg_join);
		}
		close(fd);
	}

	if (j->daemonize) {
		j->devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
		if (j->devnull < 0)
			return md_fail(err, errno, "open `/dev/null`");
	}
	if (!j->daemonize && !j->new_pid_ns && write_pidfile(j->pidfile, getpid(), err) < 0)
		return -1;
	return 0;
}

/* Leave our cgroups (so they can be removed) by moving to each hierarchy's root. */
static void leave_cgroups(struct md_jail *j)
{
	for (size_t i = 0; j->cg && i < j->cg->n; i++) {
		_cleanup_free_ char *p = md_path_join(j->cg->dirs[i].mount, "cgroup.procs");
		int fd = open(p, O_WRONLY | O_CLOEXEC);
		if (fd >= 0) {
			if (write(fd, "0", 1) < 0)
				md_debug("leave cgroup: %s", strerror(errno));
			close(fd);
		}
	}
}

/* Remove what prepare made. Returns what could not be removed as a message, or NULL. */
static char *undo(struct md_jail *j)
{
	md_err *e = NULL;
	char *left = NULL;

	if (j->made_cg) {
		leave_cgroups(j);
		if (md_cgroup_remove(j->cg, false, MD_CG_PRUNE_CREATED, 3000000000ULL, &e) < 0) {
			left = md_strdup_printf("cgroups (%s)", e->msg);
			md_err_free(&e);
		}
		j->made_cg = false;
	}
	if (j->made_jail_dir) {
		if (md_rm_rf(j->jail_dir, &e) < 0) {
			char *l = md_strdup_printf("%s%s%s", left ? left : "", left ? ", " : "", e->msg);
			free(left);
			left = l;
			md_err_free(&e);
		}
		j->made_jail_dir = false;
	}
	if (j->made_exec_dir) {
		rmdir(j->exec_dir); /* may hold other jails: then it stays */
		j->made_exec_dir = false;
	}
	return left;
}

/* ---- inside: mount namespace, pivot_root, userns, privileges, seccomp, exec ---- */

enum phase { PH_HOST = 0, PH_UNSHARED, PH_PIVOTED, PH_DROPPED };

static int open_in_root(int rootfd, const char *path)
{
	struct open_how how = { .flags = O_RDONLY | O_CLOEXEC, .resolve = RESOLVE_IN_ROOT };

	return (int)syscall(SYS_openat2, rootfd, path, &how, sizeof(how));
}

/* What execve would say, asked while we can still undo: the file, its format and its interpreter. */
static int preflight(struct md_jail *j, md_err **err)
{
	_cleanup_close_ int rootfd = open(j->root, O_PATH | O_DIRECTORY | O_CLOEXEC);
	_cleanup_free_ char *exe = md_strdup_printf("/%s", j->exec_name);
	_cleanup_close_ int fd = -1;
	unsigned char hdr[4096];
	struct stat st;
	ssize_t n;
	char interp[PATH_MAX] = "";

	if (rootfd < 0)
		return md_fail(err, errno, "open `%s`", j->root);
	fd = open_in_root(rootfd, exe);
	if (fd < 0) {
		if (errno == ENOSYS)
			return 0; /* no openat2: execve will tell */
		return md_err_set(err, errno == ENOENT ? MD_EXIT_NOENT : MD_EXIT_NOEXEC, errno, "exec `%s`", exe);
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))
		return md_err_set(err, MD_EXIT_NOEXEC, EACCES, "exec `%s`", exe);
	mode_t x = j->uid == 0 ? 0111 : st.st_uid == j->uid ? S_IXUSR : st.st_gid == j->gid ? S_IXGRP : S_IXOTH;
	if (!(st.st_mode & x))
		return md_err_set(err, MD_EXIT_NOEXEC, EACCES, "exec `%s` as uid %u", exe, (unsigned)j->uid);
	n = pread(fd, hdr, sizeof(hdr), 0);
	if (n >= 4 && hdr[0] == '#' && hdr[1] == '!') {
		ssize_t i = 2, k = 0;
		while (i < n && (hdr[i] == ' ' || hdr[i] == '\t'))
			i++;
		while (i < n && hdr[i] != ' ' && hdr[i] != '\t' && hdr[i] != '\n' && k < (ssize_t)sizeof(interp) - 1)
			interp[k++] = (char)hdr[i++];
		interp[k] = '\0';
	} else if (n >= (ssize_t)sizeof(Elf64_Ehdr) && memcmp(hdr, ELFMAG, SELFMAG) == 0) {
		if (hdr[EI_CLASS] == ELFCLASS64) {
			const Elf64_Ehdr *eh = (const Elf64_Ehdr *)hdr;
			for (int i = 0; i < eh->e_phnum; i++) {
				Elf64_Phdr ph;
				if (pread(fd, &ph, sizeof(ph), (off_t)(eh->e_phoff + (uint64_t)i * eh->e_phentsize)) != sizeof(ph))
					break;
				if (ph.p_type == PT_INTERP && ph.p_filesz < sizeof(interp)) {
					if (pread(fd, interp, ph.p_filesz, (off_t)ph.p_offset) != (ssize_t)ph.p_filesz)
						interp[0] = '\0';
					interp[ph.p_filesz] = '\0';
					break;
				}
			}
		}
	} else
		return md_err_set(err, MD_EXIT_NOEXEC, ENOEXEC, "exec `%s`", exe);
	if (interp[0]) {
		_cleanup_close_ int ifd = open_in_root(rootfd, interp);
		if (ifd < 0)
			return md_err_set(err, MD_EXIT_NOENT, errno,
					  "exec `%s`: its interpreter `%s` is not in the jail (add it with --bind)", exe,
					  interp);
	}
	return 0;
}

/*
 * The jail's /dev: a small tmpfs of its own, mounted in the jail's mount namespace (so the host
 * and other jails never see it, and it goes away with the namespace), holding the device nodes
 * the jailer makes, 0600 and owned by uid:gid. Made here, with our full privileges and before
 * any user namespace, because mknod needs CAP_MKNOD in the initial namespace. On disk there is
 * only the empty directory: five inodes fewer made and removed on the chroot base's file system
 * per jail, a large part of a jail's start time on ext4. The host sees the nodes through
 * /proc/<pid>/root/dev. Then the --link files and --bind/--tmpfs mount points below /dev.
 */
static int mount_dev(struct md_jail *j, md_err **err)
{
	_cleanup_free_ char *dev = md_path_join(j->root, "dev");
	_cleanup_free_ char *devnet = md_path_join(j->root, "dev/net");
	_cleanup_free_ char *opt = md_strdup_printf("mode=0700,uid=%u,gid=%u,size=%s,nr_inodes=%s", (unsigned)j->uid,
						    (unsigned)j->gid, MD_JAIL_DEV_SIZE, MD_JAIL_DEV_INODES);

	if (mount("tmpfs", dev, "tmpfs", MS_NOSUID | MS_NOEXEC, opt) < 0)
		return md_fail(err, errno, "mount tmpfs at `/dev`");
	if (mkdir_owned(devnet, 0700, j->uid, j->gid, err) < 0)
		return -1;
	if (make_dev(j, "dev/net/tun", 10, 200, true, err) < 0 || make_dev(j, "dev/kvm", 10, 232, true, err) < 0 ||
	    make_dev(j, "dev/urandom", 1, 9, false, err) < 0)
		return -1;
	if (j->uffd_minor >= 0 && make_dev(j, "dev/userfaultfd", 10, (unsigned)j->uffd_minor, true, err) < 0)
		return -1;
	for (size_t i = 0; i < j->nlinks; i++)
		if (in_dev(j->links[i].dst) && link_in(j, &j->links[i], err) < 0)
			return -1;
	return 0;
}

static int do_mounts(struct md_jail *j, md_err **err)
{
	if (mount(NULL, "/", NULL, MS_SLAVE | MS_REC, NULL) < 0)
		return md_fail(err, errno, "make / a slave mount");
	if (mount(j->root, j->root, NULL, MS_BIND | MS_REC, NULL) < 0)
		return md_fail(err, errno, "bind mount `%s` onto itself", j->root);
	if (mount_dev(j, err) < 0)
		return -1;
	if (j->exec_mode == MD_EXEC_BIND) {
		_cleanup_free_ char *exe = md_path_join(j->root, j->exec_name);
		if (mount(j->exec_path, exe, NULL, MS_BIND, NULL) < 0 ||
		    mount(NULL, exe, NULL, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV, NULL) < 0)
			return md_fail(err, errno, "bind mount `%s` read-only at `%s`", j->exec_path, exe);
	}
	for (size_t i = 0; i < j->nmounts; i++) {
		const struct md_jail_mount *m = &j->mounts[i];
		_cleanup_free_ char *dst = md_path_join(j->root, m->dst);

		if (in_dev(m->dst) && make_mountpoint(j, m, err) < 0)
			return -1;
		if (m->src == NULL) {
			_cleanup_free_ char *opt = md_strdup_printf("mode=0700,uid=%u,gid=%u", (unsigned)j->uid,
								    (unsigned)j->gid);
			if (mount("tmpfs", dst, "tmpfs", MS_NOSUID | MS_NODEV, opt) < 0)
				return md_fail(err, errno, "mount tmpfs at `%s`", m->dst);
			continue;
		}
		if (mount(m->src, dst, NULL, MS_BIND | MS_REC, NULL) < 0)
			return md_fail(err, errno, "bind mount `%s` at `%s`", m->src, m->dst);
		if (m->ro) {
			/* A read-only remount must repeat the flags the source mount has (nodev, noexec...). */
			struct statvfs sv;
			unsigned long fl = MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID;

			if (statvfs(dst, &sv) == 0) {
				fl |= (sv.f_flag & ST_NODEV ? MS_NODEV : 0) | (sv.f_flag & ST_NOEXEC ? MS_NOEXEC : 0) |
				      (sv.f_flag & ST_NOATIME ? MS_NOATIME : 0) |
				      (sv.f_flag & ST_NODIRATIME ? MS_NODIRATIME : 0) |
				      (sv.f_flag & ST_RELATIME ? MS_RELATIME : 0);
			}
			if (mount(NULL, dst, NULL, fl, NULL) < 0)
				return md_fail(err, errno, "make `%s` read-only", m->dst);
		}
	}
	return 0;
}

static int do_pivot(struct md_jail *j, md_err **err)
{
	if (chdir(j->root) < 0)
		return md_fail(err, errno, "chdir `%s`", j->root);
	/* pivot_root(".", ".") stacks the old root on top of the new one; detaching "." then drops
	 * it with everything below, and no old_root directory is needed (pivot_root(2), NOTES). */
	if (syscall(SYS_pivot_root, ".", ".") < 0)
		return md_fail(err, errno, "pivot_root into `%s`", j->root);
	if (umount2(".", MNT_DETACH) < 0)
		return md_fail(err, errno, "detach the old root");
	if (chdir("/") < 0)
		return md_fail(err, errno, "chdir `/`");
	return 0;
}

/* The helper that writes our uid/gid maps: a process that keeps CAP_SETUID in the parent user
 * namespace must write them, so it is forked before we unshare, and waits for us. */
struct userns_helper {
	pid_t pid;
	int go, done;
};

static int userns_helper_start(struct md_jail *j, struct userns_helper *h, md_err **err)
{
	int go[2], done[2];
	_cleanup_close_ int procfd = open("/proc/self", O_PATH | O_DIRECTORY | O_CLOEXEC);

	if (procfd < 0)
		return md_fail(err, errno, "open `/proc/self`");
	if (pipe2(go, O_CLOEXEC) < 0)
		return md_fail(err, errno, "pipe");
	if (pipe2(done, O_CLOEXEC) < 0) {
		close(go[0]);
		close(go[1]);
		return md_fail(err, errno, "pipe");
	}
	h->pid = fork();
	if (h->pid < 0) {
		close(go[0]);
		close(go[1]);
		close(done[0]);
		close(done[1]);
		return md_fail(err, errno, "fork");
	}
	if (h->pid == 0) {
		char c, uidmap[64], gidmap[64];
		int rc = 0;

		close(go[1]);
		close(done[0]);
		if (read(go[0], &c, 1) != 1)
			_exit(0);
		snprintf(uidmap, sizeof(uidmap), "%u %u 1\n", (unsigned)j->uid, (unsigned)j->uid);
		snprintf(gidmap, sizeof(gidmap), "%u %u 1\n", (unsigned)j->gid, (unsigned)j->gid);
		int u = openat(procfd, "uid_map", O_WRONLY | O_CLOEXEC);
		if (u < 0 || write(u, uidmap, strlen(uidmap)) < 0)
			rc = errno;
		int g = rc ? -1 : openat(procfd, "gid_map", O_WRONLY | O_CLOEXEC);
		if (!rc && (g < 0 || write(g, gidmap, strlen(gidmap)) < 0))
			rc = errno;
		if (write(done[1], &rc, sizeof(rc)) < 0)
			_exit(1);
		_exit(0);
	}
	close(go[0]);
	close(done[1]);
	h->go = go[1];
	h->done = done[0];
	return 0;
}

static void userns_helper_stop(struct userns_helper *h)
{
	if (h->pid <= 0)
		return;
	close(h->go);
	close(h->done);
	waitpid(h->pid, NULL, 0);
	h->pid = 0;
}

static int userns_enter(struct userns_helper *h, enum phase *ph, md_err **err)
{
	int rc = 0;

	/* Failing here leaves our privileges intact, so the caller can still undo everything. */
	if (unshare(CLONE_NEWUSER) < 0)
		return md_fail(err, errno, "unshare the user namespace");
	*ph = PH_DROPPED; /* no way back to the host's namespaces from here */
	if (write(h->go, "g", 1) != 1 || read(h->done, &rc, sizeof(rc)) != sizeof(rc))
		return md_fail(err, errno ? errno : EIO, "user namespace helper");
	if (rc)
		return md_fail(err, rc, "write the uid/gid maps");
	return 0;
}

static int drop_privileges(struct md_jail *j, md_err **err)
{
	if (md_caps_drop_bounding(j->cap_keep, err) < 0)
		return -1;
	if (setgroups(0, NULL) < 0)
		return md_fail(err, errno, "setgroups");
	if (setresgid(j->gid, j->gid, j->gid) < 0)
		return md_fail(err, errno, "setresgid %u", (unsigned)j->gid);
	if (setresuid(j->uid, j->uid, j->uid) < 0)
		return md_fail(err, errno, "setresuid %u", (unsigned)j->uid);
	if (md_caps_set(j->cap_keep, err) < 0)
		return -1;
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		return md_fail(err, errno, "prctl(PR_SET_NO_NEW_PRIVS)");
	return 0;
}

/* Everything from the new mount namespace to execve, in the process that becomes the program.
 * Returns only on failure, with *ph telling how far it got. */
static int enter(struct md_jail *j, enum phase *ph, md_err **err)
{
	struct userns_helper h = { 0 };
	char *argv[16 + j->argc];
	char *envp[] = { NULL };
	char a_start[32], a_cpu[32], a_parent[32];
	int n = 0;
	_cleanup_free_ char *exe = md_strdup_printf("/%s", j->exec_name);

	*ph = PH_HOST;
	if (j->userns && userns_helper_start(j, &h, err) < 0)
		return -1;
	/* Mount, IPC, UTS and cgroup namespaces always (the jailer makes only the mount one). */
	if (unshare(CLONE_NEWNS | CLONE_NEWIPC | CLONE_NEWUTS | CLONE_NEWCGROUP) < 0) {
		md_fail(err, errno, "unshare mount, IPC, UTS and cgroup namespaces");
		goto fail;
	}
	*ph = PH_UNSHARED;
	if (do_mounts(j, err) < 0 || preflight(j, err) < 0 || do_pivot(j, err) < 0)
		goto fail;
	*ph = PH_PIVOTED;
	if (j->userns) {
		if (userns_enter(&h, ph, err) < 0)
			goto fail;
		userns_helper_stop(&h);
	}
	*ph = PH_DROPPED;
	if (drop_privileges(j, err) < 0)
		goto fail;

	argv[n++] = exe;
	if (j->fc_args == MD_FC_ARGS_YES) {
		snprintf(a_start, sizeof(a_start), "%llu", (unsigned long long)j->start_us);
		snprintf(a_cpu, sizeof(a_cpu), "%llu", (unsigned long long)j->start_cpu_us);
		snprintf(a_parent, sizeof(a_parent), "%llu",
			 (unsigned long long)(clock_us(CLOCK_PROCESS_CPUTIME_ID) - j->start_cpu_us));
		argv[n++] = "--id";
		argv[n++] = (char *)j->id;
		argv[n++] = "--start-time-us";
		argv[n++] = a_start;
		argv[n++] = "--start-time-cpu-us";
		argv[n++] = a_cpu;
		argv[n++] = "--parent-cpu-time-us";
		argv[n++] = a_parent;
	}
	for (int i = 0; i < j->argc; i++)
		argv[n++] = j->argv[i];
	argv[n] = NULL;

	/* Nothing but 0-2 may reach the program; our own fds are O_CLOEXEC already. */
	syscall(SYS_close_range, 3U, ~0U, CLOSE_RANGE_CLOEXEC);
	if (j->seccomp_path)
		md_info("seccomp profile `%s` loaded: a violation kills `%s` with SIGSYS", j->seccomp_path, exe);
	/* Seccomp last, after no_new_privs and the capability drop (bubblewrap's rule). */
	if (j->bpf && md_seccomp_load_bpf(j->bpf, j->bpf_len, err) < 0)
		goto fail;
	if (j->filter && md_seccomp_load(j->filter, err) < 0)
		goto fail;
	execve(exe, argv, envp);
	md_err_set(err, errno == ENOENT ? MD_EXIT_NOENT : MD_EXIT_NOEXEC, errno, "exec `%s`", exe);
fail:
	userns_helper_stop(&h);
	return -1;
}

/* ---- the process layouts ---- */

enum { MSG_PID = 1, MSG_ERR = 2 };
struct msg {
	int type;
	int code;
	int pid;
	char text[480];
};

static void send_err(int fd, md_err *e, int fallback)
{
	struct msg m = { .type = MSG_ERR, .code = e && e->code ? e->code : fallback };

	snprintf(m.text, sizeof(m.text), "%s", e && e->msg ? e->msg : "unknown error");
	if (write(fd, &m, sizeof(m)) < 0)
		_exit(m.code);
}

/* Setup failures are "the chain-loader failed" (125); input, conflict and missing keep theirs. */
static int final_code(const md_err *e)
{
	return e->code == MD_EXIT_FAIL ? MD_EXIT_CHAIN : e->code;
}

static void child_fail(int fd, md_err *e, enum phase ph)
{
	(void)ph;
	send_err(fd, e, MD_EXIT_CHAIN);
	_exit(final_code(e));
}

static pid_t clone_newpid(void)
{
	/* A raw clone behaves as fork here: the child goes on from this point as PID 1 of the new namespace. */
	return (pid_t)syscall(SYS_clone, CLONE_NEWPID | SIGCHLD, NULL, NULL, NULL, 0);
}

static int run_plain(struct md_jail *j, md_err **err)
{
	enum phase ph;

	j->host_mntns = open("/proc/self/ns/mnt", O_RDONLY | O_CLOEXEC);
	if (j->host_mntns < 0)
		return md_fail(err, errno, "open `/proc/self/ns/mnt`");
	j->pid = getpid();
	enter(j, &ph, err);
	if (ph < PH_DROPPED) {
		/* Back to the host's mount namespace (and root) to remove what we made. */
		if (ph > PH_HOST && setns(j->host_mntns, CLONE_NEWNS) < 0)
			md_err_wrap(err, "(cannot return to the host mount namespace: %s)", strerror(errno));
		return -1;
	}
	md_err_wrap(err, "jail `%s` left behind (remove it with `%s clean --id %s --kill`)", j->id, md_progname,
		    j->id);
	j->made_cg = j->made_jail_dir = j->made_exec_dir = false;
	return -1;
}

static int run_forked(struct md_jail *j, md_err **err)
{
	int sync[2];
	pid_t first;
	bool was_leader = getsid(0) == getpid();
	struct msg m;
	bool failed = false;

	if (pipe2(sync, O_CLOEXEC) < 0)
		return md_fail(err, errno, "pipe");
	first = j->daemonize ? fork() : clone_newpid();
	if (first < 0) {
		close(sync[0]);
		close(sync[1]);
		return md_fail(err, errno, j->daemonize ? "fork" : "clone a new PID namespace");
	}
	if (first == 0) {
		md_err *e = NULL;
		enum phase ph;

		close(sync[0]);
		if (j->daemonize) {
			/* fork, setsid, fork: the program is no session leader and has no terminal. */
			pid_t last;

			if (setsid() < 0) {
				md_fail(&e, errno, "setsid");
				child_fail(sync[1], e, PH_HOST);
			}
			last = j->new_pid_ns ? clone_newpid() : fork();
			if (last < 0) {
				md_fail(&e, errno, j->new_pid_ns ? "clone a new PID namespace" : "fork");
				child_fail(sync[1], e, PH_HOST);
			}
			if (last > 0) {
				struct msg pm = { .type = MSG_PID, .pid = last };

				if (write_pidfile(j->pidfile, last, &e) < 0) {
					kill(last, SIGKILL);
					child_fail(sync[1], e, PH_HOST);
				}
				if (write(sync[1], &pm, sizeof(pm)) < 0)
					_exit(MD_EXIT_CHAIN);
				_exit(0);
			}
			if (dup2(j->devnull, 0) < 0 || dup2(j->devnull, 1) < 0 || dup2(j->devnull, 2) < 0) {
				md_fail(&e, errno, "redirect stdio to /dev/null");
				child_fail(sync[1], e, PH_HOST);
			}
		} else if (was_leader && setsid() < 0) {
			md_fail(&e, errno, "setsid");
			child_fail(sync[1], e, PH_HOST);
		}
		enter(j, &ph, &e);
		child_fail(sync[1], e, ph);
	}
	close(sync[1]);
	if (!j->daemonize) {
		j->pid = first;
		if (write_pidfile(j->pidfile, first, err) < 0) {
			kill(first, SIGKILL);
			waitpid(first, NULL, 0);
			close(sync[0]);
			return -1;
		}
	}
	for (;;) {
		ssize_t r = read(sync[0], &m, sizeof(m));

		if (r < 0 && errno == EINTR)
			continue;
		if (r != (ssize_t)sizeof(m))
			break;
		if (m.type == MSG_PID)
			j->pid = m.pid;
		else if (m.type == MSG_ERR && !failed) {
			failed = true;
			m.text[sizeof(m.text) - 1] = '\0';
			md_err_set(err, m.code, 0, "%s", m.text);
		}
	}
	close(sync[0]);
	if (j->daemonize)
		waitpid(first, NULL, 0);
	else if (failed)
		waitpid(first, NULL, 0);
	if (!failed && j->pid <= 0)
		return md_err_set(err, MD_EXIT_CHAIN, 0, "the jail's first child exited before reporting");
	return failed ? -1 : 0;
}

int md_jail_run(struct md_jail *j, md_err **err)
{
	int rc;

	if (prepare(j, err) < 0)
		rc = -1;
	else if (!j->daemonize && !j->new_pid_ns)
		rc = run_plain(j, err);
	else
		rc = run_forked(j, err);
	if (rc < 0) {
		_cleanup_free_ char *left = undo(j);

		if (*err)
			(*err)->code = final_code(*err);
		if (left)
			md_err_wrap(err, "(left behind: %s)", left);
	}
	return rc;
}

json_t *md_jail_json(const struct md_jail *j)
{
	return json_pack("{s:s, s:i, s:s, s:o, s:s}", "id", j->id, "pid", (int)j->pid, "chroot", j->root, "cgroups",
			 j->cg ? md_cgroup_paths_json(j->cg)
			       : (j->cg_join ? json_pack("[s]", j->cg_join) : json_array()),
			 "pidfile", j->pidfile);
}

