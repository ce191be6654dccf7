#include "os/error.h"
#include "os/log.h"
#include "os/xalloc.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int cr_error(cr_error_t *err, int status, const char *fmt, ...)
{
	va_list ap;
	char *what;
	struct cr_error_s *e;

	if (err == NULL)
		return -1;
	e = xcalloc(1, sizeof(*e));
	va_start(ap, fmt);
	what = xvasprintf(fmt, ap);
	va_end(ap);
	e->status = status;
	if (status != 0) {
		e->msg = xasprintf("%s: %s", what, strerror(status));
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
	char *ctx, *joined;

	if (err == NULL || *err == NULL)
		return -1;
	va_start(ap, fmt);
	ctx = xvasprintf(fmt, ap);
	va_end(ap);
	joined = xasprintf("%s: %s", ctx, (*err)->msg ? (*err)->msg : "unknown error");
	free((*err)->msg);
	(*err)->msg = joined;
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
