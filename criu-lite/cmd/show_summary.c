/* cr show: the readable summary of a decoded dump (see show.h).  Parts of
 * a dump that could not be decoded are left out; show.c names them. */
#include "img/image.h"
#include "img/msgs.h"
#include "cmd/json.h"
#include "cmd/show.h"
#include "net/netns.h"
#include "os/pidsel.h"
#include "os/util.h"
#include "os/xalloc.h"

#include "core.pb-c.h"
#include "files.pb-c.h"
#include "inventory.pb-c.h"
#include "img/dumpid.h"
#include "mm.pb-c.h"
#include "ns.pb-c.h"
#include "pstree.pb-c.h"

#include <ctype.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/time.h>
#include <time.h>

#define SIG_HANDLER_IGN 1   /* SIG_DFL is 0, a function is above */

/* --- formatting helpers ---------------------------------------------------- */

static const char *yes_no(bool v)
{
	return v ? "yes" : "no";
}

/* "12 KiB", "1.5 MiB": buf holds at least 32 bytes. */
static const char *human_size(char *buf, size_t len, uint64_t bytes)
{
	static const char *const units[] = { "bytes", "KiB", "MiB", "GiB", "TiB", "PiB" };
	double v = (double)bytes;
	size_t u = 0;

	while (v >= 1024 && u + 1 < ARRAY_SIZE(units)) {
		v /= 1024;
		u++;
	}
	if (u == 0)
		snprintf(buf, len, "%" PRIu64 " bytes", bytes);
	else if (v == (double)(uint64_t)v)
		snprintf(buf, len, "%.0f %s", v, units[u]);
	else
		snprintf(buf, len, "%.1f %s", v, units[u]);
	return buf;
}

/* "reg" for FILE_REG, "anon" for VMA_ANON: the enum name past its prefix,
 * lower case, so new kinds are named without touching this file. */
static const char *enum_short(char *buf, size_t len, const ProtobufCEnumDescriptor *desc, int value,
			      const char *prefix)
{
	const char *name = json_enum_name(desc, value);
	size_t i = 0;

	if (name == NULL) {
		snprintf(buf, len, "kind %d", value);
		return buf;
	}
	if (strncmp(name, prefix, strlen(prefix)) == 0)
		name += strlen(prefix);
	for (; name[i] != '\0' && i + 1 < len; i++)
		buf[i] = (char)tolower((unsigned char)name[i]);
	buf[i] = '\0';
	return buf;
}

static const char *signal_name(char *buf, size_t len, uint32_t sig)
{
	const char *abbrev = sig < 1024 ? sigabbrev_np((int)sig) : NULL;

	if (abbrev != NULL)
		snprintf(buf, len, "SIG%s", abbrev);
	else if ((int)sig >= SIGRTMIN && (int)sig <= SIGRTMAX)
		snprintf(buf, len, "SIGRTMIN+%d", (int)sig - SIGRTMIN);
	else
		snprintf(buf, len, "signal %u", sig);
	return buf;
}

/* The message on one line, as compact JSON. */
static void print_compact(FILE *out, const ProtobufCMessage *msg)
{
	struct json_writer w;

	json_init(&w, out, false);
	json_message(&w, msg);
}

static const PstreeEntry *find_pstree(const struct show_dump *d, pid_t pid)
{
	const struct show_image *im = show_find(d, CR_IMG_PSTREE, 0);

	for (size_t i = 0; im != NULL && i < im->n_msgs; i++) {
		const PstreeEntry *e = (const PstreeEntry *)im->msgs[i];

		if (e->n_ns_pid > 0 && e->ns_pid[0] == (uint32_t)pid)
			return e;
	}
	return NULL;
}

static const FileEntry *find_file(const struct show_dump *d, uint32_t id)
{
	const struct show_image *im = show_find(d, CR_IMG_FILES, 0);

	for (size_t i = 0; im != NULL && i < im->n_msgs; i++)
		if (((const FileEntry *)im->msgs[i])->id == id)
			return (const FileEntry *)im->msgs[i];
	return NULL;
}

static const char *process_name(const struct show_dump *d, pid_t pid)
{
	const CoreEntry *core = (const CoreEntry *)show_find_one(d, CR_IMG_CORE, pid);

	if (core != NULL && core->n_threads > 0 && core->threads[0]->comm != NULL)
		return core->threads[0]->comm;
	return "?";
}

/* --- the inventory ---------------------------------------------------------------- */

static void print_signed(FILE *out, const struct show_dump *d, const InventoryEntry *inv);

/* The dump's id, whether it is encrypted and whether signed (and verified). */
#define CHAIN_SHOW_MAX 64   /* rounds shown at most */

static void print_rounds(FILE *out, const struct show_dump *d, const InventoryEntry *inv);

static void print_identity(FILE *out, const struct show_dump *d, const InventoryEntry *inv)
{
	struct cr_dump_id id;
	char hex[CR_DUMP_ID_HEX];
	cr_error_t err = NULL;

	if (cr_dump_id_from(inv->has_dump_id ? inv->dump_id.data : NULL, inv->dump_id.len, &id, "", &err) == 0)
		fprintf(out, "  dump id       %s\n", cr_dump_id_hex(&id, hex));
	cr_error_release(&err);
	if (d->encrypted)
		fprintf(out, "  encrypted     yes, key id %s (decrypted with %s)\n", d->key_id, d->decrypt_key);
	else
		fprintf(out, "  encrypted     no\n");
	print_signed(out, d, inv);
}

/* Whether the dump is signed (and verified); inv is NULL when it cannot be
 * read (an encrypted dump shown without its key). */
static void print_signed(FILE *out, const struct show_dump *d, const InventoryEntry *inv)
{
	char hashed[48] = "";

	if (inv != NULL)
		snprintf(hashed, sizeof(hashed), ", %zu images hashed", inv->n_images);
	if (d->sign == SHOW_UNSIGNED)
		fprintf(out, "  signed        no\n");
	else if (d->sign == SHOW_SIGNATURE_DAMAGED)
		fprintf(out, "  signed        ? (the signature file is damaged)\n");
	else if (d->verify_key == NULL)
		fprintf(out, "  signed        yes, key %s%s (not verified: give --verify KEYFILE.pub)\n",
			d->signer, hashed);
	else
		fprintf(out, "  signed        yes, key %s%s: %s with %s\n", d->signer, hashed,
			d->verified ? "verified" : "NOT verified", d->verify_key);
}

static void print_inventory(FILE *out, const struct show_dump *d)
{
	const InventoryEntry *inv = (const InventoryEntry *)show_find_one(d, CR_IMG_INVENTORY, 0);
	time_t when;
	struct tm tm;
	char date[64] = "?";

	fprintf(out, "Dump in %s\n", d->dir);
	if (d->locked) {
		fprintf(out, "  encrypted     yes, key id %s: give --decrypt KEYFILE to show what it holds\n",
			d->key_id);
		print_signed(out, d, NULL);
		return;
	}
	if (inv == NULL) {
		fprintf(out, "  (no readable inventory)\n");
		return;
	}
	when = (time_t)(inv->dump_time_ns / NSEC_PER_SEC);
	if (gmtime_r(&when, &tm) != NULL)
		strftime(date, sizeof(date), "%Y-%m-%d %H:%M:%S UTC", &tm);
	fprintf(out, "  dumped        %s by cr %s (image format %u)\n", date,
		inv->cr_version != NULL ? inv->cr_version : "?", inv->format_version);
	fprintf(out, "  kernel        %s, %s, page size %u\n", inv->kernel_release, inv->arch, inv->page_size);
	fprintf(out, "  cpu state     xfeatures 0x%" PRIx64 ", xstate %u bytes\n", inv->xfeatures,
		inv->xstate_size);
	fprintf(out, "  options       compress %s, shell-job %s, leave-running %s\n", yes_no(inv->compress),
		yes_no(inv->shell_job), yes_no(inv->leave_running));
	fprintf(out, "  processes     %zu, root pid %u\n", inv->n_task_pids, inv->root_pid);
	if (inv->has_frozen_ns)
		fprintf(out, "  frozen: %.1f ms (from the first interrupt of the tree to its inventory)\n",
			(double)inv->frozen_ns / 1e6);
	print_identity(out, d, inv);
	print_rounds(out, d, inv);
}

/* --- pre-copy rounds ---------------------------------------------------------------- */

static void print_round(FILE *out, const char *where, const InventoryEntry *inv)
{
	char a[32];

	fprintf(out, "    %-20s %s, %" PRIu64 " pages copied (%s), %" PRIu64 " unchanged since the round before\n",
		where, inv->has_pre_dump && inv->pre_dump ? "pre-dump" : "dump", inv->pages_copied,
		human_size(a, sizeof(a), inv->pages_copied * PAGE_SIZE_CR), inv->pages_in_prev);
}

/* The chain of rounds this one ends (cr pre-dump, --prev-images-dir). */
static void print_rounds(FILE *out, const struct show_dump *d, const InventoryEntry *inv)
{
	int dirfd = open(d->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	struct img_msgs m[CHAIN_SHOW_MAX] = { { 0 } };
	char where[PATH_MAX] = ".";
	size_t n = 0;

	if (!(inv->has_pre_dump && inv->pre_dump) && inv->prev_images_dir == NULL) {
		if (dirfd >= 0)
			close(dirfd);
		return;
	}
	fprintf(out, "  rounds        (pre-copy, this one first)\n");
	print_round(out, where, inv);
	while (dirfd >= 0 && inv->prev_images_dir != NULL && n < CHAIN_SHOW_MAX) {
		cr_error_t err = NULL;
		int next = openat(dirfd, inv->prev_images_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

		snprintf(where + strlen(where), sizeof(where) - strlen(where), "/%s", inv->prev_images_dir);
		close(dirfd);
		dirfd = next;
		if (dirfd < 0 || img_load(dirfd, CR_IMG_INVENTORY, 0, NULL, &m[n], &err) < 0) {
			fprintf(out, "    %-20s missing or unreadable%s%s\n", where, err ? ": " : "", err ? err->msg : "");
			cr_error_release(&err);
			break;
		}
		inv = (const InventoryEntry *)m[n++].v[0];
		print_round(out, where, inv);
	}
	if (dirfd >= 0)
		close(dirfd);
	for (size_t i = 0; i < n; i++)
		img_msgs_free(&m[i]);
}

/* --- the process tree ---------------------------------------------------------------- */

#define TREE_MAX_INDENT 20   /* deeper levels print at this indent */

struct tree {
	const struct show_dump *d;
	const struct show_image *ps;
	size_t *by_ppid;         /* entry indices sorted by parent pid */
	bool *shown;
	size_t *stack;           /* depth-first walk: entry and depth pairs */
	uint32_t *pids;          /* every entry's pid, sorted */
};

static const PstreeEntry *tree_entry(const struct tree *t, size_t i)
{
	return (const PstreeEntry *)t->ps->msgs[i];
}

static uint32_t entry_pid(const PstreeEntry *e)
{
	return e->n_ns_pid > 0 ? e->ns_pid[0] : 0;
}

static const struct show_image *sort_ps;   /* for the qsort comparator */

/* By parent, then by pid. */
static int ppid_cmp(const void *a, const void *b)
{
	const PstreeEntry *x = (const PstreeEntry *)sort_ps->msgs[*(const size_t *)a];
	const PstreeEntry *y = (const PstreeEntry *)sort_ps->msgs[*(const size_t *)b];

	if (x->ppid != y->ppid)
		return x->ppid < y->ppid ? -1 : 1;
	return entry_pid(x) < entry_pid(y) ? -1 : entry_pid(x) > entry_pid(y);
}

/* The first position in by_ppid whose entry's parent is not below ppid. */
static size_t first_child(const struct tree *t, uint32_t ppid)
{
	size_t lo = 0, hi = t->ps->n_msgs;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (tree_entry(t, t->by_ppid[mid])->ppid < ppid)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* Just past the last position in by_ppid whose entry has parent ppid. */
static size_t last_child(const struct tree *t, uint32_t ppid)
{
	return ppid == UINT32_MAX ? t->ps->n_msgs : first_child(t, ppid + 1);
}

static void print_tree_entry(FILE *out, const struct tree *t, size_t i, size_t depth)
{
	const PstreeEntry *e = tree_entry(t, i);
	int indent = (int)(depth < TREE_MAX_INDENT ? depth : TREE_MAX_INDENT) * 3;
	char pids[160], pgid[160], sid[160];

	fprintf(out, "  %*s%s%s (%s)  pgid %s  sid %s  threads %zu\n", indent, "", depth ? "└─ " : "",
		pidsel_format(pids, sizeof(pids), e->ns_pid, e->n_ns_pid),
		e->n_ns_pid ? process_name(t->d, (pid_t)e->ns_pid[0]) : "?",
		pidsel_format(pgid, sizeof(pgid), e->ns_pgid, e->n_ns_pgid),
		pidsel_format(sid, sizeof(sid), e->ns_sid, e->n_ns_sid), e->n_threads);
	for (size_t k = 0; k < e->n_threads; k++)
		fprintf(out, "  %*s   thread %s\n", indent, "",
			pidsel_format(pids, sizeof(pids), e->threads[k]->ns_tid, e->threads[k]->n_ns_tid));
}

/* Prints root and everything below it, each entry once, without recursion
 * (a damaged pstree may chain any number of entries). */
static void print_subtree(FILE *out, struct tree *t, size_t root)
{
	size_t top = 0;

	t->shown[root] = true;
	t->stack[top++] = root;
	t->stack[top++] = 0;
	while (top > 0) {
		size_t depth = t->stack[--top], i = t->stack[--top];
		uint32_t pid = entry_pid(tree_entry(t, i));

		print_tree_entry(out, t, i, depth);
		if (pid == 0)
			continue;
		/* Pushed last child first, so they print in pid order. */
		for (size_t c = last_child(t, pid); c > first_child(t, pid); c--) {
			size_t k = t->by_ppid[c - 1];

			if (t->shown[k])
				continue;
			t->shown[k] = true;
			t->stack[top++] = k;
			t->stack[top++] = depth + 1;
		}
	}
}

static int u32_cmp(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

/* A root: its parent is 0 or not in the dump. */
static bool is_root(const struct tree *t, size_t i)
{
	uint32_t ppid = tree_entry(t, i)->ppid;

	return ppid == 0 || bsearch(&ppid, t->pids, t->ps->n_msgs, sizeof(*t->pids), u32_cmp) == NULL;
}

static void tree_init(struct tree *t)
{
	size_t n = t->ps->n_msgs;

	t->by_ppid = xcalloc(n + 1, sizeof(*t->by_ppid));
	t->shown = xcalloc(n + 1, sizeof(*t->shown));
	t->stack = xcalloc(2 * n + 2, sizeof(*t->stack));
	t->pids = xcalloc(n + 1, sizeof(*t->pids));
	for (size_t i = 0; i < n; i++) {
		t->by_ppid[i] = i;
		t->pids[i] = entry_pid(tree_entry(t, i));
	}
	if (n > 1)
		qsort(t->pids, n, sizeof(*t->pids), u32_cmp);
	sort_ps = t->ps;
	if (n > 1)
		qsort(t->by_ppid, n, sizeof(*t->by_ppid), ppid_cmp);
}

static void print_tree(FILE *out, const struct show_dump *d)
{
	struct tree t = { .d = d, .ps = show_find(d, CR_IMG_PSTREE, 0) };

	fprintf(out, "\nProcess tree (pids at every pid-namespace level, outermost first)\n");
	if (t.ps == NULL) {
		fprintf(out, "  (no readable pstree.img)\n");
		return;
	}
	tree_init(&t);
	/* Roots first; then entries whose parents form a loop (damage, but shown). */
	for (size_t i = 0; i < t.ps->n_msgs; i++)
		if (!t.shown[i] && is_root(&t, i))
			print_subtree(out, &t, i);
	for (size_t i = 0; i < t.ps->n_msgs; i++)
		if (!t.shown[i])
			print_subtree(out, &t, i);
	free(t.by_ppid);
	free(t.shown);
	free(t.stack);
	free(t.pids);
}

/* --- namespaces ------------------------------------------------------------------------ */

/* An ipc namespace's objects, one a line, without their contents. */
static void print_ipc(FILE *out, const IpcNs *ipc)
{
	char size[32];

	fprintf(out, "%zu limits, %zu shared memory segments, %zu message queues\n", ipc->n_sysctls, ipc->n_shm,
		ipc->n_msq);
	for (size_t i = 0; i < ipc->n_shm; i++) {
		const SysvShm *s = ipc->shm[i];

		if (s->perm != NULL)
			fprintf(out, "         shm key 0x%08x id %d mode %04o owner %u:%u, %s (%zu bytes stored)\n",
				(unsigned)s->perm->key, s->perm->id, s->perm->mode, s->perm->uid, s->perm->gid,
				human_size(size, sizeof(size), s->size), s->contents.len);
	}
	for (size_t i = 0; i < ipc->n_msq; i++) {
		const SysvMsq *q = ipc->msq[i];

		if (q->perm != NULL)
			fprintf(out, "         msg key 0x%08x id %d mode %04o owner %u:%u, %zu messages, at most %s\n",
				(unsigned)q->perm->key, q->perm->id, q->perm->mode, q->perm->uid, q->perm->gid,
				q->n_messages, human_size(size, sizeof(size), q->qbytes));
	}
}

/* A mount namespace's mounts, one a line. */
static void print_mnt(FILE *out, const MntNs *m)
{
	static const char *const props[] = { "private", "shared", "as cr's", "slave of cr's", "unbindable" };
	char how[32];

	fprintf(out, "%zu mounts\n", m->n_mounts);
	for (size_t i = 0; i < m->n_mounts; i++) {
		const MountEntry *e = m->mounts[i];

		fprintf(out, "         %-9s %s (%s%s%s) flags 0x%x, %s", enum_short(how, sizeof(how),
			&mount_how__descriptor, e->how, "MOUNT_"), e->mountpoint, e->fstype,
			e->fs_options[0] ? " " : "", e->fs_options, e->flags,
			e->propagation < ARRAY_SIZE(props) ? props[e->propagation] : "?");
		if (e->host_path != NULL)
			fprintf(out, ", from %s", e->host_path);
		if (e->has_bind_of)
			fprintf(out, ", from %s of mount %u", e->root, e->bind_of);
		if (e->n_files > 0)
			fprintf(out, ", %zu files", e->n_files);
		fputc('\n', out);
	}
}

/* A network namespace's links and addresses, from netns.img. */
static void print_net(FILE *out, const struct show_dump *d, uint32_t id)
{
	const struct show_image *im = show_find(d, CR_IMG_NETNS, 0);

	for (size_t i = 0; im != NULL && i < im->n_msgs; i++)
		if (((const NetNs *)im->msgs[i])->id == id) {
			netns_print(out, (const NetNs *)im->msgs[i]);
			return;
		}
	fprintf(out, "(not in netns.img)\n");
}

/* Every namespace of ns.img: its kind, identity at dump and what it holds. */
static void print_namespaces(FILE *out, const struct show_dump *d)
{
	const struct show_image *im = show_find(d, CR_IMG_NS, 0);
	char kind[32];

	if (im == NULL)
		return;
	fprintf(out, "\nNamespaces other than cr's%s\n", im->n_msgs ? "" : ": none");
	for (size_t i = 0; i < im->n_msgs; i++) {
		const NsEntry *e = (const NsEntry *)im->msgs[i];
		const ProtobufCMessage *what = e->uts ? &e->uts->base : e->time ? &e->time->base : NULL;

		fprintf(out, "  %3u  %-5s inode %" PRIu64 "  ", e->id,
			enum_short(kind, sizeof(kind), &ns_kind__descriptor, e->kind, "NS_"), e->inode);
		if (e->ipc != NULL) {
			print_ipc(out, e->ipc);
			continue;
		}
		if (e->mnt != NULL) {
			print_mnt(out, e->mnt);
			continue;
		}
		if (e->kind == NS_KIND__NS_NET) {
			print_net(out, d, e->id);
			continue;
		}
		if (what != NULL)
			print_compact(out, what);
		fputc('\n', out);
	}
}

/* A process's namespaces by ns.img entry. */
static void print_ns_refs(FILE *out, const CoreEntry *core)
{
	const NsRefs *r = core->ns;

	if (r == NULL || (r->uts == 0 && r->ipc == 0 && r->time == 0 && r->time_for_children == 0 && r->mnt == 0 &&
			  r->net == 0)) {
		fprintf(out, "  namespaces    all cr's own\n");
		return;
	}
	fprintf(out, "  namespaces    ");
	fprintf(out, r->uts ? "uts %u" : "uts cr's", r->uts);
	fprintf(out, r->ipc ? ", ipc %u" : ", ipc cr's", r->ipc);
	fprintf(out, r->time ? ", time %u" : ", time cr's", r->time);
	fprintf(out, r->time_for_children ? ", time for children %u" : ", time for children cr's",
		r->time_for_children);
	fprintf(out, r->mnt ? ", mount %u" : ", mount cr's", r->mnt);
	fprintf(out, r->net ? ", network %u\n" : ", network cr's\n", r->net);
}

/* --- one process ----------------------------------------------------------------------- */

static void print_ids(FILE *out, const char *what, const uint32_t *v, size_t n)
{
	fprintf(out, "%s", what);
	if (n == 0)
		fprintf(out, " none");
	for (size_t i = 0; i < n; i++)
		fprintf(out, " %u", v[i]);
}

static void print_thread(FILE *out, const ThreadCore *th, const SeccompEntry *se)
{
	char size[32];

	fprintf(out, "    tid %u (%s)", th->tid, th->comm != NULL ? th->comm : "?");
	if (th->regs != NULL)
		fprintf(out, "  rip 0x%" PRIx64 "  rsp 0x%" PRIx64 "  rax 0x%" PRIx64, th->regs->rip, th->regs->rsp,
			th->regs->rax);
	fprintf(out, "\n      sigmask 0x%" PRIx64 ", xstate %s", th->sigmask, human_size(size, sizeof(size), th->xstate.len));
	if (th->rseq != NULL)
		fprintf(out, ", rseq 0x%" PRIx64 " (%u bytes)", th->rseq->addr, th->rseq->len);
	if (th->altstack != NULL && !(th->altstack->flags & SS_DISABLE))
		fprintf(out, ", altstack 0x%" PRIx64 " (%s)", th->altstack->sp,
			human_size(size, sizeof(size), th->altstack->size));
	if (th->seccomp != NULL && th->seccomp->mode == 1) {
		fprintf(out, ", seccomp strict");
	} else if (th->seccomp != NULL && th->seccomp->mode == 2) {
		/* newest first; a damaged image may loop: at most every filter once */
		fprintf(out, ", seccomp filters");
		for (uint32_t f = th->seccomp->filter, n = 0; f != 0 && se != NULL && f <= se->n_filters &&
							      n < se->n_filters; f = se->filters[f - 1]->prev, n++)
			fprintf(out, " %u", f - 1);
	} else if (th->seccomp != NULL && th->seccomp->mode != 0) {
		fprintf(out, ", seccomp mode %u", th->seccomp->mode);
	}
	fprintf(out, "\n      robust list 0x%" PRIx64 ", clear_child_tid 0x%" PRIx64 "\n", th->robust_list,
		th->clear_child_tid);
	if (th->creds != NULL) {
		const CredsEntry *c = th->creds;

		print_ids(out, "      creds uid", c->uid, c->n_uid);
		print_ids(out, ", gid", c->gid, c->n_gid);
		print_ids(out, ", groups", c->groups, c->n_groups);
		fprintf(out, "\n      caps eff %016" PRIx64 " prm %016" PRIx64 " inh %016" PRIx64 " bnd %016" PRIx64
			" amb %016" PRIx64 ", securebits 0x%x%s\n", c->cap_eff, c->cap_prm, c->cap_inh, c->cap_bnd,
			c->cap_amb, c->securebits, c->no_new_privs ? ", no_new_privs" : "");
	}
}

/* The process's seccomp filters: a tree, each filter above the one it
 * was installed on (see proto/seccomp.proto). */
static void print_seccomp(FILE *out, const SeccompEntry *se)
{
	if (se == NULL || se->n_filters == 0)
		return;
	fprintf(out, "  seccomp       %zu filter%s\n", se->n_filters, se->n_filters == 1 ? "" : "s");
	for (size_t i = 0; i < se->n_filters; i++) {
		const SeccompFilterEntry *f = se->filters[i];

		fprintf(out, "    filter %zu: %zu instructions%s", i, f->prog.len / 8, f->flags & 2 ? ", LOG" : "");
		if (f->flags & ~2u)
			fprintf(out, ", flags 0x%x", f->flags);
		if (f->prev != 0)
			fprintf(out, ", above filter %u", f->prev - 1);
		fputc('\n', out);
	}
}

static void print_core(FILE *out, const CoreEntry *core)
{
	char sig[32], stop[32];

	fprintf(out, "  exit signal   %s", signal_name(sig, sizeof(sig), core->exit_signal));
	if (core->has_stopped && core->stopped)
		fprintf(out, ", stopped (%s) at dump time",
			signal_name(stop, sizeof(stop), core->has_stop_signo ? core->stop_signo : SIGSTOP));
	fputc('\n', out);
	fprintf(out, "  cwd           %s%s\n  root          %s\n", core->cwd,
		core->has_cwd_removed_mode ? " (removed: made again at restore, then removed)" : "", core->root);
	fprintf(out, "  umask         %04o, personality 0x%x\n", core->umask, core->personality);
	print_seccomp(out, core->seccomp);
	print_ns_refs(out, core);
	fprintf(out, "  threads       %zu\n", core->n_threads);
	for (size_t i = 0; i < core->n_threads; i++)
		print_thread(out, core->threads[i], core->seccomp);
}

/* --- memory ------------------------------------------------------------------------------ */

/* The pagemap as [start, end) ranges sorted by start, for counting the
 * pages of each VMA without walking the whole pagemap for every one. */
struct page_ranges {
	uint64_t (*r)[2];
	size_t n;
	uint32_t longest_pages;
};

static int range_cmp(const void *a, const void *b)
{
	const uint64_t *x = a, *y = b;

	return x[0] < y[0] ? -1 : x[0] > y[0];
}

static void page_ranges_init(struct page_ranges *pr, const struct show_image *pm)
{
	memset(pr, 0, sizeof(*pr));
	if (pm == NULL || pm->n_msgs == 0)
		return;
	pr->r = xcalloc(pm->n_msgs, sizeof(*pr->r));
	for (size_t i = 0; i < pm->n_msgs; i++) {
		const PagemapEntry *p = (const PagemapEntry *)pm->msgs[i];
		uint64_t end = p->vaddr + (uint64_t)p->nr_pages * PAGE_SIZE_CR;

		pr->r[i][0] = p->vaddr;
		pr->r[i][1] = end < p->vaddr ? UINT64_MAX : end;
		if (p->nr_pages > pr->longest_pages)
			pr->longest_pages = p->nr_pages;
	}
	pr->n = pm->n_msgs;
	if (pr->n > 1)
		qsort(pr->r, pr->n, sizeof(*pr->r), range_cmp);
}

/* Dumped pages inside v: ranges that start at most the longest range's
 * length before it, up to its end. */
static uint64_t vma_pages(const VmaEntry *v, const struct page_ranges *pr)
{
	uint64_t reach = (uint64_t)pr->longest_pages * PAGE_SIZE_CR, from = v->start > reach ? v->start - reach : 0;
	size_t lo = 0, hi = pr->n;
	uint64_t n = 0;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (pr->r[mid][0] < from)
			lo = mid + 1;
		else
			hi = mid;
	}
	for (size_t i = lo; i < pr->n && pr->r[i][0] < v->end; i++) {
		uint64_t start = pr->r[i][0] > v->start ? pr->r[i][0] : v->start;
		uint64_t end = pr->r[i][1] < v->end ? pr->r[i][1] : v->end;

		n += end > start ? (end - start) / PAGE_SIZE_CR : 0;
	}
	return n;
}

/* The flags beyond protection, by their VmFlags mnemonics, and the guard
 * regions. */
static void print_vma_flags(FILE *out, const VmaEntry *v)
{
	static const struct {
		uint32_t flag;
		const char *name;
	} names[] = {
		{ VMA_FLAG__VMA_FLAG_LOCKED, "lo" },     { VMA_FLAG__VMA_FLAG_LOCKONFAULT, "lf" },
		{ VMA_FLAG__VMA_FLAG_HUGEPAGE, "hg" },   { VMA_FLAG__VMA_FLAG_NOHUGEPAGE, "nh" },
		{ VMA_FLAG__VMA_FLAG_DONTFORK, "dc" },   { VMA_FLAG__VMA_FLAG_WIPEONFORK, "wf" },
		{ VMA_FLAG__VMA_FLAG_DONTDUMP, "dd" },   { VMA_FLAG__VMA_FLAG_MERGEABLE, "mg" },
		{ VMA_FLAG__VMA_FLAG_SEQUENTIAL, "sr" }, { VMA_FLAG__VMA_FLAG_RANDOM, "rr" },
		{ VMA_FLAG__VMA_FLAG_NORESERVE, "nr" },  { VMA_FLAG__VMA_FLAG_DROPPABLE, "dp" },
		{ VMA_FLAG__VMA_FLAG_SEALED, "sl" },
	};
	const char *sep = "  [";

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (v->flags & names[i].flag) {
			fprintf(out, "%s%s", sep, names[i].name);
			sep = " ";
		}
	if (sep[0] == ' ' && sep[1] == '\0')
		fputc(']', out);
	if (v->n_guards > 0)
		fprintf(out, "  %zu guard region%s", v->n_guards, v->n_guards > 1 ? "s" : "");
	if (v->has_cow && v->cow)
		fputs("  shares pages with its parent or a child (built before the fork)", out);
}

static void print_vma(FILE *out, const struct show_dump *d, const VmaEntry *v, const struct page_ranges *pm)
{
	const FileEntry *fe = v->has_file_id ? find_file(d, v->file_id) : NULL;
	char size[32], kind[32];

	fprintf(out, "    %016" PRIx64 "-%016" PRIx64 " %10s %c%c%c%c %-12s %7" PRIu64, v->start, v->end,
		human_size(size, sizeof(size), v->end > v->start ? v->end - v->start : 0),
		v->prot & PROT_READ ? 'r' : '-', v->prot & PROT_WRITE ? 'w' : '-', v->prot & PROT_EXEC ? 'x' : '-',
		v->shared ? 's' : 'p', enum_short(kind, sizeof(kind), &vma_kind__descriptor, v->kind, "VMA_"),
		vma_pages(v, pm));
	if (v->has_file_id)
		fprintf(out, "  %s (file %u, offset 0x%" PRIx64 ")", fe != NULL ? fe->path : "?", v->file_id, v->pgoff);
	if (v->has_shmem_id)
		fprintf(out, "  shared memory %u, offset 0x%" PRIx64, v->shmem_id, v->pgoff);
	if (v->has_huge_page_kb)
		fprintf(out, "  hugetlb, %u kB pages", v->huge_page_kb);
	if (v->has_aio_nr_req)
		fprintf(out, "  aio ring (io_setup %u), head %u tail %u, %zu completions not reaped", v->aio_nr_req,
			v->aio_head, v->aio_tail, v->aio_events.len / 32);
	print_vma_flags(out, v);
	fputc('\n', out);
}

/* Each object this process creates at restore, with its data. */
static void print_shmem(FILE *out, const MmEntry *mm)
{
	char size[32], data[32];

	for (size_t i = 0; i < mm->n_shmem; i++) {
		const ShmemObject *o = mm->shmem[i];
		uint64_t pages = 0;

		for (size_t k = 0; k < o->n_data; k++)
			pages += o->data[k]->nr_pages;
		fprintf(out, "  shared memory %u: %s, %s of data in %zu runs (created here, inherited below)", o->id,
			human_size(size, sizeof(size), o->size), human_size(data, sizeof(data), pages * PAGE_SIZE_CR),
			o->n_data);
		if (o->has_source && o->source == SHMEM_SOURCE__SHMEM_MEMFD)
			fprintf(out, "; memfd %s, seals 0x%x", o->name ? o->name : "?", o->seals);
		else if (o->has_source && o->source == SHMEM_SOURCE__SHMEM_DELETED)
			fprintf(out, "; deleted file %s", o->name ? o->name : "?");
		else if (o->has_source)
			fprintf(out, "; System V segment %d, key 0x%08x%s", o->sysv_id, o->sysv_key,
				o->source == SHMEM_SOURCE__SHMEM_SYSV_REMOVED ? ", removed (made anew)" : "");
		fputc('\n', out);
	}
}

static void print_page_file(FILE *out, const struct show_image *pg, const char *what)
{
	char a[32], b[32];

	if (pg != NULL)
		fprintf(out, "  %-13s %s in %zu chunks (%zu compressed), %s stored\n", what,
			human_size(a, sizeof(a), pg->pages.raw_bytes), pg->pages.n_chunks, pg->pages.n_zlib,
			human_size(b, sizeof(b), pg->pages.stored_bytes));
}

static void print_page_data(FILE *out, const struct show_dump *d, pid_t pid)
{
	struct show_page_counts c;
	char a[32], b[32];

	show_count_pages(d, pid, &c);
	if (show_find(d, CR_IMG_PAGEMAP, pid) != NULL)
		fprintf(out, "  pages         %" PRIu64 " dumped (%s) in %zu runs, %" PRIu64 " more shared with "
			"the parent (%s)\n", c.late + c.early, human_size(a, sizeof(a), (c.late + c.early) * PAGE_SIZE_CR),
			c.runs, c.parents, human_size(b, sizeof(b), c.parents * PAGE_SIZE_CR));
	if (c.prev > 0)
		fprintf(out, "  unchanged     %" PRIu64 " pages (%s) since the round before, in its images\n", c.prev,
			human_size(a, sizeof(a), c.prev * PAGE_SIZE_CR));
	print_page_file(out, show_find(d, CR_IMG_PAGES, pid), "page data");
	print_page_file(out, show_find(d, CR_IMG_EARLY_PAGES, pid), "before fork");
}

static void print_mm(FILE *out, const struct show_dump *d, pid_t pid)
{
	const MmEntry *mm = (const MmEntry *)show_find_one(d, CR_IMG_MM, pid);
	struct page_ranges pr;
	uint64_t total = 0;
	char size[32];

	if (mm == NULL) {
		print_page_data(out, d, pid);
		return;
	}
	for (size_t i = 0; i < mm->n_vmas; i++)
		if (mm->vmas[i]->end > mm->vmas[i]->start)
			total += mm->vmas[i]->end - mm->vmas[i]->start;
	fprintf(out, "  memory        %zu mappings, %s\n", mm->n_vmas, human_size(size, sizeof(size), total));
	print_page_data(out, d, pid);
	fprintf(out, "  heap          0x%" PRIx64 "-0x%" PRIx64 " (brk), stack start 0x%" PRIx64 "\n", mm->start_brk,
		mm->brk, mm->start_stack);
	fprintf(out, "  args          0x%" PRIx64 "-0x%" PRIx64 ", environment 0x%" PRIx64 "-0x%" PRIx64 "\n",
		mm->arg_start, mm->arg_end, mm->env_start, mm->env_end);
	print_shmem(out, mm);
	fprintf(out, "    %-33s %10s %4s %-12s %7s  %s\n", "range", "size", "prot", "kind", "pages", "file");
	page_ranges_init(&pr, show_find(d, CR_IMG_PAGEMAP, pid));
	for (size_t i = 0; i < mm->n_vmas; i++)
		print_vma(out, d, mm->vmas[i], &pr);
	free(pr.r);
}

/* --- files --------------------------------------------------------------------------------- */

static const char *access_mode(uint32_t flags)
{
	switch (flags & O_ACCMODE) {
	case O_RDONLY: return "r";
	case O_WRONLY: return "w";
	case O_RDWR: return "rw";
	default: return "?";
	}
}

/* A kind's own state (timerfd, pipe, ...): whichever sub-message is set. */
static void print_kind_state(FILE *out, const FileEntry *fe)
{
	const ProtobufCMessageDescriptor *desc = fe->base.descriptor;

	for (unsigned i = 0; i < desc->n_fields; i++) {
		const ProtobufCFieldDescriptor *f = &desc->fields[i];
		const ProtobufCMessage *sub;

		if (f->type != PROTOBUF_C_TYPE_MESSAGE || f->label == PROTOBUF_C_LABEL_REPEATED)
			continue;
		sub = *(const ProtobufCMessage *const *)((const char *)fe + f->offset);
		if (sub == NULL)
			continue;
		fprintf(out, "  %s ", f->name);
		print_compact(out, sub);
	}
}

static void print_fd(FILE *out, const struct show_dump *d, const FdEntry *fd)
{
	const FileEntry *fe = find_file(d, fd->file_id);
	char kind[32];

	if (fe == NULL) {
		fprintf(out, "    %5u  file %u is not in files.img\n", fd->fd, fd->file_id);
		return;
	}
	fprintf(out, "    %5u  %-12s %-3s %10" PRIu64 "  %s%s%s%s", fd->fd,
		enum_short(kind, sizeof(kind), &file_kind__descriptor, fe->kind, "FILE_"), access_mode(fe->flags),
		fe->pos, fe->path, fe->flags & O_APPEND ? "  append" : "", fe->flags & O_NONBLOCK ? "  nonblock" : "",
		fd->cloexec ? "  cloexec" : "");
	print_kind_state(out, fe);
	fputc('\n', out);
}

static void print_fds(FILE *out, const struct show_dump *d, pid_t pid)
{
	const struct show_image *fi = show_find(d, CR_IMG_FDINFO, pid);
	const MmEntry *mm = (const MmEntry *)show_find_one(d, CR_IMG_MM, pid);
	const FileEntry *exe = mm != NULL ? find_file(d, mm->exe_file_id) : NULL;

	if (exe != NULL)
		fprintf(out, "  exe           %s\n", exe->path);
	if (fi == NULL)
		return;
	fprintf(out, "  files         %zu fds\n", fi->n_msgs);
	fprintf(out, "    %5s  %-12s %-3s %10s  %s\n", "fd", "kind", "acc", "pos", "path");
	for (size_t i = 0; i < fi->n_msgs; i++)
		print_fd(out, d, (const FdEntry *)fi->msgs[i]);
}

/* --- file locks ----------------------------------------------------------------------------- */

static void print_locks(FILE *out, const CoreEntry *core)
{
	if (core->n_locks == 0)
		return;
	fprintf(out, "  locks         %zu\n", core->n_locks);
	for (size_t i = 0; i < core->n_locks; i++) {
		const LockEntry *e = core->locks[i];

		fprintf(out, "    fd %-4u %-5s %s", e->fd, e->kind == LOCK_KIND__LOCK_POSIX ? "POSIX" :
			e->kind == LOCK_KIND__LOCK_OFD ? "OFD" : "flock", e->write ? "write" : "read");
		if (e->kind == LOCK_KIND__LOCK_FLOCK)
			fputc('\n', out);
		else if (e->len == 0)
			fprintf(out, "%s bytes %llu to the end\n", e->write ? "" : " ", (unsigned long long)e->start);
		else
			fprintf(out, "%s bytes %llu-%llu\n", e->write ? "" : " ", (unsigned long long)e->start,
				(unsigned long long)(e->start + e->len - 1));
	}
}

/* --- timers and signals --------------------------------------------------------------------- */

static void print_timers(FILE *out, const CoreEntry *core)
{
	static const char *const which[] = { "ITIMER_REAL", "ITIMER_VIRTUAL", "ITIMER_PROF" };
	bool any = false;

	fprintf(out, "  timers       ");
	for (size_t i = 0; i < core->n_itimers; i++) {
		const ItimerEntry *it = core->itimers[i];

		if (it->value_us == 0 && it->interval_us == 0)
			continue;
		fprintf(out, "%s %s: value %.6f s, interval %.6f s", any ? "," : "",
			it->which < ARRAY_SIZE(which) ? which[it->which] : "itimer ?", (double)it->value_us / 1e6,
			(double)it->interval_us / 1e6);
		any = true;
	}
	if (!any)
		fprintf(out, " no interval timer armed");
	fprintf(out, "\n  posix timers  %zu\n", core->n_posix_timers);
	for (size_t i = 0; i < core->n_posix_timers; i++) {
		fprintf(out, "    ");
		print_compact(out, &core->posix_timers[i]->base);
		fputc('\n', out);
	}
}

static void print_pending(FILE *out, const char *who, SiginfoEntry *const *v, size_t n)
{
	char sig[32];

	if (n == 0)
		return;
	fprintf(out, "    pending for %s:", who);
	for (size_t i = 0; i < n; i++) {
		int32_t signo = 0;

		if (v[i]->siginfo.len >= sizeof(signo))
			memcpy(&signo, v[i]->siginfo.data, sizeof(signo));
		fprintf(out, " %s", signal_name(sig, sizeof(sig), (uint32_t)signo));
	}
	fputc('\n', out);
}

/* The signals whose handler is SIG_IGN (ignored) or a function (!ignored). */
static void print_sigactions(FILE *out, const CoreEntry *core, bool ignored, const char *label)
{
	char sig[32];
	bool any = false;

	for (size_t i = 0; i < core->n_sigactions; i++) {
		const SigactionEntry *s = core->sigactions[i];

		if (ignored ? s->handler != SIG_HANDLER_IGN : s->handler <= SIG_HANDLER_IGN)
			continue;
		fprintf(out, "%s %s", any ? "" : label, signal_name(sig, sizeof(sig), s->sig));
		any = true;
	}
	if (any)
		fputc('\n', out);
}

static void print_signals(FILE *out, const CoreEntry *core)
{
	char who[64];

	fprintf(out, "  signals\n");
	print_sigactions(out, core, false, "    handled:");
	print_sigactions(out, core, true, "    ignored:");
	print_pending(out, "the process", core->shared_pending, core->n_shared_pending);
	for (size_t i = 0; i < core->n_threads; i++) {
		snprintf(who, sizeof(who), "thread %u", core->threads[i]->tid);
		print_pending(out, who, core->threads[i]->pending, core->threads[i]->n_pending);
	}
	if (core->n_shared_pending == 0 && (core->n_threads == 0 || core->threads[0]->n_pending == 0))
		fprintf(out, "    none pending\n");
}

static void print_limit(FILE *out, const char *sep, uint64_t v)
{
	if (v == UINT64_MAX)
		fprintf(out, "%sunlimited", sep);
	else
		fprintf(out, "%s%" PRIu64, sep, v);
}

static void print_rlimits(FILE *out, const CoreEntry *core)
{
	static const char *const names[] = { "cpu", "fsize", "data", "stack", "core", "rss", "nproc", "nofile",
					     "memlock", "as", "locks", "sigpending", "msgqueue", "nice", "rtprio",
					     "rttime" };
	bool any = false;

	for (size_t i = 0; i < core->n_rlimits; i++) {
		const RlimitEntry *r = core->rlimits[i];

		if (r->cur == UINT64_MAX && r->max == UINT64_MAX)
			continue;
		fprintf(out, "%s %s ", any ? "," : "  rlimits      ",
			r->resource < ARRAY_SIZE(names) ? names[r->resource] : "?");
		print_limit(out, "", r->cur);
		print_limit(out, "/", r->max);
		any = true;
	}
	if (any)
		fprintf(out, "  (others unlimited)\n");
}

static void print_process(FILE *out, const struct show_dump *d, pid_t pid)
{
	const CoreEntry *core = (const CoreEntry *)show_find_one(d, CR_IMG_CORE, pid);

	fprintf(out, "\nProcess %d (%s)\n", pid, process_name(d, pid));
	if (find_pstree(d, pid) == NULL)
		fprintf(out, "  (not in a readable pstree.img)\n");
	if (core != NULL)
		print_core(out, core);
	print_mm(out, d, pid);
	print_fds(out, d, pid);
	if (core == NULL)
		return;
	print_locks(out, core);
	print_timers(out, core);
	print_signals(out, core);
	print_rlimits(out, core);
}

/* Every pid that has per-task images, in order (images are sorted by pid). */
void show_summary(FILE *out, const struct show_dump *d)
{
	pid_t last = 0;

	const InventoryEntry *inv = (const InventoryEntry *)show_find_one(d, CR_IMG_INVENTORY, 0);

	print_inventory(out, d);
	if (d->locked)
		return;
	if (inv != NULL && inv->has_pre_dump && inv->pre_dump) {
		fprintf(out, "\nA pre-dump round: the page data of each process only (restore the dump made after it)\n");
	} else {
		print_tree(out, d);
		print_namespaces(out, d);
	}
	for (size_t i = 0; i < d->n_images; i++) {
		if (!img_per_task(d->images[i].type) || d->images[i].pid == last)
			continue;
		last = d->images[i].pid;
		print_process(out, d, last);
	}
	for (size_t i = 0; i < d->n_unknown; i++)
		fprintf(out, "\nNot decoded: %s (no image kind this cr knows)\n", d->unknown[i]);
}
