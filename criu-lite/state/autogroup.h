/* The autogroup nice kind's parser, for its unit test. */
#ifndef CR_AUTOGROUP_H
#define CR_AUTOGROUP_H

#include <stdint.h>

/* The nice in the text of /proc/PID/autogroup: 0 for the root autogroup
 * (an empty file), which has none of its own.  -1 when the text is not
 * one. */
int autogroup_parse(const char *text, int32_t *nice);

#endif
