/* Validation of a mount namespace's entry (state/mntns.c, mntns_validate)
 * and the path views built on it: a small valid table (cr's root mount,
 * inherited; a tmpfs with files on /tmp; a bind mount of /tmp on /var) is
 * damaged one way at a time, and each damage must be refused, above all
 * the ones that would let an image make files or mounts outside the
 * namespace's own tmpfs (a path with "..", a file made through a symlink
 * the image makes first, a bind source that is another inode). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>

#include "asserts.h"
#include "os/util.h"
#include "state/mntns.h"

#define N_FILES 4

struct model {
	MntNs ns;
	MountEntry root, tmpfs, bind;
	MountEntry *mounts[3];
	TmpfsFile files[N_FILES];
	TmpfsFile *file_v[N_FILES];
	char root_fstype[64], root_root[256];
};

/* cr's root mount as this process sees it: the entry every namespace
 * inherits. */
static void read_root(struct model *m)
{
	FILE *f = fopen("/proc/self/mountinfo", "r");
	char line[4096];

	assert_non_null(f);
	while (fgets(line, sizeof(line), f) != NULL) {
		char root[256], mp[256], fstype[64];
		const char *dash = strstr(line, " - ");

		if (sscanf(line, "%*u %*u %*u:%*u %255s %255s", root, mp) != 2 || dash == NULL ||
		    sscanf(dash + 3, "%63s", fstype) != 1)
			continue;
		if (strcmp(mp, "/") == 0) {
			snprintf(m->root_root, sizeof(m->root_root), "%s", root);
			snprintf(m->root_fstype, sizeof(m->root_fstype), "%s", fstype);
		}
	}
	fclose(f);
	assert_true(m->root_fstype[0] != '\0');
}

static void file(struct model *m, int i, const char *path, mode_t mode, const char *target)
{
	tmpfs_file__init(&m->files[i]);
	m->files[i].path = (char *)path;
	m->files[i].mode = mode;
	m->files[i].target = (char *)target;
	m->file_v[i] = &m->files[i];
}

static int setup(void **state)
{
	struct model *m = calloc(1, sizeof(*m));
	struct stat st;

	assert_non_null(m);
	read_root(m);
	assert_int_equal(stat("/tmp", &st), 0);
	mount_entry__init(&m->root);
	m->root.id = 1;
	m->root.how = MOUNT_HOW__MOUNT_INHERITED;
	m->root.mountpoint = "/";
	m->root.fstype = m->root_fstype;
	m->root.source = "x";
	m->root.root = m->root_root;
	m->root.fs_options = "";
	m->root.flags = MS_RELATIME;

	mount_entry__init(&m->tmpfs);
	m->tmpfs.id = 2;
	m->tmpfs.parent = 1;
	m->tmpfs.how = MOUNT_HOW__MOUNT_TMPFS;
	m->tmpfs.mountpoint = "/tmp";
	m->tmpfs.fstype = "tmpfs";
	m->tmpfs.source = "tmpfs";
	m->tmpfs.root = "/";
	m->tmpfs.fs_options = "size=1m";
	m->tmpfs.flags = MS_RELATIME | MS_NOSUID;
	file(m, 0, "", S_IFDIR | 0755, NULL);
	file(m, 1, "d", S_IFDIR | 0700, NULL);
	file(m, 2, "d/f", S_IFREG | 0644, NULL);
	file(m, 3, "l", S_IFLNK | 0777, "d");
	m->tmpfs.n_files = N_FILES;
	m->tmpfs.files = m->file_v;

	mount_entry__init(&m->bind);
	m->bind.id = 3;
	m->bind.parent = 1;
	m->bind.how = MOUNT_HOW__MOUNT_BIND;
	m->bind.mountpoint = "/var";
	m->bind.fstype = m->root_fstype;
	m->bind.source = "x";
	m->bind.root = "/tmp";
	m->bind.fs_options = "";
	m->bind.flags = MS_RELATIME | MS_RDONLY;
	m->bind.host_path = "/tmp";
	m->bind.has_dev = m->bind.has_ino = true;
	m->bind.dev = st.st_dev;
	m->bind.ino = st.st_ino;

	mnt_ns__init(&m->ns);
	m->mounts[0] = &m->root;
	m->mounts[1] = &m->tmpfs;
	m->mounts[2] = &m->bind;
	m->ns.mounts = m->mounts;
	m->ns.n_mounts = 3;
	*state = m;
	return 0;
}

static int teardown(void **state)
{
	free(*state);
	return 0;
}

static void expect_refused(struct model *m, const char *needle)
{
	cr_error_t err = NULL;

	assert_int_equal(mntns_validate(&m->ns, &err), -1);
	assert_err_has(&err, needle, NULL);
}

static void test_model_accepted(void **state)
{
	struct model *m = *state;
	cr_error_t err = NULL;

	assert_ok(mntns_validate(&m->ns, &err), &err);
}

static void test_paths_refused(void **state)
{
	struct model *m = *state;
	static const char *const bad[] = { "../etc", "d/../../x", "/abs", "d//f", "d/./f", "d/" };

	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		m->files[2].path = (char *)bad[i];
		expect_refused(m, "a file path");
	}
}

/* A file through the image's own symlink "l" -> "d", or before its
 * directory. */
static void test_made_through_symlink_refused(void **state)
{
	struct model *m = *state;

	m->files[2].path = "l/f";
	expect_refused(m, "a file path 'l/f'");
	m->files[2].path = "e/f";
	expect_refused(m, "a file path 'e/f'");
	m->files[1].path = "d/f";   /* the file before its directory */
	m->files[2].path = "d";
	m->files[2].mode = S_IFDIR | 0700;
	expect_refused(m, "a file path 'd/f'");
}

/* A second name of a file: only of a file made before it, of its type. */
static void test_links(void **state)
{
	struct model *m = *state;
	cr_error_t err = NULL;

	m->files[3].mode = S_IFREG | 0644;
	m->files[3].target = NULL;
	m->files[3].link_to = "d/f";
	assert_ok(mntns_validate(&m->ns, &err), &err);
	m->files[3].link_to = "d";
	expect_refused(m, "a file path 'l'");
	m->files[3].link_to = "x";
	expect_refused(m, "a file path 'l'");
	m->files[3].link_to = "d/f";
	m->files[3].mode = S_IFIFO | 0644;
	expect_refused(m, "a file path 'l'");
	m->files[3].mode = S_IFREG | 0644;
	m->files[2].link_to = "l";   /* a link to a later name */
	expect_refused(m, "a file path 'd/f'");
}

static void test_file_kinds_refused(void **state)
{
	struct model *m = *state;

	m->files[2].mode = S_IFCHR | 0600;
	expect_refused(m, "of mode");
	m->files[2].mode = S_IFREG | 0644;
	m->files[2].target = "x";
	expect_refused(m, "does not hold what its type needs");
	m->files[2].target = NULL;
	m->files[0].path = "r";
	expect_refused(m, "a file path 'r'");
	m->files[0].path = "";
	m->files[0].mode = S_IFREG | 0644;
	expect_refused(m, "without its root directory");
}

static void test_mounts_refused(void **state)
{
	struct model *m = *state;

	m->tmpfs.parent = 3;
	expect_refused(m, "is not the mount its path is on");
	m->tmpfs.parent = 1;
	m->tmpfs.flags |= MS_REMOUNT;
	expect_refused(m, "flags");
	m->tmpfs.flags = MS_RELATIME;
	m->tmpfs.propagation = 9;
	expect_refused(m, "propagation");
	m->tmpfs.propagation = MNTNS_PRIVATE;
	m->tmpfs.mountpoint = "tmp";
	expect_refused(m, "mountpoint");
	m->tmpfs.mountpoint = "/tmp";
	m->tmpfs.n_files = 0;
	expect_refused(m, "does not hold what its kind needs");
	m->tmpfs.n_files = N_FILES;
	m->root.how = MOUNT_HOW__MOUNT_TMPFS;
	expect_refused(m, "without cr's root");
	m->root.how = MOUNT_HOW__MOUNT_INHERITED;
	m->root.fstype = "no-such-fs";
	expect_refused(m, "is not in cr's now");
}

static void test_bind_source_refused(void **state)
{
	struct model *m = *state;

	m->bind.ino++;
	expect_refused(m, "another file than at dump");
	m->bind.ino--;
	m->bind.has_ino = false;
	expect_refused(m, "does not hold what its kind needs");
}

/* A bind of a part of the tmpfs: only of a tmpfs or proc before it, by a
 * path below its root. */
static void test_bind_of_refused(void **state)
{
	struct model *m = *state;
	cr_error_t err = NULL;
	char buf[64];

	m->bind.host_path = NULL;
	m->bind.has_dev = m->bind.has_ino = false;
	m->bind.has_bind_of = true;
	m->bind.bind_of = 2;
	m->bind.root = "/d";
	assert_ok(mntns_validate(&m->ns, &err), &err);
	assert_int_equal(mntns_host_view(&m->ns, "/var/f", buf, sizeof(buf)), 0);
	m->bind.root = "/../etc";
	expect_refused(m, "cr will not look for");
	m->bind.root = "/d";
	m->bind.bind_of = 1;
	expect_refused(m, "no tmpfs or proc made before it");
	m->bind.bind_of = 3;
	expect_refused(m, "no tmpfs or proc made before it");
	m->bind.bind_of = 2;
	m->bind.host_path = "/tmp";
	expect_refused(m, "does not hold what its kind needs");
}

static void test_host_view(void **state)
{
	struct model *m = *state;
	char buf[256];

	assert_int_equal(mntns_host_view(&m->ns, "/usr/bin/x", buf, sizeof(buf)), 1);
	assert_string_equal(buf, "/usr/bin/x");
	assert_int_equal(mntns_host_view(&m->ns, "/tmp/d/f", buf, sizeof(buf)), 0);
	assert_int_equal(mntns_host_view(&m->ns, "/tmpx", buf, sizeof(buf)), 1);
	assert_string_equal(buf, "/tmpx");
	assert_int_equal(mntns_host_view(&m->ns, "/var/a/b", buf, sizeof(buf)), 1);
	assert_string_equal(buf, "/tmp/a/b");
	assert_int_equal(mntns_host_view(&m->ns, "/var", buf, sizeof(buf)), 1);
	assert_string_equal(buf, "/tmp");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_model_accepted, setup, teardown),
		cmocka_unit_test_setup_teardown(test_paths_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_made_through_symlink_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_links, setup, teardown),
		cmocka_unit_test_setup_teardown(test_file_kinds_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_mounts_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bind_source_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bind_of_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_host_view, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
