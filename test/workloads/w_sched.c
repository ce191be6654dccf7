/*
 * w_sched STATE_DIR [mdwe]
 *
 * Three threads, each scheduled its own way (the kernel keeps all of this
 * per thread), in a process with its own oom_score_adj and prctl bits:
 *
 *   main   SCHED_BATCH, nice 7, CPU 0, I/O best-effort 2, timer slack 123457 ns
 *   rt     SCHED_FIFO priority 5 with SCHED_RESET_ON_FORK, nice -3, CPU 1,
 *          I/O realtime 3 (timer slack: 0, the kernel's for real-time)
 *   idle   SCHED_IDLE, nice 17, CPUs 0-1, I/O idle, timer slack 777777 ns
 *   process oom_score_adj 300, child subreaper, THP disabled (except where
 *          advised, on kernels that have that flag), not dumpable
 *
 * Each thread sets its own and, on the trigger, checks its own (the timer
 * slack is told only to the thread itself).  A restore that resets any of
 * it, or gives one thread's to another, fails here.  STATE_DIR/threads
 * lists "tid policy rt_priority nice cpus ioprio" per thread and
 * STATE_DIR/process "oom_score_adj THP_enabled" for the test to compare
 * with /proc.  Sabotage (STATE_DIR/sabotage, read on the
 * trigger): nice, policy, affinity, ioprio, slack, oom, subreaper, thp or
 * dumpable: the workload changes that itself before it checks.
 * With "mdwe" the process also sets memory-deny-write-execute
 * (PR_SET_MDWE, which cannot be undone), last, and checks that it holds
 * and that the kernel enforces it: cr must dump it without a writable and
 * executable scratch page and set it back last of all.
 * Needs two CPUs and CAP_SYS_NICE.
 */
#include "wl.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#define IOPRIO(class, level) ((class) << 13 | (level))
#define IO_RT 1
#define IO_BE 2
#define IO_IDLE 3
#define RESET_ON_FORK 0x01
#define OOM_SCORE_ADJ 300
#ifndef PR_SET_MDWE
#define PR_SET_MDWE 65
#define PR_GET_MDWE 66
#endif
#define MDWE_REFUSE_EXEC_GAIN 1
#ifndef PR_THP_DISABLE_EXCEPT_ADVISED
#define PR_THP_DISABLE_EXCEPT_ADVISED (1 << 1)
#endif

struct sched_attr_wl {
	uint32_t size, policy;
	uint64_t flags;
	int32_t nice;
	uint32_t priority;
	uint64_t runtime, deadline, period;
	uint32_t util_min, util_max;
};

static const struct spec {
	const char *name;
	uint32_t policy, priority, flags;
	int nice;
	unsigned cpus;   /* bit per CPU */
	int ioprio;
	unsigned long slack;
} specs[] = {
	{ "main", SCHED_BATCH, 0, 0, 7, 0x1, IOPRIO(IO_BE, 2), 123457 },
	{ "rt", SCHED_FIFO, 5, RESET_ON_FORK, -3, 0x2, IOPRIO(IO_RT, 3), 0 },
	{ "idle", SCHED_IDLE, 0, 0, 17, 0x3, IOPRIO(IO_IDLE, 0), 777777 },
};
#define N_THREADS (sizeof(specs) / sizeof(specs[0]))

static char sabotage[32];
static unsigned long thp_want;
static bool mdwe;

static pid_t tid(void)
{
	return (pid_t)syscall(SYS_gettid);
}

static int set_mine(const struct spec *s, char *err, size_t size)
{
	struct sched_attr_wl a = { .size = sizeof(a), .policy = s->policy, .flags = s->flags, .nice = s->nice,
				   .priority = s->priority };
	cpu_set_t set;

	CPU_ZERO(&set);
	for (int cpu = 0; cpu < 32; cpu++)
		if (s->cpus & (1u << cpu))
			CPU_SET(cpu, &set);
	/* Nice first: a real-time thread keeps it for when it leaves the policy. */
	if (setpriority(PRIO_PROCESS, (id_t)tid(), s->nice) < 0)
		return snprintf(err, size, "setpriority: %s", strerror(errno));
	if (syscall(SYS_sched_setattr, 0, &a, 0) < 0)
		return snprintf(err, size, "sched_setattr: %s", strerror(errno));
	if (s->slack && prctl(PR_SET_TIMERSLACK, s->slack) < 0)
		return snprintf(err, size, "PR_SET_TIMERSLACK: %s", strerror(errno));
	if (sched_setaffinity(0, sizeof(set), &set) < 0)
		return snprintf(err, size, "sched_setaffinity: %s", strerror(errno));
	if (syscall(SYS_ioprio_set, 1 /* IOPRIO_WHO_PROCESS */, 0, s->ioprio) < 0)
		return snprintf(err, size, "ioprio_set: %s", strerror(errno));
	return 0;
}

/* The thread breaks what the sabotage names that is its own. */
static void break_mine(const struct spec *s)
{
	struct sched_attr_wl a = { .size = sizeof(a), .policy = SCHED_OTHER };
	cpu_set_t set;

	if (strcmp(sabotage, "nice") == 0 && s->policy == SCHED_IDLE)
		setpriority(PRIO_PROCESS, (id_t)tid(), 0);
	if (strcmp(sabotage, "policy") == 0 && s->policy == SCHED_BATCH)
		syscall(SYS_sched_setattr, 0, &a, 0);
	if (strcmp(sabotage, "affinity") == 0 && s->cpus == 0x2) {
		CPU_ZERO(&set);
		CPU_SET(0, &set);
		sched_setaffinity(0, sizeof(set), &set);
	}
	if (strcmp(sabotage, "ioprio") == 0 && s->policy == SCHED_FIFO)
		syscall(SYS_ioprio_set, 1, 0, 0);
	if (strcmp(sabotage, "slack") == 0 && s->slack)
		prctl(PR_SET_TIMERSLACK, 0);   /* back to the default */
}

/* Appends to out what differs from the spec in the calling thread. */
static void check_mine(const struct spec *s, char *out, size_t size)
{
	struct sched_attr_wl a = { 0 };
	cpu_set_t set;
	unsigned cpus = 0;
	size_t len = strlen(out);
	long slack, ioprio;
	int nice;

#define BAD(...) (len += (size_t)snprintf(out + len, len < size ? size - len : 0, __VA_ARGS__))
	break_mine(s);
	if (syscall(SYS_sched_getattr, 0, &a, sizeof(a), 0) < 0 || a.policy != s->policy ||
	    a.priority != s->priority || a.flags != s->flags)
		BAD("%s: policy %u priority %u flags 0x%llx, want %u %u 0x%x; ", s->name, a.policy, a.priority,
		    (unsigned long long)a.flags, s->policy, s->priority, s->flags);
	errno = 0;
	nice = getpriority(PRIO_PROCESS, (id_t)tid());
	if (nice != s->nice)
		BAD("%s: nice %d, want %d; ", s->name, nice, s->nice);
	CPU_ZERO(&set);
	sched_getaffinity(0, sizeof(set), &set);
	for (int cpu = 0; cpu < 32; cpu++)
		if (CPU_ISSET(cpu, &set))
			cpus |= 1u << cpu;
	if (cpus != s->cpus)
		BAD("%s: CPUs 0x%x, want 0x%x; ", s->name, cpus, s->cpus);
	ioprio = syscall(SYS_ioprio_get, 1, 0);
	if (ioprio != s->ioprio)
		BAD("%s: ioprio 0x%lx, want 0x%x; ", s->name, ioprio, s->ioprio);
	slack = prctl(PR_GET_TIMERSLACK);
	if (s->slack && (unsigned long)slack != s->slack)
		BAD("%s: timer slack %ld ns, want %lu; ", s->name, slack, s->slack);
#undef BAD
	if (len >= 2 && len < size && strcmp(out + len - 2, "; ") == 0)
		out[len - 2] = '\0';
}

struct helper {
	const struct spec *spec;
	pid_t tid;
	int cmd[2], answer[2];
	pthread_t thread;
};

static void answer(int fd, const char *text)
{
	if (write(fd, text, strlen(text) + 1) < 0)
		_exit(3);
}

static void read_text(int fd, char *buf, size_t size)
{
	ssize_t n;

	do
		n = read(fd, buf, size - 1);
	while (n < 0 && errno == EINTR);
	buf[n > 0 ? n : 0] = '\0';
}

static void *helper_main(void *arg)
{
	struct helper *h = arg;
	char buf[512] = "";

	h->tid = tid();
	if (set_mine(h->spec, buf, sizeof(buf)) > 0) {
		answer(h->answer[1], buf);
		return NULL;
	}
	answer(h->answer[1], "ready");
	read_text(h->cmd[0], buf, sizeof(buf));   /* the check command */
	buf[0] = '\0';
	check_mine(h->spec, buf, sizeof(buf));
	answer(h->answer[1], buf[0] ? buf : "ok");
	return NULL;
}

static void start_helper(struct helper *h, const struct spec *s)
{
	char buf[512];
	int err;

	h->spec = s;
	if (pipe(h->cmd) < 0 || pipe(h->answer) < 0)
		wl_fatal("pipe: %s", strerror(errno));
	err = pthread_create(&h->thread, NULL, helper_main, h);
	if (err)
		wl_fatal("pthread_create: %s", strerror(err));
	read_text(h->answer[0], buf, sizeof(buf));
	if (strcmp(buf, "ready") != 0)
		wl_fatal("thread %s: %s", s->name, buf);
}

static void set_process(void)
{
	char adj[16];
	int fd = open("/proc/self/oom_score_adj", O_WRONLY);

	snprintf(adj, sizeof(adj), "%d", OOM_SCORE_ADJ);
	if (fd < 0 || write(fd, adj, strlen(adj)) < 0)
		wl_fatal("oom_score_adj %s: %s", adj, strerror(errno));
	close(fd);
	if (prctl(PR_SET_CHILD_SUBREAPER, 1) < 0)
		wl_fatal("PR_SET_CHILD_SUBREAPER: %s", strerror(errno));
	thp_want = 1 | PR_THP_DISABLE_EXCEPT_ADVISED;
	if (prctl(PR_SET_THP_DISABLE, 1, PR_THP_DISABLE_EXCEPT_ADVISED, 0, 0) < 0) {
		thp_want = 1;   /* a kernel before 6.18 */
		if (prctl(PR_SET_THP_DISABLE, 1, 0, 0, 0) < 0)
			wl_fatal("PR_SET_THP_DISABLE: %s", strerror(errno));
	}
	if (prctl(PR_SET_DUMPABLE, 0) < 0)
		wl_fatal("PR_SET_DUMPABLE: %s", strerror(errno));
	if (mdwe && prctl(PR_SET_MDWE, MDWE_REFUSE_EXEC_GAIN, 0, 0, 0) < 0)
		wl_fatal("PR_SET_MDWE: %s", strerror(errno));
}

/* Set, and enforced: a read-write page may not become executable. */
static void check_mdwe(void)
{
	long flags = prctl(PR_GET_MDWE, 0, 0, 0, 0);
	void *p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	int r = p == MAP_FAILED ? 0 : mprotect(p, 4096, PROT_READ | PROT_EXEC);

	wl_check(flags == MDWE_REFUSE_EXEC_GAIN, "memory-deny-write-execute %ld, want %d", flags,
		 MDWE_REFUSE_EXEC_GAIN);
	wl_check(p != MAP_FAILED && r < 0 && errno == EACCES, "mprotect to PROT_EXEC %s under MDWE",
		 r == 0 ? "succeeded" : strerror(errno));
}

static void check_process(void)
{
	char buf[32] = "";
	int subreaper = 0;
	long thp, dumpable;

	if (strcmp(sabotage, "oom") == 0) {
		int fd = open("/proc/self/oom_score_adj", O_WRONLY);

		if (fd >= 0 && write(fd, "0", 1) < 0)
			wl_check(false, "sabotage oom_score_adj: %s", strerror(errno));
		close(fd);
	}
	if (strcmp(sabotage, "subreaper") == 0)
		prctl(PR_SET_CHILD_SUBREAPER, 0);
	if (strcmp(sabotage, "thp") == 0)
		prctl(PR_SET_THP_DISABLE, 0, 0, 0, 0);
	if (strcmp(sabotage, "dumpable") == 0)
		prctl(PR_SET_DUMPABLE, 1);
	wl_read_path("/proc/self/oom_score_adj", buf, sizeof(buf));
	wl_check(atoi(buf) == OOM_SCORE_ADJ, "oom_score_adj %d, want %d", atoi(buf), OOM_SCORE_ADJ);
	prctl(PR_GET_CHILD_SUBREAPER, &subreaper);
	wl_check(subreaper == 1, "child subreaper %d, want 1", subreaper);
	thp = prctl(PR_GET_THP_DISABLE, 0, 0, 0, 0);
	wl_check((unsigned long)thp == thp_want, "THP disable %ld, want %lu", thp, thp_want);
	dumpable = prctl(PR_GET_DUMPABLE);
	wl_check(dumpable == 0, "dumpable %ld, want 0", dumpable);
	if (mdwe)
		check_mdwe();
}

static void write_threads(const struct helper *h)
{
	char text[512];
	size_t len = 0;

	for (size_t i = 0; i < N_THREADS; i++) {
		const struct spec *s = &specs[i];

		len += (size_t)snprintf(text + len, sizeof(text) - len, "%d %u %u %d %s %d\n",
					i == 0 ? tid() : h[i].tid, s->policy, s->priority, s->nice,
					s->cpus == 0x1 ? "0" : s->cpus == 0x2 ? "1" : "0,1", s->ioprio);
	}
	if (wl_write_file("threads", "%s", text) < 0 ||
	    wl_write_file("process", "%d %ld\n", OOM_SCORE_ADJ, wl_status_field("THP_enabled")) < 0)
		wl_fatal("write threads: %s", strerror(errno));
}

int main(int argc, char **argv)
{
	struct helper h[N_THREADS];
	sigset_t usr2, old;
	char buf[512] = "";

	wl_init(argc, argv);
	mdwe = argc > 2 && strcmp(argv[2], "mdwe") == 0;
	/* Only the main thread takes the trigger. */
	sigemptyset(&usr2);
	sigaddset(&usr2, SIGUSR2);
	pthread_sigmask(SIG_BLOCK, &usr2, &old);
	for (size_t i = 1; i < N_THREADS; i++)
		start_helper(&h[i], &specs[i]);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (set_mine(&specs[0], buf, sizeof(buf)) > 0)
		wl_fatal("main thread: %s", buf);
	set_process();
	write_threads(h);
	wl_ready();
	wl_wait_trigger();

	if (wl_read_file("sabotage", sabotage, sizeof(sabotage)) < 0)
		sabotage[0] = '\0';
	sabotage[strcspn(sabotage, "\n")] = '\0';
	buf[0] = '\0';
	check_mine(&specs[0], buf, sizeof(buf));
	wl_check(buf[0] == '\0', "%s", buf);
	check_process();
	for (size_t i = 1; i < N_THREADS; i++) {
		if (!wl_check(write(h[i].cmd[1], "c", 1) == 1, "write to thread %s: %s", specs[i].name,
			      strerror(errno)))
			continue;
		read_text(h[i].answer[0], buf, sizeof(buf));
		wl_check(strcmp(buf, "ok") == 0, "thread %s: %s", specs[i].name, buf[0] ? buf : "no answer");
		pthread_join(h[i].thread, NULL);
	}
	wl_finish();
}
