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

int fw_dump(struct arena *a, enum fw_kind k, int netns_fd, const char *table, char **out, cr_error_t *err)
{
	cleanup_free char *rules = NULL;
	const char *list[5], *load[5];

	argv_of(fws[k].list, list);
	argv_of(fws[k].load, load);
	if (run(netns_fd, list, NULL, &rules, err) < 0)
		return cr_error_wrap(err, "%s table %s: unsupported, cannot read it", fws[k].name, table);
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
