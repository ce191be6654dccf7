/* Sets of CPUs: the kernel's list format ("0-3,8,10-11") and the CPUs a
 * process of this machine may be placed on. */
#ifndef CR_CPUS_H
#define CR_CPUS_H

#include <stdbool.h>
#include <stdint.h>

#include "os/error.h"

/* The highest CPU number cr handles, plus one: an affinity mask of this
 * many bits fits the slot the restore writes it to. */
#define CR_CPUS_MAX 1536

struct cpu_set_cr {
	uint64_t bits[CR_CPUS_MAX / 64];
};

static inline bool cpus_has(const struct cpu_set_cr *s, unsigned cpu)
{
	return cpu < CR_CPUS_MAX && (s->bits[cpu / 64] >> (cpu % 64)) & 1;
}

static inline void cpus_add(struct cpu_set_cr *s, unsigned cpu)
{
	if (cpu < CR_CPUS_MAX)
		s->bits[cpu / 64] |= 1ULL << (cpu % 64);
}

/* How many CPUs the caller may run on (its affinity), at least 1. */
int cpus_affinity_count(void);

/* Parses a CPU list as the kernel writes it (sysfs, cpuset files); CPUs at
 * or above CR_CPUS_MAX are left out.  An empty list is an empty set. */
int cpus_parse(const char *text, struct cpu_set_cr *out, cr_error_t *err);

/* The CPUs this process, and a process it creates, may be placed on: the
 * online ones, within its cpuset when the cpuset controller is mounted. */
int cpus_usable(struct cpu_set_cr *out, cr_error_t *err);

#endif
