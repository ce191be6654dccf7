/* cr page-server -D DIR --address A --port P: receives one dump over TCP
 * (from cr dump --page-server) and writes it into DIR as an ordinary image
 * directory, then exits: 0 once the dump is there whole and durable. */
#include "cmd/commands.h"
#include "img/dir.h"
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
	"usage: cr page-server -D DIR --address A --port P\n"
	"  receives one dump sent by 'cr dump PID --page-server --address A --port P'\n"
	"  and writes it into DIR (created 0700), then exits (0: the dump is whole)\n"
	"  --port 0 picks a free port; the line 'listening on A port P' on stdout\n"
	"  says which, once the server accepts connections\n";

struct ps_args {
	const char *dir, *address;
	int port;
};

static int ps_parse(int argc, char **argv, struct ps_args *a)
{
	static const struct option opts[] = {
		{ "images-dir", required_argument, NULL, 'D' },
		{ "address", required_argument, NULL, 'a' },
		{ "port", required_argument, NULL, 'p' },
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

static int serve(const struct ps_args *a, int dirfd, cr_error_t *err)
{
	cleanup_close int lsock = -1, sock = -1;
	struct timespec t0, t1;
	uint64_t bytes;
	uint32_t files;
	double secs;
	int port;

	lsock = xfer_listen(a->address, a->port, &port, err);
	if (lsock < 0)
		return -1;
	printf("listening on %s port %d\n", a->address, port);
	fflush(stdout);
	sock = accept4(lsock, NULL, NULL, SOCK_CLOEXEC);
	if (sock < 0)
		return cr_error(err, errno, "accept");
	clock_gettime(CLOCK_MONOTONIC, &t0);
	if (xfer_recv_dir(sock, dirfd, &files, &bytes, err) < 0)
		return cr_error_wrap(err, "receive a dump into %s (nothing of it is left there)", a->dir);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	secs = (double)(timespec_ns(&t1) - timespec_ns(&t0)) / 1e9;
	printf("received %u files, %llu bytes, into %s in %.3f s (%.0f MiB/s)\n", files, (unsigned long long)bytes,
	       a->dir, secs, secs > 0 ? (double)bytes / 1048576.0 / secs : 0.0);
	return 0;
}

int cmd_page_server(int argc, char **argv)
{
	struct ps_args a = { .port = -1 };
	cr_error_t err = NULL;
	cleanup_close int dirfd = -1;
	int r = ps_parse(argc, argv, &a);

	if (r != 0)
		return r;
	dirfd = img_dir_open(a.dir, true, &err);
	if (dirfd < 0 || img_dir_check_private(dirfd, a.dir, &err) < 0 || serve(&a, dirfd, &err) < 0) {
		cr_error_wrap(&err, "page server");
		cr_error_report(err);
		cr_error_release(&err);
		return 1;
	}
	return 0;
}
