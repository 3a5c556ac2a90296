/* Firecracker's own metrics: lines of per-flush deltas in a file or FIFO, summed into counters. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <jansson.h>

#include "cleanup.h"
#include "log.h"
#include "meter-fc.h"

static uint64_t field(json_t *o, const char *group, const char *key)
{
	json_t *v = json_object_get(json_object_get(o, group), key);
	return json_is_integer(v) && json_integer_value(v) > 0 ? (uint64_t)json_integer_value(v) : 0;
}

bool md_fc_line(const char *line, size_t len, struct md_meter_counters *sum)
{
	json_t *o = json_loadb(line, len, 0, NULL);

	if (!json_is_object(o) || json_object_get(o, "utc_timestamp_ms") == NULL) {
		json_decref(o);
		return false;
	}
	sum->disk_read_bytes += field(o, "block", "read_bytes");
	sum->disk_write_bytes += field(o, "block", "write_bytes");
	sum->disk_read_ops += field(o, "block", "read_count");
	sum->disk_write_ops += field(o, "block", "write_count");
	sum->net_rx_bytes += field(o, "net", "rx_bytes_count");
	sum->net_tx_bytes += field(o, "net", "tx_bytes_count");
	sum->net_rx_packets += field(o, "net", "rx_packets_count");
	sum->net_tx_packets += field(o, "net", "tx_packets_count");
	json_decref(o);
	return true;
}

/* A regular file is kept open from the first time it is there: the last lines a VMM wrote stay
 * readable when its jail (and the file's name) is removed right after it exits. Not following a
 * link: the file is in a directory the VMM owns. */
static int open_file(struct md_fc_reader *r, md_err **err)
{
	struct stat st;
	int fd = open(r->path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);

	if (fd < 0)
		return errno == ENOENT ? 0 : md_fail(err, errno, "open");
	if (fstat(fd, &st) < 0) {
		int e = errno;
		close(fd);
		return md_fail(err, e, "stat");
	}
	if (!S_ISREG(st.st_mode)) {
		close(fd);
		return md_fail(err, 0, "not a regular file");
	}
	r->fd = fd;
	r->dev = st.st_dev;
	r->ino = st.st_ino;
	return 0;
}

int md_fc_reader_open(struct md_fc_reader *r, const char *path, uint64_t off, md_err **err)
{
	struct stat st;

	memset(r, 0, sizeof(*r));
	r->fd = -1;
	r->path = strdup(path);
	r->off = off;
	if (stat(path, &st) == 0 && S_ISFIFO(st.st_mode)) {
		r->fifo = true;
		/* O_NONBLOCK: opening a FIFO for reading must not wait for a writer */
		r->fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
		if (r->fd < 0) {
			int e = errno;
			md_fc_reader_close(r);
			return md_fail(err, e, "Firecracker metrics `%s`", path);
		}
	} else if (open_file(r, err) < 0) {
		md_fc_reader_close(r);
		return md_err_wrap(err, "Firecracker metrics `%s`", path);
	}
	return 0;
}

void md_fc_reader_close(struct md_fc_reader *r)
{
	if (r->fd >= 0)
		close(r->fd);
	free(r->path);
	free(r->partial);
	memset(r, 0, sizeof(*r));
	r->fd = -1;
}

/* Sum the complete lines of buf[0..len); returns the bytes they take. */
static size_t sum_lines(const char *buf, size_t len, struct md_meter_counters *sum, unsigned *lines)
{
	size_t used = 0;

	for (;;) {
		const char *nl = memchr(buf + used, '\n', len - used);
		if (nl == NULL)
			return used;
		if (md_fc_line(buf + used, (size_t)(nl - (buf + used)), sum))
			(*lines)++;
		used = (size_t)(nl - buf) + 1;
	}
}

/* The complete lines of the open regular file after the position. */
static int read_file(struct md_fc_reader *r, struct md_meter_counters *sum, unsigned *lines, md_err **err)
{
	char chunk[65536];
	_cleanup_free_ char *buf = NULL;
	size_t cap = 0, len = 0;
	struct stat st;

	if (fstat(r->fd, &st) < 0)
		return md_fail(err, errno, "Firecracker metrics `%s`", r->path);
	if ((uint64_t)st.st_size < r->off) {
		r->off = 0; /* rewritten from its start: its lines are all new */
		r->gen++;
		r->freed = 0;
	}
	r->read = true;
	for (;;) {
		ssize_t n;
		if (cap - len < sizeof(chunk)) {
			char *nb = realloc(buf, cap + sizeof(chunk) * 4);
			if (nb == NULL)
				return md_fail(err, ENOMEM, "Firecracker metrics");
			buf = nb;
			cap += sizeof(chunk) * 4;
		}
		n = pread(r->fd, buf + len, cap - len, (off_t)(r->off + len));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return md_fail(err, errno, "Firecracker metrics `%s`", r->path);
		if (n == 0)
			break;
		len += (size_t)n;
	}
	r->off += sum_lines(buf ? buf : "", len, sum, lines);
	return 0;
}

int md_fc_read(struct md_fc_reader *r, struct md_meter_counters *sum, unsigned *lines, md_err **err)
{
	char chunk[65536];

	*lines = 0;
	if (r->fifo) {
		for (;;) {
			ssize_t n = read(r->fd, chunk, sizeof(chunk));
			char *nb;
			size_t used;

			if (n < 0 && errno == EINTR)
				continue;
			if (n < 0 && errno == EAGAIN)
				return 0;
			if (n < 0)
				return md_fail(err, errno, "Firecracker metrics `%s`", r->path);
			if (n == 0)
				return 0; /* no writer (yet, or any more) */
			nb = realloc(r->partial, r->partial_len + (size_t)n);
			if (nb == NULL)
				return md_fail(err, ENOMEM, "Firecracker metrics");
			r->partial = nb;
			memcpy(r->partial + r->partial_len, chunk, (size_t)n);
			r->partial_len += (size_t)n;
			used = sum_lines(r->partial, r->partial_len, sum, lines);
			memmove(r->partial, r->partial + used, r->partial_len - used);
			r->partial_len -= used;
		}
	}
	{
		struct stat st;

		if (r->fd < 0 && open_file(r, err) < 0)
			return md_err_wrap(err, "Firecracker metrics `%s`", r->path);
		if (r->fd < 0)
			return 0; /* not there (yet, or any more) */
		if (read_file(r, sum, lines, err) < 0)
			return -1;
		/* another file under the name: a new VMM process, whose lines are all new */
		if (lstat(r->path, &st) == 0 && S_ISREG(st.st_mode) && (st.st_dev != r->dev || st.st_ino != r->ino)) {
			close(r->fd);
			r->fd = -1;
			r->off = 0;
			r->gen++;
			r->freed = 0;
			if (open_file(r, err) < 0)
				return md_err_wrap(err, "Firecracker metrics `%s`", r->path);
			if (r->fd >= 0 && read_file(r, sum, lines, err) < 0)
				return -1;
		}
	}
	return 0;
}

#define RELEASE_STEP (1U << 20)

void md_fc_release(struct md_fc_reader *r, unsigned gen, uint64_t upto)
{
	char self[64];
	struct stat st;
	int fd, e;

	upto &= ~(uint64_t)(RELEASE_STEP - 1);
	if (r->fifo || r->fd < 0 || !r->read || gen != r->gen || upto > r->off || r->freed == UINT64_MAX ||
	    upto <= r->freed)
		return;
	/* the file the VMM was given has no other name: one linked in from elsewhere is left alone */
	if (fstat(r->fd, &st) < 0 || st.st_nlink > 1) {
		r->freed = UINT64_MAX;
		return;
	}
	/* the open file itself, for writing (the name may be gone, or be another file's by now) */
	snprintf(self, sizeof(self), "/proc/self/fd/%d", r->fd);
	fd = open(self, O_WRONLY | O_CLOEXEC);
	if (fd >= 0 && fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, (off_t)upto) == 0) {
		r->freed = upto;
		close(fd);
		return;
	}
	e = errno;
	if (fd >= 0)
		close(fd);
	md_debug("Firecracker metrics `%s`: not giving back what was read (%s)", r->path, strerror(e));
	/* for good when the file system or the permissions say no; otherwise at the next MiB */
	if (e == EOPNOTSUPP || e == ENOSYS || e == EPERM || e == EACCES || e == EINVAL || e == EROFS)
		r->freed = UINT64_MAX;
}
