/*
 * Issue 7, gap: zero-timeout polls inside a worker make progress. A job on
 * a one-worker pool submits a nested batch (it lands on the job's own
 * deque) and polls wsched_wait(b, 0), wsched_wait_idle(b, 0) or
 * wsched_next_done(b, 0, ..) in a loop. Before, each poll returned at once
 * without running anything: the loop never ended (bounded here).
 */
#include <errno.h>
#include <stdatomic.h>

#include "check.h"

enum { KIDS = 8, MAX_POLLS = 1000000 };

static int kid(wsched_ctx *ctx, void *arg, size_t i, void *slot)
{
    (void)ctx, (void)arg;
    *(size_t *)slot = i + 1;
    return 0;
}

static int poller(wsched_ctx *ctx, void *arg, size_t i, void *slot)
{
    (void)ctx, (void)slot;
    wsched_pool *pool = arg;
    unsigned kind = (unsigned)i % 3;
    wsched_batch_desc d = {.fn = kid, .njobs = KIDS, .slot_size = sizeof(size_t),
                           .flags = kind == 2 ? WSCHED_BATCH_STREAM : 0};
    wsched_batch *b;
    CHECK_OK(wsched_submit(pool, &d, &b));
    long polls = 0;
    if (kind == 0) {
        while (wsched_wait(b, 0) == -ETIMEDOUT)
            CHECK(++polls < MAX_POLLS);
    } else if (kind == 1) {
        while (wsched_wait_idle(b, 0) == -ETIMEDOUT)
            CHECK(++polls < MAX_POLLS);
    } else {
        size_t got = 0, idx;
        int r;
        while ((r = wsched_next_done(b, 0, &idx)) != -ENODATA) {
            if (r == -ETIMEDOUT) {
                CHECK(++polls < MAX_POLLS);
            } else {
                CHECK_EQ(r, 0);
                got++;
            }
        }
        CHECK_EQ(got, KIDS);
    }
    CHECK_OK(wsched_wait(b, -1));
    for (size_t k = 0; k < KIDS; k++)
        CHECK_EQ(*(size_t *)wsched_batch_slot(b, k), k + 1);
    wsched_batch_free(b);
    return 0;
}

int main(void)
{
    check_watchdog(60);
    wsched_pool *pool = check_pool(1);
    wsched_batch_desc d = {.fn = poller, .arg = pool, .njobs = 9};
    wsched_batch *b;
    CHECK_OK(wsched_submit(pool, &d, &b));
    CHECK_OK(wsched_wait(b, -1));
    for (size_t k = 0; k < 9; k++)
        CHECK_EQ(check_status(b, k), 0);
    wsched_batch_free(b);
    CHECK_OK(wsched_pool_destroy(pool));
    printf("test_poll_progress: ok\n");
    return 0;
}
