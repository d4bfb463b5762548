/*
 * The worked examples of README.md, "Resilience": one function per policy
 * of a downstream (wsched.h, "Resilience"), each a small request against a
 * simulated service, each checking what the policy did. The service is a
 * timer wait: a job sends its request, arms a timer with
 * wsched_sleep_until, returns WSCHED_PENDING, and is called again with
 * WSCHED_RESUME_TIMER when the "reply" is in; no thread sleeps.
 *
 * No outcome checked here depends on the machine's speed, short of a
 * stall of seconds. Where an outcome would otherwise depend on time, the
 * example takes time out of it: the breaker
 * and the reject-mode rate limit read a clock the example moves by hand
 * (wsched_downstream_config.clock), the service of the concurrency and
 * single-flight examples answers only once the example has seen every job
 * arrive, and the hedged example's slow replica takes 10 s against a 1 ms
 * hedge delay. The times are scaled by check_slow() in sanitizer builds.
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>

#include "check.h"

static uint64_t ms; /* a millisecond, times check_slow() */

static wsched_downstream_stats stats(const wsched_downstream *ds)
{
    wsched_downstream_stats s;
    CHECK_OK(wsched_downstream_get_stats(ds, &s, sizeof s));
    return s;
}

/* One request: a batch of n jobs that call the downstream; returns once
 * every job has returned (the slots and `arg` are then free to reuse). */
static wsched_batch *request(wsched_pool *pool, wsched_downstream *ds, wsched_job_fn fn,
                             void *arg, size_t n, size_t slot_size)
{
    wsched_batch_desc d = {.fn = fn, .arg = arg, .njobs = n, .slot_size = slot_size,
                           .downstream = ds};
    wsched_batch *b = NULL;
    CHECK_OK(wsched_submit(pool, &d, &b));
    CHECK_OK(wsched_wait_idle(b, -1));
    return b;
}

/* The clock the breaker and the rate limit read in some examples: moved
 * by hand, so that their outcomes do not depend on the machine's speed.
 * (The timers of backoffs, delays and service waits use the real clock.) */
static _Atomic uint64_t manual_now = 1000000000ull;
static uint64_t manual_clock(void *ctx)
{
    (void)ctx;
    return atomic_load(&manual_now);
}

/* A service that answers `status` after 1 ms, for every attempt. */
struct service {
    int status;
    _Atomic int calls; /* attempts that reached it */
};

static int call_service(wsched_ctx *ctx, void *arg, size_t i, void *slot)
{
    (void)i, (void)slot;
    struct service *s = arg;
    switch (wsched_resume_kind(ctx)) {
    case WSCHED_RESUME_FIRST:
    case WSCHED_RESUME_RETRY: /* an attempt: send the request */
        atomic_fetch_add(&s->calls, 1);
        CHECK_OK(wsched_sleep_until(ctx, wsched_now_ns() + ms));
        return WSCHED_PENDING;
    case WSCHED_RESUME_TIMER: /* the reply */
        return s->status;
    default: /* cancelled: nothing to release */
        return 0;
    }
}

/* ------------------------------------------------------------ retries */

/* A service that fails the first two attempts of every call and answers
 * the third; each slot keeps when each attempt began (a retry finds the
 * slot as the last attempt left it). */
struct flaky_reply {
    uint64_t began[4];
    long answer;
};

static int call_flaky(wsched_ctx *ctx, void *arg, size_t i, void *slot)
{
    struct flaky_reply *r = slot;
    int fail_with = *(const int *)arg;
    switch (wsched_resume_kind(ctx)) {
    case WSCHED_RESUME_FIRST:
    case WSCHED_RESUME_RETRY:
        r->began[wsched_attempt(ctx) - 1] = wsched_now_ns();
        CHECK_OK(wsched_sleep_until(ctx, wsched_now_ns() + ms));
        return WSCHED_PENDING;
    case WSCHED_RESUME_TIMER:
        if (wsched_attempt(ctx) <= 2)
            return fail_with; /* attempts 1 and 2 fail */
        r->answer = 100 + (long)i;
        return 0;
    default:
        return 0;
    }
}

static void example_retries(wsched_pool *pool)
{
    wsched_downstream_config c = {
        .retry = {.max_attempts = 4, .jitter = WSCHED_JITTER_FULL, .base_ns = 2 * ms,
                  .cap_ns = 20 * ms, .codes = {-EIO, -ETIMEDOUT}},
        .seed = 7}; /* reproducible jitter */
    wsched_downstream *ds;
    CHECK_OK(wsched_downstream_create(&ds, &c));

    int fail_with = -EIO; /* retryable: two failures, then the answer */
    wsched_batch *b = request(pool, ds, call_flaky, &fail_with, 4, sizeof(struct flaky_reply));
    for (size_t i = 0; i < 4; i++) {
        const struct flaky_reply *r = wsched_batch_slot(b, i);
        CHECK_EQ(check_status(b, i), 0);
        CHECK_EQ(wsched_batch_attempts(b, i), 3);
        CHECK_EQ(r->answer, 100 + (long)i);
        /* Retry k began after the 1 ms reply of attempt k and then its
         * backoff: the draw wsched.h documents for job i's k-th retry. */
        uint64_t prev = 0;
        for (unsigned k = 1; k <= 2; k++) { /* retry k: the reply, then its backoff */
            uint64_t rng = c.seed ^ (i * 0x9E3779B97F4A7C15ull) ^ ((uint64_t)k << 56);
            prev = wsched_backoff_ns(&c.retry, k, prev, &rng);
            CHECK(prev <= (k == 1 ? 2 : 4) * ms); /* full jitter: in [0, base * 2^(k-1)] */
            CHECK(r->began[k] - r->began[k - 1] >= ms + prev);
        }
    }
    wsched_batch_free(b);

    fail_with = -ENOENT; /* not in `codes`: one attempt, no retry */
    b = request(pool, ds, call_flaky, &fail_with, 4, sizeof(struct flaky_reply));
    for (size_t i = 0; i < 4; i++) {
        CHECK_EQ(check_status(b, i), -ENOENT);
        CHECK_EQ(wsched_batch_attempts(b, i), 1);
    }
    wsched_batch_free(b);

    wsched_downstream_stats s = stats(ds);
    CHECK_EQ(s.jobs, 8);
    CHECK_EQ(s.attempts, 4 * 3 + 4 * 1);
    CHECK_EQ(s.retries, 4 * 2);
    CHECK_EQ(s.dead_letters, 0); /* a code not retried is not a dead letter */
    CHECK_OK(wsched_downstream_destroy(ds));
    printf("  retries: 4 calls answered on attempt 3; -ENOENT not retried\n");
}

/* -------------------------------------------------------- retry budget */

static void example_retry_budget(wsched_pool *pool)
{
    /* 10 tokens; every retryable failure takes one, a retry needs more
     * than 5 left. The service fails everything. */
    wsched_downstream_config c = {
        .retry = {.max_attempts = 3, .base_ns = ms},
        .budget = {.max_tokens = 10, .ratio_milli = 100}};
    wsched_downstream *ds;
    CHECK_OK(wsched_downstream_create(&ds, &c));
    struct service down = {.status = -EIO};

    int attempts[10];
    for (int q = 0; q < 10; q++) { /* 10 requests, one after another */
        wsched_batch *b = request(pool, ds, call_service, &down, 1, 0);
        CHECK_EQ(check_status(b, 0), -EIO);
        attempts[q] = wsched_batch_attempts(b, 0);
        wsched_batch_free(b);
    }
    /* Request 1: 3 attempts (tokens 10 -> 7); request 2: 2 (7 -> 5: the
     * second failure leaves half, no retry); every later one: 1. */
    CHECK_EQ(attempts[0], 3);
    CHECK_EQ(attempts[1], 2);
    for (int q = 2; q < 10; q++)
        CHECK_EQ(attempts[q], 1);

    wsched_downstream_stats s = stats(ds);
    CHECK_EQ(s.attempts, 13); /* 30 without the budget */
    CHECK_EQ(atomic_load(&down.calls), 13);
    CHECK_EQ(s.budget_denied, 9);
    CHECK_EQ(s.exhausted, 1);
    CHECK_EQ(s.budget_milli, 0); /* 10 - 13 failures, floored at 0 */
    CHECK_EQ(wsched_budget_allows(ds), 0);
    CHECK_OK(wsched_downstream_destroy(ds));
    printf("  retry budget: 13 attempts for 10 failing calls (30 without it)\n");
}

/* ------------------------------------------------------ circuit breaker */

static void example_breaker(wsched_pool *pool)
{
    wsched_downstream_config c = {
        .breaker = {.failure_count = 5, .window_calls = 100, .open_ns = 1000000000ull,
                    .trials = 1},
        .clock = manual_clock};
    wsched_downstream *ds;
    CHECK_OK(wsched_downstream_create(&ds, &c));

    struct service down = {.status = -EIO}, up = {.status = 0};
    wsched_batch_free(request(pool, ds, call_service, &down, 5, 0)); /* 5 failures */
    CHECK_EQ(wsched_breaker_state(ds), WSCHED_BREAKER_OPEN);

    wsched_batch *b = request(pool, ds, call_service, &up, 3, 0);
    for (size_t i = 0; i < 3; i++) {
        CHECK_EQ(check_status(b, i), WSCHED_EBREAKER);
        CHECK_EQ(wsched_batch_attempts(b, i), 0);
    }
    CHECK_EQ(atomic_load(&up.calls), 0); /* not called */
    wsched_batch_free(b);

    atomic_fetch_add(&manual_now, 1100000000ull); /* open_ns later */
    b = request(pool, ds, call_service, &up, 1, 0); /* the half-open trial */
    CHECK_EQ(check_status(b, 0), 0);
    CHECK_EQ(wsched_breaker_state(ds), WSCHED_BREAKER_CLOSED); /* 1 trial, 1 success */
    wsched_batch_free(b);

    wsched_downstream_stats s = stats(ds);
    CHECK_EQ(s.breaker_rejected, 3);
    CHECK_EQ(s.breaker_opened, 1);
    CHECK_EQ(s.breaker_half_opened, 1);
    CHECK_EQ(s.breaker_closed, 1);
    CHECK_OK(wsched_downstream_destroy(ds));
    printf("  breaker: opened after 5 failures, 3 calls rejected, closed by one trial\n");
}

/* ---------------------------------------------------------- rate limit */

static void example_rate_limit(wsched_pool *pool)
{
    /* Reject mode: 100 calls per second, bursts of 5; the clock stands
     * still while a request runs. */
    wsched_downstream_config c = {.limit = {.rate_per_s = 100, .burst = 5,
                                            .mode = WSCHED_LIMIT_REJECT},
                                  .clock = manual_clock};
    wsched_downstream *ds;
    CHECK_OK(wsched_downstream_create(&ds, &c));
    struct service up = {.status = 0};

    wsched_batch *b = request(pool, ds, call_service, &up, 20, 0);
    int ran = 0, limited = 0;
    for (size_t i = 0; i < 20; i++) {
        int st = check_status(b, i);
        ran += st == 0;
        limited += st == WSCHED_ELIMITED;
    }
    CHECK_EQ(ran, 5); /* the burst */
    CHECK_EQ(limited, 15);
    CHECK_EQ(atomic_load(&up.calls), 5);
    wsched_batch_free(b);

    atomic_fetch_add(&manual_now, 50000000ull); /* 50 ms: room for 5 more */
    b = request(pool, ds, call_service, &up, 20, 0);
    CHECK_EQ(wsched_batch_size(b) - check_not_ok(b), 5);
    wsched_batch_free(b);
    CHECK_EQ(stats(ds).limited, 30);
    CHECK_OK(wsched_downstream_destroy(ds));

    /* Delay mode, the real clock: one call per ms, no burst; the 10 calls
     * all go, spaced by timer waits, so the last one starts 9 ms or more
     * after the request began. */
    wsched_downstream_config d = {.limit = {.rate_per_s = 1000000000ull / ms, .burst = 1,
                                            .mode = WSCHED_LIMIT_DELAY}};
    CHECK_OK(wsched_downstream_create(&ds, &d));
    atomic_store(&up.calls, 0);
    uint64_t t0 = wsched_now_ns();
    b = request(pool, ds, call_service, &up, 10, 0);
    CHECK(wsched_now_ns() - t0 >= 9 * ms);
    CHECK_EQ(check_not_ok(b), 0);
    CHECK_EQ(atomic_load(&up.calls), 10);
    CHECK_EQ(stats(ds).limited, 0);
    wsched_batch_free(b);
    CHECK_OK(wsched_downstream_destroy(ds));
    printf("  rate limit: 5 of 20 calls in a burst, 5 more 50 ms later; delay mode: 10 of 10\n");
}

/* -------------------------------------------------- concurrency limit */

/* A service that answers `answer` once it is open, polled every 1 ms (a
 * timer wait each time). */
struct gated_service {
    _Atomic int open, calls;
    long answer;
};

static int call_gated(wsched_ctx *ctx, void *arg, size_t i, void *slot)
{
    (void)i;
    struct gated_service *g = arg;
    switch (wsched_resume_kind(ctx)) {
    case WSCHED_RESUME_FIRST:
        atomic_fetch_add(&g->calls, 1);
        /* fall through */
    case WSCHED_RESUME_TIMER:
        if (!atomic_load(&g->open)) {
            CHECK_OK(wsched_sleep_until(ctx, wsched_now_ns() + ms));
            return WSCHED_PENDING;
        }
        *(long *)slot = g->answer;
        return 0;
    default:
        return 0;
    }
}

static void example_concurrency(wsched_pool *pool)
{
    wsched_downstream_config c = {.concurrency = {.initial = 4, .min_limit = 1,
                                                  .max_limit = 16}};
    wsched_downstream *ds;
    CHECK_OK(wsched_downstream_create(&ds, &c));
    struct gated_service svc = {.answer = 7};

    wsched_batch_desc d = {.fn = call_gated, .arg = &svc, .njobs = 20,
                           .slot_size = sizeof(long), .downstream = ds};
    wsched_batch *b;
    CHECK_OK(wsched_submit(pool, &d, &b));
    /* Every job either called the service or was shed: then answer. */
    while ((uint64_t)atomic_load(&svc.calls) + stats(ds).shed < 20)
        sched_yield();
    atomic_store(&svc.open, 1);
    CHECK_OK(wsched_wait_idle(b, -1));

    int ok = 0, shed = 0;
    for (size_t i = 0; i < 20; i++) {
        int st = check_status(b, i);
        ok += st == 0;
        shed += st == WSCHED_ELIMITED;
    }
    CHECK_EQ(ok, 4); /* the limit */
    CHECK_EQ(shed, 16);
    CHECK_EQ(atomic_load(&svc.calls), 4);
    wsched_dead_letter dl[20];
    CHECK_EQ(wsched_dead_letters_drain(ds, dl, 20), 16);
    for (int k = 0; k < 16; k++)
        CHECK_EQ(dl[k].reason, WSCHED_DEAD_SHED);
    wsched_batch_free(b);
    wsched_downstream_stats s = stats(ds);
    CHECK_EQ(s.shed, 16);
    CHECK_EQ(s.in_flight, 0);
    CHECK_OK(wsched_downstream_destroy(ds));
    printf("  concurrency limit: 4 of 20 concurrent calls in flight, 16 shed\n");
}

/* ------------------------------------------------------------- hedging */

/* Two replicas: the first attempt of a call reaches the slow one (10 s),
 * the hedge the fast one (1 ms). The slot says which attempt a timer's
 * resumption belongs to: the hedge has a zeroed scratch slot of its own. */
struct hedged_reply {
    int sent; /* 1: the primary is waiting, 2: the hedge */
    long answer;
};

static _Atomic int losers_cut;

static int call_replicas(wsched_ctx *ctx, void *arg, size_t i, void *slot)
{
    (void)arg;
    struct hedged_reply *r = slot;
    switch (wsched_resume_kind(ctx)) {
    case WSCHED_RESUME_FIRST: /* the first attempt: the slow replica */
        r->sent = 1;
        CHECK_OK(wsched_sleep_until(ctx, wsched_now_ns() + 10000000000ull));
        return WSCHED_PENDING;
    case WSCHED_RESUME_HEDGE: /* the hedge, in its zeroed slot: the fast one */
        CHECK_EQ(r->sent, 0);
        r->sent = 2;
        CHECK_OK(wsched_sleep_until(ctx, wsched_now_ns() + ms));
        return WSCHED_PENDING;
    case WSCHED_RESUME_TIMER: /* a reply: the slot says whose */
        r->answer = (r->sent == 2 ? 200 : 100) + (long)i;
        return 0;
    default: /* the losing attempt, cut short */
        atomic_fetch_add(&losers_cut, 1);
        return 0;
    }
}

static void example_hedging(wsched_pool *pool)
{
    wsched_downstream_config c = {.hedge = {.delay_ns = ms}};
    wsched_downstream *ds;
    CHECK_OK(wsched_downstream_create(&ds, &c));

    uint64_t t0 = wsched_now_ns();
    wsched_batch *b = request(pool, ds, call_replicas, NULL, 8, sizeof(struct hedged_reply));
    CHECK(wsched_now_ns() - t0 < 10000000000ull); /* nobody waited for the slow replica */
    for (size_t i = 0; i < 8; i++) {
        const struct hedged_reply *r = wsched_batch_slot(b, i);
        CHECK_EQ(check_status(b, i), 0);
        CHECK_EQ(r->sent, 2); /* the hedge's scratch slot became the job's */
        CHECK_EQ(r->answer, 200 + (long)i);
        CHECK_EQ(wsched_batch_attempts(b, i), 1); /* a hedge is not a retry */
    }
    CHECK_EQ(atomic_load(&losers_cut), 8);
    wsched_batch_free(b);

    wsched_downstream_stats s = stats(ds);
    CHECK_EQ(s.hedges, 8);
    CHECK_EQ(s.hedge_wins, 8);
    CHECK_EQ(s.attempts, 16); /* 8 first attempts, 8 hedges */
    CHECK_OK(wsched_downstream_destroy(ds));
    printf("  hedging: 8 calls answered by their hedge\n");
}

/* ---------------------------------------------------- attempt timeout */

/* A service whose first attempt of each call hangs (a reply after an
 * hour); later attempts answer in 1 ms. */
static _Atomic int hung_cleanups;

static int call_hanging(wsched_ctx *ctx, void *arg, size_t i, void *slot)
{
    (void)arg, (void)i;
    long *answer = slot;
    switch (wsched_resume_kind(ctx)) {
    case WSCHED_RESUME_FIRST: /* attempt 1 hangs */
        CHECK_OK(wsched_sleep_until(ctx, wsched_now_ns() + 3600000000000ull));
        return WSCHED_PENDING;
    case WSCHED_RESUME_RETRY: /* attempt 2 answers */
        CHECK_OK(wsched_sleep_until(ctx, wsched_now_ns() + ms));
        return WSCHED_PENDING;
    case WSCHED_RESUME_TIMER:
        *answer = 42;
        return 0;
    default: /* the cut attempt's cleanup: release what it holds */
        atomic_fetch_add(&hung_cleanups, 1);
        return 0;
    }
}

static void example_attempt_timeout(wsched_pool *pool)
{
    wsched_downstream_config c = {
        .attempt_timeout_ns = 5 * ms,
        .retry = {.max_attempts = 2, .base_ns = ms, .codes = {-ETIMEDOUT}},
    };
    wsched_downstream *ds;
    CHECK_OK(wsched_downstream_create(&ds, &c));

    uint64_t t0 = wsched_now_ns();
    wsched_batch *b = request(pool, ds, call_hanging, NULL, 8, sizeof(long));
    CHECK(wsched_now_ns() - t0 < 3600000000000ull); /* nobody waited the hour */
    for (size_t i = 0; i < 8; i++) {
        CHECK_EQ(check_status(b, i), 0);
        CHECK_EQ(*(const long *)wsched_batch_slot(b, i), 42);
        CHECK_EQ(wsched_batch_attempts(b, i), 2); /* the cut one, and its retry */
    }
    CHECK_EQ(atomic_load(&hung_cleanups), 8);
    CHECK_EQ(stats(ds).attempt_timeouts, 8);
    wsched_batch_free(b);
    CHECK_OK(wsched_downstream_destroy(ds));
    printf("  attempt timeout: 8 hung attempts cut at 5 ms and retried\n");
}

/* ------------------------------------------------------- single-flight */

static uint64_t same_key(void *ctx, void *arg, size_t i)
{
    (void)ctx, (void)arg, (void)i;
    return 42; /* every job asks for the same thing */
}

static void example_single_flight(wsched_pool *pool)
{
    wsched_downstream_config c = {.flight_key = same_key};
    wsched_downstream *ds;
    CHECK_OK(wsched_downstream_create(&ds, &c));
    struct gated_service svc = {.answer = 4242};

    wsched_batch_desc d = {.fn = call_gated, .arg = &svc, .njobs = 50,
                           .slot_size = sizeof(long), .downstream = ds};
    wsched_batch *b;
    CHECK_OK(wsched_submit(pool, &d, &b));
    /* Every job either called the service or joined a flight: answer. */
    while ((uint64_t)atomic_load(&svc.calls) + stats(ds).joined < 50)
        sched_yield();
    atomic_store(&svc.open, 1);
    CHECK_OK(wsched_wait_idle(b, -1));

    CHECK_EQ(atomic_load(&svc.calls), 1); /* one execution */
    int leaders = 0;
    for (size_t i = 0; i < 50; i++) {
        CHECK_EQ(check_status(b, i), 0);
        CHECK_EQ(*(const long *)wsched_batch_slot(b, i), 4242); /* a copy of its slot */
        leaders += wsched_batch_attempts(b, i) == 1; /* joiners: 0 */
    }
    CHECK_EQ(leaders, 1);
    wsched_batch_free(b);
    wsched_downstream_stats s = stats(ds);
    CHECK_EQ(s.flights, 1);
    CHECK_EQ(s.joined, 49);
    CHECK_OK(wsched_downstream_destroy(ds));
    printf("  single-flight: 50 jobs of one key, 1 execution\n");
}

/* -------------------------------------------------------- dead letters */

struct letters {
    _Atomic int seen[8]; /* per job index */
    _Atomic int limited; /* of reason WSCHED_DEAD_LIMITED */
};

static void on_dead_letter(void *ctx, const wsched_dead_letter *dl)
{
    struct letters *l = ctx; /* runs on a worker: count, never block */
    atomic_fetch_add(&l->seen[dl->index], 1);
    if (dl->reason == WSCHED_DEAD_LIMITED && dl->status == WSCHED_ELIMITED &&
        dl->attempts == 0)
        atomic_fetch_add(&l->limited, 1);
}

static void example_dead_letters(wsched_pool *pool)
{
    /* Without a hook: the ring, drained by the caller. */
    wsched_downstream_config c = {.retry = {.max_attempts = 2, .base_ns = ms}}; /* no hook */
    wsched_downstream *ds;
    CHECK_OK(wsched_downstream_create(&ds, &c));
    struct service down = {.status = -EIO};
    wsched_batch *b = request(pool, ds, call_service, &down, 8, 0);

    wsched_dead_letter dl[16];
    CHECK_EQ(wsched_dead_letters_drain(ds, dl, 16), 8); /* one per job */
    int seen[8] = {0};
    for (int k = 0; k < 8; k++) {
        CHECK(dl[k].batch == b && dl[k].arg == &down && dl[k].downstream == ds);
        CHECK_EQ(dl[k].reason, WSCHED_DEAD_EXHAUSTED);
        CHECK_EQ(dl[k].status, -EIO);
        CHECK_EQ(dl[k].attempts, 2);
        seen[dl[k].index]++;
    }
    for (int k = 0; k < 8; k++)
        CHECK_EQ(seen[k], 1);
    CHECK_EQ(wsched_dead_letters_drain(ds, dl, 16), 0); /* taken */
    wsched_batch_free(b);
    CHECK_OK(wsched_downstream_destroy(ds));

    /* With a hook: 8 calls against a limit of 2 at once (the clock stands
     * still): the 6 rejected ones are handed to the hook, none to a ring. */
    static struct letters got;
    wsched_downstream_config h = {.limit = {.rate_per_s = 1, .burst = 2},
                                  .clock = manual_clock,
                                  .dead_letter = on_dead_letter, .dead_letter_ctx = &got};
    CHECK_OK(wsched_downstream_create(&ds, &h));
    struct service up = {.status = 0};
    b = request(pool, ds, call_service, &up, 8, 0); /* 2 go, 6 are rejected */
    for (size_t i = 0; i < 8; i++)
        CHECK_EQ(atomic_load(&got.seen[i]), check_status(b, i) == WSCHED_ELIMITED);
    CHECK_EQ(atomic_load(&got.limited), 6);
    CHECK_EQ(wsched_dead_letters_drain(ds, dl, 16), 0);
    CHECK_EQ(stats(ds).dead_letters, 6);
    wsched_batch_free(b);
    CHECK_OK(wsched_downstream_destroy(ds));
    printf("  dead letters: 8 exhausted calls drained from the ring, 6 rejected ones hooked\n");
}

int main(void)
{
    check_watchdog(60);
    ms = 1000000ull * (uint64_t)check_slow();
    wsched_pool *pool = check_pool(2);
    example_retries(pool);
    example_retry_budget(pool);
    example_breaker(pool);
    example_rate_limit(pool);
    example_concurrency(pool);
    example_hedging(pool);
    example_attempt_timeout(pool);
    example_single_flight(pool);
    example_dead_letters(pool);
    CHECK_OK(wsched_pool_destroy(pool));
    puts("example_resilience: ok");
    return 0;
}
