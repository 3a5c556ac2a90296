/* Persistent taps made with the tun driver's ioctls (TUNSETIFF, TUNSETOWNER/GROUP, TUNSETPERSIST). */
#include <errno.h>
#include <stdbool.h>
#include <fcntl.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>
#include <net/if.h>
#include <linux/if_tun.h>

#include "cleanup.h"
#include "tap.h"

static int tap_set(const char *name, uid_t uid, gid_t gid, bool create, md_err **err)
{
	_cleanup_close_ int fd = -1;
	struct ifreq ifr;

	if (strlen(name) >= IFNAMSIZ)
		return md_usage(err, "tap `%s`: name longer than %d bytes", name, IFNAMSIZ - 1);
	fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return md_err_set(err, errno == ENOENT ? MD_EXIT_MISSING : MD_EXIT_FAIL, errno, "tap `%s`: /dev/net/tun", name);
	memset(&ifr, 0, sizeof(ifr));
	/* the flags Firecracker and QEMU attach with; vnet_hdr is per attachment, so any works */
	ifr.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR;
	memcpy(ifr.ifr_name, name, strlen(name));
	if (ioctl(fd, TUNSETIFF, &ifr) < 0)
		return md_fail(err, errno, "tap `%s`: TUNSETIFF", name);
	/* TUNSETIFF makes a tap that is not there: one to own must exist, and persist */
	if (!create && (ioctl(fd, TUNGETIFF, &ifr) < 0 || !(ifr.ifr_flags & IFF_PERSIST)))
		return md_notfound(err, "tap `%s`: not there", name);
	/* -1 is no owner, which a tap made ownerless (as a pool makes it) already has */
	if (uid != (uid_t)-1 && ioctl(fd, TUNSETOWNER, (unsigned long)uid) < 0)
		return md_fail(err, errno, "tap `%s`: TUNSETOWNER %u", name, (unsigned)uid);
	if (gid != (gid_t)-1 && ioctl(fd, TUNSETGROUP, (unsigned long)gid) < 0)
		return md_fail(err, errno, "tap `%s`: TUNSETGROUP %u", name, (unsigned)gid);
	if (create && ioctl(fd, TUNSETPERSIST, 1UL) < 0)
		return md_fail(err, errno, "tap `%s`: TUNSETPERSIST", name);
	return 0;
}

int md_tap_create(const char *name, uid_t uid, gid_t gid, md_err **err)
{
	return tap_set(name, uid, gid, true, err);
}

int md_tap_own(const char *name, uid_t uid, gid_t gid, md_err **err)
{
	return tap_set(name, uid, gid, false, err);
}
