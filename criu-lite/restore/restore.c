/* cr restore: load and verify every image, let each kind of state check
 * its values and plan, create the tree with its pids, transplant each
 * process, and let them all run.  Everything that can refuse does so
 * before the first process exists; a failure after that kills every
 * process the restore created (cr is their subreaper meanwhile). */
#include "fd/fdkind.h"
#include "fd/tcp_stream.h"
#include "img/dir.h"
#include "restore/restore.h"
#include "restore/run.h"
#include "os/log.h"
#include "state/ctty.h"
#include "state/shmem.h"
#include "state/state.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>

/* Every kind checks every value of every process. */
static int validate_all(const struct restore_ctx *ctx, cr_error_t *err)
{
	for (size_t i = 0; i < ctx->n_tasks; i++)
		if (state_validate(ctx, &ctx->tasks[i], err) < 0)
			return -1;
	return 0;
}

/* The stash and reserved fds sit above every dumped fd. */
static void raise_nofile(void)
{
	struct rlimit r;

	if (getrlimit(RLIMIT_NOFILE, &r) == 0 && r.rlim_cur < r.rlim_max) {
		r.rlim_cur = r.rlim_max;
		setrlimit(RLIMIT_NOFILE, &r);
	}
}

/* Kills every process this restore created and reaps them. */
static void kill_created(struct restore_run *run, pid_t root)
{
	int status;

	for (size_t i = 0; i < run->ctx.n_tasks; i++) {
		pid_t pid = run->ctx.tasks[i].host_pid ? run->ctx.tasks[i].host_pid : run->ctx.tasks[i].pid;

		if (pid > 0 && pid != root)
			kill(pid, SIGKILL);
	}
	if (root > 0)
		kill(root, SIGKILL);
	while (waitpid(-1, &status, __WALL) > 0 || errno == EINTR)
		;
}

/* Waits for the root to exit; with --shell-job, follows its stops too
 * (ctty.c), as a shell would. */
static int wait_exit(const struct restore_ctx *ctx, pid_t pid, int *status, cr_error_t *err)
{
	int flags = ctx->opts->shell_job ? WUNTRACED : 0;
	int st;

	for (;;) {
		if (waitpid(pid, &st, flags) < 0) {
			if (errno == EINTR)
				continue;
			return cr_error(err, errno, "wait for pid %d", pid);
		}
		if (!WIFSTOPPED(st))
			break;
		ctty_job_stopped(ctx);
	}
	ctty_give_back(ctx, false);
	*status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
	return 0;
}

/* Everything that can refuse the restore, before any process exists; each
 * step named in its error. */
static int prepare(struct restore_run *run, cr_error_t *err)
{
	if (restore_load(run, err) < 0)
		return cr_error_wrap(err, "load the images");
	if (validate_all(&run->ctx, err) < 0)
		return cr_error_wrap(err, "check the images");
	if (tree_check_host(run, err) < 0)
		return cr_error_wrap(err, "check this host");
	pr_debug("images loaded and checked");
	raise_nofile();
	if (restore_plan(&run->ctx, err) < 0)
		return cr_error_wrap(err, "plan");
	return 0;
}

static int restore_tree(struct restore_run *run, pid_t *root, cr_error_t *err)
{
	second_assign(&run->ctx);
	if (create_tree(run, root, err) < 0)
		return cr_error_wrap(err, "create the tree");
	pr_debug("all %zu processes are ready for the transplant", run->n_live);
	if (transplant_tree(&run->ctx, err) < 0)
		return cr_error_wrap(err, "transplant");
	shmem_transplanted(&run->ctx);
	return 0;
}

int cr_unlock(const struct restore_opts *given, cr_error_t *err)
{
	struct restore_opts o = *given, *opts = &o;
	struct restore_run run = { .ctx = { .opts = opts, .restorer_pgid = getpgrp() } };
	size_t deleted = 0;
	int ret = -1;

	o.lock_only = true;   /* the page data of rounds before it is not needed */
	run.ctx.dirfd = img_dir_open(opts->dir, false, err);
	if (run.ctx.dirfd >= 0 && restore_load(&run, err) == 0 && validate_all(&run.ctx, err) == 0)
		ret = tcp_stream_unlock_dump(&run.ctx, &deleted, err);
	if (ret == 0 && deleted == 0)
		printf("no nftables table of %s was there\n", opts->dir);
	restore_unload(&run);
	if (run.ctx.dirfd >= 0)
		close(run.ctx.dirfd);
	return ret < 0 ? cr_error_wrap(err, "unlock %s", opts->dir) : 0;
}

int cr_restore(const struct restore_opts *opts, enum pid_backend backend, int *status, cr_error_t *err)
{
	struct restore_run run = { .ctx = { .opts = opts, .restorer_pgid = getpgrp() }, .backend = backend };
	pid_t root = 0;
	int ret = -1;

	*status = 0;
	run.ctx.dirfd = img_dir_open(opts->dir, false, err);
	if (run.ctx.dirfd < 0)
		goto out;
	pr_debug("restore of %s starts", opts->dir);
	if (prepare(&run, err) < 0)
		goto out;
	prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
	if (restore_tree(&run, &root, err) < 0) {
		tcp_stream_relock();   /* before the kill: no peer may see the sockets close */
		kill_created(&run, root);
		ctty_give_back(&run.ctx, true);
		prctl(PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0);
		cr_error_wrap(err, "restore failed; nothing is left running");
		goto out;
	}
	prctl(PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0);
	pr_info("restored %zu processes, root pid %d", run.ctx.n_tasks, root);
	fdkind_released(&run.ctx);
	ctty_released(&run.ctx);
	ret = opts->detach ? 0 : wait_exit(&run.ctx, root, status, err);
out:
	restore_unload(&run);
	if (run.ctx.dirfd >= 0)
		close(run.ctx.dirfd);
	return ret;
}
