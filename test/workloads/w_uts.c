/*
 * w_uts STATE_DIR [thread]
 *
 * A tree across three uts namespaces, each with a hostname and domainname
 * drawn from the token (a re-executed program could not know them):
 *
 *   R  unshare(CLONE_NEWUTS), hostname r-TOKEN        namespace U1
 *   ├─ A  forked after: shares it                      U1
 *   └─ B  unshare(CLONE_NEWUTS), hostname b-TOKEN      U2
 *      ├─ C  setns back into R's namespace             U1 (not its parent's:
 *      │                                                its grandparent's)
 *      ├─ D  forked after: shares B's                  U2
 *      └─ E  setns into the host's (cr's)              the host's
 *
 * On the trigger R asks every other process (a byte each on one pipe) for
 * its uname() and the identity of its uts namespace (/proc/self/ns/uts),
 * and checks its own: the names, which processes share a namespace and
 * which do not.  A restore that put any of them in the restorer's
 * namespace, made one namespace twice or none, fails here.
 *
 * "thread": a thread of R unshares a uts namespace of its own (its tid in
 * STATE_DIR/thread), which cr refuses.
 *
 * Sabotage "hostname": R changes its hostname before the checks.
 */
#include "wl.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#define N_OTHERS 5   /* A, B, C, D, E */

struct member {
	char role;
	char host[80], dom[80];
	unsigned long long ino;
};

static char r_host[64], r_dom[64], b_host[64], b_dom[64];
static struct utsname host;       /* before R left the host's namespace */
static unsigned long long host_ino;
static int cmd[2], answer[2];

static unsigned long long own_ino(void)
{
	struct stat st;

	return stat("/proc/self/ns/uts", &st) == 0 ? (unsigned long long)st.st_ino : 0;
}

static int set_names(const char *host, const char *dom)
{
	return sethostname(host, strlen(host)) == 0 && setdomainname(dom, strlen(dom)) == 0 ? 0 : -1;
}

/* One line (atomic on a pipe) to R. */
static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *fmt, ...)
{
	char line[256];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (write(answer[1], line, (size_t)n) != n)
		_exit(3);
}

/* Every process but R: reports ready, waits for R's byte, answers. */
static void serve(char role)
{
	struct utsname u;
	char c;
	ssize_t n;

	say("%c ready\n", role);
	do
		n = read(cmd[0], &c, 1);
	while (n < 0 && errno == EINTR);
	if (n != 1)
		_exit(4);
	if (uname(&u) < 0)
		_exit(5);
	say("%c %s %s %llu\n", role, u.nodename, u.domainname, own_ino());
}

static void reap_all(void)
{
	while (wait(NULL) > 0 || errno == EINTR)
		;
}

static int r_ns = -1, host_ns = -1;   /* in B until its children are forked */

/* A child of B that enters the namespace fd ns (unless -1) and serves as
 * role, keeping no nsfs fd (nothing cr dumps). */
static void fork_into(int ns, char role)
{
	pid_t pid = fork();

	if (pid < 0) {
		say("B setup failed: fork: %s\n", strerror(errno));
		_exit(2);
	}
	if (pid > 0)
		return;
	if (ns >= 0 && setns(ns, CLONE_NEWUTS) < 0) {
		say("%c setup failed: setns: %s\n", role, strerror(errno));
		_exit(2);
	}
	close(r_ns);
	close(host_ns);
	serve(role);
	_exit(0);
}

static __attribute__((noreturn)) void b_main(void)
{
	if (unshare(CLONE_NEWUTS) < 0 || set_names(b_host, b_dom) < 0) {
		say("B setup failed: %s\n", strerror(errno));
		_exit(2);
	}
	fork_into(r_ns, 'C');    /* back into R's namespace */
	fork_into(host_ns, 'E'); /* into the host's */
	close(r_ns);
	close(host_ns);
	r_ns = host_ns = -1;
	fork_into(-1, 'D');
	serve('B');
	reap_all();
	_exit(0);
}

/* Reads lines from the answer pipe until n have come, into lines. */
static int read_lines(char lines[][256], int n)
{
	static char buf[4096];
	static size_t len;
	int got = 0;

	while (got < n) {
		char *nl = memchr(buf, '\n', len);
		struct pollfd p = { .fd = answer[0], .events = POLLIN };
		ssize_t r;

		if (nl != NULL) {
			size_t l = (size_t)(nl - buf);

			snprintf(lines[got++], 256, "%.*s", (int)l, buf);
			memmove(buf, nl + 1, len - l - 1);
			len -= l + 1;
			continue;
		}
		if (poll(&p, 1, 10000) <= 0)
			return -1;
		r = read(answer[0], buf + len, sizeof(buf) - len);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return -1;
		len += (size_t)r;
	}
	return 0;
}

static void *thread_main(void *arg)
{
	(void)arg;
	if (unshare(CLONE_NEWUTS) == 0 && set_names("thread", "thread") == 0)
		wl_write_file("thread", "%d\n", (int)gettid());
	for (;;)
		pause();
	return NULL;
}

static void start_thread(void)
{
	pthread_t th;
	char tid[16];

	if (pthread_create(&th, NULL, thread_main, NULL) != 0)
		wl_fatal("pthread_create");
	for (int i = 0; i < 1000 && wl_read_file("thread", tid, sizeof(tid)) <= 0; i++)
		usleep(10000);
	if (wl_read_file("thread", tid, sizeof(tid)) <= 0)
		wl_fatal("the thread did not make its namespace");
}

static void setup(void)
{
	pid_t pid;
	char lines[N_OTHERS][256];

	snprintf(r_host, sizeof(r_host), "r-%016llx", (unsigned long long)wl_token());
	snprintf(r_dom, sizeof(r_dom), "rd-%llx", (unsigned long long)wl_seed(1));
	snprintf(b_host, sizeof(b_host), "b-%016llx", (unsigned long long)wl_seed(2));
	snprintf(b_dom, sizeof(b_dom), "bd-%llx", (unsigned long long)wl_seed(3));
	if (pipe(cmd) < 0 || pipe(answer) < 0)
		wl_fatal("pipe: %s", strerror(errno));
	uname(&host);
	host_ino = own_ino();
	host_ns = open("/proc/self/ns/uts", O_RDONLY | O_CLOEXEC);
	if (host_ns < 0 || unshare(CLONE_NEWUTS) < 0 || set_names(r_host, r_dom) < 0)
		wl_fatal("own uts namespace: %s", strerror(errno));
	pid = fork();
	if (pid == 0) {
		close(host_ns);
		serve('A');
		_exit(0);
	}
	r_ns = open("/proc/self/ns/uts", O_RDONLY | O_CLOEXEC);
	if (pid < 0 || r_ns < 0)
		wl_fatal("fork or open ns: %s", strerror(errno));
	pid = fork();
	if (pid == 0)
		b_main();
	close(r_ns);
	close(host_ns);
	if (pid < 0)
		wl_fatal("fork: %s", strerror(errno));
	if (read_lines(lines, N_OTHERS) < 0)
		wl_fatal("the other processes did not report ready");
	for (int i = 0; i < N_OTHERS; i++)
		if (strstr(lines[i], " ready") == NULL)
			wl_fatal("%s", lines[i]);
}

static const struct member *find(const struct member *m, char role)
{
	for (int i = 0; i < N_OTHERS; i++)
		if (m[i].role == role)
			return &m[i];
	return NULL;
}

static void check_names(const struct member *m, char role, const char *host, const char *dom)
{
	wl_check(strcmp(m->host, host) == 0 && strcmp(m->dom, dom) == 0,
		 "%c: hostname %s domainname %s, want %s %s", role, m->host, m->dom, host, dom);
}

static void check(void)
{
	char lines[N_OTHERS][256];
	struct member m[N_OTHERS], self = { .role = 'R' };
	const struct member *a, *b, *c, *d, *e;
	struct utsname u;

	if (wl_read_file("sabotage", lines[0], sizeof(lines[0])) > 0 && strncmp(lines[0], "hostname", 8) == 0)
		set_names("sabotaged", "sabotaged");
	if (!wl_check(write(cmd[1], "xxxx", N_OTHERS) == N_OTHERS, "write to the others: %s", strerror(errno)) ||
	    !wl_check(read_lines(lines, N_OTHERS) == 0, "no answer from the other processes"))
		return;
	for (int i = 0; i < N_OTHERS; i++) {
		memset(&m[i], 0, sizeof(m[i]));
		if (sscanf(lines[i], "%c %79s %79s %llu", &m[i].role, m[i].host, m[i].dom, &m[i].ino) != 4)
			wl_check(false, "bad answer: %s", lines[i]);
	}
	a = find(m, 'A'), b = find(m, 'B'), c = find(m, 'C'), d = find(m, 'D'), e = find(m, 'E');
	if (!wl_check(a && b && c && d && e, "not every process answered"))
		return;
	uname(&u);
	snprintf(self.host, sizeof(self.host), "%s", u.nodename);
	snprintf(self.dom, sizeof(self.dom), "%s", u.domainname);
	self.ino = own_ino();
	check_names(&self, 'R', r_host, r_dom);
	check_names(a, 'A', r_host, r_dom);
	check_names(c, 'C', r_host, r_dom);
	check_names(b, 'B', b_host, b_dom);
	check_names(d, 'D', b_host, b_dom);
	check_names(e, 'E', host.nodename, host.domainname);
	wl_check(e->ino == host_ino, "E (%llu) is not in the host's uts namespace (%llu)", e->ino, host_ino);
	wl_check(a->ino == self.ino && c->ino == self.ino, "A (%llu) and C (%llu) are not in R's uts namespace (%llu)",
		 a->ino, c->ino, self.ino);
	wl_check(d->ino == b->ino, "D (%llu) is not in B's uts namespace (%llu)", d->ino, b->ino);
	wl_check(b->ino != self.ino, "B shares R's uts namespace (%llu)", b->ino);
}

int main(int argc, char **argv)
{
	wl_init(argc, argv);
	setup();
	if (argc > 2 && strcmp(argv[2], "thread") == 0)
		start_thread();
	wl_ready();
	wl_wait_trigger();
	check();
	reap_all();
	wl_finish();
}
