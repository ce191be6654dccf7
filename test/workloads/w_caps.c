/*
 * w_caps STATE_DIR
 *
 * Two threads with credentials of their own, each a state only a real
 * restore keeps (a re-executed program would start as full root):
 *   main thread: root, CAP_NET_RAW and CAP_SYS_BOOT dropped from every set,
 *     CAP_SYS_MODULE and CAP_MKNOD dropped from the bounding set too,
 *     CAP_NET_BIND_SERVICE inheritable and ambient, securebits KEEP_CAPS
 *     and NOROOT, no_new_privs;
 *   second thread: fs uid 1234, nothing effective (CAP_KILL and
 *     CAP_CHOWN kept permitted), no no_new_privs.
 * Each thread records its state, the main thread writes "ready"; on the
 * trigger each reads its state again and must find it unchanged: a
 * restore that leaves cr's full set anywhere, or gives one thread's
 * credentials to the other, fails here.
 */
#include "wl.h"

#include <errno.h>
#include <linux/capability.h>
#include <linux/securebits.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/fsuid.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#define BIT(c) (1ULL << (c))
#define FSUID 1234

struct creds {
	uint64_t eff, prm, inh, bnd, amb;
	long securebits, nnp;
	uid_t fsuid;
};

static int capget_self(uint64_t *eff, uint64_t *prm, uint64_t *inh)
{
	struct __user_cap_header_struct hdr = { .version = _LINUX_CAPABILITY_VERSION_3, .pid = 0 };
	struct __user_cap_data_struct d[2];

	if (syscall(SYS_capget, &hdr, d) < 0)
		return -1;
	*eff = d[0].effective | (uint64_t)d[1].effective << 32;
	*prm = d[0].permitted | (uint64_t)d[1].permitted << 32;
	*inh = d[0].inheritable | (uint64_t)d[1].inheritable << 32;
	return 0;
}

static int capset_self(uint64_t eff, uint64_t prm, uint64_t inh)
{
	struct __user_cap_header_struct hdr = { .version = _LINUX_CAPABILITY_VERSION_3, .pid = 0 };
	struct __user_cap_data_struct d[2] = {
		{ (uint32_t)eff, (uint32_t)prm, (uint32_t)inh },
		{ (uint32_t)(eff >> 32), (uint32_t)(prm >> 32), (uint32_t)(inh >> 32) },
	};

	return (int)syscall(SYS_capset, &hdr, d);
}

static void read_creds(struct creds *c)
{
	memset(c, 0, sizeof(*c));
	capget_self(&c->eff, &c->prm, &c->inh);
	for (int cap = 0; cap < 64; cap++) {
		if (prctl(PR_CAPBSET_READ, cap, 0, 0, 0) == 1)
			c->bnd |= BIT(cap);
		if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_IS_SET, cap, 0, 0) == 1)
			c->amb |= BIT(cap);
	}
	c->securebits = prctl(PR_GET_SECUREBITS, 0, 0, 0, 0);
	c->nnp = prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0);
	c->fsuid = (uid_t)setfsuid((uid_t)-1);   /* -1 changes nothing and tells the current one */
}

static void compare(const char *who, const struct creds *was, const struct creds *now)
{
	wl_check(now->eff == was->eff && now->prm == was->prm && now->inh == was->inh,
		 "%s: capabilities eff %llx prm %llx inh %llx, were %llx %llx %llx", who,
		 (unsigned long long)now->eff, (unsigned long long)now->prm, (unsigned long long)now->inh,
		 (unsigned long long)was->eff, (unsigned long long)was->prm, (unsigned long long)was->inh);
	wl_check(now->bnd == was->bnd && now->amb == was->amb, "%s: bounding %llx ambient %llx, were %llx %llx", who,
		 (unsigned long long)now->bnd, (unsigned long long)now->amb, (unsigned long long)was->bnd,
		 (unsigned long long)was->amb);
	wl_check(now->securebits == was->securebits && now->nnp == was->nnp && now->fsuid == was->fsuid,
		 "%s: securebits %lx nnp %ld fsuid %u, were %lx %ld %u", who, now->securebits, now->nnp,
		 (unsigned)now->fsuid, was->securebits, was->nnp, (unsigned)was->fsuid);
}

static struct creds second_was;
/* Stages (wl_set_stage): 1: the second thread is set up; 2: check; 3: checked. */

static void *second(void *arg)
{
	struct creds now;

	(void)arg;
	setfsuid(FSUID);
	if (capset_self(0, BIT(CAP_KILL) | BIT(CAP_CHOWN), 0) < 0)
		wl_fatal("second thread: capset: %s", strerror(errno));
	read_creds(&second_was);
	wl_set_stage(1);
	wl_wait_stage(2);
	read_creds(&now);
	compare("second thread", &second_was, &now);
	wl_set_stage(3);
	return NULL;
}

static void setup_main(void)
{
	uint64_t eff, prm, inh, gone = BIT(CAP_NET_RAW) | BIT(CAP_SYS_BOOT);

	capget_self(&eff, &prm, &inh);
	if (prctl(PR_CAPBSET_DROP, CAP_SYS_MODULE, 0, 0, 0) < 0 || prctl(PR_CAPBSET_DROP, CAP_MKNOD, 0, 0, 0) < 0 ||
	    prctl(PR_CAPBSET_DROP, CAP_NET_RAW, 0, 0, 0) < 0 || prctl(PR_CAPBSET_DROP, CAP_SYS_BOOT, 0, 0, 0) < 0)
		wl_fatal("PR_CAPBSET_DROP: %s", strerror(errno));
	if (capset_self(eff & ~gone, prm & ~gone, BIT(CAP_NET_BIND_SERVICE)) < 0)
		wl_fatal("capset: %s", strerror(errno));
	if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, CAP_NET_BIND_SERVICE, 0, 0) < 0)
		wl_fatal("PR_CAP_AMBIENT_RAISE: %s", strerror(errno));
	if (prctl(PR_SET_SECUREBITS, SECBIT_KEEP_CAPS | SECBIT_NOROOT, 0, 0, 0) < 0)
		wl_fatal("PR_SET_SECUREBITS: %s", strerror(errno));
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		wl_fatal("PR_SET_NO_NEW_PRIVS: %s", strerror(errno));
}

int main(int argc, char **argv)
{
	struct creds was, now;
	pthread_t t;

	wl_init(argc, argv);
	if (getuid() != 0)
		wl_fatal("w_caps must start as root");
	if (pthread_create(&t, NULL, second, NULL) != 0)
		wl_fatal("pthread_create");
	wl_wait_stage(1);
	setup_main();
	read_creds(&was);
	wl_ready();
	wl_wait_trigger();
	read_creds(&now);
	compare("main thread", &was, &now);
	wl_set_stage(2);
	wl_wait_stage(3);
	pthread_join(t, NULL);
	wl_finish();
}
