/* A temporary directory for a unit test's images: made by a test's setup,
 * emptied and removed by its teardown. */
#ifndef CR_TEST_TMPDIR_H
#define CR_TEST_TMPDIR_H

#include <dirent.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define TMPDIR_TEMPLATE "/tmp/cr-unit-XXXXXX"
#define TMPDIR_LEN      sizeof(TMPDIR_TEMPLATE)

static inline int tmpdir_make(char dir[TMPDIR_LEN], int *dirfd)
{
	memcpy(dir, TMPDIR_TEMPLATE, TMPDIR_LEN);
	if (mkdtemp(dir) == NULL)
		return -1;
	*dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	return *dirfd < 0 ? -1 : 0;
}

static inline void tmpdir_remove(const char *dir, int dirfd)
{
	DIR *d = fdopendir(dup(dirfd));
	struct dirent *de;

	while (d != NULL && (de = readdir(d)) != NULL)
		if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
			unlinkat(dirfd, de->d_name, 0);
	if (d != NULL)
		closedir(d);
	close(dirfd);
	rmdir(dir);
}

/* The fixture of tests that need only the directory: cmocka setup and
 * teardown put it in *state. */
struct tmpdir_fixture {
	char dir[TMPDIR_LEN];
	int dirfd;
};

static inline int tmpdir_setup(void **state)
{
	struct tmpdir_fixture *f = calloc(1, sizeof(*f));

	if (f == NULL || tmpdir_make(f->dir, &f->dirfd) < 0) {
		free(f);
		return -1;
	}
	*state = f;
	return 0;
}

static inline int tmpdir_teardown(void **state)
{
	struct tmpdir_fixture *f = *state;

	tmpdir_remove(f->dir, f->dirfd);
	free(f);
	return 0;
}

#endif
