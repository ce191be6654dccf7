/* regs_fixup_restart: how a system call the freeze interrupted ends in
 * the restored process (or in one that goes on running). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <string.h>

#include "os/regs.h"

#define RIP 0x401002u

static struct user_regs_struct interrupted(long nr, long ret, uint64_t rdx)
{
	struct user_regs_struct r;

	memset(&r, 0, sizeof(r));
	r.orig_rax = (uint64_t)nr;
	r.rax = (uint64_t)ret;
	r.rdx = rdx;
	r.rip = RIP;
	return r;
}

static void restartblock_becomes_eintr(void **state)
{
	struct user_regs_struct r = interrupted(35 /* nanosleep */, -516, 0);

	(void)state;
	regs_fixup_restart(&r, RESTART_RESTORED);
	assert_int_equal((long)r.rax, -EINTR);
	assert_int_equal(r.rip, RIP);
}

static void endless_poll_is_made_again(void **state)
{
	struct user_regs_struct r = interrupted(7 /* poll */, -516, (uint64_t)-1);

	(void)state;
	regs_fixup_restart(&r, RESTART_RESTORED);
	assert_int_equal(r.rax, 7);
	assert_int_equal(r.rip, RIP - 2);
}

static void poll_with_timeout_becomes_eintr(void **state)
{
	struct user_regs_struct r = interrupted(7 /* poll */, -516, 1000);

	(void)state;
	regs_fixup_restart(&r, RESTART_RESTORED);
	assert_int_equal((long)r.rax, -EINTR);
	assert_int_equal(r.rip, RIP);
}

static void ppoll_without_timeout_is_made_again(void **state)
{
	struct user_regs_struct r = interrupted(271 /* ppoll */, -516, 0);

	(void)state;
	regs_fixup_restart(&r, RESTART_RESTORED);
	assert_int_equal(r.rax, 271);
	assert_int_equal(r.rip, RIP - 2);
}

static void live_task_resumes_restart_block(void **state)
{
	struct user_regs_struct r = interrupted(7 /* poll */, -516, 1000);

	(void)state;
	regs_fixup_restart(&r, RESTART_UNSIGNALLED);
	assert_int_equal(r.rax, 219 /* restart_syscall */);
	assert_int_equal(r.rip, RIP - 2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(restartblock_becomes_eintr),
		cmocka_unit_test(endless_poll_is_made_again),
		cmocka_unit_test(poll_with_timeout_becomes_eintr),
		cmocka_unit_test(ppoll_without_timeout_is_made_again),
		cmocka_unit_test(live_task_resumes_restart_block),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
