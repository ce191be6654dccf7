/* Errors returned and wrapped with context on the way up.
 *
 * A failing function fills *err and returns -1.  Callers that add context
 * use cr_error_wrap(), so the final message reads outermost first:
 *   "restore pid 42: map 0x7f..-0x7f..: mmap: Cannot allocate memory". */
#ifndef CR_ERROR_H
#define CR_ERROR_H

struct cr_error_s {
	int status; /* errno of the root cause, 0 when there is none */
	char *msg;
};
typedef struct cr_error_s *cr_error_t;

/* Sets *err (which must be empty) and returns -1.  When status is non-zero
 * its strerror() is appended to the message. */
int cr_error(cr_error_t *err, int status, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Prefixes "context: " to the message in *err and returns -1. */
int cr_error_wrap(cr_error_t *err, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Frees *err and sets it to NULL; harmless on an empty error. */
void cr_error_release(cr_error_t *err);

/* Prints "cr: <message>" to stderr and to the log. */
void cr_error_report(cr_error_t err);

#endif
