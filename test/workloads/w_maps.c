/*
 * w_maps STATE_DIR KIND
 *
 * One kind of mapping, which after restore must hold its contents and, when
 * two processes map it, still be ONE object: a write by one is seen by the
 * other.  Page 0 of the object is how the two talk; page 1 is written by
 * the parent and page 2 by the child before ready, page 3 by the parent
 * and page 4 by the child after the trigger.  KIND:
 *
 *   memfd          a memfd mapped shared, its fd kept (a write through it
 *                  must show in the mapping), shared with a child
 *   memfd_big      the same as memfd, 40 MiB of data (more than an fd's
 *                  contents may hold in the image: the mapping holds them)
 *   memfd_closed   the same with the fd closed (the mapping alone holds it)
 *   memfd_sealed   a memfd filled, sealed (F_SEAL_WRITE, SHRINK, GROW),
 *                  then mapped shared read-only and private (page 6
 *                  written privately); its seals must come back
 *   memfd_private  a memfd mapped private: page 6 written privately (the
 *                  memfd keeps its own page 6), page 5 the memfd's
 *   sysv           System V shm attached by parent and child (shmat before
 *                  fork), the segment kept
 *   sysv_rmid      the same, the segment IPC_RMID'd while attached
 *   sysv_late      parent and child attach the segment separately (the
 *                  child after fork, at another address), then IPC_RMID
 *   sysv_ro        a removed segment attached twice by one process, once
 *                  SHM_RDONLY: that one sees the other's writes, and
 *                  mprotect cannot make it writable
 *   sysv_part      a removed segment of which a page is unmapped (refused)
 *   posix_shm      /dev/shm/w_maps.PID, shm_open'd and mapped by the parent
 *                  and (separately, after fork) the child
 *   posix_shm_del  the same, shm_unlink'ed after both mapped it
 *   devzero        /dev/zero mapped MAP_SHARED, shared with a child
 *   devzero_priv   /dev/zero mapped MAP_PRIVATE (anonymous memory)
 *   deleted        a file in the state dir mapped shared (shared with a
 *                  child) and private (page 6 written privately), then
 *                  deleted
 *   deleted_fd     the same, its fd kept open
 *   hugetlb_anon   a huge page, MAP_PRIVATE|MAP_ANONYMOUS|MAP_HUGETLB
 *   hugetlb_shared a huge page, MAP_SHARED|MAP_ANONYMOUS|MAP_HUGETLB, shared
 *                  with a child
 *   hugetlb_memfd  a memfd MFD_HUGETLB mapped shared, fd closed, shared
 *                  with a child
 *   hugetlb_memfd_fd  the same with its fd kept (refused)
 *   hugetlb_sysv   a removed SHM_HUGETLB segment shared with a child
 *   aio            an aio context (io_setup); after restore a read through
 *                  it must complete
 *   guard          a guard region (MADV_GUARD_INSTALL) in anonymous memory
 *   novdso         the vdso unmapped (and vvar); a time call after restore
 *                  goes through the system call
 *   plain          no object (for a binary deleted while it runs)
 *
 * On the trigger each process checks, and the parent reports for both.
 */
#include "wl.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/aio_abi.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/mman.h>
#include <sys/shm.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef MFD_HUGETLB
#define MFD_HUGETLB 4U
#endif
#ifndef MADV_GUARD_INSTALL
#define MADV_GUARD_INSTALL 102
#endif

#define PG 4096UL
#define PAGES 16
#define HUGE (2UL << 20)

struct ctl {
	volatile uint32_t child_ready;
	volatile uint64_t ping;       /* the parent's word after the trigger */
	volatile uint32_t child_done;
	volatile uint32_t child_ok;
	char why[1024];
};

static const char *kind;
static size_t size = PAGES * PG;
static char *mem;                 /* the parent's mapping (the child's after fork) */
static char *priv;                /* a private mapping of the same object, if any */
static int keep_fd = -1;          /* an fd on the object the process keeps, if any */
static int shm_id = -1;
static struct stat dumped_st;     /* deleted_fd: the file, at ready */
static char *ro;                  /* sysv_ro: the read-only attach */
static char shm_name[64];
static char file_path[512];

static void must(bool ok, const char *what)
{
	if (!ok)
		wl_fatal("%s: %s", what, strerror(errno));
}

static void fill(char *base, unsigned page, uint64_t salt)
{
	uint64_t s = wl_seed(salt << 16 | page);

	for (size_t i = 0; i < PG; i += 8) {
		uint64_t v = wl_xorshift(&s);

		memcpy(base + page * PG + i, &v, 8);
	}
}

static bool holds(const char *base, unsigned page, uint64_t salt)
{
	uint64_t s = wl_seed(salt << 16 | page);

	for (size_t i = 0; i < PG; i += 8) {
		uint64_t v = wl_xorshift(&s);

		if (memcmp(base + page * PG + i, &v, 8) != 0)
			return false;
	}
	return true;
}

static struct ctl *ctl(void)
{
	return (struct ctl *)mem;
}

/* ---- the objects ---------------------------------------------------------- */

static char *map_fd(int fd, int flags)
{
	char *p = mmap(NULL, size, PROT_READ | PROT_WRITE, flags, fd, 0);

	must(p != MAP_FAILED, "mmap");
	return p;
}

static void make_memfd(unsigned flags, bool close_it, bool private)
{
	int fd = memfd_create("w_maps", MFD_CLOEXEC | flags);

	must(fd >= 0, "memfd_create");
	must(ftruncate(fd, (off_t)size) == 0, "ftruncate");
	mem = map_fd(fd, MAP_SHARED);
	if (private) {
		priv = map_fd(fd, MAP_PRIVATE);
		fill(mem, 6, 11);      /* the memfd's page 6 */
		fill(mem, 5, 12);
		fill(priv, 6, 13);     /* a private copy */
	}
	if (close_it)
		close(fd);
	else
		keep_fd = fd;
}

#define SEALS (F_SEAL_WRITE | F_SEAL_SHRINK | F_SEAL_GROW)

static void make_sealed(void)
{
	int fd = memfd_create("w_maps_sealed", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	char *w;

	must(fd >= 0 && ftruncate(fd, (off_t)size) == 0, "memfd_create");
	w = map_fd(fd, MAP_SHARED);
	fill(w, 1, 1);
	fill(w, 5, 12);
	fill(w, 6, 11);
	must(munmap(w, size) == 0, "munmap");
	must(fcntl(fd, F_ADD_SEALS, SEALS) == 0, "F_ADD_SEALS");
	mem = mmap(NULL, size, PROT_READ, MAP_SHARED, fd, 0);
	must(mem != MAP_FAILED, "mmap sealed");
	priv = map_fd(fd, MAP_PRIVATE);
	fill(priv, 6, 13);
	keep_fd = fd;
}

static void make_sysv(int flags, bool rmid)
{
	shm_id = shmget(IPC_PRIVATE, size, IPC_CREAT | 0600 | flags);
	must(shm_id >= 0, "shmget");
	mem = shmat(shm_id, NULL, 0);
	must(mem != (void *)-1, "shmat");
	if (rmid)
		must(shmctl(shm_id, IPC_RMID, NULL) == 0, "IPC_RMID");
	else
		wl_write_file("shmid", "%d\n", shm_id);   /* for the harness to remove, if it kills us */
}

static void make_posix_shm(void)
{
	int fd;

	snprintf(shm_name, sizeof(shm_name), "/w_maps.%d", (int)getpid());
	fd = shm_open(shm_name, O_RDWR | O_CREAT | O_EXCL, 0600);
	must(fd >= 0, "shm_open");
	must(ftruncate(fd, (off_t)size) == 0, "ftruncate");
	mem = map_fd(fd, MAP_SHARED);
	close(fd);
}

static void make_deleted(bool keep)
{
	int fd;

	wl_path(file_path, sizeof(file_path), "mapped");
	fd = open(file_path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	must(fd >= 0, "open");
	must(ftruncate(fd, (off_t)size) == 0, "ftruncate");
	mem = map_fd(fd, MAP_SHARED);
	priv = map_fd(fd, MAP_PRIVATE);
	fill(mem, 6, 11);
	fill(mem, 5, 12);
	fill(priv, 6, 13);
	if (keep)
		keep_fd = fd;
	else
		close(fd);
	must(unlink(file_path) == 0, "unlink");
}

/* ---- aio, guard, vdso ------------------------------------------------------ */

static aio_context_t aio_ctx;

static void make_aio(void)
{
	must(syscall(SYS_io_setup, 64, &aio_ctx) == 0, "io_setup");
}

/* A read of the state dir's "aio" file through the context. */
static bool aio_works(char *why, size_t len)
{
	char path[512], buf[64] = { 0 };
	struct iocb cb = { 0 }, *cbs[1] = { &cb };
	struct io_event ev[1];
	struct timespec ts = { 5, 0 };
	int fd;
	long n;

	wl_path(path, sizeof(path), "aio");
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	if (fd < 0 || write(fd, "aio-data", 8) != 8)
		return snprintf(why, len, "aio file: %s", strerror(errno)), false;
	cb.aio_lio_opcode = IOCB_CMD_PREAD;
	cb.aio_fildes = (uint32_t)fd;
	cb.aio_buf = (uintptr_t)buf;
	cb.aio_nbytes = 8;
	cb.aio_data = 0x1234;
	if (syscall(SYS_io_submit, aio_ctx, 1, cbs) != 1)
		return snprintf(why, len, "io_submit: %s", strerror(errno)), false;
	n = syscall(SYS_io_getevents, aio_ctx, 1, 1, ev, &ts);
	close(fd);
	if (n != 1 || ev[0].data != 0x1234 || ev[0].res != 8 || memcmp(buf, "aio-data", 8) != 0)
		return snprintf(why, len, "io_getevents: %ld (%s)", n, strerror(errno)), false;
	return syscall(SYS_io_destroy, aio_ctx) == 0 ||
	       (snprintf(why, len, "io_destroy: %s", strerror(errno)), false);
}

static sigjmp_buf fault_jmp;

static void on_segv(int sig)
{
	(void)sig;
	siglongjmp(fault_jmp, 1);
}

static bool faults(volatile char *p)
{
	struct sigaction sa = { .sa_handler = on_segv }, old;
	bool hit = false;

	sigaction(SIGSEGV, &sa, &old);
	if (sigsetjmp(fault_jmp, 1) == 0)
		(void)*p;
	else
		hit = true;
	sigaction(SIGSEGV, &old, NULL);
	return hit;
}

static void make_guard(void)
{
	mem = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	must(mem != MAP_FAILED, "mmap");
	fill(mem, 1, 1);
	if (madvise(mem + 2 * PG, PG, MADV_GUARD_INSTALL) != 0)
		wl_fatal("MADV_GUARD_INSTALL: %s", strerror(errno));
}

static void unmap_vdso(void)
{
	const char *names[] = { "[vdso]", "[vvar]", "[vvar_vclock]" };
	struct wl_map m;

	for (size_t i = 0; i < 3; i++)
		if (wl_maps_find(names[i], &m) == 0)
			must(munmap((void *)m.start, m.end - m.start) == 0, "munmap vdso");
	must(wl_maps_find("[vdso]", &m) != 0, "the vdso is still there");
}

/* ---- the processes --------------------------------------------------------- */

static bool has_child(void)
{
	return strcmp(kind, "memfd") == 0 || strcmp(kind, "memfd_closed") == 0 || strcmp(kind, "memfd_big") == 0 || strncmp(kind, "sysv", 4) == 0 ||
	       strcmp(kind, "hugetlb_shared") == 0 || strcmp(kind, "hugetlb_memfd") == 0 ||
	       strcmp(kind, "hugetlb_sysv") == 0 ||
	       strncmp(kind, "posix_shm", 9) == 0 || strcmp(kind, "devzero") == 0 ||
	       strncmp(kind, "deleted", 7) == 0;
}

static void child_attach(void)
{
	if (strcmp(kind, "sysv_late") == 0) {
		char *other = shmat(shm_id, NULL, 0);   /* a second attach, elsewhere */

		must(other != (void *)-1, "shmat in the child");
		must(shmdt(mem) == 0, "shmdt");
		mem = other;
	} else if (strncmp(kind, "posix_shm", 9) == 0) {
		int fd = shm_open(shm_name, O_RDWR, 0);
		char *other;

		must(fd >= 0, "shm_open in the child");
		other = map_fd(fd, MAP_SHARED);
		close(fd);
		must(munmap(mem, size) == 0, "munmap");
		mem = other;
	}
}

static void why(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void why(const char *fmt, ...)
{
	size_t n = strlen(ctl()->why);
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(ctl()->why + n, sizeof(ctl()->why) - n, fmt, ap);
	va_end(ap);
}

static void nap(void)
{
	struct timespec ts = { 0, 5000000 };

	nanosleep(&ts, NULL);
}

static void child_main(void)
{
	child_attach();
	fill(mem, 2, 2);
	ctl()->child_ready = 1;
	while (ctl()->ping == 0)
		nap();
	if (!holds(mem, 1, 1))
		why("child: the parent's page 1 from before differs; ");
	if (!holds(mem, 3, 3))
		why("child: the parent's page 3 written after restore is not seen; ");
	fill(mem, 4, 4);
	ctl()->child_ok = ctl()->why[0] == '\0';
	__atomic_store_n(&ctl()->child_done, 1, __ATOMIC_SEQ_CST);
	_exit(0);
}

static bool child_answers(void)
{
	for (int i = 0; i < 1000 && !ctl()->child_done; i++)
		nap();
	return ctl()->child_done;
}

static void check_private(void)
{
	if (priv == NULL)
		return;
	wl_check(holds(priv, 6, 13), "the private page 6 differs");
	wl_check(holds(priv, 5, 12), "the private mapping's page 5 is not the object's");
	wl_check(holds(mem, 6, 11), "the object's page 6 differs (the private write went through?)");
	wl_check(holds(mem, 5, 12), "the object's page 5 differs");
}

static void check_ipc(void)
{
	struct shmid_ds ds;

	if (shm_id < 0)
		return;
	if (strcmp(kind, "sysv") == 0) {   /* the same segment, the child gone: attached once */
		int r = shmctl(shm_id, IPC_STAT, &ds);

		wl_check(r == 0 && ds.shm_segsz == size && ds.shm_nattch == 1, "shmctl(IPC_STAT) of segment %d: %s, "
			 "%lu attached", shm_id, r == 0 ? "ok" : strerror(errno), (unsigned long)ds.shm_nattch);
		shmctl(shm_id, IPC_RMID, NULL);
	}
}

static void check_posix_shm(void)
{
	struct stat st;

	if (strcmp(kind, "posix_shm") == 0) {
		char path[96];

		snprintf(path, sizeof(path), "/dev/shm%s", shm_name);
		wl_check(stat(path, &st) == 0 && st.st_size == (off_t)size, "%s: %s", path, strerror(errno));
		shm_unlink(shm_name);
	}
}

int main(int argc, char **argv)
{
	pid_t child = -1;
	int status;

	wl_init(argc, argv);
	kind = argc > 2 ? argv[2] : "";
	if (strcmp(kind, "memfd") == 0)
		make_memfd(0, false, false);
	else if (strcmp(kind, "memfd_big") == 0) {
		size = 40UL << 20;
		make_memfd(0, false, false);
		memset(mem + 16 * PG, 0x5a, size - 16 * PG);
	}
	else if (strcmp(kind, "memfd_closed") == 0)
		make_memfd(0, true, false);
	else if (strcmp(kind, "memfd_private") == 0)
		make_memfd(0, false, true);
	else if (strcmp(kind, "memfd_sealed") == 0)
		make_sealed();
	else if (strcmp(kind, "sysv") == 0 || strcmp(kind, "sysv_late") == 0)
		make_sysv(0, false);
	else if (strcmp(kind, "sysv_rmid") == 0)
		make_sysv(0, true);
	else if (strcmp(kind, "sysv_ro") == 0) {
		make_sysv(0, false);
		ro = shmat(shm_id, NULL, SHM_RDONLY);
		must(ro != (void *)-1, "shmat SHM_RDONLY");
		must(shmctl(shm_id, IPC_RMID, NULL) == 0, "IPC_RMID");
	} else if (strcmp(kind, "sysv_part") == 0) {
		make_sysv(0, true);
		must(munmap(mem + (PAGES - 1) * PG, PG) == 0, "munmap a page of the segment");
	}
	else if (strncmp(kind, "posix_shm", 9) == 0)
		make_posix_shm();
	else if (strcmp(kind, "devzero") == 0 || strcmp(kind, "devzero_priv") == 0) {
		int fd = open("/dev/zero", O_RDWR);

		must(fd >= 0, "open /dev/zero");
		mem = map_fd(fd, strcmp(kind, "devzero") == 0 ? MAP_SHARED : MAP_PRIVATE);
		close(fd);
	} else if (strcmp(kind, "deleted") == 0 || strcmp(kind, "deleted_fd") == 0)
		make_deleted(strcmp(kind, "deleted_fd") == 0);
	else if (strcmp(kind, "hugetlb_anon") == 0) {
		size = HUGE;
		mem = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB, -1, 0);
		must(mem != MAP_FAILED, "mmap MAP_HUGETLB");
	} else if (strcmp(kind, "hugetlb_shared") == 0) {
		size = HUGE;
		mem = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS | MAP_HUGETLB, -1, 0);
		must(mem != MAP_FAILED, "mmap MAP_SHARED|MAP_HUGETLB");
	} else if (strncmp(kind, "hugetlb_memfd", 13) == 0) {
		size = HUGE;
		make_memfd(MFD_HUGETLB, strcmp(kind, "hugetlb_memfd") == 0, false);
	} else if (strcmp(kind, "hugetlb_sysv") == 0) {
		size = HUGE;
		make_sysv(SHM_HUGETLB, true);
	} else if (strcmp(kind, "aio") == 0)
		make_aio();
	else if (strcmp(kind, "guard") == 0)
		make_guard();
	else if (strcmp(kind, "novdso") != 0 && strcmp(kind, "plain") != 0)
		wl_fatal("unknown kind '%s'", kind);
	if (mem == NULL) {
		mem = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		must(mem != MAP_FAILED, "mmap");
	}
	if (strcmp(kind, "memfd_sealed") != 0)
		fill(mem, 1, 1);
	if (has_child()) {
		child = fork();
		must(child >= 0, "fork");
		if (child == 0)
			child_main();
		wl_write_file("child", "%d\n", (int)child);
		while (!ctl()->child_ready)
			nap();
		if (strcmp(kind, "posix_shm_del") == 0)
			must(shm_unlink(shm_name) == 0, "shm_unlink");
		if (strcmp(kind, "sysv_late") == 0)
			must(shmctl(shm_id, IPC_RMID, NULL) == 0, "IPC_RMID");
	}
	if (strcmp(kind, "novdso") == 0)
		unmap_vdso();
	if (strcmp(kind, "deleted_fd") == 0)
		must(fstat(keep_fd, &dumped_st) == 0, "fstat");
	wl_write_file("addr", "%lx\n", (unsigned long)mem);
	wl_ready();
	wl_wait_trigger();
	if (strcmp(kind, "deleted_fd") == 0) {   /* before any write through the mapping */
		struct stat st;

		wl_check(fstat(keep_fd, &st) == 0 && st.st_mtim.tv_sec == dumped_st.st_mtim.tv_sec &&
			 st.st_mtim.tv_nsec == dumped_st.st_mtim.tv_nsec && st.st_mode == dumped_st.st_mode &&
			 st.st_size == dumped_st.st_size && st.st_nlink == 0,
			 "the deleted file's mtime, mode, size or link count changed");
	}

	wl_check(holds(mem, 1, 1), "page 1 differs");
	if (child > 0) {
		wl_check(holds(mem, 2, 2), "the child's page 2 from before differs");
		fill(mem, 3, 3);
		ctl()->ping = wl_token();
		if (wl_check(child_answers(), "the child never answered (not the same memory?)")) {
			wl_check(ctl()->child_ok, "child: %s", ctl()->why);
			wl_check(holds(mem, 4, 4), "the child's page 4 written after restore is not seen");
		} else {
			kill(child, SIGKILL);
		}
		wl_check(waitpid(child, &status, 0) == child && WIFEXITED(status) && WEXITSTATUS(status) == 0,
			 "child status 0x%x", status);
	}
	if (ro != NULL) {
		fill(mem, 8, 8);
		wl_check(holds(ro, 1, 1) && holds(ro, 8, 8), "the read-only attach is not the same segment");
		wl_check(mprotect(ro, size, PROT_READ | PROT_WRITE) < 0 && errno == EACCES,
			 "the SHM_RDONLY attach can be made writable");
	}
	if (strcmp(kind, "memfd_big") == 0)
		wl_check(mem[size - 1] == 0x5a && mem[16 * PG] == 0x5a, "the big memfd's data is lost");
	check_private();
	check_ipc();
	check_posix_shm();
	if (strcmp(kind, "aio") == 0) {
		char w[256] = "";

		wl_check(aio_works(w, sizeof(w)), "aio: %s", w);
	}
	if (strcmp(kind, "guard") == 0) {
		wl_check(faults(mem + 2 * PG), "the guard page does not fault");
		wl_check(!faults(mem + 3 * PG), "the page after the guard faults");
	}
	if (strcmp(kind, "novdso") == 0) {
		struct wl_map m;
		struct timespec ts;

		wl_check(wl_maps_find("[vdso]", &m) != 0, "a vdso is mapped at 0x%lx", (unsigned long)m.start);
		wl_check(syscall(SYS_clock_gettime, CLOCK_MONOTONIC, &ts) == 0, "clock_gettime");
	}
	if (strcmp(kind, "memfd_sealed") == 0) {
		char b[8];

		wl_check(fcntl(keep_fd, F_GET_SEALS) == SEALS, "seals 0x%x, not 0x%x", fcntl(keep_fd, F_GET_SEALS),
			 SEALS);
		wl_check(pread(keep_fd, b, 8, 6 * PG) == 8 && memcmp(b, mem + 6 * PG, 8) == 0,
			 "the fd does not read what the mapping holds");
		wl_check(pwrite(keep_fd, b, 8, 0) < 0 && errno == EPERM, "a write to the sealed memfd works");
	} else if (keep_fd >= 0 && size != HUGE) {   /* the fd and the mapping are one object (hugetlbfs: no write) */
		char b[8];
		uint64_t w = wl_token() ^ 0x5a5a;

		wl_check(pread(keep_fd, b, 8, 1 * PG) == 8 && memcmp(b, mem + PG, 8) == 0,
			 "the kept fd does not read what the mapping holds");
		wl_check(pwrite(keep_fd, &w, 8, 7 * PG) == 8 && memcmp(mem + 7 * PG, &w, 8) == 0,
			 "a write through the kept fd is not seen in the mapping");
	}
	wl_finish();
}
