/* Errors: an out-parameter with an errno-style status, an exit code class and a message. */
#ifndef METALD_ERR_H
#define METALD_ERR_H

#include <stdarg.h>
#include "exitcodes.h"

/*
 * A library function that can fail takes `md_err **err`, returns a negative value on failure and
 * fills *err (crun's convention). Callers add context with md_err_wrap(): the message grows
 * leftwards, "create vm `a1`: netns: File exists". A NULL *err means no error.
 */
struct md_err {
	int status; /* errno value, 0 if none */
	int code;   /* exit code class, enum md_exit */
	char *msg;  /* full message, without the program name */
};
typedef struct md_err md_err;

/* Set *err (if err is not NULL); returns -1. When status != 0, ": strerror(status)" is appended. */
int md_err_set(md_err **err, int code, int status, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
int md_err_vset(md_err **err, int code, int status, const char *fmt, va_list ap);

/* Shorthands for the exit code classes; each returns -1. */
#define md_fail(err, status, ...) md_err_set(err, MD_EXIT_FAIL, status, __VA_ARGS__)
#define md_usage(err, ...) md_err_set(err, MD_EXIT_USAGE, 0, __VA_ARGS__)
#define md_notfound(err, ...) md_err_set(err, MD_EXIT_NOTFOUND, 0, __VA_ARGS__)
#define md_conflict(err, ...) md_err_set(err, MD_EXIT_CONFLICT, 0, __VA_ARGS__)
#define md_missing(err, ...) md_err_set(err, MD_EXIT_MISSING, 0, __VA_ARGS__)
#define md_timeout(err, ...) md_err_set(err, MD_EXIT_TIMEOUT, 0, __VA_ARGS__)

/* Prefix "<context>: " to the message; returns -1 so it can end a failing path. */
int md_err_wrap(md_err **err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

void md_err_free(md_err **err);

/* Exit code for an error: its class. */
int md_err_exit(const md_err *err);

/* Print "prog: message" on stderr and exit with the error's class. */
void md_die(md_err *err) __attribute__((noreturn));

/* The program name used in messages (set once by md_cli_init / md_log_init). */
extern const char *md_progname;

/* Print "prog: fmt" on stderr and exit with code. */
void md_die_msg(int code, const char *fmt, ...) __attribute__((noreturn, format(printf, 2, 3)));

#endif
