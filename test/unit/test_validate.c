/* Validation of every image kind: a small, valid dump is written with the
 * image API, then damaged one way at a time (wrong kind, truncation,
 * flipped bytes, missing files, values out of range, overlaps, references
 * to files that do not exist), and each damage must be refused with a
 * message naming the damaged file.
 *
 * Two routes: the validators themselves (mem_validate, files_validate,
 * thread_validate) on the decoded messages, and cr_restore() on the whole
 * directory, which must refuse before it creates any process and leave the
 * images as they were.  The dump's root pid is this test's own pid, so a
 * restore that wrongly accepted the images would still stop at "pid taken"
 * and never create a process; the undamaged dump is the control that
 * proves it gets exactly that far. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "tmpdir.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <limits.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/utsname.h>
#include <unistd.h>
#include <zlib.h>

#include "cmd/commands.h"
#include "img/image.h"
#include "img/kinds.h"
#include "state/state.h"
#include "img/pages.h"
#include "os/cpus.h"
#include "os/regs.h"
#include "restore/restore.h"
#include "os/util.h"

#include "inventory.pb-c.h"

#include <linux/filter.h>
#include <linux/seccomp.h>

#define N_VMAS    5
#define SHMEM_PAGES 2          /* data of the model's shared memory object */
#define N_PM      2
#define N_FILES   2
#define N_FDS     3
#define N_NS      3
#define XSTATE    576            /* legacy area and XSAVE header */
#define USER_TOP  0x00007ffffffff000ULL

/* A dump of one process, as messages that point into this struct. */
struct model {
	pid_t pid;
	struct utsname uts;
	uint32_t task_pids[1];
	struct cr_dump_id id;
	InventoryEntry inv;
	uint32_t ns_pid[40], ns_pgid[40], ns_sid[40], ns_tid[40];
	ThreadIds tids, *tid_ptrs[1];
	PstreeEntry ps;
	GpRegs regs;
	uint8_t xstate[XSTATE];
	ThreadCore th, *th_ptrs[1];
	SchedThreadEntry th_sched;
	uint32_t th_cpus[1];
	SchedProcessEntry sched;
	ThreadSeccompEntry th_seccomp;
	uint32_t ids[4];
	CredsEntry creds;
	CoreEntry core;
	VmaEntry vma[N_VMAS + 1], *vma_ptrs[N_VMAS + 1];
	ShmemObject shm, *shm_ptrs[1];
	PageRun shm_run, *shm_run_ptrs[1];
	size_t n_shm_pages;          /* page data written to shmem-pages.img */
	MmEntry mm;
	PagemapEntry pm[N_PM + 1], *pm_ptrs[N_PM + 1];
	size_t n_pm;
	FileEntry files[N_FILES + 1], *file_ptrs[N_FILES + 1];
	size_t n_files;
	FdEntry fds[N_FDS + 1], *fd_ptrs[N_FDS + 1];
	size_t n_fds;
	size_t n_pages;              /* page data written to pages-PID.img */
	size_t n_early_pages;        /* and to early-pages-PID.img (cow VMAs) */
	NsEntry ns[N_NS], *ns_ptrs[N_NS];   /* a uts, a time and an ipc namespace */
	UtsNs uts_ns;
	TimeNs time_ns;
	IpcNs ipc_ns;
	IpcSysctl sysctl, *sysctl_ptrs[1];
	SysvPerm shm_perm, msq_perm;
	SysvShm sysv_shm, *sysv_shm_ptrs[1];
	SysvMsq msq, *msq_ptrs[1];
	SysvMsg msg, *msg_ptrs[1];
	SysvPerm sem_perm;
	SysvSem sem, *sem_ptrs[1];
	uint32_t sem_values[3];
	PosixMq mq, *mq_ptrs[1];
	PosixMqMsg mq_msg, *mq_msg_ptrs[2];
	NsRefs ns_refs;
};

struct fixture {
	char dir[TMPDIR_LEN];
	int dirfd;
	struct model *m;
	/* for the validators */
	struct restore_opts opts;
	struct restore_ctx ctx;
	struct restore_task task;
};

/* --- the model ------------------------------------------------------------ */

static void model_inventory(struct model *m)
{
	uname(&m->uts);
	m->task_pids[0] = (uint32_t)m->pid;
	inventory_entry__init(&m->inv);
	m->inv.format_version = CR_FORMAT_VERSION;
	m->inv.kernel_release = m->uts.release;
	m->inv.arch = m->uts.machine;
	m->inv.root_pid = (uint32_t)m->pid;
	m->inv.page_size = PAGE_SIZE_CR;
	m->inv.xfeatures = regs_host_xfeatures() & 3;   /* x87 and SSE */
	m->inv.xstate_size = XSTATE;
	m->inv.n_task_pids = 1;
	m->inv.task_pids = m->task_pids;
	memcpy(m->id.b, "model dump id 16", CR_DUMP_ID_SIZE);
	m->inv.has_dump_id = true;
	m->inv.dump_id = (ProtobufCBinaryData){ CR_DUMP_ID_SIZE, m->id.b };
}

static void model_pstree(struct model *m)
{
	m->ns_pid[0] = m->ns_pgid[0] = m->ns_sid[0] = m->ns_tid[0] = (uint32_t)m->pid;
	thread_ids__init(&m->tids);
	m->tids.n_ns_tid = 1;
	m->tids.ns_tid = m->ns_tid;
	m->tid_ptrs[0] = &m->tids;
	pstree_entry__init(&m->ps);
	m->ps.n_ns_pid = m->ps.n_ns_pgid = m->ps.n_ns_sid = 1;
	m->ps.ns_pid = m->ns_pid;
	m->ps.ns_pgid = m->ns_pgid;
	m->ps.ns_sid = m->ns_sid;
	m->ps.n_threads = 1;
	m->ps.threads = m->tid_ptrs;
}

static void model_core(struct model *m)
{
	gp_regs__init(&m->regs);
	m->regs.cs = 0x33;   /* __USER_CS */
	m->regs.rip = 0x400100;   /* in the executable mapping */
	m->regs.ss = 0x2b;   /* __USER_DS */
	thread_core__init(&m->th);
	m->th.tid = (uint32_t)m->pid;
	m->th.robust_list_len = 24;
	m->th.regs = &m->regs;
	m->th.xstate.data = m->xstate;
	m->th.xstate.len = sizeof(m->xstate);
	m->th.comm = "validated";
	m->th.creds = &m->creds;
	sched_thread_entry__init(&m->th_sched);
	m->th_cpus[0] = 0;
	m->th_sched.n_cpus = 1;
	m->th_sched.cpus = m->th_cpus;
	m->th_sched.timer_slack_ns = 50000;
	m->th.sched = &m->th_sched;
	thread_seccomp_entry__init(&m->th_seccomp);
	m->th.seccomp = &m->th_seccomp;
	m->th_ptrs[0] = &m->th;
	creds_entry__init(&m->creds);
	m->creds.n_uid = m->creds.n_gid = 4;
	m->creds.uid = m->creds.gid = m->ids;
	core_entry__init(&m->core);
	m->core.pid = (uint32_t)m->pid;
	m->core.n_threads = 1;
	m->core.threads = m->th_ptrs;
	m->core.umask = 022;
	m->core.cwd = "/";
	m->core.root = "/";
	m->core.exit_signal = 17;
	sched_process_entry__init(&m->sched);
	m->sched.dumpable = 1;
	m->core.sched = &m->sched;
}

static void set_vma(VmaEntry *v, uint64_t start, uint64_t end, uint32_t prot, VmaKind kind)
{
	vma_entry__init(v);
	v->start = start;
	v->end = end;
	v->prot = prot;
	v->kind = kind;
}

static void model_mm(struct model *m)
{
	set_vma(&m->vma[0], 0x400000, 0x401000, PROT_READ | PROT_EXEC, VMA_KIND__VMA_FILE);
	m->vma[0].has_file_id = true;
	m->vma[0].file_id = 1;
	set_vma(&m->vma[1], 0x600000, 0x604000, PROT_READ | PROT_WRITE, VMA_KIND__VMA_ANON);
	set_vma(&m->vma[2], 0x700000, 0x710000, PROT_READ | PROT_WRITE, VMA_KIND__VMA_HEAP);
	set_vma(&m->vma[3], 0x7ffffffde000, 0x7ffffffff000, PROT_READ | PROT_WRITE, VMA_KIND__VMA_STACK);
	m->vma[3].growsdown = true;
	/* Shared anonymous memory: a page of a 4-page object whose data lies
	 * elsewhere in it. */
	set_vma(&m->vma[4], USER_TOP, USER_TOP + 0x1000, PROT_READ | PROT_WRITE, VMA_KIND__VMA_ANON);
	m->vma[4].shared = true;
	m->vma[4].pgoff = 0x1000;
	m->vma[4].has_shmem_id = true;
	m->vma[4].shmem_id = 1;
	for (size_t i = 0; i <= N_VMAS; i++)
		m->vma_ptrs[i] = &m->vma[i];
	page_run__init(&m->shm_run);
	m->shm_run.offset = 0x2000;
	m->shm_run.nr_pages = SHMEM_PAGES;
	m->shm_run_ptrs[0] = &m->shm_run;
	shmem_object__init(&m->shm);
	m->shm.id = 1;
	m->shm.size = 0x4000;
	m->shm.n_data = 1;
	m->shm.data = m->shm_run_ptrs;
	m->shm_ptrs[0] = &m->shm;
	m->n_shm_pages = SHMEM_PAGES;
	mm_entry__init(&m->mm);
	m->mm.start_code = 0x400000;
	m->mm.end_code = 0x401000;
	m->mm.start_brk = 0x700000;
	m->mm.brk = 0x710000;
	m->mm.start_stack = 0x7fffffffe000;
	m->mm.start_data = 0x600000;
	m->mm.end_data = 0x602000;
	m->mm.arg_start = m->mm.arg_end = 0x7fffffffe100;
	m->mm.env_start = m->mm.env_end = 0x7fffffffe200;
	m->mm.exe_file_id = 1;
	m->mm.n_vmas = N_VMAS;
	m->mm.vmas = m->vma_ptrs;
	m->mm.n_shmem = 1;
	m->mm.shmem = m->shm_ptrs;
	for (size_t i = 0; i <= N_PM; i++) {
		pagemap_entry__init(&m->pm[i]);
		m->pm_ptrs[i] = &m->pm[i];
	}
	m->pm[0].vaddr = 0x600000;
	m->pm[0].nr_pages = 2;
	m->pm[1].vaddr = 0x7fffffffd000;
	m->pm[1].nr_pages = 1;
	m->n_pm = N_PM;
	m->n_pages = 3;
}

/* The mapped file and exe: this test's own binary, by its path as /proc
 * shows it (the restore checks the file is there and unchanged). */
static void model_exe(FileEntry *fe)
{
	static char path[PATH_MAX];
	struct stat st;
	ssize_t n = readlink("/proc/self/exe", path, sizeof(path) - 1);

	assert_true(n > 0 && stat(path, &st) == 0);
	path[n] = '\0';
	fe->path = path;
	fe->has_size = fe->has_mtime_ns = true;
	fe->size = (uint64_t)st.st_size;
	fe->mtime_ns = (uint64_t)st.st_mtim.tv_sec * 1000000000ULL + (uint64_t)st.st_mtim.tv_nsec;
}

static void model_files(struct model *m)
{
	for (size_t i = 0; i <= N_FILES; i++) {
		file_entry__init(&m->files[i]);
		m->files[i].id = (uint32_t)i + 1;
		m->file_ptrs[i] = &m->files[i];
	}
	m->files[0].kind = FILE_KIND__FILE_REG;
	model_exe(&m->files[0]);
	m->files[0].flags = O_RDONLY;
	m->files[1].kind = FILE_KIND__FILE_CHR;
	m->files[1].path = "/dev/null";
	m->files[1].flags = O_RDWR;
	m->files[1].has_rdev = true;
	m->files[1].rdev = (uint32_t)makedev(1, 3);
	m->n_files = N_FILES;
	for (size_t i = 0; i <= N_FDS; i++) {
		fd_entry__init(&m->fds[i]);
		m->fds[i].fd = (uint32_t)i;
		m->fds[i].file_id = 2;
		m->fd_ptrs[i] = &m->fds[i];
	}
	m->n_fds = N_FDS;
}

static void model_ns(struct model *m)
{
	for (size_t i = 0; i < N_NS; i++) {
		ns_entry__init(&m->ns[i]);
		m->ns[i].id = (uint32_t)i + 1;
		m->ns[i].inode = 4026532000u + i;
		m->ns_ptrs[i] = &m->ns[i];
	}
	uts_ns__init(&m->uts_ns);
	m->uts_ns.hostname = "validated";
	m->uts_ns.domainname = "(none)";
	m->ns[0].kind = NS_KIND__NS_UTS;
	m->ns[0].uts = &m->uts_ns;
	time_ns__init(&m->time_ns);
	m->time_ns.monotonic_sec = 1000;
	m->time_ns.boottime_sec = -20;
	m->time_ns.boottime_nsec = 999999999;
	m->time_ns.dump_monotonic_ns = 5000000000000ULL;
	m->time_ns.dump_boottime_ns = 5000000000000ULL;
	m->time_ns.boot_id = "0b44750c-ae3a-4e1e-a06c-ffbf881c1f8e";
	m->ns[1].kind = NS_KIND__NS_TIME;
	m->ns[1].time = &m->time_ns;
	ipc_ns__init(&m->ipc_ns);
	ipc_sysctl__init(&m->sysctl);
	m->sysctl.name = "kernel/msgmnb";
	m->sysctl.value = "20000";
	m->sysctl_ptrs[0] = &m->sysctl;
	m->ipc_ns.n_sysctls = 1;
	m->ipc_ns.sysctls = m->sysctl_ptrs;
	sysv_perm__init(&m->shm_perm);
	m->shm_perm.key = 0x1234;
	m->shm_perm.id = 65541;
	m->shm_perm.mode = 0640;
	sysv_shm__init(&m->sysv_shm);
	m->sysv_shm.perm = &m->shm_perm;
	m->sysv_shm.size = 8192;
	m->sysv_shm.contents.data = (uint8_t *)"contents";
	m->sysv_shm.contents.len = 8;
	m->sysv_shm_ptrs[0] = &m->sysv_shm;
	m->ipc_ns.n_shm = 1;
	m->ipc_ns.shm = m->sysv_shm_ptrs;
	sysv_perm__init(&m->msq_perm);
	m->msq_perm.id = 2;
	m->msq_perm.mode = 0600;
	sysv_msg__init(&m->msg);
	m->msg.type = 7;
	m->msg.text.data = (uint8_t *)"message";
	m->msg.text.len = 7;
	m->msg_ptrs[0] = &m->msg;
	sysv_msq__init(&m->msq);
	m->msq.perm = &m->msq_perm;
	m->msq.qbytes = 16384;
	m->msq.n_messages = 1;
	m->msq.messages = m->msg_ptrs;
	m->msq_ptrs[0] = &m->msq;
	m->ipc_ns.n_msq = 1;
	m->ipc_ns.msq = m->msq_ptrs;
	sysv_perm__init(&m->sem_perm);
	m->sem_perm.id = 131075;
	m->sem_perm.mode = 0660;
	sysv_sem__init(&m->sem);
	m->sem.perm = &m->sem_perm;
	m->sem_values[0] = 0;
	m->sem_values[1] = 5;
	m->sem_values[2] = 32767;
	m->sem.n_values = 3;
	m->sem.values = m->sem_values;
	m->sem_ptrs[0] = &m->sem;
	m->ipc_ns.n_sem = 1;
	m->ipc_ns.sem = m->sem_ptrs;
	posix_mq_msg__init(&m->mq_msg);
	m->mq_msg.prio = 9;
	m->mq_msg.text.data = (uint8_t *)"posix";
	m->mq_msg.text.len = 5;
	m->mq_msg_ptrs[0] = m->mq_msg_ptrs[1] = &m->mq_msg;
	posix_mq__init(&m->mq);
	m->mq.name = "queue";
	m->mq.mode = 0640;
	m->mq.maxmsg = 10;
	m->mq.msgsize = 64;
	m->mq.n_messages = 2;
	m->mq.messages = m->mq_msg_ptrs;
	m->mq_ptrs[0] = &m->mq;
	m->ipc_ns.n_mq = 1;
	m->ipc_ns.mq = m->mq_ptrs;
	m->ns[2].kind = NS_KIND__NS_IPC;
	m->ns[2].ipc = &m->ipc_ns;
	ns_refs__init(&m->ns_refs);
	m->ns_refs.uts = 1;
	m->ns_refs.ipc = 3;
	m->ns_refs.time = m->ns_refs.time_for_children = 2;
	m->core.ns = &m->ns_refs;
}

static struct model *model_new(void)
{
	struct model *m = calloc(1, sizeof(*m));

	assert_non_null(m);
	m->pid = getpid();
	model_inventory(m);
	model_pstree(m);
	model_core(m);
	model_mm(m);
	model_files(m);
	model_ns(m);
	return m;
}

/* --- writing it ------------------------------------------------------------- */

static void write_msgs(int dirfd, const char *name, uint32_t kind, ProtobufCMessage *const *msgs, size_t n)
{
	struct cr_img *img = NULL;
	cr_error_t err = NULL;

	unlinkat(dirfd, name, 0);
	if (cr_img_create(dirfd, name, kind, &img, &err) < 0)
		fail_msg("create %s: %s", name, err->msg);
	for (size_t i = 0; i < n; i++)
		if (cr_img_write_msg(img, msgs[i], &err) < 0)
			fail_msg("write %s: %s", name, err->msg);
	if (cr_img_finish(img, &err) < 0)
		fail_msg("finish %s: %s", name, err->msg);
}

static void write_one(int dirfd, const char *name, uint32_t kind, ProtobufCMessage *msg)
{
	write_msgs(dirfd, name, kind, &msg, 1);
}

static void write_pages(int dirfd, const char *name, uint32_t kind, size_t n_pages)
{
	struct cr_pages_writer *w = NULL;
	unsigned char *buf = calloc(n_pages + 1, PAGE_SIZE_CR);
	cr_error_t err = NULL;

	assert_non_null(buf);
	unlinkat(dirfd, name, 0);
	if (cr_pages_writer_open_as(dirfd, name, kind, false, &w, &err) < 0 ||
	    cr_pages_write(w, buf, n_pages * PAGE_SIZE_CR, &err) < 0 || cr_pages_writer_finish(w, &err) < 0)
		fail_msg("write %s: %s", name, err->msg);
	free(buf);
}

static const char *task_img(char buf[IMG_NAME_MAX], uint32_t kind, const struct model *m)
{
	return img_name(buf, kind, m->pid);
}

/* As cr dump does: every image carries the dump's id (img/dumpid.h). */
static void write_model(int dirfd, struct model *m)
{
	char name[IMG_NAME_MAX];
	cr_error_t err = NULL;

	if (img_dir_bind_id(dirfd, &m->id, &err) < 0)
		fail_msg("bind the model's dump id: %s", err->msg);

	write_one(dirfd, img_name(name, CR_IMG_PSTREE, 0), CR_IMG_PSTREE, &m->ps.base);
	write_msgs(dirfd, img_name(name, CR_IMG_FILES, 0), CR_IMG_FILES, (ProtobufCMessage **)m->file_ptrs, m->n_files);
	write_msgs(dirfd, img_name(name, CR_IMG_NS, 0), CR_IMG_NS, (ProtobufCMessage **)m->ns_ptrs, N_NS);
	write_msgs(dirfd, img_name(name, CR_IMG_NETNS, 0), CR_IMG_NETNS, NULL, 0);
	write_one(dirfd, task_img(name, CR_IMG_CORE, m), CR_IMG_CORE, &m->core.base);
	write_one(dirfd, task_img(name, CR_IMG_MM, m), CR_IMG_MM, &m->mm.base);
	write_msgs(dirfd, task_img(name, CR_IMG_PAGEMAP, m), CR_IMG_PAGEMAP, (ProtobufCMessage **)m->pm_ptrs, m->n_pm);
	write_pages(dirfd, task_img(name, CR_IMG_PAGES, m), CR_IMG_PAGES, m->n_pages);
	write_pages(dirfd, task_img(name, CR_IMG_EARLY_PAGES, m), CR_IMG_EARLY_PAGES, m->n_early_pages);
	write_pages(dirfd, img_name(name, CR_IMG_SHMEM_PAGES, 0), CR_IMG_SHMEM_PAGES, m->n_shm_pages);
	write_msgs(dirfd, task_img(name, CR_IMG_FDINFO, m), CR_IMG_FDINFO, (ProtobufCMessage **)m->fd_ptrs, m->n_fds);
	write_one(dirfd, img_name(name, CR_IMG_INVENTORY, 0), CR_IMG_INVENTORY, &m->inv.base);
}

/* --- fixture ------------------------------------------------------------------ */

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	if (f == NULL || tmpdir_make(f->dir, &f->dirfd) < 0)
		return -1;
	f->m = model_new();
	f->opts.dir = f->dir;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	img_dir_unbind_id(f->dirfd);
	tmpdir_remove(f->dir, f->dirfd);
	free(f->m);
	free(f);
	return 0;
}

/* The restore task and context the validators see, over the model. */
static struct restore_task *as_task(struct fixture *f)
{
	struct model *m = f->m;

	memset(&f->task, 0, sizeof(f->task));
	memset(&f->ctx, 0, sizeof(f->ctx));
	f->task.pid = m->pid;
	f->task.pstree = &m->ps;
	f->task.core = &m->core;
	f->task.mm = &m->mm;
	f->task.pagemap = m->pm_ptrs;
	f->task.n_pagemap = m->n_pm;
	f->task.fds = m->fd_ptrs;
	f->task.n_fds = m->n_fds;
	f->ctx.opts = &f->opts;
	f->ctx.inv = &m->inv;
	f->ctx.dirfd = f->dirfd;
	f->ctx.files = m->file_ptrs;
	f->ctx.n_files = m->n_files;
	f->ctx.tasks = &f->task;
	f->ctx.n_tasks = 1;
	return &f->task;
}

/* --- checking errors ---------------------------------------------------------------- */

static void expect_refused(int ret, cr_error_t *err, const char *file, const char *what)
{
	if (ret >= 0)
		fail_msg("accepted although %s", what);
	assert_non_null(*err);
	char msg[512];
	bool named = strstr((*err)->msg, file) != NULL;

	snprintf(msg, sizeof(msg), "%s", (*err)->msg);
	cr_error_release(err);
	if (!named)
		fail_msg("refused (%s), but the message does not name %s: %s", what, file, msg);
}

static void expect_ok(int ret, cr_error_t *err, const char *what)
{
	if (ret < 0)
		fail_msg("%s refused: %s", what, (*err)->msg);
}

/* Each kind's own validation, as the table (state/state.c) calls it. */
extern const struct state_kind state_memory, state_cow, state_shmem, state_files, state_threads, state_seccomp,
	state_mmdefaults;

static int run_mem(struct fixture *f, cr_error_t *err)
{
	struct restore_task *t = as_task(f);

	return state_memory.validate(&f->ctx, t, err);
}

static int run_shmem(struct fixture *f, cr_error_t *err)
{
	struct restore_task *t = as_task(f);

	return state_shmem.validate(&f->ctx, t, err);
}

static int run_files(struct fixture *f, cr_error_t *err)
{
	struct restore_task *t = as_task(f);

	return state_files.validate(&f->ctx, t, err);
}

static int run_thread(struct fixture *f, cr_error_t *err)
{
	struct restore_task *t = as_task(f);

	return state_threads.validate(&f->ctx, t, err);
}

static int run_seccomp(struct fixture *f, cr_error_t *err)
{
	struct restore_task *t = as_task(f);

	return state_seccomp.validate(&f->ctx, t, err);
}

static int run_mmdefaults(struct fixture *f, cr_error_t *err)
{
	return state_mmdefaults.validate(&f->ctx, as_task(f), err);
}

/* --- the validators, value by value ----------------------------------------------------- */

static void test_validators_accept_the_model(void **state)
{
	struct fixture *f = *state;
	cr_error_t err = NULL;

	write_model(f->dirfd, f->m);   /* memory checks the page data against the pagemap */
	expect_ok(run_mem(f, &err), &err, "memory");
	expect_ok(run_shmem(f, &err), &err, "shared memory");
	expect_ok(run_files(f, &err), &err, "the fd table");
	expect_ok(run_thread(f, &err), &err, "threads");
	expect_ok(run_seccomp(f, &err), &err, "seccomp");
	expect_ok(run_mmdefaults(f, &err), &err, "defaults of new mappings");
}

/* cr show, in text and in JSON, reads the model without an error and
 * without a sanitizer report (an empty list once went to qsort as NULL). */
static void show_model(struct fixture *f, bool json)
{
	char *argv[] = { "show", "-D", f->dir, json ? "--json" : NULL, NULL };
	int out = dup(STDOUT_FILENO), null = open("/dev/null", O_WRONLY | O_CLOEXEC), status;

	assert_true(out >= 0 && null >= 0);
	fflush(stdout);
	assert_int_equal(dup2(null, STDOUT_FILENO), STDOUT_FILENO);
	status = cmd_show(json ? 4 : 3, argv);
	fflush(stdout);
	dup2(out, STDOUT_FILENO);
	close(out);
	close(null);
	assert_int_equal(status, 0);
}

static void test_show_reads_the_model(void **state)
{
	struct fixture *f = *state;

	write_model(f->dirfd, f->m);
	show_model(f, false);
	show_model(f, true);
}

/* Runs mem_validate after change(m, arg) on a fresh model. */
static void expect_mem_refused(struct fixture *f, uint32_t kind, const char *what)
{
	char name[IMG_NAME_MAX];
	cr_error_t err = NULL;

	expect_refused(run_mem(f, &err), &err, task_img(name, kind, f->m), what);
	free(f->m);
	f->m = model_new();
}

static int run_cow(struct fixture *f, cr_error_t *err)
{
	struct restore_task *t = as_task(f);

	return state_cow.validate(&f->ctx, t, err);
}

/* Pages shared with a parent: only in cow VMAs, which are private
 * anonymous memory, and only where a parent has such a VMA; each page file
 * holds the bytes the pagemap lists in it. */
static void test_cow_refused(void **state)
{
	struct fixture *f = *state;
	char name[IMG_NAME_MAX];
	cr_error_t err = NULL;

	f->m->vma[1].has_cow = f->m->vma[1].cow = true;   /* pm[0] is in it: its 2 pages are early ones */
	f->m->n_pages = 1;
	f->m->n_early_pages = 2;
	write_model(f->dirfd, f->m);
	expect_ok(run_mem(f, &err), &err, "a cow VMA with its pages in early-pages");
	expect_ok(run_cow(f, &err), &err, "a cow VMA of anonymous memory");
	f->m->n_pages = 3;
	f->m->n_early_pages = 0;
	write_model(f->dirfd, f->m);
	expect_refused(run_mem(f, &err), &err, task_img(name, CR_IMG_PAGES, f->m),
		       "the pages of a cow VMA are in pages-PID.img");
	f->m->vma[1].has_cow = f->m->vma[1].cow = false;
	f->m->vma[0].has_cow = f->m->vma[0].cow = true;
	expect_ok(run_cow(f, &err), &err, "a private file VMA marked cow");
	f->m->vma[0].shared = true;
	expect_refused(run_cow(f, &err), &err, task_img(name, CR_IMG_MM, f->m), "a shared file VMA is marked cow");
	f->m->vma[0].shared = false;
	f->m->vma[0].has_cow = f->m->vma[0].cow = false;
	f->m->vma[3].has_cow = f->m->vma[3].cow = true;
	expect_refused(run_cow(f, &err), &err, task_img(name, CR_IMG_MM, f->m), "a stack is marked cow");
	f->m->vma[3].has_cow = f->m->vma[3].cow = false;
	f->m->vma[4].has_cow = f->m->vma[4].cow = true;
	expect_refused(run_cow(f, &err), &err, task_img(name, CR_IMG_MM, f->m), "shared memory is marked cow");
	f->m->vma[4].has_cow = f->m->vma[4].cow = false;
	f->m->pm[0].has_in_parent = f->m->pm[0].in_parent = true;
	expect_refused(run_cow(f, &err), &err, task_img(name, CR_IMG_PAGEMAP, f->m),
		       "pages are the parent's outside a cow VMA");
	f->m->vma[1].has_cow = f->m->vma[1].cow = true;
	expect_refused(run_cow(f, &err), &err, task_img(name, CR_IMG_PAGEMAP, f->m),
		       "pages are the parent's of a process without a parent");
	free(f->m);
	f->m = model_new();
}

static void test_vmas_refused(void **state)
{
	struct fixture *f = *state;

	f->m->vma[3].end = 0x0100000000000000ULL;
	expect_mem_refused(f, CR_IMG_MM, "a VMA ends beyond user space");
	f->m->vma[3].start = 0xffffffffff600000ULL;
	f->m->vma[3].end = 0xffffffffff601000ULL;
	expect_mem_refused(f, CR_IMG_MM, "a VMA lies in kernel space");
	f->m->vma[0].pgoff = 1ULL << 63;
	expect_mem_refused(f, CR_IMG_MM, "a file VMA maps an offset beyond any file");
	f->m->vma[0].pgoff = (1ULL << 63) - 0x1000;   /* page aligned; its end one past the largest offset */
	expect_mem_refused(f, CR_IMG_MM, "a file VMA runs past the largest file offset");
	f->m->vma[1].start = 0x600800;
	expect_mem_refused(f, CR_IMG_MM, "a VMA starts inside a page");
	f->m->vma[1].end = 0x603001;
	expect_mem_refused(f, CR_IMG_MM, "a VMA ends inside a page");
	f->m->vma[1].end = f->m->vma[1].start;
	expect_mem_refused(f, CR_IMG_MM, "a VMA is empty");
	f->m->vma[1].end = 0x500000;
	expect_mem_refused(f, CR_IMG_MM, "a VMA ends before it starts");
	f->m->vma[2].start = 0x602000;
	expect_mem_refused(f, CR_IMG_MM, "two VMAs overlap");
	f->m->vma[1].start = 0x800000;
	f->m->vma[1].end = 0x801000;
	expect_mem_refused(f, CR_IMG_MM, "VMAs are out of order");
	f->m->vma[1].prot = 0x10;
	expect_mem_refused(f, CR_IMG_MM, "a VMA has an unknown protection bit");
	f->m->vma[0].has_file_id = false;
	expect_mem_refused(f, CR_IMG_MM, "a file VMA names no file");
	f->m->vma[0].pgoff = 100;
	expect_mem_refused(f, CR_IMG_MM, "a file offset is not page aligned");
}

static void test_pagemap_refused(void **state)
{
	struct fixture *f = *state;

	f->m->pm[0].vaddr = 0x500000;
	expect_mem_refused(f, CR_IMG_PAGEMAP, "pages lie outside every VMA");
	f->m->pm[0].nr_pages = 5;
	expect_mem_refused(f, CR_IMG_PAGEMAP, "pages run past the end of their VMA");
	f->m->pm[0].vaddr = 0x600100;
	expect_mem_refused(f, CR_IMG_PAGEMAP, "an entry is not page aligned");
	f->m->pm[0].nr_pages = 0;
	expect_mem_refused(f, CR_IMG_PAGEMAP, "an entry holds no pages");
	f->m->pm[1].vaddr = 0x600000;
	expect_mem_refused(f, CR_IMG_PAGEMAP, "entries overlap");
	f->m->pm[0].vaddr = 0x7fffffffd000;
	f->m->pm[1].vaddr = 0x600000;
	expect_mem_refused(f, CR_IMG_PAGEMAP, "entries are out of order");
	f->m->pm[1].vaddr = 0xfffffffffffff000ULL;
	f->m->pm[1].nr_pages = 2;
	expect_mem_refused(f, CR_IMG_PAGEMAP, "an entry wraps around the address space");
	f->m->pm[1].vaddr = 0x7ffffffff000;
	f->m->pm[1].nr_pages = 0xffffffffu;
	expect_mem_refused(f, CR_IMG_PAGEMAP, "an entry runs terabytes past its VMA");
	f->m->pm[0].has_in_prev = f->m->pm[0].in_prev = true;
	f->m->pm[0].has_in_parent = f->m->pm[0].in_parent = true;
	expect_mem_refused(f, CR_IMG_PAGEMAP, "an entry is both the parent's and an earlier round's");
	f->m->pm[0].has_in_prev = f->m->pm[0].in_prev = true;
	f->m->vma[1].has_cow = f->m->vma[1].cow = true;
	expect_mem_refused(f, CR_IMG_PAGEMAP, "an earlier round's pages in memory built before the fork");
}

static void test_pages_in_special_vma_refused(void **state)
{
	struct fixture *f = *state;

	/* The vdso comes from this kernel, never from the image. */
	set_vma(&f->m->vma[N_VMAS], USER_TOP + 0x1000, USER_TOP + 0x3000, PROT_READ | PROT_EXEC, VMA_KIND__VMA_VDSO);
	f->m->vma[3].end = USER_TOP;
	f->m->vma[3].start = USER_TOP - 0x21000;
	f->m->pm[1].vaddr = USER_TOP - 0x1000;
	f->m->mm.n_vmas = N_VMAS + 1;
	f->m->pm[N_PM].vaddr = USER_TOP + 0x1000;
	f->m->pm[N_PM].nr_pages = 1;
	f->m->n_pm = N_PM + 1;
	expect_mem_refused(f, CR_IMG_PAGEMAP, "pages are dumped for the vdso");
}

/* An aio ring after the model's VMAs: one page, 127 slots. */
static void add_aio_ring(struct model *m, uint32_t head, uint32_t tail, size_t n_events)
{
	static uint8_t events[127 * 32];
	VmaEntry *v = &m->vma[N_VMAS];

	set_vma(v, USER_TOP + 0x1000, USER_TOP + 0x2000, PROT_READ | PROT_WRITE, VMA_KIND__VMA_ANON);
	v->shared = true;
	v->has_aio_nr_req = v->has_aio_head = v->has_aio_tail = v->has_aio_events = true;
	v->aio_nr_req = 62;
	v->aio_head = head;
	v->aio_tail = tail;
	v->aio_events = (ProtobufCBinaryData){ n_events * 32, events };
	m->mm.n_vmas = N_VMAS + 1;
}

static void test_aio_refused(void **state)
{
	struct fixture *f = *state;
	cr_error_t err = NULL;

	add_aio_ring(f->m, 120, 3, 10);   /* completions across the ring's end */
	write_model(f->dirfd, f->m);
	expect_ok(run_mem(f, &err), &err, "an aio ring");
	add_aio_ring(f->m, 120, 3, 9);
	expect_mem_refused(f, CR_IMG_MM, "an aio ring with fewer events than head to tail");
	add_aio_ring(f->m, 127, 0, 0);
	expect_mem_refused(f, CR_IMG_MM, "an aio ring's head past its slots");
	add_aio_ring(f->m, 0, 0, 0);
	f->m->vma[N_VMAS].aio_nr_req = 0;
	expect_mem_refused(f, CR_IMG_MM, "an aio ring of no requests");
	add_aio_ring(f->m, 0, 0, 0);
	f->m->vma[N_VMAS].shared = false;
	expect_mem_refused(f, CR_IMG_MM, "a private aio ring");
	add_aio_ring(f->m, 0, 0, 0);
	f->m->vma[N_VMAS].has_aio_nr_req = false;
	expect_mem_refused(f, CR_IMG_MM, "aio ring fields on another VMA");
	add_aio_ring(f->m, 0, 0, 0);
	f->m->pm[N_PM].vaddr = USER_TOP + 0x1000;
	f->m->pm[N_PM].nr_pages = 1;
	f->m->n_pm = N_PM + 1;
	expect_mem_refused(f, CR_IMG_PAGEMAP, "pages are dumped for an aio ring");
}

/* Shared memory is checked against shmem-pages.img: the model is written
 * first. */
static void expect_shmem_refused(struct fixture *f, int (*run)(struct fixture *, cr_error_t *), const char *file,
				 const char *what)
{
	cr_error_t err = NULL;

	write_model(f->dirfd, f->m);
	expect_refused(run(f, &err), &err, file, what);
	free(f->m);
	f->m = model_new();
}

static void test_shmem_refused(void **state)
{
	struct fixture *f = *state;
	char mm[IMG_NAME_MAX], pm[IMG_NAME_MAX], data[IMG_NAME_MAX];

	task_img(mm, CR_IMG_MM, f->m);
	task_img(pm, CR_IMG_PAGEMAP, f->m);
	img_name(data, CR_IMG_SHMEM_PAGES, 0);
	f->m->vma[4].shmem_id = 2;
	expect_shmem_refused(f, run_shmem, mm, "a VMA maps an object no process creates");
	f->m->mm.n_shmem = 0;
	expect_shmem_refused(f, run_shmem, mm, "the object is missing");
	f->m->shm.id = 0;
	f->m->vma[4].shmem_id = 0;
	expect_shmem_refused(f, run_shmem, mm, "an object has id 0");
	f->m->shm.size = 0x4800;
	expect_shmem_refused(f, run_shmem, mm, "an object's size is not whole pages");
	f->m->shm.size = 0;
	expect_shmem_refused(f, run_shmem, mm, "an object is empty");
	f->m->shm.size = 1ULL << 50;
	expect_shmem_refused(f, run_shmem, mm, "an object is larger than user space");
	f->m->shm_run.offset = 0x3000;
	expect_shmem_refused(f, run_shmem, mm, "a run of data goes beyond the object");
	f->m->shm_run.offset = 0x2100;
	expect_shmem_refused(f, run_shmem, mm, "a run of data is not page aligned");
	f->m->shm_run.nr_pages = 0;
	expect_shmem_refused(f, run_shmem, mm, "a run of data holds no pages");
	f->m->vma[4].growsdown = true;
	expect_shmem_refused(f, run_shmem, mm, "a VMA that grows down maps shared memory");
	f->m->shm.has_source = true;
	f->m->shm.source = 99;
	expect_shmem_refused(f, run_shmem, mm, "an object of a source cr does not know");
	f->m->shm.has_source = true;
	f->m->shm.source = SHMEM_SOURCE__SHMEM_MEMFD;
	expect_shmem_refused(f, run_shmem, mm, "a memfd object without its name");
	f->m->shm.has_source = true;
	f->m->shm.source = SHMEM_SOURCE__SHMEM_DELETED;
	f->m->shm.name = (char *)"relative/path";
	f->m->shm.has_ino = true;
	expect_shmem_refused(f, run_shmem, mm, "a deleted file object at a relative path");
	f->m->shm.has_source = f->m->shm.has_sysv_id = true;
	f->m->shm.source = SHMEM_SOURCE__SHMEM_SYSV;
	expect_shmem_refused(f, run_shmem, mm, "a System V object that keeps its contents lists data");
	f->m->shm.has_source = f->m->shm.has_sysv_id = true;
	f->m->shm.source = SHMEM_SOURCE__SHMEM_SYSV_REMOVED;
	f->m->vma[4].shared = false;
	expect_shmem_refused(f, run_shmem, mm, "a private VMA maps a System V object");
	f->m->vma[4].kind = VMA_KIND__VMA_FILE;
	expect_shmem_refused(f, run_shmem, mm, "a file VMA maps shared memory");
	f->m->n_shm_pages = 1;
	expect_shmem_refused(f, run_shmem, data, "the data holds fewer pages than the objects list");
	f->m->n_shm_pages = 3;
	expect_shmem_refused(f, run_shmem, data, "the data holds more pages than the objects list");
	f->m->vma[4].has_shmem_id = false;
	expect_shmem_refused(f, run_mem, mm, "a shared anonymous VMA names no object");
	f->m->pm[N_PM].vaddr = USER_TOP;
	f->m->pm[N_PM].nr_pages = 1;
	f->m->n_pm = N_PM + 1;
	f->m->n_pages = 4;
	expect_shmem_refused(f, run_mem, pm, "pages are dumped for shared memory, which has its own");
}

/* VMA flags and guard regions that make no sense. */
static void test_vma_flags_refused(void **state)
{
	struct fixture *f = *state;
	static PageRun guard, *guard_ptr = &guard;
	cr_error_t err = NULL;

	page_run__init(&guard);
	f->m->vma[1].has_flags = true;
	f->m->vma[1].flags = VMA_FLAG__VMA_FLAG_LOCKED | VMA_FLAG__VMA_FLAG_HUGEPAGE | VMA_FLAG__VMA_FLAG_WIPEONFORK;
	guard.offset = 0x1000;
	guard.nr_pages = 2;
	f->m->vma[1].n_guards = 1;
	f->m->vma[1].guards = &guard_ptr;
	f->m->vma[4].flags = VMA_FLAG__VMA_FLAG_LOCKED | VMA_FLAG__VMA_FLAG_SEALED | VMA_FLAG__VMA_FLAG_NORESERVE;
	write_model(f->dirfd, f->m);   /* memory checks the page data against the pagemap */
	expect_ok(run_mem(f, &err), &err, "flags and a guard region");
	guard.offset = 0x3000;
	expect_mem_refused(f, CR_IMG_MM, "a guard region runs past its VMA");
	f->m->vma[1].n_guards = 1;
	f->m->vma[1].guards = &guard_ptr;
	guard.offset = 0x4000;
	guard.nr_pages = 1;
	expect_mem_refused(f, CR_IMG_MM, "a guard region lies beyond its VMA");
	f->m->vma[1].n_guards = 1;
	f->m->vma[1].guards = &guard_ptr;
	guard.offset = 0x1000;
	guard.nr_pages = 0;
	expect_mem_refused(f, CR_IMG_MM, "a guard region holds no pages");
	f->m->vma[1].n_guards = 1;
	f->m->vma[1].guards = &guard_ptr;
	guard.offset = 0x1800;
	guard.nr_pages = 1;
	expect_mem_refused(f, CR_IMG_MM, "a guard region is not page aligned");
	f->m->vma[1].flags = 1u << 20;
	expect_mem_refused(f, CR_IMG_MM, "an unknown flag");
	f->m->vma[1].flags = VMA_FLAG__VMA_FLAG_LOCKONFAULT;
	expect_mem_refused(f, CR_IMG_MM, "lock on fault without lock");
	f->m->vma[4].flags = VMA_FLAG__VMA_FLAG_DROPPABLE;
	expect_mem_refused(f, CR_IMG_MM, "droppable shared memory");
	f->m->vma[4].flags = VMA_FLAG__VMA_FLAG_WIPEONFORK;
	expect_mem_refused(f, CR_IMG_MM, "wipe-on-fork shared memory");
	f->m->vma[2].flags = VMA_FLAG__VMA_FLAG_DROPPABLE;
	expect_mem_refused(f, CR_IMG_MM, "a droppable heap");
	f->m->vma[0].flags = VMA_FLAG__VMA_FLAG_DROPPABLE;
	expect_mem_refused(f, CR_IMG_MM, "a droppable file mapping");
}

static void expect_files_refused(struct fixture *f, const char *file, const char *what)
{
	cr_error_t err = NULL;

	expect_refused(run_files(f, &err), &err, file, what);
	free(f->m);
	f->m = model_new();
}

static void test_fds_refused(void **state)
{
	struct fixture *f = *state;
	char name[IMG_NAME_MAX];

	task_img(name, CR_IMG_FDINFO, f->m);
	f->m->fds[2].fd = 1u << 20;
	expect_files_refused(f, name, "an fd number is beyond any limit");
	f->m->fds[2].fd = 0xffffffffu;
	expect_files_refused(f, name, "an fd number is negative as an int");
	f->m->fds[2].fd = 1;
	expect_files_refused(f, name, "two entries have the same fd");
	f->m->fds[0].fd = 5;
	expect_files_refused(f, name, "fds are out of order");
	f->m->fds[1].file_id = 3;
	expect_files_refused(f, name, "an fd names a file files.img lacks");
	f->m->fds[1].file_id = 0;
	expect_files_refused(f, name, "an fd names file 0");
	f->m->files[1].kind = (FileKind)99;
	expect_files_refused(f, "files.img", "a file has an unknown kind");
	f->m->files[1].kind = FILE_KIND__FILE_MQUEUE;
	f->m->files[1].path = "/../queue";
	expect_files_refused(f, "files.img", "a POSIX message queue's name has a slash");
	f->m->files[1].kind = FILE_KIND__FILE_MQUEUE;
	f->m->files[1].path = "/queue";
	f->m->files[1].flags = O_RDWR | O_APPEND;
	expect_files_refused(f, "files.img", "a POSIX message queue has flags it cannot have");
}

/* fds 0-2 on a unix stream socket whose peer is closed, with two
 * stretches queued: "ab" carrying a pipe only in flight (holding "xy"),
 * then "c". */
static void model_unix_stream(struct model *m)
{
	static UnixSkEntry sk;
	static UnixScmFile pipe_file, *pipe_ptr = &pipe_file;
	static PipeEntry pipe;
	static ProtobufCBinaryData queue[2], pipe_data[1];
	static uint32_t scm_count[2], scm_ino[1];

	unix_sk_entry__init(&sk);
	sk.ino = 4242;
	sk.type = SOCK_STREAM;
	sk.state = 1;   /* TCP_ESTABLISHED */
	sk.has_peer = true;
	sk.peer = 0;
	sk.peek_off = -1;
	sk.sndbuf = sk.rcvbuf = 212992;
	queue[0] = (ProtobufCBinaryData){ .len = 2, .data = (uint8_t *)"ab" };
	queue[1] = (ProtobufCBinaryData){ .len = 1, .data = (uint8_t *)"c" };
	sk.queue = queue;
	sk.n_queue = 2;
	scm_count[0] = 1;
	scm_count[1] = 0;
	sk.scm_count = scm_count;
	sk.n_scm_count = 2;
	scm_ino[0] = 0;
	sk.scm_ino = scm_ino;
	sk.n_scm_ino = 1;
	pipe_entry__init(&pipe);
	pipe.ino = 77;
	pipe.pipe_size = 4096;
	pipe_data[0] = (ProtobufCBinaryData){ .len = 2, .data = (uint8_t *)"xy" };
	pipe.data = pipe_data;
	pipe.n_data = 1;
	unix_scm_file__init(&pipe_file);
	pipe_file.path = "pipe:[77]";
	pipe_file.flags = O_RDONLY;
	pipe_file.pipe = &pipe;
	sk.scm_files = &pipe_ptr;
	sk.n_scm_files = 1;
	m->files[1].kind = FILE_KIND__FILE_UNIX_SOCKET;
	m->files[1].path = "socket:[4242]";
	m->files[1].has_rdev = false;
	m->files[1].unix_sk = &sk;
}

/* A stream queue with fds in flight (unix_sk.c): kept as stretches, each
 * with its count of fds; refused when the counts do not match the
 * stretches or a pipe in flight holds more than its size. */
static void test_unix_stream_scm(void **state)
{
	struct fixture *f = *state;
	cr_error_t err = NULL;

	model_unix_stream(f->m);
	expect_ok(run_files(f, &err), &err, "a stream queue with a pipe in flight");
	f->m->files[1].unix_sk->n_scm_count = 1;
	expect_files_refused(f, "files.img", "a stream queue has fewer fd counts than stretches");
	model_unix_stream(f->m);
	f->m->files[1].unix_sk->scm_count[1] = 1;
	expect_files_refused(f, "files.img", "the fd counts name more fds than the stretches carry");
	model_unix_stream(f->m);
	f->m->files[1].unix_sk->scm_files[0]->pipe->pipe_size = 1;
	expect_files_refused(f, "files.img", "a pipe in flight holds more than its size");
	model_unix_stream(f->m);
	f->m->files[1].unix_sk->n_scm_count = 0;
	f->m->files[1].unix_sk->n_scm_ino = 0;
	f->m->files[1].unix_sk->n_scm_files = 0;
	expect_files_refused(f, "files.img", "a stream queue of two stretches carries neither fds nor credentials");
}

/* fd 1 a listening unix socket bound at DIR/a/s.sock (not there at dump),
 * its file moved to DIR/b/s.sock since the bind. */
static void model_unix_moved(struct model *m, const char *dir)
{
	static UnixSkEntry sk;
	static char name[128], moved[128];

	unix_sk_entry__init(&sk);
	sk.ino = 4343;
	sk.type = SOCK_STREAM;
	sk.state = 10;   /* TCP_LISTEN */
	sk.has_backlog = true;
	sk.backlog = 5;
	sk.peek_off = -1;
	sk.sndbuf = sk.rcvbuf = 212992;
	snprintf(name, sizeof(name), "%s/a/s.sock", dir);
	sk.has_name = true;
	sk.name = (ProtobufCBinaryData){ .len = strlen(name) + 1, .data = (uint8_t *)name };
	sk.has_name_ino = true;
	sk.name_ino = 99;
	sk.has_name_on_disk = true;
	sk.name_on_disk = false;
	sk.has_name_dev = sk.has_name_mode = sk.has_name_uid = sk.has_name_gid = true;
	sk.name_mode = 0755;
	snprintf(moved, sizeof(moved), "%s/b/s.sock", dir);
	sk.moved_to = moved;
	m->files[1].kind = FILE_KIND__FILE_UNIX_SOCKET;
	m->files[1].path = "socket:[4343]";
	m->files[1].has_rdev = false;
	m->files[1].unix_sk = &sk;
}

/* moved_to (unix_sk.c): an absolute path of plain names into a directory
 * that is there, where nothing else is; one of renamed_to and moved_to. */
static void test_unix_moved(void **state)
{
	struct fixture *f = *state;
	char dir[] = "/tmp/test_validate.XXXXXX", sub[64];
	cr_error_t err = NULL;

	assert_non_null(mkdtemp(dir));
	snprintf(sub, sizeof(sub), "%s/b", dir);
	assert_int_equal(mkdir(sub, 0700), 0);
	model_unix_moved(f->m, dir);
	expect_ok(run_files(f, &err), &err, "a socket file moved to another directory");
	f->m->files[1].unix_sk->moved_to = "b/s.sock";
	expect_files_refused(f, "files.img", "moved_to is relative");
	model_unix_moved(f->m, dir);
	f->m->files[1].unix_sk->moved_to = "/tmp/../etc/s.sock";
	expect_files_refused(f, "files.img", "moved_to has a .. component");
	model_unix_moved(f->m, dir);
	f->m->files[1].unix_sk->renamed_to = "t.sock";
	expect_files_refused(f, "files.img", "both renamed_to and moved_to");
	model_unix_moved(f->m, dir);
	f->m->files[1].unix_sk->moved_to = "/nonexistent-dir-of-cr/s.sock";
	expect_files_refused(f, "files.img", "moved_to into a directory that is gone");
	model_unix_moved(f->m, dir);
	snprintf(sub, sizeof(sub), "%s/b/s.sock", dir);
	assert_int_equal(close(open(sub, O_CREAT | O_WRONLY, 0600)), 0);
	expect_files_refused(f, "files.img", "moved_to where another file is");
	unlink(sub);
	snprintf(sub, sizeof(sub), "%s/b", dir);
	rmdir(sub);
	rmdir(dir);
}

/* fd 1 a pidfd of a reaped process that exited with status (wait()'s). */
static void model_reaped_pidfd(struct model *m, int32_t status)
{
	static PidfdEntry pe;

	pidfd_entry__init(&pe);
	pe.has_reaped = pe.reaped = true;
	pe.has_exit_status = true;
	pe.exit_status = status;
	m->files[1].kind = FILE_KIND__FILE_PIDFD;
	m->files[1].path = "anon_inode:[pidfd]";
	m->files[1].has_rdev = false;
	m->files[1].pidfd = &pe;
}

/* A pidfd of a reaped process: a wait status an end gives, and no pid. */
static void test_reaped_pidfd(void **state)
{
	struct fixture *f = *state;
	cr_error_t err = NULL;

	model_reaped_pidfd(f->m, 7 << 8);
	expect_ok(run_files(f, &err), &err, "a pidfd of a process that exited with 7");
	model_reaped_pidfd(f->m, SIGTERM);
	expect_ok(run_files(f, &err), &err, "a pidfd of a process killed by SIGTERM");
	model_reaped_pidfd(f->m, SIGSEGV | 0x80);
	expect_files_refused(f, "files.img", "a reaped process's wait status says it dumped core");
	model_reaped_pidfd(f->m, 0x7f);
	expect_files_refused(f, "files.img", "a reaped process's wait status says it stopped");
	model_reaped_pidfd(f->m, (7 << 8) | 0x10000);
	expect_files_refused(f, "files.img", "a reaped process's wait status has bits no exit gives");
	model_reaped_pidfd(f->m, 0);
	f->m->files[1].pidfd->pid = 42;
	expect_files_refused(f, "files.img", "a reaped process's pidfd names a pid");
}

static void test_threads_refused(void **state)
{
	struct fixture *f = *state;
	char name[IMG_NAME_MAX];
	cr_error_t err = NULL;
	RseqEntry rseq;

	task_img(name, CR_IMG_CORE, f->m);
	f->m->th.xstate.len = XSTATE - 64;
	expect_refused(run_thread(f, &err), &err, name, "the xstate is shorter than the inventory says");
	f->m->th.xstate.len = XSTATE;
	f->m->th.regs = NULL;
	expect_refused(run_thread(f, &err), &err, name, "a thread has no registers");
	f->m->th.regs = &f->m->regs;
	f->m->xstate[512] = 0x80;   /* XSTATE_BV: AVX-512 state the dump does not declare */
	expect_refused(run_thread(f, &err), &err, name, "the xstate holds undeclared features");
	f->m->xstate[512] = 0;
	expect_ok(run_thread(f, &err), &err, "thread_validate, repaired");
	f->m->regs.rip = 0x600000;
	expect_refused(run_thread(f, &err), &err, name, "rip is in a mapping that does not execute");
	f->m->regs.rip = 0x400100;
	f->m->regs.cs = 0;
	expect_refused(run_thread(f, &err), &err, name, "cs is no user selector");
	f->m->regs.cs = 0x33;
	f->m->regs.fs = 0x10;
	expect_refused(run_thread(f, &err), &err, name, "fs is a kernel selector");
	f->m->regs.fs = 0;
	f->m->regs.fs_base = 1ULL << 63;
	expect_refused(run_thread(f, &err), &err, name, "the fs base is beyond user space");
	f->m->regs.fs_base = 0;
	f->m->th.robust_list_len = 0;
	expect_refused(run_thread(f, &err), &err, name, "the robust list head has another size");
	f->m->th.robust_list_len = 24;
	rseq_entry__init(&rseq);
	rseq.addr = 0x1000;   /* in no mapping of the model */
	rseq.len = 32;
	f->m->th.rseq = &rseq;
	expect_refused(run_thread(f, &err), &err, name, "the rseq area is in no writable mapping");
	f->m->th.rseq = NULL;
	expect_ok(run_thread(f, &err), &err, "thread_validate, repaired again");
	/* A CPU that lacks a feature the dump uses: refused (it names the features). */
	f->m->inv.xfeatures = ~0ULL;
	assert_int_equal(run_thread(f, &err), -1);
	assert_non_null(strstr(err->msg, "features"));
	cr_error_release(&err);
}

/* Seccomp of three threads (only seccomp_validate looks at them): filter
 * 1 shared by all, filter 2 thread 2's own, filters 3.. spare for a long
 * stack. */
#define SC_FILTERS 9
struct seccomp_model {
	struct sock_filter allow[BPF_MAXINSNS + 1], notify[1];
	SeccompFilterEntry f[SC_FILTERS], *fp[SC_FILTERS];
	SeccompEntry se;
	ThreadCore th[3], *thp[3];
	ThreadSeccompEntry ts[3];
};

static void seccomp_model(struct fixture *f, struct seccomp_model *s)
{
	memset(s, 0, sizeof(*s));
	for (size_t i = 0; i <= BPF_MAXINSNS; i++)
		s->allow[i] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
	s->notify[0] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_USER_NOTIF);
	for (size_t i = 0; i < SC_FILTERS; i++) {
		seccomp_filter_entry__init(&s->f[i]);
		s->f[i].prog.data = (uint8_t *)s->allow;
		s->f[i].prog.len = sizeof(s->allow[0]);
		s->fp[i] = &s->f[i];
	}
	s->f[1].prev = 1;
	s->f[1].flags = SECCOMP_FILTER_FLAG_LOG;
	seccomp_entry__init(&s->se);
	s->se.n_filters = 2;
	s->se.filters = s->fp;
	for (size_t i = 0; i < 3; i++) {
		s->th[i] = f->m->th;
		thread_seccomp_entry__init(&s->ts[i]);
		s->ts[i].mode = SECCOMP_MODE_FILTER;
		s->ts[i].filter = 1;
		s->th[i].seccomp = &s->ts[i];
		s->thp[i] = &s->th[i];
	}
	s->ts[2].filter = 2;
	f->m->core.n_threads = 3;
	f->m->core.threads = s->thp;
	f->m->core.seccomp = &s->se;
}

static void expect_seccomp_refused(struct fixture *f, struct seccomp_model *s, const char *what)
{
	char name[IMG_NAME_MAX];
	cr_error_t err = NULL;

	expect_refused(run_seccomp(f, &err), &err, task_img(name, CR_IMG_CORE, f->m), what);
	seccomp_model(f, s);
}

/* mlockall's flags: MCL_FUTURE alone or with MCL_ONFAULT, nothing else. */
static void test_mmdefaults_refused(void **state)
{
	struct fixture *f = *state;
	char name[IMG_NAME_MAX];
	cr_error_t err = NULL;
	static const uint32_t bad[] = { MCL_CURRENT, MCL_ONFAULT, MCL_CURRENT | MCL_FUTURE, 0x80 | MCL_FUTURE };

	f->m->sched.mlock_future = MCL_FUTURE;
	expect_ok(run_mmdefaults(f, &err), &err, "MCL_FUTURE");
	f->m->sched.mlock_future = MCL_FUTURE | MCL_ONFAULT;
	expect_ok(run_mmdefaults(f, &err), &err, "MCL_FUTURE | MCL_ONFAULT");
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		f->m->sched.mlock_future = bad[i];
		expect_refused(run_mmdefaults(f, &err), &err, task_img(name, CR_IMG_CORE, f->m),
			       "mlockall flags are not MCL_FUTURE [| MCL_ONFAULT]");
	}
	f->m->sched.mlock_future = 0;
	f->m->core.sched = NULL;
	expect_refused(run_mmdefaults(f, &err), &err, task_img(name, CR_IMG_CORE, f->m),
		       "the process attributes are missing");
	f->m->core.sched = &f->m->sched;
}

static void test_seccomp_refused(void **state)
{
	struct fixture *f = *state;
	struct seccomp_model *s = calloc(1, sizeof(*s));
	cr_error_t err = NULL;

	assert_non_null(s);
	seccomp_model(f, s);
	expect_ok(run_seccomp(f, &err), &err, "a filter shared by every thread, another one thread's own");
	s->ts[0].mode = SECCOMP_MODE_STRICT;
	s->ts[0].filter = 0;
	s->ts[1].mode = SECCOMP_MODE_DISABLED;
	s->ts[1].filter = 0;
	s->ts[2].filter = 1;
	s->se.n_filters = 1;
	expect_ok(run_seccomp(f, &err), &err, "one thread strict, one without seccomp, one with a filter");
	seccomp_model(f, s);

	s->ts[1].mode = SECCOMP_MODE_DISABLED;
	s->ts[1].filter = 0;
	expect_seccomp_refused(f, s, "a filter is shared by two threads of three");
	s->f[0].prog.len = 12;
	expect_seccomp_refused(f, s, "a program is not a whole number of instructions");
	s->f[0].prog.len = 0;
	expect_seccomp_refused(f, s, "a program is empty");
	s->f[0].prog.len = sizeof(s->allow);
	expect_seccomp_refused(f, s, "a program is longer than BPF_MAXINSNS");
	s->f[1].flags = SECCOMP_FILTER_FLAG_TSYNC;
	expect_seccomp_refused(f, s, "a filter has a flag the dump cannot know");
	s->f[0].prev = 2;
	expect_seccomp_refused(f, s, "a filter sits on one above it");
	s->f[1].prev = 2;
	expect_seccomp_refused(f, s, "a filter sits on itself");
	s->ts[0].mode = 3;
	expect_seccomp_refused(f, s, "a thread's mode is unknown");
	s->ts[0].mode = SECCOMP_MODE_STRICT;
	expect_seccomp_refused(f, s, "a strict thread names a filter");
	s->ts[0].mode = SECCOMP_MODE_DISABLED;
	expect_seccomp_refused(f, s, "a thread without seccomp names a filter");
	s->ts[0].filter = 0;
	expect_seccomp_refused(f, s, "a filtering thread names no filter");
	s->ts[0].filter = 3;
	expect_seccomp_refused(f, s, "a thread names a filter the process lacks");
	s->ts[2].filter = 1;
	expect_seccomp_refused(f, s, "a filter belongs to no thread");
	s->th[1].seccomp = NULL;
	expect_seccomp_refused(f, s, "a thread has no seccomp entry");
	s->f[1].prog.data = (uint8_t *)s->notify;
	expect_seccomp_refused(f, s, "a filter returns SECCOMP_RET_USER_NOTIF");
	/* Eight filters of 4096 instructions on thread 2: past the kernel's
	 * 32768 per stack (4 more for each filter below the newest). */
	for (size_t i = 1; i < 8; i++)
		s->f[i].prev = (uint32_t)i;
	for (size_t i = 0; i < 8; i++)
		s->f[i].prog.len = BPF_MAXINSNS * sizeof(s->allow[0]);
	s->se.n_filters = 8;
	s->ts[2].filter = 8;
	expect_seccomp_refused(f, s, "a stack holds more instructions than the kernel allows");
	free(f->m);
	f->m = model_new();
	free(s);
}

/* --- the whole directory through cr_restore ---------------------------------------------------- */

/* crc32 of every file in the directory, in name order, as one number. */
static uint32_t dir_digest(int dirfd)
{
	struct dirent **names = NULL;
	char path[64];
	uint32_t crc = 0;
	int n;

	snprintf(path, sizeof(path), "/proc/self/fd/%d", dirfd);
	n = scandir(path, &names, NULL, alphasort);
	assert_true(n >= 0);
	for (int i = 0; i < n; i++) {
		char *data = NULL;
		size_t len = 0;
		cr_error_t err = NULL;

		if (names[i]->d_name[0] != '.' && read_whole_file_at(dirfd, names[i]->d_name, &data, &len, &err) == 0) {
			crc = (uint32_t)crc32_z(crc, (const unsigned char *)names[i]->d_name, strlen(names[i]->d_name));
			crc = (uint32_t)crc32_z(crc, (const unsigned char *)data, len);
		}
		cr_error_release(&err);
		free(data);
		free(names[i]);
	}
	free(names);
	return crc;
}

/* cr_restore on the directory; returns its error (the caller frees it). */
static cr_error_t restore_dir(struct fixture *f)
{
	uint32_t before = dir_digest(f->dirfd);
	cr_error_t err = NULL;
	int status = 0;

	f->opts.detach = true;
	assert_int_equal(cr_restore(&f->opts, PID_BACKEND_AUTO, &status, &err), -1);
	assert_non_null(err);
	assert_int_equal(dir_digest(f->dirfd), before);   /* a failed restore changes no image */
	return err;
}

static void expect_restore_refused(struct fixture *f, const char *file, const char *what)
{
	cr_error_t err = restore_dir(f);
	char msg[512];
	bool named = strstr(err->msg, file) != NULL;

	snprintf(msg, sizeof(msg), "%s", err->msg);
	cr_error_release(&err);
	if (!named)
		fail_msg("restore refused (%s), but the message does not name %s: %s", what, file, msg);
}

/* The control: the undamaged dump passes validation and stops only at
 * the pid, which this test holds. */
static void test_restore_control(void **state)
{
	struct fixture *f = *state;
	cr_error_t err;

	char msg[512];

	write_model(f->dirfd, f->m);
	err = restore_dir(f);
	snprintf(msg, sizeof(msg), "%s", err->msg);
	cr_error_release(&err);
	if (strstr(msg, ".img") != NULL)
		fail_msg("the undamaged dump was refused: %s", msg);
	if (strstr(msg, "taken") == NULL)
		fail_msg("the undamaged dump did not stop at its taken pid: %s", msg);
}

/* Every image file of the dump, in turn: one per kind (write_model writes
 * every kind of the table). */
static void all_images(const struct model *m, char names[CR_IMG_N][IMG_NAME_MAX], uint32_t kinds[CR_IMG_N])
{
	assert_true(img_n_kinds <= CR_IMG_N);
	for (size_t i = 0; i < img_n_kinds; i++) {
		kinds[i] = img_kinds[i].kind;
		img_name(names[i], kinds[i], m->pid);
	}
}

static void rewrite(int dirfd, const char *name, const unsigned char *data, size_t len)
{
	int fd = openat(dirfd, name, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	cr_error_t err = NULL;

	assert_true(fd >= 0);
	expect_ok(write_all(fd, data, len, &err), &err, "rewrite");
	close(fd);
}

/* Each file damaged by damage(), restored, repaired. */
static void damage_each(struct fixture *f, size_t (*damage)(unsigned char *data, size_t len, size_t at),
			const char *what)
{
	char names[CR_IMG_N][IMG_NAME_MAX];
	uint32_t kinds[CR_IMG_N];

	write_model(f->dirfd, f->m);
	all_images(f->m, names, kinds);
	for (size_t i = 0; i < img_n_kinds; i++) {
		char *orig = NULL;
		size_t len = 0;
		cr_error_t err = NULL;

		expect_ok(read_whole_file_at(f->dirfd, names[i], &orig, &len, &err), &err, "read");
		for (size_t at = 0; at < len; at += len / 7 + 1) {
			unsigned char *copy = malloc(len);

			memcpy(copy, orig, len);
			rewrite(f->dirfd, names[i], copy, damage(copy, len, at));
			expect_restore_refused(f, names[i], what);
			free(copy);
		}
		rewrite(f->dirfd, names[i], (unsigned char *)orig, len);
		free(orig);
	}
}

static size_t flip_byte(unsigned char *data, size_t len, size_t at)
{
	data[at] ^= 0x01;
	return len;
}

static size_t truncate_at(unsigned char *data, size_t len, size_t at)
{
	(void)data;
	(void)len;
	return at;
}

static void test_restore_refuses_flipped_bytes(void **state)
{
	damage_each(*state, flip_byte, "a byte is flipped");
}

static void test_restore_refuses_truncation(void **state)
{
	damage_each(*state, truncate_at, "the file is truncated");
}

/* Each file replaced by a valid image of another kind. */
static void test_restore_refuses_wrong_kind(void **state)
{
	struct fixture *f = *state;
	char names[CR_IMG_N][IMG_NAME_MAX];
	uint32_t kinds[CR_IMG_N];

	write_model(f->dirfd, f->m);
	all_images(f->m, names, kinds);
	for (size_t i = 0; i < img_n_kinds; i++) {
		char *orig = NULL;
		size_t len = 0;
		cr_error_t err = NULL;
		uint32_t other = kinds[i] == CR_IMG_FDINFO ? CR_IMG_FILES : CR_IMG_FDINFO;

		expect_ok(read_whole_file_at(f->dirfd, names[i], &orig, &len, &err), &err, "read");
		write_msgs(f->dirfd, names[i], other, (ProtobufCMessage **)f->m->fd_ptrs, f->m->n_fds);
		expect_ok(cr_img_verify(f->dirfd, names[i], other, &err), &err, "the replacement");
		expect_restore_refused(f, names[i], "the file holds another kind of image");
		rewrite(f->dirfd, names[i], (unsigned char *)orig, len);
		free(orig);
	}
}

static void test_restore_refuses_missing_file(void **state)
{
	struct fixture *f = *state;
	char names[CR_IMG_N][IMG_NAME_MAX];
	uint32_t kinds[CR_IMG_N];

	write_model(f->dirfd, f->m);
	all_images(f->m, names, kinds);
	for (size_t i = 0; i < img_n_kinds; i++) {
		char tmp[IMG_NAME_MAX + 8];

		snprintf(tmp, sizeof(tmp), "%s.away", names[i]);
		assert_int_equal(renameat(f->dirfd, names[i], f->dirfd, tmp), 0);
		expect_restore_refused(f, names[i], "the file is missing");
		assert_int_equal(renameat(f->dirfd, tmp, f->dirfd, names[i]), 0);
	}
}

/* Writes the model after change, expects refusal naming file, starts over. */
static void expect_model_refused(struct fixture *f, const char *file, const char *what)
{
	write_model(f->dirfd, f->m);
	expect_restore_refused(f, file, what);
	free(f->m);
	f->m = model_new();
}

static void test_restore_refuses_bad_inventory(void **state)
{
	struct fixture *f = *state;

	f->m->inv.format_version = CR_FORMAT_VERSION + 1;
	expect_model_refused(f, "inventory.img", "the format version is unknown");
	f->m->inv.arch = "sparc64";
	expect_model_refused(f, "inventory.img", "the dump is of another architecture");
	f->m->inv.page_size = 65536;
	expect_model_refused(f, "inventory.img", "the page size differs");
	f->m->inv.n_task_pids = 0;
	expect_model_refused(f, "inventory.img", "the dump lists no process");
	f->m->inv.root_pid = 0;
	expect_model_refused(f, "inventory.img", "the root pid is 0");
}

/* Copies name from one directory to another. */
static void copy_image(int from, int to, const char *name)
{
	char *data = NULL;
	size_t len = 0;
	cr_error_t err = NULL;

	expect_ok(read_whole_file_at(from, name, &data, &len, &err), &err, "read");
	rewrite(to, name, (const unsigned char *)data, len);
	free(data);
}

/* Each image but the inventory, taken from a second dump of the same
 * model (alike but for the dump id in every header), is refused by name;
 * so is an inventory that holds no dump id. */
static void test_restore_refuses_foreign_image(void **state)
{
	struct fixture *f = *state;
	struct model *other = model_new();
	char other_dir[TMPDIR_LEN], names[CR_IMG_N][IMG_NAME_MAX], want[160];
	uint32_t kinds[CR_IMG_N];
	int other_fd;
	cr_error_t refused;

	assert_int_equal(tmpdir_make(other_dir, &other_fd), 0);
	memcpy(other->id.b, "another dump id!", CR_DUMP_ID_SIZE);
	write_model(other_fd, other);
	all_images(f->m, names, kinds);
	for (size_t i = 0; i < img_n_kinds; i++) {
		if (kinds[i] == CR_IMG_INVENTORY)
			continue;
		write_model(f->dirfd, f->m);
		copy_image(other_fd, f->dirfd, names[i]);
		refused = restore_dir(f);
		snprintf(want, sizeof(want), "%s: belongs to another dump", names[i]);
		if (strstr(refused->msg, want) == NULL)
			fail_msg("%s from another dump: %s", names[i], refused->msg);
		cr_error_release(&refused);
	}
	img_dir_unbind_id(other_fd);
	tmpdir_remove(other_dir, other_fd);
	free(other);
	f->m->inv.has_dump_id = false;
	f->m->inv.dump_id = (ProtobufCBinaryData){ 0, NULL };
	expect_model_refused(f, "inventory.img", "the inventory holds no dump id");
}

static void test_restore_refuses_bad_pstree(void **state)
{
	struct fixture *f = *state;

	f->m->ps.n_ns_sid = 0;
	expect_model_refused(f, "pstree.img", "the sid set is empty");
	f->m->ps.n_ns_pgid = 2;
	expect_model_refused(f, "pstree.img", "the pgid set has more levels than the pid set");
	f->m->ns_pid[0] = (uint32_t)f->m->pid + 1;
	expect_model_refused(f, "pstree.img", "the pid differs from the inventory's");
	/* A second level: 0, or beyond any pid_max, is out of range. */
	f->m->ps.n_ns_pid = f->m->ps.n_ns_pgid = f->m->ps.n_ns_sid = f->m->tids.n_ns_tid = 2;
	f->m->ns_pid[1] = f->m->ns_pgid[1] = f->m->ns_sid[1] = f->m->ns_tid[1] = 0;
	expect_model_refused(f, "pstree.img", "a pid is 0");
	f->m->ps.n_ns_pid = f->m->ps.n_ns_pgid = f->m->ps.n_ns_sid = f->m->tids.n_ns_tid = 2;
	f->m->ns_pid[1] = f->m->ns_pgid[1] = f->m->ns_sid[1] = f->m->ns_tid[1] = 5000000;
	expect_model_refused(f, "pstree.img", "a pid is beyond PID_MAX_LIMIT");
	f->m->ps.n_ns_pid = 33;
	expect_model_refused(f, "pstree.img", "there are more pid levels than the kernel nests");
}

static void test_restore_refuses_bad_references(void **state)
{
	struct fixture *f = *state;
	char name[IMG_NAME_MAX];

	f->m->core.pid = (uint32_t)f->m->pid + 1;
	expect_model_refused(f, task_img(name, CR_IMG_CORE, f->m), "core describes another pid");
	f->m->mm.exe_file_id = 7;
	expect_model_refused(f, task_img(name, CR_IMG_MM, f->m), "the exe is a file files.img lacks");
	f->m->vma[0].file_id = 7;
	expect_model_refused(f, task_img(name, CR_IMG_MM, f->m), "a VMA maps a file files.img lacks");
	f->m->files[1].id = 5;
	expect_model_refused(f, "files.img", "file ids do not count up from 1");
	f->m->fds[2].file_id = 9;
	expect_model_refused(f, task_img(name, CR_IMG_FDINFO, f->m), "an fd names a file files.img lacks");
	f->m->fds[2].fd = 1u << 24;
	expect_model_refused(f, task_img(name, CR_IMG_FDINFO, f->m), "an fd number is beyond any limit");
	f->m->vma[3].end = 0x0100000000000000ULL;
	expect_model_refused(f, task_img(name, CR_IMG_MM, f->m), "a VMA ends beyond user space");
	f->m->pm[0].vaddr = 0x500000;
	expect_model_refused(f, task_img(name, CR_IMG_PAGEMAP, f->m), "pages lie outside every VMA");
	f->m->th.xstate.len = 8;
	expect_model_refused(f, task_img(name, CR_IMG_CORE, f->m), "the xstate has the wrong size");
	f->m->vma[4].shmem_id = 9;
	expect_model_refused(f, task_img(name, CR_IMG_MM, f->m), "a VMA maps shared memory no process creates");
	f->m->n_shm_pages = 1;
	expect_model_refused(f, img_name(name, CR_IMG_SHMEM_PAGES, 0), "shmem-pages.img lacks a page");
}

/* Values that only make sense within limits, checked before any process
 * exists (the model's own pid is taken, so a restore that let one through
 * would fail at "pid taken", not here). */
static void test_restore_refuses_bad_values(void **state)
{
	struct fixture *f = *state;
	char name[IMG_NAME_MAX];
	static SiginfoEntry short_info;
	static SiginfoEntry *short_ptr = &short_info;
	static RlimitEntry bad_limit;
	static RlimitEntry *limit_ptr = &bad_limit;

	f->m->n_pages = 2;
	expect_model_refused(f, task_img(name, CR_IMG_PAGES, f->m), "the page data holds fewer pages than the pagemap");
	f->m->n_pages = 5;
	expect_model_refused(f, task_img(name, CR_IMG_PAGES, f->m), "the page data holds more pages than the pagemap");
	f->m->mm.start_brk = 0x800000;
	f->m->mm.brk = 0x700000;
	expect_model_refused(f, task_img(name, CR_IMG_MM, f->m), "brk lies below start_brk");
	f->m->mm.start_data = 0;
	expect_model_refused(f, task_img(name, CR_IMG_MM, f->m), "data starts at 0, below mmap_min_addr");
	f->m->mm.end_code = f->m->mm.start_code;
	expect_model_refused(f, task_img(name, CR_IMG_MM, f->m), "the code is empty");
	f->m->mm.env_end = 1ULL << 47;
	expect_model_refused(f, task_img(name, CR_IMG_MM, f->m), "the environment ends beyond user space");
	f->m->mm.env_end = 0xffff800000000000ULL;
	expect_model_refused(f, task_img(name, CR_IMG_MM, f->m), "the environment ends in kernel space");
	f->m->vma[1].kind = 99;
	expect_model_refused(f, task_img(name, CR_IMG_MM, f->m), "a VMA has an unknown kind");
	f->m->core.umask = 0177777;
	expect_model_refused(f, task_img(name, CR_IMG_CORE, f->m), "the umask is out of range");
	f->m->core.exit_signal = 200;
	expect_model_refused(f, task_img(name, CR_IMG_CORE, f->m), "the exit signal is out of range");
	siginfo_entry__init(&short_info);
	short_info.siginfo.len = 8;
	short_info.siginfo.data = (uint8_t *)"shortsi";
	f->m->core.n_shared_pending = 1;
	f->m->core.shared_pending = &short_ptr;
	expect_model_refused(f, task_img(name, CR_IMG_CORE, f->m), "a pending signal has a short siginfo");
	rlimit_entry__init(&bad_limit);
	bad_limit.resource = 99;
	f->m->core.n_rlimits = 1;
	f->m->core.rlimits = &limit_ptr;
	expect_model_refused(f, task_img(name, CR_IMG_CORE, f->m), "an unknown resource limit");
	f->m->th.tid = (uint32_t)f->m->pid + 1;
	expect_model_refused(f, task_img(name, CR_IMG_CORE, f->m), "a thread's tid disagrees with pstree.img");
	f->m->th_sched.policy = 6;
	expect_model_refused(f, task_img(name, CR_IMG_CORE, f->m), "SCHED_DEADLINE, which cr refuses at dump");
	f->m->th_sched.policy = SCHED_FIFO;
	expect_model_refused(f, task_img(name, CR_IMG_CORE, f->m), "SCHED_FIFO with priority 0");
	f->m->th_sched.priority = 3;
	expect_model_refused(f, task_img(name, CR_IMG_CORE, f->m), "SCHED_OTHER with priority 3");
	f->m->th_sched.nice = 20;
	expect_model_refused(f, task_img(name, CR_IMG_CORE, f->m), "nice 20");
	f->m->th_cpus[0] = CR_CPUS_MAX - 1;
	expect_model_refused(f, task_img(name, CR_IMG_CORE, f->m), "a CPU this machine does not have");
	f->m->th_sched.n_cpus = 0;
	expect_model_refused(f, task_img(name, CR_IMG_CORE, f->m), "an empty affinity");
	f->m->th_sched.ioprio = 5 << 13;
	expect_model_refused(f, task_img(name, CR_IMG_CORE, f->m), "an unknown I/O class");
	f->m->th_sched.timer_slack_ns = 0;
	expect_model_refused(f, task_img(name, CR_IMG_CORE, f->m), "no timer slack for SCHED_OTHER");
	f->m->th.sched = NULL;
	expect_model_refused(f, task_img(name, CR_IMG_CORE, f->m), "a thread without scheduling attributes");
	f->m->sched.oom_score_adj = 1001;
	expect_model_refused(f, task_img(name, CR_IMG_CORE, f->m), "oom_score_adj 1001");
	f->m->sched.dumpable = 2;
	expect_model_refused(f, task_img(name, CR_IMG_CORE, f->m), "dumpable 2");
	f->m->sched.thp_disable = 2;
	expect_model_refused(f, task_img(name, CR_IMG_CORE, f->m), "THP flags without THP disabled");
	f->m->sched.mdwe = 2;
	expect_model_refused(f, task_img(name, CR_IMG_CORE, f->m), "MDWE no-inherit without MDWE");
	f->m->core.sched = NULL;
	expect_model_refused(f, task_img(name, CR_IMG_CORE, f->m), "no process attributes");
	f->m->ns_pgid[0] = 5000000;
	expect_model_refused(f, "pstree.img", "a process group is beyond PID_MAX_LIMIT");
}

/* A lock the process would take again through fd 2 (moved onto the
 * regular file, read-only) with one value changed; checked by the locks
 * kind before any process exists. */
static void expect_lock_refused(struct fixture *f, LockKind kind, uint32_t fd, bool write, uint64_t start,
				uint64_t len, const char *what)
{
	static LockEntry lock;
	static LockEntry *lock_ptr = &lock;
	char name[IMG_NAME_MAX];

	lock_entry__init(&lock);
	lock.kind = kind;
	lock.fd = fd;
	lock.write = write;
	lock.start = start;
	lock.len = len;
	f->m->fds[2].file_id = 1;
	f->m->core.n_locks = 1;
	f->m->core.locks = &lock_ptr;
	expect_model_refused(f, task_img(name, CR_IMG_CORE, f->m), what);
}

static void test_restore_refuses_bad_locks(void **state)
{
	struct fixture *f = *state;
	static LockEntry good;
	static LockEntry *good_ptr = &good;
	cr_error_t err;
	char msg[512];

	/* The control: a read lock on the read-only file passes validation. */
	lock_entry__init(&good);
	good.kind = LOCK_KIND__LOCK_POSIX;
	good.fd = 2;
	good.start = 10;
	good.len = 5;
	f->m->fds[2].file_id = 1;
	f->m->core.n_locks = 1;
	f->m->core.locks = &good_ptr;
	write_model(f->dirfd, f->m);
	err = restore_dir(f);
	snprintf(msg, sizeof(msg), "%s", err->msg);
	cr_error_release(&err);
	if (strstr(msg, "taken") == NULL)
		fail_msg("a valid lock did not pass validation: %s", msg);
	free(f->m);
	f->m = model_new();

	expect_lock_refused(f, 9, 2, false, 0, 0, "a lock of an unknown kind");
	expect_lock_refused(f, LOCK_KIND__LOCK_POSIX, 3, false, 0, 0, "a lock on an fd the table lacks");
	expect_lock_refused(f, LOCK_KIND__LOCK_FLOCK, 1, false, 0, 0, "a lock on a character device");
	expect_lock_refused(f, LOCK_KIND__LOCK_POSIX, 2, true, 0, 0, "a write lock on a read-only fd");
	expect_lock_refused(f, LOCK_KIND__LOCK_OFD, 2, false, (uint64_t)INT64_MAX, 2, "a range beyond the largest offset");
	expect_lock_refused(f, LOCK_KIND__LOCK_POSIX, 2, false, 1ULL << 63, 0, "a negative start");
	expect_lock_refused(f, LOCK_KIND__LOCK_FLOCK, 2, false, 0, 10, "a flock with a byte range");
}

static void test_restore_refuses_bad_ns(void **state)
{
	struct fixture *f = *state;
	char name[IMG_NAME_MAX];
	static uint8_t big[9000];

	f->m->uts_ns.hostname = "a-hostname-that-is-longer-than-the-sixty-four-bytes-a-kernel-keeps";
	expect_model_refused(f, "ns.img", "a hostname is longer than 64 bytes");
	f->m->uts_ns.domainname = "a-domainname-that-is-longer-than-the-sixty-four-bytes-a-kernel-keeps";
	expect_model_refused(f, "ns.img", "a domainname is longer than 64 bytes");
	f->m->ns[1].id = 3;
	expect_model_refused(f, "ns.img", "namespace ids do not count up from 1");
	f->m->ns[0].kind = 9;
	expect_model_refused(f, "ns.img", "a namespace is of an unknown kind");
	f->m->ns[0].uts = NULL;
	expect_model_refused(f, "ns.img", "a uts namespace has no hostname");
	f->m->ns[1].uts = &f->m->uts_ns;
	expect_model_refused(f, "ns.img", "a time namespace holds a hostname");
	f->m->time_ns.monotonic_nsec = 1000000000;
	expect_model_refused(f, "ns.img", "an offset's nanoseconds are a whole second");
	f->m->time_ns.boottime_sec = -5000000000LL;
	expect_model_refused(f, "ns.img", "an offset is beyond what the kernel allows");
	f->m->time_ns.dump_monotonic_ns = UINT64_MAX;
	expect_model_refused(f, "ns.img", "a dumped clock is out of range");
	f->m->time_ns.boot_id = "short";
	expect_model_refused(f, "ns.img", "a boot id is malformed");
	f->m->sysctl.name = "kernel/core_pattern";
	expect_model_refused(f, "ns.img", "an ipc namespace sets a limit that is no ipc limit");
	f->m->sysctl.value = "|/bin/sh";
	expect_model_refused(f, "ns.img", "a limit's value is not a number");
	f->m->sysv_shm.contents.data = big;
	f->m->sysv_shm.contents.len = sizeof(big);
	expect_model_refused(f, "ns.img", "a segment holds more contents than its size");
	f->m->sysv_shm.size = 0;
	expect_model_refused(f, "ns.img", "a segment is empty");
	f->m->shm_perm.mode = 01777;
	expect_model_refused(f, "ns.img", "a segment's mode has more than permission bits");
	f->m->sysv_shm.perm = NULL;
	expect_model_refused(f, "ns.img", "a segment has no key and id");
	f->m->msq_perm.id = -1;
	expect_model_refused(f, "ns.img", "a queue's id is negative");
	f->m->msg.type = 0;
	expect_model_refused(f, "ns.img", "a message has type 0");
	f->m->msq.qbytes = 3;
	expect_model_refused(f, "ns.img", "the messages overflow their queue");
	f->m->sem_values[1] = 32768;
	expect_model_refused(f, "ns.img", "a semaphore's value is above SEMVMX");
	f->m->sem.n_values = 0;
	expect_model_refused(f, "ns.img", "a semaphore set is empty");
	f->m->sem_perm.mode = 02660;
	expect_model_refused(f, "ns.img", "a semaphore set's mode has more than permission bits");
	f->m->mq.name = "../etc";
	expect_model_refused(f, "ns.img", "a POSIX queue's name has a slash");
	f->m->mq.name = "";
	expect_model_refused(f, "ns.img", "a POSIX queue has no name");
	f->m->mq.maxmsg = 0;
	expect_model_refused(f, "ns.img", "a POSIX queue holds no message");
	f->m->mq.msgsize = 17u << 20;
	expect_model_refused(f, "ns.img", "a POSIX queue's messages are above the kernel's bound");
	f->m->mq.maxmsg = 1;
	expect_model_refused(f, "ns.img", "a POSIX queue holds more messages than its size");
	f->m->mq_msg.text.data = big;
	f->m->mq_msg.text.len = 65;
	expect_model_refused(f, "ns.img", "a POSIX message is longer than its queue's messages");
	f->m->mq_msg.prio = 32768;
	expect_model_refused(f, "ns.img", "a POSIX message's priority is above MQ_PRIO_MAX");
	f->m->ns_refs.uts = 4;
	expect_model_refused(f, task_img(name, CR_IMG_CORE, f->m), "a process names a namespace ns.img lacks");
	f->m->ns_refs.ipc = 1;
	expect_model_refused(f, task_img(name, CR_IMG_CORE, f->m), "a process's ipc namespace is a uts namespace");
	f->m->ns_refs.time_for_children = 1;
	expect_model_refused(f, task_img(name, CR_IMG_CORE, f->m), "its time namespace for children is a uts one");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_validators_accept_the_model, setup, teardown),
		cmocka_unit_test_setup_teardown(test_show_reads_the_model, setup, teardown),
		cmocka_unit_test_setup_teardown(test_vmas_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reaped_pidfd, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pagemap_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pages_in_special_vma_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_aio_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_shmem_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_vma_flags_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cow_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fds_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unix_stream_scm, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unix_moved, setup, teardown),
		cmocka_unit_test_setup_teardown(test_threads_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_seccomp_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_mmdefaults_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_restore_control, setup, teardown),
		cmocka_unit_test_setup_teardown(test_restore_refuses_flipped_bytes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_restore_refuses_truncation, setup, teardown),
		cmocka_unit_test_setup_teardown(test_restore_refuses_wrong_kind, setup, teardown),
		cmocka_unit_test_setup_teardown(test_restore_refuses_missing_file, setup, teardown),
		cmocka_unit_test_setup_teardown(test_restore_refuses_bad_inventory, setup, teardown),
		cmocka_unit_test_setup_teardown(test_restore_refuses_foreign_image, setup, teardown),
		cmocka_unit_test_setup_teardown(test_restore_refuses_bad_pstree, setup, teardown),
		cmocka_unit_test_setup_teardown(test_restore_refuses_bad_references, setup, teardown),
		cmocka_unit_test_setup_teardown(test_restore_refuses_bad_values, setup, teardown),
		cmocka_unit_test_setup_teardown(test_restore_refuses_bad_locks, setup, teardown),
		cmocka_unit_test_setup_teardown(test_restore_refuses_bad_ns, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
