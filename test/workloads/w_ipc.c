/*
 * w_ipc STATE_DIR [notify|undo|attached]
 *
 * R unshares an ipc namespace, raises its msgmnb and fs.mqueue.msg_max
 * limits, and fills it, with keys and contents drawn from the token:
 *   - segment S1 (key K1): 3 pages and a bit of a pattern, a zero tail,
 *     mode 0640, given to uid 1000 gid 1001, at id S1_ID (shm_next_id: an
 *     index and a sequence number no fresh namespace would hand out);
 *   - segment S2 (IPC_PRIVATE): a page that starts with the token;
 *   - queue Q (key K2, mode 0600, at id Q_ID, sized by the raised
 *     msgmnb): messages of types 7, 1 and 3, the last one empty;
 *   - semaphore set M (key K3, mode 0660, given to 1000:1001, at id
 *     M_ID): four semaphores with values 0, 5, 32767 and one from the
 *     token;
 *   - POSIX queue /w_ipc (20 messages of up to 300 bytes, above the
 *     default msg_max; mode 0640, given to 1000:1001), which R keeps open
 *     O_RDWR|O_NONBLOCK: messages of priorities 1, 9, 1 and 0, the last
 *     one empty;
 *   - POSIX queue /w_ipc.closed, which nobody has open: two messages.
 * Then R lowers msgmax below the longest message, shmmni below the number
 * of segments and fs.mqueue.msg_max below /w_ipc's size: limits that were
 * lower than what the objects needed when they were made.  Its child C
 * lives in the namespace too.  On the trigger R checks every id, key,
 * size, mode, owner, content, value, message (in order, with its type or
 * priority), its open queue's flags, the limits, and that C finds S1 by
 * its key.
 *
 * "notify": R asks for a signal when /w_ipc gets a message (mq_notify),
 *           which cr refuses.
 * "undo": R raises a semaphore of M with SEM_UNDO, which cr refuses.
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
#include <sys/sem.h>
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
#define M_ID     (4 * 32768 + 3)
#define NSEMS    4
#define MQ_MAXMSG  20
#define MQ_MSGSIZE 300
#define MQ_MSG_MAX 5                /* fs.mqueue.msg_max, below MQ_MAXMSG */

static const struct {
	long type;
	size_t len;
} msgs[] = { { 7, 100 }, { 1, 3000 }, { 3, 0 } };

static const struct {
	unsigned prio;
	size_t len;
} mq_msgs[] = { { 1, 40 }, { 9, 200 }, { 1, 300 }, { 0, 0 } };
static const size_t mq_order[] = { 1, 0, 2, 3 };   /* as mq_receive gives them */

static key_t k1, k2, k3;
static int s1, s2, q, m;
static mqd_t mq;
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

static unsigned short sem_values[NSEMS];

static void make_sems(void)
{
	struct semid_ds ds;

	sem_values[0] = 0;
	sem_values[1] = 5;
	sem_values[2] = 32767;
	sem_values[3] = (unsigned short)(wl_seed(30) % 30000 + 1);
	write_sysctl("/proc/sys/kernel/sem_next_id", M_ID);
	m = semget(k3, NSEMS, IPC_CREAT | IPC_EXCL | 0660);
	if (m < 0 || semctl(m, 0, SETALL, sem_values) < 0 || semctl(m, 0, IPC_STAT, &ds) < 0)
		wl_fatal("semaphore set: %s", strerror(errno));
	ds.sem_perm.uid = 1000;
	ds.sem_perm.gid = 1001;
	if (semctl(m, 0, IPC_SET, &ds) < 0)
		wl_fatal("semctl IPC_SET: %s", strerror(errno));
}

static void make_mqueues(void)
{
	struct mq_attr attr = { .mq_maxmsg = MQ_MAXMSG, .mq_msgsize = MQ_MSGSIZE };
	unsigned char text[MQ_MSGSIZE];
	mqd_t closed;

	write_sysctl("/proc/sys/fs/mqueue/msg_max", MQ_MAXMSG);
	mq = mq_open("/w_ipc", O_RDWR | O_CREAT | O_EXCL | O_NONBLOCK, 0640, &attr);
	closed = mq_open("/w_ipc.closed", O_WRONLY | O_CREAT | O_EXCL, 0600, NULL);
	if (mq == (mqd_t)-1 || closed == (mqd_t)-1)
		wl_fatal("mq_open: %s", strerror(errno));
	if (fchmod(mq, 0640) < 0 || fchown(mq, 1000, 1001) < 0)
		wl_fatal("chown /w_ipc: %s", strerror(errno));
	for (size_t i = 0; i < sizeof(mq_msgs) / sizeof(mq_msgs[0]); i++) {
		pattern(text, mq_msgs[i].len, 40 + i);
		if (mq_send(mq, (char *)text, mq_msgs[i].len, mq_msgs[i].prio) < 0)
			wl_fatal("mq_send: %s", strerror(errno));
	}
	snprintf((char *)text, sizeof(text), "closed %016llx", (unsigned long long)wl_token());
	if (mq_send(closed, (char *)text, strlen((char *)text), 3) < 0 || mq_send(closed, "", 0, 3) < 0)
		wl_fatal("mq_send: %s", strerror(errno));
	mq_close(closed);
	write_sysctl("/proc/sys/fs/mqueue/msg_max", MQ_MSG_MAX);
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

static void check_sems(void)
{
	unsigned short values[NSEMS];
	struct semid_ds ds;

	if (!wl_check(semget(k3, 0, 0) == m && m == M_ID, "key 0x%x names set %d, want %d (id %d)", (unsigned)k3,
		      semget(k3, 0, 0), m, M_ID) ||
	    !wl_check(semctl(m, 0, IPC_STAT, &ds) == 0 && semctl(m, 0, GETALL, values) == 0, "set %d: %s", m,
		      strerror(errno)))
		return;
	wl_check(ds.sem_nsems == NSEMS && (ds.sem_perm.mode & 0777) == 0660 && ds.sem_perm.uid == 1000 &&
		 ds.sem_perm.gid == 1001, "set: %lu semaphores, mode 0%o, owner %u:%u; want %d, 0660, 1000:1001",
		 (unsigned long)ds.sem_nsems, ds.sem_perm.mode & 0777, ds.sem_perm.uid, ds.sem_perm.gid, NSEMS);
	for (int i = 0; i < NSEMS; i++)
		wl_check(values[i] == sem_values[i], "semaphore %d has value %u, want %u", i, values[i], sem_values[i]);
}

static void check_mq_open(void)
{
	struct mq_attr attr;
	struct stat st;

	if (!wl_check(mq_getattr(mq, &attr) == 0 && fstat(mq, &st) == 0, "the open queue: %s", strerror(errno)))
		return;
	wl_check(attr.mq_maxmsg == MQ_MAXMSG && attr.mq_msgsize == MQ_MSGSIZE && attr.mq_curmsgs == 4 &&
		 (attr.mq_flags & O_NONBLOCK), "/w_ipc: maxmsg %ld msgsize %ld curmsgs %ld flags 0%lo; want %d %d 4 "
		 "O_NONBLOCK", attr.mq_maxmsg, attr.mq_msgsize, attr.mq_curmsgs, attr.mq_flags, MQ_MAXMSG, MQ_MSGSIZE);
	wl_check((st.st_mode & 0777) == 0640 && st.st_uid == 1000 && st.st_gid == 1001,
		 "/w_ipc: mode 0%o owner %u:%u; want 0640 1000:1001", st.st_mode & 0777, st.st_uid, st.st_gid);
	for (size_t k = 0; k < 4; k++) {
		size_t i = mq_order[k];
		unsigned char text[MQ_MSGSIZE], want[MQ_MSGSIZE];
		unsigned prio = 99;
		ssize_t n = mq_receive(mq, (char *)text, sizeof(text), &prio);

		pattern(want, mq_msgs[i].len, 40 + i);
		if (!wl_check(n == (ssize_t)mq_msgs[i].len && prio == mq_msgs[i].prio &&
			      memcmp(text, want, mq_msgs[i].len) == 0,
			      "/w_ipc message %zu: priority %u, %zd bytes (%s); want %u, %zu bytes", k, prio, n,
			      n < 0 ? strerror(errno) : "contents", mq_msgs[i].prio, mq_msgs[i].len))
			return;
	}
}

static void check_mq_closed(void)
{
	mqd_t closed = mq_open("/w_ipc.closed", O_RDONLY | O_NONBLOCK);
	char text[8192], want[64];
	unsigned prio = 0;
	ssize_t n;

	if (!wl_check(closed != (mqd_t)-1, "mq_open /w_ipc.closed: %s", strerror(errno)))
		return;
	snprintf(want, sizeof(want), "closed %016llx", (unsigned long long)wl_token());
	n = mq_receive(closed, text, sizeof(text), &prio);
	wl_check(n == (ssize_t)strlen(want) && prio == 3 && memcmp(text, want, strlen(want)) == 0,
		 "/w_ipc.closed: first message of %zd bytes, priority %u", n, prio);
	n = mq_receive(closed, text, sizeof(text), &prio);
	wl_check(n == 0 && prio == 3, "/w_ipc.closed: second message of %zd bytes, priority %u", n, prio);
	mq_close(closed);
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
	check_sems();
	check_mq_open();
	check_mq_closed();
	wl_read_path("/proc/sys/fs/mqueue/msg_max", limit, sizeof(limit));
	wl_check(atoi(limit) == MQ_MSG_MAX, "fs.mqueue.msg_max of the namespace is %s, want %d", limit, MQ_MSG_MAX);
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
	bool notify = argc > 2 && strcmp(argv[2], "notify") == 0;
	bool undo = argc > 2 && strcmp(argv[2], "undo") == 0;
	bool attached = argc > 2 && strcmp(argv[2], "attached") == 0;
	pid_t child;
	char c;

	wl_init(argc, argv);
	k1 = (key_t)(wl_seed(1) & 0x7fffffff) | 1;
	k2 = (key_t)(wl_seed(2) & 0x7fffffff) | 1;
	k3 = (key_t)(wl_seed(3) & 0x7fffffff) | 1;
	if (pipe(cmd) < 0 || pipe(answer) < 0)
		wl_fatal("pipe: %s", strerror(errno));
	if (unshare(CLONE_NEWIPC) < 0)
		wl_fatal("unshare(CLONE_NEWIPC): %s", strerror(errno));
	write_sysctl("/proc/sys/kernel/msgmnb", MSGMNB);
	make_segments();
	make_queue();
	make_sems();
	make_mqueues();
	if (notify) {
		struct sigevent ev = { .sigev_notify = SIGEV_SIGNAL, .sigev_signo = SIGUSR1 };
		mqd_t empty = mq_open("/w_ipc.empty", O_RDONLY | O_CREAT, 0600, NULL);

		signal(SIGUSR1, SIG_IGN);
		if (empty == (mqd_t)-1 || mq_notify(empty, &ev) < 0)
			wl_fatal("mq_notify: %s", strerror(errno));
	}
	if (undo) {
		struct sembuf op = { .sem_num = 0, .sem_op = 2, .sem_flg = SEM_UNDO };

		if (semop(m, &op, 1) < 0)
			wl_fatal("semop: %s", strerror(errno));
		sem_values[0] = 2;
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
