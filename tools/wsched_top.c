/*
 * wsched-top: run a fan-out workload on a pool and print the pool's live
 * counters once a second (a small `top` for the pool).
 *   wsched_top [-w WORKERS] [-s SECONDS] [-r REQUESTS_PER_SEC] [-j JOB_US]
 * Requests of 10-20 jobs arrive from 4 client threads at the given total
 * rate (0 = as fast as they complete); each job spins for JOB_US.
 */
#include <getopt.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../tests/common.h"
#include "wsched.h"

static _Atomic int stop;
static unsigned job_us = 5, rate = 2000;

static int spin_job(wsched_ctx *ctx, void *arg, size_t i, void *slot)
{
    (void)ctx, (void)arg;
    common_spin_ns((uint64_t)job_us * 1000u);
    *(uint64_t *)slot = i;
    return 0;
}

static void *client(void *arg)
{
    wsched_pool *pool = arg;
    unsigned seed = (unsigned)(uintptr_t)&seed;
    uint64_t period = rate ? 4000000000ull / rate : 0, next = common_now_ns();
    while (!atomic_load(&stop)) {
        seed = seed * 1103515245u + 12345u;
        wsched_batch_desc d = {.fn = spin_job, .njobs = 10 + (seed >> 16) % 11,
                               .slot_size = sizeof(uint64_t)};
        wsched_batch *b;
        if (wsched_submit(pool, &d, &b) != 0)
            break;
        wsched_wait(b, -1);
        wsched_batch_free(b);
        if (period) {
            next += period;
            uint64_t t = common_now_ns();
            if (next > t)
                common_sleep_until(next);
            else
                next = t; /* behind: no burst to catch up */
        }
    }
    return NULL;
}

int main(int argc, char **argv)
{
    unsigned workers = 0, seconds = 5;
    int c;
    long v = 0;
    while ((c = getopt(argc, argv, "w:s:r:j:h")) != -1) {
        /* -w 0: the library's default; the library checks the upper bound. */
        int bad = (c == 'w' && common_parse_long(optarg, 0, 65536, &v)) ||
                  (c == 's' && common_parse_long(optarg, 1, 1000000, &v)) ||
                  (c == 'r' && common_parse_long(optarg, 0, 100000000, &v)) ||
                  (c == 'j' && common_parse_long(optarg, 0, 1000000, &v));
        switch (bad ? '?' : c) {
        case 'w': workers = (unsigned)v; break;
        case 's': seconds = (unsigned)v; break;
        case 'r': rate = (unsigned)v; break;
        case 'j': job_us = (unsigned)v; break;
        default:
            fprintf(stderr, "usage: %s [-w workers] [-s seconds>=1] [-r requests/s] "
                    "[-j job_us<=1000000]\n", argv[0]);
            return c == 'h' ? 0 : 2;
        }
    }
    wsched_config cfg;
    wsched_config_init(&cfg);
    cfg.nworkers = workers;
    wsched_pool *pool;
    int r = wsched_pool_create(&pool, &cfg);
    if (r) {
        fprintf(stderr, "wsched_pool_create: %s\n", wsched_strerror(r));
        return 1;
    }
    unsigned n = (unsigned)wsched_pool_workers(pool);
    wsched_worker_stats *ws = calloc(n, sizeof *ws), *prev = calloc(n, sizeof *prev);
    enum { CLIENTS = 4 };
    pthread_t th[CLIENTS];
    for (int k = 0; k < CLIENTS; k++)
        pthread_create(&th[k], NULL, client, pool);

    printf("%4s %6s %9s %8s %8s %7s %7s %6s  workers: busy%% jobs/s\n", "t", "parked",
           "searching", "queued", "inflight", "steals", "parks", "wakes");
    wsched_pool_stats st, last = {0};
    for (unsigned t = 1; t <= seconds; t++) {
        common_sleep_ns(1000000000u);
        wsched_pool_get_stats(pool, &st, sizeof st);
        wsched_worker_get_stats(pool, ws, n, sizeof ws[0]);
        printf("%4u %6u %9u %8llu %8llu %7llu %7llu %6llu ", t, st.parked, st.searching,
               (unsigned long long)st.queued, (unsigned long long)st.inflight,
               (unsigned long long)(st.total.steals - last.total.steals),
               (unsigned long long)(st.total.parks - last.total.parks),
               (unsigned long long)(st.total.wakeups - last.total.wakeups));
        for (unsigned i = 0; i < n; i++)
            printf(" [%u] %3.0f%% %llu", i, (double)(ws[i].busy_ns - prev[i].busy_ns) / 1e7,
                   (unsigned long long)(ws[i].jobs - prev[i].jobs));
        printf("\n");
        fflush(stdout);
        memcpy(prev, ws, n * sizeof *ws);
        last = st;
    }
    atomic_store(&stop, 1);
    for (int k = 0; k < CLIENTS; k++)
        pthread_join(th[k], NULL);
    wsched_pool_destroy(pool);
    free(ws);
    free(prev);
    return 0;
}
