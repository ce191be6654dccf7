/*
 * w_memfd STATE_DIR
 *
 * Holds memfds and checks, when triggered, that every one is as it was:
 *
 *   (a) sealed  "wl-sealed": 3 pages of data, a hole, 4 KiB more at 512 KiB,
 *               1 MiB in all, mode 0640, offset 12345, sealed against
 *               shrinking, growing and writing: name, size, contents (the
 *               hole reads as zeros), mode, offset, the seals, and that
 *               writing and resizing are refused.
 *   (b) plain   "wl plain, with spaces" without MFD_ALLOW_SEALING (so
 *               F_SEAL_SEAL), 11 bytes, offset 5, plus a second, read-only
 *               description opened through /proc/self/fd at offset 2: name,
 *               seals, mode 0777, each description's offset and flags, and
 *               what is written through one is read through the other.
 *   (c) empty   an empty memfd with an empty name.
 *
 * Sabotage (file "sabotage"): contents, offset, size — breaks that property
 * just before the checks, which must then fail.
 */
#include "wl.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/kcmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#define PAGE 4096
#define SEALED_SIZE (1 << 20)
#define SECOND_AT (512 * 1024)
#define SEALED_OFFSET 12345
#define SEALED_SEALS (F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE)

static int sealed, plain, plain_ro, empty;
static unsigned char head[3 * PAGE], second[PAGE];
static const char plain_data[] = "hello memfd";

static void must(bool ok, const char *what)
{
	if (!ok)
		wl_fatal("%s: %s", what, strerror(errno));
}

static void fill(unsigned char *p, size_t len, uint64_t salt)
{
	uint64_t rng = wl_seed(salt);

	for (size_t i = 0; i < len; i++)
		p[i] = (unsigned char)wl_xorshift(&rng);
}

static void build(void)
{
	char path[64];

	sealed = memfd_create("wl-sealed", MFD_ALLOW_SEALING);
	must(sealed >= 0, "memfd_create (a)");
	fill(head, sizeof(head), 0xa);
	fill(second, sizeof(second), 0xb);
	must(pwrite(sealed, head, sizeof(head), 0) == sizeof(head), "write (a)");
	must(ftruncate(sealed, SEALED_SIZE) == 0, "ftruncate (a)");
	must(pwrite(sealed, second, sizeof(second), SECOND_AT) == sizeof(second), "write (a)");
	must(fchmod(sealed, 0640) == 0, "fchmod (a)");
	must(lseek(sealed, SEALED_OFFSET, SEEK_SET) == SEALED_OFFSET, "lseek (a)");
	must(fcntl(sealed, F_ADD_SEALS, SEALED_SEALS) == 0, "F_ADD_SEALS (a)");

	plain = memfd_create("wl plain, with spaces", MFD_CLOEXEC);
	must(plain >= 0, "memfd_create (b)");
	must(write(plain, plain_data, strlen(plain_data)) == (ssize_t)strlen(plain_data), "write (b)");
	must(lseek(plain, 5, SEEK_SET) == 5, "lseek (b)");
	snprintf(path, sizeof(path), "/proc/self/fd/%d", plain);
	plain_ro = open(path, O_RDONLY);
	must(plain_ro >= 0 && lseek(plain_ro, 2, SEEK_SET) == 2, "reopen (b)");

	empty = memfd_create("", 0);
	must(empty >= 0, "memfd_create (c)");
}

/* ---- checks -------------------------------------------------------------- */

static void check_link(const char *what, int fd, const char *name)
{
	char path[64], link[512], want[512];
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	snprintf(want, sizeof(want), "/memfd:%s (deleted)", name);
	n = readlink(path, link, sizeof(link) - 1);
	link[n > 0 ? n : 0] = '\0';
	wl_check(strcmp(link, want) == 0, "(%s) fd %d is '%s', want '%s'", what, fd, link, want);
}

static void check_stat(const char *what, int fd, off_t size, mode_t mode)
{
	struct stat st;

	int r = fstat(fd, &st);

	if (!wl_check(r == 0, "(%s) fstat: %s", what, strerror(errno)))
		return;
	wl_check(st.st_size == size, "(%s) size %lld, want %lld", what, (long long)st.st_size, (long long)size);
	wl_check((st.st_mode & 07777) == mode, "(%s) mode 0%o, want 0%o", what, st.st_mode & 07777, mode);
}

static void check_offset(const char *what, int fd, off_t want)
{
	off_t at = lseek(fd, 0, SEEK_CUR);

	wl_check(at == want, "(%s) fd %d offset %lld, want %lld", what, fd, (long long)at, (long long)want);
}

static void check_seals(const char *what, int fd, int want)
{
	int seals = fcntl(fd, F_GET_SEALS);

	wl_check(seals == want, "(%s) seals 0x%x, want 0x%x", what, seals, want);
}

static void check_sealed(void)
{
	unsigned char *all = malloc(SEALED_SIZE);
	long bad = -1;

	check_link("a", sealed, "wl-sealed");
	check_stat("a", sealed, SEALED_SIZE, 0640);
	check_offset("a", sealed, SEALED_OFFSET);
	check_seals("a", sealed, SEALED_SEALS);
	if (all == NULL || pread(sealed, all, SEALED_SIZE, 0) != SEALED_SIZE) {
		wl_check(false, "(a) cannot read the memfd back");
		free(all);
		return;
	}
	for (long i = 0; i < SEALED_SIZE && bad < 0; i++) {
		unsigned char want = i < (long)sizeof(head) ? head[i] :
				     i >= SECOND_AT && i < SECOND_AT + PAGE ? second[i - SECOND_AT] : 0;

		if (all[i] != want)
			bad = i;
	}
	wl_check(bad < 0, "(a) contents differ at offset %ld", bad);
	free(all);
	wl_check(pwrite(sealed, "x", 1, 0) < 0 && errno == EPERM, "(a) F_SEAL_WRITE does not stop a write");
	wl_check(ftruncate(sealed, SEALED_SIZE * 2) < 0 && errno == EPERM, "(a) F_SEAL_GROW does not stop growing");
	wl_check(ftruncate(sealed, 1) < 0 && errno == EPERM, "(a) F_SEAL_SHRINK does not stop shrinking");
}

static void check_plain(void)
{
	char got[32] = "";
	int fl = fcntl(plain_ro, F_GETFL);

	check_link("b", plain, "wl plain, with spaces");
	check_link("b", plain_ro, "wl plain, with spaces");
	check_stat("b", plain, (off_t)strlen(plain_data), 0777);
	check_seals("b", plain, F_SEAL_SEAL);
	check_offset("b", plain, 5);
	check_offset("b", plain_ro, 2);
	wl_check(fl >= 0 && (fl & O_ACCMODE) == O_RDONLY, "(b) the second description is not read-only");
	wl_check(syscall(SYS_kcmp, getpid(), getpid(), KCMP_FILE, plain, plain_ro) != 0,
		 "(b) the two descriptions became one");
	wl_check(pread(plain_ro, got, sizeof(got), 0) == (ssize_t)strlen(plain_data) &&
		 memcmp(got, plain_data, strlen(plain_data)) == 0, "(b) contents '%s', want '%s'", got, plain_data);
	wl_check(write(plain, "!!", 2) == 2, "(b) write through the first description failed");
	wl_check(pread(plain_ro, got, 2, 5) == 2 && memcmp(got, "!!", 2) == 0,
		 "(b) what was written through one description is not seen through the other");
	wl_check(fcntl(plain, F_ADD_SEALS, F_SEAL_WRITE) < 0 && errno == EPERM, "(b) F_SEAL_SEAL lost");

	check_link("c", empty, "");
	check_stat("c", empty, 0, 0777);
}

static void sabotage(void)
{
	char what[32];

	if (wl_read_file("sabotage", what, sizeof(what)) <= 0)
		return;
	what[strcspn(what, "\n")] = '\0';
	if (strcmp(what, "contents") == 0)
		wl_check(pwrite(plain, "J", 1, 0) == 1, "sabotage write");
	else if (strcmp(what, "offset") == 0)
		wl_check(lseek(sealed, 1, SEEK_CUR) > 0, "sabotage seek");
	else if (strcmp(what, "size") == 0)
		wl_check(ftruncate(empty, 1) == 0, "sabotage truncate");
	else
		wl_check(false, "unknown sabotage '%s'", what);
}

int main(int argc, char **argv)
{
	wl_init(argc, argv);
	build();
	wl_ready();
	wl_wait_trigger();

	sabotage();
	check_sealed();
	check_plain();
	wl_check(getpid() == wl_pid(), "pid changed");
	wl_finish();
}
