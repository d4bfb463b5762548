/*
 * The per-job hot path: ranges split lazily, lanes (max_parallel),
 * wsched_blocking. Policies: policy.c; completion and results: batch.c;
 * submission, waits, fork-join: submit.c, wait.c, forkjoin.c (batch.h).
 *
 * A batch travels as one task {wsched__run_range, batch, lo, hi}. The worker
 * running a range executes jobs from the low end; before each job, if its
 * own deque is empty (nobody has anything to steal from it) and more than
 * one job is left, it pushes the upper half back as a new range task.
 * Without thieves this costs O(log N) pushes per batch; every steal creates
 * one more split. Each executed range subtracts its job count from
 * `remaining` once: no cache line shared by the batch is written per job,
 * and job i writes only slot i and status i.
 *
 * Slot visibility and the waiter's wake-up: completion.h (B1-B4).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "batch.h"
#include "futex.h"
#include "probes.h"
#include "tsan.h"

/* Immutable batch fields, read once per range or lane: the job call is
 * opaque to the compiler, which would otherwise reload them every job. */
struct batch_view {
    wsched_job_fn fn;
    void *arg;
    char *slots;
    size_t stride;
    _Atomic int32_t *status;
    bool arbitrate, streamed, fail_fast;
};

static inline struct batch_view view_of(struct wsched_batch *b)
{
    return (struct batch_view){b->fn, b->arg, b->slots, b->stride, b->status,
                               b->arbitrate, b->ring != NULL,
                               b->policy == WSCHED_POLICY_FAIL_FAST};
}

/* Run (or skip, if cancelled) job i: its one final status, its stream
 * entry, its policy bookkeeping. */
static inline __attribute__((always_inline)) void
run_one(wsched_ctx *ctx, struct wsched_batch *b, const struct batch_view *v, size_t i)
{
    PROBE2(job_start, b, i);
    if (unlikely(v->arbitrate)) {
        wsched__run_arbitrated(ctx, b, i);
        return;
    }
    /* Cancelled (by the user or fail-fast): skip, marked. Relaxed: a job
     * racing the cancel may still start; that is inherent. */
    uint32_t reason = ld(&b->cancel, RLX);
    if (unlikely(reason)) {
        DEBUG_ASSERT(ld(&v->status[i], RLX) == WSCHED_ENOTRUN);
        st(&v->status[i], cancel_status(reason), RLX);
        if (v->streamed)
            stream_push(b, i);
        return;
    }
    int r = v->fn(ctx, v->arg, i, v->slots ? v->slots + i * v->stride : NULL);
    ctx_implicit_sync(ctx);
    /* Relaxed: published by the range's release in range_done. One final
     * status per job, set once: nothing else decides a slot of a batch
     * without arbitration. */
    DEBUG_ASSERT(ld(&v->status[i], RLX) == WSCHED_ENOTRUN);
    st(&v->status[i], job_status(r), RLX);
    if (unlikely(v->streamed))
        stream_push(b, i);
    if (unlikely(r != 0) && v->fail_fast) {
        wsched__note_first_error(b, i, job_status(r));
        wsched__cancel_set(b, CANCEL_FAILFAST);
    }
    PROBE3(job_end, b, i, r);
}

/* A range or lane finished `count` jobs: counters, admission units, and
 * the batch's completion. */
static inline void range_done(struct worker *w, struct wsched_batch *b, size_t count)
{
    STAT_ADD(w, jobs, count);
    if (b->holds_admission)
        wsched__admit_release(b->pool, count);
    if (completion_range_done(&b->remaining, count)) /* B2 */
        wsched__batch_complete(b);
}

static void run_lane(struct worker *w, const struct task *t, bool stolen);

/* A batch with a parallelism limit M runs as min(M, N) lanes; each lane
 * claims the next index with one atomic add per job (the cost of the
 * feature, paid only when used) until none is left. At most M jobs of the
 * batch therefore run at once, and a job held back by the limit is simply
 * an index not yet claimed: no worker ever waits for a permit. */
static void start_lanes(struct worker *w, struct wsched_batch *b)
{
    size_t lanes = b->max_parallel < b->n ? b->max_parallel : b->n;
    /* Every lane holds the batch: one extra unit of `remaining` each, so a
     * lane that starts after the others took every index still finds the
     * batch alive. Relaxed: we hold a range of n, remaining cannot reach
     * zero before our own lane ends. */
    fadd(&b->remaining, lanes, RLX);
    size_t started = 1;
    for (; started < lanes; started++) {
        struct task lane = range_task(run_lane, b, 0, 0);
        bool was_empty;
        if (deque_push_owner(&w->dq, &lane, &was_empty) != 0)
            break; /* fewer lanes: still correct, less parallel */
        pushed(w, was_empty);
    }
    if (started < lanes)
        fsub(&b->remaining, lanes - started, RLX); /* cannot reach zero */
    struct task self = range_task(run_lane, b, 0, 0);
    run_lane(w, &self, false);
}

static void run_lane(struct worker *w, const struct task *t, bool stolen)
{
    (void)stolen;
    struct wsched_batch *b = range_batch(t);
    struct batch_view v = view_of(b);
    wsched_ctx ctx = {.w = w, .batch = b};
    size_t count = 0, i;
    while ((i = fadd(&b->next, 1, RLX)) < b->n) {
        run_one(&ctx, b, &v, i);
        count++;
    }
    STAT_ADD(w, jobs, count);
    if (count && b->holds_admission)
        wsched__admit_release(b->pool, count);
    /* The lane's own unit with its jobs (B2). */
    if (completion_range_done(&b->remaining, count + 1))
        wsched__batch_complete(b);
}

/* Hand the upper half of the private part (r->i, r->hi) back as a
 * stealable range. False if the deque could not take it. */
static __attribute__((noinline)) bool split_upper(struct worker *w, struct wsched_batch *b,
                                                  struct range_state *r)
{
    size_t mid = r->i + (r->hi - r->i + 1) / 2;
    struct task half = range_task(wsched__run_range, b, mid, r->hi);
    bool was_empty;
    if (deque_push_owner(&w->dq, &half, &was_empty) != 0)
        return false;
    r->count -= r->hi - mid;
    r->hi = mid;
    pushed(w, was_empty);
    return true;
}

int wsched_blocking(wsched_ctx *c)
{
    if (!c)
        return -EINVAL;
    /* Split everything after the running job r->i into stealable ranges
     * (a spawned task or a lane holds none privately), then make sure
     * someone is awake to take them and whatever this job spawned: a full
     * notify, with the fence that a push's own check leaves out (pushed(),
     * internal.h). */
    struct range_state *r = c->range;
    while (r && r->hi - r->i > 1)
        if (!split_upper(c->w, c->batch, r))
            break;
    wsched__notify(c->w->pool, -1);
    return 0;
}

void wsched__run_range(struct worker *w, const struct task *t, bool stolen)
{
    (void)stolen;
    struct wsched_batch *b = range_batch(t);
    if (unlikely(b->max_parallel)) {
        start_lanes(w, b); /* the whole batch arrives as one range */
        return;
    }
    struct range_state r = {range_lo(t), range_hi(t), range_hi(t) - range_lo(t)};
    struct batch_view v = view_of(b);
    wsched_ctx ctx = {.w = w, .batch = b, .range = &r};

    /* When the range starts with a worker idle, split it all the way down
     * to the first job: every other job is then stealable, so a job that
     * blocks holds back none of its siblings. */
    bool idle = r.hi - r.i > 1 && pool_has_idle(w->pool);
    for (; r.i < r.hi; r.i++) {
        /* Lazy split: while our deque is empty (nothing for thieves), hand
         * the upper half back as a stealable range. */
        if (unlikely(r.hi - r.i > 1 && (idle || deque_empty_hint(&w->dq))))
            while (split_upper(w, b, &r) && r.hi - r.i > 1 &&
                   (idle || deque_empty_hint(&w->dq)))
                ;
        idle = false;
        run_one(&ctx, b, &v, r.i); /* may shrink r.hi: wsched_blocking */
    }
    range_done(w, b, r.count);
}
