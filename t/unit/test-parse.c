/* Unit tests of lib/parse.c: every accepted form and the edges around it. */
#include <arpa/inet.h>
#include "../../lib/parse.h"
#include "tap.h"

static void durations(void)
{
	static const struct { const char *s; unsigned long long ns; } good[] = {
		{ "100ms", 100000000ULL }, { "1.5s", 1500000000ULL }, { "2m", 120000000000ULL },
		{ "1h", 3600000000000ULL }, { "250us", 250000ULL },   { "10ns", 10ULL },
		{ "3", 3000000000ULL },     { "0", 0 },               { "0.001s", 1000000ULL },
		{ "1.25ms", 1250000ULL },
	};
	static const char *const bad[] = { "", "ms", "1.s", ".5s", "-1s", "1x", "1 s", "1s ", "1.5.5s",
					   "99999999999999999999s", "20000000000h", "1S", NULL };
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		uint64_t ns = 1;
		md_err *err = NULL;
		int r = md_parse_duration(good[i].s, &ns, &err);
		ok(r == 0 && ns == good[i].ns, "duration `%s` = %llu ns (got %llu)", good[i].s, good[i].ns,
		   (unsigned long long)ns);
		md_err_free(&err);
	}
	for (size_t i = 0; bad[i]; i++) {
		uint64_t ns;
		md_err *err = NULL;
		int r = md_parse_duration(bad[i], &ns, &err);
		ok(r < 0 && err && err->code == MD_EXIT_USAGE, "duration `%s` rejected: %s", bad[i],
		   err ? err->msg : "(accepted)");
		md_err_free(&err);
	}
}

static void sizes(void)
{
	static const struct { const char *s; unsigned long long b; } good[] = {
		{ "512M", 512ULL << 20 }, { "1GiB", 1ULL << 30 }, { "4096", 4096 }, { "4k", 4096 },
		{ "10MB", 10000000ULL }, { "1.5G", 3ULL << 29 },  { "1T", 1ULL << 40 }, { "0", 0 },
		{ "128MiB", 128ULL << 20 }, { "7B", 7 },
	};
	static const char *const bad[] = { "", "M", "1.5", "-1", "1X", "1 G", "1g b", "0.1B",
					   "99999999999999999999", "16777216T", "1Gi", NULL };
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		uint64_t b = 1;
		md_err *err = NULL;
		int r = md_parse_size(good[i].s, &b, &err);
		ok(r == 0 && b == good[i].b, "size `%s` = %llu (got %llu)", good[i].s, good[i].b, (unsigned long long)b);
		md_err_free(&err);
	}
	for (size_t i = 0; bad[i]; i++) {
		uint64_t b;
		md_err *err = NULL;
		int r = md_parse_size(bad[i], &b, &err);
		ok(r < 0 && err && err->code == MD_EXIT_USAGE, "size `%s` rejected: %s", bad[i], err ? err->msg : "(accepted)");
		md_err_free(&err);
	}
}

static void booleans(void)
{
	static const char *const t[] = { "true", "1", "yes", "on", "TRUE", "Yes", NULL };
	static const char *const f[] = { "false", "0", "no", "off", "False", NULL };
	static const char *const bad[] = { "", "2", "y", "n", "truee", " true", "t", NULL };
	for (size_t i = 0; t[i]; i++) {
		bool v = false;
		ok(md_parse_bool(t[i], &v, NULL) == 0 && v, "bool `%s` is true", t[i]);
	}
	for (size_t i = 0; f[i]; i++) {
		bool v = true;
		ok(md_parse_bool(f[i], &v, NULL) == 0 && !v, "bool `%s` is false", f[i]);
	}
	for (size_t i = 0; bad[i]; i++) {
		bool v;
		md_err *err = NULL;
		ok(md_parse_bool(bad[i], &v, &err) < 0 && err->code == MD_EXIT_USAGE, "bool `%s` rejected", bad[i]);
		md_err_free(&err);
	}
}

static void numbers(void)
{
	uint64_t u;
	int64_t i;
	md_err *err = NULL;

	ok(md_parse_u64("42", 0, 100, &u, NULL) == 0 && u == 42, "u64 42");
	ok(md_parse_u64("18446744073709551615", 0, UINT64_MAX, &u, NULL) == 0 && u == UINT64_MAX, "u64 max");
	ok(md_parse_u64("18446744073709551616", 0, UINT64_MAX, &u, NULL) < 0, "u64 overflow rejected");
	ok(md_parse_u64("101", 0, 100, &u, &err) < 0, "u64 above range rejected");
	like(err ? err->msg : NULL, "between 0 and 100", "range message names the bounds");
	md_err_free(&err);
	ok(md_parse_u64("", 0, 100, &u, NULL) < 0, "u64 empty rejected");
	ok(md_parse_u64("+1", 0, 100, &u, NULL) < 0, "u64 sign rejected");
	ok(md_parse_u64("1a", 0, 100, &u, NULL) < 0, "u64 trailing junk rejected");
	ok(md_parse_u64(" 1", 0, 100, &u, NULL) < 0, "u64 leading space rejected");
	ok(md_parse_i64("-5", -10, 10, &i, NULL) == 0 && i == -5, "i64 -5");
	ok(md_parse_i64("-11", -10, 10, &i, NULL) < 0, "i64 below range rejected");
	ok(md_parse_i64("-", -10, 10, &i, NULL) < 0, "i64 lone sign rejected");
}

static void addresses(void)
{
	struct md_addr a, b;
	struct md_cidr c, d;
	char buf[64];
	uint8_t mac[6];
	md_err *err = NULL;

	ok(md_parse_addr("10.1.2.3", &a, NULL) == 0 && a.family == AF_INET, "IPv4 address");
	is_str(md_addr_str(&a, buf, sizeof(buf)), "10.1.2.3", "IPv4 formats back");
	ok(md_parse_addr("fd00::1", &a, NULL) == 0 && a.family == AF_INET6, "IPv6 address");
	is_str(md_addr_str(&a, buf, sizeof(buf)), "fd00::1", "IPv6 formats back");
	ok(md_parse_addr("::ffff:1.2.3.4", &a, NULL) == 0 && a.family == AF_INET6, "v4-mapped IPv6");
	static const char *const badaddr[] = { "", "1.2.3", "1.2.3.256", "1.2.3.4 ", "01.2.3.4x", "fd00:::1",
					       "gg::1", "1.2.3.4/32", "localhost", NULL };
	for (size_t i = 0; badaddr[i]; i++) {
		ok(md_parse_addr(badaddr[i], &a, &err) < 0 && err->code == MD_EXIT_USAGE, "address `%s` rejected",
		   badaddr[i]);
		md_err_free(&err);
	}
	ok(md_parse_addr("10.0.0.1", &a, NULL) == 0 && md_parse_addr("10.0.0.1", &b, NULL) == 0 && md_addr_eq(&a, &b),
	   "addr_eq equal");

	ok(md_parse_cidr("10.0.0.0/8", false, &c, NULL) == 0 && c.prefix == 8, "CIDR v4");
	is_str(md_cidr_str(&c, buf, sizeof(buf)), "10.0.0.0/8", "CIDR formats back");
	ok(md_parse_cidr("fd00::/64", false, &c, NULL) == 0 && c.prefix == 64, "CIDR v6");
	ok(md_parse_cidr("0.0.0.0/0", false, &c, NULL) == 0 && c.prefix == 0, "CIDR /0");
	ok(md_parse_cidr("10.0.0.1/32", false, &c, NULL) == 0, "CIDR /32");
	ok(md_parse_cidr("10.0.0.1/8", false, &c, &err) < 0, "host bits rejected");
	like(err ? err->msg : NULL, "host bits", "host-bits message");
	md_err_free(&err);
	ok(md_parse_cidr("10.0.0.1/8", true, &c, NULL) == 0, "host bits allowed on request");
	static const char *const badcidr[] = { "", "10.0.0.0", "10.0.0.0/", "10.0.0.0/33", "fd00::/129",
					       "10.0.0.0/-1", "10.0.0.0/8x", "/8", "x/8", "10.0.0.0//8", NULL };
	for (size_t i = 0; badcidr[i]; i++) {
		ok(md_parse_cidr(badcidr[i], false, &c, &err) < 0 && err->code == MD_EXIT_USAGE, "CIDR `%s` rejected",
		   badcidr[i]);
		md_err_free(&err);
	}
	md_parse_cidr("10.0.0.0/8", false, &c, NULL);
	md_parse_addr("10.255.0.1", &a, NULL);
	ok(md_cidr_contains(&c, &a), "10/8 contains 10.255.0.1");
	md_parse_addr("11.0.0.1", &a, NULL);
	ok(!md_cidr_contains(&c, &a), "10/8 does not contain 11.0.0.1");
	md_parse_cidr("10.20.0.0/16", false, &d, NULL);
	ok(md_cidr_overlaps(&c, &d) && md_cidr_overlaps(&d, &c), "10/8 overlaps 10.20/16 both ways");
	md_parse_cidr("172.16.0.0/12", false, &d, NULL);
	ok(!md_cidr_overlaps(&c, &d), "10/8 does not overlap 172.16/12");
	md_parse_cidr("fd00::/8", false, &d, NULL);
	ok(!md_cidr_overlaps(&c, &d), "families never overlap");

	ok(md_parse_mac("02:aa:bb:cc:dd:ee", false, mac, NULL) == 0 && mac[0] == 2 && mac[5] == 0xee, "MAC");
	is_str(md_mac_str(mac, buf, sizeof(buf)), "02:aa:bb:cc:dd:ee", "MAC formats back");
	ok(md_parse_mac("02-AA-BB-CC-DD-EE", false, mac, NULL) == 0 && mac[1] == 0xaa, "MAC with dashes, upper");
	ok(md_parse_mac("01:00:5e:00:00:01", false, mac, &err) < 0, "multicast MAC rejected");
	md_err_free(&err);
	static const char *const badmac[] = { "", "02:aa:bb:cc:dd", "02:aa:bb:cc:dd:ee:ff", "02:aa:bb:cc:dd:eg",
					      "02:aa-bb:cc:dd:ee", "2:aa:bb:cc:dd:ee:", "00:00:00:00:00:00",
					      "02aabbccddee", " 2:aa:bb:cc:dd:ee", NULL };
	for (size_t i = 0; badmac[i]; i++) {
		ok(md_parse_mac(badmac[i], false, mac, &err) < 0 && err->code == MD_EXIT_USAGE, "MAC `%s` rejected",
		   badmac[i]);
		md_err_free(&err);
	}
}

int main(void)
{
	durations();
	sizes();
	booleans();
	numbers();
	addresses();
	return done_testing();
}
