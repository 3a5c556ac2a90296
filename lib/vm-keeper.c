/* The keeper process of one VM. It is the VMM chain's parent, so it alone can learn the VMM's
 * exit status (a daemonized VMM would be reaped by init and its status lost). */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <jansson.h>

#include "cleanup.h"
#include "proc.h"
#include "state.h"
#include "vm-keeper.h"

struct blog {
	const char *path;
	int fd;
	size_t size, max;
};

static void blog_open(struct blog *b)
{
	struct stat st;

	b->fd = open(b->path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
	b->size = (b->fd >= 0 && fstat(b->fd, &st) == 0) ? (size_t)st.st_size : 0;
}

/* Append, rotating to <path>.1 whenever the file is full: each file holds at most max bytes, so
 * at most 2*max are kept. A write that does not fit is split (what fits ends the old file, the
 * rest starts the new one): nothing is dropped but the oldest file. An empty file is never
 * rotated, which would replace <path>.1 with nothing. */
static void blog_write(struct blog *b, const char *data, size_t len)
{
	while (len && b->fd >= 0) {
		size_t room;
		ssize_t n;

		if (b->size >= b->max) {
			_cleanup_free_ char *old = md_strdup_printf("%s.1", b->path);

			close(b->fd);
			rename(b->path, old);
			blog_open(b);
			if (b->fd < 0)
				return;
		}
		room = b->size < b->max ? b->max - b->size : len;
		n = write(b->fd, data, len < room ? len : room);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return;
		data += n;
		len -= (size_t)n;
		b->size += (size_t)n;
	}
}

static const char *describe(int wstatus, char *buf, size_t len)
{
	if (WIFEXITED(wstatus)) {
		int c = WEXITSTATUS(wstatus);
		if (c == 0)
			snprintf(buf, len, "the VMM exited (guest powered off or VMM quit)");
		else if (c == 125)
			snprintf(buf, len, "the jail failed before starting the VMM (exit 125)");
		else if (c == 126 || c == 127)
			snprintf(buf, len, "the VMM could not be run (exit %d)", c);
		else
			snprintf(buf, len, "the VMM exited with status %d", c);
	} else if (WIFSIGNALED(wstatus)) {
		snprintf(buf, len, "the VMM was killed by signal %d (%s)", WTERMSIG(wstatus), strsignal(WTERMSIG(wstatus)));
	} else {
		snprintf(buf, len, "the VMM ended");
	}
	return buf;
}

static void __attribute__((noreturn)) keeper_main(const struct md_keeper_spec *s, int report_fd)
{
	int out[2], errp[2], wstatus = 0;
	struct blog serial = { s->serial_log, -1, 0, s->log_max }, vlog = { s->vmm_log, -1, 0, s->log_max };
	pid_t child;
	int open_fds = 2;
	char reason[256];
	uint64_t started = md_now_wall_ns();

	if (pipe2(out, O_CLOEXEC) < 0 || pipe2(errp, O_CLOEXEC) < 0)
		_exit(1);
	blog_open(&serial);
	blog_open(&vlog);
	child = fork();
	if (child < 0)
		_exit(1);
	if (child == 0) {
		int devnull = open("/dev/null", O_RDONLY);

		dup2(devnull, 0);
		dup2(out[1], 1);
		dup2(errp[1], 2);
		/* the keeper ignores these; ignored dispositions survive exec, the VMM must not inherit them */
		signal(SIGPIPE, SIG_DFL);
		signal(SIGINT, SIG_DFL);
		signal(SIGHUP, SIG_DFL);
		execvp(s->argv[0], s->argv);
		dprintf(2, "keeper: exec `%s`: %s\n", s->argv[0], strerror(errno));
		_exit(errno == ENOENT ? 127 : 126);
	}
	close(out[1]);
	close(errp[1]);
	/* tell the CLI the VMM's pid; from here on it does not wait for us */
	dprintf(report_fd, "%d\n", (int)child);
	close(report_fd);

	while (open_fds > 0) {
		struct pollfd pf[2] = { { out[0], POLLIN, 0 }, { errp[0], POLLIN, 0 } };
		char buf[8192];

		if (poll(pf, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		for (int i = 0; i < 2; i++) {
			if (pf[i].fd < 0 || !(pf[i].revents & (POLLIN | POLLHUP | POLLERR)))
				continue;
			ssize_t n = read(pf[i].fd, buf, sizeof(buf));
			if (n > 0) {
				blog_write(i == 0 ? &serial : &vlog, buf, (size_t)n);
			} else if (n == 0 || errno != EINTR) {
				close(pf[i].fd);
				if (i == 0)
					out[0] = -1;
				else
					errp[0] = -1;
				open_fds--;
			}
		}
	}
	while (waitpid(child, &wstatus, 0) < 0 && errno == EINTR)
		;
	if (s->remove_on_exit)
		unlink(s->remove_on_exit);
	{
		json_t *ex = json_pack("{s:i, s:i, s:s, s:I, s:I}", "pid", (int)child, "status",
				       md_wait_status_code(wstatus), "reason", describe(wstatus, reason, sizeof(reason)),
				       "started_ns", (json_int_t)started, "ended_ns", (json_int_t)md_now_wall_ns());
		if (WIFSIGNALED(wstatus))
			json_object_set_new(ex, "signal", json_integer(WTERMSIG(wstatus)));
		md_json_write_atomic(s->exit_file, ex, 0600, NULL);
		json_decref(ex);
	}
	_exit(0);
}

int md_keeper_start(const struct md_keeper_spec *spec, pid_t *vmm_pid, pid_t *keeper_pid, md_err **err)
{
	int rep[2], kpid_pipe[2];
	pid_t first;
	char buf[64];
	ssize_t n;
	int st;

	if (pipe2(rep, O_CLOEXEC) < 0)
		return md_fail(err, errno, "keeper: pipe");
	if (pipe2(kpid_pipe, O_CLOEXEC) < 0) {
		close(rep[0]);
		close(rep[1]);
		return md_fail(err, errno, "keeper: pipe");
	}
	unlink(spec->exit_file);
	first = fork();
	if (first < 0) {
		int e = errno;
		close(rep[0]);
		close(rep[1]);
		close(kpid_pipe[0]);
		close(kpid_pipe[1]);
		return md_fail(err, e, "keeper: fork");
	}
	if (first == 0) {
		pid_t second;

		close(rep[0]);
		close(kpid_pipe[0]);
		/* the keeper is a fork, not an exec: without this it would hold every fd of the CLI,
		 * the VM's lock among them, for the VM's whole life */
		{
			int hi = rep[1] > kpid_pipe[1] ? rep[1] : kpid_pipe[1];
			int lo = rep[1] < kpid_pipe[1] ? rep[1] : kpid_pipe[1];

			/* md_cli_init keeps fds 0-2 open, so the two pipes are above 2 */
			if (close_range(3, (unsigned)lo - 1, 0) < 0 ||
			    (hi > lo + 1 && close_range((unsigned)lo + 1, (unsigned)hi - 1, 0) < 0) ||
			    close_range((unsigned)hi + 1, ~0U, 0) < 0) {
				for (int fd = 3; fd < 65536; fd++) /* kernels before 5.9 */
					if (fd != lo && fd != hi)
						close(fd);
			}
		}
		setsid();
		second = fork();
		if (second != 0) {
			if (second > 0)
				dprintf(kpid_pipe[1], "%d\n", (int)second);
			_exit(second > 0 ? 0 : 1);
		}
		close(kpid_pipe[1]);
		/* detached from the CLI: no terminal, stdio to /dev/null, default signals */
		int devnull = open("/dev/null", O_RDWR);
		if (devnull >= 0) {
			dup2(devnull, 0);
			dup2(devnull, 1);
			dup2(devnull, 2);
			if (devnull > 2)
				close(devnull);
		}
		signal(SIGINT, SIG_IGN);
		signal(SIGHUP, SIG_IGN);
		signal(SIGPIPE, SIG_IGN);
		prctl(PR_SET_NAME, "metald-keeper", 0, 0, 0);
		keeper_main(spec, rep[1]);
	}
	close(rep[1]);
	close(kpid_pipe[1]);
	waitpid(first, &st, 0);
	n = read(kpid_pipe[0], buf, sizeof(buf) - 1);
	close(kpid_pipe[0]);
	*keeper_pid = n > 0 ? (buf[n] = '\0', (pid_t)atoi(buf)) : 0;
	n = read(rep[0], buf, sizeof(buf) - 1);
	close(rep[0]);
	if (n <= 0)
		return md_fail(err, 0, "keeper: could not start the VMM chain");
	buf[n] = '\0';
	*vmm_pid = (pid_t)atoi(buf);
	return 0;
}
