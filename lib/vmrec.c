/* VM records on disk: create-once directories, atomic vm.json, per-VM locks. */
#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cleanup.h"
#include "ids.h"
#include "vmrec.h"

static const char *const state_names[] = { NULL, "CREATED", "RUNNING", "PAUSED", "SHUTDOWN" };

const char *md_vm_state_name(enum md_vm_state s)
{
	return s >= MD_VM_CREATED && s <= MD_VM_SHUTDOWN ? state_names[s] : "UNSPECIFIED";
}

int md_vm_state_parse(const char *s, enum md_vm_state *out)
{
	if (strncasecmp(s, "VM_STATE_", 9) == 0)
		s += 9;
	for (int i = MD_VM_CREATED; i <= MD_VM_SHUTDOWN; i++) {
		if (strcasecmp(s, state_names[i]) == 0) {
			*out = (enum md_vm_state)i;
			return 0;
		}
	}
	return -1;
}

char *md_vmrec_dir(const struct md_paths *p, const char *id)
{
	return md_strdup_printf("%s/vms/%s", p->data_dir, id);
}

char *md_vmrec_file(const struct md_paths *p, const char *id, const char *name)
{
	return md_strdup_printf("%s/vms/%s/%s", p->data_dir, id, name);
}

int md_vmrec_mkdir(const struct md_paths *p, const char *id, md_err **err)
{
	_cleanup_free_ char *base = md_strdup_printf("%s/vms", p->data_dir);
	_cleanup_free_ char *dir = md_vmrec_dir(p, id);

	if (md_mkdir_p(base, 0700, err) < 0)
		return -1;
	if (mkdir(dir, 0700) < 0) {
		if (errno == EEXIST)
			return md_conflict(err, "vm `%s` already exists", id);
		return md_fail(err, errno, "mkdir `%s`", dir);
	}
	return md_fsync_dir(base, err);
}

int md_vmrec_lock(const struct md_paths *p, const char *id, uint64_t timeout_ns, md_err **err)
{
	_cleanup_free_ char *dir = md_vmrec_dir(p, id);
	_cleanup_free_ char *lock = md_vmrec_file(p, id, "lock");
	struct stat st;
	md_err *e = NULL;
	int fd;

	if (stat(dir, &st) < 0)
		return md_notfound(err, "vm `%s` not found", id);
	fd = md_lock(lock, true, timeout_ns, &e);
	if (fd < 0 && e->code != MD_EXIT_CONFLICT && stat(dir, &st) < 0) {
		/* deleted while we waited (md_lock let go of the unlinked lock file; the directory to
		 * make a new one in is gone) */
		md_err_free(&e);
		return md_notfound(err, "vm `%s` not found", id);
	}
	if (fd < 0) {
		if (err)
			*err = e;
		else
			md_err_free(&e);
	}
	return fd;
}

int md_vmrec_load(const struct md_paths *p, const char *id, json_t **rec, md_err **err)
{
	_cleanup_free_ char *f = md_vmrec_file(p, id, "vm.json");

	md_err *e = NULL;

	if (md_json_read(f, rec, &e) < 0) {
		bool missing = e->code == MD_EXIT_NOTFOUND;

		if (missing) {
			md_err_free(&e);
			return md_notfound(err, "vm `%s` not found", id);
		}
		if (err)
			*err = e;
		else
			md_err_free(&e);
		return -1;
	}
	return 0;
}

int md_vmrec_save(const struct md_paths *p, const char *id, json_t *rec, md_err **err)
{
	_cleanup_free_ char *f = md_vmrec_file(p, id, "vm.json");

	json_object_set_new(rec, "modified_ns", json_integer((json_int_t)md_now_wall_ns()));
	return md_json_write_atomic(f, rec, 0600, err);
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int md_vmrec_list(const struct md_paths *p, char ***ids, size_t *n, md_err **err)
{
	_cleanup_free_ char *base = md_strdup_printf("%s/vms", p->data_dir);
	_cleanup_closedir_ DIR *d = opendir(base);
	char **v = NULL;
	size_t cnt = 0;
	struct dirent *de;

	*ids = NULL;
	*n = 0;
	if (d == NULL)
		return errno == ENOENT ? 0 : md_fail(err, errno, "open `%s`", base);
	while ((de = readdir(d)) != NULL) {
		char **nv;

		if (md_id_check(de->d_name, "vm id", NULL) < 0)
			continue;
		nv = realloc(v, (cnt + 1) * sizeof(*v));
		if (nv == NULL)
			break;
		v = nv;
		v[cnt++] = strdup(de->d_name);
	}
	if (cnt > 1)
		qsort(v, cnt, sizeof(*v), cmp_str);
	*ids = v;
	*n = cnt;
	return 0;
}
