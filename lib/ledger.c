/* The meter's durable ledger: an append-only file of JSON lines, crash recovery, acked marks. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cleanup.h"
#include "ledger.h"
#include "ledger-seg.h"
#include "log.h"
#include "state.h"

static json_t *parse_line(const char *line, size_t len)
{
	json_t *j = json_loadb(line, len, JSON_REJECT_DUPLICATES, NULL);

	/* every line the meter writes is an object with a positive seq; anything else is damage */
	if (j && (!json_is_object(j) || !json_is_integer(json_object_get(j, "seq")) ||
		  !json_is_string(json_object_get(j, "type")))) {
		json_decref(j);
		j = NULL;
	}
	return j;
}

int md_ledger_scan(const char *path, uint64_t from, uint64_t to, md_ledger_cb cb, void *arg,
		   uint64_t *good_end, uint64_t *torn, md_err **err)
{
	_cleanup_fclose_ FILE *f = fopen(path, "re");
	_cleanup_free_ char *line = NULL;
	size_t cap = 0;
	uint64_t off = from, bad_at = 0;
	bool bad = false;
	ssize_t n;

	*good_end = from;
	*torn = 0;
	if (f == NULL) {
		if (errno == ENOENT)
			return 0;
		return md_fail(err, errno, "ledger `%s`", path);
	}
	if (fseeko(f, (off_t)from, SEEK_SET) < 0)
		return md_fail(err, errno, "ledger `%s`: seek", path);
	while ((to == 0 || off < to) && (n = getline(&line, &cap, f)) > 0) {
		uint64_t start = off;
		json_t *j;

		off += (uint64_t)n;
		if (line[n - 1] != '\n') { /* cut short: no newline */
			if (!bad) {
				bad = true;
				bad_at = start;
			}
			break;
		}
		j = parse_line(line, (size_t)n - 1);
		if (j == NULL) {
			if (!bad) {
				bad = true;
				bad_at = start;
			}
			continue;
		}
		if (bad) {
			json_decref(j);
			return md_fail(err, 0,
				       "ledger `%s`: damaged line at offset %llu followed by valid lines; not "
				       "repairing automatically (move the file aside to start a new ledger)",
				       path, (unsigned long long)bad_at);
		}
		*good_end = off;
		if (cb) {
			int r = cb(j, start, off, arg);
			json_decref(j);
			if (r)
				return r;
		} else {
			json_decref(j);
		}
	}
	if (ferror(f))
		return md_fail(err, errno, "ledger `%s`: read", path);
	if (bad)
		*torn = off - bad_at;
	return 0;
}

struct open_ctx {
	md_ledger_cb cb;
	void *arg;
	uint64_t seq;
	bool checked;
};

#define MISFIT 0x4d495346 /* scan result: the checkpoint does not fit this file */

static int open_cb(json_t *e, uint64_t off, uint64_t end, void *arg)
{
	struct open_ctx *c = arg;
	uint64_t seq = (uint64_t)json_integer_value(json_object_get(e, "seq"));

	if (!c->checked && seq != c->seq + 1)
		return MISFIT;
	c->checked = true;
	c->seq = seq;
	return c->cb ? c->cb(e, off, end, c->arg) : 0;
}

int md_ledger_open(struct md_ledger *l, const char *dir, md_ledger_cb cb, void *arg, md_err **err)
{
	return md_ledger_open_at(l, dir, 0, 0, cb, arg, err);
}

int md_ledger_open_at(struct md_ledger *l, const char *dir, uint64_t from, uint64_t from_seq, md_ledger_cb cb,
		      void *arg, md_err **err)
{
	struct open_ctx c = { cb, arg, from_seq, from == 0 };
	struct md_ledger_files fl = { 0 };
	struct md_ledger_file *af;
	uint64_t good, torn, asize;
	struct stat st;
	int r;

	memset(l, 0, sizeof(*l));
	l->fd = -1;
	if (md_mkdir_p(dir, 0700, err) < 0)
		return md_err_wrap(err, "ledger");
	if (md_ledger_seg_repair(dir, err) < 0)
		return -1;
	l->dir = strdup(dir);
	l->path = md_path_join(dir, "ledger.jsonl");
	l->fd = open(l->path, O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	if (l->fd < 0) {
		md_fail(err, errno, "ledger `%s`", l->path);
		goto fail;
	}
	if (fstat(l->fd, &st) < 0) {
		md_fail(err, errno, "ledger `%s`", l->path);
		goto fail;
	}
	if (md_ledger_files_list(dir, &fl, err) < 0)
		goto fail;
	af = &fl.f[fl.n - 1]; /* the active file, listed last */
	l->base = af->base;
	asize = (uint64_t)st.st_size;
	if (from == 0) {
		from = fl.f[0].base; /* the oldest file there is */
	} else {
		/* a checkpoint fits when it ends at a line's end (in whichever file holds that line) and
		 * the next line continues its seq */
		char last = 0;
		size_t i;
		int fd;

		for (i = 0; i < fl.n; i++)
			if (from > fl.f[i].base && from <= fl.f[i].base + fl.f[i].size)
				break;
		fd = i < fl.n ? open(fl.f[i].path, O_RDONLY | O_CLOEXEC) : -1;
		if (fd >= 0 && pread(fd, &last, 1, (off_t)(from - 1 - fl.f[i].base)) != 1)
			last = 0;
		if (fd >= 0)
			close(fd);
		if (last != '\n' && !(from == l->base && asize == 0)) {
			md_ledger_files_free(&fl);
			md_ledger_close(l);
			return 1;
		}
	}
	md_ledger_files_free(&fl);
	r = md_ledger_scan_dir(dir, from, 0, open_cb, &c, &good, &torn, err);
	if (r == MISFIT) {
		md_ledger_close(l);
		return 1;
	}
	if (r != 0) {
		if (*err == NULL)
			md_fail(err, 0, "ledger `%s`: scan stopped", l->path);
		goto fail;
	}
	if (good < l->base) /* nothing read from the active file (it is empty) */
		good = l->base;
	if (asize != good - l->base) {
		/* A crash in the middle of a write left part of a line: cut it. Its usage is not lost:
		 * the counters are cumulative, so the next record covers that period too. */
		md_warn("ledger `%s`: cutting %llu bytes of a line cut short by a crash at offset %llu", l->path,
			(unsigned long long)(asize - (good - l->base)), (unsigned long long)(good - l->base));
		if (ftruncate(l->fd, (off_t)(good - l->base)) < 0 || fsync(l->fd) < 0) {
			md_fail(err, errno, "ledger `%s`: cut torn tail", l->path);
			goto fail;
		}
	}
	(void)torn;
	l->end = l->synced = good;
	l->seq = c.seq;
	l->last_sync_mono = md_now_mono_ns();
	return 0;
fail:
	md_ledger_files_free(&fl);
	md_ledger_close(l);
	return -1;
}

void md_ledger_close(struct md_ledger *l)
{
	if (l->fd >= 0)
		close(l->fd);
	free(l->dir);
	free(l->path);
	memset(l, 0, sizeof(*l));
	l->fd = -1;
}

int md_ledger_append(struct md_ledger *l, json_t **entries, size_t n, md_err **err)
{
	char *buf = NULL;
	size_t len = 0, done = 0;
	FILE *m;
	int rc = 0;

	if (n == 0)
		return 0;
	m = open_memstream(&buf, &len);
	if (m == NULL)
		return md_fail(err, errno, "ledger: buffer");
	for (size_t i = 0; i < n; i++) {
		_cleanup_free_ char *s = NULL;
		/* seq goes first so a person reading the file sees it first */
		json_t *o = json_object();
		json_object_set_new(o, "seq", json_integer((json_int_t)(l->seq + 1 + i)));
		json_object_update(o, entries[i]);
		json_object_set_new(entries[i], "seq", json_integer((json_int_t)(l->seq + 1 + i)));
		s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
		json_decref(o);
		fputs(s, m);
		fputc('\n', m);
	}
	fclose(m);
	while (done < len) {
		ssize_t w = write(l->fd, buf + done, len - done);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0) {
			int e = errno;
			/* all or nothing: cut back what this batch wrote, so no partial line stays */
			if (done && ftruncate(l->fd, (off_t)(l->end - l->base)) < 0)
				md_error("ledger `%s`: cannot cut back a partial write: %s", l->path, strerror(errno));
			for (size_t i = 0; i < n; i++)
				json_object_del(entries[i], "seq");
			rc = md_fail(err, e, "ledger `%s`: write", l->path);
			break;
		}
		done += (size_t)w;
	}
	free(buf);
	if (rc == 0) {
		l->end += len;
		l->seq += n;
	}
	return rc;
}

int md_ledger_sync(struct md_ledger *l, md_err **err)
{
	if (l->synced == l->end)
		return 0;
	if (fdatasync(l->fd) < 0)
		return md_fail(err, errno, "ledger `%s`: fsync", l->path);
	l->synced = l->end;
	l->last_sync_mono = md_now_mono_ns();
	return 0;
}

int md_ledger_acked_load(const char *dir, json_t **acked, md_err **err)
{
	_cleanup_free_ char *p = md_path_join(dir, "acked.json");

	if (md_json_read(p, acked, err) < 0) {
		if (md_err_exit(*err) != MD_EXIT_NOTFOUND)
			return -1;
		md_err_free(err);
		*acked = json_object();
		return 0;
	}
	if (!json_is_object(*acked)) {
		json_decref(*acked);
		*acked = NULL;
		return md_fail(err, 0, "`%s`: not a JSON object", p);
	}
	return 0;
}

int md_ledger_acked_store(const char *dir, json_t *acked, md_err **err)
{
	_cleanup_free_ char *p = md_path_join(dir, "acked.json");
	_cleanup_free_ char *s = json_dumps(acked, JSON_COMPACT | JSON_SORT_KEYS);
	_cleanup_free_ char *line = NULL;

	if (s == NULL)
		return md_fail(err, ENOMEM, "`%s`", p);
	line = md_strdup_printf("%s\n", s);
	return md_write_atomic(p, line, strlen(line), 0600, err);
}
