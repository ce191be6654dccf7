#include "os/supervise.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

volatile sig_atomic_t cr_interrupted;
volatile sig_atomic_t cr_interrupt_armed;

static pid_t worker;

static void on_stop_signal(int sig)
{
	(void)sig;
	cr_interrupted = 1;
}

static void forward(int sig)
{
	(void)sig;
	if (worker > 0)
		kill(worker, SIGTERM);
}

/* No SA_RESTART: a blocked waitpid returns EINTR and sees the flag. */
static void catch_signals(void (*handler)(int))
{
	static const int sigs[] = { SIGINT, SIGTERM, SIGHUP };
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = handler;
	sigemptyset(&sa.sa_mask);
	for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
		sigaction(sigs[i], &sa, NULL);
}

int supervise(int (*work)(void *), void *arg)
{
	pid_t parent = getpid();
	int status;

	fflush(NULL);
	worker = fork();
	if (worker < 0) {
		perror("cr: fork");
		return 1;
	}
	if (worker == 0) {
		catch_signals(on_stop_signal);
		if (prctl(PR_SET_PDEATHSIG, SIGTERM) < 0 || getppid() != parent)
			cr_interrupted = 1;
		cr_interrupt_armed = 1;
		_exit(work(arg));
	}
	catch_signals(forward);
	while (waitpid(worker, &status, 0) < 0)
		if (errno != EINTR)
			return 1;
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}
