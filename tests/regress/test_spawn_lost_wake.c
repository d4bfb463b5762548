/*
 * A spawn onto a non-empty deque must not leave a worker parked while the
 * task waits (CI, stop 12: debug test_work_conserving hung at its watchdog).
 * deque_push_owner decides "was the deque empty?" from top read before the
 * publish; only an empty deque notified. If a thief stole the older tasks
 * and parked between that read and the publish, nobody was woken, and every
 * later push saw a non-empty deque and woke nobody either.
 *
 * Built against the library's sources with WSCHED_DEBUG (wsched_debug): a
 * job spawns A (woken worker steals it), then spawns B while a hook holds it
 * at deque point P1 (after top is read, before bottom is published) until A
 * ran and the other worker has parked. The job then spins until B ran
 * without syncing or calling wsched_blocking: before the fix B stayed on the
 * deque with the other worker asleep (the bound below fired every round).
 */
#include <sched.h>
#include <stdatomic.h>
#include <string.h>

#include "check.h"

extern void (*wsched__debug_hook)(const char *label);

static wsched_pool *pool;
static _Atomic int armed, a_ran, b_ran;
static _Thread_local int is_owner;
static _Atomic uint64_t parks_before; /* taken by A's thief, after it stole A */

static uint64_t parks(void)
{
    wsched_pool_stats st;
    CHECK_OK(wsched_pool_get_stats(pool, &st, sizeof st));
    return st.total.parks;
}

static void hook(const char *label)
{
    if (!is_owner || strcmp(label, "P1") != 0 || !atomic_load(&armed))
        return;
    atomic_store(&armed, 0);
    /* Hold the push of B until A was stolen and run and its thief went to
     * sleep: its re-scan then cannot see B (bottom is not published). */
    while (!atomic_load(&a_ran) || parks() == atomic_load(&parks_before))
        sched_yield();
}

static void task_a(wsched_ctx *ctx, void *arg)
{
    (void)ctx, (void)arg;
    atomic_store(&parks_before, parks());
    atomic_store(&a_ran, 1);
}

static void task_b(wsched_ctx *ctx, void *arg)
{
    (void)ctx, (void)arg;
    atomic_store(&b_ran, 1);
}

static int owner_job(wsched_ctx *ctx, void *arg, size_t i, void *slot)
{
    (void)arg, (void)i;
    is_owner = 1;
    CHECK_OK(wsched_spawn(ctx, task_a, NULL));
    atomic_store(&armed, 1);
    CHECK_OK(wsched_spawn(ctx, task_b, NULL));
    /* Spin until another worker ran B: a bound, not a synchronisation. */
    uint64_t until = wsched_now_ns() + 5000000000ull;
    while (!atomic_load(&b_ran) && wsched_now_ns() < until)
        sched_yield();
    *(int *)slot = atomic_load(&b_ran);
    is_owner = 0;
    return wsched_sync(ctx);
}

int main(void)
{
    check_watchdog(120);
    wsched__debug_hook = hook;
    long rounds = check_scale(20);
    if (rounds < 3)
        rounds = 3;
    pool = check_pool(2);
    for (long r = 0; r < rounds; r++) {
        atomic_store(&a_ran, 0);
        atomic_store(&b_ran, 0);
        wsched_batch *b;
        wsched_batch_desc d = {.fn = owner_job, .njobs = 1, .slot_size = sizeof(int)};
        CHECK_OK(wsched_submit(pool, &d, &b));
        CHECK_OK(wsched_wait(b, -1));
        CHECK_EQ(check_status(b, 0), 0);
        if (*(int *)wsched_batch_slot(b, 0) != 1)
            fprintf(stderr, "round %ld: B stayed queued with a worker parked\n", r);
        CHECK_EQ(*(int *)wsched_batch_slot(b, 0), 1);
        CHECK_EQ(atomic_load(&a_ran), 1);
        wsched_batch_free(b);
    }
    CHECK_OK(wsched_pool_destroy(pool));
    printf("test_spawn_lost_wake: %ld rounds, ok\n", rounds);
    return 0;
}
