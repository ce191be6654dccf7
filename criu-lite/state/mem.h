/* Memory: the VMAs of a process (a kind of state, state_memory, with its
 * contents in pagedata.c and its trampoline in tramp.c). */
#ifndef CR_MEM_H
#define CR_MEM_H

#include <stddef.h>
#include <stdint.h>

/* A page-aligned range of len bytes, free of every [start,end) pair in
 * busy (n pairs, any order) with a page to spare on each side, at or
 * above 4 GiB; 0 if there is none. */
uint64_t mem_find_free(const uint64_t (*busy)[2], size_t n, uint64_t len);

#endif
