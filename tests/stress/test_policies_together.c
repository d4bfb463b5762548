/*
 * Every policy of a downstream at once, on one key (issue 11): retries
 * with a budget, a breaker, a rate limit in delay mode, hedging after
 * 300 us, single-flight on some batches, dead letters to a hook. The
 * "service" is a timer wait of 20-400 us that fails 30 % of attempts (by
 * a hash of the request, the job, the attempt and whether it is a hedge).
 * Two submitter threads send batches of 16 with fail-fast or best effort,
 * some with deadlines, some cancelled at once. Checked for every slot:
 * one final status from the allowed set, a success holds its value (the
 * job's own or, in a flight, its key's), the attempts within bounds, at
 * most one dead letter per job and only for a failed one; and at the end
 * the counters agree with what the jobs saw.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"

enum { N = 16, MAX_ATTEMPTS = 3 };

struct slot {
    uint64_t value;
    int state;
    int pad;
};

struct req {
    uint64_t id;
    bool flights; /* jobs carry keys (i % 4 + 1 + id % 3 * 8) */
    _Atomic int letters[N];
    _Atomic int calls;
};

static _Atomic long hook_calls;

static uint64_t flight_key(void *ctx, void *arg, size_t i)
{
    (void)ctx;
    const struct req *r = arg;
    return r->flights ? i % 4 + 1 + (r->id % 3) * 8 : 0;
}

static uint64_t value_of(const struct req *r, size_t i)
{
    uint64_t k = flight_key(NULL, (void *)r, i);
    return k ? common_mix64(k) : common_mix64(r->id * 64 + i + 1000);
}

static void hook(void *ctx, const wsched_dead_letter *dl)
{
    (void)ctx;
    CHECK(dl->index < N && dl->status != 0 && dl->attempts <= MAX_ATTEMPTS);
    struct req *r = dl->arg; /* alive: its submitter waits for the batch first */
    CHECK_EQ(atomic_fetch_add(&r->letters[dl->index], 1), 0); /* exactly once */
    atomic_fetch_add(&hook_calls, 1);
}

static int job(wsched_ctx *c, void *arg, size_t i, void *slotp)
{
    struct req *r = arg;
    struct slot *s = slotp;
    int kind = wsched_resume_kind(c);
    if (kind == WSCHED_RESUME_CANCELLED)
        return 0;
    if (kind == WSCHED_RESUME_FIRST || kind == WSCHED_RESUME_RETRY ||
        kind == WSCHED_RESUME_HEDGE) {
        atomic_fetch_add(&r->calls, 1);
        CHECK(wsched_attempt(c) >= 1 && wsched_attempt(c) <= MAX_ATTEMPTS);
        uint64_t h = common_mix64(r->id * 1315423911u + i * 2654435761u +
                                  (uint64_t)wsched_attempt(c) * 97 + (kind == WSCHED_RESUME_HEDGE));
        s->state = (int)(h % 100) < 30 ? 2 : 1; /* 2: this attempt fails */
        CHECK_OK(wsched_sleep_until(c, wsched_now_ns() + 20000 + h % 380000));
        return WSCHED_PENDING;
    }
    if (s->state == 2)
        return -EIO;
    s->value = value_of(r, i);
    return 0;
}

static wsched_pool *pool;
static wsched_downstream *ds;
static _Atomic long requests, oks, calls_seen;

static void *submitter(void *arg)
{
    uint64_t base = (uint64_t)(uintptr_t)arg * 1000000;
    long rounds = 150 / check_slow() + 10;
    for (long k = 0; k < rounds; k++) {
        struct req *r = calloc(1, sizeof *r);
        CHECK(r);
        r->id = base + (uint64_t)k;
        r->flights = k % 3 == 0;
        wsched_batch_desc d = {.fn = job, .arg = r, .njobs = N, .slot_size = sizeof(struct slot),
                               .policy = k % 2 ? WSCHED_POLICY_FAIL_FAST
                                               : WSCHED_POLICY_BEST_EFFORT,
                               .downstream = ds};
        if (k % 5 == 4)
            d.deadline_ns = wsched_now_ns() + 300000 * (uint64_t)check_slow();
        wsched_batch *b = NULL;
        CHECK_OK(wsched_submit(pool, &d, &b));
        if (k % 7 == 6)
            CHECK_OK(wsched_cancel(b));
        CHECK_OK(wsched_wait(b, -1));
        CHECK_OK(wsched_wait_idle(b, -1));
        for (size_t i = 0; i < N; i++) {
            int st = check_status(b, i);
            int a = wsched_batch_attempts(b, i);
            CHECK(a >= 0 && a <= MAX_ATTEMPTS);
            CHECK(st == 0 || st == -EIO || st == WSCHED_ECANCELLED || st == WSCHED_EDEADLINE ||
                  st == WSCHED_EBREAKER || st == WSCHED_ELIMITED);
            if (st == 0) {
                CHECK_EQ(((struct slot *)wsched_batch_slot(b, i))->value, value_of(r, i));
                atomic_fetch_add(&oks, 1);
            }
            int letters = atomic_load(&r->letters[i]);
            CHECK(letters <= 1);
            if (letters)
                CHECK(st != 0);
        }
        atomic_fetch_add(&calls_seen, atomic_load(&r->calls));
        atomic_fetch_add(&requests, 1);
        wsched_batch_free(b);
        free(r);
    }
    return NULL;
}

int main(void)
{
    check_watchdog(240);
    wsched_downstream_config c = {
        .name = "everything",
        .retry = {.max_attempts = MAX_ATTEMPTS, .base_ns = 50000, .cap_ns = 400000,
                  .codes = {-EIO}},
        /* Tuned so that every policy acts: the budget refills faster than
         * 30 % failures drain it, the breaker opens on a few exhausted
         * jobs (2 ms open, then trials and a ramp), the limit delays. */
        .budget = {.max_tokens = 50, .ratio_milli = 500},
        .breaker = {.failure_rate_pct = 3, .min_calls = 30, .window_calls = 100,
                    .open_ns = 2000000, .trials = 3, .ramp_ns = 2000000},
        .limit = {.rate_per_s = 50000, .burst = 16, .mode = WSCHED_LIMIT_DELAY},
        .hedge = {.delay_ns = 300000},
        .flight_key = flight_key,
        .dead_letter = hook,
    };
    CHECK_OK(wsched_downstream_create(&ds, &c));
    pool = check_pool(2);
    pthread_t th[2];
    for (uintptr_t t = 0; t < 2; t++)
        CHECK_OK(pthread_create(&th[t], NULL, submitter, (void *)(t + 1)));
    for (int t = 0; t < 2; t++)
        CHECK_OK(pthread_join(th[t], NULL));
    wsched_downstream_stats s;
    CHECK_OK(wsched_downstream_get_stats(ds, &s, sizeof s));
    CHECK_EQ(s.dead_letters, (uint64_t)atomic_load(&hook_calls));
    CHECK_EQ(s.attempts, (uint64_t)atomic_load(&calls_seen)); /* every attempt was a call */
    /* Every decision was made on the pool's workers (the submitters only
     * submit, cancel and wait): the pool's counters are the downstream's. */
    wsched_pool_stats ps;
    CHECK_OK(wsched_pool_get_stats(pool, &ps, sizeof ps));
    const wsched_resilience_stats *rs = &ps.resilience;
#define SAME(f) CHECK_EQ(rs->f, s.f)
    SAME(jobs); SAME(attempts); SAME(retries); SAME(budget_denied); SAME(deadline_cut);
    SAME(exhausted); SAME(breaker_rejected); SAME(breaker_opened); SAME(breaker_half_opened);
    SAME(breaker_closed); SAME(limited); SAME(delayed); SAME(dead_letters); SAME(dead_dropped);
    SAME(hedges); SAME(hedge_wins); SAME(hedges_denied); SAME(flights); SAME(joined);
    SAME(flight_handovers); SAME(shed);
#undef SAME
    /* A caller built against the first wsched_pool_stats gets its fields. */
    wsched_pool_stats old;
    memset(&old, 0xff, sizeof old);
    CHECK_OK(wsched_pool_get_stats(pool, &old, offsetof(wsched_pool_stats, resilience)));
    CHECK_EQ(old.nworkers, ps.nworkers);
    CHECK_EQ(old.resilience.jobs, UINT64_MAX); /* not written */
    CHECK_EQ(wsched_pool_get_stats(pool, &old, offsetof(wsched_pool_stats, resilience) - 1),
             -EINVAL);
    printf("%ld requests, %ld jobs ok; %llu attempts, %llu retries, %llu hedges (%llu won), "
           "%llu joined, %llu budget denied, %llu breaker rejections (opened %llu), "
           "%llu delayed, %llu dead letters\n",
           atomic_load(&requests), atomic_load(&oks), (unsigned long long)s.attempts,
           (unsigned long long)s.retries, (unsigned long long)s.hedges,
           (unsigned long long)s.hedge_wins, (unsigned long long)s.joined,
           (unsigned long long)s.budget_denied, (unsigned long long)s.breaker_rejected,
           (unsigned long long)s.breaker_opened, (unsigned long long)s.delayed, (unsigned long long)s.dead_letters);
    CHECK_OK(wsched_pool_destroy(pool));
    CHECK_OK(wsched_downstream_destroy(ds));
    puts("test_policies_together: ok");
    return 0;
}
