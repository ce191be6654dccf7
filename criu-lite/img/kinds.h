/* The kinds of image file in a dump: one table, used by the writer, the
 * verifier, the restore loader and `cr show`.  No image name is spelled
 * anywhere else.
 *
 * A row: the kind's name in code (CR_IMG_<NAME>), its number (written in
 * every file's header: never reuse or renumber one, and bump
 * CR_FORMAT_VERSION when the table changes), the file it lives in
 * ("core" names core-PID.img for a per-process kind, "pstree" names
 * pstree.img for a single one), its shape, and the protobuf message its
 * entries are (page data has none).
 *
 * Shapes:
 *   IMG_ONE       exactly one message            IMG_LIST   any number of them
 *   IMG_PER_TASK  one file per process that is not a zombie, always written
 *   IMG_PAGES     page data (chunks, see pages.h), not messages
 *   IMG_STREAMED  written by its own kind as it dumps, not by the driver */
#ifndef CR_IMG_KINDS_H
#define CR_IMG_KINDS_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <protobuf-c/protobuf-c.h>

#define IMG_ONE      0x1u
#define IMG_LIST     0x2u
#define IMG_PER_TASK 0x4u
#define IMG_PAGES    0x8u
#define IMG_STREAMED 0x10u

/* X(NAME, number, file, shape, message descriptor) */
#define CR_IMG_KINDS(X)                                                                          \
	X(INVENTORY, 1, "inventory", IMG_ONE, &inventory_entry__descriptor)                      \
	X(PSTREE,    2, "pstree",    IMG_LIST, &pstree_entry__descriptor)                        \
	X(CORE,      3, "core",      IMG_PER_TASK | IMG_ONE, &core_entry__descriptor)            \
	X(MM,        4, "mm",        IMG_PER_TASK | IMG_ONE, &mm_entry__descriptor)              \
	X(PAGEMAP,   5, "pagemap",   IMG_PER_TASK | IMG_LIST | IMG_STREAMED, &pagemap_entry__descriptor) \
	X(PAGES,     6, "pages",     IMG_PER_TASK | IMG_PAGES | IMG_STREAMED, NULL)             \
	X(FILES,     7, "files",     IMG_LIST, &file_entry__descriptor)                          \
	X(FDINFO,    8, "fdinfo",    IMG_PER_TASK | IMG_LIST, &fd_entry__descriptor)            \
	X(NS,        9, "ns",        IMG_LIST, &ns_entry__descriptor)                            \
	X(SHMEM_PAGES, 10, "shmem-pages", IMG_PAGES | IMG_STREAMED, NULL)                     \
	X(EARLY_PAGES, 11, "early-pages", IMG_PER_TASK | IMG_PAGES | IMG_STREAMED, NULL)      \
	X(NETNS,     14, "netns",     IMG_LIST, &net_ns__descriptor)

enum cr_img_kind {
#define CR_IMG_ENUM(name, num, file, shape, desc) CR_IMG_##name = num,
	CR_IMG_KINDS(CR_IMG_ENUM)
#undef CR_IMG_ENUM
};

/* One more than the highest kind number, for arrays indexed by kind: the
 * size of a union whose members are one byte longer than each number. */
union cr_img_n_ {
#define CR_IMG_SIZE(name, num, file, shape, desc) char name[(num) + 1];
	CR_IMG_KINDS(CR_IMG_SIZE)
#undef CR_IMG_SIZE
};
#define CR_IMG_N sizeof(union cr_img_n_)

struct img_kind {
	uint32_t kind;
	const char *file;
	uint32_t shape;
	const ProtobufCMessageDescriptor *desc;   /* NULL: page data */
};

/* Every kind, in table order (the order `cr show` lists a process's). */
extern const struct img_kind img_kinds[];
extern const size_t img_n_kinds;

/* The row of kind, or NULL if there is none. */
const struct img_kind *img_kind(uint32_t kind);
/* "core", ...; "unknown" for a number no row has: for messages. */
const char *cr_img_kind_name(uint32_t kind);

static inline bool img_per_task(const struct img_kind *k)
{
	return (k->shape & IMG_PER_TASK) != 0;
}

/* The file name of kind for pid (ignored by single kinds). */
#define IMG_NAME_MAX 64
const char *img_name(char buf[IMG_NAME_MAX], uint32_t kind, pid_t pid);
/* Calls fn with every image file a dump of the processes pids has, but
 * the inventory: the whole dump's, then each process's, in table order.
 * Stops at the first fn that fails and returns its -1. */
typedef int (*img_file_fn)(void *arg, const struct img_kind *k, const char *name);
int img_each_file(const uint32_t *pids, size_t n_pids, img_file_fn fn, void *arg);

/* The kind a file name belongs to, and its pid for per-process kinds;
 * NULL if the name is no image's. */
const struct img_kind *img_kind_of_name(const char *name, pid_t *pid);

#endif
