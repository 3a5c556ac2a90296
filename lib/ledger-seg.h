/* The meter ledger's sealed segments: naming, listing, reading across them, rotation and pruning. */
#ifndef METALD_LEDGER_SEG_H
#define METALD_LEDGER_SEG_H

#include <stdbool.h>
#include <stdint.h>
#include <jansson.h>
#include "err.h"
#include "ledger.h"

/*
 * Positions in the ledger are *logical* byte offsets: offsets in the concatenation of every file
 * the ledger ever had. A sealed segment is named after the logical offset of its first byte,
 * <dir>/ledger.<20 digits>.jsonl, so names sort in ledger order. The active file, ledger.jsonl,
 * starts (after the first rotation) with a "segment" entry: {"seq", "type":"segment", "base": its
 * logical offset, "vms": the meter's per-VM state at that point}, so every file can be read on its
 * own even when older segments are gone. A file without that entry starts at the end of the newest
 * segment, or at 0.
 */
struct md_ledger_file {
	char *path;
	uint64_t base, size, mtime_ns;
	bool active;
	bool header; /* begins with a "segment" entry (sealed segments: assumed) */
};

struct md_ledger_files {
	struct md_ledger_file *f;
	size_t n;
};

/* "ledger.<digits>.jsonl" -> base. */
bool md_ledger_seg_parse(const char *name, uint64_t *base);
/* malloc'd "ledger.%020llu.jsonl" */
char *md_ledger_seg_name(uint64_t base);

/* Sealed segments by base, then the active file if it exists. */
int md_ledger_files_list(const char *dir, struct md_ledger_files *fl, md_err **err);
void md_ledger_files_free(struct md_ledger_files *fl);

/* md_ledger_scan over logical offsets [from, to) (to 0: the end) across all files; the callback
 * sees logical offsets. *torn is the active file's torn tail. */
int md_ledger_scan_dir(const char *dir, uint64_t from, uint64_t to, md_ledger_cb cb, void *arg, uint64_t *good_end,
		       uint64_t *torn, md_err **err);

/* For readers in other processes (report, prom): every file in order under a shared lock, so a
 * rotation cannot move a file away in the middle. Sealed segments last written before since_wall
 * (0: none) are skipped: every record in them ended before that; so are those whose earliest usage
 * record ended at or after until_wall (0: none), as the segment index says (md_ledger_seg_index).
 * latest: start at the newest file that begins with a "segment" entry (for the per-VM state now,
 * not the history). *bytes: the size of all files (the active one's whole lines). */
int md_ledger_read_all(const char *dir, uint64_t since_wall, uint64_t until_wall, bool latest, md_ledger_cb cb,
		       void *arg, uint64_t *bytes, md_err **err);

/* The segment index, <dir>/segments.json: {"<20-digit base>": the earliest end_wall of a usage
 * record in that sealed segment}. The meter adds a segment when it seals it, if it saw every record
 * the segment holds (not after a restart in its middle); entries of removed segments are dropped
 * then. A segment missing from it is read; the file itself may be missing or lost. */
void md_ledger_seg_index(const char *dir, uint64_t base, uint64_t min_end_wall);

/* Finish or undo a rotation a crash interrupted, and make the readers' lock file (called by
 * md_ledger_open). */
int md_ledger_seg_repair(const char *dir, md_err **err);

/* Seal the active file as ledger.<base>.jsonl and start a new one with a "segment" entry holding
 * `vms` (stolen). Only when everything written is on disk. A reader holding the lock makes it fail
 * at once with a conflict (MD_EXIT_CONFLICT), and so md_ledger_prune; try again later. */
int md_ledger_rotate(struct md_ledger *l, json_t *vms, md_err **err);

/* Remove the oldest sealed segments that end at or before `acked_upto` (everything before it is
 * acknowledged) and were last written at least keep_ns ago; stops at the first one that must stay. */
int md_ledger_prune(struct md_ledger *l, uint64_t acked_upto, uint64_t keep_ns, unsigned *removed, md_err **err);

#endif
