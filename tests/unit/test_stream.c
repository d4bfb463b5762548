/* Completion stream: every job exactly once, in completion order, its slot
 * and status final when it is returned; timeouts; -ENODATA at the end;
 * frozen slots of an early-completing batch are streamed too; consumption
 * from inside a worker. */
#include <errno.h>
#include <sched.h>
#include <stdatomic.h>

#include "check.h"

static struct check_gate gate;

static int job(wsched_ctx *ctx, void *arg, size_t i, void *slot)
{
    (void)ctx, (void)arg;
    if (i == 9) /* held while the gate is shut; runs last in its range */
        check_gate_pass(&gate);
    *(size_t *)slot = i * 3;
    return i % 5 == 4 ? -EIO : 0;
}

static void consume_all(wsched_batch *b, size_t n, int in_order)
{
    unsigned char *seen = calloc(n, 1);
    size_t idx, prev = 0;
    for (size_t k = 0; k < n; k++) {
        CHECK_OK(wsched_next_done(b, -1, &idx));
        CHECK(idx < n);
        CHECK_EQ(seen[idx], 0);
        seen[idx] = 1;
        int s = check_status(b, idx);
        CHECK(s != WSCHED_ENOTRUN);
        if (s == 0 || s == -EIO)
            CHECK_EQ(*(size_t *)wsched_batch_slot(b, idx), idx * 3);
        if (in_order && k > 0)
            CHECK(idx > prev);
        prev = idx;
    }
    CHECK_EQ(wsched_next_done(b, -1, &idx), -ENODATA);
    free(seen);
}

static int inner_consumer(wsched_ctx *ctx, void *arg, size_t i, void *slot)
{
    (void)ctx, (void)i, (void)slot;
    wsched_pool *pool = arg;
    wsched_batch_desc d = {.fn = job, .njobs = 100, .slot_size = sizeof(size_t),
                           .flags = WSCHED_BATCH_STREAM};
    wsched_batch *b;
    CHECK_OK(wsched_submit(pool, &d, &b));
    consume_all(b, 100, 0);
    wsched_batch_free(b);
    return 0;
}

int main(void)
{
    check_watchdog(60);
    check_gate_open(&gate);
    for (unsigned workers = 1; workers <= 3; workers++) {
        wsched_pool *pool = check_pool(workers);
        wsched_batch_desc d = {.fn = job, .njobs = 1000, .slot_size = sizeof(size_t),
                               .flags = WSCHED_BATCH_STREAM};
        wsched_batch *b;
        CHECK_OK(wsched_submit(pool, &d, &b));
        consume_all(b, 1000, workers == 1);
        CHECK_OK(wsched_wait(b, -1));
        wsched_batch_free(b);

        /* Timeout while job 9 is held; the rest stream meanwhile. */
        check_gate_reset(&gate, 0);
        d.njobs = 10;
        CHECK_OK(wsched_submit(pool, &d, &b));
        size_t idx, got = 0;
        for (; got < 9; got++) {
            CHECK_OK(wsched_next_done(b, -1, &idx));
            CHECK(idx != 9);
        }
        CHECK_EQ(wsched_next_done(b, 1000000, &idx), -ETIMEDOUT);
        CHECK_EQ(wsched_next_done(b, 0, &idx), -ETIMEDOUT);
        check_gate_open(&gate);
        for (; got < 10; got++)
            CHECK_OK(wsched_next_done(b, -1, &idx));
        CHECK_EQ(wsched_next_done(b, 0, &idx), -ENODATA);
        wsched_batch_free(b);

        /* Quorum: frozen slots are streamed too (every job exactly once). */
        d = (wsched_batch_desc){.fn = job, .njobs = 50, .slot_size = sizeof(size_t),
                                .flags = WSCHED_BATCH_STREAM, .policy = WSCHED_POLICY_QUORUM,
                                .quorum = 3};
        CHECK_OK(wsched_submit(pool, &d, &b));
        consume_all(b, 50, 0);
        CHECK_OK(wsched_wait(b, -1));
        CHECK_OK(wsched_wait_idle(b, -1));
        wsched_batch_free(b);

        /* Inside a worker. */
        d = (wsched_batch_desc){.fn = inner_consumer, .arg = pool, .njobs = 2};
        CHECK_OK(wsched_submit(pool, &d, &b));
        CHECK_OK(wsched_wait(b, -1));
        CHECK_EQ(check_not_ok(b), 0);
        wsched_batch_free(b);

        /* Not a stream batch. */
        d = (wsched_batch_desc){.fn = job, .njobs = 2, .slot_size = sizeof(size_t)};
        CHECK_OK(wsched_submit(pool, &d, &b));
        CHECK_EQ(wsched_next_done(b, -1, &idx), -EINVAL);
        CHECK_OK(wsched_wait(b, -1));
        wsched_batch_free(b);
        CHECK_OK(wsched_pool_destroy(pool));
    }
    printf("test_stream: ok\n");
    return 0;
}
