/*
 * Issue 7, defect 6: a submitter preempted inside its inbox push must not
 * hide another thread's batch from idle workers. Built against the
 * library's sources with WSCHED_DEBUG (wsched_debug): a hook holds
 * submitter A at inbox point I1 (wsched__debug_hook) while submitter B
 * pushes to the same inbox (one worker: one inbox). B's batch must run
 * while A is held. Before the fix the counter was incremented after the
 * link: the worker took A's linked node first, the count dropped to 0 with
 * B's batch still queued, and the worker parked: B's wait below timed out.
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <string.h>

#include "check.h"

extern void (*wsched__debug_hook)(const char *label);

static _Atomic int hold_armed, held, release_a;
static _Thread_local int i_am_a;

static void hook(const char *label)
{
    if (!i_am_a || strcmp(label, "I1") != 0 || !atomic_load(&hold_armed))
        return;
    atomic_store(&held, 1);
    while (!atomic_load(&release_a))
        sched_yield();
}

static int mark_job(wsched_ctx *ctx, void *arg, size_t i, void *slot)
{
    (void)ctx, (void)arg, (void)i;
    *(int *)slot = 1;
    return 0;
}

struct sub {
    wsched_pool *pool;
    wsched_batch *b;
};

static void *submitter_a(void *arg)
{
    struct sub *s = arg;
    i_am_a = 1;
    wsched_batch_desc d = {.fn = mark_job, .njobs = 1, .slot_size = sizeof(int)};
    CHECK_OK(wsched_submit(s->pool, &d, &s->b));
    return NULL;
}

int main(void)
{
    check_watchdog(120);
    wsched__debug_hook = hook;
    long rounds = check_scale(50);
    if (rounds < 5)
        rounds = 5;
    wsched_pool *pool = check_pool(1);
    for (long r = 0; r < rounds; r++) {
        atomic_store(&held, 0);
        atomic_store(&release_a, 0);
        atomic_store(&hold_armed, 1);
        struct sub a = {pool, NULL};
        pthread_t th;
        CHECK_EQ(pthread_create(&th, NULL, submitter_a, &a), 0);
        while (!atomic_load(&held))
            sched_yield();
        /* B: this thread, same inbox (one worker). */
        wsched_batch *b;
        wsched_batch_desc d = {.fn = mark_job, .njobs = 1, .slot_size = sizeof(int)};
        CHECK_OK(wsched_submit(pool, &d, &b));
        int w = wsched_wait(b, 5000000000ll); /* a bound, not a synchronisation */
        atomic_store(&hold_armed, 0);
        atomic_store(&release_a, 1);
        pthread_join(th, NULL);
        if (w == -ETIMEDOUT)
            fprintf(stderr, "round %ld: B's batch was hidden while A was held\n", r);
        CHECK_EQ(w, 0);
        CHECK_EQ(*(int *)wsched_batch_slot(b, 0), 1);
        CHECK_OK(wsched_wait(a.b, -1));
        CHECK_EQ(*(int *)wsched_batch_slot(a.b, 0), 1);
        wsched_batch_free(a.b);
        wsched_batch_free(b);
    }
    CHECK_OK(wsched_pool_destroy(pool));
    printf("test_inbox_preempt: %ld rounds, ok\n", rounds);
    return 0;
}
