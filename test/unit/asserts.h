/* Assertions on cr_error_t results, for the cmocka unit tests. */
#ifndef CR_TEST_ASSERTS_H
#define CR_TEST_ASSERTS_H

#include <string.h>

#include "os/error.h"

/* Checks that err holds a message containing a (and b, unless NULL), then
 * clears it. */
static inline void assert_err_has(cr_error_t *err, const char *a, const char *b)
{
	const char *msg;

	assert_non_null(*err);
	msg = (*err)->msg != NULL ? (*err)->msg : "";
	if (strstr(msg, a) == NULL || (b != NULL && strstr(msg, b) == NULL))
		fail_msg("error \"%s\" lacks \"%s\"%s%s", msg, a, b ? " or " : "", b ? b : "");
	cr_error_release(err);
}

static inline void assert_ok(int ret, cr_error_t *err)
{
	if (ret < 0)
		fail_msg("unexpected error: %s", *err && (*err)->msg ? (*err)->msg : "?");
}

#endif
