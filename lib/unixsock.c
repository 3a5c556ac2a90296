/* Unix stream sockets of VMM APIs: inotify-driven wait for a socket, peer credentials, pid exit wait. */
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>

#include "cleanup.h"
#include "state.h"
#include "unixsock.h"

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif

static int pidfd_open_(pid_t pid)
{
	return (int)syscall(SYS_pidfd_open, pid, 0);
}

static int try_connect(const char *path, int *fd_out)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd;

	if (strlen(path) >= sizeof(sa.sun_path)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	memcpy(sa.sun_path, path, strlen(path) + 1);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		int e = errno;
		close(fd);
		errno = e;
		return -1;
	}
	*fd_out = fd;
	return 0;
}

/* Watch the socket's directory, or its nearest existing ancestor. Returns the watched dir. */
static char *watch_nearest(int ino, const char *path, int *wd)
{
	char *dir = strdup(path);
	char *slash;

	if (dir == NULL)
		abort();
	for (;;) {
		slash = strrchr(dir, '/');
		if (slash == NULL) {
			strcpy(dir, ".");
		} else if (slash == dir) {
			dir[1] = '\0';
		} else {
			*slash = '\0';
		}
		*wd = inotify_add_watch(ino, dir, IN_CREATE | IN_MOVED_TO | IN_ATTRIB | IN_ONLYDIR);
		if (*wd >= 0 || strcmp(dir, "/") == 0 || strcmp(dir, ".") == 0)
			return dir;
	}
}

int md_unix_connect_wait(const char *path, uint64_t timeout_ns, pid_t pid, md_err **err)
{
	_cleanup_close_ int ino = -1, pfd = -1;
	_cleanup_free_ char *watched = NULL;
	uint64_t deadline = md_now_mono_ns() + timeout_ns, backoff = 1000000;
	int fd = -1, wd = -1;

	if (try_connect(path, &fd) == 0)
		return fd;
	if (errno != ENOENT && errno != ECONNREFUSED)
		return md_fail(err, errno, "connect `%s`", path);
	if (timeout_ns == 0)
		return md_notfound(err, "socket `%s`: %s (is the VMM running?)", path,
				   errno == ENOENT ? "no such socket" : "connection refused");
	ino = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
	if (ino < 0)
		return md_fail(err, errno, "inotify");
	if (pid > 0) {
		pfd = pidfd_open_(pid);
		if (pfd < 0 && errno == ESRCH)
			return md_notfound(err, "socket `%s`: process %d exited", path, (int)pid);
	}
	for (;;) {
		struct pollfd p[2] = { { .fd = ino, .events = POLLIN }, { .fd = pfd, .events = POLLIN } };
		uint64_t now, wait_ns;
		bool refused;
		int r;

		/* (re)arm the watch first, then test, so a creation in between is not missed */
		free(watched);
		if (wd >= 0)
			inotify_rm_watch(ino, wd);
		watched = watch_nearest(ino, path, &wd);
		if (try_connect(path, &fd) == 0)
			return fd;
		if (errno != ENOENT && errno != ECONNREFUSED)
			return md_fail(err, errno, "connect `%s`", path);
		refused = errno == ECONNREFUSED;
		now = md_now_mono_ns();
		if (now >= deadline)
			return md_timeout(err, "socket `%s`: not accepting connections after %.1fs", path,
					  (double)timeout_ns / 1e9);
		wait_ns = deadline - now;
		if (refused) {
			/* bound but not listening yet: no inotify event will come; back off briefly */
			if (wait_ns > backoff)
				wait_ns = backoff;
			if (backoff < 32000000)
				backoff *= 2;
		}
		r = poll(p, pfd >= 0 ? 2 : 1, (int)((wait_ns + 999999) / 1000000));
		if (r < 0 && errno != EINTR)
			return md_fail(err, errno, "poll");
		if (r > 0 && (p[1].revents & POLLIN))
			return md_notfound(err, "socket `%s`: process %d exited before its API came up", path, (int)pid);
		if (r > 0 && (p[0].revents & POLLIN)) {
			char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
			while (read(ino, buf, sizeof(buf)) > 0)
				;
		}
	}
}

pid_t md_unix_peer_pid(int fd)
{
	struct ucred cr;
	socklen_t len = sizeof(cr);

	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &len) < 0)
		return -1;
	return cr.pid;
}

int md_pid_wait_exit(pid_t pid, uint64_t timeout_ns, md_err **err)
{
	_cleanup_close_ int pfd = pidfd_open_(pid);
	uint64_t deadline = md_now_mono_ns() + timeout_ns;

	if (pfd < 0) {
		if (errno == ESRCH)
			return 0;
		/* no pidfd (old kernel): fall back to a bounded poll of kill(pid, 0) */
		uint64_t step = 1000000;
		while (kill(pid, 0) == 0 || errno == EPERM) {
			if (md_now_mono_ns() >= deadline)
				return 1;
			md_sleep_ns(step);
			if (step < 50000000)
				step *= 2;
		}
		return 0;
	}
	for (;;) {
		struct pollfd p = { .fd = pfd, .events = POLLIN };
		uint64_t now = md_now_mono_ns();
		int r;

		if (now >= deadline)
			return 1;
		r = poll(&p, 1, (int)((deadline - now + 999999) / 1000000));
		if (r > 0)
			return 0;
		if (r < 0 && errno != EINTR)
			return md_fail(err, errno, "wait for process %d", (int)pid);
	}
}
