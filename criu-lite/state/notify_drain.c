/* Notification fds (inotify, fanotify) handed back empty.  Their watches
 * and marks are made as the fd table is, and what the restore does after
 * (the process's other files opened, its mappings, its working directory)
 * queues events in them that the process never caused: it would read
 * them, and a later dump would find them unread and refuse.  Once every
 * path is opened (after chroot), the queued events are read away; a
 * fanotify event's fd is closed.  Events queued at dump were refused or,
 * with --skip-in-flight, dropped, so none of the process's is lost here. */
#include "state/files.h"
#include "state/state.h"

#include <errno.h>
#include <sys/fanotify.h>
#include <sys/ioctl.h>
#include <unistd.h>

static void close_event_fds(const char *buf, ssize_t n)
{
	const struct fanotify_event_metadata *ev = (const struct fanotify_event_metadata *)buf;

	for (; FAN_EVENT_OK(ev, n); ev = FAN_EVENT_NEXT(ev, n))
		if (ev->fd >= 0)
			close(ev->fd);
}

static int drain(int fd, bool fan, cr_error_t *err)
{
	_Alignas(struct fanotify_event_metadata) char buf[4096];
	int bytes = 0;

	while (ioctl(fd, FIONREAD, &bytes) == 0 && bytes > 0) {
		ssize_t n = read(fd, buf, sizeof(buf));

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return cr_error(err, n < 0 ? errno : 0, "fd %d: read away the events the restore made", fd);
		if (fan)
			close_event_fds(buf, n);
	}
	return 0;
}

static int notify_drain_setup(struct restore_ctx *ctx, struct restore_task *t, cr_error_t *err)
{
	for (size_t i = 0; i < t->n_fds; i++) {
		const FileEntry *fe = restore_file(ctx, t->fds[i]->file_id);

		if (fe == NULL || (fe->kind != FILE_KIND__FILE_INOTIFY && fe->kind != FILE_KIND__FILE_FANOTIFY))
			continue;
		if (drain((int)t->fds[i]->fd, fe->kind == FILE_KIND__FILE_FANOTIFY, err) < 0)
			return -1;
	}
	return 0;
}

const struct state_kind state_notify_drain = {
	.name = "notification fds",
	.setup = notify_drain_setup,
};
