/* Keyrings a thread holds of its own: a process keyring or a thread
 * keyring (both live in each thread's credentials).  cr does not dump
 * keys, and a restored thread has neither, so such a process would come
 * back without its keys (a Kerberos ticket in a KEYRING cache, an fscrypt
 * or ecryptfs key).  Refused at dump, naming the keyring.
 *
 * Asked by injection in every thread (only a thread itself names its
 * keyrings: KEYCTL_GET_KEYRING_ID without creating one: ENOKEY is none).
 * Not asked: the session keyring.  Asking for it makes the kernel give a
 * thread that has none the user's session keyring (install_session_keyring
 * in lookup_user_key), which would change the dumped process; so a
 * session keyring of its own (`keyctl session`, pam_keyinit) is not seen,
 * and a restored process has cr restore's. */
#include "state/state.h"

#include <errno.h>
#include <linux/keyctl.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

static void ask_thread(struct inject_batch *b)
{
	inject_batch_try(b, "read the process keyring id", SYS_keyctl, KEYCTL_GET_KEYRING_ID,
			 (uint64_t)(int64_t)KEY_SPEC_PROCESS_KEYRING, 0, 0, 0, 0);
	inject_batch_try(b, "read the thread keyring id", SYS_keyctl, KEYCTL_GET_KEYRING_ID,
			 (uint64_t)(int64_t)KEY_SPEC_THREAD_KEYRING, 0, 0, 0, 0);
}

static void keyrings_ask(struct dump_ctx *ctx, struct dump_task *t)
{
	(void)ctx;
	ask_thread(&t->asked);
}

/* id: what KEYCTL_GET_KEYRING_ID gave for what ("a process keyring"). */
static int check_one(const struct dump_task *t, pid_t tid, const char *what, int64_t id, cr_error_t *err)
{
	if (id > 0)
		return cr_error(err, 0, "pid %d thread %d: %s (serial %lld): unsupported (cr does not dump keys)",
				t->pid, tid, what, (long long)id);
	if (id != -ENOKEY && id != -ENOSYS)
		return cr_error(err, (int)-id, "pid %d thread %d: whether it has %s", t->pid, tid, what);
	return 0;
}

static int check_thread(const struct dump_task *t, pid_t tid, const struct inject_batch *b, size_t first,
			cr_error_t *err)
{
	if (check_one(t, tid, "a process keyring", inject_batch_ret(b, first), err) < 0 ||
	    check_one(t, tid, "a thread keyring", inject_batch_ret(b, first + 1), err) < 0)
		return -1;
	return 0;
}

static int keyrings_answered(struct dump_ctx *ctx, struct dump_task *t, size_t first, cr_error_t *err)
{
	(void)ctx;
	return check_thread(t, t->pid, &t->asked, first, err);
}

static void keyrings_ask_thread(struct dump_ctx *ctx, struct dump_task *t, struct dump_thread *th,
				struct inject_batch *b)
{
	(void)ctx;
	(void)t;
	(void)th;
	ask_thread(b);
}

static int keyrings_answered_thread(struct dump_ctx *ctx, struct dump_task *t, struct dump_thread *th,
				    const struct inject_batch *b, size_t first, cr_error_t *err)
{
	(void)ctx;
	return check_thread(t, th->tid, b, first, err);
}

const struct state_kind state_keyrings = {
	.name = "keyrings",
	.ask = keyrings_ask,
	.answered = keyrings_answered,
	.ask_thread = keyrings_ask_thread,
	.answered_thread = keyrings_answered_thread,
};
