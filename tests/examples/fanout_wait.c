/*
 * The fan-out scenario with waits (issue 9): 1,000 requests at once, each
 * fanning out 10-20 side jobs that each wait 1 ms for "another service"
 * before answering. The jobs wait without holding a worker: each arms a
 * timer and returns WSCHED_PENDING, and its slot carries its state between
 * the two calls. Every slot is checked. It prints the wall time of each of
 * 11 rounds (median and worst) and the peak RSS: the figures, not a timed
 * test (nothing here asserts a time).
 *
 *   fanout_wait [WORKERS] [ROUNDS] [WAIT_US]  (default: one per CPU, 11, 1000)
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "wsched.h"

enum { REQUESTS = 1000, MAX_JOBS = 20 };
static uint64_t wait_ns = 1000000; /* each side call's wait */

struct call {               /* a job's slot: its frame, then its answer */
    int state;              /* 0: not started, 1: waiting, 2: answered */
    int request, index;
    long answer;
};

static int side_call(wsched_ctx *ctx, void *arg, size_t i, void *slot)
{
    struct call *c = slot;
    int request = *(const int *)arg;
    switch (wsched_resume_kind(ctx)) {
    case WSCHED_RESUME_FIRST: /* send the call, wait 1 ms for the reply */
        c->state = 1;
        c->request = request;
        c->index = (int)i;
        if (wsched_sleep_until(ctx, wsched_now_ns() + wait_ns) != 0)
            return -EPROTO;
        return WSCHED_PENDING;
    case WSCHED_RESUME_TIMER: /* the reply is in */
        if (c->state != 1)
            return -EPROTO;
        c->state = 2;
        c->answer = (long)request * 100 + (long)i;
        return 0;
    default: /* cancelled: nothing to release here */
        return 0;
    }
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
    wsched_config cfg;
    wsched_config_init(&cfg);
    cfg.nworkers = argc > 1 ? (unsigned)atoi(argv[1]) : 0;
    int rounds = argc > 2 ? atoi(argv[2]) : 11;
    long wait_us = argc > 3 ? atol(argv[3]) : 1000;
    if (wait_us < 0 || wait_us > 10000000) {
        fprintf(stderr, "fanout_wait: WAIT_US 0..10000000\n");
        return 2;
    }
    wait_ns = (uint64_t)wait_us * 1000;
    if (rounds < 1 || rounds > 1000) {
        fprintf(stderr, "fanout_wait: ROUNDS 1..1000\n");
        return 2;
    }
    wsched_pool *pool;
    int r = wsched_pool_create(&pool, &cfg);
    if (r) {
        fprintf(stderr, "pool: %s\n", wsched_strerror(r));
        return 1;
    }
    static int ids[REQUESTS];
    static wsched_batch *batches[REQUESTS];
    uint64_t wall[1000];
    long jobs = 0;
    for (int round = 0; round < rounds; round++) {
        jobs = 0;
        uint64_t t0 = wsched_now_ns();
        for (int q = 0; q < REQUESTS; q++) { /* 1,000 requests at once */
            ids[q] = q;
            wsched_batch_desc d = {.fn = side_call, .arg = &ids[q],
                                   .njobs = (size_t)(10 + q % 11),
                                   .slot_size = sizeof(struct call),
                                   .flags = WSCHED_BATCH_WAITS};
            jobs += (long)d.njobs;
            if ((r = wsched_submit(pool, &d, &batches[q])) != 0) {
                fprintf(stderr, "submit: %s\n", wsched_strerror(r));
                return 1;
            }
        }
        for (int q = 0; q < REQUESTS; q++) {
            wsched_batch *b = batches[q];
            if ((r = wsched_wait(b, -1)) != 0) {
                fprintf(stderr, "wait: %s\n", wsched_strerror(r));
                return 1;
            }
            for (size_t i = 0; i < wsched_batch_size(b); i++) { /* in input order */
                int status;
                wsched_batch_status(b, i, &status);
                const struct call *c = wsched_batch_slot(b, i);
                if (status != 0 || c->state != 2 || c->request != q || c->index != (int)i ||
                    c->answer != (long)q * 100 + (long)i) {
                    fprintf(stderr, "request %d job %zu: status %s, state %d, answer %ld\n", q,
                            i, wsched_strerror(status), c->state, c->answer);
                    return 1;
                }
            }
            wsched_batch_free(b);
        }
        wall[round] = wsched_now_ns() - t0;
    }
    int workers = wsched_pool_workers(pool);
    wsched_pool_destroy(pool);
    qsort(wall, (size_t)rounds, sizeof wall[0], cmp_u64);
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf("fanout_wait: %d requests, %ld jobs each waiting %.3f ms, %u workers, %d rounds: "
           "wall median %.2f ms, worst %.2f ms; peak RSS %ld KiB; every slot checked: ok\n",
           REQUESTS, jobs, (double)wait_ns / 1e6, (unsigned)workers, rounds, (double)wall[rounds / 2] / 1e6, (double)wall[rounds - 1] / 1e6, ru.ru_maxrss);
    return 0;
}
