/* Cgroups v1 and v2: hierarchy discovery from mountinfo, create/write/attach/find/remove. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cgroup.h"
#include "cleanup.h"
#include "state.h"

struct cg_mount {
	char *dir;
	char *opts; /* v1 super options (controllers among them) */
	int version;
};

static void mounts_free(struct cg_mount *m, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(m[i].dir);
		free(m[i].opts);
	}
	free(m);
}

/* mountinfo escapes space, tab, newline and backslash as \ooo. */
static void unescape(char *s)
{
	char *w = s;

	for (; *s; s++) {
		if (s[0] == '\\' && s[1] >= '0' && s[1] <= '7' && s[2] && s[3]) {
			*w++ = (char)(((s[1] - '0') << 6) | ((s[2] - '0') << 3) | (s[3] - '0'));
			s += 3;
		} else
			*w++ = *s;
	}
	*w = '\0';
}

static bool under(const char *dir, const char *root)
{
	size_t n = strlen(root);

	while (n > 1 && root[n - 1] == '/')
		n--;
	if (strncmp(dir, root, n) != 0)
		return false;
	return dir[n] == '\0' || dir[n] == '/' || (n == 1 && root[0] == '/');
}

/* The cgroup mounts at or below root, in mount order. */
static int mounts_read(const char *root, struct cg_mount **out, size_t *nout, md_err **err)
{
	_cleanup_fclose_ FILE *f = fopen("/proc/self/mountinfo", "re");
	_cleanup_free_ char *line = NULL;
	size_t cap = 0, n = 0;
	struct cg_mount *m = NULL;

	if (f == NULL)
		return md_fail(err, errno, "open `/proc/self/mountinfo`");
	while (getline(&line, &cap, f) > 0) {
		char *fields[12], *save = NULL, *tok, *sep;
		int nf = 0;

		sep = strstr(line, " - ");
		if (sep == NULL)
			continue;
		*sep = '\0';
		for (tok = strtok_r(line, " ", &save); tok && nf < 6; tok = strtok_r(NULL, " ", &save))
			fields[nf++] = tok;
		if (nf < 5)
			continue;
		save = NULL;
		char *fstype = strtok_r(sep + 3, " ", &save);
		char *src = fstype ? strtok_r(NULL, " ", &save) : NULL;
		char *super = src ? strtok_r(NULL, " \n", &save) : NULL;
		int version;

		if (fstype == NULL)
			continue;
		if (strcmp(fstype, "cgroup2") == 0)
			version = 2;
		else if (strcmp(fstype, "cgroup") == 0)
			version = 1;
		else
			continue;
		if (strcmp(fields[3], "/") != 0) /* a bind of a sub-cgroup: not a hierarchy root */
			continue;
		unescape(fields[4]);
		if (!under(fields[4], root))
			continue;
		struct cg_mount *nm = realloc(m, (n + 1) * sizeof(*m));
		if (nm == NULL) {
			mounts_free(m, n);
			return md_fail(err, ENOMEM, "read mounts");
		}
		m = nm;
		m[n].dir = strdup(fields[4]);
		m[n].opts = strdup(super ? super : "");
		m[n].version = version;
		n++;
	}
	*out = m;
	*nout = n;
	return 0;
}

static bool opt_has(const char *opts, const char *name)
{
	size_t l = strlen(name);

	for (const char *p = opts; p && *p;) {
		const char *c = strchr(p, ',');
		size_t pl = c ? (size_t)(c - p) : strlen(p);

		if (pl == l && strncmp(p, name, l) == 0)
			return true;
		p = c ? c + 1 : NULL;
	}
	return false;
}

/* A v1 mount's controllers: its super options without rw/ro and other mount flags. */
static char *v1_controllers(const char *opts)
{
	static const char *const skip[] = { "rw", "ro", "noprefix", "clone_children", "xattr", "cpuset_v2_mode",
					    "favordynmods", "nofavordynmods" };
	_cleanup_free_ char *dup = strdup(opts);
	char *out = calloc(1, strlen(opts) + 1), *save = NULL;

	if (dup == NULL || out == NULL) {
		free(out);
		return NULL;
	}
	for (char *t = strtok_r(dup, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
		bool s = strncmp(t, "release_agent=", 14) == 0;

		for (size_t i = 0; i < MD_ARRAY_SIZE(skip) && !s; i++)
			s = strcmp(t, skip[i]) == 0;
		if (s)
			continue;
		if (*out)
			strcat(out, ",");
		strcat(out, t);
	}
	return out;
}

const char *md_cgroup_root(const char *root)
{
	const char *e = getenv("UNKEY_METALD_CGROUP_ROOT");

	if (root && *root)
		return root;
	if (e && *e)
		return e;
	return MD_CGROUP_DEFAULT_ROOT;
}

static const struct cg_mount *v2_mount(const struct cg_mount *m, size_t n, const char *root)
{
	for (size_t i = 0; i < n; i++)
		if (m[i].version == 2 && under(m[i].dir, root) && strlen(m[i].dir) <= strlen(root) + 1)
			return &m[i]; /* the root itself */
	for (size_t i = 0; i < n; i++)
		if (m[i].version == 2)
			return &m[i];
	return NULL;
}

/* The version rule of md_cgroup_detect, on mounts already read. */
static int detect_in(const struct cg_mount *m, size_t n, const char *root, int *version, md_err **err)
{
	bool v1 = false;
	const struct cg_mount *v2 = v2_mount(m, n, root);

	for (size_t i = 0; i < n; i++)
		v1 |= m[i].version == 1;
	if (v2 && strcmp(v2->dir, root) == 0)
		*version = 2;
	else if (v1)
		*version = 1;
	else if (v2)
		*version = 2;
	else
		return md_missing(err, "no cgroup hierarchy is mounted at or below `%s`", root);
	return 0;
}

int md_cgroup_detect(const char *root, int *version, md_err **err)
{
	struct cg_mount *m = NULL;
	size_t n = 0;
	int rc;

	root = md_cgroup_root(root);
	if (mounts_read(root, &m, &n, err) < 0)
		return -1;
	rc = detect_in(m, n, root, version, err);
	mounts_free(m, n);
	return rc;
}

static int check_rel(const char *what, const char *p, bool allow_slash, md_err **err)
{
	if (p[0] == '/')
		return md_usage(err, "%s `%s`: must be a relative path", what, p);
	if (!allow_slash && strchr(p, '/'))
		return md_usage(err, "%s `%s`: must not contain '/'", what, p);
	for (const char *c = p; *c;) {
		const char *s = strchr(c, '/');
		size_t l = s ? (size_t)(s - c) : strlen(c);

		if (l == 0 || (l == 1 && c[0] == '.') || (l == 2 && c[0] == '.' && c[1] == '.'))
			return md_usage(err, "%s `%s`: empty, `.` and `..` components are not allowed", what, p);
		c = s ? s + 1 : c + l;
	}
	return 0;
}

int md_cgroup_new(struct md_cgroup **out, const char *root, int version, const char *parent, const char *id,
		  md_err **err)
{
	struct md_cgroup *cg;

	root = md_cgroup_root(root);
	if (*parent && check_rel("parent cgroup", parent, true, err) < 0)
		return -1;
	if (check_rel("cgroup name", id, false, err) < 0)
		return -1;
	if (version != MD_CG_AUTO && version != 1 && version != 2)
		return md_usage(err, "cgroup version %d: must be 1 or 2", version);
	/* mountinfo is read once: with ~100 mounts that alone costs ~0.1 ms */
	struct cg_mount *m = NULL;
	size_t nm = 0;
	if (mounts_read(root, &m, &nm, err) < 0)
		return -1;
	if (version == MD_CG_AUTO && detect_in(m, nm, root, &version, err) < 0) {
		mounts_free(m, nm);
		return -1;
	}
	cg = calloc(1, sizeof(*cg));
	if (cg == NULL) {
		mounts_free(m, nm);
		return md_fail(err, ENOMEM, "cgroup");
	}
	cg->version = version;
	cg->root = strdup(root);
	cg->parent = strdup(parent);
	cg->id = strdup(id);
	cg->v2_controllers = calloc(1, sizeof(char *));
	cg->mounts = m;
	cg->nmounts = nm;
	if (version == 2) {
		const struct cg_mount *v2 = v2_mount(m, cg->nmounts, root);

		if (v2 == NULL) {
			md_cgroup_free(cg);
			return md_missing(err, "no cgroup2 hierarchy is mounted at or below `%s`", root);
		}
		cg->dirs = calloc(1, sizeof(*cg->dirs));
		cg->n = 1;
		cg->dirs[0].mount = strdup(v2->dir);
		cg->dirs[0].path = *parent ? md_strdup_printf("%s/%s/%s", v2->dir, parent, id)
					   : md_strdup_printf("%s/%s", v2->dir, id);
	}
	*out = cg;
	return 0;
}

void md_cgroup_free(struct md_cgroup *cg)
{
	if (cg == NULL)
		return;
	for (size_t i = 0; i < cg->n; i++) {
		free(cg->dirs[i].mount);
		free(cg->dirs[i].controllers);
		free(cg->dirs[i].path);
	}
	for (char **c = cg->v2_controllers; c && *c; c++)
		free(*c);
	free(cg->v2_controllers);
	free(cg->dirs);
	mounts_free(cg->mounts, cg->nmounts);
	free(cg->root);
	free(cg->parent);
	free(cg->id);
	free(cg);
}

int md_cgroup_file_check(const char *file, char **controller, md_err **err)
{
	const char *dot;

	if (*file == '\0' || strchr(file, '/') || strcmp(file, ".") == 0 || strcmp(file, "..") == 0)
		return md_usage(err, "cgroup file `%s`: must be a file name such as `cpu.shares`", file);
	dot = strchr(file, '.');
	if (dot == NULL || dot == file || dot[1] == '\0')
		return md_usage(err, "cgroup file `%s`: must be <controller>.<name>, such as `memory.max`", file);
	*controller = strndup(file, (size_t)(dot - file));
	return 0;
}

static int add_dir(struct md_cgroup *cg, const struct cg_mount *m)
{
	struct md_cg_dir *nd;

	for (size_t i = 0; i < cg->n; i++)
		if (strcmp(cg->dirs[i].mount, m->dir) == 0)
			return 0;
	nd = realloc(cg->dirs, (cg->n + 1) * sizeof(*nd));
	if (nd == NULL)
		return -1;
	cg->dirs = nd;
	memset(&nd[cg->n], 0, sizeof(*nd));
	nd[cg->n].mount = strdup(m->dir);
	nd[cg->n].controllers = v1_controllers(m->opts);
	nd[cg->n].path = *cg->parent ? md_strdup_printf("%s/%s/%s", m->dir, cg->parent, cg->id)
				     : md_strdup_printf("%s/%s", m->dir, cg->id);
	cg->n++;
	return 0;
}

/* Read a small cgroup file, trailing newline stripped. */
static char *read_small(const char *path)
{
	char buf[4096];
	ssize_t r;
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return NULL;
	r = read(fd, buf, sizeof(buf) - 1);
	if (r < 0)
		return NULL;
	while (r > 0 && (buf[r - 1] == '\n' || buf[r - 1] == ' '))
		r--;
	buf[r] = '\0';
	return strdup(buf);
}

static bool word_in(const char *list, const char *w)
{
	size_t l = strlen(w);

	for (const char *p = list; p && *p;) {
		while (*p == ' ')
			p++;
		const char *e = strchr(p, ' ');
		size_t pl = e ? (size_t)(e - p) : strlen(p);

		if (pl == l && strncmp(p, w, l) == 0)
			return true;
		p = e;
	}
	return false;
}

int md_cgroup_need(struct md_cgroup *cg, const char *controller, md_err **err)
{
	if (cg->version == 2) {
		_cleanup_free_ char *path = md_path_join(cg->dirs[0].mount, "cgroup.controllers");
		_cleanup_free_ char *have = read_small(path);
		size_t k = 0;

		if (have == NULL)
			return md_fail(err, errno, "read `%s`", path);
		if (!word_in(have, controller))
			return md_missing(err, "cgroup controller `%s` is not available on the cgroup v2 hierarchy `%s` "
					       "(available: %s)",
					  controller, cg->dirs[0].mount, *have ? have : "none");
		for (; cg->v2_controllers[k]; k++)
			if (strcmp(cg->v2_controllers[k], controller) == 0)
				return 0;
		char **nc = realloc(cg->v2_controllers, (k + 2) * sizeof(char *));
		if (nc == NULL)
			return md_fail(err, ENOMEM, "cgroup");
		cg->v2_controllers = nc;
		nc[k] = strdup(controller);
		nc[k + 1] = NULL;
		return 0;
	}
	const struct cg_mount *m = cg->mounts;
	int rc = -1;

	for (size_t i = 0; i < cg->nmounts; i++) {
		if (m[i].version == 1 && opt_has(m[i].opts, controller)) {
			rc = add_dir(cg, &m[i]) < 0 ? md_fail(err, ENOMEM, "cgroup") : 0;
			break;
		}
	}
	if (rc < 0 && err && *err == NULL)
		md_missing(err, "cgroup controller `%s` has no cgroup v1 hierarchy mounted below `%s`", controller,
			   cg->root);
	return rc;
}

static int write_file(const char *path, const char *value, md_err **err)
{
	_cleanup_close_ int fd = open(path, O_WRONLY | O_CLOEXEC);
	size_t l = strlen(value);

	if (fd < 0)
		return md_fail(err, errno, "open `%s`", path);
	if (write(fd, value, l) != (ssize_t)l)
		return md_fail(err, errno, "write `%s` to `%s`", value, path);
	return 0;
}

/* v1 cpuset: a new cgroup starts with empty cpus/mems and refuses tasks; copy the parent's. */
static int cpuset_inherit(const char *dir, md_err **err)
{
	static const char *const files[] = { "cpuset.cpus", "cpuset.mems" };

	for (size_t i = 0; i < MD_ARRAY_SIZE(files); i++) {
		_cleanup_free_ char *mine = md_path_join(dir, files[i]);
		_cleanup_free_ char *cur = read_small(mine);
		_cleanup_free_ char *pdir = strdup(dir);
		char *slash = strrchr(pdir, '/');

		if (cur == NULL || *cur)
			continue;
		*slash = '\0';
		_cleanup_free_ char *theirs = md_path_join(pdir, files[i]);
		_cleanup_free_ char *val = read_small(theirs);
		if (val && *val && write_file(mine, val, err) < 0)
			return -1;
	}
	return 0;
}

static bool cg_populated(const struct md_cgroup *cg, const char *dir)
{
	_cleanup_free_ char *p = md_path_join(dir, "cgroup.procs");
	_cleanup_free_ char *s = read_small(p);

	(void)cg;
	return s && *s;
}

/* mkdir every component of parent/id below mount; counts what it made. */
static int mkdir_chain(struct md_cg_dir *d, const char *parent, const char *id, bool cpuset, md_err **err)
{
	_cleanup_free_ char *rel = *parent ? md_strdup_printf("%s/%s", parent, id) : strdup(id);
	_cleanup_free_ char *cur = strdup(d->mount);
	char *save = NULL;

	for (char *t = strtok_r(rel, "/", &save); t; t = strtok_r(NULL, "/", &save)) {
		char *next = md_path_join(cur, t);

		free(cur);
		cur = next;
		if (mkdir(cur, 0755) == 0) {
			d->created++;
			if (cpuset && cpuset_inherit(cur, err) < 0)
				return -1;
		} else if (errno != EEXIST)
			return md_fail(err, errno, "mkdir `%s`", cur);
		else
			d->created = 0; /* only a run of new directories at the end counts */
	}
	return 0;
}

static int v2_enable(struct md_cgroup *cg, md_err **err)
{
	struct md_cg_dir *d = &cg->dirs[0];
	_cleanup_free_ char *rel = strdup(cg->parent);
	_cleanup_free_ char *cur = strdup(d->mount);
	char *save = NULL, *t = NULL;
	bool first = true;

	if (cg->v2_controllers[0] == NULL)
		return 0;
	/* From the mount root down to the parent: each level hands the controllers to its children. */
	for (;;) {
		_cleanup_free_ char *sc = md_path_join(cur, "cgroup.subtree_control");
		_cleanup_free_ char *have = read_small(sc);

		for (char **c = cg->v2_controllers; *c; c++) {
			if (have && word_in(have, *c))
				continue;
			_cleanup_free_ char *v = md_strdup_printf("+%s", *c);
			if (write_file(sc, v, err) < 0) {
				if ((*err)->status == EBUSY)
					md_err_wrap(err, "enable controller `%s` (the cgroup has processes of its own: "
							 "cgroup v2 allows controllers only on cgroups without them)",
						    *c);
				return -1;
			}
		}
		t = strtok_r(first ? rel : NULL, "/", &save);
		first = false;
		if (t == NULL || *rel == '\0')
			break;
		char *next = md_path_join(cur, t);
		free(cur);
		cur = next;
	}
	return 0;
}

int md_cgroup_create(struct md_cgroup *cg, md_err **err)
{
	for (size_t i = 0; i < cg->n; i++) {
		struct md_cg_dir *d = &cg->dirs[i];
		bool cpuset = d->controllers && opt_has(d->controllers, "cpuset");
		int tries;

		if (access(d->path, F_OK) == 0 && cg_populated(cg, d->path))
			return md_conflict(err, "cgroup `%s` exists and has processes in it", d->path);
		/* A concurrent remove of an empty shared parent may race with us: try again. */
		for (tries = 0;; tries++) {
			if (mkdir_chain(d, cg->parent, cg->id, cpuset, err) == 0)
				break;
			if (tries < 5 && (*err)->status == ENOENT) {
				md_err_free(err);
				continue;
			}
			return -1;
		}
		/* v2: enabling a controller in a parent makes its files appear in existing children. */
		if (cg->version == 2 && v2_enable(cg, err) < 0)
			return -1;
	}
	return 0;
}

int md_cgroup_write(struct md_cgroup *cg, const char *file, const char *value, md_err **err)
{
	_cleanup_free_ char *ctrl = NULL;
	const char *dir;

	if (md_cgroup_file_check(file, &ctrl, err) < 0)
		return -1;
	dir = md_cgroup_path(cg, ctrl);
	if (dir == NULL)
		return md_missing(err, "cgroup controller `%s` is not in use", ctrl);
	_cleanup_free_ char *path = md_path_join(dir, file);
	if (access(path, F_OK) < 0)
		return md_usage(err, "cgroup file `%s`: no such file in `%s`", file, dir);
	if (write_file(path, value, err) < 0) {
		if ((*err)->status == EINVAL || (*err)->status == ERANGE)
			(*err)->code = MD_EXIT_USAGE; /* the kernel refused the value itself */
		return -1;
	}
	return 0;
}

int md_cgroup_attach(struct md_cgroup *cg, pid_t pid, md_err **err)
{
	char buf[32];

	snprintf(buf, sizeof(buf), "%d", (int)pid);
	for (size_t i = 0; i < cg->n; i++) {
		/* v1, the caller itself: "0" into `tasks` moves just this thread, and the kernel then
		 * skips the global threadgroup lock whose RCU grace period costs milliseconds per write
		 * (cgroup_procs_write_start). The caller must be single-threaded. */
		_cleanup_free_ char *p = md_path_join(cg->dirs[i].path,
						      cg->version == 1 && pid == 0 ? "tasks" : "cgroup.procs");
		if (write_file(p, buf, err) < 0)
			return md_err_wrap(err, "add process to cgroup");
	}
	return 0;
}

int md_cgroup_find(struct md_cgroup *cg, md_err **err)
{
	const struct cg_mount *m = cg->mounts;
	size_t n = cg->nmounts;
	int found = 0;

	if (cg->version == 2)
		return access(cg->dirs[0].path, F_OK) == 0 ? 1 : 0;
	for (size_t i = 0; i < n; i++) {
		if (m[i].version != 1)
			continue;
		_cleanup_free_ char *p = *cg->parent ? md_strdup_printf("%s/%s/%s", m[i].dir, cg->parent, cg->id)
						     : md_strdup_printf("%s/%s", m[i].dir, cg->id);
		if (access(p, F_OK) == 0) {
			if (add_dir(cg, &m[i]) < 0)
				return md_fail(err, ENOMEM, "cgroup");
			found++;
		}
	}
	return found;
}

int md_cgroup_pids(struct md_cgroup *cg, pid_t **pids, size_t *n, md_err **err)
{
	pid_t *out = NULL;
	size_t k = 0;

	for (size_t i = 0; i < cg->n; i++) {
		_cleanup_free_ char *p = md_path_join(cg->dirs[i].path, "cgroup.procs");
		_cleanup_fclose_ FILE *f = fopen(p, "re");
		long v;

		if (f == NULL) {
			if (errno == ENOENT)
				continue;
			free(out);
			return md_fail(err, errno, "open `%s`", p);
		}
		while (fscanf(f, "%ld", &v) == 1) {
			bool dup = false;
			for (size_t j = 0; j < k && !dup; j++)
				dup = out[j] == (pid_t)v;
			if (dup)
				continue;
			pid_t *no = realloc(out, (k + 1) * sizeof(*out));
			if (no == NULL) {
				free(out);
				return md_fail(err, ENOMEM, "cgroup pids");
			}
			out = no;
			out[k++] = (pid_t)v;
		}
	}
	*pids = out;
	*n = k;
	return 0;
}

static void kill_all(struct md_cgroup *cg)
{
	pid_t *pids = NULL;
	size_t n = 0;

	if (cg->version == 2) {
		_cleanup_free_ char *k = md_path_join(cg->dirs[0].path, "cgroup.kill");
		if (access(k, F_OK) == 0 && write_file(k, "1", NULL) == 0)
			return;
	}
	if (md_cgroup_pids(cg, &pids, &n, NULL) < 0)
		return;
	for (size_t i = 0; i < n; i++)
		kill(pids[i], SIGKILL);
	free(pids);
}

int md_cgroup_remove(struct md_cgroup *cg, bool kill, enum md_cg_prune prune, uint64_t timeout_ns, md_err **err)
{
	uint64_t deadline = md_now_mono_ns() + timeout_ns;

	for (size_t i = 0; i < cg->n; i++) {
		struct md_cg_dir *d = &cg->dirs[i];

		for (;;) {
			if (kill)
				kill_all(cg);
			if (rmdir(d->path) == 0 || errno == ENOENT)
				break;
			if (errno != EBUSY)
				return md_fail(err, errno, "remove cgroup `%s`", d->path);
			if (md_now_mono_ns() >= deadline)
				return md_conflict(err, "remove cgroup `%s`: processes are still in it", d->path);
			md_sleep_ns(2000000);
		}
		if (prune == MD_CG_PRUNE_NONE || !*cg->parent)
			continue;
		/* Walk up the parent chain; stop at the first directory in use or not ours. */
		_cleanup_free_ char *p = strdup(d->path);
		int left = prune == MD_CG_PRUNE_CREATED ? d->created - 1 : 1 << 20;
		int depth = 1;

		for (const char *c = cg->parent; *c; c++)
			depth += *c == '/';
		for (; left > 0 && depth > 0; left--, depth--) {
			char *slash = strrchr(p, '/');
			*slash = '\0';
			if (rmdir(p) < 0)
				break;
		}
		d->created = 0;
	}
	return 0;
}

const char *md_cgroup_path(const struct md_cgroup *cg, const char *controller)
{
	if (cg->version == 2)
		return cg->n ? cg->dirs[0].path : NULL;
	for (size_t i = 0; i < cg->n; i++)
		if (cg->dirs[i].controllers && opt_has(cg->dirs[i].controllers, controller))
			return cg->dirs[i].path;
	return NULL;
}

json_t *md_cgroup_paths_json(const struct md_cgroup *cg)
{
	json_t *a = json_array();

	for (size_t i = 0; cg && i < cg->n; i++)
		json_array_append_new(a, json_string(cg->dirs[i].path));
	return a;
}
