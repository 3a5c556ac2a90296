/* Durable records: every write is temp+fsync+rename+fsync(dir), so a crash leaves old or new. */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <libgen.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cleanup.h"
#include "state.h"

char *md_vstrdup_printf(const char *fmt, va_list ap)
{
	char *s;

	if (vasprintf(&s, fmt, ap) < 0)
		abort();
	return s;
}

char *md_strdup_printf(const char *fmt, ...)
{
	char *s;
	va_list ap;

	va_start(ap, fmt);
	s = md_vstrdup_printf(fmt, ap);
	va_end(ap);
	return s;
}

char *md_path_join(const char *a, const char *b)
{
	size_t la = strlen(a);

	while (*b == '/')
		b++;
	if (la && a[la - 1] == '/')
		return md_strdup_printf("%s%s", a, b);
	return md_strdup_printf("%s/%s", a, b);
}

static int pick(char **out, const char *root, const char *sub, const char *env, const char *def, md_err **err)
{
	const char *e = getenv(env);

	if (root)
		*out = md_path_join(root, sub);
	else if (e && *e) {
		if (e[0] != '/')
			return md_usage(err, "%s `%s`: must be an absolute path", env, e);
		*out = strdup(e);
	} else
		*out = strdup(def);
	return 0;
}

int md_paths_init(struct md_paths *p, const char *root, md_err **err)
{
	memset(p, 0, sizeof(*p));
	if (root == NULL) {
		const char *e = getenv("UNKEY_METALD_ROOT");
		if (e && *e)
			root = e;
	}
	if (root && root[0] != '/')
		return md_usage(err, "root `%s`: must be an absolute path", root);
	if (pick(&p->data_dir, root, "data", "UNKEY_METALD_DATA_DIR", "/var/lib/metald", err) < 0 ||
	    pick(&p->run_dir, root, "run", "UNKEY_METALD_RUN_DIR", "/run/metald", err) < 0 ||
	    pick(&p->chroot_dir, root, "jail", "UNKEY_METALD_JAILER_CHROOT_DIR", "/srv/jailer", err) < 0 ||
	    pick(&p->netns_dir, root, "netns", "UNKEY_METALD_NETNS_DIR", "/run/netns", err) < 0) {
		md_paths_free(p);
		return -1;
	}
	return 0;
}

void md_paths_free(struct md_paths *p)
{
	free(p->data_dir);
	free(p->run_dir);
	free(p->chroot_dir);
	free(p->netns_dir);
	memset(p, 0, sizeof(*p));
}

int md_mkdir_p(const char *path, mode_t mode, md_err **err)
{
	_cleanup_free_ char *dup = strdup(path);
	char *p;

	if (dup == NULL)
		return md_fail(err, ENOMEM, "mkdir `%s`", path);
	/* the common case, the whole path already there, in one call */
	if (mkdir(path, mode) == 0 || errno == EEXIST)
		return 0;
	for (p = dup + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(dup, mode) < 0 && errno != EEXIST)
			return md_fail(err, errno, "mkdir `%s`", dup);
		*p = '/';
	}
	if (mkdir(dup, mode) < 0 && errno != EEXIST)
		return md_fail(err, errno, "mkdir `%s`", dup);
	return 0;
}

int md_fsync_dir(const char *dir, md_err **err)
{
	_cleanup_close_ int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd < 0)
		return md_fail(err, errno, "open `%s`", dir);
	if (fsync(fd) < 0)
		return md_fail(err, errno, "fsync `%s`", dir);
	return 0;
}

/* Written into a new temporary file next to path, or into `via` (an existing file of the same file
 * system, truncated; it is gone afterwards, whatever the outcome), then renamed over path. */
static int write_atomic(const char *path, const char *via, const void *data, size_t len, mode_t mode, bool durable,
			md_err **err)
{
	_cleanup_free_ char *tmp = via ? strdup(via) : md_strdup_printf("%s.tmp.XXXXXX", path);
	_cleanup_free_ char *dirc = strdup(path);
	_cleanup_close_ int fd = -1;
	const char *p = data;
	size_t left = len;

	fd = via ? open(tmp, O_WRONLY | O_TRUNC | O_NOFOLLOW | O_CLOEXEC) : mkostemp(tmp, O_CLOEXEC);
	if (fd < 0) {
		int e = errno;

		if (via)
			(void)unlink(via); /* handed over, like a temporary file */
		return md_fail(err, e, "write `%s`: %s", path, via ? via : "create temporary file");
	}
	while (left) {
		ssize_t n = write(fd, p, left);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			int e = errno;
			unlink(tmp);
			return md_fail(err, e, "write `%s`", path);
		}
		p += n;
		left -= (size_t)n;
	}
	if (fchmod(fd, mode) < 0 || (durable && fsync(fd) < 0)) {
		int e = errno;
		unlink(tmp);
		return md_fail(err, e, "write `%s`: fsync", path);
	}
	if (rename(tmp, path) < 0) {
		int e = errno;
		unlink(tmp);
		return md_fail(err, e, "write `%s`: rename", path);
	}
	return durable ? md_fsync_dir(dirname(dirc), err) : 0;
}

int md_write_atomic(const char *path, const void *data, size_t len, mode_t mode, md_err **err)
{
	return write_atomic(path, NULL, data, len, mode, true, err);
}

static int json_write(const char *path, const char *via, json_t *v, mode_t mode, bool durable, md_err **err)
{
	_cleanup_free_ char *s = json_dumps(v, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	_cleanup_free_ char *line = NULL;

	if (s == NULL)
		return md_fail(err, ENOMEM, "write `%s`: encode JSON", path);
	line = md_strdup_printf("%s\n", s);
	return write_atomic(path, via, line, strlen(line), mode, durable, err);
}

int md_json_write_atomic(const char *path, json_t *v, mode_t mode, md_err **err)
{
	return json_write(path, NULL, v, mode, true, err);
}

int md_json_write_replace(const char *path, json_t *v, mode_t mode, md_err **err)
{
	return json_write(path, NULL, v, mode, false, err);
}

int md_json_write_via(const char *path, const char *via, json_t *v, mode_t mode, md_err **err)
{
	return json_write(path, via, v, mode, false, err);
}

int md_read_file(const char *path, char **data, size_t *len, md_err **err)
{
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
	char *buf = NULL;
	size_t cap = 0, n = 0;

	if (fd < 0) {
		if (errno == ENOENT)
			return md_err_set(err, MD_EXIT_NOTFOUND, ENOENT, "read `%s`", path);
		return md_fail(err, errno, "read `%s`", path);
	}
	for (;;) {
		ssize_t r;

		if (cap - n < 4096) {
			char *nb = realloc(buf, cap ? cap * 2 : 8192);
			if (nb == NULL) {
				free(buf);
				return md_fail(err, ENOMEM, "read `%s`", path);
			}
			buf = nb;
			cap = cap ? cap * 2 : 8192;
		}
		r = read(fd, buf + n, cap - n - 1);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			int e = errno;
			free(buf);
			return md_fail(err, e, "read `%s`", path);
		}
		if (r == 0)
			break;
		n += (size_t)r;
	}
	buf[n] = '\0';
	*data = buf;
	if (len)
		*len = n;
	return 0;
}

int md_json_read(const char *path, json_t **out, md_err **err)
{
	_cleanup_free_ char *s = NULL;
	json_error_t je;
	size_t len;

	if (md_read_file(path, &s, &len, err) < 0)
		return -1;
	*out = json_loadb(s, len, JSON_REJECT_DUPLICATES, &je);
	if (*out == NULL)
		return md_usage(err, "`%s`: invalid JSON at line %d column %d: %s", path, je.line, je.column,
				je.text);
	return 0;
}

uint64_t md_now_mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

uint64_t md_now_wall_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

void md_sleep_ns(uint64_t ns)
{
	struct timespec ts = { .tv_sec = (time_t)(ns / 1000000000ULL), .tv_nsec = (long)(ns % 1000000000ULL) };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* Is fd still the file at path? A lock taken on a file that was unlinked (and maybe re-created)
 * while we waited guards nothing: whoever opens the path now gets another file. */
static bool same_file(int fd, const char *path)
{
	struct stat a, b;

	return fstat(fd, &a) == 0 && stat(path, &b) == 0 && a.st_dev == b.st_dev && a.st_ino == b.st_ino;
}

static int lock_file(const char *path, bool exclusive, bool create, uint64_t timeout_ns, md_err **err)
{
	_cleanup_close_ int fd = -1;
	uint64_t deadline, wait = 1000000; /* 1 ms, doubling to 50 ms */
	int late = 0;

	deadline = md_now_mono_ns() + timeout_ns;
	for (;;) {
		if (fd < 0) {
			fd = open(path, O_RDWR | O_CLOEXEC | (create ? O_CREAT : 0), 0600);
			if (fd < 0 && !create && (errno == ENOENT || errno == ENOTDIR))
				return md_notfound(err, "lock `%s`: no such file", path);
			if (fd < 0)
				return md_fail(err, errno, "lock `%s`", path);
		}
		if (flock(fd, (exclusive ? LOCK_EX : LOCK_SH) | LOCK_NB) == 0) {
			if (same_file(fd, path))
				return steal_fd(&fd);
			/* the holder removed (and maybe re-made) the file before it let go: lock the
			 * file that is there now, within the same deadline (a few tries past it, so that
			 * a try-once lock is not refused for a file that was only replaced) */
			close(steal_fd(&fd));
			if (md_now_mono_ns() >= deadline && ++late > 3)
				return md_conflict(err, "`%s` is locked by another process", path);
			continue;
		}
		if (errno != EWOULDBLOCK && errno != EINTR)
			return md_fail(err, errno, "lock `%s`", path);
		if (md_now_mono_ns() >= deadline)
			return md_conflict(err, "`%s` is locked by another process", path);
		md_sleep_ns(wait);
		if (wait < 50000000)
			wait *= 2;
	}
}

int md_lock(const char *path, bool exclusive, uint64_t timeout_ns, md_err **err)
{
	return lock_file(path, exclusive, true, timeout_ns, err);
}

int md_lock_existing(const char *path, bool exclusive, uint64_t timeout_ns, md_err **err)
{
	return lock_file(path, exclusive, false, timeout_ns, err);
}

static int rm_cb(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(p) < 0 && errno != ENOENT ? -1 : 0;
}

int md_rm_rf(const char *path, md_err **err)
{
	struct stat st;

	if (lstat(path, &st) < 0)
		return errno == ENOENT ? 0 : md_fail(err, errno, "remove `%s`", path);
	if (nftw(path, rm_cb, 32, FTW_DEPTH | FTW_PHYS | FTW_MOUNT) < 0)
		return md_fail(err, errno, "remove `%s`", path);
	return 0;
}
