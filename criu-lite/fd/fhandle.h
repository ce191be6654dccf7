/* What inotify and fanotify share: the inodes their marks watch, as fdinfo
 * shows them (device, inode number and file handle), where they are now
 * and whether they still are there at restore; and the check of events
 * not read at dump. */
#ifndef CR_FD_FHANDLE_H
#define CR_FD_FHANDLE_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "os/error.h"

#define FHANDLE_MAX_BYTES 128

struct fhandle_info {
	dev_t dev;
	uint64_t ino;
	unsigned handle_bytes;
	int handle_type;
	unsigned char handle[FHANDLE_MAX_BYTES];
};

/* The device of an fdinfo "sdev:" number (the kernel's encoding). */
dev_t fhandle_sdev(unsigned sdev);

/* Parses " fhandle-bytes:N fhandle-type:T f_handle:HEX" at l into h's
 * handle; 0, or -1 when there is none or it is malformed. */
int fhandle_parse(const char *l, struct fhandle_info *h);

/* Where the inode is now: the handle opened through each mount of its
 * filesystem until one gives a path leading to that inode (so renames
 * are followed).  A path to free, or NULL (deleted, or no such mount). */
char *fhandle_path(const struct fhandle_info *h);

/* Restore: path (where the dump found the inode) is still inode ino;
 * what names it ("watched file") for the error. */
int fhandle_check_path(const char *what, const char *path, uint64_t ino, cr_error_t *err);

/* Dump: the notification group behind fd of pid has events not read yet.
 * Nothing can queue them again, so the dump refuses, or with skip
 * (--skip-in-flight) warns that they are dropped; what names it
 * ("inotify").  0, or -1 with err set. */
int fhandle_check_unread(pid_t pid, int fd, const char *what, bool skip, cr_error_t *err);

#endif
