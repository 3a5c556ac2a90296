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
#include <netinet/in.h>
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

void md_rules_flush_sets(struct md_nf_batch *b)
{
	static const char *const bridge_sets[] = { "ports", "macs", "addr4", "addr6", "nd6" };
	static const char *const inet_sets[] = { "bridges", "self", "gw4", "gw6", "pub4", "pub6" };

	for (size_t i = 0; i < sizeof(bridge_sets) / sizeof(*bridge_sets); i++)
		md_nf_batch_flush(b, MD_NF_FAMILY_BRIDGE, "metald", bridge_sets[i]);
	for (size_t i = 0; i < sizeof(inet_sets) / sizeof(*inet_sets); i++)
		md_nf_batch_flush(b, MD_NF_FAMILY_INET, "metald", inet_sets[i]);
}

int md_rules_tenant(struct md_nf_batch *b, const char *tenant, const char *bridge, const char *gw4, const char *gw6,
		    bool add)
{
	enum md_nf_op op = add ? MD_NF_ADD : MD_NF_DELETE;
	_cleanup_free_ char *c = add ? md_strdup_printf("tenant:%s", tenant) : NULL;
	struct md_nf_field k[2] = { md_nf_ifname(bridge) }, k4[2], k6[2];

	k[1] = k[0];
	k4[0] = k6[0] = k[0];
	if (md_nf_addr(gw4, &k4[1]) < 0 || k4[1].type != MD_NF_IPV4 || md_nf_addr(gw6, &k6[1]) < 0 ||
	    k6[1].type != MD_NF_IPV6)
		return -1;
	md_nf_batch_add(b, op, MD_NF_FAMILY_INET, "metald", "bridges", k, 1, NULL, 0, c);
	md_nf_batch_add(b, op, MD_NF_FAMILY_INET, "metald", "self", k, 2, NULL, 0, c);
	md_nf_batch_add(b, op, MD_NF_FAMILY_INET, "metald", "gw4", k4, 2, NULL, 0, c);
	md_nf_batch_add(b, op, MD_NF_FAMILY_INET, "metald", "gw6", k6, 2, NULL, 0, c);
	return 0;
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

int md_rules_vm(struct md_nf_batch *b, json_t *vm, bool add)
{
	const char *id = json_string_value(json_object_get(vm, "id"));
	const char *port = json_string_value(json_object_get(vm, "host_link"));
	const char *mac = json_string_value(json_object_get(vm, "mac"));
	const char *a4 = json_string_value(json_object_get(json_object_get(vm, "ipv4"), "address"));
	const char *a6 = json_string_value(json_object_get(json_object_get(vm, "ipv6"), "address"));
	enum md_nf_op op = add ? MD_NF_ADD : MD_NF_DELETE;
	_cleanup_free_ char *c = add && id ? md_strdup_printf("vm:%s", id) : NULL;
	struct md_nf_field k[2], pub[2], to4[2], to6[2];
	char ll[INET6_ADDRSTRLEN];
	uint8_t m[6];
	size_t i;
	json_t *p;

	if (!id || !port || !mac || !a4 || !a6 || md_parse_mac(mac, false, m, NULL) < 0)
		return -1;
	md_mac_linklocal(m, ll, sizeof(ll));
	k[0] = md_nf_ifname(port);
	md_nf_batch_add(b, op, MD_NF_FAMILY_BRIDGE, "metald", "ports", k, 1, NULL, 0, c);
	if (md_nf_ether(mac, &k[1]) < 0)
		return -1;
	md_nf_batch_add(b, op, MD_NF_FAMILY_BRIDGE, "metald", "macs", k, 2, NULL, 0, c);
	if (md_nf_addr(a4, &k[1]) < 0 || k[1].type != MD_NF_IPV4)
		return -1;
	md_nf_batch_add(b, op, MD_NF_FAMILY_BRIDGE, "metald", "addr4", k, 2, NULL, 0, c);
	/* IPv6: its address, its link-local address, and :: (duplicate address detection) */
	if (md_nf_addr(a6, &k[1]) < 0 || k[1].type != MD_NF_IPV6)
		return -1;
	md_nf_batch_add(b, op, MD_NF_FAMILY_BRIDGE, "metald", "addr6", k, 2, NULL, 0, c);
	md_nf_addr(ll, &k[1]);
	md_nf_batch_add(b, op, MD_NF_FAMILY_BRIDGE, "metald", "addr6", k, 2, NULL, 0, c);
	md_nf_addr("::", &k[1]);
	md_nf_batch_add(b, op, MD_NF_FAMILY_BRIDGE, "metald", "addr6", k, 2, NULL, 0, c);
	/* the ND targets it may claim, as the 128 raw bits after the ICMPv6 header's first 8 bytes */
	md_nf_raw128(a6, &k[1]);
	md_nf_batch_add(b, op, MD_NF_FAMILY_BRIDGE, "metald", "nd6", k, 2, NULL, 0, c);
	md_nf_raw128(ll, &k[1]);
	md_nf_batch_add(b, op, MD_NF_FAMILY_BRIDGE, "metald", "nd6", k, 2, NULL, 0, c);
	md_nf_addr(a4, &to4[0]);
	md_nf_addr(a6, &to6[0]);
	json_array_foreach(json_object_get(vm, "publish"), i, p) {
		const char *proto = json_string_value(json_object_get(p, "protocol"));
		json_int_t hp = json_integer_value(json_object_get(p, "host_port"));
		json_int_t gp = json_integer_value(json_object_get(p, "guest_port"));

		if (proto == NULL || hp <= 0 || hp > 65535 || gp <= 0 || gp > 65535)
			return -1;
		pub[0] = md_nf_proto(strcmp(proto, "udp") == 0 ? IPPROTO_UDP : IPPROTO_TCP);
		pub[1] = md_nf_port((uint16_t)hp);
		to4[1] = to6[1] = md_nf_port((uint16_t)gp);
		md_nf_batch_add(b, op, MD_NF_FAMILY_INET, "metald", "pub4", pub, 2, add ? to4 : NULL, add ? 2 : 0, c);
		md_nf_batch_add(b, op, MD_NF_FAMILY_INET, "metald", "pub6", pub, 2, add ? to6 : NULL, add ? 2 : 0, c);
	}
	return 0;
}
