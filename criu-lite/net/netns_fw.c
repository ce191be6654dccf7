#include "net/netns_fw.h"
#include "os/log.h"
#include "os/util.h"
#include "os/xalloc.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>

#define RULES_MAX (64u << 20)   /* rules larger than this are not read */
#define IN_NEW_NS (-2)          /* netns_fd: unshare a fresh namespace */

static const struct fw {
	const char *name;
	const char *list[4];       /* program (a name in /usr/sbin or /sbin) and arguments */
	const char *load[4];
} fws[] = {
	[FW_NFT] = { "nftables", { "nft", "-j", "list", "ruleset" }, { "nft", "-j", "-f", "-" } },
	[FW_IPTABLES] = { "iptables", { "iptables-legacy-save", "-c" }, { "iptables-legacy-restore", "-c" } },
	[FW_IP6TABLES] = { "ip6tables", { "ip6tables-legacy-save", "-c" }, { "ip6tables-legacy-restore", "-c" } },
};

const char *fw_name(enum fw_kind k)
{
	return fws[k].name;
}

/* The path of program, or NULL. */
static const char *find(const char *program, char *buf, size_t size)
{
	static const char *const dirs[] = { "/usr/sbin", "/sbin", "/usr/bin" };

	for (size_t i = 0; i < ARRAY_SIZE(dirs); i++) {
		snprintf(buf, size, "%s/%s", dirs[i], program);
		if (access(buf, X_OK) == 0)
			return buf;
	}
	return NULL;
}

/* A memfd holding text (or empty), at offset 0. */
static int memfd_with(const char *text, cr_error_t *err)
{
	int fd = memfd_create("cr-fw", MFD_CLOEXEC);
	size_t len = text ? strlen(text) : 0, done = 0;

	if (fd < 0)
		return cr_error(err, errno, "memfd_create");
	while (done < len) {
		ssize_t w = write(fd, text + done, len - done);

		if (w <= 0) {
			close(fd);
			return cr_error(err, errno, "write a memfd");
		}
		done += (size_t)w;
	}
	lseek(fd, 0, SEEK_SET);
	return fd;
}

/* The whole of fd from its start, NUL-terminated (malloc'd). */
static char *slurp(int fd)
{
	off_t len = lseek(fd, 0, SEEK_END);
	char *buf;
	ssize_t r;

	if (len < 0 || len > (off_t)RULES_MAX)
		return NULL;
	buf = xmalloc((size_t)len + 1);
	r = pread(fd, buf, (size_t)len, 0);
	buf[r > 0 ? r : 0] = '\0';
	return buf;
}

/* Runs argv in the network namespace of netns_fd (-1: the caller's,
 * IN_NEW_NS: a fresh one) with input on its stdin; its stdout in *out
 * (malloc'd) if out.  Fails naming the program's first line of errors. */
static int run(int netns_fd, const char *const *argv, const char *input, char **out, cr_error_t *err)
{
	cleanup_close int in = -1, o = -1, e = -1;
	cleanup_free char *errors = NULL;
	char path[128];
	pid_t pid;
	int status;

	if (find(argv[0], path, sizeof(path)) == NULL)
		return cr_error(err, ENOENT, "%s is not installed", argv[0]);
	if ((in = memfd_with(input, err)) < 0 || (o = memfd_with(NULL, err)) < 0 || (e = memfd_with(NULL, err)) < 0)
		return -1;
	pid = fork();
	if (pid < 0)
		return cr_error(err, errno, "fork for %s", argv[0]);
	if (pid == 0) {
		if ((netns_fd >= 0 && setns(netns_fd, CLONE_NEWNET) < 0) ||
		    (netns_fd == IN_NEW_NS && unshare(CLONE_NEWNET) < 0) || dup2(in, 0) < 0 || dup2(o, 1) < 0 ||
		    dup2(e, 2) < 0)
			_exit(127);
		execv(path, (char *const *)argv);
		_exit(127);
	}
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return cr_error(err, errno, "wait for %s", argv[0]);
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		errors = slurp(e);
		if (errors)
			errors[strcspn(errors, "\n")] = '\0';
		return cr_error(err, 0, "%s: %s", argv[0], errors && *errors ? errors : "failed");
	}
	if (out && (*out = slurp(o)) == NULL)
		return cr_error(err, EFBIG, "the output of %s", argv[0]);
	return 0;
}

/* argv of a tool: its four words, the unused ones NULL (execv stops at the
 * first). */
static void argv_of(const char *const words[4], const char *argv[5])
{
	for (int i = 0; i < 4; i++)
		argv[i] = words[i];
	argv[4] = NULL;
}

bool fw_is_lock_table(const char *name, size_t len)
{
	size_t n = strlen(FW_LOCK_PREFIX);

	if (len <= n || len > n + 10 || strncmp(name, FW_LOCK_PREFIX, n) != 0)
		return false;
	for (size_t i = n; i < len; i++)
		if (name[i] < '0' || name[i] > '9')
			return false;
	return true;
}

/* ------------------------------------------- cr's lock tables left out */

static const char *skip_ws(const char *p)
{
	while (*p == ' ' || *p == '\n' || *p == '\t' || *p == '\r')
		p++;
	return p;
}

/* Past the JSON string at p (its opening quote), or NULL. */
static const char *skip_string(const char *p)
{
	for (p++; *p && *p != '"'; p++)
		if (*p == '\\' && *++p == '\0')
			return NULL;
	return *p ? p + 1 : NULL;
}

/* Past the JSON value at p, or NULL if it is malformed. */
static const char *skip_value(const char *p)
{
	int depth = 0;

	do {
		p = skip_ws(p);
		if (*p == '"')
			p = skip_string(p);
		else if (*p == '{' || *p == '[')
			depth++, p++;
		else if (*p == '}' || *p == ']')
			depth--, p++;
		else if (*p == ',' || *p == ':')
			p++;
		else if (*p == '\0')
			return NULL;
		else
			p += strcspn(p, " \n\t\r,:]}");   /* a number, true, false, null */
	} while (p != NULL && depth > 0);
	return p;
}

/* The string at p is exactly "text". */
static bool string_is(const char *p, const char *end, const char *text)
{
	size_t n = strlen(text);

	return *p == '"' && end - p == (ptrdiff_t)n + 2 && strncmp(p + 1, text, n) == 0;
}

/* An element of the "nftables" array, {"KIND": {members}}, belongs to a
 * lock table of cr's: a table inet cr_tcp_N itself, or its chain or rule. */
static bool is_lock_element(const char *p)
{
	const char *kind, *end;
	bool table, inet = false, ours = false;

	p = skip_ws(p);
	if (*p++ != '{' || *(kind = skip_ws(p)) != '"' || (end = skip_string(kind)) == NULL)
		return false;
	table = string_is(kind, end, "table");
	p = skip_ws(end);
	if (*p++ != ':' || *(p = skip_ws(p)) != '{')
		return false;
	for (p++;;) {
		const char *key = skip_ws(p), *key_end, *v, *v_end;

		if (*key != '"' || (key_end = skip_string(key)) == NULL || *(p = skip_ws(key_end)) != ':')
			break;
		v = skip_ws(p + 1);
		if ((v_end = skip_value(v)) == NULL)
			return false;
		if (string_is(key, key_end, "family"))
			inet = string_is(v, v_end, "inet");
		if (*v == '"' && string_is(key, key_end, table ? "name" : "table"))
			ours = fw_is_lock_table(v + 1, (size_t)(v_end - v - 2));
		p = skip_ws(v_end);
		if (*p++ != ',')
			break;
	}
	return inet && ours;
}

char *fw_without_lock_tables(const char *json)
{
	const char *p = strstr(json, "\"nftables\""), *start;
	char *out = xmalloc(strlen(json) + 1), *o;
	bool first = true;

	if (p == NULL || (p = strchr(p, '[')) == NULL) {
		strcpy(out, json);
		return out;
	}
	p++;
	memcpy(out, json, (size_t)(p - json));
	o = out + (p - json);
	for (;;) {
		const char *end;

		start = skip_ws(p);
		if (*start == ']' || (end = skip_value(start)) == NULL)
			break;
		if (!is_lock_element(start)) {
			if (!first)
				*o++ = ',', *o++ = ' ';
			memcpy(o, start, (size_t)(end - start));
			o += end - start;
			first = false;
		}
		p = skip_ws(end);
		if (*p == ',')
			p++;
	}
	strcpy(o, start);   /* "]}" and what follows, or a malformed rest as it was */
	return out;
}

int fw_dump(struct arena *a, enum fw_kind k, int netns_fd, const char *table, char **out, cr_error_t *err)
{
	cleanup_free char *rules = NULL;
	const char *list[5], *load[5];

	argv_of(fws[k].list, list);
	argv_of(fws[k].load, load);
	if (run(netns_fd, list, NULL, &rules, err) < 0)
		return cr_error_wrap(err, "%s table %s: unsupported, cannot read it", fws[k].name, table);
	if (k == FW_NFT) {   /* a connection cr holds in repair mode is not the namespace's */
		char *mine = fw_without_lock_tables(rules);

		free(rules);
		rules = mine;
	}
	if (run(IN_NEW_NS, load, rules, NULL, err) < 0)
		return cr_error_wrap(err, "%s table %s: unsupported, a new namespace does not take the rules",
				     fws[k].name, table);
	*out = arena_strdup(a, rules);
	return 0;
}

bool fw_available(enum fw_kind k)
{
	char path[128];

	return find(fws[k].load[0], path, sizeof(path)) != NULL;
}

int fw_restore(enum fw_kind k, const char *rules, cr_error_t *err)
{
	const char *load[5];

	argv_of(fws[k].load, load);
	if (run(-1, load, rules, NULL, err) < 0)
		return cr_error_wrap(err, "load the %s rules", fws[k].name);
	pr_debug("%s rules loaded (%zu bytes)", fws[k].name, strlen(rules));
	return 0;
}
