/* Removing jails (clean) and moving the VMM's kvm-pit thread into a jail's cgroups. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cleanup.h"
#include "ids.h"
#include "jail.h"
#include "state.h"


/* A pid from the pid file counts only while that process still has the jail as its root. */
static pid_t jail_pid(const char *pidfile, const char *root)
{
	_cleanup_free_ char *s = NULL;
	struct stat a, b;
	char proc[64];
	long v;

	if (md_read_file(pidfile, &s, NULL, NULL) < 0 || sscanf(s, "%ld", &v) != 1 || v <= 0)
		return 0;
	snprintf(proc, sizeof(proc), "/proc/%ld/root", v);
	if (stat(proc, &a) < 0 || stat(root, &b) < 0 || a.st_dev != b.st_dev || a.st_ino != b.st_ino)
		return 0;
	return (pid_t)v;
}

static bool alive(pid_t pid)
{
	char p[64], st = 0;
	_cleanup_fclose_ FILE *f = NULL;

	snprintf(p, sizeof(p), "/proc/%d/stat", (int)pid);
	f = fopen(p, "re");
	if (f == NULL)
		return false;
	/* a zombie is gone as far as the jail is concerned */
	if (fscanf(f, "%*d (%*[^)]) %c", &st) != 1)
		return true;
	return st != 'Z' && st != 'X';
}

static int find_jail_dir(const struct md_jail_clean *c, char **exec_name, md_err **err)
{
	_cleanup_closedir_ DIR *d = NULL;
	struct dirent *de;
	int found = 0;

	if (c->exec_name) {
		const char *s = strrchr(c->exec_name, '/');
		*exec_name = strdup(s ? s + 1 : c->exec_name);
		return 0;
	}
	d = opendir(c->chroot_base);
	if (d == NULL)
		return errno == ENOENT ? 0 : md_fail(err, errno, "open `%s`", c->chroot_base);
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		_cleanup_free_ char *p = md_strdup_printf("%s/%s/%s", c->chroot_base, de->d_name, c->id);
		struct stat st;

		if (lstat(p, &st) == 0 && S_ISDIR(st.st_mode)) {
			if (found++) {
				free(*exec_name);
				*exec_name = NULL;
				return md_usage(err, "jail id `%s` exists under several exec names in `%s`: give --exec-file",
						c->id, c->chroot_base);
			}
			*exec_name = strdup(de->d_name);
		}
	}
	return 0;
}

static int open_cgroups(const struct md_jail_clean *c, const char *exec_name, json_t *rec, struct md_cgroup **out,
			md_err **err)
{
	json_t *cgj = json_object_get(rec, "cgroup");
	const char *parent = c->parent_cgroup ? c->parent_cgroup : exec_name;
	const char *root = c->cgroup_root;
	int version = c->cgroup_version;

	*out = NULL;
	if (cgj) {
		version = (int)json_integer_value(json_object_get(cgj, "version"));
		parent = json_string_value(json_object_get(cgj, "parent"));
		root = json_string_value(json_object_get(cgj, "root"));
		if (!parent || !root || (version != 1 && version != 2))
			return md_usage(err, "jail record: bad \"cgroup\" object");
	}
	if (md_cgroup_new(out, root, version, parent, c->id, err) < 0) {
		if (*err && (*err)->code == MD_EXIT_MISSING && !cgj) {
			md_err_free(err);
			return 0; /* no hierarchy, so no cgroup to remove */
		}
		return -1;
	}
	if (md_cgroup_find(*out, err) < 0)
		return -1;
	return 0;
}

int md_jail_clean(const struct md_jail_clean *c, json_t **removed, md_err **err)
{
	_cleanup_free_ char *exec_name = NULL, *exec_dir = NULL, *jail_dir = NULL, *root = NULL, *pidfile = NULL;
	_cleanup_free_ char *recpath = NULL;
	_cleanup_json_ json_t *rec = NULL;
	struct md_cgroup *cg = NULL;
	pid_t *pids = NULL;
	size_t npids = 0;
	pid_t main_pid;
	int rc = -1;

	*removed = json_array();
	if (md_id_check(c->id, "jail id", err) < 0)
		return -1;
	if (find_jail_dir(c, &exec_name, err) < 0)
		return -1;
	if (exec_name == NULL)
		return 0; /* nothing there */
	exec_dir = md_path_join(c->chroot_base, exec_name);
	jail_dir = md_path_join(exec_dir, c->id);
	root = md_path_join(jail_dir, "root");
	pidfile = md_strdup_printf("%s/%s.pid", root, exec_name);
	recpath = md_path_join(jail_dir, MD_JAIL_RECORD);
	if (md_json_read(recpath, &rec, NULL) < 0)
		rec = NULL;

	if (open_cgroups(c, exec_name, rec, &cg, err) < 0)
		goto out;
	main_pid = jail_pid(pidfile, root);
	if (cg && md_cgroup_pids(cg, &pids, &npids, err) < 0)
		goto out;
	bool busy = (main_pid > 0 && alive(main_pid)) || npids > 0;
	if (busy && !c->kill) {
		md_conflict(err, "jail `%s` is in use by pid %d (stop it first, or use --kill)", c->id,
			    main_pid > 0 ? (int)main_pid : (int)pids[0]);
		goto out;
	}
	if (busy) {
		uint64_t deadline = md_now_mono_ns() + 5000000000ULL;

		if (main_pid > 0)
			kill(main_pid, SIGKILL);
		for (size_t i = 0; i < npids; i++)
			kill(pids[i], SIGKILL);
		while (main_pid > 0 && alive(main_pid)) {
			if (md_now_mono_ns() > deadline) {
				md_timeout(err, "jail `%s`: pid %d did not die", c->id, (int)main_pid);
				goto out;
			}
			md_sleep_ns(2000000);
		}
	}
	if (cg && cg->n) {
		json_t *paths = md_cgroup_paths_json(cg);
		if (md_cgroup_remove(cg, c->kill, MD_CG_PRUNE_EMPTY, 5000000000ULL, err) < 0) {
			json_decref(paths);
			goto out;
		}
		json_array_extend(*removed, paths);
		json_decref(paths);
	}
	if (access(jail_dir, F_OK) == 0) {
		if (md_rm_rf(jail_dir, err) < 0)
			goto out;
		json_array_append_new(*removed, json_string(jail_dir));
	}
	rmdir(exec_dir);
	rc = 0;
out:
	free(pids);
	md_cgroup_free(cg);
	return rc;
}

int md_jail_kvm_pit(const struct md_jail_clean *c, json_t **moved, md_err **err)
{
	_cleanup_free_ char *exec_name = NULL, *jail_dir = NULL, *root = NULL, *pidfile = NULL, *recpath = NULL;
	_cleanup_json_ json_t *rec = NULL;
	_cleanup_closedir_ DIR *d = NULL;
	struct md_cgroup *cg = NULL;
	struct dirent *de;
	char want[32];
	pid_t pid;
	int rc = -1;

	*moved = json_array();
	if (md_id_check(c->id, "jail id", err) < 0 || find_jail_dir(c, &exec_name, err) < 0)
		return -1;
	if (exec_name == NULL)
		return md_notfound(err, "jail `%s` not found in `%s`", c->id, c->chroot_base);
	jail_dir = md_strdup_printf("%s/%s/%s", c->chroot_base, exec_name, c->id);
	root = md_path_join(jail_dir, "root");
	pidfile = md_strdup_printf("%s/%s.pid", root, exec_name);
	recpath = md_path_join(jail_dir, MD_JAIL_RECORD);
	if (md_json_read(recpath, &rec, NULL) < 0)
		rec = NULL;
	pid = jail_pid(pidfile, root);
	if (pid <= 0)
		return md_notfound(err, "jail `%s`: its program is not running", c->id);
	if (open_cgroups(c, exec_name, rec, &cg, err) < 0)
		goto out;
	if (cg == NULL || cg->n == 0) {
		md_notfound(err, "jail `%s` has no cgroup", c->id);
		goto out;
	}
	snprintf(want, sizeof(want), "kvm-pit/%d", (int)pid);
	d = opendir("/proc");
	if (d == NULL) {
		md_fail(err, errno, "open `/proc`");
		goto out;
	}
	while ((de = readdir(d))) {
		char p[300], comm[64] = "";
		_cleanup_fclose_ FILE *f = NULL;

		if (de->d_name[0] < '0' || de->d_name[0] > '9')
			continue;
		snprintf(p, sizeof(p), "/proc/%s/comm", de->d_name);
		f = fopen(p, "re");
		if (f == NULL || fgets(comm, sizeof(comm), f) == NULL)
			continue;
		comm[strcspn(comm, "\n")] = '\0';
		if (strcmp(comm, want) != 0)
			continue;
		for (size_t i = 0; i < cg->n; i++) {
			/* v1 moves single threads through "tasks"; v2 has only cgroup.procs (and cgroup.threads) */
			_cleanup_free_ char *t = md_path_join(cg->dirs[i].path, cg->version == 1 ? "tasks" : "cgroup.procs");
			_cleanup_close_ int fd = open(t, O_WRONLY | O_CLOEXEC);
			if (fd < 0 || write(fd, de->d_name, strlen(de->d_name)) < 0) {
				md_fail(err, errno, "move `%s` (pid %s) into `%s`", want, de->d_name, cg->dirs[i].path);
				goto out;
			}
		}
		json_array_append_new(*moved, json_integer(atoi(de->d_name)));
	}
	if (json_array_size(*moved) == 0) {
		md_notfound(err, "no `%s` thread (the VMM has not made its PIT yet, or does not use KVM)", want);
		goto out;
	}
	rc = 0;
out:
	md_cgroup_free(cg);
	return rc;
}
