/*
 * w_membarrier STATE_DIR
 *
 * Registers for the global and the private expedited membarrier commands,
 * which the kernel keeps for the address space; after the trigger the
 * registrations must be the same and a private expedited membarrier must
 * work (without the registration it fails with EPERM).
 */
#include "wl.h"

#include <errno.h>
#include <linux/membarrier.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef MEMBARRIER_CMD_GET_REGISTRATIONS
#define MEMBARRIER_CMD_GET_REGISTRATIONS (1 << 9)
#endif

static long membarrier(int cmd)
{
	return syscall(SYS_membarrier, cmd, 0, 0);
}

int main(int argc, char **argv)
{
	long before, after;

	wl_init(argc, argv);
	if (membarrier(MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED) < 0 ||
	    membarrier(MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED) < 0)
		wl_fatal("membarrier register: %s", strerror(errno));
	before = membarrier(MEMBARRIER_CMD_GET_REGISTRATIONS);
	wl_ready();
	wl_wait_trigger();
	after = membarrier(MEMBARRIER_CMD_GET_REGISTRATIONS);
	wl_check(after == before, "membarrier registrations 0x%lx, were 0x%lx", after, before);
	wl_check(membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED) == 0, "private expedited membarrier: %s",
		 strerror(errno));
	wl_finish();
}
