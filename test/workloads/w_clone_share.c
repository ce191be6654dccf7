/*
 * w_clone_share STATE_DIR files|fs|sighand|vm
 *
 * Has a child made by clone(2) with CLONE_FILES (one fd table for both),
 * CLONE_FS (one root, cwd and umask), CLONE_VM (one address space, as a
 * vfork child has until it execs) or CLONE_SIGHAND|CLONE_VM (one signal
 * handler table; it needs a shared address space), which then waits in
 * pause().  cr cannot make such an object shared again and must
 * refuse the dump, naming both processes; the harness then triggers the
 * workload, which checks the sharing still holds (the dump left it alone)
 * and passes.
 */
#include "wl.h"

#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#define STACK_SIZE (256 * 1024)

static int child_main(void *arg)
{
	(void)arg;
	for (;;)
		pause();
	return 0;
}

static volatile int shared_word;

static void on_usr1(int sig)
{
	(void)sig;
}

int main(int argc, char **argv)
{
	int flags;
	char *stack;
	pid_t child;
	struct sigaction sa = { .sa_handler = on_usr1 }, seen;

	wl_init(argc, argv);
	if (argc < 3)
		wl_fatal("usage: w_clone_share DIR files|fs|sighand|vm");
	if (!strcmp(argv[2], "files"))
		flags = CLONE_FILES;
	else if (!strcmp(argv[2], "fs"))
		flags = CLONE_FS;
	else if (!strcmp(argv[2], "sighand"))
		flags = CLONE_SIGHAND | CLONE_VM;
	else if (!strcmp(argv[2], "vm"))
		flags = CLONE_VM;
	else
		wl_fatal("unknown sharing '%s'", argv[2]);
	stack = malloc(STACK_SIZE);
	if (stack == NULL)
		wl_fatal("malloc");
	child = clone(child_main, stack + STACK_SIZE, flags | SIGCHLD, NULL);
	if (child < 0)
		wl_fatal("clone");
	wl_write_file("child", "%d\n", (int)child);
	wl_ready();
	wl_wait_trigger();
	/* The sharing still holds: what one changes, the other sees. */
	if (flags & CLONE_FILES) {
		int fd = open("/dev/null", O_RDONLY);
		char path[64];

		snprintf(path, sizeof(path), "/proc/%d/fd/%d", (int)child, fd);
		wl_check(access(path, F_OK) == 0, "the child does not see fd %d any more", fd);
	} else if (flags & CLONE_FS) {
		char path[64], buf[2048];

		umask(0077);
		snprintf(path, sizeof(path), "/proc/%d/status", (int)child);
		wl_check(wl_read_path(path, buf, sizeof(buf)) > 0 && strstr(buf, "Umask:\t0077\n") != NULL,
			 "the child does not share the umask any more");
	} else if (!(flags & CLONE_SIGHAND)) {
		struct iovec here, there;
		int seen_there = 0;

		shared_word = 42;
		here = (struct iovec){ &seen_there, sizeof(seen_there) };
		there = (struct iovec){ (void *)&shared_word, sizeof(shared_word) };
		wl_check(process_vm_readv(child, &here, 1, &there, 1, 0) == sizeof(int) && seen_there == 42,
			 "the child does not share the address space any more (it sees %d)", seen_there);
	} else {
		sigaction(SIGUSR1, &sa, NULL);
		wl_check(sigaction(SIGUSR1, NULL, &seen) == 0 && seen.sa_handler == on_usr1, "handler");
	}
	kill(child, SIGKILL);
	waitpid(child, NULL, 0);
	wl_finish();
}
