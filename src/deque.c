#include "deque.h"

#include <errno.h>

static size_t array_bytes(int64_t cap)
{
    return sizeof(struct deque_array) + (size_t)cap * sizeof(_Atomic(uintptr_t)[TASK_WORDS]);
}

static struct deque_array *array_new(struct mem *mem, int64_t cap)
{
    /* The cast is for C++: tests/model compiles this file as C++. */
    struct deque_array *a =
        (struct deque_array *)mem_alloc(mem, array_bytes(cap), CACHELINE);
    if (a) {
        a->retired = NULL;
        a->mask = cap - 1;
    }
    return a;
}

int deque_init(struct deque *d, struct mem *mem, int64_t capacity)
{
    struct deque_array *a = array_new(mem, capacity);
    if (!a)
        return -ENOMEM;
    d->mem = mem;
    d->solo = false; /* the pool sets it for a pool of one worker */
    st(&d->top, 0, RLX);
    st(&d->bottom, 0, RLX);
    st(&d->array, a, RLX); /* published to other threads by pthread_create */
    return 0;
}

void deque_fini(struct deque *d)
{
    /* R1: the caller guarantees that no thief runs any more (joined). */
    struct deque_array *a = ld(&d->array, RLX);
    while (a) {
        struct deque_array *older = a->retired;
        mem_free(d->mem, a, array_bytes(a->mask + 1), CACHELINE);
        a = older;
    }
    st(&d->array, NULL, RLX);
}

int deque_grow(struct deque *d, int64_t b, int64_t t)
{
    struct deque_array *old = ld(&d->array, RLX);
    if (old->mask + 1 > INT64_MAX / 2)
        return -ENOMEM;
    struct deque_array *a = array_new(d->mem, (old->mask + 1) * 2);
    if (!a)
        return -ENOMEM;
    /* Copy the live range [t, b): a thief may take some of these meanwhile;
     * whatever it takes it takes from the old array under the same top CAS,
     * and the copy of that index is simply never read. */
    for (int64_t i = t; i < b; i++)
        for (int w = 0; w < TASK_WORDS; w++)
            st(&a->slot[i & a->mask][w], ld(&old->slot[i & old->mask][w], RLX), RLX);
    /* R1: thieves may still be reading `old`; keep it until deque_fini.
     * Owner-private link, read only by deque_fini. */
    a->retired = old;
    st(&d->array, a, REL); /* G1 */
    return 0;
}
