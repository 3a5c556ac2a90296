/* A tiny TAP producer for lib/ unit tests: ok(), is_int(), is_str(), done_testing(). */
#ifndef METALD_TAP_H
#define METALD_TAP_H

#include <stdio.h>
#include <stdlib.h>
#include <stdarg.h>
#include <string.h>

static int tap_n, tap_failed;

#define ok(cond, ...) tap_ok(!!(cond), __FILE__, __LINE__, __VA_ARGS__)
static inline int tap_ok(int pass, const char *file, int line, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static inline int tap_ok(int pass, const char *file, int line, const char *fmt, ...)
{
	va_list ap;

	tap_n++;
	printf("%s %d - ", pass ? "ok" : "not ok", tap_n);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	if (!pass) {
		tap_failed++;
		printf("#   failed at %s:%d\n", file, line);
	}
	fflush(stdout);
	return pass;
}

#define is_int(got, want, ...)                                                                     \
	do {                                                                                       \
		long long _g = (long long)(got), _w = (long long)(want);                           \
		if (!ok(_g == _w, __VA_ARGS__))                                                     \
			printf("#   got %lld, want %lld\n", _g, _w);                                   \
	} while (0)

#define is_str(got, want, ...)                                                                     \
	do {                                                                                       \
		const char *_g = (got), *_w = (want);                                              \
		if (!ok(_g && _w && strcmp(_g, _w) == 0, __VA_ARGS__))                              \
			printf("#   got `%s`, want `%s`\n", _g ? _g : "(null)", _w ? _w : "(null)");   \
	} while (0)

#define like(got, needle, ...)                                                                     \
	do {                                                                                       \
		const char *_g = (got), *_w = (needle);                                            \
		if (!ok(_g && strstr(_g, _w), __VA_ARGS__))                                         \
			printf("#   `%s` does not contain `%s`\n", _g ? _g : "(null)", _w);            \
	} while (0)

static inline int done_testing(void)
{
	printf("1..%d\n", tap_n);
	return tap_failed ? 1 : 0;
}

#endif
