/*
 * A deterministic driver for instruction counts (tools/callgrind.sh): one
 * worker, one batch of N empty jobs, or fib(K) with every call a task, or
 * N jobs of a WSCHED_BATCH_WAITS batch that each wait once on a waker they
 * complete themselves before returning (arm, wake, return pending,
 * finalize, resume, complete: a wait's whole path, with no clock in it).
 * Also a batch of N empty range jobs (range_fn, the default grain), and N
 * one-job batches submitted one by one from outside with at most 4,096
 * outstanding (the oldest waited for and freed before the next submit).
 * And N single jobs posted (wsched_post) the same way, in a ring of 4,096
 * caller records.
 *   wsched_overhead empty N | fib K | wake N | range N | single N | post N
 * The empty job and the fib task are those of bench/micro.cpp (the shared
 * definitions in tests/common.h), so these counts are what BM_EmptyBatch and
 * BM_Fib time.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "../tests/common.h"
#include "wsched.h"

static COMMON_DEFINE_FIB_TASK(fib_task, COMMON_IGNORE)

static int self_woken(wsched_ctx *ctx, void *arg, size_t i, void *slot)
{
    (void)arg, (void)i, (void)slot;
    if (wsched_resume_kind(ctx) != WSCHED_RESUME_FIRST)
        return 0;
    wsched_waker k;
    if (wsched_waker_arm(ctx, 0, &k) || wsched_wake(k, 1))
        return -1;
    return WSCHED_PENDING;
}

static int nop_range(wsched_ctx *ctx, void *arg, size_t lo, size_t hi, void *slots)
{
    (void)ctx, (void)arg, (void)lo, (void)hi, (void)slots;
    return 0;
}

/* N one-job batches from this thread, at most 4,096 outstanding. */
static int singles(wsched_pool *pool, long n)
{
    static wsched_batch *ring[4096];
    for (long k = 0; k < n + 4096; k++) {
        wsched_batch **slot = &ring[k % 4096];
        if (*slot) {
            if (wsched_wait(*slot, -1))
                return 1;
            wsched_batch_free(*slot);
            *slot = NULL;
        }
        wsched_batch_desc d = {.fn = common_nop_job, .njobs = 1};
        if (k < n && wsched_submit(pool, &d, slot))
            return 1;
    }
    return 0;
}

/* N posted jobs from this thread, at most 4,096 outstanding. */
static int posts(wsched_pool *pool, long n)
{
    static _Alignas(64) struct {
        wsched_job job;
        int posted;
    } ring[4096];
    for (long k = 0; k < n + 4096; k++) {
        wsched_job *j = &ring[k % 4096].job;
        int *posted = &ring[k % 4096].posted;
        if (*posted && wsched_job_wait(j, -1))
            return 1;
        *posted = 0;
        if (k < n) {
            if (wsched_post(pool, j, common_nop_job, NULL))
                return 1;
            *posted = 1;
        }
    }
    return 0;
}

static int fib_job(wsched_ctx *ctx, void *arg, size_t i, void *slot)
{
    (void)i, (void)slot;
    fib_task(ctx, arg);
    return 0;
}

int main(int argc, char **argv)
{
    long k;
    int fib = argc == 3 && strcmp(argv[1], "fib") == 0;
    int wake = argc == 3 && strcmp(argv[1], "wake") == 0;
    int range = argc == 3 && strcmp(argv[1], "range") == 0;
    int single = argc == 3 && strcmp(argv[1], "single") == 0;
    int post = argc == 3 && strcmp(argv[1], "post") == 0;
    if (argc != 3 ||
        (!fib && !wake && !range && !single && !post && strcmp(argv[1], "empty") != 0) ||
        common_parse_long(argv[2], fib ? 0 : 1, fib ? 60 : 1000000000000L, &k) != 0) {
        fprintf(stderr, "usage: wsched_overhead empty N | wake N | range N | single N | post N (1 <= N) | "
                        "fib K (0 <= K <= 60)\n");
        return 2;
    }
    wsched_config cfg;
    wsched_config_init(&cfg);
    cfg.nworkers = 1;
    wsched_pool *pool;
    if (wsched_pool_create(&pool, &cfg))
        return 1;
    struct common_fib f = {(int)k, 0};
    wsched_batch_desc d = {.fn = common_nop_job, .njobs = (size_t)k};
    if (fib)
        d = (wsched_batch_desc){.fn = fib_job, .arg = &f, .njobs = 1};
    if (wake)
        d = (wsched_batch_desc){.fn = self_woken, .njobs = (size_t)k, .flags = WSCHED_BATCH_WAITS};
    if (range)
        d = (wsched_batch_desc){.range_fn = nop_range, .njobs = (size_t)k};
    if (single || post) {
        int r = single ? singles(pool, k) : posts(pool, k);
        wsched_pool_destroy(pool);
        return r;
    }
    wsched_batch *b;
    if (wsched_submit(pool, &d, &b) || wsched_wait(b, -1))
        return 1;
    wsched_batch_free(b);
    wsched_pool_destroy(pool);
    if (fib)
        printf("fib(%d) = %" PRIu64 "\n", f.n, f.r);
    return 0;
}
