/* Allocation through the pool's allocator (wsched_allocator or malloc). */
#ifndef WSCHED_MEM_H
#define WSCHED_MEM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "wsched.h"

/* Internal symbols carry the library's prefix (see inbox.h). */
#define mem_init wsched__mem_init
#define mem_alloc wsched__mem_alloc
#define mem_zalloc wsched__mem_zalloc
#define mem_free wsched__mem_free

struct mem {
    wsched_allocator a;
    /* Allocator calls (wsched_pool_stats.allocs): relaxed __atomic RMWs
     * (a counter; every call it counts is the slow path). Not _Atomic: the
     * Relacy models compile this header as C++. */
    uint64_t calls;
};

void mem_init(struct mem *m, const wsched_allocator *user);
void *mem_alloc(struct mem *m, size_t size, size_t align);
void *mem_zalloc(struct mem *m, size_t size, size_t align);
void mem_free(const struct mem *m, void *p, size_t size, size_t align);

/* a * b + c without overflow; false when it does not fit. */
static inline bool size_mul_add(size_t a, size_t b, size_t c, size_t *out)
{
    size_t p;
    if (__builtin_mul_overflow(a, b, &p) || __builtin_add_overflow(p, c, &p))
        return false;
    *out = p;
    return true;
}

#endif
