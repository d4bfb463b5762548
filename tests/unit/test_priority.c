/*
 * Priorities: with one worker held busy, 24 background then 24 interactive
 * single-job batches queue up; once released, interactive batches start
 * first, yet background ones get their share (at least 1 in 8 starts while
 * both wait: never starved), and everything runs.
 */
#include <errno.h>
#include <sched.h>
#include <stdatomic.h>

#include "check.h"

static _Atomic int seq;
static struct check_gate gate;

int main(void)
{
    check_watchdog(60);
    wsched_pool *pool = check_pool(1);
    wsched_batch *g, *bg[24], *in[24];
    wsched_batch_desc d = {.fn = check_gate_job, .arg = &gate, .njobs = 1};
    CHECK_OK(wsched_submit(pool, &d, &g));
    for (int k = 0; k < 24; k++) {
        d = (wsched_batch_desc){.fn = check_stamp_job, .arg = &seq, .njobs = 1,
                                .slot_size = sizeof(int), .priority = WSCHED_PRIO_BACKGROUND};
        CHECK_OK(wsched_submit(pool, &d, &bg[k]));
    }
    for (int k = 0; k < 24; k++) {
        d = (wsched_batch_desc){.fn = check_stamp_job, .arg = &seq, .njobs = 1,
                                .slot_size = sizeof(int)};
        CHECK_OK(wsched_submit(pool, &d, &in[k]));
    }
    check_gate_open(&gate);
    CHECK_OK(wsched_wait(g, -1));
    int bg_in_first24 = 0, in_last = 0;
    for (int k = 0; k < 24; k++) {
        CHECK_OK(wsched_wait(bg[k], -1));
        CHECK_OK(wsched_wait(in[k], -1));
        int sb = *(int *)wsched_batch_slot(bg[k], 0), si = *(int *)wsched_batch_slot(in[k], 0);
        bg_in_first24 += sb < 24;
        if (si > in_last)
            in_last = si;
        wsched_batch_free(bg[k]);
        wsched_batch_free(in[k]);
    }
    wsched_batch_free(g);
    fprintf(stderr, "background batches among the first 24 starts: %d; last interactive start: %d\n",
            bg_in_first24, in_last);
    CHECK(bg_in_first24 >= 2);  /* its share while both waited: 1 in 8 */
    CHECK(bg_in_first24 <= 6);  /* but interactive went first */
    CHECK(in_last < 30);        /* interactive all started early */
    CHECK_EQ(atomic_load(&seq), 48);
    d = (wsched_batch_desc){.fn = check_stamp_job, .arg = &seq, .njobs = 1, .priority = 2};
    CHECK_EQ(wsched_submit(pool, &d, &g), -EINVAL);
    CHECK_OK(wsched_pool_destroy(pool));
    printf("test_priority: ok\n");
    return 0;
}
