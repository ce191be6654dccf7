/* The mm's layout fields (code, data, brk, stack, arguments, environment,
 * auxv, exe), restored in one PR_SET_MM_MAP, which needs no
 * CAP_SYS_RESOURCE. */
#include "fd/reg.h"
#include "state/files.h"
#include "state/shmem.h"
#include "state/state.h"
#include "os/regs.h"
#include "os/util.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/prctl.h>
#include <stdio.h>
#include <string.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>

static int add_exe(struct dump_ctx *ctx, struct dump_task *t, cr_error_t *err)
{
	char path[64], buf[PATH_MAX];
	struct stat st;
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/%d/exe", t->pid);
	n = readlink(path, buf, sizeof(buf) - 1);
	if (n < 0)
		return cr_error(err, errno, "readlink %s", path);
	buf[n] = '\0';
	if (proc_link_deleted(buf, NULL))
		return 0;   /* the deleted file it maps: shmem.c finds it (exe_shmem_id) */
	if (stat(path, &st) < 0)
		return cr_error(err, errno, "stat %s", path);
	t->mm->exe_file_id = files_add_mapped(ctx, t, buf, O_RDONLY, &st);
	return 0;
}

/* brk by an injected brk(0); the rest from /proc. */
static void mmlayout_ask(struct dump_ctx *ctx, struct dump_task *t)
{
	(void)ctx;
	inject_batch_add(&t->asked, "read brk", SYS_brk, 0, 0, 0, 0, 0, 0);
}

static int mmlayout_answered(struct dump_ctx *ctx, struct dump_task *t, size_t first, cr_error_t *err)
{
	MmEntry *mm = t->mm;
	const struct proc_stat *s = &t->stat;
	uint64_t *auxv = NULL;
	size_t n_auxv = 0;

	mm->start_code = s->start_code;
	mm->end_code = s->end_code;
	mm->start_data = s->start_data;
	mm->end_data = s->end_data;
	mm->start_brk = s->start_brk;
	mm->start_stack = s->start_stack;
	mm->arg_start = s->arg_start;
	mm->arg_end = s->arg_end;
	mm->env_start = s->env_start;
	mm->env_end = s->env_end;
	mm->brk = (uint64_t)inject_batch_ret(&t->asked, first);
	if (proc_read_auxv(t->pid, &auxv, &n_auxv, err) < 0)
		return -1;
	mm->auxv = arena_memdup(&ctx->arena, auxv, n_auxv * sizeof(*auxv));
	mm->n_auxv = n_auxv;
	free(auxv);
	return add_exe(ctx, t, err);
}

#define USER_ADDR_LIMIT 0x00fffffffffff000ULL

/* vm.mmap_min_addr, read once: PR_SET_MM_MAP refuses addresses below. */
static uint64_t mmap_min_addr(void)
{
	static uint64_t min;
	static bool known;
	char buf[32] = "";
	FILE *f;

	if (!known && (f = fopen("/proc/sys/vm/mmap_min_addr", "re")) != NULL) {
		if (fgets(buf, sizeof(buf), f) != NULL)
			min = strtoull(buf, NULL, 10);
		fclose(f);
	}
	known = true;
	return min;
}

static uint64_t rlimit_data(const CoreEntry *core)
{
	for (size_t i = 0; i < core->n_rlimits; i++)
		if (core->rlimits[i]->resource == RLIMIT_DATA)
			return core->rlimits[i]->cur;
	return RLIM_INFINITY;
}

/* What PR_SET_MM_MAP (kernel/sys.c, validate_prctl_map_addr) refuses:
 * an address below vm.mmap_min_addr or beyond user space, code or data
 * that ends where it starts, and a heap and data larger than the
 * process's RLIMIT_DATA. */
static int check_mm_map(const struct restore_task *t, const MmEntry *mm, cr_error_t *err)
{
	const uint64_t addrs[] = { mm->start_code, mm->end_code, mm->start_data, mm->end_data, mm->start_brk,
				   mm->brk, mm->start_stack, mm->arg_start, mm->arg_end, mm->env_start, mm->env_end };
	uint64_t limit = rlimit_data(t->core);

	for (size_t i = 0; i < ARRAY_SIZE(addrs); i++)
		if (addrs[i] < mmap_min_addr() || addrs[i] >= regs_user_limit())
			return cr_error(err, 0, "mm-%d.img: layout address %zu (0x%llx) is outside user space", t->pid,
					i, (unsigned long long)addrs[i]);
	if (mm->start_code >= mm->end_code || mm->start_data >= mm->end_data)
		return cr_error(err, 0, "mm-%d.img: empty code or data", t->pid);
	if (limit != RLIM_INFINITY && (mm->brk - mm->start_brk) + (mm->end_data - mm->start_data) > limit)
		return cr_error(err, 0, "mm-%d.img: heap and data of %llu bytes, beyond its RLIMIT_DATA %llu", t->pid,
				(unsigned long long)((mm->brk - mm->start_brk) + (mm->end_data - mm->start_data)),
				(unsigned long long)limit);
	return 0;
}

static int mmlayout_validate(const struct restore_ctx *ctx, const struct restore_task *t, cr_error_t *err)
{
	const MmEntry *mm = t->mm;
	const uint64_t pairs[][2] = {
		{ mm->start_code, mm->end_code }, { mm->start_data, mm->end_data }, { mm->start_brk, mm->brk },
		{ mm->arg_start, mm->arg_end }, { mm->env_start, mm->env_end }, { mm->start_stack, mm->start_stack },
	};

	for (size_t i = 0; i < ARRAY_SIZE(pairs); i++)
		if (pairs[i][0] > pairs[i][1] || pairs[i][1] > USER_ADDR_LIMIT)
			return cr_error(err, 0, "mm-%d.img: layout field pair %zu (0x%llx, 0x%llx) is out of order or "
					"outside user space", t->pid, i, (unsigned long long)pairs[i][0],
					(unsigned long long)pairs[i][1]);
	if (check_mm_map(t, mm, err) < 0)
		return -1;
	if (mm->n_auxv % 2 || mm->n_auxv * sizeof(uint64_t) > TRAMP_AUXV_MAX)
		return cr_error(err, 0, "mm-%d.img: auxv of %zu words is malformed", t->pid, mm->n_auxv);
	if (mm->exe_file_id && restore_file(ctx, mm->exe_file_id) == NULL)
		return cr_error(err, 0, "mm-%d.img: exe names file %u, which files.img lacks", t->pid,
				mm->exe_file_id);
	if (mm->exe_file_id && restore_file(ctx, mm->exe_file_id)->kind != FILE_KIND__FILE_REG)
		return cr_error(err, 0, "mm-%d.img: its executable is file %u, which is no regular file", t->pid,
				mm->exe_file_id);
	if (mm->exe_file_id && reg_check(ctx, restore_file(ctx, mm->exe_file_id), true, err) < 0)
		return cr_error_wrap(err, "mm-%d.img: the executable", t->pid);
	return 0;
}

/* In the child: the exe, checked unchanged, in its reserved slot. */
static int mmlayout_setup(struct restore_ctx *ctx, struct restore_task *t, cr_error_t *err)
{
	const FileEntry *exe = restore_file(ctx, t->mm->exe_file_id);

	if (exe != NULL && files_open_mapped(ctx, t, exe, t->reserved_base + RESERVED_EXE, err) < 0)
		return cr_error_wrap(err, "executable");
	if (t->mm->has_exe_shmem_id &&
	    dup3(shmem_fd(ctx, t->mm->exe_shmem_id), t->reserved_base + RESERVED_EXE, O_CLOEXEC) < 0)
		return cr_error(err, errno, "executable: the deleted file it maps");
	return 0;
}

/* Writes the layout into the trampoline and queues the PR_SET_MM_MAP, to
 * run after cr's exe is unmapped. */
static int mmlayout_apply(struct restore_ctx *ctx, struct restore_task *t, cr_error_t *err)
{
	const MmEntry *mm = t->mm;
	struct prctl_mm_map map = {
		.start_code = mm->start_code, .end_code = mm->end_code,
		.start_data = mm->start_data, .end_data = mm->end_data,
		.start_brk = mm->start_brk, .brk = mm->brk, .start_stack = mm->start_stack,
		.arg_start = mm->arg_start, .arg_end = mm->arg_end,
		.env_start = mm->env_start, .env_end = mm->env_end,
		.auxv = (__u64 *)(uintptr_t)(t->tramp + TRAMP_AUXV),
		.auxv_size = (uint32_t)(mm->n_auxv * sizeof(uint64_t)),
		.exe_fd = (uint32_t)(restore_file(ctx, mm->exe_file_id) || mm->has_exe_shmem_id ?
				     t->reserved_base + RESERVED_EXE : -1),
	};
	struct iovec local[2] = {
		{ .iov_base = &map, .iov_len = sizeof(map) },
		{ .iov_base = mm->auxv, .iov_len = map.auxv_size },
	};
	struct iovec remote[2] = {
		{ .iov_base = (void *)(uintptr_t)(t->tramp + TRAMP_MM_MAP), .iov_len = sizeof(map) },
		{ .iov_base = (void *)(uintptr_t)(t->tramp + TRAMP_AUXV), .iov_len = map.auxv_size },
	};

	if (map.auxv_size > TRAMP_AUXV_MAX)
		return cr_error(err, 0, "mm-%d.img: auxv of %u bytes is too large", t->pid, map.auxv_size);
	if (process_vm_writev(t->host_pid, local, 2, remote, 2, 0) != (ssize_t)(sizeof(map) + map.auxv_size))
		return cr_error(err, errno, "pid %d: write mm layout", t->pid);
	inject_batch_add(&t->batch, "set mm layout (PR_SET_MM_MAP)", SYS_prctl, PR_SET_MM, PR_SET_MM_MAP,
			 t->tramp + TRAMP_MM_MAP, sizeof(map), 0, 0);
	return 0;
}

const struct state_kind state_mmlayout = {
	.name = "mm layout",
	.ask = mmlayout_ask,
	.answered = mmlayout_answered,
	.validate = mmlayout_validate,
	.setup = mmlayout_setup,
	.apply = mmlayout_apply,
};
