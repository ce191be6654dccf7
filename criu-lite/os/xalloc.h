/* cr's one policy for running out of memory: an allocation that fails ends
 * the process with a message giving the size it asked for.
 *
 * Why not an error like any other: cr can be killed at any moment anyway
 * (the kernel's OOM killer does not ask), so out of memory is met the same
 * way, and what a dead cr leaves behind is handled in one place: a dump's
 * work runs in a supervised worker, every restored process dies with the
 * restorer.  Sizes come from validated images and from the kernel, so a
 * failure means the machine is out of memory, not that an input lied; and
 * checking each of hundreds of small allocations would add error paths
 * that no test runs. */
#ifndef CR_XALLOC_H
#define CR_XALLOC_H

#include <stdarg.h>
#include <stddef.h>

__attribute__((noreturn)) void xalloc_failed(size_t size);
/* The same for a library's allocator that reports failure only as NULL
 * (what names it). */
__attribute__((noreturn)) void xalloc_failed_in(const char *what);

void *xmalloc(size_t size);
void *xcalloc(size_t n, size_t size);
void *xrealloc(void *p, size_t size);
/* xrealloc of an array of n elements of size each, checked for overflow. */
void *xreallocarray(void *p, size_t n, size_t size);
char *xstrdup(const char *s);
/* At most n bytes of s, NUL-terminated. */
char *xstrndup(const char *s, size_t n);
/* The formatted string, allocated (asprintf). */
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
char *xvasprintf(const char *fmt, va_list ap) __attribute__((format(printf, 1, 0)));

/* A page-aligned buffer of size bytes whose pages are all in place already
 * (MAP_POPULATE), for the large buffers every byte of which is used: on a
 * virtual machine the kernel fills a mapping's page tables at once about
 * fifteen times faster than page faults do one page at a time (8 ms for the
 * 768 faults of 3 MiB here).  A fork does not copy it (MADV_WIPEONFORK: a
 * child sees it zeroed, as scratch), so neither side pays copy-on-write
 * faults afterwards.  Freed with xfree_populated and the same size. */
void *xalloc_populated(size_t size);
void xfree_populated(void *p, size_t size);

#endif
