/* Unit tests of the VMM plumbing: the boot spec (lib/vmspec.c), the socket wait (lib/unixsock.c),
 * QEMU's argv (lib/vmm-qemu.c), the VM records' locks (lib/vmrec.c) and the keeper's bounded logs
 * (lib/vm-keeper.c). */
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../../lib/cleanup.h"
#include "../../lib/config.h"
#include "../../lib/state.h"
#include "../../lib/unixsock.h"
#include "../../lib/vm-keeper.h"
#include "../../lib/vmm-qemu.h"
#include "../../lib/vmrec.h"
#include "../../lib/vmspec.h"
#include "tap.h"

static char dir[] = "/tmp/test-vmm-XXXXXX";

static struct md_config *cfg_of(const char *text)
{
	struct md_config *c = NULL;
	md_err *err = NULL;

	if (md_config_parse_string(text, &c, &err) < 0) {
		printf("# config: %s\n", err->msg);
		md_err_free(&err);
	}
	return c;
}

static char *dumps(json_t *j)
{
	return j ? json_dumps(j, JSON_COMPACT) : strdup("null");
}

static void rate_limits(void)
{
	struct md_cfg_rate_limit a = { .set = true, .bandwidth = 1048576, .refill_time = 500, .burst = 4096 };
	struct md_cfg_rate_limit b = { .set = true, .bandwidth = 1000 };
	struct md_cfg_rate_limit c = { .set = true };
	struct md_cfg_rate_limit d = { .set = false, .bandwidth = 5 };
	struct md_cfg_rate_limit e = { .set = true, .bandwidth = INT64_MAX, .refill_time = 1000 };
	json_t *j;
	char *s;

	j = md_rate_limit_to_fc(&a);
	s = dumps(j);
	is_str(s, "{\"bandwidth\":{\"size\":524288,\"refill_time\":500,\"one_time_burst\":4096}}", "bucket per refill period");
	free(s);
	json_decref(j);
	j = md_rate_limit_to_fc(&b);
	s = dumps(j);
	is_str(s, "{\"bandwidth\":{\"size\":1000,\"refill_time\":1000}}", "refill_time defaults to 1000 ms, no burst");
	free(s);
	json_decref(j);
	ok(md_rate_limit_to_fc(&c) == NULL, "an all-zero limit limits nothing");
	ok(md_rate_limit_to_fc(&d) == NULL, "an absent limit limits nothing");
	j = md_rate_limit_to_fc(&e);
	ok(j && json_integer_value(json_object_get(json_object_get(j, "bandwidth"), "size")) > 0, "no overflow at INT64_MAX");
	json_decref(j);
}

#define BASE "\"cpu\":{\"vcpu_count\":1},\"memory\":{\"size_bytes\":134217728},\"storage\":[{\"path\":\"/r\"}]"

static void specs(void)
{
	struct md_config *c;
	struct md_vm_spec s;
	md_err *err = NULL;
	json_t *net = json_loads("{\"tap\":\"tapn\",\"mac\":\"02:00:00:00:00:05\",\"kernel_args\":\"ip=1.2.3.4::1.2.3.1:24::eth0:off\","
				 "\"rate_limit\":{\"rx\":{\"ops\":{\"size\":1,\"refill_time\":2}}}}", 0, NULL);

	c = cfg_of("{" BASE ",\"boot\":{\"kernel_path\":\"/k\"}}");
	ok(c && md_vm_spec_build(&s, c, NULL, &err) == 0, "no network, no net");
	is_str(s.kernel_args, MD_DEFAULT_KERNEL_ARGS, "default kernel args");
	is_int(s.n_nics, 0, "no NICs");
	md_vm_spec_free(&s);
	ok(md_vm_spec_build(&s, c, net, &err) == 0, "net alone gives eth0");
	is_int(s.n_nics, 1, "one NIC");
	is_str(s.nics[0].id, "eth0", "eth0");
	is_str(s.nics[0].tap, "tapn", "tap from net");
	is_str(s.nics[0].mac, "02:00:00:00:00:05", "mac from net");
	ok(s.nics[0].rx_limiter && !s.nics[0].tx_limiter, "rx limiter from net");
	is_str(s.kernel_args, MD_DEFAULT_KERNEL_ARGS " ip=1.2.3.4::1.2.3.1:24::eth0:off", "net args appended");
	md_vm_spec_free(&s);
	md_config_free(c);

	c = cfg_of("{" BASE ",\"boot\":{\"kernel_path\":\"/k\",\"kernel_args\":\"a=1\"},\"network\":[{\"id\":\"n0\","
		   "\"tap_device\":\"t0\",\"mac_address\":\"02:00:00:00:00:01\",\"tx_rate_limit\":{\"bandwidth\":10}},{}]}");
	ok(c && md_vm_spec_build(&s, c, NULL, &err) < 0, "a NIC without a tap and no net is refused");
	is_str(err ? err->msg : NULL, "config.network[1].tap_device: is required (or pass --net with metald-net's JSON)",
	       "message names the NIC");
	md_err_free(&err);
	md_config_free(c);
	c = cfg_of("{" BASE ",\"boot\":{\"kernel_path\":\"/k\",\"kernel_args\":\"a=1\"},\"network\":[{\"id\":\"n0\","
		   "\"tap_device\":\"t0\",\"mac_address\":\"02:00:00:00:00:01\",\"tx_rate_limit\":{\"bandwidth\":10}},"
		   "{\"tap_device\":\"t1\"}]}");
	ok(c && md_vm_spec_build(&s, c, net, &err) == 0, "two NICs with net");
	is_str(s.nics[0].id, "n0", "config id kept");
	is_str(s.nics[0].tap, "tapn", "net overrides the first tap");
	ok(s.nics[0].tx_limiter != NULL, "config tx limit kept where net has none");
	is_str(s.nics[1].id, "eth1", "second NIC eth1");
	is_str(s.nics[1].tap, "t1", "second tap from config");
	ok(s.nics[1].mac == NULL, "no MAC: the VMM picks one");
	is_str(s.kernel_args, "a=1 ip=1.2.3.4::1.2.3.1:24::eth0:off", "config args then net args");
	md_vm_spec_free(&s);
	json_t *bad = json_loads("{\"mac\":\"02:00:00:00:00:05\"}", 0, NULL);
	ok(md_vm_spec_build(&s, c, bad, &err) < 0 && err && err->code == MD_EXIT_USAGE, "net without a tap is refused");
	md_err_free(&err);
	json_decref(bad);
	md_config_free(c);
	json_decref(net);
}

static int listen_at(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 4) < 0)
		return -1;
	return fd;
}

static void socket_wait(void)
{
	char *sock = md_path_join(dir, "a.sock"), *deep = md_strdup_printf("%s/x/y/b.sock", dir);
	md_err *err = NULL;
	uint64_t t0;
	pid_t pid;
	int fd, st;

	ok(md_unix_connect_wait(sock, 0, 0, &err) < 0 && err && err->code == MD_EXIT_NOTFOUND,
	   "no socket, no wait: class 3 (%s)", err ? err->msg : "");
	md_err_free(&err);
	t0 = md_now_mono_ns();
	ok(md_unix_connect_wait(sock, 200000000ULL, 0, &err) < 0 && err && err->code == MD_EXIT_TIMEOUT,
	   "no socket within 200 ms: class 124");
	ok(md_now_mono_ns() - t0 >= 200000000ULL && md_now_mono_ns() - t0 < 1000000000ULL, "waited about the timeout");
	md_err_free(&err);

	/* appears later, in a directory that does not exist yet */
	pid = fork();
	if (pid == 0) {
		usleep(150000);
		char *d = md_strdup_printf("%s/x/y", dir);
		md_mkdir_p(d, 0755, NULL);
		usleep(50000);
		int l = listen_at(deep);
		usleep(500000);
		_exit(l < 0);
	}
	t0 = md_now_mono_ns();
	fd = md_unix_connect_wait(deep, 5000000000ULL, 0, &err);
	ok(fd >= 0, "a socket created later under a new directory is found%s%s", err ? ": " : "", err ? err->msg : "");
	ok(md_now_mono_ns() - t0 < 1000000000ULL, "found promptly (%.0f ms)", (double)(md_now_mono_ns() - t0) / 1e6);
	if (fd >= 0) {
		is_int(md_unix_peer_pid(fd), pid, "SO_PEERCRED gives the listener's pid");
		close(fd);
	}
	md_err_free(&err);
	waitpid(pid, &st, 0);

	/* the process we wait for dies first */
	pid = fork();
	if (pid == 0) {
		usleep(100000);
		_exit(0);
	}
	t0 = md_now_mono_ns();
	ok(md_unix_connect_wait(sock, 5000000000ULL, pid, &err) < 0 && err && err->code == MD_EXIT_NOTFOUND,
	   "the wait ends when the VMM exits: %s", err ? err->msg : "");
	ok(md_now_mono_ns() - t0 < 2000000000ULL, "without waiting for the timeout");
	md_err_free(&err);
	waitpid(pid, &st, 0);

	pid = fork();
	if (pid == 0) {
		usleep(100000);
		_exit(0);
	}
	is_int(md_pid_wait_exit(pid, 5000000000ULL, NULL), 0, "md_pid_wait_exit sees the exit");
	waitpid(pid, &st, 0);
	pid = fork();
	if (pid == 0) {
		pause();
		_exit(0);
	}
	is_int(md_pid_wait_exit(pid, 100000000ULL, NULL), 1, "md_pid_wait_exit times out on a live process");
	kill(pid, SIGKILL);
	waitpid(pid, &st, 0);
	free(sock);
	free(deep);
}

static void qemu_argv(void)
{
	char *k = md_path_join(dir, "k"), *r = md_path_join(dir, "r"), *d = md_path_join(dir, "d,x");
	char *text;
	struct md_config *c;
	struct md_vm_spec s;
	md_err *err = NULL;
	char **av = NULL;
	enum md_accel used;
	enum md_accel a;

	ok(md_accel_parse("tcg", &a, NULL) == 0 && a == MD_ACCEL_TCG, "accel tcg");
	ok(md_accel_parse("kvm", &a, NULL) == 0 && a == MD_ACCEL_KVM, "accel kvm");
	ok(md_accel_parse("auto", &a, NULL) == 0 && a == MD_ACCEL_AUTO, "accel auto");
	ok(md_accel_parse("hvf", &a, &err) < 0 && err && err->code == MD_EXIT_USAGE, "accel hvf refused");
	md_err_free(&err);
	fclose(fopen(k, "w"));
	fclose(fopen(r, "w"));
	fclose(fopen(d, "w"));
	setenv("UNKEY_METALD_QEMU_BIN", "/bin/true", 1);
	text = md_strdup_printf("{\"cpu\":{\"vcpu_count\":2},\"memory\":{\"size_bytes\":134217728},\"boot\":{\"kernel_path\":\"%s\","
				"\"kernel_args\":\"console=ttyS0\"},\"storage\":[{\"path\":\"%s\",\"read_only\":true},"
				"{\"id\":\"r\",\"path\":\"%s\",\"is_root_device\":true,\"read_only\":true}],"
				"\"network\":[{\"tap_device\":\"tq\"}]}",
				k, d, r);
	c = cfg_of(text);
	ok(c && md_vm_spec_build(&s, c, NULL, &err) == 0, "spec");
	struct md_qemu_opts o = { .accel = MD_ACCEL_TCG, .qmp = "/run/q.sock" };
	ok(md_qemu_argv(&s, &o, &av, &used, &err) == 0, "argv%s%s", err ? ": " : "", err ? err->msg : "");
	if (av) {
		_cleanup_free_ char *joined = NULL;
		size_t n = 0;
		for (char **p = av; *p; p++)
			n += strlen(*p) + 1;
		joined = calloc(1, n + 1);
		for (char **p = av; *p; p++) {
			strcat(joined, *p);
			if (p[1])
				strcat(joined, " ");
		}
		char *want = md_strdup_printf(
			"/bin/true -M microvm -accel tcg -smp 2 -m 128M -nodefaults -no-user-config -display none -S "
			"-qmp unix:/run/q.sock,server=on,wait=off -serial null -kernel %s -append console=ttyS0 root=/dev/vda ro "
			"-drive id=r,file=%s,format=raw,if=none,readonly=on -device virtio-blk-device,drive=r "
			"-drive id=drive_0,file=%s/d,,x,format=raw,if=none,readonly=on -device virtio-blk-device,drive=drive_0 "
			"-netdev tap,id=eth0,ifname=tq,script=no,downscript=no -device virtio-net-device,netdev=eth0",
			k, r, dir);
		is_str(joined, want, "the whole argv: root disk first, commas doubled, ro root");
		is_int(used, MD_ACCEL_TCG, "accel used");
		free(want);
		md_argv_free(av);
	}
	o.qmp = NULL;
	ok(md_qemu_argv(&s, &o, &av, &used, &err) < 0 && err && err->code == MD_EXIT_USAGE, "no QMP socket: class 2");
	md_err_free(&err);
	o.qmp = "/q";
	unlink(r);
	ok(md_qemu_argv(&s, &o, &av, &used, &err) < 0 && err && err->code == MD_EXIT_NOTFOUND, "missing disk: class 3");
	like(err ? err->msg : NULL, "config.storage[1].path", "names the disk");
	md_err_free(&err);
	setenv("UNKEY_METALD_QEMU_BIN", "/nonexistent/qemu", 1);
	fclose(fopen(r, "w"));
	ok(md_qemu_argv(&s, &o, &av, &used, &err) < 0 && err && err->code == MD_EXIT_MISSING, "no QEMU: class 5");
	md_err_free(&err);
	unsetenv("UNKEY_METALD_QEMU_BIN");
	is_str(md_qemu_state_name("prelaunch"), "VM_STATE_CREATED", "prelaunch");
	is_str(md_qemu_state_name("paused"), "VM_STATE_PAUSED", "paused");
	is_str(md_qemu_state_name("guest-panicked"), "VM_STATE_SHUTDOWN", "panicked");
	is_str(md_qemu_state_name("inmigrate"), "VM_STATE_UNSPECIFIED", "other");
	md_vm_spec_free(&s);
	md_config_free(c);
	free(text);
	free(k);
	free(r);
	free(d);
}

/* A verb waiting on a VM's lock while the VM is deleted (its directory, lock file and all, removed
 * by the holder) ends with "not found"; when the id is made again meanwhile, it gets the new
 * VM's lock, never the unlinked file of the old one. */
static void record_lock(void)
{
	struct md_paths p = { 0 };
	md_err *err = NULL;
	int status;

	p.data_dir = md_path_join(dir, "data");
	for (int remake = 0; remake < 2; remake++) {
		_cleanup_free_ char *rd = md_vmrec_dir(&p, "r1"), *lockp = md_vmrec_file(&p, "r1", "lock");
		int go[2], res[2], fd;
		char c = 0;
		pid_t pid;

		if (pipe(go) < 0 || pipe(res) < 0)
			abort();
		fd = md_vmrec_make(&p, "r1", &err);
		ok(fd >= 0, "record made, its lock held");
		pid = fork();
		if (pid == 0) {
			md_err *e = NULL;
			struct stat a, b;
			int r;

			close(fd); /* the holder's, inherited: the lock is on the open file, shared */
			if (read(go[0], &c, 1) != 1)
				_exit(2);
			r = md_vmrec_lock(&p, "r1", 5000000000ULL, &e);
			/* n: not found; h: holds the lock file at the path; else x */
			c = r < 0 && e->code == MD_EXIT_NOTFOUND ? 'n'
			    : r >= 0 && fstat(r, &a) == 0 && stat(lockp, &b) == 0 && a.st_ino == b.st_ino ? 'h'
													 : 'x';
			if (write(res[1], &c, 1) != 1)
				_exit(2);
			_exit(0);
		}
		if (write(go[1], "g", 1) != 1)
			abort();
		md_sleep_ns(200000000); /* the waiter is in md_lock's loop by now */
		ok(md_vmrec_remove(&p, "r1", &err) == 0 && access(rd, F_OK) < 0, "removed with its lock held");
		if (remake) {
			int fd2 = md_vmrec_make(&p, "r1", NULL);

			close(fd);
			md_sleep_ns(100000000); /* the waiter wakes on the old file, waits on the new one */
			fd = fd2;
		}
		close(fd);
		if (read(res[0], &c, 1) != 1)
			c = 0;
		waitpid(pid, &status, 0);
		if (remake)
			is_int(c, 'h', "deleted and made again while waiting: the waiter holds the new record's lock");
		else
			is_int(c, 'n', "deleted while waiting: the waiter says not found (class 3)");
		md_vmrec_remove(&p, "r1", NULL);
		close(go[0]);
		close(go[1]);
		close(res[0]);
		close(res[1]);
	}
	md_paths_free(&p);
}

/* One hammering child of delete_race: locks the ids (a 5 s wait) until told to stop. A lock it
 * gets must be the file at the path of a whole record (vm.json there: a record is saved before
 * its maker lets go, and removed only by a holder of its lock); anything else must be not found
 * (class 3), and for an id never made, nothing may appear. Writes "locked notfound bad". */
static void hammer(struct md_paths *p, const char *stop, int out)
{
	static const char *const ids[] = { "s0", "s1", "never" };
	unsigned long locked = 0, notfound = 0, bad = 0;
	char buf[96];
	int n;

	for (unsigned k = (unsigned)getpid(); access(stop, F_OK) < 0; k++) {
		const char *id = ids[k % 3];
		_cleanup_free_ char *lockp = md_vmrec_file(p, id, "lock");
		json_t *rec = NULL;
		md_err *e = NULL;
		struct stat a, b;
		int fd = md_vmrec_lock(p, id, 5000000000ULL, &e);

		if (fd >= 0) {
			if (fstat(fd, &a) == 0 && stat(lockp, &b) == 0 && a.st_ino == b.st_ino &&
			    md_vmrec_load(p, id, &rec, NULL) == 0 && strcmp(id, "never"))
				locked++;
			else
				bad++;
			json_decref(rec);
			close(fd);
		} else if (e->code == MD_EXIT_NOTFOUND) {
			notfound++;
		} else {
			fprintf(stderr, "# hammer: %s\n", e->msg);
			bad++;
		}
		md_err_free(&e);
	}
	n = snprintf(buf, sizeof(buf), "%lu %lu %lu\n", locked, notfound, bad);
	if (write(out, buf, (size_t)n) != n)
		_exit(2);
}

/* delete against verbs: records made and removed (as delete does: with the lock held) over and
 * over while other processes lock the same ids. Every removal succeeds and leaves nothing;
 * the others only ever hold the lock of a whole record, or are told not found. */
static void delete_race(void)
{
	enum { KIDS = 3, ROUNDS = 400 };
	struct md_paths p = { 0 };
	_cleanup_free_ char *stop = md_path_join(dir, "stop-hammer"), *never = NULL;
	unsigned long locked = 0, notfound = 0, bad = 0;
	int made = 0, removed = 0, left = 0, res[2];
	pid_t kids[KIDS];

	p.data_dir = md_path_join(dir, "race");
	never = md_vmrec_dir(&p, "never");
	md_mkdir_p(p.data_dir, 0700, NULL);
	if (pipe(res) < 0)
		abort();
	for (int i = 0; i < KIDS; i++) {
		kids[i] = fork();
		if (kids[i] == 0) {
			close(res[0]);
			hammer(&p, stop, res[1]);
			_exit(0);
		}
	}
	close(res[1]);
	for (int r = 0; r < ROUNDS; r++) {
		const char *id = r % 2 ? "s1" : "s0";
		_cleanup_free_ char *rd = md_vmrec_dir(&p, id), *lockp = md_vmrec_file(&p, id, "lock");
		json_t *rec = json_pack("{s:s, s:s}", "id", id, "state", "CREATED");
		md_err *e = NULL;
		int fd = md_vmrec_make(&p, id, &e);

		if (fd >= 0) {
			made++;
			md_vmrec_save(&p, id, rec, NULL);
			/* more files, as a real record has: more time between the first and the last removal */
			for (int f = 0; f < 6; f++) {
				_cleanup_free_ char *fn = md_strdup_printf("%s/f%d.json", rd, f);
				md_json_write_replace(fn, rec, 0600, NULL);
			}
			close(fd);
			if (r % 4 == 0)
				md_sleep_ns(200000); /* let the others take it now and then */
			fd = md_vmrec_lock(&p, id, 5000000000ULL, &e);
		}
		if (fd >= 0 && md_vmrec_remove(&p, id, &e) == 0)
			removed++;
		else if (e && removed + 5 > r)
			printf("# round %d: %s\n", r, e->msg); /* the first few */
		if (access(rd, F_OK) == 0 || access(lockp, F_OK) == 0)
			left++;
		if (fd >= 0)
			close(fd);
		md_vmrec_remove(&p, id, NULL); /* the next round starts clean even when this one failed */
		md_err_free(&e);
		json_decref(rec);
	}
	md_write_atomic(stop, "", 0, 0600, NULL);
	{
		FILE *f = fdopen(res[0], "r");
		unsigned long a, b, c;

		for (int i = 0; f && i < KIDS; i++) {
			if (fscanf(f, "%lu %lu %lu", &a, &b, &c) == 3) {
				locked += a;
				notfound += b;
				bad += c;
			} else {
				bad++;
			}
		}
		if (f)
			fclose(f);
	}
	for (int i = 0; i < KIDS; i++)
		waitpid(kids[i], NULL, 0);
	is_int(made, ROUNDS, "every record made (the previous one of its id was gone)");
	is_int(removed, ROUNDS, "every removal succeeded while others locked the same ids");
	is_int(left, 0, "no record directory or lock file left after a removal");
	is_int((long)bad, 0, "others held only locks of whole records, else were told not found");
	ok(locked > 0 && notfound > 0, "the others both got records (%lu) and were told not found (%lu)", locked,
	   notfound);
	ok(access(never, F_OK) < 0, "locking an id never made makes nothing");
	md_paths_free(&p);
}

/* create against delete of one id: one process makes the record again whenever it is gone while
 * another removes it whenever it is there. Every removal succeeds (never "not empty": a create
 * does not make its directory in the one being removed), a create is refused only as a conflict
 * (class 4) while the record is there, and each record removed was made whole. */
static void create_vs_delete(void)
{
	enum { ROUNDS = 150 };
	struct md_paths p = { 0 };
	_cleanup_free_ char *stop = md_path_join(dir, "stop-maker"), *rd = NULL;
	unsigned long made = 0, refused = 0, bad = 0;
	int removed = 0, failed = 0, res[2];
	uint64_t end = md_now_mono_ns() + 20000000000ULL;
	pid_t kid;

	p.data_dir = md_path_join(dir, "cvd");
	rd = md_vmrec_dir(&p, "c1");
	md_mkdir_p(p.data_dir, 0700, NULL);
	if (pipe(res) < 0)
		abort();
	kid = fork();
	if (kid == 0) {
		char buf[96];
		int n;

		close(res[0]);
		while (access(stop, F_OK) < 0) {
			md_err *e = NULL;
			int fd = md_vmrec_make(&p, "c1", &e);

			if (fd >= 0) {
				json_t *rec = json_pack("{s:s}", "id", "c1");

				if (md_vmrec_save(&p, "c1", rec, NULL) == 0)
					made++;
				else
					bad++;
				json_decref(rec);
				close(fd);
			} else if (e->code == MD_EXIT_CONFLICT) {
				refused++;
				md_sleep_ns(20000);
			} else {
				fprintf(stderr, "# maker: %s\n", e->msg);
				bad++;
			}
			md_err_free(&e);
		}
		n = snprintf(buf, sizeof(buf), "%lu %lu %lu\n", made, refused, bad);
		if (write(res[1], buf, (size_t)n) != n)
			_exit(2);
		_exit(0);
	}
	close(res[1]);
	while (removed + failed < ROUNDS && md_now_mono_ns() < end) {
		json_t *rec = NULL;
		md_err *e = NULL;
		int fd = md_vmrec_lock(&p, "c1", 5000000000ULL, &e);

		if (fd < 0) {
			if (e->code != MD_EXIT_NOTFOUND)
				failed++;
			md_err_free(&e);
			md_sleep_ns(20000);
			continue;
		}
		if (md_vmrec_load(&p, "c1", &rec, &e) == 0 && md_vmrec_remove(&p, "c1", &e) == 0) {
			removed++;
		} else {
			if (failed++ < 5)
				printf("# remover: %s\n", e ? e->msg : "?");
			md_vmrec_remove(&p, "c1", NULL);
		}
		md_err_free(&e);
		json_decref(rec);
		close(fd);
	}
	md_write_atomic(stop, "", 0, 0600, NULL);
	{
		FILE *f = fdopen(res[0], "r");

		if (f == NULL || fscanf(f, "%lu %lu %lu", &made, &refused, &bad) != 3)
			bad++;
		if (f)
			fclose(f);
	}
	waitpid(kid, NULL, 0);
	is_int(failed, 0, "every removal of a whole record succeeded while it was being made again");
	is_int(removed, ROUNDS, "%d records made and removed", ROUNDS);
	ok(made >= (unsigned long)removed && made <= (unsigned long)removed + 1 && bad == 0,
	   "each create either made a whole record (%lu) or was refused as a conflict (%lu)", made, refused);
	md_vmrec_remove(&p, "c1", NULL);

	/* what a delete that died at its last step leaves: an empty directory without its lock */
	{
		_cleanup_free_ char *lockp = md_vmrec_file(&p, "c2", "lock"), *rd2 = md_vmrec_dir(&p, "c2");
		md_err *e = NULL;
		int fd, fd2;

		mkdir(rd2, 0700);
		fd = md_vmrec_lock(&p, "c2", 0, &e);
		ok(fd < 0 && e && e->code == MD_EXIT_NOTFOUND && access(lockp, F_OK) < 0,
		   "an empty directory without its lock file: not found, and no lock file made");
		md_err_free(&e);
		fd = md_vmrec_make(&p, "c2", &e);
		ok(fd >= 0 && access(lockp, F_OK) == 0, "a create of its id removes it and makes the record");
		fd2 = md_vmrec_make(&p, "c2", &e);
		ok(fd2 < 0 && e && e->code == MD_EXIT_CONFLICT && access(lockp, F_OK) == 0,
		   "a second create of the id: conflict (class 4), the record left alone");
		md_err_free(&e);
		ok(md_vmrec_remove(&p, "c2", &e) == 0 && access(rd2, F_OK) < 0, "removed");
		ok(md_vmrec_remove(&p, "c2", &e) == 0, "removing a record that is gone is fine");
		if (fd >= 0)
			close(fd);
	}
	md_paths_free(&p);
}

/* The keeper's console log: rotated to .1 when full, each file at most log_max bytes, and what the
 * two hold together is exactly the end of what the VMM wrote (nothing lost at a rotation). */
static void keeper_logs(void)
{
	_cleanup_free_ char *serial = md_path_join(dir, "serial.log"), *vlog = md_path_join(dir, "vmm.log");
	_cleanup_free_ char *exitf = md_path_join(dir, "exit.json"), *old = md_strdup_printf("%s.1", serial);
	_cleanup_free_ char *want = NULL, *a = NULL, *b = NULL, *both = NULL;
	/* 3 rotations and a bit: lines of 6 bytes ("10000\n"), 3000 of them = 18000 bytes */
	char *const argv[] = { "sh", "-c", "seq 10000 12999", NULL };
	struct md_keeper_spec ks = {
		.argv = argv, .serial_log = serial, .vmm_log = vlog, .exit_file = exitf, .log_max = 4096,
	};
	struct stat st1, st2;
	pid_t vmm = 0, keeper = 0;
	size_t la = 0, lb = 0, lw = 0;
	FILE *f;

	/* an older .1, to be replaced */
	md_write_atomic(old, "old\n", 4, 0600, NULL);
	ok(md_keeper_start(&ks, &vmm, &keeper, NULL) == 0 && vmm > 0, "keeper started the chain");
	for (int i = 0; i < 500 && access(exitf, F_OK) < 0; i++)
		md_sleep_ns(10000000);
	ok(access(exitf, F_OK) == 0, "the chain ended, exit.json written");
	ok(stat(old, &st1) == 0 && st1.st_size == 4096, "the rotated file is full to the byte");
	ok(stat(serial, &st2) == 0 && st2.st_size > 0 && st2.st_size <= 4096, "the current file is within the bound");
	f = popen("seq 10000 12999", "r");
	want = malloc(65536);
	lw = f ? fread(want, 1, 65536, f) : 0;
	if (f)
		pclose(f);
	md_read_file(old, &a, &la, NULL);
	md_read_file(serial, &b, &lb, NULL);
	both = malloc(la + lb + 1);
	memcpy(both, a ? a : "", la);
	memcpy(both + la, b ? b : "", lb);
	ok(la + lb == (size_t)(lw % 4096 ? lw % 4096 + 4096 : 8192) && lw >= la + lb &&
		   !memcmp(both, want + lw - (la + lb), la + lb),
	   "the two files are exactly the last %zu bytes written, in order", la + lb);
}

int main(void)
{
	if (mkdtemp(dir) == NULL)
		return 1;
	rate_limits();
	specs();
	socket_wait();
	qemu_argv();
	record_lock();
	delete_race();
	create_vs_delete();
	keeper_logs();
	md_rm_rf(dir, NULL);
	return done_testing();
}
