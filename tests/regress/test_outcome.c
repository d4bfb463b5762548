/*
 * Issue 7, gap: how a batch ended is visible (wsched_batch_outcome), for
 * every policy and the combinations that surprised a user: wsched_cancel,
 * a QUORUM 8-of-8 batch cancelled after one success, a FAIL_FAST batch
 * whose job failed after a user cancel; the outcome says CANCELLED (and
 * names the failure) in each. Issue 8: wsched_wait answers 0 (complete)
 * in every case; only the outcome tells them apart.
 */
#include <errno.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>

#include "check.h"

enum { N = 8 };

static _Atomic(wsched_batch *) self_batch;
static struct check_gate gate;

/* arg: what job i does: bit 0 fail (-EIO), bit 1 cancel own batch first
 * (job 0 only, once the handle is published), bit 2 wait for the gate. */
static int job(wsched_ctx *ctx, void *arg, size_t i, void *slot)
{
    (void)ctx, (void)slot;
    const unsigned *plan = arg;
    unsigned what = plan[i];
    if (what & 4)
        check_gate_pass(&gate);
    if (what & 2) {
        wsched_batch *b;
        while (!(b = atomic_load(&self_batch)))
            sched_yield();
        CHECK_OK(wsched_cancel(b));
    }
    return what & 1 ? -EIO : 0;
}

struct expect {
    int wait; /* API 1.0: always 0, the wait's own status (batch complete) */
    unsigned end;
    int first_error;
    size_t first_index, ok, failed, cancelled, timed_out;
};

static void run(wsched_pool *pool, const char *name, unsigned policy, size_t quorum,
                int64_t deadline_in, const unsigned plan[N], struct expect e)
{
    atomic_store(&self_batch, NULL);
    check_gate_reset(&gate, 0);
    wsched_batch_desc d = {.fn = job, .arg = (void *)plan, .njobs = N, .policy = policy,
                           .quorum = quorum,
                           .deadline_ns = deadline_in ? wsched_now_ns() + (uint64_t)deadline_in : 0};
    wsched_batch *b;
    CHECK_OK(wsched_submit(pool, &d, &b));
    atomic_store(&self_batch, b);
    wsched_outcome o;
    int w = wsched_wait(b, -1);
    check_gate_open(&gate);
    CHECK_OK(wsched_wait_idle(b, -1));
    CHECK_OK(wsched_batch_outcome(b, &o, sizeof o));
    fprintf(stderr, "%-34s wait %4d end %u first %d@%zu ok %zu failed %zu cancelled %zu timed out %zu\n",
            name, w, o.end, o.first_error, o.first_error_index, o.ok, o.failed, o.cancelled,
            o.timed_out);
    CHECK_EQ(w, e.wait);
    CHECK_EQ(o.end, e.end);
    CHECK_EQ(o.first_error, e.first_error);
    CHECK_EQ(o.first_error_index, e.first_index);
    CHECK_EQ(o.ok, e.ok);
    CHECK_EQ(o.failed, e.failed);
    CHECK_EQ(o.cancelled, e.cancelled);
    CHECK_EQ(o.timed_out, e.timed_out);
    CHECK_EQ(o.unfinished, 0);
    CHECK_EQ(o.ok + o.failed + o.cancelled + o.timed_out, N);
    wsched_batch_free(b);
}

int main(void)
{
    check_watchdog(60);
    /* One worker: jobs run in index order, so the plans below are exact. */
    wsched_pool *pool = check_pool(1);
    const size_t none = SIZE_MAX;
    static const unsigned all_ok[N] = {0};
    static const unsigned two_fail[N] = {0, 0, 0, 1, 0, 1, 0, 0};
    static const unsigned fail_2[N] = {0, 0, 1, 0, 0, 0, 0, 0};
    static const unsigned cancel_0[N] = {2, 0, 0, 0, 0, 0, 0, 0};
    static const unsigned cancel_then_fail_0[N] = {3, 0, 0, 0, 0, 0, 0, 0};
    static const unsigned one_fail_0[N] = {1, 0, 0, 0, 0, 0, 0, 0};
    static const unsigned gated_0[N] = {4, 0, 0, 0, 0, 0, 0, 0};

    run(pool, "best effort, all ok", WSCHED_POLICY_BEST_EFFORT, 0, 0, all_ok,
        (struct expect){0, WSCHED_END_COMPLETED, 0, none, N, 0, 0, 0});
    run(pool, "best effort, jobs 3 and 5 fail", WSCHED_POLICY_BEST_EFFORT, 0, 0, two_fail,
        (struct expect){0, WSCHED_END_COMPLETED, -EIO, 3, N - 2, 2, 0, 0});
    run(pool, "fail-fast, job 2 fails", WSCHED_POLICY_FAIL_FAST, 0, 0, fail_2,
        (struct expect){0, WSCHED_END_FAILED, -EIO, 2, 2, 1, N - 3, 0});
    run(pool, "quorum 3 of 8 reached", WSCHED_POLICY_QUORUM, 3, 0, all_ok,
        (struct expect){0, WSCHED_END_QUORUM_REACHED, 0, none, 3, 0, N - 3, 0});
    run(pool, "quorum 8 of 8, job 0 fails", WSCHED_POLICY_QUORUM, 8, 0, one_fail_0,
        (struct expect){0, WSCHED_END_QUORUM_IMPOSSIBLE, -EIO, 0, 0, 1, N - 1, 0});
    run(pool, "deadline 2 ms, job 0 held", WSCHED_POLICY_BEST_EFFORT, 0, 2000000, gated_0,
        (struct expect){0, WSCHED_END_DEADLINE, 0, none, 0, 0, 0, N});
    run(pool, "best effort, cancelled by job 0", WSCHED_POLICY_BEST_EFFORT, 0, 0, cancel_0,
        (struct expect){0, WSCHED_END_CANCELLED, 0, none, 1, 0, N - 1, 0});
    run(pool, "quorum 8 of 8, 1 success, cancel", WSCHED_POLICY_QUORUM, 8, 0, cancel_0,
        (struct expect){0, WSCHED_END_CANCELLED, 0, none, 1, 0, N - 1, 0});
    run(pool, "fail-fast, cancel then job fails", WSCHED_POLICY_FAIL_FAST, 0, 0, cancel_then_fail_0,
        (struct expect){0, WSCHED_END_CANCELLED, -EIO, 0, 0, 1, N - 1, 0});

    /* Bad input, and the size rule of output structs. */
    wsched_outcome o;
    CHECK_EQ(wsched_batch_outcome(NULL, &o, sizeof o), -EINVAL);
    wsched_batch *b;
    wsched_batch_desc d = {.fn = job, .arg = (void *)two_fail, .njobs = N};
    CHECK_OK(wsched_submit(pool, &d, &b));
    CHECK_OK(wsched_wait(b, -1));
    CHECK_EQ(wsched_batch_outcome(b, NULL, sizeof o), -EINVAL);
    CHECK_EQ(wsched_batch_outcome(b, &o, sizeof o - 1), -EINVAL);
    struct {
        wsched_outcome v1;
        uint64_t later[2];
    } big;
    memset(&big, 0xab, sizeof big);
    CHECK_OK(wsched_batch_outcome(b, &big.v1, sizeof big));
    CHECK_EQ(big.v1.end, WSCHED_END_COMPLETED);
    CHECK_EQ(big.v1.failed, 2);
    CHECK_EQ(big.later[0], 0);
    CHECK_EQ(big.later[1], 0);
    wsched_batch_free(b);
    CHECK_OK(wsched_pool_destroy(pool));
    printf("test_outcome: ok\n");
    return 0;
}
