#include "net/netns_nft.h"
#include "os/log.h"
#include "os/util.h"
#include "os/xalloc.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>

#define NFT_PATHS { "/usr/sbin/nft", "/sbin/nft" }
#define NFT_MAX (64u << 20)   /* a ruleset larger than this is not read */

#define IN_NEW_NS (-2)   /* netns_fd: unshare a fresh namespace */

static const char *nft_path(void)
{
	static const char *const paths[] = NFT_PATHS;

	for (size_t i = 0; i < ARRAY_SIZE(paths); i++)
		if (access(paths[i], X_OK) == 0)
			return paths[i];
	return NULL;
}

/* A memfd holding text (or empty), at offset 0. */
static int memfd_with(const char *text, cr_error_t *err)
{
	int fd = memfd_create("cr-nft", MFD_CLOEXEC);
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

	if (len < 0 || len > (off_t)NFT_MAX)
		return NULL;
	buf = xmalloc((size_t)len + 1);
	r = pread(fd, buf, (size_t)len, 0);
	buf[r > 0 ? r : 0] = '\0';
	return buf;
}

/* Runs nft -j ARG... in the network namespace of netns_fd (-1: the
 * caller's, IN_NEW_NS: a fresh one) with input on its stdin; its stdout
 * in *out (malloc'd) if out.  Fails naming nft's first line of errors. */
static int run_nft(int netns_fd, const char *arg1, const char *arg2, const char *input, char **out, cr_error_t *err)
{
	const char *nft = nft_path();
	cleanup_close int in = -1, o = -1, e = -1;
	cleanup_free char *errors = NULL;
	pid_t pid;
	int status;

	if (nft == NULL)
		return cr_error(err, ENOENT, "nft (nftables) is not installed");
	if ((in = memfd_with(input, err)) < 0 || (o = memfd_with(NULL, err)) < 0 || (e = memfd_with(NULL, err)) < 0)
		return -1;
	pid = fork();
	if (pid < 0)
		return cr_error(err, errno, "fork for nft");
	if (pid == 0) {
		if ((netns_fd >= 0 && setns(netns_fd, CLONE_NEWNET) < 0) ||
		    (netns_fd == IN_NEW_NS && unshare(CLONE_NEWNET) < 0) || dup2(in, 0) < 0 || dup2(o, 1) < 0 ||
		    dup2(e, 2) < 0)
			_exit(127);
		execl(nft, "nft", "-j", arg1, arg2, (char *)NULL);
		_exit(127);
	}
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return cr_error(err, errno, "wait for nft");
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		errors = slurp(e);
		if (errors)
			errors[strcspn(errors, "\n")] = '\0';
		return cr_error(err, 0, "nft -j %s %s: %s", arg1, arg2,
				errors && *errors ? errors : "failed (or could not enter the namespace)");
	}
	if (out && (*out = slurp(o)) == NULL)
		return cr_error(err, EFBIG, "the output of nft -j %s %s", arg1, arg2);
	return 0;
}

int nft_dump(struct arena *a, int netns_fd, const char *table, char **out, cr_error_t *err)
{
	cleanup_free char *ruleset = NULL;

	if (run_nft(netns_fd, "list", "ruleset", NULL, &ruleset, err) < 0)
		return cr_error_wrap(err, "nftables table %s: unsupported, cannot read it", table);
	if (run_nft(IN_NEW_NS, "-f", "-", ruleset, NULL, err) < 0)
		return cr_error_wrap(err, "nftables table %s: unsupported, a new namespace does not take the ruleset",
				     table);
	*out = arena_strdup(a, ruleset);
	return 0;
}

bool nft_available(void)
{
	return nft_path() != NULL;
}

int nft_restore(const char *ruleset, cr_error_t *err)
{
	if (run_nft(-1, "-f", "-", ruleset, NULL, err) < 0)
		return cr_error_wrap(err, "load the nftables ruleset");
	pr_debug("nftables ruleset loaded (%zu bytes)", strlen(ruleset));
	return 0;
}
