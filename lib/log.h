/* Logging to stderr with levels and a text or JSON format. */
#ifndef METALD_LOG_H
#define METALD_LOG_H

#include "err.h"

enum md_log_level { MD_LOG_ERROR = 0, MD_LOG_WARN, MD_LOG_INFO, MD_LOG_DEBUG };
enum md_log_format { MD_LOG_TEXT = 0, MD_LOG_JSON };

/* Set the program name and read UNKEY_METALD_LOG_LEVEL / UNKEY_METALD_LOG_FORMAT (invalid values are
 * an error). Flags applied later (md_log_set_*) win over the environment. */
int md_log_init(const char *progname, md_err **err);
int md_log_parse_level(const char *s, enum md_log_level *out, md_err **err);
int md_log_parse_format(const char *s, enum md_log_format *out, md_err **err);
void md_log_set_level(enum md_log_level lvl);
void md_log_set_format(enum md_log_format fmt);
enum md_log_level md_log_get_level(void);
enum md_log_format md_log_get_format(void);

void md_log(enum md_log_level lvl, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
#define md_error(...) md_log(MD_LOG_ERROR, __VA_ARGS__)
#define md_warn(...) md_log(MD_LOG_WARN, __VA_ARGS__)
#define md_info(...) md_log(MD_LOG_INFO, __VA_ARGS__)
#define md_debug(...) md_log(MD_LOG_DEBUG, __VA_ARGS__)

/* The one-line error message of a failing program, always printed (even with --quiet). */
void md_log_error_line(const char *msg);

#endif
