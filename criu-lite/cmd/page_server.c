/* cr page-server -D DIR --address A --port P [--wait-commit]: receives one
 * dump over TCP (from cr dump --page-server) and writes it into DIR as an
 * ordinary image directory, then exits: 0 once the dump is there whole and
 * durable, and with --wait-commit only once the dump has also said that
 * its tree is gone from the source (3 if it did not: the images are whole,
 * but restoring them could make a second copy of a tree still running). */
#include "cmd/commands.h"
#include "img/crypt.h"
#include "img/dir.h"
#include "img/kinds.h"
#include "img/msgs.h"
#include "img/round.h"
#include "img/sign.h"
#include "img/xfer.h"
#include "os/error.h"
#include "os/util.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static const char ps_usage[] =
	"usage: cr page-server -D DIR --address A --port P [--verify KEYFILE.pub]\n"
	"                      [--decrypt KEYFILE] [--wait-commit]\n"
	"  receives one dump sent by 'cr dump PID --page-server --address A --port P'\n"
	"  and writes it into DIR (created 0700), then exits (0: the dump is whole)\n"
	"  --port 0 picks a free port; the line 'listening on A port P' on stdout\n"
	"  says which, once the server accepts connections\n"
	"  --verify KEYFILE.pub  the dump (or pre-copy round) must be signed with\n"
	"                        this key, every image as signed (an encrypted dump:\n"
	"                        with --decrypt too)\n"
	"  --decrypt KEYFILE     the dump must be encrypted with this image key\n"
	"  Checked before the dump hears that the server holds it: a dump that\n"
	"  fails them is refused (and its tree left running), nothing kept in DIR.\n"
	"  --wait-commit: exit 0 only once the dump has also killed its tree (a final\n"
	"  dump), 3 if it did not; 'committed: the tree is gone from the source' says\n"
	"  so, and a restore there may then start at once ('cr page-server ... &&\n"
	"  cr restore ...')\n";

struct ps_args {
	const char *dir, *address;
	int port;
	const char *verify_key, *decrypt_key;
	struct cr_public_key key;   /* --verify's, loaded */
	bool wait_commit;
};

enum { OPT_VERIFY = 256, OPT_DECRYPT, OPT_WAIT_COMMIT };

#define EXIT_NOT_COMMITTED 3

static int ps_parse(int argc, char **argv, struct ps_args *a)
{
	static const struct option opts[] = {
		{ "images-dir", required_argument, NULL, 'D' },
		{ "address", required_argument, NULL, 'a' },
		{ "port", required_argument, NULL, 'p' },
		{ "verify", required_argument, NULL, OPT_VERIFY },
		{ "decrypt", required_argument, NULL, OPT_DECRYPT },
		{ "wait-commit", no_argument, NULL, OPT_WAIT_COMMIT },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	char *end;
	int c;

	while ((c = getopt_long(argc, argv, "D:h", opts, NULL)) != -1) {
		switch (c) {
		case 'D': a->dir = optarg; break;
		case 'a': a->address = optarg; break;
		case 'p':
			a->port = (int)strtol(optarg, &end, 10);
			if (*end != '\0' || a->port < 0 || a->port > 65535) {
				fprintf(stderr, "cr page-server: '%s' is not a port\n", optarg);
				return 2;
			}
			break;
		case OPT_VERIFY: a->verify_key = optarg; break;
		case OPT_DECRYPT: a->decrypt_key = optarg; break;
		case OPT_WAIT_COMMIT: a->wait_commit = true; break;
		case 'h': fputs(ps_usage, stdout); exit(0);
		default: fputs(ps_usage, stderr); return 2;
		}
	}
	if (a->dir == NULL || a->address == NULL || a->port < 0 || optind != argc) {
		fputs(ps_usage, stderr);
		return 2;
	}
	return 0;
}

/* 0 once committed, 1 for a client that closed without (its tree may
 * still run: a dump that failed after the transfer, or a pre-dump). */
static int await_commit(int sock, const char *dir, cr_error_t *err)
{
	bool committed;

	if (xfer_await_commit(sock, &committed, err) < 0)
		return cr_error_wrap(err, "wait for the dump's commit (the images in %s are whole)", dir);
	if (!committed) {
		printf("not committed: the dump ended without saying its tree is gone; the images in %s are whole\n",
		       dir);
		return 1;
	}
	printf("committed: the tree is gone from the source\n");
	return 0;
}

/* --verify, --decrypt: the signature over the inventory with the key
 * given, then the inventory read (with the image key, which must open it)
 * and every image against its signed hash.  The rounds before are not
 * checked again: each was, by the server that received it. */
static int check_received(int dirfd, void *arg, cr_error_t *err)
{
	const struct ps_args *a = arg;
	struct img_msgs m = { 0 };
	int ret;

	if (a->verify_key != NULL && img_sign_check(dirfd, a->dir, &a->key, err) < 0)
		return cr_error_wrap(err, "--verify %s", a->verify_key);
	ret = img_load(dirfd, CR_IMG_INVENTORY, 0, NULL, &m, err);
	if (ret < 0)
		cr_error_wrap(err, "%s", a->decrypt_key != NULL ? "--decrypt" : "--verify");
	else if (a->verify_key != NULL && img_round_digests(dirfd, (const InventoryEntry *)m.v[0], err) < 0)
		ret = cr_error_wrap(err, "--verify %s", a->verify_key);
	img_msgs_free(&m);
	return ret;
}

/* The keys, before the server listens: a key that cannot be read fails
 * it before any dump begins. */
static int load_keys(struct ps_args *a, cr_error_t *err)
{
	if ((a->verify_key != NULL || a->decrypt_key != NULL) && cr_sodium_ready(err) < 0)
		return -1;
	if (a->verify_key != NULL && cr_key_load_public(a->verify_key, &a->key, err) < 0)
		return cr_error_wrap(err, "--verify");
	if (a->decrypt_key != NULL && img_crypt_use_file(a->decrypt_key, err) < 0)
		return cr_error_wrap(err, "--decrypt");
	return 0;
}

static int serve(struct ps_args *a, int dirfd, cr_error_t *err)
{
	struct xfer_check check = { check_received, a };
	cleanup_close int lsock = -1, sock = -1;
	struct timespec t0, t1;
	uint64_t bytes;
	uint32_t files;
	double secs;
	int port;

	if (load_keys(a, err) < 0)
		return -1;
	lsock = xfer_listen(a->address, a->port, &port, err);
	if (lsock < 0)
		return -1;
	printf("listening on %s port %d\n", a->address, port);
	fflush(stdout);
	sock = accept4(lsock, NULL, NULL, SOCK_CLOEXEC);
	if (sock < 0)
		return cr_error(err, errno, "accept");
	clock_gettime(CLOCK_MONOTONIC, &t0);
	if (xfer_recv_dir(sock, dirfd, a->verify_key != NULL || a->decrypt_key != NULL ? &check : NULL, &files, &bytes,
			  err) < 0)
		return cr_error_wrap(err, "receive a dump into %s (nothing of it is left there)", a->dir);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	secs = (double)(timespec_ns(&t1) - timespec_ns(&t0)) / 1e9;
	printf("received %u files, %llu bytes, into %s in %.3f s (%.0f MiB/s)\n", files, (unsigned long long)bytes,
	       a->dir, secs, secs > 0 ? (double)bytes / 1048576.0 / secs : 0.0);
	fflush(stdout);
	return a->wait_commit ? await_commit(sock, a->dir, err) : 0;
}

int cmd_page_server(int argc, char **argv)
{
	struct ps_args a = { .port = -1 };
	cr_error_t err = NULL;
	cleanup_close int dirfd = -1;
	int r = ps_parse(argc, argv, &a);

	if (r != 0)
		return r;
	/* A migration's last round arrives while the tree is frozen on the
	 * other side: its wait for a CPU here is frozen time there. */
	(void)cr_priority_raise();
	dirfd = img_dir_open(a.dir, true, &err);
	if (dirfd >= 0 && img_dir_check_private(dirfd, a.dir, &err) == 0 && (r = serve(&a, dirfd, &err)) > 0)
		return EXIT_NOT_COMMITTED;
	if (dirfd < 0 || err != NULL) {
		cr_error_wrap(&err, "page server");
		cr_error_report(err);
		cr_error_release(&err);
		return 1;
	}
	return 0;
}
