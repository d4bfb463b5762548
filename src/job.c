/*
 * Batches: the per-job path (ranges split lazily, lanes), policies and
 * cancellation, completion, the stream's producer, results. Submission,
 * waits and fork-join: submit.c, wait.c, forkjoin.c (batch.h).
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



/* -------------------------------------------------------------- batches */

static void batch_unref(struct wsched_batch *b)
{
    /* ACQ_REL: the last reference sees all uses of the batch before freeing. */
    if (fsub(&b->refs, 1, AR) == 1) {
        wsched_allocator a = b->alloc;
        a.free(a.ctx, b, b->bytes, CACHELINE);
    }
}

/* Set a wait word (done, idle) to DONE and wake its sleepers, if any.
 * B3 (completion.h): the RELEASE half publishes every slot to the waiter;
 * program order (and B2's acquire) already puts the completed range's
 * stores before it (tests/model: an exchange weakened to RELEASE is
 * equivalent). */
static void word_signal(_Atomic uint32_t *word)
{
    if (completion_signal(word)) /* B3 */
        futex_wake_all(word);
}

static void batch_complete(struct wsched_batch *b)
{
    PROBE1(batch_complete, b);
    /* Every job has returned: `idle` first, then `done`, so that a waiter
     * released by `done` (its ACQUIRE load reads this thread's later
     * RELEASE exchange) already sees `idle` set: wsched_wait returning is
     * the moment wsched_wait_idle answers 0 (header). */
    word_signal(&b->idle);
    DEBUG_POINT("complete");
    word_signal(&b->done); /* a no-op if an early completion came first */
    wsched__unadmit(b->handle, 1);
    batch_unref(b);
}

static inline int32_t job_status(int r)
{
    if (r <= WSCHED_ERRBASE && r >= WSCHED_ERRBASE - 64)
        return WSCHED_EJOBCODE;
    return r;
}

/* ------------------------------------------------ policies, cancellation */

static int32_t cancel_status(uint32_t reason)
{
    return reason == CANCEL_DEADLINE ? WSCHED_EDEADLINE : WSCHED_ECANCELLED;
}

/* Append job i to the completion stream, if the batch has one. Called once
 * per job, by whoever decided its final status, after storing it. */
static inline void stream_push(struct wsched_batch *b, size_t i)
{
    if (likely(!b->ring))
        return;
    size_t pos = fadd(&b->ring_tail, 1, RLX); /* a unique position */
    /* RELEASE: slot and status before the entry (consumer's ACQUIRE). */
    st(&b->ring[pos], i + 1, REL);
    /* SC RMW after the store: pairs with the consumer's SC RMW setting
     * RING_WAITER before it re-reads the ring (no lost wake-up). */
    uint32_t old = fadd(&b->ring_word, 1, SC);
    if (old & RING_WAITER) {
        fand(&b->ring_word, ~RING_WAITER, RLX);
        futex_wake_all(&b->ring_word);
    }
}

/* First reason wins. RELEASE: a job that sees the flag (relaxed, per job)
 * needs nothing else from the canceller; release only keeps the first
 * error (stored before) visible with it. */
void wsched__cancel_set(struct wsched_batch *b, uint32_t reason)
{
    uint32_t none = CANCEL_NONE;
    cas(&b->cancel, &none, reason, REL);
}

/* Wake the waiters now (quorum decided, deadline passed): the runtime's
 * reference, the admission unit and `remaining` still end with the last
 * range. ACQ_REL as in batch_complete. */
void wsched__signal_done(struct wsched_batch *b)
{
    word_signal(&b->done);
}

/* Decide every slot that is not final yet (arbitrated batches): CAS
 * NOTRUN or RUNNING -> `code`. A job finishing later finds its slot taken
 * and its result is discarded; one that finished first keeps it. */
void wsched__freeze(struct wsched_batch *b, int32_t code)
{
    for (size_t i = 0; i < b->n; i++) {
        int32_t v = ld(&b->status[i], RLX);
        while (v == WSCHED_ENOTRUN || v == STATUS_RUNNING) {
            if (atomic_compare_exchange_weak_explicit(&b->status[i], &v, code, AR, RLX)) {
                stream_push(b, i);
                break;
            }
        }
    }
}

/* The first job error of a fail-fast or quorum batch, and its index
 * (wsched_batch_outcome). Relaxed: read after the batch completed (the
 * completion chain publishes them), or as a snapshot. */
static void note_first_error(struct wsched_batch *b, size_t i, int32_t code)
{
    int32_t z = 0;
    if (cas(&b->first_error, &z, code, RLX))
        st(&b->first_index, i, RLX);
}

/* Quorum bookkeeping after a job of a QUORUM batch finished (per job:
 * the cost of the feature when used). */
static void quorum_account(struct wsched_batch *b, size_t i, int32_t code)
{
    bool decided;
    if (code == 0)
        decided = fadd(&b->succeeded, 1, AR) + 1 == b->quorum;
    else {
        note_first_error(b, i, code);
        decided = fadd(&b->failed, 1, AR) + 1 == b->n - b->quorum + 1;
    }
    if (decided) { /* exactly one job sees its count hit the threshold */
        /* Freeze first, then signal the running jobs: one that stops when
         * it sees the cancel finds its slot already decided. */
        wsched__freeze(b, WSCHED_ECANCELLED);
        wsched__cancel_set(b, CANCEL_QUORUM);
        wsched__signal_done(b);
    }
}

/* One job of an arbitrated batch (quorum or deadline): claim the slot,
 * run, publish the result, each by CAS on its status. */
static void run_job_arbitrated(wsched_ctx *ctx, struct wsched_batch *b, size_t i)
{
    _Atomic int32_t *st_i = &b->status[i];
    uint32_t reason = ld(&b->cancel, RLX);
    if (!reason && b->deadline && wsched_now_ns() >= b->deadline) {
        wsched__cancel_set(b, CANCEL_DEADLINE);
        reason = CANCEL_DEADLINE;
    }
    int32_t v = WSCHED_ENOTRUN;
    if (reason) {
        if (cas(st_i, &v, cancel_status(reason), RLX))
            stream_push(b, i);
        return;
    }
    if (!cas(st_i, &v, STATUS_RUNNING, RLX))
        return; /* frozen before we started */
    int r = b->fn(ctx, b->arg, i, b->slots ? b->slots + i * b->stride : NULL);
    ctx_implicit_sync(ctx);
    int32_t code = job_status(r);
    v = STATUS_RUNNING;
    /* RELEASE: the slot's contents with its final status. */
    if (cas(st_i, &v, code, REL)) {
        stream_push(b, i);
        if (b->policy == WSCHED_QUORUM) {
            quorum_account(b, i, code);
        } else if (code != 0 && b->policy == WSCHED_FAIL_FAST) {
            note_first_error(b, i, code);
            wsched__cancel_set(b, CANCEL_FAILFAST);
        }
    }
}

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
                               b->policy == WSCHED_FAIL_FAST};
}

/* Run (or skip, if cancelled) job i: its one final status, its stream
 * entry, its policy bookkeeping. */
static inline __attribute__((always_inline)) void
run_one(wsched_ctx *ctx, struct wsched_batch *b, const struct batch_view *v, size_t i)
{
    PROBE2(job_start, b, i);
    if (unlikely(v->arbitrate)) {
        run_job_arbitrated(ctx, b, i);
        return;
    }
    /* Cancelled (by the user or fail-fast): skip, marked. Relaxed: a job
     * racing the cancel may still start; that is inherent. */
    uint32_t reason = ld(&b->cancel, RLX);
    if (unlikely(reason)) {
        st(&v->status[i], cancel_status(reason), RLX);
        if (v->streamed)
            stream_push(b, i);
        return;
    }
    int r = v->fn(ctx, v->arg, i, v->slots ? v->slots + i * v->stride : NULL);
    ctx_implicit_sync(ctx);
    /* Relaxed: published by the range's release in range_done. */
    st(&v->status[i], job_status(r), RLX);
    if (unlikely(v->streamed))
        stream_push(b, i);
    if (unlikely(r != 0) && v->fail_fast) {
        note_first_error(b, i, job_status(r));
        wsched__cancel_set(b, CANCEL_FAILFAST);
    }
    PROBE3(job_end, b, i, r);
}

/* A range or lane finished `count` jobs: counters, admission units, and
 * the batch's completion. */
static inline void range_done(struct worker *w, struct wsched_batch *b, size_t count)
{
    STAT_ADD(w, jobs, count);
    if (b->limited)
        wsched__admit_release(b->pool, count);
    if (completion_range_done(&b->remaining, count)) /* B2 */
        batch_complete(b);
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
        struct task lane = {run_lane, (uintptr_t)b, 0, 0};
        bool was_empty;
        if (deque_push_owner(&w->dq, &lane, &was_empty) != 0)
            break; /* fewer lanes: still correct, less parallel */
        pushed(w, was_empty);
    }
    if (started < lanes)
        fsub(&b->remaining, lanes - started, RLX); /* cannot reach zero */
    struct task self = {run_lane, (uintptr_t)b, 0, 0};
    run_lane(w, &self, false);
}

static void run_lane(struct worker *w, const struct task *t, bool stolen)
{
    (void)stolen;
    struct wsched_batch *b = (struct wsched_batch *)t->a;
    struct batch_view v = view_of(b);
    wsched_ctx ctx = {.w = w, .batch = b};
    size_t count = 0, i;
    while ((i = fadd(&b->next, 1, RLX)) < b->n) {
        run_one(&ctx, b, &v, i);
        count++;
    }
    STAT_ADD(w, jobs, count);
    if (count && b->limited)
        wsched__admit_release(b->pool, count);
    /* The lane's own unit with its jobs (B2). */
    if (completion_range_done(&b->remaining, count + 1))
        batch_complete(b);
}

/* Hand the upper half of the private part (r->i, r->hi) back as a
 * stealable range. False if the deque could not take it. */
static __attribute__((noinline)) bool split_upper(struct worker *w, struct wsched_batch *b,
                                                  struct range_state *r)
{
    size_t mid = r->i + (r->hi - r->i + 1) / 2;
    struct task half = {wsched__run_range, (uintptr_t)b, mid, r->hi};
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
    struct wsched_batch *b = (struct wsched_batch *)t->a;
    if (unlikely(b->max_parallel)) {
        start_lanes(w, b); /* the whole batch arrives as one range */
        return;
    }
    struct range_state r = {t->b, t->c, t->c - t->b};
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

void wsched_batch_free(wsched_batch *b)
{
    if (b)
        batch_unref(b);
}

size_t wsched_batch_size(const wsched_batch *b) { return b ? b->n : 0; }

void *wsched_batch_slot(const wsched_batch *b, size_t i)
{
    return b && b->slots && i < b->n ? b->slots + i * b->stride : NULL;
}

static int32_t status_public(int32_t v)
{
    return v == STATUS_RUNNING ? WSCHED_ENOTRUN : v;
}

int wsched_batch_status(const wsched_batch *b, size_t i)
{
    if (!b || i >= b->n)
        return -EINVAL;
    /* ACQUIRE: pairs with the release CAS of an arbitrated job, so a final
     * status read before the batch completed comes with its slot. */
    return status_public(ld(&((wsched_batch *)b)->status[i], ACQ));
}

size_t wsched_batch_failed(const wsched_batch *b)
{
    size_t k = 0;
    for (size_t i = 0; b && i < b->n; i++)
        k += ld(&((wsched_batch *)b)->status[i], RLX) != 0;
    return k;
}

int wsched_batch_outcome(const wsched_batch *cb, wsched_outcome *out)
{
    if (!cb || !out)
        return -EINVAL;
    struct wsched_batch *b = (struct wsched_batch *)cb;
    memset(out, 0, sizeof *out);
    /* ACQUIRE on done (or idle, set just before it on a normal
     * completion): every status, cancel and first_error with it. */
    bool complete = completion_done(&b->done) || completion_done(&b->idle);
    uint32_t reason = ld(&b->cancel, ACQ);
    size_t first_failed = SIZE_MAX;
    for (size_t i = 0; i < b->n; i++) {
        int32_t v = ld(&b->status[i], ACQ);
        if (v == 0) {
            out->ok++;
        } else if (v == WSCHED_ECANCELLED) {
            out->cancelled++;
        } else if (v == WSCHED_EDEADLINE) {
            out->timed_out++;
        } else if (v == WSCHED_ENOTRUN || v == STATUS_RUNNING) {
            out->unfinished++;
        } else {
            out->failed++;
            if (first_failed == SIZE_MAX)
                first_failed = i;
        }
    }
    if (!complete)
        out->end = WSCHED_END_RUNNING;
    else if (reason == CANCEL_USER)
        out->end = WSCHED_END_CANCELLED;
    else if (reason == CANCEL_DEADLINE)
        out->end = WSCHED_END_DEADLINE;
    else if (reason == CANCEL_FAILFAST)
        out->end = WSCHED_END_FAILED;
    else if (reason == CANCEL_QUORUM)
        out->end = ld(&b->succeeded, RLX) >= b->quorum ? WSCHED_END_QUORUM_REACHED
                                                        : WSCHED_END_QUORUM_IMPOSSIBLE;
    else
        out->end = WSCHED_END_COMPLETED;
    int32_t fe = ld(&b->first_error, RLX);
    if (fe) { /* fail-fast or quorum: the first failure in time */
        out->first_error = fe;
        out->first_error_index = ld(&b->first_index, RLX);
    } else if (first_failed != SIZE_MAX) { /* else the lowest index */
        out->first_error = ld(&b->status[first_failed], RLX);
        out->first_error_index = first_failed;
    } else {
        out->first_error_index = SIZE_MAX;
    }
    return 0;
}

int wsched_cancel(wsched_batch *b)
{
    if (!b)
        return -EINVAL;
    wsched__cancel_set(b, CANCEL_USER);
    return 0;
}

int wsched_cancelled(const wsched_ctx *c)
{
    if (!c || !c->batch)
        return 0;
    struct wsched_batch *b = c->batch;
    return ld(&b->cancel, RLX) != CANCEL_NONE ||
           (b->deadline && wsched_now_ns() >= b->deadline);
}

uint64_t wsched_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

