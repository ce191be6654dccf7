#include "os/cpus.h"
#include "os/util.h"

#include <sched.h>

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>

/* One "N" or "N-M" of a list; *p is left after it. */
static int parse_range(const char **p, unsigned long *lo, unsigned long *hi)
{
	char *end;

	if (!isdigit((unsigned char)**p))
		return -1;
	*lo = *hi = strtoul(*p, &end, 10);
	if (*end == '-') {
		if (!isdigit((unsigned char)end[1]))
			return -1;
		*hi = strtoul(end + 1, &end, 10);
	}
	*p = end;
	return *hi < *lo ? -1 : 0;
}

int cpus_parse(const char *text, struct cpu_set_cr *out, cr_error_t *err)
{
	const char *p = text;

	memset(out, 0, sizeof(*out));
	while (*p == ' ' || *p == '\n')
		p++;
	while (*p != '\0' && *p != '\n') {
		unsigned long lo, hi;

		if (parse_range(&p, &lo, &hi) < 0 || (*p != ',' && *p != '\n' && *p != '\0'))
			return cr_error(err, 0, "malformed CPU list '%.40s'", text);
		for (unsigned long c = lo; c <= hi && c < CR_CPUS_MAX; c++)
			cpus_add(out, (unsigned)c);
		if (*p == ',')
			p++;
	}
	return 0;
}

static int read_list(const char *path, struct cpu_set_cr *out, cr_error_t *err)
{
	cleanup_free char *text = NULL;

	if (read_whole_file_at(AT_FDCWD, path, &text, NULL, err) < 0)
		return -1;
	if (cpus_parse(text, out, err) < 0)
		return cr_error_wrap(err, "%s", path);
	return 0;
}

/* The effective CPUs of this process's cpuset (cgroup v1 or v2); *found
 * is false when no cpuset controller is mounted, or the kernel has none
 * (no CONFIG_CPUSETS: no /proc/self/cpuset). */
static int cpuset_cpus(struct cpu_set_cr *out, bool *found, cr_error_t *err)
{
	static const char *const forms[] = { "/sys/fs/cgroup/cpuset%s/cpuset.effective_cpus",
					     "/sys/fs/cgroup%s/cpuset.cpus.effective" };
	cleanup_free char *cg = NULL;
	char path[4096];

	*found = false;
	if (access("/proc/self/cpuset", F_OK) < 0 && errno == ENOENT)
		return 0;
	if (read_whole_file_at(AT_FDCWD, "/proc/self/cpuset", &cg, NULL, err) < 0)
		return -1;
	cg[strcspn(cg, "\n")] = '\0';
	if (strcmp(cg, "/") == 0)
		cg[0] = '\0';
	for (size_t i = 0; i < ARRAY_SIZE(forms); i++) {
		snprintf(path, sizeof(path), forms[i], cg);
		if (access(path, R_OK) == 0) {
			*found = true;
			return read_list(path, out, err);
		}
	}
	return 0;
}

int cpus_usable(struct cpu_set_cr *out, cr_error_t *err)
{
	struct cpu_set_cr set;
	bool found;

	if (read_list("/sys/devices/system/cpu/online", out, err) < 0 || cpuset_cpus(&set, &found, err) < 0)
		return -1;
	for (size_t i = 0; found && i < ARRAY_SIZE(out->bits); i++)
		out->bits[i] &= set.bits[i];
	return 0;
}

int cpus_affinity_count(void)
{
	cpu_set_t set;

	return sched_getaffinity(0, sizeof(set), &set) < 0 ? 1 : CPU_COUNT(&set);
}
