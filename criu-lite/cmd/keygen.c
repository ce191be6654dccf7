/* cr keygen KEYFILE: a key pair for signed dumps (img/keys.h). */
#include "cmd/commands.h"
#include "img/keys.h"

#include <getopt.h>
#include <stdio.h>

static const char keygen_usage[] =
	"usage: cr keygen KEYFILE\n"
	"\n"
	"Makes an Ed25519 key pair for signed dumps: KEYFILE holds the secret key\n"
	"(mode 0600, for cr dump --sign KEYFILE), KEYFILE.pub the public key (for\n"
	"cr restore --verify KEYFILE.pub and cr show --verify KEYFILE.pub).  Neither\n"
	"file may exist already.\n";

int cmd_keygen(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct cr_public_key pub;
	char fpr[CR_KEY_FPR_HEX];
	cr_error_t err = NULL;
	int c;

	optind = 1;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		if (c == 'h') {
			fputs(keygen_usage, stdout);
			return 0;
		}
		fputs("run 'cr keygen --help' for usage\n", stderr);
		return 2;
	}
	if (argc - optind != 1) {
		fputs("cr: keygen needs exactly one KEYFILE\nrun 'cr keygen --help' for usage\n", stderr);
		return 2;
	}
	if (cr_key_generate(argv[optind], &pub, &err) < 0) {
		cr_error_report(err);
		cr_error_release(&err);
		return 1;
	}
	printf("secret key %s, public key %s.pub (fingerprint %s)\n", argv[optind], argv[optind],
	       cr_key_fingerprint(&pub, fpr));
	return 0;
}
