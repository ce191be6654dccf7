#include "os/caps.h"

#include <errno.h>
#include <linux/capability.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef CAP_CHECKPOINT_RESTORE
#define CAP_CHECKPOINT_RESTORE 40
#endif

static bool has(const struct __user_cap_data_struct data[2], int cap)
{
	return (data[cap / 32].effective >> (cap % 32)) & 1;
}

int caps_require(const char *what, cr_error_t *err)
{
	struct __user_cap_header_struct hdr = { .version = _LINUX_CAPABILITY_VERSION_3, .pid = 0 };
	struct __user_cap_data_struct data[2] = { { 0 } };
	bool ptrace_ok, ns_ok;

	if (syscall(SYS_capget, &hdr, data) < 0)
		return cr_error(err, errno, "read this process's capabilities");
	ptrace_ok = has(data, CAP_SYS_PTRACE);
	ns_ok = has(data, CAP_CHECKPOINT_RESTORE) || has(data, CAP_SYS_ADMIN);
	if (ptrace_ok && ns_ok)
		return 0;
	return cr_error(err, EPERM, "cr %s needs %s%s%s (run it as root)", what,
			ptrace_ok ? "" : "CAP_SYS_PTRACE", ptrace_ok || ns_ok ? "" : " and ",
			ns_ok ? "" : "CAP_CHECKPOINT_RESTORE or CAP_SYS_ADMIN");
}

bool caps_have(int cap)
{
	struct __user_cap_header_struct hdr = { .version = _LINUX_CAPABILITY_VERSION_3, .pid = 0 };
	struct __user_cap_data_struct data[2] = { { 0 } };

	return syscall(SYS_capget, &hdr, data) == 0 && has(data, cap);
}

int caps_drop_all(void)
{
	struct __user_cap_header_struct hdr = { .version = _LINUX_CAPABILITY_VERSION_3, .pid = 0 };
	struct __user_cap_data_struct data[2] = { { 0 } };

	return (int)syscall(SYS_capset, &hdr, data);
}
