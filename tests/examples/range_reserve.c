/*
 * Two issue-10 features as a program would use them:
 *  1. A memory reserve at start-up (wsched_reserve): a service expects
 *     bursts of up to 1,000 requests of up to 20 side jobs, so it reserves
 *     that many request-shaped batches right after creating the pool. The
 *     first burst, from several request threads, then calls no allocator
 *     (wsched_pool_stats.allocs does not move) and every request's results
 *     come back in input order.
 *  2. Range jobs (range_fn): a compute step over a large array, one call
 *     per chunk instead of one per element; every element is checked.
 *
 *   range_reserve [WORKERS]   (default: one per CPU)
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#include "wsched.h"

enum { REQUESTS = 1000, MAX_JOBS = 20, THREADS = 4, N = 1 << 20 };

#define DIE(...) (fprintf(stderr, __VA_ARGS__), exit(1))

/* A side job: its answer is a function of its request and index. */
static int side_job(wsched_ctx *ctx, void *arg, size_t i, void *slot)
{
    (void)ctx;
    *(long *)slot = *(const int *)arg * 100L + (long)i;
    return 0;
}

struct client {
    wsched_pool *pool;
    int first; /* its requests: first, first + THREADS, ... */
};

static void *client(void *arg)
{
    struct client *c = arg;
    static _Thread_local wsched_batch *b[REQUESTS / THREADS];
    static _Thread_local int id[REQUESTS / THREADS];
    static _Thread_local long out[REQUESTS / THREADS][MAX_JOBS];
    int n = 0;
    for (int r = c->first; r < REQUESTS; r += THREADS, n++) { /* the burst */
        id[n] = r;
        wsched_batch_desc d = {.fn = side_job, .arg = &id[n], .njobs = 10 + (size_t)r % 11,
                               .slots = out[n], .slot_size = sizeof(long)};
        int rc = wsched_submit(c->pool, &d, &b[n]);
        if (rc)
            DIE("submit: %s\n", wsched_strerror(rc));
    }
    for (int k = 0; k < n; k++) { /* then the answers, in order */
        if (wsched_wait(b[k], -1))
            DIE("wait\n");
        for (size_t i = 0; i < wsched_batch_size(b[k]); i++)
            if (out[k][i] != id[k] * 100L + (long)i)
                DIE("request %d slot %zu: %ld\n", id[k], i, out[k][i]);
        wsched_batch_free(b[k]);
    }
    return NULL;
}

/* y[i] = 3 x[i] + 1 over a chunk. */
struct axpy {
    const double *x;
    double *y;
};
static int axpy_chunk(wsched_ctx *ctx, void *arg, size_t lo, size_t hi, void *slots)
{
    (void)ctx, (void)slots;
    const struct axpy *a = arg;
    for (size_t i = lo; i < hi; i++)
        a->y[i] = 3.0 * a->x[i] + 1.0;
    return 0;
}

static uint64_t allocs(wsched_pool *pool)
{
    wsched_pool_stats st;
    if (wsched_pool_get_stats(pool, &st, sizeof st))
        DIE("stats\n");
    return st.allocs;
}

int main(int argc, char **argv)
{
    wsched_config cfg;
    wsched_config_init(&cfg);
    cfg.nworkers = argc > 1 ? (unsigned)atoi(argv[1]) : 0;
    wsched_pool *pool;
    int rc = wsched_pool_create(&pool, &cfg);
    if (rc)
        DIE("pool: %s\n", wsched_strerror(rc));

    /* 1. The reserve, then the first burst from THREADS request threads. */
    static long shape[MAX_JOBS];
    wsched_batch_desc like = {.njobs = MAX_JOBS, .slots = shape, .slot_size = sizeof(long)};
    /* A little more than the burst: each thread's cache takes up to 32
     * blocks from the depot at a time. */
    rc = wsched_reserve(pool, &like, REQUESTS + 32 * THREADS);
    if (rc < REQUESTS)
        DIE("reserve: %d\n", rc);
    uint64_t before = allocs(pool);
    pthread_t th[THREADS];
    struct client c[THREADS];
    for (int t = 0; t < THREADS; t++) {
        c[t] = (struct client){pool, t};
        if (pthread_create(&th[t], NULL, client, &c[t]))
            DIE("thread\n");
    }
    for (int t = 0; t < THREADS; t++)
        pthread_join(th[t], NULL);
    uint64_t burst_allocs = allocs(pool) - before;
    printf("first burst: %d requests from %d threads, %llu allocator calls (reserved %d blocks)\n",
           REQUESTS, THREADS, (unsigned long long)burst_allocs, rc);
    if (burst_allocs != 0)
        DIE("the reserve should have served the whole burst\n");

    /* 2. Range jobs over N elements. */
    double *x = malloc(N * sizeof *x), *y = malloc(N * sizeof *y);
    if (!x || !y)
        DIE("malloc\n");
    for (size_t i = 0; i < N; i++)
        x[i] = (double)i, y[i] = -1.0;
    struct axpy a = {x, y};
    wsched_batch_desc d = {.range_fn = axpy_chunk, .arg = &a, .njobs = N};
    wsched_batch *b;
    if ((rc = wsched_submit(pool, &d, &b)) || (rc = wsched_wait(b, -1)))
        DIE("range batch: %s\n", wsched_strerror(rc));
    wsched_outcome o;
    if (wsched_batch_outcome(b, &o, sizeof o) || o.ok != N || o.end != WSCHED_END_COMPLETED)
        DIE("range batch outcome\n");
    wsched_batch_free(b);
    for (size_t i = 0; i < N; i++)
        if (y[i] != 3.0 * (double)i + 1.0)
            DIE("y[%zu] = %g\n", i, y[i]);
    printf("range jobs: %d elements, every one computed once\n", N);
    free(x);
    free(y);
    return wsched_pool_destroy(pool) ? 1 : 0;
}
