#include "os/log.h"

#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static int stderr_level = LOG_WARN;
static FILE *log_file;
static char *capture_buf;
static size_t capture_size;

void cr_log_capture(char *buf, size_t size)
{
	if (log_file != NULL)
		fclose(log_file);   /* the child's own copy of the descriptor */
	log_file = NULL;
	capture_buf = buf;
	capture_size = size;
	if (size)
		buf[0] = '\0';
}

static void emit_capture(enum cr_log_level level, const char *fmt, va_list ap)
{
	size_t used = strlen(capture_buf);

	if (level > LOG_WARN || used + 1 >= capture_size)
		return;
	vsnprintf(capture_buf + used, capture_size - used - 1, fmt, ap);
	used = strlen(capture_buf);
	capture_buf[used] = '\n';
	capture_buf[used + 1] = '\0';
}

void cr_log_set_level(int level)
{
	stderr_level = level;
}

int cr_log_open_file(const char *path)
{
	cr_log_close_file();
	if (path == NULL)
		return 0;
	return cr_log_open_fd(open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
}

int cr_log_file_fd(void)
{
	return log_file != NULL ? fileno(log_file) : -1;
}

int cr_log_open_fd(int fd)
{
	cr_log_close_file();
	if (fd < 0)
		return -1;
	log_file = fdopen(fd, "w");
	if (log_file == NULL) {
		close(fd);
		return -1;
	}
	setvbuf(log_file, NULL, _IOLBF, 0);
	return 0;
}

void cr_log_close_file(void)
{
	if (log_file != NULL)
		fclose(log_file);
	log_file = NULL;
}

static void emit_file(enum cr_log_level level, const char *fmt, va_list ap)
{
	static const char *names[] = { "E", "W", "I", "D" };
	struct timespec ts;

	if (log_file == NULL)
		return;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	fprintf(log_file, "(%5ld.%06ld) %s %d: ", (long)ts.tv_sec, ts.tv_nsec / 1000,
		names[level], (int)getpid());
	vfprintf(log_file, fmt, ap);
	fputc('\n', log_file);
}

void cr_log(enum cr_log_level level, const char *fmt, ...)
{
	va_list ap;

	if (capture_buf != NULL) {
		va_start(ap, fmt);
		emit_capture(level, fmt, ap);
		va_end(ap);
		return;
	}
	if ((int)level <= stderr_level) {
		va_start(ap, fmt);
		fputs(level == LOG_WARN ? "cr: warning: " : "cr: ", stderr);
		vfprintf(stderr, fmt, ap);
		fputc('\n', stderr);
		va_end(ap);
	}
	va_start(ap, fmt);
	emit_file(level, fmt, ap);
	va_end(ap);
}

void cr_log_to_file_only(enum cr_log_level level, const char *fmt, ...)
{
	va_list ap;

	if (capture_buf != NULL)
		return;
	va_start(ap, fmt);
	emit_file(level, fmt, ap);
	va_end(ap);
}
