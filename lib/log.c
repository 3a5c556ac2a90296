/* Logging: one line per message on stderr, "prog: level: message" or one JSON object. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <jansson.h>

#include "log.h"

static enum md_log_level log_level = MD_LOG_WARN;
static enum md_log_format log_format = MD_LOG_TEXT;

static const char *const level_names[] = { "error", "warning", "info", "debug" };

int md_log_parse_level(const char *s, enum md_log_level *out, md_err **err)
{
	static const struct { const char *name; enum md_log_level lvl; } names[] = {
		{ "error", MD_LOG_ERROR }, { "warn", MD_LOG_WARN },   { "warning", MD_LOG_WARN },
		{ "info", MD_LOG_INFO },   { "debug", MD_LOG_DEBUG },
	};
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if (strcasecmp(s, names[i].name) == 0) {
			*out = names[i].lvl;
			return 0;
		}
	}
	return md_usage(err, "log level `%s`: must be one of error, warn, info, debug", s);
}

int md_log_parse_format(const char *s, enum md_log_format *out, md_err **err)
{
	if (strcmp(s, "text") == 0)
		*out = MD_LOG_TEXT;
	else if (strcmp(s, "json") == 0)
		*out = MD_LOG_JSON;
	else
		return md_usage(err, "log format `%s`: must be text or json", s);
	return 0;
}

int md_log_init(const char *progname, md_err **err)
{
	const char *s;

	md_progname = progname;
	s = getenv("UNKEY_METALD_LOG_LEVEL");
	if (s && *s && md_log_parse_level(s, &log_level, err) < 0)
		return md_err_wrap(err, "UNKEY_METALD_LOG_LEVEL");
	s = getenv("UNKEY_METALD_LOG_FORMAT");
	if (s && *s && md_log_parse_format(s, &log_format, err) < 0)
		return md_err_wrap(err, "UNKEY_METALD_LOG_FORMAT");
	return 0;
}

void md_log_set_level(enum md_log_level lvl) { log_level = lvl; }
void md_log_set_format(enum md_log_format fmt) { log_format = fmt; }
enum md_log_level md_log_get_level(void) { return log_level; }
enum md_log_format md_log_get_format(void) { return log_format; }

static void emit(enum md_log_level lvl, const char *msg)
{
	if (log_format == MD_LOG_JSON) {
		struct timespec ts;
		struct tm tm;
		char when[64];
		json_t *o;
		char *line;

		clock_gettime(CLOCK_REALTIME, &ts);
		gmtime_r(&ts.tv_sec, &tm);
		snprintf(when, sizeof(when), "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ", tm.tm_year + 1900,
			 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000);
		o = json_pack("{s:s, s:s, s:s, s:s}", "time", when, "level", level_names[lvl], "prog",
			      md_progname, "msg", msg);
		line = o ? json_dumps(o, JSON_COMPACT) : NULL;
		if (line)
			fprintf(stderr, "%s\n", line);
		free(line);
		json_decref(o);
		return;
	}
	if (lvl == MD_LOG_ERROR)
		fprintf(stderr, "%s: %s\n", md_progname, msg);
	else
		fprintf(stderr, "%s: %s: %s\n", md_progname, level_names[lvl], msg);
}

void md_log(enum md_log_level lvl, const char *fmt, ...)
{
	char *msg = NULL;
	va_list ap;

	if (lvl > log_level)
		return;
	va_start(ap, fmt);
	if (vasprintf(&msg, fmt, ap) < 0)
		msg = NULL;
	va_end(ap);
	emit(lvl, msg ? msg : fmt);
	free(msg);
}

void md_log_error_line(const char *msg)
{
	emit(MD_LOG_ERROR, msg);
}
