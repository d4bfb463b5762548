/*
 * A deterministic driver for instruction counts (tools/callgrind.sh): one
 * worker, one batch of N empty jobs, or fib(K) with every call a task.
 *   wsched_overhead empty N | fib K
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wsched.h"

static int empty_job(wsched_ctx *ctx, void *arg, size_t i, void *slot)
{
    (void)ctx, (void)arg, (void)i, (void)slot;
    return 0;
}

struct fib {
    int n;
    long r;
};

static void fib_task(wsched_ctx *ctx, void *arg)
{
    struct fib *f = arg;
    if (f->n < 2) {
        f->r = f->n;
        return;
    }
    struct fib a = {f->n - 1, 0}, b = {f->n - 2, 0};
    wsched_spawn(ctx, fib_task, &a);
    fib_task(ctx, &b);
    wsched_sync(ctx);
    f->r = a.r + b.r;
}

static int fib_job(wsched_ctx *ctx, void *arg, size_t i, void *slot)
{
    (void)i, (void)slot;
    fib_task(ctx, arg);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc != 3)
        return 2;
    wsched_config cfg;
    wsched_config_init(&cfg);
    cfg.nworkers = 1;
    wsched_pool *pool;
    if (wsched_pool_create(&pool, &cfg))
        return 1;
    long k = atol(argv[2]);
    struct fib f = {(int)k, 0};
    wsched_batch_desc d = {.fn = empty_job, .njobs = (size_t)k};
    if (strcmp(argv[1], "fib") == 0)
        d = (wsched_batch_desc){.fn = fib_job, .arg = &f, .njobs = 1};
    wsched_batch *b;
    if (wsched_submit(pool, &d, &b) || wsched_wait(b, -1))
        return 1;
    wsched_batch_free(b);
    wsched_pool_destroy(pool);
    if (f.n)
        printf("fib(%d) = %ld\n", f.n, f.r);
    return 0;
}
