/* What a private mount namespace holds, dumped and made again (see
 * mntns.h; ns.c decides who makes the namespace and who enters it).
 *
 * Dump: /proc/PID/mountinfo of the namespace is compared with cr's own.
 * A mount at the same place, of the same file system and root, under the
 * same parent, is inherited: unshare(CLONE_NEWNS) copies it at restore,
 * and only its flags (ro, nosuid, ...) and propagation are set again.
 * Every other mount is made again: a proc (of the pid namespace of the
 * process that makes the namespace), a sysfs, a tmpfs with its files
 * (read here through /proc/PID/root: directories, files, symlinks,
 * FIFOs, socket files, hard links; at most MNTNS_TMPFS_MAX bytes), a bind
 * mount of a host path (a mount of a file system cr's namespace holds:
 * its source is the host path of its root, the same inode at restore), or
 * a bind mount of a part of a tmpfs or proc made before it (bind_of).
 * Any other file system mounted inside is refused by name, and so is a
 * mount of cr's that the namespace lacks, a root that is not cr's, and
 * propagation restore cannot make (peers inside the namespace, a new
 * mount that would propagate to the host, a changed mount of cr's that
 * another hides).
 *
 * Restore, in the process that made the namespace: bind sources are
 * opened first, in the fresh copy, by their host paths, and must be the
 * dumped inodes; the inherited mounts get their flags and propagation,
 * and mounts cr's namespace gained since the dump are taken away from the
 * copy; then the others are made in the dumped order, each given its
 * propagation at once (before anything is mounted on it).  No place is
 * reached through a symbolic link (see "in the process that made the
 * namespace" below). */
#include "state/mntns.h"
#include "fd/reopen.h"
#include "os/log.h"
#include "os/util.h"
#include "os/xalloc.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <sys/syscall.h>
#include <linux/openat2.h>
#include <search.h>
#include <unistd.h>

#define MOUNT_FLAGS (MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_NOATIME | MS_NODIRATIME | MS_RELATIME | \
		     MS_STRICTATIME)

/* ------------------------------------------------------ mountinfo lines */

struct mi {
	uint32_t id, parent;
	dev_t dev;
	char *root, *mountpoint, *fstype, *source, *super;
	uint32_t flags;
	uint32_t shared, master;   /* peer group ids, 0: none */
	bool unbindable;
	ssize_t up;                /* the parent's index in its table, -1: none */
	ssize_t match;             /* the host mount it is a copy of, -1: none */
	bool used;                 /* host table: matched already */
};

struct mi_table {
	struct mi *v;
	size_t n;
	char *text;
};

static void mi_free(struct mi_table *t)
{
	free(t->v);
	free(t->text);
	*t = (struct mi_table){ 0 };
}

/* Undoes mountinfo's octal escapes (\040 for a space) in place. */
static void unescape(char *s)
{
	char *o = s;

	for (; *s; s++) {
		if (s[0] == '\\' && s[1] >= '0' && s[1] <= '3' && s[2] >= '0' && s[2] <= '7' && s[3] >= '0' &&
		    s[3] <= '7') {
			*o++ = (char)((s[1] - '0') * 64 + (s[2] - '0') * 8 + (s[3] - '0'));
			s += 3;
		} else {
			*o++ = *s;
		}
	}
	*o = '\0';
}

static uint32_t opt_flags(const char *opts)
{
	static const struct { const char *name; uint32_t flag; } names[] = {
		{ "ro", MS_RDONLY }, { "nosuid", MS_NOSUID }, { "nodev", MS_NODEV }, { "noexec", MS_NOEXEC },
		{ "noatime", MS_NOATIME }, { "nodiratime", MS_NODIRATIME }, { "relatime", MS_RELATIME },
	};
	cleanup_free char *copy = xstrdup(opts);
	uint32_t flags = 0;
	char *save = NULL;

	for (char *o = strtok_r(copy, ",", &save); o; o = strtok_r(NULL, ",", &save))
		for (size_t i = 0; i < ARRAY_SIZE(names); i++)
			if (strcmp(o, names[i].name) == 0)
				flags |= names[i].flag;
	if (!(flags & (MS_NOATIME | MS_RELATIME)))
		flags |= MS_STRICTATIME;
	return flags;
}

static int parse_line(char *line, struct mi *m)
{
	char *f[6], *save = NULL, *tag;
	unsigned maj, min;

	for (int i = 0; i < 6; i++)
		if ((f[i] = strtok_r(i ? NULL : line, " ", &save)) == NULL)
			return -1;
	if (sscanf(f[0], "%" SCNu32, &m->id) != 1 || sscanf(f[1], "%" SCNu32, &m->parent) != 1 ||
	    sscanf(f[2], "%u:%u", &maj, &min) != 2)
		return -1;
	m->dev = makedev(maj, min);
	m->root = f[3];
	m->mountpoint = f[4];
	m->flags = opt_flags(f[5]);
	while ((tag = strtok_r(NULL, " ", &save)) != NULL && strcmp(tag, "-") != 0) {
		if (strncmp(tag, "shared:", 7) == 0)
			m->shared = (uint32_t)strtoul(tag + 7, NULL, 10);
		else if (strncmp(tag, "master:", 7) == 0)
			m->master = (uint32_t)strtoul(tag + 7, NULL, 10);
		else if (strcmp(tag, "unbindable") == 0)
			m->unbindable = true;
	}
	if (tag == NULL || (m->fstype = strtok_r(NULL, " ", &save)) == NULL ||
	    (m->source = strtok_r(NULL, " ", &save)) == NULL)
		return -1;
	m->super = strtok_r(NULL, " \n", &save);
	if (m->super == NULL)
		m->super = "";
	unescape(m->root);
	unescape(m->mountpoint);
	unescape(m->source);
	return 0;
}

static int read_table(const char *path, struct mi_table *t, cr_error_t *err)
{
	size_t len, cap = 0;
	char *line, *save = NULL;

	*t = (struct mi_table){ 0 };
	if (read_whole_file_at(AT_FDCWD, path, &t->text, &len, err) < 0)
		return -1;
	for (line = strtok_r(t->text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		if (t->n == cap) {
			cap = cap ? cap * 2 : 64;
			t->v = xreallocarray(t->v, cap, sizeof(*t->v));
		}
		t->v[t->n] = (struct mi){ .up = -1, .match = -1 };
		if (parse_line(line, &t->v[t->n]) < 0) {
			mi_free(t);
			return cr_error(err, 0, "%s: a line cr cannot read", path);
		}
		t->n++;
	}
	for (size_t i = 0; i < t->n; i++)
		for (size_t j = 0; j < t->n; j++)
			if (t->v[j].id == t->v[i].parent && j != i)
				t->v[i].up = (ssize_t)j;
	return 0;
}

/* ---------------------------------------------------------------- paths */

/* rest if path is prefix or below it ("/a" holds "/a" and "/a/b", not
 * "/ab"), else NULL; rest is "" or starts with '/'. */
static const char *below_path(const char *path, const char *prefix)
{
	size_t n = strcmp(prefix, "/") == 0 ? 0 : strlen(prefix);

	if (strncmp(path, prefix, n) != 0 || (path[n] != '\0' && path[n] != '/'))
		return NULL;
	return strcmp(path + n, "/") == 0 ? "" : path + n;
}

static int join(char *buf, size_t size, const char *a, const char *b)
{
	int n = snprintf(buf, size, "%s%s", strcmp(a, "/") == 0 && b[0] == '/' ? "" : a, b);

	if (n < 0 || (size_t)n >= size)
		return -1;
	if (buf[0] == '\0')
		snprintf(buf, size, "/");
	return 0;
}

const char *mntns_dump_view(pid_t pid, const char *path, char *buf, size_t size)
{
	char mine[64], theirs[64], link[64];
	ssize_t a, b;

	if (path[0] != '/')
		return path;
	snprintf(link, sizeof(link), "/proc/%d/ns/mnt", pid);
	a = readlink("/proc/self/ns/mnt", mine, sizeof(mine));
	b = readlink(link, theirs, sizeof(theirs));
	if (a < 0 || b < 0 || (a == b && memcmp(mine, theirs, (size_t)a) == 0))
		return path;
	if (snprintf(buf, size, "/proc/%d/root%s", pid, path) >= (int)size)
		return path;
	return buf;
}

/* The last of the first n mounts that path lies on, or NULL. */
static const MountEntry *mount_of(const MntNs *m, size_t n, const char *path, const char **rest)
{
	const MountEntry *found = NULL;

	for (size_t i = 0; i < n; i++) {
		const char *r = below_path(path, m->mounts[i]->mountpoint);

		if (r != NULL) {
			found = m->mounts[i];
			*rest = r;
		}
	}
	return found;
}

static int view_upto(const MntNs *m, size_t n, const char *path, char *buf, size_t size)
{
	const char *rest = "";
	const MountEntry *e = mount_of(m, n, path, &rest);

	if (e == NULL || e->how == MOUNT_HOW__MOUNT_INHERITED)
		return join(buf, size, path, "") < 0 ? 0 : 1;
	if (e->how == MOUNT_HOW__MOUNT_BIND && !e->has_bind_of)
		return join(buf, size, e->host_path, rest) < 0 ? 0 : 1;
	return 0;
}

int mntns_host_view(const MntNs *m, const char *path, char *buf, size_t size)
{
	return view_upto(m, m->n_mounts, path, buf, size);
}

/* ------------------------------------------------------------------ dump */

struct dump_state {
	struct arena *a;
	pid_t pid;
	struct mi_table host, ns;
	MntNs *out;
};

static int refuse(const struct mi *m, cr_error_t *err, const char *why)
{
	return cr_error(err, 0, "mount %u at %s (%s, source %s): %s", m->id, m->mountpoint, m->fstype, m->source, why);
}

/* The host mount ns[i] is a copy of: same place, file system, root and
 * parent (the namespace's root: cr's root). */
static void match_host(struct dump_state *s)
{
	for (size_t i = 0; i < s->ns.n; i++) {
		struct mi *m = &s->ns.v[i];
		ssize_t want_up = m->up < 0 ? -1 : s->ns.v[m->up].match;

		if (m->up >= 0 && want_up < 0)
			continue;
		for (size_t j = 0; j < s->host.n; j++) {
			struct mi *h = &s->host.v[j];

			if (!h->used && h->up == want_up && h->dev == m->dev && strcmp(h->mountpoint, m->mountpoint) == 0 &&
			    strcmp(h->root, m->root) == 0 && strcmp(h->fstype, m->fstype) == 0) {
				h->used = true;
				m->match = (ssize_t)j;
				break;
			}
		}
	}
}

static size_t peers_in(const struct mi_table *t, uint32_t group)
{
	size_t n = 0;

	for (size_t i = 0; i < t->n; i++)
		n += group != 0 && t->v[i].shared == group;
	return n;
}

static int propagation(const struct dump_state *s, const struct mi *m, uint32_t *out, cr_error_t *err)
{
	const struct mi *h = m->match >= 0 ? &s->host.v[m->match] : NULL;

	if (m->unbindable) {
		*out = MNTNS_UNBINDABLE;
	} else if (m->shared == 0 && m->master == 0) {
		*out = MNTNS_PRIVATE;
	} else if (h != NULL && h->shared == m->shared && h->master == m->master) {
		*out = MNTNS_SHARED_HOST;
	} else if (h != NULL && m->shared == 0 && m->master == h->shared) {
		*out = MNTNS_SLAVE_HOST;
	} else if (m->master == 0 && peers_in(&s->host, m->shared) == 0 && peers_in(&s->ns, m->shared) == 1) {
		*out = MNTNS_SHARED;
	} else {
		return refuse(m, err, m->master ? "a slave of a peer group other than the mount of cr's it is a copy "
					   "of: unsupported propagation" :
					   "peers with another mount of the namespace or of cr's: unsupported propagation");
	}
	return 0;
}

/* What a new tmpfs or proc is given: its super options but rw/ro (the
 * mount's flags say that) and the security label. */
static char *fs_options(struct arena *a, const char *super)
{
	cleanup_free char *copy = xstrdup(super), *out = xcalloc(1, strlen(super) + 1);
	char *save = NULL;

	for (char *o = strtok_r(copy, ",", &save); o; o = strtok_r(NULL, ",", &save)) {
		if (strcmp(o, "rw") == 0 || strcmp(o, "ro") == 0 || strcmp(o, "seclabel") == 0)
			continue;
		if (out[0])
			strcat(out, ",");
		strcat(out, o);
	}
	return arena_strdup(a, out);
}

/* A bind mount of a host path: a host mount of the same file system whose
 * root holds m's root gives the source. */
static int find_bind_source(struct dump_state *s, const struct mi *m, MountEntry *e, cr_error_t *err)
{
	char path[PATH_MAX], mine[PATH_MAX + 64];
	struct stat src, root;

	for (size_t j = 0; j < s->host.n; j++) {
		const struct mi *h = &s->host.v[j];
		const char *rest = below_path(m->root, h->root);

		if (h->dev != m->dev || rest == NULL || join(path, sizeof(path), h->mountpoint, rest) < 0)
			continue;
		if (stat(path, &src) < 0 || src.st_dev != m->dev)
			continue;
		snprintf(mine, sizeof(mine), "/proc/%d/root%s", s->pid, m->mountpoint);
		if (stat(mine, &root) < 0)
			return refuse(m, err, "its root cannot be looked at (stat through /proc/PID/root)");
		if (root.st_dev != m->dev)
			return refuse(m, err, "another mount hides it: unsupported");
		if (root.st_ino != src.st_ino)
			continue;
		e->how = MOUNT_HOW__MOUNT_BIND;
		e->host_path = arena_strdup(s->a, path);
		e->has_dev = e->has_ino = true;
		e->dev = src.st_dev;
		e->ino = src.st_ino;
		return 0;
	}
	return refuse(m, err, "a bind mount whose source cr finds at no path of its own: unsupported");
}

/* ---- the files of a tmpfs */

/* A file with several names: each one after the first is a link to it. */
struct linked {
	ino_t ino;
	const char *path;          /* its first name */
	nlink_t nlink, seen;
};

struct walk {
	struct dump_state *s;
	const struct mi *m;
	MountEntry *e;
	dev_t dev;
	size_t cap;
	uint64_t bytes;
	struct linked *links;
	size_t n_links;
};

static TmpfsFile *add_file(struct walk *w, const char *rel, const struct stat *st)
{
	TmpfsFile *f = arena_new(w->s->a, TmpfsFile);

	tmpfs_file__init(f);
	f->path = arena_strdup(w->s->a, rel);
	f->mode = st->st_mode;
	f->uid = st->st_uid;
	f->gid = st->st_gid;
	f->atime_ns = (int64_t)timespec_ns(&st->st_atim);
	f->mtime_ns = (int64_t)timespec_ns(&st->st_mtim);
	if (w->e->n_files == w->cap) {
		TmpfsFile **v = arena_array(w->s->a, TmpfsFile *, w->cap ? w->cap * 2 : 16);

		if (w->cap)
			memcpy(v, w->e->files, w->cap * sizeof(*v));
		w->cap = w->cap ? w->cap * 2 : 16;
		w->e->files = v;
	}
	w->e->files[w->e->n_files++] = f;
	return f;
}

static int walk_refuse(struct walk *w, const char *rel, const char *why, cr_error_t *err)
{
	char what[PATH_MAX + 256];

	snprintf(what, sizeof(what), "its file %s: %s", rel[0] ? rel : "/", why);
	return refuse(w->m, err, what);
}

static int read_data(struct walk *w, const char *full, const char *rel, const struct stat *st, TmpfsFile *f,
		     cr_error_t *err)
{
	cleanup_close int fd = -1;
	uint8_t *data;

	w->bytes += (uint64_t)st->st_size;
	if (w->bytes > MNTNS_TMPFS_MAX) {
		char why[128];

		snprintf(why, sizeof(why), "the tmpfs holds more than cr's limit of %u MiB of file data: refused",
			 MNTNS_TMPFS_MAX >> 20);
		return walk_refuse(w, rel, why, err);
	}
	fd = open(full, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOATIME);
	if (fd < 0 && errno == EPERM)
		fd = open(full, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return cr_error(err, errno, "pid %d: open %s", w->s->pid, full);
	data = arena_alloc(w->s->a, (size_t)st->st_size + 1);
	if (read_exact(fd, data, (size_t)st->st_size, full, err) < 0)
		return -1;
	f->has_data = true;
	f->data.data = data;
	f->data.len = (size_t)st->st_size;
	return 0;
}

static int walk_dir(struct walk *w, const char *full, const char *rel, cr_error_t *err);

/* A name of a file with several: true if an earlier name was seen (this
 * one becomes a link to it), false for the first (remembered). */
static bool another_name(struct walk *w, const char *rel, const struct stat *st)
{
	for (size_t i = 0; i < w->n_links; i++)
		if (w->links[i].ino == st->st_ino) {
			add_file(w, rel, st)->link_to = arena_strdup(w->s->a, w->links[i].path);
			w->links[i].seen++;
			return true;
		}
	if ((w->n_links & (w->n_links + 1)) == 0)   /* 0, 1, 3, 7, ...: full */
		w->links = xreallocarray(w->links, (w->n_links + 1) * 2, sizeof(*w->links));
	w->links[w->n_links++] = (struct linked){ .ino = st->st_ino, .path = arena_strdup(w->s->a, rel),
						  .nlink = st->st_nlink, .seen = 1 };
	return false;
}

/* Every name of a file with several is in the tmpfs as cr sees it: one
 * under a mount, or only in an open deleted file, would be lost. */
static int all_names_seen(struct walk *w, cr_error_t *err)
{
	for (size_t i = 0; i < w->n_links; i++)
		if (w->links[i].seen != w->links[i].nlink)
			return walk_refuse(w, w->links[i].path, "a file with hard links cr does not see all of (under "
					   "a mount, or deleted): unsupported", err);
	return 0;
}

static int walk_one(struct walk *w, const char *full, const char *rel, cr_error_t *err)
{
	struct stat st;
	char target[PATH_MAX];
	ssize_t n;

	if (lstat(full, &st) < 0)
		return cr_error(err, errno, "pid %d: lstat %s", w->s->pid, full);
	if (st.st_dev != w->dev) {
		/* A mountpoint: only the place is the tmpfs's. */
		if (rel[0] == '\0')
			return walk_refuse(w, rel, "another mount hides it: unsupported", err);
		st.st_mode = (st.st_mode & S_IFMT) | (S_ISDIR(st.st_mode) ? 0755 : 0644);
		st.st_uid = st.st_gid = 0;
		add_file(w, rel, &st);
		return 0;
	}
	if (llistxattr(full, NULL, 0) > 0)
		return walk_refuse(w, rel, "it has extended attributes, which cr does not keep: unsupported", err);
	if (!S_ISDIR(st.st_mode) && st.st_nlink > 1 && another_name(w, rel, &st))
		return 0;
	switch (st.st_mode & S_IFMT) {
	case S_IFDIR:
		add_file(w, rel, &st);
		return walk_dir(w, full, rel, err);
	case S_IFREG:
		return read_data(w, full, rel, &st, add_file(w, rel, &st), err);
	case S_IFLNK:
		n = readlink(full, target, sizeof(target) - 1);
		if (n < 0)
			return cr_error(err, errno, "pid %d: readlink %s", w->s->pid, full);
		target[n] = '\0';
		add_file(w, rel, &st)->target = arena_strdup(w->s->a, target);
		return 0;
	case S_IFIFO:
	case S_IFSOCK:   /* a socket of the tree bound there binds it again */
		add_file(w, rel, &st);
		return 0;
	default:
		return walk_refuse(w, rel, "a device node: unsupported", err);
	}
}

static int walk_dir(struct walk *w, const char *full, const char *rel, cr_error_t *err)
{
	cleanup_closedir DIR *d = opendir(full);
	struct dirent *de;

	if (d == NULL)
		return cr_error(err, errno, "pid %d: opendir %s", w->s->pid, full);
	while ((errno = 0, de = readdir(d)) != NULL) {
		char full2[PATH_MAX], rel2[PATH_MAX];

		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		if (snprintf(full2, sizeof(full2), "%s/%s", full, de->d_name) >= (int)sizeof(full2) ||
		    snprintf(rel2, sizeof(rel2), "%s%s%s", rel, rel[0] ? "/" : "", de->d_name) >= (int)sizeof(rel2))
			return walk_refuse(w, rel, "a path too long", err);
		if (walk_one(w, full2, rel2, err) < 0)
			return -1;
	}
	if (errno != 0)
		return cr_error(err, errno, "pid %d: readdir %s", w->s->pid, full);
	return 0;
}

static int dump_tmpfs(struct dump_state *s, const struct mi *m, MountEntry *e, cr_error_t *err)
{
	struct walk w = { .s = s, .m = m, .e = e, .dev = m->dev };
	char full[PATH_MAX];
	int ret;

	if (strcmp(m->root, "/") != 0)
		return refuse(m, err, "a bind mount of a directory of a tmpfs of the namespace: unsupported");
	snprintf(full, sizeof(full), "/proc/%d/root%s", s->pid, m->mountpoint);
	e->how = MOUNT_HOW__MOUNT_TMPFS;
	ret = walk_one(&w, full, "", err);
	if (ret == 0)
		ret = all_names_seen(&w, err);
	free(w.links);
	return ret;
}

/* A bind mount of a part of a tmpfs or proc made in the namespace (mount
 * j, the first of its file system): made again from that mount's root. */
static int bind_of_own(struct dump_state *s, size_t j, const struct mi *m, MountEntry *e, cr_error_t *err)
{
	const MountEntry *src = s->out->mounts[j];
	char path[PATH_MAX + 64];
	struct stat st;

	if (src->how != MOUNT_HOW__MOUNT_TMPFS && src->how != MOUNT_HOW__MOUNT_PROC)
		return refuse(m, err, "a second mount of a file system mounted in the namespace, other than a tmpfs or "
			      "a proc: unsupported");
	snprintf(path, sizeof(path), "/proc/%d/root%s", s->pid, m->mountpoint);
	if (stat(path, &st) < 0 || st.st_dev != m->dev)
		return refuse(m, err, "another mount hides it: unsupported");
	if (src->how == MOUNT_HOW__MOUNT_TMPFS) {
		bool found = false;

		for (size_t k = 0; k < src->n_files && !found; k++)
			found = strcmp(src->files[k]->path, m->root + 1) == 0;
		if (!found)
			return refuse(m, err, "a bind mount of a part of a tmpfs of the namespace that no path of that "
				      "tmpfs reaches now: unsupported");
	}
	e->how = MOUNT_HOW__MOUNT_BIND;
	e->has_bind_of = true;
	e->bind_of = src->id;
	return 0;
}

static int dump_new(struct dump_state *s, const struct mi *m, MountEntry *e, cr_error_t *err)
{
	char place[PATH_MAX];
	struct stat st;
	const MntNs *so_far = s->out;

	if (m->up < 0)
		return refuse(m, err, "the root of the namespace is not cr's (pivot_root): unsupported");
	if ((size_t)m->up >= so_far->n_mounts)
		return refuse(m, err, "listed before the mount it is on (a moved mount): unsupported");
	if (s->out->mounts[m->up]->propagation == MNTNS_SHARED_HOST && s->ns.v[m->up].shared != 0)
		return refuse(m, err, "made below a mount that is a peer of cr's: the restore would make it in "
				   "cr's namespace too: unsupported");
	/* Its place must be there at restore: on a mount of cr's or a bind
	 * mount of a host path, looked at now (a tmpfs holds it in its files). */
	if (view_upto(so_far, so_far->n_mounts, m->mountpoint, place, sizeof(place)) == 1 && stat(place, &st) < 0)
		return refuse(m, err, "its mountpoint is not there in cr's mount namespace: unsupported");
	for (size_t j = 0; j < s->host.n; j++)
		if (s->host.v[j].dev == m->dev)
			return find_bind_source(s, m, e, err);
	for (size_t j = 0; &s->ns.v[j] != m; j++)
		if (s->ns.v[j].dev == m->dev && s->ns.v[j].match < 0)
			return bind_of_own(s, j, m, e, err);
	if (strcmp(m->fstype, "tmpfs") == 0)
		return dump_tmpfs(s, m, e, err);
	if (strcmp(m->root, "/") != 0)
		return refuse(m, err, "a mount of a part of its file system: unsupported");
	if (strcmp(m->fstype, "proc") == 0)
		e->how = MOUNT_HOW__MOUNT_PROC;
	else if (strcmp(m->fstype, "sysfs") == 0)
		e->how = MOUNT_HOW__MOUNT_SYSFS;
	else
		return refuse(m, err, "this kind of file system is not restored (cr makes again proc, sysfs, "
				   "tmpfs and bind mounts of host paths): unsupported");
	return 0;
}

/* Restore sets an inherited mount's flags and propagation by its path: a
 * mount of cr's stacked on it at the same place would take them. */
static int check_inherited(const struct dump_state *s, const struct mi *m, const MountEntry *e, cr_error_t *err)
{
	const struct mi *h = &s->host.v[m->match];
	bool host_private = h->shared == 0 && h->master == 0 && !h->unbindable;
	bool change = h->flags != m->flags ||
		      (e->propagation != MNTNS_SHARED_HOST && !(e->propagation == MNTNS_PRIVATE && host_private));

	for (size_t k = (size_t)m->match + 1; change && k < s->host.n; k++)
		if (strcmp(s->host.v[k].mountpoint, h->mountpoint) == 0)
			return refuse(m, err, "its flags or propagation differ from cr's copy, which another mount of "
				      "cr's at the same place hides, so the restore cannot set them: unsupported");
	return 0;
}

static int dump_mount(struct dump_state *s, const struct mi *m, MountEntry *e, cr_error_t *err)
{
	mount_entry__init(e);
	e->id = m->id;
	e->parent = m->parent;
	e->mountpoint = arena_strdup(s->a, m->mountpoint);
	e->fstype = arena_strdup(s->a, m->fstype);
	e->source = arena_strdup(s->a, m->source);
	e->root = arena_strdup(s->a, m->root);
	e->flags = m->flags;
	e->fs_options = fs_options(s->a, m->super);
	e->how = MOUNT_HOW__MOUNT_INHERITED;
	if (propagation(s, m, &e->propagation, err) < 0)
		return -1;
	return m->match >= 0 ? check_inherited(s, m, e, err) : dump_new(s, m, e, err);
}

static int host_mounts_kept(const struct dump_state *s, cr_error_t *err)
{
	for (size_t j = 0; j < s->host.n; j++)
		if (!s->host.v[j].used)
			return cr_error(err, 0, "cr's mount %u at %s (%s) is not in it (unmounted or moved there): "
					"unsupported", s->host.v[j].id, s->host.v[j].mountpoint, s->host.v[j].fstype);
	return 0;
}

int mntns_dump(struct arena *a, pid_t pid, MntNs **out, cr_error_t *err)
{
	struct dump_state s = { .a = a, .pid = pid };
	char path[64];
	int ret = -1;

	snprintf(path, sizeof(path), "/proc/%d/mountinfo", pid);
	if (read_table("/proc/self/mountinfo", &s.host, err) < 0)
		return -1;
	if (read_table(path, &s.ns, err) < 0)
		goto out;
	match_host(&s);
	s.out = arena_new(a, MntNs);
	mnt_ns__init(s.out);
	s.out->mounts = arena_array(a, MountEntry *, s.ns.n);
	for (size_t i = 0; i < s.ns.n; i++) {
		MountEntry *e = arena_new(a, MountEntry);

		if (dump_mount(&s, &s.ns.v[i], e, err) < 0)
			goto out;
		s.out->mounts[s.out->n_mounts++] = e;
	}
	if (host_mounts_kept(&s, err) < 0)
		goto out;
	*out = s.out;
	ret = 0;
out:
	mi_free(&s.host);
	mi_free(&s.ns);
	return ret;
}

int mntns_check_proc(const MntNs *m, pid_t pid, uint64_t maker_pidns, cr_error_t *err)
{
	for (size_t i = 0; i < m->n_mounts; i++) {
		const MountEntry *e = m->mounts[i];
		char path[PATH_MAX], link[64];
		unsigned long long ino;
		ssize_t n;

		if (e->how != MOUNT_HOW__MOUNT_PROC)
			continue;
		snprintf(path, sizeof(path), "/proc/%d/root%s/1/ns/pid", pid, e->mountpoint);
		n = readlink(path, link, sizeof(link) - 1);
		if (n < 0)
			return cr_error(err, errno, "pid %d: which pid namespace the proc at %s shows (%s)", pid,
					e->mountpoint, path);
		link[n] = '\0';
		if (sscanf(link, "pid:[%llu]", &ino) != 1 || ino != maker_pidns)
			return cr_error(err, 0, "pid %d: the proc mounted at %s in its mount namespace shows a pid namespace "
					"(%s) other than that of the process that makes the namespace at restore: "
					"unsupported", pid, e->mountpoint, link);
	}
	return 0;
}

/* --------------------------------------------------------------- restore */

/* A path relative to the tmpfs root with no empty, "." or ".." part. */
static bool clean_rel(const char *p)
{
	if (p[0] == '\0')
		return true;
	for (const char *c = p;;) {
		size_t n = strcspn(c, "/");

		if (n == 0 || (n == 1 && c[0] == '.') || (n == 2 && c[0] == '.' && c[1] == '.'))
			return false;
		if (c[n] == '\0')
			return true;
		c += n + 1;
	}
}

/* The files made so far, by path. */
static int cmp_file(const void *a, const void *b)
{
	return strcmp(((const TmpfsFile *)a)->path, ((const TmpfsFile *)b)->path);
}

static void no_free(void *p)
{
	(void)p;
}

static const TmpfsFile *made_file(void **made, const char *path)
{
	TmpfsFile key = { .path = (char *)path };
	void *found = tfind(&key, made, cmp_file);

	return found ? *(const TmpfsFile **)found : NULL;
}

/* The directory f is in was made before it (so that no file is made
 * through a symlink of the image's), and what f links to is a file made
 * before it, of its type. */
static bool made_in_order(void **made, const TmpfsFile *f)
{
	const char *slash = strrchr(f->path, '/');
	const TmpfsFile *parent, *to;
	char dir[PATH_MAX];

	snprintf(dir, sizeof(dir), "%.*s", slash ? (int)(slash - f->path) : 0, f->path);
	parent = made_file(made, dir);
	if (parent == NULL || !S_ISDIR(parent->mode))
		return false;
	if (f->link_to == NULL)
		return true;
	to = made_file(made, f->link_to);
	return to != NULL && !S_ISDIR(to->mode) && to->link_to == NULL && (to->mode & S_IFMT) == (f->mode & S_IFMT) &&
	       !f->has_data && f->target == NULL;
}

static int validate_files(const MountEntry *e, cr_error_t *err)
{
	uint64_t bytes = 0;
	void *made = NULL;
	int ret = 0;

	if (e->n_files == 0 || !S_ISDIR(e->files[0]->mode))
		return cr_error(err, 0, "mount %u: a tmpfs without its root directory", e->id);
	for (size_t i = 0; i < e->n_files && ret == 0; i++) {
		const TmpfsFile *f = e->files[i];

		if (!clean_rel(f->path) || (i == 0) != (f->path[0] == '\0') || strlen(f->path) >= PATH_MAX ||
		    (i > 0 && !made_in_order(&made, f)) || (f->link_to != NULL && S_ISDIR(f->mode)))
			ret = cr_error(err, 0, "mount %u: a file path '%s' cr will not make", e->id, f->path);
		else if (made_file(&made, f->path) != NULL)
			ret = cr_error(err, 0, "mount %u: file %s twice", e->id, f->path);
		else if (tsearch(f, &made, cmp_file) == NULL)
			xalloc_failed_in("tsearch");
	}
	tdestroy(made, no_free);
	if (ret < 0)
		return -1;
	for (size_t i = 0; i < e->n_files; i++) {
		const TmpfsFile *f = e->files[i];
		mode_t type = f->mode & S_IFMT;

		if (type != S_IFDIR && type != S_IFREG && type != S_IFLNK && type != S_IFIFO && type != S_IFSOCK)
			return cr_error(err, 0, "mount %u: file %s of mode 0%o", e->id, f->path, f->mode);
		if ((f->link_to == NULL && (type == S_IFLNK) != (f->target != NULL)) ||
		    (type != S_IFREG && f->has_data))
			return cr_error(err, 0, "mount %u: file %s does not hold what its type needs", e->id, f->path);
		bytes += f->data.len;
	}
	if (bytes > MNTNS_TMPFS_MAX)
		return cr_error(err, 0, "mount %u: more file data than cr's limit", e->id);
	return 0;
}

/* The restorer's copy of each inherited mount, matched like at dump. */
static int match_inherited(const MntNs *m, struct mi_table *t, ssize_t *copy, cr_error_t *err)
{
	for (size_t i = 0; i < m->n_mounts; i++) {
		const MountEntry *e = m->mounts[i];

		copy[i] = -1;
		if (e->how != MOUNT_HOW__MOUNT_INHERITED)
			continue;
		for (size_t j = 0; j < t->n && copy[i] < 0; j++)
			if (!t->v[j].used && strcmp(t->v[j].mountpoint, e->mountpoint) == 0 &&
			    strcmp(t->v[j].root, e->root) == 0 && strcmp(t->v[j].fstype, e->fstype) == 0) {
				t->v[j].used = true;
				copy[i] = (ssize_t)j;
			}
		if (copy[i] < 0)
			return cr_error(err, 0, "the mount at %s (%s) it shares with cr's namespace is not in cr's now",
					e->mountpoint, e->fstype);
	}
	return 0;
}

static int check_bind_source(const MountEntry *e, int fd, cr_error_t *err)
{
	struct stat st;

	if ((fd >= 0 ? fstat(fd, &st) : stat(e->host_path, &st)) < 0)
		return cr_error(err, errno, "the source %s of the bind mount at %s", e->host_path, e->mountpoint);
	if (st.st_dev != e->dev || st.st_ino != e->ino)
		return cr_error(err, 0, "the source %s of the bind mount at %s is another file than at dump (device "
				"%u:%u inode %llu, was %u:%u inode %llu): refused", e->host_path, e->mountpoint,
				major(st.st_dev), minor(st.st_dev), (unsigned long long)st.st_ino, major(e->dev),
				minor(e->dev), (unsigned long long)e->ino);
	return 0;
}

/* The index of the mount e (entry i) binds a part of: a tmpfs or proc
 * before it; SIZE_MAX if none. */
static size_t bind_source(const MntNs *m, size_t i)
{
	for (size_t j = 0; j < i; j++)
		if (m->mounts[j]->id == m->mounts[i]->bind_of && (m->mounts[j]->how == MOUNT_HOW__MOUNT_TMPFS ||
								     m->mounts[j]->how == MOUNT_HOW__MOUNT_PROC))
			return j;
	return SIZE_MAX;
}

/* A new mount goes on the mount its path leads to, which the image must
 * name as its parent, and which must not pass it on to cr's namespace. */
static int check_parent(const MntNs *m, size_t i, cr_error_t *err)
{
	const MountEntry *e = m->mounts[i], *parent;
	const char *rest;

	parent = mount_of(m, i, e->mountpoint, &rest);
	if (parent == NULL || parent->id != e->parent)
		return cr_error(err, 0, "mount %u at %s: its parent %u is not the mount its path is on", e->id,
				e->mountpoint, e->parent);
	return 0;
}

/* What the copies of cr's mounts allow: a slave of cr's needs cr's mount
 * shared; a new mount on an inherited one that stays as cr's
 * (MNTNS_SHARED_HOST) while that is shared would be made in cr's
 * namespace too. */
static int check_copies(const MntNs *m, const struct mi_table *t, const ssize_t *copy, cr_error_t *err)
{
	for (size_t i = 0; i < m->n_mounts; i++) {
		const MountEntry *e = m->mounts[i];

		if (e->propagation == MNTNS_SLAVE_HOST && copy[i] >= 0 && t->v[copy[i]].shared == 0)
			return cr_error(err, 0, "the mount at %s was a slave of cr's, which is not shared now",
					e->mountpoint);
		if (e->how == MOUNT_HOW__MOUNT_INHERITED)
			continue;
		for (size_t j = 0; j < i; j++)
			if (m->mounts[j]->id == e->parent && copy[j] >= 0 &&
			    m->mounts[j]->propagation == MNTNS_SHARED_HOST && t->v[copy[j]].shared != 0)
				return cr_error(err, 0, "mount %u at %s: made on a mount that stays a peer of cr's %s, it "
						"would be made in cr's namespace too", e->id, e->mountpoint,
						m->mounts[j]->mountpoint);
	}
	return 0;
}

/* The root of a namespace file bound somewhere ("net:[4026532308]", what
 * ip netns add binds under /run/netns): an inherited mount may have one. */
static bool nsfs_root(const char *root)
{
	const char *open = strchr(root, ':');
	size_t n = open != NULL ? strspn(open + 2, "0123456789") : 0;

	return open != NULL && open > root && strspn(root, "abcdefghijklmnopqrstuvwxyz_") == (size_t)(open - root) &&
	       open[1] == '[' && n > 0 && strcmp(open + 2 + n, "]") == 0;
}

static int validate_entry(const MntNs *m, size_t i, cr_error_t *err)
{
	const MountEntry *e = m->mounts[i];
	char place[PATH_MAX];
	bool root_ok = e->root[0] == '/' || (e->how == MOUNT_HOW__MOUNT_INHERITED && nsfs_root(e->root));

	if (e->mountpoint[0] != '/' || !root_ok || (e->flags & ~(uint32_t)MOUNT_FLAGS) ||
	    e->propagation > MNTNS_UNBINDABLE)
		return cr_error(err, 0, "mount %u: a mountpoint, root, flags or propagation cr will not use", e->id);
	if ((e->how == MOUNT_HOW__MOUNT_TMPFS) != (e->n_files > 0) ||
	    (e->how == MOUNT_HOW__MOUNT_BIND) != ((e->host_path != NULL && e->has_dev && e->has_ino) != e->has_bind_of) ||
	    (e->has_bind_of && (e->how != MOUNT_HOW__MOUNT_BIND || e->host_path != NULL)))
		return cr_error(err, 0, "mount %u does not hold what its kind needs", e->id);
	if (e->has_bind_of && bind_source(m, i) == SIZE_MAX)
		return cr_error(err, 0, "mount %u binds mount %u, which is no tmpfs or proc made before it", e->id,
				e->bind_of);
	if (e->has_bind_of && !clean_rel(e->root + 1))
		return cr_error(err, 0, "mount %u binds a part '%s' of mount %u cr will not look for", e->id, e->root,
				e->bind_of);
	if (e->how == MOUNT_HOW__MOUNT_INHERITED)
		return 0;
	if (i == 0)
		return cr_error(err, 0, "mount %u: a root of the namespace that is not cr's", e->id);
	if (check_parent(m, i, err) < 0)
		return -1;
	if (e->how == MOUNT_HOW__MOUNT_TMPFS && validate_files(e, err) < 0)
		return -1;
	if (e->how == MOUNT_HOW__MOUNT_BIND && !e->has_bind_of && check_bind_source(e, -1, err) < 0)
		return -1;
	if (view_upto(m, i, e->mountpoint, place, sizeof(place)) == 1 && access(place, F_OK) < 0)
		return cr_error(err, errno, "the mountpoint %s of mount %u (%s)", place, e->id, e->fstype);
	return 0;
}

int mntns_validate(const MntNs *m, cr_error_t *err)
{
	struct mi_table t;
	cleanup_free ssize_t *copy = NULL;
	int ret;

	if (m->n_mounts == 0 || m->mounts[0]->how != MOUNT_HOW__MOUNT_INHERITED)
		return cr_error(err, 0, "a mount namespace without cr's root");
	for (size_t i = 0; i < m->n_mounts; i++)
		if (validate_entry(m, i, err) < 0)
			return -1;
	if (read_table("/proc/self/mountinfo", &t, err) < 0)
		return -1;
	copy = xcalloc(m->n_mounts, sizeof(*copy));
	ret = match_inherited(m, &t, copy, err);
	if (ret == 0)
		ret = check_copies(m, &t, copy, err);
	mi_free(&t);
	return ret;
}

/* ---- in the process that made the namespace
 * Every place is reached without a symbolic link (a restored tmpfs holds
 * the processes' symlinks, never a way for cr): mount(2) is given
 * /proc/self/fd/N of an O_PATH fd, and a tmpfs is filled with *at calls
 * below its root, through directories validate_files saw made first. */

struct place {
	int fd;
	char at[32];
};

static int place_open(const char *path, struct place *p, cr_error_t *err)
{
	p->fd = reopen_place(path, err);
	if (p->fd < 0)
		return -1;
	snprintf(p->at, sizeof(p->at), "/proc/self/fd/%d", p->fd);
	return 0;
}

static void place_close(struct place *p)
{
	if (p->fd >= 0)
		close(p->fd);
	p->fd = -1;
}

static const unsigned long prop_flag[] = {
	[MNTNS_PRIVATE] = MS_PRIVATE, [MNTNS_SHARED] = MS_SHARED, [MNTNS_SHARED_HOST] = 0,
	[MNTNS_SLAVE_HOST] = MS_SLAVE, [MNTNS_UNBINDABLE] = MS_UNBINDABLE,
};

/* The mount now on top at e's mountpoint gets e's propagation and, if
 * flags, e's flags. */
static int set_mount(const MountEntry *e, bool flags, bool prop, cr_error_t *err)
{
	struct place p = { .fd = -1 };
	int ret = -1;

	if (place_open(e->mountpoint, &p, err) < 0)
		return cr_error_wrap(err, "the mount at %s", e->mountpoint);
	if (flags && mount(NULL, p.at, NULL, MS_REMOUNT | MS_BIND | e->flags, NULL) < 0) {
		cr_error(err, errno, "remount %s with its flags (0x%x)", e->mountpoint, e->flags);
		goto out;
	}
	if (prop && e->propagation == MNTNS_SHARED && mount(NULL, p.at, NULL, MS_PRIVATE, NULL) < 0) {
		cr_error(err, errno, "make the mount at %s private", e->mountpoint);
		goto out;
	}
	if (prop && prop_flag[e->propagation] && mount(NULL, p.at, NULL, prop_flag[e->propagation], NULL) < 0) {
		cr_error(err, errno, "set the propagation of the mount at %s", e->mountpoint);
		goto out;
	}
	ret = 0;
out:
	place_close(&p);
	return ret;
}

/* Another mount stacked on copy j later in the table hides it. */
static bool on_top(const struct mi_table *t, size_t j)
{
	for (size_t k = j + 1; k < t->n; k++)
		if (strcmp(t->v[k].mountpoint, t->v[j].mountpoint) == 0)
			return false;
	return true;
}

/* Its mountpoint leads to c itself, not to a mount stacked on it. */
static bool reached(const struct mi *c)
{
	struct statx stx;

	return statx(AT_FDCWD, c->mountpoint, AT_SYMLINK_NOFOLLOW | AT_NO_AUTOMOUNT, STATX_MNT_ID, &stx) == 0 &&
	       (stx.stx_mask & STATX_MNT_ID) && stx.stx_mnt_id == c->id;
}

/* The copy of a mount cr's namespace gained since the dump is unmounted,
 * children first, once propagation no longer passes that on to cr's; but
 * one on a mount that stays a peer of cr's was passed on to the dumped
 * namespace too, and stays. */
static int drop_new_host_mounts(const MntNs *m, struct mi_table *t, const ssize_t *copy, cr_error_t *err)
{
	for (size_t j = t->n; j-- > 0;) {
		const struct mi *c = &t->v[j], *up = c->up >= 0 ? &t->v[c->up] : NULL;
		bool peer_kept = false;

		if (c->used)
			continue;
		for (size_t i = 0; up != NULL && i < m->n_mounts; i++)
			if (copy[i] == c->up && m->mounts[i]->propagation == MNTNS_SHARED_HOST && up->shared != 0)
				peer_kept = true;
		if (peer_kept)
			continue;
		if (!reached(c))
			return cr_error(err, 0, "cr's namespace has a mount at %s (%s) the dumped one had not, under "
					"another: cannot take it away", c->mountpoint, c->fstype);
		if (umount2(c->mountpoint, MNT_DETACH | UMOUNT_NOFOLLOW) < 0)
			return cr_error(err, errno, "take away the mount at %s (%s), which cr's namespace gained since "
					"the dump", c->mountpoint, c->fstype);
		pr_info("mount namespace: cr's mount at %s (%s) is newer than the dump: not in the restored one",
			c->mountpoint, c->fstype);
	}
	return 0;
}

static int fix_inherited(const MntNs *m, cr_error_t *err)
{
	struct mi_table t;
	cleanup_free ssize_t *copy = xcalloc(m->n_mounts, sizeof(*copy));
	int ret = -1;

	if (read_table("/proc/self/mountinfo", &t, err) < 0)
		return -1;
	if (match_inherited(m, &t, copy, err) < 0 || check_copies(m, &t, copy, err) < 0)
		goto out;
	for (size_t i = 0; i < m->n_mounts; i++) {
		const MountEntry *e = m->mounts[i];
		const struct mi *c;
		bool flags, prop;

		if (copy[i] < 0)
			continue;
		c = &t.v[copy[i]];
		flags = c->flags != e->flags;
		prop = e->propagation != MNTNS_SHARED_HOST &&
		       !(e->propagation == MNTNS_PRIVATE && c->shared == 0 && c->master == 0 && !c->unbindable);
		if (!flags && !prop)
			continue;
		if (!on_top(&t, (size_t)copy[i])) {
			cr_error(err, 0, "the mount at %s is hidden by another in cr's namespace: cannot set its flags "
				 "or propagation", e->mountpoint);
			goto out;
		}
		if (set_mount(e, flags, prop, err) < 0)
			goto out;
	}
	ret = drop_new_host_mounts(m, &t, copy, err);
out:
	mi_free(&t);
	return ret;
}

/* f below the tmpfs root dir; "" is the root itself. */
static int make_file(int dir, const TmpfsFile *f, cr_error_t *err)
{
	cleanup_close int fd = -1;

	if (f->link_to != NULL)
		return linkat(dir, f->link_to, dir, f->path, 0) < 0 ?
			       cr_error(err, errno, "link %s to %s", f->path, f->link_to) : 0;
	switch (f->mode & S_IFMT) {
	case S_IFDIR:
		if (f->path[0] != '\0' && mkdirat(dir, f->path, 0700) < 0)
			return cr_error(err, errno, "mkdir %s", f->path);
		return 0;
	case S_IFLNK:
		return symlinkat(f->target, dir, f->path) < 0 ? cr_error(err, errno, "symlink %s", f->path) : 0;
	case S_IFIFO:
	case S_IFSOCK:
		return mknodat(dir, f->path, (f->mode & S_IFMT) | 0600, 0) < 0 ?
			       cr_error(err, errno, "mknod %s", f->path) : 0;
	default:
		fd = openat(dir, f->path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
		if (fd < 0)
			return cr_error(err, errno, "create %s", f->path);
		return f->has_data ? write_all(fd, f->data.data, f->data.len, err) : 0;
	}
}

static int set_attrs(int dir, const TmpfsFile *f, cr_error_t *err)
{
	struct timespec ts[2] = { ns_timespec((uint64_t)f->atime_ns), ns_timespec((uint64_t)f->mtime_ns) };
	const char *name = f->path[0] ? f->path : ".";

	if (fchownat(dir, name, f->uid, f->gid, AT_SYMLINK_NOFOLLOW) < 0)
		return cr_error(err, errno, "chown %s", name);
	if (!S_ISLNK(f->mode) && fchmodat(dir, name, f->mode & 07777, 0) < 0)
		return cr_error(err, errno, "chmod %s", name);
	if (utimensat(dir, name, ts, AT_SYMLINK_NOFOLLOW) < 0)
		return cr_error(err, errno, "set the times of %s", name);
	return 0;
}

static int fill_tmpfs(const MountEntry *e, cr_error_t *err)
{
	struct place root = { .fd = -1 };
	int ret = -1;

	if (place_open(e->mountpoint, &root, err) < 0)
		return cr_error_wrap(err, "the tmpfs at %s", e->mountpoint);
	for (size_t i = 0; i < e->n_files; i++)
		if (make_file(root.fd, e->files[i], err) < 0)
			goto out;
	for (size_t i = e->n_files; i-- > 0;)   /* a directory's times after what it holds */
		if (set_attrs(root.fd, e->files[i], err) < 0)
			goto out;
	ret = 0;
out:
	place_close(&root);
	return ret < 0 ? cr_error_wrap(err, "the tmpfs at %s", e->mountpoint) : 0;
}

static int mount_at(const MountEntry *e, const char *from, const char *type, unsigned long flags, const char *data,
		    cr_error_t *err)
{
	struct place p = { .fd = -1 };
	int ret = 0;

	if (place_open(e->mountpoint, &p, err) < 0)
		return cr_error_wrap(err, "the mountpoint of the %s", type ? type : "bind mount");
	if (mount(from, p.at, type, flags, data) < 0)
		ret = cr_error(err, errno, "mount %s at %s (%s)", type ? type : from, e->mountpoint, data ? data : "");
	place_close(&p);
	return ret;
}

static int make_mount(const MountEntry *e, int src, cr_error_t *err)
{
	const char *data = e->fs_options[0] ? e->fs_options : NULL;
	char from[32];

	switch (e->how) {
	case MOUNT_HOW__MOUNT_PROC:
		return mount_at(e, e->source, "proc", e->flags, data, err);
	case MOUNT_HOW__MOUNT_SYSFS:
		return mount_at(e, e->source, "sysfs", e->flags, NULL, err);
	case MOUNT_HOW__MOUNT_TMPFS:
		if (mount_at(e, e->source, "tmpfs", e->flags & ~(unsigned long)MS_RDONLY, data, err) < 0 ||
		    fill_tmpfs(e, err) < 0)
			return -1;
		return e->flags & MS_RDONLY ? set_mount(e, true, false, err) : 0;
	default:
		snprintf(from, sizeof(from), "/proc/self/fd/%d", src);
		if (mount_at(e, from, NULL, MS_BIND, NULL, err) < 0)
			return cr_error_wrap(err, "bind mount %s", e->host_path ? e->host_path : e->root);
		return set_mount(e, true, false, err);
	}
}

/* The part (root) of mount made a bind mount binds, reached from that
 * mount's root without leaving it or following a link. */
static int open_part(const MountEntry *e, int made, cr_error_t *err)
{
	struct open_how how = {
		.flags = O_PATH | O_CLOEXEC,
		.resolve = RESOLVE_BENEATH | RESOLVE_NO_XDEV | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS,
	};
	int fd = (int)syscall(SYS_openat2, made, e->root[1] ? e->root + 1 : ".", &how, sizeof(how));

	if (fd < 0)
		return cr_error(err, errno, "%s in mount %u, which the mount at %s binds", e->root, e->bind_of,
				e->mountpoint);
	return fd;
}

/* Host sources, before any mount of the namespace hides one. */
static int open_host_sources(const MntNs *m, int *src, cr_error_t *err)
{
	for (size_t i = 0; i < m->n_mounts; i++) {
		const MountEntry *e = m->mounts[i];

		if (e->how != MOUNT_HOW__MOUNT_BIND || e->has_bind_of)
			continue;
		src[i] = reopen_place(e->host_path, err);
		if (src[i] < 0)
			return cr_error_wrap(err, "the source of the bind mount at %s", e->mountpoint);
		if (check_bind_source(e, src[i], err) < 0)
			return -1;
	}
	return 0;
}

static void close_all(int *fds, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (fds[i] >= 0)
			close(fds[i]);
}

int mntns_restore(const MntNs *m, cr_error_t *err)
{
	cleanup_free int *src = xmalloc(m->n_mounts * sizeof(*src));
	cleanup_free int *made = xmalloc(m->n_mounts * sizeof(*made));   /* roots of new mounts, for bind_of */
	int ret = -1;

	for (size_t i = 0; i < m->n_mounts; i++)
		src[i] = made[i] = -1;
	if (open_host_sources(m, src, err) < 0 || fix_inherited(m, err) < 0)
		goto out;
	for (size_t i = 0; i < m->n_mounts; i++) {
		const MountEntry *e = m->mounts[i];

		if (e->how == MOUNT_HOW__MOUNT_INHERITED)
			continue;
		if (e->has_bind_of && (src[i] = open_part(e, made[bind_source(m, i)], err)) < 0)
			goto out;
		if (make_mount(e, src[i], err) < 0 || set_mount(e, false, true, err) < 0)
			goto out;
		if ((e->how == MOUNT_HOW__MOUNT_TMPFS || e->how == MOUNT_HOW__MOUNT_PROC) &&
		    (made[i] = reopen_place(e->mountpoint, err)) < 0)
			goto out;
		pr_debug("mount namespace: mount %u at %s (%s) made", e->id, e->mountpoint, e->fstype);
	}
	ret = 0;
out:
	close_all(src, m->n_mounts);
	close_all(made, m->n_mounts);
	return ret;
}
