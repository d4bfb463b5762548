/*
 * wsched_submit: validation, the batch's one allocation and layout, the
 * destroy handshake (pool.c) and the admission limit (admission.h A1-A3),
 * and placement: the worker's own deque from inside the pool, an inbox
 * (inbox.h) from outside.
 */
#include <errno.h>
#include <stddef.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "batch.h"
#include "futex.h"
#include "probes.h"
#include "tsan.h"

static int submit_impl(wsched_pool *h, const wsched_batch_desc *d, wsched_batch **out,
                       int64_t admit_timeout_ns);

/* From outside: a worker's inbox, round-robin per thread so that
 * submitters spread without sharing a counter; then the wake-up check. */
void wsched__outside_push(struct pool *p, unsigned prio, struct inbox_link *l)
{
    static WSCHED_TLS unsigned rr;
    if (rr == 0)
        rr = (unsigned)(((uintptr_t)&rr >> 6) * 2654435761u) | 1u;
    unsigned at = rr;
    if (at >= p->n) /* first use, a wrap, or a smaller pool: no division otherwise */
        at %= p->n;
    rr = at + 1;
    struct worker *to = &p->workers[at];
    inbox_push(to, prio, l);
    wsched__notify_after_sc(p, (int)to->index); /* N1 is I1's seq_cst RMW */
}

/* wsched_reserve's stand-in job: never called. */
static int wsched__reserve_placeholder(wsched_ctx *ctx, void *arg, size_t i, void *slot)
{
    (void)ctx, (void)arg, (void)i, (void)slot;
    return 0;
}

int wsched_submit(wsched_pool *h, const wsched_batch_desc *d, wsched_batch **out)
{
    return submit_impl(h, d, out, -1);
}

int wsched_submit_timed(wsched_pool *h, const wsched_batch_desc *d, wsched_batch **out,
                        int64_t timeout_ns)
{
    return submit_impl(h, d, out, timeout_ns);
}

/* The header's lines (internal.h): what a plain batch's worker reads is on
 * lines 0, 1 and 3. */
static_assert(offsetof(struct wsched_batch, status) < 64 &&
                  offsetof(struct wsched_batch, cancel) < 128 &&
                  offsetof(struct wsched_batch, deadline) < 192 &&
                  offsetof(struct wsched_batch, dl_state) < 256 &&
                  offsetof(struct wsched_batch, ring_head) < 320 &&
                  sizeof(struct wsched_batch) == 384,
              "struct wsched_batch: a field moved to another cache line");

/* Phase 1: the description alone. */
static int desc_check(const wsched_batch_desc *d)
{
    if (!d->fn == !d->range_fn || d->njobs == 0)
        return -EINVAL; /* one of fn and range_fn */
    /* Range jobs: one status per chunk, decided by the chunk's return; the
     * policies that decide single slots (quorum, a deadline), per-job
     * streams, lanes and waits need one call per job. */
    if (d->range_fn && (d->policy == WSCHED_POLICY_QUORUM || d->deadline_ns ||
                        d->max_parallel || (d->flags & (WSCHED_BATCH_STREAM | WSCHED_BATCH_WAITS))))
        return -EINVAL;
    if (d->grain && !d->range_fn)
        return -EINVAL;
    /* A downstream's jobs wait (backoff, delay): one call per job. */
    if (d->downstream) {
        struct downstream *ds;
        int e = ds_of(d->downstream, &ds); /* -EBADF: destroyed */
        if (e)
            return e;
        if (d->range_fn)
            return -EINVAL;
    }
    if (d->flags & ~(WSCHED_BATCH_PAD_SLOTS | WSCHED_BATCH_STREAM | WSCHED_BATCH_WAITS) ||
        d->policy > WSCHED_POLICY_QUORUM || d->priority >= WSCHED_NPRIO)
        return -EINVAL;
    if ((d->flags & WSCHED_BATCH_STREAM) && d->njobs >= RING_WAITER)
        return -EOVERFLOW; /* the stream's push counter is 31 bits */
    if (d->policy == WSCHED_POLICY_QUORUM && (d->quorum == 0 || d->quorum > d->njobs))
        return -EINVAL;
    if (!d->slot_size && (d->slot_stride || d->slots))
        return -EINVAL; /* a stride or memory without slots: a caller's mistake */
    if ((d->flags & WSCHED_BATCH_WAITS) && d->njobs > UINT32_MAX)
        return -EOVERFLOW; /* a wait record names its job in 32 bits */
    for (unsigned k = 0; k < sizeof d->reserved / sizeof d->reserved[0]; k++)
        if (d->reserved[k])
            return -EINVAL;
    return 0;
}

/* Where everything lives in the batch's one allocation:
 * header | status[n] | pad to 64 | slots (when library-owned) | ring. */
struct layout {
    size_t stride, slot_bytes, status_off, slots_off, ring_off, waits_off, pol_off, hwaits_off,
        hscratch_off, bytes;
};

/* Phase 2: the layout, every size checked for overflow. */
static int layout_of(const wsched_batch_desc *d, struct layout *l)
{
    size_t n = d->njobs;
    *l = (struct layout){0};
    if (d->slot_size) {
        l->stride = d->slot_stride ? d->slot_stride : d->slot_size;
        if (l->stride < d->slot_size)
            return -EINVAL;
        if (!d->slots && (d->flags & WSCHED_BATCH_PAD_SLOTS)) {
            if (l->stride > SIZE_MAX - (CACHELINE - 1))
                return -EOVERFLOW;
            l->stride = (l->stride + CACHELINE - 1) & ~(size_t)(CACHELINE - 1);
        }
        if (!size_mul_add(n, l->stride, 0, &l->slot_bytes))
            return -EOVERFLOW;
    }
    l->status_off = sizeof(struct wsched_batch);
    size_t st_end;
    if (!size_mul_add(n, sizeof(int32_t), l->status_off, &st_end) ||
        st_end > SIZE_MAX - CACHELINE)
        return -EOVERFLOW;
    l->slots_off = (st_end + CACHELINE - 1) & ~(size_t)(CACHELINE - 1);
    l->bytes = l->slots_off;
    if (d->slot_size && !d->slots && !size_mul_add(1, l->slot_bytes, l->slots_off, &l->bytes))
        return -EOVERFLOW;
    /* The completion ring after everything, word-aligned. */
    l->ring_off = (l->bytes + 7) & ~(size_t)7;
    if ((d->flags & WSCHED_BATCH_STREAM) &&
        (!size_mul_add(n, sizeof(size_t), l->ring_off, &l->bytes) || l->ring_off < l->slots_off))
        return -EOVERFLOW;
    /* The wait records last, pointer-aligned. */
    l->waits_off = (l->bytes + 63) & ~(size_t)63; /* a line per record */
    /* With a deadline, one more: the batch's deadline timer (D1, run.c). */
    size_t records = n + ((d->flags & WSCHED_BATCH_WAITS) && d->deadline_ns);
    if ((d->flags & WSCHED_BATCH_WAITS) &&
        (l->waits_off < l->bytes || records < n ||
         !size_mul_add(records, sizeof(struct job_wait), l->waits_off, &l->bytes)))
        return -EOVERFLOW;
    /* A downstream's per-job state after them (resilient.c). */
    l->pol_off = (l->bytes + 15) & ~(size_t)15;
    if (d->downstream && (l->pol_off < l->bytes ||
                          !size_mul_add(n, sizeof(struct job_pol), l->pol_off, &l->bytes)))
        return -EOVERFLOW;
    /* Hedging: a wait record per job for its hedge, and a scratch slot. */
    if (d->downstream && d->downstream->d->hedge_delay) { /* (checked above) */
        l->hwaits_off = (l->bytes + 63) & ~(size_t)63;
        if (l->hwaits_off < l->bytes ||
            !size_mul_add(n, sizeof(struct job_wait), l->hwaits_off, &l->bytes))
            return -EOVERFLOW;
        l->hscratch_off = (l->bytes + 63) & ~(size_t)63;
        if (l->hscratch_off < l->bytes ||
            !size_mul_add(1, l->slot_bytes, l->hscratch_off, &l->bytes))
            return -EOVERFLOW;
    }
    return 0;
}

/* A job's wait record (or the deadline's, kind WAIT_DEADLINE), unarmed. */
static void wait_record_init(struct job_wait *jw, struct wsched_batch *b, size_t index,
                             uint8_t kind)
{
    timer_init(&jw->timer);
    jw->b = b;
    jw->index = (uint32_t)index;
    jw->armed = 0;
    jw->kind = kind;
    jw->events = 0;
    jw->tflags = 0;
    jw->owner = 0;
    st(&jw->lost, 0, RLX);
    st(&jw->join, 0, RLX);
    st(&jw->cell, WAIT_NO_CELL, RLX);
}

/* Phase 4: every field, before the batch is published (relaxed: the
 * placement's release publishes them). */
static void batch_init(struct wsched_batch *b, const wsched_batch_desc *d,
                       const struct layout *l, struct wsched_pool *h, bool holds_admission)
{
    struct pool *p = h->p;
    size_t n = d->njobs;
    b->fn = d->fn;
    b->arg = d->arg;
    b->range_fn = d->range_fn;
    if (d->range_fn) {
        /* Chunks of n / (8 workers): a few per worker to balance, capped so
         * that a worker that becomes idle soon finds something to steal. */
        size_t g = d->grain ? d->grain : n / (8 * (size_t)p->n);
        b->grain = g < 1 ? 1 : !d->grain && g > 4096 ? 4096 : g;
    } else {
        b->grain = 1;
    }
    b->start_fn = wsched__run_range;
    b->resume_fn = wsched__run_resume;
    st(&b->waiter, NULL, RLX);
    b->waits = NULL;
    b->dl = NULL;
    b->dl_fn = wsched__deadline_event;
    st(&b->dl_state, DL_NONE, RLX);
    if (d->flags & WSCHED_BATCH_WAITS) {
        b->waits = (struct job_wait *)(void *)((char *)b + l->waits_off);
        if (d->deadline_ns) {
            b->dl = &b->waits[n];
            wait_record_init(b->dl, b, n, WAIT_DEADLINE);
        }
        for (size_t i = 0; i < n; i++)
            wait_record_init(&b->waits[i], b, i, 0);
    }
    b->ds = d->downstream ? d->downstream->d : NULL;
    b->pol = NULL;
    b->hwaits = NULL;
    b->hscratch = NULL;
    b->slot_size = d->slot_size;
    if (d->downstream) {
        b->pol = (struct job_pol *)(void *)((char *)b + l->pol_off);
        memset(b->pol, 0, n * sizeof *b->pol);
    }
    if (b->ds && b->ds->hedge_delay) {
        b->hwaits = (struct job_wait *)(void *)((char *)b + l->hwaits_off);
        for (size_t i = 0; i < n; i++)
            wait_record_init(&b->hwaits[i], b, i, 0);
        if (d->slot_size)
            b->hscratch = (char *)b + l->hscratch_off; /* zeroed by each hedge */
    }
    b->n = n;
    b->stride = l->stride;
    b->status = (_Atomic int32_t *)((char *)b + l->status_off);
    b->policy = (uint8_t)d->policy; /* checked: <= QUORUM */
    b->quorum = d->quorum;
    b->deadline = d->deadline_ns;
    b->arbitrate = d->policy == WSCHED_POLICY_QUORUM || d->deadline_ns != 0;
    b->max_parallel = d->max_parallel;
    b->prio = (uint8_t)d->priority; /* checked: < WSCHED_NPRIO */
    b->holds_admission = holds_admission;
    /* Lines 4 and 5 (internal.h) only when their feature reads them. */
    if (d->max_parallel)
        st(&b->next, 0, RLX);
    if (d->policy == WSCHED_POLICY_QUORUM) {
        st(&b->succeeded, 0, RLX);
        st(&b->failed, 0, RLX);
    }
    st(&b->queued, 0, RLX);
    st(&b->cancel, CANCEL_NONE, RLX);
    st(&b->first_error, 0, RLX);
    st(&b->first_index, SIZE_MAX, RLX); /* unclaimed (policy.c) */
    b->handle = h;
    b->pool = p;
    b->alloc = p->mem.a;
    b->bytes = l->bytes;
    /* Range jobs: each chunk writes its statuses when it ends, and they
     * are read only once the batch completed (batch.c): none at submit.
     * Other jobs start at ENOTRUN: plain stores, which the compiler makes
     * vector stores (nobody else can see the batch before the placement's
     * release publishes it). */
    if (!d->range_fn) {
        int32_t *plain = (int32_t *)(void *)b->status;
        for (size_t i = 0; i < n; i++)
            plain[i] = WSCHED_ENOTRUN;
    }
    if (!d->slot_size)
        b->slots = NULL;
    else if (d->slots)
        b->slots = d->slots;
    else {
        b->slots = (char *)b + l->slots_off;
        memset(b->slots, 0, l->slot_bytes);
    }
    b->ring = NULL;
    if (d->flags & WSCHED_BATCH_STREAM) {
        b->ring = (_Atomic size_t *)((char *)b + l->ring_off);
        for (size_t i = 0; i < n; i++)
            st(&b->ring[i], 0, RLX);
        b->ring_head = 0;
        st(&b->ring_tail, 0, RLX);
        st(&b->ring_word, 0, RLX);
    }
    st(&b->remaining, n, RLX);
    st(&b->done, BATCH_RUNNING, RLX);
    st(&b->returned, BATCH_RUNNING, RLX);
    st(&b->refs, 2, RLX); /* the caller's and the runtime's */
}

int wsched_reserve(wsched_pool *h, const wsched_batch_desc *like, size_t count)
{
    if (!h || !like || count == 0)
        return -EINVAL;
    wsched_batch_desc d = *like;
    if (d.downstream)
        d.flags |= WSCHED_BATCH_WAITS; /* as submit does */
    if (!d.fn && !d.range_fn)
        d.fn = wsched__reserve_placeholder; /* only its shape matters */
    struct layout l;
    int r = desc_check(&d);
    if (r || (r = layout_of(&d, &l)) != 0)
        return r;
    if ((r = wsched__pool_enter(h)) != 0) /* the destroy handshake (pool.c) */
        return r;
    struct pool *p = h->p;
    int cls;
    r = mem_reserve(&p->mem, l.bytes, count, &cls);
    /* Given back at destroy (pool.c), after the workers were joined:
     * relaxed, a counter. */
    if (r > 0)
        fadd(&p->reserved_blocks[cls], (uint64_t)r, RLX);
    wsched__pool_leave(h, 2);
    return r;
}

/* Phases: check the description, lay it out, enter the pool (the destroy
 * handshake, or nothing inside a worker), reserve admission, allocate,
 * initialise, place (own deque inside, an inbox outside). One unwind
 * releases whatever was taken. */
static int submit_impl(wsched_pool *h, const wsched_batch_desc *d, wsched_batch **out,
                       int64_t admit_timeout_ns)
{
    if (out)
        *out = NULL;
    if (!h || !d || !out)
        return -EINVAL;
    wsched_batch_desc with_waits;
    if (d->downstream && !(d->flags & WSCHED_BATCH_WAITS)) {
        /* A downstream's backoffs and delays are waits (wsched.h). */
        with_waits = *d;
        with_waits.flags |= WSCHED_BATCH_WAITS;
        d = &with_waits;
    }
    struct layout l;
    int r = desc_check(d);
    if (r || (r = layout_of(d, &l)) != 0)
        return r;
    size_t n = d->njobs;

    /* Inside one of the pool's workers the running job's own batch keeps
     * the pool alive, so a nested batch needs no handshake with destroy
     * (and is accepted while the pool drains: it is part of accepted work).
     * Its one unit is added before the parent's completion can subtract
     * the parent's (program order, then the `remaining` chain), so inflight
     * cannot touch zero in between: relaxed is enough. */
    struct worker *self = wsched__self;
    bool inside = pool_inside(h, self);
    if (inside)
        fadd(&h->inflight, 1, RLX); /* H4 (pool.c) */
    else if ((r = wsched__pool_enter(h)) != 0)
        return r;
    struct pool *p = h->p;
    /* Admission control is for work entering the pool: nested batches are
     * part of admitted work and exempt (waiting for room there could
     * deadlock: the room is held by the very jobs that wait). */
    bool limited = p->max_jobs && !inside, reserved = false;
    struct wsched_batch *b = NULL;
    /* A worker of another pool never waits for this pool's room either:
     * it would hold its own pool's worker (and could deadlock if this
     * pool's jobs wait for that pool). It gets load shedding (-EBUSY). */
    if (limited && self && admit_timeout_ns != 0)
        admit_timeout_ns = 0;
    if (limited && (r = wsched__admit_reserve(p, n, admit_timeout_ns)) != 0)
        goto fail;
    reserved = limited;
    r = -ENOMEM;
    size_t got; /* the block's size: the batch cache's class (mem.h) */
    static_assert(CACHELINE == 64, "the batch cache's alignment");
    if (!(b = mem_batch_alloc(&p->mem, l.bytes, &got)))
        goto fail;
    batch_init(b, d, &l, h, limited);
    b->bytes = got;
    /* The downstream's user count, dropped when every job has returned
     * (batch.c); relaxed: destroying a downstream while submitting to it
     * is the caller's race. */
    if (b->ds)
        fadd(&b->ds->users, 1, RLX);
    PROBE2(batch_submit, b, n);

    struct task t = range_task(wsched__run_range, b, 0, n);
    if (inside) {
        /* One range on our own deque (release in push). When the deque
         * cannot grow the submit fails cleanly: an inbox would do, but
         * waiting workers do not start batches from inboxes (help), so a
         * pool whose every worker waits on such a batch would stall. */
        bool was_empty;
        if (deque_push_owner(&self->dq, &t, &was_empty) != 0)
            goto fail; /* r is -ENOMEM */
        *out = b;
        pushed(self, was_empty);
        return 0;
    }
    st(&b->queued, 1, RLX); /* published with the node (inbox.h I4) */
    b->link.kind = INBOX_BATCH;
    *out = b;
    wsched__outside_push(p, b->prio, &b->link);
    /* The batch may be complete and freed by now: touch only the handle. */
    wsched__pool_leave(h, 1);
    return 0;

fail:
    if (b && b->ds)
        fsub(&b->ds->users, 1, RLX);
    if (b)
        mem_batch_free(&p->mem.a, b, b->bytes);
    if (reserved)
        wsched__admit_release(p, n);
    wsched__pool_leave(h, inside ? 1 : 2);
    return r;
}
