#include "net/netns_sysctl.h"
#include "os/log.h"
#include "os/proc.h"
#include "os/util.h"
#include "os/xalloc.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <string.h>
#include <sys/stat.h>

#define VALUE_MAX 4096

static void add(struct sysctl_set *s, const char *name, const char *value)
{
	if (s->n == s->cap) {
		s->cap = s->cap ? s->cap * 2 : 512;
		s->name = xrealloc(s->name, s->cap * sizeof(*s->name));
		s->value = xrealloc(s->value, s->cap * sizeof(*s->value));
	}
	s->name[s->n] = xstrdup(name);
	s->value[s->n++] = xstrdup(value);
}

void sysctls_free(struct sysctl_set *s)
{
	for (size_t i = 0; i < s->n; i++) {
		free(s->name[i]);
		free(s->value[i]);
	}
	free(s->name);
	free(s->value);
	*s = (struct sysctl_set){ 0 };
}

/* The file's text without its last newline; false if it cannot be read
 * (stable_secret before one is set, ...). */
static bool read_value(int dirfd, const char *file, char *buf, size_t size)
{
	cleanup_close int fd = openat(dirfd, file, O_RDONLY | O_CLOEXEC);
	ssize_t r;

	if (fd < 0)
		return false;
	r = read(fd, buf, size - 1);
	if (r < 0)
		return false;
	buf[r] = '\0';
	if (r > 0 && buf[r - 1] == '\n')
		buf[r - 1] = '\0';
	return true;
}

static int walk(struct sysctl_set *s, const char *dir, cr_error_t *err)
{
	char path[512], value[VALUE_MAX];
	cleanup_closedir DIR *d = opendir(dir);
	struct dirent *de;

	if (d == NULL) {
		if (errno == ENOENT)   /* no IPv6 in this kernel */
			return 0;
		return cr_error(err, errno, "opendir %s", dir);
	}
	while ((de = readdir(d)) != NULL) {
		struct stat st;

		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		if (fstatat(dirfd(d), de->d_name, &st, 0) < 0)
			continue;
		if (S_ISDIR(st.st_mode)) {
			if (walk(s, path, err) < 0)
				return -1;
		} else if ((st.st_mode & 0600) == 0600 && read_value(dirfd(d), de->d_name, value, sizeof(value))) {
			add(s, path + strlen("/proc/sys/"), value);
		}
	}
	return 0;
}

int sysctls_read(struct sysctl_set *s, cr_error_t *err)
{
	if (walk(s, "/proc/sys/net", err) < 0) {
		sysctls_free(s);
		return -1;
	}
	return 0;
}

static const char *get(const struct sysctl_set *s, const char *name)
{
	for (size_t i = 0; i < s->n; i++)
		if (strcmp(s->name[i], name) == 0)
			return s->value[i];
	return NULL;
}

/* The same value, whitespace apart ("4096\t131072" is "4096 131072"). */
static bool same_value(const char *a, const char *b)
{
	for (;;) {
		while (isspace((unsigned char)*a))
			a++;
		while (isspace((unsigned char)*b))
			b++;
		if (*a == '\0' || *b == '\0')
			return *a == *b;
		while (*a && !isspace((unsigned char)*a) && *a == *b)
			a++, b++;
		if ((*a && !isspace((unsigned char)*a)) || (*b && !isspace((unsigned char)*b)))
			return false;
	}
}

/* A device's entry (net/ipv4/conf/DEV/x, .../neigh/DEV/x): its position
 * after "net/ipv4/", the length of "conf/" or "neigh/", and of DEV. */
static bool device_entry(const char *name, size_t *prefix, size_t *dev_len)
{
	const char *rest = name + strlen("net/ipv4/"), *slash;

	if (strncmp(rest, "conf/", 5) == 0)
		*prefix = (size_t)(rest - name) + 5;
	else if (strncmp(rest, "neigh/", 6) == 0)
		*prefix = (size_t)(rest - name) + 6;
	else
		return false;
	slash = strchr(name + *prefix, '/');
	if (slash == NULL)
		return false;
	*dev_len = (size_t)(slash - (name + *prefix));
	return true;
}

/* Where a fresh namespace keeps what a new device would start from: the
 * same name, or the device's entry under "default" (conf/), or lo's
 * (neigh/: a namespace but the first has no neigh/default). */
static void fresh_name(const struct sysctl_set *fresh, const char *name, char *buf, size_t size)
{
	size_t prefix, dev_len;

	snprintf(buf, size, "%s", name);
	if (get(fresh, name) != NULL || !device_entry(name, &prefix, &dev_len))
		return;
	snprintf(buf, size, "%.*sdefault%s", (int)prefix, name, name + prefix + dev_len);
	if (get(fresh, buf) == NULL)
		snprintf(buf, size, "%.*slo%s", (int)prefix, name, name + prefix + dev_len);
}

/* 0: global, 1: all, 2: default, 3: a device's (the order of the writes:
 * a write to ip_forward or all/ reaches every device). */
static int rank(const char *name)
{
	size_t prefix, dev_len;

	if (!device_entry(name, &prefix, &dev_len))
		return 0;
	if (dev_len == 3 && strncmp(name + prefix, "all", 3) == 0)
		return 1;
	if (dev_len == 7 && strncmp(name + prefix, "default", 7) == 0)
		return 2;
	return 3;
}

/* Written into the fresh namespace, the value must read back the same. */
static int try_value(int sys, const char *name, const char *value, cr_error_t *err)
{
	char back[VALUE_MAX];

	if (proc_write_sysctl(name, value, err) < 0)
		return cr_error_wrap(err, "sysctl %s = %s: a new network namespace does not take it: unsupported", name,
				     value);
	if (!read_value(sys, name, back, sizeof(back)) || !same_value(back, value))
		return cr_error(err, 0, "sysctl %s = %s: a new network namespace reads it back as '%s': unsupported",
				name, value, back);
	return 0;
}

bool sysctl_host_given(const char *name)
{
	static const char *const dirs[] = { "all/", "default/", "lo/" };
	const char *rest;

	if (strncmp(name, "net/ipv4/conf/", 14) != 0 && strncmp(name, "net/ipv6/conf/", 14) != 0)
		return false;
	rest = name + 14;
	for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++)
		if (strncmp(rest, dirs[i], strlen(dirs[i])) == 0)
			return true;
	return false;
}

static NetSysctl *new_sysctl(struct arena *a, const char *name, const char *value)
{
	NetSysctl *s = arena_new(a, NetSysctl);

	net_sysctl__init(s);
	s->name = arena_strdup(a, name);
	s->value = arena_strdup(a, value);
	return s;
}

/* The fresh namespace's host-given values, all first, then default, then
 * lo (the order they are put back in). */
static void record_fresh_conf(struct arena *a, const struct sysctl_set *fresh, NetNs *n)
{
	n->fresh_conf = arena_array(a, NetSysctl *, fresh->n ? fresh->n : 1);
	for (int r = 1; r < 4; r++)
		for (size_t i = 0; i < fresh->n; i++)
			if (sysctl_host_given(fresh->name[i]) && rank(fresh->name[i]) == r)
				n->fresh_conf[n->n_fresh_conf++] = new_sysctl(a, fresh->name[i], fresh->value[i]);
}

int sysctls_record(struct arena *a, const struct sysctl_set *cur, const struct sysctl_set *fresh, NetNs *n,
		   cr_error_t *err)
{
	cleanup_free size_t *pick = xcalloc(cur->n + 1, sizeof(*pick));
	char base[512];
	cleanup_close int sys = open("/proc/sys", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	size_t k = 0;

	if (sys < 0)
		return cr_error(err, errno, "open /proc/sys");
	for (int r = 0; r < 4; r++)
		for (size_t i = 0; i < cur->n; i++) {
			const char *was;

			if (rank(cur->name[i]) != r)
				continue;
			fresh_name(fresh, cur->name[i], base, sizeof(base));
			was = get(fresh, base);
			if (was != NULL && same_value(was, cur->value[i]))
				continue;
			if (was != NULL && try_value(sys, base, cur->value[i], err) < 0)
				return -1;
			pick[k++] = i;
		}
	n->sysctls = arena_array(a, NetSysctl *, k ? k : 1);
	for (size_t j = 0; j < k; j++)
		n->sysctls[n->n_sysctls++] = new_sysctl(a, cur->name[pick[j]], cur->value[pick[j]]);
	record_fresh_conf(a, fresh, n);
	return 0;
}

bool sysctl_name_ok(const char *name)
{
	const char *p;

	if (strncmp(name, "net/", 4) != 0)
		return false;
	for (p = name; *p; p++)
		if ((p == name || p[-1] == '/') && p[0] == '.')
			return false;
	return p[-1] != '/';
}

static bool recorded(const NetNs *n, const char *name)
{
	for (size_t i = 0; i < n->n_sysctls; i++)
		if (strcmp(n->sysctls[i]->name, name) == 0)
			return true;
	return false;
}

/* name (not one the dump recorded) had value at dump: written unless it
 * reads so already. */
static int put_back(const NetNs *n, const char *name, const char *value, cr_error_t *err)
{
	char path[512], now[VALUE_MAX];

	snprintf(path, sizeof(path), "/proc/sys/%s", name);
	if (recorded(n, name) || (read_value(AT_FDCWD, path, now, sizeof(now)) && same_value(now, value)))
		return 0;
	if (proc_write_sysctl(name, value, err) < 0)
		return cr_error_wrap(err, "put back the value a fresh namespace had at dump");
	pr_debug("sysctl %s = %s (the host gives new namespaces another)", name, value);
	return 0;
}

/* f, a default/ entry that the host now gives another value: every
 * device's own entry the dump did not record had f's value. */
static int put_back_devices(const NetNs *n, const NetSysctl *f, cr_error_t *err)
{
	const char *dflt = strstr(f->name, "/default/");
	char dir[64], name[512];
	cleanup_closedir DIR *d = NULL;
	struct dirent *de;

	snprintf(dir, sizeof(dir), "/proc/sys/%.*s", (int)(dflt - f->name), f->name);
	if ((d = opendir(dir)) == NULL)
		return cr_error(err, errno, "opendir %s", dir);
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.' || strcmp(de->d_name, "all") == 0 || strcmp(de->d_name, "default") == 0 ||
		    strcmp(de->d_name, "lo") == 0)
			continue;
		snprintf(name, sizeof(name), "%.*s/%s/%s", (int)(dflt - f->name), f->name, de->d_name,
			 dflt + strlen("/default/"));
		if (put_back(n, name, f->value, err) < 0)
			return -1;
	}
	return 0;
}

/* What the new namespace took from the host and differs from what the
 * dump's fresh namespace had (the host's net.ipv4.conf.default.rp_filter
 * changed since, or another host's): put back to the dumped values. */
static int fix_host_given(const NetNs *n, cr_error_t *err)
{
	char path[512], now[VALUE_MAX];

	for (size_t i = 0; i < n->n_fresh_conf; i++) {
		const NetSysctl *f = n->fresh_conf[i];

		snprintf(path, sizeof(path), "/proc/sys/%s", f->name);
		if (!read_value(AT_FDCWD, path, now, sizeof(now)) || same_value(now, f->value))
			continue;
		if (put_back(n, f->name, f->value, err) < 0 ||
		    (strstr(f->name, "/default/") != NULL && put_back_devices(n, f, err) < 0))
			return cr_error_wrap(err, "sysctl %s", f->name);
	}
	return 0;
}

int sysctls_apply(const NetNs *n, cr_error_t *err)
{
	char path[512], now[VALUE_MAX];

	if (fix_host_given(n, err) < 0)
		return -1;

	for (size_t i = 0; i < n->n_sysctls; i++) {
		const NetSysctl *s = n->sysctls[i];

		snprintf(path, sizeof(path), "/proc/sys/%s", s->name);
		if (read_value(AT_FDCWD, path, now, sizeof(now)) && same_value(now, s->value))
			continue;
		if (proc_write_sysctl(s->name, s->value, err) < 0)
			return -1;
		pr_debug("sysctl %s = %s", s->name, s->value);
	}
	return 0;
}
