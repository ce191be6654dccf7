/* Parsers for /proc files.
 *
 * Every parser walks its text with a bounded cursor (no sscanf, no reliance
 * on a line being NUL-terminated) and reports the first bad line as
 * "<source>: line N: <what>", where source is the file kind ("maps") for the
 * public parsers and the path ("/proc/42/maps") for the live wrappers. */
#include "os/proc.h"
#include "os/util.h"
#include "os/xalloc.h"

#include <dirent.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

_Static_assert(sizeof(pid_t) == sizeof(int), "pid_t and int lists share code");

#define STR_(x) #x
#define TO_STR(x) STR_(x)

/* ---- cursor over a piece of text ------------------------------------------ */

struct cursor {
	const char *p;
	const char *end;
};

static bool is_blank(char c)
{
	return c == ' ' || c == '\t';
}

/* Skips spaces and tabs; true when there were some. */
static bool skip_blanks(struct cursor *c)
{
	const char *start = c->p;

	while (c->p < c->end && is_blank(*c->p))
		c->p++;
	return c->p != start;
}

/* True when only blanks are left. */
static bool at_end(struct cursor *c)
{
	skip_blanks(c);
	return c->p == c->end;
}

static bool expect_char(struct cursor *c, char ch)
{
	if (c->p == c->end || *c->p != ch)
		return false;
	c->p++;
	return true;
}

/* A number must end at a blank or at the end of the piece. */
static bool at_separator(const struct cursor *c)
{
	return c->p == c->end || is_blank(*c->p);
}

static int digit_value(char ch, unsigned base)
{
	unsigned d;

	if (ch >= '0' && ch <= '9')
		d = (unsigned)(ch - '0');
	else if (ch >= 'a' && ch <= 'f')
		d = (unsigned)(ch - 'a') + 10;
	else if (ch >= 'A' && ch <= 'F')
		d = (unsigned)(ch - 'A') + 10;
	else
		return -1;
	return d < base ? (int)d : -1;
}

static bool scan_u64(struct cursor *c, unsigned base, uint64_t *out)
{
	const char *p = c->p;
	uint64_t v = 0;
	int d;

	while (p < c->end && (d = digit_value(*p, base)) >= 0) {
		if (v > (UINT64_MAX - (uint64_t)d) / base)
			return false;
		v = v * base + (uint64_t)d;
		p++;
	}
	if (p == c->p)
		return false;
	c->p = p;
	*out = v;
	return true;
}

static bool scan_s64(struct cursor *c, int64_t *out)
{
	struct cursor t = *c;
	bool neg = expect_char(&t, '-');
	uint64_t v;

	if (!scan_u64(&t, 10, &v))
		return false;
	if (v > (uint64_t)INT64_MAX + (neg ? 1 : 0))
		return false;
	*out = neg && v > 0 ? -(int64_t)(v - 1) - 1 : (int64_t)v;
	*c = t;
	return true;
}

/* ---- numbers stored by offset, for the table-driven parsers --------------- */

enum num_kind {
	NUM_PID,      /* pid_t, 0..INT_MAX */
	NUM_INT,      /* int */
	NUM_INT_BITS, /* a kernel int kept in a uint32_t (exit_signal is -1 for threads) */
	NUM_S64,
	NUM_U32,
	NUM_U32_OCT,
	NUM_U32_HEX,
	NUM_U64,
	NUM_U64_HEX,
};

static bool scan_kind(struct cursor *c, enum num_kind kind, int64_t *s, uint64_t *u)
{
	switch (kind) {
	case NUM_PID:
		return scan_s64(c, s) && *s >= 0 && *s <= INT_MAX;
	case NUM_INT:
	case NUM_INT_BITS:
		return scan_s64(c, s) && *s >= INT_MIN && *s <= INT_MAX;
	case NUM_S64:
		return scan_s64(c, s);
	case NUM_U32:
		return scan_u64(c, 10, u) && *u <= UINT32_MAX;
	case NUM_U32_OCT:
		return scan_u64(c, 8, u) && *u <= UINT32_MAX;
	case NUM_U32_HEX:
		return scan_u64(c, 16, u) && *u <= UINT32_MAX;
	case NUM_U64:
		return scan_u64(c, 10, u);
	case NUM_U64_HEX:
		return scan_u64(c, 16, u);
	}
	return false;
}

static void store_kind(char *dst, enum num_kind kind, int64_t s, uint64_t u)
{
	int i = (int)s;
	uint32_t u32 = kind == NUM_INT_BITS ? (uint32_t)i : (uint32_t)u;

	switch (kind) {
	case NUM_PID:
	case NUM_INT:
		memcpy(dst, &i, sizeof(i));
		break;
	case NUM_INT_BITS:
	case NUM_U32:
	case NUM_U32_OCT:
	case NUM_U32_HEX:
		memcpy(dst, &u32, sizeof(u32));
		break;
	case NUM_S64:
		memcpy(dst, &s, sizeof(s));
		break;
	case NUM_U64:
	case NUM_U64_HEX:
		memcpy(dst, &u, sizeof(u));
		break;
	}
}

/* Scans one number of the given kind into base + off; it must end at a blank
 * or at the end of the piece.  On failure nothing is stored or consumed. */
static bool scan_number_at(struct cursor *c, enum num_kind kind, void *base, size_t off)
{
	struct cursor t = *c;
	int64_t s = 0;
	uint64_t u = 0;

	if (!scan_kind(&t, kind, &s, &u) || !at_separator(&t))
		return false;
	store_kind((char *)base + off, kind, s, u);
	*c = t;
	return true;
}

/* ---- lines ------------------------------------------------------------------ */

struct lines {
	const char *next; /* start of the next line */
	int no;           /* number of the line last returned, from 1 */
};

static bool next_line(struct lines *it, struct cursor *line)
{
	const char *nl;

	if (*it->next == '\0')
		return false;
	nl = strchr(it->next, '\n');
	line->p = it->next;
	line->end = nl != NULL ? nl : it->next + strlen(it->next);
	it->next = nl != NULL ? nl + 1 : line->end;
	it->no++;
	return true;
}

/* Splits "Key:\tvalue" at the first ':'; false when there is none. */
static bool split_key(const struct cursor *line, struct cursor *key, struct cursor *val)
{
	const char *colon = memchr(line->p, ':', (size_t)(line->end - line->p));

	if (colon == NULL)
		return false;
	key->p = line->p;
	key->end = colon;
	val->p = colon + 1;
	val->end = line->end;
	return true;
}

static bool key_is(const struct cursor *key, const char *name)
{
	size_t len = strlen(name);

	return (size_t)(key->end - key->p) == len && memcmp(key->p, name, len) == 0;
}

static int line_error(cr_error_t *err, const char *source, int no, const char *what)
{
	return cr_error(err, 0, "%s: line %d: %s", source, no, what);
}

/* pid 0: the caller itself, through /proc/self. */
static char *proc_path(pid_t pid, const char *file)
{
	return pid ? xasprintf("/proc/%d/%s", (int)pid, file) : xasprintf("/proc/self/%s", file);
}

/* Reads /proc/PID/FILE (path made by the caller) as text. */
static int read_proc_text(const char *path, char **text, cr_error_t *err)
{
	return read_whole_file_at(AT_FDCWD, path, text, NULL, err);
}

int proc_read_file(pid_t pid, const char *file, char **text, cr_error_t *err)
{
	cleanup_free char *own = proc_path(0, file);
	cleanup_free char *path = proc_path(pid, file);

	*text = NULL;
	if (access(own, F_OK) < 0 && errno == ENOENT)
		return 1;
	return read_proc_text(path, text, err);
}

/* ---- /proc/PID/status ------------------------------------------------------- */

enum status_kind {
	ST_NAME,
	ST_STATE,
	ST_NUMBER,
	ST_NS_LIST,
	ST_IDS,
	ST_GROUPS,
	ST_TEXT,   /* the value, cut to the field's size */
};

enum ns_list { NS_TGID, NS_PID, NS_PGID, NS_SID, NS_LISTS };

struct status_field {
	const char *key;
	enum status_kind kind;
	enum num_kind num; /* ST_NUMBER */
	size_t off;        /* ST_NUMBER, ST_NS_LIST, ST_IDS, ST_TEXT */
	size_t size;       /* ST_TEXT */
	int ns;            /* ST_NS_LIST: which enum ns_list */
	bool mandatory;
};

#define ST_NUM(k, n, field, m) \
	{ .key = k, .kind = ST_NUMBER, .num = n, .off = offsetof(struct proc_status, field), \
	  .mandatory = m }
#define ST_NS(k, field, which, m) \
	{ .key = k, .kind = ST_NS_LIST, .off = offsetof(struct proc_status, field), .ns = which, \
	  .mandatory = m }

static const struct status_field status_fields[] = {
	{ .key = "Name", .kind = ST_NAME, .mandatory = true },
	{ .key = "State", .kind = ST_STATE, .mandatory = true },
	ST_NUM("Umask", NUM_U32_OCT, umask, false),
	ST_NUM("Tgid", NUM_PID, tgid, true),
	ST_NUM("Pid", NUM_PID, pid, true),
	ST_NUM("PPid", NUM_PID, ppid, false),
	ST_NUM("TracerPid", NUM_PID, tracer_pid, false),
	ST_NS("NStgid", ns_tgid, NS_TGID, false),
	ST_NS("NSpid", ns_pid, NS_PID, true),
	ST_NS("NSpgid", ns_pgid, NS_PGID, false),
	ST_NS("NSsid", ns_sid, NS_SID, false),
	{ .key = "Uid", .kind = ST_IDS, .off = offsetof(struct proc_status, uid), .mandatory = true },
	{ .key = "Gid", .kind = ST_IDS, .off = offsetof(struct proc_status, gid), .mandatory = true },
	{ .key = "Groups", .kind = ST_GROUPS },
	ST_NUM("Threads", NUM_INT, threads, false),
	ST_NUM("SigPnd", NUM_U64_HEX, sig_pnd, false),
	ST_NUM("ShdPnd", NUM_U64_HEX, shd_pnd, false),
	ST_NUM("SigBlk", NUM_U64_HEX, sig_blk, true),
	ST_NUM("SigIgn", NUM_U64_HEX, sig_ign, false),
	ST_NUM("SigCgt", NUM_U64_HEX, sig_cgt, false),
	ST_NUM("CapInh", NUM_U64_HEX, cap_inh, false),
	ST_NUM("CapPrm", NUM_U64_HEX, cap_prm, false),
	ST_NUM("CapEff", NUM_U64_HEX, cap_eff, false),
	ST_NUM("CapBnd", NUM_U64_HEX, cap_bnd, false),
	ST_NUM("CapAmb", NUM_U64_HEX, cap_amb, false),
	ST_NUM("Seccomp", NUM_INT, seccomp, false),
	ST_NUM("NoNewPrivs", NUM_INT, no_new_privs, false),
	{ .key = "Speculation_Store_Bypass", .kind = ST_TEXT, .off = offsetof(struct proc_status, spec_store_bypass),
	  .size = sizeof(((struct proc_status *)0)->spec_store_bypass) },
	{ .key = "SpeculationIndirectBranch", .kind = ST_TEXT,
	  .off = offsetof(struct proc_status, spec_indirect_branch),
	  .size = sizeof(((struct proc_status *)0)->spec_indirect_branch) },
};

_Static_assert(ARRAY_SIZE(status_fields) <= 64, "seen is a 64-bit mask");

struct status_parse {
	struct proc_status *st;
	int ns_count[NS_LISTS];
	uint64_t seen; /* bit i: status_fields[i] was there */
};

static const char *status_name(struct cursor *v, struct proc_status *st)
{
	size_t len;

	expect_char(v, '\t'); /* the kernel writes "Name:\t" */
	len = (size_t)(v->end - v->p);
	if (len > sizeof(st->name) - 1)
		len = sizeof(st->name) - 1;
	memcpy(st->name, v->p, len);
	st->name[len] = '\0';
	return NULL;
}

static const char *status_state(struct cursor *v, struct proc_status *st)
{
	if (at_end(v))
		return "empty state";
	st->state = *v->p;
	return NULL;
}

/* Reads blank-separated pids into arr[max]; *n gets the count. */
static const char *status_pid_list(struct cursor *v, pid_t *arr, int max, int *n)
{
	*n = 0;
	while (!at_end(v)) {
		if (*n == max)
			return "more than " TO_STR(PROC_MAX_NS_LEVELS) " levels";
		if (!scan_number_at(v, NUM_PID, &arr[*n], 0))
			return "bad pid";
		(*n)++;
	}
	return *n == 0 ? "empty list" : NULL;
}

static const char *status_ids(struct cursor *v, uint32_t ids[4])
{
	for (int i = 0; i < 4; i++) {
		skip_blanks(v);
		if (!scan_number_at(v, NUM_U32, &ids[i], 0))
			return "want 4 ids";
	}
	return at_end(v) ? NULL : "want 4 ids";
}

static const char *status_groups(struct cursor *v, struct proc_status *st)
{
	size_t cap = 0;

	while (!at_end(v)) {
		if (st->n_groups == PROC_MAX_GROUPS)
			return "more than " TO_STR(PROC_MAX_GROUPS) " groups";
		if ((size_t)st->n_groups == cap) {
			cap = cap == 0 ? 16 : cap * 2;
			st->groups = xreallocarray(st->groups, cap, sizeof(*st->groups));
		}
		if (!scan_number_at(v, NUM_U32, &st->groups[st->n_groups], 0))
			return "bad group id";
		st->n_groups++;
	}
	return NULL;
}

static const char *status_value(struct status_parse *sp, const struct status_field *f,
				struct cursor *v)
{
	char *base = (char *)sp->st;

	switch (f->kind) {
	case ST_NAME:
		return status_name(v, sp->st);
	case ST_STATE:
		return status_state(v, sp->st);
	case ST_NUMBER:
		skip_blanks(v);
		if (!scan_number_at(v, f->num, sp->st, f->off) || !at_end(v))
			return "bad number";
		return NULL;
	case ST_NS_LIST:
		return status_pid_list(v, (pid_t *)(base + f->off), PROC_MAX_NS_LEVELS,
				       &sp->ns_count[f->ns]);
	case ST_IDS:
		return status_ids(v, (uint32_t *)(base + f->off));
	case ST_GROUPS:
		return status_groups(v, sp->st);
	case ST_TEXT:
		skip_blanks(v);
		snprintf(base + f->off, f->size, "%.*s", (int)(v->end - v->p), v->p);
		return NULL;
	}
	return "unknown field kind";
}

static int status_line(struct status_parse *sp, const struct cursor *line, const char *source,
		       int no, cr_error_t *err)
{
	struct cursor key, val;
	const char *bad;

	if (!split_key(line, &key, &val))
		return line_error(err, source, no, "no ':'");
	for (size_t i = 0; i < ARRAY_SIZE(status_fields); i++) {
		const struct status_field *f = &status_fields[i];

		if (!key_is(&key, f->key))
			continue;
		if (sp->seen & (UINT64_C(1) << i))
			return cr_error(err, 0, "%s: line %d: duplicate %s", source, no, f->key);
		sp->seen |= UINT64_C(1) << i;
		bad = status_value(sp, f, &val);
		if (bad != NULL)
			return cr_error(err, 0, "%s: line %d: %s: %s", source, no, f->key, bad);
		return 0;
	}
	return 0;
}

static int status_check(const struct status_parse *sp, const char *source, cr_error_t *err)
{
	for (size_t i = 0; i < ARRAY_SIZE(status_fields); i++) {
		if (status_fields[i].mandatory && !(sp->seen & (UINT64_C(1) << i)))
			return cr_error(err, 0, "%s: no %s line", source, status_fields[i].key);
	}
	for (int i = 0; i < NS_LISTS; i++) {
		if (sp->ns_count[i] != 0 && sp->ns_count[i] != sp->ns_count[NS_PID])
			return cr_error(err, 0, "%s: NS lists differ in length (%d and %d levels)",
					source, sp->ns_count[i], sp->ns_count[NS_PID]);
	}
	return 0;
}

/* The per-task words of the kernel's task_seq_show and friends
 * (arch/x86/kernel/cpu/bugs.c, fs/proc/array.c): only a task's own
 * PR_SET_SPECULATION_CTRL puts a thread in these states. */
const char *proc_status_spec_chosen(const struct proc_status *st, char *buf, size_t size)
{
	static const char *const ssb[] = { "thread mitigated", "thread force mitigated" };
	static const char *const ib[] = { "conditional disabled", "conditional force disabled" };

	for (size_t i = 0; i < ARRAY_SIZE(ssb); i++)
		if (strcmp(st->spec_store_bypass, ssb[i]) == 0) {
			snprintf(buf, size, "speculative store bypass: %s", ssb[i]);
			return buf;
		}
	for (size_t i = 0; i < ARRAY_SIZE(ib); i++)
		if (strcmp(st->spec_indirect_branch, ib[i]) == 0) {
			snprintf(buf, size, "indirect branch speculation: %s", ib[i]);
			return buf;
		}
	return NULL;
}

static int parse_status(const char *text, const char *source, struct proc_status *out,
			cr_error_t *err)
{
	struct status_parse sp = { .st = out };
	struct lines it = { .next = text };
	struct cursor line;

	memset(out, 0, sizeof(*out));
	while (next_line(&it, &line)) {
		if (status_line(&sp, &line, source, it.no, err) < 0)
			goto fail;
	}
	if (status_check(&sp, source, err) < 0)
		goto fail;
	out->n_levels = sp.ns_count[NS_PID];
	return 0;
fail:
	proc_status_free(out);
	return -1;
}

int proc_parse_status(const char *text, struct proc_status *out, cr_error_t *err)
{
	return parse_status(text, "status", out, err);
}

int proc_read_status(pid_t pid, pid_t tid, struct proc_status *out, cr_error_t *err)
{
	cleanup_free char *path = tid != 0 ? xasprintf("/proc/%d/task/%d/status", (int)pid, (int)tid)
					    : proc_path(pid, "status");
	cleanup_free char *text = NULL;

	if (read_proc_text(path, &text, err) < 0)
		return -1;
	return parse_status(text, path, out, err);
}

void proc_status_free(struct proc_status *st)
{
	if (st == NULL)
		return;
	free(st->groups);
	st->groups = NULL;
	st->n_groups = 0;
}

/* ---- /proc/PID/stat --------------------------------------------------------- */

#define STAT_FIELDS 52 /* since Linux 3.5 */

struct stat_field {
	int no;
	enum num_kind num;
	size_t off;
};

#define SF(n, k, field) { n, k, offsetof(struct proc_stat, field) }

static const struct stat_field stat_fields[] = {
	SF(4, NUM_PID, ppid),           SF(5, NUM_PID, pgrp),
	SF(6, NUM_PID, session),        SF(7, NUM_INT, tty_nr),
	SF(8, NUM_INT, tpgid),
	SF(9, NUM_U32, flags),          SF(18, NUM_S64, priority),
	SF(19, NUM_S64, nice),          SF(20, NUM_S64, num_threads),
	SF(22, NUM_U64, start_time),    SF(26, NUM_U64, start_code),
	SF(27, NUM_U64, end_code),      SF(28, NUM_U64, start_stack),
	SF(38, NUM_INT_BITS, exit_signal),
	SF(40, NUM_U32, rt_priority),   SF(41, NUM_U32, policy),
	SF(45, NUM_U64, start_data),    SF(46, NUM_U64, end_data),
	SF(47, NUM_U64, start_brk),     SF(48, NUM_U64, arg_start),
	SF(49, NUM_U64, arg_end),       SF(50, NUM_U64, env_start),
	SF(51, NUM_U64, env_end),       SF(52, NUM_INT, exit_code),
};

/* Fields 1 and 2, "pid (comm)"; comm ends at the last ')'.  *rest gets the
 * fields after it, without the final newline. */
static int stat_head(const char *text, const char *source, struct proc_stat *out,
		     struct cursor *rest, cr_error_t *err)
{
	const char *open = strchr(text, '(');
	const char *close = strrchr(text, ')');
	struct cursor c = { text, open };
	size_t len;

	if (open == NULL || close == NULL || close < open)
		return cr_error(err, 0, "%s: no (comm)", source);
	if (!scan_number_at(&c, NUM_PID, out, offsetof(struct proc_stat, pid)) ||
	    !skip_blanks(&c) || c.p != open)
		return cr_error(err, 0, "%s: bad pid before (comm)", source);
	len = (size_t)(close - open - 1);
	if (len > sizeof(out->comm) - 1)
		len = sizeof(out->comm) - 1;
	memcpy(out->comm, open + 1, len);
	out->comm[len] = '\0';
	rest->p = close + 1;
	rest->end = rest->p + strlen(rest->p);
	if (rest->end > rest->p && rest->end[-1] == '\n')
		rest->end--;
	return 0;
}

/* The next blank-separated token; false at the end. */
static bool next_token(struct cursor *c, struct cursor *tok)
{
	if (at_end(c))
		return false;
	tok->p = c->p;
	while (c->p < c->end && !is_blank(*c->p))
		c->p++;
	tok->end = c->p;
	return true;
}

/* One field after comm: field 3 is the state letter, the rest are integers,
 * those in stat_fields stored, the others checked. */
static bool stat_field(struct cursor tok, int no, size_t *next, struct proc_stat *out)
{
	struct cursor t = tok;
	int64_t s;
	uint64_t u;

	if (no == 3) {
		if (tok.end - tok.p != 1)
			return false;
		out->state = *tok.p;
		return true;
	}
	if (*next < ARRAY_SIZE(stat_fields) && stat_fields[*next].no == no) {
		const struct stat_field *f = &stat_fields[(*next)++];

		return scan_number_at(&tok, f->num, out, f->off);
	}
	if (scan_s64(&tok, &s) && tok.p == tok.end)
		return true;
	return scan_u64(&t, 10, &u) && t.p == t.end;
}

static int parse_stat(const char *text, const char *source, struct proc_stat *out,
		      cr_error_t *err)
{
	struct cursor rest = { NULL, NULL }, tok;
	size_t next = 0;
	int no = 2;

	memset(out, 0, sizeof(*out));
	if (stat_head(text, source, out, &rest, err) < 0)
		return -1;
	while (next_token(&rest, &tok)) {
		if (!stat_field(tok, ++no, &next, out))
			return cr_error(err, 0, "%s: field %d: bad value '%.*s'", source, no,
					(int)(tok.end - tok.p > 32 ? 32 : tok.end - tok.p),
					tok.p);
	}
	if (no < STAT_FIELDS)
		return cr_error(err, 0, "%s: %d fields, want at least %d", source, no,
				STAT_FIELDS);
	return 0;
}

int proc_parse_stat(const char *text, struct proc_stat *out, cr_error_t *err)
{
	return parse_stat(text, "stat", out, err);
}

int proc_read_stat(pid_t pid, struct proc_stat *out, cr_error_t *err)
{
	cleanup_free char *path = proc_path(pid, "stat");
	cleanup_free char *text = NULL;

	if (read_proc_text(path, &text, err) < 0)
		return -1;
	return parse_stat(text, path, out, err);
}

int proc_read_task_stat(pid_t pid, pid_t tid, struct proc_stat *out, cr_error_t *err)
{
	cleanup_free char *path = xasprintf("/proc/%d/task/%d/stat", (int)pid, (int)tid);
	cleanup_free char *text = NULL;

	if (read_proc_text(path, &text, err) < 0)
		return -1;
	return parse_stat(text, path, out, err);
}

/* PR_SET_IO_FLUSHER sets both (include/linux/sched.h); the kernel sets
 * PF_MEMALLOC_NOIO alone only around its own allocations. */
#define PF_MEMALLOC_NOIO  0x00080000u
#define PF_LOCAL_THROTTLE 0x00100000u

bool proc_stat_io_flusher(const struct proc_stat *st)
{
	return (st->flags & (PF_MEMALLOC_NOIO | PF_LOCAL_THROTTLE)) == (PF_MEMALLOC_NOIO | PF_LOCAL_THROTTLE);
}

/* ---- /proc/PID/maps --------------------------------------------------------- */

static const struct {
	const char *name;
	enum proc_vma_special special;
} vma_specials[] = {
	{ "[heap]", VMA_SPECIAL_HEAP },
	{ "[stack]", VMA_SPECIAL_STACK },
	{ "[vdso]", VMA_SPECIAL_VDSO },
	{ "[vvar]", VMA_SPECIAL_VVAR },
	{ "[vvar_vclock]", VMA_SPECIAL_VVAR_VCLOCK },
	{ "[vsyscall]", VMA_SPECIAL_VSYSCALL },
};

static enum proc_vma_special vma_special(const char *path)
{
	size_t len = strlen(path);

	if (len < 2 || path[0] != '[' || path[len - 1] != ']')
		return VMA_SPECIAL_NONE;
	for (size_t i = 0; i < ARRAY_SIZE(vma_specials); i++) {
		if (strcmp(path, vma_specials[i].name) == 0)
			return vma_specials[i].special;
	}
	return VMA_SPECIAL_OTHER;
}

static const char *vma_perms(struct cursor *c, struct proc_vma *v)
{
	static const char want[] = "rwx";
	static const uint32_t prot[] = { PROT_READ, PROT_WRITE, PROT_EXEC };

	if (c->end - c->p < 4)
		return "bad permissions";
	for (int i = 0; i < 3; i++) {
		if (c->p[i] == want[i])
			v->prot |= prot[i];
		else if (c->p[i] != '-')
			return "bad permissions";
	}
	if (c->p[3] != 'p' && c->p[3] != 's')
		return "bad permissions";
	v->shared = c->p[3] == 's';
	c->p += 4;
	return at_separator(c) ? NULL : "bad permissions";
}

static const char deleted_suffix[] = " (deleted)";

bool proc_link_deleted(const char *link, size_t *stem)
{
	size_t len = strlen(link), n = sizeof(deleted_suffix) - 1;

	if (len <= n || strcmp(link + len - n, deleted_suffix) != 0)
		return false;
	if (stem != NULL)
		*stem = len - n;
	return true;
}

const char *proc_kernel_memory_file(const char *path)
{
	static const struct {
		const char *prefix;
		bool whole;        /* the path is the prefix, not only starts with it */
		const char *what;
	} files[] = {
		{ "/dev/zero", true, "shared anonymous memory" },
		{ "/SYSV", false, "System V shared memory (shmat)" },
		{ "/anon_hugepage", true, "hugetlb memory" },
		{ "/[aio]", true, "an aio ring (io_setup)" },
		{ "/memfd:", false, "a memfd" },
		{ "/secretmem", true, "secret memory (memfd_secret: no other process, cr included, can read it)" },
	};
	size_t len = strlen(path), stem = len;

	proc_link_deleted(path, &stem);
	for (size_t i = 0; i < ARRAY_SIZE(files); i++) {
		size_t n = strlen(files[i].prefix);

		if (stem >= n && memcmp(path, files[i].prefix, n) == 0 && (!files[i].whole || stem == n))
			return files[i].what;
	}
	return NULL;
}

static const char *vma_path(struct cursor *c, struct proc_vma *v)
{
	size_t len = (size_t)(c->end - c->p);
	size_t dlen = sizeof(deleted_suffix) - 1;

	if (len > dlen && memcmp(c->end - dlen, deleted_suffix, dlen) == 0) {
		v->deleted = true;
		len -= dlen;
	}
	v->path = xstrndup(c->p, len);
	v->special = vma_special(v->path);
	return NULL;
}

/* "start-end perms offset major:minor inode [path]" */
static const char *vma_line(struct cursor *c, struct proc_vma *v)
{
	const char *bad;
	uint64_t major;

	if (!scan_u64(c, 16, &v->start) || !expect_char(c, '-') || !scan_u64(c, 16, &v->end) ||
	    !at_separator(c) || v->start >= v->end)
		return "bad address range";
	skip_blanks(c);
	bad = vma_perms(c, v);
	if (bad != NULL)
		return bad;
	skip_blanks(c);
	if (!scan_number_at(c, NUM_U64_HEX, v, offsetof(struct proc_vma, pgoff)))
		return "bad offset";
	skip_blanks(c);
	if (!scan_u64(c, 16, &major) || major > UINT32_MAX || !expect_char(c, ':') ||
	    !scan_number_at(c, NUM_U32_HEX, v, offsetof(struct proc_vma, dev_minor)))
		return "bad device";
	v->dev_major = (uint32_t)major;
	skip_blanks(c);
	if (!scan_number_at(c, NUM_U64, v, offsetof(struct proc_vma, ino)))
		return "bad inode";
	if (at_end(c))
		return NULL;
	return vma_path(c, v);
}

static struct proc_vma *vma_push(struct proc_vma_list *l, size_t *cap)
{
	struct proc_vma *v;

	if (l->n == *cap) {
		*cap = *cap == 0 ? 64 : *cap * 2;
		l->v = xreallocarray(l->v, *cap, sizeof(*l->v));
	}
	v = &l->v[l->n++];
	memset(v, 0, sizeof(*v));
	return v;
}

static int parse_maps(const char *text, const char *source, struct proc_vma_list *out,
		      cr_error_t *err)
{
	struct lines it = { .next = text };
	struct cursor line;
	size_t cap = 0;

	out->v = NULL;
	out->n = 0;
	while (next_line(&it, &line)) {
		struct proc_vma *v = vma_push(out, &cap);
		const char *bad;

		bad = vma_line(&line, v);
		if (bad == NULL && out->n > 1 && v->start < v[-1].end)
			bad = "mapping overlaps the previous one";
		if (bad != NULL) {
			proc_vma_list_free(out);
			return line_error(err, source, it.no, bad);
		}
	}
	return 0;
}

int proc_parse_maps(const char *text, struct proc_vma_list *out, cr_error_t *err)
{
	return parse_maps(text, "maps", out, err);
}

int proc_read_maps(pid_t pid, struct proc_vma_list *out, cr_error_t *err)
{
	cleanup_free char *path = proc_path(pid, "maps");
	cleanup_free char *text = NULL;

	if (read_proc_text(path, &text, err) < 0)
		return -1;
	return parse_maps(text, path, out, err);
}

void proc_vma_list_free(struct proc_vma_list *l)
{
	if (l == NULL)
		return;
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i].path);
	free(l->v);
	l->v = NULL;
	l->n = 0;
}

/* ---- /proc/PID/smaps -------------------------------------------------------- */

static const char vmflag_names[PROC_VMF_N][3] = {
	"rd", "wr", "ex", "sh", "mr", "mw", "me", "ms", "gd", "pf", "lo", "io", "sr", "rr", "dc", "de",
	"lf", "ac", "nr", "ht", "sf", "ar", "wf", "dd", "bt", "sd", "mm", "hg", "nh", "mg", "um", "uw",
	"mt", "ui", "ss", "dp", "sl", "gu",
};

_Static_assert(PROC_VMF_N <= 64, "vmflags is a 64-bit mask");

const char *proc_vmflag_name(unsigned flag)
{
	return flag < PROC_VMF_N ? vmflag_names[flag] : "?";
}

/* "rd wr mr mw me ": a mnemonic cr does not know is kept (the first one),
 * for the memory kind to refuse by name. */
static const char *smaps_vmflags(struct cursor *v, struct proc_vma *vma)
{
	struct cursor tok;

	while (next_token(v, &tok)) {
		size_t len = (size_t)(tok.end - tok.p);
		unsigned i;

		if (len >= sizeof(vma->vmflag_unknown))
			return "VmFlags: mnemonic too long";
		for (i = 0; i < PROC_VMF_N; i++)
			if (len == 2 && memcmp(tok.p, vmflag_names[i], 2) == 0)
				break;
		if (i < PROC_VMF_N) {
			vma->vmflags |= UINT64_C(1) << i;
		} else if (vma->vmflag_unknown[0] == '\0') {
			memcpy(vma->vmflag_unknown, tok.p, len);
			vma->vmflag_unknown[len] = '\0';
		}
	}
	return NULL;
}

struct smaps_parse {
	struct proc_vma_list *out;
	size_t cap;
	bool have_flags;   /* the current mapping had its VmFlags line */
	bool have_pkey;
};

static const char *smaps_field(struct smaps_parse *sp, const struct cursor *line)
{
	struct cursor key, val;
	struct proc_vma *v;

	if (!split_key(line, &key, &val))
		return "no ':'";
	if (sp->out->n == 0)
		return "a field before any mapping";
	v = &sp->out->v[sp->out->n - 1];
	if (key_is(&key, "VmFlags")) {
		if (sp->have_flags)
			return "duplicate VmFlags";
		sp->have_flags = true;
		return smaps_vmflags(&val, v);
	}
	if (key_is(&key, "KernelPageSize")) {   /* "N kB" */
		skip_blanks(&val);
		if (!scan_number_at(&val, NUM_U32, v, offsetof(struct proc_vma, page_kb)))
			return "KernelPageSize: bad number";
	}
	if (key_is(&key, "ProtectionKey")) {
		if (sp->have_pkey)
			return "duplicate ProtectionKey";
		sp->have_pkey = true;
		skip_blanks(&val);
		if (!scan_number_at(&val, NUM_U32, v, offsetof(struct proc_vma, pkey)) || !at_end(&val))
			return "ProtectionKey: bad number";
	}
	return NULL;
}

/* A mapping's header is a maps line; the fields after it are "Key: value"
 * lines, whose first word ends with the colon. */
static bool smaps_is_field(const struct cursor *line)
{
	const char *p = line->p;

	while (p < line->end && !is_blank(*p))
		p++;
	return p > line->p && p[-1] == ':';
}

static const char *smaps_line(struct smaps_parse *sp, struct cursor *line)
{
	struct proc_vma *v;
	const char *bad;

	if (smaps_is_field(line))
		return smaps_field(sp, line);
	if (sp->out->n > 0 && !sp->have_flags)
		return "the mapping before has no VmFlags";
	v = vma_push(sp->out, &sp->cap);
	sp->have_flags = sp->have_pkey = false;
	bad = vma_line(line, v);
	if (bad == NULL && sp->out->n > 1 && v->start < v[-1].end)
		bad = "mapping overlaps the previous one";
	return bad;
}

static int parse_smaps(const char *text, const char *source, struct proc_vma_list *out, cr_error_t *err)
{
	struct smaps_parse sp = { .out = out };
	struct lines it = { .next = text };
	struct cursor line;
	const char *bad = NULL;

	out->v = NULL;
	out->n = 0;
	while (bad == NULL && next_line(&it, &line))
		bad = smaps_line(&sp, &line);
	if (bad == NULL && out->n > 0 && !sp.have_flags) {
		bad = "the last mapping has no VmFlags";
		it.no++;
	}
	if (bad != NULL) {
		proc_vma_list_free(out);
		return line_error(err, source, it.no, bad);
	}
	return 0;
}

int proc_parse_smaps(const char *text, struct proc_vma_list *out, cr_error_t *err)
{
	return parse_smaps(text, "smaps", out, err);
}

int proc_read_smaps(pid_t pid, struct proc_vma_list *out, cr_error_t *err)
{
	cleanup_free char *path = proc_path(pid, "smaps");
	cleanup_free char *text = NULL;

	if (read_proc_text(path, &text, err) < 0)
		return -1;
	return parse_smaps(text, path, out, err);
}

/* ---- /proc/PID/fdinfo/FD ---------------------------------------------------- */

static const struct {
	const char *key;
	enum num_kind num;
	size_t off;
	bool mandatory;
} fdinfo_fields[] = {
	/* pos is a loff_t: negative offsets of some devices keep their bits */
	{ "pos", NUM_S64, offsetof(struct proc_fdinfo, pos), true },
	{ "flags", NUM_U32_OCT, offsetof(struct proc_fdinfo, flags), true },
	{ "mnt_id", NUM_INT, offsetof(struct proc_fdinfo, mnt_id), true },
	{ "ino", NUM_U64, offsetof(struct proc_fdinfo, ino), false },
};

/* Lines that are not common fields belong to the file kind and are skipped. */
static int fdinfo_line(const struct cursor *line, struct proc_fdinfo *out, unsigned *seen,
		       const char *source, int no, cr_error_t *err)
{
	struct cursor key, val;

	if (!split_key(line, &key, &val))
		return 0;
	for (size_t i = 0; i < ARRAY_SIZE(fdinfo_fields); i++) {
		if (!key_is(&key, fdinfo_fields[i].key))
			continue;
		if (*seen & (1u << i))
			return cr_error(err, 0, "%s: line %d: duplicate %s", source, no,
					fdinfo_fields[i].key);
		*seen |= 1u << i;
		skip_blanks(&val);
		if (!scan_number_at(&val, fdinfo_fields[i].num, out, fdinfo_fields[i].off) ||
		    !at_end(&val))
			return cr_error(err, 0, "%s: line %d: %s: bad number", source, no,
					fdinfo_fields[i].key);
		return 0;
	}
	return 0;
}

static int parse_fdinfo(const char *text, const char *source, struct proc_fdinfo *out,
			cr_error_t *err)
{
	struct lines it = { .next = text };
	struct cursor line;
	unsigned seen = 0;

	memset(out, 0, sizeof(*out));
	while (next_line(&it, &line)) {
		if (fdinfo_line(&line, out, &seen, source, it.no, err) < 0)
			return -1;
	}
	for (size_t i = 0; i < ARRAY_SIZE(fdinfo_fields); i++) {
		if (fdinfo_fields[i].mandatory && !(seen & (1u << i)))
			return cr_error(err, 0, "%s: no %s line", source, fdinfo_fields[i].key);
	}
	return 0;
}

int proc_parse_fdinfo(const char *text, struct proc_fdinfo *out, cr_error_t *err)
{
	return parse_fdinfo(text, "fdinfo", out, err);
}

int proc_read_fdinfo_at(int dirfd, pid_t pid, int fd, struct proc_fdinfo *out, char **text, cr_error_t *err)
{
	char name[16], path[64];
	cleanup_free char *buf = NULL;

	snprintf(name, sizeof(name), "%d", fd);
	snprintf(path, sizeof(path), "/proc/%d/fdinfo/%d", (int)pid, fd);
	if (read_whole_file_at(dirfd, name, &buf, NULL, err) < 0)
		return cr_error_wrap(err, "%s", path);
	if (parse_fdinfo(buf, path, out, err) < 0)
		return -1;
	if (text != NULL)
		*text = steal_pointer(&buf);
	return 0;
}

int proc_read_fdinfo(pid_t pid, int fd, struct proc_fdinfo *out, char **text, cr_error_t *err)
{
	cleanup_free char *path = xasprintf("/proc/%d/fdinfo/%d", (int)pid, fd);
	cleanup_free char *buf = NULL;

	if (read_proc_text(path, &buf, err) < 0)
		return -1;
	if (parse_fdinfo(buf, path, out, err) < 0)
		return -1;
	if (text != NULL)
		*text = steal_pointer(&buf);
	return 0;
}

static bool line_has_key(const char *line, const char *key)
{
	size_t len = strlen(key);

	return strncmp(line, key, len) == 0 && line[len] == ':';
}

const char *proc_fdinfo_next(const char *text, const char *key, const char *after)
{
	const char *l = after ? strchr(after, '\n') : text;

	if (after != NULL && l != NULL)
		l++;
	for (; l != NULL && *l != '\0'; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL)
		if (line_has_key(l, key))
			return l;
	return NULL;
}

size_t proc_fdinfo_count(const char *text, const char *key)
{
	size_t n = 0;

	for (const char *l = proc_fdinfo_next(text, key, NULL); l != NULL; l = proc_fdinfo_next(text, key, l))
		n++;
	return n;
}

const char *proc_fdinfo_field(const char *text, const char *key)
{
	const char *l = proc_fdinfo_next(text, key, NULL);

	if (l == NULL)
		return NULL;
	l += strlen(key) + 1;
	while (*l == ' ' || *l == '\t')
		l++;
	return l;
}

int proc_fdinfo_u64(const char *text, const char *key, int base, uint64_t *out)
{
	const char *v = proc_fdinfo_field(text, key);
	char *end;

	if (v == NULL || !isxdigit((unsigned char)*v))
		return -1;
	errno = 0;
	*out = strtoull(v, &end, base);
	if (errno != 0 || end == v)
		return -1;
	return 0;
}

/* ---- file locks: /proc/locks and fdinfo "lock:" lines ------------------------ */

/* POSIX, OFDLCK and FLOCK; any other word in capitals (LEASE, DELEG,
 * ACCESS, ..., or one a later kernel adds) is a lock of another kind,
 * named by that word, for the caller to judge. */
static const char *lock_class(const struct cursor *w, struct proc_lock *l)
{
	size_t len = (size_t)(w->end - w->p);

	if (len == 0 || len >= sizeof(l->name))
		return "unknown kind of lock";
	for (size_t i = 0; i < len; i++)
		if (w->p[i] < 'A' || w->p[i] > 'Z')
			return "unknown kind of lock";
	memcpy(l->name, w->p, len);
	l->name[len] = '\0';
	l->cls = key_is(w, "POSIX") ? PROC_LOCK_POSIX : key_is(w, "OFDLCK") ? PROC_LOCK_OFD :
		 key_is(w, "FLOCK") ? PROC_LOCK_FLOCK : PROC_LOCK_OTHER;
	return NULL;
}

static const char *lock_type(const struct cursor *w, struct proc_lock *l)
{
	if (key_is(w, "WRITE"))
		l->type = F_WRLCK;
	else if (key_is(w, "READ"))
		l->type = F_RDLCK;
	else if (key_is(w, "UNLCK"))
		l->type = F_UNLCK;
	else
		return "bad lock type";
	return NULL;
}

/* "fe:00:10953091" (major and minor in hex, inode in decimal) or "<none>:0". */
static const char *lock_inode(struct cursor *c, struct proc_lock *l)
{
	static const char none[] = "<none>:0";
	uint64_t major, minor;

	skip_blanks(c);
	if ((size_t)(c->end - c->p) >= sizeof(none) - 1 && memcmp(c->p, none, sizeof(none) - 1) == 0) {
		c->p += sizeof(none) - 1;
		return at_separator(c) ? NULL : "bad inode";
	}
	if (!scan_u64(c, 16, &major) || major > UINT32_MAX || !expect_char(c, ':') || !scan_u64(c, 16, &minor) ||
	    minor > UINT32_MAX || !expect_char(c, ':') ||
	    !scan_number_at(c, NUM_U64, l, offsetof(struct proc_lock, ino)))
		return "bad inode";
	l->has_inode = true;
	l->dev_major = (uint32_t)major;
	l->dev_minor = (uint32_t)minor;
	return NULL;
}

static const char *lock_range(struct cursor *c, struct proc_lock *l)
{
	static const char eof[] = "EOF";

	skip_blanks(c);
	if (!scan_number_at(c, NUM_S64, l, offsetof(struct proc_lock, start)) || l->start < 0)
		return "bad start of range";
	skip_blanks(c);
	if ((size_t)(c->end - c->p) >= sizeof(eof) - 1 && memcmp(c->p, eof, sizeof(eof) - 1) == 0) {
		c->p += sizeof(eof) - 1;
		l->end = -1;
	} else if (!scan_number_at(c, NUM_S64, l, offsetof(struct proc_lock, end)) || l->end < l->start) {
		return "bad end of range";
	}
	return at_end(c) ? NULL : "junk after the range";
}

/* "N: [->] CLASS WORD TYPE PID DEV:INO START END" */
static const char *lock_line(struct cursor *c, struct proc_lock *l)
{
	struct cursor w;
	uint64_t id;
	const char *bad;

	memset(l, 0, sizeof(*l));
	skip_blanks(c);
	if (!scan_u64(c, 10, &id) || !expect_char(c, ':'))
		return "bad lock number";
	if (!next_token(c, &w))
		return "no kind of lock";
	if (key_is(&w, "->")) {
		l->waiting = true;
		if (!next_token(c, &w))
			return "no kind of lock";
	}
	if ((bad = lock_class(&w, l)) != NULL)
		return bad;
	if (!next_token(c, &w))   /* ADVISORY, ACTIVE, BREAKING, *NOINODE*, ... */
		return "no lock state";
	if (!next_token(c, &w))
		return "no lock type";
	if ((bad = lock_type(&w, l)) != NULL)
		return bad;
	skip_blanks(c);
	if (!scan_number_at(c, NUM_INT, l, offsetof(struct proc_lock, pid)) || l->pid < -1)
		return "bad pid";
	if ((bad = lock_inode(c, l)) != NULL)
		return bad;
	return lock_range(c, l);
}

int proc_parse_lock(const char *line, struct proc_lock *out, cr_error_t *err)
{
	const char *nl = strchr(line, '\n');
	struct cursor c = { line, nl != NULL ? nl : line + strlen(line) };
	const char *bad = lock_line(&c, out);

	if (bad != NULL)
		return cr_error(err, 0, "lock '%.*s': %s", (int)(c.end - line), line, bad);
	return 0;
}

static struct proc_lock *lock_push(struct proc_lock **v, size_t *n, size_t *cap)
{
	if (*n == *cap) {
		*cap = *cap == 0 ? 16 : *cap * 2;
		*v = xreallocarray(*v, *cap, sizeof(**v));
	}
	return &(*v)[(*n)++];
}

static int parse_locks(const char *text, const char *source, struct proc_lock **out, size_t *n,
		       cr_error_t *err)
{
	struct lines it = { .next = text };
	struct cursor line;
	cleanup_free struct proc_lock *v = NULL;
	size_t count = 0, cap = 0;

	while (next_line(&it, &line)) {
		const char *bad = lock_line(&line, lock_push(&v, &count, &cap));

		if (bad != NULL)
			return line_error(err, source, it.no, bad);
	}
	*out = steal_pointer(&v);
	*n = count;
	return 0;
}

int proc_parse_locks(const char *text, struct proc_lock **out, size_t *n, cr_error_t *err)
{
	return parse_locks(text, "locks", out, n, err);
}

int proc_read_locks(struct proc_lock **out, size_t *n, cr_error_t *err)
{
	cleanup_free char *text = NULL;

	if (read_proc_text("/proc/locks", &text, err) < 0)
		return -1;
	return parse_locks(text, "/proc/locks", out, n, err);
}

int proc_parse_fdinfo_locks(const char *text, struct proc_lock **out, size_t *n, cr_error_t *err)
{
	cleanup_free struct proc_lock *v = NULL;
	size_t count = 0, cap = 0;

	for (const char *l = proc_fdinfo_next(text, "lock", NULL); l != NULL; l = proc_fdinfo_next(text, "lock", l)) {
		struct cursor c = { l + strlen("lock:"), strchr(l, '\n') ? strchr(l, '\n') : l + strlen(l) };
		const char *bad = lock_line(&c, lock_push(&v, &count, &cap));

		if (bad != NULL)
			return cr_error(err, 0, "fdinfo: lock line %zu: %s", count, bad);
	}
	*out = steal_pointer(&v);
	*n = count;
	return 0;
}

/* ---- /proc/PID/limits ------------------------------------------------------- */

static const struct {
	const char *name;
	int resource;
} limit_rows[] = {
	{ "Max cpu time", RLIMIT_CPU },
	{ "Max file size", RLIMIT_FSIZE },
	{ "Max data size", RLIMIT_DATA },
	{ "Max stack size", RLIMIT_STACK },
	{ "Max core file size", RLIMIT_CORE },
	{ "Max resident set", RLIMIT_RSS },
	{ "Max processes", RLIMIT_NPROC },
	{ "Max open files", RLIMIT_NOFILE },
	{ "Max locked memory", RLIMIT_MEMLOCK },
	{ "Max address space", RLIMIT_AS },
	{ "Max file locks", RLIMIT_LOCKS },
	{ "Max pending signals", RLIMIT_SIGPENDING },
	{ "Max msgqueue size", RLIMIT_MSGQUEUE },
	{ "Max nice priority", RLIMIT_NICE },
	{ "Max realtime priority", RLIMIT_RTPRIO },
	{ "Max realtime timeout", RLIMIT_RTTIME },
};

_Static_assert(ARRAY_SIZE(limit_rows) == RLIM_NLIMITS, "one row per limit");

/* The row whose name starts the line (followed by a blank), or -1. */
static int limit_row(struct cursor *c)
{
	for (size_t i = 0; i < ARRAY_SIZE(limit_rows); i++) {
		size_t len = strlen(limit_rows[i].name);

		if ((size_t)(c->end - c->p) > len && memcmp(c->p, limit_rows[i].name, len) == 0 &&
		    is_blank(c->p[len])) {
			c->p += len;
			return (int)i;
		}
	}
	return -1;
}

static bool limit_value(struct cursor *c, rlim_t *out)
{
	static const char unlimited[] = "unlimited";
	size_t len = sizeof(unlimited) - 1;
	uint64_t v;

	skip_blanks(c);
	if ((size_t)(c->end - c->p) >= len && memcmp(c->p, unlimited, len) == 0) {
		c->p += len;
		*out = RLIM_INFINITY;
		return at_separator(c);
	}
	if (!scan_u64(c, 10, &v) || !at_separator(c))
		return false;
	*out = (rlim_t)v;
	return true;
}

static int limits_line(struct cursor *line, struct rlimit out[RLIM_NLIMITS], unsigned *seen,
		       const char *source, int no, cr_error_t *err)
{
	int row = limit_row(line);
	struct rlimit *rl;

	if (row < 0)
		return line_error(err, source, no, "unknown limit");
	if (*seen & (1u << row))
		return cr_error(err, 0, "%s: line %d: duplicate %s", source, no,
				limit_rows[row].name);
	*seen |= 1u << row;
	rl = &out[limit_rows[row].resource];
	if (!limit_value(line, &rl->rlim_cur) || !limit_value(line, &rl->rlim_max))
		return cr_error(err, 0, "%s: line %d: %s: bad value", source, no,
				limit_rows[row].name);
	return 0;
}

static int parse_limits(const char *text, const char *source, struct rlimit out[RLIM_NLIMITS],
			cr_error_t *err)
{
	struct lines it = { .next = text };
	struct cursor line;
	unsigned seen = 0;

	memset(out, 0, sizeof(*out) * RLIM_NLIMITS);
	if (!next_line(&it, &line) || (size_t)(line.end - line.p) < 6 ||
	    memcmp(line.p, "Limit ", 6) != 0)
		return line_error(err, source, 1, "no header");
	while (next_line(&it, &line)) {
		if (limits_line(&line, out, &seen, source, it.no, err) < 0)
			return -1;
	}
	for (size_t i = 0; i < ARRAY_SIZE(limit_rows); i++) {
		if (!(seen & (1u << i)))
			return cr_error(err, 0, "%s: no '%s' row", source, limit_rows[i].name);
	}
	return 0;
}

int proc_parse_limits(const char *text, struct rlimit out[RLIM_NLIMITS], cr_error_t *err)
{
	return parse_limits(text, "limits", out, err);
}

int proc_read_limits(pid_t pid, struct rlimit out[RLIM_NLIMITS], cr_error_t *err)
{
	cleanup_free char *path = proc_path(pid, "limits");
	cleanup_free char *text = NULL;

	if (read_proc_text(path, &text, err) < 0)
		return -1;
	return parse_limits(text, path, out, err);
}

/* ---- /proc/PID/auxv --------------------------------------------------------- */

int proc_read_auxv(pid_t pid, uint64_t **out, size_t *n_words, cr_error_t *err)
{
	cleanup_free char *path = proc_path(pid, "auxv");
	cleanup_free char *buf = NULL;
	uint64_t *words;
	size_t len, i;

	if (read_whole_file_at(AT_FDCWD, path, &buf, &len, err) < 0)
		return -1;
	for (i = 0; i + 2 <= len / sizeof(uint64_t); i += 2) {
		uint64_t type;

		memcpy(&type, buf + i * sizeof(uint64_t), sizeof(type));
		if (type == 0)
			break;
	}
	if (i + 2 > len / sizeof(uint64_t))
		return cr_error(err, 0, "%s: no AT_NULL entry in %zu bytes", path, len);
	words = xmalloc((i + 2) * sizeof(*words));
	memcpy(words, buf, (i + 2) * sizeof(*words));
	*out = words;
	*n_words = i + 2;
	return 0;
}

/* ---- /proc/PID/task and /proc/PID/fd ---------------------------------------- */

static int cmp_int(const void *a, const void *b)
{
	int x = *(const int *)a, y = *(const int *)b;

	return (x > y) - (x < y);
}

/* The numeric entry names of a directory, sorted; ignore_fd (when >= 0) is
 * left out: it is the descriptor we read the directory with. */
static int list_numeric(DIR *d, const char *path, int ignore_fd, int **out, size_t *n,
			cr_error_t *err)
{
	cleanup_free int *arr = NULL;
	size_t cap = 0, count = 0;
	struct dirent *de;

	for (errno = 0; (de = readdir(d)) != NULL; errno = 0) {
		struct cursor c = { de->d_name, de->d_name + strlen(de->d_name) };
		int v;

		if (!scan_number_at(&c, NUM_PID, &v, 0) || c.p != c.end || v == ignore_fd)
			continue;
		if (count == cap) {
			cap = cap == 0 ? 16 : cap * 2;
			arr = xreallocarray(arr, cap, sizeof(*arr));
		}
		arr[count++] = v;
	}
	if (errno != 0)
		return cr_error(err, errno, "readdir %s", path);
	if (count > 1)
		qsort(arr, count, sizeof(*arr), cmp_int);
	*out = steal_pointer(&arr);
	*n = count;
	return 0;
}

static int list_proc_dir(pid_t pid, const char *sub, bool skip_own_fd, int **out, size_t *n,
			 cr_error_t *err)
{
	cleanup_free char *path = proc_path(pid, sub);
	cleanup_closedir DIR *d = opendir(path);

	if (d == NULL)
		return cr_error(err, errno, "open %s", path);
	return list_numeric(d, path, skip_own_fd ? dirfd(d) : -1, out, n, err);
}

int proc_list_tasks(pid_t pid, pid_t **out, size_t *n, cr_error_t *err)
{
	return list_proc_dir(pid, "task", false, out, n, err);
}

int proc_list_fds(pid_t pid, int **out, size_t *n, cr_error_t *err)
{
	return list_proc_dir(pid, "fd", pid == getpid(), out, n, err);
}

/* ---- links: /proc/PID/cwd, /proc/PID/ns/NAME, ... --------------------------- */

int proc_read_link(pid_t pid, const char *name, char *buf, size_t size, cr_error_t *err)
{
	cleanup_free char *path = proc_path(pid, name);
	ssize_t n = readlink(path, buf, size - 1);

	if (n < 0)
		return cr_error(err, errno, "readlink %s", path);
	if ((size_t)n == size - 1)
		return cr_error(err, ENAMETOOLONG, "readlink %s", path);
	buf[n] = '\0';
	return 0;
}

/* A *_for_children link names a namespace of its base type:
 * pid_for_children reads "pid:[...]". */
static size_t ns_type_len(const char *name)
{
	const char *suffix = strstr(name, "_for_children");

	return suffix != NULL ? (size_t)(suffix - name) : strlen(name);
}

int proc_parse_ns_link(const char *link, const char *name, uint64_t *ino, cr_error_t *err)
{
	size_t type = ns_type_len(name);
	struct cursor c = { link, link + strlen(link) };

	if ((size_t)(c.end - c.p) < type || memcmp(c.p, name, type) != 0)
		return cr_error(err, 0, "ns/%s: '%s' is not a %.*s namespace", name, link, (int)type, name);
	c.p += type;
	if (!expect_char(&c, ':') || !expect_char(&c, '[') || !scan_u64(&c, 10, ino) || !expect_char(&c, ']') ||
	    c.p != c.end)
		return cr_error(err, 0, "ns/%s: unexpected '%s'", name, link);
	return 0;
}

int proc_read_ns(pid_t pid, const char *name, uint64_t *ino, cr_error_t *err)
{
	char sub[64], link[128];

	snprintf(sub, sizeof(sub), "ns/%s", name);
	if (proc_read_link(pid, sub, link, sizeof(link), err) < 0)
		return -1;
	if (proc_parse_ns_link(link, name, ino, err) < 0)
		return pid ? cr_error_wrap(err, "pid %d", (int)pid) : cr_error_wrap(err, "cr");
	return 0;
}

/* ---- /proc/PID/timens_offsets ----------------------------------------------- */

/* "monotonic      1000         0": a clock, seconds, nanoseconds. */
static int timens_line(struct cursor *line, struct proc_timens_offsets *out, unsigned *seen)
{
	static const char *const names[] = { "monotonic", "boottime" };
	struct cursor name = *line;
	int64_t sec;
	uint64_t nsec;
	size_t i;

	while (line->p < line->end && !is_blank(*line->p))
		line->p++;
	name.end = line->p;
	for (i = 0; i < ARRAY_SIZE(names) && !key_is(&name, names[i]); i++)
		;
	skip_blanks(line);
	if (i == ARRAY_SIZE(names) || !scan_s64(line, &sec) || !skip_blanks(line) || !scan_u64(line, 10, &nsec) ||
	    !at_end(line) || nsec >= NSEC_PER_SEC || (*seen & (1u << i)))
		return -1;
	*seen |= 1u << i;
	if (i == 0) {
		out->monotonic_sec = sec;
		out->monotonic_nsec = (uint32_t)nsec;
	} else {
		out->boottime_sec = sec;
		out->boottime_nsec = (uint32_t)nsec;
	}
	return 0;
}

static int parse_timens_offsets(const char *text, const char *source, struct proc_timens_offsets *out,
				cr_error_t *err)
{
	struct lines it = { text, 0 };
	struct cursor line;
	unsigned seen = 0;

	memset(out, 0, sizeof(*out));
	while (next_line(&it, &line)) {
		struct cursor rest = line;

		if (!at_end(&rest) && timens_line(&line, out, &seen) < 0)
			return line_error(err, source, it.no, "not '<clock> <seconds> <nanoseconds>' for a known clock");
	}
	if (seen != 3)
		return cr_error(err, 0, "%s: lacks the monotonic or the boottime offset", source);
	return 0;
}

int proc_parse_timens_offsets(const char *text, struct proc_timens_offsets *out, cr_error_t *err)
{
	return parse_timens_offsets(text, "timens_offsets", out, err);
}

int proc_read_timens_offsets(pid_t pid, struct proc_timens_offsets *out, cr_error_t *err)
{
	cleanup_free char *path = proc_path(pid, "timens_offsets");
	cleanup_free char *text = NULL;

	if (read_proc_text(path, &text, err) < 0)
		return -1;
	return parse_timens_offsets(text, path, out, err);
}

/* ---- /proc/sys/kernel/random/boot_id ---------------------------------------- */

#define BOOT_ID_PATH "/proc/sys/kernel/random/boot_id"

int proc_read_boot_id(char id[PROC_BOOT_ID_LEN + 1], cr_error_t *err)
{
	cleanup_free char *text = NULL;
	size_t len = 0;

	if (read_whole_file_at(AT_FDCWD, BOOT_ID_PATH, &text, &len, err) < 0)
		return -1;
	if (len < PROC_BOOT_ID_LEN)
		return cr_error(err, 0, "%s: unexpected contents", BOOT_ID_PATH);
	memcpy(id, text, PROC_BOOT_ID_LEN);
	id[PROC_BOOT_ID_LEN] = '\0';
	return 0;
}

/* ---- fds of a process -------------------------------------------------------- */

int proc_find_fd(pid_t pid, bool (*match)(int fd, const struct stat *st, void *arg), void *arg)
{
	char path[64];
	cleanup_closedir DIR *d = NULL;
	struct dirent *de;

	snprintf(path, sizeof(path), "/proc/%d/fd", pid);
	d = opendir(path);
	while (d != NULL && (de = readdir(d)) != NULL) {
		struct stat st;

		if (de->d_name[0] != '.' && fstatat(dirfd(d), de->d_name, &st, 0) == 0 &&
		    match(atoi(de->d_name), &st, arg))
			return atoi(de->d_name);
	}
	return -1;
}

bool proc_fd_is_chrdev(int fd, const struct stat *st, void *arg)
{
	(void)fd;
	return S_ISCHR(st->st_mode) && st->st_rdev == *(dev_t *)arg;
}

int proc_write_sysctl(const char *name, const char *value, cr_error_t *err)
{
	char path[512];
	cleanup_close int fd = -1;
	size_t len = strlen(value);

	snprintf(path, sizeof(path), "/proc/sys/%s", name);
	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0 || write(fd, value, len) != (ssize_t)len)
		return cr_error(err, errno, "set %s to %s", path, value);
	return 0;
}

bool proc_shares_ns(pid_t pid, const char *type)
{
	char mine_path[64], its_path[64];
	struct stat mine, its;

	snprintf(mine_path, sizeof(mine_path), "/proc/self/ns/%s", type);
	snprintf(its_path, sizeof(its_path), "/proc/%d/ns/%s", pid, type);
	return stat(mine_path, &mine) == 0 && stat(its_path, &its) == 0 && mine.st_ino == its.st_ino &&
	       mine.st_dev == its.st_dev;
}
