/* Namespaces, as a kind of state: a process's uts, ipc, time, mount and
 * network namespaces are recreated; a cgroup or user namespace of its
 * own is refused.  (Pid namespaces are the tree's: restore/create.c.)
 *
 * Dump: each namespace of a process (/proc/PID/ns/NAME) is compared with
 * cr's own.  The same: nothing to do, the restored process gets the
 * restorer's.  Different: a uts, ipc, time or mount namespace becomes one entry
 * of ns.img however many processes share it, and core_entry.ns names each
 * process's entries; any other kind is refused, naming the process.  What
 * a namespace holds is read from outside: the hostname by a helper child
 * of cr that enters it (os/nsenter.h), an ipc namespace's limits, SysV
 * segments and queues likewise (state/ipcns.c, which refuses what cannot
 * come back), a time namespace's clock offsets from
 * /proc/PID/timens_offsets, a mount namespace's mounts and tmpfs files
 * from /proc/PID/mountinfo and through /proc/PID/root (state/mntns.c), a
 * network namespace's links, addresses, routes, rules and sysctls by cr
 * itself entering it with one thread (net/netns.h), into netns.img.  A
 * network namespace that a process outside the dump is in too is refused:
 * that process would stay in the old one, cut off from the tree.
 *
 * Restore: each namespace is created once, by the lowest common ancestor
 * of the processes in it, in before_fork: it unshares, configures the new
 * namespace (hostname, ipc objects, mounts, clock offsets, which can only
 * be written before any process is in it), keeps an fd of it that every
 * process forked below inherits, and goes back to its own.  Then each process whose namespace is
 * not the one it was born in (its parent's; for a time namespace, its
 * parent's time namespace for children) enters it with setns: siblings
 * and cousins share one namespace that way too.
 *
 * A time namespace for children that differs from the process's own was
 * made by that process with unshare(CLONE_NEWTIME) (fork and exec make the
 * two equal, setns sets both): it makes it again, last, and keeps it.  If
 * a process outside its subtree entered that namespace too, the tree is
 * refused at dump (check_tree): no process of the restore could create it
 * before both need it.
 *
 * --join-ns net:PATH puts the tree's network namespace (there must be one)
 * at PATH instead: nothing is made in it.
 *
 * This kind comes before the fd table in the table: files are opened in
 * the namespaces of the process that opens them (an absolute timerfd is
 * armed on the clock of its time namespace: ns_clock_offset). */
#include "fd/tcp_stream.h"
#include "os/log.h"
#include "os/nsenter.h"
#include "os/proc.h"
#include "os/util.h"
#include "os/xalloc.h"
#include "net/netns.h"
#include "state/files.h"
#include "state/ipcns.h"
#include "state/mntns.h"
#include "state/ns.h"
#include "fd/fdshare.h"
#include "state/fdroom.h"
#include "state/state.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <linux/nsfs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#define UTS_LEN        64                       /* __NEW_UTS_LEN */
#define KTIME_SEC_MAX  (INT64_MAX / 1000000000)  /* the kernel's limit on an offset */

/* The namespaces a process refers to; a time namespace twice. */
enum ns_slot { SLOT_UTS, SLOT_IPC, SLOT_TIME, SLOT_TIME_FOR_CHILDREN, SLOT_MNT, SLOT_NET, N_SLOTS };

/* -------------------------------------------------------- the kinds */

struct ns_kind_ops {
	const char *what;
	int flag;                  /* CLONE_NEW* */
	enum ns_slot slot;         /* the namespace the process itself is in */
	const char *own;           /* the caller's own namespace */
	const char *made;          /* the namespace unshare(flag) made */
	int (*configure)(struct restore_ctx *ctx, const NsEntry *e, cr_error_t *err);
};

static int configure_uts(struct restore_ctx *ctx, const NsEntry *e, cr_error_t *err);
static int configure_ipc(struct restore_ctx *ctx, const NsEntry *e, cr_error_t *err);
static int configure_time(struct restore_ctx *ctx, const NsEntry *e, cr_error_t *err);
static int configure_mnt(struct restore_ctx *ctx, const NsEntry *e, cr_error_t *err);
static int configure_net(struct restore_ctx *ctx, const NsEntry *e, cr_error_t *err);

/* Indexed by kind_index(NsKind). */
static const struct ns_kind_ops kind_ops[] = {
	{ "uts namespace", CLONE_NEWUTS, SLOT_UTS, "/proc/self/ns/uts", "/proc/self/ns/uts", configure_uts },
	{ "ipc namespace", CLONE_NEWIPC, SLOT_IPC, "/proc/self/ns/ipc", "/proc/self/ns/ipc", configure_ipc },
	{ "time namespace", CLONE_NEWTIME, SLOT_TIME, "/proc/self/ns/time", "/proc/self/ns/time_for_children",
	  configure_time },
	{ "mount namespace", CLONE_NEWNS, SLOT_MNT, "/proc/self/ns/mnt", "/proc/self/ns/mnt", configure_mnt },
	{ "network namespace", CLONE_NEWNET, SLOT_NET, "/proc/self/ns/net", "/proc/self/ns/net", configure_net },
};

#define N_KINDS ARRAY_SIZE(kind_ops)
_Static_assert(N_KINDS <= CR_ROOM_HOST_NS, "the dump counts a host fd of every kind of namespace (fdroom.h)");

/* The kinds in the order of kind_ops, as numbered in ns.proto. */
static const NsKind kind_numbers[] = { NS_KIND__NS_UTS, NS_KIND__NS_IPC, NS_KIND__NS_TIME, NS_KIND__NS_MNT,
				       NS_KIND__NS_NET };
#define K_NET 4   /* the network namespace's index in kind_ops */
_Static_assert(ARRAY_SIZE(kind_numbers) == N_KINDS, "a number for every kind");

static size_t kind_index(int kind)
{
	for (size_t k = 0; k < N_KINDS; k++)
		if ((int)kind_numbers[k] == kind)
			return k;
	return N_KINDS;
}

static bool known_kind(int kind)
{
	return kind_index(kind) < N_KINDS;
}

static const struct ns_kind_ops *ops_of(int kind)
{
	return &kind_ops[kind_index(kind)];
}

static NsKind slot_kind(enum ns_slot slot)
{
	static const NsKind kinds[N_SLOTS] = { NS_KIND__NS_UTS, NS_KIND__NS_IPC, NS_KIND__NS_TIME, NS_KIND__NS_TIME,
					       NS_KIND__NS_MNT, NS_KIND__NS_NET };

	return kinds[slot];
}

static uint32_t *slot_ref(NsRefs *refs, enum ns_slot slot)
{
	switch (slot) {
	case SLOT_UTS: return &refs->uts;
	case SLOT_IPC: return &refs->ipc;
	case SLOT_TIME: return &refs->time;
	case SLOT_MNT: refs->has_mnt = true; return &refs->mnt;
	case SLOT_NET: refs->has_net = true; return &refs->net;
	default: return &refs->time_for_children;
	}
}

/* 0 (cr's own) for no references at all. */
static uint32_t ref_of(const NsRefs *refs, enum ns_slot slot)
{
	if (refs == NULL)
		return 0;
	switch (slot) {
	case SLOT_UTS: return refs->uts;
	case SLOT_IPC: return refs->ipc;
	case SLOT_TIME: return refs->time;
	case SLOT_MNT: return refs->has_mnt ? refs->mnt : 0;
	case SLOT_NET: return refs->has_net ? refs->net : 0;
	default: return refs->time_for_children;
	}
}

/* -------------------------------------------- the plan: who creates what
 * Shared by the dump, which refuses a tree that cannot be restored, and
 * the restore, which follows it. */

struct ns_node {
	pid_t pid;
	size_t parent;             /* SIZE_MAX: the root */
	const NsRefs *refs;        /* NULL: a zombie, in no namespace */
};

struct ns_plan {
	size_t n_ns;               /* ids 1..n_ns */
	size_t *creator;           /* per id: the node that creates it */
	bool *stays;               /* per id: its creator makes it its time namespace for children */
	bool host_needed[N_KINDS]; /* a process goes back to the restorer's: the root keeps an fd of it */
	int *fd;                   /* per id, in the restored processes: the namespace, once made */
	int host_fd[N_KINDS];
};

static size_t common_ancestor(const struct ns_node *nodes, size_t a, size_t b)
{
	for (size_t x = a; x != SIZE_MAX; x = nodes[x].parent)
		for (size_t y = b; y != SIZE_MAX; y = nodes[y].parent)
			if (x == y)
				return x;
	return 0;
}

static bool below(const struct ns_node *nodes, size_t node, size_t top)
{
	for (size_t x = node; x != SIZE_MAX; x = nodes[x].parent)
		if (x == top)
			return true;
	return false;
}

/* The namespace a process is born in: its parent's (for a time namespace,
 * its parent's for children); the root is born in the restorer's. */
static uint32_t born_in(const struct ns_node *nodes, size_t i, enum ns_slot slot)
{
	size_t p = nodes[i].parent;

	if (p == SIZE_MAX)
		return 0;
	return ref_of(nodes[p].refs, slot == SLOT_TIME ? SLOT_TIME_FOR_CHILDREN : slot);
}

/* A member of the namespace id that is not below node top, or SIZE_MAX. */
static size_t outsider(const struct ns_node *nodes, size_t n, uint32_t id, size_t top)
{
	for (size_t i = 0; i < n; i++)
		if (nodes[i].refs && (nodes[i].refs->time == id || nodes[i].refs->time_for_children == id) &&
		    !below(nodes, i, top))
			return i;
	return SIZE_MAX;
}

/* A process's own time namespace for children: it creates it and keeps it. */
static int plan_stays(const struct ns_node *nodes, size_t n, size_t i, struct ns_plan *plan, cr_error_t *err)
{
	uint32_t id = nodes[i].refs->time_for_children;
	size_t other;

	if (id == nodes[i].refs->time)
		return 0;
	if (id == 0)
		return cr_error(err, 0, "pid %d: its time namespace for children is cr's own but its time namespace "
				"is not: unsupported (only unshare makes them differ, and it makes a new one)",
				nodes[i].pid);
	if (plan->stays[id])
		return cr_error(err, 0, "pid %d and pid %d: both made the same time namespace for their children: "
				"unsupported", nodes[plan->creator[id]].pid, nodes[i].pid);
	other = outsider(nodes, n, id, i);
	if (other != SIZE_MAX)
		return cr_error(err, 0, "pid %d: the time namespace it made for its children (unshare) was entered by "
				"pid %d, not a descendant of it: unsupported (cr cannot recreate the namespace before "
				"both need it)", nodes[i].pid, nodes[other].pid);
	plan->creator[id] = i;
	plan->stays[id] = true;
	return 0;
}

static void plan_free(struct ns_plan *plan)
{
	if (plan == NULL)
		return;
	free(plan->creator);
	free(plan->stays);
	free(plan->fd);
	free(plan);
}

static int plan_tree(const struct ns_node *nodes, size_t n, size_t n_ns, struct ns_plan **out, cr_error_t *err)
{
	struct ns_plan *plan = xcalloc(1, sizeof(*plan));

	plan->n_ns = n_ns;
	plan->creator = xmalloc((n_ns + 1) * sizeof(*plan->creator));
	plan->stays = xcalloc(n_ns + 1, sizeof(*plan->stays));
	plan->fd = xmalloc((n_ns + 1) * sizeof(*plan->fd));
	for (size_t id = 0; id <= n_ns; id++) {
		plan->creator[id] = SIZE_MAX;
		plan->fd[id] = -1;
	}
	for (size_t k = 0; k < N_KINDS; k++)
		plan->host_fd[k] = -1;
	for (size_t i = 0; i < n; i++)
		for (int s = 0; nodes[i].refs && s < N_SLOTS; s++) {
			uint32_t id = ref_of(nodes[i].refs, s);

			if (id != 0)
				plan->creator[id] = plan->creator[id] == SIZE_MAX ? i :
						    common_ancestor(nodes, plan->creator[id], i);
		}
	for (size_t i = 0; i < n; i++) {
		if (nodes[i].refs == NULL)
			continue;
		if (plan_stays(nodes, n, i, plan, err) < 0) {
			plan_free(plan);
			return -1;
		}
		for (size_t k = 0; k < N_KINDS; k++)
			if (ref_of(nodes[i].refs, kind_ops[k].slot) == 0 && born_in(nodes, i, kind_ops[k].slot) != 0)
				plan->host_needed[k] = true;
	}
	*out = plan;
	return 0;
}

/* ------------------------------------------------------------------ dump */

/* Every namespace cr looks at; refused kinds first, so that a refusal
 * costs no helper.  A time namespace for children before the time
 * namespace: when they are one, its offsets are read from outside. */
static const struct ns_type {
	const char *name;          /* /proc/PID/ns/NAME */
	const char *what;
	int slot;                  /* -1: refused */
	const char *why;
} ns_types[] = {
	{ "user", "user namespace", -1, "restoring user namespaces is out of cr's scope" },
	{ "cgroup", "cgroup namespace", -1, "restoring cgroup namespaces is not supported yet" },
	{ "mnt", "mount namespace", SLOT_MNT, NULL },
	{ "uts", "uts namespace", SLOT_UTS, NULL },
	{ "ipc", "ipc namespace", SLOT_IPC, NULL },
	{ "time_for_children", "time namespace for children", SLOT_TIME_FOR_CHILDREN, NULL },
	{ "time", "time namespace", SLOT_TIME, NULL },
	{ "net", "network namespace", SLOT_NET, NULL },
};

struct uts_answer {
	char hostname[UTS_LEN + 1];
	char domainname[UTS_LEN + 1];
};

/* In the helper, inside the uts namespace. */
static int read_uts(void *arg, void *out, size_t size, const char **what)
{
	struct uts_answer *a = out;
	struct utsname u;

	(void)arg, (void)size;
	*what = "uname";
	if (uname(&u) < 0)
		return -1;
	snprintf(a->hostname, sizeof(a->hostname), "%s", u.nodename);
	snprintf(a->domainname, sizeof(a->domainname), "%s", u.domainname);
	return 0;
}

static int describe_uts(struct dump_ctx *ctx, pid_t pid, const char *name, NsEntry *e, cr_error_t *err)
{
	struct uts_answer a;

	if (nsenter_run(pid, name, read_uts, NULL, &a, sizeof(a), err) < 0)
		return -1;
	e->uts = arena_new(&ctx->arena, UtsNs);
	uts_ns__init(e->uts);
	e->uts->hostname = arena_strdup(&ctx->arena, a.hostname);
	e->uts->domainname = arena_strdup(&ctx->arena, a.domainname);
	return 0;
}

static int describe_ipc(struct dump_ctx *ctx, pid_t pid, const char *name, NsEntry *e, cr_error_t *err)
{
	(void)name;
	return ipcns_dump(&ctx->arena, pid, &e->ipc, err);
}

/* In the helper, inside the time namespace (setns made it its time
 * namespace for children too, whose offsets the file shows). */
static int read_offsets(void *arg, void *out, size_t size, const char **what)
{
	(void)arg;
	*what = "read /proc/self/timens_offsets";
	return nsenter_read_file("/proc/self/timens_offsets", out, size);
}

static int clock_ns(clockid_t clock, uint64_t *ns, cr_error_t *err)
{
	struct timespec ts;

	if (clock_gettime(clock, &ts) < 0)
		return cr_error(err, errno, "clock_gettime(%d)", (int)clock);
	*ns = timespec_ns(&ts);
	return 0;
}

/* A time namespace for children is read from outside: entering it would
 * freeze offsets its process may still mean to write.  A time namespace
 * that is not also the process's for children has processes in it
 * already, its offsets frozen: the helper may enter it. */
static int describe_time(struct dump_ctx *ctx, pid_t pid, const char *name, NsEntry *e, cr_error_t *err)
{
	struct proc_timens_offsets o;
	char text[256], boot_id[PROC_BOOT_ID_LEN + 1];
	TimeNs *tn;

	if (strcmp(name, "time_for_children") == 0) {
		if (proc_read_timens_offsets(pid, &o, err) < 0)
			return -1;
	} else if (nsenter_run(pid, name, read_offsets, NULL, text, sizeof(text), err) < 0 ||
		   proc_parse_timens_offsets(text, &o, err) < 0) {
		return -1;
	}
	tn = arena_new(&ctx->arena, TimeNs);
	time_ns__init(tn);
	tn->monotonic_sec = o.monotonic_sec;
	tn->monotonic_nsec = o.monotonic_nsec;
	tn->boottime_sec = o.boottime_sec;
	tn->boottime_nsec = o.boottime_nsec;
	if (clock_ns(CLOCK_MONOTONIC, &tn->dump_monotonic_ns, err) < 0 ||
	    clock_ns(CLOCK_BOOTTIME, &tn->dump_boottime_ns, err) < 0 || proc_read_boot_id(boot_id, err) < 0)
		return -1;
	tn->boot_id = arena_strdup(&ctx->arena, boot_id);
	e->time = tn;
	return 0;
}

/* Appends m to the image of kind, growing its array at 4, 8, 16, ...
 * entries; returns its number, from 1. */
static uint32_t add_msg(struct dump_ctx *ctx, uint32_t kind, ProtobufCMessage *m)
{
	struct img_msgs *img = &ctx->img[kind];

	if (img->n == 0 || (img->n >= 4 && (img->n & (img->n - 1)) == 0)) {
		ProtobufCMessage **v = arena_array(&ctx->arena, ProtobufCMessage *, img->n ? img->n * 2 : 4);

		if (img->n)
			memcpy(v, img->v, img->n * sizeof(*v));
		img->v = v;
	}
	img->v[img->n++] = m;
	return (uint32_t)img->n;
}

/* Its netns.img entry has the id its ns.img entry will have. */
static int describe_net(struct dump_ctx *ctx, pid_t pid, cr_error_t *err)
{
	struct netns_external ext = { ctx->opts->ext_veth, ctx->opts->n_ext_veth };
	NetNs *n;

	if (netns_dump(&ctx->arena, pid, (uint32_t)ctx->img[CR_IMG_NS].n + 1, &ext, &n, err) < 0)
		return -1;
	add_msg(ctx, CR_IMG_NETNS, &n->base);
	return 0;
}

static int describe(struct dump_ctx *ctx, pid_t pid, const char *name, NsEntry *e, cr_error_t *err)
{
	switch (e->kind) {
	case NS_KIND__NS_NET: return describe_net(ctx, pid, err);
	case NS_KIND__NS_UTS: return describe_uts(ctx, pid, name, e, err);
	case NS_KIND__NS_IPC: return describe_ipc(ctx, pid, name, e, err);
	case NS_KIND__NS_MNT: return mntns_dump(&ctx->arena, pid, &e->mnt, err);
	default: return describe_time(ctx, pid, name, e, err);
	}
}

static const NsEntry *find_ns(const struct dump_ctx *ctx, NsKind kind, uint64_t inode)
{
	const struct img_msgs *m = &ctx->img[CR_IMG_NS];

	for (size_t i = 0; i < m->n; i++) {
		const NsEntry *e = (const NsEntry *)m->v[i];

		if (e->kind == kind && e->inode == inode)
			return e;
	}
	return NULL;
}

/* Appends e to ns.img. */
static uint32_t add_ns(struct dump_ctx *ctx, NsEntry *e)
{
	e->id = (uint32_t)ctx->img[CR_IMG_NS].n + 1;
	return add_msg(ctx, CR_IMG_NS, &e->base);
}

/* Namespaces belong to threads: a thread that unshared one alone cannot
 * come back, since restore makes threads with clone from the main thread,
 * in its namespaces. */
static int check_threads(const struct dump_task *t, const struct ns_type *type, uint64_t ino, cr_error_t *err)
{
	for (size_t i = 1; i < t->n_threads; i++) {
		uint64_t theirs;

		if (proc_read_ns(t->threads[i].tid, type->name, &theirs, err) < 0)
			return -1;
		if (theirs != ino)
			return cr_error(err, 0, "pid %d thread %d: its %s differs from its main thread's: unsupported "
					"(a thread in a namespace of its own)", t->pid, t->threads[i].tid, type->what);
	}
	return 0;
}

/* The entry of t's namespace of that type, 0 if it is cr's own. */
static int collect_one(struct dump_ctx *ctx, struct dump_task *t, const struct ns_type *type, uint32_t *id,
		       cr_error_t *err)
{
	uint64_t mine, theirs;
	const NsEntry *found;
	NsEntry *e;

	*id = 0;
	if (proc_read_ns(0, type->name, &mine, err) < 0) {
		if ((*err)->status != ENOENT)
			return -1;
		cr_error_release(err);   /* this kernel has no such namespace */
		return 0;
	}
	if (proc_read_ns(t->pid, type->name, &theirs, err) < 0 || check_threads(t, type, theirs, err) < 0)
		return -1;
	if (theirs == mine)
		return 0;
	if (type->slot < 0)
		return cr_error(err, 0, "pid %d: its %s differs from cr's: unsupported (%s)", t->pid, type->what,
				type->why);
	found = find_ns(ctx, slot_kind(type->slot), theirs);
	if (found != NULL) {
		*id = found->id;
		return 0;
	}
	e = arena_new(&ctx->arena, NsEntry);
	ns_entry__init(e);
	e->kind = slot_kind(type->slot);
	e->inode = theirs;
	if (describe(ctx, t->pid, type->name, e, err) < 0)
		return cr_error_wrap(err, "pid %d: its %s", t->pid, type->what);
	*id = add_ns(ctx, e);
	pr_debug("pid %d: %s %" PRIu64 " is ns.img entry %u", t->pid, type->what, theirs, *id);
	return 0;
}

/* A SEM_UNDO adjustment lives as long as its semaphore set: only a
 * process whose ipc namespace holds sets can hold one. */
static int check_sem_undo(const struct dump_ctx *ctx, const struct dump_task *t, cr_error_t *err)
{
	uint32_t ipc = ref_of(t->core->ns, SLOT_IPC);
	int sets;

	if (ipc != 0)
		sets = (int)((const NsEntry *)ctx->img[CR_IMG_NS].v[ipc - 1])->ipc->n_sem;
	else if ((sets = ipcns_own_sem_sets(err)) < 0)
		return cr_error_wrap(err, "pid %d", t->pid);
	for (size_t i = 0; i < t->n_threads && sets > 0; i++)
		if (ipcns_check_undo(t->pid, t->threads[i].tid, err) < 0)
			return -1;
	return 0;
}

static int ns_collect(struct dump_ctx *ctx, struct dump_task *t, cr_error_t *err)
{
	NsRefs *refs = arena_new(&ctx->arena, NsRefs);

	ns_refs__init(refs);
	for (size_t i = 0; i < ARRAY_SIZE(ns_types); i++) {
		uint32_t id;

		if (collect_one(ctx, t, &ns_types[i], &id, err) < 0)
			return -1;
		if (ns_types[i].slot >= 0)
			*slot_ref(refs, ns_types[i].slot) = id;
	}
	t->core->ns = refs;
	return check_sem_undo(ctx, t, err);
}

/* A process in a mount namespace of the dump: its paths are read through
 * /proc/PID/root (mntns.h), which a chroot would move; a proc mounted in
 * the namespace is remade by the process that makes the namespace, in its
 * pid namespace, which must be the one the proc shows. */
static int check_mnt(const struct dump_ctx *ctx, const struct ns_plan *plan, const struct dump_task *t,
		     cr_error_t *err)
{
	uint32_t id = t->zombie ? 0 : ref_of(t->core->ns, SLOT_MNT);
	const struct dump_task *maker;

	if (id == 0)
		return 0;
	if (strcmp(t->core->root, "/") != 0)
		return cr_error(err, 0, "pid %d: a root directory of its own (chroot %s) inside a mount namespace of "
				"its own: unsupported", t->pid, t->core->root);
	maker = &ctx->tasks[plan->creator[id]];
	return mntns_check_proc(((const NsEntry *)ctx->img[CR_IMG_NS].v[id - 1])->mnt, t->pid, maker->pidns, err);
}

static bool in_tree(const struct dump_ctx *ctx, pid_t pid)
{
	for (size_t i = 0; i < ctx->n_tasks; i++)
		if (ctx->tasks[i].pid == pid)
			return true;
	return false;
}

/* A network namespace of the dump named by ip netns (/run/netns/NAME):
 * the restore makes a new one unless told to join it. */
static void tell_named_net(const struct dump_ctx *ctx)
{
	cleanup_closedir DIR *d = opendir("/run/netns");
	struct dirent *de;
	struct stat st;

	while (d != NULL && (de = readdir(d)) != NULL) {
		if (fstatat(dirfd(d), de->d_name, &st, 0) < 0 || de->d_name[0] == '.')
			continue;
		for (size_t i = 0; i < ctx->img[CR_IMG_NS].n; i++) {
			const NsEntry *e = (const NsEntry *)ctx->img[CR_IMG_NS].v[i];

			if (e->kind == NS_KIND__NS_NET && e->inode == (uint64_t)st.st_ino)
				pr_info("network namespace %u is /run/netns/%s: a restore makes a new one, unless "
					"--join-ns net:/run/netns/%s", e->id, de->d_name, de->d_name);
		}
	}
}

/* A network namespace of the dump that a process outside it is in too:
 * after the restore that process would be alone in the old one. */
/* cr and the processes it forks: they enter the tree's namespaces for a
 * moment (setns) and are no holders of them. */
static bool is_cr(pid_t pid)
{
	struct proc_status st = { 0 };
	cr_error_t ignored = NULL;
	bool ours;

	if (pid == getpid())
		return true;
	if (proc_read_status(pid, 0, &st, &ignored) < 0) {
		cr_error_release(&ignored);
		return false;
	}
	ours = st.ppid == getpid();
	proc_status_free(&st);
	return ours;
}

/* Is pid in the network namespace ino still?  The table of holders was
 * read at the freeze: a process that has gone since (a tool cr ran in the
 * namespace, say) or has left it holds nothing any more. */
static bool still_in_net(pid_t pid, uint64_t ino)
{
	char path[64];
	struct stat st;

	snprintf(path, sizeof(path), "/proc/%d/ns/net", (int)pid);
	return stat(path, &st) == 0 && (uint64_t)st.st_ino == ino;
}

static int check_net_outside(const struct dump_ctx *ctx, cr_error_t *err)
{
	const struct fdshare_netns *all;
	size_t n;

	if (ctx->img[CR_IMG_NETNS].n == 0)
		return 0;
	tell_named_net(ctx);
	if (fdshare_netns_all(ctx, &all, &n, err) < 0)   /* read since the freeze, with every fd */
		return -1;
	for (size_t k = 0; k < n; k++) {
		pid_t pid = all[k].pid;

		if (in_tree(ctx, pid))
			continue;
		for (size_t i = 0; i < ctx->n_tasks; i++) {
			const struct dump_task *t = &ctx->tasks[i];
			uint32_t id = t->zombie ? 0 : ref_of(t->core->ns, SLOT_NET);

			if (id && ((const NsEntry *)ctx->img[CR_IMG_NS].v[id - 1])->inode == all[k].ino && !is_cr(pid) &&
			    still_in_net(pid, all[k].ino))
				return cr_error(err, 0, "the network namespace of pid %d is also used by pid %d outside the "
						"dump: unsupported (it would stay in the old one)", t->pid, pid);
		}
	}
	return 0;
}

/* What restore will do must be possible: planned here, while the tree
 * still runs. */
static int ns_check_tree(struct dump_ctx *ctx, cr_error_t *err)
{
	cleanup_free struct ns_node *nodes = xcalloc(ctx->n_tasks, sizeof(*nodes));
	struct ns_plan *plan = NULL;

	if (netns_dump_finish(&ctx->arena, err) < 0)   /* the sysctls, read meanwhile */
		return -1;
	for (size_t i = 0; i < ctx->n_tasks; i++) {
		const struct dump_task *t = &ctx->tasks[i];

		nodes[i].pid = t->pid;
		nodes[i].parent = SIZE_MAX;
		for (size_t j = 0; j < i && t->ppid != 0; j++)   /* parents come first */
			if (ctx->tasks[j].pid == t->ppid)
				nodes[i].parent = j;
		nodes[i].refs = t->zombie ? NULL : t->core->ns;
	}
	if (check_net_outside(ctx, err) < 0 || plan_tree(nodes, ctx->n_tasks, ctx->img[CR_IMG_NS].n, &plan, err) < 0)
		return -1;
	for (size_t i = 0; i < ctx->n_tasks; i++)
		if (check_mnt(ctx, plan, &ctx->tasks[i], err) < 0) {
			plan_free(plan);
			return -1;
		}
	plan_free(plan);
	return 0;
}

/* --------------------------------------------------------------- restore */

static const NsEntry *ns_entry(const struct restore_ctx *ctx, uint32_t id)
{
	return (const NsEntry *)ctx->img[CR_IMG_NS].v[id - 1];
}

static int validate_time(const TimeNs *tn, cr_error_t *err)
{
	const int64_t max_sec = KTIME_SEC_MAX / 2;

	if (tn->monotonic_nsec >= NSEC_PER_SEC || tn->boottime_nsec >= NSEC_PER_SEC ||
	    tn->monotonic_sec > max_sec || tn->monotonic_sec < -max_sec || tn->boottime_sec > max_sec ||
	    tn->boottime_sec < -max_sec)
		return cr_error(err, 0, "clock offsets out of range");
	if (tn->dump_monotonic_ns > (uint64_t)INT64_MAX || tn->dump_boottime_ns > (uint64_t)INT64_MAX)
		return cr_error(err, 0, "clock values out of range");
	if (strlen(tn->boot_id) != PROC_BOOT_ID_LEN)
		return cr_error(err, 0, "a boot id of %zu characters", strlen(tn->boot_id));
	return 0;
}

static int validate_entry(const NsEntry *e, size_t i, cr_error_t *err)
{
	if (e->id != i + 1)
		return cr_error(err, 0, "entry %zu has id %u", i, e->id);
	if (!known_kind(e->kind))
		return cr_error(err, 0, "entry %u is of kind %d, which this cr cannot restore", e->id, e->kind);
	if ((e->uts != NULL) != (e->kind == NS_KIND__NS_UTS) || (e->ipc != NULL) != (e->kind == NS_KIND__NS_IPC) ||
	    (e->time != NULL) != (e->kind == NS_KIND__NS_TIME) || (e->mnt != NULL) != (e->kind == NS_KIND__NS_MNT))
		return cr_error(err, 0, "entry %u (%s) does not hold what its kind needs", e->id, ops_of(e->kind)->what);
	if (e->uts && (strlen(e->uts->hostname) > UTS_LEN || strlen(e->uts->domainname) > UTS_LEN))
		return cr_error(err, 0, "entry %u (uts namespace): a hostname or domainname longer than %d bytes",
				e->id, UTS_LEN);
	if (e->time && validate_time(e->time, err) < 0)
		return cr_error_wrap(err, "entry %u (time namespace)", e->id);
	if (e->ipc && ipcns_validate(e->ipc, err) < 0)
		return cr_error_wrap(err, "entry %u (ipc namespace)", e->id);
	if (e->mnt && mntns_validate(e->mnt, err) < 0)
		return cr_error_wrap(err, "entry %u (mount namespace)", e->id);
	return 0;
}

/* The netns.img entry of network namespace id, or NULL. */
static const NetNs *net_of(const struct restore_ctx *ctx, uint32_t id)
{
	const struct img_msgs *m = &ctx->img[CR_IMG_NETNS];

	for (size_t i = 0; i < m->n; i++)
		if (((const NetNs *)m->v[i])->id == id)
			return (const NetNs *)m->v[i];
	return NULL;
}

/* One netns.img entry for each network namespace of ns.img. */
static int validate_netns(const struct restore_ctx *ctx, cr_error_t *err)
{
	const struct img_msgs *ns = &ctx->img[CR_IMG_NS], *net = &ctx->img[CR_IMG_NETNS];
	size_t n_net = 0;

	for (size_t i = 0; i < ns->n; i++) {
		const NsEntry *e = (const NsEntry *)ns->v[i];

		if (e->kind != NS_KIND__NS_NET)
			continue;
		n_net++;
		if (net_of(ctx, e->id) == NULL)
			return cr_error(err, 0, "ns.img entry %u is a network namespace that netns.img lacks", e->id);
		if (netns_validate(net_of(ctx, e->id), err) < 0)
			return cr_error_wrap(err, "netns.img: network namespace %u", e->id);
	}
	if (net->n != n_net)
		return cr_error(err, 0, "netns.img holds %zu namespaces, ns.img %zu", net->n, n_net);
	return 0;
}

/* ns.img once (with the root), and every process's references. */
static int ns_validate(const struct restore_ctx *ctx, const struct restore_task *t, cr_error_t *err)
{
	const struct img_msgs *m = &ctx->img[CR_IMG_NS];

	for (size_t i = 0; t == &ctx->tasks[0] && i < m->n; i++)
		if (validate_entry((const NsEntry *)m->v[i], i, err) < 0)
			return cr_error_wrap(err, "ns.img");
	if (t == &ctx->tasks[0] && validate_netns(ctx, err) < 0)
		return -1;
	for (int s = 0; s < N_SLOTS; s++) {
		uint32_t id = ref_of(t->core->ns, s);

		if (id == 0)
			continue;
		if (id > m->n)
			return cr_error(err, 0, "core-%d.img: names namespace %u, which ns.img lacks", t->pid, id);
		if (ns_entry(ctx, id)->kind != slot_kind(s))
			return cr_error(err, 0, "core-%d.img: names namespace %u as its %s, but it is a %s", t->pid, id,
					ops_of(slot_kind(s))->what, ops_of(ns_entry(ctx, id)->kind)->what);
	}
	return 0;
}

/* A process whose core names no namespace is in cr's own. */
static const NsRefs no_refs = NS_REFS__INIT;

/* Every kind of namespace the images hold exists on this kernel (a time
 * namespace needs Linux 5.6 and CONFIG_TIME_NS): checked before any
 * process is created. */
static int check_kernel(const struct restore_ctx *ctx, cr_error_t *err)
{
	const struct img_msgs *m = &ctx->img[CR_IMG_NS];

	for (size_t i = 0; i < m->n; i++) {
		const struct ns_kind_ops *k = ops_of(((const NsEntry *)m->v[i])->kind);

		if (access(k->own, F_OK) < 0)
			return cr_error(err, errno, "ns.img holds a %s, and this kernel has none (%s)", k->what, k->own);
	}
	return 0;
}

/* --external names every veth peer that was outside; --join-ns net:PATH
 * has one namespace to replace, and PATH is one. */
static int plan_net(const struct restore_ctx *ctx, cr_error_t *err)
{
	struct netns_external ext = { ctx->opts->ext_veth, ctx->opts->n_ext_veth };
	const struct img_msgs *net = &ctx->img[CR_IMG_NETNS];
	cleanup_close int fd = -1;

	if (ctx->opts->join_net == NULL) {
		for (size_t i = 0; i < net->n; i++)
			if (netns_check_external((const NetNs *)net->v[i], &ext, err) < 0)
				return -1;
		return 0;
	}
	if (net->n != 1)
		return cr_error(err, 0, "--join-ns net:%s: the dump has %zu network namespaces other than cr's, not one",
				ctx->opts->join_net, net->n);
	fd = open(ctx->opts->join_net, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return cr_error(err, errno, "--join-ns net:%s", ctx->opts->join_net);
	if (ioctl(fd, NS_GET_NSTYPE) != CLONE_NEWNET)
		return cr_error(err, 0, "--join-ns net:%s: not a network namespace", ctx->opts->join_net);
	if (tcp_stream_lock_ns(ctx, ((const NetNs *)net->v[0])->id, fd, true, err) < 0)
		return cr_error_wrap(err, "--join-ns net:%s", ctx->opts->join_net);
	return 0;
}

static int ns_plan(struct restore_ctx *ctx, cr_error_t *err)
{
	cleanup_free struct ns_node *nodes = xcalloc(ctx->n_tasks, sizeof(*nodes));

	if (check_kernel(ctx, err) < 0)
		return -1;

	for (size_t i = 0; i < ctx->n_tasks; i++) {
		const struct restore_task *t = &ctx->tasks[i];

		nodes[i].pid = t->pid;
		nodes[i].parent = t->parent ? (size_t)(t->parent - ctx->tasks) : SIZE_MAX;
		nodes[i].refs = t->zombie ? NULL : t->core->ns ? t->core->ns : &no_refs;
	}
	if (plan_net(ctx, err) < 0)
		return -1;
	if (plan_tree(nodes, ctx->n_tasks, ctx->img[CR_IMG_NS].n, &ctx->ns, err) < 0)
		return cr_error_wrap(err, "ns.img");
	for (size_t i = 0; i < ctx->img[CR_IMG_NETNS].n; i++)
		if (netns_has_external((const NetNs *)ctx->img[CR_IMG_NETNS].v[i]))
			ctx->ns->host_needed[K_NET] = true;   /* the peers go there */
	if (ctx->img[CR_IMG_NS].n > 0)   /* keep_ns_fd: each one made, and the restorer's */
		ctx->n_aside += (int)(ctx->img[CR_IMG_NS].n + N_KINDS);
	return 0;
}

int64_t ns_clock_offset(const struct restore_ctx *ctx, const struct restore_task *t, clockid_t clock)
{
	uint32_t id = ref_of(t->core->ns, SLOT_TIME);
	const TimeNs *tn;

	if (id == 0)
		return 0;
	tn = ns_entry(ctx, id)->time;
	if (clock == CLOCK_MONOTONIC)
		return tn->monotonic_sec * (int64_t)NSEC_PER_SEC + tn->monotonic_nsec;
	if (clock == CLOCK_BOOTTIME || clock == CLOCK_BOOTTIME_ALARM)
		return tn->boottime_sec * (int64_t)NSEC_PER_SEC + tn->boottime_nsec;
	return 0;
}

uint32_t ns_mnt_ref(const NsRefs *refs)
{
	return ref_of(refs, SLOT_MNT);
}

uint32_t ns_net_ref(const NsRefs *refs)
{
	return ref_of(refs, SLOT_NET);
}

int ns_path_view(const struct restore_ctx *ctx, uint32_t mnt, const char *path, char *buf, size_t size)
{
	if (mnt == 0 || mnt > ctx->img[CR_IMG_NS].n || ns_entry(ctx, mnt)->mnt == NULL)
		return snprintf(buf, size, "%s", path) < (int)size;
	return mntns_host_view(ns_entry(ctx, mnt)->mnt, path, buf, size);
}

/* --------------------------------------------- in the restored processes */

static int configure_uts(struct restore_ctx *ctx, const NsEntry *e, cr_error_t *err)
{
	(void)ctx;
	if (sethostname(e->uts->hostname, strlen(e->uts->hostname)) < 0)
		return cr_error(err, errno, "sethostname %s", e->uts->hostname);
	if (setdomainname(e->uts->domainname, strlen(e->uts->domainname)) < 0)
		return cr_error(err, errno, "setdomainname %s", e->uts->domainname);
	return 0;
}

static int configure_ipc(struct restore_ctx *ctx, const NsEntry *e, cr_error_t *err)
{
	(void)ctx;
	return ipcns_restore(e->ipc, err);
}

static int configure_mnt(struct restore_ctx *ctx, const NsEntry *e, cr_error_t *err)
{
	(void)ctx;
	return mntns_restore(e->mnt, err);
}

/* sec.nsec moved by delta nanoseconds, nsec kept in [0, 1 s). */
static struct timespec shifted(int64_t sec, uint32_t nsec, __int128 delta)
{
	__int128 total = (__int128)sec * (__int128)NSEC_PER_SEC + nsec + delta;
	__int128 s = total / (__int128)NSEC_PER_SEC, r = total % (__int128)NSEC_PER_SEC;

	if (r < 0) {
		r += NSEC_PER_SEC;
		s--;
	}
	return (struct timespec){ .tv_sec = (time_t)s, .tv_nsec = (long)r };
}

/* The offsets as dumped on the same boot; on another, moved so that the
 * namespace's clocks go on from their dumped values. */
static int offsets_now(const TimeNs *tn, struct timespec *mono, struct timespec *boot, cr_error_t *err)
{
	char boot_id[PROC_BOOT_ID_LEN + 1];
	uint64_t now_mono, now_boot;
	bool same;

	if (proc_read_boot_id(boot_id, err) < 0 || clock_ns(CLOCK_MONOTONIC, &now_mono, err) < 0 ||
	    clock_ns(CLOCK_BOOTTIME, &now_boot, err) < 0)
		return -1;
	same = strcmp(boot_id, tn->boot_id) == 0;
	if (!same)
		pr_info("a time namespace dumped on boot %s is restored on boot %s: its clocks go on from their "
			"dumped values", tn->boot_id, boot_id);
	*mono = shifted(tn->monotonic_sec, tn->monotonic_nsec,
			same ? 0 : (__int128)tn->dump_monotonic_ns - (__int128)now_mono);
	*boot = shifted(tn->boottime_sec, tn->boottime_nsec,
			same ? 0 : (__int128)tn->dump_boottime_ns - (__int128)now_boot);
	return 0;
}

/* Offsets can be written only while no process is in the namespace:
 * right after unshare, before anything is forked into it. */
static int configure_time(struct restore_ctx *ctx, const NsEntry *e, cr_error_t *err)
{
	struct timespec mono, boot;
	cleanup_close int fd = -1;
	char text[128];
	int len;

	(void)ctx;
	if (offsets_now(e->time, &mono, &boot, err) < 0)
		return -1;
	len = snprintf(text, sizeof(text), "monotonic %lld %ld\nboottime %lld %ld\n", (long long)mono.tv_sec,
		       mono.tv_nsec, (long long)boot.tv_sec, boot.tv_nsec);
	fd = open("/proc/self/timens_offsets", O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return cr_error(err, errno, "open /proc/self/timens_offsets");
	if (write(fd, text, (size_t)len) != len)
		return cr_error(err, errno, "set the clock offsets (monotonic %lld.%09ld s, boottime %lld.%09ld s)",
				(long long)mono.tv_sec, mono.tv_nsec, (long long)boot.tv_sec, boot.tv_nsec);
	return 0;
}

/* Everything the network namespace held, made in the new one; the peers
 * of external veths go to cr's (the root kept an fd of it). */
static int configure_net(struct restore_ctx *ctx, const NsEntry *e, cr_error_t *err)
{
	struct netns_external ext = { ctx->opts->ext_veth, ctx->opts->n_ext_veth };

	if (tcp_stream_lock_ns(ctx, e->id, -1, false, err) < 0)   /* before its links can take packets */
		return -1;
	return netns_restore(net_of(ctx, e->id), &ext, ctx->ns->host_fd[K_NET], err);
}

/* An fd of the namespace at path, kept above every fd the process will
 * have, where the processes forked below inherit it. */
static int keep_ns_fd(const struct restore_task *t, const char *path, cr_error_t *err)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return cr_error(err, errno, "open %s", path);
	return files_stash_fd(t, fd, err);
}

/* Makes namespace id and keeps an fd of it; unless stay, the process goes
 * back to the namespace it was in. */
static int make_ns(struct restore_ctx *ctx, struct restore_task *t, uint32_t id, bool stay, cr_error_t *err)
{
	const NsEntry *e = ns_entry(ctx, id);
	const struct ns_kind_ops *k = ops_of(e->kind);
	cleanup_close int back = -1;
	int fd;

	if (e->kind == NS_KIND__NS_NET && ctx->opts->join_net) {   /* --join-ns: made by someone else */
		if ((fd = keep_ns_fd(t, ctx->opts->join_net, err)) < 0)
			return -1;
		ctx->ns->fd[id] = fd;
		return 0;
	}
	if (!stay && (back = open(k->own, O_RDONLY | O_CLOEXEC)) < 0)
		return cr_error(err, errno, "open %s", k->own);
	if (unshare(k->flag) < 0)
		return cr_error(err, errno, "unshare a new %s", k->what);
	if (k->configure && k->configure(ctx, e, err) < 0)
		return -1;
	fd = keep_ns_fd(t, k->made, err);
	if (fd < 0)
		return -1;
	ctx->ns->fd[id] = fd;
	if (!stay && setns(back, k->flag) < 0)
		return cr_error(err, errno, "go back to the %s it was in", k->what);
	return 0;
}

static int keep_host_fds(struct restore_ctx *ctx, struct restore_task *t, cr_error_t *err)
{
	for (size_t k = 0; k < N_KINDS; k++)
		if (ctx->ns->host_needed[k] && (ctx->ns->host_fd[k] = keep_ns_fd(t, kind_ops[k].own, err)) < 0)
			return cr_error_wrap(err, "keep the restorer's %s", kind_ops[k].what);
	return 0;
}

/* Into each of its namespaces that is not the one it was born in. */
static int enter_own(struct restore_ctx *ctx, struct restore_task *t, cr_error_t *err)
{
	const NsRefs *parent = t->parent ? t->parent->core->ns : NULL;

	for (size_t k = 0; k < N_KINDS; k++) {
		const struct ns_kind_ops *ops = &kind_ops[k];
		uint32_t want = ref_of(t->core->ns, ops->slot);
		uint32_t have = ref_of(parent, ops->slot == SLOT_TIME ? SLOT_TIME_FOR_CHILDREN : ops->slot);
		int fd = want ? ctx->ns->fd[want] : ctx->ns->host_fd[k];

		if (want == have)
			continue;
		if (fd < 0)
			return cr_error(err, 0, "its %s (ns.img entry %u) was not made before it", ops->what, want);
		if (setns(fd, ops->flag) < 0)
			return cr_error(err, errno, "enter its %s (ns.img entry %u)", ops->what, want);
	}
	return 0;
}

static int ns_before_fork(struct restore_ctx *ctx, struct restore_task *t, cr_error_t *err)
{
	size_t me = (size_t)(t - ctx->tasks);
	uint32_t tfc = ref_of(t->core->ns, SLOT_TIME_FOR_CHILDREN);

	if (me == 0 && keep_host_fds(ctx, t, err) < 0)
		return -1;
	for (uint32_t id = 1; id <= ctx->ns->n_ns; id++)
		if (ctx->ns->creator[id] == me && !ctx->ns->stays[id] && make_ns(ctx, t, id, false, err) < 0)
			return cr_error_wrap(err, "make %s %u", ops_of(ns_entry(ctx, id)->kind)->what, id);
	if (enter_own(ctx, t, err) < 0)
		return -1;
	if (tfc != ref_of(t->core->ns, SLOT_TIME) && make_ns(ctx, t, tfc, true, err) < 0)
		return cr_error_wrap(err, "make its time namespace for children (%u)", tfc);
	return 0;
}

static void ns_release_restore(struct restore_ctx *ctx)
{
	tcp_stream_lock_forget(ctx);   /* a failed restore's; none once restored */
	plan_free(ctx->ns);
	ctx->ns = NULL;
}

static void ns_release_dump(struct dump_ctx *ctx)
{
	(void)ctx;
	netns_dump_abandon();
}

const struct state_kind state_ns = {
	.name = "namespaces",
	.collect = ns_collect,
	.check_tree = ns_check_tree,
	.release_dump = ns_release_dump,
	.validate = ns_validate,
	.plan = ns_plan,
	.before_fork = ns_before_fork,
	.release_restore = ns_release_restore,
};
