/* Process identity and captured runs of helper programs. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cleanup.h"
#include "proc.h"
#include "state.h"

extern char **environ;

int md_proc_start_time(pid_t pid, uint64_t *start, md_err **err)
{
	char path[64], buf[1024];
	_cleanup_close_ int fd = -1;
	ssize_t n;
	char *p;

	/* one read into a stack buffer, no allocation: the meter calls this every 100 ms */
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return md_notfound(err, "process %d not found", (int)pid);
	n = read(fd, buf, sizeof(buf) - 1);
	if (n <= 0)
		return md_notfound(err, "process %d not found", (int)pid);
	buf[n] = '\0';
	/* comm may hold spaces and parentheses: fields count from the last ')' (field 2's end) */
	p = strrchr(buf, ')');
	if (p == NULL || p[1] != ' ')
		return md_fail(err, 0, "%s: unexpected format", path);
	/* a zombie has exited (its counters are final even before its parent reaps it) */
	if (p[2] == 'Z' || p[2] == 'X')
		return md_notfound(err, "process %d has exited", (int)pid);
	p++;
	for (int field = 3; field < 22; field++) {
		p = strchr(p + 1, ' ');
		if (p == NULL)
			return md_fail(err, 0, "%s: unexpected format", path);
	}
	*start = strtoull(p + 1, NULL, 10);
	return 0;
}

bool md_proc_alive(pid_t pid, uint64_t start)
{
	uint64_t st;

	if (pid <= 0 || md_proc_start_time(pid, &st, NULL) < 0)
		return false;
	return start == 0 || st == start;
}

int md_wait_status_code(int wstatus)
{
	if (WIFEXITED(wstatus))
		return WEXITSTATUS(wstatus);
	if (WIFSIGNALED(wstatus))
		return 128 + WTERMSIG(wstatus);
	return 1;
}

void md_run_result_free(struct md_run_result *r)
{
	free(r->out);
	free(r->errout);
	r->out = r->errout = NULL;
}

struct buf {
	char *s;
	size_t len, cap;
};

static int buf_read(int fd, struct buf *b)
{
	for (;;) {
		ssize_t n;

		if (b->cap - b->len < 4096) {
			size_t ncap = b->cap ? b->cap * 2 : 8192;
			char *ns = realloc(b->s, ncap);
			if (ns == NULL)
				return -1;
			b->s = ns;
			b->cap = ncap;
		}
		n = read(fd, b->s + b->len, b->cap - b->len - 1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return 1;
		if (n <= 0)
			return 0; /* EOF (or error: treat as closed) */
		b->len += (size_t)n;
		b->s[b->len] = '\0';
	}
}

int md_run(char *const argv[], uint64_t timeout_ns, struct md_run_result *r, md_err **err)
{
	int out[2] = { -1, -1 }, errp[2] = { -1, -1 };
	posix_spawn_file_actions_t fa;
	struct buf bo = { 0 }, be = { 0 };
	uint64_t deadline = timeout_ns ? md_now_mono_ns() + timeout_ns : 0;
	int open_fds = 2, wstatus = 0, rc;
	pid_t pid;

	memset(r, 0, sizeof(*r));
	if (pipe2(out, O_CLOEXEC | O_NONBLOCK) < 0 || pipe2(errp, O_CLOEXEC | O_NONBLOCK) < 0) {
		int e = errno;
		close(out[0]);
		close(out[1]);
		return md_fail(err, e, "run `%s`: pipe", argv[0]);
	}
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_adddup2(&fa, out[1], 1);
	posix_spawn_file_actions_adddup2(&fa, errp[1], 2);
	rc = posix_spawnp(&pid, argv[0], &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	close(out[1]);
	close(errp[1]);
	if (rc != 0) {
		close(out[0]);
		close(errp[0]);
		return md_err_set(err, rc == ENOENT ? MD_EXIT_MISSING : MD_EXIT_FAIL, rc, "run `%s`", argv[0]);
	}
	while (open_fds > 0) {
		struct pollfd pf[2] = { { out[0], POLLIN, 0 }, { errp[0], POLLIN, 0 } };
		int ms = -1;

		if (deadline) {
			uint64_t now = md_now_mono_ns();
			if (now >= deadline) {
				kill(pid, SIGKILL);
				waitpid(pid, NULL, 0);
				close(out[0]);
				close(errp[0]);
				free(bo.s);
				free(be.s);
				return md_timeout(err, "`%s` did not finish in time", argv[0]);
			}
			ms = (int)((deadline - now) / 1000000ULL) + 1;
		}
		if (pf[0].fd < 0)
			pf[0].events = 0;
		if (pf[1].fd < 0)
			pf[1].events = 0;
		if (poll(pf, 2, ms) < 0 && errno != EINTR)
			break;
		if (pf[0].fd >= 0 && (pf[0].revents & (POLLIN | POLLHUP | POLLERR)) && buf_read(out[0], &bo) == 0) {
			close(out[0]);
			out[0] = -1;
			open_fds--;
		}
		if (pf[1].fd >= 0 && (pf[1].revents & (POLLIN | POLLHUP | POLLERR)) && buf_read(errp[0], &be) == 0) {
			close(errp[0]);
			errp[0] = -1;
			open_fds--;
		}
	}
	if (out[0] >= 0)
		close(out[0]);
	if (errp[0] >= 0)
		close(errp[0]);
	for (;;) {
		if (waitpid(pid, &wstatus, 0) >= 0)
			break;
		if (errno != EINTR) {
			int e = errno;
			free(bo.s);
			free(be.s);
			return md_fail(err, e, "run `%s`: wait", argv[0]);
		}
	}
	r->status = md_wait_status_code(wstatus);
	r->out = bo.s ? bo.s : strdup("");
	r->errout = be.s ? be.s : strdup("");
	return 0;
}

char *md_self_dir(void)
{
	char buf[4096];
	ssize_t n = readlink("/proc/self/exe", buf, sizeof(buf) - 1);
	char *slash;

	if (n <= 0)
		return NULL;
	buf[n] = '\0';
	slash = strrchr(buf, '/');
	if (slash)
		*slash = '\0';
	return strdup(buf);
}
