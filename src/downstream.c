/*
 * Downstreams (wsched.h, "Resilience"): the handle of one service the side
 * jobs call, its configuration, its dead-letter ring and its counters. The
 * policies are in retry.c (backoff, budget), breaker.c, limits.c (GCRA,
 * the concurrency limit, the adaptive hedge delay) and flight.c
 * (single-flight); the job path that applies them is resilient.c.
 *
 *  (Q1) the ring (Vyukov's bounded MPMC queue): a producer claims a
 *       position by CAS on ring_head when its cell's seq says free, writes
 *       the letter, then seq = pos + 1 (RELEASE); a consumer whose ACQUIRE
 *       load of seq reads pos + 1 owns the letter, copies it and frees the
 *       cell with seq = pos + size (RELEASE, to the next producer's
 *       ACQUIRE). Not lock-free in the strict sense (a producer preempted
 *       between its CAS and its seq store holds back the consumers behind
 *       it), but nobody ever waits: drain returns what is ready, a full
 *       ring drops and counts.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "downstream.h"
#include "probes.h"

/* ----------------------------------------------------------------- memory */

#define HOUR_NS 3600000000000ull
#define MS_NS 1000000ull

static int config_check(const wsched_downstream_config *c)
{
    for (unsigned k = 0; k < sizeof c->reserved / sizeof c->reserved[0]; k++)
        if (c->reserved[k])
            return -EINVAL;
    if (c->reserved0 || c->breaker.reserved0 || c->limit.reserved0)
        return -EINVAL;
    if (c->allocator && (!c->allocator->alloc || !c->allocator->free))
        return -EINVAL;
    const wsched_retry *r = &c->retry;
    if (r->max_attempts > 255 || r->jitter > WSCHED_JITTER_NONE)
        return -EINVAL;
    if (r->max_attempts > 1 && (r->base_ns == 0 || (r->cap_ns && r->cap_ns < r->base_ns) ||
                                r->base_ns > HOUR_NS || r->cap_ns > 24 * HOUR_NS))
        return -EINVAL;
    if (c->budget.max_tokens > 1000000 || c->budget.ratio_milli > 1000000)
        return -EINVAL;
    const wsched_breaker *b = &c->breaker;
    if (b->failure_rate_pct > 100 || b->trials > 255 || b->window_calls > (1u << 23))
        return -EINVAL;
    if ((b->failure_rate_pct || b->failure_count) &&
        (b->open_ns < MS_NS || b->open_ns > HOUR_NS || b->ramp_ns > HOUR_NS ||
         b->window_ns > HOUR_NS || b->failure_count > (1u << 23)))
        return -EINVAL;
    const wsched_rate_limit *l = &c->limit;
    if (l->rate_per_s > 1000000000ull || l->mode > WSCHED_LIMIT_DELAY ||
        l->burst > (1ull << 32))
        return -EINVAL;
    const wsched_concurrency *cc = &c->concurrency;
    /* (the maximum in effect: 0 = 1,000,000; fuzz_downstream found an
     * initial limit above it accepted) */
    unsigned cc_max = cc->max_limit ? cc->max_limit : 1000000;
    if (cc->reserved0 || cc->max_limit > 1000000 || cc->latency_ns > HOUR_NS ||
        (cc->initial && (cc->initial > cc_max || cc->min_limit > cc->initial)))
        return -EINVAL;
    if (c->hedge.reserved0 || c->hedge.delay_ns > HOUR_NS || c->hedge.percentile > 99 ||
        (c->hedge.percentile && !c->hedge.delay_ns))
        return -EINVAL;
    if (c->attempt_timeout_ns > HOUR_NS)
        return -EINVAL;
    unsigned ring = c->ring_size ? c->ring_size : 1024;
    if (ring < 2 || ring > (1u << 20) || (ring & (ring - 1)))
        return -EINVAL;
    return 0;
}

/* The tombstones of destroyed downstreams, kept reachable (no leak report;
 * a stale handle is safe to check). A Treiber push; nobody pops. */
static _Atomic(struct wsched_downstream *) dead_handles;

/* Free what create allocated (its ring, histogram and flight table, then
 * the downstream), through a copy of its allocator: it lives in ds. */
static void ds_free(struct downstream *ds)
{
    wsched_allocator copy = ds->alloc;
    const wsched_allocator *a = ds->has_alloc ? &copy : NULL;
    wsched__flight_fini(ds);
    if (ds->hist)
        ds_mem_free(a, ds->hist, sizeof *ds->hist * DS_STRIPES);
    if (ds->ring)
        ds_mem_free(a, ds->ring, sizeof *ds->ring * (ds->ring_mask + 1));
    ds_mem_free(a, ds->raw, sizeof *ds + DS_ALIGN_SLACK);
}

int wsched_downstream_create(wsched_downstream **out, const wsched_downstream_config *c)
{
    if (out)
        *out = NULL;
    if (!out || !c)
        return -EINVAL;
    int r = config_check(c);
    if (r)
        return r;
    /* The handle is plain calloc, as a pool's: never freed (a tombstone). */
    struct wsched_downstream *h = calloc(1, sizeof *h);
    if (!h)
        return -ENOMEM;
    /* struct downstream is 128-aligned (its stripes are), and the
     * allocator promises 64: over-allocate and round up (fuzz_downstream
     * found it misaligned under an allocator that gives exactly 64). */
    void *raw = ds_mem_alloc(c->allocator, sizeof(struct downstream) + DS_ALIGN_SLACK);
    if (!raw) {
        free(h);
        return -ENOMEM;
    }
    struct downstream *ds =
        (struct downstream *)(((uintptr_t)raw + _Alignof(struct downstream) - 1) &
                              ~(uintptr_t)(_Alignof(struct downstream) - 1));
    memset(ds, 0, sizeof *ds);
    ds->raw = raw;
    ds->handle = h;
    if (c->allocator) {
        ds->alloc = *c->allocator;
        ds->has_alloc = true;
    }
    unsigned ring = c->ring_size ? c->ring_size : 1024;
    if (!c->dead_letter) {
        ds->ring = ds_mem_alloc(c->allocator, sizeof *ds->ring * ring);
        if (!ds->ring) {
            ds_free(ds);
            free(h);
            return -ENOMEM;
        }
        for (unsigned i = 0; i < ring; i++)
            st(&ds->ring[i].seq, i, RLX);
        ds->ring_mask = ring - 1;
    }
    if (c->name) {
        strncpy(ds->name, c->name, sizeof ds->name - 1);
        ds->name[sizeof ds->name - 1] = 0;
    }
    ds->retry = c->retry;
    ds->attempt_timeout = c->attempt_timeout_ns;
    ds->max_attempts = c->retry.max_attempts > 1 ? c->retry.max_attempts : 1;
    if (ds->max_attempts > 1 && !ds->retry.cap_ns)
        ds->retry.cap_ns = ds->retry.base_ns * 1000;
    ds->retry_any = c->retry.codes[0] == 0;
    ds->budget_max = (int64_t)c->budget.max_tokens * 1000;
    ds->budget_ratio = c->budget.ratio_milli;
    st(&ds->tokens, ds->budget_max, RLX);
    ds->brk_cfg = c->breaker;
    ds->has_breaker = c->breaker.failure_rate_pct || c->breaker.failure_count;
    if (!ds->brk_cfg.trials)
        ds->brk_cfg.trials = 1;
    if (!ds->brk_cfg.min_calls)
        ds->brk_cfg.min_calls = 1;
    if (!ds->brk_cfg.window_calls)
        ds->brk_cfg.window_calls = 100;
    ds->open_u = (uint32_t)((c->breaker.open_ns + (1u << BRK_TIME_SHIFT) - 1) >> BRK_TIME_SHIFT);
    ds->ramp_u = (uint32_t)((c->breaker.ramp_ns + (1u << BRK_TIME_SHIFT) - 1) >> BRK_TIME_SHIFT);
    if (c->limit.rate_per_s) {
        ds->gcra_t = 1000000000ull / c->limit.rate_per_s;
        uint64_t burst = c->limit.burst ? c->limit.burst : 1;
        ds->gcra_tau = ds->gcra_t * (burst - 1);
        ds->limit_mode = c->limit.mode;
    }
    if (c->concurrency.initial) {
        ds->cc_min = (uint64_t)(c->concurrency.min_limit ? c->concurrency.min_limit : 1) << 10;
        ds->cc_max = (uint64_t)(c->concurrency.max_limit ? c->concurrency.max_limit : 1000000)
                     << 10;
        ds->cc_latency = c->concurrency.latency_ns;
        st(&ds->cc_limit, (uint64_t)c->concurrency.initial << 10, RLX);
    }
    ds->hedge_delay = c->hedge.delay_ns;
    ds->hedge_pct = c->hedge.percentile;
    st(&ds->hedge_cur, c->hedge.delay_ns, RLX);
    if (ds->hedge_pct) {
        ds->hist = ds_mem_alloc(c->allocator, sizeof *ds->hist * DS_STRIPES);
        if (!ds->hist) {
            ds_free(ds);
            free(h);
            return -ENOMEM;
        }
        for (unsigned k = 0; k < DS_STRIPES; k++)
            for (unsigned j = 0; j < DS_HIST; j++)
                st(&ds->hist[k][j], 0, RLX);
    }
    ds->flight_key = c->flight_key;
    ds->flight_ctx = c->flight_ctx;
    if (c->flight_key && wsched__flight_init(ds) != 0) {
        ds_free(ds);
        free(h);
        return -ENOMEM;
    }
    ds->dead_letter = c->dead_letter;
    ds->dead_letter_ctx = c->dead_letter_ctx;
    ds->clock = c->clock;
    ds->clock_ctx = c->clock_ctx;
    ds->seed = c->seed ? c->seed : wsched_now_ns() * 0x9E3779B97F4A7C15ull + 1;
    ds->t0 = ds_now(ds);
    h->d = ds;
    h->magic = DS_MAGIC;
    *out = h;
    return 0;
}

int wsched_downstream_destroy(wsched_downstream *h)
{
    struct downstream *ds;
    int e = ds_of(h, &ds);
    if (e)
        return e;
    /* ACQUIRE: pairs with the batch's RELEASE decrement (batch.c), after
     * its jobs' last use of us. */
    if (ld(&ds->users, ACQ) != 0)
        return -EBUSY;
    /* The tombstone first: a call from now on finds it dead. (A call
     * racing with destroy is the caller's race, as for any free.) */
    h->magic = DS_DEAD;
    h->d = NULL;
    ds_free(ds);
    /* RELAXED: the list only keeps the handles reachable; nobody reads
     * through it. */
    struct wsched_downstream *head = ld(&dead_handles, RLX);
    do
        h->next_dead = head;
    while (!cas_weak(&dead_handles, &head, h, RLX));
    return 0;
}

/* --------------------------------------------------------- dead letters */

void wsched__ds_dead_letter(struct downstream *ds, const wsched_dead_letter *dl)
{
    PROBE3(dead_letter, dl->batch, dl->index, dl->reason);
    if (ds->dead_letter) {
        DS_COUNT(ds, dead_letters);
        ds->dead_letter(ds->dead_letter_ctx, dl);
        return;
    }
    uint64_t pos = ld(&ds->ring_head, RLX);
    for (;;) {
        struct ds_cell *c = &ds->ring[pos & ds->ring_mask];
        uint64_t seq = ld(&c->seq, ACQ); /* Q1: the consumer's free */
        int64_t dif = (int64_t)(seq - pos);
        if (dif == 0) {
            if (cas_weak(&ds->ring_head, &pos, pos + 1, RLX)) {
                c->dl = *dl;
                st(&c->seq, pos + 1, REL); /* Q1: the letter before its turn */
                DS_COUNT(ds, dead_letters);
                return;
            }
        } else if (dif < 0) {
            DS_COUNT(ds, dead_dropped); /* full */
            return;
        } else {
            pos = ld(&ds->ring_head, RLX);
        }
    }
}

int wsched_dead_letters_drain(wsched_downstream *h, wsched_dead_letter *out, size_t n)
{
    struct downstream *ds;
    int e = ds_of(h, &ds);
    if (e)
        return e;
    if (!out && n)
        return -EINVAL;
    if (!ds->ring)
        return 0;
    size_t got = 0;
    uint64_t pos = ld(&ds->ring_tail, RLX);
    while (got < n && got < INT32_MAX) {
        struct ds_cell *c = &ds->ring[pos & ds->ring_mask];
        uint64_t seq = ld(&c->seq, ACQ); /* Q1: the producer's letter */
        int64_t dif = (int64_t)(seq - (pos + 1));
        if (dif == 0) {
            if (cas_weak(&ds->ring_tail, &pos, pos + 1, RLX)) {
                out[got++] = c->dl;
                st(&c->seq, pos + ds->ring_mask + 1, REL); /* Q1: free for the next lap */
                pos++;
            }
        } else if (dif < 0) {
            break; /* empty (or its producer is between CAS and store) */
        } else {
            pos = ld(&ds->ring_tail, RLX);
        }
    }
    return (int)got;
}

/* ---------------------------------------------------------------- stats */

int wsched_downstream_get_stats(const wsched_downstream *h, wsched_downstream_stats *out,
                                size_t size)
{
    struct downstream *ds;
    int e = ds_of(h, &ds);
    if (e)
        return e;
    if (!out)
        return -EINVAL;
    wsched_downstream_stats s;
    memset(&s, 0, sizeof s);
    for (unsigned k = 0; k < DS_STRIPES; k++) {
#define X(name) s.name += ld(&ds->stripe[k].name, RLX);
        DS_COUNTERS(X)
#undef X
    }
    uint64_t rejected = 0, retried = 0;
    for (unsigned k = 0; k < DS_STRIPES; k++) {
        rejected += ld(&ds->stripe[k].job_rejected, RLX);
        retried += ld(&ds->stripe[k].retry_attempts, RLX);
    }
    s.attempts = s.jobs - rejected - s.joined + s.flight_handovers + retried + s.hedges;
    s.budget_milli = ld(&ds->tokens, RLX);
    s.concurrency_limit = ld(&ds->cc_limit, RLX) >> 10;
    s.in_flight = ld(&ds->cc_inflight, RLX);
    s.hedge_delay_ns = ds_hedge_delay((struct downstream *)(uintptr_t)ds);
    return wsched__copy_out(out, size, &s, sizeof s, sizeof s);
}
