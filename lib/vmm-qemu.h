/* The QEMU driver: a `-M microvm` argv from the VM config, the KVM probe, control through QMP. */
#ifndef METALD_VMM_QEMU_H
#define METALD_VMM_QEMU_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <jansson.h>
#include "argv.h"
#include "err.h"
#include "qmp.h"
#include "vmspec.h"

enum md_accel { MD_ACCEL_AUTO = 0, MD_ACCEL_KVM, MD_ACCEL_TCG };
int md_accel_parse(const char *s, enum md_accel *out, md_err **err);
const char *md_accel_name(enum md_accel a);

/* The QEMU binary: $UNKEY_METALD_QEMU_BIN, else qemu-system-x86_64, resolved in PATH (malloc'd).
 * Not found is class 5. */
int md_qemu_binary(char **out, md_err **err);

/*
 * Can KVM really run a guest here? /dev/kvm must open, and a boot of `kernel` under KVM (with
 * the CPU model the argv uses) must reach the kernel's panic for a missing root within
 * timeout_ns: under nested KVM a Linux guest can hang, which no ioctl reveals. The verdict is
 * cached per host boot (boot_id) in cache_dir/qemu-accel.json (cache_dir may be NULL: no cache).
 * *why gets a one-line reason (malloc'd). Errors only for things like a missing QEMU.
 */
int md_qemu_probe_kvm(const char *kernel, const char *cache_dir, uint64_t timeout_ns, bool *usable, char **why,
		      md_err **err);

struct md_qemu_opts {
	enum md_accel accel; /* AUTO is resolved by md_qemu_argv with md_qemu_probe_kvm */
	const char *qmp;     /* QMP socket path (required) */
	const char *serial;  /* serial console file, "stdio" for QEMU's stdout, or NULL for none */
	bool in_jail;        /* config paths are inside the jail the VMM will run in: not checked here */
	const char *name;    /* -name guest=..., or NULL */
	const char *cache_dir;
};

/* The argv (NULL-terminated, malloc'd; free with md_argv_free): qemu -M microvm -nodefaults
 * -no-user-config -display none -S -qmp ... -kernel/-initrd/-append, one virtio-blk per disk (the
 * root disk first, so it is /dev/vda), one virtio-net per NIC on its tap. *accel_used gets the
 * accelerator chosen. */
int md_qemu_argv(const struct md_vm_spec *spec, const struct md_qemu_opts *o, char ***argv, enum md_accel *accel_used,
		 md_err **err);

/* QMP RunState -> VM_STATE_* name. */
const char *md_qemu_state_name(const char *status);

/* The control verbs, on an open QMP connection. */
int md_qemu_start(struct md_qmp *q, md_err **err);   /* prelaunch -> running; else class 4 */
int md_qemu_pause(struct md_qmp *q, md_err **err);   /* running -> paused (paused: no-op) */
int md_qemu_resume(struct md_qmp *q, md_err **err);  /* paused -> running (running: no-op) */
int md_qemu_reboot(struct md_qmp *q, md_err **err);  /* system_reset; class 4 unless started */
int md_qemu_status(struct md_qmp *q, bool full, json_t **out, md_err **err);
/* system_powerdown (after cont when paused), wait up to timeout_ns for QEMU to exit, then quit
 * and SIGKILL. force: quit at once. Graceful stop missed → class 124 (QEMU is stopped anyway). */
int md_qemu_shutdown(struct md_qmp *q, uint64_t timeout_ns, bool force, json_t **out, md_err **err);

#endif
