/* The metering daemon: find VMs, sample them every interval, write usage records, ship them. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/inotify.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/syscall.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "cleanup.h"
#include "ledger.h"
#include "ledger-seg.h"
#include "log.h"
#include "meter-fc.h"
#include "meter-sample.h"
#include "proc.h"
#include "meter.h"

#define NS_MS 1000000ULL
#define NS_S 1000000000ULL

void md_meter_opts_default(struct md_meter_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->interval_ns = 100 * NS_MS;
	o->period_ns = 10 * NS_S;
	o->sync_ns = 1 * NS_S;
	o->heartbeat_ns = 30 * NS_S;
	o->batch_max = 100;
	o->segment_bytes = 64ULL << 20;
	o->keep_ns = 7 * 24 * 3600 * NS_S;
}

char *md_meter_ledger_dir(const struct md_paths *p) { return md_path_join(p->data_dir, "meter"); }
char *md_meter_targets_dir(const struct md_paths *p) { return md_path_join(p->run_dir, "meter"); }

/* ---- per-VM state ----------------------------------------------------------------------------- */

struct vm {
	char *id, *customer, *tenant;
	/* as the ledger says (committed) */
	uint64_t n;    /* last entry number of this VM */
	bool open;     /* a start without a stop */
	struct md_meter_counters cum; /* cumulative counters at the end of the last usage record */
	uint64_t last_wall;           /* end of the last usage record (or the start) */
	uint64_t last_mem_peak;       /* memory peak of the last usage record (for prom) */
	pid_t pid;
	uint64_t pid_start;
	json_t *target_json; /* target of the last start entry */
	/* live */
	bool active;
	struct md_meter_target t;
	struct md_meter_src *src;
	int pidfd;
	uint64_t n_tent; /* entry numbers handed out in the batch being built */
	uint64_t pstart_wall, pstart_mono; /* start of the open period */
	uint64_t due_mono;                 /* when the open period's record is due */
	uint64_t mem_peak, mem_sum, nsamples;
	uint64_t mem_max;
	bool need_gap, need_stop_old, need_start;
	bool final_pending, have_final;
	struct md_meter_sample final;
	const char *final_reason;
	bool warned_sample;
	bool rediscover; /* stopped: look at its target again (a new process may have replaced it) */
	/* Firecracker's metrics file: committed sums and offset, and what was read since */
	struct md_fc_reader fc;
	bool fc_open;
	struct md_meter_counters fc_cum, fc_pend;
	uint64_t fc_off;
	/* the reader's file generation when the newest record's position was taken, and when the
	 * newest written record's was: fc_off is a position in the file of generation fc_gen_off */
	unsigned fc_gen_built, fc_gen_off;
};

struct stats {
	uint32_t *jitter_us, *work_us, *lat_us;
	size_t n_jitter, n_work, n_lat, cap;
	uint64_t ticks, missed, durable_lat_max_us;
};

/* ---- the shipper thread ----------------------------------------------------------------------- */

struct shipper {
	pthread_t th;
	pthread_mutex_t mu;
	pthread_mutex_t files_mu; /* held while reading the ledger's files, and while rotating them */
	pthread_cond_t cv;
	bool started, stop, draining;
	volatile int abort;
	uint64_t durable;  /* bytes of the ledger that are on disk (written by main) */
	uint64_t read_off; /* everything before this is acknowledged */
	json_t *acked;     /* {"vm": n}, owned by the shipper thread once started */
	json_t *active;    /* ids of running VMs, for heartbeats (main replaces it under mu) */
	char *ledger_path, *dir;
	struct md_billing *b;
	size_t batch_max;
	uint64_t heartbeat_ns;
	char instance_id[300];
	uint64_t delivered, failures;
	bool acked_dirty; /* acknowledged in memory, not yet stored */
};

struct meter {
	struct md_meter_opts *o;
	char *ldir, *tdir;
	struct md_ledger ledger;
	struct vm **vms;
	size_t n_vms;
	json_t **pend;        /* entries of the batch being built */
	struct vm **pend_vm;
	size_t n_pend, cap_pend;
	int epfd, tfd, ifd, sfd, wd;
	uint64_t start_wall;
	bool ledger_failing;
	uint64_t oldest_unsynced_mono; /* sample time of the oldest record not yet fsynced */
	json_t *acked;
	uint64_t first_unacked;
	uint64_t last_checkpoint_mono;
	uint64_t last_prune_mono;
	bool recovered_any; /* recovery has per-VM state (from a checkpoint or an entry) */
	/* the earliest end_wall of a usage record in the active file, for the segment index when it
	 * is sealed (UINT64_MAX: none yet); not known after a start that read only its tail */
	uint64_t seg_min_end;
	bool seg_min_known;
	struct stats st;
	struct shipper sh;
};

static struct vm *vm_find(struct meter *m, const char *id, bool create)
{
	struct vm *v;

	for (size_t i = 0; i < m->n_vms; i++)
		if (strcmp(m->vms[i]->id, id) == 0)
			return m->vms[i];
	if (!create)
		return NULL;
	v = calloc(1, sizeof(*v));
	m->vms = realloc(m->vms, (m->n_vms + 1) * sizeof(*m->vms));
	if (v == NULL || m->vms == NULL)
		abort();
	v->id = strdup(id);
	v->pidfd = -1;
	m->vms[m->n_vms++] = v;
	return v;
}

static void set_str(char **dst, const char *s)
{
	free(*dst);
	*dst = s ? strdup(s) : NULL;
}

static void set_str_json(json_t *o, const char *k, const char *s)
{
	json_object_set_new(o, k, s ? json_string(s) : json_null());
}

static uint64_t ju(json_t *o, const char *k)
{
	json_t *v = json_object_get(o, k);
	return json_is_integer(v) && json_integer_value(v) > 0 ? (uint64_t)json_integer_value(v) : 0;
}

/* ---- recovery: rebuild per-VM state from the ledger ------------------------------------------- */

static void vms_load(struct meter *m, json_t *vms);

static int recover_cb(json_t *e, uint64_t off, uint64_t end, void *arg)
{
	struct meter *m = arg;
	const char *id = json_string_value(json_object_get(e, "vm"));
	const char *type = json_string_value(json_object_get(e, "type"));
	struct vm *v;

	(void)end;
	if (strcmp(type, "segment") == 0) {
		/* a file that begins after older segments were removed: their state is in here */
		if (!m->recovered_any)
			vms_load(m, json_object_get(e, "vms"));
		m->recovered_any = true;
		m->seg_min_end = UINT64_MAX; /* a new file: the last one read is the active one */
		return 0;
	}
	if (strcmp(type, "usage") == 0 && ju(e, "end_wall") < m->seg_min_end)
		m->seg_min_end = ju(e, "end_wall");
	m->recovered_any = true;
	if (id == NULL)
		return 0;
	v = vm_find(m, id, true);
	v->n = v->n_tent = ju(e, "n");
	if (v->n > ju(m->acked, id) && m->first_unacked == UINT64_MAX)
		m->first_unacked = off;
	if (strcmp(type, "start") == 0) {
		v->open = true;
		md_meter_counters_from_json(json_object_get(e, "base"), &v->cum);
		memset(&v->fc_cum, 0, sizeof(v->fc_cum));
		v->fc_off = 0;
		set_str(&v->customer, json_string_value(json_object_get(e, "customer")));
		set_str(&v->tenant, json_string_value(json_object_get(e, "tenant")));
		v->last_wall = ju(e, "start_time");
		v->pid = (pid_t)ju(e, "pid");
		v->pid_start = ju(e, "pid_start");
		json_decref(v->target_json);
		v->target_json = json_incref(json_object_get(e, "target"));
	} else if (strcmp(type, "usage") == 0) {
		md_meter_counters_from_json(json_object_get(e, "cum"), &v->cum);
		v->last_wall = ju(e, "end_wall");
		v->last_mem_peak = ju(e, "mem_peak");
		if (json_object_get(e, "vmm_cum")) {
			md_meter_counters_from_json(json_object_get(e, "vmm_cum"), &v->fc_cum);
			v->fc_off = ju(e, "vmm_off");
		}
	} else if (strcmp(type, "stop") == 0) {
		v->open = false;
	}
	return 0;
}

/* ---- checkpoint: the state recovery rebuilds, so a start reads only the ledger's tail ---------- */

#define CHECKPOINT_NS (300 * NS_S)

static json_t *vm_state_json(const struct vm *v)
{
	json_t *o = json_pack("{s:I, s:b, s:o, s:I, s:i, s:I}", "n", (json_int_t)v->n, "open", v->open, "cum",
			      md_meter_counters_json(&v->cum), "last_wall", (json_int_t)v->last_wall, "pid",
			      (int)v->pid, "pid_start", (json_int_t)v->pid_start);

	set_str_json(o, "customer", v->customer);
	set_str_json(o, "tenant", v->tenant);
	json_object_set(o, "target", v->target_json ? v->target_json : json_null());
	json_object_set_new(o, "vmm_cum", md_meter_counters_json(&v->fc_cum));
	json_object_set_new(o, "vmm_off", json_integer((json_int_t)v->fc_off));
	json_object_set_new(o, "mem_peak", json_integer((json_int_t)v->last_mem_peak));
	return o;
}

/* Per-VM state as vm_state_json wrote it (a checkpoint, or a segment's first entry). */
static void vms_load(struct meter *m, json_t *vms)
{
	const char *id;
	json_t *vs;

	json_object_foreach(vms, id, vs) {
		struct vm *v = vm_find(m, id, true);
		v->n = v->n_tent = ju(vs, "n");
		v->open = json_is_true(json_object_get(vs, "open"));
		md_meter_counters_from_json(json_object_get(vs, "cum"), &v->cum);
		v->last_wall = ju(vs, "last_wall");
		v->last_mem_peak = ju(vs, "mem_peak");
		v->pid = (pid_t)ju(vs, "pid");
		v->pid_start = ju(vs, "pid_start");
		md_meter_counters_from_json(json_object_get(vs, "vmm_cum"), &v->fc_cum);
		v->fc_off = ju(vs, "vmm_off");
		set_str(&v->customer, json_string_value(json_object_get(vs, "customer")));
		set_str(&v->tenant, json_string_value(json_object_get(vs, "tenant")));
		if (json_is_object(json_object_get(vs, "target"))) {
			json_decref(v->target_json);
			v->target_json = json_incref(json_object_get(vs, "target"));
		}
	}
}

/* <ldir>/state.json describes the ledger up to `offset` (entry `seq`); written only when everything up
 * to there is on disk. If it does not fit the ledger (a crash cut the ledger shorter, or it was
 * replaced), the meter reads the whole ledger instead. */
static void checkpoint_write(struct meter *m)
{
	_cleanup_free_ char *p = md_path_join(m->ldir, "state.json");
	json_t *vms = json_object(), *o;
	uint64_t fu = m->first_unacked;
	md_err *err = NULL;

	if (m->ledger.fd < 0 || m->ledger.synced != m->ledger.end || m->n_pend)
		return;
	if (m->sh.ledger_path) /* the shipper's position: everything before it is acknowledged */
		fu = m->sh.read_off;
	for (size_t i = 0; i < m->n_vms; i++)
		json_object_set_new(vms, m->vms[i]->id, vm_state_json(m->vms[i]));
	o = json_pack("{s:i, s:I, s:I, s:o, s:o}", "version", 1, "offset", (json_int_t)m->ledger.end, "seq",
		      (json_int_t)m->ledger.seq, "first_unacked",
		      fu == UINT64_MAX ? json_null() : json_integer((json_int_t)fu), "vms", vms);
	if (md_json_write_atomic(p, o, 0600, &err) < 0) {
		md_warn("checkpoint: %s", err->msg);
		md_err_free(&err);
	}
	json_decref(o);
	m->last_checkpoint_mono = md_now_mono_ns();
}

static void vms_reset(struct meter *m);

/* Returns true, with m's VMs filled and the ledger position set, when a checkpoint was read. */
static bool checkpoint_load(struct meter *m, uint64_t *off, uint64_t *seq)
{
	_cleanup_free_ char *p = md_path_join(m->ldir, "state.json");
	_cleanup_json_ json_t *o = NULL;
	md_err *err = NULL;
	json_t *fu;

	if (md_json_read(p, &o, &err) < 0) {
		if (md_err_exit(err) != MD_EXIT_NOTFOUND)
			md_warn("checkpoint: %s (reading the whole ledger)", err->msg);
		md_err_free(&err);
		return false;
	}
	if (ju(o, "version") != 1 || !json_is_object(json_object_get(o, "vms")) || !json_is_integer(json_object_get(o, "offset"))) {
		md_warn("checkpoint `%s`: not understood (reading the whole ledger)", p);
		return false;
	}
	vms_load(m, json_object_get(o, "vms"));
	m->recovered_any = true;
	fu = json_object_get(o, "first_unacked");
	m->first_unacked = json_is_integer(fu) ? (uint64_t)json_integer_value(fu) : UINT64_MAX;
	*off = ju(o, "offset");
	*seq = ju(o, "seq");
	return true;
}

static int recover(struct meter *m, md_err **err)
{
	uint64_t off = 0, seq = 0;
	int r;

	m->seg_min_end = UINT64_MAX;
	if (checkpoint_load(m, &off, &seq)) {
		r = md_ledger_open_at(&m->ledger, m->ldir, off, seq, recover_cb, m, err);
		if (r <= 0) {
			md_info("ledger: resumed from the checkpoint at offset %llu", (unsigned long long)off);
			/* the active file's earliest record is known if it was read from its start */
			m->seg_min_known = r == 0 && off <= m->ledger.base;
			return r;
		}
		md_warn("checkpoint does not fit the ledger (offset %llu, seq %llu): reading the whole ledger",
			(unsigned long long)off, (unsigned long long)seq);
		vms_reset(m);
		m->first_unacked = UINT64_MAX;
		m->recovered_any = false;
		m->seg_min_end = UINT64_MAX;
	}
	r = md_ledger_open(&m->ledger, m->ldir, recover_cb, m, err);
	m->seg_min_known = r == 0;
	return r;
}

/* ---- building entries ------------------------------------------------------------------------- */

static json_t *entry_new(struct vm *v, const char *type)
{
	char idbuf[128];

	v->n_tent++;
	snprintf(idbuf, sizeof(idbuf), "%s/%llu", v->id, (unsigned long long)v->n_tent);
	return json_pack("{s:s, s:s, s:I, s:s}", "type", type, "vm", v->id, "n", (json_int_t)v->n_tent, "id", idbuf);
}

static void pend_add(struct meter *m, struct vm *v, json_t *e)
{
	if (m->n_pend == m->cap_pend) {
		m->cap_pend = m->cap_pend ? m->cap_pend * 2 : 64;
		m->pend = realloc(m->pend, m->cap_pend * sizeof(*m->pend));
		m->pend_vm = realloc(m->pend_vm, m->cap_pend * sizeof(*m->pend_vm));
		if (m->pend == NULL || m->pend_vm == NULL)
			abort();
	}
	m->pend[m->n_pend] = e;
	m->pend_vm[m->n_pend] = v;
	m->n_pend++;
}

static void set_nullable(json_t *e, const char *k, const char *s)
{
	json_object_set_new(e, k, s ? json_string(s) : json_null());
}

static void add_start(struct meter *m, struct vm *v)
{
	json_t *e = entry_new(v, "start");
	uint64_t st = v->t.started_wall_ns ? v->t.started_wall_ns : v->pstart_wall;

	set_nullable(e, "customer", v->t.customer);
	set_nullable(e, "tenant", v->t.tenant);
	json_object_set_new(e, "start_time", json_integer((json_int_t)st));
	json_object_set_new(e, "pid", json_integer(v->t.pid));
	json_object_set_new(e, "pid_start", json_integer((json_int_t)v->t.pid_start));
	json_object_set_new(e, "target", json_incref(v->t.json));
	json_object_set_new(e, "base", md_meter_counters_json(&v->cum));
	pend_add(m, v, e);
}

/* every entry names its customer and tenant, so each call can carry X-Tenant-ID on its own */
static void add_owner(struct vm *v, json_t *e)
{
	set_nullable(e, "customer", v->t.customer ? v->t.customer : v->customer);
	set_nullable(e, "tenant", v->t.tenant ? v->t.tenant : v->tenant);
}

static void add_gap(struct meter *m, struct vm *v)
{
	json_t *e = entry_new(v, "gap");

	add_owner(v, e);
	json_object_set_new(e, "last_sent", json_integer((json_int_t)v->last_wall));
	json_object_set_new(e, "resume_time", json_integer((json_int_t)m->start_wall));
	pend_add(m, v, e);
}

static void add_stop(struct meter *m, struct vm *v, uint64_t when, const char *reason)
{
	json_t *e = entry_new(v, "stop");

	add_owner(v, e);
	json_object_set_new(e, "stop_time", json_integer((json_int_t)when));
	json_object_set_new(e, "reason", json_string(reason));
	pend_add(m, v, e);
}

/* Fold one counter into the record: the difference since the last record. A counter that went
 * down was reset (a new cgroup or link under the same name): count it from zero. */
static uint64_t delta(struct vm *v, const char *name, uint64_t now, uint64_t *cum)
{
	uint64_t d;

	if (now >= *cum) {
		d = now - *cum;
	} else {
		md_warn("vm `%s`: %s went down from %llu to %llu: counter reset, counting from zero", v->id, name,
			(unsigned long long)*cum, (unsigned long long)now);
		d = now;
	}
	*cum = now;
	return d;
}

static void add_usage(struct meter *m, struct vm *v, const struct md_meter_sample *s, bool final)
{
	json_t *e = entry_new(v, "usage");
	struct md_meter_counters c = v->cum;
	uint64_t d_cpu = 0, d_rb = 0, d_wb = 0, d_ro = 0, d_wo = 0, d_rx = 0, d_tx = 0, d_rxp = 0, d_txp = 0;
	uint64_t started = v->t.started_wall_ns;

	if (s->have & MD_SAMPLE_CPU)
		d_cpu = delta(v, "cpu_ns", s->c.cpu_ns, &c.cpu_ns);
	if (s->have & MD_SAMPLE_DISK) {
		d_rb = delta(v, "disk_read_bytes", s->c.disk_read_bytes, &c.disk_read_bytes);
		d_wb = delta(v, "disk_write_bytes", s->c.disk_write_bytes, &c.disk_write_bytes);
		d_ro = delta(v, "disk_read_ops", s->c.disk_read_ops, &c.disk_read_ops);
		d_wo = delta(v, "disk_write_ops", s->c.disk_write_ops, &c.disk_write_ops);
	}
	if (s->have & MD_SAMPLE_NET) {
		d_rx = delta(v, "net_rx_bytes", s->c.net_rx_bytes, &c.net_rx_bytes);
		d_tx = delta(v, "net_tx_bytes", s->c.net_tx_bytes, &c.net_tx_bytes);
		d_rxp = delta(v, "net_rx_packets", s->c.net_rx_packets, &c.net_rx_packets);
		d_txp = delta(v, "net_tx_packets", s->c.net_tx_packets, &c.net_tx_packets);
	}
	if (s->have & MD_SAMPLE_MEM) {
		if (s->mem_bytes > v->mem_peak)
			v->mem_peak = s->mem_bytes;
		v->mem_sum += s->mem_bytes;
		v->nsamples++;
		if (s->mem_max_known)
			v->mem_max = s->mem_max;
	}
	add_owner(v, e);
	json_object_set_new(e, "start_wall", json_integer((json_int_t)v->pstart_wall));
	json_object_set_new(e, "end_wall", json_integer((json_int_t)s->wall_ns));
	json_object_set_new(e, "start_mono", json_integer((json_int_t)v->pstart_mono));
	json_object_set_new(e, "end_mono", json_integer((json_int_t)s->mono_ns));
	json_object_set_new(e, "samples", json_integer((json_int_t)v->nsamples));
	json_object_set_new(e, "cpu_ns", json_integer((json_int_t)d_cpu));
	json_object_set_new(e, "mem_peak", json_integer((json_int_t)v->mem_peak));
	json_object_set_new(e, "mem_avg", json_integer((json_int_t)(v->nsamples ? v->mem_sum / v->nsamples : 0)));
	json_object_set_new(e, "mem_max", json_integer((json_int_t)v->mem_max));
	json_object_set_new(e, "disk_read_bytes", json_integer((json_int_t)d_rb));
	json_object_set_new(e, "disk_write_bytes", json_integer((json_int_t)d_wb));
	json_object_set_new(e, "disk_read_ops", json_integer((json_int_t)d_ro));
	json_object_set_new(e, "disk_write_ops", json_integer((json_int_t)d_wo));
	json_object_set_new(e, "net_rx_bytes", json_integer((json_int_t)d_rx));
	json_object_set_new(e, "net_tx_bytes", json_integer((json_int_t)d_tx));
	json_object_set_new(e, "net_rx_packets", json_integer((json_int_t)d_rxp));
	json_object_set_new(e, "net_tx_packets", json_integer((json_int_t)d_txp));
	json_object_set_new(e, "uptime_ns",
			    json_integer((json_int_t)(started && s->wall_ns > started ? s->wall_ns - started : 0)));
	if (final)
		json_object_set_new(e, "final", json_true());
	json_object_set_new(e, "cum", md_meter_counters_json(&c));
	if (v->fc_open) {
		struct md_meter_counters fc = v->fc_cum;
		md_err *err = NULL;
		unsigned lines = 0;

		if (md_fc_read(&v->fc, &v->fc_pend, &lines, &err) < 0) {
			md_warn("vm `%s`: %s", v->id, err->msg);
			md_err_free(&err);
		}
		fc.disk_read_bytes += v->fc_pend.disk_read_bytes;
		fc.disk_write_bytes += v->fc_pend.disk_write_bytes;
		fc.disk_read_ops += v->fc_pend.disk_read_ops;
		fc.disk_write_ops += v->fc_pend.disk_write_ops;
		fc.net_rx_bytes += v->fc_pend.net_rx_bytes;
		fc.net_tx_bytes += v->fc_pend.net_tx_bytes;
		fc.net_rx_packets += v->fc_pend.net_rx_packets;
		fc.net_tx_packets += v->fc_pend.net_tx_packets;
		/* the VMM's own view (Firecracker metrics): differences, sums and the file position */
		json_t *d = md_meter_counters_json(&v->fc_pend), *cj = md_meter_counters_json(&fc);
		json_object_del(d, "cpu_ns");
		json_object_del(cj, "cpu_ns");
		json_object_set_new(e, "vmm", d);
		json_object_set_new(e, "vmm_cum", cj);
		json_object_set_new(e, "vmm_off", json_integer((json_int_t)(v->fc.fifo ? 0 : v->fc.off)));
		v->fc_gen_built = v->fc.gen;
	}
	pend_add(m, v, e);
}

/* ---- committing a batch ----------------------------------------------------------------------- */

static void vm_deactivate(struct meter *m, struct vm *v)
{
	if (v->pidfd >= 0) {
		epoll_ctl(m->epfd, EPOLL_CTL_DEL, v->pidfd, NULL);
		close(v->pidfd);
		v->pidfd = -1;
	}
	md_meter_src_close(v->src);
	v->src = NULL;
	if (v->fc_open)
		md_fc_reader_close(&v->fc);
	v->fc_open = false;
	memset(&v->fc_pend, 0, sizeof(v->fc_pend));
	md_meter_target_free(&v->t);
	v->active = false;
	v->final_pending = v->have_final = false;
}

static void update_active_list(struct meter *m);
static void discover_id(struct meter *m, const char *id);

/* What a written entry changes. */
static void apply(struct meter *m, struct vm *v, json_t *e)
{
	const char *type = json_string_value(json_object_get(e, "type"));

	v->n = ju(e, "n");
	if (strcmp(type, "usage") == 0 && ju(e, "end_wall") < m->seg_min_end)
		m->seg_min_end = ju(e, "end_wall");
	if (strcmp(type, "start") == 0) {
		v->need_start = false;
		v->open = true;
		md_meter_counters_from_json(json_object_get(e, "base"), &v->cum);
		memset(&v->fc_cum, 0, sizeof(v->fc_cum));
		v->fc_off = 0;
		v->last_wall = ju(e, "start_time");
		v->pid = v->t.pid;
		v->pid_start = v->t.pid_start;
		set_str(&v->customer, v->t.customer);
		set_str(&v->tenant, v->t.tenant);
		json_decref(v->target_json);
		v->target_json = json_incref(v->t.json);
	} else if (strcmp(type, "gap") == 0) {
		v->need_gap = false;
	} else if (strcmp(type, "usage") == 0) {
		md_meter_counters_from_json(json_object_get(e, "cum"), &v->cum);
		v->last_wall = ju(e, "end_wall");
		v->last_mem_peak = ju(e, "mem_peak");
		v->pstart_wall = v->last_wall;
		v->pstart_mono = ju(e, "end_mono");
		v->mem_peak = v->mem_sum = v->nsamples = 0;
		if (json_object_get(e, "vmm_cum")) {
			md_meter_counters_from_json(json_object_get(e, "vmm_cum"), &v->fc_cum);
			v->fc_off = ju(e, "vmm_off");
			/* the batch's records are applied in the order they were made, so after the last
			 * one this is the generation of its position */
			v->fc_gen_off = v->fc_gen_built;
			memset(&v->fc_pend, 0, sizeof(v->fc_pend));
		}
	} else if (strcmp(type, "stop") == 0) {
		if (v->need_stop_old) { /* the old instance is closed; the new one starts next */
			v->need_stop_old = false;
			v->open = false;
			return;
		}
		v->open = false;
		vm_deactivate(m, v);
		v->rediscover = true;
	}
}

static int flush(struct meter *m)
{
	md_err *err = NULL;
	uint64_t now;
	bool stopped = false;

	if (m->n_pend == 0)
		return 0;
	if (md_ledger_append(&m->ledger, m->pend, m->n_pend, &err) < 0) {
		if (!m->ledger_failing)
			md_error("%s (sampling goes on; the usage stays in the cumulative counters and is recorded "
				 "when the ledger can be written again)",
				 err->msg);
		m->ledger_failing = true;
		md_err_free(&err);
		for (size_t i = 0; i < m->n_pend; i++) {
			m->pend_vm[i]->n_tent = m->pend_vm[i]->n;
			json_decref(m->pend[i]);
		}
		m->n_pend = 0;
		return -1;
	}
	if (m->ledger_failing)
		md_warn("ledger `%s`: writable again", m->ledger.path);
	m->ledger_failing = false;
	now = md_now_mono_ns();
	for (size_t i = 0; i < m->n_pend; i++) {
		json_t *e = m->pend[i];
		uint64_t sm = ju(e, "end_mono");

		if (sm && sm <= now) {
			if (m->oldest_unsynced_mono == 0 || sm < m->oldest_unsynced_mono)
				m->oldest_unsynced_mono = sm;
			if (m->st.n_lat < m->st.cap)
				m->st.lat_us[m->st.n_lat++] = (uint32_t)((now - sm) / 1000);
		}
		if (strcmp(json_string_value(json_object_get(e, "type")), "stop") == 0)
			stopped = true;
		apply(m, m->pend_vm[i], e);
		json_decref(e);
	}
	m->n_pend = 0;
	if (stopped) {
		for (size_t i = 0; i < m->n_vms; i++) {
			if (m->vms[i]->rediscover) {
				m->vms[i]->rediscover = false;
				discover_id(m, m->vms[i]->id);
			}
		}
		update_active_list(m);
	}
	return 0;
}

static void rotate_maybe(struct meter *m);

static void sync_maybe(struct meter *m, bool force)
{
	md_err *err = NULL;
	uint64_t now = md_now_mono_ns();

	if (m->ledger.synced == m->ledger.end)
		return;
	if (!force && now - m->ledger.last_sync_mono < m->o->sync_ns)
		return;
	if (md_ledger_sync(&m->ledger, &err) < 0) {
		md_error("%s", err->msg);
		md_err_free(&err);
		return;
	}
	/* what the records on disk now say was read of Firecracker's metrics files is not needed
	 * again, even after a crash: its blocks go back to the file system (the files only grow) */
	for (size_t i = 0; i < m->n_vms; i++) {
		struct vm *v = m->vms[i];

		if (v->fc_open)
			md_fc_release(&v->fc, v->fc_gen_off, v->fc_off);
	}
	if (m->oldest_unsynced_mono) {
		uint64_t us = (md_now_mono_ns() - m->oldest_unsynced_mono) / 1000;
		if (us > m->st.durable_lat_max_us)
			m->st.durable_lat_max_us = us;
		m->oldest_unsynced_mono = 0;
	}
	if (md_now_mono_ns() - m->last_checkpoint_mono >= CHECKPOINT_NS) {
		if (m->sh.started)
			pthread_mutex_lock(&m->sh.mu);
		checkpoint_write(m);
		if (m->sh.started)
			pthread_mutex_unlock(&m->sh.mu);
	}
	if (m->sh.started) {
		pthread_mutex_lock(&m->sh.mu);
		m->sh.durable = m->ledger.synced;
		pthread_cond_signal(&m->sh.cv);
		pthread_mutex_unlock(&m->sh.mu);
	}
	rotate_maybe(m);
}

/* ---- segments: seal the active file when it is big enough, remove old acknowledged ones ------- */

#define PRUNE_NS (60 * NS_S)

static void prune(struct meter *m)
{
	uint64_t upto = 0;
	unsigned removed;
	md_err *err = NULL;

	m->last_prune_mono = md_now_mono_ns();
	/* Only what the billing service acknowledged may go: in mock and off modes nothing is, so
	 * nothing is removed (turning billing on later ships it, and then it ages out). */
	if (!m->sh.started)
		return;
	pthread_mutex_lock(&m->sh.mu);
	upto = m->sh.read_off;
	pthread_mutex_unlock(&m->sh.mu);
	pthread_mutex_lock(&m->sh.files_mu);
	if (md_ledger_prune(&m->ledger, upto, m->o->keep_ns, &removed, &err) < 0) {
		if (md_err_exit(err) == MD_EXIT_CONFLICT) /* a report or prom is reading */
			md_debug("%s (retried later)", err->msg);
		else
			md_warn("%s (retried later)", err->msg);
		md_err_free(&err);
	}
	pthread_mutex_unlock(&m->sh.files_mu);
}

static void rotate_maybe(struct meter *m)
{
	json_t *vms;
	md_err *err = NULL;
	uint64_t sealed;
	int r;

	if (m->ledger.fd < 0 || m->n_pend || m->ledger.synced != m->ledger.end ||
	    m->ledger.end - m->ledger.base < m->o->segment_bytes)
		return;
	/* the new file starts with the state recovery would rebuild from everything before it */
	vms = json_object();
	for (size_t i = 0; i < m->n_vms; i++)
		json_object_set_new(vms, m->vms[i]->id, vm_state_json(m->vms[i]));
	sealed = m->ledger.base;
	pthread_mutex_lock(&m->sh.files_mu);
	r = md_ledger_rotate(&m->ledger, vms, &err);
	pthread_mutex_unlock(&m->sh.files_mu);
	if (r == 0) {
		/* reports with --until skip it if its earliest usage record ended after that (a segment
		 * without one holds nothing a report counts) */
		if (m->seg_min_known)
			md_ledger_seg_index(m->ldir, sealed, m->seg_min_end == UINT64_MAX ? INT64_MAX : m->seg_min_end);
		m->seg_min_end = UINT64_MAX;
		m->seg_min_known = true;
	}
	if (r < 0) {
		if (md_err_exit(err) == MD_EXIT_CONFLICT) /* a report or prom is reading: next time */
			md_debug("%s (retried after the next write)", err->msg);
		else
			md_warn("%s (the active file keeps growing; retried after the next write)", err->msg);
		md_err_free(&err);
		return;
	}
	if (m->sh.started) {
		pthread_mutex_lock(&m->sh.mu);
		m->sh.durable = m->ledger.synced;
		pthread_mutex_unlock(&m->sh.mu);
	}
	prune(m);
}

/* ---- VMs coming and going --------------------------------------------------------------------- */

static void finalize(struct meter *m, struct vm *v, const char *reason)
{
	md_err *err = NULL;

	if (!v->active || v->final_pending)
		return;
	v->final_pending = true;
	v->final_reason = reason;
	v->have_final = false;
	if (v->src) {
		if (md_meter_sample(v->src, MD_SAMPLE_ALL, &v->final, &err) == 0) {
			struct md_meter_sample again;

			v->have_final = true;
			/* the pidfd is readable from exit_notify() on, but the exiting task's last slice of
			 * CPU reaches the cgroup's counter only when it is scheduled out for good, a few
			 * microseconds later: read again until the counter holds still (at most ~10 ms) */
			for (int i = 0; i < 10 && (v->final.have & MD_SAMPLE_CPU); i++) {
				md_sleep_ns(1000000);
				if (md_meter_sample(v->src, MD_SAMPLE_ALL, &again, NULL) < 0 ||
				    again.c.cpu_ns == v->final.c.cpu_ns)
					break;
				v->final = again;
			}
		} else {
			md_warn("vm `%s`: final sample: %s (usage since the last record is not counted)", v->id,
				err->msg);
			md_err_free(&err);
		}
	}
	if (v->pidfd >= 0) {
		epoll_ctl(m->epfd, EPOLL_CTL_DEL, v->pidfd, NULL);
		close(v->pidfd);
		v->pidfd = -1;
	}
	md_info("vm `%s`: %s", v->id, reason);
}

static void vm_open_src(struct vm *v)
{
	md_err *err = NULL;

	if (v->src || v->t.id == NULL)
		return;
	if (md_meter_src_open(&v->t, &v->src, &err) < 0) {
		if (!v->warned_sample)
			md_warn("vm `%s`: %s (retrying every tick)", v->id, err->msg);
		v->warned_sample = true;
		md_err_free(&err);
	}
}

/* Records are due on a grid of period length whose phase comes from the VM id, so the VMs' records
 * spread over the ticks of a period instead of all landing on one tick (which would be late). */
static uint64_t next_due(const struct vm *v, uint64_t t, uint64_t period)
{
	uint64_t h = 1469598103934665603ULL, r;

	for (const char *p = v->id; *p; p++)
		h = (h ^ (unsigned char)*p) * 1099511628211ULL;
	r = (t % period + period - h % period) % period;
	return t + (period - r);
}

/* Take over a parsed target (moved into v->t). */
static void activate(struct meter *m, struct vm *v, struct md_meter_target *t)
{
	struct epoll_event ev = { .events = EPOLLIN };
	uint64_t now_wall = md_now_wall_ns(), now_mono = md_now_mono_ns();

	v->t = *t;
	memset(t, 0, sizeof(*t));
	v->active = true;
	v->warned_sample = false;
	v->mem_peak = v->mem_sum = v->nsamples = v->mem_max = 0;
	vm_open_src(v);
	if (v->t.fc_metrics) {
		md_err *err = NULL;
		/* a new process writes a new file from its start; a resumed one goes on from the
		 * position its last record says */
		if (md_fc_reader_open(&v->fc, v->t.fc_metrics, v->need_start ? 0 : v->fc_off, &err) == 0) {
			v->fc_open = true;
			/* a new process's file: fc_off is the last one's until its start record is
			 * written, and no position in this file is recorded before its first usage */
			v->fc_gen_built = v->fc.gen;
			v->fc_gen_off = v->need_start ? UINT_MAX : v->fc.gen;
		} else {
			md_warn("vm `%s`: %s", v->id, err->msg);
			md_err_free(&err);
		}
	}
	if (v->need_start) {
		v->pstart_wall = v->t.started_wall_ns && v->t.started_wall_ns <= now_wall ? v->t.started_wall_ns : now_wall;
	} else {
		v->pstart_wall = v->last_wall && v->last_wall <= now_wall ? v->last_wall : now_wall;
	}
	v->pstart_mono = now_mono - (now_wall - v->pstart_wall);
	v->due_mono = next_due(v, now_mono, m->o->period_ns);
	/* a pidfd becomes readable the moment the VMM exits: the final sample is taken then, before
	 * the orchestrator gets to remove the cgroup */
	v->pidfd = (int)syscall(SYS_pidfd_open, v->t.pid, 0);
	if (v->pidfd >= 0) {
		ev.data.ptr = v;
		epoll_ctl(m->epfd, EPOLL_CTL_ADD, v->pidfd, &ev);
	}
	if (v->pidfd < 0 || !md_proc_alive(v->t.pid, v->t.pid_start))
		finalize(m, v, "process exited");
	else
		md_info("vm `%s`: metering pid %d%s", v->id, (int)v->t.pid, v->need_gap ? " (resumed)" : "");
}

/* Where a new process's counters start. A cgroup made for the VM starts at zero, so everything in it
 * is the VM's. When a new process of the same VM id reuses the previous one's cgroup (the same
 * paths), its counters go on from where the previous one's last record ended: that part was billed
 * already. The base is recorded in the start entry. */
static void set_base(struct vm *v, const struct md_meter_target *t)
{
	struct md_meter_target old;
	md_err *err = NULL;
	bool same = false;

	if (v->n > 0 && v->target_json && md_meter_target_parse(v->target_json, "recorded target", &old, &err) == 0) {
#define SAME(a, b) ((a) == NULL ? (b) == NULL : ((b) != NULL && strcmp((a), (b)) == 0))
		same = old.cg_version == t->cg_version && SAME(old.cg_cpuacct, t->cg_cpuacct) &&
		       SAME(old.cg_memory, t->cg_memory) && SAME(old.cg_blkio, t->cg_blkio) &&
		       SAME(old.cg_path, t->cg_path) && SAME(old.net_link, t->net_link) &&
		       SAME(old.net_netns, t->net_netns);
#undef SAME
		md_meter_target_free(&old);
	}
	md_err_free(&err);
	if (!same)
		memset(&v->cum, 0, sizeof(v->cum));
	else
		md_info("vm `%s`: the new process reuses its cgroup: counting from the last record", v->id);
}

static void discover_path(struct meter *m, const char *path)
{
	struct md_meter_target t;
	md_err *err = NULL;
	struct vm *v;

	if (md_meter_target_load(path, &t, &err) < 0) {
		if (md_err_exit(err) != MD_EXIT_NOTFOUND)
			md_warn("ignoring %s", err->msg);
		md_err_free(&err);
		return;
	}
	v = vm_find(m, t.id, true);
	if (v->active) {
		if (v->t.pid != t.pid || v->t.pid_start != t.pid_start)
			finalize(m, v, "replaced by a new process"); /* the new one is found after the stop */
		md_meter_target_free(&t);
		return;
	}
	if (!v->open && v->pid == t.pid && v->pid_start == t.pid_start && v->n > 0) {
		md_meter_target_free(&t); /* this very process was metered to its end already */
		return;
	}
	if (v->open) {
		v->need_gap = true; /* the meter was not running: say so, the counters cover the gap */
		if (v->pid != t.pid || v->pid_start != t.pid_start) {
			v->need_stop_old = true;
			v->need_start = true;
			set_base(v, &t);
		}
	} else {
		v->need_start = true;
		set_base(v, &t);
	}
	activate(m, v, &t);
	update_active_list(m);
}

static void discover_id(struct meter *m, const char *id)
{
	_cleanup_free_ char *p = md_strdup_printf("%s/%s.json", m->tdir, id);
	discover_path(m, p);
}

static bool target_name(const char *name, char *id, size_t len)
{
	size_t n = strlen(name);

	if (name[0] == '.' || n < 6 || n - 5 >= len || strcmp(name + n - 5, ".json") != 0)
		return false;
	memcpy(id, name, n - 5);
	id[n - 5] = '\0';
	return strchr(id, '.') == NULL;
}

static void scan_targets(struct meter *m)
{
	_cleanup_closedir_ DIR *d = opendir(m->tdir);
	struct dirent *de;
	char id[256];

	if (d == NULL) {
		md_error("meter targets `%s`: %s", m->tdir, strerror(errno));
		return;
	}
	while ((de = readdir(d))) {
		if (target_name(de->d_name, id, sizeof(id)))
			discover_id(m, id);
	}
}

static void on_inotify(struct meter *m)
{
	char buf[16384] __attribute__((aligned(__alignof__(struct inotify_event))));
	bool rescan = false;
	ssize_t n;

	while ((n = read(m->ifd, buf, sizeof(buf))) > 0) {
		for (char *p = buf; p < buf + n;) {
			struct inotify_event *ev = (struct inotify_event *)p;
			char id[256];

			p += sizeof(*ev) + ev->len;
			if (ev->mask & (IN_Q_OVERFLOW | IN_IGNORED)) {
				rescan = true;
				continue;
			}
			if (ev->len == 0 || !target_name(ev->name, id, sizeof(id)))
				continue;
			if (ev->mask & (IN_CLOSE_WRITE | IN_MOVED_TO)) {
				discover_id(m, id);
			} else if (ev->mask & (IN_DELETE | IN_MOVED_FROM)) {
				struct vm *v = vm_find(m, id, false);
				if (v && v->active)
					finalize(m, v, "target removed");
			}
		}
	}
	if (rescan) {
		md_warn("meter targets `%s`: inotify queue overflowed or watch lost; rescanning", m->tdir);
		if (m->wd >= 0)
			inotify_rm_watch(m->ifd, m->wd);
		m->wd = inotify_add_watch(m->ifd, m->tdir,
					  IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | IN_DELETE | IN_ONLYDIR);
		scan_targets(m);
	}
}

/* ---- one pass over the VMs -------------------------------------------------------------------- */

enum pass { PASS_EVENTS, PASS_TICK, PASS_EXIT };

static void pass(struct meter *m, enum pass kind)
{
	for (size_t i = 0; i < m->n_vms; i++) {
		struct vm *v = m->vms[i];
		struct md_meter_sample s;
		md_err *err = NULL;

		if (!v->active)
			continue;
		if (v->need_gap)
			add_gap(m, v);
		if (v->need_stop_old)
			add_stop(m, v, m->start_wall, "replaced while the meter was not running");
		if (v->need_start)
			add_start(m, v);
		if (v->final_pending) {
			if (v->have_final)
				add_usage(m, v, &v->final, true);
			add_stop(m, v, v->have_final ? v->final.wall_ns : md_now_wall_ns(), v->final_reason);
			continue;
		}
		if (kind == PASS_EVENTS)
			continue;
		vm_open_src(v);
		if (v->src == NULL)
			continue;
		/* Every tick reads memory (a gauge: peak and average need every sample); the cumulative
		 * counters are read when a record closes, since their difference is all that counts. */
		if (md_meter_sample(v->src, MD_SAMPLE_MEM, &s, &err) < 0)
			goto failed;
		if (kind == PASS_EXIT || s.mono_ns + m->o->interval_ns / 2 >= v->due_mono) {
			if (md_meter_sample(v->src, MD_SAMPLE_ALL, &s, &err) < 0)
				goto failed;
			add_usage(m, v, &s, false);
			/* if the write fails, the next due time tries again, covering the longer period */
			v->due_mono = next_due(v, s.mono_ns + m->o->interval_ns / 2, m->o->period_ns);
		} else if (s.have & MD_SAMPLE_MEM) {
			if (s.mem_bytes > v->mem_peak)
				v->mem_peak = s.mem_bytes;
			v->mem_sum += s.mem_bytes;
			v->nsamples++;
			if (s.mem_max_known)
				v->mem_max = s.mem_max;
		}
		v->warned_sample = false;
		continue;
failed:
		if (!v->warned_sample)
			md_warn("vm `%s`: sample: %s", v->id, err->msg);
		v->warned_sample = true;
		md_err_free(&err);
		if (!md_proc_alive(v->t.pid, v->t.pid_start))
			finalize(m, v, "process exited");
	}
	flush(m);
}

/* ---- shipping --------------------------------------------------------------------------------- */

struct round {
	json_t **e;
	uint64_t *end;
	size_t n, cap;
};

static int round_cb(json_t *e, uint64_t off, uint64_t end, void *arg)
{
	struct round *r = arg;

	(void)off;
	if (r->n == r->cap)
		return 1;
	r->e[r->n] = json_incref(e);
	r->end[r->n] = end;
	r->n++;
	return 0;
}


/* One pass over the durable, unacknowledged part of the ledger. 0: all of it acknowledged. */
static int ship_round(struct shipper *s, uint64_t from, uint64_t durable, uint64_t *new_off, char **errmsg)
{
	struct round r = { .cap = 4096 };
	md_err *err = NULL;
	uint64_t good, torn;
	int rc = 0;

	r.e = calloc(r.cap, sizeof(*r.e));
	r.end = calloc(r.cap, sizeof(*r.end));
	*new_off = from;
	pthread_mutex_lock(&s->files_mu);
	if (md_ledger_scan_dir(s->dir, from, durable, round_cb, &r, &good, &torn, &err) < 0) {
		pthread_mutex_unlock(&s->files_mu);
		*errmsg = strdup(err->msg);
		md_err_free(&err);
		rc = -1;
		goto out;
	}
	pthread_mutex_unlock(&s->files_mu);
	/* entries in ledger order; send each VM's unacknowledged ones in order, VM by VM */
	for (size_t i = 0; i < r.n && rc == 0; i++) {
		const char *vm = json_string_value(json_object_get(r.e[i], "vm"));
		json_t *list[512];
		size_t k = 0, done = 0;
		uint64_t acked;

		if (vm == NULL || ju(r.e[i], "n") <= ju(s->acked, vm))
			continue;
		acked = ju(s->acked, vm);
		for (size_t j = i; j < r.n && k < MD_ARRAY_SIZE(list); j++) {
			const char *vj = json_string_value(json_object_get(r.e[j], "vm"));
			if (vj && strcmp(vj, vm) == 0 && ju(r.e[j], "n") > acked)
				list[k++] = r.e[j];
		}
		while (done < k) {
			const char *method = NULL;
			json_t *body = NULL;
			size_t used = md_billing_request(list + done, k - done, s->batch_max, &method, &body);
			const char *tenant = json_string_value(json_object_get(list[done], "tenant"));

			if (used == 0) {
				used = 1; /* nothing billing takes */
			} else {
				const char *bid = json_string_value(json_object_get(body, "batchId"));
				if (md_billing_call(s->b, method, tenant, bid, body, &err) < 0) {
					*errmsg = md_strdup_printf("%s vm `%s`: %s", method, vm, err->msg);
					md_err_free(&err);
					json_decref(body);
					rc = -1;
					break;
				}
				json_decref(body);
				s->delivered += used;
			}
			done += used;
			json_object_set_new(s->acked, vm, json_integer((json_int_t)ju(list[done - 1], "n")));
			s->acked_dirty = true;
		}
	}
	if (rc == 0 && r.n > 0) {
		bool all = true;
		for (size_t i = 0; i < r.n; i++) {
			const char *vm = json_string_value(json_object_get(r.e[i], "vm"));
			if (vm && ju(r.e[i], "n") > ju(s->acked, vm))
				all = false;
		}
		if (all)
			*new_off = r.end[r.n - 1];
		else
			rc = 1; /* more than one list's worth for a VM: go again */
	}
out:
	if (s->acked_dirty) {
		if (md_ledger_acked_store(s->dir, s->acked, &err) == 0) {
			s->acked_dirty = false;
		} else {
			md_error("%s (retried after the next delivery)", err->msg);
			md_err_free(&err);
		}
	}
	for (size_t i = 0; i < r.n; i++)
		json_decref(r.e[i]);
	free(r.e);
	free(r.end);
	return rc;
}

static void heartbeat(struct shipper *s)
{
	json_t *body;
	md_err *err = NULL;

	pthread_mutex_lock(&s->mu);
	body = json_pack("{s:s, s:O}", "instanceId", s->instance_id, "activeVms", s->active);
	pthread_mutex_unlock(&s->mu);
	if (md_billing_call(s->b, "SendHeartbeat", NULL, NULL, body, &err) < 0) {
		md_debug("billing: heartbeat: %s", err->msg);
		md_err_free(&err);
	}
	json_decref(body);
}

static void *shipper_main(void *arg)
{
	struct shipper *s = arg;
	uint64_t backoff = 0, next_hb = md_now_mono_ns(), next_try = 0;
	char *last_msg = NULL;
	uint64_t last_log = 0;

	pthread_mutex_lock(&s->mu);
	for (;;) {
		uint64_t now = md_now_mono_ns(), durable = s->durable;
		uint64_t wake;
		struct timespec ts;

		if (s->stop)
			break;
		if (s->draining && (s->read_off >= durable || backoff))
			break;
		if (durable > s->read_off && now >= next_try) {
			uint64_t from = s->read_off, to = from;
			char *msg = NULL;
			int r;

			pthread_mutex_unlock(&s->mu);
			r = ship_round(s, from, durable, &to, &msg);
			pthread_mutex_lock(&s->mu);
			s->read_off = to; /* under the lock: the checkpoint reads it */
			if (r < 0) {
				s->failures++;
				backoff = backoff ? backoff * 2 : 100 * NS_MS;
				if (backoff > 30 * NS_S)
					backoff = 30 * NS_S;
				next_try = md_now_mono_ns() + backoff;
				if (last_msg == NULL || strcmp(last_msg, msg) != 0 || now - last_log > 10 * NS_S) {
					md_warn("billing: %s (not acknowledged: kept in the ledger, retrying with "
						"backoff)", msg);
					last_log = now;
				}
				free(last_msg);
				last_msg = msg;
			} else {
				if (backoff)
					md_warn("billing: delivering again");
				backoff = 0;
				next_try = 0;
				free(last_msg);
				last_msg = NULL;
			}
			continue;
		}
		if (s->heartbeat_ns && now >= next_hb && !s->draining) {
			pthread_mutex_unlock(&s->mu);
			heartbeat(s);
			pthread_mutex_lock(&s->mu);
			next_hb = md_now_mono_ns() + s->heartbeat_ns;
			continue;
		}
		wake = s->heartbeat_ns ? next_hb : now + 3600 * NS_S;
		if (durable > s->read_off && next_try < wake)
			wake = next_try;
		{
			/* condition variables wait on CLOCK_REALTIME by default: convert */
			uint64_t w = md_now_wall_ns() + (wake > now ? wake - now : 0);
			ts.tv_sec = (time_t)(w / NS_S);
			ts.tv_nsec = (long)(w % NS_S);
		}
		pthread_cond_timedwait(&s->cv, &s->mu, &ts);
	}
	pthread_mutex_unlock(&s->mu);
	free(last_msg);
	return NULL;
}

static void update_active_list(struct meter *m)
{
	json_t *a = json_array();

	for (size_t i = 0; i < m->n_vms; i++)
		if (m->vms[i]->active)
			json_array_append_new(a, json_string(m->vms[i]->id));
	if (m->sh.started) {
		pthread_mutex_lock(&m->sh.mu);
		json_decref(m->sh.active);
		m->sh.active = a;
		pthread_mutex_unlock(&m->sh.mu);
	} else {
		json_decref(m->sh.active);
		m->sh.active = a;
	}
}

static int shipper_start(struct meter *m, md_err **err)
{
	struct shipper *s = &m->sh;
	char host[256] = "host";
	int r;

	pthread_cond_init(&s->cv, NULL);
	if (m->o->billing.mode != MD_BILLING_SEND)
		return 0;
	gethostname(host, sizeof(host) - 1);
	snprintf(s->instance_id, sizeof(s->instance_id), "metald-meter-%s", host);
	s->ledger_path = strdup(m->ledger.path);
	s->dir = strdup(m->ldir);
	s->acked = json_deep_copy(m->acked);
	s->read_off = m->first_unacked == UINT64_MAX ? m->ledger.end : m->first_unacked;
	s->durable = m->ledger.synced;
	s->b = &m->o->billing;
	s->b->abort = &s->abort;
	s->batch_max = m->o->batch_max;
	s->heartbeat_ns = m->o->heartbeat_ns;
	if (s->active == NULL)
		s->active = json_array();
	r = pthread_create(&s->th, NULL, shipper_main, s);
	if (r != 0)
		return md_fail(err, r, "start the billing thread");
	s->started = true;
	return 0;
}

static void shipper_stop(struct meter *m, uint64_t grace_ns)
{
	struct shipper *s = &m->sh;
	struct timespec ts;
	uint64_t w;

	if (!s->started)
		return;
	pthread_mutex_lock(&s->mu);
	s->draining = true;
	s->durable = m->ledger.synced;
	pthread_cond_signal(&s->cv);
	pthread_mutex_unlock(&s->mu);
	w = md_now_wall_ns() + grace_ns;
	ts.tv_sec = (time_t)(w / NS_S);
	ts.tv_nsec = (long)(w % NS_S);
	if (pthread_timedjoin_np(s->th, NULL, &ts) != 0) {
		s->abort = 1;
		pthread_mutex_lock(&s->mu);
		s->stop = true;
		pthread_cond_signal(&s->cv);
		pthread_mutex_unlock(&s->mu);
		pthread_join(s->th, NULL);
	}
	s->started = false;
	if (s->acked_dirty) {
		md_err *err = NULL;
		if (md_ledger_acked_store(s->dir, s->acked, &err) < 0) {
			md_error("%s (those entries are sent again on the next start)", err->msg);
			md_err_free(&err);
		}
	}
	if (s->read_off < m->ledger.synced)
		md_warn("billing: exiting with entries not yet acknowledged; they are sent on the next start");
}

/* ---- statistics ------------------------------------------------------------------------------- */

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return x < y ? -1 : x > y;
}

static json_t *pct(uint32_t *v, size_t n)
{
	if (n == 0)
		return json_null();
	qsort(v, n, sizeof(*v), cmp_u32);
	return json_pack("{s:I, s:I, s:I, s:I}", "count", (json_int_t)n, "p50_us", (json_int_t)v[n / 2], "p99_us",
			 (json_int_t)v[(n * 99) / 100 < n ? (n * 99) / 100 : n - 1], "max_us", (json_int_t)v[n - 1]);
}

static void write_stats(struct meter *m)
{
	json_t *o;
	md_err *err = NULL;
	size_t active = 0;

	if (m->o->stats_file == NULL)
		return;
	for (size_t i = 0; i < m->n_vms; i++)
		active += m->vms[i]->active;
	o = json_pack("{s:I, s:I, s:I, s:I, s:o, s:o, s:o, s:I, s:I, s:I}", "interval_ns",
		      (json_int_t)m->o->interval_ns, "ticks", (json_int_t)m->st.ticks, "missed_ticks",
		      (json_int_t)m->st.missed, "vms", (json_int_t)active, "tick_lateness", pct(m->st.jitter_us, m->st.n_jitter),
		      "tick_work", pct(m->st.work_us, m->st.n_work), "sample_to_ledger_write",
		      pct(m->st.lat_us, m->st.n_lat), "sample_to_durable_max_us", (json_int_t)m->st.durable_lat_max_us,
		      "billing_delivered", (json_int_t)m->sh.delivered, "billing_failures", (json_int_t)m->sh.failures);
	if (md_json_write_atomic(m->o->stats_file, o, 0644, &err) < 0) {
		md_error("%s", err->msg);
		md_err_free(&err);
	}
	json_decref(o);
}

/* ---- the loop --------------------------------------------------------------------------------- */

enum { TOK_TIMER = 1, TOK_INOTIFY, TOK_SIGNAL };

static int setup_fds(struct meter *m, md_err **err)
{
	struct epoll_event ev = { .events = EPOLLIN };
	sigset_t ss;

	m->epfd = epoll_create1(EPOLL_CLOEXEC);
	m->tfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	m->ifd = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
	if (m->epfd < 0 || m->tfd < 0 || m->ifd < 0)
		return md_fail(err, errno, "event loop");
	sigemptyset(&ss);
	sigaddset(&ss, SIGTERM);
	sigaddset(&ss, SIGINT);
	m->sfd = signalfd(-1, &ss, SFD_CLOEXEC | SFD_NONBLOCK);
	if (m->sfd < 0)
		return md_fail(err, errno, "signalfd");
	/* watch before listing, so a target written in between is not missed */
	m->wd = inotify_add_watch(m->ifd, m->tdir, IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | IN_DELETE | IN_ONLYDIR);
	if (m->wd < 0)
		return md_fail(err, errno, "watch `%s`", m->tdir);
	ev.data.u64 = TOK_TIMER;
	epoll_ctl(m->epfd, EPOLL_CTL_ADD, m->tfd, &ev);
	ev.data.u64 = TOK_INOTIFY;
	epoll_ctl(m->epfd, EPOLL_CTL_ADD, m->ifd, &ev);
	ev.data.u64 = TOK_SIGNAL;
	epoll_ctl(m->epfd, EPOLL_CTL_ADD, m->sfd, &ev);
	return 0;
}

/* Arm the tick timer on absolute times base, base + interval, ...: lateness is measured against them. */
static int arm_timer(struct meter *m, uint64_t base, md_err **err)
{
	struct itimerspec its = { 0 };

	its.it_interval.tv_sec = (time_t)(m->o->interval_ns / NS_S);
	its.it_interval.tv_nsec = (long)(m->o->interval_ns % NS_S);
	its.it_value.tv_sec = (time_t)(base / NS_S);
	its.it_value.tv_nsec = (long)(base % NS_S);
	if (timerfd_settime(m->tfd, TFD_TIMER_ABSTIME, &its, NULL) < 0)
		return md_fail(err, errno, "timerfd");
	return 0;
}

static void raise_nofile(void)
{
	struct rlimit rl;

	/* a few fds per VM (cgroup files, a pidfd): hundreds of VMs need more than 1024 */
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

static void vms_reset(struct meter *m)
{
	for (size_t i = 0; i < m->n_vms; i++) {
		struct vm *v = m->vms[i];
		vm_deactivate(m, v);
		free(v->id);
		free(v->customer);
		free(v->tenant);
		json_decref(v->target_json);
		free(v);
	}
	free(m->vms);
	m->vms = NULL;
	m->n_vms = 0;
}

static void meter_free(struct meter *m)
{
	vms_reset(m);
	free(m->pend);
	free(m->pend_vm);
	md_ledger_close(&m->ledger);
	json_decref(m->acked);
	json_decref(m->sh.acked);
	json_decref(m->sh.active);
	free(m->sh.ledger_path);
	free(m->sh.dir);
	free(m->st.jitter_us);
	free(m->st.work_us);
	free(m->st.lat_us);
	free(m->ldir);
	free(m->tdir);
	for (int *fd = &m->epfd; fd <= &m->sfd; fd++)
		if (*fd >= 0)
			close(*fd);
	md_meter_net_cleanup();
}

/* VMs the ledger has open but no target names: they stopped while the meter was not running. */
static void close_orphans(struct meter *m)
{
	for (size_t i = 0; i < m->n_vms; i++) {
		struct vm *v = m->vms[i];
		struct md_meter_target t;
		md_err *err = NULL;

		if (!v->open || v->active)
			continue;
		v->need_gap = true;
		if (v->target_json && md_meter_target_parse(v->target_json, "recorded target", &t, &err) == 0) {
			v->t = t;
			v->active = true;
			vm_open_src(v);
			if (t.fc_metrics && md_fc_reader_open(&v->fc, t.fc_metrics, v->fc_off, &err) == 0) {
				v->fc_open = true; /* its last metrics lines, after the last record */
				v->fc_gen_built = v->fc_gen_off = v->fc.gen;
			}
			md_err_free(&err);
			finalize(m, v, "stopped while the meter was not running");
		} else {
			md_err_free(&err);
			v->active = true;
			v->final_pending = true;
			v->final_reason = "stopped while the meter was not running (final counters unavailable)";
		}
	}
}

int md_meter_run(const struct md_paths *p, struct md_meter_opts *o, md_err **err)
{
	struct meter m = { .o = o, .epfd = -1, .tfd = -1, .ifd = -1, .sfd = -1, .wd = -1 };
	_cleanup_free_ char *lockp = NULL;
	_cleanup_close_ int lockfd = -1;
	sigset_t ss;
	int rc = 0;
	bool done = false;

	m.first_unacked = UINT64_MAX;
	pthread_mutex_init(&m.sh.mu, NULL);
	pthread_mutex_init(&m.sh.files_mu, NULL);
	m.ldir = md_meter_ledger_dir(p);
	m.tdir = md_meter_targets_dir(p);
	if (o->stats_file) { /* up to about 29 hours of ticks at 100 ms */
		m.st.cap = 1 << 20;
		m.st.jitter_us = calloc(m.st.cap, sizeof(uint32_t));
		m.st.work_us = calloc(m.st.cap, sizeof(uint32_t));
		m.st.lat_us = calloc(m.st.cap, sizeof(uint32_t));
		if (!m.st.jitter_us || !m.st.work_us || !m.st.lat_us)
			m.st.cap = 0;
	}
	raise_nofile();
	sigemptyset(&ss);
	sigaddset(&ss, SIGTERM);
	sigaddset(&ss, SIGINT);
	sigaddset(&ss, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &ss, NULL); /* before the thread starts, so it inherits the mask */
	if (md_mkdir_p(m.ldir, 0700, err) < 0 || md_mkdir_p(m.tdir, 0755, err) < 0)
		goto fail;
	lockp = md_path_join(m.ldir, "lock");
	lockfd = md_lock(lockp, true, 0, err);
	if (lockfd < 0) {
		md_err_wrap(err, "another metald-meter runs on `%s`", m.ldir);
		goto fail;
	}
	if (md_ledger_acked_load(m.ldir, &m.acked, err) < 0)
		goto fail;
	if (recover(&m, err) < 0)
		goto fail;
	if (m.first_unacked == UINT64_MAX) /* all acknowledged: what comes is new */
		m.first_unacked = m.ledger.end;
	m.last_checkpoint_mono = md_now_mono_ns();
	m.start_wall = md_now_wall_ns();
	if (setup_fds(&m, err) < 0)
		goto fail;
	scan_targets(&m);
	close_orphans(&m);
	update_active_list(&m);
	if (shipper_start(&m, err) < 0)
		goto fail;
	md_info("metering every %llu ms, a record every %llu ms, billing %s%s%s",
		(unsigned long long)(o->interval_ns / NS_MS), (unsigned long long)(o->period_ns / NS_MS),
		md_billing_mode_name(o->billing.mode), o->billing.mode == MD_BILLING_SEND ? " to " : "",
		o->billing.mode == MD_BILLING_SEND ? o->billing.endpoint : "");
	pass(&m, PASS_EVENTS);
	sync_maybe(&m, true);

	uint64_t base = md_now_mono_ns() + o->interval_ns, expirations = 0;
	if (arm_timer(&m, base, err) < 0)
		goto fail;
	while (!done) {
		struct epoll_event evs[64];
		bool ticked = false;
		int n = epoll_wait(m.epfd, evs, MD_ARRAY_SIZE(evs), -1);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			md_fail(err, errno, "epoll_wait");
			goto fail;
		}
		for (int i = 0; i < n; i++) {
			uint64_t tok = evs[i].data.u64;

			if (tok == TOK_TIMER) {
				uint64_t exp = 0;
				if (read(m.tfd, &exp, sizeof(exp)) == sizeof(exp) && exp > 0) {
					uint64_t now = md_now_mono_ns(), sched;
					expirations += exp;
					sched = base + (expirations - 1) * o->interval_ns;
					m.st.ticks++;
					m.st.missed += exp - 1;
					if (m.st.n_jitter < m.st.cap)
						m.st.jitter_us[m.st.n_jitter++] =
							(uint32_t)((now > sched ? now - sched : 0) / 1000);
					ticked = true;
				}
			} else if (tok == TOK_INOTIFY) {
				on_inotify(&m);
			} else if (tok == TOK_SIGNAL) {
				struct signalfd_siginfo si;
				while (read(m.sfd, &si, sizeof(si)) == sizeof(si))
					done = true;
			} else {
				struct vm *v = evs[i].data.ptr;
				if (!md_proc_alive(v->t.pid, v->t.pid_start))
					finalize(&m, v, "process exited");
			}
		}
		if (ticked) {
			uint64_t t0 = md_now_mono_ns();
			pass(&m, PASS_TICK);
			if (m.st.n_work < m.st.cap)
				m.st.work_us[m.st.n_work++] = (uint32_t)((md_now_mono_ns() - t0) / 1000);
		} else {
			pass(&m, PASS_EVENTS);
		}
		sync_maybe(&m, false);
		if (md_now_mono_ns() - m.last_prune_mono >= PRUNE_NS)
			prune(&m);
	}
	/* final flush: a record for every VM up to now, on disk, then shipped if billing takes it */
	pass(&m, PASS_EXIT);
	sync_maybe(&m, true);
	if (m.ledger_failing) {
		md_fail(err, 0, "exiting with usage not yet written to the ledger (it is still in the counters "
				"and is recorded on the next start)");
		rc = -1;
	}
	shipper_stop(&m, 3 * NS_S);
	checkpoint_write(&m);
	write_stats(&m);
	meter_free(&m);
	return rc;
fail:
	shipper_stop(&m, 0);
	meter_free(&m);
	return -1;
}
