/*
 * libFuzzer harness for the "Resilience" part of the wsched API
 * (include/wsched.h from "Resilience" on; README.md, "Resilience"):
 * downstreams, their policies (retries and their budget, the circuit
 * breaker, the rate limit, the concurrency limit, hedging, the per-attempt
 * timeout, single-flight, dead letters) and batches that name them.
 * tests/fuzz/fuzz_api.c covers the rest of the API.
 *
 * One input is one downstream's life:
 *  1. a wsched_downstream_config decoded from the input, each field drawn
 *     from a small table of valid, boundary and invalid values, with
 *     sometimes a fake clock (a counter that the harness and the jobs
 *     advance), a dead-letter hook, a flight_key function, a reserved
 *     field set, or a counting allocator that fails the k-th allocation;
 *  2. wsched_downstream_create, which must answer 0, -EINVAL or -ENOMEM;
 *  3. by-hand calls of the policies (breaker permits, the rate limit, the
 *     retry decision, the budget, dead-letter drains, stats, bad inputs);
 *  4. 1-3 batches naming the downstream, one after the other or all in
 *     flight at once, on ONE pool
 *     of 2 workers that lives as long as the process (it is never
 *     destroyed: the pool's own API is fuzz_api.c's business);
 *  5. wsched_downstream_destroy, then calls on the dead handle.
 * Every invariant below that fails prints a message and abort()s, which
 * libFuzzer reports as a crash.
 *
 * Input format (bytes past the end read as 0; tables in decode_config):
 *   C0  bits 0-2 retry.max_attempts {0,1,2,3,4,255,256,8}, bits 3-5 jitter
 *       (value % 5: 4 is invalid), bits 6-7 seed {0 (from the clock), 7,
 *       0x9e37, ~0}
 *   C1  bits 0-1, 2-3, 4-5: retry.codes[0..2] from {0, -EIO, -ETIMEDOUT,
 *       -ENOENT} (a 0 ends the list), bits 6-7 name {NULL, "", short, long}
 *   C2  bits 0-2 base_ns {0,1,1000,20us,100us,2^40,1h+1,50}, bits 3-5
 *       cap_ns {0,500,1000,200us,2ms,2^40,24h+1,50us}
 *   C3  bits 0-2 budget.max_tokens {0,1,5,10,100,10^6,10^6+1,2*10^6}, bits
 *       3-5 ratio_milli {0,100,500,1000,5000,10^6,10^6+1,1}, bit 6 fake
 *       clock, bit 7 dead-letter hook (else the ring)
 *   C4  bits 0-2 breaker.failure_rate_pct {0,0,1,25,50,100,101,75}, bits 3-5
 *       failure_count {0,0,1,2,5,100,2^23,2^23+1}, bits 6-7 min_calls
 *       {0,1,5,20}
 *   C5  bits 0-2 window_calls {0,1,2,10,100,2^23,2^23+1,5}, bits 3-5
 *       window_ns {0,0,1ms,5ms,1s,1h,1h+1,100us}, bits 6-7 trials {0,1,3,255}
 *   C6  bits 0-2 open_ns {0,500us,1ms,2ms,3ms,1h,1h+1,2ms}, bits 3-5 ramp_ns
 *       {0,0,1ms,10ms,1s,1h,1h+1,100us}, bit 6 trials = 256, bit 7 flight_key
 *   C7  bits 0-1, 2-3 breaker.ignore_codes[0..1] from {0, -ENOENT, -EIO,
 *       -ETIMEDOUT}, bits 6-7 allocator {none, counting, counting and
 *       failing (C12, C13), one whose free is NULL (invalid)}
 *   C8  bits 0-2 limit.rate_per_s {0,0,100,1000,10^5,10^9,10^9+1,10}, bits
 *       3-5 burst {0,1,2,5,100,2^32,2^32+1,3}, bits 6-7 mode {0,1,2,1}
 *   C9  bits 0-2 concurrency.initial {0,0,1,2,4,16,10^6,10^6+1}, bits 3-4
 *       min_limit {0,1,2,8}, bits 5-7 max_limit {0,1,2,4,16,10^6,10^6+1,3}
 *   C10 bits 0-1 latency_ns {0,50us,1ms,1h+1}, bits 2-4 hedge.delay_ns
 *       {0,0,10us,50us,200us,1ms,1h,1h+1}, bits 5-7 hedge.percentile
 *       {0,0,0,1,50,99,100,90}
 *   C11 bits 0-2 attempt_timeout_ns {0,0,0,50us,150us,1ms,1h,1h+1}, bits 3-5
 *       ring_size {0,2,3,4,1024,2^20,2^21,1}
 *   C12 bits 0-3: which reserved field is set (1 cfg.reserved0, 2 breaker's,
 *       3 limit's, 4 concurrency's, 5 hedge's, 6 reserved[0], 7
 *       reserved[1]; other values none), bits 4-7 k: the allocation that
 *       fails (0 = the first)
 *   C13 bit 0: every allocation from the k-th on fails (else the k-th only)
 *   H0  n: by-hand operations (n % 24), then n pairs (op, param): op bits
 *       0-3 the call (OP_* below), bits 4-7 and param its arguments
 *   B0  bits 0-1 batches: 1 + value % 3; bit 2: all of them are submitted
 *       before the first is waited for (else each is waited for and
 *       checked before the next is submitted); then per batch:
 *       BB0 bits 0-3 njobs - 1, bits 4-5 policy (3 = best effort), bit 6 a
 *           deadline, bit 7 wsched_cancel right after submit
 *       BB1 bits 0-3 quorum (1 + value % njobs), bits 4-7 deadline: now +
 *           200 us + 120 us * value
 *       BB2 bits 0-2 fake clock advance before submit {0,0,1ms,2ms,4ms,1s,
 *           1h,2^20 ns}, bit 3 free the batch right after its checks (else
 *           after the downstream's destroy)
 *       then per job 2 bytes: J0 its behaviour per attempt (2 bits each,
 *           attempt k of the primary uses bits 2((k-1)%4), a hedge of round
 *           k bits 2((k+1)%4): 0 return 0, 1 -EIO, 2 -ENOENT, 3 wait: a
 *           timer 20-300 us ahead, then the code J1 bits 3-4 say; past the
 *           4th attempt no waits), J1 bits 0-2 the wait's length, bits 3-4
 *           its code, bits 5-6 the job's flight key (0-3), bit 7: each
 *           attempt's first call advances the fake clock by 1.05 ms
 *   P0  the statuses by-hand permits still held are released with
 *
 * Invariants checked:
 *  - create: the answer is 0, -EINVAL or -ENOMEM; on failure *out is NULL
 *    and nothing the allocator gave is outstanding; -ENOMEM only when the
 *    counting allocator did fail a call; a config that the header itself
 *    calls invalid (a reserved field that "must be 0"/NULL, max_attempts >
 *    255, jitter > 3, retries with base_ns 0, failure_rate_pct > 100,
 *    window_calls > 2^23, trials > 255, open_ns outside [1 ms, 1 h] or
 *    ramp_ns > 1 h with a rule, rate_per_s > 10^9, mode > DELAY, initial >
 *    max_limit, percentile > 99, attempt_timeout_ns > 1 h, a ring_size
 *    that is no power of two in [2, 2^20], an allocator without free) gets
 *    -EINVAL. NULL out or cfg: -EINVAL.
 *  - by hand: breaker permits (0 or WSCHED_EBREAKER; always 0 without a
 *    breaker), each released once with a random status (0); the breaker
 *    state is 0..2 (0 without a breaker); wsched_limit_acquire gives 0, a
 *    positive delay (DELAY mode only, never above a non-zero max_delay) or
 *    WSCHED_ELIMITED, and 0 without a limit; wsched_retry_decide follows
 *    the header step by step (-EINVAL for attempt 0 and NULL pointers,
 *    -ENOENT for a success or a code not retried, EXHAUSTED at
 *    max_attempts, BUDGET exactly when the budget says no afterwards,
 *    DEADLINE for a deadline in the past, and with a fixed seed the delay
 *    is wsched_backoff_ns's for the documented draw); wsched_budget_allows
 *    is 1 exactly when max_tokens is 0 or more than half of it is left
 *    (stats.budget_milli); a drain of n returns 0..n (0 here: no letters
 *    before any batch); get_stats with sizeof answers 0 and, with any other
 *    size, 0 or -EINVAL without writing past `size`; each call moves
 *    exactly the counters it accounts for (breaker_rejected, limited,
 *    delayed, retries, exhausted, budget_denied, deadline_cut).
 *  - batches (library slots of 16 bytes; the job keeps its state machine
 *    in its slot, so a hedge, in its own scratch slot, is told apart from
 *    the primary): submit answers 0; wsched_wait and wsched_wait_idle end
 *    (a batch still running after 50 ms is cancelled, one still running 5 s
 *    after that is a failure); a job's first call finds its slot zeroed,
 *    a hedge's first call its scratch slot zeroed; wsched_attempt is in
 *    [1, max(1, max_attempts)], 1 on FIRST, >= 2 on RETRY, unchanged across
 *    an attempt's waits; a resumption (TIMER, CANCELLED) comes only to an
 *    attempt that armed a wait. Afterwards, per slot: the status is one a
 *    slot can end with (0, -EIO, -ENOENT; -ETIMEDOUT only with an attempt
 *    timeout; WSCHED_EBREAKER only with a breaker; WSCHED_ELIMITED only
 *    with a rate or concurrency limit; WSCHED_ECANCELLED and
 *    WSCHED_EDEADLINE only if the batch was cancelled, has a deadline or a
 *    policy other than best effort; never WSCHED_ENOTRUN once complete); a
 *    0 status means the slot holds the value a successful attempt writes
 *    (for a job with a flight key the value names the key, so a joiner's
 *    copy of its leader's slot passes); wsched_batch_attempts is in [0,
 *    max(1, max_attempts)] and equals the calls of the job's primary
 *    attempts (FIRST + RETRY); at most one hedge per attempt; EBREAKER and
 *    ELIMITED slots made no attempt, a slot with its own result (no key)
 *    made one; wsched_batch_outcome's counts match the statuses; each job
 *    gets at most one dead letter, whose fields agree with its slot (batch,
 *    arg, index, downstream, attempts, reason vs status; the status unless
 *    the slot was cancelled or timed out meanwhile), and with a hook every
 *    EBREAKER / ELIMITED slot of a job without a key has one.
 *  - after the batches: stats.attempts equals the calls counted with kind
 *    FIRST, RETRY or HEDGE, stats.hedges the HEDGE calls; dead_letters +
 *    dead_dropped <= jobs submitted; the hook was called dead_letters times
 *    (dead_dropped 0), or the ring gave back dead_letters letters; jobs,
 *    in_flight, budget and concurrency limit within their ranges; policies
 *    that are off counted nothing; and the pool's wsched_pool_stats
 *    .resilience grew by exactly the downstream's job-path counters
 *    (attempts, jobs, hedges, flights, joined, ...) during this input.
 *  - destroy answers 0 (every batch returned) and leaves nothing of the
 *    allocator outstanding; a second destroy and every call on the dead
 *    handle (state, budget, stats, drain, permits, limit, retry decision,
 *    a submit naming it) answer -EBADF. A pointer that was never a handle
 *    answers -EINVAL. The harness frees all it allocates (LeakSanitizer).
 *
 * tests/fuzz/make_corpus_downstream.py writes the seeds in
 * tests/fuzz/corpus-fuzz_downstream/ in this format. FUZZ_DS_VERBOSE=1 in
 * the environment prints one line per input (the downstream's counters),
 * to see what an input does. The reproducers of its findings (fixed) are
 * in crashes-fuzz_downstream/ (README.md there).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wsched.h"

/* ------------------------------------------------------------ failure */

static void fail(int line, const char *cond, const char *fmt, ...)
    __attribute__((noreturn, format(printf, 3, 4)));
static void fail(int line, const char *cond, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "\nfuzz_downstream.c:%d: INVARIANT VIOLATED: %s\n  ", line, cond);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\n");
    fflush(stderr);
    abort();
}

#define CHECK(cond, ...)                                                       \
    do {                                                                       \
        if (!(cond))                                                           \
            fail(__LINE__, #cond, __VA_ARGS__);                                \
    } while (0)

#define MS 1000000ull
#define US 1000ull
#define HOUR (3600000000000ull)

#define MAXJ 16
#define MAXB 3
#define MAX_PERMITS 8
#define SLOT_SIZE 16
#define FIRST_WAIT_NS (50 * MS)   /* then the batch is cancelled */
#define AFTER_CANCEL_NS (5000 * MS) /* then it is a failure */

/* ------------------------------------------------------------ input */

struct in {
    const uint8_t *p;
    size_t n, off;
};

static uint8_t u8(struct in *in)
{
    return in->off < in->n ? in->p[in->off++] : 0;
}

/* ------------------------------------------------- counting allocator */

/*
 * The downstream's allocator (wsched_downstream_config.allocator): every
 * block has a header before it with its size and alignment, checked at
 * free; live blocks are counted (0 after destroy, and after a failed
 * create); call fail_at (0-based) fails, and with fail_rest every later
 * one too. Calls come from any thread (flight nodes are freed by liburcu's
 * call_rcu thread): atomics.
 */
#define FA_LIVE 0x6c697665626c6b31ull
#define FA_DEAD 0x646561646c626b31ull
struct fa_hdr {
    uint64_t magic;
    size_t size, align;
    void *base;
};
struct fa {
    _Atomic unsigned long calls, live, failed;
    unsigned long fail_at;
    bool failing, fail_rest;
};
static struct fa FA;

static void *fa_alloc(void *ctx, size_t size, size_t align)
{
    CHECK(ctx == &FA, "allocator ctx %p, not the config's %p", ctx, (void *)&FA);
    CHECK(size > 0, "an allocation of 0 bytes");
    CHECK(align && !(align & (align - 1)) && align <= 4096, "alignment %zu", align);
    unsigned long k = atomic_fetch_add(&FA.calls, 1);
    if (FA.failing && (k == FA.fail_at || (FA.fail_rest && k > FA.fail_at))) {
        atomic_fetch_add(&FA.failed, 1);
        return NULL;
    }
    size_t a = align < sizeof(struct fa_hdr) ? sizeof(struct fa_hdr) : align;
    char *base = malloc(size + a + sizeof(struct fa_hdr));
    if (!base)
        return NULL;
    uintptr_t u = ((uintptr_t)base + sizeof(struct fa_hdr) + a - 1) & ~(uintptr_t)(a - 1);
    struct fa_hdr *h = (struct fa_hdr *)u - 1;
    h->magic = FA_LIVE;
    h->size = size;
    h->align = align;
    h->base = base;
    atomic_fetch_add(&FA.live, 1);
    return (void *)u;
}

static void fa_free(void *ctx, void *ptr, size_t size, size_t align)
{
    CHECK(ctx == &FA, "allocator ctx %p at free", ctx);
    CHECK(ptr != NULL, "free of NULL");
    struct fa_hdr *h = (struct fa_hdr *)ptr - 1;
    CHECK(h->magic == FA_LIVE, "free of %p: %s", ptr,
          h->magic == FA_DEAD ? "freed twice" : "not from this allocator");
    CHECK(h->size == size && h->align == align,
          "free of %p with size %zu align %zu; allocated %zu align %zu", ptr, size, align,
          h->size, h->align);
    h->magic = FA_DEAD;
    atomic_fetch_sub(&FA.live, 1);
    free(h->base);
}

static const wsched_allocator FA_ALLOCATOR = {fa_alloc, fa_free, &FA};
static const wsched_allocator BAD_ALLOCATOR = {fa_alloc, NULL, &FA};

/* ------------------------------------------------------ harness state */

/* A job's slot: its state machine (the slot is its frame) and, after a
 * successful attempt, its value. */
enum { ST_IDLE = 0, ST_WAIT = 1, ST_DONE = 2, ST_CLEANED = 3 };
struct jslot {
    uint32_t value; /* val_of() after a successful attempt */
    uint8_t state;  /* ST_* */
    uint8_t attempt; /* the attempt that armed the wait */
    uint8_t role;   /* 1 the primary, 2 a hedge */
    int8_t code;    /* the code to return after the wait: index into CODES */
    uint32_t tag;   /* SLOT_TAG with value */
    uint32_t calls; /* calls in this slot */
};
_Static_assert(sizeof(struct jslot) == SLOT_SIZE, "slot size");
#define SLOT_TAG 0x51A7C0DEu
static const int CODES[4] = {0, -EIO, -ENOENT, 0};

struct letter {
    const wsched_batch *batch;
    int status;
    unsigned attempts, reason;
    wsched_downstream *downstream;
    void *arg;
};

struct fbatch {
    unsigned idx;
    size_t njobs;
    unsigned policy;
    size_t quorum;
    bool has_deadline, cancel, safety_cancel, free_early;
    uint64_t deadline_ns; /* relative to the submit */
    uint64_t advance;     /* of the fake clock, before the submit */
    uint8_t beh[MAXJ], wdur[MAXJ], wcode[MAXJ], key[MAXJ];
    bool tick[MAXJ];
    wsched_batch *b;
    _Atomic unsigned primary_calls[MAXJ], hedge_calls[MAXJ];
    _Atomic unsigned letters[MAXJ];
    struct letter letter[MAXJ];
};

static struct harness {
    wsched_downstream_config cfg;
    wsched_downstream *ds;
    unsigned max_att; /* max(1, max_attempts) */
    bool fake_clock, hook, flights, has_breaker, has_limit, has_cc, has_hedge;
    bool overlap; /* every batch submitted before the first wait */
    _Atomic uint64_t clock_now;
    _Atomic uint64_t attempt_calls;
    _Atomic uint64_t hook_calls;
    uint64_t drained;
    size_t nbatches;
    struct fbatch fb[MAXB];
    wsched_permit permits[MAX_PERMITS];
    unsigned npermits;
    uint64_t hand_prev; /* the caller's prev_delay_ns state for by-hand decides */
} H;

static wsched_pool *POOL;
static bool VERBOSE; /* FUZZ_DS_VERBOSE=1: a summary line per input (to read what seeds do) */

static struct fbatch *fb_of(void *arg)
{
    for (size_t k = 0; k < H.nbatches; k++)
        if (arg == &H.fb[k])
            return &H.fb[k];
    fail(__LINE__, "fb_of", "arg %p is none of this input's batches", arg);
}

static uint64_t key_of(const struct fbatch *fb, size_t i)
{
    return H.flights ? fb->key[i] : 0;
}

static uint32_t val_of(const struct fbatch *fb, size_t i)
{
    uint64_t k = key_of(fb, i);
    return k ? 0xA5A50000u | (uint32_t)k : 0x5A000000u | (fb->idx << 8) | (uint32_t)i;
}

static uint64_t fake_clock(void *ctx)
{
    CHECK(ctx == &H, "clock ctx %p", ctx);
    return atomic_load(&H.clock_now);
}

static uint64_t flight_key(void *ctx, void *arg, size_t index)
{
    CHECK(ctx == &H, "flight ctx %p", ctx);
    struct fbatch *fb = fb_of(arg);
    CHECK(index < fb->njobs, "flight_key of index %zu of %zu", index, fb->njobs);
    return fb->key[index];
}

static void record_letter(const wsched_dead_letter *dl, bool from_hook)
{
    CHECK(dl != NULL, "a NULL letter");
    struct fbatch *fb = fb_of(dl->arg);
    CHECK(dl->index < fb->njobs, "letter of index %zu of %zu", dl->index, fb->njobs);
    unsigned n = atomic_fetch_add(&fb->letters[dl->index], 1);
    CHECK(n == 0, "batch %u job %zu: %u dead letters (%s)", fb->idx, dl->index, n + 1,
          from_hook ? "hook" : "ring");
    struct letter *l = &fb->letter[dl->index];
    l->batch = dl->batch;
    l->status = dl->status;
    l->attempts = dl->attempts;
    l->reason = dl->reason;
    l->downstream = dl->downstream;
    l->arg = dl->arg;
}

static void dead_letter_hook(void *ctx, const wsched_dead_letter *dl)
{
    CHECK(ctx == &H, "dead-letter ctx %p", ctx);
    atomic_fetch_add(&H.hook_calls, 1);
    record_letter(dl, true);
}

/* ------------------------------------------------------------- the job */

/* What attempt a (1-based) of the primary (hedge 0) or of a hedge does:
 * 0-2 return CODES[k], 3 wait first. */
static unsigned behaviour(const struct fbatch *fb, size_t i, unsigned a, bool hedge)
{
    unsigned k = (fb->beh[i] >> (2 * ((a - 1 + 2u * hedge) % 4))) & 3;
    if (k == 3 && a > 4 && !hedge)
        k = 1; /* past the 4th attempt, no more waits: -EIO */
    return k;
}

static int end_attempt(const struct fbatch *fb, size_t i, struct jslot *s, int code)
{
    s->state = ST_DONE;
    if (code == 0) {
        s->value = val_of(fb, i);
        s->tag = SLOT_TAG;
    }
    return code;
}

static bool all_zero(const void *p, size_t n)
{
    const unsigned char *c = p;
    for (size_t k = 0; k < n; k++)
        if (c[k])
            return false;
    return true;
}

static int job(wsched_ctx *ctx, void *arg, size_t i, void *slotp)
{
    struct fbatch *fb = fb_of(arg);
    CHECK(i < fb->njobs, "job index %zu of %zu", i, fb->njobs);
    CHECK(slotp != NULL, "batch %u job %zu: no slot", fb->idx, i);
    struct jslot *s = slotp;
    int kind = wsched_resume_kind(ctx);
    int a = wsched_attempt(ctx);
    CHECK(a >= 1 && (unsigned)a <= H.max_att, "batch %u job %zu: wsched_attempt %d (max %u)",
          fb->idx, i, a, H.max_att);
    s->calls++;
    switch (kind) {
    case WSCHED_RESUME_FIRST:
    case WSCHED_RESUME_RETRY:
    case WSCHED_RESUME_HEDGE: {
        bool hedge = kind == WSCHED_RESUME_HEDGE;
        atomic_fetch_add(&H.attempt_calls, 1);
        if (hedge) {
            CHECK(H.has_hedge, "batch %u job %zu: a hedge without hedging", fb->idx, i);
            CHECK(s->calls == 1 && all_zero((char *)s + 4, SLOT_SIZE - 8) && s->value == 0,
                  "batch %u job %zu: the hedge's scratch slot is not zeroed", fb->idx, i);
            atomic_fetch_add(&fb->hedge_calls[i], 1);
        } else {
            atomic_fetch_add(&fb->primary_calls[i], 1);
            if (kind == WSCHED_RESUME_FIRST) {
                CHECK(a == 1, "batch %u job %zu: FIRST call of attempt %d", fb->idx, i, a);
                CHECK(s->calls == 1 && s->value == 0 && s->tag == 0 && s->state == 0,
                      "batch %u job %zu: first call on a slot not zeroed (state %u calls %u)",
                      fb->idx, i, s->state, s->calls);
            } else {
                CHECK(a >= 2, "batch %u job %zu: RETRY call of attempt %d", fb->idx, i, a);
                CHECK(s->state != ST_WAIT,
                      "batch %u job %zu: retry %d while attempt %u's wait is armed", fb->idx, i,
                      a, s->attempt);
            }
        }
        if (fb->tick[i])
            atomic_fetch_add(&H.clock_now, 1050 * US);
        unsigned k = behaviour(fb, i, (unsigned)a, hedge);
        if (k == 3) {
            static const unsigned dur_us[8] = {20, 40, 60, 100, 150, 200, 250, 300};
            s->state = ST_WAIT;
            s->attempt = (uint8_t)a;
            s->role = hedge ? 2 : 1;
            s->code = (int8_t)((fb->wcode[i] + a - 1 + hedge) & 3);
            uint64_t d = dur_us[(fb->wdur[i] + a + hedge) & 7] * US;
            int r = wsched_sleep_until(ctx, wsched_now_ns() + d);
            CHECK(r == 0, "batch %u job %zu: wsched_sleep_until: %d", fb->idx, i, r);
            return WSCHED_PENDING;
        }
        return end_attempt(fb, i, s, CODES[k]);
    }
    case WSCHED_RESUME_TIMER:
        CHECK(s->state == ST_WAIT, "batch %u job %zu: TIMER resumption without a wait (state %u)",
              fb->idx, i, s->state);
        CHECK(s->attempt == a, "batch %u job %zu: the wait of attempt %u resumed in attempt %d",
              fb->idx, i, s->attempt, a);
        return end_attempt(fb, i, s, CODES[s->code & 3]);
    case WSCHED_RESUME_CANCELLED:
        CHECK(s->state == ST_WAIT,
              "batch %u job %zu: CANCELLED resumption without a wait (state %u)", fb->idx, i,
              s->state);
        s->state = ST_CLEANED;
        return 0;
    default:
        fail(__LINE__, "resume kind", "batch %u job %zu: resume kind %d", fb->idx, i, kind);
    }
}

/* ------------------------------------------------------------ config */

static const unsigned T_MAX_ATT[8] = {0, 1, 2, 3, 4, 255, 256, 8};
static const uint64_t T_SEED[4] = {0, 7, 0x9e37, ~0ull};
static const int T_CODE[4] = {0, -EIO, -ETIMEDOUT, -ENOENT};
static const uint64_t T_BASE[8] = {0, 1, 1000, 20 * US, 100 * US, 1ull << 40, HOUR + 1, 50};
static const uint64_t T_CAP[8] = {0, 500, 1000, 200 * US, 2 * MS, 1ull << 40, 24 * HOUR + 1,
                                  50 * US};
static const unsigned T_TOKENS[8] = {0, 1, 5, 10, 100, 1000000, 1000001, 2000000};
static const unsigned T_RATIO[8] = {0, 100, 500, 1000, 5000, 1000000, 1000001, 1};
static const unsigned T_RATE_PCT[8] = {0, 0, 1, 25, 50, 100, 101, 75};
static const unsigned T_FCOUNT[8] = {0, 0, 1, 2, 5, 100, 1u << 23, (1u << 23) + 1};
static const unsigned T_MINCALLS[4] = {0, 1, 5, 20};
static const unsigned T_WCALLS[8] = {0, 1, 2, 10, 100, 1u << 23, (1u << 23) + 1, 5};
static const uint64_t T_WNS[8] = {0, 0, MS, 5 * MS, 1000 * MS, HOUR, HOUR + 1, 100 * US};
static const unsigned T_TRIALS[4] = {0, 1, 3, 255};
static const uint64_t T_OPEN[8] = {0, 500 * US, MS, 2 * MS, 3 * MS, HOUR, HOUR + 1, 2 * MS};
static const uint64_t T_RAMP[8] = {0, 0, MS, 10 * MS, 1000 * MS, HOUR, HOUR + 1, 100 * US};
static const int T_IGNORE[4] = {0, -ENOENT, -EIO, -ETIMEDOUT};
static const uint64_t T_RATE[8] = {0, 0, 100, 1000, 100000, 1000000000, 1000000001, 10};
static const uint64_t T_BURST[8] = {0, 1, 2, 5, 100, 1ull << 32, (1ull << 32) + 1, 3};
static const unsigned T_MODE[4] = {0, 1, 2, 1};
static const unsigned T_CC_INIT[8] = {0, 0, 1, 2, 4, 16, 1000000, 1000001};
static const unsigned T_CC_MIN[4] = {0, 1, 2, 8};
static const unsigned T_CC_MAX[8] = {0, 1, 2, 4, 16, 1000000, 1000001, 3};
static const uint64_t T_LAT[4] = {0, 50 * US, MS, HOUR + 1};
static const uint64_t T_HDELAY[8] = {0, 0, 10 * US, 50 * US, 200 * US, MS, HOUR, HOUR + 1};
static const unsigned T_PCT[8] = {0, 0, 0, 1, 50, 99, 100, 90};
static const uint64_t T_ATO[8] = {0, 0, 0, 50 * US, 150 * US, MS, HOUR, HOUR + 1};
static const unsigned T_RING[8] = {0, 2, 3, 4, 1024, 1u << 20, 1u << 21, 1};
static const char LONG_NAME[] = "a-downstream-name-longer-than-the-copy-the-library-keeps-0123456789";
static const char *const T_NAME[4] = {NULL, "", "user-service", LONG_NAME};

static void decode_config(struct in *in, wsched_downstream_config *c)
{
    memset(c, 0, sizeof *c);
    uint8_t b = u8(in);
    c->retry.max_attempts = T_MAX_ATT[b & 7];
    c->retry.jitter = ((b >> 3) & 7) % 5;
    c->seed = T_SEED[b >> 6];
    b = u8(in);
    for (unsigned k = 0; k < 3; k++)
        c->retry.codes[k] = T_CODE[(b >> (2 * k)) & 3];
    c->name = T_NAME[b >> 6];
    b = u8(in);
    c->retry.base_ns = T_BASE[b & 7];
    c->retry.cap_ns = T_CAP[(b >> 3) & 7];
    b = u8(in);
    c->budget.max_tokens = T_TOKENS[b & 7];
    c->budget.ratio_milli = T_RATIO[(b >> 3) & 7];
    H.fake_clock = b & 0x40;
    H.hook = b & 0x80;
    b = u8(in);
    c->breaker.failure_rate_pct = T_RATE_PCT[b & 7];
    c->breaker.failure_count = T_FCOUNT[(b >> 3) & 7];
    c->breaker.min_calls = T_MINCALLS[b >> 6];
    b = u8(in);
    c->breaker.window_calls = T_WCALLS[b & 7];
    c->breaker.window_ns = T_WNS[(b >> 3) & 7];
    c->breaker.trials = T_TRIALS[b >> 6];
    b = u8(in);
    c->breaker.open_ns = T_OPEN[b & 7];
    c->breaker.ramp_ns = T_RAMP[(b >> 3) & 7];
    if (b & 0x40)
        c->breaker.trials = 256;
    H.flights = b & 0x80;
    b = u8(in);
    c->breaker.ignore_codes[0] = T_IGNORE[b & 3];
    c->breaker.ignore_codes[1] = c->breaker.ignore_codes[0] ? T_IGNORE[(b >> 2) & 3] : 0;
    unsigned amode = b >> 6;
    b = u8(in);
    c->limit.rate_per_s = T_RATE[b & 7];
    c->limit.burst = T_BURST[(b >> 3) & 7];
    c->limit.mode = T_MODE[b >> 6];
    b = u8(in);
    c->concurrency.initial = T_CC_INIT[b & 7];
    c->concurrency.min_limit = T_CC_MIN[(b >> 3) & 3];
    c->concurrency.max_limit = T_CC_MAX[b >> 5];
    b = u8(in);
    c->concurrency.latency_ns = T_LAT[b & 3];
    c->hedge.delay_ns = T_HDELAY[(b >> 2) & 7];
    c->hedge.percentile = T_PCT[b >> 5];
    b = u8(in);
    c->attempt_timeout_ns = T_ATO[b & 7];
    c->ring_size = T_RING[(b >> 3) & 7];
    b = u8(in);
    static char reserved_mark;
    switch (b & 15) {
    case 1: c->reserved0 = 1; break;
    case 2: c->breaker.reserved0 = 1; break;
    case 3: c->limit.reserved0 = 1; break;
    case 4: c->concurrency.reserved0 = 1; break;
    case 5: c->hedge.reserved0 = 1; break;
    case 6: c->reserved[0] = &reserved_mark; break;
    case 7: c->reserved[1] = &reserved_mark; break;
    default: break;
    }
    FA.fail_at = b >> 4;
    b = u8(in);
    FA.fail_rest = b & 1;
    FA.failing = amode == 2;
    if (amode == 1 || amode == 2)
        c->allocator = &FA_ALLOCATOR;
    else if (amode == 3)
        c->allocator = &BAD_ALLOCATOR;
    if (H.fake_clock) {
        c->clock = fake_clock;
        c->clock_ctx = &H;
    }
    if (H.hook) {
        c->dead_letter = dead_letter_hook;
        c->dead_letter_ctx = &H;
    }
    if (H.flights) {
        c->flight_key = flight_key;
        c->flight_ctx = &H;
    }
}

/* What the header itself calls invalid (create must answer -EINVAL). */
static const char *documented_invalid(const wsched_downstream_config *c)
{
    if (c->reserved[0] || c->reserved[1])
        return "reserved[] set";
    if (c->breaker.reserved0 || c->limit.reserved0 || c->concurrency.reserved0 ||
        c->hedge.reserved0)
        return "a reserved0 that must be 0";
    if (c->allocator && (!c->allocator->alloc || !c->allocator->free))
        return "an allocator without free";
    if (c->retry.max_attempts > 255)
        return "max_attempts > 255";
    if (c->retry.jitter > WSCHED_JITTER_NONE)
        return "jitter out of the enum";
    if (c->retry.max_attempts > 1 && c->retry.base_ns == 0)
        return "retries with base_ns 0";
    const wsched_breaker *b = &c->breaker;
    if (b->failure_rate_pct > 100)
        return "failure_rate_pct > 100";
    if (b->window_calls > (1u << 23))
        return "window_calls > 2^23";
    if (b->trials > 255)
        return "trials > 255";
    if ((b->failure_rate_pct || b->failure_count) &&
        (b->open_ns < MS || b->open_ns > HOUR || b->ramp_ns > HOUR))
        return "a breaker rule with open_ns outside [1 ms, 1 h] or ramp_ns > 1 h";
    if (c->limit.rate_per_s > 1000000000ull)
        return "rate_per_s > 10^9";
    if (c->limit.mode > WSCHED_LIMIT_DELAY)
        return "limit mode out of the enum";
    /* max_limit: "0 = 1,000,000; >= initial". */
    unsigned cc_max = c->concurrency.max_limit ? c->concurrency.max_limit : 1000000;
    if (c->concurrency.initial && c->concurrency.initial > cc_max)
        return "concurrency initial > max_limit (0 = 1,000,000)";
    if (c->hedge.percentile > 99)
        return "percentile > 99";
    if (c->attempt_timeout_ns > HOUR)
        return "attempt_timeout_ns > 1 h";
    unsigned ring = c->ring_size;
    if (ring && (ring < 2 || ring > (1u << 20) || (ring & (ring - 1))))
        return "ring_size not a power of two in [2, 2^20]";
    return NULL;
}

/* ------------------------------------------------------------- stats */

#define DS_FIELDS(X)                                                           \
    X(jobs) X(attempts) X(retries) X(budget_denied) X(deadline_cut) X(exhausted) \
    X(breaker_rejected) X(breaker_opened) X(breaker_half_opened) X(breaker_closed) \
    X(limited) X(delayed) X(dead_letters) X(dead_dropped) X(hedges) X(hedge_wins) \
    X(hedges_denied) X(shed) X(flights) X(joined) X(flight_handovers)          \
    X(attempt_timeouts)

enum {
#define X(f) F_##f,
    DS_FIELDS(X)
#undef X
    F_N
};
#define BIT(f) (1ull << F_##f)

static wsched_downstream_stats ds_stats(void)
{
    wsched_downstream_stats s;
    memset(&s, 0, sizeof s);
    int r = wsched_downstream_get_stats(H.ds, &s, sizeof s);
    CHECK(r == 0, "wsched_downstream_get_stats(sizeof): %d", r);
    return s;
}

/* The counters of s1 equal s0's but those in `may` (which may change). */
static void same_counters(const wsched_downstream_stats *s0, const wsched_downstream_stats *s1,
                          uint64_t may, const char *what)
{
#define X(f)                                                                   \
    if (!(may & BIT(f)))                                                       \
        CHECK(s0->f == s1->f, "%s changed stats." #f " from %llu to %llu", what, \
              (unsigned long long)s0->f, (unsigned long long)s1->f);
    DS_FIELDS(X)
#undef X
}

static void check_budget_allows(void)
{
    int r = wsched_budget_allows(H.ds);
    CHECK(r == 0 || r == 1, "wsched_budget_allows: %d", r);
    wsched_downstream_stats s = ds_stats();
    int64_t max = (int64_t)H.cfg.budget.max_tokens * 1000;
    CHECK(s.budget_milli >= 0 && s.budget_milli <= max, "budget_milli %lld of max %lld",
          (long long)s.budget_milli, (long long)max);
    int want = !H.cfg.budget.max_tokens || s.budget_milli * 2 > max;
    CHECK(r == want, "wsched_budget_allows %d with budget_milli %lld of max_tokens %u", r,
          (long long)s.budget_milli, H.cfg.budget.max_tokens);
}

/* --------------------------------------------------------- by hand */

enum {
    OP_ACQUIRE = 0,
    OP_RELEASE = 1,
    OP_LIMIT = 2,
    OP_DECIDE = 3,
    OP_DECIDE_BAD = 4,
    OP_BUDGET = 5,
    OP_DRAIN = 6,
    OP_STATE = 7,
    OP_STATS = 8,
    OP_CLOCK = 9,
    OP_BAD = 10,
    OP_BACKOFF = 11,
};

static const int T_REL_STATUS[8] = {0, -EIO, -ENOENT, -ETIMEDOUT, WSCHED_ECANCELLED,
                                    WSCHED_EDEADLINE, WSCHED_EBREAKER, -EAGAIN};
static const uint64_t T_ADVANCE[8] = {1, 1000, MS, 1100 * US, 2 * MS, 5 * MS, 1000 * MS, HOUR};

static bool retryable(int status)
{
    const wsched_retry *r = &H.cfg.retry;
    if (status == 0 || H.max_att <= 1)
        return false;
    if (r->codes[0] == 0)
        return status != WSCHED_EEXCEPTION && status != WSCHED_EBREAKER &&
               status != WSCHED_ELIMITED;
    for (unsigned k = 0; k < 8 && r->codes[k]; k++)
        if (r->codes[k] == status)
            return true;
    return false;
}

static void check_state(void)
{
    int r = wsched_breaker_state(H.ds);
    CHECK(r >= WSCHED_BREAKER_CLOSED && r <= WSCHED_BREAKER_HALF_OPEN, "breaker state %d", r);
    if (!H.has_breaker)
        CHECK(r == WSCHED_BREAKER_CLOSED, "breaker state %d without a breaker", r);
}

static void release_permit(unsigned k, int status)
{
    int r = wsched_breaker_release(H.ds, H.permits[k], status);
    CHECK(r == 0, "wsched_breaker_release(%#llx, %d): %d", (unsigned long long)H.permits[k],
          status, r);
    H.permits[k] = H.permits[--H.npermits];
}

static void op_decide(uint8_t a, uint8_t p)
{
    static const unsigned T_ATT[8] = {0, 1, 2, 3, 5, 254, 255, 1000};
    static const int T_ST[8] = {0, -EIO, -ETIMEDOUT, -ENOENT, WSCHED_EBREAKER, WSCHED_ELIMITED,
                                WSCHED_ECANCELLED, -EAGAIN};
    unsigned attempt = T_ATT[a & 7];
    int status = T_ST[p & 7];
    uint64_t key = (p >> 3) & 7;
    unsigned dsel = p >> 6;
    if (a & 8)
        H.hand_prev = 0; /* a new call */
    uint64_t now0 = wsched_now_ns();
    uint64_t deadline = dsel == 0 ? 0 : dsel == 1 ? 1 : dsel == 2 ? now0 + 1000 * MS : now0 + 1;
    uint64_t prev0 = H.hand_prev, delay = 0xdeadbeef;
    wsched_downstream_stats s0 = ds_stats();
    int r = wsched_retry_decide(H.ds, key, attempt, status, deadline, &H.hand_prev, &delay);
    uint64_t now1 = wsched_now_ns();
    wsched_downstream_stats s1 = ds_stats();
    if (attempt == 0) {
        CHECK(r == -EINVAL, "wsched_retry_decide with attempt 0: %d", r);
        same_counters(&s0, &s1, 0, "wsched_retry_decide(attempt 0)");
        return;
    }
    if (status == 0 || !retryable(status)) {
        /* Without retries no code is retried: -ENOENT (EXHAUSTED would be
         * a reading of "no retries" too; accepted). */
        bool exh_ok = status != 0 && H.max_att <= 1 && r == WSCHED_DEAD_EXHAUSTED;
        CHECK(r == -ENOENT || exh_ok, "wsched_retry_decide(status %d, not retried): %d", status,
              r);
        same_counters(&s0, &s1, exh_ok ? BIT(exhausted) : 0, "a decide with nothing to retry");
        CHECK(H.hand_prev == prev0, "a decide with nothing to retry changed *prev_delay_ns");
        return;
    }
    if (attempt >= H.max_att) {
        CHECK(r == WSCHED_DEAD_EXHAUSTED, "wsched_retry_decide(attempt %u of %u, status %d): %d",
              attempt, H.max_att, status, r);
        CHECK(s1.exhausted == s0.exhausted + 1, "exhausted not counted");
        same_counters(&s0, &s1, BIT(exhausted), "an exhausted decide");
        return;
    }
    CHECK(r == 0 || r == WSCHED_DEAD_BUDGET || r == WSCHED_DEAD_DEADLINE,
          "wsched_retry_decide(attempt %u of %u, status %d): %d", attempt, H.max_att, status, r);
    int allows = wsched_budget_allows(H.ds);
    if (r == WSCHED_DEAD_BUDGET) {
        CHECK(allows == 0, "BUDGET while the budget allows");
        CHECK(s1.budget_denied == s0.budget_denied + 1, "budget_denied not counted");
        same_counters(&s0, &s1, BIT(budget_denied), "a budget-denied decide");
        return;
    }
    CHECK(allows == 1, "decide %d while the budget says no", r);
    const wsched_retry *rc = &H.cfg.retry;
    uint64_t cap = rc->cap_ns ? rc->cap_ns : rc->base_ns * 1000;
    uint64_t want = 0;
    bool known = H.cfg.seed != 0;
    if (known) {
        uint64_t rng = H.cfg.seed ^ (key * 0x9E3779B97F4A7C15ull) ^ ((uint64_t)attempt << 56);
        want = wsched_backoff_ns(rc, attempt, prev0, &rng);
        CHECK(want <= cap, "wsched_backoff_ns %llu above the cap %llu", (unsigned long long)want,
              (unsigned long long)cap);
    }
    if (r == WSCHED_DEAD_DEADLINE) {
        CHECK(deadline != 0, "DEADLINE without a deadline");
        if (known)
            CHECK(now1 + want >= deadline, "DEADLINE for a delay %llu that ends before it",
                  (unsigned long long)want);
        CHECK(s1.deadline_cut == s0.deadline_cut + 1, "deadline_cut not counted");
        same_counters(&s0, &s1, BIT(deadline_cut), "a deadline-cut decide");
        return;
    }
    /* r == 0: a retry after *delay_ns. */
    CHECK(deadline != 1, "a retry allowed with a deadline in the past");
    CHECK(delay <= cap, "delay %llu above the cap %llu", (unsigned long long)delay,
          (unsigned long long)cap);
    CHECK(H.hand_prev == delay, "*prev_delay_ns %llu is not the delay %llu",
          (unsigned long long)H.hand_prev, (unsigned long long)delay);
    if (known)
        CHECK(delay == want, "delay %llu, not wsched_backoff_ns's %llu (seed %llu key %llu k %u)",
              (unsigned long long)delay, (unsigned long long)want,
              (unsigned long long)H.cfg.seed, (unsigned long long)key, attempt);
    if (deadline)
        CHECK(now0 + delay < deadline, "a retry of delay %llu that cannot begin before the deadline",
              (unsigned long long)delay);
    CHECK(s1.retries == s0.retries + 1, "retries not counted");
    same_counters(&s0, &s1, BIT(retries), "a retry decide");
}

static void op_stats_sizes(uint8_t a)
{
    struct {
        wsched_downstream_stats s;
        unsigned char extra[64];
    } buf;
    size_t sizes[5] = {sizeof buf.s, sizeof buf.s - 8, offsetof(wsched_downstream_stats, attempts),
                       0, sizeof buf.s + 16};
    size_t size = sizes[a % 5];
    memset(&buf, 0xAB, sizeof buf);
    int r = wsched_downstream_get_stats(H.ds, &buf.s, size);
    if (size == sizeof buf.s)
        CHECK(r == 0, "wsched_downstream_get_stats(sizeof): %d", r);
    else
        CHECK(r == 0 || r == -EINVAL, "wsched_downstream_get_stats(size %zu): %d", size, r);
    const unsigned char *c = (const unsigned char *)&buf;
    for (size_t k = size; k < sizeof buf; k++)
        CHECK(c[k] == 0xAB, "wsched_downstream_get_stats(size %zu) wrote byte %zu", size, k);
    if (r == -EINVAL)
        for (size_t k = 0; k < size; k++)
            CHECK(c[k] == 0xAB, "wsched_downstream_get_stats(size %zu) -EINVAL but wrote", size);
    r = wsched_downstream_get_stats(H.ds, NULL, sizeof buf.s);
    CHECK(r == -EINVAL, "wsched_downstream_get_stats(NULL out): %d", r);
}

static void op_bad(void)
{
    wsched_permit p = 0;
    wsched_dead_letter dl[2];
    wsched_downstream_stats s;
    uint64_t prev = 0, d = 0;
    int r;
    CHECK((r = wsched_breaker_state(NULL)) == -EINVAL, "wsched_breaker_state(NULL): %d", r);
    CHECK((r = wsched_budget_allows(NULL)) == -EINVAL, "wsched_budget_allows(NULL): %d", r);
    CHECK((r = wsched_downstream_get_stats(NULL, &s, sizeof s)) == -EINVAL,
          "wsched_downstream_get_stats(NULL): %d", r);
    CHECK((r = wsched_dead_letters_drain(NULL, dl, 2)) == -EINVAL,
          "wsched_dead_letters_drain(NULL): %d", r);
    CHECK((r = wsched_breaker_acquire(NULL, &p)) == -EINVAL, "wsched_breaker_acquire(NULL): %d",
          r);
    CHECK((r = wsched_breaker_acquire(H.ds, NULL)) == -EINVAL,
          "wsched_breaker_acquire(ds, NULL): %d", r);
    CHECK((r = wsched_breaker_release(NULL, 0x80000000u, 0)) == -EINVAL,
          "wsched_breaker_release(NULL): %d", r);
    int64_t l = wsched_limit_acquire(NULL, 0, 0);
    CHECK(l == -EINVAL, "wsched_limit_acquire(NULL): %lld", (long long)l);
    CHECK((r = wsched_retry_decide(NULL, 0, 1, -EIO, 0, &prev, &d)) == -EINVAL,
          "wsched_retry_decide(NULL): %d", r);
    CHECK((r = wsched_downstream_destroy(NULL)) == -EINVAL, "wsched_downstream_destroy(NULL): %d",
          r);
    /* A pointer that was never a downstream's handle. */
    static _Alignas(64) unsigned char never[64];
    memset(never, 0, sizeof never);
    CHECK((r = wsched_downstream_destroy((wsched_downstream *)never)) == -EINVAL,
          "wsched_downstream_destroy(never a handle): %d", r);
    CHECK((r = wsched_breaker_state((wsched_downstream *)never)) == -EINVAL,
          "wsched_breaker_state(never a handle): %d", r);
    CHECK(wsched_backoff_ns(NULL, 1, 0, &prev) == 0, "wsched_backoff_ns(NULL r) not 0");
    CHECK(wsched_backoff_ns(&H.cfg.retry, 1, 0, NULL) == 0, "wsched_backoff_ns(NULL rng) not 0");
}

static void op_backoff(uint8_t a, uint8_t p)
{
    const wsched_retry *rc = &H.cfg.retry;
    if (rc->base_ns == 0)
        return; /* (a config without retries: no formula to hold) */
    unsigned k = 1 + (p & 15);
    uint64_t prev = (a & 1) ? (uint64_t)p * 1000 : 0;
    uint64_t rng = (uint64_t)p * 0x100000001b3ull + a;
    uint64_t cap = rc->cap_ns ? rc->cap_ns : rc->base_ns * 1000;
    uint64_t d = wsched_backoff_ns(rc, k, prev, &rng);
    CHECK(d <= cap, "wsched_backoff_ns %llu above the cap %llu", (unsigned long long)d,
          (unsigned long long)cap);
    if (rc->jitter == WSCHED_JITTER_NONE || rc->jitter == WSCHED_JITTER_EQUAL) {
        uint64_t t = rc->base_ns;
        for (unsigned j = 1; j < k && t < cap; j++)
            t = t > cap / 2 ? cap : 2 * t;
        if (t > cap)
            t = cap;
        if (rc->jitter == WSCHED_JITTER_NONE)
            CHECK(d == t, "JITTER_NONE: %llu, not t = %llu", (unsigned long long)d,
                  (unsigned long long)t);
        else
            CHECK(d >= t / 2 && d <= t, "JITTER_EQUAL: %llu outside [t/2, t], t = %llu",
                  (unsigned long long)d, (unsigned long long)t);
    }
}

static void by_hand(uint8_t op, uint8_t p)
{
    uint8_t a = op >> 4;
    if ((op & 15) == OP_ACQUIRE && H.npermits == MAX_PERMITS)
        release_permit(p % MAX_PERMITS, T_REL_STATUS[a & 7]); /* room for one more */
    wsched_downstream_stats s0 = ds_stats(), s1;
    switch (op & 15) {
    case OP_ACQUIRE: {
        wsched_permit perm = 0;
        int r = wsched_breaker_acquire(H.ds, &perm);
        s1 = ds_stats();
        CHECK(r == 0 || r == WSCHED_EBREAKER, "wsched_breaker_acquire: %d", r);
        if (!H.has_breaker)
            CHECK(r == 0, "wsched_breaker_acquire without a breaker: %d", r);
        CHECK(s1.breaker_rejected == s0.breaker_rejected + (r != 0),
              "breaker_rejected %llu -> %llu after an acquire answering %d",
              (unsigned long long)s0.breaker_rejected, (unsigned long long)s1.breaker_rejected, r);
        same_counters(&s0, &s1, BIT(breaker_rejected) | BIT(breaker_half_opened) | BIT(breaker_closed),
                      "wsched_breaker_acquire");
        if (r == 0)
            H.permits[H.npermits++] = perm;
        break;
    }
    case OP_RELEASE:
        if (H.npermits)
            release_permit(p % H.npermits, T_REL_STATUS[a & 7]);
        s1 = ds_stats();
        same_counters(&s0, &s1,
                      BIT(breaker_opened) | BIT(breaker_closed) | BIT(breaker_half_opened),
                      "wsched_breaker_release");
        break;
    case OP_LIMIT: {
        uint64_t fc = atomic_load(&H.clock_now);
        uint64_t nows[8] = {0, fc, wsched_now_ns(), 1, UINT64_MAX / 2, fc + MS, fc + 1000 * MS,
                            12345};
        uint64_t maxds[6] = {0, 1, 1000, MS, 1000 * MS, UINT64_MAX};
        uint64_t maxd = maxds[p % 6];
        int64_t r = wsched_limit_acquire(H.ds, nows[a & 7], maxd);
        s1 = ds_stats();
        CHECK(r >= 0 || r == WSCHED_ELIMITED, "wsched_limit_acquire: %lld", (long long)r);
        if (!H.cfg.limit.rate_per_s)
            CHECK(r == 0, "wsched_limit_acquire without a limit: %lld", (long long)r);
        if (r > 0) {
            CHECK(H.cfg.limit.mode == WSCHED_LIMIT_DELAY,
                  "wsched_limit_acquire: a delay %lld in REJECT mode", (long long)r);
            CHECK(!maxd || (uint64_t)r <= maxd, "wsched_limit_acquire: delay %lld above %llu",
                  (long long)r, (unsigned long long)maxd);
        }
        CHECK(s1.limited == s0.limited + (r == WSCHED_ELIMITED), "limited not counted once");
        CHECK(s1.delayed == s0.delayed + (r > 0), "delayed not counted once");
        same_counters(&s0, &s1, BIT(limited) | BIT(delayed), "wsched_limit_acquire");
        break;
    }
    case OP_DECIDE:
        op_decide(a, p);
        break;
    case OP_DECIDE_BAD: {
        uint64_t prev = 0, d = 0;
        int r;
        switch (a % 3) {
        case 0: r = wsched_retry_decide(H.ds, p, 1, -EIO, 0, NULL, &d); break;
        case 1: r = wsched_retry_decide(H.ds, p, 1, -EIO, 0, &prev, NULL); break;
        default: r = wsched_retry_decide(H.ds, p, 0, -EIO, 0, &prev, &d); break;
        }
        CHECK(r == -EINVAL, "wsched_retry_decide with a NULL pointer or attempt 0: %d", r);
        s1 = ds_stats();
        same_counters(&s0, &s1, 0, "an invalid wsched_retry_decide");
        break;
    }
    case OP_BUDGET:
        check_budget_allows();
        break;
    case OP_DRAIN: {
        wsched_dead_letter dl[4];
        size_t n = p % 5;
        int r = wsched_dead_letters_drain(H.ds, dl, n);
        CHECK(r >= 0 && (size_t)r <= n, "wsched_dead_letters_drain(%zu): %d", n, r);
        CHECK(r == 0, "%d dead letters before any batch ran", r);
        break;
    }
    case OP_STATE:
        check_state();
        break;
    case OP_STATS:
        op_stats_sizes(a);
        break;
    case OP_CLOCK:
        atomic_fetch_add(&H.clock_now, T_ADVANCE[p & 7]);
        break;
    case OP_BAD:
        op_bad();
        break;
    case OP_BACKOFF:
        op_backoff(a, p);
        break;
    default:
        check_state();
        break;
    }
    if ((op & 15) != OP_ACQUIRE && (op & 15) != OP_RELEASE && (op & 15) != OP_LIMIT &&
        (op & 15) != OP_DECIDE) {
        s1 = ds_stats();
        same_counters(&s0, &s1, 0, "a by-hand call that decides nothing");
    }
    s1 = ds_stats();
    CHECK(s1.attempts == s0.attempts && s1.jobs == s0.jobs, "a by-hand call moved jobs/attempts");
}

/* ------------------------------------------------------------ batches */

static bool is_member(int st, const int *set, size_t n)
{
    for (size_t k = 0; k < n; k++)
        if (set[k] == st)
            return true;
    return false;
}

static void drain_all(void)
{
    if (H.hook) {
        wsched_dead_letter dl[4];
        int r = wsched_dead_letters_drain(H.ds, dl, 4);
        CHECK(r == 0, "wsched_dead_letters_drain with a hook: %d", r);
        return;
    }
    for (;;) {
        wsched_dead_letter dl[4];
        int r = wsched_dead_letters_drain(H.ds, dl, 4);
        CHECK(r >= 0 && r <= 4, "wsched_dead_letters_drain(4): %d", r);
        for (int k = 0; k < r; k++)
            record_letter(&dl[k], false);
        H.drained += (uint64_t)r;
        if (r == 0)
            return;
    }
}

static void submit_batch(struct fbatch *fb)
{
    wsched_batch_desc d;
    memset(&d, 0, sizeof d);
    d.fn = job;
    d.arg = fb;
    d.njobs = fb->njobs;
    d.slot_size = SLOT_SIZE;
    d.policy = fb->policy;
    d.quorum = fb->policy == WSCHED_POLICY_QUORUM ? fb->quorum : 0;
    d.downstream = H.ds;
    if (fb->has_deadline)
        d.deadline_ns = wsched_now_ns() + fb->deadline_ns;
    wsched_batch *b = (wsched_batch *)1;
    int r = wsched_submit(POOL, &d, &b);
    CHECK(r == 0, "wsched_submit of batch %u: %d (%s)", fb->idx, r, wsched_strerror(r));
    CHECK(b != NULL, "wsched_submit: 0 and no batch");
    fb->b = b;
    if (fb->cancel)
        CHECK((r = wsched_cancel(b)) == 0, "wsched_cancel: %d", r);
}

static void finish_batch(struct fbatch *fb)
{
    wsched_batch *b = fb->b;
    int r = wsched_wait(b, (int64_t)FIRST_WAIT_NS);
    if (r == -ETIMEDOUT) {
        /* A long backoff, a hedge delay, a limiter's delay: every wait
         * ends at a cancellation. */
        fb->safety_cancel = true;
        CHECK((r = wsched_cancel(b)) == 0, "wsched_cancel: %d", r);
        r = wsched_wait(b, (int64_t)AFTER_CANCEL_NS);
    }
    CHECK(r == 0, "batch %u: wsched_wait: %d (%s)", fb->idx, r,
          fb->safety_cancel ? "still running 5 s after wsched_cancel" : "");
    r = wsched_wait_idle(b, (int64_t)AFTER_CANCEL_NS);
    CHECK(r == 0, "batch %u: wsched_wait_idle: %d", fb->idx, r);
    drain_all();

    int set[16];
    size_t nset = 0;
    set[nset++] = 0;
    set[nset++] = -EIO;
    set[nset++] = -ENOENT;
    if (H.cfg.attempt_timeout_ns)
        set[nset++] = -ETIMEDOUT;
    if (H.has_breaker)
        set[nset++] = WSCHED_EBREAKER;
    if (H.has_limit || H.has_cc)
        set[nset++] = WSCHED_ELIMITED;
    bool may_cancel = fb->cancel || fb->safety_cancel || fb->has_deadline ||
                      fb->policy != WSCHED_POLICY_BEST_EFFORT;
    if (may_cancel)
        set[nset++] = WSCHED_ECANCELLED;
    if (fb->has_deadline)
        set[nset++] = WSCHED_EDEADLINE;

    size_t ok = 0, cancelled = 0, timed_out = 0;
    for (size_t i = 0; i < fb->njobs; i++) {
        int st = 12345;
        r = wsched_batch_status(b, i, &st);
        CHECK(r == 0, "wsched_batch_status(%zu): %d", i, r);
        CHECK(is_member(st, set, nset),
              "batch %u job %zu: status %d (%s) not one this batch can end with (policy %u, "
              "deadline %d, cancel %d/%d)",
              fb->idx, i, st, wsched_strerror(st), fb->policy, fb->has_deadline, fb->cancel,
              fb->safety_cancel);
        ok += st == 0;
        cancelled += st == WSCHED_ECANCELLED;
        timed_out += st == WSCHED_EDEADLINE;
        const struct jslot *s = wsched_batch_slot(b, i);
        CHECK(s != NULL, "wsched_batch_slot(%zu) NULL", i);
        if (st == 0)
            CHECK(s->tag == SLOT_TAG && s->value == val_of(fb, i),
                  "batch %u job %zu: status 0 but the slot holds value %#x tag %#x (want %#x; "
                  "key %llu, state %u, calls %u)",
                  fb->idx, i, s->value, s->tag, val_of(fb, i), (unsigned long long)key_of(fb, i),
                  s->state, s->calls);
        int at = wsched_batch_attempts(b, i);
        CHECK(at >= 0 && (unsigned)at <= H.max_att, "batch %u job %zu: attempts %d (max %u)",
              fb->idx, i, at, H.max_att);
        unsigned pc = atomic_load(&fb->primary_calls[i]), hc = atomic_load(&fb->hedge_calls[i]);
        CHECK((unsigned)at == pc,
              "batch %u job %zu: wsched_batch_attempts %d but %u primary attempt calls (status "
              "%d)",
              fb->idx, i, at, pc, st);
        CHECK(hc <= (unsigned)at, "batch %u job %zu: %u hedges in %d attempts", fb->idx, i, hc,
              at);
        if (st == WSCHED_EBREAKER || st == WSCHED_ELIMITED)
            CHECK(at == 0, "batch %u job %zu: status %s after %d attempts", fb->idx, i,
                  wsched_strerror(st), at);
        if (key_of(fb, i) == 0 && (st == 0 || st == -EIO || st == -ENOENT || st == -ETIMEDOUT))
            CHECK(at >= 1, "batch %u job %zu: its own result %d with 0 attempts", fb->idx, i, st);
        unsigned nl = atomic_load(&fb->letters[i]);
        const struct letter *l = &fb->letter[i];
        if (nl) {
            CHECK(l->batch == b, "batch %u job %zu: letter names batch %p, not %p", fb->idx, i,
                  (const void *)l->batch, (void *)b);
            CHECK(l->arg == fb && l->downstream == H.ds, "batch %u job %zu: letter's arg/ds",
                  fb->idx, i);
            CHECK(l->attempts == (unsigned)at,
                  "batch %u job %zu: letter says %u attempts, the batch %d", fb->idx, i,
                  l->attempts, at);
            CHECK(l->status != 0, "batch %u job %zu: a dead letter with status 0", fb->idx, i);
            if (st != WSCHED_ECANCELLED && st != WSCHED_EDEADLINE)
                CHECK(l->status == st, "batch %u job %zu: letter status %d, slot %d", fb->idx, i,
                      l->status, st);
            switch (l->reason) {
            case WSCHED_DEAD_EXHAUSTED:
                CHECK(l->attempts == H.max_att && retryable(l->status),
                      "batch %u job %zu: EXHAUSTED letter: %u attempts of %u, status %d",
                      fb->idx, i, l->attempts, H.max_att, l->status);
                break;
            case WSCHED_DEAD_BUDGET:
            case WSCHED_DEAD_DEADLINE:
                CHECK(l->attempts >= 1 && l->attempts < H.max_att && retryable(l->status),
                      "batch %u job %zu: letter reason %u: %u attempts of %u, status %d",
                      fb->idx, i, l->reason, l->attempts, H.max_att, l->status);
                if (l->reason == WSCHED_DEAD_BUDGET)
                    CHECK(H.cfg.budget.max_tokens, "a BUDGET letter without a budget");
                break;
            case WSCHED_DEAD_BREAKER:
                CHECK(l->status == WSCHED_EBREAKER && l->attempts == 0 && H.has_breaker,
                      "batch %u job %zu: BREAKER letter: status %d attempts %u", fb->idx, i,
                      l->status, l->attempts);
                break;
            case WSCHED_DEAD_LIMITED:
                CHECK(l->status == WSCHED_ELIMITED && l->attempts == 0 && H.has_limit,
                      "batch %u job %zu: LIMITED letter: status %d attempts %u", fb->idx, i,
                      l->status, l->attempts);
                break;
            case WSCHED_DEAD_SHED:
                CHECK(l->status == WSCHED_ELIMITED && l->attempts == 0 && H.has_cc,
                      "batch %u job %zu: SHED letter: status %d attempts %u", fb->idx, i,
                      l->status, l->attempts);
                break;
            default:
                fail(__LINE__, "letter reason", "batch %u job %zu: reason %u", fb->idx, i,
                     l->reason);
            }
        } else if (H.hook && key_of(fb, i) == 0) {
            CHECK(st != WSCHED_EBREAKER && st != WSCHED_ELIMITED,
                  "batch %u job %zu: status %s and no dead letter", fb->idx, i,
                  wsched_strerror(st));
        }
    }
    wsched_outcome o;
    memset(&o, 0, sizeof o);
    r = wsched_batch_outcome(b, &o, sizeof o);
    CHECK(r == 0, "wsched_batch_outcome: %d", r);
    CHECK(o.end != WSCHED_END_RUNNING && o.unfinished == 0, "batch %u: outcome end %u unfinished %zu",
          fb->idx, o.end, o.unfinished);
    CHECK(o.ok + o.failed + o.cancelled + o.timed_out + o.unfinished == fb->njobs,
          "batch %u: outcome counts do not sum to %zu", fb->idx, fb->njobs);
    CHECK(o.ok == ok && o.cancelled == cancelled && o.timed_out == timed_out,
          "batch %u: outcome ok %zu cancelled %zu timed_out %zu; statuses say %zu %zu %zu",
          fb->idx, o.ok, o.cancelled, o.timed_out, ok, cancelled, timed_out);
}

/* ------------------------------------------------------ the pool stats */

static wsched_resilience_stats pool_res(void)
{
    wsched_pool_stats ps;
    memset(&ps, 0, sizeof ps);
    int r = wsched_pool_get_stats(POOL, &ps, sizeof ps);
    CHECK(r == 0, "wsched_pool_get_stats: %d", r);
    return ps.resilience;
}

/* ---------------------------------------------------------- the input */

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    wsched_config c;
    wsched_config_init(&c);
    c.nworkers = 2;
    c.flags = WSCHED_POOL_NO_PIN;
    const char *v = getenv("FUZZ_DS_VERBOSE");
    VERBOSE = v && *v && *v != '0';
    int r = wsched_pool_create(&POOL, &c);
    if (r != 0) {
        fprintf(stderr, "fuzz_downstream: wsched_pool_create: %d\n", r);
        abort();
    }
    return 0;
}

static void reset(void)
{
    H.ds = NULL;
    memset(&H.cfg, 0, sizeof H.cfg);
    H.max_att = 1;
    H.fake_clock = H.hook = H.flights = false;
    H.has_breaker = H.has_limit = H.has_cc = H.has_hedge = false;
    atomic_store(&H.clock_now, 1000 * MS);
    atomic_store(&H.attempt_calls, 0);
    atomic_store(&H.hook_calls, 0);
    H.drained = 0;
    H.nbatches = 0;
    H.overlap = false;
    for (size_t k = 0; k < MAXB; k++) {
        struct fbatch *fb = &H.fb[k];
        fb->idx = (unsigned)k;
        fb->njobs = 0;
        fb->b = NULL;
        fb->cancel = fb->safety_cancel = fb->has_deadline = fb->free_early = false;
        for (size_t i = 0; i < MAXJ; i++) {
            atomic_store(&fb->primary_calls[i], 0);
            atomic_store(&fb->hedge_calls[i], 0);
            atomic_store(&fb->letters[i], 0);
            memset(&fb->letter[i], 0, sizeof fb->letter[i]);
        }
    }
    H.npermits = 0;
    H.hand_prev = 0;
    atomic_store(&FA.calls, 0);
    atomic_store(&FA.live, 0);
    atomic_store(&FA.failed, 0);
    FA.failing = FA.fail_rest = false;
    FA.fail_at = 0;
}

static void decode_batches(struct in *in)
{
    static const uint64_t T_BADV[8] = {0, 0, MS, 2 * MS, 4 * MS, 1000 * MS, HOUR, 1u << 20};
    uint8_t b = u8(in);
    H.nbatches = 1 + (b & 3) % MAXB;
    H.overlap = b & 4;
    for (size_t k = 0; k < H.nbatches; k++) {
        struct fbatch *fb = &H.fb[k];
        uint8_t b0 = u8(in), b1 = u8(in), b2 = u8(in);
        fb->njobs = 1 + (b0 & 15);
        fb->policy = (b0 >> 4) & 3;
        if (fb->policy == 3)
            fb->policy = WSCHED_POLICY_BEST_EFFORT;
        fb->has_deadline = b0 & 0x40;
        fb->cancel = b0 & 0x80;
        fb->quorum = 1 + (b1 & 15) % fb->njobs;
        fb->deadline_ns = 200 * US + 120 * US * (b1 >> 4);
        fb->advance = T_BADV[b2 & 7];
        fb->free_early = b2 & 8;
        for (size_t i = 0; i < fb->njobs; i++) {
            uint8_t j0 = u8(in), j1 = u8(in);
            fb->beh[i] = j0;
            fb->wdur[i] = j1 & 7;
            fb->wcode[i] = (j1 >> 3) & 3;
            fb->key[i] = (j1 >> 5) & 3;
            fb->tick[i] = j1 & 0x80;
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct in in = {data, size, 0};
    reset();
    decode_config(&in, &H.cfg);
    const wsched_downstream_config *c = &H.cfg;
    H.max_att = c->retry.max_attempts > 1 ? c->retry.max_attempts : 1;
    H.has_breaker = c->breaker.failure_rate_pct || c->breaker.failure_count;
    H.has_limit = c->limit.rate_per_s != 0;
    H.has_cc = c->concurrency.initial != 0;
    H.has_hedge = c->hedge.delay_ns != 0;
    const char *bad = documented_invalid(c);

    /* create: bad arguments, then the config. */
    wsched_downstream *ds = (wsched_downstream *)1;
    int r = wsched_downstream_create(NULL, c);
    CHECK(r == -EINVAL, "wsched_downstream_create(NULL out): %d", r);
    r = wsched_downstream_create(&ds, NULL);
    CHECK(r == -EINVAL && ds == NULL, "wsched_downstream_create(NULL cfg): %d, out %p", r,
          (void *)ds);
    CHECK(atomic_load(&FA.calls) == 0, "the allocator was called for a NULL argument");
    ds = (wsched_downstream *)1;
    r = wsched_downstream_create(&ds, c);
    CHECK(r == 0 || r == -EINVAL || r == -ENOMEM, "wsched_downstream_create: %d (%s)", r,
          wsched_strerror(r));
    if (r != 0) {
        if (VERBOSE)
            fprintf(stderr, "fuzz_downstream: create: %d (%s)%s%s\n", r, wsched_strerror(r),
                    bad ? ": " : "", bad ? bad : "");
        CHECK(ds == NULL, "wsched_downstream_create failed (%d) and *out is %p", r, (void *)ds);
        CHECK(atomic_load(&FA.live) == 0, "a failed create left %lu allocations",
              atomic_load(&FA.live));
        if (r == -ENOMEM)
            CHECK(!bad && FA.failing && atomic_load(&FA.failed) > 0,
                  "-ENOMEM without a failed allocation (invalid: %s)", bad ? bad : "no");
        if (bad)
            CHECK(r == -EINVAL, "%s: create answered %d", bad, r);
        return 0;
    }
    CHECK(ds != NULL && ds != (wsched_downstream *)1, "create: 0 and *out %p", (void *)ds);
    CHECK(!bad, "create accepted a config the header calls invalid: %s", bad);
    H.ds = ds;

    wsched_resilience_stats p0 = pool_res();
    wsched_downstream_stats s = ds_stats();
    CHECK(s.jobs == 0 && s.attempts == 0 && s.dead_letters == 0 && s.in_flight == 0,
          "a new downstream's counters are not 0");
    CHECK(s.concurrency_limit == (H.has_cc ? c->concurrency.initial : 0),
          "concurrency_limit %llu at start (initial %u)", (unsigned long long)s.concurrency_limit,
          c->concurrency.initial);
    CHECK(s.budget_milli == (int64_t)c->budget.max_tokens * 1000, "the budget is not full at start");
    check_state();

    /* By hand. */
    unsigned nops = u8(&in) % 24;
    for (unsigned k = 0; k < nops; k++) {
        uint8_t op = u8(&in), p = u8(&in);
        by_hand(op, p);
    }

    /* Batches. */
    decode_batches(&in);
    size_t total_jobs = 0;
    for (size_t k = 0; k < H.nbatches && H.overlap; k++) {
        atomic_fetch_add(&H.clock_now, H.fb[k].advance);
        submit_batch(&H.fb[k]);
    }
    for (size_t k = 0; k < H.nbatches; k++) {
        if (!H.overlap) {
            atomic_fetch_add(&H.clock_now, H.fb[k].advance);
            submit_batch(&H.fb[k]);
        }
        finish_batch(&H.fb[k]);
        total_jobs += H.fb[k].njobs;
        if (H.fb[k].free_early) {
            wsched_batch_free(H.fb[k].b);
            H.fb[k].b = NULL;
        }
        check_state();
    }

    /* The counters after every batch. */
    s = ds_stats();
    uint64_t calls = atomic_load(&H.attempt_calls), hedges = 0;
    for (size_t k = 0; k < H.nbatches; k++)
        for (size_t i = 0; i < H.fb[k].njobs; i++)
            hedges += atomic_load(&H.fb[k].hedge_calls[i]);
    CHECK(s.attempts == calls,
          "stats.attempts %llu but %llu attempt calls (FIRST/RETRY/HEDGE): jobs %llu joined %llu "
          "flights %llu handovers %llu hedges %llu retries %llu breaker_rejected %llu limited "
          "%llu shed %llu",
          (unsigned long long)s.attempts, (unsigned long long)calls, (unsigned long long)s.jobs,
          (unsigned long long)s.joined, (unsigned long long)s.flights,
          (unsigned long long)s.flight_handovers, (unsigned long long)s.hedges,
          (unsigned long long)s.retries, (unsigned long long)s.breaker_rejected,
          (unsigned long long)s.limited, (unsigned long long)s.shed);
    CHECK(s.hedges == hedges, "stats.hedges %llu but %llu HEDGE calls", (unsigned long long)s.hedges,
          (unsigned long long)hedges);
    CHECK(s.dead_letters + s.dead_dropped <= total_jobs,
          "dead_letters %llu + dead_dropped %llu > %zu jobs", (unsigned long long)s.dead_letters,
          (unsigned long long)s.dead_dropped, total_jobs);
    if (H.hook)
        CHECK(atomic_load(&H.hook_calls) == s.dead_letters && s.dead_dropped == 0,
              "the hook ran %llu times; dead_letters %llu dead_dropped %llu",
              (unsigned long long)atomic_load(&H.hook_calls), (unsigned long long)s.dead_letters,
              (unsigned long long)s.dead_dropped);
    else
        CHECK(H.drained == s.dead_letters, "%llu letters drained; dead_letters %llu",
              (unsigned long long)H.drained, (unsigned long long)s.dead_letters);
    CHECK(s.jobs <= total_jobs, "stats.jobs %llu > %zu jobs", (unsigned long long)s.jobs,
          total_jobs);
    CHECK(s.in_flight == 0, "in_flight %llu with every batch idle", (unsigned long long)s.in_flight);
    if (H.has_cc) {
        unsigned lo = c->concurrency.min_limit ? c->concurrency.min_limit : 1;
        unsigned hi = c->concurrency.max_limit ? c->concurrency.max_limit : 1000000;
        CHECK(s.concurrency_limit >= lo && s.concurrency_limit <= hi,
              "concurrency_limit %llu outside [%u, %u]", (unsigned long long)s.concurrency_limit,
              lo, hi);
    } else {
        CHECK(s.concurrency_limit == 0 && s.shed == 0, "a concurrency limit that is off acted");
    }
    if (!H.flights)
        CHECK(s.flights == 0 && s.joined == 0 && s.flight_handovers == 0,
              "flights without flight_key");
    if (!H.has_hedge)
        CHECK(s.hedges == 0 && s.hedge_wins == 0 && s.hedges_denied == 0, "hedges without hedging");
    CHECK(s.hedge_wins <= s.hedges, "hedge_wins %llu > hedges %llu",
          (unsigned long long)s.hedge_wins, (unsigned long long)s.hedges);
    if (!c->attempt_timeout_ns)
        CHECK(s.attempt_timeouts == 0, "attempt timeouts without attempt_timeout_ns");
    if (!H.has_breaker)
        CHECK(s.breaker_rejected == 0 && s.breaker_opened == 0, "a breaker that is off acted");
    if (!H.has_limit)
        CHECK(s.limited == 0 && s.delayed == 0, "a rate limit that is off acted");
    if (H.max_att <= 1)
        CHECK(s.retries == 0, "retries with max_attempts %u", c->retry.max_attempts);
    check_budget_allows();

    if (VERBOSE)
        fprintf(stderr,
                "fuzz_downstream: %zu batches, %zu jobs: jobs %llu attempts %llu retries %llu "
                "budget_denied %llu deadline_cut %llu exhausted %llu breaker_rejected %llu "
                "opened %llu half_opened %llu closed %llu limited %llu delayed %llu "
                "dead_letters %llu dropped %llu hedges %llu wins %llu denied %llu shed %llu "
                "flights %llu joined %llu handovers %llu attempt_timeouts %llu\n",
                H.nbatches, total_jobs, (unsigned long long)s.jobs,
                (unsigned long long)s.attempts, (unsigned long long)s.retries,
                (unsigned long long)s.budget_denied, (unsigned long long)s.deadline_cut,
                (unsigned long long)s.exhausted, (unsigned long long)s.breaker_rejected,
                (unsigned long long)s.breaker_opened, (unsigned long long)s.breaker_half_opened,
                (unsigned long long)s.breaker_closed, (unsigned long long)s.limited,
                (unsigned long long)s.delayed, (unsigned long long)s.dead_letters,
                (unsigned long long)s.dead_dropped, (unsigned long long)s.hedges,
                (unsigned long long)s.hedge_wins, (unsigned long long)s.hedges_denied,
                (unsigned long long)s.shed, (unsigned long long)s.flights,
                (unsigned long long)s.joined, (unsigned long long)s.flight_handovers,
                (unsigned long long)s.attempt_timeouts);

    /* The pool's copy: exactly the job path's decisions of this input. */
    wsched_resilience_stats p1 = pool_res();
#define PCHECK(f)                                                              \
    CHECK(p1.f - p0.f == s.f, "pool resilience." #f " grew by %llu, the downstream's is %llu", \
          (unsigned long long)(p1.f - p0.f), (unsigned long long)s.f)
    PCHECK(attempts);
    PCHECK(jobs);
    PCHECK(hedges);
    PCHECK(hedge_wins);
    PCHECK(hedges_denied);
    PCHECK(flights);
    PCHECK(joined);
    PCHECK(flight_handovers);
    PCHECK(shed);
    PCHECK(attempt_timeouts);
    PCHECK(dead_letters);
    PCHECK(dead_dropped);
#undef PCHECK

    /* The permits still held, released once each. */
    uint8_t pst = u8(&in);
    while (H.npermits)
        release_permit(H.npermits - 1, T_REL_STATUS[(pst + H.npermits) & 7]);

    /* Destroy, then the dead handle. */
    r = wsched_downstream_destroy(ds);
    CHECK(r == 0, "wsched_downstream_destroy: %d (every batch returned)", r);
    CHECK(atomic_load(&FA.live) == 0, "%lu allocations outstanding after destroy",
          atomic_load(&FA.live));
    wsched_permit perm = 0;
    wsched_dead_letter dl[2];
    uint64_t prev = 0, delay = 0;
    CHECK((r = wsched_downstream_destroy(ds)) == -EBADF, "destroy twice: %d", r);
    CHECK((r = wsched_breaker_state(ds)) == -EBADF, "wsched_breaker_state after destroy: %d", r);
    CHECK((r = wsched_budget_allows(ds)) == -EBADF, "wsched_budget_allows after destroy: %d", r);
    CHECK((r = wsched_downstream_get_stats(ds, &s, sizeof s)) == -EBADF,
          "wsched_downstream_get_stats after destroy: %d", r);
    CHECK((r = wsched_dead_letters_drain(ds, dl, 2)) == -EBADF,
          "wsched_dead_letters_drain after destroy: %d", r);
    CHECK((r = wsched_breaker_acquire(ds, &perm)) == -EBADF,
          "wsched_breaker_acquire after destroy: %d", r);
    CHECK((r = wsched_breaker_release(ds, 0x80000000u, 0)) == -EBADF,
          "wsched_breaker_release after destroy: %d", r);
    int64_t l = wsched_limit_acquire(ds, 0, 0);
    CHECK(l == -EBADF, "wsched_limit_acquire after destroy: %lld", (long long)l);
    CHECK((r = wsched_retry_decide(ds, 0, 1, -EIO, 0, &prev, &delay)) == -EBADF,
          "wsched_retry_decide after destroy: %d", r);
    {
        wsched_batch_desc d;
        memset(&d, 0, sizeof d);
        d.fn = job;
        d.arg = &H.fb[0];
        d.njobs = 1;
        d.slot_size = SLOT_SIZE;
        d.downstream = ds;
        wsched_batch *b = (wsched_batch *)1;
        r = wsched_submit(POOL, &d, &b);
        CHECK(r == -EBADF && b == NULL, "wsched_submit naming a destroyed downstream: %d, out %p",
              r, (void *)b);
    }
    for (size_t k = 0; k < H.nbatches; k++) {
        wsched_batch_free(H.fb[k].b);
        H.fb[k].b = NULL;
    }
    H.ds = NULL;
    return 0;
}
