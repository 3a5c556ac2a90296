/* Firecracker's own metrics: lines of per-flush deltas in a file or FIFO, summed into counters. */
#ifndef METALD_METER_FC_H
#define METALD_METER_FC_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include "err.h"
#include "meter-sample.h"

/*
 * Firecracker writes one JSON line per flush (at boot, every 60 s, on FlushMetrics, on SIGHUP and at a
 * clean exit), each holding the *differences* since the previous line. The guest's disk and network
 * counters are `block.{read,write}_bytes`, `block.{read,write}_count`, `net.{rx,tx}_bytes_count`,
 * `net.{rx,tx}_packets_count` (aggregates over devices; rx = into the guest).
 *
 * A reader keeps a position. For a regular file the position is a byte offset that the ledger records
 * with each usage record, so a restarted meter reads on from exactly there (nothing lost or counted
 * twice). The file is kept open once it is there, so lines written just before the VMM exited are
 * still read after its jail (with the file's name) is gone. A FIFO cannot be read twice: what was
 * read and not yet recorded is lost in a crash.
 */
struct md_fc_reader {
	char *path;
	int fd;        /* kept open (-1: a file not there yet) */
	bool fifo;
	dev_t dev;     /* file: the one open, to see another under the same name */
	ino_t ino;
	uint64_t off;  /* file: bytes consumed (complete lines only) */
	unsigned gen;  /* file: how many times another file took the name, or the file was found
			* shorter than the position (off is into the newest) */
	bool read;     /* file: read since it was opened (its position checked against its size) */
	uint64_t freed; /* file: bytes at its start given back to the file system; UINT64_MAX: cannot */
	char *partial; /* FIFO: an incomplete last line */
	size_t partial_len;
};

int md_fc_reader_open(struct md_fc_reader *r, const char *path, uint64_t off, md_err **err);
void md_fc_reader_close(struct md_fc_reader *r);

/* Read the complete lines that are there; add their deltas to *sum. *lines counts them. A file that
 * got shorter than the position was rewritten: read from 0 again. When another file took the name
 * (a new VMM process), the open one is read to its end, then the new one from 0. */
int md_fc_read(struct md_fc_reader *r, struct md_meter_counters *sum, unsigned *lines, md_err **err);

/* Give the file system back the blocks of the file before `upto`, a position that a durable record
 * holds for the file of generation `gen` (r->gen when that record's position was taken): they are
 * punched out, the size stays, so every position stays valid and Firecracker writes on at its own
 * offset. Nothing for a FIFO, for another file than the one open, before the open file was read
 * (after a restart, the recorded position may not be this file's), for a file with other links,
 * for less than 1 MiB of progress, or again after the file system refused for good (no hole
 * punching, no permission). */
void md_fc_release(struct md_fc_reader *r, unsigned gen, uint64_t upto);

/* Add one metrics line's deltas to *sum; false when the line is not a metrics object. */
bool md_fc_line(const char *line, size_t len, struct md_meter_counters *sum);

#endif
