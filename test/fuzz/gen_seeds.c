/* gen_seeds DIR [DUMP_DIR...]: the seed corpus of fuzz_image.
 *
 * Writes one image of every kind into DIR with the image API, filled the way
 * a dump fills them (nested messages, repeated fields, every fd kind, raw
 * and compressed page chunks), and copies in every image of each DUMP_DIR
 * that is small enough to be a useful fuzz input. */
#include "img/dumpid.h"
#include "img/image.h"
#include "img/pages.h"
#include "os/util.h"

#include "core.pb-c.h"
#include "files.pb-c.h"
#include "inventory.pb-c.h"
#include "mm.pb-c.h"
#include "ns.pb-c.h"
#include "pstree.pb-c.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#define MAX_COPY (64u << 10)   /* the fuzzer's -max_len */

static int out_dir = -1;
/* Every seed carries it in its header, as the images of one dump do. */
static struct cr_dump_id seed_id = { "cr seed dump id" };

static void die(cr_error_t *err)
{
	fprintf(stderr, "gen_seeds: %s\n", *err != NULL && (*err)->msg ? (*err)->msg : "failed");
	exit(1);
}

/* Writes n messages into a fresh image named name. */
static void write_image(const char *name, uint32_t kind, ProtobufCMessage *const *msgs, size_t n)
{
	struct cr_img *img = NULL;
	cr_error_t err = NULL;

	unlinkat(out_dir, name, 0);
	if (cr_img_create(out_dir, name, kind, &img, &err) < 0)
		die(&err);
	for (size_t i = 0; i < n; i++)
		if (cr_img_write_msg(img, msgs[i], &err) < 0)
			die(&err);
	if (cr_img_finish(img, &err) < 0)
		die(&err);
}

static void seed_inventory(void)
{
	static uint32_t pids[] = { 4242, 4243 };
	InventoryEntry inv;
	ProtobufCMessage *m = &inv.base;

	inventory_entry__init(&inv);
	inv.format_version = CR_FORMAT_VERSION;
	inv.kernel_release = "6.18.0";
	inv.arch = "x86_64";
	inv.root_pid = 4242;
	inv.page_size = 4096;
	inv.dump_time_ns = 1700000000123456789ULL;
	inv.xfeatures = 0x2e7;
	inv.xstate_size = 2696;
	inv.n_task_pids = 2;
	inv.task_pids = pids;
	inv.cr_version = "0.1";
	inv.has_dump_id = true;
	inv.dump_id = (ProtobufCBinaryData){ sizeof(seed_id.b), seed_id.b };
	write_image("inventory.img", CR_IMG_INVENTORY, &m, 1);
}

static void seed_pstree(void)
{
	static uint32_t pid0[] = { 4242, 7, 1 }, pid1[] = { 4243, 8, 2 }, tid1[] = { 4244, 9, 3 };
	ThreadIds t0, t1, t2, *threads0[] = { &t0 }, *threads1[] = { &t1, &t2 };
	PstreeEntry a, b;
	ProtobufCMessage *msgs[] = { &a.base, &b.base };

	thread_ids__init(&t0);
	thread_ids__init(&t1);
	thread_ids__init(&t2);
	t0.n_ns_tid = t1.n_ns_tid = t2.n_ns_tid = 3;
	t0.ns_tid = pid0;
	t1.ns_tid = pid1;
	t2.ns_tid = tid1;
	pstree_entry__init(&a);
	a.n_ns_pid = a.n_ns_pgid = a.n_ns_sid = 3;
	a.ns_pid = a.ns_pgid = a.ns_sid = pid0;
	a.n_threads = 1;
	a.threads = threads0;
	b = a;
	b.ns_pid = pid1;
	b.ppid = 4242;
	b.n_threads = 2;
	b.threads = threads1;
	write_image("pstree.img", CR_IMG_PSTREE, msgs, 2);
}

static void seed_core(void)
{
	static uint8_t xstate[576], siginfo[128] = { 10 };
	static uint32_t ids[] = { 0, 0, 0, 0 };
	GpRegs regs;
	RseqEntry rseq;
	SigaltstackEntry alt;
	SiginfoEntry pending, *pendings[] = { &pending };
	ThreadCore th, *threads[] = { &th };
	/* getppid fails with EPERM (w_seccomp's filter, in seccomp.proto's form) */
	static const uint8_t prog[] = {
		0x20, 0, 0, 0, 4, 0, 0, 0,          0x15, 0, 1, 0, 0x3e, 0, 0, 0xc0,
		0x06, 0, 0, 0, 0, 0, 0xff, 0x7f,    0x20, 0, 0, 0, 0, 0, 0, 0,
		0x15, 0, 0, 1, 0x6e, 0, 0, 0,       0x06, 0, 0, 0, 1, 0, 5, 0,
		0x06, 0, 0, 0, 0, 0, 0xff, 0x7f,
	};
	SeccompFilterEntry filter, *filters[] = { &filter };
	SeccompEntry seccomp;
	ThreadSeccompEntry th_seccomp;
	SigactionEntry sa, *sas[] = { &sa };
	RlimitEntry rl, *rls[] = { &rl };
	ItimerEntry it, *its[] = { &it };
	CredsEntry creds;
	NsRefs ns;
	CoreEntry core;
	ProtobufCMessage *m = &core.base;

	gp_regs__init(&regs);
	regs.rip = 0x401000;
	regs.rsp = 0x7ffc00001000;
	regs.rax = (uint64_t)-4;
	rseq_entry__init(&rseq);
	rseq.addr = 0x7f0000001000;
	rseq.len = 32;
	rseq.sig = 0x53053053;
	sigaltstack_entry__init(&alt);
	alt.sp = 0x7f0000100000;
	alt.size = 65536;
	siginfo_entry__init(&pending);
	pending.siginfo.data = siginfo;
	pending.siginfo.len = sizeof(siginfo);
	thread_core__init(&th);
	th.tid = 4242;
	th.regs = &regs;
	th.xstate.data = xstate;
	th.xstate.len = sizeof(xstate);
	th.sigmask = 0x400000001ULL;
	th.n_pending = 1;
	th.pending = pendings;
	th.rseq = &rseq;
	th.creds = &creds;
	th.altstack = &alt;
	th.comm = "worker";
	seccomp_filter_entry__init(&filter);
	filter.prog.data = (uint8_t *)prog;
	filter.prog.len = sizeof(prog);
	filter.flags = 2;   /* SECCOMP_FILTER_FLAG_LOG */
	seccomp_entry__init(&seccomp);
	seccomp.n_filters = 1;
	seccomp.filters = filters;
	thread_seccomp_entry__init(&th_seccomp);
	th_seccomp.mode = 2;
	th_seccomp.filter = 1;
	th.seccomp = &th_seccomp;
	sigaction_entry__init(&sa);
	sa.sig = 10;
	sa.handler = 0x401200;
	sa.flags = 0x04000004;
	rlimit_entry__init(&rl);
	rl.resource = 7;
	rl.cur = 1024;
	rl.max = 4096;
	itimer_entry__init(&it);
	it.value_us = 1500000;
	it.interval_us = 250000;
	creds_entry__init(&creds);
	creds.n_uid = creds.n_gid = 4;
	creds.uid = creds.gid = ids;
	core_entry__init(&core);
	core.pid = 4242;
	core.n_threads = 1;
	core.threads = threads;
	core.n_sigactions = 1;
	core.sigactions = sas;
	core.n_shared_pending = 1;
	core.shared_pending = pendings;
	core.n_rlimits = 1;
	core.rlimits = rls;
	core.n_itimers = 1;
	core.itimers = its;
	core.umask = 022;
	core.cwd = "/home/user";
	core.root = "/";
	core.exit_signal = 17;
	core.has_stopped = true;
	core.seccomp = &seccomp;
	ns_refs__init(&ns);
	ns.uts = 1;
	ns.time = ns.time_for_children = 3;
	core.ns = &ns;
	write_image("core.img", CR_IMG_CORE, &m, 1);
}

/* With shared memory (an object, a VMA of it) and a VMA's flags and guard
 * region. */
static void seed_mm(void)
{
	static uint64_t auxv[] = { 6, 4096, 25, 0x7ffc00002000, 0, 0 };
	VmaEntry v[4], *vmas[] = { &v[0], &v[1], &v[2], &v[3] };
	PageRun data, guard, *data_ptr = &data, *guard_ptr = &guard;
	ShmemObject shm, *shm_ptr = &shm;
	MmEntry mm;
	ProtobufCMessage *m = &mm.base;

	for (int i = 0; i < 4; i++) {
		vma_entry__init(&v[i]);
		v[i].start = 0x400000 + (uint64_t)i * 0x10000;
		v[i].end = v[i].start + 0x4000;
		v[i].prot = 3;
	}
	v[0].kind = VMA_KIND__VMA_FILE;
	v[0].has_file_id = true;
	v[0].file_id = 1;
	v[1].kind = VMA_KIND__VMA_HEAP;
	v[2].kind = VMA_KIND__VMA_STACK;
	v[2].growsdown = true;
	v[2].has_flags = true;
	v[2].flags = VMA_FLAG__VMA_FLAG_LOCKED | VMA_FLAG__VMA_FLAG_DONTFORK;
	page_run__init(&guard);
	guard.offset = 0x1000;
	guard.nr_pages = 1;
	v[2].n_guards = 1;
	v[2].guards = &guard_ptr;
	v[3].kind = VMA_KIND__VMA_ANON;
	v[3].shared = true;
	v[3].has_shmem_id = true;
	v[3].shmem_id = 1;
	page_run__init(&data);
	data.offset = 0x2000;
	data.nr_pages = 2;
	shmem_object__init(&shm);
	shm.id = 1;
	shm.size = 0x4000;
	shm.n_data = 1;
	shm.data = &data_ptr;
	mm_entry__init(&mm);
	mm.n_shmem = 1;
	mm.shmem = &shm_ptr;
	mm.start_code = 0x400000;
	mm.end_code = 0x404000;
	mm.start_brk = mm.brk = 0x410000;
	mm.n_auxv = 6;
	mm.auxv = auxv;
	mm.exe_file_id = 1;
	mm.n_vmas = 4;
	mm.vmas = vmas;
	write_image("mm.img", CR_IMG_MM, &m, 1);
}

static void seed_pagemap(void)
{
	PagemapEntry p[3];
	ProtobufCMessage *msgs[] = { &p[0].base, &p[1].base, &p[2].base };

	for (int i = 0; i < 3; i++) {
		pagemap_entry__init(&p[i]);
		p[i].vaddr = 0x400000 + (uint64_t)i * 0x10000;
		p[i].nr_pages = (uint32_t)(i + 1);
	}
	write_image("pagemap.img", CR_IMG_PAGEMAP, msgs, 3);
	write_image("empty-pagemap.img", CR_IMG_PAGEMAP, NULL, 0);
}

static void seed_files(void)
{
	FileEntry f[4];
	FdEntry fd[4];
	PipeEntry pipe;
	TimerfdEntry tfd;
	ProtobufCMessage *files[] = { &f[0].base, &f[1].base, &f[2].base, &f[3].base };
	ProtobufCMessage *fds[] = { &fd[0].base, &fd[1].base, &fd[2].base, &fd[3].base };
	static const FileKind kinds[] = { FILE_KIND__FILE_REG, FILE_KIND__FILE_CHR, FILE_KIND__FILE_PIPE,
					  FILE_KIND__FILE_TIMERFD };
	static char *paths[] = { "/usr/bin/worker", "/dev/null", "pipe:[1234]", "anon_inode:[timerfd]" };

	pipe_entry__init(&pipe);
	timerfd_entry__init(&tfd);
	for (int i = 0; i < 4; i++) {
		file_entry__init(&f[i]);
		f[i].id = (uint32_t)i + 1;
		f[i].kind = kinds[i];
		f[i].path = paths[i];
		f[i].flags = i == 0 ? 0 : 02;
		f[i].pos = (uint64_t)i * 100;
		fd_entry__init(&fd[i]);
		fd[i].fd = (uint32_t)i * 3;
		fd[i].file_id = (uint32_t)i + 1;
		fd[i].cloexec = i & 1;
	}
	f[0].has_size = f[0].has_mtime_ns = f[0].has_mode = true;
	f[0].size = 92088;
	f[0].mode = 0100755;
	f[1].has_rdev = true;
	f[1].rdev = 0x103;
	f[2].pipe = &pipe;
	f[3].timerfd = &tfd;
	write_image("files.img", CR_IMG_FILES, files, 4);
	write_image("fdinfo.img", CR_IMG_FDINFO, fds, 4);
}

static void seed_ns(void)
{
	NsEntry e[3];
	UtsNs uts;
	IpcNs ipc;
	IpcSysctl limit, *limits[] = { &limit };
	SysvPerm perm[2];
	SysvShm shm, *shms[] = { &shm };
	SysvMsg msg, *msgs_[] = { &msg };
	SysvMsq msq, *msqs[] = { &msq };
	SysvPerm sem_perm;
	SysvSem sem, *sems[] = { &sem };
	uint32_t values[] = { 1, 0, 32767 };
	PosixMqMsg mq_msg, *mq_msgs[] = { &mq_msg };
	PosixMq mq, *mqs[] = { &mq };
	TimeNs time;
	ProtobufCMessage *msgs[] = { &e[0].base, &e[1].base, &e[2].base };

	uts_ns__init(&uts);
	uts.hostname = "sandbox";
	uts.domainname = "(none)";
	ipc_ns__init(&ipc);
	ipc_sysctl__init(&limit);
	limit.name = "kernel/sem";
	limit.value = "32000\t1024000000\t500\t32000";
	for (int i = 0; i < 2; i++) {
		sysv_perm__init(&perm[i]);
		perm[i].key = 0x1234 + i;
		perm[i].id = 65541 + i;
		perm[i].mode = 0640;
		perm[i].uid = 1000;
	}
	sysv_shm__init(&shm);
	shm.perm = &perm[0];
	shm.size = 8192;
	shm.contents.data = (uint8_t *)"segment";
	shm.contents.len = 7;
	sysv_msg__init(&msg);
	msg.type = 7;
	msg.text.data = (uint8_t *)"message";
	msg.text.len = 7;
	sysv_msq__init(&msq);
	msq.perm = &perm[1];
	msq.qbytes = 16384;
	msq.n_messages = 1;
	msq.messages = msgs_;
	ipc.n_sysctls = 1;
	ipc.sysctls = limits;
	ipc.n_shm = 1;
	ipc.shm = shms;
	ipc.n_msq = 1;
	ipc.msq = msqs;
	sysv_perm__init(&sem_perm);
	sem_perm.key = 0x4321;
	sem_perm.id = 131075;
	sem_perm.mode = 0660;
	sysv_sem__init(&sem);
	sem.perm = &sem_perm;
	sem.n_values = 3;
	sem.values = values;
	ipc.n_sem = 1;
	ipc.sem = sems;
	posix_mq_msg__init(&mq_msg);
	mq_msg.prio = 4;
	mq_msg.text.data = (uint8_t *)"posix";
	mq_msg.text.len = 5;
	posix_mq__init(&mq);
	mq.name = "queue";
	mq.mode = 0600;
	mq.maxmsg = 10;
	mq.msgsize = 64;
	mq.n_messages = 1;
	mq.messages = mq_msgs;
	ipc.n_mq = 1;
	ipc.mq = mqs;
	time_ns__init(&time);
	time.monotonic_sec = 1000;
	time.boottime_sec = -3;
	time.boottime_nsec = 500000000;
	time.dump_monotonic_ns = 6000000000000ULL;
	time.dump_boottime_ns = 6100000000000ULL;
	time.boot_id = "0b44750c-ae3a-4e1e-a06c-ffbf881c1f8e";
	for (int i = 0; i < 3; i++) {
		ns_entry__init(&e[i]);
		e[i].id = (uint32_t)i + 1;
		e[i].kind = (NsKind)(i + 1);
		e[i].inode = 4026532170u + (uint32_t)i;
	}
	e[0].uts = &uts;
	e[1].ipc = &ipc;
	e[2].time = &time;
	write_image("ns.img", CR_IMG_NS, msgs, 3);
}

/* n pages of kind (pages, shmem-pages): with a repeated pattern they
 * compress, with noise they do not. */
static void seed_pages(const char *name, uint32_t kind, size_t n, bool compress, bool noise)
{
	struct cr_pages_writer *w = NULL;
	unsigned char *buf = malloc(n * PAGE_SIZE_CR);
	uint32_t x = 2463534242u;
	cr_error_t err = NULL;

	if (buf == NULL)
		exit(1);
	for (size_t i = 0; i < n * PAGE_SIZE_CR; i++) {
		x ^= x << 13;
		x ^= x >> 17;
		x ^= x << 5;
		buf[i] = noise ? (unsigned char)x : (unsigned char)(i % 251);
	}
	unlinkat(out_dir, name, 0);
	if (cr_pages_writer_open_as(out_dir, name, kind, compress, &w, &err) < 0 ||
	    cr_pages_write(w, buf, n * PAGE_SIZE_CR, &err) < 0 || cr_pages_writer_finish(w, &err) < 0)
		die(&err);
	free(buf);
}

/* Copies name from dir into the seeds as prefix-name, if it is small. */
static void copy_small(int dir, const char *prefix, const char *name)
{
	char *data = NULL, out[512];
	size_t len = 0;
	cr_error_t err = NULL;
	struct stat st;
	int fd;

	if (fstatat(dir, name, &st, 0) < 0 || !S_ISREG(st.st_mode) || st.st_size > (off_t)MAX_COPY)
		return;
	if (read_whole_file_at(dir, name, &data, &len, &err) < 0)
		die(&err);
	snprintf(out, sizeof(out), "%s-%s", prefix, name);
	fd = openat(out_dir, out, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0 || write_all(fd, data, len, &err) < 0)
		die(&err);
	close(fd);
	free(data);
}

static void copy_dump(const char *path, int index)
{
	int dir = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	DIR *d = dir >= 0 ? fdopendir(dir) : NULL;
	struct dirent *de;
	char prefix[32];

	if (d == NULL) {
		fprintf(stderr, "gen_seeds: cannot read %s\n", path);
		exit(1);
	}
	snprintf(prefix, sizeof(prefix), "dump%d", index);
	while ((de = readdir(d)) != NULL)
		if (strstr(de->d_name, ".img") != NULL)
			copy_small(dir, prefix, de->d_name);
	closedir(d);
}

int main(int argc, char **argv)
{
	cr_error_t err = NULL;

	if (argc < 2) {
		fprintf(stderr, "usage: gen_seeds DIR [DUMP_DIR...]\n");
		return 2;
	}
	mkdir(argv[1], 0700);
	out_dir = open(argv[1], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (out_dir < 0) {
		perror(argv[1]);
		return 1;
	}
	if (img_dir_bind_id(out_dir, &seed_id, &err) < 0)
		die(&err);
	seed_inventory();
	seed_pstree();
	seed_core();
	seed_mm();
	seed_pagemap();
	seed_files();
	seed_ns();
	seed_pages("pages-raw.img", CR_IMG_PAGES, 3, false, true);
	seed_pages("pages-zlib.img", CR_IMG_PAGES, 260, true, false);
	seed_pages("pages-mixed.img", CR_IMG_PAGES, 2, true, false);
	seed_pages("shmem-pages.img", CR_IMG_SHMEM_PAGES, 2, true, false);
	for (int i = 2; i < argc; i++)
		copy_dump(argv[i], i - 1);
	close(out_dir);
	return 0;
}
