/*
 * Deque torture: one owner pushing and popping, several thieves stealing,
 * millions of items; every item must be taken exactly once (counted per
 * item). Small initial capacity so the array grows while thieves read it
 * (old arrays are kept until deque_fini, deque.h R1).
 */
#include <pthread.h>

#include "check.h"
#include "deque.h"

enum { THIEVES = 3 };
static long items;
static _Atomic unsigned char *taken;
static struct deque dq;
static _Atomic int done;
static _Atomic long total;

static void take(uintptr_t id, uintptr_t check)
{
    CHECK_EQ(check, id * 7 + 1); /* the record arrived whole */
    unsigned char prev = atomic_fetch_add_explicit(&taken[id], 1, memory_order_relaxed);
    CHECK_EQ(prev, 0);
    atomic_fetch_add_explicit(&total, 1, memory_order_relaxed);
}

static void *thief(void *arg)
{
    (void)arg;
    struct task t;
    while (!atomic_load_explicit(&done, memory_order_acquire)) {
        if (deque_steal(&dq, &t) == STEAL_OK)
            take(t.a, t.b);
    }
    return NULL;
}

int main(void)
{
    check_watchdog(120);
    items = check_scale(4000000);
    taken = calloc((size_t)items, 1);
    struct mem mem;
    mem_init(&mem, NULL);
    CHECK_OK(deque_init(&dq, &mem, 2));
    pthread_t th[THIEVES];
    for (int i = 0; i < THIEVES; i++)
        CHECK_EQ(pthread_create(&th[i], NULL, thief, NULL), 0);

    uint64_t rng = 88172645463325252ull;
    long next = 0;
    struct task t;
    bool was_empty;
    while (next < items) {
        rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
        /* Bursts of pushes (growth) and pops (races on the last element). */
        long burst = 1 + (long)(rng % 64);
        for (long k = 0; k < burst && next < items; k++, next++) {
            struct task x = {NULL, (uintptr_t)next, (uintptr_t)next * 7 + 1, 0};
            CHECK_OK(deque_push_owner(&dq, &x, &was_empty));
        }
        long pops = (long)((rng >> 8) % 64);
        for (long k = 0; k < pops; k++)
            if (deque_pop_owner(&dq, &t))
                take(t.a, t.b);
    }
    while (deque_pop_owner(&dq, &t))
        take(t.a, t.b);
    /* Thieves may still hold... nothing: wait until every item is counted. */
    while (atomic_load(&total) != items)
        sched_yield();
    atomic_store_explicit(&done, 1, memory_order_release);
    for (int i = 0; i < THIEVES; i++)
        pthread_join(th[i], NULL);
    for (long i = 0; i < items; i++)
        CHECK_EQ(taken[i], 1);
    printf("test_deque_torture: %ld items, final capacity %lld, ok\n", items,
           (long long)ld(&dq.array, RLX)->mask + 1);
    deque_fini(&dq);
    free((void *)taken);
    return 0;
}
