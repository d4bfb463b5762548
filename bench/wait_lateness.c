/*
 * Issue 9: how late a job that waits is resumed on an idle pool, and what an
 * idle pool with timers armed costs in CPU.
 *
 *   build/bench_wait_lateness [WORKERS]      (default 2)
 *
 * 5 rounds of 2,000 jobs each sleeping 1-10 ms (wsched_sleep_until): the
 * lateness of a resumption is its start minus the time asked for (p50,
 * p99, max). Then 100 jobs sleeping 1 s: the process's CPU time meanwhile;
 * and a job that waits inside the pool (wsched_wait from a job) for 100
 * jobs sleeping 1 s: the CPU its worker spends waiting (it naps on the
 * batch's word after a short spin, waking at least every millisecond).
 */
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>

#include "wsched.h"

struct frame {
    uint64_t due, late;
};

static int sleep_once(wsched_ctx *ctx, void *arg, size_t i, void *slot)
{
    struct frame *f = slot;
    const uint64_t *span = arg; /* 0: 1-10 ms spread; else this many ns */
    if (wsched_resume_kind(ctx) == WSCHED_RESUME_FIRST) {
        uint64_t d = *span ? *span : 1000000 + (uint64_t)(i * 7919 % 9000) * 1000;
        f->due = wsched_now_ns() + d;
        if (wsched_sleep_until(ctx, f->due) != 0)
            return -1;
        return WSCHED_PENDING;
    }
    f->late = wsched_now_ns() - f->due;
    return 0;
}

static int cmp(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static int run(wsched_pool *pool, size_t n, uint64_t span, wsched_batch **out);

/* A job that submits 100 sleepers and waits for them inside the pool. */
static int wait_inside(wsched_ctx *ctx, void *arg, size_t i, void *slot)
{
    (void)ctx, (void)i, (void)slot;
    wsched_batch *b;
    int r = run(arg, 100, 1000000000ull, &b);
    wsched_batch_free(b);
    return r;
}

static double cpu_seconds(void)
{
    struct rusage r;
    getrusage(RUSAGE_SELF, &r);
    return (double)(r.ru_utime.tv_sec + r.ru_stime.tv_sec) +
           (double)(r.ru_utime.tv_usec + r.ru_stime.tv_usec) / 1e6;
}

static int run(wsched_pool *pool, size_t n, uint64_t span, wsched_batch **out)
{
    static uint64_t spans[2];
    spans[span ? 1 : 0] = span;
    wsched_batch_desc d = {.fn = sleep_once, .arg = &spans[span ? 1 : 0], .njobs = n,
                           .slot_size = sizeof(struct frame), .flags = WSCHED_BATCH_WAITS};
    int r = wsched_submit(pool, &d, out);
    if (r == 0)
        r = wsched_wait(*out, -1);
    return r;
}

int main(int argc, char **argv)
{
    wsched_config cfg;
    wsched_config_init(&cfg);
    cfg.nworkers = argc > 1 ? (unsigned)atoi(argv[1]) : 2;
    wsched_pool *pool;
    if (wsched_pool_create(&pool, &cfg) != 0)
        return 1;
    enum { N = 2000, ROUNDS = 5 };
    static uint64_t late[N * ROUNDS];
    size_t k = 0;
    for (int round = 0; round < ROUNDS; round++) {
        wsched_batch *b;
        if (run(pool, N, 0, &b) != 0)
            return 1;
        for (size_t i = 0; i < N; i++) {
            int st;
            wsched_batch_status(b, i, &st);
            if (st != 0)
                return 1;
            late[k++] = ((const struct frame *)wsched_batch_slot(b, i))->late;
        }
        wsched_batch_free(b);
    }
    qsort(late, k, sizeof late[0], cmp);
    printf("lateness of %zu sleeps of 1-10 ms, %u workers, idle pool: p50 %.1f us, p99 %.1f us, "
           "max %.1f us\n",
           k, cfg.nworkers, (double)late[k / 2] / 1e3, (double)late[k * 99 / 100] / 1e3,
           (double)late[k - 1] / 1e3);
    double c0 = cpu_seconds();
    uint64_t t0 = wsched_now_ns();
    wsched_batch *b;
    if (run(pool, 100, 1000000000ull, &b) != 0)
        return 1;
    wsched_batch_free(b);
    printf("100 jobs sleeping 1 s: %.3f s wall, %.4f s of process CPU\n",
           (double)(wsched_now_ns() - t0) / 1e9, cpu_seconds() - c0);
    c0 = cpu_seconds();
    t0 = wsched_now_ns();
    wsched_batch_desc d = {.fn = wait_inside, .arg = pool, .njobs = 1};
    if (wsched_submit(pool, &d, &b) != 0 || wsched_wait(b, -1) != 0)
        return 1;
    wsched_batch_free(b);
    printf("a job waiting inside the pool for 100 jobs sleeping 1 s: %.3f s wall, "
           "%.4f s of process CPU\n",
           (double)(wsched_now_ns() - t0) / 1e9, cpu_seconds() - c0);
    wsched_pool_destroy(pool);
    return 0;
}
