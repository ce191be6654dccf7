/* Parsers for /proc files.  Each parser takes the text of the file (so it is
 * testable on recorded fixtures) and a wrapper reads the live file. */
#ifndef CR_PROC_H
#define CR_PROC_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "os/error.h"

#define PROC_MAX_NS_LEVELS 33   /* MAX_PID_NS_LEVEL + 1 */
#define PROC_MAX_GROUPS    65536

/* /proc/PID/status (and /proc/PID/task/TID/status) */
struct proc_status {
	char name[64];
	char state;               /* R, S, D, T, t, Z, X, ... */
	uint32_t umask;
	pid_t tgid, pid, ppid, tracer_pid;
	int n_levels;             /* entries in the ns_* arrays */
	pid_t ns_tgid[PROC_MAX_NS_LEVELS];
	pid_t ns_pid[PROC_MAX_NS_LEVELS];
	pid_t ns_pgid[PROC_MAX_NS_LEVELS];
	pid_t ns_sid[PROC_MAX_NS_LEVELS];
	uint32_t uid[4], gid[4];  /* real, effective, saved, fs */
	int n_groups;
	uint32_t *groups;         /* malloc'd, n_groups entries; free with proc_status_free */
	int threads;
	uint64_t sig_pnd, shd_pnd, sig_blk, sig_ign, sig_cgt;
	uint64_t cap_inh, cap_prm, cap_eff, cap_bnd, cap_amb;
	int seccomp;              /* 0 disabled, 1 strict, 2 filter */
	int no_new_privs;
	char spec_store_bypass[32];    /* Speculation_Store_Bypass ("" where absent) */
	char spec_indirect_branch[32]; /* SpeculationIndirectBranch ("" where absent) */
};
int proc_parse_status(const char *text, struct proc_status *out, cr_error_t *err);
/* pid 0: the caller itself (through /proc/self, right in any pid namespace). */
int proc_read_status(pid_t pid, pid_t tid /* 0: the process */, struct proc_status *out, cr_error_t *err);
void proc_status_free(struct proc_status *st);

/* /proc/PID/FILE (pid 0: the caller's) as text into *text (to free): 0;
 * 1 when this kernel has no such file (the caller's own is missing: a
 * feature built out); -1 on an error naming the path. */
int proc_read_file(pid_t pid, const char *file, char **text, cr_error_t *err);
/* The speculation mitigation the task chose for itself
 * (PR_SET_SPECULATION_CTRL: "store bypass: thread mitigated", ...), or
 * NULL where it has the system's default or the system decides. */
const char *proc_status_spec_chosen(const struct proc_status *st, char *buf, size_t size);

/* pid's namespace of type ("pid", "net", ...) is the caller's own. */
bool proc_shares_ns(pid_t pid, const char *type);

/* /proc/PID/stat: the fields cr needs (man 5 proc numbering in comments) */
struct proc_stat {
	pid_t pid;                 /* 1 */
	char comm[64];             /* 2, without the parentheses; may hold spaces and ')' */
	char state;                /* 3 */
	pid_t ppid, pgrp, session; /* 4, 5, 6 */
	int tty_nr;                /* 7 */
	int tpgid;                 /* 8: the terminal's foreground group, -1 if none */
	uint32_t flags;            /* 9 */
	int64_t priority, nice;    /* 18, 19 */
	int64_t num_threads;       /* 20 */
	uint64_t start_time;       /* 22 */
	uint64_t start_code, end_code, start_stack;           /* 26, 27, 28 */
	uint32_t exit_signal;      /* 38 */
	uint32_t rt_priority, policy;                          /* 40, 41 */
	uint64_t start_data, end_data, start_brk;              /* 45, 46, 47 */
	uint64_t arg_start, arg_end, env_start, env_end;       /* 48, 49, 50, 51 */
	int exit_code;             /* 52 */
};
int proc_parse_stat(const char *text, struct proc_stat *out, cr_error_t *err);
int proc_read_stat(pid_t pid, struct proc_stat *out, cr_error_t *err);
/* /proc/PID/task/TID/stat: a thread's own (flags, state). */
int proc_read_task_stat(pid_t pid, pid_t tid, struct proc_stat *out, cr_error_t *err);
/* Whether the task flags say PR_SET_IO_FLUSHER (which PR_GET_IO_FLUSHER
 * tells only a caller with CAP_SYS_RESOURCE; the flags tell anyone). */
bool proc_stat_io_flusher(const struct proc_stat *st);

/* /proc/PID/maps */
enum proc_vma_special {
	VMA_SPECIAL_NONE = 0,
	VMA_SPECIAL_HEAP,
	VMA_SPECIAL_STACK,
	VMA_SPECIAL_VDSO,
	VMA_SPECIAL_VVAR,
	VMA_SPECIAL_VVAR_VCLOCK,
	VMA_SPECIAL_VSYSCALL,
	VMA_SPECIAL_OTHER,        /* any other "[...]" name, e.g. [uprobes] */
};
/* The VmFlags mnemonics of /proc/PID/smaps that cr knows (the kernel's
 * fs/proc/task_mmu.c, show_smap_vma_flags), as bit numbers of
 * proc_vma.vmflags. */
enum proc_vmflag {
	PROC_VMF_RD, PROC_VMF_WR, PROC_VMF_EX, PROC_VMF_SH,    /* rd wr ex sh */
	PROC_VMF_MR, PROC_VMF_MW, PROC_VMF_ME, PROC_VMF_MS,    /* mr mw me ms: may read, write, exec, share */
	PROC_VMF_GD, PROC_VMF_PF, PROC_VMF_LO, PROC_VMF_IO,    /* gd growsdown, pf pfnmap, lo locked, io */
	PROC_VMF_SR, PROC_VMF_RR, PROC_VMF_DC, PROC_VMF_DE,    /* sr seq read, rr rand read, dc dontcopy, de dontexpand */
	PROC_VMF_LF, PROC_VMF_AC, PROC_VMF_NR, PROC_VMF_HT,    /* lf lock on fault, ac account, nr noreserve, ht hugetlb */
	PROC_VMF_SF, PROC_VMF_AR, PROC_VMF_WF, PROC_VMF_DD,    /* sf sync, ar arch (x86: PAT), wf wipeonfork, dd dontdump */
	PROC_VMF_BT, PROC_VMF_SD, PROC_VMF_MM, PROC_VMF_HG,    /* bt arm64 BTI, sd soft-dirty, mm mixedmap, hg hugepage */
	PROC_VMF_NH, PROC_VMF_MG, PROC_VMF_UM, PROC_VMF_UW,    /* nh nohugepage, mg mergeable, um/uw userfaultfd */
	PROC_VMF_MT, PROC_VMF_UI, PROC_VMF_SS, PROC_VMF_DP,    /* mt arm64 MTE, ui userfaultfd minor, ss shadow stack, dp droppable */
	PROC_VMF_SL, PROC_VMF_GU,                              /* sl sealed, gu guard regions (maybe) */
	PROC_VMF_N
};
#define PROC_VMF(name) (UINT64_C(1) << PROC_VMF_##name)

/* The mnemonic of a flag ("lo"), or "?" for a number that is none. */
const char *proc_vmflag_name(unsigned flag);

struct proc_vma {
	uint64_t start, end;
	uint32_t prot;            /* PROT_READ | PROT_WRITE | PROT_EXEC */
	bool shared;              /* 's' in the perms column */
	uint64_t pgoff;           /* bytes */
	uint32_t dev_major, dev_minor;
	uint64_t ino;
	enum proc_vma_special special;
	bool deleted;             /* path ended in " (deleted)" (which is stripped) */
	char *path;               /* malloc'd; NULL for anonymous; "[heap]" etc. for special */
	/* smaps only: */
	uint64_t vmflags;         /* PROC_VMF() bits */
	char vmflag_unknown[8];   /* the first mnemonic cr does not know ("??" too), or "" */
	uint32_t pkey;            /* ProtectionKey, 0 where the line is absent */
	uint32_t page_kb;         /* KernelPageSize (kB): a hugetlb mapping's huge page size; 0 if absent */
};
struct proc_vma_list {
	struct proc_vma *v;
	size_t n;
};
int proc_parse_maps(const char *text, struct proc_vma_list *out, cr_error_t *err);
/* pid 0: the caller's own, through /proc/self (which, unlike getpid(),
 * names the caller in whatever pid namespace /proc belongs to). */
int proc_read_maps(pid_t pid, struct proc_vma_list *out, cr_error_t *err);
void proc_vma_list_free(struct proc_vma_list *l);

/* /proc/PID/smaps: the mappings of maps, each with its VmFlags line (which
 * every mapping must have) and ProtectionKey (where the CPU has keys); the
 * other lines are skipped. */
int proc_parse_smaps(const char *text, struct proc_vma_list *out, cr_error_t *err);
int proc_read_smaps(pid_t pid, struct proc_vma_list *out, cr_error_t *err);

/* /proc/PID/fdinfo/FD: the common fields (kind-specific lines are parsed
 * by the file kinds that need them, from the same text). */
struct proc_fdinfo {
	uint64_t pos;
	uint32_t flags;           /* octal in the file */
	int mnt_id;
	uint64_t ino;
};
int proc_parse_fdinfo(const char *text, struct proc_fdinfo *out, cr_error_t *err);
int proc_read_fdinfo(pid_t pid, int fd, struct proc_fdinfo *out, char **text /* may be NULL */,
		     cr_error_t *err);
/* The same through dirfd, /proc/PID/fdinfo opened once for many fds. */
int proc_read_fdinfo_at(int dirfd, pid_t pid, int fd, struct proc_fdinfo *out, char **text /* may be NULL */,
			cr_error_t *err);

/* Fields of an fdinfo text that the file kinds read, one per line as
 * "key:<blanks>value" (eventfd-count, sigmask, clockid, Pid, ...). */
/* The value of the first line that starts with "key:", blanks skipped;
 * NULL if no line does. */
const char *proc_fdinfo_field(const char *text, const char *key);
/* That value as an unsigned number in base (8, 10 or 16); -1 when no line
 * has the key or its value is not a number. */
int proc_fdinfo_u64(const char *text, const char *key, int base, uint64_t *out);
/* For keys that repeat (epoll's "tfd", inotify's "inotify wd"): the line
 * after `after` (NULL: from the start) that starts with "key:"; NULL when
 * there is no more. */
const char *proc_fdinfo_next(const char *text, const char *key, const char *after);
/* How many lines start with "key:". */
size_t proc_fdinfo_count(const char *text, const char *key);

/* File locks, as the kernel prints each one in /proc/locks and in the
 * "lock:" lines of /proc/PID/fdinfo/FD (fs/locks.c, lock_get_status):
 *   "4: POSIX  ADVISORY  WRITE 1234 fe:00:10953091 20 24"
 *   "4: -> POSIX  ADVISORY  WRITE 1240 fe:00:10953091 20 24"  (waiting)
 *   "2: OFDLCK ADVISORY  READ -1 fe:00:10953107 200 EOF"
 *   "6: FLOCK  ADVISORY  WRITE 1234 fe:00:10953075 0 EOF"
 *   "1: LEASE  ACTIVE    READ 1234 fe:00:10953842 0 EOF" */
enum proc_lock_class {
	PROC_LOCK_POSIX,          /* fcntl F_SETLK: owned by a process */
	PROC_LOCK_OFD,            /* fcntl F_OFD_SETLK: owned by an open file description */
	PROC_LOCK_FLOCK,          /* flock(2): owned by an open file description */
	PROC_LOCK_OTHER,          /* leases, delegations, any other: `name` says which */
};
struct proc_lock {
	enum proc_lock_class cls;
	char name[16];            /* the kernel's word for it: "POSIX", "LEASE", "DELEG", ... */
	bool waiting;             /* "->": a request blocked behind the lock listed before it */
	int type;                 /* F_RDLCK, F_WRLCK or F_UNLCK */
	pid_t pid;                /* -1 for OFD locks, 0 when the owner is not visible */
	bool has_inode;           /* false for "<none>:0" */
	uint32_t dev_major, dev_minor;
	uint64_t ino;
	int64_t start;            /* first byte */
	int64_t end;              /* last byte, -1 for "EOF" (flock and leases: 0 to EOF) */
};
/* One lock: a line of /proc/locks, or the value of an fdinfo "lock:" line. */
int proc_parse_lock(const char *line, struct proc_lock *out, cr_error_t *err);
/* Every lock of a /proc/locks text, waiters included; *out is malloc'd. */
int proc_parse_locks(const char *text, struct proc_lock **out, size_t *n, cr_error_t *err);
int proc_read_locks(struct proc_lock **out, size_t *n, cr_error_t *err);
/* Every "lock:" line of an fdinfo text; *out is malloc'd. */
int proc_parse_fdinfo_locks(const char *text, struct proc_lock **out, size_t *n, cr_error_t *err);

/* /proc/PID/limits: RLIM_INFINITY for "unlimited" */
int proc_parse_limits(const char *text, struct rlimit out[RLIM_NLIMITS], cr_error_t *err);
int proc_read_limits(pid_t pid, struct rlimit out[RLIM_NLIMITS], cr_error_t *err);

/* /proc/PID/auxv: pairs of u64 up to and including AT_NULL */
int proc_read_auxv(pid_t pid, uint64_t **out, size_t *n_words, cr_error_t *err);

/* Does a /proc link (fd, cwd, exe, ...) end with " (deleted)"?  *stem
 * (when given) gets the length of the path before it. */
bool proc_link_deleted(const char *link, size_t *stem);

/* The kernel's own unnamed memory files, as a mapping's path or an fd's
 * link shows them, with or without " (deleted)": "/dev/zero" (shared
 * anonymous memory), "/SYSV<key>" (System V shared memory),
 * "/anon_hugepage" (hugetlb), "/memfd:<name>", "/[aio]" (an aio ring).  What the file is ("System
 * V shared memory", ...), or NULL for any other path. */
const char *proc_kernel_memory_file(const char *path);

/* The threads of a process, from /proc/PID/task, sorted ascending. */
int proc_list_tasks(pid_t pid, pid_t **out, size_t *n, cr_error_t *err);
/* The open fd numbers of a process, from /proc/PID/fd, sorted ascending. */
int proc_list_fds(pid_t pid, int **out, size_t *n, cr_error_t *err);

/* The target of the symbolic link /proc/PID/NAME ("cwd", "ns/uts", ...;
 * pid 0: /proc/self) into buf. */
int proc_read_link(pid_t pid, const char *name, char *buf, size_t size, cr_error_t *err);
/* The identity of a namespace: the inode in "uts:[4026531838]", the link
 * /proc/PID/ns/NAME reads (name "uts", "pid_for_children", ...; the
 * *_for_children links name a namespace of their base type). */
int proc_parse_ns_link(const char *link, const char *name, uint64_t *ino, cr_error_t *err);
/* pid 0: cr's own. */
int proc_read_ns(pid_t pid, const char *name, uint64_t *ino, cr_error_t *err);

/* Writes value to /proc/sys/NAME (of the caller's namespaces). */
int proc_write_sysctl(const char *name, const char *value, cr_error_t *err);

/* /proc/PID/timens_offsets: the clock offsets of the time namespace PID's
 * children are born in (time_for_children). */
struct proc_timens_offsets {
	int64_t monotonic_sec, boottime_sec;
	uint32_t monotonic_nsec, boottime_nsec;
};
int proc_parse_timens_offsets(const char *text, struct proc_timens_offsets *out, cr_error_t *err);
int proc_read_timens_offsets(pid_t pid, struct proc_timens_offsets *out, cr_error_t *err);

/* /proc/sys/kernel/random/boot_id: which boot of which machine this is
 * (the origin of CLOCK_MONOTONIC and CLOCK_BOOTTIME). */
#define PROC_BOOT_ID_LEN 36
int proc_read_boot_id(char id[PROC_BOOT_ID_LEN + 1], cr_error_t *err);

/* The first fd of pid (in /proc/PID/fd order) whose open file match()
 * accepts, or -1 (none, or the process is gone). */
int proc_find_fd(pid_t pid, bool (*match)(int fd, const struct stat *st, void *arg), void *arg);

/* match() for proc_find_fd: a character device whose rdev is *(dev_t *)arg. */
bool proc_fd_is_chrdev(int fd, const struct stat *st, void *arg);

#endif
