/* wl — see wl.h. */
#include "wl.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <poll.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

volatile sig_atomic_t wl_triggered;

static char state_dir[PATH_MAX];
static uint64_t token;
static pid_t start_pid;

static char failure_text[8192];
static size_t failure_len;
static unsigned failure_count;

static void on_trigger(int sig)
{
	(void)sig;
	wl_triggered = 1;
}

/* Before the state dir is known there is nowhere to report to but stderr. */
static void early_die(const char *what)
{
	fprintf(stderr, "workload: %s: %s\n", what, strerror(errno));
	exit(2);
}

static void redirect_fd(int fd, const char *path, int flags)
{
	int tmp = open(path, flags | O_CLOEXEC, 0644);

	if (tmp < 0)
		early_die(path);
	if (dup2(tmp, fd) < 0)
		early_die("dup2");
	if (tmp != fd)
		close(tmp);
}

void wl_init(int argc, char **argv)
{
	wl_init_flags(argc, argv, 0);
}

void wl_init_flags(int argc, char **argv, unsigned flags)
{
	char log_path[PATH_MAX + 8];
	struct sigaction sa;
	sigset_t usr2;

	if (argc < 2) {
		fprintf(stderr, "usage: %s STATE_DIR [ARGS...]\n", argv[0]);
		exit(2);
	}
	if (mkdir(argv[1], 0700) < 0 && errno != EEXIST)
		early_die(argv[1]);
	if (!realpath(argv[1], state_dir))
		early_die(argv[1]);

	if (!(flags & WL_KEEP_STDIO)) {
		snprintf(log_path, sizeof(log_path), "%s/log", state_dir);
		redirect_fd(0, "/dev/null", O_RDONLY);
		redirect_fd(1, log_path, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND);
		if (dup2(1, 2) < 0)
			early_die("dup2");
	}
	/* Whatever else was inherited (the harness's pipes, ...) must go. */
	if (close_range(3, ~0u, 0) < 0)
		early_die("close_range");

	start_pid = getpid();
	if (getrandom(&token, sizeof(token), 0) != sizeof(token))
		wl_fatal("getrandom: %s", strerror(errno));
	if (token == 0)
		token = 1;

	/* Stale files of an earlier run in the same dir would mislead the harness. */
	char path[PATH_MAX + 16];
	static const char *const stale[] = { "ready", "result", "token" };
	for (size_t i = 0; i < sizeof(stale) / sizeof(stale[0]); i++) {
		wl_path(path, sizeof(path), stale[i]);
		unlink(path);
	}

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_trigger;
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = 0;	/* no SA_RESTART: the trigger interrupts waits */
	if (sigaction(SIGUSR2, &sa, NULL) < 0)
		wl_fatal("sigaction(SIGUSR2): %s", strerror(errno));
	sigemptyset(&usr2);
	sigaddset(&usr2, SIGUSR2);
	sigprocmask(SIG_UNBLOCK, &usr2, NULL);
}

const char *wl_dir(void)
{
	return state_dir;
}

void wl_dir_is_root(void)
{
	strcpy(state_dir, "/");
}

uint64_t wl_token(void)
{
	return token;
}

pid_t wl_pid(void)
{
	return start_pid;
}

void wl_path(char *buf, size_t size, const char *name)
{
	int n = snprintf(buf, size, "%s/%s", state_dir, name);

	if (n < 0 || (size_t)n >= size)
		wl_fatal("path too long: %s/%s", state_dir, name);
}

socklen_t wl_unix_addr(struct sockaddr_un *a, const char *path)
{
	memset(a, 0, sizeof(*a));
	a->sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(a->sun_path))
		wl_fatal("socket path too long: %s", path);
	strcpy(a->sun_path, path);
	return sizeof(*a);
}

static int write_all(int fd, const char *buf, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, buf, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

static int write_file_atomic(const char *name, const char *text)
{
	char path[PATH_MAX + 64], tmp[PATH_MAX + 96];
	int fd, ret = -1;

	wl_path(path, sizeof(path), name);
	snprintf(tmp, sizeof(tmp), "%s.tmp.%d", path, (int)getpid());
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return -1;
	if (write_all(fd, text, strlen(text)) == 0 && fsync(fd) == 0)
		ret = 0;
	if (close(fd) < 0)
		ret = -1;
	if (ret == 0)
		ret = rename(tmp, path);
	if (ret < 0)
		unlink(tmp);
	return ret;
}

int wl_write_file(const char *name, const char *fmt, ...)
{
	char text[4096];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	return write_file_atomic(name, text);
}

ssize_t wl_read_path(const char *path, char *buf, size_t size)
{
	ssize_t n, total = 0;
	int fd;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	while ((size_t)total + 1 < size) {
		n = read(fd, buf + total, size - 1 - (size_t)total);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		total += n;
	}
	close(fd);
	buf[total] = '\0';
	return total;
}

ssize_t wl_read_file(const char *name, char *buf, size_t size)
{
	char path[PATH_MAX + 64];

	wl_path(path, sizeof(path), name);
	return wl_read_path(path, buf, size);
}

long wl_status_field(const char *field)
{
	char buf[8192], key[64];
	const char *p;

	if (wl_read_path("/proc/self/status", buf, sizeof(buf)) < 0)
		return -1;
	snprintf(key, sizeof(key), "\n%s:", field);
	p = strstr(buf, key);
	return p ? strtol(p + strlen(key), NULL, 10) : -1;
}

long wl_fdinfo_field(int fd, const char *field)
{
	char path[64], buf[8192], key[64];
	const char *p;

	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", fd);
	if (wl_read_path(path, buf, sizeof(buf)) < 0)
		return 0;
	snprintf(key, sizeof(key), "\n%s:", field);
	p = strstr(buf, key);
	return p ? strtol(p + strlen(key), NULL, 10) : 0;
}

void wl_ready(void)
{
	if (wl_write_file("token", "%d %016" PRIx64 "\n", (int)start_pid, token) < 0)
		wl_fatal("cannot write token: %s", strerror(errno));
	if (wl_write_file("ready", "ready\n") < 0)
		wl_fatal("cannot write ready: %s", strerror(errno));
}

void wl_wait_trigger(void)
{
	sigset_t usr2, old, wait_mask;

	sigemptyset(&usr2);
	sigaddset(&usr2, SIGUSR2);
	sigprocmask(SIG_BLOCK, &usr2, &old);
	wait_mask = old;
	sigdelset(&wait_mask, SIGUSR2);
	while (!wl_triggered)
		sigsuspend(&wait_mask);
	sigprocmask(SIG_SETMASK, &old, NULL);
}

static void append_failure(const char *fmt, va_list ap)
{
	size_t room = sizeof(failure_text) - failure_len;
	int n;

	if (room <= 1)
		return;
	if (failure_count > 0) {
		n = snprintf(failure_text + failure_len, room, "; ");
		failure_len += (size_t)n < room ? (size_t)n : room - 1;
		room = sizeof(failure_text) - failure_len;
	}
	n = vsnprintf(failure_text + failure_len, room, fmt, ap);
	if (n > 0)
		failure_len += (size_t)n < room ? (size_t)n : room - 1;
	failure_count++;
}

bool wl_check(bool cond, const char *fmt, ...)
{
	va_list ap;

	if (cond)
		return true;
	va_start(ap, fmt);
	append_failure(fmt, ap);
	va_end(ap);
	return false;
}

unsigned wl_failures(void)
{
	return failure_count;
}

static void write_result(void)
{
	if (failure_count == 0)
		wl_write_file("result", "PASS %d %016" PRIx64 "\n", (int)start_pid, token);
	else
		wl_write_file("result", "FAIL %d %016" PRIx64 ": %s\n",
			      (int)start_pid, token, failure_text);
}

void wl_fatal(const char *fmt, ...)
{
	va_list ap;
	char msg[1024];

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	wl_check(false, "setup: %s", msg);
	if (state_dir[0])
		write_result();
	exit(2);
}

void wl_finish(void)
{
	char buf[32];
	int code = failure_count == 0 ? 0 : 1;

	write_result();
	if (wl_read_file("exit_code", buf, sizeof(buf)) > 0)
		code = atoi(buf);
	exit(code);
}

uint64_t wl_xorshift(uint64_t *state)
{
	uint64_t x = *state;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*state = x;
	return x * 0x2545F4914F6CDD1DULL;
}

uint64_t wl_seed(uint64_t salt)
{
	uint64_t s = token ^ (salt * 0x9E3779B97F4A7C15ULL);

	return s ? s : 0x1234567;
}

static int parse_maps_line(const char *line, struct wl_map *m)
{
	unsigned long start, end;
	char perms[8];
	int path_at = 0;

	if (sscanf(line, "%lx-%lx %7s %*s %*s %*s %n", &start, &end, perms, &path_at) < 3)
		return -1;
	m->start = start;
	m->end = end;
	snprintf(m->perms, sizeof(m->perms), "%.4s", perms);
	snprintf(m->path, sizeof(m->path), "%s", path_at ? line + path_at : "");
	m->path[strcspn(m->path, "\n")] = '\0';
	return 0;
}

static int maps_scan(uintptr_t addr, const char *name, struct wl_map *out)
{
	char line[512];
	struct wl_map m;
	int found = -1;
	FILE *f = fopen("/proc/self/maps", "re");

	if (!f)
		return -1;
	while (found < 0 && fgets(line, sizeof(line), f)) {
		if (parse_maps_line(line, &m) < 0)
			continue;
		if (name ? strcmp(m.path, name) == 0 : (addr >= m.start && addr < m.end)) {
			*out = m;
			found = 0;
		}
	}
	fclose(f);
	return found;
}

int wl_maps_lookup(uintptr_t addr, struct wl_map *out)
{
	return maps_scan(addr, NULL, out);
}

int wl_maps_find(const char *name, struct wl_map *out)
{
	return maps_scan(0, name, out);
}

int64_t wl_now_ns(int clock)
{
	struct timespec ts;

	if (clock_gettime(clock, &ts) < 0)
		return -1;
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static pthread_mutex_t stage_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t stage_cond = PTHREAD_COND_INITIALIZER;
static int stage;

void wl_set_stage(int s)
{
	pthread_mutex_lock(&stage_lock);
	stage = s;
	pthread_cond_broadcast(&stage_cond);
	pthread_mutex_unlock(&stage_lock);
}

void wl_wait_stage(int s)
{
	pthread_mutex_lock(&stage_lock);
	while (stage < s)
		pthread_cond_wait(&stage_cond, &stage_lock);
	pthread_mutex_unlock(&stage_lock);
}

/* VmFlags and Locked of the mapping that holds addr, from /proc/self/smaps. */
bool wl_smaps_of(const void *addr, char *flags, size_t size, long *locked_kb)
{
	char line[512];
	FILE *f = fopen("/proc/self/smaps", "re");
	bool in = false, found = false;

	while (f != NULL && fgets(line, sizeof(line), f)) {
		unsigned long start, end;

		if (sscanf(line, "%lx-%lx ", &start, &end) == 2 && strchr(line, ':') > strchr(line, ' ')) {
			in = (uintptr_t)addr >= start && (uintptr_t)addr < end;
			continue;
		}
		if (!in)
			continue;
		if (strncmp(line, "Locked:", 7) == 0)
			*locked_kb = strtol(line + 7, NULL, 10);
		if (strncmp(line, "VmFlags:", 8) == 0) {
			snprintf(flags, size, "%.*s", (int)strcspn(line + 8, "\n"), line + 8);
			found = true;
			break;
		}
	}
	if (f != NULL)
		fclose(f);
	return found;
}

bool wl_has_vmflag(const char *flags, const char *m)
{
	for (const char *p = flags; (p = strstr(p, m)) != NULL; p++)
		if ((p == flags || p[-1] == ' ') && (p[2] == ' ' || p[2] == '\n' || p[2] == '\0'))
			return true;
	return false;
}

void wl_run_mode(int argc, char **argv, const struct wl_mode *modes, size_t n, const char *usage)
{
	const struct wl_mode *m = NULL;

	wl_init(argc, argv);
	for (size_t i = 0; argc > 2 && i < n; i++)
		if (strcmp(argv[2], modes[i].name) == 0)
			m = &modes[i];
	if (m == NULL)
		wl_fatal("usage: %s (unknown mode '%s')", usage, argc > 2 ? argv[2] : "");
	m->setup();
	wl_ready();
	wl_wait_trigger();
	m->check();
	wl_check(getpid() == wl_pid(), "pid changed");
	wl_finish();
}

void wl_write_all(int fd, const void *buf, size_t len)
{
	if (write(fd, buf, len) != (ssize_t)len)
		wl_fatal("write: %s", strerror(errno));
}

void wl_fd_link(int fd, char *out, size_t size)
{
	char path[64];
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	n = readlink(path, out, size - 1);
	out[n < 0 ? 0 : n] = '\0';
}

bool wl_has_suffix(const char *s, const char *suffix)
{
	size_t a = strlen(s), b = strlen(suffix);

	return a >= b && strcmp(s + a - b, suffix) == 0;
}

bool wl_readable(int fd, int ms)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };

	return poll(&p, 1, ms) == 1 && (p.revents & POLLIN);
}

bool wl_same_inode(const struct stat *a, const struct stat *b)
{
	return a->st_ino == b->st_ino && a->st_dev == b->st_dev;
}

void wl_setsockopt_int(int fd, int level, int opt, int v, const char *name)
{
	if (setsockopt(fd, level, opt, &v, sizeof(v)) < 0)
		wl_fatal("setsockopt %s: %s", name, strerror(errno));
}

int wl_getsockopt_int(int fd, int level, int opt)
{
	int v = -12345;
	socklen_t len = sizeof(v);

	if (getsockopt(fd, level, opt, &v, &len) < 0)
		return -12345;
	return v;
}
