/* The controlling terminal (a kind of state, state_ctty): what the fd
 * kinds and the restore driver ask of it. */
#ifndef CR_CTTY_H
#define CR_CTTY_H

#include <stdbool.h>
#include <sys/types.h>

#include "os/arena.h"
#include "os/error.h"
#include "state/task.h"

/* A terminal's settings and window size, read through fd into the arena;
 * set through fd (either may be NULL); checked in an image (what names it). */
int ctty_read_settings(struct arena *arena, int fd, TermiosEntry **tio, WinsizeEntry **ws, cr_error_t *err);
int ctty_set_settings(int fd, const TermiosEntry *tio, const WinsizeEntry *ws, cr_error_t *err);
int ctty_check_settings(const TermiosEntry *tio, const char *what, cr_error_t *err);

/* /proc/PID/stat's tty_nr as a dev_t. */
dev_t ctty_dev(int tty_nr);
/* Dump: the shell job's terminal, the root's controlling terminal; 0 if
 * it has none. */
dev_t ctty_shell_terminal(const struct dump_ctx *ctx);
/* Dump, from the freeze, just before cr stops t (its shell would take the
 * terminal back then): its controlling terminal, foreground group and,
 * for the root of a shell job, the terminal's settings. */
int ctty_before_hold(struct dump_ctx *ctx, struct dump_task *t, cr_error_t *err);
/* Restore, in a process that leads its session (setsid done), before it
 * forks the others of the session: its controlling terminal, when it is a
 * pty pair of the dump (made by then: by the process or an ancestor,
 * before they fork), which its children inherit. */
int ctty_take(const struct restore_ctx *ctx, const struct restore_task *t, cr_error_t *err);
/* Restore, once every process runs: the job's foreground group redraws
 * on the new terminal (SIGWINCH). */
void ctty_released(const struct restore_ctx *ctx);
/* Restore: cr takes its terminal back from the job (a failed restore, or
 * the job is over), and with settings its own termios too. */
void ctty_give_back(const struct restore_ctx *ctx, bool settings);
/* Restore, waiting for the job: its root stopped (^Z): cr gives the
 * terminal back and stops too, so that its shell sees the job stopped;
 * continued, it hands the terminal over again and continues the job. */
void ctty_job_stopped(const struct restore_ctx *ctx);

#endif
