/* cr keygen KEYFILE: a key pair for signed dumps; cr keygen --secret
 * KEYFILE: an image key for encrypted dumps (img/keys.h). */
#include "cmd/commands.h"
#include "img/crypt.h"
#include "img/keys.h"

#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>

static const char keygen_usage[] =
	"usage: cr keygen KEYFILE\n"
	"       cr keygen --secret KEYFILE\n"
	"\n"
	"Makes an Ed25519 key pair for signed dumps: KEYFILE holds the secret key\n"
	"(mode 0600, for cr dump --sign KEYFILE), KEYFILE.pub the public key (for\n"
	"cr restore --verify KEYFILE.pub and cr show --verify KEYFILE.pub).  Neither\n"
	"file may exist already.\n"
	"\n"
	"  -s, --secret   make an image key instead: 32 random bytes in KEYFILE\n"
	"                 (mode 0600), for cr dump --encrypt KEYFILE and cr restore /\n"
	"                 cr show --decrypt KEYFILE.  Keep it as secret as the dumps'\n"
	"                 memory: whoever holds it can read and forge the images.\n";

static int keygen_secret(const char *path)
{
	struct cr_image_key key;
	char id[CR_CRYPT_KEY_ID_HEX];
	cr_error_t err = NULL;

	if (cr_image_key_generate(path, &err) < 0 || cr_image_key_load(path, &key, &err) < 0) {
		cr_error_report(err);
		cr_error_release(&err);
		return 1;
	}
	printf("image key %s (key id %s)\n", path, cr_image_key_id_hex(&key, id));
	cr_image_key_wipe(&key);
	return 0;
}

int cmd_keygen(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ "secret", no_argument, NULL, 's' },
		{ NULL, 0, NULL, 0 },
	};
	bool secret = false;
	struct cr_public_key pub;
	char fpr[CR_KEY_FPR_HEX];
	cr_error_t err = NULL;
	int c;

	optind = 1;
	while ((c = getopt_long(argc, argv, "hs", opts, NULL)) != -1) {
		if (c == 'h') {
			fputs(keygen_usage, stdout);
			return 0;
		}
		if (c == 's') {
			secret = true;
			continue;
		}
		fputs("run 'cr keygen --help' for usage\n", stderr);
		return 2;
	}
	if (argc - optind != 1) {
		fputs("cr: keygen needs exactly one KEYFILE\nrun 'cr keygen --help' for usage\n", stderr);
		return 2;
	}
	if (secret)
		return keygen_secret(argv[optind]);
	if (cr_key_generate(argv[optind], &pub, &err) < 0) {
		cr_error_report(err);
		cr_error_release(&err);
		return 1;
	}
	printf("secret key %s, public key %s.pub (fingerprint %s)\n", argv[optind], argv[optind],
	       cr_key_fingerprint(&pub, fpr));
	return 0;
}
