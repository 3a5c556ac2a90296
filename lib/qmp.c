/* QMP client over a unix socket: newline-delimited JSON, replies matched by id, events queued. */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cleanup.h"
#include "log.h"
#include "qmp.h"
#include "state.h"
#include "unixsock.h"

struct md_qmp {
	int fd;
	char *sock;
	pid_t pid;
	uint64_t deadline;
	char buf[65536];
	size_t len;
	json_t *greeting;
	json_t *events;  /* all events seen */
	size_t consumed; /* events[0..consumed) were handed to md_qmp_wait_event */
	unsigned next_id;
};

/* Read one JSON line. Returns 0, or -1: class 124 at the deadline, class 3 on EOF. */
static int read_msg(struct md_qmp *q, json_t **out, md_err **err)
{
	for (;;) {
		char *nl = memchr(q->buf, '\n', q->len);
		if (nl) {
			json_error_t je;
			size_t n = (size_t)(nl - q->buf);
			*nl = '\0';
			*out = json_loads(q->buf, 0, &je);
			memmove(q->buf, nl + 1, q->len - n - 1);
			q->len -= n + 1;
			if (*out == NULL)
				return md_fail(err, 0, "QMP `%s`: bad JSON from QEMU: %s", q->sock, je.text);
			return 0;
		}
		if (q->len == sizeof(q->buf))
			return md_fail(err, 0, "QMP `%s`: message too long", q->sock);
		uint64_t now = md_now_mono_ns();
		if (now >= q->deadline)
			return md_timeout(err, "QMP `%s`: no answer in time", q->sock);
		struct pollfd p = { .fd = q->fd, .events = POLLIN };
		int r = poll(&p, 1, (int)((q->deadline - now + 999999) / 1000000));
		if (r < 0 && errno != EINTR)
			return md_fail(err, errno, "QMP poll");
		if (r <= 0)
			continue;
		ssize_t got = read(q->fd, q->buf + q->len, sizeof(q->buf) - q->len);
		if (got == 0 || (got < 0 && errno == ECONNRESET))
			return md_notfound(err, "QMP `%s`: QEMU closed the connection (it exited)", q->sock);
		if (got < 0 && errno != EINTR && errno != EAGAIN)
			return md_fail(err, errno, "QMP read");
		if (got > 0)
			q->len += (size_t)got;
	}
}

static int send_msg(struct md_qmp *q, json_t *msg, md_err **err)
{
	_cleanup_free_ char *s = json_dumps(msg, JSON_COMPACT);
	size_t n, off = 0;

	if (s == NULL)
		abort();
	md_debug("qmp -> %s", s);
	n = strlen(s);
	s[n++] = '\n'; /* json_dumps leaves room: the NUL becomes the newline */
	while (off < n) {
		ssize_t w = send(q->fd, s + off, n - off, MSG_NOSIGNAL);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return errno == EPIPE || errno == ECONNRESET
				       ? md_notfound(err, "QMP `%s`: QEMU closed the connection (it exited)", q->sock)
				       : md_fail(err, errno, "QMP write");
		off += (size_t)w;
	}
	return 0;
}

int md_qmp_exec(struct md_qmp *q, const char *cmd, json_t *args, json_t **ret, md_err **err)
{
	_cleanup_json_ json_t *msg = json_pack("{s:s,s:I}", "execute", cmd, "id", (json_int_t)++q->next_id);
	json_int_t id = q->next_id;

	if (args)
		json_object_set_new(msg, "arguments", args);
	if (send_msg(q, msg, err) < 0)
		return md_err_wrap(err, "%s", cmd);
	for (;;) {
		json_t *m = NULL;
		if (read_msg(q, &m, err) < 0)
			return md_err_wrap(err, "%s", cmd);
		if (json_object_get(m, "event")) {
			md_debug("qmp event %s", json_string_value(json_object_get(m, "event")));
			json_array_append_new(q->events, m);
			continue;
		}
		json_t *mid = json_object_get(m, "id");
		if (!json_is_integer(mid) || json_integer_value(mid) != id) {
			json_decref(m); /* a stale reply to an earlier, timed-out command */
			continue;
		}
		json_t *e = json_object_get(m, "error");
		if (e) {
			md_fail(err, 0, "%s: %s: %s", cmd, json_string_value(json_object_get(e, "class")),
				json_string_value(json_object_get(e, "desc")));
			json_decref(m);
			return -1;
		}
		if (ret)
			*ret = json_incref(json_object_get(m, "return"));
		json_decref(m);
		return 0;
	}
}

int md_qmp_wait_event(struct md_qmp *q, const char *name, json_t **ev, md_err **err)
{
	for (;;) {
		while (q->consumed < json_array_size(q->events)) {
			json_t *e = json_array_get(q->events, q->consumed++);
			if (strcmp(json_string_value(json_object_get(e, "event")), name) == 0) {
				if (ev)
					*ev = json_incref(e);
				return 0;
			}
		}
		json_t *m = NULL;
		if (read_msg(q, &m, err) < 0)
			return md_err_wrap(err, "waiting for QMP event %s", name);
		if (json_object_get(m, "event"))
			json_array_append_new(q->events, m);
		else
			json_decref(m);
	}
}

int md_qmp_open(struct md_qmp **out, const char *sock, uint64_t timeout_ns, pid_t pid, md_err **err)
{
	struct md_qmp *q;
	json_t *g = NULL;

	int fd = md_unix_connect_wait(sock, timeout_ns, pid, err);
	if (fd < 0)
		return md_err_wrap(err, "qemu");
	q = calloc(1, sizeof(*q));
	if (q == NULL)
		abort();
	q->fd = fd;
	q->sock = strdup(sock);
	q->pid = pid > 0 ? pid : md_unix_peer_pid(fd);
	q->events = json_array();
	q->deadline = md_now_mono_ns() + (timeout_ns ? timeout_ns : 5000000000ULL);
	if (read_msg(q, &g, err) < 0)
		goto fail;
	if (!json_is_object(json_object_get(g, "QMP"))) {
		json_decref(g);
		md_fail(err, 0, "`%s` is not a QMP socket (no greeting)", sock);
		goto fail;
	}
	q->greeting = g;
	if (md_qmp_exec(q, "qmp_capabilities", NULL, NULL, err) < 0)
		goto fail;
	*out = q;
	return 0;
fail:
	md_qmp_close(q);
	return -1;
}

void md_qmp_close(struct md_qmp *q)
{
	if (q == NULL)
		return;
	close(q->fd);
	free(q->sock);
	json_decref(q->greeting);
	json_decref(q->events);
	free(q);
}

void md_qmp_set_deadline(struct md_qmp *q, uint64_t timeout_ns)
{
	q->deadline = md_now_mono_ns() + timeout_ns;
}

uint64_t md_qmp_deadline(const struct md_qmp *q)
{
	return q->deadline;
}

pid_t md_qmp_pid(const struct md_qmp *q)
{
	return q->pid;
}

json_t *md_qmp_greeting(const struct md_qmp *q)
{
	return q->greeting;
}

json_t *md_qmp_events(const struct md_qmp *q)
{
	return q->events;
}
