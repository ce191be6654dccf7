/* cr show: a dump directory decoded into memory (show.c), printed as a
 * readable summary (show_summary.c) or as JSON (show.c). */
#ifndef CR_SHOW_H
#define CR_SHOW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>
#include <protobuf-c/protobuf-c.h>

#include "img/kinds.h"

/* One chunk of page data, as its header describes it. */
struct show_chunk {
	uint64_t offset;         /* of the chunk header in the file */
	uint32_t raw_len;
	uint32_t stored_len;
	bool zlib;
};

struct show_pages {
	struct show_chunk *chunks;
	size_t n_chunks;
	size_t n_zlib;
	uint64_t raw_bytes;
	uint64_t stored_bytes;
};

struct show_image {
	char *name;
	const struct img_kind *type;
	pid_t pid;               /* per-task images; 0 for the others */
	bool loaded;             /* decoded completely (else error says why) */
	char *error;
	ProtobufCMessage **msgs;
	size_t n_msgs;
	struct show_pages pages;
};

/* Whether a dump is signed, and by whom (img/sign.h). */
enum show_signed { SHOW_UNSIGNED, SHOW_SIGNED, SHOW_SIGNATURE_DAMAGED };

struct show_dump {
	const char *dir;
	const char *verify_key;      /* --verify: the public key to check with, or NULL */
	enum show_signed sign;
	char signer[17];             /* SHOW_SIGNED: the key's fingerprint */
	bool verified;               /* --verify: the signature and every hash held */
	const char *decrypt_key;     /* --decrypt: the image key file, or NULL */
	bool encrypted;              /* the inventory is encrypted (img/crypt.h), */
	char key_id[17];             /* with the key of this id */
	bool locked;                 /* encrypted, and no key given: nothing decoded */
	struct show_image *images;   /* inventory, pstree, files, then per task */
	size_t n_images;
	char **unknown;              /* *.img files that are no image kind cr knows */
	size_t n_unknown;
	char **errors;               /* every problem found, each naming its file */
	size_t n_errors;
};

/* The image of that kind (and pid, for per-task kinds) if it was decoded. */
const struct show_image *show_find(const struct show_dump *d, uint32_t kind, pid_t pid);
/* Its only message (inventory, core, mm), or NULL. */
const ProtobufCMessage *show_find_one(const struct show_dump *d, uint32_t kind, pid_t pid);

/* What a process's pagemap lists: pages with bytes in pages-PID.img
 * (late) and early-pages-PID.img (early, in cow VMAs), pages shared with
 * the parent (no bytes), and entries. */
struct show_page_counts {
	uint64_t late, early, parents;
	uint64_t prev;               /* unchanged since the round before (pre-copy) */
	size_t runs;
};
void show_count_pages(const struct show_dump *d, pid_t pid, struct show_page_counts *c);

/* The readable summary. */
void show_summary(FILE *out, const struct show_dump *d);

#endif
