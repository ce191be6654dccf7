#include "img/kinds.h"

#include "core.pb-c.h"
#include "files.pb-c.h"
#include "inventory.pb-c.h"
#include "mm.pb-c.h"
#include "netns.pb-c.h"
#include "ns.pb-c.h"
#include "pstree.pb-c.h"

#include <limits.h>
#include <stdio.h>
#include <string.h>

const struct img_kind img_kinds[] = {
#define CR_IMG_ROW(name, num, file, shape, desc) { CR_IMG_##name, file, shape, desc },
	CR_IMG_KINDS(CR_IMG_ROW)
#undef CR_IMG_ROW
};

const size_t img_n_kinds = sizeof(img_kinds) / sizeof(img_kinds[0]);

#define CR_IMG_FITS(name, num, file, shape, desc) \
	_Static_assert(num > 0 && num < CR_IMG_N, "CR_IMG_N is above every kind number");
CR_IMG_KINDS(CR_IMG_FITS)
#undef CR_IMG_FITS

const struct img_kind *img_kind(uint32_t kind)
{
	for (size_t i = 0; i < img_n_kinds; i++)
		if (img_kinds[i].kind == kind)
			return &img_kinds[i];
	return NULL;
}

const char *cr_img_kind_name(uint32_t kind)
{
	const struct img_kind *k = img_kind(kind);

	return k ? k->file : "unknown";
}

const char *img_name(char buf[IMG_NAME_MAX], uint32_t kind, pid_t pid)
{
	const struct img_kind *k = img_kind(kind);

	if (k == NULL)
		snprintf(buf, IMG_NAME_MAX, "unknown-%u.img", kind);
	else if (img_per_task(k))
		snprintf(buf, IMG_NAME_MAX, "%s-%d.img", k->file, (int)pid);
	else
		snprintf(buf, IMG_NAME_MAX, "%s.img", k->file);
	return buf;
}

int img_each_file(const uint32_t *pids, size_t n_pids, img_file_fn fn, void *arg)
{
	char name[IMG_NAME_MAX];

	for (size_t k = 0; k < img_n_kinds; k++)
		if (!img_per_task(&img_kinds[k]) && img_kinds[k].kind != CR_IMG_INVENTORY &&
		    fn(arg, &img_kinds[k], img_name(name, img_kinds[k].kind, 0)) < 0)
			return -1;
	for (size_t i = 0; i < n_pids; i++)
		for (size_t k = 0; k < img_n_kinds; k++)
			if (img_per_task(&img_kinds[k]) &&
			    fn(arg, &img_kinds[k], img_name(name, img_kinds[k].kind, (pid_t)pids[i])) < 0)
				return -1;
	return 0;
}

/* "123" exactly: a positive pid without leading zeros. */
static bool parse_pid(const char *s, size_t len, pid_t *pid)
{
	long v = 0;

	if (len == 0 || len > 10 || (len > 1 && s[0] == '0'))
		return false;
	for (size_t i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		v = v * 10 + (s[i] - '0');
	}
	if (v <= 0 || v > INT_MAX)
		return false;
	*pid = (pid_t)v;
	return true;
}

const struct img_kind *img_kind_of_name(const char *name, pid_t *pid)
{
	size_t len = strlen(name);

	*pid = 0;
	if (len < 5 || strcmp(name + len - 4, ".img") != 0)
		return NULL;
	len -= 4;
	for (size_t i = 0; i < img_n_kinds; i++) {
		const struct img_kind *k = &img_kinds[i];
		size_t flen = strlen(k->file);

		if (len < flen || strncmp(name, k->file, flen) != 0)
			continue;
		if (!img_per_task(k) && len == flen)
			return k;
		if (img_per_task(k) && len > flen && name[flen] == '-' && parse_pid(name + flen + 1, len - flen - 1, pid))
			return k;
	}
	return NULL;
}
