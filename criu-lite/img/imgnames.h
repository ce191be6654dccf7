/* Names of the image files in a dump directory. */
#ifndef CR_IMGNAMES_H
#define CR_IMGNAMES_H

#include <stdio.h>
#include <sys/types.h>

#define IMG_INVENTORY "inventory.img"
#define IMG_PSTREE    "pstree.img"
#define IMG_FILES     "files.img"
#define IMG_NAME_MAX  64

/* prefix is one of "core", "mm", "pagemap", "pages", "fdinfo". */
static inline const char *img_task_name(char buf[IMG_NAME_MAX], const char *prefix, pid_t pid)
{
	snprintf(buf, IMG_NAME_MAX, "%s-%d.img", prefix, (int)pid);
	return buf;
}

#endif
