/*
 * Downstreams (wsched.h, "Resilience"): the shared state of the policies
 * of one service that side jobs call, and the per-job state that the
 * job path (resilient.c) keeps beside each job's wait record. The
 * policies themselves are in downstream.c; each is a word or two changed
 * by CAS or RMW, argued where it is changed.
 */
#ifndef WSCHED_DOWNSTREAM_H
#define WSCHED_DOWNSTREAM_H

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>

#include "atomics.h"
#include "internal.h"
#include "wsched.h"

/* Counters, striped by worker (index % DS_STRIPES; other threads by a
 * hash of the thread) so that the per-job one (jobs) is not one line
 * every worker writes. Relaxed RMWs: statistics, summed by
 * wsched_downstream_get_stats, which derives `attempts` from rare events
 * (jobs, less those the job path rejected, plus the retry attempts that
 * began, plus hedges): one RMW per job, none more per attempt. */
/* (DS_COUNTERS, the list of counters: internal.h, where each worker
 * keeps its pool's copy.) */
#define DS_STRIPES 16
#define DS_HIST 128 /* adaptive hedging's latency buckets (downstream.c A1) */

struct ds_stripe {
#define X(name) _Atomic uint64_t name;
    DS_COUNTERS(X)
#undef X
    /* For `attempts`: jobs the job path rejected (limit, breaker), retry
     * attempts begun (resilient.c). Attempt latencies sampled (adaptive
     * hedging). */
    _Atomic uint64_t job_rejected, retry_attempts, samples;
    /* The breaker's windows, this stripe's part (breaker.c B4): tag 16 |
     * calls 24 | fails 24, the window of tag t in win[t & 1] (the current
     * one and the one before it). */
    _Atomic uint64_t win[2];
} __attribute__((aligned(128)));

/* A dead letter in the ring (Vyukov's bounded MPMC queue: a sequence
 * number per cell says whose turn it is). */
struct ds_cell {
    _Atomic uint64_t seq;
    wsched_dead_letter dl;
};

/* The breaker's word (downstream.c B1-B4):
 *   bits 0-1   state (enum wsched_breaker_state)
 *   bit  2     ramping up after closing
 *   bits 3-15  epoch: + 1 at every transition (13 bits)
 *   bits 16-23 half-open: trial permits out
 *   bits 24-31 half-open: trial successes
 *   bits 32-63 since: the last transition's time, (now - t0) >> 20 */
#define BRK_STATE(w) ((unsigned)((w) & 3))
#define BRK_RAMP 4ull
#define BRK_EPOCH(w) ((unsigned)(((w) >> 3) & 0x1fff))
#define BRK_OUT(w) ((unsigned)(((w) >> 16) & 0xff))
#define BRK_SUCC(w) ((unsigned)(((w) >> 24) & 0xff))
#define BRK_SINCE(w) ((uint32_t)((w) >> 32))
#define BRK_TIME_SHIFT 20

/* A permit (wsched_permit; internally 32 bits in a job's state): */
#define PERMIT_VALID 0x80000000u
#define PERMIT_TRIAL 0x40000000u /* a half-open trial's */
#define PERMIT_EPOCH(p) ((unsigned)((p) & 0x1fff))

struct downstream {
    /* Read-only after create. */
    struct wsched_downstream *handle; /* ours (dead letters name it) */
    void *raw;                        /* what the allocator gave (create) */
    char name[48];
    wsched_retry retry;
    unsigned max_attempts; /* 1 = no retries */
    bool retry_any;        /* codes[] empty: every failure is retried */
    int64_t budget_max;    /* milli-tokens; 0 = no budget */
    int64_t budget_ratio;  /* milli-tokens per success */
    wsched_breaker brk_cfg;
    bool has_breaker;
    uint32_t open_u, ramp_u; /* open_ns, ramp_ns in 2^20 ns units */
    uint64_t t0;             /* the clock at create: origin of `since` */
    uint64_t gcra_t, gcra_tau; /* ns between cells; burst tolerance */
    unsigned limit_mode;
    uint64_t attempt_timeout; /* 0 = none (resilient.c, "attempt timeout") */
    uint64_t hedge_delay; /* 0 = no hedging; adaptive: the first delay */
    unsigned hedge_pct;   /* 0 = fixed; else adaptive (downstream.c A1-A2) */
    _Atomic uint32_t (*hist)[DS_HIST]; /* adaptive: per stripe, attempt latencies */
    uint64_t (*flight_key)(void *ctx, void *arg, size_t index);
    void *flight_ctx;
    struct cds_lfht *flights; /* flight.c */
    void (*dead_letter)(void *ctx, const wsched_dead_letter *dl);
    void *dead_letter_ctx;
    uint64_t seed;
    uint64_t (*clock)(void *ctx);
    void *clock_ctx;
    struct ds_cell *ring;
    uint64_t ring_mask;
    wsched_allocator alloc; /* the config's, when it had one (has_alloc) */
    bool has_alloc;

    /* Each shared word on a line of its own. */
    cacheline_aligned _Atomic uint64_t brk; /* the breaker (B1-B4) */
    cacheline_aligned _Atomic uint32_t win_gen; /* its count window's generation (B4) */
    cacheline_aligned _Atomic int64_t tokens; /* the retry budget, milli-tokens */
    cacheline_aligned _Atomic uint64_t tat;   /* GCRA's theoretical arrival time */
    cacheline_aligned _Atomic uint64_t hedge_cur; /* the hedge delay now (A2) */
    /* The adaptive concurrency limit (downstream.c L1-L2): jobs in flight,
     * and the limit in 1/1024ths, on one line (both change per job). */
    cacheline_aligned _Atomic uint64_t cc_inflight;
    _Atomic uint64_t cc_limit;
    uint64_t cc_min, cc_max, cc_latency; /* (read-only; the limits in 1/1024ths) */
    cacheline_aligned _Atomic uint64_t users; /* batches submitted and not complete */
    cacheline_aligned _Atomic uint64_t ring_head; /* the ring's producers' position */
    cacheline_aligned _Atomic uint64_t ring_tail; /* its consumers' */
    struct ds_stripe stripe[DS_STRIPES];
};
#define DS_MAGIC 0x77736473747265ull /* "wsdstre" */
static_assert(_Alignof(struct downstream) <= 128, "create's rounding (DS_ALIGN_SLACK) covers 128");
#define DS_DEAD 0x64656164647374ull  /* "deaddst": destroyed */

/* The public handle (wsched.h's wsched_downstream): a tombstone that
 * outlives its downstream (plain calloc, never freed, kept reachable on a
 * list: downstream.c), so that a call after destroy finds DS_DEAD, not
 * freed memory, as a pool's handle does (pool.c). */
struct wsched_downstream {
    uint64_t magic;            /* DS_MAGIC; DS_DEAD once destroyed */
    struct downstream *d;      /* NULL once destroyed */
    struct wsched_downstream *next_dead;
};

/* The downstream of handle h: 0 and *out, or -EINVAL (NULL, not a
 * downstream's handle) or -EBADF (destroyed). */
static inline int ds_of(const struct wsched_downstream *h, struct downstream **out)
{
    if (!h)
        return -EINVAL;
    if (h->magic == DS_DEAD)
        return -EBADF;
    if (h->magic != DS_MAGIC || !h->d)
        return -EINVAL;
    *out = h->d;
    return 0;
}

/* A job's policy state, beside its wait record (the batch's `pol`):
 * written only by whoever runs the job's current call, one at a time (the
 * wait's join and the deque push order the calls, as for its slot). In a
 * hedged round the primary's and the hedge's records run at once: the
 * hedge writes only hphase, hattempt and cut[1]; the round-wide fields
 * (attempts, prev_delay, phase) are the primary's until H4 (resilient.c
 * H1-H5); hstate and hcode are atomics. */
enum { PH_NONE = 0, PH_LIMIT_WAIT = 1, PH_RETRY_WAIT = 2, PH_JOINED = 3, PH_LANE_WAIT = 4 };
/* The hedge record's phase: its timer (the hedge's delay), or the hedge's
 * attempt, whose own waits it then carries. */
enum { HP_TIMER = 0, HP_ATTEMPT = 1 };
/* hstate (resilient.c H1-H4): the attempts of a hedged round. */
#define HS_LIVE 3u     /* parties left: the primary attempt, the hedge record */
#define HS_PDONE 4u    /* the primary attempt returned */
#define HS_HSTART 8u   /* the hedge's attempt started */
#define HS_DECIDED 16u /* an attempt succeeded */
#define HS_WINH 32u    /* ... and it was the hedge */
struct job_pol {
    uint64_t prev_delay; /* the last backoff (DECORRELATED) */
    uint64_t t_start;    /* adaptive hedging: when the round's primary began */
    uint64_t c_start;    /* the concurrency limit: when the job took its place; 0 = none */
    uint32_t permit;     /* the breaker's permit while the job holds one */
    uint8_t attempts;    /* attempts started */
    uint8_t phase;       /* PH_*: what the primary record's own wait is for */
    uint8_t hphase;      /* HP_*: the hedge record's (written by its calls only) */
    uint8_t hedged;      /* this round has a hedge record armed */
    uint8_t hattempt;    /* the hedge's attempt (wsched_attempt), by its record's calls */
    /* The job holds a half-open trial permit: its batch stopping because
     * of other jobs (fail-fast, quorum) does not cut it short, so that the
     * breaker learns the trial's outcome (resilient.c; read by C3 and J2'
     * in waitq.c, SEQ_CST as the cancel word they pair with). A cancel or
     * the deadline still cut it (the deadline then counts as a failure:
     * shielded_from). */
    _Atomic uint8_t shield;
    _Atomic uint32_t hstate;
    _Atomic int32_t hcode; /* a failed attempt's code in a hedged round; a joiner's status */
    /* The attempt timeout: when the running attempt of the primary [0]
     * and of the hedge record [1] is cut (0 = none); each written and read
     * only by its own record's calls (resilient.c, run.c). */
    uint64_t cut[2];
    struct job_wait *fnext; /* a joiner: the next on its flight's stack (flight.c) */
    struct flight *flight;  /* a leader: its flight */
};

/* flight.c: keyed de-duplication (F1-F4). */
enum { FLIGHT_NONE = 0, FLIGHT_LEAD = 1, FLIGHT_JOINED = 2 };
#define FLIGHT_VALUE_DONE 1 /* a joiner's cell value: the result is in */
#define FLIGHT_VALUE_LEAD 2 /* ... it leads the flight now */
WSCHED_INTERNAL int wsched__flight_init(struct downstream *ds);
WSCHED_INTERNAL void wsched__flight_fini(struct downstream *ds);
WSCHED_INTERNAL int wsched__flight_enter(struct worker *w, struct downstream *ds,
                                         struct wsched_batch *b, size_t i, uint64_t key);
WSCHED_INTERNAL void wsched__flight_leave(struct wsched_batch *b, size_t i, int status,
                                          bool result);
/* downstream.c: the concurrency limit (L1-L2): take a place (false: full),
 * give it back with the job's outcome. */
WSCHED_INTERNAL bool wsched__cc_enter(struct downstream *ds);
WSCHED_INTERNAL void wsched__cc_leave(struct downstream *ds, int status, uint64_t ns);
/* downstream.c: adaptive hedging (A1-A2): a primary attempt's latency. */
WSCHED_INTERNAL void wsched__hedge_sample(struct downstream *ds, uint64_t ns);
static inline uint64_t ds_hedge_delay(struct downstream *ds)
{
    return ds->hedge_pct ? ld(&ds->hedge_cur, RLX) : ds->hedge_delay;
}

static inline uint64_t ds_splitmix64(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

__extension__ typedef unsigned __int128 ds_u128;

/* Uniform in [lo, hi] (wsched.h, wsched_backoff_ns). */
static inline uint64_t ds_uniform(uint64_t *rng, uint64_t lo, uint64_t hi)
{
    uint64_t x = ds_splitmix64(rng);
    if (hi <= lo)
        return lo;
    uint64_t span = hi - lo;
    if (span == UINT64_MAX)
        return x;
    return lo + (uint64_t)(((ds_u128)x * (span + 1)) >> 64);
}

/* A downstream's memory (the handle, its ring and histogram, flight
 * nodes): through allocator `a`, or malloc when NULL. */
/* struct downstream needs 128 (its stripes), allocations give 64. */
#define DS_ALIGN_SLACK 64u
static inline void *ds_mem_alloc(const wsched_allocator *a, size_t size)
{
    if (a)
        return a->alloc(a->ctx, size, CACHELINE);
    void *p = NULL;
    return posix_memalign(&p, CACHELINE, size) == 0 ? p : NULL;
}
static inline void ds_mem_free(const wsched_allocator *a, void *p, size_t size)
{
    if (a)
        a->free(a->ctx, p, size, CACHELINE);
    else
        free(p);
}
static inline const wsched_allocator *ds_allocator(const struct downstream *ds)
{
    return ds->has_alloc ? &ds->alloc : NULL;
}

/* Is job i a breaker's trial that the batch's stop `reason` (CANCEL_*)
 * does not cut short? */
static inline bool shielded_from(const struct wsched_batch *b, size_t i, uint32_t reason)
{
    return b->pol && (reason == CANCEL_FAILFAST || reason == CANCEL_QUORUM) &&
           ld(&b->pol[i].shield, SC);
}

/* run.c's resumption of a wait cut by its attempt's timeout (CELL_ATIMEOUT)
 * passes this kind to wsched__ds_call, which calls the job with
 * WSCHED_RESUME_CANCELLED: no job sees it. */
#define RESUME_ATIMEOUT 0x40u

/* The cut of the attempt that the call of ctx runs, or 0 (run.c: its
 * waits end no later; wsched_cancelled). Only a job's own record of a
 * batch with a downstream has one. */
static inline uint64_t ds_attempt_cut(const wsched_ctx *c)
{
    const struct wsched_batch *b = c->batch;
    const struct job_wait *jw = c->wait;
    if (likely(!b || !b->ds || !jw || jw->b != b || !b->ds->attempt_timeout))
        return 0;
    size_t i = jw->index;
    return b->pol[i].cut[b->hwaits && jw == &b->hwaits[i]];
}

static inline uint64_t ds_now(const struct downstream *ds)
{
    return ds->clock ? ds->clock(ds->clock_ctx) : wsched_now_ns();
}

WSCHED_INTERNAL unsigned wsched__ds_thread_stripe(void);
static inline struct ds_stripe *ds_stripe_of(struct downstream *ds)
{
    struct worker *w = wsched__self;
    return &ds->stripe[w ? w->index % DS_STRIPES : wsched__ds_thread_stripe()];
}
/* Counted twice: on the downstream's stripe (an RMW: workers of several
 * pools and other threads share it), and, on a worker, in its pool's
 * per-worker copy (owner-written, load + store, as STAT_ADD). */
#define DS_COUNT(ds, field)                                                    \
    do {                                                                       \
        struct worker *dsw_ = wsched__self;                                    \
        if (dsw_) {                                                            \
            fadd(&(ds)->stripe[dsw_->index % DS_STRIPES].field, 1, RLX);       \
            STAT_ADD_DS(dsw_, field);                                          \
        } else {                                                               \
            fadd(&(ds)->stripe[wsched__ds_thread_stripe()].field, 1, RLX);     \
        }                                                                      \
    } while (0)

/* downstream.c: the policies' steps, for the job path. */
/* Retry budget: may a retry go? (one relaxed load) */
static inline bool ds_budget_allows(const struct downstream *ds)
{
    return !ds->budget_max || ld(&ds->tokens, RLX) * 2 > ds->budget_max;
}
WSCHED_INTERNAL void wsched__ds_budget_outcome(struct downstream *ds, bool ok);
WSCHED_INTERNAL int wsched__retry_decide(struct downstream *ds, uint64_t key,
                                         unsigned attempt, int code, uint64_t deadline,
                                         uint64_t *prev_delay, uint64_t *delay, uint64_t *when);
WSCHED_INTERNAL int wsched__retry_lane(struct downstream *ds, uint64_t key, unsigned attempt,
                                       int code, uint64_t deadline, uint64_t *prev_delay,
                                       uint64_t *when);
WSCHED_INTERNAL bool wsched__ds_retryable(const struct downstream *ds, int code);
WSCHED_INTERNAL void wsched__ds_dead_letter(struct downstream *ds,
                                            const wsched_dead_letter *dl);
WSCHED_INTERNAL int wsched__breaker_acquire(struct downstream *ds, uint32_t *permit);
WSCHED_INTERNAL void wsched__breaker_release(struct downstream *ds, uint32_t permit,
                                             int status);
WSCHED_INTERNAL int64_t wsched__limit_acquire(struct downstream *ds, uint64_t now,
                                              uint64_t max_delay);

/* resilient.c: a job of a batch with a downstream, in place of
 * call_job_waiting (batch.h): its policies around each attempt. */
WSCHED_INTERNAL bool wsched__ds_call(wsched_ctx *ctx, struct wsched_batch *b, size_t i,
                                     bool hedge, unsigned kind, uint64_t value, int *ret);

#endif
