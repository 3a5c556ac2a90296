/* Error objects with context wrapping, and the one-line program messages built from them. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "log.h"

const char *md_progname = "metald";

int md_err_vset(md_err **err, int code, int status, const char *fmt, va_list ap)
{
	char *msg = NULL, *full = NULL;
	md_err *e;

	if (err == NULL)
		return -1;
	if (vasprintf(&msg, fmt, ap) < 0)
		msg = NULL;
	if (msg && status != 0) {
		if (asprintf(&full, "%s: %s", msg, strerror(status)) < 0)
			full = NULL;
		free(msg);
		msg = full;
	}
	if (*err) /* keep the first error; a second one set on top would hide the cause */
		md_err_free(err);
	e = calloc(1, sizeof(*e));
	if (e == NULL) {
		free(msg);
		abort();
	}
	e->status = status;
	e->code = code;
	e->msg = msg ? msg : strdup("out of memory");
	*err = e;
	return -1;
}

int md_err_set(md_err **err, int code, int status, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	md_err_vset(err, code, status, fmt, ap);
	va_end(ap);
	return -1;
}

int md_err_wrap(md_err **err, const char *fmt, ...)
{
	char *ctx = NULL, *full = NULL;
	va_list ap;

	if (err == NULL || *err == NULL)
		return -1;
	va_start(ap, fmt);
	if (vasprintf(&ctx, fmt, ap) < 0)
		ctx = NULL;
	va_end(ap);
	if (ctx && asprintf(&full, "%s: %s", ctx, (*err)->msg) >= 0) {
		free((*err)->msg);
		(*err)->msg = full;
	}
	free(ctx);
	return -1;
}

void md_err_free(md_err **err)
{
	if (err == NULL || *err == NULL)
		return;
	free((*err)->msg);
	free(*err);
	*err = NULL;
}

int md_err_exit(const md_err *err)
{
	return err ? err->code : MD_EXIT_OK;
}

void md_die(md_err *err)
{
	int code = md_err_exit(err);

	md_log_error_line(err ? err->msg : "unknown error");
	md_err_free(&err);
	exit(code ? code : MD_EXIT_FAIL);
}

void md_die_msg(int code, const char *fmt, ...)
{
	char *msg = NULL;
	va_list ap;

	va_start(ap, fmt);
	if (vasprintf(&msg, fmt, ap) < 0)
		msg = NULL;
	va_end(ap);
	md_log_error_line(msg ? msg : fmt);
	free(msg);
	exit(code);
}
