/* The sysctls of a network namespace (/proc/sys/net: ipv4, ipv6, core,
 * unix, netfilter, ...): /proc/sys shows those of the reader's namespace,
 * so these run in it. */
#ifndef CR_NET_NETNS_SYSCTL_H
#define CR_NET_NETNS_SYSCTL_H

#include "netns.pb-c.h"
#include "os/arena.h"
#include "os/error.h"

/* Every sysctl that can be read and written, by name ("net/ipv4/..."). */
struct sysctl_set {
	char **name, **value;
	size_t n, cap;
};

int sysctls_read(struct sysctl_set *s, cr_error_t *err);
void sysctls_free(struct sysctl_set *s);

/* In a fresh namespace, whose values are fresh: puts into n those of cur
 * that differ, in the order they are written back, each written here
 * first to see that a new namespace takes it. */
int sysctls_record(struct arena *a, const struct sysctl_set *cur, const struct sysctl_set *fresh, NetNs *n,
		   cr_error_t *err);

/* In the restored namespace: writes each one that differs from what it
 * reads; first, what the new namespace took from the host and differs
 * from what the dump's fresh namespace had, for the sysctls the dump did
 * not record (they had that value). */
int sysctls_apply(const NetNs *n, cr_error_t *err);

/* Under net/ipv4/conf/ or net/ipv6/conf/, of all, default or lo: what a
 * new namespace takes from the host's at its creation (the dump keeps a
 * fresh namespace's in fresh_conf). */
bool sysctl_host_given(const char *name);

/* A name cr writes: below net/, no "." or ".." part. */
bool sysctl_name_ok(const char *name);

#endif
