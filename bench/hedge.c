/*
 * Issue 11's hedging target: a fan-out where 1 % of calls take 100x the
 * median. Each request is a batch of JOBS calls; a call is a timer wait
 * (no CPU) of 100 us x (1 + an exponential of mean 0.1), or 10 ms for 1 %
 * of calls, drawn afresh for every attempt (a hedge goes to another
 * replica: its own draw). THREADS clients each send requests one after
 * the other. Without hedging, then with a hedge after DELAY_US; reported:
 * request latency p50, p99, p99.9, max, and the extra calls the hedges
 * made (hedges / jobs). With CUT_US, a third run adds a per-attempt
 * timeout of CUT_US and one retry (backoff 1 us): a call whose primary and
 * hedge are both slow is cut and retried instead of waited for; "extra"
 * then counts the retries too ((attempts - jobs) / jobs).
 *
 *   build/bench_hedge [JOBS=10] [REQUESTS=20000] [THREADS=4] [DELAY_US=300] [WORKERS=2]
 *                     [CUT_US=0]
 */
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

#include "wsched.h"

static size_t jobs = 10, requests = 20000, threads = 4;
static uint64_t delay_us = 300;
static wsched_pool *pool;
static wsched_downstream *ds;
static _Atomic uint64_t draws = 1;

struct call {
    int state;
};

static uint64_t mix(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static uint64_t call_latency(void)
{
    uint64_t x = mix(atomic_fetch_add_explicit(&draws, 0x9E3779B97F4A7C15ull,
                                               memory_order_relaxed));
    if (x % 100 == 0)
        return 10000000; /* the 1 %: 100x the median */
    /* 100 us x (1 + an exponential of mean 0.1): u in (0, 1] from the
     * high bits, -ln(u) exponential of mean 1. */
    double u = (double)((x >> 11) + 1) / 9007199254740992.0;
    double ln = log(u);
    return 100000 + (uint64_t)(-ln * 10000.0);
}

static int call_job(wsched_ctx *ctx, void *arg, size_t i, void *slot)
{
    (void)arg, (void)i;
    struct call *c = slot;
    int kind = wsched_resume_kind(ctx);
    if (kind == WSCHED_RESUME_CANCELLED)
        return 0;
    if (kind == WSCHED_RESUME_FIRST || kind == WSCHED_RESUME_HEDGE || kind == WSCHED_RESUME_RETRY) {
        c->state = 1;
        if (wsched_sleep_until(ctx, wsched_now_ns() + call_latency()) != 0)
            return -1;
        return WSCHED_PENDING;
    }
    return 0;
}

static uint64_t *lat;
static _Atomic size_t next_req;

static void *client(void *arg)
{
    (void)arg;
    size_t k;
    while ((k = atomic_fetch_add(&next_req, 1)) < requests) {
        wsched_batch_desc d = {.fn = call_job, .njobs = jobs, .slot_size = sizeof(struct call),
                               .downstream = ds};
        uint64_t t0 = wsched_now_ns();
        wsched_batch *b = NULL;
        if (wsched_submit(pool, &d, &b) != 0 || wsched_wait(b, -1) != 0)
            abort();
        lat[k] = wsched_now_ns() - t0;
        wsched_batch_free(b);
    }
    return NULL;
}

static int cmp(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static void run(const char *name, uint64_t hedge_ns, uint64_t cut_ns)
{
    wsched_downstream_config c = {.hedge = {.delay_ns = hedge_ns}, .attempt_timeout_ns = cut_ns};
    if (cut_ns) {
        c.retry.max_attempts = 2;
        c.retry.base_ns = 1000;
        c.retry.jitter = WSCHED_JITTER_NONE;
    }
    if (wsched_downstream_create(&ds, &c) != 0)
        abort();
    atomic_store(&next_req, 0);
    pthread_t th[64];
    for (size_t t = 0; t < threads; t++)
        pthread_create(&th[t], NULL, client, NULL);
    for (size_t t = 0; t < threads; t++)
        pthread_join(th[t], NULL);
    qsort(lat, requests, sizeof *lat, cmp);
    wsched_downstream_stats s;
    wsched_downstream_get_stats(ds, &s, sizeof s);
    double us = 1e-3;
    printf("| %-22s | %8.0f | %8.0f | %8.0f | %8.0f | %6.2f %% | %6.2f %% |\n", name,
           (double)lat[requests / 2] * us, (double)lat[requests * 99 / 100] * us,
           (double)lat[requests * 999 / 1000] * us, (double)lat[requests - 1] * us,
           100.0 * (double)(s.attempts - s.jobs) / (double)s.jobs,
           100.0 * (double)s.hedge_wins / (double)s.jobs);
    wsched_downstream_destroy(ds);
}

int main(int argc, char **argv)
{
    size_t workers = 2;
    uint64_t cut_us = 0;
    if (argc > 1)
        jobs = strtoul(argv[1], NULL, 10);
    if (argc > 2)
        requests = strtoul(argv[2], NULL, 10);
    if (argc > 3)
        threads = strtoul(argv[3], NULL, 10);
    if (argc > 4)
        delay_us = strtoul(argv[4], NULL, 10);
    if (argc > 5)
        workers = strtoul(argv[5], NULL, 10);
    if (argc > 6)
        cut_us = strtoul(argv[6], NULL, 10);
    if (!jobs || !requests || !threads || threads > 64)
        return 2;
    wsched_config cfg;
    wsched_config_init(&cfg);
    cfg.nworkers = (unsigned)workers;
    if (wsched_pool_create(&pool, &cfg) != 0)
        return 1;
    lat = calloc(requests, sizeof *lat);
    printf("%zu requests x %zu calls, %zu clients, %zu workers; a call: 100 us x (1 + Exp(0.1)),"
           " 1 %% take 10 ms\n\n",
           requests, jobs, threads, workers);
    printf("| %-22s | %8s | %8s | %8s | %8s | %8s | %8s |\n", "", "p50 us", "p99 us", "p99.9 us",
           "max us", "extra", "won");
    printf("|---|---:|---:|---:|---:|---:|---:|\n");
    char name[64];
    run("no hedging", 0, 0);
    snprintf(name, sizeof name, "hedge after %llu us", (unsigned long long)delay_us);
    run(name, delay_us * 1000, 0);
    if (cut_us) {
        snprintf(name, sizeof name, "+ cut at %llu us, 1 retry", (unsigned long long)cut_us);
        run(name, delay_us * 1000, cut_us * 1000);
    }
    free(lat);
    wsched_pool_destroy(pool);
    return 0;
}
