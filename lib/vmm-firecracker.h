/* The Firecracker driver: its REST API over the unix socket (boot sequence, control, snapshots). */
#ifndef METALD_VMM_FIRECRACKER_H
#define METALD_VMM_FIRECRACKER_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <jansson.h>
#include "err.h"
#include "vmspec.h"

/* The API major version this driver speaks (Firecracker 1.x). */
#define MD_FC_API_MAJOR 1

struct md_fc;

/*
 * Wait (inotify) up to timeout_ns for the API socket, learn the Firecracker pid from the socket
 * (SO_PEERCRED) unless pid > 0 is given, then GET /version and refuse (class 5) a version whose
 * API differs from the one this driver speaks. Every later request is bounded by what remains of
 * the deadline set with md_fc_set_deadline (initially now + timeout_ns).
 */
int md_fc_open(struct md_fc **out, const char *sock, uint64_t timeout_ns, pid_t pid, md_err **err);
void md_fc_close(struct md_fc *fc);
void md_fc_set_deadline(struct md_fc *fc, uint64_t timeout_ns);
const char *md_fc_version(const struct md_fc *fc);
pid_t md_fc_pid(const struct md_fc *fc);

/* Optional pre-boot destinations (paths as Firecracker sees them, i.e. inside its jail). */
struct md_fc_boot_opts {
	const char *log_path;
	const char *log_level;    /* default "Warning" */
	const char *metrics_path;
	const char *serial_path;
};

/*
 * The boot sequence: PUT /logger, /metrics (when given), /machine-config, /boot-source,
 * /drives/{id} for every disk, /network-interfaces/{id} for every NIC, then what
 * config.boot.boot_options asks for (/vsock, /entropy, /balloon, /mmds/config + /mmds, /serial),
 * PUT /actions InstanceStart, then GET / until "Running". Refuses (class 4) an instance that is
 * not "Not started". Errors name the endpoint and carry Firecracker's fault_message verbatim.
 */
int md_fc_boot(struct md_fc *fc, const struct md_vm_spec *spec, const struct md_fc_boot_opts *o, md_err **err);

/* GET /: "Not started", "Running" or "Paused" (malloc'd). */
int md_fc_state(struct md_fc *fc, char **state, md_err **err);
/* GET / and GET /vm/config: {"vmm":"firecracker","state":"VM_STATE_..","vmm_state":..,"id":..,
 * "vmm_version":..,"pid":..,"vcpu_count":..,"mem_size_mib":..,"drives":[ids],"interfaces":[ids]},
 * plus "config" (the whole GET /vm/config) with with_config. */
int md_fc_status(struct md_fc *fc, bool with_config, json_t **out, md_err **err);

/* PATCH /vm. Pausing a paused VM and resuming a running one succeed (Firecracker treats them as
 * no-ops); a VM not started is class 4. */
int md_fc_pause(struct md_fc *fc, md_err **err);
int md_fc_resume(struct md_fc *fc, md_err **err);
int md_fc_flush_metrics(struct md_fc *fc, md_err **err);
int md_fc_ctrl_alt_del(struct md_fc *fc, md_err **err);

/* PUT /snapshot/create (the VM must be paused: class 4 otherwise); /snapshot/load on a fresh process. */
int md_fc_snapshot_create(struct md_fc *fc, const char *snapshot, const char *mem, bool diff, md_err **err);
int md_fc_snapshot_load(struct md_fc *fc, const char *snapshot, const char *mem, bool resume, md_err **err);

/* Graceful stop: FlushMetrics, (resume if paused,) SendCtrlAltDel, wait up to timeout_ns for the
 * process to exit, then SIGHUP (flush + exit) and SIGKILL: class 124 when the guest missed the
 * timeout (the process is gone anyway). force: FlushMetrics then SIGHUP at once. A VM never
 * started is killed. *out describes what happened. */
int md_fc_shutdown(struct md_fc *fc, uint64_t timeout_ns, bool force, json_t **out, md_err **err);
/* Firecracker exits on a guest reboot: SendCtrlAltDel, wait for the exit, and say so in *out. */
int md_fc_reboot(struct md_fc *fc, uint64_t timeout_ns, json_t **out, md_err **err);

/* Requests made and time spent in them (driver overhead for benchmarks). */
void md_fc_stats(const struct md_fc *fc, unsigned *requests, uint64_t *total_ns);

/* "Running" -> "VM_STATE_RUNNING" etc. */
const char *md_fc_state_name(const char *fc_state);

#endif
