/*
 * wl — the small library every test workload is built on.
 *
 * A workload is started as `w_NAME <state-dir> [args...]`. It sets up some
 * state, announces itself with wl_ready(), waits for SIGUSR2 (the "verify now"
 * trigger), checks that every piece of its state is intact and writes its
 * verdict with wl_finish().
 *
 * Files in the state dir (the harness reads them):
 *   log          stdout and stderr of the workload (a regular file)
 *   token        "<pid> <token>\n", written by wl_ready()
 *   ready        created (atomically) once the state is set up
 *   result       "PASS <pid> <token>\n" or "FAIL <pid> <token>: <reasons>\n"
 *   exit_code    optional, written by the harness: wl_finish() exits with it
 *
 * The token is 64 random bits drawn at start-up and kept only in memory: a
 * process that was re-executed instead of restored reports a different one.
 *
 * The library writes nothing to the log by itself, so that a workload's open
 * files keep their size while it runs after a dump (--leave-running).
 */
#ifndef WL_H
#define WL_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

/* Keep fds 0, 1 and 2 as they were inherited (a tty, for --shell-job tests). */
#define WL_KEEP_STDIO 1u

/* Set by the SIGUSR2 handler. */
extern volatile sig_atomic_t wl_triggered;

void wl_init(int argc, char **argv);
void wl_init_flags(int argc, char **argv, unsigned flags);

const char *wl_dir(void);	/* absolute path of the state dir */
/* The workload made its state dir its root (chroot): its files are
 * reached from "/" from now on. */
void wl_dir_is_root(void);
uint64_t wl_token(void);
pid_t wl_pid(void);		/* getpid() at start-up */

/* <state dir>/<name> into buf; aborts the workload if it does not fit. */
void wl_path(char *buf, size_t size, const char *name);

/* A unix socket address of a path name; aborts if it does not fit. */
struct sockaddr_un;
socklen_t wl_unix_addr(struct sockaddr_un *a, const char *path);

/* Writes <state dir>/<name> atomically (tmp file + rename). 0 or -1. */
int wl_write_file(const char *name, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Reads <state dir>/<name> (NUL-terminated, truncated to size-1).
 * Returns the length read, or -1 if the file cannot be read. */
ssize_t wl_read_file(const char *name, char *buf, size_t size);

/* The same for any path. */
ssize_t wl_read_path(const char *path, char *buf, size_t size);

/* The number after "<field>:" in /proc/self/status (e.g. "TracerPid"),
 * or -1 if there is none. */
long wl_status_field(const char *field);

/* The decimal number after "<field>:" in /proc/self/fdinfo/<fd> (e.g.
 * "Pid"), or 0 if there is none. */
long wl_fdinfo_field(int fd, const char *field);

/* A stage counter shared by a workload's threads: wl_set_stage() raises
 * it and wakes the waiters, wl_wait_stage() blocks until it reaches s. */
void wl_set_stage(int s);
void wl_wait_stage(int s);

/* Writes token, then ready. */
void wl_ready(void);

/* Blocks (sigsuspend) until SIGUSR2 has been received. */
void wl_wait_trigger(void);

/* Records a failure when cond is false. Returns cond. */
bool wl_check(bool cond, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Number of failures recorded so far. */
unsigned wl_failures(void);

/* A set-up step failed: writes a FAIL result and exits 2. */
void wl_fatal(const char *fmt, ...)
	__attribute__((format(printf, 1, 2), noreturn));

/* Writes the result and exits: 0 on pass, 1 on failure, or the number in
 * <state dir>/exit_code when that file exists. */
void wl_finish(void) __attribute__((noreturn));

/* write(2) of all of buf, or wl_fatal. */
void wl_write_all(int fd, const void *buf, size_t len);
/* What /proc/self/fd/FD links to ("" if it cannot be read). */
void wl_fd_link(int fd, char *out, size_t size);
bool wl_has_suffix(const char *s, const char *suffix);
/* setsockopt of an int, or wl_fatal naming the option (name). */
void wl_setsockopt_int(int fd, int level, int opt, int v, const char *name);
/* getsockopt of an int, or -12345 when it fails. */
int wl_getsockopt_int(int fd, int level, int opt);
/* fd is readable within ms milliseconds (poll). */
bool wl_readable(int fd, int ms);
struct stat;
/* The same inode of the same device. */
bool wl_same_inode(const struct stat *a, const struct stat *b);

/* A workload of several modes, chosen by its second argument: set up,
 * wl_ready, wait for the trigger, check (and that the pid is the same),
 * wl_finish. */
struct wl_mode {
	const char *name;
	void (*setup)(void);
	void (*check)(void);
};
void wl_run_mode(int argc, char **argv, const struct wl_mode *modes, size_t n, const char *usage)
	__attribute__((noreturn));

/* Deterministic pseudo-random numbers (xorshift64*); state must not be 0. */
uint64_t wl_xorshift(uint64_t *state);

/* A seed derived from the token and a per-purpose salt (never 0). */
uint64_t wl_seed(uint64_t salt);

/* One line of /proc/self/maps. */
struct wl_map {
	uintptr_t start, end;
	char perms[5];
	char path[256];
};

/* The mapping that contains addr. 0 if found, -1 if not. */
int wl_maps_lookup(uintptr_t addr, struct wl_map *out);

/* The first mapping whose path is exactly name (e.g. "[vdso]"). 0 or -1. */
int wl_maps_find(const char *name, struct wl_map *out);

/* VmFlags (the text after "VmFlags:") and Locked (kB) of the mapping that
 * holds addr, from /proc/self/smaps. false if there is none. */
bool wl_smaps_of(const void *addr, char *flags, size_t size, long *locked_kb);
/* Whether VmFlags text has the two-letter mnemonic m. */
bool wl_has_vmflag(const char *flags, const char *m);

/* Current time of the given clock in nanoseconds. */
int64_t wl_now_ns(int clock);

#endif
