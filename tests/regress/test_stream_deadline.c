/*
 * Issue 7, gap: a batch deadline takes effect for a completion-stream
 * consumer at the deadline. Job 0 of a streamed batch with a 5 ms deadline
 * holds its worker until the consumer has seen every index; the others
 * return at once. The consumer must receive job 0's index (status
 * WSCHED_EDEADLINE) at the deadline, not when the job returns. Before, the
 * slots were frozen only inside wsched_wait and the last next_done below
 * timed out (3 s bound).
 */
#include <errno.h>
#include <sched.h>
#include <stdatomic.h>

#include "check.h"

static struct check_gate gate;

static int job(wsched_ctx *ctx, void *arg, size_t i, void *slot)
{
    (void)ctx, (void)arg;
    if (i == 0)
        check_gate_pass(&gate);
    *(int *)slot = 1;
    return 0;
}

int main(void)
{
    check_watchdog(60);
    wsched_pool *pool = check_pool(2);
    for (int round = 0; round < 5; round++) {
        check_gate_reset(&gate, 0);
        wsched_batch_desc d = {.fn = job, .njobs = 4, .slot_size = sizeof(int),
                               .flags = WSCHED_BATCH_STREAM,
                               .deadline_ns = wsched_now_ns() + 5000000};
        wsched_batch *b;
        CHECK_OK(wsched_submit(pool, &d, &b));
        int seen[4] = {0};
        for (int k = 0; k < 4; k++) {
            size_t idx;
            int r = wsched_next_done(b, 3000000000ll, &idx);
            if (r == -ETIMEDOUT)
                fprintf(stderr, "round %d: stream consumer not released at the deadline\n", round);
            CHECK_OK(r);
            CHECK(idx < 4);
            CHECK_EQ(seen[idx]++, 0);
        }
        size_t idx;
        CHECK_EQ(wsched_next_done(b, 0, &idx), -ENODATA);
        /* Job 0 (still held) was decided by the deadline. */
        CHECK_EQ(check_status(b, 0), WSCHED_EDEADLINE);
        check_gate_open(&gate);
        CHECK_OK(wsched_wait_idle(b, -1));
        CHECK_EQ(check_status(b, 0), WSCHED_EDEADLINE);
        wsched_batch_free(b);
    }
    CHECK_OK(wsched_pool_destroy(pool));
    printf("test_stream_deadline: ok\n");
    return 0;
}
