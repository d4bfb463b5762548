#include "mem.h"

#include <stdlib.h>
#include <string.h>

#ifdef WSCHED_HAVE_JEMALLOC
/* jemalloc's own API, so wsched's allocations use it whatever allocator the
 * process links first (a shared library's -ljemalloc does not interpose
 * malloc when libc comes earlier in the lookup order). Sized deallocation
 * skips jemalloc's size lookup. */
#include <jemalloc/jemalloc.h>

static void *default_alloc(void *ctx, size_t size, size_t align)
{
    (void)ctx;
    return mallocx(size ? size : 1, MALLOCX_ALIGN(align));
}

static void default_free(void *ctx, void *p, size_t size, size_t align)
{
    (void)ctx;
    sdallocx(p, size ? size : 1, MALLOCX_ALIGN(align));
}
#else
static void *default_alloc(void *ctx, size_t size, size_t align)
{
    (void)ctx;
    if (align <= _Alignof(max_align_t))
        return malloc(size);
    void *p = NULL;
    return posix_memalign(&p, align, size) == 0 ? p : NULL;
}

static void default_free(void *ctx, void *p, size_t size, size_t align)
{
    (void)ctx, (void)size, (void)align;
    free(p);
}
#endif

void mem_init(struct mem *m, const wsched_allocator *user)
{
    if (user && user->alloc && user->free)
        m->a = *user;
    else
        m->a = (wsched_allocator){default_alloc, default_free, NULL};
    m->calls = 0;
}

void *mem_alloc(struct mem *m, size_t size, size_t align)
{
    __atomic_fetch_add(&m->calls, 1, __ATOMIC_RELAXED);
    return m->a.alloc(m->a.ctx, size, align);
}

void *mem_zalloc(struct mem *m, size_t size, size_t align)
{
    void *p = mem_alloc(m, size, align);
    if (p)
        memset(p, 0, size);
    return p;
}

void mem_free(const struct mem *m, void *p, size_t size, size_t align)
{
    if (p)
        m->a.free(m->a.ctx, p, size, align);
}
