/* Unit tests of metald-net's pure parts: MAC and name derivation, link-local addresses, the
 * --publish and --rate parsers, the rule text for a VM, IPAM's file and journal. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "../../lib/cleanup.h"
#include "../../lib/nl.h"
#include "../../lib/state.h"
#include "../../lib/ipam.h"
#include "../../lib/netrules.h"
#include "../../lib/vmnet.h"
#include "tap.h"

static void macs(void)
{
	uint8_t a[6], b[6], c[6];
	char s[32], ll[64], br[IFNAMSIZ], br2[IFNAMSIZ];

	md_vmnet_mac("vm1", a);
	md_vmnet_mac("vm1", b);
	md_vmnet_mac("vm2", c);
	ok(memcmp(a, b, 6) == 0, "the same id gets the same MAC");
	ok(memcmp(a, c, 6) != 0, "ids differing in one character get different MACs");
	ok(a[0] == 0x02, "MAC is locally administered unicast (%s)", md_mac_str(a, s, sizeof(s)));
	ok(memcmp(a + 1, c + 1, 3) != 0, "the hash spreads: the first bytes differ too");
	/* a MAC whose hash never changes: names and MACs of existing VMs depend on it */
	is_str(md_mac_str(a, s, sizeof(s)), "02:eb:91:fd:84:01", "MAC of vm1 is stable");
	uint8_t m[6] = { 0x02, 0x00, 0x5e, 0x10, 0x20, 0x30 };
	md_mac_linklocal(m, ll, sizeof(ll));
	is_str(ll, "fe80::5eff:fe10:2030", "EUI-64 link-local of 02:00:5e:10:20:30");
	md_ipam_bridge_name("tenant-a", br);
	md_ipam_bridge_name("tenant-b", br2);
	ok(strlen(br) == 15 && strncmp(br, "mdt", 3) == 0, "bridge name `%s` fits IFNAMSIZ", br);
	ok(strcmp(br, br2) != 0, "tenants get different bridges");
}

static void publish(void)
{
	json_t *arr = json_array();
	md_err *err = NULL;

	ok(md_vmnet_parse_publish("8080:80", arr, &err) == 0, "8080:80");
	ok(md_vmnet_parse_publish("5353:53/udp", arr, &err) == 0, "5353:53/udp");
	ok(md_vmnet_parse_publish("8080:81/udp", arr, &err) == 0, "the same port in another protocol");
	is_str(json_string_value(json_object_get(json_array_get(arr, 0), "protocol")), "tcp", "tcp by default");
	static const char *const bad[] = { "8080", "0:80", "8080:65536", "a:b", "80:80/sctp", "8080:82", ":80", NULL };
	for (size_t i = 0; bad[i]; i++) {
		ok(md_vmnet_parse_publish(bad[i], arr, &err) < 0 && err && err->code == MD_EXIT_USAGE,
		   "`%s` rejected: %s", bad[i], err ? err->msg : "(accepted)");
		md_err_free(&err);
	}
	json_decref(arr);
}

static void rates(void)
{
	struct md_vmnet_req r;
	md_err *err = NULL;

	memset(&r, 0, sizeof(r));
	ok(md_vmnet_parse_rate("rx=10M,tx=1M/64k", &r, &err) == 0, "rx=10M,tx=1M/64k");
	ok(r.rx_rate == 10u << 20 && r.rx_burst == (10u << 20) / 10, "rx 10 MiB/s, burst a tenth");
	ok(r.tx_rate == 1u << 20 && r.tx_burst == 64u << 10, "tx 1 MiB/s, burst 64 KiB");
	static const char *const bad[] = { "rx=", "up=1M", "rx=0", "rx=1M/1", "rx=fast", NULL };
	for (size_t i = 0; bad[i]; i++) {
		ok(md_vmnet_parse_rate(bad[i], &r, &err) < 0 && err && err->code == MD_EXIT_USAGE, "`%s` rejected",
		   bad[i]);
		md_err_free(&err);
	}
}

static void rules(void)
{
	json_t *vm = json_pack("{s:s, s:s, s:s, s:{s:s}, s:{s:s}, s:[{s:i, s:i, s:s}]}", "id", "vm1", "host_link",
			       "mdv0123456789ab", "mac", "02:00:5e:10:20:30", "ipv4", "address", "10.0.0.2", "ipv6",
			       "address", "fd00:1::2", "publish", "host_port", 8080, "guest_port", 80, "protocol", "tcp");
	struct md_nf_batch ba = { 0 }, bd = { 0 };
	char *add, *del;

	ok(md_rules_vm(&ba, vm, true) == 0 && md_rules_vm(&bd, vm, false) == 0, "elements of a VM");
	ok(ba.n == 10 && bd.n == 10, "10 elements: port, MAC, IPv4, 3 IPv6, 2 ND targets, 2 forwards (%zu, %zu)", ba.n,
	   bd.n);
	add = md_nf_batch_text(&ba);
	del = md_nf_batch_text(&bd);
	like(add, "add element bridge metald macs { \"mdv0123456789ab\" . 02:00:5e:10:20:30 comment \"vm:vm1\" }",
	     "MAC element tagged with the VM");
	like(add, "\"mdv0123456789ab\" . fe80::5eff:fe10:2030 comment \"vm:vm1\"", "link-local allowed");
	like(add, "add element inet metald pub4 { tcp . 8080 comment \"vm:vm1\" : 10.0.0.2 . 80 }", "port forward");
	like(del, "delete element inet metald pub6 { tcp . 8080 }", "delete by key");
	like(add, "add element bridge metald nd6 { \"mdv0123456789ab\" . 0xfd000001000000000000000000000002 comment \"vm:vm1\"",
	     "ND target element as raw 128 bits");
	ok(strstr(del, "comment") == NULL, "deletions carry no comments");
	ok(strstr(del, " : ") == NULL, "deletions name the key only");
	free(add);
	free(del);
	md_nf_batch_free(&ba);
	md_nf_batch_free(&bd);
	json_decref(vm);
}

static int count_logs(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	int n = 0;

	while (d && (de = readdir(d)))
		n += strlen(de->d_name) > 4 && strcmp(de->d_name + strlen(de->d_name) - 4, ".log") == 0;
	if (d)
		closedir(d);
	return n;
}

/* Append raw text to the one journal in dir. */
static int append_to_log(const char *dir, const char *text)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	int rc = -1;

	while (d && (de = readdir(d))) {
		size_t n = strlen(de->d_name);
		if (n > 4 && strcmp(de->d_name + n - 4, ".log") == 0) {
			_cleanup_free_ char *p = md_strdup_printf("%s/%s", dir, de->d_name);
			FILE *f = fopen(p, "a");
			rc = f && fputs(text, f) >= 0 ? 0 : -1;
			if (f)
				fclose(f);
			break;
		}
	}
	if (d)
		closedir(d);
	return rc;
}

static void ipam_journal(void)
{
	char root[] = "/tmp/metald-unit-ipam.XXXXXX";
	struct md_netcfg cfg;
	struct md_ipam ip;
	struct md_lease l;
	md_err *err = NULL;
	json_t *rec = NULL;
	bool gone = false, dup = false;
	char id[16], seen[200] = { 0 }, a4[64];
	_cleanup_free_ char *tdir = NULL, *cmd = NULL;

	if (mkdtemp(root) == NULL || md_netcfg_load(&cfg, &err) < 0) {
		ok(0, "ipam: setup: %s", err ? err->msg : "mkdtemp");
		return;
	}
	tdir = md_strdup_printf("%s/net/tenants", root);
	ok(md_ipam_open(&ip, root, &err) == 0, "ipam open");
	/* 150 leases: the first writes the tenant file, the others go to journals (rewritten into
	 * the file every 64 lines); every address distinct */
	for (int i = 0; i < 150; i++) {
		snprintf(id, sizeof(id), "v%d", i);
		if (md_ipam_lease(&ip, &cfg, "t", id, NULL, NULL, &l, &err) < 0) {
			ok(0, "lease %s: %s", id, err->msg);
			md_err_free(&err);
			break;
		}
		dup |= seen[l.addr4.b[3]]++ != 0;
	}
	ok(!dup, "150 leases, 150 distinct addresses");
	ok(md_ipam_tenant(&ip, "t", &rec, &err) == 0 && json_object_size(json_object_get(rec, "leases")) == 150,
	   "the tenant file with its journal replayed holds all 150");
	json_decref(rec);
	ok(count_logs(tdir) == 1, "one journal (the current epoch's)");
	ok(md_ipam_release(&ip, "t", "v7", &gone, &err) == 0 && !gone, "release v7");
	/* a crash inside an append leaves a torn line: ignored, and cut before the next append */
	ok(append_to_log(tdir, "{\"lease\":\"torn") == 0, "a torn last line");
	ok(md_ipam_lease(&ip, &cfg, "t", "again", NULL, NULL, &l, &err) == 0, "lease after a torn line");
	ok(l.addr4.b[3] == 9, "it gets v7's address back (%s)", md_addr_str(&l.addr4, a4, sizeof(a4)));
	ok(md_ipam_tenant(&ip, "t", &rec, &err) == 0 && json_object_get(json_object_get(rec, "leases"), "again") &&
	       !json_object_get(json_object_get(rec, "leases"), "v7"),
	   "the journal reads back whole after the cut");
	json_decref(rec);
	/* a journal of another epoch (left by a crash) is never replayed, and the sweep removes it */
	free(cmd);
	cmd = md_strdup_printf("%s/t.42.log", tdir);
	ok(md_write_atomic(cmd, "{\"release\":\"v1\"}\n", 17, 0600, &err) == 0, "a stale journal");
	ok(md_ipam_tenant(&ip, "t", &rec, &err) == 0 && json_object_get(json_object_get(rec, "leases"), "v1"),
	   "a stale journal is not replayed");
	json_decref(rec);
	{
		char **removed = NULL;

		int src = md_ipam_sweep(&ip, &removed, &err);

		ok(src == 0 && removed[0] && strcmp(removed[0], "t.42.log") == 0 &&
		       removed[1] == NULL,
		   "sweep removes it, and only it");
		md_strv_free(removed);
	}
	for (int i = 0; i < 150; i++) {
		snprintf(id, sizeof(id), "v%d", i);
		md_ipam_release(&ip, "t", id, &gone, &err);
	}
	ok(md_ipam_release(&ip, "t", "again", &gone, &err) == 0 && gone, "the last release removes the tenant");
	ok(count_logs(tdir) == 0 && access(tdir, F_OK) == 0, "and its journal");
	md_ipam_close(&ip);
	md_netcfg_free(&cfg);
	md_rm_rf(root, NULL);
}

int main(void)
{
	macs();
	publish();
	rates();
	rules();
	ipam_journal();
	return done_testing();
}
