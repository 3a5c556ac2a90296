/* VM records on disk: create-once directories, atomic vm.json, per-VM locks. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cleanup.h"
#include "ids.h"
#include "vmrec.h"

static const char *const state_names[] = { NULL, "CREATED", "RUNNING", "PAUSED", "SHUTDOWN" };

const char *md_vm_state_name(enum md_vm_state s)
{
	return s >= MD_VM_CREATED && s <= MD_VM_SHUTDOWN ? state_names[s] : "UNSPECIFIED";
}

int md_vm_state_parse(const char *s, enum md_vm_state *out)
{
	if (strncasecmp(s, "VM_STATE_", 9) == 0)
		s += 9;
	for (int i = MD_VM_CREATED; i <= MD_VM_SHUTDOWN; i++) {
		if (strcasecmp(s, state_names[i]) == 0) {
			*out = (enum md_vm_state)i;
			return 0;
		}
	}
	return -1;
}

char *md_vmrec_dir(const struct md_paths *p, const char *id)
{
	return md_strdup_printf("%s/vms/%s", p->data_dir, id);
}

char *md_vmrec_file(const struct md_paths *p, const char *id, const char *name)
{
	return md_strdup_printf("%s/vms/%s/%s", p->data_dir, id, name);
}

/* The lock file of a new record, locked before it appears at its path (an O_TMPFILE linked in), so
 * that no other command ever holds the lock of a record still being made. Where that cannot be
 * done (no O_TMPFILE, no /proc): made with O_EXCL and locked at once. -1 with errno: ENOENT, the
 * directory is gone; EEXIST, the lock file is someone else's. */
static int new_lock(const char *dir, const char *lock)
{
	struct stat st;
	char proc[64];
	int fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600), e;

	if (fd >= 0) {
		snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
		if (flock(fd, LOCK_EX | LOCK_NB) == 0 &&
		    (linkat(AT_FDCWD, proc, AT_FDCWD, lock, AT_SYMLINK_FOLLOW) == 0 ||
		     (errno != EEXIST && linkat(fd, "", AT_FDCWD, lock, AT_EMPTY_PATH) == 0)))
			return fd;
		e = errno;
		close(fd);
		if (e == EEXIST || stat(dir, &st) < 0) {
			errno = e == EEXIST ? EEXIST : ENOENT;
			return -1;
		}
	} else if (errno == ENOENT) {
		return -1;
	}
	fd = open(lock, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd >= 0 && flock(fd, LOCK_EX) < 0) {
		e = errno;
		close(fd);
		errno = e;
		return -1;
	}
	return fd;
}

int md_vmrec_make(const struct md_paths *p, const char *id, md_err **err)
{
	_cleanup_free_ char *base = md_strdup_printf("%s/vms", p->data_dir);
	_cleanup_free_ char *dir = md_vmrec_dir(p, id);
	_cleanup_free_ char *lock = md_vmrec_file(p, id, "lock");
	struct stat st;
	int fd;

	if (md_mkdir_p(base, 0700, err) < 0)
		return -1;
	/* A directory without its lock file holds no record: a delete at its last step, or one that
	 * died there, or another create between its two steps. An empty one is removed (rmdir removes
	 * nothing else; the delete finds it gone, the other create makes it again) and made anew, a
	 * bounded number of times. */
	for (int tries = 0;; tries++) {
		if (mkdir(dir, 0700) < 0) {
			if (errno != EEXIST)
				return md_fail(err, errno, "mkdir `%s`", dir);
			if (tries < 200 && stat(lock, &st) < 0 && errno == ENOENT) {
				if (rmdir(dir) < 0)
					md_sleep_ns(1000000);
				continue;
			}
			return md_conflict(err, "vm `%s` already exists", id);
		}
		fd = new_lock(dir, lock);
		if (fd >= 0)
			break;
		if (errno == EEXIST)
			return md_conflict(err, "vm `%s` already exists", id);
		if (errno != ENOENT || tries >= 200) {
			int e = errno;

			rmdir(dir);
			return md_fail(err, e, "lock `%s`", lock);
		}
	}
	if (md_fsync_dir(base, err) < 0) {
		md_vmrec_remove(p, id, NULL);
		close(fd);
		return -1;
	}
	return fd;
}

int md_vmrec_lock(const struct md_paths *p, const char *id, uint64_t timeout_ns, md_err **err)
{
	_cleanup_free_ char *lock = md_vmrec_file(p, id, "lock");
	md_err *e = NULL;
	int fd;

	/* never made here: a record without its lock file is gone (or going, or not made yet) */
	fd = md_lock_existing(lock, true, timeout_ns, &e);
	if (fd < 0 && e->code == MD_EXIT_NOTFOUND) {
		md_err_free(&e);
		return md_notfound(err, "vm `%s` not found", id);
	}
	if (fd < 0) {
		if (err)
			*err = e;
		else
			md_err_free(&e);
	}
	return fd;
}

/* Remove name in the directory dfd, a directory tree too; never into another filesystem (EBUSY). */
static int rm_at(int dfd, const char *name, dev_t dev)
{
	_cleanup_closedir_ DIR *d = NULL;
	struct dirent *de;
	struct stat st;
	int fd;

	if (unlinkat(dfd, name, 0) == 0 || errno == ENOENT)
		return 0;
	if (errno != EISDIR && errno != EPERM)
		return -1;
	fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? 0 : -1;
	if (fstat(fd, &st) < 0 || st.st_dev != dev) {
		close(fd);
		errno = EBUSY;
		return -1;
	}
	d = fdopendir(fd);
	if (d == NULL) {
		close(fd);
		return -1;
	}
	while ((de = readdir(d)) != NULL)
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, "..") && rm_at(dirfd(d), de->d_name, dev) < 0)
			return -1;
	return unlinkat(dfd, name, AT_REMOVEDIR) == 0 || errno == ENOENT ? 0 : -1;
}

int md_vmrec_remove(const struct md_paths *p, const char *id, md_err **err)
{
	_cleanup_free_ char *dir = md_vmrec_dir(p, id);
	_cleanup_close_ int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	struct stat mine, now;

	/* all but the last step through dfd: always this record's directory, even once another is at
	 * the path (a create may make one there as soon as this one is empty and without its lock) */
	if (dfd < 0)
		return errno == ENOENT ? 0 : md_fail(err, errno, "remove `%s`", dir);
	if (fstat(dfd, &mine) < 0)
		return md_fail(err, errno, "remove `%s`", dir);
	for (int tries = 0;; tries++) {
		_cleanup_closedir_ DIR *d = NULL;
		struct dirent *de;
		int fd = openat(dfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);

		if (fd < 0 || (d = fdopendir(fd)) == NULL) {
			if (fd >= 0)
				close(fd);
			return md_fail(err, errno, "remove `%s`", dir);
		}
		/* everything but the lock file, which marks the record as there while it goes */
		while ((de = readdir(d)) != NULL) {
			if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..") || !strcmp(de->d_name, "lock"))
				continue;
			if (rm_at(dfd, de->d_name, mine.st_dev) < 0)
				return md_fail(err, errno, "remove `%s/%s`", dir, de->d_name);
		}
		if (unlinkat(dfd, "lock", 0) < 0 && errno != ENOENT)
			return md_fail(err, errno, "remove `%s/lock`", dir);
		/* the path: at worst another's directory, empty (a create between its two steps, which
		 * makes it again), as rmdir removes no other */
		if (rmdir(dir) == 0 || errno == ENOENT)
			return 0;
		if (errno != ENOTEMPTY && errno != EEXIST)
			return md_fail(err, errno, "remove `%s`", dir);
		if (stat(dir, &now) < 0 || now.st_dev != mine.st_dev || now.st_ino != mine.st_ino)
			return 0; /* ours is gone (removed empty by a create); the one there is the new record */
		if (tries >= 20)
			return md_fail(err, ENOTEMPTY, "remove `%s`", dir);
		/* something was made in it meanwhile (only reconcile's repair of a record that had lost
		 * its lock file makes one): again */
		md_sleep_ns(1000000);
	}
}

int md_vmrec_load(const struct md_paths *p, const char *id, json_t **rec, md_err **err)
{
	_cleanup_free_ char *f = md_vmrec_file(p, id, "vm.json");

	md_err *e = NULL;

	if (md_json_read(f, rec, &e) < 0) {
		bool missing = e->code == MD_EXIT_NOTFOUND;

		if (missing) {
			md_err_free(&e);
			return md_notfound(err, "vm `%s` not found", id);
		}
		if (err)
			*err = e;
		else
			md_err_free(&e);
		return -1;
	}
	return 0;
}

int md_vmrec_save(const struct md_paths *p, const char *id, json_t *rec, md_err **err)
{
	_cleanup_free_ char *f = md_vmrec_file(p, id, "vm.json");

	json_object_set_new(rec, "modified_ns", json_integer((json_int_t)md_now_wall_ns()));
	return md_json_write_atomic(f, rec, 0600, err);
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int md_vmrec_list(const struct md_paths *p, char ***ids, size_t *n, md_err **err)
{
	_cleanup_free_ char *base = md_strdup_printf("%s/vms", p->data_dir);
	_cleanup_closedir_ DIR *d = opendir(base);
	char **v = NULL;
	size_t cnt = 0;
	struct dirent *de;

	*ids = NULL;
	*n = 0;
	if (d == NULL)
		return errno == ENOENT ? 0 : md_fail(err, errno, "open `%s`", base);
	while ((de = readdir(d)) != NULL) {
		char **nv;

		if (md_id_check(de->d_name, "vm id", NULL) < 0)
			continue;
		nv = realloc(v, (cnt + 1) * sizeof(*v));
		if (nv == NULL)
			break;
		v = nv;
		v[cnt++] = strdup(de->d_name);
	}
	if (cnt > 1)
		qsort(v, cnt, sizeof(*v), cmp_str);
	*ids = v;
	*n = cnt;
	return 0;
}
