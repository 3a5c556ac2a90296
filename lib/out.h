/* One printer, two renderings: the same jansson value as JSON (--json) or as text/table. */
#ifndef METALD_OUT_H
#define METALD_OUT_H

#include <stdio.h>
#include <jansson.h>

enum md_out_mode { MD_OUT_TEXT = 0, MD_OUT_JSON };

/*
 * Print v.
 * JSON: indented, one value, newline-terminated.
 * Text: an array of objects is a table whose columns are `cols` (NULL: the keys of the first
 * object); a column is "path" or "path=HEADER", path dotted into nested objects ("net.ipv4").
 * An object is "key: value" lines with nested objects flattened ("network.mac: ..."); with cols,
 * only those keys. Strings print raw, null as "-", arrays of scalars comma-joined.
 */
int md_out_print(FILE *f, json_t *v, enum md_out_mode mode, const char *const *cols);

/* One compact JSON value per line (streams: samples, events). Flushes. */
int md_out_line(FILE *f, json_t *v);

/* Render a scalar for text output into a newly allocated string. */
char *md_out_scalar(json_t *v);

/* Look up a dotted path in an object; NULL when absent. */
json_t *md_json_path(json_t *obj, const char *path);

#endif
