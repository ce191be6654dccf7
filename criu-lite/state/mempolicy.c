/* NUMA memory policies: a thread's own (set_mempolicy; `numactl
 * --interleave=all`, `--membind`, `--localalloc`) and a mapping's
 * (mbind).  cr does not restore them: a restored process would allocate
 * by the default policy, silently.  Refused at dump, naming the policy.
 *
 * /proc/PID/numa_maps shows, for each mapping, its own policy, or the
 * task's where it has none: any word but "default" there is a policy.
 * Each other thread's own policy shows in the first line of its
 * /proc/PID/task/TID/numa_maps (only that line is read: the file walks
 * the pages of every mapping it prints).  A kernel without NUMA has no
 * such file and no policies. */
#include "os/util.h"
#include "state/state.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* The policy word of the next numa_maps line ("7f00 interleave:0 anon=3
 * ..."), in word (empty for a line without one); false at the end. */
static bool line_policy(const char **text, unsigned long *addr, char *word, size_t size)
{
	const char *line = *text, *end;
	int n = 0;

	if (*line == '\0')
		return false;
	end = strchrnul(line, '\n');
	*text = *end ? end + 1 : end;
	*word = '\0';
	if (sscanf(line, "%lx %n", addr, &n) == 1 && n > 0)
		snprintf(word, size, "%.*s", (int)strcspn(line + n, " \n"), line + n);
	return true;
}

static int refuse(pid_t pid, pid_t tid, const char *word, unsigned long addr, cr_error_t *err)
{
	return cr_error(err, 0, "pid %d thread %d: a NUMA memory policy (%s at 0x%lx in numa_maps): unsupported "
			"(cr does not restore set_mempolicy or mbind)", pid, tid, word, addr);
}

/* Every line of the process's numa_maps. */
static int check_process(pid_t pid, cr_error_t *err)
{
	char path[64], word[64];
	cleanup_free char *text = NULL;
	const char *p;
	unsigned long addr;

	snprintf(path, sizeof(path), "/proc/%d/numa_maps", pid);
	if (access(path, F_OK) < 0)
		return 0;
	if (read_whole_file_at(AT_FDCWD, path, &text, NULL, err) < 0)
		return -1;
	for (p = text; line_policy(&p, &addr, word, sizeof(word));)
		if (*word && strcmp(word, "default") != 0)
			return refuse(pid, pid, word, addr, err);
	return 0;
}

/* The first line of a thread's numa_maps. */
static int check_thread(pid_t pid, pid_t tid, cr_error_t *err)
{
	char path[64], buf[512], word[64];
	cleanup_close int fd = -1;
	const char *p = buf;
	unsigned long addr;
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/%d/task/%d/numa_maps", pid, tid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? 0 : cr_error(err, errno, "open %s", path);
	n = read(fd, buf, sizeof(buf) - 1);
	if (n < 0)
		return cr_error(err, errno, "read %s", path);
	buf[n] = '\0';
	if (line_policy(&p, &addr, word, sizeof(word)) && *word && strcmp(word, "default") != 0)
		return refuse(pid, tid, word, addr, err);
	return 0;
}

static int mempolicy_collect(struct dump_ctx *ctx, struct dump_task *t, cr_error_t *err)
{
	(void)ctx;
	if (check_process(t->pid, err) < 0)
		return -1;
	for (size_t i = 1; i < t->n_threads; i++)
		if (check_thread(t->pid, t->threads[i].tid, err) < 0)
			return -1;
	return 0;
}

const struct state_kind state_mempolicy = {
	.name = "NUMA memory policies",
	.collect = mempolicy_collect,
};
