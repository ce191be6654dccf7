/*
 * w_ipc STATE_DIR [mqueue]
 *
 * R unshares an ipc namespace, raises its msgmnb limit, and fills it, with
 * keys and contents drawn from the token:
 *   - segment S1 (key K1): 3 pages and a bit of a pattern, a zero tail,
 *     mode 0640, given to uid 1000 gid 1001, at id S1_ID (shm_next_id: an
 *     index and a sequence number no fresh namespace would hand out);
 *   - segment S2 (IPC_PRIVATE): a page that starts with the token;
 *   - queue Q (key K2, mode 0600, at id Q_ID, sized by the raised
 *     msgmnb): messages of types 7, 1 and 3, the last one empty.
 * Then R lowers msgmax below the longest message and shmmni below the
 * number of segments: limits that were lower than what the objects
 * needed when they were made.  Its child C lives in the namespace too.  On
 * the trigger R checks every id, key, size, mode, owner, content, message
 * (in order, with its type), the three limits, and that C finds S1 by its
 * key.
 *
 * "mqueue": R also opens a POSIX message queue, which cr refuses.
 * "attached": R keeps S1 attached, which cr refuses.
 * Sabotage "shm": R changes a byte of S1 before the checks.
 */
#include "wl.h"

#include <errno.h>
#include <fcntl.h>
#include <mqueue.h>
#include <sched.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/msg.h>
#include <sys/shm.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define S1_SIZE  (3 * 4096 + 123)
#define S1_DATA  (2 * 4096 + 7)     /* the rest stays zero */
#define S2_SIZE  4096
#define MSGMNB   20000
#define MSGMAX   2048               /* below the 3000-byte message */
#define SHMMNI   1                  /* below the two segments */
#define S1_ID    (2 * 32768 + 5)
#define Q_ID     (3 * 32768 + 2)

static const struct {
	long type;
	size_t len;
} msgs[] = { { 7, 100 }, { 1, 3000 }, { 3, 0 } };

static key_t k1, k2;
static int s1, s2, q;
static int cmd[2], answer[2];

static void pattern(unsigned char *p, size_t len, uint64_t salt)
{
	uint64_t x = wl_seed(salt);

	for (size_t i = 0; i < len; i++)
		p[i] = (unsigned char)(wl_xorshift(&x) >> 24) | 1;   /* never zero */
}

static void write_sysctl(const char *path, int value)
{
	FILE *f = fopen(path, "w");

	if (f == NULL || fprintf(f, "%d\n", value) < 0 || fclose(f) != 0)
		wl_fatal("write %s: %s", path, strerror(errno));
}

static void make_segments(void)
{
	struct shmid_ds ds;
	unsigned char *p;

	write_sysctl("/proc/sys/kernel/shm_next_id", S1_ID);
	s1 = shmget(k1, S1_SIZE, IPC_CREAT | IPC_EXCL | 0640);
	s2 = shmget(IPC_PRIVATE, S2_SIZE, 0600);
	if (s1 < 0 || s2 < 0)
		wl_fatal("shmget: %s", strerror(errno));
	p = shmat(s1, NULL, 0);
	if (p == (void *)-1)
		wl_fatal("shmat: %s", strerror(errno));
	pattern(p, S1_DATA, 11);
	shmdt(p);
	p = shmat(s2, NULL, 0);
	if (p == (void *)-1)
		wl_fatal("shmat: %s", strerror(errno));
	snprintf((char *)p, S2_SIZE, "segment two of %016llx", (unsigned long long)wl_token());
	shmdt(p);
	if (shmctl(s1, IPC_STAT, &ds) < 0)
		wl_fatal("IPC_STAT: %s", strerror(errno));
	ds.shm_perm.uid = 1000;
	ds.shm_perm.gid = 1001;
	if (shmctl(s1, IPC_SET, &ds) < 0)
		wl_fatal("IPC_SET: %s", strerror(errno));
}

static void make_queue(void)
{
	static struct {
		long type;
		unsigned char text[4096];
	} m;

	write_sysctl("/proc/sys/kernel/msg_next_id", Q_ID);
	q = msgget(k2, IPC_CREAT | IPC_EXCL | 0600);
	if (q < 0)
		wl_fatal("msgget: %s", strerror(errno));
	for (size_t i = 0; i < sizeof(msgs) / sizeof(msgs[0]); i++) {
		m.type = msgs[i].type;
		pattern(m.text, msgs[i].len, 20 + i);
		if (msgsnd(q, &m, msgs[i].len, IPC_NOWAIT) < 0)
			wl_fatal("msgsnd: %s", strerror(errno));
	}
}

static unsigned long long ns_ino(void)
{
	struct stat st;

	return stat("/proc/self/ns/ipc", &st) == 0 ? (unsigned long long)st.st_ino : 0;
}

/* C: on a byte, tells which id key K1 names here and its namespace. */
static __attribute__((noreturn)) void child_main(void)
{
	char line[64], c;
	int n;

	if (write(answer[1], "r", 1) != 1)
		_exit(3);
	while (read(cmd[0], &c, 1) < 0 && errno == EINTR)
		;
	n = snprintf(line, sizeof(line), "%d %llu", shmget(k1, 0, 0), ns_ino());
	_exit(write(answer[1], line, (size_t)n) == n ? 0 : 4);
}

static void check_segment(int id, key_t key, size_t size, unsigned mode, unsigned uid, unsigned gid)
{
	struct shmid_ds ds;

	if (!wl_check(shmctl(id, IPC_STAT, &ds) == 0, "segment id %d: %s", id, strerror(errno)))
		return;
	wl_check(ds.shm_perm.__key == key && ds.shm_segsz == size && (ds.shm_perm.mode & 0777) == mode &&
		 ds.shm_perm.uid == uid && ds.shm_perm.gid == gid,
		 "segment id %d: key 0x%x size %zu mode 0%o owner %u:%u, want 0x%x %zu 0%o %u:%u", id,
		 (unsigned)ds.shm_perm.__key, ds.shm_segsz, ds.shm_perm.mode & 0777, ds.shm_perm.uid,
		 ds.shm_perm.gid, (unsigned)key, size, mode, uid, gid);
}

static void check_contents(void)
{
	static unsigned char want[S1_SIZE];
	char text[64];
	unsigned char *p;

	pattern(want, S1_DATA, 11);
	p = shmat(s1, NULL, SHM_RDONLY);
	if (wl_check(p != (void *)-1, "shmat S1: %s", strerror(errno))) {
		wl_check(memcmp(p, want, S1_SIZE) == 0, "the contents of segment S1 differ");
		shmdt(p);
	}
	snprintf(text, sizeof(text), "segment two of %016llx", (unsigned long long)wl_token());
	p = shmat(s2, NULL, SHM_RDONLY);
	if (wl_check(p != (void *)-1, "shmat S2: %s", strerror(errno))) {
		wl_check(memcmp(p, text, strlen(text) + 1) == 0, "the contents of segment S2 differ");
		shmdt(p);
	}
}

static void check_queue(void)
{
	static struct {
		long type;
		unsigned char text[4096];
	} m;
	unsigned char want[4096];
	struct msqid_ds ds;

	if (!wl_check(msgget(k2, 0) == q, "key 0x%x names queue %d, want %d", (unsigned)k2, msgget(k2, 0), q) ||
	    !wl_check(msgctl(q, IPC_STAT, &ds) == 0, "queue %d: %s", q, strerror(errno)))
		return;
	wl_check(ds.msg_qnum == 3 && ds.msg_qbytes == MSGMNB && (ds.msg_perm.mode & 0777) == 0600,
		 "queue: %lu messages, %lu bytes at most, mode 0%o; want 3, %d, 0600", (unsigned long)ds.msg_qnum,
		 (unsigned long)ds.msg_qbytes, ds.msg_perm.mode & 0777, MSGMNB);
	for (size_t i = 0; i < sizeof(msgs) / sizeof(msgs[0]); i++) {
		ssize_t n = msgrcv(q, &m, sizeof(m.text), 0, IPC_NOWAIT);

		pattern(want, msgs[i].len, 20 + i);
		if (!wl_check(n == (ssize_t)msgs[i].len && m.type == msgs[i].type && memcmp(m.text, want, msgs[i].len) == 0,
			      "message %zu: type %ld, %zd bytes (%s); want type %ld, %zu bytes", i, m.type, n,
			      n < 0 ? strerror(errno) : "contents", msgs[i].type, msgs[i].len))
			return;
	}
}

static void check(void)
{
	char what[32] = "", line[64] = "", limit[32] = "";
	unsigned long long ino = 0;
	int id = -2;

	if (wl_read_file("sabotage", what, sizeof(what)) > 0 && strncmp(what, "shm", 3) == 0) {
		unsigned char *p = shmat(s1, NULL, 0);

		if (p != (void *)-1) {
			p[4100] ^= 0x40;
			shmdt(p);
		}
	}
	wl_check(shmget(k1, 0, 0) == s1, "key 0x%x names segment %d, want %d", (unsigned)k1, shmget(k1, 0, 0), s1);
	wl_check(s1 == S1_ID && q == Q_ID, "segment S1 has id %d, queue Q %d: want %d and %d", s1, q, S1_ID, Q_ID);
	check_segment(s1, k1, S1_SIZE, 0640, 1000, 1001);
	check_segment(s2, IPC_PRIVATE, S2_SIZE, 0600, 0, 0);
	check_contents();
	check_queue();
	wl_read_path("/proc/sys/kernel/msgmnb", limit, sizeof(limit));
	wl_check(atoi(limit) == MSGMNB, "msgmnb of the namespace is %s, want %d", limit, MSGMNB);
	wl_read_path("/proc/sys/kernel/msgmax", limit, sizeof(limit));
	wl_check(atoi(limit) == MSGMAX, "msgmax of the namespace is %s, want %d", limit, MSGMAX);
	wl_read_path("/proc/sys/kernel/shmmni", limit, sizeof(limit));
	wl_check(atoi(limit) == SHMMNI, "shmmni of the namespace is %s, want %d", limit, SHMMNI);
	if (wl_check(write(cmd[1], "c", 1) == 1, "write to the child") &&
	    wl_check(read(answer[0], line, sizeof(line) - 1) > 0, "no answer from the child"))
		sscanf(line, "%d %llu", &id, &ino);
	wl_check(id == s1 && ino == ns_ino(), "the child finds key 0x%x as %d in namespace %llu; want %d in %llu",
		 (unsigned)k1, id, ino, s1, ns_ino());
}

int main(int argc, char **argv)
{
	bool mqueue = argc > 2 && strcmp(argv[2], "mqueue") == 0;
	bool attached = argc > 2 && strcmp(argv[2], "attached") == 0;
	pid_t child;
	char c;

	wl_init(argc, argv);
	k1 = (key_t)(wl_seed(1) & 0x7fffffff) | 1;
	k2 = (key_t)(wl_seed(2) & 0x7fffffff) | 1;
	if (pipe(cmd) < 0 || pipe(answer) < 0)
		wl_fatal("pipe: %s", strerror(errno));
	if (unshare(CLONE_NEWIPC) < 0)
		wl_fatal("unshare(CLONE_NEWIPC): %s", strerror(errno));
	write_sysctl("/proc/sys/kernel/msgmnb", MSGMNB);
	make_segments();
	make_queue();
	if (mqueue) {
		mqd_t mq = mq_open("/w_ipc", O_RDWR | O_CREAT | O_CLOEXEC, 0600, NULL);

		if (mq == (mqd_t)-1)
			wl_fatal("mq_open: %s", strerror(errno));
		mq_close(mq);   /* the queue stays in the namespace */
	}
	if (attached && shmat(s1, NULL, SHM_RDONLY) == (void *)-1)
		wl_fatal("shmat: %s", strerror(errno));
	write_sysctl("/proc/sys/kernel/msgmax", MSGMAX);
	write_sysctl("/proc/sys/kernel/shmmni", SHMMNI);
	child = fork();
	if (child < 0)
		wl_fatal("fork: %s", strerror(errno));
	if (child == 0)
		child_main();
	if (read(answer[0], &c, 1) != 1)
		wl_fatal("the child did not start");
	wl_ready();
	wl_wait_trigger();
	check();
	waitpid(child, NULL, 0);
	wl_finish();
}
