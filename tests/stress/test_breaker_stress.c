/*
 * The breaker's half-open permits are never exceeded and never stuck
 * (downstream.c B3, resilient.c):
 *  A. every thread acquires and releases with a random exit (success,
 *     failure, an ignored code, cancelled, deadline), moving a fake
 *     clock on every 64 operations; the trial permits out (of any half-open
 *     state, counted here and read from the breaker's word at every
 *     acquire) never pass `trials`, and once everything is
 *     released none is out. WSCHED_STRESS_ITERS sets the operations per
 *     thread (CI: 2*10^5; the 10^8 in all: see bench/README.md).
 *  B. a job holding the only trial permit leaves by each exit path of the
 *     job path (cancelled while pending, cancelled during its backoff,
 *     the batch deadline while pending, the pool's destroy while pending,
 *     an ignored code, a success); after each, the permit is back.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

#include "check.h"
#include "downstream.h"

static _Atomic uint64_t fake_now = 1ull << 40;
static uint64_t fake_clock(void *ctx)
{
    (void)ctx;
    return atomic_load_explicit(&fake_now, memory_order_relaxed);
}

enum { TRIALS = 3 };
static wsched_downstream *ds;
static _Atomic int held_trials;
static long iters;
static _Atomic long trials_issued;

static void *hammer(void *arg)
{
    uint64_t rng = (uint64_t)(uintptr_t)arg * 0x9E3779B97F4A7C15ull + 1;
    static const int exits[] = {0, 0, 0, -EIO, -EIO, -ENOENT, WSCHED_ECANCELLED,
                                WSCHED_EDEADLINE};
    for (long k = 0; k < iters; k++) {
        if (k % 64 == 63) /* the clock: half a breaker time unit */
            atomic_fetch_add(&fake_now, 1ull << 19);
        wsched_permit p;
        if (wsched_breaker_acquire(ds, &p) != 0)
            continue;
        bool trial = p & PERMIT_TRIAL;
        /* Trial permits out, of any half-open state (downstream.c B3). */
        _Atomic int *held = &held_trials;
        if (trial) {
            atomic_fetch_add_explicit(&trials_issued, 1, memory_order_relaxed);
            int n = atomic_fetch_add(held, 1) + 1;
            CHECK(n <= TRIALS);
            CHECK(BRK_OUT(atomic_load(&ds->d->brk)) <= TRIALS);
        }
        int st = exits[common_splitmix64(&rng) % (sizeof exits / sizeof exits[0])];
        if (trial)
            atomic_fetch_sub(held, 1);
        CHECK_OK(wsched_breaker_release(ds, p, st));
    }
    return NULL;
}


static void part_a(void)
{
    long k;
    iters = common_parse_long(getenv("WSCHED_STRESS_ITERS"), 1, 1000000000L, &k) == 0
                ? k
                : 200000 / check_slow();
    wsched_downstream_config c = {
        .breaker = {.failure_count = 3, .window_calls = 10, .open_ns = 1000000,
                    .trials = TRIALS, .ignore_codes = {-ENOENT}},
        .clock = fake_clock};
    CHECK_OK(wsched_downstream_create(&ds, &c));
    enum { T = 4 };
    pthread_t th[T];
    for (uintptr_t i = 0; i < T; i++)
        CHECK_OK(pthread_create(&th[i], NULL, hammer, (void *)(i + 1)));
    for (int i = 0; i < T; i++)
        CHECK_OK(pthread_join(th[i], NULL));
    uint64_t w = atomic_load(&ds->d->brk);
    CHECK_EQ(BRK_OUT(w), 0); /* nothing stuck */
    wsched_downstream_stats s;
    CHECK_OK(wsched_downstream_get_stats(ds, &s, sizeof s));
    CHECK(s.breaker_opened > 0 && s.breaker_half_opened > 0 && s.breaker_closed > 0);
    printf("part A: %ld ops x %d threads, %ld trial permits, opened %llu, half-opened %llu, "
           "closed %llu\n",
           iters, T, atomic_load(&trials_issued),
           (unsigned long long)s.breaker_opened, (unsigned long long)s.breaker_half_opened,
           (unsigned long long)s.breaker_closed);
    CHECK_OK(wsched_downstream_destroy(ds));
}

/* ------------------------------------------------------------- part B */

enum exit_path { EX_CANCEL_PENDING, EX_CANCEL_BACKOFF, EX_DEADLINE, EX_DESTROY, EX_IGNORED,
                 EX_SUCCESS, EX_N };
static const char *const ex_name[EX_N] = {"cancel while pending", "cancel during backoff",
                                          "deadline while pending", "destroy while pending",
                                          "ignored code", "success"};

struct job {
    enum exit_path ex;
    _Atomic int calls, cleanup, armed;
};

static int trial_job(wsched_ctx *ctx, void *arg, size_t i, void *slot)
{
    (void)i, (void)slot;
    struct job *j = arg;
    if (wsched_resume_kind(ctx) == WSCHED_RESUME_CANCELLED) {
        atomic_fetch_add(&j->cleanup, 1);
        return 0;
    }
    atomic_fetch_add(&j->calls, 1);
    switch (j->ex) {
    case EX_CANCEL_BACKOFF:
        return -EIO; /* retried after 10 s: cancelled before */
    case EX_IGNORED:
        return -ENOENT;
    case EX_SUCCESS:
        return 0;
    default: { /* pending on a waker nobody wakes */
        wsched_waker k;
        CHECK_OK(wsched_waker_arm(ctx, 0, &k));
        atomic_store(&j->armed, 1); /* (destroy may come from here on) */
        return WSCHED_PENDING;
    }
    }
}

/* Open the breaker and move it to half-open's door (the next acquire). */
static void to_half_open(void)
{
    for (int k = 0; k < 3; k++) {
        wsched_permit p;
        if (wsched_breaker_acquire(ds, &p) == 0)
            CHECK_OK(wsched_breaker_release(ds, p, -EIO));
    }
    CHECK_EQ(wsched_breaker_state(ds), WSCHED_BREAKER_OPEN);
    atomic_fetch_add(&fake_now, 2000000);
}

static void part_b(void)
{
    wsched_downstream_config c = {
        .retry = {.max_attempts = 2, .jitter = WSCHED_JITTER_NONE, .base_ns = 10000000000ull,
                  .codes = {-EIO}},
        .breaker = {.failure_count = 3, .window_calls = 10, .open_ns = 1000000, .trials = 1,
                    .ignore_codes = {-ENOENT}},
        .clock = fake_clock};
    CHECK_OK(wsched_downstream_create(&ds, &c));
    wsched_pool *pool = check_pool(2);
    for (int ex = 0; ex < EX_N; ex++) {
        to_half_open();
        struct job j = {.ex = (enum exit_path)ex};
        wsched_batch_desc d = {.fn = trial_job, .arg = &j, .njobs = 1, .downstream = ds};
        if (ex == EX_DEADLINE)
            d.deadline_ns = wsched_now_ns() + 20000000;
        wsched_batch *b = NULL;
        CHECK_OK(wsched_submit(pool, &d, &b));
        /* The job holds the only trial permit: nobody else gets one. */
        bool waits = ex == EX_CANCEL_PENDING || ex == EX_DEADLINE || ex == EX_DESTROY;
        while (atomic_load(waits ? &j.armed : &j.calls) == 0)
            sched_yield();
        if (ex == EX_CANCEL_BACKOFF) /* ... and its backoff has begun */
            for (wsched_downstream_stats s;
                 wsched_downstream_get_stats(ds, &s, sizeof s) == 0 && s.retries == 0;)
                sched_yield();
        wsched_permit p;
        if (ex != EX_SUCCESS && ex != EX_IGNORED)
            CHECK_EQ(wsched_breaker_acquire(ds, &p), WSCHED_EBREAKER);
        if (ex == EX_CANCEL_PENDING || ex == EX_CANCEL_BACKOFF)
            CHECK_OK(wsched_cancel(b));
        if (ex == EX_DESTROY) {
            CHECK_OK(wsched_pool_destroy(pool));
            pool = check_pool(2);
        }
        CHECK_OK(wsched_wait_idle(b, -1));
        int st = check_status(b, 0);
        if (ex == EX_SUCCESS) {
            CHECK_EQ(st, 0);
            CHECK_EQ(wsched_breaker_state(ds), WSCHED_BREAKER_CLOSED);
        } else if (ex == EX_DEADLINE) {
            /* A trial cut by its deadline was too slow: a failure, open again. */
            CHECK_EQ(wsched_breaker_state(ds), WSCHED_BREAKER_OPEN);
        } else {
            CHECK_EQ(wsched_breaker_state(ds), WSCHED_BREAKER_HALF_OPEN);
            /* The permit is back: the next trial gets it. */
            CHECK_OK(wsched_breaker_acquire(ds, &p));
            CHECK(p & PERMIT_TRIAL);
            CHECK_OK(wsched_breaker_release(ds, p, -EIO)); /* open again */
        }
        CHECK_EQ(wsched_batch_attempts(b, 0), 1);
        CHECK_EQ(atomic_load(&j.cleanup),
                 ex == EX_CANCEL_PENDING || ex == EX_DEADLINE || ex == EX_DESTROY);
        printf("part B: %-24s status %d, permit back\n", ex_name[ex], st);
        wsched_batch_free(b);
        if (ex == EX_SUCCESS) { /* open it again for the next round */
            for (int k = 0; k < 3; k++) {
                CHECK_OK(wsched_breaker_acquire(ds, &p));
                CHECK_OK(wsched_breaker_release(ds, p, -EIO));
            }
        }
    }
    CHECK_OK(wsched_pool_destroy(pool));
    CHECK_OK(wsched_downstream_destroy(ds));
}

int main(void)
{
    check_watchdog(240);
    part_a();
    part_b();
    puts("test_breaker_stress: ok");
    return 0;
}
