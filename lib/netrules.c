/* metald-net's nftables rules. All per-VM and per-tenant state lives in named sets and maps, so
 * the rules themselves never change when VMs come and go: adding a VM is one transaction of set
 * elements, looked up by hash in the kernel, and the 500th VM costs what the first did. Each
 * element carries a comment naming its VM ("vm:ID") or tenant ("tenant:T") so gc and delete
 * remove exactly what belongs to it.
 *
 * table bridge metald: seen by frames as they enter a tenant bridge from a VM's port. A frame is
 * dropped unless its source MAC is the VM's and its IPv4/IPv6/ARP source address is the VM's
 * (IPv6: its address, its EUI-64 link-local address, or :: for duplicate address detection), so
 * a guest can send only as itself; anything but IPv4, IPv6 and ARP is dropped; so are router
 * advertisements and redirects from guests and everything to 169.254.169.254.
 *
 * table inet metald: routing between segments is dropped (tenants never meet; a tenant's own VMs
 * talk over their bridge without routing); unsolicited traffic from outside to guests is dropped
 * except published ports; traffic from guests to the host itself is dropped except neighbour
 * discovery, ping of their own gateway and UNKEY_METALD_NETWORK_HOST_ALLOW; egress is
 * masqueraded (IPv6 too unless UNKEY_METALD_NETWORK_IPV6_NAT=false); published ports are DNATed
 * in prerouting (other hosts, and guests of the same tenant: those connections are masqueraded
 * to the gateway so the reply comes back through the host) and output (the host itself). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "netrules.h"
#include "parse.h"
#include "cleanup.h"
#include "state.h"

char *md_rules_setup(const struct md_netcfg *cfg)
{
	const char *allow = cfg->host_allow && *cfg->host_allow ? cfg->host_allow : NULL;

	return md_strdup_printf(
		"add table bridge metald { comment \"metald-net: per-VM anti-spoofing\"; }\n"
		"add set bridge metald ports { type ifname; comment \"host side of each VM's veth\"; }\n"
		"add set bridge metald macs { type ifname . ether_addr; }\n"
		"add set bridge metald addr4 { type ifname . ipv4_addr; }\n"
		"add set bridge metald addr6 { type ifname . ipv6_addr; }\n"
		"add set bridge metald nd6 { typeof iifname . @th,64,128; comment \"port . ND target it may claim\"; }\n"
		"add chain bridge metald prerouting { type filter hook prerouting priority filter; policy accept; }\n"
		"flush chain bridge metald prerouting\n"
		"add rule bridge metald prerouting iifname != @ports accept\n"
		"add rule bridge metald prerouting iifname . ether saddr != @macs drop\n"
		"add rule bridge metald prerouting ether type != { ip, ip6, arp } drop\n"
		"add rule bridge metald prerouting ether type arp iifname . arp saddr ether != @macs drop\n"
		"add rule bridge metald prerouting ether type arp iifname . arp saddr ip != @addr4 drop\n"
		"add rule bridge metald prerouting ether type ip iifname . ip saddr != @addr4 drop\n"
		"add rule bridge metald prerouting ether type ip6 iifname . ip6 saddr != @addr6 drop\n"
		/* a neighbour advertisement claims its target address: only the VM's own (nft 1.0.6 has no
		 * name for the target field, so it is the 128 bits after the ICMPv6 header's first 8 bytes) */
		"add rule bridge metald prerouting icmpv6 type nd-neighbor-advert iifname . @th,64,128 != @nd6 drop\n"
		"add rule bridge metald prerouting ip daddr 169.254.169.254 drop\n"
		"add rule bridge metald prerouting icmpv6 type { nd-router-advert, nd-redirect } drop\n"
		"add table inet metald { comment \"metald-net: NAT, isolation, port forwards\"; }\n"
		"add set inet metald bridges { type ifname; comment \"tenant bridges\"; }\n"
		"add set inet metald self { type ifname . ifname; }\n"
		"add set inet metald gw4 { type ifname . ipv4_addr; comment \"tenant bridge . its gateway\"; }\n"
		"add set inet metald gw6 { type ifname . ipv6_addr; }\n"
		"add set inet metald host_allow { type inet_proto . inet_service; }\n"
		"flush set inet metald host_allow\n"
		"%s%s%s"
		"add map inet metald pub4 { type inet_proto . inet_service : ipv4_addr . inet_service; }\n"
		"add map inet metald pub6 { type inet_proto . inet_service : ipv6_addr . inet_service; }\n"
		"add chain inet metald prerouting { type nat hook prerouting priority dstnat; policy accept; }\n"
		"add chain inet metald output { type nat hook output priority -100; policy accept; }\n"
		"add chain inet metald postrouting { type nat hook postrouting priority srcnat; policy accept; }\n"
		"add chain inet metald forward { type filter hook forward priority filter; policy accept; }\n"
		"add chain inet metald input { type filter hook input priority filter; policy accept; }\n"
		"flush chain inet metald prerouting\n"
		"flush chain inet metald output\n"
		"flush chain inet metald postrouting\n"
		"flush chain inet metald forward\n"
		"flush chain inet metald input\n"
		"add rule inet metald prerouting fib daddr type local dnat ip to meta l4proto . th dport map @pub4\n"
		"add rule inet metald prerouting fib daddr type local dnat ip6 to meta l4proto . th dport map @pub6\n"
		"add rule inet metald output fib daddr type local dnat ip to meta l4proto . th dport map @pub4\n"
		"add rule inet metald output fib daddr type local dnat ip6 to meta l4proto . th dport map @pub6\n"
		"add rule inet metald postrouting iifname . oifname @self ct status dnat masquerade\n"
		"add rule inet metald postrouting %siifname @bridges oifname != @bridges masquerade\n"
		"add rule inet metald forward iifname . oifname @self accept\n"
		"add rule inet metald forward iifname @bridges oifname @bridges drop\n"
		"add rule inet metald forward iifname @bridges ip daddr 169.254.169.254 drop\n"
		"add rule inet metald forward oifname @bridges ct state established,related accept\n"
		"add rule inet metald forward oifname @bridges ct status dnat accept\n"
		"add rule inet metald forward oifname @bridges drop\n"
		"add rule inet metald input iifname != @bridges accept\n"
		"add rule inet metald input ct state established,related accept\n"
		"add rule inet metald input icmpv6 type { nd-neighbor-solicit, nd-neighbor-advert, nd-router-solicit, "
		"mld-listener-report, mld2-listener-report } accept\n"
		"add rule inet metald input iifname . ip daddr @gw4 icmp type echo-request accept\n"
		"add rule inet metald input iifname . ip6 daddr @gw6 icmpv6 type echo-request accept\n"
		"add rule inet metald input iifname . ip daddr @gw4 meta l4proto . th dport @host_allow accept\n"
		"add rule inet metald input iifname . ip6 daddr @gw6 meta l4proto . th dport @host_allow accept\n"
		"add rule inet metald input drop\n",
		allow ? "add element inet metald host_allow { " : "", allow ? allow : "", allow ? " }\n" : "",
		cfg->nat6 ? "" : "meta nfproto ipv4 ");
}

char *md_rules_teardown(void)
{
	return strdup("delete table bridge metald\ndelete table inet metald\n");
}

char *md_rules_flush_sets(void)
{
	return strdup("flush set bridge metald ports\nflush set bridge metald macs\n"
		      "flush set bridge metald addr4\nflush set bridge metald addr6\nflush set bridge metald nd6\n"
		      "flush set inet metald bridges\nflush set inet metald self\n"
		      "flush set inet metald gw4\nflush set inet metald gw6\n"
		      "flush map inet metald pub4\nflush map inet metald pub6\n");
}

char *md_rules_tenant(const char *tenant, const char *bridge, const char *gw4, const char *gw6, bool add)
{
	if (add)
		return md_strdup_printf("add element inet metald bridges { \"%s\" comment \"tenant:%s\" }\n"
					"add element inet metald self { \"%s\" . \"%s\" comment \"tenant:%s\" }\n"
					"add element inet metald gw4 { \"%s\" . %s comment \"tenant:%s\" }\n"
					"add element inet metald gw6 { \"%s\" . %s comment \"tenant:%s\" }\n",
					bridge, tenant, bridge, bridge, tenant, bridge, gw4, tenant, bridge, gw6, tenant);
	return md_strdup_printf("delete element inet metald bridges { \"%s\" }\n"
				"delete element inet metald self { \"%s\" . \"%s\" }\n"
				"delete element inet metald gw4 { \"%s\" . %s }\n"
				"delete element inet metald gw6 { \"%s\" . %s }\n",
				bridge, bridge, bridge, bridge, gw4, bridge, gw6);
}

void md_mac_linklocal(const uint8_t m[6], char *buf, size_t len)
{
	/* modified EUI-64: flip the universal/local bit, put ff:fe in the middle */
	struct md_addr a = { .family = AF_INET6 };
	const uint8_t iid[8] = { m[0] ^ 2, m[1], m[2], 0xff, 0xfe, m[3], m[4], m[5] };

	a.b[0] = 0xfe;
	a.b[1] = 0x80;
	memcpy(a.b + 8, iid, 8);
	md_addr_str(&a, buf, len);
}

__attribute__((format(printf, 2, 3))) static void append(char **buf, const char *fmt, ...)
{
	va_list ap;
	char *line, *nb;

	va_start(ap, fmt);
	if (vasprintf(&line, fmt, ap) < 0)
		abort();
	va_end(ap);
	nb = md_strdup_printf("%s%s", *buf ? *buf : "", line);
	free(*buf);
	free(line);
	*buf = nb;
}

/* An IPv6 address as 32 hex digits, for sets keyed by raw payload. */
static int addr_hex(const char *s, char out[40])
{
	struct md_addr a;

	if (md_parse_addr(s, &a, NULL) < 0 || a.family != AF_INET6)
		return -1;
	for (int i = 0; i < 16; i++)
		sprintf(out + 2 * i, "%02x", a.b[i]);
	return 0;
}

void md_rules_vm(char **buf, json_t *vm, bool add)
{
	const char *id = json_string_value(json_object_get(vm, "id"));
	const char *port = json_string_value(json_object_get(vm, "host_link"));
	const char *mac = json_string_value(json_object_get(vm, "mac"));
	const char *a4 = json_string_value(json_object_get(json_object_get(vm, "ipv4"), "address"));
	const char *a6 = json_string_value(json_object_get(json_object_get(vm, "ipv6"), "address"));
	const char *verb = add ? "add" : "delete";
	_cleanup_free_ char *c = add ? md_strdup_printf(" comment \"vm:%s\"", id) : strdup("");
	char ll[INET6_ADDRSTRLEN];
	uint8_t m[6];
	size_t i;
	json_t *p;

	if (!id || !port || !mac || !a4 || !a6 || md_parse_mac(mac, false, m, NULL) < 0)
		return;
	md_mac_linklocal(m, ll, sizeof(ll));
	append(buf, "%s element bridge metald ports { \"%s\"%s }\n", verb, port, c);
	append(buf, "%s element bridge metald macs { \"%s\" . %s%s }\n", verb, port, mac, c);
	append(buf, "%s element bridge metald addr4 { \"%s\" . %s%s }\n", verb, port, a4, c);
	append(buf, "%s element bridge metald addr6 { \"%s\" . %s%s, \"%s\" . %s%s, \"%s\" . ::%s }\n", verb, port, a6,
	       c, port, ll, c, port, c);
	{
		char h6[40], hll[40];

		if (addr_hex(a6, h6) == 0 && addr_hex(ll, hll) == 0)
			append(buf, "%s element bridge metald nd6 { \"%s\" . 0x%s%s, \"%s\" . 0x%s%s }\n", verb, port, h6, c,
			       port, hll, c);
	}
	json_array_foreach(json_object_get(vm, "publish"), i, p) {
		const char *proto = json_string_value(json_object_get(p, "protocol"));
		json_int_t hp = json_integer_value(json_object_get(p, "host_port"));
		json_int_t gp = json_integer_value(json_object_get(p, "guest_port"));

		if (add) {
			append(buf, "add element inet metald pub4 { %s . %lld%s : %s . %lld }\n", proto, (long long)hp, c, a4,
			       (long long)gp);
			append(buf, "add element inet metald pub6 { %s . %lld%s : %s . %lld }\n", proto, (long long)hp, c, a6,
			       (long long)gp);
		} else {
			append(buf, "delete element inet metald pub4 { %s . %lld }\n", proto, (long long)hp);
			append(buf, "delete element inet metald pub6 { %s . %lld }\n", proto, (long long)hp);
		}
	}
}
