/* Strict value parsers; every accepted form is listed in parse.h and unit-tested. */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "parse.h"

static int digits_only(const char *s)
{
	if (*s == '\0')
		return 0;
	for (; *s; s++)
		if (!isdigit((unsigned char)*s))
			return 0;
	return 1;
}

int md_parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out, md_err **err)
{
	unsigned long long v;
	char *end;

	if (s == NULL || !digits_only(s))
		return md_usage(err, "`%s`: not a whole number", s ? s : "");
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno == ERANGE || *end)
		return md_usage(err, "`%s`: number too large", s);
	if (v < min || v > max)
		return md_usage(err, "`%s`: must be between %llu and %llu", s, (unsigned long long)min,
				(unsigned long long)max);
	*out = v;
	return 0;
}

int md_parse_i64(const char *s, int64_t min, int64_t max, int64_t *out, md_err **err)
{
	long long v;
	char *end;
	const char *d = s && (*s == '-' || *s == '+') ? s + 1 : s;

	if (s == NULL || !digits_only(d))
		return md_usage(err, "`%s`: not a whole number", s ? s : "");
	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno == ERANGE || *end)
		return md_usage(err, "`%s`: number out of range", s);
	if (v < min || v > max)
		return md_usage(err, "`%s`: must be between %lld and %lld", s, (long long)min, (long long)max);
	*out = v;
	return 0;
}

/* Parse "<digits>[.<digits>]" then a unit from the table; the result is value * unit exactly,
 * fractions rounded down to the smallest unit. */
struct unit {
	const char *name;
	uint64_t mult;
};

static int parse_scaled(const char *s, const struct unit *units, const char *what, const char *forms,
			uint64_t *out, md_err **err)
{
	const char *p = s;
	uint64_t ip = 0, frac = 0, fdiv = 1, mult = 0;
	int nd = 0;

	if (s == NULL || *s == '\0')
		return md_usage(err, "%s ``: empty (%s)", what, forms);
	while (isdigit((unsigned char)*p)) {
		if (ip > (UINT64_MAX - 9) / 10)
			return md_usage(err, "%s `%s`: too large", what, s);
		ip = ip * 10 + (uint64_t)(*p++ - '0');
		nd++;
	}
	if (*p == '.') {
		p++;
		if (!isdigit((unsigned char)*p))
			return md_usage(err, "%s `%s`: invalid (%s)", what, s, forms);
		while (isdigit((unsigned char)*p)) {
			if (fdiv < 1000000000000ULL) {
				frac = frac * 10 + (uint64_t)(*p - '0');
				fdiv *= 10;
			}
			p++;
		}
	}
	if (nd == 0)
		return md_usage(err, "%s `%s`: invalid (%s)", what, s, forms);
	for (const struct unit *u = units; u->name; u++) {
		if (strcmp(p, u->name) == 0) {
			mult = u->mult;
			break;
		}
	}
	if (mult == 0)
		return md_usage(err, "%s `%s`: unknown unit `%s` (%s)", what, s, p, forms);
	if (frac && mult == 1)
		return md_usage(err, "%s `%s`: a fraction needs a unit (%s)", what, s, forms);
	if (ip > UINT64_MAX / mult)
		return md_usage(err, "%s `%s`: too large", what, s);
	ip *= mult;
	/* frac/fdiv * mult, computed without overflow for the multipliers we have (<= 2^40 or 3.6e12) */
	{
		unsigned __int128 f = (unsigned __int128)frac * mult / fdiv;
		if (ip > UINT64_MAX - (uint64_t)f)
			return md_usage(err, "%s `%s`: too large", what, s);
		ip += (uint64_t)f;
	}
	*out = ip;
	return 0;
}

int md_parse_duration(const char *s, uint64_t *ns, md_err **err)
{
	static const struct unit units[] = {
		{ "ns", 1ULL },
		{ "us", 1000ULL },
		{ "ms", 1000000ULL },
		{ "s", 1000000000ULL },
		{ "", 1000000000ULL },
		{ "m", 60ULL * 1000000000ULL },
		{ "h", 3600ULL * 1000000000ULL },
		{ NULL, 0 },
	};
	return parse_scaled(s, units, "duration", "e.g. 100ms, 1.5s, 2m, 1h", ns, err);
}

int md_parse_size(const char *s, uint64_t *bytes, md_err **err)
{
	static const struct unit units[] = {
		{ "", 1ULL },
		{ "B", 1ULL },
		{ "K", 1ULL << 10 },
		{ "k", 1ULL << 10 },
		{ "KiB", 1ULL << 10 },
		{ "KB", 1000ULL },
		{ "kB", 1000ULL },
		{ "M", 1ULL << 20 },
		{ "MiB", 1ULL << 20 },
		{ "MB", 1000000ULL },
		{ "G", 1ULL << 30 },
		{ "GiB", 1ULL << 30 },
		{ "GB", 1000000000ULL },
		{ "T", 1ULL << 40 },
		{ "TiB", 1ULL << 40 },
		{ "TB", 1000000000000ULL },
		{ NULL, 0 },
	};
	int r = parse_scaled(s, units, "size", "e.g. 512M, 1GiB, 4096", bytes, err);
	if (r == 0 && strchr(s, '.') && *bytes == 0)
		return md_usage(err, "size `%s`: rounds to zero bytes", s);
	return r;
}

int md_parse_bool(const char *s, bool *out, md_err **err)
{
	static const char *const t[] = { "true", "1", "yes", "on" };
	static const char *const f[] = { "false", "0", "no", "off" };

	for (size_t i = 0; s && i < 4; i++) {
		if (strcasecmp(s, t[i]) == 0) {
			*out = true;
			return 0;
		}
		if (strcasecmp(s, f[i]) == 0) {
			*out = false;
			return 0;
		}
	}
	return md_usage(err, "`%s`: not a boolean (true/false, yes/no, 1/0, on/off)", s ? s : "");
}

int md_parse_addr(const char *s, struct md_addr *out, md_err **err)
{
	memset(out, 0, sizeof(*out));
	if (s && strchr(s, ':')) {
		if (inet_pton(AF_INET6, s, &out->v6) == 1) {
			out->family = AF_INET6;
			return 0;
		}
	} else if (s && inet_pton(AF_INET, s, &out->v4) == 1) {
		out->family = AF_INET;
		return 0;
	}
	return md_usage(err, "`%s`: not an IPv4 or IPv6 address", s ? s : "");
}

const char *md_addr_str(const struct md_addr *a, char *buf, size_t len)
{
	if (inet_ntop(a->family, a->b, buf, (socklen_t)len) == NULL)
		snprintf(buf, len, "?");
	return buf;
}

bool md_addr_eq(const struct md_addr *a, const struct md_addr *b)
{
	if (a->family != b->family)
		return false;
	return memcmp(a->b, b->b, a->family == AF_INET ? 4 : 16) == 0;
}

static bool prefix_eq(const uint8_t *a, const uint8_t *b, unsigned bits)
{
	unsigned full = bits / 8, rest = bits % 8;

	if (memcmp(a, b, full) != 0)
		return false;
	if (rest) {
		uint8_t m = (uint8_t)(0xff << (8 - rest));
		if ((a[full] & m) != (b[full] & m))
			return false;
	}
	return true;
}

int md_parse_cidr(const char *s, bool allow_host, struct md_cidr *out, md_err **err)
{
	char buf[INET6_ADDRSTRLEN + 8];
	const char *slash;
	uint64_t pfx;
	unsigned max, i;

	if (s == NULL || (slash = strchr(s, '/')) == NULL || (size_t)(slash - s) >= INET6_ADDRSTRLEN)
		return md_usage(err, "`%s`: not a CIDR (address/prefix, e.g. 10.0.0.0/16 or fd00::/64)", s ? s : "");
	snprintf(buf, sizeof(buf), "%.*s", (int)(slash - s), s);
	if (md_parse_addr(buf, &out->addr, NULL) < 0)
		return md_usage(err, "`%s`: not a CIDR (address/prefix, e.g. 10.0.0.0/16 or fd00::/64)", s);
	max = out->addr.family == AF_INET ? 32 : 128;
	if (md_parse_u64(slash + 1, 0, max, &pfx, NULL) < 0)
		return md_usage(err, "`%s`: prefix length must be 0-%u", s, max);
	out->prefix = (unsigned)pfx;
	for (i = out->prefix; i < max; i++) {
		if (out->addr.b[i / 8] & (0x80 >> (i % 8))) {
			if (!allow_host)
				return md_usage(err, "`%s`: host bits set (did you mean the network address?)", s);
			break;
		}
	}
	return 0;
}

const char *md_cidr_str(const struct md_cidr *c, char *buf, size_t len)
{
	char a[INET6_ADDRSTRLEN];

	snprintf(buf, len, "%s/%u", md_addr_str(&c->addr, a, sizeof(a)), c->prefix);
	return buf;
}

bool md_cidr_contains(const struct md_cidr *c, const struct md_addr *a)
{
	return c->addr.family == a->family && prefix_eq(c->addr.b, a->b, c->prefix);
}

bool md_cidr_overlaps(const struct md_cidr *a, const struct md_cidr *b)
{
	unsigned p = a->prefix < b->prefix ? a->prefix : b->prefix;

	return a->addr.family == b->addr.family && prefix_eq(a->addr.b, b->addr.b, p);
}

int md_parse_mac(const char *s, bool allow_multicast, uint8_t mac[6], md_err **err)
{
	unsigned v[6];
	char sep, tail;
	int n;

	if (s == NULL || strlen(s) != 17)
		goto bad;
	sep = s[2];
	if (sep != ':' && sep != '-')
		goto bad;
	for (int i = 0; i < 17; i++) {
		if (i % 3 == 2) {
			if (s[i] != sep)
				goto bad;
		} else if (!isxdigit((unsigned char)s[i])) {
			goto bad;
		}
	}
	n = sep == ':' ? sscanf(s, "%2x:%2x:%2x:%2x:%2x:%2x%c", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &tail)
		       : sscanf(s, "%2x-%2x-%2x-%2x-%2x-%2x%c", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &tail);
	if (n != 6)
		goto bad;
	for (int i = 0; i < 6; i++)
		mac[i] = (uint8_t)v[i];
	if (!allow_multicast && (mac[0] & 1))
		return md_usage(err, "MAC `%s`: multicast address (lowest bit of the first byte set)", s);
	if (memcmp(mac, "\0\0\0\0\0\0", 6) == 0)
		return md_usage(err, "MAC `%s`: all zeros", s);
	return 0;
bad:
	return md_usage(err, "`%s`: not a MAC address (aa:bb:cc:dd:ee:ff)", s ? s : "");
}

const char *md_mac_str(const uint8_t mac[6], char *buf, size_t len)
{
	snprintf(buf, len, "%02x:%02x:%02x:%02x:%02x:%02x", mac[0], mac[1], mac[2], mac[3], mac[4], mac[5]);
	return buf;
}
