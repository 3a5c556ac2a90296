/* The meter's durable ledger: an append-only file of JSON lines, crash recovery, acked marks. */
#ifndef METALD_LEDGER_H
#define METALD_LEDGER_H

#include <stdbool.h>
#include <stdint.h>
#include <jansson.h>
#include "err.h"

/*
 * <dir>/ledger.jsonl holds one compact JSON object per line, each with a "seq" that grows by one
 * per line. Lines are only ever appended, each batch with one write(2); a batch that fails part way
 * is cut off again (ftruncate), so the file only ever holds whole lines - except after a crash in
 * the middle of a write, which md_ledger_open repairs by cutting the torn tail.
 * <dir>/acked.json is {"vm id": n, ...}: the highest per-VM entry number the billing service has
 * acknowledged, replaced atomically.
 */
struct md_ledger {
	char *dir, *path;
	int fd;
	uint64_t base;   /* logical offset of the active file's first byte (see ledger-seg.h) */
	uint64_t end;    /* logical offset after the last whole line */
	uint64_t synced; /* logical offset up to which everything is on disk (fsync) */
	uint64_t seq;    /* last seq written */
	uint64_t last_sync_mono;
};

/* Called for every whole, valid line in order; `end` is the offset just after the line.
 * A non-zero return stops the scan and is returned by md_ledger_scan. */
typedef int (*md_ledger_cb)(json_t *entry, uint64_t offset, uint64_t end, void *arg);

/* Scan path from offset `from`; stops at `to` (0: end of file). *good_end is the offset after the
 * last valid line, *torn the number of bytes after it that do not form a valid line (a tail cut
 * short by a crash). A bad line followed by good ones is corruption, not a torn tail: an error. */
int md_ledger_scan(const char *path, uint64_t from, uint64_t to, md_ledger_cb cb, void *arg,
		   uint64_t *good_end, uint64_t *torn, md_err **err);

/* Open (create) <dir>/ledger.jsonl for appending; a torn tail is cut off with a warning. cb (may be
 * NULL) sees every entry of every file (sealed segments first, logical offsets), so the caller
 * rebuilds its state in the same pass; a rotation a crash interrupted is finished or undone first. */
int md_ledger_open(struct md_ledger *l, const char *dir, md_ledger_cb cb, void *arg, md_err **err);
/* The same, reading only from logical offset `from`, where a checkpoint says entry `from_seq` ended. Returns 1
 * (nothing opened, no error) when the checkpoint does not fit the file: then open from 0. */
int md_ledger_open_at(struct md_ledger *l, const char *dir, uint64_t from, uint64_t from_seq, md_ledger_cb cb,
		      void *arg, md_err **err);
void md_ledger_close(struct md_ledger *l);

/* Append n entries with one write: each gets "seq" first. All or nothing: on failure the file is
 * cut back and the entries' seq are removed again. */
int md_ledger_append(struct md_ledger *l, json_t **entries, size_t n, md_err **err);

/* fsync now. */
int md_ledger_sync(struct md_ledger *l, md_err **err);

/* Acknowledged marks: load (missing file = empty object) and store atomically. */
int md_ledger_acked_load(const char *dir, json_t **acked, md_err **err);
int md_ledger_acked_store(const char *dir, json_t *acked, md_err **err);

#endif
