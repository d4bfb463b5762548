/*
 * Batches (index ranges split lazily), fork-join, waits, the stream.
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

#include "debug.h"
#include "futex.h"
#include "internal.h"
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

static void ctx_sync_slow(wsched_ctx *c);

/* After the job or task returned. Its frame is gone: children whose arg
 * pointed into it would read dead stack (wsched.h, wsched_spawn), which
 * WSCHED_DEBUG builds catch here. */
static inline void ctx_implicit_sync(wsched_ctx *c)
{
#ifdef WSCHED_DEBUG
    if (c->stack_args && c->spawned != c->joined_inline + ld(&c->joined_stolen, ACQ))
        wsched__debug_fail("a job or task returned without wsched_sync while children it "
                           "spawned with an arg on its own stack had not been joined",
                           __FILE__, __LINE__);
    c->stack_args = 0;
#endif
    if (unlikely(c->spawned != c->joined_inline))
        ctx_sync_slow(c);
}

/* ------------------------------------------------ policies, cancellation */

static int32_t cancel_status(uint32_t reason)
{
    return reason == CANCEL_DEADLINE ? WSCHED_EDEADLINE : WSCHED_ECANCELLED;
}

#define RING_WAITER 0x80000000u

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
static void cancel_set(struct wsched_batch *b, uint32_t reason)
{
    uint32_t none = CANCEL_NONE;
    cas(&b->cancel, &none, reason, REL);
}

/* Wake the waiters now (quorum decided, deadline passed): the runtime's
 * reference, the admission unit and `remaining` still end with the last
 * range. ACQ_REL as in batch_complete. */
static void signal_done(struct wsched_batch *b)
{
    word_signal(&b->done);
}

/* Decide every slot that is not final yet (arbitrated batches): CAS
 * NOTRUN or RUNNING -> `code`. A job finishing later finds its slot taken
 * and its result is discarded; one that finished first keeps it. */
static void freeze(struct wsched_batch *b, int32_t code)
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
        freeze(b, WSCHED_ECANCELLED);
        cancel_set(b, CANCEL_QUORUM);
        signal_done(b);
    }
}

/* One job of an arbitrated batch (quorum or deadline): claim the slot,
 * run, publish the result, each by CAS on its status. */
static void run_job_arbitrated(wsched_ctx *ctx, struct wsched_batch *b, size_t i)
{
    _Atomic int32_t *st_i = &b->status[i];
    uint32_t reason = ld(&b->cancel, RLX);
    if (!reason && b->deadline && wsched_now_ns() >= b->deadline) {
        cancel_set(b, CANCEL_DEADLINE);
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
            cancel_set(b, CANCEL_FAILFAST);
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
        cancel_set(b, CANCEL_FAILFAST);
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
        if (was_empty)
            wsched__notify(w->pool, -1);
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
static bool split_upper(struct worker *w, struct wsched_batch *b, struct range_state *r)
{
    size_t mid = r->i + (r->hi - r->i + 1) / 2;
    struct task half = {wsched__run_range, (uintptr_t)b, mid, r->hi};
    bool was_empty;
    if (deque_push_owner(&w->dq, &half, &was_empty) != 0)
        return false;
    r->count -= r->hi - mid;
    r->hi = mid;
    if (was_empty)
        wsched__notify(w->pool, -1);
    return true;
}

int wsched_blocking(wsched_ctx *c)
{
    if (!c)
        return -EINVAL;
    struct range_state *r = c->range;
    if (!r)
        return 0; /* a spawned task or a lane: nothing held privately */
    /* Split everything after the running job r->i into stealable ranges,
     * and make sure someone is awake to take them. */
    while (r->hi - r->i > 1)
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
        while (r.hi - r.i > 1 && (idle || deque_empty_hint(&w->dq)))
            if (!split_upper(w, b, &r))
                break;
        idle = false;
        run_one(&ctx, b, &v, r.i); /* may shrink r.hi: wsched_blocking */
    }
    range_done(w, b, r.count);
}

/* An absolute CLOCK_MONOTONIC time in ns (0 = none) as futex_wait's
 * deadline: NULL for none, else *ts filled in. */
static const struct timespec *abs_deadline(uint64_t until, struct timespec *ts)
{
    if (!until)
        return NULL;
    ts->tv_sec = (time_t)(until / 1000000000u);
    ts->tv_nsec = (long)(until % 1000000000u);
    return ts;
}

/* ------------------------------------------------------------- admission */

/* Admission units (admission.h, A1-A3): the waiting and the wake-up. */
void wsched__admit_release(struct pool *p, size_t n)
{
    if (admission_release(&p->admission, n)) { /* A3 */
        fadd(&p->admission.word, 1, REL);
        futex_wake_all(&p->admission.word);
    }
}

static int reserve_jobs(struct pool *p, size_t n, int64_t timeout_ns)
{
    struct admission *a = &p->admission;
    if (n > p->max_jobs)
        return -E2BIG;
    if (admission_try_reserve(a, p->max_jobs, n))
        return 0;
    if (timeout_ns == 0)
        return -EBUSY; /* load shedding */
    /* Only threads outside the pool get here (nested batches are exempt). */
    uint64_t until = timeout_ns > 0 ? wsched_now_ns() + (uint64_t)timeout_ns : 0;
    struct timespec ts;
    const struct timespec *deadline = abs_deadline(until, &ts);
    for (;;) {
        uint32_t v = admission_wait_begin(a); /* A2 */
        if (admission_try_reserve(a, p->max_jobs, n)) {
            admission_wait_end(a);
            return 0;
        }
        int fr = futex_wait(&a->word, v, deadline);
        admission_wait_end(a);
        if (admission_try_reserve(a, p->max_jobs, n))
            return 0;
        if (fr == -ETIMEDOUT || (until && wsched_now_ns() >= until))
            return -ETIMEDOUT;
    }
}

static int submit_impl(wsched_pool *h, const wsched_batch_desc *d, wsched_batch **out,
                       int64_t admit_timeout_ns);

int wsched_submit(wsched_pool *h, const wsched_batch_desc *d, wsched_batch **out)
{
    return submit_impl(h, d, out, -1);
}

int wsched_submit_timed(wsched_pool *h, const wsched_batch_desc *d, wsched_batch **out,
                        int64_t timeout_ns)
{
    return submit_impl(h, d, out, timeout_ns);
}

static int submit_impl(wsched_pool *h, const wsched_batch_desc *d, wsched_batch **out,
                       int64_t admit_timeout_ns)
{
    if (out)
        *out = NULL;
    if (!h || !d || !out || !d->fn || d->njobs == 0)
        return -EINVAL;
    if (d->flags & ~(WSCHED_BATCH_PAD_SLOTS | WSCHED_BATCH_STREAM) ||
        d->policy > WSCHED_QUORUM || d->priority >= WSCHED_NPRIO)
        return -EINVAL;
    bool stream = d->flags & WSCHED_BATCH_STREAM;
    if (stream && d->njobs >= RING_WAITER)
        return -EOVERFLOW; /* the stream's push counter is 31 bits */
    if (d->policy == WSCHED_QUORUM && (d->quorum == 0 || d->quorum > d->njobs))
        return -EINVAL;
    if (!d->slot_size && d->slot_stride)
        return -EINVAL; /* a stride without slots: a caller's mistake */
    for (unsigned k = 0; k < sizeof d->reserved / sizeof d->reserved[0]; k++)
        if (d->reserved[k])
            return -EINVAL;
    size_t n = d->njobs, stride = 0, slot_bytes = 0, status_off, bytes;
    if (d->slot_size) {
        stride = d->slot_stride ? d->slot_stride : d->slot_size;
        if (stride < d->slot_size)
            return -EINVAL;
        if (!d->slots && (d->flags & WSCHED_BATCH_PAD_SLOTS)) {
            if (stride > SIZE_MAX - (CACHELINE - 1))
                return -EOVERFLOW;
            stride = (stride + CACHELINE - 1) & ~(size_t)(CACHELINE - 1);
        }
        if (!size_mul_add(n, stride, 0, &slot_bytes))
            return -EOVERFLOW;
    } else if (d->slots) {
        return -EINVAL;
    }
    /* Layout: header | status[n] | pad to 64 | slots (when library-owned). */
    status_off = sizeof(struct wsched_batch);
    size_t st_end;
    if (!size_mul_add(n, sizeof(int32_t), status_off, &st_end) ||
        st_end > SIZE_MAX - CACHELINE)
        return -EOVERFLOW;
    size_t slots_off = (st_end + CACHELINE - 1) & ~(size_t)(CACHELINE - 1);
    bytes = slots_off;
    if (d->slot_size && !d->slots && !size_mul_add(1, slot_bytes, slots_off, &bytes))
        return -EOVERFLOW;
    /* Completion ring after everything, word-aligned. */
    size_t ring_off = (bytes + 7) & ~(size_t)7;
    if (stream && (!size_mul_add(n, sizeof(size_t), ring_off, &bytes) || ring_off < slots_off))
        return -EOVERFLOW;

    /* Inside one of the pool's workers the running job's own batch keeps
     * the pool alive, so a nested batch needs no handshake with destroy
     * (and is accepted while the pool drains: it is part of accepted work).
     * Its one unit is added before the parent's completion can subtract
     * the parent's (program order, then the `remaining` chain), so inflight
     * cannot touch zero in between: relaxed is enough. */
    struct worker *self = wsched__self;
    bool inside = self && h->magic == POOL_MAGIC && self->pool == h->p &&
                  ld(&h->state, RLX) != POOL_DEAD;
    int r = 0;
    if (inside)
        fadd(&h->inflight, 1, RLX);
    else if ((r = wsched__admit(h)) != 0)
        return r;
    struct pool *p = h->p;
    /* Admission control is for work entering the pool: nested batches are
     * part of admitted work and exempt (waiting for room there could
     * deadlock: the room is held by the very jobs that wait). */
    bool limited = p->max_jobs && !inside;
    /* A worker of another pool never waits for this pool's room either:
     * it would hold its own pool's worker (and could deadlock if this
     * pool's jobs wait for that pool). It gets load shedding (-EBUSY). */
    if (limited && self && admit_timeout_ns != 0)
        admit_timeout_ns = 0;
    if (limited && (r = reserve_jobs(p, n, admit_timeout_ns)) != 0) {
        wsched__unadmit(h, inside ? 1 : 2);
        return r;
    }
    struct wsched_batch *b = mem_alloc(&p->mem, bytes, CACHELINE);
    if (!b) {
        if (limited)
            wsched__admit_release(p, n);
        wsched__unadmit(h, inside ? 1 : 2);
        return -ENOMEM;
    }
    b->fn = d->fn;
    b->arg = d->arg;
    b->n = n;
    b->stride = stride;
    b->status = (_Atomic int32_t *)((char *)b + status_off);
    b->policy = d->policy;
    b->quorum = d->quorum;
    b->deadline = d->deadline_ns;
    b->arbitrate = d->policy == WSCHED_QUORUM || d->deadline_ns != 0;
    b->max_parallel = d->max_parallel;
    b->prio = d->priority;
    b->limited = limited;
    st(&b->next, 0, RLX);
    st(&b->cancel, CANCEL_NONE, RLX);
    st(&b->first_error, 0, RLX);
    st(&b->first_index, 0, RLX);
    st(&b->succeeded, 0, RLX);
    st(&b->failed, 0, RLX);
    b->handle = h;
    b->pool = p;
    b->alloc = p->mem.a;
    b->bytes = bytes;
    for (size_t i = 0; i < n; i++)
        st(&b->status[i], WSCHED_ENOTRUN, RLX);
    if (!d->slot_size)
        b->slots = NULL;
    else if (d->slots)
        b->slots = d->slots;
    else {
        b->slots = (char *)b + slots_off;
        memset(b->slots, 0, slot_bytes);
    }
    b->ring = NULL;
    if (stream) {
        b->ring = (_Atomic size_t *)((char *)b + ring_off);
        for (size_t i = 0; i < n; i++)
            st(&b->ring[i], 0, RLX);
    }
    b->ring_head = 0;
    st(&b->ring_tail, 0, RLX);
    st(&b->ring_word, 0, RLX);
    st(&b->remaining, n, RLX);
    st(&b->done, BATCH_RUNNING, RLX);
    st(&b->idle, BATCH_RUNNING, RLX);
    st(&b->refs, 2, RLX); /* published with the batch below */
    *out = b;
    PROBE2(batch_submit, b, n);

    struct task t = {wsched__run_range, (uintptr_t)b, 0, n};
    bool was_empty;
    if (inside) {
        /* One range on our own deque (release in push). When the deque
         * cannot grow the submit fails cleanly: an inbox would do, but
         * waiting workers do not start batches from inboxes (help), so a
         * pool whose every worker waits on such a batch would stall. */
        if (deque_push_owner(&self->dq, &t, &was_empty) != 0) {
            *out = NULL;
            if (limited)
                wsched__admit_release(p, n);
            mem_free(&p->mem, b, bytes, CACHELINE);
            wsched__unadmit(h, 1);
            return -ENOMEM;
        }
        if (was_empty)
            wsched__notify(p, -1);
        return 0;
    }
    /* From outside: a worker's inbox, round-robin per thread so that
     * submitters spread without sharing a counter. */
    static _Thread_local unsigned rr;
    if (rr == 0)
        rr = (unsigned)(((uintptr_t)&rr >> 6) * 2654435761u) | 1u;
    inbox_push(&p->workers[rr++ % p->n], b);
    /* The batch may be complete and freed by now: touch only the handle. */
    wsched__unadmit(h, 1);
    return 0;
}

/* One step of an in-job wait: run one task from anywhere (own deque first),
 * or back off: pause 64 times, then yield the CPU between attempts. */
static void help_once(struct worker *w, unsigned *idle)
{
    struct task t;
    bool stolen;
    if (wsched__find_work(w, &t, &stolen)) {
        run_task(w, &t, stolen);
        *idle = 0;
    } else if (++*idle < 64) {
        cpu_relax();
    } else {
        sched_yield();
    }
}


/* Run other work until *word == until or the deadline (0 = none) passes:
 * in-worker waits never park the worker. Returns false on timeout. */
bool wsched__help_until(struct worker *w, _Atomic uint32_t *word, uint32_t until,
                        uint64_t deadline)
{
    unsigned idle = 0;
    while (ld(word, ACQ) != until) {
        if (deadline && wsched_now_ns() >= deadline)
            return false;
        help_once(w, &idle);
    }
    return true;
}

/* Outside the pool: poll briefly, then sleep on the batch's futex word until
 * done or the absolute deadline `until` (0 = none). True when done.
 * The poll: a batch about to complete then costs the completing worker no
 * futex wake and us no sleep/wake round trip; the yields hand the CPU to a
 * worker that shares it (more threads than CPUs is the common case for
 * request threads). Bounded: WAIT_SPINS pauses, then WAIT_YIELDS yields. */
#define WAIT_SPINS 64
#define WAIT_YIELDS 4
static bool external_wait(_Atomic uint32_t *word, uint64_t until)
{
    for (unsigned i = 0; i < WAIT_SPINS + WAIT_YIELDS; i++) {
        if (i < WAIT_SPINS) {
            cpu_relax();
        } else {
            sched_yield(); /* may take long: keep to the deadline */
            if (until && wsched_now_ns() >= until)
                return completion_done(word);
        }
        if (completion_done(word))
            return true;
    }
    struct timespec ts;
    const struct timespec *deadline = abs_deadline(until, &ts);
    for (;;) {
        /* Announce a waiter (RUNNING -> WAITED) so the signaller wakes us
         * (B4; ACQUIRE on failure too: see completion.h). */
        if (completion_announce(word))
            return true;
        int r = futex_wait(word, BATCH_WAITED, deadline);
        if (completion_done(word))
            return true;
        if (r == -ETIMEDOUT)
            return false;
    }
}

/* Wait on a batch word: help inside the pool, poll then sleep outside. */
static bool word_wait(struct wsched_batch *b, _Atomic uint32_t *word, uint64_t until)
{
    struct worker *self = wsched__self;
    if (self && self->pool == b->pool)
        return wsched__help_until(self, word, BATCH_DONE, until);
    return external_wait(word, until);
}

/* What wsched_wait returns once the waiters were released. */
static int wait_result(struct wsched_batch *b)
{
    uint32_t reason = ld(&b->cancel, ACQ); /* ACQUIRE: first_error with it */
    if (reason == CANCEL_DEADLINE)
        return -ETIMEDOUT;
    if (reason == CANCEL_FAILFAST ||
        (reason == CANCEL_QUORUM && ld(&b->succeeded, RLX) < b->quorum))
        return ld(&b->first_error, RLX);
    return 0;
}

/* The batch's deadline passed while we waited: decide the slots that are
 * not final (WSCHED_EDEADLINE), release every waiter, and report it. */
static void finish_after_idle(struct wsched_batch *b);

static int deadline_expire(struct wsched_batch *b)
{
    /* Every job returned before we looked (batch_complete is between its
     * two stores): the batch completed; it did not miss its deadline. */
    if (completion_done(&b->idle)) {
        finish_after_idle(b);
        return wait_result(b);
    }
    freeze(b, WSCHED_EDEADLINE); /* first, as in quorum_account */
    cancel_set(b, CANCEL_DEADLINE);
    signal_done(b);
    return wait_result(b);
}

/* A poll (timeout 0) from inside the pool runs one task first, so a job
 * that polls in a loop makes progress (its nested jobs may sit on its own
 * deque). True when *word reached DONE. */
static bool poll_step(struct wsched_batch *b, _Atomic uint32_t *word)
{
    struct worker *self = wsched__self;
    if (self && self->pool == b->pool) {
        unsigned idle = 0;
        help_once(self, &idle);
    }
    return completion_done(word);
}

int wsched_wait(wsched_batch *b, int64_t timeout_ns)
{
    if (!b)
        return -EINVAL;
    if (completion_done(&b->done)) /* ACQUIRE: slots visible */
        return wait_result(b);
    if (timeout_ns == 0 && (!b->deadline || wsched_now_ns() < b->deadline))
        return poll_step(b, &b->done) ? wait_result(b) : -ETIMEDOUT;
    uint64_t now = 0, until = 0; /* absolute; 0 = for ever */
    if (timeout_ns >= 0 || b->deadline) {
        now = wsched_now_ns();
        if (timeout_ns >= 0)
            until = now + (uint64_t)timeout_ns;
        if (b->deadline && (!until || b->deadline < until))
            until = b->deadline;
        if (until <= now)
            return b->deadline && now >= b->deadline ? deadline_expire(b) : -ETIMEDOUT;
    }
    if (word_wait(b, &b->done, until))
        return wait_result(b);
    if (b->deadline && wsched_now_ns() >= b->deadline)
        return deadline_expire(b);
    return -ETIMEDOUT;
}

int wsched_next_done(wsched_batch *b, int64_t timeout_ns, size_t *index)
{
    if (!b || !index || !b->ring)
        return -EINVAL;
    if (b->ring_head == b->n)
        return -ENODATA;
    _Atomic size_t *e = &b->ring[b->ring_head];
    uint64_t until = timeout_ns > 0 ? wsched_now_ns() + (uint64_t)timeout_ns : 0;
    struct worker *self = wsched__self;
    bool inside = self && self->pool == b->pool, polled = false, expired = false;
    unsigned idle = 0;
    size_t v;
    /* ACQUIRE: pairs with stream_push's RELEASE: slot and status visible. */
    while ((v = ld(e, ACQ)) == 0) {
        uint64_t now = until || b->deadline ? wsched_now_ns() : 0;
        if (b->deadline && now >= b->deadline && !expired) {
            /* The deadline takes effect for a stream consumer too: every
             * slot still open is decided now and pushed (the entries of
             * jobs deciding their own slot concurrently follow at once). */
            deadline_expire(b);
            expired = true;
            continue;
        }
        if (timeout_ns == 0) {
            if (polled || !inside)
                return -ETIMEDOUT;
            polled = true; /* a poll from a job makes progress first */
            help_once(self, &idle);
            continue;
        }
        if (until && now >= until)
            return -ETIMEDOUT;
        if (inside) {
            help_once(self, &idle); /* never block a worker */
            continue;
        }
        /* Announce the sleeper (SC RMW), re-check, then sleep until a push
         * changes the word (see stream_push), the timeout or the deadline. */
        uint32_t w = for_(&b->ring_word, RING_WAITER, SC) | RING_WAITER;
        if ((v = ld(e, ACQ)) != 0)
            break;
        uint64_t wake = until;
        if (b->deadline && !expired && (!wake || b->deadline < wake))
            wake = b->deadline;
        struct timespec ts;
        futex_wait(&b->ring_word, w, abs_deadline(wake, &ts));
    }
    b->ring_head++;
    *index = v - 1;
    return 0;
}

/* `idle` is set just before `done` (batch_complete): once idle is seen,
 * wait the few instructions until done is set too, so that wsched_wait and
 * wsched_wait_idle answer "complete" from the same moment in both
 * directions (found by tests/fuzz: wait_idle 0, then wait(b, 0) timed out).
 * No timeout: the completing thread is already between the two stores. */
static void finish_after_idle(struct wsched_batch *b)
{
    if (!completion_done(&b->done))
        word_wait(b, &b->done, 0);
}

int wsched_wait_idle(wsched_batch *b, int64_t timeout_ns)
{
    if (!b)
        return -EINVAL;
    bool idle = completion_done(&b->idle);
    if (!idle && timeout_ns == 0)
        idle = poll_step(b, &b->idle);
    if (!idle && timeout_ns != 0) {
        uint64_t until = timeout_ns < 0 ? 0 : wsched_now_ns() + (uint64_t)timeout_ns;
        idle = word_wait(b, &b->idle, until);
    }
    if (!idle)
        return -ETIMEDOUT;
    finish_after_idle(b);
    return 0;
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
    cancel_set(b, CANCEL_USER);
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

/* ------------------------------------------------------------ fork-join */

static void run_spawned(struct worker *w, const struct task *t, bool stolen)
{
    wsched_task_fn fn = (wsched_task_fn)t->a;
    wsched_ctx *parent = (wsched_ctx *)t->c;
    wsched_ctx c = {.w = w, .batch = parent->batch};
    fn(&c, (void *)t->b);
    ctx_implicit_sync(&c);
    STAT_ADD(w, tasks, 1);
    if (stolen)
        fadd(&parent->joined_stolen, 1, REL); /* pairs with sync's ACQUIRE */
    else
        parent->joined_inline++; /* popped => parent is on this stack */
}

int wsched_spawn(wsched_ctx *c, wsched_task_fn fn, void *arg)
{
    if (!c || !fn)
        return -EINVAL;
    struct task t = {run_spawned, (uintptr_t)fn, (uintptr_t)arg, (uintptr_t)c};
    bool was_empty;
    if (unlikely(deque_push_owner(&c->w->dq, &t, &was_empty) != 0)) {
        /* Deque cannot grow: run the child now; it is joined already. */
        wsched_ctx child = {.w = c->w, .batch = c->batch};
        fn(&child, arg);
        ctx_implicit_sync(&child);
        return 0;
    }
    c->spawned++;
#ifdef WSCHED_DEBUG
    /* The job's own frames lie between ours and its ctx (which lives in
     * the frame of the runner that called it): an arg there dies when the
     * job returns. */
    char *here = __builtin_frame_address(0);
    if ((char *)arg > here && (char *)arg < (char *)c)
        c->stack_args++;
#endif
    if (was_empty)
        wsched__notify(c->w->pool, -1);
    return 0;
}

static void ctx_sync_slow(wsched_ctx *c)
{
    struct worker *w = c->w;
    unsigned idle = 0;
    /* ACQUIRE on joined_stolen: a stolen child's writes (its results) are
     * visible once it is counted. */
    while (c->joined_inline + ld(&c->joined_stolen, ACQ) != c->spawned)
        help_once(w, &idle); /* pops our own children back first */
    c->spawned = c->joined_inline = 0;
    st(&c->joined_stolen, 0, RLX);
}

int wsched_sync(wsched_ctx *c)
{
    if (!c)
        return -EINVAL;
    /* Fast path: pop our own children back, newest first, and call them
     * directly. A popped record that is not our child (only possible once
     * ours were all stolen) is run like any other task. */
    struct worker *w = c->w;
    while (c->spawned != c->joined_inline + ld(&c->joined_stolen, RLX)) {
        struct task t;
        if (!deque_pop_owner(&w->dq, &t))
            break; /* the rest was stolen: wait for it below */
        if (likely(t.run == run_spawned && t.c == (uintptr_t)c)) {
            wsched_ctx child = {.w = w, .batch = c->batch};
            ((wsched_task_fn)t.a)(&child, (void *)t.b);
            ctx_implicit_sync(&child);
            STAT_ADD(w, tasks, 1);
            c->joined_inline++;
        } else {
            run_task(w, &t, false);
        }
    }
#ifdef WSCHED_DEBUG
    c->stack_args = 0; /* joined below: their args may die now */
#endif
    if (c->spawned == c->joined_inline) {
        c->spawned = c->joined_inline = 0; /* none stolen: nothing to reset */
        return 0;
    }
    ctx_sync_slow(c);
    return 0;
}

unsigned wsched_ctx_worker(const wsched_ctx *c) { return c ? c->w->index : 0; }

int wsched_current_worker(void)
{
    return wsched__self ? (int)wsched__self->index : -1;
}
