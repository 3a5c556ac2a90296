/* The printer: JSON or text/table renderings of one jansson value. */
#include <stdlib.h>
#include <string.h>
#include <ctype.h>

#include "cleanup.h"
#include "out.h"

json_t *md_json_path(json_t *obj, const char *path)
{
	_cleanup_free_ char *dup = strdup(path);
	char *save = NULL, *tok;
	json_t *cur = obj;

	if (dup == NULL)
		return NULL;
	for (tok = strtok_r(dup, ".", &save); tok && cur; tok = strtok_r(NULL, ".", &save))
		cur = json_is_object(cur) ? json_object_get(cur, tok) : NULL;
	return cur;
}

char *md_out_scalar(json_t *v)
{
	char *s = NULL;

	switch (v ? json_typeof(v) : JSON_NULL) {
	case JSON_STRING:
		return strdup(json_string_value(v));
	case JSON_INTEGER:
		if (asprintf(&s, "%" JSON_INTEGER_FORMAT, json_integer_value(v)) < 0)
			s = NULL;
		return s;
	case JSON_REAL:
		if (asprintf(&s, "%.2f", json_real_value(v)) < 0)
			s = NULL;
		return s;
	case JSON_TRUE:
		return strdup("true");
	case JSON_FALSE:
		return strdup("false");
	case JSON_NULL:
		return strdup("-");
	case JSON_ARRAY: {
		size_t i, len = 0;
		json_t *e;
		int scalars = 1;

		json_array_foreach(v, i, e)
			if (json_is_object(e) || json_is_array(e))
				scalars = 0;
		if (!scalars)
			return json_dumps(v, JSON_COMPACT);
		if (json_array_size(v) == 0)
			return strdup("-");
		json_array_foreach(v, i, e) {
			_cleanup_free_ char *p = md_out_scalar(e);
			size_t pl = p ? strlen(p) : 0;
			char *n = realloc(s, len + pl + 2);

			if (n == NULL) {
				free(s);
				return NULL;
			}
			s = n;
			if (len)
				s[len++] = ',';
			memcpy(s + len, p ? p : "", pl);
			len += pl;
			s[len] = '\0';
		}
		return s;
	}
	case JSON_OBJECT:
		return json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS);
	}
	return strdup("?");
}

static void col_split(const char *col, char *path, size_t plen, char *head, size_t hlen)
{
	const char *eq = strchr(col, '=');
	size_t n = eq ? (size_t)(eq - col) : strlen(col);

	snprintf(path, plen, "%.*s", (int)n, col);
	if (eq) {
		snprintf(head, hlen, "%s", eq + 1);
	} else {
		const char *last = strrchr(path, '.');
		size_t i;

		snprintf(head, hlen, "%s", last ? last + 1 : path);
		for (i = 0; head[i]; i++)
			head[i] = head[i] == '_' ? ' ' : (char)toupper((unsigned char)head[i]);
	}
}

static int print_table(FILE *f, json_t *arr, const char *const *cols)
{
	const char **owned = NULL;
	size_t ncols = 0, nrows = json_array_size(arr), c, r;
	size_t *width;
	char ***cells;

	if (cols == NULL) {
		json_t *first = json_array_get(arr, 0);
		const char *key;
		json_t *val;

		if (!json_is_object(first))
			return 0;
		owned = calloc(json_object_size(first) + 1, sizeof(*owned));
		if (owned == NULL)
			return -1;
		json_object_foreach(first, key, val)
			owned[ncols++] = key;
		cols = owned;
	} else {
		while (cols[ncols])
			ncols++;
	}

	width = calloc(ncols, sizeof(*width));
	cells = calloc(nrows + 1, sizeof(*cells));
	if (width == NULL || cells == NULL) {
		free(width);
		free(cells);
		free(owned);
		return -1;
	}
	for (r = 0; r <= nrows; r++) {
		cells[r] = calloc(ncols, sizeof(char *));
		for (c = 0; cells[r] && c < ncols; c++) {
			char path[256], head[128];

			col_split(cols[c], path, sizeof(path), head, sizeof(head));
			if (r == 0)
				cells[r][c] = strdup(head);
			else
				cells[r][c] = md_out_scalar(md_json_path(json_array_get(arr, r - 1), path));
			if (cells[r][c] && strlen(cells[r][c]) > width[c])
				width[c] = strlen(cells[r][c]);
		}
	}
	for (r = 0; r <= nrows; r++) {
		for (c = 0; cells[r] && c < ncols; c++) {
			const char *s = cells[r][c] ? cells[r][c] : "";

			if (c + 1 == ncols)
				fprintf(f, "%s", s);
			else
				fprintf(f, "%-*s  ", (int)width[c], s);
			free(cells[r][c]);
		}
		fputc('\n', f);
		free(cells[r]);
	}
	free(cells);
	free(width);
	free(owned);
	return 0;
}

static void print_object(FILE *f, json_t *obj, const char *prefix, int keyw)
{
	const char *key;
	json_t *val;

	json_object_foreach(obj, key, val) {
		char name[512];

		snprintf(name, sizeof(name), "%s%s%s", prefix, *prefix ? "." : "", key);
		if (json_is_object(val) && json_object_size(val) > 0) {
			print_object(f, val, name, keyw);
		} else {
			_cleanup_free_ char *s = md_out_scalar(val);
			fprintf(f, "%-*s %s\n", keyw, name, s ? s : "");
		}
	}
}

static int key_width(json_t *obj, const char *prefix)
{
	const char *key;
	json_t *val;
	int w = 0;

	json_object_foreach(obj, key, val) {
		int l = (int)strlen(prefix) + (*prefix ? 1 : 0) + (int)strlen(key) + 1;
		if (json_is_object(val) && json_object_size(val) > 0) {
			char name[512];

			snprintf(name, sizeof(name), "%s%s%s", prefix, *prefix ? "." : "", key);
			l = key_width(val, name);
		}
		if (l > w)
			w = l;
	}
	return w;
}

int md_out_print(FILE *f, json_t *v, enum md_out_mode mode, const char *const *cols)
{
	if (mode == MD_OUT_JSON) {
		if (json_dumpf(v, f, JSON_INDENT(2) | JSON_PRESERVE_ORDER) < 0)
			return -1;
		fputc('\n', f);
		return fflush(f) == 0 ? 0 : -1;
	}
	if (json_is_array(v)) {
		if (print_table(f, v, cols) < 0)
			return -1;
	} else if (json_is_object(v)) {
		if (cols) {
			_cleanup_json_ json_t *sub = json_object();
			for (size_t i = 0; cols[i]; i++) {
				char path[256], head[128];

				col_split(cols[i], path, sizeof(path), head, sizeof(head));
				json_t *x = md_json_path(v, path);
				json_object_set(sub, path, x ? x : json_null());
			}
			print_object(f, sub, "", key_width(sub, ""));
		} else {
			/* "key:" then the value, keys padded to one column */
			int w = key_width(v, "");
			print_object(f, v, "", w);
		}
	} else {
		_cleanup_free_ char *s = md_out_scalar(v);
		fprintf(f, "%s\n", s ? s : "");
	}
	return fflush(f) == 0 ? 0 : -1;
}

int md_out_line(FILE *f, json_t *v)
{
	if (json_dumpf(v, f, JSON_COMPACT | JSON_PRESERVE_ORDER) < 0)
		return -1;
	fputc('\n', f);
	return fflush(f) == 0 ? 0 : -1;
}
