/* cr check [--json]: which kernel features cr relies on are present.
 *
 * Every feature is probed by using it, never by the kernel version: each
 * probe runs in a forked child of its own (so what it changes, such as a
 * new time namespace, a rlimit or timer_create's mode, dies with it), under
 * an alarm, and sends back yes or no with a short note.  The exit status is
 * 0 when everything dump and restore need is here, 1 otherwise. */
#include "cmd/commands.h"
#include "cmd/json.h"
#include "fd/inet_diag.h"
#include "net/nft_lock.h"
#include "os/pidsel.h"
#include "os/proc.h"
#include "os/pagemap.h"
#include "os/util.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <linux/capability.h>
#include <linux/filter.h>
#include <linux/kcmp.h>
#include <linux/netlink.h>
#include <linux/prctl.h>
#include <linux/sched.h>
#include <linux/tcp.h>
#include <netinet/in.h>
#include <linux/seccomp.h>
#include <linux/userfaultfd.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/timerfd.h>
#include <sys/uio.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>

#define PROBE_TIMEOUT 10          /* seconds for one probe */
#define NOTE_MAX      240

/* --- uapi newer than Debian 12's headers (values from the kernel's uapi) --- */

/* linux/prctl.h, Linux 6.13. */
#define CR_PR_TIMER_CREATE_RESTORE_IDS     77
#define CR_PR_TIMER_CREATE_RESTORE_IDS_OFF 0
#define CR_PR_TIMER_CREATE_RESTORE_IDS_ON  1

/* linux/timerfd.h (which clashes with sys/timerfd.h), Linux 3.17. */
#define CR_TFD_IOC_SET_TICKS _IOW('T', 0, uint64_t)

#ifndef PTRACE_GET_RSEQ_CONFIGURATION
#define PTRACE_GET_RSEQ_CONFIGURATION 0x420f
#endif

/* /proc/PID/pagemap entry bit: the page is soft-dirty. */
#define PM_SOFT_DIRTY_BIT 55

enum need {
	NEED_REQUIRED,      /* dump and restore cannot work without it */
	NEED_PID_BACKEND,   /* at least one of these is required */
	NEED_OPTIONAL,      /* some processes or features need it */
};

struct probe_result {
	bool yes;
	char note[NOTE_MAX];
};

struct probe {
	const char *key;       /* for --json */
	const char *name;
	enum need need;
	const char *used_for;
	bool (*run)(struct probe_result *r);  /* fills r, returns r->yes */
};

/* Fills r; returns yes, so a probe can end with return verdict(...). */
static bool verdict(struct probe_result *r, bool yes, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static bool verdict(struct probe_result *r, bool yes, const char *fmt, ...)
{
	va_list ap;

	r->yes = yes;
	va_start(ap, fmt);
	vsnprintf(r->note, sizeof(r->note), fmt, ap);
	va_end(ap);
	return yes;
}

/* "EPERM (needs CAP_SYS_ADMIN)" style notes for a failed call. */
static bool failed(struct probe_result *r, const char *what, int e, const char *hint)
{
	return verdict(r, false, "%s: %s%s%s", what, strerrorname_np(e) ? strerrorname_np(e) : strerror(e),
		hint != NULL && e == EPERM ? ", " : "", hint != NULL && e == EPERM ? hint : "");
}

/* --- helpers shared by the probes -------------------------------------------- */

static volatile uint64_t probe_word;

/* A child that waits (and dies with its parent); -1 on failure. */
static pid_t start_sleeper(void)
{
	pid_t parent = getpid();
	pid_t pid = fork();

	if (pid != 0)
		return pid;
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != parent)
		_exit(0);
	for (;;)
		pause();
}

static void stop_sleeper(pid_t pid)
{
	kill(pid, SIGKILL);
	while (waitpid(pid, NULL, __WALL) < 0 && errno == EINTR)
		;
}

static void sleeperp(pid_t *pid)
{
	if (*pid > 0)
		stop_sleeper(*pid);
}

#define cleanup_sleeper __attribute__((cleanup(sleeperp)))

static void unmapp(void **p)
{
	if (*p != NULL && *p != MAP_FAILED)
		munmap(*p, 16 * PAGE_SIZE_CR);
}

/* 16 anonymous pages, unmapped when the variable goes out of scope. */
#define cleanup_pages __attribute__((cleanup(unmapp)))

static void *map_pages(void)
{
	return mmap(NULL, 16 * PAGE_SIZE_CR, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
}

static long read_long_file(const char *path, long fallback)
{
	cleanup_free char *text = NULL;
	cr_error_t err = NULL;

	if (read_whole_file_at(AT_FDCWD, path, &text, NULL, &err) < 0) {
		cr_error_release(&err);
		return fallback;
	}
	return strtol(text, NULL, 10);
}

/* A pid nobody holds, somewhat ahead of the last one handed out. */
static pid_t free_pid(int attempt)
{
	long max = read_long_file("/proc/sys/kernel/pid_max", 32768);
	long last = read_long_file("/proc/sys/kernel/ns_last_pid", 300);

	for (int i = 0; i < 64; i++) {
		long cand = last + 500 + attempt * 97 + i * 13;

		if (cand >= max)
			cand = 300 + (cand % (max - 300));
		if (kill((pid_t)cand, 0) < 0 && errno == ESRCH)
			return (pid_t)cand;
	}
	return 0;
}

/* Waits for a child that exits at once; true when it did. */
static bool reap(pid_t pid)
{
	int status;

	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return false;
	return WIFEXITED(status);
}

/* --- pid selection ------------------------------------------------------------- */

static pid_t clone3_with_pid(pid_t want)
{
	pid_t set_tid[1] = { want };
	struct clone_args args;

	memset(&args, 0, sizeof(args));
	args.exit_signal = SIGCHLD;
	args.set_tid = (uint64_t)(uintptr_t)set_tid;
	args.set_tid_size = 1;
	return (pid_t)syscall(SYS_clone3, &args, sizeof(args));
}

static bool probe_clone3_set_tid(struct probe_result *r)
{
	for (int attempt = 0; attempt < 5; attempt++) {
		pid_t want = free_pid(attempt), got;

		if (want == 0)
			break;
		got = clone3_with_pid(want);
		if (got == 0)
			_exit(0);
		if (got < 0 && errno == EEXIST)
			continue;   /* someone took it meanwhile */
		if (got < 0)
			return failed(r, "clone3 with set_tid", errno, "needs CAP_SYS_ADMIN or CAP_CHECKPOINT_RESTORE");
		reap(got);
		return verdict(r, got == want, "asked for pid %d, got %d", want, got);
	}
	return verdict(r, false, "found no free pid to ask for");
}

static bool probe_clone2(struct probe_result *r)
{
	if (!clone2_available())
		return verdict(r, false, "this kernel has no clone2 syscall (kernel-patches/ adds it)");
	return verdict(r, true, "the clone2 syscall answers (kernel-patches/)");
}

/* Writes want-1 to ns_last_pid and forks; fd is the open sysctl. */
static pid_t fork_after_last_pid(int fd, pid_t want)
{
	char buf[32];
	int len = snprintf(buf, sizeof(buf), "%d", want - 1);

	if (pwrite(fd, buf, (size_t)len, 0) != len)
		return -1;
	return fork();
}

static bool probe_ns_last_pid(struct probe_result *r)
{
	cleanup_close int fd = open("/proc/sys/kernel/ns_last_pid", O_RDWR | O_CLOEXEC);

	if (fd < 0)
		return failed(r, "open /proc/sys/kernel/ns_last_pid", errno,
			      "needs CAP_SYS_ADMIN or CAP_CHECKPOINT_RESTORE");
	for (int attempt = 0; attempt < 5; attempt++) {
		pid_t want = free_pid(attempt), got;

		if (want == 0)
			break;
		got = fork_after_last_pid(fd, want);
		if (got == 0)
			_exit(0);
		if (got < 0)
			return failed(r, "write ns_last_pid", errno, "needs CAP_SYS_ADMIN or CAP_CHECKPOINT_RESTORE");
		reap(got);
		if (got == want)
			return verdict(r, true, "forked pid %d on request (one pid level only, racy)", want);
	}
	return verdict(r, false, "other processes took the pid every time");
}

/* --- ptrace and reading other processes --------------------------------------------- */

/* Seizes pid and waits for its interrupt stop; 0 or an errno. */
static int seize_and_stop(pid_t pid)
{
	int status;

	if (ptrace(PTRACE_SEIZE, pid, NULL, (void *)(long)PTRACE_O_EXITKILL) < 0 ||
	    ptrace(PTRACE_INTERRUPT, pid, NULL, NULL) < 0)
		return errno;
	while (waitpid(pid, &status, __WALL) < 0)
		if (errno != EINTR)
			return errno;
	if (!WIFSTOPPED(status) || status >> 16 != PTRACE_EVENT_STOP)
		return ECHILD;
	return 0;
}

static bool probe_ptrace_seize(struct probe_result *r)
{
	cleanup_sleeper pid_t pid = start_sleeper();
	int e;

	if (pid < 0)
		return failed(r, "fork", errno, NULL);
	e = seize_and_stop(pid);
	if (e != 0)
		return failed(r, "seize a child", e, "needs CAP_SYS_PTRACE for other users' processes");
	return verdict(r, true, "seized a child and stopped it (PTRACE_SEIZE, PTRACE_INTERRUPT)");
}

/* A child under a seccomp filter of 4 instructions with
 * SECCOMP_FILTER_FLAG_LOG, for cr to seize with PTRACE_O_SUSPEND_SECCOMP
 * and read back; -1 on failure. */
static pid_t start_filtered_sleeper(void)
{
	struct sock_filter f[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_getppid, 0, 1),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	};
	struct sock_fprog prog = { .len = sizeof(f) / sizeof(f[0]), .filter = f };
	int ready[2];
	pid_t parent = getpid(), pid;
	char c = 0;

	if (pipe(ready) < 0)
		return -1;
	pid = fork();
	if (pid == 0) {
		close(ready[0]);
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent || prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 ||
		    syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_LOG, &prog) < 0)
			_exit(1);
		if (write(ready[1], "", 1) != 1)
			_exit(1);
		for (;;)
			pause();
	}
	close(ready[1]);
	if (pid > 0 && read(ready[0], &c, 1) != 1) {
		stop_sleeper(pid);
		pid = -1;
	}
	close(ready[0]);
	return pid;
}

static bool probe_seccomp_suspend(struct probe_result *r)
{
	cleanup_sleeper pid_t pid = start_filtered_sleeper();
	struct __ptrace_seccomp_metadata md = { .filter_off = 0 };
	struct sock_filter insns[8];
	long n;
	int status;

	if (pid < 0)
		return failed(r, "start a child under a seccomp filter", errno, NULL);
	if (ptrace(PTRACE_SEIZE, pid, NULL, (void *)(long)(PTRACE_O_EXITKILL | PTRACE_O_SUSPEND_SECCOMP)) < 0)
		return failed(r, "PTRACE_O_SUSPEND_SECCOMP", errno,
			      "needs CAP_SYS_ADMIN in the initial user namespace and no seccomp in cr");
	if (ptrace(PTRACE_INTERRUPT, pid, NULL, NULL) < 0 || waitpid(pid, &status, __WALL) != pid)
		return failed(r, "stop the child", errno, NULL);
	n = ptrace(PTRACE_SECCOMP_GET_FILTER, pid, (void *)0, insns);
	if (n < 0)
		return failed(r, "PTRACE_SECCOMP_GET_FILTER", errno, "needs CAP_SYS_ADMIN");
	if (ptrace(PTRACE_SECCOMP_GET_METADATA, pid, (void *)sizeof(md), &md) < 0)
		return failed(r, "PTRACE_SECCOMP_GET_METADATA", errno, "needs CAP_SYS_ADMIN");
	if (n != 4 || md.flags != SECCOMP_FILTER_FLAG_LOG)
		return verdict(r, false, "read back a filter of %ld instructions with flags 0x%llx, installed 4 and "
			       "0x%lx", n, (unsigned long long)md.flags, SECCOMP_FILTER_FLAG_LOG);
	return verdict(r, true, "suspended a child's filter and read it back with its flags");
}

static bool probe_rseq_config(struct probe_result *r)
{
	cleanup_sleeper pid_t pid = start_sleeper();
	struct __ptrace_rseq_configuration conf;
	int e;

	if (pid < 0)
		return failed(r, "fork", errno, NULL);
	e = seize_and_stop(pid);
	if (e != 0)
		return failed(r, "seize a child", e, NULL);
	memset(&conf, 0, sizeof(conf));
	if (ptrace(PTRACE_GET_RSEQ_CONFIGURATION, pid, (void *)sizeof(conf), &conf) < 0)
		return failed(r, "PTRACE_GET_RSEQ_CONFIGURATION", errno, NULL);
	if (conf.rseq_abi_pointer == 0)
		return verdict(r, true, "answers (the probe child has no rseq area)");
	return verdict(r, true, "read the child's rseq area: 0x%" PRIx64 ", %u bytes", (uint64_t)conf.rseq_abi_pointer,
		conf.rseq_abi_size);
}

static bool probe_pidfd_getfd(struct probe_result *r)
{
	cleanup_close int pidfd = -1, mine = -1, theirs = -1;
	cleanup_sleeper pid_t pid = -1;
	struct stat a, b;

	mine = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
	if (mine < 0)
		return failed(r, "open /proc/self/exe", errno, NULL);
	pid = start_sleeper();   /* inherits mine at the same number */
	if (pid < 0)
		return failed(r, "fork", errno, NULL);
	pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
	if (pidfd < 0)
		return failed(r, "pidfd_open", errno, NULL);
	theirs = (int)syscall(SYS_pidfd_getfd, pidfd, mine, 0);
	if (theirs < 0)
		return failed(r, "pidfd_getfd", errno, "needs CAP_SYS_PTRACE for other users' processes");
	if (fstat(mine, &a) < 0 || fstat(theirs, &b) < 0 || a.st_ino != b.st_ino || a.st_dev != b.st_dev)
		return verdict(r, false, "pidfd_getfd returned a different file");
	return verdict(r, true, "took a duplicate of a child's fd");
}

static bool probe_process_vm_readv(struct probe_result *r)
{
	cleanup_sleeper pid_t pid = -1;
	uint64_t expect = 0x6372636865636b00ULL ^ (uint64_t)getpid(), got = 0;
	struct iovec local = { &got, sizeof(got) }, remote = { (void *)&probe_word, sizeof(got) };

	probe_word = expect;
	pid = start_sleeper();
	if (pid < 0)
		return failed(r, "fork", errno, NULL);
	probe_word = 0;   /* ours changes; the child's copy keeps expect */
	if (process_vm_readv(pid, &local, 1, &remote, 1, 0) != (ssize_t)sizeof(got))
		return failed(r, "process_vm_readv", errno, "needs CAP_SYS_PTRACE for other users' processes");
	return verdict(r, got == expect, got == expect ? "read a child's memory" : "read the wrong bytes");
}

static bool probe_kcmp(struct probe_result *r)
{
	cleanup_close int a = open("/dev/null", O_RDONLY | O_CLOEXEC), c = open("/dev/null", O_RDONLY | O_CLOEXEC);
	cleanup_close int b = a >= 0 ? fcntl(a, F_DUPFD_CLOEXEC, 0) : -1;
	pid_t self = getpid();
	long same, other;

	if (a < 0 || b < 0 || c < 0)
		return failed(r, "open /dev/null", errno, NULL);
	same = syscall(SYS_kcmp, self, self, KCMP_FILE, a, b);
	if (same < 0)
		return failed(r, "kcmp", errno, NULL);
	other = syscall(SYS_kcmp, self, self, KCMP_FILE, a, c);
	if (same != 0 || other == 0)
		return verdict(r, false, "kcmp compared file descriptions wrongly (%ld, %ld)", same, other);
	return verdict(r, true, "tells shared file descriptions apart (KCMP_FILE)");
}

/* --- memory tracking ---------------------------------------------------------------------- */

static long scan(int fd, void *start, size_t len, uint64_t flags, uint64_t category, struct pm_region *vec,
		 size_t n)
{
	uint64_t at = (uint64_t)(uintptr_t)start;

	return pagemap_scan(fd, at, at + len, flags, category, 0, category, vec, n, NULL);
}

static bool probe_pagemap_scan(struct probe_result *r)
{
	cleanup_close int fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
	cleanup_pages void *mem = map_pages();
	struct pm_region vec[8];
	char *p = mem;
	long n;

	if (fd < 0 || mem == MAP_FAILED)
		return failed(r, fd < 0 ? "open /proc/self/pagemap" : "mmap", errno, NULL);
	p[0] = p[PAGE_SIZE_CR] = p[5 * PAGE_SIZE_CR] = 1;
	n = scan(fd, mem, 16 * PAGE_SIZE_CR, 0, PAGE_IS_PRESENT_C, vec, ARRAY_SIZE(vec));
	if (n < 0)
		return failed(r, "ioctl PAGEMAP_SCAN", errno, NULL);
	if (n != 2 || vec[0].start != (uint64_t)(uintptr_t)p || vec[0].end != vec[0].start + 2 * PAGE_SIZE_CR ||
	    vec[1].start != vec[0].start + 5 * PAGE_SIZE_CR)
		return verdict(r, false, "PAGEMAP_SCAN reported %ld regions, not the 2 the probe touched", n);
	return verdict(r, true, "found exactly the pages the probe touched");
}

/* A userfaultfd with asynchronous write-protect; -1 with r filled if not. */
static int uffd_wp_async(struct probe_result *r)
{
	cleanup_close int uffd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
	struct uffdio_api api = { .api = UFFD_API,
				  .features = UFFD_FEATURE_WP_ASYNC_F | UFFD_FEATURE_WP_UNPOPULATED_F };

	if (uffd < 0) {
		failed(r, "userfaultfd", errno, "needs CAP_SYS_PTRACE or vm.unprivileged_userfaultfd=1");
		return -1;
	}
	if (ioctl(uffd, UFFDIO_API, &api) < 0) {
		failed(r, "UFFDIO_API with WP_ASYNC | WP_UNPOPULATED", errno, NULL);
		return -1;
	}
	return steal_fd(&uffd);
}

static int uffd_register_wp(int uffd, void *start, size_t len)
{
	struct uffdio_register reg = {
		.range = { .start = (uint64_t)(uintptr_t)start, .len = len },
		.mode = UFFDIO_REGISTER_MODE_WP,
	};

	return ioctl(uffd, UFFDIO_REGISTER, &reg);
}

/* Arms write tracking on 16 pages, writes one, and asks which were written. */
static bool probe_uffd_wp(struct probe_result *r)
{
	cleanup_close int pm = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC), uffd = -1;
	cleanup_pages void *mem = map_pages();
	const size_t len = 16 * PAGE_SIZE_CR;
	const uint64_t flags = PM_SCAN_WP_MATCHING_F | PM_SCAN_CHECK_WPASYNC_F;
	struct pm_region vec[8];
	char *p = mem;
	long n;

	if (pm < 0 || mem == MAP_FAILED)
		return failed(r, pm < 0 ? "open /proc/self/pagemap" : "mmap", errno, NULL);
	uffd = uffd_wp_async(r);
	if (uffd < 0)
		return false;
	if (uffd_register_wp(uffd, mem, len) < 0)
		return failed(r, "UFFDIO_REGISTER (MODE_WP)", errno, NULL);
	if (scan(pm, mem, len, flags, PAGE_IS_WRITTEN_C, NULL, 0) < 0)
		return failed(r, "arm with PAGEMAP_SCAN (PM_SCAN_WP_MATCHING)", errno, NULL);
	p[3 * PAGE_SIZE_CR] = 1;
	n = scan(pm, mem, len, flags, PAGE_IS_WRITTEN_C, vec, ARRAY_SIZE(vec));
	if (n < 0)
		return failed(r, "PAGEMAP_SCAN for written pages", errno, NULL);
	if (n != 1 || vec[0].start != (uint64_t)(uintptr_t)(p + 3 * PAGE_SIZE_CR) ||
	    vec[0].end != vec[0].start + PAGE_SIZE_CR)
		return verdict(r, false, "after one page was written, the scan reported %ld regions", n);
	return verdict(r, true, "tracked exactly the one page written (WP_ASYNC, WP_UNPOPULATED, PAGEMAP_SCAN)");
}

/* Bit 55 of the pagemap entry of p; -1 if it cannot be read. */
static int soft_dirty_bit(int pm, const void *p)
{
	uint64_t entry;

	if (pread(pm, &entry, sizeof(entry), (off_t)((uintptr_t)p / PAGE_SIZE_CR * sizeof(entry))) != sizeof(entry))
		return -1;
	return (int)((entry >> PM_SOFT_DIRTY_BIT) & 1);
}

static bool probe_soft_dirty(struct probe_result *r)
{
	cleanup_close int pm = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
	cleanup_close int clear = open("/proc/self/clear_refs", O_WRONLY | O_CLOEXEC);
	cleanup_pages void *mem = map_pages();
	volatile char *p = mem;

	if (pm < 0 || clear < 0 || mem == MAP_FAILED)
		return failed(r, "open pagemap and clear_refs", errno, NULL);
	p[0] = 1;
	if (write(clear, "4", 1) != 1)
		return failed(r, "clear soft-dirty bits (clear_refs 4)", errno, NULL);
	if (soft_dirty_bit(pm, mem) != 0)
		return verdict(r, false, "the soft-dirty bit does not clear");
	p[0] = 2;
	if (soft_dirty_bit(pm, mem) != 1)
		return verdict(r, false, "a written page is not marked (kernel without CONFIG_MEM_SOFT_DIRTY); "
			       "cr tracks writes with PAGEMAP_SCAN and userfaultfd instead");
	return verdict(r, true, "a written page is marked soft-dirty");
}

/* --- timers and clocks ------------------------------------------------------------------------- */

static bool probe_timerfd_ticks(struct probe_result *r)
{
	cleanup_close int fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	uint64_t ticks = 3, got = 0;

	if (fd < 0)
		return failed(r, "timerfd_create", errno, NULL);
	if (ioctl(fd, CR_TFD_IOC_SET_TICKS, &ticks) < 0)
		return failed(r, "TFD_IOC_SET_TICKS", errno, NULL);
	if (read(fd, &got, sizeof(got)) != sizeof(got) || got != ticks)
		return verdict(r, false, "a timerfd given 3 ticks read %" PRIu64, got);
	return verdict(r, true, "a timerfd given 3 ticks reads 3");
}

static uint64_t monotonic_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec;
}

/* CLOCK_MONOTONIC seconds as a child in the new time namespace sees them. */
static int child_monotonic(uint64_t *out)
{
	cleanup_close int rd = -1, wr = -1;
	int fds[2];
	pid_t pid;

	if (pipe2(fds, O_CLOEXEC) < 0)
		return -1;
	rd = fds[0];
	wr = fds[1];
	pid = fork();
	if (pid == 0) {
		uint64_t now = monotonic_s();

		_exit(write(wr, &now, sizeof(now)) == sizeof(now) ? 0 : 1);
	}
	if (pid < 0)
		return -1;
	close(steal_fd(&wr));
	if (read(rd, out, sizeof(*out)) != sizeof(*out))
		return -1;
	return reap(pid) ? 0 : -1;
}

static bool probe_time_ns(struct probe_result *r)
{
	cleanup_close int fd = -1;
	static const char offset[] = "monotonic 100000 0\n";
	uint64_t inside = 0, outside;

	if (unshare(CLONE_NEWTIME) < 0)
		return failed(r, "unshare(CLONE_NEWTIME)", errno, "needs CAP_SYS_ADMIN");
	fd = open("/proc/self/timens_offsets", O_WRONLY | O_CLOEXEC);
	if (fd < 0 || write(fd, offset, sizeof(offset) - 1) != (ssize_t)sizeof(offset) - 1)
		return failed(r, "set the clock offsets", errno, NULL);
	outside = monotonic_s();
	if (child_monotonic(&inside) < 0)
		return failed(r, "run a child in the time namespace", errno, NULL);
	if (inside < outside + 100000 - 5 || inside > outside + 100000 + 5)
		return verdict(r, false, "a child saw CLOCK_MONOTONIC %" PRIu64 " s, expected about %" PRIu64, inside,
			       outside + 100000);
	return verdict(r, true, "a child saw CLOCK_MONOTONIC offset as set");
}

static bool probe_timer_restore_ids(struct probe_result *r)
{
	struct sigevent sev = { .sigev_notify = SIGEV_NONE };
	int id = 4242;

	if (prctl(CR_PR_TIMER_CREATE_RESTORE_IDS, CR_PR_TIMER_CREATE_RESTORE_IDS_ON, 0, 0, 0) < 0)
		return failed(r, "prctl(PR_TIMER_CREATE_RESTORE_IDS)", errno, NULL);
	if (syscall(SYS_timer_create, CLOCK_MONOTONIC, &sev, &id) < 0)
		return failed(r, "timer_create with a chosen id", errno, NULL);
	prctl(CR_PR_TIMER_CREATE_RESTORE_IDS, CR_PR_TIMER_CREATE_RESTORE_IDS_OFF, 0, 0, 0);
	if (id != 4242)
		return verdict(r, false, "asked for timer id 4242, got %d", id);
	return verdict(r, true, "created a POSIX timer with the id asked for");
}

/* --- the memory layout ----------------------------------------------------------------------------- */

static int my_mm_map(struct prctl_mm_map *map, uint64_t **auxv, cr_error_t *err)
{
	struct proc_stat st;
	size_t n_words = 0;

	if (proc_read_stat(getpid(), &st, err) < 0 || proc_read_auxv(getpid(), auxv, &n_words, err) < 0)
		return -1;
	memset(map, 0, sizeof(*map));
	map->start_code = st.start_code;
	map->end_code = st.end_code;
	map->start_data = st.start_data;
	map->end_data = st.end_data;
	map->start_brk = st.start_brk;
	map->brk = (uint64_t)syscall(SYS_brk, 0);
	map->start_stack = st.start_stack;
	map->arg_start = st.arg_start;
	map->arg_end = st.arg_end;
	map->env_start = st.env_start;
	map->env_end = st.env_end;
	map->auxv = (__u64 *)*auxv;
	map->auxv_size = (uint32_t)(n_words * sizeof(uint64_t));
	map->exe_fd = (uint32_t)-1;
	return 0;
}

static bool probe_mm_map(struct probe_result *r)
{
	cleanup_free uint64_t *auxv = NULL;
	struct prctl_mm_map map;
	cr_error_t err = NULL;
	unsigned int size = 0;

	if (prctl(PR_SET_MM, PR_SET_MM_MAP_SIZE, &size, 0, 0) < 0)
		return failed(r, "PR_SET_MM_MAP_SIZE", errno, NULL);
	if (size != sizeof(map))
		return verdict(r, false, "the kernel's struct prctl_mm_map has %u bytes, cr's %zu", size, sizeof(map));
	if (my_mm_map(&map, &auxv, &err) < 0) {
		verdict(r, false, "%s", err->msg);
		cr_error_release(&err);
		return false;
	}
	if (prctl(PR_SET_MM, PR_SET_MM_MAP, &map, sizeof(map), 0) < 0)
		return failed(r, "PR_SET_MM_MAP", errno, NULL);
	return verdict(r, true, "set a process's memory layout and auxv in one call");
}

/* --- capabilities ----------------------------------------------------------------------------------- */

static bool has_cap(int cap)
{
	struct __user_cap_header_struct hdr = { .version = _LINUX_CAPABILITY_VERSION_3 };
	struct __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3];

	memset(data, 0, sizeof(data));
	if (syscall(SYS_capget, &hdr, data) < 0)
		return false;
	return data[cap / 32].effective & (1u << (cap % 32));
}

static bool probe_cap_restore(struct probe_result *r)
{
	bool admin = has_cap(CAP_SYS_ADMIN), cr = has_cap(CAP_CHECKPOINT_RESTORE);

	if (!admin && !cr)
		return verdict(r, false, "missing both CAP_CHECKPOINT_RESTORE and CAP_SYS_ADMIN: cr cannot choose "
			       "pids, set a process's exe or read other processes' pagemaps");
	return verdict(r, true, "%s", admin && cr ? "both present" : admin ? "CAP_SYS_ADMIN" : "CAP_CHECKPOINT_RESTORE");
}

static bool probe_cap_ptrace(struct probe_result *r)
{
	if (!has_cap(CAP_SYS_PTRACE))
		return verdict(r, false, "missing CAP_SYS_PTRACE: cr cannot trace processes it did not start or "
			       "that belong to another user");
	return verdict(r, true, "present");
}

/* Raising a hard limit is what needs it: lower ours, then try to raise it back. */
static bool probe_cap_resource(struct probe_result *r)
{
	static const char without[] = "cr cannot raise a hard rlimit above the restorer's, set rlimits of "
				      "another user's process, or change single PR_SET_MM fields; dump and "
				      "restore work without it and say where it matters";
	struct rlimit lim;

	if (getrlimit(RLIMIT_NOFILE, &lim) < 0 || lim.rlim_max < 2)
		return verdict(r, has_cap(CAP_SYS_RESOURCE), "%s", has_cap(CAP_SYS_RESOURCE) ? "present" : without);
	lim.rlim_cur = lim.rlim_max - 1 < lim.rlim_cur ? lim.rlim_max - 1 : lim.rlim_cur;
	lim.rlim_max--;
	if (setrlimit(RLIMIT_NOFILE, &lim) < 0)
		return failed(r, "lower RLIMIT_NOFILE", errno, NULL);
	lim.rlim_max++;
	if (setrlimit(RLIMIT_NOFILE, &lim) < 0)
		return verdict(r, false, "missing: %s", without);
	return verdict(r, true, "raised a hard rlimit");
}

/* --- the table ---------------------------------------------------------------------------------------- */

/* A TCP listener on the loopback, found by sock_diag by its inode (the
 * conversation inet sockets are dumped with), and a netlink socket. */
static bool probe_sock_diag(struct probe_result *r)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	cleanup_close int sk = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	cleanup_close int nl = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
	struct sockaddr_nl na = { .nl_family = AF_NETLINK };
	struct netlink_diag_sk n;
	struct inet_diag_sk d;
	cr_error_t err = NULL;
	struct stat st;
	int found;

	if (sk < 0 || nl < 0 || bind(sk, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(sk, 3) < 0 ||
	    bind(nl, (struct sockaddr *)&na, sizeof(na)) < 0 || fstat(sk, &st) < 0)
		return failed(r, "a loopback listener and a netlink socket", errno, NULL);
	found = inet_diag_lookup(getpid(), (uint32_t)st.st_ino, AF_INET, IPPROTO_TCP, &d, &err);
	if (found == 1 && fstat(nl, &st) == 0)
		found = netlink_diag_lookup(getpid(), (uint32_t)st.st_ino, &n, &err);
	if (found < 0) {
		verdict(r, false, "%s", err->msg);
		cr_error_release(&err);
		return false;
	}
	return verdict(r, found == 1, found == 1 ? "found a TCP listener and a netlink socket by inode"
						 : "does not list a socket of this process (inet_diag, netlink_diag)");
}

/* TCP_REPAIR on a socket, and nf_tables to block a connection's traffic. */
static bool probe_tcp_repair(struct probe_result *r)
{
	cleanup_close int sk = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int on = 1;

	if (sk < 0 || setsockopt(sk, IPPROTO_TCP, TCP_REPAIR, &on, sizeof(on)) < 0)
		return failed(r, "TCP_REPAIR", errno, "needs CAP_NET_ADMIN");
	if (!nft_lock_available())
		return verdict(r, false, "TCP_REPAIR works, but the kernel has no nf_tables to lock a connection");
	return verdict(r, true, "TCP_REPAIR works, and nf_tables answers");
}

static const struct probe probes[] = {
	{ "clone3_set_tid", "clone3 set_tid", NEED_PID_BACKEND, "restoring pids (default backend)",
	  probe_clone3_set_tid },
	{ "clone2", "clone2", NEED_PID_BACKEND, "restoring pids (--pid-backend clone2)", probe_clone2 },
	{ "ns_last_pid", "ns_last_pid", NEED_PID_BACKEND, "restoring pids (--pid-backend ns_last_pid)",
	  probe_ns_last_pid },
	{ "ptrace_seize", "ptrace seize", NEED_REQUIRED, "freezing processes, injecting syscalls",
	  probe_ptrace_seize },
	{ "ptrace_rseq_configuration", "PTRACE_GET_RSEQ_CONFIGURATION", NEED_REQUIRED, "dumping rseq areas",
	  probe_rseq_config },
	{ "pidfd_getfd", "pidfd_open/pidfd_getfd", NEED_REQUIRED, "reading fds of the dumped process",
	  probe_pidfd_getfd },
	{ "process_vm_readv", "process_vm_readv", NEED_REQUIRED, "reading memory", probe_process_vm_readv },
	{ "kcmp", "kcmp", NEED_REQUIRED, "finding shared file descriptions", probe_kcmp },
	{ "seccomp_suspend", "PTRACE_O_SUSPEND_SECCOMP", NEED_OPTIONAL,
	  "processes under seccomp (refused without it)", probe_seccomp_suspend },
	{ "pr_set_mm_map", "PR_SET_MM_MAP", NEED_REQUIRED, "restoring brk, args, env, auxv and exe",
	  probe_mm_map },
	{ "pagemap_scan", "PAGEMAP_SCAN", NEED_OPTIONAL, "pre-dump and live migration", probe_pagemap_scan },
	{ "uffd_wp_async", "userfaultfd write-protect", NEED_OPTIONAL, "dirty-page tracking (pre-dump)",
	  probe_uffd_wp },
	{ "soft_dirty", "soft-dirty", NEED_OPTIONAL, "nothing: cr tracks writes with PAGEMAP_SCAN",
	  probe_soft_dirty },
	{ "timerfd_set_ticks", "TFD_IOC_SET_TICKS", NEED_OPTIONAL, "timerfds with unread expirations",
	  probe_timerfd_ticks },
	{ "time_namespace", "time namespaces", NEED_OPTIONAL, "processes in time namespaces", probe_time_ns },
	{ "timer_create_restore_ids", "PR_TIMER_CREATE_RESTORE_IDS", NEED_OPTIONAL, "POSIX timers with their ids",
	  probe_timer_restore_ids },
	{ "cap_checkpoint_restore", "CAP_CHECKPOINT_RESTORE or CAP_SYS_ADMIN", NEED_REQUIRED,
	  "choosing pids, setting the exe", probe_cap_restore },
	{ "cap_sys_ptrace", "CAP_SYS_PTRACE", NEED_REQUIRED, "tracing any process", probe_cap_ptrace },
	{ "cap_sys_resource", "CAP_SYS_RESOURCE", NEED_OPTIONAL, "raising hard rlimits", probe_cap_resource },
	{ "sock_diag", "sock_diag (inet, netlink)", NEED_OPTIONAL, "inet and netlink sockets", probe_sock_diag },
	{ "tcp_repair", "TCP_REPAIR and nf_tables", NEED_OPTIONAL, "established TCP (dump --tcp-established)",
	  probe_tcp_repair },
};

/* Runs the probe in a child of its own and collects its answer. */
static void run_probe(const struct probe *p, struct probe_result *r)
{
	cleanup_close int rd = -1;
	int fds[2], status = 0;
	pid_t pid;

	memset(r, 0, sizeof(*r));
	if (pipe2(fds, O_CLOEXEC) < 0) {
		failed(r, "pipe", errno, NULL);
		return;
	}
	rd = fds[0];
	fflush(NULL);
	pid = fork();
	if (pid == 0) {
		struct probe_result mine = { 0 };

		close(rd);
		alarm(PROBE_TIMEOUT);
		p->run(&mine);
		_exit(write(fds[1], &mine, sizeof(mine)) == sizeof(mine) ? 0 : 1);
	}
	close(fds[1]);
	if (pid < 0) {
		failed(r, "fork", errno, NULL);
		return;
	}
	if (read(rd, r, sizeof(*r)) != sizeof(*r))
		verdict(r, false, "the probe gave no answer");
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	if (WIFSIGNALED(status))
		verdict(r, false, "the probe was killed by signal %d%s", WTERMSIG(status),
			WTERMSIG(status) == SIGALRM ? " (timed out)" : "");
	r->note[sizeof(r->note) - 1] = '\0';
}

/* --- output ------------------------------------------------------------------------------------------- */

struct outcome {
	struct probe_result results[ARRAY_SIZE(probes)];
	bool any_pid_backend;
	bool ok;
};

static void evaluate(struct outcome *o)
{
	o->any_pid_backend = false;
	o->ok = true;
	for (size_t i = 0; i < ARRAY_SIZE(probes); i++) {
		if (probes[i].need == NEED_PID_BACKEND && o->results[i].yes)
			o->any_pid_backend = true;
		if (probes[i].need == NEED_REQUIRED && !o->results[i].yes)
			o->ok = false;
	}
	if (!o->any_pid_backend)
		o->ok = false;
}

static const char *need_name(enum need n)
{
	switch (n) {
	case NEED_REQUIRED: return "required";
	case NEED_PID_BACKEND: return "pid backend";
	default: return "optional";
	}
}

static void print_missing(const struct outcome *o)
{
	printf("cr cannot dump and restore here; missing:\n");
	if (!o->any_pid_backend)
		printf("  a way to choose pids (clone3 set_tid, clone2 or ns_last_pid)\n");
	for (size_t i = 0; i < ARRAY_SIZE(probes); i++)
		if (probes[i].need == NEED_REQUIRED && !o->results[i].yes)
			printf("  %s, needed for %s: %s\n", probes[i].name, probes[i].used_for, o->results[i].note);
}

static void print_text(const struct outcome *o)
{
	struct utsname u;

	uname(&u);
	printf("Kernel %s on %s; cr runs as uid %d\n\n", u.release, u.machine, (int)getuid());
	printf("%-40s %-4s %-12s %s\n", "feature", "here", "needed", "note");
	for (size_t i = 0; i < ARRAY_SIZE(probes); i++)
		printf("%-40s %-4s %-12s %s\n", probes[i].name, o->results[i].yes ? "yes" : "no",
		       need_name(probes[i].need), o->results[i].note);
	putchar('\n');
	if (!o->ok) {
		print_missing(o);
		return;
	}
	const char *sep = "";

	printf("cr can dump and restore here; pid backends:");
	for (size_t i = 0; i < ARRAY_SIZE(probes); i++)
		if (probes[i].need == NEED_PID_BACKEND && o->results[i].yes) {
			printf("%s %s", sep, probes[i].name);
			sep = ",";
		}
	printf("\n");
}

static int print_json(const struct outcome *o, cr_error_t *err)
{
	struct json_writer w;
	struct utsname u;

	uname(&u);
	json_init(&w, stdout, true);
	json_object_begin(&w);
	json_kv_string(&w, "kernel", u.release);
	json_kv_string(&w, "arch", u.machine);
	json_kv_bool(&w, "can_dump_restore", o->ok);
	json_key(&w, "features");
	json_array_begin(&w);
	for (size_t i = 0; i < ARRAY_SIZE(probes); i++) {
		json_object_begin(&w);
		json_kv_string(&w, "key", probes[i].key);
		json_kv_string(&w, "name", probes[i].name);
		json_kv_bool(&w, "present", o->results[i].yes);
		json_kv_string(&w, "need", need_name(probes[i].need));
		json_kv_string(&w, "used_for", probes[i].used_for);
		json_kv_string(&w, "note", o->results[i].note);
		json_object_end(&w);
	}
	json_array_end(&w);
	json_object_end(&w);
	return json_finish(&w, err);
}

static const char check_usage[] =
	"usage: cr check [--json]\n"
	"\n"
	"Tries every kernel feature cr relies on (each in a child process of its\n"
	"own) and prints yes or no with a note.  Exit status 0 when dump and\n"
	"restore can work here, 1 when a required feature or capability is\n"
	"missing (named in the output), 2 for a usage error.\n"
	"\n"
	"      --json   the same as a JSON object\n"
	"  -h, --help   this text\n";

int cmd_check(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "json", no_argument, NULL, 'J' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct outcome o;
	cr_error_t err = NULL;
	bool json = false;
	int c;

	optind = 1;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		if (c == 'h') {
			fputs(check_usage, stdout);
			return 0;
		}
		if (c != 'J') {
			fputs("run 'cr check --help' for usage\n", stderr);
			return 2;
		}
		json = true;
	}
	if (optind < argc) {
		fprintf(stderr, "cr: check: unexpected argument '%s'\nrun 'cr check --help' for usage\n", argv[optind]);
		return 2;
	}
	for (size_t i = 0; i < ARRAY_SIZE(probes); i++)
		run_probe(&probes[i], &o.results[i]);
	evaluate(&o);
	if (!json) {
		print_text(&o);
	} else if (print_json(&o, &err) < 0) {
		fprintf(stderr, "cr: check: %s\n", err->msg);
		cr_error_release(&err);
		return 1;
	}
	return o.ok ? 0 : 1;
}
