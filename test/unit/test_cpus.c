/* Tests for CPU lists (os/cpus.c): the kernel's list format, malformed
 * lists, and the CPUs this machine offers. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <sched.h>
#include <string.h>

#include "asserts.h"
#include "os/cpus.h"

static unsigned count(const struct cpu_set_cr *s)
{
	unsigned n = 0;

	for (unsigned cpu = 0; cpu < CR_CPUS_MAX; cpu++)
		n += cpus_has(s, cpu);
	return n;
}

static void test_parse_lists(void **state)
{
	struct cpu_set_cr s;
	cr_error_t err = NULL;

	(void)state;
	assert_ok(cpus_parse("0-3,8,10-11\n", &s, &err), &err);
	assert_int_equal(count(&s), 7);
	assert_true(cpus_has(&s, 0) && cpus_has(&s, 3) && cpus_has(&s, 8) && cpus_has(&s, 11));
	assert_false(cpus_has(&s, 4) || cpus_has(&s, 9) || cpus_has(&s, 12));
	assert_ok(cpus_parse("1", &s, &err), &err);
	assert_int_equal(count(&s), 1);
	assert_true(cpus_has(&s, 1));
	/* An empty cpuset writes an empty line. */
	assert_ok(cpus_parse("\n", &s, &err), &err);
	assert_int_equal(count(&s), 0);
	/* CPUs beyond what cr handles are left out, not wrapped around. */
	assert_ok(cpus_parse("1534-1600", &s, &err), &err);
	assert_int_equal(count(&s), 2);
	assert_false(cpus_has(&s, 1536));
}

static void test_parse_refuses_malformed(void **state)
{
	static const char *const bad[] = { "a", "1-", "3-1", "1,,2", "1 2", "-1", "1-2-3", "0x3" };
	struct cpu_set_cr s;
	cr_error_t err = NULL;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(cpus_parse(bad[i], &s, &err), -1);
		assert_err_has(&err, "malformed CPU list", NULL);
	}
}

/* Whatever this process may run on, a restore may use. */
static void test_usable_holds_our_affinity(void **state)
{
	struct cpu_set_cr usable;
	cpu_set_t mine;
	cr_error_t err = NULL;

	(void)state;
	assert_ok(cpus_usable(&usable, &err), &err);
	assert_int_equal(sched_getaffinity(0, sizeof(mine), &mine), 0);
	for (unsigned cpu = 0; cpu < CPU_SETSIZE; cpu++)
		if (CPU_ISSET(cpu, &mine))
			assert_true(cpus_has(&usable, cpu));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_lists),
		cmocka_unit_test(test_parse_refuses_malformed),
		cmocka_unit_test(test_usable_holds_our_affinity),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
