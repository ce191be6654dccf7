/*
 * w_fown STATE_DIR
 *
 * Signal-driven I/O set up on file descriptions, a state only a real
 * restore keeps:
 *   a pipe's read end: O_ASYNC, owned by a second thread (F_OWNER_TID),
 *     signal SIGRTMIN+2 (F_SETSIG);
 *   a socket: owned by the process (F_SETOWN), no O_ASYNC.
 * After the trigger the workload checks owners, signal and flags, then
 * writes into the pipe: the second thread, which blocks SIGRTMIN+2, must
 * receive it from the kernel with si_fd naming the pipe's read end.
 */
#include "wl.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static int pipefd[2], sock[2];
static pid_t thread_tid;
/* Stages (wl_set_stage): 1: thread started; 2: pipe written; 3: thread done. */

static void *receiver(void *arg)
{
	struct timespec five = { .tv_sec = 5 };
	siginfo_t si;
	sigset_t set;

	(void)arg;
	thread_tid = (pid_t)syscall(SYS_gettid);
	wl_set_stage(1);
	wl_wait_stage(2);
	sigemptyset(&set);
	sigaddset(&set, SIGRTMIN + 2);
	if (sigtimedwait(&set, &si, &five) < 0)
		wl_check(false, "no SIGRTMIN+2 reached the owning thread: %s", strerror(errno));
	else
		wl_check(si.si_fd == pipefd[0] && si.si_code == POLL_IN, "the signal names fd %d (code %d), want %d",
			 si.si_fd, si.si_code, pipefd[0]);
	wl_set_stage(3);
	return NULL;
}

int main(int argc, char **argv)
{
	struct f_owner_ex own;
	sigset_t set;
	pthread_t t;

	wl_init(argc, argv);
	sigemptyset(&set);
	sigaddset(&set, SIGRTMIN + 2);
	pthread_sigmask(SIG_BLOCK, &set, NULL);   /* both threads inherit it */
	if (pipe(pipefd) < 0 || socketpair(AF_UNIX, SOCK_STREAM, 0, sock) < 0)
		wl_fatal("pipe/socketpair");
	if (pthread_create(&t, NULL, receiver, NULL) != 0)
		wl_fatal("pthread_create");
	wl_wait_stage(1);
	own = (struct f_owner_ex){ .type = F_OWNER_TID, .pid = thread_tid };
	if (fcntl(pipefd[0], F_SETOWN_EX, &own) < 0 || fcntl(pipefd[0], F_SETSIG, SIGRTMIN + 2) < 0 ||
	    fcntl(pipefd[0], F_SETFL, fcntl(pipefd[0], F_GETFL) | O_ASYNC | O_NONBLOCK) < 0 ||
	    fcntl(sock[0], F_SETOWN, getpid()) < 0)
		wl_fatal("fcntl: %s", strerror(errno));
	wl_ready();
	wl_wait_trigger();

	wl_check(fcntl(pipefd[0], F_GETOWN_EX, &own) == 0 && own.type == F_OWNER_TID && own.pid == thread_tid,
		 "pipe owner %d/%d, want thread %d", own.type, own.pid, thread_tid);
	wl_check(fcntl(pipefd[0], F_GETSIG) == SIGRTMIN + 2, "pipe signal %d", fcntl(pipefd[0], F_GETSIG));
	wl_check(fcntl(pipefd[0], F_GETFL) & O_ASYNC, "the pipe lost O_ASYNC");
	wl_check(fcntl(sock[0], F_GETOWN) == getpid(), "socket owner %d, want %d", fcntl(sock[0], F_GETOWN),
		 getpid());
	wl_check(!(fcntl(sock[0], F_GETFL) & O_ASYNC), "the socket gained O_ASYNC");
	if (write(pipefd[1], "x", 1) != 1)
		wl_fatal("write");
	wl_set_stage(2);
	wl_wait_stage(3);
	pthread_join(t, NULL);
	wl_finish();
}
