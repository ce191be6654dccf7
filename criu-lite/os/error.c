#include "os/error.h"
#include "os/log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *vformat(const char *fmt, va_list ap)
{
	char *s = NULL;

	if (vasprintf(&s, fmt, ap) < 0)
		return NULL;
	return s;
}

int cr_error(cr_error_t *err, int status, const char *fmt, ...)
{
	va_list ap;
	char *what;
	struct cr_error_s *e;

	if (err == NULL)
		return -1;
	e = calloc(1, sizeof(*e));
	if (e == NULL)
		return -1;
	va_start(ap, fmt);
	what = vformat(fmt, ap);
	va_end(ap);
	e->status = status;
	if (what != NULL && status != 0) {
		if (asprintf(&e->msg, "%s: %s", what, strerror(status)) < 0)
			e->msg = NULL;
		free(what);
	} else {
		e->msg = what;
	}
	cr_error_release(err);
	*err = e;
	return -1;
}

int cr_error_wrap(cr_error_t *err, const char *fmt, ...)
{
	va_list ap;
	char *ctx, *joined = NULL;

	if (err == NULL || *err == NULL)
		return -1;
	va_start(ap, fmt);
	ctx = vformat(fmt, ap);
	va_end(ap);
	if (ctx == NULL)
		return -1;
	if (asprintf(&joined, "%s: %s", ctx, (*err)->msg ? (*err)->msg : "unknown error") >= 0) {
		free((*err)->msg);
		(*err)->msg = joined;
	}
	free(ctx);
	return -1;
}

void cr_error_release(cr_error_t *err)
{
	if (err == NULL || *err == NULL)
		return;
	free((*err)->msg);
	free(*err);
	*err = NULL;
}

void cr_error_report(cr_error_t err)
{
	const char *msg = err && err->msg ? err->msg : "unknown error";

	fprintf(stderr, "cr: error: %s\n", msg);
	cr_log_to_file_only(LOG_ERROR, "error: %s", msg);
}
