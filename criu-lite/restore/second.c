/* A second transplanter.  The transplant is a conversation: the restorer
 * writes a batch, the process runs it, the restorer reads the answers and
 * writes the next; one of the two waits for the other at every step.  On
 * a machine with more than one CPU, a large tree is therefore transplanted
 * by two processes at once: the restorer and a copy of it forked once
 * every process of the tree exists (so the copy's pid cannot be one the
 * tree needs), each taking every other process.
 *
 * Each seizes its own processes (a tracer is one thread: the restorer
 * seizes its share when they report ready, the copy seizes the rest), and
 * each releases them, only once both are done.  A process's transplant
 * must then not depend on another's: stopped processes, stopped again
 * with their parents' help at the end (stop.c), stay the restorer's with
 * those parents, and shared memory is filled by the restorer before the
 * copy is forked.
 *
 * The copy dies with the restorer (PR_SET_PDEATHSIG), and its processes
 * with it (PTRACE_O_EXITKILL); a failure on either side kills the tree. */
#include "restore/run.h"
#include "os/cpus.h"
#include "os/log.h"

#include <errno.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

/* Below this, forking the copy costs more than it saves. */
#ifndef SECOND_MIN_TASKS
#define SECOND_MIN_TASKS 32
#endif

struct second_msg {
	int ok;
	char error[1024];
};

/* A stopped process is stopped again, with its parent's help, by the
 * restorer once every process is ready (stop.c): both stay the
 * restorer's. */
static bool stays_with_restorer(const struct restore_task *t)
{
	if (t->core->stopped)
		return true;
	for (size_t i = 0; i < t->n_children; i++)
		if (!t->children[i]->zombie && t->children[i]->core->stopped)
			return true;
	return false;
}

void second_assign(struct restore_ctx *ctx)
{
	size_t live = 0;

	for (size_t i = 0; i < ctx->n_tasks; i++)
		live += !ctx->tasks[i].zombie;
	if (live < SECOND_MIN_TASKS || cpus_affinity_count() < 2)
		return;
	live = 0;
	for (size_t i = 0; i < ctx->n_tasks; i++) {
		struct restore_task *t = &ctx->tasks[i];

		if (!t->zombie && !stays_with_restorer(t))
			t->transplanter = live++ % 2;
	}
}

static void send_msg(int fd, cr_error_t err)
{
	static struct second_msg msg;

	memset(&msg, 0, sizeof(msg));
	msg.ok = err == NULL;
	if (err != NULL)
		snprintf(msg.error, sizeof(msg.error), "%s", err->msg);
	if (write(fd, &msg, sizeof(msg)) != sizeof(msg))
		_exit(1);
}

static __attribute__((noreturn)) void second_main(struct restore_ctx *ctx, int fd, pid_t restorer)
{
	cr_error_t err = NULL;
	char go;

	prctl(PR_SET_NAME, "cr-transplant", 0, 0, 0);
	if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != restorer)
		_exit(1);
	if (transplant_share(ctx, 1, &err) < 0) {
		send_msg(fd, err);
		_exit(1);
	}
	send_msg(fd, NULL);
	if (read(fd, &go, 1) != 1)
		_exit(1);   /* the restorer gave up: the processes die with this one */
	if (transplant_release(ctx, 1, &err) < 0) {
		send_msg(fd, err);
		_exit(1);
	}
	send_msg(fd, NULL);
	fflush(NULL);
	_exit(0);
}

int second_start(struct restore_ctx *ctx, struct second *s, cr_error_t *err)
{
	pid_t restorer = getpid();
	size_t share = 0;
	int fds[2];

	*s = (struct second){ .pid = 0, .fd = -1 };
	for (size_t i = 0; i < ctx->n_tasks; i++)
		share += ctx->tasks[i].transplanter == 1;
	if (share == 0)
		return 0;
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, fds) < 0)
		return cr_error(err, errno, "socketpair for the second transplanter");
	fflush(NULL);
	s->pid = fork();
	if (s->pid == 0) {
		close(fds[0]);
		second_main(ctx, fds[1], restorer);
	}
	close(fds[1]);
	if (s->pid < 0) {
		close(fds[0]);
		return cr_error(err, errno, "fork the second transplanter");
	}
	s->fd = fds[0];
	pr_debug("the second transplanter, pid %d, takes %zu of the %zu processes", s->pid, share, ctx->n_tasks);
	return 0;
}

/* Its next message: 0 when it says it is done. */
static int recv_done(struct second *s, const char *what, cr_error_t *err)
{
	static struct second_msg msg;
	ssize_t n;

	do
		n = read(s->fd, &msg, sizeof(msg));
	while (n < 0 && errno == EINTR);
	if (n != (ssize_t)sizeof(msg))
		return cr_error(err, n < 0 ? errno : 0, "the second transplanter (pid %d) died before it %s", s->pid,
				what);
	if (!msg.ok) {
		msg.error[sizeof(msg.error) - 1] = '\0';
		return cr_error(err, 0, "%s", msg.error);
	}
	return 0;
}

int second_wait_ready(struct second *s, cr_error_t *err)
{
	if (s->pid <= 0)
		return 0;
	return recv_done(s, "transplanted its share", err);
}

int second_release(struct second *s, cr_error_t *err)
{
	int status;

	if (s->pid <= 0)
		return 0;
	if (write(s->fd, "g", 1) != 1)
		return cr_error(err, errno, "tell the second transplanter to let go");
	if (recv_done(s, "let go of its share", err) < 0)
		return -1;
	close(s->fd);
	s->fd = -1;
	while (waitpid(s->pid, &status, 0) < 0)
		if (errno != EINTR)
			return cr_error(err, errno, "wait for the second transplanter");
	s->pid = 0;
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		return cr_error(err, 0, "the second transplanter ended with status 0x%x", status);
	return 0;
}

void second_kill(struct second *s)
{
	if (s->fd >= 0)
		close(s->fd);
	if (s->pid > 0) {
		kill(s->pid, SIGKILL);
		while (waitpid(s->pid, NULL, 0) < 0 && errno == EINTR)
			;
	}
	*s = (struct second){ .pid = 0, .fd = -1 };
}
