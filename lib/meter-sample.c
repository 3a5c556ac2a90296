/* Reading one VM's usage counters: meter targets, cgroup v1/v2 files, link counters, pid checks. */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <netlink/netlink.h>
#include <netlink/route/link.h>

#include "cleanup.h"
#include "ids.h"
#include "log.h"
#include "meter-sample.h"
#include "state.h"

/* ---- targets ---------------------------------------------------------------------------------- */

static int opt_str(json_t *o, const char *key, char **out, const char *what, md_err **err)
{
	json_t *v = o ? json_object_get(o, key) : NULL;

	*out = NULL;
	if (v == NULL || json_is_null(v))
		return 0;
	if (!json_is_string(v))
		return md_usage(err, "%s: `%s` must be a string", what, key);
	*out = strdup(json_string_value(v));
	return 0;
}

static int opt_u64(json_t *o, const char *key, uint64_t *out, const char *what, md_err **err)
{
	json_t *v = json_object_get(o, key);

	*out = 0;
	if (v == NULL || json_is_null(v))
		return 0;
	if (!json_is_integer(v) || json_integer_value(v) < 0)
		return md_usage(err, "%s: `%s` must be a non-negative integer", what, key);
	*out = (uint64_t)json_integer_value(v);
	return 0;
}

int md_meter_target_parse(json_t *j, const char *what, struct md_meter_target *t, md_err **err)
{
	json_t *cg, *net;
	uint64_t pid = 0, ver = 0;

	memset(t, 0, sizeof(*t));
	if (!json_is_object(j))
		return md_usage(err, "%s: must be a JSON object", what);
	if (opt_str(j, "id", &t->id, what, err) < 0)
		goto fail;
	if (t->id == NULL) {
		md_usage(err, "%s: `id` is required", what);
		goto fail;
	}
	if (md_id_check(t->id, "vm id", err) < 0)
		goto wrap;
	if (opt_str(j, "customer_id", &t->customer, what, err) < 0 || opt_str(j, "tenant", &t->tenant, what, err) < 0 ||
	    opt_str(j, "vmm", &t->vmm, what, err) < 0 || opt_u64(j, "pid", &pid, what, err) < 0 ||
	    opt_u64(j, "pid_start", &t->pid_start, what, err) < 0 ||
	    opt_u64(j, "started_wall_ns", &t->started_wall_ns, what, err) < 0 ||
	    opt_str(j, "qmp", &t->qmp, what, err) < 0 || opt_str(j, "fc_metrics", &t->fc_metrics, what, err) < 0)
		goto fail;
	if (pid == 0 || pid > 4194304) {
		md_usage(err, "%s: `pid` is required (1..4194304)", what);
		goto fail;
	}
	t->pid = (pid_t)pid;
	cg = json_object_get(j, "cgroup");
	if (cg && !json_is_null(cg)) {
		json_t *paths;

		if (!json_is_object(cg) || opt_u64(cg, "version", &ver, what, err) < 0 || (ver != 1 && ver != 2)) {
			md_usage(err, "%s: `cgroup.version` must be 1 or 2", what);
			goto fail;
		}
		t->cg_version = (int)ver;
		if (ver == 1) {
			paths = json_object_get(cg, "paths");
			if (!json_is_object(paths)) {
				md_usage(err, "%s: `cgroup.paths` must be an object for version 1", what);
				goto fail;
			}
			if (opt_str(paths, "cpuacct", &t->cg_cpuacct, what, err) < 0 ||
			    opt_str(paths, "memory", &t->cg_memory, what, err) < 0 ||
			    opt_str(paths, "blkio", &t->cg_blkio, what, err) < 0)
				goto fail;
		} else {
			if (opt_str(cg, "path", &t->cg_path, what, err) < 0)
				goto fail;
			if (t->cg_path == NULL) {
				md_usage(err, "%s: `cgroup.path` is required for version 2", what);
				goto fail;
			}
		}
	}
	net = json_object_get(j, "net");
	if (net && !json_is_null(net)) {
		if (!json_is_object(net) || opt_str(net, "link", &t->net_link, what, err) < 0 ||
		    opt_str(net, "netns", &t->net_netns, what, err) < 0) {
			md_usage(err, "%s: `net` must be an object with `link` and `netns`", what);
			goto fail;
		}
	}
	t->json = json_incref(j);
	return 0;
wrap:
	md_err_wrap(err, "%s", what);
fail:
	md_meter_target_free(t);
	return -1;
}

int md_meter_target_load(const char *path, struct md_meter_target *t, md_err **err)
{
	_cleanup_json_ json_t *j = NULL;
	_cleanup_free_ char *what = md_strdup_printf("meter target `%s`", path);

	if (md_json_read(path, &j, err) < 0)
		return -1;
	return md_meter_target_parse(j, what, t, err);
}

void md_meter_target_free(struct md_meter_target *t)
{
	free(t->id);
	free(t->customer);
	free(t->tenant);
	free(t->vmm);
	free(t->cg_cpuacct);
	free(t->cg_memory);
	free(t->cg_blkio);
	free(t->cg_path);
	free(t->net_link);
	free(t->net_netns);
	free(t->qmp);
	free(t->fc_metrics);
	json_decref(t->json);
	memset(t, 0, sizeof(*t));
}

/* ---- netlink, one socket per network namespace ------------------------------------------------ */

struct nlsock {
	char *netns; /* NULL: our own */
	struct nl_sock *sk;
};
static struct nlsock *nlsocks;
static size_t n_nlsocks;

static struct nl_sock *nl_for(const char *netns, md_err **err)
{
	_cleanup_close_ int self = -1, target = -1;
	struct nl_sock *sk;
	int r;

	for (size_t i = 0; i < n_nlsocks; i++) {
		if ((netns == NULL && nlsocks[i].netns == NULL) ||
		    (netns && nlsocks[i].netns && strcmp(netns, nlsocks[i].netns) == 0))
			return nlsocks[i].sk;
	}
	if (netns) {
		/* A netlink socket belongs to the namespace it was made in: enter it, make the socket,
		 * come back. setns changes only this thread. */
		self = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
		target = open(netns, O_RDONLY | O_CLOEXEC);
		if (self < 0)
			return md_fail(err, errno, "open own netns"), NULL;
		if (target < 0)
			return md_fail(err, errno, "netns `%s`", netns), NULL;
		if (setns(target, CLONE_NEWNET) < 0)
			return md_fail(err, errno, "enter netns `%s`", netns), NULL;
	}
	sk = nl_socket_alloc();
	r = sk ? nl_connect(sk, NETLINK_ROUTE) : -NLE_NOMEM;
	if (netns && setns(self, CLONE_NEWNET) < 0)
		abort(); /* sampling in the wrong namespace would bill the wrong links */
	if (r < 0) {
		if (sk)
			nl_socket_free(sk);
		md_fail(err, 0, "netlink socket%s%s: %s", netns ? " in " : "", netns ? netns : "", nl_geterror(r));
		return NULL;
	}
	nlsocks = realloc(nlsocks, (n_nlsocks + 1) * sizeof(*nlsocks));
	if (nlsocks == NULL)
		abort();
	nlsocks[n_nlsocks].netns = netns ? strdup(netns) : NULL;
	nlsocks[n_nlsocks].sk = sk;
	n_nlsocks++;
	return sk;
}

void md_meter_net_cleanup(void)
{
	for (size_t i = 0; i < n_nlsocks; i++) {
		nl_socket_free(nlsocks[i].sk);
		free(nlsocks[i].netns);
	}
	free(nlsocks);
	nlsocks = NULL;
	n_nlsocks = 0;
}

/* ---- sources ---------------------------------------------------------------------------------- */

enum { F_CPU, F_MEM, F_MEMMAX, F_IOBYTES, F_IOOPS, F_MAX };

struct md_meter_src {
	int version;
	int fd[F_MAX];
	char *path[F_MAX];
	char *link, *netns;
	char *qmp;
};

static void src_file(struct md_meter_src *s, int which, const char *dir, const char *name)
{
	if (dir == NULL)
		return;
	s->path[which] = md_path_join(dir, name);
	s->fd[which] = open(s->path[which], O_RDONLY | O_CLOEXEC);
}

int md_meter_src_open(const struct md_meter_target *t, struct md_meter_src **out, md_err **err)
{
	struct md_meter_src *s = calloc(1, sizeof(*s));

	if (s == NULL)
		return md_fail(err, ENOMEM, "sample");
	for (int i = 0; i < F_MAX; i++)
		s->fd[i] = -1;
	s->version = t->cg_version;
	if (t->cg_version == 1) {
		src_file(s, F_CPU, t->cg_cpuacct, "cpuacct.usage");
		src_file(s, F_MEM, t->cg_memory, "memory.usage_in_bytes");
		src_file(s, F_MEMMAX, t->cg_memory, "memory.max_usage_in_bytes");
		src_file(s, F_IOBYTES, t->cg_blkio, "blkio.throttle.io_service_bytes");
		src_file(s, F_IOOPS, t->cg_blkio, "blkio.throttle.io_serviced");
	} else if (t->cg_version == 2) {
		/* cpu.stat exists in every v2 cgroup, even with no controller enabled (the core keeps
		 * usage_usec); memory.* and io.stat need their controllers, so they may be missing. */
		src_file(s, F_CPU, t->cg_path, "cpu.stat");
		src_file(s, F_MEM, t->cg_path, "memory.current");
		src_file(s, F_MEMMAX, t->cg_path, "memory.peak");
		src_file(s, F_IOBYTES, t->cg_path, "io.stat");
	}
	if (s->path[F_CPU] && s->fd[F_CPU] < 0) {
		int e = errno;
		md_err_set(err, e == ENOENT ? MD_EXIT_NOTFOUND : MD_EXIT_FAIL, e, "cgroup CPU counter `%s`",
			   s->path[F_CPU]);
		md_meter_src_close(s);
		return -1;
	}
	s->link = t->net_link ? strdup(t->net_link) : NULL;
	s->netns = t->net_netns ? strdup(t->net_netns) : NULL;
	s->qmp = t->qmp ? strdup(t->qmp) : NULL;
	*out = s;
	return 0;
}

void md_meter_src_close(struct md_meter_src *s)
{
	if (s == NULL)
		return;
	for (int i = 0; i < F_MAX; i++) {
		if (s->fd[i] >= 0)
			close(s->fd[i]);
		free(s->path[i]);
	}
	free(s->link);
	free(s->netns);
	free(s->qmp);
	free(s);
}

/* Read a whole cgroup file from offset 0 (seq_file regenerates it on a read at 0). */
static ssize_t read_fd(int fd, char *buf, size_t cap)
{
	size_t n = 0;

	while (n < cap - 1) {
		ssize_t r = pread(fd, buf + n, cap - 1 - n, (off_t)n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -1;
		if (r == 0)
			break;
		n += (size_t)r;
	}
	buf[n] = '\0';
	return (ssize_t)n;
}

static int read_u64(struct md_meter_src *s, int which, uint64_t *v, md_err **err)
{
	char buf[64], *end;

	if (read_fd(s->fd[which], buf, sizeof(buf)) < 0)
		return md_fail(err, errno, "read `%s`", s->path[which]);
	errno = 0;
	*v = strtoull(buf, &end, 10);
	if (errno || end == buf)
		return md_fail(err, 0, "read `%s`: not a number: %.20s", s->path[which], buf);
	return 0;
}

/* "key value" lines (v2 cpu.stat). */
static bool kv_u64(const char *buf, const char *key, uint64_t *v)
{
	size_t kl = strlen(key);

	for (const char *p = buf; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL) {
		if (strncmp(p, key, kl) == 0 && p[kl] == ' ') {
			*v = strtoull(p + kl + 1, NULL, 10);
			return true;
		}
	}
	return false;
}

/* v1 blkio.throttle.io_service_bytes / io_serviced: "MAJ:MIN Read N" lines, summed over devices. */
static void blkio_v1(const char *buf, uint64_t *rd, uint64_t *wr)
{
	char dev[32], op[16];
	unsigned long long n;

	*rd = *wr = 0;
	for (const char *p = buf; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL) {
		if (sscanf(p, "%31s %15s %llu", dev, op, &n) != 3)
			continue;
		if (strcmp(op, "Read") == 0)
			*rd += n;
		else if (strcmp(op, "Write") == 0)
			*wr += n;
	}
}

/* v2 io.stat: "MAJ:MIN rbytes=N wbytes=N rios=N wios=N ..." lines, summed over devices. */
static void iostat_v2(const char *buf, struct md_meter_counters *c)
{
	c->disk_read_bytes = c->disk_write_bytes = c->disk_read_ops = c->disk_write_ops = 0;
	for (const char *p = buf; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL) {
		const char *eol = strchr(p, '\n');
		for (const char *q = strchr(p, ' '); q && (!eol || q < eol); q = strchr(q + 1, ' ')) {
			unsigned long long n;
			if (sscanf(q + 1, "rbytes=%llu", &n) == 1)
				c->disk_read_bytes += n;
			else if (sscanf(q + 1, "wbytes=%llu", &n) == 1)
				c->disk_write_bytes += n;
			else if (sscanf(q + 1, "rios=%llu", &n) == 1)
				c->disk_read_ops += n;
			else if (sscanf(q + 1, "wios=%llu", &n) == 1)
				c->disk_write_ops += n;
		}
	}
}

/* ---- QEMU query-blockstats ------------------------------------------------------------------- */

/* Read QMP messages (one JSON object per line) until one that is not an event. */
static json_t *qmp_reply(int fd, char *buf, size_t cap, size_t *have, const char *sock, md_err **err)
{
	for (;;) {
		char *nl = memchr(buf, '\n', *have);
		if (nl) {
			json_t *j = json_loadb(buf, (size_t)(nl - buf), 0, NULL);
			size_t used = (size_t)(nl - buf) + 1;
			memmove(buf, nl + 1, *have - used);
			*have -= used;
			if (j && json_object_get(j, "event") == NULL)
				return j;
			json_decref(j);
			continue;
		}
		if (*have == cap)
			return md_fail(err, 0, "QMP `%s`: message too long", sock), NULL;
		ssize_t r = recv(fd, buf + *have, cap - *have, 0);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return md_fail(err, r < 0 ? errno : ECONNRESET, "QMP `%s`", sock), NULL;
		*have += (size_t)r;
	}
}

static int qmp_cmd(int fd, const char *cmd, char *buf, size_t cap, size_t *have, const char *sock, json_t **ret,
		   md_err **err)
{
	size_t len = strlen(cmd);
	json_t *j;

	if (send(fd, cmd, len, MSG_NOSIGNAL) != (ssize_t)len)
		return md_fail(err, errno, "QMP `%s`: send", sock);
	j = qmp_reply(fd, buf, cap, have, sock, err);
	if (j == NULL)
		return -1;
	if (json_object_get(j, "error")) {
		const char *d = json_string_value(json_object_get(json_object_get(j, "error"), "desc"));
		md_fail(err, 0, "QMP `%s`: %s", sock, d ? d : "error");
		json_decref(j);
		return -1;
	}
	*ret = j;
	return 0;
}

/* QEMU's block statistics are cumulative since QEMU started: the guest's own disk I/O. The socket is
 * opened for each reading and closed again, because a QMP socket serves one client at a time and
 * metald-boot needs it too. */
static int qmp_blockstats(const char *sock, struct md_meter_counters *c, md_err **err)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct timeval tv = { .tv_sec = 0, .tv_usec = 500000 };
	_cleanup_close_ int fd = -1;
	_cleanup_json_ json_t *greet = NULL, *caps = NULL, *stats = NULL;
	_cleanup_free_ char *buf = malloc(65536);
	size_t have = 0, i;
	json_t *dev;

	if (buf == NULL)
		return md_fail(err, ENOMEM, "QMP");
	if (strlen(sock) >= sizeof(sa.sun_path))
		return md_fail(err, ENAMETOOLONG, "QMP `%s`", sock);
	strcpy(sa.sun_path, sock);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return md_fail(err, errno, "QMP socket");
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		return md_fail(err, errno, "QMP `%s`: connect", sock);
	greet = qmp_reply(fd, buf, 65536, &have, sock, err);
	if (greet == NULL || json_object_get(greet, "QMP") == NULL)
		return greet ? md_fail(err, 0, "QMP `%s`: no greeting", sock) : -1;
	if (qmp_cmd(fd, "{\"execute\":\"qmp_capabilities\"}\n", buf, 65536, &have, sock, &caps, err) < 0 ||
	    qmp_cmd(fd, "{\"execute\":\"query-blockstats\"}\n", buf, 65536, &have, sock, &stats, err) < 0)
		return -1;
	c->disk_read_bytes = c->disk_write_bytes = c->disk_read_ops = c->disk_write_ops = 0;
	json_array_foreach(json_object_get(stats, "return"), i, dev) {
		json_t *st = json_object_get(dev, "stats");
#define ADD(field, key) c->field += (uint64_t)json_integer_value(json_object_get(st, key))
		ADD(disk_read_bytes, "rd_bytes");
		ADD(disk_write_bytes, "wr_bytes");
		ADD(disk_read_ops, "rd_operations");
		ADD(disk_write_ops, "wr_operations");
#undef ADD
	}
	return 0;
}

static int sample_net(struct md_meter_src *s, struct md_meter_sample *o, md_err **err)
{
	struct rtnl_link *link = NULL;
	struct nl_sock *sk;

	if (s->link == NULL)
		return 0;
	sk = nl_for(s->netns, err);
	if (sk == NULL)
		return -1;
	if (rtnl_link_get_kernel(sk, 0, s->link, &link) < 0)
		return 0; /* not there (yet, or any more): left out of `have` */
	/* The link is the host's end: what it transmits the VM receives, and the other way round. */
	o->c.net_rx_bytes = rtnl_link_get_stat(link, RTNL_LINK_TX_BYTES);
	o->c.net_tx_bytes = rtnl_link_get_stat(link, RTNL_LINK_RX_BYTES);
	o->c.net_rx_packets = rtnl_link_get_stat(link, RTNL_LINK_TX_PACKETS);
	o->c.net_tx_packets = rtnl_link_get_stat(link, RTNL_LINK_RX_PACKETS);
	rtnl_link_put(link);
	o->have |= MD_SAMPLE_NET;
	return 0;
}

int md_meter_sample(struct md_meter_src *s, unsigned what, struct md_meter_sample *o, md_err **err)
{
	char buf[8192];

	memset(o, 0, sizeof(*o));
	o->mono_ns = md_now_mono_ns();
	o->wall_ns = md_now_wall_ns();
	if ((what & MD_SAMPLE_CPU) && s->fd[F_CPU] >= 0) {
		if (s->version == 1) {
			if (read_u64(s, F_CPU, &o->c.cpu_ns, err) < 0)
				return -1;
		} else {
			uint64_t us;
			if (read_fd(s->fd[F_CPU], buf, sizeof(buf)) < 0)
				return md_fail(err, errno, "read `%s`", s->path[F_CPU]);
			if (!kv_u64(buf, "usage_usec", &us))
				return md_fail(err, 0, "read `%s`: no usage_usec", s->path[F_CPU]);
			o->c.cpu_ns = us * 1000;
		}
		o->have |= MD_SAMPLE_CPU;
	}
	if ((what & MD_SAMPLE_MEM) && s->fd[F_MEM] >= 0) {
		if (read_u64(s, F_MEM, &o->mem_bytes, err) < 0)
			return -1;
		if ((what & MD_SAMPLE_MEMPEAK) && s->fd[F_MEMMAX] >= 0) {
			if (read_u64(s, F_MEMMAX, &o->mem_max, err) < 0)
				return -1;
			o->mem_max_known = true;
		}
		o->have |= MD_SAMPLE_MEM;
	}
	if ((what & MD_SAMPLE_DISK) && s->qmp) {
		/* the VMM's view of the guest's disk, for the VM's whole life (never mixed with the
		 * cgroup's); when QEMU does not answer, the disk counters are left out of this sample */
		md_err *qerr = NULL;
		if (qmp_blockstats(s->qmp, &o->c, &qerr) == 0)
			o->have |= MD_SAMPLE_DISK;
		else
			md_debug("%s", qerr->msg);
		md_err_free(&qerr);
	} else if ((what & MD_SAMPLE_DISK) && s->fd[F_IOBYTES] >= 0) {
		if (read_fd(s->fd[F_IOBYTES], buf, sizeof(buf)) < 0)
			return md_fail(err, errno, "read `%s`", s->path[F_IOBYTES]);
		if (s->version == 1) {
			blkio_v1(buf, &o->c.disk_read_bytes, &o->c.disk_write_bytes);
			if (s->fd[F_IOOPS] >= 0) {
				if (read_fd(s->fd[F_IOOPS], buf, sizeof(buf)) < 0)
					return md_fail(err, errno, "read `%s`", s->path[F_IOOPS]);
				blkio_v1(buf, &o->c.disk_read_ops, &o->c.disk_write_ops);
			}
		} else {
			iostat_v2(buf, &o->c);
		}
		o->have |= MD_SAMPLE_DISK;
	}
	if ((what & MD_SAMPLE_NET) && sample_net(s, o, err) < 0)
		return -1;
	return 0;
}

/* ---- JSON ------------------------------------------------------------------------------------- */

json_t *md_meter_counters_json(const struct md_meter_counters *c)
{
	return json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "cpu_ns", (json_int_t)c->cpu_ns,
			 "disk_read_bytes", (json_int_t)c->disk_read_bytes, "disk_write_bytes",
			 (json_int_t)c->disk_write_bytes, "disk_read_ops", (json_int_t)c->disk_read_ops,
			 "disk_write_ops", (json_int_t)c->disk_write_ops, "net_rx_bytes", (json_int_t)c->net_rx_bytes,
			 "net_tx_bytes", (json_int_t)c->net_tx_bytes, "net_rx_packets",
			 (json_int_t)c->net_rx_packets, "net_tx_packets", (json_int_t)c->net_tx_packets);
}

static uint64_t ju(json_t *o, const char *k)
{
	json_t *v = json_object_get(o, k);
	return json_is_integer(v) && json_integer_value(v) > 0 ? (uint64_t)json_integer_value(v) : 0;
}

int md_meter_counters_from_json(json_t *j, struct md_meter_counters *c)
{
	memset(c, 0, sizeof(*c));
	if (!json_is_object(j))
		return -1;
	c->cpu_ns = ju(j, "cpu_ns");
	c->disk_read_bytes = ju(j, "disk_read_bytes");
	c->disk_write_bytes = ju(j, "disk_write_bytes");
	c->disk_read_ops = ju(j, "disk_read_ops");
	c->disk_write_ops = ju(j, "disk_write_ops");
	c->net_rx_bytes = ju(j, "net_rx_bytes");
	c->net_tx_bytes = ju(j, "net_tx_bytes");
	c->net_rx_packets = ju(j, "net_rx_packets");
	c->net_tx_packets = ju(j, "net_tx_packets");
	return 0;
}

json_t *md_meter_sample_json(const struct md_meter_target *t, const struct md_meter_sample *s)
{
	json_t *o = json_pack("{s:s, s:I, s:I}", "vm", t->id, "mono_ns", (json_int_t)s->mono_ns, "wall_ns",
			      (json_int_t)s->wall_ns);

	if (t->started_wall_ns && s->wall_ns > t->started_wall_ns)
		json_object_set_new(o, "uptime_ns", json_integer((json_int_t)(s->wall_ns - t->started_wall_ns)));
	json_object_set_new(o, "cpu_ns", s->have & MD_SAMPLE_CPU ? json_integer((json_int_t)s->c.cpu_ns) : json_null());
	json_object_set_new(o, "memory_bytes",
			    s->have & MD_SAMPLE_MEM ? json_integer((json_int_t)s->mem_bytes) : json_null());
	json_object_set_new(o, "memory_peak_bytes",
			    s->mem_max_known ? json_integer((json_int_t)s->mem_max) : json_null());
#define C(bit, name, field) \
	json_object_set_new(o, name, s->have & (bit) ? json_integer((json_int_t)s->c.field) : json_null())
	C(MD_SAMPLE_DISK, "disk_read_bytes", disk_read_bytes);
	C(MD_SAMPLE_DISK, "disk_write_bytes", disk_write_bytes);
	C(MD_SAMPLE_DISK, "disk_read_ops", disk_read_ops);
	C(MD_SAMPLE_DISK, "disk_write_ops", disk_write_ops);
	C(MD_SAMPLE_NET, "net_rx_bytes", net_rx_bytes);
	C(MD_SAMPLE_NET, "net_tx_bytes", net_tx_bytes);
	C(MD_SAMPLE_NET, "net_rx_packets", net_rx_packets);
	C(MD_SAMPLE_NET, "net_tx_packets", net_tx_packets);
#undef C
	return o;
}
