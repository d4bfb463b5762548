/*
 * Policies under contention (run under TSan in CI): client threads submit
 * fail-fast, quorum and deadline batches at once; deadlines are set near
 * the expected completion time so that expiry races completion. Checked:
 * every slot is final and in a state its policy allows, and wait's result
 * agrees with the slots.
 */
#include <errno.h>
#include <stdlib.h>
#include <pthread.h>

#include "check.h"

static int job(wsched_ctx *ctx, void *arg, size_t i, void *slot)
{
    unsigned seed = *(unsigned *)arg;
    unsigned h = (seed ^ (unsigned)i) * 2654435761u;
    volatile unsigned x = h;
    for (unsigned k = 0; k < 200 + h % 2000 && !wsched_cancelled(ctx); k++)
        x = x * 1103515245u + 12345u;
    *(unsigned *)slot = (unsigned)i;
    return h % 17 == 0 ? -EIO : 0;
}

static void *client(void *arg)
{
    wsched_pool *pool = arg;
    unsigned seed = (unsigned)(uintptr_t)&seed;
    long rounds = check_scale(300);
    for (long r = 0; r < rounds; r++) {
        seed = seed * 1103515245u + 12345u;
        unsigned kind = (seed >> 8) % 3;
        size_t n = 8 + (seed >> 12) % 40;
        unsigned *jarg = malloc(sizeof *jarg); /* read by jobs until idle */
        *jarg = seed;
        wsched_batch_desc d = {.fn = job, .arg = jarg, .njobs = n, .slot_size = sizeof(unsigned)};
        if (kind == 0)
            d.policy = WSCHED_POLICY_FAIL_FAST;
        else if (kind == 1) {
            d.policy = WSCHED_POLICY_QUORUM;
            d.quorum = 1 + (seed >> 16) % n;
        } else {
            d.deadline_ns = wsched_now_ns() + (seed >> 16) % 200000; /* 0-200 us */
        }
        wsched_batch *b;
        CHECK_OK(wsched_submit(pool, &d, &b));
        int w = wsched_wait(b, -1);
        size_t ok = 0, err = 0, cancelled = 0, late = 0;
        for (size_t i = 0; i < n; i++) {
            int s = check_status(b, i);
            CHECK(s != WSCHED_ENOTRUN); /* final */
            if (s == 0) {
                ok++;
                CHECK_EQ(*(unsigned *)wsched_batch_slot(b, i), i);
            } else if (s == -EIO) {
                err++;
            } else if (s == WSCHED_ECANCELLED) {
                cancelled++;
            } else {
                CHECK_EQ(s, WSCHED_EDEADLINE);
                late++;
            }
        }
        /* The wait reports the call only (complete: 0); the outcome says
         * how the batch ended. */
        CHECK_EQ(w, 0);
        wsched_outcome o;
        CHECK_OK(wsched_batch_outcome(b, &o, sizeof o));
        CHECK_EQ(o.ok, ok);
        CHECK_EQ(o.failed, err);
        CHECK_EQ(o.cancelled, cancelled);
        CHECK_EQ(o.timed_out, late);
        CHECK_EQ(o.unfinished, 0);
        if (kind == 0) { /* fail-fast */
            CHECK_EQ(late, 0);
            CHECK_EQ(o.end, err ? WSCHED_END_FAILED : WSCHED_END_COMPLETED);
            CHECK_EQ(o.first_error, err ? -EIO : 0);
            if (!err)
                CHECK_EQ(cancelled, 0);
        } else if (kind == 1) { /* quorum */
            CHECK_EQ(late, 0);
            if (o.end == WSCHED_END_QUORUM_REACHED)
                CHECK(ok >= d.quorum);
            else
                CHECK(o.end == WSCHED_END_QUORUM_IMPOSSIBLE && err > n - d.quorum &&
                      o.first_error == -EIO);
        } else { /* deadline, best effort */
            CHECK_EQ(cancelled, 0);
            if (o.end == WSCHED_END_COMPLETED)
                CHECK_EQ(late, 0);
            else
                CHECK_EQ(o.end, WSCHED_END_DEADLINE);
        }
        CHECK_OK(wsched_wait_idle(b, -1)); /* then arg may go */
        free(jarg);
        wsched_batch_free(b);
    }
    return NULL;
}

int main(void)
{
    check_watchdog(120);
    wsched_pool *pool = check_pool(3);
    enum { T = 4 };
    pthread_t th[T];
    for (int t = 0; t < T; t++)
        CHECK_EQ(pthread_create(&th[t], NULL, client, pool), 0);
    for (int t = 0; t < T; t++)
        pthread_join(th[t], NULL);
    CHECK_OK(wsched_pool_destroy(pool));
    printf("test_policies_stress: ok\n");
    return 0;
}
