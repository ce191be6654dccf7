/* Logging: messages at or below the -v level go to stderr; every message at
 * or below the file level goes to the log file in the image directory. */
#ifndef CR_LOG_H
#define CR_LOG_H

#include <stddef.h>

enum cr_log_level { LOG_ERROR = 0, LOG_WARN = 1, LOG_INFO = 2, LOG_DEBUG = 3 };

void cr_log_set_level(int level);
/* Opens (truncating) the log file; NULL path closes it. Returns -1 on error. */
int cr_log_open_file(const char *path);
/* Logs to fd, open for writing (taken over; -1 is an error). */
int cr_log_open_fd(int fd);
void cr_log_close_file(void);
/* The log file's descriptor, or -1. */
int cr_log_file_fd(void);

/* From now on, messages are appended to buf (NUL-terminated, truncated at
 * size) instead of going to stderr or the log file: for a restore child,
 * whose fds are about to become the restored process's. */
void cr_log_capture(char *buf, size_t size);

void cr_log(enum cr_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void cr_log_to_file_only(enum cr_log_level level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#define pr_warn(...) cr_log(LOG_WARN, __VA_ARGS__)
#define pr_info(...) cr_log(LOG_INFO, __VA_ARGS__)
#define pr_debug(...) cr_log(LOG_DEBUG, __VA_ARGS__)

#endif
