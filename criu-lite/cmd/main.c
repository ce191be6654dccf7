/* cr: the command line. */
#include "os/caps.h"
#include "cmd/commands.h"
#include "dump/dump.h"
#include "img/dir.h"
#include "os/error.h"
#include "os/log.h"
#include "restore/restore.h"
#include "state/landlock.h"
#include "os/supervise.h"
#include "os/util.h"
#include "os/xalloc.h"

#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char usage_text[] =
	"usage: cr <command> [options]\n"
	"\n"
	"commands:\n"
	"  dump <pid> -D DIR     checkpoint the process <pid> into DIR\n"
	"  pre-dump <pid> -D DIR copy the memory of <pid> while it runs on (a\n"
	"                        pre-copy round; the next round, --prev-images-dir,\n"
	"                        copies only the pages written since)\n"
	"  restore [-D] DIR      restore the process in DIR with its pid\n"
	"  show [-D] DIR         print what a dump holds (--json for all of it)\n"
	"  unlock [-D] DIR       delete the network lock (nftables tables) of the\n"
	"                        dump's TCP connections: a dump restored on\n"
	"                        another host, or given up (the pre-copy rounds\n"
	"                        before it are not needed; --decrypt KEYFILE for\n"
	"                        an encrypted one)\n"
	"  check                 which kernel features cr relies on are here\n"
	"  keygen KEYFILE        make a signing key: KEYFILE (secret, 0600) and\n"
	"                        KEYFILE.pub (for --verify)\n"
	"  keygen --secret FILE  make an image key (0600) for --encrypt/--decrypt\n"
	"  page-server -D DIR --address A --port P [--verify KEYFILE.pub]\n"
	"                        [--decrypt KEYFILE] [--wait-commit]\n"
	"                        receive one dump over TCP into DIR\n"
	"\n"
	"dump options:\n"
	"  -D, --images-dir DIR  where to write the images (created 0700)\n"
	"  -t, --tree PID        the process to dump (instead of the argument)\n"
	"  -R, --leave-running   let the process run on after the dump\n"
	"      --compress        store page data zlib-compressed\n"
	"  -j, --shell-job       the process uses the caller's terminal\n"
	"      --sign KEYFILE    sign the dump with the secret key KEYFILE\n"
	"      --encrypt KEYFILE encrypt every image (page data and metadata) with\n"
	"                        the image key KEYFILE (cr keygen --secret)\n"
	"      --page-server     send the dump to a page server (--address A\n"
	"                        --port P) before the tree is let go or killed;\n"
	"                        without -D the images are kept nowhere else\n"
	"      --ext-unix-sk     unix sockets connected to a named socket outside\n"
	"                        the tree are dumped; the restore connects them\n"
	"                        to that name again (a new connection)\n"
	"      --skip-in-flight  TCP connections not accepted yet by a listening\n"
	"                        socket are dropped (their clients see a reset),\n"
	"                        and inotify, fanotify and netlink messages not\n"
	"                        read yet, instead of refusing the dump\n"
	"      --tcp-established established TCP connections are dumped (TCP_REPAIR);\n"
	"                        their traffic is dropped (nftables) until restored\n"
	"      --network-lock nftables|skip  how (default nftables), or not at\n"
	"                        all: skip leaves the peers' packets to the caller\n"
	"      --external veth:NAME  the veth NAME of a network namespace of the\n"
	"                        tree may have its peer outside (repeatable)\n"
	"      --prev-images-dir REL  (dump, pre-dump) the round before, a\n"
	"                        pre-dump, at REL from DIR (e.g. ../1): pages\n"
	"                        unchanged since are left there\n"
	"\n"
	"restore options:\n"
	"  -D, --images-dir DIR  the dump to restore\n"
	"  -d, --detach          return once the process runs (default: wait\n"
	"                        for it and exit with its exit status)\n"
	"  -j, --shell-job       give the process this terminal\n"
	"      --pid-backend B   clone3 (default), clone2 or ns_last_pid\n"
	"      --new-pidns       restore inside a fresh pid namespace, with the\n"
	"                        pids the tree had in its own namespace\n"
	"      --cgroup-root PATH  put the tree's cgroups below PATH in each\n"
	"                        hierarchy (created with their dumped limits)\n"
	"      --verify KEYFILE  restore only a dump signed with the key whose\n"
	"                        public half is KEYFILE, every image unchanged\n"
	"                        (and every pre-copy round it takes pages from)\n"
	"      --tcp-close       established TCP connections of the dump come back\n"
	"                        closed (an unconnected socket) instead\n"
	"      --decrypt KEYFILE restore a dump encrypted with the image key\n"
	"                        KEYFILE (every image is decrypted and checked\n"
	"                        before any process is created)\n"
	"      --external veth:NAME=HOSTNAME  make the peer of veth NAME, which\n"
	"                        was outside, in cr's network namespace as HOSTNAME\n"
	"      --join-ns net:PATH  restore into the network namespace at PATH\n"
	"                        (/run/netns/NAME, ...) instead of a new one\n"
	"\n"
	"common options:\n"
	"  -v                    more messages (repeat for more)\n"
	"  -o, --log-file FILE   log file (default: dump.log / restore.log in DIR)\n"
	"  -h, --help            this text\n";

enum { OPT_COMPRESS = 256, OPT_PID_BACKEND, OPT_NEW_PIDNS, OPT_CGROUP_ROOT, OPT_SIGN, OPT_VERIFY, OPT_ENCRYPT,
       OPT_DECRYPT, OPT_EXT_UNIX_SK, OPT_PAGE_SERVER, OPT_ADDRESS, OPT_PORT, OPT_SKIP_IN_FLIGHT,
       OPT_TCP_ESTABLISHED, OPT_EXTERNAL, OPT_JOIN_NS, OPT_NETWORK_LOCK, OPT_TCP_CLOSE,
       OPT_PREV_IMAGES_DIR };

static const struct option long_opts[] = {
	{ "images-dir", required_argument, NULL, 'D' },
	{ "tree", required_argument, NULL, 't' },
	{ "leave-running", no_argument, NULL, 'R' },
	{ "compress", no_argument, NULL, OPT_COMPRESS },
	{ "shell-job", no_argument, NULL, 'j' },
	{ "detach", no_argument, NULL, 'd' },
	{ "pid-backend", required_argument, NULL, OPT_PID_BACKEND },
	{ "new-pidns", no_argument, NULL, OPT_NEW_PIDNS },
	{ "cgroup-root", required_argument, NULL, OPT_CGROUP_ROOT },
	{ "sign", required_argument, NULL, OPT_SIGN },
	{ "verify", required_argument, NULL, OPT_VERIFY },
	{ "encrypt", required_argument, NULL, OPT_ENCRYPT },
	{ "decrypt", required_argument, NULL, OPT_DECRYPT },
	{ "ext-unix-sk", no_argument, NULL, OPT_EXT_UNIX_SK },
	{ "page-server", no_argument, NULL, OPT_PAGE_SERVER },
	{ "address", required_argument, NULL, OPT_ADDRESS },
	{ "port", required_argument, NULL, OPT_PORT },
	{ "skip-in-flight", no_argument, NULL, OPT_SKIP_IN_FLIGHT },
	{ "tcp-established", no_argument, NULL, OPT_TCP_ESTABLISHED },
	{ "network-lock", required_argument, NULL, OPT_NETWORK_LOCK },
	{ "tcp-close", no_argument, NULL, OPT_TCP_CLOSE },
	{ "external", required_argument, NULL, OPT_EXTERNAL },
	{ "join-ns", required_argument, NULL, OPT_JOIN_NS },
	{ "prev-images-dir", required_argument, NULL, OPT_PREV_IMAGES_DIR },
	{ "log-file", required_argument, NULL, 'o' },
	{ "help", no_argument, NULL, 'h' },
	{ NULL, 0, NULL, 0 },
};

struct cli {
	const char *command;
	const char *dir;
	const char *log_file;
	const char *pid_arg;
	const char *backend;
	int verbosity;
	struct dump_opts dump;
	struct restore_opts restore;
};

static int usage_error(const char *fmt, const char *arg)
{
	fprintf(stderr, "cr: ");
	fprintf(stderr, fmt, arg);
	fprintf(stderr, "\nrun 'cr --help' for usage\n");
	return 2;
}

/* --external veth:NAME (dump) or veth:NAME=HOSTNAME (restore). */
static int parse_external(struct cli *cli, const char *arg)
{
	bool restore = strcmp(cli->command, "restore") == 0;
	const char *name = arg + strlen("veth:"), *eq = strchr(name, '=');
	const char ***v = restore ? &cli->restore.ext_veth : &cli->dump.ext_veth;
	size_t *n = restore ? &cli->restore.n_ext_veth : &cli->dump.n_ext_veth;

	if (strncmp(arg, "veth:", 5) != 0 || name[0] == '\0' || name[0] == '=')
		return usage_error("--external '%s': only veth:NAME (dump) and veth:NAME=HOSTNAME (restore) are known", arg);
	if (restore ? (eq == NULL || eq[1] == '\0') : eq != NULL)
		return usage_error(restore ? "--external '%s': a restore needs veth:NAME=HOSTNAME" :
				   "--external '%s': a dump takes veth:NAME", arg);
	*v = xreallocarray(*v, *n + 1, sizeof(**v));
	(*v)[(*n)++] = name;
	return 0;
}

static int parse_args(int argc, char **argv, struct cli *cli)
{
	int c;

	while ((c = getopt_long(argc, argv, "D:t:Rjdo:vh", long_opts, NULL)) != -1) {
		switch (c) {
		case 'D': cli->dir = optarg; break;
		case 't': cli->pid_arg = optarg; break;
		case 'R': cli->dump.leave_running = true; break;
		case OPT_COMPRESS: cli->dump.compress = true; break;
		case 'j': cli->dump.shell_job = cli->restore.shell_job = true; break;
		case 'd': cli->restore.detach = true; break;
		case OPT_PID_BACKEND: cli->backend = optarg; break;
		case OPT_NEW_PIDNS: cli->restore.new_pidns = true; break;
		case OPT_CGROUP_ROOT:
			if (optarg[0] != '/' || strstr(optarg, "..") != NULL)
				return usage_error("--cgroup-root must be an absolute path without '..', not '%s'", optarg);
			cli->restore.cgroup_root = optarg;
			break;
		case OPT_SIGN: cli->dump.sign_key = optarg; break;
		case OPT_VERIFY: cli->restore.verify_key = optarg; break;
		case OPT_ENCRYPT: cli->dump.encrypt_key = optarg; break;
		case OPT_DECRYPT: cli->restore.decrypt_key = optarg; break;
		case OPT_EXT_UNIX_SK: cli->dump.ext_unix_sk = true; break;
		case OPT_PAGE_SERVER: cli->dump.page_server = true; break;
		case OPT_ADDRESS: cli->dump.ps_address = optarg; break;
		case OPT_PORT: {
			char *end;
			long port = strtol(optarg, &end, 10);

			if (*end != '\0' || port <= 0 || port > 65535)
				return usage_error("'%s' is not a TCP port", optarg);
			cli->dump.ps_port = (int)port;
			break;
		}
		case OPT_SKIP_IN_FLIGHT: cli->dump.skip_in_flight = true; break;
		case OPT_TCP_ESTABLISHED: cli->dump.tcp_established = true; break;
		case OPT_TCP_CLOSE: cli->restore.tcp_close = true; break;
		case OPT_NETWORK_LOCK:
			if (strcmp(optarg, "nftables") != 0 && strcmp(optarg, "skip") != 0)
				return usage_error("--network-lock '%s': nftables or skip", optarg);
			cli->dump.network_lock_skip = strcmp(optarg, "skip") == 0;
			break;
		case OPT_EXTERNAL:
			if (parse_external(cli, optarg) != 0)
				return 2;
			break;
		case OPT_JOIN_NS:
			if (strncmp(optarg, "net:", 4) != 0 || optarg[4] == '\0')
				return usage_error("--join-ns '%s': only net:PATH is supported", optarg);
			cli->restore.join_net = optarg + 4;
			break;
		case OPT_PREV_IMAGES_DIR: cli->dump.prev_dir = optarg; break;
		case 'o': cli->log_file = optarg; break;
		case 'v': cli->verbosity++; break;
		case 'h': fputs(usage_text, stdout); exit(0);
		default: return 2;
		}
	}
	for (; optind < argc; optind++) {
		if ((strcmp(cli->command, "dump") == 0 || strcmp(cli->command, "pre-dump") == 0) && cli->pid_arg == NULL)
			cli->pid_arg = argv[optind];
		else if ((strcmp(cli->command, "restore") == 0 || strcmp(cli->command, "unlock") == 0) && cli->dir == NULL)
			cli->dir = argv[optind];
		else
			return usage_error("unexpected argument '%s'", argv[optind]);
	}
	return 0;
}

/* The log: the file given with -o (the user's choice, opened as given), or
 * default_name in the image directory, made afresh there without following
 * anything planted in its place.  The image directory must open (an error);
 * the log need not (a warning). */
static int open_log(const struct cli *cli, bool create_dir, const char *default_name, cr_error_t *err)
{
	cr_error_t log_err = NULL;
	int dirfd = img_dir_open(cli->dir, create_dir, err);
	int ret;

	if (dirfd < 0)
		return -1;
	if (img_dir_check_private(dirfd, cli->dir, err) < 0) {
		close(dirfd);
		return -1;
	}
	if (cli->log_file != NULL)
		ret = cr_log_open_file(cli->log_file);
	else
		ret = cr_log_open_fd(img_dir_replace(dirfd, default_name, &log_err));
	close(dirfd);
	if (ret < 0)
		fprintf(stderr, "cr: warning: cannot write log file %s%s%s\n",
			cli->log_file != NULL ? cli->log_file : default_name, log_err ? ": " : "",
			log_err ? log_err->msg : "");
	cr_error_release(&log_err);
	return 0;
}

static int report(cr_error_t *err)
{
	cr_error_report(*err);
	cr_error_release(err);
	return 1;
}

struct dump_job {
	pid_t pid;
	struct dump_opts *opts;
};

static int dump_work(void *arg)
{
	struct dump_job *job = arg;
	cr_error_t err = NULL;

	if ((job->opts->pre_dump ? cr_pre_dump : cr_dump)(job->pid, job->opts, &err) < 0) {
		cr_error_report(err);
		cr_error_release(&err);
		return 1;
	}
	return 0;
}

/* --page-server without -D: the images are written to a private directory
 * on tmpfs first, and removed once sent (or not). */
static char scratch[64];

static const char *scratch_dir_make(cr_error_t *err)
{
	snprintf(scratch, sizeof(scratch), "/dev/shm/cr-dump.XXXXXX");
	if (mkdtemp(scratch) == NULL) {
		cr_error(err, errno, "make a directory for the images in /dev/shm");
		scratch[0] = '\0';
		return NULL;
	}
	return scratch;
}

static void scratch_dir_remove(void)
{
	DIR *d;
	struct dirent *de;

	if (scratch[0] == '\0' || (d = opendir(scratch)) == NULL)
		return;
	while ((de = readdir(d)) != NULL)
		if (de->d_name[0] != '.' || (de->d_name[1] != '\0' && strcmp(de->d_name, "..") != 0))
			unlinkat(dirfd(d), de->d_name, 0);
	closedir(d);
	rmdir(scratch);
}

static int run_dump(struct cli *cli)
{
	struct dump_job job;
	cr_error_t err = NULL;
	char *end;
	long pid;
	int status;

	if (cli->pid_arg == NULL)
		return usage_error("%s needs a pid", cli->command);
	if (cli->dump.pre_dump && cli->dump.leave_running)
		return usage_error("%s runs on without -R", "pre-dump");
	if (cli->dump.page_server != (cli->dump.ps_address != NULL && cli->dump.ps_port > 0))
		return usage_error("%s", "--page-server goes with --address A --port P, and they with it");
	if (cli->dir == NULL && !cli->dump.page_server)
		return usage_error("%s needs -D DIR", "dump");
	pid = strtol(cli->pid_arg, &end, 10);
	if (*end != '\0' || pid <= 0 || pid > INT_MAX)
		return usage_error("'%s' is not a pid", cli->pid_arg);
	if (cli->dir == NULL && (cli->dir = scratch_dir_make(&err)) == NULL)
		return report(&err);
	cli->dump.dir = cli->dir;
	if (open_log(cli, true, "dump.log", &err) < 0) {
		cr_error_wrap(&err, "dump of pid %ld refused (the process is left untouched)", pid);
		scratch_dir_remove();
		return report(&err);
	}
	job.pid = (pid_t)pid;
	job.opts = &cli->dump;
	status = supervise(dump_work, &job);
	scratch_dir_remove();
	return status;
}

static int run_restore(struct cli *cli)
{
	enum pid_backend backend = PID_BACKEND_AUTO;
	cr_error_t err = NULL;
	int status = 0;

	if (cli->dir == NULL)
		return usage_error("%s needs an image directory", "restore");
	if (cli->backend && pidsel_backend_parse(cli->backend, &backend, &err) < 0) {
		cr_error_report(err);
		cr_error_release(&err);
		return 2;
	}
	cli->restore.dir = cli->dir;
	if (open_log(cli, false, "restore.log", &err) < 0) {
		cr_error_wrap(&err, "restore refused");
		return report(&err);
	}
	if (cr_restore(&cli->restore, backend, &status, &err) < 0)
		return report(&err);
	return status;
}

static int run_unlock(struct cli *cli)
{
	cr_error_t err = NULL;

	if (cli->dir == NULL)
		return usage_error("%s needs an image directory", "unlock");
	cli->restore.dir = cli->dir;
	if (cr_unlock(&cli->restore, &err) < 0)
		return report(&err);
	return 0;
}

int main(int argc, char **argv)
{
	struct cli cli = { 0 };

	if (argc < 2)
		return usage_error("%s", "no command given");
	if (strcmp(argv[1], LANDLOCK_PROBE_ARG) == 0)
		return landlock_probe_main(argc, argv);
	if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "help") == 0) {
		fputs(usage_text, stdout);
		return 0;
	}
	if (strcmp(argv[1], "show") == 0)
		return cmd_show(argc - 1, argv + 1);
	if (strcmp(argv[1], "check") == 0)
		return cmd_check(argc - 1, argv + 1);
	if (strcmp(argv[1], "keygen") == 0)
		return cmd_keygen(argc - 1, argv + 1);
	if (strcmp(argv[1], "page-server") == 0)
		return cmd_page_server(argc - 1, argv + 1);
	cli.command = argv[1];
	if (parse_args(argc - 1, argv + 1, &cli) != 0)
		return 2;
	cr_log_set_level(LOG_WARN + cli.verbosity);
	cli.dump.pre_dump = strcmp(cli.command, "pre-dump") == 0;
	if (strcmp(cli.command, "dump") == 0 || strcmp(cli.command, "restore") == 0 || cli.dump.pre_dump ||
	    strcmp(cli.command, "unlock") == 0) {
		cr_error_t err = NULL;

		if (caps_require(cli.command, &err) < 0) {
			cr_error_report(err);
			cr_error_release(&err);
			return 1;
		}
	}
	if (strcmp(cli.command, "dump") == 0 || cli.dump.pre_dump)
		return run_dump(&cli);
	if (strcmp(cli.command, "restore") == 0)
		return run_restore(&cli);
	if (strcmp(cli.command, "unlock") == 0)
		return run_unlock(&cli);
	return usage_error("unknown command '%s'", cli.command);
}
