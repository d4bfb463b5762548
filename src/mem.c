#include "mem.h"

#include "atomics.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#define POISON(p, n) ASAN_POISON_MEMORY_REGION(p, n)
#define UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION(p, n)
#else
#define POISON(p, n) ((void)(p), (void)(n))
#define UNPOISON(p, n) ((void)(p), (void)(n))
#endif

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

/* ---------------------------------------------------------- batch cache */

/* Size classes 256 B .. 64 KiB (9), each a LIFO list threaded through the
 * cached blocks, holding at most MEM_CLASS_BYTES of them; blocks above go
 * to one large slot (the most recent; at most MEM_LARGE_MAX). The cache
 * is the thread's own: no atomics. A block freed on another thread than
 * the one that allocated it lands in the freeing thread's cache (for a
 * request thread that waits and frees its batches, that is its own). */
#define MEM_CLASS_BYTES (1u << 20)
#define MEM_LARGE_MAX ((size_t)1 << 28)

struct cached {
    struct cached *next;
};

struct batch_cache {
    struct cached *head[MEM_NCLASS];
    uint32_t count[MEM_NCLASS];
    void *large;
    size_t large_size;
    int state; /* 0 unused, 1 live (destructor registered), 2 thread exiting */
};

/* Initial-exec TLS, as internal.h's WSCHED_TLS (this file sits below it). */
static _Thread_local __attribute__((tls_model("initial-exec"))) struct batch_cache cache;
static pthread_key_t cache_key;
static pthread_once_t cache_once = PTHREAD_ONCE_INIT;

static void cache_release(void *unused)
{
    (void)unused;
    mem_cache_flush();
    cache.state = 2; /* frees after this go straight to the allocator */
}

static _Atomic int cache_key_made;
static void cache_key_init(void)
{
    if (pthread_key_create(&cache_key, cache_release) == 0)
        atomic_store_explicit(&cache_key_made, 1, memory_order_release);
}

/* Unloaded by dlclose: no thread may later run cache_release, which would
 * be gone (their cached blocks are then left to the process). */
__attribute__((destructor)) static void cache_key_drop(void)
{
    if (atomic_load_explicit(&cache_key_made, memory_order_acquire))
        (void)pthread_key_delete(cache_key);
}

static bool cache_live(void)
{
    if (cache.state == 1)
        return true;
    if (cache.state == 2)
        return false;
    /* First use on this thread: register the exit hook (the key's value
     * only has to be non-NULL for the destructor to run). */
    if (pthread_once(&cache_once, cache_key_init) != 0 ||
        pthread_setspecific(cache_key, &cache) != 0)
        return false;
    cache.state = 1;
    return true;
}

static bool is_default(const wsched_allocator *a) { return a->alloc == default_alloc; }


/* The class of a block of `need` bytes, or -1 above MEM_CLASS_MAX. */
static int class_of(size_t need, size_t *size)
{
    if (need > MEM_CLASS_MAX)
        return -1;
    if (need <= MEM_CLASS_MIN) {
        *size = MEM_CLASS_MIN;
        return 0;
    }
    /* The next power of two: 64 - clz(need - 1) bits. */
    int bits = 64 - __builtin_clzll((unsigned long long)(need - 1));
    *size = (size_t)1 << bits;
    return bits - __builtin_ctz(MEM_CLASS_MIN);
}

/*
 * The depot: blocks shared by every thread, per class, in a fixed array of
 * slots (a reserve made by wsched_reserve, and what threads' caches
 * overflow). A slot holds a block or NULL: a put claims an empty slot by
 * CAS NULL -> block, a get takes a full one by exchange with NULL, so a
 * block is handed to exactly one taker and no slot can be confused with
 * another state (no ABA: slots are independent words, nothing is linked).
 * `count` is a hint (relaxed: it may lag a put or a get in flight) that
 * spares an empty depot's scan; `hint` spreads the scans' start. The
 * block's contents are published by the pair: the put's CAS is RELEASE,
 * the get's exchange ACQUIRE (the block was last written by the putter).
 * Only cache misses and overflows come here, never a hit.
 */
#define DEPOT_SLOTS 4096u
#define MEM_REFILL 31u
struct depot {
    _Atomic(void *) slot[DEPOT_SLOTS];
    _Atomic int32_t count; /* may dip below 0 while a put's add lags a get */
    _Atomic uint32_t hint;
};
static struct depot depot[MEM_NCLASS];

static void *depot_get(int c)
{
    struct depot *d = &depot[c];
    if (ld(&d->count, RLX) <= 0)
        return NULL;
    uint32_t start = ld(&d->hint, RLX);
    for (uint32_t k = 0; k < DEPOT_SLOTS; k++) {
        uint32_t i = (start + k) % DEPOT_SLOTS;
        if (!ld(&d->slot[i], RLX))
            continue;
        void *b = xchg(&d->slot[i], NULL, ACQ);
        if (b) {
            fsub(&d->count, 1, RLX);
            st(&d->hint, i, RLX);
            return b;
        }
    }
    return NULL;
}

static bool depot_put(int c, void *b)
{
    struct depot *d = &depot[c];
    if (ld(&d->count, RLX) >= (int32_t)DEPOT_SLOTS)
        return false;
    uint32_t start = ld(&d->hint, RLX);
    for (uint32_t k = 0; k < DEPOT_SLOTS; k++) {
        uint32_t i = (start + k) % DEPOT_SLOTS;
        void *none = NULL;
        if (!ld(&d->slot[i], RLX) &&
            cas_f(&d->slot[i], &none, b, REL, RLX)) {
            fadd(&d->count, 1, RLX);
            st(&d->hint, i, RLX);
            return true;
        }
    }
    return false;
}

int mem_reserve(struct mem *m, size_t need, size_t count, int *cls)
{
    size_t size;
    int c = class_of(need, &size);
    *cls = c;
    if (!is_default(&m->a) || c < 0)
        return -ENOTSUP;
    size_t done = 0;
    for (; done < count; done++) {
        void *b = mem_alloc(m, size, 64);
        if (!b)
            break;
        memset(b, 0, size); /* fault its pages in now */
        POISON(b, size);    /* before the put: a taker unpoisons it */
        if (!depot_put(c, b)) {
            UNPOISON(b, size);
            default_free(NULL, b, size, 64);
            break;
        }
    }
    return (int)(done < INT_MAX ? done : INT_MAX);
}

void mem_reserve_release(int c, size_t count)
{
    if (c < 0 || c >= MEM_NCLASS)
        return;
    size_t size = (size_t)MEM_CLASS_MIN << c;
    for (size_t k = 0; k < count; k++) {
        void *b = depot_get(c);
        if (!b)
            break;
        UNPOISON(b, size);
        default_free(NULL, b, size, 64);
    }
}

void *mem_batch_alloc(struct mem *m, size_t need, size_t *got)
{
    if (!is_default(&m->a) || !cache_live()) {
        *got = need;
        return mem_alloc(m, need, 64);
    }
    size_t size;
    int c = class_of(need, &size);
    if (c >= 0) {
        struct cached *b = cache.head[c];
        if (b) {
            UNPOISON(b, size);
            cache.head[c] = b->next;
            cache.count[c]--;
            *got = size;
            return b;
        }
        void *d = depot_get(c);
        if (d) {
            /* Refill: up to MEM_REFILL more at once, so that a burst from
             * a fresh thread visits the shared depot once per batch of
             * blocks, not once per block. */
            for (unsigned k = 0; k < MEM_REFILL && cache.count[c] < MEM_CLASS_BYTES / size; k++) {
                struct cached *more = depot_get(c);
                if (!more)
                    break;
                UNPOISON(more, sizeof *more);
                more->next = cache.head[c];
                cache.head[c] = more;
                cache.count[c]++;
            }
            UNPOISON(d, size);
            *got = size;
            return d;
        }
    } else if (cache.large && cache.large_size >= need && cache.large_size / 2 <= need) {
        /* The large block fits and is not more than twice too big. */
        void *b = cache.large;
        UNPOISON(b, cache.large_size);
        cache.large = NULL;
        *got = cache.large_size;
        return b;
    } else {
        size = need;
    }
    *got = size;
    return mem_alloc(m, size, 64);
}

void mem_batch_free(const wsched_allocator *a, void *p, size_t got)
{
    if (!p)
        return;
    if (is_default(a) && cache_live()) {
        size_t size;
        int c = class_of(got, &size);
        if (c >= 0 && size == got && cache.count[c] < MEM_CLASS_BYTES / size) {
            struct cached *b = p;
            b->next = cache.head[c];
            cache.head[c] = b;
            cache.count[c]++;
            POISON((char *)b + sizeof *b, size - sizeof *b);
            return;
        }
        if (c >= 0 && size == got) {
            POISON(p, size); /* before: a taker may unpoison it at once */
            if (depot_put(c, p))
                return;
            UNPOISON(p, size);
        }
        if (c < 0 && got <= MEM_LARGE_MAX) {
            void *old = cache.large;
            size_t old_size = cache.large_size;
            cache.large = p;
            cache.large_size = got;
            POISON(p, got);
            if (!old)
                return;
            UNPOISON(old, old_size);
            p = old, got = old_size;
        }
    }
    a->free(a->ctx, p, got, 64);
}

void mem_cache_flush(void)
{
    for (int c = 0; c < MEM_NCLASS; c++) {
        size_t size = (size_t)MEM_CLASS_MIN << c;
        while (cache.head[c]) {
            struct cached *b = cache.head[c];
            UNPOISON(b, size);
            cache.head[c] = b->next;
            default_free(NULL, b, size, 64);
        }
        cache.count[c] = 0;
    }
    if (cache.large) {
        UNPOISON(cache.large, cache.large_size);
        default_free(NULL, cache.large, cache.large_size, 64);
        cache.large = NULL;
    }
}
