/* Unit tests of lib/ core: errors, ids, the printer, records and locks. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../../lib/cleanup.h"
#include "../../lib/ids.h"
#include "../../lib/out.h"
#include "../../lib/state.h"
#include "tap.h"

static void errors(void)
{
	md_err *err = NULL;

	ok(md_fail(&err, ENOENT, "open `%s`", "/x") == -1, "md_fail returns -1");
	is_str(err->msg, "open `/x`: No such file or directory", "errno text appended");
	is_int(err->code, MD_EXIT_FAIL, "class 1");
	md_err_wrap(&err, "create vm `%s`", "a1");
	is_str(err->msg, "create vm `a1`: open `/x`: No such file or directory", "context wraps leftwards");
	is_int(err->status, ENOENT, "status kept through wrapping");
	md_err_free(&err);
	ok(err == NULL, "free clears");
	md_usage(&err, "bad");
	is_int(md_err_exit(err), MD_EXIT_USAGE, "usage class 2");
	md_err_free(&err);
	ok(md_err_wrap(&err, "nothing") == -1 && err == NULL, "wrap of no error is harmless");
	ok(md_fail(NULL, 0, "x") == -1, "NULL err pointer accepted");
}

static void ids(void)
{
	static const char *const good[] = { "a", "vm1", "VM-1-x", "0", "-", NULL };
	char sixty_four[65], sixty_five[66];
	md_err *err = NULL;

	memset(sixty_four, 'a', 64);
	sixty_four[64] = 0;
	memset(sixty_five, 'b', 65);
	sixty_five[65] = 0;
	for (size_t i = 0; good[i]; i++)
		ok(md_id_check(good[i], "vm id", NULL) == 0, "id `%s` valid", good[i]);
	ok(md_id_check(sixty_four, "vm id", NULL) == 0, "64 characters valid");
	const char *bad[] = { "", "..", "a/b", "a b", "vm_1", "vm.1", "h\xc3\xa9", "a\n", sixty_five, NULL };
	for (size_t i = 0; bad[i]; i++) {
		ok(md_id_check(bad[i], "vm id", &err) < 0 && err->code == MD_EXIT_USAGE, "id #%zu rejected", i);
		like(err ? err->msg : NULL, "1-64 characters of A-Z, a-z, 0-9 and '-'", "message names the rule");
		md_err_free(&err);
	}
	ok(md_id_check(NULL, "tenant", &err) < 0, "NULL id rejected");
	like(err ? err->msg : NULL, "tenant", "message names what");
	md_err_free(&err);

	char a[32], b[32];
	ok(md_id_generate(a, sizeof(a), NULL) == 0 && md_id_generate(b, sizeof(b), NULL) == 0, "generate ids");
	ok(md_id_check(a, "vm id", NULL) == 0 && strcmp(a, b) != 0, "generated ids valid and distinct");
}

static char *capture(json_t *v, enum md_out_mode m, const char *const *cols)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	md_out_print(f, v, m, cols);
	fclose(f);
	return buf;
}

static void printer(void)
{
	_cleanup_json_ json_t *obj = json_pack("{s:s, s:i, s:{s:s, s:b}, s:[s,s], s:n}", "id", "vm1", "vcpus", 2,
					       "net", "mac", "02:00:00:00:00:01", "up", 1, "dns", "1.1.1.1", "8.8.8.8",
					       "pid");
	_cleanup_json_ json_t *arr = json_pack("[{s:s, s:s}, {s:s, s:s}]", "id", "a", "state", "RUNNING", "id",
					       "bbbb", "state", "PAUSED");
	_cleanup_free_ char *j = capture(obj, MD_OUT_JSON, NULL);
	_cleanup_free_ char *t = capture(obj, MD_OUT_TEXT, NULL);
	_cleanup_free_ char *tab = capture(arr, MD_OUT_TEXT, NULL);
	const char *cols[] = { "state=STATE", "id", NULL };
	_cleanup_free_ char *tab2 = capture(arr, MD_OUT_TEXT, cols);
	json_error_t je;
	_cleanup_json_ json_t *back = json_loads(j, 0, &je);

	ok(back && json_equal(back, obj), "JSON rendering parses back to the same object");
	like(t, "net.mac", "text flattens nested keys");
	like(t, "02:00:00:00:00:01", "text shows values");
	like(t, "1.1.1.1,8.8.8.8", "text joins scalar arrays");
	like(t, "pid", "null key present");
	is_str(tab, "ID    STATE\na     RUNNING\nbbbb  PAUSED\n", "table with derived columns");
	is_str(tab2, "STATE    ID\nRUNNING  a\nPAUSED   bbbb\n", "table with chosen columns and headers");
	ok(md_json_path(obj, "net.mac") != NULL && md_json_path(obj, "net.nope") == NULL, "json path lookup");
}

/* Has pid an fd open on path (its own open, seen through /proc/PID/fd)? */
static bool has_fd_on(pid_t pid, const char *path)
{
	_cleanup_free_ char *d = md_strdup_printf("/proc/%d/fd", (int)pid);
	_cleanup_closedir_ DIR *dir = opendir(d);
	struct dirent *de;
	char target[4096];

	while (dir && (de = readdir(dir)) != NULL) {
		_cleanup_free_ char *l = md_strdup_printf("%s/%s", d, de->d_name);
		ssize_t n = readlink(l, target, sizeof(target) - 1);

		if (n > 0 && (target[n] = '\0', !strcmp(target, path)))
			return true;
	}
	return false;
}

/* A waiter on a lock file that its holder unlinks (and re-makes) before letting go must end up
 * holding the file at the path, not the unlinked one. replace: make a new file at the path
 * (else the path is left absent and md_lock makes it). */
static void lock_on_unlinked(const char *dir, bool replace)
{
	_cleanup_free_ char *lockp = md_strdup_printf("%s/lock-%s", dir, replace ? "replaced" : "removed");
	int go[2], res[2], done[2], status, fd;
	struct stat old_st, new_st;
	unsigned long long got = 0;
	md_err *err = NULL;
	pid_t pid;

	if (pipe(go) < 0 || pipe(res) < 0 || pipe(done) < 0)
		abort();
	pid = fork();
	if (pid == 0) {
		char c;
		struct stat a, b;
		int r;
		unsigned long long ino;

		/* the parent takes the lock after the fork: no inherited copy of it here */
		if (read(go[0], &c, 1) != 1)
			_exit(2);
		r = md_lock(lockp, true, 5000000000ULL, NULL);
		ino = r >= 0 && fstat(r, &a) == 0 && stat(lockp, &b) == 0 && a.st_dev == b.st_dev && a.st_ino == b.st_ino
			      ? (unsigned long long)a.st_ino
			      : 0;
		if (write(res[1], &ino, sizeof(ino)) != sizeof(ino))
			_exit(2);
		/* hold it until the parent has checked */
		if (read(done[0], &c, 1) != 1)
			_exit(2);
		_exit(0);
	}
	fd = md_lock(lockp, true, 0, &err);
	ok(fd >= 0 && fstat(fd, &old_st) == 0, "holder has %s", lockp);
	if (write(go[1], "g", 1) != 1)
		abort();
	/* the waiter has the old file open (and is waiting for its lock) */
	for (int i = 0; i < 200 && !has_fd_on(pid, lockp); i++)
		md_sleep_ns(10000000);
	ok(has_fd_on(pid, lockp), "waiter opened the lock file");
	unlink(lockp);
	if (replace)
		close(open(lockp, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
	close(fd); /* let go of the unlinked file */
	if (read(res[0], &got, sizeof(got)) != sizeof(got))
		got = 0;
	/* (a removed file's inode number may be reused by the one md_lock makes) */
	ok(stat(lockp, &new_st) == 0 && (!replace || new_st.st_ino != old_st.st_ino), "a file is at the path again");
	ok(got != 0 && got == (unsigned long long)new_st.st_ino,
	   "waiter holds the file at the path, not the unlinked one (%s)", replace ? "replaced" : "re-made by md_lock");
	fd = md_lock(lockp, true, 0, &err);
	ok(fd < 0 && err && err->code == MD_EXIT_CONFLICT, "the file at the path is locked (by the waiter)");
	md_err_free(&err);
	if (fd >= 0)
		close(fd);
	if (write(done[1], "d", 1) != 1)
		abort();
	waitpid(pid, &status, 0);
	ok(WIFEXITED(status) && WEXITSTATUS(status) == 0, "waiter done");
	fd = md_lock(lockp, true, 0, &err);
	ok(fd >= 0, "free again once the waiter ends");
	if (fd >= 0)
		close(fd);
	for (int i = 0; i < 2; i++) {
		close(go[i]);
		close(res[i]);
		close(done[i]);
	}
}

static void records(void)
{
	char dir[] = "/tmp/md-unit-XXXXXX";
	md_err *err = NULL;
	_cleanup_free_ char *path = NULL, *data = NULL, *sub = NULL, *lockp = NULL;
	size_t len = 0;
	json_t *j = NULL;

	ok(mkdtemp(dir) != NULL, "temp dir");
	path = md_path_join(dir, "rec.json");
	ok(md_write_atomic(path, "{\"a\":1}", 7, 0640, &err) == 0, "atomic write");
	ok(md_read_file(path, &data, &len, &err) == 0 && len == 7 && !strcmp(data, "{\"a\":1}"), "read back");
	struct stat st;
	ok(stat(path, &st) == 0 && (st.st_mode & 0777) == 0640, "mode applied");
	ok(md_json_read(path, &j, &err) == 0 && json_integer_value(json_object_get(j, "a")) == 1, "json read");
	json_decref(j);
	md_write_atomic(path, "{\"a\":", 5, 0600, NULL);
	ok(md_json_read(path, &j, &err) < 0 && err->code == MD_EXIT_USAGE, "truncated JSON is an error");
	like(err ? err->msg : NULL, "line 1", "JSON error names the position");
	md_err_free(&err);
	_cleanup_free_ char *nope = md_path_join(dir, "nope");
	ok(md_read_file(nope, &data, &len, &err) < 0 && err->code == MD_EXIT_NOTFOUND, "missing file is class 3");
	md_err_free(&err);
	/* no temp files left behind */
	_cleanup_free_ char *cmd = md_strdup_printf("ls %s | grep -c tmp >/dev/null", dir);
	ok(system(cmd) != 0, "no temp files left");

	sub = md_strdup_printf("%s/a/b/c", dir);
	ok(md_mkdir_p(sub, 0700, &err) == 0, "mkdir -p");
	ok(md_mkdir_p(sub, 0700, &err) == 0, "mkdir -p is idempotent");

	lockp = md_path_join(dir, "lock");
	int fd = md_lock(lockp, true, 0, &err);
	ok(fd >= 0, "exclusive lock");
	pid_t pid = fork();
	if (pid == 0) {
		md_err *e2 = NULL;
		uint64_t t0 = md_now_mono_ns();
		int r = md_lock(lockp, true, 100000000ULL, &e2);
		uint64_t dt = md_now_mono_ns() - t0;
		_exit(r < 0 && e2->code == MD_EXIT_CONFLICT && dt >= 100000000ULL ? 0 : 1);
	}
	int status;
	waitpid(pid, &status, 0);
	ok(WIFEXITED(status) && WEXITSTATUS(status) == 0, "second locker times out after 100ms with class 4");
	pid = fork();
	if (pid == 0) {
		close(fd); /* the inherited copy shares the parent's lock */
		int r = md_lock(lockp, true, 2000000000ULL, NULL);
		_exit(r >= 0 ? 0 : 1);
	}
	md_sleep_ns(50000000);
	close(fd);
	waitpid(pid, &status, 0);
	ok(WIFEXITED(status) && WEXITSTATUS(status) == 0, "waiting locker gets the lock once released");
	lock_on_unlinked(dir, true);
	lock_on_unlinked(dir, false);

	ok(md_rm_rf(dir, &err) == 0 && access(dir, F_OK) < 0, "rm -rf");
	ok(md_rm_rf(dir, &err) == 0, "rm -rf of nothing is fine");
}

static void paths(void)
{
	struct md_paths p;
	md_err *err = NULL;

	unsetenv("UNKEY_METALD_ROOT");
	unsetenv("UNKEY_METALD_DATA_DIR");
	setenv("UNKEY_METALD_RUN_DIR", "/tmp/r", 1);
	ok(md_paths_init(&p, NULL, &err) == 0, "paths default");
	is_str(p.data_dir, "/var/lib/metald", "default data dir");
	is_str(p.run_dir, "/tmp/r", "env run dir");
	is_str(p.chroot_dir, "/srv/jailer", "default chroot dir");
	md_paths_free(&p);
	ok(md_paths_init(&p, "/x", &err) == 0, "paths with root");
	is_str(p.run_dir, "/x/run", "root beats env");
	is_str(p.netns_dir, "/x/netns", "netns under root");
	md_paths_free(&p);
	setenv("UNKEY_METALD_DATA_DIR", "rel", 1);
	ok(md_paths_init(&p, NULL, &err) < 0 && err->code == MD_EXIT_USAGE, "relative env dir rejected");
	md_err_free(&err);
	unsetenv("UNKEY_METALD_DATA_DIR");
	ok(md_paths_init(&p, "rel", &err) < 0, "relative root rejected");
	md_err_free(&err);
}

int main(void)
{
	errors();
	ids();
	printer();
	records();
	paths();
	return done_testing();
}
