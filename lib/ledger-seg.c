/* The meter ledger's sealed segments: naming, listing, reading across them, rotation and pruning. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cleanup.h"
#include "ledger-seg.h"
#include "log.h"
#include "state.h"

#define LOCK_NAME "segments.lock"
#define NEW_NAME "ledger.jsonl.new"

/* Test-only fault hook: METALD_FAULT=meter-rotate:<step> kills the meter at that step of a
 * rotation, so tests can prove that a crash anywhere in it loses and repeats nothing. */
static void fault_point(const char *step)
{
	const char *f = getenv("METALD_FAULT");

	if (f && strncmp(f, "meter-rotate:", 13) == 0 && strcmp(f + 13, step) == 0)
		raise(SIGKILL);
}

bool md_ledger_seg_parse(const char *name, uint64_t *base)
{
	const char *p = name + 7;
	uint64_t v = 0;
	size_t digits = 0;

	if (strncmp(name, "ledger.", 7) != 0)
		return false;
	for (; *p >= '0' && *p <= '9'; p++, digits++) {
		if (v > (UINT64_MAX - 9) / 10)
			return false;
		v = v * 10 + (uint64_t)(*p - '0');
	}
	if (digits == 0 || strcmp(p, ".jsonl") != 0)
		return false;
	*base = v;
	return true;
}

char *md_ledger_seg_name(uint64_t base)
{
	return md_strdup_printf("ledger.%020llu.jsonl", (unsigned long long)base);
}

/* the base a "segment" first line names, or false */
static bool header_base(const char *path, uint64_t *base)
{
	_cleanup_fclose_ FILE *f = fopen(path, "re");
	_cleanup_free_ char *line = NULL;
	size_t cap = 0;
	ssize_t n;
	json_t *j, *b;
	bool ok = false;

	if (f == NULL || (n = getline(&line, &cap, f)) <= 0 || line[n - 1] != '\n')
		return false;
	j = json_loadb(line, (size_t)n - 1, 0, NULL);
	b = json_object_get(j, "base");
	if (json_is_string(json_object_get(j, "type")) && strcmp(json_string_value(json_object_get(j, "type")), "segment") == 0 &&
	    json_is_integer(b) && json_integer_value(b) >= 0) {
		*base = (uint64_t)json_integer_value(b);
		ok = true;
	}
	json_decref(j);
	return ok;
}

static int cmp_file(const void *a, const void *b)
{
	const struct md_ledger_file *x = a, *y = b;
	return x->base < y->base ? -1 : x->base > y->base;
}

static void push(struct md_ledger_files *fl, char *path, uint64_t base, const struct stat *st, bool active,
		 bool header)
{
	fl->f = realloc(fl->f, (fl->n + 1) * sizeof(*fl->f));
	if (fl->f == NULL)
		abort();
	fl->f[fl->n++] = (struct md_ledger_file){ path, base, (uint64_t)st->st_size,
						  (uint64_t)st->st_mtim.tv_sec * 1000000000ULL + (uint64_t)st->st_mtim.tv_nsec,
						  active, header };
}

int md_ledger_files_list(const char *dir, struct md_ledger_files *fl, md_err **err)
{
	_cleanup_closedir_ DIR *d = opendir(dir);
	_cleanup_free_ char *ap = md_path_join(dir, "ledger.jsonl");
	struct dirent *de;
	struct stat st;
	uint64_t base;

	fl->f = NULL;
	fl->n = 0;
	if (d == NULL) {
		if (errno == ENOENT)
			return 0;
		return md_fail(err, errno, "ledger `%s`", dir);
	}
	while ((de = readdir(d))) {
		char *p;
		if (!md_ledger_seg_parse(de->d_name, &base))
			continue;
		p = md_path_join(dir, de->d_name);
		if (stat(p, &st) < 0) { /* removed meanwhile */
			free(p);
			continue;
		}
		push(fl, p, base, &st, false, true);
	}
	if (fl->n)
		qsort(fl->f, fl->n, sizeof(*fl->f), cmp_file);
	if (stat(ap, &st) == 0) {
		bool h = header_base(ap, &base);
		if (!h)
			base = fl->n ? fl->f[fl->n - 1].base + fl->f[fl->n - 1].size : 0;
		push(fl, steal_pointer(&ap), base, &st, true, h);
	}
	return 0;
}

void md_ledger_files_free(struct md_ledger_files *fl)
{
	for (size_t i = 0; i < fl->n; i++)
		free(fl->f[i].path);
	free(fl->f);
	fl->f = NULL;
	fl->n = 0;
}

struct shift {
	md_ledger_cb cb;
	void *arg;
	uint64_t base;
};

static int shift_cb(json_t *e, uint64_t off, uint64_t end, void *arg)
{
	struct shift *s = arg;
	return s->cb ? s->cb(e, s->base + off, s->base + end, s->arg) : 0;
}

#define INDEX_NAME "segments.json"

static json_t *index_load(const char *dir)
{
	_cleanup_free_ char *ip = md_path_join(dir, INDEX_NAME);
	json_t *ix = NULL;

	if (md_json_read(ip, &ix, NULL) < 0 || !json_is_object(ix)) {
		json_decref(ix);
		return json_object();
	}
	return ix;
}

void md_ledger_seg_index(const char *dir, uint64_t base, uint64_t min_end_wall)
{
	_cleanup_free_ char *ip = md_path_join(dir, INDEX_NAME);
	_cleanup_json_ json_t *ix = index_load(dir);
	struct md_ledger_files fl;
	json_t *keep = json_object();
	char key[32];
	md_err *err = NULL;

	snprintf(key, sizeof(key), "%020llu", (unsigned long long)base);
	json_object_set_new(ix, key, json_integer((json_int_t)min_end_wall));
	/* only segments that are still there (when they cannot be listed: next time) */
	if (md_ledger_files_list(dir, &fl, NULL) < 0) {
		json_decref(keep);
		return;
	}
	for (size_t i = 0; i < fl.n; i++) {
		json_t *v;

		snprintf(key, sizeof(key), "%020llu", (unsigned long long)fl.f[i].base);
		if (!fl.f[i].active && (v = json_object_get(ix, key)))
			json_object_set(keep, key, v);
	}
	md_ledger_files_free(&fl);
	/* not flushed: a lost or older index only makes readers read more */
	if (md_json_write_replace(ip, keep, 0644, &err) < 0) {
		md_warn("ledger: segment index: %s", err->msg);
		md_err_free(&err);
	}
	json_decref(keep);
}

/* ix (or NULL): the segment index, whose segments that have no usage record ending before
 * until_wall are skipped */
static int scan_files(struct md_ledger_files *fl, uint64_t from, uint64_t to, uint64_t since_wall, json_t *ix,
		      uint64_t until_wall, md_ledger_cb cb, void *arg, uint64_t *good_end, uint64_t *torn,
		      uint64_t *bytes, md_err **err)
{

	*good_end = from;
	*torn = 0;
	for (size_t i = 0; i < fl->n; i++) {
		struct md_ledger_file *f = &fl->f[i];
		struct shift s = { cb, arg, f->base };
		uint64_t fe = f->base + f->size, g, t;
		int r;

		if (fe <= from && !(f->active && f->base >= from))
			continue;
		if (to && f->base >= to)
			break;
		if (!f->active && since_wall && f->mtime_ns < since_wall)
			continue;
		if (!f->active && ix) {
			char key[32];
			json_t *v;

			snprintf(key, sizeof(key), "%020llu", (unsigned long long)f->base);
			v = json_object_get(ix, key);
			if (json_is_integer(v) && json_integer_value(v) >= 0 &&
			    (uint64_t)json_integer_value(v) >= until_wall)
				continue;
		}
		r = md_ledger_scan(f->path, from > f->base ? from - f->base : 0, to && to < fe ? to - f->base : 0,
				   shift_cb, &s, &g, &t, err);
		if (r)
			return r;
		*good_end = f->base + g;
		if (bytes)
			*bytes += g;
		if (t && !f->active)
			md_warn("ledger segment `%s`: %llu bytes at its end are not a whole line (skipped)", f->path,
				(unsigned long long)t);
		else
			*torn = t;
	}
	return 0;
}

int md_ledger_scan_dir(const char *dir, uint64_t from, uint64_t to, md_ledger_cb cb, void *arg, uint64_t *good_end,
		       uint64_t *torn, md_err **err)
{
	struct md_ledger_files fl;
	int r;

	if (md_ledger_files_list(dir, &fl, err) < 0)
		return -1;
	r = scan_files(&fl, from, to, 0, NULL, 0, cb, arg, good_end, torn, NULL, err);
	md_ledger_files_free(&fl);
	return r;
}

int md_ledger_read_all(const char *dir, uint64_t since_wall, uint64_t until_wall, bool latest, md_ledger_cb cb,
		       void *arg, uint64_t *bytes, md_err **err)
{
	_cleanup_json_ json_t *ix = NULL;
	_cleanup_free_ char *lp = md_path_join(dir, LOCK_NAME);
	_cleanup_close_ int lfd = -1;
	struct md_ledger_files fl;
	uint64_t good, torn;
	int r;

	*bytes = 0;
	/* read-only, so a reader needs no write access; the meter makes the file when it opens the
	 * ledger, so without it no rotation can happen */
	lfd = open(lp, O_RDONLY | O_CLOEXEC);
	if (lfd < 0 && errno != ENOENT)
		return md_fail(err, errno, "ledger: lock `%s`", lp);
	while (lfd >= 0 && flock(lfd, LOCK_SH) < 0)
		if (errno != EINTR)
			return md_fail(err, errno, "ledger: lock `%s`", lp);
	if (md_ledger_files_list(dir, &fl, err) < 0)
		return -1;
	size_t first = 0;
	if (latest && fl.n && fl.f[fl.n - 1].header)
		first = fl.n - 1;
	else if (latest && fl.n > 1)
		first = fl.n - 2; /* an active file without one continues the newest segment */
	for (size_t i = 0; i < fl.n; i++)
		*bytes += fl.f[i].size;
	ix = until_wall ? index_load(dir) : NULL;
	r = scan_files(&fl, fl.n ? fl.f[first].base : 0, 0, since_wall, ix, until_wall, cb, arg, &good, &torn, NULL,
		       err);
	*bytes -= torn;
	md_ledger_files_free(&fl);
	return r;
}

int md_ledger_seg_repair(const char *dir, md_err **err)
{
	_cleanup_free_ char *np = md_path_join(dir, NEW_NAME), *ap = md_path_join(dir, "ledger.jsonl");
	_cleanup_free_ char *lp = md_path_join(dir, LOCK_NAME);
	int fd = open(lp, O_RDONLY | O_CREAT | O_CLOEXEC, 0644); /* for readers (md_ledger_read_all) */

	if (fd < 0)
		return md_fail(err, errno, "ledger: `%s`", lp);
	close(fd);

	if (access(np, F_OK) < 0)
		return 0;
	if (access(ap, F_OK) == 0) {
		/* the crash came before the active file was sealed: that rotation did not happen */
		md_warn("ledger `%s`: removing `%s` of a rotation a crash interrupted before it sealed anything", dir,
			NEW_NAME);
		if (unlink(np) < 0)
			return md_fail(err, errno, "ledger: remove `%s`", np);
	} else {
		/* sealed, but the new active file (complete and on disk) was not yet in place */
		md_warn("ledger `%s`: finishing a rotation a crash interrupted", dir);
		if (rename(np, ap) < 0)
			return md_fail(err, errno, "ledger: rename `%s`", np);
	}
	return md_fsync_dir(dir, err);
}

int md_ledger_rotate(struct md_ledger *l, json_t *vms, md_err **err)
{
	_cleanup_free_ char *lp = md_path_join(l->dir, LOCK_NAME), *np = md_path_join(l->dir, NEW_NAME);
	_cleanup_free_ char *sname = md_ledger_seg_name(l->base), *sp = md_path_join(l->dir, sname);
	_cleanup_free_ char *s = NULL, *line = NULL;
	_cleanup_close_ int lfd = -1, fd = -1;
	json_t *h;
	size_t len;

	if (l->synced != l->end) {
		json_decref(vms);
		return md_fail(err, 0, "ledger: rotate: not synced");
	}
	h = json_pack("{s:I, s:s, s:I, s:o}", "seq", (json_int_t)(l->seq + 1), "type", "segment", "base",
		      (json_int_t)l->end, "vms", vms);
	s = json_dumps(h, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(h);
	line = md_strdup_printf("%s\n", s);
	len = strlen(line);
	/* readers in other processes hold it shared while they go through the files; the meter's loop
	 * must not wait for them: try once, the caller tries again later */
	lfd = md_lock(lp, true, 0, err);
	if (lfd < 0)
		return md_err_wrap(err, "ledger: rotate");
	/* opened as the active file is (read, append): once the renames are done nothing may fail, or
	 * the meter would append to the file that is now the sealed segment, whose name the next
	 * rotation would reuse */
	fd = open(np, O_RDWR | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0600);
	if (fd < 0 || write(fd, line, len) != (ssize_t)len || fsync(fd) < 0) {
		md_fail(err, errno ? errno : EIO, "ledger: rotate: write `%s`", np);
		unlink(np);
		return -1;
	}
	fault_point("new");
	if (rename(l->path, sp) < 0) {
		md_fail(err, errno, "ledger: rotate: rename to `%s`", sp);
		unlink(np);
		return -1;
	}
	if (md_fsync_dir(l->dir, err) < 0)
		md_warn("%s", (*err)->msg), md_err_free(err);
	fault_point("sealed");
	if (rename(np, l->path) < 0) {
		int e = errno;
		if (rename(sp, l->path) < 0) /* undo: the active file stays as it was */
			md_error("ledger: cannot undo a failed rotation: %s (the next start finishes it)", strerror(errno));
		unlink(np);
		return md_fail(err, e, "ledger: rotate: rename `%s`", np);
	}
	if (md_fsync_dir(l->dir, err) < 0)
		md_warn("%s", (*err)->msg), md_err_free(err);
	fault_point("renamed");
	close(l->fd);
	l->fd = steal_fd(&fd);
	l->base = l->end;
	l->end = l->synced = l->base + len;
	l->seq++;
	md_info("ledger: sealed `%s`", sname);
	return 0;
}

int md_ledger_prune(struct md_ledger *l, uint64_t acked_upto, uint64_t keep_ns, unsigned *removed, md_err **err)
{
	_cleanup_free_ char *lp = md_path_join(l->dir, LOCK_NAME);
	_cleanup_close_ int lfd = -1;
	struct md_ledger_files fl;
	uint64_t now = md_now_wall_ns();
	int rc = 0;

	*removed = 0;
	if (md_ledger_files_list(l->dir, &fl, err) < 0)
		return -1;
	for (size_t i = 0; i + 1 < fl.n; i++) {
		struct md_ledger_file *f = &fl.f[i];
		uint64_t end = fl.f[i + 1].base;

		/* a prefix only, and never the one an active file without a "segment" entry
		 * takes its base from */
		if (f->active || end > acked_upto || f->mtime_ns > now || now - f->mtime_ns < keep_ns ||
		    (fl.f[i + 1].active && !fl.f[i + 1].header))
			break;
		if (lfd < 0 && (lfd = md_lock(lp, true, 0, err)) < 0) {
			rc = md_err_wrap(err, "ledger: prune");
			break;
		}
		if (unlink(f->path) < 0) {
			rc = md_fail(err, errno, "ledger: remove `%s`", f->path);
			break;
		}
		md_info("ledger: removed `%s`: acknowledged and older than the retention", f->path);
		(*removed)++;
	}
	if (*removed && md_fsync_dir(l->dir, err) < 0)
		rc = -1;
	md_ledger_files_free(&fl);
	return rc;
}
