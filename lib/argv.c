/* Argument vectors: grow, add copies or owned strings, free. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "argv.h"
#include "state.h"

void md_av_take(struct md_av *a, char *s)
{
	if (s == NULL)
		abort();
	if (a->n + 2 > a->cap) {
		a->cap = a->cap ? a->cap * 2 : 32;
		a->v = realloc(a->v, a->cap * sizeof(char *));
		if (a->v == NULL)
			abort();
	}
	a->v[a->n++] = s;
	a->v[a->n] = NULL;
}

void md_av_add(struct md_av *a, const char *s)
{
	md_av_take(a, strdup(s));
}

void md_av_addf(struct md_av *a, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	md_av_take(a, md_vstrdup_printf(fmt, ap));
	va_end(ap);
}

void md_av_free(struct md_av *a)
{
	md_argv_free(a->v);
	memset(a, 0, sizeof(*a));
}

void md_argv_free(char **argv)
{
	if (argv == NULL)
		return;
	for (char **p = argv; *p; p++)
		free(*p);
	free(argv);
}
