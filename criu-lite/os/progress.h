/* A progress line for long dumps and restores: on a terminal only, once
 * the work has run for a second (CR_PROGRESS_AFTER_MS), bytes of page data
 * done and the total, and the rate. */
#ifndef CR_PROGRESS_H
#define CR_PROGRESS_H

#include <stdint.h>

/* total may be an estimate (approx: shown with a ~). */
void progress_start(const char *what, uint64_t total, int approx);
void progress_add(uint64_t bytes);
/* Ends the line if one was shown. */
void progress_done(void);

#endif
