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
#define mem_batch_alloc wsched__mem_batch_alloc
#define mem_batch_free wsched__mem_batch_free
#define mem_cache_flush wsched__mem_cache_flush
#define mem_reserve wsched__mem_reserve
#define mem_reserve_release wsched__mem_reserve_release

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

/*
 * Batch memory (64-byte aligned) through the calling thread's batch cache
 * when the pool uses the default allocator: freed batch blocks are kept
 * per thread, in power-of-two classes up to MEM_CLASS_MAX and one large
 * block above, and handed out again without an allocator call (and
 * without fresh pages: a batch's memory stays faulted in). *got is the
 * block's real size, which the free must pass back. A user allocator gets
 * every call (its failures and counts stay exact).
 */
#define MEM_CLASS_MIN 256u
#define MEM_CLASS_MAX 65536u
#define MEM_NCLASS 9 /* 256 B .. 64 KiB */
void *mem_batch_alloc(struct mem *m, size_t need, size_t *got);
/* `a` is the pool's allocator as the batch copied it: the pool may be gone. */
void mem_batch_free(const wsched_allocator *a, void *p, size_t got);
/* Return the calling thread's cached blocks to the allocator (thread exit
 * does it too). */
void mem_cache_flush(void);
/* Pre-fault `count` blocks for batches of `need` bytes into the depot that
 * every thread's cache draws from on a miss: the number made (>= 0), or
 * -ENOTSUP (a user allocator, or a block above MEM_CLASS_MAX). *cls is
 * the class, for mem_reserve_release at the pool's destroy. */
int mem_reserve(struct mem *m, size_t need, size_t count, int *cls);
void mem_reserve_release(int cls, size_t count);

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
