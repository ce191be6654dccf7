#include "os/xalloc.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

void xalloc_failed(size_t size)
{
	fprintf(stderr, "cr: out of memory (allocating %zu bytes)\n", size);
	abort();
}

void xalloc_failed_in(const char *what)
{
	fprintf(stderr, "cr: out of memory (in %s)\n", what);
	abort();
}

void *xmalloc(size_t size)
{
	void *p = malloc(size ? size : 1);

	if (p == NULL)
		xalloc_failed(size);
	return p;
}

void *xcalloc(size_t n, size_t size)
{
	void *p = calloc(n ? n : 1, size ? size : 1);

	if (p == NULL)
		xalloc_failed(n * size);
	return p;
}

void *xrealloc(void *p, size_t size)
{
	void *q = realloc(p, size ? size : 1);

	if (q == NULL)
		xalloc_failed(size);
	return q;
}

void *xreallocarray(void *p, size_t n, size_t size)
{
	void *q = reallocarray(p, n ? n : 1, size ? size : 1);

	if (q == NULL)
		xalloc_failed(n * size);
	return q;
}

char *xstrdup(const char *s)
{
	char *d = strdup(s);

	if (d == NULL)
		xalloc_failed(strlen(s) + 1);
	return d;
}

char *xstrndup(const char *s, size_t n)
{
	char *d = strndup(s, n);

	if (d == NULL)
		xalloc_failed(strnlen(s, n) + 1);
	return d;
}

char *xvasprintf(const char *fmt, va_list ap)
{
	char *s = NULL;
	va_list again;
	int len;

	va_copy(again, ap);
	len = vasprintf(&s, fmt, ap);
	if (len < 0) {
		/* vasprintf fails for no memory, or for a format it cannot
		 * convert (EOVERFLOW, EILSEQ): size it to tell which. */
		int need = vsnprintf(NULL, 0, fmt, again);

		va_end(again);
		if (need < 0)
			return xstrdup("(unformattable message)");
		xalloc_failed((size_t)need + 1);
	}
	va_end(again);
	return s;
}

char *xasprintf(const char *fmt, ...)
{
	va_list ap;
	char *s;

	va_start(ap, fmt);
	s = xvasprintf(fmt, ap);
	va_end(ap);
	return s;
}

void *xalloc_populated(size_t size)
{
	void *p = mmap(NULL, size ? size : 1, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE,
		       -1, 0);

	if (p == MAP_FAILED)
		xalloc_failed(size);
	(void)madvise(p, size ? size : 1, MADV_WIPEONFORK);   /* an optimization only */
	return p;
}

void xfree_populated(void *p, size_t size)
{
	if (p != NULL)
		munmap(p, size ? size : 1);
}
