/* Network namespace pins, as `ip netns` makes them, but without forking anything. */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>
#include <linux/magic.h>

#include "cleanup.h"
#include "netns.h"
#include "state.h"

#ifndef NSFS_MAGIC
#define NSFS_MAGIC 0x6e736673
#endif

int md_netns_create(const char *pin, md_err **err)
{
	_cleanup_close_ int orig = -1;
	_cleanup_close_ int pfd = -1;
	int nsfd = -1;

	orig = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
	if (orig < 0)
		return md_fail(err, errno, "netns `%s`: open own namespace", pin);
	pfd = open(pin, O_RDONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0444);
	if (pfd < 0)
		return md_err_set(err, errno == EEXIST ? MD_EXIT_CONFLICT : MD_EXIT_FAIL, errno, "netns `%s`", pin);
	close(steal_fd(&pfd));
	/* unshare moves this thread into the new namespace; the bind mount of our own ns file keeps
	 * it alive after we leave, exactly what `ip netns add` does. */
	if (unshare(CLONE_NEWNET) < 0) {
		int e = errno;
		unlink(pin);
		return md_fail(err, e, "netns `%s`: unshare", pin);
	}
	if (mount("/proc/thread-self/ns/net", pin, NULL, MS_BIND, NULL) < 0) {
		int e = errno;
		if (setns(orig, CLONE_NEWNET) < 0)
			return md_fail(err, errno, "netns `%s`: cannot return to own namespace", pin);
		unlink(pin);
		return md_fail(err, e, "netns `%s`: bind mount", pin);
	}
	nsfd = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
	if (setns(orig, CLONE_NEWNET) < 0) {
		/* cannot happen short of a kernel bug; staying in the wrong namespace is not an option */
		md_fail(err, errno, "netns `%s`: cannot return to own namespace", pin);
		md_die(*err);
	}
	if (nsfd < 0) {
		int e = errno;
		md_netns_remove(pin, NULL);
		return md_fail(err, e, "netns `%s`: open", pin);
	}
	return nsfd;
}

int md_netns_bind(int nsfd, const char *to, md_err **err)
{
	_cleanup_close_ int pfd = open(to, O_RDONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0444);
	char src[64];

	if (pfd < 0)
		return md_err_set(err, errno == EEXIST ? MD_EXIT_CONFLICT : MD_EXIT_FAIL, errno, "netns `%s`", to);
	snprintf(src, sizeof(src), "/proc/self/fd/%d", nsfd);
	if (mount(src, to, NULL, MS_BIND, NULL) < 0) {
		int e = errno;
		unlink(to);
		return md_fail(err, e, "netns `%s`: bind mount", to);
	}
	return 0;
}

bool md_netns_pinned(const char *pin)
{
	struct statfs sf;

	return statfs(pin, &sf) == 0 && sf.f_type == NSFS_MAGIC;
}

int md_netns_open(const char *pin, md_err **err)
{
	int fd;

	if (!md_netns_pinned(pin))
		return md_notfound(err, "netns `%s`: not a pinned network namespace", pin);
	fd = open(pin, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return md_fail(err, errno, "netns `%s`", pin);
	return fd;
}

int md_netns_enter(int fd, md_err **err)
{
	if (setns(fd, CLONE_NEWNET) < 0)
		return md_fail(err, errno, "setns");
	return 0;
}

int md_netns_remove(const char *pin, md_err **err)
{
	/* MNT_DETACH: a process still inside keeps the namespace, the name goes now */
	if (umount2(pin, MNT_DETACH) < 0 && errno != EINVAL && errno != ENOENT)
		return md_fail(err, errno, "netns `%s`: unmount", pin);
	if (unlink(pin) < 0 && errno != ENOENT)
		return md_fail(err, errno, "netns `%s`: remove", pin);
	return 0;
}

int md_netns_sysctl(const char *key, const char *value, md_err **err)
{
	_cleanup_free_ char *path = md_strdup_printf("/proc/sys/net/%s", key);
	_cleanup_close_ int fd = open(path, O_WRONLY | O_CLOEXEC);
	size_t len = strlen(value);

	if (fd < 0)
		return md_fail(err, errno, "sysctl `%s`", path);
	if (write(fd, value, len) != (ssize_t)len)
		return md_fail(err, errno, "sysctl `%s`", path);
	return 0;
}

int md_netns_sysctl_get(const char *key, char *buf, size_t len, md_err **err)
{
	_cleanup_free_ char *path = md_strdup_printf("/proc/sys/net/%s", key);
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return md_fail(err, errno, "sysctl `%s`", path);
	n = read(fd, buf, len - 1);
	if (n < 0)
		return md_fail(err, errno, "sysctl `%s`", path);
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == ' '))
		n--;
	buf[n] = 0;
	return 0;
}
