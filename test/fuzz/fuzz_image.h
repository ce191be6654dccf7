/* The fuzz target for the image reader (fuzz_image.c), also replayed by
 * test/unit/test_fuzz_regressions.c through the same entry point. */
#ifndef CR_FUZZ_IMAGE_H
#define CR_FUZZ_IMAGE_H

#include <stddef.h>
#include <stdint.h>

/* What the readers made of one input. */
struct cr_fuzz_result {
	uint32_t verified;     /* bit k: cr_img_verify accepted it as kind k */
	uint32_t opened;       /* bit k: cr_img_open accepted it as kind k */
	uint32_t read_to_end;  /* bit k: every frame decoded with kind k's own message */
	size_t messages;       /* messages decoded, with any descriptor */
	uint64_t page_bytes;   /* page data the pages reader handed out */
	int pages_complete;    /* the pages reader consumed the body exactly */
};

/* Writes data as an image file and runs every reader over it: cr_img_verify
 * and cr_img_open for each kind, cr_img_read_msg with each message
 * descriptor (each decoded message is also encoded as JSON), and the pages
 * reader.  Aborts when the readers contradict each other (verify accepts
 * what open refuses, or the reverse for message images).  res may be NULL. */
void cr_fuzz_image(const uint8_t *data, size_t size, struct cr_fuzz_result *res);

/* cr_fuzz_image on data, then on data with a trailer that matches it. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#endif
