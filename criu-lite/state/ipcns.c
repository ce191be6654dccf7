/* An ipc namespace's limits (/proc/sys/kernel/{shm,msg,sem}*,
 * /proc/sys/fs/mqueue: each namespace has its own), SysV shared memory
 * segments, message queues and semaphore sets, and POSIX message queues,
 * read from inside the namespace by helpers and recreated in a new one.
 *
 * Dump: a first helper lists every object (shmctl/msgctl/semctl with
 * *_STAT_ANY over each index, as ipcs does; POSIX message queues are the
 * files of an mqueue file system, which belongs to the ipc namespace of
 * whoever creates it: fsopen/fsmount, detached, so that no mount
 * namespace changes; a file opened there is a queue descriptor) and reads
 * the limits; a second, given room for them, copies every segment's
 * contents (shmat, read only), every SysV queue's messages (msgrcv with
 * MSG_COPY, which leaves them queued), every semaphore set's values
 * (GETALL), and every POSIX queue's messages: no call reads them without
 * taking them, so the helper takes them all (mq_timedreceive, highest
 * priority first, oldest first within one) and sends them back in that
 * order, which queues them as they were.  The tree is frozen meanwhile.
 * Refused, listing them: POSIX queues someone asked to be notified by
 * (mq_notify: sending the messages back would notify, and the
 * registration cannot be read), segments that are attached (the
 * attachment is the process's mapping), locked or removed, and segments
 * above SHM_MAX.  A process with a semaphore undo list (it used SEM_UNDO)
 * is refused by ipcns_check_undo: no kernel interface shows the
 * adjustments.
 *
 * Restore, in the new namespace: each SysV object created at its id
 * (/proc/sys/kernel/{shm,msg,sem}_next_id, read once by the next create)
 * with its key and mode, filled, and given its owner (IPC_SET); each
 * POSIX queue with its size, mode and owner, and its messages; then the
 * limits (see ipcns_restore for why after).  The creator (cuid, cgid,
 * cpid) and the times are the restorer's. */
#include "state/ipcns.h"
#include "os/nsenter.h"
#include "os/proc.h"
#include "os/util.h"
#include "os/xalloc.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/msg.h>
#include <sys/sem.h>
#include <linux/kcmp.h>
#include <mqueue.h>
#include <sys/shm.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define IPC_MAX    256          /* objects of each kind cr handles */
#define SHM_MAX    (32u << 20)  /* bytes of a segment: it travels in one message */
#define VALUE_MAX  64
#define MQ_MAX     64           /* POSIX message queues cr handles */
#define MQ_HARD_MSGMAX  65536   /* the kernel's bounds on a queue's mq_attr */
#define MQ_HARD_MSGSIZE (16u << 20)
#define MQ_PRIO_LIMIT   32768   /* MQ_PRIO_MAX */
#define SEM_NSEMS_MAX   32000   /* SEMMSL's bound */
#define SEMVAL_MAX      32767   /* SEMVMX */

/* The limits of an ipc namespace, as /proc/sys names them; written in
 * this order at restore. */
static const char *const sysctls[] = {
	"kernel/shmmax", "kernel/shmall", "kernel/shmmni", "kernel/msgmax", "kernel/msgmni", "kernel/msgmnb",
	"kernel/sem", "fs/mqueue/queues_max", "fs/mqueue/msg_max", "fs/mqueue/msgsize_max",
	"fs/mqueue/msg_default", "fs/mqueue/msgsize_default", "kernel/shm_rmid_forced",
};

#define N_SYSCTLS ARRAY_SIZE(sysctls)
#define MSGMAX_INDEX 3   /* sysctls[3] is "kernel/msgmax" */

/* ------------------------------------------------- the helpers, inside */

/* A POSIX message queue, as the first helper sees it. */
struct mq_info {
	char name[NAME_MAX + 1];
	struct stat st;            /* mode and owner */
	struct mq_attr attr;       /* maxmsg, msgsize, curmsgs */
	unsigned long qsize;       /* bytes of messages queued */
	int notify_pid;            /* who asked to be notified (mq_notify); 0: nobody */
};

/* What the first helper sees. */
struct ipc_list {
	int n_shm, n_msq, n_sem;   /* -1: more than IPC_MAX */
	struct { int id; struct shmid_ds ds; } shm[IPC_MAX];
	struct { int id; struct msqid_ds ds; } msq[IPC_MAX];
	struct { int id; struct semid_ds ds; } sem[IPC_MAX];
	int n_mq;                  /* -1: more than MQ_MAX */
	struct mq_info mq[MQ_MAX];
	char sysctl[N_SYSCTLS][VALUE_MAX];
};

/* The entries of the directory fd, one a line, into buf. */
static int list_dir(int fd, char *buf, size_t size)
{
	char dents[4096];
	size_t len = 0;
	long n;

	while ((n = syscall(SYS_getdents64, fd, dents, sizeof(dents))) > 0) {
		for (long off = 0; off < n;) {
			const char *name = dents + off + 19;   /* struct linux_dirent64's d_name */
			unsigned short reclen;
			size_t l = strlen(name);

			memcpy(&reclen, dents + off + 16, sizeof(reclen));
			off += reclen;
			if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0 || len + l + 2 > size)
				continue;
			memcpy(buf + len, name, l);
			len += l;
			buf[len++] = '\n';
		}
	}
	buf[len] = '\0';
	return n < 0 ? -1 : 0;
}

/* The root of an mqueue file system of the caller's ipc namespace, or
 * -1 with errno ENODEV on a kernel without POSIX message queues. */
static int mqueue_root(const char **what)
{
	int fs, mnt = -1, dir;

	*what = "fsopen(mqueue)";
	fs = (int)syscall(SYS_fsopen, "mqueue", FSOPEN_CLOEXEC);
	if (fs < 0)
		return -1;
	*what = "create an mqueue file system";
	if (syscall(SYS_fsconfig, fs, FSCONFIG_CMD_CREATE, NULL, NULL, 0) == 0)
		mnt = (int)syscall(SYS_fsmount, fs, FSMOUNT_CLOEXEC, 0);
	close(fs);
	if (mnt < 0)
		return -1;
	dir = openat(mnt, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	close(mnt);
	return dir;
}

/* A queue's file reads "QSIZE:N NOTIFY:N SIGNO:N NOTIFY_PID:N". */
static int read_mq_file(int fd, struct mq_info *q)
{
	char text[160], *p;
	ssize_t n = read(fd, text, sizeof(text) - 1);

	if (n < 0)
		return -1;
	text[n] = '\0';
	p = strstr(text, "QSIZE:");
	if (p != NULL)
		q->qsize = strtoul(p + 6, NULL, 10);
	p = strstr(text, "NOTIFY_PID:");
	if (p != NULL)
		q->notify_pid = (int)strtol(p + 11, NULL, 10);
	return 0;
}

static int look_at_mq(int dir, struct mq_info *q)
{
	int fd = openat(dir, q->name, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	int ret;

	if (fd < 0)
		return -1;
	ret = fstat(fd, &q->st) < 0 || syscall(SYS_mq_getsetattr, fd, NULL, &q->attr) < 0 ||
	      read_mq_file(fd, q) < 0 ? -1 : 0;
	close(fd);
	return ret;
}

static int list_mqueues(struct ipc_list *l, const char **what)
{
	char names[MQ_MAX * (NAME_MAX + 2)];
	int dir = mqueue_root(what), ret;

	l->n_mq = 0;
	if (dir < 0)
		return errno == ENODEV ? 0 : -1;   /* ENODEV: no POSIX message queues */
	*what = "list the POSIX message queues";
	ret = list_dir(dir, names, sizeof(names));
	for (char *p = names, *nl; ret == 0 && (nl = strchr(p, '\n')) != NULL; p = nl + 1) {
		struct mq_info *q = &l->mq[l->n_mq];

		if (l->n_mq == MQ_MAX) {
			l->n_mq = -1;
			break;
		}
		*nl = '\0';
		if ((size_t)(nl - p) >= sizeof(q->name)) {
			errno = ENAMETOOLONG;
			ret = -1;
			break;
		}
		memcpy(q->name, p, (size_t)(nl - p) + 1);
		*what = "look at a POSIX message queue";
		ret = look_at_mq(dir, q);
		l->n_mq++;
	}
	close(dir);
	return ret;
}

/* Every object of one kind: ctl(index, *_STAT_ANY) over the indices up
 * to what ctl(0, *_INFO) says is the highest in use. */
#define LIST_KIND(out, n, ctl, info_cmd, info_type, stat_cmd)                  \
	do {                                                                   \
		info_type info_;                                               \
		int max_ = ctl(0, info_cmd, (void *)&info_);                   \
                                                                               \
		n = 0;                                                         \
		for (int i_ = 0; max_ >= 0 && i_ <= max_; i_++) {              \
			int id_;                                               \
                                                                               \
			if (n == IPC_MAX) {                                    \
				n = -1;                                        \
				break;                                         \
			}                                                      \
			id_ = ctl(i_, stat_cmd, &out[n].ds);                   \
			if (id_ >= 0)                                          \
				out[n++].id = id_;                             \
		}                                                              \
	} while (0)

static int shm_ctl(int id, int cmd, void *buf)
{
	return shmctl(id, cmd, buf);
}

static int msq_ctl(int id, int cmd, void *buf)
{
	return msgctl(id, cmd, buf);
}

static int sem_ctl(int id, int cmd, void *buf)
{
	return semctl(id, 0, cmd, buf);
}

static int list_inside(void *arg, void *out, size_t size, const char **what)
{
	struct ipc_list *l = out;

	(void)arg, (void)size;
	LIST_KIND(l->shm, l->n_shm, shm_ctl, SHM_INFO, struct shm_info, SHM_STAT_ANY);
	LIST_KIND(l->msq, l->n_msq, msq_ctl, MSG_INFO, struct msginfo, MSG_STAT_ANY);
	LIST_KIND(l->sem, l->n_sem, sem_ctl, SEM_INFO, struct seminfo, SEM_STAT_ANY);
	for (size_t i = 0; i < N_SYSCTLS; i++) {
		char path[64];

		snprintf(path, sizeof(path), "/proc/sys/%s", sysctls[i]);
		*what = "read the namespace's limits";
		if (nsenter_read_file(path, l->sysctl[i], VALUE_MAX) < 0)
			return -1;
	}
	return list_mqueues(l, what);
}

/* What the second helper copies, back to back:
 *   per segment    [u64 length][contents]
 *   per queue      [u64 count] then per message [u64 length][long type][text]
 *   per set        [u16 value] for each semaphore
 *   per POSIX queue [u64 count] then per message [u64 length][u64 priority][text] */
struct copy_job {
	const struct ipc_list *l;
};

static int put_u64(char *out, size_t size, size_t *off, uint64_t v)
{
	if (*off + sizeof(v) > size)
		return -1;
	memcpy(out + *off, &v, sizeof(v));
	*off += sizeof(v);
	return 0;
}

static int copy_segment(int id, size_t len, char *out, size_t size, size_t *off)
{
	void *p;

	if (put_u64(out, size, off, len) < 0 || *off + len > size)
		return -1;
	p = shmat(id, NULL, SHM_RDONLY);
	if (p == (void *)-1)
		return -1;
	memcpy(out + *off, p, len);
	shmdt(p);
	*off += len;
	return 0;
}

static int copy_queue(int id, uint64_t count, char *out, size_t size, size_t *off)
{
	if (put_u64(out, size, off, count) < 0)
		return -1;
	for (uint64_t i = 0; i < count; i++) {
		size_t at = *off;
		ssize_t n;

		if (*off + 2 * sizeof(uint64_t) > size)
			return -1;
		*off += sizeof(uint64_t);
		n = msgrcv(id, out + *off, size - *off - sizeof(long), (long)i, IPC_NOWAIT | MSG_COPY);
		if (n < 0)
			return -1;
		memcpy(out + at, &(uint64_t){ (uint64_t)n }, sizeof(uint64_t));
		*off += sizeof(long) + (size_t)n;
	}
	return 0;
}

/* MSG_COPY copies no message longer than the namespace's msgmax, which
 * may have been lowered below messages queued before: it is raised to the
 * largest queue's bytes for the copy, and put back. */
static int set_msgmax(const char *value)
{
	int fd = open("/proc/sys/kernel/msgmax", O_WRONLY | O_CLOEXEC);
	ssize_t len = (ssize_t)strlen(value), n;

	if (fd < 0)
		return -1;
	n = write(fd, value, (size_t)len);
	close(fd);
	return n == len ? 0 : -1;
}

static int copy_queues(const struct ipc_list *l, char *out, size_t size, size_t *off)
{
	const char *msgmax = l->sysctl[MSGMAX_INDEX];
	unsigned long long need = 0;
	char raised[24];
	bool raise;
	int ret = 0, saved;

	for (int i = 0; i < l->n_msq; i++)
		if (l->msq[i].ds.__msg_cbytes > need)
			need = l->msq[i].ds.__msg_cbytes;
	raise = need > strtoull(msgmax, NULL, 10);
	snprintf(raised, sizeof(raised), "%llu", need);
	if (raise && set_msgmax(raised) < 0)
		return -1;
	for (int i = 0; i < l->n_msq && ret == 0; i++)
		ret = copy_queue(l->msq[i].id, l->msq[i].ds.msg_qnum, out, size, off);
	saved = errno;
	if (raise && set_msgmax(msgmax) < 0)
		return -1;
	errno = saved;
	return ret;
}

static int copy_sems(const struct ipc_list *l, char *out, size_t size, size_t *off)
{
	for (int i = 0; i < l->n_sem; i++) {
		size_t len = l->sem[i].ds.sem_nsems * sizeof(unsigned short);

		if (*off + len > size || semctl(l->sem[i].id, 0, GETALL, out + *off) < 0)
			return -1;
		*off += len;
	}
	return 0;
}

/* Sends back the messages taken from fd, from out + start to out + end. */
static int send_back(int fd, const char *out, size_t start, size_t end)
{
	int ret = 0;

	while (start < end) {
		uint64_t len, prio;

		memcpy(&len, out + start, sizeof(len));
		memcpy(&prio, out + start + sizeof(len), sizeof(prio));
		start += 2 * sizeof(uint64_t);
		if (syscall(SYS_mq_timedsend, fd, out + start, (size_t)len, (unsigned)prio, NULL) < 0)
			ret = -1;
		start += (size_t)len;
	}
	return ret;
}

/* Takes every message of the queue, then sends them all back. */
static int copy_mq(int dir, const struct mq_info *q, char *out, size_t size, size_t *off)
{
	int fd = openat(dir, q->name, O_RDWR | O_NONBLOCK | O_CLOEXEC), ret = 0, saved;
	size_t start, count_at = *off;
	uint64_t count = 0;

	if (fd < 0 || put_u64(out, size, off, 0) < 0)
		return -1;
	start = *off;
	while (ret == 0) {
		size_t at = *off + 2 * sizeof(uint64_t);
		unsigned prio;
		ssize_t n;

		if (at + (size_t)q->attr.mq_msgsize > size) {
			ret = -1;
			errno = ENOSPC;   /* more than the listing said: cr refuses */
			break;
		}
		n = syscall(SYS_mq_timedreceive, fd, out + at, (size_t)q->attr.mq_msgsize, &prio, NULL);
		if (n < 0)
			break;
		put_u64(out, size, off, (uint64_t)n);
		put_u64(out, size, off, prio);
		*off += (size_t)n;
		count++;
	}
	if (ret == 0 && errno != EAGAIN)
		ret = -1;
	saved = errno;
	if (send_back(fd, out, start, *off) < 0)
		ret = -1, saved = errno;
	memcpy(out + count_at, &count, sizeof(count));
	close(fd);
	errno = saved;
	return ret;
}

static int copy_mqs(const struct ipc_list *l, char *out, size_t size, size_t *off, const char **what)
{
	int dir, ret = 0;

	if (l->n_mq == 0)
		return 0;
	dir = mqueue_root(what);
	if (dir < 0)
		return -1;
	*what = "copy the messages of a POSIX message queue";
	for (int i = 0; i < l->n_mq && ret == 0; i++)
		ret = copy_mq(dir, &l->mq[i], out, size, off);
	close(dir);
	return ret;
}

static int copy_inside(void *arg, void *out, size_t size, const char **what)
{
	const struct ipc_list *l = ((struct copy_job *)arg)->l;
	size_t off = 0;

	*what = "copy a shared memory segment";
	for (int i = 0; i < l->n_shm; i++)
		if (copy_segment(l->shm[i].id, l->shm[i].ds.shm_segsz, out, size, &off) < 0)
			return -1;
	*what = "copy the messages of a queue (MSG_COPY needs CONFIG_CHECKPOINT_RESTORE)";
	if (copy_queues(l, out, size, &off) < 0)
		return -1;
	*what = "read the values of a semaphore set (GETALL)";
	if (copy_sems(l, out, size, &off) < 0)
		return -1;
	return copy_mqs(l, out, size, &off, what);
}

/* -------------------------------------------------------- dump, in cr */

static int check_mqs(const struct ipc_list *l, cr_error_t *err)
{
	if (l->n_mq < 0)
		return cr_error(err, 0, "it holds more than %d POSIX message queues: unsupported", MQ_MAX);
	for (int i = 0; i < l->n_mq; i++)
		if (l->mq[i].notify_pid != 0)
			return cr_error(err, 0, "its POSIX message queue /%s: pid %d asked to be notified of its "
					"messages (mq_notify): unsupported (the registration cannot be read)",
					l->mq[i].name, l->mq[i].notify_pid);
	return 0;
}

static int check_shm(const struct ipc_list *l, cr_error_t *err)
{
	for (int i = 0; i < l->n_shm; i++) {
		const struct shmid_ds *ds = &l->shm[i].ds;
		unsigned key = (unsigned)ds->shm_perm.__key;

		if (ds->shm_nattch > 0)
			return cr_error(err, 0, "its SysV shared memory segment key 0x%08x id %d is attached by %lu "
					"process%s: unsupported (a SysV shared memory mapping)", key, l->shm[i].id,
					(unsigned long)ds->shm_nattch, ds->shm_nattch == 1 ? "" : "es");
		if (ds->shm_perm.mode & (SHM_LOCKED | SHM_DEST))
			return cr_error(err, 0, "its SysV shared memory segment key 0x%08x id %d is %s: unsupported",
					key, l->shm[i].id, ds->shm_perm.mode & SHM_LOCKED ? "locked (SHM_LOCK)" :
					"removed");
		if (ds->shm_segsz > SHM_MAX)
			return cr_error(err, 0, "its SysV shared memory segment key 0x%08x id %d holds %zu bytes: "
					"unsupported (more than %u)", key, l->shm[i].id, ds->shm_segsz, SHM_MAX);
	}
	return 0;
}

static int check_list(const struct ipc_list *l, cr_error_t *err)
{
	if (l->n_shm < 0 || l->n_msq < 0 || l->n_sem < 0)
		return cr_error(err, 0, "it holds more than %d SysV objects of a kind: unsupported", IPC_MAX);
	if (check_mqs(l, err) < 0)
		return -1;
	return check_shm(l, err);
}

static SysvPerm *perm_of(struct arena *a, const struct ipc_perm *p, int id)
{
	SysvPerm *perm = arena_new(a, SysvPerm);

	sysv_perm__init(perm);
	perm->key = p->__key;
	perm->id = id;
	perm->mode = p->mode & 0777;
	perm->uid = p->uid;
	perm->gid = p->gid;
	return perm;
}

static void take_sysctls(struct arena *a, const struct ipc_list *l, IpcNs *ipc)
{
	ipc->sysctls = arena_array(a, IpcSysctl *, N_SYSCTLS);
	ipc->n_sysctls = N_SYSCTLS;
	for (size_t i = 0; i < N_SYSCTLS; i++) {
		IpcSysctl *s = arena_new(a, IpcSysctl);
		char value[VALUE_MAX];
		size_t len;

		snprintf(value, sizeof(value), "%s", l->sysctl[i]);
		len = strlen(value);
		while (len > 0 && (value[len - 1] == '\n' || value[len - 1] == ' '))
			value[--len] = '\0';
		ipc_sysctl__init(s);
		s->name = (char *)sysctls[i];
		s->value = arena_strdup(a, value);
		ipc->sysctls[i] = s;
	}
}

static uint64_t take_u64(const char *buf, size_t *off)
{
	uint64_t v;

	memcpy(&v, buf + *off, sizeof(v));
	*off += sizeof(v);
	return v;
}

static SysvShm *take_segment(struct arena *a, const struct ipc_list *l, int i, const char *buf, size_t *off)
{
	SysvShm *s = arena_new(a, SysvShm);
	size_t len = (size_t)take_u64(buf, off), used = len;

	sysv_shm__init(s);
	s->perm = perm_of(a, &l->shm[i].ds.shm_perm, l->shm[i].id);
	s->size = len;
	while (used > 0 && buf[*off + used - 1] == 0)
		used--;
	s->contents.len = used;
	s->contents.data = arena_memdup(a, buf + *off, used);
	*off += len;
	return s;
}

static SysvMsq *take_queue(struct arena *a, const struct ipc_list *l, int i, const char *buf, size_t *off)
{
	SysvMsq *q = arena_new(a, SysvMsq);
	uint64_t count = take_u64(buf, off);

	sysv_msq__init(q);
	q->perm = perm_of(a, &l->msq[i].ds.msg_perm, l->msq[i].id);
	q->qbytes = l->msq[i].ds.msg_qbytes;
	q->messages = arena_array(a, SysvMsg *, count);
	q->n_messages = count;
	for (uint64_t k = 0; k < count; k++) {
		SysvMsg *m = arena_new(a, SysvMsg);
		size_t len = (size_t)take_u64(buf, off);
		long type;

		memcpy(&type, buf + *off, sizeof(type));
		sysv_msg__init(m);
		m->type = type;
		m->text.len = len;
		m->text.data = arena_memdup(a, buf + *off + sizeof(type), len);
		*off += sizeof(type) + len;
		q->messages[k] = m;
	}
	return q;
}

static SysvSem *take_sem(struct arena *a, const struct ipc_list *l, int i, const char *buf, size_t *off)
{
	SysvSem *s = arena_new(a, SysvSem);
	size_t n = l->sem[i].ds.sem_nsems;

	sysv_sem__init(s);
	s->perm = perm_of(a, &l->sem[i].ds.sem_perm, l->sem[i].id);
	s->values = arena_array(a, uint32_t, n);
	s->n_values = n;
	for (size_t k = 0; k < n; k++) {
		unsigned short v;

		memcpy(&v, buf + *off, sizeof(v));
		*off += sizeof(v);
		s->values[k] = v;
	}
	return s;
}

static PosixMq *take_mq(struct arena *a, const struct mq_info *q, const char *buf, size_t *off)
{
	PosixMq *m = arena_new(a, PosixMq);
	uint64_t count = take_u64(buf, off);

	posix_mq__init(m);
	m->name = arena_strdup(a, q->name);
	m->mode = q->st.st_mode & 0777;
	m->uid = q->st.st_uid;
	m->gid = q->st.st_gid;
	m->maxmsg = (uint64_t)q->attr.mq_maxmsg;
	m->msgsize = (uint64_t)q->attr.mq_msgsize;
	m->messages = arena_array(a, PosixMqMsg *, count);
	m->n_messages = count;
	for (uint64_t k = 0; k < count; k++) {
		PosixMqMsg *msg = arena_new(a, PosixMqMsg);
		size_t len = (size_t)take_u64(buf, off);

		posix_mq_msg__init(msg);
		msg->prio = (uint32_t)take_u64(buf, off);
		msg->text.len = len;
		msg->text.data = arena_memdup(a, buf + *off, len);
		*off += len;
		m->messages[k] = msg;
	}
	return m;
}

/* Room for what the second helper copies; a POSIX queue's messages are
 * received into room for the largest its queue takes. */
static size_t copy_size(const struct ipc_list *l)
{
	size_t size = 64, slack = 0;

	for (int i = 0; i < l->n_shm; i++)
		size += sizeof(uint64_t) + l->shm[i].ds.shm_segsz;
	for (int i = 0; i < l->n_msq; i++)
		size += sizeof(uint64_t) + l->msq[i].ds.__msg_cbytes +
			l->msq[i].ds.msg_qnum * (sizeof(uint64_t) + sizeof(long));
	for (int i = 0; i < l->n_sem; i++)
		size += l->sem[i].ds.sem_nsems * sizeof(unsigned short);
	for (int i = 0; i < l->n_mq; i++) {
		const struct mq_info *q = &l->mq[i];

		size += sizeof(uint64_t) + q->qsize + (size_t)q->attr.mq_curmsgs * 2 * sizeof(uint64_t);
		if ((size_t)q->attr.mq_msgsize + 2 * sizeof(uint64_t) > slack)
			slack = (size_t)q->attr.mq_msgsize + 2 * sizeof(uint64_t);
	}
	return size + slack;
}

int ipcns_dump(struct arena *a, pid_t pid, IpcNs **out, cr_error_t *err)
{
	cleanup_free struct ipc_list *l = xcalloc(1, sizeof(*l));
	cleanup_free char *buf = NULL;
	struct copy_job job = { l };
	size_t size, off = 0;
	IpcNs *ipc;

	if (nsenter_run(pid, "ipc", list_inside, NULL, l, sizeof(*l), err) < 0 || check_list(l, err) < 0)
		return -1;
	size = copy_size(l);
	buf = xmalloc(size);
	if (nsenter_run(pid, "ipc", copy_inside, &job, buf, size, err) < 0)
		return cr_error_wrap(err, "its objects changed while they were copied, or");
	ipc = arena_new(a, IpcNs);
	ipc_ns__init(ipc);
	take_sysctls(a, l, ipc);
	ipc->shm = arena_array(a, SysvShm *, (size_t)l->n_shm);
	ipc->n_shm = (size_t)l->n_shm;
	for (int i = 0; i < l->n_shm; i++)
		ipc->shm[i] = take_segment(a, l, i, buf, &off);
	ipc->msq = arena_array(a, SysvMsq *, (size_t)l->n_msq);
	ipc->n_msq = (size_t)l->n_msq;
	for (int i = 0; i < l->n_msq; i++)
		ipc->msq[i] = take_queue(a, l, i, buf, &off);
	ipc->sem = arena_array(a, SysvSem *, (size_t)l->n_sem);
	ipc->n_sem = (size_t)l->n_sem;
	for (int i = 0; i < l->n_sem; i++)
		ipc->sem[i] = take_sem(a, l, i, buf, &off);
	ipc->mq = arena_array(a, PosixMq *, (size_t)l->n_mq);
	ipc->n_mq = (size_t)l->n_mq;
	for (int i = 0; i < l->n_mq; i++)
		ipc->mq[i] = take_mq(a, &l->mq[i], buf, &off);
	*out = ipc;
	return 0;
}

int ipcns_own_sem_sets(cr_error_t *err)
{
	struct seminfo info;

	if (semctl(0, 0, SEM_INFO, &info) >= 0)
		return info.semusz;
	if (errno == ENOSYS)
		return 0;   /* a kernel without SysV ipc */
	return cr_error(err, errno, "semctl(SEM_INFO)");
}

/* kcmp compares the undo lists' addresses with those of a process that
 * has none.  cr itself may have one: its threads share it (glibc makes
 * them with CLONE_SYSVSEM); a child it forks has none, so the child asks
 * and says in its exit status: 0 the same (none), 1 not, else 2 + errno. */
static long kcmp_undo_free(pid_t tid)
{
	pid_t child = fork();
	int status;

	if (child < 0)
		return -1;
	if (child == 0) {
		long r = syscall(SYS_kcmp, getpid(), tid, KCMP_SYSVSEM, 0, 0);

		_exit(r < 0 ? (errno < 250 ? 2 + errno : 2) : r != 0);
	}
	while (waitpid(child, &status, 0) < 0)
		if (errno != EINTR)
			return -1;
	if (!WIFEXITED(status))
		return errno = EIO, -1;
	if (WEXITSTATUS(status) >= 2)
		return errno = WEXITSTATUS(status) - 2, -1;
	return WEXITSTATUS(status);
}

int ipcns_check_undo(pid_t pid, pid_t tid, cr_error_t *err)
{
	long r = kcmp_undo_free(tid);

	if (r < 0 && errno == EOPNOTSUPP)
		return 0;   /* a kernel without SysV ipc */
	if (r < 0)
		return cr_error(err, errno, "pid %d thread %d: kcmp(KCMP_SYSVSEM)", pid, tid);
#define UNDO_WHY "it has a SysV semaphore undo list (it used SEM_UNDO, or made threads) and its ipc namespace " \
		 "holds semaphore sets: unsupported (no kernel interface shows the adjustments it may hold)"
	if (r != 0 && tid == pid)
		return cr_error(err, 0, "pid %d: " UNDO_WHY, pid);
	if (r != 0)
		return cr_error(err, 0, "pid %d thread %d: " UNDO_WHY, pid, tid);
#undef UNDO_WHY
	return 0;
}

/* -------------------------------------------------------------- restore */

static bool known_sysctl(const char *name)
{
	for (size_t i = 0; i < N_SYSCTLS; i++)
		if (strcmp(name, sysctls[i]) == 0)
			return true;
	return false;
}

static int validate_perm(const SysvPerm *p, const char *what, cr_error_t *err)
{
	if (p == NULL)
		return cr_error(err, 0, "a SysV %s without its key and id", what);
	if (p->id < 0 || p->mode > 0777)
		return cr_error(err, 0, "SysV %s id %d with mode 0%o", what, p->id, p->mode);
	return 0;
}

static int validate_msq(const SysvMsq *q, cr_error_t *err)
{
	uint64_t bytes = 0;

	if (validate_perm(q->perm, "message queue", err) < 0)
		return -1;
	if (q->qbytes > INT32_MAX)
		return cr_error(err, 0, "SysV message queue id %d holds up to %llu bytes", q->perm->id,
				(unsigned long long)q->qbytes);
	for (size_t k = 0; k < q->n_messages; k++) {
		if (q->messages[k]->type < 1)
			return cr_error(err, 0, "SysV message queue id %d: a message of type %lld", q->perm->id,
					(long long)q->messages[k]->type);
		bytes += q->messages[k]->text.len;
	}
	if (bytes > q->qbytes)
		return cr_error(err, 0, "SysV message queue id %d: %llu bytes of messages, more than it holds",
				q->perm->id, (unsigned long long)bytes);
	return 0;
}

static int validate_sem(const SysvSem *s, cr_error_t *err)
{
	if (validate_perm(s->perm, "semaphore set", err) < 0)
		return -1;
	if (s->n_values == 0 || s->n_values > SEM_NSEMS_MAX)
		return cr_error(err, 0, "SysV semaphore set id %d of %zu semaphores", s->perm->id, s->n_values);
	for (size_t k = 0; k < s->n_values; k++)
		if (s->values[k] > SEMVAL_MAX)
			return cr_error(err, 0, "SysV semaphore set id %d: semaphore %zu has value %u", s->perm->id, k,
					s->values[k]);
	return 0;
}

static int validate_mq(const PosixMq *m, cr_error_t *err)
{
	size_t len = strlen(m->name);

	if (len == 0 || len > NAME_MAX || strchr(m->name, '/') != NULL || strcmp(m->name, ".") == 0 ||
	    strcmp(m->name, "..") == 0)
		return cr_error(err, 0, "a POSIX message queue named '%s'", m->name);
	if (m->mode > 0777 || m->maxmsg == 0 || m->maxmsg > MQ_HARD_MSGMAX || m->msgsize == 0 ||
	    m->msgsize > MQ_HARD_MSGSIZE || m->n_messages > m->maxmsg)
		return cr_error(err, 0, "POSIX message queue /%s: mode 0%o, %llu messages of up to %llu bytes, "
				"holding %zu", m->name, m->mode, (unsigned long long)m->maxmsg,
				(unsigned long long)m->msgsize, m->n_messages);
	for (size_t k = 0; k < m->n_messages; k++)
		if (m->messages[k]->text.len > m->msgsize || m->messages[k]->prio >= MQ_PRIO_LIMIT)
			return cr_error(err, 0, "POSIX message queue /%s: message %zu of %zu bytes, priority %u",
					m->name, k, m->messages[k]->text.len, m->messages[k]->prio);
	return 0;
}

int ipcns_validate(const IpcNs *ipc, cr_error_t *err)
{
	for (size_t i = 0; i < ipc->n_sysctls; i++) {
		const IpcSysctl *s = ipc->sysctls[i];

		if (!known_sysctl(s->name) || strlen(s->value) >= VALUE_MAX ||
		    strspn(s->value, "0123456789 \t") != strlen(s->value))
			return cr_error(err, 0, "a limit %s = '%s' this cr does not set", s->name, s->value);
	}
	for (size_t i = 0; i < ipc->n_shm; i++) {
		const SysvShm *s = ipc->shm[i];

		if (validate_perm(s->perm, "shared memory segment", err) < 0)
			return -1;
		if (s->size == 0 || s->size > SHM_MAX || s->contents.len > s->size)
			return cr_error(err, 0, "SysV shared memory segment id %d of %llu bytes with %zu bytes of "
					"contents", s->perm->id, (unsigned long long)s->size, s->contents.len);
	}
	for (size_t i = 0; i < ipc->n_msq; i++)
		if (validate_msq(ipc->msq[i], err) < 0)
			return -1;
	for (size_t i = 0; i < ipc->n_sem; i++)
		if (validate_sem(ipc->sem[i], err) < 0)
			return -1;
	for (size_t i = 0; i < ipc->n_mq; i++)
		if (validate_mq(ipc->mq[i], err) < 0)
			return -1;
	return 0;
}

static int next_id(const char *kind, int id, cr_error_t *err)
{
	char name[32], value[16];

	snprintf(name, sizeof(name), "kernel/%s_next_id", kind);
	snprintf(value, sizeof(value), "%d", id);
	return proc_write_sysctl(name, value, err);
}

static const char *sysctl_value(const IpcNs *ipc, const char *name)
{
	for (size_t i = 0; i < ipc->n_sysctls; i++)
		if (strcmp(ipc->sysctls[i]->name, name) == 0)
			return ipc->sysctls[i]->value;
	return NULL;
}

/* The dumped owner and mode, into what IPC_SET takes (the creator and
 * the times stay the restorer's). */
static void give_perm(struct ipc_perm *to, const SysvPerm *p)
{
	to->uid = p->uid;
	to->gid = p->gid;
	to->mode = (unsigned short)p->mode;
}

static int make_segment(const SysvShm *s, cr_error_t *err)
{
	const SysvPerm *p = s->perm;
	struct shmid_ds ds;
	void *at;
	int id;

	if (next_id("shm", p->id, err) < 0)
		return -1;
	id = shmget(p->key, s->size, IPC_CREAT | IPC_EXCL | (int)p->mode);
	if (id < 0)
		return cr_error(err, errno, "shmget key 0x%08x, %llu bytes", (unsigned)p->key, (unsigned long long)s->size);
	if (id != p->id)
		return cr_error(err, 0, "shmget gave id %d, not %d", id, p->id);
	at = shmat(id, NULL, 0);
	if (at == (void *)-1)
		return cr_error(err, errno, "shmat id %d", id);
	memcpy(at, s->contents.data, s->contents.len);
	shmdt(at);
	if (shmctl(id, IPC_STAT, &ds) < 0)
		return cr_error(err, errno, "shmctl(IPC_STAT) id %d", id);
	give_perm(&ds.shm_perm, p);
	if (shmctl(id, IPC_SET, &ds) < 0)
		return cr_error(err, errno, "give shared memory segment id %d to %u:%u", id, p->uid, p->gid);
	return 0;
}

static int send_all(int id, const SysvMsq *q, cr_error_t *err)
{
	for (size_t k = 0; k < q->n_messages; k++) {
		const SysvMsg *m = q->messages[k];
		cleanup_free char *buf = xmalloc(sizeof(long) + m->text.len);
		long type = (long)m->type;

		memcpy(buf, &type, sizeof(type));
		memcpy(buf + sizeof(type), m->text.data, m->text.len);
		if (msgsnd(id, buf, m->text.len, IPC_NOWAIT) < 0)
			return cr_error(err, errno, "msgsnd to id %d, message %zu (%zu bytes)", id, k, m->text.len);
	}
	return 0;
}

/* A queue takes its size (msg_qbytes) from msgmnb when it is made:
 * msgmnb is set to it for the while, which needs no privilege, where
 * raising msg_qbytes later would (CAP_SYS_RESOURCE).  The dumped msgmnb
 * is written with the other limits, after every object. */
static int make_queue(const SysvMsq *q, cr_error_t *err)
{
	const SysvPerm *p = q->perm;
	struct msqid_ds ds;
	char qbytes[24];
	int id;

	snprintf(qbytes, sizeof(qbytes), "%llu", (unsigned long long)q->qbytes);
	if (proc_write_sysctl("kernel/msgmnb", qbytes, err) < 0 || next_id("msg", p->id, err) < 0)
		return -1;
	id = msgget(p->key, IPC_CREAT | IPC_EXCL | (int)p->mode);
	if (id < 0)
		return cr_error(err, errno, "msgget key 0x%08x", (unsigned)p->key);
	if (id != p->id)
		return cr_error(err, 0, "msgget gave id %d, not %d", id, p->id);
	if (send_all(id, q, err) < 0)
		return -1;
	if (msgctl(id, IPC_STAT, &ds) < 0)
		return cr_error(err, errno, "msgctl(IPC_STAT) id %d", id);
	give_perm(&ds.msg_perm, p);
	if (msgctl(id, IPC_SET, &ds) < 0)
		return cr_error(err, errno, "give message queue id %d to %u:%u", id, p->uid, p->gid);
	return 0;
}

static int make_sem(const SysvSem *s, cr_error_t *err)
{
	const SysvPerm *p = s->perm;
	cleanup_free unsigned short *values = xcalloc(s->n_values, sizeof(*values));
	struct semid_ds ds;
	int id;

	if (next_id("sem", p->id, err) < 0)
		return -1;
	id = semget(p->key, (int)s->n_values, IPC_CREAT | IPC_EXCL | (int)p->mode);
	if (id < 0)
		return cr_error(err, errno, "semget key 0x%08x, %zu semaphores", (unsigned)p->key, s->n_values);
	if (id != p->id)
		return cr_error(err, 0, "semget gave id %d, not %d", id, p->id);
	for (size_t k = 0; k < s->n_values; k++)
		values[k] = (unsigned short)s->values[k];
	if (semctl(id, 0, SETALL, values) < 0)
		return cr_error(err, errno, "semctl(SETALL) id %d", id);
	if (semctl(id, 0, IPC_STAT, &ds) < 0)
		return cr_error(err, errno, "semctl(IPC_STAT) id %d", id);
	give_perm(&ds.sem_perm, p);
	if (semctl(id, 0, IPC_SET, &ds) < 0)
		return cr_error(err, errno, "give semaphore set id %d to %u:%u", id, p->uid, p->gid);
	return 0;
}

/* Limits of a fresh namespace a queue may exceed (one made by a process
 * with CAP_SYS_RESOURCE, or before the limits were lowered): raised for
 * the while, the dumped values are written after every object. */
static int raise_mq_limits(const IpcNs *ipc, cr_error_t *err)
{
	uint64_t maxmsg = 0, msgsize = 0;
	char value[24];

	for (size_t i = 0; i < ipc->n_mq; i++) {
		if (ipc->mq[i]->maxmsg > maxmsg)
			maxmsg = ipc->mq[i]->maxmsg;
		if (ipc->mq[i]->msgsize > msgsize)
			msgsize = ipc->mq[i]->msgsize;
	}
	if (ipc->n_mq == 0)
		return 0;
	snprintf(value, sizeof(value), "%llu", (unsigned long long)maxmsg);
	if (proc_write_sysctl("fs/mqueue/msg_max", value, err) < 0)
		return -1;
	snprintf(value, sizeof(value), "%llu", (unsigned long long)msgsize);
	if (proc_write_sysctl("fs/mqueue/msgsize_max", value, err) < 0)
		return -1;
	snprintf(value, sizeof(value), "%d", MQ_MAX);
	return proc_write_sysctl("fs/mqueue/queues_max", value, err);
}

/* The queue is charged to the restorer's RLIMIT_MSGQUEUE, which cr
 * cannot raise past its hard limit without CAP_SYS_RESOURCE. */
static int make_mq(const PosixMq *m, cr_error_t *err)
{
	struct mq_attr attr = { .mq_maxmsg = (long)m->maxmsg, .mq_msgsize = (long)m->msgsize };
	cleanup_close int fd = (int)syscall(SYS_mq_open, m->name, O_RDWR | O_CREAT | O_EXCL | O_NONBLOCK | O_CLOEXEC,
					    (mode_t)m->mode, &attr);

	if (fd < 0 && errno == EMFILE)
		return cr_error(err, errno, "mq_open: the restorer's RLIMIT_MSGQUEUE is too low for %llu messages "
				"of %llu bytes", (unsigned long long)m->maxmsg, (unsigned long long)m->msgsize);
	if (fd < 0)
		return cr_error(err, errno, "mq_open");
	if (fchmod(fd, (mode_t)m->mode) < 0 || fchown(fd, m->uid, m->gid) < 0)
		return cr_error(err, errno, "give it mode 0%o and owner %u:%u", m->mode, m->uid, m->gid);
	for (size_t k = 0; k < m->n_messages; k++) {
		const PosixMqMsg *msg = m->messages[k];

		if (syscall(SYS_mq_timedsend, fd, msg->text.data, msg->text.len, msg->prio, NULL) < 0)
			return cr_error(err, errno, "mq_timedsend message %zu (%zu bytes, priority %u)", k,
					msg->text.len, msg->prio);
	}
	return 0;
}

/* While the objects are made, a fresh namespace's limits (as large as
 * they go, but msgmax) let them be: msgmax is raised for the while to the
 * longest message.  The dumped limits come after, which may be lower than
 * what the objects needed (a limit lowered once they existed), and
 * shm_rmid_forced last of them: set, it removes segments nobody has
 * attached. */
static int raise_msgmax(const IpcNs *ipc, cr_error_t *err)
{
	const char *dumped = sysctl_value(ipc, "kernel/msgmax");
	size_t longest = dumped ? strtoull(dumped, NULL, 10) : 0;
	char value[24];

	for (size_t i = 0; i < ipc->n_msq; i++)
		for (size_t k = 0; k < ipc->msq[i]->n_messages; k++)
			if (ipc->msq[i]->messages[k]->text.len > longest)
				longest = ipc->msq[i]->messages[k]->text.len;
	if (longest == 0)
		return 0;
	snprintf(value, sizeof(value), "%zu", longest);
	return proc_write_sysctl("kernel/msgmax", value, err);
}

int ipcns_restore(const IpcNs *ipc, cr_error_t *err)
{
	if (raise_msgmax(ipc, err) < 0 || raise_mq_limits(ipc, err) < 0)
		return -1;
	for (size_t i = 0; i < ipc->n_shm; i++)
		if (make_segment(ipc->shm[i], err) < 0)
			return cr_error_wrap(err, "SysV shared memory segment key 0x%08x id %d",
					     (unsigned)ipc->shm[i]->perm->key, ipc->shm[i]->perm->id);
	for (size_t i = 0; i < ipc->n_msq; i++)
		if (make_queue(ipc->msq[i], err) < 0)
			return cr_error_wrap(err, "SysV message queue key 0x%08x id %d",
					     (unsigned)ipc->msq[i]->perm->key, ipc->msq[i]->perm->id);
	for (size_t i = 0; i < ipc->n_sem; i++)
		if (make_sem(ipc->sem[i], err) < 0)
			return cr_error_wrap(err, "SysV semaphore set key 0x%08x id %d",
					     (unsigned)ipc->sem[i]->perm->key, ipc->sem[i]->perm->id);
	for (size_t i = 0; i < ipc->n_mq; i++)
		if (make_mq(ipc->mq[i], err) < 0)
			return cr_error_wrap(err, "POSIX message queue /%s", ipc->mq[i]->name);
	for (size_t i = 0; i < ipc->n_sysctls; i++)
		if (proc_write_sysctl(ipc->sysctls[i]->name, ipc->sysctls[i]->value, err) < 0)
			return -1;
	return 0;
}
