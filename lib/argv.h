/* Building argument vectors (NULL-terminated, every string owned) for programs metald runs. */
#ifndef METALD_ARGV_H
#define METALD_ARGV_H

#include <stddef.h>

struct md_av {
	char **v; /* NULL-terminated once anything was added */
	size_t n, cap;
};

void md_av_take(struct md_av *a, char *s); /* takes ownership of s (aborts on NULL: out of memory) */
void md_av_add(struct md_av *a, const char *s);
void md_av_addf(struct md_av *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void md_av_free(struct md_av *a);

/* Free a NULL-terminated vector of owned strings (what md_av's v becomes when handed out). */
void md_argv_free(char **argv);

#endif
